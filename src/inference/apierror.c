/* inference/apierror: errors in the caller's API format. SDKs parse these
 * bodies and surface the message; a bare HTML 404 or an empty close would
 * show up as a confusing decode error or a retry loop instead.
 *
 * Mid-stream failures end the stream with the API's own error event
 * (never the normal terminator, which would make a truncated answer look
 * complete):
 *   OpenAI chat/completions  data: {"error":{...}}           (the SDKs raise)
 *   OpenAI responses         event: error / data: {"type":"error",...}
 *   Anthropic                event: error / data: {"type":"error","error":{...}}
 *   Ollama (NDJSON)          {"error":"..."} on its own line */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/inference.h"
#include "core/banned.h"

static const char *openai_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 408: case 504: return "timeout_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

static const char *anthropic_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

static json_t *body_obj(enum inference_api api, int status, const char *code, const char *msg)
{
    switch (api) {
    case INFERENCE_API_OPENAI:
        return json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message", msg, "type",
                         openai_type(status), "param", "code", code);
    case INFERENCE_API_ANTHROPIC:
        return json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
                         anthropic_type(status), "message", msg);
    case INFERENCE_API_OLLAMA:
        return json_pack("{s:s}", "error", msg);
    }
    return NULL;
}

char *inference_error_body(enum inference_api api, int status, const char *code, const char *msg)
{
    json_t *o = body_obj(api, status, code, msg);
    if (!o)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static char *framed(const char *prefix, json_t *o, const char *suffix)
{
    if (!o)
        return NULL;
    char *j = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!j)
        return NULL;
    size_t n = strlen(prefix) + strlen(j) + strlen(suffix) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s", prefix, j, suffix);
    free(j);
    return s;
}

char *inference_stream_error(enum inference_api api, enum inference_shape shape, const char *code,
                             const char *msg)
{
    switch (api) {
    case INFERENCE_API_OPENAI:
        if (shape == INFERENCE_OPENAI_RESPONSES)
            return framed("event: error\ndata: ",
                          json_pack("{s:s,s:s,s:s,s:n}", "type", "error", "code", code, "message",
                                    msg, "param"),
                          "\n\n");
        return framed("data: ", body_obj(api, 502, code, msg), "\n\n");
    case INFERENCE_API_ANTHROPIC:
        return framed("event: error\ndata: ", body_obj(api, 502, code, msg), "\n\n");
    case INFERENCE_API_OLLAMA:
        return framed("", body_obj(api, 502, code, msg), "\n");
    }
    return NULL;
}
