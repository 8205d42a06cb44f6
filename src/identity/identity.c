/* identity: the per-process cache and identity_resolve(), gluing
 * sockdiag (tuple -> inode), procscan (inode -> pid), proc (exe, parents)
 * and tofu (content hashes).
 *
 * Cache. Keyed by (pid, start time from /proc/PID/stat field 22), so a
 * reused pid never inherits an identity. exec() keeps both, so every hit
 * also compares the fingerprint of /proc/PID/exe (one stat) with the one
 * recorded: a process that exec'd, or whose file was modified in place, is
 * resolved afresh. Entries also carry the TOFU generation; when any path
 * becomes denied all entries computed earlier are recomputed. Bounded
 * (max_processes), clock (second-chance) eviction, one mutex held only for
 * lookup/copy/insert — /proc reads and hashing happen outside it.
 *
 * Ancestors are recorded when the process is first resolved and kept for
 * the entry's life (the chain at that time; reparenting later would only
 * lose information). The walk follows PPid, skips ancestors whose exe
 * cannot be read (kernel threads, other users without privilege), and
 * stops below this process's own chain: this process and its ancestors
 * (cordon proxy's shell, systemd...) and the init of a PID namespace
 * below ours (in `cordon run`, the sandbox's init: the cordon binary) are
 * never part of a chain (an unreadable status counts as an init), so a binaries glob covering cordon's own path or its parents
 * allows nothing by itself. When a netns is configured the walk also stops
 * at the first ancestor outside it: the chain describes the sandbox, not
 * the host processes that started it. */
#include "identity/identity.h"
#include "identity/identity_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/banned.h"

const char IDENTITY_REASON_UNRESOLVED[] = "identity_unresolved";
const char IDENTITY_REASON_BINARY_CHANGED[] = "binary_changed";
const char IDENTITY_REASON_AMBIGUOUS[] = "identity_ambiguous";

#define IDC_DEFAULT_BINARIES 4096
#define IDC_DEFAULT_PROCESSES 1024
#define IDC_MAX_PROCESSES (1u << 20)
#define IDC_NSOCKS 8
#define IDC_NSTR (1 + IDENTITY_MAX_ANCESTORS)

/* An immutable resolved identity (strings packed after the struct). */
struct idc_rec {
    int err;                  /* 0 or -EPERM */
    const char *reason;       /* NULL or IDENTITY_REASON_BINARY_CHANGED */
    bool exe_deleted;
    char tainted_by[32];
    char sha256[65];
    size_t n_anc;
    pid_t anc_pids[IDENTITY_MAX_ANCESTORS];
    uint32_t off[IDC_NSTR];   /* [0] exe, [1..n_anc] ancestors */
    uint32_t detail_off;
    char blob[];
};

struct idc_slot {
    bool used, ref;
    pid_t pid;
    unsigned long long start;
    struct identity_fp exe_fp;
    uint64_t gen;
    int next;                 /* bucket chain, -1 = end */
    struct idc_rec *rec;
};

struct identity_cache {
    int proc_fd;
    long netns_ino;
    struct identity_sockdiag *diag;
    struct identity_procscan *scan;
    struct identity_tofu *tofu;

    pthread_mutex_t mu;
    size_t cap, nbuckets, hand;
    struct idc_slot *slots;
    int *buckets;

    atomic_ullong st_resolves, st_hits, st_misses, st_fast, st_full, st_hashes;

    /* This process's own executable (self_fp_ok: read at creation). */
    struct identity_fp self_fp;
    bool self_fp_ok;
    /* This process and its ancestors at creation: never part of a chain. */
    size_t n_self_chain;
    pid_t self_chain[64];
    unsigned long long self_chain_start[64];
};

/* A record being built (before packing). */
struct idc_build {
    int err;
    const char *reason;
    bool exe_deleted;
    char tainted_by[32];
    char sha256[65];
    size_t n_anc;
    pid_t anc_pids[IDENTITY_MAX_ANCESTORS];
    char exe[PATH_MAX];
    char anc[IDENTITY_MAX_ANCESTORS][PATH_MAX];
    char detail[sizeof(((struct identity *)0)->detail)];
};

