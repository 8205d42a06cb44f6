/* Unit tests for policy/glob: separators, '*' vs '**', segment forms, case
 * folding, no-separator mode, limits and pathological patterns. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "policy/glob.h"

#define M(p, s) assert_true(glob_match((p), (s), '/', false))
#define N(p, s) assert_false(glob_match((p), (s), '/', false))

static void test_literal(void **state)
{
    (void)state;
    M("/usr/bin/curl", "/usr/bin/curl");
    N("/usr/bin/curl", "/usr/bin/curl2");
    N("/usr/bin/curl", "/usr/bin/cur");
    N("/usr/bin/curl", "/USR/bin/curl");
    M("", "");
    N("", "x");
    /* '?', '[' and '{' are literal */
    M("/a?[b]{c}", "/a?[b]{c}");
    N("/a?", "/ab");
}

static void test_star_stays_in_segment(void **state)
{
    (void)state;
    M("/usr/bin/*", "/usr/bin/node");
    N("/usr/bin/*", "/usr/bin/sub/node");
    M("/usr/bin/python3*", "/usr/bin/python3");
    M("/usr/bin/python3*", "/usr/bin/python3.11");
    N("/usr/bin/python3*", "/usr/bin/python2");
    M("/repos/*/issues", "/repos/cordon/issues");
    N("/repos/*/issues", "/repos/a/b/issues");
    M("/a/*x*y*/z", "/a/1x2y3/z");
    N("/a/*x*y*/z", "/a/1y2x3/z");
}

static void test_double_star(void **state)
{
    (void)state;
    M("/usr/**", "/usr/bin/x");
    M("/usr/**", "/usr/a/b/c/d");
    N("/usr/**", "/usr"); /* globset needs the trailing separator (OpenShell) */
    N("/usr/**", "/usr2/x");
    M("/**", "/anything/at/all");
    M("/**", "/");
    M("**", "not even a path");
    N("/v1/**", "/v1");
    M("/v1/**", "/v1/");
    M("/v1/**", "/v1/a/b");
    N("/v1/**", "/v10");
    N("/v1/**", "/v10/a");
    /* "**" + sep: zero or more whole segments */
    M("/sandbox/.uv/python/**/python*", "/sandbox/.uv/python/cpython-3.12/bin/python3.12");
    M("/sandbox/.uv/python/**/python*", "/sandbox/.uv/python/python3");
    N("/sandbox/.uv/python/**/python*", "/sandbox/.uv/python/cpython/bin/ruby");
    M("/**/info/refs*", "/info/refs");
    M("/**/info/refs*", "/org/repo.git/info/refs");
    N("/**/info/refs*", "/org/repo.git/xinfo/refs");
    /* '**' not a whole segment is '*' (globset), as are three stars */
    N("/a**z", "/a/b/c/z");
    M("/a**z", "/abcz");
    N("/v1**", "/v1/x");
    N("/**x", "/a/x");
    M("/**x", "/ax");
    N("/a/***", "/a/b/c");
    M("/a/***", "/a/bc");
    M("/**/**", "/a/b");
}

static void test_case_fold(void **state)
{
    (void)state;
    assert_true(glob_match("api.example.com", "API.Example.COM", '.', true));
    assert_false(glob_match("api.example.com", "API.Example.COM", '.', false));
    assert_true(glob_match("*.example.com", "API.EXAMPLE.COM", '.', true));
    assert_false(glob_match("*.example.com", "a.b.example.com", '.', true));
    assert_true(glob_match("**.example.com", "a.b.example.com", '.', true));
}

static void test_no_separator(void **state)
{
    (void)state;
    /* OpenShell's query globs use '.' as separator; ours use none */
    assert_true(glob_match("foo-*", "foo-1.2", '\0', false));
    assert_true(glob_match("1.*", "1.2.3", '\0', false));
    assert_true(glob_match("v1.*", "v1.2.3", '\0', false));
    assert_false(glob_match("v1.*", "v2.0", '\0', false));
    assert_true(glob_match("*", "", '\0', false));
    assert_true(glob_match("a*/b", "a/x/y/b", '\0', false));
}

static void test_limits(void **state)
{
    (void)state;
    char *s = malloc(GLOB_MAX_SUBJECT + 2);
    assert_non_null(s);
    memset(s, 'a', GLOB_MAX_SUBJECT);
    s[0] = '/';
    s[GLOB_MAX_SUBJECT] = '\0';
    M("/**", s);
    M("/*", s);
    /* one byte more than the limit never matches */
    s[GLOB_MAX_SUBJECT] = 'a';
    s[GLOB_MAX_SUBJECT + 1] = '\0';
    N("/**", s);
    free(s);
}

/* A backtracking matcher takes exponential time here; ours is linear in
 * the pattern length times the subject length. */
