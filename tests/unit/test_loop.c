/* Unit tests for core/loop timers and core/buf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/loop.h"

static int fired[64];
static int order[64], n_order;

static void on_timer(struct loop *l, struct loop_timer *t)
{
    int i = (int)(intptr_t)t->data;
    fired[i]++;
    order[n_order++] = i;
    if (n_order == 3)
        loop_stop(l);
}

static void test_timers_order_and_stop(void **st)
{
    struct loop *l = loop_new(8);
    assert_non_null(l);
    assert_int_equal(loop_set_wake(l, NULL, NULL), 0);
    struct loop_timer t[5] = {0};
    for (int i = 0; i < 5; i++) {
        t[i].cb = on_timer;
        t[i].data = (void *)(intptr_t)i;
    }
    assert_int_equal(loop_timer_start(l, &t[0], 30), 0);
    assert_int_equal(loop_timer_start(l, &t[1], 10), 0);
    assert_int_equal(loop_timer_start(l, &t[2], 20), 0);
    assert_int_equal(loop_timer_start(l, &t[3], 5), 0);
    loop_timer_stop(l, &t[3]); /* stopped timers never fire */
    assert_false(loop_timer_armed(&t[3]));
    assert_int_equal(loop_timer_start(l, &t[4], 100000), 0);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 0);
    assert_int_equal(fired[3], 0);
    assert_true(loop_timer_armed(&t[4]));
    loop_timer_stop(l, &t[4]);
    loop_free(l);
}

static void test_timer_heap_cap(void **st)
{
    struct loop *l = loop_new(2);
    struct loop_timer t[3] = {0};
    for (int i = 0; i < 3; i++)
        t[i].cb = on_timer;
    assert_int_equal(loop_timer_start(l, &t[0], 10), 0);
    assert_int_equal(loop_timer_start(l, &t[1], 10), 0);
    assert_int_equal(loop_timer_start(l, &t[2], 10), -ENOSPC);
    /* re-arming an armed timer does not consume a slot */
    assert_int_equal(loop_timer_start(l, &t[0], 20), 0);
    loop_free(l);
}

static void test_heap_random(void **st)
{
    /* many random starts/stops keep the heap ordered */
    struct loop *l = loop_new(64);
    struct loop_timer t[64] = {0};
    srand(7);
    for (int round = 0; round < 2000; round++) {
        int i = rand() % 64;
        if (rand() % 3 == 0)
            loop_timer_stop(l, &t[i]);
        else
            assert_int_equal(loop_timer_start(l, &t[i], (uint64_t)(rand() % 1000)), 0);
    }
    for (int i = 0; i < 64; i++)
        loop_timer_stop(l, &t[i]);
    loop_free(l);
}

static void test_buf(void **st)
{
    struct buf b;
    assert_int_equal(buf_init(&b, 8), 0);
    assert_int_equal(buf_append(&b, "abcdef", 6), 0);
    buf_consume(&b, 4);
    assert_int_equal(b.len, 2);
    assert_int_equal(buf_append(&b, "ghijkl", 6), 0); /* compacts */
    assert_memory_equal(buf_head(&b), "efghijkl", 8);
    assert_int_equal(buf_append(&b, "x", 1), -ENOBUFS);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_order_and_stop),
        cmocka_unit_test(test_timer_heap_cap),
        cmocka_unit_test(test_heap_random),
        cmocka_unit_test(test_buf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
