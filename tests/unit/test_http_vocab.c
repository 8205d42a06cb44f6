/* Unit tests for http/vocab: the strict head guard, chunk guard, status table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "http/vocab.h"

static long feed(const char *s, struct http_head_guard *g, const char **why)
{
    http_head_guard_init(g);
    *why = NULL;
    return http_head_guard_feed(g, s, strlen(s), why);
}

static void test_head_guard_ok(void **st)
{
    struct http_head_guard g;
    const char *why;
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY\n";
    long n = feed(s, &g, &why);
    assert_true(g.done);
    assert_int_equal(n, strlen(s) - 5);
    /* leading empty lines are skipped (RFC 9112 §2.2) */
    n = feed("\r\n\r\nGET / HTTP/1.1\r\n\r\n", &g, &why);
    assert_true(g.done);
    assert_int_equal(n, 22);
    /* split across feeds */
    http_head_guard_init(&g);
    assert_int_equal(http_head_guard_feed(&g, "GET / HTTP/1.1\r", 15, &why), 15);
    assert_false(g.done);
    assert_int_equal(http_head_guard_feed(&g, "\n\r", 2, &why), 2);
    assert_int_equal(http_head_guard_feed(&g, "\nX", 2, &why), 1);
    assert_true(g.done);
}

static void test_head_guard_refuses(void **st)
{
    struct http_head_guard g;
    const char *why;
    assert_int_equal(feed("GET / HTTP/1.1\nHost: a\r\n\r\n", &g, &why), -EINVAL);
    assert_non_null(strstr(why, "bare LF"));
    assert_int_equal(feed("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", &g, &why), -EINVAL);
    assert_non_null(strstr(why, "bare CR"));
    assert_int_equal(feed("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", &g, &why), -EINVAL);
    assert_non_null(strstr(why, "obs-fold"));
    assert_int_equal(feed("GET / HTTP/1.1\r\n\n", &g, &why), -EINVAL);
}

static void test_chunk_guard(void **st)
{
    struct chunk_guard g;
    memset(&g, 0, sizeof(g));
    const char *ok = "3\r\nabc\r\n0\r\n\r\n";
    assert_true(http_chunk_guard_feed(&g, ok, strlen(ok)));
    assert_true(http_chunk_guard_done(&g));
    memset(&g, 0, sizeof(g));
    const char *bad = "3\r\nabcXX0\r\n\r\n";
    assert_false(http_chunk_guard_feed(&g, bad, strlen(bad)));
    memset(&g, 0, sizeof(g));
    assert_false(http_chunk_guard_feed(&g, "zz\r\n", 4));
    /* sized: only once the first size line (extensions included) ended */
    memset(&g, 0, sizeof(g));
    assert_true(http_chunk_guard_feed(&g, "1", 1));
    assert_false(http_chunk_guard_sized(&g));
    assert_true(http_chunk_guard_feed(&g, "0;a=b\r", 6));
    assert_false(http_chunk_guard_sized(&g));
    assert_true(http_chunk_guard_feed(&g, "\n", 1));
    assert_true(http_chunk_guard_sized(&g));
    /* a trailer line never starts with whitespace (obs-fold) */
    memset(&g, 0, sizeof(g));
    assert_true(http_chunk_guard_feed(&g, "0\r\nX: a\r\n\r\n", 11));
    assert_true(http_chunk_guard_done(&g));
    memset(&g, 0, sizeof(g));
    assert_false(http_chunk_guard_feed(&g, "0\r\n X: a\r\n\r\n", 12));
    memset(&g, 0, sizeof(g));
    assert_false(http_chunk_guard_feed(&g, "0\r\n\tX: a\r\n\r\n", 12));
}

static void test_status_and_names(void **st)
{
    assert_string_equal(http_status_text(502), "Bad Gateway");
    assert_string_equal(http_status_text(431), "Request Header Fields Too Large");
    assert_string_equal(http_status_text(299), "Unknown");
    assert_true(http_name_ws_before_colon("Host ", 5));
    assert_false(http_name_ws_before_colon("Host", 4));
    assert_int_equal(http_hexval('f'), 15);
    assert_int_equal(http_hexval('g'), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_guard_ok),
        cmocka_unit_test(test_head_guard_refuses),
        cmocka_unit_test(test_chunk_guard),
        cmocka_unit_test(test_status_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
