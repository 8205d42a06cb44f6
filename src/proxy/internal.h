/* proxy/internal: the connection object and the functions the proxy's
 * files share. Not part of the proxy's public API (proxy.h).
 *
 * A connection moves through explicit states:
 *   HEAD → (identity, decision) → RESOLVE → CONNECT → TUNNEL | FORWARD → CLOSED
 * A forward (absolute-form) connection returns to HEAD after each exchange
 * when both sides keep the connection alive. */
#ifndef CORDON_PROXY_INTERNAL_H
#define CORDON_PROXY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/types.h>

#include "core/buf.h"
#include "core/loop.h"
#include "http/message.h"
#include "policy/policy.h"
#include "proxy/dns.h"
#include "proxy/proxy.h"
#include "proxy/target.h"

struct identity_cache;
struct identity;
struct tls_conn;
struct tls_ca;
struct tls_client;

enum conn_state {
    CONN_HEAD,     /* reading a request head */
    CONN_RESOLVE,  /* waiting for DNS */
    CONN_CONNECT,  /* upstream connect in progress */
    CONN_PEEK,     /* inspected tunnel: classifying the client's first bytes */
    CONN_TLS_ACCEPT,  /* inspected tunnel: TLS handshake with the client */
    CONN_TLS_CONNECT, /* TLS handshake with the upstream */
    CONN_TUNNEL,   /* raw relay (CONNECT, or after 101) */
    CONN_FORWARD,  /* relaying one forward exchange */
    CONN_CLOSED,
};

enum conn_kind { KIND_CONNECT, KIND_FORWARD };

/* One relay direction through a pipe with splice(2). */
struct splice_dir {
    int pipe_r, pipe_w;
    size_t in_pipe;
    bool eof;       /* source reached EOF */
    bool shut;      /* we shut down the sink's write side */
    uint64_t bytes;
};

struct conn_identity {
    pid_t pid;
    char *exe;
    char **ancestors;
    size_t n_ancestors;
    const char *reason_code; /* identity failure, else NULL */
    char *detail;
    char tainted_by[32];     /* identity.tainted_by */
};

struct worker;

#define WORKER_PIPE_POOL 64

struct conn {
    struct worker *w;
    struct conn *prev, *next; /* the worker's list of open connections */
    uint64_t id;
    enum conn_state state;
    enum conn_kind kind;
    struct loop_io cio, uio;
    int cfd, ufd;
    struct tls_conn *ctls, *utls; /* TLS on that side, or NULL for plain TCP */
    struct sockaddr_storage peer, local;
    struct loop_timer timer;
    struct loop_deferred free_node;
    uint64_t start_ms, last_active_ms, idle_ms;
    const char *close_reason;

    /* request handling */
    struct buf cin;   /* client → proxy input */
    struct buf cout;  /* proxy → client output (our responses, forwarded bytes) */
    struct buf uout;  /* proxy → upstream output (rewritten heads, early bytes) */
    struct buf uin;   /* upstream → proxy input (forward mode) */
    struct http_parser req, resp;
    struct http_head head;
    bool head_parsed;          /* req head of the current exchange is parsed */
    size_t req_pending;        /* body bytes at cin's front parsed, not yet sent */
    bool req_done, resp_done;
    bool req_is_head, req_upgrade, req_keep_alive;
    bool close_after_flush;    /* send cout, then close */
    bool client_eof, upstream_eof;

    /* decision */
    struct policy *pol;
    struct conn_identity ident;
    bool ident_done;
    bool inspect;              /* CONNECT tunnel walked request by request */
    struct proxy_target target;
    char upstream_host[TARGET_HOST_MAX + 1]; /* authority of the open upstream */
    uint16_t upstream_port;
    const struct policy_endpoint *ep;
    const char *policy_key;
    char method[24];
    char path[512];

    /* upstream */
    struct dns_query *dnsq;
    struct dns_result *addrs;
    size_t addr_next;
    struct sockaddr_storage resolved;
    bool have_resolved;
    char blocked_detail[768];

    /* tunnel */
    struct splice_dir up, down; /* up: client → upstream; down: upstream → client */
    uint64_t fwd_up, fwd_down;  /* bytes relayed in forward mode */
};

struct worker {
    struct proxy *proxy;
    unsigned index;
    struct loop *loop;
    struct dns_resolver *dns;
    struct identity *ident_scratch; /* large; one per worker, not per connection */
    int lfd;
    struct loop_io lio;
    struct loop_timer accept_backoff;
    uint64_t backoff_ms;
    pthread_t thread;
    size_t n_conns;
    struct conn *conns; /* open connections, for shutdown */
    int pipes[WORKER_PIPE_POOL][2]; /* empty relay pipes for reuse */
    size_t n_pipes;
};

struct proxy {
    struct proxy_config cfg;
    char *policy_path;
    char *resolver;
    char *sandbox_name;
    unsigned n_workers;
    struct worker *workers;
    struct identity_cache *ident;
    atomic_uint active;
    atomic_uint_fast64_t next_id;
    struct sockaddr_storage bound;
    socklen_t bound_len;
    struct tls_ca *tls_ca;
    SSL_CTX *tls_server_ctx;
    struct tls_client *tls_client;
};

/* conn.c */
void conn_accept(struct worker *w, int fd, const struct sockaddr_storage *peer);
void conn_close(struct conn *c, const char *reason);
void conn_on_client(struct loop *l, struct loop_io *io, uint32_t ev);
void conn_process_head(struct conn *c);
void conn_request_done(struct conn *c);
int conn_flush_client(struct conn *c);

/* respond.c: error and denial responses */
void respond_deny(struct conn *c, int status, const char *reason_code, const char *detail,
                  const char *hint);
void respond_error(struct conn *c, int status, const char *reason_code, const char *detail);
/* respond_deny without the audit event (the caller logged it already). */
void respond_send(struct conn *c, int status, const char *reason_code, const char *detail,
                  const char *hint);

/* upstream.c */
void upstream_begin(struct conn *c);
void upstream_close(struct conn *c);

/* tunnel.c */
/* Starts the raw relay. connect_reply: answer the CONNECT with 200 and
 * forward the bytes that followed its head. */
int tunnel_start(struct conn *c, bool connect_reply);
void tunnel_on_event(struct conn *c);
void tunnel_free(struct conn *c);
/* Closes the worker's pooled pipes (at shutdown). */
void tunnel_pool_free(struct worker *w);

/* inspect.c */
void inspect_start(struct conn *c);
void inspect_on_event(struct conn *c);
void inspect_upstream_tls_start(struct conn *c);
static inline uint64_t p_head_timeout(const struct conn *c) { return c->w->proxy->cfg.head_timeout_ms; }

/* l7.c: checks one request of an inspected exchange against the endpoint's
 * rules; true when it may go on (allowed, or audit mode). On an enforced
 * denial it has answered the client already. */
bool l7_check_request(struct conn *c);

/* forward.c */
void forward_start(struct conn *c);
void forward_on_event(struct conn *c);

/* auditev.c */
void auditev_decision(struct conn *c, bool allow, const char *reason_code, const char *detail);
void auditev_close(struct conn *c);
/* A 101 was accepted: the connection is now a raw relay. */
void auditev_upgrade(struct conn *c);

/* worker.c */
int worker_listen(struct worker *w, const struct sockaddr_storage *addr, socklen_t len);
void *worker_main(void *arg);

/* Timeouts (ms) */
#define PROXY_KEEPALIVE_IDLE_MS 300000u
#define PROXY_UPGRADE_IDLE_MS 3600000u

#endif
