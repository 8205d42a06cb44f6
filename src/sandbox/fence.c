/* sandbox/fence: the nftables fence inside the sandbox namespace.
 *
 * Allowed out: loopback, the proxy address:port, and packets of
 * connections that already exist. Everything else is refused at once:
 *
 *  - monitored mode (the bypass monitor is listening on the NFLOG group):
 *    TCP: the SYN is logged ("held") and dropped; the monitor identifies
 *    the connecting process while its socket is still in SYN_SENT, then
 *    answers with the reset itself (refuse.c), so the caller sees
 *    ECONNREFUSED within a millisecond or so. The flow is remembered in a
 *    timed set: if the monitor did not answer, the retransmission is
 *    reset by the kernel, so a stuck monitor costs one retransmission
 *    timeout (1 s), never a hang. Why: NFLOG carries no pid, and a kernel
 *    reset closes and unhashes the SYN_SENT socket before connect()
 *    returns, so nobody could look the sender up afterwards.
 *    UDP: logged ("refused") and refused by the kernel with ICMP port
 *    unreachable at once (a dropped datagram would fail send() with EPERM
 *    instead); the sender is identified while its socket still exists,
 *    which is usually but not always the case.
 *    Other protocols: logged and refused (admin-prohibited).
 *  - reject mode (no NFLOG): TCP gets a reset, UDP an ICMP(v6) port
 *    unreachable, other protocols admin-prohibited, all from the kernel.
 *
 * Transparent capture (capture_port set): a nat chain redirects TCP to the
 * policy DNS's synthetic range to 127.0.0.1:capture_port, where the proxy
 * listens on a socket opened inside this namespace (so the connection
 * tracking that knows the original destination is the one that answers
 * SO_ORIGINAL_DST). The filter hook still sees the route chosen before the
 * redirect (eth0), so redirected connections are accepted by their
 * conntrack status (dnat), which only the capture rule sets.
 *
 * Packets with no socket behind them (kernel-generated neighbour discovery)
 * pass; the monitor ignores packets without a uid for the same reason. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

const char *fence_mode_name(enum fence_mode m)
{
    switch (m) {
    case FENCE_OFF:
        return "off";
    case FENCE_REJECT:
        return "reject";
    case FENCE_MONITORED:
        return "monitored";
    }
    return "?";
}

struct sbuf {
    char *p;
    size_t cap, len;
    bool overflow;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    if (b->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->overflow = true;
        return;
    }
    b->len += (size_t)n;
}

int fence_ruleset(const struct fence_opts *o, char *buf, size_t cap)
{
    char proxy[INET_ADDRSTRLEN];
    if (cap == 0 || !inet_ntop(AF_INET, &o->proxy4, proxy, sizeof(proxy)))
        return -EINVAL;
    struct sbuf b = {.p = buf, .cap = cap};
    unsigned g = o->nflog_group;
    /* The namespace is new, so there is no old table to replace. */
    sb_add(&b, "table inet %s {\n", FENCE_TABLE);
    if (o->monitored) {
        sb_add(&b, "  set seen4 { type ipv4_addr . inet_service . inet_service;"
                   " flags dynamic,timeout; timeout 10s; size 8192; }\n");
        sb_add(&b, "  set seen6 { type ipv6_addr . inet_service . inet_service;"
                   " flags dynamic,timeout; timeout 10s; size 8192; }\n");
    }
    if (o->capture_port) {
        char net[INET_ADDRSTRLEN];
        if (!inet_ntop(AF_INET, &o->capture_net, net, sizeof(net)))
            return -EINVAL;
        sb_add(&b, "  chain capture {\n"
                   "    type nat hook output priority -100; policy accept;\n"
                   "    ip daddr %s/%u meta l4proto tcp redirect to :%u\n"
                   "  }\n", net, (unsigned)o->capture_prefix, (unsigned)o->capture_port);
    }
    sb_add(&b, "  chain output {\n"
               "    type filter hook output priority filter; policy accept;\n"
               "    oifname \"lo\" fib daddr type local accept\n");
    /* A socket bound to lo (SO_BINDTODEVICE) sending to a non-local
     * address: refused by the kernel at once, and reported. */
    if (o->monitored)
        sb_add(&b, "    oifname \"lo\" meta l4proto tcp log prefix \"" FENCE_PREFIX_REFUSED "\""
                   " group %u reject with tcp reset\n"
                   "    oifname \"lo\" log prefix \"" FENCE_PREFIX_REFUSED "\" group %u"
                   " reject with icmpx type admin-prohibited\n", g, g);
    else
        sb_add(&b, "    oifname \"lo\" meta l4proto tcp reject with tcp reset\n"
                   "    oifname \"lo\" reject with icmpx type admin-prohibited\n");
    sb_add(&b, "    ct state established,related accept\n"
               "    ip daddr %s tcp dport %u accept\n"
               "%s"
               "    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit,"
               " mld-listener-report, mld2-listener-report } accept\n",
           proxy, (unsigned)o->proxy_port,
           o->capture_port ? "    ct status dnat accept\n" : "");
    if (o->monitored) {
        sb_add(&b, "    meta l4proto tcp jump tcp_bypass\n"
                   "    meta l4proto udp log prefix \"" FENCE_PREFIX_REFUSED "\" group %u"
                   " reject with icmpx type port-unreachable\n"
                   "    log prefix \"" FENCE_PREFIX_REFUSED "\" group %u"
                   " reject with icmpx type admin-prohibited\n"
                   "  }\n", g, g);
        sb_add(&b, "  chain tcp_bypass {\n"
                   "    ip daddr . tcp sport . tcp dport @seen4 reject with tcp reset\n"
                   "    ip6 daddr . tcp sport . tcp dport @seen6 reject with tcp reset\n"
                   "    update @seen4 { ip daddr . tcp sport . tcp dport }"
                   " log prefix \"" FENCE_PREFIX_HELD "\" group %u drop\n"
                   "    update @seen6 { ip6 daddr . tcp sport . tcp dport }"
                   " log prefix \"" FENCE_PREFIX_HELD "\" group %u drop\n"
                   "    log prefix \"" FENCE_PREFIX_REFUSED "\" group %u reject with tcp reset\n"
                   "  }\n", g, g, g);
    } else {
        sb_add(&b, "    meta l4proto tcp reject with tcp reset\n"
                   "    meta l4proto udp reject with icmpx type port-unreachable\n"
                   "    reject with icmpx type admin-prohibited\n"
                   "  }\n");
    }
    sb_add(&b, "}\n");
    if (b.overflow)
        return -ENOSPC;
    return (int)b.len;
}

