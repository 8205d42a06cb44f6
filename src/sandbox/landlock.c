/* sandbox/landlock: the filesystem policy, through the Landlock syscalls.
 *
 * Two phases (fixing the peer's "after the uid drop" bug): the supervisor
 * opens every path as root and builds the ruleset; the command's process
 * only calls landlock_restrict_self() after no_new_privs. Rights are
 * tailored to the inode type (directory-only rights on a file are refused
 * by the kernel) and limited to what the kernel's ABI handles. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "sandbox/sandbox.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

/* The installed uapi header may predate newer ABIs; the values are fixed. */
#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_WRITE_FILE (1ULL << 1)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_REMOVE_DIR (1ULL << 4)
#define LL_FS_REMOVE_FILE (1ULL << 5)
#define LL_FS_MAKE_CHAR (1ULL << 6)
#define LL_FS_MAKE_DIR (1ULL << 7)
#define LL_FS_MAKE_REG (1ULL << 8)
#define LL_FS_MAKE_SOCK (1ULL << 9)
#define LL_FS_MAKE_FIFO (1ULL << 10)
#define LL_FS_MAKE_BLOCK (1ULL << 11)
#define LL_FS_MAKE_SYM (1ULL << 12)
#define LL_FS_REFER (1ULL << 13)      /* ABI 2 */
#define LL_FS_TRUNCATE (1ULL << 14)   /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15)  /* ABI 5 */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)               /* ABI 6 */
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net; /* ABI 4 */
    uint64_t scoped;             /* ABI 6 */
};

struct ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

#define LL_FILE_RIGHTS (LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | \
                        LL_FS_IOCTL_DEV)

uint64_t landlock_handled(int abi)
{
    if (abi < 1)
        return 0;
    uint64_t r = (LL_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */
    if (abi >= 2)
        r |= LL_FS_REFER;
    if (abi >= 3)
        r |= LL_FS_TRUNCATE;
    if (abi >= 5)
        r |= LL_FS_IOCTL_DEV;
    return r;
}

uint64_t landlock_rights(int abi, bool read_write, bool is_dir)
{
    uint64_t handled = landlock_handled(abi);
    uint64_t r = read_write ? handled : (LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR);
    if (!is_dir)
        r &= LL_FILE_RIGHTS;
    return r & handled;
}

static int ll_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    if (v < 0)
        return -errno;
    return (int)v;
}

static const char *path_reason(int e)
{
    switch (e) {
    case ENOENT:
        return "does not exist";
    case EACCES:
        return "permission denied";
    case ELOOP:
        return "too many symbolic links";
    case ENAMETOOLONG:
        return "name too long";
    case ENOTDIR:
        return "a component is not a directory";
    default:
        return strerror(e);
    }
}

/* Adds one path; returns 1 when added, 0 when skipped (best effort), or
 * -errno (hard requirement or an unexpected kernel error). */
static int open_in_root(int root_fd, const char *path);

static int add_path(int ruleset, int abi, int root_fd, const char *path, bool rw,
                    bool hard, char *err, size_t errcap)
{
    int fd = open_in_root(root_fd, path);
    if (fd < 0) {
        int e = -fd;
        if (hard) {
            snprintf(err, errcap, "landlock: path %s is unavailable in hard_requirement mode "
                     "(%s); create it or remove it from filesystem_policy", path, path_reason(e));
            return -e;
        }
        log_warn("landlock: skipping %s %s: %s", rw ? "read_write" : "read_only", path,
                 path_reason(e));
        return 0;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, errcap, "landlock: cannot stat %s: %s", path, strerror(-rc));
        goto out;
    }
    struct ll_path_beneath_attr pb = {
        .allowed_access = landlock_rights(abi, rw, S_ISDIR(st.st_mode)),
        .parent_fd = fd,
    };
    if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0) < 0) {
        rc = -errno;
        snprintf(err, errcap, "landlock: cannot add a rule for %s: %s", path, strerror(-rc));
        goto out;
    }
    rc = 1;
out:
    close(fd);
    return rc;
}

static int add_counted(struct landlock_prep *out, int root_fd, const char *path, bool rw,
                       char *err, size_t errcap)
{
    int rc = add_path(out->ruleset_fd, out->used_abi, root_fd, path, rw, out->hard, err,
                      errcap);
    if (rc < 0)
        return rc;
    if (rc == 0)
        out->n_skipped++;
    else
        out->n_rules++;
    return 0;
}

