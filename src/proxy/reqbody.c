/* proxy/reqbody: REQ_BODY — request body bytes that must be seen before
 * the request head may go upstream. Two cases (doc/policy.md, doc/proxy.md):
 *
 *   judged  protocol: graphql, json-rpc, mcp. The whole body is read and
 *           decoded (Content-Length, or chunked framing removed by the
 *           request parser, llhttp plus our chunk guard), at most the
 *           endpoint's limit of decoded bytes (default 64 KiB), and judged
 *           by policy_l7_check_body. A longer body, broken framing, or a
 *           client that stops sending (the head timeout) is refused, never
 *           forwarded unchecked.
 *   held    any other chunked request (forward proxy, inspected tunnels):
 *           the head waits until the first chunk-size line has arrived and
 *           is valid, so a bad chunk size is answered 400 before anything
 *           reaches the upstream (which is not even dialled yet). Nothing
 *           else is buffered: the rest of the body streams in EXCHANGE,
 *           where a later framing error resets the upstream connection.
 *
 * Either way the bytes stay in cin as the client sent them, nothing is
 * consumed: the parser's position is remembered in c->body_held and
 * EXCHANGE forwards head and body exactly as received (a chunked body keeps
 * its chunks, extensions and trailers; it is not re-framed). Only the
 * request is held back: the response (an MCP SSE stream included) is
 * relayed as it arrives by EXCHANGE. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "proxy/internal.h"
#include "proxy/side.h"
#include "core/banned.h"

/* A held (not judged) chunked request: the first chunk-size line, with
 * its extensions, must be complete within this many body bytes. */
#define REQBODY_SIZE_LINE_MAX 4096
/* Judged chunked bodies: framing (sizes, extensions, trailers) may add at
 * most this much to the decoded limit before the raw bytes are refused. */
#define REQBODY_FRAMING_SLACK (64 * 1024)

/* The parsed head points into cin, and EXCHANGE writes it out from those
 * pointers: when cin's bytes move (growing, or compaction while reading),
 * every pointer moves with them. The head starts at from. */
static void head_rebase(struct http_head *h, const char *from, const char *to)
{
    if (from == to)
        return;
#define MOVE(p) ((p) = (p) ? to + ((p) - from) : (p))
    MOVE(h->method_str);
    MOVE(h->target);
    for (size_t i = 0; i < h->n_headers; i++) {
        MOVE(h->headers[i].name);
        MOVE(h->headers[i].value);
    }
#undef MOVE
}

/* cin's bytes moved from `from` (len bytes): the head's spans and an
 * absolute-form target's path, which point into them, move too. */
static void cin_moved(struct conn *c, const char *from, const char *to, size_t len)
{
    head_rebase(&c->msg->head, from, to);
    uintptr_t p = (uintptr_t)c->target.path, f = (uintptr_t)from;
    if (from != to && c->target.path && p >= f && p < f + len)
        c->target.path = to + (p - f);
}

/* Moves cin's bytes into a buffer of at least cap bytes, at its front. */
static int cin_reserve(struct conn *c, size_t cap)
{
    struct buf *b = &c->cin;
    if (b->cap - b->off >= cap)
        return 0;
    char *d = malloc(cap);
    if (!d)
        return -ENOMEM;
    const char *from = buf_head(b);
    memcpy(d, b->data + b->off, b->len);
    cin_moved(c, from, d, b->len);
    free(b->data);
    b->data = d;
    b->cap = cap;
    b->off = 0;
    return 0;
}

void reqbody_free(struct conn *c)
{
    free(c->l7_dec);
    c->l7_dec = NULL;
    c->l7_dec_len = c->l7_dec_cap = 0;
    c->l7_dec_over = c->l7_dec_oom = false;
    if (c->msg) {
        c->msg->req.on_body = NULL;
        c->msg->req.body_data = NULL;
    }
}

/* The request parser's decoded body bytes (framing removed), kept up to
 * the endpoint's limit; past it only the count goes on. */
