/* server/routes: routes, auth and the OpenSandbox wire shapes.
 *
 * Every route is served under / and /v1. Order of checks per request:
 * X-Request-ID (echoed or generated; on every response), then the signed
 * route /s/{token}/..., then GET /health (no key), then the API key, then
 * the route table. Errors are {code, message}. JSON is camelCase; absent
 * values are left out, never null (OpenSandbox's response_model_exclude_none). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/log.h"
#include "core/parse.h"
#include "server/auth.h"
#include "server/server_int.h"
#include "server/timefmt.h"
#include "core/banned.h"

#define RID_HDR_MAX 200
#define PAGE_SIZE_MAX 200
#define RESERVED_PREFIX "opensandbox.io/"
#define CORDON_PREFIX "cordon.io/" /* the server's own keys (its warm pool) */

/* ---- responses ---- */

void server_request_id(const struct http_req *req, char *out, size_t cap)
{
    const char *v = http_req_header(req, "X-Request-ID");
    size_t n = v ? strlen(v) : 0;
    int ok = n > 0 && n <= 128;
    for (size_t i = 0; ok && i < n; i++)
        if (v[i] < 0x21 || v[i] > 0x7e)
            ok = 0;
    if (ok) {
        snprintf(out, cap, "X-Request-ID: %s\r\n", v);
        return;
    }
    uint8_t b[16];
    char hex[33];
    if (RAND_bytes(b, sizeof(b)) != 1)
        memset(b, 0, sizeof(b));
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", b[i]);
    snprintf(out, cap, "X-Request-ID: %s\r\n", hex);
}

void server_json(struct http_conn *c, const char *rid, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    (void)http_respond(c, status, s ? "application/json" : NULL, s, s ? strlen(s) : 0, rid);
    free(s);
}

void server_error(struct http_conn *c, const char *rid, int status, const char *code,
               const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (status >= 500)
        log_warn("server: %d %s: %s", status, code, msg);
    else
        log_info("server: %d %s: %s", status, code, msg);
    server_json(c, rid, status, json_pack("{s:s,s:s}", "code", code, "message", msg));
}

static void server_empty(struct http_conn *c, const char *rid, int status)
{
    (void)http_respond(c, status, NULL, NULL, 0, rid);
}

/* Driver failure -> status and code. */
static void driver_error(struct srv *s, struct http_conn *c, const char *rid, int r,
                         const char *busy_code)
{
    const char *m = s->drv->err;
    switch (r) {
    case -ENOENT:
        server_error(c, rid, 404, "SANDBOX::NOT_FOUND", "%s", m);
        break;
    case -EINVAL:
        server_error(c, rid, 400, "SANDBOX::INVALID_PARAMETER", "%s", m);
        break;
    case -EBUSY:
        server_error(c, rid, 409, busy_code, "%s", m);
        break;
    default:
        server_error(c, rid, 500, "SANDBOX::INTERNAL_ERROR", "%s", m[0] ? m : strerror(-r));
        break;
    }
}

/* ---- JSON shapes ---- */

static json_t *status_json(const struct sbx_record *r)
{
    char t[40];
    json_t *o = json_object();
    json_object_set_new(o, "state", json_string(sbx_state_name(r->state)));
    if (r->reason[0])
        json_object_set_new(o, "reason", json_string(r->reason));
    if (r->message[0])
        json_object_set_new(o, "message", json_string(r->message));
    timefmt_format(r->transition_ms, t, sizeof(t));
    json_object_set_new(o, "lastTransitionAt", json_string(t));
    return o;
}

/* Sandbox (full = with image, as GET returns it) or CreateSandboxResponse. */
static json_t *sandbox_json(const struct sbx_record *r, int full)
{
    char t[40];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(r->id));
    if (full)
        json_object_set_new(o, "image", json_pack("{s:s}", "uri", r->image));
    json_object_set_new(o, "status", status_json(r));
    json_object_set_new(o, "metadata", json_incref(r->metadata));
    json_object_set_new(o, "entrypoint", json_incref(r->entrypoint));
    if (r->expires_ms) {
        timefmt_format(r->expires_ms, t, sizeof(t));
        json_object_set_new(o, "expiresAt", json_string(t));
    }
    timefmt_format(r->created_ms, t, sizeof(t));
    json_object_set_new(o, "createdAt", json_string(t));
    return o;
}

