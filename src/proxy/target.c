#include "proxy/target.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/parse.h"
#include "core/banned.h"

/* reg-name / IPv4 characters allowed in a host (RFC 3986 §3.2.2, minus
 * percent-encoding and sub-delims, which no real host name uses). */
static int host_char_ok(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

static int v6_char_ok(char c) { return isxdigit((unsigned char)c) || c == ':' || c == '.'; }

/* Legacy IPv4 forms that inet_aton() and therefore many clients' libcs read
 * as an address, but that are not a dotted quad: "127.1", "2130706433",
 * "0x7f000001", "0177.0.0.1". A name whose last label is all digits (or a
 * 0x number) is never a DNS name (RFC 3696 §2), so such a host is rewritten
 * to the dotted quad it stands for: the policy and the address fence then
 * judge the address the client meant (127.1 is loopback, refused as
 * address_blocked), not an unresolvable name. */
static void canonical_ipv4(struct proxy_target *out)
{
    struct in_addr a;
    unsigned char probe[4];
    const char *last = strrchr(out->host, '.');
    last = last ? last + 1 : out->host;
    if (*last == '\0' || !(isdigit((unsigned char)*last)))
        return;
    if (inet_pton(AF_INET, out->host, probe) == 1 || inet_aton(out->host, &a) == 0)
        return;
    const unsigned char *b = (const unsigned char *)&a.s_addr;
    snprintf(out->host, sizeof(out->host), "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

static int copy_host(const char *h, size_t hl, int bracketed, struct proxy_target *out,
                     const char **why)
{
    if (hl == 0) {
        *why = "empty host";
        return -EINVAL;
    }
    if (hl > TARGET_HOST_MAX) {
        *why = "host name longer than 255 characters";
        return -EINVAL;
    }
    for (size_t i = 0; i < hl; i++) {
        if (bracketed ? !v6_char_ok(h[i]) : !host_char_ok(h[i])) {
            *why = "invalid character in host";
            return -EINVAL;
        }
        out->host[i] = (char)tolower((unsigned char)h[i]);
    }
    out->host[hl] = '\0';
    if (!bracketed && out->host[hl - 1] == '.' && hl > 1)
        out->host[hl - 1] = '\0'; /* absolute FQDN "example.com." */
    if (!bracketed)
        canonical_ipv4(out);
    return 0;
}

/* Splits "host[:port]" or "[v6][:port]". need_port: CONNECT requires one. */
static int split_authority(const char *s, size_t len, uint16_t dflt, int need_port,
                           struct proxy_target *out, const char **why)
{
    const char *h = s, *colon = NULL;
    size_t hl;
    int bracketed = 0;
    if (memchr(s, '@', len)) {
        *why = "userinfo (user@) in the authority is not allowed";
        return -EINVAL;
    }
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close) {
            *why = "unterminated '[' in IPv6 address";
            return -EINVAL;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        bracketed = 1;
        if (close + 1 < s + len) {
            if (close[1] != ':') {
                *why = "junk after ']' in authority";
                return -EINVAL;
            }
            colon = close + 1;
        }
    } else {
        colon = memchr(s, ':', len);
        hl = colon ? (size_t)(colon - s) : len;
    }
    int r = copy_host(h, hl, bracketed, out, why);
    if (r < 0)
        return r;
    if (!colon) {
        if (need_port) {
            *why = "missing port (expected host:port)";
            return -EINVAL;
        }
        out->port = dflt;
        return 0;
    }
    uint32_t port;
    size_t pl = (size_t)(s + len - (colon + 1));
    if (pl == 0 && !need_port) {
        out->port = dflt;
        return 0;
    }
    if (parse_u32(colon + 1, pl, 1, 65535, &port) < 0) {
        *why = "invalid port (expected 1-65535)";
        return -EINVAL;
    }
    out->port = (uint16_t)port;
    return 0;
}

int target_parse_authority(const char *s, size_t len, struct proxy_target *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    out->scheme = TARGET_NONE;
    return split_authority(s, len, 0, 1, out, why);
}

static const struct {
    const char *name;
    enum target_scheme scheme;
    uint16_t port;
} schemes[] = {
    {"http", TARGET_HTTP, 80},
    {"https", TARGET_HTTPS, 443},
    {"ws", TARGET_WS, 80},
    {"wss", TARGET_WSS, 443},
};

int target_parse_absolute(const char *s, size_t len, struct proxy_target *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    const char *sep = len >= 3 ? memmem(s, len, "://", 3) : NULL;
    if (!sep) {
        *why = "request target is not absolute-form (expected http://host/path)";
        return -EINVAL;
    }
    size_t sl = (size_t)(sep - s);
    size_t i;
    for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (strlen(schemes[i].name) == sl && strncasecmp(s, schemes[i].name, sl) == 0)
            break;
    if (i == sizeof(schemes) / sizeof(schemes[0])) {
        *why = "unsupported scheme (expected http, https, ws or wss)";
        return -EINVAL;
    }
    out->scheme = schemes[i].scheme;
    const char *auth = sep + 3;
    const char *end = s + len;
    const char *path = auth;
    while (path < end && *path != '/' && *path != '?' && *path != '#')
        path++;
    int r = split_authority(auth, (size_t)(path - auth), schemes[i].port, 0, out, why);
    if (r < 0)
        return r;
    if (path == end || *path != '/') {
        /* "http://h" or "http://h?q": path is "/" (plus the query) */
        out->path = path == end ? "/" : path;
        out->path_len = path == end ? 1 : (size_t)(end - path);
        if (path != end && *path == '#') {
            *why = "fragment in request target";
            return -EINVAL;
        }
        return 0;
    }
    out->path = path;
    out->path_len = (size_t)(end - path);
    return 0;
}
