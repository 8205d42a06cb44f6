/* execd/metrics: GET /metrics and GET /metrics/watch, shaped as OpenSandbox's
 * execd answers them. See metrics.h. */
#include "execd/metrics.h"

#include <errno.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/loop.h"
#include "execd/api.h"
#include "execd/execd.h"
#include "http/server.h"
#include "core/banned.h"

#define METRICS_MIN_SPAN_MS 200 /* a shorter window keeps the last percentage */
#define METRICS_WATCH_MS 1000
#define METRICS_MAX_WATCHERS 64

struct metrics_watch {
    struct execd *ed;
    struct http_conn *h;
    struct loop_timer tick;
    struct metrics_watch *next;
};

int metrics_parse_cpu(const char *stat, uint64_t *busy, uint64_t *total)
{
    unsigned long long v[10] = {0};
    if (strncmp(stat, "cpu ", 4) != 0)
        return -EINVAL;
    int n = sscanf(stat + 4, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    if (n < 4)
        return -EINVAL;
    /* user nice system idle iowait irq softirq steal (guest time is in user) */
    uint64_t t = 0;
    for (int i = 0; i < 8 && i < n; i++) {
        if (v[i] > (1ull << 56)) /* no real counter is near this; the sum cannot wrap */
            return -EINVAL;
        t += v[i];
    }
    *total = t;
    *busy = t - v[3] - (n > 4 ? v[4] : 0);
    return 0;
}

static int read_cpu(uint64_t *busy, uint64_t *total)
{
    char line[512];
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -errno;
    int r = fgets(line, sizeof(line), f) ? metrics_parse_cpu(line, busy, total) : -EIO;
    fclose(f);
    return r;
}

/* MemTotal and MemTotal - MemAvailable, in KiB. */
static int read_mem(uint64_t *total_kb, uint64_t *used_kb)
{
    char line[256];
    unsigned long long total = 0, avail = 0, v;
    int have = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f) && have != 3) {
        if (sscanf(line, "MemTotal: %llu kB", &v) == 1) {
            total = v;
            have |= 1;
        } else if (sscanf(line, "MemAvailable: %llu kB", &v) == 1) {
            avail = v;
            have |= 2;
        }
    }
    fclose(f);
    if (have != 3 || avail > total)
        return -EIO;
    *total_kb = total;
    *used_kb = total - avail;
    return 0;
}

void metrics_init(struct execd *ed)
{
    struct execd_metrics *m = &ed->metrics;
    memset(m, 0, sizeof(*m));
    if (read_cpu(&m->busy, &m->total) == 0)
        m->at_ms = loop_clock_ms();
}

/* CPU busy percentage since the previous sample (at least 200 ms ago). */
static double cpu_pct(struct execd *ed)
{
    struct execd_metrics *m = &ed->metrics;
    uint64_t busy, total, now = loop_clock_ms();
    if (now - m->at_ms < METRICS_MIN_SPAN_MS || read_cpu(&busy, &total) < 0)
        return m->pct;
    if (total > m->total && busy >= m->busy)
        m->pct = 100.0 * (double)(busy - m->busy) / (double)(total - m->total);
    m->busy = busy;
    m->total = total;
    m->at_ms = now;
    return m->pct;
}

static json_t *metrics_json(struct execd *ed, char *err, size_t errcap)
{
    cpu_set_t set;
    uint64_t mt = 0, mu = 0;
    int r = read_mem(&mt, &mu);
    if (r < 0) {
        snprintf(err, errcap, "cannot read /proc/meminfo: %s", strerror(-r));
        return NULL;
    }
    int ncpu = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
    return json_pack("{s:f, s:f, s:f, s:f, s:I}", "cpu_count", (double)ncpu, "cpu_used_pct",
                     cpu_pct(ed), "mem_total_mib", (double)mt / 1024.0, "mem_used_mib",
                     (double)mu / 1024.0, "timestamp", (json_int_t)execd_wall_ms());
}

void metrics_get(struct execd *ed, struct http_conn *h)
{
    char err[160];
    json_t *o = metrics_json(ed, err, sizeof(err));
    if (!o) {
        api_error(h, 500, "RUNTIME_ERROR", "error reading runtime metrics: %s", err);
        return;
    }
    api_json(h, 200, o);
}

static void watch_free(struct metrics_watch *w)
{
    struct metrics_watch **pp = &w->ed->watchers;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    w->ed->nwatchers--;
    loop_timer_stop(w->ed->loop, &w->tick);
    free(w);
}

/* One JSON object per line, every second (as OpenSandbox); a client that
 * does not read misses samples instead of growing our buffer. */
static void watch_tick(struct loop *l, struct loop_timer *t)
{
    struct metrics_watch *w = t->data;
    char err[160], *line = NULL;
    json_t *o = metrics_json(w->ed, err, sizeof(err));
    if (!o)
        o = json_pack("{s:s}", "error", err);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    size_t len = body ? strlen(body) : 0;
    if (body && (line = malloc(len + 2))) {
        memcpy(line, body, len);
        line[len] = '\n';
        if (http_stream_room(w->h) > len + 1)
            (void)http_stream_write(w->h, line, len + 1);
    }
    free(line);
    free(body);
    (void)loop_timer_start(l, t, METRICS_WATCH_MS);
}

static void watch_closed(struct http_conn *h, void *data)
{
    (void)h;
    watch_free(data);
}

void metrics_watch(struct execd *ed, struct http_conn *h)
{
    static const struct http_stream_cbs cbs = {.on_close = watch_closed};
    if (ed->nwatchers >= METRICS_MAX_WATCHERS) {
        api_error(h, 503, "TOO_MANY_WATCHERS", "%d /metrics/watch streams are open",
                  METRICS_MAX_WATCHERS);
        return;
    }
    struct metrics_watch *w = calloc(1, sizeof(*w));
    if (!w) {
        api_error(h, 500, "RUNTIME_ERROR", "out of memory");
        return;
    }
    if (http_stream_begin(h, 200, "text/event-stream",
                          "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n", &cbs, w) < 0) {
        free(w);
        return;
    }
    w->ed = ed;
    w->h = h;
    w->tick.cb = watch_tick;
    w->tick.data = w;
    w->next = ed->watchers;
    ed->watchers = w;
    ed->nwatchers++;
    (void)loop_timer_start(ed->loop, &w->tick, METRICS_WATCH_MS);
}
