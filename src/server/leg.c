/* server/leg: the backend leg of a proxied exchange (see leg.h). */
#include "server/leg.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "server/server_int.h"
#include "core/banned.h"

static const char *const leg_state_names[] = {"CONNECTING", "SENDING", "HEAD", "BODY", "DONE"};

void leg_set_state(struct leg *g, enum leg_state st)
{
    log_debug("server: proxy %s: %s -> %s", g->label, leg_state_names[g->state],
              leg_state_names[st]);
    g->state = st;
}

static void leg_release_cb(void *arg)
{
    struct leg *g = arg;
    g->ops->release(g);
}

static void leg_release(struct leg *g)
{
    if (g->state != LEG_DONE || g->pinned || g->freeing)
        return;
    g->freeing = 1;
    loop_defer(g->s->loop, &g->defer, leg_release_cb, g);
}

void leg_finish(struct leg *g)
{
    if (g->state == LEG_DONE)
        return;
    leg_set_state(g, LEG_DONE);
    loop_timer_stop(g->s->loop, &g->timer);
    if (g->fd >= 0) {
        loop_io_del(g->s->loop, &g->io);
        close(g->fd);
        g->fd = -1;
    }
    if (g->ops->on_finish)
        g->ops->on_finish(g);
    leg_release(g);
}

void leg_fail(struct leg *g, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (g->pinned) {
        if (!g->err_status) {
            g->err_status = status;
            g->err_code = code;
            snprintf(g->err_msg, sizeof(g->err_msg), "%s", msg);
        }
    } else if (g->c) {
        server_error(g->c, g->rid, status, code, "%s", msg);
        g->c = NULL;
    }
    leg_finish(g);
}

void leg_pin(struct leg *g) { g->pinned = 1; }

void leg_unpin(struct leg *g)
{
    g->pinned = 0;
    leg_release(g);
}

void leg_client_gone(struct http_conn *c, void *data)
{
    struct leg *g = data;
    (void)c;
    log_debug("server: proxy %s: client went away", g->label);
    g->c = NULL;
    leg_finish(g);
}

void leg_timer_restart(struct leg *g)
{
    if (loop_timer_start(g->s->loop, &g->timer, g->s->cfg.proxy_timeout_ms) < 0)
        log_warn("server: proxy %s: timer heap full; no timeout", g->label);
}

void leg_timer_stop(struct leg *g) { loop_timer_stop(g->s->loop, &g->timer); }

void leg_watch(struct leg *g, uint32_t body_events)
{
    if (g->fd < 0)
        return;
    uint32_t ev = 0;
    if (g->state == LEG_CONNECTING || (g->state == LEG_SENDING && g->req_pos < g->req_len))
        ev = EPOLLOUT;
    else if (g->state == LEG_SENDING || g->state == LEG_BODY)
        ev = body_events;
    else if (g->state == LEG_HEAD)
        ev = EPOLLIN | EPOLLRDHUP;
    if (loop_io_mod(g->s->loop, &g->io, ev) < 0)
        log_warn("server: proxy %s: epoll_ctl failed", g->label);
}

int leg_send_buf(struct leg *g, const void *p, size_t *pos, size_t len)
{
    int progress = 0;
    while (*pos < len) {
        ssize_t n = send(g->fd, (const char *)p + *pos, len - *pos, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            leg_fail(g, 502, "PROXY::BAD_GATEWAY", "sending the %s to the sandbox failed: %s",
                     g->ops->what, strerror(errno));
            return -1;
        }
        *pos += (size_t)n;
        progress = 1;
    }
    if (progress)
        leg_timer_restart(g); /* the timeout counts from the last progress */
    return *pos == len;
}

/* SENDING: the head, then the owner's rest; HEAD once all went. */
static void leg_send(struct leg *g)
{
    int r = leg_send_buf(g, g->req, &g->req_pos, g->req_len);
    if (r > 0 && g->ops->send_more)
        r = g->ops->send_more(g);
    if (r < 0 || g->state != LEG_SENDING)
        return;
    if (r > 0) {
        leg_set_state(g, LEG_HEAD);
        leg_timer_restart(g); /* --proxy-timeout for the answer */
        leg_watch(g, 0);
    } else if (g->req_pos < g->req_len) {
        leg_watch(g, 0); /* EPOLLOUT for the head; send_more watches for itself */
    }
}

