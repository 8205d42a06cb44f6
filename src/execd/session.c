/* execd/session: shells, their output ring, stdin buffering, exit. */
#include "execd/session.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "core/log.h"
#include "execd/execd.h"
#include "execd/frame.h"
#include "execd/proc.h"
#include "core/banned.h"

#define SESSION_READ_BUDGET (256 * 1024) /* bytes read per wakeup, per fd */
#define SESSION_DRAIN_MS 100             /* after exit: wait this long for output EOF */
#define SESSION_DRAIN_BUDGET (8u << 20)  /* then read at most this much per fd */

static const char *const state_names[] = {"CREATED", "RUNNING", "EXITING", "EXITED"};

const char *session_state_name(enum session_state st) { return state_names[st]; }

const char *session_mode_name(enum session_mode m)
{
    switch (m) {
    case SESSION_MODE_PTY:
        return "pty";
    case SESSION_MODE_PIPE:
        return "pipe";
    case SESSION_MODE_NONE:
        break;
    }
    return NULL;
}

static void session_set_state(struct session *s, enum session_state st)
{
    if (s->state == st)
        return;
    log_debug("execd: session %s: %s -> %s", s->id, state_names[s->state], state_names[st]);
    s->state = st;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void session_free(void *arg)
{
    struct session *s = arg;
    ring_free(&s->ring);
    free(s->cwd);
    free(s->command);
    free_strv(s->env);
    free(s->in_buf);
    free(s);
}

static void list_unlink(struct session **head, struct session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

static void list_push(struct session **head, struct session *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

/* The deferred free of a deleted session. */
static void session_release(void *arg)
{
    struct session *s = arg;
    list_unlink(&s->ed->dying, s);
    session_free(s);
}

/* Frees s at the end of the turn if nothing can reach it any more. */
static void session_maybe_free(struct session *s)
{
    if (!s->deleted || s->client)
        return;
    if ((s->state != SESSION_EXITED && s->state != SESSION_CREATED) || s->freeing)
        return;
    s->freeing = 1;
    loop_defer(s->ed->loop, &s->defer, session_release, s);
}

static char **copy_strv(char **v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **c = calloc(n + 1, sizeof(*c));
    for (size_t i = 0; c && i < n; i++) {
        c[i] = strdup(v[i]);
        if (!c[i]) {
            free_strv(c);
            return NULL;
        }
    }
    return c;
}

int session_new(struct execd *ed, const struct session_opts *o, struct session **out)
{
    struct session *s;
    if (ed->nsessions >= ed->cfg.max_sessions)
        return -ENOSPC;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    size_t runs = ed->cfg.ring_size / 256 < 64 ? 64 : ed->cfg.ring_size / 256;
    if (ring_init(&s->ring, ed->cfg.ring_size, runs) < 0)
        goto fail;
    s->env = copy_strv(o->env);
    s->cwd = o->cwd ? strdup(o->cwd) : NULL;
    s->command = o->command ? strdup(o->command) : NULL;
    if (!s->env || (o->cwd && !s->cwd) || (o->command && !s->command))
        goto fail;
    s->ed = ed;
    execd_new_id(s->id, 1);
    s->created_at = execd_wall_ms();
    s->cols = o->cols ? o->cols : 80;
    s->rows = o->rows ? o->rows : 24;
    s->in_fd = s->out_fd = s->err_fd = -1;
    s->io_out.fd = s->io_err.fd = s->io_in.fd = -1;
    list_push(&ed->sessions, s);
    ed->nsessions++;
    *out = s;
    return 0;
fail:
    session_free(s);
    return -ENOMEM;
}

struct session *session_find(struct execd *ed, const char *id)
{
    for (struct session *s = ed->sessions; s; s = s->next) {
        if (strcmp(s->id, id) == 0)
            return s;
    }
    return NULL;
}

/* ---- output ---- */

/* How many more bytes may be read before the client would lose some. */
static size_t session_room(const struct session *s)
{
    if (!s->client || s->client_stalled || s->ed->cfg.stall_ms == 0)
        return SIZE_MAX;
    uint64_t unsent = ring_total(&s->ring) - s->cursor;
    return unsent >= s->ring.cap ? 0 : s->ring.cap - (size_t)unsent;
}

/* (Un)registers an output fd: a paused fd is out of epoll entirely, since a
 * hung-up PTY would otherwise report EPOLLHUP on every turn. */
static void io_want(struct session *s, struct loop_io *io, int fd, uint32_t ev)
{
    if (fd < 0)
        return;
    if (ev == 0) {
        if (io->fd >= 0) {
            loop_io_del(s->ed->loop, io);
            io->fd = -1;
        }
        return;
    }
    if (io->fd < 0) {
        if (loop_io_add(s->ed->loop, io, fd, ev) < 0)
            log_warn("execd: session %s: epoll_ctl add failed", s->id);
        return;
    }
    (void)loop_io_mod(s->ed->loop, io, ev);
}

static void session_update_io(struct session *s)
{
    int paused = session_room(s) == 0;
    if (paused != s->paused) {
        s->paused = paused;
        if (paused && loop_timer_start(s->ed->loop, &s->stall, s->ed->cfg.stall_ms) < 0)
            log_warn("execd: session %s: timer heap full", s->id);
        if (!paused)
            loop_timer_stop(s->ed->loop, &s->stall);
    }
    uint32_t rd = paused ? 0 : EPOLLIN;
    if (s->mode == SESSION_MODE_PTY) {
        io_want(s, &s->io_out, s->out_fd, rd | (s->in_len ? EPOLLOUT : 0));
        return;
    }
    io_want(s, &s->io_out, s->out_fd, rd);
    io_want(s, &s->io_err, s->err_fd, rd);
    io_want(s, &s->io_in, s->in_fd, s->in_len ? EPOLLOUT : 0);
}

static void close_fd(struct session *s, struct loop_io *io, int *fd)
{
    if (io->fd >= 0) {
        loop_io_del(s->ed->loop, io);
        io->fd = -1;
    }
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void close_stdin(struct session *s)
{
    if (s->mode == SESSION_MODE_PTY) {
        s->in_fd = -1; /* same fd as out_fd; closed with it */
    } else {
        close_fd(s, &s->io_in, &s->in_fd);
    }
    s->in_len = 0;
}

static void close_outputs(struct session *s)
{
    close_fd(s, &s->io_out, &s->out_fd);
    close_fd(s, &s->io_err, &s->err_fd);
    close_stdin(s);
}

static void notify_output(struct session *s)
{
    if (s->client && s->client->on_output)
        s->client->on_output(s->client);
}

/* EXITING -> EXITED: the status is known and the output is complete. */
static void session_finalize(struct session *s)
{
    int code;
    const char *sig;
    loop_timer_stop(s->ed->loop, &s->drain);
    loop_timer_stop(s->ed->loop, &s->stall);
    close_outputs(s);
    free(s->in_buf);
    s->in_buf = NULL;
    s->in_cap = 0;
    session_set_state(s, SESSION_EXITED);
    session_exit_info(s, &code, &sig);
    log_info("execd: session %s: shell %d exited (code %d%s%s), %llu bytes of output", s->id,
             (int)s->pid, code, sig ? ", " : "", sig ? sig : "",
             (unsigned long long)ring_total(&s->ring));
    notify_output(s);
    session_maybe_free(s);
}

static int outputs_closed(const struct session *s) { return s->out_fd < 0 && s->err_fd < 0; }

enum read_end { READ_DRAINED, READ_HELD, READ_BUDGET };

/* Reads fd into the ring until it would block (or EOF: then it is closed),
 * the client's share of the ring is full, or budget runs out. *got counts
 * the bytes read. */
static enum read_end read_output(struct session *s, int *fd, struct loop_io *io, uint8_t channel,
                                 size_t budget, size_t *got)
{
    while (budget > 0) {
        size_t room = session_room(s), span;
        if (room == 0)
            return READ_HELD;
        uint8_t *p = ring_reserve(&s->ring, &span);
        if (span > room)
            span = room;
        if (span > budget)
            span = budget;
        ssize_t n = read(*fd, p, span);
        if (n > 0) {
            ring_commit(&s->ring, (size_t)n, channel);
            *got += (size_t)n;
            budget -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return READ_DRAINED;
        /* 0, or EIO once every PTY slave is closed */
        if (s->mode == SESSION_MODE_PTY)
            s->in_fd = -1;
        close_fd(s, io, fd);
        return READ_DRAINED;
    }
    return READ_BUDGET;
}

/* The io path: one fd became readable. */
static void session_read(struct session *s, int *fd, struct loop_io *io, uint8_t channel)
{
    size_t got = 0;
    (void)read_output(s, fd, io, channel, SESSION_READ_BUDGET, &got);
    session_update_io(s);
    if (got)
        notify_output(s);
    if (s->state == SESSION_EXITING && outputs_closed(s))
        session_finalize(s);
}

/* Writes buffered stdin. */
static void session_flush_stdin(struct session *s)
{
    size_t off = 0;
    while (off < s->in_len) {
        ssize_t n = write(s->in_fd, s->in_buf + off, s->in_len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        log_info("execd: session %s: stdin closed by the shell; dropping %zu bytes", s->id,
                 s->in_len - off);
        off = s->in_len;
        if (s->mode == SESSION_MODE_PIPE)
            close_stdin(s);
        break;
    }
    memmove(s->in_buf, s->in_buf + off, s->in_len - off);
    s->in_len -= off;
    session_update_io(s);
    if (s->in_full && s->in_len < s->ed->cfg.stdin_max / 2) {
        s->in_full = 0;
        if (s->client && s->client->on_stdin_room)
            s->client->on_stdin_room(s->client);
    }
}

static void on_out(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct session *s = io->data;
    (void)l;
    if (io->fd < 0)
        return;
    if ((events & EPOLLOUT) && s->in_len)
        session_flush_stdin(s);
    if (s->out_fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        session_read(s, &s->out_fd, &s->io_out, FRAME_CH_STDOUT);
}

static void on_err(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct session *s = io->data;
    (void)l;
    (void)events;
    if (io->fd >= 0)
        session_read(s, &s->err_fd, &s->io_err, FRAME_CH_STDERR);
}

static void on_in(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct session *s = io->data;
    (void)l;
    if (io->fd < 0)
        return;
    if (events & EPOLLOUT) {
        session_flush_stdin(s);
        return;
    }
    if (events & (EPOLLERR | EPOLLHUP))
        close_stdin(s);
}

/* After the reap: take what the shell left in the PTY/pipes, then finish.
 * A held read (the client's share of the ring is full) waits for the
 * client; a straggler that never stops writing is cut off by the budget. */
static void on_drain_timer(struct loop *l, struct loop_timer *t)
{
    struct session *s = t->data;
    size_t got = 0;
    int held = 0;
    if (s->out_fd >= 0)
        held |= read_output(s, &s->out_fd, &s->io_out, FRAME_CH_STDOUT, SESSION_DRAIN_BUDGET,
                            &got) == READ_HELD;
    if (s->err_fd >= 0)
        held |= read_output(s, &s->err_fd, &s->io_err, FRAME_CH_STDERR, SESSION_DRAIN_BUDGET,
                            &got) == READ_HELD;
    session_update_io(s);
    if (got)
        notify_output(s);
    if (held) {
        (void)loop_timer_start(l, t, SESSION_DRAIN_MS);
        return;
    }
    session_finalize(s);
}

static void on_stall_timer(struct loop *l, struct loop_timer *t)
{
    struct session *s = t->data;
    (void)l;
    log_info("execd: session %s: client read nothing for %llu ms; output flows on and the "
             "client will be told what it lost",
             s->id, (unsigned long long)s->ed->cfg.stall_ms);
    s->client_stalled = 1;
    session_update_io(s);
}

static void on_reaped(struct reaper_watch *w, int status)
{
    struct session *s = w->data;
    s->wait_status = status;
    session_set_state(s, SESSION_EXITING);
    if (outputs_closed(s)) {
        session_finalize(s);
        return;
    }
    if (loop_timer_start(s->ed->loop, &s->drain, SESSION_DRAIN_MS) < 0)
        session_finalize(s);
}

int session_start(struct session *s, enum session_mode mode)
{
    char *argv[8];
    int n = 0, r;
    struct proc_child ch;
    if (s->state != SESSION_CREATED)
        return -EALREADY;
    argv[n++] = s->ed->cfg.shell;
    argv[n++] = "--norc";
    argv[n++] = "--noprofile";
    if (s->command) {
        argv[n++] = "-c";
        argv[n++] = s->command;
    }
    argv[n] = NULL;
    struct proc_spec spec = {
        .path = s->ed->cfg.shell,
        .argv = argv,
        .env = s->env,
        .cwd = s->cwd,
        .io = mode == SESSION_MODE_PTY ? PROC_IO_PTY : PROC_IO_PIPES,
        .cols = s->cols,
        .rows = s->rows,
        .set_term = mode == SESSION_MODE_PTY,
    };
    r = proc_spawn(&spec, &ch);
    if (r < 0)
        return r;
    s->mode = mode;
    s->pid = ch.pid;
    s->in_fd = ch.in_fd;
    s->out_fd = ch.out_fd;
    s->err_fd = ch.err_fd;
    s->io_out.cb = on_out;
    s->io_err.cb = on_err;
    s->io_in.cb = on_in;
    s->io_out.data = s->io_err.data = s->io_in.data = s;
    s->drain.cb = on_drain_timer;
    s->stall.cb = on_stall_timer;
    s->drain.data = s->stall.data = s;
    reaper_watch(s->ed->reaper, &s->watch, s->pid, on_reaped, s);
    session_set_state(s, SESSION_RUNNING);
    session_update_io(s);
    log_info("execd: session %s: started %s shell %d%s%s", s->id, session_mode_name(mode),
             (int)s->pid, s->command ? " running: " : "", s->command ? s->command : "");
    return 0;
}

/* SIGKILL for the shell and everything left in its session. */
static void session_kill(struct session *s)
{
    switch (s->state) {
    case SESSION_RUNNING:
        if (s->mode == SESSION_MODE_PTY && s->out_fd >= 0) {
            pid_t fg = tcgetpgrp(s->out_fd);
            if (fg > 1)
                kill(-fg, SIGKILL);
        }
        kill(-s->pid, SIGKILL);
        proc_kill_session(s->pid, SIGKILL, 0);
        break;
    case SESSION_EXITING:
    case SESSION_EXITED:
        /* The leader is reaped, so its pid may belong to someone else now;
         * only members of the old session (pid != sid) are ours. */
        proc_kill_session(s->pid, SIGKILL, 1);
        break;
    case SESSION_CREATED:
        break;
    }
}

void session_delete(struct session *s)
{
    if (s->deleted)
        return;
    s->deleted = 1;
    list_unlink(&s->ed->sessions, s);
    list_push(&s->ed->dying, s); /* until reaped and detached; freed at shutdown too */
    s->ed->nsessions--;
    log_info("execd: session %s: deleted (%s)", s->id, state_names[s->state]);
    session_kill(s);
    session_maybe_free(s);
}

void session_kill_all(struct execd *ed)
{
    for (struct session *s = ed->sessions; s; s = s->next)
        session_kill(s);
}

static void free_list(struct execd *ed, struct session **head)
{
    while (*head) {
        struct session *s = *head;
        list_unlink(head, s);
        reaper_unwatch(ed->reaper, &s->watch);
        loop_timer_stop(ed->loop, &s->drain);
        loop_timer_stop(ed->loop, &s->stall);
        close_outputs(s);
        session_free(s);
    }
}

void session_free_all(struct execd *ed)
{
    free_list(ed, &ed->sessions);
    free_list(ed, &ed->dying);
    ed->nsessions = 0;
}

/* ---- client side ---- */

int session_attach(struct session *s, struct session_client *c, uint64_t cursor)
{
    if (s->client)
        return -EBUSY;
    s->client = c;
    s->cursor = cursor;
    s->client_stalled = 0;
    session_update_io(s);
    return 0;
}

void session_detach(struct session *s, struct session_client *c)
{
    if (s->client != c)
        return;
    s->client = NULL;
    s->client_stalled = 0;
    if (s->state == SESSION_RUNNING || s->state == SESSION_EXITING)
        session_update_io(s);
    session_maybe_free(s);
}

int session_peek(struct session *s, const uint8_t **p, size_t *len, uint8_t *channel)
{
    return ring_peek(&s->ring, s->cursor, p, len, channel);
}

void session_consume(struct session *s, size_t n)
{
    s->cursor += n;
    if (ring_total(&s->ring) - s->cursor <= s->ring.cap / 2)
        s->client_stalled = 0;
    if (s->paused) /* progress: the client gets another stall_ms */
        (void)loop_timer_start(s->ed->loop, &s->stall, s->ed->cfg.stall_ms);
    if (s->state == SESSION_RUNNING || s->state == SESSION_EXITING)
        session_update_io(s);
}

uint64_t session_skip_lost(struct session *s)
{
    uint64_t oldest = ring_oldest(&s->ring);
    if (s->cursor < oldest)
        s->cursor = oldest;
    return s->cursor;
}

int session_stdin(struct session *s, const uint8_t *d, size_t n)
{
    size_t off = 0;
    if (s->state != SESSION_RUNNING || s->in_fd < 0)
        return -EPIPE;
    while (s->in_len == 0 && off < n) {
        ssize_t w = write(s->in_fd, d + off, n - off);
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
        size_t need = s->in_len + (n - off);
        if (need > s->in_cap) {
            uint8_t *nb = realloc(s->in_buf, need);
            if (!nb)
                return -ENOMEM;
            s->in_buf = nb;
            s->in_cap = need;
        }
        memcpy(s->in_buf + s->in_len, d + off, n - off);
        s->in_len = need;
        session_update_io(s);
    }
    if (s->in_len >= s->ed->cfg.stdin_max) {
        s->in_full = 1;
        return 1;
    }
    return 0;
}

int session_resize(struct session *s, uint16_t cols, uint16_t rows)
{
    s->cols = cols;
    s->rows = rows;
    if (s->mode != SESSION_MODE_PTY)
        return -ENOTTY;
    if (s->out_fd < 0)
        return -EPIPE;
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    return ioctl(s->out_fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

int session_signal(struct session *s, int signo)
{
    if (s->state != SESSION_RUNNING)
        return -ESRCH;
    if (s->mode == SESSION_MODE_PTY) {
        pid_t fg = s->out_fd >= 0 ? tcgetpgrp(s->out_fd) : -1;
        if (fg <= 1)
            fg = s->pid;
        return kill(-fg, signo) < 0 ? -errno : 0;
    }
    if (proc_kill_children(s->pid, signo) > 0)
        return 0;
    return kill(-s->pid, signo) < 0 ? -errno : 0;
}

void session_exit_info(const struct session *s, int *exit_code, const char **signame)
{
    *signame = NULL;
    *exit_code = -1;
    if (s->state != SESSION_EXITED)
        return;
    if (WIFEXITED(s->wait_status)) {
        *exit_code = WEXITSTATUS(s->wait_status);
    } else if (WIFSIGNALED(s->wait_status)) {
        *signame = frame_signal_name(WTERMSIG(s->wait_status));
        if (!*signame)
            *signame = "SIGUNKNOWN";
    }
}

void *session_status_json(const struct session *s)
{
    int code;
    const char *sig;
    const char *mode = session_mode_name(s->mode);
    session_exit_info(s, &code, &sig);
    json_t *o = json_pack(
        "{s:s, s:b, s:s, s:I, s:I, s:b, s:I}", "session_id", s->id, "running",
        s->state == SESSION_RUNNING, "state", state_names[s->state], "output_offset",
        (json_int_t)ring_total(&s->ring), "oldest_offset", (json_int_t)ring_oldest(&s->ring),
        "attached", s->client != NULL, "created_at", (json_int_t)s->created_at);
    if (!o)
        return NULL;
    json_object_set_new(o, "mode", mode ? json_string(mode) : json_null());
    json_object_set_new(o, "exit_code",
                        s->state == SESSION_EXITED ? json_integer(code) : json_null());
    if (sig)
        json_object_set_new(o, "signal", json_string(sig));
    if (s->pid)
        json_object_set_new(o, "pid", json_integer(s->pid));
    return o;
}
