#!/usr/bin/env bash
# Mutation testing of the security-critical files (make mutation). Not part of CI: a run takes
# tens of minutes on two cores.
#
# gremlins (pinned, installed on first use outside the repository) mutates the files below one
# operator at a time and runs the compiled tests against each mutant; the Yaegi harness is left out
# (-tags nointerp), since it is slow. scripts/mutants then runs the mutants gremlins cannot (the
# conditions of switch cases, constants: Go's coverage profile does not cover them), and prints
# killed/lived per file, leaving out the mutants docs/mutation.md lists as equivalent.
#
# Environment: MUTATION_OUT (default: a temp dir) keeps gremlins' JSON results; MUTATION_FILES
# (space-separated) mutates only those of the targets.
set -euo pipefail
cd "$(dirname "$0")/.."

GREMLINS_VERSION="v0.6.0"
ALL_TARGETS="tokensource.go fastpath.go introspection.go verdict.go cache.go idpclient.go guard.go clientauth.go config.go headers.go tlsconfig.go files.go fileproblems.go registry.go claims.go claimsparse.go revocation.go sharedcache.go"
# MUTATION_FILES (default: all of the above) narrows a run to some of them.
read -r -a TARGETS <<<"${MUTATION_FILES:-${ALL_TARGETS}}"

# The Redis tests run against each mutant too; they need redis-server on PATH.
bash scripts/install-redis.sh

cache="${XDG_CACHE_HOME:-$HOME/.cache}/oauthintrospection/gremlins-${GREMLINS_VERSION}"
if [[ ! -x "$cache/gremlins" ]]; then
  echo "installing gremlins ${GREMLINS_VERSION} into $cache" >&2
  GOBIN="$cache" go install "github.com/go-gremlins/gremlins/cmd/gremlins@${GREMLINS_VERSION}"
fi

# Every Go file of the repository that is not a target is excluded.
excludes=(-E '^(bench|demo|e2e|scripts)/' -E '_test\.go$')
for f in *.go; do
  [[ "$f" == *_test.go ]] && continue
  keep=false
  for t in "${TARGETS[@]}"; do [[ "$f" == "$t" ]] && keep=true; done
  $keep || excludes+=(-E "^${f//./\\.}\$")
done

out="${MUTATION_OUT:-$(mktemp -d)}"
mkdir -p "$out"
echo "gremlins results: $out/gremlins.json" >&2
"$cache/gremlins" unleash --tags nointerp --workers 2 --timeout-coefficient 5 \
  --invert-logical --invert-loopctrl "${excludes[@]}" -o "$out/gremlins.json" . >"$out/gremlins.log" 2>&1 || true
grep -E '^(Killed|Mutator coverage|Test efficacy)' "$out/gremlins.log" >&2 || tail -20 "$out/gremlins.log" >&2

cd scripts/mutants
go run . -repo ../.. -results "$out/gremlins.json" -equivalent ../../docs/mutation.md "${TARGETS[@]}"
