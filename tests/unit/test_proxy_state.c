/* Unit tests for proxy/state: the connection state table — each state's
 * legal transitions and its timer, written out here independently of the
 * table; illegal transitions are caught (abort under sanitizers, a named
 * close reason otherwise) without touching the state; and doc/proxy.md's
 * state table says the same thing as the code, row for row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxy/internal.h"

#define B(s) (1u << (s))

struct expect {
    enum conn_state s;
    const char *name;
    enum conn_timer timer;
    uint32_t next; /* besides CLOSED */
};

static const struct expect want[] = {
    {CONN_REQ_HEAD, "REQ_HEAD", CONN_TIMER_HEAD,
     B(CONN_IDENTIFY) | B(CONN_DECIDE) | B(CONN_RESPONDING) | B(CONN_INFER) | B(CONN_PEEK) |
         B(CONN_REQ_HEAD)},
    {CONN_IDENTIFY, "IDENTIFY", CONN_TIMER_NONE,
     B(CONN_DECIDE) | B(CONN_RESPONDING) | B(CONN_INFER) | B(CONN_PEEK)},
    {CONN_DECIDE, "DECIDE", CONN_TIMER_NONE,
     B(CONN_RESOLVE) | B(CONN_EXCHANGE) | B(CONN_REQ_BODY) | B(CONN_RESPONDING)},
    {CONN_REQ_BODY, "REQ_BODY", CONN_TIMER_HEAD,
     B(CONN_RESOLVE) | B(CONN_EXCHANGE) | B(CONN_RESPONDING)},
    {CONN_RESOLVE, "RESOLVE", CONN_TIMER_NONE, B(CONN_CONNECT) | B(CONN_RESPONDING)},
    {CONN_CONNECT, "CONNECT", CONN_TIMER_CONNECT,
     B(CONN_CONNECT) | B(CONN_TUNNEL) | B(CONN_PEEK) | B(CONN_TLS_CONNECT) | B(CONN_EXCHANGE) |
         B(CONN_RESPONDING)},
    {CONN_PEEK, "PEEK", CONN_TIMER_HEAD, B(CONN_TLS_ACCEPT) | B(CONN_REQ_HEAD)},
    {CONN_TLS_ACCEPT, "TLS_ACCEPT", CONN_TIMER_HEAD, B(CONN_TLS_CONNECT) | B(CONN_REQ_HEAD)},
    {CONN_TLS_CONNECT, "TLS_CONNECT", CONN_TIMER_CONNECT,
     B(CONN_REQ_HEAD) | B(CONN_EXCHANGE) | B(CONN_RESPONDING)},
    {CONN_EXCHANGE, "EXCHANGE", CONN_TIMER_IDLE, B(CONN_KEEPALIVE) | B(CONN_TUNNEL) | B(CONN_RESPONDING)},
    {CONN_TUNNEL, "TUNNEL", CONN_TIMER_IDLE, B(CONN_RESPONDING)},
    {CONN_RESPONDING, "RESPONDING", CONN_TIMER_HEAD, B(CONN_KEEPALIVE)},
    {CONN_KEEPALIVE, "KEEPALIVE", CONN_TIMER_KEEPALIVE, B(CONN_REQ_HEAD)},
    {CONN_INFER, "INFER", CONN_TIMER_HEAD, B(CONN_RESOLVE) | B(CONN_EXCHANGE) | B(CONN_RESPONDING)},
    {CONN_CLOSED, "CLOSED", CONN_TIMER_NONE, 0},
};

static void test_every_state_is_listed_once(void **st)
{
    (void)st;
    assert_int_equal(sizeof(want) / sizeof(want[0]), CONN_N_STATES);
    for (int i = 0; i < CONN_N_STATES; i++) {
        assert_int_equal(want[i].s, i);
        assert_string_equal(conn_state_name(want[i].s), want[i].name);
        for (int j = 0; j < i; j++)
            assert_true(strcmp(conn_state_name(want[i].s), conn_state_name(want[j].s)) != 0);
    }
    assert_string_equal(conn_state_name((enum conn_state)CONN_N_STATES), "?");
}

