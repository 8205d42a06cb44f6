/* execd/upload: POST /files/upload, OpenSandbox's multipart upload, streamed
 * to disk.
 *
 * The form holds parts named "metadata" (JSON {path, owner, group, mode})
 * and "file" (the bytes); the i-th metadata goes with the i-th file, as in
 * OpenSandbox. The body is parsed while it arrives (http_body_stream +
 * http/multipart), so memory is one read buffer whatever the file size:
 *   - a file whose metadata came first is written straight into a
 *     temporary file beside its destination and renamed over it when the
 *     part ends (a broken upload never leaves a half-written file);
 *   - a file that comes before its metadata is spooled to $TMPDIR and
 *     moved into place when the metadata arrives.
 * An error stops the writing; the rest of the body is read and dropped,
 * then the error is answered. Pairs completed before it stay written. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "execd/api.h"
#include "execd/execd.h"
#include "execd/files.h"
#include "http/multipart.h"
#include "http/server.h"
#include "core/banned.h"

#define UPLOAD_META_MAX 65536
#define UPLOAD_MAX_PAIRS 1024

enum part_kind { PART_NONE, PART_META, PART_FILE, PART_OTHER };

struct pending_meta {
    char path[PATH_MAX];
    struct files_perm perm;
};

struct ready { /* a file received whole, installed when the body is */
    char tmp[PATH_MAX];
    char dest[PATH_MAX];
    struct files_perm perm;
};

struct upload {
    struct http_multipart mp;
    enum part_kind kind;
    /* metadata part being read */
    char *meta;
    size_t meta_len;
    /* file part being written */
    int fd;
    char tmp[PATH_MAX];
    char dest[PATH_MAX]; /* "" while spooling (no metadata yet) */
    struct files_perm perm;
    uint64_t written;
    /* pairing */
    struct pending_meta *metas; /* metadata waiting for their file */
    size_t nmeta_wait, cap_meta, meta_seen, file_seen;
    char (*spools)[PATH_MAX];   /* files waiting for their metadata */
    size_t nspool, cap_spool;
    struct ready *ready;
    size_t nready, cap_ready;
    unsigned done;
    /* first error */
    int status;
    const char *code;
    char msg[PATH_MAX + 256];
};