struct identity_cache *identity_cache_new(const struct identity_cache_opts *opts)
{
    struct identity_cache_opts def = {.netns_ino = -1, .netns_fd = -1};
    struct identity_cache *c;
    int rc;

    if (!opts)
        opts = &def;
    c = calloc(1, sizeof(*c));
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    c->proc_fd = -1;
    c->netns_ino = opts->netns_ino;
    c->cap = opts->max_processes ? opts->max_processes : IDC_DEFAULT_PROCESSES;
    if (c->cap > IDC_MAX_PROCESSES) {
        rc = -EINVAL;
        goto out;
    }
    c->nbuckets = 16;
    while (c->nbuckets < c->cap * 2)
        c->nbuckets *= 2;
    c->slots = calloc(c->cap, sizeof(*c->slots));
    c->buckets = malloc(c->nbuckets * sizeof(int));
    if (!c->slots || !c->buckets) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < c->nbuckets; i++)
        c->buckets[i] = -1;
    pthread_mutex_init(&c->mu, NULL);

    c->proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->proc_fd < 0) {
        rc = -errno;
        goto out;
    }
    for (pid_t p = getpid(); p > 0 && c->n_self_chain < 64;) {
        pid_t pp;
        unsigned long long st;
        if (identity_proc_stat(c->proc_fd, p, &pp, &st) < 0)
            break;
        c->self_chain[c->n_self_chain] = p;
        c->self_chain_start[c->n_self_chain++] = st;
        p = pp;
    }
    c->self_fp_ok = identity_proc_exe_fp(c->proc_fd, getpid(), &c->self_fp) == 0;
    rc = identity_sockdiag_new(opts->netns_fd, IDC_NSOCKS, &c->diag);
    if (rc < 0)
        goto out;
    rc = identity_procscan_new(c->proc_fd, opts->netns_ino, opts->strict_owner_scan, &c->scan);
    if (rc < 0)
        goto out;
    rc = identity_tofu_new(opts->max_binaries ? opts->max_binaries : IDC_DEFAULT_BINARIES,
                           &c->tofu);
out:
    if (rc < 0) {
        identity_cache_free(c);
        errno = -rc;
        return NULL;
    }
    return c;
}

void identity_cache_free(struct identity_cache *c)
{
    if (!c)
        return;
    if (c->slots) {
        for (size_t i = 0; i < c->cap; i++)
            free(c->slots[i].rec);
        pthread_mutex_destroy(&c->mu);
    }
    free(c->slots);
    free(c->buckets);
    identity_sockdiag_free(c->diag);
    identity_procscan_free(c->scan);
    identity_tofu_free(c->tofu);
    if (c->proc_fd >= 0)
        close(c->proc_fd);
    free(c);
}

void identity_cache_stats(struct identity_cache *c, struct identity_stats *out)
{
    out->resolves = atomic_load_explicit(&c->st_resolves, memory_order_relaxed);
    out->cache_hits = atomic_load_explicit(&c->st_hits, memory_order_relaxed);
    out->cache_misses = atomic_load_explicit(&c->st_misses, memory_order_relaxed);
    out->fast_owner = atomic_load_explicit(&c->st_fast, memory_order_relaxed);
    out->full_scans = atomic_load_explicit(&c->st_full, memory_order_relaxed);
    out->hashes = atomic_load_explicit(&c->st_hashes, memory_order_relaxed);
    struct identity_procscan_stats ps;
    identity_procscan_stats(c->scan, &ps);
    out->fd_tables = ps.fd_tables;
    out->owner_tables = ps.owner_tables;
    out->fd_links = ps.fd_links;
    out->index_hits = ps.index_hits;
    out->probe_walks = ps.probe_walks;
    out->probe_hits = ps.probe_hits;
    out->probe_links = ps.probe_links;
    out->late_kept = ps.late_kept;
}

