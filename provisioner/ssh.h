/* One SSH connection to one host, as the provisioner needs it: connect
 * with a timeout, check the host key against known_hosts, authenticate with
 * a key file or ssh-agent, run shell commands, upload files over SFTP.
 * libssh2 does the protocol; this file only shapes errors for operators.
 *
 * Not thread-safe per session; different sessions may be used from
 * different threads at once (prov_ssh_global_init() first). */
#ifndef PROV_SSH_H
#define PROV_SSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prov_ssh;

struct prov_ssh_opts {
    const char *host; /* name or address */
    uint16_t port;    /* 22 when 0 */
    const char *user;
    const char *key_file;    /* private key; NULL: use ssh-agent ($SSH_AUTH_SOCK) */
    const char *known_hosts; /* NULL: ~/.ssh/known_hosts */
    bool accept_new;         /* trust and record an unknown host key (never a changed one) */
    int connect_timeout_ms;  /* TCP connect + handshake + auth; 10 s when 0 */
    int command_timeout_ms;  /* longest silence of a command or transfer; 120 s when 0 */
};

/* libssh2_init(); once per process, before any thread connects. */
int prov_ssh_global_init(void);

/* Connects, checks the host key and authenticates. Returns 0, or <0 with a
 * message for an operator in err (what failed, and for a host key mismatch
 * both fingerprints and the known_hosts line to fix). */
int prov_ssh_connect(const struct prov_ssh_opts *o, struct prov_ssh **out, char *err,
                     size_t errlen);

/* SHA256:<base64> of the server's host key, as `ssh` prints it. */
const char *prov_ssh_fingerprint(const struct prov_ssh *s);

/* Runs cmd through the remote user's shell, stdin empty. The combined
 * output (stdout and stderr, at most 64 KiB kept) is returned in *output
 * (malloc'ed, NUL-terminated; may be NULL), the exit status in *status.
 * Returns 0 when the command ran (whatever its status), <0 when it could
 * not be run or timed out (err says which). */
int prov_ssh_run(struct prov_ssh *s, const char *cmd, char **output, int *status, char *err,
                 size_t errlen);

/* Writes len bytes of data to the remote file path (created or truncated,
 * with mode) over SFTP. Returns 0 or <0 with err. */
int prov_ssh_put(struct prov_ssh *s, const void *data, size_t len, const char *path, long mode,
                 char *err, size_t errlen);

void prov_ssh_close(struct prov_ssh *s);

/* Appends arg to a shell command line in buf, single-quoted so that the
 * remote shell passes it through unchanged. Returns 0 or -ENOSPC. */
int prov_shell_quote(char *buf, size_t cap, const char *arg);

#endif
