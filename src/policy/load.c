/* policy/load: reading, the top-level schema, network_policies entries,
 * binaries and the static sections. Endpoints are in load_endpoint.c.
 *
 * One pass over the YAML tree validates and compiles at the same time;
 * every problem is collected (vctx) and the policy is handed out only when
 * there was no error. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/glob.h"
#include "policy/policy_int.h"
#include "policy/vctx.h"
#include "policy/ytree.h"

#include "core/banned.h"

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- binaries ---- */

struct bin_build {
    struct policy_binary *b;
    const struct ynode *path;
};

/* Non-glob binaries that are symlinks also match their target, since the
 * proxy sees the resolved /proc/PID/exe (OpenShell §8 #13). */
static void resolve_symlink(struct vctx *c, const struct ynode *n, struct policy_binary *b)
{
    struct stat st;
    if (lstat(b->path, &st) < 0) {
        v_warn(c, n, "%s does not exist on this host (it can only match if it exists in the "
                     "sandbox)", b->path);
        return;
    }
    if (!S_ISLNK(st.st_mode))
        return;
    char *real = realpath(b->path, NULL);
    if (!real) {
        v_warn(c, n, "%s is a dangling symlink (it can never match a running executable)",
               b->path);
        return;
    }
    if (strcmp(real, b->path) != 0)
        b->target = v_strdup(real);
    free(real);
}

/* Returns NULL when an absolute executable path or path glob is well
 * formed, else what is wrong. */
static const char *exe_path_problem(const char *s)
{
    if (s[0] != '/')
        return "must be an absolute path (e.g. /usr/bin/curl or /usr/bin/python3*)";
    if (strlen(s) > POLICY_MAX_FS_PATH_LEN)
        return "is longer than 4096 bytes";
    if (strcmp(s, "/") == 0 || s[strlen(s) - 1] == '/')
        return "names a directory (an executable path must not end with '/'; use /dir/* or "
               "/dir/**)";
    for (const char *seg = s + 1; seg; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL) {
        size_t l = strcspn(seg, "/");
        if (l == 0)
            return "contains '//' (executables are matched by their resolved path)";
        if ((l == 1 && seg[0] == '.') || (l == 2 && seg[0] == '.' && seg[1] == '.'))
            return "contains a '.' or '..' segment (executables are matched by their resolved "
                   "path)";
    }
    return NULL;
}

static void f_bin_path(struct vctx *c, const struct ynode *n, void *obj)
{
    struct bin_build *bb = obj;
    const char *s, *why;
    bb->path = n;
    if (!v_str(c, n, &s, "an absolute executable path or glob"))
        return;
    if ((why = exe_path_problem(s))) {
        v_error(c, n, "'%s' %s", s, why);
        return;
    }
    bb->b->path = v_strdup(s);
    bb->b->is_glob = glob_has_wildcard(s);
    v_warn_metachars(c, n, s);
    if (strcmp(s, "/**") == 0)
        v_warn(c, n, "'/**' matches every executable (name the binaries that need this access)");
    if (!bb->b->is_glob)
        resolve_symlink(c, n, bb->b);
}

static void f_bin_harness(struct vctx *c, const struct ynode *n, void *obj)
{
    v_warn(c, n, "the legacy 'harness' field is ignored");
}

static void f_bin_allow_env(struct vctx *c, const struct ynode *n, void *obj)
{
    (void)v_bool(c, n, &((struct bin_build *)obj)->b->allow_env_injection);
}

static void v_binary(struct vctx *c, const struct ynode *n, struct policy_binary *b)
{
    static const struct vfield fields[] = {{"path", f_bin_path}, {"harness", f_bin_harness},
                                           {"allow_env_injection", f_bin_allow_env}};
    struct bin_build bb = {.b = b};
    if (!v_map(c, n, fields, NFIELDS(fields), &bb, "a binary is a map {path: /usr/bin/curl}"))
        return;
    if (!bb.path)
        v_error(c, n, "path is required (e.g. {path: /usr/bin/curl})");
}

/* ---- network_policies entries ---- */

struct entry_build {
    struct policy_entry *e;
    const struct ynode *endpoints, *binaries;
};

static void f_entry_name(struct vctx *c, const struct ynode *n, void *obj)
{
    struct entry_build *eb = obj;
    const char *s;
    if (v_str(c, n, &s, "a display name; logs show the map key"))
        eb->e->name = v_strdup(s);
}

