/* identity/procscan: which process holds socket inode N?
 *
 * The only complete answer is to read every candidate process's fd table
 * (/proc/PID/fd/N -> "socket:[INODE]"); there is no reverse index in the
 * kernel. On our 2-core test VM a listing costs ~0.4 us and a link ~2 us
 * per fd: ~3 ms for ~100 processes and ~500 fds, far too slow to do per
 * connection. So:
 *
 * Full scan. Lists /proc, keeps the candidates (all, or those in the
 * configured netns), reads every fd link and records every socket inode
 * with its holder and fd number in a sorted index. The result is an
 * immutable, reference-counted snapshot: the pid list, the index, and the
 * time T at which the scan began. Scans are serialised and coalesced: a
 * caller that needs one after time t reuses a snapshot begun at or after t.
 *
 * Fast path (snapshot younger than PROCSCAN_MAX_AGE_MS). For socket Y:
 *  1. index[Y]: processes that held Y at T. Each is re-checked: the link
 *     at the fd it was seen at (one readlink), else its whole table; then
 *     its start time, read after the link: at or after T means the holder
 *     of T exited and its pid went to a new process, counted as new.
 *  2. New processes (at most PROCSCAN_MAX_NEW, else full scan), each
 *     candidate checked. Found from the pids allocated since T (last pid
 *     of /proc/loadavg then and now, ~1 us) when the /proc/stat fork
 *     counter proves the pid space cannot have wrapped in between; else by
 *     listing /proc (~1 us per process) and diffing with the snapshot.
 *     A pid in that range that the snapshot listed is checked too when its
 *     start time is at or after T (freed and allocated again: possible
 *     once the pid space wrapped before T). Threads are told from
 *     processes by pidfd_open(), which refuses threads, else /proc status.
 *  3. If nothing yet: the socket index (sockidx.c), else the MRU list of
 *     recent owners (below). The answer must have started before T.
 *  Two or more holders -> ambiguous. One holder from (1) -> answer. A new
 *  process holding Y might have inherited it from an older creator that
 *  only a full scan can find -> full scan. A hit from (3) -> answer.
 *  Nothing -> full scan.
 *
 * Step 3 in detail. An MRU hit reads the owner's whole fd table: it holds
 * Y, and every other socket the read passes goes into the socket index
 * with the owner's pid, start time and fd number. That is what makes a
 * burst cheap: connections from the same process that were already made
 * (waiting in the proxy's accept queue, or being parsed) are indexed by
 * the first one's read, and each of them is then confirmed with one
 * readlink of /proc/PID/fd/N instead of another read of the whole table.
 * A sighting is believed only when that link is Y now and, checked after
 * the link, the pid still names the process seen (same start time, before
 * T): the owner's pidfd, kept since its table was read, says it has not
 * been reaped (its pid cannot have been reused), else /proc/PID/stat is
 * read. So an index hit establishes exactly what an MRU hit does: a
 * process that existed at T holds Y now. Sightings are hints: a stale one
 * costs a failed readlink and falls through to the MRU list.
 *
 * Probing instead of reading (also step 3). A whole read of the owner's
 * table costs a link per fd, files included: ~23 ms per connection for a
 * client holding 15,000 files. So a whole read also records the table's
 * layout: the fd numbers that held a socket or nothing (plus a few past
 * the highest). A socket the owner made since sits at the lowest number
 * free when it was made: one of those, unless a file was closed and its
 * number reused. The next lookup first probes those numbers, one link
 * each, and believes a hit exactly as an index hit (the link is Y now;
 * after it, the pidfd or /proc/PID/stat says the pid still names the
 * tracked owner, started before T). A miss reads whole tables as before
 * (owners whose probe missed last, since a probed owner can only hold Y
 * at a file's old number). So the cost follows the sockets an owner
 * holds, not its files. Where the probe looks changes only the cost:
 * what is believed, and steps 1 and 2 that find second holders, are the
 * same as for a whole read.
 *
 * Why (3) is enough. A process that existed at T and did not hold Y then
 * can hold it now only by creating it (one creator per socket), sharing an
 * fd table with the creator (clone(CLONE_FILES) without exec: same
 * executable), or by actively receiving it (SCM_RIGHTS, pidfd_getfd).
 * Holders by fork inheritance are either new processes (step 2, which runs
 * before the index is consulted) or, when Y is older than T, in the index
 * (step 1). So the fast path can miss a second holder only when that holder
 * received the fd on purpose; such a process already runs code of the
 * sender's choosing and could relay the bytes itself, so attributing the
 * socket to either one grants nothing the holders could not do anyway. We
 * accept that gap to keep steady-state cost at two small preads, one link
 * and a pidfd check per connection, plus one read of the owner's fd table
 * per burst. The price is paid by a process's first connection instead: it
 * is new, so it costs a full scan (unless a recent scan already indexed
 * the socket).
 *
 * Inode numbers. Socket inodes come from get_next_ino() (fs/inode.c, in
 * the kernels we run on; check on upgrades): a 32-bit counter, shared with
 * pipes and other pseudo files, handed out in per-CPU batches. It wraps
 * after 2^32 allocations and nothing stops a new socket from getting the
 * number of one still open, so two live sockets can share an inode number
 * in principle; every inode-based lookup (sock_diag -> /proc, full scans
 * included) has that limit, and the index does not add to it: a sighting
 * is only a place to look (pid, fd), and what is believed is what
 * /proc/PID/fd/N says at lookup time, the same test a full scan applies.
 * Sightings also expire after PROCSCAN_SOCKIDX_AGE_MS, and full sets lose
 * their oldest (sockidx.c).
 *
 * Keeping step 2's reads. Under process churn (compilers, shells of other
 * users of the machine) step 2 met the same new processes on every lookup
 * and read their whole tables each time. Now the first lookup that reads
 * a new process's table (range method only, below) keeps what it saw in
 * the snapshot: the sockets with their fd numbers, or that the pid is a
 * thread, or a process outside the candidates' netns. Later lookups in
 * the snapshot's life answer from that: a socket the read saw is
 * confirmed with one link at its fd (moved -> whole read, as before); a
 * socket the read did not see is not looked for. Why that is enough:
 *  - The pid names the same task. Kept reads exist only for pids of the
 *    range (last_pid at T, last_pid now], and each lookup first proves
 *    from the fork counter that the pid space has not wrapped since T: no
 *    pid in the range was allocated twice, so a kept pid cannot be a
 *    different process now (no start time check needed). Threads stay
 *    threads (an exec by a thread frees its pid, it does not become a
 *    process). A pid that was gone is not kept: it may have been still
 *    inside fork (allocated, not yet visible), and the next lookup looks
 *    again, as before.
 *  - A process P read at t_P that did not hold Y then can hold Y now only
 *    by the same ways (3) lists for an old process: creating Y, receiving
 *    it (SCM_RIGHTS, pidfd_getfd), or sharing an fd table with Y's creator
 *    (clone(CLONE_FILES) without exec). Inheritance is not one of them: P
 *    inherited its table when it was created, before t_P, and its own
 *    children are new pids that get their own read. So: if P created Y
 *    after t_P, Y's creator is a new process: no process that existed at T
 *    holds Y except by receipt or sharing, step 3 (which believes only
 *    processes started before T) finds nobody, and a full scan decides
 *    (finding P and every other holder). A child P forked after making Y
 *    is read on its own and holds Y (two holders: ambiguous). Receipt and
 *    table sharing are the gaps (3) already accepts for old processes: the
 *    receiver runs the sender's code, a sharer the creator's executable.
 *  - A socket held by two processes is still denied: holders at T are
 *    found by (1), holders by inheritance by reads of new processes
 *    (fresh, or kept with Y in them and confirmed by a link), and a new
 *    holder found alone still sends the lookup to a full scan.
 * With the listing method (pid space may have wrapped, or more than
 * PROCSCAN_MAX_RANGE pids since T) pids are not unique, and every table is
 * read as before. Kept reads are bounded (PROCSCAN_LATE_MAX pids,
 * PROCSCAN_LATE_SOCKS sockets each; a process with more is read whole on
 * each lookup) and die with the snapshot.
 *
 * Retiring a snapshot. Besides its age limit, a snapshot is replaced once
 * the fast-path lookups have spent more time on processes created since T
 * (step 2) than the scan itself took: under process churn, rescanning is
 * then cheaper than checking the same new processes on every lookup.
 *
 * Other limits: with the listing method, a pid reused by a new process
 * within the snapshot's life (<= PROCSCAN_MAX_AGE_MS; pid_max may be
 * 32768) looks old in step 2 (steps 1 and 3 check start times). A pid
 * chosen with clone3(set_tid) does not move the pid counter, so step 2
 * does not see it; that needs CAP_SYS_ADMIN over our pid namespace, which
 * a sandboxed process does not have. A process still inside fork() (fd
 * table copied, not yet in /proc) is invisible to any /proc reader, full
 * scans included. Threads that unshared their fd table (unshare(CLONE_FILES))
 * are not read (only /proc/PID/fd); their sockets resolve as unowned ->
 * denied. Processes whose fd table cannot be read (EACCES) are not
 * candidates. Links are read with readlinkat, never stat'ed: following a
 * link would touch the target's filesystem (a FUSE or NFS file of the
 * sandbox could hang the proxy). */
