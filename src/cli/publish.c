/* cli/publish: `cordon run --publish [ADDR:]HOSTPORT:PORT` relays TCP
 * connections from the host (default 127.0.0.1:HOSTPORT) to PORT at the
 * sandbox's address, e.g. for an `execd` inside.
 *
 * The relay runs on the supervisor's loop: one listener per --publish, at
 * most PUBLISH_MAX_CONNS relays per listener (more are accepted and closed
 * at once), two fixed PUBLISH_BUF buffers per relay; a side that cannot
 * take more stops the other side's reads (backpressure), a half-close is
 * passed on, and a relay ends when both directions are done or on any
 * error. Connections go into the sandbox, never out: the proxy is still the
 * sandbox's only way out. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/run_int.h"
#include "core/loop.h"
#include "core/parse.h"
#include "core/banned.h"

#define PUBLISH_MAX_CONNS 64
#define PUBLISH_BUF 16384

struct pipe_dir {
    char buf[PUBLISH_BUF];
    size_t len, off;
    bool eof;       /* the reading side sent FIN */
    bool shut;      /* we passed it on (shutdown SHUT_WR) */
};

struct relay {
    struct run_publish *pub;
    struct loop_io host, sbx;        /* host side (accepted), sandbox side (dialed) */
    struct pipe_dir up, down;        /* up: host -> sandbox */
    bool connecting, dead;
    struct loop_deferred free_node;
    struct relay *prev, *next;       /* the listener's live relays */
};

int run_publish_parse(const char *spec, struct run_publish *out)
{
    memset(out, 0, sizeof(*out));
    out->lfd = -1;
    char copy[128];
    if (strlen(spec) >= sizeof(copy))
        return -EINVAL;
    snprintf(copy, sizeof(copy), "%s", spec);
    char *last = strrchr(copy, ':');
    if (!last)
        return -EINVAL;
    *last = '\0';
    uint32_t port, hport;
    if (parse_u32_str(last + 1, 1, 65535, &port) < 0)
        return -EINVAL;
    char *mid = strrchr(copy, ':');
    const char *addr = "127.0.0.1", *hp = copy;
    if (mid) {
        *mid = '\0';
        addr = copy;
        hp = mid + 1;
    }
    if (parse_u32_str(hp, 0, 65535, &hport) < 0) /* 0: any free port (printed) */
        return -EINVAL;
    out->listen.sin_family = AF_INET;
    out->listen.sin_port = htons((uint16_t)hport);
    if (inet_pton(AF_INET, addr, &out->listen.sin_addr) != 1)
        return -EINVAL;
    out->port = (uint16_t)port;
    return 0;
}

static void relay_free(void *arg)
{
    free(arg);
}

static void relay_end(struct loop *l, struct relay *r)
{
    if (r->dead)
        return;
    r->dead = true;
    if (r->prev)
        r->prev->next = r->next;
    else
        r->pub->relays = r->next;
    if (r->next)
        r->next->prev = r->prev;
    loop_io_del(l, &r->host);
    loop_io_del(l, &r->sbx);
    close(r->host.fd);
    close(r->sbx.fd);
    r->pub->n_conns--;
    loop_defer(l, &r->free_node, relay_free, r);
}

static void update(struct loop *l, struct relay *r)
{
    uint32_t h = 0, s = 0;
    if (!r->up.eof && r->up.len < PUBLISH_BUF)
        h |= EPOLLIN;
    if (r->down.len > r->down.off)
        h |= EPOLLOUT;
    if (r->connecting) {
        s = EPOLLOUT;
    } else {
        if (!r->down.eof && r->down.len < PUBLISH_BUF)
            s |= EPOLLIN;
        if (r->up.len > r->up.off)
            s |= EPOLLOUT;
    }
    if (loop_io_mod(l, &r->host, h) < 0 || loop_io_mod(l, &r->sbx, s) < 0)
        relay_end(l, r);
}

