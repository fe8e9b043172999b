#!/usr/bin/env bash
# Load benchmark of the oAuthIntrospection plugin inside a real Traefik, on 127.0.0.1.
#
#   bash bench/run.sh          (or: make bench)
#
# From a clean checkout it installs what it needs (wrk, the IdP's npm packages, the cached Traefik
# binary), runs the Go micro-benchmarks, then measures with wrk:
#
#   1  Traefik with no middleware (the ceiling)
#   2  a pass-through Yaegi plugin that only calls next (the floor of any plugin)
#   3  our plugin, cache hits (one valid token)
#   4  our plugin, a new valid token for every request (cache misses)
#   5  the IdP's own introspection endpoint, measured directly
#   6  our plugin, a new bogus token for every request (a 401 after an IdP call)
#   7  our plugin, a malformed header ("Bearer Bearer T": a 401 without an IdP call)
#   8  least-hit: the least a correct cache hit can do, as a plugin (the floor of a hit)
#   9  least-miss: the least a correct introspection can do, as a plugin (the floor of a miss)
#  10  least-full, cache hits: the least a correct plugin with our features can do for row 3's
#      configuration, written in as few functions as Go allows
#  11  least-full, a new valid token for every request: the same, for row 4
#  12  our plugin, misses as row 4, over HTTPS with clientConfig.tls.ca and clientSecretFile
#      (files: every call checks whether a re-read is due, one is every 5 s)
#  13  our plugin, misses as row 4, with private_key_jwt (a new ES256 assertion on every call)
#   +  a flood of random bogus tokens against a negative-caching route (Traefik's memory)
#
# and prints one table. Rows 8-11 are the plugins of bench/least, which BenchmarkTraefikPath runs
# too: rows 8 and 9 are what no rewrite of the hit and miss paths could go under with this
# interpreter; rows 10 and 11 what a rewrite of ours into one or two functions could reach. Every row is measured BENCH_REPEATS times, in rounds (rows 1-7, then again),
# so that a drift of the machine reaches every row alike; the table shows min/median/max.
# Traefik runs alone on CPU 0; wrk, the IdP and the backend share CPU 1.
# The setup it shares with bench/chaos.sh (processes, readiness, Traefik's configuration) is in
# bench/lib.sh.
#
# The IdP of the rows that introspect (4, 5, 6 and 9) and of the flood is bench/fastidp by default
# (BENCH_IDP=fast): a Go endpoint that answers at once, every token active (a second one, every
# token inactive, for row 6 and the flood), so that Traefik's core, not the IdP, bounds those rows
# as it bounds the others, and their CPU per request is measured at saturation like the floor's.
# node-oidc-provider on the load core answers slower than the plugin asks; Traefik then idles
# part of the time, and a process that idles spends more CPU per request (wake-ups, polling).
# BENCH_IDP=node runs them against node-oidc-provider instead, as the rounds before did. Rows 3 and
# 7 always use node-oidc-provider (one minted token). Rows 12 and 13 always use a fastidp of their
# own, which checks the client's credentials (the Basic secret, or the assertion's signature) and
# answers 401 to a call without them.
#
# Row 4 sends a token Traefik has never seen on every request, with the default cache: each one
# costs a real introspection plus a cache store (and, past maxEntries, an eviction). One token
# with ttlSeconds 0 would not be a miss per request: the plugin coalesces concurrent
# introspections of the same token. With fastidp the tokens are numbered (wrk's fresh mode); with
# node they are pre-minted and cycled, the list sized for the run, and the table says if it ever
# wrapped around.
#
# Environment (defaults in brackets):
#   BENCH_DURATION     seconds per measured row [10]
#   BENCH_REPEATS      measured runs of each row [3]
#   BENCH_WARMUP       seconds of warm-up before each row [3]
#   BENCH_CONNECTIONS  wrk connections [32]
#   BENCH_IDP          fast (bench/fastidp) or node: the IdP of rows 4, 5, 6, 9 and the flood [fast]
#   BENCH_MISS_TOKENS  with BENCH_IDP=node, tokens for each of row 4's measured runs
#                      [BENCH_DURATION * 4000]
#   BENCH_PROFILE      if 0, skip the CPU and allocation profiles of a hit and a miss taken from
#                      Traefik's pprof after the rows [1]
#   BENCH_KEEP         if set, keep the work directory (configs, logs, tokens); it is always kept
#                      when the run fails
#   TRAEFIK_BIN        a Traefik binary to use instead of scripts/build-traefik.sh's
set -euo pipefail

LIB_TAG=bench
KEEP_WORK="${BENCH_KEEP:-}"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # BENCH_DIR, REPO, say, die, cleanup traps, helpers
DURATION="${BENCH_DURATION:-10}"
REPEATS="${BENCH_REPEATS:-3}"
WARMUP="${BENCH_WARMUP:-3}"
CONNS="${BENCH_CONNECTIONS:-32}"
IDP_KIND="${BENCH_IDP:-fast}"
[[ "${IDP_KIND}" == fast || "${IDP_KIND}" == node ]] || die "BENCH_IDP must be fast or node, not ${IDP_KIND}"
MISS_TOKENS="${BENCH_MISS_TOKENS:-$((DURATION * 4000))}"
WARM_TOKENS=3000 # row 4's warm-up uses its own tokens, never reused in the measured run

