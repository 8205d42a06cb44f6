/* execd/files: routes, paths and the metadata operations of the files API
 * (see files.h; wire shapes in doc/execd.md, "Files"). */
#include "execd/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <llhttp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/parse.h"
#include "execd/api.h"
#include "execd/execd.h"
#include "http/server.h"
#include "core/banned.h"

/* ---- paths ---- */

int files_path_clean(const char *in, size_t len, char *out, size_t cap, const char **why)
{
    char raw[PATH_MAX * 2];
    size_t rl = 0;
    if (len == 0) {
        *why = "the path is empty";
        return -EINVAL;
    }
    if (memchr(in, '\0', len)) {
        *why = "the path contains a NUL byte";
        return -EINVAL;
    }
    if (len >= PATH_MAX) {
        *why = "the path is longer than PATH_MAX";
        return -EINVAL;
    }
    if (in[0] == '~' && (len == 1 || in[1] == '/')) {
        const char *home = getenv("HOME");
        if (!home || home[0] != '/')
            home = "/";
        rl = strlen(home);
        if (rl >= PATH_MAX) {
            *why = "$HOME is too long";
            return -EINVAL;
        }
        memcpy(raw, home, rl);
        in++;
        len--;
    } else if (in[0] != '/') {
        if (!getcwd(raw, PATH_MAX)) {
            *why = "execd's working directory is unknown; give an absolute path";
            return -EINVAL;
        }
        rl = strlen(raw);
    }
    raw[rl++] = '/';
    memcpy(raw + rl, in, len);
    rl += len;
    raw[rl] = '\0';
    /* lexical clean: segments, "." dropped, ".." pops */
    size_t o = 0;
    const char *p = raw;
    while (*p) {
        while (*p == '/')
            p++;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        size_t sl = (size_t)(p - s);
        if (sl == 0 || (sl == 1 && s[0] == '.'))
            continue;
        if (sl == 2 && s[0] == '.' && s[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* the slash */
            continue;
        }
        if (o + 1 + sl + 1 > cap || o + 1 + sl >= PATH_MAX) {
            *why = "the path is longer than PATH_MAX";
            return -EINVAL;
        }
        out[o++] = '/';
        memcpy(out + o, s, sl);
        o += sl;
    }
    if (o == 0) {
        if (cap < 2) {
            *why = "no room";
            return -EINVAL;
        }
        out[o++] = '/';
    }
    out[o] = '\0';
    return 0;
}

/* The n-th ?path= of the request, cleaned. Returns 1, 0 when there is no
 * n-th, -1 after answering 400. */
static int query_path(struct http_conn *c, const struct http_req *req, const char *name,
                      unsigned n, char *out, size_t cap)
{
    char raw[PATH_MAX];
    const char *why;
    int len = http_query_nth(req->query, req->query_len, name, n, raw, sizeof(raw));
    if (len == -ENOENT)
        return 0;
    if (len < 0) {
        api_error(c, 400, "INVALID_QUERY", "query parameter '%s': %s", name,
                  len == -ENOSPC ? "longer than PATH_MAX" : "bad percent-escape");
        return -1;
    }
    if (files_path_clean(raw, (size_t)len, out, cap, &why) < 0) {
        api_error(c, 400, "INVALID_PATH", "query parameter '%s' (value %u): %s", name, n + 1,
                  why);
        return -1;
    }
    return 1;
}

/* A JSON string as a cleaned path; answers 400 and returns -1 on failure. */
static int json_path(struct http_conn *c, json_t *v, const char *what, char *out, size_t cap)
{
    const char *why;
    if (!json_is_string(v)) {
        api_error(c, 400, "INVALID_REQUEST_BODY", "%s must be a string path", what);
        return -1;
    }
    if (files_path_clean(json_string_value(v), json_string_length(v), out, cap, &why) < 0) {
        api_error(c, 400, "INVALID_PATH", "%s \"%s\": %s", what, json_string_value(v), why);
        return -1;
    }
    return 0;
}

void files_errno(struct http_conn *c, int err, const char *op, const char *path)
{
    int status = 500;
    const char *code = "RUNTIME_ERROR";
    switch (err) {
    case ENOENT:
        status = 404, code = "FILE_NOT_FOUND";
        break;
    case EACCES:
    case EPERM:
    case EROFS:
        status = 403, code = "PERMISSION_DENIED";
        break;
    case EEXIST:
    case ENOTEMPTY:
        status = 409, code = "ALREADY_EXISTS";
        break;
    case ENOTDIR:
    case EISDIR:
    case ELOOP:
    case ENAMETOOLONG:
    case EXDEV:
    case EINVAL:
        status = 400, code = "INVALID_PATH";
        break;
    case ENOSPC:
    case EDQUOT:
        status = 507, code = "NO_SPACE";
        break;
    default:
        break;
    }
    api_error(c, status, code, "%s %s: %s", op, path, strerror(err));
}

/* ---- file info ---- */

static void rfc3339(const struct timespec *ts, char *out, size_t cap)
{
    struct tm tm;
    time_t t = ts->tv_sec;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%09ldZ", (long)ts->tv_nsec);
}

void *files_info_json(const char *path, const struct stat *st)
{
    char mtime[64], ctime_[64], owner[32], group[32];
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;
    char nss[4096];
    const char *type = S_ISLNK(st->st_mode) ? "symlink"
                       : S_ISDIR(st->st_mode) ? "directory"
                       : S_ISREG(st->st_mode) ? "file"
                                              : "other";
    unsigned perm = st->st_mode & 07777, mode_dec = 0, mul = 1;
    for (; perm; perm >>= 3, mul *= 10) /* 0755 -> 755, as OpenSandbox */
        mode_dec += (perm & 7) * mul;
    rfc3339(&st->st_mtim, mtime, sizeof(mtime));
    rfc3339(&st->st_ctim, ctime_, sizeof(ctime_));
    snprintf(owner, sizeof(owner), "%u", (unsigned)st->st_uid);
    snprintf(group, sizeof(group), "%u", (unsigned)st->st_gid);
    if (getpwuid_r(st->st_uid, &pw, nss, sizeof(nss), &pwp) == 0 && pwp)
        snprintf(owner, sizeof(owner), "%s", pwp->pw_name);
    if (getgrgid_r(st->st_gid, &gr, nss, sizeof(nss), &grp) == 0 && grp)
        snprintf(group, sizeof(group), "%s", grp->gr_name);
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:i}", "path", path, "type", type,
                     "size", (json_int_t)st->st_size, "modified_at", mtime, "created_at",
                     ctime_, "owner", owner, "group", group, "mode", (int)mode_dec);
}

