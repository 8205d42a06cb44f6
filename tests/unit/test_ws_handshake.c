/* Unit tests for ws/handshake (RFC 6455 §4.2) and http_query_get. */
#include <errno.h>
#include <llhttp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/server.h"
#include "ws/handshake.h"

static void test_accept_key_rfc_example(void **state)
{
    char out[WS_ACCEPT_LEN + 1];
    (void)state;
    /* RFC 6455 §1.3 */
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ", 22, out), -EINVAL);
    assert_int_equal(ws_accept_key("!!!!!!!!!!!!!!!!!!!!!!==", 24, out), -EINVAL);
}

static void add(struct http_req *r, const char *n, const char *v)
{
    r->headers[r->nheaders].name = n;
    r->headers[r->nheaders].name_len = strlen(n);
    r->headers[r->nheaders].value = v;
    r->headers[r->nheaders].value_len = strlen(v);
    r->nheaders++;
}

static void good(struct http_req *r)
{
    memset(r, 0, sizeof(*r));
    r->method = HTTP_GET;
    add(r, "upgrade", "WebSocket");
    add(r, "Connection", "keep-alive, Upgrade");
    add(r, "Sec-WebSocket-Version", "13");
    add(r, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
}

static void test_check(void **state)
{
    struct http_req r;
    char acc[WS_ACCEPT_LEN + 1];
    const char *why = NULL;
    (void)state;
    good(&r);
    assert_int_equal(ws_handshake_check(&r, acc, &why), 0);
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    good(&r);
    r.method = HTTP_POST;
    assert_int_equal(ws_handshake_check(&r, acc, &why), -EINVAL);
    good(&r);
    r.headers[0].value = "h2c";
    assert_int_equal(ws_handshake_check(&r, acc, &why), -EINVAL);
    good(&r);
    r.headers[1].value = "keep-alive";
    assert_int_equal(ws_handshake_check(&r, acc, &why), -EINVAL);
    good(&r);
    r.headers[2].value = "8";
    assert_int_equal(ws_handshake_check(&r, acc, &why), -EPROTONOSUPPORT);
    good(&r);
    r.nheaders = 3; /* no key */
    assert_int_equal(ws_handshake_check(&r, acc, &why), -EINVAL);
    assert_non_null(why);

    char resp[256];
    int n = ws_handshake_response(acc, resp, sizeof(resp));
    assert_true(n > 0);
    assert_non_null(strstr(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_int_equal(ws_handshake_response(acc, resp, 20), -ENOSPC);
}

static void test_tokens(void **state)
{
    (void)state;
    assert_true(ws_header_has_token("Upgrade", "upgrade"));
    assert_true(ws_header_has_token(" keep-alive ,  Upgrade  ", "upgrade"));
    assert_false(ws_header_has_token("upgrades", "upgrade"));
    assert_false(ws_header_has_token("", "upgrade"));
    assert_false(ws_header_has_token(",,", "upgrade"));
}

static void test_query(void **state)
{
    char v[16];
    const char *q = "pty=1&since=12&empty&x=a%20b+c&bad=%zz&long=0123456789abcdefghij";
    size_t ql = strlen(q);
    (void)state;
    assert_int_equal(http_query_get(q, ql, "pty", v, sizeof(v)), 1);
    assert_string_equal(v, "1");
    assert_int_equal(http_query_get(q, ql, "since", v, sizeof(v)), 2);
    assert_string_equal(v, "12");
    assert_int_equal(http_query_get(q, ql, "empty", v, sizeof(v)), 0);
    assert_string_equal(v, "");
    assert_int_equal(http_query_get(q, ql, "x", v, sizeof(v)), 5);
    assert_string_equal(v, "a b c");
    assert_int_equal(http_query_get(q, ql, "bad", v, sizeof(v)), -EINVAL);
    assert_int_equal(http_query_get(q, ql, "long", v, sizeof(v)), -ENOSPC);
    assert_int_equal(http_query_get(q, ql, "nope", v, sizeof(v)), -ENOENT);
    assert_int_equal(http_query_get(q, ql, "pt", v, sizeof(v)), -ENOENT);
    assert_int_equal(http_query_get("a=%4", 4, "a", v, sizeof(v)), -EINVAL);
    assert_int_equal(http_query_get("", 0, "a", v, sizeof(v)), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key_rfc_example),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_query),
    };
    return cmocka_run_group_tests_name("ws/handshake+http query", tests, NULL, NULL);
}