int identity_cache_refresh(struct identity_cache *c)
{
    return identity_procscan_refresh(c->scan);
}

/* ---- the slot table (caller holds c->mu) ---- */

static size_t idc_bucket(const struct identity_cache *c, pid_t pid, unsigned long long start)
{
    uint64_t h = ((uint64_t)(uint32_t)pid * 0x9e3779b97f4a7c15ull) ^ (start * 0xff51afd7ed558ccdull);
    h ^= h >> 29;
    return (size_t)(h & (c->nbuckets - 1));
}

static struct idc_slot *idc_find(struct identity_cache *c, pid_t pid, unsigned long long start)
{
    for (int i = c->buckets[idc_bucket(c, pid, start)]; i >= 0; i = c->slots[i].next)
        if (c->slots[i].pid == pid && c->slots[i].start == start)
            return &c->slots[i];
    return NULL;
}

static void idc_unlink(struct identity_cache *c, struct idc_slot *s)
{
    int idx = (int)(s - c->slots);
    int *pp = &c->buckets[idc_bucket(c, s->pid, s->start)];
    while (*pp >= 0 && *pp != idx)
        pp = &c->slots[*pp].next;
    if (*pp == idx)
        *pp = s->next;
    free(s->rec);
    s->rec = NULL;
    s->used = false;
}

/* A free slot, evicting with the clock hand when full. */
static struct idc_slot *idc_take(struct identity_cache *c)
{
    for (;;) {
        struct idc_slot *s = &c->slots[c->hand];
        c->hand = (c->hand + 1) % c->cap;
        if (!s->used)
            return s;
        if (s->ref) {
            s->ref = false;
            continue;
        }
        idc_unlink(c, s);
        return s;
    }
}

static void idc_insert(struct identity_cache *c, pid_t pid, unsigned long long start,
                       const struct identity_fp *fp, uint64_t gen, struct idc_rec *rec)
{
    struct idc_slot *s = idc_find(c, pid, start);
    if (s)
        idc_unlink(c, s);
    s = idc_take(c);
    s->used = true;
    s->ref = true;
    s->pid = pid;
    s->start = start;
    s->exe_fp = *fp;
    s->gen = gen;
    s->rec = rec;
    size_t b = idc_bucket(c, pid, start);
    s->next = c->buckets[b];
    c->buckets[b] = (int)(s - c->slots);
}

/* ---- records ---- */

static struct idc_rec *idc_pack(const struct idc_build *b)
{
    size_t lens[IDC_NSTR], dl = strlen(b->detail), total = dl + 1;
    lens[0] = strlen(b->exe);
    total += lens[0] + 1;
    for (size_t i = 0; i < b->n_anc; i++) {
        lens[i + 1] = strlen(b->anc[i]);
        total += lens[i + 1] + 1;
    }
    struct idc_rec *r = malloc(sizeof(*r) + total);
    if (!r)
        return NULL;
    r->err = b->err;
    r->reason = b->reason;
    r->exe_deleted = b->exe_deleted;
    memcpy(r->tainted_by, b->tainted_by, sizeof(r->tainted_by));
    memcpy(r->sha256, b->sha256, sizeof(r->sha256));
    r->n_anc = b->n_anc;
    memcpy(r->anc_pids, b->anc_pids, sizeof(r->anc_pids));
    size_t off = 0;
    for (size_t i = 0; i <= b->n_anc; i++) {
        const char *src = i == 0 ? b->exe : b->anc[i - 1];
        r->off[i] = (uint32_t)off;
        memcpy(r->blob + off, src, lens[i] + 1);
        off += lens[i] + 1;
    }
    r->detail_off = (uint32_t)off;
    memcpy(r->blob + off, b->detail, dl + 1);
    return r;
}

