#!/usr/bin/env bash
# Local demo of the oAuthIntrospection plugin: an OAuth 2.0 authorization server, an echo backend
# and Traefik running this working tree's plugin, all on 127.0.0.1. Ctrl-C stops everything.
#
#   make -C demo demo        (or ./demo/run.sh, or `make demo` at the repository root)
#
# Environment (defaults in brackets):
#   TRAEFIK_PORT       [8080]  Traefik's web entrypoint
#   TRAEFIK_PING_PORT  [8082]  Traefik's ping entrypoint (readiness)
#   IDP_PORT           [9090]  the authorization server (e2e/idp)
#   BACKEND_PORT       [9091]  the echo backend (e2e/cmd/echo)
#   TRAEFIK_BIN        a Traefik v3 binary to use instead of the one scripts/build-traefik.sh builds
#   DEMO_WORKDIR       where to put configs, logs and the plugin copy [a new temp dir, removed on exit]
#   DEMO_KEEP          if set, keep the temp work dir on exit
#   DEMO_LOG_LEVEL     Traefik's log level [INFO]; DEBUG shows each rejection's reason
set -euo pipefail

DEMO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${DEMO_DIR}/.." && pwd)"
TRAEFIK_PORT="${TRAEFIK_PORT:-8080}"
TRAEFIK_PING_PORT="${TRAEFIK_PING_PORT:-8082}"
IDP_PORT="${IDP_PORT:-9090}"
BACKEND_PORT="${BACKEND_PORT:-9091}"
DEMO_LOG_LEVEL="${DEMO_LOG_LEVEL:-INFO}"
LIB_TAG=demo
# The demo keeps its work directory when it was given one, or when asked.
[[ -n "${DEMO_WORKDIR:-}" || -n "${DEMO_KEEP:-}" ]] && KEEP_WORK=1
# shellcheck source=scripts/lib.sh
source "${REPO}/scripts/lib.sh" # MODULE, say, die, cleanup, wait_for, port_busy, layout_our_plugin

for p in "${TRAEFIK_PORT}" "${TRAEFIK_PING_PORT}" "${IDP_PORT}" "${BACKEND_PORT}"; do
  port_busy "${p}" && die "port ${p} on 127.0.0.1 is in use; set TRAEFIK_PORT, TRAEFIK_PING_PORT, IDP_PORT or BACKEND_PORT"
done
for cmd in go node npm curl; do
  command -v "${cmd}" >/dev/null || die "${cmd} is not on PATH"
done

WORK="${DEMO_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/oauthintrospection-demo.XXXXXX")}"
mkdir -p "${WORK}/dynamic"

# 1. Traefik (built once and cached outside the repository; a cold build takes minutes).
say "getting Traefik (scripts/build-traefik.sh)"
TRAEFIK="$("${REPO}/scripts/build-traefik.sh")"

# 2. The echo backend and the IdP's dependencies.
say "building the echo backend"
(cd "${REPO}/e2e" && go build -o "${WORK}/echo" ./cmd/echo)
if [[ ! -d "${REPO}/e2e/idp/node_modules/oidc-provider" ]]; then
  say "installing the IdP's dependencies (npm ci)"
  (cd "${REPO}/e2e/idp" && npm ci --no-audit --no-fund >&2)
fi

# 3. The plugin, copied from the working tree (Traefik walks plugins-local: no symlink to the repo).
rm -rf "${WORK}/plugins-local"
layout_our_plugin

# 4. Configuration, with the ports filled in.
IDP_URL="http://127.0.0.1:${IDP_PORT}"
BACKEND_URL="http://127.0.0.1:${BACKEND_PORT}"
RS_BASIC="$(printf '%s' 'rs-basic:rs-basic-secret' | base64)"
sed -e "s|\${TRAEFIK_PORT}|${TRAEFIK_PORT}|g" \
    -e "s|\${TRAEFIK_PING_PORT}|${TRAEFIK_PING_PORT}|g" \
    -e "s|level: INFO |level: ${DEMO_LOG_LEVEL} |" \
    "${DEMO_DIR}/traefik.yml" >"${WORK}/traefik.yml"
