/* proxy/infer: inference interception — requests to `inference.local`
 * (names and ports from the routes file) routed to operator-configured
 * model backends. An entry adapter (infer_entry, called from entry.c) and
 * one state of the pipeline, INFER; the owner (state.c) routes
 *   REQ_HEAD → IDENTIFY (audit only) → PEEK (CONNECT) | INFER (a request)
 *   INFER → RESOLVE → CONNECT → [TLS_CONNECT] → EXCHANGE | INFER → EXCHANGE
 * and never through DECIDE.
 *
 * Entry, before the network policy (the sandbox never names the backend,
 * so there is nothing for the policy to decide):
 *   CONNECT inference.local:ANY → 200, then the first byte is peeked
 *     (inspect.c): a TLS record type (0x14-0x18) → terminated with a leaf
 *     for the name from the sandbox CA; an ASCII letter → plaintext HTTP on
 *     the raw stream; anything else → refused, the audit event names the
 *     byte. Both streams then walk requests in the same loop as inspected
 *     tunnels (keep-alive and pipelining included);
 *   absolute-form http:// or https://inference.local/... → the same request
 *     handling on the proxy connection.
 * Per request (state INFER while the body is read):
 *   shape (inference/shape) → headers kept by the allowlist → body read
 *   (Content-Length, or chunked: decoded by the request parser; capped
 *   either way, and sent on with Content-Length) → model → route → model rewrite →
 *   head + body written to uout → the route's backend dialled (no address
 *   fence: the operator chose it; the sandbox still cannot reach it
 *   directly) → the forward relay streams the response as it arrives.
 * A stream the backend breaks (close, read error, idle timeout) ends with
 * the API's own error event and the chunked terminator when the relay is
 * between chunks, else the connection is cut: never a clean-looking end.
 * One "inference" audit event per request, never with a credential. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/audit.h"
#include "core/log.h"
#include "inference/inference.h"
#include "proxy/internal.h"
#include "proxy/side.h"
#include "core/banned.h"

#define INFER_HDRS_CAP 8192

struct infer_req {
    bool reuse;               /* the open backend connection serves this request */
    enum inference_shape shape;
    enum inference_api api;
    const struct inference_route *rt;
    char asked[INFERENCE_MODEL_MAX + 1];
    char sent[INFERENCE_MODEL_MAX + 1];
    bool stream;
    bool upgrade;
    char target[512];         /* origin-form target, query included */
    size_t target_len;
    char *hdrs;               /* allowed request headers, "Name: value\r\n"... */
    size_t hdrs_len;
    unsigned stripped;        /* credential headers dropped */
    bool sent_hdr[8];         /* the client sent route default header i (first 8) */
    char *body;
    size_t body_len, body_got;
    bool body_chunked;        /* decoded from chunked framing into body (cap body_cap) */
    bool body_over;           /* the decoded body passed body_cap */
    size_t body_cap;
    uint64_t start_ms, ttfb_ms;
    bool got_first, in_flight;
    uint64_t up0, down0;      /* connection byte counters at the start */
    struct inference_usage usage;
    /* response framing, to know when a chunk of our own may be appended */
    unsigned head_match;      /* progress through "\r\n\r\n" */
    bool head_done, chunked;
    struct chunk_guard cg;
};

static struct inference_routes *routes_of(struct conn *c) { return c->routes; }

bool infer_intercepts(struct conn *c)
{
    /* one snapshot per connection: a reload never changes a connection's routes mid-way */
    if (!c->routes && c->w->proxy->routes_path)
        c->routes = proxy_routes_get(c->w->proxy);
    return inference_routes_intercepts(c->routes, c->target.host, c->target.port);
}

void infer_free(struct conn *c)
{
    if (c->state == CONN_CLOSED) {
        inference_routes_unref(c->routes);
        c->routes = NULL;
    }
    if (!c->ir)
        return;
    free(c->ir->hdrs);
    free(c->ir->body);
    free(c->ir);
    c->ir = NULL;
}

/* ---- audit ---- */

