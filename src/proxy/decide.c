/* proxy/decide: DECIDE — may this request go on?
 *
 * A request on the proxy's port: the caller's identity must be known, then
 * the policy answers for (host, port, binary), and an absolute-form request
 * to a `protocol: rest` endpoint is also checked against its L7 rules.
 * A request inside an inspected tunnel: origin-form, a Host naming the
 * CONNECT authority, then the L7 rules. A name the policy denies is never
 * resolved: DECIDE comes before RESOLVE. */
#include <stdio.h>
#include <string.h>

#include "identity/identity.h"
#include "proxy/internal.h"
#include "core/banned.h"

struct policy_query decide_query(const struct conn *c)
{
    return (struct policy_query){
        .host = c->target.host,
        .port = c->target.port,
        .exe = c->ident.exe ? c->ident.exe : "",
        .ancestors = (const char *const *)c->ident.ancestors,
        .n_ancestors = c->ident.n_ancestors,
        .tainted_by = c->ident.tainted_by,
    };
}

static bool same_upstream(const struct conn *c)
{
    return c->ufd >= 0 && !c->upstream_eof && c->upstream_port == c->target.port &&
           strcmp(c->upstream_host, c->target.host) == 0;
}

bool decide_reuses_upstream(const struct conn *c)
{
    if (c->inspect)
        return c->ufd >= 0 && !c->upstream_eof;
    return c->kind == KIND_FORWARD && same_upstream(c);
}

/* Host (RFC 9110 §7.2) of a request inside a tunnel must name the CONNECT
 * authority: otherwise a request could be fronted to another virtual host. */
static bool host_matches(struct conn *c)
{
    const struct http_hdr *h = http_head_find(&c->msg->head, "host");
    char auth[TARGET_HOST_MAX + 16];
    struct proxy_target t;
    const char *why;
    if (!h || h->value_len == 0 || h->value_len >= sizeof(auth) - 8)
        return false;
    memcpy(auth, h->value, h->value_len);
    auth[h->value_len] = '\0';
    bool has_port = auth[0] == '[' ? strstr(auth, "]:") != NULL : strchr(auth, ':') != NULL;
    if (!has_port) /* no port: the default for the scheme, whatever the tunnel's */
        snprintf(auth + h->value_len, sizeof(auth) - h->value_len, ":%u", c->target.port);
    if (target_parse_authority(auth, strlen(auth), &t, &why) < 0)
        return false;
    return strcmp(t.host, c->target.host) == 0 && t.port == c->target.port;
}

/* Revocation on reload: each request of an inspected tunnel is judged by
 * the policy in force, as OpenShell's relay does. The tunnel's L4 question
 * is asked again. A refusal answers this request and closes the tunnel; so
 * does an endpoint that would not be inspected (a tunnel already terminated
 * cannot change how it is carried; the client reconnects under the new
 * policy). A tunnel that goes on takes the new endpoint and its L7 rules,
 * and dials its upstream again, so the address fence runs with the new
 * allowed_ips. */
static enum conn_step retake_policy(struct conn *c)
{
    struct policy *cur = policy_current();
    if (!cur || cur == c->pol || c->learned) {
        policy_unref(cur);
        return CONN_STEP_NEXT;
    }
    struct policy_query q = decide_query(c);
    struct policy_decision d;
    policy_decide(cur, &q, &d);
    policy_unref(c->pol);
    c->pol = cur;
    c->ep = NULL; /* pointed into the old policy */
    if (!d.allow) {
        c->client_eof = true;
        return respond_deny(c, 403, d.reason_code, d.detail, d.hint);
    }
    c->policy_key = d.policy_key;
    if (!d.endpoint || !policy_endpoint_is_rest(d.endpoint) ||
        policy_endpoint_tls(d.endpoint) == POLICY_TLS_SKIP) {
        c->client_eof = true;
        return respond_deny(c, 403, PROXY_REASON_REVOKED,
                            "the reloaded policy no longer inspects this endpoint, so this "
                            "tunnel cannot carry it",
                            "connect again: the new connection follows the policy in force");
    }
    c->ep = d.endpoint;
    upstream_close(c);
    return CONN_STEP_NEXT;
}

static enum conn_step decide_inspected(struct conn *c)
{
    if (atomic_load(&c->w->proxy->revoke)) {
        enum conn_step st = retake_policy(c);
        if (st != CONN_STEP_NEXT)
            return st;
    }
    struct http_head *h = &c->msg->head;
    size_t ml = h->method_len < sizeof(c->method) - 1 ? h->method_len : sizeof(c->method) - 1;
    memcpy(c->method, h->method_str, ml);
    c->method[ml] = '\0';
    entry_log_path(c, h->target, h->target_len);
    if (h->method == HTTP_CONNECT || h->target_len == 0 ||
        (h->target[0] != '/' && !(h->target_len == 1 && h->target[0] == '*')))
        return respond_deny(c, 400, PROXY_REASON_BAD_TARGET,
                            "requests inside a tunnel must use origin-form targets (/path)", NULL);
    if (!host_matches(c))
        return respond_deny(c, 403, PROXY_REASON_HOST_MISMATCH,
                            "the Host header does not name the CONNECT authority (domain fronting "
                            "is refused)",
                            "send Host: <the host you connected to>");
    return l7_check_request(c);
}

static enum conn_step deny_identity(struct conn *c)
{
    return respond_deny(c, 403, c->ident.reason_code, c->ident.detail ? c->ident.detail : "",
                        c->ident.reason_code == IDENTITY_REASON_BINARY_CHANGED
                            ? "the executable changed since it was first seen; restart the "
                              "sandbox if the change is legitimate"
                            : "the proxy could not tell which program opened this connection; "
                              "connect directly from the sandboxed process");
}

enum conn_step decide_enter(struct conn *c)
{
    if (c->inspect)
        return decide_inspected(c);
    if (c->pol && atomic_load(&c->w->proxy->revoke)) {
        /* --revoke-on-reload: a keep-alive connection's next request is a
         * new decision, by the policy in force (revoke.c only re-asks the
         * previous request's host) */
        struct policy *cur = policy_current();
        if (cur && cur != c->pol) {
            c->ep = NULL; /* pointed into the old policy */
            policy_unref(c->pol);
            c->pol = cur;
        } else {
            policy_unref(cur);
        }
    }
    if (!c->pol)
        c->pol = policy_current();
    if (!c->pol)
        return respond_error(c, 503, PROXY_REASON_NO_POLICY, "no policy is loaded");
    if (c->ident.reason_code)
        return deny_identity(c);
    struct policy_query q = decide_query(c);
    struct policy_decision d;
    policy_decide(c->pol, &q, &d);
    c->policy_key = d.policy_key;
    c->learned = false;
    if (!d.allow && atomic_load(&c->w->proxy->learn) &&
        (d.reason_code == POLICY_REASON_NO_ENDPOINT ||
         d.reason_code == POLICY_REASON_BINARY_NOT_ALLOWED)) {
        /* learning mode: record, then go on as an opaque tunnel / plain
         * forward (no endpoint: the address fence still applies in full) */
        auditev_learn(c, d.reason_code, d.detail);
        c->ep = NULL;
        c->learned = true;
        return CONN_STEP_NEXT;
    }
    if (!d.allow)
        return respond_deny(c, 403, d.reason_code, d.detail, d.hint);
    c->ep = d.endpoint;
    if (c->kind == KIND_FORWARD)
        return l7_check_request(c);
    return CONN_STEP_NEXT;
}
