/* Unit tests for tls/server, tls/client and tls/conn: in-process handshakes
 * over non-blocking socketpairs driven by the tls_conn_* helpers, and real
 * clients (curl, openssl s_client) against a small server built on the
 * server context, on loopback. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"

/* ---- fixtures ---- */

struct fx {
    struct tls_ca *ca;
    SSL_CTX *sctx;
    char dir[64];
    char ca_pem[128];
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256];
    assert_non_null(f);
    assert_int_equal(tls_ca_generate(NULL, &f->ca, err, sizeof(err)), 0);
    assert_int_equal(tls_server_ctx_new(f->ca, &f->sctx), 0);
    snprintf(f->dir, sizeof(f->dir), "/tmp/cordon-tls-hs-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->ca_pem, sizeof(f->ca_pem), "%s/ca.pem", f->dir);
    assert_int_equal(tls_ca_cert_write(f->ca, f->ca_pem, err, sizeof(err)), 0);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    SSL_CTX_free(f->sctx);
    tls_ca_free(f->ca);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void nb_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
}

/* A client context that trusts only the given CA certificate. */
static SSL_CTX *client_ctx_trusting(X509 *ca)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    assert_non_null(c);
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(c), ca), 1);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    return c;
}

struct client_opts {
    const char *sni;        /* NULL: none */
    const char *check_host; /* DNS name to verify, or NULL */
    const char *check_ip;   /* IP to verify, or NULL */
    const char *alpn;       /* wire format, or NULL */
    size_t alpn_len;
    int max_version;        /* 0 = default */
};

static SSL *client_ssl(SSL_CTX *c, int fd, const struct client_opts *o)
{
    SSL *s = SSL_new(c);
    assert_non_null(s);
    SSL_set_fd(s, fd);
    if (o->sni)
        assert_int_equal(SSL_set_tlsext_host_name(s, o->sni), 1);
    if (o->check_host)
        assert_int_equal(SSL_set1_host(s, o->check_host), 1);
    if (o->check_ip)
        assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), o->check_ip), 1);
    if (o->alpn)
        assert_int_equal(SSL_set_alpn_protos(s, (const unsigned char *)o->alpn,
                                             (unsigned)o->alpn_len), 0);
    if (o->max_version)
        assert_int_equal(SSL_set_max_proto_version(s, o->max_version), 1);
    SSL_set_connect_state(s);
    return s;
}

/* Drives both handshakes in one thread until both finish or one fails
 * (then gives the other a few turns to read the alert). */
static void pump_handshake(struct tls_conn *a, struct tls_conn *b, int *ra, int *rb)
{
    *ra = *rb = TLS_WANT_READ;
    for (int i = 0; i < 200; i++) {
        if (*ra != 0 && *ra != TLS_ERROR)
            *ra = tls_conn_handshake(a);
        if (*rb != 0 && *rb != TLS_ERROR)
            *rb = tls_conn_handshake(b);
        if ((*ra == 0 || *ra == TLS_ERROR) && (*rb == 0 || *rb == TLS_ERROR))
            return;
        if ((*ra == TLS_ERROR || *rb == TLS_ERROR) && i > 150)
            return;
    }
}

struct pair {
    int sv[2];
    struct tls_conn cli, srv;
    SSL_CTX *cctx;
};

/* Sets up a client (cctx) and our server over a socketpair and runs the
 * handshake. */
static void pair_run(struct fx *f, struct pair *p, SSL_CTX *cctx, const struct client_opts *o,
                     const char *connect_host, unsigned flags, int *rc_cli, int *rc_srv)
{
    SSL *ss = NULL;
    nb_pair(p->sv);
    p->cctx = cctx;
    tls_conn_init(&p->cli, client_ssl(cctx, p->sv[0], o));
    assert_int_equal(tls_server_ssl_new(f->sctx, p->sv[1], connect_host, flags, &ss), 0);
    tls_conn_init(&p->srv, ss);
    pump_handshake(&p->cli, &p->srv, rc_cli, rc_srv);
}

static void pair_free(struct pair *p)
{
    tls_conn_free(&p->cli);
    tls_conn_free(&p->srv);
    SSL_CTX_free(p->cctx);
    close(p->sv[0]);
    close(p->sv[1]);
    ERR_clear_error();
}

