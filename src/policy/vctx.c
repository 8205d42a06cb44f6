/* policy/vctx: see vctx.h. */
#include "policy/vctx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/banned.h"

void *v_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fputs("cordon: out of memory while loading the policy\n", stderr);
        abort();
    }
    return p;
}

char *v_strdup(const char *s)
{
    size_t n = strlen(s);
    char *p = v_calloc(n + 1, 1);
    memcpy(p, s, n);
    return p;
}

static void v_add(struct vctx *c, unsigned line, unsigned col, bool error, const char *fmt,
                  va_list ap) __attribute__((format(printf, 5, 0)));
static void v_add(struct vctx *c, unsigned line, unsigned col, bool error, const char *fmt,
                  va_list ap)
{
    char msg[1024];
    char text[1700];

    if (error)
        c->n_errors++;
    else
        c->n_warnings++;
    if (c->n >= VCTX_MAX_DIAGS)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (c->plen > 0)
        snprintf(text, sizeof(text), "%s:%u:%u: %s: %s: %s", c->file, line, col,
                 error ? "error" : "warning", c->path, msg);
    else
        snprintf(text, sizeof(text), "%s:%u:%u: %s: %s", c->file, line, col,
                 error ? "error" : "warning", msg);
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct vdiag *d = realloc(c->d, cap * sizeof(*d));
        if (!d) {
            fputs("cordon: out of memory while loading the policy\n", stderr);
            abort();
        }
        c->d = d;
        c->cap = cap;
    }
    c->d[c->n] = (struct vdiag){.line = line, .col = col, .seq = c->n, .text = v_strdup(text)};
    c->n++;
}

void v_error(struct vctx *c, const struct ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    v_add(c, at ? at->line : 1, at ? at->col : 1, true, fmt, ap);
    va_end(ap);
}

void v_warn(struct vctx *c, const struct ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    v_add(c, at ? at->line : 1, at ? at->col : 1, false, fmt, ap);
    va_end(ap);
}

void v_error_at(struct vctx *c, unsigned line, unsigned col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    v_add(c, line, col, true, fmt, ap);
    va_end(ap);
}

size_t v_push(struct vctx *c, const char *fmt, ...)
{
    size_t mark = c->plen;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->path + c->plen, sizeof(c->path) - c->plen, fmt, ap);
    va_end(ap);
    if (n > 0)
        c->plen += (size_t)n;
    if (c->plen >= sizeof(c->path))
        c->plen = sizeof(c->path) - 1;
    return mark;
}

void v_pop(struct vctx *c, size_t mark)
{
    c->plen = mark;
    c->path[mark] = '\0';
}

static int diag_cmp(const void *a, const void *b)
{
    const struct vdiag *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void diag_push(struct policy_diag *d, char *line)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        char **l = realloc(d->lines, cap * sizeof(*l));
        if (!l) {
            fputs("cordon: out of memory while loading the policy\n", stderr);
            abort();
        }
        d->lines = l;
        d->cap = cap;
    }
    d->lines[d->n++] = line;
}

void v_flush(struct vctx *c, struct policy_diag *d)
{
    if (c->n > 1)
        qsort(c->d, c->n, sizeof(*c->d), diag_cmp);
    for (size_t i = 0; i < c->n; i++)
        diag_push(d, c->d[i].text);
    size_t dropped = c->n_errors + c->n_warnings - c->n;
    if (dropped > 0) {
        char text[256];
        snprintf(text, sizeof(text), "%s: note: %zu more diagnostics not shown", c->file,
                 dropped);
        diag_push(d, v_strdup(text));
    }
    d->n_errors += c->n_errors;
    d->n_warnings += c->n_warnings;
    free(c->d);
    c->d = NULL;
    c->n = c->cap = 0;
}

/* ---- typed getters ---- */

static const char *quote_hint(const struct ynode *n)
{
    return n->kind == YN_SCALAR && n->type == YS_STR && n->len > 0 ? n->str : NULL;
}

static void type_error(struct vctx *c, const struct ynode *n, const char *want,
                       const char *allowed)
{
    const char *val = quote_hint(n);
    if (val && strlen(val) <= 64)
        v_error(c, n, "expected %s, got %s '%s' (%s)", want, ytree_type_name(n), val, allowed);
    else
        v_error(c, n, "expected %s, got %s (%s)", want, ytree_type_name(n), allowed);
}

bool v_str(struct vctx *c, const struct ynode *n, const char **out, const char *allowed)
{
    if (n->kind != YN_SCALAR || (n->type != YS_STR && n->type != YS_INT)) {
        type_error(c, n, "a string", allowed);
        return false;
    }
    if (strlen(n->str) != n->len) {
        v_error(c, n, "contains a NUL byte (%s)", allowed);
        return false;
    }
    *out = n->str;
    return true;
}

