/* sandbox/seccomp: the syscall filter of the command (libseccomp).
 *
 * Default allow; the escape routes below fail with EPERM (clone3 with
 * ENOSYS so libc falls back to clone, whose flags we can inspect). Foreign
 * architectures (i386 int 0x80, x32) kill the process: a filter written for
 * x86_64 numbers means nothing for them. doc/sandbox.md mirrors this list.
 *
 * The program is built in the supervisor and exported as BPF, so the
 * command's process only calls seccomp() (nothing that allocates after the
 * clone).
 *
 * Counting refusals (sysfilter.notify): SECCOMP_RET_ERRNO is silent, so the
 * refused calls are SECCOMP_RET_USER_NOTIF instead: the kernel stops the
 * caller and hands the call to the listener the filter was loaded with,
 * which the supervisor holds (refusals.c); it counts, logs and answers
 * EPERM. The decision is in the filter: the listener can only answer an
 * error for these calls. If the supervisor is gone the kernel answers
 * ENOSYS (still refused). Signals that can cross a process boundary
 * (kill(), rt_sigqueueinfo(), tkill(), rt_tgsigqueueinfo() with a positive
 * pid, tgkill() aimed at init, pidfd_send_signal(); add_signal_rules) go
 * to the listener as well, which lets the kernel run them (CONTINUE)
 * unless the target does not exist in the sandbox (ESRCH, as the kernel
 * would say) or is its init (EPERM, as Landlock's signal scope says):
 * those are the signal refusals it counts. clone3's ENOSYS stays silent:
 * libc takes it for an old kernel on every thread creation. */
#include <errno.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const struct sysfilter_rule plain_rules[] = {
    {"unshare", "new namespaces (network, mount, user...) would leave the fence"},
    {"setns", "joining another namespace"},
    {"mount", "changing the filesystem view"},
    {"umount2", "changing the filesystem view"},
    {"pivot_root", "changing the root"},
    {"chroot", "changing the root"},
    {"move_mount", "new mount API"},
    {"open_tree", "new mount API"},
    {"fsopen", "new mount API"},
    {"fsconfig", "new mount API"},
    {"fsmount", "new mount API"},
    {"fspick", "new mount API"},
    {"mount_setattr", "new mount API"},
    {"bpf", "kernel programs; large attack surface"},
    {"perf_event_open", "kernel attack surface, side channels"},
    {"userfaultfd", "a common kernel-exploit primitive"},
    {"io_uring_setup", "io_uring runs operations outside seccomp's view"},
    {"io_uring_enter", "io_uring"},
    {"io_uring_register", "io_uring"},
    {"keyctl", "the kernel keyring is not namespaced"},
    {"add_key", "the kernel keyring is not namespaced"},
    {"request_key", "the kernel keyring is not namespaced"},
    {"kexec_load", "loading a new kernel"},
    {"kexec_file_load", "loading a new kernel"},
    {"init_module", "loading kernel modules"},
    {"finit_module", "loading kernel modules"},
    {"delete_module", "unloading kernel modules"},
    {"open_by_handle_at", "opening files by handle bypasses path checks"},
    {"acct", "process accounting (host-wide)"},
    {"swapon", "host-wide"},
    {"swapoff", "host-wide"},
    {"reboot", "host-wide"},
    {"syslog", "the kernel log"},
    {"quotactl", "host-wide"},
    {"iopl", "raw port I/O"},
    {"ioperm", "raw port I/O"},
    {"fanotify_init", "watching the whole filesystem"},
    {"lookup_dcookie", "kernel profiling"},
    {"vhangup", "terminal hangup of the host terminal"},
    {"uselib", "obsolete loader"},
    {"ptrace", "taking over another process of the sandbox (same user: the kernel's own "
               "ptrace rules allow it), e.g. an allowed binary's proxy connection"},
    {"pidfd_getfd", "copying an fd (an allowed binary's proxy connection) out of another "
                    "process"},
    {"process_vm_readv", "reading another process's memory"},
    {"process_vm_writev", "writing another process's memory (code injection)"},
    {"process_madvise", "acting on another process's memory"},
    {"kcmp", "comparing other processes' fds and memory"},
};

