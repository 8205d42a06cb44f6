/* Unit tests for sandbox/refuse (packet parsing, the reset / port
 * unreachable we answer with) and sandbox/bypass (repeat counting, hints). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "sandbox/sandbox_int.h"

static size_t put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return 2;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An IPv4 TCP SYN 10.200.0.2:40000 -> 10.232.1.2:80, seq 1000. */
static size_t syn4(uint8_t *p)
{
    memset(p, 0, 60);
    p[0] = 0x45;
    put16(p + 2, 40);
    p[8] = 64;
    p[9] = IPPROTO_TCP;
    inet_pton(AF_INET, "10.200.0.2", p + 12);
    inet_pton(AF_INET, "10.232.1.2", p + 16);
    put16(p + 10, refuse_csum(p, 20, 0));
    uint8_t *t = p + 20;
    put16(t, 40000);
    put16(t + 2, 80);
    t[4] = 0, t[5] = 0, t[6] = 0x03, t[7] = 0xe8; /* seq 1000 */
    t[12] = 5 << 4;
    t[13] = 0x02; /* SYN */
    return 40;
}

/* An IPv6 UDP datagram [fd63:6f72:646e::2]:5353 -> [2001:db8::53]:53, 12 bytes payload. */
static size_t udp6(uint8_t *p)
{
    memset(p, 0, 80);
    p[0] = 0x60;
    put16(p + 4, 8 + 12);
    p[6] = IPPROTO_UDP;
    p[7] = 64;
    inet_pton(AF_INET6, "fd63:6f72:646e::2", p + 8);
    inet_pton(AF_INET6, "2001:db8::53", p + 24);
    uint8_t *u = p + 40;
    put16(u, 5353);
    put16(u + 2, 53);
    put16(u + 4, 8 + 12);
    return 40 + 8 + 12;
}

static uint32_t pseudo(int family, const uint8_t *src, const uint8_t *dst, uint8_t proto,
                       uint32_t len)
{
    uint32_t sum = 0;
    size_t alen = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < alen; i += 2)
        sum += get16(src + i) + get16(dst + i);
    return sum + proto + (len >> 16) + (len & 0xffff);
}

static void test_parse_tcp4(void **state)
{
    (void)state;
    uint8_t p[64];
    size_t n = syn4(p);
    struct pkt_info pi;
    assert_int_equal(pkt_parse(p, n, &pi), 0);
    assert_int_equal(pi.family, AF_INET);
    assert_int_equal(pi.proto, IPPROTO_TCP);
    assert_int_equal(pi.sport, 40000);
    assert_int_equal(pi.dport, 80);
    assert_int_equal(pi.tcp_seq, 1000);
    assert_int_equal(pi.tcp_flags, 0x02);
    assert_int_equal(pi.l3_len, 20);
    assert_int_equal(pi.l4_payload, 0);
}

static void test_parse_rejects_garbage(void **state)
{
    (void)state;
    uint8_t p[64];
    struct pkt_info pi;
    size_t n = syn4(p);
    assert_int_equal(pkt_parse(p, 0, &pi), -EINVAL);
    assert_int_equal(pkt_parse(p, 19, &pi), -EINVAL);   /* short IP header */
    assert_int_equal(pkt_parse(p, 30, &pi), -EINVAL);   /* short TCP header */
    p[0] = 0x4f;                                        /* IHL 60 > captured */
    assert_int_equal(pkt_parse(p, n, &pi), -EINVAL);
    syn4(p);
    p[20 + 12] = 0xf0;                                  /* data offset past the packet */
    assert_int_equal(pkt_parse(p, n, &pi), -EINVAL);
    syn4(p);
    put16(p + 2, 10);                                   /* total length < header */
    assert_int_equal(pkt_parse(p, n, &pi), -EINVAL);
    p[0] = 0x75;                                        /* version 7 */
    assert_int_equal(pkt_parse(p, n, &pi), -EINVAL);
    uint8_t v6[80];
    size_t m = udp6(v6);
    v6[6] = IPPROTO_HOPOPTS;                            /* ext header running off the end */
    v6[40] = IPPROTO_UDP;
    v6[41] = 200;
    assert_int_equal(pkt_parse(v6, m, &pi), -EINVAL);
}

