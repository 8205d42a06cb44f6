/* Unit tests for the policy module: loading, every validation rule (with
 * the exact file:line:column and field path), host and binary matching,
 * the decision table, accessors, and reference counting across threads. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/policy.h"

/* ---- helpers ---- */

static bool diag_has(const struct policy_diag *d, const char *needle)
{
    for (size_t i = 0; i < d->n; i++)
        if (strstr(d->lines[i], needle))
            return true;
    return false;
}

static void dump(const struct policy_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "  | %s\n", d->lines[i]);
}

static struct policy *load_ok(const char *yaml)
{
    struct policy_diag d = {0};
    struct policy *p = NULL;
    int rc = policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &d);
    if (rc != 0)
        dump(&d);
    assert_int_equal(rc, 0);
    assert_non_null(p);
    assert_int_equal(d.n_errors, 0);
    policy_diag_free(&d);
    return p;
}

/* Loads yaml expecting failure, with a diagnostic line containing needle;
 * prints what it got otherwise. */
static bool try_error(const char *yaml, const char *needle)
{
    struct policy_diag d = {0};
    struct policy *p = (struct policy *)0x1;
    int rc = policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &d);
    bool ok = rc == -EINVAL && p == NULL && d.n_errors >= 1 && diag_has(&d, needle);
    if (!ok) {
        fprintf(stderr, "expected error containing: %s\ngot rc=%d:\n", needle, rc);
        dump(&d);
    }
    policy_diag_free(&d);
    return ok;
}

static void expect_error(const char *yaml, const char *needle)
{
    assert_true(try_error(yaml, needle));
}

/* Loads yaml expecting success with a warning containing needle. */
static void expect_warning(const char *yaml, const char *needle)
{
    struct policy_diag d = {0};
    struct policy *p = NULL;
    int rc = policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &d);
    if (rc != 0 || !diag_has(&d, needle)) {
        fprintf(stderr, "expected warning containing: %s\ngot rc=%d:\n", needle, rc);
        dump(&d);
    }
    assert_int_equal(rc, 0);
    assert_true(d.n_warnings >= 1);
    assert_true(diag_has(&d, needle));
    policy_diag_free(&d);
    policy_unref(p);
}

/* One entry "a" with curl; the endpoint's first line is line 6, column 9. */
#define EP "version: 1\nnetwork_policies:\n  a:\n    binaries: [{path: /usr/bin/curl}]\n" \
           "    endpoints:\n      - "

static struct policy_decision decide(const struct policy *p, const char *host, uint16_t port,
                                     const char *exe)
{
    struct policy_decision d;
    struct policy_query q = {.host = host, .port = port, .exe = exe};
    policy_decide(p, &q, &d);
    return d;
}

/* ---- loading ---- */

static const char spec_example[] =
    "version: 1\n"
    "filesystem_policy:\n"
    "  include_workdir: true\n"
    "  read_only: [/usr, /lib, /etc, /proc, /dev/urandom, /var/log]\n"
    "  read_write: [/sandbox, /tmp]\n"
    "landlock:\n"
    "  compatibility: hard_requirement\n"
    "process:\n"
    "  run_as_user: sandbox\n"
    "  run_as_group: sandbox\n"
    "network_policies:\n"
    "  llm_api:\n"
    "    name: llm-api\n"
    "    endpoints:\n"
    "      - host: api.anthropic.com\n"
    "        port: 443\n"
    "    binaries:\n"
    "      - path: /usr/local/bin/claude\n"
    "      - path: \"/usr/bin/python3*\"\n"
    "  github:\n"
    "    endpoints:\n"
    "      - host: api.github.com\n"
    "        ports: [443]\n"
    "        protocol: rest\n"
    "        enforcement: audit\n"
    "        rules:\n"
    "          - allow: { method: GET, path: \"/repos/**\" }\n"
    "          - allow:\n"
    "              method: POST\n"
    "              path: \"/repos/*/issues\"\n"
    "              query:\n"
    "                labels: \"bug*\"\n"
    "                per_page: { any: [\"1*\", \"5*\"] }\n"
    "    binaries: [ { path: /usr/bin/gh } ]\n"
    "  cdn_read_only:\n"
    "    endpoints:\n"
    "      - host: \"*.example.com\"\n"
    "        ports: [443, 8443]\n"
    "        protocol: rest\n"
    "        access: read-only\n"
    "    binaries: [ { path: \"/usr/**\" } ]\n"
    "  internal_db_http:\n"
    "    endpoints:\n"
    "      - host: api.internal.corp\n"
    "        port: 8080\n"
    "        allowed_ips: [\"10.0.5.0/24\"]\n"
    "      - port: 9443\n"
    "        allowed_ips: [\"172.16.0.0/12\"]\n"
    "      - host: 10.0.7.20\n"
    "        port: 80\n"
    "    binaries: [ { path: /usr/bin/curl } ]\n"
    "  mtls_raw:\n"
    "    endpoints:\n"
    "      - host: broker.example.net\n"
    "        port: 8883\n"
    "        tls: skip\n"
    "        idle_timeout: 5m\n"
    "        upgrade_idle_timeout: 0\n"
    "    binaries: [ { path: /usr/bin/mosquitto_pub } ]\n";

static void test_load_spec_example(void **state)
{
    (void)state;
    struct policy *p = load_ok(spec_example);
    assert_int_equal(policy_n_entries(p), 5);
    assert_int_equal(policy_n_endpoints(p), 7);
    assert_string_equal(policy_source(p), "t.yaml");

    const struct policy_fs *fs = policy_filesystem(p);
    assert_true(fs->include_workdir);
    assert_int_equal(fs->n_read_only, 6);
    assert_string_equal(fs->read_only[4], "/dev/urandom");
    assert_int_equal(fs->n_read_write, 2);
    assert_int_equal(policy_landlock_compat(p), POLICY_LANDLOCK_HARD);
    assert_string_equal(policy_run_as_user(p), "sandbox");
    assert_string_equal(policy_run_as_group(p), "sandbox");

    struct policy_decision d = decide(p, "api.github.com", 443, "/usr/bin/gh");
    assert_true(d.allow);
    const struct policy_endpoint *ep = d.endpoint;
    assert_true(policy_endpoint_is_rest(ep));
    assert_int_equal(policy_endpoint_enforcement(ep), POLICY_AUDIT);
    assert_int_equal(policy_endpoint_tls(ep), POLICY_TLS_AUTO);
    assert_int_equal(policy_endpoint_access(ep), POLICY_ACCESS_NONE);
    assert_int_equal(policy_endpoint_idle_timeout_ms(ep), 0);
    assert_int_equal(policy_endpoint_upgrade_idle_timeout_ms(ep), 3600 * 1000);
    assert_string_equal(policy_endpoint_policy_key(ep), "github");
    assert_int_equal(policy_endpoint_index(ep), 0);

    d = decide(p, "broker.example.net", 8883, "/usr/bin/mosquitto_pub");
    assert_true(d.allow);
    assert_false(policy_endpoint_is_rest(d.endpoint));
    assert_int_equal(policy_endpoint_tls(d.endpoint), POLICY_TLS_SKIP);
    assert_int_equal(policy_endpoint_enforcement(d.endpoint), POLICY_ENFORCE); /* default */
    assert_int_equal(policy_endpoint_idle_timeout_ms(d.endpoint), 5 * 60 * 1000);
    assert_int_equal(policy_endpoint_upgrade_idle_timeout_ms(d.endpoint), 0);

    d = decide(p, "cdn.example.com", 8443, "/usr/bin/wget");
    assert_true(d.allow);
    assert_int_equal(policy_endpoint_access(d.endpoint), POLICY_ACCESS_READ_ONLY);
    assert_string_equal(policy_endpoint_host(d.endpoint), "*.example.com");
    policy_unref(p);
}

