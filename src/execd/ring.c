/* execd/ring: replay ring with absolute offsets and channel runs. */
#include "execd/ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

int ring_init(struct ring *r, size_t cap, size_t runs_cap)
{
    memset(r, 0, sizeof(*r));
    if (cap == 0 || runs_cap == 0)
        return -EINVAL;
    r->buf = malloc(cap);
    r->runs = calloc(runs_cap, sizeof(*r->runs));
    if (!r->buf || !r->runs) {
        ring_free(r);
        return -ENOMEM;
    }
    r->cap = cap;
    r->runs_cap = runs_cap;
    return 0;
}

void ring_free(struct ring *r)
{
    free(r->buf);
    free(r->runs);
    memset(r, 0, sizeof(*r));
}

uint64_t ring_oldest(const struct ring *r)
{
    return r->total > r->cap ? r->total - r->cap : 0;
}

/* Logical index i (0 = oldest run) to the run. */
static struct ring_run *run_at(const struct ring *r, size_t i)
{
    return &r->runs[(r->runs_head + i) % r->runs_cap];
}

static void runs_drop_oldest(struct ring *r)
{
    r->runs_head = (r->runs_head + 1) % r->runs_cap;
    r->runs_len--;
}

/* Records that bytes from offset `start` are on `channel`, and forgets runs
 * that only cover bytes no longer kept. */
static void runs_note(struct ring *r, uint64_t start, uint8_t channel)
{
    uint64_t oldest = ring_oldest(r);
    while (r->runs_len > 1 && run_at(r, 1)->start <= oldest)
        runs_drop_oldest(r);
    if (r->runs_len > 0 && run_at(r, r->runs_len - 1)->channel == channel)
        return;
    if (r->runs_len == r->runs_cap)
        runs_drop_oldest(r); /* table full: the oldest bytes lose their channel */
    struct ring_run *run = run_at(r, r->runs_len);
    run->start = start;
    run->channel = channel;
    r->runs_len++;
}

void ring_write(struct ring *r, const void *data, size_t len, uint8_t channel)
{
    const uint8_t *p = data;
    uint64_t start = r->total;
    if (len == 0)
        return;
    if (len > r->cap) {
        p += len - r->cap;
        r->total += len - r->cap;
        len = r->cap;
    }
    size_t at = (size_t)(r->total % r->cap);
    size_t first = r->cap - at < len ? r->cap - at : len;
    memcpy(r->buf + at, p, first);
    memcpy(r->buf, p + first, len - first);
    r->total += len;
    runs_note(r, start, channel);
}

uint8_t *ring_reserve(struct ring *r, size_t *len)
{
    size_t at = (size_t)(r->total % r->cap);
    *len = r->cap - at;
    return r->buf + at;
}

void ring_commit(struct ring *r, size_t n, uint8_t channel)
{
    uint64_t start = r->total;
    if (n == 0)
        return;
    r->total += n;
    runs_note(r, start, channel);
}

/* Finds the run holding off: sets *channel and *end (first offset past the
 * run, or total for the newest run). */
static void run_lookup(const struct ring *r, uint64_t off, uint8_t *channel, uint64_t *end)
{
    if (r->runs_len == 0 || off < run_at(r, 0)->start) {
        *channel = RING_CHAN_UNKNOWN;
        *end = r->runs_len ? run_at(r, 0)->start : r->total;
        return;
    }
    size_t lo = 0, hi = r->runs_len; /* last run with start <= off is in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (run_at(r, mid)->start <= off)
            lo = mid;
        else
            hi = mid;
    }
    *channel = run_at(r, lo)->channel;
    *end = lo + 1 < r->runs_len ? run_at(r, lo + 1)->start : r->total;
}

int ring_peek(const struct ring *r, uint64_t off, const uint8_t **ptr, size_t *len,
              uint8_t *channel)
{
    *ptr = NULL;
    *len = 0;
    *channel = RING_CHAN_UNKNOWN;
    if (off < ring_oldest(r))
        return -ERANGE;
    if (off >= r->total)
        return 0;
    uint64_t end;
    run_lookup(r, off, channel, &end);
    if (end > r->total)
        end = r->total;
    size_t at = (size_t)(off % r->cap);
    uint64_t n = end - off;
    if (n > r->cap - at)
        n = r->cap - at;
    *ptr = r->buf + at;
    *len = (size_t)n;
    return 0;
}

ssize_t ring_copy(const struct ring *r, uint64_t off, void *dst, size_t max)
{
    if (off < ring_oldest(r))
        return -ERANGE;
    if (off >= r->total)
        return 0;
    uint64_t avail = r->total - off;
    size_t n = avail < max ? (size_t)avail : max;
    size_t at = (size_t)(off % r->cap);
    size_t first = r->cap - at < n ? r->cap - at : n;
    memcpy(dst, r->buf + at, first);
    memcpy((uint8_t *)dst + first, r->buf, n - first);
    return (ssize_t)n;
}