static void files_info(struct http_conn *c, const struct http_req *req)
{
    char path[PATH_MAX], raw[PATH_MAX];
    struct stat st;
    json_t *o = json_object();
    for (unsigned i = 0; o; i++) {
        if (i == FILES_MAX_PATHS) {
            api_error(c, 400, "INVALID_QUERY", "more than %d paths", FILES_MAX_PATHS);
            goto out;
        }
        int r = query_path(c, req, "path", i, path, sizeof(path));
        if (r < 0)
            goto out;
        if (r == 0)
            break;
        if (lstat(path, &st) < 0) {
            files_errno(c, errno, "file info of", path);
            goto out;
        }
        /* keyed by the path as the client wrote it (as OpenSandbox) */
        if (http_query_nth(req->query, req->query_len, "path", i, raw, sizeof(raw)) < 0 ||
            json_object_set_new(o, raw, files_info_json(path, &st)) < 0) {
            api_error(c, 500, "RUNTIME_ERROR", "out of memory");
            goto out;
        }
    }
    if (!o) {
        api_error(c, 500, "RUNTIME_ERROR", "out of memory");
        return;
    }
    api_json(c, 200, o);
    return;
out:
    json_decref(o);
}

/* ---- delete, permissions, move ---- */

static void files_delete(struct http_conn *c, const struct http_req *req)
{
    char path[PATH_MAX];
    struct stat st;
    for (unsigned i = 0; i < FILES_MAX_PATHS; i++) {
        int r = query_path(c, req, "path", i, path, sizeof(path));
        if (r < 0)
            return;
        if (r == 0)
            break;
        if (lstat(path, &st) < 0) {
            if (errno == ENOENT)
                continue; /* already gone: done (as OpenSandbox) */
            files_errno(c, errno, "cannot delete", path);
            return;
        }
        if (S_ISDIR(st.st_mode)) {
            api_error(c, 400, "IS_A_DIRECTORY",
                      "%s is a directory; delete it with DELETE /directories?path=", path);
            return;
        }
        if (unlink(path) < 0) {
            files_errno(c, errno, "cannot delete", path);
            return;
        }
        log_info("execd: files: deleted %s", path);
    }
    (void)http_respond(c, 200, NULL, NULL, 0, NULL);
}

