/* policy/graphql: lexer and recursive-descent parser for GraphQL
 * executable documents (spec §2: Document, OperationDefinition,
 * FragmentDefinition, SelectionSet, Field, Arguments, Values, Variables,
 * Directives, Types). Only the root selection sets are recorded; everything
 * else is checked for syntax and skipped. Bounded by token count, nesting
 * depth and fixed tables; no allocation. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "policy/graphql.h"

#include "core/banned.h"

#define MAX_DEFS 64
#define MAX_ITEMS 1024

enum tok {
    T_EOF,
    T_PUNCT, /* one of ! $ & ( ) : = @ [ ] { | } */
    T_SPREAD,
    T_NAME,
    T_NUMBER,
    T_STRING,
    T_ERROR,
};

struct item {
    bool spread; /* fragment spread, else a field */
    int def;
    const char *name;
    size_t len;
};

struct def {
    bool fragment;
    const char *type; /* operation type */
    const char *name;
    size_t name_len;
};

struct gq {
    const char *p, *end;
    enum tok t;
    char punct;
    const char *tok;
    size_t tok_len;
    size_t n_tokens;
    const char *why;
    struct def defs[MAX_DEFS];
    size_t n_defs;
    struct item items[MAX_ITEMS];
    size_t n_items;
};

static bool fail(struct gq *g, const char *why)
{
    if (!g->why)
        g->why = why;
    g->t = T_ERROR;
    return false;
}

static bool name_start(char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }
static bool digit(char c) { return c >= '0' && c <= '9'; }

static void skip_ignored(struct gq *g)
{
    while (g->p < g->end) {
        char c = *g->p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',') {
            g->p++;
        } else if (c == '#') {
            while (g->p < g->end && *g->p != '\n' && *g->p != '\r')
                g->p++;
        } else if (g->end - g->p >= 3 && memcmp(g->p, "\xEF\xBB\xBF", 3) == 0) {
            g->p += 3;
        } else {
            return;
        }
    }
}

static void lex_string(struct gq *g)
{
    if (g->end - g->p >= 3 && memcmp(g->p, "\"\"\"", 3) == 0) { /* block string */
        g->p += 3;
        while (g->p < g->end) {
            if (g->end - g->p >= 4 && memcmp(g->p, "\\\"\"\"", 4) == 0) {
                g->p += 4;
            } else if (g->end - g->p >= 3 && memcmp(g->p, "\"\"\"", 3) == 0) {
                g->p += 3;
                g->t = T_STRING;
                return;
            } else {
                g->p++;
            }
        }
        fail(g, "has an unterminated block string");
        return;
    }
    g->p++;
    while (g->p < g->end) {
        char c = *g->p++;
        if (c == '"') {
            g->t = T_STRING;
            return;
        }
        if (c == '\n' || c == '\r')
            break;
        if (c == '\\') {
            if (g->p >= g->end)
                break;
            char e = *g->p++;
            if (e == 'u') {
                for (int i = 0; i < 4; i++, g->p++)
                    if (g->p >= g->end || !strchr("0123456789abcdefABCDEF", *g->p) || !*g->p) {
                        fail(g, "has a bad \\u escape in a string");
                        return;
                    }
            } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                fail(g, "has a bad escape in a string");
                return;
            }
        }
    }
    fail(g, "has an unterminated string");
}

static void lex_number(struct gq *g)
{
    if (*g->p == '-')
        g->p++;
    if (g->p >= g->end || !digit(*g->p)) {
        fail(g, "has a malformed number");
        return;
    }
    while (g->p < g->end && digit(*g->p))
        g->p++;
    if (g->p < g->end && *g->p == '.') {
        g->p++;
        if (g->p >= g->end || !digit(*g->p)) {
            fail(g, "has a malformed number");
            return;
        }
        while (g->p < g->end && digit(*g->p))
            g->p++;
    }
    if (g->p < g->end && (*g->p == 'e' || *g->p == 'E')) {
        g->p++;
        if (g->p < g->end && (*g->p == '+' || *g->p == '-'))
            g->p++;
        if (g->p >= g->end || !digit(*g->p)) {
            fail(g, "has a malformed number");
            return;
        }
        while (g->p < g->end && digit(*g->p))
            g->p++;
    }
    if (g->p < g->end && (name_start(*g->p) || *g->p == '.')) {
        fail(g, "has a malformed number");
        return;
    }
    g->t = T_NUMBER;
}

