/* sandbox/mountns: the sandbox's filesystem view (its mount namespace).
 *
 * The sandbox does not see the host's tree with Landlock on top: it gets a
 * new root that holds only what filesystem_policy lists, the way
 * bubblewrap builds one. Landlock stays as the second layer (landlock.c),
 * but a path that is not listed does not exist inside at all, so nothing
 * Landlock cannot mediate (connect() on a pathname unix socket of a host
 * daemon, for one) can reach it.
 *
 * The new root, built by the sandbox's init in its private mount
 * namespace and then made its root with pivot_root:
 *   /                 a tmpfs, read-only once built (only mount points)
 *   listed paths      bind mounts of the host's, at their canonical path
 *                     (symlinks resolved), read-only unless read_write;
 *                     nosuid, nodev except under /dev
 *   listed symlinks   /bin -> usr/bin & co. recreated as symlinks, so exe
 *                     paths stay canonical (/usr/bin/curl), as on the host
 *   /proc             the sandbox's own procfs (its PID namespace)
 *   /tmp, /dev/shm    private tmpfs (mode 1777), always present, sized
 *                     (MOUNTNS_TMP_SIZE, MOUNTNS_SHM_SIZE)
 *   /dev              a tmpfs with null, zero, full, random, urandom, tty
 *                     bound from the host, fd/stdin/stdout/stderr/ptmx
 *                     symlinks and a new devpts instance (the host's
 *                     devpts and ptmx when the command gets a pty)
 *   /run/cordon       cordon's private tmpfs (the trust bundle)
 *   /run/cordon-home  the private HOME, a tmpfs (home.c, MOUNTNS_HOME_SIZE)
 *
 * The plan is computed by the supervisor (lstat, realpath, sorting: a
 * parent is always mounted before what lies under it); the child only
 * makes system calls (mountplan_apply). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "sandbox/sandbox.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

/* From linux/mount.h (which clashes with sys/mount.h on this libc). */
#define MNT_ATTR_RDONLY 0x00000001
#define MNT_ATTR_NOSUID 0x00000002
#define MNT_ATTR_NODEV 0x00000004
#define MNT_AT_RECURSIVE 0x8000
struct mnt_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

/* The sizes of the private tmpfs the command can write. A tmpfs without
 * size= may grow to half the host's memory, each of them: three of those
 * (/tmp, /dev/shm, HOME) let a sandbox without a memory limit push the host
 * into its OOM killer by writing files. Together these stay at half the
 * host's memory (its pages are also charged to the sandbox's memory cgroup,
 * so a `limits: memory` bounds all three together); inodes are bounded too
 * (each costs kernel memory). */
#define MOUNTNS_TMP_SIZE "size=20%,nr_inodes=1m"
#define MOUNTNS_HOME_SIZE "size=20%,nr_inodes=1m"
#define MOUNTNS_SHM_SIZE "size=10%,nr_inodes=64k"

