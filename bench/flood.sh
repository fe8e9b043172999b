#!/usr/bin/env bash
# make flood: a flood of random bogus tokens at saturation, and what reaches the IdP.
#
# A real Traefik v3.7.13 (CPU 0) runs the plugin on two routes in front of bench/fastidp, an IdP
# that holds every answer FLOOD_DELAY (50 ms: an IdP under load) and calls every token inactive:
#
#   /bounded    the defaults: clientConfig.maxInFlight 64, inFlightWaitMilliseconds 100
#   /unbounded  maxInFlight 10000, more than any number of connections here: the plugin before
#               the guard, which made one IdP call per new token without bound
#
# Each route gets its own IdP process, so that each IdP's count of the calls it held at once
# belongs to one route. wrk (CPU 1, FLOOD_CONNECTIONS connections) sends a new bogus token on
# every request for FLOOD_SECONDS; a sampler reads Traefik's goroutines (pprof) and resident
# memory every second. The script prints one table and exits non-zero if any request got a 2xx,
# or if the bounded route's IdP ever held more calls at once than the bound.
#
# Environment: FLOOD_SECONDS [15], FLOOD_CONNECTIONS [512], FLOOD_DELAY [50ms], BENCH_KEEP.
set -euo pipefail

LIB_TAG="flood"
KEEP_WORK="${BENCH_KEEP:-}"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECONDS_RUN="${FLOOD_SECONDS:-15}"
CONNS="${FLOOD_CONNECTIONS:-512}"
DELAY="${FLOOD_DELAY:-50ms}"
BOUND=64

require_tools
setup_common flood
(cd "${BENCH_DIR}" && GOWORK=off go build -o "${WORK}/bin/" ./fastidp)
ulimit -n 65536 2>/dev/null || true

start_backend
declare -A IDP_URL=()
for route in bounded unbounded; do
  "${PIN_LOAD[@]}" "${WORK}/bin/fastidp" -delay "${DELAY}" -inactive >"${WORK}/idp-${route}.out" 2>"${WORK}/idp-${route}.log" &
  pid=$!
  PIDS+=("${pid}")
  wait_for 30 "${pid}" "the ${route} IdP" grep -q '^IDP_READY ' "${WORK}/idp-${route}.out"
  IDP_URL[${route}]="$(awk '/^IDP_READY / {print $2; exit}' "${WORK}/idp-${route}.out")"
done
wait_for 30 "${BACKEND_PID}" "the backend" http_is 200 "http://127.0.0.1:${BACKEND_PORT}/"

layout_our_plugin
WEB_PORT="$(free_port)"
API_PORT="$(free_port)" # api.debug: pprof's goroutine page
WEB="http://127.0.0.1:${WEB_PORT}"
write_static_config "${WORK}/traefik.yml" "${WEB_PORT}" oAuthIntrospection="${MODULE}"
flood_mw() { # flood_mw NAME IDP-URL EXTRA-CLIENT-CONFIG
  cat <<EOF
    $1:
      plugin:
        oAuthIntrospection:
          tokenSource: {header: Authorization, headerAuthScheme: Bearer}
          clientConfig: {url: "$2/introspect", clientId: rs-basic, clientSecret: rs-basic-secret$3}
EOF
}
{
  echo "http:"
  echo "  routers:"
  router bounded /bounded bounded
  router unbounded /unbounded unbounded
  echo "  middlewares:"
  flood_mw bounded "${IDP_URL[bounded]}" ""
  flood_mw unbounded "${IDP_URL[unbounded]}" ', maxInFlight: "10000"'
  backend_service
} >"${WORK}/dynamic.yml"
say "starting Traefik on ${WEB} (CPU 0)"
start_traefik
for route in bounded unbounded; do
  wait_for 60 "${TRAEFIK_PID}" "Traefik (/${route})" http_is 401 "${WEB}/${route}" -H "Authorization: Bearer warm-up-${route}"
done

