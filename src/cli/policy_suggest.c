/* cli/policy_suggest: `cordon policy suggest LOG [--allowed-ips CIDR]...`
 *
 * Reads an audit log (JSON lines, as cordon run writes it) and prints the
 * smallest policy that allows exactly the refused connections and requests
 * it records: one network_policies entry per host, with the ports and the
 * binaries seen; for HTTP requests refused by an endpoint's rules
 * (l7_request deny), `protocol: rest` with one allow rule per method and
 * path, a last path segment that looks like an identifier (2+ digits, 16+
 * hex digits, a UUID) generalised to `*`. Refusals a policy entry cannot lift (address_blocked,
 * identity, and destinations that are always blocked whatever the policy
 * says: loopback, link-local, unspecified and other always-blocked IP
 * literals, localhost, the cloud metadata name) are listed as comments. The output passes `cordon policy check`. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/run_int.h"
#include "core/addrclass.h"
#include "core/banned.h"

#define SUGGEST_MAX_HOSTS 256
#define SUGGEST_MAX_ITEMS 64 /* ports, binaries, rules per host */
#define SUGGEST_LINE_MAX (1u << 20)
#define SUGGEST_MAX_IPS 16

struct host_entry {
    char host[256];
    unsigned ports[SUGGEST_MAX_ITEMS];
    size_t n_ports;
    char *binaries[SUGGEST_MAX_ITEMS];
    size_t n_binaries;
    char *rules[SUGGEST_MAX_ITEMS]; /* "METHOD PATH" */
    size_t n_rules;
    bool opaque;  /* reached through a tunnel: no rules */
    bool blocked; /* the address fence refused it */
};

struct psuggest {
    struct host_entry hosts[SUGGEST_MAX_HOSTS];
    size_t n_hosts;
    char *skipped[SUGGEST_MAX_ITEMS];
    size_t n_skipped;
    size_t n_lines, n_used;
    const char *const *ips; /* allowed_ips for every endpoint */
    size_t n_ips;
};

static struct host_entry *host_get(struct psuggest *s, const char *host)
{
    for (size_t i = 0; i < s->n_hosts; i++)
        if (strcmp(s->hosts[i].host, host) == 0)
            return &s->hosts[i];
    if (s->n_hosts == SUGGEST_MAX_HOSTS || strlen(host) >= sizeof(s->hosts[0].host))
        return NULL;
    struct host_entry *h = &s->hosts[s->n_hosts++];
    snprintf(h->host, sizeof(h->host), "%s", host);
    return h;
}

static void add_str(char **list, size_t *n, const char *v)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(list[i], v) == 0)
            return;
    if (*n < SUGGEST_MAX_ITEMS) {
        list[*n] = strdup(v);
        if (list[*n])
            (*n)++;
    }
}

static void add_port(struct host_entry *h, unsigned p)
{
    for (size_t i = 0; i < h->n_ports; i++)
        if (h->ports[i] == p)
            return;
    if (h->n_ports < SUGGEST_MAX_ITEMS)
        h->ports[h->n_ports++] = p;
}

/* An identifier-like segment, as OpenShell's mechanistic mapper reads one
 * (or narrower): 2+ digits, 16+ hex digits, or hex digits and dashes with
 * 24+ hex digits (a UUID). */
static bool id_like(const char *seg, size_t n)
{
    size_t digits = 0, hex = 0, dash = 0;
    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)seg[i]))
            digits++;
        if (isxdigit((unsigned char)seg[i]))
            hex++;
        if (seg[i] == '-')
            dash++;
    }
    return (n >= 2 && digits == n) || (hex == n && n >= 16) ||
           (dash && hex + dash == n && hex >= 24);
}

/* "/users/12345?x" becomes "/users/STAR" (STAR = "*"; query dropped). Only
 * the last segment is generalised: "/users/123/repos" stays as it is, so a
 * rule never reaches a sibling the log did not show (/users/admin/repos). */
static void generalise(const char *path, char *out, size_t cap)
{
    size_t n = strcspn(path, "?#");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, path, n);
    out[n] = '\0';
    char *last = strrchr(out, '/');
    if (last && id_like(last + 1, strlen(last + 1)))
        snprintf(last + 1, cap - (size_t)(last + 1 - out), "*");
    if (!out[0])
        snprintf(out, cap, "/");
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Printable ASCII without quote or backslash: written into YAML as is. */
static bool safe(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
            return false;
    return true;
}

/* Why no policy entry can ever reach host (the address fence refuses it
 * whatever the policy says), or NULL. */
