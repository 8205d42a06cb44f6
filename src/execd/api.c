/* execd/api: routing, authentication, the error envelope, session REST. */
#include "execd/api.h"

#include <errno.h>
#include <jansson.h>
#include <llhttp.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "execd/attach.h"
#include "execd/bash_session.h"
#include "execd/command.h"
#include "execd/metrics.h"
#include "execd/execd.h"
#include "execd/files.h"
#include "execd/session.h"
#include "http/server.h"
#include "core/banned.h"

#define API_MAX_SEGS 5
#define API_PATH_MAX 512

static void api_error_v(struct http_conn *c, int status, const char *extra, const char *code,
                        const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    json_t *o = json_pack("{s:s, s:s}", "code", code, "message", msg);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    log_debug("execd: %d %s: %s", status, code, msg);
    (void)http_respond(c, status, "application/json", body ? body : "", body ? strlen(body) : 0,
                       extra);
    free(body);
}

void api_error(struct http_conn *c, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    api_error_v(c, status, NULL, code, fmt, ap);
    va_end(ap);
}

void api_error_hdr(struct http_conn *c, int status, const char *extra, const char *code,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    api_error_v(c, status, extra, code, fmt, ap);
    va_end(ap);
}

void api_json(struct http_conn *c, int status, void *json)
{
    char *body = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!body) {
        api_error(c, 500, "RUNTIME_ERROR", "out of memory building the response");
        return;
    }
    (void)http_respond(c, status, "application/json", body, strlen(body), NULL);
    free(body);
}

void *api_body_object(struct http_conn *c, const struct http_req *req)
{
    json_error_t e;
    if (req->body_len == 0)
        return json_object();
    json_t *root = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!root) {
        api_error(c, 400, "INVALID_REQUEST_BODY",
                  "invalid JSON at line %d, column %d (byte %d): %s", e.line, e.column,
                  e.position, e.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        api_error(c, 400, "INVALID_REQUEST_BODY", "the body must be a JSON object");
        return NULL;
    }
    return root;
}

void api_strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

int api_env(struct http_conn *c, void *root, char ***out)
{
    const char *key;
    json_t *val;
    size_t i = 0;
    json_t *env = json_object_get(root, "env");
    if (!env)
        env = json_object_get(root, "envs"); /* OpenSandbox's name */
    *out = NULL;
    if (env && !json_is_null(env) && !json_is_object(env)) {
        api_error(c, 400, "INVALID_REQUEST_BODY", "\"env\" must be an object of strings");
        return -1;
    }
    char **v = calloc((env ? json_object_size(env) : 0) + 1, sizeof(*v));
    if (!v) {
        api_error(c, 500, "RUNTIME_ERROR", "out of memory");
        return -1;
    }
    json_object_foreach(env, key, val) {
        const char *s = json_string_value(val);
        size_t kl = strlen(key);
        if (!s || kl == 0 || strchr(key, '=') || strlen(s) != json_string_length(val)) {
            api_strv_free(v);
            api_error(c, 400, "INVALID_REQUEST_BODY",
                      "env entry \"%s\" must have a name without '=' and a string value", key);
            return -1;
        }
        size_t len = kl + 1 + strlen(s) + 1;
        v[i] = malloc(len);
        if (!v[i]) {
            api_strv_free(v);
            api_error(c, 500, "RUNTIME_ERROR", "out of memory");
            return -1;
        }
        snprintf(v[i++], len, "%s=%s", key, s);
    }
    *out = v;
    return 0;
}

/* Constant-time token check (the digests hide the length too). */
static int auth_ok(const struct execd *ed, const struct http_req *req)
{
    unsigned char want[SHA256_DIGEST_LENGTH], got[SHA256_DIGEST_LENGTH];
    if (!ed->cfg.token[0])
        return 1;
    const char *tok = http_req_header(req, "X-EXECD-ACCESS-TOKEN");
    if (!tok)
        return 0;
    SHA256((const unsigned char *)ed->cfg.token, strlen(ed->cfg.token), want);
    SHA256((const unsigned char *)tok, strlen(tok), got);
    return CRYPTO_memcmp(want, got, sizeof(want)) == 0;
}

