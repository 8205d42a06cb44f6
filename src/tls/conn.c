/* tls/conn: driving an SSL on a non-blocking fd from the epoll loop.
 * Every function here returns progress, TLS_WANT_READ/WRITE or TLS_ERROR
 * and never blocks (the fd is non-blocking; OpenSSL only reads/writes it). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/tls_int.h"

#include "core/banned.h"

void tls_conn_init(struct tls_conn *c, SSL *ssl)
{
    memset(c, 0, sizeof(*c));
    c->ssl = ssl;
    c->alert = -1;
}

void tls_conn_free(struct tls_conn *c)
{
    SSL_free(c->ssl);
    c->ssl = NULL;
}

bool tls_conn_release_buffers(struct tls_conn *c)
{
    if (!c || !c->ssl || SSL_pending(c->ssl) > 0 || SSL_has_pending(c->ssl))
        return false;
    return SSL_free_buffers(c->ssl) == 1;
}

/* Records why an SSL call failed (the OpenSSL error queue is per thread
 * and must be read right after the call). */
static void note_error(struct tls_conn *c, const char *op, int ssl_err, int sys_errno)
{
    unsigned long e = ERR_peek_error();
    char buf[128];

    c->fatal = true;
    /* an alert the peer sent shows as reason SSL_AD_REASON_OFFSET + its number */
    int reason = e ? ERR_GET_REASON(e) : 0;
    if (reason > SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
        c->alert = reason - SSL_AD_REASON_OFFSET;
    if (e) {
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(c->err, sizeof(c->err), "%s: %s", op, buf);
    } else if (ssl_err == SSL_ERROR_SYSCALL && sys_errno) {
        snprintf(c->err, sizeof(c->err), "%s: %s", op, strerror(sys_errno));
    } else if (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN) {
        snprintf(c->err, sizeof(c->err), "%s: peer closed the connection", op);
    } else {
        snprintf(c->err, sizeof(c->err), "%s: TLS error %d", op, ssl_err);
    }
    ERR_clear_error();
}

/* Maps the result of an SSL_* call that returned r <= 0. */
static int map_result(struct tls_conn *c, const char *op, int r)
{
    int saved = errno;
    int e = SSL_get_error(c->ssl, r);

    if (e == SSL_ERROR_WANT_READ)
        return TLS_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return TLS_WANT_WRITE;
    note_error(c, op, e, e == SSL_ERROR_SYSCALL ? saved : 0);
    return TLS_ERROR;
}

int tls_conn_handshake(struct tls_conn *c)
{
    int r;
    if (c->fatal)
        return TLS_ERROR;
    ERR_clear_error();
    errno = 0;
    r = SSL_do_handshake(c->ssl);
    if (r == 1)
        return 0;
    return map_result(c, "handshake", r);
}

ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len)
{
    size_t got = 0;
    int r, e;

    if (c->eof)
        return 0;
    if (c->fatal)
        return TLS_ERROR;
    if (len == 0)
        return 0;
    ERR_clear_error();
    errno = 0;
    r = SSL_read_ex(c->ssl, buf, len, &got);
    if (r == 1)
        return (ssize_t)got;
    e = SSL_get_error(c->ssl, 0);
    if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
        c->eof = true;
        return 0;
    }
    if (e == SSL_ERROR_SSL &&
        ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        /* TCP FIN without close_notify: common in practice; the caller
         * decides whether the data it has is complete (HTTP framing). */
        c->eof = c->eof_abrupt = true;
        c->fatal = true; /* OpenSSL forbids a shutdown after this */
        ERR_clear_error();
        return 0;
    }
    return map_result(c, "read", 0);
}

ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t len)
{
    size_t put = 0;
    int r;

    if (c->fatal)
        return TLS_ERROR;
    if (len == 0)
        return 0;
    ERR_clear_error();
    errno = 0;
    r = SSL_write_ex(c->ssl, buf, len, &put);
    if (r == 1)
        return (ssize_t)put;
    return map_result(c, "write", 0);
}

int tls_conn_shutdown(struct tls_conn *c)
{
    int r;
    if (c->fatal || !c->ssl || !SSL_is_init_finished(c->ssl))
        return 0; /* nothing may or needs to be sent */
    ERR_clear_error();
    errno = 0;
    r = SSL_shutdown(c->ssl);
    if (r >= 0)
        return 0; /* 0: our close_notify is out; we do not wait for theirs */
    r = map_result(c, "shutdown", r);
    return r;
}

bool tls_conn_resumed(const struct tls_conn *c)
{
    return c->ssl && SSL_session_reused(c->ssl);
}

bool tls_conn_pending(const struct tls_conn *c)
{
    return c->ssl && SSL_has_pending(c->ssl);
}

const char *tls_conn_alpn(const struct tls_conn *c, char *buf, size_t cap)
{
    const unsigned char *p = NULL;
    unsigned int n = 0;
    if (cap == 0)
        return "";
    buf[0] = '\0';
    SSL_get0_alpn_selected(c->ssl, &p, &n);
    if (p && n)
        snprintf(buf, cap, "%.*s", (int)n, (const char *)p);
    return buf;
}

const char *tls_conn_failure(const struct tls_conn *c, char *detail, size_t cap)
{
    long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;

    if (v != X509_V_OK) {
        /* The verify callback in client.c stored the failing depth and
         * subject; the error string is OpenSSL's. */
        const char *where = c->ssl ? tls_client_verify_where(c->ssl) : NULL;
        snprintf(detail, cap, "certificate verify failed: %s%s%s",
                 X509_verify_cert_error_string(v), where && *where ? " " : "",
                 where ? where : "");
        return TLS_REASON_UPSTREAM_INVALID;
    }
    snprintf(detail, cap, "%s", c->err[0] ? c->err : "handshake failed");
    return TLS_REASON_UPSTREAM_HANDSHAKE;
}

static int g_ex_idx = -1;
static pthread_once_t g_ex_once = PTHREAD_ONCE_INIT;

static void ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

static void ex_init(void)
{
    g_ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, ex_free);
}

int tls_ssl_ex_index(void)
{
    pthread_once(&g_ex_once, ex_init);
    return g_ex_idx;
}
