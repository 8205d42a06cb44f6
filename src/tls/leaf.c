/* tls/leaf: host names, minting leaf certificates, and the leaf LRU. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "tls/tls_int.h"

#include "core/banned.h"

/* RFC 5280 upper bound for a CommonName (ub-common-name). */
#define CN_MAX 64
/* A cached leaf is re-minted this long before its notAfter. */
#define RENEW_MARGIN_S (24 * 3600)

struct leaf_entry {
    X509 *cert;
    time_t renew_at;
};

static void leaf_entry_free(void *p)
{
    struct leaf_entry *e = p;
    if (!e)
        return;
    X509_free(e->cert);
    free(e);
}

/* ---- names ---- */

static bool dns_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int tls_name_canon(const char *in, size_t len, char *out, size_t cap, bool *is_ip)
{
    char buf[TLS_NAME_MAX + 3];
    unsigned char addr[16];
    size_t label = 0;

    *is_ip = false;
    if (len == 0 || len >= sizeof(buf) || cap < TLS_NAME_MAX + 1 || memchr(in, '\0', len))
        return -EINVAL;
    memcpy(buf, in, len);
    buf[len] = '\0';

    if (buf[0] == '[') { /* bracketed IPv6 literal, as in a CONNECT target */
        if (len < 3 || buf[len - 1] != ']')
            return -EINVAL;
        buf[len - 1] = '\0';
        if (inet_pton(AF_INET6, buf + 1, addr) != 1)
            return -EINVAL;
        if (!inet_ntop(AF_INET6, addr, out, (socklen_t)cap))
            return -EINVAL;
        *is_ip = true;
        return 0;
    }
    if (strchr(buf, ':')) {
        if (inet_pton(AF_INET6, buf, addr) != 1 || !inet_ntop(AF_INET6, addr, out, (socklen_t)cap))
            return -EINVAL;
        *is_ip = true;
        return 0;
    }
    if (inet_pton(AF_INET, buf, addr) == 1) {
        if (!inet_ntop(AF_INET, addr, out, (socklen_t)cap))
            return -EINVAL;
        *is_ip = true;
        return 0;
    }

    if (buf[len - 1] == '.') /* one trailing dot: the absolute form of the same name */
        buf[--len] = '\0';
    if (len == 0 || len > TLS_NAME_MAX)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c == '.') {
            if (label == 0)
                return -EINVAL; /* empty label */
            label = 0;
        } else if (dns_char_ok(c)) {
            if (++label > 63)
                return -EINVAL;
        } else {
            return -EINVAL;
        }
        out[i] = (char)c;
    }
    if (label == 0)
        return -EINVAL;
    out[len] = '\0';
    return 0;
}

/* ---- CA set-up for leaves ---- */

static int add_ext_conf(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, v3, nid, value);
    int ok;
    if (!ext)
        return -EIO;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -EIO;
}

int tls_ca_setup(struct tls_ca *ca, const struct tls_ca_opts *opts, char *err, size_t errlen)
{
    size_t cap = opts && opts->leaf_cache_cap ? opts->leaf_cache_cap : TLS_LEAF_CACHE_DEFAULT;
    X509 *t;
    X509V3_CTX v3;

    ca->leaf_validity_s =
        opts && opts->leaf_validity_s ? opts->leaf_validity_s : TLS_LEAF_VALIDITY_DEFAULT;
    if (tls_asn1_time_epoch(X509_get0_notAfter(ca->cert), &ca->not_after)) {
        tls_errf(err, errlen, "CA: unreadable notAfter");
        return -EINVAL;
    }
    ca->leaf_key = EVP_EC_gen("P-256");
    t = ca->leaf_template = X509_new();
    if (!ca->leaf_key || !t || X509_set_version(t, X509_VERSION_3) != 1 ||
        X509_set_issuer_name(t, X509_get_subject_name(ca->cert)) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(t), 0) || !X509_gmtime_adj(X509_getm_notAfter(t), 0) ||
        X509_set_pubkey(t, ca->leaf_key) != 1) {
        tls_errf_ssl(err, errlen, "CA: generating the leaf key failed");
        return -EIO;
    }
    X509V3_set_ctx(&v3, ca->cert, t, NULL, NULL, 0);
    if (add_ext_conf(t, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
        add_ext_conf(t, &v3, NID_key_usage, "critical,digitalSignature") ||
        add_ext_conf(t, &v3, NID_ext_key_usage, "serverAuth") ||
        add_ext_conf(t, &v3, NID_subject_key_identifier, "hash") ||
        add_ext_conf(t, &v3, NID_authority_key_identifier, "keyid:always")) {
        tls_errf_ssl(err, errlen, "CA: building leaf extensions failed");
        return -EIO;
    }
    /* Signed only so that it encodes completely (X509_dup round-trips
     * through DER); every copy is re-signed. */
    if (X509_sign(t, ca->key, EVP_sha256()) <= 0) {
        tls_errf_ssl(err, errlen, "CA: signing the leaf template failed");
        return -EIO;
    }
    ca->leaves = lru_new(cap, leaf_entry_free);
    if (!ca->leaves) {
        tls_errf(err, errlen, "CA: cannot allocate a leaf cache of %zu entries", cap);
        return -ENOMEM;
    }
    pthread_mutex_init(&ca->lock, NULL);
    ca->stats.cap = cap;
    return 0;
}

