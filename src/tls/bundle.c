/* tls/bundle: the trust bundle handed to the sandboxed child, and the
 * atomic file writer the CA files use too. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls/tls_int.h"

#include "core/banned.h"

const char *const TLS_BUNDLE_ENV_VARS[] = {
    "SSL_CERT_FILE",      /* OpenSSL-based tools, Python ssl, Go (on Linux), Ruby */
    "REQUESTS_CA_BUNDLE", /* python-requests */
    "CURL_CA_BUNDLE",     /* curl built with OpenSSL */
    "NODE_EXTRA_CA_CERTS",/* Node.js (added to its built-in roots) */
    "GIT_SSL_CAINFO",     /* git over https */
    "PIP_CERT",           /* pip */
    "DENO_CERT",          /* deno */
    "AWS_CA_BUNDLE",      /* AWS CLI and SDKs */
    "CARGO_HTTP_CAINFO",  /* cargo */
    "NPM_CONFIG_CAFILE",  /* npm */
    "npm_config_cafile",  /* npm (the spelling npm itself exports to scripts) */
    "YARN_CAFILE",        /* yarn 1 */
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", /* gRPC core (C++, Python, Ruby, PHP, C#) */
    "NIX_SSL_CERT_FILE",  /* Nix-built programs */
    "HTTPLIB2_CA_CERTS",  /* httplib2 (Google API Python clients) */
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", /* gcloud */
    "BUNDLE_SSL_CA_CERT", /* Ruby bundler */
    "COMPOSER_CAFILE",    /* PHP composer */
    "HEX_CACERTS_PATH",   /* Elixir hex */
    "WEBSOCKET_CLIENT_CA_BUNDLE", /* Python websocket-client */
    "PNPM_CONFIG_CAFILE", /* pnpm */
    NULL,
};

/* System bundles in the order distributions place them. */
static const char *const system_bundles[] = {
    "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Alpine, Arch */
    "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
    "/etc/ssl/ca-bundle.pem",             /* openSUSE */
    "/etc/ssl/cert.pem",                  /* Alpine, macOS-like layouts */
    NULL,
};

/* Caps how much of a system bundle we copy (Debian's is ~220 KiB). */
#define BUNDLE_MAX (16u << 20)

int tls_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                          size_t errlen)
{
    char tmp[4096];
    const char *slash = strrchr(path, '/');
    const char *p = data;
    int fd = -1;
    int rc;

    if (!slash)
        rc = snprintf(tmp, sizeof(tmp), ".cordon-tmp.XXXXXX");
    else
        rc = snprintf(tmp, sizeof(tmp), "%.*s/.cordon-tmp.XXXXXX", (int)(slash - path), path);
    if (rc < 0 || (size_t)rc >= sizeof(tmp)) {
        tls_errf(err, errlen, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    fd = mkstemp(tmp); /* 0600 until the data is complete */
    if (fd < 0) {
        rc = -errno;
        tls_errf(err, errlen, "%s: cannot create a temporary next to it: %s", path,
                 strerror(errno));
        return rc;
    }
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            tls_errf(err, errlen, "%s: write: %s", tmp, strerror(-rc));
            goto out;
        }
        p += w;
        len -= (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        rc = -errno;
        tls_errf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = -errno;
        tls_errf(err, errlen, "%s: rename: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    close(fd);
    if (rc)
        unlink(tmp);
    return rc;
}

/* Reads a whole regular file up to BUNDLE_MAX into *out (malloc'ed).
 * Returns 0, -ENOENT (missing or empty) or -errno. */
static int read_file(const char *path, char **out, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    *out = NULL;
    *len = 0;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
        rc = -ENOENT;
        goto out;
    }
    if ((uint64_t)st.st_size > BUNDLE_MAX) {
        rc = -EFBIG;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break; /* shrank while reading: take what is there */
        n += (size_t)r;
    }
    if (n == 0) {
        rc = -ENOENT;
        goto out;
    }
    *out = buf;
    *len = n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

int tls_bundle_write(const struct tls_ca *ca, const char *path, const char *system_bundle,
                     char *err, size_t errlen)
{
    const char *one[2] = {system_bundle, NULL};
    const char *const *cands = system_bundle ? one : system_bundles;
    char *sys = NULL, *pem = NULL, *all = NULL;
    size_t syslen = 0, pemlen, total;
    int rc;

    for (size_t i = 0; cands[i]; i++) {
        rc = read_file(cands[i], &sys, &syslen);
        if (rc == 0)
            break;
        if (system_bundle) {
            tls_errf(err, errlen, "%s: cannot read the system CA bundle: %s", system_bundle,
                     strerror(-rc));
            return rc;
        }
    }
    rc = tls_cert_pem(ca->cert, &pem);
    if (rc) {
        tls_errf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    pemlen = strlen(pem);
    total = syslen + 1 + pemlen;
    all = malloc(total);
    if (!all) {
        rc = -ENOMEM;
        tls_errf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    total = 0;
    if (syslen) {
        memcpy(all, sys, syslen);
        total = syslen;
        if (all[total - 1] != '\n')
            all[total++] = '\n';
    }
    memcpy(all + total, pem, pemlen);
    total += pemlen;
    rc = tls_write_file_atomic(path, all, total, 0644, err, errlen);
out:
    free(all);
    free(pem);
    free(sys);
    return rc;
}
