#!/usr/bin/env bash
# Build a real Traefik binary from its Go module, cached outside the repo.
#
# Usage:
#   TRAEFIK=$(scripts/build-traefik.sh)   # prints ONLY the binary path on stdout
#
# Environment:
#   TRAEFIK_BIN        use this executable as-is (no build, no checks)
#   TRAEFIK_CACHE_DIR  cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/oauthintrospection)
#
# The binary ends up at $TRAEFIK_CACHE_DIR/traefik-v<version>/traefik. A second
# call returns at once when that binary runs and reports the expected version.
# Concurrent callers serialise on a flock, so only one of them builds.
#
# Why not `go install`: Traefik's go.mod carries replace directives, which
# `go install pkg@version` refuses. So the script builds from a throw-away
# wrapper module under the cache dir that repeats the replaces it needs and
# points a few modules at local copies it generates there:
#   - github.com/traefik/traefik/dynamic/ext: nested module Traefik never
#     published; replaced by a stub with the empty types Traefik embeds.
#   - github.com/go-acme/lego/v5: copied from the module cache with the DNS
#     providers whose cloud SDKs the module proxy here does not serve removed
#     from the provider registry (zz_gen_dns_providers.go).
#   - github.com/abbot/go-http-auth: Traefik uses a fork the module proxy does
#     not serve; we take upstream v0.4.0 and add the two functions Traefik
#     calls on the fork (CheckSecret, (*DigestAuth).RequireAuthStale).
# Nothing third-party is written inside the repository.
set -euo pipefail

TRAEFIK_VERSION="3.7.13"
LEGO_MODULE="github.com/go-acme/lego/v5"
LEGO_VERSION="v5.4.1"
HTTPAUTH_VERSION="v0.4.0"
MUX_REPLACEMENT="github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59"
# lego DNS providers whose SDK modules cannot be fetched here.
REMOVED_DNS_PROVIDERS="alidns aliesa azion dnsimple edgedns edgeone huaweicloud oraclecloud regfish sakuracloud tencentcloud ucloud yandexcloud"

log() { printf '[build-traefik] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ -n "${TRAEFIK_BIN:-}" ]]; then
  if [[ -x "${TRAEFIK_BIN}" ]]; then
    printf '%s\n' "${TRAEFIK_BIN}"
    exit 0
  fi
  log "TRAEFIK_BIN=${TRAEFIK_BIN} is not an executable file; building instead"
fi

CACHE_DIR="${TRAEFIK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/oauthintrospection}"
BIN_DIR="${CACHE_DIR}/traefik-v${TRAEFIK_VERSION}"
BIN="${BIN_DIR}/traefik"
WORK="${CACHE_DIR}/build-traefik-v${TRAEFIK_VERSION}"
LOCK="${CACHE_DIR}/traefik-v${TRAEFIK_VERSION}.lock"

# bin_ok: the cached binary runs and reports the expected version.
bin_ok() {
  [[ -x "${BIN}" ]] || return 1
  local out
  out="$("${BIN}" version 2>/dev/null)" || return 1
  grep -Eq "^Version:[[:space:]]+v?${TRAEFIK_VERSION//./\\.}\$" <<<"${out}"
}

if bin_ok; then
  printf '%s\n' "${BIN}"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "go is not on PATH"
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is not on PATH"

mkdir -p "${CACHE_DIR}"
exec 9>"${LOCK}"
if ! flock -n 9; then
  log "another build holds ${LOCK}; waiting for it"
  flock 9
fi
# Someone else may have finished the build while we waited.
if bin_ok; then
  log "built by a concurrent caller"
  printf '%s\n' "${BIN}"
  exit 0
fi

START=$(date +%s)
log "building Traefik v${TRAEFIK_VERSION} into ${BIN} (cold: several minutes, GBs of Go caches)"

# Module mode, no workspace; keep the caller's other GOFLAGS (e.g. -buildvcs=false).
export GO111MODULE=on GOWORK=off CGO_ENABLED=0
BUILD_GOFLAGS="${GOFLAGS:+${GOFLAGS} }-mod=mod"

# Start from a clean work dir: copies from the module cache are read-only.
if [[ -d "${WORK}" ]]; then
  chmod -R u+w "${WORK}" 2>/dev/null || true
  rm -rf "${WORK}"
fi
mkdir -p "${WORK}/dl"
# A module of its own to run `go mod download` in, whatever surrounds the cache dir.
printf 'module dl\n\ngo 1.21\n' >"${WORK}/dl/go.mod"

# mod_dir MODULE VERSION: download into the module cache, print its directory.
mod_dir() {
  local json dir
  json="$(cd "${WORK}/dl" && go mod download -json "$1@$2")" || die "go mod download $1@$2 failed"
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"${json}")"
  [[ -n "${dir}" && -d "${dir}" ]] || die "no module directory for $1@$2"
  printf '%s\n' "${dir}"
}

