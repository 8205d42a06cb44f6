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
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
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

/* ---- the same ruleset as netlink messages (nftmsg.c) ----
 *
 * Each rule below is the bytecode nft 1.0 compiles the matching line of
 * fence_ruleset into (`nft --debug=netlink`), in the same order, and the
 * batch holds the messages nft sends for that text (`nft --debug=mnl`);
 * tests/unit/test_sandbox_fence.c loads both into namespaces and compares
 * what the kernel holds. */

#define FENCE_FAMILY NFPROTO_INET
#define R1 NFT_REG_1
#define R2 NFT_REG_2
#define R32_01 NFT_REG32_01
#define R32_02 NFT_REG32_02
#define R32_05 NFT_REG32_05

/* nft's set userdata (key byte order, key type): what `nft list` shows. */
static const uint8_t udata_concat[] = {0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x03, 0x08,
                                       0x00, 0x04, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x00};
static const uint8_t udata_icmpv6[] = {0x00, 0x04, 0x02, 0x00, 0x00, 0x00, 0x03, 0x14, 0x00, 0x04,
                                       0x07, 0x00, 0x00, 0x00, 0x01, 0x0c, 0x00, 0x04, 0x0e, 0x00,
                                       0x00, 0x00, 0x01, 0x04, 0x01, 0x00, 0x00, 0x00};
/* nft datatypes (src/datatype.h): concatenations are (a << 6 | b) << 6 | c. */
#define DT_IPADDR 7
#define DT_IP6ADDR 8
#define DT_INET_SERVICE 13
#define DT_ICMP6_TYPE 29
#define DT_CONCAT3(a, b, c) (((((uint32_t)(a)) << 6 | (b)) << 6) | (c))
enum { SET_SEEN4 = 1, SET_SEEN6 = 2, SET_ICMPV6 = 3 };

static void r_meta_cmp8(struct nftmsg *m, uint32_t key, uint8_t v)
{
    nftmsg_meta(m, key, R1);
    nftmsg_cmp(m, R1, NFT_CMP_EQ, &v, 1);
}

static void r_oif_lo(struct nftmsg *m)
{
    char lo[IFNAMSIZ] = "lo";
    nftmsg_meta(m, NFT_META_OIFNAME, R1);
    nftmsg_cmp(m, R1, NFT_CMP_EQ, lo, sizeof(lo));
}

static void r_log(struct nftmsg *m, const struct fence_opts *o, const char *prefix)
{
    if (o->monitored)
        nftmsg_log(m, prefix, o->nflog_group);
}

/* ct KEY & mask != 0 */
static void r_ct_any(struct nftmsg *m, uint32_t key, uint32_t mask)
{
    uint32_t zero = 0;
    nftmsg_ct(m, key, R1);
    nftmsg_bitwise(m, R1, &mask, &zero, sizeof(mask));
    nftmsg_cmp(m, R1, NFT_CMP_NEQ, &zero, sizeof(zero));
}

