/* policy/load_rules: an endpoint's `rules` and `deny_rules`, read after the
 * endpoint's other fields so that each rule is checked against the
 * endpoint's protocol:
 *   rest, websocket   {method, path, query}
 *                     (websocket also: GraphQL operation rules, OpenShell's
 *                     GraphQL-over-WebSocket; loaded, warned, never matched)
 *   graphql           {operation_type, operation_name, fields}
 *   json-rpc          {method}            (exact, or "*")
 *   mcp               {method, tool, params: {name}}
 * `rules` items are {allow: {...}} (or {deny: {...}}, a cordon extension);
 * `deny_rules` items are the rule body itself. Both end up in ep->rules,
 * `rules` first; deny rules win whatever the order (l7.c, l7_body.c). */
#include <ctype.h>
#include <string.h>

#include "policy/glob.h"
#include "policy/policy_int.h"
#include "policy/vctx.h"

#include "core/banned.h"

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_RPC_METHOD 256

struct rule_build {
    const struct policy_endpoint *ep;
    struct policy_rule *r;
    const struct ynode *method, *path, *query, *op_type, *op_name, *fields, *tool, *params;
    int kinds; /* allow / deny keys seen */
};

static void f_method(struct vctx *c, const struct ynode *n, void *obj) { ((struct rule_build *)obj)->method = n; (void)c; }
static void f_path(struct vctx *c, const struct ynode *n, void *obj) { ((struct rule_build *)obj)->path = n; (void)c; }
static void f_query(struct vctx *c, const struct ynode *n, void *obj) { ((struct rule_build *)obj)->query = n; (void)c; }
static void f_op_type(struct vctx *c, const struct ynode *n, void *obj) { ((struct rule_build *)obj)->op_type = n; (void)c; }
static void f_op_name(struct vctx *c, const struct ynode *n, void *obj) { ((struct rule_build *)obj)->op_name = n; (void)c; }
static void f_fields(struct vctx *c, const struct ynode *n, void *obj) { ((struct rule_build *)obj)->fields = n; (void)c; }
static void f_tool(struct vctx *c, const struct ynode *n, void *obj) { ((struct rule_build *)obj)->tool = n; (void)c; }
static void f_params(struct vctx *c, const struct ynode *n, void *obj) { ((struct rule_build *)obj)->params = n; (void)c; }

static const char *proto_name(enum policy_proto p)
{
    switch (p) {
    case POLICY_PROTO_NONE:
        return "(none)";
    case POLICY_PROTO_TCP:
        return "tcp";
    case POLICY_PROTO_SQL:
        return "sql";
    case POLICY_PROTO_REST:
        return "rest";
    case POLICY_PROTO_WEBSOCKET:
        return "websocket";
    case POLICY_PROTO_GRAPHQL:
        return "graphql";
    case POLICY_PROTO_JSONRPC:
        return "json-rpc";
    case POLICY_PROTO_MCP:
        return "mcp";
    }
    return "?";
}

/* Reports each field in `bad` (NULL-terminated pairs name, node) that is set. */
static void refuse(struct vctx *c, const struct rule_build *rb, const char *name,
                   const struct ynode *n, const char *use)
{
    if (n) {
        size_t mark = v_push(c, ".%s", name);
        v_error(c, n, "%s is not a field of a protocol: %s rule (%s)", name,
                proto_name(rb->ep->proto), use);
        v_pop(c, mark);
    }
}

/* ---- HTTP rules (rest, websocket) ---- */

