/* inference/routes: the operator's routes file (--inference-routes FILE).
 *
 *   version: 1
 *   intercept:                   # optional
 *     hosts: [inference.local]   # names intercepted (default inference.local)
 *     ports: []                  # ports intercepted (default: any)
 *   max_body_bytes: 67108864     # cap on a body that must be read (default 64 MiB)
 *   routes:
 *     - name: local-ollama
 *       shapes: [openai, ollama] # API names or shape names (doc/inference.md)
 *       base_url: http://127.0.0.1:11434/v1
 *       credential: {env: OPENAI_API_KEY}    # or {file: /path}; read by the supervisor
 *       models: ["llama*"]       # requested models this route takes (globs; default any)
 *       model: llama3.1:8b       # send this model whatever was asked
 *       aliases: {fast: llama3.1:8b}
 *       headers: {anthropic-version: "2023-06-01"}
 *       websocket: false         # the backend accepts WebSocket on /v1/responses
 *       timeouts: {connect_s: 10, idle_s: 900}
 *
 * Validated with the policy's YAML tree and validation context, so every
 * error carries file:line:column and the fix. Credentials are read here, in
 * the supervisor, and never come from the sandbox. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inference/inference.h"
#include "policy/glob.h"
#include "policy/vctx.h"
#include "policy/ytree.h"
#include "core/banned.h"

#define ROUTES_MAX_FILE (1u << 20)
#define CREDENTIAL_MAX 8192

struct load_ctx {
    struct inference_routes *r;
    struct inference_route *rt;
    const struct ynode *credential_node;
};

/* ---- helpers ---- */

static char **str_list(struct vctx *c, const struct ynode *n, size_t *count, const char *what)
{
    *count = 0;
    if (!v_seq(c, n, what))
        return NULL;
    char **out = v_calloc(n->n ? n->n : 1, sizeof(char *));
    for (size_t i = 0; i < n->n; i++) {
        const char *s;
        size_t m = v_push(c, "[%zu]", i);
        if (v_str(c, n->items[i], &s, what)) {
            if (!s[0])
                v_error(c, n->items[i], "must not be empty");
            else
                out[(*count)++] = v_strdup(s);
        }
        v_pop(c, m);
    }
    return out;
}