/* The device nodes of the minimal /dev (bound from the host's). */
static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
static const char *const dev_links[][2] = {
    {"fd", "/proc/self/fd"},     {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
    {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},
};

static bool under(const char *p, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

/* Paths cordon provides itself: a listed path at or under them is not
 * bound from the host (true), except devices outside the minimal set. */
static bool provided(const char *p)
{
    if (under(p, "/proc") || strcmp(p, "/tmp") == 0 || under(p, "/dev/shm") ||
        under(p, "/dev/pts") || strcmp(p, "/dev") == 0 || under(p, SANDBOX_RUN_DIR) ||
        under(p, SANDBOX_HOME))
        return true;
    if (!under(p, "/dev"))
        return false;
    for (size_t i = 0; i < sizeof(dev_nodes) / sizeof(dev_nodes[0]); i++)
        if (strcmp(p + 5, dev_nodes[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof(dev_links) / sizeof(dev_links[0]); i++)
        if (strcmp(p + 5, dev_links[i][0]) == 0)
            return true;
    return false;
}

static int plan_add(struct mountplan *p, enum mnt_kind kind, const char *dst, const char *src,
                    bool ro, bool is_dir)
{
    for (size_t i = 0; i < p->n; i++) {
        struct mnt_op *o = &p->ops[i];
        if (strcmp(o->dst, dst) != 0)
            continue;
        if (o->kind == MNT_BIND && kind == MNT_BIND)
            o->read_only = o->read_only && ro; /* listed twice: read_write wins */
        return 0; /* the first op for a path stands */
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 32;
        struct mnt_op *ops = realloc(p->ops, cap * sizeof(*ops));
        if (!ops)
            return -ENOMEM;
        p->ops = ops;
        p->cap = cap;
    }
    struct mnt_op *o = &p->ops[p->n];
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    o->read_only = ro;
    o->is_dir = is_dir;
    o->dst = strdup(dst);
    o->src = src ? strdup(src) : NULL;
    if (!o->dst || (src && !o->src)) {
        free(o->dst);
        free(o->src);
        return -ENOMEM;
    }
    p->n++;
    return 0;
}

/* One listed path: a bind of its canonical path, plus the symlink the
 * policy named when only its last component is one (/bin -> usr/bin).
 * Missing paths are skipped (landlock.c warns or, in hard_requirement
 * mode, refuses). */
static int plan_path(struct mountplan *p, const char *path, bool ro)
{
    if (provided(path))
        return 0;
    char real[PATH_MAX];
    struct stat st;
    if (!realpath(path, real) || stat(real, &st) < 0) {
        log_debug("mountns: %s is not on the host (%s): not in the sandbox", path,
                  strerror(errno));
        return 0;
    }
    if (provided(real))
        return 0;
    int rc = plan_add(p, MNT_BIND, real, real, ro, S_ISDIR(st.st_mode));
    if (rc < 0 || strcmp(real, path) == 0)
        return rc;
    struct stat lst;
    char target[PATH_MAX], parent[PATH_MAX], parent_real[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash == parent)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    if (lstat(path, &lst) < 0 || !S_ISLNK(lst.st_mode) || !realpath(parent, parent_real) ||
        strcmp(parent, parent_real) != 0) {
        log_debug("mountns: %s is visible in the sandbox as %s only", path, real);
        return 0;
    }
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0)
        return 0;
    target[n] = '\0';
    return plan_add(p, MNT_SYMLINK, path, target, true, false);
}

static int op_cmp(const void *a, const void *b)
{
    return strcmp(((const struct mnt_op *)a)->dst, ((const struct mnt_op *)b)->dst);
}

/* A canonical bind under another one with the same or wider rights shows
 * the same files: one mount fewer at every start (/usr and /bin ->
 * usr/bin both listed). The ops are sorted, so ancestors come first. */
static void drop_covered(struct mountplan *p)
{
    size_t w = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct mnt_op *o = &p->ops[i];
        bool covered = false;
        for (size_t j = 0; o->kind == MNT_BIND && j < w && !covered; j++) {
            const struct mnt_op *a = &p->ops[j];
            covered = a->kind == MNT_BIND && a->is_dir && under(o->dst, a->dst) &&
                      (!a->read_only || o->read_only);
        }
        /* ...unless a private mount sits between them (/tmp in a bind of /). */
        for (size_t j = 0; covered && j < w; j++) {
            const struct mnt_op *a = &p->ops[j];
            if (a->kind != MNT_BIND && a->kind != MNT_DIR && a->kind != MNT_SYMLINK &&
                under(o->dst, a->dst))
                covered = false;
        }
        if (covered) {
            free(o->dst);
            free(o->src);
            continue;
        }
        p->ops[w++] = *o;
    }
    p->n = w;
}

int mountplan_build(const struct policy_fs *fs, const char *workdir, struct mountplan *out)
{
    memset(out, 0, sizeof(*out));
    size_t n_ro = fs ? fs->n_read_only : 0, n_rw = fs ? fs->n_read_write : 0;
    bool want_workdir = fs && fs->include_workdir && workdir;
    if (n_ro + n_rw + (want_workdir ? 1 : 0) == 0) {
        log_warn("mountns: filesystem_policy lists no paths: the sandbox sees the host's "
                 "whole tree");
        return 0;
    }
    out->enabled = true;
    int rc;
    if ((rc = plan_add(out, MNT_PROC, "/proc", NULL, false, true)) < 0 ||
        (rc = plan_add(out, MNT_TMPFS, "/tmp", "mode=1777," MOUNTNS_TMP_SIZE, false, true)) < 0 ||
        (rc = plan_add(out, MNT_DEV, "/dev", "mode=0755", false, true)) < 0 ||
        (rc = plan_add(out, MNT_TMPFS, "/dev/shm", "mode=1777," MOUNTNS_SHM_SIZE, false,
                       true)) < 0 ||
        (rc = plan_add(out, MNT_TMPFS, SANDBOX_RUN_DIR, "mode=0755,size=4m", false, true)) < 0 ||
        (rc = plan_add(out, MNT_TMPFS, SANDBOX_HOME, "mode=0700," MOUNTNS_HOME_SIZE, false,
                       true)) < 0)
        goto out;
    for (size_t i = 0; i < n_ro + n_rw; i++) {
        bool rw = i >= n_ro;
        if ((rc = plan_path(out, rw ? fs->read_write[i - n_ro] : fs->read_only[i], !rw)) < 0)
            goto out;
    }
    if (want_workdir && (rc = plan_path(out, workdir, false)) < 0)
        goto out;
    /* The working directory exists even when it is not listed (chdir must
     * work; Landlock then refuses what the policy does not grant). */
    if (workdir && !provided(workdir) && (rc = plan_add(out, MNT_DIR, workdir, NULL, true,
                                                        true)) < 0)
        goto out;
    qsort(out->ops, out->n, sizeof(*out->ops), op_cmp);
    drop_covered(out);
    rc = 0;
out:
    if (rc < 0)
        mountplan_free(out);
    return rc;
}

void mountplan_free(struct mountplan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->ops[i].dst);
        free(p->ops[i].src);
    }
    free(p->ops);
    memset(p, 0, sizeof(*p));
}

