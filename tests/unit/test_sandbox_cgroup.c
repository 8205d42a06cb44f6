/* Unit tests for sandbox/cgroup.c: the files each hierarchy gets, written
 * into a directory tree shaped like a cgroup mount (the v2 controllers are
 * not attached on the test machine, so this is where the v2 limit files
 * are checked; tests/integration/test_run_limits.py runs the real ones). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/cgroup.h"

static char g_root[64];

static void put(const char *dir, const char *name, const char *text)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void expect(const char *rel, const char *text)
{
    char p[PATH_MAX], buf[256] = "";
    snprintf(p, sizeof(p), "%s/%s", g_root, rel);
    FILE *f = fopen(p, "r");
    if (!f)
        fail_msg("%s was not written", rel);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_string_equal(buf, text);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_root, sizeof(g_root), "/tmp/cordon-cg-XXXXXX");
    assert_non_null(mkdtemp(g_root));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_root);
    return system(cmd);
}

static void test_v2_files(void **state)
{
    (void)state;
    put(g_root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
    struct cgroup_limits lim = {.pids = 100, .memory = 64ULL << 20, .cpu_millis = 500};
    struct cgroup cg;
    char err[256] = "";
    assert_int_equal(cgroup_create(g_root, true, CGROUP_PARENT, "run-1-2", &lim, 0, &cg,
                                   err, sizeof(err)), 0);
    assert_int_equal(cg.n, 1);
    assert_true(cg.procs_fd[0] >= 0);
    expect("cgroup.subtree_control", "+pids +memory +cpu");
    expect("cordon/cgroup.subtree_control", "+pids +memory +cpu");
    expect("cordon/run-1-2/pids.max", "100");
    expect("cordon/run-1-2/memory.max", "67108864");
    expect("cordon/run-1-2/memory.swap.max", "0");
    expect("cordon/run-1-2/cpu.max", "50000 100000");
    /* init joins by writing "0" to the fd */
    assert_int_equal(write(cg.procs_fd[0], "0", 1), 1);
    expect("cordon/run-1-2/cgroup.procs", "0");
    put(cg.dir[0], "pids.events", "max 7\n");
    put(cg.dir[0], "memory.events", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n");
    struct cgroup_counters c;
    cgroup_counters(&cg, &c);
    assert_int_equal(c.pids_refused, 7);
    assert_int_equal(c.oom_kills, 2);
    cgroup_close_procs(&cg);
}

static void test_v2_missing_controller(void **state)
{
    (void)state;
    put(g_root, "cgroup.controllers", "cpu io memory\n");
    struct cgroup cg;
    char err[256] = "";
    /* The default pids limit only warns... */
    struct cgroup_limits def = {.pids = 1024, .pids_default = true};
    assert_int_equal(cgroup_create(g_root, true, CGROUP_PARENT, "run-3-4", &def, 0, &cg,
                                   err, sizeof(err)), 0);
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/pids.max", cg.dir[0]);
    assert_int_equal(access(p, F_OK), -1);
    cgroup_close_procs(&cg);
    /* ...an explicit one is an error, and nothing is left. */
    struct cgroup_limits lim = {.pids = 50};
    assert_int_equal(cgroup_create(g_root, true, CGROUP_PARENT, "run-5-6", &lim, 0, &cg,
                                   err, sizeof(err)),
                     -EOPNOTSUPP);
    assert_non_null(strstr(err, "pids"));
    snprintf(p, sizeof(p), "%s/cordon/run-5-6", g_root);
    assert_int_equal(access(p, F_OK), -1);
}

