/* inference/header: which request headers reach a backend.
 *
 * An allowlist, not a denylist: a client library that invents a new
 * credential header (x-goog-api-key, api-key, x-portkey-...) must not leak
 * it to whoever runs the backend. The route's own credential and default
 * headers are added by the proxy after this filter. Framing (Content-Length,
 * Transfer-Encoding), Host and hop-by-hop headers are written by the proxy. */
#include <string.h>
#include <strings.h>

#include "inference/inference.h"
#include "core/banned.h"

static const char *const allowed[] = {
    "accept", "accept-encoding", "accept-language", "content-type", "user-agent",
    "anthropic-version", "anthropic-beta", "openai-beta", "idempotency-key",
    "x-request-id", "traceparent", "tracestate", "sec-websocket-key", "sec-websocket-version",
    "sec-websocket-protocol", "sec-websocket-extensions",
};

static const char *const credential_words[] = {"auth", "key", "token", "secret", "cookie",
                                               "password", "session", "credential"};

static bool has_word(const char *name, size_t len, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= len; i++)
        if (strncasecmp(name + i, w, wl) == 0)
            return true;
    return false;
}

bool inference_header_is_credential(const char *name, size_t len)
{
    if (len == 15 && strncasecmp(name, "idempotency-key", 15) == 0)
        return false;
    if (len == 17 && strncasecmp(name, "sec-websocket-key", 17) == 0)
        return false;
    for (size_t i = 0; i < sizeof(credential_words) / sizeof(credential_words[0]); i++)
        if (has_word(name, len, credential_words[i]))
            return true;
    return false;
}

bool inference_header_allowed(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (len == strlen(allowed[i]) && strncasecmp(name, allowed[i], len) == 0)
            return true;
    /* the official SDKs' telemetry headers (x-stainless-os, -lang, -retry-count ...) */
    return len > 12 && strncasecmp(name, "x-stainless-", 12) == 0 &&
           !inference_header_is_credential(name, len);
}
