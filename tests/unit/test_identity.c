/* Unit tests for identity: real listening sockets and real client
 * connections on loopback, clients in this process, in children (python3,
 * copies of this test binary) and in a child network namespace.
 *
 * This binary doubles as its own helper program (argv[1] starting with
 * "--"), so copies of it can be run, modified and re-run for TOFU tests:
 *   --connect ADDR PORT       connect, write 'k' to stdout, wait to be killed
 *   --connect-exec ADDR PORT  same, then on a byte on stdin exec /usr/bin/sleep
 *                             keeping the socket open
 *   --spawn PATH ARGS...      run PATH ARGS... as a child and wait for it
 *   --many ADDR PORT N        stdin/stdout are one unix socket: write 'r', then
 *                             obey commands: 'c' connect N more sockets and
 *                             write 'k'; 'p' I: send socket I (SCM_RIGHTS)
 *                             with its fd number; 'x' exit */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/sched.h>
#include <time.h>
#include <unistd.h>

#include "identity/identity.h"

static char self_exe[PATH_MAX];

/* ------------------------------------------------------------------ */
/* helper modes                                                         */
/* ------------------------------------------------------------------ */

static int helper_connect(const char *addr, const char *port_s)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int port = (int)strtol(port_s, NULL, 10);
    memset(&ss, 0, sizeof(ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1)
            return -1;
        len = sizeof(*in6);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, addr, &in->sin_addr) != 1)
            return -1;
        len = sizeof(*in);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0); /* no CLOEXEC: survives exec */
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0)
        return -1;
    return fd;
}

#define MANY_MAX 256

/* Sends fd over the unix socket us, with its number as the payload. */
static int send_fd(int us, int fd)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct iovec iov = {.iov_base = &fd, .iov_len = sizeof(fd)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof(u.buf)};
    memset(&u, 0, sizeof(u));
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(us, &m, 0) == (ssize_t)sizeof(fd) ? 0 : -1;
}

static int helper_many(const char *addr, const char *port, int n)
{
    static int socks[MANY_MAX];
    int nsocks = 0;
    unsigned char cmd, idx;
    if (n < 1 || n > MANY_MAX || write(1, "r", 1) != 1)
        return 2;
    while (read(0, &cmd, 1) == 1) {
        if (cmd == 'c') {
            for (int i = 0; i < n && nsocks < MANY_MAX; i++) {
                socks[nsocks] = helper_connect(addr, port);
                if (socks[nsocks++] < 0)
                    return 2;
            }
            if (write(1, "k", 1) != 1)
                return 2;
        } else if (cmd == 'p') {
            if (read(0, &idx, 1) != 1 || idx >= nsocks || send_fd(1, socks[idx]) < 0)
                return 2;
        } else {
            return 0;
        }
    }
    return 0;
}

static int helper_main(int argc, char **argv)
{
    if (strcmp(argv[1], "--many") == 0 && argc == 5)
        return helper_many(argv[2], argv[3], (int)strtol(argv[4], NULL, 10));
    if (strcmp(argv[1], "--connect") == 0 && argc == 4) {
        if (helper_connect(argv[2], argv[3]) < 0)
            return 2;
        if (write(1, "k", 1) != 1)
            return 2;
        for (;;)
            pause();
    }
    if (strcmp(argv[1], "--connect-exec") == 0 && argc == 4) {
        char c;
        if (helper_connect(argv[2], argv[3]) < 0)
            return 2;
        if (write(1, "k", 1) != 1)
            return 2;
        if (read(0, &c, 1) != 1)
            return 2;
        execl("/usr/bin/sleep", "sleep", "60", (char *)NULL);
        return 3;
    }
    if (strcmp(argv[1], "--spawn") == 0 && argc >= 3) {
        pid_t p = fork();
        if (p == 0) {
            execv(argv[2], &argv[2]);
            _exit(127);
        }
        int st;
        waitpid(p, &st, 0);
        return 0;
    }
    return 64;
}

/* ------------------------------------------------------------------ */
/* sockets and processes                                                */
/* ------------------------------------------------------------------ */

struct conn {
    int lfd, cfd, afd;
    struct sockaddr_storage peer, local; /* as the accepting side sees them */
};

static int listen_on(int family, const char *addr, bool v6only)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1, fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        int v = v6only ? 1 : 0;
        assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof(v)), 0);
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
        len = sizeof(*in6);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
        len = sizeof(*in);
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
    assert_int_equal(listen(fd, 128), 0);
    return fd;
}

static int listen_port(int lfd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void accept_conn(struct conn *c)
{
    socklen_t len = sizeof(c->peer);
    c->afd = accept4(c->lfd, (struct sockaddr *)&c->peer, &len, SOCK_CLOEXEC);
    assert_true(c->afd >= 0);
    len = sizeof(c->local);
    assert_int_equal(getsockname(c->afd, (struct sockaddr *)&c->local, &len), 0);
}

/* Listener + client in this process + accepted end. */
static void self_conn(struct conn *c, int lfamily, const char *laddr, bool v6only,
                      int cfamily, const char *caddr)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(c, 0, sizeof(*c));
    c->lfd = listen_on(lfamily, laddr, v6only);
    int port = listen_port(c->lfd);
    memset(&ss, 0, sizeof(ss));
    if (cfamily == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET6, caddr, &in6->sin6_addr), 1);
        len = sizeof(*in6);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET, caddr, &in->sin_addr), 1);
        len = sizeof(*in);
    }
    c->cfd = socket(cfamily, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c->cfd >= 0);
    assert_int_equal(connect(c->cfd, (struct sockaddr *)&ss, len), 0);
    accept_conn(c);
}

static void conn_close(struct conn *c)
{
    if (c->cfd > 0)
        close(c->cfd);
    if (c->afd > 0)
        close(c->afd);
    if (c->lfd > 0)
        close(c->lfd);
}

struct child {
    pid_t pid;
    int out_rd; /* child's stdout */
    int in_wr;  /* child's stdin */
};

/* Runs argv in its own process group; waits for its 'k'. */
static void spawn(struct child *ch, char *const argv[])
{
    int out[2], in[2];
    char k = 0;
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    ch->pid = fork();
    assert_true(ch->pid >= 0);
    if (ch->pid == 0) {
        setpgid(0, 0);
        dup2(out[1], 1);
        dup2(in[0], 0);
        execv(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    close(in[0]);
    ch->out_rd = out[0];
    ch->in_wr = in[1];
    struct pollfd p = {.fd = ch->out_rd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 20000), 1);
    assert_int_equal(read(ch->out_rd, &k, 1), 1);
    assert_int_equal(k, 'k');
}

static void child_kill(struct child *ch)
{
    int st;
    kill(-ch->pid, SIGKILL);
    kill(ch->pid, SIGKILL);
    waitpid(ch->pid, &st, 0);
    close(ch->out_rd);
    close(ch->in_wr);
}

static struct identity_cache *new_cache(void)
{
    struct identity_cache_opts o = {.netns_ino = -1, .netns_fd = -1, .max_binaries = 64};
    struct identity_cache *c = identity_cache_new(&o);
    assert_non_null(c);
    return c;
}

static struct identity *new_ident(void)
{
    struct identity *id = calloc(1, sizeof(*id));
    assert_non_null(id);
    return id;
}

static void real_path(const char *p, char *out)
{
    assert_non_null(realpath(p, out));
}

static void copy_file(const char *src, const char *dst)
{
    char buf[65536];
    ssize_t n;
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    assert_true(in >= 0 && out >= 0);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    close(in);
    assert_int_equal(close(out), 0);
}

static void append_bytes(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "cordon-modified", 15), 15);
    assert_int_equal(close(fd), 0);
}

