/* sandbox/init: pid 1 of the sandbox, and the last steps of the command.
 *
 * Process tree:  supervisor (host) ── init (pid 1 of a new PID namespace,
 * root, in the sandbox netns and cgroups, own mount, IPC, UTS and cgroup
 * namespaces, the new root of mountns.c)
 * ── command (unprivileged, Landlock, seccomp).
 *
 * Why an init: when pid 1 of a PID namespace exits, the kernel kills every
 * process in it, so nothing the command started (daemons, setsid'd
 * children) outlives the sandbox and keeps its network namespace alive.
 * init itself dies with the supervisor (PR_SET_PDEATHSIG), so a SIGKILLed
 * supervisor takes the whole sandbox with it. init also reaps orphans and
 * forwards the signals the supervisor relays.
 *
 * Everything here runs after a raw clone() of a process that may have had
 * other threads, so only system calls are made: no malloc, no stdio, no
 * locks. All inputs are prepared by the supervisor (struct init_plan). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

const int init_forward_signals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2,
                                    SIGWINCH, SIGCONT, SIGALRM};
const size_t init_n_forward_signals = sizeof(init_forward_signals) / sizeof(int);

const char *init_step_name(enum init_step s)
{
    switch (s) {
    case INIT_STEP_NONE:
        return "start";
    case INIT_STEP_NETNS:
        return "join the sandbox network namespace";
    case INIT_STEP_MOUNT:
        return "make its mounts private";
    case INIT_STEP_ROOT:
        return "build the sandbox's root (filesystem_policy)";
    case INIT_STEP_CGROUP:
        return "join the sandbox's cgroup";
    case INIT_STEP_UTS:
        return "set the sandbox's hostname";
    case INIT_STEP_FORK:
        return "start the command";
    case INIT_STEP_SESSION:
        return "start a new session";
    case INIT_STEP_TTY:
        return "attach the terminal";
    case INIT_STEP_CHDIR:
        return "enter the working directory";
    case INIT_STEP_PRIVDROP:
        return "drop privileges";
    case INIT_STEP_LANDLOCK:
        return "apply Landlock";
    case INIT_STEP_SECCOMP:
        return "apply the seccomp filter";
    case INIT_STEP_EXEC:
        return "execute the command";
    }
    return "?";
}

static pid_t raw_fork(unsigned long flags)
{
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, 0);
}

static void write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len) {
        ssize_t n = write(fd, c, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        c += n;
        len -= (size_t)n;
    }
}

static __attribute__((noreturn)) void fail(const struct init_plan *p, enum init_step step,
                                           int err, int code)
{
    int msg[2] = {(int)step, err};
    write_all(p->errpipe_fd, msg, sizeof(msg));
    _exit(code);
}

static void nop_handler(int sig) { (void)sig; }

static size_t cstrlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

/* execvpe without allocation: PATH search with a stack buffer. */
static int exec_search(const struct init_plan *p)
{
    const char *name = p->argv[0];
    if (p->exe_path)
        name = p->exe_path;
    if (strchr(name, '/')) {
        execve(name, p->argv, p->envp);
        return errno;
    }
    const char *path = p->path_env ? p->path_env : "/usr/local/bin:/usr/bin:/bin";
    size_t nlen = cstrlen(name);
    int first_err = ENOENT;
    char buf[4096];
    while (*path) {
        const char *end = strchr(path, ':');
        size_t dlen = end ? (size_t)(end - path) : cstrlen(path);
        if (dlen == 0) {
            buf[0] = '.';
            dlen = 1;
        } else if (dlen < sizeof(buf)) {
            memcpy(buf, path, dlen);
        }
        if (dlen + 1 + nlen + 1 <= sizeof(buf)) {
            buf[dlen] = '/';
            memcpy(buf + dlen + 1, name, nlen + 1);
            execve(buf, p->argv, p->envp);
            int e = errno;
            /* EACCES counts only when the file is there (not when a PATH
             * directory is closed to us): report it if nothing runs. */
            if (e == EACCES && access(buf, F_OK) < 0)
                e = ENOENT;
            if (e != ENOENT && e != ENOTDIR && e != ESTALE && first_err == ENOENT)
                first_err = e;
        }
        if (!end)
            break;
        path = end + 1;
    }
    return first_err;
}

