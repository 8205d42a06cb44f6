/* inference: routing of model API calls made to `inference.local`.
 *
 * The proxy intercepts requests for the inference host names (proxy/infer.c)
 * and hands each request to this module's pure parts:
 *   shape    which API a request speaks (OpenAI, Anthropic, Ollama paths);
 *   apierror error bodies and SSE error events in the caller's API shape;
 *   header   which request headers may reach a backend (an allowlist);
 *   body     the requested model in a JSON body, and its rewrite;
 *   routes   the operator's routes file (--inference-routes), and the choice
 *            of a route for (shape, model);
 *   usage    token counts picked out of a relayed response, chunk by chunk.
 * Nothing here does I/O on connections; everything that reads peer bytes
 * has a fuzz target (tests/fuzz/fuzz_inference_*.c). */
#ifndef CORDON_INFERENCE_INFERENCE_H
#define CORDON_INFERENCE_INFERENCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- shape ---- */

enum inference_api { INFERENCE_API_OPENAI, INFERENCE_API_ANTHROPIC, INFERENCE_API_OLLAMA };

enum inference_shape {
    INFERENCE_SHAPE_NONE,
    INFERENCE_OPENAI_CHAT,          /* POST /v1/chat/completions */
    INFERENCE_OPENAI_COMPLETIONS,   /* POST /v1/completions */
    INFERENCE_OPENAI_RESPONSES,     /* POST /v1/responses (GET: WebSocket upgrade) */
    INFERENCE_OPENAI_EMBEDDINGS,    /* POST /v1/embeddings */
    INFERENCE_OPENAI_MODELS,        /* GET /v1/models, /v1/models/<id> */
    INFERENCE_ANTHROPIC_MESSAGES,   /* POST /v1/messages */
    INFERENCE_ANTHROPIC_COUNT,      /* POST /v1/messages/count_tokens */
    INFERENCE_OLLAMA_CHAT,          /* POST /api/chat */
    INFERENCE_OLLAMA_GENERATE,      /* POST /api/generate */
    INFERENCE_OLLAMA_TAGS,          /* GET /api/tags */
    INFERENCE_SHAPE_COUNT,
};

/* Recognises a request by method and origin-form target (the query is
 * ignored; a trailing slash is not accepted). Returns the shape, or
 * INFERENCE_SHAPE_NONE. *api is always set: the API the caller speaks,
 * guessed from the path and anthropic_hint (the request carries
 * anthropic-version or x-api-key) when the shape is unknown, so that even
 * an unknown path is answered in the caller's format. */
enum inference_shape inference_shape_match(const char *method, size_t method_len,
                                           const char *target, size_t target_len,
                                           bool anthropic_hint, enum inference_api *api);
/* Stable names used in the routes file and the audit log
 * ("openai_chat_completions", ...); NULL for NONE. */
const char *inference_shape_name(enum inference_shape s);
/* Shape by name; also accepts the API names "openai", "anthropic", "ollama"
 * meaning all shapes of that API (*mask gets one bit per shape). Returns 0
 * or -ENOENT. */
int inference_shape_parse(const char *name, uint32_t *mask);
enum inference_api inference_shape_api(enum inference_shape s);
const char *inference_api_name(enum inference_api a);
/* Whether requests of this shape carry a JSON body with a "model" field. */
bool inference_shape_has_model(enum inference_shape s);

/* ---- apierror ---- */

/* A JSON error body in api's format for an HTTP error response:
 *   openai    {"error":{"message":M,"type":T,"param":null,"code":C}}
 *   anthropic {"type":"error","error":{"type":T,"message":M}}
 *   ollama    {"error":M}
 * where T is derived from status. Returns a malloc'd NUL-terminated string
 * or NULL on OOM. */
char *inference_error_body(enum inference_api api, int status, const char *code, const char *msg);
/* The event that ends a stream that failed mid-way, in the stream's own
 * format (api + shape: the Responses API has its own error event; Ollama
 * streams NDJSON). Returns a malloc'd string or NULL on OOM. */
char *inference_stream_error(enum inference_api api, enum inference_shape shape, const char *code,
                             const char *msg);

/* ---- header ---- */

/* True when a request header may be forwarded to a backend. Credentials
 * (authorization, x-api-key, cookie, anything naming key/token/secret/auth),
 * hop-by-hop and framing headers are never on the list. */
bool inference_header_allowed(const char *name, size_t len);
/* True when a header carries (or names) a credential; such headers are
 * dropped and counted in the audit event. */
bool inference_header_is_credential(const char *name, size_t len);

/* ---- body ---- */

#define INFERENCE_BODY_MAX (64u << 20) /* request bodies that must be read */
#define INFERENCE_MODEL_MAX 256

struct inference_body_info {
    bool json_object;       /* the body is a JSON object */
    bool has_model;
    char model[INFERENCE_MODEL_MAX + 1];
    bool stream;            /* "stream": true */
    bool stream_given;      /* "stream" is present (Ollama streams unless it is false) */
};
/* Reads the fields routing needs from a request body. Never fails on bad
 * JSON (json_object stays false). Returns 0, or -EINVAL when "model" is
 * present but not a string, or longer than INFERENCE_MODEL_MAX. */
