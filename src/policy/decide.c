/* policy/decide: the L4 decision (host, port, binary).
 *
 * OpenShell semantics (spec §3.5): allow iff one entry has both an endpoint
 * matching host:port and a binary matching the exe or an ancestor; entries
 * never combine. Entries are in sorted key order and the first that allows
 * wins, so the outcome is deterministic. A deny says which of the two
 * halves failed and what policy change would allow it. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policy/glob.h"
#include "policy/policy_int.h"

#include "core/banned.h"

const char POLICY_REASON_NO_ENDPOINT[] = "no_endpoint";
const char POLICY_REASON_BINARY_NOT_ALLOWED[] = "binary_not_allowed";
const char POLICY_REASON_IDENTITY_TAINTED[] = "identity_tainted";

/* A normalized query host: lowercase, no brackets, no trailing dot. */
struct qhost {
    char name[POLICY_MAX_HOST_LEN + 1];
    size_t len;
    int family; /* AF_INET/AF_INET6 when an IP literal, else 0 */
    uint8_t ip[16];
};

static bool qhost_init(struct qhost *h, const char *in)
{
    size_t l = in ? strlen(in) : 0;
    memset(h, 0, sizeof(*h));
    if (l >= 2 && in[0] == '[' && in[l - 1] == ']') {
        in++;
        l -= 2;
    }
    if (l > 1 && in[l - 1] == '.')
        l--;
    if (l > POLICY_MAX_HOST_LEN)
        return false;
    for (size_t i = 0; i < l; i++) {
        char ch = in[i];
        if (ch == '\0')
            return false;
        h->name[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    h->len = l;
    if (inet_pton(AF_INET, h->name, h->ip) == 1) {
        h->family = AF_INET;
    } else if (inet_pton(AF_INET6, h->name, h->ip) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        h->family = AF_INET6;
        if (memcmp(h->ip, mapped, 12) == 0) { /* ::ffff:a.b.c.d is a.b.c.d */
            memmove(h->ip, h->ip + 12, 4);
            memset(h->ip + 4, 0, 12);
            h->family = AF_INET;
        }
    }
    return true;
}

bool policy_endpoint_has_port(const struct policy_endpoint *ep, uint16_t port)
{
    for (size_t i = 0; i < ep->n_ports; i++)
        if (ep->ports[i] == port)
            return true;
    return false;
}

static bool host_matches(const struct policy_endpoint *ep, const struct qhost *h)
{
    switch (ep->host_kind) {
    case POLICY_HOST_NONE:
        return true;
    case POLICY_HOST_EXACT:
        return strcmp(ep->host, h->name) == 0;
    case POLICY_HOST_IP:
        return h->family == ep->ip_family &&
               memcmp(h->ip, ep->ip, ep->ip_family == AF_INET ? 4 : 16) == 0;
    case POLICY_HOST_WILDCARD:
        return h->family == 0 && policy_host_glob_match(ep->host, h->name);
    }
    return false;
}

/* Exact path, glob, or the symlink target resolved at load time. */
static bool binary_matches(const struct policy_binary *b, const char *path)
{
    if (!path)
        return false;
    if (b->is_glob)
        return glob_match(b->path, path, '/', false);
    return strcmp(b->path, path) == 0 || (b->target && strcmp(b->target, path) == 0);
}

/* ---- bounded text ---- */

struct sbuf {
    char *buf;
    size_t cap, len;
};

static void sb_printf(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *s, const char *fmt, ...)
{
    va_list ap;
    if (s->len + 1 >= s->cap)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    s->len += (size_t)n;
    if (s->len >= s->cap) { /* truncated: end with "..." */
        s->len = s->cap - 1;
        if (s->cap > 4)
            memcpy(s->buf + s->cap - 4, "...", 4);
    }
}

static void sb_binaries(struct sbuf *s, const struct policy_entry *e)
{
    for (size_t i = 0; i < e->n_binaries; i++) {
        const struct policy_binary *b = &e->binaries[i];
        sb_printf(s, "%s%s", i ? ", " : "", b->path);
        if (b->target)
            sb_printf(s, " (a symlink to %s)", b->target);
    }
}

static const char *exe_name(const struct policy_query *q) { return q->exe ? q->exe : "(unknown)"; }

static void sb_caller(struct sbuf *s, const struct policy_query *q)
{
    sb_printf(s, "binary %s", exe_name(q));
    if (q->n_ancestors == 0)
        return;
    sb_printf(s, " (ancestors: ");
    for (size_t i = 0; i < q->n_ancestors; i++)
        sb_printf(s, "%s%s", i ? " -> " : "", q->ancestors[i] ? q->ancestors[i] : "?");
    sb_printf(s, ")");
}

/* ---- the decision ---- */

/* First binary of e matching the exe, else an ancestor (nearest first). */
static const struct policy_binary *match_binary(const struct policy_entry *e,
                                                const struct policy_query *q, const char **by)
{
    for (size_t a = 0; a <= q->n_ancestors; a++) {
        const char *path = a == 0 ? q->exe : q->ancestors[a - 1];
        for (size_t i = 0; i < e->n_binaries; i++) {
            if (binary_matches(&e->binaries[i], path)) {
                *by = path;
                return &e->binaries[i];
            }
        }
    }
    return NULL;
}

static const struct policy_endpoint *match_endpoint(const struct policy_entry *e,
                                                    const struct qhost *h, uint16_t port)
{
    for (size_t i = 0; i < e->n_endpoints; i++)
        if (policy_endpoint_has_port(&e->endpoints[i], port) && host_matches(&e->endpoints[i], h))
            return &e->endpoints[i];
    return NULL;
}

static void explain_allow(struct policy_decision *out, const struct policy_query *q,
                          const struct policy_binary *b)
{
    struct sbuf d = {out->detail, sizeof(out->detail), 0};
    sb_printf(&d, "allowed by network_policies.%s.endpoints[%d] for binary %s", out->policy_key,
              out->endpoint_index, b->path);
    if (out->matched_by != q->exe)
        sb_printf(&d, " (matched by ancestor %s)", out->matched_by);
    else if (b->target && strcmp(out->matched_by, b->target) == 0)
        sb_printf(&d, " (a symlink to %s)", b->target);
}

static void explain_binary(const struct policy *p, struct policy_decision *out,
                           const struct policy_query *q, const struct qhost *h)
{
    struct sbuf d = {out->detail, sizeof(out->detail), 0};
    sb_caller(&d, q);
    sb_printf(&d, " is not allowed to reach %s:%u; the entries whose endpoint matches list ",
              h->name, q->port);
    bool first = true;
    for (size_t i = 0; i < p->n_entries; i++) {
        const struct policy_entry *e = &p->entries[i];
        if (!match_endpoint(e, h, q->port))
            continue;
        sb_printf(&d, "%snetwork_policies.%s (binaries: ", first ? "" : "; ", e->key);
        sb_binaries(&d, e);
        sb_printf(&d, ")");
        first = false;
    }
    snprintf(out->hint, sizeof(out->hint), "add binary %s to network_policies.%s.binaries",
             exe_name(q), out->policy_key);
}

/* Looks for an endpoint that nearly matches: the apex of a wildcard on the
 * right port, or the right host on another port. */
static void explain_no_endpoint(const struct policy *p, struct policy_decision *out,
                                const struct policy_query *q, const struct qhost *h)
{
    struct sbuf d = {out->detail, sizeof(out->detail), 0};
    struct sbuf t = {out->hint, sizeof(out->hint), 0};
    sb_printf(&d, "no network_policies endpoint matches %s:%u", h->name, q->port);
    for (size_t i = 0; i < p->n_entries; i++) {
        const struct policy_entry *e = &p->entries[i];
        for (size_t j = 0; j < e->n_endpoints; j++) {
            const struct policy_endpoint *ep = &e->endpoints[j];
            bool apex = ep->host_kind == POLICY_HOST_WILDCARD && ep->suffix &&
                        strcmp(ep->suffix + 1, h->name) == 0;
            size_t sl = ep->suffix ? strlen(ep->suffix) : 0;
            bool deeper = ep->host_kind == POLICY_HOST_WILDCARD && ep->suffix &&
                          ep->host[1] == '.' && h->len > sl &&
                          strcmp(h->name + h->len - sl, ep->suffix) == 0;
            if (deeper && policy_endpoint_has_port(ep, q->port)) {
                sb_printf(&d, "; network_policies.%s.endpoints[%zu] has '%s', where '*' is "
                              "exactly one label", e->key, j, ep->host);
                sb_printf(&t, "use host '*%s' (one or more labels) or add an endpoint {host: "
                              "%s, port: %u} to network_policies.%s", ep->host, h->name, q->port,
                          e->key);
                return;
            }
            if (apex && policy_endpoint_has_port(ep, q->port)) {
                sb_printf(&d, "; network_policies.%s.endpoints[%zu] has '%s', which does not "
                              "match the apex %s", e->key, j, ep->host, h->name);
                sb_printf(&t, "add an endpoint {host: %s, port: %u} to network_policies.%s",
                          h->name, q->port, e->key);
                return;
            }
            if (ep->host_kind != POLICY_HOST_NONE && host_matches(ep, h)) {
                sb_printf(&d, "; network_policies.%s.endpoints[%zu] lists %s on port%s ", e->key,
                          j, ep->host, ep->n_ports > 1 ? "s" : "");
                for (size_t k = 0; k < ep->n_ports; k++)
                    sb_printf(&d, "%s%u", k ? ", " : "", ep->ports[k]);
                sb_printf(&t, "add port %u to network_policies.%s.endpoints[%zu] (use ports: "
                              "[...])", q->port, e->key, j);
                return;
            }
        }
    }
    if (p->n_entries == 0)
        sb_printf(&d, " (the policy has no network_policies entries: all egress is denied)");
    sb_printf(&t, "add an endpoint {host: %s, port: %u} with binary %s to a network_policies "
                  "entry", h->name, q->port, exe_name(q));
}

static void deny_bad_host(struct policy_decision *out, const struct policy_query *q)
{
    out->reason_code = POLICY_REASON_NO_ENDPOINT;
    snprintf(out->detail, sizeof(out->detail), "the host is not a valid name (empty, too long "
                                               "or with a NUL byte)");
    snprintf(out->hint, sizeof(out->hint), "connect to a DNS name or an IP address");
    (void)q;
}

void policy_decide(const struct policy *p, const struct policy_query *q,
                   struct policy_decision *out)
{
    struct qhost h;
    const struct policy_endpoint *first_ep = NULL;
    const struct policy_entry *first_entry = NULL;
    const struct policy_entry *tainted_entry = NULL;
    const struct policy_endpoint *tainted_ep = NULL;
    const struct policy_binary *tainted_bin = NULL;

    memset(out, 0, sizeof(*out));
    out->endpoint_index = -1;
    if (!qhost_init(&h, q->host)) {
        deny_bad_host(out, q);
        return;
    }
    for (size_t i = 0; p && i < p->n_entries; i++) {
        const struct policy_entry *e = &p->entries[i];
        const struct policy_endpoint *ep = match_endpoint(e, &h, q->port);
        if (!ep)
            continue;
        if (!first_ep) {
            first_ep = ep;
            first_entry = e;
        }
        const char *by = NULL;
        const struct policy_binary *b = match_binary(e, q, &by);
        if (!b)
            continue;
        if (by == q->exe && q->tainted_by && q->tainted_by[0] && !b->allow_env_injection) {
            if (!tainted_entry) {
                tainted_entry = e;
                tainted_ep = ep;
                tainted_bin = b;
            }
            continue; /* another entry may opt in */
        }
        out->allow = true;
        out->policy_key = e->key;
        out->endpoint = ep;
        out->endpoint_index = ep->index;
        out->matched_binary = b->path;
        out->matched_by = by;
        explain_allow(out, q, b);
        return;
    }
    if (tainted_entry) {
        out->reason_code = POLICY_REASON_IDENTITY_TAINTED;
        out->policy_key = tainted_entry->key;
        out->endpoint_index = tainted_ep->index;
        snprintf(out->detail, sizeof(out->detail),
                 "%s matches network_policies.%s, but its environment sets %s, which makes it "
                 "run code that is not %s: it does not get that binary's identity",
                 q->exe, tainted_entry->key, q->tainted_by, q->exe);
        snprintf(out->hint, sizeof(out->hint),
                 "start %s without %s, or set allow_env_injection: true on {path: %s} in "
                 "network_policies.%s.binaries", q->exe, q->tainted_by, tainted_bin->path,
                 tainted_entry->key);
        return;
    }
    if (first_ep) {
        out->reason_code = POLICY_REASON_BINARY_NOT_ALLOWED;
        out->policy_key = first_entry->key;
        out->endpoint_index = first_ep->index;
        explain_binary(p, out, q, &h);
        return;
    }
    out->reason_code = POLICY_REASON_NO_ENDPOINT;
    if (!p) {
        snprintf(out->detail, sizeof(out->detail), "no policy is loaded: all egress is denied");
        snprintf(out->hint, sizeof(out->hint), "load a policy with an endpoint {host: %s, port: "
                                               "%u}", h.name, q->port);
        return;
    }
    explain_no_endpoint(p, out, q, &h);
}

bool policy_names_host(const struct policy *p, const char *host)
{
    struct qhost h;
    if (!p || !qhost_init(&h, host) || h.family != 0 || h.len == 0)
        return false;
    for (size_t i = 0; i < p->n_entries; i++) {
        const struct policy_entry *e = &p->entries[i];
        for (size_t j = 0; j < e->n_endpoints; j++) {
            const struct policy_endpoint *ep = &e->endpoints[j];
            if ((ep->host_kind == POLICY_HOST_EXACT || ep->host_kind == POLICY_HOST_WILDCARD) &&
                host_matches(ep, &h))
                return true;
        }
    }
    return false;
}
