/* tls/peek: what a tunnel starts with, and the SNI of a ClientHello,
 * without OpenSSL. Everything here reads peer bytes: every read goes
 * through the bounds-checked cursor below. */
#include <errno.h>
#include <string.h>

#include "tls/tls.h"

#include "core/banned.h"

/* ---- classifier ---- */

/* RFC 9110 §5.6.2 tchar. */
static bool is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 8446 §5.1: a record never carries more than 2^14 bytes of plaintext. */
#define TLS_RECORD_MAX 16384

enum tls_peek_kind tls_peek_classify(const void *vbuf, size_t len)
{
    static const char h2[] = "PRI * HTTP/2.0"; /* RFC 9113 §3.4, first line */
    const uint8_t *b = vbuf;
    size_t n;

    if (len == 0)
        return TLS_PEEK_NEED_MORE;

    /* TLSPlaintext: type handshake(22), legacy_record_version 3.x,
     * length, then HandshakeType client_hello(1) (RFC 8446 §5.1, §4). */
    if (b[0] == 0x16) {
        if (len < 2)
            return TLS_PEEK_NEED_MORE;
        if (b[1] != 0x03)
            return TLS_PEEK_OTHER;
        if (len < 3)
            return TLS_PEEK_NEED_MORE;
        if (b[2] > 0x04)
            return TLS_PEEK_OTHER;
        if (len < 5)
            return TLS_PEEK_NEED_MORE;
        n = (size_t)b[3] << 8 | b[4];
        if (n == 0 || n > TLS_RECORD_MAX)
            return TLS_PEEK_OTHER;
        if (len < 6)
            return TLS_PEEK_NEED_MORE;
        return b[5] == 0x01 ? TLS_PEEK_TLS : TLS_PEEK_OTHER;
    }

    /* HTTP/2 prior knowledge. "PRI" followed by anything else is an HTTP/1
     * request line with method PRI, classified below. */
    n = len < sizeof(h2) - 1 ? len : sizeof(h2) - 1;
    if (memcmp(b, h2, n) == 0)
        return n == sizeof(h2) - 1 ? TLS_PEEK_H2_PREFACE : TLS_PEEK_NEED_MORE;

    /* HTTP/1 request-line: method = token, then SP (RFC 9112 §3). */
    for (size_t i = 0; i < len; i++) {
        if (b[i] == ' ')
            return i > 0 ? TLS_PEEK_HTTP1 : TLS_PEEK_OTHER;
        if (i >= TLS_PEEK_METHOD_MAX || !is_tchar(b[i]))
            return TLS_PEEK_OTHER;
    }
    return TLS_PEEK_NEED_MORE;
}

const char *tls_peek_kind_name(enum tls_peek_kind k)
{
    switch (k) {
    case TLS_PEEK_NEED_MORE:
        return "need_more";
    case TLS_PEEK_TLS:
        return "tls";
    case TLS_PEEK_HTTP1:
        return "http1";
    case TLS_PEEK_H2_PREFACE:
        return "h2_preface";
    case TLS_PEEK_OTHER:
        return "other";
    }
    return "?";
}

/* ---- the handshake cursor ----
 * Reads the handshake byte stream carried by consecutive TLS handshake
 * records, crossing record boundaries transparently (RFC 8446 §5.1 lets a
 * handshake message span records). The first failure sticks: afterwards
 * every read fails and c->status says why (-EAGAIN: the input ended where
 * more was promised; -EINVAL: the bytes break the format). */
struct hs_cur {
    const uint8_t *buf;
    size_t len;      /* bytes available */
    size_t pos;      /* next byte of buf */
    size_t rec_left; /* bytes left in the current record's fragment */
    size_t consumed; /* handshake bytes read so far */
    int status;
};

static void cur_fail(struct hs_cur *c, int status)
{
    if (c->status == 0)
        c->status = status;
}

/* Enters the next record: type(1) version(2) length(2). */
static bool cur_next_record(struct hs_cur *c)
{
    size_t n;
    if (c->len - c->pos < 5) {
        cur_fail(c, -EAGAIN);
        return false;
    }
    n = (size_t)c->buf[c->pos + 3] << 8 | c->buf[c->pos + 4];
    if (c->buf[c->pos] != 0x16 || c->buf[c->pos + 1] != 0x03 || n == 0 || n > TLS_RECORD_MAX) {
        cur_fail(c, -EINVAL);
        return false;
    }
    c->pos += 5;
    c->rec_left = n;
    return true;
}

/* Makes at least one byte of the current record readable. */
static bool cur_ready(struct hs_cur *c)
{
    if (c->status)
        return false;
    if (c->rec_left == 0 && !cur_next_record(c))
        return false;
    if (c->pos >= c->len) {
        cur_fail(c, -EAGAIN);
        return false;
    }
    return true;
}

static bool read_u8(struct hs_cur *c, uint8_t *v)
{
    if (!cur_ready(c))
        return false;
    *v = c->buf[c->pos++];
    c->rec_left--;
    c->consumed++;
    return true;
}

static bool read_u16be(struct hs_cur *c, uint16_t *v)
{
    uint8_t hi, lo;
    if (!read_u8(c, &hi) || !read_u8(c, &lo))
        return false;
    *v = (uint16_t)(hi << 8 | lo);
    return true;
}

static bool read_u24be(struct hs_cur *c, uint32_t *v)
{
    uint8_t a, b, d;
    if (!read_u8(c, &a) || !read_u8(c, &b) || !read_u8(c, &d))
        return false;
    *v = (uint32_t)a << 16 | (uint32_t)b << 8 | d;
    return true;
}

