/* Unit tests: OpenShell policies load unchanged and decide the same.
 * The cases below re-express, in our own words, what OpenShell's own tests
 * and docs assert (host wildcards, canonical paths, deny_rules, entries
 * without binaries, rules/access without protocol, tcp/sql/websocket,
 * middleware and credential fields), plus the shapes of the peers' real
 * sandbox policies (NemoClaw blueprint and presets as merged, Community
 * sandboxes, OpenShell examples). */
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

#define CURL "/usr/bin/curl"

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

/* Loads yaml; it must load. Warnings containing each of the NULL-ended
 * needles must be present. */
static struct policy *load_warn(const char *yaml, ...)
{
    struct policy_diag d = {0};
    struct policy *p = NULL;
    va_list ap;
    int rc = policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &d);
    if (rc != 0)
        dump(&d);
    assert_int_equal(rc, 0);
    va_start(ap, yaml);
    for (const char *n; (n = va_arg(ap, const char *));) {
        if (!diag_has(&d, n)) {
            fprintf(stderr, "missing warning: %s\n", n);
            dump(&d);
        }
        assert_true(diag_has(&d, n));
    }
    va_end(ap);
    policy_diag_free(&d);
    return p;
}

static void expect_error(const char *yaml, const char *needle)
{
    struct policy_diag d = {0};
    struct policy *p = NULL;
    int rc = policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &d);
    if (rc != -EINVAL || !diag_has(&d, needle)) {
        fprintf(stderr, "expected error: %s (rc=%d)\n", needle, rc);
        dump(&d);
    }
    assert_int_equal(rc, -EINVAL);
    assert_null(p);
    assert_true(diag_has(&d, needle));
    policy_diag_free(&d);
}

static bool allows(const struct policy *p, const char *host, uint16_t port)
{
    struct policy_decision d;
    struct policy_query q = {.host = host, .port = port, .exe = CURL};
    policy_decide(p, &q, &d);
    return d.allow;
}

static const struct policy_endpoint *ep_of(const struct policy *p, const char *host,
                                           uint16_t port)
{
    struct policy_decision d;
    struct policy_query q = {.host = host, .port = port, .exe = CURL};
    policy_decide(p, &q, &d);
    assert_true(d.allow);
    return d.endpoint;
}

static struct policy_l7_result g_r;

static struct policy_l7_result *l7(const struct policy *p, const char *host, const char *method,
                                   const char *target)
{
    assert_int_equal(policy_l7_check(ep_of(p, host, 443), method, target, &g_r), 0);
    return &g_r;
}

static struct policy_l7_result *body(const struct policy *p, const char *host,
                                     const char *target, const char *json)
{
    assert_int_equal(policy_l7_check(ep_of(p, host, 443), "POST", target, &g_r), 0);
    assert_true(g_r.need_body);
    assert_false(g_r.allow);
    assert_int_equal(policy_l7_check_body(json, strlen(json), true, &g_r), 0);
    if (!g_r.allow)
        fprintf(stderr, "  body denied: %s\n", g_r.detail);
    return &g_r;
}

#define HDR "version: 1\nnetwork_policies:\n  a:\n    binaries: [{path: /usr/bin/curl}]\n" \
            "    endpoints:\n"

/* ---- host wildcards (OpenShell opa.rs wildcard_host_* cases) ---- */

static void test_host_wildcards(void **state)
{
    (void)state;
    struct policy *p = load_warn(HDR
        "      - {host: \"*.example.com\", ports: [443, 8443]}\n"
        "      - {host: \"*-aiplatform.googleapis.com\", port: 443}\n"
        "      - {host: \"*.s3.*.amazonaws.com\", port: 443}\n"
        "      - {host: \"**.deep.example.org\", port: 443}\n"
        "      - {host: \"*.UPPER.EXAMPLE.NET\", port: 443}\n"
        "      - {host: \"api*.example.io\", port: 443}\n", NULL);
    assert_true(allows(p, "api.example.com", 443));
    assert_true(allows(p, "api.example.com", 8443));
    assert_false(allows(p, "api.example.com", 80));
    assert_false(allows(p, "deep.sub.example.com", 443)); /* exactly one label */
    assert_false(allows(p, "example.com", 443));          /* never the apex */
    assert_true(allows(p, "api.upper.example.net", 443)); /* case-insensitive */
    assert_true(allows(p, "us-central1-aiplatform.googleapis.com", 443));
    assert_false(allows(p, "us-central1.aiplatform.googleapis.com", 443));
    assert_false(allows(p, "aiplatform.googleapis.com", 443));
    assert_true(allows(p, "my-bucket.s3.us-east-1.amazonaws.com", 443));
    assert_false(allows(p, "s3.us-east-1.amazonaws.com", 443));
    assert_false(allows(p, "my-bucket.s3.dualstack.us-east-1.amazonaws.com", 443));
    assert_true(allows(p, "a.deep.example.org", 443));
    assert_true(allows(p, "a.b.c.deep.example.org", 443));
    assert_false(allows(p, "deep.example.org", 443));
    assert_true(allows(p, "api.example.io", 443));
    assert_true(allows(p, "api-v2.example.io", 443));
    assert_false(allows(p, "x.api.example.io", 443));
    assert_false(allows(p, "api.example.com%2e", 443));
    assert_false(allows(p, "api%2eexample.com", 443));

    /* the hint for one label too many names the '**' form */
    struct policy_decision d;
    struct policy_query q = {.host = "deep.sub.example.com", .port = 443, .exe = CURL};
    policy_decide(p, &q, &d);
    assert_ptr_equal(d.reason_code, POLICY_REASON_NO_ENDPOINT);
    assert_non_null(strstr(d.hint, "'**.example.com'"));
    policy_unref(p);
}

