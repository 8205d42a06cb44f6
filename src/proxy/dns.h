/* proxy/dns: asynchronous name resolution with c-ares inside a worker's loop.
 *
 * One resolver per worker loop. Queries are asynchronous; the callback fires
 * exactly once on the loop's thread, unless the query is cancelled first.
 * IP literals and cached answers resolve immediately (still through the
 * callback, deferred). */
#ifndef CORDON_PROXY_DNS_H
#define CORDON_PROXY_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct loop;
struct dns_resolver;
struct dns_query;
struct dnscache_stats;

#define DNS_MAX_ADDRS 16

struct dns_result {
    int status;   /* 0 ok, else negative: -ENOENT (NXDOMAIN/no data), -ETIMEDOUT, -EIO,
                     -EMFILE (the proxy had no descriptor for a resolver socket) */
    const char *error; /* human text for failures */
    size_t n;
    struct sockaddr_storage addrs[DNS_MAX_ADDRS]; /* port already set */
};

typedef void (*dns_cb)(struct dns_result *res, void *data);

/* server: "ADDR:PORT" (or NULL for the system's /etc/resolv.conf and
 * /etc/hosts). timeout_ms bounds each query overall. */
struct dns_resolver *dns_resolver_new(struct loop *l, const char *server, uint32_t timeout_ms);
void dns_resolver_free(struct dns_resolver *r);

/* Answer cache (proxy/dnscache), off until this is called: answers kept
 * for their TTL up to max_ttl_s (0 = off), negative ones at most 5 s;
 * entries 0 = the default bound. Returns 0 or -ENOMEM. */
int dns_resolver_set_cache(struct dns_resolver *r, uint32_t max_ttl_s, size_t entries)
    __attribute__((warn_unused_result));
void dns_resolver_cache_stats(const struct dns_resolver *r, struct dnscache_stats *out);

/* Starts resolving host (A and AAAA); port is stored in results. Returns a
 * handle (for dns_cancel) or NULL on immediate failure (errno set). */
struct dns_query *dns_resolve(struct dns_resolver *r, const char *host, uint16_t port,
                              dns_cb cb, void *data);
/* Cancels a pending query: its callback will not be called. */
void dns_cancel(struct dns_query *q);

#endif
