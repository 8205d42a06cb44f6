/* identity: who is on the other end of an accepted TCP connection.
 *
 * The TCP 4-tuple is mapped to a socket inode with NETLINK_SOCK_DIAG
 * (inet_diag), the inode to its owning process by scanning /proc/PID/fd,
 * and the process to its executable (/proc/PID/exe) and the chain of
 * ancestor executables (via PPid). Executables are trusted on first use:
 * the first time a file is seen its SHA-256 is recorded (keyed by path);
 * if the content later differs the identity reports binary_changed.
 * A socket held by two or more processes is identity_ambiguous.
 *
 * Costs (see procscan.c for the reasoning): a process already seen costs
 * one sock_diag round trip, two small /proc preads, one fd link, a pidfd
 * check and a stat of its exe per connection, plus one read of its whole
 * fd table per burst (that read indexes every socket it holds, so its
 * connections already made are confirmed from the index); a process's
 * first connection may cost a full /proc scan and hashing its (and its
 * ancestors') executables once.
 * Resolved identities are cached per (pid, start time) and re-validated
 * against /proc/PID/exe on every hit (exec keeps the pid).
 *
 * Thread-safe: one identity_cache may be shared by all workers. */
#ifndef CORDON_IDENTITY_IDENTITY_H
#define CORDON_IDENTITY_IDENTITY_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#define IDENTITY_MAX_ANCESTORS 16

struct identity_cache;

struct identity_cache_opts {
    /* When >= 0, only processes whose /proc/PID/ns/net is this namespace
     * (inode of the netns file) may own the socket; -1 = any. */
    long netns_ino;
    /* An fd of the network namespace the clients live in; the sock_diag
     * socket is opened inside it (the sandbox's child netns). -1 = ours. */
    int netns_fd;
    /* Max distinct executables whose hashes are remembered. 0 = 4096.
     * When full, a never-seen executable is not trusted: its connections
     * are denied (identity_unresolved) until the cache is recreated. Known
     * entries are never evicted (evicting one would let a changed binary
     * be trusted "on first use" again). */
    size_t max_binaries;
    /* Fields below were added after the first version; zero = default. */
    /* Max processes whose identity is cached by (pid, start time).
     * 0 = 1024. Clock (second-chance) eviction when full. */
    size_t max_processes;
    /* true: every lookup scans all candidate processes (slowest, no
     * reliance on the snapshot reasoning in procscan.c). false (default):
     * the fast path described in procscan.c. */
    bool strict_owner_scan;
};

/* Creates a cache. opts may be NULL (netns_ino -1, netns_fd -1, defaults).
 * When opts->netns_fd >= 0 the netlink sockets are created inside that
 * namespace (needs CAP_SYS_ADMIN); the fd is not kept (caller still owns
 * it). Returns NULL with errno set on failure. */
struct identity_cache *identity_cache_new(const struct identity_cache_opts *opts);
/* Frees the cache. No identity_resolve() may be running. NULL is a no-op. */
void identity_cache_free(struct identity_cache *c);

/* Reason codes (constants; compare by identity). */
extern const char IDENTITY_REASON_UNRESOLVED[];     /* "identity_unresolved" */
extern const char IDENTITY_REASON_BINARY_CHANGED[]; /* "binary_changed" */
extern const char IDENTITY_REASON_AMBIGUOUS[];      /* "identity_ambiguous" */

struct identity {
    pid_t pid;
    char exe[PATH_MAX];
    size_t n_ancestors;
    char ancestors[IDENTITY_MAX_ANCESTORS][PATH_MAX]; /* nearest parent first */
    pid_t ancestor_pids[IDENTITY_MAX_ANCESTORS];
    char sha256[65];    /* hex of exe's content, "" if not hashed */
    /* exe's link ended in " (deleted)" (stripped from exe above); the hash
     * is still of the running file's content. */
    bool exe_deleted;
    /* The owner's initial environment carries this code-injection
     * variable (identity/taint.c); "" when clean. Policy decides. */
    char tainted_by[32];
    /* Set when resolution failed or integrity was violated: */
    const char *reason_code; /* NULL on success */
    char detail[512];
};

/* Resolves the process owning the connection whose peer (the client) is
 * `peer` and whose local end (our accepted socket) is `local`. Returns 0 with
 * out->reason_code == NULL on success; on failure returns a negative errno
 * and sets out->reason_code and out->detail. Never aborts. */
int identity_resolve(struct identity_cache *c, const struct sockaddr *peer,
                     const struct sockaddr *local, struct identity *out);
/* Errors returned by identity_resolve (reason in parentheses):
 *   -EINVAL     bad addresses (identity_unresolved)
 *   -ENOENT     no TCP socket with that exact 4-tuple in the client netns
 *   -ESRCH      socket found but no process holds it (closed, exited)
 *   -ENOSPC     executable table full (see max_binaries)
 *   -ENOTUNIQ   the socket is held by two or more processes (identity_ambiguous)
 *   -EPERM      exe or an ancestor changed content since first use (binary_changed)
 *   other       /proc or netlink failure (identity_unresolved)
 * Transparent-mode callers: `local` must be the address the client
 * connected to (the original destination), since that is the remote end
 * of the client's socket. */

struct identity_stats {
    unsigned long long resolves, cache_hits, cache_misses;
    unsigned long long fast_owner, full_scans, hashes;
    /* Owner search (procscan.c): /proc/PID/fd directories listed (all, and
     * those of recent owners searched for a socket made since the last
     * scan, which fill the socket index), fd links read, and owners
     * confirmed from the socket index (one link read); owners' tables
     * probed only where the last read found a socket or a free number, how
     * many of those probes found the socket, and the links they read;
     * processes created since the snapshot answered from the read of their
     * table that an earlier lookup kept (no listing). */
    unsigned long long fd_tables, owner_tables, fd_links, index_hits;
    unsigned long long probe_walks, probe_hits, probe_links, late_kept;
};
/* Counters since creation (approximate under concurrency). */
void identity_cache_stats(struct identity_cache *c, struct identity_stats *out);

/* Background upkeep for callers with spare threads (the proxy's identity
 * pool calls it when its queue is empty): renews the /proc snapshot before
 * it expires, so that resolutions do not wait for a full scan. A full
 * scan's time when it renews, else returns at once. 1 when it scanned, 0
 * when not needed, -errno. Thread-safe. */
int identity_cache_refresh(struct identity_cache *c);

#endif
