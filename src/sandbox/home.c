/* sandbox/home: the sandbox's private HOME.
 *
 * When the sandbox has its own root (filesystem_policy lists paths),
 * SANDBOX_HOME is a fresh tmpfs of its own (mountns.c plans it, mode 0700;
 * Landlock grants it read-write, landlock.c) and HOME names it, unless
 * cordon run --host-home keeps the sandbox user's own home (or the
 * workdir). Nothing of the host user's dotfiles is there: the agent starts
 * from an empty, writable HOME that disappears with the sandbox.
 *
 * home_install() runs in the supervisor once the sandbox's root exists,
 * before the command: it hands the directory to the sandbox's user and,
 * when Debian's certutil (libnss3-tools) is installed, creates the NSS
 * database Chromium and Firefox read ($HOME/.pki/nssdb, sql format, empty
 * password) with the sandbox CA trusted for TLS servers ("C,,"). */
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


/* Runs argv (certutil) with stdin/stdout/stderr on /dev/null; 0 when it
 * exited 0, else -EIO (or the spawn error). */
static int run_quiet(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -rc;
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
 * database): it is made in a root-only directory of ours, then copied in. */
static int make_nssdb(const char *home, const char *ca_pem, uid_t uid, gid_t gid, char *err,
                      size_t cap)
{
    char tmp[] = "/run/cordon-nss.XXXXXX", dbarg[64], pki[4096], db[4096];
    if (!mkdtemp(tmp)) {
        snprintf(err, cap, "cannot create a directory for the NSS database: %s",
                 strerror(errno));
        return -errno;
    }
    snprintf(dbarg, sizeof(dbarg), "sql:%s", tmp);
    char *const init[] = {HOME_CERTUTIL, "-N", "-d", dbarg, "--empty-password", NULL};
    char *const add[] = {HOME_CERTUTIL, "-A", "-d", dbarg, "-n", HOME_NSS_NICK, "-t", "C,,",
                         "-i", (char *)ca_pem, NULL};
    int rc;
    if ((rc = run_quiet(init)) < 0 || (rc = run_quiet(add)) < 0) {
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
        snprintf(from, sizeof(from), "%s/%s", tmp, nss_files[i]);
        snprintf(to, sizeof(to), "%s/%s", db, nss_files[i]);
        if ((rc = copy_file(from, to, uid, gid)) < 0) {
            snprintf(err, cap, "cannot copy the NSS database into %s: %s", db, strerror(-rc));
            goto out;
        }
    }
    rc = 0;
out:
    for (size_t i = 0; i < sizeof(nss_files) / sizeof(nss_files[0]); i++) {
        char f[128];
        snprintf(f, sizeof(f), "%s/%s", tmp, nss_files[i]);
        unlink(f);
    }
    rmdir(tmp);
    return rc;
}

int home_install(pid_t init_pid, uid_t uid, gid_t gid, const char *ca_pem, char *err, size_t cap)
{
    char home[128];
    snprintf(home, sizeof(home), "/proc/%d/root" SANDBOX_HOME, (int)init_pid);
    struct stat st;
    if (lstat(home, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, cap, "the private HOME %s is missing in the sandbox", SANDBOX_HOME);
        return -ENOENT;
    }
    int rc;
    if (ca_pem && access(HOME_CERTUTIL, X_OK) == 0 &&
        (rc = make_nssdb(home, ca_pem, uid, gid, err, cap)) < 0)
        log_warn("run: %s: Chromium and Firefox will not trust the sandbox CA", err);
    if (lchown(home, uid, gid) < 0 || chmod(home, 0700) < 0) {
        rc = -errno;
        snprintf(err, cap, "cannot hand the private HOME %s to the sandbox's user: %s",
                 SANDBOX_HOME, strerror(-rc));
        return rc;
    }
    return 0;
}
