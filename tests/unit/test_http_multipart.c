/* Unit tests for http/multipart (streaming multipart/form-data), and
 * execd/files' Range and path parsers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "execd/files.h"
#include "http/multipart.h"

struct seen {
    char log[4096];
    size_t len;
    int refuse_part;
};

static void put(struct seen *s, const char *p, size_t n)
{
    assert_true(s->len + n < sizeof(s->log));
    memcpy(s->log + s->len, p, n);
    s->len += n;
    s->log[s->len] = '\0';
}

static int on_part(const struct http_mp_part *p, void *data)
{
    struct seen *s = data;
    char b[512];
    int n = snprintf(b, sizeof(b), "<%s|%s|%s>", p->name, p->filename, p->content_type);
    put(s, b, (size_t)n);
    return s->refuse_part ? -EPERM : 0;
}

static int on_data(const uint8_t *p, size_t n, void *data)
{
    put(data, (const char *)p, n);
    return 0;
}

static int on_end(void *data)
{
    put(data, "</>", 3);
    return 0;
}

static const struct http_mp_cbs CBS = {on_part, on_data, on_end};

/* Parses body fed in pieces of `step` bytes; returns feed/finish result. */
static int run(const char *ctype, const char *body, size_t len, size_t step, struct seen *s)
{
    struct http_multipart m;
    const char *why = NULL;
    memset(s->log, 0, sizeof(s->log));
    s->len = 0;
    int r = http_multipart_init(&m, ctype, &CBS, s, &why);
    if (r < 0)
        return r;
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        r = http_multipart_feed(&m, (const uint8_t *)body + i, n);
        if (r < 0)
            return r;
    }
    return http_multipart_finish(&m);
}

static const char CT[] = "multipart/form-data; boundary=XyZ";
static const char BODY[] = "preamble\r\n--XyZ\r\n"
                           "Content-Disposition: form-data; name=\"metadata\"; filename=\"m\"\r\n"
                           "Content-Type: application/json\r\n\r\n"
                           "{\"path\":\"/a\"}\r\n--XyZ  \r\n"
                           "content-disposition: form-data; name=file; filename=\"a\\\"b\"\r\n\r\n"
                           "\r\n--Xy\r\r\n--XyY-not-yet\r\n\r\n--XyZ--\r\nepilogue";

static void test_parts_any_split(void **state)
{
    struct seen s = {0};
    (void)state;
    const char *want = "<metadata|m|application/json>{\"path\":\"/a\"}</>"
                       "<file|a\"b|>\r\n--Xy\r\r\n--XyY-not-yet\r\n</>";
    for (size_t step = 1; step <= sizeof(BODY); step++) {
        assert_int_equal(run(CT, BODY, sizeof(BODY) - 1, step, &s), 0);
        assert_string_equal(s.log, want);
    }
}

static void test_body_starts_with_delimiter(void **state)
{
    struct seen s = {0};
    static const char b[] = "--XyZ\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n--XyZ--";
    (void)state;
    assert_int_equal(run(CT, b, sizeof(b) - 1, 3, &s), 0);
    assert_string_equal(s.log, "<x||>v</>");
}

