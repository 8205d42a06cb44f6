/* Unit tests for the command's process setup: sandbox/childenv,
 * sandbox/landlock, sandbox/seccomp, sandbox/privdrop. The ones that apply
 * a restriction do it in a forked child and report through its exit code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "sandbox/sandbox_int.h"

/* Runs fn in a child; returns its exit status (fn's return value). */
static int in_child(int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(arg));
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* ---- childenv ---- */

static void test_childenv(void **state)
{
    (void)state;
    char *base[] = {"PATH=/usr/bin:/bin", "https_proxy=http://evil:1", "HTTPS_PROXY=http://evil:2",
                    "No_Proxy=*", "KEEP=1", "CORDON_SECRET=x", "HOME=/root", "garbage",
                    "NODE_USE_ENV_PROXY=0", NULL};
    struct childenv_opts o = {.proxy_url = "http://10.200.0.1:3128", .user = "cordon",
                              .home = "/work", .sandbox_name = "t1"};
    struct childenv e;
    assert_int_equal(childenv_build(base, &o, &e), 0);
    static const char *const proxies[] = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                          "http_proxy", "https_proxy", "all_proxy"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(childenv_get(&e, proxies[i]), "http://10.200.0.1:3128");
    assert_string_equal(childenv_get(&e, "NO_PROXY"), "localhost,127.0.0.1,::1");
    assert_string_equal(childenv_get(&e, "no_proxy"), "localhost,127.0.0.1,::1");
    assert_string_equal(childenv_get(&e, "NODE_USE_ENV_PROXY"), "1");
    assert_string_equal(childenv_get(&e, "PATH"), "/usr/bin:/bin");
    assert_string_equal(childenv_get(&e, "KEEP"), "1");
    assert_string_equal(childenv_get(&e, "HOME"), "/work");
    assert_string_equal(childenv_get(&e, "USER"), "cordon");
    assert_string_equal(childenv_get(&e, "CORDON_SANDBOX"), "t1");
    assert_null(childenv_get(&e, "CORDON_SECRET"));
    assert_null(childenv_get(&e, "No_Proxy"));
    /* No variable appears twice, whatever its case in the input. */
    size_t n_https = 0;
    for (size_t i = 0; e.envp[i]; i++) {
        assert_non_null(strchr(e.envp[i], '='));
        if (strncmp(e.envp[i], "HTTPS_PROXY=", 12) == 0 || strncmp(e.envp[i], "https_proxy=", 12) == 0)
            n_https++;
    }
    assert_int_equal(n_https, 2);
    assert_null(e.envp[e.n]);
    childenv_free(&e);
}

static void test_childenv_ca_and_java(void **state)
{
    (void)state;
    char *base[] = {"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=/host/ca.pem", "NIX_SSL_CERT_FILE=/nix/ca",
                    "SSL_CERT_DIR=/host/certs", "JAVA_TOOL_OPTIONS=-Xmx64m", NULL};
    struct childenv_opts o = {.proxy_url = "http://10.200.0.1:3128", .ca_bundle = "/run/b.pem",
                              .java_truststore = "/run/t.p12"};
    struct childenv e;
    assert_int_equal(childenv_build(base, &o, &e), 0);
    static const char *const ca[] = {"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "NIX_SSL_CERT_FILE",
                                     "HTTPLIB2_CA_CERTS", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
                                     "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"};
    for (size_t i = 0; i < sizeof(ca) / sizeof(ca[0]); i++)
        assert_string_equal(childenv_get(&e, ca[i]), "/run/b.pem");
    assert_null(childenv_get(&e, "SSL_CERT_DIR"));
    assert_string_equal(childenv_get(&e, "JAVA_TOOL_OPTIONS"),
                        "-Xmx64m -Dhttp.proxyHost=10.200.0.1 -Dhttp.proxyPort=3128 "
                        "-Dhttps.proxyHost=10.200.0.1 -Dhttps.proxyPort=3128 "
                        "-Dhttp.nonProxyHosts=localhost|127.0.0.1 "
                        "-Djavax.net.ssl.trustStore=/run/t.p12 -Djavax.net.ssl.trustStoreType=PKCS12 "
                        "-Djavax.net.ssl.trustStorePassword=changeit");
    childenv_free(&e);
}

