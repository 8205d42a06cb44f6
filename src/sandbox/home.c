/* sandbox/home: the sandbox's private HOME.
 *
 * When the sandbox has its own root (filesystem_policy lists paths),
 * SANDBOX_HOME is a fresh tmpfs of its own (mountns.c plans it, mode 0700;
 * Landlock grants it read-write, landlock.c) and HOME names it, unless
 * cordon run --host-home keeps the sandbox user's own home (or the
 * workdir). Nothing of the host user's dotfiles is there: the agent starts
 * from an empty, writable HOME that disappears with the sandbox.
 *
 * home_nss_start() runs in the supervisor as soon as the proxy's CA
 * exists: when Debian's certutil (libnss3-tools) is installed, it starts
 * building the NSS database Chromium and Firefox read (sql format, empty
 * password) with the sandbox CA trusted for TLS servers ("C,,").
 * home_install() runs once the sandbox's root exists, before the command:
 * it copies that database to $HOME/.pki/nssdb and hands the directory to
 * the sandbox's user. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "sandbox/sandbox.h"
#include "sandbox/sandbox_int.h"
#include "core/banned.h"

#define HOME_CERTUTIL "/usr/bin/certutil"
#define HOME_NSS_NICK "cordon sandbox CA"


/* Starts argv (certutil) with stdin/stdout/stderr on /dev/null; its pid
 * in *pid. 0 or -errno. */
static int spawn_quiet(char *const argv[], pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    int rc = posix_spawn(pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    return -rc;
}

/* Waits for pid; 0 when it exited 0, else -EIO (or the wait's error). */
static int wait_quiet(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

static const char *const nss_files[] = {"cert9.db", "key4.db", "pkcs11.txt"};

/* Copies src to dst (created 0600, never through a symlink) and hands it
 * to uid:gid. */
static int copy_file(const char *src, const char *dst, uid_t uid, gid_t gid)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        return -e;
    }
    int rc = 0;
    char buf[16384];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : 0;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = w < 0 ? -errno : -EIO;
                goto done;
            }
            off += w;
        }
    }
done:
    if (rc == 0 && fchown(out, uid, gid) < 0)
        rc = -errno;
    close(in);
    if (close(out) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* NSS cannot create its sqlite database through /proc/PID/root (bad
 * database): it is made in a root-only directory of ours, then copied in.
 * One `certutil -A` creates the database (initialized with an empty
 * password, as `-N --empty-password` would) and adds the CA to it; it
 * runs while the proxy, the fence and the sandbox's root are being set
 * up (sandbox_run), not after them. */
int home_nss_start(struct home_nss *n, const char *ca_pem, const char *scratch)
{
    memset(n, 0, sizeof(*n));
    if (access(HOME_CERTUTIL, X_OK) < 0)
        return 0; /* not installed: no NSS database, nothing to wait for */
    snprintf(n->dir, sizeof(n->dir), "%s/cordon-nss.XXXXXX", scratch);
    if (!mkdtemp(n->dir)) {
        int e = errno;
        n->dir[0] = '\0';
        return -e;
    }
    char dbarg[64];
    snprintf(dbarg, sizeof(dbarg), "sql:%s", n->dir);
    char *const add[] = {HOME_CERTUTIL, "-A", "-d", dbarg, "-n", HOME_NSS_NICK, "-t", "C,,",
                         "-i", (char *)ca_pem, NULL};
    int rc = spawn_quiet(add, &n->pid);
    if (rc < 0) {
        n->pid = 0;
        home_nss_discard(n);
    }
    return rc;
}

/* Waits for certutil (once); 0 or -errno. */
static int nss_wait(struct home_nss *n)
{
    if (n->pid > 0) {
        n->rc = wait_quiet(n->pid);
        n->pid = 0;
    }
    return n->rc;
}

void home_nss_discard(struct home_nss *n)
{
    (void)nss_wait(n);
    if (!n->dir[0])
        return;
    for (size_t i = 0; i < sizeof(nss_files) / sizeof(nss_files[0]); i++) {
        char f[128];
        snprintf(f, sizeof(f), "%s/%s", n->dir, nss_files[i]);
        unlink(f);
    }
    rmdir(n->dir);
    n->dir[0] = '\0';
}

/* Copies the database certutil made into home/.pki/nssdb. */
static int install_nssdb(const char *home, struct home_nss *n, uid_t uid, gid_t gid, char *err,
                         size_t cap)
{
    char pki[4096], db[4096];
    int rc;
    if ((rc = nss_wait(n)) < 0) {
        snprintf(err, cap, "certutil could not create the NSS database (%s)", strerror(-rc));
        goto out;
    }
    snprintf(pki, sizeof(pki), "%s/.pki", home);
    snprintf(db, sizeof(db), "%s/.pki/nssdb", home);
    if ((mkdir(pki, 0700) < 0 && errno != EEXIST) || (mkdir(db, 0700) < 0 && errno != EEXIST) ||
        lchown(pki, uid, gid) < 0 || lchown(db, uid, gid) < 0) {
        rc = -errno;
        snprintf(err, cap, "cannot create %s: %s", db, strerror(-rc));
        goto out;
    }
    for (size_t i = 0; i < sizeof(nss_files) / sizeof(nss_files[0]); i++) {
        char from[128], to[4200];
        snprintf(from, sizeof(from), "%s/%s", n->dir, nss_files[i]);
        snprintf(to, sizeof(to), "%s/%s", db, nss_files[i]);
        if ((rc = copy_file(from, to, uid, gid)) < 0) {
            snprintf(err, cap, "cannot copy the NSS database into %s: %s", db, strerror(-rc));
            goto out;
        }
    }
    rc = 0;
out:
    home_nss_discard(n);
    return rc;
}

int home_install(pid_t init_pid, uid_t uid, gid_t gid, struct home_nss *nss, char *err,
                 size_t cap)
{
    char home[128];
    snprintf(home, sizeof(home), "/proc/%d/root" SANDBOX_HOME, (int)init_pid);
    struct stat st;
    if (lstat(home, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, cap, "the private HOME %s is missing in the sandbox", SANDBOX_HOME);
        return -ENOENT;
    }
    int rc;
    if (nss && nss->dir[0] && (rc = install_nssdb(home, nss, uid, gid, err, cap)) < 0)
        log_warn("run: %s: Chromium and Firefox will not trust the sandbox CA", err);
    if (lchown(home, uid, gid) < 0 || chmod(home, 0700) < 0) {
        rc = -errno;
        snprintf(err, cap, "cannot hand the private HOME %s to the sandbox's user: %s",
                 SANDBOX_HOME, strerror(-rc));
        return rc;
    }
    return 0;
}