# ---------------------------------------------------------------------------------------------
# Prerequisites.

require_tools
setup_common oauthintrospection-bench

# ---------------------------------------------------------------------------------------------
# Go micro-benchmarks first, while nothing else runs (compiled and interpreted by Yaegi).

say "go test -bench (compiled, and interpreted by Yaegi as Traefik calls it)"
(cd "${REPO}" && go test -run '^$' -bench 'BenchmarkCacheHit$|BenchmarkTraefikPath' \
  -benchtime 5000x . >"${WORK}/gobench.txt" 2>&1) || { cat "${WORK}/gobench.txt" >&2; die "go test -bench failed"; }

# ---------------------------------------------------------------------------------------------
# Helpers.

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime; comm has no spaces
core_ticks() { awk -v c="cpu$1" '$1 == c {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat; } # busy idle
# busy_pct "BUSY0 IDLE0" "BUSY1 IDLE1": how busy a core was between two core_ticks samples.
busy_pct() {
  awk -v a="$1" -v b="$2" 'BEGIN {split(a, x, " "); split(b, y, " "); db = y[1] - x[1]; di = y[2] - x[2]
    printf "%.0f%%", (db + di > 0 ? 100 * db / (db + di) : 0)}'
}
TICKS="$(getconf CLK_TCK)"

# field JSON NAME: a numeric field of our WRKJSON line.
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }

