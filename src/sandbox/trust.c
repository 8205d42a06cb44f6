/* sandbox/trust: the TLS trust bundle the command sees.
 *
 * The supervisor copies the (per-sandbox) CA certificate into the sandbox's
 * private tmpfs; this file appends it to the host's CA bundle so clients
 * that read SSL_CERT_FILE & co. (childenv.c) trust both real servers and
 * the proxy's inspection. The CA key never leaves memory: the supervisor
 * makes the CA and hands it to the proxy (make_ca). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"
#include "core/banned.h"

#define TRUST_MAX_BYTES (16u << 20) /* a system bundle is ~200 KiB */

static const char *const SYSTEM_BUNDLES[] = {
    "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem", NULL,
};

/* Appends the file at path to fd; *last gets its last byte. 0 or -errno. */
static int append(int fd, const char *path, char *last, size_t *total)
{
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    char buf[65536];
    int rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        *total += (size_t)n;
        if (*total > TRUST_MAX_BYTES) {
            rc = -EFBIG;
            break;
        }
        *last = buf[n - 1];
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = -errno;
                goto out;
            }
            off += w;
        }
    }
out:
    close(in);
    return rc;
}

int trust_bundle_write(const char *ca_pem, const char *out, char *err, size_t errcap)
{
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errcap, "cannot create the trust bundle: %s", strerror(e));
        return -e;
    }
    int rc = 0;
    char last = '\n';
    size_t total = 0;
    for (size_t i = 0; SYSTEM_BUNDLES[i]; i++) {
        struct stat st;
        if (stat(SYSTEM_BUNDLES[i], &st) < 0 || st.st_size == 0)
            continue;
        if ((rc = append(fd, SYSTEM_BUNDLES[i], &last, &total)) < 0) {
            snprintf(err, errcap, "cannot copy %s: %s", SYSTEM_BUNDLES[i], strerror(-rc));
            goto out;
        }
        break;
    }
    if (last != '\n' && write(fd, "\n", 1) != 1) {
        rc = -errno;
        snprintf(err, errcap, "cannot write the trust bundle: %s", strerror(-rc));
        goto out;
    }
    if ((rc = append(fd, ca_pem, &last, &total)) < 0) {
        snprintf(err, errcap, "cannot read the proxy's CA certificate: %s", strerror(-rc));
        goto out;
    }
    if (fchmod(fd, 0644) < 0) {
        rc = -errno;
        snprintf(err, errcap, "cannot chmod the trust bundle: %s", strerror(-rc));
    }
out:
    close(fd);
    return rc;
}

int trust_file_copy(const char *src, const char *out, char *err, size_t errcap)
{
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errcap, "cannot create %s: %s", out, strerror(e));
        return -e;
    }
    char last = '\n';
    size_t total = 0;
    int rc = append(fd, src, &last, &total);
    if (rc < 0)
        snprintf(err, errcap, "cannot copy %s: %s", src, strerror(-rc));
    else if (fchmod(fd, 0644) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}
