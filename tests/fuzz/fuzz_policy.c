/* libFuzzer target: policy YAML loading (parser, validator, compiler).
 * Every input must either load or fail with diagnostics, without crashes,
 * leaks or sanitizer reports. A loaded policy is also queried once so the
 * compiled matchers run on whatever the fuzzer built. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct policy_diag diag = {0};
    struct policy *p = NULL;
    if (policy_load_buffer("fuzz.yaml", (const char *)data, size, &p, &diag) == 0) {
        static const char *const anc[] = {"/bin/sh", "/usr/bin/python3"};
        struct policy_query q = {.host = "api.example.com", .port = 443,
                                 .exe = "/usr/bin/curl", .ancestors = anc, .n_ancestors = 2};
        struct policy_decision d;
        policy_decide(p, &q, &d);
        if (d.allow && policy_endpoint_is_rest(d.endpoint))
            (void)policy_endpoint_access(d.endpoint);
        policy_unref(p);
    }
    policy_diag_free(&diag);
    return 0;
}
