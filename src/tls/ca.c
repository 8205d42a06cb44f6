/* tls/ca: generating, loading, saving and describing the sandbox CA. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tls/tls_int.h"

#include "core/banned.h"

const char TLS_REASON_UPSTREAM_INVALID[] = "upstream_tls_invalid";
const char TLS_REASON_UPSTREAM_HANDSHAKE[] = "upstream_tls_handshake";
const char TLS_REASON_CLIENT_HANDSHAKE[] = "client_tls_handshake";

/* ---- small helpers ---- */

static void verrf(char *err, size_t errlen, bool with_ssl, const char *fmt, va_list ap)
{
    unsigned long e = with_ssl ? ERR_get_error() : 0;
    if (err && errlen) {
        int n = vsnprintf(err, errlen, fmt, ap);
        if (e && n >= 0 && (size_t)n < errlen) {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof(buf));
            snprintf(err + n, errlen - (size_t)n, " (%s)", buf);
        }
    }
    if (with_ssl)
        ERR_clear_error();
}

void tls_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(err, errlen, false, fmt, ap);
    va_end(ap);
}

void tls_errf_ssl(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(err, errlen, true, fmt, ap);
    va_end(ap);
}

int tls_asn1_time_epoch(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return -EINVAL;
    *out = timegm(&tm);
    return 0;
}

int tls_set_random_serial(X509 *x)
{
    unsigned char b[16];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    int rc = -EIO;

    if (RAND_bytes(b, sizeof(b)) != 1)
        goto out;
    b[0] &= 0x7f; /* positive, at most 127 bits (RFC 5280 §4.1.2.2: <= 20 octets) */
    b[0] |= 0x40; /* never zero, fixed length */
    bn = BN_bin2bn(b, sizeof(b), NULL);
    if (!bn)
        goto out;
    ai = BN_to_ASN1_INTEGER(bn, NULL);
    if (!ai || X509_set_serialNumber(x, ai) != 1)
        goto out;
    rc = 0;
out:
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return rc;
}

/* Adds one extension given in openssl.cnf syntax (constants only, never
 * peer data). Returns 0 or -EIO. */
static int add_ext_conf(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    int ok;
    if (!ext)
        return -EIO;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -EIO;
}

/* ---- generate ---- */

int tls_ca_generate(const struct tls_ca_opts *opts, struct tls_ca **out, char *err,
                    size_t errlen)
{
    struct tls_ca *ca = NULL;
    X509_NAME *name = NULL;
    unsigned char idb[8];
    char cn[64];
    uint32_t validity = opts && opts->ca_validity_s ? opts->ca_validity_s : TLS_CA_VALIDITY_DEFAULT;
    X509V3_CTX v3;
    int rc = -EIO;

    *out = NULL;
    ca = calloc(1, sizeof(*ca));
    if (!ca) {
        rc = -ENOMEM;
        tls_errf(err, errlen, "CA: out of memory");
        goto out;
    }
    ca->key = EVP_EC_gen("P-256");
    ca->cert = X509_new();
    name = X509_NAME_new();
    if (!ca->key || !ca->cert || !name) {
        tls_errf_ssl(err, errlen, "CA: generating the P-256 key failed");
        goto out;
    }
    if (RAND_bytes(idb, sizeof(idb)) != 1) {
        tls_errf_ssl(err, errlen, "CA: no randomness for the CA id");
        goto out;
    }
    snprintf(cn, sizeof(cn), "cordon sandbox CA %02x%02x%02x%02x%02x%02x%02x%02x", idb[0],
             idb[1], idb[2], idb[3], idb[4], idb[5], idb[6], idb[7]);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"cordon", -1,
                                   -1, 0) != 1 ||
        X509_set_version(ca->cert, X509_VERSION_3) != 1 || tls_set_random_serial(ca->cert) ||
        X509_set_subject_name(ca->cert, name) != 1 || X509_set_issuer_name(ca->cert, name) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(ca->cert), -TLS_BACKDATE_S) ||
        !X509_gmtime_adj(X509_getm_notAfter(ca->cert), (long)validity) ||
        X509_set_pubkey(ca->cert, ca->key) != 1) {
        tls_errf_ssl(err, errlen, "CA: building the certificate failed");
        goto out;
    }
    X509V3_set_ctx(&v3, ca->cert, ca->cert, NULL, NULL, 0);
    if (add_ext_conf(ca->cert, &v3, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
        add_ext_conf(ca->cert, &v3, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        add_ext_conf(ca->cert, &v3, NID_subject_key_identifier, "hash") ||
        add_ext_conf(ca->cert, &v3, NID_authority_key_identifier, "keyid:always")) {
        tls_errf_ssl(err, errlen, "CA: adding extensions failed");
        goto out;
    }
    if (X509_sign(ca->cert, ca->key, EVP_sha256()) <= 0) {
        tls_errf_ssl(err, errlen, "CA: self-signing failed");
        goto out;
    }
    rc = tls_ca_setup(ca, opts, err, errlen);
    if (rc)
        goto out;
    *out = ca;
    ca = NULL;
out:
    X509_NAME_free(name);
    tls_ca_free(ca);
    return rc;
}

/* ---- load ---- */

static int no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1; /* encrypted keys are refused rather than prompted for */
}

