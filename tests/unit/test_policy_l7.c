/* Unit tests for policy_l7_check: path normalization attacks, deny before
 * allow, query matching, access presets, hints, and refusal of anything
 * that cannot be normalized. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"

static const char rules_policy[] =
    "version: 1\n"
    "network_policies:\n"
    "  api:\n"
    "    endpoints:\n"
    "      - host: api.example.com\n"
    "        port: 443\n"
    "        protocol: rest\n"
    "        rules:\n"
    "          - allow: {method: GET, path: \"/allowed/**\"}\n"
    "          - allow:\n"
    "              method: POST\n"
    "              path: \"/repos/*/issues\"\n"
    "              query: {labels: \"bug*\", per_page: {any: [\"1*\", \"5*\"]}}\n"
    "          - deny: {method: \"*\", path: \"/allowed/secret/**\"}\n"
    "          - deny: {method: DELETE, path: \"/**\", query: {force: \"true\"}}\n"
    "          - allow: {method: DELETE, path: \"/allowed/**\"}\n"
    "          - allow: {method: GET, path: \"/v/*\", query: {ver: {any: [\"v1.*\"]}}}\n"
    "          - allow: {method: PUT, path: \"/files/my%20doc\"}\n"
    "      - host: ro.example.com\n"
    "        port: 443\n"
    "        protocol: rest\n"
    "        access: read-only\n"
    "      - host: rw.example.com\n"
    "        port: 443\n"
    "        protocol: rest\n"
    "        access: read-write\n"
    "      - host: full.example.com\n"
    "        port: 443\n"
    "        protocol: rest\n"
    "        access: full\n"
    "      - host: any.example.com\n"
    "        port: 443\n"
    "        protocol: rest\n"
    "        rules: [{allow: {method: OPTIONS, path: \"**\"}}]\n"
    "      - host: raw.example.com\n"
    "        port: 443\n"
    "    binaries: [{path: /usr/bin/curl}]\n";

static struct policy *g_pol;

