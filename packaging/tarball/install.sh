#!/bin/sh
# Installs (or removes) the static pantala-agent from this tarball on any
# Linux: no package manager, no shared library needed.
#
#   As root:   ./install.sh [--prefix /usr/local] [--config agent.json] [--start]
#              binary in PREFIX/bin, system user pantala-agent, configuration
#              /etc/pantala/agent.json (0600, owned by the agent user), and a
#              service: a hardened systemd unit where systemd runs, else the
#              SysV/rc script /etc/init.d/pantala-agent.
#   As a user: ./install.sh --prefix ~/pantala [--config agent.json] [--start]
#              everything under PREFIX (bin/, etc/agent.json, log/, run/), run
#              as that user by PREFIX/bin/pantala-agentctl start|stop|status;
#              no boot-time service (that needs root). --local asks for this
#              self-contained layout as root too (the agent then runs as root).
#   Removal:   ./install.sh --uninstall [--prefix DIR]
#
# Re-running is an upgrade: the binary and service files are replaced, an
# existing configuration is kept unless --config is given. Exit status 0 on
# success, 1 on failure (with the reason), 2 on a usage error.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=
CONFIG_SRC=
START=0
LOCAL=0
UNINSTALL=0
ROOT=0
[ "$(id -u)" = 0 ] && ROOT=1

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    --config) CONFIG_SRC=${2:?--config needs a file}; shift 2 ;;
    --config=*) CONFIG_SRC=${1#--config=}; shift ;;
    --start) START=1; shift ;;
    --local) LOCAL=1; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

[ $ROOT = 1 ] || LOCAL=1
if [ -z "$PREFIX" ]; then
    if [ $LOCAL = 0 ]; then PREFIX=/usr/local; else PREFIX=$HOME/pantala; fi
