/* policy/glob: see glob.h.
 *
 * A bit-parallel NFA simulation: cur holds every subject offset j such that
 * the pattern consumed so far matches subject[0..j). Each pattern token maps
 * cur to next in one pass over the subject, so there is no backtracking and
 * no pathological input: the cost is tokens x subject length. */
#include "policy/glob.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

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

/* Reads the token at pattern[*p], advancing *p. */
static enum tok next_tok(const char *pat, size_t *p, char sep)
{
    size_t i = *p;
    if (pat[i] != '*') {
        if (sep && pat[i] == sep && pat[i + 1] == '*' && pat[i + 2] == '*') {
            size_t k = i + 1;
            while (pat[k] == '*')
                k++;
            if (pat[k] == '\0') {
                *p = k;
                return TOK_SEP_DSTAR_END;
            }
        }
        *p = i + 1;
        return TOK_LIT;
    }
    size_t k = i;
    while (pat[k] == '*')
        k++;
    *p = k;
    if (k - i == 1 && sep)
        return TOK_STAR;
    if (sep && pat[k] == sep && (i == 0 || pat[i - 1] == sep)) {
        *p = k + 1;
        return TOK_DSTAR_SEG;
    }
    return TOK_DSTAR;
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
            v = bit_get(cur, j) || armed;
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
