/* sandbox/childenv: the command's environment.
 *
 * The supervisor's environment is inherited (agents need their API keys
 * and PATH) except proxy settings, which would point around or at another
 * proxy, and cordon's own variables; with an allowlist (--env-keep,
 * --env-clear) only the base set and the listed names pass. Then the proxy
 * variables are set in both cases, because clients disagree on which one
 * they read; every CA variable of the common runtimes names the sandbox's
 * bundle (a host path would not be readable inside, or would not trust the
 * proxy's CA); SSL_CERT_DIR is dropped (the bundle holds the system anchors
 * too); Java gets its proxy properties and truststore in JAVA_TOOL_OPTIONS. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>

#include "sandbox/sandbox_int.h"
#include "tls/tls.h"
#include "core/banned.h"

#define CHILDENV_MAX 4096 /* entries; more is a broken environment */

static const char *const PROXY_VARS[] = {"http_proxy", "https_proxy", "all_proxy",
                                         "no_proxy", "ftp_proxy", "grpc_proxy",
                                         "rsync_proxy", "NODE_USE_ENV_PROXY"};
static const char NO_PROXY_VALUE[] = "localhost,127.0.0.1,::1";

/* What passes even with --env-clear: what a terminal program needs. */
static const char *const CHILDENV_BASE_VARS[] = {"PATH", "TERM", "COLORTERM", "LANG", "LANGUAGE",
                                                 "LC_*", "TZ", "SHELL", NULL};

/* Name part of "NAME=value" equals name (case-insensitive when ci). */
static bool name_is(const char *entry, const char *name, bool ci)
{
    size_t n = strlen(name);
    if ((ci ? strncasecmp(entry, name, n) : strncmp(entry, name, n)) != 0)
        return false;
    return entry[n] == '=';
}

static bool dropped(const char *entry)
{
    for (size_t i = 0; i < sizeof(PROXY_VARS) / sizeof(PROXY_VARS[0]); i++)
        if (name_is(entry, PROXY_VARS[i], true))
            return true;
    /* cordon's own settings are the supervisor's business. */
    if (strncmp(entry, "CORDON_", 7) == 0)
        return true;
    /* a host directory of anchors; the bundle has them all */
    if (name_is(entry, "SSL_CERT_DIR", false))
        return true;
    return false;
}

/* entry's name matches pattern ("NAME" exactly, "PREFIX*" as a prefix). */
static bool matches(const char *entry, const char *pattern)
{
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '*')
        return strncmp(entry, pattern, n - 1) == 0 && strchr(entry + n - 1, '=') != NULL;
    return name_is(entry, pattern, false);
}

static bool allowed(const char *entry, const struct childenv_opts *o)
{
    if (!o->clear && !o->keep)
        return true;
    for (size_t i = 0; CHILDENV_BASE_VARS[i]; i++)
        if (matches(entry, CHILDENV_BASE_VARS[i]))
            return true;
    for (size_t i = 0; o->keep && o->keep[i]; i++)
        if (matches(entry, o->keep[i]))
            return true;
    return false;
}

static int push(struct childenv *e, char *s)
{
    if (!s)
        return -ENOMEM;
    if (e->n + 1 >= e->cap) {
        size_t nc = e->cap ? e->cap * 2 : 64;
        if (nc > CHILDENV_MAX) {
            free(s);
            return -E2BIG;
        }
        char **nv = realloc(e->envp, nc * sizeof(*nv));
        if (!nv) {
            free(s);
            return -ENOMEM;
        }
        e->envp = nv;
        e->cap = nc;
    }
    e->envp[e->n++] = s;
    e->envp[e->n] = NULL;
    return 0;
}

/* Sets name=value, replacing an existing entry of the same name. */
static int set(struct childenv *e, const char *name, const char *value)
{
    size_t len = strlen(name) + 1 + strlen(value) + 1;
    char *s = malloc(len);
    if (!s)
        return -ENOMEM;
    snprintf(s, len, "%s=%s", name, value);
    for (size_t i = 0; i < e->n; i++) {
        if (name_is(e->envp[i], name, false)) {
            free(e->envp[i]);
            e->envp[i] = s;
            return 0;
        }
    }
    return push(e, s);
}

