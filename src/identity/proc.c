/* identity/proc: small facts about one process, read from /proc through an
 * fd of /proc (openat-relative, no path building beyond "PID/x"). */
#include "identity/identity_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/banned.h"

#define PROC_STAT_MAX 1024
#define PROC_DELETED_SUFFIX " (deleted)"

int identity_parse_u64(const char *s, size_t len, unsigned long long *out)
{
    unsigned long long v = 0;
    if (len == 0 || len > 20)
        return len > 20 ? -ERANGE : -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (~0ull - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

void identity_fp_from_stat(const struct stat *st, struct identity_fp *fp)
{
    memset(fp, 0, sizeof(*fp));
    fp->dev = st->st_dev;
    fp->ino = st->st_ino;
    fp->size = st->st_size;
    fp->mtime = st->st_mtim;
    fp->ctime = st->st_ctim;
}

bool identity_fp_equal(const struct identity_fp *a, const struct identity_fp *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* "PID/name" into buf; returns 0 or -ENAMETOOLONG. */
static int proc_path(char *buf, size_t cap, pid_t pid, const char *name)
{
    int n = snprintf(buf, cap, "%d/%s", (int)pid, name);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* ENOENT from /proc/PID/... means the process is gone. */
static int proc_errno(int e)
{
    return e == ENOENT ? -ESRCH : -e;
}

/* Reads /proc/PID/leaf into buf (at most cap - 1 bytes, NUL-terminated).
 * Returns the length, or -errno (-ESRCH when the process is gone). */
static ssize_t proc_read(int proc_fd, pid_t pid, const char *leaf, char *buf, size_t cap)
{
    char path[32];
    int rc = proc_path(path, sizeof(path), pid, leaf);
    if (rc < 0)
        return rc;
    int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return proc_errno(errno);
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = errno == ENOENT ? -ESRCH : -errno;
            close(fd);
            return rc;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

int identity_proc_stat(int proc_fd, pid_t pid, pid_t *ppid, unsigned long long *start)
{
    char buf[PROC_STAT_MAX];
    ssize_t n = proc_read(proc_fd, pid, "stat", buf, sizeof(buf));
    if (n < 0)
        return (int)n;

    /* "pid (comm) S ppid ..."; comm may hold spaces and ')', so fields
     * start after the last ')'. Field 3 (state) is token 0. */
    const char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return -EBADMSG;
    p += 2;
    const char *end = buf + n;
    unsigned field = 3;
    while (p < end && field <= 22) {
        const char *tok = p;
        while (p < end && *p != ' ' && *p != '\n')
            p++;
        size_t len = (size_t)(p - tok);
        if (field == 4 && ppid) {
            unsigned long long v;
            if (identity_parse_u64(tok, len, &v) < 0 || v > 0x7fffffff)
                return -EBADMSG;
            *ppid = (pid_t)v;
        } else if (field == 22) {
            unsigned long long v;
            if (identity_parse_u64(tok, len, &v) < 0)
                return -EBADMSG;
            if (start)
                *start = v;
            return 0;
        }
        field++;
        if (p < end)
            p++;
    }
    return -EBADMSG;
}

int identity_proc_tgid(int proc_fd, pid_t pid, pid_t *tgid)
{
    char path[32], buf[PROC_STAT_MAX];
    ssize_t n;
    int fd, rc;

    rc = proc_path(path, sizeof(path), pid, "status");
    if (rc < 0)
        return rc;
    fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return proc_errno(errno);
    do {
        n = read(fd, buf, sizeof(buf) - 1); /* Tgid is on the 4th line */
    } while (n < 0 && errno == EINTR);
    rc = n < 0 ? -errno : 0;
    close(fd);
    if (rc < 0)
        return rc == -ENOENT ? -ESRCH : rc;
    buf[n] = '\0';
    const char *p = strstr(buf, "\nTgid:");
    if (!p)
        return -EBADMSG;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t len = strspn(p, "0123456789");
    unsigned long long v;
    if (identity_parse_u64(p, len, &v) < 0 || v == 0 || v > 0x7fffffff)
        return -EBADMSG;
    *tgid = (pid_t)v;
    return 0;
}

int identity_proc_exe(int proc_fd, pid_t pid, char *buf, size_t cap, bool *deleted)
{
    char path[32];
    ssize_t n;
    int rc;
    const size_t sl = sizeof(PROC_DELETED_SUFFIX) - 1;

    *deleted = false;
    if (cap < 2)
        return -EINVAL;
    rc = proc_path(path, sizeof(path), pid, "exe");
    if (rc < 0)
        return rc;
    n = readlinkat(proc_fd, path, buf, cap);
    if (n < 0)
        return proc_errno(errno);
    if ((size_t)n >= cap)
        return -ENAMETOOLONG;
    buf[n] = '\0';
    if ((size_t)n > sl && memcmp(buf + n - sl, PROC_DELETED_SUFFIX, sl) == 0) {
        buf[(size_t)n - sl] = '\0';
        *deleted = true;
    }
    return 0;
}

/* stat(2) of /proc/PID/<leaf>, following the link. */
static int proc_stat(int proc_fd, pid_t pid, const char *leaf, struct stat *st)
{
    char path[32];
    int rc = proc_path(path, sizeof(path), pid, leaf);
    if (rc < 0)
        return rc;
    if (fstatat(proc_fd, path, st, 0) < 0)
        return proc_errno(errno);
    return 0;
}

int identity_proc_exe_fp(int proc_fd, pid_t pid, struct identity_fp *fp)
{
    struct stat st;
    int rc = proc_stat(proc_fd, pid, "exe", &st);
    if (rc == 0)
        identity_fp_from_stat(&st, fp);
    return rc;
}

int identity_proc_netns(int proc_fd, pid_t pid, unsigned long *ino)
{
    struct stat st;
    int rc = proc_stat(proc_fd, pid, "ns/net", &st);
    if (rc == 0)
        *ino = (unsigned long)st.st_ino;
    return rc;
}

unsigned long long identity_proc_now_ticks(void)
{
    struct timespec ts;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (unsigned long long)ts.tv_sec * (unsigned long long)hz +
           (unsigned long long)ts.tv_nsec / (1000000000ull / (unsigned long long)hz);
}

int identity_proc_is_ns_init(int proc_fd, pid_t pid)
{
    char buf[2048];
    ssize_t n = proc_read(proc_fd, pid, "status", buf, sizeof(buf));
    if (n < 0)
        return (int)n; /* unreadable: the caller stops the chain here (fail closed) */
    const char *p = strstr(buf, "\nNSpid:");
    if (!p)
        return 0; /* no PID namespaces in this kernel */
    p += 7;
    const char *eol = strchr(p, '\n');
    if (!eol)
        eol = p + strlen(p);
    /* The last field is the pid in the innermost namespace. */
    const char *last = eol;
    while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
        last--;
    const char *start = last;
    while (start > p && start[-1] >= '0' && start[-1] <= '9')
        start--;
    bool nested = false;
    for (const char *q = p; q < start; q++)
        if (*q >= '0' && *q <= '9')
            nested = true;
    return nested && last - start == 1 && *start == '1' ? 1 : 0;
}
