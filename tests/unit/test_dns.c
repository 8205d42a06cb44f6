/* Unit tests for proxy/dns: a resolver in a real core/loop against a tiny
 * UDP DNS responder running in a thread on 127.0.0.1 (random port). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"
#include "core/parse.h"
#include "proxy/dns.h"
#include "proxy/dnscache.h"

/* ------------------------------------------------------------------ */
/* The responder                                                        */
/* ------------------------------------------------------------------ */

#define T_A 1
#define T_AAAA 28

struct rr {
    const char *name;
    int type;
    const char *addr;
};

/* Names not listed (and not matching a rule below) get NXDOMAIN; a listed
 * name asked for a type it lacks gets NOERROR with no answers (NODATA). */
static const struct rr table[] = {
    {"one.test", T_A, "192.0.2.1"},
    {"both.test", T_AAAA, "2001:db8::2"},
    {"both.test", T_A, "192.0.2.2"},
    {"both.test", T_A, "192.0.2.3"},
    {"both.test", T_AAAA, "2001:db8::3"},
    {"v6only.test", T_AAAA, "2001:db8::6"},
    {"dup.test", T_A, "192.0.2.9"},
    {"dup.test", T_A, "192.0.2.9"},
    {"slow.test", T_A, "192.0.2.7"},
    {"noaaaa.test", T_A, "192.0.2.10"},
    {"noa.test", T_AAAA, "2001:db8::10"},
};
/* Rules: AAAA queries for "noaaaa.test" and A queries for "noa.test" are
 * dropped (never answered); "servfail.test" → SERVFAIL; "many.test" → 20 A + 4 AAAA;
 * "hN.bulk.test" → A 10.0.N/256.N%256; "slow.test" is answered after
 * 150 ms. */

struct responder {
    int fd;
    uint16_t port;
    pthread_t thr;
    atomic_int stop;
    atomic_int silent;
    atomic_int queries;
};

static size_t put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return 2;
}

static size_t put_rr(uint8_t *p, int type, const char *addr)
{
    size_t o = 0;
    o += put16(p + o, 0xC00C); /* name: pointer to the question */
    o += put16(p + o, (uint16_t)type);
    o += put16(p + o, 1); /* IN */
    o += put16(p + o, 0);
    o += put16(p + o, 60); /* TTL */
    if (type == T_A) {
        o += put16(p + o, 4);
        assert_int_equal(inet_pton(AF_INET, addr, p + o), 1);
        o += 4;
    } else {
        o += put16(p + o, 16);
        assert_int_equal(inet_pton(AF_INET6, addr, p + o), 1);
        o += 16;
    }
    return o;
}