static json_t *body_object(struct http_conn *c, const char *rid, const struct http_req *req)
{
    json_error_t e;
    if (req->body_len == 0) {
        server_error(c, rid, 400, "SANDBOX::INVALID_PARAMETER", "a JSON object body is required");
        return NULL;
    }
    json_t *j = json_loadb((const char *)req->body, req->body_len, 0, &e);
    if (!j) {
        server_error(c, rid, 400, "SANDBOX::INVALID_PARAMETER", "body is not JSON: %s at line %d "
                  "column %d", e.text, e.line, e.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        server_error(c, rid, 400, "SANDBOX::INVALID_PARAMETER", "body must be a JSON object");
        return NULL;
    }
    return j;
}

/* Checks that every value of an object is a string (or null when
 * null_ok). Returns the offending key or NULL. */
static const char *bad_string_map(const json_t *o, int null_ok)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        if (!json_is_string(v) && !(null_ok && json_is_null(v)))
            return k;
    }
    return NULL;
}

/* ---- lifecycle routes ---- */

struct pending {
    struct srv *s;
    struct http_conn *c;
    char rid[RID_HDR_MAX];
};

static void pending_gone(struct http_conn *c, void *data)
{
    struct pending *p = data;
    (void)c;
    p->c = NULL;
    /* the driver still holds p; it is freed when the driver answers */
}

static void create_done(void *data, int rc, const struct sbx_record *rec, const char *why)
{
    struct pending *p = data;
    if (p->c) {
        if (rc == 0)
            server_json(p->c, p->rid, 202, sandbox_json(rec, 0));
        else
            server_error(p->c, p->rid, 500, "SANDBOX::CREATE_FAILED", "sandbox %s did not start: %s",
                      rec->id, why ? why : "unknown error");
    }
    free(p);
}

static void route_create(struct srv *s, struct http_conn *c, const struct http_req *req,
                         const char *rid)
{
    json_t *b = body_object(c, rid, req);
    if (!b)
        return;
    struct sbx_spec spec;
    memset(&spec, 0, sizeof(spec));
    json_t *image = json_object_get(b, "image"), *ep = json_object_get(b, "entrypoint");
    json_t *env = json_object_get(b, "env"), *md = json_object_get(b, "metadata");
    json_t *lim = json_object_get(b, "resourceLimits"), *to = json_object_get(b, "timeout");
    json_t *empty_o = json_object(), *empty_a = json_array();
    const char *bad, *k;
    json_t *v;
    char *policy = NULL;
#define BAD(...)                                                                                   \
    do {                                                                                           \
        server_error(c, rid, 400, "SANDBOX::INVALID_PARAMETER", __VA_ARGS__);                         \
        goto out;                                                                                  \
    } while (0)
    if (json_object_get(b, "snapshotId"))
        BAD("snapshotId: snapshots are not supported by this server; give image");
    if (!json_is_object(image) || !json_is_string(json_object_get(image, "uri")))
        BAD("image: required, an object with a string uri (e.g. {\"uri\": \"cordon-host\"})");
    spec.image = json_string_value(json_object_get(image, "uri"));
    if (!json_is_array(ep) || json_array_size(ep) == 0)
        BAD("entrypoint: required with image, a non-empty list of strings "
            "(e.g. [\"tail\", \"-f\", \"/dev/null\"])");
    for (size_t i = 0; i < json_array_size(ep); i++)
        if (!json_is_string(json_array_get(ep, i)))
            BAD("entrypoint[%zu]: must be a string", i);
    spec.entrypoint = ep;
    if (env && !json_is_null(env)) {
        if (!json_is_object(env))
            BAD("env: must be an object of name -> string");
        if ((bad = bad_string_map(env, 1)))
            BAD("env.%s: must be a string or null", bad);
        spec.env = env;
    } else {
        spec.env = empty_o;
    }
    if (md && !json_is_null(md)) {
        if (!json_is_object(md))
            BAD("metadata: must be an object of name -> string");
        if ((bad = bad_string_map(md, 0)))
            BAD("metadata.%s: must be a string", bad);
        json_object_foreach(md, k, v) {
            if (strncmp(k, CORDON_PREFIX, strlen(CORDON_PREFIX)) == 0)
                BAD("metadata.%s: the prefix '" CORDON_PREFIX "' is reserved", k);
        }
        spec.metadata = md;
    } else {
        spec.metadata = empty_o;
    }
    if (lim && !json_is_null(lim)) {
        if (!json_is_object(lim))
            BAD("resourceLimits: must be an object of name -> string");
        if ((bad = bad_string_map(lim, 0)))
            BAD("resourceLimits.%s: must be a string", bad);
        spec.limits = lim;
    }
    if (to && !json_is_null(to)) {
        if (!json_is_integer(to) || json_integer_value(to) < s->cfg.min_timeout_s ||
            json_integer_value(to) > s->cfg.max_timeout_s)
            BAD("timeout: an integer number of seconds from %" PRId64 " to %" PRId64
                " (or null for no expiry)", s->cfg.min_timeout_s, s->cfg.max_timeout_s);
        spec.timeout_s = json_integer_value(to);
    }
    json_t *vol = json_object_get(b, "volumes");
    if (vol && !json_is_null(vol) && json_array_size(vol) > 0)
        BAD("volumes: not supported by the local driver");
    (void)empty_a;
    char perr[768];
    int pr = sbxpolicy_for_request(&s->cfg.policy, b, &policy, &spec.policy_len, perr,
                                   sizeof(perr));
    if (pr == -EINVAL)
        BAD("%s", perr);
    if (pr < 0) {
        server_error(c, rid, 500, "SANDBOX::INTERNAL_ERROR", "%s", perr);
        goto out;
    }
    spec.policy_yaml = policy;
    struct pending *p = calloc(1, sizeof(*p));
    if (!p) {
        server_error(c, rid, 503, "SANDBOX::INTERNAL_ERROR", "out of memory");
        goto out;
    }
    p->s = s;
    p->c = c;
    snprintf(p->rid, sizeof(p->rid), "%s", rid);
    int r = s->drv->ops->create(s->drv, &spec, create_done, p);
    if (r < 0) {
        free(p);
        driver_error(s, c, rid, r, "SANDBOX::CONFLICT");
        goto out;
    }
    http_hold(c, pending_gone, p);
out:
#undef BAD
    free(policy);
    json_decref(b);
    json_decref(empty_o);
    json_decref(empty_a);
}