EVP_PKEY *tls_leaf_key(const struct tls_ca *ca) { return ca->leaf_key; }

/* ---- minting ---- */

static int add_san(X509 *x, const char *name, bool is_ip)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    int rc = -EIO;

    if (!gens || !gn)
        goto out;
    if (is_ip) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);
        if (!ip)
            goto out;
        GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
    } else {
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (!s)
            goto out;
        if (ASN1_STRING_set(s, name, (int)strlen(name)) != 1) {
            ASN1_IA5STRING_free(s);
            goto out;
        }
        GENERAL_NAME_set0_value(gn, GEN_DNS, s);
    }
    if (!sk_GENERAL_NAME_push(gens, gn))
        goto out;
    gn = NULL;
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        goto out;
    rc = 0;
out:
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(gens);
    return rc;
}

/* Mints one leaf for a canonical name. Returns 0 or -errno. */
static int leaf_mint(struct tls_ca *ca, const char *name, bool is_ip, X509 **out,
                     time_t *renew_at)
{
    X509 *x = X509_dup(ca->leaf_template);
    X509_NAME *subj = X509_NAME_new();
    time_t now = time(NULL);
    time_t not_after = now + (time_t)ca->leaf_validity_s;
    bool clamped = false;
    size_t cnlen = strlen(name);
    int rc = -EIO;

    *out = NULL;
    if (!x || !subj) {
        rc = -ENOMEM;
        goto out;
    }
    if (cnlen > CN_MAX)
        cnlen = CN_MAX; /* the SAN carries the full name */
    if (tls_set_random_serial(x) ||
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)name,
                                   (int)cnlen, -1, 0) != 1 ||
        X509_set_subject_name(x, subj) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -TLS_BACKDATE_S))
        goto out;
    if (not_after >= ca->not_after) {
        clamped = true;
        not_after = ca->not_after;
        if (X509_set1_notAfter(x, X509_get0_notAfter(ca->cert)) != 1)
            goto out;
    } else if (!X509_gmtime_adj(X509_getm_notAfter(x), (long)ca->leaf_validity_s)) {
        goto out;
    }
    if (add_san(x, name, is_ip))
        goto out;
    if (X509_sign(x, ca->key, EVP_sha256()) <= 0)
        goto out;
    if (clamped) {
        *renew_at = not_after; /* cannot do better before the CA is renewed */
    } else {
        time_t margin = RENEW_MARGIN_S;
        if ((time_t)ca->leaf_validity_s / 4 < margin)
            margin = (time_t)ca->leaf_validity_s / 4;
        *renew_at = not_after - margin;
    }
    *out = x;
    x = NULL;
    rc = 0;
out:
    if (rc)
        ERR_clear_error();
    X509_NAME_free(subj);
    X509_free(x);
    return rc;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int tls_leaf_get(struct tls_ca *ca, const char *name, X509 **out)
{
    char key[TLS_NAME_MAX + 1];
    struct leaf_entry *e, *ne = NULL;
    X509 *minted = NULL;
    time_t renew_at = 0;
    bool is_ip;
    uint64_t t0, dt;
    int rc;

    *out = NULL;
    if (!name || tls_name_canon(name, strlen(name), key, sizeof(key), &is_ip))
        return -EINVAL;
    if (time(NULL) >= ca->not_after)
        return -EKEYEXPIRED;

    pthread_mutex_lock(&ca->lock);
    e = lru_get(ca->leaves, key);
    if (e && time(NULL) < e->renew_at) {
        X509_up_ref(e->cert);
        *out = e->cert;
        ca->stats.hits++;
        pthread_mutex_unlock(&ca->lock);
        return 0;
    }
    ca->stats.misses++;
    pthread_mutex_unlock(&ca->lock);

    /* Mint outside the lock: other names keep being served meanwhile. */
    t0 = mono_ns();
    rc = leaf_mint(ca, key, is_ip, &minted, &renew_at);
    dt = mono_ns() - t0;
    if (rc)
        return rc;
    ne = malloc(sizeof(*ne));
    if (!ne) {
        X509_free(minted);
        return -ENOMEM;
    }
    ne->cert = minted;
    ne->renew_at = renew_at;

    pthread_mutex_lock(&ca->lock);
    ca->stats.mints++;
    ca->stats.mint_ns_total += dt;
    e = lru_get(ca->leaves, key);
    if (e && time(NULL) < e->renew_at) {
        /* Another thread minted the same name meanwhile: serve one copy. */
        X509_up_ref(e->cert);
        *out = e->cert;
        pthread_mutex_unlock(&ca->lock);
        leaf_entry_free(ne);
        return 0;
    }
    X509_up_ref(minted);
    rc = lru_put(ca->leaves, key, ne, &ca->stats.evictions);
    pthread_mutex_unlock(&ca->lock);
    if (rc) {
        /* No memory for the entry: still serve the leaf, uncached. */
        X509_free(minted); /* the reference meant for the cache */
        free(ne);
    }
    *out = minted;
    return 0;
}

void tls_leaf_stats(struct tls_ca *ca, struct tls_leaf_stats *out)
{
    pthread_mutex_lock(&ca->lock);
    *out = ca->stats;
    out->size = lru_len(ca->leaves);
    out->cap = lru_cap(ca->leaves);
    pthread_mutex_unlock(&ca->lock);
}
