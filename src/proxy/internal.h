/* proxy/internal: the connection object and the functions the proxy's
 * files share. Not part of the proxy's public API (proxy.h).
 *
 * A connection is a state machine owned by state.c: conn_go() is the only
 * writer of c->state, and the table there names each state's entry action,
 * timer and allowed transitions. Phase files (entry, identify, decide,
 * upstream, inspect, forward, tunnel, respond) do one state's work and
 * return a step result (enum conn_step) to the owner; they never call each
 * other's steps and never change the state themselves.
 *
 *   REQ_HEAD → [entry adapter] → IDENTIFY → DECIDE → RESOLVE → CONNECT
 *     → TUNNEL | PEEK → TLS_ACCEPT → TLS_CONNECT → REQ_HEAD | EXCHANGE
 *   EXCHANGE → KEEPALIVE → REQ_HEAD ... | TUNNEL (101) | CLOSED
 *   any → RESPONDING (an answer of our own) → KEEPALIVE | CLOSED
 * doc/proxy.md draws the whole diagram. */
#ifndef CORDON_PROXY_INTERNAL_H
#define CORDON_PROXY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <jansson.h>
#include <openssl/types.h>

#include "core/buf.h"
#include "core/loop.h"
#include "http/message.h"
#include "policy/policy.h"
#include "proxy/dns.h"
#include "proxy/proxy.h"
#include "proxy/reason.h"
#include "proxy/target.h"

struct identity_cache;
struct identity;
struct tls_conn;
struct tls_ca;
struct tls_client;
struct infer_req;
struct inference_routes;

enum conn_state {
    CONN_REQ_HEAD,    /* reading and parsing a request head */
    CONN_IDENTIFY,    /* finding the calling program (once per connection) */
    CONN_DECIDE,      /* the policy decision for this request */
    CONN_REQ_BODY,    /* GraphQL/JSON-RPC/MCP: reading the body the L7 decision needs */
    CONN_RESOLVE,     /* waiting for DNS; the address fence judges the answer */
    CONN_CONNECT,     /* upstream connect in progress (one address) */
    CONN_PEEK,        /* inspected tunnel: classifying the client's first bytes */
    CONN_TLS_ACCEPT,  /* inspected tunnel: TLS handshake with the client */
    CONN_TLS_CONNECT, /* TLS handshake with the upstream */
    CONN_EXCHANGE,    /* relaying one request and its response */
    CONN_TUNNEL,      /* raw relay (CONNECT, or after a 101) */
    CONN_RESPONDING,  /* sending an answer of the proxy's own */
    CONN_KEEPALIVE,   /* between requests: waiting for the next head */
    CONN_INFER,       /* inference: reading a request to route it (infer.c) */
    CONN_CLOSED,
};
#define CONN_N_STATES ((int)CONN_CLOSED + 1)

/* What a phase tells the owner (state.c) after doing its work. */
enum conn_step {
    CONN_STEP_WAIT,    /* would block: stay, wait for an event or the timer */
    CONN_STEP_NEXT,    /* this state's work is done: the owner routes onward */
    CONN_STEP_AGAIN,   /* re-enter this state (e.g. dial the next address) */
    CONN_STEP_RESPOND, /* an answer of our own is queued in cout */
    CONN_STEP_CLOSE,   /* close now; c->close_reason says why */
};

/* The timer a state arms on entry (see state.c). */
enum conn_timer {
    CONN_TIMER_NONE,
    CONN_TIMER_HEAD,      /* --head-timeout */
    CONN_TIMER_CONNECT,   /* --connect-timeout */
    CONN_TIMER_IDLE,      /* the endpoint's idle timeout (c->idle_ms; 0 = none) */
    CONN_TIMER_KEEPALIVE, /* PROXY_KEEPALIVE_IDLE_MS */
};

enum conn_side { CONN_SIDE_CLIENT, CONN_SIDE_UPSTREAM };

/* How an exchange ended (forward.c → the owner). */
enum conn_xend { CONN_XEND_REUSABLE, CONN_XEND_CONSUMED, CONN_XEND_UPGRADED };

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
struct ident_job;

/* HTTP parsing state, only while requests are parsed or relayed: a
 * connection that becomes a tunnel frees it (memory by phase). */
struct conn_msg {
    struct http_parser req, resp;
    struct http_head head;
};

#define WORKER_PIPE_POOL 64
#define IDENT_THREADS_MAX 4