/* Copies n bytes to out (or skips them when out is NULL). */
static bool read_bytes(struct hs_cur *c, uint8_t *out, size_t n)
{
    while (n > 0) {
        size_t k;
        if (!cur_ready(c))
            return false;
        k = c->rec_left;
        if (k > c->len - c->pos)
            k = c->len - c->pos;
        if (k > n)
            k = n;
        if (out) {
            memcpy(out, c->buf + c->pos, k);
            out += k;
        }
        c->pos += k;
        c->rec_left -= k;
        c->consumed += k;
        n -= k;
    }
    return true;
}

static bool skip(struct hs_cur *c, size_t n) { return read_bytes(c, NULL, n); }

/* Checks that a vector of n bytes fits before end; fails the cursor with
 * -EINVAL otherwise. */
static bool fits(struct hs_cur *c, size_t n, size_t end)
{
    if (c->status)
        return false;
    if (n > end - c->consumed) {
        cur_fail(c, -EINVAL);
        return false;
    }
    return true;
}

static bool sni_char_ok(uint8_t ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_';
}

/* server_name extension body (RFC 6066 §3):
 *   struct { NameType name_type; select (name_type) { case host_name:
 *            HostName; } name; } ServerName;      HostName<1..2^16-1>
 *   struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
 * Returns 0 with the first host_name in out, or a negative errno. */
static int parse_server_name(struct hs_cur *c, size_t ext_end, char *out, size_t cap)
{
    uint16_t list_len;
    size_t list_end;
    bool have = false;

    if (!read_u16be(c, &list_len))
        return c->status;
    if (list_len == 0 || !fits(c, list_len, ext_end) || c->consumed + list_len != ext_end)
        return -EINVAL;
    list_end = c->consumed + list_len;
    while (c->consumed < list_end) {
        uint8_t type;
        uint16_t nlen;
        if (!read_u8(c, &type) || !read_u16be(c, &nlen))
            return c->status;
        if (!fits(c, nlen, list_end))
            return c->status;
        if (type != 0) { /* unknown name types are skipped */
            if (!skip(c, nlen))
                return c->status;
            continue;
        }
        if (have || nlen == 0)
            return -EINVAL; /* at most one host_name; HostName<1..2^16-1> */
        if (nlen >= cap)
            return -ENOSPC;
        if (!read_bytes(c, (uint8_t *)out, nlen))
            return c->status;
        for (size_t i = 0; i < nlen; i++)
            if (!sni_char_ok((uint8_t)out[i]))
                return -EINVAL;
        out[nlen] = '\0';
        have = true;
    }
    return have ? 0 : -ENOENT;
}

/* ClientHello (RFC 8446 §4.1.2; the same prefix in TLS 1.0-1.2):
 *   uint16 legacy_version; opaque random[32];
 *   opaque legacy_session_id<0..32>;
 *   CipherSuite cipher_suites<2..2^16-2>;
 *   opaque legacy_compression_methods<1..2^8-1>;
 *   Extension extensions<8..2^16-1>;   (absent in old hellos)
 * Stops as soon as server_name has been read. */
int tls_sni_parse(const void *buf, size_t len, char *out, size_t cap)
{
    struct hs_cur c = {.buf = buf, .len = len};
    uint8_t type, v8;
    uint16_t v16, ext_len;
    uint32_t msg_len;
    size_t msg_end, ext_end;

    if (cap == 0)
        return -ENOSPC;
    out[0] = '\0';
    if (!read_u8(&c, &type) || !read_u24be(&c, &msg_len))
        return c.status;
    if (type != 0x01)
        return -EINVAL;
    if (msg_len > TLS_HELLO_MAX)
        return -EMSGSIZE;
    msg_end = c.consumed + msg_len;

    if (!fits(&c, 2 + 32 + 1, msg_end) || !read_u16be(&c, &v16) || !skip(&c, 32))
        return c.status;
    if (v16 >> 8 != 0x03)
        return -EINVAL;
    if (!read_u8(&c, &v8))
        return c.status;
    if (v8 > 32 || !fits(&c, v8, msg_end) || !skip(&c, v8))
        return c.status ? c.status : -EINVAL;
    if (!fits(&c, 2, msg_end) || !read_u16be(&c, &v16))
        return c.status;
    if (v16 < 2 || (v16 & 1) || !fits(&c, v16, msg_end) || !skip(&c, v16))
        return c.status ? c.status : -EINVAL;
    if (!fits(&c, 1, msg_end) || !read_u8(&c, &v8))
        return c.status;
    if (v8 < 1 || !fits(&c, v8, msg_end) || !skip(&c, v8))
        return c.status ? c.status : -EINVAL;

    if (c.consumed == msg_end)
        return -ENOENT; /* a hello without extensions */
    if (!fits(&c, 2, msg_end) || !read_u16be(&c, &ext_len))
        return c.status;
    if (c.consumed + ext_len != msg_end)
        return -EINVAL; /* extensions fill the rest of the message exactly */
    ext_end = msg_end;
    while (c.consumed < ext_end) {
        uint16_t etype, elen;
        if (!fits(&c, 4, ext_end) || !read_u16be(&c, &etype) || !read_u16be(&c, &elen))
            return c.status;
        if (!fits(&c, elen, ext_end))
            return c.status;
        if (etype == 0) /* server_name */
            return parse_server_name(&c, c.consumed + elen, out, cap);
        if (!skip(&c, elen))
            return c.status;
    }
    return -ENOENT;
}
