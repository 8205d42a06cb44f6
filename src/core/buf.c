#include "core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int buf_init(struct buf *b, size_t cap)
{
    b->data = malloc(cap);
    b->cap = b->data ? cap : 0;
    b->off = b->len = 0;
    return b->data ? 0 : -ENOMEM;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = b->off = b->len = 0;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->off = b->len = 0;
        return;
    }
    b->off += n;
    b->len -= n;
}

void buf_compact(struct buf *b)
{
    if (b->off == 0)
        return;
    if (b->len)
        memmove(b->data, b->data + b->off, b->len);
    b->off = 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n > b->cap - b->len)
        return -ENOBUFS;
    if (n > buf_space(b))
        buf_compact(b);
    memcpy(buf_tail(b), p, n);
    b->len += n;
    return 0;
}

long buf_read_fd(struct buf *b, int fd)
{
    if (buf_space(b) == 0)
        buf_compact(b);
    if (buf_space(b) == 0)
        return -ENOBUFS;
    ssize_t n = recv(fd, buf_tail(b), buf_space(b), 0);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    b->len += (size_t)n;
    return n;
}

long buf_write_fd(struct buf *b, int fd)
{
    if (b->len == 0)
        return 0;
    ssize_t n = send(fd, buf_head(b), b->len, MSG_NOSIGNAL);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    buf_consume(b, (size_t)n);
    return n;
}