/* The identity threads (identify.c): a FIFO of jobs. */
struct ident_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct ident_job *head, *tail;
    bool stop;
    unsigned n_threads;
    pthread_t threads[IDENT_THREADS_MAX];
    struct identity_cache *cache;
    char *hold_path;     /* CORDON_TEST_IDENTITY_HOLD (tests only) */
    atomic_bool hold_used;
};

struct conn {
    struct worker *w;
    struct conn *prev, *next; /* the worker's list of open connections */
    uint64_t id;
    enum conn_state state;     /* written only by conn_go() (state.c) */
    bool running;              /* inside conn_run (recursion guard) */
    bool respond_keep;         /* RESPONDING: our answer leaves the connection open */
    bool lingering;            /* RESPONDING: answer sent, write side shut, input discarded */
    uint32_t linger_bytes;     /* how much of it (respond.c bounds it) */
    enum conn_xend xend;       /* EXCHANGE: how it ended */
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
    struct conn_msg *msg;      /* HTTP state; NULL once a raw tunnel */
    bool head_parsed;          /* req head of the current exchange is parsed */
    size_t req_pending;        /* body bytes at cin's front parsed, not yet sent */
    bool req_done, resp_done;
    bool req_is_head, req_upgrade, req_keep_alive;
    bool client_eof, upstream_eof;
    /* a relayed response was cut short by the upstream: the client's
     * connection ends with a reset (and no TLS close_notify), so it cannot
     * take a truncated close-delimited body for a complete one */
    bool reset_client;

    /* decision */
    struct policy *pol;
    struct conn_identity ident;
    bool ident_done;
    struct ident_job *ident_job; /* IDENTIFY: the lookup in flight */
    bool inspect;              /* CONNECT tunnel walked request by request */
    struct proxy_target target;
    char upstream_host[TARGET_HOST_MAX + 1]; /* authority of the open upstream */
    uint16_t upstream_port;
    const struct policy_endpoint *ep;
    bool learned; /* learning mode let this request through (decide.c) */
    bool revoke_at_end; /* a reload refused it mid-request: close after this exchange (revoke.c) */
    const char *policy_key;
    /* REQ_BODY (reqbody.c): the endpoint whose body rules decide, its
     * limit, the decoded body read so far (framing removed), and how many
     * raw body bytes after the head in cin the request parser has passed
     * (EXCHANGE forwards them first, as received) */
    const struct policy_endpoint *l7_body_ep;
    size_t l7_body_max;
    char *l7_dec;
    size_t l7_dec_len, l7_dec_cap;
    bool l7_dec_over, l7_dec_oom;
    size_t body_held;
    char method[24];
    char path[512];

    /* upstream */
    struct dns_query *dnsq;
    struct dns_result *addrs;
    size_t addr_next;
    struct sockaddr_storage resolved;
    bool have_resolved;

    /* tunnel */
    struct splice_dir up, down; /* up: client → upstream; down: upstream → client */
    struct wsrelay *ws;         /* a WebSocket after a 101 (wsrelay.c owns it), else NULL */
    uint64_t fwd_up, fwd_down;  /* bytes relayed in forward mode */
    uint64_t xdown_start;       /* fwd_down when the current exchange began */

    /* entered through transparent capture (entry_transparent): no CONNECT
     * head and no 200; until the client speaks HTTP to us inside an
     * inspected session, an answer of our own is a close instead */
    bool transparent;
    bool local_plain; /* captured connection to cordon.local: an origin-form request follows (local.c) */
    /* inference interception (infer.c owns ir) */
    bool infer;
    struct infer_req *ir;
    struct inference_routes *routes; /* snapshot taken at the first request; one reference */
    char infer_name[TARGET_HOST_MAX + 1]; /* the intercepted name, for the audit */
    uint16_t infer_port;
};

struct worker {
    struct proxy *proxy;
    unsigned index;
    struct loop *loop;
    struct dns_resolver *dns;
    pthread_mutex_t ident_mu;
    struct ident_job *ident_done; /* completed lookups (identify.c), under ident_mu */
    struct policy *revoke_pol;    /* a reload to apply to open connections (revoke.c), under ident_mu */
    int lfd;
    struct loop_io lio;
    struct loop_timer accept_backoff;
    struct loop_timer trim_timer; /* gives freed memory back after bursts */
    size_t peak_conns;            /* since the last trim */
    size_t idle_upstreams_closed; /* since the last trim (conn.c): memory freed, conns stay */
    uint64_t backoff_ms;
    pthread_t thread;
    size_t n_conns;
    struct conn *conns; /* open connections, for shutdown */
    int pipes[WORKER_PIPE_POOL][2]; /* empty relay pipes for reuse */
    size_t n_pipes;
    /* listeners opened outside the proxy (xlisten.c), shared by every worker */
    struct xlisten {
        struct worker *w;
        int fd;
        bool transparent;
        struct loop_io io;
    } xl[2];
    size_t n_xl;
};