static void make_tmpdir(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/cordon-identity-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

/* ------------------------------------------------------------------ */
/* tests                                                                */
/* ------------------------------------------------------------------ */

static void check_self(struct identity_cache *c, struct conn *k)
{
    struct identity *id = new_ident();
    int rc = identity_resolve(c, (struct sockaddr *)&k->peer, (struct sockaddr *)&k->local, id);
    if (rc != 0)
        print_error("resolve: %d %s: %s\n", rc, id->reason_code ? id->reason_code : "-",
                    id->detail);
    assert_int_equal(rc, 0);
    assert_null(id->reason_code);
    assert_int_equal(id->pid, getpid());
    assert_string_equal(id->exe, self_exe);
    assert_false(id->exe_deleted);
    assert_int_equal(strlen(id->sha256), 64);
    if (id->n_ancestors > 0)
        assert_int_equal(id->ancestor_pids[0], getppid());
    free(id);
}

static void test_self_ipv4(void **state)
{
    struct identity_cache *c = new_cache();
    struct conn k;
    struct identity_stats st;
    self_conn(&k, AF_INET, "127.0.0.1", false, AF_INET, "127.0.0.1");
    check_self(c, &k);
    check_self(c, &k); /* second time from the process cache */
    identity_cache_stats(c, &st);
    assert_int_equal(st.resolves, 2);
    assert_int_equal(st.cache_hits, 1);
    assert_true(st.hashes >= 1); /* ours and the ancestors' binaries */
    conn_close(&k);
    identity_cache_free(c);
}

static void test_self_ipv6(void **state)
{
    struct identity_cache *c = new_cache();
    struct conn k;
    self_conn(&k, AF_INET6, "::1", true, AF_INET6, "::1");
    check_self(c, &k);
    conn_close(&k);
    identity_cache_free(c);
}

/* Dual-stack listener: the accepted peer is ::ffff:127.0.0.1 while the
 * client's socket is plain AF_INET. */
static void test_v4mapped(void **state)
{
    struct identity_cache *c = new_cache();
    struct conn k;
    self_conn(&k, AF_INET6, "::", false, AF_INET, "127.0.0.1");
    assert_int_equal(k.peer.ss_family, AF_INET6);
    check_self(c, &k);
    conn_close(&k);
    /* and a v6 client socket talking to a v4-mapped address */
    self_conn(&k, AF_INET6, "::", false, AF_INET6, "::ffff:127.0.0.1");
    check_self(c, &k);
    conn_close(&k);
    identity_cache_free(c);
}

static void test_unresolved(void **state)
{
    struct identity_cache *c = new_cache();
    struct identity *id = new_ident();
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1)};
    struct sockaddr_in b = {.sin_family = AF_INET, .sin_port = htons(2)};
    struct conn k;
    int rc;

    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &b.sin_addr);
    rc = identity_resolve(c, (struct sockaddr *)&a, (struct sockaddr *)&b, id);
    assert_int_equal(rc, -ENOENT);
    assert_ptr_equal(id->reason_code, IDENTITY_REASON_UNRESOLVED);
    assert_string_equal(id->reason_code, "identity_unresolved");
    assert_non_null(strstr(id->detail, "127.0.0.1:1"));

    /* Same ports as a live connection, different local address: never a
     * match on ports alone. */
    self_conn(&k, AF_INET, "127.0.0.1", false, AF_INET, "127.0.0.1");
    struct sockaddr_in wrong = *(struct sockaddr_in *)&k.local;
    inet_pton(AF_INET, "127.0.0.2", &wrong.sin_addr);
    rc = identity_resolve(c, (struct sockaddr *)&k.peer, (struct sockaddr *)&wrong, id);
    assert_int_equal(rc, -ENOENT);
    assert_ptr_equal(id->reason_code, IDENTITY_REASON_UNRESOLVED);
    /* swapped ends: that is our accepted socket's tuple, held by us too,
     * but it must be looked up as the client's (peer -> local) only */
    rc = identity_resolve(c, (struct sockaddr *)&k.local, (struct sockaddr *)&k.peer, id);
    assert_int_equal(rc, 0); /* the accepted socket itself is ours: fine */
    assert_int_equal(id->pid, getpid());

    /* client closed and gone before we look: unresolved, no crash */
    close(k.cfd);
    k.cfd = -1;
    close(k.afd);
    k.afd = -1;
    rc = identity_resolve(c, (struct sockaddr *)&k.peer, (struct sockaddr *)&k.local, id);
    assert_true(rc < 0);
    assert_ptr_equal(id->reason_code, IDENTITY_REASON_UNRESOLVED);

    /* bad arguments */
    struct sockaddr un = {.sa_family = AF_UNIX};
    rc = identity_resolve(c, &un, (struct sockaddr *)&b, id);
    assert_int_equal(rc, -EINVAL);
    assert_ptr_equal(id->reason_code, IDENTITY_REASON_UNRESOLVED);
    rc = identity_resolve(NULL, (struct sockaddr *)&a, (struct sockaddr *)&b, id);
    assert_int_equal(rc, -EINVAL);

    conn_close(&k);
    free(id);
    identity_cache_free(c);
}

static void test_child_python(void **state)
{
    struct identity_cache *c = new_cache();
    struct identity *id = new_ident();
    char py[PATH_MAX], code[256], port[16];
    struct child ch;
    struct conn k;
    int rc;

    if (access("/usr/bin/python3", X_OK) != 0)
        skip();
    real_path("/usr/bin/python3", py);
    memset(&k, 0, sizeof(k));
    k.lfd = listen_on(AF_INET, "127.0.0.1", false);
    snprintf(port, sizeof(port), "%d", listen_port(k.lfd));
    snprintf(code, sizeof(code),
             "import socket,sys,time\n"
             "s=socket.create_connection(('127.0.0.1',%s))\n"
             "sys.stdout.write('k');sys.stdout.flush();time.sleep(60)\n",
             port);
    char *argv[] = {"/usr/bin/python3", "-c", code, NULL};
    spawn(&ch, argv);
    accept_conn(&k);
    rc = identity_resolve(c, (struct sockaddr *)&k.peer, (struct sockaddr *)&k.local, id);
    if (rc != 0)
        print_error("resolve: %s\n", id->detail);
    assert_int_equal(rc, 0);
    assert_int_equal(id->pid, ch.pid);
    assert_string_equal(id->exe, py);
    /* Its parent is this process, which holds the cache: a resolver's own
     * chain is never part of a caller's. */
    assert_int_equal(id->n_ancestors, 0);
    child_kill(&ch);
    conn_close(&k);
    free(id);
    identity_cache_free(c);
}

/* Runs PATH --connect 127.0.0.1 PORT (or through a spawning parent),
 * accepts, resolves into id. */
static int run_and_resolve(struct identity_cache *c, int lfd, char *const argv[],
                           struct identity *id, struct child *ch)
{
    struct conn k;
    memset(&k, 0, sizeof(k));
    k.lfd = lfd;
    spawn(ch, argv);
    accept_conn(&k);
    int rc = identity_resolve(c, (struct sockaddr *)&k.peer, (struct sockaddr *)&k.local, id);
    close(k.afd);
    return rc;
}

static void test_tofu_changed(void **state)
{
    struct identity_cache *c = new_cache();
    struct identity *id = new_ident();
    char dir[64], bin[128], port[16], first[65];
    struct child ch;
    int rc, lfd = listen_on(AF_INET, "127.0.0.1", false);

    snprintf(port, sizeof(port), "%d", listen_port(lfd));
    make_tmpdir(dir, sizeof(dir));
    snprintf(bin, sizeof(bin), "%s/helper", dir);
    copy_file(self_exe, bin);
    char *argv[] = {bin, "--connect", "127.0.0.1", port, NULL};

    rc = run_and_resolve(c, lfd, argv, id, &ch);
    if (rc != 0)
        print_error("resolve: %s\n", id->detail);
    assert_int_equal(rc, 0);
    assert_string_equal(id->exe, bin);
    assert_int_equal(id->pid, ch.pid);
    memcpy(first, id->sha256, sizeof(first));
    assert_int_equal(strlen(first), 64);
    child_kill(&ch);

    /* same file again: trusted, no rehash needed */
    rc = run_and_resolve(c, lfd, argv, id, &ch);
    assert_int_equal(rc, 0);
    assert_string_equal(id->sha256, first);
    child_kill(&ch);

    /* different bytes at the same path */
    append_bytes(bin);
    rc = run_and_resolve(c, lfd, argv, id, &ch);
    assert_int_equal(rc, -EPERM);
    assert_ptr_equal(id->reason_code, IDENTITY_REASON_BINARY_CHANGED);
    assert_string_equal(id->reason_code, "binary_changed");
    assert_non_null(strstr(id->detail, bin));
    assert_non_null(strstr(id->detail, first));
    assert_int_equal(id->pid, ch.pid);
    child_kill(&ch);

    /* stays denied, even restored to the original content */
    copy_file(self_exe, bin);
    rc = run_and_resolve(c, lfd, argv, id, &ch);
    assert_int_equal(rc, -EPERM);
    assert_ptr_equal(id->reason_code, IDENTITY_REASON_BINARY_CHANGED);
    child_kill(&ch);

    /* other binaries are unaffected */
    char *argv2[] = {self_exe, "--connect", "127.0.0.1", port, NULL};
    rc = run_and_resolve(c, lfd, argv2, id, &ch);
    assert_int_equal(rc, 0);
    child_kill(&ch);

    unlink(bin);
    rmdir(dir);
    close(lfd);
    free(id);
    identity_cache_free(c);
}