static void audit_request(struct conn *c, int status, const char *outcome)
{
    struct infer_req *ir = c->ir;
    if (!ir || !ir->in_flight)
        return;
    ir->in_flight = false;
    uint64_t now = loop_now_ms(c->w->loop);
    json_t *o = json_object();
    json_object_set_new(o, "outcome", json_string(outcome));
    json_object_set_new(o, "host", json_string(c->infer_name));
    json_object_set_new(o, "port", json_integer(c->infer_port));
    if (ir->rt) {
        char be[300];
        bool v6 = strchr(ir->rt->host, ':') != NULL;
        snprintf(be, sizeof(be), "%s://%s%s%s:%u", ir->rt->tls ? "https" : "http", v6 ? "[" : "",
                 ir->rt->host, v6 ? "]" : "", ir->rt->port);
        json_object_set_new(o, "backend", json_string(be));
    }
    json_object_set_new(o, "route", ir->rt ? json_string(ir->rt->name) : json_null());
    json_object_set_new(o, "shape", ir->shape ? json_string(inference_shape_name(ir->shape)) : json_null());
    json_object_set_new(o, "api", json_string(inference_api_name(ir->api)));
    json_object_set_new(o, "method", json_string(c->method));
    json_object_set_new(o, "path", json_string(c->path));
    json_object_set_new(o, "model_requested", ir->asked[0] ? json_string(ir->asked) : json_null());
    json_object_set_new(o, "model_sent", ir->sent[0] ? json_string(ir->sent) : json_null());
    json_object_set_new(o, "stream", json_boolean(ir->stream));
    json_object_set_new(o, "status", status ? json_integer(status) : json_null());
    json_object_set_new(o, "ttfb_ms", ir->got_first ? json_integer((json_int_t)ir->ttfb_ms) : json_null());
    json_object_set_new(o, "total_ms", json_integer((json_int_t)(now - ir->start_ms)));
    json_object_set_new(o, "bytes_up", json_integer((json_int_t)(c->fwd_up - ir->up0)));
    json_object_set_new(o, "bytes_down", json_integer((json_int_t)(c->fwd_down - ir->down0)));
    json_object_set_new(o, "input_tokens", ir->usage.input >= 0 ? json_integer(ir->usage.input) : json_null());
    json_object_set_new(o, "output_tokens", ir->usage.output >= 0 ? json_integer(ir->usage.output) : json_null());
    json_object_set_new(o, "credentials_stripped", json_integer(ir->stripped));
    json_object_set_new(o, "credential_injected",
                        ir->rt && ir->rt->credential ? json_string(ir->rt->credential_from) : json_null());
    auditev_inference(c, o);
}

/* ---- responses of our own, in the caller's API format ---- */

static const char *status_text(int s)
{
    switch (s) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 426: return "Upgrade Required";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

/* The request (head and any body) has been consumed: the connection can
 * carry the next one. */
static enum conn_step send_json(struct conn *c, int status, const char *code, const char *body, bool keep)
{
    char head[400];
    size_t bl = strlen(body);
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "%s%s%sCache-Control: no-store\r\nConnection: %s\r\n\r\n",
                      status, status_text(status), bl, code ? "X-Cordon-Inference-Error: " : "",
                      code ? code : "", code ? "\r\n" : "", keep ? "keep-alive" : "close");
    if (hl < 0 || (size_t)hl >= sizeof(head) || buf_append(&c->cout, head, (size_t)hl) < 0 ||
        buf_append(&c->cout, body, bl) < 0) {
        log_warn("proxy: conn %llu: inference response does not fit the output buffer; closing",
                 (unsigned long long)c->id);
        keep = false;
    }
    c->respond_keep = keep;
    c->head_parsed = false;
    if (!keep && !c->close_reason)
        c->close_reason = code ? code : PROXY_REASON_RESPONSE_SENT;
    return CONN_STEP_RESPOND; /* RESPONDING sends it, then KEEPALIVE or CLOSED */
}

/* An error before anything of a response was relayed. consumed: the whole
 * request has been taken from the input (else the connection closes, since
 * its unread body would be taken for the next request). */