static void test_load_minimal_and_defaults(void **state)
{
    (void)state;
    struct policy *p = load_ok("version: 1\n");
    assert_int_equal(policy_n_entries(p), 0);
    assert_true(policy_filesystem(p)->include_workdir);
    /* no filesystem_policy: read-only system paths, read-write /tmp */
    assert_int_equal(policy_filesystem(p)->n_read_only, 10);
    assert_string_equal(policy_filesystem(p)->read_only[0], "/usr");
    assert_string_equal(policy_filesystem(p)->read_write[0], "/tmp");
    assert_int_equal(policy_landlock_compat(p), POLICY_LANDLOCK_BEST_EFFORT);
    assert_null(policy_run_as_user(p));
    assert_null(policy_run_as_group(p));
    policy_unref(p);

    p = load_ok("version: 1\nnetwork_policies: {}\nfilesystem_policy:\n"
                "  include_workdir: false\n  read_only: [\"/a//b/./c/\", /]\n");
    assert_false(policy_filesystem(p)->include_workdir);
    assert_string_equal(policy_filesystem(p)->read_only[0], "/a/b/c");
    assert_string_equal(policy_filesystem(p)->read_only[1], "/");
    policy_unref(p);
}

static void test_load_timeouts(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        uint64_t ms;
    } cases[] = {{"30s", 30000}, {"5m", 300000}, {"1h", 3600000}, {"45", 45000},
                 {"250ms", 250}, {"0", 0},       {"168h", 604800000}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char y[512];
        snprintf(y, sizeof(y), EP "host: a.example.com\n        port: 1\n"
                                  "        idle_timeout: %s\n", cases[i].v);
        struct policy *p = load_ok(y);
        struct policy_decision d = decide(p, "a.example.com", 1, "/usr/bin/curl");
        assert_true(d.allow);
        assert_int_equal(policy_endpoint_idle_timeout_ms(d.endpoint), cases[i].ms);
        policy_unref(p);
    }
}

static void test_load_file(void **state)
{
    (void)state;
    struct policy_diag d = {0};
    struct policy *p = NULL;
    assert_int_equal(policy_load_file("/nonexistent/policy.yaml", &p, &d), -ENOENT);
    assert_null(p);
    assert_true(diag_has(&d, "/nonexistent/policy.yaml: error: cannot read the policy: No such "
                             "file or directory"));
    policy_diag_free(&d);

    assert_int_equal(policy_load_file("/tmp", &p, &d), -EINVAL);
    assert_true(diag_has(&d, "not a regular file"));
    policy_diag_free(&d);

    char path[] = "/tmp/cordon-test-policy-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: x.org, "
                        "port: 443}]\n    binaries: [{path: /usr/bin/*}]\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);
    assert_int_equal(policy_load_file(path, &p, &d), 0);
    assert_string_equal(policy_source(p), path);
    assert_int_equal(policy_n_endpoints(p), 1);
    policy_unref(p);
    policy_diag_free(&d);
    unlink(path);
}

/* ---- validation: each rule, with its exact position and field path ---- */

struct bad_case {
    const char *yaml;
    const char *needle;
};

