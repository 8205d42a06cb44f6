/* server/sbxpolicy: the policy a new sandbox runs under, from its create request.
 *
 *   base      the server's --policy; or a policy named in
 *             extensions["cordon.io/policy"] (DIR/NAME.yaml from --policy-dir);
 *             or a whole policy YAML in extensions["cordon.io/policy-inline"]
 *   egress    OpenSandbox's networkPolicy, when given, replaces the base's
 *             network_policies (server/netpolicy); the base keeps its
 *             filesystem, process, landlock and limits sections
 *
 * The result is loaded with the policy loader before any sandbox starts, so
 * a bad policy is a 400 naming the field (and file:line:column for YAML),
 * never a sandbox that fails to start. The API layer calls this; the driver
 * receives the text (struct sbx_spec.policy_yaml). */
#ifndef CORDON_SERVER_SBXPOLICY_H
#define CORDON_SERVER_SBXPOLICY_H

#include <jansson.h>
#include <stddef.h>

#include "server/netpolicy.h"

#define SBXPOLICY_EXT_NAME "cordon.io/policy"
#define SBXPOLICY_EXT_INLINE "cordon.io/policy-inline"

struct sbxpolicy_cfg {
    const char *base_path; /* the server's --policy */
    const char *dir;       /* --policy-dir; NULL: policies by name are refused */
    struct netpolicy_opts np;
};

/* Builds the policy for a create request body. Returns 0 with *out NULL
 * when the server's --policy applies unchanged, 0 with *out (malloc'd,
 * NUL-terminated, *len bytes) for a policy of the sandbox's own, -EINVAL
 * when the request is wrong (err: the field, what is wrong, how to fix),
 * or -errno when the server failed (err says why). */
int sbxpolicy_for_request(const struct sbxpolicy_cfg *cfg, const json_t *body, char **out,
                          size_t *len, char *err, size_t cap) __attribute__((warn_unused_result));

#endif
