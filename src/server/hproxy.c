/* server/hproxy: the HTTP proxy route /sandboxes/{id}/proxy/{port}/{path}.
 *
 * The backend connection is a server/leg (CONNECTING -> SENDING -> HEAD ->
 * BODY -> DONE); this file adds what HTTP needs: the streamed request body,
 * the response head relayed and its body re-chunked.
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
#include "server/leg.h"
#include "server/server_int.h"
#include "core/banned.h"

#define HPX_READ 16384
#define HPX_BODY_HIGH (256 * 1024) /* request body buffered for the backend: pause */
#define HPX_BODY_LOW (64 * 1024)   /* ... resume */
#define HPX_BODY_CAP (HPX_BODY_HIGH + 4 * HTTP_READ_BUF) /* what arrives after a pause fits */

struct hpx {
    struct leg leg;  /* first: the backend leg */
    int head_req;    /* the request was HEAD: no body follows */
    int stream_err;  /* writing to the client failed: -EPIPE (it is gone) or other */
    /* a streamed request body (hproxy_stream); the leg is pinned while the
     * front door delivers it */
    int streaming;   /* the body comes from the client while we send */
    int chunked;     /* the client sent it chunked: re-chunk it */
    int body_done;   /* the whole body arrived (the request callback fired) */
    int paused;      /* we asked the front door to stop reading */
    uint8_t *bb;     /* body bytes (framed) not yet sent to the backend */
    size_t bb_len, bb_pos;
};

static struct hpx *H(struct leg *g) { return (struct hpx *)g; }

static void hpx_release(struct leg *g)
{
    struct hpx *h = H(g);
    free(g->req);
    free(h->bb);
    free(h);
}

static void hpx_on_finish(struct leg *g)
{
    struct hpx *h = H(g);
    if (h->paused && g->pinned && g->c) {
        h->paused = 0;
        http_body_resume(g->c); /* the rest of the body is read and dropped */
    }
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

static void hpx_watch(struct hpx *h)
{
    struct leg *g = &h->leg;
    uint32_t ev = 0;
    if (g->state == LEG_SENDING && h->bb_pos < h->bb_len)
        ev = EPOLLOUT;
    else if (g->state == LEG_BODY && g->c && http_stream_room(g->c) >= 256)
        ev = EPOLLIN | EPOLLRDHUP;
    leg_watch(g, ev);
}

static void on_body_bytes(void *data, const char *at, size_t len)
{
    struct hpx *h = data;
    /* reads are sized to the room, so this fits; if not, fail rather than drop */
    if (h->leg.c && !h->stream_err) {
        int r = http_stream_write(h->leg.c, at, len);
        if (r < 0)
            h->stream_err = r;
    }
}

static void client_drain(struct http_conn *c, void *data)
{
    (void)c;
    hpx_watch(data);
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
    struct leg *g = &h->leg;
    size_t used;
    enum http_step st = http_parse_body(&g->rp, p, n, &used);
    if (h->stream_err || !g->c) {
        struct http_conn *c = g->c;
        g->c = NULL;
        if (c && h->stream_err == -EPIPE)
            (void)http_stream_end(c); /* closed: only releases it, no on_close */
        else if (c)
            http_abort(c); /* never finish a body we could not relay whole */
        leg_finish(g);
        return 1;
    }
    if (st == HTTP_ERROR) {
        log_warn("server: proxy %s: malformed response body: %s", g->label,
                 http_parser_error(&g->rp));
        http_abort(g->c);
        g->c = NULL;
        leg_finish(g);
        return 1;
    }
    if (st == HTTP_MSG_DONE) {
        struct http_conn *c = g->c;
        g->c = NULL;
        leg_finish(g);
        (void)http_stream_end(c);
        return 1;
    }
    return 0;
}

static void hpx_on_head(struct leg *g)
{
    struct hpx *h = H(g);
    struct http_head *hd = &g->head;
    g->rp.on_body = on_body_bytes;
    g->rp.body_data = h;
    http_parser_expect_no_body(&g->rp, h->head_req);
    int status = http_parser_status(&g->rp);
    struct sb ex = {0};
    sb_str(&ex, g->rid);
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
        leg_fail(g, 502, "PROXY::BAD_GATEWAY", "%s", "out of memory relaying the response head");
        return;
    }
    int no_body = h->head_req || status == 204 || status == 304 || (status >= 100 && status < 200) ||
                  http_parser_msg_done(&g->rp);
    struct http_conn *c = g->c;
    if (no_body) {
        g->c = NULL;
        leg_finish(g);
        (void)http_respond(c, status, NULL, NULL, 0, ex.p);
        free(ex.p);
        return;
    }
    static const struct http_stream_cbs cbs = {.on_drain = client_drain,
                                               .on_close = leg_client_gone};
    if (http_stream_begin(c, status, NULL, ex.p, &cbs, h) < 0) {
        free(ex.p);
        g->c = NULL;
        leg_finish(g);
        return;
    }
    free(ex.p);
    leg_set_state(g, LEG_BODY);
    leg_timer_stop(g);
    size_t rest = g->hlen - hd->len;
    if (rest && hpx_body(h, g->hbuf + hd->len, rest))
        return;
    hpx_watch(h);
}