static void collect(void *data, const char *at, size_t len)
{
    struct conn *c = data;
    if (c->l7_dec_over || len > c->l7_body_max - c->l7_dec_len) {
        c->l7_dec_over = true;
        c->l7_dec_len += len;
        return;
    }
    if (c->l7_dec_len + len > c->l7_dec_cap) {
        size_t cap = c->l7_dec_cap ? c->l7_dec_cap : 4096;
        while (cap < c->l7_dec_len + len)
            cap *= 2;
        if (cap > c->l7_body_max)
            cap = c->l7_body_max;
        char *d = realloc(c->l7_dec, cap);
        if (!d) {
            c->l7_dec_oom = true;
            c->l7_dec_over = true;
            return;
        }
        c->l7_dec = d;
        c->l7_dec_cap = cap;
    }
    memcpy(c->l7_dec + c->l7_dec_len, at, len);
    c->l7_dec_len += len;
}

static enum conn_step judge(struct conn *c, bool complete)
{
    struct policy_l7_result r; /* the worker's stack, not static TLS */
    memset(&r, 0, sizeof(r));
    r.endpoint = c->l7_body_ep;
    r.need_body = true;
    r.max_body = c->l7_body_max;
    r.rule_index = -1;
    c->l7_body_ep = NULL;
    (void)policy_l7_check_body(complete ? (c->l7_dec ? c->l7_dec : "") : NULL, c->l7_dec_len,
                               complete, &r);
    reqbody_free(c);
    return l7_finish(c, &r);
}

static enum conn_step refuse(struct conn *c, const char *detail)
{
    struct policy_l7_result r; /* the worker's stack, not static TLS */
    memset(&r, 0, sizeof(r));
    r.reason_code = POLICY_REASON_L7_DENIED;
    r.by = POLICY_L7_BY_BAD_BODY;
    r.rule_index = -1;
    snprintf(r.detail, sizeof(r.detail), "%s", detail);
    snprintf(r.hint, sizeof(r.hint), "send the body with Content-Length or valid chunked framing");
    r.shape = policy_endpoint_l7_shape(c->l7_body_ep);
    snprintf(r.rpc_id, sizeof(r.rpc_id), "null");
    c->l7_body_ep = NULL;
    reqbody_free(c);
    return l7_finish(c, &r);
}

/* Broken framing (RFC 9112 §7.1): a plain 400 before the head went
 * anywhere; the connection closes (the rest of the stream is unframed). */
static enum conn_step bad_framing(struct conn *c, const char *why)
{
    log_info("proxy: conn %llu: bad request body framing before forwarding: %s",
             (unsigned long long)c->id, why);
    c->l7_body_ep = NULL;
    reqbody_free(c);
    char d[300];
    snprintf(d, sizeof(d), "the request body's framing is invalid (%s); nothing was forwarded", why);
    return respond_error(c, 400, PROXY_REASON_BAD_REQUEST_BODY, d);
}

bool reqbody_wanted(const struct conn *c)
{
    return c->l7_body_ep || (c->msg && http_parser_chunked(&c->msg->req));
}

enum conn_step reqbody_enter(struct conn *c)
{
    const struct http_head *h = &c->msg->head;
    bool chunked = http_parser_chunked(&c->msg->req);
    size_t room;
    c->body_held = 0;
    reqbody_free(c);
    if (c->l7_body_ep) {
        uint64_t cl = c->msg->req.p.content_length;
        if (!chunked && h->has_body && cl > c->l7_body_max) {
            c->l7_dec_len = (size_t)(cl < SIZE_MAX ? cl : SIZE_MAX);
            return judge(c, false);
        }
        c->msg->req.on_body = collect;
        c->msg->req.body_data = c;
        room = chunked ? c->l7_body_max + REQBODY_FRAMING_SLACK : (h->has_body ? (size_t)cl : 0);
    } else {
        room = REQBODY_SIZE_LINE_MAX;
    }
    if (cin_reserve(c, h->len + room + 1) < 0) {
        reqbody_free(c);
        c->l7_body_ep = NULL;
        return respond_error(c, 503, PROXY_REASON_OUT_OF_MEMORY, "the proxy is out of memory");
    }
    if (h->has_body && h->expect_continue && c->cin.len == h->len) {
        /* RFC 9110 §10.1.1: the client waits for this before sending the
         * body we need first. The upstream's own 100, if it sends one, is
         * relayed later; clients take any number of 1xx (RFC 9110 §15.2). */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (buf_append(&c->cout, cont, sizeof(cont) - 1) < 0 || conn_flush_client(c) < 0)
            return conn_fail(c, PROXY_REASON_CLIENT_WRITE_ERROR);
    }
    return reqbody_event(c, CONN_SIDE_CLIENT, 0);
}