static int name_id(const char *s, int group, int *out)
{
    char nss[4096];
    uint32_t v;
    if (parse_u32_str(s, 0, 0x7fffffff, &v) == 0) {
        *out = (int)v;
        return 0;
    }
    if (group) {
        struct group g, *gp = NULL;
        if (getgrnam_r(s, &g, nss, sizeof(nss), &gp) != 0 || !gp)
            return -ENOENT;
        *out = (int)gp->gr_gid;
    } else {
        struct passwd p, *pp = NULL;
        if (getpwnam_r(s, &p, nss, sizeof(nss), &pp) != 0 || !pp)
            return -ENOENT;
        *out = (int)pp->pw_uid;
    }
    return 0;
}

int files_perm_parse(void *obj, const char *path, struct files_perm *p, char *err, size_t cap)
{
    json_t *o = obj;
    p->has_mode = 0;
    p->mode = 0;
    p->uid = p->gid = -1;
    if (!json_is_object(o)) {
        snprintf(err, cap, "the permission of %s must be an object {owner, group, mode}", path);
        return -1;
    }
    json_t *m = json_object_get(o, "mode");
    if (m && !json_is_null(m)) {
        json_int_t v = json_is_integer(m) ? json_integer_value(m) : -1;
        unsigned mode = 0;
        int ok = v >= 0 && v <= 7777;
        for (json_int_t d = v, sh = 0; ok && d; d /= 10, sh += 3) {
            if (d % 10 > 7)
                ok = 0;
            mode |= (unsigned)(d % 10) << sh;
        }
        if (!ok) {
            snprintf(err, cap,
                     "mode of %s must be octal digits written as a number (755), up to 7777",
                     path);
            return -1;
        }
        p->has_mode = v != 0; /* 0: leave the mode (as OpenSandbox) */
        p->mode = mode;
    }
    static const char *const keys[2] = {"owner", "group"};
    for (int g = 0; g < 2; g++) {
        json_t *s = json_object_get(o, keys[g]);
        if (!s || json_is_null(s) || (json_is_string(s) && !json_string_length(s)))
            continue;
        if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s)) {
            snprintf(err, cap, "%s of %s must be a string", keys[g], path);
            return -1;
        }
        if (name_id(json_string_value(s), g, g ? &p->gid : &p->uid) < 0) {
            snprintf(err, cap, "%s %s of %s: no such %s", keys[g], json_string_value(s), path,
                     g ? "group" : "user");
            return -1;
        }
    }
    return 0;
}

int files_perm_apply(const char *path, const struct files_perm *p)
{
    if (p->has_mode && chmod(path, p->mode) < 0)
        return -errno;
    if ((p->uid >= 0 || p->gid >= 0) && chown(path, (uid_t)p->uid, (gid_t)p->gid) < 0)
        return -errno;
    return 0;
}

