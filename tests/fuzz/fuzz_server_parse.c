/* libFuzzer: the server's small parsers — RFC 3339 times, resource limits,
 * signed-URL tokens — and the shared strict HTTP head and chunk guards. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http/vocab.h"
#include "server/auth.h"
#include "server/limits.h"
#include "server/timefmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t ms;
    unsigned long long v;
    if (timefmt_parse(s, &ms) == 0) {
        char out[64];
        timefmt_format(ms, out, sizeof(out));
    }
    volatile unsigned long long sink = 0;
    if (server_limits_cpu(s, &v) == 0)
        sink += v;
    if (server_limits_memory(s, &v) == 0)
        sink += v;
    json_t *lim = json_pack("{s:s,s:s,s:s}", "cpu", s, "memory", s, "pids", s);
    if (lim) {
        struct cgroup_limits cl;
        char lerr[256];
        if (server_limits_parse(lim, &cl, lerr, sizeof(lerr)) == 0)
            sink += cl.memory + cl.pids + cl.cpu_millis;
        json_decref(lim);
    }
    (void)sink;
    (void)auth_verify("key", "id", 44772, s, size, 0);
    struct http_head_guard g;
    const char *why;
    http_head_guard_init(&g);
    long n = http_head_guard_feed(&g, s, size, &why);
    if (n >= 0 && (size_t)n < size) {
        struct chunk_guard cg;
        memset(&cg, 0, sizeof(cg));
        (void)http_chunk_guard_feed(&cg, s + n, size - (size_t)n);
    }
    free(s);
    return 0;
}
