/* identity internals shared by the files of src/identity/ (not for other
 * modules): sock_diag lookup, /proc owner scan, /proc process facts, TOFU. */
#ifndef CORDON_IDENTITY_IDENTITY_INT_H
#define CORDON_IDENTITY_IDENTITY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

/* ---- sockdiag.c: TCP 4-tuple -> socket inode (NETLINK_SOCK_DIAG) ---- */

struct identity_sockdiag;

/* Opens `nsocks` netlink sockets (1..16), inside the network namespace
 * netns_fd when >= 0 (on a short-lived helper thread, so no caller thread
 * ever changes namespace). Returns 0 or -errno; *out is owned by the caller. */
int identity_sockdiag_new(int netns_fd, unsigned nsocks, struct identity_sockdiag **out)
    __attribute__((warn_unused_result));
void identity_sockdiag_free(struct identity_sockdiag *d);

/* Finds the client's socket: the TCP socket whose local end is `peer` and
 * whose remote end is `local` (the exact 4-tuple; v4-mapped IPv6 addresses
 * are treated as IPv4), in a state plausible right after our accept.
 * Returns 0 with *inode (non-zero) and *uid, -ENOENT when no such socket,
 * -EINVAL for unusable addresses, other -errno on netlink failure.
 * Thread-safe. */
int identity_sockdiag_lookup(struct identity_sockdiag *d, const struct sockaddr *peer,
                             const struct sockaddr *local, uint64_t *inode, uid_t *uid)
    __attribute__((warn_unused_result));

/* ---- proc.c: facts about one process from /proc ---- */

struct identity_fp {            /* fingerprint of an executable file */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
};

void identity_fp_from_stat(const struct stat *st, struct identity_fp *fp);
bool identity_fp_equal(const struct identity_fp *a, const struct identity_fp *b);

/* Reads /proc/PID/stat (relative to proc_fd, an fd of /proc). Returns 0
 * with the parent pid and the start time (clock ticks since boot), or
 * -errno (-ESRCH when the process is gone). Either out may be NULL. */
int identity_proc_stat(int proc_fd, pid_t pid, pid_t *ppid, unsigned long long *start)
    __attribute__((warn_unused_result));

/* 1 when pid is pid 1 of a PID namespace below ours (a sandbox's init),
 * else 0; -errno when /proc/PID/status cannot be read. */
int identity_proc_is_ns_init(int proc_fd, pid_t pid) __attribute__((warn_unused_result));

/* taint.c: when the NUL-separated environment env[0..len) carries a
 * code-injection variable (LD_PRELOAD, LD_AUDIT, NODE_OPTIONS with
 * --require/--import/--loader, BUN_OPTIONS --preload, JAVA_TOOL_OPTIONS /
 * JDK_JAVA_OPTIONS / _JAVA_OPTIONS with -javaagent/-agentpath/-agentlib,
 * PERL5OPT, RUBYOPT -r), copies its name to out and returns 1; else 0.
 * Pure. */
int identity_env_taint_check(const char *env, size_t len, char *out, size_t cap);
/* The same for /proc/PID/environ (the initial environment). 1, 0, or
 * -errno when it cannot be read. */
int identity_proc_env_taint(int proc_fd, pid_t pid, char *out, size_t cap);

/* Thread-group id of task pid (from /proc/PID/status). 0 or -errno. */
int identity_proc_tgid(int proc_fd, pid_t pid, pid_t *tgid) __attribute__((warn_unused_result));

/* readlink /proc/PID/exe into buf (NUL-terminated). A trailing " (deleted)"
 * is removed and reported in *deleted. Returns 0 or -errno (-ENAMETOOLONG
 * when it does not fit). */
int identity_proc_exe(int proc_fd, pid_t pid, char *buf, size_t cap, bool *deleted)
    __attribute__((warn_unused_result));

/* Fingerprint of the file /proc/PID/exe points at (stat through the link,
 * so deleted files work). Returns 0 or -errno. */
int identity_proc_exe_fp(int proc_fd, pid_t pid, struct identity_fp *fp)
    __attribute__((warn_unused_result));

/* Inode of /proc/PID/ns/net. Returns 0 or -errno. */
int identity_proc_netns(int proc_fd, pid_t pid, unsigned long *ino)
    __attribute__((warn_unused_result));

/* Current CLOCK_BOOTTIME in the unit of /proc/PID/stat start times. */
unsigned long long identity_proc_now_ticks(void);

/* Parses a decimal unsigned number of exactly len bytes; 0 or -EINVAL/-ERANGE. */
int identity_parse_u64(const char *s, size_t len, unsigned long long *out)
    __attribute__((warn_unused_result));

/* ---- sockidx.c: where sockets were last seen (hints for procscan) ---- */

struct identity_sockidx;

struct identity_sockfd {        /* one socket fd found in an fd table */
    uint64_t inode;
    int fd;
};

struct identity_sockidx_hint {
    pid_t pid;
    int fd;
    unsigned long long start;   /* pid's start time when it was seen */
    uint64_t seen_ns;           /* CLOCK_MONOTONIC when the table read began */
};

/* A table of about `cap` entries (64..2^20, rounded up) whose entries are
 * returned for max_age_ns after they were seen. Returns 0 or -errno. */
