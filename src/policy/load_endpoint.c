/* policy/load_endpoint: validation and compilation of one endpoint map
 * (host, ports, protocol, tls, enforcement, access, allowed_ips, timeouts,
 * path, the GraphQL/MCP/JSON-RPC options) and the checks between its
 * fields. Rules are compiled in load_rules.c, host patterns checked in
 * host.c, credential fields reported in load_unapplied.c. Every rule is in
 * doc/policy.md. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/addrclass.h"
#include "core/parse.h"
#include "policy/glob.h"
#include "policy/policy_int.h"
#include "policy/vctx.h"

#include "core/banned.h"

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

struct ep_build {
    struct policy_endpoint *ep;
    const struct ynode *host, *port, *ports, *protocol, *tls, *enforcement, *access, *rules,
        *deny_rules, *ips, *path, *enc_slash, *persisted, *pq_registry, *gql_max, *mcp,
        *json_rpc;
    const struct ynode *l7_only; /* first field that needs an inspected protocol */
    const char *l7_only_name;
};

void v_warn_metachars(struct vctx *c, const struct ynode *n, const char *s)
{
    const char *m = strpbrk(s, "?[{");
    if (m)
        v_warn(c, n, "'%c' is a literal character here (OpenShell treats it as glob syntax)", *m);
}

bool v_path_metachars_ok(struct vctx *c, const struct ynode *n, const char *s)
{
    const char *m = strpbrk(s, "[{}\\");
    if (!m)
        return true;
    v_error(c, n, "'%c' in a path glob is not supported: OpenShell reads it as glob syntax (a "
                  "class, alternatives or an escape) and cordon would read it literally, which "
                  "could match a path OpenShell does not; write the paths out as separate rules",
            *m);
    return false;
}

/* ---- host ---- */

/* NULL when h is a valid DNS name (letters, digits, '-', '_'; labels of
 * 1-63 characters not starting or ending with '-'; the last label not all
 * digits), else what is wrong. *labels gets the label count. */
static const char *hostname_problem(const char *h, size_t *labels)
{
    *labels = 0;
    if (*h == '\0')
        return "is empty";
    for (const char *lab = h;;) {
        size_t l = strcspn(lab, ".");
        (*labels)++;
        if (l == 0)
            return "has an empty label";
        if (l > 63)
            return "has a label longer than 63 characters";
        if (strspn(lab, "abcdefghijklmnopqrstuvwxyz0123456789-_") < l)
            return "contains a character other than letters, digits, '-', '_' and '.'";
        if (lab[0] == '-' || lab[l - 1] == '-')
            return "has a label that starts or ends with '-'";
        if (lab[l] == '\0')
            return strspn(lab, "0123456789") == l ? "is neither a valid IP address nor a host "
                                                    "name"
                                                  : NULL;
        lab += l + 1;
    }
}

/* Suffixes like "co.uk": two labels, a generic second-level label and a
 * two-letter country code. A warning only; we do not ship the PSL. */
static bool looks_public_suffix(const char *suffix, size_t labels)
{
    static const char *const sld[] = {"co", "com", "net", "org", "gov", "edu", "ac", "ne",
                                      "or", "go", NULL};
    const char *dot = strchr(suffix, '.');
    if (labels != 2 || !dot || strlen(dot + 1) != 2)
        return false;
    for (size_t i = 0; sld[i]; i++)
        if ((size_t)(dot - suffix) == strlen(sld[i]) && strncmp(suffix, sld[i], strlen(sld[i])) == 0)
            return true;
    return false;
}

static void host_wildcard(struct vctx *c, const struct ynode *n, struct policy_endpoint *ep,
                          char *h)
{
    size_t skip = strncmp(h, "**.", 3) == 0 ? 3 : strncmp(h, "*.", 2) == 0 ? 2 : 0;
    size_t labels;
    const char *why = policy_host_pattern_problem(h);

    if (why) {
        v_error(c, n, "'%.200s' %s (allowed: a DNS name, an IP address, or a pattern such as "
                      "'*.example.com', '**.example.com', '*-ai.example.com', "
                      "'*.s3.*.amazonaws.com')", h, why);
        return;
    }
    ep->host_kind = POLICY_HOST_WILDCARD;
    ep->host = v_strdup(h);
    if (skip && !strchr(h + skip, '*') && !hostname_problem(h + skip, &labels)) {
        ep->suffix = ep->host + skip - 1; /* ".example.com", for the apex hint */
        if (looks_public_suffix(h + skip, labels))
            v_warn(c, n, "'%s' matches every site under the public suffix '%s'", h, h + skip);
    }
}