/* Iterates a query string: fn(key, klen, decoded value) for each pair. */
static int query_each(const char *q, size_t qlen,
                      int (*fn)(void *d, const char *k, size_t kl, const char *v), void *d)
{
    size_t i = 0;
    char val[1024];
    while (i < qlen) {
        const char *p = q + i;
        const char *amp = memchr(p, '&', qlen - i);
        size_t plen = amp ? (size_t)(amp - p) : qlen - i;
        const char *eq = memchr(p, '=', plen);
        size_t kl = eq ? (size_t)(eq - p) : plen;
        if (plen) {
            int r = eq ? http_query_decode(eq + 1, plen - kl - 1, val, sizeof(val))
                       : (val[0] = '\0', 0);
            if (r < 0)
                return r;
            if ((r = fn(d, p, kl, val)) < 0)
                return r;
        }
        i += plen + 1;
    }
    return 0;
}

#define MAX_MD_FILTERS 32

struct list_q {
    unsigned states; /* bit per state; 0 = any */
    uint32_t page, page_size;
    char md_k[MAX_MD_FILTERS][128], md_v[MAX_MD_FILTERS][256];
    size_t nmd;
    char err[256];
};

static int parse_md_filter(struct list_q *lq, const char *v)
{
    /* "k=v&k2=v2", each part URL-encoded again */
    size_t len = strlen(v), i = 0;
    while (i < len) {
        const char *p = v + i;
        const char *amp = memchr(p, '&', len - i);
        size_t plen = amp ? (size_t)(amp - p) : len - i;
        const char *eq = memchr(p, '=', plen);
        if (!eq || eq == p) {
            snprintf(lq->err, sizeof(lq->err), "metadata: '%.*s' is not key=value "
                     "(use metadata=k%%3Dv%%26k2%%3Dv2)", (int)plen, p);
            return -EINVAL;
        }
        if (lq->nmd == MAX_MD_FILTERS) {
            snprintf(lq->err, sizeof(lq->err), "metadata: at most %d filters", MAX_MD_FILTERS);
            return -EINVAL;
        }
        if (http_query_decode(p, (size_t)(eq - p), lq->md_k[lq->nmd], sizeof(lq->md_k[0])) < 0 ||
            http_query_decode(eq + 1, plen - (size_t)(eq - p) - 1, lq->md_v[lq->nmd],
                              sizeof(lq->md_v[0])) < 0) {
            snprintf(lq->err, sizeof(lq->err), "metadata: bad escape or too long in '%.*s'",
                     (int)plen, p);
            return -EINVAL;
        }
        lq->nmd++;
        i += plen + 1;
    }
    return 0;
}