# run_wrk OUT SECONDS URL [wrk args...] -- [script args...]: one wrk run on CPU 1; WRKJSON to OUT.
run_wrk() {
  local out=$1 secs=$2 url=$3
  shift 3
  local opts=() sargs=()
  while (($#)) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
  (($#)) && shift
  sargs=("$@")
  "${PIN_LOAD[@]}" wrk -t1 -c"${CONNS}" -d"${secs}s" --latency -s "${BENCH_DIR}/wrk.lua" "${opts[@]}" \
    "${url}" -- "${sargs[@]}" >"${out}.txt" 2>&1 || { cat "${out}.txt" >&2; die "wrk failed"; }
  grep '^WRKJSON ' "${out}.txt" | sed 's/^WRKJSON //' >"${out}"
  [[ -s "${out}" ]] || { cat "${out}.txt" >&2; die "no WRKJSON line in wrk's output"; }
}

# ---------------------------------------------------------------------------------------------
# Backend and IdP, on CPU 1.

start_backend
start_idp "${REPO}/e2e/idp"

wait_for 30 "${BACKEND_PID}" "the backend" http_is 200 "http://127.0.0.1:${BACKEND_PORT}/"
wait_for 60 "${IDP_PID}" "the IdP" grep -q '^IDP_READY ' "${WORK}/idp.out"
IDP_URL="$(awk '/^IDP_READY / {print $2; exit}' "${WORK}/idp.out")"
INTROSPECT_URL="${IDP_URL}/token/introspection"
# MISS_URL answers rows 4, 5 and 9; BOGUS_URL row 6 and the flood.
MISS_URL="${INTROSPECT_URL}" BOGUS_URL="${INTROSPECT_URL}"
if [[ "${IDP_KIND}" == fast ]]; then
  start_fastidp active
  MISS_URL="${FASTIDP_URL}"
  start_fastidp inactive -inactive
  BOGUS_URL="${FASTIDP_URL}"
  MISS_TOKENS=0 # row 4 numbers its tokens
fi
# Rows 12 and 13: their IdPs and the files the plugin reads (the CA, the secret, the signing key).
FILES="${WORK}/files"
mkdir -m 700 "${FILES}"
printf '%s\n' 'rs-files-secret' >"${FILES}/secret"
start_fastidp files -tls-dir "${FILES}" -basic rs-files:rs-files-secret
FILES_URL="${FASTIDP_URL}"
start_fastidp jwt -jwt-key "${FILES}/jwt.pem"
JWT_URL="${FASTIDP_URL}"
RS_BASIC="$(printf '%s' 'rs-basic:rs-basic-secret' | base64)"

# Tokens: line 1 is the hot token (row 3), the next WARM_TOKENS warm row 4 up, the rest are row 4's,
# MISS_TOKENS for each repeat.
# The miss profile takes fresh ones after those.
PROFILE_TOKENS=$((12 * 2000))
[[ "${IDP_KIND}" == node ]] || PROFILE_TOKENS=0
NTOK=$((1 + WARM_TOKENS + MISS_TOKENS * REPEATS + PROFILE_TOKENS))
say "minting ${NTOK} tokens (app-admin, client_credentials)"
"${WORK}/bin/mint" -url "${IDP_URL}/token" -n "${NTOK}" -c 16 >"${WORK}/tokens.txt" 2>"${WORK}/mint.log" \
  || { cat "${WORK}/mint.log" >&2; die "minting failed"; }
cat "${WORK}/mint.log" >&2
HOT_TOKEN="$(head -n 1 "${WORK}/tokens.txt")"

# ---------------------------------------------------------------------------------------------
# Traefik: plugins-local copies, static and dynamic configuration.

layout_our_plugin
layout_plugin "${PASS_MODULE}" "${REPO}/e2e/testdata/passthrough" passthrough.go go.mod .traefik.yml
layout_plugin github.com/tokengate/leasthit "${BENCH_DIR}/least/hit" leasthit.go go.mod .traefik.yml
layout_plugin github.com/tokengate/leastmiss "${BENCH_DIR}/least/miss" leastmiss.go go.mod .traefik.yml
layout_plugin github.com/tokengate/leastfull "${BENCH_DIR}/least/full" leastfull.go go.mod .traefik.yml

WEB_PORT="$(free_port)"
API_PORT="$(free_port)" # pprof (api.debug) for the profiles after the rows
WEB="http://127.0.0.1:${WEB_PORT}"
write_static_config "${WORK}/traefik.yml" "${WEB_PORT}" oAuthIntrospection="${MODULE}" passthrough="${PASS_MODULE}" \
  leasthit=github.com/tokengate/leasthit leastmiss=github.com/tokengate/leastmiss leastfull=github.com/tokengate/leastfull

# The Hub manifest of the README; auth-miss is the same under another name (its own cache), and
# flood adds negative caching.
auth_mw() { # auth_mw NAME URL [cache yaml]
  cat <<EOF
    $1:
      plugin:
        oAuthIntrospection:
          tokenSource: {header: Authorization, headerAuthScheme: Bearer}
          clientConfig:
            url: "$2"
            headers: {Authorization: "Basic ${RS_BASIC}"}
          forwardHeaders: {Group: grp, Expires-At: exp}
          claims: "Equals(\`grp\`, \`admin\`)"
EOF
  [[ -z "${3:-}" ]] || printf '          cache: %s\n' "$3"
}
# client_mw NAME URL CLIENT-YAML: auth's manifest with the clientConfig fields of rows 12 and 13
# (one flow mapping, after url) instead of its Authorization header.
client_mw() {
  cat <<EOF
    $1:
      plugin:
        oAuthIntrospection:
          tokenSource: {header: Authorization, headerAuthScheme: Bearer}
          clientConfig: {url: "$2", $3}
          forwardHeaders: {Group: grp, Expires-At: exp}
          claims: "Equals(\`grp\`, \`admin\`)"
EOF
}
{
  echo "http:"
  echo "  routers:"
  router none /none
  router pass /pass passthrough
  router auth /auth auth
  router auth-miss /auth-miss auth-miss
  router auth-bogus /auth-bogus auth-bogus
  router flood /flood flood
  router least-hit /least-hit least-hit
  router least-miss /least-miss least-miss
  router least-full /least-full least-full
  router least-full-miss /least-full-miss least-full-miss
  router auth-files /auth-files auth-files
  router auth-jwt /auth-jwt auth-jwt
  echo "  middlewares:"
  echo "    passthrough:"
  echo "      plugin:"
  echo "        passthrough: {}"
  echo "    least-hit:"
  echo "      plugin:"
  echo "        leasthit: {token: \"${HOT_TOKEN}\", group: admin}"
  echo "    least-miss:"
  echo "      plugin:"
  echo "        leastmiss: {url: \"${MISS_URL}\"}"
  # least-full has the configuration of auth and auth-miss: the same IdPs and Authorization.
  echo "    least-full:"
  echo "      plugin:"
  echo "        leastfull: {url: \"${INTROSPECT_URL}\", authorization: \"Basic ${RS_BASIC}\"}"
  echo "    least-full-miss:"
  echo "      plugin:"
  echo "        leastfull: {url: \"${MISS_URL}\", authorization: \"Basic ${RS_BASIC}\"}"
  auth_mw auth "${INTROSPECT_URL}"
  auth_mw auth-miss "${MISS_URL}"
  auth_mw auth-bogus "${BOGUS_URL}"
  auth_mw flood "${BOGUS_URL}" '{negativeTtlSeconds: "60", maxEntries: "10000"}'
  client_mw auth-files "${FILES_URL}" "clientId: rs-files, clientSecretFile: \"${FILES}/secret\", tls: {ca: \"${FILES}/ca.pem\"}"
  client_mw auth-jwt "${JWT_URL}" "clientId: rs-jwt, authMethod: private_key_jwt, privateKeyFile: \"${FILES}/jwt.pem\""
  backend_service
} >"${WORK}/dynamic.yml"

say "starting Traefik on ${WEB} (CPU 0)"
start_traefik

# Ready when every route answers as it should (the plugins are interpreted at start).
BEARER=(-H "Authorization: Bearer ${HOT_TOKEN}")
wait_for 60 "${TRAEFIK_PID}" "Traefik (/none)" http_is 200 "${WEB}/none"
wait_for 30 "${TRAEFIK_PID}" "Traefik (/pass)" http_is 200 "${WEB}/pass"
wait_for 30 "${TRAEFIK_PID}" "Traefik (/auth)" http_is 200 "${WEB}/auth" "${BEARER[@]}"
wait_for 30 "${TRAEFIK_PID}" "Traefik (/auth-miss)" http_is 200 "${WEB}/auth-miss" "${BEARER[@]}"
wait_for 30 "${TRAEFIK_PID}" "Traefik (/auth-bogus)" http_is 401 "${WEB}/auth-bogus" -H "Authorization: Bearer bogus-ready"
wait_for 30 "${TRAEFIK_PID}" "Traefik (/least-hit)" http_is 200 "${WEB}/least-hit" "${BEARER[@]}"
wait_for 30 "${TRAEFIK_PID}" "Traefik (/least-miss)" http_is 200 "${WEB}/least-miss" "${BEARER[@]}"
wait_for 30 "${TRAEFIK_PID}" "Traefik (/least-full)" http_is 200 "${WEB}/least-full" "${BEARER[@]}"
wait_for 30 "${TRAEFIK_PID}" "Traefik (/least-full-miss)" http_is 200 "${WEB}/least-full-miss" "${BEARER[@]}"
wait_for 30 "${TRAEFIK_PID}" "Traefik (/flood)" http_is 401 "${WEB}/flood" -H "Authorization: Bearer bogus-ready"
wait_for 30 "${TRAEFIK_PID}" "Traefik (/auth-files)" http_is 200 "${WEB}/auth-files" "${BEARER[@]}"
wait_for 30 "${TRAEFIK_PID}" "Traefik (/auth-jwt)" http_is 200 "${WEB}/auth-jwt" "${BEARER[@]}"
http_is 401 "${WEB}/auth" || die "/auth without a token should answer 401"
RSS_START="$(rss_kib "${TRAEFIK_PID}")"
# Background noise: how busy the cores are for 1 s while everything of ours idles.
A0="$(core_ticks 0)" B0="$(core_ticks 1)"
sleep 1
IDLE_BUSY="CPU 0 $(busy_pct "${A0}" "$(core_ticks 0)"), CPU 1 $(busy_pct "${B0}" "$(core_ticks 1)")"
LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------
# The rows. Each: a warm-up run, then the measured run; Traefik's CPU and RSS around it.

FIRST_MISS=$((2 + WARM_TOKENS))
TOKS="${WORK}/tokens.txt"
ROWS=(1 2 8 10 3 9 11 4 12 13 5 6 7) # the table's order: each floor above its row
declare -A SETUP RESULT RSS CPUREQ CORE0 CORE1
SETUP[1]="Traefik, no middleware (ceiling)"
SETUP[2]="pass-through Yaegi plugin (floor)"
SETUP[3]="our plugin, cache hits (1 token)"
SETUP[4]="our plugin, a new token per request (misses)"
SETUP[5]="IdP introspection endpoint, direct"
SETUP[6]="our plugin, a new bogus token per request"
SETUP[7]="our plugin, malformed header (no IdP call)"
SETUP[8]="least-hit plugin (the floor of a hit)"
SETUP[9]="least-miss plugin (the floor of a miss)"
SETUP[10]="least-full plugin, cache hits (1 token)"
SETUP[11]="least-full plugin, a new token per request"
SETUP[12]="misses, HTTPS, CA and secret in files"
SETUP[13]="misses, private_key_jwt (ES256)"

# row N R URL: repeat R of row N: a warm-up with wrk options OPTS and script arguments WARM, then
# the measured run with OPTS and MEAS. Records the result, Traefik's RSS after the run, and during
# the run: how busy each core was and Traefik's CPU time per request. CPU 0 busier than Traefik
# means something else ran there; CPU 1 near 100% means the load side (wrk, IdP, backend) was a
# bound too, not Traefik alone.
row() {
  local n=$1 r=$2 url=$3 t0 t1 a0 a1 b0 b1
  say "row ${n}, run ${r}/${REPEATS}: ${SETUP[$n]} (warm-up ${WARMUP}s, run ${DURATION}s)"
  run_wrk "${WORK}/warm${n}.${r}.json" "${WARMUP}" "${url}" "${OPTS[@]}" -- "${WARM[@]}"
  t0="$(cpu_ticks "${TRAEFIK_PID}")" a0="$(core_ticks 0)" b0="$(core_ticks 1)"
  run_wrk "${WORK}/row${n}.${r}.json" "${DURATION}" "${url}" "${OPTS[@]}" -- "${MEAS[@]}"
  t1="$(cpu_ticks "${TRAEFIK_PID}")" a1="$(core_ticks 0)" b1="$(core_ticks 1)"
  RESULT[$n,$r]="$(cat "${WORK}/row${n}.${r}.json")"
  RSS[$n]="$(rss_kib "${TRAEFIK_PID}")"
  CPUREQ[$n,$r]="$(awk -v d=$((t1 - t0)) -v hz="${TICKS}" -v q="$(field "${RESULT[$n,$r]}" requests)" \
    'BEGIN {printf "%.1f", (q > 0 ? 1e6 * d / hz / q : 0)}')"
  CORE0[$n,$r]="$(busy_pct "${a0}" "${a1}")" CORE1[$n,$r]="$(busy_pct "${b0}" "${b1}")"
}
for ((r = 1; r <= REPEATS; r++)); do
  OPTS=() WARM=(plain) MEAS=(plain)
  row 1 "$r" "${WEB}/none"
  row 2 "$r" "${WEB}/pass"
  OPTS=(-H "Authorization: Bearer ${HOT_TOKEN}")
  row 3 "$r" "${WEB}/auth"
  # Row 4: warm-up tokens and each run's tokens are disjoint, and none was ever sent to /auth-miss
  # before (the warm-up tokens of later runs are hits by then, which only warms less).
  OPTS=() WARM=(bearer "${TOKS}" 2 "${WARM_TOKENS}")
  MEAS=(bearer "${TOKS}" $((FIRST_MISS + (r - 1) * MISS_TOKENS)) "${MISS_TOKENS}")
  [[ "${IDP_KIND}" == node ]] || WARM=(fresh "warm${r}-$$") MEAS=(fresh "run${r}-$$")
  row 4 "$r" "${WEB}/auth-miss"
  # Row 5: wrk against the IdP itself, as the plugin calls it (Traefik idles).
  OPTS=(-H "Authorization: Basic ${RS_BASIC}") WARM=(introspect "${TOKS}" 2 "${WARM_TOKENS}")
  MEAS=(introspect "${TOKS}" 2 $((NTOK - 1)))
  row 5 "$r" "${MISS_URL}"
  # Row 6: a bogus token never sent before on every request, on a route without negative caching:
  # each is an introspection answered inactive, then a 401.
  OPTS=() WARM=(flood "warm${r}-${RANDOM}-$$") MEAS=(flood "run${r}-${RANDOM}-$$")
  row 6 "$r" "${WEB}/auth-bogus"
  # Row 7: one malformed header, refused before any cache or IdP work.
  OPTS=(-H "Authorization: Bearer Bearer ${HOT_TOKEN}") WARM=(statuses) MEAS=(statuses)
  row 7 "$r" "${WEB}/auth"
  # Rows 8 and 9: the floors of a hit and of a miss. least-miss caches nothing, so every request
  # is an introspection whichever token it brings, and its token list may wrap.
  OPTS=(-H "Authorization: Bearer ${HOT_TOKEN}") WARM=(plain) MEAS=(plain)
  row 8 "$r" "${WEB}/least-hit"
  OPTS=() WARM=(bearer "${TOKS}" 2 "${WARM_TOKENS}") MEAS=(bearer "${TOKS}" 2 $((NTOK - 1)))
  [[ "${IDP_KIND}" == node ]] || WARM=(fresh "warm${r}-$$") MEAS=(fresh "run${r}-$$")
  row 9 "$r" "${WEB}/least-miss"
  # Rows 10 and 11: least-full, as rows 3 and 4. It has a cache of its own, so row 4's tokens
  # (with node) are misses for it too.
  OPTS=(-H "Authorization: Bearer ${HOT_TOKEN}") WARM=(plain) MEAS=(plain)
  row 10 "$r" "${WEB}/least-full"
  OPTS=() WARM=(bearer "${TOKS}" 2 "${WARM_TOKENS}")
  MEAS=(bearer "${TOKS}" $((FIRST_MISS + (r - 1) * MISS_TOKENS)) "${MISS_TOKENS}")
  [[ "${IDP_KIND}" == node ]] || WARM=(fresh "full-warm${r}-$$") MEAS=(fresh "full-run${r}-$$")
  row 11 "$r" "${WEB}/least-full-miss"
  # Rows 12 and 13: row 4 with other client configurations; their IdPs answer any token, so the
  # tokens are always numbered.
  OPTS=() WARM=(fresh "files-warm${r}-$$") MEAS=(fresh "files-run${r}-$$")
  row 12 "$r" "${WEB}/auth-files"
  OPTS=() WARM=(fresh "jwt-warm${r}-$$") MEAS=(fresh "jwt-run${r}-$$")
  row 13 "$r" "${WEB}/auth-jwt"
done

# Profiles: Traefik's own pprof (api.debug) while wrk drives hits, then misses, then malformed
# headers; the top of each is printed with the report, the profiles are kept in the work directory.
PROFILES=()
if [[ "${BENCH_PROFILE:-1}" != 0 ]]; then
  PPROF="http://127.0.0.1:${API_PORT}/debug/pprof"
  # profile NAME URL SCRIPT-ARGS...: 8 s CPU and allocation profiles in the middle of a 12 s wrk run.
  profile() {
    local name=$1 url=$2
    shift 2
    say "profile: ${name}"
    run_wrk "${WORK}/prof-${name}.json" 12 "${url}" "${OPTS[@]}" -- "$@" &
    local wrk_pid=$!
    sleep 2 # let wrk reach its steady state before sampling
    curl -fsS -o "${WORK}/${name}.cpu.pprof" "${PPROF}/profile?seconds=8" &
    curl -fsS -o "${WORK}/${name}.allocs.pprof" "${PPROF}/allocs?seconds=8" || die "no allocation profile from ${PPROF}"
    wait "$!" || die "no CPU profile from ${PPROF}"
    wait "${wrk_pid}" || die "wrk failed during the ${name} profile"
    PROFILES+=("${name}")
  }
  OPTS=(-H "Authorization: Bearer ${HOT_TOKEN}")
  profile least-hit "${WEB}/least-hit" plain
  profile hit "${WEB}/auth" plain
  OPTS=()
  if [[ "${IDP_KIND}" == node ]]; then
    profile least-miss "${WEB}/least-miss" bearer "${TOKS}" 2 $((NTOK - 1))
  else
    profile least-miss "${WEB}/least-miss" fresh "least-profile-$$"
  fi
  OPTS=()
  if [[ "${IDP_KIND}" == node ]]; then
    profile miss "${WEB}/auth-miss" bearer "${TOKS}" $((FIRST_MISS + REPEATS * MISS_TOKENS)) "${PROFILE_TOKENS}"
  else
    profile miss "${WEB}/auth-miss" fresh "profile-$$"
    profile least-full-miss "${WEB}/least-full-miss" fresh "full-profile-$$"
  fi
  OPTS=(-H "Authorization: Bearer Bearer ${HOT_TOKEN}")
  profile malformed "${WEB}/auth" statuses
fi

# Flood: a new bogus token on every request, no warm-up; Traefik's RSS before and after.
say "flood: random bogus tokens on /flood for ${DURATION}s"
FLOOD_RSS_BEFORE="$(rss_kib "${TRAEFIK_PID}")"
run_wrk "${WORK}/flood.json" "${DURATION}" "${WEB}/flood" -- flood "${RANDOM}${RANDOM}-$$"
FLOOD="$(cat "${WORK}/flood.json")"
FLOOD_RSS_AFTER="$(rss_kib "${TRAEFIK_PID}")"
kill -0 "${TRAEFIK_PID}" 2>/dev/null || die "Traefik died during the run; see ${WORK}/traefik.out"

# ---------------------------------------------------------------------------------------------
# Report.

mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
rps() { awk -v r="$(field "$1" requests)" -v us="$(field "$1" duration_us)" 'BEGIN {printf "%.0f", r / (us / 1e6)}'; }
ms() { awk -v us="$(field "$1" "$2")" 'BEGIN {printf "%.2f ms", us / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'; }
errs() { awk -v a="$(field "$1" connect_errors)" -v b="$(field "$1" read_errors)" -v c="$(field "$1" write_errors)" \
  -v d="$(field "$1" timeout_errors)" 'BEGIN {print a + b + c + d}'; }

echo
echo "== Machine"
echo "CPUs:     ${NCPU} x $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
echo "Memory:   $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "Kernel:   $(uname -sr)"
echo "Noise:    ${IDLE_BUSY} busy during 1 s with our processes idle, just before row 1;"
echo "          load average ${LOADAVG_START} before the rows, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "Traefik:  $("${TRAEFIK}" version 2>/dev/null | awk '/^Version:/ {v=$2} /^Go version:/ {g=$3} END {print v " (" g ")"}')"
echo "Tools:    $(go version | awk '{print $3}'), node $(node --version), $(wrk --version 2>&1 | head -n 1 | awk '{print $1, $2}')"
echo "Layout:   Traefik pinned to CPU 0 (taskset -c 0, so GOMAXPROCS=1); wrk (-t1 -c${CONNS}), the IdP"
echo "          (node) and the Go backend share CPU 1. Each row: ${WARMUP}s warm-up, ${DURATION}s measured."
if [[ "${IDP_KIND}" == fast ]]; then
  echo "IdP:      rows 4, 5, 6, 9 and the flood: bench/fastidp (Go, answers at once; BENCH_IDP=fast);"
  echo "          rows 3 and 7: node-oidc-provider"
else
  echo "IdP:      node-oidc-provider for rows 3 to 11 (BENCH_IDP=node)"
fi
echo "          rows 12 and 13: a fastidp each, over HTTPS (HTTP/1.1, as row 4) with a Basic secret, and checking"
echo "          ES256 assertions"
echo
echo "== Go micro-benchmark (go test -bench; unpinned, run before the services start)"
echo "BenchmarkCacheHit is compiled; BenchmarkTraefikPath runs the plugin interpreted by Yaegi, built and"
echo "called from compiled code as Traefik does, with the same rows (least-hit: the least a hit can do)."
awk '$1 ~ /^Benchmark(CacheHit|TraefikPath)/ { ns = ""; al = ""
       for (i = 2; i <= NF; i++) { if ($i == "ns/op") ns = $(i-1); if ($i == "allocs/op") al = $(i-1) }
       name = $1; sub(/-[0-9]+$/, "", name); printf "%-36s %10s ns/op %6s allocs/op\n", name, ns, al }' "${WORK}/gobench.txt"
echo
# stats VALUES...: "min / median / max" of numbers (the median of an even count is the lower one).
stats() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {printf "%s / %s / %s", v[1], v[int((NR + 1) / 2)], v[NR]}'; }
median() { stats "$@" | awk -F' / ' '{print $2}'; }
# of N FIELD: FIELD of every repeat of row N, one per line; rps_of N likewise for req/s.
of() { local r; for ((r = 1; r <= REPEATS; r++)); do field "${RESULT[$1,$r]}" "$2"; done; }
rps_of() { local r; for ((r = 1; r <= REPEATS; r++)); do rps "${RESULT[$1,$r]}"; echo; done; }
cpu_of() { local r; for ((r = 1; r <= REPEATS; r++)); do echo "${CPUREQ[$1,$r]}"; done; }
sum() { awk '{s += $1} END {print s + 0}'; }
echo "== wrk: ${REPEATS} runs of each row, in rounds; min / median / max"
R1="$(median $(rps_of 1))"
FLOOR="$(median $(cpu_of 2))"
printf '| %s | %-44s | %-22s | %9s | %9s | %7s | %-22s | %10s | %-14s | %6s | %11s |\n' row setup "req/s" \
  "p50 (med)" "p99 (med)" "/ row 1" "Traefik CPU us/req" "over floor" "answers" errors "Traefik RSS"
printf '|%s|\n' "-----|----------------------------------------------|------------------------|-----------|-----------|---------|------------------------|------------|----------------|--------|-------------"
for n in "${ROWS[@]}"; do
  cpu="$(median $(cpu_of "$n"))"
  over="$(awk -v c="${cpu}" -v f="${FLOOR}" 'BEGIN {printf "%+.1f", c - f}')"
  [[ "$n" == 5 ]] && cpu="—" over="—"
  [[ "$n" == 5 ]] || cpu="$(stats $(cpu_of "$n"))"
  if [[ "$n" == 6 || "$n" == 7 ]]; then
    answers="$(of "$n" status401 | sum) 401, $(( $(of "$n" status503 | sum) + $(of "$n" status_other | sum) )) other"
  else
    answers="$(( $(of "$n" requests | sum) - $(of "$n" non2xx | sum) )) 2xx, $(of "$n" non2xx | sum) other"
  fi
  errsum=0
  for ((r = 1; r <= REPEATS; r++)); do errsum=$((errsum + $(errs "${RESULT[$n,$r]}"))); done
  printf '| %3s | %-44s | %-22s | %9s | %9s | %7s | %-22s | %10s | %-14s | %6s | %11s |\n' "${n}" \
    "${SETUP[$n]}" "$(stats $(rps_of "$n"))" "$(awk -v us="$(median $(of "$n" p50_us))" 'BEGIN {printf "%.2f ms", us / 1000}')" \
    "$(awk -v us="$(median $(of "$n" p99_us))" 'BEGIN {printf "%.2f ms", us / 1000}')" \
    "$(ratio "$(median $(rps_of "$n"))" "${R1}")" "${cpu}" "${over}" "${answers}" "${errsum}" "$(mib "${RSS[$n]}")"
done
echo "(Traefik CPU us/req: the Traefik process's CPU time per request, the steadiest figure; over floor:"
echo " its median minus row 2's; / row 1: median req/s over row 1's. Row 5 does not use Traefik. CPU 0"
echo " (Traefik's) and CPU 1 (wrk, IdP, backend) were busy, per run:"
for n in "${ROWS[@]}"; do
  line=" row ${n}:"
  for ((r = 1; r <= REPEATS; r++)); do line+=" ${CORE0[$n,$r]}/${CORE1[$n,$r]}"; done
  echo "${line}"
done
echo ")"
echo
echo "row 3 / row 2 (cache hit vs pass-through floor, median req/s): $(ratio "$(median $(rps_of 3))" "$(median $(rps_of 2))")"
echo "row 3 / row 1 (cache hit vs no middleware, median req/s):      $(ratio "$(median $(rps_of 3))" "${R1}")"
echo "row 4 / row 5 (misses vs the IdP's own rate, median req/s):   $(ratio "$(median $(rps_of 4))" "$(median $(rps_of 5))")"
# over N FLOOR: row N's median Traefik CPU per request over row FLOOR's.
over() { awk -v a="$(median $(cpu_of "$1"))" -v b="$(median $(cpu_of "$2"))" 'BEGIN {printf "%+.1f us", a - b}'; }
echo "least-hit over the floor (row 8 - row 2, median CPU/req):       $(over 8 2); the hit over least-hit (row 3 - row 8): $(over 3 8)"
echo "least-miss over the floor (row 9 - row 2, median CPU/req):      $(over 9 2); the miss over least-miss (row 4 - row 9): $(over 4 9)"
echo "least-full over the floor, hits (row 10 - row 2):               $(over 10 2); the hit over least-full (row 3 - row 10): $(over 3 10)"
echo "least-full over the floor, misses (row 11 - row 2):             $(over 11 2); the miss over least-full (row 4 - row 11): $(over 4 11); least-full over least-miss (row 11 - row 9): $(over 11 9)"
# Rows 12 and 13 always use fastidp; with BENCH_IDP=node row 4 does not, and the IdP's speed moves
# Traefik's CPU per request (above), so they are compared only when row 4 used fastidp too.
[[ "${IDP_KIND}" != fast ]] ||
  echo "HTTPS with files over a plain miss (row 12 - row 4):            $(over 12 4); private_key_jwt over a plain miss (row 13 - row 4): $(over 13 4)"
if [[ "${IDP_KIND}" == node ]]; then
  echo "row 4 tokens: ${MISS_TOKENS} distinct per run for at most $(median $(of 4 requests)) requests (median); the lists wrapped $(of 4 wraps | sum) time(s) (0: every request was a miss)"
else
  echo "row 4 tokens: a new numbered token on every request (every request was a miss)"
fi
echo "Traefik RSS: $(mib "${RSS_START}") once ready; after each row's last run as in the table."
echo
# cum_us NAME: "function cumulative-µs-per-request" for every function of profile NAME: its
# cumulative CPU over the requests wrk sent in the profile's 8 s.
cum_us() {
  local res reqs
  res="$(cat "${WORK}/prof-$1.json")"
  reqs="$(awk -v r="$(field "${res}" requests)" -v us="$(field "${res}" duration_us)" 'BEGIN {print r / (us / 1e6) * 8}')"
  go tool pprof -top -cum -nodecount 100000 -unit ms "${TRAEFIK}" "${WORK}/$1.cpu.pprof" 2>/dev/null |
    awk -v n="${reqs}" '/Total samples =/ {t = $0; sub(/.*Total samples = /, "", t); sub(/ms.*/, "", t); printf "TOTAL %.1f\n", t * 1000 / n}
      $4 ~ /ms$/ && $5 ~ /%$/ {c = $4; sub(/ms/, "", c); printf "%s %.1f\n", $6, c * 1000 / n}'
}
if ((${#PROFILES[@]})); then
  echo "== Where Traefik's CPU goes, in µs per request (from the profiles below; cumulative, so the"
  echo "   indented lines are parts of the line above them, and the last three overlap the rest)"
  SPLIT_ROWS=(
    "TOTAL|Traefik, all of it"
    "github.com/traefik/yaegi/stdlib._net_http_Handler.ServeHTTP|the plugin, as Traefik calls it (next included)"
    "net/http/httputil.(*ReverseProxy).ServeHTTP|  next: Traefik's proxy to the backend"
    "reflect.New|  the interpreter's frame slots (reflect.New)"
    "net/http.(*Client).Do|  the IdP exchange, in the request's goroutine"
    "encoding/json.(*Decoder).Decode|  decoding the IdP's answer"
    "runtime.mallocgc|allocating, everywhere"
    "runtime.gcBgMarkWorker|the garbage collector's background work"
    "net/http.(*persistConn).writeLoop|the client connections' write loops (IdP, backend)"
  )
  line="$(printf '%-55s' "")"
  for name in "${PROFILES[@]}"; do line+="$(printf ' %10s' "${name}")"; done
  echo "${line}"
  for name in "${PROFILES[@]}"; do cum_us "${name}" >"${WORK}/${name}.cum"; done
  for entry in "${SPLIT_ROWS[@]}"; do
    fn="${entry%%|*}" label="${entry#*|}"
    line="$(printf '%-55s' "${label}")"
    for name in "${PROFILES[@]}"; do
      line+="$(awk -v f="${fn}" '$1 == f {v = $2} END {printf " %10s", (v == "" ? "0" : v)}' "${WORK}/${name}.cum")"
    done
    echo "${line}"
  done
  echo
fi
for name in "${PROFILES[@]}"; do
  echo "== Profile in Traefik: ${name} (8 s; top by cumulative CPU, then allocation count; kept with BENCH_KEEP)"
  go tool pprof -top -cum -nodecount 25 "${TRAEFIK}" "${WORK}/${name}.cpu.pprof" 2>/dev/null | sed -n '4,30p'
  go tool pprof -top -sample_index alloc_objects -nodecount 12 "${TRAEFIK}" "${WORK}/${name}.allocs.pprof" 2>/dev/null | sed -n '4,17p'
  echo
done
echo "== Flood (memory): a new random bogus token per request on /flood, cache {negativeTtlSeconds: 60, maxEntries: 10000}"
echo "requests: $(field "${FLOOD}" requests) in $(awk -v us="$(field "${FLOOD}" duration_us)" 'BEGIN {printf "%.1f", us / 1e6}')s ($(rps "${FLOOD}") req/s, p50 $(ms "${FLOOD}" p50_us), p99 $(ms "${FLOOD}" p99_us))"
echo "statuses: 401 $(field "${FLOOD}" status401), 503 $(field "${FLOOD}" status503), other $(field "${FLOOD}" status_other); socket errors $(errs "${FLOOD}")"
echo "Traefik RSS: $(mib "${FLOOD_RSS_BEFORE}") before, $(mib "${FLOOD_RSS_AFTER}") after"

# Validity: every row but 6 and 7 must be all 2xx, rows 6 and 7 all 401, no row with socket errors, the flood
# all 401s.
BAD=""
for n in "${ROWS[@]}"; do
  for ((r = 1; r <= REPEATS; r++)); do
    res="${RESULT[$n,$r]}"
    if [[ "$n" == 6 || "$n" == 7 ]]; then
      [[ "$(field "$res" status503)" == 0 && "$(field "$res" status_other)" == 0 && "$(field "$res" status401)" -gt 0 ]] \
        || BAD+=" row ${n} run ${r}: answers other than 401;"
    else
      [[ "$(field "$res" non2xx)" == 0 ]] || BAD+=" row ${n} run ${r}: $(field "$res" non2xx) non-2xx answers;"
    fi
    [[ "$(errs "$res")" == 0 ]] || BAD+=" row ${n} run ${r}: $(errs "$res") socket errors;"
  done
done
[[ "$(of 4 wraps | sum)" == 0 ]] || BAD+=" row 4: token list wrapped (some requests were cache hits; raise BENCH_MISS_TOKENS);"
[[ "$(of 11 wraps | sum)" == 0 ]] || BAD+=" row 11: token list wrapped (some requests were cache hits; raise BENCH_MISS_TOKENS);"
[[ "$(field "${FLOOD}" status503)" == 0 && "$(field "${FLOOD}" status_other)" == 0 ]] || BAD+=" flood: answers other than 401;"
if [[ -s "${WORK}/traefik.log" ]]; then
  BAD+=" Traefik logged errors (first lines above, all in ${WORK}/traefik.log);"
  head -n 5 "${WORK}/traefik.log" >&2
fi
if [[ -n "${BAD}" ]]; then
  echo
  echo "WARNING:${BAD}"
  FAILED=1
  exit 1
fi
