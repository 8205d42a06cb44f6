/* policy/ambiguity: endpoints that could carry the same connection but
 * disagree on how it is made.
 *
 * OpenShell refuses a policy in which two endpoints (in the same or in
 * different entries) can match the same host and port but disagree on
 * `tls` (skip vs automatic): which entry decides a request is then a matter
 * of order, and with it whether the tunnel is inspected at all. cordon
 * judges a request by the first entry in key order that allows it, so the
 * same file would silently mean "inspected" or "raw" depending on names.
 * We refuse it at load, as OpenShell does, with the later endpoint's
 * position and the earlier one's field path.
 *
 * Host overlap follows host.c's reading: labels compared from the right,
 * '*' inside a label stays in that label, a whole '*' label is one label, a
 * leading '**' is one or more; a hostless endpoint (allowed_ips only)
 * overlaps every host; IP literals overlap only the same address. */
#include <string.h>

#include "policy/policy_int.h"
#include "policy/vctx.h"

#include "core/banned.h"

#define MAX_LABELS 128
#define MAX_LABEL 63

static size_t split(const char *s, const char **lab, size_t *len)
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

/* Whether two one-label globs ('*' = any run of non-dot characters) have a
 * common non-empty label: a reachability walk over position pairs. */
static bool labels_overlap(const char *a, size_t la, const char *b, size_t lb)
{
    bool seen[MAX_LABEL + 1][MAX_LABEL + 1];
    uint8_t stack[(MAX_LABEL + 1) * (MAX_LABEL + 1)][2];
    size_t sp = 0;

    if (la > MAX_LABEL || lb > MAX_LABEL)
        return true; /* refused by the pattern check already; stay conservative */
    memset(seen, 0, sizeof(seen));
    stack[sp][0] = 0;
    stack[sp][1] = 0;
    sp++;
    seen[0][0] = true;
    while (sp > 0) {
        sp--;
        size_t i = stack[sp][0], j = stack[sp][1];
        if (i == la && j == lb)
            return true;
        size_t next[3][2];
        size_t nn = 0;
        bool sa = i < la && a[i] == '*', sb = j < lb && b[j] == '*';
        if (sa) {
            next[nn][0] = i + 1;
            next[nn++][1] = j;
        }
        if (sb) {
            next[nn][0] = i;
            next[nn++][1] = j + 1;
        }
        if (i < la && j < lb && (sa || sb || a[i] == b[j])) {
            next[nn][0] = sa ? i : i + 1;
            next[nn++][1] = sb ? j : j + 1;
        }
        for (size_t k = 0; k < nn; k++) {
            size_t x = next[k][0], y = next[k][1];
            if (!seen[x][y]) {
                seen[x][y] = true;
                stack[sp][0] = (uint8_t)x;
                stack[sp][1] = (uint8_t)y;
                sp++;
            }
        }
    }
    return false;
}

/* Two host patterns (lowercase; either may be exact). */
static bool patterns_overlap(const char *a, const char *b)
{
    const char *la[MAX_LABELS], *lb[MAX_LABELS];
    size_t na_len[MAX_LABELS], nb_len[MAX_LABELS];
    size_t na = split(a, la, na_len), nb = split(b, lb, nb_len);
    if (na == 0 || nb == 0)
        return true;
    bool ma = na_len[0] == 2 && strncmp(la[0], "**", 2) == 0;
    bool mb = nb_len[0] == 2 && strncmp(lb[0], "**", 2) == 0;
    /* label counts each can match: exactly n, or n or more with '**' */
    if (!ma && !mb && na != nb)
        return false;
    if (ma && !mb && nb < na)
        return false;
    if (mb && !ma && na < nb)
        return false;
    /* labels right of a '**' are compared pairwise; labels of the other
     * side that fall on the '**' are taken by it */
    size_t fixed = na < nb ? na : nb;
    if (ma || mb)
        fixed -= 1;
    for (size_t k = 0; k < fixed; k++) {
        size_t i = na - 1 - k, j = nb - 1 - k;
        if (!labels_overlap(la[i], na_len[i], lb[j], nb_len[j]))
            return false;
    }
    return true;
}

static bool hosts_overlap(const struct policy_endpoint *a, const struct policy_endpoint *b)
{
    if (a->host_kind == POLICY_HOST_NONE || b->host_kind == POLICY_HOST_NONE)
        return true;
    if (a->host_kind == POLICY_HOST_IP || b->host_kind == POLICY_HOST_IP) {
        if (a->host_kind == POLICY_HOST_IP && b->host_kind == POLICY_HOST_IP)
            return a->ip_family == b->ip_family && memcmp(a->ip, b->ip, 16) == 0;
        const struct policy_endpoint *w = a->host_kind == POLICY_HOST_WILDCARD ? a : b;
        const struct policy_endpoint *ip = w == a ? b : a;
        return w->host_kind == POLICY_HOST_WILDCARD && policy_host_glob_match(w->host, ip->host);
    }
    return patterns_overlap(a->host, b->host);
}

/* The first port both endpoints list, or 0. */
static uint16_t common_port(const struct policy_endpoint *a, const struct policy_endpoint *b)
{
    for (size_t i = 0; i < a->n_ports; i++)
        if (policy_endpoint_has_port(b, a->ports[i]))
            return a->ports[i];
    return 0;
}

static const char *tls_name(enum policy_tls t)
{
    return t == POLICY_TLS_SKIP ? "skip" : "automatic";
}

static bool before(const struct policy_endpoint *a, const struct policy_endpoint *b)
{
    return a->line < b->line || (a->line == b->line && a->col < b->col);
}

void v_ambiguity(struct vctx *c, const struct policy *p)
{
    for (size_t ea = 0; ea < p->n_entries; ea++) {
        const struct policy_entry *A = &p->entries[ea];
        for (size_t ia = 0; ia < A->n_endpoints; ia++) {
            const struct policy_endpoint *a = &A->endpoints[ia];
            for (size_t eb = ea; eb < p->n_entries; eb++) {
                const struct policy_entry *B = &p->entries[eb];
                for (size_t ib = eb == ea ? ia + 1 : 0; ib < B->n_endpoints; ib++) {
                    const struct policy_endpoint *b = &B->endpoints[ib];
                    if (a->tls == b->tls)
                        continue;
                    uint16_t port = common_port(a, b);
                    if (port == 0 || !hosts_overlap(a, b))
                        continue;
                    const struct policy_endpoint *first = before(a, b) ? a : b;
                    const struct policy_endpoint *later = first == a ? b : a;
                    size_t mark = v_push(c, "network_policies.%s.endpoints[%d]",
                                         later->entry->key, later->index);
                    v_error_at(c, later->line, later->col,
                               "host '%s' overlaps network_policies.%s.endpoints[%d] (host "
                               "'%s', line %u) on port %u, but tls differs (%s here, %s "
                               "there): which endpoint carries a connection would depend on "
                               "the order of entries (give both the same tls, or make the "
                               "hosts or ports disjoint)",
                               later->host[0] ? later->host : "<any host>",
                               first->entry->key, first->index,
                               first->host[0] ? first->host : "<any host>", first->line,
                               (unsigned)port, tls_name(later->tls), tls_name(first->tls));
                    v_pop(c, mark);
                }
            }
        }
    }
}
