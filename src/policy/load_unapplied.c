/* policy/load_unapplied: OpenShell fields that cordon reads, checks for
 * shape, and does not apply: supervisor middleware (network_middlewares)
 * and provider credentials (credential_binding, credential_signing,
 * signing_service, signing_region, *_credential_rewrite,
 * allow_uninspected_credentials). Each one loads with a warning that names
 * the field and says what cordon does instead; none of them widens what the
 * policy allows, and `cordon policy check --strict` turns the warnings into
 * errors. */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"
#include "policy/vctx.h"

#include "core/banned.h"

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- network_middlewares ---- */

/* OpenShell's limits (openshell-core middleware.rs): configs per policy,
 * include + exclude patterns per config. */
#define MW_MAX_CONFIGS 10
#define MW_MAX_PATTERNS 32

struct mw_build {
    const struct ynode *middleware, *endpoints, *order, *on_error;
    const char *impl;
    size_t n_patterns;
};

static void f_mw_name(struct vctx *c, const struct ynode *n, void *obj)
{
    const char *s;
    (void)obj;
    (void)v_str(c, n, &s, "a display name");
}

static void f_mw_middleware(struct vctx *c, const struct ynode *n, void *obj)
{
    struct mw_build *mb = obj;
    mb->middleware = n;
    if (v_str(c, n, &mb->impl, "a middleware name such as openshell/regex") && !*mb->impl)
        v_error(c, n, "must not be empty (e.g. openshell/regex)");
}

static void f_mw_order(struct vctx *c, const struct ynode *n, void *obj)
{
    int64_t v;
    if (v_int(c, n, INT32_MIN, INT32_MAX, &v, "an integer; lower runs first"))
        ((struct mw_build *)obj)->order = n;
}

static void f_mw_config(struct vctx *c, const struct ynode *n, void *obj)
{
    (void)obj;
    if (n->kind != YN_MAP)
        v_error(c, n, "expected a map, got %s", ytree_type_name(n));
}

static void f_mw_on_error(struct vctx *c, const struct ynode *n, void *obj)
{
    static const char *const vals[] = {"fail_closed", "fail_open", NULL};
    if (v_enum(c, n, vals) >= 0)
        ((struct mw_build *)obj)->on_error = n;
}

/* A selector pattern: a DNS name whose labels may hold '*' (or be '**'),
 * as OpenShell's HostPattern reads them; NULL when fine. Character classes
 * and braces are refused (OpenShell refuses braces and unbalanced '['). */
static const char *mw_pattern_problem(const char *s)
{
    if (!*s)
        return "is empty";
    for (const char *lab = s;;) {
        size_t l = strcspn(lab, ".");
        if (l == 0)
            return "has an empty label";
        for (size_t i = 0; i < l; i++) {
            char ch = lab[i];
            bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '*';
            if (!ok)
                return "contains a character other than letters, digits, '-', '_', '*' and '.'";
        }
        if (lab[l] == '\0')
            return NULL;
        lab += l + 1;
    }
}

static void host_list(struct vctx *c, const struct ynode *n, bool required, size_t *count)
{
    const char *s, *why;
    if (!v_seq(c, n, "a list of host patterns"))
        return;
    if (required && n->n == 0)
        v_error(c, n, "empty list (list host patterns such as '*.example.com')");
    *count += n->n;
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = v_push(c, "[%zu]", i);
        if (v_str(c, n->items[i], &s, "a host pattern such as '*.example.com'") &&
            (why = mw_pattern_problem(s)))
            v_error(c, n->items[i], "host pattern '%.64s' %s", s, why);
        v_pop(c, mark);
    }
}

static void f_mw_include(struct vctx *c, const struct ynode *n, void *obj)
{
    host_list(c, n, true, &((struct mw_build *)obj)->n_patterns);
}

static void f_mw_exclude(struct vctx *c, const struct ynode *n, void *obj)
{
    host_list(c, n, false, &((struct mw_build *)obj)->n_patterns);
}

static void f_mw_endpoints(struct vctx *c, const struct ynode *n, void *obj)
{
    static const struct vfield fields[] = {{"include", f_mw_include}, {"exclude", f_mw_exclude}};
    struct mw_build *mb = obj;
    mb->endpoints = n;
    if (v_map(c, n, fields, NFIELDS(fields), mb, "a host selector {include, exclude}") &&
        mb->n_patterns > MW_MAX_PATTERNS)
        v_error(c, n, "%zu include and exclude patterns (at most %d)", mb->n_patterns,
                MW_MAX_PATTERNS);
}

