/* Unit tests for server/netpolicy (OpenSandbox's networkPolicy as a cordon
 * policy) and server/sbxpolicy (the policy a create asks for). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy/policy.h"
#include "server/netpolicy.h"
#include "server/sbxpolicy.h"

static const uint16_t PORTS[] = {80, 443};
static const char *const IPS[] = {"10.0.0.0/8"};
static const struct netpolicy_opts OPTS = {PORTS, 2, IPS, 1};

static int tr(const char *json, char **out, char *err)
{
    json_error_t e;
    json_t *j = json_loads(json, 0, &e);
    assert_non_null(j);
    int r = netpolicy_translate(j, &OPTS, out, err, 512);
    json_decref(j);
    return r;
}

static void test_translate_allow(void **st)
{
    char *y = NULL, err[512];
    assert_int_equal(tr("{\"defaultAction\":\"deny\",\"egress\":[{\"action\":\"allow\","
                        "\"target\":\"PyPI.org.\"},{\"action\":\"allow\",\"target\":"
                        "\"*.example.com\"}]}", &y, err), 0);
    assert_non_null(strstr(y, "egress_0000:"));
    assert_non_null(strstr(y, "host: \"pypi.org\""));
    assert_non_null(strstr(y, "host: \"**.example.com\""));
    assert_non_null(strstr(y, "ports: [80, 443]"));
    assert_non_null(strstr(y, "allowed_ips: [\"10.0.0.0/8\"]"));
    free(y);
    /* absent defaultAction is deny; no rules: nothing allowed */
    assert_int_equal(tr("{}", &y, err), 0);
    assert_string_equal(y, "network_policies: {}\n");
    free(y);
    /* a deny that covers a later allow drops it; a later deny is the default */
    assert_int_equal(tr("{\"egress\":[{\"action\":\"deny\",\"target\":\"*.example.com\"},"
                        "{\"action\":\"allow\",\"target\":\"a.b.example.com\"},"
                        "{\"action\":\"allow\",\"target\":\"ok.test\"},"
                        "{\"action\":\"deny\",\"target\":\"ok.test\"}]}", &y, err), 0);
    assert_null(strstr(y, "example.com"));
    assert_non_null(strstr(y, "egress_0002:"));
    free(y);
}

static void test_translate_refused(void **st)
{
    char *y = NULL, err[512];
    assert_int_equal(tr("{\"defaultAction\":\"allow\"}", &y, err), -EINVAL);
    assert_non_null(strstr(err, "networkPolicy.defaultAction"));
    assert_int_equal(tr("{\"defaultAction\":\"maybe\"}", &y, err), -EINVAL);
    assert_int_equal(tr("{\"egres\":[]}", &y, err), -EINVAL);
    assert_non_null(strstr(err, "networkPolicy.egres"));
    assert_int_equal(tr("{\"egress\":[{\"action\":\"allow\",\"target\":\"10.1.2.3\"}]}", &y,
                        err), -EINVAL);
    assert_non_null(strstr(err, "networkPolicy.egress[0].target"));
    assert_non_null(strstr(err, "IP"));
    assert_int_equal(tr("{\"egress\":[{\"action\":\"allow\",\"target\":\"10.0.0.0/8\"}]}", &y,
                        err), -EINVAL);
    assert_int_equal(tr("{\"egress\":[{\"action\":\"allow\",\"target\":\"*.com\"}]}", &y,
                        err), -EINVAL);
    assert_int_equal(tr("{\"egress\":[{\"action\":\"allow\",\"target\":\"a..b\"}]}", &y,
                        err), -EINVAL);
    assert_int_equal(tr("{\"egress\":[{\"action\":\"allow\",\"target\":\"a b.com\"}]}", &y,
                        err), -EINVAL);
    assert_int_equal(tr("{\"egress\":[{\"action\":\"allow\"}]}", &y, err), -EINVAL);
    assert_non_null(strstr(err, "egress[0].target"));
    assert_int_equal(tr("{\"egress\":[{\"action\":\"permit\",\"target\":\"a.com\"}]}", &y,
                        err), -EINVAL);
    assert_non_null(strstr(err, "egress[0].action"));
    assert_int_equal(tr("{\"egress\":[1]}", &y, err), -EINVAL);
    /* a deny carved out of a later wildcard allow cannot be an allow list */
    assert_int_equal(tr("{\"egress\":[{\"action\":\"deny\",\"target\":\"bad.example.com\"},"
                        "{\"action\":\"allow\",\"target\":\"*.example.com\"}]}", &y, err),
                     -EINVAL);
    assert_non_null(strstr(err, "networkPolicy.egress[0]"));
    assert_non_null(strstr(err, "egress[1]"));
    assert_null(y);
}