static void test_v1_files(void **state)
{
    (void)state;
    static const char *const ctrls[] = {"pids", "memory", "cpu", "freezer"};
    for (size_t i = 0; i < 4; i++) {
        char d[PATH_MAX];
        snprintf(d, sizeof(d), "%s/%s", g_root, ctrls[i]);
        assert_int_equal(mkdir(d, 0755), 0);
    }
    struct cgroup_limits lim = {.pids = 64, .memory = 1ULL << 30, .cpu_millis = 1500};
    struct cgroup cg;
    char err[256] = "";
    assert_int_equal(cgroup_create(g_root, false, CGROUP_PARENT, "run-7-8", &lim, 0, &cg,
                                   err, sizeof(err)), 0);
    assert_int_equal(cg.n, 4);
    expect("pids/cordon/run-7-8/pids.max", "64");
    expect("memory/cordon/run-7-8/memory.limit_in_bytes", "1073741824");
    expect("cpu/cordon/run-7-8/cpu.cfs_period_us", "100000");
    expect("cpu/cordon/run-7-8/cpu.cfs_quota_us", "150000");
    assert_true(cg.freezer_idx >= 0);
    put(cg.dir[cg.mem_idx], "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n");
    struct cgroup_counters c;
    cgroup_counters(&cg, &c);
    assert_int_equal(c.oom_kills, 4);
    cgroup_close_procs(&cg);
    /* Only the limits asked for: no memory or cpu directory without them. */
    struct cgroup_limits pids_only = {.pids = 10};
    assert_int_equal(cgroup_create(g_root, false, CGROUP_PARENT, "run-9-9", &pids_only, 0, &cg,
                                   err, sizeof(err)),
                     0);
    assert_int_equal(cg.n, 2); /* pids + freezer */
    cgroup_close_procs(&cg);
}

/* The server's shape: a nested parent, the freezer required, the group
 * taken back from its directories, a member joined by pid, freeze/thaw
 * written, members listed, a real process killed and the group removed. */