static int list_param(void *d, const char *k, size_t kl, const char *v)
{
    struct list_q *lq = d;
    if (kl == 5 && memcmp(k, "state", 5) == 0) {
        enum sbx_state st;
        if (sbx_state_parse(v, &st) < 0) {
            snprintf(lq->err, sizeof(lq->err), "state: '%.60s' is not a state (Pending, Running, "
                     "Pausing, Paused, Resuming, Stopping, Terminated, Failed)", v);
            return -EINVAL;
        }
        lq->states |= 1u << st;
    } else if (kl == 8 && memcmp(k, "metadata", 8) == 0) {
        return parse_md_filter(lq, v);
    } else if (kl == 4 && memcmp(k, "page", 4) == 0) {
        if (parse_u32_str(v, 1, 1000000, &lq->page) < 0) {
            snprintf(lq->err, sizeof(lq->err), "page: '%.40s' (an integer >= 1)", v);
            return -EINVAL;
        }
    } else if (kl == 8 && memcmp(k, "pageSize", 8) == 0) {
        if (parse_u32_str(v, 1, PAGE_SIZE_MAX, &lq->page_size) < 0) {
            snprintf(lq->err, sizeof(lq->err), "pageSize: '%.40s' (an integer 1..%d)", v,
                     PAGE_SIZE_MAX);
            return -EINVAL;
        }
    }
    return 0;
}

static int list_match(const struct list_q *lq, const struct sbx_record *r)
{
    if (lq->states && !(lq->states & (1u << r->state)))
        return 0;
    for (size_t i = 0; i < lq->nmd; i++) {
        const char *v = json_string_value(json_object_get(r->metadata, lq->md_k[i]));
        if (!v || strcmp(v, lq->md_v[i]) != 0)
            return 0;
    }
    return 1;
}

static void route_list(struct srv *s, struct http_conn *c, const struct http_req *req,
                       const char *rid)
{
    struct list_q *lq = calloc(1, sizeof(*lq));
    struct sbx_record *recs = NULL;
    size_t n = 0;
    if (!lq) {
        server_error(c, rid, 503, "SANDBOX::INTERNAL_ERROR", "out of memory");
        return;
    }
    lq->page = 1;
    lq->page_size = 20;
    if (query_each(req->query, req->query_len, list_param, lq) < 0) {
        server_error(c, rid, 400, "SANDBOX::INVALID_PARAMETER", "%s",
                  lq->err[0] ? lq->err : "bad escape in the query string");
        free(lq);
        return;
    }
    int r = s->drv->ops->list(s->drv, &recs, &n);
    if (r < 0) {
        driver_error(s, c, rid, r, "SANDBOX::CONFLICT");
        free(lq);
        return;
    }
    json_t *items = json_array();
    size_t total = 0, first = (size_t)(lq->page - 1) * lq->page_size;
    for (size_t i = 0; i < n; i++) {
        if (list_match(lq, &recs[i])) {
            if (total >= first && total < first + lq->page_size)
                json_array_append_new(items, sandbox_json(&recs[i], 1));
            total++;
        }
        sbx_record_clear(&recs[i]);
    }
    free(recs);
    size_t pages = (total + lq->page_size - 1) / lq->page_size;
    json_t *pg = json_pack("{s:I,s:I,s:I,s:I,s:b}", "page", (json_int_t)lq->page, "pageSize",
                           (json_int_t)lq->page_size, "totalItems", (json_int_t)total,
                           "totalPages", (json_int_t)pages, "hasNextPage", lq->page < pages);
    server_json(c, rid, 200, json_pack("{s:o,s:o}", "items", items, "pagination", pg));
    free(lq);
}

static void route_get(struct srv *s, struct http_conn *c, const char *rid, const char *id)
{
    struct sbx_record r;
    int rc = s->drv->ops->get(s->drv, id, &r);
    if (rc < 0) {
        driver_error(s, c, rid, rc, "SANDBOX::CONFLICT");
        return;
    }
    server_json(c, rid, 200, sandbox_json(&r, 1));
    sbx_record_clear(&r);
}

static void delete_done(void *data, int rc, const char *why)
{
    struct pending *p = data;
    if (p->c) {
        if (rc == 0)
            server_empty(p->c, p->rid, 204);
        else
            server_error(p->c, p->rid, 500, "SANDBOX::DELETE_FAILED", "%s",
                      why ? why : "delete failed");
    }
    free(p);
}

static void delete_gone(struct http_conn *c, void *data)
{
    struct pending *p = data;
    (void)c;
    p->s->drv->ops->remove_cancel(p->s->drv, p);
    free(p);
}

static void route_delete(struct srv *s, struct http_conn *c, const char *rid, const char *id)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p) {
        server_error(c, rid, 503, "SANDBOX::INTERNAL_ERROR", "out of memory");
        return;
    }
    p->s = s;
    p->c = c;
    snprintf(p->rid, sizeof(p->rid), "%s", rid);
    int r = s->drv->ops->remove(s->drv, id, delete_done, p);
    if (r < 0) {
        free(p);
        driver_error(s, c, rid, r, "SANDBOX::CONFLICT");
        return;
    }
    http_hold(c, delete_gone, p);
}

