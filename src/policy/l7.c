/* policy/l7: HTTP request evaluation for protocol: rest endpoints.
 *
 * Order: target split and path normalization (normalize.c), query
 * validation, deny rules, then allow rules or the access preset. Every
 * failure to understand the request is a deny: a rule can only be trusted
 * on the same bytes the upstream server will interpret. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "core/utf8.h"
#include "policy/glob.h"
#include "policy/policy_int.h"

#include "core/banned.h"

const char POLICY_REASON_L7_DENIED[] = "l7_denied";

#define MAX_METHOD 32

/* ---- query strings ---- */

/* Decodes a query component ('+' is a space, %XX a byte) into dst, which
 * holds at least len + 1 bytes. Returns the length, or -1 for a bad or NUL
 * escape or a result that is not UTF-8. */
static int decode_component(const char *s, size_t len, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            dst[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 1 < len ? policy_hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? policy_hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            dst[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[o++] = s[i];
        }
    }
    dst[o] = '\0';
    if (!utf8_valid((const unsigned char *)dst, o)) /* OpenShell refuses it too */
        return -1;
    return (int)o;
}

/* Iterates "k=v&k2=v2": on each call fills the next parameter's raw key and
 * value spans; returns false at the end. */
struct qiter {
    const char *p, *end;
};

static bool qiter_next(struct qiter *it, const char **k, size_t *kl, const char **v, size_t *vl)
{
    while (it->p < it->end) {
        const char *amp = memchr(it->p, '&', (size_t)(it->end - it->p));
        const char *seg_end = amp ? amp : it->end;
        const char *seg = it->p;
        it->p = amp ? amp + 1 : it->end;
        if (seg == seg_end)
            continue;
        const char *eq = memchr(seg, '=', (size_t)(seg_end - seg));
        *k = seg;
        *kl = (size_t)((eq ? eq : seg_end) - seg);
        *v = eq ? eq + 1 : seg_end;
        *vl = (size_t)(seg_end - *v);
        return true;
    }
    return false;
}

/* True when every parameter of the query decodes. */
static bool query_valid(const char *q, size_t len, char *scratch)
{
    struct qiter it = {q, q + len};
    const char *k, *v;
    size_t kl, vl;
    if (memchr(q, '#', len))
        return false;
    while (qiter_next(&it, &k, &kl, &v, &vl))
        if (decode_component(k, kl, scratch) < 0 || decode_component(v, vl, scratch) < 0)
            return false;
    return true;
}

static bool value_matches(const struct policy_qmatch *m, const char *value)
{
    for (size_t g = 0; g < m->n_globs; g++)
        if (glob_value_match(m->globs[g], value))
            return true;
    return false;
}

/* Allow rules: the key is present and every value matches. Deny rules: the
 * key is present and some value matches (so an extra value cannot dodge a
 * deny). */
static bool qmatch_ok(const struct policy_qmatch *m, bool deny, const char *q, size_t len,
                      char *scratch)
{
    struct qiter it = {q, q + len};
    const char *k, *v;
    size_t kl, vl;
    bool seen = false;
    while (qiter_next(&it, &k, &kl, &v, &vl)) {
        if (decode_component(k, kl, scratch) < 0 || strcmp(scratch, m->key) != 0)
            continue;
        seen = true;
        if (decode_component(v, vl, scratch) < 0)
            return false;
        bool ok = value_matches(m, scratch);
        if (deny && ok)
            return true;
        if (!deny && !ok)
            return false;
    }
    return !deny && seen;
}

/* ---- rules ---- */

struct l7_req {
    const char *method;
    const char *path; /* normalized, or "*" */
    const char *query;
    size_t query_len;
    char *scratch; /* POLICY_L7_QUERY_MAX + 1 bytes */
};

static bool method_matches(const char *rule, const char *method)
{
    if (!rule)
        return false;
    if (strcmp(rule, "*") == 0 || strcasecmp(rule, method) == 0)
        return true;
    return strcmp(rule, "GET") == 0 && strcasecmp(method, "HEAD") == 0;
}

