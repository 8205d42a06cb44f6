/* libFuzzer: http/multipart (the streaming multipart/form-data parser) and
 * execd/files' Range and path parsers.
 *
 * Input: byte 0 picks the target. Multipart: byte 1 is the feed step
 * (1..256), then a Content-Type line up to '\n', then the body. The parser
 * is checked against itself: the same body fed whole and fed in steps must
 * give the same parts and bytes, and part data never exceeds the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "execd/files.h"
#include "http/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct acc {
    uint64_t hash;
    size_t bytes, parts, ends;
};

static void mix(struct acc *a, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        a->hash = (a->hash ^ b[i]) * 1099511628211ull;
}

static int on_part(const struct http_mp_part *p, void *d)
{
    struct acc *a = d;
    a->parts++;
    mix(a, p->name, strlen(p->name) + 1);
    mix(a, p->filename, strlen(p->filename) + 1);
    mix(a, p->content_type, strlen(p->content_type) + 1);
    if (!p->name[0])
        abort(); /* a part always has a name */
    return 0;
}

static int on_data(const uint8_t *p, size_t n, void *d)
{
    struct acc *a = d;
    if (n == 0)
        abort();
    a->bytes += n;
    mix(a, p, n);
    return 0;
}

static int on_end(void *d)
{
    struct acc *a = d;
    a->ends++;
    mix(a, "|", 1);
    return 0;
}

static const struct http_mp_cbs CBS = {on_part, on_data, on_end};

static int parse(const char *ct, const uint8_t *body, size_t len, size_t step, struct acc *a)
{
    struct http_multipart *m = malloc(sizeof(*m));
    const char *why;
    int r;
    if (!m)
        return -1;
    memset(a, 0, sizeof(*a));
    r = http_multipart_init(m, ct, &CBS, a, &why);
    for (size_t i = 0; r == 0 && i < len; i += step)
        r = http_multipart_feed(m, body + i, len - i < step ? len - i : step);
    if (r == 0)
        r = http_multipart_finish(m);
    free(m);
    return r;
}

static void fuzz_multipart(const uint8_t *d, size_t n)
{
    if (n < 2)
        return;
    size_t step = (size_t)d[0] + 1;
    d++, n--;
    const uint8_t *nl = memchr(d, '\n', n);
    if (!nl || (size_t)(nl - d) > 400)
        return;
    char ct[401];
    memcpy(ct, d, (size_t)(nl - d));
    ct[nl - d] = '\0';
    const uint8_t *body = nl + 1;
    size_t blen = n - (size_t)(nl - d) - 1;
    struct acc whole, stepped;
    int r1 = parse(ct, body, blen, blen ? blen : 1, &whole);
    int r2 = parse(ct, body, blen, step, &stepped);
    if ((r1 == 0) != (r2 == 0) || whole.bytes > blen)
        abort();
    if (r1 == 0 && (whole.hash != stepped.hash || whole.bytes != stepped.bytes ||
                    whole.parts != stepped.parts || whole.ends != whole.parts))
        abort();
}

static void fuzz_range(const uint8_t *d, size_t n)
{
    char h[256];
    uint64_t size, start, len;
    if (n < 8 || n - 8 >= sizeof(h))
        return;
    memcpy(&size, d, 8);
    size >>= (d[0] & 63);
    memcpy(h, d + 8, n - 8);
    h[n - 8] = '\0';
    int r = files_range_parse(h, size, &start, &len);
    if (r == 1 && (len == 0 || start >= size || start + len > size || start + len < start))
        abort();
}

static void fuzz_path(const uint8_t *d, size_t n)
{
    char out[4096];
    const char *why;
    if (files_path_clean((const char *)d, n, out, sizeof(out), &why) < 0)
        return;
    /* absolute, no empty/"."/".." segments, no trailing slash but "/" */
    size_t l = strlen(out);
    if (out[0] != '/' || strstr(out, "//") || strstr(out, "/./") || strstr(out, "/../") ||
        (l > 1 && out[l - 1] == '/') || (l >= 2 && strcmp(out + l - 2, "/.") == 0) ||
        (l >= 3 && strcmp(out + l - 3, "/..") == 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_multipart(data + 1, size - 1);
        break;
    case 1:
        fuzz_range(data + 1, size - 1);
        break;
    default:
        fuzz_path(data + 1, size - 1);
        break;
    }
    return 0;
}