static int up_fail(struct upload *u, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int up_fail(struct upload *u, int status, const char *code, const char *fmt, ...)
{
    if (u->status)
        return -ECANCELED;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(u->msg, sizeof(u->msg), fmt, ap);
    va_end(ap);
    u->status = status;
    u->code = code;
    log_info("execd: upload: %d %s: %s", status, code, u->msg);
    return -ECANCELED;
}

static int up_errno(struct upload *u, int err, const char *op, const char *path)
{
    int status = err == ENOENT ? 404 : (err == EACCES || err == EPERM || err == EROFS) ? 403
                                   : (err == ENOSPC || err == EDQUOT) ? 507
                                   : (err == ENOTDIR || err == EISDIR || err == ELOOP) ? 400
                                                                                      : 500;
    const char *code = status == 404 ? "FILE_NOT_FOUND" : status == 403 ? "PERMISSION_DENIED"
                       : status == 507 ? "NO_SPACE" : status == 400 ? "INVALID_PATH"
                                                                    : "RUNTIME_ERROR";
    return up_fail(u, status, code, "%s %s: %s", op, path, strerror(err));
}

static void close_file(struct upload *u, int keep)
{
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    if (!keep && u->tmp[0])
        unlink(u->tmp);
    u->tmp[0] = '\0';
}

/* Opens a temporary file beside dest (or in $TMPDIR when dest is ""). */
static int open_tmp(struct upload *u, const char *dest)
{
    const char *td = getenv("TMPDIR");
    int n = dest[0] ? snprintf(u->tmp, sizeof(u->tmp), "%s.cordon-upload-XXXXXX", dest)
                    : snprintf(u->tmp, sizeof(u->tmp), "%s/cordon-upload-XXXXXX",
                               td && td[0] == '/' ? td : "/tmp");
    if (n < 0 || (size_t)n >= sizeof(u->tmp)) {
        u->tmp[0] = '\0';
        return up_fail(u, 400, "INVALID_PATH", "the path %s is too long", dest);
    }
    u->fd = mkostemp(u->tmp, O_CLOEXEC);
    if (u->fd < 0) {
        int e = errno;
        u->tmp[0] = '\0';
        return up_errno(u, e, "cannot create a file beside", dest[0] ? dest : "$TMPDIR");
    }
    return 0;
}

/* Makes the finished temporary file src the file dest: the mode of the
 * file it replaces (else 0666 less the umask), then the metadata's
 * permission. copy=1 when src is a spool on another file system. */
static int install(struct upload *u, const char *src, const char *dest,
                   const struct files_perm *perm)
{
    struct stat st;
    mode_t mode;
    if (stat(dest, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return up_fail(u, 400, "INVALID_PATH", "cannot upload to %s: it is a directory",
                           dest);
        mode = st.st_mode & 07777;
    } else {
        mode_t um = umask(0);
        umask(um);
        mode = 0666 & ~um;
    }
    if (chmod(src, mode) < 0)
        return up_errno(u, errno, "cannot set the mode of", src);
    if (rename(src, dest) < 0)
        return up_errno(u, errno, "cannot write", dest);
    int r = files_perm_apply(dest, perm);
    if (r < 0)
        return up_errno(u, -r, "cannot set permissions of", dest);
    u->done++;
    log_info("execd: upload: wrote %s", dest);
    return 0;
}

/* Queues the finished temporary file tmp for dest. */
static int push_ready(struct upload *u, const char *tmp, const char *dest,
                      const struct files_perm *perm)
{
    if (u->nready == u->cap_ready) {
        size_t ncap = u->cap_ready ? u->cap_ready * 2 : 2;
        struct ready *nr = ncap <= UPLOAD_MAX_PAIRS ? realloc(u->ready, ncap * sizeof(*nr))
                                                    : NULL;
        if (!nr) {
            unlink(tmp);
            return up_fail(u, 400, "INVALID_FILE", "more than %d files in one upload",
                           UPLOAD_MAX_PAIRS);
        }
        u->ready = nr;
        u->cap_ready = ncap;
    }
    struct ready *r = &u->ready[u->nready++];
    snprintf(r->tmp, sizeof(r->tmp), "%s", tmp);
    snprintf(r->dest, sizeof(r->dest), "%s", dest);
    r->perm = *perm;
    return 0;
}

/* Copies a spool into a temporary file beside dest, then installs it. */
static int install_spool(struct upload *u, const char *spool, const struct pending_meta *m)
{
    char tmp[PATH_MAX];
    int r;
    struct stat ss, ds;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", m->path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), "/");
    if ((r = files_mkdirs(dir)) < 0)
        return up_errno(u, -r, "cannot create the directory", dir);
    if (stat(spool, &ss) == 0 && stat(dir, &ds) == 0 && ss.st_dev == ds.st_dev)
        return push_ready(u, spool, m->path, &m->perm); /* same file system: no copy */
    int in = open(spool, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return up_errno(u, errno, "cannot read the spooled upload", spool);
    if ((r = open_tmp(u, m->path)) < 0) {
        close(in);
        return r;
    }
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, u->fd, NULL, 1 << 20, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = up_errno(u, errno, "cannot write", m->path);
            break;
        }
        if (n == 0)
            break;
    }
    close(in);
    snprintf(tmp, sizeof(tmp), "%s", u->tmp);
    if (r == 0 && fsync(u->fd) < 0)
        r = up_errno(u, errno, "cannot write", m->path);
    close_file(u, r == 0);
    unlink(spool);
    return r == 0 ? push_ready(u, tmp, m->path, &m->perm) : r;
}

static int meta_done(struct upload *u)
{
    json_error_t e;
    char path[PATH_MAX];
    const char *why;
    struct pending_meta pm;
    json_t *root = json_loadb(u->meta ? u->meta : "", u->meta_len, JSON_REJECT_DUPLICATES, &e);
    int r = 0;
    if (!root || !json_is_object(root)) {
        r = up_fail(u, 400, "INVALID_FILE_METADATA",
                    "metadata %zu: invalid JSON at line %d, column %d: %s", u->meta_seen,
                    root ? 1 : e.line, root ? 1 : e.column,
                    root ? "not an object" : e.text);
        goto out;
    }
    json_t *p = json_object_get(root, "path");
    if (!json_is_string(p) || json_string_length(p) == 0) {
        r = up_fail(u, 400, "INVALID_FILE_METADATA", "metadata %zu: path is empty",
                    u->meta_seen);
        goto out;
    }
    if (files_path_clean(json_string_value(p), json_string_length(p), path, sizeof(path),
                         &why) < 0) {
        r = up_fail(u, 400, "INVALID_PATH", "metadata %zu: path \"%s\": %s", u->meta_seen,
                    json_string_value(p), why);
        goto out;
    }
    /* the metadata is also the permission object: {path, owner, group, mode} */
    char err[PATH_MAX + 128];
    memset(&pm, 0, sizeof(pm));
    snprintf(pm.path, sizeof(pm.path), "%s", path);
    if (files_perm_parse(root, path, &pm.perm, err, sizeof(err)) < 0) {
        r = up_fail(u, 400, "INVALID_FILE_METADATA", "metadata %zu: %s", u->meta_seen, err);
        goto out;
    }
    u->meta_seen++;
    if (u->nspool > 0) { /* its file came first */
        char spool[PATH_MAX];
        snprintf(spool, sizeof(spool), "%s", u->spools[0]);
        memmove(u->spools, u->spools + 1, (u->nspool - 1) * sizeof(*u->spools));
        u->nspool--;
        r = install_spool(u, spool, &pm);
        goto out;
    }
    if (u->nmeta_wait == u->cap_meta) {
        size_t ncap = u->cap_meta ? u->cap_meta * 2 : 4;
        struct pending_meta *nm = ncap <= UPLOAD_MAX_PAIRS
                                      ? realloc(u->metas, ncap * sizeof(*nm)) : NULL;
        if (!nm) {
            r = up_fail(u, 400, "INVALID_FILE", "more than %d files in one upload",
                        UPLOAD_MAX_PAIRS);
            goto out;
        }
        u->metas = nm;
        u->cap_meta = ncap;
    }
    u->metas[u->nmeta_wait++] = pm;
out:
    json_decref(root);
    free(u->meta);
    u->meta = NULL;
    u->meta_len = 0;
    return r;
}

static int on_part(const struct http_mp_part *part, void *data)
{
    struct upload *u = data;
    if (strcmp(part->name, "metadata") == 0) {
        u->kind = PART_META;
        return 0;
    }
    if (strcmp(part->name, "file") != 0) {
        u->kind = PART_OTHER; /* other form fields are ignored (as OpenSandbox) */
        return 0;
    }
    u->kind = PART_FILE;
    u->written = 0;
    u->file_seen++;
    if (u->nmeta_wait > 0) {
        struct pending_meta *m = &u->metas[0];
        snprintf(u->dest, sizeof(u->dest), "%s", m->path);
        u->perm = m->perm;
        memmove(u->metas, u->metas + 1, (u->nmeta_wait - 1) * sizeof(*u->metas));
        u->nmeta_wait--;
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", u->dest);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            int r = files_mkdirs(dir);
            if (r < 0)
                return up_errno(u, -r, "cannot create the directory", dir);
        }
        return open_tmp(u, u->dest);
    }
    if (u->nspool == u->cap_spool) {
        size_t ncap = u->cap_spool ? u->cap_spool * 2 : 4;
        char(*ns)[PATH_MAX] = ncap <= UPLOAD_MAX_PAIRS
                                  ? realloc(u->spools, ncap * sizeof(*ns)) : NULL;
        if (!ns)
            return up_fail(u, 400, "INVALID_FILE", "more than %d files in one upload",
                           UPLOAD_MAX_PAIRS);
        u->spools = ns;
        u->cap_spool = ncap;
    }
    u->dest[0] = '\0';
    return open_tmp(u, "");
}

