/* Unit tests for proxy/target: CONNECT authorities and absolute-form URIs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/target.h"

static int auth(const char *s, struct proxy_target *t)
{
    const char *why = NULL;
    return target_parse_authority(s, strlen(s), t, &why);
}

static int absf(const char *s, struct proxy_target *t)
{
    const char *why = NULL;
    return target_parse_absolute(s, strlen(s), t, &why);
}

static void test_authority(void **st)
{
    struct proxy_target t;
    assert_int_equal(auth("Example.COM:443", &t), 0);
    assert_string_equal(t.host, "example.com");
    assert_int_equal(t.port, 443);
    assert_int_equal(auth("[2001:db8::1]:8443", &t), 0);
    assert_string_equal(t.host, "2001:db8::1");
    assert_int_equal(t.port, 8443);
    assert_int_equal(auth("example.com.:80", &t), 0);
    assert_string_equal(t.host, "example.com");
    assert_true(auth("example.com", &t) < 0);          /* no port */
    assert_true(auth("example.com:0", &t) < 0);
    assert_true(auth("example.com:65536", &t) < 0);
    assert_true(auth("example.com:44x", &t) < 0);
    assert_true(auth(":443", &t) < 0);
    assert_true(auth("user@example.com:443", &t) < 0);
    assert_true(auth("exa mple.com:443", &t) < 0);
    assert_true(auth("[::1:443", &t) < 0);
    assert_true(auth("a/b:443", &t) < 0);
}

static void test_legacy_ipv4(void **st)
{
    struct proxy_target t;
    static const char *const forms[] = {"127.1:80", "2130706433:80", "0x7f000001:80",
                                        "0177.0.0.1:80", "127.0.1:80", "127.1.:80"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        assert_int_equal(auth(forms[i], &t), 0);
        assert_string_equal(t.host, "127.0.0.1");
    }
    assert_int_equal(absf("http://0x7f.1/x", &t), 0);
    assert_string_equal(t.host, "127.0.0.1");
    /* names and dotted quads stay as written */
    assert_int_equal(auth("10.1.2.3:80", &t), 0);
    assert_string_equal(t.host, "10.1.2.3");
    assert_int_equal(auth("1.example:80", &t), 0);
    assert_string_equal(t.host, "1.example");
    assert_int_equal(auth("0x7f.example:80", &t), 0);
    assert_string_equal(t.host, "0x7f.example");
    /* not an address for inet_aton either: left for DNS to refuse */
    assert_int_equal(auth("1.2.3.4.5:80", &t), 0);
    assert_string_equal(t.host, "1.2.3.4.5");
}

static void test_absolute(void **st)
{
    struct proxy_target t;
    assert_int_equal(absf("http://a.test/x/y?q=1", &t), 0);
    assert_string_equal(t.host, "a.test");
    assert_int_equal(t.port, 80);
    assert_int_equal(t.scheme, TARGET_HTTP);
    assert_int_equal(t.path_len, strlen("/x/y?q=1"));
    assert_int_equal(absf("HTTPS://a.test:8443", &t), 0);
    assert_int_equal(t.port, 8443);
    assert_int_equal(t.scheme, TARGET_HTTPS);
    assert_memory_equal(t.path, "/", 1);
    assert_int_equal(absf("http://[::1]:81/", &t), 0);
    assert_string_equal(t.host, "::1");
    assert_int_equal(absf("ws://a/", &t), 0);
    assert_int_equal(t.scheme, TARGET_WS);
    assert_true(absf("/relative", &t) < 0);
    assert_true(absf("ftp://a/", &t) < 0);
    assert_true(absf("http:///x", &t) < 0);
    assert_true(absf("http://u:p@a/", &t) < 0);
    assert_true(absf("http://a:99999/", &t) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authority),
        cmocka_unit_test(test_legacy_ipv4),
        cmocka_unit_test(test_absolute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