static void f_entry_endpoints(struct vctx *c, const struct ynode *n, void *obj)
{
    struct entry_build *eb = obj;
    eb->endpoints = n;
    if (!v_seq(c, n, "a list of endpoints {host, port, ...}"))
        return;
    if (n->n == 0) {
        v_error(c, n, "empty list can never match (add at least one endpoint)");
        return;
    }
    eb->e->endpoints = v_calloc(n->n, sizeof(*eb->e->endpoints));
    eb->e->n_endpoints = n->n;
    for (size_t i = 0; i < n->n; i++) {
        struct policy_endpoint *ep = &eb->e->endpoints[i];
        ep->entry = eb->e;
        ep->index = (int)i;
        size_t mark = v_push(c, "[%zu]", i);
        v_endpoint(c, n->items[i], ep);
        v_pop(c, mark);
    }
}

static void f_entry_binaries(struct vctx *c, const struct ynode *n, void *obj)
{
    struct entry_build *eb = obj;
    eb->binaries = n;
    if (!v_seq(c, n, "a list of {path: ...} maps"))
        return;
    if (n->n == 0) {
        v_error(c, n, "empty list can never match (add at least one {path: ...})");
        return;
    }
    eb->e->binaries = v_calloc(n->n, sizeof(*eb->e->binaries));
    eb->e->n_binaries = n->n;
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = v_push(c, "[%zu]", i);
        v_binary(c, n->items[i], &eb->e->binaries[i]);
        v_pop(c, mark);
    }
}

static void v_entry(struct vctx *c, const struct ynode *n, struct policy_entry *e)
{
    static const struct vfield fields[] = {
        {"name", f_entry_name},
        {"endpoints", f_entry_endpoints},
        {"binaries", f_entry_binaries},
    };
    struct entry_build eb = {.e = e};
    if (!v_map(c, n, fields, NFIELDS(fields), &eb,
               "an entry is a map {name, endpoints: [...], binaries: [...]}"))
        return;
    if (!eb.endpoints)
        v_error(c, n, "endpoints is required (a list of {host, port})");
    if (!eb.binaries) {
        e->no_binaries = true;
        v_warn(c, n, "no binaries: this entry matches no program, so its endpoints allow "
                     "nothing (add binaries: [{path: ...}])");
    }
}

static bool key_name_ok(const char *k)
{
    size_t l = strlen(k);
    return l > 0 && l <= POLICY_MAX_KEY_LEN &&
           strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == l;
}

static int pair_cmp(const void *a, const void *b, void *map)
{
    const struct ynode *m = map;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return strcmp(m->items[2 * x]->str, m->items[2 * y]->str);
}

/* Entries are compiled in sorted key order: that is the decision order. */
static void f_network_policies(struct vctx *c, const struct ynode *n, void *obj)
{
    struct policy *p = obj;
    if (n->kind != YN_MAP) {
        v_error(c, n, "expected a map, got %s (a map from policy name to "
                      "{endpoints, binaries})", ytree_type_name(n));
        return;
    }
    size_t np = n->n / 2, cnt = 0;
    size_t *idx = v_calloc(np, sizeof(*idx));
    for (size_t i = 0; i < np; i++) {
        const struct ynode *k = n->items[2 * i];
        if (!v_map_key_ok(c, n, i))
            continue;
        if (!key_name_ok(k->str)) {
            v_error(c, k, "policy name '%.64s' is not allowed (1-128 letters, digits, '_', '-', "
                          "'.')", k->str);
            continue;
        }
        if (strncmp(k->str, "_provider_", 10) == 0) {
            /* OpenShell composes the layers of attached providers under
             * this prefix and refuses it in a policy a user writes */
            v_error(c, k, "policy name '%.64s' uses the reserved prefix '_provider_' (OpenShell "
                          "keeps it for provider layers; rename the entry)", k->str);
            continue;
        }
        idx[cnt++] = i;
    }
    qsort_r(idx, cnt, sizeof(*idx), pair_cmp, (void *)n);
    p->entries = v_calloc(cnt, sizeof(*p->entries));
    p->n_entries = cnt;
    for (size_t i = 0; i < cnt; i++) {
        const char *key = n->items[2 * idx[i]]->str;
        p->entries[i].key = v_strdup(key);
        size_t mark = v_push(c, ".%s", key);
        v_entry(c, n->items[2 * idx[i] + 1], &p->entries[i]);
        v_pop(c, mark);
    }
    free(idx);
}

/* ---- static sections ---- */

