/* Unit tests for tls/peek: the tunnel classifier and the ClientHello SNI
 * parser, on real hellos captured from OpenSSL clients and on hand-built
 * malformed ones. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls/tls.h"

/* ---- capturing a real ClientHello ---- */

/* Starts an OpenSSL client handshake on one end of a socketpair and returns
 * the bytes it sent (the first flight: the ClientHello records). sni may be
 * NULL. alpn may be NULL. */
static size_t capture_hello(const char *sni, bool alpn, uint8_t *out, size_t cap)
{
    int sv[2];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl;
    ssize_t n;
    size_t total = 0;

    assert_non_null(ctx);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
    ssl = SSL_new(ctx);
    assert_non_null(ssl);
    SSL_set_fd(ssl, sv[0]);
    if (sni)
        assert_int_equal(SSL_set_tlsext_host_name(ssl, sni), 1);
    if (alpn)
        assert_int_equal(SSL_set_alpn_protos(ssl, (const unsigned char *)"\x02h2\x08http/1.1", 12), 0);
    assert_int_equal(SSL_connect(ssl), -1);
    assert_int_equal(SSL_get_error(ssl, -1), SSL_ERROR_WANT_READ);
    while ((n = read(sv[1], out + total, cap - total)) > 0)
        total += (size_t)n;
    assert_true(total > 0);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(sv[0]);
    close(sv[1]);
    ERR_clear_error();
    return total;
}

/* Re-frames a single-record hello into records of at most frag bytes. */
static size_t refragment(const uint8_t *in, size_t len, size_t frag, uint8_t *out, size_t cap)
{
    size_t body = (size_t)in[3] << 8 | in[4];
    size_t o = 0;
    assert_int_equal(body + 5, len);
    for (size_t i = 5; i < len; i += frag) {
        size_t k = len - i < frag ? len - i : frag;
        assert_true(o + 5 + k <= cap);
        out[o++] = 0x16;
        out[o++] = in[1];
        out[o++] = in[2];
        out[o++] = (uint8_t)(k >> 8);
        out[o++] = (uint8_t)k;
        memcpy(out + o, in + i, k);
        o += k;
    }
    return o;
}

/* ---- classifier ---- */

static void cls(const char *s, size_t len, enum tls_peek_kind want)
{
    enum tls_peek_kind got = tls_peek_classify(s, len);
    if (got != want)
        fail_msg("classify(%.*s) = %s, want %s", (int)len, s, tls_peek_kind_name(got),
                 tls_peek_kind_name(want));
}
#define CLS(lit, want) cls(lit, sizeof(lit) - 1, want)

