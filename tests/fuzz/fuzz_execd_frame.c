/* libFuzzer: execd's client-frame parser, the event-text UTF-8 repair, query
 * parameters, and the replay ring (checked against a flat model).
 * The first input byte picks the target; the rest is its input. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "execd/frame.h"
#include "execd/ring.h"
#include "execd/sse.h"
#include "http/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_frame(int text, const uint8_t *d, size_t n)
{
    struct frame_in f;
    frame_parse(text, d, n, &f);
    switch (f.kind) {
    case FRAME_STDIN:
        if (!text && (f.data != d + 1 || f.len + 1 != n))
            abort();
        if (f.len && f.data[f.len - 1] == 0x7f)
            (void)f.data[0];
        break;
    case FRAME_RESIZE:
        if (f.cols == 0 || f.rows == 0)
            abort();
        break;
    case FRAME_SIGNAL:
        if (f.signo < 1 || f.signo > 64)
            abort();
        break;
    case FRAME_INVALID:
        if (!f.error)
            abort();
        break;
    case FRAME_PING:
        break;
    }
    frame_release(&f);
}

static void fuzz_text(const uint8_t *d, size_t n)
{
    size_t cut = sse_utf8_cut(d, n);
    if (cut > n || n - cut > 3)
        abort();
    json_t *s = sse_text(d, n);
    if (!s)
        return;
    /* the repaired text must survive a JSON round trip */
    char *enc = json_dumps(s, JSON_ENCODE_ANY);
    json_error_t e;
    json_t *back = enc ? json_loads(enc, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e) : NULL;
    if (enc && (!back || !json_equal(s, back)))
        abort();
    json_decref(back);
    free(enc);
    json_decref(s);
}

static void fuzz_query(const uint8_t *d, size_t n)
{
    char name[8], out[64];
    size_t nl = n < 3 ? n : 3;
    memcpy(name, d, nl);
    name[nl] = '\0';
    int r = http_query_get((const char *)d + nl, n - nl, name, out, sizeof(out));
    if (r >= 0 && (r >= (int)sizeof(out) || out[r] != '\0'))
        abort();
}

/* Each byte: low 7 bits a write length, high bit the channel. */
static void fuzz_ring(const uint8_t *d, size_t n)
{
    enum { CAP = 61 };
    struct ring r;
    uint8_t *model = malloc(n * 128 + 1), buf[CAP];
    size_t total = 0;
    if (!model || ring_init(&r, CAP, 3) < 0) {
        free(model);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = d[i] & 0x7f;
        for (size_t k = 0; k < len; k++)
            model[total + k] = (uint8_t)(i + k);
        ring_write(&r, model + total, len, (uint8_t)(1 + (d[i] >> 7)));
        total += len;
    }
    uint64_t oldest = total > CAP ? total - CAP : 0;
    if (ring_total(&r) != total || ring_oldest(&r) != oldest)
        abort();
    for (uint64_t off = oldest; off < total;) {
        const uint8_t *p;
        size_t l;
        uint8_t ch;
        if (ring_peek(&r, off, &p, &l, &ch) < 0 || l == 0 || memcmp(p, model + off, l))
            abort();
        off += l;
    }
    if (ring_copy(&r, oldest, buf, sizeof(buf)) != (ssize_t)(total - oldest) ||
        memcmp(buf, model + oldest, (size_t)(total - oldest)))
        abort();
    ring_free(&r);
    free(model);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0: fuzz_frame(0, d, n); break;
    case 1: fuzz_frame(1, d, n); break;
    case 2: fuzz_text(d, n); break;
    case 3: fuzz_query(d, n); break;
    default: fuzz_ring(d, n < 4096 ? n : 4096); break;
    }
    return 0;
}
