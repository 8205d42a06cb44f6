/* policy/ytree: see ytree.h. */
#include "policy/ytree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/banned.h"

#define TAG_PREFIX "tag:yaml.org,2002:"

struct builder {
    struct ynode *stack[YTREE_MAX_DEPTH];
    size_t depth;
    struct ynode *root;
    size_t nodes;
    unsigned docs;
    struct ytree_error *err;
};

static int fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
    va_list ap;
    b->err->line = (unsigned)m->line + 1;
    b->err->col = (unsigned)m->column + 1;
    va_start(ap, fmt);
    vsnprintf(b->err->msg, sizeof(b->err->msg), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static bool str_in(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

/* YAML 1.2 core schema resolution of a plain scalar. */
static void resolve_plain(struct ynode *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    const char *s = n->str;

    if (strlen(s) != n->len) {
        n->type = YS_STR;
    } else if (str_in(s, nulls)) {
        n->type = YS_NULL;
    } else if (str_in(s, trues) || str_in(s, falses)) {
        n->type = YS_BOOL;
        n->bval = str_in(s, trues);
    } else {
        size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
        size_t digits = strspn(s + i, "0123456789");
        if (digits == 0 || s[i + digits] != '\0') {
            n->type = YS_STR;
            return;
        }
        n->type = YS_INT;
        int64_t v = 0;
        for (size_t k = i; k < i + digits; k++) {
            if (v > (INT64_MAX - 9) / 10) {
                v = INT64_MAX;
                break;
            }
            v = v * 10 + (s[k] - '0');
        }
        n->ival = s[0] == '-' && v != INT64_MAX ? -v : v;
    }
}

static int attach(struct builder *b, struct ynode *n)
{
    if (b->depth == 0) {
        b->root = n;
        return 0;
    }
    struct ynode *parent = b->stack[b->depth - 1];
    size_t max = parent->kind == YN_MAP ? 2 * YTREE_MAX_ITEMS : YTREE_MAX_ITEMS;
    if (parent->n >= max)
        return -E2BIG;
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        struct ynode **items = realloc(parent->items, cap * sizeof(*items));
        if (!items)
            return -ENOMEM;
        parent->items = items;
        parent->cap = cap;
    }
    parent->items[parent->n++] = n;
    return 0;
}

/* Creates a node at the event's mark and hangs it under the open container. */
static int add_node(struct builder *b, const yaml_event_t *ev, enum ynode_kind kind,
                    struct ynode **out)
{
    if (++b->nodes > YTREE_MAX_NODES)
        return fail(b, &ev->start_mark, "too many YAML nodes (at most %d)", YTREE_MAX_NODES);
    struct ynode *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->kind = kind;
    n->line = (unsigned)ev->start_mark.line + 1;
    n->col = (unsigned)ev->start_mark.column + 1;
    int rc = attach(b, n);
    if (rc == -E2BIG) {
        free(n);
        return fail(b, &ev->start_mark, "too many items in one list or map (at most %d)",
                    YTREE_MAX_ITEMS);
    }
    if (rc < 0) {
        free(n);
        return rc;
    }
    *out = n;
    return 0;
}

static int check_tag(struct builder *b, const yaml_event_t *ev, const unsigned char *tag,
                     const char *const *ok)
{
    if (!tag || strcmp((const char *)tag, "!") == 0)
        return 0;
    const char *t = (const char *)tag;
    if (strncmp(t, TAG_PREFIX, strlen(TAG_PREFIX)) == 0 && str_in(t + strlen(TAG_PREFIX), ok))
        return 0;
    return fail(b, &ev->start_mark, "YAML tag '%s' is not supported (remove the tag)", t);
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
    static const char *const ok[] = {"str", "int", "bool", "null", NULL};
    const unsigned char *tag = ev->data.scalar.tag;
    struct ynode *n;
    int rc = check_tag(b, ev, tag, ok);
    if (rc < 0)
        return rc;
    if ((rc = add_node(b, ev, YN_SCALAR, &n)) < 0)
        return rc;
    n->len = ev->data.scalar.length;
    n->str = malloc(n->len + 1);
    if (!n->str)
        return -ENOMEM;
    memcpy(n->str, ev->data.scalar.value, n->len);
    n->str[n->len] = '\0';
    bool is_str_tag = tag && strcmp((const char *)tag, TAG_PREFIX "str") == 0;
    if (ev->data.scalar.plain_implicit && !is_str_tag)
        resolve_plain(n);
    else
        n->type = YS_STR;
    return 0;
}

static int on_open(struct builder *b, const yaml_event_t *ev, enum ynode_kind kind)
{
    static const char *const ok[] = {"seq", "map", NULL};
    const unsigned char *tag =
        kind == YN_MAP ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
    struct ynode *n;
    int rc = check_tag(b, ev, tag, ok);
    if (rc < 0)
        return rc;
    if (b->depth >= YTREE_MAX_DEPTH)
        return fail(b, &ev->start_mark, "YAML nested too deeply (at most %d levels)", YTREE_MAX_DEPTH);
    if ((rc = add_node(b, ev, kind, &n)) < 0)
        return rc;
    b->stack[b->depth++] = n;
    return 0;
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (b->docs++ > 0)
            return fail(b, &ev->start_mark, "only one YAML document is allowed");
        return 0;
    case YAML_ALIAS_EVENT:
        return fail(b, &ev->start_mark,
                    "YAML aliases (*%s) are not supported (write the value out)",
                    (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_open(b, ev, YN_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_open(b, ev, YN_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth > 0)
            b->depth--;
        return 0;
    case YAML_NO_EVENT:
    case YAML_STREAM_START_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return 0;
    }
    return 0;
}

static int parser_error(struct builder *b, const yaml_parser_t *ps)
{
    if (ps->error == YAML_MEMORY_ERROR)
        return -ENOMEM;
    b->err->line = (unsigned)ps->problem_mark.line + 1;
    b->err->col = (unsigned)ps->problem_mark.column + 1;
    snprintf(b->err->msg, sizeof(b->err->msg), "invalid YAML: %s%s%s",
             ps->problem ? ps->problem : "syntax error", ps->context ? " " : "",
             ps->context ? ps->context : "");
    return -EINVAL;
}

int ytree_parse(const char *data, size_t len, struct ynode **root, struct ytree_error *err)
{
    struct builder b = {.err = err};
    yaml_parser_t ps;
    yaml_event_t ev;
    int rc = 0;

    *root = NULL;
    memset(err, 0, sizeof(*err));
    if (!yaml_parser_initialize(&ps))
        return -ENOMEM;
    yaml_parser_set_input_string(&ps, (const unsigned char *)data, len);
    for (;;) {
        if (!yaml_parser_parse(&ps, &ev)) {
            rc = parser_error(&b, &ps);
            break;
        }
        rc = on_event(&b, &ev);
        bool done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (rc < 0 || done)
            break;
    }
    yaml_parser_delete(&ps);
    if (rc < 0) {
        ytree_free(b.root);
        return rc;
    }
    *root = b.root;
    return 0;
}

void ytree_free(struct ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        ytree_free(n->items[i]);
    free(n->items);
    free(n->str);
    free(n);
}

const char *ytree_type_name(const struct ynode *n)
{
    if (n->kind == YN_SEQ)
        return "a list";
    if (n->kind == YN_MAP)
        return "a map";
    switch (n->type) {
    case YS_STR:
        return "a string";
    case YS_INT:
        return "an integer";
    case YS_BOOL:
        return "a boolean";
    case YS_NULL:
        return "null";
    }
    return "a scalar";
}
