/* execd/session: one long-lived shell, its output ring and its one client.
 *
 * States (explicit, logged on every change):
 *   CREATED  registered, no process yet (the first attach picks PTY or pipes)
 *   RUNNING  the shell runs; output flows into the ring
 *   EXITING  the shell was reaped; reading what it left in the PTY/pipes
 *   EXITED   exit status final, output complete, fds closed
 * A deleted session leaves the registry at once and is freed when it has
 * exited and no client holds it.
 *
 * Output: the ring keeps the newest ring_size bytes. With no client (or a
 * stalled one) output always flows and old bytes are overwritten. With a
 * reading client, the session stops reading the shell rather than overwrite
 * bytes the client has not been sent yet; if the client makes no progress
 * for stall_ms, output flows again and the client later learns how many
 * bytes it lost. Memory per session is therefore ring_size + stdin_max +
 * one client message, whatever the client does. */
#ifndef CORDON_EXECD_SESSION_H
#define CORDON_EXECD_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/loop.h"
#include "execd/child.h"
#include "execd/ring.h"

struct execd;

enum session_state { SESSION_CREATED, SESSION_RUNNING, SESSION_EXITING, SESSION_EXITED };
enum session_mode { SESSION_MODE_NONE, SESSION_MODE_PTY, SESSION_MODE_PIPE };

/* The attached client. Callbacks never run inside a session_* call made by
 * that client. */
struct session_client {
    /* New output in the ring, or the session reached EXITED. */
    void (*on_output)(struct session_client *c);
    /* The stdin buffer has room again after session_stdin() returned 1. */
    void (*on_stdin_room)(struct session_client *c);
};

struct session_opts {
    const char *cwd;       /* NULL: execd's */
    char **env;            /* "K=V" strings, NULL-terminated; copied */
    const char *command;   /* NULL: interactive shell; else bash -c command */
    uint16_t cols, rows;
};

struct session {
    struct execd *ed;
    struct session *next, *prev; /* ed->sessions, or ed->dying once deleted */
    char id[37];
    enum session_state state;
    enum session_mode mode;
    int deleted;
    int freeing; /* the free is scheduled */
    uint64_t created_at; /* wall ms */
    /* spawn parameters */
    char *cwd, *command;
    char **env;
    uint16_t cols, rows;
    /* the shell: process, output ring, stdin (execd/child) */
    struct child child;
    char label[48];     /* "session <id>" for the engine's logs */
    struct loop_timer stall;
    struct loop_deferred defer;
    /* output */
    uint64_t cursor;    /* next byte for the client */
    int client_stalled; /* the client stopped reading; output flows anyway */
    struct session_client *client;
};

/* Registers a new session (not started). Returns 0 and *out, -ENOSPC when
 * max_sessions is reached, -ENOMEM. */
int session_new(struct execd *ed, const struct session_opts *o, struct session **out)
    __attribute__((warn_unused_result));
struct session *session_find(struct execd *ed, const char *id);
/* Starts the shell in mode (CREATED -> RUNNING). Returns 0 or -errno. */
int session_start(struct session *s, enum session_mode mode) __attribute__((warn_unused_result));
/* Kills the shell and everything in its session, unregisters s; s is freed
 * once it has exited and has no client (maybe before this returns). */
void session_delete(struct session *s);
/* Kills all sessions (shutdown). */
void session_kill_all(struct execd *ed);
/* Releases every session's fds and memory (after the loop has stopped). */
void session_free_all(struct execd *ed);

/* Attaches c with its cursor at `cursor` (clamped by the caller). Returns 0
 * or -EBUSY when another client holds the session. */
int session_attach(struct session *s, struct session_client *c, uint64_t cursor)
    __attribute__((warn_unused_result));
void session_detach(struct session *s, struct session_client *c);
/* The client's next contiguous output at its cursor: 0 with *len (0 = none
 * yet), or -ERANGE when the cursor fell out of the ring (call
 * session_skip_lost). */
int session_peek(struct session *s, const uint8_t **p, size_t *len, uint8_t *channel)
    __attribute__((warn_unused_result));
void session_consume(struct session *s, size_t n);
/* Moves a lost cursor to the oldest kept byte; returns the new cursor. */
uint64_t session_skip_lost(struct session *s);

/* Queues stdin. Returns 0, 1 (queued, but the buffer is over stdin_max:
 * stop reading until on_stdin_room), or -EPIPE (no running shell). */
int session_stdin(struct session *s, const uint8_t *d, size_t n);
/* PTY only (-ENOTTY for pipes): sets the window size. */
int session_resize(struct session *s, uint16_t cols, uint16_t rows);
/* Sends signo to what is running in the foreground: the terminal's
 * foreground process group (PTY) or the shell's children, else the shell
 * (pipes). Returns 0 or -errno. */
int session_signal(struct session *s, int signo);

const char *session_mode_name(enum session_mode m);
const char *session_state_name(enum session_state st);
/* exit_code: WEXITSTATUS, or -1 when killed by a signal (then *signame). */
void session_exit_info(const struct session *s, int *exit_code, const char **signame);
/* Status object (jansson json_t *). */
void *session_status_json(const struct session *s);

#endif
