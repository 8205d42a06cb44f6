/* proxy/reqbody: REQ_BODY — the request body an L7 decision needs
 * (protocol: graphql, json-rpc, mcp; doc/policy.md).
 *
 * The body is framed by Content-Length and read into cin after the head,
 * nothing consumed, so the exchange then forwards head and body exactly as
 * the client sent them. cin grows to hold it, up to the endpoint's limit
 * (default 64 KiB); a longer body, a chunked one, or a client that stops
 * sending (the head timeout) is refused, never forwarded unchecked. Only
 * the request is held back: the response (an MCP SSE stream included) is
 * relayed as it arrives by EXCHANGE. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parse.h"
#include "proxy/internal.h"
#include "proxy/side.h"
#include "core/banned.h"

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

/* Moves cin's bytes into a buffer of at least cap bytes, at its front. */
static int cin_reserve(struct buf *b, size_t cap)
{
    if (b->cap - b->off >= cap)
        return 0;
    char *d = malloc(cap);
    if (!d)
        return -ENOMEM;
    memcpy(d, b->data + b->off, b->len);
    free(b->data);
    b->data = d;
    b->cap = cap;
    b->off = 0;
    return 0;
}

static enum conn_step judge(struct conn *c, const char *body, size_t len, bool complete)
{
    static __thread struct policy_l7_result r;
    memset(&r, 0, sizeof(r));
    r.endpoint = c->l7_body_ep;
    r.need_body = true;
    r.max_body = c->l7_body_max;
    r.rule_index = -1;
    c->l7_body_ep = NULL;
    (void)policy_l7_check_body(body, len, complete, &r);
    return l7_finish(c, &r);
}

static enum conn_step refuse(struct conn *c, const char *detail)
{
    static __thread struct policy_l7_result r;
    memset(&r, 0, sizeof(r));
    r.reason_code = POLICY_REASON_L7_DENIED;
    r.by = POLICY_L7_BY_BAD_BODY;
    r.rule_index = -1;
    snprintf(r.detail, sizeof(r.detail), "%s", detail);
    snprintf(r.hint, sizeof(r.hint), "send the body with Content-Length");
    r.shape = policy_endpoint_l7_shape(c->l7_body_ep);
    snprintf(r.rpc_id, sizeof(r.rpc_id), "null");
    c->l7_body_ep = NULL;
    return l7_finish(c, &r);
}

enum conn_step reqbody_enter(struct conn *c)
{
    const struct http_hdr *te = http_head_find(&c->msg->head, "transfer-encoding");
    const struct http_hdr *cl = http_head_find(&c->msg->head, "content-length");
    uint32_t n = 0;
    if (te)
        return refuse(c, "a chunked request body to a GraphQL, JSON-RPC or MCP endpoint is not "
                         "inspected, so it is refused");
    if (cl && parse_u32(cl->value, cl->value_len, 0, UINT32_MAX, &n) < 0)
        return refuse(c, "the request's Content-Length is not a number");
    if (n > c->l7_body_max)
        return judge(c, NULL, n, false);
    c->l7_body_len = n;
    const char *base = buf_head(&c->cin);
    if (cin_reserve(&c->cin, c->msg->head.len + n + 1) < 0)
        return respond_error(c, 503, PROXY_REASON_OUT_OF_MEMORY, "the proxy is out of memory");
    head_rebase(&c->msg->head, base, buf_head(&c->cin));
    return reqbody_event(c, CONN_SIDE_CLIENT, 0);
}

enum conn_step reqbody_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    (void)ev;
    if (s != CONN_SIDE_CLIENT) {
        upstream_idle_event(c);
        return CONN_STEP_WAIT;
    }
    size_t need = c->msg->head.len + c->l7_body_len;
    while (c->cin.len < need) {
        const char *base = buf_head(&c->cin);
        long n = side_buf_read(&c->cin, c->cfd, c->ctls);
        head_rebase(&c->msg->head, base, buf_head(&c->cin));
        if (n > 0)
            continue;
        if (n == 0) {
            c->client_eof = true;
            return conn_fail(c, PROXY_REASON_CLIENT_CLOSED_MID_REQUEST);
        }
        if (n == -EAGAIN)
            return CONN_STEP_WAIT;
        return conn_fail(c, PROXY_REASON_CLIENT_READ_ERROR);
    }
    return judge(c, buf_head(&c->cin) + c->msg->head.len, c->l7_body_len, true);
}

enum conn_step reqbody_timer(struct conn *c)
{
    c->l7_body_ep = NULL;
    (void)conn_fail(c, PROXY_REASON_CLIENT_TIMEOUT);
    return respond_error(c, 408, PROXY_REASON_CLIENT_TIMEOUT,
                         "the request body did not arrive in time (the head timeout)");
}