/* Moves bytes from `from` into d, and from d into `to`; -1 on an error. */
static int pump(int from, int to, struct pipe_dir *d)
{
    while (!d->eof && d->len < PUBLISH_BUF) {
        ssize_t n = recv(from, d->buf + d->len, PUBLISH_BUF - d->len, MSG_DONTWAIT);
        if (n > 0) {
            d->len += (size_t)n;
            continue;
        }
        if (n == 0)
            d->eof = true;
        else if (errno != EAGAIN && errno != EINTR)
            return -1;
        break;
    }
    while (d->off < d->len) {
        ssize_t n = send(to, d->buf + d->off, d->len - d->off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            d->off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        break;
    }
    if (d->off == d->len)
        d->off = d->len = 0;
    if (d->eof && d->len == 0 && !d->shut) {
        shutdown(to, SHUT_WR);
        d->shut = true;
    }
    return 0;
}

static void on_io(struct loop *l, struct relay *r, uint32_t ev, bool sbx_side)
{
    if (r->dead)
        return;
    if (sbx_side && r->connecting) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(r->sbx.fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
            relay_end(l, r);
            return;
        }
        r->connecting = false;
    }
    if (r->connecting) {
        update(l, r);
        return;
    }
    if (pump(r->host.fd, r->sbx.fd, &r->up) < 0 || pump(r->sbx.fd, r->host.fd, &r->down) < 0 ||
        (r->up.shut && r->down.shut) || ((ev & EPOLLERR) && !(ev & EPOLLIN))) {
        relay_end(l, r);
        return;
    }
    update(l, r);
}

static void on_host(struct loop *l, struct loop_io *io, uint32_t ev)
{
    on_io(l, io->data, ev, false);
}

static void on_sbx(struct loop *l, struct loop_io *io, uint32_t ev)
{
    on_io(l, io->data, ev, true);
}

static void on_accept(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct run_publish *p = io->data;
    for (;;) {
        int c = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
            return;
        struct relay *r = p->n_conns < PUBLISH_MAX_CONNS ? calloc(1, sizeof(*r)) : NULL;
        int s = r ? socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
        if (s < 0 || (connect(s, (struct sockaddr *)&p->target, sizeof(p->target)) < 0 &&
                      errno != EINPROGRESS)) {
            if (s >= 0)
                close(s);
            close(c);
            free(r);
            continue;
        }
        r->pub = p;
        r->connecting = true;
        r->host.cb = on_host;
        r->host.data = r;
        r->sbx.cb = on_sbx;
        r->sbx.data = r;
        if (loop_io_add(l, &r->host, c, EPOLLIN) < 0) {
            close(c);
            close(s);
            free(r);
            continue;
        }
        if (loop_io_add(l, &r->sbx, s, EPOLLOUT) < 0) {
            loop_io_del(l, &r->host);
            close(c);
            close(s);
            free(r);
            continue;
        }
        p->n_conns++;
        r->next = p->relays;
        if (p->relays)
            p->relays->prev = r;
        p->relays = r;
        update(l, r);
    }
}

int run_publish_start(struct run_publish *p, const char *sandbox_addr, struct loop *l)
{
    p->target.sin_family = AF_INET;
    p->target.sin_port = htons(p->port);
    if (inet_pton(AF_INET, sandbox_addr, &p->target.sin_addr) != 1)
        return -EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&p->listen, sizeof(p->listen)) < 0 || listen(fd, 64) < 0) {
        int e = errno;
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &p->listen.sin_addr, a, sizeof(a));
        fprintf(stderr, "cordon run: --publish %s:%u: %s\n", a,
                (unsigned)ntohs(p->listen.sin_port), strerror(e));
        close(fd);
        return -e;
    }
    socklen_t al = sizeof(p->listen);
    getsockname(fd, (struct sockaddr *)&p->listen, &al); /* the port, when 0 was asked */
    p->lfd = fd;
    p->io.cb = on_accept;
    p->io.data = p;
    int rc = loop_io_add(l, &p->io, fd, EPOLLIN);
    if (rc < 0) {
        close(fd);
        p->lfd = -1;
    }
    return rc;
}

void run_publish_stop(struct run_publish *p)
{
    /* The loop is gone by now (torn down with the sandbox): close what is
     * left without it. */
    while (p->relays) {
        struct relay *r = p->relays;
        p->relays = r->next;
        close(r->host.fd);
        close(r->sbx.fd);
        free(r);
    }
    p->n_conns = 0;
    if (p->lfd >= 0)
        close(p->lfd);
    p->lfd = -1;
}