static int setup(void **state)
{
    (void)state;
    struct policy_diag d = {0};
    int rc = policy_load_buffer("l7.yaml", rules_policy, strlen(rules_policy), &g_pol, &d);
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

static const struct policy_endpoint *ep_for(const char *host)
{
    struct policy_decision d;
    struct policy_query q = {.host = host, .port = 443, .exe = "/usr/bin/curl"};
    policy_decide(g_pol, &q, &d);
    assert_true(d.allow);
    return d.endpoint;
}

static struct policy_l7_result *check(const char *host, const char *method, const char *target)
{
    static struct policy_l7_result r;
    assert_int_equal(policy_l7_check(ep_for(host), method, target, &r), 0);
    return &r;
}

#define API "api.example.com"

static void expect_allow(const char *method, const char *target, const char *path, int rule)
{
    struct policy_l7_result *r = check(API, method, target);
    if (!r->allow)
        fprintf(stderr, "%s %s: %s\n", method, target, r->detail);
    assert_true(r->allow);
    assert_null(r->reason_code);
    assert_int_equal(r->by, POLICY_L7_BY_ALLOW_RULE);
    assert_string_equal(r->path, path);
    assert_int_equal(r->rule_index, rule);
}

static void expect_deny(const char *method, const char *target, enum policy_l7_by by,
                        const char *path)
{
    struct policy_l7_result *r = check(API, method, target);
    if (r->allow || r->by != by)
        fprintf(stderr, "%s %s: allow=%d by=%d %s\n", method, target, r->allow, r->by, r->detail);
    assert_false(r->allow);
    assert_ptr_equal(r->reason_code, POLICY_REASON_L7_DENIED);
    assert_string_equal(r->reason_code, "l7_denied");
    assert_int_equal(r->by, by);
    assert_string_equal(r->path, path);
}

/* The traversal family: each must be judged on the path the server sees. */
static void test_traversal(void **state)
{
    (void)state;
    expect_allow("GET", "/allowed/x", "/allowed/x", 0);
    expect_deny("GET", "/allowed/../admin", POLICY_L7_BY_NO_RULE, "/admin");
    expect_deny("GET", "/allowed/%2e%2e/admin", POLICY_L7_BY_NO_RULE, "/admin");
    expect_deny("GET", "/allowed/%2E%2e/admin", POLICY_L7_BY_NO_RULE, "/admin");
    expect_deny("GET", "/allowed/.%2e/admin", POLICY_L7_BY_NO_RULE, "/admin");
    expect_deny("GET", "//admin", POLICY_L7_BY_NO_RULE, "/admin");
    expect_allow("GET", "//allowed//x", "/allowed/x", 0);
    expect_allow("GET", "/allowed/./b", "/allowed/b", 0);
    expect_deny("GET", "/a/./b", POLICY_L7_BY_NO_RULE, "/a/b");
    expect_allow("GET", "/allowed/x/", "/allowed/x/", 0);
    expect_allow("GET", "/allowed/x/.", "/allowed/x/", 0);
    expect_allow("GET", "/allowed/a/b/..", "/allowed/a/", 0);
    /* a deny rule cannot be dodged by a detour either */
    expect_deny("GET", "/allowed/x/../secret/key", POLICY_L7_BY_DENY_RULE, "/allowed/secret/key");
    expect_deny("GET", "/allowed/%73ecret/key", POLICY_L7_BY_DENY_RULE, "/allowed/secret/key");
    expect_allow("GET", "/allowed/secret/../ok", "/allowed/ok", 0);
}

static void expect_bad(const char *method, const char *target, const char *why)
{
    struct policy_l7_result *r = check(API, method, target);
    if (r->allow || !strstr(r->detail, why))
        fprintf(stderr, "%s %s: %s\n", method, target, r->detail);
    assert_false(r->allow);
    assert_ptr_equal(r->reason_code, POLICY_REASON_L7_DENIED);
    assert_int_equal(r->by, POLICY_L7_BY_BAD_TARGET);
    assert_int_equal(r->rule_index, -1);
    assert_non_null(strstr(r->detail, why));
    assert_non_null(strstr(r->hint, "canonical request"));
}

/* What cannot be normalized is refused, whatever the rules say. */
static void test_not_normalizable(void **state)
{
    (void)state;
    expect_bad("GET", "/allowed%2Fx", "the request path contains an encoded slash (%2F; allowed only with allow_encoded_slash: true)");
    expect_bad("GET", "/allowed/a%2fb", "encoded slash");
    expect_bad("GET", "/allowed/x%00", "contains %00");
    expect_bad("GET", "/allowed/%zz", "has an invalid percent-encoding");
    expect_bad("GET", "/allowed/%2", "has an invalid percent-encoding");
    expect_bad("GET", "/allowed/%", "has an invalid percent-encoding");
    expect_bad("GET", "/..", "escapes the root");
    expect_bad("GET", "/allowed/../../x", "escapes the root");
    expect_bad("GET", "/allowed/..;/admin", "dot segment with parameters");
    expect_bad("GET", "/allowed/.;x/admin", "dot segment with parameters");
    expect_bad("GET", "/allowed\\..\\admin", "contains a backslash");
    expect_bad("GET", "/allowed/%5C..%5Cadmin", "encoded backslash");
    expect_bad("GET", "/allowed/a b", "space or a control character");
    expect_bad("GET", "/allowed/a\tb", "space or a control character");
    expect_bad("GET", "/allowed/\xc3\xa9", "non-ASCII");
    expect_bad("GET", "/allowed/x#frag", "contains '#'");
    expect_bad("GET", "allowed/x", "does not start with '/'");
    expect_bad("GET", "", "does not start with '/'");
    expect_bad("GET", "/allowed/x?a=%zz", "the request query has an invalid %-escape");
    expect_bad("GET", "/allowed/x?a=%00", "invalid %-escape");
    expect_bad("G ET", "/allowed/x", "the request method is not an HTTP token");
    expect_bad("", "/allowed/x", "method is not an HTTP token");

    char *big = malloc(POLICY_L7_PATH_MAX + 16);
    assert_non_null(big);
    memset(big, 'a', POLICY_L7_PATH_MAX + 8);
    memcpy(big, "/allowed/", 9);
    big[POLICY_L7_PATH_MAX + 8] = '\0';
    expect_bad("GET", big, "the request path is too long");
    free(big);
    big = malloc(POLICY_L7_QUERY_MAX + 32);
    assert_non_null(big);
    memset(big, 'a', POLICY_L7_QUERY_MAX + 20);
    memcpy(big, "/allowed/x?q=", 13);
    big[POLICY_L7_QUERY_MAX + 20] = '\0';
    expect_bad("GET", big, "the request query is too long");
    free(big);
}

static void test_normal_forms(void **state)
{
    (void)state;
    /* unreserved escapes are decoded, others keep upper-case hex */
    expect_allow("GET", "/allowed/%41%7e", "/allowed/A~", 0);
    /* ':' is a pchar (decoded); a decoded ';' starts parameters, which are stripped */
    expect_allow("GET", "/allowed/%3a%3B", "/allowed/:", 0);
    /* a rule written with an escape matches the same escape */
    expect_allow("PUT", "/files/my%20doc", "/files/my%20doc", 6);
    /* absolute-form loses its authority */
    expect_allow("GET", "http://api.example.com/allowed/x?y=1", "/allowed/x", 0);
    expect_allow("GET", "HTTPS://api.example.com//allowed/x", "/allowed/x", 0);
    expect_deny("GET", "http://api.example.com", POLICY_L7_BY_NO_RULE, "/");
    expect_deny("GET", "http://api.example.com?x=1", POLICY_L7_BY_NO_RULE, "/");
    /* asterisk-form only matches "**" */
    expect_deny("OPTIONS", "*", POLICY_L7_BY_NO_RULE, "*");
    struct policy_l7_result *r = check("any.example.com", "OPTIONS", "*");
    assert_true(r->allow);
    assert_string_equal(r->path, "*");
}

static void test_methods(void **state)
{
    (void)state;
    expect_allow("HEAD", "/allowed/x", "/allowed/x", 0); /* GET covers HEAD */
    expect_allow("get", "/allowed/x", "/allowed/x", 0);  /* case-insensitive */
    expect_deny("POST", "/allowed/x", POLICY_L7_BY_NO_RULE, "/allowed/x");
    expect_deny("PUT", "/allowed/secret/x", POLICY_L7_BY_DENY_RULE, "/allowed/secret/x");
    expect_deny("HEAD", "/allowed/secret/x", POLICY_L7_BY_DENY_RULE, "/allowed/secret/x");
}

static void test_deny_wins(void **state)
{
    (void)state;
    /* allowed by rules[0], but rules[2] denies: deny wins over allow */
    struct policy_l7_result *r = check(API, "GET", "/allowed/secret/k");
    assert_false(r->allow);
    assert_int_equal(r->by, POLICY_L7_BY_DENY_RULE);
    assert_int_equal(r->rule_index, 2);
    assert_string_equal(r->rule, "deny * /allowed/secret/**");
    assert_string_equal(r->detail, "GET /allowed/secret/k matches rules[2] (deny * "
                                   "/allowed/secret/**) of network_policies.api.endpoints[0]");
    assert_string_equal(r->hint, "a deny rule refuses this request; remove or narrow "
                                 "network_policies.api.endpoints[0].rules[2]");
    /* a deny rule with a query matches when ANY value matches */
    expect_deny("DELETE", "/allowed/x?force=true", POLICY_L7_BY_DENY_RULE, "/allowed/x");
    expect_deny("DELETE", "/allowed/x?force=false&force=true", POLICY_L7_BY_DENY_RULE,
                "/allowed/x");
    expect_deny("DELETE", "/allowed/x?%66orce=tru%65", POLICY_L7_BY_DENY_RULE, "/allowed/x");
    expect_allow("DELETE", "/allowed/x?force=false", "/allowed/x", 4);
    expect_allow("DELETE", "/allowed/x", "/allowed/x", 4);
}

static void test_query(void **state)
{
    (void)state;
    const char *t = "/repos/cordon/issues";
    char buf[256];
#define Q(q) (snprintf(buf, sizeof(buf), "%s?%s", t, q), buf)
    expect_allow("POST", Q("labels=bug1&per_page=10"), t, 1);
    expect_allow("POST", Q("per_page=50&labels=bug&labels=bugfix"), t, 1);
    expect_allow("POST", Q("labels=bug%20x&per_page=5"), t, 1);
    expect_allow("POST", Q("labels=bug+x&per_page=5"), t, 1);
    expect_allow("POST", Q("%6cabels=bug&per_page=1&other=anything"), t, 1);
    expect_allow("POST", Q("&&labels=bug&per_page=1&"), t, 1);
    /* every value must match */
    expect_deny("POST", Q("labels=bug1&labels=feat&per_page=10"), POLICY_L7_BY_NO_RULE, t);
    /* the key must be present */
    expect_deny("POST", Q("per_page=10"), POLICY_L7_BY_NO_RULE, t);
    expect_deny("POST", t, POLICY_L7_BY_NO_RULE, t);
    expect_deny("POST", Q("labels=bug&per_page=20"), POLICY_L7_BY_NO_RULE, t);
    /* values are compared decoded: an encoded '*' is just a '*' */
    expect_deny("POST", Q("labels=%2A&per_page=1"), POLICY_L7_BY_NO_RULE, t);
    /* '*' in a query glob stops at '.', as OpenShell's (OPA glob.match) does */
    expect_allow("GET", "/v/x?ver=v1.2", "/v/x", 5);
    expect_deny("GET", "/v/x?ver=v1.2.3", POLICY_L7_BY_NO_RULE, "/v/x");
    expect_deny("GET", "/v/x?ver=v2.0", POLICY_L7_BY_NO_RULE, "/v/x");

    struct policy_l7_result *r = check(API, "POST", Q("labels=feat&per_page=1"));
    assert_false(r->allow);
    assert_int_equal(r->rule_index, -1);
    assert_string_equal(r->detail, "POST /repos/cordon/issues: rules[1] (allow POST "
                                   "/repos/*/issues query: labels, per_page) matches the method "
                                   "and path, but query parameter 'labels' is missing or has a "
                                   "value that does not match");
#undef Q
}

static void test_hint(void **state)
{
    (void)state;
    struct policy_l7_result *r = check(API, "PATCH", "/other/../thing");
    assert_false(r->allow);
    assert_int_equal(r->by, POLICY_L7_BY_NO_RULE);
    assert_int_equal(r->rule_index, -1);
    assert_string_equal(r->rule, "");
    assert_string_equal(r->path, "/thing");
    assert_string_equal(r->detail, "PATCH /thing is not allowed by any rule of "
                                   "network_policies.api.endpoints[0]");
    assert_string_equal(r->hint, "add {allow: {method: PATCH, path: \"/thing\"}} to "
                                 "network_policies.api.endpoints[0].rules");
}

static void test_access_presets(void **state)
{
    (void)state;
    static const struct {
        const char *host, *method;
        bool allow;
    } cases[] = {
        {"ro.example.com", "GET", true},     {"ro.example.com", "HEAD", true},
        {"ro.example.com", "OPTIONS", true}, {"ro.example.com", "POST", false},
        {"ro.example.com", "DELETE", false}, {"rw.example.com", "GET", true},
        {"rw.example.com", "POST", true},    {"rw.example.com", "PUT", true},
        {"rw.example.com", "patch", true},   {"rw.example.com", "DELETE", false},
        {"full.example.com", "DELETE", true}, {"full.example.com", "PURGE", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policy_l7_result *r = check(cases[i].host, cases[i].method, "/any/path");
        assert_int_equal(r->allow, cases[i].allow);
        assert_int_equal(r->by, POLICY_L7_BY_ACCESS);
        assert_int_equal(r->rule_index, -1);
        assert_string_equal(r->path, "/any/path");
    }
    struct policy_l7_result *r = check("ro.example.com", "POST", "/x");
    assert_string_equal(r->rule, "access: read-only");
    assert_string_equal(r->detail, "POST is not allowed by access: read-only of "
                                   "network_policies.api.endpoints[1]");
    assert_string_equal(r->hint, "use access: read-write (or full), or replace access with rules "
                                 "such as {allow: {method: POST, path: \"/x\"}}");
    /* presets normalize too */
    r = check("ro.example.com", "GET", "/a%2Fb");
    assert_false(r->allow);
    assert_int_equal(r->by, POLICY_L7_BY_BAD_TARGET);
}

static void test_not_rest(void **state)
{
    (void)state;
    struct policy_l7_result r;
    const struct policy_endpoint *raw = ep_for("raw.example.com");
    assert_int_equal(policy_l7_check(raw, "GET", "/", &r), -EINVAL);
    assert_false(r.allow);
    assert_ptr_equal(r.reason_code, POLICY_REASON_L7_DENIED);
    assert_int_equal(policy_l7_check(NULL, "GET", "/", &r), -EINVAL);
    assert_false(r.allow);
    assert_int_equal(policy_l7_check(ep_for(API), NULL, "/", &r), -EINVAL);
    assert_int_equal(policy_l7_check(ep_for(API), "GET", NULL, &r), -EINVAL);
    assert_false(r.allow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traversal),  cmocka_unit_test(test_not_normalizable),
        cmocka_unit_test(test_normal_forms), cmocka_unit_test(test_methods),
        cmocka_unit_test(test_deny_wins),  cmocka_unit_test(test_query),
        cmocka_unit_test(test_hint),       cmocka_unit_test(test_access_presets),
        cmocka_unit_test(test_not_rest),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