static bool path_matches(const char *rule, const char *path)
{
    if (!rule)
        return false;
    if (strcmp(rule, "**") == 0)
        return true;
    if (strcmp(path, "*") == 0)
        return false;
    return glob_match(rule, path, '/', false);
}

/* -1 when the rule matches; else the index of the first query matcher that
 * failed (n_query when method or path failed). */
static int rule_miss(const struct policy_rule *r, const struct l7_req *rq)
{
    if (r->ws_graphql) /* a message rule: never matches a request */
        return (int)r->n_query + 1;
    if (!method_matches(r->method, rq->method) || !path_matches(r->path, rq->path))
        return (int)r->n_query + 1;
    for (size_t i = 0; i < r->n_query; i++)
        if (!qmatch_ok(&r->query[i], r->deny, rq->query, rq->query_len, rq->scratch))
            return (int)i;
    return -1;
}

static void rule_text(const struct policy_rule *r, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s%s %s %s", r->in_deny_rules ? "deny_rules: " : "",
                     r->deny ? "deny" : "allow", r->method, r->path);
    for (size_t i = 0; i < r->n_query && n > 0 && (size_t)n < cap; i++)
        n += snprintf(out + n, cap - (size_t)n, "%s%s", i ? ", " : " query: ", r->query[i].key);
}

/* ---- access presets ---- */

static bool preset_allows(enum policy_access a, const char *m)
{
    static const char *const ro[] = {"GET", "HEAD", "OPTIONS", NULL};
    static const char *const rw[] = {"POST", "PUT", "PATCH", "WEBSOCKET_TEXT", NULL};
    switch (a) {
    case POLICY_ACCESS_FULL:
        return true;
    case POLICY_ACCESS_READ_WRITE:
        for (size_t i = 0; rw[i]; i++)
            if (strcasecmp(m, rw[i]) == 0)
                return true;
        /* fall through */
    case POLICY_ACCESS_READ_ONLY:
        for (size_t i = 0; ro[i]; i++)
            if (strcasecmp(m, ro[i]) == 0)
                return true;
        return false;
    case POLICY_ACCESS_NONE:
        return false;
    }
    return false;
}

static const char *preset_name(enum policy_access a)
{
    switch (a) {
    case POLICY_ACCESS_READ_ONLY:
        return "read-only";
    case POLICY_ACCESS_READ_WRITE:
        return "read-write";
    case POLICY_ACCESS_FULL:
        return "full";
    case POLICY_ACCESS_NONE:
        return "none";
    }
    return "none";
}

/* ---- results ---- */

/* snprintf into a fixed text field; truncation is intended (details are
 * bounded by design). */
static void tfmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void tfmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

static void deny(struct policy_l7_result *out, enum policy_l7_by by)
{
    out->allow = false;
    out->reason_code = POLICY_REASON_L7_DENIED;
    out->by = by;
    out->hard = by == POLICY_L7_BY_BAD_BODY || by == POLICY_L7_BY_BAD_TARGET;
}

static void bad_target(struct policy_l7_result *out, const char *what, const char *why)
{
    deny(out, POLICY_L7_BY_BAD_TARGET);
    out->path[0] = '\0';
    tfmt(out->detail, sizeof(out->detail), "the request %s %s, so no rule can be applied",
             what, why);
    tfmt(out->hint, sizeof(out->hint), "send a canonical request (no encoded '/', no '..' "
                                           "above '/', valid %%-escapes)");
}

