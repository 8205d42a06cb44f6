/* execd/ring: a fixed-size replay ring indexed by absolute byte offsets.
 *
 * Every byte ever written has an absolute offset (0, 1, 2, ...); the ring
 * keeps the newest `cap` of them. Byte o lives at slot o % cap. `total` is
 * the offset the next byte will get. Readers hold their own cursor (an
 * absolute offset) and ask for the bytes from it; a cursor older than the
 * oldest kept byte has lost data and is told so (-ERANGE), never silently
 * moved.
 *
 * Each byte also carries a channel (1 = stdout, 2 = stderr, ...), stored as
 * runs: (first offset, channel). The run table has its own cap; when full,
 * the oldest run is dropped and the bytes it covered read back with channel
 * RING_CHAN_UNKNOWN. A single-channel writer uses one run forever.
 *
 * Not thread-safe: one owner (the session or command on the loop thread). */
#ifndef CORDON_EXECD_RING_H
#define CORDON_EXECD_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RING_CHAN_UNKNOWN 0

struct ring_run {
    uint64_t start;
    uint8_t channel;
};

struct ring {
    uint8_t *buf;
    size_t cap;
    uint64_t total;
    struct ring_run *runs;
    size_t runs_cap, runs_head, runs_len;
};

/* Allocates a ring of cap bytes (>= 1) and a run table of runs_cap entries
 * (>= 1). Returns 0, -EINVAL or -ENOMEM. */
int ring_init(struct ring *r, size_t cap, size_t runs_cap) __attribute__((warn_unused_result));
void ring_free(struct ring *r);

/* Offset of the oldest byte still kept (0 until the ring wraps). */
uint64_t ring_oldest(const struct ring *r);
static inline uint64_t ring_total(const struct ring *r) { return r->total; }

/* Appends len bytes on channel. A write larger than the ring keeps only its
 * last cap bytes, but total advances by len (those bytes are lost to every
 * reader and reported as such). Never fails. */
void ring_write(struct ring *r, const void *data, size_t len, uint8_t channel);

/* Direct reads (read(2) straight into the ring): returns a pointer to the
 * contiguous span at the head and its length (>= 1). Writing there
 * overwrites the oldest bytes; call ring_commit with how much was filled
 * before any reader runs. */
uint8_t *ring_reserve(struct ring *r, size_t *len);
void ring_commit(struct ring *r, size_t n, uint8_t channel);

/* Contiguous bytes starting at absolute offset off, all on one channel:
 * sets *ptr, *len (0 when off >= total) and *channel.
 * Returns 0, or -ERANGE when off < ring_oldest() (those bytes are gone). */
int ring_peek(const struct ring *r, uint64_t off, const uint8_t **ptr, size_t *len,
              uint8_t *channel) __attribute__((warn_unused_result));

/* Copies up to max bytes from absolute offset off (across wrap and channel
 * boundaries) into dst. Returns the number copied (0 when off >= total), or
 * -ERANGE when off < ring_oldest(). */
ssize_t ring_copy(const struct ring *r, uint64_t off, void *dst, size_t max)
    __attribute__((warn_unused_result));

#endif
