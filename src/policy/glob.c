/* policy/glob: see glob.h.
 *
 * A bit-parallel NFA simulation: cur holds every subject offset j such that
 * the pattern consumed so far matches subject[0..j). Each pattern token maps
 * cur to next in one pass over the subject, so there is no backtracking and
 * no pathological input: the cost is tokens x subject length. */
#include "policy/glob.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/utf8.h"

#include "core/banned.h"

#define WORDS ((GLOB_MAX_SUBJECT + 1 + 63) / 64)

enum tok {
    TOK_LIT,      /* one literal character */
    TOK_STAR,     /* '*': a run without sep */
    TOK_DSTAR,    /* '**': any run */
    TOK_DSTAR_SEG, /* '**' + sep after a sep or at the start: whole segments */
    TOK_SEP_DSTAR_END, /* sep + '**' ending the pattern: "" or sep + anything */
};

struct bits {
    uint64_t w[WORDS];
};

static inline bool bit_get(const struct bits *b, size_t i) { return (b->w[i / 64] >> (i % 64)) & 1u; }
static inline void bit_set(struct bits *b, size_t i) { b->w[i / 64] |= (uint64_t)1 << (i % 64); }

static inline char fold(char c, bool case_fold)
{
    return case_fold && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Reads the token at pattern[*p], advancing *p. With a separator, "**" is
 * special only as a whole segment (globset's rule, which OpenShell's Rego
 * engine uses): elsewhere, and as three or more stars, it is '*'. */
static enum tok next_tok(const char *pat, size_t *p, char sep)
{
    size_t i = *p;
    if (pat[i] != '*') {
        if (sep && pat[i] == sep && pat[i + 1] == '*' && pat[i + 2] == '*' && pat[i + 3] == '\0') {
            *p = i + 3;
            return TOK_SEP_DSTAR_END;
        }
        *p = i + 1;
        return TOK_LIT;
    }
    size_t k = i;
    while (pat[k] == '*')
        k++;
    *p = k;
    if (!sep)
        return TOK_DSTAR;
    if (k - i != 2 || (i != 0 && pat[i - 1] != sep))
        return TOK_STAR;
    if (pat[k] == sep) {
        *p = k + 1;
        return TOK_DSTAR_SEG;
    }
    return pat[k] == '\0' ? TOK_DSTAR : TOK_STAR;
}

/* Applies one token: next = step(cur). Returns false when next is empty. */
static bool step(enum tok t, char lit, const char *s, size_t n, char sep, bool cf,
                 const struct bits *cur, struct bits *next)
{
    size_t words = n / 64 + 1;
    bool any = false, armed = false, seen = false;
    memset(next->w, 0, words * sizeof(uint64_t));
    for (size_t j = 0; j <= n; j++) {
        bool v = false;
        switch (t) {
        case TOK_LIT:
            v = j > 0 && bit_get(cur, j - 1) && fold(s[j - 1], cf) == fold(lit, cf);
            break;
        case TOK_STAR:
            v = bit_get(cur, j) || (j > 0 && bit_get(next, j - 1) && s[j - 1] != sep);
            break;
        case TOK_DSTAR:
            v = bit_get(cur, j) || (j > 0 && bit_get(next, j - 1));
            break;
        case TOK_DSTAR_SEG:
            v = bit_get(cur, j) || (j > 0 && s[j - 1] == sep && seen);
            seen = seen || bit_get(cur, j);
            break;
        case TOK_SEP_DSTAR_END:
            v = armed;
            armed = armed || (j < n && bit_get(cur, j) && s[j] == sep);
            break;
        }
        if (v) {
            bit_set(next, j);
            any = true;
        }
    }
    return any;
}

bool glob_match(const char *pattern, const char *subject, char sep, bool case_fold)
{
    struct bits a, b;
    struct bits *cur = &a, *next = &b;
    size_t n = strnlen(subject, GLOB_MAX_SUBJECT + 1);
    size_t p = 0;

    if (n > GLOB_MAX_SUBJECT)
        return false;
    if (!glob_has_wildcard(pattern)) {
        if (!case_fold)
            return strcmp(pattern, subject) == 0;
        return strlen(pattern) == n && strncasecmp(pattern, subject, n) == 0;
    }
    memset(cur->w, 0, (n / 64 + 1) * sizeof(uint64_t));
    bit_set(cur, 0);
    while (pattern[p]) {
        char lit = pattern[p];
        enum tok t = next_tok(pattern, &p, sep);
        if (!step(t, lit, subject, n, sep, case_fold, cur, next))
            return false;
        struct bits *tmp = cur;
        cur = next;
        next = tmp;
    }
    return bit_get(cur, n);
}

bool glob_has_wildcard(const char *pattern) { return strchr(pattern, '*') != NULL; }

/* ---- value globs (OpenShell: OPA glob.match with '.' as the delimiter) ---- */

enum vkind {
    V_LIT,   /* one literal byte */
    V_STAR,  /* '*': a run without '.' */
    V_DSTAR, /* '**' as a whole '.'-segment: any run */
    V_CHAR,  /* one character other than '.', in (or, neg, not in) an ASCII set */
};

struct vtok {
    enum vkind kind;
    char lit;
    bool neg;
    uint64_t set[2]; /* ASCII members */
};

static void vset_add(struct vtok *t, unsigned char c) { t->set[c / 64] |= (uint64_t)1 << (c % 64); }
static bool vset_has(const struct vtok *t, unsigned char c)
{
    return c < 128 && ((t->set[c / 64] >> (c % 64)) & 1u);
}

/* Printable ASCII other than the characters a class cannot hold here. */
static bool vclass_member_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("\\-[].", c);
}