static void idc_copy_out(const struct idc_rec *r, pid_t pid, struct identity *out)
{
    out->pid = pid;
    snprintf(out->exe, sizeof(out->exe), "%s", r->blob + r->off[0]);
    out->n_ancestors = r->n_anc;
    for (size_t i = 0; i < r->n_anc; i++) {
        snprintf(out->ancestors[i], sizeof(out->ancestors[i]), "%s", r->blob + r->off[i + 1]);
        out->ancestor_pids[i] = r->anc_pids[i];
    }
    memcpy(out->sha256, r->sha256, sizeof(out->sha256));
    out->exe_deleted = r->exe_deleted;
    memcpy(out->tainted_by, r->tainted_by, sizeof(out->tainted_by));
    out->reason_code = r->reason;
    snprintf(out->detail, sizeof(out->detail), "%s", r->blob + r->detail_off);
}

static void idc_copy_build(const struct idc_build *b, pid_t pid, struct identity *out)
{
    out->pid = pid;
    snprintf(out->exe, sizeof(out->exe), "%s", b->exe);
    out->n_ancestors = b->n_anc;
    for (size_t i = 0; i < b->n_anc; i++) {
        snprintf(out->ancestors[i], sizeof(out->ancestors[i]), "%s", b->anc[i]);
        out->ancestor_pids[i] = b->anc_pids[i];
    }
    memcpy(out->sha256, b->sha256, sizeof(out->sha256));
    out->exe_deleted = b->exe_deleted;
    memcpy(out->tainted_by, b->tainted_by, sizeof(out->tainted_by));
    out->reason_code = b->reason;
    snprintf(out->detail, sizeof(out->detail), "%s", b->detail);
}

/* ---- resolving one process ---- */

/* TOFU for one executable; fills b->err/reason/detail on a verdict other
 * than trusted. who = NULL for the process itself, else "ancestor". */
static int idc_tofu(struct identity_cache *c, struct idc_build *b, pid_t pid,
                    const char *path, const struct identity_fp *fp, bool ancestor,
                    char sha_out[65])
{
    struct identity_tofu_result res;
    int rc = identity_tofu_check(c->tofu, c->proc_fd, pid, path, fp, &res);
    if (res.hashed)
        atomic_fetch_add_explicit(&c->st_hashes, 1, memory_order_relaxed);
    if (rc == 0) {
        if (sha_out)
            memcpy(sha_out, res.sha256, 65);
        return 0;
    }
    b->err = rc;
    if (rc == -EPERM) {
        b->reason = IDENTITY_REASON_BINARY_CHANGED;
        snprintf(b->detail, sizeof(b->detail),
                 "%s%s (pid %d) changed since first use: sha256 %s at first use, now %s",
                 ancestor ? "ancestor binary " : "binary ", path, (int)pid,
                 res.first_sha256, res.bad_sha256);
    } else if (rc == -ENOSPC) {
        b->reason = IDENTITY_REASON_UNRESOLVED;
        snprintf(b->detail, sizeof(b->detail),
                 "%s%s (pid %d) not trusted: executable table full (max_binaries); "
                 "restart the sandbox or raise the limit",
                 ancestor ? "ancestor binary " : "binary ", path, (int)pid);
    } else {
        b->reason = IDENTITY_REASON_UNRESOLVED;
        snprintf(b->detail, sizeof(b->detail), "hashing %s via /proc/%d/exe: %s", path,
                 (int)pid, strerror(-rc));
    }
    return rc;
}

/* True when pid (started at start) is this process or one of the
 * ancestors it had when the cache was created. */
static bool idc_is_self_or_ancestor(const struct identity_cache *c, pid_t pid,
                                    unsigned long long start)
{
    for (size_t i = 0; i < c->n_self_chain; i++)
        if (c->self_chain[i] == pid && c->self_chain_start[i] == start)
            return true;
    return false;
}

/* A child of this process still running this process's own executable:
 * a clone of ours (cordon run's enforcement self-test probe, a
 * CLONE_VM child of the supervisor). Its binary is the one this process
 * runs (part of its own chain, never hashed there either), so it is not
 * hashed; it has no ancestors below this process. A sandboxed process is
 * never a child of the supervisor (they descend from the sandbox's init). */
