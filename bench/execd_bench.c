/* execd_bench: keystroke round trip and bulk output through `cordon execd`,
 * against the same work on a local PTY (the baseline).
 *
 *   execd_bench rtt-local N             forkpty `stty raw -echo; exec cat`,
 *                                       N times: write 1 byte, read its echo
 *   execd_bench rtt-execd PORT N        the same through a PTY session over
 *                                       WebSocket (binary 0x00 stdin frames)
 *   execd_bench bulk-local FILE         forkpty `cat FILE`, read the master
 *                                       until EOF
 *   execd_bench bulk-pipe FILE          `cat FILE` into a pipe, read to EOF
 *   execd_bench bulk-execd PORT FILE M  the same as a session (M = pty|pipe),
 *                                       read frames until the exit frame
 *
 * Output, one line: "rtt median_us p99_us" or "bulk bytes seconds MB/s".
 * Built by bench/execd_bench.sh; talks only to 127.0.0.1. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pty.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "execd_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report_rtt(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    printf("rtt %.1f %.1f\n", v[n / 2] * 1e6, v[(n * 99) / 100] * 1e6);
}

/* ---- local PTY baseline ---- */

static pid_t spawn_pty(const char *cmd, int *master)
{
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    pid_t pid = forkpty(master, NULL, NULL, &ws);
    if (pid < 0)
        die("forkpty");
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Sends probes until the echo comes back through the program (stty done). */
static void warm_local(int m)
{
    char buf[4096];
    for (int i = 0; i < 200; i++) {
        if (write(m, "w", 1) != 1)
            die("write");
        usleep(10000);
        ssize_t n = read(m, buf, sizeof(buf));
        (void)n;
    }
    int fl = fcntl(m, F_GETFL);
    fcntl(m, F_SETFL, fl | O_NONBLOCK);
    while (read(m, buf, sizeof(buf)) > 0) {
    }
    fcntl(m, F_SETFL, fl);
}

static void rtt_local(int n)
{
    int m;
    char c;
    double *v = calloc((size_t)n, sizeof(*v));
    pid_t pid = spawn_pty("stty raw -echo; exec cat", &m);
    usleep(200000);
    warm_local(m);
    for (int i = 0; i < n; i++) {
        double t0 = now_s();
        if (write(m, "x", 1) != 1)
            die("write");
        do {
            if (read(m, &c, 1) != 1)
                die("read");
        } while (c != 'x');
        v[i] = now_s() - t0;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    report_rtt(v, n);
    free(v);
}

static void bulk_local(const char *file)
{
    int m;
    char cmd[1024];
    static char buf[1 << 16];
    uint64_t total = 0;
    snprintf(cmd, sizeof(cmd), "exec cat '%s'", file);
    double t0 = now_s();
    pid_t pid = spawn_pty(cmd, &m);
    for (;;) {
        ssize_t n = read(m, buf, sizeof(buf));
        if (n <= 0)
            break; /* EIO once cat is gone and the buffer is drained */
        total += (uint64_t)n;
    }
    waitpid(pid, NULL, 0);
    double dt = now_s() - t0;
    printf("bulk %llu %.3f %.1f\n", (unsigned long long)total, dt, (double)total / dt / 1e6);
}

static void bulk_pipe(const char *file)
{
    int p[2];
    static char buf[1 << 16];
    uint64_t total = 0;
    double t0 = now_s();
    if (pipe(p) < 0)
        die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        execl("/bin/cat", "cat", file, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        ssize_t n = read(p[0], buf, sizeof(buf));
        if (n <= 0)
            break;
        total += (uint64_t)n;
    }
    waitpid(pid, NULL, 0);
    double dt = now_s() - t0;
    printf("bulk %llu %.3f %.1f\n", (unsigned long long)total, dt, (double)total / dt / 1e6);
}

/* ---- a minimal WebSocket client (RFC 6455) ---- */

struct wsc {
    int fd;
    uint8_t *buf;
    size_t len, cap;
};

static int tcp_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w <= 0)
            die("write");
        c += w;
        n -= (size_t)w;
    }
}