int files_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    struct stat st;
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return -errno;
    if (stat(buf, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* POST /files/permissions and POST /directories: {path: {owner,group,mode}}. */
static void files_perm_each(struct http_conn *c, const struct http_req *req, int mkdirs)
{
    char path[PATH_MAX];
    const char *key;
    json_t *val;
    struct files_perm p;
    char err[PATH_MAX + 128];
    json_t *root = api_body_object(c, req);
    if (!root)
        return;
    if (json_object_size(root) > FILES_MAX_PATHS) {
        api_error(c, 400, "INVALID_REQUEST_BODY", "more than %d paths", FILES_MAX_PATHS);
        goto out;
    }
    json_object_foreach(root, key, val) {
        json_t *k = json_string(key);
        int bad = json_path(c, k, "the key", path, sizeof(path));
        json_decref(k);
        if (bad < 0)
            goto out;
        if (files_perm_parse(val, path, &p, err, sizeof(err)) < 0) {
            api_error(c, 400, "INVALID_REQUEST_BODY", "%s", err);
            goto out;
        }
        int r = mkdirs ? files_mkdirs(path) : 0;
        if (r < 0) {
            files_errno(c, -r, "cannot create directory", path);
            goto out;
        }
        if ((r = files_perm_apply(path, &p)) < 0) {
            files_errno(c, -r, "cannot set permissions of", path);
            goto out;
        }
        log_info("execd: files: %s %s", mkdirs ? "created directory" : "set permissions of",
                 path);
    }
    (void)http_respond(c, 200, NULL, NULL, 0, NULL);
out:
    json_decref(root);
}

static void files_move(struct http_conn *c, const struct http_req *req)
{
    char src[PATH_MAX], dst[PATH_MAX], dir[PATH_MAX];
    struct stat st;
    json_error_t e;
    json_t *root = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!root) {
        api_error(c, 400, "INVALID_REQUEST_BODY",
                  "invalid JSON at line %d, column %d (byte %d): %s", e.line, e.column,
                  e.position, e.text);
        return;
    }
    if (!json_is_array(root) || json_array_size(root) > FILES_MAX_PATHS) {
        api_error(c, 400, "INVALID_REQUEST_BODY",
                  "the body must be an array of {\"src\", \"dest\"} (at most %d)",
                  FILES_MAX_PATHS);
        goto out;
    }
    size_t i;
    json_t *it;
    json_array_foreach(root, i, it) {
        if (!json_is_object(it)) {
            api_error(c, 400, "INVALID_REQUEST_BODY", "item %zu must be {\"src\", \"dest\"}", i);
            goto out;
        }
        if (json_path(c, json_object_get(it, "src"), "src", src, sizeof(src)) < 0 ||
            json_path(c, json_object_get(it, "dest"), "dest", dst, sizeof(dst)) < 0)
            goto out;
        if (lstat(src, &st) < 0) {
            files_errno(c, errno, "cannot move", src);
            goto out;
        }
        snprintf(dir, sizeof(dir), "%s", dst);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir)
            *slash = '\0';
        else
            snprintf(dir, sizeof(dir), "/");
        int r = files_mkdirs(dir);
        if (r < 0) {
            files_errno(c, -r, "cannot create the destination directory", dir);
            goto out;
        }
        /* never replace: the destination must not exist (as OpenSandbox),
         * checked and renamed in one step */
        if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) < 0) {
            int err = errno;
            if (err == EEXIST)
                api_error(c, 409, "ALREADY_EXISTS", "cannot move %s: destination %s exists",
                          src, dst);
            else if (err == EXDEV)
                api_error(c, 400, "CROSS_DEVICE",
                          "cannot move %s to %s: they are on different file systems; "
                          "download and upload instead", src, dst);
            else
                files_errno(c, err, "cannot move to", dst);
            goto out;
        }
        log_info("execd: files: moved %s to %s", src, dst);
    }
    (void)http_respond(c, 200, NULL, NULL, 0, NULL);
