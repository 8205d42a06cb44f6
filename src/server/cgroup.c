/* server/cgroup: per-sandbox control groups (v1 or v2). */
#include "server/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/parse.h"
#include "core/banned.h"

#define CG_ROOT "/sys/fs/cgroup"

static int write_file(const char *dir, const char *file, const char *val)
{
    char p[640];
    int n = snprintf(p, sizeof(p), "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= sizeof(p))
        return -ENAMETOOLONG;
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = strlen(val);
    ssize_t w = write(fd, val, len);
    int r = w == (ssize_t)len ? 0 : (w < 0 ? -errno : -EIO);
    close(fd);
    return r;
}

/* The server's own path in hierarchy ctrl ("" for v2's "0::"). */
static int own_path(const char *ctrl, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[1024];
    int r = -ENOENT;
    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        char *a = strchr(line, ':');
        char *b = a ? strchr(a + 1, ':') : NULL;
        if (!b)
            continue;
        *b = '\0';
        char *nl = strchr(b + 1, '\n');
        if (nl)
            *nl = '\0';
        const char *ctrls = a + 1;
        int hit = 0;
        if (ctrl[0] == '\0') {
            hit = ctrls[0] == '\0';
        } else {
            char tmp[256];
            snprintf(tmp, sizeof(tmp), "%s", ctrls);
            for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (strcmp(t, ctrl) == 0)
                    hit = 1;
        }
        if (hit) {
            snprintf(out, cap, "%s", strcmp(b + 1, "/") == 0 ? "" : b + 1);
            r = 0;
            break;
        }
    }
    fclose(f);
    return r;
}

int server_cgroup_parse_cpu(const char *s, unsigned long long *milli)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v <= 0)
        return -EINVAL;
    if (strcmp(end, "m") == 0)
        v /= 1000.0;
    else if (*end)
        return -EINVAL;
    if (v > 4096)
        return -EINVAL;
    *milli = (unsigned long long)(v * 1000.0 + 0.5);
    return *milli ? 0 : -EINVAL;
}

int server_cgroup_parse_memory(const char *s, unsigned long long *bytes)
{
    static const struct { const char *suf; unsigned long long mul; } sufs[] = {
        {"", 1},           {"K", 1000ull},       {"M", 1000000ull},       {"G", 1000000000ull},
        {"T", 1000000000000ull}, {"Ki", 1ull << 10}, {"Mi", 1ull << 20}, {"Gi", 1ull << 30},
        {"Ti", 1ull << 40}};
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        return -EINVAL;
    for (size_t i = 0; i < sizeof(sufs) / sizeof(sufs[0]); i++)
        if (strcmp(end, sufs[i].suf) == 0) {
            if (v > (1ull << 50) / sufs[i].mul)
                return -EINVAL;
            *bytes = v * sufs[i].mul;
            return *bytes >= 4096 ? 0 : -EINVAL;
        }
    return -EINVAL;
}

struct limits {
    unsigned long long cpu_milli, mem, pids;
};

static int parse_limits(const json_t *j, struct limits *l, char *err, size_t cap)
{
    memset(l, 0, sizeof(*l));
    if (!j)
        return 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        const char *s = json_string_value(v);
        if (!s) {
            snprintf(err, cap, "resourceLimits.%s: must be a string", k);
            return -EINVAL;
        }
        if (strcmp(k, "cpu") == 0) {
            if (server_cgroup_parse_cpu(s, &l->cpu_milli) < 0) {
                snprintf(err, cap, "resourceLimits.cpu: '%s' is not a CPU amount (use "
                         "\"500m\" or \"2\")", s);
                return -EINVAL;
            }
        } else if (strcmp(k, "memory") == 0) {
            if (server_cgroup_parse_memory(s, &l->mem) < 0) {
                snprintf(err, cap, "resourceLimits.memory: '%s' is not a memory amount (use "
                         "\"512Mi\", \"2Gi\" or bytes, at least 4096)", s);
                return -EINVAL;
            }
        } else if (strcmp(k, "pids") == 0) {
            uint32_t p;
            if (parse_u32_str(s, 1, 4194304, &p) < 0) {
                snprintf(err, cap, "resourceLimits.pids: '%s' (a number 1..4194304)", s);
                return -EINVAL;
            }
            l->pids = p;
        } else {
            snprintf(err, cap, "resourceLimits.%s: not supported by the local driver "
                     "(supported: cpu, memory, pids)", k);
            return -EINVAL;
        }
    }
    return 0;
}