static void v_middleware(struct vctx *c, const struct ynode *key, const struct ynode *n,
                         struct mw_build *mb)
{
    static const struct vfield fields[] = {
        {"name", f_mw_name},         {"middleware", f_mw_middleware}, {"order", f_mw_order},
        {"config", f_mw_config},     {"on_error", f_mw_on_error},
        {"endpoints", f_mw_endpoints},
    };
    if (!*key->str)
        v_error(c, key, "a middleware name must not be empty");
    if (!v_map(c, n, fields, NFIELDS(fields), mb,
               "a middleware is a map {middleware, order, config, on_error, endpoints}"))
        return;
    if (!mb->middleware)
        v_error(c, n, "middleware is required (e.g. openshell/regex)");
    if (!mb->endpoints)
        v_error(c, n, "endpoints is required ({include: [host patterns]})");
    v_warn(c, key, "network_middlewares.%.64s (%.64s) is not applied: cordon runs no "
                   "supervisor middleware, so requests and WebSocket messages to the hosts it "
                   "selects are forwarded unmodified (network_policies still decide what is "
                   "allowed)", key->str, mb->impl ? mb->impl : "?");
}

void v_network_middlewares(struct vctx *c, const struct ynode *n)
{
    if (n->kind != YN_MAP) {
        v_error(c, n, "expected a map from name to middleware, got %s", ytree_type_name(n));
        return;
    }
    size_t count = n->n / 2;
    if (count > MW_MAX_CONFIGS)
        v_error(c, n, "%zu middleware configs (at most %d)", count, MW_MAX_CONFIGS);
    struct mw_build *mb = v_calloc(count ? count : 1, sizeof(*mb));
    for (size_t i = 0; i < count; i++) {
        if (!v_map_key_ok(c, n, i))
            continue;
        size_t mark = v_push(c, ".%s", n->items[2 * i]->str);
        v_middleware(c, n->items[2 * i], n->items[2 * i + 1], &mb[i]);
        /* two middlewares with one order (an omitted order is 0, as in
         * OpenShell): their sequence would be undefined */
        int64_t oi = mb[i].order ? mb[i].order->ival : 0;
        for (size_t j = 0; j < i; j++) {
            int64_t oj = mb[j].order ? mb[j].order->ival : 0;
            if (oi == oj && n->items[2 * j]->kind == YN_SCALAR) {
                v_error(c, mb[i].order ? mb[i].order : n->items[2 * i],
                        "order %lld is also network_middlewares.%.64s's (line %u): give each "
                        "middleware its own order", (long long)oi, n->items[2 * j]->str,
                        n->items[2 * j]->line);
                break;
            }
        }
        v_pop(c, mark);
    }
    free(mb);
}

/* Whether lowercase selector pattern sel covers the concrete host h. */
static bool mw_covers(const char *sel, const char *h)
{
    return strchr(sel, '*') ? policy_host_glob_match(sel, h) : strcmp(sel, h) == 0;
}

