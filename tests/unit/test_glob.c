/* Unit tests for policy/glob: separators, '*' vs '**', segment forms, case
 * folding, no-separator mode, limits and pathological patterns. */
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
    M("/usr/**", "/usr");
    N("/usr/**", "/usr2/x");
    M("/**", "/anything/at/all");
    M("/**", "/");
    M("**", "not even a path");
    M("/v1/**", "/v1");
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
    /* '**' inside a segment crosses separators */
    M("/a**z", "/a/b/c/z");
    /* three stars behave as two */
    M("/a/***", "/a/b/c");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal),         cmocka_unit_test(test_star_stays_in_segment),
        cmocka_unit_test(test_double_star),     cmocka_unit_test(test_case_fold),
        cmocka_unit_test(test_no_separator),    cmocka_unit_test(test_limits),
        cmocka_unit_test(test_pathological),    cmocka_unit_test(test_has_wildcard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
