/* proxy/conn: a client connection's life outside the phases — accept,
 * reading request heads (REQ_HEAD, KEEPALIVE), writing our own bytes to
 * the client, and CLOSED's release of everything. State changes belong to
 * state.c; the functions here return steps. */
#include <errno.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "identity/identity.h"
#include "tls/tls.h"
#include "proxy/internal.h"
#include "proxy/side.h"
#include "core/banned.h"

#define CONN_CIN_CAP (HTTP_HEAD_MAX + 4096)
#define CONN_COUT_CAP 65536

static void conn_free_deferred(void *arg);

static void set_sockopts(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void on_client_io(struct loop *l, struct loop_io *io, uint32_t ev)
{
    (void)l;
    conn_dispatch_event(io->data, CONN_SIDE_CLIENT, ev);
}

static void on_timer(struct loop *l, struct loop_timer *t)
{
    (void)l;
    conn_dispatch_timer(t->data);
}

void conn_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, bool transparent)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c || !(c->msg = calloc(1, sizeof(*c->msg))) || buf_init(&c->cin, CONN_CIN_CAP) < 0 ||
        buf_init(&c->cout, CONN_COUT_CAP) < 0) {
        log_error("proxy: out of memory accepting a connection; closing it");
        if (c) {
            buf_free(&c->cin);
            free(c->msg);
            free(c);
        }
        close(fd);
        atomic_fetch_sub(&w->proxy->active, 1);
        return;
    }
    /* calloc: c->state is CONN_REQ_HEAD (0), the initial state */
    c->w = w;
    c->id = atomic_fetch_add(&w->proxy->next_id, 1) + 1;
    c->cfd = fd;
    c->ufd = -1;
    c->up.pipe_r = c->up.pipe_w = c->down.pipe_r = c->down.pipe_w = -1;
    c->peer = *peer;
    c->transparent = transparent;
    socklen_t ll = sizeof(c->local);
    getsockname(fd, (struct sockaddr *)&c->local, &ll);
    c->start_ms = c->last_active_ms = loop_now_ms(w->loop);
    set_sockopts(fd);
    c->cio.cb = on_client_io;
    c->cio.data = c;
    c->uio.fd = -1;
    c->timer.cb = on_timer;
    c->timer.data = c;
    if (loop_io_add(w->loop, &c->cio, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) < 0) {
        log_error("proxy: epoll add failed for a new connection; closing it");
        free(c->msg);
        buf_free(&c->cin);
        buf_free(&c->cout);
        free(c);
        close(fd);
        atomic_fetch_sub(&w->proxy->active, 1);
        return;
    }
    if (++w->n_conns > w->peak_conns)
        w->peak_conns = w->n_conns;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    conn_start(c);
}

static void conn_free_deferred(void *arg)
{
    struct conn *c = arg;
    if (c->ctls) {
        tls_conn_free(c->ctls);
        free(c->ctls);
    }
    buf_free(&c->cin);
    buf_free(&c->cout);
    buf_free(&c->uout);
    reqbody_free(c);
    free(c->msg);
    identify_result_free(&c->ident);
    infer_free(c);
    wsrelay_free(c);
    free(c->addrs);
    if (c->pol)
        policy_unref(c->pol);
    free(c);
}

enum conn_step conn_enter_closed(struct conn *c)
{
    infer_closing(c);
    auditev_close(c);
    struct loop *l = c->w->loop;
    identify_cancel(c);
    if (c->dnsq) {
        dns_cancel(c->dnsq);
        c->dnsq = NULL;
    }
    upstream_close(c);
    tunnel_free(c);
    if (c->reset_client) {
        /* RST: a truncated response never looks like a complete one */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    } else if (c->ctls && !c->ctls->fatal && tls_conn_shutdown(c->ctls) != 0) {
        log_debug("proxy: conn %llu: close_notify not sent", (unsigned long long)c->id);
    }
    /* close() alone would not drop the epoll registration while a copy of
     * the fd exists: a child forked or cloned by another thread of this
     * process (the self-test probe, certutil, init) holds one until its
     * exec, and an event in that window would reach a freed conn. */
    loop_io_del(l, &c->cio);
    close(c->cfd);
    c->cfd = -1;
    c->w->n_conns--;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub(&c->w->proxy->active, 1);
    loop_defer(l, &c->free_node, conn_free_deferred, c);
    return CONN_STEP_WAIT;
}

