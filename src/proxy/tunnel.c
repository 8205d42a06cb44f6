/* proxy/tunnel: raw bidirectional relay with splice(2) through one pipe per
 * direction — the bytes never enter user space. Edge-triggered: each event
 * pumps both directions until they would block. Backpressure: a direction
 * stops reading while its pipe holds bytes the sink cannot take. Half-close:
 * EOF on one side becomes shutdown(SHUT_WR) on the other once the pipe is
 * drained; the tunnel ends when both directions are done. Bytes that were
 * buffered before the tunnel started (our 200 to the client, early client
 * data to the upstream) are written first. A WebSocket after a 101 (TLS on
 * a side when inspected, or plaintext) is copied by proxy/wsrelay instead,
 * which needs to see its frames.
 *
 * Memory and descriptors by phase: a raw tunnel frees the connection's HTTP
 * state and buffers (the pre-tunnel ones once written), and a direction
 * holds a pipe only while bytes are in it — it takes one from the worker's
 * pool when data flows and gives it back as soon as it is empty, so an idle
 * tunnel holds its two sockets and nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "proxy/internal.h"
#include "core/banned.h"

#define TUNNEL_PIPE_SIZE (256 * 1024)

/* Pipes are recycled per worker: creating and sizing a pair costs four
 * syscalls per direction per tunnel. Only an empty pipe goes back. */
static int pipe_open(struct worker *w, struct splice_dir *d)
{
    if (w->n_pipes > 0) {
        w->n_pipes--;
        d->pipe_r = w->pipes[w->n_pipes][0];
        d->pipe_w = w->pipes[w->n_pipes][1];
        d->in_pipe = 0;
        return 0;
    }
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
    (void)fcntl(p[1], F_SETPIPE_SZ, TUNNEL_PIPE_SIZE);
    d->pipe_r = p[0];
    d->pipe_w = p[1];
    return 0;
}

static void pipe_close(struct worker *w, struct splice_dir *d)
{
    if (d->pipe_r >= 0 && d->pipe_w >= 0 && d->in_pipe == 0 && w->n_pipes < WORKER_PIPE_POOL) {
        w->pipes[w->n_pipes][0] = d->pipe_r;
        w->pipes[w->n_pipes][1] = d->pipe_w;
        w->n_pipes++;
        d->pipe_r = d->pipe_w = -1;
        return;
    }
    if (d->pipe_r >= 0)
        close(d->pipe_r);
    if (d->pipe_w >= 0)
        close(d->pipe_w);
    d->pipe_r = d->pipe_w = -1;
}

void tunnel_pool_free(struct worker *w)
{
    while (w->n_pipes > 0) {
        w->n_pipes--;
        close(w->pipes[w->n_pipes][0]);
        close(w->pipes[w->n_pipes][1]);
    }
}

void tunnel_pool_release(struct worker *w)
{
    if (w->n_pipes)
        log_warn("proxy: worker %u: descriptors are short; releasing %zu spare relay pipes",
                 w->index, w->n_pipes);
    tunnel_pool_free(w);
}

void tunnel_free(struct conn *c)
{
    pipe_close(c->w, &c->up);
    pipe_close(c->w, &c->down);
}

enum pump { PUMP_OK, PUMP_ERROR, PUMP_NO_PIPE };

/* Writes a pre-tunnel buffer to fd. Returns 1 when empty, 0 if it would block, -1 on error. */
static int flush_pre(struct buf *b, int fd)
{
    while (b->data && b->len) {
        long n = buf_write_fd(b, fd);
        if (n == -EAGAIN)
            return 0;
        if (n < 0)
            return -1;
    }
    return 1;
}

