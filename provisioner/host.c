/* One host's provisioning: detection, the install plan per package kind,
 * the undo stack, and the checks that make re-running safe. */
#include "pt/prov.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "collector.h"
#include "ssh.h"

#define CMD_MAX  4096
#define UNDO_MAX 8
#define PKG_MAX  (64 * 1024 * 1024)
#define POLL_MS  250

/* What the host told us about itself. */
struct detect {
    char id[32], like[96], version_id[32], arch[32];
    bool root, sudo, systemd, dpkg, rpm, sha;
    char deb_ver[32], rpm_ver[32], tgz_ver[32]; /* installed agent, by kind */
};

struct undo {
    char cmd[1024];    /* remote command, or "" */
    uint64_t agent_id; /* a registration to delete, or 0 */
    char what[64];
};

struct job {
    enum prov_action action;
    const struct prov_host *h;
    const struct prov_opts *o;
    struct prov_result *r;
    prov_progress_fn fn;
    void *ud;
    size_t idx;
    struct prov_ssh *ssh;
    struct prov_collector coll;
    struct detect d;
    const char *sudo; /* "" or "sudo -n " */
    char prefix[512]; /* the tarball's prefix */
    char conf_path[600];
    char tmpdir[128];
    struct undo undo[UNDO_MAX];
    int nundo;
    char err[1024];
};

/* arg as one single-quoted shell word in buf (replacing its contents). */
static const char *quoted(char *buf, size_t cap, const char *arg)
{
    buf[0] = '\0';
    prov_shell_quote(buf, cap, arg);
    return buf;
}

static void step(struct job *j, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void step(struct job *j, const char *name, const char *fmt, ...)
{
    char msg[512] = "";
    snprintf(j->r->step, sizeof j->r->step, "%s", name);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    if (j->fn) j->fn(j->ud, j->idx, j->h, name, msg);
}

/* Runs a command; fails (with its output in j->err) unless it exits 0. */
static int run(struct job *j, const char *what, const char *cmd, char **out)
{
    char *o = NULL;
    int status;
    int rc = prov_ssh_run(j->ssh, cmd, &o, &status, j->err, sizeof j->err);
    if (rc == 0 && status != 0) {
        size_t n = o ? strlen(o) : 0;
        while (n && (o[n - 1] == '\n' || o[n - 1] == ' ')) o[--n] = '\0';
        snprintf(j->err, sizeof j->err, "%s failed (exit %d): %s", what, status,
                 o && *o ? o : "(no output)");
        rc = -EIO;
    }
    if (out && rc == 0)
        *out = o;
    else
        free(o);
    return rc;
}

static void push_undo(struct job *j, const char *what, const char *cmd, uint64_t agent_id)
{
    if (j->nundo == UNDO_MAX) return;
    struct undo *u = &j->undo[j->nundo++];
    snprintf(u->what, sizeof u->what, "%s", what);
    snprintf(u->cmd, sizeof u->cmd, "%s", cmd ? cmd : "");
    u->agent_id = agent_id;
}

/* Undoes, newest first; says what in r->detail after the error. */
static void rollback(struct job *j)
{
    char done[512] = "";
    size_t n = 0;
    for (int i = j->nundo - 1; i >= 0; i--) {
        struct undo *u = &j->undo[i];
        char err[512];
        int ok = 1;
        if (u->cmd[0]) {
            char *o = NULL;
            int status;
            ok = prov_ssh_run(j->ssh, u->cmd, &o, &status, err, sizeof err) == 0 && status == 0;
            free(o);
        }
        if (u->agent_id) ok = prov_coll_delete(&j->coll, u->agent_id, err, sizeof err) == 0 && ok;
        int w = snprintf(done + n, sizeof done - n, "%s%s%s", n ? ", " : "", u->what,
                         ok ? "" : " (FAILED)");
        if (w > 0 && (size_t)w < sizeof done - n) n += (size_t)w;
    }
    j->nundo = 0;
    if (n) {
        size_t dl = strlen(j->r->detail);
        snprintf(j->r->detail + dl, sizeof j->r->detail - dl, "; rolled back: %s", done);
    }
}

static void kv(const char *text, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    out[0] = '\0';
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            size_t vl = len - kl - 1;
            if (vl >= cap) vl = cap - 1;
            memcpy(out, p + kl + 1, vl);
            out[vl] = '\0';
            return;
        }
        p = eol ? eol + 1 : NULL;
    }
}