static void test_tofu_ancestor_changed(void **state)
{
    struct identity_cache *c = new_cache();
    struct identity *id = new_ident();
    char dir[64], anc[128], port[16];
    struct child ch;
    int rc, lfd = listen_on(AF_INET, "127.0.0.1", false);

    snprintf(port, sizeof(port), "%d", listen_port(lfd));
    make_tmpdir(dir, sizeof(dir));
    snprintf(anc, sizeof(anc), "%s/launcher", dir);
    copy_file(self_exe, anc);
    char *argv[] = {anc, "--spawn", self_exe, "--connect", "127.0.0.1", port, NULL};

    rc = run_and_resolve(c, lfd, argv, id, &ch);
    if (rc != 0)
        print_error("resolve: %s\n", id->detail);
    assert_int_equal(rc, 0);
    assert_string_equal(id->exe, self_exe);
    assert_int_equal(id->n_ancestors, 1); /* the chain stops below this process */
    assert_string_equal(id->ancestors[0], anc);
    assert_int_equal(id->ancestor_pids[0], ch.pid);
    child_kill(&ch);

    append_bytes(anc);
    rc = run_and_resolve(c, lfd, argv, id, &ch);
    assert_int_equal(rc, -EPERM);
    assert_ptr_equal(id->reason_code, IDENTITY_REASON_BINARY_CHANGED);
    assert_non_null(strstr(id->detail, "ancestor"));
    assert_non_null(strstr(id->detail, anc));
    assert_string_equal(id->exe, self_exe);
    child_kill(&ch);

    unlink(anc);
    rmdir(dir);
    close(lfd);
    free(id);
    identity_cache_free(c);
}

/* One socket, two processes (inherited over fork). */
/* A child of this process running this process's own binary (cordon run's
 * self-test probe is one) is identified without hashing the binary; the
 * same binary one generation further down (a child of another process) is
 * hashed as usual. */
static void test_own_clone_not_hashed(void **state)
{
    struct identity_cache *c = new_cache();
    struct identity *id = new_ident();
    struct identity_stats st;
    char dir[64], anc[128], port[16];
    struct child ch;
    int rc, lfd = listen_on(AF_INET, "127.0.0.1", false);

    snprintf(port, sizeof(port), "%d", listen_port(lfd));
    char *argv[] = {self_exe, "--connect", "127.0.0.1", port, NULL};
    rc = run_and_resolve(c, lfd, argv, id, &ch);
    if (rc != 0)
        print_error("resolve: %s\n", id->detail);
    assert_int_equal(rc, 0);
    assert_null(id->reason_code);
    assert_int_equal(id->pid, ch.pid);
    assert_string_equal(id->exe, self_exe);
    assert_string_equal(id->sha256, "");
    assert_int_equal(id->n_ancestors, 0);
    identity_cache_stats(c, &st);
    assert_int_equal(st.hashes, 0);
    child_kill(&ch);

    make_tmpdir(dir, sizeof(dir));
    snprintf(anc, sizeof(anc), "%s/launcher", dir);
    copy_file(self_exe, anc);
    char *argv2[] = {anc, "--spawn", self_exe, "--connect", "127.0.0.1", port, NULL};
    rc = run_and_resolve(c, lfd, argv2, id, &ch);
    if (rc != 0)
        print_error("resolve: %s\n", id->detail);
    assert_int_equal(rc, 0);
    assert_string_equal(id->exe, self_exe);
    assert_int_equal(strlen(id->sha256), 64);
    assert_int_equal(id->n_ancestors, 1);
    assert_string_equal(id->ancestors[0], anc);
    child_kill(&ch);

    unlink(anc);
    rmdir(dir);
    close(lfd);
    free(id);
    identity_cache_free(c);
}

static void test_ambiguous(void **state)
{
    struct identity_cache *c = new_cache();
    struct identity *id = new_ident();
    struct conn k, warm;
    int rc, st;

    /* warm the cache: we are in the MRU with a fresh snapshot */
    self_conn(&warm, AF_INET, "127.0.0.1", false, AF_INET, "127.0.0.1");
    rc = identity_resolve(c, (struct sockaddr *)&warm.peer, (struct sockaddr *)&warm.local, id);
    assert_int_equal(rc, 0);

    for (int round = 0; round < 2; round++) {
        self_conn(&k, AF_INET, "127.0.0.1", false, AF_INET, "127.0.0.1");
        int sync[2];
        assert_int_equal(pipe2(sync, O_CLOEXEC), 0);
        pid_t p = fork();
        assert_true(p >= 0);
        if (p == 0) {
            /* keeps k.cfd; the socket is fork-inherited */
            char x = 'k';
            if (write(sync[1], &x, 1) != 1)
                _exit(1);
            for (;;)
                pause();
        }
        char x;
        assert_int_equal(read(sync[0], &x, 1), 1);
        if (round == 1) {
            /* let a full scan record both holders first (socket older
             * than the snapshot), then resolve through the fast path */
            struct conn other;
            struct timespec ts = {.tv_sec = 1, .tv_nsec = 100000000};
            nanosleep(&ts, NULL);
            self_conn(&other, AF_INET, "127.0.0.1", false, AF_INET, "127.0.0.1");
            rc = identity_resolve(c, (struct sockaddr *)&other.peer,
                                  (struct sockaddr *)&other.local, id);
            assert_int_equal(rc, 0);
            conn_close(&other);
        }
        rc = identity_resolve(c, (struct sockaddr *)&k.peer, (struct sockaddr *)&k.local, id);
        assert_int_equal(rc, -ENOTUNIQ);
        assert_ptr_equal(id->reason_code, IDENTITY_REASON_AMBIGUOUS);
        assert_string_equal(id->reason_code, "identity_ambiguous");
        char want[32];
        snprintf(want, sizeof(want), "pid %d", (int)p);
        assert_non_null(strstr(id->detail, want));
        snprintf(want, sizeof(want), "pid %d", (int)getpid());
        assert_non_null(strstr(id->detail, want));

        kill(p, SIGKILL);
        waitpid(p, &st, 0);
        close(sync[0]);
        close(sync[1]);
        /* the child is gone: the socket is ours alone again */
        rc = identity_resolve(c, (struct sockaddr *)&k.peer, (struct sockaddr *)&k.local, id);
        assert_int_equal(rc, 0);
        assert_int_equal(id->pid, getpid());
        conn_close(&k);
    }
    conn_close(&warm);
    free(id);
    identity_cache_free(c);
}

/* Also with the strict (always full scan) option. */
static void test_ambiguous_strict(void **state)
{
    struct identity_cache_opts o = {.netns_ino = -1, .netns_fd = -1, .strict_owner_scan = true};
    struct identity_cache *c = identity_cache_new(&o);
    struct identity *id = new_ident();
    struct conn k;
    int st;

    assert_non_null(c);
    self_conn(&k, AF_INET, "127.0.0.1", false, AF_INET, "127.0.0.1");
    check_self(c, &k);
    pid_t p = fork();
    if (p == 0) {
        for (;;)
            pause();
    }
    int rc = identity_resolve(c, (struct sockaddr *)&k.peer, (struct sockaddr *)&k.local, id);
    assert_int_equal(rc, -ENOTUNIQ);
    assert_ptr_equal(id->reason_code, IDENTITY_REASON_AMBIGUOUS);
    kill(p, SIGKILL);
    waitpid(p, &st, 0);
    conn_close(&k);
    free(id);
    identity_cache_free(c);
}

