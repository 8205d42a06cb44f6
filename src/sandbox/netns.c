/* sandbox/netns: the sandbox's network namespace and the veth pair that
 * joins it to ours.
 *
 * Leak-proofing: the namespace is never bind-mounted (no /var/run/netns
 * entry); only our fd and the sandbox's processes hold it. When the last
 * holder goes, the kernel destroys the namespace, and with it the veth end
 * inside, which destroys the other end, its addresses and routes, and the
 * nftables ruleset that lives in the namespace. So even a SIGKILLed
 * supervisor leaves nothing behind (its sandbox processes die with it: see
 * init.c). The normal path deletes the veth itself, synchronously. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

#define NETNS_MAX_HOST_PREFIXES 65536
#define NETNS_MAX_SLOTS 65536u

uint32_t netns_pool_slots(uint8_t pool_prefix)
{
    if (pool_prefix < 8 || pool_prefix > 28)
        return 0;
    uint32_t n = 1u << (30 - pool_prefix);
    return n > NETNS_MAX_SLOTS ? NETNS_MAX_SLOTS : n;
}

int netns_slot_plan(struct in_addr pool, uint8_t pool_prefix, uint32_t index,
                    struct netns_slot *out)
{
    uint32_t n = netns_pool_slots(pool_prefix);
    if (index >= n)
        return -ERANGE;
    uint32_t mask = pool_prefix ? ~0u << (32 - pool_prefix) : 0;
    uint32_t base = (ntohl(pool.s_addr) & mask) + index * 4u;
    memset(out, 0, sizeof(*out));
    out->index = index;
    out->host4.s_addr = htonl(base + 1);
    out->child4.s_addr = htonl(base + 2);
    uint16_t words[8] = {NETNS_V6_PREFIX_0, NETNS_V6_PREFIX_1, NETNS_V6_PREFIX_2,
                         (uint16_t)index, 0, 0, 0, 1};
    for (int i = 0; i < 8; i++) {
        out->host6.s6_addr[2 * i] = (uint8_t)(words[i] >> 8);
        out->host6.s6_addr[2 * i + 1] = (uint8_t)words[i];
    }
    out->child6 = out->host6;
    out->child6.s6_addr[15] = 2;
    snprintf(out->host_ifname, sizeof(out->host_ifname), "cdn%uh", index);
    return 0;
}

/* True when a/alen and b/blen overlap (one contains the other). */
static bool prefix_overlap(const uint8_t *a, unsigned alen, const uint8_t *b, unsigned blen)
{
    unsigned len = alen < blen ? alen : blen;
    for (unsigned i = 0; i < len / 8; i++)
        if (a[i] != b[i])
            return false;
    if (len % 8) {
        uint8_t m = (uint8_t)(0xff << (8 - len % 8));
        if ((a[len / 8] & m) != (b[len / 8] & m))
            return false;
    }
    return true;
}

bool netns_slot_free(const struct netns_slot *s, const struct netns_prefix *host, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (host[i].len == 0)
            continue;
        if (host[i].family == AF_INET &&
            prefix_overlap((const uint8_t *)&s->host4, 30, host[i].addr, host[i].len))
            return false;
        if (host[i].family == AF_INET6 &&
            prefix_overlap(s->host6.s6_addr, 64, host[i].addr, host[i].len))
            return false;
    }
    return true;
}

struct prefix_list {
    struct netns_prefix *v;
    size_t n, cap;
    bool truncated;
};

static void route_cb(const struct nlmsghdr *h, void *data)
{
    struct prefix_list *pl = data;
    if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg)))
        return;
    const struct rtmsg *rt = NLMSG_DATA(h);
    if (rt->rtm_dst_len == 0 || (rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6))
        return;
    if (rt->rtm_type == RTN_MULTICAST || rt->rtm_type == RTN_BROADCAST)
        return;
    int alen = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*rt));
    for (const struct rtattr *a = RTM_RTA(rt); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        if (a->rta_type != RTA_DST)
            continue;
        size_t need = rt->rtm_family == AF_INET ? 4 : 16;
        if (RTA_PAYLOAD(a) < need)
            return;
        if (pl->n == pl->cap) {
            if (pl->cap >= NETNS_MAX_HOST_PREFIXES) {
                pl->truncated = true;
                return;
            }
            size_t nc = pl->cap ? pl->cap * 2 : 64;
            struct netns_prefix *nv = realloc(pl->v, nc * sizeof(*nv));
            if (!nv) {
                pl->truncated = true;
                return;
            }
            pl->v = nv;
            pl->cap = nc;
        }
        struct netns_prefix *p = &pl->v[pl->n++];
        memset(p, 0, sizeof(*p));
        p->family = rt->rtm_family;
        p->len = rt->rtm_dst_len;
        memcpy(p->addr, RTA_DATA(a), need);
        return;
    }
}