static __attribute__((noreturn)) void command_main(const struct init_plan *p)
{
    sigset_t none;
    sigemptyset(&none);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL); /* EINVAL for libc-reserved numbers is fine */
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

    if (setsid() < 0)
        fail(p, INIT_STEP_SESSION, errno, SANDBOX_EXIT_SETUP);
    if (p->tty_slave >= 0) {
        if (ioctl(p->tty_slave, TIOCSCTTY, 0) < 0)
            fail(p, INIT_STEP_TTY, errno, SANDBOX_EXIT_SETUP);
        for (int fd = 0; fd < 3; fd++)
            if (dup2(p->tty_slave, fd) < 0)
                fail(p, INIT_STEP_TTY, errno, SANDBOX_EXIT_SETUP);
        if (p->tty_slave > 2)
            close(p->tty_slave);
    }
    if (p->workdir && chdir(p->workdir) < 0)
        fail(p, INIT_STEP_CHDIR, errno, SANDBOX_EXIT_SETUP);
    int rc = privdrop_apply(p->priv);
    if (rc < 0)
        fail(p, INIT_STEP_PRIVDROP, -rc, SANDBOX_EXIT_SETUP);
    if ((rc = landlock_apply(p->landlock)) < 0)
        fail(p, INIT_STEP_LANDLOCK, -rc, SANDBOX_EXIT_SETUP);
    int listener = -1;
    if ((rc = sysfilter_apply(p->filter, &listener)) < 0)
        fail(p, INIT_STEP_SECCOMP, -rc, SANDBOX_EXIT_SETUP);
    if (listener >= 0) {
        /* The supervisor answers (and counts) the filter's refusals. */
        if (p->refusals_sock < 0 || (rc = refusals_send_listener(p->refusals_sock, listener)) < 0)
            fail(p, INIT_STEP_SECCOMP, p->refusals_sock < 0 ? EBADF : -rc, SANDBOX_EXIT_SETUP);
        close(listener);
    }
    if (p->refusals_sock >= 0)
        close(p->refusals_sock);
    /* Nothing but stdio crosses exec (the error pipe is close-on-exec). */
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        for (int fd = 3; fd < 1024; fd++)
            if (fd != p->errpipe_fd)
                close(fd);
    int e = exec_search(p);
    fail(p, INIT_STEP_EXEC, e, e == ENOENT ? SANDBOX_EXIT_NOTFOUND : SANDBOX_EXIT_NOEXEC);
}

/* The sandbox's resolver is the policy DNS: our resolv.conf over the
 * host's, in this mount namespace only. A host without /etc/resolv.conf
 * gets none (resolvers then use 127.0.0.1, the same address). */
static void bind_resolv_conf(const struct init_plan *p)
{
    static const char leaf[] = "/resolv.conf";
    char path[128];
    size_t l = strlen(p->run_dir);
    if (l + sizeof(leaf) > sizeof(path))
        fail(p, INIT_STEP_MOUNT, ENAMETOOLONG, SANDBOX_EXIT_SETUP);
    memcpy(path, p->run_dir, l);
    memcpy(path + l, leaf, sizeof(leaf));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fail(p, INIT_STEP_MOUNT, errno, SANDBOX_EXIT_SETUP);
    write_all(fd, p->resolv_conf, strlen(p->resolv_conf));
    close(fd);
    if (mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0 && errno != ENOENT)
        fail(p, INIT_STEP_MOUNT, errno, SANDBOX_EXIT_SETUP);
}

