/* server/netpolicy: OpenSandbox's networkPolicy as a cordon policy (see netpolicy.h). */
#include "server/netpolicy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/banned.h"

#define NAME_MAX_LEN 253

enum np_action { NP_ALLOW, NP_DENY };

struct np_rule {
    enum np_action action;
    int wildcard;            /* "*.name": every name below name, any depth */
    char name[NAME_MAX_LEN + 1]; /* lower case, no trailing dot, without "*." */
};

/* ---- targets ---- */

/* Checks a DNS name (lower-cased in place): labels of letters, digits, '-'
 * and '_', 1..63 bytes, at most 253 in all. Returns NULL or what is wrong. */
static const char *name_problem(char *s, int *looks_ip)
{
    size_t n = strlen(s), label = 0;
    int all_digits = 1;
    *looks_ip = 0;
    if (n == 0)
        return "is empty";
    if (n > NAME_MAX_LEN)
        return "is longer than 253 characters";
    for (size_t i = 0; i <= n; i++) {
        char ch = s[i];
        if (ch == '.' || ch == '\0') {
            if (label == 0)
                return "has an empty label ('..', or a leading or trailing '.')";
            if (label > 63)
                return "has a label longer than 63 characters";
            if (ch == '\0' && all_digits) {
                *looks_ip = 1;
                return "is an IP address";
            }
            label = 0;
            all_digits = 1;
            continue;
        }
        if (ch >= 'A' && ch <= 'Z')
            s[i] = (char)(ch - 'A' + 'a');
        else if (ch == ':' || ch == '/') {
            *looks_ip = 1;
            return "is an IP address or CIDR";
        } else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                     ch == '_'))
            return "may only contain letters, digits, '-', '_' and '.' (and start with '*.')";
        if (!(ch >= '0' && ch <= '9'))
            all_digits = 0;
        label++;
    }
    return NULL;
}

static int parse_rule(const json_t *r, size_t i, struct np_rule *out, char *err, size_t cap)
{
    const char *k;
    json_t *v;
    if (!json_is_object(r)) {
        snprintf(err, cap, "networkPolicy.egress[%zu]: must be an object {action, target}", i);
        return -EINVAL;
    }
    json_object_foreach((json_t *)r, k, v) {
        if (strcmp(k, "action") != 0 && strcmp(k, "target") != 0) {
            snprintf(err, cap, "networkPolicy.egress[%zu].%.64s: unknown field (allowed: action, "
                     "target)", i, k);
            return -EINVAL;
        }
    }
    const json_t *a = json_object_get(r, "action"), *t = json_object_get(r, "target");
    if (!json_is_string(a) || (strcasecmp(json_string_value(a), "allow") != 0 &&
                               strcasecmp(json_string_value(a), "deny") != 0)) {
        snprintf(err, cap, "networkPolicy.egress[%zu].action: required, \"allow\" or \"deny\"", i);
        return -EINVAL;
    }
    out->action = strcasecmp(json_string_value(a), "allow") == 0 ? NP_ALLOW : NP_DENY;
    if (!json_is_string(t)) {
        snprintf(err, cap, "networkPolicy.egress[%zu].target: required, a host name such as "
                 "\"pypi.org\" or \"*.example.com\"", i);
        return -EINVAL;
    }
    const char *s = json_string_value(t);
    size_t n = strlen(s);
    out->wildcard = n >= 2 && s[0] == '*' && s[1] == '.';
    if (out->wildcard) {
        s += 2;
        n -= 2;
    }
    if (n > 0 && s[n - 1] == '.')
        n--; /* one trailing dot: the same name */
    if (n > NAME_MAX_LEN) {
        snprintf(err, cap, "networkPolicy.egress[%zu].target: is longer than 253 characters", i);
        return -EINVAL;
    }
    memcpy(out->name, s, n);
    out->name[n] = '\0';
    int looks_ip;
    const char *why = name_problem(out->name, &looks_ip);
    if (why) {
        snprintf(err, cap, "networkPolicy.egress[%zu].target: '%.80s' %s%s", i,
                 json_string_value(t), why,
                 looks_ip ? " (IP and CIDR targets are not supported, as in OpenSandbox's egress "
                            "API: give host names, or a cordon policy with allowed_ips through "
                            "extensions \"cordon.io/policy\")" : "");
        return -EINVAL;
    }
    if (out->wildcard && !strchr(out->name, '.')) {
        snprintf(err, cap, "networkPolicy.egress[%zu].target: '%.80s' would match every name "
                 "under a top-level domain; name the domain (\"*.example.com\")", i,
                 json_string_value(t));
        return -EINVAL;
    }
    return 0;
}

