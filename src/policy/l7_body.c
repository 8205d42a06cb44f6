/* policy/l7_body: decisions on request bodies for protocol: graphql,
 * json-rpc and mcp endpoints (OpenShell's semantics, doc/policy.md):
 *  - deny rules first: any match denies, whatever allows it;
 *  - GraphQL: an allow rule matches when operation_type matches, the
 *    operation_name glob matches, and EVERY root field matches one of its
 *    field globs; a deny rule matches when ANY root field matches; access
 *    presets: read-only = query, read-write = + mutation, full = all;
 *    hash-only persisted queries are denied unless persisted_queries:
 *    allow_registered and the hash or id is in graphql_persisted_queries;
 *  - JSON-RPC: the method, exactly (or "*"); client-sent responses are
 *    denied;
 *  - MCP: the method (globs in the tools/ family), and for tools/call the
 *    tool name (params.name), which must look like a tool name
 *    ([A-Za-z0-9_.-]{1,128}) unless mcp.strict_tool_names is false;
 *  - batches: every element is checked; one denied element denies all. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy/glob.h"
#include "policy/graphql.h"
#include "policy/jsonrpc.h"
#include "policy/policy_int.h"

#include "core/banned.h"

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
    out->need_body = false;
    out->reason_code = POLICY_REASON_L7_DENIED;
    out->by = by;
    out->hard = by == POLICY_L7_BY_BAD_BODY || by == POLICY_L7_BY_BAD_TARGET;
}

static void allow(struct policy_l7_result *out, enum policy_l7_by by)
{
    out->allow = true;
    out->need_body = false;
    out->reason_code = NULL;
    out->by = by;
}

static const char *rule_list(const struct policy_rule *r)
{
    return r->in_deny_rules ? "deny_rules" : "rules";
}

static bool any_glob(char *const *globs, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (glob_value_match(globs[i], s))
            return true;
    return false;
}

/* ---- GraphQL ---- */

static bool gql_type_name_match(const struct policy_rule *r, const struct policy_gql_op *op)
{
    if (!r->op_type || (strcmp(r->op_type, "*") != 0 && strcmp(r->op_type, op->type) != 0))
        return false;
    return !r->op_name || glob_value_match(r->op_name, op->name);
}

static bool gql_allow_match(const struct policy_rule *r, const struct policy_gql_op *op)
{
    if (!gql_type_name_match(r, op))
        return false;
    for (size_t i = 0; r->fields && i < op->n_fields; i++)
        if (!any_glob(r->fields, r->n_fields, op->fields[i]))
            return false;
    return true;
}

static bool gql_deny_match(const struct policy_rule *r, const struct policy_gql_op *op)
{
    if (!gql_type_name_match(r, op))
        return false;
    if (!r->fields)
        return true;
    for (size_t i = 0; i < op->n_fields; i++)
        if (any_glob(r->fields, r->n_fields, op->fields[i]))
            return true;
    return false;
}

static bool gql_preset(enum policy_access a, const char *type)
{
    switch (a) {
    case POLICY_ACCESS_FULL:
        return true;
    case POLICY_ACCESS_READ_WRITE:
        return strcmp(type, "query") == 0 || strcmp(type, "mutation") == 0;
    case POLICY_ACCESS_READ_ONLY:
        return strcmp(type, "query") == 0;
    case POLICY_ACCESS_NONE:
        return false;
    }
    return false;
}

