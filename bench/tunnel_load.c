/* bench/tunnel_load: new-tunnel load generator for HTTP proxies.
 *
 * N clients, each in a loop for the duration:
 *   connect to the proxy → "CONNECT host:port HTTP/1.1" → wait for a 2xx →
 *   "GET /path HTTP/1.1" (Connection: close) through the tunnel → read the
 *   head and Content-Length bytes of body → wait for the upstream's close
 *   (EOF) → close → start over.
 * --direct ADDR:PORT skips the proxy and the CONNECT (same GET, same close)
 * so the cost of the proxy can be read as a ratio.
 *
 * Waiting for EOF means the upstream closes first, so TIME_WAIT sockets pile
 * up on the upstream side and not on the proxy's (or our) ephemeral ports.
 *
 * One thread, epoll (level-triggered), non-blocking sockets. Latency is one
 * tunnel from connect() to EOF, kept in a log-linear histogram (relative
 * error < 1/64). Prints one line of key=value pairs on stdout.
 *
 * Build: make -C bench. Not part of the cordon library. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TL_MAX_CLIENTS 20000
#define TL_HEAD_MAX 16384            /* response head cap; larger is an error */
#define TL_REQ_MAX 2048
#define TL_ERROR_BACKOFF_US 10000    /* a failed client waits 10 ms before retrying */
#define TL_SCAN_US 20000             /* timeout/restart scan period */
#define TL_HIST_SUB 64
#define TL_HIST_BUCKETS (64 * TL_HIST_SUB + 2 * TL_HIST_SUB)

enum tl_state {
    TL_IDLE,          /* waiting to (re)start */
    TL_CONNECTING,
    TL_SEND_CONNECT,
    TL_READ_CONNECT,  /* proxy's reply to CONNECT */
    TL_SEND_GET,
    TL_READ_HEAD,
    TL_READ_BODY,
    TL_WAIT_EOF,
};

enum tl_err {
    TL_E_CONNECT,     /* connect() to the proxy / upstream failed */
    TL_E_PROXY,       /* CONNECT answered with a non-2xx or garbage */
    TL_E_HTTP,        /* GET answered with a non-200, no Content-Length or garbage */
    TL_E_IO,          /* reset, early EOF, too-long head, extra bytes */
    TL_E_TIMEOUT,
    TL_E_COUNT,
};

static const char *const tl_err_names[TL_E_COUNT] = {
    "err_connect", "err_proxy_status", "err_http", "err_io", "err_timeout",
};

struct tl_client {
    int fd;
    enum tl_state st;
    uint32_t ev;        /* epoll interest currently registered */
    uint64_t t_start;   /* µs, connect() */
    uint64_t deadline;  /* µs */
    uint64_t restart_at;
    size_t woff;
    size_t hlen;
    uint64_t body_left;
    char head[TL_HEAD_MAX];
};

