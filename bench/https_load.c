/* bench/https_load: HTTPS keep-alive load generator, through a CONNECT proxy
 * or straight to the server.
 *
 * N clients. Each opens ONE connection and keeps it for the whole run:
 *   connect (to the proxy, or --direct to the server) → with a proxy:
 *   "CONNECT host:port", wait for a 2xx → TLS handshake (SNI = host, the
 *   certificate verified against --cafile and the host name) → then, one
 *   after the other until the time is up: "GET /path HTTP/1.1" (keep-alive),
 *   read the head and Content-Length bytes of body.
 * A connection that fails (or that the server closes) is counted as an error
 * and replaced after a short pause.
 *
 * Latency is one request: from the first SSL_write of the request to the
 * last byte of its body. Requests are counted when they started after the
 * warm-up and ended before the end of the run; the warm-up also hides the
 * TLS handshakes. One thread, epoll (level-triggered), non-blocking sockets
 * and OpenSSL. Prints one line of key=value pairs on stdout.
 *
 * Build: make -C bench (links -lssl -lcrypto). Not part of the cordon
 * library. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
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
#include <unistd.h>

#include "benchutil.h"

#define HL_MAX_CLIENTS 10000
#define HL_HEAD_MAX 16384
#define HL_REQ_MAX 2048
#define HL_RETRY_US 20000      /* a failed client waits 20 ms before reconnecting */
#define HL_SCAN_US 20000       /* timeout / reconnect scan period */

enum hl_state {
    HL_IDLE,           /* waiting to reconnect */
    HL_CONNECTING,
    HL_SEND_CONNECT,
    HL_READ_CONNECT,
    HL_HANDSHAKE,
    HL_SEND_REQ,
    HL_READ_HEAD,
    HL_READ_BODY,
};

enum hl_err {
    HL_E_CONNECT,      /* TCP connect failed */
    HL_E_PROXY,        /* CONNECT refused or garbled */
    HL_E_TLS,          /* handshake or verification failed */
    HL_E_HTTP,         /* not a 200 with Content-Length */
    HL_E_IO,           /* reset, truncated response, bytes after the body, head too long */
    HL_E_CLOSED,       /* server closed the connection between requests */
    HL_E_TIMEOUT,
    HL_E_COUNT,
};

static const char *const hl_err_names[HL_E_COUNT] = {
    "err_connect", "err_proxy_status", "err_tls", "err_http", "err_io", "err_closed", "err_timeout",
};

struct hl_client {
    int fd;
    SSL *ssl;
    enum hl_state st;
    uint32_t ev;            /* registered epoll interest */
    uint64_t t_req;         /* µs: request (or connection) start */
    uint64_t deadline;
    uint64_t retry_at;
    size_t off;             /* bytes of the CONNECT sent */
    size_t hlen;
    uint64_t body_left;
    char head[HL_HEAD_MAX];
};

struct hl {
    struct sockaddr_storage dst;
    socklen_t dst_len;
    bool direct;
    char host[256];         /* SNI, certificate name */
    bool host_is_ip;
    SSL_CTX *ctx;
    char req_connect[HL_REQ_MAX];
    size_t req_connect_len;
    char req[HL_REQ_MAX];
    size_t req_len;
    unsigned nclients;
    uint64_t timeout_us;
    int ep;
    struct hl_client *clients;
    uint64_t t_measure, t_end;
    uint64_t requests, bytes, connections, handshakes;
    uint64_t errors[HL_E_COUNT];
    struct bu_hist hist;
    bool tls_error_shown;
    char tls_version[32], cipher[64];
};

static void hl_watch(struct hl *t, struct hl_client *c, uint32_t ev)
{
    if (c->ev == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    int op = c->ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(t->ep, op, c->fd, &e) < 0) {
        perror("https_load: epoll_ctl");
        exit(1);
    }
    c->ev = ev;
}

static void hl_close(struct hl *t, struct hl_client *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->ev = 0;
    c->st = HL_IDLE;
}

static bool hl_measuring(const struct hl *t, uint64_t now)
{
    return now >= t->t_measure && now < t->t_end;
}