static void test_host_wildcard_shapes(void **state)
{
    (void)state;
    /* refused as OpenShell refuses them (validate_wildcard_host_* cases) */
    expect_error(HDR "      - {host: \"*\", port: 443}\n",
                 "t.yaml:6:16: error: network_policies.a.endpoints[0].host: '*' would match "
                 "every host");
    expect_error(HDR "      - {host: \"**\", port: 443}\n", "'**' would match every host");
    expect_error(HDR "      - {host: \"*.com\", port: 443}\n", "would match a whole top-level");
    expect_error(HDR "      - {host: \"**.com\", port: 443}\n", "would match a whole top-level");
    expect_error(HDR "      - {host: \"*.s3.us-*.amazonaws.com\", port: 443}\n",
                 "partial wildcard outside the first label");
    expect_error(HDR "      - {host: \"*.s3.**.amazonaws.com\", port: 443}\n",
                 "uses '**' other than as the whole first label");
    expect_error(HDR "      - {host: \"a**.example.com\", port: 443}\n",
                 "uses '**' other than as the whole first label");
    /* stricter than OpenShell: a wildcard top-level label */
    expect_error(HDR "      - {host: \"example.*\", port: 443}\n",
                 "wildcard in the top-level label");
}

/* ---- canonical paths (issue #12 item 10; OpenShell path.rs) ---- */

static const char canon_policy[] = HDR
    "      - host: api.example.com\n"
    "        port: 443\n"
    "        protocol: rest\n"
    "        access: full\n"
    "        deny_rules:\n"
    "          - {method: \"*\", path: \"/admin/**\"}\n"
    "          - {method: \"*\", path: \"/users/@admin/**\"}\n"
    "      - host: npm.example.com\n"
    "        port: 443\n"
    "        protocol: rest\n"
    "        allow_encoded_slash: true\n"
    "        rules:\n"
    "          - allow: {method: GET, path: \"/@scope%2Fname\"}\n"
    "          - allow: {method: GET, path: \"/pub/**\"}\n";

static void expect_path(const struct policy *p, const char *target, const char *canon,
                        bool allow)
{
    struct policy_l7_result *r = l7(p, "api.example.com", "GET", target);
    if (strcmp(r->path, canon) != 0 || r->allow != allow)
        fprintf(stderr, "%s -> '%s' allow=%d (%s)\n", target, r->path, r->allow, r->detail);
    assert_string_equal(r->path, canon);
    assert_int_equal(r->allow, allow);
}

