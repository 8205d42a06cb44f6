/* proxy/xlisten: listening sockets the proxy serves but did not open.
 *
 * proxy_config.extra_listen_fd and transparent_listen_fd are sockets the
 * caller opened elsewhere: `cordon run` opens them inside the sandbox's
 * network namespace (127.0.0.1:3128, the proxy address the sandbox's
 * HTTP(S)_PROXY name; 127.0.0.1:3129, where the fence redirects captured
 * TCP). A socket keeps the namespace it was made in, so accepted
 * connections and their SO_ORIGINAL_DST belong to the sandbox's
 * connection tracking. Connections from the first are served exactly like
 * the proxy's own port; those from the second enter through the
 * transparent adapter (entry_transparent). Both are shared by every worker
 * with EPOLLEXCLUSIVE (one wakeup per connection), accepted in bounded
 * batches. At the connection limit a connection is closed at once (a
 * captured client could not read an HTTP 503). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "proxy/internal.h"
#include "core/banned.h"

#define XL_BATCH 32

static void on_xlisten(struct loop *l, struct loop_io *io, uint32_t ev)
{
    struct xlisten *x = io->data;
    struct worker *w = x->w;
    (void)l;
    (void)ev;
    for (int i = 0; i < XL_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t pl = sizeof(peer);
        int fd = accept4(x->fd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                log_warn("proxy: worker %u: accept on the %s listener: %s", w->index,
                         x->transparent ? "capture" : "in-sandbox", strerror(errno));
            return;
        }
        worker_admit(w, fd, &peer, x->transparent);
    }
}

static int add_one(struct worker *w, int fd, bool transparent)
{
    if (fd < 0)
        return 0;
    struct xlisten *x = &w->xl[w->n_xl];
    x->w = w;
    x->fd = fd;
    x->transparent = transparent;
    x->io.cb = on_xlisten;
    x->io.data = x;
    int r = loop_io_add(w->loop, &x->io, fd, EPOLLIN | EPOLLEXCLUSIVE);
    if (r == 0)
        w->n_xl++;
    return r;
}

int xlisten_worker_init(struct worker *w)
{
    int r = add_one(w, w->proxy->extra_fd, false);
    if (r == 0)
        r = add_one(w, w->proxy->transparent_fd, true);
    return r;
}