static enum conn_step fail(struct conn *c, int status, const char *code, const char *msg, bool consumed)
{
    struct infer_req *ir = c->ir;
    enum inference_api api = ir ? ir->api : INFERENCE_API_OPENAI;
    if (ir)
        audit_request(c, status, code);
    log_info("proxy: conn %llu: inference %s %s: %d %s: %s", (unsigned long long)c->id, c->method,
             c->path, status, code, msg);
    char *b = inference_error_body(api, status, code, msg);
    bool keep = consumed && !c->client_eof && c->req_keep_alive;
    enum conn_step st = send_json(c, status, code, b ? b : "{}", keep);
    free(b);
    return st;
}

enum conn_step infer_respond(struct conn *c, int status, const char *code, const char *detail)
{
    /* the whole request was taken from the input once INFER dialled */
    bool consumed = c->state == CONN_RESOLVE || c->state == CONN_CONNECT ||
                    c->state == CONN_TLS_CONNECT || c->state == CONN_EXCHANGE;
    if (c->ir && c->ir->got_first) /* mid-response: too late for a status */
        return conn_fail(c, code);
    upstream_close(c);
    return fail(c, status, code, detail, consumed && c->ir != NULL);
}

/* ---- the request (state INFER) ---- */

static void copy_path(struct conn *c, const char *t, size_t n)
{
    const char *q = memchr(t, '?', n);
    size_t l = q ? (size_t)(q - t) : n;
    if (l > sizeof(c->path) - 1)
        l = sizeof(c->path) - 1;
    memcpy(c->path, t, l);
    c->path[l] = '\0';
}

static int hdr_append(struct infer_req *ir, const char *name, size_t nl, const char *val, size_t vl)
{
    if (ir->hdrs_len + nl + vl + 4 >= INFER_HDRS_CAP)
        return -ENOBUFS;
    char *p = ir->hdrs + ir->hdrs_len;
    memcpy(p, name, nl);
    memcpy(p + nl, ": ", 2);
    memcpy(p + nl + 2, val, vl);
    memcpy(p + nl + 2 + vl, "\r\n", 2);
    ir->hdrs_len += nl + vl + 4;
    return 0;
}

/* Keeps the allowed headers of the request head (the head is about to be
 * consumed from the input buffer). */
static int keep_headers(struct conn *c)
{
    struct infer_req *ir = c->ir;
    const struct http_head *h = &c->msg->head;
    ir->hdrs = malloc(INFER_HDRS_CAP);
    if (!ir->hdrs)
        return -ENOMEM;
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct http_hdr *x = &h->headers[i];
        if (inference_header_is_credential(x->name, x->name_len))
            ir->stripped++;
        if (!inference_header_allowed(x->name, x->name_len))
            continue;
        if (hdr_append(ir, x->name, x->name_len, x->value, x->value_len) < 0)
            return -ENOBUFS;
    }
    return 0;
}

static bool client_sent(const char *hdrs, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = hdrs, *end = hdrs + len; p < end;) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0)
            return true;
        p = eol + 2;
    }
    return false;
}

