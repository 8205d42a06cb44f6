/* server/netpolicy: OpenSandbox's `networkPolicy` as a cordon policy.
 *
 * OpenSandbox's egress policy (its lifecycle spec, NetworkPolicy) is
 *   {"defaultAction": "allow"|"deny", "egress": [{"action": "allow"|"deny",
 *    "target": "example.com" | "*.example.com"}, ...]}
 * evaluated first match wins, then defaultAction (absent: deny). A target is
 * a DNS name or "*." + a name, which matches every name below it at any depth
 * (never the name itself).
 *
 * A cordon policy is an allow list: what no entry allows is denied. So:
 *   - defaultAction deny (or absent): each allow rule becomes one
 *     network_policies entry "egress_NNNN" (NNNN = the rule's index) with one
 *     endpoint: the host ("*.x" is written "**.x", cordon's any-depth form),
 *     the configured ports, the configured allowed_ips (for hosts on private
 *     addresses), and a binary glob matching every program (OpenSandbox
 *     does not tell programs apart). A deny rule before an allow rule it fully covers drops that
 *     allow; a deny that would carve a part out of a later allow cannot be
 *     written as an allow list and is refused; every other deny is already
 *     the default.
 *   - defaultAction allow: refused ("everything except" is not an allow
 *     list).
 *   - IP and CIDR targets: refused (OpenSandbox's API documents FQDNs and
 *     wildcards only; a cordon policy with allowed_ips says it exactly).
 * Every refusal is -EINVAL with a message naming the field
 * ("networkPolicy.egress[2].target: ...") and how to fix it. Fail closed: an
 * empty egress list allows nothing.
 *
 * netpolicy_splice() puts the translated network_policies into a base policy
 * (its filesystem, process, landlock and limits sections stay), replacing the
 * base's own network_policies. */
#ifndef CORDON_SERVER_NETPOLICY_H
#define CORDON_SERVER_NETPOLICY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define NETPOLICY_MAX_RULES 4096 /* OpenSandbox's egress sidecar's cap */

struct netpolicy_opts {
    const uint16_t *ports; /* the ports an allowed host may be reached on */
    size_t nports;
    const char *const *allowed_ips; /* CIDRs added as allowed_ips (may be empty) */
    size_t n_allowed_ips;
};

/* Translates np (the request's networkPolicy object) into a YAML block
 * "network_policies:\n..." (NUL-terminated, malloc'd, caller frees).
 * Returns 0, -EINVAL (err says which field and why) or -ENOMEM. */
int netpolicy_translate(const json_t *np, const struct netpolicy_opts *o, char **out,
                        char *err, size_t cap) __attribute__((warn_unused_result));

/* base (len bytes of a policy YAML whose top level is a block mapping) with
 * its top-level network_policies removed and block appended in its place at
 * the end of the mapping. *out is malloc'd and NUL-terminated, *outlen its
 * length. Returns 0, -EINVAL (not YAML, not a block mapping; err says so) or
 * -ENOMEM. */
int netpolicy_splice(const char *base, size_t len, const char *block, char **out,
                     size_t *outlen, char *err, size_t cap) __attribute__((warn_unused_result));

/* Maps a policy-loader diagnostic about a translated entry
 * ("...network_policies.egress_0003...") to the rule's index; -1 otherwise. */
int netpolicy_rule_of(const char *diag_line);

#endif
