/* Unit tests for ws/frame: the frame tracker (RFC 6455 §5.2 headers, §5.4
 * fragments, §5.5 control frames, §5.1 masking by direction), fed whole and
 * byte by byte, its refusals, and close frames built through wslay. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ws/frame.h"

/* Writes a frame header to out; returns its size. mask: a client's frame
 * (key 1,2,3,4). form 7/16/64 forces that length form (0: the minimal one). */
static size_t hdr(uint8_t *out, int fin, int rsv, int op, int mask, uint64_t len, int form)
{
    size_t n = 0;
    out[n++] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | op);
    uint8_t m = mask ? 0x80 : 0;
    if (form == 7 || (form == 0 && len < 126)) {
        out[n++] = (uint8_t)(m | len);
    } else if (form == 16 || (form == 0 && len <= 0xffff)) {
        out[n++] = m | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)(len >> (8 * i));
    }
    if (mask) {
        static const uint8_t key[4] = {1, 2, 3, 4};
        memcpy(out + n, key, 4);
        n += 4;
    }
    return n;
}

/* A whole frame: the header and len payload bytes. */
static size_t frame(uint8_t *out, int fin, int rsv, int op, int mask, uint64_t len, int form)
{
    size_t n = hdr(out, fin, rsv, op, mask, len, form);
    memset(out + n, 'x', (size_t)len);
    return n + (size_t)len;
}

static void test_whole_frames(void **state)
{
    (void)state;
    uint8_t b[70000];
    size_t n = 0;
    n += frame(b + n, 1, 0, WS_FRAME_TEXT, 0, 5, 0);
    n += frame(b + n, 1, 0, WS_FRAME_BINARY, 0, 0, 0);
    n += frame(b + n, 1, 0, WS_FRAME_BINARY, 0, 300, 0);   /* 16-bit length */
    n += frame(b + n, 1, 0, WS_FRAME_BINARY, 0, 65536, 0); /* 64-bit length */
    n += frame(b + n, 1, 0, WS_FRAME_PING, 0, 125, 0);
    n += frame(b + n, 1, 0, WS_FRAME_CLOSE, 0, 2, 0);
    struct ws_frame_track t;
    ws_frame_track_init(&t, false);
    assert_true(ws_frame_track_at_boundary(&t));
    assert_int_equal(ws_frame_track_feed(&t, b, n), 0);
    assert_true(ws_frame_track_at_boundary(&t));
    assert_int_equal(t.frames, 6);
    assert_int_equal(t.closes, 1);
    assert_null(t.err);
}

/* The same stream a byte at a time: a boundary exactly after each frame. */
static void test_byte_by_byte(void **state)
{
    (void)state;
    uint8_t b[1024];
    size_t ends[4], n = 0;
    n += frame(b + n, 1, 0, WS_FRAME_TEXT, 1, 3, 0);
    ends[0] = n;
    n += frame(b + n, 1, 0, WS_FRAME_BINARY, 1, 200, 0);
    ends[1] = n;
    n += frame(b + n, 1, 0, WS_FRAME_PONG, 1, 0, 0);
    ends[2] = n;
    n += frame(b + n, 1, 0, WS_FRAME_CLOSE, 1, 0, 0);
    ends[3] = n;
    struct ws_frame_track t;
    ws_frame_track_init(&t, true);
    size_t e = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ws_frame_track_feed(&t, b + i, 1), 0);
        bool at_end = i + 1 == ends[e];
        assert_int_equal(ws_frame_track_at_boundary(&t), at_end);
        if (at_end)
            assert_int_equal(t.frames, ++e);
    }
    assert_int_equal(e, 4);
    assert_int_equal(t.closes, 1);
}

