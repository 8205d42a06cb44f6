/* server/limits: OpenSandbox's resourceLimits (Kubernetes quantities) into
 * the limits of the sandbox's cgroup (sandbox/cgroup.h). The cgroup itself
 * is sandbox/cgroup's; this is only the translation of the API's format. */
#ifndef CORDON_SERVER_LIMITS_H
#define CORDON_SERVER_LIMITS_H

#include <jansson.h>
#include <stddef.h>

#include "sandbox/cgroup.h"

/* resourceLimits (an object of strings; NULL = none): cpu "500m"/"2",
 * memory "512Mi"/"1G"/bytes (at least 4096), pids N (1..4194304); any
 * other key is refused. Fills out (zero = no limit). Returns 0 or -EINVAL
 * with err saying which key, what was given and what to give. */
int server_limits_parse(const json_t *limits, struct cgroup_limits *out, char *err, size_t cap)
    __attribute__((warn_unused_result));
/* One Kubernetes quantity: cpu -> thousandths of a CPU (0 < v <= 4096
 * CPUs), memory -> bytes (decimal K M G T, binary Ki Mi Gi Ti, at least
 * 4096). Return 0 or -EINVAL. */
int server_limits_cpu(const char *s, unsigned long long *millicores)
    __attribute__((warn_unused_result));
int server_limits_memory(const char *s, unsigned long long *bytes)
    __attribute__((warn_unused_result));

#endif
