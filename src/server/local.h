/* server/local: the local sandbox driver.
 *
 * Each sandbox is a `cordon run` child of the server (netns, fence,
 * Landlock, seccomp, egress proxy) running `cordon execd` on the execd port
 * (OpenSandbox's 44772) with the entrypoint started beside it, all inside a
 * cgroup of its own (sandbox/cgroup.h: cordon/sbx-<id>, created here; `cordon
 * run --cgroup-inherit` stays in it) for pause, resume, kill-all and limits.
 *
 *   create   spawn -> Pending -> (sandbox address found in its network
 *            namespace, execd accepts a connection) -> Running, or Failed
 *            with the reason (cordon run's exit and its last log line, or
 *            the create timeout) and every process killed
 *   expiry   a timer per sandbox; at expiry the sandbox is removed
 *   remove   cgroup_kill (v2 cgroup.kill; v1 freeze, SIGKILL all, thaw)
 *            repeated from the loop without blocking; done when the
 *            group is empty (the network namespace goes with its last
 *            process); then the row and DATA/sandboxes/ID are removed
 *   restart  every row is checked: a sandbox whose supervisor still runs
 *            (same pid and start time, members in its cgroup) is adopted
 *            (pidfd watches it, expiry re-armed, or removed if already
 *            past); otherwise it is marked Failed with the reason, never
 *            forgotten
 * State lives in DATA/sandboxes.db (server/store), owned by this driver. */
#ifndef CORDON_SERVER_LOCAL_H
#define CORDON_SERVER_LOCAL_H

#include <stddef.h>
#include <stdint.h>

#include "server/driver.h"

struct loop;

struct local_cfg {
    const char *data_dir;
    const char *cordon_exe;  /* the binary to run (`cordon run`, `cordon execd`) */
    const char *policy;      /* policy file for every sandbox */
    const char *const *images; /* image names that map to the host filesystem */
    size_t nimages;
    uint16_t execd_port;
    uint64_t create_timeout_ms;
    const char *subnet_pool; /* NULL: cordon run's default */
    const char *resolver;    /* NULL: cordon run's default */
    unsigned pool;           /* idle sandboxes kept started ahead (--pool) */
};

int local_driver_new(struct loop *l, const struct local_cfg *cfg, struct sbx_driver **out,
                     char *err, size_t cap) __attribute__((warn_unused_result));

#endif