static int on_data(const uint8_t *p, size_t n, void *data)
{
    struct upload *u = data;
    switch (u->kind) {
    case PART_META:
        if (u->meta_len + n > UPLOAD_META_MAX)
            return up_fail(u, 400, "INVALID_FILE_METADATA", "metadata over %d bytes",
                           UPLOAD_META_MAX);
        char *m = realloc(u->meta, u->meta_len + n);
        if (!m)
            return up_fail(u, 500, "RUNTIME_ERROR", "out of memory");
        memcpy(m + u->meta_len, p, n);
        u->meta = m;
        u->meta_len += n;
        return 0;
    case PART_FILE:
        while (n > 0) {
            ssize_t w = write(u->fd, p, n);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return up_errno(u, errno, "cannot write", u->dest[0] ? u->dest : u->tmp);
            p += w;
            n -= (size_t)w;
            u->written += (uint64_t)w;
        }
        return 0;
    case PART_NONE:
    case PART_OTHER:
        return 0;
    }
    return 0;
}

static int on_part_end(void *data)
{
    struct upload *u = data;
    enum part_kind k = u->kind;
    u->kind = PART_NONE;
    if (k == PART_META)
        return meta_done(u);
    if (k != PART_FILE)
        return 0;
    if (fsync(u->fd) < 0)
        return up_errno(u, errno, "cannot write", u->dest[0] ? u->dest : u->tmp);
    if (!u->dest[0]) { /* spooled: waits for its metadata */
        snprintf(u->spools[u->nspool++], PATH_MAX, "%s", u->tmp);
        close_file(u, 1);
        return 0;
    }
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", u->tmp);
    close_file(u, 1);
    return push_ready(u, tmp, u->dest, &u->perm);
}

