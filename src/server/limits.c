/* server/limits: resourceLimits -> struct cgroup_limits (see limits.h). */
#include "server/limits.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parse.h"
#include "core/banned.h"

int server_limits_cpu(const char *s, unsigned long long *milli)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0))
        return -EINVAL;
    if (strcmp(end, "m") == 0)
        v /= 1000.0;
    else if (*end)
        return -EINVAL;
    if (v > 4096)
        return -EINVAL;
    *milli = (unsigned long long)(v * 1000.0 + 0.5);
    return *milli ? 0 : -EINVAL;
}

int server_limits_memory(const char *s, unsigned long long *bytes)
{
    static const struct { const char *suf; unsigned long long mul; } sufs[] = {
        {"", 1},           {"K", 1000ull},       {"M", 1000000ull},       {"G", 1000000000ull},
        {"T", 1000000000000ull}, {"Ki", 1ull << 10}, {"Mi", 1ull << 20}, {"Gi", 1ull << 30},
        {"Ti", 1ull << 40}};
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        return -EINVAL;
    for (size_t i = 0; i < sizeof(sufs) / sizeof(sufs[0]); i++)
        if (strcmp(end, sufs[i].suf) == 0) {
            if (v > (1ull << 50) / sufs[i].mul)
                return -EINVAL;
            *bytes = v * sufs[i].mul;
            return *bytes >= 4096 ? 0 : -EINVAL;
        }
    return -EINVAL;
}

int server_limits_parse(const json_t *j, struct cgroup_limits *l, char *err, size_t cap)
{
    memset(l, 0, sizeof(*l));
    if (!j)
        return 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        const char *s = json_string_value(v);
        unsigned long long n;
        if (!s) {
            snprintf(err, cap, "resourceLimits.%s: must be a string", k);
            return -EINVAL;
        }
        if (strcmp(k, "cpu") == 0) {
            if (server_limits_cpu(s, &n) < 0) {
                snprintf(err, cap, "resourceLimits.cpu: '%s' is not a CPU amount (use "
                         "\"500m\" or \"2\")", s);
                return -EINVAL;
            }
            l->cpu_millis = (uint32_t)n;
        } else if (strcmp(k, "memory") == 0) {
            if (server_limits_memory(s, &n) < 0) {
                snprintf(err, cap, "resourceLimits.memory: '%s' is not a memory amount (use "
                         "\"512Mi\", \"2Gi\" or bytes, at least 4096)", s);
                return -EINVAL;
            }
            l->memory = n;
        } else if (strcmp(k, "pids") == 0) {
            uint32_t p;
            if (parse_u32_str(s, 1, 4194304, &p) < 0) {
                snprintf(err, cap, "resourceLimits.pids: '%s' (a number 1..4194304)", s);
                return -EINVAL;
            }
            l->pids = p;
        } else {
            snprintf(err, cap, "resourceLimits.%s: not supported by the local driver "
                     "(supported: cpu, memory, pids)", k);
            return -EINVAL;
        }
    }
    return 0;
}