int tls_cert_read(const char *path, X509 **out, char *err, size_t errlen)
{
    BIO *b = BIO_new_file(path, "r");
    *out = NULL;
    if (!b) {
        int e = errno ? errno : ENOENT;
        ERR_clear_error();
        tls_errf(err, errlen, "%s: cannot open the CA certificate: %s (run 'cordon ca init')",
                 path, strerror(e));
        return -e;
    }
    *out = PEM_read_bio_X509(b, NULL, no_passphrase_cb, NULL);
    BIO_free(b);
    if (!*out) {
        tls_errf_ssl(err, errlen, "%s: not a PEM certificate", path);
        return -EINVAL;
    }
    return 0;
}

/* Opens the key file without following a symlink and checks, on the open
 * file, that it is a regular file owned by us with no group/other bits:
 * otherwise something other than the proxy may have read it. Returns an
 * fd or -errno. */
static int open_key_file(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    int rc;

    if (fd < 0) {
        rc = -errno;
        if (errno == ELOOP)
            tls_errf(err, errlen, "%s: the CA key is a symlink; refusing it (store the key "
                     "itself there, mode 0600)", path);
        else
            tls_errf(err, errlen, "%s: cannot open the CA key: %s (run 'cordon ca init')", path,
                     strerror(errno));
        return rc == -ELOOP ? -EPERM : rc;
    }
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        tls_errf(err, errlen, "%s: fstat: %s", path, strerror(errno));
        goto fail;
    }
    rc = -EPERM;
    if (!S_ISREG(st.st_mode)) {
        tls_errf(err, errlen, "%s: the CA key is not a regular file", path);
        goto fail;
    }
    if (st.st_uid != geteuid()) {
        tls_errf(err, errlen, "%s: the CA key is owned by uid %u, not by uid %u running cordon; "
                 "chown it or regenerate with 'cordon ca init --force'",
                 path, (unsigned)st.st_uid, (unsigned)geteuid());
        goto fail;
    }
    if (st.st_mode & 077) {
        tls_errf(err, errlen, "%s: the CA key has mode %04o, readable beyond its owner; "
                 "run 'chmod 600 %s' (and consider it leaked: 'cordon ca init --force')",
                 path, (unsigned)(st.st_mode & 07777), path);
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return rc;
}