static void explain_no_rule(const struct policy_endpoint *ep, const struct l7_req *rq,
                            struct policy_l7_result *out)
{
    int near = -1, miss = -1;
    for (size_t i = 0; i < ep->n_rules && near < 0; i++) {
        const struct policy_rule *r = &ep->rules[i];
        int m = r->deny ? -1 : rule_miss(r, rq);
        if (!r->deny && m >= 0 && (size_t)m < r->n_query) {
            near = (int)i;
            miss = m;
        }
    }
    deny(out, POLICY_L7_BY_NO_RULE);
    if (near >= 0) {
        const struct policy_rule *r = &ep->rules[near];
        char text[256];
        rule_text(r, text, sizeof(text));
        tfmt(out->detail, sizeof(out->detail), "%.32s %.200s: rules[%d] (%.120s) matches "
                 "the method and path, but query parameter '%.64s' is missing or has a value "
                 "that does not match", rq->method, out->path, near, text, r->query[miss].key);
    } else {
        tfmt(out->detail, sizeof(out->detail), "%.32s %.300s is not allowed by any rule "
                 "of network_policies.%.128s.endpoints[%d]", rq->method, out->path, ep->entry->key,
                 ep->index);
    }
    tfmt(out->hint, sizeof(out->hint), "add {allow: {method: %.32s, path: \"%.300s\"}} "
             "to network_policies.%.128s.endpoints[%d].rules", rq->method, out->path, ep->entry->key,
             ep->index);
}

/* Deny rules, whatever allows the request (rules or access): true when one
 * matched and out denies. */
static bool denied_by_rule(const struct policy_endpoint *ep, const struct l7_req *rq,
                           struct policy_l7_result *out)
{
    for (size_t i = 0; i < ep->n_rules; i++) {
        const struct policy_rule *r = &ep->rules[i];
        if (!r->deny || rule_miss(r, rq) >= 0)
            continue;
        deny(out, POLICY_L7_BY_DENY_RULE);
        out->rule_index = (int)i;
        rule_text(r, out->rule, sizeof(out->rule));
        tfmt(out->detail, sizeof(out->detail), "%.32s %.200s matches %s[%d] (%.120s) "
                 "of network_policies.%.128s.endpoints[%d]", rq->method, out->path,
                 r->in_deny_rules ? "deny_rules" : "rules", r->src_index, out->rule,
                 ep->entry->key, ep->index);
        tfmt(out->hint, sizeof(out->hint), "a deny rule refuses this request; remove or "
                 "narrow network_policies.%.128s.endpoints[%d].%s[%d]", ep->entry->key,
                 ep->index, r->in_deny_rules ? "deny_rules" : "rules", r->src_index);
        return true;
    }
    return false;
}

static void decide_rules(const struct policy_endpoint *ep, const struct l7_req *rq,
                         struct policy_l7_result *out)
{
    if (denied_by_rule(ep, rq, out))
        return;
    for (size_t i = 0; i < ep->n_rules; i++) {
        const struct policy_rule *r = &ep->rules[i];
        if (r->deny || rule_miss(r, rq) >= 0)
            continue;
        out->allow = true;
        out->by = POLICY_L7_BY_ALLOW_RULE;
        out->rule_index = (int)i;
        rule_text(r, out->rule, sizeof(out->rule));
        tfmt(out->detail, sizeof(out->detail), "%.32s %.300s allowed by rules[%zu] (%.120s)",
                 rq->method, out->path, i, out->rule);
        return;
    }
    explain_no_rule(ep, rq, out);
}

static void decide_access(const struct policy_endpoint *ep, const struct l7_req *rq,
                          struct policy_l7_result *out)
{
    const char *name = preset_name(ep->access);
    if (denied_by_rule(ep, rq, out))
        return;
    out->by = POLICY_L7_BY_ACCESS;
    tfmt(out->rule, sizeof(out->rule), "access: %s", name);
    if (preset_allows(ep->access, rq->method)) {
        out->allow = true;
        tfmt(out->detail, sizeof(out->detail), "%.32s %.300s allowed by access: %s", rq->method,
                 out->path, name);
        return;
    }
    deny(out, POLICY_L7_BY_ACCESS);
    tfmt(out->detail, sizeof(out->detail), "%.32s is not allowed by access: %s of "
             "network_policies.%.128s.endpoints[%d]", rq->method, name, ep->entry->key, ep->index);
    tfmt(out->hint, sizeof(out->hint), "use access: %s, or replace access with rules "
             "such as {allow: {method: %.32s, path: \"%.300s\"}}",
             ep->access == POLICY_ACCESS_READ_ONLY ? "read-write (or full)" : "full", rq->method,
             out->path);
}

