/* execd/child: spawn, output pump, stdin, reap and drain (see child.h). */
#include "execd/child.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "execd/execd.h"
#include "execd/frame.h"
#include "core/banned.h"

static const char *const phase_names[] = {"IDLE", "RUNNING", "EXITING", "EXITED"};

const char *child_phase_name(enum child_phase p) { return phase_names[p]; }

static void child_set_phase(struct child *ch, enum child_phase p)
{
    if (ch->phase == p)
        return;
    log_debug("execd: %s: child %s -> %s", ch->label, phase_names[ch->phase], phase_names[p]);
    ch->phase = p;
}

int child_init(struct child *ch, struct execd *ed, const char *label,
               const struct child_ops *ops, void *owner, uint64_t drain_ms)
{
    memset(ch, 0, sizeof(*ch));
    size_t runs = ed->cfg.ring_size / 256 < 64 ? 64 : ed->cfg.ring_size / 256;
    if (ring_init(&ch->ring, ed->cfg.ring_size, runs) < 0)
        return -ENOMEM;
    ch->ed = ed;
    ch->label = label;
    ch->ops = ops;
    ch->owner = owner;
    ch->drain_ms = drain_ms;
    ch->in_fd = ch->out_fd = ch->err_fd = -1;
    ch->io_out.fd = ch->io_err.fd = ch->io_in.fd = -1;
    return 0;
}

/* ---- fds ---- */

static size_t child_room(const struct child *ch)
{
    return ch->ops->room ? ch->ops->room(ch->owner) : SIZE_MAX;
}

/* (Un)registers an fd: a paused output fd is out of epoll entirely. */
static void io_want(struct child *ch, struct loop_io *io, int fd, uint32_t ev)
{
    if (fd < 0)
        return;
    if (ev == 0) {
        if (io->fd >= 0) {
            loop_io_del(ch->ed->loop, io);
            io->fd = -1;
        }
        return;
    }
    if (io->fd < 0) {
        if (loop_io_add(ch->ed->loop, io, fd, ev) < 0)
            log_warn("execd: %s: epoll_ctl add failed", ch->label);
        return;
    }
    (void)loop_io_mod(ch->ed->loop, io, ev);
}

static void set_io(struct child *ch)
{
    if (ch->phase != CHILD_RUNNING && ch->phase != CHILD_EXITING)
        return;
    int paused = child_room(ch) == 0;
    if (paused != ch->paused) {
        ch->paused = paused;
        if (ch->ops->on_paused)
            ch->ops->on_paused(ch->owner, paused);
    }
    uint32_t rd = paused ? 0 : EPOLLIN;
    if (ch->pty) {
        io_want(ch, &ch->io_out, ch->out_fd, rd | (ch->in_len ? EPOLLOUT : 0));
        return;
    }
    io_want(ch, &ch->io_out, ch->out_fd, rd);
    io_want(ch, &ch->io_err, ch->err_fd, rd);
    io_want(ch, &ch->io_in, ch->in_fd, ch->in_len ? EPOLLOUT : 0);
}

