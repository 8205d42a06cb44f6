/* policy/limits: the `limits:` section (per-sandbox resource limits) and
 * the size / CPU value syntax it shares with `cordon run`'s flags.
 *
 *   limits:
 *     pids: 512          # processes and threads (default 1024)
 *     memory: 2G         # bytes, or with K/M/G/T (binary); default none
 *     cpu: 1.5           # CPUs' worth of time; default none
 *     max_conns: 256     # concurrent proxy connections; default none
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "policy/policy.h"
#include "policy/vctx.h"
#include "core/banned.h"

int policy_parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -ERANGE;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0)
        return -EINVAL;
    unsigned shift = 0;
    switch (s[i]) {
    case '\0':
        break;
    case 'k': case 'K':
        shift = 10;
        break;
    case 'm': case 'M':
        shift = 20;
        break;
    case 'g': case 'G':
        shift = 30;
        break;
    case 't': case 'T':
        shift = 40;
        break;
    default:
        return -EINVAL;
    }
    if (shift) {
        i++;
        if (s[i] == 'i' && (s[i + 1] == 'B' || s[i + 1] == 'b'))
            i += 2;
        else if (s[i] == 'B' || s[i] == 'b')
            i++;
    }
    if (s[i] != '\0')
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -ERANGE;
    *out = v << shift;
    return 0;
}

int policy_parse_cpus(const char *s, uint32_t *millis)
{
    uint64_t whole = 0, frac = 0, scale = 1000;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        whole = whole * 10 + (uint64_t)(s[i] - '0');
        if (whole > POLICY_MAX_CPUS)
            return -ERANGE;
    }
    bool digits = i > 0;
    if (s[i] == '.') {
        i++;
        for (; s[i] >= '0' && s[i] <= '9'; i++) {
            digits = true;
            if (scale > 1) {
                scale /= 10;
                frac += (uint64_t)(s[i] - '0') * scale;
            }
        }
    }
    if (!digits || s[i] != '\0')
        return -EINVAL;
    uint64_t m = whole * 1000 + frac;
    if (m < 10 || m > POLICY_MAX_CPUS * 1000)
        return -ERANGE;
    *millis = (uint32_t)m;
    return 0;
}

static void f_pids(struct vctx *c, const struct ynode *n, void *obj)
{
    int64_t v;
    if (v_int(c, n, 1, POLICY_MAX_PIDS, &v, "an integer 1..4194304"))
        ((struct policy_limits *)obj)->pids = (uint32_t)v;
}

static void f_memory(struct vctx *c, const struct ynode *n, void *obj)
{
    const char *s;
    uint64_t v;
    if (!v_str(c, n, &s, "a size such as 512M or 2G"))
        return;
    if (policy_parse_size(s, &v) < 0 || v < POLICY_MIN_MEMORY) {
        v_error(c, n, "'%.40s' is not a size of at least 4M (bytes, or a number with K, M, G "
                "or T: 512M, 2G)", s);
        return;
    }
    ((struct policy_limits *)obj)->memory = v;
}

static void f_cpu(struct vctx *c, const struct ynode *n, void *obj)
{
    uint32_t m;
    if (n->kind != YN_SCALAR || policy_parse_cpus(n->str, &m) < 0) {
        v_error(c, n, "'%.40s' is not a number of CPUs between 0.01 and %d (1, 0.5, 2.25)",
                n->kind == YN_SCALAR ? n->str : ytree_type_name(n), POLICY_MAX_CPUS);
        return;
    }
    ((struct policy_limits *)obj)->cpu_millis = m;
}

static void f_max_conns(struct vctx *c, const struct ynode *n, void *obj)
{
    int64_t v;
    if (v_int(c, n, 1, 1000000, &v, "an integer 1..1000000"))
        ((struct policy_limits *)obj)->max_conns = (uint32_t)v;
}

void v_limits(struct vctx *c, const struct ynode *n, struct policy_limits *out)
{
    static const struct vfield fields[] = {
        {"pids", f_pids}, {"memory", f_memory}, {"cpu", f_cpu}, {"max_conns", f_max_conns}};
    (void)v_map(c, n, fields, sizeof(fields) / sizeof(fields[0]), out,
                "a map {pids, memory, cpu, max_conns}");
}