/* BODY: read no more than the client can take now. */
static void hpx_on_readable(struct leg *g)
{
    struct hpx *h = H(g);
    size_t room = g->c ? http_stream_room(g->c) : 0;
    if (room < 256) {
        hpx_watch(h);
        return;
    }
    /* half the room: re-chunking adds a few bytes per chunk */
    char buf[HPX_READ];
    ssize_t n = read(g->fd, buf, room / 2 < sizeof(buf) ? room / 2 : sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        enum http_step st = http_parse_eof(&g->rp);
        struct http_conn *c = g->c;
        g->c = NULL;
        leg_finish(g);
        if (st == HTTP_MSG_DONE) {
            (void)http_stream_end(c);
        } else {
            log_warn("server: proxy %s: the sandbox closed mid-body; closing the client", g->label);
            http_abort(c);
        }
        return;
    }
    if (!hpx_body(h, buf, (size_t)n))
        hpx_watch(h);
}

/* SENDING, after the head: the streamed body as it is buffered. Resumes a
 * paused client below HPX_BODY_LOW. */
static int hpx_send_more(struct leg *g)
{
    struct hpx *h = H(g);
    if (h->bb_pos < h->bb_len) {
        int r = leg_send_buf(g, h->bb, &h->bb_pos, h->bb_len);
        if (r < 0)
            return -1;
        if (h->bb_pos == h->bb_len)
            h->bb_pos = h->bb_len = 0;
    }
    if (h->paused && h->bb_len - h->bb_pos < HPX_BODY_LOW && g->c) {
        h->paused = 0;
        http_body_resume(g->c); /* may deliver more body and the request callback */
        if (g->state != LEG_SENDING)
            return -1;
    }
    if (h->bb_pos < h->bb_len || (h->streaming && !h->body_done)) {
        hpx_watch(h);
        return 0;
    }
    return 1;
}

static const struct leg_ops hpx_ops = {
    .send_more = hpx_send_more,
    .on_head = hpx_on_head,
    .on_readable = hpx_on_readable,
    .on_finish = hpx_on_finish,
    .release = hpx_release,
    .what = "request",
};

/* Sends now when the leg is sending (else it will when connected). */
static void hpx_kick(struct hpx *h)
{
    struct leg *g = &h->leg;
    if (g->state != LEG_SENDING)
        return;
    int r = leg_send_buf(g, g->req, &g->req_pos, g->req_len);
    if (r > 0)
        r = hpx_send_more(g);
    if (r < 0 || g->state != LEG_SENDING)
        return;
    if (r > 0) {
        leg_set_state(g, LEG_HEAD);
        leg_timer_restart(g);
    }
    hpx_watch(h);
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
    if (h->leg.state == LEG_DONE)
        return -EIO; /* failed: the rest is dropped, the error answered at the end */
    char frame[24];
    int fl = h->chunked ? snprintf(frame, sizeof(frame), "%zx\r\n", n) : 0;
    if ((fl && body_append(h, frame, (size_t)fl) < 0) || body_append(h, p, n) < 0 ||
        (h->chunked && body_append(h, "\r\n", 2) < 0)) {
        leg_fail(&h->leg, 502, "PROXY::BAD_GATEWAY", "%s", "request body buffer overrun");
        return -EIO;
    }
    hpx_kick(h);
    if (h->leg.state == LEG_DONE)
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
    log_debug("server: proxy %s: the client went away while sending its body", h->leg.label);
    h->leg.c = NULL;
    leg_finish(&h->leg);
    leg_unpin(&h->leg);
}