int fence_install(int child_netns_fd, const struct fence_opts *o, char *err, size_t errcap)
{
    char rules[4096];
    int rc = fence_ruleset(o, rules, sizeof(rules));
    if (rc < 0) {
        snprintf(err, errcap, "fence ruleset does not fit");
        return rc;
    }
    int host_fd = -1;
    struct nft_ctx *nft = NULL;
    host_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (host_fd < 0) {
        rc = -errno;
        snprintf(err, errcap, "cannot open /proc/thread-self/ns/net: %s", strerror(-rc));
        goto out;
    }
    /* libnftables talks netlink in the namespace of the calling thread. */
    if ((rc = netns_enter(child_netns_fd)) < 0) {
        snprintf(err, errcap, "cannot enter the sandbox namespace: %s", strerror(-rc));
        goto out;
    }
    nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!nft) {
        rc = -ENOMEM;
        snprintf(err, errcap, "nft_ctx_new failed");
        goto back;
    }
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    if (nft_run_cmd_from_buffer(nft, rules) != 0) {
        const char *e = nft_ctx_get_error_buffer(nft);
        rc = -EOPNOTSUPP;
        snprintf(err, errcap, "nftables refused the fence: %s", e && *e ? e : "(no message)");
        /* Trim the trailing newline nft leaves. */
        size_t l = strlen(err);
        while (l && (err[l - 1] == '\n' || err[l - 1] == ' '))
            err[--l] = '\0';
        goto back;
    }
    rc = 0;
back:
    if (nft)
        nft_ctx_free(nft);
    nft = NULL;
    if (netns_enter(host_fd) < 0) {
        log_error("fence: cannot return to the original network namespace: %s",
                  strerror(errno));
        abort();
    }
out:
    if (host_fd >= 0)
        close(host_fd);
    return rc;
}