static void http_method(struct vctx *c, struct rule_build *rb)
{
    static const char *const known[] = {"GET",     "HEAD",    "POST",  "PUT", "DELETE",
                                        "PATCH",   "OPTIONS", "TRACE", "CONNECT"};
    const struct ynode *n = rb->method;
    char m[33];
    const char *s;
    if (!v_str(c, n, &s, "an HTTP method such as GET, or '*' for any"))
        return;
    size_t l = strlen(s);
    if (!policy_method_ok(s)) {
        v_error(c, n, "'%.40s' is not an HTTP method (allowed: a method such as GET, or '*')", s);
        return;
    }
    for (size_t i = 0; i <= l; i++)
        m[i] = (char)toupper((unsigned char)s[i]);
    rb->r->method = v_strdup(m);
    if (strcmp(m, "*") == 0)
        return;
    if (rb->ep->proto == POLICY_PROTO_WEBSOCKET) {
        if (strcmp(m, "GET") != 0 && strcmp(m, "WEBSOCKET_TEXT") != 0)
            v_error(c, n, "'%s' is not a WebSocket action (allowed: GET for the upgrade, "
                          "WEBSOCKET_TEXT for client text messages, or '*')", m);
        return;
    }
    for (size_t i = 0; i < NFIELDS(known); i++)
        if (strcmp(m, known[i]) == 0)
            return;
    const char *sug = v_suggest(m, known, NFIELDS(known));
    v_warn(c, n, "unknown HTTP method '%s'%s%s%s (known: GET, HEAD, POST, PUT, DELETE, PATCH, "
                 "OPTIONS, TRACE, CONNECT, or '*')", m, sug ? "; did you mean '" : "",
           sug ? sug : "", sug ? "'?" : "");
}

static void http_path(struct vctx *c, struct rule_build *rb)
{
    const struct ynode *n = rb->path;
    char norm[POLICY_MAX_PATTERN_LEN * 3 + 1];
    const char *s, *why;
    if (!v_str(c, n, &s, "a path glob starting with '/', or '**' for any path"))
        return;
    if (strcmp(s, "**") == 0) {
        rb->r->path = v_strdup(s);
        return;
    }
    if (strlen(s) > POLICY_MAX_PATTERN_LEN) {
        v_error(c, n, "is longer than %d characters", POLICY_MAX_PATTERN_LEN);
        return;
    }
    if (policy_path_normalize(s, strlen(s), POLICY_NORM_STRICT | POLICY_NORM_ENCODED_SLASH,
                              norm, sizeof(norm), &why) < 0) {
        v_error(c, n, "'%.200s' %s (allowed: a path glob starting with '/', e.g. '/repos/**', "
                      "or '**')", s, why);
        return;
    }
    if (!rb->ep->allow_encoded_slash && (strstr(norm, "%2F") || strstr(norm, "%5C")))
        v_error(c, n, "'%.200s' has an encoded slash or backslash, which requests to this "
                      "endpoint may not carry, so it could never match (set "
                      "allow_encoded_slash: true on the endpoint)", s);
    if (v_path_metachars_ok(c, n, s))
        rb->r->path = v_strdup(norm);
}

/* A value glob (query value, MCP method or tool, GraphQL name or field):
 * OpenShell's syntax, '.' the delimiter (policy/glob.h). */
static bool v_value_glob(struct vctx *c, const struct ynode *n, const char *s)
{
    const char *why;
    if (glob_value_check(s, &why) == 0)
        return true;
    v_error(c, n, "'%.64s': %s", s, why);
    return false;
}

static void qmatch_globs(struct vctx *c, const struct ynode *n, char ***globs, size_t *ng)
{
    const char *s;
    if (n->kind == YN_SCALAR) {
        if (!v_str(c, n, &s, "a glob string") || !v_value_glob(c, n, s))
            return;
        *globs = v_calloc(1, sizeof(char *));
        (*globs)[(*ng)++] = v_strdup(s);
        return;
    }
    if (!v_seq(c, n, "a non-empty list of glob strings"))
        return;
    if (n->n == 0) {
        v_error(c, n, "empty list can never match (list glob strings)");
        return;
    }
    *globs = v_calloc(n->n, sizeof(char *));
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = v_push(c, "[%zu]", i);
        if (v_str(c, n->items[i], &s, "a glob string") && v_value_glob(c, n->items[i], s)) {
            (*globs)[(*ng)++] = v_strdup(s);
        }
        v_pop(c, mark);
    }
}

