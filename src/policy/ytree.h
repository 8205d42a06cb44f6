/* policy/ytree (internal): a YAML document as a small tree with marks.
 *
 * Built from libyaml's event stream (not its document API) so that aliases
 * are refused before anything can expand them, nesting depth and node count
 * are capped, and every node keeps its 1-based line and column. Map keys are
 * kept in file order with duplicates; the validator reports duplicates,
 * because it knows the field path. */
#ifndef CORDON_POLICY_YTREE_H
#define CORDON_POLICY_YTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define YTREE_MAX_DEPTH 64
#define YTREE_MAX_NODES 200000
#define YTREE_MAX_ITEMS 10000 /* per map or sequence */

enum ynode_kind { YN_SCALAR, YN_SEQ, YN_MAP };
/* Resolved type of a scalar: plain scalars follow the YAML 1.2 core schema
 * (null, true/false, decimal integers); quoted ones are always strings. */
enum yscalar_type { YS_STR, YS_INT, YS_BOOL, YS_NULL };

struct ynode {
    enum ynode_kind kind;
    unsigned line, col; /* 1-based */
    /* scalar */
    enum yscalar_type type;
    char *str; /* NUL-terminated scalar text (may contain NUL: see len) */
    size_t len;
    int64_t ival;    /* YS_INT; INT64_MAX when it does not fit */
    bool bval;       /* YS_BOOL */
    /* sequence: items; map: key, value, key, value ... */
    struct ynode **items;
    size_t n, cap;
};

struct ytree_error {
    unsigned line, col;
    char msg[256];
};

/* Parses exactly one YAML document from data[0..len). On success *root is
 * the document's root node (NULL for an empty document) and the caller
 * frees it with ytree_free. Returns 0, -EINVAL (syntax error, alias, tag,
 * several documents or a limit; err says what and where) or -ENOMEM. */
int ytree_parse(const char *data, size_t len, struct ynode **root, struct ytree_error *err)
    __attribute__((warn_unused_result));
void ytree_free(struct ynode *n);

/* "a string", "an integer", "a boolean", "null", "a list", "a map". */
const char *ytree_type_name(const struct ynode *n);

#endif
