/* execd/sse: "data: {json}\n\n" events and UTF-8 repair. */
#include "execd/sse.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

/* Length of the UTF-8 sequence starting with lead byte b (0: not a lead). */
static size_t utf8_seq_len(uint8_t b)
{
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF)
        return 2;
    if (b >= 0xE0 && b <= 0xEF)
        return 3;
    if (b >= 0xF0 && b <= 0xF4)
        return 4;
    return 0;
}

/* Checks one sequence at p (len available); returns its length if valid
 * (RFC 3629 §4, no overlongs or surrogates), 0 if invalid, or (size_t)-1
 * if it is a valid prefix cut short. */
static size_t utf8_check(const uint8_t *p, size_t len)
{
    size_t n = utf8_seq_len(p[0]);
    if (n == 0)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (i >= len)
            return (size_t)-1;
        uint8_t lo = 0x80, hi = 0xBF;
        if (i == 1) {
            if (p[0] == 0xE0) lo = 0xA0;
            if (p[0] == 0xED) hi = 0x9F;
            if (p[0] == 0xF0) lo = 0x90;
            if (p[0] == 0xF4) hi = 0x8F;
        }
        if (p[i] < lo || p[i] > hi)
            return 0;
    }
    return n;
}

size_t sse_utf8_cut(const uint8_t *p, size_t len)
{
    /* Only the last 3 bytes can start an unfinished sequence. */
    size_t from = len > 3 ? len - 3 : 0;
    for (size_t i = from; i < len; i++) {
        if (utf8_seq_len(p[i]) > 1 && utf8_check(p + i, len - i) == (size_t)-1)
            return i;
    }
    return len;
}

void *sse_text(const uint8_t *p, size_t len)
{
    static const uint8_t repl[3] = {0xEF, 0xBF, 0xBD};
    size_t i = 0, o = 0;
    /* worst case: every byte becomes a 3-byte U+FFFD */
    uint8_t *buf = malloc(len * 3 + 1);
    if (!buf)
        return NULL;
    while (i < len) {
        size_t n = utf8_check(p + i, len - i);
        if (n == 0 || n == (size_t)-1) {
            memcpy(buf + o, repl, 3);
            o += 3;
            i++;
            continue;
        }
        memcpy(buf + o, p + i, n);
        o += n;
        i += n;
    }
    json_t *s = json_stringn_nocheck((const char *)buf, o);
    free(buf);
    return s;
}

char *sse_event(void *json, size_t *len)
{
    char *body = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!body)
        return NULL;
    size_t bl = strlen(body);
    char *ev = malloc(bl + 9);
    if (ev) {
        memcpy(ev, "data: ", 6);
        memcpy(ev + 6, body, bl);
        memcpy(ev + 6 + bl, "\n\n", 3);
        *len = bl + 8;
    }
    free(body);
    return ev;
}
