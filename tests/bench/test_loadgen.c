/* Smoke test of pantala-loadgen: runs it against a UDP socket of our own
 * and checks what arrives is what a collector expects: frames that decode,
 * carry the whole catalog with the catalog's types, count seq from 1 per
 * agent, verify under the agent's key, and the faults asked for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pt/catalog.h"
#include "pt/time.h"
#include "pt/util.h"
#include "pt/wire.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_AGENTS 8

struct rx {
    size_t datagrams, decoded, failed, verified, ghosts, dups;
    size_t bad;                        /* decoded, but not signed by the agent it names */
    uint64_t last_seq[MAX_AGENTS + 1]; /* by agent id */
    size_t per_agent[MAX_AGENTS + 1];
    /* cpu.cpu_utilization per agent: == 10, == 90, anything else (--pattern) */
    size_t cpu_lo[MAX_AGENTS + 1], cpu_hi[MAX_AGENTS + 1], cpu_other[MAX_AGENTS + 1];
    char summary[2048]; /* the loadgen's --json line */
};

static int bind_udp(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int big = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* Checks that f carries every catalog metric once, typed as the catalog
 * says, plus mem_available, and the per-object tags. */
static void check_catalog(const struct pt_frame *f)
{
    size_t seen[64] = {0}, fields = 0;
    bool mem_available = false;
    assert_int_equal(f->nmeas, 6);
    for (size_t m = 0; m < f->nmeas; m++) {
        const struct pt_meas *me = &f->meas[m];
        char meas[32];
        snprintf(meas, sizeof meas, "%.*s", (int)me->name.len, me->name.p);
        for (size_t j = 0; j < me->nfields; j++, fields++) {
            const struct pt_field *fl = &me->fields[j];
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)fl->key.len, fl->key.p);
            if (strcmp(meas, "memory") == 0 && strcmp(name, "mem_available") == 0) {
                assert_int_equal(fl->type, PT_F_UINT);
                mem_available = true;
                continue;
            }
            const struct pt_metric *cm = pt_catalog_find(meas, name);
            if (!cm) fail_msg("%s.%s is not in the catalog", meas, name);
            assert_int_equal(fl->type, cm->type);
            if (fl->type == PT_F_FLOAT && strcmp(cm->unit, "%") == 0) {
                assert_true(fl->v.f >= 0 && fl->v.f <= 100);
            }
            seen[cm - pt_catalog]++;
        }
        if (strcmp(meas, "disk") == 0) {
            assert_int_equal(me->ntags, 3);
            assert_true(pt_str_eq(me->tags[0].key, "mount") && pt_str_eq(me->tags[0].val, "/"));
        } else if (strcmp(meas, "diskio") == 0 || strcmp(meas, "network") == 0) {
            assert_int_equal(me->ntags, 1);
        } else {
            assert_int_equal(me->ntags, 0);
        }
    }
    assert_int_equal(pt_catalog_len, 53);
    for (size_t i = 0; i < pt_catalog_len; i++)
        if (seen[i] != 1)
            fail_msg("%s.%s seen %zu times", pt_catalog[i].measurement, pt_catalog[i].field,
                     seen[i]);
    assert_true(mem_available);
    assert_int_equal(fields, 54);
}

/* Runs the load generator with args (NULL-terminated), receiving on fd
 * until it has exited and the socket is quiet; keys[id] verifies signed
 * frames when given. */
