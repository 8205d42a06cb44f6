/* Unit tests for the server's parsers: RFC 3339 times, resource limits,
 * signed-URL tokens, the API key compare. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "server/auth.h"
#include "server/limits.h"
#include "server/driver.h"
#include "server/timefmt.h"

static void test_time(void **st)
{
    int64_t ms;
    char out[40];
    assert_int_equal(timefmt_parse("2030-01-02T03:04:05Z", &ms), 0);
    timefmt_format(ms, out, sizeof(out));
    assert_string_equal(out, "2030-01-02T03:04:05.000Z");
    assert_int_equal(timefmt_parse("2030-01-02T05:04:05.5+02:00", &ms), 0);
    timefmt_format(ms, out, sizeof(out));
    assert_string_equal(out, "2030-01-02T03:04:05.500Z");
    assert_int_equal(timefmt_parse("2030-01-02 03:04:05z", &ms), 0);
    assert_int_equal(timefmt_parse("2030-01-02T03:04:05", &ms), -EINVAL); /* no zone */
    assert_int_equal(timefmt_parse("2030-13-02T03:04:05Z", &ms), -EINVAL);
    assert_int_equal(timefmt_parse("2030-01-02T03:04:05.Z", &ms), -EINVAL);
    assert_int_equal(timefmt_parse("2030-01-02T03:04:05+0200", &ms), -EINVAL);
    assert_int_equal(timefmt_parse("", &ms), -EINVAL);
}

static void test_limits(void **st)
{
    unsigned long long v;
    assert_int_equal(server_limits_cpu("500m", &v), 0);
    assert_int_equal(v, 500);
    assert_int_equal(server_limits_cpu("2", &v), 0);
    assert_int_equal(v, 2000);
    assert_int_equal(server_limits_cpu("0.25", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(server_limits_cpu("-1", &v), -EINVAL);
    assert_int_equal(server_limits_cpu("1x", &v), -EINVAL);
    assert_int_equal(server_limits_memory("512Mi", &v), 0);
    assert_int_equal(v, 512ull << 20);
    assert_int_equal(server_limits_memory("1G", &v), 0);
    assert_int_equal(v, 1000000000ull);
    assert_int_equal(server_limits_memory("100", &v), -EINVAL); /* below 4096 */
    assert_int_equal(server_limits_memory("-5Mi", &v), -EINVAL);
    assert_int_equal(server_limits_memory("99999999999999Ti", &v), -EINVAL);
}

static void test_auth(void **st)
{
    char tok[AUTH_TOKEN_MAX + 64];
    assert_true(auth_key_equal("secret-key", "secret-key"));
    assert_false(auth_key_equal("secret-key", "secret-kez"));
    assert_false(auth_key_equal("secret-key", "secret-key-longer"));
    assert_false(auth_key_equal("secret-key", ""));
    assert_int_equal(auth_sign("k", "sbx", 44772, 2000, tok, sizeof(tok)), 0);
    assert_int_equal(auth_verify("k", "sbx", 44772, tok, strlen(tok), 1000), 0);
    assert_int_equal(auth_verify("k", "sbx", 44772, tok, strlen(tok), 3000), -ETIMEDOUT);
    assert_int_equal(auth_verify("k", "sbx", 8080, tok, strlen(tok), 1000), -EACCES);
    assert_int_equal(auth_verify("k", "other", 44772, tok, strlen(tok), 1000), -EACCES);
    assert_int_equal(auth_verify("k2", "sbx", 44772, tok, strlen(tok), 1000), -EACCES);
    tok[0] = '3'; /* a later expiry does not keep the signature */
    assert_int_equal(auth_verify("k", "sbx", 44772, tok, strlen(tok), 1000), -EACCES);
    assert_int_equal(auth_verify("k", "sbx", 44772, "garbage", 7, 1000), -EACCES);
}

static void test_states(void **st)
{
    enum sbx_state s;
    for (int i = 0; i < SBX_NSTATES; i++) {
        assert_int_equal(sbx_state_parse(sbx_state_name((enum sbx_state)i), &s), 0);
        assert_int_equal(s, i);
    }
    assert_int_equal(sbx_state_parse("running", &s), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