void hproxy_body_done(void *sink, struct http_conn *c)
{
    struct hpx *h = sink;
    struct leg *g = &h->leg;
    h->body_done = 1;
    g->c = c;
    if (g->state == LEG_DONE) {
        if (g->err_status)
            server_error(c, g->rid, g->err_status, g->err_code, "%s", g->err_msg);
        else
            server_error(c, g->rid, 502, "PROXY::BAD_GATEWAY", "the exchange with the sandbox "
                         "ended early");
        g->c = NULL;
        leg_unpin(g);
        return;
    }
    g->pinned = 0; /* from here the client connection is held instead */
    http_hold(c, leg_client_gone, g);
    if (h->chunked && body_append(h, "0\r\n\r\n", 5) < 0) {
        leg_fail(g, 502, "PROXY::BAD_GATEWAY", "%s", "request body buffer overrun");
        return;
    }
    hpx_kick(h);
}

/* Starts the exchange: resolves (answers the client itself on failure; when
 * streaming says nothing: the request is then handled when complete),
 * builds the head, dials. */
static struct hpx *hpx_start(struct srv *s, struct http_conn *c, const struct http_req *req,
                             const char *rid, const char *id, uint16_t port, const char *rest,
                             size_t rest_len, int stream)
{
    struct sockaddr_in be;
    char token[80], label[96];
    if (stream) {
        if (s->drv->ops->backend(s->drv, id, port, &be, token, sizeof(token)) < 0)
            return NULL;
    } else if (hproxy_resolve(s, c, rid, id, port, &be, token, sizeof(token)) < 0) {
        return NULL;
    }
    struct hpx *h = calloc(1, sizeof(*h));
    size_t req_len = 0;
    char *head = h ? hproxy_build_head(req, &be, token, rest, rest_len,
                                       stream ? HPX_HEAD_STREAM : HPX_HEAD_BUFFERED, &req_len)
                   : NULL;
    if (h && head && stream)
        h->bb = malloc(HPX_BODY_CAP);
    if (!h || !head || (stream && !h->bb)) {
        free(head);
        free(h);
        if (!stream)
            server_error(c, rid, 503, "SANDBOX::INTERNAL_ERROR", "out of memory");
        return NULL;
    }
    snprintf(label, sizeof(label), "%llu %.8s:%u", (unsigned long long)++s->next_id, id, port);
    leg_init(&h->leg, &hpx_ops, s, c, rid, label, head, req_len);
    h->head_req = strcmp(req->method_name, "HEAD") == 0;
    h->streaming = stream;
    h->chunked = stream && !http_req_header(req, "Content-Length");
    if (stream) {
        static const struct http_body_cbs cbs = {.on_data = on_body_data,
                                                 .on_abort = on_body_abort};
        if (http_body_stream(c, &cbs, h) < 0) {
            hpx_release(&h->leg);
            return NULL;
        }
        leg_pin(&h->leg);
    }
    if (leg_dial(&h->leg, &be, !stream) < 0) {
        if (!stream) {
            hpx_release(&h->leg);
            return NULL;
        }
        leg_finish(&h->leg); /* the failure is kept and answered once the body is in */
    }
    return h;
}

void hproxy_handle(struct srv *s, struct http_conn *c, const struct http_req *req,
                   const char *rid, const char *id, uint16_t port, const char *rest,
                   size_t rest_len)
{
    struct hpx *h = hpx_start(s, c, req, rid, id, port, rest, rest_len, 0);
    if (h)
        http_hold(c, leg_client_gone, &h->leg);
}

void hproxy_stream(struct srv *s, struct http_conn *c, const struct http_req *req,
                   const char *rid, const char *id, uint16_t port, const char *rest,
                   size_t rest_len)
{
    (void)hpx_start(s, c, req, rid, id, port, rest, rest_len, 1);
}
