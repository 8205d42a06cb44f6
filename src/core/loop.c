/* core/loop: epoll reactor with a binary-heap timer set. */
#include "core/loop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

struct loop {
    int epfd;
    atomic_int stopping;
    uint64_t now_ms;
    struct loop_timer **heap;
    size_t heap_len, heap_cap;
    struct loop_io wake_io;
    loop_wake_cb wake_cb;
    void *wake_data;
    struct loop_deferred *deferred;
};

uint64_t loop_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct loop *loop_new(size_t max_timers)
{
    struct loop *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->heap = calloc(max_timers ? max_timers : 1, sizeof(*l->heap));
    if (l->epfd < 0 || !l->heap) {
        int e = errno;
        if (l->epfd >= 0)
            close(l->epfd);
        free(l->heap);
        free(l);
        errno = e;
        return NULL;
    }
    l->heap_cap = max_timers ? max_timers : 1;
    l->wake_io.fd = -1;
    l->now_ms = loop_clock_ms();
    return l;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    if (l->wake_io.fd >= 0)
        close(l->wake_io.fd);
    close(l->epfd);
    free(l->heap);
    free(l);
}

int loop_io_add(struct loop *l, struct loop_io *io, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    io->fd = fd;
    io->events = events;
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    return 0;
}

int loop_io_mod(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (io->events == events)
        return 0;
    io->events = events;
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return -errno;
    return 0;
}

void loop_io_del(struct loop *l, struct loop_io *io)
{
    if (io->fd >= 0)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

/* ---- timer heap (1-based indexes stored in heap_idx) ---- */

static void heap_set(struct loop *l, size_t i, struct loop_timer *t)
{
    l->heap[i] = t;
    t->heap_idx = i + 1;
}

static void heap_up(struct loop *l, size_t i)
{
    struct loop_timer *t = l->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (l->heap[p]->deadline_ms <= t->deadline_ms)
            break;
        heap_set(l, i, l->heap[p]);
        i = p;
    }
    heap_set(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
    struct loop_timer *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->heap_len)
            break;
        if (c + 1 < l->heap_len && l->heap[c + 1]->deadline_ms < l->heap[c]->deadline_ms)
            c++;
        if (t->deadline_ms <= l->heap[c]->deadline_ms)
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
    if (!t->heap_idx)
        return;
    size_t i = t->heap_idx - 1;
    t->heap_idx = 0;
    l->heap_len--;
    if (i == l->heap_len)
        return;
    struct loop_timer *moved = l->heap[l->heap_len];
    heap_set(l, i, moved);
    heap_up(l, i);
    heap_down(l, moved->heap_idx - 1);
}

int loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t ms)
{
    loop_timer_stop(l, t);
    if (l->heap_len >= l->heap_cap)
        return -ENOSPC;
    t->deadline_ms = l->now_ms + ms;
    l->heap_len++;
    heap_set(l, l->heap_len - 1, t);
    heap_up(l, l->heap_len - 1);
    return 0;
}

uint64_t loop_now_ms(struct loop *l) { return l->now_ms; }

static int next_timeout(struct loop *l)
{
    if (l->heap_len == 0)
        return -1;
    uint64_t d = l->heap[0]->deadline_ms;
    if (d <= l->now_ms)
        return 0;
    uint64_t left = d - l->now_ms;
    return left > 60000 ? 60000 : (int)left;
}

static void run_timers(struct loop *l)
{
    /* Bounded: only timers already due at entry fire this turn. */
    size_t budget = l->heap_len;
    while (budget-- && l->heap_len && l->heap[0]->deadline_ms <= l->now_ms) {
        struct loop_timer *t = l->heap[0];
        loop_timer_stop(l, t);
        t->cb(l, t);
    }
}

static void wake_read(struct loop *l, struct loop_io *io, uint32_t events)
{
    uint64_t v;
    (void)events;
    while (read(io->fd, &v, sizeof(v)) > 0) {
    }
    if (l->wake_cb)
        l->wake_cb(l, l->wake_data);
}

int loop_set_wake(struct loop *l, loop_wake_cb cb, void *data)
{
    if (l->wake_io.fd < 0) {
        int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0)
            return -errno;
        l->wake_io.cb = wake_read;
        int r = loop_io_add(l, &l->wake_io, fd, EPOLLIN);
        if (r < 0) {
            close(fd);
            return r;
        }
    }
    l->wake_cb = cb;
    l->wake_data = data;
    return 0;
}

void loop_wake(struct loop *l)
{
    uint64_t one = 1;
    if (l->wake_io.fd >= 0 && write(l->wake_io.fd, &one, sizeof(one)) < 0) {
        /* counter saturated: a wakeup is already pending */
    }
}

void loop_stop(struct loop *l)
{
    atomic_store(&l->stopping, 1);
    loop_wake(l);
}

void loop_defer(struct loop *l, struct loop_deferred *d, void (*fn)(void *), void *arg)
{
    d->fn = fn;
    d->arg = arg;
    d->next = l->deferred;
    l->deferred = d;
}

static void run_deferred(struct loop *l)
{
    while (l->deferred) {
        struct loop_deferred *d = l->deferred;
        l->deferred = d->next;
        d->fn(d->arg);
    }
}

void loop_run_deferred(struct loop *l) { run_deferred(l); }

int loop_run(struct loop *l)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];
    while (!atomic_load(&l->stopping)) {
        int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, next_timeout(l));
        if (n < 0 && errno != EINTR)
            return -errno;
        l->now_ms = loop_clock_ms();
        for (int i = 0; i < n; i++) {
            struct loop_io *io = evs[i].data.ptr;
            io->cb(l, io, evs[i].events);
        }
        run_timers(l);
        run_deferred(l);
    }
    run_deferred(l);
    return 0;
}
