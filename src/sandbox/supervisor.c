/* sandbox/supervisor: builds the sandbox, runs the command, tears down.
 *
 * Order (each step fails closed; the command runs only after all of them):
 *   policy → user → workdir check → root plan → Landlock ruleset →
 *   seccomp program → network namespace + veth → cgroup → child
 *   environment → pty → init (new namespaces, builds the root, waits) →
 *   the proxy's CA (certutil starts on it), and
 *   meanwhile on a thread: bypass monitor (NFLOG) → fence (nftables) →
 *   routes → then Landlock rules (in the new root) → proxy on the
 *   supervisor side → join → "go" → command.
 * Then one event loop: signals (signalfd, forwarded to init), init's exit
 * (pidfd), the bypass monitor, the terminal relay. The proxy runs on its
 * own worker threads.
 *
 * The fence is the one optional part: without nftables or NFLOG the
 * sandbox still runs isolated (the namespace has no route beyond the
 * veth's /30), with one warning, unless --require-fence. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/audit.h"
#include "core/log.h"
#include "core/loop.h"
#include "policy/policy.h"
#include "proxy/proxy.h"
#include "sandbox/sandbox.h"
#include "sandbox/addrmap.h"
#include "sandbox/nslisten.h"
#include "sandbox/policydns.h"
#include "sandbox/sandbox_int.h"
#include "tls/tls.h"
#include "core/banned.h"

extern char **environ;

struct supervisor {
    const struct sandbox_opts *o;
    char name[64];
    char workdir[PATH_MAX];
    char proxy_url[64];      /* the proxy on the supervisor side of the veth */
    char inside_url[64];     /* the same proxy at 127.0.0.1 inside the sandbox */
    int lo_proxy_fd;         /* 127.0.0.1:3128 inside the sandbox namespace */
    bool transparent;        /* policy DNS + capture are on */
    struct addrmap *map;     /* synthetic address -> name (transparent only) */
    struct policydns *dns;
    int capture_fd;          /* 127.0.0.1:3129 inside, where captured TCP lands */
    struct policy *policy;
    struct privdrop priv;
    struct landlock_prep ll;
    struct mountplan mounts;
    struct cgroup cg;
    bool cg_made;
    int fence_rc;
    struct sysfilter filter;
    struct netns ns;
    bool ns_made;
    struct bypass *bypass;
    struct refusals *refusals;
    int refusals_sock;       /* the command's end, until init is spawned */
    enum fence_mode fence;
    char fence_why[512];
    struct proxy *proxy;
    struct childenv env;
    bool have_run_dir;   /* SANDBOX_RUN_DIR exists: private tmpfs + trust bundle */
    char ca_dir[64];     /* root-only directory the CA certificate is written to */
    char ca_out[96];
    char bundle_out[96]; /* prepare_trust's bundle, there */
    char p12_out[96];    /* and its Java truststore */
    pthread_t prep_tid;  /* prepare_trust, while the proxy starts */
    bool prep_on;
    int prep_rc;
    struct tls_ca *ca;   /* the proxy's CA until start_proxy hands it over */
    struct home_nss nss;     /* certutil building HOME's NSS database */
    pthread_t trust_tid;     /* install_trust, while the start hooks run */
    bool trust_on;
    int trust_rc;
    int tls_r, tls_w;        /* the proxy's late TLS set-up reports here */
    struct loop_io tls_io;
    bool tls_reported;       /* its result was read */
    bool tls_failed;         /* and it failed: the sandbox is stopped */
    bool loop_running;       /* the command was let run */
    struct tty_relay *tty;
    int tty_slave;
    int sync_r, sync_w, status_r, status_w, err_r, err_w, ready_r, ready_w;
    pid_t init_pid;
    int pidfd;
    int sigfd;
    struct loop *loop;
    struct loop_io sig_io, pid_io;
    bool init_done;
    int init_status;
    unsigned n_stop_signals;
    uint64_t t0_ms;
};

void sandbox_opts_init(struct sandbox_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->proxy_port = SANDBOX_DEFAULT_PROXY_PORT;
    inet_pton(AF_INET, "10.200.0.0", &o->pool);
    o->pool_prefix = 16;
    o->tty = SANDBOX_TTY_AUTO;
}

static int read_int(int fd, int *v, size_t n);

static int pipe_cloexec(int *r, int *w)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    *r = p[0];
    *w = p[1];
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void print_diag(const struct policy_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "%s\n", d->lines[i]);
}

/* ---- setup steps ---- */

static int setup_policy(struct supervisor *s)
{
    struct policy_diag diag = {0};
    int rc = policy_load_file(s->o->policy_path, &s->policy, &diag);
    print_diag(&diag);
    policy_diag_free(&diag);
    if (rc < 0) {
        log_error("run: cannot load the policy %s: %s", s->o->policy_path,
                  rc == -EINVAL ? "it has errors (above)" : strerror(-rc));
        return rc;
    }
    return 0;
}

/* A read-write workdir (include_workdir) that is, contains or lies inside
 * a system path would hand the sandbox that system path: refused. */
static int check_workdir(struct supervisor *s)
{
    static const char *const sys[] = {"/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32",
                                      "/lib64", "/libx32", "/boot", "/proc", "/sys", "/dev",
                                      "/run", "/var", "/opt", "/root", "/home", "/srv"};
    static const char *const inside_ok[] = {"/home", "/srv", "/var/tmp", "/opt", "/root"};
    const struct policy_fs *fs = policy_filesystem(s->policy);
    if (!fs || !fs->include_workdir)
        return 0;
    const char *w = s->workdir;
    size_t wl = strlen(w);
    if (strcmp(w, "/tmp") == 0 || strcmp(w, "/dev/shm") == 0) {
        log_error("run: the workdir %s is replaced by a private tmpfs inside the sandbox "
                  "(the command's files would not reach the host); run from a directory "
                  "under it (--workdir /tmp/project)", w);
        return -EPERM;
    }
    for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
        size_t sl = strlen(sys[i]);
        bool covers = wl == 1 || (strncmp(sys[i], w, wl) == 0 && (sys[i][wl] == '\0' ||
                                                                  sys[i][wl] == '/'));
        bool inside = strncmp(w, sys[i], sl) == 0 && w[sl] == '/';
        for (size_t j = 0; inside && j < sizeof(inside_ok) / sizeof(inside_ok[0]); j++) {
            size_t jl = strlen(inside_ok[j]);
            if (strncmp(w, inside_ok[j], jl) == 0 && w[jl] == '/')
                inside = false;
        }
        if (covers || inside) {
            log_error("run: the workdir %s would be granted read-write (include_workdir) and "
                      "%s system path %s; run from a project directory (--workdir DIR), or set "
                      "filesystem_policy.include_workdir: false and list what the command "
                      "needs", w, covers ? "that covers the" : "lies inside the", sys[i]);
            return -EPERM;
        }
    }
    return 0;
}