static bool host_ip(struct vctx *c, const struct ynode *n, struct policy_endpoint *ep,
                    const char *h)
{
    const char *range;
    if (inet_pton(AF_INET, h, ep->ip) == 1)
        ep->ip_family = AF_INET;
    else if (inet_pton(AF_INET6, h, ep->ip) == 1)
        ep->ip_family = AF_INET6;
    else
        return false;
    if (addr_classify_raw(ep->ip_family, ep->ip, &range) == ADDR_ALWAYS_BLOCKED) {
        v_error(c, n, "%s is a %s address, which is always blocked (allowed: routable private or "
                      "public addresses)", h, range);
        return true;
    }
    ep->host_kind = POLICY_HOST_IP;
    ep->host = v_strdup(h);
    return true;
}

static void f_host(struct vctx *c, const struct ynode *n, void *obj)
{
    struct ep_build *b = obj;
    char h[POLICY_MAX_HOST_LEN + 3];
    const char *s, *why;
    size_t labels;

    b->host = n;
    if (n->kind == YN_SCALAR && n->type == YS_NULL)
        return; /* hostless */
    if (!v_str(c, n, &s, "a host name, an IP address or '*.example.com'"))
        return;
    size_t l = strlen(s);
    if (l == 0)
        return;
    if (l >= sizeof(h)) {
        v_error(c, n, "host is longer than %d characters", POLICY_MAX_HOST_LEN);
        return;
    }
    for (size_t i = 0; i <= l; i++)
        h[i] = (char)tolower((unsigned char)s[i]);
    if (h[0] == '[' && h[l - 1] == ']') { /* [v6] */
        memmove(h, h + 1, l - 2);
        h[l -= 2] = '\0';
    }
    if (l > 1 && h[l - 1] == '.') /* the root label: "a.example." == "a.example" */
        h[--l] = '\0';
    if (host_ip(c, n, b->ep, h))
        return;
    if (strchr(h, '*')) {
        host_wildcard(c, n, b->ep, h);
        return;
    }
    if ((why = hostname_problem(h, &labels))) {
        v_error(c, n, "'%.200s' %s (allowed: a DNS name, an IP address, or '*.' + a DNS name)",
                s, why);
        return;
    }
    if (strcmp(h, "localhost") == 0 || (l > 10 && strcmp(h + l - 10, ".localhost") == 0)) {
        v_error(c, n, "'%s' always resolves to loopback, which is always blocked", s);
        return;
    }
    if (strcmp(h, "metadata.google.internal") == 0) {
        /* a cloud metadata service's name: it resolves to 169.254.169.254,
         * which is always blocked, so the endpoint could never be reached */
        v_error(c, n, "'%.200s' is a cloud metadata hostname, which is always blocked "
                "(its address 169.254.169.254 is link-local)", s);
        return;
    }
    b->ep->host_kind = POLICY_HOST_EXACT;
    b->ep->host = v_strdup(h);
}

/* ---- ports ---- */

static void f_port(struct vctx *c, const struct ynode *n, void *obj)
{
    struct ep_build *b = obj;
    int64_t v;
    b->port = n;
    if (!v_int(c, n, 1, 65535, &v, "allowed: 1-65535"))
        return;
    if (b->ports)
        return; /* reported in v_endpoint */
    b->ep->ports = v_calloc(1, sizeof(uint16_t));
    b->ep->ports[0] = (uint16_t)v;
    b->ep->n_ports = 1;
}

static void f_ports(struct vctx *c, const struct ynode *n, void *obj)
{
    struct ep_build *b = obj;
    int64_t v;
    b->ports = n;
    if (!v_seq(c, n, "a list of ports 1-65535"))
        return;
    if (n->n == 0) {
        v_error(c, n, "empty list can never match (list ports 1-65535)");
        return;
    }
    uint16_t *ports = v_calloc(n->n, sizeof(uint16_t));
    size_t cnt = 0;
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = v_push(c, "[%zu]", i);
        if (v_int(c, n->items[i], 1, 65535, &v, "allowed: 1-65535")) {
            bool dup = false;
            for (size_t j = 0; j < cnt; j++)
                dup = dup || ports[j] == v;
            if (dup)
                v_warn(c, n->items[i], "port %d is listed twice", (int)v);
            else
                ports[cnt++] = (uint16_t)v;
        }
        v_pop(c, mark);
    }
    free(b->ep->ports);
    b->ep->ports = ports;
    b->ep->n_ports = cnt;
}

