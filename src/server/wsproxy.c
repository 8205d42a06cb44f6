/* server/wsproxy: the WebSocket proxy route (same paths as server/hproxy).
 *
 * The client's handshake is answered only after the backend's (the backend
 * connection is a server/leg, shared with the HTTP route):
 *
 *   check the client's handshake (400 / 426), authenticated and the sandbox
 *   resolved by then (401 / 404 / 409 as HTTP, never after accepting)
 *   -> CONNECTING -> SENDING our handshake (a fresh Sec-WebSocket-Key; the
 *      client's subprotocol offer; filtered headers) -> HEAD
 *   -> backend 101 (accept key checked, subprotocol among those offered):
 *      the client gets 101 with its own accept key and the same subprotocol,
 *      and the relay starts
 *   -> backend refused (any other status): the client gets the same status
 *      and the same body (execd's 404 unknown session, 409 session held, 401
 *      bad token stay distinguishable); 502 connect failure or malformed
 *      answer, 504 no answer within --proxy-timeout
 *
 * The relay: two ws/conn ends (server end to the client, client end to the
 * backend, frames masked). Messages pass with their type and bytes (wslay
 * reassembles fragments); a message over --ws-max-message closes that side
 * with 1009 and the other with 1009 too. Close frames are mirrored with code
 * and reason; a peer that vanished without one (1006 locally) closes the
 * other side with 1011 "backend connection lost" or 1001 "client went
 * away"; a close without a code is mirrored without a code (1005 never goes
 * on the wire). Backpressure: a side whose output queue passes 1 MiB stops
 * the other side's reading until it drains. Keepalive: pings every
 * --ws-ping-interval on both ends (ws/conn). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
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
#include "ws/conn.h"
#include "ws/handshake.h"
#include "core/banned.h"

#define WSR_HIGH_WATER (1024 * 1024)
#define WSR_LOW_WATER (256 * 1024)
#define WSP_BODY_MAX 65536

/* ---- the relay ---- */

struct wsr {
    struct srv *s;
    struct ws_conn *cl, *be;
    int cl_gone, be_gone;
    char label[96];
    struct loop_deferred defer;
};

static void wsr_free(void *arg) { free(arg); }

static struct ws_conn *other(struct wsr *r, struct ws_conn *ws)
{
    return ws == r->cl ? (r->be_gone ? NULL : r->be) : (r->cl_gone ? NULL : r->cl);
}

static void wsr_msg(struct ws_conn *ws, enum ws_opcode op, const uint8_t *msg, size_t len,
                    void *data)
{
    struct wsr *r = data;
    struct ws_conn *dst = other(r, ws);
    if (!dst || ws_conn_closing(dst))
        return;
    if (ws_conn_send(dst, op, NULL, 0, msg, len) < 0) {
        log_warn("server: ws %s: cannot queue a message; closing", r->label);
        ws_conn_close(ws, 1011, "proxy could not relay the message");
        return;
    }
    if (ws_conn_queued(dst) > WSR_HIGH_WATER)
        ws_conn_pause_read(ws, 1);
}

static void wsr_drain(struct ws_conn *ws, void *data)
{
    struct wsr *r = data;
    struct ws_conn *src = other(r, ws);
    if (src && ws_conn_queued(ws) < WSR_LOW_WATER)
        ws_conn_pause_read(src, 0);
}

static void wsr_peer_close(struct ws_conn *ws, uint16_t code, const uint8_t *reason, size_t len,
                           void *data)
{
    struct wsr *r = data;
    struct ws_conn *dst = other(r, ws);
    char rs[124];
    if (!dst || ws_conn_closing(dst))
        return;
    if (len > sizeof(rs) - 1)
        len = sizeof(rs) - 1;
    memcpy(rs, reason ? (const char *)reason : "", len);
    rs[len] = '\0';
    /* 1005 is "no code received": mirror it as a close without a code */
    log_debug("server: ws %s: %s closed %u '%s'", r->label, ws == r->cl ? "client" : "backend",
              code, rs);
    ws_conn_close(dst, code == 1005 ? 0 : code, rs);
}

