/* execd/proc: fork/exec with a PTY or pipes; /proc walks for signalling. */
#include "execd/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/banned.h"

#define PROC_PIPE_SIZE (1024 * 1024)

extern char **environ;

static rlim_t child_nofile; /* set once at start-up, read in children */

void proc_set_child_nofile(unsigned long soft) { child_nofile = (rlim_t)soft; }

static size_t env_key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

static int env_has_key(char *const *env, const char *kv)
{
    size_t kl = env_key_len(kv);
    for (size_t i = 0; env && env[i]; i++) {
        if (env_key_len(env[i]) == kl && strncmp(env[i], kv, kl) == 0)
            return 1;
    }
    return 0;
}

/* execd's environment with spec->env layered on top. The strings are
 * borrowed; free only the array. */
static char **build_env(const struct proc_spec *spec)
{
    static char term[] = "TERM=xterm-256color";
    size_t n = 0, extra = 0, o = 0;
    while (environ && environ[n])
        n++;
    while (spec->env && spec->env[extra])
        extra++;
    char **envp = calloc(n + extra + 2, sizeof(*envp));
    if (!envp)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!env_has_key(spec->env, environ[i]))
            envp[o++] = environ[i];
    }
    for (size_t i = 0; i < extra; i++)
        envp[o++] = spec->env[i];
    if (spec->set_term && !env_has_key(envp, "TERM="))
        envp[o++] = term;
    envp[o] = NULL;
    return envp;
}

static int set_flags(int fd, int nonblock)
{
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    if (nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* In the child: report why we cannot run, then exit 127. */
static void __attribute__((noreturn)) child_fail(const char *what, const char *arg)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "cordon execd: %s %s: %s\n", what, arg, strerror(errno));
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg));
        (void)w;
    }
    _exit(127);
}

/* Runs in the child after fork: never returns. fds[0..2] become 0..2. */
static void __attribute__((noreturn)) child_exec(const struct proc_spec *spec, char **envp,
                                                int fds[3], int ctty)
{
    /* Default dispositions for every signal: exec keeps an ignored signal
     * ignored, so an execd started with SIGINT ignored (a background job of
     * a script) would hand that to every shell, and ^C would do nothing. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int s = 1; s < NSIG; s++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        if (s == SIGKILL || s == SIGSTOP || sigaction(s, &sa, NULL) == 0)
            continue;
        /* glibc refuses its internal signals (32, 33), but an inherited
         * SIG_IGN on them would survive exec too: all-zero is SIG_DFL with
         * no flags and an empty mask in the kernel's struct on every arch */
        unsigned long ksa[4] = {0, 0, 0, 0};
        (void)syscall(SYS_rt_sigaction, s, ksa, NULL, (size_t)8);
    }
    if (setsid() < 0)
        child_fail("setsid", "");
    if (ctty && ioctl(fds[0], TIOCSCTTY, 0) < 0)
        child_fail("TIOCSCTTY", "");
    for (int i = 0; i < 3; i++) {
        if (dup2(fds[i], i) < 0)
            child_fail("dup2", "");
    }
    close_range(3, ~0U, 0);
    struct rlimit rl;
    if (child_nofile && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = child_nofile < rl.rlim_max ? child_nofile : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (spec->has_gid && (setgroups(0, NULL) < 0 || setgid(spec->gid) < 0))
        child_fail("setgid", "");
    if (spec->has_uid && setuid(spec->uid) < 0)
        child_fail("setuid", "");
    if (spec->cwd && chdir(spec->cwd) < 0)
        child_fail("chdir", spec->cwd);
    execve(spec->path, spec->argv, envp);
    child_fail("exec", spec->path);
}

