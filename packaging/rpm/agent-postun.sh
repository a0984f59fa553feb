# pantala-agent %postun ($1: 0 erase, 1 upgrade). RPM has no purge: erasing
# removes what DEB's purge removes (configuration with the key, log, user).
[ -d /run/systemd/system ] && systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" = 0 ]; then
    rm -f /etc/pantala/agent.json /var/log/pantala-agent.log /run/pantala-agent.pid
    rmdir /etc/pantala 2>/dev/null || :
    getent passwd pantala-agent >/dev/null && userdel pantala-agent || :
    getent group pantala-agent >/dev/null && groupdel pantala-agent || :
fi
exit 0
