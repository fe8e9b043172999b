#!/usr/bin/env bash
# Non-interactive check of the demo: starts run.sh in the background, runs the walkthrough's curl
# commands, checks 200/401/403, then stops the demo. Same environment variables as run.sh.
#
#   make -C demo smoke
set -euo pipefail

DEMO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TRAEFIK_PORT="${TRAEFIK_PORT:-8080}"
IDP_PORT="${IDP_PORT:-9090}"
W="http://127.0.0.1:${TRAEFIK_PORT}"
IDP="http://127.0.0.1:${IDP_PORT}"
OUT="$(mktemp "${TMPDIR:-/tmp}/oauthintrospection-demo-smoke.XXXXXX")"

"${DEMO_DIR}/run.sh" >"${OUT}" 2>&1 &
DEMO_PID=$!
stop() {
  kill -TERM "${DEMO_PID}" 2>/dev/null || true
  wait "${DEMO_PID}" 2>/dev/null || true
}
trap stop EXIT

fail() { echo "smoke: FAIL: $*" >&2; echo "---- demo output ----" >&2; cat "${OUT}" >&2; exit 1; }

# The first run may build Traefik (minutes); later ones take seconds.
deadline=$((SECONDS + 1200))
until grep -q '^DEMO_READY ' "${OUT}"; do
  kill -0 "${DEMO_PID}" 2>/dev/null || fail "run.sh exited before it was ready"
  ((SECONDS < deadline)) || fail "run.sh not ready in time"
  sleep 0.2
done

token() {
  curl -s -u "$1" -d grant_type=client_credentials -d scope=api:read "${IDP}/token" |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}
ADMIN_TOKEN="$(token app-admin:app-admin-secret)"
USER_TOKEN="$(token app-user:app-user-secret)"
[[ -n "${ADMIN_TOKEN}" && -n "${USER_TOKEN}" ]] || fail "no tokens from ${IDP}"

# check WANT DESCRIPTION CURL_ARGS...: the status must be WANT; prints headers and body.
check() {
  local want=$1 what=$2
  shift 2
  local resp status
  resp="$(curl -s -i "$@")"
  status="$(head -n1 <<<"${resp}" | awk '{print $2}')"
  echo "== ${what}: ${status} (want ${want})"
  sed 's/^/   /' <<<"${resp}"
  [[ "${status}" == "${want}" ]] || fail "${what}: got ${status}, want ${want}"
  CHECKED="${resp}"
}

check 200 "admin token" -H "Authorization: Bearer ${ADMIN_TOKEN}" "${W}/api/hello"
grep -q '"Group": \[' <<<"${CHECKED}" || fail "the backend did not receive Group"
grep -q '"admin"' <<<"${CHECKED}" || fail "Group is not admin"
grep -q '"Expires-At"' <<<"${CHECKED}" || fail "the backend did not receive Expires-At"
grep -q '"Authorization"' <<<"${CHECKED}" && fail "the token reached the backend"
check 401 "no token" "${W}/api/hello"
grep -qi '^WWW-Authenticate: Bearer realm="traefik"' <<<"${CHECKED}" || fail "no Bearer challenge"
check 403 "user token" -H "Authorization: Bearer ${USER_TOKEN}" "${W}/api/hello"
grep -qi 'insufficient_scope' <<<"${CHECKED}" || fail "no insufficient_scope"
check 200 "public route" "${W}/public/hello"
curl -s -u app-admin:app-admin-secret -d "token=${ADMIN_TOKEN}" "${IDP}/token/revocation" >/dev/null
# The demo caches answers for 5 s (cache.ttlSeconds): poll until the revocation shows.
deadline=$((SECONDS + 15))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${ADMIN_TOKEN}" "${W}/api/hello")" == 401 ]]; do
  ((SECONDS < deadline)) || break
  sleep 0.2
done
check 401 "revoked admin token" -H "Authorization: Bearer ${ADMIN_TOKEN}" "${W}/api/hello"
grep -qi 'invalid_token' <<<"${CHECKED}" || fail "no invalid_token"

stop
trap - EXIT
rm -f "${OUT}"
echo "smoke: OK"