/* ---- protocol, tls, enforcement, access ---- */

static void f_protocol(struct vctx *c, const struct ynode *n, void *obj)
{
    static const char *const vals[] = {"rest", "websocket", "graphql", "json-rpc", "mcp",
                                       "tcp", "sql", NULL};
    static const enum policy_proto map[] = {POLICY_PROTO_REST,    POLICY_PROTO_WEBSOCKET,
                                            POLICY_PROTO_GRAPHQL, POLICY_PROTO_JSONRPC,
                                            POLICY_PROTO_MCP,     POLICY_PROTO_TCP,
                                            POLICY_PROTO_SQL};
    struct ep_build *b = obj;
    b->protocol = n;
    int i = v_enum_nocase(c, n, vals);
    if (i >= 0)
        b->ep->proto = map[i];
}

static void f_tls(struct vctx *c, const struct ynode *n, void *obj)
{
    static const char *const vals[] = {"skip", "terminate", "passthrough", NULL};
    struct ep_build *b = obj;
    b->tls = n;
    int i = v_enum(c, n, vals);
    if (i == 0)
        b->ep->tls = POLICY_TLS_SKIP;
    else if (i > 0)
        v_warn(c, n, "'%s' is deprecated and treated as automatic: TLS is terminated when the "
                     "endpoint needs inspection (allowed: skip, or omit)", vals[i]);
}

static void f_enforcement(struct vctx *c, const struct ynode *n, void *obj)
{
    static const char *const vals[] = {"enforce", "audit", NULL};
    struct ep_build *b = obj;
    b->enforcement = n;
    int i = v_enum(c, n, vals);
    if (i >= 0)
        b->ep->enforcement = i == 0 ? POLICY_ENFORCE : POLICY_AUDIT;
}

static void f_access(struct vctx *c, const struct ynode *n, void *obj)
{
    static const char *const vals[] = {"read-only", "read-write", "full", NULL};
    static const enum policy_access map[] = {POLICY_ACCESS_READ_ONLY, POLICY_ACCESS_READ_WRITE,
                                             POLICY_ACCESS_FULL};
    struct ep_build *b = obj;
    b->access = n;
    int i = v_enum(c, n, vals);
    if (i >= 0)
        b->ep->access = map[i];
}

/* ---- allowed_ips ---- */

/* Parses "a.b.c.d[/n]" or "v6[/n]" into out; host bits are cleared and
 * reported through *host_bits. Returns NULL or what is wrong. */
static const char *parse_cidr(const char *s, struct policy_cidr *out, bool *host_bits)
{
    char ip[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t l = slash ? (size_t)(slash - s) : strlen(s);
    uint32_t prefix;

    memset(out, 0, sizeof(*out));
    if (l == 0 || l >= sizeof(ip))
        return "is not an IP address or CIDR";
    memcpy(ip, s, l);
    ip[l] = '\0';
    if (inet_pton(AF_INET, ip, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, ip, out->addr) == 1)
        out->family = AF_INET6;
    else
        return "is not an IP address or CIDR";
    unsigned max = out->family == AF_INET ? 32 : 128;
    if (!slash)
        prefix = max;
    else if (parse_u32_str(slash + 1, 0, max, &prefix) < 0)
        return out->family == AF_INET ? "has a prefix length outside 0-32"
                                      : "has a prefix length outside 0-128";
    out->prefix = (uint8_t)prefix;
    *host_bits = false;
    for (unsigned bit = prefix; bit < max; bit++) {
        uint8_t m = (uint8_t)(0x80u >> (bit % 8));
        if (out->addr[bit / 8] & m)
            *host_bits = true;
        out->addr[bit / 8] &= (uint8_t)~m;
    }
    return NULL;
}

static void cidr_item(struct vctx *c, const struct ynode *n, struct policy_endpoint *ep)
{
    char text[INET6_ADDRSTRLEN];
    const char *s, *why, *range;
    bool host_bits;
    struct policy_cidr cidr;

    if (!v_str(c, n, &s, "an IP address or CIDR such as 10.0.5.0/24"))
        return;
    if ((why = parse_cidr(s, &cidr, &host_bits))) {
        v_error(c, n, "'%.64s' %s (allowed: an IP address or CIDR such as 10.0.5.0/24 or "
                      "fd00::/8)", s, why);
        return;
    }
    inet_ntop(cidr.family, cidr.addr, text, sizeof(text));
    switch (addr_cidr_class(cidr.family, cidr.addr, cidr.prefix, &range)) {
    case ADDR_CIDR_BLOCKED:
        v_error(c, n, "'%s' lies entirely in %s space, which is always blocked, so it can never "
                      "be reached (allowed: routable private or public ranges)", s, range);
        return;
    case ADDR_CIDR_PARTIAL:
        /* OpenShell refuses such an entry too (every connection through the
         * endpoint is denied); a load error says so where it is written */
        v_error(c, n, "'%s' overlaps always-blocked space (%s and maybe others) (allowed: "
                      "ranges clear of loopback, link-local, unspecified, multicast and "
                      "reserved space; list the private ranges you mean, e.g. 10.0.0.0/8)",
                s, range);
        return;
    case ADDR_CIDR_CLEAR:
        break;
    }
    if (host_bits)
        v_warn(c, n, "'%s' has host bits set; it is treated as %s/%u", s, text, cidr.prefix);
    if ((cidr.family == AF_INET && cidr.prefix < 8) || (cidr.family == AF_INET6 && cidr.prefix < 16))
        v_warn(c, n, "'%s' is very broad: it lets this endpoint reach private addresses in "
                     "all of it", s);
    ep->ips[ep->n_ips++] = cidr;
}

static void f_allowed_ips(struct vctx *c, const struct ynode *n, void *obj)
{
    struct ep_build *b = obj;
    b->ips = n;
    if (!v_seq(c, n, "a list of IP addresses or CIDRs"))
        return;
    if (n->n == 0) {
        v_error(c, n, "empty list (list CIDRs such as 10.0.5.0/24, or omit allowed_ips)");
        return;
    }
    b->ep->ips = v_calloc(n->n + 1, sizeof(*b->ep->ips)); /* + implicit host IP */
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = v_push(c, "[%zu]", i);
        cidr_item(c, n->items[i], b->ep);
        v_pop(c, mark);
    }
}