static const struct bad_case bad_cases[] = {
    /* document level */
    {"", "t.yaml:1:1: error: the policy is empty (at least 'version: 1' is required)"},
    {"network_policies: {}\n", "t.yaml:1:1: error: version: missing (add 'version: 1')"},
    {"version: 2\n", "t.yaml:1:10: error: version: unsupported version '2' (allowed: 1)"},
    {"version: \"1\"\n", "t.yaml:1:10: error: version: unsupported version '1' (allowed: 1)"},
    {"- 1\n", "t.yaml:1:1: error: expected a map, got a list"},
    {"version: 1\nversion: 1\n",
     "t.yaml:2:1: error: duplicate key 'version' (first defined at line 1, column 1)"},
    {"version: 1\nnetwrok_policies: {}\n",
     "t.yaml:2:1: error: unknown field 'netwrok_policies' (did you mean 'network_policies'?)"},
    {"version: 1\nzzz: 1\n", "t.yaml:2:1: error: unknown field 'zzz' (allowed: version, "
                             "network_policies, filesystem_policy, landlock, process, network_middlewares, limits)"},
    {"version: 1\nnetwork_policies: [\n", "t.yaml:3:1: error: invalid YAML: did not find "
                                          "expected node content"},
    {"version: 1\n---\nversion: 1\n", "t.yaml:2:1: error: only one YAML document is allowed"},
    {"version: 1\nx: &a 1\ny: *a\n", "t.yaml:3:4: error: YAML aliases (*a) are not supported"},
    {"version: !!float 1\n", "t.yaml:1:10: error: YAML tag 'tag:yaml.org,2002:float' is not "
                             "supported"},
    {"version: 1\nnetwork_policies: [a]\n",
     "t.yaml:2:19: error: network_policies: expected a map, got a list"},
    /* entries */
    {"version: 1\nnetwork_policies:\n  a:\n    enpoints: []\n",
     "t.yaml:4:5: error: network_policies.a: unknown field 'enpoints' (did you mean "
     "'endpoints'?)"},
    {"version: 1\nnetwork_policies:\n  a:\n    binaries: [{path: /x}]\n",
     "t.yaml:4:5: error: network_policies.a: endpoints is required"},
    {"version: 1\nnetwork_policies:\n  a:\n    endpoints: []\n    binaries: [{path: /x}]\n",
     "t.yaml:4:16: error: network_policies.a.endpoints: empty list can never match"},
    {"version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: a.org, port: 1}]\n"
     "    binaries: []\n",
     "t.yaml:5:15: error: network_policies.a.binaries: empty list can never match"},
    {"version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: a.org, port: 1}]\n"
     "    binaries: /usr/bin/gh\n",
     "t.yaml:5:15: error: network_policies.a.binaries: expected a list, got a string "
     "'/usr/bin/gh'"},
    {"version: 1\nnetwork_policies:\n  \"a b\": {}\n",
     "t.yaml:3:3: error: network_policies: policy name 'a b' is not allowed"},
    {"version: 1\nnetwork_policies:\n  _provider_x: {}\n",
     "t.yaml:3:3: error: network_policies: policy name '_provider_x' uses the reserved prefix "
     "'_provider_'"},
    {"version: 1\nnetwork_policies:\n  a: {}\n  a: {}\n",
     "t.yaml:4:3: error: network_policies: duplicate key 'a' (first defined at line 3, "
     "column 3)"},
    /* binaries */
    {"version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: a.org, port: 1}]\n"
     "    binaries: [{path: usr/bin/curl}]\n",
     "t.yaml:5:23: error: network_policies.a.binaries[0].path: 'usr/bin/curl' must be an "
     "absolute path"},
    {"version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: a.org, port: 1}]\n"
     "    binaries: [{path: /usr/../bin/sh}]\n",
     "t.yaml:5:23: error: network_policies.a.binaries[0].path: '/usr/../bin/sh' contains a '.' "
     "or '..' segment"},
    {"version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: a.org, port: 1}]\n"
     "    binaries: [{path: /usr/bin/}]\n",
     "t.yaml:5:23: error: network_policies.a.binaries[0].path: '/usr/bin/' names a directory"},
    {"version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: a.org, port: 1}]\n"
     "    binaries: [{pth: /x}]\n",
     "t.yaml:5:17: error: network_policies.a.binaries[0]: unknown field 'pth' (did you mean "
     "'path'?)"},
    {"version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: a.org, port: 1}]\n"
     "    binaries: [/usr/bin/curl]\n",
     "t.yaml:5:16: error: network_policies.a.binaries[0]: expected a map, got a string"},
    /* hosts */
    {EP "host: \"*\"\n        port: 443\n",
     "t.yaml:6:15: error: network_policies.a.endpoints[0].host: '*' would match every host"},
    {EP "host: \"**\"\n        port: 443\n", "endpoints[0].host: '**' would match every host"},
    {EP "host: \"*.com\"\n        port: 443\n",
     "t.yaml:6:15: error: network_policies.a.endpoints[0].host: '*.com' would match a whole "
     "top-level domain"},
    {EP "host: \"**.org\"\n        port: 443\n", "'**.org' would match a whole top-level domain"},
    {EP "host: \"api.*\"\n        port: 443\n",
     "t.yaml:6:15: error: network_policies.a.endpoints[0].host: 'api.*' has a wildcard in "
     "the top-level label"},
    {EP "host: \"*.s3.us-*.amazonaws.com\"\n        port: 443\n",
     "'*.s3.us-*.amazonaws.com' has a partial wildcard outside the first label"},
    {EP "host: \"a.**.example.com\"\n        port: 443\n",
     "uses '**' other than as the whole first label"},
    {EP "host: \"x**.example.com\"\n        port: 443\n",
     "uses '**' other than as the whole first label"},
    {EP "host: \"example.*\"\n        port: 443\n", "has a wildcard in the top-level label"},
    {EP "host: \"*\"\n        port: 443\n", "'*' would match every host"},
    {EP "host: 127.0.0.1\n        port: 443\n",
     "t.yaml:6:15: error: network_policies.a.endpoints[0].host: 127.0.0.1 is a loopback "
     "address, which is always blocked"},
    {EP "host: 169.254.169.254\n        port: 80\n", "169.254.169.254 is a link-local address"},
    {EP "host: \"[::1]\"\n        port: 80\n", "::1 is a loopback address"},
    {EP "host: localhost\n        port: 80\n", "'localhost' always resolves to loopback"},
    {EP "host: METADATA.Google.Internal.\n        port: 80\n",
     "'METADATA.Google.Internal.' is a cloud metadata hostname, which is always blocked"},
    {EP "host: a..example.com\n        port: 80\n", "'a..example.com' has an empty label"},
    {EP "host: \"a b.com\"\n        port: 80\n",
     "'a b.com' contains a character other than letters"},
    {EP "host: 1.2.3.4.5\n        port: 80\n",
     "'1.2.3.4.5' is neither a valid IP address nor a host name"},
    {EP "host: -a.example.com\n        port: 80\n", "starts or ends with '-'"},
    {EP "host: [a.com]\n        port: 80\n", "endpoints[0].host: expected a string, got a list"},
    /* ports */
    {EP "host: a.example.com\n        port: 70000\n",
     "t.yaml:7:15: error: network_policies.a.endpoints[0].port: 70000 is out of range "
     "(allowed: 1-65535)"},
    {EP "host: a.example.com\n        port: 0\n", "endpoints[0].port: 0 is out of range"},
    {EP "host: a.example.com\n        port: \"443\"\n",
     "t.yaml:7:15: error: network_policies.a.endpoints[0].port: expected an integer, got a "
     "string '443' (allowed: 1-65535)"},
    {EP "host: a.example.com\n        port: 443\n        ports: [443]\n",
     "t.yaml:8:16: error: network_policies.a.endpoints[0]: port and ports are mutually "
     "exclusive"},
    {EP "host: a.example.com\n",
     "t.yaml:6:9: error: network_policies.a.endpoints[0]: port or ports is required"},
    {EP "host: a.example.com\n        ports: []\n",
     "t.yaml:7:16: error: network_policies.a.endpoints[0].ports: empty list can never match"},
    {EP "host: a.example.com\n        ports: [443, 99999]\n",
     "t.yaml:7:22: error: network_policies.a.endpoints[0].ports[1]: 99999 is out of range"},
    {EP "host: a.example.com\n        ports: 443\n",
     "endpoints[0].ports: expected a list, got an integer"},
    /* hostless */
    {EP "port: 443\n",
     "t.yaml:6:9: error: network_policies.a.endpoints[0]: host or allowed_ips is required"},
    {EP "host: \"\"\n        port: 443\n", "host or allowed_ips is required"},
    /* protocol, tls, enforcement, access */
    {EP "host: a.example.com\n        port: 1\n        protocol: http\n",
     "t.yaml:8:19: error: network_policies.a.endpoints[0].protocol: 'http' is not allowed "
     "(allowed: rest, websocket, graphql, json-rpc, mcp, tcp, sql"},
    {EP "host: a.example.com\n        port: 1\n        protocol: sql\n"
        "        enforcement: enforce\n",
     "t.yaml:9:22: error: network_policies.a.endpoints[0]: SQL enforcement needs SQL parsing"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n",
     "t.yaml:8:19: error: network_policies.a.endpoints[0]: protocol: rest needs rules or "
     "access"},
    {EP "host: a.example.com\n        port: 1\n        tls: off\n",
     "endpoints[0].tls: 'off' is not allowed (allowed: skip, terminate, passthrough)"},
    {EP "host: a.example.com\n        port: 1\n        enforcement: enforced\n",
     "endpoints[0].enforcement: 'enforced' is not allowed (allowed: enforce, audit; did you "
     "mean 'enforce'?)"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        access: read_only\n",
     "t.yaml:9:17: error: network_policies.a.endpoints[0].access: 'read_only' is not allowed "
     "(allowed: read-only, read-write, full; did you mean 'read-only'?)"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n        access: full\n"
        "        rules: [{allow: {method: GET, path: /x}}]\n",
     "t.yaml:10:16: error: network_policies.a.endpoints[0]: rules and access are mutually "
     "exclusive"},
    {EP "host: a.example.com\n        port: 1\n        hots: x\n",
     "t.yaml:8:9: error: network_policies.a.endpoints[0]: unknown field 'hots' (did you mean "
     "'host'?)"},
    {EP "host: a.example.com\n        port: 1\n        port: 2\n",
     "t.yaml:8:9: error: network_policies.a.endpoints[0]: duplicate key 'port'"},
    /* rules */
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n        rules: []\n",
     "t.yaml:9:16: error: network_policies.a.endpoints[0].rules: empty list can never allow "
     "anything"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{deny: {method: GET, path: /x}}]\n",
     "t.yaml:9:16: error: network_policies.a.endpoints[0]: only deny rules: every request "
     "would be denied"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{}]\n",
     "t.yaml:9:17: error: network_policies.a.endpoints[0].rules[0]: a rule needs 'allow' or "
     "'deny'"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: /}, deny: {method: GET, path: /}}]\n",
     "rules[0]: a rule has either 'allow' or 'deny', not both"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {path: /x}}]\n",
     "t.yaml:9:25: error: network_policies.a.endpoints[0].rules[0].allow: method is required"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET}}]\n",
     "rules[0].allow: path is required"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: \"G T\", path: /}}]\n",
     "t.yaml:9:34: error: network_policies.a.endpoints[0].rules[0].allow.method: 'G T' is not "
     "an HTTP method"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: repos}}]\n",
     "rules[0].allow.path: 'repos' does not start with '/'"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: \"*\"}}]\n",
     "rules[0].allow.path: '*' does not start with '/'"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: /a/../b}}]\n",
     "rules[0].allow.path: '/a/../b' contains a '.' or '..' segment"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: \"/a//b\"}}]\n",
     "rules[0].allow.path: '/a//b' contains '//'"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: /a%2Fb}}]\n",
     "rules[0].allow.path: '/a%2Fb' has an encoded slash or backslash, which requests to this "
     "endpoint may not carry"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: /a%zz}}]\n",
     "rules[0].allow.path: '/a%zz' has an invalid percent-encoding"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: \"/a?x=1\"}}]\n",
     "rules[0].allow.path: '/a?x=1' contains '?'"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: /, query: [a]}}]\n",
     "rules[0].allow.query: expected a map from parameter name to matcher, got a list"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: /, query: {a: [x]}}}]\n",
     "rules[0].allow.query.a: expected a glob string or {any: [globs]}, got a list"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: /, query: {a: {any: []}}}}]\n",
     "rules[0].allow.query.a.any: empty list can never match"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: /, query: {a: {any: [x], glob: y}}}}]\n",
     "rules[0].allow.query.a: a matcher has either 'any' or 'glob', not both"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: /, query: {a: {}}}}]\n",
     "rules[0].allow.query.a: a matcher needs 'any: [globs]' or 'glob: \"...\"'"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: /, query: {a: {one: x}}}}]\n",
     "rules[0].allow.query.a: unknown matcher 'one' (allowed: any, glob)"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: /, query: {a: {any: [[x]]}}}}]\n",
     "rules[0].allow.query.a.any[0]: expected a string, got a list"},
    {EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
        "        rules: [{allow: {method: GET, path: /, query: {a: {any: x}}}}]\n",
     "rules[0].allow.query.a: expected a list of glob strings, got a string"},
    /* allowed_ips */
    {EP "allowed_ips: [127.0.0.1/32]\n        port: 80\n",
     "t.yaml:6:23: error: network_policies.a.endpoints[0].allowed_ips[0]: '127.0.0.1/32' lies "
     "entirely in loopback space, which is always blocked"},
    {EP "allowed_ips: [169.254.0.0/16]\n        port: 80\n",
     "'169.254.0.0/16' lies entirely in link-local space"},
    {EP "allowed_ips: [\"::1\"]\n        port: 80\n", "'::1' lies entirely in loopback space"},
    {EP "allowed_ips: [10.0.0.0/33]\n        port: 80\n",
     "allowed_ips[0]: '10.0.0.0/33' has a prefix length outside 0-32"},
    {EP "allowed_ips: [nope]\n        port: 80\n",
     "allowed_ips[0]: 'nope' is not an IP address or CIDR"},
    {EP "allowed_ips: [10.0.0.0/x]\n        port: 80\n", "has a prefix length outside 0-32"},
    {EP "allowed_ips: []\n        port: 80\n", "endpoints[0].allowed_ips: empty list"},
    {EP "allowed_ips: 10.0.0.0/8\n        port: 80\n",
     "endpoints[0].allowed_ips: expected a list, got a string"},
    /* timeouts */
    {EP "host: a.example.com\n        port: 1\n        idle_timeout: 5x\n",
     "t.yaml:8:23: error: network_policies.a.endpoints[0].idle_timeout: '5x' is not a valid "
     "duration"},
    {EP "host: a.example.com\n        port: 1\n        idle_timeout: -1\n",
     "idle_timeout: -1 is out of range"},
    {EP "host: a.example.com\n        port: 1\n        upgrade_idle_timeout: 169h\n",
     "upgrade_idle_timeout: '169h' is not a valid duration"},
    {EP "host: a.example.com\n        port: 1\n        idle_timeout: s\n",
     "idle_timeout: 's' is not a valid duration"},
    /* static sections */
    {"version: 1\nfilesystem_policy:\n  read_only: [relative]\n",
     "t.yaml:3:15: error: filesystem_policy.read_only[0]: 'relative' must be an absolute path"},
    {"version: 1\nfilesystem_policy:\n  read_write: [/a/../b]\n",
     "filesystem_policy.read_write[0]: '/a/../b' must not contain '..'"},
    {"version: 1\nfilesystem_policy:\n  read_write: [/]\n",
     "t.yaml:3:16: error: filesystem_policy.read_write[0]: read_write must not be '/'"},
    {"version: 1\nfilesystem_policy:\n  read_write: [\"//\"]\n", "read_write must not be '/'"},
    {"version: 1\nfilesystem_policy:\n  include_workdir: yes\n",
     "filesystem_policy.include_workdir: expected a boolean, got a string 'yes'"},
    {"version: 1\nfilesystem_policy:\n  read_only: /usr\n",
     "filesystem_policy.read_only: expected a list, got a string"},
    {"version: 1\nfilesystem_policy:\n  readonly: []\n",
     "filesystem_policy: unknown field 'readonly' (did you mean 'read_only'?)"},
    {"version: 1\nlandlock:\n  compatibility: strict\n",
     "t.yaml:3:18: error: landlock.compatibility: 'strict' is not allowed (allowed: "
     "best_effort, hard_requirement)"},
    {"version: 1\nprocess:\n  run_as_user: root\n",
     "t.yaml:3:16: error: process.run_as_user: the sandbox must not run as root"},
    {"version: 1\nprocess:\n  run_as_group: 0\n", "process.run_as_group: the sandbox must not run"},
    {"version: 1\nprocess:\n  run_as_user: \"Bad User\"\n",
     "process.run_as_user: 'Bad User' is not a valid name"},
};