/* The sandbox's cgroup, limits from the flags over the policy's. */
static int setup_cgroup(struct supervisor *s)
{
    const struct policy_limits *pl = policy_limits(s->policy);
    struct cgroup_limits lim = {
        .pids = s->o->pids_max ? s->o->pids_max : pl->pids,
        .memory = s->o->memory_max ? s->o->memory_max : pl->memory,
        .cpu_millis = s->o->cpu_millis ? s->o->cpu_millis : pl->cpu_millis,
    };
    if (!lim.pids) {
        lim.pids = CGROUP_DEFAULT_PIDS;
        lim.pids_default = true;
    }
    if (s->o->cgroup_inherit) {
        /* The caller (cordon server) put us in a cgroup it owns: freeze,
         * kill-all and limits are its job, and the sandbox stays inside it. */
        if (s->o->pids_max || s->o->memory_max || s->o->cpu_millis || pl->pids || pl->memory ||
            pl->cpu_millis)
            log_warn("run: --cgroup-inherit: the limits given here are not applied (the "
                     "caller's cgroup holds the sandbox; set the limits there)");
        return 0;
    }
    char root[PATH_MAX] = "/sys/fs/cgroup", id[64], err[512] = "";
    int v2 = cgroup_detect(root, sizeof(root));
    if (!v2)
        snprintf(root, sizeof(root), "/sys/fs/cgroup");
    cgroup_reap_stale(root, v2);
    int rc = cgroup_id(id, sizeof(id));
    if (rc == 0)
        rc = cgroup_create(root, v2, CGROUP_PARENT, id, &lim, 0, &s->cg, err, sizeof(err));
    if (rc < 0) {
        log_error("run: %s; the command was not started", err[0] ? err : strerror(-rc));
        return rc;
    }
    s->cg_made = true;
    log_debug("run: cgroup %s (%s), pids %u", s->cg.dir[0], v2 ? "v2" : "v1",
              (unsigned)lim.pids);
    return 0;
}

static int setup_fence(struct supervisor *s)
{
    char err[512] = "";
    struct fence_opts fo = {.proxy4 = s->ns.slot.host4, .proxy_port = s->o->proxy_port,
                            .nflog_group = FENCE_NFLOG_GROUP};
    struct bypass_opts bo = {.child_netns_fd = s->ns.child_fd, .group = FENCE_NFLOG_GROUP,
                             .sandbox_name = s->name, .proxy_url = s->inside_url};
    if (s->map) {
        addrmap_range(s->map, &fo.capture_net, &fo.capture_prefix);
        fo.capture_port = SANDBOX_CAPTURE_PORT;
    }
    /* Diagnostic switches (documented in doc/sandbox.md): behave as on a
     * host without NFLOG / without nftables. Never widen the sandbox. */
    const char *no_fence = getenv("CORDON_DISABLE_FENCE");
    const char *no_nflog = getenv("CORDON_DISABLE_NFLOG");
    bool fence_disabled = no_fence && strcmp(no_fence, "1") == 0;
    int rc = -EOPNOTSUPP;
    if (fence_disabled)
        snprintf(err, sizeof(err), "nftables disabled by CORDON_DISABLE_FENCE=1");
    else if (no_nflog && strcmp(no_nflog, "1") == 0)
        snprintf(err, sizeof(err), "NFLOG disabled by CORDON_DISABLE_NFLOG=1");
    else
        rc = bypass_open(&bo, &s->bypass, err, sizeof(err));
    if (rc == 0) {
        fo.monitored = true;
        rc = fence_install(s->ns.child_fd, &fo, err, sizeof(err));
        if (rc == 0) {
            s->fence = FENCE_MONITORED;
            return 0;
        }
        bypass_close(s->bypass);
        s->bypass = NULL;
    }
    snprintf(s->fence_why, sizeof(s->fence_why), "%s", err);
    fo.monitored = false;
    char err2[512] = "";
    if (!fence_disabled && fence_install(s->ns.child_fd, &fo, err2, sizeof(err2)) == 0) {
        s->fence = FENCE_REJECT;
    } else {
        s->fence = FENCE_OFF;
        size_t l = strlen(s->fence_why);
        if (err2[0])
            snprintf(s->fence_why + l, sizeof(s->fence_why) - l, "%s%s", l ? "; " : "", err2);
    }
    if (s->o->require_fence) {
        log_error("run: --require-fence: %s; the command was not started",
                  s->fence == FENCE_OFF ? "no nftables fence" : "no bypass monitor (NFLOG)");
        log_error("run: cause: %s", s->fence_why);
        return -EOPNOTSUPP;
    }
    if (s->fence == FENCE_OFF)
        log_warn("run: fast-fail and bypass detection are OFF (%s). The sandbox is still "
                 "isolated: it has no route beyond the proxy's subnet, so direct connections "
                 "fail as unreachable and are not reported. Use --require-fence to refuse to "
                 "run like this.", s->fence_why);
    else
        log_warn("run: bypass detection is OFF (%s). Direct connections are still refused at "
                 "once, but not reported. Use --require-fence to refuse to run like this.",
                 s->fence_why);
    return 0;
}

/* Names the proxy answers itself (inference.local with --inference-routes):
 * the policy DNS hands out addresses for them too. Called on the
 * supervisor's loop, after the proxy started. */
static bool dns_extra_names(void *ctx, const char *name)
{
    struct supervisor *s = ctx;
    return s->proxy && proxy_intercepts_name(s->proxy, name);
}

/* Policy DNS and transparent capture: the address map, the responder's
 * sockets and the capture socket inside the namespace (before the fence,
 * whose capture rule needs the map's range). */
static int setup_transparent(struct supervisor *s)
{
    char err[256] = "";
    struct in_addr net;
    inet_pton(AF_INET, ADDRMAP_DEFAULT_NET, &net);
    s->map = addrmap_new(net, ADDRMAP_DEFAULT_PREFIX);
    if (!s->map) {
        log_error("run: cannot create the address map: %s", strerror(errno));
        return -ENOMEM;
    }
    struct policydns_opts po = {.child_netns_fd = s->ns.child_fd, .sandbox_name = s->name,
                                .map = s->map, .extra = {.names = dns_extra_names, .ctx = s}};
    int rc = policydns_open(&po, &s->dns, err, sizeof(err));
    if (rc < 0) {
        log_error("run: policy DNS: %s; the command was not started (--no-transparent runs "
                  "without it)", err);
        return rc;
    }
    struct in_addr lo = {.s_addr = htonl(INADDR_LOOPBACK)};
    s->capture_fd = nslisten_open(s->ns.child_fd, SOCK_STREAM, lo, SANDBOX_CAPTURE_PORT);
    if (s->capture_fd < 0) {
        rc = s->capture_fd;
        log_error("run: cannot listen on 127.0.0.1:%u in the sandbox for captured connections: "
                  "%s", SANDBOX_CAPTURE_PORT, strerror(-rc));
        return rc;
    }
    s->transparent = true;
    return 0;
}