/* Advances to the next token. */
static void next(struct gq *g)
{
    if (g->t == T_ERROR)
        return;
    skip_ignored(g);
    g->tok = g->p;
    if (++g->n_tokens > POLICY_GQL_MAX_TOKENS) {
        fail(g, "has too many tokens");
        return;
    }
    if (g->p >= g->end) {
        g->t = T_EOF;
        g->tok_len = 0;
        return;
    }
    char c = *g->p;
    if (c != '\0' && strchr("!$&():=@[]{|}", c)) {
        g->p++;
        g->t = T_PUNCT;
        g->punct = c;
    } else if (c == '.') {
        if (g->end - g->p < 3 || memcmp(g->p, "...", 3) != 0) {
            fail(g, "has a stray '.'");
            return;
        }
        g->p += 3;
        g->t = T_SPREAD;
    } else if (name_start(c)) {
        while (g->p < g->end && name_char(*g->p))
            g->p++;
        g->t = T_NAME;
    } else if (c == '-' || digit(c)) {
        lex_number(g);
    } else if (c == '"') {
        lex_string(g);
    } else {
        fail(g, "has a character that is not GraphQL syntax");
        return;
    }
    g->tok_len = (size_t)(g->p - g->tok);
}

static bool is_punct(const struct gq *g, char c) { return g->t == T_PUNCT && g->punct == c; }

static bool is_name(const struct gq *g, const char *kw)
{
    return g->t == T_NAME && g->tok_len == strlen(kw) && memcmp(g->tok, kw, g->tok_len) == 0;
}

static bool expect(struct gq *g, char c)
{
    if (!is_punct(g, c))
        return fail(g, "has a syntax error (unexpected token)");
    next(g);
    return true;
}

static bool expect_name(struct gq *g, const char **name, size_t *len)
{
    if (g->t != T_NAME)
        return fail(g, "has a syntax error (expected a name)");
    if (g->tok_len > POLICY_GQL_NAME_MAX)
        return fail(g, "has a name longer than 128 characters");
    if (name) {
        *name = g->tok;
        *len = g->tok_len;
    }
    next(g);
    return true;
}

static bool value(struct gq *g, bool is_const, int depth);

static bool value(struct gq *g, bool is_const, int depth)
{
    if (depth > POLICY_GQL_MAX_DEPTH)
        return fail(g, "is nested too deeply");
    if (is_punct(g, '$')) {
        if (is_const)
            return fail(g, "uses a variable where a constant is required");
        next(g);
        return expect_name(g, NULL, NULL);
    }
    if (g->t == T_NUMBER || g->t == T_STRING || g->t == T_NAME) {
        next(g);
        return true;
    }
    if (is_punct(g, '[')) {
        next(g);
        while (!is_punct(g, ']') && g->t != T_ERROR)
            if (g->t == T_EOF || !value(g, is_const, depth + 1))
                return fail(g, "has an unterminated list");
        return expect(g, ']');
    }
    if (is_punct(g, '{')) {
        next(g);
        while (!is_punct(g, '}') && g->t != T_ERROR) {
            if (!expect_name(g, NULL, NULL) || !expect(g, ':') || !value(g, is_const, depth + 1))
                return false;
        }
        return expect(g, '}');
    }
    return fail(g, "has a syntax error (expected a value)");
}

static bool arguments(struct gq *g, bool is_const, int depth)
{
    if (!is_punct(g, '('))
        return true;
    next(g);
    do {
        if (!expect_name(g, NULL, NULL) || !expect(g, ':') || !value(g, is_const, depth + 1))
            return false;
    } while (!is_punct(g, ')') && g->t != T_ERROR);
    return expect(g, ')');
}

static bool directives(struct gq *g, bool is_const, int depth)
{
    while (is_punct(g, '@')) {
        next(g);
        if (!expect_name(g, NULL, NULL) || !arguments(g, is_const, depth))
            return false;
    }
    return true;
}

