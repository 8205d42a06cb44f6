/* proxy/upgrade: see upgrade.h. */
#include "proxy/upgrade.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "core/banned.h"

static bool name_is(const struct http_hdr *x, const char *name)
{
    size_t n = strlen(name);
    return x->name_len == n && strncasecmp(x->name, name, n) == 0;
}

/* True when some header called name has token in its comma list. */
static bool any_has_token(const struct http_head *h, const char *name, const char *token)
{
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct http_hdr *x = &h->headers[i];
        if (name_is(x, name) && http_value_has_token(x->value, x->value_len, token))
            return true;
    }
    return false;
}

bool upgrade_offers_websocket(const struct http_head *h)
{
    return any_has_token(h, "upgrade", "websocket") && any_has_token(h, "connection", "upgrade");
}

/* The next comma-separated element of [*p, end): trimmed span, or false at
 * the end. An Upgrade element may carry a version ("websocket/13"); the
 * protocol name is what counts. */
static bool next_token(const char **p, const char *end, const char **tok, size_t *len)
{
    const char *s = *p;
    while (s < end && (*s == ' ' || *s == '\t' || *s == ','))
        s++;
    if (s >= end)
        return false;
    const char *e = s;
    while (e < end && *e != ',')
        e++;
    *p = e;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *tok = s;
    *len = (size_t)(e - s);
    return true;
}

static bool tok_is(const char *t, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n == w && strncasecmp(t, word, w) == 0;
}

static bool upgrade_value_is_websocket_only(const struct http_hdr *x)
{
    const char *p = x->value, *end = x->value + x->value_len, *t;
    size_t n, count = 0;
    while (next_token(&p, end, &t, &n)) {
        const char *slash = memchr(t, '/', n);
        if (!tok_is(t, slash ? (size_t)(slash - t) : n, "websocket"))
            return false;
        count++;
    }
    return count == 1;
}

bool upgrade_head_needs_filter(const struct http_head *h)
{
    bool ws = upgrade_offers_websocket(h);
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct http_hdr *x = &h->headers[i];
        if (name_is(x, "http2-settings"))
            return true;
        if (name_is(x, "upgrade") && (!ws || !upgrade_value_is_websocket_only(x)))
            return true;
        if (name_is(x, "connection") &&
            (http_value_has_token(x->value, x->value_len, "http2-settings") ||
             (!ws && http_value_has_token(x->value, x->value_len, "upgrade"))))
            return true;
    }
    return false;
}

static int put(struct buf *b, const char *p, size_t n) { return buf_append(b, p, n); }

static int put_line(struct buf *b, const struct http_hdr *x, const char *v, size_t vlen)
{
    int r = put(b, x->name, x->name_len);
    r |= put(b, ": ", 2);
    r |= put(b, v, vlen);
    r |= put(b, "\r\n", 2);
    return r ? -ENOBUFS : 0;
}

int upgrade_write_header(const struct http_head *h, const struct http_hdr *x, struct buf *out)
{
    bool ws = upgrade_offers_websocket(h);
    if (name_is(x, "http2-settings"))
        return 0;
    if (name_is(x, "upgrade")) {
        if (!ws)
            return 0;
        return upgrade_value_is_websocket_only(x) ? put_line(out, x, x->value, x->value_len)
                                                  : put_line(out, x, "websocket", 9);
    }
    if (!name_is(x, "connection"))
        return put_line(out, x, x->value, x->value_len);
    /* Connection: keep every token except those naming withheld upgrades */
    char v[4096];
    size_t vl = 0;
    const char *p = x->value, *end = x->value + x->value_len, *t;
    size_t n;
    while (next_token(&p, end, &t, &n)) {
        if (tok_is(t, n, "http2-settings") || (!ws && tok_is(t, n, "upgrade")))
            continue;
        if (vl + n + 2 > sizeof(v))
            return -ENOBUFS;
        if (vl) {
            memcpy(v + vl, ", ", 2);
            vl += 2;
        }
        memcpy(v + vl, t, n);
        vl += n;
    }
    return vl ? put_line(out, x, v, vl) : 0;
}
