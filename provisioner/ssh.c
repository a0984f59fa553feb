/* SSH sessions over libssh2, in blocking mode with timeouts. */
#include "ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <openssl/evp.h>

#define OUTPUT_MAX (64 * 1024)

struct prov_ssh {
    int fd;
    LIBSSH2_SESSION *sess;
    char fingerprint[64]; /* SHA256:... */
    char where[300];      /* user@host:port, for messages */
    int command_timeout_ms;
};

int prov_ssh_global_init(void)
{
    return libssh2_init(0) == 0 ? 0 : -EIO;
}

static const char *last_error(LIBSSH2_SESSION *sess)
{
    char *msg = NULL;
    libssh2_session_last_error(sess, &msg, NULL, 0);
    return msg && *msg ? msg : "unknown error";
}

/* SHA256:<unpadded base64 of the SHA-256 of blob>, as OpenSSH prints it. */
static void fingerprint_of(const unsigned char *digest, char *out, size_t cap)
{
    unsigned char b64[64];
    int n = EVP_EncodeBlock(b64, digest, 32);
    while (n > 0 && b64[n - 1] == '=') n--;
    snprintf(out, cap, "SHA256:%.*s", n, (const char *)b64);
}

/* The fingerprint of a known_hosts entry's key (base64 of the key blob). */
static void fingerprint_b64key(const char *b64key, char *out, size_t cap)
{
    size_t len = strlen(b64key);
    unsigned char *blob = malloc(len + 3);
    unsigned char digest[32];
    unsigned int dlen = 0;
    if (!blob) {
        snprintf(out, cap, "(unknown)");
        return;
    }
    int n = EVP_DecodeBlock(blob, (const unsigned char *)b64key, (int)len);
    while (n > 0 && len > 0 && b64key[len - 1] == '=') { /* DecodeBlock counts padding */
        n--;
        len--;
    }
    if (n < 0 || !EVP_Digest(blob, (size_t)n, digest, &dlen, EVP_sha256(), NULL))
        snprintf(out, cap, "(unreadable)");
    else
        fingerprint_of(digest, out, cap);
    free(blob);
}

/* TCP connect with a deadline; returns the connected (blocking) socket. */
static int tcp_connect(const char *host, uint16_t port, int timeout_ms, char *err, size_t errlen)
{
    char portstr[8];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    snprintf(portstr, sizeof portstr, "%u", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -EHOSTUNREACH;
    }
    int last = ETIMEDOUT;
    for (ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            int pr = poll(&p, 1, timeout_ms);
            if (pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && !soerr) {
                fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
                freeaddrinfo(res);
                return fd;
            }
            last = pr == 0 ? ETIMEDOUT : soerr ? soerr : errno;
        } else {
            last = errno;
        }
        close(fd);
    }
    freeaddrinfo(res);
    if (last == ECONNREFUSED)
        snprintf(err, errlen,
                 "connection to %s port %u refused: nothing listens there (is sshd running? is "
                 "--port right?)",
                 host, port);
    else if (last == ETIMEDOUT)
        snprintf(err, errlen,
                 "no answer from %s port %u within %d s (host down, or a firewall drops SSH?)",
                 host, port, timeout_ms / 1000);
    else
        snprintf(err, errlen, "cannot connect to %s port %u: %s", host, port, strerror(last));
    return -last;
}

static int knownhost_keybit(int type)
{
    switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA:
        return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS:
        return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
#ifdef LIBSSH2_HOSTKEY_TYPE_ECDSA_256
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
#endif
#ifdef LIBSSH2_HOSTKEY_TYPE_ED25519
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
        return LIBSSH2_KNOWNHOST_KEY_ED25519;
#endif
    default:
        return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
    }
}

/* Checks the host key against known_hosts; records it when unknown and
 * accept_new is set. */
