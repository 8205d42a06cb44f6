/* tls/truststore: the trust bundle as a Java truststore.
 *
 * Java reads neither SSL_CERT_FILE nor PEM bundles; its default keystore
 * type is PKCS12. A PKCS12 certificate bag is a trust anchor for Java only
 * when it carries Oracle's "trusted key usage" attribute
 * (2.16.840.1.113894.746875.1.1) — keytool writes anyExtendedKeyUsage
 * there; so do we. The file holds certificates only (no key), unencrypted,
 * with an HMAC-SHA256 integrity MAC under the password "changeit" (Java's
 * conventional truststore password; it protects nothing secret, so its
 * key is derived with one iteration, as `openssl pkcs12 -nomaciter` does:
 * 10000 cost ~1.5 ms of CPU per sandbox for nothing).
 *
 * Speed (cordon run writes this file before every command starts): the
 * certificates are not parsed. Each PEM block's DER goes into a certBag
 * as the OCTET STRING it is in the file format, so building the store
 * costs base64 decoding, not X509 decoding (~1 ms instead of ~30 ms for
 * the Debian bundle); Java parses them when it loads the store. A block
 * that is not a CERTIFICATE is skipped; a certificate whose DER is not an
 * X509 is refused by Java as it would be by openssl. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls/tls.h"
#include "core/banned.h"

#define TRUSTSTORE_MAX_CERTS 4096
#define ORACLE_TRUSTED_KEY_USAGE "2.16.840.1.113894.746875.1.1"
#define ANY_EXTENDED_KEY_USAGE "2.5.29.37.0"

/* DER length octets of n into p (returns how many). */
static size_t der_len(unsigned char *p, size_t n)
{
    if (n < 0x80) {
        p[0] = (unsigned char)n;
        return 1;
    }
    size_t k = 0;
    for (size_t v = n; v; v >>= 8)
        k++;
    p[0] = (unsigned char)(0x80 | k);
    for (size_t i = 0; i < k; i++)
        p[1 + i] = (unsigned char)(n >> (8 * (k - 1 - i)));
    return 1 + k;
}

/* SafeBag { certBag OID, [0] CertBag { x509Certificate OID, [0] OCTET
 * STRING der } } (RFC 7292 4.2.3), decoded into OpenSSL's type; the
 * certificate stays an opaque OCTET STRING. */
static PKCS12_SAFEBAG *cert_bag(const unsigned char *der, size_t len)
{
    static const unsigned char oid_certbag[] = {0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                                                0x01, 0x0c, 0x0a, 0x01, 0x03};
    static const unsigned char oid_x509[] = {0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                                             0x01, 0x09, 0x16, 0x01};
    if (len == 0 || len > (1u << 24))
        return NULL;
    unsigned char l1[8], l2[8], l3[8], l4[8], l5[8];
    size_t n1 = der_len(l1, len);                                  /* OCTET STRING */
    size_t c1 = 1 + n1 + len, n2 = der_len(l2, c1);                /* [0] */
    size_t c2 = sizeof(oid_x509) + 1 + n2 + c1, n3 = der_len(l3, c2); /* CertBag */
    size_t c3 = 1 + n3 + c2, n4 = der_len(l4, c3);                 /* [0] */
    size_t c4 = sizeof(oid_certbag) + 1 + n4 + c3, n5 = der_len(l5, c4); /* SafeBag */
    size_t total = 1 + n5 + c4;
    unsigned char *buf = malloc(total), *w = buf;
    if (!buf)
        return NULL;
    *w++ = 0x30;
    memcpy(w, l5, n5), w += n5;
    memcpy(w, oid_certbag, sizeof(oid_certbag)), w += sizeof(oid_certbag);
    *w++ = 0xa0;
    memcpy(w, l4, n4), w += n4;
    *w++ = 0x30;
    memcpy(w, l3, n3), w += n3;
    memcpy(w, oid_x509, sizeof(oid_x509)), w += sizeof(oid_x509);
    *w++ = 0xa0;
    memcpy(w, l2, n2), w += n2;
    *w++ = 0x04;
    memcpy(w, l1, n1), w += n1;
    memcpy(w, der, len);
    const unsigned char *r = buf;
    PKCS12_SAFEBAG *bag = d2i_PKCS12_SAFEBAG(NULL, &r, (long)total);
    free(buf);
    return bag;
}