#include "identity/identity_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/banned.h"

#define PROCSCAN_MAX_AGE_MS 1000
#define PROCSCAN_MAX_NEW 16          /* new pids checked on the fast path */
#define PROCSCAN_MAX_RANGE 256       /* pids allocated since the snapshot */
#define PROCSCAN_RESERVED_PIDS 300   /* the kernel's first pid after a wrap */
#define PROCSCAN_MAX_NEW_FINAL 1024  /* after a full scan */
#define PROCSCAN_MAX_PIDS (1u << 22) /* /proc entries per scan */
#define PROCSCAN_MAX_INDEX (1u << 20)
#define PROCSCAN_MRU 8
#define PROCSCAN_MAX_HOLDERS 4
#define PROCSCAN_DENTS 16384
#define PROCSCAN_SOCKIDX_CAP 4096    /* socket sightings remembered */
#define PROCSCAN_SOCKIDX_AGE_MS 2000 /* ... and for how long */
#define PROCSCAN_GATHER_MAX PROCSCAN_SOCKIDX_CAP /* sockets indexed per table read */
#define PROCSCAN_OWNERS 16           /* owners held open as pidfds */
#define PROCSCAN_PROBE_MAX 512       /* fds an owner's layout may name for probing */
#define PROCSCAN_PROBE_FREE 16       /* ... of them, the lowest free numbers */
#define PROCSCAN_LATE_MAX 1024       /* new pids whose step-2 read a snapshot keeps */
#define PROCSCAN_LATE_SOCKS 256      /* sockets kept per read (more: re-read each time) */

/* What step 2 learnt about a pid allocated since T. */
enum procscan_late_kind {
    PS_LATE_THREAD,   /* a thread, not a process: never a holder of its own */
    PS_LATE_OTHER_NS, /* a process outside the candidates' netns */
    PS_LATE_READ,     /* a process whose fd table was read: socks */
};

struct procscan_late {
    pid_t pid;
    enum procscan_late_kind kind;
    bool complete;                 /* socks holds every socket the read passed */
    size_t nsocks;
    struct identity_sockfd *socks; /* (inode, fd) at the read */
};

struct procscan_ent {
    uint64_t inode;
    pid_t pid;
    int fd;                           /* where pid held it at snapshot time */
};

/* Task-creation counters: the last pid allocated in our pid namespace
 * (/proc/loadavg) and the tasks created since boot (/proc/stat
 * "processes", threads included, all namespaces). */
struct procscan_ctr {
    long last_pid;
    unsigned long long forks;
};

struct procscan_snap {
    atomic_int refs;
    uint64_t start_ns;                /* CLOCK_MONOTONIC at scan start */
    unsigned long long start_ticks;   /* same instant, /proc start-time units */
    pid_t *pids;                      /* sorted: every tgid listed */
    size_t npids;
    struct procscan_ent *idx;         /* sorted by inode: candidates' sockets */
    size_t nidx, capidx;
    bool ctr_ok;                      /* ctr and pid_max were read */
    struct procscan_ctr ctr;          /* read before listing /proc */
    long pid_max;
    /* Time fast-path lookups spent on processes created since T (step 2
     * beyond the counter read). Once it exceeds what the scan itself cost,
     * a new scan is cheaper than going on: the snapshot is retired. */
    atomic_ullong step2_ns;
    /* Step 2's reads of pids allocated since T, kept for the snapshot's
     * life (see "Keeping step 2's reads" at the top of the file). */
    pthread_mutex_t late_mu;
    struct procscan_late *late;      /* unsorted; small */
    size_t nlate, caplate;
};

/* An owner whose table read filled the socket index, held by a pidfd: as
 * long as the pidfd's process has not been reaped, its pid still names
 * it, so a sighting can be confirmed without re-reading /proc/PID/stat. */
struct procscan_owner {
    pid_t pid;                   /* 0 = free slot */
    pid_t ppid;                  /* when tracked; may be stale (reparenting) */
    unsigned long long start;
    int pidfd;
    uint64_t used_ns;
    /* Layout of its fd table at the last whole read: the fds that held a
     * socket, and the PROCSCAN_PROBE_FREE lowest numbers that were free
     * (NULL when there were more than PROCSCAN_PROBE_MAX sockets). A
     * socket made since took the lowest free number: one of those, unless
     * a file was closed and its number reused (or more were made since
     * than free numbers noted): probing them finds it without reading the
     * files. Probe order: last_hit (where the last probe found its
     * socket: a process making one connection at a time reuses it), then
     * ascending, as the kernel hands out numbers. */
    int *probe;
    size_t nprobe;
    int last_hit;                /* -1: none yet */
};

struct identity_procscan {
    int proc_fd;
    long netns_ino;
    bool strict;
    int loadavg_fd, stat_fd; /* kept open; pread(0) regenerates them */
    bool use_ctr;            /* /proc is our own pid namespace's */
    bool use_pidfd;          /* pidfd_open() works here (on ourselves) */
    pthread_mutex_t mu;      /* snap pointer, mru */
    pthread_mutex_t scan_mu; /* one full scan at a time */
    struct procscan_snap *snap;
    pid_t mru[PROCSCAN_MRU];
    struct identity_sockidx *sidx; /* sightings from owners' table reads */
    pthread_mutex_t own_mu;        /* owners[] */
    struct procscan_owner owners[PROCSCAN_OWNERS];
    atomic_ullong scan_cost_ns;    /* duration of the last full scan */
    atomic_ullong st_tables, st_owner_tables, st_links, st_idx_hits;
    atomic_ullong st_probe_walks, st_probe_hits, st_probe_links;
    atomic_ullong st_late_kept;    /* step-2 table reads saved by a kept read */
};

enum procscan_verdict { PS_FOUND, PS_AMBIGUOUS, PS_NONE, PS_NEED_FULL };

struct procscan_holders {
    size_t n;
    pid_t pids[PROCSCAN_MAX_HOLDERS];
    bool new_holder;
    /* step 3 answered: pids[0]'s stat as read there (ppid_stale: ppid as
     * remembered with the pidfd, not re-read), and how it was found */
    bool have_stat, ppid_stale, indexed;
    pid_t ppid;
    unsigned long long start;
};

static uint64_t procscan_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Directory entry name -> pid, or 0 when not all digits. */
static pid_t procscan_name_pid(const char *s)
{
    unsigned long long v;
    size_t len = strnlen(s, 12);
    if (len == 0 || len > 10 || identity_parse_u64(s, len, &v) < 0 || v == 0 ||
        v > 0x7fffffff)
        return 0;
    return (pid_t)v;
}

static void procscan_snap_put(struct procscan_snap *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(s->pids);
    free(s->idx);
    for (size_t i = 0; i < s->nlate; i++)
        free(s->late[i].socks);
    free(s->late);
    pthread_mutex_destroy(&s->late_mu);
    free(s);
}

static struct procscan_snap *procscan_snap_get(struct identity_procscan *ps)
{
    pthread_mutex_lock(&ps->mu);
    struct procscan_snap *s = ps->snap;
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&ps->mu);
    return s;
}

static bool procscan_candidate(struct identity_procscan *ps, pid_t pid)
{
    unsigned long ino;
    if (ps->netns_ino < 0)
        return true;
    return identity_proc_netns(ps->proc_fd, pid, &ino) == 0 &&
           ino == (unsigned long)ps->netns_ino;
}

/* Parses "socket:[N]" (exactly len bytes); 0 when it is not one. */
static uint64_t procscan_link_inode(const char *l, size_t len)
{
    unsigned long long v;
    if (len < 10 || memcmp(l, "socket:[", 8) != 0 || l[len - 1] != ']')
        return 0;
    if (identity_parse_u64(l + 8, len - 9, &v) < 0)
        return 0;
    return v;
}