/* One matcher: "glob", {any: [globs]} or {glob: "glob"}. */
static void v_matcher(struct vctx *c, const struct ynode *n, char ***globs, size_t *ng)
{
    const struct ynode *any = NULL, *glob = NULL;
    if (n->kind == YN_SCALAR) {
        qmatch_globs(c, n, globs, ng);
        return;
    }
    if (n->kind != YN_MAP) {
        v_error(c, n, "expected a glob string or {any: [globs]}, got %s", ytree_type_name(n));
        return;
    }
    for (size_t i = 0; i < n->n / 2; i++) {
        const struct ynode *k = n->items[2 * i];
        if (!v_map_key_ok(c, n, i))
            continue;
        if (strcmp(k->str, "any") == 0)
            any = n->items[2 * i + 1];
        else if (strcmp(k->str, "glob") == 0)
            glob = n->items[2 * i + 1];
        else
            v_error(c, k, "unknown matcher '%.64s' (allowed: any, glob)", k->str);
    }
    if (any && glob) {
        v_error(c, n, "a matcher has either 'any' or 'glob', not both");
    } else if (!any && !glob) {
        v_error(c, n, "a matcher needs 'any: [globs]' or 'glob: \"...\"'");
    } else if (glob && glob->kind != YN_SCALAR) {
        v_error(c, glob, "glob must be a string, got %s", ytree_type_name(glob));
    } else if (any && any->kind != YN_SEQ) {
        v_error(c, any, "expected a list of glob strings, got %s", ytree_type_name(any));
    } else {
        size_t mark = v_push(c, ".%s", any ? "any" : "glob");
        qmatch_globs(c, any ? any : glob, globs, ng);
        v_pop(c, mark);
    }
}

static void http_query(struct vctx *c, struct rule_build *rb)
{
    const struct ynode *n = rb->query;
    if (n->kind != YN_MAP) {
        v_error(c, n, "expected a map from parameter name to matcher, got %s",
                ytree_type_name(n));
        return;
    }
    rb->r->query = v_calloc(n->n / 2 + 1, sizeof(*rb->r->query));
    for (size_t i = 0; i < n->n / 2; i++) {
        const struct ynode *k = n->items[2 * i];
        if (!v_map_key_ok(c, n, i))
            continue;
        struct policy_qmatch *q = &rb->r->query[rb->r->n_query++];
        q->key = v_strdup(k->str);
        size_t mark = v_push(c, ".%s", k->str);
        v_matcher(c, n->items[2 * i + 1], &q->globs, &q->n_globs);
        v_pop(c, mark);
    }
}

static void http_rule(struct vctx *c, const struct ynode *body, struct rule_build *rb)
{
    static const char use[] = "use method, path and query";
    refuse(c, rb, "operation_type", rb->op_type, use);
    refuse(c, rb, "operation_name", rb->op_name, use);
    refuse(c, rb, "fields", rb->fields, use);
    refuse(c, rb, "tool", rb->tool, use);
    refuse(c, rb, "params", rb->params, use);
    size_t mark;
    if (rb->method) {
        mark = v_push(c, ".method");
        http_method(c, rb);
        v_pop(c, mark);
    } else
        v_error(c, body, "method is required (e.g. GET, or '*' for any)");
    if (rb->path) {
        mark = v_push(c, ".path");
        http_path(c, rb);
        v_pop(c, mark);
    } else
        v_error(c, body, "path is required (e.g. '/repos/**', or '**' for any)");
    if (rb->query) {
        mark = v_push(c, ".query");
        http_query(c, rb);
        v_pop(c, mark);
    }
}

/* ---- GraphQL rules ---- */