static void test_classify(void **state)
{
    uint8_t hello[4096];
    size_t n;

    (void)state;
    CLS("", TLS_PEEK_NEED_MORE);
    CLS("G", TLS_PEEK_NEED_MORE);
    CLS("GET", TLS_PEEK_NEED_MORE);
    CLS("GET ", TLS_PEEK_HTTP1);
    CLS("GET / HTTP/1.1\r\nHost: x\r\n\r\n", TLS_PEEK_HTTP1);
    CLS("POST /x HTTP/1.1\r\n", TLS_PEEK_HTTP1);
    CLS("CONNECT a:443 HTTP/1.1\r\n", TLS_PEEK_HTTP1);
    CLS("M-SEARCH * HTTP/1.1\r\n", TLS_PEEK_HTTP1);
    CLS("get / HTTP/1.1\r\n", TLS_PEEK_HTTP1); /* case is the HTTP parser's business */
    CLS(" GET /", TLS_PEEK_OTHER);
    CLS("\r\nGET /", TLS_PEEK_OTHER);
    CLS("GET\t/", TLS_PEEK_OTHER);
    CLS("GE(T /", TLS_PEEK_OTHER);
    CLS("ABCDEFGHIJKLMNOPQRST", TLS_PEEK_NEED_MORE);    /* 20: could still be a method */
    CLS("ABCDEFGHIJKLMNOPQRST ", TLS_PEEK_HTTP1);
    CLS("ABCDEFGHIJKLMNOPQRSTU", TLS_PEEK_OTHER);       /* 21: too long for one */
    CLS("SSH-2.0-OpenSSH_9.6p1\r\n", TLS_PEEK_OTHER);
    CLS("\x00\x00\x00\x00", TLS_PEEK_OTHER);

    CLS("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", TLS_PEEK_H2_PREFACE);
    CLS("PRI * HTTP/2.0", TLS_PEEK_H2_PREFACE);
    CLS("PRI * HTTP/2.", TLS_PEEK_NEED_MORE);
    CLS("PRI ", TLS_PEEK_NEED_MORE);
    CLS("P", TLS_PEEK_NEED_MORE);
    CLS("PRI /x HTTP/1.1\r\n", TLS_PEEK_HTTP1);
    CLS("PRIX / HTTP/1.1\r\n", TLS_PEEK_HTTP1);
    CLS("POST", TLS_PEEK_NEED_MORE);

    CLS("\x16", TLS_PEEK_NEED_MORE);
    CLS("\x16\x03", TLS_PEEK_NEED_MORE);
    CLS("\x16\x03\x01\x02", TLS_PEEK_NEED_MORE);
    CLS("\x16\x03\x01\x02\x00", TLS_PEEK_NEED_MORE);
    CLS("\x16\x03\x01\x02\x00\x01", TLS_PEEK_TLS);
    CLS("\x16\x03\x03\x00\x30\x01", TLS_PEEK_TLS);
    CLS("\x16\x02\x01\x02\x00\x01", TLS_PEEK_OTHER);   /* not 3.x */
    CLS("\x16\x03\x05\x02\x00\x01", TLS_PEEK_OTHER);
    CLS("\x16\x03\x01\x00\x00\x01", TLS_PEEK_OTHER);   /* empty record */
    CLS("\x16\x03\x01\x40\x01\x01", TLS_PEEK_OTHER);   /* > 2^14 */
    CLS("\x16\x03\x01\x02\x00\x02", TLS_PEEK_OTHER);   /* a ServerHello */
    CLS("\x15\x03\x01\x00\x02\x02\x28", TLS_PEEK_OTHER); /* an alert */
    CLS("\x80\x2e\x01\x00\x02\x00\x15", TLS_PEEK_OTHER); /* SSLv2-compatible hello */

    n = capture_hello("example.test", true, hello, sizeof(hello));
    assert_int_equal(tls_peek_classify(hello, n), TLS_PEEK_TLS);
    assert_int_equal(tls_peek_classify(hello, 6), TLS_PEEK_TLS);

    /* Contract: TLS_PEEK_DECIDE bytes always decide. */
    uint8_t buf[TLS_PEEK_DECIDE];
    unsigned seed = 12345;
    const char alphabet[] = "GETPRI *HTTP/2.0\r\n\x16\x03\x01\x00 -";
    for (int i = 0; i < 200000; i++) {
        for (size_t j = 0; j < sizeof(buf); j++)
            buf[j] = (i & 1) ? (uint8_t)rand_r(&seed)
                             : (uint8_t)alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
        if (i % 4 == 0)
            memcpy(buf, "PRI * HTTP/2.0", 14 - (size_t)(rand_r(&seed) % 3));
        assert_int_not_equal(tls_peek_classify(buf, sizeof(buf)), TLS_PEEK_NEED_MORE);
    }
    assert_string_equal(tls_peek_kind_name(TLS_PEEK_H2_PREFACE), "h2_preface");
}

/* ---- SNI on real hellos ---- */

static void test_sni_real_hello(void **state)
{
    uint8_t hello[4096];
    char name[256];
    size_t n;

    (void)state;
    n = capture_hello("example.test", true, hello, sizeof(hello));
    assert_int_equal(tls_sni_parse(hello, n, name, sizeof(name)), 0);
    assert_string_equal(name, "example.test");

    /* a long name, mixed case, as sent */
    const char *longname = "Very-Long.Label-0123456789.abcdefghijklmnopqrstuvwxyz.sub_domain."
                           "example.test";
    n = capture_hello(longname, false, hello, sizeof(hello));
    assert_int_equal(tls_sni_parse(hello, n, name, sizeof(name)), 0);
    assert_string_equal(name, longname);
    /* a buffer just too small */
    assert_int_equal(tls_sni_parse(hello, n, name, strlen(longname)), -ENOSPC);
    assert_int_equal(tls_sni_parse(hello, n, name, strlen(longname) + 1), 0);

    /* no SNI (what a client dialing an IP literal sends) */
    n = capture_hello(NULL, true, hello, sizeof(hello));
    assert_int_equal(tls_sni_parse(hello, n, name, sizeof(name)), -ENOENT);
    assert_string_equal(name, "");
}

