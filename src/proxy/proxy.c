/* proxy/proxy: start, reload and stop the egress proxy. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "identity/identity.h"
#include "inference/inference.h"
#include "proxy/internal.h"
#include "proxy/localaddr.h"
#include "tls/tls.h"
#include "core/banned.h"

void proxy_config_init(struct proxy_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->client_netns_fd = -1;
    cfg->extra_listen_fd = cfg->transparent_listen_fd = -1;
    cfg->dns_cache_ttl_s = PROXY_DNS_CACHE_TTL_DEFAULT;
}

#define PROXY_MAX_CONNS_CAP 16384
#define PROXY_FDS_PER_TUNNEL 2 /* client and upstream sockets; pipes only while data flows */

/* Descriptors the proxy holds besides its connections: listeners, loops,
 * resolvers, the identity threads, logs, and each worker's spare pipes. */
static unsigned long fd_reserve(unsigned workers)
{
    return 256 + (unsigned long)workers * (2 * WORKER_PIPE_POOL + 16);
}

/* --max-conns' default: what the descriptor limit allows (2 per idle
 * tunnel, the reserve kept apart), at most 16384; said at start-up. An
 * explicit value above that is kept, with a warning. */
static void derive_max_conns(struct proxy_config *c)
{
    struct rlimit rl;
    unsigned long fit = PROXY_MAX_CONNS_CAP;
    bool known = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
    unsigned long reserve = fd_reserve(c->workers);
    if (known)
        fit = rl.rlim_cur > reserve + 64 ? (rl.rlim_cur - reserve) / PROXY_FDS_PER_TUNNEL : 32;
    if (fit > PROXY_MAX_CONNS_CAP)
        fit = PROXY_MAX_CONNS_CAP;
    if (!c->max_conns) {
        c->max_conns = (unsigned)fit;
        if (known)
            log_info("proxy: --max-conns %u (from the descriptor limit %llu: %d per tunnel, %lu "
                     "kept for the proxy itself)",
                     c->max_conns, (unsigned long long)rl.rlim_cur, PROXY_FDS_PER_TUNNEL, reserve);
    } else if (known && c->max_conns > fit) {
        log_warn("proxy: --max-conns %u exceeds what the descriptor limit %llu holds (about %lu "
                 "tunnels); beyond that clients get 503 out_of_resources",
                 c->max_conns, (unsigned long long)rl.rlim_cur, fit);
    }
}

static void apply_defaults(struct proxy_config *c)
{
    if (!c->connect_timeout_ms)
        c->connect_timeout_ms = 10000;
    if (!c->head_timeout_ms)
        c->head_timeout_ms = 30000;
    if (!c->dns_timeout_ms)
        c->dns_timeout_ms = 5000;
    if (!c->workers) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = n > 0 ? (unsigned)n : 1;
    }
    if (c->workers > 64)
        c->workers = 64;
    derive_max_conns(c);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void print_diag(const struct policy_diag *d, enum log_level lvl)
{
    for (size_t i = 0; i < d->n; i++)
        log_msg(lvl, "%s", d->lines[i]);
}

static int load_policy(const char *path, bool at_start)
{
    struct policy *p = NULL;
    struct policy_diag d = {0};
    int r = policy_load_file(path, &p, &d);
    print_diag(&d, r < 0 ? LOG_ERROR : LOG_WARN);
    policy_diag_free(&d);
    if (r < 0) {
        if (at_start)
            log_error("proxy: policy %s has errors; not starting", path);
        else
            log_error("proxy: policy %s has errors; keeping the previous policy in force", path);
        return r;
    }
    policy_install(p);
    log_info("proxy: policy %s %s", path, at_start ? "loaded" : "reloaded");
    return 0;
}

/* Loads the routes file; at start-up failure is fatal, on reload the old
 * routes stay in force (connections keep the snapshot they started with). */
static int load_routes(struct proxy *p, bool at_start)
{
    struct inference_routes *r;
    int rc = inference_routes_load(p->routes_path, stderr, &r);
    if (rc < 0) {
        log_error("proxy: inference routes %s have errors; %s", p->routes_path,
                  at_start ? "not starting" : "keeping the previous routes in force");
        return rc;
    }
    pthread_mutex_lock(&p->routes_lock);
    struct inference_routes *old = p->routes;
    p->routes = r;
    pthread_mutex_unlock(&p->routes_lock);
    inference_routes_unref(old);
    log_info("proxy: inference routes %s %s (%zu routes)", p->routes_path, at_start ? "loaded" : "reloaded",
             r->n_routes);
    return 0;
}

