/* Unit tests for sandbox/netns (address plan, host-route overlap),
 * sandbox/fence (the ruleset text) and sandbox/rtnl (message building). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "sandbox/sandbox_int.h"

static struct in_addr ip4(const char *s)
{
    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, s, &a), 1);
    return a;
}

static void str4(struct in_addr a, char *out)
{
    inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
}

static void test_slot_plan(void **state)
{
    (void)state;
    struct netns_slot s;
    char h[INET_ADDRSTRLEN], c[INET_ADDRSTRLEN], v6[INET6_ADDRSTRLEN];
    assert_int_equal(netns_slot_plan(ip4("10.200.0.0"), 16, 0, &s), 0);
    str4(s.host4, h);
    str4(s.child4, c);
    assert_string_equal(h, "10.200.0.1");
    assert_string_equal(c, "10.200.0.2");
    assert_string_equal(s.host_ifname, "cdn0h");
    inet_ntop(AF_INET6, &s.child6, v6, sizeof(v6));
    assert_string_equal(v6, "fd63:6f72:646e::2");

    assert_int_equal(netns_slot_plan(ip4("10.200.0.0"), 16, 65, &s), 0);
    str4(s.host4, h);
    assert_string_equal(h, "10.200.1.5"); /* 65 * 4 = 260 = 1.4, +1 */
    inet_ntop(AF_INET6, &s.host6, v6, sizeof(v6));
    assert_string_equal(v6, "fd63:6f72:646e:41::1");
    assert_string_equal(s.host_ifname, "cdn65h");

    /* A pool address that is not aligned is masked. */
    assert_int_equal(netns_slot_plan(ip4("10.200.3.7"), 16, 0, &s), 0);
    str4(s.host4, h);
    assert_string_equal(h, "10.200.0.1");
}

static void test_slot_bounds(void **state)
{
    (void)state;
    struct netns_slot s;
    assert_int_equal(netns_pool_slots(16), 16384);
    assert_int_equal(netns_pool_slots(28), 4);
    assert_int_equal(netns_pool_slots(8), 65536); /* capped: v6 /64s need 16 bits */
    assert_int_equal(netns_pool_slots(7), 0);
    assert_int_equal(netns_pool_slots(29), 0);
    assert_int_equal(netns_slot_plan(ip4("10.200.0.0"), 28, 3, &s), 0);
    assert_int_equal(netns_slot_plan(ip4("10.200.0.0"), 28, 4, &s), -ERANGE);
    assert_int_equal(netns_slot_plan(ip4("10.200.0.0"), 30, 0, &s), -ERANGE);
}

static struct netns_prefix pfx4(const char *a, uint8_t len)
{
    struct netns_prefix p = {.family = AF_INET, .len = len};
    struct in_addr x = ip4(a);
    memcpy(p.addr, &x, 4);
    return p;
}

static void test_slot_free(void **state)
{
    (void)state;
    struct netns_slot s;
    assert_int_equal(netns_slot_plan(ip4("10.200.0.0"), 16, 1, &s), 0); /* 10.200.0.4/30 */
    struct netns_prefix host[4];
    host[0] = pfx4("0.0.0.0", 0);        /* default route: ignored */
    host[1] = pfx4("192.168.1.0", 24);
    assert_true(netns_slot_free(&s, host, 2));
    host[2] = pfx4("10.200.0.0", 16);    /* a VPN using the whole pool */
    assert_false(netns_slot_free(&s, host, 3));
    host[2] = pfx4("10.200.0.6", 32);    /* a host address inside the /30 */
    assert_false(netns_slot_free(&s, host, 3));
    host[2] = pfx4("10.200.0.8", 30);    /* the next slot: no overlap */
    assert_true(netns_slot_free(&s, host, 3));
    host[2] = pfx4("10.0.0.0", 8);
    assert_false(netns_slot_free(&s, host, 3));
    struct netns_prefix v6 = {.family = AF_INET6, .len = 48};
    inet_pton(AF_INET6, "fd63:6f72:646e::", v6.addr);
    assert_false(netns_slot_free(&s, &v6, 1));
    inet_pton(AF_INET6, "fd63:6f72:646f::", v6.addr);
    assert_true(netns_slot_free(&s, &v6, 1));
}

