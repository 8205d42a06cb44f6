/* proxy/forward: absolute-form requests (GET http://host/path), one
 * exchange at a time per client connection.
 *
 * The request head is rewritten to origin-form (RFC 9112 §3.2.1) with the
 * proxy's hop-by-hop headers removed and Host set from the URI; the body is
 * streamed to the upstream as it arrives, framed by llhttp (chunked framing
 * passes unchanged; REQ_BODY has already parsed a chunked body's first
 * chunk-size line, or the whole body it judged, and those bytes go first
 * as received). The response is read straight into the client output
 * buffer, parsed in place to find its end, and written out. The exchange
 * ends Reusable (next request on the same connections), Consumed (close),
 * or Upgraded (101 after a request that asked for it: raw tunnel). Pipelined
 * requests wait in the input buffer until the current response is done. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/log.h"
#include "proxy/internal.h"
#include "proxy/side.h"
#include "proxy/upgrade.h"
#include "core/banned.h"

#define FWD_UOUT_CAP (HTTP_HEAD_MAX + 1024)

/* RFC 9110 §7.6.1: headers named in Connection are hop-by-hop. Upgrade
 * stays when the request asks for an upgrade the relay will carry. */
static bool named_in_connection(const struct http_head *head, const struct http_hdr *h)
{
    char name[64];
    if (h->name_len >= sizeof(name))
        return false;
    memcpy(name, h->name, h->name_len);
    name[h->name_len] = '\0';
    if (head->upgrade && strcasecmp(name, "upgrade") == 0)
        return false;
    for (size_t i = 0; i < head->n_headers; i++) {
        const struct http_hdr *c = &head->headers[i];
        if (c->name_len == 10 && strncasecmp(c->name, "connection", 10) == 0 &&
            http_value_has_token(c->value, c->value_len, name))
            return true;
    }
    return false;
}

