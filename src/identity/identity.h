/* identity: who is on the other end of an accepted TCP connection.
 *
 * The TCP 4-tuple is mapped to a socket inode with NETLINK_SOCK_DIAG
 * (inet_diag), the inode to its owning process by scanning /proc/PID/fd,
 * and the process to its executable (/proc/PID/exe) and the chain of
 * ancestor executables (via PPid). Executables are trusted on first use:
 * the first time a file is seen its SHA-256 is recorded (keyed by path);
 * if the content later differs the identity reports binary_changed.
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
    /* Max distinct executables whose hashes are remembered. */
    size_t max_binaries;
};

struct identity_cache *identity_cache_new(const struct identity_cache_opts *opts);
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

#endif
