/* tls/client: the upstream TLS client (trust, name checks, sessions). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/tls_int.h"

#include "core/banned.h"

#define SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define SYSTEM_HASHED_DIR "/etc/ssl/certs"

static const unsigned char alpn_http11[] = "\x08http/1.1";

struct tls_client {
    SSL_CTX *ctx;
    pthread_mutex_t lock; /* guards sessions and stats */
    struct lru *sessions; /* "host:port" -> SSL_SESSION* */
    struct tls_client_stats stats;
};

/* Per-SSL data, freed with the SSL. */
struct client_ssl_data {
    struct tls_client *owner;
    char key[TLS_NAME_MAX + 16];   /* "host:port", the session cache key */
    char host[TLS_NAME_MAX + 1];   /* canonical host */
    char where[512];               /* first verification failure */
};

static struct client_ssl_data *ssl_data(SSL *ssl)
{
    int i = tls_ssl_ex_index();
    return i >= 0 ? SSL_get_ex_data(ssl, i) : NULL;
}

const char *tls_client_verify_where(SSL *ssl)
{
    struct client_ssl_data *d = ssl_data(ssl);
    return d && d->where[0] ? d->where : NULL;
}

/* Keeps OpenSSL's verdict; remembers where the first failure happened so
 * the denial can say which certificate and which name. */
static int verify_cb(int ok, X509_STORE_CTX *sctx)
{
    SSL *ssl;
    struct client_ssl_data *d;
    X509 *cert;
    char subj[160] = "?";
    BIO *b;

    if (ok)
        return ok;
    ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    d = ssl ? ssl_data(ssl) : NULL;
    if (!d || d->where[0])
        return ok;
    cert = X509_STORE_CTX_get_current_cert(sctx);
    b = BIO_new(BIO_s_mem());
    if (b && cert && X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_ONELINE) >= 0) {
        int n = BIO_read(b, subj, (int)sizeof(subj) - 1);
        subj[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    snprintf(d->where, sizeof(d->where), "(depth %d, subject %s; expected host %s)",
             X509_STORE_CTX_get_error_depth(sctx), subj, d->host);
    return ok;
}

/* OpenSSL hands us each new session (TLS 1.3 tickets arrive after the
 * handshake); keep the latest one per host:port. We store a copy: OpenSSL
 * marks the connection's own session object not resumable when the SSL is
 * freed without a close_notify, which is how most upstream connections end.
 * Returns 0: OpenSSL keeps (and drops) its reference. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct client_ssl_data *d = ssl_data(ssl);
    struct tls_client *c;
    SSL_SESSION *copy;

    if (!d || !d->owner || !SSL_SESSION_is_resumable(sess))
        return 0;
    copy = SSL_SESSION_dup(sess);
    if (!copy) {
        ERR_clear_error();
        return 0;
    }
    c = d->owner;
    pthread_mutex_lock(&c->lock);
    if (lru_put(c->sessions, d->key, copy, &c->stats.evictions) == 0) {
        c->stats.sessions_stored++;
        copy = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    SSL_SESSION_free(copy);
    return 0;
}

static void session_free(void *p) { SSL_SESSION_free(p); }

int tls_client_new(const struct tls_client_config *cfg, struct tls_client **out, char *err,
                   size_t errlen)
{
    struct tls_client *c = NULL;
    size_t cap = cfg && cfg->session_cache_cap ? cfg->session_cache_cap : TLS_CLIENT_SESSIONS_DEFAULT;
    int rc = -ENOMEM;

    *out = NULL;
    if (tls_ssl_ex_index() < 0) {
        tls_errf_ssl(err, errlen, "TLS client: no ex_data index");
        return -ENOMEM;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    c->sessions = lru_new(cap, session_free);
    if (!c->sessions) {
        free(c);
        c = NULL;
        goto oom;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->stats.cap = cap;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx)
        goto oom;
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                 SSL_MODE_RELEASE_BUFFERS);
    /* read whole records at once (one read(2), not header then body) */
    SSL_CTX_set_read_ahead(c->ctx, 1);
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION);

    if (!cfg || !cfg->no_system_trust) {
        /* Prefer the hashed directory: OpenSSL looks anchors up in it on
         * demand, so start-up does not parse ~140 certificates (tens of ms;
         * `cordon run` starts a proxy per sandbox). Without one, the default
         * paths and, explicitly, the Debian bundle (the default paths may
         * point elsewhere when OpenSSL was built with another OPENSSLDIR). */
        if (access(SYSTEM_HASHED_DIR "/ca-certificates.crt", R_OK) == 0 &&
            SSL_CTX_load_verify_dir(c->ctx, SYSTEM_HASHED_DIR) == 1) {
            /* done: lazy lookups */
        } else {
            ERR_clear_error();
            if (SSL_CTX_set_default_verify_paths(c->ctx) != 1)
                ERR_clear_error();
            if (access(SYSTEM_BUNDLE, R_OK) == 0 &&
                SSL_CTX_load_verify_locations(c->ctx, SYSTEM_BUNDLE, NULL) != 1)
                ERR_clear_error();
        }
    }
    if (cfg && cfg->extra_ca_file &&
        SSL_CTX_load_verify_locations(c->ctx, cfg->extra_ca_file, NULL) != 1) {
        rc = -EINVAL;
        tls_errf_ssl(err, errlen, "%s: cannot load upstream CA certificates (expected a PEM file "
                     "with at least one CERTIFICATE block)", cfg->extra_ca_file);
        goto out;
    }
    /* Let an operator trust an intermediate or a pinned server certificate
     * from --upstream-ca without its root. */
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(c->ctx), X509_V_FLAG_PARTIAL_CHAIN);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, verify_cb);
    if (SSL_CTX_set_alpn_protos(c->ctx, alpn_http11, sizeof(alpn_http11) - 1) != 0)
        goto oom;
    SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c->ctx, new_session_cb);
    *out = c;
    c = NULL;
    rc = 0;
    goto out;