/* Builds the answer to one query; returns its length or 0 to stay silent. */
static size_t answer(const uint8_t *q, size_t qlen, uint8_t *out, size_t cap, bool *slow)
{
    char name[256];
    size_t nl = 0, o = 12;
    *slow = false;
    if (qlen < 12 || q[4] != 0 || q[5] != 1)
        return 0;
    while (o < qlen && q[o] != 0) {
        size_t ll = q[o++];
        if (ll > 63 || o + ll > qlen || nl + ll + 1 >= sizeof(name))
            return 0;
        if (nl)
            name[nl++] = '.';
        for (size_t i = 0; i < ll; i++) {
            char c = (char)q[o + i];
            name[nl++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        o += ll;
    }
    name[nl] = '\0';
    if (o + 5 > qlen)
        return 0;
    o++; /* root label */
    int qtype = (q[o] << 8) | q[o + 1];
    size_t qend = o + 4;
    if (qend > cap)
        return 0;

    memcpy(out, q, qend);
    out[2] = (uint8_t)(0x80 | (q[2] & 0x79)); /* QR, opcode, RD */
    out[3] = 0x80;                             /* RA, rcode 0 */
    put16(out + 6, 0);
    put16(out + 8, 0);
    put16(out + 10, 0);
    size_t w = qend;
    unsigned an = 0;
    bool known = false;

    if (strcmp(name, "servfail.test") == 0) {
        out[3] |= 2;
        return w;
    }
    if (strcmp(name, "slow.test") == 0)
        *slow = true;
    if ((strcmp(name, "noaaaa.test") == 0 && qtype == T_AAAA) ||
        (strcmp(name, "noa.test") == 0 && qtype == T_A))
        return 0;
    if (strcmp(name, "many.test") == 0) {
        known = true;
        char a[64];
        for (int i = 1; i <= (qtype == T_A ? 20 : 4); i++) {
            if (qtype == T_A)
                snprintf(a, sizeof(a), "198.51.100.%d", i);
            else
                snprintf(a, sizeof(a), "2001:db8:1::%d", i);
            w += put_rr(out + w, qtype, a);
            an++;
        }
    } else if (strncmp(name, "h", 1) == 0 && strstr(name, ".bulk.test")) {
        known = true;
        unsigned n = 0;
        for (const char *p = name + 1; *p >= '0' && *p <= '9'; p++)
            n = n * 10 + (unsigned)(*p - '0');
        if (qtype == T_A) {
            char a[64];
            snprintf(a, sizeof(a), "10.0.%u.%u", (n >> 8) & 255, n & 255);
            w += put_rr(out + w, T_A, a);
            an++;
        }
    } else {
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
            if (strcmp(table[i].name, name) != 0)
                continue;
            known = true;
            if (table[i].type == qtype) {
                w += put_rr(out + w, qtype, table[i].addr);
                an++;
            }
        }
    }
    if (!known)
        out[3] |= 3; /* NXDOMAIN */
    put16(out + 6, (uint16_t)an);
    return w;
}

static void *responder_main(void *arg)
{
    struct responder *s = arg;
    uint8_t q[1500], a[1500];
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(s->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
        if (n <= 0)
            continue;
        atomic_fetch_add(&s->queries, 1);
        if (atomic_load(&s->silent))
            continue;
        bool slow;
        size_t al = answer(q, (size_t)n, a, sizeof(a), &slow);
        if (slow)
            usleep(150 * 1000);
        if (al)
            sendto(s->fd, a, al, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

static void responder_start(struct responder *s)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);
    memset(s, 0, sizeof(*s));
    s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sin, &sl), 0);
    s->port = ntohs(sin.sin_port);
    assert_int_equal(pthread_create(&s->thr, NULL, responder_main, s), 0);
}

static void responder_stop(struct responder *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thr, NULL);
    close(s->fd);
}

/* ------------------------------------------------------------------ */
/* Fixture and helpers                                                  */
/* ------------------------------------------------------------------ */

struct fx {
    struct responder srv;
    struct loop *l;
    struct dns_resolver *r;
    struct loop_timer guard;
    bool guard_fired;
    int pending;
};

struct got {
    struct fx *f;
    int calls;
    struct dns_result res;
    uint64_t at_ms;
};

static struct dns_resolver *new_resolver(struct fx *f, uint32_t timeout_ms)
{
    char server[64];
    snprintf(server, sizeof(server), "127.0.0.1:%u", f->srv.port);
    struct dns_resolver *r = dns_resolver_new(f->l, server, timeout_ms);
    assert_non_null(r);
    return r;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    responder_start(&f->srv);
    f->l = loop_new(4096);
    assert_non_null(f->l);
    f->r = new_resolver(f, 2000);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    dns_resolver_free(f->r);
    loop_free(f->l);
    responder_stop(&f->srv);
    free(f);
    return 0;
}

static void guard_cb(struct loop *l, struct loop_timer *t)
{
    struct fx *f = t->data;
    f->guard_fired = true;
    loop_stop(l);
}

/* Runs the loop until every pending callback arrived or ms passed. A loop
 * can be run once (loop_stop is final), so each test runs it once. */
static void run(struct fx *f, uint64_t ms)
{
    f->guard.cb = guard_cb;
    f->guard.data = f;
    assert_int_equal(loop_timer_start(f->l, &f->guard, ms), 0);
    assert_int_equal(loop_run(f->l), 0);
    loop_timer_stop(f->l, &f->guard);
}

static void on_result(struct dns_result *res, void *data)
{
    struct got *g = data;
    g->calls++;
    g->res = *res;
    g->at_ms = loop_clock_ms();
    if (--g->f->pending == 0)
        loop_stop(g->f->l);
}

static const char *ip(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    return sockaddr_ip_str((const struct sockaddr *)ss, buf, cap);
}