static bool valid_header_name(const char *s)
{
    if (!s[0])
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

static bool valid_header_value(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return false;
    return true;
}

/* Reads map n into parallel name/value arrays (aliases, headers). */
static void str_map(struct vctx *c, const struct ynode *n, char ***names, char ***values,
                    size_t *count, bool headers)
{
    *count = 0;
    if (n->kind != YN_MAP) {
        v_error(c, n, "expected a map, got %s", ytree_type_name(n));
        return;
    }
    size_t pairs = n->n / 2;
    *names = v_calloc(pairs ? pairs : 1, sizeof(char *));
    *values = v_calloc(pairs ? pairs : 1, sizeof(char *));
    for (size_t i = 0; i < pairs; i++) {
        if (!v_map_key_ok(c, n, i))
            continue;
        const struct ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
        size_t m = v_push(c, ".%s", k->str);
        const char *s;
        if (v_str(c, v, &s, headers ? "a header value" : "a model name")) {
            if (headers && !valid_header_name(k->str))
                v_error(c, k, "'%s' is not a valid header name (RFC 9110 token)", k->str);
            else if (headers && !valid_header_value(s))
                v_error(c, v, "header values must not contain control characters");
            else if (headers && inference_header_is_credential(k->str, strlen(k->str)))
                v_error(c, k, "credentials go in 'credential:', not in default headers");
            else if (!headers && (!s[0] || !k->str[0]))
                v_error(c, v, "model names must not be empty");
            else {
                (*names)[*count] = v_strdup(k->str);
                (*values)[(*count)++] = v_strdup(s);
            }
        }
        v_pop(c, m);
    }
}

/* base_url: http(s)://host[:port][/path], no userinfo, query or fragment. */
static void parse_base_url(struct vctx *c, const struct ynode *n, struct inference_route *rt)
{
    const char *s = rt->base_url, *p;
    if (strncasecmp(s, "https://", 8) == 0) {
        rt->tls = true;
        p = s + 8;
    } else if (strncasecmp(s, "http://", 7) == 0) {
        p = s + 7;
    } else {
        v_error(c, n, "'%s' must start with http:// or https://", s);
        return;
    }
    size_t alen = strcspn(p, "/");
    const char *path = p + alen;
    if (memchr(p, '@', alen) || strpbrk(path, "?#")) {
        v_error(c, n, "'%s': no user@, query or fragment allowed (credentials go in 'credential:')", s);
        return;
    }
    char auth[300];
    if (alen == 0 || alen >= sizeof(auth)) {
        v_error(c, n, "'%s' has no host", s);
        return;
    }
    memcpy(auth, p, alen);
    auth[alen] = '\0';
    char *host = auth, *port = NULL;
    if (auth[0] == '[') {
        char *e = strchr(auth, ']');
        if (!e || (e[1] && e[1] != ':')) {
            v_error(c, n, "'%s': bad [IPv6] address", s);
            return;
        }
        *e = '\0';
        host = auth + 1;
        port = e[1] == ':' ? e + 2 : NULL;
    } else {
        char *colon = strchr(auth, ':');
        if (colon) {
            *colon = '\0';
            port = colon + 1;
        }
    }
    unsigned long pv = rt->tls ? 443 : 80;
    if (port) {
        char *end;
        errno = 0;
        pv = strtoul(port, &end, 10);
        if (!port[0] || *end || errno || pv == 0 || pv > 65535) {
            v_error(c, n, "'%s': the port must be 1-65535", s);
            return;
        }
    }
    if (!host[0]) {
        v_error(c, n, "'%s' has no host", s);
        return;
    }
    for (char *h = host; *h; h++) {
        if (*h >= 'A' && *h <= 'Z')
            *h = (char)(*h - 'A' + 'a');
        if (!((*h >= 'a' && *h <= 'z') || (*h >= '0' && *h <= '9') || strchr(".-:_", *h))) {
            v_error(c, n, "'%s': the host has a character that is not allowed", s);
            return;
        }
    }
    rt->host = v_strdup(host);
    rt->port = (uint16_t)pv;
    size_t pl = strlen(path);
    while (pl && path[pl - 1] == '/')
        pl--;
    rt->prefix = v_calloc(pl + 1, 1);
    memcpy(rt->prefix, path, pl);
}

static int read_small_file(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    int rc = 0;
    for (;;) {
        if (got == cap) {
            rc = -EFBIG;
            break;
        }
        ssize_t r = read(fd, out + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (rc < 0)
        return rc;
    while (got && (out[got - 1] == '\n' || out[got - 1] == '\r'))
        got--;
    out[got] = '\0';
    return (int)got;
}

/* ---- field tables ---- */

static void f_cred_env(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    const char *s;
    if (!v_str(c, v, &s, "an environment variable name"))
        return;
    const char *val = s[0] ? getenv(s) : NULL;
    if (!val || !val[0]) {
        v_error(c, v, "environment variable '%s' is not set (or empty); export it before "
                      "starting cordon", s);
        return;
    }
    size_t n = strlen(s) + 5;
    l->rt->credential_from = v_calloc(n, 1);
    snprintf(l->rt->credential_from, n, "env:%s", s);
    l->rt->credential = v_strdup(val);
}

static void f_cred_file(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    const char *s;
    if (!v_str(c, v, &s, "a file path"))
        return;
    char buf[CREDENTIAL_MAX + 1];
    int r = s[0] == '/' ? read_small_file(s, buf, CREDENTIAL_MAX) : -EINVAL;
    if (r < 0) {
        v_error(c, v, "cannot read '%s': %s", s,
                r == -EINVAL ? "use an absolute path" : r == -EFBIG ? "larger than 8 KiB" : strerror(-r));
        explicit_bzero(buf, sizeof(buf));
        return;
    }
    if (r == 0) {
        v_error(c, v, "'%s' is empty", s);
        return;
    }
    size_t n = strlen(s) + 6;
    l->rt->credential_from = v_calloc(n, 1);
    snprintf(l->rt->credential_from, n, "file:%s", s);
    l->rt->credential = v_strdup(buf);
    explicit_bzero(buf, sizeof(buf));
}

static const struct vfield cred_fields[] = {{"env", f_cred_env}, {"file", f_cred_file}};

static void f_credential(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    if (!v_map(c, v, cred_fields, 2, obj, "a map with env: NAME or file: /path"))
        return;
    if (v->n != 2) {
        v_error(c, v, "give exactly one of env: or file:");
        return;
    }
    const char *cred = l->rt->credential;
    if (cred && (strpbrk(cred, "\r\n") || !valid_header_value(cred)))
        v_error(c, v, "the credential contains control characters; it cannot go in a header");
}

static void f_name(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    const char *s;
    if (!v_str(c, v, &s, "a route name"))
        return;
    if (!s[0]) {
        v_error(c, v, "must not be empty");
        return;
    }
    for (size_t i = 0; i + 1 < l->r->n_routes; i++)
        if (l->r->routes[i].name && strcmp(l->r->routes[i].name, s) == 0)
            v_error(c, v, "route '%s' is defined twice; names must be unique", s);
    l->rt->name = v_strdup(s);
}

static void f_shapes(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    if (!v_seq(c, v, "a list of API or shape names"))
        return;
    static const char *const names[] = {
        "openai", "anthropic", "ollama", "openai_chat_completions", "openai_completions",
        "openai_responses", "openai_embeddings", "openai_models", "anthropic_messages",
        "anthropic_count_tokens", "ollama_chat", "ollama_generate", "ollama_tags", NULL};
    for (size_t i = 0; i < v->n; i++) {
        size_t m = v_push(c, "[%zu]", i);
        int k = v_enum(c, v->items[i], names);
        if (k >= 0 && inference_shape_parse(names[k], &l->rt->shapes) < 0)
            v_error(c, v->items[i], "unknown shape");
        v_pop(c, m);
    }
    if (v->n == 0)
        v_error(c, v, "an empty list serves nothing; list at least one API (openai, anthropic, ollama)");
}

static void f_base_url(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    const char *s;
    if (!v_str(c, v, &s, "a URL such as http://127.0.0.1:11434"))
        return;
    l->rt->base_url = v_strdup(s);
    parse_base_url(c, v, l->rt);
}

static void f_models(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    l->rt->models = str_list(c, v, &l->rt->n_models, "a list of model names or globs");
}

static void f_model(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    const char *s;
    if (!v_str(c, v, &s, "a model name"))
        return;
    if (!s[0] || strlen(s) > INFERENCE_MODEL_MAX)
        v_error(c, v, "a model name is 1-%d characters", INFERENCE_MODEL_MAX);
    else
        l->rt->model = v_strdup(s);
}

static void f_aliases(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    str_map(c, v, &l->rt->alias_from, &l->rt->alias_to, &l->rt->n_aliases, false);
}

static void f_headers(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    str_map(c, v, &l->rt->hdr_name, &l->rt->hdr_value, &l->rt->n_headers, true);
}

static void f_websocket(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    (void)v_bool(c, v, &l->rt->websocket);
}

static void f_connect_s(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    int64_t x;
    if (v_int(c, v, 1, 600, &x, "seconds, 1-600"))
        l->rt->connect_timeout_ms = (uint32_t)x * 1000u;
}

static void f_idle_s(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    int64_t x;
    if (v_int(c, v, 1, 86400, &x, "seconds, 1-86400"))
        l->rt->idle_timeout_ms = (uint32_t)x * 1000u;
}

static const struct vfield timeout_fields[] = {{"connect_s", f_connect_s}, {"idle_s", f_idle_s}};

static void f_timeouts(struct vctx *c, const struct ynode *v, void *obj)
{
    (void)v_map(c, v, timeout_fields, 2, obj, "a map with connect_s and idle_s");
}

static const struct vfield route_fields[] = {
    {"name", f_name},       {"shapes", f_shapes},   {"base_url", f_base_url},
    {"credential", f_credential}, {"models", f_models}, {"model", f_model},
    {"aliases", f_aliases}, {"headers", f_headers}, {"websocket", f_websocket},
    {"timeouts", f_timeouts},
};

static void f_routes(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    if (!v_seq(c, v, "a list of routes"))
        return;
    l->r->routes = v_calloc(v->n ? v->n : 1, sizeof(struct inference_route));
    for (size_t i = 0; i < v->n; i++) {
        size_t m = v_push(c, "[%zu]", i);
        struct inference_route *rt = &l->r->routes[l->r->n_routes++];
        rt->connect_timeout_ms = INFERENCE_DEFAULT_CONNECT_MS;
        rt->idle_timeout_ms = INFERENCE_DEFAULT_IDLE_MS;
        l->rt = rt;
        if (v_map(c, v->items[i], route_fields, sizeof(route_fields) / sizeof(route_fields[0]), l,
                  "a route map")) {
            if (!rt->name)
                v_error(c, v->items[i], "a route needs a name");
            if (!rt->base_url)
                v_error(c, v->items[i], "route needs base_url (e.g. http://127.0.0.1:11434)");
            if (!rt->shapes)
                rt->shapes = ~0u & ~1u; /* every shape */
        }
        l->rt = NULL;
        v_pop(c, m);
    }
}

static void f_hosts(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    l->r->hosts = str_list(c, v, &l->r->n_hosts, "a list of host names");
    for (size_t i = 0; i < l->r->n_hosts; i++) {
        char *h = l->r->hosts[i];
        size_t n = strlen(h);
        if (n && h[n - 1] == '.')
            h[--n] = '\0';
        for (char *p = h; *p; p++) {
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
                v_error(c, v->items[i], "'%s' is not a host name", l->r->hosts[i]);
        }
    }
}

static void f_ports(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    if (!v_seq(c, v, "a list of ports"))
        return;
    l->r->ports = v_calloc(v->n ? v->n : 1, sizeof(uint16_t));
    for (size_t i = 0; i < v->n; i++) {
        int64_t x;
        size_t m = v_push(c, "[%zu]", i);
        if (v_int(c, v->items[i], 1, 65535, &x, "a port 1-65535"))
            l->r->ports[l->r->n_ports++] = (uint16_t)x;
        v_pop(c, m);
    }
}

static const struct vfield intercept_fields[] = {{"hosts", f_hosts}, {"ports", f_ports}};

static void f_intercept(struct vctx *c, const struct ynode *v, void *obj)
{
    (void)v_map(c, v, intercept_fields, 2, obj, "a map with hosts and ports");
}

static void f_version(struct vctx *c, const struct ynode *v, void *obj)
{
    int64_t x;
    (void)obj;
    (void)v_int(c, v, 1, 1, &x, "1");
}

static void f_max_body(struct vctx *c, const struct ynode *v, void *obj)
{
    struct load_ctx *l = obj;
    int64_t x;
    if (v_int(c, v, 1024, INFERENCE_BODY_MAX, &x, "bytes, 1024-67108864"))
        l->r->max_body = (uint64_t)x;
}

static const struct vfield top_fields[] = {
    {"version", f_version}, {"intercept", f_intercept}, {"routes", f_routes},
    {"max_body_bytes", f_max_body},
};

/* ---- load ---- */

static void print_diag(FILE *err, struct policy_diag *d)
{
    for (size_t i = 0; err && i < d->n; i++)
        fprintf(err, "%s\n", d->lines[i]);
}

int inference_routes_parse(const char *name, const char *data, size_t len, FILE *err,
                           struct inference_routes **out)
{
    struct vctx c = {.file = name};
    struct ynode *root = NULL;
    struct ytree_error yerr;
    struct policy_diag diag = {0};
    struct inference_routes *r = v_calloc(1, sizeof(*r));
    struct load_ctx l = {.r = r};
    int rc;

    *out = NULL;
    atomic_init(&r->refs, 1);
    r->path = v_strdup(name);
    r->max_body = INFERENCE_BODY_MAX;
    rc = ytree_parse(data, len, &root, &yerr);
    if (rc < 0) {
        if (err)
            fprintf(err, "%s:%u:%u: error: %s\n", name, yerr.line, yerr.col,
                    rc == -EINVAL ? yerr.msg : strerror(-rc));
        goto out;
    }
    if (!root) {
        if (err)
            fprintf(err, "%s:1:1: error: the routes file is empty; it needs 'routes:'\n", name);
        rc = -EINVAL;
        goto out;
    }
    if (v_map(&c, root, top_fields, sizeof(top_fields) / sizeof(top_fields[0]), &l,
              "a map with version, intercept, routes") && r->n_routes == 0)
        v_error(&c, root, "no routes: add 'routes:' with at least one route");
    if (!r->hosts) {
        r->hosts = v_calloc(1, sizeof(char *));
        r->hosts[r->n_hosts++] = v_strdup(INFERENCE_DEFAULT_HOST);
    }
    rc = c.n_errors ? -EINVAL : 0;
    v_flush(&c, &diag);
    print_diag(err, &diag);
    if (rc == 0) {
        *out = r;
        r = NULL;
    }
out:
    policy_diag_free(&diag);
    inference_routes_free(r);
    ytree_free(root);
    return rc;
}

int inference_routes_load(const char *path, FILE *err, struct inference_routes **out)
{
    *out = NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;
    char *buf = NULL;
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > ROUTES_MAX_FILE) {
        rc = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto fail;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            goto fail;
        }
        got += (size_t)r;
    }
    rc = inference_routes_parse(path, buf, got, err, out);
    goto out;
fail:
    if (err)
        fprintf(err, "%s: error: cannot read the inference routes: %s\n", path,
                rc == -EINVAL ? "not a regular file" : rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void inference_routes_free(struct inference_routes *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_routes; i++) {
        struct inference_route *rt = &r->routes[i];
        free(rt->name);
        free(rt->base_url);
        free(rt->host);
        free(rt->prefix);
        if (rt->credential) {
            explicit_bzero(rt->credential, strlen(rt->credential));
            free(rt->credential);
        }
        free(rt->credential_from);
        free_strs(rt->models, rt->n_models);
        free(rt->model);
        free_strs(rt->alias_from, rt->n_aliases);
        free_strs(rt->alias_to, rt->n_aliases);
        free_strs(rt->hdr_name, rt->n_headers);
        free_strs(rt->hdr_value, rt->n_headers);
    }
    free(r->routes);
    free_strs(r->hosts, r->n_hosts);
    free(r->ports);
    free(r->path);
    free(r);
}

struct inference_routes *inference_routes_ref(struct inference_routes *r)
{
    if (r)
        atomic_fetch_add(&r->refs, 1);
    return r;
}

void inference_routes_unref(struct inference_routes *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1)
        inference_routes_free(r);
}

/* ---- lookups ---- */

bool inference_routes_names(const struct inference_routes *r, const char *host)
{
    size_t n = strlen(host);
    if (n && host[n - 1] == '.')
        n--;
    if (!r)
        return n == strlen(INFERENCE_DEFAULT_HOST) && strncasecmp(host, INFERENCE_DEFAULT_HOST, n) == 0;
    bool named = false;
    for (size_t i = 0; i < r->n_hosts && !named; i++)
        named = strlen(r->hosts[i]) == n && strncasecmp(r->hosts[i], host, n) == 0;
    return named;
}

bool inference_routes_intercepts(const struct inference_routes *r, const char *host, uint16_t port)
{
    if (!inference_routes_names(r, host))
        return false;
    if (!r)
        return true;
    if (r->n_ports == 0)
        return true;
    for (size_t i = 0; i < r->n_ports; i++)
        if (r->ports[i] == port)
            return true;
    return false;
}

static bool takes_model(const struct inference_route *rt, const char *model)
{
    if (rt->n_models == 0)
        return true;
    for (size_t i = 0; i < rt->n_aliases; i++)
        if (strcmp(rt->alias_from[i], model) == 0)
            return true;
    for (size_t i = 0; i < rt->n_models; i++)
        if (glob_match(rt->models[i], model, '\0', false))
            return true;
    return false;
}

const struct inference_route *inference_route_pick(const struct inference_routes *r,
                                                   enum inference_shape shape, const char *model)
{
    for (size_t i = 0; r && i < r->n_routes; i++) {
        const struct inference_route *rt = &r->routes[i];
        if ((rt->shapes & (1u << shape)) && takes_model(rt, model ? model : ""))
            return rt;
    }
    return NULL;
}

const char *inference_route_model(const struct inference_route *rt, const char *requested)
{
    for (size_t i = 0; requested && i < rt->n_aliases; i++)
        if (strcmp(rt->alias_from[i], requested) == 0)
            return rt->alias_to[i];
    return rt->model;
}

int inference_route_path(const struct inference_route *rt, const char *target, size_t target_len,
                         char *out, size_t cap)
{
    size_t pl = strlen(rt->prefix);
    /* base .../v1 + /v1/x: one /v1; base .../v1 + /api/x (Ollama's native
     * API lives beside its OpenAI-compatible /v1): the root */
    if (pl >= 3 && strcmp(rt->prefix + pl - 3, "/v1") == 0 && target_len >= 4 &&
        (memcmp(target, "/v1/", 4) == 0 || (target_len >= 5 && memcmp(target, "/api/", 5) == 0)))
        pl -= 3;
    if (pl + target_len + 1 > cap)
        return -ENOSPC;
    memcpy(out, rt->prefix, pl);
    memcpy(out + pl, target, target_len);
    out[pl + target_len] = '\0';
    return 0;
}