/* Creates the child's stdio: child[3] for the child, parent fds in out. */
static int make_stdio(const struct proc_spec *spec, int child[3], struct proc_child *out)
{
    int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    if (spec->io == PROC_IO_PTY) {
        struct winsize ws = {.ws_row = spec->rows ? spec->rows : 24,
                             .ws_col = spec->cols ? spec->cols : 80};
        int m, s;
        if (openpty(&m, &s, NULL, NULL, &ws) < 0)
            return -errno;
        if (set_flags(m, 1) < 0 || set_flags(s, 0) < 0) {
            int e = -errno;
            close(m);
            close(s);
            return e;
        }
        child[0] = child[1] = child[2] = s;
        out->in_fd = out->out_fd = m;
        out->err_fd = -1;
        return 0;
    }
    if (spec->io == PROC_IO_NULL_IN) {
        p[0][0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (p[0][0] < 0)
            return -errno;
    } else if (pipe2(p[0], O_CLOEXEC) < 0) {
        return -errno;
    }
    if (pipe2(p[1], O_CLOEXEC) < 0 || pipe2(p[2], O_CLOEXEC) < 0) {
        int e = -errno;
        for (int i = 0; i < 3; i++) {
            if (p[i][0] >= 0)
                close(p[i][0]);
            if (p[i][1] >= 0)
                close(p[i][1]);
        }
        return e;
    }
    child[0] = p[0][0];
    child[1] = p[1][1];
    child[2] = p[2][1];
    out->in_fd = p[0][1];
    out->out_fd = p[1][0];
    out->err_fd = p[2][0];
    if (out->in_fd >= 0)
        (void)set_flags(out->in_fd, 1);
    (void)set_flags(out->out_fd, 1);
    (void)set_flags(out->err_fd, 1);
    /* Bigger output pipes: fewer wakeups and context switches for bulk
     * output (best effort; capped by /proc/sys/fs/pipe-max-size). */
    (void)fcntl(out->out_fd, F_SETPIPE_SZ, PROC_PIPE_SIZE);
    (void)fcntl(out->err_fd, F_SETPIPE_SZ, PROC_PIPE_SIZE);
    return 0;
}

static void close_child_ends(int child[3])
{
    close(child[0]);
    if (child[1] != child[0])
        close(child[1]);
    if (child[2] != child[0])
        close(child[2]);
}

static void close_parent_ends(struct proc_child *c)
{
    if (c->in_fd >= 0)
        close(c->in_fd);
    if (c->out_fd >= 0 && c->out_fd != c->in_fd)
        close(c->out_fd);
    if (c->err_fd >= 0)
        close(c->err_fd);
}

int proc_spawn(const struct proc_spec *spec, struct proc_child *out)
{
    int child[3];
    int r;
    char **envp = build_env(spec);
    if (!envp)
        return -ENOMEM;
    memset(out, 0, sizeof(*out));
    out->in_fd = out->out_fd = out->err_fd = -1;
    r = make_stdio(spec, child, out);
    if (r < 0)
        goto out;
    pid_t pid = fork();
    if (pid < 0) {
        r = -errno;
        close_child_ends(child);
        close_parent_ends(out);
        goto out;
    }
    if (pid == 0)
        child_exec(spec, envp, child, spec->io == PROC_IO_PTY);
    close_child_ends(child);
    out->pid = pid;
    r = 0;
out:
    free(envp);
    return r;
}

/* Reads state fields of /proc/<pid>/stat: ppid, pgrp, session. */
static int read_stat(const char *pid, pid_t *ppid, pid_t *sid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')'); /* comm may contain spaces and ')' */
    char state;
    int pp, pg, s;
    if (!rp || sscanf(rp + 1, " %c %d %d %d", &state, &pp, &pg, &s) != 4)
        return -EIO;
    *ppid = pp;
    *sid = s;
    return 0;
}

/* Signals processes matching (by session id or parent pid). */
static int proc_walk_kill(pid_t match, int by_parent, int sig, int skip_leader)
{
    int count = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    if (!d)
        return 0;
    while ((e = readdir(d))) {
        pid_t ppid, sid;
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        if (read_stat(e->d_name, &ppid, &sid) < 0)
            continue;
        if ((by_parent ? ppid : sid) != match)
            continue;
        pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
        if (skip_leader && pid == match)
            continue;
        if (pid > 1 && kill(pid, sig) == 0)
            count++;
    }
    closedir(d);
    return count;
}

int proc_kill_session(pid_t sid, int sig, int skip_leader)
{
    return proc_walk_kill(sid, 0, sig, skip_leader);
}

int proc_kill_children(pid_t ppid, int sig) { return proc_walk_kill(ppid, 1, sig, 0); }

int proc_find_exe(const char *name, char *out, size_t cap)
{
    if (strchr(name, '/')) {
        if (access(name, X_OK) < 0)
            return -ENOENT;
        snprintf(out, cap, "%s", name);
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t dl = colon ? (size_t)(colon - path) : strlen(path);
        int n = snprintf(out, cap, "%.*s/%s", (int)dl, path, name);
        if (dl > 0 && n > 0 && (size_t)n < cap && access(out, X_OK) == 0)
            return 0;
        path += dl + (colon ? 1 : 0);
    }
    return -ENOENT;
}
