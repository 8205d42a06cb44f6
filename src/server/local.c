/* server/local: sandboxes as `cordon run` children in cgroups (see local.h). */
#include "server/local.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "sandbox/cgroup.h"
#include "server/limits.h"
#include "server/store.h"
#include "server/timefmt.h"
#include "tls/tls.h"
#include "core/banned.h"

#define POLL_MS 20
#define REMOVE_TIMEOUT_MS 10000
#define MAX_ENV 256
#define POOL_RETRY_MS 1000
#define POOL_KEY "cordon.io/pool" /* metadata marking an idle pool sandbox in the store */
#define START_FIFO ".cordon-start"       /* in the workdir: a claim writes a line */
#define START_SCRIPT ".cordon-entrypoint" /* in the workdir: the claimed entrypoint */

struct local;

struct lsbx {
    struct lsbx *prev, *next;
    struct local *drv;
    struct store_row row;
    struct cgroup cg; /* sandbox/cgroup: <hierarchy>/cordon/sbx-<id> */
    struct in_addr addr;
    int have_addr;
    int pidfd;
    struct loop_io pid_io;
    struct loop_timer expiry, poll;
    int probe_fd;
    struct loop_io probe_io;
    uint64_t deadline; /* loop ms: create or remove gives up */
    int exited;        /* the supervisor is gone */
    int exit_status;
    int removing;
    sbx_create_cb create_cb;
    void *create_data;
    sbx_done_cb rm_cb;
    void *rm_data;
    struct loop_deferred defer;
    int pooled;   /* an idle pool sandbox: invisible to the API until claimed */
    int start_fd; /* pool: our end of the workdir's start FIFO (O_RDWR, kept open) */
    struct loop_deferred claim_defer;
};

struct local {
    struct sbx_driver base;
    struct loop *loop;
    struct local_cfg cfg;
    struct store *store;
    struct lsbx *list;
    char netns_self[64];
    char cg_root[PATH_MAX]; /* cgroup_detect(): the hierarchy sandboxes' groups go in */
    bool cg_v2;
    char ca_dir[600];
    struct loop_timer pool_timer; /* refills the pool */
};

static struct local *L(struct sbx_driver *d) { return (struct local *)d; }

/* The group in the store: {"v2": bool, "dirs": [path, ...]}. */
static json_t *cg_to_json(const struct cgroup *cg)
{
    json_t *a = json_array();
    for (size_t i = 0; i < cg->n; i++)
        json_array_append_new(a, json_string(cg->dir[i]));
    return json_pack("{s:b,s:o}", "v2", cg->v2, "dirs", a);
}

/* Back from the store: the directories must be below this server's
 * hierarchy (sandbox/cgroup checks); a row written under another hierarchy
 * (v1 <-> v2) is not taken. Returns 0 or -errno. */
static int cg_from_json(struct local *d, const json_t *j, struct cgroup *cg)
{
    const char *dirs[CGROUP_MAX_DIRS];
    char err[512] = "";
    json_t *a = json_object_get(j, "dirs");
    cgroup_init(cg);
    if (!json_is_array(a) || json_array_size(a) > CGROUP_MAX_DIRS ||
        json_is_true(json_object_get(j, "v2")) != d->cg_v2)
        return -EINVAL;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!(dirs[i] = json_string_value(json_array_get(a, i))))
            return -EINVAL;
    int r = cgroup_attach(d->cg_root, d->cg_v2, dirs, json_array_size(a), cg, err, sizeof(err));
    if (r < 0)
        log_warn("server: %s", err);
    return r;
}

static void sbx_save(struct lsbx *s)
{
    json_decref(s->row.cgroup);
    s->row.cgroup = cg_to_json(&s->cg);
    (void)store_put(s->drv->store, &s->row);
}

static void set_state(struct lsbx *s, enum sbx_state st, const char *reason, const char *msg)
{
    struct sbx_record *r = &s->row.rec;
    if (r->state != st)
        log_info("server: sandbox %s: %s -> %s%s%s", r->id, sbx_state_name(r->state),
                 sbx_state_name(st), reason ? ": " : "", reason ? reason : "");
    r->state = st;
    snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
    snprintf(r->message, sizeof(r->message), "%s", msg ? msg : "");
    r->transition_ms = timefmt_now_ms();
    sbx_save(s);
}

static struct lsbx *find(struct local *d, const char *id)
{
    for (struct lsbx *s = d->list; s; s = s->next)
        if (!s->pooled && strcmp(s->row.rec.id, id) == 0)
            return s;
    return NULL;
}

static int not_found(struct local *d, const char *id)
{
    snprintf(d->base.err, sizeof(d->base.err), "Sandbox %s not found.", id);
    return -ENOENT;
}

static void sbx_dir(struct local *d, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/sandboxes/%s", d->cfg.data_dir, id);
}

/* /proc/PID/stat field 22 (starttime), 0 when the process is gone. */
static uint64_t proc_start(pid_t pid)
{
    char p[64], buf[1024];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *c = strrchr(buf, ')');
    if (!c)
        return 0;
    int field = 2;
    for (char *t = c + 1; *t; t++) {
        if (*t == ' ' && ++field == 22)
            return strtoull(t + 1, NULL, 10);
    }
    return 0;
}

/* The last line cordon run wrote (why it failed), for the Failed message. */
static void log_tail(struct local *d, const char *id, char *out, size_t cap)
{
    char p[600], buf[1024];
    out[0] = '\0';
    sbx_dir(d, id, p, sizeof(p));
    strncat(p, "/run.log", sizeof(p) - strlen(p) - 1);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
    close(fd);
    if (n <= 0)
        return;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    char *line = strrchr(buf, '\n');
    snprintf(out, cap, "%.180s", line ? line + 1 : buf);
}

/* ---- lifecycle helpers ---- */

static void probe_stop(struct lsbx *s)
{
    if (s->probe_fd >= 0) {
        loop_io_del(s->drv->loop, &s->probe_io);
        close(s->probe_fd);
        s->probe_fd = -1;
    }
}

static void sbx_free(void *arg)
{
    struct lsbx *s = arg;
    if (s->start_fd >= 0)
        close(s->start_fd);
    sbx_record_clear(&s->row.rec);
    json_decref(s->row.cgroup);
    free(s);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    if (remove(path) < 0)
        log_warn("server: cannot remove %s: %s", path, strerror(errno));
    return 0;
}

/* The sandbox's workdir and everything its command left in it (no symlink
 * is followed: FTW_PHYS). */