/* Parses the body bytes in cin not yet parsed. Returns CONN_STEP_NEXT
 * (enough seen, or the message is complete), CONN_STEP_WAIT (more needed)
 * or a refusal. */
static enum conn_step parse_more(struct conn *c)
{
    struct http_parser *hp = &c->msg->req;
    size_t at = c->msg->head.len + c->body_held;
    if (c->cin.len > at && !http_parser_msg_done(hp)) {
        size_t used = 0, n = c->cin.len - at;
        if (!c->l7_body_ep && n > REQBODY_SIZE_LINE_MAX + 1 - c->body_held)
            n = REQBODY_SIZE_LINE_MAX + 1 - c->body_held; /* the size line must end in these */
        enum http_step st = http_parse_body(hp, buf_head(&c->cin) + at, n, &used);
        if (st == HTTP_ERROR)
            return bad_framing(c, http_parser_error(hp));
        c->body_held += used;
    }
    bool done = http_parser_msg_done(hp);
    if (!c->l7_body_ep) { /* held: the first chunk-size line decides */
        if (done || http_parser_chunk_sized(hp))
            return CONN_STEP_NEXT;
        if (c->body_held > REQBODY_SIZE_LINE_MAX)
            return bad_framing(c, "the first chunk-size line is longer than 4096 bytes");
        return CONN_STEP_WAIT;
    }
    if (c->l7_dec_oom) {
        c->l7_body_ep = NULL;
        reqbody_free(c);
        return respond_error(c, 503, PROXY_REASON_OUT_OF_MEMORY, "the proxy is out of memory");
    }
    if (c->l7_dec_over)
        return judge(c, false); /* larger than the limit: denied, says by how much */
    return done ? judge(c, true) : CONN_STEP_WAIT;
}

enum conn_step reqbody_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    (void)ev;
    if (s != CONN_SIDE_CLIENT) {
        upstream_idle_event(c);
        return CONN_STEP_WAIT;
    }
    for (;;) {
        enum conn_step st = parse_more(c);
        if (st != CONN_STEP_WAIT)
            return st;
        const char *base = buf_head(&c->cin);
        size_t had = c->cin.len;
        long n = side_buf_read(&c->cin, c->cfd, c->ctls);
        cin_moved(c, base, buf_head(&c->cin), had);
        if (n > 0)
            continue;
        if (n == 0) {
            c->client_eof = true;
            reqbody_free(c);
            return conn_fail(c, PROXY_REASON_CLIENT_CLOSED_MID_REQUEST);
        }
        if (n == -EAGAIN)
            return CONN_STEP_WAIT;
        if (n == -ENOBUFS) { /* cin holds all we reserved: the framing is too long */
            if (c->l7_body_ep)
                return refuse(c, "the chunked request body's framing (chunk sizes, extensions, "
                                 "trailers) is too large for the inspection limit");
            return bad_framing(c, "the first chunk-size line is longer than 4096 bytes");
        }
        reqbody_free(c);
        return conn_fail(c, PROXY_REASON_CLIENT_READ_ERROR);
    }
}

enum conn_step reqbody_timer(struct conn *c)
{
    c->l7_body_ep = NULL;
    reqbody_free(c);
    (void)conn_fail(c, PROXY_REASON_CLIENT_TIMEOUT);
    return respond_error(c, 408, PROXY_REASON_CLIENT_TIMEOUT,
                         "the request body did not arrive in time (the head timeout)");
}