static void graphql_rule(struct vctx *c, const struct ynode *body, struct rule_build *rb)
{
    static const char *const types[] = {"query", "mutation", "subscription", "*", NULL};
    static const char use[] = "use operation_type, operation_name and fields";
    const char *s;
    refuse(c, rb, "method", rb->method, use);
    refuse(c, rb, "path", rb->path, use);
    refuse(c, rb, "query", rb->query, use);
    refuse(c, rb, "tool", rb->tool, use);
    refuse(c, rb, "params", rb->params, use);
    size_t mark;
    if (!rb->op_type) {
        v_error(c, body, "operation_type is required (query, mutation, subscription or '*')");
    } else {
        mark = v_push(c, ".operation_type");
        int i = v_enum(c, rb->op_type, types);
        if (i >= 0)
            rb->r->op_type = v_strdup(types[i]);
        v_pop(c, mark);
    }
    mark = v_push(c, ".operation_name");
    if (rb->op_name && v_str(c, rb->op_name, &s, "an operation-name glob") &&
        v_value_glob(c, rb->op_name, s))
        rb->r->op_name = v_strdup(s);
    v_pop(c, mark);
    mark = v_push(c, ".fields");
    if (rb->fields && v_seq(c, rb->fields, "a list of root-field globs")) {
        if (rb->fields->n == 0) {
            v_error(c, rb->fields, "empty list (list root-field globs, or omit fields for any)");
            v_pop(c, mark);
            return;
        }
        rb->r->fields = v_calloc(rb->fields->n, sizeof(char *));
        for (size_t i = 0; i < rb->fields->n; i++) {
            size_t m2 = v_push(c, "[%zu]", i);
            if (v_str(c, rb->fields->items[i], &s, "a root-field glob such as viewer") &&
                v_value_glob(c, rb->fields->items[i], s))
                rb->r->fields[rb->r->n_fields++] = v_strdup(s);
            v_pop(c, m2);
        }
    }
    v_pop(c, mark);
}

void v_graphql_operation(struct vctx *c, const struct policy_endpoint *ep, const struct ynode *n,
                         struct policy_rule *r)
{
    static const struct vfield fields[] = {
        {"operation_type", f_op_type}, {"operation_name", f_op_name}, {"fields", f_fields}};
    struct policy_endpoint gq = {.proto = POLICY_PROTO_GRAPHQL};
    struct rule_build rb = {.ep = &gq, .r = r};
    (void)ep;
    if (v_map(c, n, fields, NFIELDS(fields), &rb, "a map {operation_type, operation_name, fields}"))
        graphql_rule(c, n, &rb);
}

/* ---- JSON-RPC and MCP rules ---- */