fi
case "$PREFIX" in /*) ;; *) PREFIX=$(pwd)/$PREFIX ;; esac

if [ $LOCAL = 0 ]; then
    AGENT_USER=pantala-agent
    CONFIG=/etc/pantala/agent.json
    PIDFILE=/run/pantala-agent.pid
    LOGFILE=/var/log/pantala-agent.log
else
    AGENT_USER=$(id -un)
    CONFIG=$PREFIX/etc/agent.json
    PIDFILE=$PREFIX/run/pantala-agent.pid
    LOGFILE=$PREFIX/log/pantala-agent.log
fi
BIN=$PREFIX/bin/pantala-agent
CTL=$PREFIX/bin/pantala-agentctl
HAVE_SYSTEMD=0
[ $LOCAL = 0 ] && [ -d /run/systemd/system ] && HAVE_SYSTEMD=1
UNIT=/etc/systemd/system/pantala-agent.service
INIT=/etc/init.d/pantala-agent

# The SysV/rc script with this installation's paths.
write_ctl() {
    sed -e "s#^DAEMON=.*#DAEMON=$BIN#" -e "s#^CONFIG=.*#CONFIG=$CONFIG#" \
        -e "s#^PIDFILE=.*#PIDFILE=$PIDFILE#" -e "s#^LOGFILE=.*#LOGFILE=$LOGFILE#" \
        -e "s#^USER=.*#USER=$AGENT_USER#" \
        "$HERE/pantala-agent.init" >"$1.new"
    chmod 0755 "$1.new"
    mv "$1.new" "$1"
}

stop_agent() {
    if [ $HAVE_SYSTEMD = 1 ]; then
        systemctl stop pantala-agent.service 2>/dev/null || true
    elif [ -x "$CTL" ]; then
        "$CTL" stop >/dev/null 2>&1 || true
    elif [ -x "$INIT" ]; then
        "$INIT" stop >/dev/null 2>&1 || true
    fi
}

if [ $UNINSTALL = 1 ]; then
    stop_agent
    if [ $HAVE_SYSTEMD = 1 ] && [ -f "$UNIT" ]; then
        systemctl disable pantala-agent.service >/dev/null 2>&1 || true
        rm -f "$UNIT"
        systemctl daemon-reload || true
    fi
    if [ $LOCAL = 0 ] && [ -f "$INIT" ]; then
        command -v update-rc.d >/dev/null 2>&1 && update-rc.d pantala-agent remove >/dev/null 2>&1 || true
        command -v chkconfig >/dev/null 2>&1 && chkconfig --del pantala-agent >/dev/null 2>&1 || true
        command -v rc-update >/dev/null 2>&1 && rc-update del pantala-agent >/dev/null 2>&1 || true
        rm -f "$INIT"
    fi
    rm -f "$BIN" "$CTL" "$CONFIG" "$PIDFILE" "$LOGFILE"
    rm -rf "$PREFIX/share/pantala-agent"
    for d in "$PREFIX/etc" "$PREFIX/run" "$PREFIX/log" "$PREFIX/bin" "$PREFIX/share" "$PREFIX"; do
        [ $LOCAL = 0 ] && [ "$d" != "$PREFIX/etc" ] && continue # never remove /usr/local/bin
        rmdir "$d" 2>/dev/null || true
    done
    if [ $LOCAL = 0 ]; then
        rmdir /etc/pantala 2>/dev/null || true
        if getent passwd pantala-agent >/dev/null 2>&1; then
            userdel pantala-agent 2>/dev/null || deluser pantala-agent 2>/dev/null || true
        fi
        if getent group pantala-agent >/dev/null 2>&1; then
            groupdel pantala-agent 2>/dev/null || delgroup pantala-agent 2>/dev/null || true
        fi
    fi
    echo "pantala-agent removed from $PREFIX"
    exit 0
fi

[ -x "$HERE/bin/pantala-agent" ] || die "bin/pantala-agent is missing next to install.sh"
"$HERE/bin/pantala-agent" --version >/dev/null 2>&1 ||
    die "bin/pantala-agent does not run on this host ($(uname -m)); wrong architecture?"
if [ -n "$CONFIG_SRC" ]; then
    [ -r "$CONFIG_SRC" ] || die "cannot read $CONFIG_SRC"
    "$HERE/bin/pantala-agent" --config "$CONFIG_SRC" --check-config >/dev/null ||
        die "$CONFIG_SRC is not a valid agent configuration"
fi

if [ $LOCAL = 0 ] && ! getent passwd pantala-agent >/dev/null 2>&1; then
    if command -v useradd >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /sbin/nologin --comment "Pantala monitoring agent" pantala-agent
    elif command -v adduser >/dev/null 2>&1; then # BusyBox
        addgroup -S pantala-agent 2>/dev/null || true
        adduser -S -D -H -h /nonexistent -s /sbin/nologin -G pantala-agent pantala-agent
    else
        die "neither useradd nor adduser is available to create the user pantala-agent"
    fi
fi

stop_agent
mkdir -p "$PREFIX/bin" "$(dirname "$CONFIG")"
[ $LOCAL = 0 ] || mkdir -p "$PREFIX/run" "$PREFIX/log"
cp "$HERE/bin/pantala-agent" "$BIN.new"
chmod 0755 "$BIN.new"
mv "$BIN.new" "$BIN"
if [ -n "$CONFIG_SRC" ]; then
    (umask 077 && cp "$CONFIG_SRC" "$CONFIG.new")
    chmod 0600 "$CONFIG.new"
    mv "$CONFIG.new" "$CONFIG"
fi
if [ -f "$CONFIG" ]; then
    chmod 0600 "$CONFIG"
    if [ $LOCAL = 0 ]; then chown pantala-agent:pantala-agent "$CONFIG"; fi
fi
write_ctl "$CTL"
# Keep the installer and service files with the installation, so that
# `PREFIX/share/pantala-agent/install.sh --uninstall` works later without the
# tarball (the provisioner uses it).
SHARE=$PREFIX/share/pantala-agent
mkdir -p "$SHARE"
for f in install.sh pantala-agent.service pantala-agent.init; do
    if ! [ "$HERE/$f" -ef "$SHARE/$f" ]; then
        cp "$HERE/$f" "$SHARE/$f.new"
        mv "$SHARE/$f.new" "$SHARE/$f"
    fi
done

if [ $HAVE_SYSTEMD = 1 ]; then
    sed "s#^ExecStart=.*#ExecStart=$BIN --config $CONFIG#" "$HERE/pantala-agent.service" >"$UNIT"
    systemctl daemon-reload
    systemctl enable pantala-agent.service >/dev/null 2>&1
    service="systemd unit pantala-agent.service"
elif [ $LOCAL = 0 ]; then
    write_ctl "$INIT"
    command -v update-rc.d >/dev/null 2>&1 && update-rc.d pantala-agent defaults >/dev/null 2>&1 || true
    command -v chkconfig >/dev/null 2>&1 && chkconfig --add pantala-agent >/dev/null 2>&1 || true
    command -v rc-update >/dev/null 2>&1 && rc-update add pantala-agent default >/dev/null 2>&1 || true
    service="init script $INIT"
else
    service="$CTL (self-contained: no boot-time start)"
fi
echo "pantala-agent $("$BIN" --version | cut -d' ' -f2) installed in $PREFIX; service: $service"
[ -f "$CONFIG" ] || echo "next: write $CONFIG (mode 0600), then start the agent"

if [ $START = 1 ]; then
    [ -f "$CONFIG" ] || die "--start: $CONFIG is missing"
    if [ $HAVE_SYSTEMD = 1 ]; then
        systemctl restart pantala-agent.service
    elif [ $LOCAL = 0 ]; then
        "$INIT" start
    else
        "$CTL" start
    fi
fi