/* Reads a class "[...]" at pat[*p]. */
static int vclass(const char *pat, size_t *p, struct vtok *t, const char **why)
{
    size_t i = *p + 1;
    t->kind = V_CHAR;
    if (pat[i] == '!' || pat[i] == '^') {
        t->neg = true;
        i++;
    }
    if (pat[i] && pat[i + 1] == '-') {
        unsigned char lo = (unsigned char)pat[i], hi = (unsigned char)pat[i + 2];
        if (!vclass_member_ok(lo) || !vclass_member_ok(hi) || pat[i + 3] != ']') {
            *why = "a range class is '[a-z]' or '[!a-z]' (one range of printable ASCII)";
            return -EINVAL;
        }
        if (lo > hi) {
            *why = "an inverted range class (write the lower bound first: '[a-z]')";
            return -EINVAL;
        }
        if (lo <= '/' && hi >= '.') {
            *why = "a range class spanning '.' or '/' (list the characters instead)";
            return -EINVAL;
        }
        for (unsigned c = lo; c <= hi; c++)
            vset_add(t, (unsigned char)c);
        *p = i + 4;
        return 0;
    }
    size_t start = i;
    for (; pat[i] != ']'; i++) {
        if (!pat[i]) {
            *why = "an unclosed '[' (close the class with ']', or write \\[ for a literal '[')";
            return -EINVAL;
        }
        if (!vclass_member_ok((unsigned char)pat[i])) {
            *why = "a class lists printable ASCII other than '\\', '-', '[', ']' and '.' "
                   "(use '[a-z]' alone for a range; '.' is the delimiter)";
            return -EINVAL;
        }
        vset_add(t, (unsigned char)pat[i]);
    }
    if (i == start) {
        *why = "an empty class '[]' matches nothing";
        return -EINVAL;
    }
    *p = i + 1;
    return 0;
}

/* Reads the token at pat[*p], advancing *p. */
static int vnext(const char *pat, size_t *p, struct vtok *t, const char **why)
{
    size_t i = *p, k;
    memset(t, 0, sizeof(*t));
    switch (pat[i]) {
    case '*':
        for (k = i; pat[k] == '*'; k++)
            ;
        t->kind = k - i == 2 && (i == 0 || pat[i - 1] == '.') && (pat[k] == '\0' || pat[k] == '.')
                      ? V_DSTAR
                      : V_STAR;
        *p = k;
        return 0;
    case '?':
        t->kind = V_CHAR;
        t->neg = true;
        *p = i + 1;
        return 0;
    case '[':
        return vclass(pat, p, t, why);
    case '{':
    case '}':
        *why = "alternatives '{a,b}' are not supported (list each value as its own glob, or "
               "write \\{ and \\} for literal braces)";
        return -EINVAL;
    case '\\':
        if (!pat[i + 1]) {
            *why = "a trailing backslash escapes nothing (write \\\\ for a literal backslash)";
            return -EINVAL;
        }
        t->kind = V_LIT;
        t->lit = pat[i + 1];
        *p = i + 2;
        return 0;
    default:
        t->kind = V_LIT;
        t->lit = pat[i];
        *p = i + 1;
        return 0;
    }
}

int glob_value_check(const char *pattern, const char **why)
{
    struct vtok t;
    size_t p = 0;
    while (pattern[p])
        if (vnext(pattern, &p, &t, why) < 0)
            return -EINVAL;
    return 0;
}

/* next = the offsets reachable from cur by one character (a UTF-8
 * sequence, or one byte that starts none) other than '.' in t's class. */
static bool vstep_char(const struct vtok *t, const char *s, size_t n, const struct bits *cur,
                       struct bits *next)
{
    const unsigned char *u = (const unsigned char *)s;
    bool any = false;
    memset(next->w, 0, (n / 64 + 1) * sizeof(uint64_t));
    for (size_t j = 0; j < n; j++) {
        if (!bit_get(cur, j) || u[j] == '.')
            continue;
        size_t len = utf8_seq_len(u + j, n - j);
        if (len == 0)
            len = 1;
        bool in = len == 1 && vset_has(t, u[j]);
        if (in != t->neg) {
            bit_set(next, j + len);
            any = true;
        }
    }
    return any;
}

bool glob_value_match(const char *pattern, const char *subject)
{
    struct bits a, b;
    struct bits *cur = &a, *next = &b;
    size_t n = strnlen(subject, GLOB_MAX_SUBJECT + 1);
    size_t p = 0;
    const char *why;

    if (n > GLOB_MAX_SUBJECT || glob_value_check(pattern, &why) < 0)
        return false;
    if (!strpbrk(pattern, "*?[\\"))
        return strcmp(pattern, subject) == 0;
    memset(cur->w, 0, (n / 64 + 1) * sizeof(uint64_t));
    bit_set(cur, 0);
    while (pattern[p]) {
        struct vtok t;
        bool live = false;
        if (vnext(pattern, &p, &t, &why) < 0)
            return false;
        switch (t.kind) {
        case V_LIT:
            live = step(TOK_LIT, t.lit, subject, n, '.', false, cur, next);
            break;
        case V_STAR:
            live = step(TOK_STAR, '*', subject, n, '.', false, cur, next);
            break;
        case V_DSTAR:
            live = step(TOK_DSTAR, '*', subject, n, '.', false, cur, next);
            break;
        case V_CHAR:
            live = vstep_char(&t, subject, n, cur, next);
            break;
        }
        if (!live)
            return false;
        struct bits *tmp = cur;
        cur = next;
        next = tmp;
    }
    return bit_get(cur, n);
}