out:
    json_decref(root);
}

/* ---- walks: list and search ---- */

struct walk {
    struct http_conn *c;
    json_t *out;
    unsigned max_depth;  /* levels below the root to list */
    const char *pattern; /* search: basename glob; NULL: list */
    int failed;          /* answered already */
};

/* Lists the directory open as fd (its path in path, length len, room
 * PATH_MAX) at depth; takes fd. Subdirectories are opened relative to their
 * parent with O_NOFOLLOW, never by path: a directory swapped for a symlink
 * between readdir and the descent is refused (ELOOP), not followed. */
static int walk_dir(struct walk *w, int fd, char *path, size_t len, unsigned depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        files_errno(w->c, e, "cannot read directory", path);
        w->failed = 1;
        return -1;
    }
    struct dirent *de;
    int r = 0;
    while (r == 0 && (errno = 0, de = readdir(d))) {
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        size_t nl = strlen(de->d_name);
        if (len + 1 + nl >= PATH_MAX)
            continue; /* cannot be named within PATH_MAX */
        path[len] = len == 1 ? '\0' : '/';
        size_t base = len == 1 ? 1 : len + 1;
        memcpy(path + base, de->d_name, nl + 1);
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            path[len] = '\0';
            continue; /* vanished meanwhile */
        }
        int is_dir = S_ISDIR(st.st_mode);
        int want = w->pattern ? !is_dir && fnmatch(w->pattern, de->d_name, 0) == 0 : 1;
        if (want) {
            if (json_array_size(w->out) >= FILES_MAX_RESULTS) {
                api_error(w->c, 400, "TOO_MANY_RESULTS",
                          "more than %d entries under the path; narrow the %s",
                          FILES_MAX_RESULTS, w->pattern ? "path or the pattern" : "depth");
                w->failed = 1;
                r = -1;
                break;
            }
            json_array_append_new(w->out, files_info_json(path, &st));
        }
        if (is_dir && depth + 1 < w->max_depth) {
            int sub = openat(dirfd(d), de->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            /* unreadable, vanished, or no longer a directory (a symlink put
             * in its place): skipped */
            if (sub >= 0)
                r = walk_dir(w, sub, path, base + nl, depth + 1);
        }
        path[len] = '\0';
    }
    closedir(d);
    return r;
}

static void files_walk(struct http_conn *c, const struct http_req *req, int search)
{
    char path[PATH_MAX], buf[PATH_MAX], num[16];
    struct stat st;
    struct walk w = {.c = c, .max_depth = FILES_MAX_DEPTH};
    int r = query_path(c, req, "path", 0, path, sizeof(path));
    if (r < 0)
        return;
    if (r == 0) {
        api_error(c, 400, "MISSING_QUERY", "missing query parameter 'path'");
        return;
    }
    if (search) {
        int n = http_query_get(req->query, req->query_len, "pattern", buf, sizeof(buf));
        if (n == -ENOENT || n == 0)
            snprintf(buf, sizeof(buf), "**");
        else if (n < 0 || strlen(buf) != (size_t)n) {
            api_error(c, 400, "INVALID_QUERY", "query parameter 'pattern' is not a valid glob");
            return;
        }
        w.pattern = buf;
    } else {
        w.max_depth = 1;
        int n = http_query_get(req->query, req->query_len, "depth", num, sizeof(num));
        uint32_t d;
        if (n >= 0 && parse_u32_str(num, 0, FILES_MAX_DEPTH, &d) < 0) {
            api_error(c, 400, "INVALID_QUERY",
                      "invalid query parameter 'depth': %s (want 0..%d)", num, FILES_MAX_DEPTH);
            return;
        }
        if (n >= 0)
            w.max_depth = d;
    }
    /* Opened once (O_PATH: no device or FIFO is opened for real), without
     * following a final symlink; everything below is read through this fd
     * (no path is looked up twice). */
    int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        files_errno(c, errno, search ? "cannot search" : "cannot list", path);
        if (fd >= 0)
            close(fd);
        return;
    }
    if (S_ISLNK(st.st_mode)) {
        close(fd);
        api_error(c, 400, "INVALID_PATH", "%s is a symbolic link; walks never follow links",
                  path);
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        close(fd);
        api_error(c, 400, "NOT_A_DIRECTORY", "%s is not a directory", path);
        return;
    }
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int e = errno;
    close(fd);
    if (dfd < 0) {
        files_errno(c, e, search ? "cannot search" : "cannot list", path);
        return;
    }
    fd = dfd;
    w.out = json_array();
    if (!w.out) {
        close(fd);
        api_error(c, 500, "RUNTIME_ERROR", "out of memory");
        return;
    }
    if (w.max_depth == 0)
        close(fd);
    else if (walk_dir(&w, fd, path, strlen(path), 0) < 0) {
        json_decref(w.out);
        return;
    }
    api_json(c, 200, w.out);
}

