/* libFuzzer target: `cordon policy suggest` on audit log lines. Each input
 * is split into lines; every line that parses as JSON is taken as an audit
 * event, then the suggested policy is printed (to /dev/null) and, when it
 * is not empty, loaded back with the policy loader: whatever the log says,
 * the output must be a policy that loads or is refused with diagnostics,
 * never a crash. Also runs the path generaliser and cordon run
 * --learn-allowed-ips' CIDR parser (run_learn.c) on the raw input. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/cli/policy_suggest.c"
#include "cli/run_int.h"
#include "policy/policy.h"
#include "proxy/proxy.h"

/* run_learn.c's CIDR parser alone (the rest needs the CLI's other files). */
#define run_log_default_path fuzz_unused_log_default_path
#define run_log_check fuzz_unused_log_check
#define run_term_say fuzz_unused_term_say
static int fuzz_unused_log_default_path(const char *n, char *o, size_t c);
static int fuzz_unused_log_check(const char *p, const struct sandbox_info *i, char *e, size_t c);
static void fuzz_unused_term_say(struct run_term *t, const char *fmt, ...);
#include "../../src/cli/run_learn.c"
static int fuzz_unused_log_default_path(const char *n, char *o, size_t c)
{
    (void)n, (void)o, (void)c;
    return -ENOSYS;
}
static int fuzz_unused_log_check(const char *p, const struct sandbox_info *i, char *e, size_t c)
{
    (void)p, (void)i, (void)e, (void)c;
    return -ENOSYS;
}
static void fuzz_unused_term_say(struct run_term *t, const char *fmt, ...)
{
    (void)t, (void)fmt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* cli/suggest.c is not in the library; suggest only needs this one. */
void cli_unknown_option(const char *cmd, const char *a, const char *const *opts)
{
    (void)cmd, (void)a, (void)opts;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    char g[1024];
    generalise(copy, g, sizeof(g));
    struct policy_cidr cidr;
    if (run_learn_parse_cidr(copy, &cidr) == 0 &&
        cidr.prefix > (cidr.family == AF_INET ? 32 : 128))
        abort();
    struct psuggest *s = psuggest_new(NULL, 0);
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); s && line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *ev = json_loads(line, 0, &je);
        if (json_is_object(ev))
            psuggest_take(s, ev);
        json_decref(ev);
    }
    if (s) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (f) {
            fprintf(f, "version: 1\n");
            psuggest_print(s, f);
            fclose(f);
            struct policy_diag d = {0};
            struct policy *p = NULL;
            if (out && policy_load_buffer("suggested.yaml", out, len, &p, &d) == 0)
                policy_unref(p);
            policy_diag_free(&d);
        }
        free(out);
        psuggest_free(s);
    }
    free(copy);
    return 0;
}
