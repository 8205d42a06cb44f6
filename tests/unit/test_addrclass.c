/* Unit tests for core/addrclass: every range class, IPv4-mapped IPv6, and
 * CIDR overlap with always-blocked space (the policy loader's check). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/addrclass.h"

static enum addr_class cls(const char *ip, const char **name)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1);
        a6->sin6_family = AF_INET6;
    }
    *name = addr_class_range_name((struct sockaddr *)&ss);
    return addr_classify((struct sockaddr *)&ss);
}

#define CLS(ip, want, want_name)                                                                   \
    do {                                                                                           \
        const char *nm;                                                                            \
        assert_int_equal(cls(ip, &nm), want);                                                      \
        assert_string_equal(nm, want_name);                                                        \
    } while (0)

static void test_ipv4(void **state)
{
    (void)state;
    CLS("127.0.0.1", ADDR_ALWAYS_BLOCKED, "loopback");
    CLS("127.255.255.254", ADDR_ALWAYS_BLOCKED, "loopback");
    CLS("169.254.169.254", ADDR_ALWAYS_BLOCKED, "link-local");
    CLS("0.0.0.0", ADDR_ALWAYS_BLOCKED, "unspecified");
    CLS("0.1.2.3", ADDR_ALWAYS_BLOCKED, "unspecified");
    CLS("224.0.0.1", ADDR_ALWAYS_BLOCKED, "multicast");
    CLS("239.255.255.250", ADDR_ALWAYS_BLOCKED, "multicast");
    CLS("255.255.255.255", ADDR_ALWAYS_BLOCKED, "broadcast");
    CLS("240.0.0.1", ADDR_ALWAYS_BLOCKED, "reserved");
    CLS("10.1.2.3", ADDR_PRIVATE, "rfc1918");
    CLS("172.16.0.1", ADDR_PRIVATE, "rfc1918");
    CLS("172.31.255.255", ADDR_PRIVATE, "rfc1918");
    CLS("172.32.0.1", ADDR_PUBLIC, "public");
    CLS("192.168.1.1", ADDR_PRIVATE, "rfc1918");
    CLS("100.64.0.1", ADDR_PRIVATE, "cgnat");
    CLS("100.127.255.255", ADDR_PRIVATE, "cgnat");
    CLS("100.128.0.1", ADDR_PUBLIC, "public");
    CLS("192.0.0.8", ADDR_PRIVATE, "ietf-protocol");
    CLS("192.0.2.1", ADDR_PRIVATE, "test-net");
    CLS("198.51.100.7", ADDR_PRIVATE, "test-net");
    CLS("203.0.113.9", ADDR_PRIVATE, "test-net");
    CLS("198.19.255.1", ADDR_PRIVATE, "benchmarking");
    CLS("198.20.0.1", ADDR_PUBLIC, "public");
    CLS("8.8.8.8", ADDR_PUBLIC, "public");
    CLS("1.1.1.1", ADDR_PUBLIC, "public");
}

static void test_ipv6(void **state)
{
    (void)state;
    CLS("::1", ADDR_ALWAYS_BLOCKED, "loopback");
    CLS("::", ADDR_ALWAYS_BLOCKED, "unspecified");
    CLS("fe80::1", ADDR_ALWAYS_BLOCKED, "link-local");
    CLS("febf::1", ADDR_ALWAYS_BLOCKED, "link-local");
    CLS("ff02::1", ADDR_ALWAYS_BLOCKED, "multicast");
    CLS("fc00::1", ADDR_PRIVATE, "unique-local");
    CLS("fd12:3456::1", ADDR_PRIVATE, "unique-local");
    CLS("fec0::1", ADDR_PRIVATE, "site-local");
    CLS("64:ff9b::1.2.3.4", ADDR_PRIVATE, "nat64");
    CLS("2002:c000:0204::1", ADDR_PRIVATE, "6to4");
    CLS("2001:db8::1", ADDR_PRIVATE, "documentation");
    CLS("::8.8.8.8", ADDR_PRIVATE, "ipv4-compatible");
    CLS("2001:0:4136:e378:8000:63bf:f7f7:f7f7", ADDR_PRIVATE, "teredo");
    CLS("2606:4700:4700::1111", ADDR_PUBLIC, "public");
    CLS("2a00:1450::1", ADDR_PUBLIC, "public");
}

static void test_mapped(void **state)
{
    (void)state;
    /* ::ffff:a.b.c.d is judged as a.b.c.d: no SSRF bypass through v6 */
    CLS("::ffff:127.0.0.1", ADDR_ALWAYS_BLOCKED, "loopback");
    CLS("::ffff:169.254.169.254", ADDR_ALWAYS_BLOCKED, "link-local");
    CLS("::ffff:10.0.0.1", ADDR_PRIVATE, "rfc1918");
    CLS("::ffff:8.8.8.8", ADDR_PUBLIC, "public");
}

static void test_embedded(void **state)
{
    (void)state;
    /* IPv6 forms that carry an IPv4 address are judged by it as well
     * (the stricter class wins): no fence bypass through a translator */
    CLS("::127.0.0.1", ADDR_ALWAYS_BLOCKED, "loopback");
    CLS("::7f00:1", ADDR_ALWAYS_BLOCKED, "loopback");
    CLS("::169.254.169.254", ADDR_ALWAYS_BLOCKED, "link-local");
    CLS("64:ff9b::127.0.0.1", ADDR_ALWAYS_BLOCKED, "loopback");
    CLS("64:ff9b::a9fe:a9fe", ADDR_ALWAYS_BLOCKED, "link-local");
    CLS("64:ff9b::10.1.2.3", ADDR_PRIVATE, "nat64");
    CLS("64:ff9b:1:7f00:0:100::", ADDR_ALWAYS_BLOCKED, "loopback");
    CLS("2002:7f00:0001::1", ADDR_ALWAYS_BLOCKED, "loopback");
    CLS("2002:a9fe:a9fe::", ADDR_ALWAYS_BLOCKED, "link-local");
    CLS("2002:0808:0808::1", ADDR_PRIVATE, "6to4");
    /* Teredo: server 127.0.0.1, or client (inverted) 127.0.0.1 */
    CLS("2001:0:7f00:1::1", ADDR_ALWAYS_BLOCKED, "loopback");
    CLS("2001:0:0808:0808:0:0:80ff:fffe", ADDR_ALWAYS_BLOCKED, "loopback");
}