static void peer_cn(SSL *s, char *out, size_t cap)
{
    X509 *x = SSL_get1_peer_certificate(s);
    assert_non_null(x);
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out,
                                          (int)cap) > 0);
    X509_free(x);
}

#define ALPN_H2_H11 "\x02h2\x08http/1.1"

/* ---- server context ---- */

static void test_sni_handshake_ok(void **state)
{
    struct fx *f = *state;
    struct pair p;
    struct client_opts o = {.sni = "example.test", .check_host = "example.test",
                            .alpn = ALPN_H2_H11, .alpn_len = sizeof(ALPN_H2_H11) - 1};
    int rc, rs;
    char buf[64], cn[128];

    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &o, NULL, 0, &rc, &rs);
    assert_int_equal(rc, 0);
    assert_int_equal(rs, 0);
    assert_int_equal(SSL_get_verify_result(p.cli.ssl), X509_V_OK);
    assert_string_equal(tls_conn_alpn(&p.cli, buf, sizeof(buf)), "http/1.1");
    assert_string_equal(tls_conn_alpn(&p.srv, buf, sizeof(buf)), "http/1.1");
    assert_string_equal(tls_server_name(p.srv.ssl), "example.test");
    peer_cn(p.cli.ssl, cn, sizeof(cn));
    assert_string_equal(cn, "example.test");
    assert_int_equal(SSL_version(p.cli.ssl), TLS1_3_VERSION);

    /* data both ways */
    assert_int_equal(tls_conn_write(&p.cli, "ping", 4), 4);
    ssize_t n;
    do
        n = tls_conn_read(&p.srv, buf, sizeof(buf));
    while (n == TLS_WANT_READ && tls_conn_pending(&p.srv));
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(tls_conn_read(&p.srv, buf, sizeof(buf)), TLS_WANT_READ);

    /* clean close: close_notify, then EOF that is not abrupt */
    assert_int_equal(tls_conn_shutdown(&p.cli), 0);
    for (int i = 0; i < 10 && (n = tls_conn_read(&p.srv, buf, sizeof(buf))) == TLS_WANT_READ; i++)
        ;
    assert_int_equal(n, 0);
    assert_true(p.srv.eof);
    assert_false(p.srv.eof_abrupt);
    assert_int_equal(tls_conn_read(&p.srv, buf, sizeof(buf)), 0); /* sticky */
    assert_int_equal(tls_conn_shutdown(&p.srv), 0);
    pair_free(&p);
}

static void test_wrong_name_fails(void **state)
{
    struct fx *f = *state;
    struct pair p;
    struct client_opts o = {.sni = "example.test", .check_host = "other.test"};
    int rc, rs;

    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &o, NULL, 0, &rc, &rs);
    assert_int_equal(rc, TLS_ERROR);
    assert_int_equal(SSL_get_verify_result(p.cli.ssl), X509_V_ERR_HOSTNAME_MISMATCH);
    assert_int_equal(rs, TLS_ERROR); /* the client's alert */
    assert_true(strlen(p.srv.err) > 0);
    assert_int_equal(tls_conn_shutdown(&p.cli), 0); /* nothing to send after a fatal error */
    pair_free(&p);
}

static void test_untrusting_client_fails(void **state)
{
    struct fx *f = *state;
    struct tls_ca *other = NULL;
    char err[256];
    struct pair p;
    struct client_opts o = {.sni = "example.test", .check_host = "example.test"};
    int rc, rs;

    assert_int_equal(tls_ca_generate(NULL, &other, err, sizeof(err)), 0);
    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(other)), &o, NULL, 0, &rc, &rs);
    assert_int_equal(rc, TLS_ERROR);
    assert_int_equal(SSL_get_verify_result(p.cli.ssl), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    pair_free(&p);
    tls_ca_free(other);
}