/* ip daddr . tcp sport . tcp dport (ip6: v6) into R1... */
static void r_flow(struct nftmsg *m, bool v6)
{
    r_meta_cmp8(m, NFT_META_NFPROTO, v6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
    r_meta_cmp8(m, NFT_META_L4PROTO, IPPROTO_TCP);
    if (v6) {
        nftmsg_payload(m, NFT_PAYLOAD_NETWORK_HEADER, 24, 16, R1);
        nftmsg_payload(m, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, R2);
        nftmsg_payload(m, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, R32_05);
    } else {
        nftmsg_payload(m, NFT_PAYLOAD_NETWORK_HEADER, 16, 4, R1);
        nftmsg_payload(m, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, R32_01);
        nftmsg_payload(m, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, R32_02);
    }
}

#define RULE(m, chain) nftmsg_rule_begin((m), FENCE_FAMILY, FENCE_TABLE, (chain))
#define END(m) nftmsg_rule_end(m)

int fence_batch(const struct fence_opts *o, struct nftmsg *m)
{
    if (o->capture_port && (o->capture_prefix < 1 || o->capture_prefix > 32))
        return -EINVAL;
    nftmsg_table(m, FENCE_FAMILY, FENCE_TABLE);
    if (o->capture_port)
        nftmsg_chain(m, FENCE_FAMILY, FENCE_TABLE, "capture", "nat", NF_INET_LOCAL_OUT, -100);
    nftmsg_chain(m, FENCE_FAMILY, FENCE_TABLE, "output", "filter", NF_INET_LOCAL_OUT, 0);
    if (o->monitored) {
        nftmsg_chain(m, FENCE_FAMILY, FENCE_TABLE, "tcp_bypass", NULL, 0, 0);
        struct nftmsg_set seen = {.table = FENCE_TABLE, .flags = NFT_SET_TIMEOUT | NFT_SET_EVAL,
                                  .size = 8192, .timeout_ms = 10000, .udata = udata_concat,
                                  .udata_len = sizeof(udata_concat)};
        seen.name = "seen4";
        seen.id = SET_SEEN4;
        seen.key_type = DT_CONCAT3(DT_IPADDR, DT_INET_SERVICE, DT_INET_SERVICE);
        seen.key_len = 12;
        nftmsg_set(m, FENCE_FAMILY, &seen);
        seen.name = "seen6";
        seen.id = SET_SEEN6;
        seen.key_type = DT_CONCAT3(DT_IP6ADDR, DT_INET_SERVICE, DT_INET_SERVICE);
        seen.key_len = 24;
        nftmsg_set(m, FENCE_FAMILY, &seen);
    }
    if (o->capture_port) {
        /* ip daddr NET/PREFIX meta l4proto tcp redirect to :PORT */
        RULE(m, "capture");
        r_meta_cmp8(m, NFT_META_NFPROTO, NFPROTO_IPV4);
        uint32_t mask = htonl(o->capture_prefix == 32 ? ~0u : ~(~0u >> o->capture_prefix));
        uint32_t net = o->capture_net.s_addr & mask, zero = 0;
        if (o->capture_prefix % 8 == 0) {
            uint32_t bytes = o->capture_prefix / 8u;
            nftmsg_payload(m, NFT_PAYLOAD_NETWORK_HEADER, 16, bytes, R1);
            nftmsg_cmp(m, R1, NFT_CMP_EQ, &net, bytes);
        } else {
            nftmsg_payload(m, NFT_PAYLOAD_NETWORK_HEADER, 16, 4, R1);
            nftmsg_bitwise(m, R1, &mask, &zero, 4);
            nftmsg_cmp(m, R1, NFT_CMP_EQ, &net, 4);
        }
        r_meta_cmp8(m, NFT_META_L4PROTO, IPPROTO_TCP);
        uint16_t port = htons(o->capture_port);
        nftmsg_immediate(m, R1, &port, sizeof(port));
        nftmsg_redir(m, R1, NF_NAT_RANGE_PROTO_SPECIFIED);
        END(m);
    }
    /* oifname "lo" fib daddr type local accept */
    RULE(m, "output");
    r_oif_lo(m);
    uint32_t local = RTN_LOCAL;
    nftmsg_fib(m, NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, R1);
    nftmsg_cmp(m, R1, NFT_CMP_EQ, &local, sizeof(local));
    nftmsg_verdict(m, NF_ACCEPT, NULL);
    END(m);
    /* oifname "lo" meta l4proto tcp [log] reject with tcp reset */
    RULE(m, "output");
    r_oif_lo(m);
    r_meta_cmp8(m, NFT_META_L4PROTO, IPPROTO_TCP);
    r_log(m, o, FENCE_PREFIX_REFUSED);
    nftmsg_reject(m, NFT_REJECT_TCP_RST, 0);
    END(m);
    /* oifname "lo" [log] reject with icmpx type admin-prohibited */
    RULE(m, "output");
    r_oif_lo(m);
    r_log(m, o, FENCE_PREFIX_REFUSED);
    nftmsg_reject(m, NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_ADMIN_PROHIBITED);
    END(m);
    /* ct state established,related accept */
    RULE(m, "output");
    r_ct_any(m, NFT_CT_STATE, NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED));
    nftmsg_verdict(m, NF_ACCEPT, NULL);
    END(m);
    /* ip daddr PROXY tcp dport PORT accept */
    RULE(m, "output");
    r_meta_cmp8(m, NFT_META_NFPROTO, NFPROTO_IPV4);
    nftmsg_payload(m, NFT_PAYLOAD_NETWORK_HEADER, 16, 4, R1);
    nftmsg_cmp(m, R1, NFT_CMP_EQ, &o->proxy4.s_addr, 4);
    r_meta_cmp8(m, NFT_META_L4PROTO, IPPROTO_TCP);
    uint16_t pport = htons(o->proxy_port);
    nftmsg_payload(m, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, R1);
    nftmsg_cmp(m, R1, NFT_CMP_EQ, &pport, 2);
    nftmsg_verdict(m, NF_ACCEPT, NULL);
    END(m);
    if (o->capture_port) { /* ct status dnat accept */
        RULE(m, "output");
        r_ct_any(m, NFT_CT_STATUS, IPS_DST_NAT);
        nftmsg_verdict(m, NF_ACCEPT, NULL);
        END(m);
    }
    /* icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert,
     * nd-router-solicit, mld-listener-report, mld2-listener-report } accept */
    static const uint8_t nd[] = {135, 136, 133, 131, 143};
    struct nftmsg_set anon = {.table = FENCE_TABLE, .name = "__set%d", .id = SET_ICMPV6,
                              .flags = NFT_SET_ANONYMOUS | NFT_SET_CONSTANT,
                              .key_type = DT_ICMP6_TYPE, .key_len = 1, .size = sizeof(nd),
                              .udata = udata_icmpv6, .udata_len = sizeof(udata_icmpv6)};
    nftmsg_set(m, FENCE_FAMILY, &anon);
    nftmsg_elems(m, FENCE_FAMILY, FENCE_TABLE, "__set%d", SET_ICMPV6, nd, sizeof(nd));
    RULE(m, "output");
    r_meta_cmp8(m, NFT_META_NFPROTO, NFPROTO_IPV6);
    r_meta_cmp8(m, NFT_META_L4PROTO, IPPROTO_ICMPV6);
    nftmsg_payload(m, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 1, R1);
    nftmsg_lookup(m, R1, "__set%d", SET_ICMPV6);
    nftmsg_verdict(m, NF_ACCEPT, NULL);
    END(m);
    if (o->monitored) {
        /* meta l4proto tcp jump tcp_bypass */
        RULE(m, "output");
        r_meta_cmp8(m, NFT_META_L4PROTO, IPPROTO_TCP);
        nftmsg_verdict(m, NFT_JUMP, "tcp_bypass");
        END(m);
    } else {
        /* meta l4proto tcp reject with tcp reset */
        RULE(m, "output");
        r_meta_cmp8(m, NFT_META_L4PROTO, IPPROTO_TCP);
        nftmsg_reject(m, NFT_REJECT_TCP_RST, 0);
        END(m);
    }
    /* meta l4proto udp [log] reject with icmpx type port-unreachable */
    RULE(m, "output");
    r_meta_cmp8(m, NFT_META_L4PROTO, IPPROTO_UDP);
    r_log(m, o, FENCE_PREFIX_REFUSED);
    nftmsg_reject(m, NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_PORT_UNREACH);
    END(m);
    /* [log] reject with icmpx type admin-prohibited */
    RULE(m, "output");
    r_log(m, o, FENCE_PREFIX_REFUSED);
    nftmsg_reject(m, NFT_REJECT_ICMPX_UNREACH, NFT_REJECT_ICMPX_ADMIN_PROHIBITED);
    END(m);
    if (o->monitored) {
        for (int v6 = 0; v6 <= 1; v6++) { /* ip[6] daddr . tcp sport . tcp dport @seenN reject */
            RULE(m, "tcp_bypass");
            r_flow(m, v6);
            nftmsg_lookup(m, R1, v6 ? "seen6" : "seen4", v6 ? SET_SEEN6 : SET_SEEN4);
            nftmsg_reject(m, NFT_REJECT_TCP_RST, 0);
            END(m);
        }
        for (int v6 = 0; v6 <= 1; v6++) { /* update @seenN { ... } log prefix held drop */
            RULE(m, "tcp_bypass");
            r_flow(m, v6);
            nftmsg_dynset_update(m, R1, v6 ? "seen6" : "seen4", v6 ? SET_SEEN6 : SET_SEEN4);
            nftmsg_log(m, FENCE_PREFIX_HELD, o->nflog_group);
            nftmsg_verdict(m, NF_DROP, NULL);
            END(m);
        }
        /* log prefix refused reject with tcp reset */
        RULE(m, "tcp_bypass");
        r_meta_cmp8(m, NFT_META_L4PROTO, IPPROTO_TCP);
        nftmsg_log(m, FENCE_PREFIX_REFUSED, o->nflog_group);
        nftmsg_reject(m, NFT_REJECT_TCP_RST, 0);
        END(m);
    }
    return nftmsg_end(m);
}

