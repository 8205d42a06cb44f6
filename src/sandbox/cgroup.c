/* sandbox/cgroup: cordon's cgroups (see cgroup.h): process, memory and CPU
 * limits, freeze/thaw, membership, a teardown that kills everything in one.
 *
 * cordon run's layout: <hierarchy>/cordon/run-<supervisor pid>-<its start time>/, one
 * directory per v1 controller (pids, memory, cpu, freezer) on a v1 or
 * hybrid host, one directory on the unified hierarchy (v2) when that
 * hierarchy has the pids controller. The sandbox's init writes itself into
 * cgroup.procs (through fds the supervisor opened) before it unshares its
 * cgroup namespace, so everything the command starts is inside and sees
 * the sandbox's cgroup as "/"; the cgroup filesystem is not in the
 * sandbox's tree and its files belong to root, so nothing can leave.
 *
 * cordon server's local driver makes cordon/sbx-<id> the same way and
 * drives it from its event loop: cgroup_join in the fork child, freeze and
 * thaw for pause/resume, cgroup_kill (one pass, no waiting) repeated until
 * cgroup_members is empty, then cgroup_remove.
 *
 * Teardown of cordon run (cgroup_kill_wait): v2 writes cgroup.kill; v1
 * freezes the cgroup, SIGKILLs every task and thaws it. Both then wait, on
 * pidfds, until the cgroup is empty and remove the directories
 * (cgroup_destroy). A supervisor killed with SIGKILL leaves its
 * directories behind (their processes die with the sandbox's init): the
 * next `cordon run` removes the directories of supervisors that no longer
 * exist (cgroup_reap_stale). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/parse.h"
#include "identity/identity_int.h"
#include "sandbox/cgroup.h"
#include "core/banned.h"

static const char *const v1_ctrls[] = {"pids", "memory", "cpu", "freezer"};

static int write_file(const char *dir, const char *name, const char *val)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t len = strlen(val);
    ssize_t n = write(fd, val, len);
    int rc = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
    close(fd);
    return rc;
}

static ssize_t read_file(const char *dir, const char *name, char *buf, size_t cap)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

/* "key N" in a flat keyed file (pids.events, memory.events,
 * memory.oom_control); 0 when absent. */
static uint64_t keyed_value(const char *dir, const char *file, const char *key)
{
    char buf[4096];
    if (read_file(dir, file, buf, sizeof(buf)) <= 0)
        return 0;
    size_t kl = strlen(key);
    for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, key, kl) != 0 || l[kl] != ' ')
            continue;
        char *end = l + kl + 1;
        while (*end >= '0' && *end <= '9')
            end++;
        uint32_t v;
        if (parse_u32(l + kl + 1, (size_t)(end - (l + kl + 1)), 0, UINT32_MAX, &v) == 0)
            return v;
    }
    return 0;
}