/* name is below (not equal to) parent: "a.b.example.com" under "example.com". */
static int below(const char *name, const char *parent)
{
    size_t n = strlen(name), p = strlen(parent);
    return n > p + 1 && name[n - p - 1] == '.' && strcmp(name + n - p, parent) == 0;
}

/* Does every name matched by allow also match deny? */
static int covers(const struct np_rule *deny, const struct np_rule *allow)
{
    if (!deny->wildcard)
        return !allow->wildcard && strcmp(deny->name, allow->name) == 0;
    return strcmp(deny->name, allow->name) == 0 ? allow->wildcard : below(allow->name, deny->name);
}

/* Do deny and allow match a name in common? */
static int intersects(const struct np_rule *deny, const struct np_rule *allow)
{
    if (!deny->wildcard && !allow->wildcard)
        return strcmp(deny->name, allow->name) == 0;
    if (deny->wildcard && !allow->wildcard)
        return below(allow->name, deny->name);
    if (!deny->wildcard && allow->wildcard)
        return below(deny->name, allow->name);
    return strcmp(deny->name, allow->name) == 0 || below(deny->name, allow->name) ||
           below(allow->name, deny->name);
}

/* ---- translation ---- */

static int emit(FILE *f, const struct np_rule *r, size_t i, const struct netpolicy_opts *o)
{
    fprintf(f, "  egress_%04zu:\n    name: \"networkPolicy.egress[%zu]\"\n    endpoints:\n"
               "      - host: \"%s%s\"\n        ports: [", i, i, r->wildcard ? "**." : "",
            r->name);
    for (size_t p = 0; p < o->nports; p++)
        fprintf(f, "%s%u", p ? ", " : "", o->ports[p]);
    fputs("]\n", f);
    if (o->n_allowed_ips) {
        fputs("        allowed_ips: [", f);
        for (size_t a = 0; a < o->n_allowed_ips; a++)
            fprintf(f, "%s\"%s\"", a ? ", " : "", o->allowed_ips[a]);
        fputs("]\n", f);
    }
    /* OpenSandbox decides by destination only: any program */
    fputs("    binaries:\n      - path: \"/**\"\n", f);
    return ferror(f) ? -ENOMEM : 0;
}

