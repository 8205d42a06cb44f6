/* proxy: the egress proxy as a library (used by `cordon proxy` and by the
 * sandbox supervisor `cordon run`).
 *
 * proxy_start() binds the listener(s), starts the worker threads (one epoll
 * loop each, SO_REUSEPORT listeners) and returns once it is accepting.
 * The policy is taken from policy_current() per connection; to reload, load
 * a new policy and policy_install() it (proxy_reload does both). */
#ifndef CORDON_PROXY_PROXY_H
#define CORDON_PROXY_PROXY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct proxy;

/* The answer to a request for http://cordon.local/ (see local.c). */
struct proxy_local_reply {
    int status;               /* 200, or 404 */
    const char *content_type; /* static string */
    char *body;               /* malloc'd, NUL-terminated; the proxy frees it */
};
/* Called on a worker thread for GET/HEAD http://cordon.local<path>; accept
 * is the request's Accept header ("" when absent). Fills r. */
typedef void (*proxy_local_cb)(const char *path, const char *accept,
                               struct proxy_local_reply *r, void *data);

#define PROXY_DNS_CACHE_TTL_DEFAULT 60u  /* seconds */
#define PROXY_DNS_CACHE_TTL_MAX 86400u

struct tls_ca;

struct proxy_config {
    const char *policy_path;          /* reloaded by proxy_reload() */
    struct sockaddr_storage listen;   /* address to listen on */
    socklen_t listen_len;
    const char *resolver;             /* "ADDR:PORT" or NULL = system resolver */
    unsigned workers;                 /* 0 = one per online CPU */
    unsigned max_conns;               /* 0 = from the descriptor limit (at most 16384) */
    uint32_t connect_timeout_ms;      /* 0 = default 10 s */
    uint32_t head_timeout_ms;         /* 0 = default 30 s */
    uint32_t dns_timeout_ms;          /* 0 = default 5 s */
    /* DNS answer cache, per worker: positive answers kept for their TTL
     * up to this many seconds, negative ones up to 5 s; 0 = no cache.
     * proxy_config_init sets PROXY_DNS_CACHE_TTL_DEFAULT. */
    uint32_t dns_cache_ttl_s;
    /* Identity scope: the network namespace the clients live in. -1 = the
     * proxy's own namespace (standalone proxy). The sandbox passes an fd of
     * the child's netns (the proxy dups it). */
    int client_netns_fd;
    const char *sandbox_name;         /* added to audit events when set */
    const char *ca_dir;               /* load the CA from here (ca.pem, ca.key); NULL = generate */
    /* A CA the caller made (cordon run makes it before the proxy starts,
     * so its certificate can be used meanwhile): the proxy takes it over,
     * also when proxy_start fails; NULL = ca_dir or generate. */
    struct tls_ca *ca;
    const char *ca_cert_out;          /* write the CA certificate here (for clients), or NULL */
    const char *upstream_ca;          /* extra trust anchors for upstream TLS, or NULL */
    /* Late TLS set-up (cordon run): the TLS contexts and the upstream trust
     * anchors are made after proxy_start returns, while the caller goes on:
     * on a thread of the proxy's own when upstream_ca or ca_cert_out is set
     * (or no ca given), else by the first connection that needs them. A
     * connection that needs TLS before they are ready waits for them (never
     * served without them), and fails if they could not be made.
     * tls_ready_cb (on the thread that made them) reports the result once,
     * 0 or -errno. false: proxy_start makes them itself. */
    bool late_tls;
    void (*tls_ready_cb)(int rc, void *data);
    void *tls_ready_data;
    /* Listening sockets the caller opened elsewhere (the sandbox opens them
     * inside the sandbox's network namespace), served by every worker. The
     * proxy dups them; -1 = none (proxy_config_init). */
    int extra_listen_fd;        /* explicit proxy requests, like `listen` */
    int transparent_listen_fd;  /* redirected connections (transparent capture) */
    /* Transparent capture: maps the original destination of a redirected
     * connection (SO_ORIGINAL_DST, read in the namespace where the NAT
     * happened) to the host name it stands for. Returns 0, or -ENOENT when
     * the address stands for nothing (the connection is refused). Called
     * on worker threads. */
    int (*transparent_lookup)(void *ctx, const struct sockaddr_in *orig, char *host,
                              size_t cap);
    void *transparent_ctx;
    proxy_local_cb local_cb;          /* serves http://cordon.local/ when set */
    void *local_data;
    const char *inference_routes;     /* routes file for inference.local (doc/inference.md), or NULL */
};

/* Sets defaults in cfg (zero listen address, resolver NULL, client_netns_fd -1). */
void proxy_config_init(struct proxy_config *cfg);

/* Loads the policy (errors printed to stderr with file:line:column), binds,
 * starts workers. Returns 0 or -errno; on failure nothing is left running. */
int proxy_start(const struct proxy_config *cfg, struct proxy **out)
    __attribute__((warn_unused_result));
/* Re-reads cfg->policy_path; on failure keeps the old policy and logs why.
 * Returns 0 or -EINVAL. Thread-safe. */
int proxy_reload(struct proxy *p);
/* True when the proxy intercepts host itself (inference.local and the
 * routes file's names, only with --inference-routes), or takes any name
 * (learning mode): the sandbox's policy DNS answers such names so that
 * transparent clients reach them too. Thread-safe. */
bool proxy_intercepts_name(struct proxy *p, const char *host);
/* Learning mode (cordon run --learn): a connection or request the policy
 * refuses for lack of an endpoint or binary (no_endpoint,
 * binary_not_allowed) or by an endpoint's L7 rules goes on as an opaque
 * tunnel / plain forward, and a `decision` (or `l7_request`) event with
 * decision "would_deny" and "learn": true records it. Identity failures
 * and the address fence (loopback, link-local/metadata, the proxy's own
 * host, private ranges) still refuse. proxy_intercepts_name() then answers
 * every name. ips (n at most PROXY_LEARN_IPS_MAX, copied) are private
 * ranges such requests may still reach (as an endpoint's allowed_ips).
 * Call once, before the sandbox's command starts. Returns 0 or -EINVAL. */
#define PROXY_LEARN_IPS_MAX 16
struct policy_cidr;
int proxy_set_learn(struct proxy *p, const struct policy_cidr *ips, size_t n);
/* After policy_install(pol) (cordon run --revoke-on-reload): every worker,
 * on its own thread, closes the open connections pol refuses (their host,
 * port and binary asked again), each with a `revoked` audit event naming
 * the new decision's reason; close reason "revoked". Allowed ones keep the
 * policy they started with. Takes its own references. Thread-safe. */
struct policy;
void proxy_revoke(struct proxy *p, struct policy *pol);
/* cordon run --revoke-on-reload: besides proxy_revoke(), the next request
 * of a keep-alive forward connection is decided by the policy in force,
 * not the one the connection started with (a new host is a new decision;
 * inspected tunnels keep theirs). Call before the command starts. */
void proxy_set_revoke(struct proxy *p);
/* Numbers a policy for the audit: decision events of connections that hold
 * pol carry "policy_generation": gen. Register before policy_install(). */
struct policy;
void proxy_policy_generation(struct proxy *p, const struct policy *pol, unsigned gen);
/* Connections open now (all workers). Thread-safe. */
unsigned proxy_active_conns(struct proxy *p);
/* Stops accepting, closes every connection, joins the workers, frees. */
void proxy_stop(struct proxy *p);
/* The bound listen address (useful with port 0). */
int proxy_listen_addr(const struct proxy *p, struct sockaddr_storage *out, socklen_t *len);

#endif