/* Without a fence nothing can be redirected: the responder would hand out
 * addresses that lead nowhere, so the sandbox runs as with --no-transparent. */
static void drop_transparent(struct supervisor *s)
{
    if (!s->transparent)
        return;
    log_warn("run: transparent capture is OFF (no nftables fence): names do not resolve inside "
             "the sandbox; only clients that use the proxy (HTTPS_PROXY) reach the network");
    policydns_close(s->dns);
    s->dns = NULL;
    close_fd(&s->capture_fd);
    addrmap_free(s->map);
    s->map = NULL;
    s->transparent = false;
}

static int lookup_capture(void *ctx, const struct sockaddr_in *orig, char *host, size_t cap)
{
    struct supervisor *s = ctx;
    return addrmap_lookup(s->map, orig->sin_addr, host, cap);
}

/* The fence and the default routes (run on a thread of its own while
 * init builds the root; its result goes to s->fence_rc). */
static void *fence_thread(void *arg)
{
    struct supervisor *s = arg;
    int rc = setup_fence(s);
    if (rc == 0 && s->fence != FENCE_OFF && (rc = netns_route_out(&s->ns)) < 0)
        log_error("run: cannot add the sandbox's default route: %s", strerror(-rc));
    s->fence_rc = rc;
    log_debug("run: fence thread done (%s)", fence_mode_name(s->fence));
    return NULL;
}

static int setup_env(struct supervisor *s)
{
    struct childenv_opts eo = {.proxy_url = s->inside_url, .user = s->priv.user,
                               .home = s->mounts.enabled && !s->o->host_home ? SANDBOX_HOME
                                       : s->priv.home[0] ? s->priv.home : s->workdir,
                               .sandbox_name = s->name,
                               .ca_bundle = s->have_run_dir ? SANDBOX_BUNDLE_FILE : NULL,
                               .keep = s->o->env_keep, .clear = s->o->env_clear,
                               .java_truststore = s->have_run_dir ? SANDBOX_TRUSTSTORE_FILE : NULL};
    int rc = childenv_build(environ, &eo, &s->env);
    if (rc < 0)
        log_error("run: cannot build the command's environment: %s", strerror(-rc));
    return rc;
}

static int setup_tty(struct supervisor *s)
{
    /* AUTO: only when both ends are a terminal; `cordon run -- ls > f` must
     * not get pty line endings in f. */
    bool want = s->o->tty == SANDBOX_TTY_ALWAYS ||
                (s->o->tty == SANDBOX_TTY_AUTO && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO));
    if (!want)
        return 0;
    int rc = tty_open(&s->tty, &s->tty_slave);
    if (rc < 0) {
        log_error("run: cannot set up a terminal for the command: %s", strerror(-rc));
        return rc;
    }
    s->mounts.host_pts = true;
    if (fchown(s->tty_slave, s->priv.uid, (gid_t)-1) < 0)
        log_debug("run: cannot hand the pty to uid %u: %s", (unsigned)s->priv.uid,
                  strerror(errno));
    return 0;
}

static int spawn_init(struct supervisor *s)
{
    int rc;
    if ((rc = pipe_cloexec(&s->sync_r, &s->sync_w)) < 0 ||
        (rc = pipe_cloexec(&s->status_r, &s->status_w)) < 0 ||
        (rc = pipe_cloexec(&s->err_r, &s->err_w)) < 0 ||
        (rc = pipe_cloexec(&s->ready_r, &s->ready_w)) < 0) {
        log_error("run: pipe: %s", strerror(-rc));
        return rc;
    }
    struct init_plan plan = {
        .child_netns_fd = s->ns.child_fd,
        .sync_fd = s->sync_r,
        .sync_wfd = s->sync_w,
        .ready_fd = s->ready_w,
        .status_fd = s->status_w,
        .errpipe_fd = s->err_w,
        .tty_slave = s->tty_slave,
        .tty_master = s->tty ? tty_master_fd(s->tty) : -1,
        .workdir = s->workdir,
        .run_dir = SANDBOX_RUN_DIR,
        .mounts = &s->mounts,
        .hostname = s->name,
        .cgroup_fds = s->cg.procs_fd,
        .n_cgroup_fds = s->cg_made ? s->cg.n : 0,
        .resolv_conf = s->transparent ? "# cordon: the sandbox's policy DNS (names the policy "
                                        "allows; nothing is forwarded)\nnameserver 127.0.0.1\n"
                                      : NULL,
        .exe_path = NULL,
        .argv = s->o->argv,
        .envp = s->env.envp,
        .path_env = childenv_get(&s->env, "PATH"),
        .priv = &s->priv,
        .landlock = &s->ll,
        .filter = &s->filter,
        .refusals_sock = s->refusals_sock,
    };
    pid_t pid = init_spawn(&plan);
    if (pid < 0) {
        log_error("run: cannot create the sandbox's PID namespace: %s", strerror(-pid));
        return pid;
    }
    s->init_pid = pid;
    cgroup_close_procs(&s->cg);
    close_fd(&s->sync_r);
    close_fd(&s->status_w);
    close_fd(&s->err_w);
    close_fd(&s->ready_w);
    close_fd(&s->tty_slave);
    close_fd(&s->refusals_sock);
    s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (s->pidfd < 0) {
        rc = -errno;
        log_error("run: pidfd_open: %s", strerror(-rc));
        return rc;
    }
    return 0;
}

/* Waits until init has built the sandbox's root (EOF = it failed; errpipe
 * says why), then adds the Landlock rules in that tree. */