static struct dns_query *resolve(struct fx *f, const char *host, uint16_t port, struct got *g)
{
    memset(g, 0, sizeof(*g));
    g->f = f;
    struct dns_query *q = dns_resolve(f->r, host, port, on_result, g);
    assert_non_null(q);
    f->pending++;
    return q;
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

static void test_a_record_with_port(void **state)
{
    struct fx *f = *state;
    struct got g;
    char b[64];
    resolve(f, "one.test", 8443, &g);
    run(f, 3000);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.res.status, 0);
    assert_null(g.res.error);
    assert_int_equal(g.res.n, 1);
    assert_int_equal(g.res.addrs[0].ss_family, AF_INET);
    assert_string_equal(ip(&g.res.addrs[0], b, sizeof(b)), "192.0.2.1");
    assert_int_equal(sockaddr_port((struct sockaddr *)&g.res.addrs[0]), 8443);
}

static void test_a_and_aaaa_ipv4_first(void **state)
{
    struct fx *f = *state;
    struct got g, g6;
    char b[64];
    resolve(f, "Both.Test.", 443, &g); /* case and trailing dot are fine */
    resolve(f, "v6only.test", 80, &g6);
    run(f, 3000);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.res.status, 0);
    assert_int_equal(g.res.n, 4);
    assert_int_equal(g.res.addrs[0].ss_family, AF_INET);
    assert_int_equal(g.res.addrs[1].ss_family, AF_INET);
    assert_int_equal(g.res.addrs[2].ss_family, AF_INET6);
    assert_int_equal(g.res.addrs[3].ss_family, AF_INET6);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(sockaddr_port((struct sockaddr *)&g.res.addrs[i]), 443);
    const char *a0 = ip(&g.res.addrs[0], b, sizeof(b));
    assert_true(strcmp(a0, "192.0.2.2") == 0 || strcmp(a0, "192.0.2.3") == 0);
    const char *a2 = ip(&g.res.addrs[2], b, sizeof(b));
    assert_true(strcmp(a2, "2001:db8::2") == 0 || strcmp(a2, "2001:db8::3") == 0);

    assert_int_equal(g6.calls, 1);
    assert_int_equal(g6.res.status, 0);
    assert_int_equal(g6.res.n, 1);
    assert_int_equal(g6.res.addrs[0].ss_family, AF_INET6);
    assert_string_equal(ip(&g6.res.addrs[0], b, sizeof(b)), "2001:db8::6");
    assert_int_equal(sockaddr_port((struct sockaddr *)&g6.res.addrs[0]), 80);
}

static void test_cap_and_dedup(void **state)
{
    struct fx *f = *state;
    struct got g, gd;
    resolve(f, "many.test", 1, &g);
    resolve(f, "dup.test", 1, &gd);
    run(f, 3000);
    assert_int_equal(g.res.status, 0);
    assert_int_equal(g.res.n, DNS_MAX_ADDRS);
    size_t n4 = 0, n6 = 0;
    for (size_t i = 0; i < g.res.n; i++) {
        if (g.res.addrs[i].ss_family == AF_INET) {
            assert_int_equal(n6, 0); /* all IPv4 before any IPv6 */
            n4++;
        } else {
            n6++;
        }
    }
    assert_int_equal(n4, 12);
    assert_int_equal(n6, 4);
    assert_int_equal(gd.res.status, 0);
    assert_int_equal(gd.res.n, 1);
}

static void test_one_family_dropped(void **state)
{
    /* A resolver that never answers one family: the other family's answer
     * comes back after the short grace, not as a timeout. */
    struct fx *f = *state;
    struct got g4, g6;
    char b[64];
    uint64_t t0 = loop_clock_ms();
    resolve(f, "noaaaa.test", 443, &g4);
    resolve(f, "noa.test", 443, &g6);
    run(f, 3000);
    assert_int_equal(g4.calls, 1);
    assert_int_equal(g4.res.status, 0);
    assert_int_equal(g4.res.n, 1);
    assert_string_equal(ip(&g4.res.addrs[0], b, sizeof(b)), "192.0.2.10");
    assert_int_equal(g6.calls, 1);
    assert_int_equal(g6.res.status, 0);
    assert_int_equal(g6.res.n, 1);
    assert_string_equal(ip(&g6.res.addrs[0], b, sizeof(b)), "2001:db8::10");
    /* resolver timeout is 2000 ms; the grace is 50 ms */
    assert_true(g4.at_ms - t0 < 500);
    assert_true(g6.at_ms - t0 < 500);
}