static bool idc_is_own_clone(const struct identity_cache *c, const struct identity_owner *own,
                             const struct identity_fp *fp)
{
    return c->self_fp_ok && own->ppid == getpid() && identity_fp_equal(fp, &c->self_fp);
}

/* Walks the parents of the owner (see the top of the file). A changed
 * ancestor binary sets the verdict; unreadable ancestors are skipped. */
static void idc_ancestors(struct identity_cache *c, struct idc_build *b, pid_t ppid)
{
    pid_t p = ppid;
    for (unsigned hops = 0; p > 0 && b->n_anc < IDENTITY_MAX_ANCESTORS && hops < 4096;
         hops++) {
        pid_t next = 0;
        bool deleted;
        struct identity_fp fp;

        if (c->netns_ino >= 0) {
            unsigned long ino;
            if (identity_proc_netns(c->proc_fd, p, &ino) < 0 ||
                ino != (unsigned long)c->netns_ino)
                return;
        }
        unsigned long long start;
        if (identity_proc_stat(c->proc_fd, p, &next, &start) < 0)
            return; /* gone: the chain above it is unknown */
        if (idc_is_self_or_ancestor(c, p, start) || identity_proc_is_ns_init(c->proc_fd, p) != 0)
            return; /* this process's own chain, or a sandbox's init (cordon) */
        char *slot = b->anc[b->n_anc];
        if (identity_proc_exe(c->proc_fd, p, slot, PATH_MAX, &deleted) == 0 &&
            identity_proc_exe_fp(c->proc_fd, p, &fp) == 0) {
            int rc = idc_tofu(c, b, p, slot, &fp, true, NULL);
            if (rc == 0 || rc == -EPERM || rc == -ENOSPC) {
                b->anc_pids[b->n_anc++] = p;
                if (rc < 0)
                    return;
            } else {
                b->err = 0; /* could not hash (exited meanwhile): skip it */
                b->reason = NULL;
                b->detail[0] = '\0';
            }
        }
        if (p == 1)
            return;
        p = next;
    }
}

static const char *idc_addr_str(const struct sockaddr *sa, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(buf, cap, "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(buf, cap, "[%s]:%u", ip, port);
    } else {
        snprintf(buf, cap, "(family %d)", (int)sa->sa_family);
    }
    return buf;
}

static int idc_fail(struct identity *out, int rc, const char *reason)
{
    out->reason_code = reason;
    return rc;
}

