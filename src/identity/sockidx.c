/* identity/sockidx: where a socket was last seen, inode -> (pid, start
 * time, fd number, when).
 *
 * Filled from whole reads of an owner's fd table (procscan.c step 3), so
 * that the owner's other sockets — typically connections already waiting
 * in the proxy's accept queue or being parsed — can later be checked with
 * one readlink of /proc/PID/fd/N instead of another read of the whole
 * table. An entry is a hint, never a verdict: procscan.c re-reads that one
 * link and the process's start time before believing it, and falls back to
 * the slow path when either differs. A wrong, stale or colliding entry
 * therefore costs one failed readlink and nothing else.
 *
 * Bounded: a fixed set-associative table (SOCKIDX_WAYS entries per set),
 * allocated once. An insert into a full set replaces the oldest entry of
 * that set; entries older than max_age_ns are never returned and are
 * replaced first. No allocation after creation; one mutex held only for
 * the copy in or out. */
#include "identity/identity_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

#define SOCKIDX_WAYS 4
#define SOCKIDX_MIN_CAP 64
#define SOCKIDX_MAX_CAP (1u << 20)

struct sockidx_ent {
    uint64_t inode;           /* 0 = empty */
    uint64_t seen_ns;
    unsigned long long start;
    pid_t pid;
    int fd;
};

struct identity_sockidx {
    pthread_mutex_t mu;
    size_t nsets;             /* power of two */
    uint64_t max_age_ns;
    struct sockidx_ent *ents; /* nsets * SOCKIDX_WAYS */
};

int identity_sockidx_new(size_t cap, uint64_t max_age_ns, struct identity_sockidx **out)
{
    struct identity_sockidx *x;
    size_t nsets = 1;

    *out = NULL;
    if (cap < SOCKIDX_MIN_CAP || cap > SOCKIDX_MAX_CAP || max_age_ns == 0)
        return -EINVAL;
    while (nsets * SOCKIDX_WAYS < cap)
        nsets *= 2;
    x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->ents = calloc(nsets * SOCKIDX_WAYS, sizeof(*x->ents));
    if (!x->ents) {
        free(x);
        return -ENOMEM;
    }
    x->nsets = nsets;
    x->max_age_ns = max_age_ns;
    pthread_mutex_init(&x->mu, NULL);
    *out = x;
    return 0;
}

void identity_sockidx_free(struct identity_sockidx *x)
{
    if (!x)
        return;
    pthread_mutex_destroy(&x->mu);
    free(x->ents);
    free(x);
}

/* Socket inode numbers are handed out sequentially (per-CPU batches):
 * multiplicative hashing spreads neighbours over the sets. */
static struct sockidx_ent *sockidx_set(struct identity_sockidx *x, uint64_t inode)
{
    uint64_t h = inode * 0x9e3779b97f4a7c15ull;
    return &x->ents[(size_t)(h >> 32 & (x->nsets - 1)) * SOCKIDX_WAYS];
}

static bool sockidx_live(const struct identity_sockidx *x, const struct sockidx_ent *e,
                         uint64_t now_ns)
{
    return e->inode != 0 && now_ns >= e->seen_ns && now_ns - e->seen_ns < x->max_age_ns;
}

void identity_sockidx_put(struct identity_sockidx *x, pid_t pid, unsigned long long start,
                          uint64_t seen_ns, const struct identity_sockfd *socks, size_t n)
{
    pthread_mutex_lock(&x->mu);
    for (size_t i = 0; i < n; i++) {
        struct sockidx_ent *set = sockidx_set(x, socks[i].inode);
        struct sockidx_ent *same = NULL, *unused = NULL, *oldest = NULL, *victim;
        for (size_t w = 0; w < SOCKIDX_WAYS; w++) {
            struct sockidx_ent *e = &set[w];
            if (e->inode == socks[i].inode) {
                same = e;
                break;
            }
            if (!sockidx_live(x, e, seen_ns)) {
                if (!unused)
                    unused = e;
            } else if (!oldest || e->seen_ns < oldest->seen_ns) {
                oldest = e;
            }
        }
        if (same && same->seen_ns > seen_ns)
            continue; /* a newer read already recorded it */
        victim = same ? same : unused ? unused : oldest;
        victim->inode = socks[i].inode;
        victim->seen_ns = seen_ns;
        victim->start = start;
        victim->pid = pid;
        victim->fd = socks[i].fd;
    }
    pthread_mutex_unlock(&x->mu);
}

bool identity_sockidx_get(struct identity_sockidx *x, uint64_t inode, uint64_t now_ns,
                          struct identity_sockidx_hint *out)
{
    bool found = false;
    struct sockidx_ent *set;

    if (inode == 0)
        return false;
    pthread_mutex_lock(&x->mu);
    set = sockidx_set(x, inode);
    for (size_t w = 0; w < SOCKIDX_WAYS; w++) {
        if (set[w].inode == inode && sockidx_live(x, &set[w], now_ns)) {
            out->pid = set[w].pid;
            out->fd = set[w].fd;
            out->start = set[w].start;
            out->seen_ns = set[w].seen_ns;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&x->mu);
    return found;
}

void identity_sockidx_drop(struct identity_sockidx *x, uint64_t inode, pid_t pid)
{
    struct sockidx_ent *set;

    pthread_mutex_lock(&x->mu);
    set = sockidx_set(x, inode);
    for (size_t w = 0; w < SOCKIDX_WAYS; w++)
        if (set[w].inode == inode && set[w].pid == pid)
            memset(&set[w], 0, sizeof(set[w]));
    pthread_mutex_unlock(&x->mu);
}
