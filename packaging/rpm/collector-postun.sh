# pantalad %postun: on erase, remove the configuration, the data and the user
# (as DEB's purge does).
[ -d /run/systemd/system ] && systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" = 0 ]; then
    rm -f /etc/pantala/pantalad.json
    rmdir /etc/pantala 2>/dev/null || :
    rm -rf /var/lib/pantala
    getent passwd pantala >/dev/null && userdel pantala || :
    getent group pantala >/dev/null && groupdel pantala || :
fi
exit 0
