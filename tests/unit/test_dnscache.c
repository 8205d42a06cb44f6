/* Unit tests for proxy/dnscache: TTL caps, negative entries, expiry on the
 * caller's clock, case and trailing-dot folding, the size bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxy/dnscache.h"

static const char NOT_FOUND[] = "name not found";

static void res_v4(struct dns_result *r, const char *a, const char *b)
{
    memset(r, 0, sizeof(*r));
    const char *ips[2] = {a, b};
    for (size_t i = 0; i < 2 && ips[i]; i++) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&r->addrs[r->n++];
        sin->sin_family = AF_INET;
        sin->sin_port = htons(1);
        assert_int_equal(inet_pton(AF_INET, ips[i], &sin->sin_addr), 1);
    }
}

static const char *ip_of(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    if (ss->ss_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, (socklen_t)cap);
    return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, (socklen_t)cap);
}

static void test_positive_kept_for_ttl(void **state)
{
    (void)state;
    struct dnscache *c = dnscache_new(8, 60);
    struct dns_result r, got;
    char ip[64];
    assert_non_null(c);
    res_v4(&r, "192.0.2.1", "192.0.2.2");
    assert_int_equal(dnscache_put(c, "One.Test.", &r, 10, 1000), 1);
    /* any case, with or without the dot; the port is the asker's */
    memset(&got, 0, sizeof(got));
    assert_true(dnscache_get(c, "one.test", 443, 1000 + 9999, &got));
    assert_int_equal(got.status, 0);
    assert_int_equal(got.n, 2);
    assert_string_equal(ip_of(&got.addrs[0], ip, sizeof(ip)), "192.0.2.1");
    assert_string_equal(ip_of(&got.addrs[1], ip, sizeof(ip)), "192.0.2.2");
    assert_int_equal(ntohs(((struct sockaddr_in *)&got.addrs[0])->sin_port), 443);
    assert_true(dnscache_get(c, "ONE.TEST.", 80, 1000, &got));
    /* at exactly TTL it is gone, and dropped */
    assert_false(dnscache_get(c, "one.test", 443, 1000 + 10000, &got));
    struct dnscache_stats st;
    dnscache_stats(c, &st);
    assert_int_equal(st.size, 0);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.hits, 2);
    dnscache_free(c);
}

static void test_ttl_capped_and_zero_not_kept(void **state)
{
    (void)state;
    struct dnscache *c = dnscache_new(8, 60);
    struct dns_result r, got;
    res_v4(&r, "192.0.2.1", NULL);
    assert_int_equal(dnscache_put(c, "long.test", &r, 86400, 0), 1);
    assert_true(dnscache_get(c, "long.test", 1, 59999, &got));
    assert_false(dnscache_get(c, "long.test", 1, 60000, &got)); /* capped at 60 s */
    assert_int_equal(dnscache_put(c, "zero.test", &r, 0, 0), 0);  /* TTL 0: never kept */
    assert_false(dnscache_get(c, "zero.test", 1, 0, &got));
    dnscache_free(c);
}

static void test_negative_brief(void **state)
{
    (void)state;
    struct dnscache *c = dnscache_new(8, 60);
    struct dns_result r = {.status = -ENOENT, .error = NOT_FOUND}, got;
    assert_int_equal(dnscache_put(c, "nx.test", &r, 3600, 0), 1);
    assert_true(dnscache_get(c, "nx.test", 1, DNSCACHE_NEG_TTL_S * 1000 - 1, &got));
    assert_int_equal(got.status, -ENOENT);
    assert_int_equal(got.n, 0);
    assert_ptr_equal(got.error, NOT_FOUND);
    assert_false(dnscache_get(c, "nx.test", 1, DNSCACHE_NEG_TTL_S * 1000, &got));
    dnscache_free(c);
    /* a cap below 5 s caps negative entries too */
    c = dnscache_new(8, 2);
    assert_int_equal(dnscache_put(c, "nx.test", &r, 0, 0), 1);
    assert_true(dnscache_get(c, "nx.test", 1, 1999, &got));
    assert_false(dnscache_get(c, "nx.test", 1, 2000, &got));
    dnscache_free(c);
}

