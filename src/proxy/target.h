/* proxy/target: the destination named by a proxy request.
 *
 * CONNECT authority-form "host:port" / "[v6]:port" (RFC 9110 §9.3.6) and
 * absolute-form "scheme://authority/path?query" (RFC 9112 §3.2.2). Hosts are
 * lowercased; userinfo is refused (credentials in URLs leak into logs).
 * Legacy IPv4 spellings ("127.1", "2130706433", "0x7f000001") become the
 * dotted quad they stand for, so policy and fence judge that address. */
#ifndef CORDON_PROXY_TARGET_H
#define CORDON_PROXY_TARGET_H

#include <stddef.h>
#include <stdint.h>

#define TARGET_HOST_MAX 255

enum target_scheme { TARGET_NONE, TARGET_HTTP, TARGET_HTTPS, TARGET_WS, TARGET_WSS };

struct proxy_target {
    char host[TARGET_HOST_MAX + 1]; /* lowercase, no brackets for IPv6 */
    uint16_t port;
    enum target_scheme scheme;
    const char *path; /* absolute-form: points into the input ("/" if empty) */
    size_t path_len;
};

/* Parses a CONNECT target. Returns 0 or -EINVAL; *why names the problem. */
int target_parse_authority(const char *s, size_t len, struct proxy_target *out,
                           const char **why) __attribute__((warn_unused_result));
/* Parses an absolute-form URI (http, https, ws, wss). Returns 0 or -EINVAL. */
int target_parse_absolute(const char *s, size_t len, struct proxy_target *out,
                          const char **why) __attribute__((warn_unused_result));

#endif