static void wsr_close(struct ws_conn *ws, uint16_t code, void *data)
{
    struct wsr *r = data;
    int is_cl = ws == r->cl;
    struct ws_conn *dst = other(r, ws);
    if (is_cl)
        r->cl_gone = 1;
    else
        r->be_gone = 1;
    if (dst && !ws_conn_closing(dst)) {
        if (code == 1006 || code == 1005 || code == 1015 || code == 0)
            ws_conn_close(dst, is_cl ? 1001 : 1011,
                          is_cl ? "client went away" : "backend connection lost");
        else
            ws_conn_close(dst, code, code == 1009 ? "message too big" : "");
    }
    if (r->cl_gone && r->be_gone) {
        log_debug("server: ws %s: relay over", r->label);
        loop_defer(r->s->loop, &r->defer, wsr_free, r);
    }
}

static const struct ws_conn_cbs wsr_cbs = {.on_msg = wsr_msg,
                                           .on_drain = wsr_drain,
                                           .on_peer_close = wsr_peer_close,
                                           .on_close = wsr_close};

/* ---- the handshake with the backend ---- */

struct wsp {
    struct leg leg;                        /* first: the backend leg */
    char expect_accept[WS_ACCEPT_LEN + 1]; /* what the backend must answer */
    char client_accept[WS_ACCEPT_LEN + 1]; /* what we answer the client */
    char offered[512];                     /* the client's Sec-WebSocket-Protocol */
    char *body;                            /* a refusal's body */
    size_t body_len;
    int status;
    char ctype[128];
};

static struct wsp *P(struct leg *g) { return (struct wsp *)g; }

static void wsp_release(struct leg *g)
{
    struct wsp *p = P(g);
    free(g->req);
    free(p->body);
    free(p);
}

/* The backend refused: the same status and body go to the client. */
static void wsp_mirror(struct wsp *p)
{
    struct leg *g = &p->leg;
    char extra[400];
    snprintf(extra, sizeof(extra), "%sX-Cordon-Upstream-Status: %d\r\n", g->rid, p->status);
    log_info("server: ws %s: the sandbox refused the handshake with %d; mirrored", g->label,
             p->status);
    if (g->c)
        (void)http_respond(g->c, p->status, p->ctype[0] ? p->ctype : NULL, p->body, p->body_len,
                           extra);
    g->c = NULL;
    leg_finish(g);
}

static void on_refusal_body(void *data, const char *at, size_t len)
{
    struct wsp *p = data;
    if (p->body_len + len > WSP_BODY_MAX)
        len = WSP_BODY_MAX - p->body_len;
    if (!len)
        return;
    char *n = realloc(p->body, p->body_len + len);
    if (!n)
        return;
    p->body = n;
    memcpy(p->body + p->body_len, at, len);
    p->body_len += len;
}

static void wsp_body(struct wsp *p, const char *buf, size_t n, int eof)
{
    size_t used;
    struct http_parser *rp = &p->leg.rp;
    enum http_step st = eof ? http_parse_eof(rp) : http_parse_body(rp, buf, n, &used);
    if (st == HTTP_MSG_DONE || st == HTTP_ERROR || eof || p->body_len >= WSP_BODY_MAX)
        wsp_mirror(p);
}

