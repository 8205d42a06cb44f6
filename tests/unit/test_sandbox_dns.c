/* Unit tests for the sandbox's policy DNS: sandbox/dnsmsg (the bounded
 * cursor, query parsing, answers), sandbox/addrmap (synthetic addresses),
 * sandbox/policydns (policydns_answer: what each query gets), the capture
 * rule of sandbox/fence and policy_names_host. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "policy/policy.h"
#include "sandbox/addrmap.h"
#include "sandbox/dnsmsg.h"
#include "sandbox/policydns.h"
#include "sandbox/sandbox_int.h"

static struct in_addr ip4(const char *s)
{
    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, s, &a), 1);
    return a;
}

/* A query as a stub resolver sends it. */
static size_t make_query(uint8_t *out, uint16_t id, uint16_t flags, const char *name,
                         uint16_t qtype, uint16_t qclass)
{
    size_t n = 0;
    uint8_t hdr[12] = {(uint8_t)(id >> 8), (uint8_t)id, (uint8_t)(flags >> 8), (uint8_t)flags,
                       0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(out, hdr, 12);
    n = 12;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        out[n++] = (uint8_t)l;
        memcpy(out + n, p, l);
        n += l;
        p += l + (dot ? 1 : 0);
    }
    out[n++] = 0;
    out[n++] = (uint8_t)(qtype >> 8);
    out[n++] = (uint8_t)qtype;
    out[n++] = (uint8_t)(qclass >> 8);
    out[n++] = (uint8_t)qclass;
    return n;
}

static void test_cursor_bounds(void **state)
{
    (void)state;
    const uint8_t b[3] = {1, 2, 3};
    struct dnsmsg_cur c;
    dnsmsg_cur_init(&c, b, sizeof(b));
    assert_int_equal(dnsmsg_read_u16be(&c), 0x0102);
    assert_true(c.ok);
    assert_int_equal(dnsmsg_read_u16be(&c), 0); /* one byte left: refused, poisoned */
    assert_false(c.ok);
    assert_int_equal(dnsmsg_read_u8(&c), 0);    /* stays poisoned */
    uint8_t out[4] = {9, 9, 9, 9};
    dnsmsg_read_bytes(&c, out, 4);
    assert_int_equal(out[0], 0);
    assert_int_equal(c.off, 2);
}

static void test_parse_query(void **state)
{
    (void)state;
    uint8_t m[300];
    struct dnsmsg_query q;
    size_t n = make_query(m, 0xbeef, 0x0100, "API.Example.COM", DNSMSG_T_A, DNSMSG_C_IN);
    assert_int_equal(dnsmsg_parse_query(m, n, &q), 0);
    assert_int_equal(q.id, 0xbeef);
    assert_true(q.rd);
    assert_string_equal(q.name, "api.example.com");
    assert_int_equal(q.qtype, DNSMSG_T_A);
    assert_int_equal(q.question_len, n - 12);
    assert_memory_equal(q.question, m + 12, n - 12); /* echoed as received (0x20) */
    assert_false(q.odd_name);
    /* every shorter prefix is refused without reading past it */
    for (size_t k = 0; k < n; k++)
        assert_true(dnsmsg_parse_query(m, k, &q) < 0);
    assert_int_equal(dnsmsg_parse_query(m, 11, &q), -EINVAL);
    assert_int_equal(dnsmsg_parse_query(m, 13, &q), -EBADMSG);
    /* a response is never answered; other opcodes are NOTIMP */
    m[2] = 0x81;
    assert_int_equal(dnsmsg_parse_query(m, n, &q), -EPROTO);
    m[2] = 0x11;
    assert_int_equal(dnsmsg_parse_query(m, n, &q), -EOPNOTSUPP);
    m[2] = 0x01;
    m[5] = 2; /* QDCOUNT 2 */
    assert_int_equal(dnsmsg_parse_query(m, n, &q), -EBADMSG);
    m[5] = 1;
    /* a compression pointer in the question */
    uint8_t p[] = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1};
    assert_int_equal(dnsmsg_parse_query(p, sizeof(p), &q), -EBADMSG);
    /* odd bytes are flagged, not trusted */
    n = make_query(m, 1, 0, "a*b.test", DNSMSG_T_A, DNSMSG_C_IN);
    assert_int_equal(dnsmsg_parse_query(m, n, &q), 0);
    assert_true(q.odd_name);
    assert_string_equal(q.name, "a?b.test");
    /* the root, and a name of 255 wire octets but no more */
    n = make_query(m, 1, 0, "", DNSMSG_T_A, DNSMSG_C_IN);
    assert_int_equal(dnsmsg_parse_query(m, n, &q), 0);
    assert_string_equal(q.name, "");
    char big[300];
    memset(big, 0, sizeof(big));
    for (int i = 0; i < 4; i++) /* 4 x (63 + dot) - 1 = 255 text chars: 257 wire octets */
        memset(big + i * 64, 'a', 63), big[i * 64 + 63] = i < 3 ? '.' : '\0';
    n = make_query(m, 1, 0, big, DNSMSG_T_A, DNSMSG_C_IN);
    assert_int_equal(dnsmsg_parse_query(m, n, &q), -EBADMSG);
    big[3 * 64 + 61] = '\0'; /* 253 text chars: 255 wire octets */
    n = make_query(m, 1, 0, big, DNSMSG_T_A, DNSMSG_C_IN);
    assert_int_equal(dnsmsg_parse_query(m, n, &q), 0);
    assert_int_equal(strlen(q.name), 253);
}

