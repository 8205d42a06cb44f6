/* policy/load_endpoint: validation and compilation of one endpoint map
 * (host, ports, protocol, tls, enforcement, access, rules, allowed_ips,
 * timeouts). Every rule is in doc/policy.md. */
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
        *ips;
    size_t n_allow, n_deny;
};

void v_warn_metachars(struct vctx *c, const struct ynode *n, const char *s)
{
    const char *m = strpbrk(s, "?[{");
    if (m)
        v_warn(c, n, "'%c' is a literal character here (OpenShell treats it as glob syntax)", *m);
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
    const char *why;

    if (strcmp(h, "*") == 0 || strcmp(h, "**") == 0) {
        v_error(c, n, "'%s' would match every host (list hosts, or use a wildcard such as "
                      "'*.example.com')", h);
        return;
    }
    if (skip == 0 || strchr(h + skip, '*')) {
        v_error(c, n, "'%.200s': a wildcard is allowed only as a leading '*.' or '**.' label "
                      "(e.g. '*.example.com')", h);
        return;
    }
    if ((why = hostname_problem(h + skip, &labels))) {
        v_error(c, n, "'%.200s' %s (allowed: a DNS name, an IP address, or '*.' + a DNS name)",
                h, why);
        return;
    }
    if (labels < 2) {
        v_error(c, n, "'%s' would match a whole top-level domain (put at least two labels after "
                      "the wildcard, e.g. '*.example.com')", h);
        return;
    }
    if (looks_public_suffix(h + skip, labels))
        v_warn(c, n, "'%s' matches every site under the public suffix '%s'", h, h + skip);
    ep->host_kind = POLICY_HOST_WILDCARD;
    ep->host = v_strdup(h);
    ep->suffix = ep->host + skip - 1;
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
    static const char *const vals[] = {"rest", NULL};
    struct ep_build *b = obj;
    b->protocol = n;
    if (n->kind == YN_SCALAR && strcmp(n->str, "sql") == 0) {
        v_error(c, n, "'sql' is not supported (allowed: rest; omit protocol for TCP "
                      "passthrough)");
        return;
    }
    b->ep->rest = v_enum(c, n, vals) == 0;
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

/* ---- rules ---- */

struct rule_build {
    struct policy_rule *r;
    const struct ynode *method, *path, *query;
    int kinds; /* allow / deny keys seen */
};

static void f_method(struct vctx *c, const struct ynode *n, void *obj)
{
    static const char *const known[] = {"GET",     "HEAD",    "POST",  "PUT", "DELETE",
                                        "PATCH",   "OPTIONS", "TRACE", "CONNECT"};
    struct rule_build *rb = obj;
    char m[33];
    const char *s;
    rb->method = n;
    if (!v_str(c, n, &s, "an HTTP method such as GET, or '*' for any"))
        return;
    size_t l = strlen(s);
    if (!policy_method_ok(s)) {
        v_error(c, n, "'%.40s' is not an HTTP method (allowed: a method such as GET, or '*')", s);
        return;
    }
    for (size_t i = 0; i <= l; i++)
        m[i] = (char)toupper((unsigned char)s[i]);
    rb->r->method = v_strdup(m);
    if (strcmp(m, "*") == 0)
        return;
    for (size_t i = 0; i < NFIELDS(known); i++)
        if (strcmp(m, known[i]) == 0)
            return;
    const char *sug = v_suggest(m, known, NFIELDS(known));
    v_warn(c, n, "unknown HTTP method '%s'%s%s%s (known: GET, HEAD, POST, PUT, DELETE, PATCH, "
                 "OPTIONS, TRACE, CONNECT, or '*')", m, sug ? "; did you mean '" : "",
           sug ? sug : "", sug ? "'?" : "");
}

static void f_path(struct vctx *c, const struct ynode *n, void *obj)
{
    struct rule_build *rb = obj;
    char norm[POLICY_MAX_PATTERN_LEN + 1];
    const char *s, *why;
    rb->path = n;
    if (!v_str(c, n, &s, "a path glob starting with '/', or '**' for any path"))
        return;
    if (strcmp(s, "**") == 0) {
        rb->r->path = v_strdup(s);
        return;
    }
    if (strlen(s) > POLICY_MAX_PATTERN_LEN) {
        v_error(c, n, "is longer than %d characters", POLICY_MAX_PATTERN_LEN);
        return;
    }
    if (policy_path_normalize(s, strlen(s), true, norm, sizeof(norm), &why) < 0) {
        v_error(c, n, "'%.200s' %s (allowed: a path glob starting with '/', e.g. '/repos/**', "
                      "or '**')", s, why);
        return;
    }
    v_warn_metachars(c, n, s);
    rb->r->path = v_strdup(norm);
}

static void qmatch_globs(struct vctx *c, const struct ynode *n, struct policy_qmatch *q)
{
    const char *s;
    if (n->kind == YN_SCALAR) {
        if (!v_str(c, n, &s, "a glob string"))
            return;
        v_warn_metachars(c, n, s);
        q->globs[q->n_globs++] = v_strdup(s);
        return;
    }
    if (!v_seq(c, n, "a non-empty list of glob strings"))
        return;
    if (n->n == 0) {
        v_error(c, n, "empty list can never match (list glob strings)");
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        size_t mark = v_push(c, "[%zu]", i);
        if (v_str(c, n->items[i], &s, "a glob string")) {
            v_warn_metachars(c, n->items[i], s);
            q->globs[q->n_globs++] = v_strdup(s);
        }
        v_pop(c, mark);
    }
}

/* One query matcher: "glob", {any: [globs]} or {glob: "glob"}. */
static void v_qmatch(struct vctx *c, const struct ynode *n, struct policy_qmatch *q)
{
    const struct ynode *any = NULL, *glob = NULL;
    if (n->kind == YN_SCALAR) {
        q->globs = v_calloc(1, sizeof(char *));
        qmatch_globs(c, n, q);
        return;
    }
    if (n->kind != YN_MAP) {
        v_error(c, n, "expected a glob string or {any: [globs]}, got %s", ytree_type_name(n));
        return;
    }
    for (size_t i = 0; i < n->n / 2; i++) {
        const struct ynode *k = n->items[2 * i];
        if (!v_map_key_ok(c, n, i))
            continue;
        if (strcmp(k->str, "any") == 0)
            any = n->items[2 * i + 1];
        else if (strcmp(k->str, "glob") == 0)
            glob = n->items[2 * i + 1];
        else
            v_error(c, k, "unknown matcher '%.64s' (allowed: any, glob)", k->str);
    }
    if (any && glob) {
        v_error(c, n, "a matcher has either 'any' or 'glob', not both");
    } else if (!any && !glob) {
        v_error(c, n, "a matcher needs 'any: [globs]' or 'glob: \"...\"'");
    } else if (glob && glob->kind != YN_SCALAR) {
        v_error(c, glob, "glob must be a string, got %s", ytree_type_name(glob));
    } else {
        const struct ynode *v = any ? any : glob;
        size_t mark = v_push(c, ".%s", any ? "any" : "glob");
        q->globs = v_calloc(v->kind == YN_SEQ ? v->n : 1, sizeof(char *));
        if (any && any->kind != YN_SEQ)
            v_error(c, any, "expected a list of glob strings, got %s", ytree_type_name(any));
        else
            qmatch_globs(c, v, q);
        v_pop(c, mark);
    }
}

static void f_query(struct vctx *c, const struct ynode *n, void *obj)
{
    struct rule_build *rb = obj;
    rb->query = n;
    if (n->kind != YN_MAP) {
        v_error(c, n, "expected a map from parameter name to matcher, got %s",
                ytree_type_name(n));
        return;
    }
    rb->r->query = v_calloc(n->n / 2, sizeof(*rb->r->query));
    for (size_t i = 0; i < n->n / 2; i++) {
        const struct ynode *k = n->items[2 * i];
        if (!v_map_key_ok(c, n, i))
            continue;
        struct policy_qmatch *q = &rb->r->query[rb->r->n_query++];
        q->key = v_strdup(k->str);
        size_t mark = v_push(c, ".%s", k->str);
        v_qmatch(c, n->items[2 * i + 1], q);
        v_pop(c, mark);
    }
}

static void rule_body(struct vctx *c, const struct ynode *n, struct rule_build *rb, bool deny)
{
    static const struct vfield fields[] = {
        {"method", f_method}, {"path", f_path}, {"query", f_query}};
    if (rb->kinds++ > 0)
        return; /* both allow and deny: reported by f_rules */
    rb->r->deny = deny;
    if (!v_map(c, n, fields, NFIELDS(fields), rb, "a rule is a map {method, path, query}"))
        return;
    if (!rb->method)
        v_error(c, n, "method is required (e.g. GET, or '*' for any)");
    if (!rb->path)
        v_error(c, n, "path is required (e.g. '/repos/**', or '**' for any)");
}

static void f_allow(struct vctx *c, const struct ynode *n, void *obj) { rule_body(c, n, obj, false); }
static void f_deny(struct vctx *c, const struct ynode *n, void *obj) { rule_body(c, n, obj, true); }

static void f_rules(struct vctx *c, const struct ynode *n, void *obj)
{
    static const struct vfield fields[] = {{"allow", f_allow}, {"deny", f_deny}};
    struct ep_build *b = obj;
    b->rules = n;
    if (!v_seq(c, n, "a list of {allow: {...}} or {deny: {...}}"))
        return;
    if (n->n == 0) {
        v_error(c, n, "empty list can never allow anything (add allow rules, or use access)");
        return;
    }
    b->ep->rules = v_calloc(n->n, sizeof(*b->ep->rules));
    b->ep->n_rules = n->n;
    for (size_t i = 0; i < n->n; i++) {
        struct rule_build rb = {.r = &b->ep->rules[i]};
        size_t mark = v_push(c, "[%zu]", i);
        if (v_map(c, n->items[i], fields, NFIELDS(fields), &rb,
                  "a rule is {allow: {method, path}} or {deny: {method, path}}")) {
            if (rb.kinds == 0)
                v_error(c, n->items[i], "a rule needs 'allow' or 'deny'");
            else if (rb.kinds > 1)
                v_error(c, n->items[i], "a rule has either 'allow' or 'deny', not both");
        }
        v_pop(c, mark);
        if (rb.kinds == 1)
            *(rb.r->deny ? &b->n_deny : &b->n_allow) += 1;
    }
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
        v_warn(c, n, "'%s' overlaps always-blocked space (%s and maybe others); those "
                     "addresses stay blocked", s, range);
        break;
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

/* ---- the endpoint ---- */

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
    if (b->access && b->rules)
        v_error(c, b->rules, "rules and access are mutually exclusive (use one)");
    if (ep->rest && !b->access && !b->rules)
        v_error(c, b->protocol, "protocol: rest needs rules or access (e.g. access: read-only)");
    if (!ep->rest && (b->access || b->rules))
        v_error(c, b->access ? b->access : b->rules,
                "%s has no effect without protocol: rest (add protocol: rest)",
                b->access ? "access" : "rules");
    if (b->rules && b->n_allow == 0 && b->n_deny > 0)
        v_error(c, b->rules, "only deny rules: every request would be denied (add allow rules)");
    if (b->enforcement && !ep->rest)
        v_warn(c, b->enforcement, "enforcement has no effect without protocol: rest");
    if (ep->rest && ep->tls == POLICY_TLS_SKIP && policy_endpoint_has_port(ep, 443))
        v_warn(c, b->tls, "tls: skip on port 443 with protocol: rest: the tunnel is relayed raw, "
                          "so the rules are NOT applied to HTTPS requests");
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
        {"allowed_ips", f_allowed_ips},
        {"idle_timeout", f_idle},
        {"upgrade_idle_timeout", f_upgrade_idle},
    };
    struct ep_build b = {.ep = ep};
    ep->host = NULL;
    ep->enforcement = POLICY_ENFORCE;
    ep->upgrade_idle_timeout_ms = POLICY_DEFAULT_UPGRADE_IDLE_MS;
    if (!v_map(c, n, fields, NFIELDS(fields), &b,
               "an endpoint is a map {host, port, protocol, rules, ...}"))
        return;
    endpoint_cross_checks(c, n, &b);
    if (!ep->host && ep->host_kind == POLICY_HOST_NONE)
        ep->host = v_strdup("");
    if (ep->host_kind == POLICY_HOST_IP) {
        if (!ep->ips)
            ep->ips = v_calloc(1, sizeof(*ep->ips));
        struct policy_cidr *ci = &ep->ips[ep->n_ips++];
        ci->family = ep->ip_family;
        memcpy(ci->addr, ep->ip, 16);
        ci->prefix = ep->ip_family == AF_INET ? 32 : 128;
    }
}
