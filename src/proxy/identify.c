/* proxy/identify: IDENTIFY — which program opened this connection, once
 * per client connection, off the worker loops.
 *
 * Resolution (sock_diag, the /proc walk, hashing a first-seen executable;
 * src/identity/) can take milliseconds, or seconds for a large binary, so a
 * worker never runs it: IDENTIFY's entry queues a job for the proxy's small
 * pool of identity threads and the connection waits. The job carries a
 * copy of this connection's exact 4-tuple, so the answer belongs to this
 * socket; a thread resolves it (procscan.c's ambiguity and reuse rules are
 * unchanged), copies the result sized to what it holds, and hands the job
 * back to its worker through a completion list and the loop's wake-up.
 * Only the worker thread reads or writes job->c: a connection that closes
 * while its job is out clears it, and the worker frees the job when it
 * comes back. The queue needs no cap of its own: a connection has at most
 * one job and connections are capped by --max-conns.
 *
 * Test hook: when CORDON_TEST_IDENTITY_HOLD names a FIFO at start-up, the
 * first lookup opens it for reading and waits until its writer closes it.
 * Tests use it to stall one lookup deterministically. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "identity/identity.h"
#include "proxy/internal.h"
#include "core/banned.h"

struct ident_job {
    struct ident_job *next;
    struct worker *w;
    struct conn *c; /* NULL once the connection closed; worker thread only */
    struct sockaddr_storage peer, local;
    struct conn_identity result;
    int rc;
};

static void free_ident(struct conn_identity *id)
{
    free(id->exe);
    for (size_t i = 0; i < id->n_ancestors; i++)
        free(id->ancestors[i]);
    free(id->ancestors);
    free(id->detail);
    memset(id, 0, sizeof(*id));
}

void identify_result_free(struct conn_identity *id) { free_ident(id); }

static void job_free(struct ident_job *j)
{
    free_ident(&j->result);
    free(j);
}

static void copy_identity(struct conn_identity *ci, const struct identity *id, int rc)
{
    ci->pid = id->pid;
    memcpy(ci->tainted_by, id->tainted_by, sizeof(ci->tainted_by));
    ci->exe = id->exe[0] ? strdup(id->exe) : NULL;
    ci->ancestors = calloc(id->n_ancestors ? id->n_ancestors : 1, sizeof(char *));
    for (size_t i = 0; ci->ancestors && i < id->n_ancestors; i++)
        ci->ancestors[ci->n_ancestors++] = strdup(id->ancestors[i]);
    if (rc < 0 || id->reason_code) {
        ci->reason_code = id->reason_code ? id->reason_code : IDENTITY_REASON_UNRESOLVED;
        ci->detail = strdup(id->detail[0] ? id->detail : "the calling process could not be identified");
    }
}

/* ---- the identity threads ---- */