static void test_canonical_paths(void **state)
{
    (void)state;
    struct policy *p = load_warn(canon_policy, NULL);
    /* OpenShell's canonical forms */
    expect_path(p, "/a/./b", "/a/b", true);
    expect_path(p, "/a/b/.", "/a/b/", true);
    expect_path(p, "/a/../b", "/b", true);
    expect_path(p, "/public/%2e%2e/secret", "/secret", true);
    expect_path(p, "//public//../secret", "/secret", true);
    expect_path(p, "/files/hello%20world.txt", "/files/hello%20world.txt", true);
    expect_path(p, "/search/a%3Fb", "/search/a%3Fb", true);
    expect_path(p, "/users/%40alice", "/users/@alice", true);
    expect_path(p, "/a;jsessionid=xyz/b", "/a/b", true);
    expect_path(p, "/public;x=1/../secret", "/secret", true);
    expect_path(p, "/users/caf%c3%a9", "/users/caf%C3%A9", true);
    expect_path(p, "http://host:443/foo", "/foo", true);
    expect_path(p, "/%7e%41", "/~A", true);
    expect_path(p, "/a%25b", "/a%25b", true); /* no double decoding */
    /* the two bypasses of the adversarial suite */
    expect_path(p, "/admin;x/secret", "/admin/secret", false);
    expect_path(p, "/users/%40admin/k", "/users/@admin/k", false);
    expect_path(p, "/%61dmin/x", "/admin/x", false);
    expect_path(p, "/admin%3Bx/y", "/admin/y", false); /* decoded ';' starts parameters */
    assert_int_equal(l7(p, "api.example.com", "GET", "/admin;x/secret")->by,
                     POLICY_L7_BY_DENY_RULE);
    /* refused: not canonicalizable */
    const char *bad[] = {"/a%2fb", "/a%5Cb", "/public/..;/secret", "/a/.;x/b", "/..", "/a%00",
                         "/a%0Ab", "/a%7F", "/a#b", "/a\\b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct policy_l7_result *r = l7(p, "api.example.com", "GET", bad[i]);
        if (r->allow || r->by != POLICY_L7_BY_BAD_TARGET)
            fprintf(stderr, "%s: %s\n", bad[i], r->detail);
        assert_false(r->allow);
        assert_int_equal(r->by, POLICY_L7_BY_BAD_TARGET);
    }
    /* allow_encoded_slash keeps %2F inside the segment */
    struct policy_l7_result *r = l7(p, "npm.example.com", "GET", "/@scope%2fname");
    assert_true(r->allow);
    assert_string_equal(r->path, "/@scope%2Fname");
    r = l7(p, "npm.example.com", "GET", "/pub/a%2F..%2Fb");
    assert_false(r->allow); /* a dot segment hidden behind %2F */
    r = l7(p, "npm.example.com", "GET", "/@scope/name");
    assert_false(r->allow);
    policy_unref(p);
    /* a pattern with %2F on an endpoint without allow_encoded_slash never matches */
    expect_error(HDR "      - host: a.example.com\n        port: 443\n        protocol: rest\n"
                 "        rules: [{allow: {method: GET, path: \"/a%2Fb\"}}]\n",
                 "set allow_encoded_slash: true");
    expect_error(HDR "      - host: a.example.com\n        port: 443\n        protocol: rest\n"
                 "        rules: [{allow: {method: GET, path: \"/a;x\"}}]\n",
                 "path parameters are removed from requests");
}

/* ---- deny_rules (OpenShell opa.rs l7_deny_rule_* cases) ---- */

static const char deny_policy[] = HDR
    "      - host: api.github.com\n"
    "        port: 443\n"
    "        protocol: rest\n"
    "        access: read-write\n"
    "        deny_rules:\n"
    "          - {method: POST, path: \"/repos/*/pulls/*/reviews\"}\n"
    "          - {method: PUT, path: \"/repos/*/branches/*/protection\"}\n"
    "          - {method: \"*\", path: \"/repos/*/rulesets\"}\n"
    "          - {method: DELETE, path: \"/**\", query: {force: \"true\"}}\n"
    "          - {method: GET, path: \"/secret/**\"}\n"
    "      - host: rules.example.com\n"
    "        port: 443\n"
    "        protocol: rest\n"
    "        rules:\n"
    "          - allow: {method: \"*\", path: \"/**\"}\n"
    "        deny_rules:\n"
    "          - {method: GET, path: \"/x\", query: {tag: {any: [\"bad*\"]}}}\n";

