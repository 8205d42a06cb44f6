/* policy/normalize: the canonical request path that L7 rules are matched on
 * (RFC 3986 §6.2.2, plus the rules OpenShell's canonicaliser uses), shared
 * by L7 requests and rule patterns, so both sides are compared in one form.
 * The request itself is forwarded upstream exactly as the client sent it.
 *
 * 1. Percent-decoding: every %XX is decoded except the delimiters that
 *    would change the path's structure: "%2F" (an encoded slash) and "%5C"
 *    (an encoded backslash) are refused, unless the endpoint sets
 *    allow_encoded_slash, in which case they stay inside their segment and
 *    are emitted encoded again. "%00", encoded control characters, invalid
 *    '%' sequences, raw control characters, spaces, raw non-ASCII bytes,
 *    '\' and '#' are refused, because servers disagree about them.
 * 2. Path parameters: each segment loses everything from its first ';'
 *    ("/admin;x/secret" is "/admin/secret", as Tomcat, Jetty and Spring read
 *    it); a dot segment carrying parameters ("..;x", ".;x") is refused.
 * 3. Dot-segment removal (§5.2.4) and collapsing of empty segments ("//"),
 *    except that ".." above the root is refused instead of being dropped;
 *    a "." or ".." hidden behind an allowed encoded slash is refused too.
 * 4. Re-encoding: bytes outside RFC 3986 pchar (unreserved, sub-delims,
 *    ':' and '@') are written as %XX with upper-case hex, so "%40" and "@"
 *    are the same path, and "%25" stays "%25".
 * A trailing '/' is kept ("/a/" and "/a" are different resources). */
#include <errno.h>
#include <string.h>

#include "policy/policy_int.h"

#include "core/banned.h"

int policy_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#define SLASH_SENTINEL '\x01' /* a decoded %2F, inside its segment */

static bool pchar_literal(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

/* Step 1: decodes in[0..len) into out (at least len bytes); returns the
 * decoded length or -EINVAL with *why. */
static int decode(const char *in, size_t len, unsigned flags, char *out, const char **why)
{
    bool enc_ok = flags & POLICY_NORM_ENCODED_SLASH;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi = i + 2 < len ? policy_hexval(in[i + 1]) : -1;
            int lo = i + 2 < len ? policy_hexval(in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return *why = "has an invalid percent-encoding", -EINVAL;
            unsigned char v = (unsigned char)(hi * 16 + lo);
            if (v == 0)
                return *why = "contains %00", -EINVAL;
            if (v < 0x20 || v == 0x7f)
                return *why = "contains an encoded control character", -EINVAL;
            if (v == '/' && !enc_ok)
                return *why = "contains an encoded slash (%2F; allowed only with "
                              "allow_encoded_slash: true)", -EINVAL;
            if (v == '\\' && !enc_ok)
                return *why = "contains an encoded backslash (%5C; allowed only with "
                              "allow_encoded_slash: true)", -EINVAL;
            out[o++] = v == '/' ? SLASH_SENTINEL : (char)v;
            i += 2;
            continue;
        }
        if (c <= 0x20 || c == 0x7f)
            return *why = "contains a space or a control character", -EINVAL;
        if (c >= 0x80)
            return *why = "contains a non-ASCII byte (percent-encode it)", -EINVAL;
        if (c == '\\')
            return *why = "contains a backslash", -EINVAL;
        if (c == '#' || c == '?')
            return *why = c == '#' ? "contains '#'" : "contains '?'", -EINVAL;
        out[o++] = (char)c;
    }
    return (int)o;
}

/* "." or "..", alone (1 or 2) or followed by ";params" (-1). 0 otherwise. */
static int dot_segment(const char *s, size_t l)
{
    size_t base = 0;
    while (base < l && base < 3 && s[base] == '.')
        base++;
    if (base == 0 || base > 2)
        return 0;
    if (base == l)
        return (int)base;
    return s[base] == ';' ? -1 : 0;
}

/* A "." or ".." between encoded separators inside one segment. */
static bool hidden_dot(const char *s, size_t l)
{
    size_t start = 0;
    for (size_t i = 0; i <= l; i++) {
        if (i < l && s[i] != SLASH_SENTINEL && s[i] != '\\')
            continue;
        size_t pl = i - start;
        if ((pl == 1 && s[start] == '.') || (pl == 2 && s[start] == '.' && s[start + 1] == '.'))
            return start > 0 || i < l;
        start = i + 1;
    }
    return false;
}

/* Steps 2 and 3 in place on buf[0..len), buf[0] == '/'. */
static int resolve(char *buf, size_t len, bool strict, const char **why)
{
    size_t w = 0, i = 1;
    bool trailing = false;
    while (i <= len) {
        char *seg = buf + i;
        const char *slash = memchr(seg, '/', len - i);
        size_t l = slash ? (size_t)(slash - seg) : len - i;
        const char *semi = memchr(seg, ';', l);
        size_t pl = semi ? (size_t)(semi - seg) : l; /* without ;params */
        bool last = !slash;
        int dot = dot_segment(seg, l);
        trailing = false;
        if (dot < 0)
            return *why = "contains a dot segment with parameters ('..;' or '.;')", -EINVAL;
        if (strict && semi)
            return *why = "contains ';': path parameters are removed from requests before "
                          "matching, so this pattern could never match (remove the ';...')",
                   -EINVAL;
        if (hidden_dot(seg, pl))
            return *why = "contains a '.' or '..' next to an encoded slash or backslash",
                   -EINVAL;
        if (dot != 0) {
            if (strict)
                return *why = "contains a '.' or '..' segment, which a normalized request "
                              "never has",
                       -EINVAL;
            if (dot == 2) {
                if (w == 0)
                    return *why = "escapes the root ('..' above '/')", -EINVAL;
                while (w > 0 && buf[w - 1] != '/')
                    w--;
                w--; /* drop the '/' too */
            }
            trailing = last;
        } else if (pl == 0) {
            if (strict && l == 0 && !last)
                return *why = "contains '//', which a normalized request never has",
                       -EINVAL;
            trailing = last;
        } else {
            buf[w++] = '/';
            memmove(buf + w, seg, pl);
            w += pl;
        }
        i += l + 1;
    }
    if (w == 0 || trailing)
        buf[w++] = '/';
    return (int)w;
}

/* Step 4: buf[0..len) into out (cap bytes incl. NUL). */
static int encode(const char *buf, size_t len, char *out, size_t cap, const char **why)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        bool lit = c == '/' || pchar_literal(c);
        if (o + (lit ? 1 : 3) >= cap)
            return *why = "is too long", -EINVAL;
        if (lit) {
            out[o++] = (char)c;
        } else {
            if (c == (unsigned char)SLASH_SENTINEL)
                c = '/';
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

int policy_path_normalize(const char *in, size_t len, unsigned flags, char *out, size_t cap,
                          const char **why)
{
    char buf[POLICY_L7_PATH_MAX + 1];
    if (len == 0 || in[0] != '/')
        return *why = "does not start with '/'", -EINVAL;
    if (len + 1 > cap || len > POLICY_L7_PATH_MAX)
        return *why = "is too long", -EINVAL;
    int n = decode(in, len, flags, buf, why);
    if (n < 0)
        return n;
    n = resolve(buf, (size_t)n, flags & POLICY_NORM_STRICT, why);
    if (n < 0)
        return n;
    return encode(buf, (size_t)n, out, cap, why);
}