/* §5.4: control frames between fragments; the message state follows. */
static void test_fragments(void **state)
{
    (void)state;
    uint8_t b[256];
    struct ws_frame_track t;
    ws_frame_track_init(&t, false);
    size_t n = frame(b, 0, 0, WS_FRAME_TEXT, 0, 4, 0);
    assert_int_equal(ws_frame_track_feed(&t, b, n), 0);
    assert_true(t.in_msg);
    assert_true(ws_frame_track_at_boundary(&t)); /* a control frame may come now */
    n = frame(b, 1, 0, WS_FRAME_PING, 0, 1, 0);
    assert_int_equal(ws_frame_track_feed(&t, b, n), 0);
    assert_true(t.in_msg);
    n = frame(b, 0, 0, WS_FRAME_CONT, 0, 4, 0);
    assert_int_equal(ws_frame_track_feed(&t, b, n), 0);
    assert_true(t.in_msg);
    n = frame(b, 1, 0, WS_FRAME_CONT, 0, 0, 0);
    assert_int_equal(ws_frame_track_feed(&t, b, n), 0);
    assert_false(t.in_msg);
    n = frame(b, 1, 0, WS_FRAME_BINARY, 0, 1, 0);
    assert_int_equal(ws_frame_track_feed(&t, b, n), 0);
    assert_int_equal(t.frames, 5);
    assert_null(t.err);
}

/* RSV bits belong to extensions (permessage-deflate sets RSV1). */
static void test_rsv_bits_pass(void **state)
{
    (void)state;
    uint8_t b[64];
    struct ws_frame_track t;
    ws_frame_track_init(&t, false);
    size_t n = frame(b, 1, 4, WS_FRAME_TEXT, 0, 7, 0);
    assert_int_equal(ws_frame_track_feed(&t, b, n), 0);
    assert_true(ws_frame_track_at_boundary(&t));
}

static void test_mid_frame(void **state)
{
    (void)state;
    uint8_t b[512];
    size_t n = frame(b, 1, 0, WS_FRAME_BINARY, 0, 256, 0);
    struct ws_frame_track t;
    ws_frame_track_init(&t, false);
    assert_int_equal(ws_frame_track_feed(&t, b, 1), 0); /* half a header */
    assert_false(ws_frame_track_at_boundary(&t));
    assert_int_equal(ws_frame_track_feed(&t, b + 1, 13), 0); /* header + 10 bytes */
    assert_false(ws_frame_track_at_boundary(&t));
    assert_int_equal(t.left, 246);
    assert_int_equal(ws_frame_track_feed(&t, b + 14, n - 14), 0);
    assert_true(ws_frame_track_at_boundary(&t));
    assert_int_equal(t.frames, 1);
}

/* Each violation stops tracking for good: no boundary, ever. */
static void expect_refused(bool from_client, const uint8_t *pre, size_t pn, const uint8_t *b,
                           size_t n)
{
    struct ws_frame_track t;
    ws_frame_track_init(&t, from_client);
    assert_int_equal(ws_frame_track_feed(&t, pre, pn), 0);
    assert_int_equal(ws_frame_track_feed(&t, b, n), -EPROTO);
    assert_non_null(t.err);
    assert_false(ws_frame_track_at_boundary(&t));
    uint8_t ok[8];
    size_t k = frame(ok, 1, 0, WS_FRAME_TEXT, from_client, 1, 0);
    assert_int_equal(ws_frame_track_feed(&t, ok, k), -EPROTO);
    assert_false(ws_frame_track_at_boundary(&t));
}