static void test_v1_server_lifecycle(void **state)
{
    (void)state;
    static const char *const ctrls[] = {"pids", "memory", "cpu", "freezer"};
    char err[256] = "";
    struct cgroup cg;
    struct cgroup_limits lim = {.memory = 1ULL << 28};
    /* no freezer mounted: an error when the caller needs one */
    char d[PATH_MAX];
    snprintf(d, sizeof(d), "%s/memory", g_root);
    assert_int_equal(mkdir(d, 0755), 0);
    assert_int_equal(cgroup_create(g_root, false, "cordon/srv", "sbx-1", &lim, CGROUP_NEED_FREEZER,
                                   &cg, err, sizeof(err)), -EOPNOTSUPP);
    assert_non_null(strstr(err, "freezer"));
    snprintf(d, sizeof(d), "%s/memory/cordon/srv/sbx-1", g_root);
    assert_int_equal(access(d, F_OK), -1); /* nothing left */
    for (size_t i = 0; i < 4; i++) {
        snprintf(d, sizeof(d), "%s/%s", g_root, ctrls[i]);
        (void)mkdir(d, 0755);
    }
    /* names are plain components */
    assert_int_equal(cgroup_create(g_root, false, "../x", "a", &lim, 0, &cg, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(cgroup_create(g_root, false, "cordon", "a/b", &lim, 0, &cg, err,
                                   sizeof(err)), -EINVAL);
    assert_int_equal(cgroup_create(g_root, false, "cordon/srv", "sbx-1", &lim,
                                   CGROUP_NEED_FREEZER, &cg, err, sizeof(err)), 0);
    assert_int_equal(cg.n, 2); /* memory + freezer */
    expect("memory/cordon/srv/sbx-1/memory.limit_in_bytes", "268435456");
    cgroup_close_procs(&cg);
    put(cg.dir[cg.freezer_idx], "freezer.state", "THAWED");

    /* attach: from the directories, the controllers found from the files */
    const char *dirs[2] = {cg.dir[0], cg.dir[1]};
    struct cgroup back;
    assert_int_equal(cgroup_attach(g_root, false, dirs, 2, &back, err, sizeof(err)), 0);
    assert_int_equal(back.mem_idx, cg.mem_idx);
    assert_int_equal(back.freezer_idx, cg.freezer_idx);
    const char *outside[1] = {"/etc"};
    assert_int_equal(cgroup_attach(g_root, false, outside, 1, &back, err, sizeof(err)), -EINVAL);
    char dotdot[PATH_MAX + 16];
    snprintf(dotdot, sizeof(dotdot), "%s/memory/../../etc", g_root);
    const char *esc[1] = {dotdot};
    assert_int_equal(cgroup_attach(g_root, false, esc, 1, &back, err, sizeof(err)), -EINVAL);
    /* never a controller's root or a group outside cordon/ */
    char ctl_root[PATH_MAX + 16], host[PATH_MAX + 32], tail[PATH_MAX + 32];
    snprintf(ctl_root, sizeof(ctl_root), "%s/memory", g_root);
    snprintf(host, sizeof(host), "%s/memory/system.slice", g_root);
    snprintf(tail, sizeof(tail), "%s/memory/cordon/..", g_root);
    const char *bad[3] = {ctl_root, host, tail};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(cgroup_attach(g_root, false, &bad[i], 1, &back, err, sizeof(err)),
                         -EINVAL);
    /* a directory already gone is an empty part of the group */
    char gone[PATH_MAX + 32];
    snprintf(gone, sizeof(gone), "%s/pids/cordon/srv/sbx-gone", g_root);
    const char *g1[1] = {gone};
    assert_int_equal(cgroup_attach(g_root, false, g1, 1, &back, err, sizeof(err)), 0);
    pid_t none[1];
    assert_int_equal(cgroup_members(&back, none, 1), 0);
    assert_int_equal(cgroup_remove(&back), 0);

    /* freeze / thaw */
    assert_int_equal(cgroup_freeze(&cg, true), 0);
    expect("freezer/cordon/srv/sbx-1/freezer.state", "FROZEN");
    assert_int_equal(cgroup_freeze(&cg, false), 0);
    expect("freezer/cordon/srv/sbx-1/freezer.state", "THAWED");

    /* join by pid writes it into every directory */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        pause();
        _exit(0);
    }
    assert_int_equal(cgroup_join(&cg, child), 0);
    char num[32];
    snprintf(num, sizeof(num), "%d", (int)child);
    expect("memory/cordon/srv/sbx-1/cgroup.procs", num);
    expect("freezer/cordon/srv/sbx-1/cgroup.procs", num);
    pid_t m[4];
    assert_int_equal(cgroup_members(&cg, m, 4), 1);
    assert_int_equal(m[0], child);
    /* kill: one pass, no waiting; the member really gets SIGKILL */
    assert_int_equal(cgroup_kill(&cg), 1);
    int st = 0;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    expect("freezer/cordon/srv/sbx-1/freezer.state", "THAWED"); /* thawed after */
}

static void test_v2_freeze_join_parent(void **state)
{
    (void)state;
    put(g_root, "cgroup.controllers", "cpu memory pids\n");
    struct cgroup_limits lim = {.cpu_millis = 250};
    struct cgroup cg;
    char err[256] = "";
    assert_int_equal(cgroup_create(g_root, true, "cordon/a", "sbx-2", &lim, CGROUP_NEED_FREEZER,
                                   &cg, err, sizeof(err)), 0);
    /* the controller is enabled at every level on the way down */
    expect("cgroup.subtree_control", "+cpu");
    expect("cordon/cgroup.subtree_control", "+cpu");
    expect("cordon/a/cgroup.subtree_control", "+cpu");
    expect("cordon/a/sbx-2/cpu.max", "25000 100000");
    cgroup_close_procs(&cg);
    assert_int_equal(cgroup_freeze(&cg, true), 0);
    expect("cordon/a/sbx-2/cgroup.freeze", "1");
    assert_int_equal(cgroup_freeze(&cg, false), 0);
    expect("cordon/a/sbx-2/cgroup.freeze", "0");
    assert_int_equal(cgroup_join(&cg, 4242), 0);
    expect("cordon/a/sbx-2/cgroup.procs", "4242");
    const char *dirs[1] = {cg.dir[0]};
    struct cgroup back;
    assert_int_equal(cgroup_attach(g_root, true, dirs, 1, &back, err, sizeof(err)), 0);
    assert_int_equal(back.freezer_idx, 0);
    /* removal of a directory holding files is refused by rmdir here (a
     * real cgroup has no removable files): the error comes back */
    assert_true(cgroup_remove(&cg) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_v2_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_missing_controller, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_server_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_freeze_join_parent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
