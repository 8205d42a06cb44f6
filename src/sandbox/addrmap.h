/* sandbox/addrmap: the synthetic addresses the policy DNS hands out, and
 * the name each one stands for (one map per sandbox).
 *
 * Every allowed name gets the next free address of the range on its first
 * A query and keeps it for the sandbox's life, so an address never changes
 * meaning while a client may still hold it (no reuse: when the range is
 * full, new names are refused; the cap is the range's size, at most
 * ADDRMAP_MAX). The proxy maps a captured connection's original
 * destination back to the name with addrmap_lookup().
 *
 * Thread-safe: the DNS responder assigns on the supervisor's loop while
 * proxy workers look up (a read-write lock; lookups copy the name out). */
#ifndef CORDON_SANDBOX_ADDRMAP_H
#define CORDON_SANDBOX_ADDRMAP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADDRMAP_DEFAULT_NET "198.18.0.0" /* RFC 2544 benchmarking range: never routed */
#define ADDRMAP_DEFAULT_PREFIX 16
#define ADDRMAP_MAX 65534u

struct addrmap;

/* A map over net/prefix (prefix 16..30; the network and broadcast
 * addresses are never handed out). Returns NULL with errno set. */
struct addrmap *addrmap_new(struct in_addr net, uint8_t prefix);
void addrmap_free(struct addrmap *m);

/* The address of name (lowercase, no trailing dot), assigned on first use.
 * Returns 0, -ENOSPC when the range is full, -EINVAL for an empty or too
 * long name, -ENOMEM. */
int addrmap_assign(struct addrmap *m, const char *name, struct in_addr *out)
    __attribute__((warn_unused_result));
/* The name addr stands for, copied into name. Returns 0, -ENOENT when the
 * address was never handed out (or is outside the range), -ENOSPC when cap
 * is too small. */
int addrmap_lookup(struct addrmap *m, struct in_addr addr, char *name, size_t cap)
    __attribute__((warn_unused_result));
/* True when addr is inside the map's range (handed out or not). */
bool addrmap_in_range(const struct addrmap *m, struct in_addr addr);
/* The range, for the fence rules ("198.18.0.0/16"). */
void addrmap_range(const struct addrmap *m, struct in_addr *net, uint8_t *prefix);
/* Number of names assigned. */
size_t addrmap_count(struct addrmap *m);

#endif
