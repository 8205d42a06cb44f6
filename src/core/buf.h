/* core/buf: a bounded byte buffer for one direction of a connection.
 * Data lives in [off, off+len); buf_compact() moves it to the front. The
 * capacity is fixed at creation: when full, the owner stops reading. */
#ifndef CORDON_CORE_BUF_H
#define CORDON_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct buf {
    char *data;
    size_t cap, off, len;
};

/* Allocates cap bytes. Returns 0 or -ENOMEM. */
int buf_init(struct buf *b, size_t cap) __attribute__((warn_unused_result));
void buf_free(struct buf *b);

static inline char *buf_head(struct buf *b) { return b->data + b->off; }
static inline size_t buf_space(const struct buf *b) { return b->cap - b->off - b->len; }
static inline char *buf_tail(struct buf *b) { return b->data + b->off + b->len; }
static inline bool buf_empty(const struct buf *b) { return b->len == 0; }

/* Drops n bytes from the front. */
void buf_consume(struct buf *b, size_t n);
/* Moves the data to the front so buf_space() is maximal. */
void buf_compact(struct buf *b);
/* Appends; returns 0 or -ENOBUFS when it does not fit (nothing copied). */
int buf_append(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));

/* Reads from fd into free space (compacting first if needed). Returns bytes
 * read (>0), 0 on EOF, -EAGAIN, -ENOBUFS (full) or -errno. */
long buf_read_fd(struct buf *b, int fd);
/* Writes from the front to fd. Returns bytes written (>=0), -EAGAIN or -errno. */
long buf_write_fd(struct buf *b, int fd);

#endif