static int host_prefixes(struct rtnl *r, struct prefix_list *pl)
{
    static const int families[] = {AF_INET, AF_INET6};
    for (size_t i = 0; i < 2; i++) {
        struct rtmsg rt = {.rtm_family = (unsigned char)families[i]};
        struct rtnl_msg m;
        rtnl_msg_init(&m, RTM_GETROUTE, 0, &rt, sizeof(rt));
        int rc = rtnl_dump(r, &m, route_cb, pl);
        if (rc < 0 && !(families[i] == AF_INET6 && rc == -EAFNOSUPPORT))
            return rc;
    }
    if (pl->truncated)
        return -ENOMEM;
    return 0;
}

int netns_enter(int fd)
{
    if (setns(fd, CLONE_NEWNET) < 0)
        return -errno;
    return 0;
}

static int veth_create(struct netns *ns)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    struct rtnl_msg m;
    rtnl_msg_init(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof(ifi));
    rtnl_attr_str(&m, IFLA_IFNAME, ns->slot.host_ifname);
    size_t linkinfo = rtnl_nest_begin(&m, IFLA_LINKINFO);
    rtnl_attr_str(&m, IFLA_INFO_KIND, "veth");
    size_t infodata = rtnl_nest_begin(&m, IFLA_INFO_DATA);
    size_t peer = rtnl_nest_begin(&m, VETH_INFO_PEER);
    /* The peer's attributes follow its own ifinfomsg header. */
    struct ifinfomsg pifi = {.ifi_family = AF_UNSPEC};
    size_t off = NLMSG_ALIGN(m.u.h.nlmsg_len);
    if (!m.err && off + NLMSG_ALIGN(sizeof(pifi)) <= sizeof(m.u.buf)) {
        memcpy(m.u.buf + off, &pifi, sizeof(pifi));
        m.u.h.nlmsg_len = (uint32_t)(off + NLMSG_ALIGN(sizeof(pifi)));
    } else {
        m.err = -ENOSPC;
    }
    rtnl_attr_str(&m, IFLA_IFNAME, NETNS_CHILD_IFNAME);
    rtnl_attr_u32(&m, IFLA_NET_NS_FD, (uint32_t)ns->child_fd);
    rtnl_nest_end(&m, peer);
    rtnl_nest_end(&m, infodata);
    rtnl_nest_end(&m, linkinfo);
    return rtnl_talk(&ns->host_rtnl, &m);
}

static int link_set_up(struct rtnl *r, int index)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index,
                            .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    struct rtnl_msg m;
    rtnl_msg_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
    return rtnl_talk(r, &m);
}

/* No IPv6 link-local address: nothing can reach the other end over IPv6
 * unless netns_route_out() gives the link addresses on purpose. */
static int link_no_ll6(struct rtnl *r, int index)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index};
    struct rtnl_msg m;
    rtnl_msg_init(&m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
    size_t spec = rtnl_nest_begin(&m, IFLA_AF_SPEC);
    size_t in6 = rtnl_nest_begin(&m, AF_INET6);
    uint8_t mode = IN6_ADDR_GEN_MODE_NONE;
    rtnl_attr(&m, IFLA_INET6_ADDR_GEN_MODE, &mode, 1);
    rtnl_nest_end(&m, in6);
    rtnl_nest_end(&m, spec);
    return rtnl_talk(r, &m);
}