static void test_deleted_exe(void **state)
{
    struct identity_cache *c = new_cache();
    struct identity *id = new_ident();
    char dir[64], bin[128], port[16];
    struct child ch;
    struct conn k;
    int rc;

    memset(&k, 0, sizeof(k));
    k.lfd = listen_on(AF_INET, "127.0.0.1", false);
    snprintf(port, sizeof(port), "%d", listen_port(k.lfd));
    make_tmpdir(dir, sizeof(dir));
    snprintf(bin, sizeof(bin), "%s/gone", dir);
    copy_file(self_exe, bin);
    char *argv[] = {bin, "--connect", "127.0.0.1", port, NULL};
    spawn(&ch, argv);
    accept_conn(&k);
    assert_int_equal(unlink(bin), 0);
    rc = identity_resolve(c, (struct sockaddr *)&k.peer, (struct sockaddr *)&k.local, id);
    if (rc != 0)
        print_error("resolve: %s\n", id->detail);
    assert_int_equal(rc, 0);
    assert_string_equal(id->exe, bin);
    assert_true(id->exe_deleted);
    assert_int_equal(strlen(id->sha256), 64);
    child_kill(&ch);
    rmdir(dir);
    conn_close(&k);
    free(id);
    identity_cache_free(c);
}

/* exec() keeps pid and start time: the cache must notice the new exe. */
static void test_exec_same_pid(void **state)
{
    struct identity_cache *c = new_cache();
    struct identity *id = new_ident();
    char port[16], sleep_path[PATH_MAX], link[PATH_MAX], path[64];
    struct child ch;
    struct conn k;
    int rc;

    real_path("/usr/bin/sleep", sleep_path);
    memset(&k, 0, sizeof(k));
    k.lfd = listen_on(AF_INET, "127.0.0.1", false);
    snprintf(port, sizeof(port), "%d", listen_port(k.lfd));
    char *argv[] = {self_exe, "--connect-exec", "127.0.0.1", port, NULL};
    spawn(&ch, argv);
    accept_conn(&k);
    rc = identity_resolve(c, (struct sockaddr *)&k.peer, (struct sockaddr *)&k.local, id);
    assert_int_equal(rc, 0);
    assert_string_equal(id->exe, self_exe);

    assert_int_equal(write(ch.in_wr, "x", 1), 1);
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)ch.pid);
    for (int i = 0; i < 500; i++) {
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n > 0) {
            link[n] = '\0';
            if (strcmp(link, sleep_path) == 0)
                break;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    rc = identity_resolve(c, (struct sockaddr *)&k.peer, (struct sockaddr *)&k.local, id);
    assert_int_equal(rc, 0);
    assert_int_equal(id->pid, ch.pid);
    assert_string_equal(id->exe, sleep_path);
    child_kill(&ch);
    conn_close(&k);
    free(id);
    identity_cache_free(c);
}

/* A child in its own network namespace, like a sandboxed agent: its
 * sockets are invisible to a sock_diag socket of our namespace. */
struct ns_child {
    pid_t pid;
    struct sockaddr_storage peer, local;
};

static int lo_up(void)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    close(fd);
    return rc;
}

static bool ns_child_start(struct ns_child *nc)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    nc->pid = fork();
    assert_true(nc->pid >= 0);
    if (nc->pid == 0) {
        struct sockaddr_storage ss[2];
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t len = sizeof(a);
        if (unshare(CLONE_NEWNET) < 0 || lo_up() < 0)
            _exit(1);
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        int l = socket(AF_INET, SOCK_STREAM, 0);
        if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4) < 0 ||
            getsockname(l, (struct sockaddr *)&a, &len) < 0)
            _exit(1);
        int cl = socket(AF_INET, SOCK_STREAM, 0);
        if (cl < 0 || connect(cl, (struct sockaddr *)&a, sizeof(a)) < 0)
            _exit(1);
        socklen_t l1 = sizeof(ss[0]), l2 = sizeof(ss[1]);
        int ac = accept(l, (struct sockaddr *)&ss[0], &l1);
        if (ac < 0 || getsockname(ac, (struct sockaddr *)&ss[1], &l2) < 0)
            _exit(1);
        if (write(p[1], ss, sizeof(ss)) != (ssize_t)sizeof(ss))
            _exit(1);
        for (;;)
            pause();
    }
    close(p[1]);
    struct sockaddr_storage ss[2];
    ssize_t n = read(p[0], ss, sizeof(ss));
    close(p[0]);
    if (n != (ssize_t)sizeof(ss)) {
        int st;
        waitpid(nc->pid, &st, 0);
        return false;
    }
    nc->peer = ss[0];
    nc->local = ss[1];
    return true;
}

static void test_netns(void **state)
{
    struct ns_child nc;
    struct identity *id = new_ident();
    char path[64];
    struct stat st;
    int rc, status;

    if (!ns_child_start(&nc)) {
        free(id);
        skip(); /* no CAP_SYS_ADMIN / netns support here */
    }
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)nc.pid);
    int nsfd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(nsfd >= 0);
    assert_int_equal(fstat(nsfd, &st), 0);

    /* our namespace: the tuple does not exist here */
    struct identity_cache *c0 = new_cache();
    rc = identity_resolve(c0, (struct sockaddr *)&nc.peer, (struct sockaddr *)&nc.local, id);
    assert_int_equal(rc, -ENOENT);
    assert_ptr_equal(id->reason_code, IDENTITY_REASON_UNRESOLVED);
    identity_cache_free(c0);

    /* the child's namespace, only its processes */
    struct identity_cache_opts o = {
        .netns_ino = (long)st.st_ino, .netns_fd = nsfd, .max_binaries = 16};
    struct identity_cache *c = identity_cache_new(&o);
    assert_non_null(c);
    rc = identity_resolve(c, (struct sockaddr *)&nc.peer, (struct sockaddr *)&nc.local, id);
    if (rc != 0)
        print_error("resolve: %s\n", id->detail);
    assert_int_equal(rc, 0);
    assert_int_equal(id->pid, nc.pid);
    assert_string_equal(id->exe, self_exe);
    /* the walk stops at the namespace boundary: we (the parent) are outside */
    assert_int_equal(id->n_ancestors, 0);
    rc = identity_resolve(c, (struct sockaddr *)&nc.peer, (struct sockaddr *)&nc.local, id);
    assert_int_equal(rc, 0);
    identity_cache_free(c);

    /* right netns for the lookup, but a filter that excludes the child */
    struct stat self_ns;
    assert_int_equal(stat("/proc/self/ns/net", &self_ns), 0);
    o.netns_ino = (long)self_ns.st_ino;
    c = identity_cache_new(&o);
    assert_non_null(c);
    rc = identity_resolve(c, (struct sockaddr *)&nc.peer, (struct sockaddr *)&nc.local, id);
    assert_int_equal(rc, -ESRCH);
    assert_ptr_equal(id->reason_code, IDENTITY_REASON_UNRESOLVED);
    identity_cache_free(c);

    close(nsfd);
    kill(nc.pid, SIGKILL);
    waitpid(nc.pid, &status, 0);
    free(id);
}

/* Several threads resolving distinct connections through one cache. */
#define CONC_THREADS 4
#define CONC_ROUNDS 150

struct conc_arg {
    struct identity_cache *c;
    int failures;
};

static void *conc_worker(void *p)
{
    struct conc_arg *a = p;
    struct identity *id = calloc(1, sizeof(*id));
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (!id || lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(lfd, 16) < 0 || getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
        a->failures++;
        goto out;
    }
    for (int i = 0; i < CONC_ROUNDS; i++) {
        struct sockaddr_storage peer, local;
        socklen_t pl = sizeof(peer), ll = sizeof(local);
        int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            a->failures++;
            if (cfd >= 0)
                close(cfd);
            continue;
        }
        int afd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
        if (afd < 0 || getsockname(afd, (struct sockaddr *)&local, &ll) < 0 ||
            identity_resolve(a->c, (struct sockaddr *)&peer, (struct sockaddr *)&local, id) != 0 ||
            id->pid != getpid())
            a->failures++;
        if (afd >= 0)
            close(afd);
        close(cfd);
    }
out:
    if (lfd >= 0)
        close(lfd);
    free(id);
    return NULL;
}

