/* core/lru: the bounded string-keyed LRU (TLS leaf and session caches, the
 * proxy's DNS cache). See lru.h for the contract. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sys/random.h>

#include "core/lru.h"

#include "core/banned.h"

struct lru_entry {
    struct lru_entry *hnext;         /* hash chain */
    struct lru_entry *prev, *next;   /* recency list: head = most recent */
    uint64_t hash;
    void *val;
    char key[];
};

struct lru {
    size_t cap, len;
    size_t nbuckets; /* power of two */
    uint64_t seed;
    struct lru_entry **buckets;
    struct lru_entry *head, *tail;
    lru_free_cb free_val;
};

/* FNV-1a over the key, started from a per-table random seed so a peer
 * cannot pre-compute colliding names (chains are bounded by cap anyway). */
static uint64_t lru_hash(const struct lru *l, const char *key)
{
    uint64_t h = 0xcbf29ce484222325ull ^ l->seed;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

struct lru *lru_new(size_t cap, lru_free_cb free_val)
{
    struct lru *l;
    size_t nb = 16;

    if (cap == 0 || cap > (SIZE_MAX / 4) / sizeof(void *))
        return NULL;
    while (nb < cap * 2)
        nb <<= 1;
    l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->buckets = calloc(nb, sizeof(*l->buckets));
    if (!l->buckets) {
        free(l);
        return NULL;
    }
    if (getrandom(&l->seed, sizeof(l->seed), GRND_NONBLOCK) != (ssize_t)sizeof(l->seed))
        l->seed = (uint64_t)(uintptr_t)l; /* still a valid table, just unseeded */
    l->cap = cap;
    l->nbuckets = nb;
    l->free_val = free_val;
    return l;
}

static void list_unlink(struct lru *l, struct lru_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_front(struct lru *l, struct lru_entry *e)
{
    e->prev = NULL;
    e->next = l->head;
    if (l->head)
        l->head->prev = e;
    l->head = e;
    if (!l->tail)
        l->tail = e;
}

static struct lru_entry **bucket_slot(struct lru *l, const char *key, uint64_t h)
{
    struct lru_entry **pp = &l->buckets[h & (l->nbuckets - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->hnext;
    return pp;
}

/* Unlinks e from both structures and frees it with its value. */
static void entry_drop(struct lru *l, struct lru_entry *e)
{
    struct lru_entry **pp = bucket_slot(l, e->key, e->hash);
    if (*pp == e)
        *pp = e->hnext;
    list_unlink(l, e);
    l->len--;
    if (l->free_val)
        l->free_val(e->val);
    free(e);
}

void lru_free(struct lru *l)
{
    if (!l)
        return;
    while (l->head)
        entry_drop(l, l->head);
    free(l->buckets);
    free(l);
}

void *lru_get(struct lru *l, const char *key)
{
    uint64_t h = lru_hash(l, key);
    struct lru_entry *e = *bucket_slot(l, key, h);
    if (!e)
        return NULL;
    if (l->head != e) {
        list_unlink(l, e);
        list_push_front(l, e);
    }
    return e->val;
}

int lru_put(struct lru *l, const char *key, void *val, uint64_t *evicted)
{
    uint64_t h = lru_hash(l, key);
    struct lru_entry **pp = bucket_slot(l, key, h);
    struct lru_entry *e = *pp;
    size_t klen;

    if (e) { /* replace in place */
        if (l->free_val && e->val != val)
            l->free_val(e->val);
        e->val = val;
        if (l->head != e) {
            list_unlink(l, e);
            list_push_front(l, e);
        }
        return 0;
    }
    klen = strlen(key);
    e = malloc(sizeof(*e) + klen + 1);
    if (!e)
        return -ENOMEM;
    if (l->len >= l->cap) { /* full: evict exactly the least recently used */
        entry_drop(l, l->tail);
        if (evicted)
            (*evicted)++;
        pp = bucket_slot(l, key, h); /* the chain may have changed */
    }
    memcpy(e->key, key, klen + 1);
    e->hash = h;
    e->val = val;
    e->hnext = NULL;
    *pp = e;
    list_push_front(l, e);
    l->len++;
    return 0;
}

bool lru_del(struct lru *l, const char *key)
{
    struct lru_entry *e = *bucket_slot(l, key, lru_hash(l, key));
    if (!e)
        return false;
    entry_drop(l, e);
    return true;
}

size_t lru_len(const struct lru *l) { return l->len; }
size_t lru_cap(const struct lru *l) { return l->cap; }
