/* Unit tests for execd/ring: absolute offsets, wrap-around, loss reporting,
 * channel runs, direct reads, and a randomized check against a flat model. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "execd/ring.h"

static void test_init_rejects_zero(void **state)
{
    struct ring r;
    (void)state;
    assert_int_equal(ring_init(&r, 0, 4), -EINVAL);
    assert_int_equal(ring_init(&r, 4, 0), -EINVAL);
}

static void test_write_and_peek(void **state)
{
    struct ring r;
    const uint8_t *p;
    size_t len;
    uint8_t ch;
    (void)state;
    assert_int_equal(ring_init(&r, 16, 4), 0);
    assert_int_equal(ring_peek(&r, 0, &p, &len, &ch), 0);
    assert_int_equal(len, 0);
    ring_write(&r, "hello", 5, 1);
    assert_int_equal(ring_total(&r), 5);
    assert_int_equal(ring_oldest(&r), 0);
    assert_int_equal(ring_peek(&r, 0, &p, &len, &ch), 0);
    assert_int_equal(len, 5);
    assert_int_equal(ch, 1);
    assert_memory_equal(p, "hello", 5);
    assert_int_equal(ring_peek(&r, 3, &p, &len, &ch), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "lo", 2);
    /* at or past the end: nothing, not an error */
    assert_int_equal(ring_peek(&r, 5, &p, &len, &ch), 0);
    assert_int_equal(len, 0);
    assert_int_equal(ring_peek(&r, 500, &p, &len, &ch), 0);
    assert_int_equal(len, 0);
    ring_free(&r);
}

