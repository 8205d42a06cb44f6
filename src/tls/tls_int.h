/* tls internals shared by the files of src/tls/ (not for other modules). */
#ifndef CORDON_TLS_TLS_INT_H
#define CORDON_TLS_TLS_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <sys/types.h>
#include <time.h>

#include "core/lru.h"
#include "tls/tls.h"

/* ---- the CA ---- */

struct tls_ca {
    X509 *cert;
    EVP_PKEY *key;       /* CA private key */
    EVP_PKEY *leaf_key;  /* the one key of every leaf */
    time_t not_after;    /* CA expiry (epoch seconds) */
    uint32_t leaf_validity_s;
    /* Every leaf starts as a copy of this template: version, issuer,
     * leaf_key's public key and the extensions identical on every leaf
     * (basicConstraints, keyUsage, extendedKeyUsage, SKI, AKI). Copying is
     * ~6 us where X509_set_pubkey on a provider key costs ~200 us
     * (OpenSSL 3.0 encodes and re-decodes the key). */
    X509 *leaf_template;

    pthread_mutex_t lock; /* guards leaves and stats */
    struct lru *leaves;
    struct tls_leaf_stats stats;
};

/* Finishes a CA whose cert and key are set: leaf key, leaf extensions,
 * cache. Returns 0 or -errno. */
int tls_ca_setup(struct tls_ca *ca, const struct tls_ca_opts *opts, char *err, size_t errlen);

/* For an upstream SSL made by tls_client_ssl_new whose verification
 * failed: "(depth N, subject ...; expected host H)", or NULL. */
const char *tls_client_verify_where(SSL *ssl);

/* err helpers: format into err (if not NULL) and append the first OpenSSL
 * error (if any), clearing the OpenSSL error queue. */
void tls_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void tls_errf_ssl(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes data to path atomically: a temporary in the same directory
 * (created 0600, then chmod'ed to mode), fsync, rename. On failure the
 * temporary is removed and path is untouched. Returns 0 or -errno. */
int tls_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                          size_t errlen) __attribute__((warn_unused_result));

/* ASN1_TIME -> epoch seconds. Returns 0 or -EINVAL. */
int tls_asn1_time_epoch(const ASN1_TIME *t, time_t *out);
/* Writes a random positive serial (127 bits) into x. Returns 0 or -EIO. */
int tls_set_random_serial(X509 *x);

/* The one SSL ex_data index for cordon's per-SSL data (client or server
 * side; an SSL is only ever one of them). The data is malloc'ed and freed
 * with the SSL. Returns the index, or -1 if OpenSSL could not make one. */
int tls_ssl_ex_index(void);

#endif