static int addr_add(struct rtnl *r, int index, int family, const void *addr, uint8_t prefix)
{
    struct ifaddrmsg ifa = {.ifa_family = (uint8_t)family, .ifa_prefixlen = prefix,
                            .ifa_index = (uint32_t)index, .ifa_scope = RT_SCOPE_UNIVERSE};
    if (family == AF_INET6)
        ifa.ifa_flags = IFA_F_NODAD; /* usable at once, no 1 s tentative phase */
    size_t alen = family == AF_INET ? 4 : 16;
    struct rtnl_msg m;
    rtnl_msg_init(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
    rtnl_attr(&m, IFA_LOCAL, addr, alen);
    rtnl_attr(&m, IFA_ADDRESS, addr, alen);
    return rtnl_talk(r, &m);
}

static int route_default(struct rtnl *r, int index, int family, const void *gw)
{
    struct rtmsg rt = {.rtm_family = (unsigned char)family, .rtm_table = RT_TABLE_MAIN,
                       .rtm_protocol = RTPROT_BOOT, .rtm_scope = RT_SCOPE_UNIVERSE,
                       .rtm_type = RTN_UNICAST};
    struct rtnl_msg m;
    rtnl_msg_init(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof(rt));
    rtnl_attr(&m, RTA_GATEWAY, gw, family == AF_INET ? 4 : 16);
    rtnl_attr_u32(&m, RTA_OIF, (uint32_t)index);
    return rtnl_talk(r, &m);
}

static void close_all(struct netns *ns);

static int veth_delete(struct netns *ns)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ns->host_ifindex};
    struct rtnl_msg m;
    rtnl_msg_init(&m, RTM_DELLINK, 0, &ifi, sizeof(ifi));
    if (ns->host_ifindex <= 0)
        rtnl_attr_str(&m, IFLA_IFNAME, ns->slot.host_ifname);
    return rtnl_talk(&ns->host_rtnl, &m);
}

/* Creates the namespace: unshare on this thread, keep an fd, come back. */
static int make_child_ns(struct netns *ns)
{
    if (unshare(CLONE_NEWNET) < 0)
        return -errno;
    int rc = 0;
    ns->child_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (ns->child_fd < 0)
        rc = -errno;
    else
        rc = rtnl_open(&ns->child_rtnl);
    if (setns(ns->host_fd, CLONE_NEWNET) < 0) {
        /* Stuck in the new namespace: nothing we do from here would be
         * right. This cannot happen with a valid fd and CAP_SYS_ADMIN. */
        log_error("netns: cannot return to the original network namespace: %s",
                  strerror(errno));
        abort();
    }
    return rc;
}