# copy_mod SRC DST: writable copy of a module-cache directory.
copy_mod() {
  cp -R "$1" "$2"
  chmod -R u+w "$2"
}

log "downloading github.com/traefik/traefik/v3@v${TRAEFIK_VERSION}"
TRAEFIK_SRC="$(mod_dir github.com/traefik/traefik/v3 "v${TRAEFIK_VERSION}")"

# Versions of golang.org/x deps as Traefik pins them (for the go-http-auth go.mod).
traefik_req() { awk -v m="$1" '$1==m {print $2; exit} $1=="require" && $2==m {print $3; exit}' "${TRAEFIK_SRC}/go.mod"; }
X_CRYPTO="$(traefik_req golang.org/x/crypto)"
X_NET="$(traefik_req golang.org/x/net)"
[[ -n "${X_CRYPTO}" && -n "${X_NET}" ]] || die "cannot read golang.org/x versions from Traefik's go.mod"

# 1) Stub for the unpublished nested module github.com/traefik/traefik/dynamic/ext.
log "generating stub module github.com/traefik/traefik/dynamic/ext"
mkdir -p "${WORK}/ext"
cat >"${WORK}/ext/go.mod" <<'EOF'
module github.com/traefik/traefik/dynamic/ext

go 1.21
EOF
cat >"${WORK}/ext/ext.go" <<'EOF'
// Package ext is a generated stand-in for Traefik's unpublished nested module
// of the same path. Traefik embeds these types (inline) in its dynamic
// configuration; in the open-source build they carry no fields.
package ext

// HTTP is embedded in dynamic.HTTPConfiguration.
type HTTP struct{}

// Router is embedded in dynamic.Router.
type Router struct{}
EOF