#define PROXY_GEN_SLOTS 64 /* policies remembered (live connections keep old ones) */

struct proxy {
    struct proxy_config cfg;
    char *policy_path;
    char *resolver;
    char *sandbox_name;
    unsigned n_workers;
    struct worker *workers;
    struct identity_cache *ident;
    struct ident_pool ident_pool;
    atomic_uint active;
    atomic_uint_fast64_t next_id;
    struct sockaddr_storage bound;
    socklen_t bound_len;
    struct tls_ca *tls_ca;
    SSL_CTX *tls_server_ctx;       /* read only after proxy_tls_wait() == 0 */
    struct tls_client *tls_client; /* the same */
    /* proxy.c: the TLS set-up's state (late_tls: made on tls_thread, or by
     * the first connection that needs it) */
    pthread_mutex_t tls_mu;
    pthread_cond_t tls_cv;
    enum { PROXY_TLS_IDLE, PROXY_TLS_RUNNING, PROXY_TLS_DONE } tls_state;
    int tls_rc;
    pthread_t tls_thread;
    bool tls_thread_on;
    struct localaddr *local; /* this host's addresses: never dialled */
    int extra_fd, transparent_fd; /* dups of proxy_config's fds, or -1 */
    /* generation.c: policy -> generation, for decision events */
    pthread_mutex_t gen_lock;
    struct { const struct policy *pol; unsigned gen; } gens[PROXY_GEN_SLOTS];
    size_t n_gen;
    /* --inference-routes, or NULL; swapped by proxy_reload under routes_lock */
    pthread_mutex_t routes_lock;
    struct inference_routes *routes;
    char *routes_path;
    atomic_bool learn; /* proxy_set_learn: policy denials become would_deny */
    struct policy_cidr learn_ips[PROXY_LEARN_IPS_MAX]; /* set once, before learn */
    size_t n_learn_ips;
    atomic_bool revoke; /* proxy_set_revoke: forward requests take the policy in force */
};

/* generation.c: 0 when pol was never registered. */
unsigned proxy_generation_of(struct proxy *p, const struct policy *pol);

/* proxy.c: a new reference to the current inference routes, or NULL. */
struct inference_routes *proxy_routes_get(struct proxy *p);
/* Waits until the TLS contexts are made (at once unless late_tls and still
 * being made); 0, or the -errno they failed with. Any thread. */
int proxy_tls_wait(struct proxy *p) __attribute__((warn_unused_result));


/* state.c: the owner of c->state */
/* Moves c to next: checks the transition against the table (an illegal
 * one aborts in sanitizer builds and closes with
 * PROXY_REASON_ILLEGAL_TRANSITION otherwise), logs it at debug level,
 * arms the state's timer and runs its entry action. Returns the entry
 * action's step. Only conn_run() and conn_close() call it. */
enum conn_step conn_go(struct conn *c, enum conn_state next);
/* Drives c from step s until it waits or closes: a loop, never recursion
 * (pipelined requests and denials between them go round it). Event and
 * timer callbacks call it with their step. */
void conn_run(struct conn *c, enum conn_step s);
/* Starts a new connection in its initial state (REQ_HEAD). */
void conn_start(struct conn *c);
/* Closes c now with reason (shutdown, setup failures outside a step). */
void conn_close(struct conn *c, const char *reason);
/* I/O on one side, or the state's timer: runs the state's handler. */
void conn_dispatch_event(struct conn *c, enum conn_side side, uint32_t ev);
void conn_dispatch_timer(struct conn *c);
const char *conn_state_name(enum conn_state s);
/* Whether the table allows from → to. */
bool conn_state_allows(enum conn_state from, enum conn_state to);
enum conn_timer conn_state_timer(enum conn_state s);
/* Sets c's close reason (unless one is set) and returns CONN_STEP_CLOSE. */
enum conn_step conn_fail(struct conn *c, const char *reason);
/* Re-arms the current state's timer for ms (idle timers that were not
 * idle long enough). Returns CONN_STEP_WAIT, or CLOSE when the heap is full. */