struct inference_routes *proxy_routes_get(struct proxy *p)
{
    pthread_mutex_lock(&p->routes_lock);
    struct inference_routes *r = inference_routes_ref(p->routes);
    pthread_mutex_unlock(&p->routes_lock);
    return r;
}

unsigned proxy_active_conns(struct proxy *p)
{
    return atomic_load(&p->active);
}

int proxy_set_learn(struct proxy *p, const struct policy_cidr *ips, size_t n)
{
    if (n > PROXY_LEARN_IPS_MAX || atomic_load(&p->learn))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        p->learn_ips[i] = ips[i];
    p->n_learn_ips = n;
    atomic_store(&p->learn, true); /* seq_cst: the ranges are visible first */
    return 0;
}

void proxy_set_revoke(struct proxy *p)
{
    atomic_store(&p->revoke, true);
}

bool proxy_intercepts_name(struct proxy *p, const char *host)
{
    if (p && atomic_load(&p->learn))
        return true; /* learning: every name is answered, the proxy decides */
    if (p && p->cfg.local_cb && strcasecmp(host, "cordon.local") == 0)
        return true; /* answered by the proxy itself (local.c) */
    if (!p || !p->routes_path)
        return false;
    struct inference_routes *r = proxy_routes_get(p);
    bool yes = r && inference_routes_names(r, host);
    inference_routes_unref(r);
    return yes;
}

int proxy_reload(struct proxy *p)
{
    int r = load_policy(p->policy_path, false);
    if (p->routes_path) {
        int rr = load_routes(p, false);
        if (r == 0)
            r = rr;
    }
    return r;
}

static void free_workers(struct proxy *p)
{
    for (unsigned i = 0; p->workers && i < p->n_workers; i++) {
        struct worker *w = &p->workers[i];
        if (w->lfd >= 0)
            close(w->lfd);
        if (w->dns)
            dns_resolver_free(w->dns);
        if (w->loop)
            loop_free(w->loop);
        identify_drain(w);
        revoke_drain(w);
        pthread_mutex_destroy(&w->ident_mu);
        tunnel_pool_free(w);
    }
    free(p->workers);
    p->workers = NULL;
    if (p->extra_fd >= 0)
        close(p->extra_fd);
    if (p->transparent_fd >= 0)
        close(p->transparent_fd);
    p->extra_fd = p->transparent_fd = -1;
}

static void proxy_free(struct proxy *p)
{
    if (p->tls_thread_on) /* it may still be making the contexts freed below */
        pthread_join(p->tls_thread, NULL);
    p->tls_thread_on = false;
    identify_pool_stop(p); /* before the workers: its threads may still wake them */
    free_workers(p);
    localaddr_stop(p->local);
    if (p->tls_server_ctx)
        SSL_CTX_free(p->tls_server_ctx);
    tls_client_free(p->tls_client);
    tls_ca_free(p->tls_ca);
    inference_routes_unref(p->routes);
    free(p->routes_path);
    pthread_mutex_destroy(&p->routes_lock);
    if (p->ident)
        identity_cache_free(p->ident);
    free(p->policy_path);
    free(p->resolver);
    free(p->sandbox_name);
    pthread_mutex_destroy(&p->gen_lock);
    pthread_mutex_destroy(&p->tls_mu);
    pthread_cond_destroy(&p->tls_cv);
    free(p);
}

static int make_identity(struct proxy *p)
{
    struct identity_cache_opts o = {.netns_ino = -1, .netns_fd = p->cfg.client_netns_fd,
                                    .max_binaries = 4096};
    struct stat st;
    if (o.netns_fd >= 0 && fstat(o.netns_fd, &st) == 0)
        o.netns_ino = (long)st.st_ino;
    errno = 0;
    p->ident = identity_cache_new(&o);
    if (p->ident)
        return 0;
    int e = errno ? errno : ENOMEM;
    log_error("proxy: cannot set up caller identification: %s", strerror(e));
    return -e;
}