static void test_validation_errors(void **state)
{
    (void)state;
    size_t failed = 0;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
        failed += !try_error(bad_cases[i].yaml, bad_cases[i].needle);
    assert_int_equal(failed, 0);
}

static void test_too_many_paths(void **state)
{
    (void)state;
    size_t cap = 16 + 260 * 8;
    char *y = malloc(cap);
    assert_non_null(y);
    size_t n = (size_t)snprintf(y, cap, "version: 1\nfilesystem_policy:\n  read_only: [");
    for (int i = 0; i < 257; i++)
        n += (size_t)snprintf(y + n, cap - n, "%s/p%d", i ? "," : "", i);
    snprintf(y + n, cap - n, "]\n");
    expect_error(y, "t.yaml:3:3: error: filesystem_policy: 257 paths in read_only and "
                    "read_write (at most 256)");
    free(y);

    char long_path[4200];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    char *y2 = malloc(5000);
    snprintf(y2, 5000, "version: 1\nfilesystem_policy:\n  read_only: [%s]\n", long_path);
    expect_error(y2, "is longer than 4096 bytes");
    free(y2);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    char y[400];
    size_t n = (size_t)snprintf(y, sizeof(y), "version: 1\nx: ");
    for (int i = 0; i < 100; i++)
        y[n++] = '[';
    y[n] = '\0';
    expect_error(y, "YAML nested too deeply (at most 64 levels)");
}