/* ---- entry point ---- */

bool policy_method_ok(const char *m)
{
    size_t l = strlen(m);
    if (l == 0 || l > MAX_METHOD)
        return false;
    for (size_t i = 0; i < l; i++) {
        char c = m[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !strchr("!#$%&'*+-.^_`|~", c))
            return false;
    }
    return true;
}

/* Splits target into path and query; absolute-form loses its authority. */
static const char *split_target(const char *target, size_t *path_len, const char **query,
                                size_t *query_len)
{
    const char *p = target;
    bool absolute = strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0;
    if (absolute) {
        p = strstr(p, "://") + 3;
        p += strcspn(p, "/?#");
    }
    const char *q = strchr(p, '?');
    *path_len = q ? (size_t)(q - p) : strlen(p);
    *query = q ? q + 1 : "";
    *query_len = strlen(*query);
    if (absolute && *path_len == 0) { /* "http://host" or "http://host?q" */
        *path_len = 1;
        return "/";
    }
    return p;
}

/* The endpoint whose `path` covers the request: ep itself, or a sibling in
 * the same entry with the same host and a shared port (OpenShell selects
 * between L7 endpoints on one host:port this way). The most specific
 * matching `path` wins (the first of equals), and any explicit `path` that
 * matches wins over an endpoint without one, whatever their order in the
 * file. NULL when none covers it. */
static const struct policy_endpoint *select_by_path(const struct policy_endpoint *ep,
                                                    const char *path)
{
    const struct policy_entry *e = ep->entry;
    const struct policy_endpoint *fallback = NULL, *best = NULL;
    size_t best_spec = 0;
    for (size_t i = 0; i <= e->n_endpoints; i++) {
        const struct policy_endpoint *s = i == 0 ? ep : &e->endpoints[i - 1];
        if (i > 0 && s == ep)
            continue;
        if (i > 0) {
            bool shared = false;
            for (size_t k = 0; k < s->n_ports && !shared; k++)
                shared = policy_endpoint_has_port(ep, s->ports[k]);
            if (!shared || strcmp(s->host, ep->host) != 0 || !s->rest)
                continue;
        }
        if (!s->path_sel) {
            if (!fallback)
                fallback = s;
        } else if (strcmp(path, "*") != 0 && glob_match(s->path_sel, path, '/', false)) {
            size_t spec = policy_path_specificity(s->path_sel);
            if (!best || spec > best_spec) {
                best = s;
                best_spec = spec;
            }
        }
    }
    return best ? best : fallback;
}

static bool entry_allows_encoded_slash(const struct policy_endpoint *ep)
{
    for (size_t i = 0; i < ep->entry->n_endpoints; i++)
        if (ep->entry->endpoints[i].allow_encoded_slash &&
            strcmp(ep->entry->endpoints[i].host, ep->host) == 0)
            return true;
    return false;
}

/* Decoded value of query parameter key; returns how often it occurs (the
 * first occurrence is in dst), or -1 when it does not decode or fit. */
static int query_param(const char *q, size_t len, const char *key, char *dst, size_t cap,
                       char *scratch)
{
    struct qiter it = {q, q + len};
    const char *k, *v;
    size_t kl, vl;
    int n = 0;
    while (qiter_next(&it, &k, &kl, &v, &vl)) {
        if (decode_component(k, kl, scratch) < 0 || strcmp(scratch, key) != 0)
            continue;
        if (n++ == 0) {
            if (vl + 1 > cap || decode_component(v, vl, dst) < 0)
                return -1;
        }
    }
    return n;
}