static int make_tls(struct proxy *p)
{
    char err[512] = "";
    int r = p->tls_ca    ? 0 /* given by the caller (proxy_config.ca) */
            : p->cfg.ca_dir ? tls_ca_load(p->cfg.ca_dir, NULL, &p->tls_ca, err, sizeof(err))
                          : tls_ca_generate(NULL, &p->tls_ca, err, sizeof(err));
    if (r < 0) {
        log_error("proxy: CA: %s", err[0] ? err : strerror(-r));
        return r;
    }
    if (p->cfg.ca_cert_out && (r = tls_ca_cert_write(p->tls_ca, p->cfg.ca_cert_out, err, sizeof(err))) < 0) {
        log_error("proxy: CA certificate: %s", err);
        return r;
    }
    if ((r = tls_server_ctx_new(p->tls_ca, &p->tls_server_ctx)) < 0) {
        log_error("proxy: cannot build the TLS server context: %s", strerror(-r));
        return r;
    }
    struct tls_client_config tc = {.extra_ca_file = p->cfg.upstream_ca};
    if ((r = tls_client_new(&tc, &p->tls_client, err, sizeof(err))) < 0) {
        log_error("proxy: upstream TLS: %s", err);
        return r;
    }
    return 0;
}

/* The TLS set-up is over (rc 0, or why it failed): wakes the waiters,
 * then tells the caller (tls_ready_cb). */
static int tls_finish(struct proxy *p, int rc)
{
    if (rc < 0 && p->cfg.late_tls)
        log_error("proxy: the TLS set-up failed (above): no connection is inspected");
    else if (rc == 0)
        log_debug("proxy: TLS contexts ready");
    pthread_mutex_lock(&p->tls_mu);
    p->tls_rc = rc;
    p->tls_state = PROXY_TLS_DONE;
    pthread_cond_broadcast(&p->tls_cv);
    pthread_mutex_unlock(&p->tls_mu);
    if (p->cfg.tls_ready_cb)
        p->cfg.tls_ready_cb(rc, p->cfg.tls_ready_data);
    return rc;
}

int proxy_tls_wait(struct proxy *p)
{
    pthread_mutex_lock(&p->tls_mu);
    if (p->tls_state == PROXY_TLS_IDLE) { /* lazy: this connection makes them */
        p->tls_state = PROXY_TLS_RUNNING;
        pthread_mutex_unlock(&p->tls_mu);
        return tls_finish(p, make_tls(p));
    }
    while (p->tls_state != PROXY_TLS_DONE)
        pthread_cond_wait(&p->tls_cv, &p->tls_mu);
    int rc = p->tls_rc;
    pthread_mutex_unlock(&p->tls_mu);
    return rc;
}

static void *tls_thread_main(void *arg)
{
    struct proxy *p = arg;
    (void)tls_finish(p, make_tls(p));
    return NULL;
}

/* Without late_tls, the TLS contexts are made here. With it: when there is
 * something to read and check (--upstream-ca, a CA to load or write out),
 * on a thread of their own now; else (cordon run's usual case: a CA given,
 * the system trust store looked up lazily, nothing that can fail but
 * memory) by the first connection that needs them, so that a command that
 * inspects nothing never pays for them. */
static int start_tls(struct proxy *p)
{
    if (!p->cfg.late_tls) {
        p->tls_state = PROXY_TLS_RUNNING;
        return tls_finish(p, make_tls(p));
    }
    if (p->tls_ca && !p->cfg.upstream_ca && !p->cfg.ca_cert_out)
        return 0; /* PROXY_TLS_IDLE: proxy_tls_wait makes them */
    p->tls_state = PROXY_TLS_RUNNING;
    if (pthread_create(&p->tls_thread, NULL, tls_thread_main, p) == 0) {
        p->tls_thread_on = true;
        return 0;
    }
    return tls_finish(p, make_tls(p));
}

static int make_workers(struct proxy *p)
{
    p->n_workers = p->cfg.workers;
    p->workers = calloc(p->n_workers, sizeof(*p->workers));
    if (!p->workers)
        return -ENOMEM;
    for (unsigned i = 0; i < p->n_workers; i++)
        pthread_mutex_init(&p->workers[i].ident_mu, NULL);
    struct sockaddr_storage addr = p->cfg.listen;
    for (unsigned i = 0; i < p->n_workers; i++) {
        struct worker *w = &p->workers[i];
        w->proxy = p;
        w->index = i;
        w->lfd = -1;
        w->loop = loop_new(p->cfg.max_conns + 64);
        if (!w->loop || loop_set_wake(w->loop, worker_on_wake, w) < 0)
            return -ENOMEM;
        w->dns = dns_resolver_new(w->loop, p->resolver, p->cfg.dns_timeout_ms);
        if (!w->dns)
            return -EINVAL;
        if (dns_resolver_set_cache(w->dns, p->cfg.dns_cache_ttl_s, 0) < 0)
            return -ENOMEM;
        int r = worker_listen(w, &addr, p->cfg.listen_len);
        if (r < 0 || (r = xlisten_worker_init(w)) < 0)
            return r;
        if (i == 0) { /* port 0: every worker binds the port the first one got */
            p->bound_len = sizeof(p->bound);
            getsockname(w->lfd, (struct sockaddr *)&p->bound, &p->bound_len);
            addr = p->bound;
        }
    }
    return 0;
}

