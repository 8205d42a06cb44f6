/* execd/session: shells and their one client; the process, its output
 * ring and stdin are the engine's (execd/child). */
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

#define SESSION_DRAIN_MS 100 /* after exit: wait this long for output EOF */

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
    child_free(&s->child);
    free(s->cwd);
    free(s->command);
    free_strv(s->env);
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

/* ---- the engine's callbacks ---- */

/* How many more bytes may be read before the client would lose some. */
static size_t session_room(void *owner)
{
    const struct session *s = owner;
    if (!s->client || s->client_stalled || s->ed->cfg.stall_ms == 0)
        return SIZE_MAX;
    uint64_t unsent = ring_total(&s->child.ring) - s->cursor;
    return unsent >= s->child.ring.cap ? 0 : s->child.ring.cap - (size_t)unsent;
}

static void notify_output(struct session *s)
{
    if (s->client && s->client->on_output)
        s->client->on_output(s->client);
}

static void session_on_output(void *owner, size_t got)
{
    if (got)
        notify_output(owner);
}

/* A reading client holds the shell: it gets stall_ms to make progress. */
static void session_on_paused(void *owner, int paused)
{
    struct session *s = owner;
    if (paused && loop_timer_start(s->ed->loop, &s->stall, s->ed->cfg.stall_ms) < 0)
        log_warn("execd: session %s: timer heap full", s->id);
    if (!paused)
        loop_timer_stop(s->ed->loop, &s->stall);
}

static void session_on_stdin_room(void *owner)
{
    struct session *s = owner;
    if (s->client && s->client->on_stdin_room)
        s->client->on_stdin_room(s->client);
}

static void session_on_reaped(void *owner)
{
    session_set_state(owner, SESSION_EXITING);
}

/* EXITING -> EXITED: the status is known and the output is complete. */
static void session_on_exit(void *owner)
{
    struct session *s = owner;
    int code;
    const char *sig;
    loop_timer_stop(s->ed->loop, &s->stall);
    session_set_state(s, SESSION_EXITED);
    session_exit_info(s, &code, &sig);
    log_info("execd: session %s: shell %d exited (code %d%s%s), %llu bytes of output", s->id,
             (int)s->child.pid, code, sig ? ", " : "", sig ? sig : "",
             (unsigned long long)ring_total(&s->child.ring));
    notify_output(s);
    session_maybe_free(s);
}

static void on_stall_timer(struct loop *l, struct loop_timer *t)
{
    struct session *s = t->data;
    (void)l;
    log_info("execd: session %s: client read nothing for %llu ms; output flows on and the "
             "client will be told what it lost",
             s->id, (unsigned long long)s->ed->cfg.stall_ms);
    s->client_stalled = 1;
    child_update_io(&s->child);
}

static const struct child_ops session_child_ops = {
    .room = session_room,
    .on_output = session_on_output,
    .on_paused = session_on_paused,
    .on_stdin_room = session_on_stdin_room,
    .on_reaped = session_on_reaped,
    .on_exit = session_on_exit,
};

