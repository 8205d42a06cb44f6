/* execd/reaper: reaps every child through a signalfd for SIGCHLD.
 *
 * SIGCHLD must be blocked in every thread before reaper_new() (the CLI does
 * it first thing). On each wakeup all exited children are collected with
 * waitpid(-1, WNOHANG); a child someone watches gets its callback, any other
 * (an orphan re-parented to us, a deleted session's shell) is just reaped.
 * Loop-thread only. */
#ifndef CORDON_EXECD_REAPER_H
#define CORDON_EXECD_REAPER_H

#include <sys/types.h>

struct loop;
struct reaper;

struct reaper_watch;
/* status is the raw wait status. The watch is already removed. */
typedef void (*reaper_cb)(struct reaper_watch *w, int status);

/* Embed in the owner. */
struct reaper_watch {
    pid_t pid;
    reaper_cb cb;
    void *data;
    struct reaper_watch *next, *prev;
    int active;
};

int reaper_new(struct loop *l, struct reaper **out) __attribute__((warn_unused_result));
void reaper_free(struct reaper *r);
/* Starts watching pid (call right after fork, before returning to the loop). */
void reaper_watch(struct reaper *r, struct reaper_watch *w, pid_t pid, reaper_cb cb, void *data);
/* Stops watching (the child will still be reaped, silently). */
void reaper_unwatch(struct reaper *r, struct reaper_watch *w);

#endif
