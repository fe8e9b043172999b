#!/usr/bin/env bash
# The whole test suite, from a clean checkout: unit tests compiled with -race and interpreted by
# Yaegi, the bounded fuzz runs, then the end-to-end suite against a real Traefik and a real IdP.
# Everything it needs (Go modules, npm packages, the Traefik binary) is installed on the way.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "redis-server, for the shared-cache tests (Debian's package)"
bash scripts/install-redis.sh
redis-server --version

step "go vet"
go vet ./...

step "unit tests, compiled (-race) and interpreted by Yaegi v0.16.1"
go test -race -count=1 ./...
(cd scripts/mutants && go vet ./... && go test -count=1 ./...)
(cd bench && GOWORK=off go vet ./... && GOWORK=off go test -count=1 ./...) # the load tools; fastidp's client checks

step "make bench-frames: the counting Yaegi builds and counts a hit, per function"
# Not a measurement (docs/performance.md has those): a check that the README's make bench-frames
# still works, since its patch is tied to Yaegi v0.16.1's source.
frames="$(FRAMES_ROWS='hit$' FRAMES_REQUESTS=200 bash bench/frames/run.sh)"
if ! grep -Eq '^hit: [0-9.]+ interpreted calls and [0-9]+ frame slots a request' <<<"$frames" ||
  ! grep -Eq '^  fastHit +1\.00 calls' <<<"$frames"; then
  printf '%s\n' "$frames"
  echo "make bench-frames printed no count for the hit row and its fastHit" >&2
  exit 1
fi

step "fuzzing (bounded, one target at a time)"
# Each target runs a number of inputs, about 20 s on the development machine, not a duration: with a
# duration, Go 1.26's fuzzing coordinator can fail a run that found nothing with a bare "context
# deadline exceeded" when its deadline races a worker (golang/go#75804, fixed in Go 1.27).
# FUZZTIME, if set (a count such as 1000x, or a duration), applies to every target.
for run in FuzzParseClaims:50000x FuzzTokenExtract:80000x FuzzNewConfig:15000x; do
  target="${run%%:*}" budget="${FUZZTIME:-${run#*:}}"
  echo "-- $target for $budget"
  go test -run='^$' -fuzz="^${target}\$" -fuzztime="$budget" .
done

step "end-to-end: npm ci for the IdP"
(cd e2e/idp && npm ci --no-audit --no-fund)

step "end-to-end: Traefik v3.7.13 binary"
TRAEFIK_BIN="$(scripts/build-traefik.sh)"
export TRAEFIK_BIN
echo "using $TRAEFIK_BIN"

step "end-to-end: IdP smoke tests"
(cd e2e/idp && npm test)

step "demo: the README's demo command, started, checked (200/401/403) and stopped"
TRAEFIK_PORT=18080 TRAEFIK_PING_PORT=18082 IDP_PORT=19090 BACKEND_PORT=19091 make -C demo smoke

step "end-to-end: the minimal Kubernetes API server's own tests"
(cd e2e/kubeapi && go vet ./... && go test -race -count=1 ./...)

step "end-to-end: real Traefik + node-oidc-provider (file provider and kubernetesCRD provider)"
(cd e2e && go vet ./... && go test -count=1 -timeout 20m ./...)
