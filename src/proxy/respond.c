/* proxy/respond: the proxy's own responses — denials (403, and 502 for
 * upstream failures) and request errors (400, 408, 431, 503) — with one JSON
 * body shape for CONNECT and forward requests:
 *   {error, reason_code, host, port, binary, policy, detail, hint}
 * and the header X-Cordon-Deny: <reason_code>. */
#include <errno.h>
#include <sys/socket.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "http/vocab.h"
#include "proxy/internal.h"
#include "core/banned.h"

static const char *error_kind(int status)
{
    if (status == 403)
        return "policy_denied";
    if (status == 502 || status == 504)
        return "upstream_unavailable";
    if (status == 503)
        return "proxy_unavailable";
    return "bad_request";
}

static json_t *body_json(struct conn *c, int status, const char *code, const char *detail,
                         const char *hint)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(error_kind(status)));
    json_object_set_new(o, "reason_code", json_string(code));
    json_object_set_new(o, "host", c->target.host[0] ? json_string(c->target.host) : json_null());
    json_object_set_new(o, "port", c->target.port ? json_integer(c->target.port) : json_null());
    json_object_set_new(o, "binary", c->ident.exe ? json_string(c->ident.exe) : json_null());
    json_object_set_new(o, "policy", c->policy_key ? json_string(c->policy_key) : json_null());
    if (c->method[0] && (c->kind == KIND_FORWARD || c->inspect)) {
        json_object_set_new(o, "method", json_string(c->method));
        json_object_set_new(o, "path", json_string(c->path));
    }
    json_object_set_new(o, "detail", json_string(detail ? detail : ""));
    if (hint && hint[0])
        json_object_set_new(o, "hint", json_string(hint));
    else
        json_object_set_new(o, "hint", json_null());
    json_object_set_new(o, "retryable", json_boolean(status >= 500));
    if (status == 403 && c->w->proxy->cfg.local_cb)
        json_object_set_new(o, "denials", json_string("http://cordon.local/denials"));
    return o;
}

/* Writes the response into cout. Returns whether the connection may stay
 * open after it (keep, and it fitted). */
static bool emit(struct conn *c, int status, const char *code, json_t *body, bool keep)
{
    char *s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    size_t bl = s ? strlen(s) : 0;
    char head[512];
    /* The reason phrase names the reason code: clients that drop the body
     * of a refused CONNECT still show it ("403 Forbidden by cordon:
     * no_endpoint"). */
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s by cordon: %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nX-Cordon-Deny: %s\r\nCache-Control: no-store\r\n"
                      "Connection: %s\r\n\r\n",
                      status, http_status_text(status), code, bl + 1, code,
                      keep ? "keep-alive" : "close");
    if (hl < 0 || (size_t)hl >= sizeof(head) || buf_append(&c->cout, head, (size_t)hl) < 0 ||
        buf_append(&c->cout, s ? s : "", bl) < 0 || buf_append(&c->cout, "\n", 1) < 0) {
        log_warn("proxy: conn %llu: response does not fit the output buffer; closing",
                 (unsigned long long)c->id);
        keep = false;
    }
    free(s);
    json_decref(body);
    return keep;
}

/* A forward request that was refused before anything reached the upstream
 * can keep the connection when it carries no body to skip. */
static bool can_keep(struct conn *c)
{
    return (c->kind == KIND_FORWARD || c->inspect) && c->head_parsed && c->msg->head.keep_alive &&
           !c->msg->head.has_body && http_parser_msg_done(&c->msg->req) && !c->client_eof;
}

enum conn_step respond_deny(struct conn *c, int status, const char *reason_code,
                            const char *detail, const char *hint)
{
    auditev_decision(c, false, reason_code, detail);
    return respond_send(c, status, reason_code, detail, hint);
}

static enum conn_step respond_with(struct conn *c, int status, const char *reason_code,
                                   json_t *body, bool keep)
{
    /* A captured connection whose client is not speaking HTTP to us (its
     * TLS or protocol bytes are meant for the upstream it thinks it
     * reached): the refusal is the audit event and a closed connection. */
    if (c->transparent && !c->inspect) {
        json_decref(body);
        return conn_fail(c, reason_code);
    }
    c->close_reason = keep ? NULL : reason_code;
    keep = emit(c, status, reason_code, body, keep);
    if (keep) { /* the refused request is done with: its head goes */
        c->fwd_up += c->msg->head.len;
        buf_consume(&c->cin, c->msg->head.len);
    } else if (!c->close_reason) {
        c->close_reason = PROXY_REASON_DENIED;
    }
    c->respond_keep = keep;
    return CONN_STEP_RESPOND;
}

