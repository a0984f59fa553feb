# pantala-agent %preun ($1: 0 erase, 1 upgrade): stop the service on erase.
if [ "$1" = 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop pantala-agent.service >/dev/null 2>&1 || :
        systemctl disable pantala-agent.service >/dev/null 2>&1 || :
    elif [ -x /etc/init.d/pantala-agent ]; then
        /etc/init.d/pantala-agent stop >/dev/null 2>&1 || :
        command -v chkconfig >/dev/null 2>&1 && chkconfig --del pantala-agent || :
    fi
fi
exit 0