static void test_unknown_family(void **state)
{
    (void)state;
    struct sockaddr sa = {.sa_family = AF_UNIX};
    assert_int_equal(addr_classify(&sa), ADDR_ALWAYS_BLOCKED);
    assert_string_equal(addr_class_range_name(&sa), "unknown");
    const char *nm = NULL;
    uint8_t b[16] = {0};
    assert_int_equal(addr_classify_raw(AF_UNIX, b, &nm), ADDR_ALWAYS_BLOCKED);
    assert_string_equal(nm, "unknown");
}

static enum addr_cidr_overlap cidr(const char *ip, unsigned prefix, const char **name)
{
    uint8_t b[16] = {0};
    int fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
    assert_int_equal(inet_pton(fam, ip, b), 1);
    *name = "unset";
    return addr_cidr_class(fam, b, prefix, name);
}

#define CIDR(ip, p, want, want_name)                                                               \
    do {                                                                                           \
        const char *nm;                                                                            \
        assert_int_equal(cidr(ip, p, &nm), want);                                                  \
        if (want_name)                                                                             \
            assert_string_equal(nm, (const char *)want_name);                                      \
        else                                                                                       \
            assert_null(nm);                                                                       \
    } while (0)

static void test_cidr_blocked(void **state)
{
    (void)state;
    CIDR("127.0.0.1", 32, ADDR_CIDR_BLOCKED, "loopback");
    CIDR("127.0.0.0", 8, ADDR_CIDR_BLOCKED, "loopback");
    CIDR("127.1.2.3", 8, ADDR_CIDR_BLOCKED, "loopback"); /* host bits ignored */
    CIDR("169.254.0.0", 16, ADDR_CIDR_BLOCKED, "link-local");
    CIDR("169.254.169.254", 32, ADDR_CIDR_BLOCKED, "link-local");
    CIDR("0.0.0.0", 32, ADDR_CIDR_BLOCKED, "unspecified");
    /* 224/4 multicast + 240/4 reserved: blocked as a union */
    CIDR("224.0.0.0", 3, ADDR_CIDR_BLOCKED, "multicast");
    CIDR("::1", 128, ADDR_CIDR_BLOCKED, "loopback");
    CIDR("fe80::", 10, ADDR_CIDR_BLOCKED, "link-local");
    CIDR("ff00::", 8, ADDR_CIDR_BLOCKED, "multicast");
    CIDR("::ffff:127.0.0.0", 104, ADDR_CIDR_BLOCKED, "loopback");
    CIDR("::ffff:169.254.169.254", 128, ADDR_CIDR_BLOCKED, "link-local");
}

static void test_cidr_partial_and_clear(void **state)
{
    (void)state;
    CIDR("126.0.0.0", 7, ADDR_CIDR_PARTIAL, "loopback");
    CIDR("0.0.0.0", 0, ADDR_CIDR_PARTIAL, "unspecified");
    CIDR("169.0.0.0", 8, ADDR_CIDR_PARTIAL, "link-local");
    CIDR("fe80::", 9, ADDR_CIDR_PARTIAL, "link-local");
    CIDR("::", 0, ADDR_CIDR_PARTIAL, "unspecified");
    CIDR("::ffff:0.0.0.0", 96, ADDR_CIDR_PARTIAL, "unspecified");
    CIDR("10.0.0.0", 8, ADDR_CIDR_CLEAR, NULL);
    CIDR("10.0.5.0", 24, ADDR_CIDR_CLEAR, NULL);
    CIDR("172.16.0.0", 12, ADDR_CIDR_CLEAR, NULL);
    CIDR("8.8.8.8", 32, ADDR_CIDR_CLEAR, NULL);
    CIDR("128.0.0.0", 2, ADDR_CIDR_PARTIAL, "link-local");
    CIDR("2001:db8::", 32, ADDR_CIDR_CLEAR, NULL);
    CIDR("fd00::", 8, ADDR_CIDR_CLEAR, NULL);
    CIDR("::ffff:10.0.0.0", 104, ADDR_CIDR_CLEAR, NULL);
}

static void test_cidr_invalid(void **state)
{
    (void)state;
    uint8_t b[16] = {10};
    const char *nm = NULL;
    assert_int_equal(addr_cidr_class(AF_INET, b, 33, &nm), ADDR_CIDR_BLOCKED);
    assert_string_equal(nm, "invalid");
    assert_int_equal(addr_cidr_class(AF_INET6, b, 129, &nm), ADDR_CIDR_BLOCKED);
    assert_int_equal(addr_cidr_class(AF_UNIX, b, 8, NULL), ADDR_CIDR_BLOCKED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_mapped),
        cmocka_unit_test(test_embedded),
        cmocka_unit_test(test_unknown_family),
        cmocka_unit_test(test_cidr_blocked),
        cmocka_unit_test(test_cidr_partial_and_clear),
        cmocka_unit_test(test_cidr_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
