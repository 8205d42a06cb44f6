/* policy (internal): the compiled policy, shared by the loader, the
 * decision code and the L7 evaluator. Nothing outside src/policy/ includes
 * this; the proxy sees struct policy and struct policy_endpoint as opaque. */
#ifndef CORDON_POLICY_POLICY_INT_H
#define CORDON_POLICY_POLICY_INT_H

#include <stdatomic.h>

#include "policy/policy.h"

#define POLICY_MAX_FILE_BYTES (1u << 20)
#define POLICY_MAX_FS_PATHS 256
#define POLICY_MAX_FS_PATH_LEN 4096
#define POLICY_MAX_HOST_LEN 253
#define POLICY_MAX_KEY_LEN 128
#define POLICY_MAX_PATTERN_LEN 1024
#define POLICY_MAX_TIMEOUT_MS (7ull * 24 * 3600 * 1000)
#define POLICY_DEFAULT_UPGRADE_IDLE_MS (3600ull * 1000)
#define POLICY_DEFAULT_MAX_BODY 65536 /* GraphQL/JSON-RPC/MCP body read for inspection */
#define POLICY_MAX_BODY (16 * 1024 * 1024)
#define POLICY_MAX_BODY_TEXT "16777216"

enum policy_host_kind {
    POLICY_HOST_NONE,     /* hostless: any host (allowed_ips decides) */
    POLICY_HOST_EXACT,    /* lowercase name, compared case-insensitively */
    POLICY_HOST_IP,       /* IP literal: compared as an address */
    POLICY_HOST_WILDCARD, /* OpenShell DNS glob (host.c): '*' within a label, a leading
                           * '**' label for one or more labels */
};

/* The endpoint's protocol (doc/policy.md "Endpoint fields"). */
enum policy_proto {
    POLICY_PROTO_NONE,      /* omitted: TCP passthrough (CONNECT) */
    POLICY_PROTO_TCP,       /* tcp: an L4 endpoint for any TCP client (CONNECT now) */
    POLICY_PROTO_SQL,       /* sql + enforcement: audit: relayed as TCP, not inspected */
    POLICY_PROTO_REST,      /* rest (also rules/access without protocol) */
    POLICY_PROTO_WEBSOCKET, /* websocket: the upgrade request is checked */
    POLICY_PROTO_GRAPHQL,   /* graphql: operations in the body (graphql.c) */
    POLICY_PROTO_JSONRPC,   /* json-rpc: methods in the body (jsonrpc.c) */
    POLICY_PROTO_MCP,       /* mcp: JSON-RPC methods and tools/call tool names */
};

struct policy_binary {
    char *path;   /* as written */
    bool is_glob; /* contains '*' */
    char *target; /* realpath() of a non-glob symlink at load time, or NULL */
    bool allow_env_injection; /* keeps its identity with LD_PRELOAD & co. set */
};

struct policy_qmatch {
    char *key;     /* decoded parameter name */
    char **globs;  /* a value matches if it matches any of these */
    size_t n_globs;
};

struct policy_rule {
    bool deny;
    bool in_deny_rules; /* written under deny_rules (else under rules) */
    int src_index;      /* index in that list */
    char *method;  /* HTTP: uppercase, or "*"; JSON-RPC/MCP: the RPC method as written */
    char *path;    /* normalized glob, "**" = anything; NULL for body rules */
    struct policy_qmatch *query;
    size_t n_query;
    /* GraphQL rules (protocol: graphql) */
    char *op_type;  /* "query", "mutation", "subscription" or "*" */
    char *op_name;  /* glob, or NULL for any */
    char **fields;  /* root-field globs; NULL = any */
    size_t n_fields;
    char *pq_id;    /* graphql_persisted_queries: the hash or saved-query id */
    /* protocol: websocket: an OpenShell GraphQL-over-WebSocket operation
     * rule (op_type/op_name/fields); validated, never matched (cordon does
     * not inspect messages), and its presence refuses the upgrade */
    bool ws_graphql;
    /* MCP tools/call rules: tool-name globs; NULL = any tool */
    char **tools;
    size_t n_tools;
};

struct policy_entry;

