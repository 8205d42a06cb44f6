/* libFuzzer target: tls_truststore_write (src/tls/truststore.c), which
 * reads a PEM bundle and wraps each CERTIFICATE block's DER, unparsed, in a
 * PKCS12 certBag (built by hand: der_len/cert_bag).
 * Contracts checked, not just "no crash":
 *  - the result is 0 or a negative errno, never a half-written success;
 *  - on success the file is a PKCS12 whose MAC verifies with "changeit",
 *    holding exactly one certBag per CERTIFICATE block of the input (up to
 *    the 4096 cap), each carrying that block's DER byte for byte (the
 *    certificates are never decoded: a block need not be a valid X509).
 * The input goes through a file (the function's interface). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "tls/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], in_path[96], out_path[96];

static void init_paths(void)
{
    if (dir[0])
        return;
    snprintf(dir, sizeof(dir), "/tmp/fuzz_truststore.XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(in_path, sizeof(in_path), "%s/in.pem", dir);
    snprintf(out_path, sizeof(out_path), "%s/out.p12", dir);
}

/* The DER of each CERTIFICATE block, as PEM_read sees them. */
static size_t expected(unsigned char **ders, long *lens, size_t cap)
{
    FILE *f = fopen(in_path, "r");
    if (!f)
        abort();
    size_t n = 0;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long len = 0;
    while (n < cap && PEM_read(f, &name, &header, &der, &len)) {
        if (strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0) {
            ders[n] = der;
            lens[n] = len;
            n++;
            der = NULL;
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
        name = header = NULL;
        der = NULL;
    }
    fclose(f);
    ERR_clear_error();
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_paths();
    FILE *f = fopen(in_path, "w");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort();
    unlink(out_path);
    char err[256] = "";
    int rc = tls_truststore_write(in_path, out_path, err, sizeof(err));
    if (rc > 0)
        abort();
    if (rc < 0) {
        if (!err[0])
            abort(); /* a failure always says why */
        ERR_clear_error();
        return 0;
    }
    enum { CAP = 64 };
    unsigned char *ders[CAP];
    long lens[CAP];
    size_t want = expected(ders, lens, CAP);
    FILE *p = fopen(out_path, "rb");
    if (!p)
        abort();
    PKCS12 *p12 = d2i_PKCS12_fp(p, NULL);
    fclose(p);
    if (!p12 || !PKCS12_verify_mac(p12, "changeit", -1))
        abort();
    STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
    if (!safes || sk_PKCS7_num(safes) != 1)
        abort();
    STACK_OF(PKCS12_SAFEBAG) *bags = PKCS12_unpack_p7data(sk_PKCS7_value(safes, 0));
    if (!bags)
        abort();
    size_t got = (size_t)sk_PKCS12_SAFEBAG_num(bags);
    if (want < CAP && got != want)
        abort();
    for (size_t i = 0; i < got && i < want; i++) {
        const PKCS12_SAFEBAG *b = sk_PKCS12_SAFEBAG_value(bags, (int)i);
        if (PKCS12_SAFEBAG_get_nid(b) != NID_certBag ||
            PKCS12_SAFEBAG_get_bag_nid(b) != NID_x509Certificate)
            abort();
        /* the block's DER is inside the bag's encoding, byte for byte */
        unsigned char *enc = NULL;
        int el = i2d_PKCS12_SAFEBAG(b, &enc);
        if (el <= 0 || !memmem(enc, (size_t)el, ders[i], (size_t)lens[i]))
            abort();
        OPENSSL_free(enc);
    }
    for (size_t i = 0; i < want; i++)
        OPENSSL_free(ders[i]);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    PKCS12_free(p12);
    ERR_clear_error();
    return 0;
}