bool v_int(struct vctx *c, const struct ynode *n, int64_t min, int64_t max, int64_t *out,
           const char *allowed)
{
    if (n->kind != YN_SCALAR || n->type != YS_INT) {
        type_error(c, n, "an integer", allowed);
        return false;
    }
    if (n->ival < min || n->ival > max) {
        v_error(c, n, "%s is out of range (%s)", n->str, allowed);
        return false;
    }
    *out = n->ival;
    return true;
}

bool v_bool(struct vctx *c, const struct ynode *n, bool *out)
{
    if (n->kind != YN_SCALAR || n->type != YS_BOOL) {
        type_error(c, n, "a boolean", "allowed: true, false");
        return false;
    }
    *out = n->bval;
    return true;
}

bool v_seq(struct vctx *c, const struct ynode *n, const char *allowed)
{
    if (n->kind != YN_SEQ) {
        type_error(c, n, "a list", allowed);
        return false;
    }
    return true;
}

static int enum_match(struct vctx *c, const struct ynode *n, const char *const *allowed,
                      bool nocase)
{
    char list[256] = "";
    size_t cnt = 0, used = 0;
    const char *s;

    for (; allowed[cnt]; cnt++) {
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", cnt ? ", " : "", allowed[cnt]);
        if (w > 0 && (size_t)w < sizeof(list) - used)
            used += (size_t)w;
    }
    char what[300];
    snprintf(what, sizeof(what), "allowed: %s", list);
    if (!v_str(c, n, &s, what))
        return -1;
    for (size_t i = 0; i < cnt; i++)
        if ((nocase ? strcasecmp(s, allowed[i]) : strcmp(s, allowed[i])) == 0)
            return (int)i;
    const char *sug = v_suggest(s, allowed, cnt);
    if (sug)
        v_error(c, n, "'%s' is not allowed (allowed: %s; did you mean '%s'?)", s, list, sug);
    else
        v_error(c, n, "'%s' is not allowed (allowed: %s)", s, list);
    return -1;
}

int v_enum(struct vctx *c, const struct ynode *n, const char *const *allowed)
{
    return enum_match(c, n, allowed, false);
}

int v_enum_nocase(struct vctx *c, const struct ynode *n, const char *const *allowed)
{
    return enum_match(c, n, allowed, true);
}

/* ---- maps ---- */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[65];
    if (la > 64 || lb > 64)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *v_suggest(const char *s, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(s, cands[i]);
        if (d < bd) {
            bd = d;
            best = cands[i];
        }
    }
    return best;
}

bool v_map_key_ok(struct vctx *c, const struct ynode *n, size_t i)
{
    const struct ynode *k = n->items[2 * i];
    if (k->kind != YN_SCALAR || k->type == YS_NULL || strlen(k->str) != k->len) {
        v_error(c, k, "keys must be strings, got %s", ytree_type_name(k));
        return false;
    }
    for (size_t j = 0; j < i; j++) {
        const struct ynode *p = n->items[2 * j];
        if (p->kind == YN_SCALAR && strcmp(p->str, k->str) == 0) {
            v_error(c, k, "duplicate key '%s' (first defined at line %u, column %u)", k->str,
                    p->line, p->col);
            return false;
        }
    }
    return true;
}

static void unknown_field(struct vctx *c, const struct ynode *k, const struct vfield *fields,
                          size_t nf)
{
    const char *names[32];
    char list[400] = "";
    size_t used = 0, cnt = nf < 32 ? nf : 32;
    for (size_t i = 0; i < cnt; i++) {
        names[i] = fields[i].name;
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);
        if (w > 0 && (size_t)w < sizeof(list) - used)
            used += (size_t)w;
    }
    const char *sug = v_suggest(k->str, names, cnt);
    if (sug)
        v_error(c, k, "unknown field '%s' (did you mean '%s'?)", k->str, sug);
    else
        v_error(c, k, "unknown field '%s' (allowed: %s)", k->str, list);
}

bool v_map(struct vctx *c, const struct ynode *n, const struct vfield *fields, size_t nf,
           void *obj, const char *what)
{
    if (n->kind != YN_MAP) {
        type_error(c, n, "a map", what);
        return false;
    }
    for (size_t i = 0; i < n->n / 2; i++) {
        const struct ynode *k = n->items[2 * i];
        if (!v_map_key_ok(c, n, i))
            continue;
        const struct vfield *f = NULL;
        for (size_t j = 0; j < nf && !f; j++)
            if (strcmp(fields[j].name, k->str) == 0)
                f = &fields[j];
        if (!f) {
            unknown_field(c, k, fields, nf);
            continue;
        }
        size_t mark = v_push(c, "%s%s", c->plen ? "." : "", f->name);
        f->fn(c, n->items[2 * i + 1], obj);
        v_pop(c, mark);
    }
    return true;
}