int conn_flush_client(struct conn *c)
{
    while (c->cout.len) {
        long n = side_buf_write(&c->cout, c->cfd, c->ctls);
        if (n == -EAGAIN)
            return 0;
        if (n < 0) {
            (void)conn_fail(c, PROXY_REASON_CLIENT_WRITE_ERROR);
            return -1;
        }
        c->fwd_down += (uint64_t)n; /* our own answers count as bytes down */
    }
    return 1;
}

/* ---- reading heads ---- */

/* Reads what the client has sent into cin. Returns CONN_STEP_WAIT, or
 * CLOSE on a read error. Sets client_eof at EOF. */
static enum conn_step read_client(struct conn *c)
{
    for (;;) {
        long n = side_buf_read(&c->cin, c->cfd, c->ctls);
        if (n > 0)
            continue;
        if (n == 0)
            c->client_eof = true;
        else if (n != -EAGAIN && n != -ENOBUFS)
            return conn_fail(c, PROXY_REASON_CLIENT_READ_ERROR);
        return CONN_STEP_WAIT;
    }
}

static enum conn_step parse_head(struct conn *c)
{
    enum http_step st = http_parse_head(&c->msg->req, buf_head(&c->cin), c->cin.len, &c->msg->head);
    if (st == HTTP_NEED_MORE) {
        if (c->client_eof)
            return conn_fail(c, c->cin.len ? PROXY_REASON_CLIENT_CLOSED_MID_HEAD
                                           : PROXY_REASON_CLIENT_CLOSED);
        return CONN_STEP_WAIT;
    }
    if (st == HTTP_TOO_LARGE)
        return respond_error(c, 431, PROXY_REASON_HEAD_TOO_LARGE,
                             "the request head exceeds 16384 bytes");
    if (st == HTTP_ERROR) {
        char d[300];
        snprintf(d, sizeof(d), "malformed request: %s", http_parser_error(&c->msg->req));
        return respond_error(c, 400, PROXY_REASON_BAD_REQUEST, d);
    }
    c->head_parsed = true;
    if (c->local_plain) /* a captured request to cordon.local */
        return local_serve_plain(c);
    if (c->inspect)
        return CONN_STEP_NEXT; /* DECIDE checks it as a request inside the tunnel */
    return entry_explicit(c);
}

static enum conn_step read_and_parse(struct conn *c)
{
    enum conn_step s = read_client(c);
    if (s != CONN_STEP_WAIT)
        return s;
    if (c->cin.len == 0)
        return c->client_eof ? conn_fail(c, PROXY_REASON_CLIENT_CLOSED) : CONN_STEP_WAIT;
    return parse_head(c);
}

enum conn_step conn_enter_req_head(struct conn *c)
{
    c->head_parsed = false;
    http_parser_init(&c->msg->req, HTTP_REQUEST_PARSER);
    if (c->transparent && !c->target.host[0]) /* captured: no head names the target */
        return entry_transparent(c);
    /* Edge-triggered: bytes that arrived earlier raised no new event. */
    return read_and_parse(c);
}

enum conn_step conn_req_head_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    if (s == CONN_SIDE_UPSTREAM) {
        upstream_idle_event(c);
        return CONN_STEP_WAIT;
    }
    if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return CONN_STEP_WAIT;
    return read_and_parse(c);
}

enum conn_step conn_req_head_timer(struct conn *c)
{
    if (c->cin.len == 0) /* nothing sent: closed without an answer */
        return conn_fail(c, c->ident_done ? PROXY_REASON_KEEPALIVE_IDLE : PROXY_REASON_HEAD_TIMEOUT);
    (void)conn_fail(c, PROXY_REASON_HEAD_TIMEOUT);
    return respond_error(c, 408, PROXY_REASON_HEAD_TIMEOUT,
                         "the request head did not arrive in time");
}

/* Memory by phase: a connection idling in KEEPALIVE (a forward keep-alive
 * connection, an inspected tunnel between requests) holds no buffers and no
 * HTTP state, only struct conn, its sockets and TLS sessions (whose record
 * buffers go too: tls_conn_release_buffers). They come back when the
 * client's next bytes do. Nothing is released while a byte is held. */
static void keepalive_release(struct conn *c)
{
    if (c->cin.len || c->cout.len || c->uout.len)
        return;
    buf_free(&c->cin);
    buf_free(&c->cout);
    buf_free(&c->uout); /* forward.c and infer.c allocate it when they need it */
    free(c->msg);
    c->msg = NULL;
    (void)tls_conn_release_buffers(c->ctls);
    (void)tls_conn_release_buffers(c->utls);
}

/* The input side comes back for a read (which may only find the end); the
 * output buffer and the HTTP state only once a request has begun. */