int tls_ca_load(const char *dir, const struct tls_ca_opts *opts, struct tls_ca **out,
                char *err, size_t errlen)
{
    char cpath[4096], kpath[4096];
    struct tls_ca *ca = NULL;
    BIO *b = NULL;
    int kfd;
    int rc;
    int kt;

    *out = NULL;
    if ((size_t)snprintf(cpath, sizeof(cpath), "%s/%s", dir, TLS_CA_CERT_FILE) >= sizeof(cpath) ||
        (size_t)snprintf(kpath, sizeof(kpath), "%s/%s", dir, TLS_CA_KEY_FILE) >= sizeof(kpath)) {
        tls_errf(err, errlen, "%s: CA directory path too long", dir);
        return -ENAMETOOLONG;
    }
    ca = calloc(1, sizeof(*ca));
    if (!ca) {
        tls_errf(err, errlen, "CA: out of memory");
        return -ENOMEM;
    }
    rc = tls_cert_read(cpath, &ca->cert, err, errlen);
    if (rc)
        goto out;
    kfd = open_key_file(kpath, err, errlen);
    if (kfd < 0) {
        rc = kfd;
        goto out;
    }
    b = BIO_new_fd(kfd, BIO_CLOSE);
    if (!b) {
        close(kfd);
        rc = -ENOMEM;
        tls_errf_ssl(err, errlen, "%s: out of memory", kpath);
        goto out;
    }
    ca->key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase_cb, NULL);
    if (!ca->key) {
        rc = -EINVAL;
        tls_errf_ssl(err, errlen, "%s: not an unencrypted PEM private key", kpath);
        goto out;
    }
    kt = EVP_PKEY_get_base_id(ca->key);
    if (kt != EVP_PKEY_EC && kt != EVP_PKEY_RSA) {
        rc = -EINVAL;
        tls_errf(err, errlen, "%s: the CA key must be ECDSA or RSA (found %s)", kpath,
                 OBJ_nid2sn(kt));
        goto out;
    }
    if (!(X509_get_extension_flags(ca->cert) & EXFLAG_CA) ||
        ((X509_get_extension_flags(ca->cert) & EXFLAG_KUSAGE) &&
         !(X509_get_key_usage(ca->cert) & KU_KEY_CERT_SIGN))) {
        rc = -EINVAL;
        tls_errf(err, errlen, "%s: not a CA certificate (needs basicConstraints CA:TRUE and "
                 "keyUsage keyCertSign); create one with 'cordon ca init'", cpath);
        goto out;
    }
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        rc = -EINVAL;
        ERR_clear_error();
        tls_errf(err, errlen, "%s does not match %s (the key is not the certificate's); "
                 "restore the right pair or regenerate both with 'cordon ca init --force'",
                 kpath, cpath);
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(ca->cert)) > 0 ||
        X509_cmp_current_time(X509_get0_notAfter(ca->cert)) < 0) {
        rc = -EKEYEXPIRED;
        tls_errf(err, errlen, "%s: the CA is outside its validity period (check the clock, or "
                 "regenerate with 'cordon ca init --force')", cpath);
        goto out;
    }
    rc = tls_ca_setup(ca, opts, err, errlen);
    if (rc)
        goto out;
    *out = ca;
    ca = NULL;
out:
    BIO_free(b);
    tls_ca_free(ca);
    return rc;
}

/* ---- save ---- */

/* mkdir -p with mode 0700 for the components it creates. */
static int mkdir_p(const char *dir)
{
    char p[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(p))
        return -ENAMETOOLONG;
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return -errno;
        p[i] = c;
    }
    return 0;
}

enum pem_kind { PEM_CERT, PEM_KEY };

/* Serializes a certificate or key as PEM and writes it atomically to path.
 * The key's PEM text is cleansed from memory afterwards. */
static int write_pem(const char *path, enum pem_kind kind, const void *obj, mode_t mode,
                     char *err, size_t errlen)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    long n;
    int ok = 0;
    int rc = -ENOMEM;

    if (!b) {
        tls_errf(err, errlen, "%s: out of memory", path);
        return rc;
    }
    switch (kind) {
    case PEM_CERT:
        ok = PEM_write_bio_X509(b, (X509 *)obj);
        break;
    case PEM_KEY:
        ok = PEM_write_bio_PrivateKey(b, (EVP_PKEY *)obj, NULL, NULL, 0, NULL, NULL);
        break;
    }
    n = BIO_get_mem_data(b, &p);
    if (ok != 1 || n <= 0) {
        tls_errf_ssl(err, errlen, "%s: encoding PEM failed", path);
        goto out;
    }
    rc = tls_write_file_atomic(path, p, (size_t)n, mode, err, errlen);
    if (kind == PEM_KEY)
        OPENSSL_cleanse(p, (size_t)n);
out:
    BIO_free(b);
    return rc;
}

