/* cli/status: `cordon status [--json] [NAME...]` — the sandboxes running on
 * this host, from their control sockets.
 *
 * Every `cordon run` listens on RUN_CTL_DIR/NAME.ctl (reload.c); the
 * request "status" answers one JSON object: name, supervisor pid, policy
 * file and generation, open proxy connections, the counts of the terminal
 * summary (allowed, denied, would be denied, bypass attempts), the
 * sandbox's address, the audit log, uptime, and `enforcing` — true once the
 * enforcement self-test passed, which is before the control socket exists
 * (a sandbox whose self-test failed never ran). A socket nobody listens on
 * (a supervisor that was killed) is skipped and removed (prune_stale). */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/reload.h"
#include "core/loop.h"
#include "proxy/proxy.h"
#include "core/banned.h"

void run_status_reply(const struct run_reload *r, char *reply, size_t cap)
{
    unsigned long n[4] = {0, 0, 0, 0};
    if (r->term)
        run_term_counts(r->term, n);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "enforcing", json_true());
    json_object_set_new(o, "self_test", json_string("passed"));
    json_object_set_new(o, "policy", json_string(r->policy_path));
    json_object_set_new(o, "generation", json_integer(r->generation));
    json_object_set_new(o, "connections",
                        json_integer(r->proxy ? proxy_active_conns(r->proxy) : 0));
    json_object_set_new(o, "allowed", json_integer((json_int_t)n[0]));
    json_object_set_new(o, "denied", json_integer((json_int_t)n[1]));
    json_object_set_new(o, "would_deny", json_integer((json_int_t)n[2]));
    json_object_set_new(o, "bypass_attempts", json_integer((json_int_t)n[3]));
    json_object_set_new(o, "address", json_string(r->address));
    json_object_set_new(o, "audit_log", r->log_path ? json_string(r->log_path) : json_null());
    json_object_set_new(o, "uptime_s",
                        json_real((double)(loop_clock_ms() - r->started_ms) / 1000.0));
    json_object_set_new(o, "learn", json_boolean(r->learn));
    json_object_set_new(o, "revoke_on_reload", json_boolean(r->revoke));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    snprintf(reply, cap, "%s\n", s ? s : "{}");
    free(s);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cordon status [--json] [NAME...]\n"
               "Lists the sandboxes (cordon run) running on this host: name, supervisor pid,\n"
               "enforcing (the enforcement self-test passed), policy generation, open proxy\n"
               "connections, allowed / denied / bypass attempts, uptime, policy file.\n"
               "Asks each one through its control socket " RUN_CTL_DIR "/NAME.ctl (root\n"
               "only). --json: one JSON array. NAME...: only these; exit 2 when one of them\n"
               "is not running. Sockets nobody listens on (left by supervisors that were\n"
               "killed) are removed.\n");
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names with a .ctl socket, sorted; *n gets their number. */
static int list_names(char ***out, size_t *n)
{
    DIR *d = opendir(RUN_CTL_DIR);
    *out = NULL;
    *n = 0;
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    /* No cap: sockets left by killed supervisors stay in the directory, and
     * a running sandbox must never fall beyond a count of them. */
    char **v = NULL;
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= 4 || strcmp(e->d_name + l - 4, ".ctl") != 0)
            continue;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nv = realloc(v, ncap * sizeof(*nv));
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        if (!(v[*n] = strndup(e->d_name, l - 4))) {
            rc = -ENOMEM;
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (rc < 0) {
        for (size_t k = 0; k < *n; k++)
            free(v[k]);
        free(v);
        *n = 0;
        return rc;
    }
    if (*n)
        qsort(v, *n, sizeof(*v), cmp);
    *out = v;
    return 0;
}

/* The sandbox's answer; NULL with *err = -errno when it gave none
 * (-ECONNREFUSED: nobody listens on the socket). */
static json_t *ask(const char *name, int *err)
{
    char reply[4096];
    *err = run_ctl_request(name, "status\n", reply, sizeof(reply));
    if (*err < 0)
        return NULL;
    json_error_t je;
    json_t *o = json_loads(reply, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        *err = -EPROTO;
        return NULL;
    }
    return o;
}

