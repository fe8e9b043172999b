#!/usr/bin/env bash
# Installs redis-server from Debian's packages when it is not on PATH. The tests start and stop
# their own servers on loopback; nothing here starts one.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
sudo=""
if [[ "$(id -u)" != 0 ]]; then
  sudo="sudo"
fi
echo "installing redis-server (apt-get)" >&2
${sudo} apt-get update >&2
# No service is wanted: the package's own may fail to start in a container, which is harmless.
DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y --no-install-recommends redis-server >&2
command -v redis-server >/dev/null 2>&1 || { echo "redis-server still not on PATH" >&2; exit 1; }
