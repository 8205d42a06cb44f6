/* libFuzzer target: `cordon policy suggest` on audit log lines. Each input
 * is split into lines; every line that parses as JSON is taken as an audit
 * event, then the suggested policy is printed (to /dev/null) and, when it
 * is not empty, loaded back with the policy loader: whatever the log says,
 * the output must be a policy that loads or is refused with diagnostics,
 * never a crash. Also runs the path generaliser on the raw input. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/cli/policy_suggest.c"
#include "policy/policy.h"

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
    struct suggest *s = calloc(1, sizeof(*s));
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); s && line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *ev = json_loads(line, 0, &je);
        if (json_is_object(ev))
            take(s, ev);
        json_decref(ev);
    }
    if (s) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (f) {
            FILE *old = stdout;
            stdout = f;
            print_policy(s, "fuzz.log", NULL, 0);
            stdout = old;
            fclose(f);
            struct policy_diag d = {0};
            struct policy *p = NULL;
            if (out && policy_load_buffer("suggested.yaml", out, len, &p, &d) == 0)
                policy_unref(p);
            policy_diag_free(&d);
        }
        free(out);
        suggest_free(s);
        free(s);
    }
    free(copy);
    return 0;
}
