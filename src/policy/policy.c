/* policy/policy: lifetime (reference counting, the process-wide current
 * policy) and the read-only accessors the proxy and the sandbox use. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

#include "core/banned.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct policy *g_current; /* guarded by g_lock */

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_rule(struct policy_rule *ru)
{
    free(ru->method);
    free(ru->path);
    for (size_t q = 0; q < ru->n_query; q++) {
        free(ru->query[q].key);
        free_strv(ru->query[q].globs, ru->query[q].n_globs);
    }
    free(ru->query);
    free(ru->op_type);
    free(ru->op_name);
    free_strv(ru->fields, ru->n_fields);
    free_strv(ru->tools, ru->n_tools);
    free(ru->pq_id);
}

static void free_endpoint(struct policy_endpoint *ep)
{
    free(ep->host);
    free(ep->ports);
    free(ep->ips);
    free(ep->path_sel);
    for (size_t r = 0; r < ep->n_rules; r++)
        free_rule(&ep->rules[r]);
    free(ep->rules);
    for (size_t r = 0; r < ep->n_persisted; r++)
        free_rule(&ep->persisted[r]);
    free(ep->persisted);
}

void policy_free_internal(struct policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_entries; i++) {
        struct policy_entry *e = &p->entries[i];
        free(e->key);
        free(e->name);
        for (size_t j = 0; j < e->n_endpoints; j++)
            free_endpoint(&e->endpoints[j]);
        free(e->endpoints);
        for (size_t j = 0; j < e->n_binaries; j++) {
            free(e->binaries[j].path);
            free(e->binaries[j].target);
        }
        free(e->binaries);
    }
    free(p->entries);
    free_strv(p->fs.read_only, p->fs.n_read_only);
    free_strv(p->fs.read_write, p->fs.n_read_write);
    free(p->run_as_user);
    free(p->run_as_group);
    free(p->source);
    free(p);
}

void policy_diag_free(struct policy_diag *d)
{
    if (!d)
        return;
    free_strv(d->lines, d->n);
    memset(d, 0, sizeof(*d));
}

struct policy *policy_ref(struct policy *p)
{
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void policy_unref(struct policy *p)
{
    if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        policy_free_internal(p);
}

struct policy *policy_current(void)
{
    pthread_mutex_lock(&g_lock);
    struct policy *p = policy_ref(g_current);
    pthread_mutex_unlock(&g_lock);
    return p;
}

void policy_install(struct policy *p)
{
    pthread_mutex_lock(&g_lock);
    struct policy *old = g_current;
    g_current = p;
    pthread_mutex_unlock(&g_lock);
    policy_unref(old);
}

/* ---- accessors ---- */

bool policy_endpoint_is_rest(const struct policy_endpoint *ep) { return ep->rest; }
enum policy_tls policy_endpoint_tls(const struct policy_endpoint *ep) { return ep->tls; }

enum policy_enforcement policy_endpoint_enforcement(const struct policy_endpoint *ep)
{
    return ep->enforcement;
}

uint64_t policy_endpoint_idle_timeout_ms(const struct policy_endpoint *ep)
{
    return ep->idle_timeout_ms;
}

uint64_t policy_endpoint_upgrade_idle_timeout_ms(const struct policy_endpoint *ep)
{
    return ep->upgrade_idle_timeout_ms;
}

size_t policy_endpoint_allowed_ips(const struct policy_endpoint *ep,
                                   const struct policy_cidr **out)
{
    *out = ep->ips;
    return ep->n_ips;
}

const char *policy_endpoint_host(const struct policy_endpoint *ep) { return ep->host; }
const char *policy_endpoint_policy_key(const struct policy_endpoint *ep) { return ep->entry->key; }
int policy_endpoint_index(const struct policy_endpoint *ep) { return ep->index; }

enum policy_access policy_endpoint_access(const struct policy_endpoint *ep)
{
    return ep->rest ? ep->access : POLICY_ACCESS_NONE;
}

const struct policy_fs *policy_filesystem(const struct policy *p) { return &p->fs; }
enum policy_landlock policy_landlock_compat(const struct policy *p) { return p->landlock; }
const char *policy_run_as_user(const struct policy *p) { return p->run_as_user; }
const char *policy_run_as_group(const struct policy *p) { return p->run_as_group; }
const struct policy_limits *policy_limits(const struct policy *p) { return &p->limits; }
const char *policy_source(const struct policy *p) { return p->source; }
size_t policy_n_entries(const struct policy *p) { return p->n_entries; }
size_t policy_n_endpoints(const struct policy *p) { return p->n_endpoints; }

/* ---- CIDRs ---- */

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Reduces an address (or a mapped-IPv6 CIDR) to its IPv4 form when it is
 * one; bytes then holds the 4 IPv4 bytes. */
static int canon(int family, const uint8_t *in, unsigned *prefix, uint8_t out[16])
{
    memset(out, 0, 16);
    if (family == AF_INET6 && memcmp(in, v4_mapped, 12) == 0 && *prefix >= 96) {
        memcpy(out, in + 12, 4);
        *prefix -= 96;
        return AF_INET;
    }
    memcpy(out, in, family == AF_INET ? 4 : 16);
    return family;
}

bool policy_cidr_contains(const struct policy_cidr *cidr, const struct sockaddr *addr)
{
    uint8_t a[16], c[16];
    unsigned ap, cp = cidr->prefix;
    int af, cf;

    if (addr->sa_family == AF_INET) {
        ap = 32;
        af = canon(AF_INET, (const uint8_t *)&((const struct sockaddr_in *)addr)->sin_addr, &ap, a);
    } else if (addr->sa_family == AF_INET6) {
        ap = 128;
        af = canon(AF_INET6, ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr, &ap, a);
    } else {
        return false;
    }
    cf = canon(cidr->family, cidr->addr, &cp, c);
    if (af != cf)
        return false;
    unsigned full = cp / 8, rem = cp % 8;
    if (memcmp(a, c, full) != 0)
        return false;
    if (rem == 0)
        return true;
    uint8_t m = (uint8_t)(0xff << (8 - rem));
    return (a[full] & m) == (c[full] & m);
}