/* JAVA_TOOL_OPTIONS: Java reads no *_PROXY variable and no PEM bundle. The
 * proxy properties for both schemes, localhost direct, and the truststore;
 * appended to what the caller's environment had. */
static int java_options(struct childenv *e, const struct childenv_opts *o)
{
    char host[64] = "", port[8] = "";
    const char *hp = o->proxy_url ? strstr(o->proxy_url, "://") : NULL;
    if (hp) {
        hp += 3;
        const char *colon = strrchr(hp, ':');
        if (colon && (size_t)(colon - hp) < sizeof(host) && strlen(colon + 1) < sizeof(port)) {
            snprintf(host, sizeof(host), "%.*s", (int)(colon - hp), hp);
            snprintf(port, sizeof(port), "%s", colon + 1);
        }
    }
    if (!host[0] && !o->java_truststore)
        return 0;
    char opts[1024];
    size_t n = 0;
    const char *old = childenv_get(e, "JAVA_TOOL_OPTIONS");
    if (old && old[0])
        n += (size_t)snprintf(opts + n, sizeof(opts) - n, "%s ", old);
    if (host[0] && n < sizeof(opts))
        n += (size_t)snprintf(opts + n, sizeof(opts) - n,
                              "-Dhttp.proxyHost=%s -Dhttp.proxyPort=%s -Dhttps.proxyHost=%s "
                              "-Dhttps.proxyPort=%s -Dhttp.nonProxyHosts=localhost|127.0.0.1 ",
                              host, port, host, port);
    if (o->java_truststore && n < sizeof(opts))
        n += (size_t)snprintf(opts + n, sizeof(opts) - n,
                              "-Djavax.net.ssl.trustStore=%s -Djavax.net.ssl.trustStoreType=PKCS12 "
                              "-Djavax.net.ssl.trustStorePassword=changeit ",
                              o->java_truststore);
    if (n >= sizeof(opts))
        return -E2BIG;
    if (n && opts[n - 1] == ' ')
        opts[n - 1] = '\0';
    return set(e, "JAVA_TOOL_OPTIONS", opts);
}

int childenv_build(char *const *base, const struct childenv_opts *o, struct childenv *out)
{
    memset(out, 0, sizeof(*out));
    int rc;
    out->envp = calloc(64, sizeof(*out->envp));
    if (!out->envp)
        return -ENOMEM;
    out->cap = 64;
    for (size_t i = 0; base && base[i]; i++) {
        if (!strchr(base[i], '=') || dropped(base[i]) || !allowed(base[i], o))
            continue;
        if ((rc = push(out, strdup(base[i]))) < 0)
            goto out;
    }
    static const char *const proxy_names[] = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                                              "http_proxy", "https_proxy", "all_proxy"};
    for (size_t i = 0; o->proxy_url && i < sizeof(proxy_names) / sizeof(proxy_names[0]); i++)
        if ((rc = set(out, proxy_names[i], o->proxy_url)) < 0)
            goto out;
    if ((rc = set(out, "NO_PROXY", NO_PROXY_VALUE)) < 0 ||
        (rc = set(out, "no_proxy", NO_PROXY_VALUE)) < 0 ||
        (rc = set(out, "NODE_USE_ENV_PROXY", "1")) < 0)
        goto out;
    if (o->user && ((rc = set(out, "USER", o->user)) < 0 ||
                    (rc = set(out, "LOGNAME", o->user)) < 0))
        goto out;
    if (o->home && o->home[0] && (rc = set(out, "HOME", o->home)) < 0)
        goto out;
    if (o->sandbox_name && (rc = set(out, "CORDON_SANDBOX", o->sandbox_name)) < 0)
        goto out;
    for (size_t i = 0; o->ca_bundle && TLS_BUNDLE_ENV_VARS[i]; i++)
        if ((rc = set(out, TLS_BUNDLE_ENV_VARS[i], o->ca_bundle)) < 0)
            goto out;
    if ((rc = java_options(out, o)) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        childenv_free(out);
    return rc;
}

const char *childenv_get(const struct childenv *e, const char *name)
{
    for (size_t i = 0; i < e->n; i++)
        if (name_is(e->envp[i], name, false))
            return e->envp[i] + strlen(name) + 1;
    return NULL;
}

void childenv_free(struct childenv *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->envp[i]);
    free(e->envp);
    memset(e, 0, sizeof(*e));
}