static void test_bad_inputs(void **state)
{
    struct seen s = {0};
    (void)state;
    static const char *const bad_ct[] = {
        NULL, "text/plain", "multipart/form-data", "multipart/form-data; boundary=",
        "multipart/form-data; boundary=a\"b", "multipart/form-datax; boundary=a",
        "multipart/form-data; boundary=\"ends in space \"",
        "multipart/form-data; boundary=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    for (size_t i = 0; i < sizeof(bad_ct) / sizeof(bad_ct[0]); i++)
        assert_int_equal(run(bad_ct[i], "", 0, 1, &s), -EINVAL);
    static const char *const bad_body[] = {
        "",                                                     /* no delimiter */
        "--XyZ\r\nContent-Disposition: form-data; name=x\r\n\r\nv", /* no close */
        "--XyZ\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n--XyZ--", /* bare LF */
        "--XyZ\r\nContent-Disposition: form-data; name=x\n\r\n\r\nv\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: attachment; name=x\r\n\r\nv\r\n--XyZ--",
        "--XyZ\r\nContent-Type: text/plain\r\n\r\nv\r\n--XyZ--",      /* no disposition */
        "--XyZ\r\nContent-Disposition: form-data; filename=x\r\n\r\nv\r\n--XyZ--", /* no name */
        "--XyZ\r\nContent-Disposition: form-data; name=\"x\r\n\r\nv\r\n--XyZ--",
        "--XyZ\r\n Content-Disposition: form-data; name=x\r\n\r\nv\r\n--XyZ--", /* fold */
        "--XyZ\r\nContent-Disposition : form-data; name=x\r\n\r\nv\r\n--XyZ--",
        "--XyZ\r\n\r\nv\r\n--XyZ--",                                   /* empty head */
        "--XyZx\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data; name=x; name=y\r\n\r\nv\r\n--XyZ--",
    };
    for (size_t i = 0; i < sizeof(bad_body) / sizeof(bad_body[0]); i++)
        assert_int_equal(run(CT, bad_body[i], strlen(bad_body[i]), 2, &s), -EINVAL);
    /* a head over the limit */
    char *big = malloc(HTTP_MP_HEAD_MAX + 200);
    assert_non_null(big);
    int n = snprintf(big, 200, "--XyZ\r\nContent-Disposition: form-data; name=x\r\nX-Pad: ");
    memset(big + n, 'a', HTTP_MP_HEAD_MAX);
    assert_int_equal(run(CT, big, (size_t)n + HTTP_MP_HEAD_MAX, 4096, &s), -EINVAL);
    free(big);
    /* the receiver refuses a part */
    s.refuse_part = 1;
    assert_true(run(CT, BODY, sizeof(BODY) - 1, 7, &s) < 0);
}

static void test_range(void **state)
{
    uint64_t a, l;
    (void)state;
    assert_int_equal(files_range_parse("bytes=0-0", 10, &a, &l), 1);
    assert_true(a == 0 && l == 1);
    assert_int_equal(files_range_parse("bytes=3-", 10, &a, &l), 1);
    assert_true(a == 3 && l == 7);
    assert_int_equal(files_range_parse("bytes=-4", 10, &a, &l), 1);
    assert_true(a == 6 && l == 4);
    assert_int_equal(files_range_parse("bytes=-40", 10, &a, &l), 1);
    assert_true(a == 0 && l == 10);
    assert_int_equal(files_range_parse("bytes=8-99", 10, &a, &l), 1);
    assert_true(a == 8 && l == 2);
    assert_int_equal(files_range_parse("bytes=10-, 2-3", 10, &a, &l), 1);
    assert_true(a == 2 && l == 2);
    assert_int_equal(files_range_parse("bytes=10-", 10, &a, &l), 0);
    assert_int_equal(files_range_parse("bytes=-0", 10, &a, &l), 0);
    assert_int_equal(files_range_parse("bytes=0-", 0, &a, &l), 0);
    static const char *const bad[] = {"bytes=", "bytes=-", "bytes=5-2", "bits=1-2", "bytes=1",
                                      "bytes=a-b", "bytes=1-2;", "bytes=99999999999999999999-",
                                      "bytes=1-2,,"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(files_range_parse(bad[i], 10, &a, &l), -EINVAL);
}

static void test_path_clean(void **state)
{
    char out[4096];
    const char *why;
    (void)state;
    assert_int_equal(files_path_clean("/a//b/./c/../d/", 15, out, sizeof(out), &why), 0);
    assert_string_equal(out, "/a/b/d");
    assert_int_equal(files_path_clean("/../..", 6, out, sizeof(out), &why), 0);
    assert_string_equal(out, "/");
    setenv("HOME", "/home/u", 1);
    assert_int_equal(files_path_clean("~/x", 3, out, sizeof(out), &why), 0);
    assert_string_equal(out, "/home/u/x");
    assert_int_equal(files_path_clean("~user", 5, out, sizeof(out), &why), 0);
    assert_true(strcmp(out + strlen(out) - 6, "/~user") == 0); /* relative, not expanded */
    assert_int_equal(files_path_clean("", 0, out, sizeof(out), &why), -EINVAL);
    assert_int_equal(files_path_clean("/a\0b", 4, out, sizeof(out), &why), -EINVAL);
    assert_non_null(strstr(why, "NUL"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parts_any_split), cmocka_unit_test(test_body_starts_with_delimiter),
        cmocka_unit_test(test_bad_inputs),      cmocka_unit_test(test_range),
        cmocka_unit_test(test_path_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
