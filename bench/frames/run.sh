#!/usr/bin/env bash
# Counts what one request costs the interpreter: the interpreted calls and the frame slots they
# open, per row of BenchmarkTraefikPath and per function (docs/performance.md, "Allocations per
# request"). Under Yaegi v0.16.1 every call allocates one value per local, parameter, result and
# intermediate value of the function, on the branches that run and on those that do not, so the
# slots are what a function costs.
#
#   bash bench/frames/run.sh      (or: make bench-frames)
#
# It builds, in a temporary directory, a copy of the module cache's Yaegi with run.go.patch (one
# counting call where a frame is opened) and frames.go.in, and a copy of this repository whose
# go.mod uses that Yaegi and whose BenchmarkTraefikPath reports the counts (report_test.go.in).
# Nothing here changes the plugin or its own build. About a minute.
#
# Environment (defaults in brackets):
#   FRAMES_ROWS      BenchmarkTraefikPath rows, a -bench pattern after "TraefikPath/" [all]
#   FRAMES_REQUESTS  requests measured per row [2000]
#   FRAMES_DUMP      comma-separated function names: for each, which expression owns which slot,
#                    printed after the counts [none]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/bench/frames"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$root"
yaegi="$(go list -m -f '{{.Dir}}' github.com/traefik/yaegi)"
if [ -z "$yaegi" ] || [ ! -d "$yaegi" ]; then
  go mod download github.com/traefik/yaegi
  yaegi="$(go list -m -f '{{.Dir}}' github.com/traefik/yaegi)"
fi
version="$(go list -m -f '{{.Version}}' github.com/traefik/yaegi)"
[ "$version" = "v0.16.1" ] || { echo "run.go.patch is for Yaegi v0.16.1, go.mod has $version" >&2; exit 1; }

cp -r "$yaegi" "$work/yaegi"
chmod -R u+w "$work/yaegi"
(cd "$work/yaegi" && patch --quiet -p1 < "$here/run.go.patch")
cp "$here/frames.go.in" "$work/yaegi/interp/frames.go"

mkdir "$work/plugin"
tar -C "$root" --exclude=node_modules --exclude=.git -cf - . | tar -xf - -C "$work/plugin"
cp "$here/report_test.go.in" "$work/plugin/frames_report_test.go"
echo "replace github.com/traefik/yaegi => $work/yaegi" >> "$work/plugin/go.mod"

cd "$work/plugin"
FRAMES_DUMP="${FRAMES_DUMP:-}" FRAMES_DUMP_FILE="$work/dump.txt" \
  go test -run '^$' -bench "TraefikPath/${FRAMES_ROWS:-}" -benchmem -benchtime "${FRAMES_REQUESTS:-2000}x" .
if [ -s "$work/dump.txt" ]; then
  echo
  echo "Which expression owns each frame slot (FRAMES_DUMP):"
  cat "$work/dump.txt"
fi