/* ---- timeouts ---- */

/* Integer seconds, or a number with a unit: ms, s, m, h. 0 = none. */
static bool duration_ms(struct vctx *c, const struct ynode *n, uint64_t *out)
{
    static const char allowed[] = "allowed: integer seconds, or a number with ms, s, m or h such "
                                  "as 30s, 5m, 1h; 0 = none; at most 7 days";
    uint32_t v;
    uint64_t unit = 1000;
    if (n->kind == YN_SCALAR && n->type == YS_INT) {
        if (n->ival < 0 || (uint64_t)n->ival > POLICY_MAX_TIMEOUT_MS / 1000) {
            v_error(c, n, "%s is out of range (%s)", n->str, allowed);
            return false;
        }
        *out = (uint64_t)n->ival * 1000;
        return true;
    }
    const char *s;
    if (!v_str(c, n, &s, allowed))
        return false;
    size_t digits = strspn(s, "0123456789");
    const char *u = s + digits;
    if (strcmp(u, "ms") == 0)
        unit = 1;
    else if (strcmp(u, "s") == 0)
        unit = 1000;
    else if (strcmp(u, "m") == 0)
        unit = 60 * 1000;
    else if (strcmp(u, "h") == 0)
        unit = 3600 * 1000;
    else
        digits = 0;
    if (digits == 0 || parse_u32(s, digits, 0, UINT32_MAX, &v) < 0 ||
        (uint64_t)v * unit > POLICY_MAX_TIMEOUT_MS) {
        v_error(c, n, "'%.32s' is not a valid duration (%s)", s, allowed);
        return false;
    }
    *out = (uint64_t)v * unit;
    return true;
}

static void f_idle(struct vctx *c, const struct ynode *n, void *obj)
{
    struct ep_build *b = obj;
    (void)duration_ms(c, n, &b->ep->idle_timeout_ms);
}

static void f_upgrade_idle(struct vctx *c, const struct ynode *n, void *obj)
{
    struct ep_build *b = obj;
    (void)duration_ms(c, n, &b->ep->upgrade_idle_timeout_ms);
}

/* ---- L7 fields ---- */

static void l7_only(struct ep_build *b, const struct ynode *n, const char *name)
{
    if (!b->l7_only) {
        b->l7_only = n;
        b->l7_only_name = name;
    }
}

static void f_rules(struct vctx *c, const struct ynode *n, void *obj)
{
    (void)c;
    ((struct ep_build *)obj)->rules = n; /* compiled in load_rules.c once protocol is known */
}

static void f_deny_rules(struct vctx *c, const struct ynode *n, void *obj)
{
    (void)c;
    ((struct ep_build *)obj)->deny_rules = n;
}