static void test_legal_transitions(void **st)
{
    (void)st;
    for (int i = 0; i < CONN_N_STATES; i++) {
        for (int j = 0; j < CONN_N_STATES; j++) {
            bool expect = want[i].s != CONN_CLOSED &&
                          (j == CONN_CLOSED || (want[i].next & B(j)) != 0);
            if (conn_state_allows(want[i].s, (enum conn_state)j) != expect)
                fail_msg("%s -> %s: table says %d, expected %d", want[i].name,
                         conn_state_name((enum conn_state)j), !expect, expect);
        }
    }
    /* out of range is never allowed */
    assert_false(conn_state_allows(CONN_REQ_HEAD, (enum conn_state)CONN_N_STATES));
    assert_false(conn_state_allows((enum conn_state)CONN_N_STATES, CONN_CLOSED));
}

static void test_timers(void **st)
{
    (void)st;
    for (int i = 0; i < CONN_N_STATES; i++)
        if (conn_state_timer(want[i].s) != want[i].timer)
            fail_msg("%s: timer %d, expected %d", want[i].name, conn_state_timer(want[i].s),
                     want[i].timer);
}

/* The pipeline's spine is legal end to end, and nothing leaves CLOSED. */
static void test_pipeline_paths(void **st)
{
    (void)st;
    static const enum conn_state tunnel[] = {CONN_REQ_HEAD, CONN_IDENTIFY, CONN_DECIDE,
                                             CONN_RESOLVE, CONN_CONNECT, CONN_TUNNEL, CONN_CLOSED};
    static const enum conn_state inspected[] = {
        CONN_REQ_HEAD, CONN_IDENTIFY, CONN_DECIDE, CONN_RESOLVE, CONN_CONNECT, CONN_PEEK,
        CONN_TLS_ACCEPT, CONN_TLS_CONNECT, CONN_REQ_HEAD, CONN_DECIDE, CONN_EXCHANGE,
        CONN_KEEPALIVE, CONN_REQ_HEAD, CONN_DECIDE, CONN_RESPONDING, CONN_KEEPALIVE,
        CONN_REQ_HEAD, CONN_DECIDE, CONN_EXCHANGE, CONN_TUNNEL, CONN_CLOSED};
    /* inference.local: CONNECT, TLS or plaintext inside, requests routed per request */
    static const enum conn_state infer[] = {
        CONN_REQ_HEAD, CONN_IDENTIFY, CONN_PEEK, CONN_TLS_ACCEPT, CONN_REQ_HEAD, CONN_INFER,
        CONN_RESOLVE, CONN_CONNECT, CONN_TLS_CONNECT, CONN_EXCHANGE, CONN_KEEPALIVE, CONN_REQ_HEAD,
        CONN_INFER, CONN_EXCHANGE, CONN_RESPONDING, CONN_KEEPALIVE, CONN_REQ_HEAD, CONN_INFER,
        CONN_RESPONDING, CONN_CLOSED};
    for (size_t i = 1; i < sizeof(infer) / sizeof(infer[0]); i++)
        assert_true(conn_state_allows(infer[i - 1], infer[i]));
    for (size_t i = 1; i < sizeof(tunnel) / sizeof(tunnel[0]); i++)
        assert_true(conn_state_allows(tunnel[i - 1], tunnel[i]));
    for (size_t i = 1; i < sizeof(inspected) / sizeof(inspected[0]); i++)
        assert_true(conn_state_allows(inspected[i - 1], inspected[i]));
    for (int j = 0; j < CONN_N_STATES; j++)
        assert_false(conn_state_allows(CONN_CLOSED, (enum conn_state)j));
    /* a denial never skips the decision: REQ_HEAD cannot reach the upstream */
    assert_false(conn_state_allows(CONN_REQ_HEAD, CONN_RESOLVE));
    assert_false(conn_state_allows(CONN_REQ_HEAD, CONN_EXCHANGE));
    assert_false(conn_state_allows(CONN_IDENTIFY, CONN_RESOLVE));
    assert_false(conn_state_allows(CONN_KEEPALIVE, CONN_EXCHANGE));
    /* a body the L7 decision needs is read after DECIDE, before any upstream */
    static const enum conn_state body[] = {CONN_REQ_HEAD, CONN_DECIDE, CONN_REQ_BODY,
                                           CONN_EXCHANGE, CONN_KEEPALIVE};
    for (size_t i = 1; i < sizeof(body) / sizeof(body[0]); i++)
        assert_true(conn_state_allows(body[i - 1], body[i]));
    assert_false(conn_state_allows(CONN_REQ_HEAD, CONN_REQ_BODY));
    assert_false(conn_state_allows(CONN_REQ_BODY, CONN_TUNNEL));
}

