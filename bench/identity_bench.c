/* identity_bench: how many new connections per second identity_resolve()
 * can attribute. A client process keeps N connections open to a loopback
 * listener (opening a new one as soon as the server finishes with one,
 * closing its oldest); W server threads accept, resolve, close.
 *
 *   steady mode (default): one long-lived client process, like an agent
 *     runtime opening many connections (the process cache and the procscan
 *     fast path are what is measured);
 *   fresh mode (-f): every connection comes from a new process (fork per
 *     connection), like a shell running curl in a loop: cache misses and
 *     full /proc scans.
 *
 * Build and run (not part of `make`):
 *   make build/libcordon.a
 *   cc -D_GNU_SOURCE -Isrc -O2 -pthread bench/identity_bench.c build/libcordon.a \
 *      -lssl -lcrypto -o build/identity_bench
 *   build/identity_bench [-n conns] [-t seconds] [-w threads] [-F files] [-f] [-s] [-N]
 * -F: the client holds that many open files (/dev/null) besides its
 *    connections, opened before them (the per-connection cost should not
 *    grow with it; #8 item 3).
 * -s uses strict_owner_scan (a full /proc scan per connection).
 * -N runs in a private network namespace and limits candidates to it
 *    (netns_ino), like the proxy of a sandbox: host processes are skipped. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "identity/identity.h"

#define BENCH_MAX_CONNS 4096
#define BENCH_MAX_THREADS 16
#define BENCH_LAT_SAMPLES 200000

static struct sockaddr_in bench_addr;
static struct identity_cache *bench_cache;
static int bench_lfd;
static atomic_int bench_stop;
static atomic_ullong bench_ok, bench_fail, bench_ns;
static unsigned long long bench_lat[BENCH_LAT_SAMPLES];
static atomic_uint bench_nlat;

static unsigned long long bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static int bench_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&bench_addr, sizeof(bench_addr)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Steady client: a ring of n open connections; the oldest is closed once
 * the server is done with it (EOF), so every connection is still open
 * when the server resolves it. */
static void bench_client_steady(int n)
{
    static int ring[BENCH_MAX_CONNS];
    int head = 0;
    char b;
    for (int i = 0; i < n; i++)
        ring[i] = -1;
    for (;;) {
        if (ring[head] >= 0) {
            while (read(ring[head], &b, 1) > 0)
                ;
            close(ring[head]);
        }
        ring[head] = bench_connect();
        head = (head + 1) % n;
    }
}

/* Fresh client: up to n live processes, each with one connection that it
 * holds until the server closes it. */