static void upload_free(struct upload *u)
{
    if (!u)
        return;
    close_file(u, 0);
    for (size_t i = 0; i < u->nspool; i++)
        unlink(u->spools[i]);
    for (size_t i = 0; i < u->nready; i++)
        unlink(u->ready[i].tmp); /* not installed: the body failed */
    free(u->ready);
    free(u->spools);
    free(u->metas);
    free(u->meta);
    free(u);
}

static int sink_data(struct http_conn *c, const uint8_t *p, size_t n, void *data)
{
    struct upload *u = data;
    (void)c;
    if (u->status)
        return -ECANCELED;
    int r = http_multipart_feed(&u->mp, p, n);
    if (r < 0 && !u->status)
        up_fail(u, 400, "INVALID_FILE", "malformed multipart body: %s", u->mp.why);
    return r < 0 ? -ECANCELED : 0;
}

static void sink_abort(void *data)
{
    log_info("execd: upload: the client went away mid-body; nothing more written");
    upload_free(data);
}

void upload_begin(struct execd *ed, struct http_conn *c, const struct http_req *req)
{
    static const struct http_body_cbs cbs = {.on_data = sink_data, .on_abort = sink_abort};
    static const struct http_mp_cbs mcbs = {
        .on_part = on_part, .on_data = on_data, .on_part_end = on_part_end};
    const char *why;
    (void)ed;
    struct upload *u = calloc(1, sizeof(*u));
    if (!u)
        return; /* buffered instead: answered 413 or 400 later */
    u->fd = -1;
    if (http_multipart_init(&u->mp, http_req_header(req, "Content-Type"), &mcbs, u, &why) < 0)
        up_fail(u, 400, "INVALID_FILE", "%s", why);
    if (http_body_stream(c, &cbs, u) < 0)
        upload_free(u);
}

void upload_finish(struct execd *ed, struct http_conn *c, const struct http_req *req)
{
    struct upload *u = req->body_sink;
    (void)ed;
    if (!u) {
        api_error(c, 400, "INVALID_FILE",
                  "multipart form is empty (want Content-Type: multipart/form-data with "
                  "\"metadata\" and \"file\" parts)");
        return;
    }
    if (!u->status && http_multipart_finish(&u->mp) < 0)
        up_fail(u, 400, "INVALID_FILE", "malformed multipart body: %s", u->mp.why);
    if (!u->status && u->meta_seen == 0 && u->file_seen == 0)
        up_fail(u, 400, "INVALID_FILE_METADATA", "metadata file is missing");
    else if (!u->status && u->meta_seen == 0)
        up_fail(u, 400, "INVALID_FILE_METADATA", "metadata file is missing");
    else if (!u->status && u->file_seen == 0)
        up_fail(u, 400, "INVALID_FILE_CONTENT", "file is missing");
    else if (!u->status && u->meta_seen != u->file_seen)
        up_fail(u, 400, "INVALID_FILE", "metadata and file count mismatch: %zu vs %zu",
                u->meta_seen, u->file_seen);
    /* the body is whole and valid: every file goes in place, in order */
    size_t i = 0;
    for (; !u->status && i < u->nready; i++)
        if (install(u, u->ready[i].tmp, u->ready[i].dest, &u->ready[i].perm) < 0)
            unlink(u->ready[i].tmp);
    if (i > 0) {
        memmove(u->ready, u->ready + i, (u->nready - i) * sizeof(*u->ready));
        u->nready -= i;
    }
    if (u->status)
        api_error(c, u->status, u->code, "%s", u->msg);
    else
        (void)http_respond(c, 200, NULL, NULL, 0, NULL);
    upload_free(u);
}
