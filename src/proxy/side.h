/* proxy/side: I/O on one side of a connection, plain TCP or TLS.
 * Returns > 0 bytes, 0 at EOF (recv only), -EAGAIN (retry on the next
 * event, whichever direction TLS wants), or -errno (-EIO for TLS errors). */
#ifndef CORDON_PROXY_SIDE_H
#define CORDON_PROXY_SIDE_H

#include <stddef.h>

#include "core/buf.h"

struct tls_conn;

long side_recv(int fd, struct tls_conn *t, void *p, size_t n);
long side_send(int fd, struct tls_conn *t, const void *p, size_t n);
/* Reads into b's free space (compacting first); -ENOBUFS when full. */
long side_buf_read(struct buf *b, int fd, struct tls_conn *t);
/* Writes from b's front and consumes what was written. */
long side_buf_write(struct buf *b, int fd, struct tls_conn *t);
/* Half-close the write side: close_notify for TLS, then shutdown(SHUT_WR). */
void side_shutdown_write(int fd, struct tls_conn *t);

#endif
