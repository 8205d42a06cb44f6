/* sandbox/refuse: parsing a fenced packet, and building the answer the
 * kernel's "reject" would have sent, so the caller fails at once.
 *
 * Packets are read through bounds-checked cursors; nothing here trusts a
 * length field (the packet comes from the sandbox). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <string.h>

#include "sandbox/sandbox_int.h"
#include "core/banned.h"

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint16_t refuse_csum(const void *data, size_t len, uint32_t sum)
{
    const uint8_t *p = data;
    while (len > 1) {
        sum += rd16(p);
        p += 2;
        len -= 2;
    }
    if (len)
        sum += (uint32_t)p[0] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* Partial (not folded, not inverted) sum of a pseudo-header. */
static uint32_t pseudo_sum(int family, const uint8_t *src, const uint8_t *dst, uint8_t proto,
                           uint32_t len)
{
    uint32_t sum = 0;
    size_t alen = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < alen; i += 2)
        sum += rd16(src + i) + rd16(dst + i);
    sum += proto;
    sum += len >> 16;
    sum += len & 0xffff;
    return sum;
}

int pkt_parse(const uint8_t *p, size_t len, struct pkt_info *out)
{
    memset(out, 0, sizeof(*out));
    if (len < 1)
        return -EINVAL;
    unsigned version = p[0] >> 4;
    size_t l3, total;
    uint8_t proto;
    if (version == 4) {
        if (len < 20)
            return -EINVAL;
        l3 = (size_t)(p[0] & 0x0f) * 4;
        total = rd16(p + 2);
        if (l3 < 20 || l3 > len)
            return -EINVAL;
        proto = p[9];
        out->family = AF_INET;
        memcpy(out->src, p + 12, 4);
        memcpy(out->dst, p + 16, 4);
        if ((rd16(p + 6) & 0x1fff) != 0)
            proto = 0; /* a non-first fragment has no L4 header */
    } else if (version == 6) {
        if (len < 40)
            return -EINVAL;
        total = 40 + (size_t)rd16(p + 4);
        out->family = AF_INET6;
        memcpy(out->src, p + 8, 16);
        memcpy(out->dst, p + 24, 16);
        proto = p[6];
        l3 = 40;
        /* Walk the extension headers we may meet on output (RFC 8200 §4). */
        for (int guard = 0; guard < 8; guard++) {
            if (proto == IPPROTO_HOPOPTS || proto == IPPROTO_ROUTING ||
                proto == IPPROTO_DSTOPTS) {
                if (l3 + 2 > len)
                    return -EINVAL;
                uint8_t next = p[l3];
                size_t hl = ((size_t)p[l3 + 1] + 1) * 8;
                if (l3 + hl > len)
                    return -EINVAL;
                proto = next;
                l3 += hl;
            } else if (proto == IPPROTO_FRAGMENT) {
                if (l3 + 8 > len)
                    return -EINVAL;
                uint8_t next = p[l3];
                if ((rd16(p + l3 + 2) & 0xfff8) != 0) {
                    proto = 0;
                    break;
                }
                proto = next;
                l3 += 8;
            } else {
                break;
            }
        }
    } else {
        return -EINVAL;
    }
    out->proto = proto;
    out->l3_len = l3;
    if (total < l3)
        return -EINVAL;
    size_t l4_total = total - l3; /* from the header, not what NFLOG copied */
    const uint8_t *l4 = p + l3;
    size_t have = len - l3;
    if (proto == IPPROTO_TCP) {
        if (have < 20)
            return -EINVAL;
        size_t doff = (size_t)(l4[12] >> 4) * 4;
        if (doff < 20 || doff > l4_total)
            return -EINVAL;
        out->sport = rd16(l4);
        out->dport = rd16(l4 + 2);
        out->tcp_seq = rd32(l4 + 4);
        out->tcp_ack = rd32(l4 + 8);
        out->tcp_flags = l4[13];
        out->l4_payload = l4_total - doff;
    } else if (proto == IPPROTO_UDP) {
        if (have < 8 || l4_total < 8)
            return -EINVAL;
        out->sport = rd16(l4);
        out->dport = rd16(l4 + 2);
        out->l4_payload = l4_total - 8;
    }
    return 0;
}

