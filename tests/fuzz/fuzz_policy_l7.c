/* libFuzzer target: L7 request evaluation (target split, path
 * normalization, query decoding, rule matching) on peer-controlled input.
 * Input: "METHOD TARGET". Besides the sanitizers, checks the invariant
 * that an allowed request's normalized path is canonical. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char policy_yaml[] =
    "version: 1\n"
    "network_policies:\n"
    "  api:\n"
    "    endpoints:\n"
    "      - host: api.example.com\n"
    "        port: 443\n"
    "        protocol: rest\n"
    "        rules:\n"
    "          - allow: {method: GET, path: \"/allowed/**\"}\n"
    "          - allow: {method: POST, path: \"/r/*/i\", query: {l: \"b*\", p: {any: [\"1*\"]}}}\n"
    "          - deny: {method: \"*\", path: \"/allowed/secret/**\"}\n"
    "          - deny: {method: DELETE, path: \"/**\", query: {force: \"true\"}}\n"
    "          - allow: {method: \"*\", path: \"/**/x/*.json\"}\n"
    "    binaries: [{path: /usr/bin/curl}]\n";

static const struct policy_endpoint *g_ep;

static void init(void)
{
    static struct policy *p;
    struct policy_decision d;
    struct policy_query q = {.host = "api.example.com", .port = 443, .exe = "/usr/bin/curl"};
    if (policy_load_buffer("l7.yaml", policy_yaml, strlen(policy_yaml), &p, NULL) != 0)
        abort();
    policy_decide(p, &q, &d);
    if (!d.allow)
        abort();
    g_ep = d.endpoint;
}

static void check_canonical(const char *path)
{
    if (strcmp(path, "*") == 0)
        return;
    if (path[0] != '/' || strstr(path, "//") || strstr(path, "/./") || strstr(path, "/../") ||
        strstr(path, "%2F") || strstr(path, "%2E") || strstr(path, "%00") || strchr(path, '\\'))
        __builtin_trap();
    size_t l = strlen(path);
    if ((l >= 2 && strcmp(path + l - 2, "/.") == 0) || (l >= 3 && strcmp(path + l - 3, "/..") == 0))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct policy_l7_result r;
    char buf[POLICY_L7_QUERY_MAX + 64];
    if (!g_ep)
        init();
    if (size >= sizeof(buf))
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *sp = strchr(buf, ' ');
    if (!sp)
        return 0;
    *sp = '\0';
    if (policy_l7_check(g_ep, buf, sp + 1, &r) != 0)
        __builtin_trap();
    if (r.allow)
        check_canonical(r.path);
    return 0;
}
