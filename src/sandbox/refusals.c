/* sandbox/refusals: counts what the sandbox's boundaries refused, names
 * each refusal in the audit log, and sums them up in sandbox_exit.
 *
 * System calls and signals: the command's seccomp filter (seccomp.c) sends
 * its refusals to a user-notification listener. The command's process
 * creates the listener when it loads the filter and passes it here over a
 * socketpair (SCM_RIGHTS) before it execs. For each notification:
 *   - a refused system call: counted, a `syscall_refused` event (pid, exe,
 *     syscall), answered EPERM (the filter decided; this only reports);
 *   - kill()/rt_sigqueueinfo()/tkill()/rt_tgsigqueueinfo() to pid N > 0,
 *     tgkill() to thread group 1 (seccomp.c says which reach us): N is
 *     looked up in the
 *     sandbox's own /proc (through its init's root). Absent: the target is
 *     outside the sandbox (a host process cannot be named from inside) or
 *     gone: answered ESRCH, as the kernel would, and counted. N = 1, the
 *     sandbox's init, which is outside the command's Landlock domain:
 *     answered EPERM (Landlock's signal scope says the same where the
 *     kernel has it) and counted. Otherwise the kernel runs the call
 *     (SECCOMP_USER_NOTIF_FLAG_CONTINUE: the kernel's own checks apply; we
 *     decide nothing by letting it through);
 *   - pidfd_send_signal(): the pidfd's process is read from the caller's
 *     /proc/PID/fdinfo: the sandbox's init, or a process outside the
 *     sandbox's PID namespace (a pidfd passed in), is answered EPERM and
 *     counted; anything else goes to the kernel.
 * Events are rate-limited (a burst of REFUSALS_BURST, then
 * REFUSALS_PER_SEC per second); the counts are always complete.
 *
 * File accesses: Landlock reports denials only through the kernel's audit
 * subsystem (Landlock ABI 7, Linux 6.15), and only while auditing is
 * enabled host-wide. cordon does not switch host auditing on and does not
 * read the audit stream, so sandbox_exit says `landlock_denials: null`
 * with the reason. Most file refusals are not Landlock's anyway: what the
 * filesystem policy does not list does not exist in the sandbox's root
 * (ENOENT) and read-only paths are read-only mounts (EROFS). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/audit.h"
#include "core/log.h"
#include "core/loop.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

#define REFUSALS_BURST 50
#define REFUSALS_PER_SEC 10
#define REFUSALS_MAX_NAMES 64

struct refusals {
    char name[64];
    pid_t init_pid;
    struct loop *loop;
    int sock;                 /* our end of the socketpair; -1 once the listener came */
    int listener;             /* the filter's notification fd */
    struct loop_io sock_io, lis_io;
    bool sock_on, lis_on;
    bool counting;            /* the filter notifies (else refusals are silent EPERMs) */
    bool got_listener;        /* the command loaded its filter and sent the listener */
    struct seccomp_notif_sizes sizes;
    struct seccomp_notif *req;
    struct seccomp_notif_resp *resp;
    uint64_t syscalls, signals, suppressed;
    struct {
        int nr;
        uint64_t n;
    } by_nr[REFUSALS_MAX_NAMES];
    size_t n_by_nr;
    double tokens;
    uint64_t last_ms;
};

int refusals_new(const char *sandbox_name, bool counting, struct refusals **out, int *child_sock)
{
    *out = NULL;
    *child_sock = -1;
    struct refusals *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    snprintf(r->name, sizeof(r->name), "%s", sandbox_name);
    r->sock = r->listener = -1;
    r->counting = counting;
    r->tokens = REFUSALS_BURST;
    if (counting) {
        int sv[2];
        if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &r->sizes) < 0 ||
            socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
            int e = errno;
            free(r);
            return -e;
        }
        /* The kernel's structures may be larger than our headers' (newer
         * fields at the end): allocate what it says, zeroed before use. */
        size_t rq = r->sizes.seccomp_notif > sizeof(*r->req) ? r->sizes.seccomp_notif
                                                             : sizeof(*r->req);
        size_t rs = r->sizes.seccomp_notif_resp > sizeof(*r->resp) ? r->sizes.seccomp_notif_resp
                                                                    : sizeof(*r->resp);
        r->sizes.seccomp_notif = (unsigned short)rq;
        r->sizes.seccomp_notif_resp = (unsigned short)rs;
        r->req = calloc(1, rq);
        r->resp = calloc(1, rs);
        if (!r->req || !r->resp) {
            close(sv[0]);
            close(sv[1]);
            free(r->req);
            free(r->resp);
            free(r);
            return -ENOMEM;
        }
        r->sock = sv[0];
        *child_sock = sv[1];
    }
    *out = r;
    return 0;
}