/* GraphQL over GET: the document is in the query string. */
static void graphql_get(const struct policy_endpoint *ep, const struct l7_req *rq,
                        struct policy_l7_result *out)
{
    static const char *const keys[] = {"query", "operationName", "extensions", "id",
                                       "documentId", "queryId"};
    char *vals[6] = {0};
    int cnt[6];
    bool bad = false;
    for (size_t i = 0; i < 6 && !bad; i++) {
        vals[i] = calloc(1, rq->query_len + 1);
        if (!vals[i]) {
            bad = true;
            break;
        }
        cnt[i] = query_param(rq->query, rq->query_len, keys[i], vals[i], rq->query_len + 1,
                             rq->scratch);
        bad = cnt[i] < 0 || cnt[i] > 1;
        if (cnt[i] == 0) {
            free(vals[i]);
            vals[i] = NULL;
        }
    }
    int ids = (vals[3] != NULL) + (vals[4] != NULL) + (vals[5] != NULL);
    if (bad || ids > 1) {
        deny(out, POLICY_L7_BY_BAD_BODY);
        tfmt(out->detail, sizeof(out->detail), "the GraphQL GET request repeats a parameter or "
             "combines persisted-query ids, so no rule can be applied");
        tfmt(out->hint, sizeof(out->hint), "send each GraphQL parameter once");
    } else {
        char hash[256] = "";
        if (vals[2]) { /* extensions={"persistedQuery":{"sha256Hash":"..."}} */
            json_t *ext = json_loads(vals[2], JSON_REJECT_DUPLICATES, NULL);
            json_t *h = json_object_get(json_object_get(ext, "persistedQuery"), "sha256Hash");
            if (json_is_string(h) && json_string_length(h) < sizeof(hash))
                tfmt(hash, sizeof(hash), "%s", json_string_value(h));
            json_decref(ext);
        }
        const char *id = vals[3] ? vals[3] : vals[4] ? vals[4] : vals[5];
        if (policy_l7_graphql_op(ep, vals[0], vals[1], hash[0] ? hash : NULL, id, out)) {
            out->allow = true;
            out->reason_code = NULL;
            out->by = POLICY_L7_BY_ALLOW_RULE;
            tfmt(out->detail, sizeof(out->detail), "GraphQL GET allowed");
        }
    }
    for (size_t i = 0; i < 6; i++)
        free(vals[i]);
}

static void need_body(const struct policy_endpoint *ep, struct policy_l7_result *out)
{
    deny(out, POLICY_L7_BY_BODY);
    out->need_body = true;
    out->max_body = ep->max_body;
    tfmt(out->detail, sizeof(out->detail), "the request body decides (not examined yet)");
}

/* protocol: graphql, json-rpc, mcp: which HTTP requests carry what. */
static void body_protocol(const struct policy_endpoint *ep, const struct l7_req *rq,
                          struct policy_l7_result *out)
{
    bool post = strcasecmp(rq->method, "POST") == 0;
    bool get = strcasecmp(rq->method, "GET") == 0;
    out->shape = ep->proto == POLICY_PROTO_GRAPHQL ? POLICY_L7_SHAPE_GRAPHQL
                                                   : POLICY_L7_SHAPE_JSONRPC;
    tfmt(out->rpc_id, sizeof(out->rpc_id), "null");
    if (post) {
        need_body(ep, out);
        return;
    }
    if (get && ep->proto == POLICY_PROTO_GRAPHQL) {
        graphql_get(ep, rq, out);
        return;
    }
    if (ep->proto == POLICY_PROTO_MCP && get) {
        /* GET opens the server's SSE stream (MCP Streamable HTTP): no client call. As in
         * OpenShell, only a bodyless GET that accepts text/event-stream; the caller checks
         * the head. DELETE (ending a session) is refused, as OpenShell refuses it. */
        out->allow = true;
        out->sse_only = true;
        out->by = POLICY_L7_BY_ALLOW_RULE;
        tfmt(out->detail, sizeof(out->detail), "MCP GET opens the server's event stream (no "
                                               "client call; needs Accept: text/event-stream "
                                               "and no body)");
        return;
    }
    out->shape = POLICY_L7_SHAPE_HTTP;
    deny(out, POLICY_L7_BY_NO_RULE);
    tfmt(out->detail, sizeof(out->detail), "%.32s is not a %s request (POST%s)", rq->method,
         ep->proto == POLICY_PROTO_GRAPHQL ? "GraphQL" : ep->proto == POLICY_PROTO_MCP ? "MCP"
                                                                                       : "JSON-RPC",
         ep->proto == POLICY_PROTO_GRAPHQL ? " or GET" : ep->proto == POLICY_PROTO_MCP
                                                                 ? " or GET" : " only");
    tfmt(out->hint, sizeof(out->hint), "send the request as POST");
}

