/* ws/handshake: server side of the WebSocket opening handshake (RFC 6455 §4). */
#ifndef CORDON_WS_HANDSHAKE_H
#define CORDON_WS_HANDSHAKE_H

#include <stddef.h>

struct http_req;

#define WS_ACCEPT_LEN 28

/* Checks a request against RFC 6455 §4.2.1 (GET, HTTP/1.1 upgrade headers,
 * version 13, a 16-byte base64 key) and computes Sec-WebSocket-Accept into
 * accept (WS_ACCEPT_LEN + 1 bytes).
 * Returns 0; -EINVAL with *why set (answer 400); -EPROTONOSUPPORT for an
 * unsupported version (answer 426 with "Sec-WebSocket-Version: 13"). */
int ws_handshake_check(const struct http_req *req, char *accept, const char **why)
    __attribute__((warn_unused_result));

/* Sec-WebSocket-Accept for a key (§4.2.2 step 5.4): base64(SHA-1(key + GUID)).
 * out holds WS_ACCEPT_LEN + 1 bytes. Returns 0 or -EINVAL. */
int ws_accept_key(const char *key, size_t key_len, char *out) __attribute__((warn_unused_result));

/* Formats the 101 response for accept into out. Returns its length or
 * -ENOSPC. */
int ws_handshake_response(const char *accept, char *out, size_t cap)
    __attribute__((warn_unused_result));

/* True when the comma-separated header value contains token (case-insensitive). */
int ws_header_has_token(const char *value, const char *token);

#endif