static void test_concurrent(void **state)
{
    struct identity_cache_opts o = {.netns_ino = -1, .netns_fd = -1, .max_processes = 2};
    struct identity_cache *c = identity_cache_new(&o);
    pthread_t th[CONC_THREADS];
    struct conc_arg args[CONC_THREADS];
    struct identity_stats st;

    assert_non_null(c);
    for (int i = 0; i < CONC_THREADS; i++) {
        args[i].c = c;
        args[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, conc_worker, &args[i]), 0);
    }
    for (int i = 0; i < CONC_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    identity_cache_stats(c, &st);
    assert_int_equal(st.resolves, CONC_THREADS * CONC_ROUNDS);
    print_message("concurrent: %llu resolves, %llu cache hits, %llu fast owner, %llu full scans\n",
                  st.resolves, st.cache_hits, st.fast_owner, st.full_scans);
    identity_cache_free(c);
}

/* Tiny tables: eviction keeps working with max_processes = 1, and a new
 * executable beyond max_binaries is refused. */
static void test_small_cache(void **state)
{
    struct identity_cache_opts o = {.netns_ino = -1, .netns_fd = -1, .max_processes = 1};
    struct identity_cache *c = identity_cache_new(&o);
    struct identity *id = new_ident();
    struct identity_stats st;
    char port[16];
    struct child ch;
    int rc, lfd = listen_on(AF_INET, "127.0.0.1", false);
    struct conn k;

    /* how many distinct executables does resolving ourselves take? */
    assert_non_null(c);
    self_conn(&k, AF_INET, "127.0.0.1", false, AF_INET, "127.0.0.1");
    check_self(c, &k);
    identity_cache_stats(c, &st);
    identity_cache_free(c);

    o.max_binaries = st.hashes;
    c = identity_cache_new(&o);
    assert_non_null(c);
    check_self(c, &k);
    if (access("/usr/bin/python3", X_OK) == 0) {
        char code[256];
        snprintf(port, sizeof(port), "%d", listen_port(lfd));
        snprintf(code, sizeof(code),
                 "import socket,sys,time\n"
                 "s=socket.create_connection(('127.0.0.1',%s))\n"
                 "sys.stdout.write('k');sys.stdout.flush();time.sleep(60)\n",
                 port);
        char *argv[] = {"/usr/bin/python3", "-c", code, NULL};
        rc = run_and_resolve(c, lfd, argv, id, &ch);
        assert_int_equal(rc, -ENOSPC);
        assert_ptr_equal(id->reason_code, IDENTITY_REASON_UNRESOLVED);
        assert_non_null(strstr(id->detail, "table full"));
        child_kill(&ch);
    }
    check_self(c, &k); /* evicted by the python entry, recomputed */
    conn_close(&k);
    close(lfd);
    free(id);
    identity_cache_free(c);
}

/* ------------------------------------------------------------------ */
/* the socket index (procscan.c step 3)                                 */
/* ------------------------------------------------------------------ */

#define IDX_CONNS 48

/* n connections from this process to lfd, accepted; ks[i].lfd = -1. */
static void own_conns(int lfd, struct conn *ks, int n)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
    for (int i = 0; i < n; i++) {
        memset(&ks[i], 0, sizeof(ks[i]));
        ks[i].lfd = lfd;
        ks[i].cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(ks[i].cfd >= 0);
        assert_int_equal(connect(ks[i].cfd, (struct sockaddr *)&ss, len), 0);
        accept_conn(&ks[i]);
        ks[i].lfd = -1; /* shared: closed by the caller */
    }
}

static void own_conns_close(struct conn *ks, int n)
{
    for (int i = 0; i < n; i++)
        conn_close(&ks[i]);
}

/* A fresh cache whose snapshot is taken now, with us as the recent owner. */
static struct identity_cache *warm_cache(void)
{
    struct identity_cache *c = new_cache();
    struct conn w;
    self_conn(&w, AF_INET, "127.0.0.1", false, AF_INET, "127.0.0.1");
    check_self(c, &w);
    conn_close(&w);
    return c;
}

/* A burst of connections from one process (created after the snapshot, so
 * none is in it) costs one read of its fd table: the first lookup indexes
 * every socket of the table, the others are confirmed with one link each.
 * Processes started elsewhere on the machine meanwhile add reads of their
 * own tables (step 2: counted in fd_tables, not owner_tables), and under
 * heavy churn a rescan (after which the rest are found in the new
 * snapshot instead): an attempt with a rescan is repeated, up to 8. */
static void test_index_one_table_read(void **state)
{
    struct conn *ks = calloc(IDX_CONNS, sizeof(*ks));
    struct identity_stats a, b;
    bool clean = false;

    assert_non_null(ks);
    for (int attempt = 0; attempt < 8 && !clean; attempt++) {
        struct identity_cache *c = warm_cache();
        int lfd = listen_on(AF_INET, "127.0.0.1", false);
        own_conns(lfd, ks, IDX_CONNS);
        identity_cache_stats(c, &a);
        for (int i = 0; i < IDX_CONNS; i++)
            check_self(c, &ks[i]);
        identity_cache_stats(c, &b);
        if (b.fd_tables - a.fd_tables != 1)
            print_message("attempt %d: %llu fd tables (owners' %llu), %llu index hits, %llu full "
                          "scans for %d connections\n",
                          attempt, b.fd_tables - a.fd_tables, b.owner_tables - a.owner_tables,
                          b.index_hits - a.index_hits, b.full_scans - a.full_scans, IDX_CONNS);
        /* never a second read of our table, whatever else happened */
        assert_int_equal(b.owner_tables - a.owner_tables, 1);
        assert_true(b.index_hits > a.index_hits);
        clean = b.full_scans == a.full_scans;
        if (clean)
            assert_int_equal(b.index_hits - a.index_hits, IDX_CONNS - 1);
        own_conns_close(ks, IDX_CONNS);
        close(lfd);
        identity_cache_free(c);
    }
    if (!clean)
        print_message("every attempt saw a rescan (process churn on this machine)\n");
    free(ks);
}

/* Indexed as ours, then inherited by a child: ambiguous, whatever the
 * index says; ours again once the child is gone. */