/* protocol: websocket: the upgrade opens a channel whose client messages
 * cordon does not inspect, so it is allowed only when client text messages
 * on that path would be allowed too (WEBSOCKET_TEXT), never wider than
 * OpenShell, which checks each message. */
static void websocket_messages(const struct policy_endpoint *ep, struct l7_req *rq,
                               struct policy_l7_result *out)
{
    struct policy_l7_result *t = calloc(1, sizeof(*t));
    if (!t) {
        deny(out, POLICY_L7_BY_NO_RULE);
        return;
    }
    memcpy(t->path, out->path, sizeof(t->path));
    t->rule_index = -1;
    for (size_t i = 0; i < ep->n_rules; i++) {
        if (!ep->rules[i].ws_graphql)
            continue;
        free(t);
        deny(out, POLICY_L7_BY_NO_RULE);
        tfmt(out->detail, sizeof(out->detail), "the WebSocket upgrade of %.300s is refused: "
             "%s[%d] is a GraphQL-over-WebSocket operation rule, and cordon does not inspect "
             "WebSocket messages, so it cannot apply it", out->path,
             ep->rules[i].in_deny_rules ? "deny_rules" : "rules", ep->rules[i].src_index);
        tfmt(out->hint, sizeof(out->hint), "remove the operation rules and allow client "
             "messages explicitly with {allow: {method: WEBSOCKET_TEXT, path: \"%.300s\"}} if "
             "unchecked GraphQL messages are acceptable", out->path);
        return;
    }
    struct l7_req tr = *rq;
    tr.method = "WEBSOCKET_TEXT";
    if (ep->access != POLICY_ACCESS_NONE)
        decide_access(ep, &tr, t);
    else
        decide_rules(ep, &tr, t);
    if (!t->allow) {
        deny(out, t->by);
        out->rule_index = t->rule_index;
        memcpy(out->rule, t->rule, sizeof(out->rule));
        tfmt(out->detail, sizeof(out->detail), "the WebSocket upgrade of %.300s is refused: "
             "cordon does not inspect WebSocket messages, so it opens the channel only when "
             "client text messages (WEBSOCKET_TEXT) on this path are allowed too", out->path);
        tfmt(out->hint, sizeof(out->hint), "add {allow: {method: WEBSOCKET_TEXT, path: "
             "\"%.300s\"}} (or use access: read-write)", out->path);
    }
    free(t);
}

int policy_l7_check(const struct policy_endpoint *ep, const char *method, const char *target,
                    struct policy_l7_result *out)
{
    char scratch[POLICY_L7_QUERY_MAX + 1];
    struct l7_req rq = {.method = method, .scratch = scratch};
    const char *path, *why, *enc_why = NULL;
    size_t path_len;