/* ---- sessions ---- */

int api_cwd_create(struct http_conn *c, void *root_json, char *out, size_t cap, int *has)
{
    json_t *root = root_json;
    json_t *v = json_object_get(root, "cwd");
    *has = 0;
    if (!v || json_is_null(v))
        return 0;
    const char *cwd = json_string_value(v);
    if (!cwd || !*cwd) {
        api_error(c, 400, "INVALID_REQUEST_BODY", "\"cwd\" must be a non-empty string");
        return -1;
    }
    const char *home = getenv("HOME");
    int n = (cwd[0] == '~' && (cwd[1] == '/' || !cwd[1]))
                ? snprintf(out, cap, "%s%s", home ? home : "/", cwd + 1)
                : snprintf(out, cap, "%s", cwd);
    if (n < 0 || (size_t)n >= cap) {
        api_error(c, 400, "INVALID_REQUEST_BODY", "\"cwd\" is too long");
        return -1;
    }
    int r = files_mkdirs(out); /* OpenSandbox creates it too */
    if (r < 0) {
        api_error(c, 400, "INVALID_REQUEST_BODY", "cannot use cwd %s: %s", out, strerror(-r));
        return -1;
    }
    *has = 1;
    return 0;
}

static int get_dim(struct http_conn *c, json_t *root, const char *key, uint16_t *out)
{
    json_t *v = json_object_get(root, key);
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535) {
        api_error(c, 400, "INVALID_REQUEST_BODY", "\"%s\" must be an integer in 1..65535", key);
        return -1;
    }
    *out = (uint16_t)json_integer_value(v);
    return 0;
}

static void session_create(struct execd *ed, struct http_conn *c, const struct http_req *req)
{
    char cwd[PATH_MAX];
    int has_cwd, r;
    struct session_opts o = {0};
    struct session *s;
    enum session_mode mode = SESSION_MODE_NONE;
    json_t *root = api_body_object(c, req);
    if (!root)
        return;
    if (api_cwd_create(c, root, cwd, sizeof(cwd), &has_cwd) < 0 ||
        get_dim(c, root, "cols", &o.cols) < 0 || get_dim(c, root, "rows", &o.rows) < 0)
        goto out;
    json_t *v = json_object_get(root, "command");
    if (v && !json_is_null(v) && (!json_is_string(v) || !json_string_length(v))) {
        api_error(c, 400, "INVALID_REQUEST_BODY", "\"command\" must be a non-empty string");
        goto out;
    }
    o.command = json_string_value(v);
    v = json_object_get(root, "mode");
    if (v && !json_is_null(v)) {
        const char *m = json_string_value(v);
        if (m && strcmp(m, "pty") == 0)
            mode = SESSION_MODE_PTY;
        else if (m && strcmp(m, "pipe") == 0)
            mode = SESSION_MODE_PIPE;
        else {
            api_error(c, 400, "INVALID_REQUEST_BODY", "\"mode\" must be \"pty\" or \"pipe\"");
            goto out;
        }
    }
    o.cwd = has_cwd ? cwd : NULL;
    if (api_env(c, root, &o.env) < 0)
        goto out;
    r = session_new(ed, &o, &s);
    if (r == -ENOSPC) {
        log_warn("execd: session limit %zu reached", ed->cfg.max_sessions);
        api_error(c, 429, "SESSION_LIMIT",
                  "the session limit (%zu, --max-sessions) is reached; delete sessions you no "
                  "longer need",
                  ed->cfg.max_sessions);
    } else if (r < 0) {
        api_error(c, 500, "RUNTIME_ERROR", "cannot create a session: %s", strerror(-r));
    } else if (mode != SESSION_MODE_NONE && (r = session_start(s, mode)) < 0) {
        session_delete(s);
        api_error(c, 500, "START_FAILED", "cannot start the shell: %s", strerror(-r));
    } else {
        log_info("execd: session %s: created by %s", s->id, req->peer);
        api_json(c, 201, json_pack("{s:s}", "session_id", s->id));
    }
    api_strv_free(o.env);
out:
    json_decref(root);
}

