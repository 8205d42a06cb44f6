/* cli/selftest: before the command starts, prove from inside the sandbox's
 * network namespace that enforcement works.
 *
 * A child process joins the namespace (never the sandbox's PID or mount
 * namespace: it is root and trusted) and tries
 *   1. a direct UDP datagram to RUN_SELFTEST_DIRECT port 9 (TEST-NET-1, never
 *      routed beyond the namespace: the fence refuses it in the kernel with
 *      ICMP port unreachable, or there is no route); the next recv() must
 *      fail with "refused" or "unreachable" at once, never time out and
 *      never see an answer. UDP, because a TCP SYN in monitored mode is
 *      answered by the bypass monitor on the supervisor's loop, which waits
 *      for this test;
 *   2. CONNECT RUN_SELFTEST_HOST:443 through the proxy: it must be answered
 *      403 (no policy allows a .invalid name).
 * The result is a `self_test` audit event {enforcing, direct_dial,
 * proxy_denial}; on failure cordon run refuses to start (exit 125) and
 * says what failed. The probe's own bypass_detect and decision events stay
 * in the log (uid 0, host RUN_SELFTEST_HOST); the terminal and cordon.local
 * leave them out.
 *
 * Test hook: CORDON_SELFTEST_DIRECT=leak sends step 1's datagram to the
 * probe's own socket on the namespace's loopback (which the fence allows),
 * so it is answered and the self-test fails as it would in a sandbox whose
 * fence let direct traffic through. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/run_int.h"
#include "core/audit.h"
#include "core/banned.h"

#define SELFTEST_TIMEOUT_MS 3000

/* Results the child reports in its exit status. */
enum {
    ST_OK = 0,
    ST_SETNS = 10,
    ST_DIRECT_CONNECTED = 11,
    ST_DIRECT_TIMEOUT = 12,
    ST_PROXY_UNREACHABLE = 13,
    ST_PROXY_NOT_403 = 14,
    ST_PROXY_TIMEOUT = 15,
};

/* A datagram to `to`; 0 when something answered (the fence let it out),
 * else -1 with *err = the refusal (or ETIMEDOUT). */
static int datagram(const struct sockaddr_in *to, bool to_self, int *err)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    int rc = -1;
    if (to_self && bind(fd, (const struct sockaddr *)to, sizeof(*to)) < 0) {
        *err = errno;
        goto out;
    }
    if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) < 0 || send(fd, "cordon", 6, 0) < 0) {
        *err = errno;
        goto out;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, SELFTEST_TIMEOUT_MS) <= 0) {
        *err = ETIMEDOUT;
        goto out;
    }
    char b[64];
    if (recv(fd, b, sizeof(b), 0) >= 0) {
        *err = 0;
        rc = 0;
    } else {
        *err = errno;
    }
out:
    close(fd);
    return rc;
}

static int dial(const struct sockaddr_in *to, int *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) == 0) {
        *err = 0;
        return fd;
    }
    if (errno != EINPROGRESS) {
        *err = errno;
        close(fd);
        return -1;
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n = poll(&p, 1, SELFTEST_TIMEOUT_MS);
    if (n <= 0) {
        *err = ETIMEDOUT;
        close(fd);
        return -1;
    }
    socklen_t l = sizeof(*err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &l) < 0 || *err) {
        if (!*err)
            *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

/* In the child: async-signal-safe calls only (the parent has threads). */
static int probe(int netns_fd, const struct sockaddr_in *direct, bool to_self,
                 const struct sockaddr_in *proxy, const char *req, size_t req_len, int *err_out)
{
    if (setns(netns_fd, CLONE_NEWNET) < 0)
        return ST_SETNS;
    int err = 0;
    if (datagram(direct, to_self, &err) == 0)
        return ST_DIRECT_CONNECTED;
    *err_out = err;
    if (err == ETIMEDOUT)
        return ST_DIRECT_TIMEOUT;
    int fd = dial(proxy, &err);
    if (fd < 0)
        return ST_PROXY_UNREACHABLE;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, SELFTEST_TIMEOUT_MS) <= 0 || write(fd, req, req_len) != (ssize_t)req_len)
        return ST_PROXY_TIMEOUT;
    char buf[16];
    size_t got = 0;
    while (got < 12) {
        p.events = POLLIN;
        if (poll(&p, 1, SELFTEST_TIMEOUT_MS) <= 0)
            return ST_PROXY_TIMEOUT;
        ssize_t k = read(fd, buf + got, sizeof(buf) - got);
        if (k <= 0)
            return ST_PROXY_NOT_403;
        got += (size_t)k;
    }
    return memcmp(buf, "HTTP/1.1 403", 12) == 0 ? ST_OK : ST_PROXY_NOT_403;
}

struct probe_args {
    int netns_fd;
    const struct sockaddr_in *direct;
    bool to_self;
    const struct sockaddr_in *proxy;
    const char *req;
    size_t req_len;
    int errfd;
};

/* The probe process (our memory, its own stack; we are suspended). */
static int probe_main(void *arg)
{
    const struct probe_args *a = arg;
    int err = 0;
    int st = probe(a->netns_fd, a->direct, a->to_self, a->proxy, a->req, a->req_len, &err);
    (void)!write(a->errfd, &err, sizeof(err));
    _exit(st);
}