/* The backend accepted: check it, answer the client, start the relay. */
static void wsp_upgrade(struct wsp *p)
{
    struct leg *g = &p->leg;
    struct http_head *hd = &g->head;
    const struct http_hdr *acc = http_head_find(hd, "sec-websocket-accept");
    const struct http_hdr *up = http_head_find(hd, "upgrade");
    const struct http_hdr *proto = http_head_find(hd, "sec-websocket-protocol");
    const struct http_hdr *ext = http_head_find(hd, "sec-websocket-extensions");
    char chosen[128] = "";
    if (!acc || acc->value_len != WS_ACCEPT_LEN ||
        memcmp(acc->value, p->expect_accept, WS_ACCEPT_LEN) != 0 || !up ||
        !http_value_has_token(up->value, up->value_len, "websocket")) {
        leg_fail(g, 502, "PROXY::BAD_GATEWAY", "the sandbox's WebSocket handshake answer is "
                 "invalid (%s)", "Sec-WebSocket-Accept or Upgrade");
        return;
    }
    if (ext) {
        leg_fail(g, 502, "PROXY::BAD_GATEWAY", "the sandbox negotiated an extension that was "
                 "not offered (%s)", "Sec-WebSocket-Extensions");
        return;
    }
    if (proto) {
        if (proto->value_len >= sizeof(chosen) ||
            !(snprintf(chosen, sizeof(chosen), "%.*s", (int)proto->value_len, proto->value),
              http_value_has_token(p->offered, strlen(p->offered), chosen))) {
            leg_fail(g, 502, "PROXY::BAD_GATEWAY", "the sandbox chose a subprotocol the client "
                     "did not offer (%s)", "Sec-WebSocket-Protocol");
            return;
        }
    }
    struct srv *s = g->s;
    int cfd = -1, bfd = g->fd;
    uint8_t left[HTTP_READ_BUF];
    size_t llen = 0;
    char resp[768];
    int rl = snprintf(resp, sizeof(resp),
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s%s\r\n",
                      p->client_accept, chosen[0] ? "Sec-WebSocket-Protocol: " : "", chosen,
                      chosen[0] ? "\r\n" : "", g->rid);
    if (rl < 0 || (size_t)rl >= sizeof(resp) ||
        http_upgrade_take(g->c, &cfd, left, sizeof(left), &llen) < 0) {
        leg_fail(g, 500, "SANDBOX::INTERNAL_ERROR", "cannot switch %s to WebSocket",
                 "the client connection");
        return;
    }
    g->c = NULL;
    /* the relay owns both sockets from here */
    loop_io_del(s->loop, &g->io);
    g->fd = -1;
    size_t blen = g->hlen - hd->len;
    struct wsr *r = calloc(1, sizeof(*r));
    if (!r) {
        close(cfd);
        close(bfd);
        leg_finish(g);
        return;
    }
    r->s = s;
    snprintf(r->label, sizeof(r->label), "%s", g->label);
    char lc[128], lb[128];
    snprintf(lc, sizeof(lc), "proxy %s client", g->label);
    snprintf(lb, sizeof(lb), "proxy %s backend", g->label);
    struct ws_conn_cfg ccfg = {.max_msg = s->cfg.ws_max_msg, .ping_ms = s->cfg.ws_ping_ms,
                               .low_water = WSR_LOW_WATER, .label = lc};
    struct ws_conn_cfg bcfg = ccfg;
    bcfg.label = lb;
    bcfg.client = 1;
    /* the client end first (it sends the 101), so that messages the backend
     * sent right after its 101 always have somewhere to go */
    if (ws_conn_new(s->loop, cfd, resp, (size_t)rl, left, llen, &ccfg, &wsr_cbs, r, &r->cl) < 0) {
        close(bfd);
        free(r);
        leg_finish(g);
        return;
    }
    if (ws_conn_new(s->loop, bfd, "", 0, g->hbuf + hd->len, blen, &bcfg, &wsr_cbs, r,
                    &r->be) < 0) {
        r->be_gone = 1;
        ws_conn_close(r->cl, 1011, "cannot relay to the sandbox");
    }
    log_info("server: ws %s: relaying%s%s", g->label, chosen[0] ? " subprotocol " : "", chosen);
    leg_finish(g);
}

static void wsp_on_head(struct leg *g)
{
    struct wsp *p = P(g);
    p->status = http_parser_status(&g->rp);
    if (p->status == 101) {
        wsp_upgrade(p);
        return;
    }
    const struct http_hdr *ct = http_head_find(&g->head, "content-type");
    if (ct)
        snprintf(p->ctype, sizeof(p->ctype), "%.*s", (int)ct->value_len, ct->value);
    if (p->status < 200) {
        leg_fail(g, 502, "PROXY::BAD_GATEWAY", "unexpected interim answer from the sandbox%s", "");
        return;
    }
    leg_set_state(g, LEG_BODY);
    leg_watch(g, EPOLLIN | EPOLLRDHUP);
    g->rp.on_body = on_refusal_body;
    g->rp.body_data = p;
    if (http_parser_msg_done(&g->rp)) {
        wsp_mirror(p);
        return;
    }
    size_t rest = g->hlen - g->head.len;
    wsp_body(p, g->hbuf + g->head.len, rest, 0);
}

