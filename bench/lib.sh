# Shared setup of bench/run.sh and bench/chaos.sh; sourced, never run. Everything listens on
# 127.0.0.1. The sourcing script sets, before sourcing:
#
#   LIB_TAG    the prefix of its log lines on stderr ("bench" gives "[bench] ...")
#   KEEP_WORK  non-empty to keep the work directory even after a successful run
#
# and gets all of scripts/lib.sh (logging, cleanup of its processes, readiness polling, the
# plugins-local layout), plus what only the load scripts need: the prerequisites (wrk, the IdP's
# npm packages, the Traefik binary), a work directory, the backend and token minter builds,
# Traefik's static configuration, and starting the backend, the IdP and Traefik.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "${BENCH_DIR}/../scripts/lib.sh" # REPO, MODULE, say, die, cleanup, wait_for, layout_our_plugin
PASS_MODULE="github.com/tokengate/passthrough"

# ---------------------------------------------------------------------------------------------
# Prerequisites.

# require_tools: the commands every script needs are on PATH; wrk is installed with apt-get if
# missing; at least 2 CPUs. Sets NCPU, PIN_TRAEFIK (CPU 0) and PIN_LOAD (CPU 1).
require_tools() {
  local cmd
  for cmd in go node npm curl taskset awk; do
    command -v "${cmd}" >/dev/null || die "${cmd} is not on PATH"
  done
  if ! command -v wrk >/dev/null; then
    say "installing wrk (apt-get)"
    local sudo=""
    [[ "$(id -u)" == 0 ]] || sudo="sudo"
    ${sudo} apt-get update >&2 && ${sudo} apt-get install -y wrk >&2 || die "cannot install wrk"
  fi
  NCPU="$(nproc)"
  ((NCPU >= 2)) || die "needs at least 2 CPUs (Traefik on CPU 0, the load on CPU 1); this machine has ${NCPU}"
  PIN_TRAEFIK=(taskset -c 0)
  PIN_LOAD=(taskset -c 1)
}

# setup_common PREFIX: the IdP's npm packages, the Traefik binary (TRAEFIK), a new work directory
# (WORK, named PREFIX.XXXXXX) and the backend and minter binaries in WORK/bin.
setup_common() {
  if [[ ! -d "${REPO}/e2e/idp/node_modules/oidc-provider" ]]; then
    say "installing the IdP's dependencies (npm ci)"
    (cd "${REPO}/e2e/idp" && npm ci --no-audit --no-fund >&2)
  fi
  say "getting Traefik (scripts/build-traefik.sh)"
  TRAEFIK="$("${REPO}/scripts/build-traefik.sh")"

  WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  say "work directory: ${WORK}"
  say "building the backend and the token minter"
  (cd "${BENCH_DIR}" && GOWORK=off go build -o "${WORK}/bin/" ./backend ./mint)
}

# ---------------------------------------------------------------------------------------------
# Helpers.

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# ---------------------------------------------------------------------------------------------
# Processes. Each start_* function runs its process in the background, records its PID in PIDS
# and in the variable it names; the caller polls readiness with wait_for.

# start_backend: the Go backend on a free port, on CPU 1. Sets BACKEND_PORT, BACKEND_PID.
start_backend() {
  BACKEND_PORT="$(free_port)"
  "${PIN_LOAD[@]}" "${WORK}/bin/backend" -addr "127.0.0.1:${BACKEND_PORT}" >"${WORK}/backend.log" 2>&1 &
  BACKEND_PID=$!
  PIDS+=("${BACKEND_PID}")
}

# start_idp DIR [VAR=value...]: node server.js from DIR on CPU 1, with the extra environment;
# stdout (the IDP_READY line) appended to WORK/idp.out, stderr to WORK/idp.log. Sets IDP_PID.
start_idp() {
  local dir=$1
  shift
  (cd "${dir}" && exec "${PIN_LOAD[@]}" env IDP_PORT=0 "$@" node server.js) >>"${WORK}/idp.out" 2>>"${WORK}/idp.log" &
  IDP_PID=$!
  PIDS+=("${IDP_PID}")
}

# start_fastidp NAME [FLAG...]: bench/fastidp on a free port, on CPU 1, with the flags; built into
# WORK/bin on the first call; its output in WORK/fastidp-NAME.out. Waits until it is ready and
# sets FASTIDP_URL (its introspection endpoint) and FASTIDP_PID.
start_fastidp() {
  local name=$1
  shift
  [[ -x "${WORK}/bin/fastidp" ]] || (cd "${BENCH_DIR}" && GOWORK=off go build -o "${WORK}/bin/" ./fastidp)
  "${PIN_LOAD[@]}" "${WORK}/bin/fastidp" "$@" >"${WORK}/fastidp-${name}.out" 2>"${WORK}/fastidp-${name}.log" &
  FASTIDP_PID=$!
  PIDS+=("${FASTIDP_PID}")
  wait_for 30 "${FASTIDP_PID}" "the ${name} fastidp" grep -q '^IDP_READY ' "${WORK}/fastidp-${name}.out"
  FASTIDP_URL="$(awk '/^IDP_READY / {print $2 "/introspect"; exit}' "${WORK}/fastidp-${name}.out")"
}

# write_static_config FILE WEB_PORT NAME=MODULE...: Traefik's static configuration: one entry point
# on 127.0.0.1:WEB_PORT, log level ERROR to WORK/traefik.log, the local plugins named, and the
# dynamic configuration from WORK/dynamic.yml (not watched).
write_static_config() {
  local file=$1 port=$2 p api_entrypoint=""
  shift 2
  # API_PORT set: Traefik's API with pprof (api.debug) on 127.0.0.1:API_PORT, for profiles.
  if [[ -n "${API_PORT:-}" ]]; then
    api_entrypoint="$(printf '  traefik:\n    address: "127.0.0.1:%s"\napi:\n  insecure: true\n  dashboard: false\n  debug: true' "${API_PORT}")"
  fi
  {
    cat <<EOF
global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  web:
    address: "127.0.0.1:${port}"
    transport:
      lifeCycle:
        graceTimeOut: 1s
${api_entrypoint}
log:
  level: ERROR
  noColor: true
  filePath: "${WORK}/traefik.log"
experimental:
  localPlugins:
EOF
    for p in "$@"; do
      printf '    %s:\n      moduleName: %s\n' "${p%%=*}" "${p#*=}"
    done
    cat <<EOF
providers:
  file:
    filename: "${WORK}/dynamic.yml"
    watch: false
EOF
  } >"${file}"
}

# router NAME PATH [middleware]: one router of the dynamic configuration, to the service backend.
router() {
  printf '    %s:\n      entryPoints: [web]\n      rule: "Path(`%s`)"\n      service: backend\n' "$1" "$2"
  [[ -z "${3:-}" ]] || printf '      middlewares: [%s]\n' "$3"
}

# backend_service: the services section of the dynamic configuration.
backend_service() {
  echo "  services:"
  echo "    backend:"
  echo "      loadBalancer:"
  echo "        servers: [{url: \"http://127.0.0.1:${BACKEND_PORT}\"}]"
}

# start_traefik: Traefik on CPU 0 with WORK/traefik.yml, run from WORK. Sets TRAEFIK_PID.
start_traefik() {
  (cd "${WORK}" && exec "${PIN_TRAEFIK[@]}" "${TRAEFIK}" --configFile="${WORK}/traefik.yml") >"${WORK}/traefik.out" 2>&1 &
  TRAEFIK_PID=$!
  PIDS+=("${TRAEFIK_PID}")
}