/* Visits the fds of pid in the order the kernel lists them (ascending):
 * cb(inode, fd, arg), inode 0 for anything but a socket (or a link that
 * could not be read), returns true to stop. Returns 1 when stopped by cb,
 * 0 when done, -errno when the fd table cannot be read. */
/* Set when a lookup on this thread could not open something for lack of
 * descriptors or memory: a table it could not read may hold the socket
 * (a missed second holder would make an ambiguous socket look owned), so
 * the whole lookup fails with that error instead of a verdict. */
static __thread int procscan_short;

static int procscan_fds(struct identity_procscan *ps, pid_t pid,
                        bool (*cb)(uint64_t, int, void *), void *arg)
{
    char path[32], buf[PROCSCAN_DENTS], link[64];
    unsigned long long links = 0, fdno;
    int dfd, rc = 0;
    ssize_t n;

    snprintf(path, sizeof(path), "%d/fd", (int)pid);
    dfd = openat(ps->proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
            procscan_short = -errno;
        return -errno;
    }
    atomic_fetch_add_explicit(&ps->st_tables, 1, memory_order_relaxed);
    while ((n = getdents64(dfd, buf, sizeof(buf))) > 0) {
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            size_t nl = strnlen(d->d_name, 11);
            if (identity_parse_u64(d->d_name, nl, &fdno) < 0 || fdno > INT_MAX)
                continue; /* "." and ".." */
            links++;
            ssize_t l = readlinkat(dfd, d->d_name, link, sizeof(link));
            if (l <= 0 || (size_t)l >= sizeof(link))
                l = 0; /* closed meanwhile, or not a socket (long path) */
            uint64_t ino = procscan_link_inode(link, (size_t)l);
            if (cb(ino, (int)fdno, arg)) {
                rc = 1;
                goto out;
            }
        }
    }
    if (n < 0)
        rc = -errno;
out:
    atomic_fetch_add_explicit(&ps->st_links, links, memory_order_relaxed);
    close(dfd);
    return rc;
}

static bool procscan_match_cb(uint64_t ino, int fd, void *arg)
{
    (void)fd;
    return ino != 0 && ino == *(const uint64_t *)arg;
}

/* Does pid hold the socket? Unreadable / gone -> false. */
static bool procscan_holds(struct identity_procscan *ps, pid_t pid, uint64_t inode)
{
    return procscan_fds(ps, pid, procscan_match_cb, &inode) == 1;
}

/* Is /proc/PID/fd/FD the socket right now? One link, no listing. */
static bool procscan_link_is(struct identity_procscan *ps, pid_t pid, int fd, uint64_t inode)
{
    char path[48], link[64];
    ssize_t l;

    if (fd < 0)
        return false;
    snprintf(path, sizeof(path), "%d/fd/%d", (int)pid, fd);
    atomic_fetch_add_explicit(&ps->st_links, 1, memory_order_relaxed);
    l = readlinkat(ps->proc_fd, path, link, sizeof(link));
    if (l <= 0 || (size_t)l >= sizeof(link))
        return false;
    return procscan_link_inode(link, (size_t)l) == inode;
}

/* Does pid hold the socket? Tries the fd it was last seen at first. */
static bool procscan_holds_at(struct identity_procscan *ps, pid_t pid, int fd, uint64_t inode)
{
    return procscan_link_is(ps, pid, fd, inode) || procscan_holds(ps, pid, inode);
}

/* A whole read of one fd table that looks for `want`, keeps every socket
 * it passes (up to PROCSCAN_GATHER_MAX) for the socket index, and notes
 * the table's layout for later probes (the fds that were not files). */
struct procscan_gather {
    uint64_t want;
    bool found;
    struct identity_sockfd *v;
    size_t n, cap;
    int *probe;                  /* NULL once over PROCSCAN_PROBE_MAX */
    size_t nprobe, nfree;
    int next_fd;                 /* fds below it were listed or noted */
};

static void procscan_probe_add(struct procscan_gather *g, int fd)
{
    if (!g->probe)
        return;
    if (g->nprobe == PROCSCAN_PROBE_MAX) {
        free(g->probe);
        g->probe = NULL;
        return;
    }
    g->probe[g->nprobe++] = fd;
}

static bool procscan_gather_cb(uint64_t ino, int fd, void *arg)
{
    struct procscan_gather *g = arg;
    if (fd >= g->next_fd) { /* ascending: the numbers skipped were free */
        for (int f = g->next_fd; f < fd && g->probe && g->nfree < PROCSCAN_PROBE_FREE; f++) {
            procscan_probe_add(g, f);
            g->nfree++;
        }
        g->next_fd = fd + 1;
    } else if (g->probe) {
        free(g->probe); /* not ascending: no layout */
        g->probe = NULL;
    }
    if (ino == 0)
        return false;
    procscan_probe_add(g, fd);
    if (ino == g->want)
        g->found = true;
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 64;
        struct identity_sockfd *nv = NULL;
        if (ncap <= PROCSCAN_GATHER_MAX)
            nv = realloc(g->v, ncap * sizeof(*nv));
        if (!nv)
            return g->found; /* index what we have; stop once found */
        g->v = nv;
        g->cap = ncap;
    }
    g->v[g->n].inode = ino;
    g->v[g->n].fd = fd;
    g->n++;
    return false;
}

struct procscan_collect {
    struct procscan_snap *s;
    pid_t pid;
    int err;
};

static bool procscan_collect_cb(uint64_t ino, int fd, void *arg)
{
    struct procscan_collect *c = arg;
    struct procscan_snap *s = c->s;
    if (ino == 0)
        return false;
    if (s->nidx == s->capidx) {
        size_t ncap = s->capidx ? s->capidx * 2 : 1024;
        if (ncap > PROCSCAN_MAX_INDEX) {
            c->err = -ENOBUFS;
            return true;
        }
        struct procscan_ent *ni = realloc(s->idx, ncap * sizeof(*ni));
        if (!ni) {
            c->err = -ENOMEM;
            return true;
        }
        s->idx = ni;
        s->capidx = ncap;
    }
    s->idx[s->nidx].inode = ino;
    s->idx[s->nidx].pid = c->pid;
    s->idx[s->nidx].fd = fd;
    s->nidx++;
    return false;
}

static int procscan_pid_cmp(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return x < y ? -1 : x > y;
}