int netpolicy_translate(const json_t *np, const struct netpolicy_opts *o, char **out,
                        char *err, size_t cap)
{
    struct np_rule *rules = NULL;
    char *buf = NULL;
    size_t blen = 0, n = 0;
    FILE *f = NULL;
    int rc = -EINVAL;
    const char *k;
    json_t *v;
    *out = NULL;
    if (!json_is_object(np)) {
        snprintf(err, cap, "networkPolicy: must be an object {defaultAction, egress}");
        return -EINVAL;
    }
    json_object_foreach((json_t *)np, k, v) {
        if (strcmp(k, "defaultAction") != 0 && strcmp(k, "egress") != 0) {
            snprintf(err, cap, "networkPolicy.%.64s: unknown field (allowed: defaultAction, "
                     "egress)", k);
            return -EINVAL;
        }
    }
    const json_t *da = json_object_get(np, "defaultAction");
    if (da && !json_is_null(da)) {
        if (!json_is_string(da) || (strcasecmp(json_string_value(da), "deny") != 0 &&
                                    strcasecmp(json_string_value(da), "allow") != 0)) {
            snprintf(err, cap, "networkPolicy.defaultAction: \"allow\" or \"deny\" (absent: deny)");
            return -EINVAL;
        }
        if (strcasecmp(json_string_value(da), "allow") == 0) {
            snprintf(err, cap, "networkPolicy.defaultAction: \"allow\" is not supported: a cordon "
                     "sandbox's egress is an allow list (everything not allowed is denied); "
                     "use \"deny\" and list the hosts to allow as {\"action\": \"allow\", "
                     "\"target\": ...} rules");
            return -EINVAL;
        }
    }
    const json_t *eg = json_object_get(np, "egress");
    if (eg && !json_is_null(eg)) {
        if (!json_is_array(eg)) {
            snprintf(err, cap, "networkPolicy.egress: must be a list of {action, target}");
            return -EINVAL;
        }
        n = json_array_size(eg);
    }
    if (n > NETPOLICY_MAX_RULES) {
        snprintf(err, cap, "networkPolicy.egress: %zu rules, at most %d", n, NETPOLICY_MAX_RULES);
        return -EINVAL;
    }
    if (n && !(rules = calloc(n, sizeof(*rules)))) {
        snprintf(err, cap, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = parse_rule(json_array_get(eg, i), i, &rules[i], err, cap)) < 0)
            goto out;
    if (o->nports == 0) {
        snprintf(err, cap, "networkPolicy: the server has no egress ports configured "
                 "(--egress-ports)");
        rc = -EINVAL;
        goto out;
    }
    if (!(f = open_memstream(&buf, &blen))) {
        rc = -ENOMEM;
        snprintf(err, cap, "out of memory");
        goto out;
    }
    size_t emitted = 0;
    fputs("network_policies:\n", f);
    for (size_t i = 0; i < n; i++) {
        if (rules[i].action != NP_ALLOW)
            continue;
        int dead = 0;
        for (size_t j = 0; j < i && !dead; j++) {
            if (rules[j].action != NP_DENY || !intersects(&rules[j], &rules[i]))
                continue;
            if (covers(&rules[j], &rules[i])) {
                dead = 1; /* first match: the earlier deny takes all of it */
                continue;
            }
            snprintf(err, cap, "networkPolicy.egress[%zu]: the deny of '%s%s' carves names out "
                     "of the later allow of '%s%s' (egress[%zu]); a cordon policy lists what "
                     "is allowed and cannot subtract from it: allow the wanted names one by one "
                     "instead of the wildcard, or drop the deny", j,
                     rules[j].wildcard ? "*." : "", rules[j].name, rules[i].wildcard ? "*." : "",
                     rules[i].name, i);
            rc = -EINVAL;
            goto out;
        }
        if (dead)
            continue;
        if ((rc = emit(f, &rules[i], i, o)) < 0) {
            snprintf(err, cap, "out of memory");
            goto out;
        }
        emitted++;
    }
    if (fclose(f) != 0) {
        f = NULL;
        rc = -ENOMEM;
        snprintf(err, cap, "out of memory");
        goto out;
    }
    f = NULL;
    if (emitted == 0) {
        free(buf); /* nothing is allowed: an empty map */
        if (!(buf = strdup("network_policies: {}\n"))) {
            rc = -ENOMEM;
            snprintf(err, cap, "out of memory");
            goto out;
        }
    }
    *out = buf;
    buf = NULL;
    rc = 0;
out:
    if (f)
        fclose(f);
    free(buf);
    free(rules);
    return rc;
}

