/* policy/ambiguity: endpoints that could carry the same request but
 * disagree on how it is handled.
 *
 * cordon judges a connection by the first entry, in key order, that allows
 * it. When two endpoints can match the same host and port but disagree on
 * how the connection is made or a request is read, which one applies would
 * be a matter of entry names. OpenShell refuses such a policy at load; so
 * do we, with the later endpoint's position and the earlier one's path:
 *
 *  - always (the connection): `tls` (skip vs automatic), `allowed_ips` (as
 *    a set), explicit `protocol: tcp` vs any other protocol;
 *  - when both endpoints shape the request pipeline (an inspected protocol,
 *    `allowed_ips` or `tls: skip`) and their `path` selectors overlap with
 *    the same specificity (non-'*' characters; a more specific path wins
 *    and is not ambiguous): `protocol`, `enforcement`,
 *    `allow_encoded_slash`, GraphQL-over-WebSocket rules on two websocket
 *    endpoints, the body limit of two graphql or two json-rpc/mcp
 *    endpoints, `mcp.strict_tool_names` of two mcp endpoints.
 * Access, rules and deny_rules may differ: they add up. The credential
 * fields are never applied by cordon, so they cannot conflict here.
 *
 * Overlap follows our readings: hosts label by label from the right ('*'
 * inside a label stays in it, a whole '*' label is one label, a leading
 * '**' one or more; hostless overlaps every host; IPs only the same
 * address); paths segment-wise ('*' stays in a segment, '**' crosses, and
 * "/x/" followed by a "**" segment also matches "/x"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"
#include "policy/vctx.h"

#include "core/banned.h"

#define MAX_LABELS POLICY_HOST_MAX_LABELS

/* Whether two globs over one alphabet ('*' = a run without delim, '**' = a
 * run of anything) match a common string: reachability over position
 * pairs. */
static bool globs_overlap(const char *a, size_t la, const char *b, size_t lb, char delim)
{
    if (!memchr(a, '*', la) && !memchr(b, '*', lb))
        return la == lb && memcmp(a, b, la) == 0;
    size_t w = lb + 1, n = (la + 1) * w;
    bool *seen = v_calloc(n, sizeof(*seen));
    size_t *stack = v_calloc(n, sizeof(*stack));
    size_t sp = 0;
    bool found = false;

    stack[sp++] = 0;
    seen[0] = true;
    while (sp > 0 && !found) {
        size_t s = stack[--sp], i = s / w, j = s % w;
        if (i == la && j == lb) {
            found = true;
            break;
        }
        /* a star token: its length and whether it crosses delim */
        size_t ra = 0, rb = 0;
        while (i + ra < la && a[i + ra] == '*')
            ra++;
        while (j + rb < lb && b[j + rb] == '*')
            rb++;
        size_t next[3];
        size_t nn = 0;
        if (ra)
            next[nn++] = (i + ra) * w + j; /* the star matches nothing more */
        if (rb)
            next[nn++] = i * w + j + rb;
        if (i < la && j < lb) {
            /* one character both sides can take, consumed by a literal or
             * absorbed by a star (which stays) */
            bool ok;
            if (ra && rb)
                ok = true; /* any non-delim character suits both */
            else if (ra)
                ok = ra > 1 || b[j] != delim;
            else if (rb)
                ok = rb > 1 || a[i] != delim;
            else
                ok = a[i] == b[j];
            if (ok)
                next[nn++] = (ra ? i : i + 1) * w + (rb ? j : j + 1);
        }
        for (size_t k = 0; k < nn; k++)
            if (!seen[next[k]]) {
                seen[next[k]] = true;
                stack[sp++] = next[k];
            }
    }
    free(seen);
    free(stack);
    return found;
}

