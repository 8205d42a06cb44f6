/* cli/run_term: what `cordon run` tells the person at the terminal.
 *
 * Audit events never go to the terminal (they go to the sandbox's log).
 * This observer of the audit stream prints one short human line per denial
 * or bypass attempt (what, for which binary, the fix), at most `burst` at
 * once and then `per_minute`, and a summary at exit: counts, the most
 * denied hosts, where the log is. Lines end in "\r\n" on a terminal (the
 * command's pty puts ours in raw mode). */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/run_int.h"
#include "core/audit.h"
#include "core/loop.h"
#include "core/banned.h"

#define TERM_TOP_MAX 64   /* distinct denied host:port kept for the summary */
#define TERM_TOP_SHOWN 3

struct top_host {
    char name[300];
    unsigned long n;
};

struct run_term {
    struct run_term_opts o;
    bool tty;
    pthread_mutex_t lock;
    unsigned long allowed, denied, would_deny, bypass;
    double tokens;          /* rate limit: lines we may print now */
    uint64_t last_ms;
    unsigned long suppressed;
    struct top_host top[TERM_TOP_MAX];
    size_t n_top;
    unsigned long other_hosts;
    uint64_t t0_ms;
};

struct run_term *run_term_new(const struct run_term_opts *o)
{
    struct run_term *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->o = *o;
    if (!t->o.burst)
        t->o.burst = 5;
    if (!t->o.per_minute)
        t->o.per_minute = 30;
    t->tty = isatty(t->o.fd) == 1;
    t->tokens = t->o.burst;
    t->last_ms = t->t0_ms = loop_clock_ms();
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void run_term_counts(struct run_term *t, unsigned long out[4])
{
    pthread_mutex_lock(&t->lock);
    out[0] = t->allowed;
    out[1] = t->denied;
    out[2] = t->would_deny;
    out[3] = t->bypass;
    pthread_mutex_unlock(&t->lock);
}

void run_term_free(struct run_term *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* One write: the line and its end. */
static void put(struct run_term *t, const char *s)
{
    char buf[2100];
    int n = snprintf(buf, sizeof(buf) - 3, "%s", s);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 4)
        n = (int)(sizeof(buf) - 4);
    if (t->tty)
        buf[n++] = '\r';
    buf[n++] = '\n';
    ssize_t w;
    do {
        w = write(t->o.fd, buf, (size_t)n);
    } while (w < 0 && errno == EINTR);
}

void run_term_say(struct run_term *t, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&t->lock);
    put(t, line);
    pthread_mutex_unlock(&t->lock);
}

static const char *str(json_t *ev, const char *k)
{
    const char *s = json_string_value(json_object_get(ev, k));
    return s ? s : "";
}

static void count_host(struct run_term *t, const char *hostport)
{
    for (size_t i = 0; i < t->n_top; i++) {
        if (strcmp(t->top[i].name, hostport) == 0) {
            t->top[i].n++;
            return;
        }
    }
    if (t->n_top == TERM_TOP_MAX) {
        t->other_hosts++;
        return;
    }
    snprintf(t->top[t->n_top].name, sizeof(t->top[0].name), "%s", hostport);
    t->top[t->n_top++].n = 1;
}

/* Token bucket; called with the lock held. */
static bool may_print(struct run_term *t)
{
    uint64_t now = loop_clock_ms();
    t->tokens += (double)(now - t->last_ms) * t->o.per_minute / 60000.0;
    if (t->tokens > t->o.burst)
        t->tokens = t->o.burst;
    t->last_ms = now;
    if (t->tokens < 1.0) {
        t->suppressed++;
        return false;
    }
    t->tokens -= 1.0;
    return true;
}

void run_fix_for(json_t *ev, const char *hostport, const char *sandbox, char *out, size_t cap)
{
    const char *reason = str(ev, "reason_code"), *policy = str(ev, "policy");
    const char *binary = str(ev, "binary");
    const char *then = sandbox ? "; then `cordon policy reload --sandbox " : "";
    const char *name = sandbox ? sandbox : "";
    const char *close = sandbox ? "`" : "";
    if (strcmp(reason, "no_endpoint") == 0)
        snprintf(out, cap, "add an endpoint for %s to a network_policies entry%s%s%s", hostport,
                 then, name, close);
    else if (strcmp(reason, "binary_not_allowed") == 0)
        snprintf(out, cap, "add binary %s to network_policies.%s%s%s%s", binary[0] ? binary : "?",
                 policy[0] ? policy : "<entry>", then, name, close);
    else if (strcmp(reason, "l7_denied") == 0)
        snprintf(out, cap, "add a rule allowing %s %s to the endpoint %s in %s%s%s%s",
                 str(ev, "method"), str(ev, "path"), hostport, policy[0] ? policy : "the policy",
                 then, name, close);
    else
        snprintf(out, cap, "see `cordon policy eval` and doc/policy.md");
}