static __attribute__((noreturn)) void init_main(const struct init_plan *p)
{
    /* Die with the supervisor. If it died before this line, the read on
     * the sync pipe below sees EOF (we close our copy of its write end). */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    close(p->sync_wfd);
    if (p->tty_master >= 0)
        close(p->tty_master);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* No core dumps in the sandbox, hard limit too (inherited by every
     * process; raising it needs CAP_SYS_RESOURCE): a core is a copy of the
     * process's memory written where the host's core_pattern says, which
     * may be a helper running on the host. */
    if (setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0}) < 0)
        fail(p, INIT_STEP_PRIVDROP, errno, SANDBOX_EXIT_SETUP);

    if (setns(p->child_netns_fd, CLONE_NEWNET) < 0)
        fail(p, INIT_STEP_NETNS, errno, SANDBOX_EXIT_SETUP);
    /* Into the sandbox's cgroups first, so that the new cgroup namespace
     * is rooted at them (the command sees "/" in /proc/self/cgroup). */
    for (size_t i = 0; i < p->n_cgroup_fds; i++)
        if (write(p->cgroup_fds[i], "0", 1) != 1)
            fail(p, INIT_STEP_CGROUP, errno, SANDBOX_EXIT_SETUP);
    for (size_t i = 0; i < p->n_cgroup_fds; i++)
        close(p->cgroup_fds[i]);
    if (unshare(CLONE_NEWCGROUP) < 0)
        fail(p, INIT_STEP_CGROUP, errno, SANDBOX_EXIT_SETUP);
    if (p->hostname && sethostname(p->hostname, cstrlen(p->hostname)) < 0)
        fail(p, INIT_STEP_UTS, errno, SANDBOX_EXIT_SETUP);
    /* Our mounts must not propagate back to the host. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail(p, INIT_STEP_MOUNT, errno, SANDBOX_EXIT_SETUP);
    size_t failed;
    int rc = mountplan_apply(p->mounts, p->run_dir, &failed);
    if (rc < 0)
        fail(p, INIT_STEP_ROOT, -rc, SANDBOX_EXIT_SETUP);
    if (!p->mounts->enabled) {
        /* No filesystem_policy paths: the host's tree, our own /proc, and
         * cordon's files on a tmpfs only this namespace sees. */
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
            fail(p, INIT_STEP_MOUNT, errno, SANDBOX_EXIT_SETUP);
        if (mount("cordon", p->run_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=4m,mode=0755") < 0)
            fail(p, INIT_STEP_MOUNT, errno, SANDBOX_EXIT_SETUP);
    }
    /* the sandbox's resolver: the policy DNS (a file on cordon's tmpfs,
     * bound over /etc/resolv.conf of this namespace's root) */
    if (p->resolv_conf)
        bind_resolv_conf(p);
    char ready = 'r';
    write_all(p->ready_fd, &ready, 1);
    close(p->ready_fd);

    /* pid 1 only receives signals it has a handler for, so install no-op
     * handlers, keep them blocked, and take them with sigwaitinfo. */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = nop_handler;
    sigaction(SIGCHLD, &sa, NULL);
    for (size_t i = 0; i < init_n_forward_signals; i++)
        sigaction(init_forward_signals[i], &sa, NULL);

    char go;
    ssize_t n;
    do {
        n = read(p->sync_fd, &go, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1)
        _exit(SANDBOX_EXIT_SETUP); /* the supervisor gave up or died */
    close(p->sync_fd);

    pid_t cmd = raw_fork(0);
    if (cmd < 0)
        fail(p, INIT_STEP_FORK, errno, SANDBOX_EXIT_SETUP);
    if (cmd == 0)
        command_main(p);
    close(p->errpipe_fd);
    if (p->tty_slave >= 0)
        close(p->tty_slave);
    if (p->refusals_sock >= 0)
        close(p->refusals_sock);
    close(p->child_netns_fd);

    int cmd_status = 0;
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&all, &si);
        if (sig < 0)
            continue;
        if (sig != SIGCHLD) {
            kill(cmd, sig);
            continue;
        }
        int st;
        pid_t w;
        bool done = false;
        while ((w = waitpid(-1, &st, WNOHANG)) > 0)
            if (w == cmd) {
                cmd_status = st;
                done = true;
            }
        if (done)
            break;
    }
    write_all(p->status_fd, &cmd_status, sizeof(cmd_status));
    _exit(0); /* the kernel now kills whatever the command left behind */
}

pid_t init_spawn(const struct init_plan *p)
{
    pid_t pid = raw_fork(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS);
    if (pid < 0)
        return -errno;
    if (pid == 0)
        init_main(p);
    return pid;
}