static bool has_word(const char *list, const char *w)
{
    size_t wl = strlen(w);
    for (const char *p = list; (p = strstr(p, w)); p += wl)
        if ((p == list || p[-1] == ' ') && (p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\n'))
            return true;
    return false;
}

int cgroup_detect(char *v2_root, size_t cap)
{
    const char *forced = getenv("CORDON_CGROUP_V2");
    if (forced && forced[0]) {
        snprintf(v2_root, cap, "%s", forced);
        return 1;
    }
    static const char *const cands[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
    for (size_t i = 0; i < 2; i++) {
        char buf[512];
        if (read_file(cands[i], "cgroup.controllers", buf, sizeof(buf)) > 0 &&
            has_word(buf, "pids")) {
            snprintf(v2_root, cap, "%s", cands[i]);
            return 1;
        }
    }
    snprintf(v2_root, cap, "/sys/fs/cgroup");
    return 0;
}

static int mkdir_ok(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

/* True when parent is one or more plain path components. */
static bool parent_ok(const char *parent)
{
    if (!parent[0] || parent[0] == '/')
        return false;
    for (const char *c = parent; *c;) {
        size_t l = strcspn(c, "/");
        if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c += l;
        if (*c == '/')
            c++;
    }
    return parent[strlen(parent) - 1] != '/';
}

/* Makes base/parent, one component at a time; with enable (v2) writes it
 * into cgroup.subtree_control of base and of each component, so that the
 * group made below has those controllers. */
static int make_parent(const char *base, const char *parent, const char *enable, char *err,
                       size_t errcap)
{
    char path[PATH_MAX];
    int rc;
    if (enable && (rc = write_file(base, "cgroup.subtree_control", enable)) < 0) {
        snprintf(err, errcap, "cgroup: cannot write %s to %s/cgroup.subtree_control: %s",
                 enable, base, strerror(-rc));
        return rc;
    }
    size_t bl = strlen(base);
    if (bl + 1 + strlen(parent) >= sizeof(path))
        return -ENAMETOOLONG;
    memcpy(path, base, bl);
    path[bl] = '/';
    for (const char *c = parent;;) {
        size_t l = strcspn(c, "/");
        size_t pl = (size_t)(c - parent) + l;
        memcpy(path + bl + 1, parent, pl);
        path[bl + 1 + pl] = '\0';
        if ((rc = mkdir_ok(path)) < 0) {
            snprintf(err, errcap, "cgroup: cannot create %s: %s", path, strerror(-rc));
            return rc;
        }
        if (enable && (rc = write_file(path, "cgroup.subtree_control", enable)) < 0) {
            snprintf(err, errcap, "cgroup: cannot write %s to %s/cgroup.subtree_control: %s",
                     enable, path, strerror(-rc));
            return rc;
        }
        if (!c[l])
            return 0;
        c += l + 1;
    }
}

static int add_dir(struct cgroup *cg, const char *base, const char *parent, const char *name,
                   char *err, size_t errcap)
{
    char path[PATH_MAX];
    int rc;
    if (!cg->v2 && (rc = make_parent(base, parent, NULL, err, errcap)) < 0)
        return rc;
    char *dir = cg->dir[cg->n];
    if ((size_t)snprintf(dir, sizeof(cg->dir[0]), "%s/%s/%s", base, parent, name) >=
        sizeof(cg->dir[0]))
        return -ENAMETOOLONG;
    if (mkdir(dir, 0755) < 0) {
        rc = -errno;
        snprintf(err, errcap, "cgroup: cannot create %s: %s", dir, strerror(-rc));
        return rc;
    }
    cg->n++;
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errcap, "cgroup: cannot open %s: %s", path, strerror(-rc));
        return rc;
    }
    cg->procs_fd[cg->n - 1] = fd;
    return 0;
}

static int set_limit(const char *dir, const char *file, const char *val, char *err,
                     size_t errcap)
{
    int rc = write_file(dir, file, val);
    if (rc < 0)
        snprintf(err, errcap, "cgroup: cannot write %s to %s/%s: %s", val, dir, file,
                 strerror(-rc));
    return rc;
}

static int create_v1(struct cgroup *cg, const char *root, const char *parent, const char *name,
                     const struct cgroup_limits *lim, unsigned flags, char *err, size_t errcap)
{
    char val[64];
    int rc;
    bool want[4] = {lim->pids != 0, lim->memory != 0, lim->cpu_millis != 0, true};
    /* Every controller needed is there before anything is made. */
    for (size_t i = 0; i < sizeof(v1_ctrls) / sizeof(v1_ctrls[0]); i++) {
        char base[PATH_MAX];
        struct stat st;
        snprintf(base, sizeof(base), "%s/%s", root, v1_ctrls[i]);
        if (!want[i] || (stat(base, &st) == 0 && S_ISDIR(st.st_mode)))
            continue;
        if (i == 3 && !(flags & CGROUP_NEED_FREEZER)) {
            log_warn("cgroup: no v1 freezer at %s: teardown kills without freezing", base);
            want[i] = false;
            continue;
        }
        snprintf(err, errcap, "cgroup: the %s controller is not mounted at %s (needed %s)",
                 v1_ctrls[i], base, i == 3 ? "to freeze and thaw the group" : i == 0 ?
                 "for the pids limit" : i == 1 ? "for the memory limit" : "for the cpu limit");
        return -EOPNOTSUPP;
    }
    for (size_t i = 0; i < sizeof(v1_ctrls) / sizeof(v1_ctrls[0]); i++) {
        if (!want[i])
            continue;
        char base[PATH_MAX];
        snprintf(base, sizeof(base), "%s/%s", root, v1_ctrls[i]);
        size_t idx = cg->n;
        if ((rc = add_dir(cg, base, parent, name, err, errcap)) < 0)
            return rc;
        const char *dir = cg->dir[idx];
        if (i == 0) {
            cg->pids_idx = (int)idx;
            snprintf(val, sizeof(val), "%" PRIu32, lim->pids);
            if ((rc = set_limit(dir, "pids.max", val, err, errcap)) < 0)
                return rc;
        } else if (i == 1) {
            cg->mem_idx = (int)idx;
            snprintf(val, sizeof(val), "%" PRIu64, lim->memory);
            if ((rc = set_limit(dir, "memory.limit_in_bytes", val, err, errcap)) < 0)
                return rc;
            /* Swap counts too where the kernel accounts it (no escape into swap). */
            (void)write_file(dir, "memory.memsw.limit_in_bytes", val);
        } else if (i == 2) {
            if ((rc = set_limit(dir, "cpu.cfs_period_us", "100000", err, errcap)) < 0)
                return rc;
            snprintf(val, sizeof(val), "%" PRIu32, lim->cpu_millis * 100);
            if ((rc = set_limit(dir, "cpu.cfs_quota_us", val, err, errcap)) < 0)
                return rc;
        } else {
            cg->freezer_idx = (int)idx;
        }
    }
    return 0;
}

static int create_v2(struct cgroup *cg, const char *root, const char *parent, const char *name,
                     const struct cgroup_limits *lim, char *err, size_t errcap)
{
    char avail[512] = "", val[64];
    int rc;
    (void)read_file(root, "cgroup.controllers", avail, sizeof(avail));
    static const char *const ctrls[] = {"pids", "memory", "cpu"};
    bool use[3] = {lim->pids != 0, lim->memory != 0, lim->cpu_millis != 0};
    char enable[64] = "";
    for (size_t i = 0; i < 3; i++) {
        if (!use[i])
            continue;
        if (!has_word(avail, ctrls[i])) {
            if (i == 0 && lim->pids_default) {
                log_warn("cgroup: no pids controller on %s: the sandbox has no process limit",
                         root);
                use[i] = false;
                continue;
            }
            snprintf(err, errcap, "cgroup: the %s controller is not available on %s (needed "
                     "for the %s limit)", ctrls[i], root, ctrls[i]);
            return -EOPNOTSUPP;
        }
        size_t l = strlen(enable);
        snprintf(enable + l, sizeof(enable) - l, "%s+%s", l ? " " : "", ctrls[i]);
    }
    if ((rc = make_parent(root, parent, enable[0] ? enable : NULL, err, errcap)) < 0)
        return rc;
    if ((rc = add_dir(cg, root, parent, name, err, errcap)) < 0)
        return rc;
    const char *dir = cg->dir[0];
    cg->pids_idx = use[0] ? 0 : -1;
    cg->mem_idx = use[1] ? 0 : -1;
    cg->freezer_idx = 0; /* cgroup.freeze is in every non-root v2 group */
    if (use[0]) {
        snprintf(val, sizeof(val), "%" PRIu32, lim->pids);
        if ((rc = set_limit(dir, "pids.max", val, err, errcap)) < 0)
            return rc;
    }
    if (use[1]) {
        snprintf(val, sizeof(val), "%" PRIu64, lim->memory);
        if ((rc = set_limit(dir, "memory.max", val, err, errcap)) < 0 ||
            (rc = set_limit(dir, "memory.swap.max", "0", err, errcap)) < 0)
            return rc;
    }
    if (use[2]) {
        snprintf(val, sizeof(val), "%" PRIu32 " 100000", lim->cpu_millis * 100);
        if ((rc = set_limit(dir, "cpu.max", val, err, errcap)) < 0)
            return rc;
    }
    return 0;
}

int cgroup_id(char *out, size_t cap)
{
    int proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (proc_fd < 0)
        return -errno;
    unsigned long long start = 0;
    int rc = identity_proc_stat(proc_fd, getpid(), NULL, &start);
    close(proc_fd);
    if (rc < 0)
        return rc;
    snprintf(out, cap, "run-%d-%llu", (int)getpid(), start);
    return 0;
}

void cgroup_init(struct cgroup *cg)
{
    memset(cg, 0, sizeof(*cg));
    for (size_t i = 0; i < CGROUP_MAX_DIRS; i++)
        cg->procs_fd[i] = -1;
    cg->pids_idx = cg->mem_idx = cg->freezer_idx = -1;
}

int cgroup_create(const char *root, bool v2, const char *parent, const char *name,
                  const struct cgroup_limits *lim, unsigned flags, struct cgroup *out, char *err,
                  size_t errcap)
{
    cgroup_init(out);
    out->v2 = v2;
    out->lim = *lim;
    if (!parent_ok(parent) || !name[0] || strchr(name, '/') || strcmp(name, "..") == 0 ||
        strcmp(name, ".") == 0) {
        snprintf(err, errcap, "cgroup: '%s/%s' is not a group name (plain path components, "
                 "no '..')", parent, name);
        return -EINVAL;
    }
    int rc = v2 ? create_v2(out, root, parent, name, lim, err, errcap)
                : create_v1(out, root, parent, name, lim, flags, err, errcap);
    if (rc < 0)
        cgroup_destroy(out);
    return rc;
}

/* rel (below the hierarchy's root) is [<v1 controller>/]cordon/<more>,
 * plain components only: never a controller's root or the host's groups. */
static bool below_parent(const char *rel, bool v2)
{
    if (!parent_ok(rel))
        return false;
    if (!v2) {
        size_t l = strcspn(rel, "/");
        bool known = false;
        for (size_t i = 0; i < sizeof(v1_ctrls) / sizeof(v1_ctrls[0]); i++)
            known |= strlen(v1_ctrls[i]) == l && strncmp(rel, v1_ctrls[i], l) == 0;
        if (!known || !rel[l])
            return false;
        rel += l + 1;
    }
    size_t pl = strlen(CGROUP_PARENT);
    return strncmp(rel, CGROUP_PARENT, pl) == 0 && rel[pl] == '/' && rel[pl + 1];
}

int cgroup_attach(const char *root, bool v2, const char *const *dirs, size_t n,
                  struct cgroup *out, char *err, size_t errcap)
{
    cgroup_init(out);
    out->v2 = v2;
    size_t rl = strlen(root);
    if (n == 0 || n > (v2 ? 1 : CGROUP_MAX_DIRS)) {
        snprintf(err, errcap, "cgroup: %zu directories for one %s group", n, v2 ? "v2" : "v1");
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *d = dirs[i];
        struct stat st;
        if (strlen(d) >= sizeof(out->dir[0]) || strncmp(d, root, rl) != 0 || d[rl] != '/' ||
            !below_parent(d + rl + 1, v2)) {
            snprintf(err, errcap, "cgroup: '%.300s' is not a cordon group (%s/%s" CGROUP_PARENT
                     "/...)", d, root, v2 ? "" : "<controller>/");
            return -EINVAL;
        }
        snprintf(out->dir[i], sizeof(out->dir[0]), "%s", d);
        int sr = stat(d, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
        if (sr == -ENOENT)
            continue; /* already removed: an empty part of the group */
        if (sr < 0) {
            snprintf(err, errcap, "cgroup: %.300s: %s", d, strerror(-sr));
            return sr;
        }
        char probe[PATH_MAX + 32];
        if (v2) {
            out->freezer_idx = 0;
            snprintf(probe, sizeof(probe), "%s/pids.max", d);
            if (access(probe, F_OK) == 0)
                out->pids_idx = 0;
            snprintf(probe, sizeof(probe), "%s/memory.max", d);
            if (access(probe, F_OK) == 0)
                out->mem_idx = 0;
            continue;
        }
        static const char *const marks[] = {"pids.max", "memory.limit_in_bytes",
                                            "freezer.state"};
        int *idx[] = {&out->pids_idx, &out->mem_idx, &out->freezer_idx};
        for (size_t k = 0; k < 3; k++) {
            snprintf(probe, sizeof(probe), "%s/%s", d, marks[k]);
            if (access(probe, F_OK) == 0)
                *idx[k] = (int)i;
        }
    }
    out->n = n;
    return 0;
}

/* Async-signal-safe: dir + "/cgroup.procs" into out. */
static int procs_path(const char *dir, char *out, size_t cap)
{
    static const char tail[] = "/cgroup.procs";
    size_t l = 0;
    while (dir[l])
        l++;
    if (l + sizeof(tail) > cap)
        return -ENAMETOOLONG;
    memcpy(out, dir, l);
    memcpy(out + l, tail, sizeof(tail));
    return 0;
}

int cgroup_join(const struct cgroup *cg, pid_t pid)
{
    char num[24], tmp[24];
    size_t n = 0, k = 0;
    unsigned long v = pid > 0 ? (unsigned long)pid : 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < sizeof(tmp));
    while (n)
        num[k++] = tmp[--n];
    if (cg->n == 0)
        return -ENOENT;
    for (size_t i = 0; i < cg->n; i++) {
        char path[PATH_MAX + 16];
        if (procs_path(cg->dir[i], path, sizeof(path)) < 0)
            return -ENAMETOOLONG;
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        ssize_t w = write(fd, num, k);
        int rc = w == (ssize_t)k ? 0 : w < 0 ? -errno : -EIO;
        close(fd);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void cgroup_close_procs(struct cgroup *cg)
{
    for (size_t i = 0; i < CGROUP_MAX_DIRS; i++) {
        if (cg->procs_fd[i] >= 0)
            close(cg->procs_fd[i]);
        cg->procs_fd[i] = -1;
    }
}

/* Reads up to cap pids of dir/cgroup.procs. Returns the count or -errno. */
static int read_pids(const char *dir, pid_t *pids, size_t cap)
{
    char buf[16384];
    ssize_t n = read_file(dir, "cgroup.procs", buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    size_t k = 0;
    for (char *l = buf; *l && k < cap;) {
        char *end = strchr(l, '\n');
        size_t len = end ? (size_t)(end - l) : strlen(l);
        uint32_t v;
        if (len && parse_u32(l, len, 1, INT32_MAX, &v) == 0)
            pids[k++] = (pid_t)v;
        if (!end)
            break;
        l = end + 1;
    }
    return (int)k;
}

int cgroup_freeze(const struct cgroup *cg, bool frozen)
{
    if (cg->n == 0 || cg->freezer_idx < 0)
        return -EOPNOTSUPP;
    const char *dir = cg->dir[cg->freezer_idx];
    if (cg->v2)
        return write_file(dir, "cgroup.freeze", frozen ? "1" : "0");
    return write_file(dir, "freezer.state", frozen ? "FROZEN" : "THAWED");
}

int cgroup_members(const struct cgroup *cg, pid_t *out, size_t cap)
{
    if (cg->n == 0)
        return 0;
    /* Every member joined every directory; the freezer's (or v2's) is the
     * one nothing else writes. */
    int n = read_pids(cg->dir[cg->freezer_idx >= 0 ? cg->freezer_idx : 0], out, cap);
    return n == -ENOENT ? 0 : n;
}

/* v1 freezer: freezing completes asynchronously; wait (bounded) until the
 * state says so. */
static void freeze_wait(const char *dir, bool on)
{
    if (write_file(dir, "freezer.state", on ? "FROZEN" : "THAWED") < 0 || !on)
        return;
    for (int i = 0; i < 1000; i++) {
        char st[32];
        if (read_file(dir, "freezer.state", st, sizeof(st)) <= 0 || strncmp(st, "FROZEN", 6) == 0)
            return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* One pass over procs_dir: SIGKILL each member (v1 freezer_dir frozen
 * around it, waited for when wait). pf/npf (may be NULL): pidfds of the
 * members signalled, to wait on. Returns the number signalled or -errno. */
static int kill_pass(const char *procs_dir, const char *freezer_dir, bool wait,
                     struct pollfd *pf, size_t *npf)
{
    pid_t pids[512];
    int n = read_pids(procs_dir, pids, 512), killed = 0;
    if (n <= 0)
        return n == -ENOENT ? 0 : n;
    if (freezer_dir) {
        if (wait)
            freeze_wait(freezer_dir, true);
        else
            (void)write_file(freezer_dir, "freezer.state", "FROZEN");
    }
    for (int i = 0; i < n; i++) {
        int fd = pf ? (int)syscall(SYS_pidfd_open, pids[i], 0) : -1;
        if (kill(pids[i], SIGKILL) == 0)
            killed++;
        if (fd >= 0) {
            pf[*npf].fd = fd;
            pf[*npf].events = POLLIN;
            (*npf)++;
        }
    }
    /* SIGKILL reaches a frozen task once it is thawed. */
    if (freezer_dir)
        (void)write_file(freezer_dir, "freezer.state", "THAWED");
    return killed ? killed : n;
}

/* Kills what is in the cgroup and waits (on pidfds, bounded) until it is
 * empty. Returns the number of processes killed, or -errno. */
static int kill_all_wait(const char *procs_dir, const char *freezer_dir, bool v2)
{
    int killed = 0;
    if (v2 && write_file(procs_dir, "cgroup.kill", "1") == 0)
        freezer_dir = NULL; /* the kernel kills them all at once */
    for (int round = 0; round < 20; round++) {
        struct pollfd pf[512];
        size_t npf = 0;
        int n = kill_pass(procs_dir, freezer_dir, true, pf, &npf);
        if (n <= 0)
            return n < 0 ? n : killed;
        killed += n;
        /* Each pidfd becomes readable when its process has exited. */
        for (size_t i = 0; i < npf; i++) {
            (void)poll(&pf[i], 1, 1000);
            close(pf[i].fd);
        }
    }
    return -EBUSY;
}

static int remove_dir(const char *dir)
{
    for (int i = 0; i < 200; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY)
            return -errno;
        /* A task that exited is unlinked from the cgroup just after its
         * pidfd fires: wait for that, bounded. */
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return -EBUSY;
}

static const char *freezer_dir_of(const struct cgroup *cg)
{
    return !cg->v2 && cg->freezer_idx >= 0 ? cg->dir[cg->freezer_idx] : NULL;
}

int cgroup_kill(const struct cgroup *cg)
{
    if (cg->n == 0)
        return 0;
    const char *dir = cg->dir[cg->freezer_idx >= 0 ? cg->freezer_idx : 0];
    if (cg->v2) {
        pid_t pids[512];
        int n = read_pids(dir, pids, 512);
        if (n <= 0)
            return n == -ENOENT ? 0 : n;
        if (write_file(dir, "cgroup.kill", "1") == 0)
            return n; /* the kernel kills them all at once */
    }
    return kill_pass(dir, freezer_dir_of(cg), false, NULL, NULL);
}

int cgroup_kill_wait(const struct cgroup *cg)
{
    if (cg->n == 0)
        return 0;
    return kill_all_wait(cg->dir[cg->freezer_idx >= 0 ? cg->freezer_idx : 0], freezer_dir_of(cg),
                         cg->v2);
}

void cgroup_counters(const struct cgroup *cg, struct cgroup_counters *out)
{
    memset(out, 0, sizeof(*out));
    if (cg->pids_idx >= 0)
        out->pids_refused = keyed_value(cg->dir[cg->pids_idx], "pids.events", "max");
    if (cg->mem_idx >= 0)
        out->oom_kills = keyed_value(cg->dir[cg->mem_idx],
                                     cg->v2 ? "memory.events" : "memory.oom_control",
                                     "oom_kill");
}

int cgroup_remove(struct cgroup *cg)
{
    int rc = 0;
    cgroup_close_procs(cg);
    for (size_t i = cg->n; i-- > 0;)
        if (rmdir(cg->dir[i]) < 0 && errno != ENOENT && rc == 0)
            rc = -errno;
    return rc;
}

void cgroup_destroy(struct cgroup *cg)
{
    cgroup_close_procs(cg);
    for (size_t i = cg->n; i-- > 0;) {
        int rc = remove_dir(cg->dir[i]);
        if (rc < 0)
            log_warn("cgroup: cannot remove %s: %s (the next cordon run removes it)",
                     cg->dir[i], strerror(-rc));
    }
    cg->n = 0;
}

/* True when the supervisor that named a cgroup run-<pid>-<start> is alive. */
static bool owner_alive(int proc_fd, const char *name)
{
    int pid;
    unsigned long long start, now;
    if (sscanf(name, "run-%d-%llu", &pid, &start) != 2 || pid <= 0)
        return true; /* not ours: leave it alone */
    if (identity_proc_stat(proc_fd, pid, NULL, &now) < 0)
        return false;
    return now == start;
}

void cgroup_reap_stale(const char *root, bool v2)
{
    int proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (proc_fd < 0)
        return;
    size_t nbases = v2 ? 1 : sizeof(v1_ctrls) / sizeof(v1_ctrls[0]);
    for (size_t b = 0; b < nbases; b++) {
        char parent[PATH_MAX];
        if (v2)
            snprintf(parent, sizeof(parent), "%s/" CGROUP_PARENT, root);
        else
            snprintf(parent, sizeof(parent), "%s/%s/" CGROUP_PARENT, root, v1_ctrls[b]);
        DIR *d = opendir(parent);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_type != DT_DIR || strncmp(e->d_name, "run-", 4) != 0 ||
                owner_alive(proc_fd, e->d_name))
                continue;
            char dir[PATH_MAX + 256];
            snprintf(dir, sizeof(dir), "%s/%s", parent, e->d_name);
            int killed = kill_all_wait(dir, NULL, v2);
            int rc = remove_dir(dir);
            log_info("cgroup: removed the cgroup %s of a supervisor that is gone "
                     "(%d process(es) killed)%s", dir, killed > 0 ? killed : 0,
                     rc < 0 ? ": rmdir failed" : "");
        }
        closedir(d);
    }
    close(proc_fd);
}
