/* Many driver calls at once on libcurl's multi interface (DESIGN §6): one
 * thread runs a curl multi handle; each submitted struct drv_call makes its
 * requests on it one after another, every call concurrently with the
 * others, over connections the multi handle keeps alive and shares.
 *
 * The thread sleeps in curl_multi_poll(); drv_multi_submit() queues the
 * call under a lock and wakes it with curl_multi_wakeup(). A call's steps
 * (signing, parsing) and its done() callback run on this thread. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curl_int.h"

struct mcall {
    struct mcall *next;
    struct drv_call *c;
    drv_multi_done_fn done;
    void *ud;
    CURL *easy;
    struct drv_xfer x;
    bool in_multi; /* added to the multi handle */
};

struct drv_multi {
    CURLM *multi;
    pthread_t thread;
    size_t max_body;
    pthread_mutex_t lock;
    struct mcall *queue;   /* submitted, not yet started (lock) */
    bool stopping;         /* (lock) */
    struct mcall *running; /* started: owned by the thread */
    atomic_size_t active;
    char name[16];
};

/* Ends a call: unlinks nothing (the caller did), calls done, frees. */
static void end_call(struct drv_multi *m, struct mcall *mc, int rc)
{
    if (mc->easy) {
        if (mc->in_multi) curl_multi_remove_handle(m->multi, mc->easy);
        drv_xfer_clean(mc->easy, &mc->x);
        curl_easy_cleanup(mc->easy);
    }
    mc->done(mc->ud, mc->c, rc);
    drv_call_free(mc->c);
    free(mc);
    atomic_fetch_sub(&m->active, 1);
}

static void unlink_running(struct drv_multi *m, struct mcall *mc)
{
    for (struct mcall **p = &m->running; *p; p = &(*p)->next)
        if (*p == mc) {
            *p = mc->next;
            return;
        }
}

/* Puts the call's next request on the multi handle. 0, or the call's
 * failure code (the call has failed: the caller ends it). */
static int start_request(struct drv_multi *m, struct mcall *mc, const struct drv_http_req *req)
{
    struct drv_error err;
    memset(&err, 0, sizeof err);
    if (!mc->easy && !(mc->easy = curl_easy_init())) {
        drv_err_set(&err, -ENOMEM, 0, NULL, NULL, "out of memory");
        return drv_call_fail(mc->c, &err);
    }
    if (drv_xfer_setup(mc->easy, &mc->x, req, m->max_body, &err) < 0)
        return drv_call_fail(mc->c, &err);
    curl_easy_setopt(mc->easy, CURLOPT_PRIVATE, mc);
    CURLMcode mr = curl_multi_add_handle(m->multi, mc->easy);
    if (mr != CURLM_OK) {
        drv_xfer_clean(mc->easy, &mc->x);
        drv_err_set(&err, DRV_E_TRANSPORT, 0, NULL, NULL, "%s: %s", req->url,
                    curl_multi_strerror(mr));
        return drv_call_fail(mc->c, &err);
    }
    mc->in_multi = true;
    return 0;
}

/* Advances a call with rc from its last step: 1 starts the next request,
 * anything else ends the call. */
static void advance(struct drv_multi *m, struct mcall *mc, int rc, const struct drv_http_req *req)
{
    if (rc == 1) rc = start_request(m, mc, req);
    if (rc == 0 && mc->in_multi) return; /* request under way */
    unlink_running(m, mc);
    end_call(m, mc, rc);
}

static void start_queued(struct drv_multi *m, struct mcall *q)
{
    while (q) {
        struct mcall *mc = q;
        q = q->next;
        mc->next = m->running;
        m->running = mc;
        const struct drv_http_req *req = NULL;
        int rc = drv_call_next(mc->c, NULL, &req);
        advance(m, mc, rc, req);
    }
}