/* Moves bytes from src to dst through d's pipe until both would block. */
static enum pump pump(struct conn *c, struct splice_dir *d, int src, int dst, struct buf *pre)
{
    int f = flush_pre(pre, dst);
    if (f < 0)
        return PUMP_ERROR;
    if (f == 0)
        return PUMP_OK;
    buf_free(pre); /* written: the buffer is not needed again */
    if (d->pipe_r < 0 && !d->eof) {
        int r = pipe_open(c->w, d);
        if (r == -EMFILE || r == -ENFILE) {
            tunnel_pool_release(c->w);
            return PUMP_NO_PIPE;
        }
        if (r < 0)
            return PUMP_NO_PIPE;
    }
    for (;;) {
        bool progress = false;
        if (!d->eof && d->in_pipe < TUNNEL_PIPE_SIZE) {
            ssize_t n = splice(src, NULL, d->pipe_w, NULL, TUNNEL_PIPE_SIZE - d->in_pipe,
                               SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (n > 0) {
                d->in_pipe += (size_t)n;
                progress = true;
            } else if (n == 0) {
                d->eof = true;
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                return PUMP_ERROR;
            }
        }
        if (d->in_pipe > 0) {
            ssize_t n = splice(d->pipe_r, NULL, dst, NULL, d->in_pipe,
                               SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (n > 0) {
                d->in_pipe -= (size_t)n;
                d->bytes += (uint64_t)n;
                progress = true;
            } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                return PUMP_ERROR;
            }
        }
        if (!progress)
            break;
        c->last_active_ms = loop_now_ms(c->w->loop);
    }
    if (d->in_pipe == 0 && d->pipe_r >= 0)
        pipe_close(c->w, d); /* empty: back to the pool until data flows again */
    if (d->eof && d->in_pipe == 0 && !d->shut) {
        shutdown(dst, SHUT_WR);
        d->shut = true;
    }
    return PUMP_OK;
}

static enum conn_step both_done(struct conn *c)
{
    if (c->up.shut && c->down.shut)
        return conn_fail(c, c->up.eof ? PROXY_REASON_CLIENT_CLOSED : PROXY_REASON_UPSTREAM_CLOSED);
    return CONN_STEP_WAIT;
}

enum conn_step tunnel_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    (void)s, (void)ev;
    if (c->ws) /* a WebSocket after a 101: copied with its frames in view */
        return wsrelay_event(c);
    enum pump p = pump(c, &c->up, c->cfd, c->ufd, &c->uout);
    if (p == PUMP_OK)
        p = pump(c, &c->down, c->ufd, c->cfd, &c->cout);
    if (p == PUMP_NO_PIPE)
        return conn_fail(c, PROXY_REASON_OUT_OF_RESOURCES);
    if (p != PUMP_OK)
        return conn_fail(c, PROXY_REASON_RELAY_ERROR);
    return both_done(c);
}

static int append_early_bytes(struct conn *c)
{
    /* Bytes the client sent after the CONNECT head (e.g. a TLS ClientHello
     * sent without waiting for our 200) go to the upstream first. */
    size_t rest = c->cin.len - c->msg->head.len;
    if (rest == 0)
        return 0;
    if (!c->uout.data && buf_init(&c->uout, rest) < 0)
        return -1;
    if (buf_append(&c->uout, buf_head(&c->cin) + c->msg->head.len, rest) < 0)
        return -1;
    c->up.bytes += rest;
    return 0;
}

/* Before answering 200, make sure the relay can get its pipes (they go
 * back to the pool at the first pump if no data is waiting). */
static int reserve_pipes(struct conn *c)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int r = 0;
        if (c->up.pipe_r < 0)
            r = pipe_open(c->w, &c->up);
        if (r == 0 && c->down.pipe_r < 0)
            r = pipe_open(c->w, &c->down);
        if (r == 0)
            return 0;
        if (r != -EMFILE && r != -ENFILE)
            return r;
        tunnel_pool_release(c->w);
    }
    return -EMFILE;
}

/* TUNNEL's entry: after a CONNECT (answer 200, forward the bytes that
 * followed its head) or after a 101 (the exchange left its bytes in uout). */
enum conn_step tunnel_enter(struct conn *c)
{
    static const char ok[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
    bool copy = c->ws != NULL; /* every relayed 101 is a WebSocket (wsrelay.c) */
    if ((c->ctls || c->utls) && !copy) /* TLS bytes are never spliced raw */
        return conn_fail(c, PROXY_REASON_TUNNEL_SETUP_FAILED);
    bool connect_reply = c->kind == KIND_CONNECT && !c->inspect;
    if (!copy && connect_reply && reserve_pipes(c) < 0)
        return respond_error(c, 503, PROXY_REASON_OUT_OF_RESOURCES,
                             "the proxy is out of file descriptors for relay pipes; retry shortly");
    if (connect_reply)
        auditev_decision(c, true, NULL, NULL);
    if (connect_reply && !c->transparent) { /* a captured client asked for nothing */
        if (append_early_bytes(c) < 0 || buf_append(&c->cout, ok, sizeof(ok) - 1) < 0)
            return conn_fail(c, PROXY_REASON_TUNNEL_SETUP_FAILED);
        buf_consume(&c->cin, c->cin.len);
    }
    /* no more HTTP on this connection */
    free(c->msg);
    c->msg = NULL;
    free(c->addrs); /* the address in use stays in c->resolved */
    c->addrs = NULL;
    if (!copy)
        buf_free(&c->cin); /* splice reads sockets directly */
    c->last_active_ms = loop_now_ms(c->w->loop);
    return tunnel_event(c, CONN_SIDE_CLIENT, 0);
}
