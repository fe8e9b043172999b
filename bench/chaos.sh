#!/usr/bin/env bash
# Chaos under load: the oAuthIntrospection plugin in a real Traefik while its IdP keeps dying.
#
#   bash bench/chaos.sh          (or: make chaos)            about 2 minutes, all on 127.0.0.1
#
# Starts Traefik (CPU 0), the e2e IdP (node-oidc-provider) and a backend (CPU 1, with wrk), then
# for CHAOS_DURATION seconds drives wrk at saturation against three routes of the plugin while the
# IdP is stopped and restarted: up CHAOS_PERIOD seconds (counted from when it is ready again), then
# killed (SIGKILL and SIGTERM in turn) and down CHAOS_PERIOD seconds, and so on.
#
# Routes, all with the Hub-like configuration of the README (Authorization: Bearer, clientId
# rs-basic with its secret, forwardHeaders Group: grp, claims Equals(`grp`, `admin`)):
#   /auth        cache defaults (ttlSeconds 30) but staleIfErrorSeconds 0: an outage shows
#   /auth-short  ttlSeconds 2, staleIfErrorSeconds 0: hot tokens need the IdP every 2 s
#   /auth-stale  ttlSeconds 2, staleIfErrorSeconds 30: known-good tokens ride out the outage
#   /open        no middleware: probed once a second to see that Traefik stays up
#
# Request kinds (bench/chaos.lua, chosen per request, route chosen uniformly):
#   admin-hot 30%, admin-fresh 20% (valid app-admin tokens, reused / sent once), user 15%
#   (app-user tokens: 403), bogus 15% (never issued), none 10% (no token, a forged Group header),
#   malformed 10% (a valid hot token sent the wrong way: Bearer Bearer, two headers, Basic, ...).
#
# The e2e IdP keeps tokens in memory only. So that a valid token stays valid across restarts, this
# script runs an unmodified copy of e2e/idp/server.js whose ./adapter.js is bench/idp/
# journal-adapter.js: the same in-memory store plus an append-only journal, replayed at start.
# Valid tokens should then get 200 (or 503 while the IdP is down), never 401.
#
# It prints the status mix per kind and per route, a timeline per IdP phase with the rate of
# cached-token answers (kind admin-hot) up and down, the latency of the 503s that carry Retry-After
# (the plugin's guard refused them: breaker open or no in-flight slot; docs/resilience.md),
# Traefik's /open probe failures, resident memory and goroutines (sampled every second, the last
# from Traefik's pprof) and the IdP restarts. It exits non-zero if a
# request without a valid admin token got a 2xx (kinds user, bogus, none, malformed), or if
# Traefik went down (a failed /open probe, or the process gone).
#
# Environment (defaults in brackets):
#   CHAOS_DURATION       seconds of load [60]
#   CHAOS_PERIOD         seconds the IdP stays up, then down [5]
#   CHAOS_CONNECTIONS    wrk connections, one per wrk thread [16]
#   CHAOS_FRESH_TOKENS   app-admin tokens sent once each (kind admin-fresh) [20000]
#   CHAOS_SIGNALS        signals used in turn to stop the IdP: KILL, TERM, or STOP (frozen for
#                        the down period, then SIGCONT instead of a restart) ["KILL TERM"]
#   CHAOS_KEEP           if set, keep the work directory (configs, logs, tokens, raw results); it
#                        is always kept when the run fails
#   TRAEFIK_BIN          a Traefik binary to use instead of scripts/build-traefik.sh's
set -euo pipefail

LIB_TAG=chaos
KEEP_WORK="${CHAOS_KEEP:-}"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # BENCH_DIR, REPO, say, die, cleanup traps, helpers
DURATION="${CHAOS_DURATION:-60}"
PERIOD="${CHAOS_PERIOD:-5}"
CONNS="${CHAOS_CONNECTIONS:-16}"
FRESH="${CHAOS_FRESH_TOKENS:-20000}"
read -r -a SIGNALS <<<"${CHAOS_SIGNALS:-KILL TERM}"
HOT=50  # app-admin tokens reused by kind admin-hot (and malformed)
USERS=20 # app-user tokens reused by kind user
ROUTES=(/auth /auth-short /auth-stale)
for s in "${SIGNALS[@]}"; do
  [[ "${s}" == KILL || "${s}" == TERM || "${s}" == STOP ]] || die "CHAOS_SIGNALS: unknown signal ${s} (KILL, TERM or STOP)"