struct tl {
    struct sockaddr_storage dst;  /* proxy, or upstream when direct */
    socklen_t dst_len;
    bool direct;
    const char *target;           /* host:port for CONNECT and Host */
    char req_connect[TL_REQ_MAX];
    size_t req_connect_len;
    char req_get[TL_REQ_MAX];
    size_t req_get_len;
    unsigned nclients;
    double duration_s, warmup_s;
    uint64_t timeout_us;
    int ep;
    struct tl_client *clients;
    uint64_t t_measure, t_end;    /* µs */
    bool measuring;
    uint64_t tunnels, bytes;
    uint64_t errors[TL_E_COUNT];
    uint64_t hist[TL_HIST_BUCKETS];
    uint64_t lat_max;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- latency histogram: values < 128 exact, then 64 steps per power of 2 ---- */

static unsigned hist_bucket(uint64_t v)
{
    if (v < 2 * TL_HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - 6u;
    unsigned b = shift * TL_HIST_SUB + (unsigned)(v >> shift);
    return b < TL_HIST_BUCKETS ? b : TL_HIST_BUCKETS - 1;
}

static uint64_t hist_value(unsigned b)
{
    if (b < 2 * TL_HIST_SUB)
        return b;
    unsigned shift = b / TL_HIST_SUB - 1u;
    uint64_t m = b % TL_HIST_SUB + TL_HIST_SUB;
    /* middle of the bucket */
    return (m << shift) + ((1ull << shift) >> 1);
}

static double hist_quantile(const struct tl *t, double q)
{
    uint64_t total = 0, seen = 0;
    for (unsigned i = 0; i < TL_HIST_BUCKETS; i++)
        total += t->hist[i];
    if (!total)
        return 0;
    uint64_t want = (uint64_t)(q * (double)total);
    if (want >= total)
        want = total - 1;
    for (unsigned i = 0; i < TL_HIST_BUCKETS; i++) {
        seen += t->hist[i];
        if (seen > want)
            return (double)hist_value(i) / 1000.0;
    }
    return (double)t->lat_max / 1000.0;
}

/* ---- clients ---- */

static void tl_watch(struct tl *t, struct tl_client *c, uint32_t ev, bool add)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (!add && c->ev == ev)
        return;
    c->ev = ev;
    if (epoll_ctl(t->ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &e) < 0) {
        perror("tunnel_load: epoll_ctl");
        exit(1);
    }
}

static void tl_close(struct tl *t, struct tl_client *c)
{
    if (c->fd >= 0) {
        epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->st = TL_IDLE;
}

static void tl_fail(struct tl *t, struct tl_client *c, enum tl_err e, uint64_t now)
{
    if (t->measuring)
        t->errors[e]++;
    tl_close(t, c);
    c->restart_at = now + TL_ERROR_BACKOFF_US;
}

static void tl_done(struct tl *t, struct tl_client *c, uint64_t now)
{
    uint64_t lat = now - c->t_start;
    if (t->measuring && c->t_start >= t->t_measure) {
        t->tunnels++;
        t->hist[hist_bucket(lat)]++;
        if (lat > t->lat_max)
            t->lat_max = lat;
    }
    tl_close(t, c);
    c->restart_at = now;
}

static void tl_start(struct tl *t, struct tl_client *c, uint64_t now)
{
    int one = 1;
    c->fd = socket(t->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        tl_fail(t, c, TL_E_CONNECT, now);
        return;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->t_start = now;
    c->deadline = now + t->timeout_us;
    c->woff = 0;
    c->hlen = 0;
    c->body_left = 0;
    if (connect(c->fd, (struct sockaddr *)&t->dst, t->dst_len) < 0 && errno != EINPROGRESS) {
        tl_fail(t, c, TL_E_CONNECT, now);
        return;
    }
    c->st = TL_CONNECTING;
    tl_watch(t, c, EPOLLOUT, true);
}

/* Writes the rest of the current request. Returns 1 done, 0 again later,
 * -1 error. */
static int tl_send(struct tl_client *c, const char *req, size_t len)
{
    while (c->woff < len) {
        ssize_t n = send(c->fd, req + c->woff, len - c->woff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            return -1;
        }
        c->woff += (size_t)n;
    }
    return 1;
}

/* Parses "HTTP/1.x NNN" at the start of head; returns NNN or -1. */
static int tl_status(const char *h, size_t len)
{
    if (len < 12 || memcmp(h, "HTTP/1.", 7) != 0 || h[8] != ' ')
        return -1;
    int s = 0;
    for (int i = 9; i < 12; i++) {
        if (h[i] < '0' || h[i] > '9')
            return -1;
        s = s * 10 + (h[i] - '0');
    }
    return s;
}

/* Finds Content-Length in a head (case-insensitive); returns -1 if absent
 * or malformed. */
static int64_t tl_content_length(const char *h, size_t len)
{
    static const char name[] = "\r\ncontent-length:";
    size_t nl = sizeof(name) - 1;
    for (size_t i = 0; i + nl <= len; i++) {
        if (strncasecmp(h + i, name, nl) != 0)
            continue;
        size_t j = i + nl;
        while (j < len && (h[j] == ' ' || h[j] == '\t'))
            j++;
        int64_t v = 0;
        size_t digits = 0;
        while (j < len && h[j] >= '0' && h[j] <= '9' && digits < 18) {
            v = v * 10 + (h[j] - '0');
            j++;
            digits++;
        }
        return digits ? v : -1;
    }
    return -1;
}

static const char *tl_find_end(const char *h, size_t len)
{
    return memmem(h, len, "\r\n\r\n", 4);
}

static void tl_after_connect_reply(struct tl *t, struct tl_client *c, uint64_t now)
{
    const char *end = tl_find_end(c->head, c->hlen);
    if (!end)
        return;
    size_t used = (size_t)(end + 4 - c->head);
    int s = tl_status(c->head, c->hlen);
    if (s < 200 || s > 299 || used != c->hlen) {
        tl_fail(t, c, TL_E_PROXY, now);
        return;
    }
    c->hlen = 0;
    c->woff = 0;
    c->st = TL_SEND_GET;
    /* usually fits the socket buffer at once: no extra epoll round */
    int r = tl_send(c, t->req_get, t->req_get_len);
    if (r < 0)
        tl_fail(t, c, TL_E_IO, now);
    else if (r == 1)
        c->st = TL_READ_HEAD;
    else
        tl_watch(t, c, EPOLLOUT, false);
}

/* Head complete? Then check it and move to the body (or done). */
static void tl_after_head(struct tl *t, struct tl_client *c, uint64_t now)
{
    const char *end = tl_find_end(c->head, c->hlen);
    if (!end)
        return;
    size_t used = (size_t)(end + 4 - c->head);
    int s = tl_status(c->head, c->hlen);
    int64_t cl = tl_content_length(c->head, used);
    if (s != 200 || cl < 0) {
        tl_fail(t, c, TL_E_HTTP, now);
        return;
    }
    uint64_t have = c->hlen - used;
    if (have > (uint64_t)cl) {
        tl_fail(t, c, TL_E_IO, now);
        return;
    }
    if (t->measuring)
        t->bytes += have;
    c->body_left = (uint64_t)cl - have;
    c->st = c->body_left ? TL_READ_BODY : TL_WAIT_EOF;
}

static void tl_readable(struct tl *t, struct tl_client *c, uint64_t now)
{
    char scratch[65536];
    for (;;) {
        char *dst;
        size_t cap;
        if (c->st == TL_READ_CONNECT || c->st == TL_READ_HEAD) {
            if (c->hlen >= sizeof(c->head)) {
                tl_fail(t, c, TL_E_IO, now);
                return;
            }
            dst = c->head + c->hlen;
            cap = sizeof(c->head) - c->hlen;
        } else {
            dst = scratch;
            cap = sizeof(scratch);
        }
        ssize_t n = recv(c->fd, dst, cap, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            tl_fail(t, c, TL_E_IO, now);
            return;
        }
        if (n == 0) {
            if (c->st == TL_WAIT_EOF)
                tl_done(t, c, now);
            else
                tl_fail(t, c, c->st == TL_READ_CONNECT ? TL_E_PROXY : TL_E_IO, now);
            return;
        }
        switch (c->st) {
        case TL_READ_CONNECT:
            c->hlen += (size_t)n;
            tl_after_connect_reply(t, c, now);
            if (c->st == TL_IDLE || c->st == TL_SEND_GET)
                return;
            break; /* TL_READ_CONNECT (more head) or TL_READ_HEAD (sent) */
        case TL_READ_HEAD:
            c->hlen += (size_t)n;
            tl_after_head(t, c, now);
            if (c->st == TL_IDLE)
                return;
            break;
        case TL_READ_BODY:
            if ((uint64_t)n > c->body_left) {
                tl_fail(t, c, TL_E_IO, now);
                return;
            }
            c->body_left -= (uint64_t)n;
            if (t->measuring)
                t->bytes += (uint64_t)n;
            if (!c->body_left)
                c->st = TL_WAIT_EOF;
            break;
        case TL_WAIT_EOF:
            tl_fail(t, c, TL_E_IO, now); /* bytes after the body */
            return;
        case TL_IDLE:
        case TL_CONNECTING:
        case TL_SEND_CONNECT:
        case TL_SEND_GET:
            return;
        }
    }
}

static void tl_writable(struct tl *t, struct tl_client *c, uint64_t now)
{
    int r;
    if (c->st == TL_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err) {
            tl_fail(t, c, TL_E_CONNECT, now);
            return;
        }
        c->woff = 0;
        c->st = t->direct ? TL_SEND_GET : TL_SEND_CONNECT;
    }
    if (c->st == TL_SEND_CONNECT) {
        r = tl_send(c, t->req_connect, t->req_connect_len);
        if (r < 0)
            tl_fail(t, c, TL_E_IO, now);
        if (r == 1) {
            c->st = TL_READ_CONNECT;
            c->hlen = 0;
            tl_watch(t, c, EPOLLIN, false);
        }
        return;
    }
    if (c->st == TL_SEND_GET) {
        r = tl_send(c, t->req_get, t->req_get_len);
        if (r < 0)
            tl_fail(t, c, TL_E_IO, now);
        if (r == 1) {
            c->st = TL_READ_HEAD;
            c->hlen = 0;
            tl_watch(t, c, EPOLLIN, false);
        }
    }
}

/* ---- setup ---- */

static int tl_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *len)
{
    char host[256];
    const char *port;
    size_t hl;
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (!e || e[1] != ':')
            return -1;
        hl = (size_t)(e - s - 1);
        if (hl >= sizeof(host))
            return -1;
        memcpy(host, s + 1, hl);
        port = e + 2;
    } else {
        const char *e = strrchr(s, ':');
        if (!e)
            return -1;
        hl = (size_t)(e - s);
        if (hl >= sizeof(host))
            return -1;
        memcpy(host, s, hl);
        port = e + 1;
    }
    host[hl] = '\0';
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    memcpy(out, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tunnel_load --proxy ADDR:PORT --target HOST:PORT [options]\n"
            "       tunnel_load --direct ADDR:PORT [--target HOST:PORT] [options]\n"
            "  --proxy ADDR:PORT   proxy to send CONNECT to (IP literal)\n"
            "  --target HOST:PORT  CONNECT authority and Host header (default: --direct)\n"
            "  --direct ADDR:PORT  no proxy: connect straight to the upstream\n"
            "  --path PATH         path to GET through the tunnel (default /)\n"
            "  -c, --clients N     concurrent clients (default 64, max %d)\n"
            "  -d, --duration S    measured seconds (default 10)\n"
            "  -w, --warmup S      unmeasured seconds first (default 1)\n"
            "  --timeout MS        per-tunnel bound (default 10000)\n"
            "  --hold-files N      open N files (/dev/null) first and hold them: a client\n"
            "                      with a large fd table (cordon's identity cost, #8 item 3)\n"
            "Prints: mode= clients= duration_s= tunnels= tunnels_per_s= errors= err_*=\n"
            "        p50_ms= p90_ms= p99_ms= max_ms= body_bytes=\n",
            TL_MAX_CLIENTS);
}