/* Every proper prefix is "need more" until the SNI extension is complete;
 * from then on the name is known. */
static void test_sni_prefixes(void **state)
{
    uint8_t hello[4096];
    char name[256];
    size_t n, first_ok = 0;

    (void)state;
    n = capture_hello("prefix.example.test", true, hello, sizeof(hello));
    for (size_t len = 0; len <= n; len++) {
        int rc = tls_sni_parse(hello, len, name, sizeof(name));
        if (rc == 0) {
            if (!first_ok)
                first_ok = len;
            assert_string_equal(name, "prefix.example.test");
        } else {
            assert_int_equal(rc, -EAGAIN);
            assert_int_equal(first_ok, 0); /* never goes back */
        }
    }
    assert_true(first_ok > 9 + 38);
    assert_true(first_ok <= n);

    /* without SNI: every prefix is EAGAIN, the whole is ENOENT */
    n = capture_hello(NULL, false, hello, sizeof(hello));
    for (size_t len = 0; len < n; len++)
        assert_int_equal(tls_sni_parse(hello, len, name, sizeof(name)), -EAGAIN);
    assert_int_equal(tls_sni_parse(hello, n, name, sizeof(name)), -ENOENT);
}

static void test_sni_fragmented_records(void **state)
{
    uint8_t hello[4096], frag[16384];
    char name[256];
    size_t n, m;

    (void)state;
    n = capture_hello("frag.example.test", true, hello, sizeof(hello));
    for (size_t f = 1; f <= 64; f++) {
        m = refragment(hello, n, f, frag, sizeof(frag));
        assert_int_equal(tls_sni_parse(frag, m, name, sizeof(name)), 0);
        assert_string_equal(name, "frag.example.test");
        assert_int_equal(tls_peek_classify(frag, m), TLS_PEEK_TLS);
    }
    /* a fragmented hello cut short is still "need more" */
    m = refragment(hello, n, 7, frag, sizeof(frag));
    assert_int_equal(tls_sni_parse(frag, 60, name, sizeof(name)), -EAGAIN);
    /* a non-handshake record in the middle is malformed */
    frag[12] = 0x17;
    assert_int_equal(tls_sni_parse(frag, m, name, sizeof(name)), -EINVAL);
}

/* ---- hand-built hellos ---- */

struct hb {
    uint8_t b[70000];
    size_t n;
};

static void put8(struct hb *h, unsigned v) { h->b[h->n++] = (uint8_t)v; }
static void put16(struct hb *h, unsigned v) { put8(h, v >> 8); put8(h, v & 0xff); }
static void put24(struct hb *h, unsigned v) { put8(h, v >> 16); put16(h, v & 0xffff); }
static void putb(struct hb *h, const void *p, size_t n) { memcpy(h->b + h->n, p, n); h->n += n; }

struct hello_spec {
    unsigned sid_len;        /* session id length byte */
    unsigned ciphers_len;    /* cipher_suites length */
    unsigned comp_len;       /* compression methods length */
    const uint8_t *exts;     /* raw extensions block contents (after the u16 length) */
    size_t exts_len;
    bool no_exts;            /* omit the extensions block entirely */
    int exts_len_delta;      /* lie about the extensions length */
    int msg_len_delta;       /* lie about the handshake length */
    unsigned hs_type;        /* 1 = client_hello */
};

/* Builds a one-record hello. */
static size_t build_hello(const struct hello_spec *s, uint8_t *out)
{
    static struct hb body, rec;
    body.n = rec.n = 0;
    put16(&body, 0x0303);
    for (int i = 0; i < 32; i++)
        put8(&body, (unsigned)i);
    put8(&body, s->sid_len);
    for (unsigned i = 0; i < s->sid_len; i++)
        put8(&body, 0xaa);
    put16(&body, s->ciphers_len);
    for (unsigned i = 0; i < s->ciphers_len; i++)
        put8(&body, 0x13);
    put8(&body, s->comp_len);
    for (unsigned i = 0; i < s->comp_len; i++)
        put8(&body, 0);
    if (!s->no_exts) {
        put16(&body, (unsigned)((int)s->exts_len + s->exts_len_delta));
        putb(&body, s->exts, s->exts_len);
    }
    put8(&rec, 0x16);
    put16(&rec, 0x0301);
    put16(&rec, (unsigned)(body.n + 4));
    put8(&rec, s->hs_type);
    put24(&rec, (unsigned)((int)body.n + s->msg_len_delta));
    putb(&rec, body.b, body.n);
    memcpy(out, rec.b, rec.n);
    return rec.n;
}

