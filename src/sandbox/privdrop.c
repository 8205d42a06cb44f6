/* sandbox/privdrop: the unprivileged identity the command runs as.
 *
 * Resolution (names → ids, creating the default user) happens in the
 * supervisor. The drop itself happens in the command's process just before
 * Landlock, seccomp and exec, with system calls only. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/parse.h"
#include "sandbox/sandbox.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

static int read_cap_last(void)
{
    char buf[16];
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 63;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    uint32_t v;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        n--;
    if (n <= 0 || parse_u32(buf, (size_t)n, 0, 63, &v) < 0)
        return 63;
    return (int)v;
}

/* Runs useradd for the default user. Returns 0 or -errno. */
static int create_default_user(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
        }
        char *const argv[] = {"useradd", "--system", "--user-group", "--no-create-home",
                              "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                              "--comment", "cordon sandbox", SANDBOX_DEFAULT_USER, NULL};
        char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        execve("/usr/sbin/useradd", argv, envp);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 9 /* exists */))
        return -EPERM;
    return 0;
}

int privdrop_resolve(const char *user, const char *group, struct privdrop *out, char *err,
                     size_t errcap)
{
    memset(out, 0, sizeof(*out));
    out->cap_last = read_cap_last();
    const struct passwd *pw = NULL;
    if (user) {
        pw = getpwnam(user);
        if (!pw) {
            snprintf(err, errcap, "process.run_as_user: no user '%s' on this host; create it "
                     "(useradd --system %s) or change the policy", user, user);
            return -ENOENT;
        }
    } else {
        pw = getpwnam(SANDBOX_DEFAULT_USER);
        if (!pw) {
            int rc = create_default_user();
            pw = getpwnam(SANDBOX_DEFAULT_USER);
            if (pw)
                log_info("privdrop: created the system user '%s'", SANDBOX_DEFAULT_USER);
            else
                log_warn("privdrop: cannot create the user '%s' (%s); running the command as "
                         "'%s' instead", SANDBOX_DEFAULT_USER,
                         rc < 0 ? strerror(-rc) : "useradd did not create it",
                         SANDBOX_FALLBACK_USER);
        }
        if (!pw)
            pw = getpwnam(SANDBOX_FALLBACK_USER);
        if (!pw) {
            snprintf(err, errcap, "no sandbox user: neither '%s' nor '%s' exists; set "
                     "process.run_as_user in the policy", SANDBOX_DEFAULT_USER,
                     SANDBOX_FALLBACK_USER);
            return -ENOENT;
        }
    }
    out->uid = pw->pw_uid;
    out->gid = pw->pw_gid;
    snprintf(out->user, sizeof(out->user), "%s", pw->pw_name);
    struct stat st;
    if (pw->pw_dir && stat(pw->pw_dir, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(out->home, sizeof(out->home), "%s", pw->pw_dir);
    const char *gname = group;
    if (!gname && !user && strcmp(out->user, SANDBOX_FALLBACK_USER) == 0)
        gname = getgrnam(SANDBOX_FALLBACK_GROUP) ? SANDBOX_FALLBACK_GROUP : NULL;
    if (gname) {
        const struct group *gr = getgrnam(gname);
        if (!gr) {
            snprintf(err, errcap, "process.run_as_group: no group '%s' on this host", gname);
            return -ENOENT;
        }
        out->gid = gr->gr_gid;
    }
    if (out->uid == 0 || out->gid == 0) {
        snprintf(err, errcap, "the command must never run as root (user '%s' uid %u, gid %u); "
                 "set process.run_as_user/run_as_group to an unprivileged account",
                 out->user, (unsigned)out->uid, (unsigned)out->gid);
        return -EPERM;
    }
    return 0;
}

int privdrop_apply(const struct privdrop *p)
{
    /* The bounding set first: dropping needs CAP_SETPCAP, gone after setuid. */
    for (int cap = 0; cap <= p->cap_last; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return -errno;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -errno;
    if (setgroups(0, NULL) < 0)
        return -errno;
    if (setresgid(p->gid, p->gid, p->gid) < 0)
        return -errno;
    if (setresuid(p->uid, p->uid, p->uid) < 0)
        return -errno;
    /* setuid away from 0 clears permitted and effective; inheritable stays
     * unless cleared. */
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) < 0)
        return -errno;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    /* Verify: no way back to root. */
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) < 0 || r != p->uid || e != p->uid || s != p->uid)
        return -EPERM;
    if (getresgid(&rg, &eg, &sg) < 0 || rg != p->gid || eg != p->gid || sg != p->gid)
        return -EPERM;
    if (setuid(0) == 0)
        return -EPERM;
    if (getgroups(0, NULL) != 0)
        return -EPERM;
    return 0;
}
