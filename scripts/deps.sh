#!/usr/bin/env bash
# Installs the Debian packages gridsense needs to build, run and test, if any are missing.
# Idempotent and quiet when everything is present. Uses sudo when not root.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang clang-format
  libuv1-dev libwebsockets-dev libwebsockets-evlib-uv
  zlib1g-dev libsqlite3-dev sqlite3 libsodium-dev libinih-dev libjansson-dev libcmocka-dev libfftw3-dev
  python3-jsonschema
  python3 python3-numpy curl
  wrk
  libssl-dev openssl
  chromium
  flac zstd xz-utils
  postgresql libpq-dev
  tshark libxml2-utils
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js for the npm packages (the browser tests): Debian's, unless a node is already there.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

npm_deps() {
  # The npm packages of package.json at the exact versions of the committed package-lock.json
  # (npm ci), only when node_modules does not match the lock file already. No browser download:
  # the tests drive Debian's chromium.
  cd "$(dirname "$0")/.."
  [ -f package-lock.json ] || return 0
  # npm writes node_modules/.package-lock.json at every install: newer than the lock = current
  [ node_modules/.package-lock.json -nt package-lock.json ] && return 0
  echo "deps: npm ci" >&2
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >/tmp/gridsense-npm.log 2>&1 || {
    echo "deps: npm ci failed; see /tmp/gridsense-npm.log" >&2
    tail -n 20 /tmp/gridsense-npm.log >&2
    exit 1
  }
}

if [ ${#missing[@]} -eq 0 ]; then
  npm_deps
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/gridsense-deps.log 2>&1; then
  # Fresh machines often have empty package lists: refresh once and retry.
  $SUDO apt-get update -q >>/tmp/gridsense-deps.log 2>&1 || true
  if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/gridsense-deps.log 2>&1; then
    echo "deps: apt-get failed; see /tmp/gridsense-deps.log" >&2
    tail -n 20 /tmp/gridsense-deps.log >&2
    exit 1
  fi
fi
echo "deps: done" >&2
npm_deps
