/* Unit tests for L7 on request bodies: the GraphQL document parser, the
 * JSON-RPC parser, and the GraphQL / JSON-RPC / MCP decisions (OpenShell's
 * asserted cases re-expressed: aliases resolve to field names, root
 * fragments expand, several operations need operationName, hash-only
 * persisted queries, deny rules win, one denied batch element denies all,
 * client-sent responses are refused, tool names are checked). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/graphql.h"
#include "policy/jsonrpc.h"
#include "policy/policy.h"

static struct policy_gql_op g_op;

static int gql(const char *doc, const char *name)
{
    const char *why = NULL;
    int rc = policy_graphql_parse(doc, strlen(doc), name, &g_op, &why);
    if (rc < 0)
        assert_non_null(why);
    return rc;
}

static void test_graphql_parse(void **state)
{
    (void)state;
    assert_int_equal(gql("query Viewer { viewer { login } }", NULL), 0);
    assert_string_equal(g_op.type, "query");
    assert_string_equal(g_op.name, "Viewer");
    assert_int_equal(g_op.n_fields, 1);
    assert_string_equal(g_op.fields[0], "viewer");
    /* an alias never hides the field */
    assert_int_equal(gql("mutation M { safeAlias: volumeDelete(volumeId:\"x\") { id } }", "M"), 0);
    assert_string_equal(g_op.type, "mutation");
    assert_string_equal(g_op.fields[0], "volumeDelete");
    /* root fragments expand, fields sorted and distinct */
    assert_int_equal(gql("query Q { ...RootFields viewer } fragment RootFields on Query { viewer "
                         "repository(owner:\"o\", name:\"r\") { id } }", NULL), 0);
    assert_int_equal(g_op.n_fields, 2);
    assert_string_equal(g_op.fields[0], "repository");
    assert_string_equal(g_op.fields[1], "viewer");
    /* inline fragments at the root too; nested selections are not root fields */
    assert_int_equal(gql("{ ... on Query { a } ... @include(if: true) { b { c } } }", NULL), 0);
    assert_string_equal(g_op.type, "query");
    assert_int_equal(g_op.n_fields, 2);
    /* shorthand, variables, directives, every value kind, comments, commas, block strings */
    assert_int_equal(gql("# c\nquery Q($a: [Int!]! = [1, 2], $b: In = {x: -1.5e3, y: \"s\\u00e9\"})"
                         " @d(x: $a) { f(a: $a, b: null, c: ENUM, d: true, e: \"\"\"blk \\\"\"\" "
                         "x\"\"\") @skip(if: false), g }", NULL), 0);
    assert_int_equal(g_op.n_fields, 2);
    /* several operations: operationName selects, else an error */
    assert_int_equal(gql("query A { viewer { login } } query B { rateLimit { limit } }", NULL),
                     -EINVAL);
    assert_int_equal(gql("query A { viewer { login } } query B { rateLimit { limit } }", "B"), 0);
    assert_string_equal(g_op.fields[0], "rateLimit");
    assert_int_equal(gql("query A { a }", "Nope"), -EINVAL);
    /* a fragment cycle terminates */
    assert_int_equal(gql("query { ...F } fragment F on Q { a ...G } fragment G on Q { b ...F }",
                         NULL), 0);
    assert_int_equal(g_op.n_fields, 2);
    /* refused */
    const char *bad[] = {"", "   ", "{", "{}", "{ a", "query { ...Missing }", "type Q { a: Int }",
                         "{ a(x: ) }", "{ a(x: $) }", "{ a(x: \"open) }", "{ a(x: 1.) }",
                         "{ a(x: 01x) }", "fragment on on Q { a }", "{ a } }",
                         "query ($a: Int = $b) { a }", "{ a(x: \"\\q\") }", "{ .. a }"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gql(bad[i], NULL) != -EINVAL)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        assert_int_equal(gql(bad[i], NULL), -EINVAL);
    }
    /* limits: nesting and field count */
    char deep[4096] = "";
    for (int i = 0; i < 200; i++)
        strcat(deep, "{ a ");
    assert_int_equal(gql(deep, NULL), -EINVAL);
    char many[8192] = "{";
    for (int i = 0; i < 70; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), " f%d", i);
    strcat(many, " }");
    assert_int_equal(gql(many, NULL), -EINVAL);
}

static struct policy_rpc_msg g_msg;

static int rpc(const char *body)
{
    const char *why = NULL;
    return policy_jsonrpc_parse(body, strlen(body), &g_msg, &why);
}