static void test_rst_for_syn(void **state)
{
    (void)state;
    uint8_t p[64], out[128];
    size_t n = syn4(p);
    struct pkt_info pi;
    assert_int_equal(pkt_parse(p, n, &pi), 0);
    int len = refuse_build(p, n, &pi, out, sizeof(out));
    assert_int_equal(len, 40);
    /* IP: swapped addresses, valid header checksum. */
    assert_memory_equal(out + 12, p + 16, 4);
    assert_memory_equal(out + 16, p + 12, 4);
    assert_int_equal(out[9], IPPROTO_TCP);
    assert_int_equal(refuse_csum(out, 20, 0), 0);
    /* TCP: ports swapped, RST|ACK, ack = seq + 1 (the SYN), seq 0. */
    const uint8_t *t = out + 20;
    assert_int_equal(get16(t), 80);
    assert_int_equal(get16(t + 2), 40000);
    assert_int_equal(get32(t + 4), 0);
    assert_int_equal(get32(t + 8), 1001);
    assert_int_equal(t[13], 0x14);
    uint32_t ps = pseudo(AF_INET, out + 12, out + 16, IPPROTO_TCP, 20);
    assert_int_equal(refuse_csum(t, 20, ps), 0);
    /* A segment with ACK gets <SEQ=SEG.ACK><CTL=RST>. */
    pi.tcp_flags = 0x10;
    pi.tcp_ack = 77;
    len = refuse_build(p, n, &pi, out, sizeof(out));
    assert_int_equal(len, 40);
    assert_int_equal(get32(out + 24), 77);
    assert_int_equal(out[33], 0x04);
    /* Never answer a reset, never overflow. */
    pi.tcp_flags = 0x04;
    assert_int_equal(refuse_build(p, n, &pi, out, sizeof(out)), -EPROTONOSUPPORT);
    pi.tcp_flags = 0x02;
    assert_int_equal(refuse_build(p, n, &pi, out, 39), -ENOSPC);
}

static void test_unreach_for_udp6(void **state)
{
    (void)state;
    uint8_t p[80], out[256];
    size_t n = udp6(p);
    struct pkt_info pi;
    assert_int_equal(pkt_parse(p, n, &pi), 0);
    assert_int_equal(pi.family, AF_INET6);
    assert_int_equal(pi.proto, IPPROTO_UDP);
    assert_int_equal(pi.dport, 53);
    assert_int_equal(pi.l4_payload, 12);
    int len = refuse_build(p, n, &pi, out, sizeof(out));
    /* 40 IPv6 + 8 ICMPv6 + quoted 40 + 8 */
    assert_int_equal(len, 96);
    assert_int_equal(out[6], IPPROTO_ICMPV6);
    assert_memory_equal(out + 8, p + 24, 16);  /* from the destination */
    assert_memory_equal(out + 24, p + 8, 16);  /* to the sender */
    const uint8_t *ic = out + 40;
    assert_int_equal(ic[0], 1);                /* destination unreachable */
    assert_int_equal(ic[1], 4);                /* port unreachable */
    assert_memory_equal(ic + 8, p, 48);        /* quotes header + ports */
    uint32_t ps = pseudo(AF_INET6, out + 8, out + 24, IPPROTO_ICMPV6, 56);
    assert_int_equal(refuse_csum(ic, 56, ps), 0);
}

