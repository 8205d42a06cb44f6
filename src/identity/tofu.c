/* identity/tofu: trust on first use of executables.
 *
 * Keyed by path (as /proc/PID/exe names it). The first sighting records the
 * SHA-256 of the content and a fingerprint (dev, ino, size, mtime, ctime).
 * Same fingerprint later -> the recorded verdict, no I/O. Different
 * fingerprint -> rehash; same hash -> new fingerprint recorded; different
 * hash -> the path is denied from then on ("poisoned"), even for processes
 * still running the original content, for the table's life.
 *
 * Content is always read through /proc/PID/exe, which opens the very file
 * the process runs (also when deleted or replaced), never by path: no
 * window between checking one file and hashing another. The fingerprint
 * recorded is fstat() of that same open file, taken before and after
 * hashing; a file that changes while being hashed is not trusted.
 *
 * The table is bounded (max_binaries) and never evicts: evicting an entry
 * would let a modified binary be trusted on "first" use again. When full, a
 * new path is refused (-ENOSPC) so the caller denies it. */
#include "identity/identity_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/banned.h"

#define TOFU_READ_CHUNK (64 * 1024)

struct tofu_entry {
    struct tofu_entry *next;  /* hash chain */
    uint64_t hash;
    struct identity_fp fp;
    bool poisoned;
    char sha256[65];          /* first seen */
    char bad_sha256[65];      /* when poisoned: the differing content */
    char path[];
};

struct identity_tofu {
    pthread_mutex_t mu;
    size_t max, count, nbuckets;
    atomic_uint_fast64_t generation; /* written under mu, read without */
    struct tofu_entry **buckets;
};

/* FNV-1a, 64 bit. */
static uint64_t tofu_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

int identity_tofu_new(size_t max_binaries, struct identity_tofu **out)
{
    struct identity_tofu *t;
    size_t nb = 16;

    *out = NULL;
    if (max_binaries == 0 || max_binaries > (1u << 24))
        return -EINVAL;
    while (nb < max_binaries && nb < (1u << 20))
        nb *= 2;
    t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->buckets = calloc(nb, sizeof(*t->buckets));
    if (!t->buckets) {
        free(t);
        return -ENOMEM;
    }
    t->nbuckets = nb;
    t->max = max_binaries;
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return 0;
}