static bool mw_lower(const char *s, char *out, size_t cap)
{
    size_t l = strlen(s);
    if (l >= cap)
        return false;
    for (size_t i = 0; i <= l; i++)
        out[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    return true;
}

/* Whether a middleware's selector may pick traffic of endpoint ep, the way
 * OpenShell decides it (HostSelector::may_match_pattern): an include that
 * can meet the endpoint's host, not excluded. */
static bool mw_selects(const struct ynode *inc, const struct ynode *exc,
                       const struct policy_endpoint *ep)
{
    char a[POLICY_MAX_HOST_LEN + 1], x[POLICY_MAX_HOST_LEN + 1];
    bool ep_literal = ep->host_kind != POLICY_HOST_WILDCARD;
    for (size_t i = 0; i < inc->n; i++) {
        if (!mw_lower(inc->items[i]->str, a, sizeof(a)) ||
            !policy_host_patterns_overlap(a, ep->host))
            continue;
        const char *concrete = ep_literal ? ep->host : strchr(a, '*') ? NULL : a;
        bool excluded = false;
        for (size_t k = 0; exc && k < exc->n && !excluded; k++) {
            if (!mw_lower(exc->items[k]->str, x, sizeof(x)))
                continue;
            if (concrete)
                excluded = mw_covers(x, concrete);
            else
                excluded = strcmp(x, "*") == 0 || strcmp(x, "**") == 0 || strcmp(x, a) == 0 ||
                           strcmp(x, ep->host) == 0;
        }
        if (!excluded)
            return true;
    }
    return false;
}

static const struct ynode *map_get(const struct ynode *m, const char *key)
{
    if (!m || m->kind != YN_MAP)
        return NULL;
    for (size_t i = 0; i < m->n / 2; i++)
        if (m->items[2 * i]->kind == YN_SCALAR && strcmp(m->items[2 * i]->str, key) == 0)
            return m->items[2 * i + 1];
    return NULL;
}

void v_middlewares_tls_skip(struct vctx *c, const struct ynode *root, const struct policy *p)
{
    const struct ynode *mws = map_get(root, "network_middlewares");
    if (!mws || mws->kind != YN_MAP)
        return;
    for (size_t i = 0; i < mws->n / 2; i++) {
        const struct ynode *key = mws->items[2 * i], *mw = mws->items[2 * i + 1];
        const struct ynode *on_error = map_get(mw, "on_error");
        const struct ynode *sel = map_get(mw, "endpoints");
        const struct ynode *inc = map_get(sel, "include"), *exc = map_get(sel, "exclude");
        if (on_error && strcmp(on_error->str, "fail_open") == 0)
            continue; /* OpenShell lets a fail-open middleware skip what it cannot see */
        if (!inc || inc->kind != YN_SEQ || (exc && exc->kind != YN_SEQ))
            continue;
        for (size_t e = 0; e < p->n_entries; e++) {
            const struct policy_entry *en = &p->entries[e];
            for (size_t k = 0; k < en->n_endpoints; k++) {
                const struct policy_endpoint *ep = &en->endpoints[k];
                if (ep->tls != POLICY_TLS_SKIP || ep->host_kind == POLICY_HOST_NONE ||
                    !mw_selects(inc, exc, ep))
                    continue;
                size_t mark = v_push(c, "network_middlewares.%s", key->str);
                v_error(c, key, "selects network_policies.%.64s.endpoints[%d] (host '%.64s', "
                        "line %u), which has tls: skip, so a fail-closed middleware could "
                        "never see its traffic (OpenShell refuses this too; exclude the "
                        "host, set on_error: fail_open, or drop tls: skip)", en->key, ep->index,
                        ep->host, ep->line);
                v_pop(c, mark);
            }
        }
    }
}

/* ---- credential fields of an endpoint ---- */

static void f_provider(struct vctx *c, const struct ynode *n, void *obj)
{
    const char **out = obj;
    (void)v_str(c, n, out, "the name of an attached provider");
}

void v_credential_field(struct vctx *c, const char *field, const struct ynode *n)
{
    static const char *const signing[] = {"sigv4", "sigv4:body", "sigv4:no_body", NULL};
    static const struct vfield binding[] = {{"provider", f_provider}};
    const char *s = NULL;
    bool b;

    if (strcmp(field, "credential_binding") == 0) {
        if (v_map(c, n, binding, NFIELDS(binding), &s, "a map {provider: NAME}") && !s)
            v_error(c, n, "provider is required");
    } else if (strcmp(field, "credential_signing") == 0) {
        if (v_enum(c, n, signing) < 0)
            return;
    } else if (strcmp(field, "signing_service") == 0 || strcmp(field, "signing_region") == 0) {
        if (!v_str(c, n, &s, "an AWS service or region name"))
            return;
    } else if (!v_bool(c, n, &b)) {
        return;
    } else if (!b) {
        return; /* false is what cordon does anyway */
    }
    if (strcmp(field, "allow_uninspected_credentials") == 0)
        v_warn(c, n, "%s has no effect: cordon holds no provider credentials, so there is "
                     "nothing to protect on uninspected paths", field);
    else
        v_warn(c, n, "%s is not applied: cordon injects, rewrites and signs no provider "
                     "credentials; requests go upstream with the client's own headers and "
                     "body, unchanged", field);
}

void v_credential_pairs(struct vctx *c, const struct ynode *ep)
{
    const struct ynode *signing = map_get(ep, "credential_signing");
    const struct ynode *service = map_get(ep, "signing_service");
    const struct ynode *body = map_get(ep, "request_body_credential_rewrite");
    if (!signing || signing->kind != YN_SCALAR || !*signing->str)
        return;
    if (!service || service->kind != YN_SCALAR || !*service->str)
        v_error(c, signing, "credential_signing needs signing_service (the AWS service name, "
                            "e.g. bedrock or s3), as in OpenShell");
    if (body && body->kind == YN_SCALAR && body->type == YS_BOOL && body->bval)
        v_error(c, body, "request_body_credential_rewrite and credential_signing are mutually "
                         "exclusive (a rewritten body would not match its signature), as in "
                         "OpenShell");
}