/* ---- the child side: system calls only ---- */

static size_t slen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

/* base + dst into buf; returns 0 or -ENAMETOOLONG. */
static int join(char *buf, size_t cap, const char *base, const char *dst)
{
    size_t b = slen(base), d = slen(dst);
    if (d == 1 && dst[0] == '/')
        d = 0;
    if (b + d + 1 > cap)
        return -ENAMETOOLONG;
    memcpy(buf, base, b);
    memcpy(buf + b, dst, d);
    buf[b + d] = '\0';
    return 0;
}

/* mkdir -p of path's components after the first skip bytes (the base). */
static int mkdirs(char *path, size_t skip, bool last)
{
    size_t n = slen(path);
    for (size_t i = skip + 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        if (path[i] == '\0' && !last)
            break;
        char c = path[i];
        path[i] = '\0';
        int rc = mkdir(path, 0755) < 0 && errno != EEXIST ? -errno : 0;
        path[i] = c;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int make_file(char *path, size_t skip)
{
    int rc = mkdirs(path, skip, false);
    if (rc < 0)
        return rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return errno == EEXIST || errno == EISDIR ? 0 : -errno;
    close(fd);
    return 0;
}

static int set_attrs(const char *path, uint64_t set, bool recursive)
{
    struct mnt_attr a = {.attr_set = set};
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, recursive ? MNT_AT_RECURSIVE : 0, &a,
                sizeof(a)) == 0)
        return 0;
    if (errno != ENOSYS)
        return -errno;
    unsigned long fl = MS_REMOUNT | MS_BIND;
    if (set & MNT_ATTR_RDONLY)
        fl |= MS_RDONLY;
    if (set & MNT_ATTR_NOSUID)
        fl |= MS_NOSUID;
    if (set & MNT_ATTR_NODEV)
        fl |= MS_NODEV;
    return mount(NULL, path, NULL, fl, NULL) < 0 ? -errno : 0;
}

static int apply_bind(const struct mnt_op *o, char *path, size_t skip)
{
    int rc = o->is_dir ? mkdirs(path, skip, true) : make_file(path, skip);
    if (rc < 0)
        return rc;
    if (mount(o->src, path, NULL, MS_BIND | MS_REC, NULL) < 0)
        return -errno;
    uint64_t set = MNT_ATTR_NOSUID;
    if (o->read_only)
        set |= MNT_ATTR_RDONLY;
    if (!under(o->dst, "/dev"))
        set |= MNT_ATTR_NODEV;
    return set_attrs(path, set, true);
}