static enum conn_step respond(struct conn *c, int status, const char *reason_code,
                              const char *detail, const char *hint, bool keep)
{
    return respond_with(c, status, reason_code, body_json(c, status, reason_code, detail, hint),
                        keep);
}

enum conn_step respond_send(struct conn *c, int status, const char *reason_code,
                            const char *detail, const char *hint)
{
    if (c->infer)
        return infer_respond(c, status, reason_code, detail);
    return respond(c, status, reason_code, detail, hint, can_keep(c));
}

enum conn_step respond_send_shaped(struct conn *c, int status, const char *reason_code,
                                   const char *detail, const char *hint,
                                   enum policy_l7_shape shape, const char *rpc_id)
{
    json_t *ours = body_json(c, status, reason_code, detail, hint), *body = ours;
    if (shape == POLICY_L7_SHAPE_JSONRPC) {
        json_t *id = rpc_id ? json_loads(rpc_id, JSON_DECODE_ANY, NULL) : NULL;
        body = json_pack("{s:s, s:o, s:{s:i, s:s, s:o}}", "jsonrpc", "2.0", "id",
                         id ? id : json_null(), "error", "code", -32001, "message",
                         "request denied by the sandbox policy", "data", ours);
    } else if (shape == POLICY_L7_SHAPE_GRAPHQL) {
        json_object_set_new(ours, "errors",
                            json_pack("[{s:s, s:{s:s, s:s}}]", "message",
                                      detail ? detail : "denied by the sandbox policy",
                                      "extensions", "code", "FORBIDDEN", "reason_code",
                                      reason_code));
    }
    if (!body) /* json_pack failed: our plain shape */
        body = body_json(c, status, reason_code, detail, hint);
    return respond_with(c, status, reason_code, body, can_keep(c));
}

enum conn_step respond_error(struct conn *c, int status, const char *reason_code,
                             const char *detail)
{
    auditev_decision(c, false, reason_code, detail);
    if (c->infer)
        return infer_respond(c, status, reason_code, detail);
    return respond(c, status, reason_code, detail, NULL, false);
}

/* ---- RESPONDING: our answer goes out, then KEEPALIVE or CLOSED ---- */

/* A refusal that closes the connection while the client may still be
 * sending (a body over the limit, a request refused before its body was
 * read): closing with unread input makes the kernel send a reset, and the
 * client's next write or read fails before it sees our answer. So, as
 * HTTP servers do (RFC 9112 §9.6), the write side is shut after the answer
 * and what the client still sends is read and dropped until it closes, at
 * most RESPOND_LINGER_MAX bytes and the RESPONDING timer. Plain client
 * sockets only: a TLS client side ends with close_notify as before. */
#define RESPOND_LINGER_MAX (256u * 1024u)

static enum conn_step linger(struct conn *c)
{
    if (!c->lingering) {
        c->lingering = true;
        if (shutdown(c->cfd, SHUT_WR) < 0)
            return CONN_STEP_NEXT;
    }
    char sink[4096];
    for (;;) {
        ssize_t n = recv(c->cfd, sink, sizeof(sink), 0);
        if (n > 0) {
            c->linger_bytes += (uint32_t)n;
            if (c->linger_bytes > RESPOND_LINGER_MAX)
                return CONN_STEP_NEXT;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return CONN_STEP_WAIT;
        return CONN_STEP_NEXT; /* EOF or an error: done */
    }
}

enum conn_step respond_enter(struct conn *c)
{
    if (c->lingering)
        return linger(c);
    int r = conn_flush_client(c);
    if (r < 0)
        return CONN_STEP_CLOSE;
    if (!r)
        return CONN_STEP_WAIT;
    if (!c->respond_keep && !c->ctls && !c->client_eof && !c->reset_client)
        return linger(c);
    return CONN_STEP_NEXT;
}

enum conn_step respond_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    if (s == CONN_SIDE_UPSTREAM) {
        upstream_idle_event(c);
        return CONN_STEP_WAIT;
    }
    enum conn_step st = respond_enter(c);
    if (st == CONN_STEP_WAIT && (ev & (EPOLLERR | EPOLLHUP)))
        return conn_fail(c, PROXY_REASON_CLIENT_CLOSED);
    return st;
}

/* The client does not read our answer. */
enum conn_step respond_timer(struct conn *c)
{
    return conn_fail(c, PROXY_REASON_CLIENT_TIMEOUT);
}
