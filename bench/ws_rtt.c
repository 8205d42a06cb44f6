/* bench/ws_rtt: WebSocket echo round-trip latency, through a CONNECT proxy
 * or straight to the server.
 *
 * One connection: connect (to the proxy, or --direct) → with a proxy
 * "CONNECT host:port" and a 2xx → TLS (SNI = host, verified against
 * --cafile; --plain skips TLS) → the WebSocket upgrade (GET with Upgrade,
 * a 101 with the right Sec-WebSocket-Accept) → then N messages one after
 * the other: send a masked binary frame of --size bytes, wait for the echo,
 * check it is the same bytes. The round trip is measured from before the
 * write to after the last byte of the echo; --warmup messages go first and
 * are not recorded. Blocking sockets (the messages are sequential anyway),
 * TCP_NODELAY. Prints one line of key=value pairs on stdout.
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
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "benchutil.h"

#define WR_MAX_SIZE 65535u
#define WR_HEAD_MAX 8192

struct wr {
    int fd;
    SSL *ssl;
    /* read buffer in front of the socket / TLS */
    unsigned char in[WR_MAX_SIZE + 64];
    size_t in_off, in_len;
};

static void die(const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    fprintf(stderr, "ws_rtt: %s%s%s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "",
            buf[0] ? ": " : "", buf);
    exit(1);
}

static void wr_write(struct wr *w, const void *p, size_t len)
{
    const unsigned char *b = p;
    while (len) {
        ssize_t n;
        errno = 0;
        if (w->ssl) {
            int r = SSL_write(w->ssl, b, (int)len);
            if (r <= 0)
                die("write (TLS)");
            n = r;
        } else {
            n = send(w->fd, b, len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                die("write");
            }
        }
        b += n;
        len -= (size_t)n;
    }
}

/* Fills the read buffer with at least one more byte. */
static void wr_fill(struct wr *w)
{
    if (w->in_off && w->in_off == w->in_len)
        w->in_off = w->in_len = 0;
    if (w->in_len == sizeof(w->in)) {   /* compact */
        memmove(w->in, w->in + w->in_off, w->in_len - w->in_off);
        w->in_len -= w->in_off;
        w->in_off = 0;
    }
    ssize_t n;
    errno = 0;
    if (w->ssl) {
        int r = SSL_read(w->ssl, w->in + w->in_len, (int)(sizeof(w->in) - w->in_len));
        if (r <= 0)
            die(SSL_get_error(w->ssl, r) == SSL_ERROR_ZERO_RETURN ? "closed by peer" : "read (TLS)");
        n = r;
    } else {
        do
            n = recv(w->fd, w->in + w->in_len, sizeof(w->in) - w->in_len, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            die("read");
        if (n == 0) {
            errno = 0;
            die("closed by peer");
        }
    }
    w->in_len += (size_t)n;
}

static void wr_read_exact(struct wr *w, unsigned char *out, size_t len)
{
    while (len) {
        if (w->in_off == w->in_len)
            wr_fill(w);
        size_t have = w->in_len - w->in_off;
        size_t take = have < len ? have : len;
        memcpy(out, w->in + w->in_off, take);
        w->in_off += take;
        out += take;
        len -= take;
    }
}

/* Reads up to the end of an HTTP head (plain bytes before TLS, or inside). */
static size_t wr_read_head(struct wr *w, char *head, size_t cap)
{
    size_t len = 0;
    for (;;) {
        if (w->in_off == w->in_len)
            wr_fill(w);
        while (w->in_off < w->in_len) {
            if (len + 1 >= cap) {
                errno = 0;
                die("response head too long");
            }
            head[len++] = (char)w->in[w->in_off++];
            if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0) {
                head[len] = '\0';
                return len;
            }
        }
    }
}

static int wr_status(const char *h)
{
    if (strncmp(h, "HTTP/1.", 7) != 0 || h[8] != ' ')
        return -1;
    return atoi(h + 9);
}

/* Reads one frame; control frames (ping/pong) are skipped. Returns the
 * payload length, the payload in out. */
