/* cli/reload: `cordon run` applies a changed policy without a restart.
 *
 * Triggers: SIGHUP to the supervisor, and `cordon policy reload --sandbox
 * NAME` through the sandbox's control socket RUN_CTL_DIR/NAME.ctl (a unix
 * stream socket, 0600 root, and every peer is checked with SO_PEERCRED to
 * be uid 0). A reload is a transaction: the new file is loaded and compiled
 * completely, then installed with one pointer swap (policy_install); new
 * connections use it at once, live ones keep the policy they started with.
 * A policy that fails to load leaves the old one in force, and the terminal
 * and the control client are told why. Each attempt is a `policy_reload`
 * audit event with the generation now in force (1 = the policy the
 * sandbox started with).
 *
 * Control protocol: the client sends one line "reload\n"; the answer is one
 * or more lines, the last "ok generation N" or "error: ...". */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/inotify.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/reload.h"
#include "core/audit.h"
#include "core/log.h"
#include "policy/policy.h"
#include "proxy/proxy.h"
#include "core/banned.h"

#define RELOAD_REPLY_MAX 8192
#define RUN_CTL_TIMEOUT_S 30 /* longest wait for a control socket's answer */

static int ctl_path(const char *name, char *out, size_t cap)
{
    struct sockaddr_un sun;
    int n = snprintf(out, cap, "%s/%s.ctl", RUN_CTL_DIR, name);
    if (n < 0 || (size_t)n >= cap || (size_t)n >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    return 0;
}

/* Loads and installs; reply gets the diagnostics and the verdict. */
static int do_reload(struct run_reload *r, const char *why, char *reply, size_t cap)
{
    struct policy *p = NULL;
    struct policy_diag d = {0};
    int rc = policy_load_file(r->policy_path, &p, &d);
    size_t n = 0;
    char differ[512] = "";
    reply[0] = '\0';
    for (size_t i = 0; i < d.n && n < cap; i++)
        n += (size_t)snprintf(reply + n, cap - n, "%s\n", d.lines[i]);
    if (rc == 0) { /* the static sections were applied at start: they cannot change */
        struct policy *cur = policy_current();
        if (cur && !policy_static_same(cur, p, differ, sizeof(differ))) {
            policy_unref(p);
            p = NULL;
            rc = -EPERM;
            if (n < cap)
                n += (size_t)snprintf(reply + n, cap - n,
                                      "%s: error: %s: filesystem_policy, landlock, process and "
                                      "limits are applied when the sandbox starts and cannot "
                                      "change on reload (restart the sandbox to change them)\n",
                                      r->policy_path, differ);
        }
        if (cur)
            policy_unref(cur);
    }
    json_t *o = json_object();
    json_object_set_new(o, "sandbox", json_string(r->name));
    json_object_set_new(o, "trigger", json_string(why));
    json_object_set_new(o, "policy_path", json_string(r->policy_path));
    if (rc < 0) {
        if (n < cap)
            n += (size_t)snprintf(reply + n, cap - n,
                                  "error: %s: %s; generation %u stays in force\n",
                                  r->policy_path,
                                  rc == -EINVAL ? "the policy has errors (above)"
                                  : rc == -EPERM ? "its static sections differ (above)"
                                                 : strerror(-rc),
                                  r->generation);
        json_object_set_new(o, "result", json_string("failed"));
        json_object_set_new(o, "errors", json_integer((json_int_t)(d.n_errors + (differ[0] != 0))));
        if (differ[0])
            json_object_set_new(o, "detail", json_string(differ));
    } else {
        r->generation++;
        if (r->proxy)
            proxy_policy_generation(r->proxy, p, r->generation);
        policy_install(p);
        if (n < cap)
            n += (size_t)snprintf(reply + n, cap - n, "ok generation %u\n", r->generation);
        json_object_set_new(o, "result", json_string("installed"));
    }
    json_object_set_new(o, "generation", json_integer(r->generation));
    audit_emit("policy_reload", o);
    if (rc == 0 && r->revoke && r->proxy) { /* open connections asked again, on their workers */
        struct policy *cur = policy_current();
        if (cur) {
            proxy_revoke(r->proxy, cur);
            policy_unref(cur);
        }
    }
    policy_diag_free(&d);
    /* the terminal: one line per diagnostic, then the verdict */
    if (r->term) {
        char *save = NULL;
        char copy[RELOAD_REPLY_MAX];
        snprintf(copy, sizeof(copy), "%s", reply);
        for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
            run_term_say(r->term, "cordon: reload (%s): %s", why, l);
    }
    return rc < 0 ? rc : 0;
}

static void on_client(struct run_reload *r, int c)
{
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    char reply[RELOAD_REPLY_MAX];
    if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != 0) {
        snprintf(reply, sizeof(reply), "error: only root may control a sandbox\n");
        goto answer;
    }
    /* The client is root and local; still, never wait on it for long. */
    struct timeval tv = {.tv_sec = 2};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char cmd[64];
    size_t got = 0;
    while (got < sizeof(cmd) - 1) {
        ssize_t k = read(c, cmd + got, sizeof(cmd) - 1 - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
        if (memchr(cmd, '\n', got))
            break;
    }
    cmd[got] = '\0';
    char *nl = strchr(cmd, '\n');
    if (nl)
        *nl = '\0';
    if (strcmp(cmd, "reload") == 0)
        (void)do_reload(r, "control socket", reply, sizeof(reply));
    else if (strcmp(cmd, "status") == 0)
        run_status_reply(r, reply, sizeof(reply));
    else
        snprintf(reply, sizeof(reply), "error: unknown request '%.40s' (known: reload, "
                 "status)\n", cmd);
answer:;
    size_t len = strlen(reply), off = 0;
    while (off < len) {
        ssize_t w = write(c, reply + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

static void on_accept(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct run_reload *r = io->data;
    for (;;) {
        int c = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            return;
        on_client(r, c);
        close(c);
    }
}

int run_ctl_lock(void)
{
    int fd = open(RUN_CTL_DIR "/.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    while (flock(fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return -e;
        }
    }
    return fd;
}

void run_ctl_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the lock */
}

int run_reload_start(struct run_reload *r, struct loop *l)
{
    r->lfd = -1;
    if (ctl_path(r->name, r->ctl, sizeof(r->ctl)) < 0) {
        log_error("run: the sandbox name %s is too long for a control socket path", r->name);
        return -ENAMETOOLONG;
    }
    if ((mkdir("/run/cordon", 0755) < 0 && errno != EEXIST) ||
        (mkdir(RUN_CTL_DIR, 0700) < 0 && errno != EEXIST)) {
        int e = errno;
        log_error("run: cannot create %s: %s", RUN_CTL_DIR, strerror(e));
        return -e;
    }
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", r->ctl);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Held from the check to listen(): `cordon status` removes sockets
     * nobody listens on under the same lock, so it never takes ours for a
     * dead one between bind() and listen(). */
    int lk = run_ctl_lock();
    /* A socket left by a supervisor that was killed: nobody answers it. */
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
        run_ctl_unlock(lk);
        close(fd);
        log_error("run: a sandbox named %s is already running (%s answers); choose another "
                  "--name", r->name, r->ctl);
        return -EADDRINUSE;
    }
    unlink(r->ctl);
    mode_t old = umask(077);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
    umask(old);
    if (rc == 0 && listen(fd, 8) < 0)
        rc = -errno;
    run_ctl_unlock(lk);
    if (rc < 0) {
        close(fd);
        log_error("run: control socket %s: %s", r->ctl, strerror(-rc));
        return rc;
    }
    r->lfd = fd;
    r->io.cb = on_accept;
    r->io.data = r;
    if ((rc = loop_io_add(l, &r->io, fd, EPOLLIN)) < 0) {
        run_reload_stop(r);
        return rc;
    }
    return 0;
}

static void on_settled(struct loop *l, struct loop_timer *t)
{
    struct run_reload *r = t->data;
    char reply[RELOAD_REPLY_MAX];
    (void)do_reload(r, "file changed", reply, sizeof(reply));
}

static void on_inotify(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct run_reload *r = io->data;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    const char *base = strrchr(r->policy_path, '/');
    base = base ? base + 1 : r->policy_path;
    bool ours = false;
    ssize_t n;
    while ((n = read(r->wfd, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            if (e->len && strcmp(e->name, base) == 0)
                ours = true;
            p += sizeof(*e) + e->len;
        }
    }
    if (ours) {
        loop_timer_stop(l, &r->settle);
        if (loop_timer_start(l, &r->settle, RELOAD_SETTLE_MS) < 0)
            log_warn("run: --watch-policy: cannot arm the reload timer; send SIGHUP");
    }
}

int run_reload_watch(struct run_reload *r, struct loop *l)
{
    char dir[4096];
    const char *slash = strrchr(r->policy_path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == r->policy_path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - r->policy_path), r->policy_path);
    r->wfd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (r->wfd < 0 || inotify_add_watch(r->wfd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
        int e = errno;
        log_error("run: --watch-policy: cannot watch %s: %s", dir, strerror(e));
        if (r->wfd >= 0)
            close(r->wfd);
        r->wfd = -1;
        return -e;
    }
    r->loop = l;
    r->settle.cb = on_settled;
    r->settle.data = r;
    r->wio.cb = on_inotify;
    r->wio.data = r;
    int rc = loop_io_add(l, &r->wio, r->wfd, EPOLLIN);
    if (rc < 0) {
        close(r->wfd);
        r->wfd = -1;
    }
    return rc;
}

void run_reload_signal(struct run_reload *r)
{
    char reply[RELOAD_REPLY_MAX];
    (void)do_reload(r, "SIGHUP", reply, sizeof(reply));
}

void run_reload_stop(struct run_reload *r)
{
    if (r->wfd >= 0)
        close(r->wfd);
    r->wfd = -1;
    if (r->lfd >= 0) {
        close(r->lfd); /* the loop is freed with the sandbox; epoll drops closed fds */
        unlink(r->ctl);
    }
    r->lfd = -1;
}

int run_reload_request(const char *name, char *reply, size_t cap)
{
    return run_ctl_request(name, "reload\n", reply, cap);
}

int run_ctl_request(const char *name, const char *req, char *reply, size_t cap)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    if (ctl_path(name, path, sizeof(path)) < 0)
        return -ENAMETOOLONG;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* A supervisor that accepts but never answers (stopped, wedged) must
     * not hang `cordon status` or a reload request forever. */
    struct timeval tv = {.tv_sec = RUN_CTL_TIMEOUT_S};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int rc = 0;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        rc = -errno;
        goto out;
    }
    /* MSG_NOSIGNAL: a supervisor that dies meanwhile is an error, not SIGPIPE */
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        rc = -errno;
        goto out;
    }
    shutdown(fd, SHUT_WR);
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t k = read(fd, reply + got, cap - 1 - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    reply[got] = '\0';
out:
    close(fd);
    return rc;
}