done
((${#SIGNALS[@]} > 0)) || die "CHAOS_SIGNALS is empty"

require_tools
setup_common oauthintrospection-chaos

# ---------------------------------------------------------------------------------------------
# The IdP: an unmodified copy of e2e/idp/server.js, with the journal adapter as ./adapter.js.

IDP_DIR="${WORK}/idp"
mkdir -p "${IDP_DIR}"
cp "${REPO}/e2e/idp/server.js" "${REPO}/e2e/idp/package.json" "${IDP_DIR}/"
cp "${REPO}/e2e/idp/adapter.js" "${IDP_DIR}/map-adapter.js"
cp "${BENCH_DIR}/idp/journal-adapter.js" "${IDP_DIR}/adapter.js"
ln -s "${REPO}/e2e/idp/node_modules" "${IDP_DIR}/node_modules"
IDP_PORT="$(free_port)" # fixed across restarts: Traefik's configuration names it
IDP_URL="http://127.0.0.1:${IDP_PORT}"
JOURNAL="${WORK}/idp-journal.ndjson"
IDP_STARTS=0
idp_start() { # start the IdP and wait until it prints its (IDP_STARTS+1)-th IDP_READY line
  start_idp "${IDP_DIR}" IDP_PORT="${IDP_PORT}" IDP_JOURNAL="${JOURNAL}"
  IDP_STARTS=$((IDP_STARTS + 1))
  wait_for 30 "${IDP_PID}" "the IdP" idp_ready "${IDP_STARTS}"
}
idp_ready() { (($(grep -c '^IDP_READY ' "${WORK}/idp.out") >= $1)); }

start_backend
idp_start
wait_for 30 "${BACKEND_PID}" "the backend" http_is 200 "http://127.0.0.1:${BACKEND_PORT}/"

TOKDIR="${WORK}/tokens"
mkdir -p "${TOKDIR}"
say "minting $((HOT + FRESH)) app-admin and ${USERS} app-user tokens (client_credentials)"
"${WORK}/bin/mint" -url "${IDP_URL}/token" -n $((HOT + FRESH)) -c 16 >"${TOKDIR}/admin.txt" 2>"${WORK}/mint.log" \
  || { cat "${WORK}/mint.log" >&2; die "minting failed"; }
"${WORK}/bin/mint" -url "${IDP_URL}/token" -n "${USERS}" -c 4 -client app-user:app-user-secret \
  >"${TOKDIR}/user.txt" 2>>"${WORK}/mint.log" || { cat "${WORK}/mint.log" >&2; die "minting failed"; }
head -n 1 "${WORK}/mint.log" >&2
head -n "${HOT}" "${TOKDIR}/admin.txt" >"${TOKDIR}/hot.txt"
tail -n "+$((HOT + 1))" "${TOKDIR}/admin.txt" >"${TOKDIR}/fresh.txt"
HOT_TOKEN="$(head -n 1 "${TOKDIR}/hot.txt")"
USER_TOKEN="$(head -n 1 "${TOKDIR}/user.txt")"

# ---------------------------------------------------------------------------------------------
# Traefik.

layout_our_plugin
WEB_PORT="$(free_port)"
WEB="http://127.0.0.1:${WEB_PORT}"
API_PORT="$(free_port)" # api.debug: pprof's goroutine page gives Traefik's goroutine count
write_static_config "${WORK}/traefik.yml" "${WEB_PORT}" oAuthIntrospection="${MODULE}"

auth_mw() { # auth_mw NAME CACHE-YAML
  cat <<EOF
    $1:
      plugin:
        oAuthIntrospection:
          tokenSource: {header: Authorization, headerAuthScheme: Bearer}
          clientConfig:
            url: "${IDP_URL}/token/introspection"
            clientId: rs-basic
            clientSecret: rs-basic-secret
          forwardHeaders: {Group: grp}
          claims: "Equals(\`grp\`, \`admin\`)"
          cache: $2
EOF
}
{
  echo "http:"
  echo "  routers:"
  router open /open
  router auth /auth auth
  router auth-short /auth-short auth-short
  router auth-stale /auth-stale auth-stale
  echo "  middlewares:"
  auth_mw auth '{staleIfErrorSeconds: "0"}'
  auth_mw auth-short '{ttlSeconds: "2", staleIfErrorSeconds: "0"}'
  auth_mw auth-stale '{ttlSeconds: "2", staleIfErrorSeconds: "30"}'
  backend_service
} >"${WORK}/dynamic.yml"

say "starting Traefik on ${WEB} (CPU 0)"
start_traefik
wait_for 60 "${TRAEFIK_PID}" "Traefik (/open)" http_is 200 "${WEB}/open"
for r in "${ROUTES[@]}"; do
  wait_for 30 "${TRAEFIK_PID}" "Traefik (${r})" http_is 200 "${WEB}${r}" -H "Authorization: Bearer ${HOT_TOKEN}"
  http_is 403 "${WEB}${r}" -H "Authorization: Bearer ${USER_TOKEN}" || die "${r} with an app-user token should answer 403"
  http_is 401 "${WEB}${r}" || die "${r} without a token should answer 401"
done
# The journal must carry a token across a restart, or the valid kinds would measure nothing.
say "checking that tokens survive an IdP restart (SIGKILL)"
kill -KILL "${IDP_PID}"
wait "${IDP_PID}" 2>/dev/null || true
untrack_pid "${IDP_PID}"
idp_start
http_is 200 "${WEB}/auth-stale" -H "Authorization: Bearer $(tail -n 1 "${TOKDIR}/fresh.txt")" \
  || die "a token minted before an IdP restart is not valid after it; see ${WORK}/idp.log"
RSS_READY="$(rss_kib "${TRAEFIK_PID}")"

# ---------------------------------------------------------------------------------------------
# The run: wrk, a 1 Hz sampler of Traefik, and the IdP chaos loop in this shell.

now_us() { echo "${EPOCHREALTIME/./}"; }
sleep_until_us() { # sleep_until_us T: sleep until the wall clock reaches T (microseconds)
  local d=$(($1 - $(now_us)))
  ((d <= 0)) || sleep "$(printf '%d.%06d' $((d / 1000000)) $((d % 1000000)))"
}

# sampler: once a second, "UNIX-TIME RSS-KiB /open-STATUS /open-SECONDS GOROUTINES", until stopped.
sampler() {
  local next rss probe gor
  next=$(($(now_us) / 1000000 * 1000000 + 1000000))
  while :; do
    sleep_until_us "${next}"
    rss="$(awk '/^VmRSS:/ {print $2}' "/proc/${TRAEFIK_PID}/status" 2>/dev/null || true)"
    probe="$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 2 "${WEB}/open" 2>/dev/null || true)"
    gor="$(curl -s --max-time 2 "http://127.0.0.1:${API_PORT}/debug/pprof/goroutine?debug=1" 2>/dev/null | awk 'NR == 1 {print $NF}' || true)"
    echo "$((next / 1000000)) ${rss:-0} ${probe:-000 0} ${gor:-0}"
    next=$((next + 1000000))
  done
}

PHASES="${WORK}/phases.txt" # "UNIX-TIME-us up|down DETAIL"
say "load for ${DURATION}s: wrk -t${CONNS} -c${CONNS} on ${ROUTES[*]}; the IdP up ${PERIOD}s, down ${PERIOD}s (${SIGNALS[*]})"
sampler >"${WORK}/samples.txt" &
SAMPLER_PID=$!
PIDS+=("${SAMPLER_PID}")
T0="$(now_us)"
"${PIN_LOAD[@]}" wrk -t"${CONNS}" -c"${CONNS}" -d"${DURATION}s" --timeout 10s -s "${BENCH_DIR}/chaos.lua" "${WEB}" \
  -- "${TOKDIR}" "${RANDOM}" "${CONNS}" "${ROUTES[@]}" >"${WORK}/wrk.txt" 2>&1 &
WRK_PID=$!
PIDS+=("${WRK_PID}")
echo "${T0} up start" >"${PHASES}"

END=$((T0 + DURATION * 1000000))
UP_AT="${T0}" RESTARTS=0 STOPS=0 K=0 IDP_DOWN=""
declare -A BY_SIG=()
while :; do
  next=$((UP_AT + PERIOD * 1000000))
  ((next < END)) || break
  sleep_until_us "${next}"
  kill -0 "${WRK_PID}" 2>/dev/null || break
  sig="${SIGNALS[K % ${#SIGNALS[@]}]}"
  K=$((K + 1))
  DOWN_AT="$(now_us)"
  kill "-${sig}" "${IDP_PID}"
  STOPS=$((STOPS + 1))
  BY_SIG[${sig}]=$((${BY_SIG[${sig}]:-0} + 1))
  if [[ "${sig}" != STOP ]]; then
    wait "${IDP_PID}" 2>/dev/null || true
    untrack_pid "${IDP_PID}"
  fi
  IDP_DOWN="${sig}"
  echo "${DOWN_AT} down SIG${sig}, gone after $((($(now_us) - DOWN_AT) / 1000)) ms" >>"${PHASES}"
  next=$((DOWN_AT + PERIOD * 1000000))
  ((next < END)) || break
  sleep_until_us "${next}"
  t="$(now_us)"
  if [[ "${sig}" == STOP ]]; then
    kill -CONT "${IDP_PID}"
    detail="SIGCONT"
  else
    idp_start
    RESTARTS=$((RESTARTS + 1))
    detail="restarted, ready after $((($(now_us) - t) / 1000)) ms"
  fi
  IDP_DOWN=""
  UP_AT="$(now_us)"
  echo "${UP_AT} up ${detail}" >>"${PHASES}"
done
WRK_RC=0
wait "${WRK_PID}" || WRK_RC=$?
[[ "${IDP_DOWN}" != STOP ]] || kill -CONT "${IDP_PID}" # a frozen IdP stays frozen until the load ends
((WRK_RC == 0)) || { cat "${WORK}/wrk.txt" >&2; die "wrk failed"; }
untrack_pid "${WRK_PID}"
T1="$(now_us)"
echo "${T1} end" >>"${PHASES}"
sleep 1.2 # one more sample after the load
stop_pid "${SAMPLER_PID}"
untrack_pid "${SAMPLER_PID}"
TRAEFIK_ALIVE=yes
kill -0 "${TRAEFIK_PID}" 2>/dev/null || TRAEFIK_ALIVE=no
RSS_END="$(rss_kib "${TRAEFIK_PID}" 2>/dev/null || echo 0)"
grep -a '^CHAOS ' "${WORK}/wrk.txt" | sed 's/^CHAOS //' >"${WORK}/results.txt" || true
[[ -s "${WORK}/results.txt" ]] || { cat "${WORK}/wrk.txt" >&2; die "no CHAOS lines in wrk's output"; }

# ---------------------------------------------------------------------------------------------
# Report.

mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
R="${WORK}/results.txt"

echo
echo "== Chaos under load"
echo "Machine:  $(nproc) x $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr)"
echo "Traefik:  $("${TRAEFIK}" version 2>/dev/null | awk '/^Version:/ {v=$2} /^Go version:/ {g=$3} END {print v " (" g ")"}') on CPU 0; wrk -t${CONNS} -c${CONNS}, the IdP (node $(node --version)) and the backend on CPU 1"
echo "Load:     $(awk '$1 == "summary" {printf "%.1f", $3 / 1e6}' "${R}")s; the IdP up ${PERIOD}s (from ready), down ${PERIOD}s; signals ${SIGNALS[*]} in turn"
BY=""
for s in KILL TERM STOP; do [[ -z "${BY_SIG[${s}]:-}" ]] || BY+="${BY:+, }SIG${s} ${BY_SIG[${s}]}"; done
echo "IdP:      ${STOPS} stops (${BY:-none}), ${RESTARTS} restarts (tokens kept across them by the journal adapter)"
awk -v t0="${T0}" '{ printf "          %+7.2fs  %s\n", ($1 - t0) / 1e6, substr($0, index($0, " ") + 1) }' "${PHASES}"

# Per-kind table. Kinds user, bogus, none and malformed/* must never get a 2xx.
echo
echo "== Answers per request kind (all routes)"
awk '
  function group(k) { return k ~ /^malformed\// ? "malformed" : k }
  $1 == "sent"   { sent[group($3)] += $4 }
  $1 == "status" { k = group($3); n[k] += $5; s = $4
                   if (s == 200 || s == 401 || s == 403 || s == 503) c[k, s] += $5; else c[k, "other"] += $5
                   if (s >= 200 && s < 300) pass[k] += $5 }
  $1 == "lat"    { k = group($3); h[k, $5] += $6; if ($5 > hb[k]) hb[k] = $5 }
  $1 == "max"    { k = group($3); if ($5 > mx[k]) mx[k] = $5 }
  function pct(k, p,   b, acc) { acc = 0; for (b = 0; b <= hb[k]; b++) { acc += h[k, b]; if (acc >= p * n[k]) return 1.1 ^ (b + 0.5) / 1000 } return 0 }
  END {
    split("admin-hot admin-fresh user bogus none malformed", order, " ")
    want["admin-hot"] = "200 (503 down)"; want["admin-fresh"] = "200 (503 down)"; want["user"] = "403 (503 down)"
    want["bogus"] = "401 (503 down)"; want["none"] = "401"; want["malformed"] = "401"
    printf "| %-11s | %7s | %7s | %7s | %7s | %7s | %7s | %6s | %8s | %8s | %8s | %-15s |\n", "kind", "sent", "answered", "200", "401", "403", "503", "other", "p50 ms", "p99 ms", "max ms", "expected"
    print "|-------------|---------|----------|---------|---------|---------|---------|--------|----------|----------|----------|-----------------|"
    for (i = 1; i <= 6; i++) { k = order[i]
      printf "| %-11s | %7d | %8d | %7d | %7d | %7d | %7d | %6d | %8.2f | %8.2f | %8.1f | %-15s |\n", k, sent[k], n[k], c[k, 200], c[k, 401], c[k, 403], c[k, 503], c[k, "other"], pct(k, 0.5), pct(k, 0.99), mx[k] / 1000, want[k]
      tot += n[k] }
    printf "answered: %d in all (latencies from request() to response() in wrk, within 5%%)\n", tot
  }' "${R}"

echo
echo "== Answers per route and kind"
awk '
  function group(k) { return k ~ /^malformed\// ? "malformed" : k }
  $1 == "status" { k = $2 " " group($3); s = $4; n[k] += $5; seen[k] = 1
                   if (s == 200 || s == 401 || s == 403 || s == 503) c[k, s] += $5; else c[k, "other"] += $5 }
  END {
    split("/auth /auth-short /auth-stale", routes, " "); split("admin-hot admin-fresh user bogus none malformed", order, " ")
    printf "| %-11s | %-11s | %8s | %7s | %7s | %7s | %7s | %6s |\n", "route", "kind", "answered", "200", "401", "403", "503", "other"
    print "|-------------|-------------|----------|---------|---------|---------|---------|--------|"
    for (r = 1; r <= 3; r++) for (i = 1; i <= 6; i++) { k = routes[r] " " order[i]
      printf "| %-11s | %-11s | %8d | %7d | %7d | %7d | %7d | %6d |\n", routes[r], order[i], n[k], c[k, 200], c[k, 401], c[k, 403], c[k, 503], c[k, "other"] }
  }' "${R}"
echo "malformed variants (answered / 2xx / statuses):"
awk '$1 == "status" && $3 ~ /^malformed\// { v = substr($3, 11); n[v] += $5; st[v, $4] += $5; if ($4 >= 200 && $4 < 300) p[v] += $5; codes[$4] = 1 }
  END { for (v in n) { line = ""; for (s in codes) if (st[v, s]) line = line " " s ":" st[v, s]; printf "  %-14s %7d answered, %d 2xx;%s\n", v, n[v], p[v], line } }' "${R}" | sort

echo
echo "== Latency by kind and answer (all routes)"
awk '
  function group(k) { return k ~ /^malformed\// ? "malformed" : k }
  $1 == "lat" { k = group($3) " " $4; h[k, $5] += $6; n[k] += $6; if ($5 > hb[k]) hb[k] = $5 }
  $1 == "max" { k = group($3) " " $4; if ($5 > mx[k]) mx[k] = $5 }
  function pct(k, p,   b, acc) { acc = 0; for (b = 0; b <= hb[k]; b++) { acc += h[k, b]; if (acc >= p * n[k]) return 1.1 ^ (b + 0.5) / 1000 } return 0 }
  END {
    split("admin-hot admin-fresh user bogus none malformed", order, " "); split("200 401 403 503", sts, " ")
    printf "| %-11s | %6s | %8s | %8s | %8s | %8s |\n", "kind", "status", "answers", "p50 ms", "p99 ms", "max ms"
    print "|-------------|--------|----------|----------|----------|----------|"
    for (i = 1; i <= 6; i++) for (j = 1; j <= 4; j++) { k = order[i] " " sts[j]; if (n[k])
      printf "| %-11s | %6s | %8d | %8.2f | %8.2f | %8.1f |\n", order[i], sts[j], n[k], pct(k, 0.5), pct(k, 0.99), mx[k] / 1000 }
  }' "${R}"

# Timeline per IdP phase, from the answers per tenth of a second (by the time of the answer: a
# request sent just before the IdP came back may be answered 503 early in an up phase).
echo
echo "== Timeline per IdP phase (answers by the time they arrived)"
awk -v t0="${T0}" '
  FILENAME == ARGV[1] { if ($2 == "end") { tend = $1 / 1e6; next } ps[++np] = $1 / 1e6; st[np] = $2; next }
  $1 == "sec"    { n[$2] += $4; c[$2, ($3 == 200 || $3 == 401 || $3 == 403 || $3 == 503) ? $3 : "other"] += $4; secs[$2] = 1 }
  $1 == "secmax" { if ($3 > m[$2]) m[$2] = $3 }
  $1 == "hot"    { if ($3 == 200) hot[$2] += $4 }
  END {
    printf "| %5s | %-4s | %6s | %7s | %7s | %7s | %7s | %7s | %7s | %6s | %8s |\n", "from", "IdP", "secs", "req/s", "hot/s", "200", "401", "403", "503", "other", "max ms"
    print "|-------|------|--------|---------|---------|---------|---------|---------|---------|--------|----------|"
    for (i = 1; i <= np; i++) {
      a = ps[i]; b = (i < np) ? ps[i + 1] : tend; cnt = 0; k2 = 0; k4 = 0; k3 = 0; k5 = 0; ko = 0; mm = 0; ns = 0; kh = 0
      for (s in secs) if (s / 10 >= a && s / 10 < b) { ns++; cnt += n[s]; k2 += c[s, 200]; k4 += c[s, 401]; k3 += c[s, 403]; k5 += c[s, 503]; ko += c[s, "other"]; kh += hot[s]; if (m[s] > mm) mm = m[s] }
      printf "| %+5.1f | %-4s | %6.1f | %7.0f | %7.0f | %7d | %7d | %7d | %7d | %6d | %8.1f |\n", a - t0 / 1e6, st[i], b - a, (b > a ? cnt / (b - a) : 0), (b > a ? kh / (b - a) : 0), k2, k4, k3, k5, ko, mm / 1000
      dur[st[i]] += b - a; hots[st[i]] += kh
    }
    up = dur["up"] > 0 ? hots["up"] / dur["up"] : 0; down = dur["down"] > 0 ? hots["down"] / dur["down"] : 0
    printf "cached tokens (admin-hot answered 200): %.0f/s while the IdP was up, %.0f/s while it was down: %.2f of up (goal: at least 0.90)\n", up, down, (up > 0 ? down / up : 0)
  }' "${PHASES}" "${R}"

# The 503s the plugin's guard gave (they carry Retry-After): the breaker open, or no in-flight slot.
awk '
  $1 == "ra"    { h[$2] += $3; n += $3; if ($2 > hb) hb = $2 }
  $1 == "ramax" { if ($2 > mx) mx = $2 }
  function pct(p,   b, acc) { acc = 0; for (b = 0; b <= hb; b++) { acc += h[b]; if (acc >= p * n) return 1.1 ^ (b + 0.5) / 1000 } return 0 }
  END { if (n) printf "503 with Retry-After (the guard refused: breaker open or no slot): %d answers, p50 %.2f ms, p99 %.2f ms, max %.1f ms (goal: p99 at most 10 ms)\n", n, pct(0.5), pct(0.99), mx / 1000
        else print "503 with Retry-After: none" }' "${R}"

# Traefik: up all the time, memory.
echo
echo "== Traefik"
awk -v t0="${T0}" -v t1="${T1}" '
  { n++; if ($3 != 200) { bad++; badl = badl sprintf(" %+ds:%s", $1 - t0 / 1e6, $3) }
    if ($4 > mt) mt = $4
    if ($2 > 0) { if (min == "" || $2 < min) min = $2; if ($2 > max) max = $2; last = $2 }
    if ($5 > 0) { if (gmin == "" || $5 < gmin) gmin = $5; if ($5 > gmax) gmax = $5; glast = $5 } }
  END {
    printf "/open probes: %d, failed %d%s; slowest %.1f ms\n", n, bad, badl, mt * 1000
    printf "RSS (every second): min %.1f MiB, max %.1f MiB, last %.1f MiB\n", min / 1024, max / 1024, last / 1024
    printf "goroutines (every second, pprof): min %d, max %d, last %d\n", gmin, gmax, glast
  }' "${WORK}/samples.txt"
echo "RSS: $(mib "${RSS_READY}") once ready, $(mib "${RSS_END}") after the run; process alive at the end: ${TRAEFIK_ALIVE}"
# The plugin logs one error line per 10 s per middleware, with the count of the others since.
cat "${WORK}/traefik.log" "${WORK}/traefik.out" 2>/dev/null | { grep -o 'oAuthIntrospection\[[^]]*\]: .*' || true; } \
  | sed -E 's/ module=.*//; s/127\.0\.0\.1:[0-9]+/127.0.0.1:PORT/g' | awk '
    { n++; e = 1; if (match($0, /\([0-9]+ more errors? since the last line\)/)) { e += substr($0, RSTART + 1) + 0; sub(/ \([0-9]+ more errors? since the last line\)/, "") }
      tot += e; sub(/^oAuthIntrospection\[[^]]*\]: /, ""); msg[$0] += e }
    END { printf "plugin error lines in Traefik'"'"'s output: %d, reporting %d errors (one line per 10 s per middleware, with a count of the others):\n", n, tot
          for (m in msg) printf "  %6d  %s\n", msg[m], m }'
OTHER_LOG="$(cat "${WORK}/traefik.log" "${WORK}/traefik.out" 2>/dev/null | grep -v 'oAuthIntrospection\[' | grep -c . || true)"
echo "other lines in Traefik's log and output: ${OTHER_LOG}"
awk '$1 == "summary" { printf "wrk: %d answers, socket errors connect %d read %d write %d timeout %d; latency p50 %.2f ms, p99 %.2f ms, max %.1f ms\n", $2, $4, $5, $6, $7, $8 / 1000, $9 / 1000, $10 / 1000 }
     $1 == "wraps" { printf "admin-fresh token list wrapped %d time(s) over all threads (0: each was sent once)\n", $2 }' "${R}"

# ---------------------------------------------------------------------------------------------
# Verdict.

UNSAFE="$(awk '$1 == "status" && $3 !~ /^admin-/ && $4 >= 200 && $4 < 300 { n += $5; d = d " " $2 "/" $3 ":" $5 } END { print n + 0 d }' "${R}")"
PROBE_FAIL="$(awk '$3 != 200 { n++ } END { print n + 0 }' "${WORK}/samples.txt")"
VALID_401="$(awk '$1 == "status" && $3 ~ /^admin-/ && $4 == 401 { n += $5 } END { print n + 0 }' "${R}")"
ODD="$(awk '$1 == "status" { s = $4; k = $3; ok = 0
    if (k ~ /^admin-/) ok = (s == 200 || s == 503); else if (k == "user") ok = (s == 403 || s == 503)
    else if (k == "bogus") ok = (s == 401 || s == 503); else ok = (s == 401)
    if (!ok) { n += $5; d = d " " $2 "/" k ":" s "x" $5 } } END { print n + 0 d }' "${R}")"

echo
echo "== Verdict"
BAD=""
if [[ "${UNSAFE%% *}" == 0 ]]; then
  echo "SAFE: no request without a valid admin token got a 2xx (user, bogus, none, malformed: 0)"
else
  echo "UNSAFE: ${UNSAFE%% *} requests without a valid admin token got a 2xx:${UNSAFE#* }"
  BAD+=" safety;"
fi
if [[ "${PROBE_FAIL}" == 0 && "${TRAEFIK_ALIVE}" == yes ]]; then
  echo "UP: Traefik answered every /open probe and is still running"
else
  echo "DOWN: ${PROBE_FAIL} failed /open probes; Traefik alive at the end: ${TRAEFIK_ALIVE}"
  BAD+=" Traefik down;"
fi
[[ "${VALID_401}" == 0 ]] || echo "NOTE: valid admin tokens got ${VALID_401} 401s (the journal keeps them valid: expected 503 while the IdP is down)"
[[ "${ODD%% *}" == 0 ]] || echo "NOTE: answers outside the expected statuses: ${ODD%% *}:${ODD#* }"
if [[ -n "${BAD}" ]]; then
  FAILED=1
  exit 1
fi
