/* cli/policy: `cordon policy check FILE` and `cordon policy eval FILE ...`.
 *
 * check: exit 0 and "FILE: ok (N policies, M endpoints)" plus warnings, or
 *        exit 1 with every error (file:line:column: error: field: ...);
 *        --strict also exits 1 when there is any warning.
 * eval:  prints the decision for one connection (and one HTTP request with
 *        --method/--path); exit 0 allow, 1 deny, 2 usage or load error. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/reload.h"
#include "core/parse.h"
#include "policy/policy.h"

#include "core/banned.h"

#define MAX_ANCESTORS 64

static void usage(FILE *f)
{
    fputs("usage: cordon policy check [--strict] FILE\n"
          "       cordon policy eval FILE --host H --port P --binary PATH\n"
          "                          [--ancestor PATH]... [--method M --path TARGET\n"
          "                          [--body JSON]]\n"
          "       cordon policy reload --sandbox NAME\n"
          "       cordon policy init [--preset NAME[,NAME...]] [--output FILE [--force]]\n"
          "       cordon policy suggest LOG [--allowed-ips CIDR]...\n"
          "\n"
          "check  validates FILE; prints every error and warning with\n"
          "       file:line:column. --strict: warnings count as errors (for CI).\n"
          "eval   decides one connection: allow or deny, the reason, the matching\n"
          "       entry, and a hint; with --method/--path also the endpoint's HTTP\n"
          "       rules (TARGET is the raw request-target, path?query); with --body\n"
          "       the request body for graphql, json-rpc and mcp endpoints.\n"
          "       exit 0 allow, 1 deny, 2 usage or load error.\n"
          "reload asks a running `cordon run --name NAME` to re-read its policy file\n"
          "       (root only): cordon policy reload --sandbox NAME. Prints the\n"
          "       result; exit 0 installed, 1 the new policy has errors or changes\n"
          "       filesystem_policy, landlock, process or limits, which apply from\n"
          "       the start only (the old one stays in force), 2 no such sandbox.\n"
          "init   writes a commented starter policy; presets for github, pypi, npm,\n"
          "       crates, goproxy, anthropic, openai, slack, discord, telegram.\n"
          "suggest prints the smallest policy that allows what LOG (a cordon run\n"
          "       audit log) records as refused; review it, check it, use it.\n",
          f);
}

static void print_diag(const struct policy_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "%s\n", d->lines[i]);
}

static int cmd_check(int argc, char **argv)
{
    struct policy_diag diag = {0};
    struct policy *p = NULL;
    bool strict = argc == 3 && strcmp(argv[1], "--strict") == 0;
    if (argc != 2 + strict || argv[argc - 1][0] == '-') {
        usage(stderr);
        return 2;
    }
    const char *file = argv[argc - 1];
    int rc = policy_load_file(file, &p, &diag);
    print_diag(&diag);
    if (rc < 0 || (strict && diag.n_warnings > 0)) {
        fprintf(stderr, "%s: %zu error%s, %zu warning%s%s\n", file, diag.n_errors,
                diag.n_errors == 1 ? "" : "s", diag.n_warnings, diag.n_warnings == 1 ? "" : "s",
                rc == 0 ? " (--strict: warnings are errors)" : "");
        policy_diag_free(&diag);
        policy_unref(p);
        return 1;
    }
    printf("%s: ok (%zu policies, %zu endpoints)\n", file, policy_n_entries(p),
           policy_n_endpoints(p));
    policy_diag_free(&diag);
    policy_unref(p);
    return 0;
}

struct eval_args {
    const char *file, *host, *binary, *method, *path, *body;
    uint16_t port;
    bool have_port;
    const char *ancestors[MAX_ANCESTORS];
    size_t n_ancestors;
};

/* "--name VALUE" or "--name=VALUE": returns the value and advances *i, or
 * NULL when argv[*i] is not this option. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t l = strlen(name);
    if (strncmp(argv[*i], name, l) != 0)
        return NULL;
    if (argv[*i][l] == '=')
        return argv[*i] + l + 1;
    if (argv[*i][l] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static int parse_eval_args(int argc, char **argv, struct eval_args *a)
{
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = opt_value(argc, argv, &i, "--host", &missing))) {
            a->host = v;
        } else if ((v = opt_value(argc, argv, &i, "--port", &missing))) {
            uint32_t port;
            if (parse_u32_str(v, 1, 65535, &port) < 0) {
                fprintf(stderr, "cordon policy eval: --port '%s' is not a port (1-65535)\n", v);
                return -1;
            }
            a->port = (uint16_t)port;
            a->have_port = true;
        } else if ((v = opt_value(argc, argv, &i, "--binary", &missing))) {
            a->binary = v;
        } else if ((v = opt_value(argc, argv, &i, "--ancestor", &missing))) {
            if (a->n_ancestors == MAX_ANCESTORS) {
                fprintf(stderr, "cordon policy eval: at most %d --ancestor\n", MAX_ANCESTORS);
                return -1;
            }
            a->ancestors[a->n_ancestors++] = v;
        } else if ((v = opt_value(argc, argv, &i, "--method", &missing))) {
            a->method = v;
        } else if ((v = opt_value(argc, argv, &i, "--path", &missing))) {
            a->path = v;
        } else if ((v = opt_value(argc, argv, &i, "--body", &missing))) {
            a->body = v;
        } else if (missing) {
            fprintf(stderr, "cordon policy eval: %s needs a value\n", argv[i]);
            return -1;
        } else if (argv[i][0] == '-' || a->file) {
            fprintf(stderr, "cordon policy eval: unexpected argument '%s'\n", argv[i]);
            return -1;
        } else {
            a->file = argv[i];
        }
        if (missing) {
            fprintf(stderr, "cordon policy eval: %s needs a value\n", argv[i]);
            return -1;
        }
    }
    if (!a->file || !a->host || !a->have_port || !a->binary) {
        fprintf(stderr, "cordon policy eval: FILE, --host, --port and --binary are required\n");
        return -1;
    }
    if (!a->method != !a->path) {
        fprintf(stderr, "cordon policy eval: --method and --path go together\n");
        return -1;
    }
    if (a->body && !a->method) {
        fprintf(stderr, "cordon policy eval: --body needs --method and --path\n");
        return -1;
    }
    return 0;
}

static void print_decision(const struct policy_decision *d)
{
    printf("decision: %s\n", d->allow ? "allow" : "deny");
    if (!d->allow)
        printf("reason_code: %s\n", d->reason_code);
    if (d->policy_key)
        printf("policy: %s\n", d->policy_key);
    if (d->endpoint_index >= 0)
        printf("endpoint: network_policies.%s.endpoints[%d]\n", d->policy_key, d->endpoint_index);
    if (d->allow)
        printf("binary: %s (matched by %s)\n", d->matched_binary, d->matched_by);
    printf("detail: %s\n", d->detail);
    if (!d->allow)
        printf("hint: %s\n", d->hint);
}

/* Prints the L7 verdict; returns the exit status (1 only when enforced). */
static int print_l7(const struct policy_endpoint *ep, const char *method, const char *target,
                    const char *body)
{
    struct policy_l7_result r;
    if (!policy_endpoint_is_rest(ep)) {
        printf("l7: not inspected (the endpoint has no inspected protocol; the connection is "
               "a tunnel)\n");
        return 0;
    }
    (void)policy_l7_check(ep, method, target, &r);
    if (r.need_body && body)
        (void)policy_l7_check_body(body, strlen(body), true, &r);
    else if (r.need_body)
        printf("l7_body: needed (pass --body); without it the request is denied\n");
    else if (body)
        printf("l7_body: not examined (this request is decided without it)\n");
    printf("l7: %s\n", r.allow ? "allow" : "deny");
    if (!r.allow)
        printf("l7_reason_code: %s\n", r.reason_code);
    printf("l7_path: %s\n", r.path[0] ? r.path : "(not normalizable)");
    if (r.rule_index >= 0 && strncmp(r.rule, "deny_rules", 10) != 0)
        printf("l7_rule: rules[%d] (%s)\n", r.rule_index, r.rule);
    else if (r.rule[0])
        printf("l7_rule: %s\n", r.rule);
    printf("l7_detail: %s\n", r.detail);
    if (r.allow && r.sse_only)
        printf("l7_requires: Accept: text/event-stream and no body (the proxy denies this GET "
               "otherwise)\n");
    if (r.allow)
        return 0;
    printf("l7_hint: %s\n", r.hint);
    if (r.shape == POLICY_L7_SHAPE_JSONRPC)
        printf("l7_rpc_id: %s\n", r.rpc_id);
    if (policy_endpoint_enforcement(ep) == POLICY_AUDIT && r.hard) {
        printf("enforcement: audit, but this request is denied anyway (malformed, or a "
               "client-sent JSON-RPC response)\n");
        return 1;
    }
    if (policy_endpoint_enforcement(ep) == POLICY_AUDIT) {
        printf("enforcement: audit (the proxy logs this deny and forwards the request)\n");
        return 0;
    }
    return 1;
}