static void test_fence_monitored(void **state)
{
    (void)state;
    char buf[4096];
    struct fence_opts o = {.proxy4 = ip4("10.200.0.1"), .proxy_port = 3128,
                           .nflog_group = 7, .monitored = true};
    int n = fence_ruleset(&o, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(buf));
    assert_non_null(strstr(buf, "table inet cordon {"));
    assert_non_null(strstr(buf, "type filter hook output priority filter; policy accept;"));
    assert_non_null(strstr(buf, "oifname \"lo\" fib daddr type local accept"));
    /* bound to lo, sent elsewhere: the kernel refuses at once, logged */
    assert_non_null(strstr(buf, "oifname \"lo\" meta l4proto tcp log prefix \"refused\""));
    assert_non_null(strstr(buf, "ct state established,related accept"));
    assert_non_null(strstr(buf, "ip daddr 10.200.0.1 tcp dport 3128 accept"));
    /* TCP: held for the monitor, kernel reset on retransmission. */
    assert_non_null(strstr(buf, "log prefix \"held\" group 7 drop"));
    assert_non_null(strstr(buf, "@seen4 reject with tcp reset"));
    assert_non_null(strstr(buf, "@seen6 reject with tcp reset"));
    /* UDP and the rest: logged and refused at once. */
    assert_non_null(strstr(buf, "meta l4proto udp log prefix \"refused\" group 7 reject with "
                                "icmpx type port-unreachable"));
    assert_non_null(strstr(buf, "reject with icmpx type admin-prohibited"));
    /* The accepts come before anything that refuses. */
    assert_true(strstr(buf, "tcp dport 3128 accept") < strstr(buf, "jump tcp_bypass"));
    /* Too small a buffer is an error, never a truncated ruleset. */
    assert_int_equal(fence_ruleset(&o, buf, 100), -ENOSPC);
}

static void test_fence_reject_only(void **state)
{
    (void)state;
    char buf[4096];
    struct fence_opts o = {.proxy4 = ip4("10.200.1.5"), .proxy_port = 8080, .monitored = false};
    assert_true(fence_ruleset(&o, buf, sizeof(buf)) > 0);
    assert_null(strstr(buf, "log "));
    assert_null(strstr(buf, "set seen4"));
    assert_non_null(strstr(buf, "ip daddr 10.200.1.5 tcp dport 8080 accept"));
    assert_non_null(strstr(buf, "meta l4proto tcp reject with tcp reset"));
    assert_non_null(strstr(buf, "meta l4proto udp reject with icmpx type port-unreachable"));
}

static void test_rtnl_msg(void **state)
{
    (void)state;
    struct rtnl_msg m;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = 3};
    rtnl_msg_init(&m, RTM_NEWLINK, NLM_F_CREATE, &ifi, sizeof(ifi));
    assert_int_equal(m.err, 0);
    assert_int_equal(m.u.h.nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE);
    size_t base = m.u.h.nlmsg_len;
    rtnl_attr_str(&m, IFLA_IFNAME, "cdn1h");
    assert_int_equal(m.u.h.nlmsg_len, base + RTA_ALIGN(RTA_LENGTH(6)));
    size_t nest = rtnl_nest_begin(&m, IFLA_LINKINFO);
    rtnl_attr_str(&m, IFLA_INFO_KIND, "veth");
    rtnl_nest_end(&m, nest);
    const struct rtattr *a = (const struct rtattr *)(m.u.buf + nest);
    assert_int_equal(a->rta_type, IFLA_LINKINFO);
    assert_int_equal(a->rta_len, RTA_LENGTH(RTA_ALIGN(RTA_LENGTH(5))));
    /* Overflow is sticky and reported, never written past the buffer. */
    char big[2048];
    memset(big, 'x', sizeof(big));
    rtnl_attr(&m, IFLA_IFALIAS, big, sizeof(big));
    assert_int_equal(m.err, -ENOSPC);
    struct rtnl r = {.fd = -1};
    assert_int_equal(rtnl_talk(&r, &m), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_plan),        cmocka_unit_test(test_slot_bounds),
        cmocka_unit_test(test_slot_free),        cmocka_unit_test(test_fence_monitored),
        cmocka_unit_test(test_fence_reject_only), cmocka_unit_test(test_rtnl_msg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