/* conn_go on an illegal transition: the state is untouched and the step is
 * CLOSE with the named reason; sanitizer builds abort instead. Run in a
 * child so the abort can be observed. */
static void test_illegal_transition_is_caught(void **st)
{
    (void)st;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct conn *c = calloc(1, sizeof(*c));
        if (!c)
            _exit(2);
        c->id = 7;
        /* calloc: REQ_HEAD; REQ_HEAD -> TUNNEL would skip the decision */
        enum conn_step s = conn_go(c, CONN_TUNNEL);
        if (s != CONN_STEP_CLOSE)
            _exit(3);
        if (c->state != CONN_REQ_HEAD)
            _exit(4);
        if (c->close_reason != PROXY_REASON_ILLEGAL_TRANSITION)
            _exit(5);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
#if defined(__SANITIZE_ADDRESS__)
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
#else
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child: status %d", status);
#endif
}

static int timer_of(const char *s, enum conn_timer *out)
{
    static const struct { const char *n; enum conn_timer t; } m[] = {
        {"none", CONN_TIMER_NONE}, {"head", CONN_TIMER_HEAD}, {"connect", CONN_TIMER_CONNECT},
        {"idle", CONN_TIMER_IDLE}, {"keepalive", CONN_TIMER_KEEPALIVE}};
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if (strcmp(m[i].n, s) == 0) {
            *out = m[i].t;
            return 0;
        }
    return -1;
}

static int state_of(const char *s, enum conn_state *out)
{
    for (int i = 0; i < CONN_N_STATES; i++)
        if (strcmp(conn_state_name((enum conn_state)i), s) == 0) {
            *out = (enum conn_state)i;
            return 0;
        }
    return -1;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n'))
        s[--n] = '\0';
    size_t k = 0;
    while (s[k] == ' ')
        k++;
    memmove(s, s + k, strlen(s + k) + 1);
}

/* doc/proxy.md: "| STATE | entry action | timer | next, next |" rows. */
static void test_doc_table_matches(void **st)
{
    (void)st;
    FILE *f = fopen("doc/proxy.md", "r");
    if (!f)
        fail_msg("doc/proxy.md not found (run from the repository root)");
    char line[1024];
    bool seen[CONN_N_STATES] = {false};
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "| ", 2) != 0)
            continue;
        char *cells[5] = {0};
        int n = 0;
        char *save = NULL;
        for (char *t = strtok_r(line + 1, "|", &save); t && n < 5; t = strtok_r(NULL, "|", &save))
            cells[n++] = t;
        if (n < 3)
            continue;
        for (int i = 0; i < n; i++)
            trim(cells[i]);
        enum conn_state s = CONN_CLOSED;
        if (state_of(cells[0], &s) < 0)
            continue;
        if (seen[s])
            fail_msg("doc/proxy.md lists %s twice", cells[0]);
        seen[s] = true;
        enum conn_timer t = CONN_TIMER_NONE;
        if (timer_of(cells[2], &t) < 0 || t != conn_state_timer(s))
            fail_msg("doc/proxy.md: %s timer '%s' does not match the code", cells[0], cells[2]);
        uint32_t next = 0;
        char *save2 = NULL;
        for (char *x = n > 3 ? strtok_r(cells[3], ",", &save2) : NULL; x; x = strtok_r(NULL, ",", &save2)) {
            trim(x);
            enum conn_state to = CONN_CLOSED;
            if (!x[0])
                continue;
            if (state_of(x, &to) < 0)
                fail_msg("doc/proxy.md: %s lists unknown state '%s'", cells[0], x);
            next |= B(to);
        }
        for (int j = 0; j < CONN_N_STATES; j++) {
            if (j == CONN_CLOSED)
                continue;
            bool doc = (next & B(j)) != 0;
            if (doc != conn_state_allows(s, (enum conn_state)j))
                fail_msg("doc/proxy.md: %s -> %s documented %d, code %d", cells[0],
                         conn_state_name((enum conn_state)j), doc, !doc);
        }
    }
    fclose(f);
    for (int i = 0; i < CONN_N_STATES; i++)
        if (!seen[i])
            fail_msg("doc/proxy.md's state table lacks %s", conn_state_name((enum conn_state)i));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_state_is_listed_once),
        cmocka_unit_test(test_legal_transitions),
        cmocka_unit_test(test_timers),
        cmocka_unit_test(test_pipeline_paths),
        cmocka_unit_test(test_illegal_transition_is_caught),
        cmocka_unit_test(test_doc_table_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
