/* server/hproxy: the HTTP proxy route /sandboxes/{id}/proxy/{port}/{path}.
 *
 *   CONNECTING -> SENDING -> HEAD -> BODY -> (freed)
 *
 * One backend connection per request (Connection: close to the backend).
 * The request: method, "/{path}" and the raw query byte for byte; headers
 * filtered (hproxy_forward_header) plus X-Forwarded-For/Proto/Host; the
 * body (already de-chunked and bounded by --max-body at the front door) with
 * Content-Length. The response: status and headers minus hop-by-hop ones and
 * those the backend's Connection names; the body re-framed chunked to the
 * client (never Content-Length beside chunked), streamed with backpressure:
 * the backend is read only while the client's output buffer has room.
 * Errors as {code, message}: 404 unknown sandbox, 409 not running, 400 bad
 * port, 502 connect failure or a malformed response, 504 no response head
 * within --proxy-timeout. A body that breaks off closes the client
 * connection without the final chunk, so it never looks complete. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "http/message.h"
#include "server/server_int.h"
#include "core/banned.h"

enum hpx_state { HPX_CONNECTING, HPX_SENDING, HPX_HEAD, HPX_BODY, HPX_DONE };
static const char *const hpx_state_names[] = {"CONNECTING", "SENDING", "HEAD", "BODY", "DONE"};

#define HPX_READ 16384

struct hpx {
    struct srv *s;
    struct http_conn *c;
    char rid[200];
    char label[80];
    enum hpx_state state;
    int fd;
    struct loop_io io;
    struct loop_timer timer;
    struct loop_deferred defer;
    char *req;
    size_t req_len, req_pos;
    struct http_parser rp;
    struct http_head head;
    char hbuf[HTTP_HEAD_MAX];
    size_t hlen;
    int head_req;    /* the request was HEAD: no body follows */
    int stream_err;  /* writing to the client failed: -EPIPE (it is gone) or other */
};

static void hpx_set_state(struct hpx *h, enum hpx_state st)
{
    log_debug("server: proxy %s: %s -> %s", h->label, hpx_state_names[h->state],
              hpx_state_names[st]);
    h->state = st;
}

static void hpx_free(void *arg)
{
    struct hpx *h = arg;
    free(h->req);
    free(h);
}

/* Ends the exchange: backend closed, object freed at the end of the turn. */
static void hpx_finish(struct hpx *h)
{
    if (h->state == HPX_DONE)
        return;
    hpx_set_state(h, HPX_DONE);
    loop_timer_stop(h->s->loop, &h->timer);
    if (h->fd >= 0) {
        loop_io_del(h->s->loop, &h->io);
        close(h->fd);
        h->fd = -1;
    }
    loop_defer(h->s->loop, &h->defer, hpx_free, h);
}

/* Fails before the response head went out: a JSON error to the client. */
static void hpx_fail(struct hpx *h, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void hpx_fail(struct hpx *h, int status, const char *code, const char *fmt, ...)
{
    if (h->c) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        server_error(h->c, h->rid, status, code, "%s", msg);
        h->c = NULL;
    }
    hpx_finish(h);
}

/* ---- header filtering (shared with the WebSocket route) ---- */

static int named_in_connection(const struct http_req *req, const char *name, size_t len)
{
    char tok[128];
    if (len >= sizeof(tok))
        return 0;
    memcpy(tok, name, len);
    tok[len] = '\0';
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name_len == 10 && strncasecmp(h->name, "connection", 10) == 0 &&
            http_value_has_token(h->value, h->value_len, tok))
            return 1;
    }
    return 0;
}