static void f_ep_path(struct vctx *c, const struct ynode *n, void *obj)
{
    struct ep_build *b = obj;
    char norm[POLICY_MAX_PATTERN_LEN * 3 + 1];
    const char *s, *why;
    b->path = n;
    l7_only(b, n, "path");
    if (!v_str(c, n, &s, "a path glob starting with '/', or '**'"))
        return;
    if (strcmp(s, "**") == 0 || s[0] == '\0')
        return; /* every path */
    if (strlen(s) > POLICY_MAX_PATTERN_LEN) {
        v_error(c, n, "is longer than %d characters", POLICY_MAX_PATTERN_LEN);
        return;
    }
    if (policy_path_normalize(s, strlen(s), POLICY_NORM_STRICT | POLICY_NORM_ENCODED_SLASH,
                              norm, sizeof(norm), &why) < 0) {
        v_error(c, n, "'%.200s' %s (allowed: a path glob starting with '/', e.g. '/graphql' "
                      "or '/repos/**', or '**')", s, why);
        return;
    }
    if (v_path_metachars_ok(c, n, s))
        b->ep->path_sel = v_strdup(norm);
}

static void f_enc_slash(struct vctx *c, const struct ynode *n, void *obj)
{
    struct ep_build *b = obj;
    b->enc_slash = n;
    if (v_bool(c, n, &b->ep->allow_encoded_slash) && b->ep->allow_encoded_slash)
        l7_only(b, n, "allow_encoded_slash");
}

static void body_limit(struct vctx *c, const struct ynode *n, struct policy_endpoint *ep)
{
    int64_t v;
    if (v_int(c, n, 1, POLICY_MAX_BODY, &v, "allowed: 1-" POLICY_MAX_BODY_TEXT " bytes"))
        ep->max_body = (size_t)v;
}

static void f_persisted(struct vctx *c, const struct ynode *n, void *obj)
{
    static const char *const vals[] = {"deny", "allow_registered", NULL};
    struct ep_build *b = obj;
    b->persisted = n;
    l7_only(b, n, "persisted_queries");
    int i = v_enum(c, n, vals);
    b->ep->persisted_allow = i == 1;
}

static void f_pq_registry(struct vctx *c, const struct ynode *n, void *obj)
{
    struct ep_build *b = obj;
    b->pq_registry = n;
    l7_only(b, n, "graphql_persisted_queries"); /* compiled in v_endpoint */
}

static void f_gql_max(struct vctx *c, const struct ynode *n, void *obj)
{
    struct ep_build *b = obj;
    b->gql_max = n;
    l7_only(b, n, "graphql_max_body_bytes");
    body_limit(c, n, b->ep);
}

static void f_mcp_max(struct vctx *c, const struct ynode *n, void *obj)
{
    body_limit(c, n, obj);
}

static void f_mcp_strict(struct vctx *c, const struct ynode *n, void *obj)
{
    struct policy_endpoint *ep = obj;
    (void)v_bool(c, n, &ep->mcp_strict_tools);
}

static void f_mcp_known(struct vctx *c, const struct ynode *n, void *obj)
{
    struct policy_endpoint *ep = obj;
    (void)v_bool(c, n, &ep->mcp_allow_known);
}

static void f_mcp(struct vctx *c, const struct ynode *n, void *obj)
{
    static const struct vfield fields[] = {{"max_body_bytes", f_mcp_max},
                                           {"strict_tool_names", f_mcp_strict},
                                           {"allow_all_known_mcp_methods", f_mcp_known}};
    struct ep_build *b = obj;
    b->mcp = n;
    l7_only(b, n, "mcp");
    (void)v_map(c, n, fields, NFIELDS(fields), b->ep,
                "a map {max_body_bytes, strict_tool_names, allow_all_known_mcp_methods}");
}

static void f_json_rpc(struct vctx *c, const struct ynode *n, void *obj)
{
    static const struct vfield fields[] = {{"max_body_bytes", f_mcp_max}};
    struct ep_build *b = obj;
    b->json_rpc = n;
    l7_only(b, n, "json_rpc");
    (void)v_map(c, n, fields, NFIELDS(fields), b->ep, "a map {max_body_bytes}");
}

/* Credential fields: loaded, checked, not applied (load_unapplied.c). */
#define CRED_FIELD(fn, name)                                                                  \
    static void fn(struct vctx *c, const struct ynode *n, void *obj)                          \
    {                                                                                         \
        (void)obj;                                                                            \
        v_credential_field(c, name, n);                                                       \
    }
