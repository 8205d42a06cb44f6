/* execd/proc: starting shells and commands, and signalling what they left.
 *
 * Every child gets a new session (setsid), so its pid is also its process
 * group and session id; signals go to groups, never to a bare pid that
 * might have been reused (callers only signal until they have reaped). */
#ifndef CORDON_EXECD_PROC_H
#define CORDON_EXECD_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum proc_io {
    PROC_IO_PTY,      /* one pseudo-terminal for stdin/stdout/stderr, controlling tty */
    PROC_IO_PIPES,    /* three pipes */
    PROC_IO_NULL_IN,  /* stdin /dev/null, stdout and stderr pipes */
};

struct proc_spec {
    const char *path;   /* executable */
    char *const *argv;
    char *const *env;   /* extra "K=V" entries (override execd's), NULL-terminated or NULL */
    const char *cwd;    /* NULL: inherit */
    enum proc_io io;
    uint16_t cols, rows; /* PTY initial size */
    int set_term;       /* add TERM=xterm-256color when the environment has none */
    int has_uid, has_gid;
    uid_t uid;
    gid_t gid;
};

struct proc_child {
    pid_t pid;
    int in_fd;  /* PTY: the master; pipes: write end of stdin; NULL_IN: -1 */
    int out_fd; /* PTY: the master (same fd as in_fd); else read end of stdout */
    int err_fd; /* PTY: -1; else read end of stderr */
};

/* Forks and executes spec. All returned fds are nonblocking and close-on-exec.
 * A failure after the fork (chdir, exec) shows up as exit status 127 with
 * the reason written to the child's stderr. Returns 0 or -errno. */
int proc_spawn(const struct proc_spec *spec, struct proc_child *out)
    __attribute__((warn_unused_result));

/* Sends sig to every process whose session id is sid (found through /proc).
 * With skip_leader, a process whose pid is sid is spared: once the leader
 * has been reaped, such a process is a newcomer that reused the number.
 * Returns how many were signalled. */
int proc_kill_session(pid_t sid, int sig, int skip_leader);
/* Sends sig to every direct child of ppid. Returns how many. */
int proc_kill_children(pid_t ppid, int sig);

/* The RLIMIT_NOFILE soft limit children start with (execd raises its own;
 * children get back the usual one). 0: leave as is. Call at start-up. */
void proc_set_child_nofile(unsigned long soft);

/* Finds an executable named name in $PATH (or takes an absolute path);
 * writes it to out. Returns 0 or -ENOENT. */
int proc_find_exe(const char *name, char *out, size_t cap) __attribute__((warn_unused_result));

#endif
