/* proxy/identify: IDENTIFY — which program opened this connection, once
 * per client connection (src/identity/ does the work). The result is
 * copied into c->ident, sized to what it holds. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "identity/identity.h"
#include "proxy/internal.h"
#include "core/banned.h"

static void copy_identity(struct conn *c, const struct identity *id, int rc)
{
    struct conn_identity *ci = &c->ident;
    ci->pid = id->pid;
    ci->exe = id->exe[0] ? strdup(id->exe) : NULL;
    ci->ancestors = calloc(id->n_ancestors ? id->n_ancestors : 1, sizeof(char *));
    for (size_t i = 0; ci->ancestors && i < id->n_ancestors; i++)
        ci->ancestors[ci->n_ancestors++] = strdup(id->ancestors[i]);
    if (rc < 0 || id->reason_code) {
        ci->reason_code = id->reason_code ? id->reason_code : IDENTITY_REASON_UNRESOLVED;
        ci->detail = strdup(id->detail[0] ? id->detail : "the calling process could not be identified");
    }
}

enum conn_step identify_enter(struct conn *c)
{
    struct identity *scratch = c->w->ident_scratch;
    memset(scratch, 0, offsetof(struct identity, ancestors));
    scratch->exe[0] = '\0';
    scratch->detail[0] = '\0';
    scratch->reason_code = NULL;
    int rc = identity_resolve(c->w->proxy->ident, (struct sockaddr *)&c->peer,
                              (struct sockaddr *)&c->local, scratch);
    copy_identity(c, scratch, rc);
    c->ident_done = true;
    return CONN_STEP_NEXT;
}