static int procscan_ent_cmp(const void *a, const void *b)
{
    const struct procscan_ent *x = a, *y = b;
    if (x->inode != y->inode)
        return x->inode < y->inode ? -1 : 1;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static bool procscan_snap_has_pid(const struct procscan_snap *s, pid_t pid)
{
    return bsearch(&pid, s->pids, s->npids, sizeof(pid_t), procscan_pid_cmp) != NULL;
}

static int procscan_pread_num(int fd, const char *key, char *buf, size_t cap, bool last,
                              unsigned long long *out)
{
    ssize_t n = pread(fd, buf, cap - 1, 0);
    const char *p;
    if (n <= 0)
        return n < 0 ? -errno : -EBADMSG;
    if ((size_t)n == cap - 1)
        return -ENOBUFS; /* maybe truncated: do not trust it */
    buf[n] = '\0';
    if (last) {
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
            buf[--n] = '\0';
        p = strrchr(buf, ' ');
        p = p ? p + 1 : buf;
    } else {
        p = strstr(buf, key);
        if (!p)
            return -EBADMSG;
        p += strlen(key);
    }
    return identity_parse_u64(p, strspn(p, "0123456789"), out);
}

/* Reads both counters. pid_first: last pid before the fork count (the
 * fast path), else after (snapshot start); either way the fork delta
 * bounds the pids allocated in between. */
static int procscan_read_ctr(struct identity_procscan *ps, bool pid_first,
                             struct procscan_ctr *c)
{
    char buf[16384];
    unsigned long long lp = 0, forks = 0;
    int rc;
    if (pid_first) {
        rc = procscan_pread_num(ps->loadavg_fd, NULL, buf, sizeof(buf), true, &lp);
        if (rc == 0)
            rc = procscan_pread_num(ps->stat_fd, "\nprocesses ", buf, sizeof(buf), false, &forks);
    } else {
        rc = procscan_pread_num(ps->stat_fd, "\nprocesses ", buf, sizeof(buf), false, &forks);
        if (rc == 0)
            rc = procscan_pread_num(ps->loadavg_fd, NULL, buf, sizeof(buf), true, &lp);
    }
    if (rc < 0)
        return rc;
    if (lp > 0x7fffffff)
        return -ERANGE;
    c->last_pid = (long)lp;
    c->forks = forks;
    return 0;
}

static long procscan_pid_max(int proc_fd)
{
    char buf[32];
    unsigned long long v;
    int fd = openat(proc_fd, "sys/kernel/pid_max", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    if (identity_parse_u64(buf, strspn(buf, "0123456789"), &v) < 0 || v > 0x7fffffff)
        return -1;
    return (long)v;
}

/* Builds a snapshot (see the top of the file). */
static int procscan_build(struct identity_procscan *ps, struct procscan_snap **out)
{
    char buf[PROCSCAN_DENTS];
    struct procscan_snap *s;
    size_t cappids = 256;
    ssize_t n;
    int dfd = -1, rc = 0;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->late_mu, NULL);
    s->pids = malloc(cappids * sizeof(pid_t));
    if (!s->pids) {
        rc = -ENOMEM;
        goto out;
    }
    s->start_ns = procscan_now_ns();
    s->start_ticks = identity_proc_now_ticks();
    if (ps->use_ctr) {
        s->pid_max = procscan_pid_max(ps->proc_fd);
        s->ctr_ok = s->pid_max > PROCSCAN_RESERVED_PIDS &&
                    procscan_read_ctr(ps, false, &s->ctr) == 0;
    }

    dfd = openat(ps->proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = -errno;
        goto out;
    }
    while ((n = getdents64(dfd, buf, sizeof(buf))) > 0) {
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            pid_t pid = procscan_name_pid(d->d_name);
            if (!pid)
                continue;
            if (s->npids == cappids) {
                if (cappids * 2 > PROCSCAN_MAX_PIDS) {
                    rc = -ENOBUFS;
                    goto out;
                }
                pid_t *np = realloc(s->pids, cappids * 2 * sizeof(pid_t));
                if (!np) {
                    rc = -ENOMEM;
                    goto out;
                }
                s->pids = np;
                cappids *= 2;
            }
            s->pids[s->npids++] = pid;
        }
    }
    if (n < 0) {
        rc = -errno;
        goto out;
    }
    qsort(s->pids, s->npids, sizeof(pid_t), procscan_pid_cmp);

    for (size_t i = 0; i < s->npids; i++) {
        struct procscan_collect c = {.s = s, .pid = s->pids[i], .err = 0};
        if (!procscan_candidate(ps, c.pid))
            continue;
        int r = procscan_fds(ps, c.pid, procscan_collect_cb, &c);
        if (r == -EMFILE || r == -ENFILE || r == -ENOMEM) {
            rc = r; /* a table we could not read may hold anything: no snapshot */
            goto out;
        }
        if (c.err < 0) {
            rc = c.err;
            goto out;
        }
    }
    if (s->nidx)
        qsort(s->idx, s->nidx, sizeof(*s->idx), procscan_ent_cmp);
out:
    if (dfd >= 0)
        close(dfd);
    if (rc < 0) {
        procscan_snap_put(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Scans and makes the result the current snapshot; the caller holds
 * scan_mu and owns one reference to *out. */
static int procscan_rescan_locked(struct identity_procscan *ps, struct procscan_snap **out)
{
    struct procscan_snap *s = NULL, *old;
    uint64_t t_scan = procscan_now_ns();
    int rc = procscan_build(ps, &s);

    *out = NULL;
    if (rc < 0)
        return rc;
    atomic_store_explicit(&ps->scan_cost_ns, procscan_now_ns() - t_scan, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed); /* ps->snap's */
    pthread_mutex_lock(&ps->mu);
    old = ps->snap;
    ps->snap = s;
    pthread_mutex_unlock(&ps->mu);
    procscan_snap_put(old);
    *out = s;
    return 0;
}

/* A snapshot begun at or after `after_ns`, scanning if needed. The caller
 * owns one reference. */
static int procscan_full(struct identity_procscan *ps, uint64_t after_ns,
                         struct procscan_snap **out)
{
    struct procscan_snap *s;
    int rc = 0;

    pthread_mutex_lock(&ps->scan_mu);
    s = procscan_snap_get(ps);
    if (!s || s->start_ns < after_ns) {
        procscan_snap_put(s);
        rc = procscan_rescan_locked(ps, &s);
    }
    pthread_mutex_unlock(&ps->scan_mu);
    *out = rc < 0 ? NULL : s;
    return rc;
}

/* Is s still good for the fast path at now_ns? */
static bool procscan_snap_fresh(struct identity_procscan *ps, const struct procscan_snap *s,
                                uint64_t now_ns, uint64_t max_age_ns)
{
    return s && now_ns - s->start_ns < max_age_ns &&
           atomic_load_explicit(&s->step2_ns, memory_order_relaxed) <=
               atomic_load_explicit(&ps->scan_cost_ns, memory_order_relaxed);
}

int identity_procscan_refresh(struct identity_procscan *ps)
{
    struct procscan_snap *s;
    int rc = 0;

    if (ps->strict)
        return 0;
    s = procscan_snap_get(ps);
    bool due = s && !procscan_snap_fresh(ps, s, procscan_now_ns(),
                                         (uint64_t)PROCSCAN_MAX_AGE_MS * 750000ull);
    procscan_snap_put(s);
    if (!due || pthread_mutex_trylock(&ps->scan_mu) != 0)
        return 0; /* not yet (or never used), or a scan is running */
    s = procscan_snap_get(ps);
    if (!procscan_snap_fresh(ps, s, procscan_now_ns(), (uint64_t)PROCSCAN_MAX_AGE_MS * 750000ull)) {
        procscan_snap_put(s);
        s = NULL;
        rc = procscan_rescan_locked(ps, &s);
        if (rc == 0)
            rc = 1;
    }
    pthread_mutex_unlock(&ps->scan_mu);
    procscan_snap_put(s);
    return rc;
}

static void procscan_add_holder(struct procscan_holders *h, pid_t pid, bool is_new)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->pids[i] == pid)
            return;
    if (h->n < PROCSCAN_MAX_HOLDERS)
        h->pids[h->n] = pid;
    h->n++;
    if (is_new)
        h->new_holder = true;
}

static int procscan_pidfd_open(pid_t pid);

/* Is pid a process (a thread-group leader) or a thread, now? pidfd_open()
 * refuses threads (EINVAL) without reading /proc/PID/status (when pidfds
 * are usable, see identity_procscan_new); /proc is the fallback. 1: a
 * process, 0: a thread, -1: gone (or not yet visible: still in fork). */
static int procscan_pid_kind(struct identity_procscan *ps, pid_t pid)
{
    pid_t tgid;
    if (ps->use_pidfd) {
        int fd = procscan_pidfd_open(pid);
        if (fd >= 0) {
            close(fd);
            return 1;
        }
        if (errno == EINVAL)
            return 0;
        if (errno == ESRCH)
            return -1;
    }
    if (identity_proc_tgid(ps->proc_fd, pid, &tgid) < 0)
        return -1;
    return tgid == pid ? 1 : 0;
}

/* Outcomes of one step of procscan_eval (or -errno). */
enum {
    PS_STEP_DONE = 0,     /* looked; nothing decided */
    PS_STEP_TOO_MANY = 1, /* too many new processes for the fast path */
    PS_STEP_FALLBACK = 2, /* this method cannot tell; use another */
    PS_STEP_FOUND = 3,    /* the holder is known */
    PS_STEP_RESCAN = 4,   /* doubt: decide on a fresh full scan */
};

/* ---- step 2's reads, kept for the snapshot's life ---- */

static size_t procscan_late_pos(const struct procscan_snap *s, pid_t pid)
{
    size_t lo = 0, hi = s->nlate;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->late[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* What s keeps about pid: false when nothing. Else *kind, *complete, and
 * *fd: where the read saw `inode` (-1: not seen). */
static bool procscan_late_find(struct procscan_snap *s, pid_t pid, uint64_t inode,
                               enum procscan_late_kind *kind, bool *complete, int *fd)
{
    bool found = false;
    *fd = -1;
    pthread_mutex_lock(&s->late_mu);
    size_t i = procscan_late_pos(s, pid);
    if (i < s->nlate && s->late[i].pid == pid) {
        const struct procscan_late *l = &s->late[i];
        found = true;
        *kind = l->kind;
        *complete = l->complete;
        for (size_t j = 0; j < l->nsocks; j++)
            if (l->socks[j].inode == inode) {
                *fd = l->socks[j].fd;
                break;
            }
    }
    pthread_mutex_unlock(&s->late_mu);
    return found;
}

/* Keeps what step 2 learnt about pid; takes socks (freed when not kept:
 * full, or another lookup kept the same pid first). */
static void procscan_late_keep(struct procscan_snap *s, pid_t pid, enum procscan_late_kind kind,
                               bool complete, struct identity_sockfd *socks, size_t n)
{
    pthread_mutex_lock(&s->late_mu);
    size_t i = procscan_late_pos(s, pid);
    if (i < s->nlate && s->late[i].pid == pid)
        goto out;
    if (s->nlate == s->caplate) {
        size_t ncap = s->caplate ? s->caplate * 2 : 32;
        struct procscan_late *nl = NULL;
        if (ncap <= PROCSCAN_LATE_MAX)
            nl = realloc(s->late, ncap * sizeof(*nl));
        if (!nl)
            goto out;
        s->late = nl;
        s->caplate = ncap;
    }
    memmove(&s->late[i + 1], &s->late[i], (s->nlate - i) * sizeof(*s->late));
    s->late[i] = (struct procscan_late){
        .pid = pid, .kind = kind, .complete = complete, .nsocks = n, .socks = socks};
    s->nlate++;
    socks = NULL;
out:
    pthread_mutex_unlock(&s->late_mu);
    free(socks);
}

/* A whole read of a new process's table for step 2: looks for `want` and
 * keeps every socket it passes (complete unless over PROCSCAN_LATE_SOCKS
 * or out of memory). */
struct procscan_late_read {
    uint64_t want;
    bool found, complete;
    struct identity_sockfd *v;
    size_t n, cap;
};

static bool procscan_late_cb(uint64_t ino, int fd, void *arg)
{
    struct procscan_late_read *r = arg;
    if (ino == 0)
        return false;
    if (ino == r->want)
        r->found = true;
    if (!r->complete)
        return false;
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 8;
        struct identity_sockfd *nv = NULL;
        if (ncap <= PROCSCAN_LATE_SOCKS)
            nv = realloc(r->v, ncap * sizeof(*nv));
        if (!nv) {
            r->complete = false; /* kept as "read again every time" */
            return false;
        }
        r->v = nv;
        r->cap = ncap;
    }
    r->v[r->n].inode = ino;
    r->v[r->n].fd = fd;
    r->n++;
    return false;
}

/* Is the new process pid a holder of inode? Answers from s's kept read of
 * its table when there is one (1 or 0), else -1: not kept. */
static int procscan_late_holds(struct identity_procscan *ps, struct procscan_snap *s, pid_t pid,
                               uint64_t inode)
{
    enum procscan_late_kind kind;
    bool complete;
    int at;
    if (!procscan_late_find(s, pid, inode, &kind, &complete, &at))
        return -1;
    if (kind != PS_LATE_READ)
        return 0; /* a thread, or outside the netns */
    if (complete) {
        atomic_fetch_add_explicit(&ps->st_late_kept, 1, memory_order_relaxed);
        if (at < 0)
            return 0; /* not in its table when read: see the top of the file */
        if (procscan_link_is(ps, pid, at, inode))
            return 1;
    }
    return procscan_holds(ps, pid, inode); /* moved, or too many sockets to keep */
}

/* Reads the new process pid's table for step 2 and keeps what it saw.
 * Returns 1 when it holds inode, 0 when not (or gone). */
static int procscan_late_read(struct identity_procscan *ps, struct procscan_snap *s, pid_t pid,
                              uint64_t inode)
{
    struct procscan_late_read r = {.want = inode, .complete = true};
    if (ps->netns_ino >= 0) {
        unsigned long ino;
        if (identity_proc_netns(ps->proc_fd, pid, &ino) < 0)
            return 0; /* gone: not kept */
        if (ino != (unsigned long)ps->netns_ino) {
            procscan_late_keep(s, pid, PS_LATE_OTHER_NS, true, NULL, 0);
            return 0;
        }
    }
    if (procscan_fds(ps, pid, procscan_late_cb, &r) < 0) {
        free(r.v);
        return 0; /* gone or unreadable: not a candidate, not kept */
    }
    procscan_late_keep(s, pid, PS_LATE_READ, r.complete, r.complete ? r.v : NULL,
                       r.complete ? r.n : 0);
    if (!r.complete)
        free(r.v);
    return r.found ? 1 : 0;
}

/* New processes, found from the pids allocated since the snapshot: the
 * range (last_pid at T, last_pid now], walked only when the fork counter
 * proves the pid space cannot have wrapped in between. Threads in the
 * range are skipped (a new thread of an old process adds no holder; a new
 * process's threads follow its own pid, which is in the range). Cheap:
 * two preads instead of listing /proc; a pid whose table an earlier
 * lookup read in s's life is answered from that read. */
static int procscan_new_by_range(struct identity_procscan *ps, struct procscan_snap *s,
                                 uint64_t inode, bool final, struct procscan_holders *h)
{
    struct procscan_ctr now;
    long lo = s->ctr.last_pid, hi, span = s->pid_max - PROCSCAN_RESERVED_PIDS, dist;
    size_t nnew = 0;

    if (!s->ctr_ok || procscan_read_ctr(ps, true, &now) < 0)
        return PS_STEP_FALLBACK;
    hi = now.last_pid;
    if (now.forks < s->ctr.forks ||
        now.forks - s->ctr.forks + PROCSCAN_MAX_RANGE >= (unsigned long long)span / 2)
        return PS_STEP_FALLBACK; /* a wrap cannot be excluded */
    if (lo < 1 || lo >= s->pid_max || hi < 1 || hi >= s->pid_max)
        return PS_STEP_FALLBACK;
    if (hi >= lo)
        dist = hi - lo;
    else if (hi >= PROCSCAN_RESERVED_PIDS)
        dist = (s->pid_max - 1 - lo) + (hi - PROCSCAN_RESERVED_PIDS + 1);
    else
        return PS_STEP_FALLBACK;
    if (dist > PROCSCAN_MAX_RANGE)
        return PS_STEP_FALLBACK;

    uint64_t t_loop = dist ? procscan_now_ns() : 0;
    int rc = PS_STEP_DONE;
    long pid = lo;
    for (long i = 0; i < dist; i++) {
        pid = pid + 1 >= s->pid_max ? PROCSCAN_RESERVED_PIDS : pid + 1;
        /* No pid in the range was allocated twice since T (no wrap, just
         * checked): what was kept about it is about the same task. */
        int kept = procscan_late_holds(ps, s, (pid_t)pid, inode);
        if (kept >= 0) {
            if (kept)
                procscan_add_holder(h, (pid_t)pid, true);
            continue;
        }
        if (procscan_snap_has_pid(s, (pid_t)pid)) {
            /* Listed (and read) by the snapshot: skip it, unless that
             * process has exited and the pid was allocated again since
             * (possible once the pid space has wrapped before T). */
            unsigned long long start;
            if (identity_proc_stat(ps->proc_fd, (pid_t)pid, NULL, &start) < 0 ||
                start < s->start_ticks)
                continue;
        }
        int kind = procscan_pid_kind(ps, (pid_t)pid);
        if (kind == 0)
            procscan_late_keep(s, (pid_t)pid, PS_LATE_THREAD, true, NULL, 0);
        if (kind <= 0)
            continue; /* a thread; or gone (not kept: it may still be in fork) */
        if (++nnew > (final ? PROCSCAN_MAX_NEW_FINAL : PROCSCAN_MAX_NEW)) {
            rc = PS_STEP_TOO_MANY;
            break;
        }
        if (procscan_late_read(ps, s, (pid_t)pid, inode))
            procscan_add_holder(h, (pid_t)pid, true);
    }
    if (dist && !final)
        atomic_fetch_add_explicit(&s->step2_ns, procscan_now_ns() - t_loop, memory_order_relaxed);
    return rc;
}

/* New processes, found by listing /proc (~1 us per process) and keeping
 * the pids the snapshot has not listed. */
static int procscan_new_by_listing(struct identity_procscan *ps, struct procscan_snap *s,
                                   uint64_t inode, bool final, struct procscan_holders *h)
{
    char buf[PROCSCAN_DENTS];
    uint64_t t0 = procscan_now_ns();
    size_t nnew = 0;
    ssize_t n;
    int rc = PS_STEP_DONE;
    int dfd = openat(ps->proc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    while (rc == PS_STEP_DONE && (n = getdents64(dfd, buf, sizeof(buf))) > 0) {
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            pid_t pid = procscan_name_pid(d->d_name);
            if (!pid || procscan_snap_has_pid(s, pid))
                continue;
            if (++nnew > (final ? PROCSCAN_MAX_NEW_FINAL : PROCSCAN_MAX_NEW)) {
                rc = PS_STEP_TOO_MANY;
                break;
            }
            if (procscan_candidate(ps, pid) && procscan_holds(ps, pid, inode))
                procscan_add_holder(h, pid, true);
        }
    }
    if (rc == PS_STEP_DONE && n < 0)
        rc = -errno;
    close(dfd);
    if (!final)
        atomic_fetch_add_explicit(&s->step2_ns, procscan_now_ns() - t0, memory_order_relaxed);
    return rc;
}

static int procscan_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0); /* always close-on-exec */
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

/* 0 while the pidfd's process is not yet reaped (its pid is still its
 * own), -ESRCH once it is, other -errno when it cannot tell. Only a clean
 * 0 counts: EPERM also implies existence, but a seccomp filter or LSM
 * could return it for any target, and then a reaped owner would look
 * alive forever; on EPERM the caller reads /proc/PID/stat instead. */
static int procscan_pidfd_alive(int pidfd)
{
#ifdef SYS_pidfd_send_signal
    if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0)
        return 0; /* signal 0: existence (and permission) check only */
    return -errno;
#else
    (void)pidfd;
    return -ENOSYS;
#endif
}

