/* proxy/dnscache: the answers of one resolver, kept for their TTL.
 * See dnscache.h for the contract.
 *
 * An entry holds the addresses compactly (family, 16 address bytes, IPv6
 * scope), not as sockaddr_storage: 24 bytes an address instead of 128, so
 * a full map of DNSCACHE_DEFAULT_ENTRIES short names with one address each
 * costs about 160 KiB per worker (map node, key, entry, allocator
 * overhead); 253-byte names with DNS_MAX_ADDRS addresses each, about
 * 0.75 MiB. */
#include "proxy/dnscache.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/lru.h"

#include "core/banned.h"

#define DNSCACHE_KEY_MAX 256 /* 253 name bytes + dot + NUL, with room */

struct dnscache_addr {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    uint32_t scope_id;
};

struct dnscache_entry {
    uint64_t expires_ms;
    int status;          /* 0 or -ENOENT */
    const char *error;   /* static text for a negative entry */
    size_t n;
    struct dnscache_addr addrs[];
};

struct dnscache {
    struct lru *map;
    uint32_t max_ttl_s;
    struct dnscache_stats st;
};

/* Lower-cases host and drops one trailing dot. Returns 0 or -EINVAL. */
static int dnscache_key(const char *host, char key[DNSCACHE_KEY_MAX])
{
    size_t len = strlen(host);
    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 0 || len >= DNSCACHE_KEY_MAX)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        char ch = host[i];
        key[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    key[len] = '\0';
    return 0;
}

struct dnscache *dnscache_new(size_t cap, uint32_t max_ttl_s)
{
    struct dnscache *c;
    if (cap == 0 || max_ttl_s == 0) {
        errno = EINVAL;
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    c->map = lru_new(cap, free);
    if (!c->map) {
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    c->max_ttl_s = max_ttl_s;
    return c;
}

void dnscache_free(struct dnscache *c)
{
    if (!c)
        return;
    lru_free(c->map);
    free(c);
}

bool dnscache_get(struct dnscache *c, const char *host, uint16_t port, uint64_t now_ms,
                  struct dns_result *res)
{
    char key[DNSCACHE_KEY_MAX];
    struct dnscache_entry *e;

    if (dnscache_key(host, key) < 0)
        return false;
    e = lru_get(c->map, key);
    if (e && now_ms >= e->expires_ms) {
        (void)lru_del(c->map, key);
        c->st.expired++;
        e = NULL;
    }
    if (!e) {
        c->st.misses++;
        return false;
    }
    c->st.hits++;
    res->status = e->status;
    res->error = e->error;
    res->n = 0;
    for (size_t i = 0; i < e->n && i < DNS_MAX_ADDRS; i++) {
        const struct dnscache_addr *a = &e->addrs[i];
        struct sockaddr_storage *ss = &res->addrs[res->n++];
        memset(ss, 0, sizeof(*ss));
        if (a->family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)ss;
            sin->sin_family = AF_INET;
            memcpy(&sin->sin_addr, a->addr, 4);
            sin->sin_port = htons(port);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
            sin6->sin6_family = AF_INET6;
            memcpy(&sin6->sin6_addr, a->addr, 16);
            sin6->sin6_scope_id = a->scope_id;
            sin6->sin6_port = htons(port);
        }
    }
    return true;
}

int dnscache_put(struct dnscache *c, const char *host, const struct dns_result *res,
                 uint32_t ttl_s, uint64_t now_ms)
{
    char key[DNSCACHE_KEY_MAX];
    struct dnscache_entry *e;
    size_t n = 0;
    uint32_t life;

    if (dnscache_key(host, key) < 0)
        return -EINVAL;
    if (res->status == 0 && res->n > 0) {
        life = ttl_s < c->max_ttl_s ? ttl_s : c->max_ttl_s;
        n = res->n < DNS_MAX_ADDRS ? res->n : DNS_MAX_ADDRS;
    } else if (res->status == -ENOENT) {
        life = DNSCACHE_NEG_TTL_S < c->max_ttl_s ? DNSCACHE_NEG_TTL_S : c->max_ttl_s;
    } else {
        return 0;
    }
    if (life == 0)
        return 0;
    e = calloc(1, sizeof(*e) + n * sizeof(e->addrs[0]));
    if (!e)
        return -ENOMEM;
    e->expires_ms = now_ms + (uint64_t)life * 1000u;
    e->status = res->status;
    e->error = res->status ? res->error : NULL;
    for (size_t i = 0; i < n; i++) {
        const struct sockaddr_storage *ss = &res->addrs[i];
        struct dnscache_addr *a = &e->addrs[e->n];
        if (ss->ss_family == AF_INET) {
            a->family = AF_INET;
            memcpy(a->addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        } else if (ss->ss_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
            a->family = AF_INET6;
            memcpy(a->addr, &sin6->sin6_addr, 16);
            a->scope_id = sin6->sin6_scope_id;
        } else {
            continue;
        }
        e->n++;
    }
    if (res->status == 0 && e->n == 0) {
        free(e);
        return 0;
    }
    int rc = lru_put(c->map, key, e, &c->st.evictions);
    if (rc < 0) {
        free(e);
        return rc;
    }
    c->st.stored++;
    return 1;
}

void dnscache_stats(const struct dnscache *c, struct dnscache_stats *out)
{
    *out = c->st;
    out->size = lru_len(c->map);
    out->cap = lru_cap(c->map);
}