static void hl_fail(struct hl *t, struct hl_client *c, enum hl_err e)
{
    uint64_t now = bu_now_us();
    if (hl_measuring(t, now))
        t->errors[e]++;
    if (e == HL_E_TLS && !t->tls_error_shown) {
        unsigned long code = ERR_peek_last_error();
        char buf[256] = "";
        if (code)
            ERR_error_string_n(code, buf, sizeof(buf));
        long vr = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
        fprintf(stderr, "https_load: TLS failed: %s%s%s\n", buf[0] ? buf : "connection closed",
                vr != X509_V_OK ? "; verify: " : "",
                vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
        t->tls_error_shown = true;
    }
    ERR_clear_error();
    hl_close(t, c);
    c->retry_at = now + HL_RETRY_US;
}

static void hl_start(struct hl *t, struct hl_client *c)
{
    int one = 1;
    uint64_t now = bu_now_us();
    c->fd = socket(t->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        hl_fail(t, c, HL_E_CONNECT);
        return;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->t_req = now;
    c->deadline = now + t->timeout_us;
    c->off = c->hlen = 0;
    c->body_left = 0;
    if (connect(c->fd, (struct sockaddr *)&t->dst, t->dst_len) < 0 && errno != EINPROGRESS) {
        hl_fail(t, c, HL_E_CONNECT);
        return;
    }
    if (hl_measuring(t, now))
        t->connections++;
    c->st = HL_CONNECTING;
    hl_watch(t, c, EPOLLOUT);
}

/* "HTTP/1.x NNN" → NNN, or -1. */
static int hl_status(const char *h, size_t len)
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

static int64_t hl_content_length(const char *h, size_t len)
{
    static const char name[] = "\r\ncontent-length:";
    const size_t nl = sizeof(name) - 1;
    for (size_t i = 0; i + nl <= len; i++) {
        if (strncasecmp(h + i, name, nl) != 0)
            continue;
        size_t j = i + nl;
        while (j < len && (h[j] == ' ' || h[j] == '\t'))
            j++;
        int64_t v = 0;
        unsigned digits = 0;
        while (j < len && h[j] >= '0' && h[j] <= '9' && digits < 18) {
            v = v * 10 + (h[j++] - '0');
            digits++;
        }
        return digits ? v : -1;
    }
    return -1;
}

static int hl_tls_begin(struct hl *t, struct hl_client *c)
{
    c->ssl = SSL_new(t->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
        return -1;
    if (!t->host_is_ip && SSL_set_tlsext_host_name(c->ssl, t->host) != 1)
        return -1;
    if (t->host_is_ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), t->host) != 1)
            return -1;
    } else if (SSL_set1_host(c->ssl, t->host) != 1) {
        return -1;
    }
    SSL_set_connect_state(c->ssl);
    c->st = HL_HANDSHAKE;
    return 0;
}

/* Maps an OpenSSL result to: 1 wait (interest set), -1 EOF, -2 error. */
static int hl_ssl_wait(struct hl *t, struct hl_client *c, int r)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        hl_watch(t, c, EPOLLIN);
        return 1;
    case SSL_ERROR_WANT_WRITE:
        hl_watch(t, c, EPOLLOUT);
        return 1;
    case SSL_ERROR_ZERO_RETURN:
        return -1;
    case SSL_ERROR_SYSCALL:
        /* r == 0 with an empty error queue: EOF without close_notify */
        return ERR_peek_error() == 0 && (r == 0 || errno == 0 || errno == ECONNRESET) ? -1 : -2;
    default:
        return -2;
    }
}

static void hl_request_done(struct hl *t, struct hl_client *c)
{
    uint64_t now = bu_now_us();
    if (c->t_req >= t->t_measure && now < t->t_end) {
        t->requests++;
        bu_hist_add(&t->hist, now - c->t_req);
    }
    c->st = HL_SEND_REQ;
}

/* Checks a complete head; moves to the body, or finishes the request. */
static void hl_after_head(struct hl *t, struct hl_client *c, size_t used)
{
    int s = hl_status(c->head, used);
    int64_t cl = hl_content_length(c->head, used);
    if (s != 200 || cl < 0) {
        hl_fail(t, c, HL_E_HTTP);
        return;
    }
    uint64_t have = c->hlen - used;
    if (have > (uint64_t)cl) {
        hl_fail(t, c, HL_E_IO);
        return;
    }
    if (c->t_req >= t->t_measure)
        t->bytes += have;
    c->body_left = (uint64_t)cl - have;
    if (c->body_left)
        c->st = HL_READ_BODY;
    else
        hl_request_done(t, c);
}

