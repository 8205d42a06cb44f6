#include "proxy/side.h"

#include <errno.h>
#include <sys/socket.h>

#include "tls/tls.h"
#include "core/banned.h"

long side_recv(int fd, struct tls_conn *t, void *p, size_t n)
{
    if (!t) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
        return r;
    }
    ssize_t r = tls_conn_read(t, p, n);
    if (r >= 0)
        return r;
    return r == TLS_ERROR ? -EIO : -EAGAIN;
}

long side_send(int fd, struct tls_conn *t, const void *p, size_t n)
{
    if (!t) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
        return r;
    }
    ssize_t r = tls_conn_write(t, p, n);
    if (r >= 0)
        return r;
    return r == TLS_ERROR ? -EIO : -EAGAIN;
}

long side_buf_read(struct buf *b, int fd, struct tls_conn *t)
{
    if (buf_space(b) == 0)
        buf_compact(b);
    if (buf_space(b) == 0)
        return -ENOBUFS;
    long n = side_recv(fd, t, buf_tail(b), buf_space(b));
    if (n > 0)
        b->len += (size_t)n;
    return n;
}

long side_buf_write(struct buf *b, int fd, struct tls_conn *t)
{
    if (b->len == 0)
        return 0;
    long n = side_send(fd, t, buf_head(b), b->len);
    if (n > 0)
        buf_consume(b, (size_t)n);
    return n;
}

void side_shutdown_write(int fd, struct tls_conn *t)
{
    if (t && tls_conn_shutdown(t) == TLS_ERROR)
        t->fatal = true; /* nothing more can be sent; the TCP shutdown follows */
    shutdown(fd, SHUT_WR);
}