static void leg_read_head(struct leg *g)
{
    ssize_t n = read(g->fd, g->hbuf + g->hlen, sizeof(g->hbuf) - g->hlen);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        leg_fail(g, 502, "PROXY::BAD_GATEWAY", "the sandbox closed the connection before "
                 "answering the %s", g->ops->what);
        return;
    }
    g->hlen += (size_t)n;
    g->rp.on_body = NULL;
    enum http_step st = http_parse_head(&g->rp, g->hbuf, g->hlen, &g->head);
    if (st == HTTP_NEED_MORE)
        return;
    if (st != HTTP_HEAD_DONE) {
        leg_fail(g, 502, "PROXY::BAD_GATEWAY", "malformed answer to the %s from the sandbox: %s",
                 g->ops->what, st == HTTP_TOO_LARGE ? "head too large" : http_parser_error(&g->rp));
        return;
    }
    g->ops->on_head(g);
}

static void leg_io(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct leg *g = io->data;
    (void)l;
    if (g->state == LEG_DONE)
        return;
    if (g->state == LEG_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(g->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            leg_fail(g, 502, "PROXY::CONNECT_FAILED", "could not connect to the sandbox: %s",
                     strerror(err));
            return;
        }
        leg_set_state(g, LEG_SENDING);
    }
    if (g->state == LEG_SENDING) {
        leg_send(g);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return;
    if (g->state == LEG_HEAD)
        leg_read_head(g);
    else
        g->ops->on_readable(g);
}

static void leg_timeout(struct loop *l, struct loop_timer *t)
{
    struct leg *g = t->data;
    (void)l;
    if (g->state == LEG_BODY && g->ops->on_timeout) {
        g->ops->on_timeout(g);
        return;
    }
    leg_fail(g, 504, "PROXY::TIMEOUT", "the sandbox did not answer the %s within %llu ms",
             g->ops->what, (unsigned long long)g->s->cfg.proxy_timeout_ms);
}

void leg_init(struct leg *g, const struct leg_ops *ops, struct srv *s, struct http_conn *c,
              const char *rid, const char *label, char *req, size_t req_len)
{
    g->ops = ops;
    g->s = s;
    g->c = c;
    g->fd = -1;
    snprintf(g->rid, sizeof(g->rid), "%s", rid);
    snprintf(g->label, sizeof(g->label), "%s", label);
    g->req = req;
    g->req_len = req_len;
    g->state = LEG_CONNECTING;
    g->timer.cb = leg_timeout;
    g->timer.data = g;
    g->io.cb = leg_io;
    g->io.data = g;
    http_parser_init(&g->rp, HTTP_RESPONSE_PARSER);
}

int leg_dial(struct leg *g, const struct sockaddr_in *be, int answer)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    const char *code = "PROXY::CONNECT_FAILED";
    int status = 502;
    char msg[256];
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* keystrokes: no Nagle */
    if (fd < 0 || (connect(fd, (const struct sockaddr *)be, sizeof(*be)) < 0 &&
                   errno != EINPROGRESS)) {
        snprintf(msg, sizeof(msg), "could not connect to the sandbox: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        goto fail;
    }
    if (loop_io_add(g->s->loop, &g->io, fd, EPOLLOUT) < 0) {
        close(fd);
        status = 503;
        code = "SANDBOX::INTERNAL_ERROR";
        snprintf(msg, sizeof(msg), "cannot watch the backend socket");
        goto fail;
    }
    g->fd = fd;
    leg_timer_restart(g);
    return 0;
fail:
    if (answer && g->c) {
        server_error(g->c, g->rid, status, code, "%s", msg);
        g->c = NULL;
    } else if (!answer && !g->err_status) {
        g->err_status = status;
        g->err_code = code;
        snprintf(g->err_msg, sizeof(g->err_msg), "%s", msg);
    }
    return -1;
}
