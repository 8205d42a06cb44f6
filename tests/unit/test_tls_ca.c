/* Unit tests for tls/ca and tls/bundle: generate, save, load, refuse bad
 * state, describe, trust bundle, name canonicalization. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"

static char *make_tmpdir(void)
{
    char *d = strdup("/tmp/cordon-tls-ca-XXXXXX");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static void rm_rf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_generate_properties(void **state)
{
    struct tls_ca *ca = NULL;
    char err[512] = "";
    X509 *c;
    BASIC_CONSTRAINTS *bc;
    struct tls_cert_info info;

    (void)state;
    assert_int_equal(tls_ca_generate(NULL, &ca, err, sizeof(err)), 0);
    c = tls_ca_cert(ca);
    assert_non_null(c);
    /* self-signed, verifies with its own key */
    assert_int_equal(X509_verify(c, X509_get0_pubkey(c)), 1);
    assert_int_equal(X509_check_ca(c), 1);
    assert_true(X509_get_extension_flags(c) & EXFLAG_CA);
    assert_int_equal(X509_get_key_usage(c), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    /* basicConstraints is critical */
    int crit = -1;
    bc = X509_get_ext_d2i(c, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_true(bc->ca);
    BASIC_CONSTRAINTS_free(bc);
    /* P-256 */
    assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(c)), EVP_PKEY_EC);
    char curve[32];
    size_t cl = 0;
    assert_int_equal(EVP_PKEY_get_utf8_string_param(X509_get0_pubkey(c), "group", curve,
                                                    sizeof(curve), &cl), 1);
    assert_string_equal(curve, "prime256v1");
    /* back-dated about an hour, valid about a year */
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notBefore(c)), 1);
    assert_int_equal(days, 0);
    assert_in_range(-secs, 3590, 3610);
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(c), X509_get0_notAfter(c)), 1);
    assert_in_range(days, 365, 366);

    assert_int_equal(tls_cert_info(c, &info), 0);
    assert_non_null(strstr(info.subject, "CN = cordon sandbox CA "));
    assert_int_equal(strlen(info.fingerprint), 95);
    assert_true(info.is_ca);

    /* Two CAs never share a name or serial. */
    struct tls_ca *ca2 = NULL;
    struct tls_cert_info info2;
    assert_int_equal(tls_ca_generate(NULL, &ca2, err, sizeof(err)), 0);
    assert_int_equal(tls_cert_info(tls_ca_cert(ca2), &info2), 0);
    assert_string_not_equal(info.subject, info2.subject);
    assert_string_not_equal(info.serial, info2.serial);
    tls_ca_free(ca2);
    tls_ca_free(ca);
}