static bool rpc_method_ok(const char *s)
{
    size_t l = strlen(s);
    if (l == 0 || l > MAX_RPC_METHOD)
        return false;
    for (size_t i = 0; i < l; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static void jsonrpc_rule(struct vctx *c, const struct ynode *body, struct rule_build *rb)
{
    static const char use[] = "a JSON-RPC rule matches only the method";
    const char *s;
    refuse(c, rb, "path", rb->path, use);
    refuse(c, rb, "query", rb->query, use);
    refuse(c, rb, "operation_type", rb->op_type, use);
    refuse(c, rb, "operation_name", rb->op_name, use);
    refuse(c, rb, "fields", rb->fields, use);
    refuse(c, rb, "tool", rb->tool, "tool is for protocol: mcp");
    if (rb->params)
        v_error(c, rb->params, "params matchers are not supported for protocol: json-rpc "
                               "(OpenShell rejects them too); match the method only");
    if (!rb->method) {
        v_error(c, body, "method is required (an exact JSON-RPC method name, or '*' for any)");
        return;
    }
    size_t mark = v_push(c, ".method");
    if (!v_str(c, rb->method, &s, "an exact JSON-RPC method name, or '*'"))
        s = NULL;
    else if (!rpc_method_ok(s))
        v_error(c, rb->method, "'%.64s' is not a JSON-RPC method name (1-%d printable ASCII "
                               "characters)", s, MAX_RPC_METHOD);
    else if (strcmp(s, "*") != 0 && strpbrk(s, "*?[]{}")) /* as OpenShell's validator */
        v_error(c, rb->method, "'%.64s': JSON-RPC method rules take no globs or wildcards "
                               "(use '*' alone for any method, or an exact method name)", s);
    else
        rb->r->method = v_strdup(s);
    v_pop(c, mark);
}

static void mcp_tool_names(struct vctx *c, const struct ynode *n, struct rule_build *rb)
{
    v_matcher(c, n, &rb->r->tools, &rb->r->n_tools);
    for (size_t i = 0; i < rb->r->n_tools; i++)
        if (strpbrk(rb->r->tools[i], "*?[\\") && !rb->ep->mcp_strict_tools)
            v_error(c, n, "wildcard tool matcher '%.64s' needs mcp.strict_tool_names: true",
                    rb->r->tools[i]);
}

static void mcp_params(struct vctx *c, struct rule_build *rb)
{
    const struct ynode *n = rb->params, *name = NULL;
    if (n->kind != YN_MAP) {
        v_error(c, n, "expected a map {name: matcher}, got %s", ytree_type_name(n));
        return;
    }
    for (size_t i = 0; i < n->n / 2; i++) {
        if (!v_map_key_ok(c, n, i))
            continue;
        if (strcmp(n->items[2 * i]->str, "name") == 0)
            name = n->items[2 * i + 1];
        else
            v_error(c, n->items[2 * i], "params.%.64s is not supported: only params.name (the "
                                        "tool name) can be matched; tool arguments are not",
                    n->items[2 * i]->str);
    }
    if (name && rb->tool)
        v_error(c, name, "tool and params.name both set (use one)");
    else if (name) {
        size_t mark = v_push(c, ".name");
        mcp_tool_names(c, name, rb);
        v_pop(c, mark);
    }
}

static void mcp_rule(struct vctx *c, const struct ynode *body, struct rule_build *rb)
{
    static const char use[] = "use method, tool and params.name";
    const char *s = NULL;
    refuse(c, rb, "path", rb->path, use);
    refuse(c, rb, "query", rb->query, use);
    refuse(c, rb, "operation_type", rb->op_type, use);
    refuse(c, rb, "operation_name", rb->op_name, use);
    refuse(c, rb, "fields", rb->fields, use);
    size_t mark = v_push(c, ".method");
    if (rb->method && v_str(c, rb->method, &s, "an MCP method such as tools/call")) {
        if (!rpc_method_ok(s)) {
            v_error(c, rb->method, "'%.64s' is not a method name", s);
            s = NULL;
        } else if (strcmp(s, "*") == 0) {
            v_error(c, rb->method, "'*' is not an MCP method (omit method with "
                                   "mcp.allow_all_known_mcp_methods: true, or name methods)");
            s = NULL;
        } else if (!v_value_glob(c, rb->method, s)) {
            s = NULL;
        } else if (strpbrk(s, "*?[\\") && strncmp(s, "tools/", 6) != 0) {
            v_error(c, rb->method, "'%.64s': globs are allowed only in the tools/ family "
                                   "(e.g. tools/*)", s);
            s = NULL;
        }
    }
    v_pop(c, mark);
    if (!rb->method && !rb->ep->mcp_allow_known)
        v_error(c, body, "method is required (e.g. tools/call), unless the endpoint sets "
                         "mcp.allow_all_known_mcp_methods: true");
    bool selects_tool = rb->tool || rb->params;
    if (selects_tool && s && strcmp(s, "tools/call") != 0)
        v_error(c, rb->tool ? rb->tool : rb->params, "tool and params.name need method: "
                                                     "tools/call");
    if (rb->tool) {
        mark = v_push(c, ".tool");
        mcp_tool_names(c, rb->tool, rb);
        v_pop(c, mark);
    }
    if (rb->params) {
        mark = v_push(c, ".params");
        mcp_params(c, rb);
        v_pop(c, mark);
    }
    if (s)
        rb->r->method = v_strdup(s);
    else if (!rb->method && selects_tool)
        rb->r->method = v_strdup("tools/call");
    /* method NULL: the MCP method profile (allow_all_known_mcp_methods) */
}

/* ---- one rule body ---- */

static void rule_body(struct vctx *c, const struct ynode *n, struct rule_build *rb)
{
    static const struct vfield fields[] = {
        {"method", f_method},          {"path", f_path},   {"query", f_query},
        {"operation_type", f_op_type}, {"operation_name", f_op_name},
        {"fields", f_fields},          {"tool", f_tool},   {"params", f_params},
    };
    if (!v_map(c, n, fields, NFIELDS(fields), rb, "a rule is a map such as {method, path}"))
        return;
    switch (rb->ep->proto) {
    case POLICY_PROTO_WEBSOCKET:
        if ((rb->op_type || rb->op_name || rb->fields) && !rb->method && !rb->path) {
            /* OpenShell: GraphQL-over-WebSocket operation rules */
            rb->r->ws_graphql = true;
            graphql_rule(c, n, rb);
            v_warn(c, n, "GraphQL-over-WebSocket operation rules are not applied: cordon does "
                         "not inspect WebSocket messages, so upgrades on this endpoint are "
                         "refused (never wider than checking each message)");
            break;
        }
        http_rule(c, n, rb);
        break;
    case POLICY_PROTO_REST:
        http_rule(c, n, rb);
        break;
    case POLICY_PROTO_GRAPHQL:
        graphql_rule(c, n, rb);
        break;
    case POLICY_PROTO_JSONRPC:
        jsonrpc_rule(c, n, rb);
        break;
    case POLICY_PROTO_MCP:
        mcp_rule(c, n, rb);
        break;
    case POLICY_PROTO_NONE:
    case POLICY_PROTO_TCP:
    case POLICY_PROTO_SQL:
        break; /* reported by the endpoint's cross checks */
    }
}

static void f_allow(struct vctx *c, const struct ynode *n, void *obj)
{
    struct rule_build *rb = obj;
    if (rb->kinds++ == 0)
        rule_body(c, n, rb);
}

static void f_deny(struct vctx *c, const struct ynode *n, void *obj)
{
    struct rule_build *rb = obj;
    if (rb->kinds++ == 0) {
        rb->r->deny = true;
        rule_body(c, n, rb);
    }
}

/* OpenShell refuses an MCP endpoint where a rule without a tool selector
 * covers every tools/call while allow rules select tools: such a deny
 * makes them dead, such an allow makes them moot. */
static void mcp_tool_conflicts(struct vctx *c, const struct policy_endpoint *ep,
                               const struct ynode *rules, const struct ynode *deny_rules)
{
    bool tool_allow = false;
    for (size_t i = 0; i < ep->n_rules; i++)
        tool_allow = tool_allow || (!ep->rules[i].deny && ep->rules[i].tools);
    if (!tool_allow)
        return;
    for (size_t i = 0; i < ep->n_rules; i++) {
        const struct policy_rule *r = &ep->rules[i];
        bool every = r->method ? glob_value_match(r->method, "tools/call")
                               : !r->deny && ep->mcp_allow_known;
        if (r->tools || !every)
            continue;
        const struct ynode *list = r->in_deny_rules ? deny_rules : rules;
        if (!list || list->kind != YN_SEQ || (size_t)r->src_index >= list->n)
            continue;
        size_t mark = v_push(c, "%s[%d]", r->in_deny_rules ? ".deny_rules" : ".rules",
                             r->src_index);
        v_error(c, list->items[r->src_index],
                "%s every tool call, which conflicts with the rules that allow chosen tools "
                "(add tool or params.name to this rule, or remove the tool rules)",
                r->deny ? "denies" : "allows");
        v_pop(c, mark);
    }
}

/* OpenShell refuses a WebSocket endpoint that has GraphQL operation rules
 * and also a raw WEBSOCKET_TEXT rule (messages are then GraphQL). */
static void ws_text_conflicts(struct vctx *c, const struct policy_endpoint *ep,
                              const struct ynode *rules, const struct ynode *deny_rules)
{
    bool gql = false;
    for (size_t i = 0; i < ep->n_rules; i++)
        gql = gql || ep->rules[i].ws_graphql;
    for (size_t i = 0; gql && i < ep->n_rules; i++) {
        const struct policy_rule *r = &ep->rules[i];
        const struct ynode *list = r->in_deny_rules ? deny_rules : rules;
        if (!r->method || strcmp(r->method, "WEBSOCKET_TEXT") != 0 || !list ||
            list->kind != YN_SEQ || (size_t)r->src_index >= list->n)
            continue;
        size_t mark = v_push(c, "%s[%d]", r->in_deny_rules ? ".deny_rules" : ".rules",
                             r->src_index);
        v_error(c, list->items[r->src_index],
                "a WEBSOCKET_TEXT rule next to GraphQL operation rules: messages on this "
                "endpoint are GraphQL, so match them with operation_type/operation_name/fields "
                "instead of WEBSOCKET_TEXT");
        v_pop(c, mark);
    }
}

void v_endpoint_rules(struct vctx *c, struct policy_endpoint *ep, const struct ynode *rules,
                      const struct ynode *deny_rules)
{
    static const struct vfield kinds[] = {{"allow", f_allow}, {"deny", f_deny}};
    size_t nr = rules && rules->kind == YN_SEQ ? rules->n : 0;
    size_t nd = deny_rules && deny_rules->kind == YN_SEQ ? deny_rules->n : 0;
    size_t mark;

    ep->rules = v_calloc(nr + nd + 1, sizeof(*ep->rules));
    if (rules) {
        mark = v_push(c, ".rules");
        if (v_seq(c, rules, "a list of {allow: {...}} or {deny: {...}}") && nr == 0)
            v_error(c, rules, "empty list can never allow anything (add allow rules, or use "
                              "access)");
        for (size_t i = 0; i < nr; i++) {
            struct rule_build rb = {.ep = ep, .r = &ep->rules[ep->n_rules]};
            size_t m2 = v_push(c, "[%zu]", i);
            rb.r->src_index = (int)i;
            if (v_map(c, rules->items[i], kinds, NFIELDS(kinds), &rb,
                      "a rule is {allow: {...}} or {deny: {...}}")) {
                if (rb.kinds == 0)
                    v_error(c, rules->items[i], "a rule needs 'allow' or 'deny'");
                else if (rb.kinds > 1)
                    v_error(c, rules->items[i], "a rule has either 'allow' or 'deny', not both");
            }
            v_pop(c, m2);
            ep->n_rules++;
        }
        v_pop(c, mark);
    }
    if (deny_rules) {
        mark = v_push(c, ".deny_rules");
        if (v_seq(c, deny_rules, "a list of rules such as {method: POST, path: /x}") && nd == 0)
            v_error(c, deny_rules, "empty list (remove deny_rules if nothing is denied)");
        for (size_t i = 0; i < nd; i++) {
            struct rule_build rb = {.ep = ep, .r = &ep->rules[ep->n_rules]};
            size_t m2 = v_push(c, "[%zu]", i);
            rb.r->deny = true;
            rb.r->in_deny_rules = true;
            rb.r->src_index = (int)i;
            rule_body(c, deny_rules->items[i], &rb);
            v_pop(c, m2);
            ep->n_rules++;
        }
        v_pop(c, mark);
    }
    if (ep->proto == POLICY_PROTO_MCP)
        mcp_tool_conflicts(c, ep, rules, deny_rules);
    if (ep->proto == POLICY_PROTO_WEBSOCKET)
        ws_text_conflicts(c, ep, rules, deny_rules);
}
