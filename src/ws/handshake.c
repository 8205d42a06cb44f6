/* ws/handshake: RFC 6455 §4.2 opening handshake checks and accept key. */
#include "ws/handshake.h"

#include <errno.h>
#include <llhttp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/server.h"
#include "core/banned.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int ws_header_has_token(const char *value, const char *token)
{
    size_t tl = strlen(token);
    const char *p = value;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *tend = end;
        while (tend > p && (tend[-1] == ' ' || tend[-1] == '\t'))
            tend--;
        if ((size_t)(tend - p) == tl && strncasecmp(p, token, tl) == 0)
            return 1;
        p = end;
    }
    return 0;
}

/* Any header instance named name containing token. */
static int req_has_token(const struct http_req *req, const char *name, const char *token)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name_len == nl && strncasecmp(h->name, name, nl) == 0 &&
            ws_header_has_token(h->value, token))
            return 1;
    }
    return 0;
}

int ws_accept_key(const char *key, size_t key_len, char *out)
{
    unsigned char raw[24];
    unsigned char digest[SHA_DIGEST_LENGTH];
    char buf[128];
    /* §4.2.1 item 5: base64 of a 16-byte value, i.e. 24 chars ending "==" */
    if (key_len != 24 || key[22] != '=' || key[23] != '=')
        return -EINVAL;
    if (EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18)
        return -EINVAL;
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, ws_guid, sizeof(ws_guid) - 1);
    SHA1((const unsigned char *)buf, key_len + sizeof(ws_guid) - 1, digest);
    if (EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH) != WS_ACCEPT_LEN)
        return -EINVAL;
    out[WS_ACCEPT_LEN] = '\0';
    return 0;
}

int ws_handshake_check(const struct http_req *req, char *accept, const char **why)
{
    const char *key = http_req_header(req, "Sec-WebSocket-Key");
    const char *ver = http_req_header(req, "Sec-WebSocket-Version");
    if (req->method != HTTP_GET) {
        *why = "a WebSocket handshake must be a GET (RFC 6455 4.2.1)";
        return -EINVAL;
    }
    if (!req_has_token(req, "Upgrade", "websocket")) {
        *why = "missing 'Upgrade: websocket' (RFC 6455 4.2.1 item 3)";
        return -EINVAL;
    }
    if (!req_has_token(req, "Connection", "upgrade")) {
        *why = "missing 'Connection: Upgrade' (RFC 6455 4.2.1 item 4)";
        return -EINVAL;
    }
    if (!ver || strcmp(ver, "13") != 0) {
        *why = "unsupported Sec-WebSocket-Version; only 13 is supported (RFC 6455 4.4)";
        return -EPROTONOSUPPORT;
    }
    if (!key || ws_accept_key(key, strlen(key), accept) < 0) {
        *why = "Sec-WebSocket-Key must be base64 of 16 bytes (RFC 6455 4.2.1 item 5)";
        return -EINVAL;
    }
    return 0;
}

int ws_handshake_response(const char *accept, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    return n;
}