/* Writes the backend request (head + body) into uout. */
static int build_upstream(struct conn *c)
{
    struct infer_req *ir = c->ir;
    const struct inference_route *rt = ir->rt;
    char path[1024], line[1400];
    if (inference_route_path(rt, ir->target, ir->target_len, path, sizeof(path)) < 0)
        return -ENOBUFS;
    size_t cap = ir->hdrs_len + ir->body_len + 4096;
    for (size_t i = 0; i < rt->n_headers; i++)
        cap += strlen(rt->hdr_name[i]) + strlen(rt->hdr_value[i]) + 4;
    if (rt->credential)
        cap += strlen(rt->credential) + 32;
    buf_free(&c->uout);
    if (buf_init(&c->uout, cap) < 0)
        return -ENOMEM;
    struct buf *b = &c->uout;
    bool v6 = strchr(rt->host, ':') != NULL;
    bool dflt = rt->port == (rt->tls ? 443 : 80);
    char port[8] = "";
    if (!dflt)
        snprintf(port, sizeof(port), ":%u", rt->port);
    int n = snprintf(line, sizeof(line), "%s %s HTTP/1.1\r\nHost: %s%s%s%s\r\n", c->method, path,
                     v6 ? "[" : "", rt->host, v6 ? "]" : "", port);
    int r = n < 0 || (size_t)n >= sizeof(line) ? -1 : buf_append(b, line, (size_t)n);
    r |= buf_append(b, ir->hdrs, ir->hdrs_len);
    for (size_t i = 0; i < rt->n_headers; i++) {
        if (client_sent(ir->hdrs, ir->hdrs_len, rt->hdr_name[i]))
            continue;
        n = snprintf(line, sizeof(line), "%s: %s\r\n", rt->hdr_name[i], rt->hdr_value[i]);
        r |= n < 0 || (size_t)n >= sizeof(line) ? -1 : buf_append(b, line, (size_t)n);
    }
    if (rt->credential) {
        bool anth = ir->api == INFERENCE_API_ANTHROPIC;
        r |= buf_append(b, anth ? "x-api-key: " : "Authorization: Bearer ", anth ? 11 : 22);
        r |= buf_append(b, rt->credential, strlen(rt->credential));
        r |= buf_append(b, "\r\n", 2);
    }
    if (ir->upgrade) {
        r |= buf_append(b, "Connection: Upgrade\r\nUpgrade: websocket\r\n", 41);
    } else {
        if (ir->body_len || c->msg->head.method == HTTP_POST) {
            n = snprintf(line, sizeof(line), "Content-Length: %zu\r\n", ir->body_len);
            r |= buf_append(b, line, (size_t)n);
        }
        r |= buf_append(b, "Connection: keep-alive\r\n", 24);
    }
    r |= buf_append(b, "\r\n", 2);
    if (ir->body_len)
        r |= buf_append(b, ir->body, ir->body_len);
    free(ir->body);
    ir->body = NULL;
    return r ? -ENOBUFS : 0;
}

static enum conn_step dial_route(struct conn *c)
{
    const struct inference_route *rt = c->ir->rt;
    if (build_upstream(c) < 0)
        return fail(c, 502, PROXY_REASON_INFERENCE_REQUEST_TOO_LARGE, "the rewritten request does not fit", true);
    c->ir->reuse = c->ufd >= 0 && !c->upstream_eof && c->upstream_port == rt->port &&
                   strcmp(c->upstream_host, rt->host) == 0 && (c->utls != NULL) == rt->tls;
    snprintf(c->target.host, sizeof(c->target.host), "%s", rt->host);
    c->target.port = rt->port;
    c->target.scheme = rt->tls ? TARGET_HTTPS : TARGET_HTTP;
    c->idle_ms = rt->idle_timeout_ms;
    c->head_parsed = true; /* a request waits for this backend */
    return CONN_STEP_NEXT; /* EXCHANGE on the open backend connection, else RESOLVE */
}

bool infer_reuses_upstream(const struct conn *c)
{
    return c->ir && c->ir->reuse;
}

bool infer_route_tls(const struct conn *c)
{
    return c->ir && c->ir->rt && c->ir->rt->tls;
}

uint64_t infer_idle_ms(const struct conn *c)
{
    return c->ir && c->ir->rt ? c->ir->rt->idle_timeout_ms : INFERENCE_DEFAULT_IDLE_MS;
}

/* Answers GET /v1/models from the routes when no route serves it. */
static enum conn_step answer_models(struct conn *c)
{
    const struct inference_routes *rs = routes_of(c);
    json_t *data = json_array();
    for (size_t i = 0; rs && i < rs->n_routes; i++) {
        const struct inference_route *rt = &rs->routes[i];
        if (rt->model)
            json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", rt->model, "object", "model",
                                                  "created", 0, "owned_by", rt->name));
        for (size_t k = 0; k < rt->n_aliases; k++)
            json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", rt->alias_from[k], "object",
                                                  "model", "created", 0, "owned_by", rt->name));
        for (size_t k = 0; k < rt->n_models; k++)
            if (!strchr(rt->models[k], '*'))
                json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", rt->models[k], "object",
                                                      "model", "created", 0, "owned_by", rt->name));
    }
    json_t *o = json_pack("{s:s,s:o}", "object", "list", "data", data);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    audit_request(c, 200, "answered_from_routes");
    enum conn_step st = send_json(c, 200, NULL, s ? s : "{\"object\":\"list\",\"data\":[]}",
                                  c->req_keep_alive && !c->client_eof);
    free(s);
    return st;
}