static void procscan_owner_clear(struct procscan_owner *o)
{
    free(o->probe);
    memset(o, 0, sizeof(*o));
}

/* Keeps pidfd (opened on pid before its start time was read) for the
 * owner (pid, start), with the layout of its fd table (probe[0..nprobe),
 * may be NULL); takes ownership of pidfd and probe. Evicts the least
 * recently used owner when full. */
static void procscan_owner_track(struct identity_procscan *ps, pid_t pid, unsigned long long start,
                                 pid_t ppid, int pidfd, int *probe, size_t nprobe)
{
    struct procscan_owner *slot = NULL;
    int *old_probe = NULL;
    int old = -1;

    pthread_mutex_lock(&ps->own_mu);
    for (size_t i = 0; i < PROCSCAN_OWNERS; i++) {
        struct procscan_owner *o = &ps->owners[i];
        if (o->pid == pid) {
            slot = o; /* replaced: the newer pidfd was checked just now */
            break;
        }
        if (!slot || (slot->pid != 0 && (o->pid == 0 || o->used_ns < slot->used_ns)))
            slot = o;
    }
    if (slot->pid != 0) {
        old = slot->pidfd;
        old_probe = slot->probe;
    }
    slot->pid = pid;
    slot->ppid = ppid;
    slot->start = start;
    slot->pidfd = pidfd;
    slot->used_ns = procscan_now_ns();
    slot->probe = probe;
    slot->nprobe = probe ? nprobe : 0;
    slot->last_hit = -1;
    pthread_mutex_unlock(&ps->own_mu);
    free(old_probe);
    if (old >= 0)
        close(old);
}