static void test_deny_rules(void **state)
{
    (void)state;
    struct policy *p = load_warn(deny_policy, NULL);
    struct policy_l7_result *r = l7(p, "api.github.com", "POST", "/repos/o/pulls/1/reviews");
    assert_false(r->allow);
    assert_int_equal(r->by, POLICY_L7_BY_DENY_RULE);
    assert_non_null(strstr(r->detail, "deny_rules[0]"));
    assert_non_null(strstr(r->hint, "network_policies.a.endpoints[0].deny_rules[0]"));
    assert_true(l7(p, "api.github.com", "POST", "/repos/o/pulls/1/comments")->allow);
    assert_true(l7(p, "api.github.com", "GET", "/repos/o/pulls/1/reviews")->allow);
    assert_false(l7(p, "api.github.com", "PUT", "/repos/o/branches/main/protection")->allow);
    assert_false(l7(p, "api.github.com", "GET", "/repos/o/rulesets")->allow);
    assert_false(l7(p, "api.github.com", "PATCH", "/repos/o/rulesets")->allow);
    /* access still limits what deny_rules leave */
    assert_false(l7(p, "api.github.com", "DELETE", "/repos/o")->allow);
    assert_int_equal(g_r.by, POLICY_L7_BY_ACCESS);
    /* a deny rule for GET also covers HEAD */
    assert_false(l7(p, "api.github.com", "HEAD", "/secret/x")->allow);
    /* query: any value matching denies; other values and absent keys do not */
    assert_false(l7(p, "rules.example.com", "GET", "/x?tag=bad1")->allow);
    assert_false(l7(p, "rules.example.com", "GET", "/x?tag=ok&tag=bad2")->allow);
    assert_true(l7(p, "rules.example.com", "GET", "/x?tag=ok")->allow);
    assert_true(l7(p, "rules.example.com", "GET", "/x")->allow);
    policy_unref(p);

    expect_error(HDR "      - host: a.example.com\n        port: 443\n        protocol: rest\n"
                 "        deny_rules: [{method: GET, path: /x}]\n",
                 "t.yaml:9:21: error: network_policies.a.endpoints[0]: deny_rules need rules or "
                 "access");
    expect_error(HDR "      - host: a.example.com\n        port: 443\n        protocol: rest\n"
                 "        access: full\n        deny_rules: []\n",
                 "deny_rules: empty list");
    expect_error(HDR "      - host: a.example.com\n        port: 443\n        protocol: rest\n"
                 "        access: full\n        deny_rules: [{method: GET}]\n",
                 "deny_rules[0]: path is required");
}

/* ---- schema: fields OpenShell policies carry ---- */

static void test_entries_without_binaries(void **state)
{
    (void)state;
    struct policy *p = load_warn(
        "version: 1\nnetwork_policies:\n  slack:\n    endpoints:\n"
        "      - {host: slack.com, port: 443, protocol: rest, access: read-only}\n",
        "t.yaml:4:5: warning: network_policies.slack: no binaries: this entry matches no "
        "program", NULL);
    struct policy_decision d;
    struct policy_query q = {.host = "slack.com", .port = 443, .exe = CURL};
    policy_decide(p, &q, &d);
    assert_false(d.allow);
    assert_ptr_equal(d.reason_code, POLICY_REASON_BINARY_NOT_ALLOWED);
    policy_unref(p);
}

/* The policy from the founding WebSocket-after-101 report, as written. */
static const char slack_policy[] =
    "version: 1\n"
    "network_policies:\n"
    "  slack_websocket:\n"
    "    name: slack_websocket\n"
    "    endpoints:\n"
    "      - { host: wss-primary.slack.com, port: 443, enforcement: enforce, access: full }\n"
    "      - { host: wss-backup.slack.com, port: 443, enforcement: enforce, access: full }\n"
    "    binaries: [{ path: /usr/bin/node }, { path: /usr/bin/curl }]\n";

static void test_access_without_protocol(void **state)
{
    (void)state;
    struct policy *p = load_warn(slack_policy,
        "t.yaml:6:81: warning: network_policies.slack_websocket.endpoints[0]: access without "
        "protocol is read as protocol: rest", "access: full is enforced", NULL);
    const struct policy_endpoint *ep = ep_of(p, "wss-primary.slack.com", 443);
    assert_true(policy_endpoint_is_rest(ep));
    assert_int_equal(policy_endpoint_access(ep), POLICY_ACCESS_FULL);
    assert_true(l7(p, "wss-backup.slack.com", "GET", "/link/?ticket=x")->allow);
    policy_unref(p);

    /* NemoClaw's blueprint: rules without protocol are enforced */
    p = load_warn(HDR "      - host: statsig.example.com\n        port: 443\n"
                  "        rules:\n          - allow: { method: GET, path: \"/**\" }\n",
                  "rules without protocol are read as protocol: rest", NULL);
    assert_true(l7(p, "statsig.example.com", "GET", "/x")->allow);
    assert_false(l7(p, "statsig.example.com", "POST", "/x")->allow);
    policy_unref(p);
    p = load_warn(HDR "      - {host: github.com, port: 443, access: read-only}\n",
                  "access: read-only is enforced", NULL);
    assert_false(l7(p, "github.com", "POST", "/x")->allow);
    policy_unref(p);
}

