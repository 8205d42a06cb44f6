/* libFuzzer target: the GraphQL document parser (policy_graphql_parse) on
 * peer-controlled documents. Input: "OPNAME\nDOCUMENT" (an empty first line
 * means no operationName). Besides the sanitizers, checks that a parsed
 * operation has a known type and sorted, distinct root fields. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/graphql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct policy_gql_op op;
    char name[POLICY_GQL_NAME_MAX + 1] = "";
    const char *nl = memchr(data, '\n', size);
    const char *doc = (const char *)data, *why;
    size_t len = size;
    if (nl && (size_t)(nl - (const char *)data) <= POLICY_GQL_NAME_MAX) {
        size_t nlen = (size_t)(nl - (const char *)data);
        memcpy(name, data, nlen);
        name[nlen] = '\0';
        if (memchr(name, '\0', nlen))
            return 0;
        doc = nl + 1;
        len = size - nlen - 1;
    }
    if (policy_graphql_parse(doc, len, name, &op, &why) != 0)
        return 0;
    if (strcmp(op.type, "query") && strcmp(op.type, "mutation") && strcmp(op.type, "subscription"))
        abort();
    for (size_t i = 1; i < op.n_fields; i++)
        if (strcmp(op.fields[i - 1], op.fields[i]) >= 0)
            abort();
    return 0;
}
