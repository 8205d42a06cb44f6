/* proxy/entry: entry adapters — how a connection names what it wants.
 *
 * Every entry ends in the same pipeline (IDENTIFY → DECIDE → RESOLVE →
 * CONNECT → relay); an adapter only fills c->kind, c->target, c->method and
 * c->path from what arrived, or answers a request it cannot take. Today the
 * proxy's port has one entry with two forms: explicit CONNECT
 * (authority-form) and absolute-form requests. A new way in (transparent
 * capture, an intercepted name) is one more adapter here: inference names
 * (infer.c) are taken before the policy. */
#include <stdio.h>
#include <string.h>

#include "proxy/internal.h"
#include "core/banned.h"

void entry_log_path(struct conn *c, const char *p, size_t n)
{
    const char *q = memchr(p, '?', n);
    if (q)
        n = (size_t)(q - p);
    if (n > sizeof(c->path) - 1)
        n = sizeof(c->path) - 1;
    memcpy(c->path, p, n);
    c->path[n] = '\0';
}

static void copy_method(struct conn *c)
{
    const struct http_head *h = &c->msg->head;
    size_t ml = h->method_len < sizeof(c->method) - 1 ? h->method_len : sizeof(c->method) - 1;
    memcpy(c->method, h->method_str, ml);
    c->method[ml] = '\0';
}

static enum conn_step bad_target(struct conn *c, const char *why)
{
    char d[300];
    snprintf(d, sizeof(d), "bad request target: %s", why);
    return respond_error(c, 400, PROXY_REASON_BAD_TARGET, d);
}

/* CONNECT host:port (RFC 9110 §9.3.6): a tunnel. */
static enum conn_step entry_connect(struct conn *c)
{
    const char *why = NULL;
    c->kind = KIND_CONNECT;
    if (target_parse_authority(c->msg->head.target, c->msg->head.target_len, &c->target, &why) < 0)
        return bad_target(c, why);
    copy_method(c);
    c->path[0] = '\0';
    return CONN_STEP_NEXT;
}

/* GET http://host/path (RFC 9112 §3.2.2): one forwarded exchange. */
static enum conn_step entry_absolute(struct conn *c)
{
    const char *why = NULL;
    const struct http_head *h = &c->msg->head;
    c->kind = KIND_FORWARD;
    if (h->target_len > 0 && h->target[0] == '/')
        return respond_error(c, 400, PROXY_REASON_NOT_A_PROXY_REQUEST,
                             "cordon is a proxy: send CONNECT host:port, or an absolute-form "
                             "request such as GET http://host/path");
    if (target_parse_absolute(h->target, h->target_len, &c->target, &why) < 0)
        return bad_target(c, why);
    copy_method(c);
    entry_log_path(c, c->target.path, c->target.path_len);
    return CONN_STEP_NEXT;
}

enum conn_step entry_explicit(struct conn *c)
{
    enum conn_step s = c->msg->head.method == HTTP_CONNECT ? entry_connect(c) : entry_absolute(c);
    if (s != CONN_STEP_NEXT)
        return s;
    bool intercepted = infer_intercepts(c);
    if (c->infer && !intercepted) { /* the last request was an inference call: its backend is not for this one */
        c->infer = false;
        upstream_close(c);
    }
    return intercepted ? infer_entry(c) : CONN_STEP_NEXT; /* inference.local: before the policy */
}
