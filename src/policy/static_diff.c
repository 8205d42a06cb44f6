/* policy/static_diff: do two policies have the same static sections?
 *
 * filesystem_policy, landlock, process and limits are applied once, when a
 * sandbox starts (Landlock, the user switch, the cgroup); a reload can only
 * replace the network sections. A reload whose static sections differ from
 * the running ones is refused by the caller, with the difference named.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"
#include "core/banned.h"

static bool listed(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

/* The first path of a not in b (as a set), or NULL. */
static const char *missing(char *const *a, size_t na, char *const *b, size_t nb)
{
    for (size_t i = 0; i < na; i++)
        if (!listed(b, nb, a[i]))
            return a[i];
    return NULL;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool policy_static_same(const struct policy *old, const struct policy *neu, char *why, size_t cap)
{
    const struct policy_fs *a = policy_filesystem(old), *b = policy_filesystem(neu);
    const char *s;
    static const char *const list[2] = {"read_only", "read_write"};
    for (int k = 0; k < 2; k++) {
        char *const *va = k ? a->read_write : a->read_only, *const *vb = k ? b->read_write : b->read_only;
        size_t na = k ? a->n_read_write : a->n_read_only, nb = k ? b->n_read_write : b->n_read_only;
        if ((s = missing(va, na, vb, nb))) {
            snprintf(why, cap, "filesystem_policy.%s: '%.256s' was removed", list[k], s);
            return false;
        }
        if ((s = missing(vb, nb, va, na))) {
            snprintf(why, cap, "filesystem_policy.%s: '%.256s' was added", list[k], s);
            return false;
        }
    }
    if (a->include_workdir != b->include_workdir) {
        snprintf(why, cap, "filesystem_policy.include_workdir changed to %s",
                 b->include_workdir ? "true" : "false");
        return false;
    }
    if (policy_landlock_compat(old) != policy_landlock_compat(neu)) {
        snprintf(why, cap, "landlock.compatibility changed");
        return false;
    }
    if (!same_str(policy_run_as_user(old), policy_run_as_user(neu)) ||
        !same_str(policy_run_as_group(old), policy_run_as_group(neu))) {
        snprintf(why, cap, "process.run_as_user/run_as_group changed");
        return false;
    }
    const struct policy_limits *la = policy_limits(old), *lb = policy_limits(neu);
    if (la->pids != lb->pids || la->memory != lb->memory || la->cpu_millis != lb->cpu_millis ||
        la->max_conns != lb->max_conns) {
        snprintf(why, cap, "limits changed");
        return false;
    }
    return true;
}