/* The rules with argument checks, for the documentation. */
static const struct sysfilter_rule arg_rules[] = {
    {"socket(AF_PACKET|AF_KEY|AF_BLUETOOTH|AF_VSOCK|AF_ALG|... any family but AF_UNIX, "
     "AF_INET, AF_INET6, AF_NETLINK)", "link-layer, host-hypervisor and kernel sockets"},
    {"socket(AF_INET|AF_INET6, SOCK_RAW|SOCK_PACKET)", "raw packets bypass the fence's "
     "connection tracking and spoof traffic"},
    {"socket(AF_NETLINK, protocol != NETLINK_ROUTE)", "libc needs only NETLINK_ROUTE "
     "(getifaddrs); audit, sock_diag, netfilter, uevent... are refused"},
    {"clone(CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP)", "new namespaces"},
    {"clone3", "ENOSYS: its flags cannot be inspected; libc falls back to clone"},
    {"seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER)", "a listener of the "
     "command's own would receive the calls cordon refuses and could let them run (only "
     "where refusals are counted, see refusals.c)"},
    {"ioctl(TIOCSTI|TIOCLINUX)", "injecting keystrokes into a terminal"},
    {"move_pages|migrate_pages|get_robust_list(pid != 0)", "another process's memory: "
     "which of its addresses are mapped (move_pages), moving its pages (migrate_pages), "
     "its robust-futex list address (get_robust_list): layout leaks that help an exploit "
     "against an allowed binary"},
};

static struct sysfilter_rule all_rules[sizeof(plain_rules) / sizeof(plain_rules[0]) +
                                       sizeof(arg_rules) / sizeof(arg_rules[0])];

const struct sysfilter_rule *sysfilter_rules(size_t *n)
{
    size_t np = sizeof(plain_rules) / sizeof(plain_rules[0]);
    size_t na = sizeof(arg_rules) / sizeof(arg_rules[0]);
    memcpy(all_rules, plain_rules, sizeof(plain_rules));
    memcpy(all_rules + np, arg_rules, sizeof(arg_rules));
    *n = np + na;
    return all_rules;
}

/* `act` below: the action of every refusal (notify or EPERM, chosen by
 * sysfilter_build). */

static int add_socket_rules(scmp_filter_ctx ctx, uint32_t act)
{
    int sys = SCMP_SYS(socket);
    int rc;
    /* Families: refuse everything but the four we allow. */
    for (int fam = 0; fam < AF_MAX; fam++) {
        if (fam == AF_UNIX || fam == AF_INET || fam == AF_INET6 || fam == AF_NETLINK)
            continue;
        rc = seccomp_rule_add(ctx, act, sys, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fam));
        if (rc < 0)
            return rc;
    }
    rc = seccomp_rule_add(ctx, act, sys, 1, SCMP_A0(SCMP_CMP_GE, (scmp_datum_t)AF_MAX));
    if (rc < 0)
        return rc;
    static const int inet[] = {AF_INET, AF_INET6};
    static const int raw_types[] = {SOCK_RAW, SOCK_PACKET};
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 2; j++) {
            rc = seccomp_rule_add(ctx, act, sys, 2,
                                  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)inet[i]),
                                  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, (scmp_datum_t)raw_types[j]));
            if (rc < 0)
                return rc;
        }
    rc = seccomp_rule_add(ctx, act, sys, 2, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                          SCMP_A2(SCMP_CMP_NE, NETLINK_ROUTE));
    return rc;
}

static int add_clone_rules(scmp_filter_ctx ctx, uint32_t act)
{
    static const unsigned long ns_flags[] = {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC,
                                             CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                             CLONE_NEWCGROUP};
    int rc;
    for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++) {
        /* x86_64 clone(flags, ...): flags is the first argument. */
        rc = seccomp_rule_add(ctx, act, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
        if (rc < 0)
            return rc;
    }
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc < 0)
        return rc;
    static const unsigned long bad_ioctls[] = {TIOCSTI, TIOCLINUX};
    for (size_t i = 0; i < 2; i++) {
        rc = seccomp_rule_add(ctx, act, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, bad_ioctls[i]));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Calls that name another process by pid (0: the caller): refused for
 * any other pid. */
static int add_other_pid_rules(scmp_filter_ctx ctx, uint32_t act)
{
    static const char *const calls[] = {"move_pages", "migrate_pages", "get_robust_list"};
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        int nr = seccomp_syscall_resolve_name(calls[i]);
        if (nr == __NR_SCMP_ERROR)
            continue;
        /* Any other value of the whole register, so a pid hidden behind
         * high bits the kernel ignores is refused too. */
        int rc = seccomp_rule_add(ctx, act, nr, 1, SCMP_A0(SCMP_CMP_NE, 0));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Signals that may cross a process boundary go to the listener (see the
 * top): kill(), rt_sigqueueinfo() and tkill() to a positive pid or thread
 * id, rt_tgsigqueueinfo() to a positive thread group, every
 * pidfd_send_signal(), and tgkill() only when its thread group is 1 (the
 * sandbox's init): threads signal their own process with tgkill all the time
 * (raise(), pthread_kill(), Go's preemption), and a round trip to the
 * supervisor for each would cost every program; a tgkill to any other
 * thread group is left to the kernel (ESRCH outside the sandbox, which the
 * PID namespace makes unnamable, and the kernel's permission checks
 * inside). */
static int add_signal_rules(scmp_filter_ctx ctx)
{
    static const char *const calls[] = {"kill", "rt_sigqueueinfo", "tkill",
                                        "rt_tgsigqueueinfo"};
    int rc;
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        int nr = seccomp_syscall_resolve_name(calls[i]);
        if (nr == __NR_SCMP_ERROR)
            continue;
        /* A positive 32-bit pid: not 0, sign bit clear. */
        rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr, 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, 0x80000000u, 0));
        if (rc < 0)
            return rc;
    }
    int tg = seccomp_syscall_resolve_name("tgkill");
    if (tg != __NR_SCMP_ERROR &&
        (rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, tg, 1,
                               SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, 1))) < 0)
        return rc;
    int ps = seccomp_syscall_resolve_name("pidfd_send_signal");
    if (ps != __NR_SCMP_ERROR && (rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, ps, 0)) < 0)
        return rc;
    return 0;
}