enum conn_step conn_timer_rearm(struct conn *c, uint64_t ms);

/* conn.c: accept, free, and the client side of the head states */
/* transparent: the connection came through transparent capture (its
 * entry adapter is entry_transparent instead of a request head). */
void conn_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, bool transparent);
/* worker.c: admits an accepted client (connection budget, 503, audit). */
void worker_admit(struct worker *w, int fd, const struct sockaddr_storage *peer, bool transparent);
/* CLOSED's entry action: audit, release everything, defer the free. */
enum conn_step conn_enter_closed(struct conn *c);
/* Writes cout to the client. Returns 1 when empty, 0 if it would block,
 * CONN_STEP_CLOSE-style -1 on error (c->close_reason set). */
int conn_flush_client(struct conn *c);
enum conn_step conn_enter_req_head(struct conn *c);
enum conn_step conn_req_head_event(struct conn *c, enum conn_side s, uint32_t ev);
enum conn_step conn_req_head_timer(struct conn *c);
enum conn_step conn_enter_keepalive(struct conn *c);
enum conn_step conn_keepalive_event(struct conn *c, enum conn_side s, uint32_t ev);
enum conn_step conn_keepalive_timer(struct conn *c);
/* Client events while the connection waits on something else (identity,
 * DNS, connect): only a hang-up matters. */
enum conn_step conn_waiting_event(struct conn *c, enum conn_side s, uint32_t ev);
/* EXCHANGE and TUNNEL: the endpoint's idle timeout. */
enum conn_step conn_idle_timer(struct conn *c);

/* entry.c: entry adapters — what a parsed head on the proxy's port asks
 * for (explicit CONNECT, absolute-form). Each fills c->kind and c->target. */
enum conn_step entry_explicit(struct conn *c);
/* Transparent capture: the target is the name the connection's original
 * destination stands for (proxy_config.transparent_lookup), and its port. */
enum conn_step entry_transparent(struct conn *c);
/* Copies the request path for logs and deny bodies into c->path, without
 * the query (it often carries credentials). */
void entry_log_path(struct conn *c, const char *p, size_t n);

/* identify.c */
enum conn_step identify_enter(struct conn *c);
/* Starts / stops the identity threads (stop joins them; before the
 * workers are freed, after their loops ended). Returns 0 or -errno. */
int identify_pool_start(struct proxy *p, unsigned threads);
void identify_pool_stop(struct proxy *p);
/* The worker loop's wake-up: finishes completed lookups. */
void identify_on_wake(struct loop *l, void *data);
/* Frees completed lookups nobody will take (shutdown). */
void identify_drain(struct worker *w);
/* The connection closes: its lookup, if any, is orphaned. */
void identify_cancel(struct conn *c);
void identify_result_free(struct conn_identity *id);

/* decide.c */
/* The L4 question a connection asks the policy (host, port, binary,
 * ancestors, taint): DECIDE, its re-take after a reload, and revoke.c. */
struct policy_query decide_query(const struct conn *c);
enum conn_step decide_enter(struct conn *c);
/* Whether the request can go on over the upstream connection already open. */
bool decide_reuses_upstream(const struct conn *c);

/* respond.c: the proxy's own answers. Each queues the answer in cout and
 * returns CONN_STEP_RESPOND; RESPONDING sends it, then the connection goes
 * on (KEEPALIVE) or closes. */
enum conn_step respond_deny(struct conn *c, int status, const char *reason_code,
                            const char *detail, const char *hint);
enum conn_step respond_error(struct conn *c, int status, const char *reason_code,
                             const char *detail);
/* respond_deny without the audit event (the caller logged it already). */
enum conn_step respond_send(struct conn *c, int status, const char *reason_code,
                            const char *detail, const char *hint);
/* respond_send in the client's protocol shape: a JSON-RPC error object
 * (id rpc_id, our fields in error.data) or a GraphQL {"errors": [...]}
 * next to our fields; POLICY_L7_SHAPE_HTTP is respond_send. */
enum conn_step respond_send_shaped(struct conn *c, int status, const char *reason_code,
                                   const char *detail, const char *hint,
                                   enum policy_l7_shape shape, const char *rpc_id);
enum conn_step respond_enter(struct conn *c);
enum conn_step respond_event(struct conn *c, enum conn_side s, uint32_t ev);
enum conn_step respond_timer(struct conn *c);