static void denial_line(struct run_term *t, json_t *ev, const char *hostport, bool would)
{
    char fix[600], line[2048];
    run_fix_for(ev, hostport, t->o.sandbox, fix, sizeof(fix));
    const char *binary = str(ev, "binary"), *detail = str(ev, "detail");
    const char *method = str(ev, "method"), *path = str(ev, "path");
    char what[700];
    if (method[0])
        snprintf(what, sizeof(what), "%s %s%s", method, hostport, path);
    else
        snprintf(what, sizeof(what), "%s", hostport);
    snprintf(line, sizeof(line), "cordon: %s %s for %s (%s%s%s) - fix: %s",
             would ? "WOULD DENY" : "DENIED", what, binary[0] ? binary : "an unknown binary",
             str(ev, "reason_code"), detail[0] ? ": " : "", detail, fix);
    put(t, line);
}

static void bypass_line(struct run_term *t, json_t *ev)
{
    char line[1024];
    const char *binary = str(ev, "binary");
    json_t *port = json_object_get(ev, "dst_port");
    char dst[160];
    if (json_is_integer(port))
        snprintf(dst, sizeof(dst), "%s:%lld/%s", str(ev, "dst_addr"),
                 (long long)json_integer_value(port), str(ev, "proto"));
    else
        snprintf(dst, sizeof(dst), "%s/%s", str(ev, "dst_addr"), str(ev, "proto"));
    snprintf(line, sizeof(line), "cordon: BYPASS refused: %s tried %s directly - %s",
             binary[0] ? binary : "an unidentified process", dst, str(ev, "hint"));
    put(t, line);
}

void run_term_observe(const char *event, json_t *ev, const char *line, size_t len, void *data)
{
    struct run_term *t = data;
    bool decision = strcmp(event, "decision") == 0, l7 = strcmp(event, "l7_request") == 0;
    bool bypass = strcmp(event, "bypass_detect") == 0;
    if (!decision && !l7 && !bypass)
        return;
    pthread_mutex_lock(&t->lock);
    if (bypass) {
        json_t *c = json_object_get(ev, "count");
        t->bypass += json_is_integer(c) ? (unsigned long)json_integer_value(c) : 1;
        if (!json_is_true(json_object_get(ev, "repeated")) && !t->o.quiet && may_print(t))
            bypass_line(t, ev);
        goto out;
    }
    const char *d = str(ev, "decision");
    bool deny = strcmp(d, "deny") == 0, would = strcmp(d, "would_deny") == 0;
    if (!deny && !would) {
        if (decision && strcmp(str(ev, "host"), "cordon.local") != 0)
            t->allowed++; /* the agent reading cordon.local is not traffic */
        goto out;
    }
    char hostport[300];
    json_t *port = json_object_get(ev, "port");
    if (json_is_integer(port))
        snprintf(hostport, sizeof(hostport), "%s:%lld", str(ev, "host"),
                 (long long)json_integer_value(port));
    else
        snprintf(hostport, sizeof(hostport), "%s", str(ev, "host"));
    if (deny) {
        t->denied++;
        count_host(t, hostport);
    } else {
        t->would_deny++;
    }
    if (t->o.quiet || !may_print(t))
        goto out;
    if (t->suppressed) {
        char more[128];
        snprintf(more, sizeof(more), "cordon: (%lu more not shown; all are in the audit log)",
                 t->suppressed);
        put(t, more);
        t->suppressed = 0;
    }
    denial_line(t, ev, hostport, would);
out:
    pthread_mutex_unlock(&t->lock);
}

static int by_count(const void *a, const void *b)
{
    const struct top_host *x = a, *y = b;
    return x->n < y->n ? 1 : x->n > y->n ? -1 : strcmp(x->name, y->name);
}

void run_term_summary(struct run_term *t, int code, const char *log_path)
{
    if (!t || t->o.quiet)
        return;
    pthread_mutex_lock(&t->lock);
    char line[1024];
    size_t n = 0;
    uint64_t ms = loop_clock_ms() - t->t0_ms;
    n += (size_t)snprintf(line + n, sizeof(line) - n,
                          "cordon: sandbox %s exited %d after %llu.%llu s: %lu allowed, %lu denied",
                          t->o.sandbox ? t->o.sandbox : "", code,
                          (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000 / 100),
                          t->allowed, t->denied);
    if (t->would_deny && n < sizeof(line))
        n += (size_t)snprintf(line + n, sizeof(line) - n, ", %lu would be denied", t->would_deny);
    if (n < sizeof(line))
        n += (size_t)snprintf(line + n, sizeof(line) - n, ", %lu bypass attempt%s", t->bypass,
                              t->bypass == 1 ? "" : "s");
    put(t, line);
    if (t->n_top) {
        qsort(t->top, t->n_top, sizeof(t->top[0]), by_count);
        n = (size_t)snprintf(line, sizeof(line), "cordon: most denied:");
        for (size_t i = 0; i < t->n_top && i < TERM_TOP_SHOWN && n < sizeof(line); i++)
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s %s (%lu)", i ? "," : "",
                                  t->top[i].name, t->top[i].n);
        put(t, line);
    }
    if (log_path) {
        snprintf(line, sizeof(line), "cordon: audit log: %s", log_path);
        put(t, line);
    }
    pthread_mutex_unlock(&t->lock);
}