int fence_install(int child_netns_fd, const struct fence_opts *o, char *err, size_t errcap)
{
    static char buf[32768]; /* the fence's batch is ~6 KiB */
    static pthread_mutex_t buf_mu = PTHREAD_MUTEX_INITIALIZER;
    struct nftmsg m;
    uint32_t bad = 0;
    pthread_mutex_lock(&buf_mu);
    nftmsg_begin(&m, buf, sizeof(buf));
    int rc = fence_batch(o, &m);
    if (rc < 0) {
        pthread_mutex_unlock(&buf_mu);
        snprintf(err, errcap, "cannot build the fence: %s", strerror(-rc));
        return rc;
    }
    rc = nftmsg_send(&m, child_netns_fd, &bad);
    pthread_mutex_unlock(&buf_mu);
    if (rc < 0) {
        /* EOPNOTSUPP/ENOENT: nf_tables or one of its expressions is not
         * available (module missing); the caller falls back. */
        if (bad)
            snprintf(err, errcap, "nftables refused the fence (message %u of the batch): %s",
                     (unsigned)bad - 1, strerror(-rc));
        else
            snprintf(err, errcap, "cannot load the fence into nftables: %s", strerror(-rc));
        return rc == -ENOSPC ? rc : -EOPNOTSUPP;
    }
    return 0;
}