int tls_truststore_write(const char *bundle_pem, const char *out, char *err, size_t errcap)
{
    int rc = -EINVAL;
    FILE *in = NULL, *of = NULL;
    STACK_OF(PKCS12_SAFEBAG) *bags = sk_PKCS12_SAFEBAG_new_null();
    STACK_OF(PKCS7) *safes = sk_PKCS7_new_null();
    ASN1_OBJECT *any_eku = OBJ_txt2obj(ANY_EXTENDED_KEY_USAGE, 1);
    PKCS12 *p12 = NULL;
    size_t n = 0;
    if (!bags || !safes || !any_eku) {
        rc = -ENOMEM;
        snprintf(err, errcap, "Java truststore: out of memory");
        goto out;
    }
    if (!(in = fopen(bundle_pem, "re"))) {
        rc = -errno;
        snprintf(err, errcap, "Java truststore: %s: %s", bundle_pem, strerror(-rc));
        goto out;
    }
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long der_n = 0;
    while (n < TRUSTSTORE_MAX_CERTS && PEM_read(in, &name, &header, &der, &der_n)) {
        bool is_cert = strcmp(name, PEM_STRING_X509) == 0 ||
                       strcmp(name, PEM_STRING_X509_OLD) == 0;
        PKCS12_SAFEBAG *bag = is_cert ? cert_bag(der, (size_t)der_n) : NULL;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
        if (!is_cert)
            continue;
        char alias[32];
        snprintf(alias, sizeof(alias), "cordon-%zu", n);
        if (!bag || !PKCS12_add_friendlyname_asc(bag, alias, -1) ||
            !PKCS12_add1_attr_by_txt(bag, ORACLE_TRUSTED_KEY_USAGE, V_ASN1_OBJECT,
                                     (const unsigned char *)any_eku, -1) ||
            !sk_PKCS12_SAFEBAG_push(bags, bag)) {
            PKCS12_SAFEBAG_free(bag);
            snprintf(err, errcap, "Java truststore: cannot add certificate %zu", n);
            goto out;
        }
        n++;
    }
    ERR_clear_error(); /* the PEM reader ends with "no start line" */
    if (n == 0) {
        snprintf(err, errcap, "Java truststore: no certificate in %s", bundle_pem);
        goto out;
    }
    PKCS7 *p7 = PKCS12_pack_p7data(bags);
    if (!p7 || !sk_PKCS7_push(safes, p7)) {
        PKCS7_free(p7);
        snprintf(err, errcap, "Java truststore: cannot pack the certificates");
        goto out;
    }
    if (!(p12 = PKCS12_add_safes(safes, 0)) ||
        !PKCS12_set_mac(p12, "changeit", -1, NULL, 0, 1, EVP_sha256())) {
        snprintf(err, errcap, "Java truststore: cannot build the PKCS12 file");
        goto out;
    }
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || !(of = fdopen(fd, "w"))) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        snprintf(err, errcap, "Java truststore: %s: %s", out, strerror(-rc));
        goto out;
    }
    if (!i2d_PKCS12_fp(of, p12) || fflush(of) != 0 || fchmod(fileno(of), 0644) < 0) {
        rc = -EIO;
        snprintf(err, errcap, "Java truststore: cannot write %s", out);
        goto out;
    }
    rc = 0;
out:
    if (of && fclose(of) != 0 && rc == 0) {
        rc = -EIO;
        snprintf(err, errcap, "Java truststore: cannot write %s", out);
    }
    if (in)
        fclose(in);
    PKCS12_free(p12);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    ASN1_OBJECT_free(any_eku);
    return rc;
}