int run_selftest(const struct sandbox_info *info)
{
    struct sockaddr_in direct = {.sin_family = AF_INET, .sin_port = htons(9)};
    struct sockaddr_in proxy = {.sin_family = AF_INET, .sin_port = htons((uint16_t)info->proxy_port)};
    if (info->netns_fd < 0 || inet_pton(AF_INET, info->proxy_addr, &proxy.sin_addr) != 1) {
        fprintf(stderr, "cordon run: self-test: the sandbox has no network yet\n");
        return -EINVAL;
    }
    inet_pton(AF_INET, RUN_SELFTEST_DIRECT, &direct.sin_addr);
    const char *hook = getenv("CORDON_SELFTEST_DIRECT");
    bool hooked = hook && strcmp(hook, "leak") == 0;
    if (hooked) {
        inet_pton(AF_INET, "127.0.0.1", &direct.sin_addr);
        direct.sin_port = htons(9);
    }
    char req[256];
    int rl = snprintf(req, sizeof(req), "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n",
                      RUN_SELFTEST_HOST, RUN_SELFTEST_HOST);
    int errp[2];
    if (pipe2(errp, O_CLOEXEC) < 0)
        return -errno;
    /* The probe shares our memory and we wait until it exits (CLONE_VM |
     * CLONE_VFORK): a fork() of the supervisor, whose proxy threads are
     * running, would write-protect every page it has (a fault and a TLB
     * flush on the next write to each, in every thread). */
    struct probe_args a = {.netns_fd = info->netns_fd, .direct = &direct, .to_self = hooked,
                           .proxy = &proxy, .req = req, .req_len = (size_t)rl,
                           .errfd = errp[1]};
    size_t stack_size = 256 * 1024;
    char *stack = malloc(stack_size);
    if (!stack) {
        close(errp[0]);
        close(errp[1]);
        return -ENOMEM;
    }
    pid_t pid = clone(probe_main, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    int clone_errno = errno;
    free(stack);
    if (pid < 0) {
        close(errp[0]);
        close(errp[1]);
        return -clone_errno;
    }
    close(errp[1]);
    int err = 0, st = 0;
    if (read(errp[0], &err, sizeof(err)) != (ssize_t)sizeof(err))
        err = 0;
    close(errp[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    char direct_txt[128], why[256] = "";
    char daddr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &direct.sin_addr, daddr, sizeof(daddr));
    if (code == ST_DIRECT_CONNECTED)
        snprintf(direct_txt, sizeof(direct_txt), "answered by %s:%u/udp", daddr,
                 (unsigned)ntohs(direct.sin_port));
    else
        snprintf(direct_txt, sizeof(direct_txt), "%s (%s)", err == ETIMEDOUT ? "no answer" : "refused",
                 strerror(err));
    switch (code) {
    case ST_OK: break;
    case ST_SETNS: snprintf(why, sizeof(why), "cannot enter the sandbox's network namespace"); break;
    case ST_DIRECT_CONNECTED:
        snprintf(why, sizeof(why), "a direct datagram from inside the sandbox to %s:%u/udp got "
                 "an answer%s",
                 daddr, (unsigned)ntohs(direct.sin_port),
                 hooked ? " (CORDON_SELFTEST_DIRECT=leak)" : "");
        break;
    case ST_DIRECT_TIMEOUT:
        snprintf(why, sizeof(why), "a direct datagram to %s:%u/udp was neither refused nor "
                 "answered within %d ms", daddr, (unsigned)ntohs(direct.sin_port),
                 SELFTEST_TIMEOUT_MS);
        break;
    case ST_PROXY_UNREACHABLE: snprintf(why, sizeof(why), "the proxy is not reachable from inside"); break;
    case ST_PROXY_NOT_403:
    case ST_PROXY_TIMEOUT:
        snprintf(why, sizeof(why), "CONNECT %s:443 through the proxy did not get its 403",
                 RUN_SELFTEST_HOST);
        break;
    default: snprintf(why, sizeof(why), "the probe process failed (status %d)", st); break;
    }
    json_t *o = json_object();
    json_object_set_new(o, "sandbox", json_string(info->name));
    json_object_set_new(o, "enforcing", json_boolean(code == ST_OK));
    json_object_set_new(o, "direct_dial", json_string(direct_txt));
    json_object_set_new(o, "proxy_denial", json_string(code == ST_OK ? "403" : "missing"));
    if (why[0])
        json_object_set_new(o, "failure", json_string(why));
    audit_emit("self_test", o);
    if (code != ST_OK) {
        fprintf(stderr, "cordon run: enforcement self-test failed: %s; the command was not "
                "started\n", why);
        return -EPERM;
    }
    return 0;
}

bool run_is_selftest(const char *event, json_t *ev)
{
    if (strcmp(event, "bypass_detect") == 0) {
        json_t *uid = json_object_get(ev, "uid");
        return json_is_integer(uid) && json_integer_value(uid) == 0;
    }
    const char *h = json_string_value(json_object_get(ev, "host"));
    return h && strcmp(h, RUN_SELFTEST_HOST) == 0;
}