/* ---- delete directories ---- */

/* Removes name (in the directory dfd) and, if it is a directory, all it
 * holds; never follows a symlink. Returns 0 or -errno (*where names it). */
static int rm_tree(int dfd, const char *name, unsigned depth, char *where, size_t cap)
{
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM) {
        snprintf(where, cap, "%s", name);
        return -errno;
    }
    if (depth >= FILES_MAX_DEPTH) {
        snprintf(where, cap, "%s (deeper than %d levels)", name, FILES_MAX_DEPTH);
        return -ELOOP;
    }
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(where, cap, "%s", name);
        return -errno;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        snprintf(where, cap, "%s", name);
        return -e;
    }
    struct dirent *de;
    int r = 0;
    while (r == 0 && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            r = rm_tree(dirfd(d), de->d_name, depth + 1, where, cap);
    }
    closedir(d);
    if (r == 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
        snprintf(where, cap, "%s", name);
        r = -errno;
    }
    return r;
}

static void dirs_delete(struct http_conn *c, const struct http_req *req)
{
    char path[PATH_MAX], where[PATH_MAX + 64];
    for (unsigned i = 0; i < FILES_MAX_PATHS; i++) {
        int r = query_path(c, req, "path", i, path, sizeof(path));
        if (r < 0)
            return;
        if (r == 0)
            break;
        if (strcmp(path, "/") == 0) {
            api_error(c, 400, "INVALID_PATH", "refusing to delete /");
            return;
        }
        char *slash = strrchr(path, '/');
        *slash = '\0';
        int dfd = open(slash == path ? "/" : path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        *slash = '/';
        if (dfd < 0) {
            if (errno == ENOENT)
                continue;
            files_errno(c, errno, "cannot delete", path);
            return;
        }
        where[0] = '\0';
        r = rm_tree(dfd, slash + 1, 0, where, sizeof(where));
        close(dfd);
        if (r < 0) {
            char msg[PATH_MAX * 2 + 128];
            if (snprintf(msg, sizeof(msg), "%s (at %s)", path, where) >= (int)sizeof(msg))
                msg[sizeof(msg) - 1] = '\0';
            files_errno(c, -r, "cannot delete", msg);
            return;
        }
        log_info("execd: files: deleted directory %s", path);
    }
    (void)http_respond(c, 200, NULL, NULL, 0, NULL);
}

/* ---- replace ---- */

#define REPLACE_CHUNK 65536

/* Streams src into a temporary file beside it with every old replaced by
 * new, then renames it over src (mode and owner kept). Returns the count
 * or -errno (-EINVAL: not a regular file, -ELOOP: a symbolic link).
 *
 * Everything happens relative to one fd of the parent directory, and the
 * file itself is opened with O_NOFOLLOW: a symlink planted at path (or
 * swapped in between the checks) is never followed, so the content of a
 * file elsewhere (/etc/shadow through a link in the workdir) is never read
 * and copied into the workdir. */
static long replace_one(const char *path, const char *old, size_t olen, const char *new,
                        size_t nlen)
{
    char tmp[NAME_MAX + 1], dir[PATH_MAX];
    struct stat st;
    long count = 0;
    int r = 0, out = -1, in = -1;
    char *buf = NULL;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dl = slash ? (size_t)(slash - path) : 0;
    if (!*base || dl >= sizeof(dir))
        return -EINVAL;
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (dl == 0)
        snprintf(dir, sizeof(dir), "/"); /* "/x": the directory is "/" */
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)dl, path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    in = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (in < 0) {
        r = -errno;
        goto done;
    }
    if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
        r = -EINVAL; /* a directory, FIFO, device: not a regular file */
        goto done;
    }
    for (int tries = 0; out < 0; tries++) {
        char rnd[8];
        if (getentropy(rnd, sizeof(rnd)) < 0 ||
            snprintf(tmp, sizeof(tmp), ".%.*s.cordon-replace-%02x%02x%02x%02x%02x%02x",
                     (int)(NAME_MAX - 40), base, (unsigned char)rnd[0], (unsigned char)rnd[1],
                     (unsigned char)rnd[2], (unsigned char)rnd[3], (unsigned char)rnd[4],
                     (unsigned char)rnd[5]) >= (int)sizeof(tmp)) {
            r = -ENAMETOOLONG;
            goto done;
        }
        out = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0 && (errno != EEXIST || tries >= 16)) {
            r = -errno;
            goto done;
        }
    }
    buf = malloc(REPLACE_CHUNK + olen);
    if (!buf) {
        r = -ENOMEM;
        goto fail;
    }
    size_t have = 0;
    for (;;) {
        ssize_t n = read(in, buf + have, REPLACE_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            goto fail;
        }
        have += (size_t)n;
        size_t pos = 0;
        for (;;) {
            char *hit = memmem(buf + pos, have - pos, old, olen);
            if (!hit)
                break;
            size_t pre = (size_t)(hit - (buf + pos));
            if ((pre && write(out, buf + pos, pre) != (ssize_t)pre) ||
                (nlen && write(out, new, nlen) != (ssize_t)nlen)) {
                r = errno ? -errno : -EIO;
                goto fail;
            }
            pos += pre + olen;
            count++;
        }
        /* keep the last olen-1 bytes: a match may straddle reads */
        size_t keep = n == 0 ? 0 : (have - pos < olen - 1 ? have - pos : olen - 1);
        size_t emit_len = have - pos - keep;
        if (emit_len && write(out, buf + pos, emit_len) != (ssize_t)emit_len) {
            r = errno ? -errno : -EIO;
            goto fail;
        }
        memmove(buf, buf + pos + emit_len, keep);
        have = keep;
        if (n == 0)
            break;
    }
    if (fchmod(out, st.st_mode & 07777) < 0 ||
        (fchown(out, st.st_uid, st.st_gid) < 0 && errno != EPERM) || fsync(out) < 0 ||
        renameat(dfd, tmp, dfd, base) < 0) {
        r = -errno;
        goto fail;
    }
    goto done;