static enum conn_step body_complete(struct conn *c)
{
    struct infer_req *ir = c->ir;
    struct inference_body_info bi;
    if (inference_body_inspect(ir->body, ir->body_len, &bi) < 0) {
        return fail(c, 400, PROXY_REASON_INFERENCE_BAD_MODEL, "\"model\" must be a string of at most 256 characters", true);
    }
    /* Ollama streams unless the body says "stream": false */
    ir->stream = bi.stream || (ir->api == INFERENCE_API_OLLAMA && bi.json_object && !bi.stream_given);
    if (bi.has_model)
        snprintf(ir->asked, sizeof(ir->asked), "%s", bi.model);
    ir->rt = inference_route_pick(routes_of(c), ir->shape, ir->asked);
    if (!ir->rt) {
        char m[400];
        snprintf(m, sizeof(m), "no inference route serves %s for model '%s'; the operator's routes file "
                 "lists the models available", inference_shape_name(ir->shape), ir->asked);
        return fail(c, 404, PROXY_REASON_MODEL_NOT_FOUND, m, true);
    }
    const char *to = inference_route_model(ir->rt, ir->asked);
    snprintf(ir->sent, sizeof(ir->sent), "%s", to ? to : ir->asked);
    if (to && strcmp(to, ir->asked) != 0) {
        char *out;
        size_t ol;
        int r = bi.json_object ? inference_body_set_model(ir->body, ir->body_len, to, &out, &ol) : -EINVAL;
        if (r < 0) {
            return fail(c, r == -ENOMEM ? 503 : 400, PROXY_REASON_INFERENCE_BODY_NOT_JSON,
                 "the route rewrites the model, so the body must be a JSON object", true);
            }
        free(ir->body);
        ir->body = out;
        ir->body_len = ol;
    }
    return dial_route(c);
}

/* The request parser's decoded bytes of a chunked body. */
static void collect_chunked(void *data, const char *at, size_t len)
{
    struct infer_req *ir = ((struct conn *)data)->ir;
    if (ir->body_over || len > ir->body_cap - ir->body_len) {
        ir->body_over = true;
        return;
    }
    memcpy(ir->body + ir->body_len, at, len);
    ir->body_len += len;
}

/* A chunked body: read into cin, decoded by the request parser (llhttp and
 * the chunk guard) into ir->body, at most the routes' body limit; the
 * bytes after the message (a pipelined request) stay in cin. */
static enum conn_step read_chunked(struct conn *c)
{
    struct infer_req *ir = c->ir;
    struct http_parser *hp = &c->msg->req;
    for (;;) {
        if (c->cin.len) {
            size_t used = 0;
            hp->on_body = collect_chunked;
            hp->body_data = c;
            enum http_step st = http_parse_body(hp, buf_head(&c->cin), c->cin.len, &used);
            hp->on_body = NULL;
            hp->body_data = NULL;
            if (st == HTTP_ERROR) {
                char m[300];
                snprintf(m, sizeof(m), "the request body's chunked framing is invalid (%s)",
                         http_parser_error(hp));
                return fail(c, 400, PROXY_REASON_BAD_REQUEST_BODY, m, false);
            }
            buf_consume(&c->cin, used);
            c->fwd_up += used;
            if (ir->body_over) {
                char m[200];
                snprintf(m, sizeof(m), "the request body exceeds the inference body limit (%zu bytes)",
                         ir->body_cap);
                return fail(c, 413, PROXY_REASON_REQUEST_TOO_LARGE, m, false);
            }
            if (st == HTTP_MSG_DONE) {
                ir->body[ir->body_len] = '\0';
                ir->body_got = ir->body_len;
                return body_complete(c);
            }
        }
        buf_compact(&c->cin);
        long n = side_buf_read(&c->cin, c->cfd, c->ctls);
        if (n == -EAGAIN)
            return CONN_STEP_WAIT;
        if (n <= 0) {
            const char *why = n == 0 ? PROXY_REASON_CLIENT_CLOSED_MID_REQUEST : PROXY_REASON_CLIENT_READ_ERROR;
            audit_request(c, 0, why);
            return conn_fail(c, why);
        }
    }
}