/* A transfer ended: feed its answer to the call. */
static void transfer_done(struct drv_multi *m, CURL *e, CURLcode code)
{
    struct mcall *mc = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&mc);
    curl_multi_remove_handle(m->multi, e);
    mc->in_multi = false;
    struct drv_http_resp resp;
    struct drv_error err;
    memset(&err, 0, sizeof err);
    const struct drv_http_req *req = NULL;
    int rc;
    if (drv_xfer_finish(e, &mc->x, code, &resp, &err) < 0) {
        rc = drv_call_fail(mc->c, &err);
    } else {
        rc = drv_call_next(mc->c, &resp, &req);
        drv_http_resp_free(&resp);
    }
    advance(m, mc, rc, req);
}

static void *multi_main(void *arg)
{
    struct drv_multi *m = arg;
    for (;;) {
        pthread_mutex_lock(&m->lock);
        struct mcall *q = m->queue;
        m->queue = NULL;
        bool stopping = m->stopping;
        pthread_mutex_unlock(&m->lock);
        if (stopping) {
            /* Not started: hand them back as cancelled. */
            while (q) {
                struct mcall *mc = q;
                q = q->next;
                end_call(m, mc, -ECANCELED);
            }
            break;
        }
        start_queued(m, q);

        int running = 0;
        curl_multi_perform(m->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m->multi, &left)))
            if (msg->msg == CURLMSG_DONE) transfer_done(m, msg->easy_handle, msg->data.result);
        /* Woken by a socket, a timeout of libcurl's, or curl_multi_wakeup. */
        curl_multi_poll(m->multi, NULL, 0, 1000, NULL);
    }
    return NULL;
}

int drv_multi_new(struct drv_multi **out, const struct drv_multi_opts *o)
{
    static const struct drv_multi_opts dflt = {0};
    if (!o) o = &dflt;
    *out = NULL;
    curl_global_init(CURL_GLOBAL_DEFAULT); /* idempotent; pantalad did it first */
    struct drv_multi *m = calloc(1, sizeof *m);
    if (!m) return -ENOMEM;
    if (!(m->multi = curl_multi_init())) {
        free(m);
        return -ENOMEM;
    }
    m->max_body = o->max_body ? o->max_body : 16u << 20;
    curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      o->max_host_conns > 0 ? o->max_host_conns : 8L);
    curl_multi_setopt(m->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      o->max_total_conns > 0 ? o->max_total_conns : 64L);
    snprintf(m->name, sizeof m->name, "%s", o->thread_name ? o->thread_name : "pt-drv-multi");
    pthread_mutex_init(&m->lock, NULL);
    int rc = -pthread_create(&m->thread, NULL, multi_main, m);
    if (rc) {
        pthread_mutex_destroy(&m->lock);
        curl_multi_cleanup(m->multi);
        free(m);
        return rc;
    }
    pthread_setname_np(m->thread, m->name);
    *out = m;
    return 0;
}

int drv_multi_submit(struct drv_multi *m, struct drv_call *c, drv_multi_done_fn done, void *ud)
{
    struct mcall *mc = calloc(1, sizeof *mc);
    if (!mc) return -ENOMEM;
    mc->c = c;
    mc->done = done;
    mc->ud = ud;
    pthread_mutex_lock(&m->lock);
    if (m->stopping) {
        pthread_mutex_unlock(&m->lock);
        free(mc);
        return -ECANCELED;
    }
    /* Kept in submission order: the first submitted starts first. */
    struct mcall **p = &m->queue;
    while (*p) p = &(*p)->next;
    *p = mc;
    atomic_fetch_add(&m->active, 1);
    pthread_mutex_unlock(&m->lock);
    curl_multi_wakeup(m->multi);
    return 0;
}

size_t drv_multi_active(struct drv_multi *m)
{
    return atomic_load(&m->active);
}

void drv_multi_free(struct drv_multi *m)
{
    if (!m) return;
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_mutex_unlock(&m->lock);
    curl_multi_wakeup(m->multi);
    pthread_join(m->thread, NULL);
    /* What was under way ends here, on the caller's thread. */
    while (m->running) {
        struct mcall *mc = m->running;
        m->running = mc->next;
        end_call(m, mc, -ECANCELED);
    }
    curl_multi_cleanup(m->multi);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