static void run(int fd, const char *const *args, const uint8_t (*keys)[PT_WIRE_KEY_LEN],
                struct rx *rx)
{
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execv(PT_LOADGEN_PATH, (char *const *)args);
        _exit(127);
    }
    close(out[1]);
    memset(rx, 0, sizeof *rx);
    struct pt_wire_dec *dec = pt_wire_dec_new();
    struct pt_wire_key wk[MAX_AGENTS + 1];
    for (size_t i = 1; keys && i <= MAX_AGENTS; i++)
        assert_int_equal(pt_wire_key_init(&wk[i], keys[i], PT_WIRE_KEY_LEN), 0);
    static uint8_t buf[PT_WIRE_MAX_FRAME + 1];
    size_t sumlen = 0;
    bool exited = false;
    int status = 0;
    int64_t now = pt_now_ns();
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = out[0], .events = POLLIN}};
        int n = poll(p, exited ? 1 : 2, exited ? 300 : 5000);
        if (n == 0 && exited) break;
        assert_true(n > 0); /* the loadgen neither sent nor exited for 5 s */
        if (p[1].revents && !exited) {
            ssize_t r = read(out[0], rx->summary + sumlen, sizeof rx->summary - 1 - sumlen);
            if (r > 0) {
                sumlen += (size_t)r;
            } else {
                assert_int_equal(waitpid(pid, &status, 0), pid);
                exited = true;
            }
        }
        if (!(p[0].revents & POLLIN)) continue;
        ssize_t len = recv(fd, buf, sizeof buf, 0);
        assert_true(len > 0);
        rx->datagrams++;
        struct pt_frame f;
        if (pt_wire_decode(dec, buf, (size_t)len, &f) != 0) {
            rx->failed++;
            continue;
        }
        rx->decoded++;
        if (f.agent_id == UINT64_C(1) << 62 && pt_str_eq(f.id.vm, "ghost-vm")) {
            rx->ghosts++; /* the unregistered agent of --garbage */
            continue;
        }
        if (keys && (f.agent_id == 0 || f.agent_id > MAX_AGENTS ||
                     pt_wire_verify(&f, buf, &wk[f.agent_id]) != 0)) {
            rx->bad++; /* a corrupted copy from --garbage */
            continue;
        }
        assert_true(f.agent_id >= 1 && f.agent_id <= MAX_AGENTS);
        assert_true(pt_str_eq(f.id.ns, "bench"));
        assert_true(f.ts_ns > now - 60 * PT_NS_PER_SEC && f.ts_ns < now + 60 * PT_NS_PER_SEC);
        assert_int_equal(f.interval_ms, 1000);
        check_catalog(&f);
        for (size_t m = 0; m < f.nmeas; m++)
            for (size_t k = 0; pt_str_eq(f.meas[m].name, "cpu") && k < f.meas[m].nfields; k++) {
                const struct pt_field *fl = &f.meas[m].fields[k];
                if (!pt_str_eq(fl->key, "cpu_utilization")) continue;
                if (fl->v.f == 10)
                    rx->cpu_lo[f.agent_id]++;
                else if (fl->v.f == 90)
                    rx->cpu_hi[f.agent_id]++;
                else
                    rx->cpu_other[f.agent_id]++;
            }
        if (keys) {
            rx->verified++;
        } else {
            assert_null(f.mac);
        }
        if (f.seq <= rx->last_seq[f.agent_id]) {
            rx->dups++; /* a --replay */
        } else {
            assert_int_equal(f.seq, rx->last_seq[f.agent_id] + 1);
            rx->last_seq[f.agent_id] = f.seq;
            rx->per_agent[f.agent_id]++;
        }
    }
    close(out[0]);
    pt_wire_dec_free(dec);
    for (size_t i = 1; keys && i <= MAX_AGENTS; i++) pt_wire_key_close(&wk[i]);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    rx->summary[sumlen] = '\0';
}

/* The value of "key": in the loadgen's JSON summary. */
static long long summary_num(const struct rx *rx, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(rx->summary, pat);
    if (!p) fail_msg("no %s in summary: %s", key, rx->summary);
    return strtoll(p + strlen(pat), NULL, 10);
}

static void paced_unsigned(void **state)
{
    uint16_t port;
    int fd = bind_udp(&port);
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    const char *args[] = {
        "pantala-loadgen", "--unsigned", "--rate",  "1000",   "--duration", "1", "--agents", "3",
        "--target",        target,       "--quiet", "--json", NULL};
    struct rx rx;
    run(fd, args, NULL, &rx);
    close(fd);
    long long frames = summary_num(&rx, "frames");
    /* Paced: one second at 1000/s never sends more than 1000; fewer only
     * when the machine starves the load generator for a while. */
    assert_in_range(frames, 800, 1000);
    assert_int_equal(rx.datagrams, frames);
    assert_int_equal(rx.decoded, frames);
    assert_int_equal(rx.dups, 0);
    assert_int_equal(summary_num(&rx, "values"), frames * 54);
    /* Round robin: every agent sent a third. */
    for (size_t i = 1; i <= 3; i++) assert_in_range(rx.per_agent[i], frames / 3, frames / 3 + 1);
}

/* --pattern: the driven field takes exactly the two values, both of them
 * for the agents that follow it, only the low one for the others. */