/* Lexically normalizes an absolute filesystem path into out: collapses
 * '//', drops '.' segments and a trailing '/'. Returns what is wrong, or
 * NULL. '..' is refused rather than resolved. */
static const char *fs_path_normalize(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    if (s[0] != '/')
        return "must be an absolute path";
    if (strlen(s) > POLICY_MAX_FS_PATH_LEN)
        return "is longer than 4096 bytes";
    for (const char *seg = s; *seg;) {
        while (*seg == '/')
            seg++;
        size_t l = strcspn(seg, "/");
        if (l == 0)
            break;
        if (l == 2 && seg[0] == '.' && seg[1] == '.')
            return "must not contain '..'";
        if (!(l == 1 && seg[0] == '.')) {
            if (o + 1 + l + 1 > cap)
                return "is too long";
            out[o++] = '/';
            memcpy(out + o, seg, l);
            o += l;
        }
        seg += l;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return NULL;
}

struct fs_build {
    struct policy *p;
    const struct ynode *node;
    size_t total;
};

static void fs_list(struct vctx *c, const struct ynode *n, struct fs_build *fb, bool rw)
{
    char norm[POLICY_MAX_FS_PATH_LEN + 2];
    const char *s, *why;
    if (!v_seq(c, n, "a list of absolute paths"))
        return;
    char **list = v_calloc(n->n, sizeof(char *));
    size_t cnt = 0;
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = v_push(c, "[%zu]", i);
        if (v_str(c, n->items[i], &s, "an absolute path")) {
            if ((why = fs_path_normalize(s, norm, sizeof(norm))))
                v_error(c, n->items[i], "'%.200s' %s (allowed: absolute paths without '..', "
                                        "at most 4096 bytes)", s, why);
            else if (rw && strcmp(norm, "/") == 0)
                v_error(c, n->items[i], "read_write must not be '/' (list the directories the "
                                        "sandbox may write)");
            else
                list[cnt++] = v_strdup(norm);
        }
        v_pop(c, mark);
    }
    fb->total += n->n;
    if (rw) {
        fb->p->fs.read_write = list;
        fb->p->fs.n_read_write = cnt;
    } else {
        fb->p->fs.read_only = list;
        fb->p->fs.n_read_only = cnt;
    }
}

static void f_fs_workdir(struct vctx *c, const struct ynode *n, void *obj)
{
    struct fs_build *fb = obj;
    (void)v_bool(c, n, &fb->p->fs.include_workdir);
}

static void f_fs_ro(struct vctx *c, const struct ynode *n, void *obj) { fs_list(c, n, obj, false); }
static void f_fs_rw(struct vctx *c, const struct ynode *n, void *obj) { fs_list(c, n, obj, true); }

static void f_filesystem(struct vctx *c, const struct ynode *n, void *obj)
{
    static const struct vfield fields[] = {
        {"include_workdir", f_fs_workdir}, {"read_only", f_fs_ro}, {"read_write", f_fs_rw}};
    struct fs_build fb = {.p = obj, .node = n};
    /* A section without include_workdir leaves the workdir out, as in
     * OpenShell (granting it would be wider than the file reads there);
     * without any section the built-in default includes it (default_fs). */
    fb.p->fs.include_workdir = false;
    if (!v_map(c, n, fields, NFIELDS(fields), &fb, "a map {include_workdir, read_only, "
                                                   "read_write}"))
        return;
    if (fb.total > POLICY_MAX_FS_PATHS)
        v_error(c, n, "%zu paths in read_only and read_write (at most %d)", fb.total,
                POLICY_MAX_FS_PATHS);
}

static void f_landlock_compat(struct vctx *c, const struct ynode *n, void *obj)
{
    static const char *const vals[] = {"best_effort", "hard_requirement", NULL};
    struct policy *p = obj;
    int i = v_enum(c, n, vals);
    if (i >= 0)
        p->landlock = i == 0 ? POLICY_LANDLOCK_BEST_EFFORT : POLICY_LANDLOCK_HARD;
}

static void f_landlock(struct vctx *c, const struct ynode *n, void *obj)
{
    static const struct vfield fields[] = {{"compatibility", f_landlock_compat}};
    (void)v_map(c, n, fields, NFIELDS(fields), obj, "a map {compatibility}");
}

/* A user or group: a name ([a-z_][a-z0-9_-]*, at most 32) or a numeric id
 * 1..4294967294 (4294967295 is the kernel's "no id"); never root. An empty
 * string is an omitted field, as in OpenShell (the runner's default). */