static bool skip_header(const struct http_head *head, const struct http_hdr *h)
{
    if (named_in_connection(head, h))
        return true;
    static const char *const drop[] = {"proxy-connection", "proxy-authorization", "host",
                                       "proxy-authenticate", "keep-alive"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (h->name_len == strlen(drop[i]) && strncasecmp(h->name, drop[i], h->name_len) == 0)
            return true;
    return false;
}

static int put(struct buf *b, const char *p, size_t n) { return buf_append(b, p, n); }
static int puts_(struct buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

static bool default_port(const struct proxy_target *t)
{
    bool tls = t->scheme == TARGET_HTTPS || t->scheme == TARGET_WSS;
    return t->port == (tls ? 443 : 80);
}

/* Writes the origin-form head into uout. Returns 0 or -ENOBUFS. */
static int rewrite_head(struct conn *c)
{
    struct http_head *h = &c->msg->head;
    struct buf *b = &c->uout;
    char line[64];
    int r = 0;
    r |= put(b, h->method_str, h->method_len);
    r |= puts_(b, " ");
    if (c->target.path[0] != '/')
        r |= puts_(b, "/");
    r |= put(b, c->target.path, c->target.path_len);
    snprintf(line, sizeof(line), " HTTP/%u.%u\r\nHost: ", h->http_major, h->http_minor);
    r |= puts_(b, line);
    bool v6 = strchr(c->target.host, ':') != NULL;
    r |= puts_(b, v6 ? "[" : "");
    r |= puts_(b, c->target.host);
    r |= puts_(b, v6 ? "]" : "");
    if (!default_port(&c->target)) {
        snprintf(line, sizeof(line), ":%u", c->target.port);
        r |= puts_(b, line);
    }
    r |= puts_(b, "\r\n");
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct http_hdr *x = &h->headers[i];
        if (skip_header(h, x))
            continue;
        r |= upgrade_write_header(h, x, b);
    }
    r |= puts_(b, "\r\n");
    return r ? -ENOBUFS : 0;
}

/* Inside an inspected tunnel the head goes on as it was checked, except
 * for upgrade offers the relay would not carry (proxy/upgrade.h): then the
 * request line is copied and the headers are written filtered. */
static int inspected_head(struct conn *c)
{
    struct http_head *h = &c->msg->head;
    struct buf *b = &c->uout;
    if (!upgrade_head_needs_filter(h))
        return buf_append(b, buf_head(&c->cin), h->len) < 0 ? -ENOBUFS : 0;
    const char *line = h->method_str;
    const char *end = buf_head(&c->cin) + h->len;
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (!eol)
        return -ENOBUFS;
    int r = put(b, line, (size_t)(eol + 1 - line));
    for (size_t i = 0; i < h->n_headers; i++)
        r |= upgrade_write_header(h, &h->headers[i], b);
    r |= puts_(b, "\r\n");
    return r ? -ENOBUFS : 0;
}

/* EXCHANGE's entry: the request head goes to the upstream (rewritten to
 * origin-form, or unchanged inside an inspected tunnel), then both
 * directions are pumped. */
enum conn_step forward_enter(struct conn *c)
{
    if ((!c->uout.data && buf_init(&c->uout, FWD_UOUT_CAP) < 0))
        return respond_error(c, 503, PROXY_REASON_OUT_OF_MEMORY, "the proxy is out of memory");
    if (c->infer) {
        /* infer.c wrote the backend request (head and body) into uout and
         * consumed the client's request */
        c->req_done = true;
        c->req_pending = 0;
        goto started;
    }
    c->uout.off = c->uout.len = 0;
    if (c->inspect) {
        if (inspected_head(c) < 0)
            return respond_error(c, 431, PROXY_REASON_HEAD_TOO_LARGE, "the request head is too large");
    } else if (rewrite_head(c) < 0) {
        return respond_error(c, 431, PROXY_REASON_HEAD_TOO_LARGE,
                             "the rewritten request head is too large");
    }
    if (!c->inspect)
        auditev_decision(c, true, NULL, NULL);
    c->fwd_up += c->msg->head.len;
    buf_consume(&c->cin, c->msg->head.len);
    c->req_pending = c->body_held; /* body bytes REQ_BODY parsed: they go as received */
    c->body_held = 0;
    c->req_done = http_parser_msg_done(&c->msg->req);
started:
    c->xdown_start = c->fwd_down;
    c->req_is_head = c->msg->head.method == HTTP_HEAD;
    /* the only upgrade offered (inference: infer.c decided, the head is consumed) */
    c->req_upgrade = c->infer ? c->msg->head.upgrade : upgrade_offers_websocket(&c->msg->head);
    c->req_keep_alive = c->msg->head.keep_alive;
    c->resp_done = false;
    http_parser_init(&c->msg->resp, HTTP_RESPONSE_PARSER);
    http_parser_expect_no_body(&c->msg->resp, c->req_is_head);
    c->last_active_ms = loop_now_ms(c->w->loop);
    return forward_event(c, CONN_SIDE_CLIENT, 0);
}

/* Broken chunked framing after the head and part of the body went
 * upstream (a bad first chunk size never gets here: REQ_BODY refuses it
 * before the head goes). The upstream connection is reset, so it cannot
 * take the truncated request for a complete one; the client gets a 400 if
 * nothing of a response has reached it yet, else a reset too. */
static enum conn_step bad_body_midway(struct conn *c)
{
    const char *why = http_parser_error(&c->msg->req);
    log_info("proxy: conn %llu: bad request body framing after the head was forwarded: %s; "
             "resetting the upstream connection", (unsigned long long)c->id, why);
    if (c->ufd >= 0) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        (void)setsockopt(c->ufd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        upstream_close(c);
    }
    if (c->fwd_down == c->xdown_start && c->cout.len == 0) {
        char d[300];
        snprintf(d, sizeof(d), "the request body's chunked framing is invalid (%s); the upstream "
                 "connection was reset", why);
        return respond_error(c, 400, PROXY_REASON_BAD_REQUEST_BODY, d);
    }
    c->reset_client = true;
    return conn_fail(c, PROXY_REASON_BAD_REQUEST_BODY);
}

/* client → upstream. */
static enum conn_step pump_request(struct conn *c)
{
    while (c->uout.len) {
        long n = side_buf_write(&c->uout, c->ufd, c->utls);
        if (n == -EAGAIN)
            return CONN_STEP_WAIT;
        if (n < 0)
            return conn_fail(c, PROXY_REASON_UPSTREAM_WRITE_ERROR);
    }
    while (!c->req_done || c->req_pending) {
        if (c->req_pending == 0 && c->cin.len) {
            size_t used = 0;
            enum http_step st = http_parse_body(&c->msg->req, buf_head(&c->cin), c->cin.len, &used);
            if (st == HTTP_ERROR)
                return bad_body_midway(c);
            c->req_pending = used;
            c->req_done = st == HTTP_MSG_DONE;
        }
        if (c->req_pending) {
            long n = side_send(c->ufd, c->utls, buf_head(&c->cin), c->req_pending);
            if (n == -EAGAIN)
                return CONN_STEP_WAIT;
            if (n < 0)
                return conn_fail(c, PROXY_REASON_UPSTREAM_WRITE_ERROR);
            buf_consume(&c->cin, (size_t)n);
            c->req_pending -= (size_t)n;
            c->fwd_up += (uint64_t)n;
            c->last_active_ms = loop_now_ms(c->w->loop);
            continue;
        }
        if (c->req_done)
            break;
        long r = side_buf_read(&c->cin, c->cfd, c->ctls);
        if (r == -EAGAIN)
            return CONN_STEP_WAIT;
        if (r == 0 || (r < 0 && r != -ENOBUFS))
            return conn_fail(c, r == 0 ? PROXY_REASON_CLIENT_CLOSED_MID_REQUEST
                                       : PROXY_REASON_CLIENT_READ_ERROR);
    }
    return CONN_STEP_WAIT;
}

/* The 101's Upgrade names websocket and nothing else (a missing Upgrade,
 * one the parser could not keep, or another token is not). */
static bool switches_to_websocket(const struct http_parser *resp)
{
    size_t len, i = 0;
    const char *v = http_parser_upgrade(resp, &len);
    bool seen = false;
    if (!v)
        return false;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < len && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e == s)
            continue;
        if (e - s != 9 || strncasecmp(v + s, "websocket", 9) != 0)
            return false;
        seen = true;
    }
    return seen;
}