static void test_childenv_allowlist(void **state)
{
    (void)state;
    char *base[] = {"PATH=/bin", "TERM=xterm", "LC_ALL=C", "AWS_SECRET_ACCESS_KEY=s",
                    "ANTHROPIC_API_KEY=k", "ANTHROPIC_BASE_URL=u", "HOME=/root", "KEEPME=1", NULL};
    const char *keep[] = {"ANTHROPIC_*", "KEEPME", NULL};
    struct childenv_opts o = {.keep = keep};
    struct childenv e;
    assert_int_equal(childenv_build(base, &o, &e), 0);
    assert_string_equal(childenv_get(&e, "PATH"), "/bin");
    assert_string_equal(childenv_get(&e, "TERM"), "xterm");
    assert_string_equal(childenv_get(&e, "LC_ALL"), "C");
    assert_string_equal(childenv_get(&e, "ANTHROPIC_API_KEY"), "k");
    assert_string_equal(childenv_get(&e, "ANTHROPIC_BASE_URL"), "u");
    assert_string_equal(childenv_get(&e, "KEEPME"), "1");
    assert_null(childenv_get(&e, "AWS_SECRET_ACCESS_KEY"));
    assert_null(childenv_get(&e, "HOME"));
    childenv_free(&e);
    /* --env-clear: the base set only */
    struct childenv_opts c = {.clear = true};
    assert_int_equal(childenv_build(base, &c, &e), 0);
    assert_string_equal(childenv_get(&e, "PATH"), "/bin");
    assert_null(childenv_get(&e, "ANTHROPIC_API_KEY"));
    assert_null(childenv_get(&e, "KEEPME"));
    childenv_free(&e);
}

/* ---- landlock ---- */

static void test_landlock_rights(void **state)
{
    (void)state;
    uint64_t exec_read_file = (1ULL << 0) | (1ULL << 2);
    assert_int_equal(landlock_handled(0), 0);
    assert_int_equal(landlock_handled(1), 0x1fff);
    assert_int_equal(landlock_handled(2), 0x3fff);
    assert_int_equal(landlock_handled(3), 0x7fff);
    assert_int_equal(landlock_handled(5), 0xffff);
    assert_int_equal(landlock_handled(6), 0xffff);
    /* read_only dir: execute, read file, read dir. */
    assert_int_equal(landlock_rights(6, false, true), exec_read_file | (1ULL << 3));
    /* read_only file: no directory rights (the kernel refuses them on files). */
    assert_int_equal(landlock_rights(6, false, false), exec_read_file);
    /* read_write file: file rights only (execute, write, read, truncate, ioctl_dev). */
    assert_int_equal(landlock_rights(6, true, false), 0x7 | (1ULL << 14) | (1ULL << 15));
    assert_int_equal(landlock_rights(1, true, false), 0x7);
    assert_int_equal(landlock_rights(6, true, true), 0xffff);
}

static char g_tmp[64];

