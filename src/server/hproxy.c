/* server/hproxy: the HTTP proxy route /sandboxes/{id}/proxy/{port}/{path}.
 *
 *   CONNECTING -> SENDING -> HEAD -> BODY -> (freed)
 *
 * One backend connection per request (Connection: close to the backend).
 * The request: method, "/{path}" and the raw query byte for byte; headers
 * filtered (hproxy_forward_header) plus X-Forwarded-For/Proto/Host; the
 * body streamed (hproxy_stream, from the head on): the client's
 * Content-Length kept, a chunked body re-chunked (de-chunked and checked by
 * the front door), through a buffer of HPX_BODY_HIGH bytes: past it the
 * client is not read (http_body_resume once the backend took it below
 * HPX_BODY_LOW), so memory stays bounded whatever the body's size; while
 * the body flows, --proxy-timeout counts from the last progress. A request
 * that was not streamed (its body was buffered because the head did not
 * resolve to a running sandbox) goes with Content-Length. The response: status and headers minus hop-by-hop ones and
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
#define HPX_BODY_HIGH (256 * 1024) /* request body buffered for the backend: pause */
#define HPX_BODY_LOW (64 * 1024)   /* ... resume */
#define HPX_BODY_CAP (HPX_BODY_HIGH + 4 * HTTP_READ_BUF) /* what arrives after a pause fits */

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
    /* a streamed request body (hproxy_stream) */
    int streaming;   /* the body comes from the client while we send */
    int chunked;     /* the client sent it chunked: re-chunk it */
    int sink_live;   /* the front door still delivers the body to us */
    int body_done;   /* the whole body arrived (the request callback fired) */
    int paused;      /* we asked the front door to stop reading */
    int freeing;
    uint8_t *bb;     /* body bytes (framed) not yet sent to the backend */
    size_t bb_len, bb_pos;
    int err_status;  /* a failure while the body still flows, answered when it ends */
    const char *err_code;
    char err_msg[512];
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
    free(h->bb);
    free(h);
}

/* Frees h at the end of the turn once it is done and the front door no
 * longer holds it as a body sink. */
static void hpx_release(struct hpx *h)
{
    if (h->state != HPX_DONE || h->sink_live || h->freeing)
        return;
    h->freeing = 1;
    loop_defer(h->s->loop, &h->defer, hpx_free, h);
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
    if (h->paused && h->sink_live && h->c) {
        h->paused = 0;
        http_body_resume(h->c); /* the rest of the body is read and dropped */
    }
    hpx_release(h);
}

/* Fails before the response head went out: a JSON error to the client
 * (while the body still flows, when it has arrived: a client that is still
 * sending reads no answer before it is done). */
