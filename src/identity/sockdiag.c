/* identity/sockdiag: the client's TCP socket (inode, uid) from the exact
 * 4-tuple, via NETLINK_SOCK_DIAG / inet_diag (linux/inet_diag.h).
 *
 * We send an exact-match request (no NLM_F_DUMP): the kernel looks the
 * socket up by the full tuple in the established hash. Because that lookup
 * may fall back to a listener, every reply is checked against the tuple and
 * the allowed states before it is believed; we never match on a port alone.
 *
 * Netlink sockets are bound to the network namespace they were created in,
 * so the pool is created once (inside the clients' netns when given) and
 * reused. A request/reply pair must not interleave with another thread's,
 * so each socket has its own mutex; callers spread over the pool. */
#include "identity/identity_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/banned.h"

#define SOCKDIAG_MAX_SOCKS 16
#define SOCKDIAG_RCVBUF 8192
#define SOCKDIAG_TIMEOUT_MS 1000

/* States of the client's socket plausible once we accepted: established,
 * or the client already half-closed / we already closed. TIME_WAIT and
 * orphaned sockets have no inode and are refused anyway. */
#define SOCKDIAG_STATES                                                                  \
    ((1u << TCP_ESTABLISHED) | (1u << TCP_FIN_WAIT1) | (1u << TCP_FIN_WAIT2) |           \
     (1u << TCP_CLOSE_WAIT) | (1u << TCP_LAST_ACK) | (1u << TCP_CLOSING))

struct sockdiag_sock {
    pthread_mutex_t mu;
    int fd;
    uint32_t seq;
};

struct identity_sockdiag {
    unsigned n;
    atomic_uint next;
    struct sockdiag_sock socks[SOCKDIAG_MAX_SOCKS];
};

/* One endpoint normalised for the request: family AF_INET (4 bytes used,
 * also for v4-mapped IPv6) or AF_INET6, address in network order. */
struct sockdiag_ep {
    int family;
    uint32_t addr[4];
    uint16_t port_be;
};

static const unsigned char v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int sockdiag_ep_from(const struct sockaddr *sa, struct sockdiag_ep *ep)
{
    memset(ep, 0, sizeof(*ep));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        ep->family = AF_INET;
        memcpy(&ep->addr[0], &in->sin_addr, 4);
        ep->port_be = in->sin_port;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        ep->port_be = in6->sin6_port;
        if (memcmp(in6->sin6_addr.s6_addr, v4mapped_prefix, 12) == 0) {
            ep->family = AF_INET;
            memcpy(&ep->addr[0], in6->sin6_addr.s6_addr + 12, 4);
        } else {
            ep->family = AF_INET6;
            memcpy(ep->addr, in6->sin6_addr.s6_addr, 16);
        }
        return 0;
    }
    return -EINVAL;
}

/* Address from a reply (family as the socket has it) compared with ep. */
static bool sockdiag_addr_eq(int family, const uint32_t got[4], const struct sockdiag_ep *ep)
{
    if (family == AF_INET)
        return ep->family == AF_INET && got[0] == ep->addr[0];
    if (family != AF_INET6)
        return false;
    if (memcmp(got, v4mapped_prefix, 12) == 0)
        return ep->family == AF_INET && got[3] == ep->addr[0];
    return ep->family == AF_INET6 && memcmp(got, ep->addr, 16) == 0;
}