static void test_index_fork_after_index(void **state)
{
    struct identity_cache *c = warm_cache();
    struct identity *id = new_ident();
    struct conn ks[8];
    struct identity_stats a, b;
    int lfd = listen_on(AF_INET, "127.0.0.1", false), sync[2], st, rc;
    char want[32], x;

    own_conns(lfd, ks, 8);
    check_self(c, &ks[0]); /* reads our table: all 8 indexed */
    identity_cache_stats(c, &a);
    check_self(c, &ks[1]);
    identity_cache_stats(c, &b);
    print_message("index hits for a second socket: %llu\n", b.index_hits - a.index_hits);

    assert_int_equal(pipe2(sync, O_CLOEXEC), 0);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        x = 'k';
        if (write(sync[1], &x, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    assert_int_equal(read(sync[0], &x, 1), 1);
    for (int i = 2; i < 5; i++) {
        rc = identity_resolve(c, (struct sockaddr *)&ks[i].peer, (struct sockaddr *)&ks[i].local,
                              id);
        assert_int_equal(rc, -ENOTUNIQ);
        assert_ptr_equal(id->reason_code, IDENTITY_REASON_AMBIGUOUS);
        snprintf(want, sizeof(want), "pid %d", (int)p);
        assert_non_null(strstr(id->detail, want));
        snprintf(want, sizeof(want), "pid %d", (int)getpid());
        assert_non_null(strstr(id->detail, want));
    }
    kill(p, SIGKILL);
    waitpid(p, &st, 0);
    close(sync[0]);
    close(sync[1]);
    check_self(c, &ks[5]);
    own_conns_close(ks, 8);
    close(lfd);
    free(id);
    identity_cache_free(c);
}

/* A --many helper on a unix socket (stdin and stdout). */
struct many {
    pid_t pid;
    int us;
};

static void many_start(struct many *m, int lfd, int n)
{
    char port[16], count[16], r = 0;
    int sp[2];
    snprintf(port, sizeof(port), "%d", listen_port(lfd));
    snprintf(count, sizeof(count), "%d", n);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    m->pid = fork();
    assert_true(m->pid >= 0);
    if (m->pid == 0) {
        dup2(sp[1], 0);
        dup2(sp[1], 1);
        execl(self_exe, self_exe, "--many", "127.0.0.1", port, count, (char *)NULL);
        _exit(127);
    }
    close(sp[1]);
    m->us = sp[0];
    assert_int_equal(read(m->us, &r, 1), 1);
    assert_int_equal(r, 'r');
}

/* The helper connects n more sockets; we accept them into ks[0..n). */
static void many_connect(struct many *m, int lfd, struct conn *ks, int n)
{
    char k = 0;
    assert_int_equal(write(m->us, "c", 1), 1);
    assert_int_equal(read(m->us, &k, 1), 1);
    assert_int_equal(k, 'k');
    for (int i = 0; i < n; i++) {
        memset(&ks[i], 0, sizeof(ks[i]));
        ks[i].lfd = lfd;
        accept_conn(&ks[i]);
        ks[i].lfd = -1;
        ks[i].cfd = -1;
    }
}

/* The helper's socket number idx, received here (returned, not
 * close-on-exec); *their_fd = its fd number in the helper; *k = the
 * accepted end among ks[0..n). */
static int many_take(struct many *m, unsigned char idx, int *their_fd, struct conn *ks, int n,
                     struct conn **k)
{
    unsigned char cmd[2] = {'p', idx};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct iovec iov = {.iov_base = their_fd, .iov_len = sizeof(*their_fd)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof(u.buf)};
    struct sockaddr_in me;
    socklen_t len = sizeof(me);
    int fd;

    assert_int_equal(write(m->us, cmd, 2), 2);
    assert_int_equal(recvmsg(m->us, &msg, 0), (ssize_t)sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    assert_non_null(c);
    assert_int_equal(c->cmsg_type, SCM_RIGHTS);
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &len), 0);
    *k = NULL;
    for (int i = 0; i < n; i++)
        if (((struct sockaddr_in *)&ks[i].peer)->sin_port == me.sin_port)
            *k = &ks[i];
    assert_non_null(*k);
    return fd;
}

static void many_exit(struct many *m)
{
    int st;
    assert_int_equal(write(m->us, "x", 1), 1);
    waitpid(m->pid, &st, 0);
    close(m->us);
}

/* A helper that existed at the snapshot and owns connections made after
 * it: batch 1 puts it in the recent owners, batch 2 is then indexed by one
 * read of its table. */
static struct identity_cache *many_indexed(struct many *m, int lfd, struct conn *b1,
                                           struct conn *b2, int n)
{
    struct identity *id = new_ident();
    struct identity_stats a, b;
    struct identity_cache *c;
    int rc;

    many_start(m, lfd, n);
    c = warm_cache();
    many_connect(m, lfd, b1, n);
    rc = identity_resolve(c, (struct sockaddr *)&b1[0].peer, (struct sockaddr *)&b1[0].local, id);
    assert_int_equal(rc, 0);
    assert_int_equal(id->pid, m->pid);
    many_connect(m, lfd, b2, n);
    for (int i = 0; i < 2; i++) {
        identity_cache_stats(c, &a);
        rc = identity_resolve(c, (struct sockaddr *)&b2[i].peer, (struct sockaddr *)&b2[i].local,
                              id);
        identity_cache_stats(c, &b);
        assert_int_equal(rc, 0);
        assert_int_equal(id->pid, m->pid);
        if (i == 1)
            print_message("helper's second socket: %llu index hits\n", b.index_hits - a.index_hits);
    }
    free(id);
    return c;
}

/* The indexed owner exits after handing one socket to us: the sighting in
 * the index names a process that is gone, so it is not used; the socket
 * is found as ours. */
static void test_index_owner_exited(void **state)
{
    struct conn b1[4], b2[4], *k;
    struct identity *id = new_ident();
    struct identity_stats a, b;
    struct many m;
    int lfd = listen_on(AF_INET, "127.0.0.1", false), their, mine, rc;

    struct identity_cache *c = many_indexed(&m, lfd, b1, b2, 4);
    mine = many_take(&m, 4 + 3, &their, b2, 4, &k); /* batch 2 */
    pid_t gone = m.pid;
    many_exit(&m);
    identity_cache_stats(c, &a);
    rc = identity_resolve(c, (struct sockaddr *)&k->peer, (struct sockaddr *)&k->local, id);
    identity_cache_stats(c, &b);
    if (rc != 0)
        print_error("resolve: %s\n", id->detail);
    assert_int_equal(rc, 0);
    assert_int_equal(id->pid, getpid());
    assert_true(id->pid != gone);
    assert_int_equal(b.index_hits, a.index_hits);
    close(mine);
    own_conns_close(b1, 4);
    own_conns_close(b2, 4);
    close(lfd);
    free(id);
    identity_cache_free(c);
}

/* ---- probing an owner's table where its last read found sockets or nothing ---- */

#define PROBE_FILES 3000

static int probe_files[PROBE_FILES];

static void probe_files_open(void)
{
    for (int i = 0; i < PROBE_FILES; i++) {
        probe_files[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(probe_files[i] >= 0);
    }
}

static void probe_files_close(void)
{
    for (int i = 0; i < PROBE_FILES; i++)
        if (probe_files[i] >= 0)
            close(probe_files[i]);
}

/* A cache whose recent owner is us and whose last whole read of our table
 * (PROBE_FILES files in it) recorded its layout. */
static struct identity_cache *probe_cache(int lfd)
{
    struct identity_cache *c = warm_cache();
    struct identity_stats a, b;
    struct conn k;
    own_conns(lfd, &k, 1);
    identity_cache_stats(c, &a);
    check_self(c, &k); /* made after the snapshot: read our whole table */
    identity_cache_stats(c, &b);
    print_message("layout read: %llu owner tables, %llu full scans\n",
                  b.owner_tables - a.owner_tables, b.full_scans - a.full_scans);
    own_conns_close(&k, 1);
    return c;
}

/* A process holding thousands of files: once its table layout is known,
 * a connection it makes later is found by probing the fds that held a
 * socket or nothing (one link each), not by reading every file's link:
 * the cost no longer grows with its open files (#8 item 3). Under process
 * churn elsewhere a lookup may rescan instead; such attempts are repeated. */
static void test_probe_many_files(void **state)
{
    struct identity_stats a, b;
    bool clean = false;

    probe_files_open();
    for (int attempt = 0; attempt < 8 && !clean; attempt++) {
        int lfd = listen_on(AF_INET, "127.0.0.1", false);
        struct identity_cache *c = probe_cache(lfd);
        identity_cache_stats(c, &a);
        for (int i = 0; i < 8; i++) {
            struct conn k;
            own_conns(lfd, &k, 1);
            check_self(c, &k);
            own_conns_close(&k, 1);
        }
        identity_cache_stats(c, &b);
        print_message("attempt %d: 8 connections: %llu probes (%llu found, %llu links), %llu "
                      "owner tables, %llu links in all, %llu full scans\n",
                      attempt, b.probe_walks - a.probe_walks, b.probe_hits - a.probe_hits,
                      b.probe_links - a.probe_links, b.owner_tables - a.owner_tables,
                      b.fd_links - a.fd_links, b.full_scans - a.full_scans);
        /* never a whole read of our table; probes read far fewer links than
         * we hold files (other processes' tables, step 2, are not counted) */
        assert_int_equal(b.owner_tables - a.owner_tables, 0);
        assert_true(b.probe_links - a.probe_links < 8 * 64);
        clean = b.full_scans == a.full_scans;
        if (clean)
            assert_int_equal(b.probe_hits - a.probe_hits, 8);
        close(lfd);
        identity_cache_free(c);
    }
    if (!clean)
        print_message("every attempt saw a rescan (process churn on this machine)\n");
    probe_files_close();
}

/* A socket that took the number of a file closed since the layout was
 * recorded is not where a probe looks: the probe misses and a whole read
 * of the table finds it. The answer is the same. */
static void test_probe_file_number_reused(void **state)
{
    struct identity_stats a, b;
    struct conn k;
    int lfd = listen_on(AF_INET, "127.0.0.1", false);

    probe_files_open();
    struct identity_cache *c = probe_cache(lfd);
    own_conns(lfd, &k, 1);
    int slot = probe_files[PROBE_FILES / 2];
    assert_int_equal(dup3(k.cfd, slot, O_CLOEXEC), slot); /* the file at slot is closed */
    probe_files[PROBE_FILES / 2] = -1;
    close(k.cfd);
    k.cfd = slot;
    identity_cache_stats(c, &a);
    check_self(c, &k);
    identity_cache_stats(c, &b);
    print_message("%llu probes (%llu found), %llu owner tables, %llu full scans\n",
                  b.probe_walks - a.probe_walks, b.probe_hits - a.probe_hits,
                  b.owner_tables - a.owner_tables, b.full_scans - a.full_scans);
    assert_int_equal(b.probe_hits, a.probe_hits);
    own_conns_close(&k, 1);
    close(lfd);
    identity_cache_free(c);
    probe_files_close();
}

/* Made after the layout was recorded, then inherited by a child: two
 * holders -> ambiguous, however cheaply the creator could be found. */
static void test_probe_fork_ambiguous(void **state)
{
    struct identity *id = new_ident();
    struct conn k;
    int lfd = listen_on(AF_INET, "127.0.0.1", false), sync[2], st, rc;
    char want[32], x;

    probe_files_open();
    struct identity_cache *c = probe_cache(lfd);
    own_conns(lfd, &k, 1);
    assert_int_equal(pipe2(sync, O_CLOEXEC), 0);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        x = 'k';
        if (write(sync[1], &x, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    assert_int_equal(read(sync[0], &x, 1), 1);
    rc = identity_resolve(c, (struct sockaddr *)&k.peer, (struct sockaddr *)&k.local, id);
    assert_int_equal(rc, -ENOTUNIQ);
    assert_ptr_equal(id->reason_code, IDENTITY_REASON_AMBIGUOUS);
    snprintf(want, sizeof(want), "pid %d", (int)p);
    assert_non_null(strstr(id->detail, want));
    kill(p, SIGKILL);
    waitpid(p, &st, 0);
    close(sync[0]);
    close(sync[1]);
    own_conns_close(&k, 1);
    close(lfd);
    free(id);
    identity_cache_free(c);
    probe_files_close();
}

/* identity_cache_refresh renews the snapshot only once it is past 3/4 of
 * its life (750 ms of 1 s), and never before the first lookup; a lookup
 * after a renewal needs no scan of its own. */
static void test_refresh_ahead(void **state)
{
    struct identity_cache *c = new_cache();
    struct identity_stats a, b;
    struct conn k;
    assert_int_equal(identity_cache_refresh(c), 0); /* no snapshot yet */
    self_conn(&k, AF_INET, "127.0.0.1", false, AF_INET, "127.0.0.1");
    check_self(c, &k);
    assert_int_equal(identity_cache_refresh(c), 0); /* fresh */
    struct timespec ts = {0, 800 * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    assert_int_equal(identity_cache_refresh(c), 1);
    assert_int_equal(identity_cache_refresh(c), 0); /* renewed just now */
    identity_cache_stats(c, &a);
    check_self(c, &k); /* cached, or from the renewed snapshot */
    identity_cache_stats(c, &b);
    assert_int_equal(b.full_scans, a.full_scans);
    conn_close(&k);
    identity_cache_free(c);
}

static pid_t clone3_with_pid(pid_t want)
{
#ifdef SYS_clone3
    pid_t tid[1] = {want};
    struct clone_args ca;
    memset(&ca, 0, sizeof(ca));
    ca.exit_signal = SIGCHLD;
    ca.set_tid = (uint64_t)(uintptr_t)tid;
    ca.set_tid_size = 1;
    return (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
#else
    (void)want;
    errno = ENOSYS;
    return -1;
#endif
}

/* The indexed owner exits and its pid goes to a new process that holds
 * the same socket at the same fd number, shared with us (received after
 * the snapshot). The sighting's link checks out; the start time does not,
 * so the index is not believed and a full scan finds both holders.
 * Needs CAP_SYS_ADMIN (clone3 set_tid picks the pid). */
static void test_index_pid_reuse(void **state)
{
    struct conn b1[4], b2[4], *k;
    struct identity *id = new_ident();
    struct identity_stats a, b;
    struct many m;
    char sleep_path[PATH_MAX], link[PATH_MAX], path[64];
    int lfd = listen_on(AF_INET, "127.0.0.1", false), their, mine, rc, st;

    real_path("/usr/bin/sleep", sleep_path);
    struct identity_cache *c = many_indexed(&m, lfd, b1, b2, 4);
    mine = many_take(&m, 4 + 2, &their, b2, 4, &k); /* batch 2 */
    pid_t x = m.pid;
    many_exit(&m);

    pid_t p = clone3_with_pid(x);
    if (p == 0) {
        if (mine != their && dup2(mine, their) < 0)
            _exit(1);
        execl("/usr/bin/sleep", "sleep", "60", (char *)NULL);
        _exit(127);
    }
    if (p < 0) {
        print_message("clone3 with set_tid: %s; skipping\n", strerror(errno));
        close(mine);
        own_conns_close(b1, 4);
        own_conns_close(b2, 4);
        close(lfd);
        free(id);
        identity_cache_free(c);
        skip();
    }
    assert_int_equal(p, x);
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)p);
    for (int i = 0; i < 500; i++) {
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n > 0) {
            link[n] = '\0';
            if (strcmp(link, sleep_path) == 0)
                break;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }

    identity_cache_stats(c, &a);
    rc = identity_resolve(c, (struct sockaddr *)&k->peer, (struct sockaddr *)&k->local, id);
    identity_cache_stats(c, &b);
    if (rc != -ENOTUNIQ)
        print_error("resolve: %d %s\n", rc, id->detail);
    assert_int_equal(rc, -ENOTUNIQ);
    assert_int_equal(b.index_hits, a.index_hits);
    char want[32];
    snprintf(want, sizeof(want), "pid %d", (int)p);
    assert_non_null(strstr(id->detail, want));
    snprintf(want, sizeof(want), "pid %d", (int)getpid());
    assert_non_null(strstr(id->detail, want));

    /* ours closed: the new process alone, under its own identity */
    close(mine);
    rc = identity_resolve(c, (struct sockaddr *)&k->peer, (struct sockaddr *)&k->local, id);
    if (rc != 0)
        print_error("resolve: %s\n", id->detail);
    assert_int_equal(rc, 0);
    assert_int_equal(id->pid, p);
    assert_string_equal(id->exe, sleep_path);

    kill(p, SIGKILL);
    waitpid(p, &st, 0);
    own_conns_close(b1, 4);
    own_conns_close(b2, 4);
    close(lfd);
    free(id);
    identity_cache_free(c);
}

/* ---- step 2: reads of processes created since the snapshot, kept ---- */

/* A child forked after the snapshot (so a "new" process for step 2) that
 * obeys commands on a unix socket: 'c' connect to the listener and write
 * 'k'; 'f' fork a grandchild that inherits everything and pauses, write
 * its pid; 'x' exit. */
struct late {
    pid_t pid;
    int us;
};

static void late_start(struct late *l, int lfd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int sp[2], keep[64], nkeep = 0;
    char r = 0;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    l->pid = fork();
    assert_true(l->pid >= 0);
    if (l->pid == 0) {
        unsigned char cmd;
        close(sp[0]);
        if (write(sp[1], "r", 1) != 1)
            _exit(1);
        while (read(sp[1], &cmd, 1) == 1) {
            if (cmd == 'c') {
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0 || nkeep == 64)
                    _exit(2);
                keep[nkeep++] = fd;
                if (write(sp[1], "k", 1) != 1)
                    _exit(2);
            } else if (cmd == 'f') {
                pid_t g = fork();
                if (g == 0) {
                    for (;;)
                        pause();
                }
                if (write(sp[1], &g, sizeof(g)) != (ssize_t)sizeof(g))
                    _exit(2);
            } else {
                break;
            }
        }
        for (int i = 0; i < nkeep; i++)
            close(keep[i]);
        _exit(0);
    }
    close(sp[1]);
    l->us = sp[0];
    assert_int_equal(read(l->us, &r, 1), 1);
    assert_int_equal(r, 'r');
}

/* The child connects; we accept: k->peer is the child's socket. */
static void late_connect(struct late *l, int lfd, struct conn *k)
{
    char r = 0;
    memset(k, 0, sizeof(*k));
    k->lfd = lfd;
    assert_int_equal(write(l->us, "c", 1), 1);
    assert_int_equal(read(l->us, &r, 1), 1);
    assert_int_equal(r, 'k');
    accept_conn(k);
    k->lfd = -1;
    k->cfd = -1;
}

static pid_t late_fork(struct late *l)
{
    pid_t g = 0;
    assert_int_equal(write(l->us, "f", 1), 1);
    assert_int_equal(read(l->us, &g, sizeof(g)), (ssize_t)sizeof(g));
    assert_true(g > 0);
    return g;
}

static void late_kill(pid_t p)
{
    int st;
    kill(p, SIGKILL);
    waitpid(p, &st, 0); /* a grandchild is reaped by init: kill is enough */
}

static void late_stop(struct late *l)
{
    late_kill(l->pid);
    close(l->us);
}

static void assert_holders(const struct identity *id, pid_t a, pid_t b)
{
    char want[32];
    snprintf(want, sizeof(want), "pid %d", (int)a);
    assert_non_null(strstr(id->detail, want));
    snprintf(want, sizeof(want), "pid %d", (int)b);
    assert_non_null(strstr(id->detail, want));
}

/* A process started after the snapshot has its table read by the first
 * lookup that meets it, and later lookups use that read instead of
 * reading it again: a socket it did not hold then is not looked for in
 * it. The answers are the same: our sockets are ours, and a socket the
 * child made after its read is found as the child's (by a full scan, as a
 * new process's socket always is). */
static void test_late_kept_read(void **state)
{
    struct identity *id = new_ident();
    struct identity_stats a, b;
    struct conn k[4], kz;
    struct late l;
    bool clean = false;
    int rc;

    for (int attempt = 0; attempt < 8 && !clean; attempt++) {
        struct identity_cache *c = warm_cache();
        int lfd = listen_on(AF_INET, "127.0.0.1", false);
        late_start(&l, lfd);
        own_conns(lfd, &k[0], 1); /* made after the fork: the child does not hold it */
        check_self(c, &k[0]);     /* reads the child's table, keeps it */
        identity_cache_stats(c, &a);
        for (int i = 1; i < 4; i++) {
            own_conns(lfd, &k[i], 1);
            check_self(c, &k[i]);
        }
        identity_cache_stats(c, &b);
        clean = b.full_scans == a.full_scans;
        print_message("attempt %d: %llu kept reads used, %llu full scans, %llu fd tables\n",
                      attempt, b.late_kept - a.late_kept, b.full_scans - a.full_scans,
                      b.fd_tables - a.fd_tables);
        if (clean)
            assert_true(b.late_kept - a.late_kept >= 3); /* the child, once per lookup */

        late_connect(&l, lfd, &kz); /* made after the child's table was read */
        rc = identity_resolve(c, (struct sockaddr *)&kz.peer, (struct sockaddr *)&kz.local, id);
        if (rc != 0)
            print_error("resolve: %d %s\n", rc, id->detail);
        assert_int_equal(rc, 0);
        assert_int_equal(id->pid, l.pid);

        late_stop(&l);
        conn_close(&kz);
        own_conns_close(k, 4);
        close(lfd);
        identity_cache_free(c);
    }
    if (!clean)
        print_message("every attempt saw a rescan (process churn on this machine)\n");
    free(id);
}

/* The child's table was read (and kept) while it held a socket alone;
 * then it forks: the grandchild, new too, is read and holds the same
 * socket -> two holders, ambiguous, although the kept read of the child
 * is used. Once the grandchild is gone the child alone holds it again. */
static void test_late_second_holder(void **state)
{
    struct identity *id = new_ident();
    struct identity_stats a, b;
    struct conn k0, kz;
    struct late l;
    int rc;

    struct identity_cache *c = warm_cache();
    int lfd = listen_on(AF_INET, "127.0.0.1", false);
    late_start(&l, lfd);
    late_connect(&l, lfd, &kz); /* the child's socket, made before its read */
    own_conns(lfd, &k0, 1);
    check_self(c, &k0); /* reads the child's table (kz's peer in it), keeps it */
    pid_t g = late_fork(&l);
    identity_cache_stats(c, &a);
    rc = identity_resolve(c, (struct sockaddr *)&kz.peer, (struct sockaddr *)&kz.local, id);
    identity_cache_stats(c, &b);
    print_message("%llu kept reads used\n", b.late_kept - a.late_kept);
    if (rc != -ENOTUNIQ)
        print_error("resolve: %d %s\n", rc, id->detail);
    assert_int_equal(rc, -ENOTUNIQ);
    assert_ptr_equal(id->reason_code, IDENTITY_REASON_AMBIGUOUS);
    assert_holders(id, l.pid, g);

    /* and again, now that both reads are kept */
    rc = identity_resolve(c, (struct sockaddr *)&kz.peer, (struct sockaddr *)&kz.local, id);
    assert_int_equal(rc, -ENOTUNIQ);
    assert_holders(id, l.pid, g);

    late_kill(g);
    for (int i = 0; i < 500; i++) { /* reaped by init, not by us: wait until gone */
        if (kill(g, 0) < 0 && errno == ESRCH)
            break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    rc = identity_resolve(c, (struct sockaddr *)&kz.peer, (struct sockaddr *)&kz.local, id);
    if (rc != 0)
        print_error("resolve: %d %s\n", rc, id->detail);
    assert_int_equal(rc, 0);
    assert_int_equal(id->pid, l.pid);

    late_stop(&l);
    conn_close(&kz);
    own_conns_close(&k0, 1);
    close(lfd);
    free(id);
    identity_cache_free(c);
}

/* A socket of ours inherited by a child forked after the snapshot: the
 * child's kept read holds it, so every lookup finds both holders, the
 * first (fresh read) and the next (kept read) alike. */
static void test_late_inherited(void **state)
{
    struct identity *id = new_ident();
    struct identity_stats a, b;
    struct conn k;
    struct late l;
    int rc;

    struct identity_cache *c = warm_cache();
    int lfd = listen_on(AF_INET, "127.0.0.1", false);
    own_conns(lfd, &k, 1);
    late_start(&l, lfd); /* inherits k.cfd */
    struct conn k0;
    own_conns(lfd, &k0, 1);
    check_self(c, &k0); /* reads the child's table (k.cfd in it), keeps it */
    for (int i = 0; i < 3; i++) {
        identity_cache_stats(c, &a);
        rc = identity_resolve(c, (struct sockaddr *)&k.peer, (struct sockaddr *)&k.local, id);
        identity_cache_stats(c, &b);
        if (rc != -ENOTUNIQ)
            print_error("resolve %d: %d %s\n", i, rc, id->detail);
        assert_int_equal(rc, -ENOTUNIQ);
        assert_holders(id, l.pid, getpid());
        print_message("lookup %d: %llu kept reads used, %llu full scans\n", i,
                      b.late_kept - a.late_kept, b.full_scans - a.full_scans);
    }
    late_stop(&l);
    check_self(c, &k);
    own_conns_close(&k0, 1);
    own_conns_close(&k, 1);
    close(lfd);
    free(id);
    identity_cache_free(c);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strncmp(argv[1], "--", 2) == 0)
        return helper_main(argc, argv);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n <= 0)
        return 1;
    self_exe[n] = '\0';
    signal(SIGPIPE, SIG_IGN);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_ipv4),
        cmocka_unit_test(test_self_ipv6),
        cmocka_unit_test(test_v4mapped),
        cmocka_unit_test(test_unresolved),
        cmocka_unit_test(test_child_python),
        cmocka_unit_test(test_tofu_changed),
        cmocka_unit_test(test_tofu_ancestor_changed),
        cmocka_unit_test(test_own_clone_not_hashed),
        cmocka_unit_test(test_ambiguous),
        cmocka_unit_test(test_ambiguous_strict),
        cmocka_unit_test(test_deleted_exe),
        cmocka_unit_test(test_exec_same_pid),
        cmocka_unit_test(test_netns),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_small_cache),
        cmocka_unit_test(test_index_one_table_read),
        cmocka_unit_test(test_index_fork_after_index),
        cmocka_unit_test(test_index_owner_exited),
        cmocka_unit_test(test_index_pid_reuse),
        cmocka_unit_test(test_probe_many_files),
        cmocka_unit_test(test_probe_file_number_reused),
        cmocka_unit_test(test_probe_fork_ambiguous),
        cmocka_unit_test(test_refresh_ahead),
        cmocka_unit_test(test_late_kept_read),
        cmocka_unit_test(test_late_second_holder),
        cmocka_unit_test(test_late_inherited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
