#!/usr/bin/env bash
# Installs Pantala's build and test dependencies from Debian/Ubuntu packages.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  libuv1-dev libmsgpack-dev libmsgpuck-dev libjansson-dev libcurl4-openssl-dev
  libmicrohttpd-dev libsqlite3-dev libssl-dev
  zlib1g-dev
  libcmocka-dev clang python3 curl sqlite3
  zlib1g-dev
  # real servers the store tests start on loopback
  influxdb victoria-metrics
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