static void rm_work(const char *dir)
{
    char w[700];
    snprintf(w, sizeof(w), "%s/work", dir);
    (void)nftw(w, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void sbx_unlink(struct lsbx *s)
{
    struct local *d = s->drv;
    loop_timer_stop(d->loop, &s->expiry);
    loop_timer_stop(d->loop, &s->poll);
    probe_stop(s);
    if (s->pidfd >= 0) {
        loop_io_del(d->loop, &s->pid_io);
        close(s->pidfd);
        s->pidfd = -1;
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        d->list = s->next;
    if (s->next)
        s->next->prev = s->prev;
    loop_defer(d->loop, &s->defer, sbx_free, s);
}

static void create_finish(struct lsbx *s, int rc, const char *why)
{
    sbx_create_cb cb = s->create_cb;
    void *data = s->create_data;
    s->create_cb = NULL;
    s->create_data = NULL;
    if (cb)
        cb(data, rc, &s->row.rec, why);
}

static void pool_schedule(struct local *d, uint64_t ms);
static void remove_begin(struct lsbx *s, sbx_done_cb cb, void *data);

/* Fails a sandbox: every process killed, the record kept as Failed (an
 * idle pool sandbox is removed instead, and the pool refilled later). */
static void sbx_fail(struct lsbx *s, const char *reason, const char *msg)
{
    probe_stop(s);
    loop_timer_stop(s->drv->loop, &s->poll);
    loop_timer_stop(s->drv->loop, &s->expiry);
    int k = cgroup_kill(&s->cg);
    if (k < 0)
        log_warn("server: sandbox %s: cannot kill its cgroup: %s", s->row.rec.id, strerror(-k));
    set_state(s, SBX_FAILED, reason, msg);
    log_warn("server: sandbox %s failed: %s: %s", s->row.rec.id, reason, msg);
    create_finish(s, -EIO, msg);
    if (s->pooled) {
        remove_begin(s, NULL, NULL);
        pool_schedule(s->drv, POOL_RETRY_MS);
    }
}

static void start_poll(struct lsbx *s, uint64_t ms)
{
    if (loop_timer_start(s->drv->loop, &s->poll, ms) < 0)
        log_warn("server: sandbox %s: timer heap full", s->row.rec.id);
}

/* Removal: kill everything in the cgroup until it is empty. */
static void remove_step(struct lsbx *s)
{
    struct local *d = s->drv;
    pid_t pids[8];
    int n = cgroup_members(&s->cg, pids, 8);
    int gone = n <= 0 && (s->exited || s->pidfd < 0);
    int rr = gone ? cgroup_remove(&s->cg) : 0;
    if (!gone || rr == -EBUSY) {
        /* members left, or the last one still being unlinked from the group */
        if (n > 0)
            (void)cgroup_kill(&s->cg);
        if (loop_now_ms(d->loop) > s->deadline) {
            log_error("server: sandbox %s: processes still alive after %d ms of SIGKILL",
                      s->row.rec.id, REMOVE_TIMEOUT_MS);
            sbx_done_cb cb = s->rm_cb;
            s->rm_cb = NULL;
            s->removing = 0;
            set_state(s, SBX_FAILED, "DELETE_FAILED", "processes did not exit after SIGKILL");
            if (cb)
                cb(s->rm_data, -EIO, "processes of the sandbox did not exit after SIGKILL");
            return;
        }
        start_poll(s, POLL_MS / 2);
        return;
    }
    if (rr < 0)
        log_warn("server: sandbox %s: cannot remove cgroup %s: %s", s->row.rec.id, s->cg.dir[0],
                 strerror(-rr));
    char dir[600], f[700];
    sbx_dir(d, s->row.rec.id, dir, sizeof(dir));
    snprintf(f, sizeof(f), "%s/run.log", dir);
    unlink(f);
    snprintf(f, sizeof(f), "%s/audit.log", dir);
    unlink(f);
    rm_work(dir);
    rmdir(dir);
    (void)store_delete(d->store, s->row.rec.id);
    log_info("server: sandbox %s removed", s->row.rec.id);
    sbx_done_cb cb = s->rm_cb;
    void *data = s->rm_data;
    s->rm_cb = NULL;
    sbx_unlink(s);
    if (cb)
        cb(data, 0, NULL);
}

static void remove_begin(struct lsbx *s, sbx_done_cb cb, void *data)
{
    struct local *d = s->drv;
    s->rm_cb = cb;
    s->rm_data = data;
    if (s->removing)
        return;
    s->removing = 1;
    probe_stop(s);
    loop_timer_stop(d->loop, &s->expiry);
    if (s->create_cb)
        create_finish(s, -ECANCELED, "the sandbox was deleted while starting");
    set_state(s, SBX_STOPPING, NULL, NULL);
    s->deadline = loop_now_ms(d->loop) + REMOVE_TIMEOUT_MS;
    (void)cgroup_kill(&s->cg);
    loop_timer_stop(d->loop, &s->poll);
    start_poll(s, 0);
}

/* ---- readiness: find the sandbox's address, then execd's port ---- */

/* The sandbox's IPv4 address: in the routing table of a member process
 * that lives in another network namespace, the /30 of eth0; the sandbox
 * side is the network address + 2 (sandbox/netns.c). */
static int discover_addr(struct lsbx *s)
{
    pid_t pids[64];
    int n = cgroup_members(&s->cg, pids, 64);
    for (int i = 0; i < n; i++) {
        char p[64], ns[64];
        snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)pids[i]);
        ssize_t l = readlink(p, ns, sizeof(ns) - 1);
        if (l <= 0)
            continue;
        ns[l] = '\0';
        if (strcmp(ns, s->drv->netns_self) == 0)
            continue;
        snprintf(p, sizeof(p), "/proc/%d/net/route", (int)pids[i]);
        FILE *f = fopen(p, "re");
        if (!f)
            continue;
        char line[256];
        int found = 0;
        while (fgets(line, sizeof(line), f)) {
            char ifn[32];
            unsigned dst, gw, flags, mask;
            if (sscanf(line, "%31s %x %x %x %*d %*d %*d %x", ifn, &dst, &gw, &flags, &mask) == 5 &&
                strcmp(ifn, "lo") != 0 && ntohl(mask) == 0xfffffffcu) {
                s->addr.s_addr = htonl(ntohl(dst) + 2);
                found = 1;
                break;
            }
        }
        fclose(f);
        if (found) {
            inet_ntop(AF_INET, &s->addr, s->row.ip, sizeof(s->row.ip));
            s->have_addr = 1;
            return 0;
        }
    }
    return -EAGAIN;
}

static void became_running(struct lsbx *s)
{
    struct local *d = s->drv;
    probe_stop(s);
    set_state(s, SBX_RUNNING, NULL, NULL);
    if (s->row.rec.expires_ms) {
        int64_t left = s->row.rec.expires_ms - timefmt_now_ms();
        if (loop_timer_start(d->loop, &s->expiry, left > 0 ? (uint64_t)left : 0) < 0)
            log_warn("server: sandbox %s: timer heap full; no expiry", s->row.rec.id);
    }
    log_info("server: sandbox %s running at %s (execd port %u)%s", s->row.rec.id, s->row.ip,
             d->cfg.execd_port, s->pooled ? " (pool)" : "");
    if (s->pooled) {
        size_t ready = 0;
        for (struct lsbx *x = d->list; x; x = x->next)
            ready += x->pooled && !x->removing && x->row.rec.state == SBX_RUNNING;
        log_info("server: pool: %zu of %u ready", ready, d->cfg.pool);
    }
    create_finish(s, 0, NULL);
}

static void probe_io(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct lsbx *s = io->data;
    int err = 0;
    socklen_t el = sizeof(err);
    (void)l;
    (void)events;
    if (getsockopt(s->probe_fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    probe_stop(s);
    if (err == 0)
        became_running(s);
    /* refused: execd is not listening yet; the poll timer tries again */
}

static void probe_start(struct lsbx *s)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(s->drv->cfg.execd_port),
                              .sin_addr = s->addr};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    int r = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
    if (r == 0) {
        close(fd);
        became_running(s);
        return;
    }
    if (errno != EINPROGRESS) {
        close(fd);
        return;
    }
    s->probe_fd = fd;
    s->probe_io.cb = probe_io;
    s->probe_io.data = s;
    if (loop_io_add(s->drv->loop, &s->probe_io, fd, EPOLLOUT) < 0) {
        close(fd);
        s->probe_fd = -1;
    }
}

static void poll_cb(struct loop *l, struct loop_timer *t)
{
    struct lsbx *s = t->data;
    if (s->removing) {
        remove_step(s);
        return;
    }
    if (s->row.rec.state != SBX_PENDING)
        return;
    if (loop_now_ms(l) > s->deadline) {
        char msg[200];
        snprintf(msg, sizeof(msg), "execd did not answer on port %u within %llu ms",
                 s->drv->cfg.execd_port, (unsigned long long)s->drv->cfg.create_timeout_ms);
        sbx_fail(s, "CREATE_TIMEOUT", msg);
        return;
    }
    if (!s->have_addr)
        (void)discover_addr(s);
    if (s->have_addr && s->probe_fd < 0)
        probe_start(s);
    if (s->row.rec.state == SBX_PENDING)
        start_poll(s, POLL_MS);
}

static void pid_io(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct lsbx *s = io->data;
    int status = 0;
    (void)events;
    pid_t r = waitpid(s->row.run_pid, &status, WNOHANG);
    if (r == 0)
        return; /* spurious */
    loop_io_del(l, &s->pid_io);
    close(s->pidfd);
    s->pidfd = -1;
    s->exited = 1;
    s->exit_status = r > 0 ? status : 0;
    if (s->removing) {
        remove_step(s);
        return;
    }
    if (s->row.rec.state == SBX_FAILED)
        return;
    char tail[200], msg[256];
    log_tail(s->drv, s->row.rec.id, tail, sizeof(tail));
    if (r > 0 && WIFEXITED(status))
        snprintf(msg, sizeof(msg), "cordon run exited with status %d%s%s", WEXITSTATUS(status),
                 tail[0] ? ": " : "", tail);
    else if (r > 0 && WIFSIGNALED(status))
        snprintf(msg, sizeof(msg), "cordon run was killed by signal %d", WTERMSIG(status));
    else
        snprintf(msg, sizeof(msg), "cordon run exited%s%s", tail[0] ? ": " : "", tail);
    sbx_fail(s, "SANDBOX_EXITED", msg);
}

static int watch_pid(struct lsbx *s)
{
    int fd = (int)syscall(SYS_pidfd_open, s->row.run_pid, 0);
    if (fd < 0)
        return -errno;
    s->pidfd = fd;
    s->pid_io.cb = pid_io;
    s->pid_io.data = s;
    int r = loop_io_add(s->drv->loop, &s->pid_io, fd, EPOLLIN);
    if (r < 0) {
        close(fd);
        s->pidfd = -1;
    }
    return r;
}

static void expiry_cb(struct loop *l, struct loop_timer *t)
{
    struct lsbx *s = t->data;
    (void)l;
    log_info("server: sandbox %s expired; removing it", s->row.rec.id);
    remove_begin(s, NULL, NULL);
}

static struct lsbx *sbx_new(struct local *d)
{
    struct lsbx *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->drv = d;
    s->pidfd = -1;
    s->probe_fd = -1;
    s->start_fd = -1;
    cgroup_init(&s->cg);
    s->expiry.cb = expiry_cb;
    s->expiry.data = s;
    s->poll.cb = poll_cb;
    s->poll.data = s;
    s->next = d->list;
    if (d->list)
        d->list->prev = s;
    d->list = s;
    return s;
}

/* ---- spawning ---- */

static void make_uuid(char out[SBX_ID_LEN + 1])
{
    uint8_t b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (uint8_t)random();
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, SBX_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

/* execd's access token: 32 hex digits from 16 random bytes. */
static void make_token(char out[65])
{
    uint8_t b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (uint8_t)random();
    for (size_t i = 0; i < sizeof(b); i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Appends s to the shell script single-quoted ('\'' for quotes). */
static int sh_quote(char *out, size_t cap, size_t *len, const char *s)
{
    if (*len + 3 > cap)
        return -ENOSPC;
    out[(*len)++] = '\'';
    for (; *s; s++) {
        if (*s == '\'') {
            if (*len + 5 > cap)
                return -ENOSPC;
            memcpy(out + *len, "'\\''", 4);
            *len += 4;
        } else {
            if (*len + 2 > cap)
                return -ENOSPC;
            out[(*len)++] = *s;
        }
    }
    out[(*len)++] = '\'';
    out[*len] = '\0';
    return 0;
}

static int env_name_ok(const char *k)
{
    if (!k[0] || isdigit((unsigned char)k[0]))
        return 0;
    for (const char *p = k; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    return strlen(k) < 256;
}

struct spawn_plan {
    char *argv[32];
    char *envp[MAX_ENV + 8];
    size_t nenv;
    char script[16384];
    char log_path[700], audit_path[700], work[720], name[48], port[16], policy[720];
};

static void plan_free(struct spawn_plan *p)
{
    for (size_t i = 0; i < p->nenv; i++)
        free(p->envp[i]);
}

static int add_env(struct spawn_plan *p, const char *k, const char *v)
{
    if (p->nenv >= MAX_ENV + 7)
        return -E2BIG;
    char *e = NULL;
    if (asprintf(&e, "%s=%s", k, v) < 0)
        return -ENOMEM;
    p->envp[p->nenv++] = e;
    return 0;
}

static int build_plan(struct local *d, const char *id, const char *token,
                      const struct sbx_spec *spec, int pooled, struct spawn_plan *p)
{
    char dir[600];
    size_t len = 0;
    int r;
    sbx_dir(d, id, dir, sizeof(dir));
    snprintf(p->log_path, sizeof(p->log_path), "%s/run.log", dir);
    snprintf(p->audit_path, sizeof(p->audit_path), "%s/audit.log", dir);
    snprintf(p->work, sizeof(p->work), "%s/work", dir);
    if (spec->policy_yaml)
        snprintf(p->policy, sizeof(p->policy), "%s/policy.yaml", dir);
    else
        snprintf(p->policy, sizeof(p->policy), "%s", d->cfg.policy);
    snprintf(p->name, sizeof(p->name), "sbx-%.8s", id);
    snprintf(p->port, sizeof(p->port), "%u", d->cfg.execd_port);
    /* sh -c: the entrypoint in the background, execd in the foreground */
    p->script[0] = '\0';
    size_t n = json_array_size(spec->entrypoint);
    for (size_t i = 0; i < n; i++) {
        if ((r = sh_quote(p->script, sizeof(p->script), &len,
                          json_string_value(json_array_get(spec->entrypoint, i)))) < 0)
            return r;
        if (len + 2 > sizeof(p->script))
            return -ENOSPC;
        p->script[len++] = ' ';
        p->script[len] = '\0';
    }
    if (pooled) {
        /* a pool sandbox: the entrypoint comes with the claim (server/local
         * writes START_SCRIPT, then a line into START_FIFO) */
        char f[800];
        static const char mid[] = " && exec env -u EXECD_ACCESS_TOKEN /bin/sh ";
        len = 0;
        memcpy(p->script, "(read -r _ < ", 14);
        len = 13;
        snprintf(f, sizeof(f), "%s/" START_FIFO, p->work);
        if ((r = sh_quote(p->script, sizeof(p->script), &len, f)) < 0)
            return r;
        if (len + sizeof(mid) > sizeof(p->script))
            return -ENOSPC;
        memcpy(p->script + len, mid, sizeof(mid));
        len += sizeof(mid) - 1;
        snprintf(f, sizeof(f), "%s/" START_SCRIPT, p->work);
        if ((r = sh_quote(p->script, sizeof(p->script), &len, f)) < 0)
            return r;
        if (len + 5 > sizeof(p->script))
            return -ENOSPC;
        memcpy(p->script + len, ") & ", 5);
        len += 4;
    } else if (n) {
        /* the token is execd's alone */
        static const char unset[] = "env -u EXECD_ACCESS_TOKEN ";
        if (len + sizeof(unset) > sizeof(p->script))
            return -ENOSPC;
        memmove(p->script + sizeof(unset) - 1, p->script, len + 1);
        memcpy(p->script, unset, sizeof(unset) - 1);
        len += sizeof(unset) - 1;
        if (len + 4 > sizeof(p->script))
            return -ENOSPC;
        memcpy(p->script + len, "& ", 3);
        len += 2;
    }
    if (len + 6 > sizeof(p->script))
        return -ENOSPC;
    memcpy(p->script + len, "exec ", 6);
    len += 5;
    if ((r = sh_quote(p->script, sizeof(p->script), &len, d->cfg.cordon_exe)) < 0)
        return r;
    int w = snprintf(p->script + len, sizeof(p->script) - len,
                     " execd --listen 0.0.0.0:%s --log-level warn", p->port);
    if (w < 0 || (size_t)w >= sizeof(p->script) - len)
        return -ENOSPC;
    size_t a = 0;
    p->argv[a++] = (char *)d->cfg.cordon_exe;
    p->argv[a++] = "run";
    p->argv[a++] = "--policy";
    p->argv[a++] = p->policy;
    p->argv[a++] = "--name";
    p->argv[a++] = p->name;
    p->argv[a++] = "--log";
    p->argv[a++] = p->audit_path;
    p->argv[a++] = "--workdir";
    p->argv[a++] = p->work;
    p->argv[a++] = "--no-tty";
    p->argv[a++] = "--cgroup-inherit"; /* the sandbox stays in our cgroup (pause, limits) */
    p->argv[a++] = "--ca-dir";
    p->argv[a++] = d->ca_dir;
    if (d->cfg.subnet_pool) {
        p->argv[a++] = "--subnet-pool";
        p->argv[a++] = (char *)d->cfg.subnet_pool;
    }
    if (d->cfg.resolver) {
        p->argv[a++] = "--resolver";
        p->argv[a++] = (char *)d->cfg.resolver;
    }
    p->argv[a++] = "--";
    p->argv[a++] = "/bin/sh";
    p->argv[a++] = "-c";
    p->argv[a++] = p->script;
    p->argv[a] = NULL;
    /* execd reads its token from here and removes it before any shell
     * starts; only root can read the supervisor's environment */
    if ((r = add_env(p, "EXECD_ACCESS_TOKEN", token)) < 0 ||
        (r = add_env(p, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")) < 0 ||
        (r = add_env(p, "HOME", "/tmp")) < 0 || (r = add_env(p, "LANG", "C.UTF-8")) < 0)
        return r;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)spec->env, k, v) {
        if (json_is_null(v))
            continue;
        if ((r = add_env(p, k, json_string_value(v))) < 0)
            return r;
    }
    p->envp[p->nenv] = NULL;
    return 0;
}

static int spawn(struct lsbx *s, struct spawn_plan *p)
{
    int logfd = open(p->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(logfd);
        return -e;
    }
    if (pid == 0) {
        /* the child: own session, the sandbox's cgroup, stdio, exec */
        setsid();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (cgroup_join(&s->cg, 0) < 0)
            _exit(125);
        int nul = open("/dev/null", O_RDONLY);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
            _exit(125);
        syscall(SYS_close_range, 3, ~0u, 0);
        execve(p->argv[0], p->argv, p->envp);
        _exit(127);
    }
    close(logfd);
    s->row.run_pid = pid;
    s->row.run_start = proc_start(pid);
    return 0;
}

/* ---- the driver operations ---- */

static int image_ok(struct local *d, const char *image)
{
    for (size_t i = 0; i < d->cfg.nimages; i++)
        if (strcmp(d->cfg.images[i], image) == 0)
            return 1;
    size_t len = (size_t)snprintf(d->base.err, sizeof(d->base.err),
                                  "image '%s' is not configured on this server; configured "
                                  "images (they run on the host filesystem under the sandbox "
                                  "policy):", image);
    for (size_t i = 0; i < d->cfg.nimages && len < sizeof(d->base.err); i++)
        len += (size_t)snprintf(d->base.err + len, sizeof(d->base.err) - len, "%s '%s'",
                                i ? "," : "", d->cfg.images[i]);
    return 0;
}

/* The sandbox's own policy (validated by the API layer) in its directory. */
static int write_policy(struct local *d, const char *dir, const struct sbx_spec *spec)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/policy.yaml", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int r = 0;
    if (fd < 0)
        r = -errno;
    for (size_t off = 0; r == 0 && off < spec->policy_len;) {
        ssize_t w = write(fd, spec->policy_yaml + off, spec->policy_len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            r = w < 0 ? -errno : -EIO;
        else
            off += (size_t)w;
    }
    if (fd >= 0 && close(fd) < 0 && r == 0)
        r = -errno;
    if (r < 0)
        snprintf(d->base.err, sizeof(d->base.err), "cannot write %.300s: %s", path, strerror(-r));
    return r;
}

/* Starts a sandbox (a pool sandbox when pooled: no entrypoint yet, hidden
 * from the API). spec is validated. Returns 0 or -errno (d->base.err). */
static int create_sbx(struct local *d, const struct sbx_spec *spec, int pooled,
                      sbx_create_cb cb, void *data)
{
    char dir[600];
    int r;
    struct lsbx *s = sbx_new(d);
    struct spawn_plan *p = calloc(1, sizeof(*p));
    if (!s || !p) {
        free(p);
        if (s)
            sbx_unlink(s);
        snprintf(d->base.err, sizeof(d->base.err), "out of memory");
        return -ENOMEM;
    }
    struct sbx_record *rec = &s->row.rec;
    make_uuid(rec->id);
    rec->state = SBX_PENDING;
    snprintf(rec->image, sizeof(rec->image), "%s", spec->image);
    rec->created_ms = rec->transition_ms = timefmt_now_ms();
    rec->expires_ms = spec->timeout_s ? rec->created_ms + spec->timeout_s * 1000 : 0;
    rec->metadata = json_deep_copy(spec->metadata);
    rec->entrypoint = json_deep_copy(spec->entrypoint);
    sbx_dir(d, rec->id, dir, sizeof(dir));
    if (mkdir(dir, 0700) < 0) {
        r = -errno;
        snprintf(d->base.err, sizeof(d->base.err), "cannot create %.300s: %s", dir, strerror(-r));
        goto fail;
    }
    /* the command's workdir: its own directory (cordon run refuses /tmp,
     * which is the sandbox's private tmpfs) that the sandbox user may write */
    char work[700];
    snprintf(work, sizeof(work), "%s/work", dir);
    if (mkdir(work, 0700) < 0 || chmod(work, 01777) < 0) {
        r = -errno;
        snprintf(d->base.err, sizeof(d->base.err), "cannot create %.300s: %s", work, strerror(-r));
        goto fail_dir;
    }
    if (spec->policy_yaml && (r = write_policy(d, dir, spec)) < 0)
        goto fail_dir;
    if (pooled) {
        char f[800];
        snprintf(f, sizeof(f), "%s/" START_FIFO, work);
        if (mkfifo(f, 0644) < 0 || (s->start_fd = open(f, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
            r = -errno;
            snprintf(d->base.err, sizeof(d->base.err), "cannot create %.300s: %s", f,
                     strerror(-r));
            goto fail_dir;
        }
        s->pooled = 1;
    }
    struct cgroup_limits lim;
    char cgname[SBX_ID_LEN + 8];
    if ((r = server_limits_parse(spec->limits, &lim, d->base.err, sizeof(d->base.err))) < 0)
        goto fail_dir;
    snprintf(cgname, sizeof(cgname), "sbx-%s", rec->id);
    if ((r = cgroup_create(d->cg_root, d->cg_v2, CGROUP_PARENT, cgname, &lim, CGROUP_NEED_FREEZER,
                           &s->cg, d->base.err, sizeof(d->base.err))) < 0) {
        if (r == -EINVAL)
            r = -EIO; /* not the request's fault */
        goto fail_dir;
    }
    cgroup_close_procs(&s->cg); /* the child joins by path (cgroup_join) */
    make_token(s->row.token);
    if ((r = build_plan(d, rec->id, s->row.token, spec, pooled, p)) < 0) {
        snprintf(d->base.err, sizeof(d->base.err), "entrypoint or env too large (%s)",
                 strerror(-r));
        r = -EINVAL;
        goto fail_cg;
    }
    if ((r = spawn(s, p)) < 0) {
        snprintf(d->base.err, sizeof(d->base.err), "cannot start cordon run: %s", strerror(-r));
        goto fail_cg;
    }
    plan_free(p);
    free(p);
    if (watch_pid(s) < 0)
        log_warn("server: sandbox %s: pidfd_open failed; exit noticed at next poll", rec->id);
    s->create_cb = cb;
    s->create_data = data;
    s->deadline = loop_now_ms(d->loop) + d->cfg.create_timeout_ms;
    sbx_save(s);
    log_info("server: sandbox %s: started cordon run (pid %d)%s", rec->id, (int)s->row.run_pid,
             pooled ? " for the pool" : "");
    start_poll(s, 0);
    return 0;
fail_cg:
    (void)cgroup_remove(&s->cg);
fail_dir:
    rm_work(dir);
    rmdir(dir);
fail:
    plan_free(p);
    free(p);
    sbx_unlink(s);
    return r;
}

/* ---- the warm pool (--pool N) ----
 *
 * N sandboxes started ahead under the server's --policy, with execd running
 * and a shell waiting on the workdir's START_FIFO. A create that the pool
 * can serve as is (the server's policy, no env, no resource limits: those
 * are fixed when cordon run starts) claims one: the entrypoint goes into
 * START_SCRIPT, a line into the FIFO starts it, and the record becomes the
 * caller's (new times, metadata, expiry). The pool is refilled after each
 * claim. Idle pool sandboxes are invisible to the API; after a restart they
 * are removed (the FIFO's writer, this process, is gone) and new ones made. */

static size_t pool_count(struct local *d)
{
    size_t n = 0;
    for (struct lsbx *s = d->list; s; s = s->next)
        n += s->pooled && !s->removing;
    return n;
}

static void pool_fill(struct loop *l, struct loop_timer *t)
{
    struct local *d = t->data;
    (void)l;
    json_t *md = json_pack("{s:s}", POOL_KEY, "idle"), *ep = json_array(), *env = json_object();
    struct sbx_spec spec = {.image = d->cfg.images[0], .entrypoint = ep, .env = env,
                            .metadata = md};
    while (md && ep && env && pool_count(d) < d->cfg.pool) {
        if (create_sbx(d, &spec, 1, NULL, NULL) < 0) {
            log_warn("server: pool: cannot start a sandbox: %s; retrying in %d ms", d->base.err,
                     POOL_RETRY_MS);
            pool_schedule(d, POOL_RETRY_MS);
            break;
        }
    }
    json_decref(md);
    json_decref(ep);
    json_decref(env);
}

static void pool_schedule(struct local *d, uint64_t ms)
{
    if (!d->cfg.pool || loop_timer_armed(&d->pool_timer))
        return;
    if (loop_timer_start(d->loop, &d->pool_timer, ms) < 0)
        log_warn("server: pool: timer heap full; not refilled");
}

/* Can a pool sandbox serve spec? */
static int pool_fits(const struct sbx_spec *spec)
{
    const char *k;
    json_t *v;
    if (spec->policy_yaml || (spec->limits && json_object_size(spec->limits) > 0))
        return 0;
    json_object_foreach((json_t *)spec->env, k, v) {
        if (!json_is_null(v))
            return 0;
    }
    return 1;
}

static void claim_done(void *arg)
{
    struct lsbx *s = arg;
    if (s->create_cb && s->row.rec.state == SBX_RUNNING)
        create_finish(s, 0, NULL);
}

/* Hands the idle pool sandbox s to a create. Returns 0 (cb fires at the end
 * of the turn) or -errno (s is left to be removed). */
static int pool_claim(struct lsbx *s, const struct sbx_spec *spec, sbx_create_cb cb, void *data)
{
    struct local *d = s->drv;
    struct sbx_record *rec = &s->row.rec;
    char dir[600], path[800], script[16384];
    size_t len = 0, n = json_array_size(spec->entrypoint);
    int r = 0;
    memcpy(script, "exec ", 6);
    len = 5;
    for (size_t i = 0; i < n && r == 0; i++) {
        r = sh_quote(script, sizeof(script) - 2, &len, json_string_value(json_array_get(spec->entrypoint, i)));
        script[len++] = ' ';
    }
    if (r < 0)
        return r;
    script[len++] = '\n';
    sbx_dir(d, rec->id, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/work/" START_SCRIPT, dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, script, len);
    if (close(fd) < 0 || w != (ssize_t)len)
        return -EIO;
    if (write(s->start_fd, "go\n", 3) != 3)
        return -errno;
    s->pooled = 0;
    json_decref(rec->metadata);
    json_decref(rec->entrypoint);
    rec->metadata = json_deep_copy(spec->metadata);
    rec->entrypoint = json_deep_copy(spec->entrypoint);
    snprintf(rec->image, sizeof(rec->image), "%s", spec->image);
    rec->created_ms = rec->transition_ms = timefmt_now_ms();
    rec->expires_ms = spec->timeout_s ? rec->created_ms + spec->timeout_s * 1000 : 0;
    sbx_save(s);
    if (rec->expires_ms &&
        loop_timer_start(d->loop, &s->expiry, (uint64_t)spec->timeout_s * 1000) < 0)
        log_warn("server: sandbox %s: timer heap full; no expiry", rec->id);
    s->create_cb = cb;
    s->create_data = data;
    loop_defer(d->loop, &s->claim_defer, claim_done, s);
    log_info("server: sandbox %s: claimed from the pool", rec->id);
    return 0;
}

static int l_create(struct sbx_driver *drv, const struct sbx_spec *spec, sbx_create_cb cb,
                    void *data)
{
    struct local *d = L(drv);
    if (!image_ok(d, spec->image))
        return -EINVAL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)spec->env, k, v) {
        if (strcmp(k, "EXECD_ACCESS_TOKEN") == 0) {
            snprintf(d->base.err, sizeof(d->base.err), "env: EXECD_ACCESS_TOKEN is set by the "
                     "server (execd's token is in the endpoint's headers)");
            return -EINVAL;
        }
        if (!env_name_ok(k)) {
            snprintf(d->base.err, sizeof(d->base.err), "env: '%s' is not a valid variable name "
                     "(letters, digits, '_', not starting with a digit)", k);
            return -EINVAL;
        }
    }
    if (d->cfg.pool && pool_fits(spec)) {
        for (struct lsbx *s = d->list; s; s = s->next) {
            if (!s->pooled || s->removing || s->row.rec.state != SBX_RUNNING)
                continue;
            int r = pool_claim(s, spec, cb, data);
            pool_schedule(d, 0);
            if (r == 0)
                return 0;
            log_warn("server: pool: cannot claim sandbox %s: %s; removing it", s->row.rec.id,
                     strerror(-r));
            remove_begin(s, NULL, NULL);
            break;
        }
    }
    return create_sbx(d, spec, 0, cb, data);
}

static void l_create_cancel(struct sbx_driver *drv, void *data)
{
    for (struct lsbx *s = L(drv)->list; s; s = s->next)
        if (s->create_cb && s->create_data == data) {
            s->create_cb = NULL;
            s->create_data = NULL;
        }
}

static void copy_rec(struct sbx_record *out, const struct sbx_record *in)
{
    *out = *in;
    out->metadata = json_incref(in->metadata);
    out->entrypoint = json_incref(in->entrypoint);
}

static int l_get(struct sbx_driver *drv, const char *id, struct sbx_record *out)
{
    struct lsbx *s = find(L(drv), id);
    if (!s)
        return not_found(L(drv), id);
    copy_rec(out, &s->row.rec);
    return 0;
}

static int cmp_created_desc(const void *a, const void *b)
{
    const struct sbx_record *x = a, *y = b;
    if (x->created_ms != y->created_ms)
        return x->created_ms < y->created_ms ? 1 : -1;
    return strcmp(x->id, y->id);
}

static int l_list(struct sbx_driver *drv, struct sbx_record **out, size_t *n)
{
    size_t c = 0;
    for (struct lsbx *s = L(drv)->list; s; s = s->next)
        c += !s->pooled;
    struct sbx_record *a = calloc(c ? c : 1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    size_t i = 0;
    for (struct lsbx *s = L(drv)->list; s; s = s->next)
        if (!s->pooled)
            copy_rec(&a[i++], &s->row.rec);
    qsort(a, c, sizeof(*a), cmp_created_desc);
    *out = a;
    *n = c;
    return 0;
}

static int l_remove(struct sbx_driver *drv, const char *id, sbx_done_cb cb, void *data)
{
    struct lsbx *s = find(L(drv), id);
    if (!s)
        return not_found(L(drv), id);
    if (s->removing && s->rm_cb) {
        snprintf(drv->err, sizeof(drv->err), "Sandbox %s is already being deleted.", id);
        return -EBUSY;
    }
    remove_begin(s, cb, data);
    return 0;
}

static void l_remove_cancel(struct sbx_driver *drv, void *data)
{
    for (struct lsbx *s = L(drv)->list; s; s = s->next)
        if (s->rm_cb && s->rm_data == data)
            s->rm_cb = NULL;
}

/* Pause (freeze) or resume (thaw): the sandbox must be in `from`. */
static int freeze_to(struct sbx_driver *drv, const char *id, enum sbx_state from,
                     enum sbx_state to, int frozen)
{
    struct lsbx *s = find(L(drv), id);
    if (!s)
        return not_found(L(drv), id);
    if (s->row.rec.state != from) {
        snprintf(drv->err, sizeof(drv->err), "Sandbox %s is %s, not %s.", id,
                 sbx_state_name(s->row.rec.state), sbx_state_name(from));
        return -EBUSY;
    }
    int r = cgroup_freeze(&s->cg, frozen);
    if (r < 0) {
        snprintf(drv->err, sizeof(drv->err), "cannot %s cgroup %.300s: %s",
                 frozen ? "freeze" : "thaw", s->cg.dir[0], strerror(-r));
        return r;
    }
    set_state(s, to, NULL, NULL);
    return 0;
}

static int l_pause(struct sbx_driver *drv, const char *id)
{
    return freeze_to(drv, id, SBX_RUNNING, SBX_PAUSED, 1);
}

static int l_resume(struct sbx_driver *drv, const char *id)
{
    return freeze_to(drv, id, SBX_PAUSED, SBX_RUNNING, 0);
}

static int l_renew(struct sbx_driver *drv, const char *id, int64_t expires_ms)
{
    struct local *d = L(drv);
    struct lsbx *s = find(d, id);
    if (!s)
        return not_found(d, id);
    if (!s->row.rec.expires_ms) {
        snprintf(drv->err, sizeof(drv->err), "Sandbox %s has no expiration (created without "
                 "a timeout); delete it when done.", id);
        return -EBUSY;
    }
    if (s->removing || s->row.rec.state == SBX_FAILED) {
        snprintf(drv->err, sizeof(drv->err), "Sandbox %s is %s.", id,
                 sbx_state_name(s->row.rec.state));
        return -EBUSY;
    }
    s->row.rec.expires_ms = expires_ms;
    sbx_save(s);
    if (loop_timer_armed(&s->expiry) || s->row.rec.state != SBX_PENDING) {
        int64_t left = expires_ms - timefmt_now_ms();
        if (loop_timer_start(d->loop, &s->expiry, left > 0 ? (uint64_t)left : 0) < 0)
            log_warn("server: sandbox %s: timer heap full; no expiry", id);
    }
    return 0;
}

static int l_set_metadata(struct sbx_driver *drv, const char *id, const json_t *md)
{
    struct lsbx *s = find(L(drv), id);
    if (!s)
        return not_found(L(drv), id);
    json_decref(s->row.rec.metadata);
    s->row.rec.metadata = json_deep_copy(md);
    sbx_save(s);
    return 0;
}

static int l_backend(struct sbx_driver *drv, const char *id, uint16_t port,
                     struct sockaddr_in *out, char *token, size_t cap)
{
    struct lsbx *s = find(L(drv), id);
    if (!s)
        return not_found(L(drv), id);
    if (s->row.rec.state != SBX_RUNNING || !s->have_addr) {
        snprintf(drv->err, sizeof(drv->err), "Sandbox %s is %s, not Running.", id,
                 sbx_state_name(s->row.rec.state));
        return -EBUSY;
    }
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons(port);
    out->sin_addr = s->addr;
    snprintf(token, cap, "%s", port == L(drv)->cfg.execd_port ? s->row.token : "");
    return 0;
}

/* At shutdown: idle pool sandboxes can never start an entrypoint once this
 * process (their start FIFO's writer) is gone, so they go with it: killed,
 * waited for (at most 2 s, then a restart finishes the job), removed. */
static void pool_drain(struct local *d)
{
    int left = 0;
    for (struct lsbx *s = d->list; s; s = s->next)
        if (s->pooled) {
            (void)cgroup_kill(&s->cg);
            left++;
        }
    for (int i = 0; left && i < 200; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        left = 0;
        for (struct lsbx *s = d->list; s; s = s->next) {
            pid_t pids[4];
            if (!s->pooled)
                continue;
            if (s->row.run_pid > 0)
                (void)waitpid(s->row.run_pid, NULL, WNOHANG);
            if (cgroup_members(&s->cg, pids, 4) > 0) {
                (void)cgroup_kill(&s->cg);
                left++;
            }
        }
        if (left)
            nanosleep(&ts, NULL);
    }
    for (struct lsbx *s = d->list; s; s = s->next) {
        pid_t pids[4];
        char dir[600];
        if (!s->pooled || cgroup_members(&s->cg, pids, 4) != 0 || cgroup_remove(&s->cg) < 0)
            continue; /* the row stays: the next start removes it */
        sbx_dir(d, s->row.rec.id, dir, sizeof(dir));
        rm_work(dir);
        char f[700];
        snprintf(f, sizeof(f), "%s/run.log", dir);
        unlink(f);
        snprintf(f, sizeof(f), "%s/audit.log", dir);
        unlink(f);
        rmdir(dir);
        (void)store_delete(d->store, s->row.rec.id);
    }
}

static void l_free(struct sbx_driver *drv)
{
    struct local *d = L(drv);
    loop_timer_stop(d->loop, &d->pool_timer);
    pool_drain(d);
    /* Sandboxes keep running without the server; a restart adopts them. */
    while (d->list) {
        struct lsbx *s = d->list;
        d->list = s->next;
        loop_timer_stop(d->loop, &s->expiry);
        loop_timer_stop(d->loop, &s->poll);
        probe_stop(s);
        if (s->pidfd >= 0) {
            loop_io_del(d->loop, &s->pid_io);
            close(s->pidfd);
        }
        sbx_free(s);
    }
    store_close(d->store);
    free(d);
}

static const struct sbx_driver_ops local_ops = {
    .create = l_create,
    .create_cancel = l_create_cancel,
    .get = l_get,
    .list = l_list,
    .remove = l_remove,
    .remove_cancel = l_remove_cancel,
    .pause = l_pause,
    .resume = l_resume,
    .renew = l_renew,
    .set_metadata = l_set_metadata,
    .backend = l_backend,
    .free = l_free,
};

/* ---- restart: adopt or mark Failed ---- */

static void adopt(void *data, const struct store_row *row)
{
    struct local *d = data;
    struct lsbx *s = sbx_new(d);
    if (!s) {
        log_error("server: out of memory loading sandbox %s", row->rec.id);
        return;
    }
    copy_rec(&s->row.rec, &row->rec);
    s->row.run_pid = row->run_pid;
    s->row.run_start = row->run_start;
    snprintf(s->row.ip, sizeof(s->row.ip), "%s", row->ip);
    snprintf(s->row.token, sizeof(s->row.token), "%s", row->token);
    int have_cg = row->cgroup && cg_from_json(d, row->cgroup, &s->cg) == 0;
    enum sbx_state st = row->rec.state;
    if (json_object_get(row->rec.metadata, POOL_KEY)) {
        /* an idle pool sandbox: its start FIFO's writer (the old server) is
         * gone, so it can never start an entrypoint */
        s->pooled = 1;
        log_info("server: removing idle pool sandbox %s left by the previous server",
                 row->rec.id);
        remove_begin(s, NULL, NULL);
        return;
    }
    if (st == SBX_FAILED || st == SBX_TERMINATED) {
        sbx_save(s);
        return;
    }
    pid_t members[4];
    int alive = row->run_pid > 0 && row->run_start && proc_start(row->run_pid) == row->run_start &&
                have_cg && cgroup_members(&s->cg, members, 4) > 0;
    if (st == SBX_STOPPING) {
        log_info("server: sandbox %s was being deleted; finishing that", row->rec.id);
        remove_begin(s, NULL, NULL);
        return;
    }
    if (!alive || (st != SBX_RUNNING && st != SBX_PAUSED) ||
        inet_pton(AF_INET, row->ip, &s->addr) != 1) {
        char msg[256];
        if (!alive)
            snprintf(msg, sizeof(msg), "the sandbox's processes were gone when the server "
                     "restarted (cordon run pid %d)", (int)row->run_pid);
        else
            snprintf(msg, sizeof(msg), "the server restarted while the sandbox was %s; its "
                     "processes were killed", sbx_state_name(st));
        if (have_cg)
            (void)cgroup_kill(&s->cg);
        set_state(s, SBX_FAILED, alive ? "SERVER_RESTARTED" : "SANDBOX_LOST", msg);
        log_warn("server: sandbox %s: %s", row->rec.id, msg);
        return;
    }
    s->have_addr = 1;
    if (watch_pid(s) < 0)
        log_warn("server: sandbox %s: cannot watch pid %d", row->rec.id, (int)row->run_pid);
    log_info("server: adopted sandbox %s (%s, pid %d, %s)", row->rec.id, sbx_state_name(st),
             (int)row->run_pid, row->ip);
    if (s->row.rec.expires_ms) {
        int64_t left = s->row.rec.expires_ms - timefmt_now_ms();
        if (loop_timer_start(d->loop, &s->expiry, left > 0 ? (uint64_t)left : 0) < 0)
            log_warn("server: sandbox %s: timer heap full; no expiry", row->rec.id);
    }
}

/* One inspection CA for the server's sandboxes, DATA/ca (root, 0700): a
 * fresh key per sandbox would cost most of cordon run's start-up. Only the
 * supervisors (outside the sandboxes) read the key. */
static int ensure_ca(struct local *d, char *err, size_t cap)
{
    struct tls_ca *ca = NULL;
    snprintf(d->ca_dir, sizeof(d->ca_dir), "%s/ca", d->cfg.data_dir);
    int r = tls_ca_load(d->ca_dir, NULL, &ca, err, cap);
    if (r == 0) {
        tls_ca_free(ca);
        return 0;
    }
    if (r != -ENOENT && r != -EKEYEXPIRED)
        return r;
    if ((r = tls_ca_generate(NULL, &ca, err, cap)) < 0)
        return r;
    r = tls_ca_save(ca, d->ca_dir, true, err, cap);
    tls_ca_free(ca);
    if (r == 0)
        log_info("server: new sandbox CA in %s", d->ca_dir);
    return r;
}

int local_driver_new(struct loop *l, const struct local_cfg *cfg, struct sbx_driver **out,
                     char *err, size_t cap)
{
    char p[600];
    int r;
    struct local *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->base.ops = &local_ops;
    d->loop = l;
    d->cfg = *cfg;
    ssize_t nl = readlink("/proc/self/ns/net", d->netns_self, sizeof(d->netns_self) - 1);
    if (nl > 0)
        d->netns_self[nl] = '\0';
    d->cg_v2 = cgroup_detect(d->cg_root, sizeof(d->cg_root)) == 1;
    if (mkdir(cfg->data_dir, 0700) < 0 && errno != EEXIST) {
        r = -errno;
        snprintf(err, cap, "--data %s: cannot create: %s", cfg->data_dir, strerror(-r));
        goto fail;
    }
    snprintf(p, sizeof(p), "%s/sandboxes", cfg->data_dir);
    if (mkdir(p, 0700) < 0 && errno != EEXIST) {
        r = -errno;
        snprintf(err, cap, "--data: cannot create %s: %s", p, strerror(-r));
        goto fail;
    }
    if ((r = ensure_ca(d, err, cap)) < 0)
        goto fail;
    snprintf(p, sizeof(p), "%s/sandboxes.db", cfg->data_dir);
    if ((r = store_open(p, &d->store, err, cap)) < 0)
        goto fail;
    if ((r = store_load(d->store, adopt, d)) < 0) {
        snprintf(err, cap, "%s: cannot read the sandboxes table", p);
        goto fail;
    }
    d->pool_timer.cb = pool_fill;
    d->pool_timer.data = d;
    pool_schedule(d, 0);
    *out = &d->base;
    return 0;
fail:
    l_free(&d->base);
    return r;
}