static void test_protocols_tcp_sql_websocket(void **state)
{
    (void)state;
    struct policy *p = load_warn(HDR
        "      - {host: redis.example.com, port: 6379, protocol: tcp}\n"
        "      - {host: db.example.com, port: 5432, protocol: sql, enforcement: audit, "
        "access: full}\n"
        "      - host: rt.example.com\n"
        "        port: 443\n"
        "        protocol: websocket\n"
        "        rules:\n"
        "          - allow: {method: GET, path: \"/v1/realtime/**\"}\n"
        "          - allow: {method: WEBSOCKET_TEXT, path: \"/v1/realtime/**\"}\n"
        "          - allow: {method: GET, path: \"/v1/ro/**\"}\n"
        "      - {host: ws-ro.example.com, port: 443, protocol: websocket, access: read-only}\n"
        "      - {host: ws-rw.example.com, port: 443, protocol: websocket, access: read-write}\n",
        "t.yaml:7:54: warning: network_policies.a.endpoints[1]: protocol: sql is relayed as a TCP "
        "passthrough: cordon does not parse or log SQL statements; rules and access are not "
        "applied", NULL);
    expect_error(HDR "      - {host: db.example.com, port: 5432, protocol: sql}\n",
                 "protocol: sql needs rules or access, as OpenShell requires");
    assert_false(policy_endpoint_is_rest(ep_of(p, "redis.example.com", 6379)));
    assert_true(allows(p, "db.example.com", 5432));
    assert_false(policy_endpoint_is_rest(ep_of(p, "db.example.com", 5432)));
    assert_true(l7(p, "rt.example.com", "GET", "/v1/realtime/x")->allow);
    /* an upgrade whose client messages would not be allowed is refused */
    assert_false(l7(p, "rt.example.com", "GET", "/v1/ro/x")->allow);
    assert_non_null(strstr(g_r.detail, "WEBSOCKET_TEXT"));
    assert_false(l7(p, "ws-ro.example.com", "GET", "/x")->allow);
    assert_true(l7(p, "ws-rw.example.com", "GET", "/x")->allow);
    policy_unref(p);

    expect_error(HDR "      - {host: 10.1.2.3, port: 6379, protocol: tcp}\n",
                 "protocol: tcp needs a DNS host name");
    expect_error(HDR "      - {host: r.example.com, port: 6379, protocol: tcp, access: full}\n",
                 "access is not valid with protocol: tcp");
    expect_error(HDR "      - {host: r.example.com, port: 6379, protocol: tcp, path: /x}\n",
                 "path needs an inspected protocol");
    expect_error(HDR "      - {host: d.example.com, port: 5432, protocol: sql, "
                 "enforcement: enforce}\n", "SQL enforcement needs SQL parsing");
    expect_error(HDR "      - {host: w.example.com, port: 443, protocol: websocket, rules: "
                 "[{allow: {method: POST, path: /x}}]}\n", "'POST' is not a WebSocket action");
}

static void test_unapplied_fields_warn(void **state)
{
    (void)state;
    struct policy *p = load_warn(
        "version: 1\n"
        "network_policies:\n"
        "  aws:\n"
        "    endpoints:\n"
        "      - host: bedrock.us-east-1.amazonaws.com\n"
        "        port: 443\n"
        "        protocol: rest\n"
        "        access: full\n"
        "        credential_signing: sigv4\n"
        "        signing_service: bedrock\n"
        "        credential_binding: {provider: work-aws}\n"
        "        websocket_credential_rewrite: true\n"
        "        allow_uninspected_credentials: true\n"
        "    binaries: [{path: /usr/bin/curl}]\n"
        "network_middlewares:\n"
        "  guard:\n"
        "    middleware: openshell/regex\n"
        "    order: 10\n"
        "    config: {mode: redact}\n"
        "    on_error: fail_closed\n"
        "    endpoints: {include: [\"*.example.com\"], exclude: [a.example.com]}\n",
        "t.yaml:9:29: warning: network_policies.aws.endpoints[0].credential_signing: "
        "credential_signing is not applied: cordon injects, rewrites and signs no provider "
        "credentials",
        "t.yaml:10:26: warning: network_policies.aws.endpoints[0].signing_service: "
        "signing_service is not applied",
        "t.yaml:11:29: warning: network_policies.aws.endpoints[0].credential_binding: "
        "credential_binding is not applied",
        "websocket_credential_rewrite is not applied",
        "allow_uninspected_credentials has no effect",
        "t.yaml:16:3: warning: network_middlewares.guard: network_middlewares.guard "
        "(openshell/regex) is not applied: cordon runs no supervisor middleware", NULL);
    policy_unref(p);
    expect_error("version: 1\nnetwork_middlewares:\n  g:\n    order: 1\n",
                 "network_middlewares.g: middleware is required");
    expect_error(HDR "      - {host: a.example.com, port: 443, credential_signing: sigv5}\n",
                 "'sigv5' is not allowed (allowed: sigv4, sigv4:body, sigv4:no_body");
    /* the combinations OpenShell refuses */
    expect_error(HDR "      - {host: a.example.com, port: 443, credential_signing: sigv4}\n",
                 "credential_signing needs signing_service");
    expect_error(HDR "      - {host: a.example.com, port: 443, credential_signing: sigv4, "
                 "signing_service: s3, request_body_credential_rewrite: true}\n",
                 "request_body_credential_rewrite and credential_signing are mutually exclusive");
    expect_error("version: 1\nnetwork_middlewares:\n  a: {middleware: x, endpoints: {include: "
                 "[a.example.com]}}\n  b: {middleware: x, endpoints: {include: [a.example.com]}}\n",
                 "network_middlewares.b: order 0 is also network_middlewares.a's");
}