static const char *always_blocked(const char *host)
{
    char h[260];
    uint8_t ip[16];
    const char *range = NULL;
    size_t l = strlen(host);
    if (l >= sizeof(h))
        return NULL;
    for (size_t i = 0; i <= l; i++)
        h[i] = (char)tolower((unsigned char)host[i]);
    if (l > 2 && h[0] == '[' && h[l - 1] == ']') {
        memmove(h, h + 1, l - 2);
        h[l -= 2] = '\0';
    }
    if (l > 1 && h[l - 1] == '.')
        h[--l] = '\0';
    if (inet_pton(AF_INET, h, ip) == 1)
        return addr_classify_raw(AF_INET, ip, &range) == ADDR_ALWAYS_BLOCKED ? range : NULL;
    if (inet_pton(AF_INET6, h, ip) == 1)
        return addr_classify_raw(AF_INET6, ip, &range) == ADDR_ALWAYS_BLOCKED ? range : NULL;
    if (strcmp(h, "localhost") == 0 || (l > 10 && strcmp(h + l - 10, ".localhost") == 0))
        return "loopback";
    if (strcmp(h, "metadata.google.internal") == 0)
        return "the cloud metadata name";
    return NULL;
}

void psuggest_take(struct psuggest *s, json_t *ev)
{
    const char *event = jstr(ev, "event"), *decision = jstr(ev, "decision");
    const char *reason = jstr(ev, "reason_code"), *host = jstr(ev, "host");
    const char *binary = jstr(ev, "binary");
    bool l7 = strcmp(event, "l7_request") == 0;
    bool refused = strcmp(decision, "deny") == 0 ||
                   (strcmp(decision, "would_deny") == 0 && json_is_true(json_object_get(ev, "learn")));
    if ((strcmp(event, "decision") != 0 && !l7) || !refused || !host[0])
        return;
    if (strcmp(host, RUN_SELFTEST_HOST) == 0)
        return; /* cordon run's own enforcement self-test */
    if (!safe(host) || !safe(binary) || !safe(jstr(ev, "method")) || !safe(jstr(ev, "path")) ||
        !safe(reason) || !safe(jstr(ev, "detail")))
        return; /* not something the proxy writes */
    json_t *port = json_object_get(ev, "port");
    if (!json_is_integer(port))
        return;
    if (!l7 && strcmp(reason, "no_endpoint") != 0 && strcmp(reason, "binary_not_allowed") != 0) {
        char line[600];
        snprintf(line, sizeof(line), "%s:%lld for %s: %s (%s)", host,
                 (long long)json_integer_value(port), binary[0] ? binary : "?", reason,
                 jstr(ev, "detail"));
        add_str(s->skipped, &s->n_skipped, line);
        if (strcmp(reason, "address_blocked") == 0) {
            struct host_entry *b = host_get(s, host);
            if (b)
                b->blocked = true;
        }
        return;
    }
    const char *range = always_blocked(host);
    if (range) {
        char line[600];
        snprintf(line, sizeof(line), "%s:%lld for %s: always blocked (%s), whatever the policy says",
                 host, (long long)json_integer_value(port), binary[0] ? binary : "?", range);
        add_str(s->skipped, &s->n_skipped, line);
        return;
    }
    struct host_entry *h = host_get(s, host);
    if (!h)
        return;
    s->n_used++;
    add_port(h, (unsigned)json_integer_value(port));
    if (binary[0])
        add_str(h->binaries, &h->n_binaries, binary);
    bool forward = strcmp(jstr(ev, "kind"), "forward") == 0 && jstr(ev, "method")[0];
    if (!l7 && !forward)
        h->opaque = true;
    if (l7 || forward) {
        char g[1024], rule[1100];
        generalise(jstr(ev, "path"), g, sizeof(g));
        snprintf(rule, sizeof(rule), "%s %s", jstr(ev, "method"), g);
        add_str(h->rules, &h->n_rules, rule);
    }
}

static void key_for(const char *host, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = host; *p && o + 1 < cap; p++)
        out[o++] = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : '_';
    out[o] = '\0';
}

size_t psuggest_count(const struct psuggest *s, size_t *n_hosts)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_hosts; i++)
        n += s->hosts[i].n_ports && !s->hosts[i].blocked;
    if (n_hosts)
        *n_hosts = n;
    return s->n_used;
}