static void test_jsonrpc_parse(void **state)
{
    (void)state;
    assert_int_equal(rpc("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\","
                         "\"params\":{\"name\":\"search\",\"arguments\":{}}}"), 0);
    assert_false(g_msg.batch);
    assert_int_equal(g_msg.n, 1);
    assert_string_equal(g_msg.calls[0].method, "tools/call");
    assert_string_equal(g_msg.calls[0].tool, "search");
    assert_string_equal(g_msg.calls[0].id, "7");
    assert_int_equal(rpc("[{\"jsonrpc\":\"2.0\",\"method\":\"a\"},{\"jsonrpc\":\"2.0\",\"id\":\"x\","
                         "\"result\":{}}]"), 0);
    assert_true(g_msg.batch);
    assert_true(g_msg.calls[0].notification);
    assert_true(g_msg.calls[1].response);
    assert_string_equal(g_msg.calls[1].id, "\"x\"");
    const char *bad[] = {"", "{", "[]", "7", "{\"jsonrpc\":\"1.0\",\"method\":\"a\"}",
                         "{\"jsonrpc\":\"2.0\"}", "{\"jsonrpc\":\"2.0\",\"method\":5}",
                         "{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"method\":\"b\"}",
                         "{\"jsonrpc\":\"2.0\",\"method\":\"a\\u0000b\"}",
                         "{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":3}", "[1]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rpc(bad[i]), -EINVAL);
}

static const char body_policy[] =
    "version: 1\n"
    "network_policies:\n"
    "  svc:\n"
    "    binaries: [{path: /usr/bin/curl}]\n"
    "    endpoints:\n"
    "      - host: gh.example.com\n"
    "        port: 443\n"
    "        path: /graphql\n"
    "        protocol: graphql\n"
    "        persisted_queries: allow_registered\n"
    "        graphql_persisted_queries:\n"
    "          abc123: {operation_type: query, operation_name: Viewer, fields: [viewer]}\n"
    "          bad999: {operation_type: mutation, fields: [deleteRepository]}\n"
    "        rules:\n"
    "          - allow: {operation_type: query, fields: [viewer, \"repo*\"]}\n"
    "          - allow: {operation_type: mutation, operation_name: \"Issue*\", fields: [createIssue]}\n"
    "        deny_rules:\n"
    "          - {operation_type: query, fields: [\"secret*\"]}\n"
    "      - host: gh.example.com\n"
    "        port: 443\n"
    "        protocol: rest\n"
    "        access: read-only\n"
    "      - host: gql-ro.example.com\n"
    "        port: 443\n"
    "        protocol: graphql\n"
    "        access: read-write\n"
    "        graphql_max_body_bytes: 64\n"
    "        deny_rules:\n"
    "          - {operation_type: mutation, fields: [deleteRepository]}\n"
    "      - host: rpc.example.com\n"
    "        port: 443\n"
    "        protocol: json-rpc\n"
    "        rules:\n"
    "          - allow: {method: initialize}\n"
    "          - allow: {method: reports.search}\n"
    "      - host: rpc-all.example.com\n"
    "        port: 443\n"
    "        protocol: json-rpc\n"
    "        rules: [{allow: {method: \"*\"}}]\n"
    "        deny_rules: [{method: reports.delete}]\n"
    "      - host: mcp.example.com\n"
    "        port: 443\n"
    "        protocol: mcp\n"
    "        rules:\n"
    "          - allow: {method: initialize}\n"
    "          - allow: {method: notifications/initialized}\n"
    "          - allow: {method: \"tools/list\"}\n"
    "          - allow: {method: tools/call, tool: search_web}\n"
    "          - allow: {method: tools/call, params: {name: {any: [create_issue, \"list_*\"]}}}\n"
    "        deny_rules:\n"
    "          - {method: tools/call, tool: list_secrets}\n"
    "      - host: mcp-any.example.com\n"
    "        port: 443\n"
    "        protocol: mcp\n"
    "        mcp: {allow_all_known_mcp_methods: true, strict_tool_names: false}\n"
    "        deny_rules:\n"
    "          - {method: tools/call, tool: send_email}\n";

static struct policy *g_pol;
static struct policy_l7_result g_r;

