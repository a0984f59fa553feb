# pantala-agent %post ($1: 1 install, 2 upgrade): user, secured config, service.
if ! getent passwd pantala-agent >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /sbin/nologin --comment "Pantala monitoring agent" pantala-agent
fi
install -d -m 0755 /etc/pantala
if [ -f /etc/pantala/agent.json ]; then
    chown pantala-agent:pantala-agent /etc/pantala/agent.json
    chmod 0600 /etc/pantala/agent.json
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    systemctl enable pantala-agent.service >/dev/null 2>&1 || :
    [ -f /etc/pantala/agent.json ] && systemctl restart pantala-agent.service >/dev/null 2>&1 || :
elif [ -x /etc/init.d/pantala-agent ] && command -v chkconfig >/dev/null 2>&1; then
    chkconfig --add pantala-agent || :
fi
exit 0