static void pattern(void **state)
{
    (void)state;
    uint16_t port;
    int fd = bind_udp(&port);
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    const char *args[] = {"pantala-loadgen",
                          "--unsigned",
                          "--rate",
                          "60",
                          "--duration",
                          "1.2",
                          "--agents",
                          "3",
                          "--pattern",
                          "cpu.cpu_utilization=10,90/400ms",
                          "--pattern-agents",
                          "2",
                          "--target",
                          target,
                          "--quiet",
                          "--json",
                          NULL};
    struct rx rx;
    run(fd, args, NULL, &rx);
    close(fd);
    for (size_t i = 1; i <= 3; i++) assert_int_equal(rx.cpu_other[i], 0);
    for (size_t i = 1; i <= 2; i++) {
        assert_true(rx.cpu_lo[i] >= 5);
        assert_true(rx.cpu_hi[i] >= 5);
    }
    assert_int_equal(rx.cpu_hi[3], 0);
    assert_true(rx.cpu_lo[3] >= 10);
}

/* Writes an agents file (as --save-agents does) for agents 1..n with
 * made-up keys, into path (a mkstemp template). */
static void write_agents(char *path, size_t n, uint8_t (*keys)[PT_WIRE_KEY_LEN])
{
    int afd = mkstemp(path);
    assert_true(afd >= 0);
    FILE *fp = fdopen(afd, "w");
    assert_non_null(fp);
    fputs("[", fp);
    for (size_t i = 1; i <= n; i++) {
        char hex[2 * PT_WIRE_KEY_LEN + 1];
        for (size_t j = 0; j < PT_WIRE_KEY_LEN; j++) keys[i][j] = (uint8_t)(i * 31 + j);
        pt_hex_encode(keys[i], PT_WIRE_KEY_LEN, hex);
        fprintf(fp,
                "%s{\"id\": %zu, \"key\": \"%s\", \"ns\": \"bench\", \"mcis\": \"m1\", "
                "\"vm\": \"vm%zu\", \"csp\": \"gcp\"}",
                i > 1 ? "," : "", i, hex, i);
    }
    fputs("]\n", fp);
    fclose(fp);
}

static void signed_from_file(void **state)
{
    uint8_t keys[MAX_AGENTS + 1][PT_WIRE_KEY_LEN];
    char path[] = "/tmp/pt-loadgen-agents-XXXXXX";
    write_agents(path, 2, keys);

    uint16_t port;
    int fd = bind_udp(&port);
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    const char *args[] = {
        "pantala-loadgen", "--agents-file", path,      "--frames", "400", "--rate", "0",
        "--target",        target,          "--quiet", "--json",   NULL};
    struct rx rx;
    run(fd, args, (const uint8_t(*)[PT_WIRE_KEY_LEN])keys, &rx);
    close(fd);
    unlink(path);
    assert_int_equal(summary_num(&rx, "frames"), 400);
    assert_int_equal(rx.verified, 400);
    assert_int_equal(rx.per_agent[1], 200);
    assert_int_equal(rx.per_agent[2], 200);
}

/* Signed, so every corrupted datagram is caught either by the decoder or
 * by the MAC, and what verifies is exactly the frames and the replays. */
static void faults(void **state)
{
    uint8_t keys[MAX_AGENTS + 1][PT_WIRE_KEY_LEN];
    char path[] = "/tmp/pt-loadgen-agents-XXXXXX";
    write_agents(path, 4, keys);
    uint16_t port;
    int fd = bind_udp(&port);
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    const char *args[] = {"pantala-loadgen",
                          "--agents-file",
                          path,
                          "--frames",
                          "300",
                          "--rate",
                          "3000",
                          "--garbage",
                          "12",
                          "--replay",
                          "10",
                          "--target",
                          target,
                          "--quiet",
                          "--json",
                          NULL};
    struct rx rx;
    run(fd, args, (const uint8_t(*)[PT_WIRE_KEY_LEN])keys, &rx);
    close(fd);
    unlink(path);
    assert_int_equal(summary_num(&rx, "frames"), 300);
    assert_int_equal(summary_num(&rx, "garbage"), 12);
    assert_int_equal(summary_num(&rx, "replays"), 10);
    assert_int_equal(rx.datagrams, 322);
    assert_int_equal(rx.verified, 310);
    assert_int_equal(rx.dups, 10);
    for (size_t i = 1; i <= 4; i++) assert_int_equal(rx.per_agent[i], 75);
    /* Two of each kind: random, truncated, bit flip, bad MAC, future
     * version (all rejected), and an agent nobody registered. */
    assert_int_equal(rx.failed + rx.bad, 10);
    assert_int_equal(rx.ghosts, 2);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(paced_unsigned),
        cmocka_unit_test(signed_from_file),
        cmocka_unit_test(faults),
        cmocka_unit_test(pattern),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