static void splice(const char *base, const char *want)
{
    char *out = NULL, err[512];
    size_t n;
    assert_int_equal(netpolicy_splice(base, strlen(base), "network_policies: {}\n", &out, &n,
                                      err, sizeof(err)), 0);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    free(out);
}

static void test_splice(void **st)
{
    splice("version: 1\nnetwork_policies:\n  a:\n    endpoints: []\nlandlock: {}\n",
           "version: 1\nlandlock: {}\nnetwork_policies: {}\n");
    splice("version: 1\nnetwork_policies: {x: 1}\nlandlock: {}\n",
           "version: 1\n\nlandlock: {}\nnetwork_policies: {}\n");
    splice("version: 1\nlandlock: {}\nnetwork_policies:\n  a: 1\n",
           "version: 1\nlandlock: {}\nnetwork_policies: {}\n");
    splice("version: 1", "version: 1\nnetwork_policies: {}\n");
    char *out = NULL, err[512];
    size_t n;
    assert_int_equal(netpolicy_splice("{version: 1}", 12, "x", &out, &n, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(netpolicy_splice("a: [", 4, "x", &out, &n, err, sizeof(err)), -EINVAL);
    assert_int_equal(netpolicy_splice("a: &x 1\nb: *x\n", 14, "x", &out, &n, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(netpolicy_rule_of("p:1:2: error: network_policies.egress_0012.endpoints[0]"),
                     12);
    assert_int_equal(netpolicy_rule_of("p:1:2: error: network_policies.other"), -1);
}

static void test_sbxpolicy(void **st)
{
    char dir[] = "/tmp/cordon-ut-XXXXXX", path[64], err[768], *out = NULL;
    size_t len = 0;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/base.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("version: 1\nnetwork_policies: {}\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/named.yaml", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("version: 1\nlandlock:\n  compatibility: best_effort\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/base.yaml", dir);
    struct sbxpolicy_cfg cfg = {.base_path = path, .dir = dir, .np = OPTS};
    json_error_t e;
    json_t *b = json_loads("{\"image\": {}}", 0, &e);
    assert_int_equal(sbxpolicy_for_request(&cfg, b, &out, &len, err, sizeof(err)), 0);
    assert_null(out);
    json_decref(b);
    b = json_loads("{\"networkPolicy\": {\"egress\": [{\"action\": \"allow\", \"target\": "
                   "\"api.example.com\"}]}}", 0, &e);
    assert_int_equal(sbxpolicy_for_request(&cfg, b, &out, &len, err, sizeof(err)), 0);
    assert_non_null(strstr(out, "api.example.com"));
    struct policy *p = NULL;
    assert_int_equal(policy_load_buffer("t", out, len, &p, NULL), 0);
    assert_int_equal(policy_n_entries(p), 1);
    policy_unref(p);
    free(out);
    out = NULL;
    json_decref(b);
    b = json_loads("{\"extensions\": {\"cordon.io/policy\": \"named\"}}", 0, &e);
    assert_int_equal(sbxpolicy_for_request(&cfg, b, &out, &len, err, sizeof(err)), 0);
    assert_non_null(strstr(out, "best_effort"));
    free(out);
    out = NULL;
    json_decref(b);
    b = json_loads("{\"extensions\": {\"cordon.io/policy\": \"../etc/x\"}}", 0, &e);
    assert_int_equal(sbxpolicy_for_request(&cfg, b, &out, &len, err, sizeof(err)), -EINVAL);
    json_decref(b);
    b = json_loads("{\"extensions\": {\"cordon.io/policy\": \"nosuch\"}}", 0, &e);
    assert_int_equal(sbxpolicy_for_request(&cfg, b, &out, &len, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "nosuch"));
    json_decref(b);
    b = json_loads("{\"extensions\": {\"cordon.io/policy-inline\": \"version: 2\\n\"}}", 0, &e);
    assert_int_equal(sbxpolicy_for_request(&cfg, b, &out, &len, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "extensions.cordon.io/policy-inline:1:"));
    json_decref(b);
    b = json_loads("{\"extensions\": {\"cordon.io/policy-inline\": \"version: 1\\n\", "
                   "\"cordon.io/policy\": \"named\"}}", 0, &e);
    assert_int_equal(sbxpolicy_for_request(&cfg, b, &out, &len, err, sizeof(err)), -EINVAL);
    json_decref(b);
    assert_null(out);
    snprintf(path, sizeof(path), "%s/named.yaml", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/base.yaml", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translate_allow),
        cmocka_unit_test(test_translate_refused),
        cmocka_unit_test(test_splice),
        cmocka_unit_test(test_sbxpolicy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