/* Two host patterns (lowercase; either may be exact). */
bool policy_host_patterns_overlap(const char *a, const char *b)
{
    const char *la[MAX_LABELS], *lb[MAX_LABELS];
    size_t sa[MAX_LABELS], sb[MAX_LABELS];
    size_t na = policy_host_labels(a, la, sa), nb = policy_host_labels(b, lb, sb);
    if (na == 0 || nb == 0)
        return true;
    bool ma = sa[0] == 2 && strncmp(la[0], "**", 2) == 0;
    bool mb = sb[0] == 2 && strncmp(lb[0], "**", 2) == 0;
    /* label counts each can match: exactly n, or n or more with '**' */
    if ((!ma && !mb && na != nb) || (ma && !mb && nb < na) || (mb && !ma && na < nb))
        return false;
    /* labels right of a '**' are compared pairwise; labels of the other
     * side that fall on the '**' are taken by it */
    size_t fixed = (na < nb ? na : nb) - (ma || mb ? 1 : 0);
    for (size_t k = 0; k < fixed; k++) {
        size_t i = na - 1 - k, j = nb - 1 - k;
        if (!globs_overlap(la[i], sa[i], lb[j], sb[j], '.'))
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
    if (a->host_kind == POLICY_HOST_EXACT && b->host_kind == POLICY_HOST_EXACT)
        return strcmp(a->host, b->host) == 0;
    return policy_host_patterns_overlap(a->host, b->host);
}

/* Path selectors; NULL (every path) overlaps everything. */
static bool paths_overlap(const char *a, const char *b)
{
    if (!a || !b)
        return true;
    size_t la = strlen(a), lb = strlen(b);
    if (globs_overlap(a, la, b, lb, '/'))
        return true;
    /* "/x/" + "**" also matches "/x" itself */
    if (la >= 3 && strcmp(a + la - 3, "/**") == 0 && globs_overlap(a, la - 3, b, lb, '/'))
        return true;
    if (lb >= 3 && strcmp(b + lb - 3, "/**") == 0 && globs_overlap(a, la, b, lb - 3, '/'))
        return true;
    return la >= 3 && lb >= 3 && strcmp(a + la - 3, "/**") == 0 &&
           strcmp(b + lb - 3, "/**") == 0 && globs_overlap(a, la - 3, b, lb - 3, '/');
}

size_t policy_path_specificity(const char *path)
{
    size_t n = 0;
    for (const char *p = path; p && *p; p++)
        n += *p != '*';
    return n;
}

/* The first port both endpoints list, or 0. */
static uint16_t common_port(const struct policy_endpoint *a, const struct policy_endpoint *b)
{
    for (size_t i = 0; i < a->n_ports; i++)
        if (policy_endpoint_has_port(b, a->ports[i]))
            return a->ports[i];
    return 0;
}

static bool cidr_in(const struct policy_cidr *c, const struct policy_cidr *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (set[i].family == c->family && set[i].prefix == c->prefix &&
            memcmp(set[i].addr, c->addr, 16) == 0)
            return true;
    return false;
}

static bool same_allowed_ips(const struct policy_endpoint *a, const struct policy_endpoint *b)
{
    for (size_t i = 0; i < a->n_allowed_ips; i++)
        if (!cidr_in(&a->ips[i], b->ips, b->n_allowed_ips))
            return false;
    for (size_t i = 0; i < b->n_allowed_ips; i++)
        if (!cidr_in(&b->ips[i], a->ips, a->n_allowed_ips))
            return false;
    return true;
}

static bool shapes_requests(const struct policy_endpoint *ep)
{
    return ep->rest || ep->n_allowed_ips > 0 || ep->tls == POLICY_TLS_SKIP;
}

/* The protocol as a request sees it: tcp is no request protocol. */
static enum policy_proto req_proto(const struct policy_endpoint *ep)
{
    return ep->proto == POLICY_PROTO_TCP ? POLICY_PROTO_NONE : ep->proto;
}

static bool ws_graphql(const struct policy_endpoint *ep)
{
    for (size_t i = 0; i < ep->n_rules; i++)
        if (ep->rules[i].ws_graphql)
            return true;
    return false;
}

static bool rpc_family(enum policy_proto p)
{
    return p == POLICY_PROTO_JSONRPC || p == POLICY_PROTO_MCP;
}

/* What the two disagree on, as "a, b" into out (empty when nothing). */
static void conflicts(const struct policy_endpoint *a, const struct policy_endpoint *b, char *out,
                      size_t cap)
{
    const char *c[12];
    size_t n = 0;
    if (a->tls != b->tls)
        c[n++] = "tls";
    if (!same_allowed_ips(a, b))
        c[n++] = "allowed_ips";
    if ((a->proto == POLICY_PROTO_TCP) != (b->proto == POLICY_PROTO_TCP))
        c[n++] = "protocol: tcp (explicit vs not)";
    if (shapes_requests(a) && shapes_requests(b) && paths_overlap(a->path_sel, b->path_sel) &&
        policy_path_specificity(a->path_sel) == policy_path_specificity(b->path_sel)) {
        if (req_proto(a) != req_proto(b))
            c[n++] = "protocol";
        if (a->enforcement != b->enforcement)
            c[n++] = "enforcement";
        if (a->allow_encoded_slash != b->allow_encoded_slash)
            c[n++] = "allow_encoded_slash";
        if (a->proto == POLICY_PROTO_WEBSOCKET && b->proto == POLICY_PROTO_WEBSOCKET &&
            ws_graphql(a) != ws_graphql(b))
            c[n++] = "GraphQL-over-WebSocket rules (present vs not)";
        if (a->proto == POLICY_PROTO_GRAPHQL && b->proto == POLICY_PROTO_GRAPHQL &&
            a->max_body != b->max_body)
            c[n++] = "graphql_max_body_bytes";
        if (a->proto == b->proto && rpc_family(a->proto) && a->max_body != b->max_body)
            c[n++] = "max_body_bytes";
        if (a->proto == POLICY_PROTO_MCP && b->proto == POLICY_PROTO_MCP &&
            a->mcp_strict_tools != b->mcp_strict_tools)
            c[n++] = "mcp.strict_tool_names";
    }
    /* MCP rules name methods and tools, other protocols' rules do not: an
     * inspected endpoint of another protocol whose path covers the MCP
     * endpoint's (a broader REST path such as all paths) could allow a tool call the
     * MCP endpoint refuses. OpenShell's policy merge refuses this too
     * (merge.rs, ConflictingInspectionContracts). */
    if (a->rest && b->rest && (a->proto == POLICY_PROTO_MCP) != (b->proto == POLICY_PROTO_MCP) &&
        paths_overlap(a->path_sel, b->path_sel) &&
        policy_path_specificity(a->path_sel) != policy_path_specificity(b->path_sel))
        c[n++] = "protocol (mcp beside another inspected protocol on overlapping paths: that "
                 "endpoint's rules could allow tool calls the mcp endpoint refuses)";
    out[0] = '\0';
    for (size_t i = 0, len = 0; i < n && len < cap; i++) {
        int k = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", c[i]);
        if (k < 0)
            break;
        len += (size_t)k;
    }
}

static bool before(const struct policy_endpoint *a, const struct policy_endpoint *b)
{
    return a->line < b->line || (a->line == b->line && a->col < b->col);
}

static void report(struct vctx *c, const struct policy_endpoint *a,
                   const struct policy_endpoint *b, uint16_t port, const char *what)
{
    const struct policy_endpoint *first = before(a, b) ? a : b;
    const struct policy_endpoint *later = first == a ? b : a;
    size_t mark = v_push(c, "network_policies.%s.endpoints[%d]", later->entry->key, later->index);
    v_error_at(c, later->line, later->col,
               "host '%s' overlaps network_policies.%s.endpoints[%d] (host '%s', line %u) on "
               "port %u, but they differ in %s: which endpoint carries a connection would "
               "depend on the order of entries (make them agree, or make the hosts, ports or "
               "paths disjoint)",
               later->host[0] ? later->host : "<any host>", first->entry->key, first->index,
               first->host[0] ? first->host : "<any host>", first->line, (unsigned)port, what);
    v_pop(c, mark);
}

/* One endpoint and the literal text every host it matches ends with (after
 * its last '*', or the whole exact host; NULL for hostless and IPs). Two
 * hosts can only overlap when one tail ends the other: a cheap test that
 * keeps the pairwise walk fast on large files. */
struct amb_ep {
    const struct policy_endpoint *ep;
    const char *tail;
    size_t tail_len;
};

static bool tails_meet(const struct amb_ep *a, const struct amb_ep *b)
{
    if (!a->tail || !b->tail)
        return true;
    const struct amb_ep *s = a->tail_len <= b->tail_len ? a : b, *l = s == a ? b : a;
    return memcmp(l->tail + l->tail_len - s->tail_len, s->tail, s->tail_len) == 0;
}

void v_ambiguity(struct vctx *c, const struct policy *p)
{
    char what[512];
    size_t n = 0, k = 0;
    for (size_t e = 0; e < p->n_entries; e++)
        n += p->entries[e].n_endpoints;
    if (n < 2)
        return;
    struct amb_ep *v = v_calloc(n, sizeof(*v));
    for (size_t e = 0; e < p->n_entries; e++)
        for (size_t i = 0; i < p->entries[e].n_endpoints; i++, k++) {
            const struct policy_endpoint *ep = &p->entries[e].endpoints[i];
            v[k].ep = ep;
            if (ep->host_kind == POLICY_HOST_EXACT || ep->host_kind == POLICY_HOST_WILDCARD) {
                const char *star = strrchr(ep->host, '*');
                v[k].tail = star ? star + 1 : ep->host;
                v[k].tail_len = strlen(v[k].tail);
            }
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            const struct policy_endpoint *a = v[i].ep, *b = v[j].ep;
            if (!tails_meet(&v[i], &v[j]))
                continue;
            uint16_t port = common_port(a, b);
            if (port == 0 || !hosts_overlap(a, b))
                continue;
            conflicts(a, b, what, sizeof(what));
            if (what[0])
                report(c, a, b, port, what);
        }
    free(v);
}
