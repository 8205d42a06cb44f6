/* policy: the OpenShell sandbox policy format, loaded, validated, compiled.
 *
 * A compiled policy is immutable and reference counted: the proxy takes a
 * reference per connection (policy_ref) and drops it when the connection
 * ends (policy_unref), so a reload never changes a live connection's rules.
 *
 * Host matching (documented in doc/policy.md, host.c): exact hosts compare
 * ASCII case-insensitively; "*.example.com" matches exactly one label in
 * front of example.com, "**.example.com" one or more, neither the apex;
 * '*' inside a label ("*-ai.example.com") stays within that label.
 * Binary path globs: '*' within one path segment, '**' across segments. */
#ifndef CORDON_POLICY_POLICY_H
#define CORDON_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct policy;
struct policy_endpoint;

/* Diagnostics collected while loading: errors make the load fail, warnings
 * do not. Each message is "file:line:column: error|warning: <field>: <what>
 * (<allowed>)". */
struct policy_diag {
    size_t n_errors, n_warnings;
    size_t n, cap;
    char **lines; /* errors and warnings in file order */
};
void policy_diag_free(struct policy_diag *d);

/* Loads and compiles a policy file. On success *out holds one reference.
 * Returns 0, or -EINVAL when the file has errors (see diag), or -errno when
 * it cannot be read (diag holds the message too). diag (may be NULL) gets
 * every error and warning appended; the caller frees it with
 * policy_diag_free. Thread-safe; allocation failure while loading aborts. */
int policy_load_file(const char *path, struct policy **out, struct policy_diag *diag)
    __attribute__((warn_unused_result));
/* Same, from memory; name is used in diagnostics. */
int policy_load_buffer(const char *name, const char *data, size_t len, struct policy **out,
                       struct policy_diag *diag) __attribute__((warn_unused_result));

struct policy *policy_ref(struct policy *p);
void policy_unref(struct policy *p);

/* The process-wide current policy (for hot reload). policy_current() returns
 * a new reference (caller unrefs), or NULL when none is installed.
 * policy_install() takes over the caller's reference and drops the old one. */
struct policy *policy_current(void);
void policy_install(struct policy *p);

/* ---- L4 decision ---- */

struct policy_query {
    const char *host;             /* as requested (any case) */
    uint16_t port;
    const char *exe;              /* resolved executable path of the caller */
    const char *const *ancestors; /* ancestor executables, nearest first */
    size_t n_ancestors;
    /* The caller's initial environment sets this code-injection variable
     * (LD_PRELOAD...; identity/taint.c), or NULL/"": a match by the exe
     * itself is then refused (identity_tainted) unless the binary entry
     * says allow_env_injection: true. */
    const char *tainted_by;
};

/* Reason codes: constants compared by identity. */
extern const char POLICY_REASON_NO_ENDPOINT[];        /* "no_endpoint" */
extern const char POLICY_REASON_BINARY_NOT_ALLOWED[]; /* "binary_not_allowed" */
extern const char POLICY_REASON_IDENTITY_TAINTED[];   /* "identity_tainted" */

struct policy_decision {
    bool allow;
    const char *reason_code;               /* NULL when allowed */
    const char *policy_key;                /* matched (or nearest) network_policies key, or NULL */
    const struct policy_endpoint *endpoint; /* matched endpoint when allowed */
    int endpoint_index;                    /* index in that entry's endpoints, -1 if none */
    const char *matched_binary;            /* pattern that matched (allow), or NULL */
    const char *matched_by;                /* the exe or ancestor path that matched */
    char detail[512];                      /* human explanation */
    char hint[512];                        /* what policy entry would allow it */
};

/* Decides host:port for a binary (and its ancestors). Order: endpoint match,
 * then binary match within the same entry. Entries are tried in key order;
 * the first entry where both match wins. Never fails. */
void policy_decide(const struct policy *p, const struct policy_query *q,
                   struct policy_decision *out);

/* True when some endpoint of p names host (an exact host, or a wildcard
 * host matching it), for any port and any binary: the sandbox's DNS
 * answers such names. IP literals and host-less endpoints name nothing. */
bool policy_names_host(const struct policy *p, const char *host);

/* ---- L7 (HTTP request) decision, for protocol: rest endpoints ---- */

extern const char POLICY_REASON_L7_DENIED[]; /* "l7_denied" */

#define POLICY_L7_PATH_MAX 4096   /* longer request paths are denied */
#define POLICY_L7_QUERY_MAX 16384 /* longer query strings are denied */