/* POST /sessions with body; returns the session id in id[37]. */
static void new_session(int port, const char *body, char *id)
{
    char req[2048], resp[4096];
    size_t got = 0;
    int fd = tcp_connect(port);
    int n = snprintf(req, sizeof(req),
                     "POST /sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     strlen(body), body);
    write_all(fd, req, (size_t)n);
    for (;;) {
        ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    resp[got] = '\0';
    close(fd);
    const char *p = strstr(resp, "\"session_id\":\"");
    if (!p) {
        fprintf(stderr, "execd_bench: POST /sessions: %s\n", resp);
        exit(1);
    }
    memcpy(id, p + 14, 36);
    id[36] = '\0';
}

static void ws_fill(struct wsc *w, size_t need)
{
    while (w->len < need) {
        if (w->cap - w->len < 65536) {
            w->cap = w->cap ? w->cap * 2 : 1 << 20;
            w->buf = realloc(w->buf, w->cap);
        }
        ssize_t n = read(w->fd, w->buf + w->len, w->cap - w->len);
        if (n <= 0)
            die("read (server closed)");
        w->len += (size_t)n;
    }
}

static void ws_open(struct wsc *w, int port, const char *path)
{
    char req[1024];
    memset(w, 0, sizeof(*w));
    w->fd = tcp_connect(port);
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path);
    write_all(w->fd, req, (size_t)n);
    for (;;) {
        ws_fill(w, w->len + 1);
        uint8_t *e = memmem(w->buf, w->len, "\r\n\r\n", 4);
        if (!e)
            continue;
        if (memcmp(w->buf, "HTTP/1.1 101", 12) != 0) {
            fprintf(stderr, "execd_bench: upgrade refused: %.*s\n", (int)w->len, w->buf);
            exit(1);
        }
        size_t head = (size_t)(e + 4 - w->buf);
        memmove(w->buf, w->buf + head, w->len - head);
        w->len -= head;
        return;
    }
}

/* Reads one frame; *payload points into w->buf until the next call. */
static int ws_frame(struct wsc *w, const uint8_t **payload, size_t *plen, size_t *consumed)
{
    ws_fill(w, 2);
    size_t h = 2;
    uint64_t len = w->buf[1] & 0x7f;
    if (len == 126) {
        ws_fill(w, 4);
        len = ((uint64_t)w->buf[2] << 8) | w->buf[3];
        h = 4;
    } else if (len == 127) {
        ws_fill(w, 10);
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | w->buf[2 + i];
        h = 10;
    }
    ws_fill(w, h + (size_t)len);
    *payload = w->buf + h;
    *plen = (size_t)len;
    *consumed = h + (size_t)len;
    return w->buf[0] & 0x0f;
}

static void ws_consume(struct wsc *w, size_t n)
{
    memmove(w->buf, w->buf + n, w->len - n);
    w->len -= n;
}

static void ws_send_stdin(struct wsc *w, const void *data, size_t n)
{
    uint8_t f[14 + 256];
    const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    size_t plen = n + 1;
    f[0] = 0x82;
    f[1] = (uint8_t)(0x80 | plen); /* n < 125 here */
    memcpy(f + 2, mask, 4);
    f[6] = 0x00 ^ mask[0];
    for (size_t i = 0; i < n; i++)
        f[7 + i] = ((const uint8_t *)data)[i] ^ mask[(i + 1) % 4];
    write_all(w->fd, f, 6 + plen);
}

static void rtt_execd(int port, int n)
{
    char id[40], path[128];
    struct wsc w;
    double *v = calloc((size_t)n, sizeof(*v));
    new_session(port, "{\"command\":\"stty raw -echo; exec cat\"}", id);
    snprintf(path, sizeof(path), "/pty/%s/ws?since=tail", id);
    ws_open(&w, port, path);
    /* warm up: until bytes come back through cat (stty has run), then drain */
    double until = now_s() + 2.0;
    while (now_s() < until) {
        ws_send_stdin(&w, "w", 1);
        usleep(10000);
        int fl = fcntl(w.fd, F_GETFL);
        fcntl(w.fd, F_SETFL, fl | O_NONBLOCK);
        uint8_t tmp[65536];
        while (read(w.fd, tmp, sizeof(tmp)) > 0) {
        }
        fcntl(w.fd, F_SETFL, fl);
    }
    w.len = 0;
    for (int i = 0; i < n; i++) {
        double t0 = now_s();
        int seen = 0;
        ws_send_stdin(&w, "x", 1);
        while (!seen) {
            const uint8_t *p;
            size_t len, used;
            int op = ws_frame(&w, &p, &len, &used);
            if (op == 2 && len > 1 && p[0] == 1 && memchr(p + 1, 'x', len - 1))
                seen = 1;
            ws_consume(&w, used);
        }
        v[i] = now_s() - t0;
    }
    close(w.fd);
    report_rtt(v, n);
    free(v);
}

static void bulk_execd(int port, const char *file, const char *mode)
{
    char id[40], path[160], body[1200];
    struct wsc w;
    uint64_t total = 0;
    snprintf(body, sizeof(body), "{\"command\":\"exec cat '%s'\"}", file);
    new_session(port, body, id);
    snprintf(path, sizeof(path), "/pty/%s/ws?pty=%d&since=0", id, strcmp(mode, "pty") == 0);
    double t0 = now_s();
    ws_open(&w, port, path);
    for (;;) {
        const uint8_t *p;
        size_t len, used;
        int op = ws_frame(&w, &p, &len, &used);
        if (op == 2 && len > 0 && p[0] != 3)
            total += len - 1;
        else if (op == 2 && len >= 9)
            total += len - 9;
        int done = op == 8 || (op == 1 && memmem(p, len, "\"exit\"", 6));
        ws_consume(&w, used);
        if (done)
            break;
    }
    double dt = now_s() - t0;
    close(w.fd);
    printf("bulk %llu %.3f %.1f\n", (unsigned long long)total, dt, (double)total / dt / 1e6);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "rtt-local") == 0)
        rtt_local(atoi(argv[2]));
    else if (argc == 4 && strcmp(argv[1], "rtt-execd") == 0)
        rtt_execd(atoi(argv[2]), atoi(argv[3]));
    else if (argc == 3 && strcmp(argv[1], "bulk-local") == 0)
        bulk_local(argv[2]);
    else if (argc == 3 && strcmp(argv[1], "bulk-pipe") == 0)
        bulk_pipe(argv[2]);
    else if (argc == 5 && strcmp(argv[1], "bulk-execd") == 0)
        bulk_execd(atoi(argv[2]), argv[3], argv[4]);
    else {
        fprintf(stderr, "usage: see the comment at the top of bench/execd_bench.c\n");
        return 2;
    }
    return 0;
}
