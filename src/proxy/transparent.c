/* proxy/transparent: the transparent-capture entry adapter, and the
 * listeners the proxy serves but did not open.
 *
 * In a sandbox, nftables in the sandbox's namespace redirects TCP to the
 * addresses its policy DNS handed out to a socket the supervisor opened
 * inside that namespace (proxy_config.transparent_listen_fd). The socket
 * lives where the NAT happened, so SO_ORIGINAL_DST on an accepted
 * connection answers from the right connection-tracking table. The
 * original address is mapped back to the name it stands for
 * (proxy_config.transparent_lookup) and the port is kept, and the
 * connection enters the same pipeline as a CONNECT to name:port
 * (conn_dispatch: identity, decision, resolve, connect), then the same
 * relays: inspected for `protocol: rest` (SNI must equal the name, Host
 * must agree, L7 rules, 101 upgrades), a raw splice relay otherwise.
 * Differences from CONNECT: no request head and no "200 Connection
 * established"; refusals before the client speaks HTTP to us close the
 * connection instead of answering with HTTP (the audit event says why);
 * every audit event carries "via": "transparent"; the client leg gets TCP
 * keepalive like the upstream leg.
 *
 * Identity: the client's socket is connected to the original destination,
 * so that is the `local` address identity_resolve() is given.
 *
 * The explicit listener opened elsewhere (proxy_config.extra_listen_fd,
 * 127.0.0.1:3128 inside a sandbox) is served exactly like `listen`.
 * Both are shared by every worker with EPOLLEXCLUSIVE (one wakeup per
 * connection), accepted in bounded batches. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "proxy/internal.h"
#include "core/banned.h"

#define XL_BATCH 32

static const char REASON_NO_ORIGDST[] = "no_original_destination";
static const char REASON_NOT_HANDED_OUT[] = "address_not_handed_out";

static void set_keepalive(int fd)
{
    int one = 1, idle = 60, intvl = 15;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
}

/* Refused before anything was decided: the event, then a closed socket. */
static void refuse(struct conn *c, const char *reason, const char *detail)
{
    auditev_decision(c, false, reason, detail);
    conn_close(c, reason);
}

static void transparent_start(struct conn *c)
{
    struct proxy *p = c->w->proxy;
    struct sockaddr_in orig;
    socklen_t ol = sizeof(orig);
    c->transparent = true;
    c->kind = KIND_CONNECT;
    loop_timer_stop(c->w->loop, &c->timer);
    set_keepalive(c->cfd);
    memset(&orig, 0, sizeof(orig));
    if (getsockopt(c->cfd, SOL_IP, SO_ORIGINAL_DST, &orig, &ol) < 0 || orig.sin_family != AF_INET) {
        char d[200];
        snprintf(d, sizeof(d), "the original destination of a captured connection is unknown "
                               "(%s)", strerror(errno));
        refuse(c, REASON_NO_ORIGDST, d);
        return;
    }
    c->target.port = ntohs(orig.sin_port);
    memcpy(&c->local, &orig, sizeof(orig)); /* the client's socket is connected to it */
    char host[sizeof(c->target.host)];
    if (!p->cfg.transparent_lookup ||
        p->cfg.transparent_lookup(p->cfg.transparent_ctx, &orig, host, sizeof(host)) < 0) {
        char ip[INET_ADDRSTRLEN], d[300];
        inet_ntop(AF_INET, &orig.sin_addr, ip, sizeof(ip));
        snprintf(c->target.host, sizeof(c->target.host), "%s", ip);
        snprintf(d, sizeof(d), "%s:%u is not an address the sandbox's DNS handed out; connect "
                               "to host names the policy allows", ip, (unsigned)c->target.port);
        refuse(c, REASON_NOT_HANDED_OUT, d);
        return;
    }
    snprintf(c->target.host, sizeof(c->target.host), "%s", host);
    conn_dispatch(c);
}

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
                log_warn("proxy: worker %u: accept on a %s listener: %s", w->index,
                         x->transparent ? "capture" : "sandbox", strerror(errno));
            return;
        }
        unsigned active = atomic_fetch_add(&w->proxy->active, 1);
        if (active >= w->proxy->cfg.max_conns) {
            atomic_fetch_sub(&w->proxy->active, 1);
            close(fd); /* at the limit: a captured client cannot read an HTTP 503 */
            continue;
        }
        struct conn *c = conn_accept(w, fd, &peer);
        if (c && x->transparent)
            transparent_start(c);
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

int transparent_worker_init(struct worker *w)
{
    int r = add_one(w, w->proxy->extra_fd, false);
    if (r == 0)
        r = add_one(w, w->proxy->transparent_fd, true);
    return r;
}
