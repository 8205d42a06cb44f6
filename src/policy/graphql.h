/* policy/graphql: the part of a GraphQL executable document (GraphQL spec,
 * October 2021, §2) that L7 rules look at: which operation runs, its type,
 * its name, and its root fields (aliases resolved to field names; inline
 * fragments and fragment spreads at the root expanded, as OpenShell does).
 * The whole document is checked for syntax; a document that does not parse
 * is never allowed. */
#ifndef CORDON_POLICY_GRAPHQL_H
#define CORDON_POLICY_GRAPHQL_H

#include <stddef.h>

#define POLICY_GQL_MAX_FIELDS 64  /* distinct root fields; more is an error */
#define POLICY_GQL_NAME_MAX 128   /* longer names are an error */
#define POLICY_GQL_MAX_TOKENS 20000
#define POLICY_GQL_MAX_DEPTH 128

struct policy_gql_op {
    char type[16];                        /* "query", "mutation" or "subscription" */
    char name[POLICY_GQL_NAME_MAX + 1];   /* "" for an anonymous operation */
    size_t n_fields;                      /* sorted, distinct */
    char fields[POLICY_GQL_MAX_FIELDS][POLICY_GQL_NAME_MAX + 1];
};

/* Parses doc[0..len) and selects the operation named op_name (NULL or ""
 * when the document has exactly one operation). Fills out and returns 0, or
 * returns -EINVAL with *why set to a static explanation (syntax error, not
 * an executable document, no or ambiguous operation, limits exceeded).
 * No allocation beyond a bounded stack; thread-safe. */
int policy_graphql_parse(const char *doc, size_t len, const char *op_name,
                         struct policy_gql_op *out, const char **why)
    __attribute__((warn_unused_result));

#endif