CRED_FIELD(f_cred_binding, "credential_binding")
CRED_FIELD(f_cred_signing, "credential_signing")
CRED_FIELD(f_sign_service, "signing_service")
CRED_FIELD(f_sign_region, "signing_region")
CRED_FIELD(f_ws_cred, "websocket_credential_rewrite")
CRED_FIELD(f_body_cred, "request_body_credential_rewrite")
CRED_FIELD(f_uninspected, "allow_uninspected_credentials")

/* graphql_persisted_queries: {ID: {operation_type, operation_name, fields}}. */
static void v_persisted_registry(struct vctx *c, struct ep_build *b)
{
    const struct ynode *n = b->pq_registry;
    struct policy_endpoint *ep = b->ep;
    size_t mark = v_push(c, ".graphql_persisted_queries");
    if (n->kind != YN_MAP) {
        v_error(c, n, "expected a map from hash or saved-query id to {operation_type, ...}, "
                      "got %s", ytree_type_name(n));
        v_pop(c, mark);
        return;
    }
    ep->persisted = v_calloc(n->n / 2 + 1, sizeof(*ep->persisted));
    for (size_t i = 0; i < n->n / 2; i++) {
        if (!v_map_key_ok(c, n, i))
            continue;
        size_t m2 = v_push(c, ".%s", n->items[2 * i]->str);
        struct policy_rule *r = &ep->persisted[ep->n_persisted++];
        r->pq_id = v_strdup(n->items[2 * i]->str);
        v_graphql_operation(c, ep, n->items[2 * i + 1], r);
        v_pop(c, m2);
    }
    v_pop(c, mark);
}

/* ---- the endpoint ---- */

static bool inspected(enum policy_proto p)
{
    switch (p) {
    case POLICY_PROTO_REST:
    case POLICY_PROTO_WEBSOCKET:
    case POLICY_PROTO_GRAPHQL:
    case POLICY_PROTO_JSONRPC:
    case POLICY_PROTO_MCP:
        return true;
    case POLICY_PROTO_NONE:
    case POLICY_PROTO_TCP:
    case POLICY_PROTO_SQL:
        return false;
    }
    return false;
}

static const char *access_name(enum policy_access a)
{
    return a == POLICY_ACCESS_READ_ONLY ? "read-only" : a == POLICY_ACCESS_READ_WRITE ? "read-write"
                                                                                        : "full";
}

/* rules/access without protocol: OpenShell relays such an endpoint without
 * applying them; we enforce what the author wrote (doc/policy.md). */
static void implied_rest(struct vctx *c, const struct ynode *n, struct ep_build *b)
{
    struct policy_endpoint *ep = b->ep;
    const struct ynode *at = b->access ? b->access : b->rules ? b->rules : b->deny_rules;
    ep->proto = POLICY_PROTO_REST;
    if (b->access)
        v_warn(c, at, "access without protocol is read as protocol: rest: HTTP requests (and "
                      "HTTPS, TLS-terminated) on this endpoint are inspected and access: %s is "
                      "enforced%s (OpenShell relays such an endpoint without applying access; "
                      "add protocol: rest to make this explicit)", access_name(ep->access),
               ep->access == POLICY_ACCESS_FULL ? " (every method and path, WebSocket upgrades "
                                                  "included)" : "");
    else
        v_warn(c, at, "rules without protocol are read as protocol: rest: HTTP requests (and "
                      "HTTPS, TLS-terminated) on this endpoint are inspected and the rules are "
                      "enforced (OpenShell relays such an endpoint without applying them; add "
                      "protocol: rest to make this explicit)");
    (void)n;
}