static bool kv_set(const char *text, const char *key)
{
    char v[8];
    kv(text, key, v, sizeof v);
    return v[0] == '1';
}

static int detect(struct job *j)
{
    char cmd[CMD_MAX] = "";
    char p[600] = "";
    quoted(p, sizeof p, j->prefix);
    snprintf(cmd, sizeof cmd,
             ". /etc/os-release 2>/dev/null; echo \"id=$ID\"; echo \"like=$ID_LIKE\"; "
             "echo \"version_id=$VERSION_ID\"; echo \"arch=$(uname -m)\"; echo \"uid=$(id -u)\"; "
             "if command -v dpkg-query >/dev/null 2>&1; then echo dpkg=1; "
             "echo \"deb_ver=$(dpkg-query -W -f='${Status} ${Version}' pantala-agent 2>/dev/null"
             " | sed -n 's/^install ok installed //p')\"; fi; "
             "if command -v rpm >/dev/null 2>&1 && ! command -v dpkg-query >/dev/null 2>&1; then "
             "echo rpm=1; echo \"rpm_ver=$(rpm -q --qf '%%{VERSION}' pantala-agent 2>/dev/null |"
             " grep -v 'not installed')\"; fi; "
             "[ -d /run/systemd/system ] && echo systemd=1; "
             "sudo -n true >/dev/null 2>&1 && echo sudo=1; "
             "command -v sha256sum >/dev/null 2>&1 && echo sha=1; "
             "[ -x %s/bin/pantala-agent ] && echo \"tgz_ver=$(%s/bin/pantala-agent --version | "
             "cut -d' ' -f2)\"; true",
             p, p);
    char *out = NULL;
    int rc = run(j, "detecting the OS", cmd, &out);
    if (rc) return rc;
    struct detect *d = &j->d;
    char uid[16];
    kv(out, "id", d->id, sizeof d->id);
    kv(out, "like", d->like, sizeof d->like);
    kv(out, "version_id", d->version_id, sizeof d->version_id);
    kv(out, "arch", d->arch, sizeof d->arch);
    kv(out, "uid", uid, sizeof uid);
    kv(out, "deb_ver", d->deb_ver, sizeof d->deb_ver);
    kv(out, "rpm_ver", d->rpm_ver, sizeof d->rpm_ver);
    kv(out, "tgz_ver", d->tgz_ver, sizeof d->tgz_ver);
    d->root = !strcmp(uid, "0");
    d->sudo = kv_set(out, "sudo");
    d->systemd = kv_set(out, "systemd");
    d->dpkg = kv_set(out, "dpkg");
    d->rpm = kv_set(out, "rpm");
    d->sha = kv_set(out, "sha");
    free(out);
    snprintf(j->r->os, sizeof j->r->os, "%s %s %s", d->id[0] ? d->id : "linux", d->version_id,
             d->arch);
    return 0;
}

/* deb, rpm or tgz for this host. */
static const char *choose_kind(struct job *j)
{
    if (j->h->prefix) return "tgz"; /* an unprivileged install: only the tarball can */
    if (j->o->kind) return j->o->kind;
    char os[160];
    snprintf(os, sizeof os, " %s %s ", j->d.id, j->d.like);
    if (j->d.dpkg && (strstr(os, "debian") || strstr(os, "ubuntu"))) return "deb";
    if (j->d.rpm &&
        (strstr(os, "rhel") || strstr(os, "fedora") || strstr(os, "centos") || strstr(os, "suse") ||
         strstr(os, "rocky") || strstr(os, "almalinux") || strstr(os, "amzn")))
        return "rpm";
    if (j->d.dpkg) return "deb";
    if (j->d.rpm) return "rpm";
    return "tgz";
}