static int child_landlock(void *arg)
{
    (void)arg;
    char rw[128], ro[128], secret[128], f[160];
    snprintf(rw, sizeof(rw), "%s/rw", g_tmp);
    snprintf(ro, sizeof(ro), "%s/ro", g_tmp);
    snprintf(secret, sizeof(secret), "%s/secret", g_tmp);
    char *ro_list[] = {ro, "/usr", "/lib", "/does/not/exist"};
    char *rw_list[] = {rw};
    struct policy_fs fs = {.read_only = ro_list, .n_read_only = 4, .read_write = rw_list,
                           .n_read_write = 1};
    struct landlock_prep p;
    char err[256];
    if (landlock_prepare(&fs, NULL, false, &p, err, sizeof(err)) < 0)
        return 10;
    if (landlock_finish(&p, "", NULL, err, sizeof(err)) < 0)
        return 12;
    if (p.n_skipped != 1) /* paths are opened by landlock_finish */
        return 11;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || landlock_apply(&p) < 0)
        return 13;
    snprintf(f, sizeof(f), "%s/new", rw);
    int fd = open(f, O_CREAT | O_WRONLY, 0600);
    if (fd < 0)
        return 20;
    close(fd);
    snprintf(f, sizeof(f), "%s/new", ro);
    if (open(f, O_CREAT | O_WRONLY, 0600) >= 0 || errno != EACCES)
        return 21;
    snprintf(f, sizeof(f), "%s/file", ro);
    fd = open(f, O_RDONLY);
    if (fd < 0)
        return 22;
    close(fd);
    snprintf(f, sizeof(f), "%s/file", secret);
    if (open(f, O_RDONLY) >= 0 || errno != EACCES)
        return 23;
    if (open("/etc/hostname", O_RDONLY) >= 0 || errno != EACCES)
        return 24;
    return 0;
}

static void test_landlock_apply(void **state)
{
    (void)state;
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/cordon-ll-XXXXXX");
    assert_non_null(mkdtemp(g_tmp));
    char p[160];
    const char *dirs[] = {"rw", "ro", "secret"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", g_tmp, dirs[i]);
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/%s/file", g_tmp, dirs[i]);
        int fd = open(p, O_CREAT | O_WRONLY, 0644);
        assert_true(fd >= 0);
        close(fd);
    }
    int rc = in_child(child_landlock, NULL);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_tmp);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(rc, 0);
}

static void test_landlock_empty_refused(void **state)
{
    (void)state;
    char *ro_list[] = {"/does/not/exist", "/nor/this"};
    struct policy_fs fs = {.read_only = ro_list, .n_read_only = 2};
    struct landlock_prep p;
    char err[256] = "";
    /* best_effort: missing paths are skipped, but an empty ruleset is an error. */
    assert_int_equal(landlock_prepare(&fs, NULL, false, &p, err, sizeof(err)), 0);
    assert_int_equal(landlock_finish(&p, "", NULL, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "empty ruleset"));
    assert_int_equal(p.ruleset_fd, -1);
    /* hard_requirement: the first missing path is an error naming it. */
    assert_int_equal(landlock_prepare(&fs, NULL, true, &p, err, sizeof(err)), 0);
    assert_true(landlock_finish(&p, "/", NULL, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "/does/not/exist"));
    assert_non_null(strstr(err, "hard_requirement"));
    /* Nothing listed: no Landlock, not an error. */
    struct policy_fs none = {0};
    assert_int_equal(landlock_prepare(&none, NULL, true, &p, err, sizeof(err)), 0);
    assert_int_equal(p.ruleset_fd, -1);
}

/* ---- seccomp ---- */

static struct sysfilter g_filter;
static int g_listener = -1;