static int keepalive_acquire(struct conn *c, bool request)
{
    if (!c->cin.data && buf_init(&c->cin, CONN_CIN_CAP) < 0)
        return -ENOMEM;
    if (!request)
        return 0;
    if (!c->msg && !(c->msg = calloc(1, sizeof(*c->msg))))
        return -ENOMEM;
    if (!c->cout.data && buf_init(&c->cout, CONN_COUT_CAP) < 0)
        return -ENOMEM;
    return 0;
}

/* KEEPALIVE: no request bytes yet; the idle timer runs until the first. */
static enum conn_step keepalive_step(struct conn *c)
{
    if (keepalive_acquire(c, false) < 0)
        return conn_fail(c, PROXY_REASON_OUT_OF_MEMORY);
    enum conn_step s = read_client(c);
    if (s != CONN_STEP_WAIT)
        return s;
    if (c->cin.len)
        return keepalive_acquire(c, true) < 0 ? conn_fail(c, PROXY_REASON_OUT_OF_MEMORY)
                                              : CONN_STEP_NEXT;
    if (c->client_eof)
        return conn_fail(c, PROXY_REASON_CLIENT_CLOSED);
    keepalive_release(c); /* read_client drained the socket and the TLS layer */
    return CONN_STEP_WAIT;
}

/* KEEPALIVE's one timer runs in two legs: while an upstream is kept for
 * the next request, until PROXY_UPSTREAM_IDLE_MS (then the upstream goes);
 * then until PROXY_KEEPALIVE_IDLE_MS since the last exchange (then the
 * client's connection goes). */
enum conn_step conn_enter_keepalive(struct conn *c)
{
    c->head_parsed = false;
    c->last_active_ms = loop_now_ms(c->w->loop);
    enum conn_step s = keepalive_step(c);
    if (s == CONN_STEP_WAIT && c->ufd >= 0 && PROXY_UPSTREAM_IDLE_MS < PROXY_KEEPALIVE_IDLE_MS)
        return conn_timer_rearm(c, PROXY_UPSTREAM_IDLE_MS);
    return s;
}

enum conn_step conn_keepalive_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    if (s == CONN_SIDE_UPSTREAM) {
        upstream_idle_event(c);
        return CONN_STEP_WAIT;
    }
    if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return CONN_STEP_WAIT;
    return keepalive_step(c);
}

enum conn_step conn_keepalive_timer(struct conn *c)
{
    uint64_t idle = loop_now_ms(c->w->loop) - c->last_active_ms;
    if (idle >= PROXY_KEEPALIVE_IDLE_MS)
        return conn_fail(c, PROXY_REASON_KEEPALIVE_IDLE);
    if (c->ufd >= 0) {
        log_debug("proxy: conn %llu: upstream %s:%u idle for %llu ms; closed (the client's "
                  "connection stays)", (unsigned long long)c->id, c->upstream_host,
                  c->upstream_port, (unsigned long long)idle);
        upstream_close(c);
        c->w->idle_upstreams_closed++; /* the worker's trim gives the memory back */
    }
    return conn_timer_rearm(c, PROXY_KEEPALIVE_IDLE_MS - idle);
}

enum conn_step conn_waiting_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    if (s == CONN_SIDE_CLIENT && (ev & (EPOLLERR | EPOLLHUP)))
        return conn_fail(c, PROXY_REASON_CLIENT_CLOSED);
    return CONN_STEP_WAIT; /* client bytes wait in the kernel until the upstream is ready */
}

/* EXCHANGE and TUNNEL: close after the endpoint's idle timeout without
 * traffic in either direction; traffic moves the deadline. */
enum conn_step conn_idle_timer(struct conn *c)
{
    if (c->state == CONN_TUNNEL && wsrelay_closing(c))
        return wsrelay_close_timeout(c); /* our closing handshake ran out of time */
    uint64_t now = loop_now_ms(c->w->loop), idle = now - c->last_active_ms;
    if (!c->idle_ms)
        return CONN_STEP_WAIT;
    if (idle >= c->idle_ms && c->infer && c->state == CONN_EXCHANGE)
        return infer_upstream_failed(c, PROXY_REASON_IDLE_TIMEOUT); /* the API's error event */
    if (idle >= c->idle_ms && c->state == CONN_TUNNEL && c->ws)
        return wsrelay_idle(c); /* close 1001 both ways */
    if (idle >= c->idle_ms)
        return conn_fail(c, PROXY_REASON_IDLE_TIMEOUT);
    return conn_timer_rearm(c, c->idle_ms - idle);
}
