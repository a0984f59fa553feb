#!/bin/sh
# Makes the agent's tarball for Linux hosts without DEB or RPM:
#   make-tarball.sh AGENT_BINARY OUTDIR
# -> OUTDIR/pantala-agent-<version>-linux-<arch>.tar.gz holding
#    bin/pantala-agent, install.sh, pantala-agent.service, pantala-agent.init,
#    agent.json.example, README.md (docs/agent.md) and copyright.
# Meant for the static build (PT_AGENT_STATIC), which runs on any Linux; a
# dynamically linked binary is packed too, with a warning.
set -eu
BIN=${1:?usage: make-tarball.sh AGENT_BINARY OUTDIR}
OUT=${2:?usage: make-tarball.sh AGENT_BINARY OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)

version=$("$BIN" --version | cut -d' ' -f2)
arch=$(uname -m)
name=pantala-agent-$version-linux-$arch
if file "$BIN" 2>/dev/null | grep -q 'dynamically linked'; then
    echo "make-tarball.sh: warning: $BIN is dynamically linked; the tarball is meant for the" \
        "static build (-DPT_AGENT_STATIC=ON)" >&2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
d=$tmp/$name
mkdir -p "$d/bin"
cp "$BIN" "$d/bin/pantala-agent"
strip "$d/bin/pantala-agent" 2>/dev/null || true
cp "$HERE/install.sh" "$d/install.sh"
cp "$HERE/../systemd/pantala-agent.service" "$d/pantala-agent.service"
cp "$HERE/../sysv/pantala-agent" "$d/pantala-agent.init"
cp "$SRC/agent/agent.json.example" "$d/agent.json.example"
cp "$SRC/docs/agent.md" "$d/README.md"
cp "$HERE/../copyright" "$d/copyright"
chmod 0755 "$d/bin/pantala-agent" "$d/install.sh" "$d/pantala-agent.init"
chmod 0644 "$d/pantala-agent.service" "$d/agent.json.example" "$d/README.md" "$d/copyright"
mkdir -p "$OUT"
# Owner and times fixed, so the same inputs give the same tarball.
tar --owner=0 --group=0 --numeric-owner --mtime='2026-01-01 00:00:00Z' --sort=name \
    -C "$tmp" -czf "$OUT/$name.tar.gz" "$name"
echo "$OUT/$name.tar.gz"
