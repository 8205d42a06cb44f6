/* Unit tests for proxy/localaddr: the host's own addresses, kept current.
 * Runs in a network namespace of its own (needs root, as the suite does). */
#include <arpa/inet.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "proxy/localaddr.h"

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    return ss;
}

static bool has(struct localaddr *la, const char *ip)
{
    struct sockaddr_storage ss = strchr(ip, ':') ? v6(ip) : v4(ip);
    return localaddr_contains(la, (struct sockaddr *)&ss, NULL);
}

/* Waits (bounded) for the watcher to see a change the test made. */
static bool eventually(struct localaddr *la, const char *ip, bool want)
{
    for (int i = 0; i < 1000; i++) {
        if (has(la, ip) == want)
            return true;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void test_tracks_addresses(void **st)
{
    (void)st;
    struct localaddr *la = NULL;
    if (unshare(CLONE_NEWNET) < 0)
        skip();
    assert_int_equal(system("ip link set lo up"), 0);
    assert_int_equal(localaddr_start(&la), 0);
    assert_true(eventually(la, "127.0.0.1", true));
    assert_false(has(la, "10.99.1.1"));
    assert_false(has(la, "8.8.8.8"));

    /* added after start: the watcher picks it up */
    assert_int_equal(system("ip link add cdlatest type veth peer name cdlapeer && ip link set cdlatest up && "
                            "ip addr add 10.99.1.1/24 dev cdlatest && "
                            "ip addr add fd00:99::1/64 dev cdlatest nodad"), 0);
    assert_true(eventually(la, "10.99.1.1", true));
    assert_true(eventually(la, "fd00:99::1", true));
    char ifname[16] = "";
    struct sockaddr_storage ss = v4("10.99.1.1");
    assert_true(localaddr_contains(la, (struct sockaddr *)&ss, ifname));
    assert_string_equal(ifname, "cdlatest");
    /* IPv4-mapped IPv6 is judged as its IPv4 address */
    assert_true(has(la, "::ffff:10.99.1.1"));
    assert_false(has(la, "10.99.1.2"));

    /* removed: gone from the set */
    assert_int_equal(system("ip addr del 10.99.1.1/24 dev cdlatest"), 0);
    assert_true(eventually(la, "10.99.1.1", false));
    assert_true(localaddr_count(la) >= 2);
    localaddr_stop(la);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tracks_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