static void route_metadata(struct srv *s, struct http_conn *c, const struct http_req *req,
                           const char *rid, const char *id)
{
    struct sbx_record r;
    int rc = s->drv->ops->get(s->drv, id, &r);
    if (rc < 0) {
        driver_error(s, c, rid, rc, "SANDBOX::CONFLICT");
        return;
    }
    json_t *patch = body_object(c, rid, req);
    if (!patch) {
        sbx_record_clear(&r);
        return;
    }
    /* RFC 7396 merge patch over a flat string map */
    json_t *md = json_deep_copy(r.metadata);
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v) {
        if (strncmp(k, RESERVED_PREFIX, strlen(RESERVED_PREFIX)) == 0 ||
            strncmp(k, CORDON_PREFIX, strlen(CORDON_PREFIX)) == 0) {
            server_error(c, rid, 400, "SANDBOX::INVALID_METADATA", "metadata key '%s': the "
                         "prefixes '" RESERVED_PREFIX "' and '" CORDON_PREFIX "' are reserved", k);
            goto out;
        }
        if (json_is_null(v)) {
            json_object_del(md, k);
        } else if (json_is_string(v)) {
            json_object_set(md, k, v);
        } else {
            server_error(c, rid, 400, "SANDBOX::INVALID_METADATA", "metadata.%s: must be a string "
                      "(or null to delete it)", k);
            goto out;
        }
    }
    rc = s->drv->ops->set_metadata(s->drv, id, md);
    if (rc < 0) {
        driver_error(s, c, rid, rc, "SANDBOX::CONFLICT");
        goto out;
    }
    route_get(s, c, rid, id);
out:
    json_decref(md);
    json_decref(patch);
    sbx_record_clear(&r);
}

static void route_pause(struct srv *s, struct http_conn *c, const char *rid, const char *id,
                        int resume)
{
    int r = resume ? s->drv->ops->resume(s->drv, id) : s->drv->ops->pause(s->drv, id);
    if (r < 0) {
        driver_error(s, c, rid, r, resume ? "SANDBOX::NOT_PAUSED" : "SANDBOX::NOT_RUNNING");
        return;
    }
    server_empty(c, rid, 202);
}

static void route_renew(struct srv *s, struct http_conn *c, const struct http_req *req,
                        const char *rid, const char *id)
{
    json_t *b = body_object(c, rid, req);
    if (!b)
        return;
    const char *t = json_string_value(json_object_get(b, "expiresAt"));
    int64_t ms;
    if (!t || timefmt_parse(t, &ms) < 0) {
        server_error(c, rid, 400, "SANDBOX::INVALID_EXPIRATION", "expiresAt: an RFC 3339 time is "
                  "required (e.g. 2030-01-01T00:00:00Z)");
    } else if (ms <= timefmt_now_ms()) {
        server_error(c, rid, 400, "SANDBOX::INVALID_EXPIRATION", "expiresAt %s is not in the "
                  "future", t);
    } else {
        int r = s->drv->ops->renew(s->drv, id, ms);
        if (r < 0) {
            driver_error(s, c, rid, r, "SANDBOX::NO_EXPIRATION");
        } else {
            char out[40];
            timefmt_format(ms, out, sizeof(out));
            server_json(c, rid, 200, json_pack("{s:s}", "expiresAt", out));
        }
    }
    json_decref(b);
}

static int parse_port(const char *s, size_t len, uint16_t *port)
{
    uint32_t p;
    if (parse_u32(s, len, 1, 65535, &p) < 0)
        return -EINVAL;
    *port = (uint16_t)p;
    return 0;
}

static int query_bool(const struct http_req *req, const char *name, int *out)
{
    char v[16];
    int r = http_query_get(req->query, req->query_len, name, v, sizeof(v));
    if (r == -ENOENT) {
        *out = 0;
        return 0;
    }
    if (r < 0)
        return r;
    if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = 1;
        return 1;
    }
    if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = 0;
        return 1;
    }
    return -EINVAL;
}