static bool type_ref(struct gq *g, int depth)
{
    if (depth > POLICY_GQL_MAX_DEPTH)
        return fail(g, "is nested too deeply");
    if (is_punct(g, '[')) {
        next(g);
        if (!type_ref(g, depth + 1) || !expect(g, ']'))
            return false;
    } else if (!expect_name(g, NULL, NULL)) {
        return false;
    }
    if (is_punct(g, '!'))
        next(g);
    return true;
}

static bool variable_defs(struct gq *g, int depth)
{
    if (!is_punct(g, '('))
        return true;
    next(g);
    do {
        if (!expect(g, '$') || !expect_name(g, NULL, NULL) || !expect(g, ':') ||
            !type_ref(g, depth))
            return false;
        if (is_punct(g, '=')) {
            next(g);
            if (!value(g, true, depth))
                return false;
        }
        if (!directives(g, true, depth))
            return false;
    } while (!is_punct(g, ')') && g->t != T_ERROR);
    return expect(g, ')');
}

static bool add_item(struct gq *g, int def, bool spread, const char *name, size_t len)
{
    if (g->n_items == MAX_ITEMS)
        return fail(g, "has too many root selections");
    g->items[g->n_items++] = (struct item){spread, def, name, len};
    return true;
}

/* def >= 0: the root selection set of defs[def] (items are recorded, inline
 * fragments flattened into it); def < 0: a nested one (syntax only). */
static bool selection_set(struct gq *g, int def, int depth)
{
    if (depth > POLICY_GQL_MAX_DEPTH)
        return fail(g, "is nested too deeply");
    if (!expect(g, '{'))
        return false;
    do {
        if (g->t == T_SPREAD) {
            next(g);
            if (g->t == T_NAME && !is_name(g, "on")) {
                const char *n;
                size_t l;
                if (!expect_name(g, &n, &l) || !directives(g, false, depth))
                    return false;
                if (def >= 0 && !add_item(g, def, true, n, l))
                    return false;
                continue;
            }
            if (is_name(g, "on")) {
                next(g);
                if (!expect_name(g, NULL, NULL))
                    return false;
            }
            if (!directives(g, false, depth) || !selection_set(g, def, depth + 1))
                return false;
            continue;
        }
        const char *n, *alias;
        size_t l, al;
        if (!expect_name(g, &alias, &al))
            return false;
        n = alias;
        l = al;
        if (is_punct(g, ':')) {
            next(g);
            if (!expect_name(g, &n, &l))
                return false;
        }
        if (def >= 0 && !add_item(g, def, false, n, l))
            return false;
        if (!arguments(g, false, depth) || !directives(g, false, depth))
            return false;
        if (is_punct(g, '{') && !selection_set(g, -1, depth + 1))
            return false;
    } while (!is_punct(g, '}') && g->t != T_ERROR && g->t != T_EOF);
    return expect(g, '}');
}

static bool definition(struct gq *g)
{
    if (g->n_defs == MAX_DEFS)
        return fail(g, "has too many definitions");
    struct def *d = &g->defs[g->n_defs];
    int idx = (int)g->n_defs++;
    memset(d, 0, sizeof(*d));
    if (is_punct(g, '{')) {
        d->type = "query";
        return selection_set(g, idx, 0);
    }
    if (is_name(g, "fragment")) {
        d->fragment = true;
        next(g);
        if (is_name(g, "on"))
            return fail(g, "names a fragment 'on'");
        if (!expect_name(g, &d->name, &d->name_len))
            return false;
        if (!is_name(g, "on"))
            return fail(g, "has a fragment without a type condition");
        next(g);
        return expect_name(g, NULL, NULL) && directives(g, false, 0) && selection_set(g, idx, 0);
    }
    if (is_name(g, "query"))
        d->type = "query";
    else if (is_name(g, "mutation"))
        d->type = "mutation";
    else if (is_name(g, "subscription"))
        d->type = "subscription";
    else
        return fail(g, "is not an executable document (expected an operation or a fragment)");
    next(g);
    if (g->t == T_NAME && !expect_name(g, &d->name, &d->name_len))
        return false;
    return variable_defs(g, 0) && directives(g, false, 0) && selection_set(g, idx, 0);
}

