/* core/loop: one small epoll reactor per thread, with a timer heap.
 *
 * A loop is owned by exactly one thread; nothing here is thread-safe except
 * loop_wake(). Handlers run on the loop's thread. Timers are kept in a
 * binary min-heap (O(log n) start/stop), so thousands of per-connection
 * timeouts cost nothing while idle. */
#ifndef CORDON_CORE_LOOP_H
#define CORDON_CORE_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;
struct loop_io;
struct loop_timer;

/* Called with the epoll event mask (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP...). */
typedef void (*loop_io_cb)(struct loop *l, struct loop_io *io, uint32_t events);
/* Called once when the timer expires; the timer is stopped before the call. */
typedef void (*loop_timer_cb)(struct loop *l, struct loop_timer *t);

/* Embed in the owner; set cb and data, then loop_io_add(). */
struct loop_io {
    int fd;
    uint32_t events;
    loop_io_cb cb;
    void *data;
};

/* Embed in the owner; set cb and data, then loop_timer_start(). */
struct loop_timer {
    uint64_t deadline_ms;
    size_t heap_idx; /* 0 = not armed; otherwise index + 1 */
    loop_timer_cb cb;
    void *data;
};

/* Creates a loop with room for max_timers armed timers (the heap's cap).
 * Returns NULL on failure (errno set). */
struct loop *loop_new(size_t max_timers);
void loop_free(struct loop *l);

/* Registers io->fd with the given epoll events (EPOLLET recommended).
 * Returns 0 or -errno. */
int loop_io_add(struct loop *l, struct loop_io *io, int fd, uint32_t events)
    __attribute__((warn_unused_result));
/* Changes the event mask. Returns 0 or -errno. */
int loop_io_mod(struct loop *l, struct loop_io *io, uint32_t events);
/* Unregisters; safe to call on an fd about to be closed. */
void loop_io_del(struct loop *l, struct loop_io *io);

/* Arms (or re-arms) a timer to fire after ms milliseconds.
 * Returns 0, or -ENOSPC when the heap is full. */
int loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t ms);
void loop_timer_stop(struct loop *l, struct loop_timer *t);
static inline int loop_timer_armed(const struct loop_timer *t) { return t->heap_idx != 0; }

/* Monotonic milliseconds, cached per loop iteration. */
uint64_t loop_now_ms(struct loop *l);
uint64_t loop_clock_ms(void);

/* Deferred work: fn(arg) runs after the current batch of events and timers,
 * so an object that other pending events may still point to is freed only
 * once nothing can reach it. Embed the node in the object. */
struct loop_deferred {
    struct loop_deferred *next;
    void (*fn)(void *);
    void *arg;
};
void loop_defer(struct loop *l, struct loop_deferred *d, void (*fn)(void *), void *arg);
/* Runs pending deferred work now (for shutdown after loop_run returned). */
void loop_run_deferred(struct loop *l);

/* Runs until loop_stop() is called. Returns 0 or -errno from epoll_wait. */
int loop_run(struct loop *l);
/* Asks the loop to return after the current iteration (thread-safe). */
void loop_stop(struct loop *l);
/* Registers a function called from the loop's thread when loop_wake() is
 * called from any thread (an eventfd). */
typedef void (*loop_wake_cb)(struct loop *l, void *data);
int loop_set_wake(struct loop *l, loop_wake_cb cb, void *data);
void loop_wake(struct loop *l);

#endif