static void route_endpoint(struct srv *s, struct http_conn *c, const struct http_req *req,
                           const char *rid, const char *id, const char *ps, size_t pl)
{
    uint16_t port;
    int use_proxy;
    char exp_s[24], token[80] = "";
    uint32_t expires = 0;
    if (parse_port(ps, pl, &port) < 0) {
        server_error(c, rid, 400, "SANDBOX::INVALID_PORT", "port '%.*s': an integer 1..65535",
                  (int)pl, ps);
        return;
    }
    int up = query_bool(req, "use_server_proxy", &use_proxy);
    if (up < 0) {
        server_error(c, rid, 400, "SANDBOX::INVALID_PARAMETER", "use_server_proxy: true or false");
        return;
    }
    int er = http_query_get(req->query, req->query_len, "expires", exp_s, sizeof(exp_s));
    if (er >= 0 && parse_u32_str(exp_s, 1, UINT32_MAX, &expires) < 0) {
        server_error(c, rid, 400, "SANDBOX::INVALID_PARAMETER", "expires: Unix seconds");
        return;
    }
    if (er >= 0 && up > 0) {
        server_error(c, rid, 400, "SANDBOX::INVALID_PARAMETER", "give either use_server_proxy or "
                  "expires, not both");
        return;
    }
    if (er >= 0 && (int64_t)expires * 1000 <= timefmt_now_ms()) {
        server_error(c, rid, 400, "SANDBOX::INVALID_PARAMETER", "expires %u is not in the future",
                  expires);
        return;
    }
    struct sbx_record r;
    int rc = s->drv->ops->get(s->drv, id, &r);
    if (rc < 0) {
        driver_error(s, c, rid, rc, "SANDBOX::CONFLICT");
        return;
    }
    sbx_record_clear(&r);
    const char *host = s->cfg.public_host ? s->cfg.public_host : http_req_header(req, "Host");
    char ep[700];
    if (use_proxy || er >= 0) {
        if (!host || !host[0]) {
            server_error(c, rid, 400, "SANDBOX::INVALID_PARAMETER", "no Host header to build the "
                      "proxy endpoint from (or start the server with --public-host)");
            return;
        }
        if (er >= 0) {
            char tok[AUTH_TOKEN_MAX + 64];
            if (auth_sign(s->cfg.api_key ? s->cfg.api_key : "", id, port, expires, tok,
                          sizeof(tok)) < 0) {
                server_error(c, rid, 500, "SANDBOX::INTERNAL_ERROR", "cannot sign the endpoint");
                return;
            }
            snprintf(ep, sizeof(ep), "%s/s/%s/sandboxes/%s/proxy/%u", host, tok, id, port);
        } else {
            snprintf(ep, sizeof(ep), "%s/sandboxes/%s/proxy/%u", host, id, port);
        }
    } else {
        struct sockaddr_in sin;
        rc = s->drv->ops->backend(s->drv, id, port, &sin, token, sizeof(token));
        if (rc < 0) {
            driver_error(s, c, rid, rc, "SANDBOX::NOT_RUNNING");
            return;
        }
        char ip[32];
        inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip));
        snprintf(ep, sizeof(ep), "%s:%u", ip, port);
    }
    json_t *out = json_pack("{s:s}", "endpoint", ep);
    /* straight to execd: the SDKs send the endpoint's headers (through the
     * server, the server adds the token itself) */
    if (token[0])
        json_object_set_new(out, "headers", json_pack("{s:s}", "X-EXECD-ACCESS-TOKEN", token));
    server_json(c, rid, 200, out);
}

/* POST /metrics/events: the SDKs' best-effort telemetry (create latency).
 * Logged, then 204 as OpenSandbox answers it. */
static void route_metrics_event(struct http_conn *c, const struct http_req *req, const char *rid)
{
    json_t *j = json_loadb((const char *)req->body, req->body_len, 0, NULL);
    const char *ua = http_req_header(req, "User-Agent");
    log_info("server: sdk event %s from %s: success=%s createDurationMs=%lld",
             json_string_value(json_object_get(j, "eventType")) ?: "?", ua ? ua : "?",
             json_is_true(json_object_get(j, "success")) ? "true" : "false",
             (long long)json_integer_value(json_object_get(j, "createDurationMs")));
    json_decref(j);
    server_empty(c, rid, 204);
}

/* ---- routing ---- */

/* Splits off the next path segment of [*p, end). */
static int next_seg(const char **p, const char *end, const char **seg, size_t *len)
{
    if (*p >= end || **p != '/')
        return 0;
    const char *s = *p + 1;
    const char *e = memchr(s, '/', (size_t)(end - s));
    if (!e)
        e = end;
    *seg = s;
    *len = (size_t)(e - s);
    *p = e;
    return 1;
}

static int seg_is(const char *seg, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(seg, lit, len) == 0;
}

static int method_is(const struct http_req *req, const char *m)
{
    return strcmp(req->method_name, m) == 0;
}

/* The ".." check of a proxied path: 0 when clean. */
static int dotdot(const char *rest, size_t rest_len)
{
    for (size_t i = 0; i + 1 < rest_len; i++)
        if (rest[i] == '.' && rest[i + 1] == '.' && (i == 0 || rest[i - 1] == '/') &&
            (i + 2 == rest_len || rest[i + 2] == '/'))
            return 1;
    return 0;
}