/* server_name extension with the given raw list bytes. */
static size_t sni_ext(uint8_t *out, const void *list, size_t list_len, int list_len_delta)
{
    struct hb h;
    h.n = 0;
    put16(&h, 0);                       /* server_name */
    put16(&h, (unsigned)(list_len + 2)); /* extension_data length */
    put16(&h, (unsigned)((int)list_len + list_len_delta));
    putb(&h, list, list_len);
    memcpy(out, h.b, h.n);
    return h.n;
}

static size_t host_entry(uint8_t *out, unsigned type, const char *name, size_t len)
{
    out[0] = (uint8_t)type;
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)len;
    memcpy(out + 3, name, len);
    return 3 + len;
}

static int parse_spec(const struct hello_spec *s, char *name, size_t cap)
{
    static uint8_t buf[70000];
    size_t n = build_hello(s, buf);
    return tls_sni_parse(buf, n, name, cap);
}

static void test_sni_malformed(void **state)
{
    uint8_t exts[512], list[300];
    size_t el, ll;
    char name[256];
    struct hello_spec s;

    (void)state;
    /* baseline: an unknown extension, then SNI */
    ll = host_entry(list, 0, "ok.test", 7);
    el = 0;
    exts[el++] = 0xff; exts[el++] = 0x01; exts[el++] = 0; exts[el++] = 1; exts[el++] = 0;
    el += sni_ext(exts + el, list, ll, 0);
    s = (struct hello_spec){.sid_len = 32, .ciphers_len = 4, .comp_len = 1, .exts = exts,
                            .exts_len = el, .hs_type = 1};
    assert_int_equal(parse_spec(&s, name, sizeof(name)), 0);
    assert_string_equal(name, "ok.test");

    struct hello_spec b;
    b = s; b.hs_type = 2;            assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);
    b = s; b.sid_len = 33;           assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);
    b = s; b.ciphers_len = 3;        assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);
    b = s; b.ciphers_len = 0;        assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);
    b = s; b.comp_len = 0;           assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);
    b = s; b.exts_len_delta = 1;     assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);
    b = s; b.exts_len_delta = -1;    assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);
    /* the handshake says it is shorter than its contents */
    b = s; b.msg_len_delta = -3;     assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);
    /* longer than the record carries: more records would follow */
    b = s; b.msg_len_delta = 10;     assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);
    b = s; b.no_exts = true;         assert_int_equal(parse_spec(&b, name, sizeof(name)), -ENOENT);
    b = s; b.msg_len_delta = TLS_HELLO_MAX;
    assert_int_equal(parse_spec(&b, name, sizeof(name)), -EMSGSIZE);

    /* server_name list problems */
    ll = host_entry(list, 0, "ok.test", 7);
    el = sni_ext(exts, list, ll, 1); /* list length != extension length - 2 */
    b = s; b.exts = exts; b.exts_len = el;
    assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);

    ll = host_entry(list, 0, "a.test", 6);
    ll += host_entry(list + ll, 0, "b.test", 6); /* two host_names */
    el = sni_ext(exts, list, ll, 0);
    b = s; b.exts = exts; b.exts_len = el;
    assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);

    ll = host_entry(list, 0, "", 0); /* empty host_name */
    el = sni_ext(exts, list, ll, 0);
    b = s; b.exts = exts; b.exts_len = el;
    assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);

    ll = host_entry(list, 0, "a\0b", 3);
    el = sni_ext(exts, list, ll, 0);
    b = s; b.exts = exts; b.exts_len = el;
    assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);

    ll = host_entry(list, 0, "a b.test", 8);
    el = sni_ext(exts, list, ll, 0);
    b = s; b.exts = exts; b.exts_len = el;
    assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);

    ll = host_entry(list, 0, "a.test\xff", 7);
    el = sni_ext(exts, list, ll, 0);
    b = s; b.exts = exts; b.exts_len = el;
    assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);

    /* a name entry longer than its list */
    ll = host_entry(list, 0, "ok.test", 7);
    list[2] = 40;
    el = sni_ext(exts, list, ll, 0);
    b = s; b.exts = exts; b.exts_len = el;
    assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);

    /* an unknown name type is skipped; the host_name after it counts */
    ll = host_entry(list, 7, "xx", 2);
    ll += host_entry(list + ll, 0, "after.test", 10);
    el = sni_ext(exts, list, ll, 0);
    b = s; b.exts = exts; b.exts_len = el;
    assert_int_equal(parse_spec(&b, name, sizeof(name)), 0);
    assert_string_equal(name, "after.test");

    /* only unknown name types: no SNI */
    ll = host_entry(list, 7, "xx", 2);
    el = sni_ext(exts, list, ll, 0);
    b = s; b.exts = exts; b.exts_len = el;
    assert_int_equal(parse_spec(&b, name, sizeof(name)), -ENOENT);

    /* an empty list */
    el = sni_ext(exts, list, 0, 0);
    b = s; b.exts = exts; b.exts_len = el;
    assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);

    /* an extension header running past the block */
    el = 0;
    exts[el++] = 0x00; exts[el++] = 0x10; exts[el++] = 0x00; exts[el++] = 0x09; exts[el++] = 1;
    b = s; b.exts = exts; b.exts_len = el;
    assert_int_equal(parse_spec(&b, name, sizeof(name)), -EINVAL);

    /* record layer: empty and oversized records */
    uint8_t buf[64];
    memcpy(buf, "\x16\x03\x01\x00\x00", 5);
    assert_int_equal(tls_sni_parse(buf, 5, name, sizeof(name)), -EINVAL);
    memcpy(buf, "\x16\x03\x01\x40\x01\x01\x00\x00\x10", 9);
    assert_int_equal(tls_sni_parse(buf, 9, name, sizeof(name)), -EINVAL);
    memcpy(buf, "\x17\x03\x01\x00\x10\x01\x00\x00\x10", 9);
    assert_int_equal(tls_sni_parse(buf, 9, name, sizeof(name)), -EINVAL);
    assert_int_equal(tls_sni_parse(buf, 0, name, sizeof(name)), -EAGAIN);
    assert_int_equal(tls_sni_parse(buf, 9, name, 0), -ENOSPC);
    memcpy(buf, "GET / HTTP/1.1\r\n", 16);
    assert_int_equal(tls_sni_parse(buf, 16, name, sizeof(name)), -EINVAL);
}