/* The peers' real policies, as shapes: NemoClaw's blueprint with a preset
 * merged in (presets carry no binaries), a Community sandbox with an
 * in-label wildcard and tls: terminate, OpenShell's transparent-TCP and
 * MCP conformance examples. */
static void test_peer_policy_shapes(void **state)
{
    (void)state;
    struct policy *p = load_warn(
        "version: 1\n"
        "filesystem_policy:\n"
        "  include_workdir: true\n"
        "  read_only: [/usr, /lib, /proc, /dev/urandom, /app, /etc, /var/log]\n"
        "  read_write: [/sandbox, /tmp, /dev/null]\n"
        "landlock: {compatibility: best_effort}\n"
        "process: {run_as_user: sandbox, run_as_group: sandbox}\n"
        "network_policies:\n"
        "  claude_code:\n"
        "    name: claude_code\n"
        "    endpoints:\n"
        "      - host: api.anthropic.com\n"
        "        port: 443\n"
        "        protocol: rest\n"
        "        enforcement: enforce\n"
        "        tls: terminate\n"
        "        rules:\n"
        "          - allow: { method: \"*\", path: \"/**\" }\n"
        "      - host: sentry.io\n"
        "        port: 443\n"
        "        rules:\n"
        "          - allow: { method: \"*\", path: \"/**\" }\n"
        "    binaries:\n"
        "      - { path: /usr/local/bin/claude }\n"
        "  github:\n"
        "    endpoints:\n"
        "      - { host: github.com, port: 443, access: full }\n"
        "    binaries: [{ path: /usr/bin/git }]\n"
        "  telegram:\n"
        "    name: telegram\n"
        "    endpoints:\n"
        "      - host: api.telegram.org\n"
        "        port: 443\n"
        "        protocol: rest\n"
        "        rules:\n"
        "          - allow: { method: GET, path: \"/bot*/**\" }\n"
        "  gemini:\n"
        "    endpoints:\n"
        "      - { host: \"*-aiplatform.googleapis.com\", port: 443 }\n"
        "      - { host: generativelanguage.googleapis.com, port: 443, protocol: rest, "
        "enforcement: enforce, access: full, tls: terminate }\n"
        "    binaries: [{ path: /usr/bin/curl }]\n"
        "  redis:\n"
        "    endpoints: [{ host: redis.example.internal, port: 6379, protocol: tcp }]\n"
        "    binaries: [{ path: \"/usr/bin/redis-*\" }]\n"
        "  mcp_conformance:\n"
        "    endpoints:\n"
        "      - host: mcp.example.test\n"
        "        port: 443\n"
        "        path: /mcp\n"
        "        protocol: mcp\n"
        "        enforcement: enforce\n"
        "        allowed_ips: [10.0.0.0/8]\n"
        "        mcp: { max_body_bytes: 131072, allow_all_known_mcp_methods: true }\n"
        "        rules:\n"
        "          - allow: {}\n"
        "    binaries: [{ path: /usr/bin/curl }]\n",
        "network_policies.telegram: no binaries", "'terminate' is deprecated", NULL);
    assert_true(allows(p, "us-east5-aiplatform.googleapis.com", 443));
    assert_true(l7(p, "generativelanguage.googleapis.com", "POST", "/v1/x")->allow);
    assert_true(allows(p, "mcp.example.test", 443));
    struct policy_l7_result *r = body(p, "mcp.example.test", "/mcp",
                                      "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                                      "\"params\":{\"name\":\"anything\"}}");
    assert_true(r->allow);
    r = body(p, "mcp.example.test", "/mcp", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x/y\"}");
    assert_false(r->allow); /* not a known MCP method */
    policy_unref(p);
}

/* ---- endpoints that overlap but disagree on tls (OpenShell ambiguity.rs) ---- */