static void session_list(struct execd *ed, struct http_conn *c)
{
    json_t *a = json_array();
    for (struct session *s = ed->sessions; s && a; s = s->next)
        json_array_append_new(a, session_status_json(s));
    api_json(c, 200, json_pack("{s:o}", "sessions", a));
}

static struct session *find_or_404(struct execd *ed, struct http_conn *c, const char *id)
{
    struct session *s = session_find(ed, id);
    if (!s)
        api_error(c, 404, "CONTEXT_NOT_FOUND", "session %s not found", id);
    return s;
}

/* ---- routing ---- */

struct route_ctx {
    struct execd *ed;
    struct http_conn *c;
    const struct http_req *req;
    char *seg[API_MAX_SEGS];
    int n;
};

static int seg_is(const struct route_ctx *r, int i, const char *lit)
{
    return i < r->n && strcmp(r->seg[i], lit) == 0;
}

static void method_not_allowed(struct route_ctx *r)
{
    api_error(r->c, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %.*s",
              r->req->method_name, (int)r->req->path_len, r->req->path);
}

/* /sessions..., /pty... (same shapes). */
static int route_sessions(struct route_ctx *r)
{
    int m = r->req->method;
    struct session *s;
    if (r->n == 1) {
        if (m == HTTP_POST)
            session_create(r->ed, r->c, r->req);
        else if (m == HTTP_GET && seg_is(r, 0, "sessions"))
            session_list(r->ed, r->c);
        else
            method_not_allowed(r);
        return 1;
    }
    if (r->n == 2) {
        if (m != HTTP_GET && m != HTTP_DELETE) {
            method_not_allowed(r);
            return 1;
        }
        if (!(s = find_or_404(r->ed, r->c, r->seg[1])))
            return 1;
        if (m == HTTP_GET) {
            api_json(r->c, 200, session_status_json(s));
        } else {
            session_delete(s);
            (void)http_respond(r->c, 200, NULL, NULL, 0, NULL);
        }
        return 1;
    }
    if (r->n == 3 && seg_is(r, 2, "ws")) {
        if (m != HTTP_GET) {
            method_not_allowed(r);
            return 1;
        }
        if ((s = find_or_404(r->ed, r->c, r->seg[1])))
            attach_handle(r->ed, r->c, r->req, s, ATTACH_PTY_ROUTE);
        return 1;
    }
    return 0;
}

static int route_command(struct route_ctx *r)
{
    int m = r->req->method;
    char id[64];
    if (r->n == 1) {
        if (m == HTTP_POST) {
            command_post(r->ed, r->c, r->req);
        } else if (m == HTTP_DELETE) { /* OpenSandbox: DELETE /command?id= */
            if (http_query_get(r->req->query, r->req->query_len, "id", id, sizeof(id)) < 0)
                api_error(r->c, 400, "MISSING_QUERY", "DELETE /command needs ?id=<command id>");
            else if (bash_session_exists(r->ed, id)) /* OpenSandbox: deletes the session */
                bash_session_delete(r->ed, r->c, id);
            else
                command_interrupt(r->ed, r->c, id);
        } else {
            method_not_allowed(r);
        }
        return 1;
    }
    if (r->n == 2) {
        if (m == HTTP_GET)
            command_status(r->ed, r->c, r->seg[1]);
        else if (m == HTTP_DELETE)
            command_interrupt(r->ed, r->c, r->seg[1]);
        else
            method_not_allowed(r);
        return 1;
    }
    if (r->n == 3 && (seg_is(r, 1, "status") || seg_is(r, 2, "logs"))) {
        if (m != HTTP_GET)
            method_not_allowed(r);
        else if (seg_is(r, 1, "status"))
            command_status(r->ed, r->c, r->seg[2]);
        else
            command_logs(r->ed, r->c, r->req, r->seg[1]);
        return 1;
    }
    return 0;
}

