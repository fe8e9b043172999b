#!/usr/bin/env bash
# make bench-fill: Traefik's resident memory with the plugin's cache full.
#
# A real Traefik v3.7.13 runs the plugin on two routes whose caches hold at most 10,000 and
# FILL_ENTRIES (1,000,000) answers. A new valid token per request (wrk's fresh mode) fills each
# cache through the real miss path; bench/fastidp answers every token active, so that Traefik
# bounds the rate. The script reads Traefik's VmRSS and Go's live heap (HeapAlloc right after a
# forced GC, from Traefik's pprof with api.debug) before, with the small cache full and with the
# large one full, and prints one table. Every token is introspected exactly once, which the IdP's
# count proves; every answer must be a 200. Takes about 8 minutes for 1,000,000 entries.
#
# Environment:
#   FILL_ENTRIES  entries of the large cache [1000000]
#   FILL_CHUNK    seconds of each wrk run while filling [30]
#   BENCH_KEEP    if set, keep the work directory
set -euo pipefail

LIB_TAG="fill"
KEEP_WORK="${BENCH_KEEP:-}"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ENTRIES="${FILL_ENTRIES:-1000000}"
CHUNK="${FILL_CHUNK:-30}"
CONNS=32
# 375 bytes charged per entry of this answer (docs/performance.md): maxBytes leaves room for all.
MAX_BYTES=$((ENTRIES * 512))

require_tools
setup_common fill
(cd "${BENCH_DIR}" && GOWORK=off go build -o "${WORK}/bin/" ./fastidp)

start_backend
"${PIN_LOAD[@]}" "${WORK}/bin/fastidp" >"${WORK}/idp.out" 2>"${WORK}/idp.log" &
IDP_PID=$!
PIDS+=("${IDP_PID}")
wait_for 30 "${BACKEND_PID}" "the backend" http_is 200 "http://127.0.0.1:${BACKEND_PORT}/"
wait_for 30 "${IDP_PID}" "the IdP" grep -q '^IDP_READY ' "${WORK}/idp.out"
IDP_URL="$(awk '/^IDP_READY / {print $2; exit}' "${WORK}/idp.out")"

layout_our_plugin
WEB_PORT="$(free_port)"
API_PORT="$(free_port)" # api.debug: pprof's heap page gives the live heap
WEB="http://127.0.0.1:${WEB_PORT}"
write_static_config "${WORK}/traefik.yml" "${WEB_PORT}" oAuthIntrospection="${MODULE}"
fill_mw() { # fill_mw NAME MAX_ENTRIES MAX_BYTES
  cat <<EOF
    $1:
      plugin:
        oAuthIntrospection:
          tokenSource: {header: Authorization, headerAuthScheme: Bearer}
          clientConfig: {url: "${IDP_URL}/introspect", clientId: rs-basic, clientSecret: rs-basic-secret}
          forwardHeaders: {Group: grp, Expires-At: exp}
          claims: "Equals(\`grp\`, \`admin\`)"
          cache: {ttlSeconds: "3600", maxEntries: "$2", maxBytes: "$3"}
EOF
}
{
  echo "http:"
  echo "  routers:"
  router small /small small
  router large /large large
  echo "  middlewares:"
  fill_mw small 10000 $((10000 * 512))
  fill_mw large "${ENTRIES}" "${MAX_BYTES}"
  backend_service
} >"${WORK}/dynamic.yml"
say "starting Traefik on ${WEB} (CPU 0)"
start_traefik
wait_for 60 "${TRAEFIK_PID}" "Traefik (/small)" http_is 200 "${WEB}/small" -H "Authorization: Bearer ready-small"
wait_for 30 "${TRAEFIK_PID}" "Traefik (/large)" http_is 200 "${WEB}/large" -H "Authorization: Bearer ready-large"

