/* cli/run_int: the pieces of `cordon run` that live beside the sandbox
 * (the audit log's place, the terminal lines, reload, defaults). */
#ifndef CORDON_CLI_RUN_INT_H
#define CORDON_CLI_RUN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "sandbox/sandbox.h"

#define RUN_LOG_DIR "/var/log/cordon"
#define RUN_CTL_DIR "/run/cordon/ctl"

/* ---- run_log: the audit log of one sandbox ---- */

/* RUN_LOG_DIR/<name>.log into out; creates RUN_LOG_DIR (0750, root) when
 * missing. Returns 0 or -errno (-ENAMETOOLONG, or mkdir's error). */
int run_log_default_path(const char *name, char *out, size_t cap);

/* Refuses a log path the sandbox could replace or rewrite: one that lies in
 * or under a read_write grant of the policy (or the workdir when it is
 * included), or below a directory the sandbox's user can write. Returns 0,
 * or -EPERM with err saying which grant or directory and the fix. */
int run_log_check(const char *path, const struct sandbox_info *info, char *err, size_t cap);

/* ---- policy_init.c: the built-in default policy ---- */

/* Writes cordon run's default policy (no network, the standard filesystem
 * policy) to RUN_CTL_DIR/<name>.default-policy.yaml (0600 root); path gets
 * it. Returns 0 or -errno. */
int run_default_policy_write(const char *name, char *path, size_t cap);

/* True when the sandbox's user may write the directory path by its mode
 * bits (owner, group, other; supplementary groups are cleared). */
bool run_dac_writable(const char *path, const struct sandbox_info *info);

/* ---- policy_suggest.c: the policy suggestion engine (policy suggest, --learn) ---- */

struct psuggest;
/* ips (kept, not copied; may be NULL): allowed_ips for every endpoint.
 * NULL on OOM. */
struct psuggest *psuggest_new(const char *const *ips, size_t n_ips);
/* Takes one audit event: a refused decision or l7_request ("deny", or
 * "would_deny" with "learn": true); anything else is ignored. */
void psuggest_take(struct psuggest *s, json_t *ev);
/* Requests taken; n_hosts (may be NULL) gets the number of entries. */
size_t psuggest_count(const struct psuggest *s, size_t *n_hosts);
/* Comments for refusals no entry can lift, then `network_policies:` (or
 * "# nothing to allow"); no version line. */
void psuggest_print(const struct psuggest *s, FILE *f);
void psuggest_free(struct psuggest *s);

/* ---- run_learn.c: cordon run --learn ---- */

struct run_learn;
struct run_term;
struct proxy;
struct policy_cidr;
/* "ADDR[/PREFIX]" (IPv4 or IPv6). Returns 0 or -EINVAL. */
int run_learn_parse_cidr(const char *s, struct policy_cidr *out);
/* policy_path: the policy in force (re-read at exit); label names it in
 * the proposal's header (NULL = the path); ips (at most
 * PROXY_LEARN_IPS_MAX, kept): --learn-allowed-ips. NULL on OOM or a bad
 * CIDR (check them with run_learn_parse_cidr first). */
struct run_learn *run_learn_new(const char *policy_path, const char *label,
                                const char *const *ips, size_t n_ips);
void run_learn_free(struct run_learn *l);
/* Once the sandbox is known: where the proposal goes (out_arg, or
 * RUN_LOG_DIR/NAME.learned.yaml), refused like --log when the sandbox could
 * plant it. Returns 0 or -errno with err set. */
int run_learn_prepare(struct run_learn *l, const char *out_arg, const struct sandbox_info *info,
                      char *err, size_t cap);
/* After the self-test, before the command: the proxy lets through and
 * records (proxy_set_learn). Returns 0 or -errno. */
int run_learn_start(struct run_learn *l, struct proxy *p);
/* Audit observer: learned decisions and requests. Thread-safe. */
void run_learn_observe(const char *event, json_t *ev, void *data);
/* At exit: writes the proposal and says where on t. Returns 0 or -errno. */
int run_learn_write(struct run_learn *l, struct run_term *t);