static void l4_checks(struct vctx *c, struct ep_build *b)
{
    struct policy_endpoint *ep = b->ep;
    if (b->l7_only)
        v_error(c, b->l7_only, "%s needs an inspected protocol (rest, websocket, graphql, "
                               "json-rpc or mcp)", b->l7_only_name);
    if (ep->proto == POLICY_PROTO_TCP) {
        if (ep->host_kind == POLICY_HOST_NONE || ep->host_kind == POLICY_HOST_IP)
            v_error(c, b->host ? b->host : b->protocol, "protocol: tcp needs a DNS host name "
                    "(not an IP address, not hostless; omit protocol for those)");
        else if (b->host && b->host->kind == YN_SCALAR && b->host->len > 0 &&
                 b->host->str[b->host->len - 1] == '.')
            v_error(c, b->host, "protocol: tcp: omit the trailing DNS root dot in '%.64s' (as "
                    "OpenShell requires for policy DNS names)", b->host->str);
        if (b->enforcement)
            v_error(c, b->enforcement, "enforcement is not valid with protocol: tcp (the "
                                       "connection is not inspected)");
        return;
    }
    if (ep->proto == POLICY_PROTO_SQL) {
        if (!b->rules && !b->access)
            v_error(c, b->deny_rules ? b->deny_rules : b->protocol,
                    "protocol: sql needs rules or access%s, as OpenShell requires (cordon "
                    "applies neither: it relays SQL as a TCP passthrough)",
                    b->deny_rules ? " (deny_rules alone deny from nothing)" : "");
        if (b->enforcement && ep->enforcement == POLICY_ENFORCE)
            v_error(c, b->enforcement, "SQL enforcement needs SQL parsing, which neither "
                                       "cordon nor OpenShell has (use enforcement: audit)");
        else
            v_warn(c, b->protocol, "protocol: sql is relayed as a TCP passthrough: cordon does "
                                   "not parse or log SQL statements%s (OpenShell only audits "
                                   "SQL too)", b->rules || b->access ? "; rules and access are "
                                   "not applied" : "");
        ep->enforcement = POLICY_ENFORCE; /* the L4 decision is enforced */
        return;
    }
    if (b->enforcement)
        v_warn(c, b->enforcement, "enforcement has no effect without an inspected protocol");
}

static void l7_checks(struct vctx *c, const struct ynode *n, struct ep_build *b)
{
    struct policy_endpoint *ep = b->ep;
    size_t n_allow = 0, n_deny = 0;
    for (size_t i = 0; i < ep->n_rules; i++)
        *(ep->rules[i].deny ? &n_deny : &n_allow) += 1;
    if (b->access && b->rules)
        v_error(c, b->rules, "rules and access are mutually exclusive (use one)");
    switch (ep->proto) {
    case POLICY_PROTO_JSONRPC:
    case POLICY_PROTO_MCP:
        if (b->access)
            v_error(c, b->access, "access presets are not valid for protocol: %s (HTTP method "
                                  "presets cannot authorize JSON-RPC; write rules with method)",
                    ep->proto == POLICY_PROTO_MCP ? "mcp" : "json-rpc");
        if (!b->rules && !(ep->proto == POLICY_PROTO_MCP && ep->mcp_allow_known))
            v_error(c, b->protocol, "protocol: %s needs rules (e.g. {allow: {method: "
                                    "initialize}})%s",
                    ep->proto == POLICY_PROTO_MCP ? "mcp" : "json-rpc",
                    ep->proto == POLICY_PROTO_MCP ? ", or mcp.allow_all_known_mcp_methods: true"
                                                  : "");
        if (ep->max_body == 0)
            ep->max_body = POLICY_DEFAULT_MAX_BODY;
        break;
    case POLICY_PROTO_GRAPHQL:
        if (ep->max_body == 0)
            ep->max_body = POLICY_DEFAULT_MAX_BODY;
        /* fall through */
    case POLICY_PROTO_REST:
    case POLICY_PROTO_WEBSOCKET:
        if (!b->access && !b->rules)
            v_error(c, b->protocol ? b->protocol : n, "protocol: %s needs rules or access "
                    "(e.g. access: read-only)", b->protocol ? b->protocol->str : "rest");
        break;
    case POLICY_PROTO_NONE:
    case POLICY_PROTO_TCP:
    case POLICY_PROTO_SQL:
        break;
    }
    if (b->deny_rules && !b->access && !b->rules &&
        !(ep->proto == POLICY_PROTO_MCP && ep->mcp_allow_known))
        v_error(c, b->deny_rules, "deny_rules need rules or access to deny from (e.g. access: "
                                  "read-write)");
    if (b->rules && n_allow == 0 && n_deny > 0)
        v_error(c, b->rules, "only deny rules: every request would be denied (add allow rules)");
    if (b->mcp && ep->proto != POLICY_PROTO_MCP)
        v_error(c, b->mcp, "mcp options are only valid for protocol: mcp");
    if (b->json_rpc && ep->proto != POLICY_PROTO_JSONRPC)
        v_error(c, b->json_rpc, "json_rpc options are only valid for protocol: json-rpc");
    const struct ynode *gq = b->persisted ? b->persisted : b->pq_registry ? b->pq_registry
                                                                          : b->gql_max;
    if (gq && ep->proto != POLICY_PROTO_GRAPHQL)
        v_error(c, gq, "GraphQL options are only valid for protocol: graphql");
    if (b->pq_registry && ep->proto == POLICY_PROTO_GRAPHQL)
        v_persisted_registry(c, b);
    if (b->pq_registry && !ep->persisted_allow)
        v_warn(c, b->pq_registry, "graphql_persisted_queries is unused unless persisted_queries: "
                                  "allow_registered");
    if (ep->persisted_allow && ep->n_persisted == 0)
        v_error(c, b->persisted, "allow_registered needs graphql_persisted_queries");
    if (ep->tls == POLICY_TLS_SKIP && policy_endpoint_has_port(ep, 443))
        v_warn(c, b->tls, "tls: skip on port 443 with an inspected protocol: the tunnel is "
                          "relayed raw, so the rules are NOT applied to HTTPS requests");
}

