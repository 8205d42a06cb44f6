/* policy/host: host names and host patterns, OpenShell's DNS-glob reading.
 *
 * A pattern is split into dot-separated labels and compared label by label
 * (OpenShell matches with '.' as the glob delimiter, so '*' never crosses a
 * dot):
 *  - '*' inside a label matches any run of characters within that one label
 *    ("*-aiplatform.googleapis.com", "api*.example.com");
 *  - a label that is exactly '*' matches exactly one label, in any position
 *    ("*.example.com" matches "a.example.com", not "a.b.example.com" and not
 *    the apex; "*.s3.*.amazonaws.com" has one label in each '*');
 *  - a first label of exactly '**' matches one or more labels
 *    ("**.example.com" matches "a.example.com" and "a.b.example.com", never
 *    the apex).
 * Shapes OpenShell refuses are refused here too: bare '*' or '**'; '**'
 * anywhere but as the whole first label; a partial wildcard ("us-*") outside
 * the first label; '*.' or '**.' over a single label ("*.com"). We also
 * refuse a wildcard in the last label ("example.*"), which OpenShell accepts
 * and which would match every top-level domain. */
#include <string.h>

#include "policy/glob.h"
#include "policy/policy_int.h"

#include "core/banned.h"

#define MAX_LABELS POLICY_HOST_MAX_LABELS

size_t policy_host_labels(const char *s, const char **lab, size_t *len)
{
    size_t n = 0;
    for (const char *p = s;; n++) {
        if (n == MAX_LABELS)
            return 0;
        size_t l = strcspn(p, ".");
        lab[n] = p;
        len[n] = l;
        if (p[l] == '\0')
            return n + 1;
        p += l + 1;
    }
}

static bool label_chars_ok(const char *lab, size_t l, bool star_ok)
{
    for (size_t i = 0; i < l; i++) {
        char c = lab[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  (star_ok && c == '*');
        if (!ok)
            return false;
    }
    return true;
}

const char *policy_host_pattern_problem(const char *h)
{
    const char *lab[MAX_LABELS];
    size_t len[MAX_LABELS];

    if (strcmp(h, "*") == 0 || strcmp(h, "**") == 0)
        return "would match every host (list hosts, or use a wildcard such as '*.example.com')";
    size_t n = policy_host_labels(h, lab, len);
    if (n == 0)
        return "has too many labels";
    for (size_t i = 0; i < n; i++) {
        bool star = memchr(lab[i], '*', len[i]) != NULL;
        bool dstar = len[i] >= 2 && memmem(lab[i], len[i], "**", 2) != NULL;
        if (len[i] == 0)
            return "has an empty label";
        if (len[i] > 63)
            return "has a label longer than 63 characters";
        if (!label_chars_ok(lab[i], len[i], true))
            return "contains a character other than letters, digits, '-', '_', '*' and '.'";
        if (dstar && !(i == 0 && len[i] == 2))
            return "uses '**' other than as the whole first label (write '**.example.com' "
                   "for one or more labels)";
        if (star && i > 0 && len[i] != 1)
            return "has a partial wildcard outside the first label (only a whole '*' label "
                   "may appear there, e.g. '*.s3.*.amazonaws.com')";
        if (star && i == n - 1)
            return "has a wildcard in the top-level label, which would match every top-level "
                   "domain";
        if (!star && (lab[i][0] == '-' || lab[i][len[i] - 1] == '-'))
            return "has a label that starts or ends with '-'";
    }
    if ((strncmp(h, "*.", 2) == 0 || strncmp(h, "**.", 3) == 0) && n <= 2)
        return "would match a whole top-level domain (put at least two labels after the "
               "wildcard, e.g. '*.example.com')";
    return NULL;
}

/* One label against one pattern label ('*' within the label). */
static bool label_match(const char *p, size_t pl, const char *s, size_t sl)
{
    char pb[64], sb[64];
    if (pl > 63 || sl > 63 || sl == 0)
        return false;
    if (pl == 1 && p[0] == '*')
        return true;
    memcpy(pb, p, pl);
    pb[pl] = '\0';
    memcpy(sb, s, sl);
    sb[sl] = '\0';
    return glob_match(pb, sb, '.', false);
}

bool policy_host_glob_match(const char *pattern, const char *host)
{
    const char *pl[MAX_LABELS], *hl[MAX_LABELS];
    size_t plen[MAX_LABELS], hlen[MAX_LABELS];
    size_t np = policy_host_labels(pattern, pl, plen);
    size_t nh = policy_host_labels(host, hl, hlen);
    if (np == 0 || nh == 0)
        return false;
    bool many = plen[0] == 2 && strncmp(pl[0], "**", 2) == 0;
    if (many ? nh < np : nh != np)
        return false;
    size_t off = nh - np; /* extra host labels taken by a leading '**' */
    for (size_t i = 0; i < off; i++)
        if (hlen[i] == 0)
            return false;
    for (size_t i = 0; i < np; i++) {
        size_t j = i + off;
        if (i == 0 && many) {
            if (hlen[0] == 0 || hlen[j] == 0)
                return false;
            continue;
        }
        if (!label_match(pl[i], plen[i], hl[j], hlen[j]))
            return false;
    }
    return true;
}