/* Is a tracked owner with this pid still unreaped? Yes: its start time and
 * the ppid remembered with it. A reaped one is forgotten. */
static bool procscan_owner_alive(struct identity_procscan *ps, pid_t pid,
                                 unsigned long long *start, pid_t *ppid)
{
    bool alive = false;
    int gone = -1;

    pthread_mutex_lock(&ps->own_mu);
    for (size_t i = 0; i < PROCSCAN_OWNERS; i++) {
        struct procscan_owner *o = &ps->owners[i];
        if (o->pid != pid)
            continue;
        int rc = procscan_pidfd_alive(o->pidfd);
        if (rc == 0) {
            alive = true;
            *start = o->start;
            *ppid = o->ppid;
            o->used_ns = procscan_now_ns();
        } else if (rc == -ESRCH) {
            gone = o->pidfd;
            procscan_owner_clear(o);
        }
        break;
    }
    pthread_mutex_unlock(&ps->own_mu);
    if (gone >= 0)
        close(gone);
    return alive;
}

/* Start time (and parent) of the process pid names now, as of a moment
 * after the call began: from a tracked owner's pidfd (*stale: ppid not
 * re-read) or from /proc/PID/stat. 0 or -errno (-ESRCH: gone). */
static int procscan_whois(struct identity_procscan *ps, pid_t pid, unsigned long long *start,
                          pid_t *ppid, bool *stale)
{
    *stale = procscan_owner_alive(ps, pid, start, ppid);
    if (*stale)
        return 0;
    return identity_proc_stat(ps->proc_fd, pid, ppid, start);
}

/* Step 3 from the socket index: the socket was seen at fd N of pid P (start
 * time S, earlier than T) by an earlier read of P's table. Believed only if
 * /proc/P/fd/N is that socket now and, checked after that link, pid P
 * still names the process that started at S: its pidfd says it has not
 * been reaped, or else /proc/P/stat shows S again. So P existed at T and
 * holds the socket now, exactly what an MRU hit establishes (see the top
 * of the file). Anything else drops the sighting and leaves the answer to
 * the slower steps. */
static bool procscan_by_index(struct identity_procscan *ps, const struct procscan_snap *s,
                              uint64_t inode, struct procscan_holders *h)
{
    struct identity_sockidx_hint hint;
    unsigned long long start = 0;
    pid_t ppid = 0;
    bool stale = false;

    if (!identity_sockidx_get(ps->sidx, inode, procscan_now_ns(), &hint))
        return false;
    if (hint.start >= s->start_ticks || !procscan_snap_has_pid(s, hint.pid) ||
        !procscan_link_is(ps, hint.pid, hint.fd, inode) || !procscan_candidate(ps, hint.pid) ||
        procscan_whois(ps, hint.pid, &start, &ppid, &stale) < 0 || start != hint.start)
        goto drop;
    procscan_add_holder(h, hint.pid, false);
    h->have_stat = true;
    h->ppid_stale = stale;
    h->indexed = true;
    h->ppid = ppid;
    h->start = start;
    atomic_fetch_add_explicit(&ps->st_idx_hits, 1, memory_order_relaxed);
    return true;
drop:
    identity_sockidx_drop(ps->sidx, inode, hint.pid);
    return false;
}

/* Step 3 by reading a recent owner's whole fd table. Found, and the owner
 * started before T: PS_STEP_FOUND, every socket the read passed goes into
 * the socket index and the owner is held by a pidfd (opened before its
 * start time is read, so it is of that same process). Found but started
 * at or after T (pid reused) or gone meanwhile: PS_STEP_RESCAN. Not found:
 * PS_STEP_DONE. */
static int procscan_by_owner_read(struct identity_procscan *ps, const struct procscan_snap *s,
                                  pid_t pid, uint64_t inode, struct procscan_holders *h)
{
    struct procscan_gather g = {.want = inode};
    uint64_t t_read = procscan_now_ns();
    unsigned long long start;
    pid_t ppid;
    int rc, pidfd = -1;

    atomic_fetch_add_explicit(&ps->st_owner_tables, 1, memory_order_relaxed);
    g.probe = malloc(PROCSCAN_PROBE_MAX * sizeof(int));
    if (procscan_fds(ps, pid, procscan_gather_cb, &g) != 0 && g.probe) {
        free(g.probe); /* an unfinished read (error, or stopped) gives no layout */
        g.probe = NULL;
    }
    for (int f = g.next_fd; g.probe && g.nfree < PROCSCAN_PROBE_FREE; f++, g.nfree++)
        procscan_probe_add(&g, f); /* past the highest fd */
    if (!g.found) {
        rc = PS_STEP_DONE;
        goto out;
    }
    if (ps->use_pidfd)
        pidfd = procscan_pidfd_open(pid); /* -1: sightings confirmed by stat instead */
    if (!procscan_candidate(ps, pid) ||
        identity_proc_stat(ps->proc_fd, pid, &ppid, &start) < 0 || start >= s->start_ticks) {
        rc = PS_STEP_RESCAN; /* pid reused, or gone: decide on a fresh scan */
        goto out;
    }
    identity_sockidx_put(ps->sidx, pid, start, t_read, g.v, g.n);
    if (pidfd >= 0) {
        procscan_owner_track(ps, pid, start, ppid, pidfd, g.probe, g.nprobe);
        pidfd = -1;
        g.probe = NULL;
    }
    procscan_add_holder(h, pid, false);
    h->have_stat = true;
    h->ppid = ppid;
    h->start = start;
    rc = PS_STEP_FOUND;
out:
    if (pidfd >= 0)
        close(pidfd);
    free(g.v);
    free(g.probe);
    return rc;
}