int netpolicy_rule_of(const char *diag_line)
{
    const char *p = strstr(diag_line, "network_policies.egress_");
    if (!p)
        return -1;
    p += strlen("network_policies.egress_");
    int v = 0;
    for (int i = 0; i < 4; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* ---- splice ---- */

int netpolicy_splice(const char *base, size_t len, const char *block, char **out,
                     size_t *outlen, char *err, size_t cap)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int rc = -EINVAL, depth = 0, key_next = 0, in_np = 0, done = 0;
    size_t cut_from = 0, cut_to = 0, map_end = len, np_depth = 0;
    int have_cut = 0;
    *out = NULL;
    if (!yaml_parser_initialize(&p)) {
        snprintf(err, cap, "out of memory");
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)base, len);
    while (!done) {
        if (!yaml_parser_parse(&p, &ev)) {
            snprintf(err, cap, "line %zu column %zu: %s", p.problem_mark.line + 1,
                     p.problem_mark.column + 1, p.problem ? p.problem : "YAML error");
            goto out;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (depth == 0) {
                if (ev.type != YAML_MAPPING_START_EVENT ||
                    ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE) {
                    snprintf(err, cap, "the policy's top level must be a block mapping "
                             "(\"version: 1\" on its own line, ...)");
                    yaml_event_delete(&ev);
                    goto out;
                }
                key_next = 1;
            } else if (depth == 1) {
                if (key_next) {
                    snprintf(err, cap, "line %zu: a top-level key must be a plain name",
                             ev.start_mark.line + 1);
                    yaml_event_delete(&ev);
                    goto out;
                }
                key_next = 1;
            }
            depth++;
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            if (in_np && (size_t)depth == np_depth) {
                cut_to = ev.end_mark.index;
                in_np = 0;
                have_cut = 1;
            }
            if (depth == 0)
                map_end = ev.start_mark.index;
            break;
        case YAML_SCALAR_EVENT:
            if (depth == 1 && key_next) {
                if (strcmp((const char *)ev.data.scalar.value, "network_policies") == 0) {
                    if (have_cut || in_np) {
                        snprintf(err, cap, "line %zu: network_policies appears twice",
                                 ev.start_mark.line + 1);
                        yaml_event_delete(&ev);
                        goto out;
                    }
                    cut_from = ev.start_mark.index;
                    in_np = 1;
                    np_depth = 1;
                }
                key_next = 0;
            } else if (depth == 1) {
                if (in_np) {
                    cut_to = ev.end_mark.index;
                    in_np = 0;
                    have_cut = 1;
                }
                key_next = 1;
            }
            break;
        case YAML_ALIAS_EVENT:
            snprintf(err, cap, "line %zu: aliases are not allowed in a policy",
                     ev.start_mark.line + 1);
            yaml_event_delete(&ev);
            goto out;
        case YAML_NO_EVENT:
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        }
        yaml_event_delete(&ev);
    }
    if (depth != 0 || map_end > len || cut_to > map_end || cut_from > cut_to) {
        snprintf(err, cap, "the policy is not one YAML mapping");
        goto out;
    }
    if (!have_cut)
        cut_from = cut_to = map_end;
    size_t blen = strlen(block);
    size_t total = cut_from + (map_end - cut_to) + 1 + blen + (len - map_end) + 1;
    char *o = malloc(total);
    if (!o) {
        rc = -ENOMEM;
        snprintf(err, cap, "out of memory");
        goto out;
    }
    size_t w = 0;
    memcpy(o + w, base, cut_from);
    w += cut_from;
    memcpy(o + w, base + cut_to, map_end - cut_to);
    w += map_end - cut_to;
    if (w > 0 && o[w - 1] != '\n')
        o[w++] = '\n';
    memcpy(o + w, block, blen);
    w += blen;
    memcpy(o + w, base + map_end, len - map_end);
    w += len - map_end;
    o[w] = '\0';
    *out = o;
    *outlen = w;
    rc = 0;
out:
    yaml_parser_delete(&p);
    return rc;
}
