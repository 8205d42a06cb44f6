/* cli/run_log: where `cordon run` keeps a sandbox's audit log, and the
 * check that the sandbox can neither rewrite nor replace it.
 *
 * The log is the record of what the command tried; if the command could
 * reach it, it could forge that record (rename the file away and put its
 * own in place, or append lines that look like ours). So the log lives
 * outside every read_write grant of the policy, in a directory chain that
 * the sandbox's user cannot write, and is opened by root without following
 * symlinks (core/audit.c audit_open_private). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/run_int.h"
#include "policy/policy.h"
#include "sandbox/sandbox.h"
#include "core/banned.h"

int run_log_default_path(const char *name, char *out, size_t cap)
{
    if (mkdir(RUN_LOG_DIR, 0750) < 0 && errno != EEXIST)
        return -errno;
    int n = snprintf(out, cap, "%s/%s.log", RUN_LOG_DIR, name);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return 0;
}

/* The canonical form of path: its directory resolved (it must exist), its
 * last component kept as written. */
static int canonical(const char *path, char *out, size_t cap)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return -EISDIR;
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return -errno;
    int n = snprintf(out, cap, "%s%s%s", real, strcmp(real, "/") == 0 ? "" : "/", base);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* path equals grant or lies below it (both canonical). */
static bool under(const char *path, const char *grant)
{
    size_t n = strlen(grant);
    if (n == 1 && grant[0] == '/')
        return true;
    return strncmp(path, grant, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static bool dac_writable(const struct stat *st, const struct sandbox_info *info)
{
    if (st->st_uid == info->uid)
        return (st->st_mode & S_IWUSR) != 0;
    if (st->st_gid == info->gid)
        return (st->st_mode & S_IWGRP) != 0;
    return (st->st_mode & S_IWOTH) != 0;
}

bool run_dac_writable(const char *path, const struct sandbox_info *info)
{
    struct stat st;
    return stat(path, &st) == 0 && dac_writable(&st, info);
}

int run_log_check(const char *path, const struct sandbox_info *info, char *err, size_t cap)
{
    char log[PATH_MAX];
    int rc = canonical(path, log, sizeof(log));
    if (rc < 0) {
        snprintf(err, cap, "--log %s: %s", path, strerror(-rc));
        return rc;
    }
    const struct policy_fs *fs = info->policy ? policy_filesystem(info->policy) : NULL;
    for (size_t i = 0; fs && i <= fs->n_read_write; i++) {
        const char *g = i < fs->n_read_write ? fs->read_write[i]
                                             : (fs->include_workdir ? info->workdir : NULL);
        char real[PATH_MAX];
        if (!g || !realpath(g, real))
            continue;
        if (i < fs->n_read_write && sandbox_path_private(real))
            continue; /* the sandbox's own tmpfs there, not the host's directory */
        if (under(log, real)) {
            snprintf(err, cap,
                     "--log %s: the sandbox can write %s (%s), so it could forge or replace "
                     "the log; choose a path outside it (default: %s/%s.log)",
                     path, real, i < fs->n_read_write ? "filesystem_policy.read_write"
                                                       : "the workdir",
                     RUN_LOG_DIR, info->name);
            return -EPERM;
        }
    }
    /* Every directory above the log: a writable one lets the sandbox's user
     * rename the log (or a directory holding it) away, unless it is sticky
     * and the entry below it is not the user's. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", log);
    for (;;) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            break;
        char child_owner_is_user = 0;
        struct stat cst;
        if (lstat(dir, &cst) == 0)
            child_owner_is_user = cst.st_uid == info->uid;
        if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
        struct stat st;
        if (stat(dir, &st) < 0)
            break;
        if (dac_writable(&st, info) && (!(st.st_mode & S_ISVTX) || child_owner_is_user)) {
            snprintf(err, cap,
                     "--log %s: the sandbox's user (uid %u) can write the directory %s, so it "
                     "could replace the log; choose a directory only root can write "
                     "(default: %s/%s.log)",
                     path, info->uid, dir, RUN_LOG_DIR, info->name);
            return -EPERM;
        }
        if (strcmp(dir, "/") == 0)
            break;
    }
    return 0;
}
