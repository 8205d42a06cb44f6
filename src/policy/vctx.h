/* policy/vctx (internal): the validation context used while loading.
 *
 * Collects every diagnostic (never stops at the first), tracks the field
 * path ("network_policies.github.endpoints[0].port") and walks YAML maps
 * against a field table, reporting wrong types, duplicate keys and unknown
 * fields (with a "did you mean" suggestion).
 *
 * Allocation failure while loading aborts the process (STYLE: allowed
 * during config load), so the helpers below never return NULL. */
#ifndef CORDON_POLICY_VCTX_H
#define CORDON_POLICY_VCTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy_int.h"
#include "policy/ytree.h"

#define VCTX_MAX_DIAGS 1000
#define VCTX_PATH_CAP 512

struct vdiag {
    unsigned line, col;
    size_t seq;
    char *text;
};

struct vctx {
    const char *file;
    struct vdiag *d;
    size_t n, cap;
    size_t n_errors, n_warnings;
    char path[VCTX_PATH_CAP];
    size_t plen;
};

/* Reports an error or a warning at node (or at line:col when at is NULL and
 * line is given through v_*_at). The message follows the field path:
 * "FILE:L:C: error: PATH: <fmt>". */
void v_error(struct vctx *c, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void v_warn(struct vctx *c, const struct ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void v_error_at(struct vctx *c, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Appends to the field path; returns the mark to restore with v_pop. */
size_t v_push(struct vctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void v_pop(struct vctx *c, size_t mark);

/* Moves the collected diagnostics, in file order, into d. */
void v_flush(struct vctx *c, struct policy_diag *d);

/* One known field of a map: fn is called with the value node while the
 * field path includes the field name. */
struct vfield {
    const char *name;
    void (*fn)(struct vctx *c, const struct ynode *val, void *obj);
};

/* Walks map n: reports "expected a map" (what = what is allowed), duplicate
 * keys, non-string keys and unknown fields; calls each known field's fn.
 * Returns false when n is not a map. */
bool v_map(struct vctx *c, const struct ynode *n, const struct vfield *fields, size_t nf,
           void *obj, const char *what);
/* Reports duplicate and non-string keys of map n; returns false when the
 * key at pair index i (items[2*i]) must be skipped. */
bool v_map_key_ok(struct vctx *c, const struct ynode *n, size_t i);

/* Typed getters: on a type mismatch they report "expected X, got Y
 * (allowed)" and return false. v_str accepts strings and integers (as
 * written). */
bool v_str(struct vctx *c, const struct ynode *n, const char **out, const char *allowed);
bool v_int(struct vctx *c, const struct ynode *n, int64_t min, int64_t max, int64_t *out,
           const char *allowed);
bool v_bool(struct vctx *c, const struct ynode *n, bool *out);
bool v_seq(struct vctx *c, const struct ynode *n, const char *allowed);
/* Matches a string value against a NULL-terminated set of allowed values;
 * reports "'x' is not allowed (allowed: a, b; did you mean 'a'?)". Returns
 * the index or -1. */
int v_enum(struct vctx *c, const struct ynode *n, const char *const *allowed);
/* The same, ignoring ASCII case (OpenShell reads protocol names so). */
int v_enum_nocase(struct vctx *c, const struct ynode *n, const char *const *allowed);

/* The closest candidate within edit distance 2, or NULL. */
const char *v_suggest(const char *s, const char *const *cands, size_t n);

void *v_calloc(size_t n, size_t size);
char *v_strdup(const char *s);

/* ---- loader pieces (load.c, load_endpoint.c) ---- */

/* Validates and compiles one endpoint map into ep (zeroed by the caller). */
void v_endpoint(struct vctx *c, const struct ynode *n, struct policy_endpoint *ep);
/* Validates the `limits:` map into out (policy/limits.c). */
void v_limits(struct vctx *c, const struct ynode *n, struct policy_limits *out);
/* Warns when s holds '?', '[' or '{': literal here, glob syntax in
 * OpenShell. */
void v_warn_metachars(struct vctx *c, const struct ynode *n, const char *s);
/* An error (false) when a path glob holds '[', '{', '}' or a backslash:
 * syntax to OpenShell, literal to cordon's path globs. */
bool v_path_metachars_ok(struct vctx *c, const struct ynode *n, const char *s);
/* Rules and deny_rules of an endpoint whose other fields were read
 * (load_rules.c); either node may be NULL. */
void v_endpoint_rules(struct vctx *c, struct policy_endpoint *ep, const struct ynode *rules,
                      const struct ynode *deny_rules);
/* One GraphQL operation map {operation_type, operation_name, fields} into r
 * (graphql_persisted_queries values; load_rules.c). */
void v_graphql_operation(struct vctx *c, const struct policy_endpoint *ep, const struct ynode *n,
                         struct policy_rule *r);
/* Refuses endpoints that can match the same host and port but disagree on
 * tls (ambiguity.c); run on a policy loaded without errors. */
void v_ambiguity(struct vctx *c, const struct policy *p);
/* network_middlewares, checked and reported as not applied (load_unapplied.c). */
void v_network_middlewares(struct vctx *c, const struct ynode *n);
/* Refuses a fail-closed middleware (on_error omitted or fail_closed) whose
 * selector may pick a tls: skip endpoint, as OpenShell does; run on a
 * policy loaded without errors (load_unapplied.c). */
void v_middlewares_tls_skip(struct vctx *c, const struct ynode *root, const struct policy *p);
/* One credential field of an endpoint (credential_binding, ...), checked
 * and reported as not applied (load_unapplied.c). */
void v_credential_field(struct vctx *c, const char *field, const struct ynode *n);
/* The credential fields' combinations OpenShell refuses (signing without
 * signing_service, signing with a body rewrite), in endpoint map ep. */
void v_credential_pairs(struct vctx *c, const struct ynode *ep);

#endif