static void proxy_route(struct srv *s, struct http_conn *c, const struct http_req *req,
                        const char *rid, const char *id, const char *ps, size_t pl,
                        const char *rest, size_t rest_len)
{
    uint16_t port;
    if (parse_port(ps, pl, &port) < 0) {
        server_error(c, rid, 400, "SANDBOX::INVALID_PORT", "port '%.*s': an integer 1..65535",
                  (int)pl, ps);
        return;
    }
    if (dotdot(rest, rest_len)) {
        server_error(c, rid, 400, "SANDBOX::INVALID_PARAMETER", "'..' is not allowed in a "
                     "proxied path");
        return;
    }
    const char *up = http_req_header(req, "Upgrade");
    if (req->upgrade && up && strcasecmp(up, "websocket") == 0)
        wsproxy_handle(s, c, req, rid, id, port, rest, rest_len);
    else
        hproxy_handle(s, c, req, rid, id, port, rest, rest_len);
}

void server_on_head(struct http_conn *c, const struct http_req *req, void *data)
{
    /* Only a proxied request that would be served as is: the route, the key
     * or signature, the port and the path all good. Anything else is left to
     * server_on_request, which answers the error once the body is in. */
    struct srv *s = data;
    const char *p = req->path, *end = req->path + req->path_len, *seg, *tok = NULL, *ps;
    size_t sl, tok_len = 0, pl;
    char id[SBX_ID_LEN + 1];
    uint16_t port;
    if (req->upgrade)
        return;
    if (end - p >= 3 && memcmp(p, "/v1", 3) == 0 && (end - p == 3 || p[3] == '/'))
        p += 3;
    if (end - p > 3 && memcmp(p, "/s/", 3) == 0) {
        (void)next_seg(&p, end, &seg, &sl);
        if (!next_seg(&p, end, &tok, &tok_len))
            return;
    }
    if (!next_seg(&p, end, &seg, &sl) || !seg_is(seg, sl, "sandboxes") ||
        !next_seg(&p, end, &seg, &sl) || sl == 0 || sl > SBX_ID_LEN)
        return;
    memcpy(id, seg, sl);
    id[sl] = '\0';
    if (!next_seg(&p, end, &seg, &sl) || !seg_is(seg, sl, "proxy") ||
        !next_seg(&p, end, &ps, &pl) || parse_port(ps, pl, &port) < 0 ||
        dotdot(p, (size_t)(end - p)))
        return;
    if (tok) {
        if (auth_verify(s->cfg.api_key ? s->cfg.api_key : "", id, port, tok, tok_len,
                        timefmt_now_ms() / 1000) < 0)
            return;
    } else if (s->cfg.api_key) {
        const char *k = http_req_header(req, AUTH_HEADER);
        if (!k || !auth_key_equal(s->cfg.api_key, k))
            return;
    }
    char rid[RID_HDR_MAX];
    server_request_id(req, rid, sizeof(rid));
    hproxy_stream(s, c, req, rid, id, port, p, (size_t)(end - p));
}

