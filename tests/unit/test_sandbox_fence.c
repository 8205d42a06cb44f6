/* Unit tests for sandbox/fence + sandbox/nftmsg: the fence's netlink batch
 * (fence_install) puts into the kernel exactly what nft makes of the
 * ruleset text (fence_ruleset): each variant is loaded both ways into two
 * fresh network namespaces, and `nft --debug=netlink list ruleset` (every
 * rule's bytecode, sets, chains, hooks, as the kernel holds them) must
 * print the same. Needs root and the nft command (nftables). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"

/* A new, empty network namespace, kept alive by the returned fd. */
static int new_netns(void)
{
    int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(self >= 0);
    assert_int_equal(unshare(CLONE_NEWNET), 0);
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(setns(self, CLONE_NEWNET), 0);
    close(self);
    return fd;
}

/* Runs nft ARGS inside netns_fd with `in` on stdin; its stdout+stderr in
 * out (NUL-terminated); its exit status. */
static int nft_in(int netns_fd, const char *in, char *out, size_t cap, char *const argv[])
{
    int ip[2], op[2];
    assert_int_equal(pipe(ip), 0);
    assert_int_equal(pipe(op), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setns(netns_fd, CLONE_NEWNET) < 0)
            _exit(120);
        dup2(ip[0], 0);
        dup2(op[1], 1);
        dup2(op[1], 2);
        close(ip[1]);
        close(op[0]);
        execvp("nft", argv);
        _exit(127);
    }
    close(ip[0]);
    close(op[1]);
    size_t inl = in ? strlen(in) : 0;
    assert_int_equal(write(ip[1], in ? in : "", inl), (ssize_t)inl);
    close(ip[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < cap && (n = read(op[0], out + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(op[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void check_same(const struct fence_opts *o)
{
    static char text[8192], by_text[65536], by_batch[65536], out[4096];
    char err[512] = "";
    assert_true(fence_ruleset(o, text, sizeof(text)) > 0);
    int a = new_netns(), b = new_netns();
    char *load[] = {"nft", "-f", "-", NULL};
    char *list[] = {"nft", "--debug=netlink", "list", "ruleset", NULL};
    int rc = nft_in(a, text, out, sizeof(out), load);
    if (rc != 0)
        print_error("nft -f: %s\n", out);
    assert_int_equal(rc, 0);
    rc = fence_install(b, o, err, sizeof(err));
    if (rc != 0)
        print_error("fence_install: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(nft_in(a, NULL, by_text, sizeof(by_text), list), 0);
    assert_int_equal(nft_in(b, NULL, by_batch, sizeof(by_batch), list), 0);
    if (strcmp(by_text, by_batch) != 0)
        print_error("from the text:\n%s\nfrom the batch:\n%s\n", by_text, by_batch);
    assert_string_equal(by_text, by_batch);
    assert_non_null(strstr(by_batch, "ip daddr"));
    close(a);
    close(b);
}

static struct fence_opts opts(bool monitored, uint8_t capture_prefix)
{
    struct fence_opts o = {.proxy_port = 3128, .nflog_group = FENCE_NFLOG_GROUP,
                           .monitored = monitored};
    inet_pton(AF_INET, "10.200.0.1", &o.proxy4);
    if (capture_prefix) {
        inet_pton(AF_INET, "198.18.0.0", &o.capture_net);
        o.capture_prefix = capture_prefix;
        o.capture_port = 3129;
    }
    return o;
}

static void test_monitored_capture(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct fence_opts o = opts(true, 16);
    check_same(&o);
}

static void test_monitored_capture_unaligned(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct fence_opts o = opts(true, 20); /* a mask, not a shorter load */
    check_same(&o);
    o.capture_prefix = 30;
    o.proxy_port = 8080;
    o.nflog_group = 9;
    check_same(&o);
}

static void test_monitored_no_capture(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct fence_opts o = opts(true, 0);
    check_same(&o);
}

static void test_reject_only(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct fence_opts o = opts(false, 0);
    check_same(&o);
    o = opts(false, 16);
    check_same(&o);
}

/* A batch the kernel refuses (a rule in a chain that does not exist)
 * fails as a whole, names the refused message, and leaves nothing. */
static void test_refused_batch(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    static char buf[8192], out[4096];
    struct nftmsg m;
    uint32_t bad = 0;
    int ns = new_netns();
    nftmsg_begin(&m, buf, sizeof(buf));
    nftmsg_table(&m, NFPROTO_INET, "t");
    nftmsg_rule_begin(&m, NFPROTO_INET, "t", "missing");
    nftmsg_verdict(&m, NF_ACCEPT, NULL);
    nftmsg_rule_end(&m);
    assert_int_equal(nftmsg_end(&m), 0);
    assert_int_equal(nftmsg_send(&m, ns, &bad), -ENOENT);
    assert_int_equal(bad, 3); /* BATCH_BEGIN 1, table 2, the rule 3 */
    char *list[] = {"nft", "list", "ruleset", NULL};
    assert_int_equal(nft_in(ns, NULL, out, sizeof(out), list), 0);
    assert_string_equal(out, "");
    close(ns);
}

/* A buffer too small for the batch: -ENOSPC before anything is sent. */
static void test_batch_no_room(void **state)
{
    (void)state;
    static char buf[4096];
    struct nftmsg m;
    struct fence_opts o = opts(true, 16);
    nftmsg_begin(&m, buf, sizeof(buf));
    assert_int_equal(fence_batch(&o, &m), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monitored_capture),
        cmocka_unit_test(test_monitored_capture_unaligned),
        cmocka_unit_test(test_monitored_no_capture),
        cmocka_unit_test(test_reject_only),
        cmocka_unit_test(test_refused_batch),
        cmocka_unit_test(test_batch_no_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