#define TWO(a, b) "version: 1\nnetwork_policies:\n" \
    "  one:\n    binaries: [{path: /usr/bin/curl}]\n    endpoints:\n      - " a "\n" \
    "  two:\n    binaries: [{path: /usr/bin/curl}]\n    endpoints:\n      - " b "\n"

static void test_tls_ambiguity(void **state)
{
    (void)state;
    /* exact vs wildcard for the same host: refused, at the later endpoint */
    expect_error(TWO("{host: api.example.com, port: 443}",
                     "{host: \"*.example.com\", port: 443, tls: skip}"),
                 "t.yaml:10:9: error: network_policies.two.endpoints[0]: host '*.example.com' "
                 "overlaps network_policies.one.endpoints[0] (host 'api.example.com', line 6) "
                 "on port 443, but they differ in tls");
    /* key order does not hide it: the later endpoint in the file is named */
    expect_error(TWO("{host: \"*.example.com\", port: 443, tls: skip}",
                     "{host: api.example.com, port: 443, protocol: rest, access: full}"),
                 "t.yaml:10:9: error: network_policies.two.endpoints[0]: host 'api.example.com'");
    /* same exact host twice; within one entry too */
    expect_error(TWO("{host: a.example.com, ports: [80, 443], tls: skip}",
                     "{host: A.EXAMPLE.COM, port: 443}"), "on port 443, but they differ in tls");
    expect_error(HDR "      - {host: a.example.com, port: 443}\n"
                     "      - {host: a.example.com, port: 443, tls: skip}\n",
                 "network_policies.a.endpoints[1]: host 'a.example.com' overlaps "
                 "network_policies.a.endpoints[0]");
    /* intersecting wildcards; '**' against a deeper pattern; hostless */
    expect_error(TWO("{host: \"api-*.example.com\", port: 443}",
                     "{host: \"*-v2.example.com\", port: 443, tls: skip}"), "differ in tls");
    expect_error(TWO("{host: \"**.example.com\", port: 443}",
                     "{host: \"*.s3.example.com\", port: 443, tls: skip}"), "differ in tls");
    expect_error(TWO("{host: 10.0.0.5, port: 443}",
                     "{port: 443, allowed_ips: [10.0.0.0/8], tls: skip}"), "<any host>");
    /* `terminate` is automatic: it conflicts with skip, not with an omitted tls */
    expect_error(TWO("{host: x.example.com, port: 443, tls: terminate}",
                     "{host: x.example.com, port: 443, tls: skip}"), "differ in tls");
    struct policy *p = load_warn(TWO("{host: x.example.com, port: 443, tls: terminate}",
                                     "{host: x.example.com, port: 443}"), NULL);
    policy_unref(p);
    /* no overlap: disjoint ports, one label vs two, disjoint label globs,
     * different IPs, or the same tls */
    const char *fine[] = {
        TWO("{host: api.example.com, port: 443}",
            "{host: \"*.example.com\", port: 8443, tls: skip}"),
        TWO("{host: a.b.example.com, port: 443}",
            "{host: \"*.example.com\", port: 443, tls: skip}"),
        TWO("{host: \"api-*.example.com\", port: 443}",
            "{host: \"web-*.example.com\", port: 443, tls: skip}"),
        TWO("{host: \"*.s3.*.amazonaws.com\", port: 443}",
            "{host: \"*.ec2.amazonaws.com\", port: 443, tls: skip}"),
        TWO("{host: 10.0.0.5, port: 443}", "{host: 10.0.0.6, port: 443, tls: skip}"),
        TWO("{host: api.example.com, port: 443, tls: skip}",
            "{host: \"*.example.com\", port: 443, tls: skip}"),
        TWO("{host: example.com, port: 443}",
            "{host: \"**.example.com\", port: 443, tls: skip}"),
    };
    for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
        p = load_warn(fine[i], NULL);
        policy_unref(p);
    }
}

/* ---- the other conflicts OpenShell refuses (ambiguity.rs) ---- */