static void gql_fields_text(const struct policy_gql_op *op, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < op->n_fields && o + 1 < cap; i++) {
        int n = snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", op->fields[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

/* Decides one operation; true when allowed (out untouched), else out denies. */
static bool gql_decide(const struct policy_endpoint *ep, const struct policy_gql_op *op,
                       struct policy_l7_result *out)
{
    char fields[256];
    gql_fields_text(op, fields, sizeof(fields));
    for (size_t i = 0; i < ep->n_rules; i++) {
        const struct policy_rule *r = &ep->rules[i];
        if (!r->deny || !gql_deny_match(r, op))
            continue;
        deny(out, POLICY_L7_BY_DENY_RULE);
        out->rule_index = (int)i;
        tfmt(out->rule, sizeof(out->rule), "%s[%d]: %s %s", rule_list(r), r->src_index,
             r->op_type, r->op_name ? r->op_name : "*");
        tfmt(out->detail, sizeof(out->detail), "GraphQL %.16s %.100s { %.200s } matches "
             "%s[%d] of network_policies.%.100s.endpoints[%d]", op->type,
             op->name[0] ? op->name : "(anonymous)", fields, rule_list(r), r->src_index,
             ep->entry->key, ep->index);
        tfmt(out->hint, sizeof(out->hint), "a deny rule refuses this operation; remove or "
             "narrow it");
        return false;
    }
    if (ep->access != POLICY_ACCESS_NONE) {
        if (gql_preset(ep->access, op->type))
            return true;
        deny(out, POLICY_L7_BY_ACCESS);
        tfmt(out->detail, sizeof(out->detail), "GraphQL %.16s operations are not allowed by "
             "the access preset of network_policies.%.100s.endpoints[%d]", op->type,
             ep->entry->key, ep->index);
        tfmt(out->hint, sizeof(out->hint), "use a wider access preset, or rules such as "
             "{allow: {operation_type: %.16s, fields: [%.200s]}}", op->type, fields);
        return false;
    }
    for (size_t i = 0; i < ep->n_rules; i++) {
        const struct policy_rule *r = &ep->rules[i];
        if (!r->deny && gql_allow_match(r, op))
            return true;
    }
    deny(out, POLICY_L7_BY_NO_RULE);
    tfmt(out->detail, sizeof(out->detail), "GraphQL %.16s %.100s { %.200s } is not allowed by "
         "any rule of network_policies.%.100s.endpoints[%d]", op->type,
         op->name[0] ? op->name : "(anonymous)", fields, ep->entry->key, ep->index);
    tfmt(out->hint, sizeof(out->hint), "add {allow: {operation_type: %.16s, fields: [%.200s]}} "
         "to network_policies.%.100s.endpoints[%d].rules", op->type, fields, ep->entry->key,
         ep->index);
    return false;
}

static const struct policy_rule *persisted_lookup(const struct policy_endpoint *ep,
                                                  const char *hash, const char *id)
{
    for (size_t i = 0; i < ep->n_persisted; i++) {
        const char *k = ep->persisted[i].pq_id;
        if ((hash && strcmp(k, hash) == 0) || (id && strcmp(k, id) == 0))
            return &ep->persisted[i];
    }
    return NULL;
}

static void bad_body(struct policy_l7_result *out, const char *what, const char *why)
{
    deny(out, POLICY_L7_BY_BAD_BODY);
    tfmt(out->detail, sizeof(out->detail), "the %s %s, so no rule can be applied", what, why);
    tfmt(out->hint, sizeof(out->hint), "send a well-formed %s", what);
}

/* One GraphQL request (GET parameters or one JSON envelope). query may be
 * NULL for a hash-only persisted query. Returns true when allowed. */
bool policy_l7_graphql_op(const struct policy_endpoint *ep, const char *query,
                          const char *op_name, const char *hash, const char *id,
                          struct policy_l7_result *out)
{
    struct policy_gql_op *op = calloc(1, sizeof(*op));
    const char *why;
    bool ok = false;
    if (!op) {
        bad_body(out, "GraphQL request", "could not be examined (out of memory)");
        return false;
    }
    if (query && *query) {
        if (policy_graphql_parse(query, strlen(query), op_name, op, &why) < 0)
            bad_body(out, "GraphQL document", why);
        else
            ok = gql_decide(ep, op, out);
    } else if (hash || id) {
        const struct policy_rule *r = ep->persisted_allow ? persisted_lookup(ep, hash, id) : NULL;
        if (!r) {
            deny(out, POLICY_L7_BY_NO_RULE);
            tfmt(out->detail, sizeof(out->detail), "hash-only persisted GraphQL query %.100s "
                 "is %s", hash ? hash : id, ep->persisted_allow ? "not in "
                 "graphql_persisted_queries" : "refused (persisted_queries: deny)");
            tfmt(out->hint, sizeof(out->hint), "send the query document, or register the "
                 "hash in graphql_persisted_queries with persisted_queries: allow_registered");
        } else {
            tfmt(op->type, sizeof(op->type), "%s", strcmp(r->op_type, "*") == 0 ? "subscription"
                                                                                : r->op_type);
            tfmt(op->name, sizeof(op->name), "%s", r->op_name ? r->op_name : "");
            for (size_t i = 0; i < r->n_fields && i < POLICY_GQL_MAX_FIELDS; i++)
                tfmt(op->fields[op->n_fields++], sizeof(op->fields[0]), "%s", r->fields[i]);
            ok = gql_decide(ep, op, out);
        }
    } else {
        bad_body(out, "GraphQL request", "has no query document or persisted query id");
    }
    free(op);
    return ok;
}

static const char *jstr(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void graphql_body(const struct policy_endpoint *ep, const char *body, size_t len,
                         struct policy_l7_result *out)
{
    json_error_t err;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    size_t n;
    if (!root) {
        bad_body(out, "GraphQL request body", "is not valid JSON (or has a duplicate key)");
        return;
    }
    n = json_is_array(root) ? json_array_size(root) : 1;
    if (!json_is_array(root) && !json_is_object(root)) {
        bad_body(out, "GraphQL request body", "is neither an object nor a batch");
    } else if (n == 0 || n > POLICY_RPC_MAX_BATCH) {
        bad_body(out, "GraphQL batch", n ? "has more than 128 operations" : "is empty");
    } else {
        bool ok = true;
        for (size_t i = 0; ok && i < n; i++) {
            const json_t *e = json_is_array(root) ? json_array_get(root, i) : root;
            const json_t *ext = json_object_get(e, "extensions");
            const json_t *pq = json_object_get(ext, "persistedQuery");
            const char *id = jstr(e, "id") ? jstr(e, "id") : jstr(e, "documentId")
                                                            ? jstr(e, "documentId")
                                                            : jstr(e, "queryId");
            if (!json_is_object(e)) {
                bad_body(out, "GraphQL batch", "has an element that is not an object");
                ok = false;
                break;
            }
            ok = policy_l7_graphql_op(ep, jstr(e, "query"), jstr(e, "operationName"),
                                      jstr(pq, "sha256Hash"), id, out);
        }
        if (ok) {
            allow(out, POLICY_L7_BY_ALLOW_RULE);
            tfmt(out->detail, sizeof(out->detail), "GraphQL request allowed (%zu operation%s)",
                 n, n == 1 ? "" : "s");
        }
    }
    json_decref(root);
}

/* ---- JSON-RPC / MCP ---- */

static const char *const mcp_known[] = {
    "initialize", "ping", "notifications/initialized", "notifications/cancelled",
    "notifications/progress", "notifications/roots/list_changed", "tools/list", "tools/call",
    "resources/list", "resources/read", "resources/templates/list", "resources/subscribe",
    "resources/unsubscribe", "prompts/list", "prompts/get", "completion/complete",
    "logging/setLevel", NULL};

static bool mcp_is_known(const char *m)
{
    for (size_t i = 0; mcp_known[i]; i++)
        if (strcmp(mcp_known[i], m) == 0)
            return true;
    return false;
}

static bool tool_name_ok(const char *s)
{
    size_t l = strlen(s);
    return l >= 1 && l <= 128 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == l;
}

static bool rpc_rule_match(const struct policy_endpoint *ep, const struct policy_rule *r,
                           const struct policy_rpc_call *c)
{
    if (ep->proto == POLICY_PROTO_JSONRPC) {
        return r->method && (strcmp(r->method, "*") == 0 || strcmp(r->method, c->method) == 0);
    }
    if (!r->method ? !mcp_is_known(c->method)
                   : !glob_value_match(r->method, c->method))
        return false;
    if (!r->tools)
        return true;
    return strcmp(c->method, "tools/call") == 0 && c->has_tool &&
           any_glob(r->tools, r->n_tools, c->tool);
}

static void rpc_text(const struct policy_rpc_call *c, char *buf, size_t cap)
{
    if (c->has_tool && strcmp(c->method, "tools/call") == 0)
        tfmt(buf, cap, "%.200s (tool %.128s)", c->method, c->tool);
    else
        tfmt(buf, cap, "%.200s", c->method);
}

static bool rpc_decide(const struct policy_endpoint *ep, const struct policy_rpc_call *c,
                       size_t idx, bool batch, struct policy_l7_result *out)
{
    const char *kind = ep->proto == POLICY_PROTO_MCP ? "MCP" : "JSON-RPC";
    char what[400], where[48] = "";
    if (batch)
        tfmt(where, sizeof(where), " (batch element %zu)", idx);
    tfmt(out->rpc_id, sizeof(out->rpc_id), "%s", c->id);
    if (c->response) {
        deny(out, POLICY_L7_BY_NO_RULE);
        tfmt(out->detail, sizeof(out->detail), "a %s response sent by the client%s is not "
             "allowed (only requests and notifications are inspected)", kind, where);
        tfmt(out->hint, sizeof(out->hint), "client-sent JSON-RPC responses are always refused");
        out->hard = ep->proto != POLICY_PROTO_MCP; /* OpenShell relays them for MCP in audit */
        return false;
    }
    rpc_text(c, what, sizeof(what));
    if (ep->proto == POLICY_PROTO_MCP && strcmp(c->method, "tools/call") == 0 &&
        (!c->has_tool || (ep->mcp_strict_tools && !tool_name_ok(c->tool)))) {
        deny(out, POLICY_L7_BY_BAD_BODY);
        tfmt(out->detail, sizeof(out->detail), "MCP tools/call%s has %s", where,
             c->has_tool ? "a tool name outside [A-Za-z0-9_.-]{1,128}"
                         : "no params.name string");
        tfmt(out->hint, sizeof(out->hint), "name the tool in params.name (set "
             "mcp.strict_tool_names: false for servers with other tool names)");
        return false;
    }
    for (size_t i = 0; i < ep->n_rules; i++) {
        const struct policy_rule *r = &ep->rules[i];
        if (!r->deny || !rpc_rule_match(ep, r, c))
            continue;
        deny(out, POLICY_L7_BY_DENY_RULE);
        out->rule_index = (int)i;
        tfmt(out->rule, sizeof(out->rule), "%s[%d]", rule_list(r), r->src_index);
        tfmt(out->detail, sizeof(out->detail), "%s %.300s%s matches %s[%d] of "
             "network_policies.%.100s.endpoints[%d]", kind, what, where, rule_list(r),
             r->src_index, ep->entry->key, ep->index);
        tfmt(out->hint, sizeof(out->hint), "a deny rule refuses this call; remove or narrow "
             "it");
        return false;
    }
    if (ep->proto == POLICY_PROTO_MCP && ep->mcp_allow_known && ep->n_rules > 0) {
        bool any_allow = false;
        for (size_t i = 0; i < ep->n_rules; i++)
            any_allow = any_allow || !ep->rules[i].deny;
        if (!any_allow && mcp_is_known(c->method))
            return true;
    } else if (ep->proto == POLICY_PROTO_MCP && ep->mcp_allow_known && mcp_is_known(c->method)) {
        return true;
    }
    for (size_t i = 0; i < ep->n_rules; i++) {
        const struct policy_rule *r = &ep->rules[i];
        if (!r->deny && rpc_rule_match(ep, r, c))
            return true;
    }
    deny(out, POLICY_L7_BY_NO_RULE);
    tfmt(out->detail, sizeof(out->detail), "%s %.300s%s is not allowed by any rule of "
         "network_policies.%.100s.endpoints[%d]", kind, what, where, ep->entry->key, ep->index);
    if (c->has_tool && strcmp(c->method, "tools/call") == 0)
        tfmt(out->hint, sizeof(out->hint), "add {allow: {method: tools/call, tool: %.128s}} to "
             "network_policies.%.100s.endpoints[%d].rules", c->tool, ep->entry->key, ep->index);
    else
        tfmt(out->hint, sizeof(out->hint), "add {allow: {method: %.200s}} to "
             "network_policies.%.100s.endpoints[%d].rules", c->method, ep->entry->key,
             ep->index);
    return false;
}

static void rpc_body(const struct policy_endpoint *ep, const char *body, size_t len,
                     struct policy_l7_result *out)
{
    struct policy_rpc_msg *m = calloc(1, sizeof(*m));
    const char *why;
    if (!m) {
        bad_body(out, "JSON-RPC body", "could not be examined (out of memory)");
        return;
    }
    if (policy_jsonrpc_parse(body, len, m, &why) < 0) {
        tfmt(out->rpc_id, sizeof(out->rpc_id), "%s", m->batch ? "null" : m->calls[0].id);
        bad_body(out, "JSON-RPC body", why);
        free(m);
        return;
    }
    for (size_t i = 0; i < m->n; i++)
        if (!rpc_decide(ep, &m->calls[i], i, m->batch, out)) {
            if (m->batch)
                tfmt(out->rpc_id, sizeof(out->rpc_id), "null");
            free(m);
            return;
        }
    allow(out, POLICY_L7_BY_ALLOW_RULE);
    tfmt(out->rpc_id, sizeof(out->rpc_id), "null");
    if (m->batch)
        tfmt(out->detail, sizeof(out->detail), "batch of %zu calls allowed", m->n);
    else
        tfmt(out->detail, sizeof(out->detail), "%.200s allowed", m->calls[0].method);
    free(m);
}

enum policy_l7_shape policy_endpoint_l7_shape(const struct policy_endpoint *ep)
{
    switch (ep ? ep->proto : POLICY_PROTO_NONE) {
    case POLICY_PROTO_GRAPHQL:
        return POLICY_L7_SHAPE_GRAPHQL;
    case POLICY_PROTO_JSONRPC:
    case POLICY_PROTO_MCP:
        return POLICY_L7_SHAPE_JSONRPC;
    case POLICY_PROTO_NONE:
    case POLICY_PROTO_TCP:
    case POLICY_PROTO_SQL:
    case POLICY_PROTO_REST:
    case POLICY_PROTO_WEBSOCKET:
        return POLICY_L7_SHAPE_HTTP;
    }
    return POLICY_L7_SHAPE_HTTP;
}

int policy_l7_check_body(const char *body, size_t len, bool complete,
                         struct policy_l7_result *out)
{
    const struct policy_endpoint *ep = out->endpoint;
    if (!out->need_body || !ep || (!body && len && complete)) {
        deny(out, POLICY_L7_BY_BAD_BODY);
        tfmt(out->detail, sizeof(out->detail), "no request body was expected");
        return -EINVAL;
    }
    out->rule_index = -1;
    out->rule[0] = '\0';
    out->shape = policy_endpoint_l7_shape(ep);
    tfmt(out->rpc_id, sizeof(out->rpc_id), "null");
    if (!complete || len > out->max_body) {
        deny(out, POLICY_L7_BY_BAD_BODY);
        tfmt(out->detail, sizeof(out->detail), "the request body is larger than %zu bytes, the "
             "limit for inspecting it", out->max_body);
        tfmt(out->hint, sizeof(out->hint), "raise the endpoint's body limit (%s)",
             ep->proto == POLICY_PROTO_GRAPHQL ? "graphql_max_body_bytes"
             : ep->proto == POLICY_PROTO_MCP   ? "mcp.max_body_bytes"
                                               : "json_rpc.max_body_bytes");
        return 0;
    }
    if (ep->proto == POLICY_PROTO_GRAPHQL)
        graphql_body(ep, body ? body : "", len, out);
    else
        rpc_body(ep, body ? body : "", len, out);
    return 0;
}