/* ---- selftest.c: the enforcement self-test ---- */

#define RUN_SELFTEST_DIRECT "192.0.2.1"            /* TEST-NET-1 (RFC 5737) */
#define RUN_SELFTEST_HOST "selftest.cordon.invalid" /* RFC 6761: never resolves */

/* Proves from inside the sandbox's network namespace that a direct dial is
 * refused and that the proxy answers a denied CONNECT with 403; writes a
 * `self_test` audit event. Returns 0, or -errno after saying on stderr what
 * failed (the caller refuses to start). */
int run_selftest(const struct sandbox_info *info);

/* The self-test's own traffic: not the agent's (terminal, cordon.local). */
bool run_is_selftest(const char *event, json_t *ev);

/* ---- publish.c: --publish [ADDR:]HOSTPORT:PORT ---- */

#include <netinet/in.h>
#include "core/loop.h"

struct relay;
struct run_publish {
    struct sockaddr_in listen;  /* host side (default 127.0.0.1) */
    uint16_t port;              /* in the sandbox */
    struct sockaddr_in target;
    int lfd;
    struct loop_io io;
    unsigned n_conns;
    struct relay *relays;
};
/* Parses "[ADDR:]HOSTPORT:PORT" (IPv4). Returns 0 or -EINVAL. */
int run_publish_parse(const char *spec, struct run_publish *out);
/* Listens and relays into sandbox_addr:port on l. 0 or -errno (said why). */
int run_publish_start(struct run_publish *p, const char *sandbox_addr, struct loop *l)
    __attribute__((warn_unused_result));
/* After the loop is gone: closes the listener and every relay left. */
void run_publish_stop(struct run_publish *p);

/* ---- run_term: what `cordon run` tells the person at the terminal ---- */

struct run_term;

struct run_term_opts {
    int fd;                 /* where the lines go (stderr) */
    bool quiet;             /* no denial lines, no summary */
    const char *sandbox;    /* for the "reload" fix */
    unsigned burst;         /* lines printed at once before rate limiting; 0 = 5 */
    unsigned per_minute;    /* lines per minute after the burst; 0 = 30 */
};

/* Creates the terminal reporter; returns NULL on OOM. */
struct run_term *run_term_new(const struct run_term_opts *o);
/* The audit observer (core/audit.h audit_observer_cb); data = the run_term.
 * Counts every decision and bypass event; prints one short line per denial
 * or bypass attempt, rate limited. Thread-safe. */
void run_term_observe(const char *event, json_t *ev, const char *line, size_t len, void *data);
/* One line of our own (reload results, warnings), not rate limited. */
void run_term_say(struct run_term *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The exit summary: counts, top denied hosts, where the log is. */
void run_term_summary(struct run_term *t, int code, const char *log_path);
void run_term_free(struct run_term *t);
/* The counts so far (the summary's): allowed, denied, would be denied,
 * bypass attempts. Thread-safe. */
void run_term_counts(struct run_term *t, unsigned long out[4]);
/* The fix for a denial event (decision or l7_request), from its reason
 * code: which policy entry would allow it, and the reload command when
 * sandbox is set. */
void run_fix_for(json_t *ev, const char *hostport, const char *sandbox, char *out, size_t cap);

/* ---- run_local: what http://cordon.local/ answers inside the sandbox ---- */

struct run_local;
struct proxy_local_reply;
/* policy_path is re-read for /policy; generation points at the reload
 * generation (read under no lock: a torn read is impossible for unsigned). */
struct run_local *run_local_new(const char *sandbox, const char *policy_path,
                                const unsigned *generation);
void run_local_free(struct run_local *l);
/* Audit observer: keeps the last denials and bypass attempts, and the
 * sandbox_start facts. Thread-safe. */
void run_local_observe(const char *event, json_t *ev, void *data);
/* proxy_local_cb: "/", "/denials", "/policy", "/status". */
void run_local_answer(const char *path, const char *accept, struct proxy_local_reply *r,
                      void *data);

#endif