static void test_no_sni_uses_connect_host(void **state)
{
    struct fx *f = *state;
    struct pair p;
    int rc, rs;
    char cn[128];

    /* an IP literal: the client sends no SNI and checks the IP SAN */
    struct client_opts o = {.check_ip = "127.0.0.1"};
    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &o, "127.0.0.1", 0, &rc, &rs);
    assert_int_equal(rc, 0);
    assert_int_equal(rs, 0);
    assert_null(SSL_get_servername(p.srv.ssl, TLSEXT_NAMETYPE_host_name));
    assert_string_equal(tls_server_name(p.srv.ssl), "127.0.0.1");
    pair_free(&p);

    /* an IPv6 CONNECT target in brackets */
    struct client_opts o6 = {.check_ip = "::1"};
    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &o6, "[::1]", 0, &rc, &rs);
    assert_int_equal(rc, 0);
    assert_string_equal(tls_server_name(p.srv.ssl), "::1");
    pair_free(&p);

    /* a DNS name, client without SNI */
    struct client_opts od = {.check_host = "api.example.test"};
    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &od, "API.example.test", 0, &rc, &rs);
    assert_int_equal(rc, 0);
    peer_cn(p.cli.ssl, cn, sizeof(cn));
    assert_string_equal(cn, "api.example.test");
    pair_free(&p);

    /* neither SNI nor a connect host: refused */
    struct client_opts on = {0};
    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &on, NULL, 0, &rc, &rs);
    assert_int_equal(rc, TLS_ERROR);
    assert_int_equal(rs, TLS_ERROR);
    pair_free(&p);

    /* a bad connect host is refused up front */
    SSL *ss = (SSL *)1;
    assert_int_equal(tls_server_ssl_new(f->sctx, 0, "bad host", 0, &ss), -EINVAL);
    assert_null(ss);
}

static void test_sni_must_match(void **state)
{
    struct fx *f = *state;
    struct pair p;
    int rc, rs;
    struct client_opts o = {.sni = "b.test", .check_host = "b.test"};

    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &o, "a.test",
             TLS_SERVER_SNI_MUST_MATCH, &rc, &rs);
    assert_int_equal(rc, TLS_ERROR);
    assert_int_equal(rs, TLS_ERROR);
    pair_free(&p);

    /* same names (case and trailing dot aside): fine */
    struct client_opts o2 = {.sni = "A.test", .check_host = "a.test"};
    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &o2, "a.test.",
             TLS_SERVER_SNI_MUST_MATCH, &rc, &rs);
    assert_int_equal(rc, 0);
    pair_free(&p);

    /* without the flag the SNI wins */
    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &o, "a.test", 0, &rc, &rs);
    assert_int_equal(rc, 0);
    assert_string_equal(tls_server_name(p.srv.ssl), "b.test");
    pair_free(&p);

    /* an SNI that is not a host name */
    struct client_opts o3 = {.sni = "*.test"};
    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &o3, NULL, 0, &rc, &rs);
    assert_int_equal(rc, TLS_ERROR);
    pair_free(&p);
}

static void test_alpn_and_versions(void **state)
{
    struct fx *f = *state;
    struct pair p;
    int rc, rs;
    char buf[32];

    /* h2 only: no_application_protocol */
    struct client_opts o = {.sni = "x.test", .check_host = "x.test", .alpn = "\x02h2", .alpn_len = 3};
    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &o, NULL, 0, &rc, &rs);
    assert_int_equal(rc, TLS_ERROR);
    assert_non_null(strstr(p.cli.err, "no application protocol"));
    pair_free(&p);

    /* no ALPN at all: fine, nothing negotiated */
    struct client_opts o2 = {.sni = "x.test", .check_host = "x.test"};
    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &o2, NULL, 0, &rc, &rs);
    assert_int_equal(rc, 0);
    assert_string_equal(tls_conn_alpn(&p.srv, buf, sizeof(buf)), "");
    pair_free(&p);

    /* TLS 1.2 */
    struct client_opts o3 = {.sni = "x.test", .check_host = "x.test", .max_version = TLS1_2_VERSION,
                             .alpn = ALPN_H2_H11, .alpn_len = sizeof(ALPN_H2_H11) - 1};
    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &o3, NULL, 0, &rc, &rs);
    assert_int_equal(rc, 0);
    assert_int_equal(SSL_version(p.srv.ssl), TLS1_2_VERSION);
    assert_string_equal(tls_conn_alpn(&p.cli, buf, sizeof(buf)), "http/1.1");
    pair_free(&p);

    /* TLS 1.1: refused */
    SSL_CTX *old = client_ctx_trusting(tls_ca_cert(f->ca));
    SSL_CTX_set_security_level(old, 0);
    SSL_CTX_set_min_proto_version(old, TLS1_VERSION);
    struct client_opts o4 = {.sni = "x.test", .max_version = TLS1_1_VERSION};
    pair_run(f, &p, old, &o4, NULL, 0, &rc, &rs);
    assert_int_equal(rc, TLS_ERROR);
    assert_int_equal(rs, TLS_ERROR);
    pair_free(&p);
}