/* Every error is reported, in file order, not only the first. */
static void test_collects_all_errors(void **state)
{
    (void)state;
    const char *y = "version: 3\n"
                    "network_policies:\n"
                    "  a:\n"
                    "    endpoints:\n"
                    "      - host: \"*\"\n"
                    "        port: 0\n"
                    "    binaries: [{path: rel}]\n"
                    "landlock: {compatibility: x}\n";
    struct policy_diag d = {0};
    struct policy *p = NULL;
    assert_int_equal(policy_load_buffer("t.yaml", y, strlen(y), &p, &d), -EINVAL);
    assert_int_equal(d.n_errors, 5);
    assert_int_equal(d.n, 5);
    assert_non_null(strstr(d.lines[0], "t.yaml:1:10: error: version"));
    assert_non_null(strstr(d.lines[1], "t.yaml:5:15: error: network_policies.a.endpoints[0].host"));
    assert_non_null(strstr(d.lines[2], "t.yaml:6:15: error: network_policies.a.endpoints[0].port"));
    assert_non_null(strstr(d.lines[3], "t.yaml:7:23: error: network_policies.a.binaries[0].path"));
    assert_non_null(strstr(d.lines[4], "t.yaml:8:27: error: landlock.compatibility"));
    policy_diag_free(&d);
    assert_int_equal(d.n, 0);
    assert_null(d.lines);
}

static void test_warnings(void **state)
{
    (void)state;
    expect_warning(EP "host: a.example.com\n        port: 1\n        tls: terminate\n",
                   "t.yaml:8:14: warning: network_policies.a.endpoints[0].tls: 'terminate' is "
                   "deprecated and treated as automatic");
    expect_warning(EP "host: a.example.com\n        port: 1\n        tls: passthrough\n",
                   "'passthrough' is deprecated");
    expect_warning(EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
                      "        rules: [{allow: {method: FETCH, path: /}}]\n",
                   "t.yaml:9:34: warning: network_policies.a.endpoints[0].rules[0].allow.method: "
                   "unknown HTTP method 'FETCH'");
    expect_warning(EP "host: a.example.com\n        port: 1\n        protocol: rest\n"
                      "        rules: [{allow: {method: GETT, path: /}}]\n",
                   "unknown HTTP method 'GETT'; did you mean 'GET'?");
    /* OpenShell refuses an allowed_ips entry overlapping always-blocked space */
    expect_error(EP "allowed_ips: [0.0.0.0/0]\n        port: 80\n",
                 "'0.0.0.0/0' overlaps always-blocked space (unspecified and maybe others)");
    expect_error(EP "allowed_ips: [64.0.0.0/2]\n        port: 80\n",
                 "'64.0.0.0/2' overlaps always-blocked space (loopback");
    expect_warning(EP "allowed_ips: [12.0.0.0/6]\n        port: 80\n", "'12.0.0.0/6' is very broad");
    expect_warning(EP "allowed_ips: [12.0.0.0/7]\n        port: 80\n", "'12.0.0.0/7' is very broad");
    expect_warning(EP "allowed_ips: [10.1.2.3/8]\n        port: 80\n",
                   "'10.1.2.3/8' has host bits set; it is treated as 10.0.0.0/8");
    expect_warning(EP "host: a.example.com\n        ports: [1, 1]\n", "port 1 is listed twice");
    expect_warning(EP "host: \"*.co.uk\"\n        port: 1\n",
                   "'*.co.uk' matches every site under the public suffix 'co.uk'");
    expect_warning(EP "host: a.example.com\n        port: 1\n        enforcement: audit\n",
                   "enforcement has no effect without an inspected protocol");
    expect_warning(EP "host: a.example.com\n        port: 443\n        tls: skip\n"
                      "        protocol: rest\n        access: full\n",
                   "tls: skip on port 443 with an inspected protocol");
    expect_warning("version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: a.org, port: 1}]\n"
                   "    binaries: [{path: /nonexistent/bin/tool}]\n",
                   "t.yaml:5:23: warning: network_policies.a.binaries[0].path: "
                   "/nonexistent/bin/tool does not exist on this host");
    expect_warning("version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: a.org, port: 1}]\n"
                   "    binaries: [{path: \"/**\"}]\n", "'/**' matches every executable");
    expect_warning("version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: a.org, port: 1}]\n"
                   "    binaries: [{path: \"/usr/bin/py[23]\"}]\n",
                   "'[' is a literal character here");
    expect_warning("version: 1\nnetwork_policies:\n  a:\n    endpoints: [{host: a.org, port: 1}]\n"
                   "    binaries: [{path: /usr/bin/curl, harness: true}]\n",
                   "the legacy 'harness' field is ignored");
}