/* What decided an L7 request. */
enum policy_l7_by {
    POLICY_L7_BY_ALLOW_RULE, /* rules[rule_index], an allow rule, matched */
    POLICY_L7_BY_DENY_RULE,  /* rules[rule_index], a deny rule, matched */
    POLICY_L7_BY_ACCESS,     /* the endpoint's access preset allowed or refused the method */
    POLICY_L7_BY_NO_RULE,    /* no allow rule matched */
    POLICY_L7_BY_BAD_TARGET, /* method or request-target not acceptable (not normalizable) */
    POLICY_L7_BY_BODY,       /* GraphQL/JSON-RPC/MCP: the body decides (policy_l7_check_body) */
    POLICY_L7_BY_BAD_BODY,   /* the body could not be read as the protocol says, or too large */
    POLICY_L7_BY_PATH,       /* no endpoint of this host covers the request path */
};

/* How a denial is shaped for the client (doc/policy.md "Denials"). */
enum policy_l7_shape {
    POLICY_L7_SHAPE_HTTP,    /* our 403 JSON body */
    POLICY_L7_SHAPE_JSONRPC, /* a JSON-RPC error object (HTTP 200 for MCP, 403 otherwise) */
    POLICY_L7_SHAPE_GRAPHQL, /* {"errors": [...]} with our fields */
};

#define POLICY_L7_RPC_ID_MAX 96

struct policy_l7_result {
    bool allow;
    const char *reason_code; /* NULL when allowed, else POLICY_REASON_L7_DENIED */
    enum policy_l7_by by;
    int rule_index;          /* index in the endpoint's rules that decided, or -1 */
    char path[POLICY_L7_PATH_MAX + 1]; /* normalized path; "" when not normalizable */
    char rule[256];          /* the deciding rule as text, e.g. "allow GET /v1/x" */
    char detail[512];        /* human explanation */
    char hint[512];          /* deny: the rule that would allow it */
    /* the endpoint whose rules decided: the one passed in, or a sibling with
     * the same host and port whose `path` covers the request */
    const struct policy_endpoint *endpoint;
    bool need_body;             /* by == POLICY_L7_BY_BODY: allow stays false until
                                 * policy_l7_check_body decides */
    size_t max_body;            /* read at most this many body bytes for that */
    bool hard;                  /* denied even under enforcement: audit, as OpenShell
                                 * does: a request target that does not normalize
                                 * (BAD_TARGET), a malformed body (BAD_BODY), or a
                                 * JSON-RPC response frame sent by the client */
    bool sse_only;              /* MCP GET: allowed only as a receive stream (no body,
                                 * Accept names text/event-stream); the caller, which
                                 * has the head, must check (policy_l7_sse_request_ok) */
    enum policy_l7_shape shape; /* for the denial */
    char rpc_id[POLICY_L7_RPC_ID_MAX + 1]; /* JSON-RPC: id of the denied call, as JSON */
};

/* Checks one HTTP request against an inspected endpoint. target is the raw
 * request-target (origin-form "/path?query", absolute-form
 * "http://host/path?query", or "*"). The path is normalized first (RFC 3986
 * dot-segment removal, unreserved decoding, "//" collapsed; "%2F", "%5C",
 * "%00", bad escapes, ".." above the root and "..;" are refused), then deny
 * rules are tried (any match denies), then allow rules or the access
 * preset. An allow or deny rule for GET also covers HEAD. Query matchers
 * compare percent-decoded names and values: an allow rule needs every value
 * of each listed parameter to match, a deny rule matches when any value
 * does. Returns 0 with out filled in, or -EINVAL (out denies) when ep is
 * not a rest endpoint or an argument is NULL. Thread-safe, no allocation. */
int policy_l7_check(const struct policy_endpoint *ep, const char *method, const char *target,
                    struct policy_l7_result *out);

/* Second half for protocol: graphql, json-rpc and mcp endpoints: after
 * policy_l7_check set need_body, the caller reads at most out->max_body
 * bytes of the request body (complete = false when there was more) and
 * passes them here; out is updated in place with the decision. GraphQL: a
 * JSON envelope or a batch of them, every operation checked; JSON-RPC/MCP:
 * one call or a batch, every element checked, and one denied element
 * denies the whole request. Returns 0, or -EINVAL (out denies) when out
 * was not waiting for a body. Thread-safe; allocates only while parsing. */
int policy_l7_check_body(const char *body, size_t len, bool complete,
                         struct policy_l7_result *out);
/* For a result with sse_only: true when the request is a bodyless MCP
 * receive stream, as OpenShell requires: accept is the first Accept header
 * value (NULL when absent) and it names text/event-stream (parameters
 * ignored, case-insensitive); has_body is true when the request carries a
 * body (Transfer-Encoding, or a Content-Length other than 0). */
bool policy_l7_sse_request_ok(const char *accept, size_t accept_len, bool has_body);

/* The error shape a client of this endpoint expects for a denial. */
enum policy_l7_shape policy_endpoint_l7_shape(const struct policy_endpoint *ep);