static void test_build_answer(void **state)
{
    (void)state;
    uint8_t m[300], out[512];
    struct dnsmsg_query q;
    size_t n = make_query(m, 0x1234, 0x0100, "a.test", DNSMSG_T_A, DNSMSG_C_IN);
    assert_int_equal(dnsmsg_parse_query(m, n, &q), 0);
    struct in_addr a = ip4("198.18.0.7");
    int l = dnsmsg_build_answer(&q, DNSMSG_NOERROR, &a, 1, 5, out, sizeof(out));
    assert_int_equal(l, (int)n + 16);
    assert_int_equal(out[0], 0x12);
    assert_int_equal(out[2], 0x85); /* QR, AA, RD */
    assert_int_equal(out[3], 0x80); /* RA, NOERROR */
    assert_int_equal(out[7], 1);    /* ANCOUNT */
    assert_memory_equal(out + 12, m + 12, n - 12);
    const uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 198, 18, 0, 7};
    assert_memory_equal(out + n, rr, sizeof(rr));
    /* NXDOMAIN never carries addresses */
    l = dnsmsg_build_answer(&q, DNSMSG_NXDOMAIN, &a, 1, 5, out, sizeof(out));
    assert_int_equal(l, (int)n);
    assert_int_equal(out[3] & 0xf, 3);
    assert_int_equal(out[7], 0);
    /* too small: an error, never a truncated message */
    assert_int_equal(dnsmsg_build_answer(&q, DNSMSG_NOERROR, &a, 1, 5, out, n + 3), -ENOSPC);
    char tn[16];
    assert_string_equal(dnsmsg_type_name(DNSMSG_T_AAAA, tn, sizeof(tn)), "AAAA");
    assert_string_equal(dnsmsg_type_name(999, tn, sizeof(tn)), "TYPE999");
}