static void test_hints(void **state)
{
    (void)state;
    assert_non_null(strstr(bypass_hint(IPPROTO_TCP, 443), "HTTPS_PROXY"));
    assert_non_null(strstr(bypass_hint(IPPROTO_UDP, 53), "DNS"));
    assert_non_null(strstr(bypass_hint(IPPROTO_UDP, 53), "resolves"));
    assert_non_null(strstr(bypass_hint(IPPROTO_TCP, 5432), "host name"));
    assert_non_null(strstr(bypass_hint(IPPROTO_TCP, 5432), "network_policies"));
    assert_non_null(strstr(bypass_hint(IPPROTO_TCP, 443), "Node 20 ignores it"));
    assert_null(strstr(bypass_hint(IPPROTO_TCP, 443), "NODE_USE_ENV_PROXY=1 (set)"));
    assert_non_null(strstr(bypass_hint(IPPROTO_UDP, 443), "QUIC"));
    assert_non_null(strstr(bypass_hint(IPPROTO_UDP, 123), "UDP is not allowed"));
    assert_non_null(strstr(bypass_hint(IPPROTO_ICMP, 0), "not allowed"));
}

static void key(struct bypass_dedup_key *k, pid_t pid, uint16_t port)
{
    memset(k, 0, sizeof(*k));
    k->proto = IPPROTO_TCP;
    k->family = AF_INET;
    k->dport = port;
    k->pid = pid;
    strcpy(k->exe, "/usr/bin/curl");
}

struct seen {
    int n;
    uint32_t counts[16];
};

static void collect(const struct bypass_dedup_entry *e, void *data)
{
    struct seen *s = data;
    s->counts[s->n++] = e->repeats;
}

static void test_dedup(void **state)
{
    (void)state;
    struct bypass_dedup_entry slots[2];
    memset(slots, 0, sizeof(slots));
    struct bypass_dedup d = {.e = slots, .cap = 2, .window_ms = 1000};
    struct bypass_dedup_key a, b, c;
    key(&a, 10, 80);
    key(&b, 10, 443);
    key(&c, 11, 80);
    struct bypass_dedup_entry ev;
    bool evicted;
    /* The first of a key is always emitted; repeats only count. */
    assert_true(bypass_dedup_hit(&d, &a, 0, &ev, &evicted));
    assert_false(evicted);
    assert_false(bypass_dedup_hit(&d, &a, 10, &ev, &evicted));
    assert_false(bypass_dedup_hit(&d, &a, 20, &ev, &evicted));
    assert_true(bypass_dedup_hit(&d, &b, 30, &ev, &evicted));
    /* Full: the oldest (a, 2 repeats) is flushed to make room, never lost. */
    assert_true(bypass_dedup_hit(&d, &c, 40, &ev, &evicted));
    assert_true(evicted);
    assert_int_equal(ev.repeats, 2);
    assert_int_equal(ev.key.dport, 80);
    assert_int_equal(ev.key.pid, 10);
    /* Expiry reports counts of finished windows only. */
    assert_false(bypass_dedup_hit(&d, &c, 50, &ev, &evicted));
    struct seen s = {0};
    bypass_dedup_expire(&d, 500, false, collect, &s);
    assert_int_equal(s.n, 0);
    bypass_dedup_expire(&d, 1045, false, collect, &s);
    assert_int_equal(s.n, 1);          /* c had one repeat; b had none */
    assert_int_equal(s.counts[0], 1);
    /* After its window, a key starts over and is emitted again. */
    assert_true(bypass_dedup_hit(&d, &c, 1100, &ev, &evicted));
    assert_false(bypass_dedup_hit(&d, &c, 1200, &ev, &evicted));
    assert_true(bypass_dedup_hit(&d, &c, 2200, &ev, &evicted)); /* expired, same key */
    assert_true(evicted);               /* its pending count goes out first */
    assert_int_equal(ev.repeats, 1);
    /* At exit everything pending is flushed. */
    assert_false(bypass_dedup_hit(&d, &c, 2300, &ev, &evicted));
    s.n = 0;
    bypass_dedup_expire(&d, 0, true, collect, &s);
    assert_int_equal(s.n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_tcp4),      cmocka_unit_test(test_parse_rejects_garbage),
        cmocka_unit_test(test_rst_for_syn),     cmocka_unit_test(test_unreach_for_udp6),
        cmocka_unit_test(test_hints),           cmocka_unit_test(test_dedup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
