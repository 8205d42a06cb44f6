/* libFuzzer target: JSON-RPC / MCP and GraphQL-over-HTTP request bodies
 * through the whole body decision (policy_l7_check_body: jansson parse,
 * batch walk, method/tool/operation matching). The first byte picks the
 * endpoint (MCP, JSON-RPC or GraphQL); the rest is the body. Checks that
 * every call returns a consistent result (allowed means no reason code). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char policy_yaml[] =
    "version: 1\n"
    "network_policies:\n"
    "  svc:\n"
    "    binaries: [{path: /usr/bin/curl}]\n"
    "    endpoints:\n"
    "      - host: mcp.example.com\n"
    "        port: 443\n"
    "        protocol: mcp\n"
    "        rules:\n"
    "          - allow: {method: initialize}\n"
    "          - allow: {method: \"tools/*\"}\n"
    "        deny_rules: [{method: tools/call, tool: \"rm_*\"}]\n"
    "      - host: rpc.example.com\n"
    "        port: 443\n"
    "        protocol: json-rpc\n"
    "        rules: [{allow: {method: a}}, {allow: {method: b}}]\n"
    "      - host: gql.example.com\n"
    "        port: 443\n"
    "        protocol: graphql\n"
    "        persisted_queries: allow_registered\n"
    "        graphql_persisted_queries: {h1: {operation_type: query, fields: [a]}}\n"
    "        rules: [{allow: {operation_type: query, fields: [\"a*\"]}}]\n"
    "        deny_rules: [{operation_type: \"*\", fields: [secret]}]\n";

static const struct policy_endpoint *g_ep[3];

static void init(void)
{
    static struct policy *p;
    static const char *const hosts[] = {"mcp.example.com", "rpc.example.com", "gql.example.com"};
    if (policy_load_buffer("f.yaml", policy_yaml, strlen(policy_yaml), &p, NULL) != 0)
        abort();
    for (int i = 0; i < 3; i++) {
        struct policy_decision d;
        struct policy_query q = {.host = hosts[i], .port = 443, .exe = "/usr/bin/curl"};
        policy_decide(p, &q, &d);
        if (!d.allow)
            abort();
        g_ep[i] = d.endpoint;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct policy_l7_result r;
    if (!g_ep[0])
        init();
    if (size < 1)
        return 0;
    const struct policy_endpoint *ep = g_ep[data[0] % 3];
    if (policy_l7_check(ep, "POST", "/", &r) != 0 || !r.need_body)
        abort();
    if (policy_l7_check_body((const char *)data + 1, size - 1, true, &r) != 0)
        abort();
    if (r.allow && r.reason_code)
        abort();
    return 0;
}