/* ---- decisions ---- */

static const char dec_policy[] =
    "version: 1\n"
    "network_policies:\n"
    "  zeta:\n"
    "    endpoints: [{host: shared.example.org, port: 443}]\n"
    "    binaries: [{path: /usr/bin/curl}]\n"
    "  alpha:\n"
    "    endpoints:\n"
    "      - {host: API.Example.ORG, ports: [443, 8443]}\n"
    "      - {host: shared.example.org, port: 443}\n"
    "    binaries: [{path: /usr/bin/curl}, {path: \"/opt/tools/*\"}]\n"
    "  wild:\n"
    "    endpoints:\n"
    "      - {host: \"*.cdn.example.net\", port: 443}\n"
    "      - {host: \"**.deep.example.net\", port: 443}\n"
    "    binaries: [{path: \"/usr/lib/node/**\"}]\n"
    "  git:\n"
    "    endpoints: [{host: github.com, port: 22}]\n"
    "    binaries: [{path: /usr/bin/ssh}]\n"
    "  ips:\n"
    "    endpoints:\n"
    "      - {host: 10.0.7.20, port: 80}\n"
    "      - {host: \"[fd00::5]\", port: 80}\n"
    "      - {port: 9443, allowed_ips: [172.16.0.0/12]}\n"
    "    binaries: [{path: /usr/bin/wget}]\n";

static void test_decide_exact_host(void **state)
{
    (void)state;
    struct policy *p = load_ok(dec_policy);
    struct policy_decision d = decide(p, "api.example.org", 8443, "/usr/bin/curl");
    assert_true(d.allow);
    assert_null(d.reason_code);
    assert_string_equal(d.policy_key, "alpha");
    assert_int_equal(d.endpoint_index, 0);
    assert_non_null(d.endpoint);
    assert_string_equal(d.matched_binary, "/usr/bin/curl");
    assert_string_equal(d.matched_by, "/usr/bin/curl");
    assert_string_equal(d.detail, "allowed by network_policies.alpha.endpoints[0] for binary "
                                  "/usr/bin/curl");
    /* case-insensitive, trailing dot */
    assert_true(decide(p, "API.EXAMPLE.ORG.", 443, "/usr/bin/curl").allow);
    /* binary glob within a segment */
    assert_true(decide(p, "api.example.org", 443, "/opt/tools/x").allow);
    assert_false(decide(p, "api.example.org", 443, "/opt/tools/sub/x").allow);
    /* a prefix or suffix of the host never matches */
    assert_false(decide(p, "xapi.example.org", 443, "/usr/bin/curl").allow);
    assert_false(decide(p, "api.example.org.evil.com", 443, "/usr/bin/curl").allow);
    policy_unref(p);
}

static void test_decide_wildcards(void **state)
{
    (void)state;
    struct policy *p = load_ok(dec_policy);
    const char *node = "/usr/lib/node/bin/node";
    /* "*." is exactly one label in front (OpenShell), never the apex */
    assert_true(decide(p, "a.cdn.example.net", 443, node).allow);
    assert_false(decide(p, "a.b.cdn.example.net", 443, node).allow);
    assert_true(decide(p, "A.CDN.Example.NET", 443, node).allow);
    assert_false(decide(p, "cdn.example.net", 443, node).allow);
    assert_false(decide(p, "xcdn.example.net", 443, node).allow);
    assert_false(decide(p, ".cdn.example.net", 443, node).allow);
    assert_false(decide(p, "a..cdn.example.net", 443, node).allow);
    /* "**." is one or more labels */
    assert_true(decide(p, "x.deep.example.net", 443, node).allow);
    assert_true(decide(p, "x.y.deep.example.net", 443, node).allow);
    assert_false(decide(p, "deep.example.net", 443, node).allow);

    struct policy_decision d = decide(p, "cdn.example.net", 443, node);
    assert_ptr_equal(d.reason_code, POLICY_REASON_NO_ENDPOINT);
    assert_non_null(strstr(d.detail, "network_policies.wild.endpoints[0] has '*.cdn.example.net', "
                                     "which does not match the apex cdn.example.net"));
    assert_string_equal(d.hint, "add an endpoint {host: cdn.example.net, port: 443} to "
                                "network_policies.wild");
    policy_unref(p);
}

static void test_decide_no_endpoint(void **state)
{
    (void)state;
    struct policy *p = load_ok(dec_policy);
    struct policy_decision d = decide(p, "nowhere.example.com", 443, "/usr/bin/curl");
    assert_false(d.allow);
    assert_ptr_equal(d.reason_code, POLICY_REASON_NO_ENDPOINT);
    assert_string_equal(d.reason_code, "no_endpoint");
    assert_null(d.policy_key);
    assert_null(d.endpoint);
    assert_int_equal(d.endpoint_index, -1);
    assert_string_equal(d.detail, "no network_policies endpoint matches nowhere.example.com:443");
    assert_string_equal(d.hint, "add an endpoint {host: nowhere.example.com, port: 443} with "
                                "binary /usr/bin/curl to a network_policies entry");

    /* right host, wrong port */
    d = decide(p, "github.com", 443, "/usr/bin/ssh");
    assert_ptr_equal(d.reason_code, POLICY_REASON_NO_ENDPOINT);
    assert_string_equal(d.detail, "no network_policies endpoint matches github.com:443; "
                                  "network_policies.git.endpoints[0] lists github.com on port 22");
    assert_string_equal(d.hint, "add port 443 to network_policies.git.endpoints[0] (use ports: "
                                "[...])");
    policy_unref(p);

    p = load_ok("version: 1\n");
    d = decide(p, "a.org", 1, "/bin/x");
    assert_ptr_equal(d.reason_code, POLICY_REASON_NO_ENDPOINT);
    assert_non_null(strstr(d.detail, "the policy has no network_policies entries"));
    policy_unref(p);

    d = decide(NULL, "a.org", 1, "/bin/x");
    assert_false(d.allow);
    assert_ptr_equal(d.reason_code, POLICY_REASON_NO_ENDPOINT);
    assert_string_equal(d.detail, "no policy is loaded: all egress is denied");
}

static void test_decide_binary_not_allowed(void **state)
{
    (void)state;
    struct policy *p = load_ok(dec_policy);
    const char *anc[] = {"/bin/bash", "/usr/bin/node"};
    struct policy_query q = {.host = "shared.example.org", .port = 443, .exe = "/usr/bin/python3",
                             .ancestors = anc, .n_ancestors = 2};
    struct policy_decision d;
    policy_decide(p, &q, &d);
    assert_false(d.allow);
    assert_ptr_equal(d.reason_code, POLICY_REASON_BINARY_NOT_ALLOWED);
    assert_string_equal(d.reason_code, "binary_not_allowed");
    /* the first (sorted) entry whose endpoint matched */
    assert_string_equal(d.policy_key, "alpha");
    assert_int_equal(d.endpoint_index, 1);
    assert_null(d.endpoint);
    assert_null(d.matched_binary);
    assert_string_equal(d.detail,
                        "binary /usr/bin/python3 (ancestors: /bin/bash -> /usr/bin/node) is not "
                        "allowed to reach shared.example.org:443; the entries whose endpoint "
                        "matches list network_policies.alpha (binaries: /usr/bin/curl, "
                        "/opt/tools/*); network_policies.zeta (binaries: /usr/bin/curl)");
    assert_string_equal(d.hint, "add binary /usr/bin/python3 to network_policies.alpha.binaries");
    policy_unref(p);
}

