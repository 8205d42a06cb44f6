/* execd/files: OpenSandbox's files and directories API (doc/execd.md,
 * "Files").
 *
 *   files.c     routes, paths, file info, delete, move, permissions,
 *               search, replace, directories (create, delete, list)
 *   upload.c    POST /files/upload: multipart streamed to disk
 *   download.c  GET /files/download: sendfile with Range
 *
 * execd runs inside the sandbox: a path reaches what the sandbox can see
 * and nothing else (the sandbox's mounts and Landlock are the fence, not
 * this code). What this code does guarantee: no NUL bytes or over-long
 * paths, relative paths and ~ resolved one documented way, no blocking on a
 * FIFO or device, recursive walks and deletes never follow symlinks, writes
 * land whole (temporary file + rename) or not at all, memory bounded
 * whatever the file sizes. */
#ifndef CORDON_EXECD_FILES_H
#define CORDON_EXECD_FILES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct execd;
struct http_conn;
struct http_req;

#define FILES_MAX_PATHS 1024      /* paths in one request */
#define FILES_MAX_RESULTS 100000  /* entries in a listing or search answer */
#define FILES_MAX_DEPTH 256       /* directory levels a walk descends */

/* Routes /files... and /directories...; returns 1 when it answered. */
int files_route(struct execd *ed, struct http_conn *c, const struct http_req *req,
                char **seg, int nseg);

/* Makes a request path usable: refuses empty, NUL bytes, over PATH_MAX;
 * expands a leading ~ to $HOME; makes a relative path absolute against
 * execd's working directory; drops "." and empty segments and resolves
 * ".." lexically. Returns 0, or -EINVAL with *why set. */
int files_path_clean(const char *in, size_t len, char *out, size_t cap, const char **why)
    __attribute__((warn_unused_result));

/* Parses a Range header value against a file of size bytes (RFC 9110
 * §14.1.2): the first satisfiable range of "bytes=a-b", "a-", "-n".
 * Returns 1 and *start, *len; 0 when no range is satisfiable (416);
 * -EINVAL when malformed (416 too, as OpenSandbox). */
int files_range_parse(const char *h, uint64_t size, uint64_t *start, uint64_t *len)
    __attribute__((warn_unused_result));

/* Answers an errno from operation op on path as {code, message}. */
void files_errno(struct http_conn *c, int err, const char *op, const char *path);
/* The OpenSandbox FileInfo object of path (a json_t *). */
void *files_info_json(const char *path, const struct stat *st);

/* Permission {owner, group, mode} as OpenSandbox sends it (mode is octal
 * digits written as a decimal number: 755). */
struct files_perm {
    int has_mode;
    unsigned mode;
    int uid, gid; /* -1: leave */
};
/* Reads a permission object (json_t *; other keys ignored). Returns 0, or
 * -1 with the reason in err (cap bytes). */
int files_perm_parse(void *obj, const char *path, struct files_perm *p, char *err, size_t cap)
    __attribute__((warn_unused_result));
/* Applies p to path (chmod, then chown). Returns 0 or -errno. */
int files_perm_apply(const char *path, const struct files_perm *p)
    __attribute__((warn_unused_result));
/* mkdir -p of path with mode 0755. Returns 0 or -errno. */
int files_mkdirs(const char *path) __attribute__((warn_unused_result));

/* upload.c: the http on_head hook for POST /files/upload (after auth). */
void upload_begin(struct execd *ed, struct http_conn *c, const struct http_req *req);
/* upload.c: the request callback, once the body is complete. */
void upload_finish(struct execd *ed, struct http_conn *c, const struct http_req *req);

/* download.c: GET/HEAD /files/download. */
void download_file(struct execd *ed, struct http_conn *c, const struct http_req *req);

#endif