/* BODY: a refusal's body, mirrored when complete. */
static void wsp_on_readable(struct leg *g)
{
    char buf[4096];
    ssize_t n = read(g->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    wsp_body(P(g), buf, n > 0 ? (size_t)n : 0, n <= 0);
}

/* A refusal whose body does not end in time goes out with what came. */
static void wsp_on_timeout(struct leg *g) { wsp_mirror(P(g)); }

static const struct leg_ops wsp_ops = {
    .on_head = wsp_on_head,
    .on_readable = wsp_on_readable,
    .on_timeout = wsp_on_timeout,
    .release = wsp_release,
    .what = "handshake",
};

void wsproxy_handle(struct srv *s, struct http_conn *c, const struct http_req *req,
                    const char *rid, const char *id, uint16_t port, const char *rest,
                    size_t rest_len)
{
    char accept[WS_ACCEPT_LEN + 1];
    const char *why = NULL;
    int r = ws_handshake_check(req, accept, &why);
    if (r == -EPROTONOSUPPORT) {
        char extra[300];
        snprintf(extra, sizeof(extra), "%sSec-WebSocket-Version: 13\r\n", rid);
        char body[256];
        int n = snprintf(body, sizeof(body), "{\"code\":\"WEBSOCKET::UNSUPPORTED_VERSION\","
                         "\"message\":\"%s\"}", why);
        (void)http_respond(c, 426, "application/json", body, (size_t)n, extra);
        return;
    }
    if (r < 0) {
        server_error(c, rid, 400, "WEBSOCKET::BAD_HANDSHAKE", "%s", why);
        return;
    }
    struct sockaddr_in be;
    char token[80];
    if (hproxy_resolve(s, c, rid, id, port, &be, token, sizeof(token)) < 0)
        return;
    struct wsp *p = calloc(1, sizeof(*p));
    if (!p) {
        server_error(c, rid, 503, "SANDBOX::INTERNAL_ERROR", "out of memory");
        return;
    }
    memcpy(p->client_accept, accept, sizeof(accept));
    const char *offer = http_req_header(req, "Sec-WebSocket-Protocol");
    snprintf(p->offered, sizeof(p->offered), "%s", offer ? offer : "");
    /* our own key for the backend (RFC 6455 §4.1: random, 16 bytes, base64) */
    uint8_t nonce[16];
    char key[32];
    if (RAND_bytes(nonce, sizeof(nonce)) != 1 ||
        EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce)) != 24 ||
        ws_accept_key(key, 24, p->expect_accept) < 0) {
        free(p);
        server_error(c, rid, 500, "SANDBOX::INTERNAL_ERROR", "cannot make a WebSocket key");
        return;
    }
    size_t hl = 0;
    char *head = hproxy_build_head(req, &be, token, rest, rest_len, HPX_HEAD_WS, &hl);
    char tail[700];
    int tl = snprintf(tail, sizeof(tail),
                      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                      "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                      key, offer ? "Sec-WebSocket-Protocol: " : "", offer ? p->offered : "",
                      offer ? "\r\n" : "");
    char *full = head && tl > 0 && (size_t)tl < sizeof(tail) ? realloc(head, hl + (size_t)tl) : NULL;
    if (!full) {
        free(head);
        free(p);
        server_error(c, rid, 503, "SANDBOX::INTERNAL_ERROR", "out of memory");
        return;
    }
    memcpy(full + hl, tail, (size_t)tl);
    char label[96];
    snprintf(label, sizeof(label), "%llu %.8s:%u%.*s", (unsigned long long)++s->next_id, id, port,
             (int)(rest_len > 40 ? 40 : rest_len), rest);
    leg_init(&p->leg, &wsp_ops, s, c, rid, label, full, hl + (size_t)tl);
    if (leg_dial(&p->leg, &be, 1) < 0) {
        wsp_release(&p->leg);
        return;
    }
    http_hold(c, leg_client_gone, &p->leg);
}