/* Parses freshly read response bytes at the tail of cout. */
static enum conn_step parse_response_bytes(struct conn *c, size_t n)
{
    size_t used = 0;
    char *start = buf_tail(&c->cout) - n;
    enum http_step st = http_parse_body(&c->msg->resp, start, n, &used);
    if (c->infer) /* after the parse: the framing flags are known */
        infer_response_bytes(c, start, st == HTTP_MSG_DONE ? used : n);
    if (st == HTTP_ERROR) {
        log_info("proxy: conn %llu: bad response from %s: %s", (unsigned long long)c->id,
                 c->target.host, http_parser_error(&c->msg->resp));
        return conn_fail(c, PROXY_REASON_BAD_UPSTREAM_RESPONSE);
    }
    if (st == HTTP_MSG_DONE && c->msg->resp.status == 101 && !c->req_upgrade) {
        /* An upgrade nobody asked for: withhold it and everything after it. */
        c->cout.len -= n;
        log_warn("proxy: conn %llu: %s answered 101 to a request without Upgrade and "
                 "Connection: upgrade; cut off", (unsigned long long)c->id, c->target.host);
        auditev_decision(c, false, PROXY_REASON_UNSOLICITED_101,
                         "the upstream switched protocols without being asked");
        return conn_fail(c, PROXY_REASON_UNSOLICITED_101);
    }
    if (st == HTTP_MSG_DONE && c->msg->resp.status == 101 && !c->infer &&
        !switches_to_websocket(&c->msg->resp)) {
        /* Only websocket was offered upstream (forward_request): a switch
         * to anything else is a raw relay no rule inspects. */
        c->cout.len -= n;
        log_warn("proxy: conn %llu: %s answered 101 switching to a protocol the request did "
                 "not offer; cut off", (unsigned long long)c->id, c->target.host);
        auditev_decision(c, false, PROXY_REASON_UNSOLICITED_101,
                         "the upstream switched to a protocol the request did not offer "
                         "(only websocket is)");
        return conn_fail(c, PROXY_REASON_UNSOLICITED_101);
    }
    if (st == HTTP_MSG_DONE && c->msg->resp.status == 101 &&
        wsrelay_start(c, start + used, n - used) < 0) /* frames from here on are tracked */
        return conn_fail(c, PROXY_REASON_OUT_OF_MEMORY);
    if (st == HTTP_MSG_DONE) {
        c->resp_done = true;
        if (used < n && c->msg->resp.status != 101) {
            /* bytes after a complete response that nobody asked for */
            c->cout.len -= n - used;
            c->req_keep_alive = false;
        }
    }
    return CONN_STEP_WAIT;
}

