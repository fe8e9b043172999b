# The shell library of the demo, bench and chaos scripts; sourced, never run. The sourcing script
# sets, before sourcing:
#
#   LIB_TAG    the prefix of its log lines on stderr ("bench" gives "[bench] ...")
#   KEEP_WORK  non-empty to keep the work directory WORK even after a successful run
#
# and gets: the repository (REPO) and the plugin's module path (MODULE, written here once for the
# shell; go.mod holds it for Go), logging (say, die), cleanup of the processes it started (PIDS,
# stop_pid with escalation, a trap on EXIT, INT and TERM), free ports, readiness polling, and the
# plugins-local layout Traefik loads local plugins from.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE="$(sed -n 's/^module //p' "${REPO}/go.mod")"

say() { printf '[%s] %s\n' "${LIB_TAG}" "$*" >&2; }
die() { say "error: $*"; FAILED=1; exit 1; }

# ---------------------------------------------------------------------------------------------
# Cleanup: stop what we started (by PID), on exit, error or Ctrl-C.

PIDS=()
FAILED=""
stop_pid() { # stop_pid PID: SIGTERM (and SIGCONT), up to 5 s, then SIGKILL
  local pid=$1 i
  kill -TERM "${pid}" 2>/dev/null || return 0
  kill -CONT "${pid}" 2>/dev/null || true # a stopped process gets its SIGTERM only once resumed
  for ((i = 0; i < 50; i++)); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "${pid}" 2>/dev/null || true
  wait "${pid}" 2>/dev/null || true
}
# untrack_pid PID: forget a child that has exited and been reaped, so that cleanup never signals
# a process that later got the same PID.
untrack_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [[ "${p}" == "$1" ]] || keep+=("${p}"); done
  PIDS=("${keep[@]}")
}
cleanup() {
  trap - EXIT INT TERM
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "${pid}"; done
  if [[ -n "${WORK:-}" ]]; then
    if [[ -n "${KEEP_WORK:-}" || -n "${FAILED}" ]]; then
      say "work directory kept: ${WORK}"
    else
      rm -rf "${WORK}"
    fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Ports and readiness.

# port_busy PORT: something already listens on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a TCP port nobody listens on, on 127.0.0.1.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null || { echo "${p}"; return; }
  done
}

# wait_for SECONDS PID WHAT COMMAND...: poll COMMAND until it succeeds; fail if PID dies or time runs out.
wait_for() {
  local secs=$1 pid=$2 what=$3
  shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    kill -0 "${pid}" 2>/dev/null || die "${what} exited; see the logs in ${WORK}"
    ((SECONDS < deadline)) || die "${what} not ready after ${secs}s; see the logs in ${WORK}"
    sleep 0.1
  done
}

# http_is CODE URL [curl args...]: the URL answers with status CODE.
http_is() {
  local want=$1 url=$2
  shift 2
  [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "${url}")" == "${want}" ]]
}

# ---------------------------------------------------------------------------------------------
# The plugin, as Traefik loads a local one: a copy under WORK/plugins-local/src/<module path>
# (Traefik walks that tree, so no symlink to the repository).

# layout_plugin MODULE SRC FILES...: plugins-local/src/MODULE in WORK with copies of FILES from SRC.
layout_plugin() {
  local dir="${WORK}/plugins-local/src/$1" src=$2 f
  shift 2
  mkdir -p "${dir}"
  for f in "$@"; do cp "${src}/${f}" "${dir}/"; done
}

# layout_our_plugin: this repository's plugin (its non-test .go files, go.mod, .traefik.yml).
layout_our_plugin() {
  local files=() f
  for f in "${REPO}"/*.go; do
    [[ "${f}" == *_test.go ]] || files+=("$(basename "${f}")")
  done
  layout_plugin "${MODULE}" "${REPO}" "${files[@]}" go.mod .traefik.yml
}

