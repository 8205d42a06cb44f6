/* policy/load_unapplied: OpenShell fields that cordon reads, checks for
 * shape, and does not apply: supervisor middleware (network_middlewares)
 * and provider credentials (credential_binding, credential_signing,
 * signing_service, signing_region, *_credential_rewrite,
 * allow_uninspected_credentials). Each one loads with a warning that names
 * the field and says what cordon does instead; none of them widens what the
 * policy allows, and `cordon policy check --strict` turns the warnings into
 * errors. */
#include <string.h>

#include "policy/policy_int.h"
#include "policy/vctx.h"

#include "core/banned.h"

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- network_middlewares ---- */

struct mw_build {
    const struct ynode *middleware, *endpoints;
    const char *impl;
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
    (void)v_str(c, n, &mb->impl, "a middleware name such as openshell/regex");
}

static void f_mw_order(struct vctx *c, const struct ynode *n, void *obj)
{
    int64_t v;
    (void)obj;
    (void)v_int(c, n, INT32_MIN, INT32_MAX, &v, "an integer; lower runs first");
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
    (void)obj;
    (void)v_enum(c, n, vals);
}

static void host_list(struct vctx *c, const struct ynode *n, bool required)
{
    const char *s;
    if (!v_seq(c, n, "a list of host patterns"))
        return;
    if (required && n->n == 0)
        v_error(c, n, "empty list (list host patterns such as '*.example.com')");
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = v_push(c, "[%zu]", i);
        (void)v_str(c, n->items[i], &s, "a host pattern such as '*.example.com'");
        v_pop(c, mark);
    }
}

static void f_mw_include(struct vctx *c, const struct ynode *n, void *obj)
{
    (void)obj;
    host_list(c, n, true);
}

static void f_mw_exclude(struct vctx *c, const struct ynode *n, void *obj)
{
    (void)obj;
    host_list(c, n, false);
}

static void f_mw_endpoints(struct vctx *c, const struct ynode *n, void *obj)
{
    static const struct vfield fields[] = {{"include", f_mw_include}, {"exclude", f_mw_exclude}};
    struct mw_build *mb = obj;
    mb->endpoints = n;
    (void)v_map(c, n, fields, NFIELDS(fields), NULL, "a host selector {include, exclude}");
}

static void v_middleware(struct vctx *c, const struct ynode *key, const struct ynode *n)
{
    static const struct vfield fields[] = {
        {"name", f_mw_name},         {"middleware", f_mw_middleware}, {"order", f_mw_order},
        {"config", f_mw_config},     {"on_error", f_mw_on_error},
        {"endpoints", f_mw_endpoints},
    };
    struct mw_build mb = {0};
    if (!v_map(c, n, fields, NFIELDS(fields), &mb,
               "a middleware is a map {middleware, order, config, on_error, endpoints}"))
        return;
    if (!mb.middleware)
        v_error(c, n, "middleware is required (e.g. openshell/regex)");
    if (!mb.endpoints)
        v_error(c, n, "endpoints is required ({include: [host patterns]})");
    v_warn(c, key, "network_middlewares.%.64s (%.64s) is not applied: cordon runs no "
                   "supervisor middleware, so requests and WebSocket messages to the hosts it "
                   "selects are forwarded unmodified (network_policies still decide what is "
                   "allowed)", key->str, mb.impl ? mb.impl : "?");
}

void v_network_middlewares(struct vctx *c, const struct ynode *n)
{
    if (n->kind != YN_MAP) {
        v_error(c, n, "expected a map from name to middleware, got %s", ytree_type_name(n));
        return;
    }
    for (size_t i = 0; i < n->n / 2; i++) {
        if (!v_map_key_ok(c, n, i))
            continue;
        size_t mark = v_push(c, ".%s", n->items[2 * i]->str);
        v_middleware(c, n->items[2 * i], n->items[2 * i + 1]);
        v_pop(c, mark);
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
