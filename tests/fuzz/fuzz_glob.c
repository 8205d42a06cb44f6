/* libFuzzer target: policy/glob, both pattern languages (path/host globs
 * with a separator, and OpenShell's value globs: classes, '?', escapes,
 * '**' as a segment). Input: "PATTERN\nSUBJECT". Checks the contracts, not
 * just "no crash":
 *  - a pattern glob_value_check refuses never matches (never a silent
 *    widening), and a refusal always says why;
 *  - a value glob without metacharacters matches exactly itself;
 *  - '*' in a value glob never matches a subject containing '.' on its own;
 *  - "**" alone matches every subject within the limit.
 * Pattern and subject are copied to exact-size heap buffers so ASan catches
 * any over-read. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/glob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t pl = nl ? (size_t)(nl - data) : size;
    size_t sl = nl ? size - pl - 1 : 0;
    char *pat = malloc(pl + 1), *sub = malloc(sl + 1);
    if (!pat || !sub)
        abort();
    memcpy(pat, data, pl);
    pat[pl] = '\0';
    if (sl)
        memcpy(sub, nl + 1, sl);
    sub[sl] = '\0';

    const char *why = NULL;
    int rc = glob_value_check(pat, &why);
    bool m = glob_value_match(pat, sub);
    if (rc != 0 && rc != -EINVAL)
        abort();
    if (rc != 0 && (m || !why || !*why))
        abort();
    if (rc == 0 && !strpbrk(pat, "*?[\\") && m != (strcmp(pat, sub) == 0))
        abort();
    if (strcmp(pat, "*") == 0 && strchr(sub, '.') && m)
        abort();
    if (strcmp(pat, "**") == 0 && strlen(sub) <= GLOB_MAX_SUBJECT && !m)
        abort();
    (void)glob_match(pat, sub, '/', false);
    (void)glob_match(pat, sub, '.', true);
    (void)glob_match(pat, sub, '\0', false);
    free(pat);
    free(sub);
    return 0;
}