int inference_body_inspect(const char *body, size_t len, struct inference_body_info *out)
    __attribute__((warn_unused_result));
/* Replaces "model" in a JSON object body (other members keep their order
 * and values). *out is malloc'd. Returns 0, -EINVAL (not a JSON object) or
 * -ENOMEM. */
int inference_body_set_model(const char *body, size_t len, const char *model, char **out,
                             size_t *out_len) __attribute__((warn_unused_result));

/* ---- usage ---- */

/* Finds token counts in a response body streamed in arbitrary pieces (JSON,
 * SSE or NDJSON): the last value seen of each known key wins. */
struct inference_usage {
    int64_t input, output; /* -1 until seen */
    /* scanner state */
    unsigned st;
    char key[24];
    size_t key_len;
    int64_t num;
    int which;
};
void inference_usage_init(struct inference_usage *u);
void inference_usage_feed(struct inference_usage *u, const char *p, size_t n);

/* ---- routes ---- */

struct inference_route {
    char *name;
    uint32_t shapes;          /* bit (1u << shape) per shape served */
    char *base_url;
    bool tls;                 /* https */
    char *host;               /* lowercase; IPv6 without brackets */
    uint16_t port;
    char *prefix;             /* path of base_url without a trailing '/' ("" for none) */
    char *credential;         /* value injected, or NULL; never logged */
    char *credential_from;    /* "env:NAME" or "file:PATH" (for logs) */
    char **models;            /* globs of requested models this route takes; none = any */
    size_t n_models;
    char *model;              /* rewrite every request's model to this, or NULL */
    char **alias_from, **alias_to; /* requested → sent */
    size_t n_aliases;
    char **hdr_name, **hdr_value;  /* default headers (added unless the client sent them) */
    size_t n_headers;
    bool websocket;           /* the backend accepts WebSocket on /v1/responses */
    uint32_t connect_timeout_ms;
    uint32_t idle_timeout_ms;
};

struct inference_routes {
    _Atomic unsigned refs;    /* inference_routes_ref/unref; 1 when loaded */
    char *path;
    char **hosts;             /* intercepted names, lowercase, no trailing dot */
    size_t n_hosts;
    uint16_t *ports;          /* intercepted ports; none = any */
    size_t n_ports;
    struct inference_route *routes;
    size_t n_routes;
    uint64_t max_body;        /* body cap when a body must be read */
};

#define INFERENCE_DEFAULT_HOST "inference.local"
#define INFERENCE_DEFAULT_CONNECT_MS 10000u
#define INFERENCE_DEFAULT_IDLE_MS 900000u /* 15 min: reasoning models think first */

/* Loads and validates a routes file. Every problem is printed to err (one
 * line each, "FILE:LINE:COL: what; how to fix"). Credentials are read from
 * the supervisor's environment or files now. Returns 0 or -EINVAL/-ENOMEM/
 * -errno (file unreadable). */
int inference_routes_load(const char *path, FILE *err, struct inference_routes **out)
    __attribute__((warn_unused_result));
/* The same from a buffer (fuzzing, unit tests); name is used in messages. */
int inference_routes_parse(const char *name, const char *data, size_t len, FILE *err,
                           struct inference_routes **out) __attribute__((warn_unused_result));
void inference_routes_free(struct inference_routes *r);
/* Loaded routes are immutable and shared: a new reference / drop one (the
 * last frees). Thread-safe. */
struct inference_routes *inference_routes_ref(struct inference_routes *r);
void inference_routes_unref(struct inference_routes *r);

/* True when host (lowercase, as parsed by the proxy; a trailing dot is
 * ignored) and port are intercepted. r may be NULL: then only
 * INFERENCE_DEFAULT_HOST on any port. */
/* True when host (any case, trailing dot or not) is an intercepted name,
 * whatever the port (the policy DNS answers it). */
bool inference_routes_names(const struct inference_routes *r, const char *host);
bool inference_routes_intercepts(const struct inference_routes *r, const char *host, uint16_t port);

/* The route for a request: the first that serves shape and whose models
 * (or aliases) take model ("" when the request names none). NULL if none. */
const struct inference_route *inference_route_pick(const struct inference_routes *r,
                                                   enum inference_shape shape, const char *model);
/* The model to send for a requested one: the alias target, else the route's
 * fixed model, else NULL (keep the request's). */
const char *inference_route_model(const struct inference_route *rt, const char *requested);
/* Writes the backend path for an origin-form target (query kept) into out:
 * prefix + target, with a duplicated "/v1" removed (base .../v1 and target
 * /v1/...). Returns 0 or -ENOSPC. */
int inference_route_path(const struct inference_route *rt, const char *target, size_t target_len,
                         char *out, size_t cap) __attribute__((warn_unused_result));

#endif