static void test_other_ambiguities(void **state)
{
    (void)state;
    /* allowed_ips compared as a set, whatever the order */
    struct policy *p = load_warn(TWO("{host: api.example.com, port: 443, allowed_ips: [10.0.1.0/24, 10.0.0.0/24]}",
                                     "{host: api.example.com, port: 443, allowed_ips: [10.0.0.0/24, 10.0.1.0/24]}"),
                                 NULL);
    policy_unref(p);
    expect_error(TWO("{host: api.example.com, port: 443, allowed_ips: [10.0.1.0/24]}",
                     "{host: api.example.com, port: 443, allowed_ips: [10.0.2.0/24]}"),
                 "differ in allowed_ips");
    /* explicit tcp vs omitted protocol */
    expect_error(TWO("{host: api.example.com, port: 443, protocol: tcp}",
                     "{host: api.example.com, port: 443}"), "differ in protocol: tcp");
    /* request pipeline: protocol on the same (or no) path */
    expect_error(TWO("{host: api.example.com, port: 443, protocol: rest, access: full}",
                     "{host: api.example.com, port: 443, protocol: graphql, access: read-only}"),
                 "differ in protocol");
    expect_error(TWO("{host: api.example.com, port: 443, path: \"/v1/*\", protocol: rest, access: full}",
                     "{host: api.example.com, port: 443, path: \"/v*/x\", protocol: graphql, access: full}"),
                 "differ in protocol");
    /* a more specific path overrides; disjoint paths do not meet */
    p = load_warn(TWO("{host: api.example.com, port: 443, protocol: rest, access: full}",
                      "{host: api.example.com, port: 443, path: /graphql, protocol: graphql, access: full}"),
                  NULL);
    policy_unref(p);
    p = load_warn(TWO("{host: api.example.com, port: 443, path: /graphql, protocol: graphql, access: full}",
                      "{host: api.example.com, port: 443, path: \"/repos/**\", protocol: rest, access: full}"),
                  NULL);
    policy_unref(p);
    /* access and rules add up: no conflict */
    p = load_warn(TWO("{host: api.example.com, port: 443, protocol: rest, access: read-only}",
                      "{host: api.example.com, port: 443, protocol: rest, access: read-write}"),
                  NULL);
    policy_unref(p);
    /* a plain L4 endpoint does not compete with an inspected one */
    p = load_warn(TWO("{host: api.example.com, port: 443}",
                      "{host: api.example.com, port: 443, protocol: rest, access: full}"), NULL);
    policy_unref(p);
    expect_error(TWO("{host: api.example.com, port: 443, protocol: rest, access: full}",
                     "{host: api.example.com, port: 443, protocol: rest, access: full, "
                     "allow_encoded_slash: true}"), "differ in allow_encoded_slash");
    expect_error(TWO("{host: api.example.com, port: 443, protocol: rest, access: full}",
                     "{host: api.example.com, port: 443, protocol: rest, access: full, "
                     "enforcement: audit}"), "differ in enforcement");
    /* body limits only within one protocol family */
    expect_error(TWO("{host: a.example.com, port: 443, protocol: mcp, mcp: {allow_all_known_mcp_methods: true, max_body_bytes: 2048}}",
                     "{host: a.example.com, port: 443, protocol: mcp, mcp: {allow_all_known_mcp_methods: true, max_body_bytes: 4096}}"),
                 "differ in max_body_bytes");
    expect_error(TWO("{host: a.example.com, port: 443, protocol: websocket, rules: [{allow: {method: GET, path: /}}, "
                     "{allow: {operation_type: subscription}}]}",
                     "{host: a.example.com, port: 443, protocol: websocket, rules: [{allow: {method: GET, path: /}}]}"),
                 "differ in GraphQL-over-WebSocket rules");
}

/* protocol names are read without regard to case, as OpenShell does */
static void test_protocol_case(void **state)
{
    (void)state;
    struct policy *p = load_warn(HDR "      - {host: a.example.com, port: 443, protocol: REST, "
                                     "access: read-only}\n", NULL);
    assert_true(l7(p, "a.example.com", "GET", "/x")->allow);
    assert_false(l7(p, "a.example.com", "POST", "/x")->allow);
    policy_unref(p);
    p = load_warn(HDR "      - {host: a.example.com, port: 443, protocol: Mcp, "
                      "rules: [{allow: {method: initialize}}]}\n", NULL);
    assert_true(body(p, "a.example.com", "/", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}")->allow);
    assert_false(body(p, "a.example.com", "/", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}")->allow);
    policy_unref(p);
    expect_error(HDR "      - {host: a.example.com, port: 443, protocol: FTP}\n", "'FTP' is not allowed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_wildcards),
        cmocka_unit_test(test_host_wildcard_shapes),
        cmocka_unit_test(test_canonical_paths),
        cmocka_unit_test(test_deny_rules),
        cmocka_unit_test(test_entries_without_binaries),
        cmocka_unit_test(test_access_without_protocol),
        cmocka_unit_test(test_protocols_tcp_sql_websocket),
        cmocka_unit_test(test_unapplied_fields_warn),
        cmocka_unit_test(test_peer_policy_shapes),
        cmocka_unit_test(test_tls_ambiguity),
        cmocka_unit_test(test_other_ambiguities),
        cmocka_unit_test(test_protocol_case),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