int session_new(struct execd *ed, const struct session_opts *o, struct session **out)
{
    struct session *s;
    if (ed->nsessions >= ed->cfg.max_sessions)
        return -ENOSPC;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    execd_new_id(s->id, 1);
    snprintf(s->label, sizeof(s->label), "session %s", s->id);
    if (child_init(&s->child, ed, s->label, &session_child_ops, s, SESSION_DRAIN_MS) < 0) {
        free(s);
        return -ENOMEM;
    }
    s->env = copy_strv(o->env);
    s->cwd = o->cwd ? strdup(o->cwd) : NULL;
    s->command = o->command ? strdup(o->command) : NULL;
    if (!s->env || (o->cwd && !s->cwd) || (o->command && !s->command))
        goto fail;
    s->ed = ed;
    s->created_at = execd_wall_ms();
    s->cols = o->cols ? o->cols : 80;
    s->rows = o->rows ? o->rows : 24;
    s->stall.cb = on_stall_timer;
    s->stall.data = s;
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

int session_start(struct session *s, enum session_mode mode)
{
    char *argv[8];
    int n = 0, r;
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
    s->mode = mode;
    r = child_spawn(&s->child, &spec);
    if (r < 0) {
        s->mode = SESSION_MODE_NONE;
        return r;
    }
    session_set_state(s, SESSION_RUNNING);
    log_info("execd: session %s: started %s shell %d%s%s", s->id, session_mode_name(mode),
             (int)s->child.pid, s->command ? " running: " : "", s->command ? s->command : "");
    return 0;
}

/* SIGKILL for the shell and everything left in its session. */
static void session_kill(struct session *s)
{
    switch (s->state) {
    case SESSION_RUNNING:
        if (s->mode == SESSION_MODE_PTY && s->child.out_fd >= 0) {
            pid_t fg = tcgetpgrp(s->child.out_fd);
            if (fg > 1)
                kill(-fg, SIGKILL);
        }
        kill(-s->child.pid, SIGKILL);
        proc_kill_session(s->child.pid, SIGKILL, 0);
        break;
    case SESSION_EXITING:
    case SESSION_EXITED:
        /* The leader is reaped, so its pid may belong to someone else now;
         * only members of the old session (pid != sid) are ours. */
        proc_kill_session(s->child.pid, SIGKILL, 1);
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
        child_stop(&s->child);
        loop_timer_stop(ed->loop, &s->stall);
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
    child_update_io(&s->child);
    return 0;
}

void session_detach(struct session *s, struct session_client *c)
{
    if (s->client != c)
        return;
    s->client = NULL;
    s->client_stalled = 0;
    child_update_io(&s->child);
    session_maybe_free(s);
}

int session_peek(struct session *s, const uint8_t **p, size_t *len, uint8_t *channel)
{
    return ring_peek(&s->child.ring, s->cursor, p, len, channel);
}

void session_consume(struct session *s, size_t n)
{
    s->cursor += n;
    if (ring_total(&s->child.ring) - s->cursor <= s->child.ring.cap / 2)
        s->client_stalled = 0;
    if (s->child.paused) /* progress: the client gets another stall_ms */
        (void)loop_timer_start(s->ed->loop, &s->stall, s->ed->cfg.stall_ms);
    child_update_io(&s->child);
}

uint64_t session_skip_lost(struct session *s)
{
    uint64_t oldest = ring_oldest(&s->child.ring);
    if (s->cursor < oldest)
        s->cursor = oldest;
    return s->cursor;
}

int session_stdin(struct session *s, const uint8_t *d, size_t n)
{
    if (s->state != SESSION_RUNNING)
        return -EPIPE;
    return child_stdin(&s->child, d, n);
}

int session_resize(struct session *s, uint16_t cols, uint16_t rows)
{
    s->cols = cols;
    s->rows = rows;
    if (s->mode != SESSION_MODE_PTY)
        return -ENOTTY;
    if (s->child.out_fd < 0)
        return -EPIPE;
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    return ioctl(s->child.out_fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

int session_signal(struct session *s, int signo)
{
    if (s->state != SESSION_RUNNING)
        return -ESRCH;
    if (s->mode == SESSION_MODE_PTY) {
        pid_t fg = s->child.out_fd >= 0 ? tcgetpgrp(s->child.out_fd) : -1;
        if (fg <= 1)
            fg = s->child.pid;
        return kill(-fg, signo) < 0 ? -errno : 0;
    }
    if (proc_kill_children(s->child.pid, signo) > 0)
        return 0;
    return kill(-s->child.pid, signo) < 0 ? -errno : 0;
}

void session_exit_info(const struct session *s, int *exit_code, const char **signame)
{
    child_exit_info(&s->child, exit_code, signame);
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
        (json_int_t)ring_total(&s->child.ring), "oldest_offset",
        (json_int_t)ring_oldest(&s->child.ring),
        "attached", s->client != NULL, "created_at", (json_int_t)s->created_at);
    if (!o)
        return NULL;
    json_object_set_new(o, "mode", mode ? json_string(mode) : json_null());
    json_object_set_new(o, "exit_code",
                        s->state == SESSION_EXITED ? json_integer(code) : json_null());
    if (sig)
        json_object_set_new(o, "signal", json_string(sig));
    if (s->child.pid)
        json_object_set_new(o, "pid", json_integer(s->child.pid));
    return o;
}