/* Reads the rest of the body straight into ir->body (never past it: the
 * next pipelined request stays in the socket). */
static enum conn_step read_body(struct conn *c)
{
    struct infer_req *ir = c->ir;
    if (ir->body_chunked)
        return read_chunked(c);
    while (ir->body_got < ir->body_len) {
        long n = side_recv(c->cfd, c->ctls, ir->body + ir->body_got, ir->body_len - ir->body_got);
        if (n == -EAGAIN)
            return CONN_STEP_WAIT;
        if (n <= 0) {
            const char *why = n == 0 ? PROXY_REASON_CLIENT_CLOSED_MID_REQUEST : PROXY_REASON_CLIENT_READ_ERROR;
            audit_request(c, 0, why);
            return conn_fail(c, why);
        }
        ir->body_got += (size_t)n;
        c->fwd_up += (uint64_t)n;
    }
    return body_complete(c);
}

enum conn_step infer_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    if (s == CONN_SIDE_UPSTREAM) {
        upstream_idle_event(c);
        return CONN_STEP_WAIT;
    }
    if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return CONN_STEP_WAIT;
    return read_body(c);
}

enum conn_step infer_timer(struct conn *c)
{
    return fail(c, 408, PROXY_REASON_CLIENT_TIMEOUT, "the request body did not arrive in time", false);
}

