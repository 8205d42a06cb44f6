/* cli/run_local: what http://cordon.local/ tells the agent inside the
 * sandbox (served by the proxy, proxy/local.c; content from here).
 *
 *   /denials  the last RUN_LOCAL_KEEP denials and bypass attempts, each with
 *             reason, detail and the fix (the entry that would allow it);
 *             JSON when Accept names application/json, else one text line
 *             each, newest last.
 *   /policy   the policy file in force (its current text) and generation.
 *   /status   what is enforced: fence mode, Landlock ABI, seccomp, the
 *             policy generation (JSON).
 * The agent sees its own sandbox's denials only (one run_local per sandbox). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/run_int.h"
#include "proxy/proxy.h"
#include "core/banned.h"

#define RUN_LOCAL_KEEP 64
#define RUN_LOCAL_POLICY_MAX (1u << 20)

struct run_local {
    pthread_mutex_t lock;
    const char *sandbox;
    const char *policy_path;
    const unsigned *generation;
    json_t *ring[RUN_LOCAL_KEEP]; /* oldest at head */
    size_t head, n;
    unsigned long total;
    json_t *start;               /* sandbox_start's enforcement facts */
    json_t *selftest;            /* the self_test event */
};

struct run_local *run_local_new(const char *sandbox, const char *policy_path,
                                const unsigned *generation)
{
    struct run_local *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    pthread_mutex_init(&l->lock, NULL);
    l->sandbox = sandbox;
    l->policy_path = policy_path;
    l->generation = generation;
    return l;
}

void run_local_free(struct run_local *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->ring[(l->head + i) % RUN_LOCAL_KEEP]);
    json_decref(l->start);
    json_decref(l->selftest);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static void copy(json_t *dst, json_t *src, const char *k)
{
    json_t *v = json_object_get(src, k);
    if (v && !json_is_null(v))
        json_object_set(dst, k, v);
}

void run_local_observe(const char *event, json_t *ev, void *data)
{
    struct run_local *l = data;
    if (strcmp(event, "sandbox_start") == 0) {
        json_t *s = json_object();
        copy(s, ev, "fence");
        copy(s, ev, "landlock_abi");
        copy(s, ev, "landlock_rules");
        copy(s, ev, "seccomp");
        copy(s, ev, "proxy");
        copy(s, ev, "user");
        copy(s, ev, "workdir");
        pthread_mutex_lock(&l->lock);
        json_decref(l->start);
        l->start = s;
        pthread_mutex_unlock(&l->lock);
        return;
    }
    if (strcmp(event, "self_test") == 0) {
        pthread_mutex_lock(&l->lock);
        json_decref(l->selftest);
        l->selftest = json_deep_copy(ev);
        pthread_mutex_unlock(&l->lock);
        return;
    }
    bool bypass = strcmp(event, "bypass_detect") == 0;
    const char *d = json_string_value(json_object_get(ev, "decision"));
    bool deny = d && (strcmp(d, "deny") == 0 || strcmp(d, "would_deny") == 0) &&
                (strcmp(event, "decision") == 0 || strcmp(event, "l7_request") == 0);
    if (!deny && !(bypass && !json_is_true(json_object_get(ev, "repeated"))))
        return;
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string(event));
    static const char *const keys[] = {"time", "decision", "reason_code", "binary", "host",
                                       "port", "method", "path", "policy", "detail", "dst_addr",
                                       "dst_port", "proto", "hint", NULL};
    for (size_t i = 0; keys[i]; i++)
        copy(o, ev, keys[i]);
    if (deny) {
        char hostport[300], fix[600];
        json_t *port = json_object_get(ev, "port");
        const char *host = json_string_value(json_object_get(ev, "host"));
        if (json_is_integer(port))
            snprintf(hostport, sizeof(hostport), "%s:%lld", host ? host : "",
                     (long long)json_integer_value(port));
        else
            snprintf(hostport, sizeof(hostport), "%s", host ? host : "");
        run_fix_for(ev, hostport, NULL, fix, sizeof(fix));
        json_object_set_new(o, "fix", json_string(fix));
    }
    pthread_mutex_lock(&l->lock);
    if (l->n == RUN_LOCAL_KEEP) {
        json_decref(l->ring[l->head]);
        l->head = (l->head + 1) % RUN_LOCAL_KEEP;
        l->n--;
    }
    l->ring[(l->head + l->n) % RUN_LOCAL_KEEP] = o;
    l->n++;
    l->total++;
    pthread_mutex_unlock(&l->lock);
}