static void test_decide_ancestor(void **state)
{
    (void)state;
    struct policy *p = load_ok(dec_policy);
    const char *anc[] = {"/bin/sh", "/usr/bin/curl", "/sbin/init"};
    struct policy_query q = {.host = "api.example.org", .port = 443, .exe = "/usr/bin/python3",
                             .ancestors = anc, .n_ancestors = 3};
    struct policy_decision d;
    policy_decide(p, &q, &d);
    assert_true(d.allow);
    assert_ptr_equal(d.matched_by, anc[1]);
    assert_string_equal(d.matched_binary, "/usr/bin/curl");
    assert_non_null(strstr(d.detail, "(matched by ancestor /usr/bin/curl)"));
    policy_unref(p);
}

/* An endpoint from one entry and a binary from another never combine. */
static void test_decide_cross_entry(void **state)
{
    (void)state;
    struct policy *p = load_ok(dec_policy);
    struct policy_decision d = decide(p, "github.com", 22, "/usr/bin/curl");
    assert_false(d.allow);
    assert_ptr_equal(d.reason_code, POLICY_REASON_BINARY_NOT_ALLOWED);
    assert_string_equal(d.policy_key, "git");
    d = decide(p, "api.example.org", 443, "/usr/bin/ssh");
    assert_false(d.allow);
    assert_ptr_equal(d.reason_code, POLICY_REASON_BINARY_NOT_ALLOWED);
    assert_string_equal(d.policy_key, "alpha");
    policy_unref(p);
}

/* Two entries allow: the first in sorted key order wins, whatever the
 * file order. */
static void test_decide_deterministic_order(void **state)
{
    (void)state;
    struct policy *p = load_ok(dec_policy);
    for (int i = 0; i < 3; i++) {
        struct policy_decision d = decide(p, "shared.example.org", 443, "/usr/bin/curl");
        assert_true(d.allow);
        assert_string_equal(d.policy_key, "alpha");
        assert_int_equal(d.endpoint_index, 1);
    }
    policy_unref(p);
}

static void test_decide_ips_and_hostless(void **state)
{
    (void)state;
    struct policy *p = load_ok(dec_policy);
    const struct policy_cidr *ips;
    struct policy_decision d = decide(p, "10.0.7.20", 80, "/usr/bin/wget");
    assert_true(d.allow);
    assert_int_equal(d.endpoint_index, 0);
    /* IP-literal host: implicit allowed_ips [that IP] */
    assert_int_equal(policy_endpoint_allowed_ips(d.endpoint, &ips), 1);
    assert_int_equal(ips[0].family, AF_INET);
    assert_int_equal(ips[0].prefix, 32);
    assert_memory_equal(ips[0].addr, ((uint8_t[]){10, 0, 7, 20}), 4);
    assert_true(decide(p, "::ffff:10.0.7.20", 80, "/usr/bin/wget").allow);
    assert_false(decide(p, "10.0.7.21", 80, "/usr/bin/wget").allow);
    /* IPv6 literal, bracketed or not, any spelling */
    assert_true(decide(p, "fd00::5", 80, "/usr/bin/wget").allow);
    assert_true(decide(p, "[fd00:0:0::5]", 80, "/usr/bin/wget").allow);
    d = decide(p, "fd00::5", 80, "/usr/bin/wget");
    assert_int_equal(policy_endpoint_allowed_ips(d.endpoint, &ips), 1);
    assert_int_equal(ips[0].family, AF_INET6);
    assert_int_equal(ips[0].prefix, 128);
    /* hostless: any host on the port; allowed_ips decides later */
    d = decide(p, "anything.internal", 9443, "/usr/bin/wget");
    assert_true(d.allow);
    assert_int_equal(d.endpoint_index, 2);
    assert_string_equal(policy_endpoint_host(d.endpoint), "");
    assert_int_equal(policy_endpoint_allowed_ips(d.endpoint, &ips), 1);
    assert_int_equal(ips[0].prefix, 12);
    assert_false(decide(p, "anything.internal", 9444, "/usr/bin/wget").allow);
    policy_unref(p);
}

static void test_decide_bad_host(void **state)
{
    (void)state;
    struct policy *p = load_ok(dec_policy);
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct policy_decision d = decide(p, big, 9443, "/usr/bin/wget");
    assert_false(d.allow);
    assert_ptr_equal(d.reason_code, POLICY_REASON_NO_ENDPOINT);
    policy_unref(p);
}

/* A policy binary that is a symlink matches its target too (the proxy
 * sees /proc/PID/exe, which is resolved). */
static void test_decide_symlink_binary(void **state)
{
    (void)state;
    char dir[] = "/tmp/cordon-test-bin-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char real[128], link[128], other[128], y[1024];
    snprintf(real, sizeof(real), "%s/python3.11", dir);
    snprintf(link, sizeof(link), "%s/python3", dir);
    snprintf(other, sizeof(other), "%s/python3.12", dir);
    FILE *f = fopen(real, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(symlink("python3.11", link), 0);
    snprintf(y, sizeof(y), "version: 1\nnetwork_policies:\n  py:\n"
                           "    endpoints: [{host: pypi.org, port: 443}]\n"
                           "    binaries: [{path: %s}]\n", link);
    struct policy *p = load_ok(y);
    struct policy_decision d = decide(p, "pypi.org", 443, real);
    assert_true(d.allow);
    assert_string_equal(d.matched_binary, link);
    char want[512];
    snprintf(want, sizeof(want), "(a symlink to %s)", real);
    assert_non_null(strstr(d.detail, want));
    assert_true(decide(p, "pypi.org", 443, link).allow);

    d = decide(p, "pypi.org", 443, other);
    assert_false(d.allow);
    snprintf(want, sizeof(want), "network_policies.py (binaries: %s (a symlink to %s))", link,
             real);
    assert_non_null(strstr(d.detail, want));
    policy_unref(p);
    unlink(link);
    unlink(real);
    rmdir(dir);
}

static void test_endpoint_matches_and_cidr(void **state)
{
    (void)state;
    struct policy *p = load_ok(dec_policy);
    struct policy_decision d = decide(p, "a.cdn.example.net", 443, "/usr/lib/node/x");
    assert_true(d.allow);

    struct policy *q = load_ok(EP "allowed_ips: [10.0.5.0/24, \"fd00::/8\", "
                                  "\"::ffff:192.168.0.0/112\"]\n        port: 80\n");
    d = decide(q, "db.internal", 80, "/usr/bin/curl");
    assert_true(d.allow);
    const struct policy_cidr *ips;
    assert_int_equal(policy_endpoint_allowed_ips(d.endpoint, &ips), 3);
    struct sockaddr_in a4 = {.sin_family = AF_INET};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "10.0.5.77", &a4.sin_addr);
    assert_true(policy_cidr_contains(&ips[0], (struct sockaddr *)&a4));
    inet_pton(AF_INET, "10.0.6.1", &a4.sin_addr);
    assert_false(policy_cidr_contains(&ips[0], (struct sockaddr *)&a4));
    inet_pton(AF_INET6, "::ffff:10.0.5.1", &a6.sin6_addr);
    assert_true(policy_cidr_contains(&ips[0], (struct sockaddr *)&a6));
    inet_pton(AF_INET6, "fd12::1", &a6.sin6_addr);
    assert_true(policy_cidr_contains(&ips[1], (struct sockaddr *)&a6));
    assert_false(policy_cidr_contains(&ips[0], (struct sockaddr *)&a6));
    /* a mapped-v6 CIDR applies to plain IPv4 */
    inet_pton(AF_INET, "192.168.3.4", &a4.sin_addr);
    assert_true(policy_cidr_contains(&ips[2], (struct sockaddr *)&a4));
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_false(policy_cidr_contains(&ips[0], &un));
    policy_unref(q);
    policy_unref(p);
}

