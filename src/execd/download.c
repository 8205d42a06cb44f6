/* execd/download: GET (and HEAD) /files/download?path=, with Range.
 *
 * The file is opened without blocking (a FIFO or device is refused, never
 * waited on) and sent with sendfile by http_respond_file: nothing of it is
 * held in memory. One range per request (the first satisfiable one, as
 * OpenSandbox); 206 with Content-Range, 416 with "bytes * /size" (without
 * the space) when nothing is satisfiable or the header is malformed. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "execd/api.h"
#include "execd/files.h"
#include "http/server.h"
#include "core/banned.h"

/* Reads decimal digits at *p into *out (no overflow). Returns digits read. */
static int digits(const char **p, uint64_t *out)
{
    int n = 0;
    uint64_t v = 0;
    while (**p >= '0' && **p <= '9') {
        unsigned d = (unsigned)(**p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        (*p)++;
        n++;
    }
    *out = v;
    return n;
}

int files_range_parse(const char *h, uint64_t size, uint64_t *start, uint64_t *len)
{
    const char *p = h;
    int found = 0;
    if (strncmp(p, "bytes=", 6) != 0)
        return -EINVAL;
    p += 6;
    for (;;) {
        uint64_t a = 0, b = 0;
        while (*p == ' ' || *p == '\t')
            p++;
        int na = digits(&p, &a);
        if (na < 0 || *p++ != '-')
            return -EINVAL;
        int nb = digits(&p, &b);
        if (nb < 0 || (na == 0 && nb == 0))
            return -EINVAL;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ',' && *p != '\0')
            return -EINVAL;
        if (na > 0 && nb > 0 && b < a)
            return -EINVAL;
        if (!found) {
            if (na == 0) { /* suffix: the last b bytes */
                if (b > 0 && size > 0) {
                    *len = b > size ? size : b;
                    *start = size - *len;
                    found = 1;
                }
            } else if (a < size) {
                *start = a;
                *len = (nb == 0 || b >= size ? size - 1 : b) - a + 1;
                found = 1;
            }
        }
        if (*p == '\0')
            break;
        p++; /* ',' */
    }
    return found;
}

/* Content-Disposition with the file's base name (RFC 6266): quoted when
 * plain ASCII, else percent-encoded with filename* (RFC 8187). */
static void disposition(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base && base[1] ? base + 1 : path;
    int plain = 1;
    for (const unsigned char *q = (const unsigned char *)base; *q; q++)
        if (*q < 0x20 || *q >= 0x7f || *q == '"' || *q == '\\' || *q == '%')
            plain = 0;
    if (plain) {
        if (snprintf(out, cap, "Content-Disposition: attachment; filename=\"%s\"\r\n", base) >=
            (int)cap)
            snprintf(out, cap, "Content-Disposition: attachment\r\n");
        return;
    }
    char enc[PATH_MAX * 3 + 1];
    size_t o = 0;
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *q = (const unsigned char *)base; *q && o + 4 < sizeof(enc); q++) {
        if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
            strchr("-._~", *q)) {
            enc[o++] = (char)*q;
        } else {
            enc[o++] = '%';
            enc[o++] = hex[*q >> 4];
            enc[o++] = hex[*q & 15];
        }
    }
    enc[o] = '\0';
    if (snprintf(out, cap, "Content-Disposition: attachment; filename=\"%s\"; "
                           "filename*=UTF-8''%s\r\n", enc, enc) >= (int)cap)
        snprintf(out, cap, "Content-Disposition: attachment\r\n");
}

void download_file(struct execd *ed, struct http_conn *c, const struct http_req *req)
{
    char raw[PATH_MAX], path[PATH_MAX], extra[PATH_MAX * 3 + 512], disp[PATH_MAX * 3 + 128];
    const char *why;
    struct stat st;
    (void)ed;
    int n = http_query_get(req->query, req->query_len, "path", raw, sizeof(raw));
    if (n == -ENOENT || n == 0) {
        api_error(c, 400, "MISSING_QUERY", "missing query parameter 'path'");
        return;
    }
    if (n < 0) {
        api_error(c, 400, "INVALID_QUERY", "query parameter 'path': %s",
                  n == -ENOSPC ? "longer than PATH_MAX" : "bad percent-escape");
        return;
    }
    if (files_path_clean(raw, (size_t)n, path, sizeof(path), &why) < 0) {
        api_error(c, 400, "INVALID_PATH", "query parameter 'path': %s", why);
        return;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        files_errno(c, errno, "cannot download", path);
        return;
    }
    if (fstat(fd, &st) < 0) {
        files_errno(c, errno, "cannot download", path);
        close(fd);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        api_error(c, 400, S_ISDIR(st.st_mode) ? "IS_A_DIRECTORY" : "NOT_A_FILE",
                  "cannot download %s: %s", path,
                  S_ISDIR(st.st_mode) ? "it is a directory (list it with /directories/list)"
                                      : "not a regular file");
        return;
    }
    uint64_t size = (uint64_t)st.st_size, start = 0, len = size;
    int status = 200;
    const char *range = http_req_header(req, "Range");
    disposition(path, disp, sizeof(disp));
    if (range) {
        int r = files_range_parse(range, size, &start, &len);
        if (r <= 0) {
            close(fd);
            snprintf(extra, sizeof(extra), "Content-Range: bytes */%llu\r\n",
                     (unsigned long long)size);
            api_error_hdr(c, 416, extra, "RANGE_NOT_SATISFIABLE",
                          "Range \"%s\" %s for %s (%llu bytes)", range,
                          r < 0 ? "is malformed (want bytes=A-B, bytes=A- or bytes=-N)"
                                : "is outside the file",
                          path, (unsigned long long)size);
            return;
        }
        status = 206;
    }
    int k = snprintf(extra, sizeof(extra), "%sAccept-Ranges: bytes\r\n", disp);
    if (status == 206 && k > 0 && (size_t)k < sizeof(extra))
        snprintf(extra + k, sizeof(extra) - (size_t)k, "Content-Range: bytes %llu-%llu/%llu\r\n",
                 (unsigned long long)start, (unsigned long long)(start + len - 1),
                 (unsigned long long)size);
    log_debug("execd: download %s: %d, %llu bytes from %llu", path, status,
              (unsigned long long)len, (unsigned long long)start);
    (void)http_respond_file(c, status, "application/octet-stream", fd, start, len, extra);
}