static int wait_init_ready(struct supervisor *s)
{
    int rc;
    pid_t pid = s->init_pid;
    /* Wait until init has its root (EOF = it failed; errpipe says why). */
    char ready;
    ssize_t n;
    do {
        n = read(s->ready_r, &ready, 1);
    } while (n < 0 && errno == EINTR);
    close_fd(&s->ready_r);
    if (n != 1) {
        int e[2];
        if (read_int(s->err_r, e, 2) == 0)
            log_error("run: the sandbox's init cannot %s: %s", init_step_name((enum init_step)e[0]),
                      strerror(e[1]));
        else
            log_error("run: the sandbox's init died during setup");
        return -ECHILD;
    }
    char root[64], err[512] = "";
    snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
    static const char *const run_dir[] = {SANDBOX_RUN_DIR, NULL};
    if ((rc = landlock_finish(&s->ll, root, s->have_run_dir ? run_dir : NULL, err,
                              sizeof(err))) < 0) {
        log_error("run: %s", err);
        return rc;
    }
    return 0;
}

/* The proxy's CA, made (or loaded from --ca-dir) before the proxy starts:
 * its certificate goes into a root-only directory of ours, copied into the
 * sandbox once its root exists (install_trust), and certutil starts
 * building HOME's NSS database from it right away, while the proxy, the
 * fence and the sandbox's root are being set up. The key stays in memory
 * and goes to the proxy (start_proxy). */
static void start_prepare(struct supervisor *s);
static int join_prepare(struct supervisor *s);

/* Where the CA certificate and certutil's database are made before they
 * are copied in: /run, or /dev/shm when /run is not a tmpfs (both files are
 * synced when written: on a disk, that is I/O for throwaway files). */
static const char *scratch_dir(void)
{
    struct statfs f;
    if (statfs("/run", &f) == 0 && f.f_type == TMPFS_MAGIC)
        return "/run";
    if (statfs("/dev/shm", &f) == 0 && f.f_type == TMPFS_MAGIC)
        return "/dev/shm";
    return "/run";
}

static int make_ca(struct supervisor *s)
{
    char err[512] = "";
    int rc = s->o->ca_dir ? tls_ca_load(s->o->ca_dir, NULL, &s->ca, err, sizeof(err))
                          : tls_ca_generate(NULL, &s->ca, err, sizeof(err));
    if (rc < 0) {
        log_error("run: proxy CA: %s; the command was not started", err[0] ? err : strerror(-rc));
        return rc;
    }
    const char *scratch = scratch_dir();
    snprintf(s->ca_dir, sizeof(s->ca_dir), "%s/cordon-ca.XXXXXX", scratch);
    if (!mkdtemp(s->ca_dir)) {
        rc = -errno;
        s->ca_dir[0] = '\0';
        log_error("run: cannot create a directory for the proxy's CA: %s", strerror(-rc));
        return rc;
    }
    snprintf(s->ca_out, sizeof(s->ca_out), "%s/ca.pem", s->ca_dir);
    snprintf(s->bundle_out, sizeof(s->bundle_out), "%s/ca-bundle.pem", s->ca_dir);
    snprintf(s->p12_out, sizeof(s->p12_out), "%s/truststore.p12", s->ca_dir);
    if ((rc = tls_ca_cert_write(s->ca, s->ca_out, err, sizeof(err))) < 0) {
        log_error("run: proxy CA certificate: %s; the command was not started", err);
        return rc;
    }
    if (s->mounts.enabled && (rc = home_nss_start(&s->nss, s->ca_out, scratch)) < 0)
        log_warn("run: cannot start certutil for the NSS database (%s): Chromium and Firefox "
                 "will not trust the sandbox CA", strerror(-rc));
    return 0;
}

/* On the proxy's TLS thread: its result, into the pipe the loop watches. */
static void on_tls_ready(int rc, void *data)
{
    struct supervisor *s = data;
    ssize_t w;
    do
        w = write(s->tls_w, &rc, sizeof(rc));
    while (w < 0 && errno == EINTR);
}

/* The proxy's late TLS set-up has reported (tls_r readable, or polled
 * before the start): a failure stops the sandbox, since nothing it sends
 * to an inspected endpoint could be served. 1 when it failed. */
static bool tls_check(struct supervisor *s)
{
    int rc;
    if (s->tls_reported || s->tls_r < 0 || read(s->tls_r, &rc, sizeof(rc)) != (ssize_t)sizeof(rc))
        return s->tls_failed;
    s->tls_reported = true;
    if (rc < 0) {
        s->tls_failed = true;
        log_error("run: the egress proxy could not finish starting (its TLS set-up failed: %s, "
                  "see above); %s", strerror(-rc),
                  s->loop_running ? "the sandbox is stopped" : "the command was not started");
        if (s->init_pid > 0 && !s->init_done)
            kill(s->init_pid, SIGKILL);
    }
    return s->tls_failed;
}

static void on_tls_io(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct supervisor *s = io->data;
    (void)tls_check(s);
    if (s->tls_reported)
        loop_io_del(l, io);
}

static int start_proxy(struct supervisor *s)
{
    struct proxy_config cfg;
    proxy_config_init(&cfg);
    cfg.policy_path = s->o->policy_path;
    struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.listen;
    sin->sin_family = AF_INET;
    sin->sin_addr = s->ns.slot.host4;
    sin->sin_port = htons(s->o->proxy_port);
    cfg.listen_len = sizeof(*sin);
    cfg.resolver = s->o->resolver;
    cfg.ca_dir = s->o->ca_dir;
    cfg.upstream_ca = s->o->upstream_ca;
    cfg.inference_routes = s->o->inference_routes;
    cfg.client_netns_fd = s->ns.child_fd;
    cfg.sandbox_name = s->name;
    cfg.extra_listen_fd = s->lo_proxy_fd;
    if (s->transparent) {
        cfg.transparent_listen_fd = s->capture_fd;
        cfg.transparent_lookup = lookup_capture;
        cfg.transparent_ctx = s;
    }
    cfg.local_cb = s->o->local_cb;
    cfg.local_data = s->o->local_data;
    /* The sandbox's connection budget (flag over the policy's limits). */
    uint32_t mc = s->o->max_conns ? s->o->max_conns : policy_limits(s->policy)->max_conns;
    if (mc)
        cfg.max_conns = mc;
    cfg.ca = s->ca; /* make_ca: the proxy takes it over */
    s->ca = NULL;
    /* TLS contexts and upstream trust are made while the sandbox starts
     * (the self-test needs none); inspected connections wait for them. */
    int rc = pipe_cloexec(&s->tls_r, &s->tls_w);
    if (rc == 0 && fcntl(s->tls_r, F_SETFL, O_NONBLOCK) == 0) {
        cfg.late_tls = true;
        cfg.tls_ready_cb = on_tls_ready;
        cfg.tls_ready_data = s;
    }
    rc = proxy_start(&cfg, &s->proxy);
    if (rc < 0) {
        log_error("run: cannot start the egress proxy on %s: %s; the command was not started",
                  s->proxy_url, strerror(-rc));
        return rc;
    }
    return 0;
}