/* IP header for an answer from pi->dst to pi->src; returns its length. */
static size_t put_ip(uint8_t *o, const struct pkt_info *pi, uint8_t proto, size_t l4len)
{
    if (pi->family == AF_INET) {
        memset(o, 0, 20);
        o[0] = 0x45;
        wr16(o + 2, (uint16_t)(20 + l4len));
        wr16(o + 6, 0x4000); /* DF */
        o[8] = 64;
        o[9] = proto;
        memcpy(o + 12, pi->dst, 4);
        memcpy(o + 16, pi->src, 4);
        wr16(o + 10, refuse_csum(o, 20, 0));
        return 20;
    }
    memset(o, 0, 40);
    o[0] = 0x60;
    wr16(o + 4, (uint16_t)l4len);
    o[6] = proto;
    o[7] = 64;
    memcpy(o + 8, pi->dst, 16);
    memcpy(o + 24, pi->src, 16);
    return 40;
}

static int build_rst(const struct pkt_info *pi, uint8_t *out, size_t cap)
{
    size_t iplen = pi->family == AF_INET ? 20 : 40;
    if (cap < iplen + 20)
        return -ENOSPC;
    if (pi->tcp_flags & TCPF_RST)
        return -EPROTONOSUPPORT; /* never answer a reset */
    uint8_t *t = out + iplen;
    memset(t, 0, 20);
    wr16(t, pi->dport);
    wr16(t + 2, pi->sport);
    /* RFC 9293 §3.10.7.1: if the segment has ACK, <SEQ=SEG.ACK><CTL=RST>;
     * otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>. */
    if (pi->tcp_flags & TCPF_ACK) {
        wr32(t + 4, pi->tcp_ack);
        t[13] = TCPF_RST;
    } else {
        uint32_t seglen = (uint32_t)pi->l4_payload + ((pi->tcp_flags & TCPF_SYN) ? 1 : 0) +
                          ((pi->tcp_flags & TCPF_FIN) ? 1 : 0);
        wr32(t + 8, pi->tcp_seq + seglen);
        t[13] = TCPF_RST | TCPF_ACK;
    }
    t[12] = 5 << 4;
    put_ip(out, pi, IPPROTO_TCP, 20);
    uint32_t ps = pseudo_sum(pi->family, pi->dst, pi->src, IPPROTO_TCP, 20);
    wr16(t + 16, refuse_csum(t, 20, ps));
    return (int)(iplen + 20);
}

static int build_unreach(const uint8_t *pkt, size_t len, const struct pkt_info *pi, uint8_t *out,
                         size_t cap)
{
    size_t iplen = pi->family == AF_INET ? 20 : 40;
    /* Quote the original IP header and the first 8 bytes of its payload
     * (RFC 792), which hold the ports the receiver matches on. */
    size_t quote = pi->l3_len + 8;
    if (quote > len)
        return -EINVAL;
    size_t l4len = 8 + quote;
    if (cap < iplen + l4len)
        return -ENOSPC;
    uint8_t *ic = out + iplen;
    memset(ic, 0, 8);
    memcpy(ic + 8, pkt, quote);
    put_ip(out, pi, pi->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6, l4len);
    if (pi->family == AF_INET) {
        ic[0] = ICMP_DEST_UNREACH;
        ic[1] = ICMP_PORT_UNREACH;
        wr16(ic + 2, refuse_csum(ic, l4len, 0));
    } else {
        ic[0] = ICMP6_DST_UNREACH;
        ic[1] = ICMP6_DST_UNREACH_NOPORT; /* RFC 4443 §3.1 code 4 */
        uint32_t ps = pseudo_sum(AF_INET6, pi->dst, pi->src, IPPROTO_ICMPV6, (uint32_t)l4len);
        wr16(ic + 2, refuse_csum(ic, l4len, ps));
    }
    return (int)(iplen + l4len);
}

int refuse_build(const uint8_t *pkt, size_t len, const struct pkt_info *pi, uint8_t *out,
                 size_t cap)
{
    switch (pi->proto) {
    case IPPROTO_TCP:
        return build_rst(pi, out, cap);
    case IPPROTO_UDP:
        return build_unreach(pkt, len, pi, out, cap);
    default:
        return -EPROTONOSUPPORT;
    }
}