    memset(out, 0, sizeof(*out));
    out->rule_index = -1;
    out->endpoint = ep;
    out->shape = policy_endpoint_l7_shape(ep); /* a client of this endpoint expects it */
    tfmt(out->rpc_id, sizeof(out->rpc_id), "null");
    if (!ep || !method || !target || !ep->rest) {
        deny(out, POLICY_L7_BY_BAD_TARGET);
        tfmt(out->detail, sizeof(out->detail), "no L7 rules apply: the endpoint is not "
                                                   "inspected");
        return -EINVAL;
    }
    if (!policy_method_ok(method)) {
        bad_target(out, "method", "is not an HTTP token");
        return 0;
    }
    if (strcmp(target, "*") == 0) {
        path = "*";
        path_len = 1;
        rq.query = "";
        tfmt(out->path, sizeof(out->path), "*");
    } else {
        path = split_target(target, &path_len, &rq.query, &rq.query_len);
        if (path_len > POLICY_L7_PATH_MAX || rq.query_len > POLICY_L7_QUERY_MAX) {
            bad_target(out, path_len > POLICY_L7_PATH_MAX ? "path" : "query", "is too long");
            return 0;
        }
        /* allow_encoded_slash is an endpoint choice: %2F is kept only when the
         * endpoint selected below allows it */
        if (policy_path_normalize(path, path_len, 0, out->path, sizeof(out->path), &why) < 0) {
            const char *why2;
            if (!entry_allows_encoded_slash(ep) ||
                policy_path_normalize(path, path_len, POLICY_NORM_ENCODED_SLASH, out->path,
                                      sizeof(out->path), &why2) < 0) {
                bad_target(out, "path", why);
                return 0;
            }
            enc_why = why;
        }
        if (!query_valid(rq.query, rq.query_len, scratch)) {
            bad_target(out, "query", "has an invalid %-escape, %00 or '#'");
            return 0;
        }
    }
    rq.path = out->path;
    const struct policy_endpoint *sel = select_by_path(ep, out->path);
    if (!sel) {
        deny(out, POLICY_L7_BY_PATH);
        tfmt(out->detail, sizeof(out->detail), "%.32s %.300s is outside the path of "
             "network_policies.%.128s.endpoints[%d] (path: %.200s)", method, out->path,
             ep->entry->key, ep->index, ep->path_sel);
        tfmt(out->hint, sizeof(out->hint), "add an endpoint for this host with a path that "
             "covers %.300s", out->path);
        return 0;
    }
    ep = out->endpoint = sel;
    if (enc_why && !ep->allow_encoded_slash) {
        bad_target(out, "path", enc_why);
        return 0;
    }
    switch (ep->proto) {
    case POLICY_PROTO_GRAPHQL:
    case POLICY_PROTO_JSONRPC:
    case POLICY_PROTO_MCP:
        body_protocol(ep, &rq, out);
        return 0;
    case POLICY_PROTO_REST:
    case POLICY_PROTO_WEBSOCKET:
    case POLICY_PROTO_NONE:
    case POLICY_PROTO_TCP:
    case POLICY_PROTO_SQL:
        break;
    }
    if (ep->access != POLICY_ACCESS_NONE)
        decide_access(ep, &rq, out);
    else
        decide_rules(ep, &rq, out);
    if (out->allow && ep->proto == POLICY_PROTO_WEBSOCKET && strcasecmp(method, "GET") == 0)
        websocket_messages(ep, &rq, out);
    return 0;
}

bool policy_l7_sse_request_ok(const char *accept, size_t accept_len, bool has_body)
{
    if (has_body || !accept)
        return false;
    const char *p = accept, *end = accept + accept_len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        const char *semi = memchr(p, ';', (size_t)(item_end - p));
        const char *type_end = semi ? semi : item_end;
        while (p < type_end && (*p == ' ' || *p == '\t'))
            p++;
        while (type_end > p && (type_end[-1] == ' ' || type_end[-1] == '\t'))
            type_end--;
        if ((size_t)(type_end - p) == 17 && strncasecmp(p, "text/event-stream", 17) == 0)
            return true;
        p = comma ? comma + 1 : end;
    }
    return false;
}