/* The socket of a connection was just found at fd of owner pid: the
 * next probe of pid starts there (see struct procscan_owner). */
static void procscan_owner_probed(struct identity_procscan *ps, pid_t pid, int fd)
{
    pthread_mutex_lock(&ps->own_mu);
    for (size_t i = 0; i < PROCSCAN_OWNERS; i++) {
        if (ps->owners[i].pid == pid) {
            ps->owners[i].last_hit = fd;
            break;
        }
    }
    pthread_mutex_unlock(&ps->own_mu);
}

/* Step 3 by probing a tracked owner's fd table where its last whole read
 * found a socket or nothing (struct procscan_owner.probe), one link each,
 * instead of reading every fd: the cost follows the sockets an owner
 * holds, not its open files. Believed exactly as an index hit is: the
 * link at that fd is the socket now and, checked after the link, the pid
 * still names the owner that started at the tracked start time, before T.
 * Every socket passed goes into the socket index. PS_STEP_FOUND; PS_STEP_DONE
 * when not found at those fds (a file's number reused, or another owner:
 * a whole read decides); PS_STEP_FALLBACK when pid has no layout. */
static int procscan_by_probe(struct identity_procscan *ps, const struct procscan_snap *s,
                             pid_t pid, uint64_t inode, struct procscan_holders *h)
{
    int fds[PROCSCAN_PROBE_MAX + 1];
    struct identity_sockfd seen[PROCSCAN_PROBE_MAX + 1];
    size_t nfds = 0, nseen = 0;
    unsigned long long start = 0, now_start = 0;
    uint64_t t_probe = procscan_now_ns();
    pid_t ppid = 0;
    bool found = false, stale = false, had_last = false;
    int found_fd = -1;

    pthread_mutex_lock(&ps->own_mu);
    for (size_t i = 0; i < PROCSCAN_OWNERS; i++) {
        struct procscan_owner *o = &ps->owners[i];
        if (o->pid != pid || !o->probe)
            continue;
        had_last = o->last_hit >= 0;
        if (had_last)
            fds[nfds++] = o->last_hit;
        for (size_t j = 0; j < o->nprobe; j++)
            if (o->probe[j] != o->last_hit)
                fds[nfds++] = o->probe[j];
        start = o->start;
        break;
    }
    pthread_mutex_unlock(&ps->own_mu);
    if (nfds == 0)
        return PS_STEP_FALLBACK;
    if (start >= s->start_ticks)
        return PS_STEP_FALLBACK;

    atomic_fetch_add_explicit(&ps->st_probe_walks, 1, memory_order_relaxed);
    /* Found at the last hit: done (one connection at a time). Found
     * elsewhere: the rest is probed too, so that connections made in the
     * same burst (waiting in the accept queue) are then index hits. */
    for (size_t i = 0; i < nfds && !(found && had_last && found_fd == fds[0]); i++) {
        char path[48], link[64];
        snprintf(path, sizeof(path), "%d/fd/%d", (int)pid, fds[i]);
        atomic_fetch_add_explicit(&ps->st_links, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&ps->st_probe_links, 1, memory_order_relaxed);
        ssize_t l = readlinkat(ps->proc_fd, path, link, sizeof(link));
        if (l <= 0 || (size_t)l >= sizeof(link)) {
            if (l < 0 && errno == ESRCH)
                break; /* gone */
            continue;
        }
        uint64_t ino = procscan_link_inode(link, (size_t)l);
        if (ino == 0)
            continue;
        seen[nseen].inode = ino;
        seen[nseen].fd = fds[i];
        nseen++;
        if (ino == inode) {
            found = true;
            found_fd = fds[i];
        }
    }
    if (!found) {
        if (nseen)
            identity_sockidx_put(ps->sidx, pid, start, t_probe, seen, nseen);
        return PS_STEP_DONE;
    }
    procscan_owner_probed(ps, pid, found_fd);
    if (!procscan_candidate(ps, pid) ||
        procscan_whois(ps, pid, &now_start, &ppid, &stale) < 0 || now_start != start)
        return PS_STEP_DONE; /* not the tracked process any more: a whole read decides */
    identity_sockidx_put(ps->sidx, pid, start, t_probe, seen, nseen);
    procscan_add_holder(h, pid, false);
    h->have_stat = true;
    h->ppid_stale = stale;
    h->ppid = ppid;
    h->start = start;
    atomic_fetch_add_explicit(&ps->st_probe_hits, 1, memory_order_relaxed);
    return PS_STEP_FOUND;
}

/* Applies the rules at the top of the file to snapshot s. final: s was
 * begun after the socket existed, so the index is complete for it and the
 * MRU is not needed. */
static int procscan_eval(struct identity_procscan *ps, struct procscan_snap *s,
                         uint64_t inode, bool final, struct procscan_holders *h,
                         enum procscan_verdict *v)
{
    struct procscan_ent key = {.inode = inode, .pid = 0};
    size_t lo = 0, hi = s->nidx;
    pid_t mru[PROCSCAN_MRU];
    int rc;

    memset(h, 0, sizeof(*h));
    /* 1. holders at snapshot time (lower bound of inode in the index) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (procscan_ent_cmp(&s->idx[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < s->nidx && s->idx[i].inode == inode; i++) {
        pid_t pid = s->idx[i].pid, ppid;
        unsigned long long start;
        bool stale, seen = false;
        for (size_t j = 0; j < h->n && j < PROCSCAN_MAX_HOLDERS; j++)
            seen = seen || h->pids[j] == pid;
        if (seen || !procscan_holds_at(ps, pid, s->idx[i].fd, inode))
            continue; /* the same process at two fds counts once */
        /* Checked after the link: a start at or after T means the holder
         * at T exited and its pid went to a new process (-> new holder). */
        if (procscan_whois(ps, pid, &start, &ppid, &stale) < 0 || start >= s->start_ticks) {
            procscan_add_holder(h, pid, true);
            continue;
        }
        if (h->n == 0) {
            h->have_stat = true;
            h->ppid_stale = stale;
            h->ppid = ppid;
            h->start = start;
        }
        procscan_add_holder(h, pid, false);
    }

    /* 2. processes the snapshot has not seen */
    rc = procscan_new_by_range(ps, s, inode, final, h);
    if (rc == PS_STEP_FALLBACK)
        rc = procscan_new_by_listing(ps, s, inode, final, h);
    if (rc < 0)
        return rc;
    if (rc == PS_STEP_TOO_MANY) {
        if (final)
            return -EBUSY;
        *v = PS_NEED_FULL;
        return 0;
    }

    if (h->n >= 2) {
        *v = PS_AMBIGUOUS;
        return 0;
    }
    if (h->n == 1) {
        /* A new holder may share Y with an older creator we have not read. */
        *v = h->new_holder && !final ? PS_NEED_FULL : PS_FOUND;
        return 0;
    }
    if (final) {
        *v = PS_NONE;
        return 0;
    }

    /* 3. the creator existed at T: where its socket index saw it, else
     * recent owners */
    if (procscan_by_index(ps, s, inode, h)) {
        *v = PS_FOUND;
        return 0;
    }
    pthread_mutex_lock(&ps->mu);
    memcpy(mru, ps->mru, sizeof(mru));
    pthread_mutex_unlock(&ps->mu);
    /* Owners with a known layout are probed first (cheap); whole tables are
     * read after, those of owners whose probe missed last (a probed owner
     * holds the socket only at the number of a file closed since). */
    bool probed[PROCSCAN_MRU] = {false};
    for (size_t i = 0; i < PROCSCAN_MRU && mru[i]; i++) {
        if (!procscan_snap_has_pid(s, mru[i]))
            continue;
        rc = procscan_by_probe(ps, s, mru[i], inode, h);
        if (rc == PS_STEP_FOUND) {
            *v = PS_FOUND;
            return 0;
        }
        probed[i] = rc == PS_STEP_DONE;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < PROCSCAN_MRU && mru[i]; i++) {
            if (probed[i] != (pass == 1) || !procscan_snap_has_pid(s, mru[i]))
                continue;
            rc = procscan_by_owner_read(ps, s, mru[i], inode, h);
            if (rc == PS_STEP_DONE)
                continue;
            *v = rc == PS_STEP_FOUND ? PS_FOUND : PS_NEED_FULL;
            return 0;
        }
    }
    *v = PS_NEED_FULL;
    return 0;
}