/* Random corruption of real hellos: never crashes, never reads past the
 * buffer (ASan), and any name it returns is clean. */
static void test_sni_mutations(void **state)
{
    uint8_t hello[4096], m[4096];
    char name[256];
    size_t n;
    unsigned seed = 4242;

    (void)state;
    n = capture_hello("mutate.example.test", true, hello, sizeof(hello));
    for (int i = 0; i < 50000; i++) {
        size_t len = (size_t)rand_r(&seed) % (n + 1);
        uint8_t *heap;
        memcpy(m, hello, n);
        for (int k = rand_r(&seed) % 4; k >= 0; k--)
            m[(size_t)rand_r(&seed) % n] = (uint8_t)rand_r(&seed);
        heap = malloc(len ? len : 1); /* exact size, so ASan sees any over-read */
        memcpy(heap, m, len);
        int rc = tls_sni_parse(heap, len, name, sizeof(name));
        free(heap);
        assert_true(rc == 0 || rc == -ENOENT || rc == -EAGAIN || rc == -EINVAL ||
                    rc == -ENOSPC || rc == -EMSGSIZE);
        if (rc == 0) {
            size_t l = strlen(name);
            assert_true(l > 0 && l < sizeof(name));
            for (size_t j = 0; j < l; j++)
                assert_non_null(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789-._", name[j]));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_sni_real_hello),
        cmocka_unit_test(test_sni_prefixes),
        cmocka_unit_test(test_sni_fragmented_records),
        cmocka_unit_test(test_sni_malformed),
        cmocka_unit_test(test_sni_mutations),
    };
    return cmocka_run_group_tests_name("tls_peek", tests, NULL, NULL);
}