static void test_save_load_roundtrip(void **state)
{
    char *dir = make_tmpdir();
    char sub[512], path[600], err[512] = "";
    struct tls_ca *ca = NULL, *back = NULL;
    struct stat st;
    struct tls_cert_info a, b;

    (void)state;
    snprintf(sub, sizeof(sub), "%s/nested/ca", dir);
    assert_int_equal(tls_ca_generate(NULL, &ca, err, sizeof(err)), 0);
    assert_int_equal(tls_ca_save(ca, sub, false, err, sizeof(err)), 0);

    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/ca.key", sub);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_uid, geteuid());
    snprintf(path, sizeof(path), "%s/ca.pem", sub);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    assert_int_equal(tls_ca_load(sub, NULL, &back, err, sizeof(err)), 0);
    assert_int_equal(X509_cmp(tls_ca_cert(ca), tls_ca_cert(back)), 0);
    assert_int_equal(tls_cert_info(tls_ca_cert(ca), &a), 0);
    assert_int_equal(tls_cert_info(tls_ca_cert(back), &b), 0);
    assert_string_equal(a.fingerprint, b.fingerprint);

    /* A leaf minted by the loaded CA verifies against the original cert. */
    X509 *leaf = NULL;
    assert_int_equal(tls_leaf_get(back, "example.test", &leaf), 0);
    assert_int_equal(X509_verify(leaf, X509_get0_pubkey(tls_ca_cert(ca))), 1);
    X509_free(leaf);

    /* No silent overwrite. */
    struct tls_ca *other = NULL;
    assert_int_equal(tls_ca_generate(NULL, &other, err, sizeof(err)), 0);
    err[0] = '\0';
    assert_int_equal(tls_ca_save(other, sub, false, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "--force"));
    tls_ca_free(back);
    back = NULL;
    assert_int_equal(tls_ca_load(sub, NULL, &back, err, sizeof(err)), 0);
    assert_int_equal(X509_cmp(tls_ca_cert(ca), tls_ca_cert(back)), 0);
    tls_ca_free(back);
    back = NULL;
    /* --force replaces both files. */
    assert_int_equal(tls_ca_save(other, sub, true, err, sizeof(err)), 0);
    assert_int_equal(tls_ca_load(sub, NULL, &back, err, sizeof(err)), 0);
    assert_int_equal(X509_cmp(tls_ca_cert(other), tls_ca_cert(back)), 0);
    /* no temporaries left behind */
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 2", sub);
    assert_int_equal(system(cmd), 0);

    tls_ca_free(back);
    tls_ca_free(other);
    tls_ca_free(ca);
    rm_rf(dir);
    free(dir);
}

/* Writes ca's cert with other's key: a mismatched pair. */
static void test_load_refuses_mismatched_key(void **state)
{
    char *dir = make_tmpdir();
    char d1[512], d2[512], src[600], dst[600], err[512] = "";
    struct tls_ca *ca1 = NULL, *ca2 = NULL, *back = NULL;

    (void)state;
    snprintf(d1, sizeof(d1), "%s/one", dir);
    snprintf(d2, sizeof(d2), "%s/two", dir);
    assert_int_equal(tls_ca_generate(NULL, &ca1, err, sizeof(err)), 0);
    assert_int_equal(tls_ca_generate(NULL, &ca2, err, sizeof(err)), 0);
    assert_int_equal(tls_ca_save(ca1, d1, false, err, sizeof(err)), 0);
    assert_int_equal(tls_ca_save(ca2, d2, false, err, sizeof(err)), 0);
    snprintf(src, sizeof(src), "%s/ca.key", d2);
    snprintf(dst, sizeof(dst), "%s/ca.key", d1);
    assert_int_equal(rename(src, dst), 0);

    assert_int_equal(tls_ca_load(d1, NULL, &back, err, sizeof(err)), -EINVAL);
    assert_null(back);
    assert_non_null(strstr(err, "does not match"));
    assert_non_null(strstr(err, "ca.key"));
    assert_non_null(strstr(err, "cordon ca init --force"));

    tls_ca_free(ca1);
    tls_ca_free(ca2);
    rm_rf(dir);
    free(dir);
}