static void test_wrap_and_loss(void **state)
{
    struct ring r;
    const uint8_t *p;
    size_t len;
    uint8_t ch;
    char buf[16];
    (void)state;
    assert_int_equal(ring_init(&r, 8, 4), 0);
    ring_write(&r, "01234", 5, 1);
    ring_write(&r, "56789", 5, 1);
    assert_int_equal(ring_total(&r), 10);
    assert_int_equal(ring_oldest(&r), 2);
    /* offsets 0 and 1 are gone, and say so */
    assert_int_equal(ring_peek(&r, 1, &p, &len, &ch), -ERANGE);
    assert_int_equal(ring_copy(&r, 0, buf, sizeof(buf)), -ERANGE);
    /* 2..7 are contiguous up to the end of the buffer, 8..9 wrap */
    assert_int_equal(ring_peek(&r, 2, &p, &len, &ch), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(p, "234567", 6);
    assert_int_equal(ring_peek(&r, 8, &p, &len, &ch), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "89", 2);
    /* copy crosses the wrap */
    assert_int_equal(ring_copy(&r, 2, buf, sizeof(buf)), 8);
    assert_memory_equal(buf, "23456789", 8);
    assert_int_equal(ring_copy(&r, 7, buf, 2), 2);
    assert_memory_equal(buf, "78", 2);
    ring_free(&r);
}

static void test_write_bigger_than_ring(void **state)
{
    struct ring r;
    char buf[8];
    (void)state;
    assert_int_equal(ring_init(&r, 4, 4), 0);
    ring_write(&r, "ab", 2, 1);
    ring_write(&r, "cdefghij", 8, 1);
    assert_int_equal(ring_total(&r), 10);
    assert_int_equal(ring_oldest(&r), 6);
    assert_int_equal(ring_copy(&r, 6, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "ghij", 4);
    ring_free(&r);
}

static void test_channels(void **state)
{
    struct ring r;
    const uint8_t *p;
    size_t len;
    uint8_t ch;
    (void)state;
    assert_int_equal(ring_init(&r, 64, 8), 0);
    ring_write(&r, "aa", 2, 1);
    ring_write(&r, "AA", 2, 1); /* same channel: one run */
    ring_write(&r, "bb", 2, 2);
    ring_write(&r, "cc", 2, 1);
    assert_int_equal(r.runs_len, 3);
    assert_int_equal(ring_peek(&r, 0, &p, &len, &ch), 0);
    assert_int_equal(len, 4);
    assert_int_equal(ch, 1);
    assert_int_equal(ring_peek(&r, 5, &p, &len, &ch), 0);
    assert_int_equal(len, 1);
    assert_int_equal(ch, 2);
    assert_memory_equal(p, "b", 1);
    assert_int_equal(ring_peek(&r, 6, &p, &len, &ch), 0);
    assert_int_equal(len, 2);
    assert_int_equal(ch, 1);
    ring_free(&r);
}

static void test_run_table_full(void **state)
{
    struct ring r;
    const uint8_t *p;
    size_t len;
    uint8_t ch;
    (void)state;
    assert_int_equal(ring_init(&r, 64, 2), 0);
    ring_write(&r, "a", 1, 1);
    ring_write(&r, "b", 1, 2);
    ring_write(&r, "c", 1, 1); /* drops the first run */
    assert_int_equal(r.runs_len, 2);
    assert_int_equal(ring_peek(&r, 0, &p, &len, &ch), 0);
    assert_int_equal(ch, RING_CHAN_UNKNOWN);
    assert_int_equal(len, 1);
    assert_int_equal(ring_peek(&r, 1, &p, &len, &ch), 0);
    assert_int_equal(ch, 2);
    ring_free(&r);
}

static void test_runs_pruned_with_the_bytes(void **state)
{
    struct ring r;
    (void)state;
    assert_int_equal(ring_init(&r, 4, 8), 0);
    for (int i = 0; i < 100; i++)
        ring_write(&r, "xy", 2, (uint8_t)(1 + i % 2));
    /* only runs covering the last 4 bytes (plus the one straddling) remain */
    assert_true(r.runs_len <= 3);
    ring_free(&r);
}

static void test_reserve_commit(void **state)
{
    struct ring r;
    size_t span;
    char buf[8];
    (void)state;
    assert_int_equal(ring_init(&r, 8, 4), 0);
    uint8_t *p = ring_reserve(&r, &span);
    assert_int_equal(span, 8);
    memcpy(p, "abcdef", 6);
    ring_commit(&r, 6, 1);
    p = ring_reserve(&r, &span);
    assert_int_equal(span, 2); /* up to the end of the buffer */
    memcpy(p, "gh", 2);
    ring_commit(&r, 2, 1);
    p = ring_reserve(&r, &span);
    assert_int_equal(span, 8);
    memcpy(p, "ij", 2);
    ring_commit(&r, 2, 2);
    assert_int_equal(ring_total(&r), 10);
    assert_int_equal(ring_copy(&r, 2, buf, 8), 8);
    assert_memory_equal(buf, "cdefghij", 8);
    ring_commit(&r, 0, 1); /* a zero commit changes nothing */
    assert_int_equal(ring_total(&r), 10);
    ring_free(&r);
}

/* Random writes against a flat model of everything ever written. */
static void test_random_against_model(void **state)
{
    enum { CAP = 97, TOTAL = 20000 };
    struct ring r;
    uint8_t *model = malloc(TOTAL + 256), *chans = malloc(TOTAL + 256);
    uint8_t tmp[256], out[CAP];
    size_t n = 0;
    (void)state;
    srand(12345);
    assert_int_equal(ring_init(&r, CAP, 1000), 0);
    while (n < TOTAL) {
        size_t len = (size_t)(rand() % 150);
        uint8_t ch = (uint8_t)(1 + rand() % 2);
        for (size_t i = 0; i < len; i++) {
            tmp[i] = (uint8_t)rand();
            model[n + i] = tmp[i];
            chans[n + i] = ch;
        }
        ring_write(&r, tmp, len, ch);
        n += len;
        assert_int_equal(ring_total(&r), n);
        uint64_t oldest = n > CAP ? n - CAP : 0;
        assert_int_equal(ring_oldest(&r), oldest);
        /* every kept offset reads back right, on the right channel */
        for (uint64_t off = oldest; off < n;) {
            const uint8_t *p;
            size_t l;
            uint8_t c;
            assert_int_equal(ring_peek(&r, off, &p, &l, &c), 0);
            assert_true(l > 0);
            assert_memory_equal(p, model + off, l);
            for (size_t i = 0; i < l; i++)
                assert_int_equal(c, chans[off + i]);
            off += l;
        }
        if (oldest > 0) {
            const uint8_t *p;
            size_t l;
            uint8_t c;
            assert_int_equal(ring_peek(&r, oldest - 1, &p, &l, &c), -ERANGE);
        }
        uint64_t from = oldest + (n > oldest ? (uint64_t)rand() % (n - oldest + 1) : 0);
        ssize_t got = ring_copy(&r, from, out, sizeof(out));
        assert_int_equal(got, (ssize_t)(n - from));
        assert_memory_equal(out, model + from, (size_t)got);
    }
    ring_free(&r);
    free(model);
    free(chans);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_rejects_zero),
        cmocka_unit_test(test_write_and_peek),
        cmocka_unit_test(test_wrap_and_loss),
        cmocka_unit_test(test_write_bigger_than_ring),
        cmocka_unit_test(test_channels),
        cmocka_unit_test(test_run_table_full),
        cmocka_unit_test(test_runs_pruned_with_the_bytes),
        cmocka_unit_test(test_reserve_commit),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests_name("execd/ring", tests, NULL, NULL);
}
