/* tls/truststore: the trust bundle as a Java truststore.
 *
 * Java reads neither SSL_CERT_FILE nor PEM bundles; its default keystore
 * type is PKCS12. A PKCS12 certificate bag is a trust anchor for Java only
 * when it carries Oracle's "trusted key usage" attribute
 * (2.16.840.1.113894.746875.1.1) — keytool writes anyExtendedKeyUsage
 * there; so do we. The file holds certificates only (no key), unencrypted,
 * with an HMAC-SHA256 integrity MAC under the password "changeit" (Java's
 * conventional truststore password; it protects nothing secret). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls/tls.h"
#include "core/banned.h"

#define TRUSTSTORE_MAX_CERTS 4096
#define ORACLE_TRUSTED_KEY_USAGE "2.16.840.1.113894.746875.1.1"
#define ANY_EXTENDED_KEY_USAGE "2.5.29.37.0"

int tls_truststore_write(const char *bundle_pem, const char *out, char *err, size_t errcap)
{
    int rc = -EINVAL;
    FILE *in = NULL, *of = NULL;
    STACK_OF(PKCS12_SAFEBAG) *bags = sk_PKCS12_SAFEBAG_new_null();
    STACK_OF(PKCS7) *safes = sk_PKCS7_new_null();
    ASN1_OBJECT *any_eku = OBJ_txt2obj(ANY_EXTENDED_KEY_USAGE, 1);
    PKCS12 *p12 = NULL;
    X509 *x = NULL;
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
    while (n < TRUSTSTORE_MAX_CERTS && (x = PEM_read_X509(in, NULL, NULL, NULL))) {
        char alias[32];
        snprintf(alias, sizeof(alias), "cordon-%zu", n);
        PKCS12_SAFEBAG *bag = PKCS12_SAFEBAG_create_cert(x);
        X509_free(x);
        x = NULL;
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
        !PKCS12_set_mac(p12, "changeit", -1, NULL, 0, 10000, EVP_sha256())) {
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
    X509_free(x);
    PKCS12_free(p12);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    ASN1_OBJECT_free(any_eku);
    return rc;
}