static const char *s_of(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Text: one line per denial, like the terminal's. */
static char *denials_text(struct run_local *l)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "# cordon sandbox %s: %lu denial(s) and bypass attempt(s), the last %zu below "
               "(newest last). JSON: send Accept: application/json.\n",
            l->sandbox, l->total, l->n);
    for (size_t i = 0; i < l->n; i++) {
        json_t *o = l->ring[(l->head + i) % RUN_LOCAL_KEEP];
        if (strcmp(s_of(o, "event"), "bypass_detect") == 0) {
            fprintf(f, "%s BYPASS %s tried %s:%lld/%s directly: %s\n", s_of(o, "time"),
                    s_of(o, "binary")[0] ? s_of(o, "binary") : "(unidentified)",
                    s_of(o, "dst_addr"), (long long)json_integer_value(json_object_get(o, "dst_port")),
                    s_of(o, "proto"), s_of(o, "hint"));
            continue;
        }
        fprintf(f, "%s %s %s%s%s:%lld%s for %s: %s (%s). fix: %s\n", s_of(o, "time"),
                strcmp(s_of(o, "decision"), "deny") == 0 ? "DENIED" : "WOULD DENY",
                s_of(o, "method"), s_of(o, "method")[0] ? " " : "", s_of(o, "host"),
                (long long)json_integer_value(json_object_get(o, "port")), s_of(o, "path"),
                s_of(o, "binary")[0] ? s_of(o, "binary") : "(unidentified)",
                s_of(o, "reason_code"), s_of(o, "detail"), s_of(o, "fix"));
    }
    fclose(f);
    return buf;
}

static char *read_policy(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = malloc(RUN_LOCAL_POLICY_MAX + 1);
    size_t got = 0;
    while (buf && got < RUN_LOCAL_POLICY_MAX) {
        ssize_t k = read(fd, buf + got, RUN_LOCAL_POLICY_MAX - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (buf)
        buf[got] = '\0';
    return buf;
}

void run_local_answer(const char *path, const char *accept, struct proxy_local_reply *r,
                      void *data)
{
    struct run_local *l = data;
    bool json = strstr(accept, "application/json") != NULL;
    r->status = 200;
    r->content_type = "text/plain; charset=utf-8";
    if (strcmp(path, "/") == 0) {
        char b[600];
        snprintf(b, sizeof(b),
                 "cordon sandbox %s\n"
                 "  http://cordon.local/denials  what was refused, why, and the fix\n"
                 "  http://cordon.local/policy   the policy in force\n"
                 "  http://cordon.local/status   what is enforced\n"
                 "A policy change is applied by the operator: cordon policy reload --sandbox %s\n",
                 l->sandbox, l->sandbox);
        r->body = strdup(b);
        return;
    }
    pthread_mutex_lock(&l->lock);
    if (strcmp(path, "/denials") == 0) {
        if (json) {
            json_t *o = json_object(), *a = json_array();
            for (size_t i = 0; i < l->n; i++)
                json_array_append(a, l->ring[(l->head + i) % RUN_LOCAL_KEEP]);
            json_object_set_new(o, "sandbox", json_string(l->sandbox));
            json_object_set_new(o, "total", json_integer((json_int_t)l->total));
            json_object_set_new(o, "denials", a);
            r->body = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
            json_decref(o);
            r->content_type = "application/json";
        } else {
            r->body = denials_text(l);
        }
    } else if (strcmp(path, "/status") == 0) {
        json_t *o = json_object();
        json_object_set_new(o, "sandbox", json_string(l->sandbox));
        if (l->start)
            json_object_update(o, l->start);
        json_object_set_new(o, "policy_generation", json_integer(*l->generation));
        json_object_set_new(o, "denials", json_integer((json_int_t)l->total));
        json_t *en = json_object_get(l->selftest, "enforcing");
        json_object_set_new(o, "enforcing", json_boolean(json_is_true(en)));
        if (l->selftest) {
            json_t *t = json_object();
            copy(t, l->selftest, "direct_dial");
            copy(t, l->selftest, "proxy_denial");
            copy(t, l->selftest, "time");
            json_object_set_new(o, "self_test", t);
        }
        r->body = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        json_decref(o);
        r->content_type = "application/json";
    } else if (strcmp(path, "/policy") == 0) {
        char *p = read_policy(l->policy_path);
        if (p) {
            size_t cap = strlen(p) + 128;
            r->body = malloc(cap);
            if (r->body)
                snprintf(r->body, cap, "# generation %u\n%s", *l->generation, p);
            free(p);
            r->content_type = "application/yaml; charset=utf-8";
        }
    } else {
        r->status = 404;
    }
    pthread_mutex_unlock(&l->lock);
}