fail:
    unlinkat(dfd, tmp, 0);
done:
    free(buf);
    if (out >= 0)
        close(out);
    if (in >= 0)
        close(in);
    close(dfd);
    return r < 0 ? r : count;
}

static void files_replace(struct http_conn *c, const struct http_req *req)
{
    char path[PATH_MAX], v[8];
    const char *key;
    json_t *val;
    int verbose = http_query_get(req->query, req->query_len, "verbose", v, sizeof(v)) >= 0 &&
                  strcmp(v, "true") == 0;
    json_t *root = api_body_object(c, req);
    json_t *res = json_object();
    if (!root || !res)
        goto out;
    json_object_foreach(root, key, val) {
        json_t *k = json_string(key);
        int bad = json_path(c, k, "the key", path, sizeof(path));
        json_decref(k);
        if (bad < 0)
            goto out;
        json_t *o = json_object_get(val, "old"), *n = json_object_get(val, "new");
        if (!json_is_object(val) || !json_is_string(o) || (n && !json_is_string(n) && !json_is_null(n))) {
            api_error(c, 400, "INVALID_REQUEST_BODY",
                      "the entry of %s must be {\"old\": string, \"new\": string}", path);
            goto out;
        }
        if (json_string_length(o) == 0) {
            api_error(c, 400, "INVALID_REQUEST_BODY", "old content must not be empty (%s)",
                      path);
            goto out;
        }
        long cnt = replace_one(path, json_string_value(o), json_string_length(o),
                               json_is_string(n) ? json_string_value(n) : "",
                               json_is_string(n) ? json_string_length(n) : 0);
        if (cnt == -EINVAL) {
            api_error(c, 400, "NOT_A_FILE", "cannot replace in %s: not a regular file", path);
            goto out;
        }
        if (cnt == -ELOOP) {
            api_error(c, 400, "INVALID_PATH",
                      "cannot replace in %s: a symbolic link (never followed)", path);
            goto out;
        }
        if (cnt < 0) {
            files_errno(c, (int)-cnt, "cannot replace content in", path);
            goto out;
        }
        log_info("execd: files: replaced %ld occurrence(s) in %s", cnt, path);
        json_object_set_new(res, key, json_pack("{s:I}", "replacedCount", (json_int_t)cnt));
    }
    if (verbose) {
        api_json(c, 200, res);
        res = NULL;
    } else {
        (void)http_respond(c, 200, NULL, NULL, 0, NULL);
    }
out:
    json_decref(res);
    json_decref(root);
}