/* Checks between fields, after every field was read. */
static void endpoint_cross_checks(struct vctx *c, const struct ynode *n, struct ep_build *b)
{
    struct policy_endpoint *ep = b->ep;
    if (b->port && b->ports)
        v_error(c, b->ports, "port and ports are mutually exclusive (use one)");
    else if (!b->port && !b->ports)
        v_error(c, n, "port or ports is required, or the endpoint can never match (1-65535)");
    bool hostless = !b->host || (b->host->kind == YN_SCALAR &&
                                 (b->host->type == YS_NULL || b->host->len == 0));
    if (hostless && !b->ips)
        v_error(c, n, "host or allowed_ips is required (a hostless endpoint matches any host "
                      "whose addresses are in allowed_ips)");
    if (ep->proto == POLICY_PROTO_NONE && (b->access || b->rules || b->deny_rules))
        implied_rest(c, n, b);
    ep->rest = inspected(ep->proto);
    if (!ep->rest) {
        const struct ynode *l7 = b->access ? b->access : b->rules ? b->rules : b->deny_rules;
        if (l7 && ep->proto == POLICY_PROTO_TCP)
            v_error(c, l7, "%s is not valid with protocol: tcp (the connection is not "
                           "inspected)", l7 == b->access ? "access" : l7 == b->rules ? "rules"
                                                                                    : "deny_rules");
        l4_checks(c, b);
        return;
    }
    if (b->rules || b->deny_rules)
        v_endpoint_rules(c, ep, b->rules, b->deny_rules);
    l7_checks(c, n, b);
}
void v_endpoint(struct vctx *c, const struct ynode *n, struct policy_endpoint *ep)
{
    static const struct vfield fields[] = {
        {"host", f_host},
        {"port", f_port},
        {"ports", f_ports},
        {"protocol", f_protocol},
        {"tls", f_tls},
        {"enforcement", f_enforcement},
        {"access", f_access},
        {"rules", f_rules},
        {"deny_rules", f_deny_rules},
        {"allowed_ips", f_allowed_ips},
        {"idle_timeout", f_idle},
        {"upgrade_idle_timeout", f_upgrade_idle},
        {"path", f_ep_path},
        {"allow_encoded_slash", f_enc_slash},
        {"persisted_queries", f_persisted},
        {"graphql_persisted_queries", f_pq_registry},
        {"graphql_max_body_bytes", f_gql_max},
        {"mcp", f_mcp},
        {"json_rpc", f_json_rpc},
        {"credential_binding", f_cred_binding},
        {"credential_signing", f_cred_signing},
        {"signing_service", f_sign_service},
        {"signing_region", f_sign_region},
        {"websocket_credential_rewrite", f_ws_cred},
        {"request_body_credential_rewrite", f_body_cred},
        {"allow_uninspected_credentials", f_uninspected},
    };
    struct ep_build b = {.ep = ep};
    ep->host = NULL;
    ep->line = n->line;
    ep->col = n->col;
    ep->mcp_strict_tools = true;
    ep->enforcement = POLICY_ENFORCE;
    ep->upgrade_idle_timeout_ms = POLICY_DEFAULT_UPGRADE_IDLE_MS;
    if (!v_map(c, n, fields, NFIELDS(fields), &b,
               "an endpoint is a map {host, port, protocol, rules, ...}"))
        return;
    endpoint_cross_checks(c, n, &b);
    v_credential_pairs(c, n);
    if (!ep->host && ep->host_kind == POLICY_HOST_NONE)
        ep->host = v_strdup("");
    ep->n_allowed_ips = ep->n_ips;
    if (ep->host_kind == POLICY_HOST_IP) {
        if (!ep->ips)
            ep->ips = v_calloc(1, sizeof(*ep->ips));
        struct policy_cidr *ci = &ep->ips[ep->n_ips++];
        ci->family = ep->ip_family;
        memcpy(ci->addr, ep->ip, 16);
        ci->prefix = ep->ip_family == AF_INET ? 32 : 128;
    }
}