static int setup(void **state)
{
    struct policy_diag d = {0};
    (void)state;
    int rc = policy_load_buffer("b.yaml", body_policy, strlen(body_policy), &g_pol, &d);
    for (size_t i = 0; i < d.n; i++)
        fprintf(stderr, "%s\n", d.lines[i]);
    policy_diag_free(&d);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    policy_unref(g_pol);
    return 0;
}

static const struct policy_endpoint *ep_of(const char *host)
{
    struct policy_decision d;
    struct policy_query q = {.host = host, .port = 443, .exe = "/usr/bin/curl"};
    policy_decide(g_pol, &q, &d);
    assert_true(d.allow);
    return d.endpoint;
}

static bool post(const char *host, const char *target, const char *json)
{
    assert_int_equal(policy_l7_check(ep_of(host), "POST", target, &g_r), 0);
    if (!g_r.need_body)
        return g_r.allow;
    assert_false(g_r.allow);
    assert_int_equal(g_r.by, POLICY_L7_BY_BODY);
    assert_int_equal(policy_l7_check_body(json, strlen(json), true, &g_r), 0);
    return g_r.allow;
}

static bool get(const char *host, const char *target)
{
    assert_int_equal(policy_l7_check(ep_of(host), "GET", target, &g_r), 0);
    return g_r.allow;
}

static void test_graphql_decisions(void **state)
{
    (void)state;
    const char *gh = "gh.example.com";
    assert_true(post(gh, "/graphql", "{\"query\":\"query { viewer { login } }\"}"));
    assert_true(post(gh, "/graphql", "{\"query\":\"{ repository(name: \\\"x\\\") { id } }\"}"));
    /* every root field must be allowed */
    assert_false(post(gh, "/graphql", "{\"query\":\"{ viewer organization { id } }\"}"));
    assert_int_equal(g_r.by, POLICY_L7_BY_NO_RULE);
    assert_int_equal(g_r.shape, POLICY_L7_SHAPE_GRAPHQL);
    /* deny wins, any matching root field */
    assert_false(post(gh, "/graphql", "{\"query\":\"{ viewer secretKeys }\"}"));
    assert_int_equal(g_r.by, POLICY_L7_BY_DENY_RULE);
    /* operation name glob */
    assert_true(post(gh, "/graphql", "{\"query\":\"mutation IssueNew { createIssue { id } }\"}"));
    assert_false(post(gh, "/graphql", "{\"query\":\"mutation Other { createIssue { id } }\"}"));
    assert_false(post(gh, "/graphql", "{\"query\":\"mutation { createIssue { id } }\"}"));
    /* an alias does not launder a mutation */
    assert_false(post(gh, "/graphql", "{\"query\":\"mutation IssueX { createIssue: "
                                      "deleteRepository { id } }\"}"));
    /* batches: every operation */
    assert_true(post(gh, "/graphql", "[{\"query\":\"{ viewer }\"},{\"query\":\"{ repos }\"}]"));
    assert_false(post(gh, "/graphql", "[{\"query\":\"{ viewer }\"},{\"query\":\"{ secretX }\"}]"));
    /* persisted queries: registered hashes and ids map to their operation */
    assert_true(post(gh, "/graphql", "{\"operationName\":\"Viewer\",\"extensions\":"
                                     "{\"persistedQuery\":{\"version\":1,\"sha256Hash\":\"abc123\"}}}"));
    assert_false(post(gh, "/graphql", "{\"extensions\":{\"persistedQuery\":{\"sha256Hash\":"
                                      "\"unknown\"}}}"));
    assert_false(post(gh, "/graphql", "{\"id\":\"bad999\"}"));
    /* GET carries the document in the query string */
    assert_true(get(gh, "/graphql?query=%7Bviewer%7Blogin%7D%7D"));
    assert_false(get(gh, "/graphql?query=%7BsecretA%7D"));
    assert_false(get(gh, "/graphql?query=%7Bviewer%7D&query=%7BsecretA%7D"));
    assert_false(get(gh, "/graphql?id=abc123&queryId=abc123"));
    assert_true(get(gh, "/graphql?extensions=%7B%22persistedQuery%22%3A%7B%22sha256Hash%22%3A"
                        "%22abc123%22%7D%7D"));
    /* broken bodies */
    assert_false(post(gh, "/graphql", "not json"));
    assert_int_equal(g_r.by, POLICY_L7_BY_BAD_BODY);
    assert_false(post(gh, "/graphql", "{\"query\":\"{ viewer\"}"));
    assert_false(post(gh, "/graphql", "{}"));
    assert_false(post(gh, "/graphql", "[]"));
    /* the path selects the REST sibling, with its own access preset */
    assert_true(get(gh, "/repos/x"));
    assert_ptr_not_equal(g_r.endpoint, ep_of(gh));
    assert_false(post(gh, "/repos/x", "{}"));
    assert_int_equal(g_r.by, POLICY_L7_BY_ACCESS);
    /* access presets: read-write = query + mutation; size limit */
    assert_true(post("gql-ro.example.com", "/", "{\"query\":\"mutation { a }\"}"));
    assert_false(post("gql-ro.example.com", "/", "{\"query\":\"subscription { a }\"}"));
    assert_false(post("gql-ro.example.com", "/", "{\"query\":\"mutation { deleteRepository }\"}"));
    assert_int_equal(policy_l7_check(ep_of("gql-ro.example.com"), "POST", "/", &g_r), 0);
    assert_int_equal(g_r.max_body, 64);
    assert_int_equal(policy_l7_check_body("{}", 2, false, &g_r), 0);
    assert_false(g_r.allow);
    assert_non_null(strstr(g_r.detail, "larger than 64 bytes"));
    assert_false(get("gql-ro.example.com", "/?query=%7Bb"));
    assert_int_equal(policy_l7_check(ep_of("gql-ro.example.com"), "PUT", "/", &g_r), 0);
    assert_false(g_r.allow);
    assert_false(g_r.need_body);
}

