/* Unit tests for execd/frame (client frames, server JSON frames) and
 * execd/sse (UTF-8 repair for event text). */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "execd/frame.h"
#include "execd/sse.h"

static struct frame_in parse_text(const char *s)
{
    struct frame_in f;
    frame_parse(1, (const uint8_t *)s, strlen(s), &f);
    return f;
}

static void test_binary_stdin(void **state)
{
    struct frame_in f;
    const uint8_t msg[] = {0x00, 'l', 's', '\n'};
    (void)state;
    frame_parse(0, msg, sizeof(msg), &f);
    assert_int_equal(f.kind, FRAME_STDIN);
    assert_int_equal(f.len, 3);
    assert_memory_equal(f.data, "ls\n", 3);
    frame_release(&f);
    /* just the channel byte: empty stdin, fine */
    frame_parse(0, msg, 1, &f);
    assert_int_equal(f.kind, FRAME_STDIN);
    assert_int_equal(f.len, 0);
    frame_release(&f);
}

static void test_binary_invalid(void **state)
{
    struct frame_in f;
    const uint8_t other[] = {0x01, 'x'};
    (void)state;
    frame_parse(0, other, sizeof(other), &f);
    assert_int_equal(f.kind, FRAME_INVALID);
    assert_non_null(f.error);
    frame_release(&f);
    frame_parse(0, other, 0, &f);
    assert_int_equal(f.kind, FRAME_INVALID);
    frame_release(&f);
}

static void test_text_frames(void **state)
{
    struct frame_in f;
    (void)state;
    f = parse_text("{\"type\":\"resize\",\"cols\":120,\"rows\":40}");
    assert_int_equal(f.kind, FRAME_RESIZE);
    assert_int_equal(f.cols, 120);
    assert_int_equal(f.rows, 40);
    frame_release(&f);
    f = parse_text("{\"type\":\"signal\",\"signal\":\"SIGINT\"}");
    assert_int_equal(f.kind, FRAME_SIGNAL);
    assert_int_equal(f.signo, SIGINT);
    frame_release(&f);
    f = parse_text("{\"type\":\"signal\",\"signal\":\"TERM\"}");
    assert_int_equal(f.signo, SIGTERM);
    frame_release(&f);
    f = parse_text("{\"type\":\"signal\",\"signal\":9}");
    assert_int_equal(f.signo, SIGKILL);
    frame_release(&f);
    f = parse_text("{\"type\":\"ping\"}");
    assert_int_equal(f.kind, FRAME_PING);
    frame_release(&f);
    f = parse_text("{\"type\":\"stdin\",\"data\":\"a\\u0000b\"}");
    assert_int_equal(f.kind, FRAME_STDIN);
    assert_int_equal(f.len, 3);
    assert_memory_equal(f.data, "a\0b", 3);
    frame_release(&f);
}

static void test_text_invalid(void **state)
{
    static const char *bad[] = {
        "",
        "nonsense",
        "[1]",
        "{}",
        "{\"type\":1}",
        "{\"type\":\"bogus\"}",
        "{\"type\":\"resize\",\"cols\":0,\"rows\":10}",
        "{\"type\":\"resize\",\"cols\":80,\"rows\":70000}",
        "{\"type\":\"resize\",\"cols\":\"80\",\"rows\":24}",
        "{\"type\":\"signal\",\"signal\":\"SIGNOPE\"}",
        "{\"type\":\"signal\",\"signal\":0}",
        "{\"type\":\"signal\"}",
        "{\"type\":\"stdin\",\"data\":5}",
        "{\"type\":\"ping\",\"type\":\"ping\"}", /* duplicate keys */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct frame_in f = parse_text(bad[i]);
        if (f.kind != FRAME_INVALID)
            fail_msg("accepted: %s", bad[i]);
        assert_non_null(f.error);
        frame_release(&f);
    }
}

static void test_replay_head(void **state)
{
    uint8_t h[FRAME_REPLAY_HEAD];
    (void)state;
    frame_replay_head(h, 0x0102030405060708ull);
    const uint8_t want[] = {3, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(h, want, sizeof(want));
}

static void test_server_json(void **state)
{
    json_error_t e;
    (void)state;
    char *s = frame_connected("id-1", "pty", 100, 40, 10, 1);
    json_t *o = json_loads(s, 0, &e);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "connected");
    assert_int_equal(json_integer_value(json_object_get(o, "output_offset")), 100);
    assert_int_equal(json_integer_value(json_object_get(o, "replay_offset")), 40);
    assert_int_equal(json_integer_value(json_object_get(o, "lost_bytes")), 10);
    json_decref(o);
    free(s);
    s = frame_exit(0, NULL);
    assert_string_equal(s, "{\"type\":\"exit\",\"exit_code\":0}");
    free(s);
    s = frame_exit(-1, "SIGKILL");
    assert_string_equal(s, "{\"type\":\"exit\",\"exit_code\":-1,\"signal\":\"SIGKILL\"}");
    free(s);
    s = frame_lost(10, 25);
    o = json_loads(s, 0, &e);
    assert_string_equal(json_string_value(json_object_get(o, "code")), "OUTPUT_LOST");
    assert_int_equal(json_integer_value(json_object_get(o, "lost_bytes")), 15);
    json_decref(o);
    free(s);
    assert_string_equal(frame_signal_name(SIGINT), "SIGINT");
    assert_int_equal(frame_signal_parse("nope"), -EINVAL);
}

static void test_utf8_cut(void **state)
{
    (void)state;
    const uint8_t euro[] = {'a', 0xE2, 0x82, 0xAC};
    assert_int_equal(sse_utf8_cut(euro, 4), 4);
    assert_int_equal(sse_utf8_cut(euro, 3), 1); /* hold back the split sequence */
    assert_int_equal(sse_utf8_cut(euro, 2), 1);
    assert_int_equal(sse_utf8_cut(euro, 1), 1);
    const uint8_t bad[] = {'a', 0xFF};
    assert_int_equal(sse_utf8_cut(bad, 2), 2); /* invalid is not "unfinished" */
    const uint8_t four[] = {0xF0, 0x9F, 0x98};
    assert_int_equal(sse_utf8_cut(four, 3), 0);
}

static void test_utf8_repair(void **state)
{
    (void)state;
    const uint8_t in[] = {'o', 'k', 0xFF, 0xC0, 0x80, 0xED, 0xA0, 0x80, 0xE2, 0x82, 0xAC};
    json_t *s = sse_text(in, sizeof(in));
    /* 0xFF, overlong C0 80, surrogate ED A0 80 -> U+FFFD each byte; euro kept */
    const char *want = "ok\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                       "\xEF\xBF\xBD\xE2\x82\xAC";
    assert_string_equal(json_string_value(s), want);
    json_decref(s);
    size_t len;
    char *ev = sse_event(json_pack("{s:s}", "type", "init"), &len);
    assert_string_equal(ev, "data: {\"type\":\"init\"}\n\n");
    assert_int_equal(len, strlen(ev));
    free(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_stdin), cmocka_unit_test(test_binary_invalid),
        cmocka_unit_test(test_text_frames),  cmocka_unit_test(test_text_invalid),
        cmocka_unit_test(test_replay_head),  cmocka_unit_test(test_server_json),
        cmocka_unit_test(test_utf8_cut),     cmocka_unit_test(test_utf8_repair),
    };
    return cmocka_run_group_tests_name("execd/frame+sse", tests, NULL, NULL);
}
