# pantalad %preun: stop the service on erase.
if [ "$1" = 0 ] && [ -d /run/systemd/system ]; then
    systemctl stop pantalad.service >/dev/null 2>&1 || :
    systemctl disable pantalad.service >/dev/null 2>&1 || :
fi
exit 0