/* ---- routing ---- */

static void not_allowed(struct http_conn *c, const struct http_req *req)
{
    api_error(c, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %.*s", req->method_name,
              (int)req->path_len, req->path);
}

int files_route(struct execd *ed, struct http_conn *c, const struct http_req *req, char **seg,
                int nseg)
{
    int m = req->method;
    const char *op = nseg == 2 ? seg[1] : "";
    if (strcmp(seg[0], "directories") == 0) {
        if (nseg == 1 && m == HTTP_POST)
            files_perm_each(c, req, 1);
        else if (nseg == 1 && m == HTTP_DELETE)
            dirs_delete(c, req);
        else if (nseg == 2 && strcmp(op, "list") == 0 && m == HTTP_GET)
            files_walk(c, req, 0);
        else if (nseg == 1 || (nseg == 2 && strcmp(op, "list") == 0))
            not_allowed(c, req);
        else
            return 0;
        return 1;
    }
    if (nseg == 1) {
        if (m == HTTP_DELETE)
            files_delete(c, req);
        else
            not_allowed(c, req);
        return 1;
    }
    if (nseg != 2)
        return 0;
    static const struct {
        const char *op;
        int method;
    } ops[] = {{"info", HTTP_GET},        {"mv", HTTP_POST},       {"permissions", HTTP_POST},
               {"search", HTTP_GET},      {"replace", HTTP_POST},  {"upload", HTTP_POST},
               {"download", HTTP_GET}};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(op, ops[i].op) != 0)
            continue;
        if (m != ops[i].method && !(ops[i].method == HTTP_GET && m == HTTP_HEAD &&
                                    strcmp(op, "download") == 0)) {
            not_allowed(c, req);
            return 1;
        }
        switch (i) {
        case 0: files_info(c, req); break;
        case 1: files_move(c, req); break;
        case 2: files_perm_each(c, req, 0); break;
        case 3: files_walk(c, req, 1); break;
        case 4: files_replace(c, req); break;
        case 5: upload_finish(ed, c, req); break;
        default: download_file(ed, c, req); break;
        }
        return 1;
    }
    return 0;
}
