/* sandbox/addrmap: synthetic address <-> name (see addrmap.h).
 *
 * Storage: names[i] is the name of address net + 1 + i (a dense array,
 * since addresses are handed out in order), and an open-addressing hash
 * table (linear probing, power-of-two size, at most half full) from name to
 * index. Both grow by doubling up to the range's size. */
#include "sandbox/addrmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/dnsmsg.h"
#include "core/banned.h"

struct addrmap {
    pthread_rwlock_t lock;
    uint32_t net;        /* host order */
    uint8_t prefix;
    uint32_t cap;        /* addresses in the range that may be handed out */
    char **names;        /* names[i]: address net + 1 + i */
    uint32_t n, names_cap;
    uint32_t *slots;     /* hash table of index + 1 (0 = empty) */
    uint32_t n_slots;
};

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

struct addrmap *addrmap_new(struct in_addr net, uint8_t prefix)
{
    if (prefix < 16 || prefix > 30) {
        errno = EINVAL;
        return NULL;
    }
    struct addrmap *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    uint32_t mask = prefix == 0 ? 0 : ~0u << (32 - prefix);
    m->net = ntohl(net.s_addr) & mask;
    m->prefix = prefix;
    m->cap = (1u << (32 - prefix)) - 2;
    if (m->cap > ADDRMAP_MAX)
        m->cap = ADDRMAP_MAX;
    m->n_slots = 64;
    m->slots = calloc(m->n_slots, sizeof(*m->slots));
    if (!m->slots || pthread_rwlock_init(&m->lock, NULL) != 0) {
        free(m->slots);
        free(m);
        errno = ENOMEM;
        return NULL;
    }
    return m;
}

void addrmap_free(struct addrmap *m)
{
    if (!m)
        return;
    for (uint32_t i = 0; i < m->n; i++)
        free(m->names[i]);
    free(m->names);
    free(m->slots);
    pthread_rwlock_destroy(&m->lock);
    free(m);
}

/* Slot holding name, or the empty slot where it would go. */
static uint32_t find_slot(const struct addrmap *m, const char *name)
{
    uint32_t mask = m->n_slots - 1, i = hash_name(name) & mask;
    while (m->slots[i] && strcmp(m->names[m->slots[i] - 1], name) != 0)
        i = (i + 1) & mask;
    return i;
}

static int grow(struct addrmap *m)
{
    if (m->n == m->names_cap) {
        uint32_t nc = m->names_cap ? m->names_cap * 2 : 64;
        char **nn = realloc(m->names, nc * sizeof(*nn));
        if (!nn)
            return -ENOMEM;
        m->names = nn;
        m->names_cap = nc;
    }
    if ((m->n + 1) * 2 > m->n_slots) {
        uint32_t ns = m->n_slots * 2;
        uint32_t *old = m->slots, old_n = m->n_slots;
        m->slots = calloc(ns, sizeof(*m->slots));
        if (!m->slots) {
            m->slots = old;
            return -ENOMEM;
        }
        m->n_slots = ns;
        for (uint32_t i = 0; i < old_n; i++)
            if (old[i])
                m->slots[find_slot(m, m->names[old[i] - 1])] = old[i];
        free(old);
    }
    return 0;
}

int addrmap_assign(struct addrmap *m, const char *name, struct in_addr *out)
{
    size_t l = name ? strlen(name) : 0;
    if (l == 0 || l > DNSMSG_NAME_MAX)
        return -EINVAL;
    pthread_rwlock_wrlock(&m->lock);
    int rc = 0;
    uint32_t s = find_slot(m, name);
    uint32_t idx;
    if (m->slots[s]) {
        idx = m->slots[s] - 1;
    } else {
        if (m->n >= m->cap) {
            rc = -ENOSPC;
            goto out;
        }
        char *copy = strdup(name);
        if (!copy || (rc = grow(m)) < 0) {
            free(copy);
            rc = rc ? rc : -ENOMEM;
            goto out;
        }
        idx = m->n++;
        m->names[idx] = copy;
        m->slots[find_slot(m, name)] = idx + 1;
    }
    out->s_addr = htonl(m->net + 1 + idx);
out:
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

bool addrmap_in_range(const struct addrmap *m, struct in_addr addr)
{
    uint32_t mask = ~0u << (32 - m->prefix);
    return (ntohl(addr.s_addr) & mask) == m->net;
}

int addrmap_lookup(struct addrmap *m, struct in_addr addr, char *name, size_t cap)
{
    if (!addrmap_in_range(m, addr))
        return -ENOENT;
    uint32_t off = ntohl(addr.s_addr) - m->net;
    int rc = -ENOENT;
    pthread_rwlock_rdlock(&m->lock);
    if (off >= 1 && off - 1 < m->n) {
        const char *n = m->names[off - 1];
        size_t l = strlen(n);
        if (l + 1 > cap) {
            rc = -ENOSPC;
        } else {
            memcpy(name, n, l + 1);
            rc = 0;
        }
    }
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

void addrmap_range(const struct addrmap *m, struct in_addr *net, uint8_t *prefix)
{
    net->s_addr = htonl(m->net);
    *prefix = m->prefix;
}

size_t addrmap_count(struct addrmap *m)
{
    pthread_rwlock_rdlock(&m->lock);
    size_t n = m->n;
    pthread_rwlock_unlock(&m->lock);
    return n;
}