int hproxy_dial(struct srv *s, const struct sockaddr_in *be, struct loop_io *io,
                struct http_conn *c, const char *rid)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fd < 0 || (connect(fd, (const struct sockaddr *)be, sizeof(*be)) < 0 && errno != EINPROGRESS)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        server_error(c, rid, 502, "PROXY::CONNECT_FAILED", "could not connect to the sandbox: %s",
                     strerror(e));
        return -1;
    }
    if (loop_io_add(s->loop, io, fd, EPOLLOUT) < 0) {
        close(fd);
        server_error(c, rid, 503, "SANDBOX::INTERNAL_ERROR", "cannot watch the backend socket");
        return -1;
    }
    return fd;
}

int hproxy_forward_header(const struct http_req *req, const struct http_header *h, int ws)
{
    static const char *const drop[] = {
        "host", "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailer", "transfer-encoding", "upgrade", "content-length", "expect",
        "authorization", "cookie", "open-sandbox-api-key", "proxy-connection"};
    static const char *const drop_ws[] = {"sec-websocket-key", "sec-websocket-version",
                                          "sec-websocket-extensions", "sec-websocket-accept",
                                          "sec-websocket-protocol"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (h->name_len == strlen(drop[i]) && strncasecmp(h->name, drop[i], h->name_len) == 0)
            return 0;
    if (ws)
        for (size_t i = 0; i < sizeof(drop_ws) / sizeof(drop_ws[0]); i++)
            if (h->name_len == strlen(drop_ws[i]) &&
                strncasecmp(h->name, drop_ws[i], h->name_len) == 0)
                return 0;
    return !named_in_connection(req, h->name, h->name_len);
}

int hproxy_resolve(struct srv *s, struct http_conn *c, const char *rid, const char *id,
                   uint16_t port, struct sockaddr_in *out, char *token, size_t cap)
{
    int r = s->drv->ops->backend(s->drv, id, port, out, token, cap);
    if (r == 0)
        return 0;
    if (r == -ENOENT)
        server_error(c, rid, 404, "SANDBOX::NOT_FOUND", "%s", s->drv->err);
    else if (r == -EBUSY)
        server_error(c, rid, 409, "SANDBOX::NOT_RUNNING", "%s", s->drv->err);
    else
        server_error(c, rid, 500, "SANDBOX::INTERNAL_ERROR", "%s", s->drv->err);
    return r;
}

/* ---- the request to the backend ---- */

struct sb {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_add(struct sb *b, const void *d, size_t n)
{
    if (b->oom || n == 0)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sb *b, const char *s) { sb_add(b, s, strlen(s)); }

static void peer_ip(const char *peer, char *out, size_t cap)
{
    snprintf(out, cap, "%s", peer);
    char *colon = strrchr(out, ':');
    if (colon)
        *colon = '\0';
}

char *hproxy_build_head(const struct http_req *req, const struct sockaddr_in *be,
                        const char *token, const char *rest, size_t rest_len, int ws,
                        size_t *len)
{
    struct sb b = {0};
    char ip[32], line[128];
    inet_ntop(AF_INET, &be->sin_addr, ip, sizeof(ip));
    sb_str(&b, req->method_name);
    sb_str(&b, " ");
    if (rest_len == 0 || rest[0] != '/')
        sb_str(&b, "/");
    sb_add(&b, rest, rest_len);
    if (req->query_len) {
        sb_str(&b, "?");
        sb_add(&b, req->query, req->query_len);
    }
    snprintf(line, sizeof(line), " HTTP/1.1\r\nHost: %s:%u\r\n", ip, ntohs(be->sin_port));
    sb_str(&b, line);
    int has_xfp = 0, has_xfh = 0, has_xff = 0;
    char client[64];
    peer_ip(req->peer, client, sizeof(client));
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (!hproxy_forward_header(req, h, ws))
            continue;
        if (token[0] && h->name_len == 20 && strncasecmp(h->name, "x-execd-access-token", 20) == 0)
            continue; /* ours replaces it */
        if (h->name_len == 15 && strncasecmp(h->name, "x-forwarded-for", 15) == 0) {
            has_xff = 1;
            sb_add(&b, h->name, h->name_len);
            sb_str(&b, ": ");
            sb_add(&b, h->value, h->value_len);
            sb_str(&b, ", ");
            sb_str(&b, client);
            sb_str(&b, "\r\n");
            continue;
        }
        if (h->name_len == 17 && strncasecmp(h->name, "x-forwarded-proto", 17) == 0)
            has_xfp = 1;
        if (h->name_len == 16 && strncasecmp(h->name, "x-forwarded-host", 16) == 0)
            has_xfh = 1;
        sb_add(&b, h->name, h->name_len);
        sb_str(&b, ": ");
        sb_add(&b, h->value, h->value_len);
        sb_str(&b, "\r\n");
    }
    if (!has_xff) {
        sb_str(&b, "X-Forwarded-For: ");
        sb_str(&b, client);
        sb_str(&b, "\r\n");
    }
    if (!has_xfp)
        sb_str(&b, "X-Forwarded-Proto: http\r\n");
    if (token[0]) {
        sb_str(&b, "X-EXECD-ACCESS-TOKEN: ");
        sb_str(&b, token);
        sb_str(&b, "\r\n");
    }
    const char *host = http_req_header(req, "Host");
    if (!has_xfh && host) {
        sb_str(&b, "X-Forwarded-Host: ");
        sb_str(&b, host);
        sb_str(&b, "\r\n");
    }
    if (!ws) {
        if (req->body_len || strcmp(req->method_name, "POST") == 0 ||
            strcmp(req->method_name, "PUT") == 0 || strcmp(req->method_name, "PATCH") == 0) {
            snprintf(line, sizeof(line), "Content-Length: %zu\r\n", req->body_len);
            sb_str(&b, line);
        }
        sb_str(&b, "Connection: close\r\n\r\n");
        sb_add(&b, req->body, req->body_len);
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ---- response relay ---- */

static void hpx_update_io(struct hpx *h)
{
    if (h->fd < 0)
        return;
    uint32_t ev = 0;
    if (h->state == HPX_CONNECTING || h->state == HPX_SENDING)
        ev = EPOLLOUT;
    else if (h->state == HPX_HEAD || (h->state == HPX_BODY && h->c && http_stream_room(h->c) >= 256))
        ev = EPOLLIN | EPOLLRDHUP;
    if (loop_io_mod(h->s->loop, &h->io, ev) < 0)
        log_warn("server: proxy %s: epoll_ctl failed", h->label);
}

static void on_body_bytes(void *data, const char *at, size_t len)
{
    struct hpx *h = data;
    /* reads are sized to the room, so this fits; if not, fail rather than drop */
    if (h->c && !h->stream_err) {
        int r = http_stream_write(h->c, at, len);
        if (r < 0)
            h->stream_err = r;
    }
}

static void client_gone(struct http_conn *c, void *data)
{
    struct hpx *h = data;
    (void)c;
    log_debug("server: proxy %s: client went away", h->label);
    h->c = NULL;
    hpx_finish(h);
}

static void client_drain(struct http_conn *c, void *data)
{
    struct hpx *h = data;
    (void)c;
    hpx_update_io(h);
}

static int response_header_ok(const struct http_head *hd, const struct http_hdr *x)
{
    static const char *const drop[] = {"connection", "keep-alive", "proxy-authenticate",
                                       "proxy-authorization", "te", "trailer",
                                       "transfer-encoding", "upgrade", "content-length",
                                       "proxy-connection"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (x->name_len == strlen(drop[i]) && strncasecmp(x->name, drop[i], x->name_len) == 0)
            return 0;
    const struct http_hdr *conn = http_head_find(hd, "connection");
    if (conn && x->name_len < 128) {
        char tok[128];
        memcpy(tok, x->name, x->name_len);
        tok[x->name_len] = '\0';
        if (http_value_has_token(conn->value, conn->value_len, tok))
            return 0;
    }
    return 1;
}

/* Consumes body bytes; returns 1 when the exchange is over. */
static int hpx_body(struct hpx *h, const char *p, size_t n)
{
    size_t used;
    enum http_step st = http_parse_body(&h->rp, p, n, &used);
    if (h->stream_err || !h->c) {
        struct http_conn *c = h->c;
        h->c = NULL;
        if (c && h->stream_err == -EPIPE)
            (void)http_stream_end(c); /* closed: only releases it, no on_close */
        else if (c)
            http_abort(c); /* never finish a body we could not relay whole */
        hpx_finish(h);
        return 1;
    }
    if (st == HTTP_ERROR) {
        log_warn("server: proxy %s: malformed response body: %s", h->label,
                 http_parser_error(&h->rp));
        http_abort(h->c);
        h->c = NULL;
        hpx_finish(h);
        return 1;
    }
    if (st == HTTP_MSG_DONE) {
        struct http_conn *c = h->c;
        h->c = NULL;
        hpx_finish(h);
        (void)http_stream_end(c);
        return 1;
    }
    return 0;
}

static void hpx_head_done(struct hpx *h)
{
    struct http_head *hd = &h->head;
    int status = http_parser_status(&h->rp);
    struct sb ex = {0};
    sb_str(&ex, h->rid);
    for (size_t i = 0; i < hd->n_headers; i++) {
        const struct http_hdr *x = &hd->headers[i];
        if (!response_header_ok(hd, x))
            continue;
        sb_add(&ex, x->name, x->name_len);
        sb_str(&ex, ": ");
        sb_add(&ex, x->value, x->value_len);
        sb_str(&ex, "\r\n");
    }
    if (ex.oom) {
        free(ex.p);
        hpx_fail(h, 502, "PROXY::BAD_GATEWAY", "%s", "out of memory relaying the response head");
        return;
    }
    int no_body = h->head_req || status == 204 || status == 304 || (status >= 100 && status < 200) ||
                  http_parser_msg_done(&h->rp);
    struct http_conn *c = h->c;
    if (no_body) {
        h->c = NULL;
        hpx_finish(h);
        (void)http_respond(c, status, NULL, NULL, 0, ex.p);
        free(ex.p);
        return;
    }
    static const struct http_stream_cbs cbs = {.on_drain = client_drain, .on_close = client_gone};
    if (http_stream_begin(c, status, NULL, ex.p, &cbs, h) < 0) {
        free(ex.p);
        h->c = NULL;
        hpx_finish(h);
        return;
    }
    free(ex.p);
    hpx_set_state(h, HPX_BODY);
    loop_timer_stop(h->s->loop, &h->timer);
    size_t rest = h->hlen - hd->len;
    if (rest && hpx_body(h, h->hbuf + hd->len, rest))
        return;
    hpx_update_io(h);
}

static void hpx_read(struct hpx *h)
{
    if (h->state == HPX_HEAD) {
        ssize_t n = read(h->fd, h->hbuf + h->hlen, sizeof(h->hbuf) - h->hlen);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            hpx_fail(h, 502, "PROXY::BAD_GATEWAY", "the sandbox closed the connection before "
                     "a response%s", "");
            return;
        }
        h->hlen += (size_t)n;
        h->rp.on_body = NULL;
        enum http_step st = http_parse_head(&h->rp, h->hbuf, h->hlen, &h->head);
        if (st == HTTP_NEED_MORE)
            return;
        if (st != HTTP_HEAD_DONE) {
            hpx_fail(h, 502, "PROXY::BAD_GATEWAY", "malformed response from the sandbox: %s",
                     st == HTTP_TOO_LARGE ? "head too large" : http_parser_error(&h->rp));
            return;
        }
        h->rp.on_body = on_body_bytes;
        h->rp.body_data = h;
        http_parser_expect_no_body(&h->rp, h->head_req);
        hpx_head_done(h);
        return;
    }
    /* BODY: read no more than the client can take now */
    size_t room = h->c ? http_stream_room(h->c) : 0;
    if (room < 256) {
        hpx_update_io(h);
        return;
    }
    /* half the room: re-chunking adds a few bytes per chunk */
    char buf[HPX_READ];
    ssize_t n = read(h->fd, buf, room / 2 < sizeof(buf) ? room / 2 : sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        enum http_step st = http_parse_eof(&h->rp);
        struct http_conn *c = h->c;
        h->c = NULL;
        hpx_finish(h);
        if (st == HTTP_MSG_DONE) {
            (void)http_stream_end(c);
        } else {
            log_warn("server: proxy %s: the sandbox closed mid-body; closing the client", h->label);
            http_abort(c);
        }
        return;
    }
    if (!hpx_body(h, buf, (size_t)n))
        hpx_update_io(h);
}

static void hpx_io(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct hpx *h = io->data;
    (void)l;
    if (h->state == HPX_DONE)
        return;
    if (h->state == HPX_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            hpx_fail(h, 502, "PROXY::CONNECT_FAILED", "could not connect to the sandbox: %s",
                     strerror(err));
            return;
        }
        hpx_set_state(h, HPX_SENDING);
    }
    if (h->state == HPX_SENDING) {
        while (h->req_pos < h->req_len) {
            ssize_t n = send(h->fd, h->req + h->req_pos, h->req_len - h->req_pos, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                return;
            if (n < 0) {
                hpx_fail(h, 502, "PROXY::BAD_GATEWAY", "sending the request to the sandbox "
                         "failed: %s", strerror(errno));
                return;
            }
            h->req_pos += (size_t)n;
        }
        hpx_set_state(h, HPX_HEAD);
        hpx_update_io(h);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        hpx_read(h);
}

static void hpx_timeout(struct loop *l, struct loop_timer *t)
{
    struct hpx *h = t->data;
    (void)l;
    char ms[32];
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)h->s->cfg.proxy_timeout_ms);
    hpx_fail(h, 504, "PROXY::TIMEOUT", "the sandbox did not answer within %s ms", ms);
}

void hproxy_handle(struct srv *s, struct http_conn *c, const struct http_req *req,
                   const char *rid, const char *id, uint16_t port, const char *rest,
                   size_t rest_len)
{
    struct sockaddr_in be;
    char token[80];
    if (hproxy_resolve(s, c, rid, id, port, &be, token, sizeof(token)) < 0)
        return;
    struct hpx *h = calloc(1, sizeof(*h));
    if (!h) {
        server_error(c, rid, 503, "SANDBOX::INTERNAL_ERROR", "out of memory");
        return;
    }
    h->s = s;
    h->c = c;
    h->fd = -1;
    snprintf(h->rid, sizeof(h->rid), "%s", rid);
    snprintf(h->label, sizeof(h->label), "%llu %.8s:%u", (unsigned long long)++s->next_id, id,
             port);
    h->head_req = strcmp(req->method_name, "HEAD") == 0;
    http_parser_init(&h->rp, HTTP_RESPONSE_PARSER);
    h->req = hproxy_build_head(req, &be, token, rest, rest_len, 0, &h->req_len);
    if (!h->req) {
        free(h);
        server_error(c, rid, 503, "SANDBOX::INTERNAL_ERROR", "out of memory");
        return;
    }
    h->timer.cb = hpx_timeout;
    h->timer.data = h;
    h->io.cb = hpx_io;
    h->io.data = h;
    int fd = hproxy_dial(s, &be, &h->io, c, rid);
    if (fd < 0) {
        free(h->req);
        free(h);
        return;
    }
    h->fd = fd;
    h->state = HPX_CONNECTING;
    if (loop_timer_start(s->loop, &h->timer, s->cfg.proxy_timeout_ms) < 0)
        log_warn("server: proxy %s: timer heap full; no timeout", h->label);
    http_hold(c, client_gone, h);
}