static void test_refusals(void **state)
{
    (void)state;
    uint8_t b[64], pre[64];
    size_t n, pn;
    n = frame(b, 1, 0, WS_FRAME_TEXT, 0, 1, 0);
    expect_refused(true, NULL, 0, b, n); /* §5.1: a client's frame unmasked */
    n = frame(b, 1, 0, WS_FRAME_TEXT, 1, 1, 0);
    expect_refused(false, NULL, 0, b, n); /* §5.1: a server's frame masked */
    for (int op = 3; op <= 0xf; op++) {
        if (op == WS_FRAME_CLOSE || op == WS_FRAME_PING || op == WS_FRAME_PONG)
            continue;
        n = frame(b, 1, 0, op, 0, 0, 0);
        expect_refused(false, NULL, 0, b, n); /* reserved opcodes */
    }
    n = frame(b, 0, 0, WS_FRAME_PING, 0, 0, 0);
    expect_refused(false, NULL, 0, b, n); /* §5.5: fragmented control frame */
    b[0] = 0x88, b[1] = 126, b[2] = 0, b[3] = 126;
    expect_refused(false, NULL, 0, b, 4); /* §5.5: control frame over 125 bytes */
    n = hdr(b, 1, 0, WS_FRAME_BINARY, 0, 125, 16);
    expect_refused(false, NULL, 0, b, n); /* §5.2: 16-bit form for 125 */
    n = hdr(b, 1, 0, WS_FRAME_BINARY, 0, 0xffff, 64);
    expect_refused(false, NULL, 0, b, n); /* §5.2: 64-bit form for 65535 */
    b[0] = 0x82, b[1] = 127;
    memset(b + 2, 0xff, 8);
    expect_refused(false, NULL, 0, b, 10); /* §5.2: the top bit of a 64-bit length */
    n = frame(b, 1, 0, WS_FRAME_CONT, 0, 0, 0);
    expect_refused(false, NULL, 0, b, n); /* §5.4: continuation without a message */
    pn = frame(pre, 0, 0, WS_FRAME_TEXT, 0, 1, 0);
    n = frame(b, 1, 0, WS_FRAME_BINARY, 0, 1, 0);
    expect_refused(false, pre, pn, b, n); /* §5.4: a data frame inside a message */
    (void)n;
}

/* The proxy's close frames: unmasked to a client, masked to a server, and
 * read back by the tracker as one whole close frame. */
static void test_close_frames(void **state)
{
    (void)state;
    uint8_t f[WS_FRAME_CLOSE_MAX];
    int n = ws_frame_close(1011, "upstream gone", false, f, sizeof(f));
    assert_int_equal(n, 2 + 2 + 13);
    assert_int_equal(f[0], 0x88);
    assert_int_equal(f[1], 15);
    assert_int_equal(f[2] << 8 | f[3], 1011);
    assert_memory_equal(f + 4, "upstream gone", 13);
    struct ws_frame_track t;
    ws_frame_track_init(&t, false);
    assert_int_equal(ws_frame_track_feed(&t, f, (size_t)n), 0);
    assert_int_equal(t.closes, 1);
    assert_true(ws_frame_track_at_boundary(&t));

    n = ws_frame_close(1001, "idle timeout", true, f, sizeof(f));
    assert_int_equal(n, 2 + 4 + 2 + 12);
    assert_int_equal(f[0], 0x88);
    assert_int_equal(f[1], 0x80 | 14);
    uint8_t p[14];
    for (int i = 0; i < 14; i++)
        p[i] = f[6 + i] ^ f[2 + (i % 4)]; /* §5.3: unmask */
    assert_int_equal(p[0] << 8 | p[1], 1001);
    assert_memory_equal(p + 2, "idle timeout", 12);
    ws_frame_track_init(&t, true);
    assert_int_equal(ws_frame_track_feed(&t, f, (size_t)n), 0);
    assert_int_equal(t.closes, 1);

    char longr[WS_FRAME_CLOSE_REASON_MAX + 2];
    memset(longr, 'r', sizeof(longr) - 1);
    longr[sizeof(longr) - 1] = '\0';
    assert_int_equal(ws_frame_close(1000, longr, false, f, sizeof(f)), -EINVAL);
    longr[WS_FRAME_CLOSE_REASON_MAX] = '\0';
    assert_int_equal(ws_frame_close(1000, longr, true, f, sizeof(f)),
                     2 + 4 + 2 + WS_FRAME_CLOSE_REASON_MAX);
    assert_int_equal(ws_frame_close(999, "x", false, f, sizeof(f)), -EINVAL);
    assert_int_equal(ws_frame_close(5000, "x", false, f, sizeof(f)), -EINVAL);
    assert_int_equal(ws_frame_close(1000, "abc", true, f, 8), -ENOSPC);
    assert_int_equal(ws_frame_close(1000, NULL, false, f, 4), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_frames),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_fragments),
        cmocka_unit_test(test_rsv_bits_pass),
        cmocka_unit_test(test_mid_frame),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_close_frames),
    };
    return cmocka_run_group_tests_name("ws/frame", tests, NULL, NULL);
}