static void remove_ca_dir(struct supervisor *s)
{
    if (!s->ca_dir[0])
        return;
    (void)join_prepare(s); /* it writes there */
    unlink(s->ca_out);
    unlink(s->bundle_out);
    unlink(s->p12_out);
    rmdir(s->ca_dir);
    s->ca_dir[0] = '\0';
}

/* The trust bundle and the Java truststore, made from the CA certificate
 * in the root-only scratch directory (make_ca) while the proxy, the fence
 * and the sandbox's root are being set up (started after spawn_init: no
 * thread may run when init is cloned); install_trust copies them in. */
static int prepare_trust(struct supervisor *s)
{
    char err[256];
    int rc;
    if ((rc = trust_bundle_write(s->ca_out, s->bundle_out, err, sizeof(err))) < 0) {
        log_error("run: %s; the command was not started", err);
        return rc;
    }
    if ((rc = tls_truststore_write(s->bundle_out, s->p12_out, err, sizeof(err))) < 0) {
        log_error("run: %s; the command was not started", err);
        return rc;
    }
    log_debug("run: trust bundle and truststore made");
    return 0;
}

static void *prepare_thread(void *arg)
{
    struct supervisor *s = arg;
    s->prep_rc = prepare_trust(s);
    return NULL;
}

/* prepare_trust on a thread of its own (inline if none can be created). */
static void start_prepare(struct supervisor *s)
{
    s->prep_on = pthread_create(&s->prep_tid, NULL, prepare_thread, s) == 0;
    if (!s->prep_on)
        s->prep_rc = prepare_trust(s);
}

/* Waits for prepare_trust; its result. */
static int join_prepare(struct supervisor *s)
{
    if (s->prep_on) {
        pthread_join(s->prep_tid, NULL);
        s->prep_on = false;
    }
    return s->prep_rc;
}

/* The proxy's CA certificate, the trust bundle and the truststore, into
 * the sandbox's private tmpfs through its init's root. */
static int install_trust(struct supervisor *s)
{
    if (!s->have_run_dir)
        return 0;
    char out[96], err[256];
    int rc;
    const char *const files[][2] = {{s->ca_out, SANDBOX_CA_FILE},
                                    {s->bundle_out, SANDBOX_BUNDLE_FILE},
                                    {s->p12_out, SANDBOX_TRUSTSTORE_FILE}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(out, sizeof(out), "/proc/%d/root%s", (int)s->init_pid, files[i][1]);
        if ((rc = trust_file_copy(files[i][0], out, err, sizeof(err))) < 0) {
            log_error("run: %s; the command was not started", err);
            return rc;
        }
    }
    log_debug("run: trust files copied in");
    if (s->mounts.enabled && (rc = home_install(s->init_pid, s->priv.uid, s->priv.gid, &s->nss,
                                                err, sizeof(err))) < 0) {
        log_error("run: %s; the command was not started", err);
        return rc;
    }
    return 0;
}

static void *trust_thread(void *arg)
{
    struct supervisor *s = arg;
    s->trust_rc = install_trust(s);
    return NULL;
}

/* install_trust on a thread of its own (inline if none can be created). */
static void start_trust(struct supervisor *s)
{
    s->trust_on = pthread_create(&s->trust_tid, NULL, trust_thread, s) == 0;
    if (!s->trust_on) {
        s->trust_rc = install_trust(s);
        remove_ca_dir(s);
    }
}

/* Waits for the trust files; their result (0 if never started). */
static int join_trust(struct supervisor *s)
{
    if (s->trust_on) {
        pthread_join(s->trust_tid, NULL);
        s->trust_on = false;
        remove_ca_dir(s); /* copied in (or failed): not needed any more */
    }
    return s->trust_rc;
}

/* ---- the loop ---- */

static void on_init_exit(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct supervisor *s = io->data;
    int st;
    pid_t w;
    do {
        w = waitpid(s->init_pid, &st, WNOHANG);
    } while (w < 0 && errno == EINTR);
    if (w == 0)
        return; /* spurious */
    s->init_done = true;
    s->init_status = w > 0 ? st : 0;
    loop_io_del(l, io);
    loop_stop(l);
}

static void on_signal(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct supervisor *s = io->data;
    struct signalfd_siginfo si;
    while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        int sig = (int)si.ssi_signo;
        if (sig == SIGWINCH && s->tty) {
            tty_resize(s->tty);
            continue;
        }
        if (s->init_done)
            continue;
        if (sig == SIGHUP && s->o->hooks && s->o->hooks->hup_cb) {
            s->o->hooks->hup_cb(s->o->hooks->data); /* reload, not stop */
            continue;
        }
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
            if (++s->n_stop_signals >= 3) {
                log_warn("run: third stop signal: killing the sandbox");
                kill(s->init_pid, SIGKILL);
                continue;
            }
        }
        kill(s->init_pid, sig);
    }
}

static int block_signals(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < init_n_forward_signals; i++)
        sigaddset(set, init_forward_signals[i]);
    if (sigprocmask(SIG_BLOCK, set, NULL) < 0)
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* ---- results ---- */

static int read_int(int fd, int *v, size_t n)
{
    size_t got = 0;
    char *p = (char *)v;
    while (got < n * sizeof(int)) {
        ssize_t r = read(fd, p + got, n * sizeof(int) - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got == n * sizeof(int) ? 0 : -ENODATA;
}

/* Whether one of the filesystem policy's paths is `path` or above it. */
static bool fs_lists(const struct policy_fs *fs, const char *path)
{
    char *const *lists[2] = {fs->read_only, fs->read_write};
    size_t ns[2] = {fs->n_read_only, fs->n_read_write};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < ns[l]; i++) {
            const char *e = lists[l][i];
            size_t el = strlen(e);
            while (el > 1 && e[el - 1] == '/')
                el--;
            if ((el == 1 && e[0] == '/') ||
                (strncmp(path, e, el) == 0 && (path[el] == '\0' || path[el] == '/')))
                return true;
        }
    return false;
}

/* A command that cannot be executed because the filesystem policy shows no
 * system directories: say so (OpenShell adds baseline paths on its own;
 * cordon grants what the file lists, doc/policy.md). */
static void hint_missing_system_paths(const struct supervisor *s)
{
    static const char *const need[] = {"/usr", "/lib", "/etc"};
    const struct policy_fs *fs = policy_filesystem(s->policy);
    char missing[32] = "";
    for (size_t i = 0; fs && i < sizeof(need) / sizeof(need[0]); i++)
        if (!fs_lists(fs, need[i]))
            snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%s",
                     missing[0] ? " " : "", need[i]);
    if (missing[0])
        log_error("run: the sandbox shows only what filesystem_policy lists, and it does not "
                  "list %s (programs and their libraries live there): add them to read_only. "
                  "OpenShell adds /usr /lib /etc /app /var/log /proc /dev/urandom on its own; "
                  "cordon does not (on the host they are the host's own)", missing);
}

