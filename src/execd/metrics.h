/* execd/metrics: system metrics shaped as OpenSandbox's execd serves them.
 *
 *   GET /metrics        {"cpu_count","cpu_used_pct","mem_total_mib",
 *                        "mem_used_mib","timestamp"} (numbers; ms epoch)
 *   GET /metrics/watch  the same object, one per line, every second
 *
 * cpu_count is the CPUs execd may run on (its affinity mask); cpu_used_pct
 * is the host's busy share (/proc/stat) since the previous sample, taken
 * at most every 200 ms (the first covers the time since start-up), so a
 * request never blocks the loop; memory used is MemTotal - MemAvailable.
 * At most 64 watch streams; a watcher that does not read misses samples. */
#ifndef CORDON_EXECD_METRICS_H
#define CORDON_EXECD_METRICS_H

#include <stdint.h>

struct execd;
struct http_conn;

/* The CPU sample state (one per execd). */
struct execd_metrics {
    uint64_t busy, total, at_ms;
    double pct;
};

/* Takes the first CPU sample (start-up). */
void metrics_init(struct execd *ed);
void metrics_get(struct execd *ed, struct http_conn *h);
void metrics_watch(struct execd *ed, struct http_conn *h);
/* Parses the "cpu " line of /proc/stat into busy and total jiffies.
 * Returns 0 or -EINVAL. */
int metrics_parse_cpu(const char *line, uint64_t *busy, uint64_t *total);

#endif