idp_calls() { curl -fsS "${IDP_URL}/count"; }
# live_kib: Traefik's live heap in KiB, read right after the GC the request forces.
live_kib() {
  curl -fsS "http://127.0.0.1:${API_PORT}/debug/pprof/heap?gc=1&debug=1" | awk '/^# HeapAlloc = / {printf "%d", $4 / 1024}'
}

# fill ROUTE COUNT: new tokens on ROUTE until the IdP has answered COUNT more introspections.
# Sets LAST, the prefix of the last wrk run's tokens, whose answers the cache holds.
fill() {
  local route=$1 want=$2 start n=0 out
  start="$(idp_calls)"
  while (( $(idp_calls) - start < want )); do
    n=$((n + 1))
    out="${WORK}/${route}-${n}"
    "${PIN_LOAD[@]}" wrk -t1 -c"${CONNS}" -d"${CHUNK}s" -s "${BENCH_DIR}/wrk.lua" "${WEB}/${route}" \
      -- fresh "${route}-${n}-$$" >"${out}.txt" 2>&1 || { cat "${out}.txt" >&2; die "wrk failed"; }
    grep -q '"non2xx":0,' "${out}.txt" || { cat "${out}.txt" >&2; die "/${route} answered something other than 2xx"; }
    say "/${route}: $(( $(idp_calls) - start )) of ${want} tokens introspected"
    LAST="${route}-${n}-$$"
  done
}

LIVE0="$(live_kib)"
RSS0="$(rss_kib "${TRAEFIK_PID}")"
T0=$(date +%s)
fill small 10000
RSS1="$(rss_kib "${TRAEFIK_PID}")"
LIVE1="$(live_kib)"
fill large "${ENTRIES}"
RSS2="$(rss_kib "${TRAEFIK_PID}")"
LIVE2="$(live_kib)"
T1=$(date +%s)
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {printf "%.0f", (b - a) * 1024 / n}'; }
echo
echo "== Traefik's resident memory with the cache full ($(idp_calls) introspections in $((T1 - T0)) s)"
echo "(VmRSS is read before the forced GC of the live-heap figure; the Go runtime lets the heap grow"
echo " to twice the live heap (GOGC=100) before it collects, and returns freed pages to the OS lazily.)"
echo "| state | Traefik VmRSS | over the start | per entry | live heap | over the start | per entry |"
echo "|---|---|---|---|---|---|---|"
echo "| started, both caches empty | $(mib "${RSS0}") MiB | — | — | $(mib "${LIVE0}") MiB | — | — |"
echo "| maxEntries 10,000, full | $(mib "${RSS1}") MiB | +$(mib $((RSS1 - RSS0))) MiB | $(per "${RSS0}" "${RSS1}" 10000) B | $(mib "${LIVE1}") MiB | +$(mib $((LIVE1 - LIVE0))) MiB | $(per "${LIVE0}" "${LIVE1}" 10000) B |"
echo "| and maxEntries ${ENTRIES}, full | $(mib "${RSS2}") MiB | +$(mib $((RSS2 - RSS0))) MiB | $(per "${RSS1}" "${RSS2}" "${ENTRIES}") B | $(mib "${LIVE2}") MiB | +$(mib $((LIVE2 - LIVE0))) MiB | $(per "${LIVE1}" "${LIVE2}" "${ENTRIES}") B |"

# The cache still answers: a token of the last run is a hit, without an IdP call. Requests that
# wrk gave up on at the end of its run may still be finishing their IdP calls (an introspection
# outlives a cancelled leader), so the count must first stand still.
settled() { local a; a="$(idp_calls)"; sleep 0.5; [[ "$(idp_calls)" == "${a}" ]]; }
wait_for 30 "${TRAEFIK_PID}" "the IdP's count to settle" settled
before="$(idp_calls)"
http_is 200 "${WEB}/large" -H "Authorization: Bearer fresh-${LAST}-100" || die "a cached token of /large was refused"
[[ "$(idp_calls)" == "${before}" ]] || die "a cached token of /large cost an IdP call"
