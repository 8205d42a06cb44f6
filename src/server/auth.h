/* server/auth: the API key and signed proxy URLs.
 *
 * Every route but GET /health needs header OPEN-SANDBOX-API-KEY equal to
 * the server's key; the comparison is constant-time (both sides hashed with
 * SHA-256, then CRYPTO_memcmp), so neither content nor length leaks.
 * Browsers that cannot set headers (a WebSocket) use a signed URL from
 * GET /sandboxes/{id}/endpoints/{port}?expires=T:
 *     /s/{T}-{sig}/sandboxes/{id}/proxy/{port}/...
 * sig = hex HMAC-SHA256(key, "proxy\n{id}\n{port}\n{T}"); it opens only that
 * sandbox's port, only until T (Unix seconds), and never the lifecycle API. */
#ifndef CORDON_SERVER_AUTH_H
#define CORDON_SERVER_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_HEADER "OPEN-SANDBOX-API-KEY"
#define AUTH_TOKEN_MAX 96

/* 1 when given equals key (constant time), else 0. */
int auth_key_equal(const char *key, const char *given);
/* Formats the signed-URL token for (id, port, expires). Returns 0 or -ENOSPC. */
int auth_sign(const char *key, const char *id, uint16_t port, int64_t expires, char *out,
              size_t cap) __attribute__((warn_unused_result));
/* 0 when token (len bytes) is a valid, unexpired token for (id, port) at
 * time now; -EACCES (bad signature or malformed) or -ETIMEDOUT (expired). */
int auth_verify(const char *key, const char *id, uint16_t port, const char *token, size_t len,
                int64_t now) __attribute__((warn_unused_result));

#endif