static int check_host_key(struct prov_ssh *s, const struct prov_ssh_opts *o, uint16_t port,
                          char *err, size_t errlen)
{
    char khpath[1024];
    if (o->known_hosts) {
        snprintf(khpath, sizeof khpath, "%s", o->known_hosts);
    } else {
        const char *home = getenv("HOME");
        snprintf(khpath, sizeof khpath, "%s/.ssh/known_hosts", home ? home : ".");
    }
    size_t klen;
    int ktype;
    const char *key = libssh2_session_hostkey(s->sess, &klen, &ktype);
    const char *digest = libssh2_hostkey_hash(s->sess, LIBSSH2_HOSTKEY_HASH_SHA256);
    if (!key || !digest) {
        snprintf(err, errlen, "%s: the server sent no usable host key", s->where);
        return -EPROTO;
    }
    fingerprint_of((const unsigned char *)digest, s->fingerprint, sizeof s->fingerprint);

    LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(s->sess);
    if (!kh) return -ENOMEM;
    if (access(khpath, F_OK) == 0 &&
        libssh2_knownhost_readfile(kh, khpath, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
        snprintf(err, errlen, "cannot read %s: %s", khpath, last_error(s->sess));
        libssh2_knownhost_free(kh);
        return -EIO;
    }
    int typemask =
        LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | knownhost_keybit(ktype);
    struct libssh2_knownhost *found = NULL;
    int rc = libssh2_knownhost_checkp(kh, o->host, port, key, klen, typemask, &found);
    int ret = 0;
    char hostname[300];
    if (port == 22)
        snprintf(hostname, sizeof hostname, "%s", o->host);
    else
        snprintf(hostname, sizeof hostname, "[%s]:%u", o->host, port);
    if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
        ret = 0;
    } else if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
        char known[64];
        fingerprint_b64key(found && found->key ? found->key : "", known, sizeof known);
        snprintf(err, errlen,
                 "HOST KEY MISMATCH for %s: the server presents %s but %s records %s. Someone "
                 "may be intercepting the connection, or the host was reinstalled; if you know "
                 "the new key is right, remove the old one with: ssh-keygen -R '%s' -f %s",
                 hostname, s->fingerprint, khpath, known, hostname, khpath);
        ret = -EACCES;
    } else if (rc == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND && o->accept_new) {
        if (libssh2_knownhost_addc(kh, hostname, NULL, key, klen, "pantala", 7, typemask, NULL) ||
            libssh2_knownhost_writefile(kh, khpath, LIBSSH2_KNOWNHOST_FILE_OPENSSH)) {
            snprintf(err, errlen, "cannot record the host key of %s in %s: %s", hostname, khpath,
                     last_error(s->sess));
            ret = -EIO;
        }
    } else if (rc == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) {
        snprintf(err, errlen,
                 "unknown host key for %s (%s): not in %s. Check the fingerprint, then re-run "
                 "with --accept-new to trust it (or add it with: ssh-keyscan -p %u %s >> %s)",
                 hostname, s->fingerprint, khpath, port, o->host, khpath);
        ret = -EACCES;
    } else {
        snprintf(err, errlen, "cannot check the host key of %s: %s", hostname, last_error(s->sess));
        ret = -EIO;
    }
    libssh2_knownhost_free(kh);
    return ret;
}

static int authenticate(struct prov_ssh *s, const struct prov_ssh_opts *o, char *err, size_t errlen)
{
    if (o->key_file) {
        if (access(o->key_file, R_OK) != 0) {
            snprintf(err, errlen, "cannot read the key file %s: %s", o->key_file, strerror(errno));
            return -errno;
        }
        int rc = libssh2_userauth_publickey_fromfile(s->sess, o->user, NULL, o->key_file, NULL);
        if (rc == 0) return 0;
        if (rc == LIBSSH2_ERROR_FILE)
            snprintf(err, errlen,
                     "cannot use the key file %s (%s); a passphrase-protected key must be "
                     "loaded into ssh-agent instead",
                     o->key_file, last_error(s->sess));
        else
            snprintf(err, errlen,
                     "%s refused the key %s for user %s (is its public key in that user's "
                     "~/.ssh/authorized_keys?)",
                     s->where, o->key_file, o->user);
        return -EACCES;
    }
    LIBSSH2_AGENT *ag = libssh2_agent_init(s->sess);
    if (!ag) return -ENOMEM;
    int ret = -EACCES;
    if (libssh2_agent_connect(ag) || libssh2_agent_list_identities(ag)) {
        snprintf(err, errlen,
                 "no --key given and no ssh-agent reachable (SSH_AUTH_SOCK %s): give --key FILE "
                 "or start ssh-agent and ssh-add your key",
                 getenv("SSH_AUTH_SOCK") ? "is set but does not answer" : "is not set");
    } else {
        struct libssh2_agent_publickey *id = NULL, *prev = NULL;
        int tried = 0;
        while (libssh2_agent_get_identity(ag, &id, prev) == 0) {
            tried++;
            if (libssh2_agent_userauth(ag, o->user, id) == 0) {
                ret = 0;
                break;
            }
            prev = id;
        }
        if (ret)
            snprintf(err, errlen, "%s refused all %d key(s) of ssh-agent for user %s", s->where,
                     tried, o->user);
        libssh2_agent_disconnect(ag);
    }
    libssh2_agent_free(ag);
    return ret;
}

int prov_ssh_connect(const struct prov_ssh_opts *o, struct prov_ssh **out, char *err, size_t errlen)
{
    *out = NULL;
    uint16_t port = o->port ? o->port : 22;
    int cto = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    struct prov_ssh *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->fd = -1;
    s->command_timeout_ms = o->command_timeout_ms > 0 ? o->command_timeout_ms : 120000;
    snprintf(s->where, sizeof s->where, "%s@%s:%u", o->user, o->host, port);
    int rc = tcp_connect(o->host, port, cto, err, errlen);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->fd = rc;
    s->sess = libssh2_session_init();
    if (!s->sess) {
        prov_ssh_close(s);
        return -ENOMEM;
    }
    libssh2_session_set_blocking(s->sess, 1);
    libssh2_session_set_timeout(s->sess, cto);
    if (libssh2_session_handshake(s->sess, s->fd)) {
        snprintf(err, errlen, "SSH handshake with %s failed: %s", s->where, last_error(s->sess));
        prov_ssh_close(s);
        return -EPROTO;
    }
    if ((rc = check_host_key(s, o, port, err, errlen)) || (rc = authenticate(s, o, err, errlen))) {
        prov_ssh_close(s);
        return rc;
    }
    libssh2_session_set_timeout(s->sess, s->command_timeout_ms);
    *out = s;
    return 0;
}