/* Advances one client as far as it can go without blocking. */
static void hl_drive(struct hl *t, struct hl_client *c)
{
    char scratch[16384];
    for (;;) {
        ssize_t n;
        int r;
        switch (c->st) {
        case HL_IDLE:
            return;
        case HL_CONNECTING: {
            int err = 0;
            socklen_t l = sizeof(err);
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err) {
                hl_fail(t, c, HL_E_CONNECT);
                return;
            }
            if (t->direct) {
                if (hl_tls_begin(t, c) < 0) {
                    hl_fail(t, c, HL_E_TLS);
                    return;
                }
            } else {
                c->st = HL_SEND_CONNECT;
            }
            break;
        }
        case HL_SEND_CONNECT:
            n = send(c->fd, t->req_connect + c->off, t->req_connect_len - c->off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    hl_watch(t, c, EPOLLOUT);
                    return;
                }
                hl_fail(t, c, HL_E_IO);
                return;
            }
            c->off += (size_t)n;
            if (c->off == t->req_connect_len) {
                c->st = HL_READ_CONNECT;
                c->hlen = 0;
            }
            break;
        case HL_READ_CONNECT: {
            if (c->hlen >= sizeof(c->head)) {
                hl_fail(t, c, HL_E_PROXY);
                return;
            }
            n = recv(c->fd, c->head + c->hlen, sizeof(c->head) - c->hlen, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                hl_watch(t, c, EPOLLIN);
                return;
            }
            if (n <= 0) {
                hl_fail(t, c, n == 0 ? HL_E_PROXY : HL_E_IO);
                return;
            }
            c->hlen += (size_t)n;
            const char *end = memmem(c->head, c->hlen, "\r\n\r\n", 4);
            if (!end)
                break;
            int s = hl_status(c->head, c->hlen);
            /* the server speaks only after our ClientHello: nothing may follow */
            if (s < 200 || s > 299 || (size_t)(end + 4 - c->head) != c->hlen) {
                if (!t->tls_error_shown) {
                    fprintf(stderr, "https_load: CONNECT answered: %.*s\n",
                            (int)(strchr(c->head, '\r') ? strchr(c->head, '\r') - c->head : 40),
                            c->head);
                    t->tls_error_shown = true;
                }
                hl_fail(t, c, HL_E_PROXY);
                return;
            }
            if (hl_tls_begin(t, c) < 0) {
                hl_fail(t, c, HL_E_TLS);
                return;
            }
            break;
        }
        case HL_HANDSHAKE:
            r = SSL_do_handshake(c->ssl);
            if (r != 1) {
                if (hl_ssl_wait(t, c, r) == 1)
                    return;
                hl_fail(t, c, HL_E_TLS);
                return;
            }
            if (!t->tls_version[0]) {
                snprintf(t->tls_version, sizeof(t->tls_version), "%s", SSL_get_version(c->ssl));
                snprintf(t->cipher, sizeof(t->cipher), "%s", SSL_get_cipher_name(c->ssl));
            }
            t->handshakes++;
            c->st = HL_SEND_REQ;
            c->off = 0;
            break;
        case HL_SEND_REQ:
            if (c->off == 0) {       /* a new request (not a retried write) */
                c->t_req = bu_now_us();
                c->deadline = c->t_req + t->timeout_us;
                c->off = 1;
            }
            r = SSL_write(c->ssl, t->req, (int)t->req_len);
            if (r <= 0) {
                int w = hl_ssl_wait(t, c, r);
                if (w == 1)
                    return;
                hl_fail(t, c, w == -1 ? HL_E_CLOSED : HL_E_IO);
                return;
            }
            c->off = 0;
            c->hlen = 0;
            c->st = HL_READ_HEAD;
            break;
        case HL_READ_HEAD: {
            if (c->hlen >= sizeof(c->head)) {
                hl_fail(t, c, HL_E_IO);
                return;
            }
            r = SSL_read(c->ssl, c->head + c->hlen, (int)(sizeof(c->head) - c->hlen));
            if (r <= 0) {
                int w = hl_ssl_wait(t, c, r);
                if (w == 1)
                    return;
                hl_fail(t, c, w == -1 && c->hlen == 0 ? HL_E_CLOSED : HL_E_IO);
                return;
            }
            c->hlen += (size_t)r;
            const char *end = memmem(c->head, c->hlen, "\r\n\r\n", 4);
            if (end)
                hl_after_head(t, c, (size_t)(end + 4 - c->head));
            break;
        }
        case HL_READ_BODY:
            r = SSL_read(c->ssl, scratch, sizeof(scratch));
            if (r <= 0) {
                int w = hl_ssl_wait(t, c, r);
                if (w == 1)
                    return;
                hl_fail(t, c, HL_E_IO);
                return;
            }
            if ((uint64_t)r > c->body_left) {
                hl_fail(t, c, HL_E_IO);
                return;
            }
            c->body_left -= (uint64_t)r;
            if (c->t_req >= t->t_measure)
                t->bytes += (uint64_t)r;
            if (!c->body_left)
                hl_request_done(t, c);
            break;
        }
    }
}

