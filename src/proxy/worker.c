/* proxy/worker: one thread per worker, each with its own epoll loop, its own
 * SO_REUSEPORT listener and its own resolver; nothing on the hot path is
 * shared between workers except the connection counter and the identity
 * cache. accept() failing for lack of descriptors or memory pauses the
 * listener with a growing backoff instead of killing the proxy. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/audit.h"
#include "core/log.h"
#include "proxy/internal.h"
#include "core/banned.h"

#define ACCEPT_BATCH 64
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

static const char busy_body[] =
    "{\"error\":\"proxy_unavailable\",\"reason_code\":\"connection_limit\",\"detail\":"
    "\"the proxy is at its connection limit; retry shortly\",\"retryable\":true,\"hint\":null}\n";

static void refuse_busy(int fd)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nX-Cordon-Deny: connection_limit\r\n"
                     "Connection: close\r\n\r\n%s",
                     sizeof(busy_body) - 1, busy_body);
    ssize_t w = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    close(fd);
}

/* connection_limit: a connection refused because the proxy (for `cordon
 * run`: the sandbox's connection budget) already holds max_conns. */
static void audit_connection_limit(struct proxy *p, const struct sockaddr_storage *peer,
                                   unsigned active)
{
    char addr[INET6_ADDRSTRLEN] = "";
    if (peer->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, addr, sizeof(addr));
    else if (peer->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, addr, sizeof(addr));
    json_t *o = json_object();
    if (p->sandbox_name)
        json_object_set_new(o, "sandbox", json_string(p->sandbox_name));
    json_object_set_new(o, "client", json_string(addr));
    json_object_set_new(o, "max_conns", json_integer(p->cfg.max_conns));
    json_object_set_new(o, "active", json_integer(active));
    json_object_set_new(o, "hint", json_string("close idle connections, or raise "
                                               "limits.max_conns / --max-conns"));
    audit_emit("connection_limit", o);
}

static void pause_accept(struct worker *w, int err)
{
    w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (w->backoff_ms > BACKOFF_MAX_MS)
        w->backoff_ms = BACKOFF_MAX_MS;
    log_warn("proxy: worker %u: accept failed (%s); pausing accepts for %llu ms", w->index,
             strerror(err), (unsigned long long)w->backoff_ms);
    (void)loop_io_mod(w->loop, &w->lio, 0);
    if (loop_timer_start(w->loop, &w->accept_backoff, w->backoff_ms) < 0)
        (void)loop_io_mod(w->loop, &w->lio, EPOLLIN);
}

static void resume_accept(struct loop *l, struct loop_timer *t)
{
    struct worker *w = t->data;
    (void)l;
    (void)loop_io_mod(w->loop, &w->lio, EPOLLIN);
}

static void on_listen(struct loop *l, struct loop_io *io, uint32_t ev)
{
    struct worker *w = io->data;
    (void)l;
    (void)ev;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t pl = sizeof(peer);
        int fd = accept4(w->lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED || errno == EPROTO)
                return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                int e = errno;
                tunnel_pool_release(w);
                pause_accept(w, e);
                return;
            }
            log_error("proxy: worker %u: accept: %s", w->index, strerror(errno));
            return;
        }
        w->backoff_ms = 0;
        worker_admit(w, fd, &peer, false);
    }
}

/* Every accepted client, whichever listener took it, goes through here:
 * within the connection budget it becomes a connection; past it, an
 * explicit client gets the 503 (a captured one, which speaks no HTTP to us,
 * a close) and the refusal is one connection_limit event. */
void worker_admit(struct worker *w, int fd, const struct sockaddr_storage *peer, bool transparent)
{
    unsigned active = atomic_fetch_add(&w->proxy->active, 1);
    if (active >= w->proxy->cfg.max_conns) {
        atomic_fetch_sub(&w->proxy->active, 1);
        if (transparent)
            close(fd);
        else
            refuse_busy(fd);
        audit_connection_limit(w->proxy, peer, active);
        return;
    }
    conn_accept(w, fd, peer, transparent);
}

int worker_listen(struct worker *w, const struct sockaddr_storage *addr, socklen_t len)
{
    int one = 1;
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)addr, len) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    w->lfd = fd;
    w->lio.cb = on_listen;
    w->lio.data = w;
    w->accept_backoff.cb = resume_accept;
    w->accept_backoff.data = w;
    int r = loop_io_add(w->loop, &w->lio, fd, EPOLLIN);
    if (r < 0) {
        close(fd);
        w->lfd = -1;
    }
    return r;
}

static void close_all(struct worker *w)
{
    while (w->conns)
        conn_close(w->conns, PROXY_REASON_PROXY_SHUTDOWN);
    loop_run_deferred(w->loop);
}

/* After a burst, give freed memory back to the system: glibc keeps freed
 * chunks of its heaps (one per thread arena) and RSS would stay at the
 * peak. Checked every TRIM_PERIOD_MS: once the connections fell to half a
 * peak of at least TRIM_MIN_PEAK, malloc_trim(0) releases the free pages of
 * every arena. One worker trims at a time. */
#define TRIM_PERIOD_MS 2000
#define TRIM_MIN_PEAK 64

static atomic_flag trimming = ATOMIC_FLAG_INIT;

static void trim_check(struct loop *l, struct loop_timer *t)
{
    struct worker *w = t->data;
    /* also after many kept upstreams of idle connections closed (conn.c):
     * their TLS state is freed while the connections stay */
    bool idle_freed = w->idle_upstreams_closed >= TRIM_MIN_PEAK;
    if (((w->peak_conns >= TRIM_MIN_PEAK && w->n_conns <= w->peak_conns / 2) || idle_freed) &&
        !atomic_flag_test_and_set(&trimming)) {
        uint64_t t0 = loop_clock_ms();
        int released = malloc_trim(0);
        atomic_flag_clear(&trimming);
        log_debug("proxy: worker %u: %zu connections after a peak of %zu; malloc_trim %s "
                  "memory in %llu ms",
                  w->index, w->n_conns, w->peak_conns, released ? "released" : "found no",
                  (unsigned long long)(loop_clock_ms() - t0));
        w->peak_conns = w->n_conns;
        w->idle_upstreams_closed = 0;
    }
    (void)loop_timer_start(l, t, TRIM_PERIOD_MS);
}

void worker_on_wake(struct loop *l, void *data)
{
    identify_on_wake(l, data);
    revoke_run(data);
}

void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->trim_timer.cb = trim_check;
    w->trim_timer.data = w;
    (void)loop_timer_start(w->loop, &w->trim_timer, TRIM_PERIOD_MS);
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    int r = loop_run(w->loop);
    if (r < 0)
        log_error("proxy: worker %u: event loop failed: %s", w->index, strerror(-r));
    close_all(w);
    return NULL;
}
