/* Unit tests for http/message: strict framing, smuggling refusals, keep-alive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http/message.h"

static enum http_step head_of(const char *s, struct http_parser *hp, struct http_head *h)
{
    http_parser_init(hp, HTTP_REQUEST_PARSER);
    return http_parse_head(hp, s, strlen(s), h);
}

static void test_simple_get(void **st)
{
    struct http_parser hp;
    struct http_head h;
    const char *s = "GET http://a.test/x?y=1 HTTP/1.1\r\nHost: a.test\r\nX-A:  v  \r\n\r\n";
    assert_int_equal(head_of(s, &hp, &h), HTTP_HEAD_DONE);
    assert_int_equal(h.len, strlen(s));
    assert_int_equal(h.method, HTTP_GET);
    assert_int_equal(h.target_len, strlen("http://a.test/x?y=1"));
    assert_memory_equal(h.target, "http://a.test/x?y=1", h.target_len);
    assert_int_equal(h.n_headers, 2);
    const struct http_hdr *x = http_head_find(&h, "x-a");
    assert_non_null(x);
    assert_int_equal(x->value_len, 1);
    assert_true(h.keep_alive);
    assert_false(h.has_body);
    assert_true(http_parser_msg_done(&hp));
}

static void test_incomplete_and_too_large(void **st)
{
    struct http_parser hp;
    struct http_head h;
    assert_int_equal(head_of("GET http://a/ HTTP/1.1\r\nHost: a\r\n", &hp, &h), HTTP_NEED_MORE);
    static char big[HTTP_HEAD_MAX + 100];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    http_parser_init(&hp, HTTP_REQUEST_PARSER);
    assert_int_equal(http_parse_head(&hp, big, sizeof(big), &h), HTTP_TOO_LARGE);
}

static void test_smuggling_refused(void **st)
{
    struct http_parser hp;
    struct http_head h;
    /* CL + TE */
    assert_int_equal(head_of("POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n", &hp, &h), HTTP_ERROR);
    /* duplicate CL */
    assert_int_equal(head_of("POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                             "Content-Length: 6\r\n\r\n", &hp, &h), HTTP_ERROR);
    /* obs-fold */
    assert_int_equal(head_of("GET http://a/ HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", &hp, &h),
                     HTTP_ERROR);
    assert_non_null(http_parser_error(&hp));
    /* bad CL */
    assert_int_equal(head_of("POST http://a/ HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", &hp, &h), HTTP_ERROR);
    /* space before colon */
    assert_int_equal(head_of("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &hp, &h), HTTP_ERROR);
    /* Transfer-Encoding in HTTP/1.0 (RFC 9112 §6.1) */
    assert_int_equal(head_of("POST http://a/ HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked"
                             "\r\n\r\n", &hp, &h), HTTP_ERROR);
    assert_int_equal(head_of("POST http://a/ HTTP/1.0\r\nHost: a\r\nContent-Length: 1\r\n\r\n",
                             &hp, &h), HTTP_HEAD_DONE);
    /* more than one Host line (RFC 9112 §3.2), in any case */
    assert_int_equal(head_of("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n", &hp, &h),
                     HTTP_ERROR);
    assert_string_equal(http_parser_error(&hp), "more than one Host header");
    assert_int_equal(head_of("GET / HTTP/1.1\r\nHost: a\r\nX-Host: b\r\n\r\n", &hp, &h),
                     HTTP_HEAD_DONE);
}

static void test_chunked_body_and_pipelining(void **st)
{
    struct http_parser hp;
    struct http_head h;
    const char *s = "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n0\r\n\r\nGET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(head_of(s, &hp, &h), HTTP_HEAD_DONE);
    assert_true(h.has_body);
    assert_false(http_parser_msg_done(&hp));
    const char *body = s + h.len;
    size_t used = 0;
    assert_int_equal(http_parse_body(&hp, body, strlen(body), &used), HTTP_MSG_DONE);
    assert_int_equal(used, strlen("5\r\nhello\r\n0\r\n\r\n"));
    /* next message parses from where the body ended */
    http_parser_init(&hp, HTTP_REQUEST_PARSER);
    assert_int_equal(http_parse_head(&hp, body + used, strlen(body + used), &h), HTTP_HEAD_DONE);
}

static void test_bad_chunk(void **st)
{
    struct http_parser hp;
    struct http_head h;
    const char *s = "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(head_of(s, &hp, &h), HTTP_HEAD_DONE);
    size_t used;
    assert_int_equal(http_parse_body(&hp, "zz\r\n", 4, &used), HTTP_ERROR);
}

static enum http_step chunked_body(const char *body, size_t *used)
{
    static struct http_parser hp;
    static struct http_head h;
    const char *s = "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    http_parser_init(&hp, HTTP_REQUEST_PARSER);
    assert_int_equal(http_parse_head(&hp, s, strlen(s), &h), HTTP_HEAD_DONE);
    return http_parse_body(&hp, body, strlen(body), used);
}

static void test_chunk_guard(void **st)
{
    size_t used;
    /* llhttp 8.1 alone accepts any two bytes after chunk data */
    assert_int_equal(chunked_body("5\r\nhelloXX0\r\n\r\n", &used), HTTP_ERROR);
    assert_int_equal(chunked_body("5\r\nhello\r\n0\r\n\r\n", &used), HTTP_MSG_DONE);
    assert_int_equal(chunked_body("5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", &used), HTTP_MSG_DONE);
    assert_int_equal(chunked_body("5\nhello\r\n0\r\n\r\n", &used), HTTP_ERROR);
    assert_int_equal(chunked_body("10000000000000000005\r\nhello\r\n0\r\n\r\n", &used), HTTP_ERROR);
    /* split across calls */
    static struct http_parser hp;
    static struct http_head h;
    const char *s = "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    http_parser_init(&hp, HTTP_REQUEST_PARSER);
    assert_int_equal(http_parse_head(&hp, s, strlen(s), &h), HTTP_HEAD_DONE);
    assert_int_equal(http_parse_body(&hp, "3\r\nab", 5, &used), HTTP_NEED_MORE);
    assert_int_equal(http_parse_body(&hp, "c\r", 2, &used), HTTP_NEED_MORE);
    assert_int_equal(http_parse_body(&hp, "\n0\r\n\r\n", 6, &used), HTTP_MSG_DONE);
}

static void test_connect_and_upgrade(void **st)
{
    struct http_parser hp;
    struct http_head h;
    assert_int_equal(head_of("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n\x16\x03", &hp, &h),
                     HTTP_HEAD_DONE);
    assert_int_equal(h.method, HTTP_CONNECT);
    assert_true(http_parser_msg_done(&hp));
    assert_int_equal(head_of("GET http://a/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                             "Connection: keep-alive, Upgrade\r\n\r\n", &hp, &h), HTTP_HEAD_DONE);
    assert_true(h.upgrade);
}

static void test_response_framing(void **st)
{
    struct http_parser hp;
    size_t used;
    http_parser_init(&hp, HTTP_RESPONSE_PARSER);
    const char *r = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
    assert_int_equal(http_parse_body(&hp, r, strlen(r), &used), HTTP_MSG_DONE);
    assert_int_equal(used, strlen(r) - 5);
    assert_int_equal(hp.status, 200);
    /* HEAD response: Content-Length but no body */
    http_parser_init(&hp, HTTP_RESPONSE_PARSER);
    http_parser_expect_no_body(&hp, true);
    r = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    assert_int_equal(http_parse_body(&hp, r, strlen(r), &used), HTTP_MSG_DONE);
    /* close-delimited */
    http_parser_init(&hp, HTTP_RESPONSE_PARSER);
    r = "HTTP/1.0 200 OK\r\n\r\nabc";
    assert_int_equal(http_parse_body(&hp, r, strlen(r), &used), HTTP_NEED_MORE);
    assert_int_equal(http_parse_eof(&hp), HTTP_MSG_DONE);
    /* truncated CL body */
    http_parser_init(&hp, HTTP_RESPONSE_PARSER);
    r = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    assert_int_equal(http_parse_body(&hp, r, strlen(r), &used), HTTP_NEED_MORE);
    assert_int_equal(http_parse_eof(&hp), HTTP_ERROR);
    /* 101 */
    http_parser_init(&hp, HTTP_RESPONSE_PARSER);
    r = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi";
    assert_int_equal(http_parse_body(&hp, r, strlen(r), &used), HTTP_MSG_DONE);
    assert_int_equal(hp.status, 101);
    assert_int_equal(used, strlen(r) - 4);
    size_t ul;
    const char *u = http_parser_upgrade(&hp, &ul);
    assert_non_null(u);
    assert_int_equal(ul, 9);
    assert_memory_equal(u, "websocket", 9);
}

/* The response's Upgrade value, kept while streaming: byte by byte, over
 * two lines, per message, and NULL when too long. */
static void test_response_upgrade(void **st)
{
    struct http_parser hp;
    size_t used, ul;
    const char *r = "HTTP/1.1 101 Switching Protocols\r\nupGRADE: websocket\r\n"
                    "X-Upgrade: h2c\r\nUpgrade: x-other\r\n\r\n";
    http_parser_init(&hp, HTTP_RESPONSE_PARSER);
    enum http_step s = HTTP_NEED_MORE;
    for (size_t i = 0; i < strlen(r) && s == HTTP_NEED_MORE; i++)
        s = http_parse_body(&hp, r + i, 1, &used);
    assert_int_equal(s, HTTP_MSG_DONE);
    const char *u = http_parser_upgrade(&hp, &ul);
    assert_non_null(u);
    assert_int_equal(ul, strlen("websocket, x-other"));
    assert_memory_equal(u, "websocket, x-other", ul);
    /* none */
    http_parser_init(&hp, HTTP_RESPONSE_PARSER);
    r = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n";
    assert_int_equal(http_parse_body(&hp, r, strlen(r), &used), HTTP_MSG_DONE);
    assert_non_null(http_parser_upgrade(&hp, &ul));
    assert_int_equal(ul, 0);
    /* too long to keep */
    char big[400];
    snprintf(big, sizeof(big), "HTTP/1.1 101 S\r\nUpgrade: %0200d\r\n\r\n", 0);
    http_parser_init(&hp, HTTP_RESPONSE_PARSER);
    assert_int_equal(http_parse_body(&hp, big, strlen(big), &used), HTTP_MSG_DONE);
    assert_null(http_parser_upgrade(&hp, &ul));
    /* a new message starts empty */
    http_parser_init(&hp, HTTP_RESPONSE_PARSER);
    r = "HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(http_parse_body(&hp, r, strlen(r), &used), HTTP_MSG_DONE);
    http_parser_upgrade(&hp, &ul);
    assert_int_equal(ul, 3);
    http_parser_next(&hp);
    assert_int_equal(http_parse_body(&hp, r + used, strlen(r) - used, &used), HTTP_MSG_DONE);
    http_parser_upgrade(&hp, &ul);
    assert_int_equal(ul, 0);
}

static void test_token_list(void **st)
{
    assert_true(http_value_has_token("keep-alive, Upgrade", 19, "upgrade"));
    assert_false(http_value_has_token("upgraded", 8, "upgrade"));
    assert_true(http_value_has_token(" close ", 7, "close"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),        cmocka_unit_test(test_incomplete_and_too_large),
        cmocka_unit_test(test_smuggling_refused), cmocka_unit_test(test_chunked_body_and_pipelining),
        cmocka_unit_test(test_bad_chunk),         cmocka_unit_test(test_chunk_guard),         cmocka_unit_test(test_connect_and_upgrade),
        cmocka_unit_test(test_response_framing),
        cmocka_unit_test(test_response_upgrade),  cmocka_unit_test(test_token_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