static int make_dir(struct sbx_cgroup *cg, const char *mnt, const char *ctrl, const char *name,
                    char *err, size_t cap)
{
    char own[400];
    int r = own_path(ctrl, own, sizeof(own));
    if (r < 0) {
        snprintf(err, cap, "cannot find the server's %s cgroup in /proc/self/cgroup",
                 ctrl[0] ? ctrl : "unified");
        return r;
    }
    char *d = cg->dirs[cg->n];
    int n = snprintf(d, sizeof(cg->dirs[0]), "%s%s/cordon-%s", mnt, own, name);
    if (n < 0 || (size_t)n >= sizeof(cg->dirs[0]))
        return -ENAMETOOLONG;
    if (mkdir(d, 0755) < 0 && errno != EEXIST) {
        r = -errno;
        snprintf(err, cap, "cannot create cgroup %s: %s (the server needs a writable "
                 "cgroup hierarchy to freeze and kill sandboxes)", d, strerror(-r));
        return r;
    }
    cg->n++;
    return 0;
}

static int apply_v1(struct sbx_cgroup *cg, const struct limits *l, const char *name, char *err,
                    size_t cap)
{
    int r;
    char v[64];
    if ((r = make_dir(cg, CG_ROOT "/freezer", "freezer", name, err, cap)) < 0)
        return r;
    if (l->pids) {
        if ((r = make_dir(cg, CG_ROOT "/pids", "pids", name, err, cap)) < 0)
            return r;
        snprintf(v, sizeof(v), "%llu", l->pids);
        if ((r = write_file(cg->dirs[cg->n - 1], "pids.max", v)) < 0)
            goto werr;
    }
    if (l->mem) {
        if ((r = make_dir(cg, CG_ROOT "/memory", "memory", name, err, cap)) < 0)
            return r;
        snprintf(v, sizeof(v), "%llu", l->mem);
        if ((r = write_file(cg->dirs[cg->n - 1], "memory.limit_in_bytes", v)) < 0)
            goto werr;
    }
    if (l->cpu_milli) {
        if ((r = make_dir(cg, CG_ROOT "/cpu", "cpu", name, err, cap)) < 0)
            return r;
        snprintf(v, sizeof(v), "%llu", l->cpu_milli * 100);
        if ((r = write_file(cg->dirs[cg->n - 1], "cpu.cfs_period_us", "100000")) < 0 ||
            (r = write_file(cg->dirs[cg->n - 1], "cpu.cfs_quota_us", v)) < 0)
            goto werr;
    }
    return 0;
werr:
    snprintf(err, cap, "cannot set a limit in %s: %s", cg->dirs[cg->n - 1], strerror(-r));
    return r;
}

static int apply_v2(struct sbx_cgroup *cg, const struct limits *l, const char *name, char *err,
                    size_t cap)
{
    int r;
    char v[64];
    if ((r = make_dir(cg, CG_ROOT, "", name, err, cap)) < 0)
        return r;
    const char *d = cg->dirs[0];
    if (l->pids) {
        snprintf(v, sizeof(v), "%llu", l->pids);
        if ((r = write_file(d, "pids.max", v)) < 0)
            goto werr;
    }
    if (l->mem) {
        snprintf(v, sizeof(v), "%llu", l->mem);
        if ((r = write_file(d, "memory.max", v)) < 0)
            goto werr;
    }
    if (l->cpu_milli) {
        snprintf(v, sizeof(v), "%llu 100000", l->cpu_milli * 100);
        if ((r = write_file(d, "cpu.max", v)) < 0)
            goto werr;
    }
    return 0;
werr:
    snprintf(err, cap, "cannot set a limit in %s: %s (is the controller enabled in the "
             "parent's cgroup.subtree_control?)", d, strerror(-r));
    return r;
}