static int sockdiag_open_one(void)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -errno;
    struct timeval tv = {.tv_sec = SOCKDIAG_TIMEOUT_MS / 1000,
                         .tv_usec = (SOCKDIAG_TIMEOUT_MS % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

struct sockdiag_open_job {
    int netns_fd;
    struct identity_sockdiag *d;
    int err;
};

/* Opens every socket of the pool; runs on the helper thread when a netns
 * is given (setns(CLONE_NEWNET) only changes the calling thread). */
static void *sockdiag_open_all(void *arg)
{
    struct sockdiag_open_job *job = arg;
    job->err = 0;
    if (job->netns_fd >= 0 && setns(job->netns_fd, CLONE_NEWNET) < 0) {
        job->err = -errno;
        return NULL;
    }
    for (unsigned i = 0; i < job->d->n; i++) {
        int fd = sockdiag_open_one();
        if (fd < 0) {
            job->err = fd;
            return NULL;
        }
        job->d->socks[i].fd = fd;
    }
    return NULL;
}

int identity_sockdiag_new(int netns_fd, unsigned nsocks, struct identity_sockdiag **out)
{
    struct identity_sockdiag *d;
    struct sockdiag_open_job job;
    int rc;

    *out = NULL;
    if (nsocks == 0 || nsocks > SOCKDIAG_MAX_SOCKS)
        return -EINVAL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->n = nsocks;
    for (unsigned i = 0; i < SOCKDIAG_MAX_SOCKS; i++)
        d->socks[i].fd = -1;
    for (unsigned i = 0; i < nsocks; i++)
        pthread_mutex_init(&d->socks[i].mu, NULL);

    job.netns_fd = netns_fd;
    job.d = d;
    job.err = 0;
    if (netns_fd >= 0) {
        pthread_t th;
        rc = -pthread_create(&th, NULL, sockdiag_open_all, &job);
        if (rc < 0)
            goto out;
        pthread_join(th, NULL);
    } else {
        sockdiag_open_all(&job);
    }
    rc = job.err;
out:
    if (rc < 0) {
        identity_sockdiag_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void identity_sockdiag_free(struct identity_sockdiag *d)
{
    if (!d)
        return;
    for (unsigned i = 0; i < d->n; i++) {
        if (d->socks[i].fd >= 0)
            close(d->socks[i].fd);
        pthread_mutex_destroy(&d->socks[i].mu);
    }
    free(d);
}

/* Checks one SOCK_DIAG_BY_FAMILY reply against the tuple. */
static int sockdiag_check_reply(const struct inet_diag_msg *m, const struct sockdiag_ep *src,
                                const struct sockdiag_ep *dst, uint64_t *inode, uid_t *uid)
{
    if (m->id.idiag_sport != src->port_be || m->id.idiag_dport != dst->port_be)
        return -ENOENT;
    if (!sockdiag_addr_eq(m->idiag_family, m->id.idiag_src, src) ||
        !sockdiag_addr_eq(m->idiag_family, m->id.idiag_dst, dst))
        return -ENOENT;
    if (m->idiag_state >= 32 || !(SOCKDIAG_STATES & (1u << m->idiag_state)))
        return -ENOENT;
    if (m->idiag_inode == 0) /* orphaned: no process holds it any more */
        return -ENOENT;
    *inode = m->idiag_inode;
    *uid = (uid_t)m->idiag_uid;
    return 0;
}

/* One request/reply exchange on a locked socket. */
static int sockdiag_exchange(struct sockdiag_sock *s, const struct sockdiag_ep *src,
                             const struct sockdiag_ep *dst, uint64_t *inode, uid_t *uid)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req;
    struct sockaddr_nl nladdr = {.nl_family = AF_NETLINK};
    union {
        struct nlmsghdr align;
        char buf[SOCKDIAG_RCVBUF];
    } rb;
    uint32_t seq = ++s->seq;

    memset(&req, 0, sizeof(req));
    req.nlh.nlmsg_len = sizeof(req);
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST;
    req.nlh.nlmsg_seq = seq;
    req.r.sdiag_family = (uint8_t)src->family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = SOCKDIAG_STATES;
    req.r.id.idiag_sport = src->port_be;
    req.r.id.idiag_dport = dst->port_be;
    memcpy(req.r.id.idiag_src, src->addr, sizeof(src->addr));
    memcpy(req.r.id.idiag_dst, dst->addr, sizeof(dst->addr));
    req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

    for (;;) {
        ssize_t n = sendto(s->fd, &req, sizeof(req), 0, (struct sockaddr *)&nladdr,
                           sizeof(nladdr));
        if (n >= 0)
            break;
        if (errno != EINTR)
            return -errno;
    }
    /* Read until the reply carrying our seq; skip late replies to earlier
     * requests that timed out. */
    for (;;) {
        ssize_t n = recv(s->fd, rb.buf, sizeof(rb.buf), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
        }
        size_t len = (size_t)n;
        for (struct nlmsghdr *h = &rb.align; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_seq != seq)
                continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *err = NLMSG_DATA(h);
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*err)))
                    return -EBADMSG;
                return err->error < 0 ? err->error : -ENOENT;
            }
            if (h->nlmsg_type == NLMSG_DONE)
                return -ENOENT;
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
                continue;
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                return -EBADMSG;
            return sockdiag_check_reply(NLMSG_DATA(h), src, dst, inode, uid);
        }
    }
}

int identity_sockdiag_lookup(struct identity_sockdiag *d, const struct sockaddr *peer,
                             const struct sockaddr *local, uint64_t *inode, uid_t *uid)
{
    struct sockdiag_ep src, dst;
    struct sockdiag_sock *s = NULL;
    int rc;

    if (!d || !peer || !local)
        return -EINVAL;
    /* The client's socket: its local end is our peer, its remote end is us. */
    if (sockdiag_ep_from(peer, &src) < 0 || sockdiag_ep_from(local, &dst) < 0)
        return -EINVAL;
    if (src.family != dst.family || src.port_be == 0 || dst.port_be == 0)
        return -EINVAL;

    unsigned start = atomic_fetch_add_explicit(&d->next, 1, memory_order_relaxed);
    for (unsigned i = 0; i < d->n; i++) {
        struct sockdiag_sock *cand = &d->socks[(start + i) % d->n];
        if (pthread_mutex_trylock(&cand->mu) == 0) {
            s = cand;
            break;
        }
    }
    if (!s) {
        s = &d->socks[start % d->n];
        pthread_mutex_lock(&s->mu);
    }
    rc = sockdiag_exchange(s, &src, &dst, inode, uid);
    pthread_mutex_unlock(&s->mu);
    return rc;
}