static void test_hold(struct ident_pool *p)
{
    if (!p->hold_path || atomic_exchange(&p->hold_used, true))
        return;
    int fd = open(p->hold_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char b[64];
    while (read(fd, b, sizeof(b)) > 0)
        ;
    close(fd);
}

static void resolve_job(struct ident_pool *p, struct identity *scratch, struct ident_job *j)
{
    memset(scratch, 0, offsetof(struct identity, ancestors));
    scratch->exe[0] = '\0';
    scratch->detail[0] = '\0';
    scratch->reason_code = NULL;
    test_hold(p);
    j->rc = identity_resolve(p->cache, (struct sockaddr *)&j->peer, (struct sockaddr *)&j->local,
                             scratch);
    copy_identity(&j->result, scratch, j->rc);
}

static void complete(struct ident_job *j)
{
    struct worker *w = j->w;
    pthread_mutex_lock(&w->ident_mu);
    j->next = w->ident_done;
    w->ident_done = j;
    pthread_mutex_unlock(&w->ident_mu);
    loop_wake(w->loop);
}

static void *pool_main(void *arg)
{
    struct ident_pool *p = arg;
    struct identity *scratch = malloc(sizeof(*scratch)); /* large: one per thread */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        struct ident_job *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        if (scratch) {
            resolve_job(p, scratch, j);
        } else {
            j->rc = -ENOMEM;
            j->result.reason_code = IDENTITY_REASON_UNRESOLVED;
        }
        complete(j);
        pthread_mutex_lock(&p->mu);
        if (!p->head && !p->stop) {
            /* Nothing queued: renew identity's /proc snapshot before it
             * expires, here rather than inside a connection's lookup. */
            pthread_mutex_unlock(&p->mu);
            (void)identity_cache_refresh(p->cache);
            pthread_mutex_lock(&p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    free(scratch);
    return NULL;
}

int identify_pool_start(struct proxy *prx, unsigned threads)
{
    struct ident_pool *p = &prx->ident_pool;
    if (threads == 0 || threads > IDENT_THREADS_MAX)
        threads = IDENT_THREADS_MAX;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->cache = prx->ident;
    const char *hold = getenv("CORDON_TEST_IDENTITY_HOLD");
    p->hold_path = hold && hold[0] ? strdup(hold) : NULL;
    for (unsigned i = 0; i < threads; i++) {
        int r = pthread_create(&p->threads[i], NULL, pool_main, p);
        if (r != 0) {
            identify_pool_stop(prx);
            return -r;
        }
        p->n_threads++;
    }
    return 0;
}

void identify_pool_stop(struct proxy *prx)
{
    struct ident_pool *p = &prx->ident_pool;
    if (!p->cache)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    p->n_threads = 0;
    while (p->head) { /* never started: their connections are closed */
        struct ident_job *j = p->head;
        p->head = j->next;
        job_free(j);
    }
    p->tail = NULL;
    free(p->hold_path);
    p->hold_path = NULL;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    p->cache = NULL;
}

/* ---- the worker side ---- */

static bool out_of_resources(int rc)
{
    return rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM;
}

static enum conn_step identified(struct conn *c, struct ident_job *j)
{
    c->ident = j->result;
    memset(&j->result, 0, sizeof(j->result));
    c->ident_done = true;
    if (out_of_resources(j->rc)) {
        /* the proxy ran short, not the caller: retryable, never a policy verdict */
        tunnel_pool_release(c->w);
        return respond_error(c, 503, PROXY_REASON_OUT_OF_RESOURCES,
                             c->ident.detail ? c->ident.detail
                                             : "the proxy ran out of resources identifying the caller");
    }
    return CONN_STEP_NEXT;
}

/* Completed jobs, on the worker's thread. */
void identify_on_wake(struct loop *l, void *data)
{
    struct worker *w = data;
    (void)l;
    pthread_mutex_lock(&w->ident_mu);
    struct ident_job *list = w->ident_done;
    w->ident_done = NULL;
    pthread_mutex_unlock(&w->ident_mu);
    while (list) {
        struct ident_job *j = list;
        list = j->next;
        struct conn *c = j->c;
        if (c) {
            c->ident_job = NULL;
            conn_run(c, identified(c, j));
        }
        job_free(j);
    }
}

void identify_drain(struct worker *w)
{
    struct ident_job *list = w->ident_done;
    w->ident_done = NULL;
    while (list) {
        struct ident_job *j = list;
        list = j->next;
        job_free(j);
    }
}

void identify_cancel(struct conn *c)
{
    if (c->ident_job) {
        c->ident_job->c = NULL;
        c->ident_job = NULL;
    }
}

enum conn_step identify_enter(struct conn *c)
{
    struct ident_pool *p = &c->w->proxy->ident_pool;
    struct ident_job *j = calloc(1, sizeof(*j));
    if (!j)
        return respond_error(c, 503, PROXY_REASON_OUT_OF_MEMORY, "the proxy is out of memory");
    j->w = c->w;
    j->c = c;
    j->peer = c->peer;
    j->local = c->local;
    c->ident_job = j;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return CONN_STEP_WAIT; /* identify_on_wake continues */
}