int landlock_prepare(const struct policy_fs *fs, const char *workdir, bool hard,
                     struct landlock_prep *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof(*out));
    out->ruleset_fd = -1;
    out->hard = hard;
    size_t n_ro = fs ? fs->n_read_only : 0, n_rw = fs ? fs->n_read_write : 0;
    bool want_workdir = fs && fs->include_workdir && workdir;
    out->n_listed = n_ro + n_rw + (want_workdir ? 1 : 0);
    if (out->n_listed == 0) {
        log_warn("landlock: filesystem_policy lists no paths: the filesystem is NOT restricted");
        return 0;
    }
    int abi = ll_abi();
    if (abi <= 0) {
        if (hard) {
            snprintf(err, errcap, "landlock: not available in this kernel (%s) and "
                     "landlock.compatibility is hard_requirement", strerror(-abi));
            return -EOPNOTSUPP;
        }
        log_warn("landlock: not available in this kernel (%s): the filesystem is NOT "
                 "restricted (best_effort)", strerror(-abi));
        return 0;
    }
    out->abi = abi;
    out->used_abi = abi > LANDLOCK_MAX_ABI ? LANDLOCK_MAX_ABI : abi;
    struct ll_ruleset_attr attr = {.handled_access_fs = landlock_handled(out->used_abi)};
    size_t attr_size = offsetof(struct ll_ruleset_attr, handled_access_net);
    if (out->used_abi >= 6) {
        /* No signals to processes outside the sandbox's Landlock domain, no
         * abstract unix sockets outside it. */
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
        attr_size = sizeof(attr);
    }
    long fd = syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errcap, "landlock: cannot create a ruleset (ABI %d): %s", abi, strerror(e));
        return -e;
    }
    out->ruleset_fd = (int)fd;
    out->fs = fs;
    out->workdir = want_workdir ? workdir : NULL;
    return 0; /* the paths are added by landlock_finish, in the sandbox's tree */
}

/* Opens path inside the sandbox's root (symlinks, absolute ones too,
 * resolved there, never on the host). */
static int open_in_root(int root_fd, const char *path)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
    long fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
    if (fd >= 0 || errno != ENOSYS)
        return fd >= 0 ? (int)fd : -errno;
    while (*path == '/')
        path++;
    fd = openat(root_fd, *path ? path : ".", O_PATH | O_CLOEXEC);
    return fd >= 0 ? (int)fd : -errno;
}

int landlock_finish(struct landlock_prep *p, const char *root, const char *const *extra_ro,
                    char *err, size_t errcap)
{
    if (p->ruleset_fd < 0)
        return 0;
    const struct policy_fs *fs = p->fs;
    size_t n_ro = fs ? fs->n_read_only : 0, n_rw = fs ? fs->n_read_write : 0;
    int rc = 0;
    int root_fd = open(root[0] ? root : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        rc = -errno;
        snprintf(err, errcap, "landlock: cannot open the sandbox's root %s: %s", root,
                 strerror(-rc));
        goto out;
    }
    for (size_t i = 0; i < n_ro + n_rw; i++) {
        bool rw = i >= n_ro;
        const char *path = rw ? fs->read_write[i - n_ro] : fs->read_only[i];
        if ((rc = add_counted(p, root_fd, path, rw, err, errcap)) < 0)
            goto out;
    }
    if (p->workdir && (rc = add_counted(p, root_fd, p->workdir, true, err, errcap)) < 0)
        goto out;
    /* cordon's own files: not counted as the policy's rules. */
    for (size_t i = 0; extra_ro && extra_ro[i]; i++) {
        int fd = open_in_root(root_fd, extra_ro[i]);
        if (fd < 0) {
            rc = fd;
            snprintf(err, errcap, "landlock: cannot open %s: %s", extra_ro[i], strerror(-rc));
            goto out;
        }
        struct ll_path_beneath_attr pb = {
            .allowed_access = landlock_rights(p->used_abi, false, true), .parent_fd = fd};
        rc = syscall(SYS_landlock_add_rule, p->ruleset_fd, LL_RULE_PATH_BENEATH, &pb, 0) < 0
                 ? -errno : 0;
        close(fd);
        if (rc < 0) {
            snprintf(err, errcap, "landlock: cannot add a rule for %s: %s", extra_ro[i],
                     strerror(-rc));
            goto out;
        }
    }
    /* the private HOME (home.c), when the sandbox has one */
    int hfd = open_in_root(root_fd, SANDBOX_HOME);
    if (hfd >= 0) {
        struct ll_path_beneath_attr pb = {
            .allowed_access = landlock_rights(p->used_abi, true, true), .parent_fd = hfd};
        rc = syscall(SYS_landlock_add_rule, p->ruleset_fd, LL_RULE_PATH_BENEATH, &pb, 0) < 0
                 ? -errno : 0;
        close(hfd);
        if (rc < 0) {
            snprintf(err, errcap, "landlock: cannot add a rule for %s: %s", SANDBOX_HOME,
                     strerror(-rc));
            goto out;
        }
    }
    if (p->n_rules == 0) {
        /* An empty ruleset denies everything; running unrestricted would be
         * fail-open: neither. */
        snprintf(err, errcap, "landlock: none of the %zu filesystem_policy paths exists; "
                 "refusing to apply an empty ruleset", p->n_listed);
        rc = -ENOENT;
        goto out;
    }
    log_info("landlock: ABI %d in use (kernel ABI %d), %u rule(s), %u path(s) skipped",
             p->used_abi, p->abi, p->n_rules, p->n_skipped);
    rc = 0;
out:
    if (root_fd >= 0)
        close(root_fd);
    if (rc < 0)
        landlock_prep_close(p);
    return rc;
}

int landlock_apply(const struct landlock_prep *p)
{
    if (p->ruleset_fd < 0)
        return 0;
    if (syscall(SYS_landlock_restrict_self, p->ruleset_fd, 0) < 0)
        return -errno;
    return 0;
}

void landlock_prep_close(struct landlock_prep *p)
{
    if (p->ruleset_fd >= 0)
        close(p->ruleset_fd);
    p->ruleset_fd = -1;
}