static void test_nxdomain_is_enoent(void **state)
{
    struct fx *f = *state;
    struct got g, gl, gs;
    resolve(f, "nope.test", 80, &g);
    resolve(f, "api.LOCALHOST.", 80, &gs);
    /* with an explicit server there is no /etc/hosts: localhost is not found */
    resolve(f, "localhost", 80, &gl);
    run(f, 3000);
    assert_int_equal(gl.calls, 1);
    assert_int_equal(gl.res.status, -ENOENT);
    assert_int_equal(gs.res.status, -ENOENT);
    assert_int_equal(atomic_load(&f->srv.queries), 2); /* nope.test: A + AAAA only */
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.res.status, -ENOENT);
    assert_int_equal(g.res.n, 0);
    assert_non_null(g.res.error);
    assert_string_equal(g.res.error, "name not found");
}

static void test_servfail_is_eio(void **state)
{
    struct fx *f = *state;
    struct got g;
    resolve(f, "servfail.test", 80, &g);
    run(f, 3000);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.res.status, -EIO);
    assert_non_null(g.res.error);
    assert_non_null(strstr(g.res.error, "SERVFAIL"));
}

static void test_silent_server_times_out(void **state)
{
    struct fx *f = *state;
    struct got g;
    dns_resolver_free(f->r);
    f->r = new_resolver(f, 300);
    atomic_store(&f->srv.silent, 1);
    uint64_t t0 = loop_clock_ms();
    resolve(f, "one.test", 80, &g);
    run(f, 3000);
    assert_false(f->guard_fired);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.res.status, -ETIMEDOUT);
    assert_non_null(g.res.error);
    uint64_t took = g.at_ms - t0;
    assert_true(took >= 290);
    assert_true(took < 900);
    /* retransmitted within the bound */
    assert_true(atomic_load(&f->srv.queries) >= 2);
}

static void test_timed_out_query_released_by_cares(void **state)
{
    /* After our bound fires, c-ares keeps the query until its own tries end;
     * the object must then be freed without a second callback (ASan checks
     * the freeing). Per try 50 ms x 3 tries with backoff: done by ~350 ms. */
    struct fx *f = *state;
    struct got g;
    dns_resolver_free(f->r);
    f->r = new_resolver(f, 100);
    atomic_store(&f->srv.silent, 1);
    resolve(f, "one.test", 80, &g);
    f->pending++; /* never reaches 0: run the full second */
    run(f, 1000);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.res.status, -ETIMEDOUT);
}

static void test_ip_literals_no_traffic(void **state)
{
    struct fx *f = *state;
    struct got g4, g6, gb, gm;
    char b[64];
    resolve(f, "203.0.113.5", 443, &g4);
    resolve(f, "2001:db8::1", 80, &g6);
    resolve(f, "[2001:db8::abcd]", 8080, &gb);
    resolve(f, "::ffff:127.0.0.1", 22, &gm);
    /* never inside dns_resolve */
    assert_int_equal(g4.calls + g6.calls + gb.calls + gm.calls, 0);
    run(f, 3000);
    assert_int_equal(g4.calls, 1);
    assert_int_equal(g4.res.status, 0);
    assert_int_equal(g4.res.n, 1);
    assert_string_equal(ip(&g4.res.addrs[0], b, sizeof(b)), "203.0.113.5");
    assert_int_equal(sockaddr_port((struct sockaddr *)&g4.res.addrs[0]), 443);
    assert_int_equal(g6.res.addrs[0].ss_family, AF_INET6);
    assert_string_equal(ip(&g6.res.addrs[0], b, sizeof(b)), "2001:db8::1");
    assert_int_equal(sockaddr_port((struct sockaddr *)&g6.res.addrs[0]), 80);
    assert_int_equal(gb.res.n, 1);
    assert_string_equal(ip(&gb.res.addrs[0], b, sizeof(b)), "2001:db8::abcd");
    assert_int_equal(sockaddr_port((struct sockaddr *)&gb.res.addrs[0]), 8080);
    assert_int_equal(gm.res.addrs[0].ss_family, AF_INET6);
    assert_int_equal(atomic_load(&f->srv.queries), 0);
}

static void test_invalid_hosts_rejected(void **state)
{
    struct fx *f = *state;
    static const char *bad[] = {
        "", "[1.2.3.4]", "[::1", "fe80::1%eth0", "127.1", "0x7f.0.0.1", "010.1",
        "a..b", ".a", "a b", "a/b", "evil\r\nhost", "[]", "1.2.3.4:80",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test", /* 64 */
    };
    int dummy = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_null(dns_resolve(f->r, bad[i], 80, on_result, &dummy));
        assert_int_equal(errno, EINVAL);
    }
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    for (size_t i = 60; i < sizeof(longname) - 1; i += 61)
        longname[i] = '.';
    longname[sizeof(longname) - 1] = '\0';
    assert_null(dns_resolve(f->r, longname, 80, on_result, &dummy));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(atomic_load(&f->srv.queries), 0);
}

