/* proxy/dnscache: the answers of one resolver, kept for their TTL.
 *
 * A bounded map (core/lru) from a host name (lower-cased, without a
 * trailing dot) to what the resolver last delivered for it:
 *  - positive answers (addresses) for the answer's TTL, at most max_ttl_s;
 *    an answer with TTL 0 is not kept;
 *  - negative answers (-ENOENT: NXDOMAIN, or NODATA for both families) for
 *    DNSCACHE_NEG_TTL_S, at most max_ttl_s;
 *  - nothing else (timeouts, SERVFAIL, refused, fd pressure are not kept).
 * Expired entries are dropped when looked up; when the map is full the
 * least recently used entry goes. The caller passes the clock (now_ms), so
 * the map itself never reads time and is tested without waiting.
 *
 * Not thread-safe: one per resolver, and each resolver belongs to one
 * worker loop. The address fence is not the cache's business: the
 * resolver's callers check every address on every connect. */
#ifndef CORDON_PROXY_DNSCACHE_H
#define CORDON_PROXY_DNSCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/dns.h"

#define DNSCACHE_NEG_TTL_S 5u          /* negative answers, at most (RFC 2308 caching, kept brief) */
#define DNSCACHE_DEFAULT_ENTRIES 1024u /* per resolver (per worker) */

struct dnscache;

struct dnscache_stats {
    size_t size, cap;
    uint64_t hits, misses, stored, evictions, expired;
};

/* cap: entries (1..); max_ttl_s: the cap on any entry's life (1..).
 * Returns NULL with errno (EINVAL, ENOMEM). */
struct dnscache *dnscache_new(size_t cap, uint32_t max_ttl_s);
void dnscache_free(struct dnscache *c);

/* Looks host up at now_ms. On a live entry fills res (addresses with port
 * set, or the stored negative status and its error text) and returns true;
 * otherwise (absent, expired: dropped) returns false and leaves res alone. */
bool dnscache_get(struct dnscache *c, const char *host, uint16_t port, uint64_t now_ms,
                  struct dns_result *res);

/* Keeps res for host at now_ms: addresses for min(ttl_s, max_ttl_s)
 * seconds (nothing kept when that is 0), status -ENOENT for
 * min(DNSCACHE_NEG_TTL_S, max_ttl_s); any other status is not kept.
 * res->error must be a static string (it is handed out as is).
 * Returns 1 when stored, 0 when not cacheable, -errno (-EINVAL for a host
 * name that is too long, -ENOMEM). */
int dnscache_put(struct dnscache *c, const char *host, const struct dns_result *res,
                 uint32_t ttl_s, uint64_t now_ms);

void dnscache_stats(const struct dnscache *c, struct dnscache_stats *out);

#endif