/* ---- endpoint properties (for the proxy) ---- */

enum policy_tls { POLICY_TLS_AUTO, POLICY_TLS_SKIP };
enum policy_enforcement { POLICY_ENFORCE, POLICY_AUDIT };

struct policy_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    uint8_t prefix;
};

/* True when HTTP requests on the endpoint are inspected (protocol rest,
 * websocket, graphql, json-rpc or mcp, or rules/access without protocol). */
bool policy_endpoint_is_rest(const struct policy_endpoint *ep);
enum policy_tls policy_endpoint_tls(const struct policy_endpoint *ep);
enum policy_enforcement policy_endpoint_enforcement(const struct policy_endpoint *ep);
/* Idle timeout in ms for an established tunnel; 0 = none. */
uint64_t policy_endpoint_idle_timeout_ms(const struct policy_endpoint *ep);
/* Idle timeout in ms for a connection after a 101 upgrade (WebSocket);
 * default 1 h; 0 = none. */
uint64_t policy_endpoint_upgrade_idle_timeout_ms(const struct policy_endpoint *ep);
/* allowed_ips of the endpoint (plus the implicit /32 or /128 when host is an
 * IP literal). */
size_t policy_endpoint_allowed_ips(const struct policy_endpoint *ep,
                                   const struct policy_cidr **out);
/* The host pattern as written in the policy ("" when hostless). */
const char *policy_endpoint_host(const struct policy_endpoint *ep);
/* The network_policies key the endpoint belongs to, and its index in that
 * entry's endpoints list. */
const char *policy_endpoint_policy_key(const struct policy_endpoint *ep);
int policy_endpoint_index(const struct policy_endpoint *ep);
/* The access preset of a rest endpoint (POLICY_ACCESS_NONE when it uses
 * rules or is not rest). */
enum policy_access {
    POLICY_ACCESS_NONE,
    POLICY_ACCESS_READ_ONLY,  /* GET, HEAD, OPTIONS */
    POLICY_ACCESS_READ_WRITE, /* + POST, PUT, PATCH */
    POLICY_ACCESS_FULL,       /* every method */
};
enum policy_access policy_endpoint_access(const struct policy_endpoint *ep);

/* True when addr (AF_INET/AF_INET6 sockaddr) lies inside cidr. IPv4-mapped
 * IPv6 addresses are compared as IPv4. */
bool policy_cidr_contains(const struct policy_cidr *cidr, const struct sockaddr *addr);

/* ---- static sections (enforced by the sandbox runner) ---- */

struct policy_fs {
    bool include_workdir;
    char **read_only;
    size_t n_read_only;
    char **read_write;
    size_t n_read_write;
};
enum policy_landlock { POLICY_LANDLOCK_BEST_EFFORT, POLICY_LANDLOCK_HARD };
const struct policy_fs *policy_filesystem(const struct policy *p);
enum policy_landlock policy_landlock_compat(const struct policy *p);
const char *policy_run_as_user(const struct policy *p);  /* NULL when unset */
const char *policy_run_as_group(const struct policy *p); /* NULL when unset */

/* The `limits:` section (policy/limits.c); 0 = not set. */
#define POLICY_MAX_PIDS 4194304
#define POLICY_MIN_MEMORY (4ULL << 20)
#define POLICY_MAX_CPUS 1024
struct policy_limits {
    uint32_t pids;        /* processes + threads */
    uint64_t memory;      /* bytes */
    uint32_t cpu_millis;  /* thousandths of a CPU */
    uint32_t max_conns;   /* concurrent proxy connections */
};
const struct policy_limits *policy_limits(const struct policy *p);
/* "512M", "2G", "1048576" (K/M/G/T binary, optional "B"/"iB") -> bytes.
 * Returns 0, -EINVAL or -ERANGE. */
int policy_parse_size(const char *s, uint64_t *out) __attribute__((warn_unused_result));
/* "1", "0.5", "2.25" (0.01..POLICY_MAX_CPUS) -> thousandths. Returns 0,
 * -EINVAL or -ERANGE. */
int policy_parse_cpus(const char *s, uint32_t *millis) __attribute__((warn_unused_result));

/* True when old and neu have the same static sections (filesystem_policy
 * paths as sets, include_workdir, landlock, process, limits), which a
 * sandbox applies once at start; otherwise false and why names the first
 * difference (policy/static_diff.c). */
bool policy_static_same(const struct policy *old, const struct policy *neu, char *why, size_t cap);

/* The source file path the policy was loaded from. */
const char *policy_source(const struct policy *p);
/* Number of network_policies entries, and of endpoints across them. */
size_t policy_n_entries(const struct policy *p);
size_t policy_n_endpoints(const struct policy *p);

#endif