oom:
    rc = -ENOMEM;
    tls_errf_ssl(err, errlen, "TLS client: out of memory");
out:
    tls_client_free(c);
    return rc;
}

void tls_client_free(struct tls_client *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx);
    lru_free(c->sessions);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int tls_client_ssl_new(struct tls_client *c, int fd, const char *host, uint16_t port, SSL **out)
{
    struct client_ssl_data *d = NULL;
    bool d_owned = false; /* true once the SSL frees d */
    SSL *ssl = NULL;
    SSL_SESSION *sess;
    bool is_ip;
    int rc = -ENOMEM;

    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        goto out;
    if (!host || tls_name_canon(host, strlen(host), d->host, sizeof(d->host), &is_ip)) {
        rc = -EINVAL;
        goto out;
    }
    snprintf(d->key, sizeof(d->key), is_ip && strchr(d->host, ':') ? "[%s]:%u" : "%s:%u", d->host,
             (unsigned)port);
    d->owner = c;
    ssl = SSL_new(c->ctx);
    if (!ssl || SSL_set_ex_data(ssl, tls_ssl_ex_index(), d) != 1)
        goto out;
    d_owned = true;
    if (SSL_set_fd(ssl, fd) != 1)
        goto out;
    if (is_ip) {
        /* RFC 6066 §3: no SNI for IP literals; check the iPAddress SAN. */
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), d->host) != 1)
            goto out;
    } else {
        if (SSL_set_tlsext_host_name(ssl, d->host) != 1 || SSL_set1_host(ssl, d->host) != 1)
            goto out;
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    pthread_mutex_lock(&c->lock);
    sess = lru_get(c->sessions, d->key);
    if (sess && SSL_SESSION_is_resumable(sess) && SSL_set_session(ssl, sess) == 1)
        c->stats.sessions_offered++;
    pthread_mutex_unlock(&c->lock);
    SSL_set_connect_state(ssl);
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

void tls_client_stats(struct tls_client *c, struct tls_client_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    out->size = lru_len(c->sessions);
    out->cap = lru_cap(c->sessions);
    pthread_mutex_unlock(&c->lock);
}
