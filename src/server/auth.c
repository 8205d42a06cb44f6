/* server/auth: constant-time key check and signed URLs (see auth.h). */
#include "server/auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "core/parse.h"
#include "core/banned.h"

int auth_key_equal(const char *key, const char *given)
{
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    if (!key || !given)
        return 0;
    SHA256((const unsigned char *)key, strlen(key), a);
    SHA256((const unsigned char *)given, strlen(given), b);
    return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

static int mac_hex(const char *key, const char *id, uint16_t port, int64_t expires, char *hex)
{
    char msg[160];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    int n = snprintf(msg, sizeof(msg), "proxy\n%s\n%u\n%lld", id, port, (long long)expires);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -ENOSPC;
    if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg, (size_t)n, mac,
              &ml))
        return -EIO;
    for (unsigned i = 0; i < ml; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    return (int)(2 * ml);
}

int auth_sign(const char *key, const char *id, uint16_t port, int64_t expires, char *out,
              size_t cap)
{
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    int r = mac_hex(key, id, port, expires, hex);
    if (r < 0)
        return r;
    int n = snprintf(out, cap, "%lld-%s", (long long)expires, hex);
    return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

int auth_verify(const char *key, const char *id, uint16_t port, const char *token, size_t len,
                int64_t now)
{
    const char *dash = memchr(token, '-', len);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    uint32_t exp;
    if (!dash || parse_u32(token, (size_t)(dash - token), 1, UINT32_MAX, &exp) < 0)
        return -EACCES;
    int hl = mac_hex(key, id, port, exp, hex);
    size_t sl = len - (size_t)(dash + 1 - token);
    if (hl < 0 || sl != (size_t)hl || CRYPTO_memcmp(hex, dash + 1, sl) != 0)
        return -EACCES;
    return (int64_t)exp < now ? -ETIMEDOUT : 0;
}