sed -e "s|\${IDP_URL}|${IDP_URL}|g" \
    -e "s|\${BACKEND_URL}|${BACKEND_URL}|g" \
    -e "s|\${RS_BASIC}|${RS_BASIC}|g" \
    "${DEMO_DIR}/dynamic.yml" >"${WORK}/dynamic/dynamic.yml"

# 5. Start everything.
say "starting the IdP on ${IDP_URL}"
(cd "${REPO}/e2e/idp" && exec env IDP_PORT="${IDP_PORT}" node server.js) >"${WORK}/idp.out" 2>"${WORK}/idp.log" &
IDP_PID=$!
PIDS+=("${IDP_PID}")

say "starting the echo backend on ${BACKEND_URL}"
"${WORK}/echo" -addr "127.0.0.1:${BACKEND_PORT}" >"${WORK}/echo.log" 2>&1 &
ECHO_PID=$!
PIDS+=("${ECHO_PID}")

wait_for 60 "${IDP_PID}" "the IdP" grep -q '^IDP_READY ' "${WORK}/idp.out"
wait_for 30 "${ECHO_PID}" "the echo backend" curl -fsS "${BACKEND_URL}/"

say "starting Traefik on http://127.0.0.1:${TRAEFIK_PORT}"
(cd "${WORK}" && exec "${TRAEFIK}" --configFile="${WORK}/traefik.yml") >"${WORK}/traefik.out" 2>&1 &
TRAEFIK_PID=$!
PIDS+=("${TRAEFIK_PID}")

route_is() { [[ "$(curl -s -o /dev/null -w '%{http_code}' "$2")" == "$1" ]]; }
wait_for 90 "${TRAEFIK_PID}" "Traefik" curl -fsS "http://127.0.0.1:${TRAEFIK_PING_PORT}/ping"
wait_for 90 "${TRAEFIK_PID}" "Traefik's routes" route_is 401 "http://127.0.0.1:${TRAEFIK_PORT}/api/hello"

W="http://127.0.0.1:${TRAEFIK_PORT}"
cat <<EOF

  The demo is running. Everything listens on 127.0.0.1:
    Traefik     ${W}          (/api is protected, /public is not)
    IdP         ${IDP_URL}     (clients: app-admin, app-user; e2e/idp/README.md)
    backend     ${BACKEND_URL}     (echoes the request it gets as JSON)
    configs, logs (traefik.log, access.log): ${WORK}
    the watched dynamic config: ${WORK}/dynamic/dynamic.yml

  In another shell:

    IDP=${IDP_URL}
    ADMIN_TOKEN=\$(curl -s -u app-admin:app-admin-secret -d grant_type=client_credentials -d scope=api:read \$IDP/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
    USER_TOKEN=\$(curl -s -u app-user:app-user-secret -d grant_type=client_credentials -d scope=api:read \$IDP/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

    # 200: the backend echoes Group: admin and Expires-At, and no Authorization header
    curl -i -H "Authorization: Bearer \$ADMIN_TOKEN" ${W}/api/hello

    # 401 with WWW-Authenticate: Bearer realm="traefik"
    curl -i ${W}/api/hello

    # 403 with error="insufficient_scope": app-user's grp is user, the claims want admin
    curl -i -H "Authorization: Bearer \$USER_TOKEN" ${W}/api/hello

    # revoke the admin token: 401 with error="invalid_token" once the cached answer
    # expires (cache.ttlSeconds: 5 in the demo's dynamic.yml)
    curl -s -u app-admin:app-admin-secret -d token=\$ADMIN_TOKEN \$IDP/token/revocation
    sleep 5; curl -i -H "Authorization: Bearer \$ADMIN_TOKEN" ${W}/api/hello

    # the access log names the user (usernameClaim: username)
    tail -n 3 ${WORK}/access.log

  Ctrl-C stops everything.

EOF
echo "DEMO_READY ${W}"

# Run until Ctrl-C, or until one of the processes dies. (sleep in the background and wait for it,
# so that Ctrl-C is handled at once.)
while kill -0 "${IDP_PID}" 2>/dev/null && kill -0 "${ECHO_PID}" 2>/dev/null && kill -0 "${TRAEFIK_PID}" 2>/dev/null; do
  sleep 1 &
  wait $! || true
done
say "a process exited; stopping the demo (logs in ${WORK})"
DEMO_KEEP=1
exit 1