static int cmd_eval(int argc, char **argv)
{
    struct eval_args a = {0};
    struct policy_diag diag = {0};
    struct policy *p = NULL;
    struct policy_decision d;

    if (parse_eval_args(argc, argv, &a) < 0) {
        usage(stderr);
        return 2;
    }
    int rc = policy_load_file(a.file, &p, &diag);
    print_diag(&diag);
    policy_diag_free(&diag);
    if (rc < 0)
        return 2;
    struct policy_query q = {.host = a.host, .port = a.port, .exe = a.binary,
                             .ancestors = a.ancestors, .n_ancestors = a.n_ancestors};
    policy_decide(p, &q, &d);
    print_decision(&d);
    int status = d.allow ? 0 : 1;
    if (d.allow && a.method)
        status = print_l7(d.endpoint, a.method, a.path, a.body);
    policy_unref(p);
    return status;
}

static int cmd_reload(int argc, char **argv)
{
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sandbox") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strncmp(argv[i], "--sandbox=", 10) == 0)
            name = argv[i] + 10;
        else {
            static const char *const opts[] = {"--sandbox", NULL};
            cli_unknown_option("policy reload", argv[i], opts);
            return 2;
        }
    }
    if (!name) {
        fprintf(stderr, "cordon policy reload: --sandbox NAME is required (the --name of "
                "cordon run; it prints it in its exit summary)\n");
        return 2;
    }
    char reply[8192];
    int rc = run_reload_request(name, reply, sizeof(reply));
    if (rc < 0) {
        fprintf(stderr, "cordon policy reload: sandbox '%s': %s\n", name,
                rc == -ENOENT || rc == -ECONNREFUSED ? "not running (no control socket "
                                                       "answers under " RUN_CTL_DIR ")"
                : rc == -EACCES ? "permission denied (root only)"
                                : strerror(-rc));
        return 2;
    }
    fputs(reply, strstr(reply, "error:") ? stderr : stdout);
    return strstr(reply, "\nok generation") || strncmp(reply, "ok generation", 13) == 0 ? 0 : 1;
}

int cli_policy(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(argv[1], "eval") == 0)
        return cmd_eval(argc - 1, argv + 1);
    if (strcmp(argv[1], "reload") == 0)
        return cmd_reload(argc - 1, argv + 1);
    if (strcmp(argv[1], "init") == 0)
        return cli_policy_init(argc - 1, argv + 1);
    if (strcmp(argv[1], "suggest") == 0)
        return cli_policy_suggest(argc - 1, argv + 1);
    static const char *const subs[] = {"check", "eval", "reload", "init", "suggest", "--help",
                                       NULL};
    const char *sug = cli_suggest(argv[1], subs);
    fprintf(stderr, "cordon policy: unknown command '%s' (%s%s%ssee cordon help policy)\n",
            argv[1], sug ? "did you mean '" : "", sug ? sug : "", sug ? "'? " : "");
    return 2;
}