static int exit_code(struct supervisor *s, int *signo)
{
    *signo = 0;
    int err[2];
    if (read_int(s->err_r, err, 2) == 0) {
        enum init_step step = (enum init_step)err[0];
        log_error("run: cannot %s%s%s: %s", init_step_name(step),
                  step == INIT_STEP_EXEC ? " " : "",
                  step == INIT_STEP_EXEC ? s->o->argv[0] : "", strerror(err[1]));
        if (step == INIT_STEP_EXEC) {
            hint_missing_system_paths(s);
            return err[1] == ENOENT ? SANDBOX_EXIT_NOTFOUND : SANDBOX_EXIT_NOEXEC;
        }
        return SANDBOX_EXIT_SETUP;
    }
    int st;
    if (read_int(s->status_r, &st, 1) < 0) {
        st = s->init_status; /* init itself died (killed) */
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            return SANDBOX_EXIT_SETUP;
    }
    if (WIFSIGNALED(st)) {
        *signo = WTERMSIG(st);
        return 128 + WTERMSIG(st);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : SANDBOX_EXIT_SETUP;
}

static void audit_start(struct supervisor *s)
{
    char sub[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &s->ns.slot.host4, sub, sizeof(sub));
    json_t *o = json_object();
    json_object_set_new(o, "sandbox", json_string(s->name));
    json_object_set_new(o, "supervisor_pid", json_integer(getpid()));
    json_object_set_new(o, "init_pid", json_integer(s->init_pid));
    json_t *argv = json_array();
    for (size_t i = 0; s->o->argv[i]; i++)
        json_array_append_new(argv, json_string(s->o->argv[i]));
    json_object_set_new(o, "command", argv);
    json_object_set_new(o, "user", json_string(s->priv.user));
    json_object_set_new(o, "uid", json_integer(s->priv.uid));
    json_object_set_new(o, "gid", json_integer(s->priv.gid));
    json_object_set_new(o, "workdir", json_string(s->workdir));
    json_object_set_new(o, "proxy", json_string(s->proxy_url));
    json_object_set_new(o, "proxy_in_sandbox", json_string(s->inside_url));
    json_object_set_new(o, "transparent", json_boolean(s->transparent));
    if (s->transparent) {
        struct in_addr net;
        uint8_t pfx;
        char cap[INET_ADDRSTRLEN + 4];
        addrmap_range(s->map, &net, &pfx);
        inet_ntop(AF_INET, &net, sub, sizeof(sub));
        snprintf(cap, sizeof(cap), "%s/%u", sub, (unsigned)pfx);
        json_object_set_new(o, "dns", json_string("127.0.0.1:53"));
        json_object_set_new(o, "capture_range", json_string(cap));
    }
    char cidr[INET_ADDRSTRLEN + 4];
    struct in_addr net = {.s_addr = htonl(ntohl(s->ns.slot.host4.s_addr) - 1)};
    inet_ntop(AF_INET, &net, sub, sizeof(sub));
    snprintf(cidr, sizeof(cidr), "%s/30", sub);
    json_object_set_new(o, "subnet", json_string(cidr));
    json_object_set_new(o, "fence", json_string(fence_mode_name(s->fence)));
    json_object_set_new(o, "landlock_abi", json_integer(s->ll.ruleset_fd >= 0 ? s->ll.used_abi : 0));
    json_object_set_new(o, "landlock_rules", json_integer(s->ll.n_rules));
    json_object_set_new(o, "seccomp", json_true());
    json_object_set_new(o, "tty", json_boolean(s->tty != NULL));
    audit_emit("sandbox_start", o);
}

/* limit_reached: the limits the sandbox ran into, with counts. */
static void audit_limits(struct supervisor *s)
{
    if (!s->cg_made)
        return;
    struct cgroup_counters c;
    cgroup_counters(&s->cg, &c);
    if (c.pids_refused) {
        json_t *o = json_object();
        json_object_set_new(o, "sandbox", json_string(s->name));
        json_object_set_new(o, "limit", json_string("pids"));
        json_object_set_new(o, "max", json_integer(s->cg.lim.pids));
        json_object_set_new(o, "refused_forks", json_integer((json_int_t)c.pids_refused));
        json_object_set_new(o, "hint", json_string("raise limits.pids in the policy or "
                                                   "--pids-max"));
        audit_emit("limit_reached", o);
    }
    if (c.oom_kills) {
        json_t *o = json_object();
        json_object_set_new(o, "sandbox", json_string(s->name));
        json_object_set_new(o, "limit", json_string("memory"));
        json_object_set_new(o, "max", json_integer((json_int_t)s->cg.lim.memory));
        json_object_set_new(o, "oom_kills", json_integer((json_int_t)c.oom_kills));
        json_object_set_new(o, "hint", json_string("raise limits.memory in the policy or "
                                                   "--memory"));
        audit_emit("limit_reached", o);
    }
}

static void audit_exit(struct supervisor *s, int code, int signo)
{
    json_t *o = json_object();
    json_object_set_new(o, "sandbox", json_string(s->name));
    json_object_set_new(o, "exit_code", json_integer(code));
    json_object_set_new(o, "signal", signo ? json_integer(signo) : json_null());
    json_object_set_new(o, "duration_ms", json_integer((json_int_t)(loop_clock_ms() - s->t0_ms)));
    refusals_summary(s->refusals, o);
    audit_emit("sandbox_exit", o);
}

static void fill_info(const struct supervisor *s, struct sandbox_info *info)
{
    memset(info, 0, sizeof(*info));
    info->name = s->name;
    info->policy = s->policy;
    info->uid = (unsigned)s->priv.uid;
    info->gid = (unsigned)s->priv.gid;
    info->workdir = s->workdir;
    info->proxy_url = s->proxy_url[0] ? s->proxy_url : NULL;
    info->netns_fd = -1;
    if (s->ns_made) {
        inet_ntop(AF_INET, &s->ns.slot.child4, info->address, sizeof(info->address));
        inet_ntop(AF_INET, &s->ns.slot.host4, info->proxy_addr, sizeof(info->proxy_addr));
        info->proxy_port = s->o->proxy_port;
        info->netns_fd = s->ns.child_fd;
    }
}

/* ---- teardown ---- */

static void teardown(struct supervisor *s)
{
    if (s->init_pid > 0 && !s->init_done) {
        kill(s->init_pid, SIGKILL);
        while (waitpid(s->init_pid, NULL, 0) < 0 && errno == EINTR)
            ;
        s->init_done = true;
    }
    if (s->cg_made) {
        int k = cgroup_kill_wait(&s->cg);
        if (k > 0)
            log_debug("run: %d process(es) left in the sandbox's cgroup killed", k);
        cgroup_destroy(&s->cg);
        s->cg_made = false;
    }
    if (s->tty)
        tty_close(s->tty);
    s->tty = NULL;
    refusals_detach(s->refusals); /* the counts stay for sandbox_exit */
    bypass_close(s->bypass); /* flushes pending repeat counts */
    s->bypass = NULL;
    policydns_close(s->dns);
    s->dns = NULL;
    if (s->proxy)
        proxy_stop(s->proxy); /* joins its TLS thread: tls_w is written no more */
    s->proxy = NULL;
    close_fd(&s->tls_r);
    close_fd(&s->tls_w);
    addrmap_free(s->map); /* after the proxy: its workers look names up */
    s->map = NULL;
    close_fd(&s->lo_proxy_fd);
    close_fd(&s->capture_fd);
    remove_ca_dir(s);
    tls_ca_free(s->ca); /* not handed to the proxy (a failure before start_proxy) */
    s->ca = NULL;
    home_nss_discard(&s->nss);
    log_debug("run: proxy stopped");
    if (s->ns_made)
        netns_destroy(&s->ns);
    s->ns_made = false;
    if (s->loop)
        loop_free(s->loop);
    s->loop = NULL;
    landlock_prep_close(&s->ll);
    mountplan_free(&s->mounts);
    sysfilter_free(&s->filter);
    childenv_free(&s->env);
    if (s->policy)
        policy_unref(s->policy);
    s->policy = NULL;
    close_fd(&s->pidfd);
    close_fd(&s->sigfd);
    close_fd(&s->sync_r);
    close_fd(&s->sync_w);
    close_fd(&s->status_r);
    close_fd(&s->status_w);
    close_fd(&s->err_r);
    close_fd(&s->err_w);
    close_fd(&s->ready_r);
    close_fd(&s->ready_w);
    close_fd(&s->tty_slave);
    close_fd(&s->refusals_sock);
}

int sandbox_run(const struct sandbox_opts *o)
{
    struct supervisor sv, *s = &sv;
    memset(s, 0, sizeof(*s));
    s->o = o;
    s->ll.ruleset_fd = -1;
    s->tty_slave = s->sync_r = s->sync_w = s->status_r = s->status_w = s->err_r = s->err_w = -1;
    s->ready_r = s->ready_w = -1;
    s->pidfd = s->sigfd = -1;
    s->lo_proxy_fd = s->capture_fd = s->refusals_sock = -1;
    s->tls_r = s->tls_w = -1;
    s->t0_ms = loop_clock_ms();
    int code = SANDBOX_EXIT_SETUP, signo = 0, rc;
    bool started = false;
    struct sandbox_info info;
    char err[512] = "";

    if (!o->argv || !o->argv[0]) {
        log_error("run: no command given");
        return SANDBOX_EXIT_SETUP;
    }
    if (geteuid() != 0) {
        log_error("run: cordon run must be started as root (it creates network namespaces "
                  "and drops to an unprivileged user for the command)");
        return SANDBOX_EXIT_SETUP;
    }
    snprintf(s->name, sizeof(s->name), "%s", o->name ? o->name : "");
    if (!s->name[0])
        snprintf(s->name, sizeof(s->name), "run-%d", (int)getpid());

    sigset_t set;
    if ((rc = block_signals(&set)) < 0)
        goto out;
    s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->sigfd < 0) {
        rc = -errno;
        log_error("run: signalfd: %s", strerror(-rc));
        goto out;
    }
    if ((rc = setup_policy(s)) < 0)
        goto out;
    log_debug("run: policy loaded");
    /* Read by the proxy's late TLS set-up (start_proxy): a missing file is
     * said now, before anything is built. */
    if (o->upstream_ca && access(o->upstream_ca, R_OK) < 0) {
        rc = -errno;
        log_error("run: --upstream-ca %s: %s; the command was not started", o->upstream_ca,
                  strerror(-rc));
        goto out;
    }
    if ((rc = privdrop_resolve(policy_run_as_user(s->policy), policy_run_as_group(s->policy),
                               &s->priv, err, sizeof(err))) < 0) {
        log_error("run: %s", err);
        goto out;
    }
    if (!realpath(o->workdir ? o->workdir : ".", s->workdir)) {
        rc = -errno;
        log_error("run: working directory %s: %s", o->workdir ? o->workdir : ".",
                  strerror(-rc));
        goto out;
    }
    if ((rc = check_workdir(s)) < 0)
        goto out;
    if ((rc = landlock_prepare(policy_filesystem(s->policy), s->workdir,
                               policy_landlock_compat(s->policy) == POLICY_LANDLOCK_HARD,
                               &s->ll, err, sizeof(err))) < 0) {
        log_error("run: %s", err);
        goto out;
    }
    if ((rc = mountplan_build(policy_filesystem(s->policy), s->workdir, &s->mounts)) < 0) {
        log_error("run: cannot plan the sandbox's filesystem: %s", strerror(-rc));
        goto out;
    }
    bool counting = sysfilter_notify_supported();
    if ((rc = sysfilter_build(&s->filter, counting)) < 0) {
        log_error("run: cannot build the seccomp filter: %s", strerror(-rc));
        goto out;
    }
    if ((rc = refusals_new(s->name, counting, &s->refusals, &s->refusals_sock)) < 0) {
        log_error("run: cannot set up the count of refused system calls: %s", strerror(-rc));
        goto out;
    }
    log_debug("run: landlock ruleset and seccomp program ready");
    if (o->hooks && o->hooks->prepared_cb) {
        fill_info(s, &info);
        if ((rc = o->hooks->prepared_cb(&info, o->hooks->data)) < 0)
            goto out;
    }
    if ((rc = netns_create(o->pool, o->pool_prefix, &s->ns, err, sizeof(err))) < 0) {
        log_error("run: %s; the command was not started", err);
        goto out;
    }
    s->ns_made = true;
    log_debug("run: network namespace ready (%s)", s->ns.slot.host_ifname);
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &s->ns.slot.host4, host, sizeof(host));
    snprintf(s->proxy_url, sizeof(s->proxy_url), "http://%s:%u", host, (unsigned)o->proxy_port);
    snprintf(s->inside_url, sizeof(s->inside_url), "http://127.0.0.1:%u",
             (unsigned)SANDBOX_LOOPBACK_PROXY_PORT);
    struct in_addr lo = {.s_addr = htonl(INADDR_LOOPBACK)};
    s->lo_proxy_fd = nslisten_open(s->ns.child_fd, SOCK_STREAM, lo, SANDBOX_LOOPBACK_PROXY_PORT);
    if (s->lo_proxy_fd < 0) {
        rc = s->lo_proxy_fd;
        log_error("run: cannot listen on 127.0.0.1:%u inside the sandbox: %s; the command was "
                  "not started", SANDBOX_LOOPBACK_PROXY_PORT, strerror(-rc));
        goto out;
    }
    if (!o->no_transparent && (rc = setup_transparent(s)) < 0)
        goto out;

    /* The sandbox's new root is built on this empty directory of the host
     * (what is mounted on it is only visible inside). */
    if (mkdir(SANDBOX_RUN_DIR, 0755) < 0 && errno != EEXIST) {
        rc = -errno;
        log_error("run: cannot create %s (the sandbox's root is built there): %s",
                  SANDBOX_RUN_DIR, strerror(-rc));
        goto out;
    }
    s->have_run_dir = true;
    if ((rc = setup_cgroup(s)) < 0)
        goto out;
    if ((rc = setup_env(s)) < 0 || (rc = setup_tty(s)) < 0 || (rc = spawn_init(s)) < 0)
        goto out;
    /* The CA after init is cloned: init builds the root meanwhile, and
     * init's copy of our memory never holds the CA's key. */
    if ((rc = make_ca(s)) < 0)
        goto out;
    log_debug("run: proxy CA ready");
    /* Three things at once, all before the command may run: init builds
     * the sandbox's root, a thread installs the fence, we start the proxy;
     * then the Landlock rules go into the new root, and a thread writes the
     * trust files there while the start hooks (the enforcement self-test,
     * which needs the fence and the proxy but not the trust files) run. */
    /* No thread may run before spawn_init: init is a raw clone of this
     * process (no atfork handlers), a lock another thread held then (malloc,
     * OpenSSL, the log) would stay held in init forever. */
    start_prepare(s);
    pthread_t fence_tid;
    bool fence_thread_on = pthread_create(&fence_tid, NULL, fence_thread, s) == 0;
    if (!fence_thread_on)
        fence_thread(s);
    int rc_proxy = start_proxy(s);
    log_debug("run: proxy started");
    int rc_ready = wait_init_ready(s);
    log_debug("run: sandbox root ready, landlock rules added");
    int rc_prep = join_prepare(s);
    if (rc_ready == 0 && rc_proxy == 0 && rc_prep == 0)
        start_trust(s);
    else
        remove_ca_dir(s);
    if (fence_thread_on)
        pthread_join(fence_tid, NULL);
    if ((rc = rc_ready) < 0 || (rc = s->fence_rc) < 0 || (rc = rc_proxy) < 0 ||
        (rc = rc_prep) < 0)
        goto out;
    if (s->fence == FENCE_OFF)
        drop_transparent(s); /* nothing can be redirected without the fence */
    log_debug("run: init %d waiting", (int)s->init_pid);
    log_debug("run: fence %s, proxy listening", fence_mode_name(s->fence));

    s->loop = loop_new(64);
    if (!s->loop) {
        rc = -ENOMEM;
        log_error("run: cannot create the event loop");
        goto out;
    }
    s->sig_io.cb = on_signal;
    s->sig_io.data = s;
    s->pid_io.cb = on_init_exit;
    s->pid_io.data = s;
    s->tls_io.cb = on_tls_io;
    s->tls_io.data = s;
    if ((rc = loop_io_add(s->loop, &s->sig_io, s->sigfd, EPOLLIN)) < 0 ||
        (rc = loop_io_add(s->loop, &s->pid_io, s->pidfd, EPOLLIN)) < 0 ||
        (s->bypass && (rc = bypass_attach(s->bypass, s->loop, s->init_pid)) < 0) ||
        (rc = refusals_attach(s->refusals, s->loop, s->init_pid)) < 0 ||
        (s->dns && (rc = policydns_attach(s->dns, s->loop, s->init_pid)) < 0) ||
        (s->tty && (rc = tty_attach(s->tty, s->loop)) < 0) ||
        (s->tls_r >= 0 && (rc = loop_io_add(s->loop, &s->tls_io, s->tls_r, EPOLLIN)) < 0)) {
        log_error("run: cannot start the supervisor loop: %s", strerror(-rc));
        goto out;
    }
    log_info("run: sandbox %s: proxy %s, fence %s, landlock ABI %d, user %s", s->name,
             s->proxy_url, fence_mode_name(s->fence), s->ll.ruleset_fd >= 0 ? s->ll.used_abi : 0,
             s->priv.user);
    if (o->hooks && o->hooks->started_cb) {
        fill_info(s, &info);
        if ((rc = o->hooks->started_cb(s->loop, s->proxy, &info, o->hooks->data)) < 0)
            goto out;
    }
    log_debug("run: start hooks done");
    if ((rc = join_trust(s)) < 0)
        goto out;
    log_debug("run: trust files installed");
    if (tls_check(s)) { /* failed already: the command never starts */
        rc = -EPROTO;
        goto out;
    }
    audit_start(s);
    started = true;
    /* Everything is in place but, perhaps, the proxy's TLS contexts (see
     * start_proxy): let the command run. */
    char go = 'g';
    if (write(s->sync_w, &go, 1) != 1) {
        rc = -errno;
        log_error("run: the sandbox's init is gone before the start");
    }
    close_fd(&s->sync_w);
    s->loop_running = true;
    if ((rc = loop_run(s->loop)) < 0)
        log_error("run: event loop: %s", strerror(-rc));
    if (s->init_done)
        code = exit_code(s, &signo);
    if (s->tls_failed) {
        code = SANDBOX_EXIT_SETUP;
        signo = 0;
    }
    log_debug("run: command finished (exit %d)", code);
    audit_limits(s);
out:
    (void)join_trust(s); /* before teardown: it writes into the sandbox */
    teardown(s);
    /* Last: the proxy's closes and the bypass monitor's repeat counts are
     * written during teardown; nothing follows sandbox_exit. */
    if (started)
        audit_exit(s, code, signo);
    refusals_free(s->refusals);
    s->refusals = NULL;
    if (o->hooks && o->hooks->exited_cb)
        o->hooks->exited_cb(code, o->hooks->data);
    log_debug("run: sandbox %s torn down", s->name);
    return code;
}