static void run_as(struct vctx *c, const struct ynode *n, char **out)
{
    const char *s;
    if (!v_str(c, n, &s, "a user or group name, or a numeric id"))
        return;
    size_t l = strlen(s);
    if (l == 0)
        return;
    bool numeric = strspn(s, "0123456789") == l;
    bool name = l <= 32 && ((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_') &&
                strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == l;
    if (!numeric && !name) {
        v_error(c, n, "'%.64s' is not a valid name (allowed: [a-z_][a-z0-9_-]*, at most 32, or a "
                      "numeric id)", s);
        return;
    }
    if (strcmp(s, "root") == 0 || (numeric && strspn(s, "0") == l)) {
        v_error(c, n, "the sandbox must not run as root (use an unprivileged user such as "
                      "'sandbox')");
        return;
    }
    if (numeric && (l - strspn(s, "0") > 10 || strtoull(s, NULL, 10) > 4294967294ull)) {
        v_error(c, n, "%.64s is out of range (allowed: ids 1-4294967294)", s);
        return;
    }
    free(*out);
    *out = v_strdup(s);
}

static void f_run_as_user(struct vctx *c, const struct ynode *n, void *obj)
{
    run_as(c, n, &((struct policy *)obj)->run_as_user);
}

static void f_run_as_group(struct vctx *c, const struct ynode *n, void *obj)
{
    run_as(c, n, &((struct policy *)obj)->run_as_group);
}

static void f_process(struct vctx *c, const struct ynode *n, void *obj)
{
    static const struct vfield fields[] = {{"run_as_user", f_run_as_user},
                                           {"run_as_group", f_run_as_group}};
    (void)v_map(c, n, fields, NFIELDS(fields), obj, "a map {run_as_user, run_as_group}");
}

/* ---- top level ---- */

struct top_build {
    struct policy *p;
    const struct ynode *version;
};

static void f_version(struct vctx *c, const struct ynode *n, void *obj)
{
    struct top_build *tb = obj;
    tb->version = n;
    if (n->kind != YN_SCALAR || n->type != YS_INT || n->ival != 1)
        v_error(c, n, "unsupported version '%.32s' (allowed: 1)",
                n->kind == YN_SCALAR ? n->str : ytree_type_name(n));
}

static void f_top_np(struct vctx *c, const struct ynode *n, void *obj)
{
    f_network_policies(c, n, ((struct top_build *)obj)->p);
}

static void f_top_fs(struct vctx *c, const struct ynode *n, void *obj)
{
    ((struct top_build *)obj)->p->fs_given = true;
    f_filesystem(c, n, ((struct top_build *)obj)->p);
}

/* Without a filesystem_policy section the sandbox still needs the system to
 * run programs: the default is read-only system paths, read-write /tmp and
 * the workdir (doc/policy.md). Paths missing on the host are skipped by the
 * sandbox in best_effort mode. */
static void default_fs(struct policy *p)
{
    static const char *const ro[] = {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc",
                                      "/proc", "/dev/urandom", "/dev/random", "/dev/zero"};
    static const char *const rw[] = {"/tmp", "/dev/null", "/dev/tty", "/dev/pts"};
    p->fs.read_only = v_calloc(sizeof(ro) / sizeof(ro[0]), sizeof(char *));
    p->fs.read_write = v_calloc(sizeof(rw) / sizeof(rw[0]), sizeof(char *));
    for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++)
        p->fs.read_only[p->fs.n_read_only++] = v_strdup(ro[i]);
    for (size_t i = 0; i < sizeof(rw) / sizeof(rw[0]); i++)
        p->fs.read_write[p->fs.n_read_write++] = v_strdup(rw[i]);
    p->fs.include_workdir = true;
}

static void f_top_landlock(struct vctx *c, const struct ynode *n, void *obj)
{
    f_landlock(c, n, ((struct top_build *)obj)->p);
}

static void f_top_process(struct vctx *c, const struct ynode *n, void *obj)
{
    f_process(c, n, ((struct top_build *)obj)->p);
}

static void f_top_middlewares(struct vctx *c, const struct ynode *n, void *obj)
{
    (void)obj;
    v_network_middlewares(c, n);
}

static void f_top_limits(struct vctx *c, const struct ynode *n, void *obj)
{
    v_limits(c, n, &((struct top_build *)obj)->p->limits);
}

static void v_top(struct vctx *c, const struct ynode *root, struct policy *p)
{
    static const struct vfield fields[] = {
        {"version", f_version},
        {"network_policies", f_top_np},
        {"filesystem_policy", f_top_fs},
        {"landlock", f_top_landlock},
        {"process", f_top_process},
        {"network_middlewares", f_top_middlewares},
        {"limits", f_top_limits},
    };
    struct top_build tb = {.p = p};
    if (!root) {
        v_error_at(c, 1, 1, "the policy is empty (at least 'version: 1' is required)");
        return;
    }
    if (!v_map(c, root, fields, NFIELDS(fields), &tb,
               "a policy is a map {version, network_policies, filesystem_policy, landlock, "
               "process, network_middlewares, limits}"))
        return;
    if (!tb.version) {
        size_t mark = v_push(c, "version");
        v_error(c, root, "missing (add 'version: 1')");
        v_pop(c, mark);
    }
}

static struct policy *policy_new(const char *name)
{
    struct policy *p = v_calloc(1, sizeof(*p));
    atomic_init(&p->refs, 1);
    p->source = v_strdup(name);
    p->fs.include_workdir = true;
    p->landlock = POLICY_LANDLOCK_BEST_EFFORT;
    return p;
}

static void diag_line(struct policy_diag *d, const char *text)
{
    char **l = realloc(d->lines, (d->n + 1) * sizeof(*l));
    if (!l)
        abort();
    d->lines = l;
    d->cap = d->n + 1;
    d->lines[d->n++] = v_strdup(text);
    d->n_errors++;
}

static int load_buffer(const char *name, const char *data, size_t len, struct policy **out,
                       struct policy_diag *diag);
static int load_file(const char *path, struct policy **out, struct policy_diag *diag);

int policy_load_buffer(const char *name, const char *data, size_t len, struct policy **out,
                       struct policy_diag *diag)
{
    struct policy_diag scratch = {0};
    int rc = load_buffer(name, data, len, out, diag ? diag : &scratch);
    policy_diag_free(&scratch);
    return rc;
}

static int load_buffer(const char *name, const char *data, size_t len, struct policy **out,
                       struct policy_diag *diag)
{
    struct vctx c = {.file = name};
    struct ynode *root = NULL;
    struct ytree_error yerr;
    struct policy *p = NULL;
    char msg[600];
    int rc;

    *out = NULL;
    if (len > POLICY_MAX_FILE_BYTES) {
        snprintf(msg, sizeof(msg), "%s: error: the policy is %zu bytes (at most %u)", name, len,
                 POLICY_MAX_FILE_BYTES);
        diag_line(diag, msg);
        return -EFBIG;
    }
    rc = ytree_parse(data, len, &root, &yerr);
    if (rc == -EINVAL) {
        snprintf(msg, sizeof(msg), "%s:%u:%u: error: %s", name, yerr.line, yerr.col, yerr.msg);
        diag_line(diag, msg);
        goto out;
    }
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "%s: error: cannot parse: %s", name, strerror(-rc));
        diag_line(diag, msg);
        goto out;
    }
    p = policy_new(name);
    v_top(&c, root, p);
    if (!p->fs_given)
        default_fs(p);
    for (size_t i = 0; i < p->n_entries; i++)
        p->n_endpoints += p->entries[i].n_endpoints;
    if (c.n_errors == 0)
        v_ambiguity(&c, p);
    if (c.n_errors == 0)
        v_middlewares_tls_skip(&c, root, p);
    rc = c.n_errors ? -EINVAL : 0;
    v_flush(&c, diag);
    if (rc == 0) {
        *out = p;
        p = NULL;
    }
out:
    policy_free_internal(p);
    ytree_free(root);
    return rc;
}

int policy_load_file(const char *path, struct policy **out, struct policy_diag *diag)
{
    struct policy_diag scratch = {0};
    int rc = load_file(path, out, diag ? diag : &scratch);
    policy_diag_free(&scratch);
    return rc;
}

static int load_file(const char *path, struct policy **out, struct policy_diag *diag)
{
    char msg[600];
    char *buf = NULL;
    struct stat st;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *out = NULL;
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        goto fail;
    }
    if ((uint64_t)st.st_size > POLICY_MAX_FILE_BYTES) {
        rc = -EFBIG;
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto fail;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            goto fail;
        }
        got += (size_t)r;
    }
    rc = load_buffer(path, buf, got, out, diag);
    goto out;
fail:
    snprintf(msg, sizeof(msg), "%s: error: cannot read the policy: %s", path,
             rc == -EINVAL ? "not a regular file"
             : rc == -EFBIG ? "larger than 1 MiB"
                            : strerror(-rc));
    diag_line(diag, msg);
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}