/* upstream.c */
enum conn_step upstream_resolve_enter(struct conn *c);
enum conn_step upstream_connect_enter(struct conn *c);
enum conn_step upstream_connect_event(struct conn *c, enum conn_side s, uint32_t ev);
enum conn_step upstream_connect_timer(struct conn *c);
void upstream_close(struct conn *c);
/* Upstream events between exchanges: EOF or stray bytes drop it. */
void upstream_idle_event(struct conn *c);

/* tunnel.c */
enum conn_step tunnel_enter(struct conn *c);
enum conn_step tunnel_event(struct conn *c, enum conn_side s, uint32_t ev);
void tunnel_free(struct conn *c);
/* Closes the worker's pooled pipes (at shutdown). */
void tunnel_pool_free(struct worker *w);
/* Descriptors run short: the spare pipes go first. */
void tunnel_pool_release(struct worker *w);

/* wsrelay.c: the relay of a WebSocket after a 101 — the tunnel's copy
 * relay, aware of frame boundaries in both directions, so the proxy can end
 * the session with close frames of its own: 1011 to the client when the
 * upstream dies without a close frame, 1001 both ways at the idle timeout
 * (or a reset of the client when a frame was cut in the middle). */
/* A 101 answered a WebSocket upgrade: starts tracking, from the bytes that
 * followed the 101 head (early, already on their way to the client).
 * Returns 0 or -ENOMEM. */
int wsrelay_start(struct conn *c, const void *early, size_t n) __attribute__((warn_unused_result));
/* Client bytes read before the tunnel, about to go upstream first. */
void wsrelay_client_early(struct conn *c, const void *p, size_t n);
/* TUNNEL's event handler when c->ws is set (tunnel.c dispatches). */
enum conn_step wsrelay_event(struct conn *c);
/* TUNNEL's idle timer, when c->ws is set: idle_ms passed with no traffic
 * (idle: send 1001 both ways), or the closing handshake we started ran
 * out of time. */
enum conn_step wsrelay_idle(struct conn *c);
/* True while the proxy's own closing handshake runs (its timer is the close wait). */
bool wsrelay_closing(const struct conn *c);
enum conn_step wsrelay_close_timeout(struct conn *c);
/* Adds the "websocket" object to the close event. */
void wsrelay_audit(const struct conn *c, json_t *o);
void wsrelay_free(struct conn *c);

/* inspect.c */
enum conn_step inspect_peek_enter(struct conn *c);
enum conn_step inspect_peek_event(struct conn *c, enum conn_side s, uint32_t ev);
enum conn_step inspect_client_timer(struct conn *c);
enum conn_step inspect_tls_accept_enter(struct conn *c);
enum conn_step inspect_tls_accept_event(struct conn *c, enum conn_side s, uint32_t ev);
enum conn_step inspect_tls_connect_enter(struct conn *c);
enum conn_step inspect_tls_connect_event(struct conn *c, enum conn_side s, uint32_t ev);
enum conn_step inspect_tls_connect_timer(struct conn *c);

/* l7.c: checks one request of an inspected exchange against the endpoint's
 * rules; CONN_STEP_NEXT when it may go on (allowed, or audit mode), else
 * the denial's CONN_STEP_RESPOND. */
enum conn_step l7_check_request(struct conn *c);
/* After a body decision (reqbody.c): audit, then go on or answer the
 * denial in the protocol's shape. */
enum conn_step l7_finish(struct conn *c, const struct policy_l7_result *r);

/* reqbody.c: REQ_BODY — for graphql, json-rpc and mcp endpoints the body
 * (Content-Length or chunked, at most the endpoint's limit decoded) is read
 * into cin, without consuming it, and judged; any other chunked request
 * waits here for its first valid chunk-size line. Then the exchange
 * forwards head and body as sent. */
enum conn_step reqbody_enter(struct conn *c);
enum conn_step reqbody_event(struct conn *c, enum conn_side s, uint32_t ev);
enum conn_step reqbody_timer(struct conn *c);
/* DECIDE's routing: the request needs REQ_BODY (a judged body, or a
 * chunked body whose first chunk-size line must be seen first). */
bool reqbody_wanted(const struct conn *c);
/* Releases REQ_BODY's decoded copy (conn_free, and after each judgement). */
void reqbody_free(struct conn *c);

/* forward.c */
enum conn_step forward_enter(struct conn *c);
enum conn_step forward_event(struct conn *c, enum conn_side s, uint32_t ev);


/* infer.c: inference interception — an entry adapter for the intercepted
 * names and the INFER state (see the file's opening comment). */