static void test_failures_not_kept(void **state)
{
    (void)state;
    struct dnscache *c = dnscache_new(8, 60);
    struct dns_result got;
    int bad[] = {-ETIMEDOUT, -EIO, -EMFILE, -ENOMEM};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct dns_result r = {.status = bad[i], .error = "x"};
        assert_int_equal(dnscache_put(c, "f.test", &r, 60, 0), 0);
        assert_false(dnscache_get(c, "f.test", 1, 0, &got));
    }
    /* "ok" without addresses is not an answer */
    struct dns_result empty = {.status = 0};
    assert_int_equal(dnscache_put(c, "f.test", &empty, 60, 0), 0);
    dnscache_free(c);
}

static void test_replace_and_v6(void **state)
{
    (void)state;
    struct dnscache *c = dnscache_new(8, 60);
    struct dns_result r, got;
    char ip[64];
    res_v4(&r, "192.0.2.1", NULL);
    assert_int_equal(dnscache_put(c, "x.test", &r, 60, 0), 1);
    memset(&r, 0, sizeof(r));
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&r.addrs[0];
    s6->sin6_family = AF_INET6;
    s6->sin6_scope_id = 7;
    assert_int_equal(inet_pton(AF_INET6, "fe80::1", &s6->sin6_addr), 1);
    r.n = 1;
    assert_int_equal(dnscache_put(c, "x.test", &r, 60, 0), 1); /* the newer answer wins */
    assert_true(dnscache_get(c, "x.test", 8443, 1, &got));
    assert_int_equal(got.n, 1);
    assert_string_equal(ip_of(&got.addrs[0], ip, sizeof(ip)), "fe80::1");
    assert_int_equal(((struct sockaddr_in6 *)&got.addrs[0])->sin6_scope_id, 7);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&got.addrs[0])->sin6_port), 8443);
    struct dnscache_stats st;
    dnscache_stats(c, &st);
    assert_int_equal(st.size, 1);
    dnscache_free(c);
}

static void test_bounded_lru(void **state)
{
    (void)state;
    struct dnscache *c = dnscache_new(4, 60);
    struct dns_result r, got;
    char name[32];
    res_v4(&r, "192.0.2.1", NULL);
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "h%d.test", i);
        assert_int_equal(dnscache_put(c, name, &r, 60, 0), 1);
        if (i == 50) /* keep h0 in use: it is never the least recent */
            assert_false(dnscache_get(c, "h0.test", 1, 0, &got));
    }
    struct dnscache_stats st;
    dnscache_stats(c, &st);
    assert_int_equal(st.size, 4);
    assert_int_equal(st.cap, 4);
    assert_int_equal(st.evictions, 96);
    assert_true(dnscache_get(c, "h99.test", 1, 0, &got));
    assert_true(dnscache_get(c, "h96.test", 1, 0, &got));
    assert_false(dnscache_get(c, "h95.test", 1, 0, &got));
    dnscache_free(c);
}

static void test_bad_input(void **state)
{
    (void)state;
    char longname[300];
    struct dns_result r, got;
    assert_null(dnscache_new(0, 60));
    assert_null(dnscache_new(4, 0));
    struct dnscache *c = dnscache_new(4, 60);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    res_v4(&r, "192.0.2.1", NULL);
    assert_int_equal(dnscache_put(c, longname, &r, 60, 0), -EINVAL);
    assert_false(dnscache_get(c, longname, 1, 0, &got));
    assert_int_equal(dnscache_put(c, "", &r, 60, 0), -EINVAL);
    assert_int_equal(dnscache_put(c, ".", &r, 60, 0), -EINVAL);
    dnscache_free(c);
    dnscache_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positive_kept_for_ttl),
        cmocka_unit_test(test_ttl_capped_and_zero_not_kept),
        cmocka_unit_test(test_negative_brief),
        cmocka_unit_test(test_failures_not_kept),
        cmocka_unit_test(test_replace_and_v6),
        cmocka_unit_test(test_bounded_lru),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