# sampler: once a second, "GOROUTINES RSS-KiB", until stopped.
sampler() {
  while :; do
    echo "$(curl -s --max-time 2 "http://127.0.0.1:${API_PORT}/debug/pprof/goroutine?debug=1" | awk 'NR == 1 {print $NF}') $(rss_kib "${TRAEFIK_PID}")"
    sleep 1
  done
}

field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }
ROWS=()
for route in bounded unbounded; do
  say "flood of /${route}: ${SECONDS_RUN}s, ${CONNS} connections, a new bogus token per request"
  sampler >"${WORK}/samples-${route}.txt" &
  SAMPLER_PID=$!
  PIDS+=("${SAMPLER_PID}")
  "${PIN_LOAD[@]}" wrk -t1 -c"${CONNS}" -d"${SECONDS_RUN}s" --timeout 10s --latency -s "${BENCH_DIR}/wrk.lua" \
    "${WEB}/${route}" -- flood "${route}-${RANDOM}" >"${WORK}/wrk-${route}.txt" 2>&1 \
    || { cat "${WORK}/wrk-${route}.txt" >&2; die "wrk failed"; }
  stop_pid "${SAMPLER_PID}"
  untrack_pid "${SAMPLER_PID}"
  J="$(grep '^WRKJSON ' "${WORK}/wrk-${route}.txt" | sed 's/^WRKJSON //')"
  [[ -n "${J}" ]] || { cat "${WORK}/wrk-${route}.txt" >&2; die "no WRKJSON line in wrk's output"; }
  STATS="$(curl -fsS "${IDP_URL[${route}]}/stats")"
  read -r GMAX RMAX < <(awk '$1 > g {g = $1} $2 > r {r = $2} END {print g + 0, r + 0}' "${WORK}/samples-${route}.txt")
  req="$(field "${J}" requests)" dur="$(field "${J}" duration_us)" n401="$(field "${J}" status401)"
  n503="$(field "${J}" status503)" other="$(field "${J}" status_other)" non2xx="$(field "${J}" non2xx)"
  errs=$(($(field "${J}" connect_errors) + $(field "${J}" read_errors) + $(field "${J}" write_errors) + $(field "${J}" timeout_errors)))
  calls="$(awk '{print $2}' <<<"${STATS}")" most="$(awk '{print $4}' <<<"${STATS}")"
  ROWS+=("$(awk -v r="${route}" -v req="${req}" -v d="${dur}" -v a="${n401}" -v b="${n503}" -v o="${other}" \
    -v p50="$(field "${J}" p50_us)" -v p99="$(field "${J}" p99_us)" -v calls="${calls}" -v most="${most}" \
    -v g="${GMAX}" -v rss="${RMAX}" -v e="${errs}" \
    'BEGIN {printf "| /%-9s | %7.0f | %7d | %7d | %5d | %6d | %8.1f | %8.1f | %9d | %8d | %10d | %8.1f MiB |", r, req / (d / 1e6), a, b, o, e, p50 / 1000, p99 / 1000, calls, most, g, rss / 1024}')")
  passed=$((req - non2xx))
  ((passed == 0)) || die "/${route}: ${passed} requests with bogus tokens got a 2xx"
  if [[ "${route}" == bounded ]] && ((most > BOUND)); then
    die "/bounded: the IdP held ${most} calls at once, more than the bound ${BOUND}"
  fi
done

echo
echo "== Flood of random bogus tokens ($(nproc) x $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo))"
echo "Traefik on CPU 0; wrk -t1 -c${CONNS} ${SECONDS_RUN}s and the IdPs on CPU 1; every IdP answer held ${DELAY}, inactive"
echo
echo "| route      |   req/s |     401 |     503 | other | errors |  p50 ms  |  p99 ms  | IdP calls | IdP most | goroutines | Traefik RSS  |"
echo "|------------|---------|---------|---------|-------|--------|----------|----------|-----------|----------|------------|--------------|"
printf '%s\n' "${ROWS[@]}"
echo "(IdP most: the most introspections the route's IdP held at once; goroutines and RSS: Traefik's"
echo " peaks, sampled every second. No request got a 2xx.)"
