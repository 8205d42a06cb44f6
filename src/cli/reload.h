/* cli/reload: policy reload for `cordon run` (SIGHUP and the control
 * socket); see reload.c. */
#ifndef CORDON_CLI_RELOAD_H
#define CORDON_CLI_RELOAD_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli/run_int.h"
#include "core/loop.h"

struct run_reload {
    const char *name;        /* the sandbox's name */
    const char *policy_path; /* re-read on each reload */
    struct run_term *term;   /* where to say what happened, or NULL */
    unsigned generation;     /* 1 = the policy the sandbox started with */
    struct proxy *proxy;     /* numbers each installed policy for its events */
    bool revoke;             /* --revoke-on-reload: close what the new policy refuses */
    int lfd;
    char ctl[108];
    struct loop_io io;
    /* --watch-policy */
    int wfd;                 /* inotify, or -1 */
    struct loop_io wio;
    struct loop_timer settle;
    struct loop *loop;
    /* for `cordon status` (status.c) */
    const char *log_path;    /* the audit log */
    char address[48];        /* the sandbox's IPv4 address */
    uint64_t started_ms;     /* loop_clock_ms() when the command started */
    bool learn;              /* --learn */
};

#define RELOAD_SETTLE_MS 200 /* an editor's burst of writes is one reload */

/* Listens on RUN_CTL_DIR/<name>.ctl (0600) in l. Refuses (-EADDRINUSE) when
 * a live sandbox of that name answers there. Returns 0 or -errno (logged). */
int run_reload_start(struct run_reload *r, struct loop *l) __attribute__((warn_unused_result));
/* --watch-policy: reloads RELOAD_SETTLE_MS after the policy file (or its
 * directory entry: editors replace files by rename) last changed. Call
 * after run_reload_start. Returns 0 or -errno (logged). */
int run_reload_watch(struct run_reload *r, struct loop *l) __attribute__((warn_unused_result));
/* Reloads now (SIGHUP). */
void run_reload_signal(struct run_reload *r);
/* Closes and removes the control socket. */
void run_reload_stop(struct run_reload *r);

/* Client side of any request ("reload\n", "status\n"): the answer in
 * reply. Returns 0 when it answered, or -errno (-ENOENT: no such sandbox). */
int run_ctl_request(const char *name, const char *req, char *reply, size_t cap)
    __attribute__((warn_unused_result));

/* The lock of RUN_CTL_DIR (its .lock file, flock): held by a starting
 * sandbox from its stale-socket check to listen(), and by `cordon status`
 * while it removes sockets nobody listens on. Returns the fd (or -errno:
 * then nothing is locked); run_ctl_unlock(fd) releases it. */
int run_ctl_lock(void);
void run_ctl_unlock(int fd);

/* status.c: the "status" request's answer: one JSON object and "\n". */
void run_status_reply(const struct run_reload *r, char *reply, size_t cap);

/* Client side (`cordon policy reload --sandbox NAME`): asks the sandbox to
 * reload; reply gets its answer (the last line "ok ..." or "error: ...").
 * Returns 0 when it answered, or -errno (-ENOENT: no such sandbox). */
int run_reload_request(const char *name, char *reply, size_t cap)
    __attribute__((warn_unused_result));

#endif