static void test_addrmap(void **state)
{
    (void)state;
    struct addrmap *m = addrmap_new(ip4("198.18.0.0"), 30); /* two usable addresses */
    assert_non_null(m);
    struct in_addr a, b, c;
    char name[64];
    assert_int_equal(addrmap_assign(m, "one.test", &a), 0);
    assert_int_equal(a.s_addr, ip4("198.18.0.1").s_addr);
    assert_int_equal(addrmap_assign(m, "two.test", &b), 0);
    assert_int_equal(b.s_addr, ip4("198.18.0.2").s_addr);
    assert_int_equal(addrmap_assign(m, "one.test", &c), 0); /* stable */
    assert_int_equal(c.s_addr, a.s_addr);
    assert_int_equal(addrmap_assign(m, "three.test", &c), -ENOSPC); /* full: never reused */
    assert_int_equal(addrmap_lookup(m, b, name, sizeof(name)), 0);
    assert_string_equal(name, "two.test");
    assert_int_equal(addrmap_lookup(m, ip4("198.18.0.3"), name, sizeof(name)), -ENOENT);
    assert_int_equal(addrmap_lookup(m, ip4("198.18.0.0"), name, sizeof(name)), -ENOENT);
    assert_int_equal(addrmap_lookup(m, ip4("10.0.0.1"), name, sizeof(name)), -ENOENT);
    assert_int_equal(addrmap_lookup(m, a, name, 4), -ENOSPC);
    assert_int_equal(addrmap_assign(m, "", &c), -EINVAL);
    assert_int_equal(addrmap_count(m), 2);
    addrmap_free(m);
    assert_null(addrmap_new(ip4("198.18.0.0"), 8));
    /* many names: the table grows, every name keeps its own address */
    m = addrmap_new(ip4(ADDRMAP_DEFAULT_NET), ADDRMAP_DEFAULT_PREFIX);
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "h%d.test", i);
        assert_int_equal(addrmap_assign(m, name, &a), 0);
        assert_int_equal(ntohl(a.s_addr), ntohl(ip4("198.18.0.0").s_addr) + 1 + (uint32_t)i);
    }
    char back[64];
    assert_int_equal(addrmap_lookup(m, ip4("198.18.19.136"), back, sizeof(back)), 0);
    assert_string_equal(back, "h4999.test");
    struct in_addr net;
    uint8_t pfx;
    addrmap_range(m, &net, &pfx);
    assert_int_equal(pfx, 16);
    assert_true(addrmap_in_range(m, ip4("198.18.255.255")));
    assert_false(addrmap_in_range(m, ip4("198.19.0.1")));
    addrmap_free(m);
}

static const char POLICY[] = "version: 1\n"
                             "network_policies:\n"
                             "  a:\n"
                             "    endpoints:\n"
                             "      - host: api.example.com\n"
                             "        port: 443\n"
                             "      - host: \"*.wild.test\"\n"
                             "        port: 443\n"
                             "      - host: 10.1.2.3\n"
                             "        port: 22\n"
                             "    binaries:\n"
                             "      - path: /usr/bin/curl\n";

static struct policy *load(void)
{
    struct policy *p = NULL;
    struct policy_diag d = {0};
    assert_int_equal(policy_load_buffer("t.yaml", POLICY, strlen(POLICY), &p, &d), 0);
    policy_diag_free(&d);
    return p;
}

static void test_policy_names_host(void **state)
{
    (void)state;
    struct policy *p = load();
    assert_true(policy_names_host(p, "api.example.com"));
    assert_true(policy_names_host(p, "API.example.com."));
    assert_true(policy_names_host(p, "x.wild.test"));
    assert_false(policy_names_host(p, "x.y.wild.test")); /* one label, as OpenShell */
    assert_false(policy_names_host(p, "wild.test"));     /* never the apex */
    assert_false(policy_names_host(p, "example.com"));
    assert_false(policy_names_host(p, "10.1.2.3"));      /* IP literals name nothing */
    assert_false(policy_names_host(p, ""));
    assert_false(policy_names_host(NULL, "api.example.com"));
    policy_unref(p);
}

/* rcode and answer count of an answer */
static int answer(struct policy *p, struct addrmap *m, const char *name, uint16_t qtype,
                  const char **denied, int *an, struct in_addr *a)
{
    uint8_t q[300], out[512];
    struct dnsmsg_query dq;
    size_t n = make_query(q, 9, 0x0100, name, qtype, DNSMSG_C_IN);
    int l = policydns_answer(p, NULL, m, q, n, &dq, denied, out, sizeof(out));
    assert_true(l >= 12);
    *an = out[7];
    if (*an == 1 && a)
        memcpy(&a->s_addr, out + l - 4, 4);
    return out[3] & 0xf;
}