enum conn_step infer_enter(struct conn *c)
{
    struct http_head *h = &c->msg->head;
    const char *t = c->kind == KIND_FORWARD ? c->target.path : h->target;
    size_t tl = c->kind == KIND_FORWARD ? c->target.path_len : h->target_len;
    size_t ml = h->method_len < sizeof(c->method) - 1 ? h->method_len : sizeof(c->method) - 1;
    memcpy(c->method, h->method_str, ml);
    c->method[ml] = '\0';
    copy_path(c, t, tl);
    infer_free(c);
    struct infer_req *ir = c->ir = calloc(1, sizeof(*ir));
    if (!ir) {
        return conn_fail(c, PROXY_REASON_OUT_OF_MEMORY);
    }
    ir->in_flight = true;
    ir->start_ms = loop_now_ms(c->w->loop);
    ir->up0 = c->fwd_up;
    ir->down0 = c->fwd_down;
    inference_usage_init(&ir->usage);
    c->req_keep_alive = h->keep_alive;
    bool hint = http_head_find(h, "anthropic-version") || http_head_find(h, "x-api-key");
    ir->shape = inference_shape_match(h->method_str, h->method_len, t, tl, hint, &ir->api);
    if (tl == 0 || t[0] != '/' || tl >= sizeof(ir->target)) {
        return fail(c, 400, PROXY_REASON_INFERENCE_BAD_TARGET, "send an origin-form path such as /v1/chat/completions", false);
    }
    memcpy(ir->target, t, tl);
    ir->target_len = tl;
    if (!routes_of(c)) {
        return fail(c, 503, PROXY_REASON_INFERENCE_NOT_CONFIGURED,
             "no inference routes are configured (the operator starts cordon with --inference-routes FILE)", false);
    }
    if (ir->shape == INFERENCE_SHAPE_NONE) {
        char m[1024];
        snprintf(m, sizeof(m), "%s %s is not an inference API call cordon routes (OpenAI /v1/chat/completions, "
                 "/v1/completions, /v1/responses, /v1/embeddings, /v1/models; Anthropic /v1/messages, "
                 "/v1/messages/count_tokens; Ollama /api/chat, /api/generate, /api/tags)", c->method, c->path);
        return fail(c, 404, PROXY_REASON_UNKNOWN_INFERENCE_PATH, m, false);
    }
    if (keep_headers(c) < 0) {
        return fail(c, 431, PROXY_REASON_HEAD_TOO_LARGE, "the request headers kept for the backend exceed 8 KiB", false);
    }
    ir->upgrade = h->upgrade;
    c->msg->head.upgrade = false; /* set again below for the one upgrade relayed */
    if (ir->shape == INFERENCE_OPENAI_RESPONSES && h->method == HTTP_GET) {
        ir->rt = inference_route_pick(routes_of(c), ir->shape, "");
        if (!ir->upgrade) {
            return fail(c, 405, PROXY_REASON_METHOD_NOT_ALLOWED, "GET /v1/responses is only for WebSocket upgrades; POST a request", false);
        }
        if (!ir->rt || !ir->rt->websocket) {
            return fail(c, 426, PROXY_REASON_WEBSOCKET_UNSUPPORTED,
                 "the inference route does not support WebSocket on /v1/responses; use HTTP (POST /v1/responses)",
                 false);
        }
        c->msg->head.upgrade = true;
    } else {
        ir->upgrade = false; /* only /v1/responses upgrades; Upgrade is not forwarded */
    }
    uint64_t cl = c->msg->req.p.content_length;
    bool chunked = http_parser_chunked(&c->msg->req);
    bool has_body = h->has_body;
    if (has_body && !chunked && cl > routes_of(c)->max_body) {
        char m[200];
        snprintf(m, sizeof(m), "the request body (%llu bytes) exceeds the inference body limit (%llu bytes)",
                 (unsigned long long)cl, (unsigned long long)routes_of(c)->max_body);
        return fail(c, 413, PROXY_REASON_REQUEST_TOO_LARGE, m, false);
    }
    /* the head is consumed now: everything needed from it was copied */
    c->fwd_up += h->len;
    buf_consume(&c->cin, h->len);
    if (!ir->rt && !inference_shape_has_model(ir->shape)) {
        ir->rt = inference_route_pick(routes_of(c), ir->shape, "");
        if (!ir->rt && ir->shape == INFERENCE_OPENAI_MODELS && strcmp(c->path, "/v1/models") == 0 && !has_body) {
            return answer_models(c);
        }
    }
    ir->body_chunked = chunked;
    ir->body_len = has_body && !chunked ? (size_t)cl : 0;
    ir->body_cap = chunked ? routes_of(c)->max_body : ir->body_len;
    ir->body = malloc(ir->body_cap + 1);
    if (!ir->body) {
        return fail(c, 503, PROXY_REASON_OUT_OF_MEMORY, "the proxy is out of memory", false);
    }
    size_t from_cin = c->cin.len < ir->body_len ? c->cin.len : ir->body_len;
    memcpy(ir->body, buf_head(&c->cin), from_cin);
    buf_consume(&c->cin, from_cin);
    c->fwd_up += from_cin;
    ir->body_got = from_cin;
    ir->body[ir->body_len] = '\0';
    if (!inference_shape_has_model(ir->shape) || ir->upgrade) {
        if (!ir->rt) {
            char m[300];
            snprintf(m, sizeof(m), "no inference route serves %s", inference_shape_name(ir->shape));
            return fail(c, 404, PROXY_REASON_NO_ROUTE, m, false);
        }
        if (ir->body_got < ir->body_len || chunked) {
            return fail(c, 400, PROXY_REASON_UNEXPECTED_BODY, "this request takes no body", false);
        }
        return dial_route(c);
    }
    if ((ir->body_got < ir->body_len || (chunked && c->cin.len == 0)) && h->expect_continue) {
        /* RFC 9110 §10.1.1: the client waits for this before sending the body */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (buf_append(&c->cout, cont, sizeof(cont) - 1) < 0 || conn_flush_client(c) < 0)
            return conn_fail(c, PROXY_REASON_CLIENT_WRITE_ERROR);
    }
    return read_body(c); /* INFER's head timer covers the body */
}

/* ---- entry ---- */

enum conn_step infer_entry(struct conn *c)
{
    size_t hl = strlen(c->target.host);
    if (hl && c->target.host[hl - 1] == '.')
        c->target.host[hl - 1] = '\0'; /* the leaf and SNI use the name without the root dot */
    c->infer = true;
    snprintf(c->infer_name, sizeof(c->infer_name), "%s", c->target.host);
    c->infer_port = c->target.port;
    return CONN_STEP_NEXT; /* CONNECT → PEEK (200, then the first byte); forward → INFER */
}

