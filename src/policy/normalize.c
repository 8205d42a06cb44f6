/* policy/normalize: request-path normalization (RFC 3986 §6.2.2), shared by
 * L7 requests and rule patterns, so both sides are compared in one form.
 *
 * 1. Percent-decoding (§6.2.2.2): encoded unreserved characters (ALPHA,
 *    DIGIT, '-', '.', '_', '~') are decoded, so "%2e%2e" becomes "..";
 *    other encodings stay encoded with uppercase hex (§6.2.2.1).
 * 2. Refused outright, because servers disagree about them: "%2F" (an
 *    encoded slash), "%5C" and '\' (backslash, a separator on some
 *    servers), "%00", invalid '%' sequences, control characters, spaces,
 *    raw non-ASCII bytes, '#', and dot segments carrying parameters
 *    ("..;x", which Tomcat-style servers treat as "..").
 * 3. Dot-segment removal (§5.2.4) and collapsing of empty segments ("//"),
 *    except that ".." above the root is refused instead of being dropped:
 *    a request that tries to climb out of "/" is not one we can reason about.
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

static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* Step 1 and 2: decodes in[0..len) into out, returns the decoded length or
 * -EINVAL with *why. The output is never longer than the input. */
static int decode(const char *in, size_t len, char *out, const char **why)
{
    static const char hex[] = "0123456789ABCDEF";
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
            if (v == '/')
                return *why = "contains an encoded slash (%2F)", -EINVAL;
            if (v == '\\')
                return *why = "contains an encoded backslash (%5C)", -EINVAL;
            if (unreserved(v)) {
                out[o++] = (char)v;
            } else {
                out[o++] = '%';
                out[o++] = hex[v >> 4];
                out[o++] = hex[v & 15];
            }
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

/* Step 3 in place on buf[0..len), buf[0] == '/'. */
static int remove_dots(char *buf, size_t len, bool strict, const char **why)
{
    size_t w = 0, i = 1;
    bool trailing = false;
    while (i <= len) {
        const char *seg = buf + i;
        const char *slash = memchr(seg, '/', len - i);
        size_t l = slash ? (size_t)(slash - seg) : len - i;
        bool last = !slash;
        int dot = dot_segment(seg, l);
        trailing = false;
        if (l == 0) {
            if (strict && !last)
                return *why = "contains '//', which a normalized request never has",
                       -EINVAL;
            trailing = last;
        } else if (dot != 0) {
            if (dot < 0)
                return *why = "contains a dot segment with parameters ('..;')", -EINVAL;
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
        } else {
            buf[w++] = '/';
            memmove(buf + w, seg, l);
            w += l;
        }
        i += l + 1;
    }
    if (w == 0 || trailing)
        buf[w++] = '/';
    return (int)w;
}

int policy_path_normalize(const char *in, size_t len, bool strict, char *out, size_t cap,
                          const char **why)
{
    if (len == 0 || in[0] != '/')
        return *why = "does not start with '/'", -EINVAL;
    if (len + 1 > cap)
        return *why = "is too long", -EINVAL;
    int n = decode(in, len, out, why);
    if (n < 0)
        return n;
    n = remove_dots(out, (size_t)n, strict, why);
    if (n < 0)
        return n;
    out[n] = '\0';
    return 0;
}
