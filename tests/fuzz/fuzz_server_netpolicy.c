/* libFuzzer: OpenSandbox's networkPolicy translated into a cordon policy
 * (server/netpolicy): the input is tried as a networkPolicy JSON object
 * (translated, spliced into a base policy and loaded by the policy loader)
 * and as a base policy YAML for the splice. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "server/netpolicy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char BASE[] = "version: 1\nnetwork_policies:\n  x:\n    endpoints: []\n"
                           "landlock:\n  compatibility: best_effort\n";

static void load(const char *text, size_t len)
{
    struct policy *p = NULL;
    if (policy_load_buffer("fuzz", text, len, &p, NULL) == 0)
        policy_unref(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint16_t ports[] = {80, 443};
    static const char *const ips[] = {"10.0.0.0/8"};
    const struct netpolicy_opts o = {ports, 2, ips, 1};
    char err[512], *block = NULL, *out = NULL;
    size_t n;
    json_error_t e;
    json_t *j = json_loadb((const char *)data, size, 0, &e);
    if (j && netpolicy_translate(j, &o, &block, err, sizeof(err)) == 0) {
        if (netpolicy_splice(BASE, sizeof(BASE) - 1, block, &out, &n, err, sizeof(err)) == 0) {
            load(out, n);
            free(out);
        }
        free(block);
    }
    json_decref(j);
    if (netpolicy_splice((const char *)data, size, "network_policies: {}\n", &out, &n, err,
                         sizeof(err)) == 0)
        free(out);
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
        (void)netpolicy_rule_of(s);
        free(s);
    }
    return 0;
}