int netns_create(struct in_addr pool, uint8_t pool_prefix, struct netns *ns, char *err,
                 size_t errcap)
{
    struct prefix_list pl = {0};
    int rc;
    memset(ns, 0, sizeof(*ns));
    ns->host_fd = ns->child_fd = -1;
    ns->host_rtnl.fd = ns->child_rtnl.fd = -1;

    ns->host_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (ns->host_fd < 0) {
        rc = -errno;
        snprintf(err, errcap, "cannot open /proc/thread-self/ns/net: %s", strerror(-rc));
        goto out;
    }
    if ((rc = rtnl_open(&ns->host_rtnl)) < 0) {
        snprintf(err, errcap, "cannot open a rtnetlink socket: %s", strerror(-rc));
        goto out;
    }
    if ((rc = host_prefixes(&ns->host_rtnl, &pl)) < 0) {
        snprintf(err, errcap, "cannot read the host's routes: %s", strerror(-rc));
        goto out;
    }
    if ((rc = make_child_ns(ns)) < 0) {
        snprintf(err, errcap, "cannot create a network namespace (unshare CLONE_NEWNET): %s "
                 "(cordon run needs root / CAP_SYS_ADMIN)", strerror(-rc));
        goto out;
    }

    uint32_t nslots = netns_pool_slots(pool_prefix);
    uint32_t usable = 0;
    rc = -EADDRNOTAVAIL;
    for (uint32_t i = 0; i < nslots; i++) {
        if (netns_slot_plan(pool, pool_prefix, i, &ns->slot) < 0)
            break;
        if (!netns_slot_free(&ns->slot, pl.v, pl.n))
            continue;
        usable++;
        rc = veth_create(ns);
        if (rc == -EEXIST)
            continue; /* another sandbox holds this slot */
        break;
    }
    if (rc < 0) {
        char pbuf[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &pool, pbuf, sizeof(pbuf));
        if (rc == -EADDRNOTAVAIL || rc == -EEXIST)
            snprintf(err, errcap, "no free /30 in the sandbox pool %s/%u (%u slots, %u not used "
                     "by host routes, all taken); pass --subnet-pool with another range",
                     pbuf, pool_prefix, nslots, usable);
        else
            snprintf(err, errcap, "cannot create veth pair %s: %s", ns->slot.host_ifname,
                     strerror(-rc));
        if (rc == -EEXIST)
            rc = -EADDRNOTAVAIL;
        goto out;
    }
    ns->veth_made = true;

    const char *step = "look up the host end";
    if ((rc = rtnl_link_index(&ns->host_rtnl, ns->slot.host_ifname)) < 0)
        goto step_failed;
    ns->host_ifindex = rc;
    step = "look up eth0 in the namespace";
    if ((rc = rtnl_link_index(&ns->child_rtnl, NETNS_CHILD_IFNAME)) < 0)
        goto step_failed;
    ns->child_ifindex = rc;
    /* IPv6 may be disabled on this host; then there is nothing to turn off. */
    if ((rc = link_no_ll6(&ns->host_rtnl, ns->host_ifindex)) < 0 && rc != -EAFNOSUPPORT)
        log_debug("netns: %s: cannot disable IPv6 link-local: %s", ns->slot.host_ifname,
                  strerror(-rc));
    if ((rc = link_no_ll6(&ns->child_rtnl, ns->child_ifindex)) < 0 && rc != -EAFNOSUPPORT)
        log_debug("netns: eth0: cannot disable IPv6 link-local: %s", strerror(-rc));
    step = "address the host end";
    if ((rc = addr_add(&ns->host_rtnl, ns->host_ifindex, AF_INET, &ns->slot.host4, 30)) < 0)
        goto step_failed;
    step = "address eth0";
    if ((rc = addr_add(&ns->child_rtnl, ns->child_ifindex, AF_INET, &ns->slot.child4, 30)) < 0)
        goto step_failed;
    step = "bring lo up";
    int lo = rtnl_link_index(&ns->child_rtnl, "lo");
    if ((rc = lo) < 0 || (rc = link_set_up(&ns->child_rtnl, lo)) < 0)
        goto step_failed;
    step = "bring the host end up";
    if ((rc = link_set_up(&ns->host_rtnl, ns->host_ifindex)) < 0)
        goto step_failed;
    step = "bring eth0 up";
    if ((rc = link_set_up(&ns->child_rtnl, ns->child_ifindex)) < 0)
        goto step_failed;
    rc = 0;
    goto out;

step_failed:
    snprintf(err, errcap, "network namespace setup: cannot %s (%s): %s", step,
             ns->slot.host_ifname, strerror(-rc));
out:
    free(pl.v);
    if (rc < 0) {
        /* Setup failed: leave nothing behind before reporting it. */
        if (ns->veth_made && ns->host_rtnl.fd >= 0) {
            int d = veth_delete(ns);
            if (d < 0 && d != -ENODEV)
                log_warn("netns: cannot delete %s: %s (it goes away with the namespace)",
                         ns->slot.host_ifname, strerror(-d));
        }
        close_all(ns);
    }
    return rc;
}

int netns_route_out(struct netns *ns)
{
    int rc = route_default(&ns->child_rtnl, ns->child_ifindex, AF_INET, &ns->slot.host4);
    if (rc < 0)
        return rc;
    /* IPv6: addresses only so that v6 attempts reach the fence (and are
     * refused and reported) instead of failing with "unreachable". */
    int r6 = addr_add(&ns->host_rtnl, ns->host_ifindex, AF_INET6, &ns->slot.host6, 64);
    if (r6 == 0)
        r6 = addr_add(&ns->child_rtnl, ns->child_ifindex, AF_INET6, &ns->slot.child6, 64);
    if (r6 == 0)
        r6 = route_default(&ns->child_rtnl, ns->child_ifindex, AF_INET6, &ns->slot.host6);
    if (r6 < 0)
        log_info("netns: no IPv6 inside the sandbox (%s); IPv6 attempts fail as unreachable",
                 strerror(-r6));
    return 0;
}

static void close_all(struct netns *ns)
{
    rtnl_close(&ns->host_rtnl);
    rtnl_close(&ns->child_rtnl);
    if (ns->child_fd >= 0)
        close(ns->child_fd);
    if (ns->host_fd >= 0)
        close(ns->host_fd);
    ns->child_fd = ns->host_fd = -1;
    ns->veth_made = false;
}

void netns_destroy(struct netns *ns)
{
    /* Closing our last references lets the kernel destroy the namespace,
     * and with it the veth pair, addresses, routes and the fence, the same
     * way as when we are SIGKILLed (within a few tens of ms, in a kernel
     * workqueue). Deleting the veth here would cost ~15 ms of RCU grace
     * periods on every exit for the same result. */
    close_all(ns);
}