int identity_sockidx_new(size_t cap, uint64_t max_age_ns, struct identity_sockidx **out)
    __attribute__((warn_unused_result));
void identity_sockidx_free(struct identity_sockidx *x);

/* Records that a read of pid's fd table begun at seen_ns found socks[0..n)
 * (pid's start time: start). Full sets lose their oldest entry. */
void identity_sockidx_put(struct identity_sockidx *x, pid_t pid, unsigned long long start,
                          uint64_t seen_ns, const struct identity_sockfd *socks, size_t n);

/* The last sighting of inode, if younger than max_age at now_ns. A hint
 * only: the caller must check it against /proc before relying on it. */
bool identity_sockidx_get(struct identity_sockidx *x, uint64_t inode, uint64_t now_ns,
                          struct identity_sockidx_hint *out);

/* Forgets the sighting of inode in pid (it did not check out). */
void identity_sockidx_drop(struct identity_sockidx *x, uint64_t inode, pid_t pid);

/* ---- procscan.c: socket inode -> the one process holding it ---- */

struct identity_procscan;

/* netns_ino >= 0: only processes in that netns are candidates. strict:
 * always do a full scan. Returns 0 or -errno. */
int identity_procscan_new(int proc_fd, long netns_ino, bool strict,
                          struct identity_procscan **out)
    __attribute__((warn_unused_result));
void identity_procscan_free(struct identity_procscan *ps);

struct identity_owner {
    pid_t pid;
    pid_t ppid;
    unsigned long long start;   /* /proc/PID/stat field 22 */
    bool fast;                  /* answered without a full scan */
    bool indexed;               /* answered from the socket index (sockidx) */
    /* ppid as remembered when the owner was first confirmed, not re-read:
     * re-read /proc/PID/stat before relying on it (it changes when the
     * parent exits). pid and start are always current. */
    bool ppid_stale;
};

/* Finds the process holding socket `inode`. Returns 0 with *out, -ESRCH
 * when no candidate holds it, -ENOTUNIQ when two or more processes hold it
 * (detail names them), other -errno on /proc failure (detail says what).
 * Thread-safe. */
int identity_procscan_find(struct identity_procscan *ps, uint64_t inode,
                           struct identity_owner *out, char *detail, size_t cap)
    __attribute__((warn_unused_result));

/* Records that pid just owned a connection (search order hint). */
void identity_procscan_note(struct identity_procscan *ps, pid_t pid);

/* Rescans ahead of time when the current snapshot is past 3/4 of its life
 * (or retired) and no other scan runs, so that lookups keep using a valid
 * snapshot instead of waiting for the scan. Does nothing before the first
 * lookup, in strict mode, or while a scan runs. 1 when it scanned, 0 when
 * not, -errno. Thread-safe; may take as long as a full scan. */
int identity_procscan_refresh(struct identity_procscan *ps);

struct identity_procscan_stats {
    unsigned long long fd_tables;   /* listings of a /proc/PID/fd directory */
    unsigned long long owner_tables; /* ... of them, a recent owner's in step 3 */
    unsigned long long fd_links;    /* fd links read (readlinkat) */
    unsigned long long index_hits;  /* owners confirmed from the socket index */
    unsigned long long probe_walks; /* owners' tables probed at their socket/free fds */
    unsigned long long probe_hits;  /* ... that found the socket */
    unsigned long long probe_links; /* fd links those probes read */
    unsigned long long late_kept;   /* step 2: new processes answered from a kept read */
};
/* Counters since creation (approximate under concurrency). */
void identity_procscan_stats(struct identity_procscan *ps, struct identity_procscan_stats *out);

/* ---- tofu.c: trust on first use of executables, keyed by path ---- */

struct identity_tofu;

int identity_tofu_new(size_t max_binaries, struct identity_tofu **out)
    __attribute__((warn_unused_result));
void identity_tofu_free(struct identity_tofu *t);

struct identity_tofu_result {
    char sha256[65];        /* hex of the content now (or as first seen) */
    char first_sha256[65];  /* on -EPERM: hash recorded on first use */
    char bad_sha256[65];    /* on -EPERM: the differing hash */
    bool hashed;            /* this call read the file */
};

/* Checks the executable of pid, whose path (from /proc/PID/exe, " (deleted)"
 * stripped) is `path` and whose current fingerprint is *fp. Same
 * fingerprint as recorded -> recorded verdict, no I/O. Otherwise the file
 * is hashed through /proc/PID/exe (never by path). Returns 0 (trusted;
 * res->sha256 set), -EPERM (content differs from first use now or earlier;
 * the path stays denied for the table's life), -ENOSPC (table full, path
 * new), other -errno (could not hash). Thread-safe; hashing happens
 * outside the lock. */
int identity_tofu_check(struct identity_tofu *t, int proc_fd, pid_t pid, const char *path,
                        const struct identity_fp *fp, struct identity_tofu_result *res)
    __attribute__((warn_unused_result));

/* Increases every time a path becomes denied; cached verdicts computed at
 * an older generation must be recomputed. */
uint64_t identity_tofu_generation(struct identity_tofu *t);

/* SHA-256 of the file behind fd (read from offset 0 with pread) as hex.
 * Returns 0 or -errno (-EIO on OpenSSL failure). */
int identity_sha256_fd(int fd, char hex[65]) __attribute__((warn_unused_result));

#endif
