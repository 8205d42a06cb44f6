/* core/lru: a bounded string-keyed LRU map (key -> owned value).
 *
 * O(1) get/put: a chained hash table (random seed, power-of-two buckets,
 * twice the capacity) plus a doubly linked recency list. Not thread-safe;
 * the owner holds its own lock or keeps the map on one thread. When full,
 * put() evicts exactly one entry, the least recently used, and frees its
 * value with free_val. Users: the TLS leaf and session caches, the proxy's
 * DNS cache. */
#ifndef CORDON_CORE_LRU_H
#define CORDON_CORE_LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lru;
typedef void (*lru_free_cb)(void *val);

/* cap: the most entries held (1.. ); free_val frees a value (may be NULL).
 * Returns NULL on a zero/huge cap or out of memory. */
struct lru *lru_new(size_t cap, lru_free_cb free_val);
void lru_free(struct lru *l);
/* Returns the value (borrowed) and marks it most recently used, or NULL. */
void *lru_get(struct lru *l, const char *key);
/* Inserts or replaces (the old value is freed). On success the LRU owns
 * val; on -ENOMEM the caller still does. *evicted is incremented when an
 * entry was evicted (may be NULL). */
int lru_put(struct lru *l, const char *key, void *val, uint64_t *evicted)
    __attribute__((warn_unused_result));
/* Removes and frees key's entry; returns true when there was one. */
bool lru_del(struct lru *l, const char *key);
size_t lru_len(const struct lru *l);
size_t lru_cap(const struct lru *l);

#endif