/* A later filter that returns SECCOMP_RET_USER_NOTIF ties with ours, and
 * the kernel then notifies the most recent filter's listener: one the
 * command created could answer CONTINUE and run a call we refuse. So the
 * command cannot create listeners (filters without one still only add
 * restrictions). */
static int add_listener_rule(scmp_filter_ctx ctx, uint32_t act)
{
    return seccomp_rule_add(ctx, act, SCMP_SYS(seccomp), 2,
                            SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER),
                            SCMP_A1(SCMP_CMP_MASKED_EQ, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                                    SECCOMP_FILTER_FLAG_NEW_LISTENER));
}

bool sysfilter_notify_supported(void)
{
    /* The listener flag and the action must both be known to the kernel. */
    uint32_t act = SECCOMP_RET_USER_NOTIF;
    return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &act) == 0;
}

int sysfilter_build(struct sysfilter *out, bool notify)
{
    memset(out, 0, sizeof(*out));
    int rc = 0, mfd = -1;
    uint32_t act = notify ? SCMP_ACT_NOTIFY : SCMP_ACT_ERRNO(EPERM);
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return -ENOMEM;
    /* We set no_new_privs ourselves (privdrop); the exported program is
     * loaded with prctl, so these attributes only shape the BPF. */
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0)
        goto out;
    for (size_t i = 0; i < sizeof(plain_rules) / sizeof(plain_rules[0]); i++) {
        int nr = seccomp_syscall_resolve_name(plain_rules[i].syscall);
        if (nr == __NR_SCMP_ERROR) {
            log_debug("seccomp: %s does not exist on this architecture", plain_rules[i].syscall);
            continue;
        }
        if ((rc = seccomp_rule_add(ctx, act, nr, 0)) < 0) {
            log_error("seccomp: cannot add a rule for %s: %s", plain_rules[i].syscall,
                      strerror(-rc));
            goto out;
        }
    }
    if ((rc = add_socket_rules(ctx, act)) < 0 || (rc = add_clone_rules(ctx, act)) < 0 ||
        (rc = add_other_pid_rules(ctx, act)) < 0 ||
        (notify && ((rc = add_signal_rules(ctx)) < 0 || (rc = add_listener_rule(ctx, act)) < 0))) {
        log_error("seccomp: cannot add the argument rules: %s", strerror(-rc));
        goto out;
    }
    mfd = memfd_create("cordon-seccomp", MFD_CLOEXEC);
    if (mfd < 0) {
        rc = -errno;
        goto out;
    }
    if ((rc = seccomp_export_bpf(ctx, mfd)) < 0)
        goto out;
    off_t size = lseek(mfd, 0, SEEK_END);
    if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
        size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
        rc = -EINVAL;
        goto out;
    }
    out->insns = malloc((size_t)size);
    if (!out->insns) {
        rc = -ENOMEM;
        goto out;
    }
    if (pread(mfd, out->insns, (size_t)size, 0) != size) {
        rc = -EIO;
        goto out;
    }
    out->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
    out->notify = notify;
    rc = 0;
out:
    if (mfd >= 0)
        close(mfd);
    seccomp_release(ctx);
    if (rc < 0)
        sysfilter_free(out);
    return rc;
}

int sysfilter_apply(const struct sysfilter *f, int *listener)
{
    struct sock_fprog prog = {.len = f->len, .filter = f->insns};
    *listener = -1;
    if (!f->notify) {
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
            return -errno;
        return 0;
    }
    long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                      &prog);
    if (fd < 0)
        return -errno;
    *listener = (int)fd;
    return 0;
}

void sysfilter_free(struct sysfilter *f)
{
    free(f->insns);
    f->insns = NULL;
    f->len = 0;
}