static void test_pathological(void **state)
{
    (void)state;
    char subject[8001];
    memset(subject, 'a', 8000);
    subject[8000] = '\0';
    clock_t t0 = clock();
    assert_false(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", subject, '/', false));
    assert_false(glob_match("**a**a**a**a**a**a**a**a**a**b", subject, '/', false));
    assert_true(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a", subject, '/', false));
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 1.0);
}

static void test_has_wildcard(void **state)
{
    (void)state;
    assert_true(glob_has_wildcard("/usr/*"));
    assert_true(glob_has_wildcard("**"));
    assert_false(glob_has_wildcard("/usr/bin/curl"));
    assert_false(glob_has_wildcard("/a?[b]"));
}

#define VM(p, s) assert_true(glob_value_match((p), (s)))
#define VN(p, s) assert_false(glob_value_match((p), (s)))

/* OpenShell's value globs (OPA glob.match, '.' the delimiter). */
static void test_value_star_stops_at_dot(void **state)
{
    (void)state;
    VM("v1*", "v1");
    VM("v1*", "v1-2");
    VN("v1*", "v1.2");
    VN("*", "a.b");
    VM("*", "");
    VM("*", "a/b c"); /* '/' is no delimiter here */
    VM("v1.*", "v1.2");
    VN("v1.*", "v1.2.3");
    VM("v1.*.*", "v1.2.3");
    VM("*.json", "a.json");
    VN("*.json", "a.b.json");
    VM("a*b", "ab");
    VN("a*b", "a.b");
}

static void test_value_double_star(void **state)
{
    (void)state;
    VM("**", "a.b.c");
    VM("**", "");
    VM("v1.**", "v1.2.3");
    VM("v1.**", "v1.");
    VN("v1.**", "v1"); /* no segment forms: the '.' must be there */
    VM("**.json", "a.b.json");
    VM("**.json", ".json");
    VN("**.json", "json");
    VN("a***", "a.b"); /* three stars: '*' */
    VN("a**b", "a.x.b"); /* '**' not a whole segment: '*' */
    VM("a**b", "axb");
    VN("**b", "a.b");
    VM("a.**.b", "a.x.y.b");
    VN("a.**.b", "a.b"); /* regorus matches this one: stricter */
}

static void test_value_single_and_classes(void **state)
{
    (void)state;
    VM("v?", "v1");
    VN("v?", "v.");
    VN("v?", "v");
    VN("v?", "v12");
    VM("caf?", "caf\xc3\xa9");   /* one character, two bytes */
    VN("caf??", "caf\xc3\xa9");  /* never half a character */
    VM("x?", "x\xff");           /* a byte that starts no character counts as one */
    VM("[abc]1", "b1");
    VN("[abc]1", "d1");
    VN("[abc]", "[abc]");
    VM("[a-c]", "c");
    VN("[a-c]", "d");
    VM("[!a-c]", "d");
    VN("[!a-c]", ".");            /* never the delimiter */
    VM("[^a-c]", "d");            /* '^' negates as '!' does */
    VN("[^a]", "a");
    VM("[^a]", "^");
    VM("[!a]", "/");
    VN("[!a-c]", "b");
    VM("[!a]", "\xc3\xa9");
    VM("x]", "x]");               /* "]" and "," outside a class: literal */
    VM("a]b,c", "a]b,c");
    VM("\\*", "*");
    VN("\\*", "x");
    VM("a\\?", "a?");
    VN("a\\?", "ab");
    VM("\\[x]", "[x]");
}

static void test_value_check(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_int_equal(glob_value_check("v1.*", &why), 0);
    assert_int_equal(glob_value_check("[a-z]?[!x]\\{", &why), 0);
    const char *bad[] = {"{a,b}", "x[", "[]", "[!]", "[a-]", "[z-a]", "[a\\]]", "[\xc3\xa9]",
                         "x\\", "[a-z0-9]", "[-a]", "[.]", "[a.]", "[+-0]", "a}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(glob_value_check(bad[i], &why), -EINVAL);
        assert_non_null(why);
        VN(bad[i], bad[i]); /* a refused pattern never matches */
    }
}

static void test_value_limits(void **state)
{
    (void)state;
    static char subject[GLOB_MAX_SUBJECT + 2];
    memset(subject, 'a', GLOB_MAX_SUBJECT);
    subject[GLOB_MAX_SUBJECT] = '\0';
    VM("**", subject);
    VM("*", subject);
    assert_false(glob_value_match("?*?*?*?*?*?*b", subject));
    subject[GLOB_MAX_SUBJECT] = 'a';
    subject[GLOB_MAX_SUBJECT + 1] = '\0';
    VN("**", subject);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal),         cmocka_unit_test(test_star_stays_in_segment),
        cmocka_unit_test(test_double_star),     cmocka_unit_test(test_case_fold),
        cmocka_unit_test(test_no_separator),    cmocka_unit_test(test_limits),
        cmocka_unit_test(test_pathological),    cmocka_unit_test(test_has_wildcard),
        cmocka_unit_test(test_value_star_stops_at_dot), cmocka_unit_test(test_value_double_star),
        cmocka_unit_test(test_value_single_and_classes), cmocka_unit_test(test_value_check),
        cmocka_unit_test(test_value_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
