/* execd/child: the one child-process engine of execd. A shell session
 * (session.c) and a command (command.c, also the runs of bash_session.c)
 * each embed one struct child; it spawns the process, pumps its output into
 * the replay ring, writes its stdin, reaps it and drains what it left.
 *
 * Phases (explicit, logged on every change):
 *   IDLE     set up (ring ready), no process yet
 *   RUNNING  spawned; output flows into the ring while the owner has room
 *   EXITING  reaped; taking what is left in the PTY/pipes
 *   EXITED   status final, output complete, every fd closed
 *
 * Output: reads go into the ring up to the owner's room (ops->room: how
 * many more bytes its reader can lose nothing of; SIZE_MAX = no limit).
 * With no room the output fds leave epoll (a hung-up PTY would otherwise
 * wake every turn) until the owner calls child_update_io(). Per wakeup at
 * most CHILD_READ_BUDGET bytes per fd. A PTY ends at EIO, pipes at EOF.
 *
 * After the reap: with drain_ms > 0 (sessions) the engine waits that long
 * for the outputs to reach EOF, then takes what is buffered (at most
 * CHILD_DRAIN_BUDGET per fd) and ends; with drain_ms == 0 (commands) it
 * takes what is buffered at once, without waiting for EOF (background
 * children may hold the pipes forever). Either way, while the owner has no
 * room the drain waits (sessions: re-checked every drain_ms; commands: at
 * the owner's next child_update_io()), so nothing is lost to a slow reader.
 *
 * Callbacks: on_paused may run inside any child_* call (it only reports
 * the change); on_output and on_exit run from the loop, and from
 * child_update_io() in EXITING, which may end a held drain. */
#ifndef CORDON_EXECD_CHILD_H
#define CORDON_EXECD_CHILD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/loop.h"
#include "execd/proc.h"
#include "execd/reaper.h"
#include "execd/ring.h"

#define CHILD_READ_BUDGET (256 * 1024) /* bytes read per wakeup, per fd */
#define CHILD_DRAIN_BUDGET (8u << 20)  /* bytes taken per fd after the reap */

struct execd;

enum child_phase { CHILD_IDLE, CHILD_RUNNING, CHILD_EXITING, CHILD_EXITED };

struct child_ops {
    /* Bytes that may still be read into the ring (SIZE_MAX: no limit). */
    size_t (*room)(void *owner);
    /* A read finished: got bytes are new in the ring (maybe 0, e.g. EOF). */
    void (*on_output)(void *owner, size_t got);
    /* Reading stopped (paused=1) or resumed because of room. */
    void (*on_paused)(void *owner, int paused);
    /* The stdin buffer fell below half of stdin_max after child_stdin()
     * returned 1. */
    void (*on_stdin_room)(void *owner);
    /* The process was reaped (phase EXITING; status known). */
    void (*on_reaped)(void *owner);
    /* Phase EXITED: output complete, fds closed. The owner may free itself
     * only at the end of the turn (loop_defer). */
    void (*on_exit)(void *owner);
};

struct child {
    struct execd *ed;
    const char *label; /* for logs: "session <id>" / "command <id>" (owner's storage) */
    const struct child_ops *ops;
    void *owner;
    enum child_phase phase;
    int pty;           /* in_fd == out_fd == the master */
    uint64_t drain_ms;
    pid_t pid;
    int wait_status;
    int in_fd, out_fd, err_fd;
    struct loop_io io_out, io_err, io_in;
    struct reaper_watch watch;
    struct loop_timer drain;
    int drain_held;    /* the drain waits for the owner's room */
    int paused;        /* not reading for lack of room */
    struct ring ring;
    uint64_t last_data_ms; /* loop time of the last read that got bytes */
    /* stdin */
    uint8_t *in_buf;
    size_t in_len, in_cap;
    int in_full;
};

/* Sets up ch (ring of ed->cfg.ring_size). Returns 0 or -ENOMEM. */
int child_init(struct child *ch, struct execd *ed, const char *label,
               const struct child_ops *ops, void *owner, uint64_t drain_ms)
    __attribute__((warn_unused_result));
/* Spawns spec (IDLE -> RUNNING). Returns 0 or -errno (then still IDLE). */
int child_spawn(struct child *ch, const struct proc_spec *spec)
    __attribute__((warn_unused_result));
/* The owner's room changed: re-registers the fds, and in EXITING retries a
 * held drain. */
void child_update_io(struct child *ch);
/* Queues stdin. Returns 0, 1 (queued, but the buffer is over stdin_max:
 * wait for on_stdin_room), or -EPIPE (not running, or no stdin). */
int child_stdin(struct child *ch, const uint8_t *d, size_t n);
/* exit_code: WEXITSTATUS, or -1 when killed by a signal (then *signame);
 * -1 and NULL before EXITED. */
void child_exit_info(const struct child *ch, int *exit_code, const char **signame);
/* Stops everything and closes the fds (shutdown; no callbacks). */
void child_stop(struct child *ch);
/* Releases the ring and buffers (after child_stop or EXITED). */
void child_free(struct child *ch);

const char *child_phase_name(enum child_phase p);

#endif