static int tl_parse_num(const char *what, const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "tunnel_load: %s: '%s' is not a number in %g..%g\n", what, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"proxy", required_argument, 0, 'p'},   {"target", required_argument, 0, 'T'},
        {"direct", required_argument, 0, 'D'},  {"path", required_argument, 0, 'P'},
        {"clients", required_argument, 0, 'c'}, {"duration", required_argument, 0, 'd'},
        {"warmup", required_argument, 0, 'w'},  {"timeout", required_argument, 0, 't'},
        {"hold-files", required_argument, 0, 'H'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    static struct tl t;
    const char *proxy = NULL, *direct = NULL, *path = "/";
    double clients = 64, timeout_ms = 10000, hold_files = 0;
    int o;

    t.duration_s = 10;
    t.warmup_s = 1;
    while ((o = getopt_long(argc, argv, "c:d:w:h", opts, NULL)) != -1) {
        switch (o) {
        case 'p': proxy = optarg; break;
        case 'T': t.target = optarg; break;
        case 'D': direct = optarg; break;
        case 'P': path = optarg; break;
        case 'c':
            if (tl_parse_num("--clients", optarg, 1, TL_MAX_CLIENTS, &clients) < 0)
                return 2;
            break;
        case 'd':
            if (tl_parse_num("--duration", optarg, 0.1, 3600, &t.duration_s) < 0)
                return 2;
            break;
        case 'w':
            if (tl_parse_num("--warmup", optarg, 0, 600, &t.warmup_s) < 0)
                return 2;
            break;
        case 't':
            if (tl_parse_num("--timeout", optarg, 1, 600000, &timeout_ms) < 0)
                return 2;
            break;
        case 'H':
            if (tl_parse_num("--hold-files", optarg, 0, 1000000, &hold_files) < 0)
                return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!!proxy == !!direct || (proxy && !t.target) || path[0] != '/') {
        fprintf(stderr, "tunnel_load: give either --proxy with --target, or --direct; "
                        "--path must start with '/'\n");
        usage(stderr);
        return 2;
    }
    t.direct = direct != NULL;
    if (!t.target)
        t.target = direct;
    if (tl_parse_addr(t.direct ? direct : proxy, &t.dst, &t.dst_len) < 0) {
        fprintf(stderr, "tunnel_load: '%s' is not IP:PORT or [IPv6]:PORT\n",
                t.direct ? direct : proxy);
        return 2;
    }
    int n1 = snprintf(t.req_connect, sizeof(t.req_connect),
                      "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", t.target, t.target);
    int n2 = snprintf(t.req_get, sizeof(t.req_get),
                      "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tunnel_load\r\n"
                      "Accept: */*\r\nConnection: close\r\n\r\n",
                      path, t.target);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof(t.req_connect) ||
        (size_t)n2 >= sizeof(t.req_get)) {
        fprintf(stderr, "tunnel_load: --target/--path too long\n");
        return 2;
    }
    t.req_connect_len = (size_t)n1;
    t.req_get_len = (size_t)n2;
    t.nclients = (unsigned)clients;
    t.timeout_us = (uint64_t)(timeout_ms * 1000.0);

    /* room for every client socket and held file plus slack */
    struct rlimit rl;
    rlim_t need = t.nclients + (rlim_t)hold_files + 64u;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (unsigned long i = 0; i < (unsigned long)hold_files; i++) {
        if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0) {
            perror("tunnel_load: --hold-files: open /dev/null");
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    t.ep = epoll_create1(EPOLL_CLOEXEC);
    t.clients = calloc(t.nclients, sizeof(*t.clients));
    if (t.ep < 0 || !t.clients) {
        perror("tunnel_load: setup");
        return 1;
    }
    uint64_t t0 = now_us();
    t.t_measure = t0 + (uint64_t)(t.warmup_s * 1e6);
    t.t_end = t.t_measure + (uint64_t)(t.duration_s * 1e6);
    t.measuring = t.warmup_s <= 0;
    for (unsigned i = 0; i < t.nclients; i++) {
        t.clients[i].fd = -1;
        tl_start(&t, &t.clients[i], t0);
    }

    struct epoll_event evs[512];
    uint64_t last_scan = t0;
    for (;;) {
        int n = epoll_wait(t.ep, evs, 512, TL_SCAN_US / 1000);
        if (n < 0 && errno != EINTR) {
            perror("tunnel_load: epoll_wait");
            return 1;
        }
        uint64_t now = now_us();
        if (!t.measuring && now >= t.t_measure)
            t.measuring = true;
        if (now >= t.t_end)
            break;
        for (int i = 0; i < n; i++) {
            struct tl_client *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (c->st == TL_CONNECTING || c->st == TL_SEND_CONNECT || c->st == TL_SEND_GET)
                    tl_writable(&t, c, now);
                else
                    tl_readable(&t, c, now);
            } else if (evs[i].events & EPOLLOUT) {
                tl_writable(&t, c, now);
            }
            if (c->st == TL_IDLE && c->restart_at <= now)
                tl_start(&t, c, now);
        }
        if (now - last_scan >= TL_SCAN_US) {
            last_scan = now;
            for (unsigned i = 0; i < t.nclients; i++) {
                struct tl_client *c = &t.clients[i];
                if (c->st != TL_IDLE && now >= c->deadline)
                    tl_fail(&t, c, TL_E_TIMEOUT, now);
                if (c->st == TL_IDLE && c->restart_at <= now)
                    tl_start(&t, c, now);
            }
        }
    }
    for (unsigned i = 0; i < t.nclients; i++)
        tl_close(&t, &t.clients[i]);

    uint64_t errs = 0;
    for (int i = 0; i < TL_E_COUNT; i++)
        errs += t.errors[i];
    printf("mode=%s clients=%u duration_s=%.2f tunnels=%llu tunnels_per_s=%.1f errors=%llu",
           t.direct ? "direct" : "connect", t.nclients, t.duration_s,
           (unsigned long long)t.tunnels, (double)t.tunnels / t.duration_s,
           (unsigned long long)errs);
    for (int i = 0; i < TL_E_COUNT; i++)
        printf(" %s=%llu", tl_err_names[i], (unsigned long long)t.errors[i]);
    printf(" p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f body_bytes=%llu\n",
           hist_quantile(&t, 0.50), hist_quantile(&t, 0.90), hist_quantile(&t, 0.99),
           (double)t.lat_max / 1000.0, (unsigned long long)t.bytes);
    free(t.clients);
    close(t.ep);
    return 0;
}