static void test_abrupt_eof(void **state)
{
    struct fx *f = *state;
    struct pair p;
    int rc, rs;
    char buf[16];
    struct client_opts o = {.sni = "x.test", .check_host = "x.test"};

    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &o, NULL, 0, &rc, &rs);
    assert_int_equal(rc, 0);
    /* TCP close without close_notify */
    assert_int_equal(shutdown(p.sv[0], SHUT_WR), 0);
    ssize_t n;
    for (int i = 0; i < 10 && (n = tls_conn_read(&p.srv, buf, sizeof(buf))) == TLS_WANT_READ; i++)
        ;
    assert_int_equal(n, 0);
    assert_true(p.srv.eof);
    assert_true(p.srv.eof_abrupt);
    assert_int_equal(tls_conn_shutdown(&p.srv), 0); /* no close_notify after that */
    assert_int_equal(tls_conn_write(&p.srv, "x", 1), TLS_ERROR);
    pair_free(&p);
}

/* A write larger than the socket buffers: partial writes, TLS_WANT_WRITE,
 * and the bytes arrive intact once the reader drains. */
static void test_backpressure(void **state)
{
    struct fx *f = *state;
    struct pair p;
    int rc, rs;
    struct client_opts o = {.sni = "x.test", .check_host = "x.test"};
    const size_t total = 4u << 20;
    uint8_t *src = malloc(total), *dst = malloc(total);
    size_t sent = 0, got = 0;
    int sz = 4096, want_write = 0;

    assert_non_null(src);
    assert_non_null(dst);
    for (size_t i = 0; i < total; i++)
        src[i] = (uint8_t)(i * 131 + (i >> 9));
    pair_run(f, &p, client_ctx_trusting(tls_ca_cert(f->ca)), &o, NULL, 0, &rc, &rs);
    assert_int_equal(rc, 0);
    setsockopt(p.sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    setsockopt(p.sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    while (got < total) {
        /* writer: as much as it takes, from a buffer that moves */
        while (sent < total) {
            size_t chunk = total - sent < 65536 ? total - sent : 65536;
            ssize_t w = tls_conn_write(&p.srv, src + sent, chunk);
            if (w == TLS_WANT_WRITE) {
                want_write++;
                break;
            }
            assert_true(w > 0);
            sent += (size_t)w;
        }
        /* reader: drain until the fd is empty */
        while (got < total) {
            ssize_t r = tls_conn_read(&p.cli, dst + got, total - got);
            if (r == TLS_WANT_READ)
                break;
            if (r <= 0)
                fail_msg("read returned %zd (%s) after %zu bytes", r, p.cli.err, got);
            got += (size_t)r;
        }
    }
    assert_true(want_write > 0);
    assert_memory_equal(src, dst, total);
    free(src);
    free(dst);
    pair_free(&p);
}

/* ---- upstream client ---- */

/* A test upstream: our server context, or a fixed certificate. */
static SSL_CTX *fixed_server_ctx(struct tls_ca *ca, const char *name)
{
    SSL_CTX *s = SSL_CTX_new(TLS_server_method());
    X509 *leaf = NULL;
    assert_non_null(s);
    assert_int_equal(tls_leaf_get(ca, name, &leaf), 0);
    assert_int_equal(SSL_CTX_use_certificate(s, leaf), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(s, tls_leaf_key(ca)), 1);
    X509_free(leaf);
    return s;
}

struct up {
    int sv[2];
    struct tls_conn cli, srv;
};

/* Connects tls_client c to an upstream served by sctx (our server ctx
 * when sctx_is_ours, with connect host = host). */
static void up_run(struct tls_client *c, SSL_CTX *sctx, bool ours, const char *host,
                   struct up *u, int *rc, int *rs)
{
    SSL *cs = NULL, *ss = NULL;
    nb_pair(u->sv);
    assert_int_equal(tls_client_ssl_new(c, u->sv[0], host, 443, &cs), 0);
    tls_conn_init(&u->cli, cs);
    if (ours) {
        assert_int_equal(tls_server_ssl_new(sctx, u->sv[1], host, 0, &ss), 0);
    } else {
        ss = SSL_new(sctx);
        assert_non_null(ss);
        SSL_set_fd(ss, u->sv[1]);
        SSL_set_accept_state(ss);
    }
    tls_conn_init(&u->srv, ss);
    pump_handshake(&u->cli, &u->srv, rc, rs);
}

static void up_free(struct up *u)
{
    tls_conn_free(&u->cli);
    tls_conn_free(&u->srv);
    close(u->sv[0]);
    close(u->sv[1]);
    ERR_clear_error();
}

static void test_upstream_trust(void **state)
{
    struct fx *f = *state;
    struct tls_client *sys = NULL, *extra = NULL;
    struct tls_client_config cfg = {0};
    struct up u;
    char err[512], detail[600], buf[32];
    const char *reason;
    int rc, rs;

    /* system trust only: our CA is unknown there */
    assert_int_equal(tls_client_new(NULL, &sys, err, sizeof(err)), 0);
    up_run(sys, f->sctx, true, "upstream.test", &u, &rc, &rs);
    assert_int_equal(rc, TLS_ERROR);
    reason = tls_conn_failure(&u.cli, detail, sizeof(detail));
    assert_ptr_equal(reason, TLS_REASON_UPSTREAM_INVALID);
    assert_string_equal(reason, "upstream_tls_invalid");
    assert_non_null(strstr(detail, "certificate verify failed: "));
    assert_non_null(strstr(detail, X509_verify_cert_error_string(
                                        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)));
    assert_non_null(strstr(detail, "expected host upstream.test"));
    assert_non_null(strstr(detail, "CN = upstream.test"));
    up_free(&u);

    /* with the extra CA it verifies */
    cfg.extra_ca_file = f->ca_pem;
    assert_int_equal(tls_client_new(&cfg, &extra, err, sizeof(err)), 0);
    up_run(extra, f->sctx, true, "upstream.test", &u, &rc, &rs);
    assert_int_equal(rc, 0);
    assert_int_equal(rs, 0);
    assert_string_equal(tls_conn_alpn(&u.cli, buf, sizeof(buf)), "http/1.1");
    assert_string_equal(SSL_get_servername(u.srv.ssl, TLSEXT_NAMETYPE_host_name), "upstream.test");
    up_free(&u);

    /* IP literal upstream: no SNI; the IP SAN is checked */
    up_run(extra, f->sctx, true, "127.0.0.1", &u, &rc, &rs);
    assert_int_equal(rc, 0);
    assert_null(SSL_get_servername(u.srv.ssl, TLSEXT_NAMETYPE_host_name));
    up_free(&u);

    /* wrong name on a fixed certificate */
    SSL_CTX *fixed = fixed_server_ctx(f->ca, "right.test");
    up_run(extra, fixed, false, "wrong.test", &u, &rc, &rs);
    assert_int_equal(rc, TLS_ERROR);
    reason = tls_conn_failure(&u.cli, detail, sizeof(detail));
    assert_ptr_equal(reason, TLS_REASON_UPSTREAM_INVALID);
    assert_non_null(strstr(detail, "hostname mismatch"));
    assert_non_null(strstr(detail, "expected host wrong.test"));
    up_free(&u);
    up_run(extra, fixed, false, "127.0.0.1", &u, &rc, &rs);
    assert_int_equal(rc, TLS_ERROR);
    reason = tls_conn_failure(&u.cli, detail, sizeof(detail));
    assert_ptr_equal(reason, TLS_REASON_UPSTREAM_INVALID);
    assert_non_null(strstr(detail, "IP address mismatch"));
    up_free(&u);
    SSL_CTX_free(fixed);

    /* a handshake failure that is not about the certificate */
    SSL_CTX *h2only = fixed_server_ctx(f->ca, "right.test");
    SSL_CTX_set_max_proto_version(h2only, TLS1_1_VERSION);
    up_run(extra, h2only, false, "right.test", &u, &rc, &rs);
    assert_int_equal(rc, TLS_ERROR);
    reason = tls_conn_failure(&u.cli, detail, sizeof(detail));
    assert_ptr_equal(reason, TLS_REASON_UPSTREAM_HANDSHAKE);
    assert_true(strlen(detail) > 0);
    up_free(&u);
    SSL_CTX_free(h2only);

    /* bad names and bad files */
    SSL *s = (SSL *)1;
    assert_int_equal(tls_client_ssl_new(extra, 0, "no such host", 443, &s), -EINVAL);
    assert_null(s);
    struct tls_client *bad = NULL;
    struct tls_client_config bc = {.extra_ca_file = "/nonexistent/ca.pem"};
    err[0] = '\0';
    assert_int_equal(tls_client_new(&bc, &bad, err, sizeof(err)), -EINVAL);
    assert_null(bad);
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
    char junk[160];
    snprintf(junk, sizeof(junk), "%s/junk.pem", f->dir);
    FILE *jf = fopen(junk, "w");
    fputs("hello\n", jf);
    fclose(jf);
    bc.extra_ca_file = junk;
    assert_int_equal(tls_client_new(&bc, &bad, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "junk.pem"));

    tls_client_free(sys);
    tls_client_free(extra);
}

static void test_upstream_session_resumption(void **state)
{
    struct fx *f = *state;
    struct tls_client *c = NULL;
    struct tls_client_config cfg = {.extra_ca_file = f->ca_pem, .session_cache_cap = 2};
    struct tls_client_stats st;
    struct up u;
    char err[256], buf[16];
    int rc, rs;

    assert_int_equal(tls_client_new(&cfg, &c, err, sizeof(err)), 0);
    for (int round = 0; round < 3; round++) {
        up_run(c, f->sctx, true, "resume.test", &u, &rc, &rs);
        assert_int_equal(rc, 0);
        assert_int_equal(rs, 0);
        tls_client_stats(c, &st);
        if (tls_conn_resumed(&u.cli) != (round > 0))
            fail_msg("round %d: resumed %d, stored %llu offered %llu", round,
                     tls_conn_resumed(&u.cli), (unsigned long long)st.sessions_stored,
                     (unsigned long long)st.sessions_offered);
        /* the TLS 1.3 ticket arrives after the handshake: exchange data */
        assert_int_equal(tls_conn_write(&u.srv, "hi", 2), 2);
        ssize_t n;
        for (int i = 0; i < 10 && (n = tls_conn_read(&u.cli, buf, sizeof(buf))) == TLS_WANT_READ; i++)
            ;
        assert_int_equal(n, 2);
        up_free(&u);
    }
    tls_client_stats(c, &st);
    assert_int_equal(st.sessions_offered, 2);
    assert_true(st.sessions_stored >= 3);
    assert_int_equal(st.size, 1);

    /* sessions are per host:port; the cache holds at most 2 */
    const char *hosts[] = {"h1.test", "h2.test", "h3.test"};
    for (int i = 0; i < 3; i++) {
        up_run(c, f->sctx, true, hosts[i], &u, &rc, &rs);
        assert_int_equal(rc, 0);
        assert_false(tls_conn_resumed(&u.cli));
        assert_int_equal(tls_conn_write(&u.srv, "hi", 2), 2);
        ssize_t n;
        for (int k = 0; k < 10 && (n = tls_conn_read(&u.cli, buf, sizeof(buf))) == TLS_WANT_READ; k++)
            ;
        up_free(&u);
    }
    tls_client_stats(c, &st);
    assert_int_equal(st.size, 2);
    assert_int_equal(st.cap, 2);
    assert_true(st.evictions >= 2);
    tls_client_free(c);
}

/* ---- real clients against a loopback server on our context ---- */

struct srv {
    struct fx *f;
    int lfd;
    uint16_t port;
    volatile int stop;
    pthread_t th;
    int served;
};

/* Waits for the fd to be ready for what the TLS call asked for. */
static int wait_for(int fd, int want)
{
    struct pollfd pfd = {.fd = fd, .events = want == TLS_WANT_WRITE ? POLLOUT : POLLIN};
    return poll(&pfd, 1, 5000) == 1 ? 0 : -1;
}

static void serve_one(struct srv *s, int fd)
{
    SSL *ssl = NULL;
    struct tls_conn c;
    char req[4096], resp[512];
    size_t have = 0;
    int r;

    fcntl(fd, F_SETFL, O_NONBLOCK);
    if (tls_server_ssl_new(s->f->sctx, fd, "127.0.0.1", 0, &ssl) != 0)
        return;
    tls_conn_init(&c, ssl);
    while ((r = tls_conn_handshake(&c)) == TLS_WANT_READ || r == TLS_WANT_WRITE)
        if (wait_for(fd, r))
            goto out;
    if (r != 0)
        goto out;
    while (!memmem(req, have, "\r\n\r\n", 4) && have < sizeof(req)) {
        ssize_t n = tls_conn_read(&c, req + have, sizeof(req) - have);
        if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
            if (wait_for(fd, (int)n))
                goto out;
            continue;
        }
        if (n <= 0)
            goto out;
        have += (size_t)n;
    }
    char body[300], alpn[32];
    int bl = snprintf(body, sizeof(body), "hello %s alpn=%s\n", tls_server_name(ssl),
                      tls_conn_alpn(&c, alpn, sizeof(alpn)));
    int rl = snprintf(resp, sizeof(resp),
                      "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", bl,
                      body);
    for (size_t off = 0; off < (size_t)rl;) {
        ssize_t n = tls_conn_write(&c, resp + off, (size_t)rl - off);
        if (n == TLS_WANT_READ || n == TLS_WANT_WRITE) {
            if (wait_for(fd, (int)n))
                goto out;
            continue;
        }
        if (n <= 0)
            goto out;
        off += (size_t)n;
    }
    while ((r = tls_conn_shutdown(&c)) == TLS_WANT_WRITE || r == TLS_WANT_READ)
        if (wait_for(fd, r))
            break;
    s->served++;
out:
    tls_conn_free(&c);
}

static void *srv_main(void *p)
{
    struct srv *s = p;
    while (!s->stop) {
        struct pollfd pfd = {.fd = s->lfd, .events = POLLIN};
        if (poll(&pfd, 1, 100) != 1)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_one(s, fd);
        close(fd);
    }
    return NULL;
}

static void srv_start(struct srv *s, struct fx *f)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    memset(s, 0, sizeof(*s));
    s->f = f;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
    s->stop = 1;
    pthread_join(s->th, NULL);
    close(s->lfd);
}