static void close_fd(struct child *ch, struct loop_io *io, int *fd)
{
    if (io->fd >= 0) {
        loop_io_del(ch->ed->loop, io);
        io->fd = -1;
    }
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void close_stdin(struct child *ch)
{
    if (ch->pty)
        ch->in_fd = -1; /* the master: closed with out_fd */
    else
        close_fd(ch, &ch->io_in, &ch->in_fd);
    ch->in_len = 0;
}

static void close_all(struct child *ch)
{
    close_fd(ch, &ch->io_out, &ch->out_fd);
    close_fd(ch, &ch->io_err, &ch->err_fd);
    close_stdin(ch);
}

static int outputs_closed(const struct child *ch) { return ch->out_fd < 0 && ch->err_fd < 0; }

/* ---- output ---- */

enum read_end { READ_DRAINED, READ_HELD, READ_BUDGET };

/* Reads fd into the ring until it would block (or EOF/EIO: then it is
 * closed), the owner's room runs out, or budget does. */
static enum read_end read_output(struct child *ch, int *fd, struct loop_io *io, uint8_t channel,
                                 size_t budget, size_t *got)
{
    while (budget > 0) {
        size_t room = child_room(ch), span;
        if (room == 0)
            return READ_HELD;
        uint8_t *p = ring_reserve(&ch->ring, &span);
        if (span > room)
            span = room;
        if (span > budget)
            span = budget;
        ssize_t n = read(*fd, p, span);
        if (n > 0) {
            ch->last_data_ms = loop_now_ms(ch->ed->loop);
            ring_commit(&ch->ring, (size_t)n, channel);
            *got += (size_t)n;
            budget -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return READ_DRAINED;
        /* 0, or EIO once every PTY slave is closed */
        if (ch->pty)
            ch->in_fd = -1;
        close_fd(ch, io, fd);
        return READ_DRAINED;
    }
    return READ_BUDGET;
}

/* EXITING -> EXITED. */
static void child_finish(struct child *ch)
{
    loop_timer_stop(ch->ed->loop, &ch->drain);
    ch->drain_held = 0;
    close_all(ch);
    free(ch->in_buf);
    ch->in_buf = NULL;
    ch->in_cap = 0;
    child_set_phase(ch, CHILD_EXITED);
    if (ch->paused) {
        ch->paused = 0;
        if (ch->ops->on_paused)
            ch->ops->on_paused(ch->owner, 0);
    }
    if (ch->ops->on_exit)
        ch->ops->on_exit(ch->owner);
}

/* Takes what the process left; ends the drain unless the owner has no
 * room (then waits, see child.h). */
static void child_drain(struct child *ch)
{
    size_t got = 0;
    int held = 0;
    ch->drain_held = 0; /* a callback's child_update_io must not re-enter */
    if (ch->out_fd >= 0)
        held |= read_output(ch, &ch->out_fd, &ch->io_out, FRAME_CH_STDOUT, CHILD_DRAIN_BUDGET,
                            &got) == READ_HELD;
    if (ch->err_fd >= 0)
        held |= read_output(ch, &ch->err_fd, &ch->io_err, FRAME_CH_STDERR, CHILD_DRAIN_BUDGET,
                            &got) == READ_HELD;
    set_io(ch);
    if (got && ch->ops->on_output)
        ch->ops->on_output(ch->owner, got);
    if (ch->phase != CHILD_EXITING)
        return; /* the owner's callback ended it */
    if (held && !outputs_closed(ch)) {
        ch->drain_held = 1;
        if (ch->drain_ms)
            (void)loop_timer_start(ch->ed->loop, &ch->drain, ch->drain_ms);
        return;
    }
    child_finish(ch);
}

/* One output fd became readable. */
static void child_read(struct child *ch, int *fd, struct loop_io *io, uint8_t channel)
{
    size_t got = 0;
    (void)read_output(ch, fd, io, channel, CHILD_READ_BUDGET, &got);
    set_io(ch);
    if (ch->ops->on_output)
        ch->ops->on_output(ch->owner, got);
    if (ch->phase == CHILD_EXITING && outputs_closed(ch))
        child_finish(ch);
}

/* ---- stdin ---- */

static void flush_stdin(struct child *ch)
{
    size_t off = 0;
    while (off < ch->in_len) {
        ssize_t n = write(ch->in_fd, ch->in_buf + off, ch->in_len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        log_info("execd: %s: stdin closed by the process; dropping %zu bytes", ch->label,
                 ch->in_len - off);
        off = ch->in_len;
        if (!ch->pty)
            close_stdin(ch);
        break;
    }
    memmove(ch->in_buf, ch->in_buf + off, ch->in_len - off);
    ch->in_len -= off;
    set_io(ch);
    if (ch->in_full && ch->in_len < ch->ed->cfg.stdin_max / 2) {
        ch->in_full = 0;
        if (ch->ops->on_stdin_room)
            ch->ops->on_stdin_room(ch->owner);
    }
}

int child_stdin(struct child *ch, const uint8_t *d, size_t n)
{
    size_t off = 0;
    if (ch->phase != CHILD_RUNNING || ch->in_fd < 0)
        return -EPIPE;
    while (ch->in_len == 0 && off < n) {
        ssize_t w = write(ch->in_fd, d + off, n - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return -EPIPE;
    }
    if (off < n) {
        size_t need = ch->in_len + (n - off);
        if (need > ch->in_cap) {
            uint8_t *nb = realloc(ch->in_buf, need);
            if (!nb)
                return -ENOMEM;
            ch->in_buf = nb;
            ch->in_cap = need;
        }
        memcpy(ch->in_buf + ch->in_len, d + off, n - off);
        ch->in_len = need;
        set_io(ch);
    }
    if (ch->in_len >= ch->ed->cfg.stdin_max) {
        ch->in_full = 1;
        return 1;
    }
    return 0;
}

/* ---- loop callbacks ---- */

static void on_out(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct child *ch = io->data;
    (void)l;
    if (io->fd < 0)
        return;
    if ((events & EPOLLOUT) && ch->in_len)
        flush_stdin(ch);
    if (ch->out_fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        child_read(ch, &ch->out_fd, &ch->io_out, FRAME_CH_STDOUT);
}

static void on_err(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct child *ch = io->data;
    (void)l;
    (void)events;
    if (io->fd >= 0)
        child_read(ch, &ch->err_fd, &ch->io_err, FRAME_CH_STDERR);
}

static void on_in(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct child *ch = io->data;
    (void)l;
    if (io->fd < 0)
        return;
    if (events & EPOLLOUT) {
        flush_stdin(ch);
        return;
    }
    if (events & (EPOLLERR | EPOLLHUP))
        close_stdin(ch);
}

static void on_drain_timer(struct loop *l, struct loop_timer *t)
{
    struct child *ch = t->data;
    (void)l;
    ch->drain_held = 0;
    child_drain(ch);
}

static void on_reaped(struct reaper_watch *w, int status)
{
    struct child *ch = w->data;
    ch->wait_status = status;
    child_set_phase(ch, CHILD_EXITING);
    if (ch->ops->on_reaped)
        ch->ops->on_reaped(ch->owner);
    if (ch->phase != CHILD_EXITING)
        return;
    if (outputs_closed(ch)) {
        child_finish(ch);
        return;
    }
    if (ch->drain_ms == 0) {
        child_drain(ch);
        return;
    }
    if (loop_timer_start(ch->ed->loop, &ch->drain, ch->drain_ms) < 0)
        child_finish(ch);
}

/* ---- lifecycle ---- */

int child_spawn(struct child *ch, const struct proc_spec *spec)
{
    struct proc_child pc;
    if (ch->phase != CHILD_IDLE)
        return -EALREADY;
    int r = proc_spawn(spec, &pc);
    if (r < 0)
        return r;
    ch->pty = spec->io == PROC_IO_PTY;
    ch->pid = pc.pid;
    ch->in_fd = pc.in_fd;
    ch->out_fd = pc.out_fd;
    ch->err_fd = pc.err_fd;
    ch->io_out.cb = on_out;
    ch->io_err.cb = on_err;
    ch->io_in.cb = on_in;
    ch->io_out.data = ch->io_err.data = ch->io_in.data = ch;
    ch->drain.cb = on_drain_timer;
    ch->drain.data = ch;
    reaper_watch(ch->ed->reaper, &ch->watch, ch->pid, on_reaped, ch);
    child_set_phase(ch, CHILD_RUNNING);
    set_io(ch);
    return 0;
}

void child_update_io(struct child *ch)
{
    set_io(ch);
    if (ch->phase == CHILD_EXITING && ch->drain_held && ch->drain_ms == 0 && child_room(ch) > 0)
        child_drain(ch);
}

void child_exit_info(const struct child *ch, int *exit_code, const char **signame)
{
    *signame = NULL;
    *exit_code = -1;
    if (ch->phase != CHILD_EXITED)
        return;
    if (WIFEXITED(ch->wait_status)) {
        *exit_code = WEXITSTATUS(ch->wait_status);
    } else if (WIFSIGNALED(ch->wait_status)) {
        *signame = frame_signal_name(WTERMSIG(ch->wait_status));
        if (!*signame)
            *signame = "SIGUNKNOWN";
    }
}

void child_stop(struct child *ch)
{
    if (ch->pid)
        reaper_unwatch(ch->ed->reaper, &ch->watch);
    loop_timer_stop(ch->ed->loop, &ch->drain);
    close_all(ch);
}

void child_free(struct child *ch)
{
    ring_free(&ch->ring);
    free(ch->in_buf);
    ch->in_buf = NULL;
}