# 2) lego without the DNS providers whose SDKs are unavailable.
log "downloading ${LEGO_MODULE}@${LEGO_VERSION}"
LEGO_SRC="$(mod_dir "${LEGO_MODULE}" "${LEGO_VERSION}")"
copy_mod "${LEGO_SRC}" "${WORK}/lego"
REG="${WORK}/lego/providers/dns/zz_gen_dns_providers.go"
[[ -f "${REG}" ]] || die "lego provider registry not found: ${REG}"
log "removing lego DNS providers: ${REMOVED_DNS_PROVIDERS}"
awk -v drop="${REMOVED_DNS_PROVIDERS}" -v mod="${LEGO_MODULE}" '
  BEGIN { n = split(drop, a, " "); for (i = 1; i <= n; i++) d[a[i]] = 1 }
  # import line: "<mod>/providers/dns/<name>"
  {
    line = $0
    if (match(line, "^[ \t]*\"" mod "/providers/dns/[a-z0-9]+\"[ \t]*$")) {
      name = line; sub(/.*\/providers\/dns\//, "", name); sub(/".*/, "", name)
      if (name in d) { removed_imports++; next }
    }
  }
  # "case ...:" followed by "return <name>.NewDNSProvider()": hold the case line.
  held != "" {
    if (match($0, /^[ \t]*return [a-z0-9]+\.NewDNSProvider\(\)/)) {
      name = $0; sub(/^[ \t]*return /, "", name); sub(/\..*/, "", name)
      if (name in d) { held = ""; removed_cases++; next }
    }
    print held; held = ""
  }
  /^[ \t]*case .*:[ \t]*$/ { held = $0; next }
  { print }
  END {
    if (held != "") print held
    if (removed_imports != n || removed_cases != n) {
      printf "expected to remove %d imports and cases, removed %d imports and %d cases\n", n, removed_imports, removed_cases > "/dev/stderr"
      exit 3
    }
  }
' "${REG}" >"${REG}.new" || die "editing ${REG} failed"
mv "${REG}.new" "${REG}"
for p in ${REMOVED_DNS_PROVIDERS}; do
  rm -rf "${WORK}/lego/providers/dns/${p}"
done
# The removed providers also have tests in providers/dns; drop the registry test.
rm -f "${WORK}/lego/providers/dns/dns_providers_test.go"

# 3) go-http-auth: upstream plus the two functions Traefik uses from its fork.
log "downloading github.com/abbot/go-http-auth@${HTTPAUTH_VERSION}"
HTTPAUTH_SRC="$(mod_dir github.com/abbot/go-http-auth "${HTTPAUTH_VERSION}")"
copy_mod "${HTTPAUTH_SRC}" "${WORK}/go-http-auth"
rm -rf "${WORK}/go-http-auth/examples"
cat >"${WORK}/go-http-auth/go.mod" <<EOF
module github.com/abbot/go-http-auth

go 1.21

require (
	golang.org/x/crypto ${X_CRYPTO}
	golang.org/x/net ${X_NET}
)
EOF
cat >"${WORK}/go-http-auth/traefik_compat.go" <<'EOF'
// Generated by scripts/build-traefik.sh: functions Traefik calls on its fork
// of this package, built on the package's own helpers.

package auth

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// CheckSecret reports whether password matches secret, an htpasswd-style
// hash: MD5-crypt ($apr1$, $1$), SHA1 ({SHA}) or bcrypt ($2a$, $2b$, $2x$, $2y$).
func CheckSecret(password, secret string) bool {
	compare := compareFuncs[0].compare
	for _, cmp := range compareFuncs[1:] {
		if strings.HasPrefix(secret, cmp.prefix) {
			compare = cmp.compare
			break
		}
	}
	return compare([]byte(secret), []byte(password)) == nil
}

// RequireAuthStale answers 401 with a fresh Digest challenge flagged
// stale=true, telling the client to retry with the new nonce.
func (a *DigestAuth) RequireAuthStale(w http.ResponseWriter, r *http.Request) {
	a.mutex.Lock()
	if a.clients == nil {
		a.clients = map[string]*digest_client{}
	}
	if len(a.clients) > a.ClientCacheSize+a.ClientCacheTolerance {
		a.Purge(a.ClientCacheTolerance * 2)
	}
	nonce := RandomKey()
	a.clients[nonce] = &digest_client{nc: 0, last_seen: time.Now().UnixNano()}
	a.mutex.Unlock()

	w.Header().Set(contentType, a.Headers.V().UnauthContentType)
	w.Header().Set(a.Headers.V().Authenticate,
		fmt.Sprintf(`Digest realm="%s", nonce="%s", opaque="%s", algorithm="MD5", qop="auth", stale=true`,
			a.Realm, nonce, a.Opaque))
	w.WriteHeader(a.Headers.V().UnauthCode)
	_, _ = w.Write([]byte(a.Headers.V().UnauthResponse))
}
EOF

# 4) Wrapper module.
log "creating wrapper module"
mkdir -p "${WORK}/wrapper"
GO_LINE="$(awk '$1=="go" {print $2; exit}' "${TRAEFIK_SRC}/go.mod")"
cat >"${WORK}/wrapper/go.mod" <<EOF
module oauthintrospection.local/traefikbuild

go ${GO_LINE}

replace (
	github.com/abbot/go-http-auth => ../go-http-auth
	${LEGO_MODULE} => ../lego
	github.com/gorilla/mux => ${MUX_REPLACEMENT}
	github.com/traefik/traefik/dynamic/ext => ../ext
)
EOF

log "resolving modules (go get -tool github.com/traefik/traefik/v3/cmd/traefik@v${TRAEFIK_VERSION})"
(cd "${WORK}/wrapper" && GOFLAGS="${BUILD_GOFLAGS}" go get -tool "github.com/traefik/traefik/v3/cmd/traefik@v${TRAEFIK_VERSION}" >&2) \
  || die "go get failed"

log "compiling (go build -trimpath)"
BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
mkdir -p "${BIN_DIR}"
TMP_BIN="$(mktemp "${BIN_DIR}/.traefik.XXXXXX")"
trap 'rm -f "${TMP_BIN}"' EXIT
(cd "${WORK}/wrapper" && GOFLAGS="${BUILD_GOFLAGS}" go build -trimpath -o "${TMP_BIN}" -ldflags "-s -w \
  -X github.com/traefik/traefik/v3/pkg/version.Version=${TRAEFIK_VERSION} \
  -X github.com/traefik/traefik/v3/pkg/version.BuildDate=${BUILD_DATE}" \
  github.com/traefik/traefik/v3/cmd/traefik >&2) || die "go build failed"
chmod 0755 "${TMP_BIN}"
"${TMP_BIN}" version >&2 || die "built binary does not run"
mv -f "${TMP_BIN}" "${BIN}"
trap - EXIT
bin_ok || die "installed binary does not report version ${TRAEFIK_VERSION}"

log "done in $(( $(date +%s) - START ))s: ${BIN}"
printf '%s\n' "${BIN}"