/* True when the parsed target is an intercepted inference name and port
 * (takes the connection's routes snapshot on first use). */
bool infer_intercepts(struct conn *c);
/* The entry adapter: marks c as intercepted (CONNECT → PEEK, forward → INFER). */
enum conn_step infer_entry(struct conn *c);
/* INFER: one request on an intercepted connection, up to the route's dial. */
enum conn_step infer_enter(struct conn *c);
enum conn_step infer_event(struct conn *c, enum conn_side s, uint32_t ev);
enum conn_step infer_timer(struct conn *c);
/* INFER is done: the backend connection already open serves this request. */
bool infer_reuses_upstream(const struct conn *c);
/* Whether the route's backend speaks TLS (CONNECT → TLS_CONNECT). */
bool infer_route_tls(const struct conn *c);
uint32_t infer_connect_timeout_ms(const struct conn *c);
uint64_t infer_idle_ms(const struct conn *c);
/* The first byte after an intercepted CONNECT's 200 (inspect.c). */
enum infer_first { INFER_FIRST_TLS, INFER_FIRST_HTTP, INFER_FIRST_OTHER };
enum infer_first infer_classify_first(unsigned char b);
/* Response bytes read from the backend (head included), before relaying. */
void infer_response_bytes(struct conn *c, const char *p, size_t n);
/* The backend failed (closed, errored, went idle) during an exchange:
 * answers, or ends the stream with the API's error event. */
enum conn_step infer_upstream_failed(struct conn *c, const char *reason);
void infer_exchange_done(struct conn *c);
/* The proxy's own error responses on an intercepted request, in the API's shape. */
enum conn_step infer_respond(struct conn *c, int status, const char *code, const char *detail);
/* CLOSED: the request in flight gets its audit event. */
void infer_closing(struct conn *c);
/* Frees the request state; on a closed connection also drops its routes snapshot. */
void infer_free(struct conn *c);

/* auditev.c */
/* local.c: http://cordon.local/ */
bool local_wants(const struct conn *c);
enum conn_step local_serve(struct conn *c);
/* A captured connection to cordon.local (the policy DNS handed out its
 * address): true when c is one; port 80 waits for its request
 * (c->local_plain), other ports are refused. */
bool local_wants_transparent(struct conn *c);
/* The origin-form request of such a connection, parsed: answered. */
enum conn_step local_serve_plain(struct conn *c);

/* One "inference" event with the connection's common fields. */
void auditev_inference(struct conn *c, json_t *fields);
void auditev_decision(struct conn *c, bool allow, const char *reason_code, const char *detail);
/* Learning mode: the request the policy refused (reason_code) goes on; a
 * decision event "would_deny" with "learn": true. */
/* The fields every connection event carries (conn, host, binary, ...). */
void auditev_fill(struct conn *c, json_t *o);
/* revoke.c: on the worker's thread, closes the connections the policy
 * proxy_revoke() handed over refuses; revoke_drain drops it at shutdown. */
void revoke_run(struct worker *w);
void revoke_drain(struct worker *w);
/* worker.c: the loop's wake callback (identity lookups, revocations). */
void worker_on_wake(struct loop *l, void *data);
/* A client that ended the inspected TLS handshake with an alert: a
 * `tls_client_rejected` event (alert number and description, what it means
 * for the sandbox CA); detail gets the one-line explanation. */
void auditev_tls_client_rejected(struct conn *c, int alert, char *detail, size_t cap);
void auditev_learn(struct conn *c, const char *reason_code, const char *detail);
void auditev_close(struct conn *c);
/* A 101 was accepted: the connection is now a raw relay. */
void auditev_upgrade(struct conn *c);

/* xlisten.c: the listeners proxy_config hands over (extra_listen_fd,
 * transparent_listen_fd), registered in worker w's loop. */
int xlisten_worker_init(struct worker *w) __attribute__((warn_unused_result));

/* worker.c */
int worker_listen(struct worker *w, const struct sockaddr_storage *addr, socklen_t len);
void *worker_main(void *arg);

/* Timeouts (ms) */
#define PROXY_KEEPALIVE_IDLE_MS 300000u
/* An upstream connection kept open for the client's next request is closed
 * after this long without one (the client's connection stays, and its next
 * request dials again); idle tunnels then hold one descriptor, not two. */
#define PROXY_UPSTREAM_IDLE_MS 10000u
#define PROXY_UPGRADE_IDLE_MS 3600000u

#endif