uint32_t infer_connect_timeout_ms(const struct conn *c)
{
    return c->ir && c->ir->rt ? c->ir->rt->connect_timeout_ms : INFERENCE_DEFAULT_CONNECT_MS;
}

/* ---- the response ---- */

void infer_response_bytes(struct conn *c, const char *p, size_t n)
{
    struct infer_req *ir = c->ir;
    if (!ir || n == 0)
        return;
    if (!ir->got_first) {
        ir->got_first = true;
        ir->ttfb_ms = loop_now_ms(c->w->loop) - ir->start_ms;
    }
    static const char crlf2[] = "\r\n\r\n";
    size_t i = 0;
    while (!ir->head_done && i < n) {
        char ch = p[i++];
        ir->head_match = ch == crlf2[ir->head_match] ? ir->head_match + 1 : (ch == '\r' ? 1 : 0);
        if (ir->head_match == 4) {
            ir->head_done = true;
            ir->chunked = (c->msg->resp.p.flags & F_CHUNKED) != 0;
        }
    }
    if (!ir->head_done || i >= n)
        return;
    if (ir->chunked && !http_chunk_guard_feed(&ir->cg, p + i, n - i))
        ir->chunked = false; /* framing we cannot follow: never append to it */
    inference_usage_feed(&ir->usage, p + i, n - i);
}

enum conn_step infer_upstream_failed(struct conn *c, const char *reason)
{
    struct infer_req *ir = c->ir;
    if (!ir || !ir->in_flight)
        return conn_fail(c, reason);
    if (!ir->got_first) {
        char m[200];
        snprintf(m, sizeof(m), "the inference backend failed before answering (%s)", reason);
        upstream_close(c);
        return fail(c, reason == PROXY_REASON_IDLE_TIMEOUT ? 504 : 502, PROXY_REASON_UPSTREAM_FAILED, m, true);
    }
    audit_request(c, c->msg->resp.status, reason);
    if (!ir->stream || !ir->chunked || !ir->head_done || ir->cg.st != CHUNK_SIZE0)
        return conn_fail(c, reason); /* cut: the client sees a truncated message */
    char m[200];
    snprintf(m, sizeof(m), "the inference backend stream failed mid-way (%s); the answer is incomplete", reason);
    char *ev = inference_stream_error(ir->api, ir->shape, "upstream_stream_failed", m);
    char size[24];
    int sl = snprintf(size, sizeof(size), "%zx\r\n", ev ? strlen(ev) : 0);
    upstream_close(c);
    if (!ev || buf_append(&c->cout, size, (size_t)sl) < 0 || buf_append(&c->cout, ev, strlen(ev)) < 0 ||
        buf_append(&c->cout, "\r\n0\r\n\r\n", 7) < 0) {
        free(ev);
        return conn_fail(c, reason);
    }
    free(ev);
    log_info("proxy: conn %llu: inference stream from %s failed (%s); sent an error event",
             (unsigned long long)c->id, ir->rt ? ir->rt->name : "?", reason);
    c->respond_keep = false;
    (void)conn_fail(c, reason); /* the close reason, after RESPONDING sends the event */
    return CONN_STEP_RESPOND;
}

void infer_exchange_done(struct conn *c)
{
    if (c->ir)
        audit_request(c, c->msg->resp.status, c->msg->resp.status == 101 ? "upgraded" : "completed");
}

void infer_closing(struct conn *c)
{
    if (c->ir && c->ir->in_flight)
        audit_request(c, c->msg ? c->msg->resp.status : 0, c->close_reason ? c->close_reason : "closed");
}

/* The first byte after the CONNECT 200 (RFC 8446 §5.1 record types 20-24;
 * RFC 9112 methods are tokens, in practice upper-case letters). */
enum infer_first infer_classify_first(unsigned char b)
{
    if (b >= 0x14 && b <= 0x18)
        return INFER_FIRST_TLS;
    if (isascii(b) && isalpha(b))
        return INFER_FIRST_HTTP;
    return INFER_FIRST_OTHER;
}