static void test_jsonrpc_decisions(void **state)
{
    (void)state;
    const char *h = "rpc.example.com";
    assert_true(post(h, "/rpc", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}"));
    assert_false(post(h, "/rpc", "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"reports.delete\"}"));
    assert_int_equal(g_r.shape, POLICY_L7_SHAPE_JSONRPC);
    assert_string_equal(g_r.rpc_id, "42");
    assert_non_null(strstr(g_r.hint, "{allow: {method: reports.delete}}"));
    /* batches: one denied element denies the whole request */
    assert_true(post(h, "/rpc", "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"},"
                                "{\"jsonrpc\":\"2.0\",\"method\":\"reports.search\"}]"));
    assert_false(post(h, "/rpc", "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"},"
                                 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"reports.drop\"}]"));
    assert_non_null(strstr(g_r.detail, "batch element 1"));
    /* a response sent by the client is refused */
    assert_false(post(h, "/rpc", "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}"));
    /* exact method names: no prefix or case games */
    assert_false(post(h, "/rpc", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Initialize\"}"));
    assert_false(post(h, "/rpc", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
                                 "\"method\":\"reports.delete\"}"));
    assert_false(get(h, "/rpc"));
    /* "*" with a deny rule */
    assert_true(post("rpc-all.example.com", "/", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}"));
    assert_false(post("rpc-all.example.com", "/",
                      "{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"method\":\"reports.delete\"}"));
    assert_string_equal(g_r.rpc_id, "\"q\"");
    assert_int_equal(g_r.by, POLICY_L7_BY_DENY_RULE);
}