int tls_ca_save(const struct tls_ca *ca, const char *dir, bool force, char *err, size_t errlen)
{
    char cpath[4096], kpath[4096];
    struct stat st;
    int rc;

    if ((size_t)snprintf(cpath, sizeof(cpath), "%s/%s", dir, TLS_CA_CERT_FILE) >= sizeof(cpath) ||
        (size_t)snprintf(kpath, sizeof(kpath), "%s/%s", dir, TLS_CA_KEY_FILE) >= sizeof(kpath)) {
        tls_errf(err, errlen, "%s: CA directory path too long", dir);
        return -ENAMETOOLONG;
    }
    rc = mkdir_p(dir);
    if (rc) {
        tls_errf(err, errlen, "%s: cannot create the CA directory: %s", dir, strerror(-rc));
        return rc;
    }
    if (!force) {
        const char *exists = lstat(kpath, &st) == 0 ? kpath : lstat(cpath, &st) == 0 ? cpath : NULL;
        if (exists) {
            tls_errf(err, errlen, "%s already exists; pass --force to replace the CA (clients "
                     "that trust the old one will stop trusting the proxy)", exists);
            return -EEXIST;
        }
    }
    /* Key first: a crash in between leaves a mismatched pair that
     * tls_ca_load refuses by name, never a new cert with an old key. */
    rc = write_pem(kpath, PEM_KEY, ca->key, 0600, err, errlen);
    if (rc)
        return rc;
    return write_pem(cpath, PEM_CERT, ca->cert, 0644, err, errlen);
}

int tls_ca_cert_write(const struct tls_ca *ca, const char *path, char *err, size_t errlen)
{
    return write_pem(path, PEM_CERT, ca->cert, 0644, err, errlen);
}

void tls_ca_free(struct tls_ca *ca)
{
    if (!ca)
        return;
    if (ca->leaves) {
        lru_free(ca->leaves);
        pthread_mutex_destroy(&ca->lock);
    }
    X509_free(ca->leaf_template);
    EVP_PKEY_free(ca->leaf_key);
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca);
}

X509 *tls_ca_cert(const struct tls_ca *ca) { return ca->cert; }

/* ---- describing certificates ---- */

static void time_str(const ASN1_TIME *t, char *out, size_t cap)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1 || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, cap, "?");
}

int tls_cert_info(X509 *cert, struct tls_cert_info *info)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    BIO *b = NULL;
    BIGNUM *bn = NULL;
    char *hex = NULL;
    int n;
    int rc = -EINVAL;

    memset(info, 0, sizeof(*info));
    b = BIO_new(BIO_s_mem());
    if (!b)
        goto out;
    if (X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_ONELINE) < 0)
        goto out;
    n = BIO_read(b, info->subject, (int)sizeof(info->subject) - 1);
    info->subject[n > 0 ? n : 0] = '\0';
    if (X509_digest(cert, EVP_sha256(), md, &mdlen) != 1)
        goto out;
    for (unsigned i = 0; i < mdlen && i * 3 + 3 <= sizeof(info->fingerprint); i++)
        snprintf(info->fingerprint + i * 3, 4, i + 1 < mdlen ? "%02X:" : "%02X", md[i]);
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(info->serial, sizeof(info->serial), "%s", hex ? hex : "?");
    time_str(X509_get0_notBefore(cert), info->not_before, sizeof(info->not_before));
    time_str(X509_get0_notAfter(cert), info->not_after, sizeof(info->not_after));
    info->is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
    rc = 0;
out:
    OPENSSL_free(hex);
    BN_free(bn);
    BIO_free(b);
    ERR_clear_error();
    return rc;
}

int tls_cert_pem(X509 *cert, char **out)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    long n;
    int rc = -ENOMEM;

    *out = NULL;
    if (!b || PEM_write_bio_X509(b, cert) != 1)
        goto out;
    n = BIO_get_mem_data(b, &p);
    if (n < 0)
        goto out;
    *out = malloc((size_t)n + 1);
    if (!*out)
        goto out;
    memcpy(*out, p, (size_t)n);
    (*out)[n] = '\0';
    rc = 0;
out:
    BIO_free(b);
    return rc;
}