/* ---- reference counting and reload ---- */

static void test_refcount_install(void **state)
{
    (void)state;
    assert_null(policy_current());
    struct policy *a = load_ok("version: 1\n");
    policy_install(a); /* takes our reference */
    struct policy *cur = policy_current();
    assert_ptr_equal(cur, a);
    struct policy *b = load_ok(EP "host: a.example.com\n        port: 1\n");
    policy_install(b);
    /* the old snapshot stays valid for its holder */
    assert_int_equal(policy_n_entries(cur), 0);
    policy_unref(cur);
    cur = policy_current();
    assert_ptr_equal(cur, b);
    assert_ptr_equal(policy_ref(cur), b);
    policy_unref(cur);
    policy_unref(cur);
    policy_install(NULL);
    assert_null(policy_current());
    assert_null(policy_ref(NULL));
    policy_unref(NULL);
}

static volatile int g_stop;

static void *reader(void *arg)
{
    size_t *seen = arg;
    while (!g_stop) {
        struct policy *p = policy_current();
        if (p) {
            struct policy_decision d = decide(p, "a.example.com", 1, "/usr/bin/curl");
            if (d.allow)
                (*seen)++;
            policy_unref(p);
        }
    }
    return NULL;
}

/* Readers take and drop references while the main thread reloads; under
 * ASan/TSan-free runs this shows no use-after-free and no leak. */
static void test_reload_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    size_t seen[4] = {0};
    g_stop = 0;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, &seen[i]), 0);
    for (int i = 0; i < 300; i++)
        policy_install(load_ok(EP "host: a.example.com\n        port: 1\n"));
    g_stop = 1;
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    policy_install(NULL);
}

/* policy_static_same: the sections a sandbox applies at start, compared as
 * a reload does (paths as sets; a network change is not a static one) */
static void test_static_same(void **state)
{
    (void)state;
    static const char *const texts[] = {
        /* 0: the base */
        "version: 1\nfilesystem_policy:\n  read_only: [/usr, /lib]\n  read_write: [/tmp]\n",
        /* 1: same paths in another order, plus a network entry */
        "version: 1\nfilesystem_policy:\n  read_only: [/lib, /usr/]\n  read_write: [/tmp]\n"
        "network_policies:\n  a:\n    endpoints: [{host: a.example.com, port: 443}]\n"
        "    binaries: [{path: /usr/bin/curl}]\n",
        /* 2: /lib removed */
        "version: 1\nfilesystem_policy:\n  read_only: [/usr]\n  read_write: [/tmp]\n",
        /* 3: /etc added */
        "version: 1\nfilesystem_policy:\n  read_only: [/usr, /lib, /etc]\n  read_write: [/tmp]\n",
        /* 4: include_workdir changed */
        "version: 1\nfilesystem_policy:\n  include_workdir: true\n  read_only: [/usr, /lib]\n"
        "  read_write: [/tmp]\n",
        /* 5: the section deleted: the default paths, which add /bin */
        "version: 1\n",
        /* 6: a limit */
        "version: 1\nfilesystem_policy:\n  read_only: [/usr, /lib]\n  read_write: [/tmp]\n"
        "limits: {pids: 64}\n",
        /* 7: landlock */
        "version: 1\nfilesystem_policy:\n  read_only: [/usr, /lib]\n  read_write: [/tmp]\n"
        "landlock: {compatibility: hard_requirement}\n",
        /* 8: process */
        "version: 1\nfilesystem_policy:\n  read_only: [/usr, /lib]\n  read_write: [/tmp]\n"
        "process: {run_as_user: nobody}\n",
    };
    static const char *const want[] = {NULL, NULL, "read_only: '/lib' was removed",
                                        "read_only: '/etc' was added", "include_workdir changed",
                                        "filesystem_policy.read_only: '/bin' was added",
                                        "limits changed",
                                        "landlock.compatibility changed", "run_as_user"};
    struct policy *base = load_ok(texts[0]);
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct policy *p = load_ok(texts[i]);
        char why[512] = "";
        bool same = policy_static_same(base, p, why, sizeof(why));
        if (!want[i]) {
            assert_true(same);
        } else {
            assert_false(same);
            assert_non_null(strstr(why, want[i]));
        }
        policy_unref(p);
    }
    policy_unref(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_spec_example),
        cmocka_unit_test(test_load_minimal_and_defaults),
        cmocka_unit_test(test_load_timeouts),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_validation_errors),
        cmocka_unit_test(test_too_many_paths),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_collects_all_errors),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_decide_exact_host),
        cmocka_unit_test(test_decide_wildcards),
        cmocka_unit_test(test_decide_no_endpoint),
        cmocka_unit_test(test_decide_binary_not_allowed),
        cmocka_unit_test(test_decide_ancestor),
        cmocka_unit_test(test_decide_cross_entry),
        cmocka_unit_test(test_decide_deterministic_order),
        cmocka_unit_test(test_decide_ips_and_hostless),
        cmocka_unit_test(test_decide_bad_host),
        cmocka_unit_test(test_decide_symlink_binary),
        cmocka_unit_test(test_endpoint_matches_and_cidr),
        cmocka_unit_test(test_refcount_install),
        cmocka_unit_test(test_reload_threads),
        cmocka_unit_test(test_static_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
