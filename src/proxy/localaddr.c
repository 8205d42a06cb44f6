/* proxy/localaddr: see localaddr.h. */
#include "proxy/localaddr.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/banned.h"

#define LOCALADDR_MAX 4096 /* addresses kept; a host with more is refused at start */

struct laddr {
    int family;
    uint8_t a[16];
    char ifname[IF_NAMESIZE];
};

struct localaddr {
    pthread_rwlock_t lock;
    struct laddr *v; /* owned; replaced whole under the write lock */
    size_t n;
    int mon_fd;      /* subscribed to address notifications */
    int stop[2];     /* pipe: the watcher exits when it becomes readable */
    pthread_t thread;
    bool thread_started;
};

struct dump {
    struct laddr *v;
    size_t n, cap;
    int err;
};

static void dump_add(struct dump *d, int family, const void *addr, unsigned ifindex)
{
    size_t len = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].family == family && memcmp(d->v[i].a, addr, len) == 0)
            return;
    if (d->n == d->cap) {
        if (d->cap >= LOCALADDR_MAX) {
            d->err = -E2BIG;
            return;
        }
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct laddr *nv = realloc(d->v, cap * sizeof(*nv));
        if (!nv) {
            d->err = -ENOMEM;
            return;
        }
        d->v = nv;
        d->cap = cap;
    }
    struct laddr *e = &d->v[d->n++];
    memset(e, 0, sizeof(*e));
    e->family = family;
    memcpy(e->a, addr, len);
    if (!if_indextoname(ifindex, e->ifname))
        memcpy(e->ifname, "?", 2);
}

/* One RTM_NEWADDR message: IFA_LOCAL and IFA_ADDRESS (they differ on
 * point-to-point links; both belong to this host's view). */
static void parse_addr(struct dump *d, const struct nlmsghdr *h)
{
    const struct ifaddrmsg *ifa = NLMSG_DATA(h);
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifa)))
        return;
    if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
        return;
    size_t want = ifa->ifa_family == AF_INET ? 4 : 16;
    int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*ifa)));
    for (const struct rtattr *rta = IFA_RTA(ifa); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
        if ((rta->rta_type == IFA_LOCAL || rta->rta_type == IFA_ADDRESS) &&
            RTA_PAYLOAD(rta) == want)
            dump_add(d, ifa->ifa_family, RTA_DATA(rta), ifa->ifa_index);
    }
}

/* Reads every address of the namespace. Returns 0 or -errno. */
static int dump_addrs(struct dump *d)
{
    struct {
        struct nlmsghdr h;
        struct ifaddrmsg ifa;
    } req;
    char buf[16384];
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    int r = 0;
    if (fd < 0)
        return -errno;
    memset(&req, 0, sizeof(req));
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifa));
    req.h.nlmsg_type = RTM_GETADDR;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.h.nlmsg_seq = 1;
    req.ifa.ifa_family = AF_UNSPEC;
    if (send(fd, &req, req.h.nlmsg_len, 0) < 0) {
        r = -errno;
        goto out;
    }
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            goto out;
        }
        int left = (int)n;
        for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; NLMSG_OK(h, left);
             h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_type == NLMSG_DONE)
                goto out;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                r = e->error ? e->error : -EIO;
                goto out;
            }
            if (h->nlmsg_type == RTM_NEWADDR)
                parse_addr(d, h);
        }
        if (d->err) {
            r = d->err;
            goto out;
        }
    }
out:
    close(fd);
    return r;
}

/* Replaces the table with a fresh dump. On failure the old table stays
 * (it is the last known state) and the failure is logged. */
static int refresh(struct localaddr *la)
{
    struct dump d = {0};
    int r = dump_addrs(&d);
    if (r < 0) {
        free(d.v);
        log_error("proxy: cannot read this host's addresses (rtnetlink): %s; keeping the last "
                  "known set of %zu",
                  strerror(-r), la->n);
        return r;
    }
    pthread_rwlock_wrlock(&la->lock);
    struct laddr *old = la->v;
    la->v = d.v;
    la->n = d.n;
    pthread_rwlock_unlock(&la->lock);
    free(old);
    return 0;
}

static void *watch(void *arg)
{
    struct localaddr *la = arg;
    char buf[8192];
    for (;;) {
        struct pollfd p[2] = {{la->mon_fd, POLLIN, 0}, {la->stop[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("proxy: address watcher: poll: %s", strerror(errno));
            return NULL;
        }
        if (p[1].revents)
            return NULL;
        bool changed = false;
        for (;;) { /* drain; ENOBUFS means notifications were lost */
            ssize_t n = recv(la->mon_fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n > 0 || (n < 0 && errno == ENOBUFS)) {
                changed = true;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            break;
        }
        if (changed)
            (void)refresh(la);
    }
}

int localaddr_start(struct localaddr **out)
{
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
                             .nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR};
    struct localaddr *la = calloc(1, sizeof(*la));
    int r;
    if (!la)
        return -ENOMEM;
    la->mon_fd = -1;
    la->stop[0] = la->stop[1] = -1;
    pthread_rwlock_init(&la->lock, NULL);
    /* subscribe first, then dump: a change in between is not lost */
    la->mon_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (la->mon_fd < 0 || bind(la->mon_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
        goto fail;
    }
    if (pipe2(la->stop, O_CLOEXEC) < 0) {
        r = -errno;
        goto fail;
    }
    if ((r = refresh(la)) < 0)
        goto fail;
    if ((r = -pthread_create(&la->thread, NULL, watch, la)) < 0)
        goto fail;
    la->thread_started = true;
    *out = la;
    return 0;
fail:
    localaddr_stop(la);
    return r;
}

void localaddr_stop(struct localaddr *la)
{
    if (!la)
        return;
    if (la->thread_started) {
        ssize_t w;
        do
            w = write(la->stop[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(la->thread, NULL);
    }
    if (la->mon_fd >= 0)
        close(la->mon_fd);
    if (la->stop[0] >= 0)
        close(la->stop[0]);
    if (la->stop[1] >= 0)
        close(la->stop[1]);
    pthread_rwlock_destroy(&la->lock);
    free(la->v);
    free(la);
}

bool localaddr_contains(struct localaddr *la, const struct sockaddr *sa, char *ifname)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *a;
    int family = sa->sa_family;
    bool found = false;
    if (family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, mapped, 12) == 0) {
            a += 12;
            family = AF_INET;
        }
    } else {
        return false;
    }
    size_t len = family == AF_INET ? 4 : 16;
    pthread_rwlock_rdlock(&la->lock);
    for (size_t i = 0; i < la->n && !found; i++) {
        if (la->v[i].family == family && memcmp(la->v[i].a, a, len) == 0) {
            found = true;
            if (ifname)
                memcpy(ifname, la->v[i].ifname, IF_NAMESIZE);
        }
    }
    pthread_rwlock_unlock(&la->lock);
    return found;
}

size_t localaddr_count(struct localaddr *la)
{
    pthread_rwlock_rdlock(&la->lock);
    size_t n = la->n;
    pthread_rwlock_unlock(&la->lock);
    return n;
}
