/* server/cgroup: one control group per sandbox, made by the local driver.
 *
 * Every process of a sandbox (the `cordon run` supervisor, its init, execd,
 * the entrypoint, everything they start) is born inside the group: the
 * spawned child joins it before exec. That gives the driver freeze/thaw
 * (pause, resume), kill-all (delete, expiry), the member list, and the
 * resource limits. cgroup v2 when /sys/fs/cgroup is the unified hierarchy,
 * else v1 (freezer required; pids, memory, cpu when limits ask for them).
 * Groups are made under the server's own group, named cordon-<sandbox id>. */
#ifndef CORDON_SERVER_CGROUP_H
#define CORDON_SERVER_CGROUP_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#define CG_MAX_DIRS 4

struct sbx_cgroup {
    int v2;
    size_t n;
    char dirs[CG_MAX_DIRS][512]; /* dirs[0]: the freezer (v1) or the group (v2) */
};

/* Creates the group(s) for name and applies limits (resourceLimits: cpu
 * "500m"/"2", memory "512Mi"/"1G"/bytes, pids N; NULL = none). Returns 0 or
 * -errno with err filled (what, which file, how to fix); -EINVAL for a bad
 * limit. Nothing is left behind on failure. */
int server_cgroup_create(const char *name, const json_t *limits, struct sbx_cgroup *cg, char *err,
                  size_t cap) __attribute__((warn_unused_result));
/* Moves the calling process into the group. Async-signal-safe (for the
 * child between fork and exec). Returns 0 or -errno. */
int server_cgroup_enter(const struct sbx_cgroup *cg);
/* Freezes (1) or thaws (0). Returns 0 or -errno. */
int server_cgroup_freeze(const struct sbx_cgroup *cg, int frozen);
/* Member pids (up to cap). Returns the count or -errno. */
int server_cgroup_pids(const struct sbx_cgroup *cg, pid_t *out, size_t cap);
/* SIGKILLs every member (frozen first so nothing forks away). Returns the
 * number of members signalled or -errno. */
int server_cgroup_kill(const struct sbx_cgroup *cg);
/* Removes the group(s); -EBUSY while members remain. */
int server_cgroup_remove(const struct sbx_cgroup *cg);

/* JSON form for the driver's state store, and back. */
json_t *server_cgroup_to_json(const struct sbx_cgroup *cg);
int server_cgroup_from_json(const json_t *j, struct sbx_cgroup *cg);

/* Parses a limit value. cpu -> millicores, memory -> bytes. 0 or -EINVAL. */
int server_cgroup_parse_cpu(const char *s, unsigned long long *millicores);
int server_cgroup_parse_memory(const char *s, unsigned long long *bytes);

#endif
