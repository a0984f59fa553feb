/* bench_ingest_path: the collector's per-datagram pipeline without the
 * socket — decode, HMAC verify, registry admission, counters and the append
 * to the write batch — timed on one thread over pre-built full-catalog
 * frames of many registered agents. Prints ns per frame and the frames/s
 * one core sustains on this path (DESIGN §13: >= 200k frames/s).
 *
 * Usage: bench_ingest_path [--agents N] [--frames-per-agent K] [--rounds R]
 *                          [--no-batch]
 * --no-batch leaves out the append to the writer's batch. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "lg_agent.h"
#include "pt/err.h"
#include "pt/log.h"
#include "pt/time.h"
#include "store/store.h"
#include "writer.h"

struct frame {
    uint8_t *p;
    size_t len;
};

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_ingest_path: %s: %s\n", what, pt_strerror(rc));
    exit(1);
}

int main(int argc, char **argv)
{
    size_t nagents = 1000, per = 20, rounds = 5;
    bool batch = true;
    static const struct option opts[] = {{"agents", required_argument, NULL, 'a'},
                                         {"frames-per-agent", required_argument, NULL, 'f'},
                                         {"rounds", required_argument, NULL, 'r'},
                                         {"no-batch", no_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'a':
            nagents = strtoul(optarg, NULL, 10);
            break;
        case 'f':
            per = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            rounds = strtoul(optarg, NULL, 10);
            break;
        case 'n':
            batch = false;
            break;
        default:
            fprintf(stderr,
                    "usage: %s [--agents N] [--frames-per-agent K] [--rounds R] "
                    "[--no-batch]\n",
                    argv[0]);
            return o == 'h' ? 0 : 2;
        }
    }
    if (!nagents || !per || !rounds) return 2;
    pt_log_set_level(PT_LOG_WARN);
    if (lg_catalog_check()) return 1;

    char dir[] = "/tmp/pt-ingest-path-XXXXXX", db[128];
    if (!mkdtemp(dir)) die("mkdtemp", -errno);
    snprintf(db, sizeof db, "%s/state.db", dir);
    struct coll_stats stats;
    coll_stats_init(&stats);
    struct coll_registry *reg;
    char err[256];
    int rc = coll_registry_open(&reg, db, &stats, err, sizeof err);
    if (rc) die(err, rc);

    /* Agents, registered for real, and their frames. */
    int64_t now = pt_now_ns();
    size_t nframes = nagents * per, k = 0;
    struct frame *frames = calloc(nframes, sizeof *frames);
    struct lg_agent *agents = calloc(nagents, sizeof *agents);
    if (!frames || !agents) die("calloc", -ENOMEM);
    for (size_t i = 0; i < nagents; i++) {
        char vm[32];
        snprintf(vm, sizeof vm, "vm-%05zu", i);
        struct coll_agent_info info;
        uint8_t key[PT_WIRE_KEY_LEN];
        if ((rc = coll_registry_add(reg, "bench", "mcis-000", vm, "aws", &info, key)))
            die("register", rc);
        if ((rc = lg_agent_init(&agents[i], info.id, "bench", "mcis-000", vm, "aws", key, true,
                                (uint64_t)(now / PT_NS_PER_MS), 1000, i + 1)))
            die("agent", rc);
    }
    /* Interleaved like real traffic: every agent's frame 1, then frame 2... */
    for (size_t s = 0; s < per; s++)
        for (size_t i = 0; i < nagents; i++, k++) {
            uint8_t buf[PT_WIRE_MAX_FRAME];
            if ((rc = lg_agent_next(&agents[i], now - (int64_t)(per - s) * PT_NS_PER_SEC, buf,
                                    sizeof buf, &frames[k].len)))
                die("encode", rc);
            frames[k].p = malloc(frames[k].len);
            memcpy(frames[k].p, buf, frames[k].len);
        }

    /* A real writer on a real store, so the batch append is the real one;
     * the writer thread itself is not timed (it runs on another core). */
    struct store *store = NULL;
    struct coll_writer *w = NULL;
    if (batch) {
        struct store_conf sc = {.url = "sqlite:", .data_dir = dir};
        if ((rc = store_sqlite_ops.open(&sc, &store, err, sizeof err))) die(err, rc);
        struct coll_writer_opts wo = {.queue_batches = 1u << 16,
                                      .batch_frames = 2048,
                                      .flush_ns = PT_NS_PER_SEC,
                                      .persist_ns = 3600 * PT_NS_PER_SEC};
        if ((rc = coll_writer_start(&w, &store_sqlite_ops, store, reg, &stats, &wo)))
            die("writer", rc);
    }
    struct coll_admit_opts ao = {false, 3600 * PT_NS_PER_SEC, 300 * PT_NS_PER_SEC, 0};
    struct coll_ingest in;
    if ((rc = coll_ingest_init(&in, reg, w, &stats, &ao))) die("ingest", rc);

    struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(40000)};
    from.sin_addr.s_addr = htonl(0x7f000001);
    double best = 1e18;
    for (size_t r = 0; r < rounds; r++) {
        /* Each round re-sends the same frames: the first round accepts them,
         * later rounds see duplicates. Time the first round separately. */
        int64_t t0 = pt_mono_ns();
        for (size_t i = 0; i < nframes; i++)
            coll_ingest_datagram(&in, frames[i].p, frames[i].len, (struct sockaddr *)&from, now);
        double ns = (double)(pt_mono_ns() - t0) / (double)nframes;
        printf("round %zu (%s): %.0f ns/frame = %.0f frames/s on one core\n", r + 1,
               r == 0 ? "accepted" : "duplicates", ns, 1e9 / ns);
        if (r == 0) best = ns;
    }
    unsigned long long acc = atomic_load(&stats.accepted), dup = atomic_load(&stats.duplicate),
                       rej = atomic_load(&stats.rejected);
    printf("frames: %zu (%zu agents x %zu, %zu bytes each, %zu values each)\n", nframes, nagents,
           per, frames[0].len, lg_values_per_frame());
    printf("outcomes: %llu accepted, %llu duplicate, %llu rejected\n", acc, dup, rej);
    printf("accepted path%s: %.0f ns/frame, %.0f frames/s, %.1fM values/s on one core\n",
           batch ? " (incl. batch append)" : "", best, 1e9 / best,
           1e9 / best * (double)lg_values_per_frame() / 1e6);

    coll_ingest_close(&in);
    if (w) coll_writer_stop(w);
    if (store) store_sqlite_ops.close(store);
    coll_registry_close(reg);
    for (size_t i = 0; i < nframes; i++) free(frames[i].p);
    for (size_t i = 0; i < nagents; i++) lg_agent_close(&agents[i]);
    free(frames);
    free(agents);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? (rej ? 1 : 0) : 1;
}