int identity_resolve(struct identity_cache *c, const struct sockaddr *peer,
                     const struct sockaddr *local, struct identity *out)
{
    struct identity_owner own;
    struct identity_fp fp;
    struct idc_build *b = NULL;
    struct idc_rec *rec;
    uint64_t inode = 0, gen;
    uid_t uid = 0;
    char pa[64], la[64];
    int rc;

    out->pid = 0;
    out->exe[0] = '\0';
    out->n_ancestors = 0;
    out->sha256[0] = '\0';
    out->exe_deleted = false;
    out->tainted_by[0] = '\0';
    out->reason_code = NULL;
    out->detail[0] = '\0';
    if (!c || !peer || !local) {
        snprintf(out->detail, sizeof(out->detail), "identity_resolve: missing argument");
        return idc_fail(out, -EINVAL, IDENTITY_REASON_UNRESOLVED);
    }
    atomic_fetch_add_explicit(&c->st_resolves, 1, memory_order_relaxed);

    rc = identity_sockdiag_lookup(c->diag, peer, local, &inode, &uid);
    if (rc < 0) {
        snprintf(out->detail, sizeof(out->detail),
                 "no TCP connection %s -> %s found in the client network namespace "
                 "(sock_diag: %s)",
                 idc_addr_str(peer, pa, sizeof(pa)), idc_addr_str(local, la, sizeof(la)),
                 strerror(-rc));
        return idc_fail(out, rc, IDENTITY_REASON_UNRESOLVED);
    }

    rc = identity_procscan_find(c->scan, inode, &own, out->detail, sizeof(out->detail));
    if (rc < 0)
        return idc_fail(out, rc,
                        rc == -ENOTUNIQ ? IDENTITY_REASON_AMBIGUOUS : IDENTITY_REASON_UNRESOLVED);
    atomic_fetch_add_explicit(own.fast ? &c->st_fast : &c->st_full, 1, memory_order_relaxed);
    out->pid = own.pid;

    rc = identity_proc_exe_fp(c->proc_fd, own.pid, &fp);
    if (rc < 0) {
        snprintf(out->detail, sizeof(out->detail), "stat /proc/%d/exe: %s", (int)own.pid,
                 strerror(-rc));
        return idc_fail(out, rc, IDENTITY_REASON_UNRESOLVED);
    }
    gen = identity_tofu_generation(c->tofu);

    pthread_mutex_lock(&c->mu);
    struct idc_slot *s = idc_find(c, own.pid, own.start);
    if (s && s->gen == gen && identity_fp_equal(&s->exe_fp, &fp)) {
        s->ref = true;
        idc_copy_out(s->rec, own.pid, out);
        rc = s->rec->err;
        pthread_mutex_unlock(&c->mu);
        atomic_fetch_add_explicit(&c->st_hits, 1, memory_order_relaxed);
        if (rc == 0)
            identity_procscan_note(c->scan, own.pid);
        return rc;
    }
    pthread_mutex_unlock(&c->mu);
    atomic_fetch_add_explicit(&c->st_misses, 1, memory_order_relaxed);

    /* Miss: read the exe and the ancestors, check their hashes. */
    b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(out->detail, sizeof(out->detail), "out of memory resolving pid %d",
                 (int)own.pid);
        return idc_fail(out, -ENOMEM, IDENTITY_REASON_UNRESOLVED);
    }
    rc = identity_proc_exe(c->proc_fd, own.pid, b->exe, sizeof(b->exe), &b->exe_deleted);
    if (rc < 0) {
        snprintf(out->detail, sizeof(out->detail), "readlink /proc/%d/exe: %s", (int)own.pid,
                 strerror(-rc));
        out->reason_code = IDENTITY_REASON_UNRESOLVED;
        goto out;
    }
    if (own.ppid_stale) {
        unsigned long long start;
        rc = identity_proc_stat(c->proc_fd, own.pid, &own.ppid, &start);
        if (rc == 0 && start != own.start)
            rc = -ESRCH; /* exited and the pid was reused since */
        if (rc < 0) {
            snprintf(out->detail, sizeof(out->detail), "reading /proc/%d/stat: %s",
                     (int)own.pid, strerror(-rc));
            out->reason_code = IDENTITY_REASON_UNRESOLVED;
            goto out;
        }
    }
    /* An environment we cannot read is treated as tainted (fail closed). */
    if ((rc = identity_proc_env_taint(c->proc_fd, own.pid, b->tainted_by,
                                      sizeof(b->tainted_by))) < 0)
        snprintf(b->tainted_by, sizeof(b->tainted_by), "(unreadable environment)");
    if (idc_is_own_clone(c, &own, &fp)) {
        /* Our own binary, like our own chain: not hashed, no ancestors. */
        rc = 0;
    } else {
        rc = idc_tofu(c, b, own.pid, b->exe, &fp, false, b->sha256);
        if (rc == 0)
            idc_ancestors(c, b, own.ppid);
        else if (rc != -EPERM && rc != -ENOSPC)
            b->sha256[0] = '\0';
    }
    rc = b->err;
    idc_copy_build(b, own.pid, out);

    /* Cache verdicts that belong to the process (trusted, or changed);
     * transient failures are retried next time. */
    if (rc == 0 || rc == -EPERM) {
        rec = idc_pack(b);
        if (rec) {
            pthread_mutex_lock(&c->mu);
            idc_insert(c, own.pid, own.start, &fp, gen, rec);
            pthread_mutex_unlock(&c->mu);
        }
    }
    if (rc == 0)
        identity_procscan_note(c->scan, own.pid);
out:
    free(b);
    return rc;
}