void server_on_request(struct http_conn *c, const struct http_req *req, void *data)
{
    struct srv *s = data;
    if (req->body_sink) { /* a proxied body streamed since the head */
        hproxy_body_done(req->body_sink, c);
        return;
    }
    char rid[RID_HDR_MAX];
    char id[SBX_ID_LEN + 8];
    server_request_id(req, rid, sizeof(rid));
    const char *p = req->path, *end = req->path + req->path_len;
    const char *seg, *tok = NULL;
    size_t sl, tok_len = 0;
    if (end - p >= 3 && memcmp(p, "/v1", 3) == 0 && (end - p == 3 || p[3] == '/'))
        p += 3;
    /* the signed route: /s/{token}/sandboxes/{id}/proxy/{port}/... */
    if (end - p > 3 && memcmp(p, "/s/", 3) == 0) {
        const char *q = p;
        (void)next_seg(&q, end, &seg, &sl);
        if (!next_seg(&q, end, &tok, &tok_len)) {
            server_error(c, rid, 404, "GENERAL::NOT_FOUND", "no such route");
            return;
        }
        p = q;
    }
    if (!tok && seg_is(p, (size_t)(end - p), "/health")) {
        if (!method_is(req, "GET") && !method_is(req, "HEAD")) {
            server_error(c, rid, 405, "GENERAL::METHOD_NOT_ALLOWED", "/health takes GET");
            return;
        }
        server_json(c, rid, 200, json_pack("{s:s}", "status", "healthy"));
        return;
    }
    if (!tok && s->cfg.api_key) {
        const char *k = http_req_header(req, AUTH_HEADER);
        if (!k || !k[0]) {
            server_error(c, rid, 401, "MISSING_API_KEY", "header " AUTH_HEADER " is required");
            return;
        }
        if (!auth_key_equal(s->cfg.api_key, k)) {
            server_error(c, rid, 401, "INVALID_API_KEY", "the " AUTH_HEADER " header does not "
                      "match the server's key");
            return;
        }
    }
    if (!tok && seg_is(p, (size_t)(end - p), "/metrics/events") && method_is(req, "POST")) {
        route_metrics_event(c, req, rid);
        return;
    }
    if (!next_seg(&p, end, &seg, &sl) || !seg_is(seg, sl, "sandboxes")) {
        server_error(c, rid, 404, "GENERAL::NOT_FOUND", "no route %.*s", (int)req->path_len,
                  req->path);
        return;
    }
    if (p == end || (p + 1 == end && *p == '/')) {
        if (tok)
            goto signed_bad;
        if (method_is(req, "POST"))
            route_create(s, c, req, rid);
        else if (method_is(req, "GET"))
            route_list(s, c, req, rid);
        else
            server_error(c, rid, 405, "GENERAL::METHOD_NOT_ALLOWED", "/sandboxes takes GET or POST");
        return;
    }
    if (!next_seg(&p, end, &seg, &sl) || sl == 0 || sl > SBX_ID_LEN) {
        server_error(c, rid, 404, "SANDBOX::NOT_FOUND", "Sandbox %.*s not found.", (int)sl, seg);
        return;
    }
    memcpy(id, seg, sl);
    id[sl] = '\0';
    const char *action;
    size_t al;
    if (!next_seg(&p, end, &action, &al)) {
        if (tok)
            goto signed_bad;
        if (method_is(req, "GET"))
            route_get(s, c, rid, id);
        else if (method_is(req, "DELETE"))
            route_delete(s, c, rid, id);
        else
            server_error(c, rid, 405, "GENERAL::METHOD_NOT_ALLOWED",
                      "/sandboxes/{id} takes GET or DELETE");
        return;
    }
    if (seg_is(action, al, "proxy")) {
        const char *ps;
        size_t pl;
        if (!next_seg(&p, end, &ps, &pl)) {
            server_error(c, rid, 400, "SANDBOX::INVALID_PORT", "a port is required: "
                      "/sandboxes/{id}/proxy/{port}/...");
            return;
        }
        if (tok) {
            uint16_t port;
            int64_t now = timefmt_now_ms() / 1000;
            int vr = parse_port(ps, pl, &port) < 0
                         ? -EACCES
                         : auth_verify(s->cfg.api_key ? s->cfg.api_key : "", id, port, tok,
                                       tok_len, now);
            if (vr < 0) {
                server_error(c, rid, 401, vr == -ETIMEDOUT ? "EXPIRED_SIGNATURE" : "INVALID_SIGNATURE",
                          vr == -ETIMEDOUT ? "the signed URL has expired; ask "
                          "/sandboxes/{id}/endpoints/{port}?expires=T for a new one"
                          : "the signed URL does not match this sandbox and port");
                return;
            }
        }
        proxy_route(s, c, req, rid, id, ps, pl, p, (size_t)(end - p));
        return;
    }
    if (tok)
        goto signed_bad;
    if (seg_is(action, al, "endpoints") && method_is(req, "GET")) {
        const char *ps;
        size_t pl;
        if (next_seg(&p, end, &ps, &pl) && p == end) {
            route_endpoint(s, c, req, rid, id, ps, pl);
            return;
        }
    } else if (p == end && seg_is(action, al, "metadata") && method_is(req, "PATCH")) {
        route_metadata(s, c, req, rid, id);
        return;
    } else if (p == end && seg_is(action, al, "pause") && method_is(req, "POST")) {
        route_pause(s, c, rid, id, 0);
        return;
    } else if (p == end && seg_is(action, al, "resume") && method_is(req, "POST")) {
        route_pause(s, c, rid, id, 1);
        return;
    } else if (p == end && seg_is(action, al, "renew-expiration") && method_is(req, "POST")) {
        route_renew(s, c, req, rid, id);
        return;
    }
    server_error(c, rid, 404, "GENERAL::NOT_FOUND", "no route %s %.*s", req->method_name,
              (int)req->path_len, req->path);
    return;
signed_bad:
    server_error(c, rid, 401, "INVALID_SIGNATURE", "a signed URL opens only "
              "/sandboxes/{id}/proxy/{port}/...");
}