/* upstream → client. */
static enum conn_step pump_response(struct conn *c)
{
    for (;;) {
        if (c->cout.len) {
            long n = side_buf_write(&c->cout, c->cfd, c->ctls);
            if (n == -EAGAIN)
                return CONN_STEP_WAIT;
            if (n < 0)
                return conn_fail(c, PROXY_REASON_CLIENT_WRITE_ERROR);
            c->fwd_down += (uint64_t)n;
            c->last_active_ms = loop_now_ms(c->w->loop);
            continue;
        }
        if (c->resp_done)
            return CONN_STEP_WAIT;
        buf_compact(&c->cout);
        long r = side_buf_read(&c->cout, c->ufd, c->utls);
        if (r == -EAGAIN)
            return CONN_STEP_WAIT;
        if (r > 0) {
            enum conn_step s = parse_response_bytes(c, (size_t)r);
            if (s != CONN_STEP_WAIT)
                return s;
            continue;
        }
        if (r == 0) {
            c->upstream_eof = true;
            enum http_step st = http_parse_eof(&c->msg->resp);
            c->req_keep_alive = false;
            if (st == HTTP_MSG_DONE) {
                c->resp_done = true;
                continue;
            }
            const char *why = c->msg->resp.head_seen ? PROXY_REASON_UPSTREAM_CLOSED_MID_RESPONSE
                                                     : PROXY_REASON_UPSTREAM_CLOSED_EARLY;
            c->reset_client = !c->infer && c->msg->resp.head_seen;
            return c->infer ? infer_upstream_failed(c, why) : conn_fail(c, why);
        }
        /* a reset upstream mid-response: the client must not see a clean end */
        c->reset_client = !c->infer && c->msg->resp.head_seen;
        return c->infer ? infer_upstream_failed(c, PROXY_REASON_UPSTREAM_READ_ERROR)
                        : conn_fail(c, PROXY_REASON_UPSTREAM_READ_ERROR);
    }
}

/* A 101 after a request that asked for it: the rest is a raw relay. */
static enum conn_step prepare_upgrade(struct conn *c)
{
    if (!c->req_upgrade) {
        log_warn("proxy: conn %llu: %s answered 101 to a request without Upgrade; cut off",
                 (unsigned long long)c->id, c->target.host);
        return conn_fail(c, PROXY_REASON_UNSOLICITED_101);
    }
    /* Anything the client sent after the upgrade request goes first. */
    if (c->cin.len && buf_append(&c->uout, buf_head(&c->cin), c->cin.len) < 0)
        return conn_fail(c, PROXY_REASON_UPGRADE_OVERFLOW);
    wsrelay_client_early(c, buf_head(&c->cin), c->cin.len);
    c->fwd_up += c->cin.len;
    buf_consume(&c->cin, c->cin.len);
    c->idle_ms = c->ep ? policy_endpoint_upgrade_idle_timeout_ms(c->ep) : PROXY_UPGRADE_IDLE_MS;
    auditev_upgrade(c);
    c->xend = CONN_XEND_UPGRADED;
    return CONN_STEP_NEXT;
}

/* Reusable (KEEPALIVE), Consumed (close) or Upgraded (TUNNEL). */
static enum conn_step exchange_done(struct conn *c)
{
    if (c->infer)
        infer_exchange_done(c);
    if (c->revoke_at_end) /* a reload refused this connection: no upgrade, no next request */
        return conn_fail(c, PROXY_REASON_REVOKED);
    if (c->msg->resp.status == 101)
        return prepare_upgrade(c);
    bool keep = c->req_keep_alive && llhttp_should_keep_alive(&c->msg->resp.p) && !c->upstream_eof;
    c->xend = CONN_XEND_REUSABLE;
    if (!keep) {
        if (!c->req_keep_alive || c->client_eof)
            c->xend = CONN_XEND_CONSUMED;
        else
            upstream_close(c);
    }
    return CONN_STEP_NEXT;
}

enum conn_step forward_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    (void)s, (void)ev;
    enum conn_step st = pump_request(c);
    if (st != CONN_STEP_WAIT)
        return st;
    st = pump_response(c);
    if (st != CONN_STEP_WAIT)
        return st;
    if (c->resp_done && c->cout.len == 0 && c->req_done && c->req_pending == 0)
        return exchange_done(c);
    return CONN_STEP_WAIT;
}
