/* inference/shape: which model API a request speaks, from its method and
 * path. Paths are matched exactly (after dropping the query); anything
 * else is "not an inference call" and gets a JSON error in the caller's
 * format (apierror.c), never a bare 404 page. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "inference/inference.h"
#include "core/banned.h"

struct shape_row {
    enum inference_shape shape;
    const char *name;
    const char *method;
    const char *path;
    bool prefix;              /* path + "/" + one segment also matches */
    enum inference_api api;
    bool has_model;
};

static const struct shape_row rows[] = {
    {INFERENCE_OPENAI_CHAT, "openai_chat_completions", "POST", "/v1/chat/completions", false, INFERENCE_API_OPENAI, true},
    {INFERENCE_OPENAI_COMPLETIONS, "openai_completions", "POST", "/v1/completions", false, INFERENCE_API_OPENAI, true},
    {INFERENCE_OPENAI_RESPONSES, "openai_responses", "POST", "/v1/responses", false, INFERENCE_API_OPENAI, true},
    {INFERENCE_OPENAI_EMBEDDINGS, "openai_embeddings", "POST", "/v1/embeddings", false, INFERENCE_API_OPENAI, true},
    {INFERENCE_OPENAI_MODELS, "openai_models", "GET", "/v1/models", true, INFERENCE_API_OPENAI, false},
    {INFERENCE_ANTHROPIC_MESSAGES, "anthropic_messages", "POST", "/v1/messages", false, INFERENCE_API_ANTHROPIC, true},
    {INFERENCE_ANTHROPIC_COUNT, "anthropic_count_tokens", "POST", "/v1/messages/count_tokens", false, INFERENCE_API_ANTHROPIC, true},
    {INFERENCE_OLLAMA_CHAT, "ollama_chat", "POST", "/api/chat", false, INFERENCE_API_OLLAMA, true},
    {INFERENCE_OLLAMA_GENERATE, "ollama_generate", "POST", "/api/generate", false, INFERENCE_API_OLLAMA, true},
    {INFERENCE_OLLAMA_TAGS, "ollama_tags", "GET", "/api/tags", false, INFERENCE_API_OLLAMA, false},
};
#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

static const struct shape_row *row_of(enum inference_shape s)
{
    for (size_t i = 0; i < N_ROWS; i++)
        if (rows[i].shape == s)
            return &rows[i];
    return NULL;
}

static bool starts(const char *p, size_t n, const char *s)
{
    size_t l = strlen(s);
    return n >= l && memcmp(p, s, l) == 0;
}

static bool path_matches(const struct shape_row *r, const char *p, size_t n)
{
    size_t l = strlen(r->path);
    if (n < l || memcmp(p, r->path, l) != 0)
        return false;
    if (n == l)
        return true;
    /* /v1/models/<id>: one non-empty segment (ids may not contain '/') */
    return r->prefix && p[l] == '/' && n > l + 1 && memchr(p + l + 1, '/', n - l - 1) == NULL;
}

enum inference_shape inference_shape_match(const char *method, size_t method_len,
                                           const char *target, size_t target_len,
                                           bool anthropic_hint, enum inference_api *api)
{
    const char *q = memchr(target, '?', target_len);
    size_t n = q ? (size_t)(q - target) : target_len;
    for (size_t i = 0; i < N_ROWS; i++) {
        const struct shape_row *r = &rows[i];
        if (!path_matches(r, target, n))
            continue;
        *api = r->api;
        /* the Responses API's WebSocket mode opens with GET + Upgrade */
        bool ok = method_len == strlen(r->method) && strncmp(method, r->method, method_len) == 0;
        if (!ok && r->shape == INFERENCE_OPENAI_RESPONSES && method_len == 3 &&
            memcmp(method, "GET", 3) == 0)
            ok = true;
        return ok ? r->shape : INFERENCE_SHAPE_NONE;
    }
    if (starts(target, n, "/api/"))
        *api = INFERENCE_API_OLLAMA;
    else if (anthropic_hint || starts(target, n, "/v1/messages") || starts(target, n, "/v1/complete"))
        *api = INFERENCE_API_ANTHROPIC;
    else
        *api = INFERENCE_API_OPENAI;
    if (anthropic_hint && starts(target, n, "/v1/complete"))
        *api = INFERENCE_API_ANTHROPIC;
    return INFERENCE_SHAPE_NONE;
}

const char *inference_shape_name(enum inference_shape s)
{
    const struct shape_row *r = row_of(s);
    return r ? r->name : NULL;
}

enum inference_api inference_shape_api(enum inference_shape s)
{
    const struct shape_row *r = row_of(s);
    return r ? r->api : INFERENCE_API_OPENAI;
}

bool inference_shape_has_model(enum inference_shape s)
{
    const struct shape_row *r = row_of(s);
    return r && r->has_model;
}

const char *inference_api_name(enum inference_api a)
{
    switch (a) {
    case INFERENCE_API_OPENAI: return "openai";
    case INFERENCE_API_ANTHROPIC: return "anthropic";
    case INFERENCE_API_OLLAMA: return "ollama";
    }
    return "openai";
}

int inference_shape_parse(const char *name, uint32_t *mask)
{
    for (size_t i = 0; i < N_ROWS; i++) {
        if (strcmp(name, rows[i].name) == 0) {
            *mask |= 1u << rows[i].shape;
            return 0;
        }
    }
    bool any = false;
    for (size_t i = 0; i < N_ROWS; i++) {
        if (strcmp(name, inference_api_name(rows[i].api)) == 0) {
            *mask |= 1u << rows[i].shape;
            any = true;
        }
    }
    return any ? 0 : -ENOENT;
}