static void hpx_fail(struct hpx *h, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void hpx_fail(struct hpx *h, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (h->sink_live) {
        if (!h->err_status) {
            h->err_status = status;
            h->err_code = code;
            snprintf(h->err_msg, sizeof(h->err_msg), "%s", msg);
        }
    } else if (h->c) {
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
        if (c)
            server_error(c, rid, 502, "PROXY::CONNECT_FAILED", "could not connect to the "
                         "sandbox: %s", strerror(e));
        return -1;
    }
    if (loop_io_add(s->loop, io, fd, EPOLLOUT) < 0) {
        close(fd);
        if (c)
            server_error(c, rid, 503, "SANDBOX::INTERNAL_ERROR", "cannot watch the backend "
                         "socket");
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
                        const char *token, const char *rest, size_t rest_len, int mode,
                        size_t *len)
{
    int ws = mode == HPX_HEAD_WS;
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
    if (mode == HPX_HEAD_STREAM) {
        /* the front door checked the framing: one Content-Length, or chunked */
        const char *cl = http_req_header(req, "Content-Length");
        if (cl) {
            sb_str(&b, "Content-Length: ");
            sb_str(&b, cl);
            sb_str(&b, "\r\n");
        } else {
            sb_str(&b, "Transfer-Encoding: chunked\r\n");
        }
        sb_str(&b, "Connection: close\r\n\r\n");
    } else if (!ws) {
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
    if (h->state == HPX_CONNECTING ||
        (h->state == HPX_SENDING && (h->req_pos < h->req_len || h->bb_pos < h->bb_len)))
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

/* Sends what is pending of one buffer. Returns 1 when all of it went, 0
 * when the socket is full, -1 after failing the exchange. */
static int send_some(struct hpx *h, const uint8_t *p, size_t *pos, size_t len)
{
    int progress = 0;
    while (*pos < len) {
        ssize_t n = send(h->fd, p + *pos, len - *pos, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            hpx_fail(h, 502, "PROXY::BAD_GATEWAY", "sending the request to the sandbox "
                     "failed: %s", strerror(errno));
            return -1;
        }
        *pos += (size_t)n;
        progress = 1;
    }
    /* a streamed body: the timeout counts from the last progress */
    if (progress && h->streaming && !h->body_done &&
        loop_timer_start(h->s->loop, &h->timer, h->s->cfg.proxy_timeout_ms) < 0)
        log_warn("server: proxy %s: timer heap full; no timeout", h->label);
    return *pos == len;
}

/* SENDING: the head, then body bytes as they are buffered; HEAD once the
 * whole request went out. Resumes a paused client below HPX_BODY_LOW. */
static void hpx_send(struct hpx *h)
{
    int r = send_some(h, (const uint8_t *)h->req, &h->req_pos, h->req_len);
    if (r <= 0) {
        if (r == 0)
            hpx_update_io(h);
        return;
    }
    if (h->bb_pos < h->bb_len) {
        if ((r = send_some(h, h->bb, &h->bb_pos, h->bb_len)) < 0)
            return;
        if (h->bb_pos == h->bb_len)
            h->bb_pos = h->bb_len = 0;
    }
    if (h->paused && h->bb_len - h->bb_pos < HPX_BODY_LOW && h->c) {
        h->paused = 0;
        http_body_resume(h->c); /* may deliver more body and the request callback */
        if (h->state != HPX_SENDING)
            return;
    }
    if (h->bb_pos == h->bb_len && (!h->streaming || h->body_done)) {
        hpx_set_state(h, HPX_HEAD);
        if (h->streaming &&
            loop_timer_start(h->s->loop, &h->timer, h->s->cfg.proxy_timeout_ms) < 0)
            log_warn("server: proxy %s: timer heap full; no timeout", h->label);
    }
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
        hpx_send(h);
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

/* ---- a streamed request body (the front door's body sink) ---- */

static int body_append(struct hpx *h, const void *p, size_t n)
{
    if (h->bb_len + n > HPX_BODY_CAP && h->bb_pos > 0) {
        memmove(h->bb, h->bb + h->bb_pos, h->bb_len - h->bb_pos);
        h->bb_len -= h->bb_pos;
        h->bb_pos = 0;
    }
    if (h->bb_len + n > HPX_BODY_CAP)
        return -ENOBUFS;
    memcpy(h->bb + h->bb_len, p, n);
    h->bb_len += n;
    return 0;
}

static int on_body_data(struct http_conn *c, const uint8_t *p, size_t n, void *data)
{
    struct hpx *h = data;
    (void)c;
    if (h->state == HPX_DONE)
        return -EIO; /* failed: the rest is dropped, the error answered at the end */
    char frame[24];
    int fl = h->chunked ? snprintf(frame, sizeof(frame), "%zx\r\n", n) : 0;
    if ((fl && body_append(h, frame, (size_t)fl) < 0) || body_append(h, p, n) < 0 ||
        (h->chunked && body_append(h, "\r\n", 2) < 0)) {
        hpx_fail(h, 502, "PROXY::BAD_GATEWAY", "%s", "request body buffer overrun");
        return -EIO;
    }
    if (h->state == HPX_SENDING)
        hpx_send(h);
    if (h->state == HPX_DONE)
        return -EIO;
    if (h->bb_len - h->bb_pos > HPX_BODY_HIGH) {
        h->paused = 1;
        return HTTP_BODY_PAUSE;
    }
    return 0;
}

static void on_body_abort(void *data)
{
    struct hpx *h = data;
    log_debug("server: proxy %s: the client went away while sending its body", h->label);
    h->sink_live = 0;
    h->c = NULL;
    hpx_finish(h);
    hpx_release(h);
}

void hproxy_body_done(void *sink, struct http_conn *c)
{
    struct hpx *h = sink;
    h->sink_live = 0;
    h->body_done = 1;
    h->c = c;
    if (h->state == HPX_DONE) {
        if (h->err_status)
            server_error(c, h->rid, h->err_status, h->err_code, "%s", h->err_msg);
        else
            server_error(c, h->rid, 502, "PROXY::BAD_GATEWAY", "the exchange with the sandbox "
                         "ended early");
        h->c = NULL;
        hpx_release(h);
        return;
    }
    http_hold(c, client_gone, h);
    if (h->chunked && body_append(h, "0\r\n\r\n", 5) < 0) {
        hpx_fail(h, 502, "PROXY::BAD_GATEWAY", "%s", "request body buffer overrun");
        return;
    }
    if (h->state == HPX_SENDING)
        hpx_send(h);
}

/* Starts the exchange: resolves (answers the client itself on failure when
 * loud; quiet: returns NULL and says nothing), builds the head, dials. */
static struct hpx *hpx_start(struct srv *s, struct http_conn *c, const struct http_req *req,
                             const char *rid, const char *id, uint16_t port, const char *rest,
                             size_t rest_len, int stream)
{
    struct sockaddr_in be;
    char token[80];
    if (stream) {
        if (s->drv->ops->backend(s->drv, id, port, &be, token, sizeof(token)) < 0)
            return NULL; /* answered when the body is complete */
    } else if (hproxy_resolve(s, c, rid, id, port, &be, token, sizeof(token)) < 0) {
        return NULL;
    }
    struct hpx *h = calloc(1, sizeof(*h));
    if (h && stream && !(h->bb = malloc(HPX_BODY_CAP))) {
        free(h);
        h = NULL;
    }
    if (!h) {
        if (!stream)
            server_error(c, rid, 503, "SANDBOX::INTERNAL_ERROR", "out of memory");
        return NULL;
    }
    h->s = s;
    h->c = c;
    h->fd = -1;
    snprintf(h->rid, sizeof(h->rid), "%s", rid);
    snprintf(h->label, sizeof(h->label), "%llu %.8s:%u", (unsigned long long)++s->next_id, id,
             port);
    h->head_req = strcmp(req->method_name, "HEAD") == 0;
    h->streaming = stream;
    http_parser_init(&h->rp, HTTP_RESPONSE_PARSER);
    h->req = hproxy_build_head(req, &be, token, rest, rest_len,
                               stream ? HPX_HEAD_STREAM : HPX_HEAD_BUFFERED, &h->req_len);
    if (!h->req) {
        free(h->bb);
        free(h);
        if (!stream)
            server_error(c, rid, 503, "SANDBOX::INTERNAL_ERROR", "out of memory");
        return NULL;
    }
    h->chunked = stream && !http_req_header(req, "Content-Length");
    h->timer.cb = hpx_timeout;
    h->timer.data = h;
    h->io.cb = hpx_io;
    h->io.data = h;
    if (stream) {
        static const struct http_body_cbs cbs = {.on_data = on_body_data,
                                                 .on_abort = on_body_abort};
        if (http_body_stream(c, &cbs, h) < 0) {
            free(h->req);
            free(h->bb);
            free(h);
            return NULL;
        }
        h->sink_live = 1;
    }
    /* streamed: a dial failure is kept and answered once the body is in */
    int fd = hproxy_dial(s, &be, &h->io, stream ? NULL : c, rid);
    if (fd < 0) {
        if (!stream) {
            free(h->req);
            free(h->bb);
            free(h);
            return NULL;
        }
        h->state = HPX_CONNECTING;
        hpx_fail(h, 502, "PROXY::CONNECT_FAILED", "%s", "could not connect to the sandbox");
        return h;
    }
    h->fd = fd;
    h->state = HPX_CONNECTING;
    if (loop_timer_start(s->loop, &h->timer, s->cfg.proxy_timeout_ms) < 0)
        log_warn("server: proxy %s: timer heap full; no timeout", h->label);
    return h;
}

void hproxy_handle(struct srv *s, struct http_conn *c, const struct http_req *req,
                   const char *rid, const char *id, uint16_t port, const char *rest,
                   size_t rest_len)
{
    struct hpx *h = hpx_start(s, c, req, rid, id, port, rest, rest_len, 0);
    if (h)
        http_hold(c, client_gone, h);
}

void hproxy_stream(struct srv *s, struct http_conn *c, const struct http_req *req,
                   const char *rid, const char *id, uint16_t port, const char *rest,
                   size_t rest_len)
{
    (void)hpx_start(s, c, req, rid, id, port, rest, rest_len, 1);
}