static void bench_client_fresh(int n)
{
    int live = 0;
    for (;;) {
        while (live >= n) {
            if (waitpid(-1, NULL, 0) > 0)
                live--;
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
            live--;
        pid_t p = fork();
        if (p == 0) {
            char b;
            int fd = bench_connect();
            if (fd >= 0)
                while (read(fd, &b, 1) > 0)
                    ;
            _exit(0);
        }
        if (p > 0)
            live++;
    }
}

static void *bench_server(void *arg)
{
    struct identity *id = calloc(1, sizeof(*id));
    (void)arg;
    if (!id)
        return NULL;
    while (!atomic_load(&bench_stop)) {
        struct sockaddr_storage peer, local;
        socklen_t pl = sizeof(peer), ll = sizeof(local);
        int afd = accept4(bench_lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
        if (afd < 0)
            continue;
        if (getsockname(afd, (struct sockaddr *)&local, &ll) == 0) {
            unsigned long long t0 = bench_now_ns();
            int rc = identity_resolve(bench_cache, (struct sockaddr *)&peer,
                                      (struct sockaddr *)&local, id);
            unsigned long long dt = bench_now_ns() - t0;
            atomic_fetch_add(&bench_ns, dt);
            unsigned slot = atomic_fetch_add(&bench_nlat, 1);
            if (slot < BENCH_LAT_SAMPLES)
                bench_lat[slot] = dt;
            if (rc == 0) {
                atomic_fetch_add(&bench_ok, 1);
            } else {
                if (atomic_fetch_add(&bench_fail, 1) < 3)
                    fprintf(stderr, "resolve failed: %s: %s\n", id->reason_code, id->detail);
            }
        }
        close(afd);
    }
    free(id);
    return NULL;
}

static int bench_private_netns(long *ino)
{
    struct ifreq ifr;
    struct stat st;
    int fd, rc;
    if (unshare(CLONE_NEWNET) < 0)
        return -errno;
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    close(fd);
    if (rc < 0 || stat("/proc/self/ns/net", &st) < 0)
        return -errno;
    *ino = (long)st.st_ino;
    return 0;
}

static int bench_cmp(const void *a, const void *b)
{
    unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int n = 64, secs = 3, workers = 1, files = 0, opt;
    bool fresh = false, strict = false, netns = false;
    long netns_ino = -1;
    pthread_t th[BENCH_MAX_THREADS];
    socklen_t len = sizeof(bench_addr);

    while ((opt = getopt(argc, argv, "n:t:w:F:fsN")) != -1) {
        switch (opt) {
        case 'n': n = (int)strtol(optarg, NULL, 10); break;
        case 't': secs = (int)strtol(optarg, NULL, 10); break;
        case 'w': workers = (int)strtol(optarg, NULL, 10); break;
        case 'F': files = (int)strtol(optarg, NULL, 10); break;
        case 'f': fresh = true; break;
        case 's': strict = true; break;
        case 'N': netns = true; break;
        default:
            fprintf(stderr, "usage: %s [-n conns] [-t seconds] [-w threads] [-F files] [-f] [-s] [-N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n < 1 || n > BENCH_MAX_CONNS || secs < 1 || workers < 1 || workers > BENCH_MAX_THREADS ||
        files < 0 || files > 1000000) {
        fprintf(stderr, "identity_bench: -n 1..%d, -t >= 1, -w 1..%d\n", BENCH_MAX_CONNS,
                BENCH_MAX_THREADS);
        return 2;
    }

    if (netns && bench_private_netns(&netns_ino) < 0) {
        perror("identity_bench: private netns (-N needs CAP_SYS_ADMIN)");
        return 1;
    }
    struct identity_cache_opts o = {.netns_ino = netns_ino, .netns_fd = -1,
                                    .strict_owner_scan = strict};
    bench_cache = identity_cache_new(&o);
    if (!bench_cache) {
        perror("identity_cache_new");
        return 1;
    }
    bench_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bench_addr.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &bench_addr.sin_addr);
    if (bench_lfd < 0 || bind(bench_lfd, (struct sockaddr *)&bench_addr, sizeof(bench_addr)) < 0 ||
        listen(bench_lfd, 1024) < 0 ||
        getsockname(bench_lfd, (struct sockaddr *)&bench_addr, &len) < 0) {
        perror("listen");
        return 1;
    }
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    setsockopt(bench_lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)); /* accept wakes to stop */

    pid_t client = fork();
    if (client == 0) {
        close(bench_lfd);
        if (files > 0) {
            struct rlimit rl;
            if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)(files + n + 64)) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
            }
            for (int i = 0; i < files; i++)
                if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0) {
                    perror("identity_bench: client: open /dev/null (-F)");
                    _exit(1);
                }
        }
        if (fresh)
            bench_client_fresh(n);
        else
            bench_client_steady(n);
        _exit(0);
    }

    for (int i = 0; i < workers; i++)
        pthread_create(&th[i], NULL, bench_server, NULL);
    unsigned long long t0 = bench_now_ns();
    sleep((unsigned)secs);
    atomic_store(&bench_stop, 1);
    for (int i = 0; i < workers; i++)
        pthread_join(th[i], NULL);
    double wall = (double)(bench_now_ns() - t0) / 1e9;
    kill(client, SIGKILL);
    waitpid(client, NULL, 0);

    struct identity_stats st;
    identity_cache_stats(bench_cache, &st);
    unsigned long long ok = atomic_load(&bench_ok), fail = atomic_load(&bench_fail);
    unsigned nl = atomic_load(&bench_nlat);
    if (nl > BENCH_LAT_SAMPLES)
        nl = BENCH_LAT_SAMPLES;
    qsort(bench_lat, nl, sizeof(bench_lat[0]), bench_cmp);
    double avg_us = ok + fail ? (double)atomic_load(&bench_ns) / (double)(ok + fail) / 1e3 : 0;
    printf("mode=%s%s%s conns=%d files=%d workers=%d: %.0f resolutions/s (%llu ok, %llu failed in "
           "%.2f s)\n",
           fresh ? "fresh-process" : "steady", strict ? "+strict" : "", netns ? "+netns" : "",
           n, files, workers,
           (double)ok / wall, ok, fail, wall);
    printf("  resolve latency: avg %.1f us, p50 %.1f us, p99 %.1f us (1 thread busy = %.0f/s)\n",
           avg_us, nl ? (double)bench_lat[nl / 2] / 1e3 : 0,
           nl ? (double)bench_lat[(size_t)((double)nl * 0.99)] / 1e3 : 0,
           avg_us > 0 ? 1e6 / avg_us : 0);
    printf("  cache hits %llu, misses %llu, owner fast path %llu, full scans %llu, hashes %llu\n",
           st.cache_hits, st.cache_misses, st.fast_owner, st.full_scans, st.hashes);
    printf("  fd tables read %llu (owners' %llu), fd links read %llu (%.1f per resolution), "
           "socket index hits %llu, probes %llu (found %llu, %.1f links each)\n",
           st.fd_tables, st.owner_tables, st.fd_links,
           ok + fail ? (double)st.fd_links / (double)(ok + fail) : 0, st.index_hits,
           st.probe_walks, st.probe_hits,
           st.probe_walks ? (double)st.probe_links / (double)st.probe_walks : 0);
    identity_cache_free(bench_cache);
    close(bench_lfd);
    return fail ? 1 : 0;
}