static const char *installed_version(struct job *j, const char *kind)
{
    const char *v = !strcmp(kind, "deb")   ? j->d.deb_ver
                    : !strcmp(kind, "rpm") ? j->d.rpm_ver
                                           : j->d.tgz_ver;
    return v[0] ? v : NULL;
}

/* The package file for kind and the host's architecture. */
struct pkg {
    char path[1024], name[256], version[32];
    unsigned char *data;
    size_t len;
    char sha[65];
};

static const char *deb_arch(const char *m)
{
    if (!strcmp(m, "x86_64")) return "amd64";
    if (!strcmp(m, "aarch64")) return "arm64";
    if (!strncmp(m, "armv7", 5)) return "armhf";
    if (!strcmp(m, "i686") || !strcmp(m, "i386")) return "i386";
    return m;
}

static int find_package(struct job *j, const char *kind, struct pkg *p)
{
    char pattern[256];
    memset(p, 0, sizeof *p);
    if (!strcmp(kind, "deb"))
        snprintf(pattern, sizeof pattern, "pantala-agent_*_%s.deb", deb_arch(j->d.arch));
    else if (!strcmp(kind, "rpm"))
        snprintf(pattern, sizeof pattern, "pantala-agent-*.%s.rpm", j->d.arch);
    else
        snprintf(pattern, sizeof pattern, "pantala-agent-*-linux-%s.tar.gz", j->d.arch);
    const char *dir = j->o->package_dir ? j->o->package_dir : ".";
    DIR *dp = opendir(dir);
    if (!dp) {
        snprintf(j->err, sizeof j->err, "cannot open the package directory %s: %s", dir,
                 strerror(errno));
        return -errno;
    }
    struct dirent *e;
    while ((e = readdir(dp)))
        if (!fnmatch(pattern, e->d_name, 0) && strcmp(e->d_name, p->name) > 0)
            snprintf(p->name, sizeof p->name, "%s", e->d_name); /* the highest name wins */
    closedir(dp);
    if (!p->name[0]) {
        snprintf(j->err, sizeof j->err,
                 "no %s package for %s in %s (looked for %s; build it with cpack, or "
                 "--target agent-tarball)",
                 kind, j->d.arch, dir, pattern);
        return -ENOENT;
    }
    snprintf(p->path, sizeof p->path, "%s/%s", dir, p->name);
    /* The version from the name: _<v>_ (deb), -<v>- (rpm), -<v>-linux- (tgz). */
    const char *v = p->name + strlen("pantala-agent") + 1;
    size_t vl = strcspn(v, !strcmp(kind, "deb") ? "_" : "-");
    snprintf(p->version, sizeof p->version, "%.*s", (int)vl, v);

    FILE *f = fopen(p->path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) || st.st_size > PKG_MAX) {
        snprintf(j->err, sizeof j->err, "cannot read %s: %s", p->path,
                 f ? "too large" : strerror(errno));
        if (f) fclose(f);
        return -EIO;
    }
    p->len = (size_t)st.st_size;
    p->data = malloc(p->len ? p->len : 1);
    if (!p->data || fread(p->data, 1, p->len, f) != p->len) {
        snprintf(j->err, sizeof j->err, "cannot read %s", p->path);
        fclose(f);
        return -EIO;
    }
    fclose(f);
    unsigned char md[32];
    unsigned int mdlen;
    EVP_Digest(p->data, p->len, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(p->sha + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Uploads data to tmpdir/name and checks its SHA-256 there. */
static int upload(struct job *j, const char *name, const void *data, size_t len, long mode,
                  const char *sha, char *remote, size_t rcap)
{
    snprintf(remote, rcap, "%s/%s", j->tmpdir, name);
    int rc = prov_ssh_put(j->ssh, data, len, remote, mode, j->err, sizeof j->err);
    if (rc || !sha) return rc;
    char cmd[CMD_MAX] = "sha256sum", *out = NULL;
    prov_shell_quote(cmd, sizeof cmd, remote);
    if ((rc = run(j, "checksum", cmd, &out))) return rc;
    bool same = out && strlen(out) >= 64 && !strncmp(out, sha, 64);
    free(out);
    if (!same) {
        snprintf(j->err, sizeof j->err,
                 "the uploaded %s is corrupt: its SHA-256 on the host differs from %s", name, sha);
        return -EIO;
    }
    return 0;
}

/* The agent configuration on the host, if any: its agent_id and identity. */
struct hostconf {
    bool present;
    uint64_t agent_id;
    char ns[130], mcis[130], vm[130];
};

static void copy_json_str(char *dst, size_t cap, json_t *v)
{
    snprintf(dst, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static int read_config(struct job *j, struct hostconf *c)
{
    memset(c, 0, sizeof *c);
    char cmd[CMD_MAX], q[700] = "";
    quoted(q, sizeof q, j->conf_path);
    snprintf(cmd, sizeof cmd, "if [ -f %s ]; then %scat %s; else echo '@@none'; fi", q,
             j->h->prefix ? "" : j->sudo, q);
    char *out = NULL;
    int rc = run(j, "reading the agent configuration", cmd, &out);
    if (rc) return rc;
    if (strncmp(out, "@@none", 6) != 0) {
        json_error_t e;
        json_t *doc = json_loads(out, 0, &e);
        c->present = true;
        if (doc) {
            c->agent_id = (uint64_t)json_integer_value(json_object_get(doc, "agent_id"));
            copy_json_str(c->ns, sizeof c->ns, json_object_get(doc, "ns"));
            copy_json_str(c->mcis, sizeof c->mcis, json_object_get(doc, "mcis"));
            copy_json_str(c->vm, sizeof c->vm, json_object_get(doc, "vm"));
            json_decref(doc);
        }
    }
    memset(out, 0, strlen(out)); /* the configuration holds the key */
    free(out);
    return 0;
}

/* Service commands per kind. */
static void service_cmd(struct job *j, const char *kind, const char *verb, char *cmd, size_t cap)
{
    char q[600] = "";
    if (!strcmp(kind, "tgz") && j->h->prefix) {
        char ctl[600];
        snprintf(ctl, sizeof ctl, "%s/bin/pantala-agentctl", j->prefix);
        quoted(q, sizeof q, ctl);
        snprintf(cmd, cap, "%s %s", q, verb);
    } else if (j->d.systemd) {
        if (!strcmp(verb, "restart"))
            snprintf(cmd, cap,
                     "%ssystemctl enable pantala-agent.service && %ssystemctl restart "
                     "pantala-agent.service",
                     j->sudo, j->sudo);
        else if (!strcmp(verb, "status"))
            snprintf(cmd, cap, "systemctl is-active pantala-agent.service");
        else
            snprintf(cmd, cap, "%ssystemctl %s pantala-agent.service", j->sudo, verb);
    } else {
        /* Directly, not through invoke-rc.d: starting the agent is what the
         * operator asked for, whatever a container's policy-rc.d says. */
        snprintf(cmd, cap, "%s/etc/init.d/pantala-agent %s", j->sudo, verb);
    }
}

static bool service_running(struct job *j, const char *kind)
{
    char cmd[CMD_MAX], *o = NULL;
    int status;
    service_cmd(j, kind, "status", cmd, sizeof cmd);
    char err[256];
    int rc = prov_ssh_run(j->ssh, cmd, &o, &status, err, sizeof err);
    free(o);
    return rc == 0 && status == 0;
}

static void remove_cmd(struct job *j, const char *kind, char *cmd, size_t cap)
{
    if (!strcmp(kind, "deb")) {
        snprintf(cmd, cap, "%sdpkg --purge pantala-agent", j->sudo);
    } else if (!strcmp(kind, "rpm")) {
        snprintf(cmd, cap, "%srpm -e pantala-agent", j->sudo);
    } else {
        char inst[600], q[700] = "", p[700] = "";
        snprintf(inst, sizeof inst, "%s/share/pantala-agent/install.sh", j->prefix);
        quoted(q, sizeof q, inst);
        quoted(p, sizeof p, j->prefix);
        snprintf(cmd, cap, "%s%s --uninstall --prefix %s", j->h->prefix ? "" : j->sudo, q, p);
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the collector has accepted more than `since` frames of id. */
static int wait_first_frame(struct job *j, uint64_t id, uint64_t since)
{
    int timeout = j->o->first_frame_timeout_ms > 0 ? j->o->first_frame_timeout_ms : 30000;
    int64_t end = mono_ms() + timeout;
    struct prov_agent_state st;
    do {
        int rc = prov_coll_agent(&j->coll, id, &st, j->err, sizeof j->err);
        if (rc) return rc;
        if (st.accepted > since) {
            snprintf(j->r->collector, sizeof j->r->collector, "%s", st.status);
            return 0;
        }
        usleep(POLL_MS * 1000);
    } while (mono_ms() < end);
    snprintf(j->err, sizeof j->err,
             "the agent runs but the collector accepted no frame from it within %d s: check that "
             "the host can reach the collector's UDP port (firewall? collector address in the "
             "configuration?) and the agent's log",
             timeout / 1000);
    return -ETIMEDOUT;
}

static int make_tmpdir(struct job *j)
{
    char *out = NULL;
    int rc = run(j, "creating a temporary directory", "mktemp -d /tmp/pantala-prov.XXXXXX", &out);
    if (rc) return rc;
    out[strcspn(out, "\r\n")] = '\0';
    snprintf(j->tmpdir, sizeof j->tmpdir, "%s", out);
    free(out);
    return 0;
}

static void remove_tmpdir(struct job *j)
{
    if (!j->tmpdir[0]) return;
    char cmd[CMD_MAX] = "rm -rf", *o = NULL;
    int status;
    char err[256];
    prov_shell_quote(cmd, sizeof cmd, j->tmpdir);
    prov_ssh_run(j->ssh, cmd, &o, &status, err, sizeof err);
    free(o);
    j->tmpdir[0] = '\0';
}

static int need_privilege(struct job *j)
{
    if (j->h->prefix) {
        j->sudo = "";
        return 0;
    }
    if (j->d.root) {
        j->sudo = "";
        return 0;
    }
    if (j->d.sudo) {
        j->sudo = "sudo -n ";
        return 0;
    }
    snprintf(j->err, sizeof j->err,
             "user %s is not root and cannot run sudo without a password on this host: connect "
             "as root, give the user password-less sudo (NOPASSWD in sudoers), or install into "
             "the user's own directory with --prefix",
             j->h->user);
    return -EACCES;
}

/* install and upgrade */
static int do_install(struct job *j, bool upgrade_only)
{
    const char *kind = choose_kind(j);
    snprintf(j->r->kind, sizeof j->r->kind, "%s", kind);
    int rc = need_privilege(j);
    if (rc) return rc;
    const char *have = installed_version(j, kind);
    struct hostconf hc;
    if ((rc = read_config(j, &hc))) return rc;
    if (upgrade_only && !have) {
        snprintf(j->err, sizeof j->err, "the agent is not installed here (use install)");
        return -ENOENT;
    }
    if (hc.present && hc.agent_id &&
        (strcmp(hc.ns, j->h->ns) || strcmp(hc.mcis, j->h->mcis) || strcmp(hc.vm, j->h->vm))) {
        snprintf(j->err, sizeof j->err,
                 "this host's agent is configured as %s/%s/%s, not %s/%s/%s: uninstall it first",
                 hc.ns, hc.mcis, hc.vm, j->h->ns, j->h->mcis, j->h->vm);
        return -EEXIST;
    }

    struct pkg p;
    step(j, "package", NULL);
    if ((rc = find_package(j, kind, &p))) {
        free(p.data);
        return rc;
    }

    /* Is the collector's registration for this host's key still there? */
    struct prov_agent_state st = {0};
    if (hc.agent_id && (rc = prov_coll_agent(&j->coll, hc.agent_id, &st, j->err, sizeof j->err))) {
        free(p.data);
        return rc;
    }
    bool registered = hc.agent_id && st.exists;
    bool same_version = have && !strcmp(have, p.version);
    if (same_version && registered && service_running(j, kind)) {
        j->r->agent_id = hc.agent_id;
        snprintf(j->r->version, sizeof j->r->version, "%s", have);
        snprintf(j->r->service, sizeof j->r->service, "running");
        snprintf(j->r->collector, sizeof j->r->collector, "%s", st.status);
        snprintf(j->r->detail, sizeof j->r->detail,
                 "already installed (%s %s, agent %" PRIu64 ", %s at the collector): nothing to do",
                 kind, have, hc.agent_id, st.status);
        j->r->changed = false;
        free(p.data);
        return 0;
    }
    j->r->changed = true;

    if ((rc = make_tmpdir(j))) {
        free(p.data);
        return rc;
    }
    step(j, "upload", "%s (%zu bytes)", p.name, p.len);
    char remote[600];
    rc = upload(j, p.name, p.data, p.len, 0644, j->d.sha ? p.sha : NULL, remote, sizeof remote);
    free(p.data);
    if (rc) return rc;

    /* Register when the host has no working key. */
    struct prov_agent_reg reg = {0};
    uint64_t agent_id = hc.agent_id;
    if (!registered) {
        step(j, "register", "%s/%s/%s at %s", j->h->ns, j->h->mcis, j->h->vm, j->o->api_url);
        uint64_t existing = 0;
        rc = prov_coll_register(&j->coll, j->h->ns, j->h->mcis, j->h->vm, j->h->csp, j->o->interval,
                                j->o->collector_udp, &reg, &existing, j->err, sizeof j->err);
        if (rc == -EEXIST) {
            /* Registered before, but this host lacks the key (an install that
             * failed half-way elsewhere, or a reinstalled VM): issue a new one. */
            if ((rc = prov_coll_delete(&j->coll, existing, j->err, sizeof j->err))) return rc;
            rc = prov_coll_register(&j->coll, j->h->ns, j->h->mcis, j->h->vm, j->h->csp,
                                    j->o->interval, j->o->collector_udp, &reg, &existing, j->err,
                                    sizeof j->err);
        }
        if (rc) return rc;
        agent_id = reg.id;
        push_undo(j, "registration", NULL, reg.id);
    }
    j->r->agent_id = agent_id;

    char cfgremote[600] = "";
    if (reg.config_json) {
        rc = upload(j, "agent.json", reg.config_json, strlen(reg.config_json), 0600, NULL,
                    cfgremote, sizeof cfgremote);
        prov_agent_reg_free(&reg);
        if (rc) return rc;
    }

    char cmd[CMD_MAX], q[700] = "";
    if (!strcmp(kind, "tgz")) {
        step(j, "install", "tarball into %s", j->prefix);
        char dir[300];
        snprintf(dir, sizeof dir, "%s/%.*s", j->tmpdir, (int)(strlen(p.name) - 7), p.name);
        char qd[700] = "", qt[700] = "", qp[700] = "", qc[700] = "";
        quoted(qt, sizeof qt, j->tmpdir);
        quoted(qd, sizeof qd, dir);
        quoted(qp, sizeof qp, j->prefix);
        quoted(q, sizeof q, remote);
        if (cfgremote[0]) quoted(qc, sizeof qc, cfgremote);
        snprintf(cmd, sizeof cmd, "tar -xzf %s -C %s && %s%s/install.sh --prefix %s %s%s --start",
                 q, qt, j->h->prefix ? "" : j->sudo, qd, qp, cfgremote[0] ? "--config " : "", qc);
        if ((rc = run(j, "install.sh", cmd, NULL))) return rc;
        if (!have) {
            remove_cmd(j, kind, cmd, sizeof cmd);
            push_undo(j, "tarball install", cmd, 0);
        }
    } else {
        if (!same_version) {
            step(j, "install", "%s %s%s", kind, p.version, have ? " (upgrade)" : "");
            quoted(q, sizeof q, remote);
            if (!strcmp(kind, "deb"))
                snprintf(cmd, sizeof cmd, "%sdpkg -i %s", j->sudo, q);
            else
                snprintf(cmd, sizeof cmd, "%srpm -U --replacepkgs %s", j->sudo, q);
            if ((rc = run(j, "installing the package", cmd, NULL))) return rc;
            if (!have) {
                remove_cmd(j, kind, cmd, sizeof cmd);
                push_undo(j, "package", cmd, 0);
            }
        }
        if (cfgremote[0]) {
            step(j, "configure", "%s", j->conf_path);
            char qc[700] = "";
            quoted(qc, sizeof qc, cfgremote);
            quoted(q, sizeof q, j->conf_path);
            snprintf(cmd, sizeof cmd,
                     "%sinstall -d -m 0755 /etc/pantala && %sinstall -m 0600 -o pantala-agent -g "
                     "pantala-agent %s %s",
                     j->sudo, j->sudo, qc, q);
            if ((rc = run(j, "writing the configuration", cmd, NULL))) return rc;
            if (!hc.present) {
                snprintf(cmd, sizeof cmd, "%srm -f %s", j->sudo, q);
                push_undo(j, "configuration", cmd, 0);
            }
        }
        step(j, "start", NULL);
        service_cmd(j, kind, "restart", cmd, sizeof cmd);
        if ((rc = run(j, "starting the agent", cmd, NULL))) return rc;
        service_cmd(j, kind, "stop", cmd, sizeof cmd);
        push_undo(j, "service start", cmd, 0);
    }

    step(j, "verify", "waiting for the collector to accept a frame");
    if ((rc = wait_first_frame(j, agent_id, registered ? st.accepted : 0))) return rc;
    snprintf(j->r->version, sizeof j->r->version, "%s", p.version);
    snprintf(j->r->service, sizeof j->r->service, "running");
    snprintf(j->r->detail, sizeof j->r->detail,
             "%s %s %s, agent %" PRIu64 " reporting (%s at the collector)", kind, p.version,
             have ? (same_version ? "reconfigured" : "upgraded") : "installed", agent_id,
             j->r->collector);
    j->nundo = 0; /* done: nothing to roll back */
    return 0;
}

static int do_uninstall(struct job *j)
{
    const char *kind = choose_kind(j);
    int rc = need_privilege(j);
    if (rc) return rc;
    struct hostconf hc;
    if ((rc = read_config(j, &hc))) return rc;
    const char *have = installed_version(j, kind);
    /* The kind installed may differ from the one this OS would get. */
    if (!have && !j->h->prefix) {
        static const char *const kinds[] = {"deb", "rpm", "tgz"};
        for (int i = 0; i < 3 && !have; i++)
            if ((have = installed_version(j, kinds[i]))) kind = kinds[i];
    }
    snprintf(j->r->kind, sizeof j->r->kind, "%s", kind);
    char cmd[CMD_MAX];
    if (have) {
        step(j, "remove", "%s %s", kind, have);
        if (!strcmp(kind, "tgz") || j->d.systemd) {
            service_cmd(j, kind, "stop", cmd, sizeof cmd);
            char *o = NULL;
            int status;
            prov_ssh_run(j->ssh, cmd, &o, &status, j->err, sizeof j->err);
            free(o);
        }
        remove_cmd(j, kind, cmd, sizeof cmd);
        if ((rc = run(j, "removing the agent", cmd, NULL))) return rc;
    }
    if (hc.present && !have) {
        /* Purge, erase and install.sh --uninstall remove it with the agent;
         * this covers a configuration left without one. */
        char q[700] = "";
        quoted(q, sizeof q, j->conf_path);
        snprintf(cmd, sizeof cmd, "%srm -f %s", j->sudo, q);
        if ((rc = run(j, "removing the configuration", cmd, NULL))) return rc;
    }
    step(j, "unregister", NULL);
    uint64_t id = hc.agent_id;
    if (!id &&
        (rc = prov_coll_find(&j->coll, j->h->ns, j->h->mcis, j->h->vm, &id, j->err, sizeof j->err)))
        return rc;
    if (id && (rc = prov_coll_delete(&j->coll, id, j->err, sizeof j->err))) return rc;
    j->r->agent_id = id;
    j->r->changed = have || hc.present || id;
    snprintf(j->r->detail, sizeof j->r->detail, "%s",
             !j->r->changed ? "not installed: nothing to do"
             : have         ? "agent removed and unregistered"
                            : "unregistered (no agent was installed)");
    return 0;
}

static int do_status(struct job *j)
{
    const char *kind = choose_kind(j);
    const char *have = installed_version(j, kind);
    if (!have && !j->h->prefix) {
        static const char *const kinds[] = {"deb", "rpm", "tgz"};
        for (int i = 0; i < 3 && !have; i++)
            if ((have = installed_version(j, kinds[i]))) kind = kinds[i];
    }
    snprintf(j->r->kind, sizeof j->r->kind, "%s", have ? kind : "-");
    snprintf(j->r->version, sizeof j->r->version, "%s", have ? have : "-");
    if (!j->h->prefix && !j->d.root && !j->d.sudo)
        j->sudo = NULL;
    else
        j->sudo = j->d.root || j->h->prefix ? "" : "sudo -n ";
    bool running = have && service_running(j, kind);
    snprintf(j->r->service, sizeof j->r->service, "%s",
             !have     ? "absent"
             : running ? "running"
                       : "stopped");
    struct hostconf hc = {0};
    if (j->sudo) read_config(j, &hc);
    snprintf(j->r->collector, sizeof j->r->collector, "unknown");
    if (hc.agent_id) {
        struct prov_agent_state st;
        if (prov_coll_agent(&j->coll, hc.agent_id, &st, j->err, sizeof j->err) == 0)
            snprintf(j->r->collector, sizeof j->r->collector, "%s",
                     st.exists ? st.status : "unregistered");
        j->r->agent_id = hc.agent_id;
    }
    snprintf(j->r->detail, sizeof j->r->detail, "%s",
             !have     ? "not installed"
             : running ? "installed and running"
                       : "installed, not running");
    return 0;
}

int prov_run_one(enum prov_action a, const struct prov_host *h, const struct prov_opts *o,
                 struct prov_result *r, prov_progress_fn fn, void *ud, size_t idx)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j) return -ENOMEM;
    int64_t t0 = mono_ms();
    memset(r, 0, sizeof *r);
    r->state = PROV_RUNNING;
    *j = (struct job){.action = a, .h = h, .o = o, .r = r, .fn = fn, .ud = ud, .idx = idx};
    j->coll = (struct prov_collector){.api_url = o->api_url, .token = o->token};
    if (h->prefix) {
        snprintf(j->prefix, sizeof j->prefix, "%s", h->prefix);
        snprintf(j->conf_path, sizeof j->conf_path, "%s/etc/agent.json", h->prefix);
    } else {
        snprintf(j->prefix, sizeof j->prefix, "/usr/local");
        snprintf(j->conf_path, sizeof j->conf_path, "/etc/pantala/agent.json");
    }

    step(j, "connect", "%s@%s:%u", h->user, h->host, h->port ? h->port : 22);
    struct prov_ssh_opts so = {
        .host = h->host,
        .port = h->port,
        .user = h->user,
        .key_file = h->key,
        .known_hosts = o->known_hosts,
        .accept_new = o->accept_new,
        .connect_timeout_ms = o->connect_timeout_ms,
        .command_timeout_ms = o->command_timeout_ms,
    };
    int rc = prov_ssh_connect(&so, &j->ssh, j->err, sizeof j->err);
    if (!rc) {
        step(j, "detect", NULL);
        rc = detect(j);
    }
    if (!rc) {
        step(j, "detect", "%s", r->os);
        switch (a) {
        case PROV_INSTALL:
            rc = do_install(j, false);
            break;
        case PROV_UPGRADE:
            rc = do_install(j, true);
            break;
        case PROV_UNINSTALL:
            rc = do_uninstall(j);
            break;
        case PROV_STATUS:
            rc = do_status(j);
            break;
        }
    }
    if (rc) {
        snprintf(r->detail, sizeof r->detail, "%s: %s", r->step, j->err);
        if (j->ssh) rollback(j);
        r->state = PROV_FAILED;
    } else {
        r->state = PROV_OK;
    }
    if (j->ssh) {
        remove_tmpdir(j);
        prov_ssh_close(j->ssh);
    }
    r->seconds = (double)(mono_ms() - t0) / 1000.0;
    if (fn) fn(ud, idx, h, rc ? "failed" : "done", r->detail);
    free(j);
    return rc;
}