/* ---- setup ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: https_load --proxy ADDR:PORT --target HOST:PORT --cafile FILE [options]\n"
            "       https_load --direct ADDR:PORT --target HOST:PORT --cafile FILE [options]\n"
            "  --proxy ADDR:PORT   proxy to send CONNECT HOST:PORT to (IP literal)\n"
            "  --direct ADDR:PORT  no proxy: TLS straight to this address\n"
            "  --target HOST:PORT  CONNECT authority, Host header, SNI and certificate name\n"
            "  --cafile FILE       CA certificate(s) the server's chain must verify against\n"
            "  --path PATH         path to GET (default /)\n"
            "  -c, --clients N     concurrent connections (default 32, max %d)\n"
            "  -d, --duration S    measured seconds (default 10)\n"
            "  -w, --warmup S      unmeasured seconds first, handshakes included (default 1)\n"
            "  --timeout MS        bound per request / connection setup (default 10000)\n"
            "Prints: mode= clients= duration_s= requests= requests_per_s= connections=\n"
            "        errors= err_*= p50_ms= p90_ms= p99_ms= max_ms= body_bytes= tls= cipher=\n",
            HL_MAX_CLIENTS);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"proxy", required_argument, 0, 'p'},   {"direct", required_argument, 0, 'D'},
        {"target", required_argument, 0, 'T'},  {"cafile", required_argument, 0, 'C'},
        {"path", required_argument, 0, 'P'},    {"clients", required_argument, 0, 'c'},
        {"duration", required_argument, 0, 'd'}, {"warmup", required_argument, 0, 'w'},
        {"timeout", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    static struct hl t;
    const char *proxy = NULL, *direct = NULL, *target = NULL, *cafile = NULL, *path = "/";
    double clients = 32, duration = 10, warmup = 1, timeout_ms = 10000;
    int o;

    while ((o = getopt_long(argc, argv, "c:d:w:h", opts, NULL)) != -1) {
        switch (o) {
        case 'p': proxy = optarg; break;
        case 'D': direct = optarg; break;
        case 'T': target = optarg; break;
        case 'C': cafile = optarg; break;
        case 'P': path = optarg; break;
        case 'c':
            if (bu_parse_num("https_load", "--clients", optarg, 1, HL_MAX_CLIENTS, &clients) < 0)
                return 2;
            break;
        case 'd':
            if (bu_parse_num("https_load", "--duration", optarg, 0.1, 3600, &duration) < 0)
                return 2;
            break;
        case 'w':
            if (bu_parse_num("https_load", "--warmup", optarg, 0, 600, &warmup) < 0)
                return 2;
            break;
        case 't':
            if (bu_parse_num("https_load", "--timeout", optarg, 1, 600000, &timeout_ms) < 0)
                return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!!proxy == !!direct || !target || !cafile || path[0] != '/') {
        fprintf(stderr, "https_load: give --proxy or --direct, and --target and --cafile; "
                        "--path must start with '/'\n");
        usage(stderr);
        return 2;
    }
    t.direct = direct != NULL;
    if (bu_parse_addr(t.direct ? direct : proxy, &t.dst, &t.dst_len) < 0) {
        fprintf(stderr, "https_load: '%s' is not IP:PORT or [IPv6]:PORT\n", t.direct ? direct : proxy);
        return 2;
    }
    if (bu_split_target(target, t.host, sizeof(t.host)) < 0) {
        fprintf(stderr, "https_load: --target '%s' is not HOST:PORT\n", target);
        return 2;
    }
    unsigned char ipbuf[16];
    t.host_is_ip = inet_pton(AF_INET, t.host, ipbuf) == 1 || inet_pton(AF_INET6, t.host, ipbuf) == 1;
    int n1 = snprintf(t.req_connect, sizeof(t.req_connect),
                      "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target);
    int n2 = snprintf(t.req, sizeof(t.req),
                      "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: https_load\r\nAccept: */*\r\n\r\n",
                      path, target);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof(t.req_connect) || (size_t)n2 >= sizeof(t.req)) {
        fprintf(stderr, "https_load: --target/--path too long\n");
        return 2;
    }
    t.req_connect_len = (size_t)n1;
    t.req_len = (size_t)n2;
    t.nclients = (unsigned)clients;
    t.timeout_us = (uint64_t)(timeout_ms * 1000.0);

    t.ctx = SSL_CTX_new(TLS_client_method());
    static const unsigned char alpn[] = "\x08http/1.1";
    if (!t.ctx || SSL_CTX_set_min_proto_version(t.ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(t.ctx, cafile, NULL) != 1 ||
        SSL_CTX_set_alpn_protos(t.ctx, alpn, sizeof(alpn) - 1) != 0) {
        fprintf(stderr, "https_load: TLS setup failed (is --cafile %s a PEM certificate?)\n", cafile);
        return 1;
    }
    SSL_CTX_set_verify(t.ctx, SSL_VERIFY_PEER, NULL);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < t.nclients + 64u) {
        rl.rlim_cur = rl.rlim_max < t.nclients + 64u ? rl.rlim_max : t.nclients + 64u;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    t.ep = epoll_create1(EPOLL_CLOEXEC);
    t.clients = calloc(t.nclients, sizeof(*t.clients));
    if (t.ep < 0 || !t.clients) {
        perror("https_load: setup");
        return 1;
    }
    uint64_t t0 = bu_now_us();
    t.t_measure = t0 + (uint64_t)(warmup * 1e6);
    t.t_end = t.t_measure + (uint64_t)(duration * 1e6);
    for (unsigned i = 0; i < t.nclients; i++) {
        t.clients[i].fd = -1;
        hl_start(&t, &t.clients[i]);
    }

    struct epoll_event evs[256];
    uint64_t last_scan = t0;
    for (;;) {
        int n = epoll_wait(t.ep, evs, 256, HL_SCAN_US / 1000);
        if (n < 0 && errno != EINTR) {
            perror("https_load: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct hl_client *c = evs[i].data.ptr;
            if (c->fd >= 0)
                hl_drive(&t, c);
        }
        uint64_t now = bu_now_us();
        if (now >= t.t_end)
            break;
        if (now - last_scan >= HL_SCAN_US) {
            last_scan = now;
            for (unsigned i = 0; i < t.nclients; i++) {
                struct hl_client *c = &t.clients[i];
                if (c->st != HL_IDLE && now >= c->deadline)
                    hl_fail(&t, c, HL_E_TIMEOUT);
                /* the connect completes through EPOLLOUT, like the first one */
                if (c->st == HL_IDLE && c->retry_at <= now)
                    hl_start(&t, c);
            }
        }
    }
    for (unsigned i = 0; i < t.nclients; i++)
        hl_close(&t, &t.clients[i]);

    uint64_t errs = 0;
    for (int i = 0; i < HL_E_COUNT; i++)
        errs += t.errors[i];
    printf("mode=%s clients=%u duration_s=%.2f requests=%llu requests_per_s=%.1f connections=%llu "
           "errors=%llu",
           t.direct ? "direct" : "connect", t.nclients, duration, (unsigned long long)t.requests,
           (double)t.requests / duration, (unsigned long long)t.connections, (unsigned long long)errs);
    for (int i = 0; i < HL_E_COUNT; i++)
        printf(" %s=%llu", hl_err_names[i], (unsigned long long)t.errors[i]);
    printf(" p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f body_bytes=%llu tls=%s cipher=%s\n",
           bu_hist_quantile(&t.hist, 0.50) / 1000, bu_hist_quantile(&t.hist, 0.90) / 1000,
           bu_hist_quantile(&t.hist, 0.99) / 1000, (double)t.hist.max / 1000,
           (unsigned long long)t.bytes, t.tls_version[0] ? t.tls_version : "-",
           t.cipher[0] ? t.cipher : "-");
    free(t.clients);
    SSL_CTX_free(t.ctx);
    close(t.ep);
    return t.requests ? 0 : 1;
}