int identity_procscan_new(int proc_fd, long netns_ino, bool strict,
                          struct identity_procscan **out)
{
    struct identity_procscan *ps = calloc(1, sizeof(*ps));
    *out = NULL;
    if (!ps)
        return -ENOMEM;
    ps->proc_fd = proc_fd;
    ps->netns_ino = netns_ino;
    ps->strict = strict;
    int rc = identity_sockidx_new(PROCSCAN_SOCKIDX_CAP,
                                  (uint64_t)PROCSCAN_SOCKIDX_AGE_MS * 1000000ull, &ps->sidx);
    if (rc < 0) {
        free(ps);
        return rc;
    }
    ps->loadavg_fd = openat(proc_fd, "loadavg", O_RDONLY | O_CLOEXEC);
    ps->stat_fd = openat(proc_fd, "stat", O_RDONLY | O_CLOEXEC);
    /* The pid counters and pidfd_open() are those of our pid namespace:
     * only usable when /proc is that namespace's procfs (its "self" is
     * our pid). pidfds also only when they work here at all. */
    char self[32];
    ssize_t n = readlinkat(proc_fd, "self", self, sizeof(self) - 1);
    unsigned long long me;
    bool ours = false;
    if (n > 0) {
        self[n] = '\0';
        ours = identity_parse_u64(self, (size_t)n, &me) == 0 && me == (unsigned long long)getpid();
    }
    ps->use_ctr = ours && ps->loadavg_fd >= 0 && ps->stat_fd >= 0;
    int selfpd = ours ? procscan_pidfd_open(getpid()) : -1;
    if (selfpd >= 0) {
        ps->use_pidfd = procscan_pidfd_alive(selfpd) == 0;
        close(selfpd);
    }
    pthread_mutex_init(&ps->mu, NULL);
    pthread_mutex_init(&ps->scan_mu, NULL);
    pthread_mutex_init(&ps->own_mu, NULL);
    *out = ps;
    return 0;
}

void identity_procscan_free(struct identity_procscan *ps)
{
    if (!ps)
        return;
    procscan_snap_put(ps->snap);
    identity_sockidx_free(ps->sidx);
    for (size_t i = 0; i < PROCSCAN_OWNERS; i++)
        if (ps->owners[i].pid != 0) {
            close(ps->owners[i].pidfd);
            procscan_owner_clear(&ps->owners[i]);
        }
    if (ps->loadavg_fd >= 0)
        close(ps->loadavg_fd);
    if (ps->stat_fd >= 0)
        close(ps->stat_fd);
    pthread_mutex_destroy(&ps->mu);
    pthread_mutex_destroy(&ps->scan_mu);
    pthread_mutex_destroy(&ps->own_mu);
    free(ps);
}

void identity_procscan_stats(struct identity_procscan *ps, struct identity_procscan_stats *out)
{
    out->fd_tables = atomic_load_explicit(&ps->st_tables, memory_order_relaxed);
    out->owner_tables = atomic_load_explicit(&ps->st_owner_tables, memory_order_relaxed);
    out->fd_links = atomic_load_explicit(&ps->st_links, memory_order_relaxed);
    out->index_hits = atomic_load_explicit(&ps->st_idx_hits, memory_order_relaxed);
    out->probe_walks = atomic_load_explicit(&ps->st_probe_walks, memory_order_relaxed);
    out->probe_hits = atomic_load_explicit(&ps->st_probe_hits, memory_order_relaxed);
    out->probe_links = atomic_load_explicit(&ps->st_probe_links, memory_order_relaxed);
    out->late_kept = atomic_load_explicit(&ps->st_late_kept, memory_order_relaxed);
}

void identity_procscan_note(struct identity_procscan *ps, pid_t pid)
{
    size_t i;
    pthread_mutex_lock(&ps->mu);
    for (i = 0; i < PROCSCAN_MRU - 1 && ps->mru[i] != pid; i++)
        ;
    /* i is pid's slot or the last one; shift [0, i) right by one */
    memmove(&ps->mru[1], &ps->mru[0], i * sizeof(pid_t));
    ps->mru[0] = pid;
    pthread_mutex_unlock(&ps->mu);
}

/* "pid 12 (/usr/bin/x), pid 34 (...)" into detail. */
static void procscan_ambiguous_detail(struct identity_procscan *ps, uint64_t inode,
                                      const struct procscan_holders *h, char *detail,
                                      size_t cap)
{
    size_t off;
    int w = snprintf(detail, cap, "socket inode %llu is held by %zu processes:",
                     (unsigned long long)inode, h->n);
    off = w < 0 ? 0 : (size_t)w;
    for (size_t i = 0; i < h->n && i < PROCSCAN_MAX_HOLDERS && off < cap; i++) {
        char exe[256];
        bool del;
        if (identity_proc_exe(ps->proc_fd, h->pids[i], exe, sizeof(exe), &del) < 0)
            snprintf(exe, sizeof(exe), "?");
        w = snprintf(detail + off, cap - off, "%s pid %d (%s)", i ? "," : "",
                     (int)h->pids[i], exe);
        off += w < 0 ? 0 : (size_t)w;
    }
    if (off < cap && h->n > PROCSCAN_MAX_HOLDERS)
        snprintf(detail + off, cap - off, ", ...");
}

int identity_procscan_find(struct identity_procscan *ps, uint64_t inode,
                           struct identity_owner *out, char *detail, size_t cap)
{
    uint64_t t_enter = procscan_now_ns();
    struct procscan_snap *s = NULL;
    struct procscan_holders h;
    enum procscan_verdict v = PS_NEED_FULL;
    int rc;

    memset(out, 0, sizeof(*out));
    procscan_short = 0;
    if (!ps->strict) {
        s = procscan_snap_get(ps);
        if (procscan_snap_fresh(ps, s, t_enter, (uint64_t)PROCSCAN_MAX_AGE_MS * 1000000ull)) {
            rc = procscan_eval(ps, s, inode, false, &h, &v);
            if (rc < 0)
                v = PS_NEED_FULL;
        }
        procscan_snap_put(s);
        s = NULL;
    }
    if (v == PS_NEED_FULL) {
        rc = procscan_full(ps, t_enter, &s);
        if (rc < 0) {
            snprintf(detail, cap, "scanning /proc for the owner of socket inode %llu: %s",
                     (unsigned long long)inode, strerror(-rc));
            goto out;
        }
        rc = procscan_eval(ps, s, inode, true, &h, &v);
        if (rc < 0) {
            snprintf(detail, cap,
                     "checking processes for socket inode %llu: %s (too many new processes?)",
                     (unsigned long long)inode, strerror(-rc));
            goto out;
        }
    } else {
        out->fast = true;
        out->indexed = h.indexed;
    }

    switch (v) {
    case PS_FOUND:
        break;
    case PS_AMBIGUOUS:
        procscan_ambiguous_detail(ps, inode, &h, detail, cap);
        rc = -ENOTUNIQ;
        goto out;
    case PS_NONE:
    case PS_NEED_FULL:
        snprintf(detail, cap,
                 "no process%s holds socket inode %llu (closed, or the process exited)",
                 ps->netns_ino >= 0 ? " in the sandbox's network namespace" : "",
                 (unsigned long long)inode);
        rc = -ESRCH;
        goto out;
    }
    out->pid = h.pids[0];
    if (h.have_stat) {
        out->ppid = h.ppid; /* read after the holder was confirmed */
        out->start = h.start;
        out->ppid_stale = h.ppid_stale;
        rc = 0;
        goto out;
    }
    rc = identity_proc_stat(ps->proc_fd, out->pid, &out->ppid, &out->start);
    if (rc < 0)
        snprintf(detail, cap, "reading /proc/%d/stat (owner of socket inode %llu): %s",
                 (int)out->pid, (unsigned long long)inode, strerror(-rc));
out:
    procscan_snap_put(s);
    if (procscan_short < 0) { /* fail closed, and say it is the proxy's shortage */
        rc = procscan_short;
        snprintf(detail, cap, "the proxy could not read /proc to find the owner of socket inode "
                 "%llu: %s", (unsigned long long)inode, strerror(-rc));
    }
    return rc;
}