static int start_threads(struct proxy *p)
{
    for (unsigned i = 0; i < p->n_workers; i++) {
        int r = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
        if (r != 0) {
            for (unsigned j = 0; j < i; j++) {
                loop_stop(p->workers[j].loop);
                pthread_join(p->workers[j].thread, NULL);
            }
            return -r;
        }
    }
    return 0;
}

int proxy_start(const struct proxy_config *cfg, struct proxy **out)
{
    struct proxy *p = calloc(1, sizeof(*p));
    int r = -ENOMEM;
    if (!p) {
        tls_ca_free(cfg->ca);
        return -ENOMEM;
    }
    p->cfg = *cfg;
    p->tls_ca = cfg->ca;
    p->cfg.ca = NULL;
    pthread_mutex_init(&p->routes_lock, NULL);
    pthread_mutex_init(&p->tls_mu, NULL);
    pthread_cond_init(&p->tls_cv, NULL);
    raise_nofile();
    p->extra_fd = cfg->extra_listen_fd >= 0 ? fcntl(cfg->extra_listen_fd, F_DUPFD_CLOEXEC, 3) : -1;
    p->transparent_fd =
        cfg->transparent_listen_fd >= 0 ? fcntl(cfg->transparent_listen_fd, F_DUPFD_CLOEXEC, 3) : -1;
    if ((cfg->extra_listen_fd >= 0 && p->extra_fd < 0) ||
        (cfg->transparent_listen_fd >= 0 && p->transparent_fd < 0)) {
        r = -errno;
        goto out;
    }
    pthread_mutex_init(&p->gen_lock, NULL);
    apply_defaults(&p->cfg);
    p->policy_path = strdup(cfg->policy_path ? cfg->policy_path : "");
    p->resolver = cfg->resolver ? strdup(cfg->resolver) : NULL;
    p->sandbox_name = cfg->sandbox_name ? strdup(cfg->sandbox_name) : NULL;
    p->cfg.policy_path = p->policy_path;
    p->cfg.resolver = p->resolver;
    p->cfg.sandbox_name = p->sandbox_name;
    if ((r = load_policy(p->policy_path, true)) < 0)
        goto out;
    p->routes_path = cfg->inference_routes ? strdup(cfg->inference_routes) : NULL;
    p->cfg.inference_routes = p->routes_path;
    if (p->routes_path && (r = load_routes(p, true)) < 0)
        goto out;
    /* late_tls: from here on, alongside the rest of the start-up and after. */
    if ((r = start_tls(p)) < 0)
        goto out;
    if ((r = make_identity(p)) < 0)
        goto out;
    if ((r = identify_pool_start(p, IDENT_THREADS_MAX)) < 0) {
        log_error("proxy: cannot start the identity threads: %s", strerror(-r));
        goto out;
    }
    if ((r = localaddr_start(&p->local)) < 0) {
        log_error("proxy: cannot read this host's addresses through rtnetlink (%s); the proxy "
                  "refuses to run without knowing which addresses are its own",
                  strerror(-r));
        goto out;
    }
    if ((r = make_workers(p)) < 0) {
        log_error("proxy: cannot listen: %s", strerror(-r));
        goto out;
    }
    if ((r = start_threads(p)) < 0)
        goto out;
    *out = p;
    return 0;
out:
    proxy_free(p);
    return r;
}

void proxy_stop(struct proxy *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->n_workers; i++)
        loop_stop(p->workers[i].loop);
    for (unsigned i = 0; i < p->n_workers; i++)
        pthread_join(p->workers[i].thread, NULL);
    proxy_free(p);
}

int proxy_listen_addr(const struct proxy *p, struct sockaddr_storage *out, socklen_t *len)
{
    *out = p->bound;
    *len = p->bound_len;
    return 0;
}