int server_cgroup_create(const char *name, const json_t *limits, struct sbx_cgroup *cg, char *err,
                  size_t cap)
{
    struct limits l;
    memset(cg, 0, sizeof(*cg));
    int r = parse_limits(limits, &l, err, cap);
    if (r < 0)
        return r;
    cg->v2 = access(CG_ROOT "/cgroup.controllers", F_OK) == 0;
    r = cg->v2 ? apply_v2(cg, &l, name, err, cap) : apply_v1(cg, &l, name, err, cap);
    if (r < 0) {
        (void)server_cgroup_remove(cg);
        cg->n = 0;
    }
    return r;
}

int server_cgroup_enter(const struct sbx_cgroup *cg)
{
    char pid[24];
    /* async-signal-safe formatting */
    long v = (long)getpid();
    char tmp[24];
    int n = 0, k = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < (int)sizeof(tmp));
    while (n)
        pid[k++] = tmp[--n];
    pid[k] = '\0';
    for (size_t i = 0; i < cg->n; i++) {
        int r = write_file(cg->dirs[i], "cgroup.procs", pid);
        if (r < 0)
            return r;
    }
    return 0;
}

int server_cgroup_freeze(const struct sbx_cgroup *cg, int frozen)
{
    if (cg->n == 0)
        return -ENOENT;
    if (cg->v2)
        return write_file(cg->dirs[0], "cgroup.freeze", frozen ? "1" : "0");
    return write_file(cg->dirs[0], "freezer.state", frozen ? "FROZEN" : "THAWED");
}

int server_cgroup_pids(const struct sbx_cgroup *cg, pid_t *out, size_t cap)
{
    char p[640];
    if (cg->n == 0)
        return -ENOENT;
    snprintf(p, sizeof(p), "%s/cgroup.procs", cg->dirs[0]);
    FILE *f = fopen(p, "re");
    if (!f)
        return -errno;
    size_t n = 0;
    char line[32];
    while (fgets(line, sizeof(line), f)) {
        uint32_t v;
        size_t l = strcspn(line, "\n");
        if (parse_u32(line, l, 1, 0x7fffffff, &v) == 0 && n < cap)
            out[n++] = (pid_t)v;
    }
    fclose(f);
    return (int)n;
}

int server_cgroup_kill(const struct sbx_cgroup *cg)
{
    pid_t pids[4096];
    if (cg->n == 0)
        return -ENOENT;
    (void)server_cgroup_freeze(cg, 1);
    int n = server_cgroup_pids(cg, pids, sizeof(pids) / sizeof(pids[0]));
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    /* SIGKILL is delivered to frozen tasks once they thaw (v1) or at once (v2). */
    (void)server_cgroup_freeze(cg, 0);
    return n;
}

int server_cgroup_remove(const struct sbx_cgroup *cg)
{
    int r = 0;
    for (size_t i = cg->n; i-- > 0;)
        if (rmdir(cg->dirs[i]) < 0 && errno != ENOENT)
            r = -errno;
    return r;
}

json_t *server_cgroup_to_json(const struct sbx_cgroup *cg)
{
    json_t *a = json_array();
    for (size_t i = 0; i < cg->n; i++)
        json_array_append_new(a, json_string(cg->dirs[i]));
    return json_pack("{s:b,s:o}", "v2", cg->v2, "dirs", a);
}

int server_cgroup_from_json(const json_t *j, struct sbx_cgroup *cg)
{
    memset(cg, 0, sizeof(*cg));
    json_t *a = json_object_get(j, "dirs");
    if (!json_is_array(a) || json_array_size(a) > CG_MAX_DIRS)
        return -EINVAL;
    cg->v2 = json_is_true(json_object_get(j, "v2"));
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s || strlen(s) >= sizeof(cg->dirs[0]) || strncmp(s, CG_ROOT "/", 15) != 0)
            return -EINVAL;
        snprintf(cg->dirs[cg->n++], sizeof(cg->dirs[0]), "%s", s);
    }
    return cg->n ? 0 : -EINVAL;
}