static int apply_dev(char *path, size_t skip, bool host_pts)
{
    int rc = mkdirs(path, skip, true);
    if (rc < 0)
        return rc;
    if (mount("cordon-dev", path, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755") < 0)
        return -errno;
    size_t n = slen(path);
    char buf[PATH_MAX], src[32];
    if (n + 16 > sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, path, n);
    buf[n] = '/';
    for (size_t i = 0; i < sizeof(dev_nodes) / sizeof(dev_nodes[0]); i++) {
        size_t l = slen(dev_nodes[i]);
        memcpy(buf + n + 1, dev_nodes[i], l + 1);
        memcpy(src, "/dev/", 5);
        memcpy(src + 5, dev_nodes[i], l + 1);
        struct stat st;
        if (stat(src, &st) < 0)
            continue; /* not on this host */
        if ((rc = make_file(buf, n)) < 0)
            return rc;
        if (mount(src, buf, NULL, MS_BIND, NULL) < 0)
            return -errno;
    }
    for (size_t i = 0; i < sizeof(dev_links) / sizeof(dev_links[0]); i++) {
        size_t l = slen(dev_links[i][0]);
        if (host_pts && i == sizeof(dev_links) / sizeof(dev_links[0]) - 1)
            break; /* ptmx: the host's, below */
        memcpy(buf + n + 1, dev_links[i][0], l + 1);
        if (symlink(dev_links[i][1], buf) < 0 && errno != EEXIST)
            return -errno;
    }
    memcpy(buf + n + 1, "pts", 4);
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -errno;
    if (host_pts) {
        /* The command's terminal is a pty of the host's devpts: ttyname()
         * must find it. Other users' ptys there are closed to the
         * sandbox's user by their modes. */
        if (mount("/dev/pts", buf, NULL, MS_BIND | MS_REC, NULL) < 0)
            return -errno;
        memcpy(buf + n + 1, "ptmx", 5);
        if ((rc = make_file(buf, n)) < 0)
            return rc;
        if (mount("/dev/ptmx", buf, NULL, MS_BIND, NULL) < 0)
            return -errno;
        return 0;
    }
    /* A devpts of its own (ptys for programs inside); the host's ptys stay
     * out of sight. Not fatal: nothing inside needs a pty to run. */
    (void)mount("devpts", buf, "devpts", MS_NOSUID | MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620");
    return 0;
}

bool sandbox_path_private(const char *path)
{
    return path && provided(path);
}

int mountplan_apply(const struct mountplan *p, const char *base, size_t *failed)
{
    *failed = (size_t)-1;
    if (!p->enabled)
        return 0;
    if (mount("cordon-root", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
        return -errno;
    size_t skip = slen(base);
    char path[PATH_MAX];
    for (size_t i = 0; i < p->n; i++) {
        const struct mnt_op *o = &p->ops[i];
        *failed = i;
        int rc = join(path, sizeof(path), base, o->dst);
        if (rc < 0)
            return rc;
        switch (o->kind) {
        case MNT_BIND:
            rc = apply_bind(o, path, skip);
            break;
        case MNT_DIR:
            rc = mkdirs(path, skip, true);
            break;
        case MNT_SYMLINK:
            if ((rc = mkdirs(path, skip, false)) == 0 && symlink(o->src, path) < 0 &&
                errno != EEXIST)
                rc = -errno;
            break;
        case MNT_TMPFS:
            if ((rc = mkdirs(path, skip, true)) == 0 &&
                mount("cordon-tmp", path, "tmpfs", MS_NOSUID | MS_NODEV, o->src) < 0)
                rc = -errno;
            break;
        case MNT_PROC:
            if ((rc = mkdirs(path, skip, true)) == 0 &&
                mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                rc = -errno;
            break;
        case MNT_DEV:
            rc = apply_dev(path, skip, p->host_pts);
            break;
        }
        if (rc < 0)
            return rc;
    }
    *failed = (size_t)-1;
    /* The new tree becomes the root; the host's is detached from this
     * namespace (pivot_root(".", ".") stacks the old root on the new one). */
    if (chdir(base) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
        umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
        return -errno;
    return set_attrs("/", MNT_ATTR_RDONLY | MNT_ATTR_NOSUID | MNT_ATTR_NODEV, false);
}