/* /session... : OpenSandbox's bash session API. */
static int route_bash_session(struct route_ctx *r)
{
    int m = r->req->method;
    if (r->n == 1) {
        if (m == HTTP_POST)
            bash_session_create(r->ed, r->c, r->req);
        else
            method_not_allowed(r);
        return 1;
    }
    if (r->n == 2) {
        if (m == HTTP_GET)
            bash_session_status(r->ed, r->c, r->seg[1]);
        else if (m == HTTP_DELETE)
            bash_session_delete(r->ed, r->c, r->seg[1]);
        else
            method_not_allowed(r);
        return 1;
    }
    if (r->n == 3 && seg_is(r, 2, "run")) {
        if (m == HTTP_POST)
            bash_session_run(r->ed, r->c, r->req, r->seg[1]);
        else
            method_not_allowed(r);
        return 1;
    }
    return 0;
}

static int route(struct route_ctx *r)
{
    if (seg_is(r, 0, "ping") && r->n == 1) {
        if (r->req->method != HTTP_GET && r->req->method != HTTP_HEAD)
            method_not_allowed(r);
        else
            (void)http_respond(r->c, 200, NULL, NULL, 0, NULL);
        return 1;
    }
    if (seg_is(r, 0, "sessions") || seg_is(r, 0, "pty"))
        return route_sessions(r);
    if (seg_is(r, 0, "ws") && seg_is(r, 1, "session") && r->n == 3) {
        struct session *s;
        if (r->req->method != HTTP_GET)
            method_not_allowed(r);
        else if ((s = find_or_404(r->ed, r->c, r->seg[2])))
            attach_handle(r->ed, r->c, r->req, s, ATTACH_WS_SESSION);
        return 1;
    }
    if (seg_is(r, 0, "command"))
        return route_command(r);
    if (seg_is(r, 0, "session"))
        return route_bash_session(r);
    if (seg_is(r, 0, "metrics") && (r->n == 1 || (r->n == 2 && seg_is(r, 1, "watch")))) {
        if (r->req->method != HTTP_GET)
            method_not_allowed(r);
        else if (r->n == 1)
            metrics_get(r->ed, r->c);
        else
            metrics_watch(r->ed, r->c);
        return 1;
    }
    if (seg_is(r, 0, "files") || seg_is(r, 0, "directories"))
        return files_route(r->ed, r->c, r->req, r->seg, r->n);
    if (seg_is(r, 0, "commands") && r->n == 1) {
        if (r->req->method != HTTP_GET)
            method_not_allowed(r);
        else
            command_list(r->ed, r->c);
        return 1;
    }
    return 0;
}

/* Splits the path into segments (no empty ones). Returns -1 if too long or
 * too deep. */
static int split_path(const struct http_req *req, char *buf, struct route_ctx *r)
{
    if (req->path_len >= API_PATH_MAX)
        return -1;
    memcpy(buf, req->path, req->path_len);
    buf[req->path_len] = '\0';
    r->n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (r->n == API_MAX_SEGS)
            return -1;
        r->seg[r->n++] = t;
    }
    return 0;
}

void api_on_head(struct http_conn *c, const struct http_req *req, void *data)
{
    struct execd *ed = data;
    char buf[API_PATH_MAX];
    struct route_ctx r = {.ed = ed, .c = c, .req = req};
    /* only an authenticated upload streams; anything else is buffered
     * (and an unauthenticated one gets its 401 once the body is read) */
    if (req->method == HTTP_POST && auth_ok(ed, req) && split_path(req, buf, &r) == 0 &&
        r.n == 2 && seg_is(&r, 0, "files") && seg_is(&r, 1, "upload"))
        upload_begin(ed, c, req);
}

void api_on_request(struct http_conn *c, const struct http_req *req, void *data)
{
    struct execd *ed = data;
    char buf[API_PATH_MAX];
    struct route_ctx r = {.ed = ed, .c = c, .req = req};
    if (!auth_ok(ed, req)) {
        log_info("execd: %s: %s %.*s: missing or wrong access token", req->peer,
                 req->method_name, (int)req->path_len, req->path);
        api_error(c, 401, "UNAUTHORIZED",
                  "missing or invalid X-EXECD-ACCESS-TOKEN header");
        return;
    }
    if (split_path(req, buf, &r) < 0 || !route(&r))
        api_error(c, 404, "NOT_FOUND", "no route for %s %.*s", req->method_name,
                  (int)req->path_len, req->path);
}
