/* tls/server: the client-facing SSL_CTX that serves every inspected host
 * of one CA, choosing the leaf per connection from the SNI. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "tls/tls_int.h"

#include "core/log.h"

#include "core/banned.h"

/* Server-side session cache (TLS 1.2 session ids; TLS 1.3 uses stateless
 * tickets). When full, OpenSSL drops the oldest entries. */
#define SERVER_SESSION_CACHE 4096
static const unsigned char session_ctx_id[] = "cordon-inspect";

struct server_ssl_data {
    unsigned flags;
    bool has_connect_host;
    char connect_host[TLS_NAME_MAX + 1]; /* canonical */
    char name[TLS_NAME_MAX + 1];         /* the leaf's name, once chosen */
};

static struct server_ssl_data *ssl_data(SSL *ssl)
{
    int i = tls_ssl_ex_index();
    return i >= 0 ? SSL_get_ex_data(ssl, i) : NULL;
}

const char *tls_server_name(SSL *ssl)
{
    struct server_ssl_data *d = ssl_data(ssl);
    return d && d->name[0] ? d->name : NULL;
}

/* Runs on every ClientHello, with or without SNI (OpenSSL >= 1.1.1 calls
 * it in both cases). Picks the name, gets the leaf, installs it. */
static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    struct tls_ca *ca = arg;
    struct server_ssl_data *d = ssl_data(ssl);
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    char canon[TLS_NAME_MAX + 1];
    X509 *leaf = NULL;
    bool is_ip;
    int rc;

    if (sni) {
        if (tls_name_canon(sni, strlen(sni), canon, sizeof(canon), &is_ip)) {
            *alert = SSL_AD_UNRECOGNIZED_NAME;
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        }
        if (d && (d->flags & TLS_SERVER_SNI_MUST_MATCH) && d->has_connect_host &&
            strcmp(canon, d->connect_host) != 0) {
            *alert = SSL_AD_UNRECOGNIZED_NAME;
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        }
    } else if (d && d->has_connect_host) {
        memcpy(canon, d->connect_host, sizeof(canon));
    } else {
        *alert = SSL_AD_UNRECOGNIZED_NAME; /* no name to mint a leaf for */
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    rc = tls_leaf_get(ca, canon, &leaf);
    if (rc) {
        log_warn("tls: no leaf certificate for %s: %s", canon, strerror(-rc));
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (SSL_use_certificate(ssl, leaf) != 1 || SSL_use_PrivateKey(ssl, tls_leaf_key(ca)) != 1) {
        X509_free(leaf);
        ERR_clear_error();
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    X509_free(leaf); /* the SSL holds its own reference */
    if (d)
        memcpy(d->name, canon, sizeof(d->name));
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN (RFC 7301 §3.2): choose http/1.1; a client that offers protocols
 * but not http/1.1 (an h2-only gRPC client) gets no_application_protocol
 * now rather than an HTTP/1 parser error later. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const char h11[] = "http/1.1";
    unsigned int i = 0;

    while (i < inlen) {
        unsigned int n = in[i];
        if (n == 0 || n > inlen - i - 1)
            break;
        if (n == sizeof(h11) - 1 && memcmp(in + i + 1, h11, n) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int tls_server_ctx_new(struct tls_ca *ca, SSL_CTX **out)
{
    SSL_CTX *ctx;

    *out = NULL;
    if (tls_ssl_ex_index() < 0)
        return -ENOMEM;
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ERR_clear_error();
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* read whole records at once (one read(2), not header then body) */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, ca);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, SERVER_SESSION_CACHE);
    SSL_CTX_set_num_tickets(ctx, 1);
    if (SSL_CTX_set_session_id_context(ctx, session_ctx_id, sizeof(session_ctx_id) - 1) != 1) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return -ENOMEM;
    }
    *out = ctx;
    return 0;
}

int tls_server_ssl_new(SSL_CTX *ctx, int fd, const char *connect_host, unsigned flags, SSL **out)
{
    struct server_ssl_data *d = NULL;
    bool d_owned = false;
    bool is_ip;
    SSL *ssl = NULL;
    int rc = -ENOMEM;

    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        goto out;
    d->flags = flags;
    if (connect_host) {
        if (tls_name_canon(connect_host, strlen(connect_host), d->connect_host,
                           sizeof(d->connect_host), &is_ip)) {
            rc = -EINVAL;
            goto out;
        }
        d->has_connect_host = true;
    }
    ssl = SSL_new(ctx);
    if (!ssl || SSL_set_ex_data(ssl, tls_ssl_ex_index(), d) != 1)
        goto out;
    d_owned = true;
    if (SSL_set_fd(ssl, fd) != 1)
        goto out;
    SSL_set_accept_state(ssl);
    *out = ssl;
    ssl = NULL;
    rc = 0;
out:
    if (rc) {
        ERR_clear_error();
        if (!d_owned)
            free(d);
        SSL_free(ssl);
    }
    return rc;
}