/* Runs a shell command, returns its exit status and stdout+stderr. */
static int run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    int st;
    assert_non_null(p);
    while (n + 1 < cap) {
        size_t k = fread(out + n, 1, cap - 1 - n, p);
        if (k == 0)
            break;
        n += k;
    }
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_real_clients(void **state)
{
    struct fx *f = *state;
    struct srv s;
    char cmd[1024], out[16384], bundle[128], err[256];
    bool have_curl = access("/usr/bin/curl", X_OK) == 0;
    bool have_openssl = access("/usr/bin/openssl", X_OK) == 0;

    if (!have_curl && !have_openssl)
        skip();
    srv_start(&s, f);
    if (have_curl) {
        const char *curl = "env -u http_proxy -u https_proxy -u HTTPS_PROXY -u ALL_PROXY "
                           "curl -sS --noproxy '*' --max-time 10";
        /* SNI name, trusting the CA alone */
        snprintf(cmd, sizeof(cmd), "%s --cacert %s --resolve example.test:%u:127.0.0.1 "
                 "https://example.test:%u/ 2>&1", curl, f->ca_pem, s.port, s.port);
        assert_int_equal(run(cmd, out, sizeof(out)), 0);
        assert_string_equal(out, "hello example.test alpn=http/1.1\n");
        /* h2 offered, http/1.1 chosen */
        snprintf(cmd, sizeof(cmd), "%s --http2 --cacert %s --resolve h2.example.test:%u:127.0.0.1 "
                 "https://h2.example.test:%u/ 2>&1", curl, f->ca_pem, s.port, s.port);
        assert_int_equal(run(cmd, out, sizeof(out)), 0);
        assert_string_equal(out, "hello h2.example.test alpn=http/1.1\n");
        /* IP literal: no SNI, the connect host names the leaf (IP SAN) */
        snprintf(cmd, sizeof(cmd), "%s --cacert %s https://127.0.0.1:%u/ 2>&1", curl, f->ca_pem,
                 s.port);
        assert_int_equal(run(cmd, out, sizeof(out)), 0);
        assert_string_equal(out, "hello 127.0.0.1 alpn=http/1.1\n");
        /* TLS 1.2 */
        snprintf(cmd, sizeof(cmd), "%s --tlsv1.2 --tls-max 1.2 --cacert %s --resolve "
                 "v12.example.test:%u:127.0.0.1 https://v12.example.test:%u/ 2>&1", curl,
                 f->ca_pem, s.port, s.port);
        assert_int_equal(run(cmd, out, sizeof(out)), 0);
        assert_string_equal(out, "hello v12.example.test alpn=http/1.1\n");
        /* the system store alone does not trust us (curl: 60) */
        snprintf(cmd, sizeof(cmd), "%s --resolve example.test:%u:127.0.0.1 "
                 "https://example.test:%u/ 2>&1", curl, s.port, s.port);
        assert_int_equal(run(cmd, out, sizeof(out)), 60);
        /* the child's bundle (system roots + CA) does */
        snprintf(bundle, sizeof(bundle), "%s/bundle.pem", f->dir);
        assert_int_equal(tls_bundle_write(f->ca, bundle, NULL, err, sizeof(err)), 0);
        snprintf(cmd, sizeof(cmd), "%s --cacert %s --resolve bundle.example.test:%u:127.0.0.1 "
                 "https://bundle.example.test:%u/ 2>&1", curl, bundle, s.port, s.port);
        assert_int_equal(run(cmd, out, sizeof(out)), 0);
        assert_string_equal(out, "hello bundle.example.test alpn=http/1.1\n");
    }
    if (have_openssl) {
        snprintf(cmd, sizeof(cmd), "openssl s_client -connect 127.0.0.1:%u -servername example.test "
                 "-CAfile %s -verify_hostname example.test -verify_return_error -alpn http/1.1 "
                 "</dev/null 2>&1", s.port, f->ca_pem);
        assert_int_equal(run(cmd, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "Verify return code: 0 (ok)"));
        assert_non_null(strstr(out, "ALPN protocol: http/1.1"));
        /* a client checking another name refuses us */
        snprintf(cmd, sizeof(cmd), "openssl s_client -connect 127.0.0.1:%u -servername example.test "
                 "-CAfile %s -verify_hostname other.test -verify_return_error </dev/null 2>&1",
                 s.port, f->ca_pem);
        assert_int_not_equal(run(cmd, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "hostname mismatch"));
        /* no SNI at all, IP check */
        snprintf(cmd, sizeof(cmd), "openssl s_client -connect 127.0.0.1:%u -noservername "
                 "-CAfile %s -verify_ip 127.0.0.1 -verify_return_error </dev/null 2>&1",
                 s.port, f->ca_pem);
        assert_int_equal(run(cmd, out, sizeof(out)), 0);
        assert_non_null(strstr(out, "Verify return code: 0 (ok)"));
    }
    srv_stop(&s);
    assert_true(s.served >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sni_handshake_ok),
        cmocka_unit_test(test_wrong_name_fails),
        cmocka_unit_test(test_untrusting_client_fails),
        cmocka_unit_test(test_no_sni_uses_connect_host),
        cmocka_unit_test(test_sni_must_match),
        cmocka_unit_test(test_alpn_and_versions),
        cmocka_unit_test(test_abrupt_eof),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_upstream_trust),
        cmocka_unit_test(test_upstream_session_resumption),
        cmocka_unit_test(test_real_clients),
    };
    return cmocka_run_group_tests_name("tls_handshake", tests, fx_setup, fx_teardown);
}