struct policy_endpoint {
    const struct policy_entry *entry;
    int index; /* in entry->endpoints */
    unsigned line, col; /* of the endpoint map in the file */
    enum policy_host_kind host_kind;
    char *host;          /* as written, lowercased; "" when hostless */
    const char *suffix;  /* POLICY_HOST_WILDCARD: points into host at ".suffix" */
    int ip_family;       /* POLICY_HOST_IP */
    uint8_t ip[16];
    uint16_t *ports;
    size_t n_ports;
    bool rest; /* HTTP requests are inspected (REST, WEBSOCKET, GRAPHQL, JSONRPC, MCP) */
    enum policy_proto proto;
    char *path_sel;           /* endpoint `path`: normalized glob, or NULL for every path */
    bool allow_encoded_slash; /* %2F kept in a segment instead of refused */
    size_t max_body;          /* GraphQL/JSON-RPC/MCP: body bytes read for inspection */
    bool persisted_allow;     /* graphql: persisted_queries: allow_registered */
    struct policy_rule *persisted; /* graphql_persisted_queries (op_name holds the key) */
    size_t n_persisted;
    bool mcp_strict_tools;    /* mcp.strict_tool_names (default true) */
    bool mcp_allow_known;     /* mcp.allow_all_known_mcp_methods */
    enum policy_tls tls;
    enum policy_enforcement enforcement;
    enum policy_access access;
    struct policy_rule *rules;
    size_t n_rules;
    struct policy_cidr *ips;
    size_t n_ips;
    size_t n_allowed_ips; /* ips[0..n) written in allowed_ips (the rest: the host's IP) */
    uint64_t idle_timeout_ms;
    uint64_t upgrade_idle_timeout_ms;
};

struct policy_entry {
    char *key;
    bool no_binaries; /* loaded without binaries: matches no binary */
    char *name; /* optional "name:" field, or NULL */
    struct policy_endpoint *endpoints;
    size_t n_endpoints;
    struct policy_binary *binaries;
    size_t n_binaries;
};

struct policy {
    atomic_uint refs;
    char *source;
    struct policy_entry *entries; /* sorted by key */
    size_t n_entries;
    size_t n_endpoints;
    struct policy_fs fs;
    bool fs_given; /* the file has a filesystem_policy section */
    enum policy_landlock landlock;
    char *run_as_user, *run_as_group;
    struct policy_limits limits;
};

/* Frees a policy whatever its state of construction (loader failure path). */
void policy_free_internal(struct policy *p);

/* True when port is one of the endpoint's ports. */
bool policy_endpoint_has_port(const struct policy_endpoint *ep, uint16_t port);
/* True when m is a valid HTTP method token (RFC 9110 §5.6.2), 1-32 chars. */
bool policy_method_ok(const char *m);
/* Value of a hex digit, or -1. */
int policy_hexval(char c);

/* Path normalization shared by L7 requests (strict = false) and rule
 * patterns (strict = true: dot segments and empty segments are errors
 * instead of being resolved, '*' is allowed). in[0..len) is the raw path
 * without query; out gets the normalized path (cap bytes incl. NUL).
 * Returns 0, or -EINVAL with *why set to a static explanation. */
#define POLICY_NORM_STRICT 1u       /* a rule pattern, not a request */
#define POLICY_NORM_ENCODED_SLASH 2u /* keep %2F inside a segment (allow_encoded_slash) */
int policy_path_normalize(const char *in, size_t len, unsigned flags, char *out, size_t cap,
                          const char **why);

/* One GraphQL request (l7_body.c): the document (or NULL for a hash-only
 * persisted query), operationName, persisted hash and id (each may be
 * NULL). True when allowed; otherwise out holds the denial. */
bool policy_l7_graphql_op(const struct policy_endpoint *ep, const char *query,
                          const char *op_name, const char *hash, const char *id,
                          struct policy_l7_result *out);

/* Host patterns (host.c). policy_host_pattern_problem returns NULL when the
 * lowercase pattern h (containing '*') has a shape OpenShell accepts, else
 * what is wrong. policy_host_glob_match matches a lowercase host name. */
const char *policy_host_pattern_problem(const char *h);
bool policy_host_glob_match(const char *pattern, const char *host);

/* Splits s at every '.' into label spans (lab[i], len[i]); empty labels
 * are kept (a trailing dot gives an empty last label). Returns the label
 * count, or 0 when there are more than POLICY_HOST_MAX_LABELS. The arrays
 * hold POLICY_HOST_MAX_LABELS entries. */
#define POLICY_HOST_MAX_LABELS 128
size_t policy_host_labels(const char *s, const char **lab, size_t *len);
/* Whether two lowercase host patterns (either may be an exact name) can
 * match a common host name (ambiguity.c). */
bool policy_host_patterns_overlap(const char *a, const char *b);
/* How specific an endpoint `path` selector is: its characters other than
 * '*' (NULL, every path: 0). Of two selectors matching a request, the more
 * specific one judges it (ambiguity.c; used by l7.c). */
size_t policy_path_specificity(const char *path);

#endif