/* Removes RUN_CTL_DIR/NAME.ctl when nobody listens on it: a supervisor that
 * was killed (SIGKILL, OOM) never removed its socket, and they pile up (one
 * per killed sandbox). Safe against a live sandbox: under run_ctl_lock(),
 * which a starting sandbox holds from its own check to listen(), the socket
 * is connected to again and removed only if the kernel refuses the
 * connection (ECONNREFUSED: no listener; a live one with a full backlog
 * says EAGAIN and is kept) and it is still a socket. Returns 1 if removed. */
static int prune_stale(const char *name)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int n = snprintf(path, sizeof(path), "%s/%s.ctl", RUN_CTL_DIR, name);
    if (n < 0 || (size_t)n >= sizeof(path) || strchr(name, '/'))
        return 0;
    int lk = run_ctl_lock();
    if (lk < 0)
        return 0;
    int removed = 0;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, path, (size_t)n + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct stat st;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 &&
        errno == ECONNREFUSED && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        unlink(path) == 0)
        removed = 1;
    if (fd >= 0)
        close(fd);
    run_ctl_unlock(lk);
    return removed;
}

static void print_text(json_t *all)
{
    printf("%-20s %8s %-9s %4s %6s %8s %7s %7s %9s  %s\n", "NAME", "PID", "ENFORCING", "GEN",
           "CONNS", "ALLOWED", "DENIED", "BYPASS", "UPTIME", "POLICY");
    size_t i;
    json_t *o;
    json_array_foreach(all, i, o) {
        printf("%-20s %8lld %-9s %4lld %6lld %8lld %7lld %7lld %8.0fs  %s%s\n",
               json_string_value(json_object_get(o, "name")),
               (long long)json_integer_value(json_object_get(o, "pid")),
               json_is_true(json_object_get(o, "enforcing")) ? "yes" : "NO",
               (long long)json_integer_value(json_object_get(o, "generation")),
               (long long)json_integer_value(json_object_get(o, "connections")),
               (long long)json_integer_value(json_object_get(o, "allowed")),
               (long long)json_integer_value(json_object_get(o, "denied")),
               (long long)json_integer_value(json_object_get(o, "bypass_attempts")),
               json_number_value(json_object_get(o, "uptime_s")),
               json_string_value(json_object_get(o, "policy")),
               json_is_true(json_object_get(o, "learn")) ? " (learning)" : "");
    }
}

int cli_status(int argc, char **argv)
{
    bool as_json = false;
    const char *want[64];
    size_t n_want = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            as_json = true;
        } else if (argv[i][0] == '-') {
            static const char *const opts[] = {"--json", "--help", NULL};
            cli_unknown_option("status", argv[i], opts);
            return 2;
        } else if (n_want < sizeof(want) / sizeof(want[0])) {
            want[n_want++] = argv[i];
        }
    }
    char **names = NULL;
    size_t n = 0;
    int rc = list_names(&names, &n);
    if (rc < 0) {
        fprintf(stderr, "cordon status: %s: %s%s\n", RUN_CTL_DIR, strerror(-rc),
                rc == -EACCES ? " (run as root)" : "");
        return 1;
    }
    json_t *all = json_array();
    int code = 0;
    if (n_want) {
        for (size_t k = 0; k < n_want; k++) {
            int err = -ENOENT;
            json_t *o = strchr(want[k], '/') ? NULL : ask(want[k], &err);
            if (!o && err == -ECONNREFUSED)
                prune_stale(want[k]);
            if (!o) {
                fprintf(stderr, "cordon status: no sandbox named %s is running\n", want[k]);
                code = 2;
                continue;
            }
            json_array_append_new(all, o);
        }
    } else {
        for (size_t k = 0; k < n; k++) {
            int err;
            json_t *o = ask(names[k], &err);
            if (o)
                json_array_append_new(all, o);
            else if (err == -ECONNREFUSED)
                prune_stale(names[k]);
        }
    }
    for (size_t k = 0; k < n; k++)
        free(names[k]);
    free(names);
    if (as_json) {
        char *s = json_dumps(all, JSON_INDENT(2));
        printf("%s\n", s ? s : "[]");
        free(s);
    } else if (json_array_size(all)) {
        print_text(all);
    } else if (!n_want) {
        printf("no sandboxes running\n");
    }
    json_decref(all);
    return code;
}
