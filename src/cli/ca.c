/* cordon ca: create and inspect the sandbox CA on disk.
 *
 *   cordon ca init [--dir D] [--force]   writes D/ca.pem (0644) and D/ca.key (0600)
 *   cordon ca show [--dir D]             subject, SHA-256 fingerprint, validity, PEM
 *
 * D defaults to TLS_CA_DEFAULT_DIR (/var/lib/cordon/ca), created 0700.
 * Exit status: 0 ok, 1 failed, 2 usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tls/tls.h"

#include "core/banned.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: cordon ca init [--dir DIR] [--force]\n"
               "       cordon ca show [--dir DIR]\n"
               "\n"
               "  init   create a new CA (ECDSA P-256): DIR/ca.pem (certificate, 0644) and\n"
               "         DIR/ca.key (private key, 0600); refuses to replace them without --force\n"
               "  show   print the CA's subject, SHA-256 fingerprint, validity and PEM\n"
               "\n"
               "  DIR defaults to %s. Keep it root-only: the sandbox must never\n"
               "  be able to read ca.key.\n",
            TLS_CA_DEFAULT_DIR);
}

struct ca_args {
    const char *dir;
    bool force;
};

/* Parses the options after the verb. Returns 0 or 2 (usage error). */
static int parse_args(int argc, char **argv, bool allow_force, struct ca_args *a)
{
    a->dir = TLS_CA_DEFAULT_DIR;
    a->force = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0') {
                fprintf(stderr, "cordon ca: --dir needs a directory\n");
                return 2;
            }
            a->dir = argv[++i];
        } else if (strncmp(argv[i], "--dir=", 6) == 0 && argv[i][6]) {
            a->dir = argv[i] + 6;
        } else if (allow_force && strcmp(argv[i], "--force") == 0) {
            a->force = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return -1;
        } else {
            fprintf(stderr, "cordon ca: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    return 0;
}

static void print_info(X509 *cert)
{
    struct tls_cert_info info;
    if (tls_cert_info(cert, &info) != 0) {
        printf("(cannot describe the certificate)\n");
        return;
    }
    printf("subject:     %s\n", info.subject);
    printf("sha256:      %s\n", info.fingerprint);
    printf("serial:      %s\n", info.serial);
    printf("not before:  %s\n", info.not_before);
    printf("not after:   %s\n", info.not_after);
}

static int ca_init(const struct ca_args *a)
{
    char err[512];
    struct tls_ca *ca = NULL;
    int rc;

    rc = tls_ca_generate(NULL, &ca, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "cordon ca init: %s\n", err);
        return 1;
    }
    rc = tls_ca_save(ca, a->dir, a->force, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "cordon ca init: %s\n", err);
        tls_ca_free(ca);
        return 1;
    }
    printf("wrote %s/%s (certificate, 0644) and %s/%s (private key, 0600)\n", a->dir,
           TLS_CA_CERT_FILE, a->dir, TLS_CA_KEY_FILE);
    print_info(tls_ca_cert(ca));
    tls_ca_free(ca);
    return 0;
}

static int ca_show(const struct ca_args *a)
{
    char path[4096], err[512];
    struct tls_ca *ca = NULL;
    X509 *cert = NULL;
    char *pem = NULL;
    int rc;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", a->dir, TLS_CA_CERT_FILE) >= sizeof(path)) {
        fprintf(stderr, "cordon ca show: %s: path too long\n", a->dir);
        return 1;
    }
    rc = tls_cert_read(path, &cert, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "cordon ca show: %s\n", err);
        return 1;
    }
    print_info(cert);
    /* The key check needs the key: only its owner (root) gets a verdict. */
    snprintf(path, sizeof(path), "%s/%s", a->dir, TLS_CA_KEY_FILE);
    if (access(path, R_OK) != 0) {
        printf("key:         %s (%s)\n", path, errno == ENOENT ? "missing" : "not readable by this user");
    } else if (tls_ca_load(a->dir, NULL, &ca, err, sizeof(err)) == 0) {
        printf("key:         %s (matches the certificate, owner-only)\n", path);
        tls_ca_free(ca);
    } else {
        printf("key:         PROBLEM: %s\n", err);
    }
    if (tls_cert_pem(cert, &pem) == 0)
        fputs(pem, stdout);
    free(pem);
    X509_free(cert);
    return 0;
}

int cli_ca(int argc, char **argv)
{
    struct ca_args a;
    int rc;

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "init") == 0) {
        rc = parse_args(argc - 2, argv + 2, true, &a);
        return rc < 0 ? 0 : rc ? rc : ca_init(&a);
    }
    if (strcmp(argv[1], "show") == 0) {
        rc = parse_args(argc - 2, argv + 2, false, &a);
        return rc < 0 ? 0 : rc ? rc : ca_show(&a);
    }
    fprintf(stderr, "cordon ca: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
