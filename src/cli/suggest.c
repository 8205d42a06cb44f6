/* cli/suggest: "did you mean" for mistyped options and subcommands. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/banned.h"

#define SUGGEST_MAX_LEN 64

/* Levenshtein distance, or SUGGEST_MAX_LEN + 1 for longer strings. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
        return SUGGEST_MAX_LEN + 1;
    size_t row[SUGGEST_MAX_LEN + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *cli_suggest(const char *s, const char *const *cands)
{
    const char *best = NULL;
    size_t bd = SIZE_MAX;
    /* "--name=value": compare the name */
    char name[SUGGEST_MAX_LEN + 1];
    snprintf(name, sizeof(name), "%s", s);
    char *eq = strchr(name, '=');
    if (eq)
        *eq = '\0';
    for (size_t i = 0; cands[i]; i++) {
        size_t d = distance(name, cands[i]);
        /* a prefix of exactly one candidate counts as close */
        if (strlen(name) >= 3 && strncmp(cands[i], name, strlen(name)) == 0)
            d = 1;
        if (d < bd) {
            bd = d;
            best = cands[i];
        }
    }
    size_t len = strlen(name);
    size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    return bd <= limit ? best : NULL;
}

bool cli_known_option(const char *a, const char *const *opts)
{
    for (size_t i = 0; opts[i]; i++)
        if (strcmp(a, opts[i]) == 0)
            return true;
    return false;
}

void cli_unknown_option(const char *cmd, const char *a, const char *const *opts)
{
    const char *sug = cli_suggest(a, opts);
    if (sug)
        fprintf(stderr, "cordon %s: unknown option '%s' (did you mean '%s'? see cordon help %s)\n",
                cmd, a, sug, cmd);
    else
        fprintf(stderr, "cordon %s: unknown option '%s' (see cordon help %s)\n", cmd, a, cmd);
}
