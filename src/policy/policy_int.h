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

enum policy_host_kind {
    POLICY_HOST_NONE,     /* hostless: any host (allowed_ips decides) */
    POLICY_HOST_EXACT,    /* lowercase name, compared case-insensitively */
    POLICY_HOST_IP,       /* IP literal: compared as an address */
    POLICY_HOST_WILDCARD, /* "*.suffix" / "**.suffix": one or more labels */
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
    char *method;  /* uppercase, or "*" */
    char *path;    /* normalized glob, "**" = anything */
    struct policy_qmatch *query;
    size_t n_query;
};

struct policy_entry;

struct policy_endpoint {
    const struct policy_entry *entry;
    int index; /* in entry->endpoints */
    enum policy_host_kind host_kind;
    char *host;          /* as written, lowercased; "" when hostless */
    const char *suffix;  /* POLICY_HOST_WILDCARD: points into host at ".suffix" */
    int ip_family;       /* POLICY_HOST_IP */
    uint8_t ip[16];
    uint16_t *ports;
    size_t n_ports;
    bool rest;
    enum policy_tls tls;
    enum policy_enforcement enforcement;
    enum policy_access access;
    struct policy_rule *rules;
    size_t n_rules;
    struct policy_cidr *ips;
    size_t n_ips;
    uint64_t idle_timeout_ms;
    uint64_t upgrade_idle_timeout_ms;
};

struct policy_entry {
    char *key;
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
int policy_path_normalize(const char *in, size_t len, bool strict, char *out, size_t cap,
                          const char **why);

#endif