static size_t wr_read_frame(struct wr *w, unsigned char *out, size_t cap, int *opcode)
{
    for (;;) {
        unsigned char h[2], ext[8];
        wr_read_exact(w, h, 2);
        uint64_t len = h[1] & 0x7f;
        if (h[1] & 0x80) {
            errno = 0;
            die("server sent a masked frame");
        }
        if (len == 126) {
            wr_read_exact(w, ext, 2);
            len = (uint64_t)ext[0] << 8 | ext[1];
        } else if (len == 127) {
            wr_read_exact(w, ext, 8);
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | ext[i];
        }
        if (len > cap) {
            errno = 0;
            die("frame larger than expected");
        }
        wr_read_exact(w, out, (size_t)len);
        *opcode = h[0] & 0x0f;
        if (*opcode == 0x9 || *opcode == 0xA)   /* ping, pong */
            continue;
        if (!(h[0] & 0x80)) {
            errno = 0;
            die("fragmented echo (not expected for small messages)");
        }
        return (size_t)len;
    }
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ws_rtt (--proxy ADDR:PORT | --direct ADDR:PORT) --target HOST:PORT\n"
            "              (--cafile FILE | --plain) [options]\n"
            "  --proxy ADDR:PORT   proxy to send CONNECT HOST:PORT to (IP literal)\n"
            "  --direct ADDR:PORT  no proxy\n"
            "  --target HOST:PORT  CONNECT authority, Host, SNI and certificate name\n"
            "  --cafile FILE       CA the server's certificate must verify against (wss)\n"
            "  --plain             ws:// without TLS\n"
            "  --path PATH         upgrade request path (default /)\n"
            "  -n, --messages N    measured messages (default 2000)\n"
            "  -w, --warmup N      unmeasured messages first (default 100)\n"
            "  -s, --size BYTES    payload size (default 32, max %u)\n"
            "  --timeout MS        bound on each read/write (default 10000)\n"
            "Prints: mode= messages= size= p50_us= p90_us= p99_us= mean_us= max_us= total_s= tls=\n",
            WR_MAX_SIZE);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"proxy", required_argument, 0, 'p'},   {"direct", required_argument, 0, 'D'},
        {"target", required_argument, 0, 'T'},  {"cafile", required_argument, 0, 'C'},
        {"plain", no_argument, 0, 'L'},         {"path", required_argument, 0, 'P'},
        {"messages", required_argument, 0, 'n'}, {"warmup", required_argument, 0, 'w'},
        {"size", required_argument, 0, 's'},    {"timeout", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    static struct wr w;
    static struct bu_hist hist;
    const char *proxy = NULL, *direct = NULL, *target = NULL, *cafile = NULL, *path = "/";
    bool plain = false;
    double nmsg = 2000, warm = 100, size = 32, timeout_ms = 10000;
    char host[256];
    int o;

    while ((o = getopt_long(argc, argv, "n:w:s:h", opts, NULL)) != -1) {
        switch (o) {
        case 'p': proxy = optarg; break;
        case 'D': direct = optarg; break;
        case 'T': target = optarg; break;
        case 'C': cafile = optarg; break;
        case 'L': plain = true; break;
        case 'P': path = optarg; break;
        case 'n':
            if (bu_parse_num("ws_rtt", "--messages", optarg, 1, 1e8, &nmsg) < 0)
                return 2;
            break;
        case 'w':
            if (bu_parse_num("ws_rtt", "--warmup", optarg, 0, 1e8, &warm) < 0)
                return 2;
            break;
        case 's':
            if (bu_parse_num("ws_rtt", "--size", optarg, 1, WR_MAX_SIZE, &size) < 0)
                return 2;
            break;
        case 't':
            if (bu_parse_num("ws_rtt", "--timeout", optarg, 1, 600000, &timeout_ms) < 0)
                return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!!proxy == !!direct || !target || (!cafile == !plain) || path[0] != '/') {
        fprintf(stderr, "ws_rtt: give --proxy or --direct, --target, and --cafile or --plain\n");
        usage(stderr);
        return 2;
    }
    struct sockaddr_storage dst;
    socklen_t dst_len;
    if (bu_parse_addr(proxy ? proxy : direct, &dst, &dst_len) < 0 ||
        bu_split_target(target, host, sizeof(host)) < 0) {
        fprintf(stderr, "ws_rtt: bad address or --target\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    /* ---- connect, CONNECT ---- */
    w.fd = socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (w.fd < 0)
        die("socket");
    int one = 1;
    struct timeval tv = {.tv_sec = (time_t)(timeout_ms / 1000),
                         .tv_usec = (suseconds_t)((long)timeout_ms % 1000 * 1000)};
    setsockopt(w.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(w.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(w.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(w.fd, (struct sockaddr *)&dst, dst_len) < 0)
        die("connect");
    char head[WR_HEAD_MAX];
    if (proxy) {
        int n = snprintf(head, sizeof(head), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target);
        wr_write(&w, head, (size_t)n);
        wr_read_head(&w, head, sizeof(head));
        int s = wr_status(head);
        if (s < 200 || s > 299 || w.in_off != w.in_len) {
            fprintf(stderr, "ws_rtt: CONNECT answered: %.*s\n", (int)strcspn(head, "\r"), head);
            return 1;
        }
        w.in_off = w.in_len = 0;
    }

    /* ---- TLS ---- */
    SSL_CTX *ctx = NULL;
    if (!plain) {
        unsigned char ipbuf[16];
        bool is_ip = inet_pton(AF_INET, host, ipbuf) == 1 || inet_pton(AF_INET6, host, ipbuf) == 1;
        ctx = SSL_CTX_new(TLS_client_method());
        static const unsigned char alpn[] = "\x08http/1.1";
        if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
            SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1 ||
            SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0)
            die("TLS setup (is --cafile a PEM certificate?)");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        w.ssl = SSL_new(ctx);
        if (!w.ssl || SSL_set_fd(w.ssl, w.fd) != 1)
            die("SSL_new");
        if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(w.ssl), host) != 1
                  : (SSL_set_tlsext_host_name(w.ssl, host) != 1 || SSL_set1_host(w.ssl, host) != 1))
            die("SNI / host check setup");
        errno = 0;
        if (SSL_connect(w.ssl) != 1) {
            long vr = SSL_get_verify_result(w.ssl);
            if (vr != X509_V_OK)
                fprintf(stderr, "ws_rtt: verify: %s\n", X509_verify_cert_error_string(vr));
            die("TLS handshake");
        }
    }

    /* ---- upgrade ---- */
    unsigned char rnd[16];
    char key[32], accept_want[64];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        die("RAND_bytes");
    EVP_EncodeBlock((unsigned char *)key, rnd, sizeof(rnd));
    {
        char cat[128];
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        int n = snprintf(cat, sizeof(cat), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
        if (EVP_Digest(cat, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1)
            die("SHA-1");
        EVP_EncodeBlock((unsigned char *)accept_want, md, (int)mdlen);
    }
    int n = snprintf(head, sizeof(head),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "User-Agent: ws_rtt\r\n\r\n",
                     path, target, key);
    wr_write(&w, head, (size_t)n);
    wr_read_head(&w, head, sizeof(head));
    const char *acc = strcasestr(head, "\r\nsec-websocket-accept:");
    if (wr_status(head) != 101 || !acc) {
        fprintf(stderr, "ws_rtt: upgrade refused: %.*s\n", (int)strcspn(head, "\r"), head);
        return 1;
    }
    acc += strlen("\r\nsec-websocket-accept:");
    acc += strspn(acc, " \t");
    if (strncmp(acc, accept_want, strlen(accept_want)) != 0) {
        fprintf(stderr, "ws_rtt: wrong Sec-WebSocket-Accept\n");
        return 1;
    }

    /* ---- messages ---- */
    size_t sz = (size_t)size;
    unsigned char *payload = malloc(sz), *frame = malloc(sz + 14), *echo = malloc(sz);
    if (!payload || !frame || !echo)
        die("malloc");
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    uint64_t total = (uint64_t)nmsg + (uint64_t)warm, t_first = 0;
    for (uint64_t i = 0; i < total; i++) {
        for (size_t j = 0; j < sz; j++)
            payload[j] = (unsigned char)('a' + (i + j) % 26);
        size_t fl = 0;
        frame[fl++] = 0x82;   /* FIN, binary */
        if (sz < 126) {
            frame[fl++] = (unsigned char)(0x80 | sz);
        } else {
            frame[fl++] = 0x80 | 126;
            frame[fl++] = (unsigned char)(sz >> 8);
            frame[fl++] = (unsigned char)sz;
        }
        uint32_t mask = (uint32_t)xorshift(&rng);
        unsigned char m[4] = {(unsigned char)(mask >> 24), (unsigned char)(mask >> 16),
                              (unsigned char)(mask >> 8), (unsigned char)mask};
        memcpy(frame + fl, m, 4);
        fl += 4;
        for (size_t j = 0; j < sz; j++)
            frame[fl + j] = payload[j] ^ m[j & 3];
        fl += sz;

        uint64_t t0 = bu_now_us();
        if (i == (uint64_t)warm)
            t_first = t0;
        wr_write(&w, frame, fl);
        int op;
        size_t got = wr_read_frame(&w, echo, sz, &op);
        uint64_t t1 = bu_now_us();
        if (op == 0x8) {
            fprintf(stderr, "ws_rtt: server closed the WebSocket\n");
            return 1;
        }
        if (got != sz || memcmp(echo, payload, sz) != 0) {
            fprintf(stderr, "ws_rtt: echo %llu differs from the message\n", (unsigned long long)i);
            return 1;
        }
        if (i >= (uint64_t)warm)
            bu_hist_add(&hist, t1 - t0);
    }
    double total_s = (double)(bu_now_us() - t_first) / 1e6;
    /* close frame (masked, empty payload): polite, not waited for */
    unsigned char close_frame[6] = {0x88, 0x80, 0, 0, 0, 0};
    wr_write(&w, close_frame, sizeof(close_frame));

    printf("mode=%s messages=%llu size=%zu p50_us=%.0f p90_us=%.0f p99_us=%.0f mean_us=%.1f "
           "max_us=%llu total_s=%.3f tls=%s\n",
           proxy ? "connect" : "direct", (unsigned long long)hist.count, sz,
           bu_hist_quantile(&hist, 0.5), bu_hist_quantile(&hist, 0.9), bu_hist_quantile(&hist, 0.99),
           hist.count ? (double)hist.sum / (double)hist.count : 0.0, (unsigned long long)hist.max,
           total_s, w.ssl ? SSL_get_version(w.ssl) : "none");
    if (w.ssl)
        SSL_free(w.ssl);
    SSL_CTX_free(ctx);
    close(w.fd);
    free(payload);
    free(frame);
    free(echo);
    return 0;
}