static int child_seccomp(void *arg)
{
    (void)arg;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || sysfilter_apply(&g_filter, &g_listener) < 0)
        return 10;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 20;
    close(fd);
    if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) < 0)
        return 21;
    close(fd);
    if ((fd = socket(AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */)) < 0)
        return 22;
    close(fd);
    if (socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) >= 0 || errno != EPERM)
        return 30;
    if (socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW) >= 0 || errno != EPERM)
        return 31;
    if (socket(AF_PACKET, SOCK_RAW, 0) >= 0 || errno != EPERM)
        return 32;
    if (socket(AF_NETLINK, SOCK_RAW, 4 /* SOCK_DIAG */) >= 0 || errno != EPERM)
        return 33;
    if (socket(40 /* AF_VSOCK */, SOCK_STREAM, 0) >= 0 || errno != EPERM)
        return 34;
    /* High bits in the family must not slip past (the kernel truncates to int). */
    if (syscall(SYS_socket, 0x100000011L, SOCK_RAW, 0) >= 0 || errno != EPERM)
        return 35;
    if (unshare(CLONE_NEWUSER) == 0 || errno != EPERM)
        return 40;
    if (unshare(CLONE_NEWNET) == 0 || errno != EPERM)
        return 41;
    if (syscall(SYS_setns, 0, 0) == 0 || errno != EPERM)
        return 42;
    if (syscall(SYS_mount, "none", "/mnt", "tmpfs", 0, NULL) == 0 || errno != EPERM)
        return 43;
    if (syscall(SYS_bpf, 0, NULL, 0) == 0 || errno != EPERM)
        return 44;
    if (syscall(SYS_keyctl, 0, 0, 0, 0, 0) == 0 || errno != EPERM)
        return 45;
    if (syscall(SYS_io_uring_setup, 1, NULL) == 0 || errno != EPERM)
        return 46;
    if (syscall(SYS_clone3, NULL, 0) == 0 || errno != ENOSYS)
        return 47;
    /* fork still works (clone without namespace flags). */
    pid_t pid = fork();
    if (pid < 0)
        return 50;
    if (pid == 0)
        _exit(7);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
        return 51;
    return 0;
}

static void test_seccomp(void **state)
{
    (void)state;
    assert_int_equal(sysfilter_build(&g_filter, false), 0);
    assert_true(g_filter.len > 10);
    size_t n;
    const struct sysfilter_rule *r = sysfilter_rules(&n);
    assert_true(n > 30);
    bool has_unshare = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(r[i].syscall, "unshare") == 0)
            has_unshare = true;
    assert_true(has_unshare);
    assert_int_equal(in_child(child_seccomp, NULL), 0);
    sysfilter_free(&g_filter);
    assert_null(g_filter.insns);
}

/* ---- privdrop ---- */

static struct privdrop g_priv;

static int child_privdrop(void *arg)
{
    (void)arg;
    if (privdrop_apply(&g_priv) < 0)
        return 10;
    if (getuid() != g_priv.uid || geteuid() != g_priv.uid || getgid() != g_priv.gid)
        return 11;
    if (getgroups(0, NULL) != 0)
        return 12;
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
        return 13;
    for (int cap = 0; cap <= g_priv.cap_last; cap++)
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 0)
            return 14;
    if (setuid(0) == 0)
        return 15;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 16;
    char line[256];
    int bad = 0;
    while (fgets(line, sizeof(line), f))
        if ((strncmp(line, "CapInh:", 7) == 0 || strncmp(line, "CapPrm:", 7) == 0 ||
             strncmp(line, "CapEff:", 7) == 0 || strncmp(line, "CapBnd:", 7) == 0 ||
             strncmp(line, "CapAmb:", 7) == 0) &&
            !strstr(line, "0000000000000000"))
            bad = 1;
    fclose(f);
    return bad ? 17 : 0;
}

static void test_privdrop(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    char err[256] = "";
    assert_int_equal(privdrop_resolve("nobody", NULL, &g_priv, err, sizeof(err)), 0);
    assert_true(g_priv.uid != 0);
    assert_int_equal(in_child(child_privdrop, NULL), 0);
    /* Root is refused, unknown names are explained. */
    assert_int_equal(privdrop_resolve("root", NULL, &g_priv, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "never run as root"));
    assert_int_equal(privdrop_resolve("nobody", "root", &g_priv, err, sizeof(err)), -EPERM);
    assert_int_equal(privdrop_resolve("no-such-user-xyz", NULL, &g_priv, err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "no-such-user-xyz"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_childenv),
        cmocka_unit_test(test_childenv_ca_and_java),
        cmocka_unit_test(test_childenv_allowlist),        cmocka_unit_test(test_landlock_rights),
        cmocka_unit_test(test_landlock_apply),  cmocka_unit_test(test_landlock_empty_refused),
        cmocka_unit_test(test_seccomp),         cmocka_unit_test(test_privdrop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