static void test_mcp_decisions(void **state)
{
    (void)state;
    const char *h = "mcp.example.com";
#define CALL(tool) "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"" tool "\"}}"
    assert_true(post(h, "/mcp", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}"));
    assert_true(post(h, "/mcp", "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}"));
    assert_true(post(h, "/mcp", CALL("search_web")));
    assert_true(post(h, "/mcp", CALL("create_issue")));
    assert_true(post(h, "/mcp", CALL("list_issues")));
    assert_false(post(h, "/mcp", CALL("list_secrets")));
    assert_int_equal(g_r.by, POLICY_L7_BY_DENY_RULE);
    assert_false(post(h, "/mcp", CALL("execute_code")));
    assert_non_null(strstr(g_r.hint, "{allow: {method: tools/call, tool: execute_code}}"));
    assert_false(post(h, "/mcp", CALL("bad name!")));
    assert_int_equal(g_r.by, POLICY_L7_BY_BAD_BODY);
    assert_false(post(h, "/mcp", "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\"}"));
    assert_false(post(h, "/mcp", "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"resources/read\"}"));
    assert_false(post(h, "/mcp", "[" CALL("search_web") "," CALL("list_secrets") "]"));
    /* GET (the server's SSE stream) carries no call: allowed only as a bodyless
     * event-stream receiver (the proxy checks the head); DELETE is refused, as in
     * OpenShell */
    assert_true(get(h, "/mcp"));
    assert_true(g_r.sse_only);
    assert_true(policy_l7_sse_request_ok("text/event-stream", 17, false));
    assert_true(policy_l7_sse_request_ok("application/json, Text/Event-Stream;q=0.9", 42, false));
    assert_false(policy_l7_sse_request_ok("text/event-stream", 17, true));
    assert_false(policy_l7_sse_request_ok("application/json", 16, false));
    assert_false(policy_l7_sse_request_ok("text/event-streamx", 18, false));
    assert_false(policy_l7_sse_request_ok(NULL, 0, false));
    assert_int_equal(policy_l7_check(ep_of(h), "DELETE", "/mcp", &g_r), 0);
    assert_false(g_r.allow);
    /* the method profile: known methods, every tool but the denied one */
    const char *a = "mcp-any.example.com";
    assert_true(post(a, "/", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\"}"));
    assert_true(post(a, "/", CALL("any tool name")));
    assert_false(post(a, "/", CALL("send_email")));
    assert_false(post(a, "/", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"vendor/x\"}"));
#undef CALL
}

static void test_body_load_errors(void **state)
{
    (void)state;
#define EPB "version: 1\nnetwork_policies:\n  a:\n    binaries: [{path: /usr/bin/curl}]\n" \
            "    endpoints:\n      - host: a.example.com\n        port: 443\n"
    static const struct {
        const char *yaml, *needle;
    } cases[] = {
        {EPB "        protocol: json-rpc\n        access: full\n",
         "access presets are not valid for protocol: json-rpc"},
        {EPB "        protocol: json-rpc\n", "protocol: json-rpc needs rules"},
        {EPB "        protocol: json-rpc\n        rules: [{allow: {method: a, params: {x: 1}}}]\n",
         "params matchers are not supported for protocol: json-rpc"},
        {EPB "        protocol: mcp\n        rules: [{allow: {method: \"*\"}}]\n",
         "'*' is not an MCP method"},
        {EPB "        protocol: mcp\n        rules: [{allow: {method: \"res*\"}}]\n",
         "globs are allowed only in the tools/ family"},
        {EPB "        protocol: mcp\n        rules: [{allow: {method: initialize, tool: x}}]\n",
         "tool and params.name need method: tools/call"},
        {EPB "        protocol: mcp\n        mcp: {strict_tool_names: false}\n"
             "        rules: [{allow: {method: tools/call, tool: \"a*\"}}]\n",
         "wildcard tool matcher 'a*' needs mcp.strict_tool_names: true"},
        {EPB "        protocol: mcp\n        rules: [{allow: {method: tools/call, params: "
             "{arguments: 1}}}]\n", "params.arguments is not supported"},
        {EPB "        protocol: graphql\n        rules: [{allow: {operation_type: read}}]\n",
         "'read' is not allowed (allowed: query, mutation, subscription, *)"},
        {EPB "        protocol: graphql\n        rules: [{allow: {method: GET, path: /}}]\n",
         "method is not a field of a protocol: graphql rule"},
        {EPB "        protocol: graphql\n        access: full\n        persisted_queries: "
             "allow_registered\n", "allow_registered needs graphql_persisted_queries"},
        {EPB "        protocol: rest\n        access: full\n        mcp: {max_body_bytes: 10}\n",
         "mcp options are only valid for protocol: mcp"},
        {EPB "        protocol: graphql\n        access: full\n        graphql_max_body_bytes: 0\n",
         "0 is out of range"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policy_diag d = {0};
        struct policy *p = NULL;
        int rc = policy_load_buffer("b.yaml", cases[i].yaml, strlen(cases[i].yaml), &p, &d);
        bool found = false;
        for (size_t j = 0; j < d.n; j++)
            found = found || strstr(d.lines[j], cases[i].needle);
        if (rc != -EINVAL || !found) {
            fprintf(stderr, "case %zu: expected %s (rc=%d)\n", i, cases[i].needle, rc);
            for (size_t j = 0; j < d.n; j++)
                fprintf(stderr, "  | %s\n", d.lines[j]);
        }
        assert_int_equal(rc, -EINVAL);
        assert_true(found);
        policy_diag_free(&d);
    }
#undef EPB
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graphql_parse),
        cmocka_unit_test(test_jsonrpc_parse),
        cmocka_unit_test(test_graphql_decisions),
        cmocka_unit_test(test_jsonrpc_decisions),
        cmocka_unit_test(test_mcp_decisions),
        cmocka_unit_test(test_body_load_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
