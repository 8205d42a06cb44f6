/* Unit tests for identity/taint.c: which initial environments make a
 * process's binary identity meaningless. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "identity/identity_int.h"

static int check(const char *const *vars, char *out, size_t cap)
{
    char env[4096];
    size_t n = 0;
    for (size_t i = 0; vars[i]; i++) {
        size_t l = strlen(vars[i]);
        memcpy(env + n, vars[i], l + 1);
        n += l + 1;
    }
    out[0] = '\0';
    return identity_env_taint_check(env, n, out, cap);
}

static void test_tainted(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"LD_PRELOAD=/tmp/x.so", "LD_PRELOAD", NULL},
        {"LD_AUDIT=a.so", "LD_AUDIT", NULL},
        {"NODE_OPTIONS=--require /tmp/x.js", "NODE_OPTIONS", NULL},
        {"NODE_OPTIONS=--max-old-space-size=64 -r ./x.js", "NODE_OPTIONS", NULL},
        {"NODE_OPTIONS=--import=./x.mjs", "NODE_OPTIONS", NULL},
        {"NODE_OPTIONS=--loader ./l.mjs", "NODE_OPTIONS", NULL},
        {"NODE_OPTIONS=--experimental-loader=./l.mjs", "NODE_OPTIONS", NULL},
        {"BUN_OPTIONS=--preload ./p.ts", "BUN_OPTIONS", NULL},
        {"JAVA_TOOL_OPTIONS=-javaagent:/tmp/a.jar", "JAVA_TOOL_OPTIONS", NULL},
        {"JDK_JAVA_OPTIONS=-Xmx1g -agentpath:/tmp/a.so", "JDK_JAVA_OPTIONS", NULL},
        {"PERL5OPT=-MEvil", "PERL5OPT", NULL},
        {"RUBYOPT=-rextra", "RUBYOPT", NULL},
        {"RUBYOPT=-W0 -r ./x.rb", "RUBYOPT", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *vars[] = {"PATH=/usr/bin", cases[i][0], "HOME=/x", NULL};
        char out[32];
        assert_int_equal(check(vars, out, sizeof(out)), 1);
        assert_string_equal(out, cases[i][1]);
    }
}

static void test_clean(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "LD_PRELOAD=",                              /* empty: nothing preloaded */
        "NODE_OPTIONS=--max-old-space-size=64",
        "NODE_OPTIONS=--requireX",                  /* not the flag */
        "BUN_OPTIONS=--smol",
        "JAVA_TOOL_OPTIONS=-Xmx512m -Dfile.encoding=UTF-8",
        "RUBYOPT=-W0",
        "PYTHONSTARTUP=/tmp/s.py",                  /* interactive only */
        "MY_LD_PRELOAD=/x.so",
        "LD_LIBRARY_PATH=/opt/lib",
        "=LD_PRELOAD",
        "NOEQUALS",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *vars[] = {"PATH=/usr/bin", cases[i], NULL};
        char out[32];
        assert_int_equal(check(vars, out, sizeof(out)), 0);
    }
}

static void test_unterminated(void **state)
{
    (void)state;
    const char env[] = {'L', 'D', '_', 'P', 'R', 'E', 'L', 'O', 'A', 'D', '=', 'x'};
    char out[32];
    assert_int_equal(identity_env_taint_check(env, sizeof(env), out, sizeof(out)), 1);
    assert_int_equal(identity_env_taint_check(env, 5, out, sizeof(out)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tainted),
        cmocka_unit_test(test_clean),
        cmocka_unit_test(test_unterminated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