const char *prov_ssh_fingerprint(const struct prov_ssh *s)
{
    return s->fingerprint;
}

int prov_ssh_run(struct prov_ssh *s, const char *cmd, char **output, int *status, char *err,
                 size_t errlen)
{
    if (output) *output = NULL;
    *status = -1;
    LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(s->sess);
    if (!ch) {
        snprintf(err, errlen, "%s: cannot open a channel: %s", s->where, last_error(s->sess));
        return -EIO;
    }
    libssh2_channel_handle_extended_data2(ch, LIBSSH2_CHANNEL_EXTENDED_DATA_MERGE);
    if (libssh2_channel_exec(ch, cmd)) {
        snprintf(err, errlen, "%s: cannot run a command: %s", s->where, last_error(s->sess));
        libssh2_channel_free(ch);
        return -EIO;
    }
    char *buf = malloc(OUTPUT_MAX + 1);
    size_t len = 0;
    char chunk[4096];
    int ret = 0;
    for (;;) {
        ssize_t n = libssh2_channel_read(ch, chunk, sizeof chunk);
        if (n > 0) {
            size_t keep = (size_t)n;
            if (len + keep > OUTPUT_MAX) keep = OUTPUT_MAX - len;
            if (buf) memcpy(buf + len, chunk, keep);
            len += keep;
            continue;
        }
        if (n == 0 && libssh2_channel_eof(ch)) break;
        if (n == 0) continue;
        if (n == LIBSSH2_ERROR_TIMEOUT)
            snprintf(err, errlen, "%s: the command gave no sign of life for %d s: %.200s", s->where,
                     s->command_timeout_ms / 1000, cmd);
        else
            snprintf(err, errlen, "%s: reading the command's output failed: %s", s->where,
                     last_error(s->sess));
        ret = n == LIBSSH2_ERROR_TIMEOUT ? -ETIMEDOUT : -EIO;
        break;
    }
    if (!ret) {
        libssh2_channel_close(ch);
        libssh2_channel_wait_closed(ch);
        *status = libssh2_channel_get_exit_status(ch);
    }
    libssh2_channel_free(ch);
    if (buf) buf[len] = '\0';
    if (output)
        *output = buf;
    else
        free(buf);
    return ret;
}

int prov_ssh_put(struct prov_ssh *s, const void *data, size_t len, const char *path, long mode,
                 char *err, size_t errlen)
{
    LIBSSH2_SFTP *sftp = libssh2_sftp_init(s->sess);
    if (!sftp) {
        snprintf(err, errlen, "%s: cannot start SFTP (is the sftp subsystem enabled?): %s",
                 s->where, last_error(s->sess));
        return -EIO;
    }
    int ret = 0;
    LIBSSH2_SFTP_HANDLE *h = libssh2_sftp_open(
        sftp, path, LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC, mode);
    if (!h) {
        snprintf(err, errlen, "%s: cannot create %s over SFTP (SFTP error %lu)", s->where, path,
                 libssh2_sftp_last_error(sftp));
        ret = -EIO;
    } else {
        const char *p = data;
        size_t off = 0;
        while (off < len) {
            ssize_t n = libssh2_sftp_write(h, p + off, len - off);
            if (n < 0) {
                snprintf(err, errlen, "%s: writing %s over SFTP failed after %zu of %zu bytes: %s",
                         s->where, path, off, len, last_error(s->sess));
                ret = -EIO;
                break;
            }
            off += (size_t)n;
        }
        if (libssh2_sftp_close(h) && !ret) {
            snprintf(err, errlen, "%s: closing %s over SFTP failed", s->where, path);
            ret = -EIO;
        }
    }
    libssh2_sftp_shutdown(sftp);
    return ret;
}

void prov_ssh_close(struct prov_ssh *s)
{
    if (!s) return;
    if (s->sess) {
        libssh2_session_disconnect(s->sess, "pantala: done");
        libssh2_session_free(s->sess);
    }
    if (s->fd >= 0) close(s->fd);
    free(s);
}

int prov_shell_quote(char *buf, size_t cap, const char *arg)
{
    size_t n = strlen(buf);
    if (n + 1 >= cap) return -ENOSPC;
    if (n && buf[n - 1] != ' ') buf[n++] = ' ';
    buf[n++] = '\'';
    for (const char *p = arg; *p; p++) {
        const char *piece = *p == '\'' ? "'\\''" : NULL;
        size_t plen = piece ? 4 : 1;
        if (n + plen + 2 > cap) return -ENOSPC;
        if (piece)
            memcpy(buf + n, piece, plen);
        else
            buf[n] = *p;
        n += plen;
    }
    buf[n++] = '\'';
    buf[n] = '\0';
    return 0;
}
