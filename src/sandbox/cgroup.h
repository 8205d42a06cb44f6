/* sandbox/cgroup: the one owner of cgroup handling in cordon.
 *
 * A cordon cgroup is <hierarchy>/<parent>/<name>: one directory on the
 * unified hierarchy (v2) when a cgroup2 mount has the pids controller (or
 * CORDON_CGROUP_V2 names one), else one directory per v1 controller the
 * group needs (pids, memory, cpu for the limits asked for; the freezer
 * always) under /sys/fs/cgroup/<ctrl>/. `cordon run` makes
 * cordon/run-<supervisor pid>-<start time> for each sandbox; `cordon
 * server`'s local driver makes cordon/sbx-<sandbox id> and starts `cordon
 * run --cgroup-inherit` inside it.
 *
 * Every call here is a few file writes; nothing blocks except the two
 * functions that say so (cgroup_kill_wait, cgroup_destroy), which wait a
 * bounded time and are for a process that is exiting. */
#ifndef CORDON_SANDBOX_CGROUP_H
#define CORDON_SANDBOX_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CGROUP_MAX_DIRS 4
#define CGROUP_DEFAULT_PIDS 1024
#define CGROUP_PARENT "cordon" /* where cordon puts its groups in each hierarchy */

struct cgroup_limits {
    uint32_t pids;         /* 0 = no limit */
    uint64_t memory;       /* bytes, 0 = no limit */
    uint32_t cpu_millis;   /* thousandths of a CPU, 0 = no limit */
    bool pids_default;     /* pids is the default (a v2 host without the
                              pids controller only warns) */
};

/* cgroup_create flags */
#define CGROUP_NEED_FREEZER 1u /* v1: no freezer mounted is an error, not a warning */

struct cgroup {
    bool v2;
    size_t n;                              /* directories (v1: one per controller) */
    char dir[CGROUP_MAX_DIRS][PATH_MAX];
    int procs_fd[CGROUP_MAX_DIRS];         /* cgroup.procs, open from create until
                                              cgroup_close_procs (-1 = closed) */
    int pids_idx, mem_idx, freezer_idx;    /* into dir, -1 = none */
    struct cgroup_limits lim;
};

struct cgroup_counters {
    uint64_t pids_refused;  /* forks refused at pids.max */
    uint64_t oom_kills;     /* processes killed at the memory limit */
};

/* An empty handle: no directories, no fds (what a failed create leaves). */
void cgroup_init(struct cgroup *cg);
/* Which hierarchy to use: 1 with v2_root set when a cgroup2 mount has the
 * pids controller (/sys/fs/cgroup, /sys/fs/cgroup/unified; or the one
 * CORDON_CGROUP_V2 names), else 0 with v2_root = "/sys/fs/cgroup" (the v1
 * controllers' mounts are under it): either way v2_root is the root to
 * give cgroup_create. */
int cgroup_detect(char *v2_root, size_t cap);
/* "run-<pid>-<start time>" of this process (cordon run's group name). */
int cgroup_id(char *out, size_t cap) __attribute__((warn_unused_result));
/* Creates root/parent/name (v2) or root/<ctrl>/parent/name for the v1
 * controllers the limits need plus the freezer (parent: one or more path
 * components, made when missing; v2 enables the controllers the limits
 * need in cgroup.subtree_control of root and of each parent), writes the
 * limits, opens cgroup.procs of each. A missing controller a limit needs
 * is an error (and a missing v1 freezer with CGROUP_NEED_FREEZER).
 * Returns 0 or -errno (err says what, where and why); on failure nothing
 * is left. */
int cgroup_create(const char *root, bool v2, const char *parent, const char *name,
                  const struct cgroup_limits *lim, unsigned flags, struct cgroup *out, char *err,
                  size_t errcap) __attribute__((warn_unused_result));
/* Takes hold of an existing group from its directories (as create made
 * them; e.g. a restarted server's record): each must be below
 * root/[<v1 controller>/]cordon/, plain components (no "." or ".."). The controller of each v1
 * directory is found from its files; a directory that no longer exists is
 * kept as an empty part of the group (members 0, removal succeeds).
 * Limits are not read back (lim stays zero). Returns 0 or -errno (err says
 * which directory and why). */
int cgroup_attach(const char *root, bool v2, const char *const *dirs, size_t n,
                  struct cgroup *out, char *err, size_t errcap)
    __attribute__((warn_unused_result));
/* Moves pid into every directory of the group; pid 0 moves the caller.
 * Async-signal-safe (a fork child calls it before exec). Returns 0 or
 * -errno. */
int cgroup_join(const struct cgroup *cg, pid_t pid);
void cgroup_close_procs(struct cgroup *cg);
/* Freezes (true) or thaws (false) every member: v2 cgroup.freeze, v1
 * freezer.state. Does not wait for the kernel to finish freezing.
 * Returns 0, -EOPNOTSUPP without a freezer, or -errno. */
int cgroup_freeze(const struct cgroup *cg, bool frozen) __attribute__((warn_unused_result));
/* Up to cap member pids. Returns the count, 0 when empty or the group is
 * gone, or -errno. */
int cgroup_members(const struct cgroup *cg, pid_t *out, size_t cap)
    __attribute__((warn_unused_result));
/* One pass, without waiting: v2 writes cgroup.kill; otherwise (v1, or a
 * kernel without cgroup.kill) the group is frozen, every member SIGKILLed,
 * then thawed. Returns the number of members signalled (0: it was empty)
 * or -errno. A caller on an event loop repeats it until cgroup_members
 * says empty, then calls cgroup_remove. */
int cgroup_kill(const struct cgroup *cg);
/* Blocking: kills every member (the freeze is waited for) and waits on
 * pidfds, bounded (about 20 s at worst), until the group is empty.
 * Returns the number killed or -errno (-EBUSY: still not empty). */
int cgroup_kill_wait(const struct cgroup *cg);
void cgroup_counters(const struct cgroup *cg, struct cgroup_counters *out);
/* One attempt to remove the directories (closes the procs fds); removed
 * ones stay removed. Returns 0, or -EBUSY while a member (or a task still
 * being unlinked) remains, or -errno. */
int cgroup_remove(struct cgroup *cg);
/* Removes the directories (after cgroup_kill_wait), waiting up to 1 s for
 * the last tasks to be unlinked; logs what stays. Idempotent. */
void cgroup_destroy(struct cgroup *cg);
/* Removes cordon run groups (run-*) whose supervisor is gone (killed with
 * SIGKILL), killing anything still in them. Other names are left alone. */
void cgroup_reap_stale(const char *root, bool v2);

#endif