static void test_policydns_answer(void **state)
{
    (void)state;
    struct policy *p = load();
    struct addrmap *m = addrmap_new(ip4(ADDRMAP_DEFAULT_NET), ADDRMAP_DEFAULT_PREFIX);
    const char *d;
    int an;
    struct in_addr a, b;
    assert_int_equal(answer(p, m, "api.example.com", DNSMSG_T_A, &d, &an, &a), DNSMSG_NOERROR);
    assert_null(d);
    assert_int_equal(an, 1);
    assert_int_equal(a.s_addr, ip4("198.18.0.1").s_addr);
    assert_int_equal(answer(p, m, "b.wild.test", DNSMSG_T_A, &d, &an, &b), DNSMSG_NOERROR);
    assert_int_equal(b.s_addr, ip4("198.18.0.2").s_addr);
    assert_int_equal(answer(p, m, "api.example.com", DNSMSG_T_AAAA, &d, &an, NULL), DNSMSG_NOERROR);
    assert_int_equal(an, 0); /* NODATA */
    assert_null(d);
    assert_int_equal(answer(p, m, "api.example.com", DNSMSG_T_HTTPS, &d, &an, NULL), DNSMSG_NOERROR);
    assert_int_equal(an, 0);
    static const uint16_t refused[] = {DNSMSG_T_PTR, DNSMSG_T_SRV, DNSMSG_T_MX, DNSMSG_T_TXT,
                                       DNSMSG_T_ANY};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(answer(p, m, "api.example.com", refused[i], &d, &an, NULL),
                         DNSMSG_NXDOMAIN);
        assert_ptr_equal(d, POLICYDNS_REASON_TYPE);
    }
    assert_int_equal(answer(p, m, "evil.example.com", DNSMSG_T_A, &d, &an, NULL), DNSMSG_NXDOMAIN);
    assert_ptr_equal(d, POLICYDNS_REASON_NOT_IN_POLICY);
    assert_int_equal(answer(p, m, "a_b.wild.test", DNSMSG_T_A, &d, &an, NULL), DNSMSG_NOERROR);
    assert_int_equal(answer(p, m, "a*b.wild.test", DNSMSG_T_A, &d, &an, NULL), DNSMSG_NXDOMAIN);
    assert_ptr_equal(d, POLICYDNS_REASON_BAD_NAME);
    /* no policy: nothing resolves */
    assert_int_equal(answer(NULL, m, "api.example.com", DNSMSG_T_A, &d, &an, NULL), DNSMSG_NXDOMAIN);
    /* class CHAOS: refused; garbage: FORMERR; a runt: no answer */
    uint8_t q[300], out[512];
    struct dnsmsg_query dq;
    size_t n = make_query(q, 9, 0, "api.example.com", DNSMSG_T_A, 3);
    assert_true(policydns_answer(p, NULL, m, q, n, &dq, &d, out, sizeof(out)) > 0);
    assert_int_equal(out[3] & 0xf, DNSMSG_REFUSED);
    assert_true(policydns_answer(p, NULL, m, q, 14, &dq, &d, out, sizeof(out)) > 0);
    assert_int_equal(out[3] & 0xf, DNSMSG_FORMERR);
    assert_int_equal(out[5], 0); /* no question echoed */
    assert_int_equal(policydns_answer(p, NULL, m, q, 5, &dq, &d, out, sizeof(out)), 0);
    addrmap_free(m);
    policy_unref(p);
}

static void test_fence_capture_rule(void **state)
{
    (void)state;
    char buf[4096];
    struct fence_opts o = {.proxy4 = ip4("10.200.0.1"), .proxy_port = 3128, .nflog_group = 7,
                           .monitored = true, .capture_net = ip4("198.18.0.0"),
                           .capture_prefix = 16, .capture_port = 3129};
    assert_true(fence_ruleset(&o, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "type nat hook output priority -100;"));
    assert_non_null(strstr(buf, "ip daddr 198.18.0.0/16 meta l4proto tcp redirect to :3129"));
    assert_non_null(strstr(buf, "ct status dnat accept"));
    /* the redirected flows are accepted before anything refuses */
    assert_true(strstr(buf, "ct status dnat accept") < strstr(buf, "jump tcp_bypass"));
    /* UDP to the range (QUIC) is not captured: refused like any UDP */
    assert_null(strstr(buf, "l4proto udp redirect"));
    o.capture_port = 0;
    assert_true(fence_ruleset(&o, buf, sizeof(buf)) > 0);
    assert_null(strstr(buf, "redirect"));
    assert_null(strstr(buf, "ct status dnat"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_bounds),     cmocka_unit_test(test_parse_query),
        cmocka_unit_test(test_build_answer),      cmocka_unit_test(test_addrmap),
        cmocka_unit_test(test_policy_names_host), cmocka_unit_test(test_policydns_answer),
        cmocka_unit_test(test_fence_capture_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