static void test_load_refuses_bad_files(void **state)
{
    char *dir = make_tmpdir();
    char sub[512], path[600], err[512] = "";
    struct tls_ca *ca = NULL, *back = NULL;
    FILE *f;

    (void)state;
    /* missing directory */
    snprintf(sub, sizeof(sub), "%s/missing", dir);
    assert_int_equal(tls_ca_load(sub, NULL, &back, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "cordon ca init"));

    snprintf(sub, sizeof(sub), "%s/ca", dir);
    assert_int_equal(tls_ca_generate(NULL, &ca, err, sizeof(err)), 0);
    assert_int_equal(tls_ca_save(ca, sub, false, err, sizeof(err)), 0);

    /* key readable by others */
    snprintf(path, sizeof(path), "%s/ca.key", sub);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(tls_ca_load(sub, NULL, &back, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "chmod 600"));
    assert_int_equal(chmod(path, 0600), 0);

    /* key replaced by a symlink */
    char real[600];
    snprintf(real, sizeof(real), "%s/real.key", dir);
    assert_int_equal(rename(path, real), 0);
    assert_int_equal(symlink(real, path), 0);
    assert_int_equal(tls_ca_load(sub, NULL, &back, err, sizeof(err)), -EPERM);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rename(real, path), 0);

    /* garbage key */
    char keep[600];
    snprintf(keep, sizeof(keep), "%s/keep.key", dir);
    assert_int_equal(rename(path, keep), 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a key\n", 10), 10);
    close(fd);
    assert_int_equal(tls_ca_load(sub, NULL, &back, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "private key"));
    assert_int_equal(rename(keep, path), 0);

    /* garbage cert */
    snprintf(path, sizeof(path), "%s/ca.pem", sub);
    snprintf(keep, sizeof(keep), "%s/keep.pem", dir);
    assert_int_equal(rename(path, keep), 0);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    assert_int_equal(tls_ca_load(sub, NULL, &back, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a PEM certificate"));
    assert_int_equal(rename(keep, path), 0);

    /* a non-CA certificate with its matching key: a leaf of ca, keyed by
     * the leaf key */
    X509 *leaf = NULL;
    assert_int_equal(tls_leaf_get(ca, "leaf.test", &leaf), 0);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, leaf), 1);
    fclose(f);
    snprintf(path, sizeof(path), "%s/ca.key", sub);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, tls_leaf_key(ca), NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    assert_int_equal(tls_ca_load(sub, NULL, &back, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a CA certificate"));
    X509_free(leaf);

    assert_null(back);
    tls_ca_free(ca);
    rm_rf(dir);
    free(dir);
}

static void test_expired_ca_refused(void **state)
{
    char *dir = make_tmpdir();
    char sub[512], err[512] = "";
    struct tls_ca *ca = NULL, *back = NULL;
    struct tls_ca_opts o = {.ca_validity_s = 1}; /* notBefore is now-1h: expires in 1 s */

    (void)state;
    snprintf(sub, sizeof(sub), "%s/ca", dir);
    assert_int_equal(tls_ca_generate(&o, &ca, err, sizeof(err)), 0);
    assert_int_equal(tls_ca_save(ca, sub, false, err, sizeof(err)), 0);
    sleep(2);
    assert_int_equal(tls_ca_load(sub, NULL, &back, err, sizeof(err)), -EKEYEXPIRED);
    assert_non_null(strstr(err, "validity"));
    X509 *leaf = NULL;
    assert_int_equal(tls_leaf_get(ca, "x.test", &leaf), -EKEYEXPIRED);
    assert_null(leaf);
    tls_ca_free(ca);
    rm_rf(dir);
    free(dir);
}

static void test_bundle(void **state)
{
    char *dir = make_tmpdir();
    char sys[512], out[512], err[512] = "";
    struct tls_ca *ca = NULL;
    struct stat st;
    char *pem = NULL, *got;
    FILE *f;

    (void)state;
    assert_int_equal(tls_ca_generate(NULL, &ca, err, sizeof(err)), 0);
    assert_int_equal(tls_cert_pem(tls_ca_cert(ca), &pem), 0);

    /* a system bundle without a final newline gets one */
    snprintf(sys, sizeof(sys), "%s/system.pem", dir);
    f = fopen(sys, "w");
    assert_non_null(f);
    fputs("# system roots\n-----BEGIN CERTIFICATE-----\nXYZ\n-----END CERTIFICATE-----", f);
    fclose(f);
    snprintf(out, sizeof(out), "%s/bundle.pem", dir);
    assert_int_equal(tls_bundle_write(ca, out, sys, err, sizeof(err)), 0);
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    got = slurp(out);
    assert_non_null(strstr(got, "-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----"));
    size_t gl = strlen(got), pl = strlen(pem);
    assert_true(gl > pl);
    assert_string_equal(got + gl - pl, pem);
    free(got);

    /* the real system bundle: it must be all there, then the CA */
    assert_int_equal(tls_bundle_write(ca, out, NULL, err, sizeof(err)), 0);
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0) {
        char *s = slurp("/etc/ssl/certs/ca-certificates.crt");
        got = slurp(out);
        assert_memory_equal(got, s, strlen(s));
        assert_non_null(strstr(got + strlen(s), pem));
        free(got);
        free(s);
    }
    /* an explicit system bundle that is missing is an error */
    snprintf(sys, sizeof(sys), "%s/none.pem", dir);
    assert_int_equal(tls_bundle_write(ca, out, sys, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "none.pem"));

    /* the CA alone */
    snprintf(out, sizeof(out), "%s/ca-only.pem", dir);
    assert_int_equal(tls_ca_cert_write(ca, out, err, sizeof(err)), 0);
    got = slurp(out);
    assert_string_equal(got, pem);
    free(got);

    /* the env var list names the usual suspects */
    bool seen_ssl = false, seen_node = false;
    for (size_t i = 0; TLS_BUNDLE_ENV_VARS[i]; i++) {
        seen_ssl |= strcmp(TLS_BUNDLE_ENV_VARS[i], "SSL_CERT_FILE") == 0;
        seen_node |= strcmp(TLS_BUNDLE_ENV_VARS[i], "NODE_EXTRA_CA_CERTS") == 0;
    }
    assert_true(seen_ssl && seen_node);

    free(pem);
    tls_ca_free(ca);
    rm_rf(dir);
    free(dir);
}

static void canon_ok(const char *in, const char *want, bool want_ip)
{
    char out[TLS_NAME_MAX + 1];
    bool ip = !want_ip;
    assert_int_equal(tls_name_canon(in, strlen(in), out, sizeof(out), &ip), 0);
    assert_string_equal(out, want);
    assert_int_equal(ip, want_ip);
}

static void canon_bad(const char *in, size_t len)
{
    char out[TLS_NAME_MAX + 1];
    bool ip;
    assert_int_equal(tls_name_canon(in, len, out, sizeof(out), &ip), -EINVAL);
}

static void test_name_canon(void **state)
{
    char longname[300];
    (void)state;
    canon_ok("Example.TEST", "example.test", false);
    canon_ok("example.test.", "example.test", false);
    canon_ok("under_score.example", "under_score.example", false);
    canon_ok("localhost", "localhost", false);
    canon_ok("127.0.0.1", "127.0.0.1", true);
    canon_ok("::1", "::1", true);
    canon_ok("[::1]", "::1", true);
    canon_ok("2001:DB8:0:0::1", "2001:db8::1", true);
    canon_bad("", 0);
    canon_bad(".", 1);
    canon_bad("a..b", 4);
    canon_bad(".a", 2);
    canon_bad("a.b..", 5);
    canon_bad("*.example.test", 14);
    canon_bad("a b", 3);
    canon_bad("a\0b", 3);
    canon_bad("exa\xc3\xa9mple", 9);
    canon_bad("[127.0.0.1]", 11);
    canon_bad("[::1", 4);
    canon_bad("fe80::1%eth0", 12);
    canon_bad("1:2:3", 5);
    /* 63-byte labels are fine, 64 are not; 253 total is the limit */
    memset(longname, 'a', 64);
    canon_bad(longname, 64);
    canon_ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.x",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.x", false);
    for (int i = 0; i < 254; i++)
        longname[i] = (i % 2) ? '.' : 'a';
    longname[253] = '\0'; /* "a.a. ... a": 253 bytes */
    canon_ok(longname, longname, false);
    longname[253] = '.';
    longname[254] = 'a';
    canon_bad(longname, 255);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_properties),
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_load_refuses_mismatched_key),
        cmocka_unit_test(test_load_refuses_bad_files),
        cmocka_unit_test(test_expired_ca_refused),
        cmocka_unit_test(test_bundle),
        cmocka_unit_test(test_name_canon),
    };
    return cmocka_run_group_tests_name("tls_ca", tests, NULL, NULL);
}
