/* proxy/l7: per-request L7 decisions on inspected exchanges (requests
 * inside inspected tunnels and absolute-form forward requests to inspected
 * endpoints). enforce: a denied request gets 403 with the JSON body (reason
 * l7_denied), in the JSON-RPC or GraphQL error shape for those protocols;
 * audit (and learning mode): the request goes on and a `would_deny` decision
 * is logged. When the decision needs the body, REQ_BODY (reqbody.c) takes
 * over. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/audit.h"
#include "proxy/internal.h"
#include "proxy/upgrade.h"
#include "core/banned.h"

static void audit_l7(struct conn *c, const char *decision, const struct policy_l7_result *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "decision", json_string(decision));
    json_object_set_new(o, "l7_decision", json_string(decision));
    json_object_set_new(o, "conn", json_integer((json_int_t)c->id));
    json_object_set_new(o, "host", json_string(c->target.host));
    json_object_set_new(o, "port", json_integer(c->target.port));
    json_object_set_new(o, "policy", c->policy_key ? json_string(c->policy_key) : json_null());
    unsigned gen = c->pol ? proxy_generation_of(c->w->proxy, c->pol) : 0;
    if (gen)
        json_object_set_new(o, "policy_generation", json_integer(gen));
    json_object_set_new(o, "method", json_string(c->method));
    json_object_set_new(o, "path", json_string(c->path));
    json_object_set_new(o, "binary", c->ident.exe ? json_string(c->ident.exe) : json_null());
    json_object_set_new(o, "pid", c->ident.pid ? json_integer(c->ident.pid) : json_null());
    if (r->reason_code)
        json_object_set_new(o, "reason_code", json_string(r->reason_code));
    if (r->rule[0])
        json_object_set_new(o, "rule", json_string(r->rule));
    if (r->detail[0])
        json_object_set_new(o, "detail", json_string(r->detail));
    if (strcmp(decision, "would_deny") == 0 && atomic_load(&c->w->proxy->learn))
        json_object_set_new(o, "learn", json_true());
    audit_emit("l7_request", o);
}

/* Audit, then go on (allowed, or audit mode) or answer the denial. */
enum conn_step l7_finish(struct conn *c, const struct policy_l7_result *r)
{
    if (r->allow) {
        audit_l7(c, upgrade_offers_websocket(&c->msg->head) ? "allow_upgrade" : "allow", r);
        return CONN_STEP_NEXT;
    }
    bool learn = atomic_load(&c->w->proxy->learn);
    if ((policy_endpoint_enforcement(c->ep) == POLICY_AUDIT || learn) && !r->hard) {
        audit_l7(c, "would_deny", r); /* with "learn": true under cordon run --learn */
        return CONN_STEP_NEXT;
    }
    audit_l7(c, "deny", r);
    if (r->path[0]) /* the body names the normalized path that was judged */
        snprintf(c->path, sizeof(c->path), "%.500s", r->path);
    return respond_send_shaped(c, 403, r->reason_code ? r->reason_code : PROXY_REASON_L7_DENIED,
                               r->detail, r->hint, r->shape, r->rpc_id);
}

enum conn_step l7_check_request(struct conn *c)
{
    c->l7_body_ep = NULL;
    if (!c->ep || !policy_endpoint_is_rest(c->ep))
        return CONN_STEP_NEXT;
    /* on the worker's stack (~22 KiB), not in static TLS: that is zeroed
     * at every thread's creation, in every thread of the process */
    char target[HTTP_HEAD_MAX + 1];
    struct policy_l7_result r;
    /* the whole request-target as sent (c->path is a truncated copy for logs) */
    const char *t = c->inspect ? c->msg->head.target : c->target.path;
    size_t tl = c->inspect ? c->msg->head.target_len : c->target.path_len;
    if (tl > HTTP_HEAD_MAX)
        tl = HTTP_HEAD_MAX;
    memcpy(target, t, tl);
    target[tl] = '\0';
    if (c->kind == KIND_FORWARD && !c->inspect && target[0] == '?') {
        /* "http://host?q": the path is "/" */
        memmove(target + 1, target, tl < HTTP_HEAD_MAX ? tl + 1 : tl);
        target[0] = '/';
        target[HTTP_HEAD_MAX] = '\0';
    }
    if (policy_l7_check(c->ep, c->method, target, &r) < 0 && r.allow)
        r.allow = false; /* fail closed on API misuse */
    if (r.allow && r.sse_only) { /* MCP GET: only a bodyless event-stream receiver */
        const struct http_hdr *acc = http_head_find(&c->msg->head, "Accept");
        const struct http_hdr *cl = http_head_find(&c->msg->head, "Content-Length");
        bool body = http_head_find(&c->msg->head, "Transfer-Encoding") != NULL ||
                    (cl && !(cl->value_len == 1 && cl->value[0] == '0'));
        if (!policy_l7_sse_request_ok(acc ? acc->value : NULL, acc ? acc->value_len : 0,
                                      body)) {
            r.allow = false;
            r.reason_code = POLICY_REASON_L7_DENIED;
            r.by = POLICY_L7_BY_NO_RULE;
            snprintf(r.detail, sizeof(r.detail),
                     "GET on an MCP endpoint is only the server's event stream: it needs "
                     "Accept: text/event-stream and no body");
            snprintf(r.hint, sizeof(r.hint),
                     "send calls as POST; open the stream with a bodyless GET that accepts "
                     "text/event-stream");
        }
    }
    bool ws = upgrade_offers_websocket(&c->msg->head);
    if (r.allow && ws && policy_endpoint_access(c->ep) == POLICY_ACCESS_READ_ONLY) {
        /* after a 101 anything can flow upstream: a read-only endpoint never
         * opens one (read-write, full and explicit rules do) */
        r.allow = false;
        r.reason_code = POLICY_REASON_L7_DENIED;
        r.by = POLICY_L7_BY_ACCESS;
        snprintf(r.detail, sizeof(r.detail),
                 "WebSocket upgrade of %.300s refused: access: read-only does not allow "
                 "upgrades (after the 101 the client could send anything upstream)",
                 r.path[0] ? r.path : c->path);
        snprintf(r.hint, sizeof(r.hint),
                 "use access: read-write (or full), or an explicit rule "
                 "{allow: {method: GET, path: \"%.300s\"}} instead of access: read-only",
                 r.path[0] ? r.path : c->path);
    }
    if (r.need_body) { /* GraphQL/JSON-RPC/MCP: REQ_BODY reads and judges the body */
        c->l7_body_ep = r.endpoint;
        c->l7_body_max = r.max_body;
        return CONN_STEP_NEXT;
    }
    return l7_finish(c, &r);
}