static void test_bad_server_rejected(void **state)
{
    struct fx *f = *state;
    static const char *bad[] = {"127.0.0.1", "127.0.0.1:0", "localhost:53", "[::1]53",
                                "1.2.3.4:99999", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_null(dns_resolver_new(f->l, bad[i], 1000));
        assert_int_equal(errno, EINVAL);
    }
    struct dns_resolver *r6 = dns_resolver_new(f->l, "[::1]:53", 1000);
    assert_non_null(r6);
    dns_resolver_free(r6);
    struct dns_resolver *sys = dns_resolver_new(f->l, NULL, 0);
    assert_non_null(sys);
    dns_resolver_free(sys);
}

static void test_cancel_no_callback(void **state)
{
    struct fx *f = *state;
    struct got gs, gl, go;
    /* in flight at the server (answered after 150 ms) */
    struct dns_query *qs = resolve(f, "slow.test", 80, &gs);
    /* a literal waiting on the deferred list */
    struct dns_query *ql = resolve(f, "192.0.2.200", 80, &gl);
    dns_cancel(qs);
    dns_cancel(ql);
    dns_cancel(NULL);
    f->pending -= 2;
    /* the resolver keeps working for others */
    resolve(f, "one.test", 80, &go);
    f->pending++; /* keep running past the slow answer */
    run(f, 600);
    assert_int_equal(gs.calls, 0);
    assert_int_equal(gl.calls, 0);
    assert_int_equal(go.calls, 1);
    assert_int_equal(go.res.status, 0);
    assert_true(atomic_load(&f->srv.queries) >= 2);
}

static void test_free_with_queries_outstanding(void **state)
{
    struct fx *f = *state;
    struct got g1, g2;
    resolve(f, "slow.test", 80, &g1);
    resolve(f, "one.test", 80, &g2);
    /* freed before the loop ever ran: no callbacks, nothing leaks */
    dns_resolver_free(f->r);
    f->r = NULL;
    assert_int_equal(g1.calls + g2.calls, 0);
}

#define BULK 300

static void test_many_concurrent(void **state)
{
    struct fx *f = *state;
    static struct got g[BULK];
    char name[64], want[64], b[64];
    for (int i = 0; i < BULK; i++) {
        if (i % 10 == 9)
            snprintf(name, sizeof(name), "missing%d.test", i);
        else
            snprintf(name, sizeof(name), "h%d.bulk.test", i);
        resolve(f, name, (uint16_t)(1000 + i), &g[i]);
    }
    run(f, 5000);
    assert_false(f->guard_fired);
    for (int i = 0; i < BULK; i++) {
        assert_int_equal(g[i].calls, 1);
        if (i % 10 == 9) {
            assert_int_equal(g[i].res.status, -ENOENT);
            continue;
        }
        assert_int_equal(g[i].res.status, 0);
        assert_int_equal(g[i].res.n, 1);
        snprintf(want, sizeof(want), "10.0.%d.%d", (i >> 8) & 255, i & 255);
        assert_string_equal(ip(&g[i].res.addrs[0], b, sizeof(b)), want);
        assert_int_equal(sockaddr_port((struct sockaddr *)&g[i].res.addrs[0]), 1000 + i);
    }
}

/* A callback may start the next query (the proxy retries, follows up). */
struct chain {
    struct fx *f;
    int left;
    int ok;
};

static void on_chain(struct dns_result *res, void *data)
{
    struct chain *c = data;
    if (res->status == 0)
        c->ok++;
    if (--c->left == 0) {
        loop_stop(c->f->l);
        return;
    }
    const char *next = (c->left % 2) ? "one.test" : "198.51.100.77";
    assert_non_null(dns_resolve(c->f->r, next, 80, on_chain, c));
}

static void test_resolve_from_callback(void **state)
{
    struct fx *f = *state;
    struct chain c = {.f = f, .left = 6};
    assert_non_null(dns_resolve(f->r, "one.test", 80, on_chain, &c));
    run(f, 3000);
    assert_int_equal(c.left, 0);
    assert_int_equal(c.ok, 6);
}

/* The answer cache: names asked one after another (each from the previous
 * one's callback), with the responder's query count after each answer. */
