# pantalad %post: user, state directory, first configuration with a new token.
if ! getent passwd pantala >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /var/lib/pantala \
        --shell /sbin/nologin --comment "Pantala collector" pantala
fi
install -d -m 0750 -o pantala -g pantala /var/lib/pantala
install -d -m 0755 /etc/pantala
if [ ! -f /etc/pantala/pantalad.json ]; then
    token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    sed "s/CHANGE-ME-CHANGE-ME-CHANGE-ME/$token/" /usr/share/pantala/pantalad.json \
        >/etc/pantala/pantalad.json.new
    chown root:pantala /etc/pantala/pantalad.json.new
    chmod 0640 /etc/pantala/pantalad.json.new
    mv /etc/pantala/pantalad.json.new /etc/pantala/pantalad.json
    echo "pantalad: wrote /etc/pantala/pantalad.json with a new API token (see api.tokens)"
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    systemctl enable pantalad.service >/dev/null 2>&1 || :
    systemctl restart pantalad.service >/dev/null 2>&1 || :
fi
exit 0