void identity_tofu_free(struct identity_tofu *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct tofu_entry *e = t->buckets[i];
        while (e) {
            struct tofu_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    pthread_mutex_destroy(&t->mu);
    free(t->buckets);
    free(t);
}

uint64_t identity_tofu_generation(struct identity_tofu *t)
{
    return atomic_load_explicit(&t->generation, memory_order_acquire);
}

static struct tofu_entry *tofu_find(struct identity_tofu *t, const char *path, uint64_t h)
{
    for (struct tofu_entry *e = t->buckets[h & (t->nbuckets - 1)]; e; e = e->next)
        if (e->hash == h && strcmp(e->path, path) == 0)
            return e;
    return NULL;
}

int identity_sha256_fd(int fd, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    unsigned char *buf = NULL;
    EVP_MD_CTX *ctx = NULL;
    off_t off = 0;
    int rc = 0;

    hex[0] = '\0';
    buf = malloc(TOFU_READ_CHUNK);
    ctx = EVP_MD_CTX_new();
    if (!buf || !ctx) {
        rc = -ENOMEM;
        goto out;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = -EIO;
        goto out;
    }
    for (;;) {
        ssize_t n = pread(fd, buf, TOFU_READ_CHUNK, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            rc = -EIO;
            goto out;
        }
        off += n;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
        rc = -EIO;
        goto out;
    }
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

/* Hashes the executable of pid through /proc/PID/exe; *fp is the open
 * file's fingerprint (unchanged across the read, else -EAGAIN). */
static int tofu_hash_exe(int proc_fd, pid_t pid, char hex[65], struct identity_fp *fp)
{
    char path[32];
    struct stat st1, st2;
    struct identity_fp fp2;
    int fd, rc;

    snprintf(path, sizeof(path), "%d/exe", (int)pid);
    fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    if (fstat(fd, &st1) < 0) {
        rc = -errno;
        goto out;
    }
    identity_fp_from_stat(&st1, fp);
    rc = identity_sha256_fd(fd, hex);
    if (rc < 0)
        goto out;
    if (fstat(fd, &st2) < 0) {
        rc = -errno;
        goto out;
    }
    identity_fp_from_stat(&st2, &fp2);
    if (!identity_fp_equal(fp, &fp2))
        rc = -EAGAIN; /* modified while we read it */
out:
    close(fd);
    return rc;
}

static void tofu_fill_denied(const struct tofu_entry *e, struct identity_tofu_result *res)
{
    memcpy(res->sha256, e->sha256, sizeof(res->sha256));
    memcpy(res->first_sha256, e->sha256, sizeof(res->first_sha256));
    memcpy(res->bad_sha256, e->bad_sha256, sizeof(res->bad_sha256));
}

int identity_tofu_check(struct identity_tofu *t, int proc_fd, pid_t pid, const char *path,
                        const struct identity_fp *fp, struct identity_tofu_result *res)
{
    uint64_t h = tofu_hash(path);
    struct identity_fp hfp;
    struct tofu_entry *e;
    char hex[65];
    int rc;

    memset(res, 0, sizeof(*res));
    pthread_mutex_lock(&t->mu);
    e = tofu_find(t, path, h);
    if (e && e->poisoned) {
        tofu_fill_denied(e, res);
        pthread_mutex_unlock(&t->mu);
        return -EPERM;
    }
    if (e && identity_fp_equal(&e->fp, fp)) {
        memcpy(res->sha256, e->sha256, sizeof(res->sha256));
        pthread_mutex_unlock(&t->mu);
        return 0;
    }
    if (!e && t->count >= t->max) {
        pthread_mutex_unlock(&t->mu);
        return -ENOSPC;
    }
    pthread_mutex_unlock(&t->mu);

    /* Hash outside the lock: binaries can be large. */
    rc = tofu_hash_exe(proc_fd, pid, hex, &hfp);
    if (rc == -EAGAIN)
        rc = tofu_hash_exe(proc_fd, pid, hex, &hfp);
    if (rc < 0)
        return rc;
    res->hashed = true;

    pthread_mutex_lock(&t->mu);
    e = tofu_find(t, path, h); /* may have appeared meanwhile */
    if (!e) {
        size_t pl = strlen(path);
        if (t->count >= t->max) {
            rc = -ENOSPC;
            goto unlock;
        }
        e = calloc(1, sizeof(*e) + pl + 1);
        if (!e) {
            rc = -ENOMEM;
            goto unlock;
        }
        memcpy(e->path, path, pl + 1);
        e->hash = h;
        e->fp = hfp;
        memcpy(e->sha256, hex, sizeof(e->sha256));
        e->next = t->buckets[h & (t->nbuckets - 1)];
        t->buckets[h & (t->nbuckets - 1)] = e;
        t->count++;
        memcpy(res->sha256, hex, sizeof(res->sha256));
        rc = 0;
    } else if (e->poisoned) {
        tofu_fill_denied(e, res);
        rc = -EPERM;
    } else if (strcmp(e->sha256, hex) == 0) {
        e->fp = hfp; /* touched or copied back: same content */
        memcpy(res->sha256, hex, sizeof(res->sha256));
        rc = 0;
    } else {
        e->poisoned = true;
        memcpy(e->bad_sha256, hex, sizeof(e->bad_sha256));
        atomic_fetch_add_explicit(&t->generation, 1, memory_order_release);
        tofu_fill_denied(e, res);
        rc = -EPERM;
        log_warn("identity: binary %s changed since first use (sha256 %s, now %s); "
                 "denying it for the rest of this sandbox's life",
                 path, e->sha256, hex);
    }
unlock:
    pthread_mutex_unlock(&t->mu);
    return rc;
}