#define SEQ_MAX 8
struct seq {
    struct fx *f;
    const char *names[SEQ_MAX];
    int n, at;
    struct dns_result res[SEQ_MAX];
    int queries[SEQ_MAX];
};

static void on_seq(struct dns_result *res, void *data)
{
    struct seq *s = data;
    s->res[s->at] = *res;
    s->queries[s->at] = atomic_load(&s->f->srv.queries);
    if (++s->at == s->n) {
        loop_stop(s->f->l);
        return;
    }
    assert_non_null(dns_resolve(s->f->r, s->names[s->at], 80, on_seq, s));
}

static void run_seq(struct fx *f, struct seq *s)
{
    s->f = f;
    assert_non_null(dns_resolve(f->r, s->names[0], 80, on_seq, s));
    run(f, 8000);
    assert_int_equal(s->at, s->n);
}

static void test_cache_answers_without_traffic(void **state)
{
    struct fx *f = *state;
    static struct seq s = {.n = 7, .names = {"one.test", "ONE.test.", "nx1.test", "nx1.test",
                                             "servfail.test", "servfail.test", "one.test"}};
    char b[64];
    assert_int_equal(dns_resolver_set_cache(f->r, 60, 0), 0);
    run_seq(f, &s);
    assert_int_equal(s.res[0].status, 0);
    assert_true(s.queries[0] >= 2);                 /* A and AAAA asked */
    /* the same name again (any case, trailing dot): from the cache */
    assert_int_equal(s.queries[1], s.queries[0]);
    assert_int_equal(s.res[1].status, 0);
    assert_int_equal(s.res[1].n, 1);
    assert_string_equal(ip(&s.res[1].addrs[0], b, sizeof(b)), "192.0.2.1");
    assert_int_equal(sockaddr_port((struct sockaddr *)&s.res[1].addrs[0]), 80);
    /* NXDOMAIN: asked once, then answered from the cache */
    assert_true(s.queries[2] > s.queries[1]);
    assert_int_equal(s.res[2].status, -ENOENT);
    assert_int_equal(s.queries[3], s.queries[2]);
    assert_int_equal(s.res[3].status, -ENOENT);
    assert_non_null(s.res[3].error);
    /* a server failure is never kept */
    assert_int_equal(s.res[4].status, -EIO);
    assert_int_equal(s.res[5].status, -EIO);
    assert_true(s.queries[5] > s.queries[4]);
    assert_int_equal(s.queries[6], s.queries[5]);
    struct dnscache_stats st;
    dns_resolver_cache_stats(f->r, &st);
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.size, 2);
}

static void test_cache_off_asks_every_time(void **state)
{
    struct fx *f = *state;
    static struct seq s = {.n = 3, .names = {"one.test", "one.test", "nx1.test"}};
    assert_int_equal(dns_resolver_set_cache(f->r, 60, 0), 0);
    assert_int_equal(dns_resolver_set_cache(f->r, 0, 0), 0); /* 0 turns it off */
    run_seq(f, &s);
    assert_true(s.queries[1] >= s.queries[0] + 2);
    assert_int_equal(s.res[1].status, 0);
    struct dnscache_stats st;
    dns_resolver_cache_stats(f->r, &st);
    assert_int_equal(st.hits + st.size, 0);
}

/* No descriptor for a resolver socket: the query fails as -EMFILE (the
 * proxy answers a retryable 503), not as a DNS failure. */
static void test_no_descriptor_is_emfile(void **state)
{
    struct fx *f = *state;
    struct got g;
    struct rlimit old, low;
    static int held[512];
    int nheld = 0;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 128;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    for (;;) {
        int fd = dup(0);
        if (fd < 0) {
            assert_int_equal(errno, EMFILE);
            break;
        }
        assert_true(nheld < (int)(sizeof(held) / sizeof(held[0])));
        held[nheld++] = fd;
    }
    resolve(f, "one.test", 80, &g);
    run(f, 4000);
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.res.status, -EMFILE);
    assert_non_null(strstr(g.res.error, "file descriptors"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_record_with_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_and_aaaa_ipv4_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_and_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_family_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nxdomain_is_enoent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_servfail_is_eio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_server_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timed_out_query_released_by_cares, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ip_literals_no_traffic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_hosts_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_server_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_no_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_queries_outstanding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_answers_without_traffic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_off_asks_every_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_descriptor_is_emfile, setup, teardown),
    };
    return cmocka_run_group_tests_name("proxy/dns", tests, NULL, NULL);
}