static int find_fragment(const struct gq *g, const char *name, size_t len)
{
    for (size_t i = 0; i < g->n_defs; i++)
        if (g->defs[i].fragment && g->defs[i].name_len == len &&
            memcmp(g->defs[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

static int add_field(struct policy_gql_op *out, const char *name, size_t len)
{
    for (size_t i = 0; i < out->n_fields; i++)
        if (strlen(out->fields[i]) == len && memcmp(out->fields[i], name, len) == 0)
            return 0;
    if (out->n_fields == POLICY_GQL_MAX_FIELDS)
        return -1;
    memcpy(out->fields[out->n_fields], name, len);
    out->fields[out->n_fields++][len] = '\0';
    return 0;
}

/* Collects defs[def]'s root fields, following spreads; visited guards
 * against fragment cycles. */
static int collect(const struct gq *g, int def, bool *visited, struct policy_gql_op *out,
                   const char **why)
{
    for (size_t i = 0; i < g->n_items; i++) {
        const struct item *it = &g->items[i];
        if (it->def != def)
            continue;
        if (!it->spread) {
            if (add_field(out, it->name, it->len) < 0)
                return *why = "selects more than 64 root fields", -EINVAL;
            continue;
        }
        int f = find_fragment(g, it->name, it->len);
        if (f < 0)
            return *why = "spreads a fragment that is not defined", -EINVAL;
        if (visited[f])
            continue;
        visited[f] = true;
        int rc = collect(g, f, visited, out, why);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cmp_field(const void *a, const void *b) { return strcmp(a, b); }

static int parse(struct gq *g, const char *doc, size_t len, const char *op_name,
                 struct policy_gql_op *out, const char **why)
{
    bool visited[MAX_DEFS] = {0};
    int op = -1;
    size_t n_ops = 0;

    memset(g, 0, offsetof(struct gq, defs));
    g->n_defs = g->n_items = 0;
    g->p = doc;
    g->end = doc + len;
    if (memchr(doc, '\0', len))
        return *why = "contains a NUL byte", -EINVAL;
    next(g);
    if (g->t == T_EOF)
        return *why = "is empty", -EINVAL;
    while (g->t != T_EOF && g->t != T_ERROR)
        (void)definition(g);
    if (g->t == T_ERROR)
        return *why = g->why ? g->why : "has a syntax error", -EINVAL;
    for (size_t i = 0; i < g->n_defs; i++) {
        const struct def *d = &g->defs[i];
        if (d->fragment)
            continue;
        n_ops++;
        if (op_name && *op_name) {
            if (d->name && d->name_len == strlen(op_name) &&
                memcmp(d->name, op_name, d->name_len) == 0)
                op = (int)i;
        } else {
            op = (int)i;
        }
    }
    if (n_ops == 0)
        return *why = "has no operation", -EINVAL;
    if (op_name && *op_name && op < 0)
        return *why = "has no operation named by operationName", -EINVAL;
    if ((!op_name || !*op_name) && n_ops > 1)
        return *why = "has multiple operations but no operationName", -EINVAL;
    const struct def *d = &g->defs[op];
    memcpy(out->type, d->type, strlen(d->type) + 1);
    if (d->name) {
        memcpy(out->name, d->name, d->name_len);
        out->name[d->name_len] = '\0';
    }
    int rc = collect(g, op, visited, out, why);
    if (rc < 0)
        return rc;
    qsort(out->fields, out->n_fields, sizeof(out->fields[0]), cmp_field);
    return 0;
}

int policy_graphql_parse(const char *doc, size_t len, const char *op_name,
                         struct policy_gql_op *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    /* ~40 KiB: on the heap for the parse, not in every thread's static TLS
     * (zeroed at each thread's creation) nor on a worker's stack */
    struct gq *g = malloc(sizeof(*g));
    if (!g)
        return *why = "could not be parsed (out of memory)", -ENOMEM;
    int rc = parse(g, doc, len, op_name, out, why);
    free(g);
    return rc;
}