void psuggest_print(const struct psuggest *s, FILE *f)
{
    const char *const *ips = s->ips;
    size_t n_ips = s->n_ips;
    for (size_t i = 0; i < s->n_skipped; i++)
        fprintf(f, "# not suggested (a policy entry cannot allow it): %s\n", s->skipped[i]);
    size_t n_hosts;
    psuggest_count(s, &n_hosts);
    if (!n_hosts) {
        fprintf(f, "# nothing to allow\n");
        return;
    }
    fprintf(f, "network_policies:\n");
    for (size_t i = 0; i < s->n_hosts; i++) {
        const struct host_entry *h = &s->hosts[i];
        if (!h->n_ports || h->blocked)
            continue; /* the address fence refused it: an entry would not help */
        char key[300];
        key_for(h->host, key, sizeof(key));
        fprintf(f, "  %s:\n    endpoints:\n      - host: \"%s\"\n", key, h->host);
        if (h->n_ports == 1) {
            fprintf(f, "        port: %u\n", h->ports[0]);
        } else {
            fprintf(f, "        ports: [");
            for (size_t k = 0; k < h->n_ports; k++)
                fprintf(f, "%s%u", k ? ", " : "", h->ports[k]);
            fprintf(f, "]\n");
        }
        if (n_ips) {
            fprintf(f, "        allowed_ips: [");
            for (size_t k = 0; k < n_ips; k++)
                fprintf(f, "%s\"%s\"", k ? ", " : "", ips[k]);
            fprintf(f, "]\n");
        }
        if (h->n_rules && !h->opaque) {
            fprintf(f, "        protocol: rest\n        rules:\n");
            for (size_t k = 0; k < h->n_rules; k++) {
                const char *sp = strchr(h->rules[k], ' ');
                fprintf(f, "          - allow: {method: %.*s, path: \"%s\"}\n",
                        (int)(sp - h->rules[k]), h->rules[k], sp + 1);
            }
        }
        fprintf(f, "    binaries:\n");
        for (size_t k = 0; k < h->n_binaries; k++)
            fprintf(f, "      - path: \"%s\"\n", h->binaries[k]);
        if (!h->n_binaries)
            fprintf(f, "      - path: \"/unknown\"  # the log named no binary; fill in\n");
    }
}

struct psuggest *psuggest_new(const char *const *ips, size_t n_ips)
{
    struct psuggest *s = calloc(1, sizeof(*s));
    if (s) {
        s->ips = ips;
        s->n_ips = n_ips;
    }
    return s;
}

void psuggest_free(struct psuggest *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_hosts; i++) {
        for (size_t k = 0; k < s->hosts[i].n_binaries; k++)
            free(s->hosts[i].binaries[k]);
        for (size_t k = 0; k < s->hosts[i].n_rules; k++)
            free(s->hosts[i].rules[k]);
    }
    for (size_t i = 0; i < s->n_skipped; i++)
        free(s->skipped[i]);
    free(s);
}

int cli_policy_suggest(int argc, char **argv)
{
    const char *log = NULL;
    const char *ips[SUGGEST_MAX_IPS];
    size_t n_ips = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: cordon policy suggest LOG [--allowed-ips CIDR]...\n"
                   "Prints the smallest policy that allows the connections and requests\n"
                   "refused in LOG (a JSON audit log of cordon run). --allowed-ips adds\n"
                   "allowed_ips to every endpoint (hosts on private addresses).\n");
            return 0;
        }
        if (strcmp(argv[i], "--allowed-ips") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (n_ips == SUGGEST_MAX_IPS || strpbrk(v, "\"\\\n")) {
                fprintf(stderr, "cordon policy suggest: --allowed-ips '%s': a CIDR (at most "
                        "%d)\n", v, SUGGEST_MAX_IPS);
                return 2;
            }
            ips[n_ips++] = v;
        } else if (argv[i][0] == '-') {
            static const char *const opts[] = {"--allowed-ips", "--help", NULL};
            cli_unknown_option("policy suggest", argv[i], opts);
            return 2;
        } else if (!log) {
            log = argv[i];
        } else {
            fprintf(stderr, "cordon policy suggest: one LOG only (got '%s' too)\n", argv[i]);
            return 2;
        }
    }
    if (!log) {
        fprintf(stderr, "cordon policy suggest: LOG is required (e.g. /var/log/cordon/NAME.log)\n");
        return 2;
    }
    FILE *f = fopen(log, "re");
    if (!f) {
        fprintf(stderr, "cordon policy suggest: %s: %s\n", log, strerror(errno));
        return 2;
    }
    struct psuggest *s = psuggest_new(ips, n_ips);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (s && (len = getline(&line, &cap, f)) >= 0) {
        s->n_lines++;
        if (len == 0 || line[0] == '\n')
            continue;
        json_error_t je;
        json_t *ev = (size_t)len <= SUGGEST_LINE_MAX ? json_loadb(line, (size_t)len, 0, &je)
                                                     : NULL;
        if (!json_is_object(ev)) {
            fprintf(stderr, "cordon policy suggest: %s:%zu: not a JSON audit event (suggest reads "
                    "--log-format json logs)\n", log, s->n_lines);
            json_decref(ev);
            rc = 1;
            break;
        }
        psuggest_take(s, ev);
        json_decref(ev);
    }
    free(line);
    fclose(f);
    if (!s) {
        fprintf(stderr, "cordon policy suggest: out of memory\n");
        return 1;
    }
    if (rc == 0) {
        size_t n_hosts, n_used = psuggest_count(s, &n_hosts);
        printf("# Suggested by `cordon policy suggest %s`: allows exactly the %zu refusal(s)\n"
               "# recorded there (%zu host(s)). Review it, then: cordon policy check FILE\n"
               "version: 1\n", log, n_used, n_hosts);
        psuggest_print(s, stdout);
    }
    psuggest_free(s);
    return rc;
}