int refusals_send_listener(int sock, int listener)
{
    char c = 'l';
    struct iovec iov = {.iov_base = &c, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &listener, sizeof(int));
    ssize_t n;
    do {
        n = sendmsg(sock, &m, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -errno;
}

/* ---- events ---- */

static bool take_token(struct refusals *r)
{
    uint64_t now = loop_clock_ms();
    if (r->last_ms)
        r->tokens += (double)(now - r->last_ms) * REFUSALS_PER_SEC / 1000.0;
    if (r->tokens > REFUSALS_BURST)
        r->tokens = REFUSALS_BURST;
    r->last_ms = now;
    if (r->tokens < 1.0) {
        r->suppressed++;
        return false;
    }
    r->tokens -= 1.0;
    return true;
}

/* The caller's executable, while the notification is still valid (the pid
 * cannot have been reused before we answer). */
static json_t *exe_of(struct refusals *r, pid_t pid, uint64_t id)
{
    char path[64], exe[PATH_MAX];
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(path, exe, sizeof(exe) - 1);
    if (n <= 0 || ioctl(r->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) < 0)
        return json_null();
    exe[n] = '\0';
    return json_string(exe);
}

static void event_base(struct refusals *r, json_t *o, const struct seccomp_notif *q)
{
    json_object_set_new(o, "sandbox", json_string(r->name));
    json_object_set_new(o, "pid", json_integer(q->pid));
    json_object_set_new(o, "binary", exe_of(r, (pid_t)q->pid, q->id));
    if (r->suppressed) {
        json_object_set_new(o, "suppressed_before", json_integer((json_int_t)r->suppressed));
        r->suppressed = 0;
    }
}

/* libseccomp's name of nr (its string is allocated) into buf. */
static const char *syscall_name(int nr, char *buf, size_t cap)
{
    char *n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    snprintf(buf, cap, "%s", n ? n : "?");
    free(n);
    return buf;
}

/* Whether a rule's name ("ptrace", "socket(AF_PACKET...)",
 * "move_pages|migrate_pages(pid != 0)") covers the system call sc. */
static bool rule_names(const char *rule, const char *sc)
{
    size_t scl = strlen(sc);
    for (const char *p = rule; *p && *p != '(';) {
        size_t l = strcspn(p, "|(");
        if (l == scl && strncmp(p, sc, scl) == 0)
            return true;
        p += l;
        if (*p == '|')
            p++;
    }
    return false;
}

static void count_syscall(struct refusals *r, const struct seccomp_notif *q)
{
    r->syscalls++;
    size_t i;
    for (i = 0; i < r->n_by_nr && r->by_nr[i].nr != q->data.nr; i++)
        ;
    if (i == r->n_by_nr && i < REFUSALS_MAX_NAMES) {
        r->by_nr[i].nr = q->data.nr;
        r->by_nr[i].n = 0;
        r->n_by_nr++;
    }
    if (i < r->n_by_nr)
        r->by_nr[i].n++;
    if (!take_token(r))
        return;
    json_t *o = json_object();
    event_base(r, o, q);
    char sc[64];
    syscall_name(q->data.nr, sc, sizeof(sc));
    json_object_set_new(o, "syscall", json_string(sc));
    json_object_set_new(o, "errno", json_string("EPERM"));
    size_t nr;
    const struct sysfilter_rule *rules = sysfilter_rules(&nr);
    const char *why = "its arguments are refused (see doc/sandbox.md, seccomp)";
    for (size_t k = 0; k < nr; k++)
        if (rule_names(rules[k].syscall, sc)) {
            why = rules[k].why;
            break;
        }
    json_object_set_new(o, "reason", json_string(why));
    audit_emit("syscall_refused", o);
}

/* Where a signal call names its target and its signal. */
struct sigcall {
    int target;      /* pid / thread group / thread as the command named it */
    int sig;
    bool by_pidfd;   /* pidfd_send_signal: target read from the pidfd */
};

static bool is_signal_call(int nr)
{
    return nr == SYS_kill || nr == SYS_rt_sigqueueinfo || nr == SYS_tkill ||
           nr == SYS_tgkill || nr == SYS_rt_tgsigqueueinfo || nr == SYS_pidfd_send_signal;
}

static void sigcall_of(const struct seccomp_notif *q, struct sigcall *c)
{
    c->target = (int)(unsigned int)q->data.args[0];
    c->by_pidfd = q->data.nr == SYS_pidfd_send_signal;
    bool tg = q->data.nr == SYS_tgkill || q->data.nr == SYS_rt_tgsigqueueinfo;
    c->sig = (int)(unsigned int)q->data.args[tg ? 2 : 1];
}

/* A value of a "Key:\t..." line of a /proc file (first number after it);
 * -ENOENT when the line is absent. nth: which number of the line. */
static int proc_field(const char *path, const char *key, int nth, long *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[2048];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    size_t kl = strlen(key);
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1
                                                                     : NULL) {
        if (strncmp(line, key, kl) != 0)
            continue;
        char *p = line + kl, *end;
        for (int i = 0;; i++) {
            long v = strtol(p, &end, 10);
            if (end == p)
                return -ENOENT;
            if (i == nth) {
                *out = v;
                return 0;
            }
            p = end;
        }
    }
    return -ENOENT;
}

/* pidfd_send_signal: the process behind the caller's pidfd (args[0]), from
 * /proc/PID/fdinfo/FD in the host's numbering. 0: let the kernel decide
 * (not a pidfd, or its process is gone: EBADF / ESRCH from the kernel). The
 * fd could be swapped for another between this read and the kernel's run
 * (another thread's dup2): the kernel's own permission checks still apply,
 * only the count could miss it. */
static int judge_pidfd(struct refusals *r, const struct seccomp_notif *q, struct sigcall *c,
                       const char **why)
{
    char p[96];
    long host = 0, inner = 0;
    snprintf(p, sizeof(p), "/proc/%d/fdinfo/%d", (int)q->pid, c->target);
    if (proc_field(p, "Pid:", 0, &host) < 0 || host <= 0)
        return 0;
    if (proc_field(p, "NSpid:", 1, &inner) < 0)
        inner = 0;               /* not in a nested PID namespace: not the sandbox's */
    if (ioctl(r->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &q->id) < 0)
        return 0;                /* the caller is gone; its fd table with it */
    c->target = inner > 0 ? (int)inner : (int)host;
    if (host == r->init_pid) {
        *why = "the sandbox's init is outside the command's reach (Landlock signal scope)";
        return EPERM;
    }
    char a[64], b[64], la[64], lb[64];
    snprintf(a, sizeof(a), "/proc/%ld/ns/pid", host);
    snprintf(b, sizeof(b), "/proc/%d/ns/pid", (int)r->init_pid);
    ssize_t na = readlink(a, la, sizeof(la) - 1), nb = readlink(b, lb, sizeof(lb) - 1);
    if (na > 0 && nb > 0 && na == nb && memcmp(la, lb, (size_t)na) == 0)
        return 0;
    if (na < 0 && errno == ENOENT)
        return 0;                /* exited meanwhile: the kernel says ESRCH */
    *why = "a pidfd of a process outside the sandbox (passed in from outside)";
    return EPERM;
}

/* 0: let the kernel run it; else the errno to answer. */
static int judge_signal(struct refusals *r, const struct seccomp_notif *q, struct sigcall *c,
                        const char **why)
{
    if (c->by_pidfd)
        return judge_pidfd(r, q, c, why);
    int target = c->target;
    if (target <= 0)
        return 0; /* process groups, "everyone": within the PID namespace */
    if (target == 1) {
        *why = "the sandbox's init is outside the command's reach (Landlock signal scope)";
        return EPERM;
    }
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/root/proc/%d", (int)r->init_pid, target);
    struct stat st;
    if (stat(p, &st) == 0)
        return 0;
    *why = "no such process in the sandbox (processes outside it cannot be named from inside)";
    return ESRCH;
}

static void count_signal(struct refusals *r, const struct seccomp_notif *q,
                         const struct sigcall *c, int err, const char *why)
{
    r->signals++;
    if (!take_token(r))
        return;
    json_t *o = json_object();
    event_base(r, o, q);
    char sc[64];
    json_object_set_new(o, "syscall", json_string(syscall_name(q->data.nr, sc, sizeof(sc))));
    json_object_set_new(o, "target_pid", json_integer(c->target));
    json_object_set_new(o, "signal", json_integer(c->sig));
    json_object_set_new(o, "errno", json_string(err == ESRCH ? "ESRCH" : "EPERM"));
    json_object_set_new(o, "reason", json_string(why));
    audit_emit("signal_refused", o);
}

static void on_listener(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct refusals *r = io->data;
    if (events & EPOLLIN) {
        memset(r->req, 0, r->sizes.seccomp_notif);
        if (ioctl(r->listener, SECCOMP_IOCTL_NOTIF_RECV, r->req) == 0) {
            struct seccomp_notif *q = r->req;
            struct seccomp_notif_resp *a = r->resp;
            memset(a, 0, r->sizes.seccomp_notif_resp);
            a->id = q->id;
            if (is_signal_call(q->data.nr)) {
                const char *why = "";
                struct sigcall c;
                sigcall_of(q, &c);
                int err = judge_signal(r, q, &c, &why);
                if (err) {
                    a->error = -err;
                    count_signal(r, q, &c, err, why);
                } else {
                    a->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
                }
            } else {
                a->error = -EPERM;
                count_syscall(r, q);
            }
            /* ENOENT: the caller died meanwhile (nothing to answer). */
            if (ioctl(r->listener, SECCOMP_IOCTL_NOTIF_SEND, a) < 0 && errno != ENOENT)
                log_debug("refusals: cannot answer notification: %s", strerror(errno));
            return;
        }
        if (errno == EINTR || errno == ENOENT || errno == EAGAIN)
            return;
        log_warn("refusals: seccomp listener: %s", strerror(errno));
    }
    /* Every process under the filter is gone (HUP), or it failed. */
    loop_io_del(l, &r->lis_io);
    r->lis_on = false;
}

static void on_sock(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct refusals *r = io->data;
    char c;
    struct iovec iov = {.iov_base = &c, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof(u.buf)};
    ssize_t n = recvmsg(r->sock, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    struct cmsghdr *cm = n == 1 ? CMSG_FIRSTHDR(&m) : NULL;
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
        cm->cmsg_len == CMSG_LEN(sizeof(int)) && r->listener < 0) {
        memcpy(&r->listener, CMSG_DATA(cm), sizeof(int));
        r->got_listener = true;
        r->lis_io.cb = on_listener;
        r->lis_io.data = r;
        if (loop_io_add(l, &r->lis_io, r->listener, EPOLLIN) == 0)
            r->lis_on = true;
        else
            log_warn("refusals: cannot watch the seccomp listener: refusals are not counted");
    }
    /* One message only (or EOF: the command never got that far). */
    loop_io_del(l, &r->sock_io);
    r->sock_on = false;
    close(r->sock);
    r->sock = -1;
}

int refusals_attach(struct refusals *r, struct loop *l, pid_t init_pid)
{
    r->loop = l;
    r->init_pid = init_pid;
    if (r->sock < 0)
        return 0;
    r->sock_io.cb = on_sock;
    r->sock_io.data = r;
    int rc = loop_io_add(l, &r->sock_io, r->sock, EPOLLIN);
    if (rc == 0)
        r->sock_on = true;
    return rc;
}

void refusals_summary(const struct refusals *r, json_t *exit_event)
{
    json_t *o = json_object();
    if (r && r->counting && r->got_listener) {
        json_object_set_new(o, "seccomp_denials", json_integer((json_int_t)r->syscalls));
        json_t *by = json_object();
        char sc[64];
        for (size_t i = 0; i < r->n_by_nr; i++)
            json_object_set_new(by, syscall_name(r->by_nr[i].nr, sc, sizeof(sc)),
                                json_integer((json_int_t)r->by_nr[i].n));
        json_object_set_new(o, "seccomp_by_syscall", by);
        json_object_set_new(o, "signal_denials", json_integer((json_int_t)r->signals));
        if (r->suppressed)
            json_object_set_new(o, "events_suppressed", json_integer((json_int_t)r->suppressed));
    } else {
        const char *why = !r || !r->counting
                              ? "this kernel has no seccomp user notification: refused calls "
                                "fail with EPERM uncounted"
                              : "the command never loaded its seccomp filter";
        json_object_set_new(o, "seccomp_denials", json_null());
        json_object_set_new(o, "signal_denials", json_null());
        json_object_set_new(o, "not_counted", json_string(why));
    }
    json_object_set_new(o, "landlock_denials", json_null());
    json_object_set_new(o, "landlock_denials_why",
                        json_string("the kernel reports Landlock denials only to the host's "
                                    "audit subsystem (Landlock ABI 7), which cordon neither "
                                    "enables nor reads; unlisted paths do not exist in the "
                                    "sandbox (ENOENT) and read-only ones are read-only mounts "
                                    "(EROFS)"));
    json_object_set_new(exit_event, "refusals", o);
}

void refusals_detach(struct refusals *r)
{
    if (!r)
        return;
    if (r->loop && r->sock_on)
        loop_io_del(r->loop, &r->sock_io);
    if (r->loop && r->lis_on)
        loop_io_del(r->loop, &r->lis_io);
    r->sock_on = r->lis_on = false;
    r->loop = NULL;
    if (r->sock >= 0)
        close(r->sock);
    if (r->listener >= 0)
        close(r->listener);
    r->sock = r->listener = -1;
}

void refusals_free(struct refusals *r)
{
    if (!r)
        return;
    refusals_detach(r);
    free(r->req);
    free(r->resp);
    free(r);
}
