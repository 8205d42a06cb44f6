/* Unit tests for tls/leaf and tls/lru: what a leaf looks like, that it
 * verifies against the CA for the right name only, the LRU's contract,
 * concurrency, and how long minting takes. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/x509v3.h>

#include "tls/tls_int.h"

static struct tls_ca *new_ca(size_t cap, uint32_t leaf_validity, uint32_t ca_validity)
{
    struct tls_ca *ca = NULL;
    struct tls_ca_opts o = {.leaf_cache_cap = cap, .leaf_validity_s = leaf_validity,
                            .ca_validity_s = ca_validity};
    char err[256];
    assert_int_equal(tls_ca_generate(&o, &ca, err, sizeof(err)), 0);
    return ca;
}

/* X509_verify_cert against only the CA, as a TLS server cert, for either
 * a host name or an IP. Returns the X509_V_* result. */
static int verify_leaf(struct tls_ca *ca, X509 *leaf, const char *host, const char *ip)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *sctx = X509_STORE_CTX_new();
    X509_VERIFY_PARAM *param;
    int res;

    assert_non_null(store);
    assert_non_null(sctx);
    assert_int_equal(X509_STORE_add_cert(store, tls_ca_cert(ca)), 1);
    assert_int_equal(X509_STORE_CTX_init(sctx, store, leaf, NULL), 1);
    param = X509_STORE_CTX_get0_param(sctx);
    assert_int_equal(X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER), 1);
    if (host)
        assert_int_equal(X509_VERIFY_PARAM_set1_host(param, host, 0), 1);
    if (ip)
        assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(param, ip), 1);
    res = X509_verify_cert(sctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(sctx);
    X509_STORE_CTX_free(sctx);
    X509_STORE_free(store);
    return res;
}

static void cn_of(X509 *x, char *out, size_t cap)
{
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)cap);
    assert_true(n > 0);
}

/* Returns the number of SANs; checks the first is of type and value. */
static int san_first(X509 *x, int *type, char *out, size_t cap)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int n;
    assert_non_null(gens);
    n = sk_GENERAL_NAME_num(gens);
    GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, 0);
    *type = g->type;
    if (g->type == GEN_DNS)
        snprintf(out, cap, "%.*s", g->d.dNSName->length, (const char *)g->d.dNSName->data);
    else
        out[0] = '\0';
    GENERAL_NAMES_free(gens);
    return n;
}

static void test_dns_leaf(void **state)
{
    struct tls_ca *ca = new_ca(0, 0, 0);
    X509 *leaf = NULL;
    char buf[300];
    int type;

    (void)state;
    assert_int_equal(tls_leaf_get(ca, "example.test", &leaf), 0);
    assert_int_equal(verify_leaf(ca, leaf, "example.test", NULL), X509_V_OK);
    assert_int_equal(verify_leaf(ca, leaf, "other.test", NULL), X509_V_ERR_HOSTNAME_MISMATCH);
    assert_int_equal(verify_leaf(ca, leaf, "sub.example.test", NULL), X509_V_ERR_HOSTNAME_MISMATCH);
    assert_int_equal(verify_leaf(ca, leaf, NULL, "127.0.0.1"), X509_V_ERR_IP_ADDRESS_MISMATCH);

    cn_of(leaf, buf, sizeof(buf));
    assert_string_equal(buf, "example.test");
    assert_int_equal(san_first(leaf, &type, buf, sizeof(buf)), 1);
    assert_int_equal(type, GEN_DNS);
    assert_string_equal(buf, "example.test");

    /* shape: not a CA, serverAuth, digitalSignature, AKI = CA SKI, shared key */
    assert_false(X509_get_extension_flags(leaf) & EXFLAG_CA);
    assert_true(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER);
    assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(leaf);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(tls_ca_cert(ca));
    assert_non_null(aki);
    assert_non_null(ski);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki, ski), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), tls_leaf_key(ca)), 1);
    assert_int_equal(X509_get_version(leaf), X509_VERSION_3);

    /* validity: back-dated 1 h, 7 days ahead */
    int days, secs;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notBefore(leaf)), 1);
    assert_int_equal(days, 0);
    assert_in_range(-secs, 3590, 3610);
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(leaf)), 1);
    assert_int_equal(days, 7);

    /* the same name in other spellings is the same cached leaf */
    X509 *again = NULL;
    assert_int_equal(tls_leaf_get(ca, "EXAMPLE.test.", &again), 0);
    assert_ptr_equal(again, leaf);
    X509_free(again);

    /* a different name: another serial */
    X509 *other = NULL;
    assert_int_equal(tls_leaf_get(ca, "other.test", &other), 0);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf),
                                          X509_get0_serialNumber(other)), 0);
    X509_free(other);

    /* names that are not names */
    X509 *bad = NULL;
    assert_int_equal(tls_leaf_get(ca, "*.example.test", &bad), -EINVAL);
    assert_int_equal(tls_leaf_get(ca, "", &bad), -EINVAL);
    assert_int_equal(tls_leaf_get(ca, "a/b", &bad), -EINVAL);
    assert_int_equal(tls_leaf_get(ca, NULL, &bad), -EINVAL);
    assert_null(bad);

    X509_free(leaf);
    tls_ca_free(ca);
}

static void test_ip_leaf(void **state)
{
    struct tls_ca *ca = new_ca(0, 0, 0);
    X509 *leaf = NULL;
    char buf[300];
    int type;

    (void)state;
    assert_int_equal(tls_leaf_get(ca, "127.0.0.1", &leaf), 0);
    assert_int_equal(verify_leaf(ca, leaf, NULL, "127.0.0.1"), X509_V_OK);
    assert_int_equal(verify_leaf(ca, leaf, NULL, "127.0.0.2"), X509_V_ERR_IP_ADDRESS_MISMATCH);
    assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
    assert_int_equal(san_first(leaf, &type, buf, sizeof(buf)), 1);
    assert_int_equal(type, GEN_IPADD);
    cn_of(leaf, buf, sizeof(buf));
    assert_string_equal(buf, "127.0.0.1");
    X509_free(leaf);

    leaf = NULL;
    assert_int_equal(tls_leaf_get(ca, "[2001:db8::1]", &leaf), 0);
    assert_int_equal(verify_leaf(ca, leaf, NULL, "2001:db8:0::1"), X509_V_OK);
    assert_int_equal(verify_leaf(ca, leaf, NULL, "2001:db8::2"), X509_V_ERR_IP_ADDRESS_MISMATCH);
    X509 *same = NULL;
    assert_int_equal(tls_leaf_get(ca, "2001:DB8:0:0:0:0:0:1", &same), 0);
    assert_ptr_equal(same, leaf);
    X509_free(same);
    X509_free(leaf);
    tls_ca_free(ca);
}

static void test_long_name_cn_truncated(void **state)
{
    struct tls_ca *ca = new_ca(0, 0, 0);
    char name[200], buf[300];
    X509 *leaf = NULL;
    int type;

    (void)state;
    /* 3 labels of 60 + ".test": 188 bytes */
    memset(name, 'a', 60);
    name[60] = '.';
    memset(name + 61, 'b', 60);
    name[121] = '.';
    memset(name + 122, 'c', 60);
    memcpy(name + 182, ".test", 6);
    assert_int_equal(tls_leaf_get(ca, name, &leaf), 0);
    cn_of(leaf, buf, sizeof(buf));
    assert_int_equal(strlen(buf), 64);
    assert_memory_equal(buf, name, 64);
    assert_int_equal(san_first(leaf, &type, buf, sizeof(buf)), 1);
    assert_string_equal(buf, name);
    assert_int_equal(verify_leaf(ca, leaf, name, NULL), X509_V_OK);
    X509_free(leaf);
    tls_ca_free(ca);
}

static void test_leaf_clamped_to_ca(void **state)
{
    struct tls_ca *ca = new_ca(0, 0, 2 * 24 * 3600); /* CA: 2 days; leaf wants 7 */
    X509 *leaf = NULL;

    (void)state;
    assert_int_equal(tls_leaf_get(ca, "short.test", &leaf), 0);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(leaf),
                                       X509_get0_notAfter(tls_ca_cert(ca))), 0);
    assert_int_equal(verify_leaf(ca, leaf, "short.test", NULL), X509_V_OK);
    X509_free(leaf);
    tls_ca_free(ca);
}

static void test_leaf_renewed_near_expiry(void **state)
{
    struct tls_ca *ca = new_ca(0, 1, 0); /* leaves live 1 s */
    X509 *a = NULL, *b = NULL;
    struct tls_leaf_stats st;

    (void)state;
    assert_int_equal(tls_leaf_get(ca, "brief.test", &a), 0);
    sleep(2);
    assert_int_equal(tls_leaf_get(ca, "brief.test", &b), 0);
    assert_ptr_not_equal(a, b);
    tls_leaf_stats(ca, &st);
    assert_int_equal(st.mints, 2);
    assert_int_equal(st.size, 1); /* replaced in place, not added */
    assert_int_equal(st.evictions, 0);
    X509_free(a);
    X509_free(b);
    tls_ca_free(ca);
}

static X509 *get(struct tls_ca *ca, const char *name)
{
    X509 *x = NULL;
    assert_int_equal(tls_leaf_get(ca, name, &x), 0);
    X509_free(x); /* the cache keeps its own reference while cached */
    return x;
}

static void test_lru_evicts_one(void **state)
{
    struct tls_ca *ca = new_ca(3, 0, 0);
    struct tls_leaf_stats st;
    X509 *a, *b, *c, *d;

    (void)state;
    a = get(ca, "a.test");
    b = get(ca, "b.test");
    c = get(ca, "c.test");
    tls_leaf_stats(ca, &st);
    assert_int_equal(st.misses, 3);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.size, 3);
    assert_int_equal(st.cap, 3);

    assert_ptr_equal(get(ca, "a.test"), a); /* hit; order now a, c, b */
    tls_leaf_stats(ca, &st);
    assert_int_equal(st.hits, 1);

    d = get(ca, "d.test"); /* full: evicts b only */
    tls_leaf_stats(ca, &st);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.size, 3);
    assert_ptr_equal(get(ca, "a.test"), a);
    assert_ptr_equal(get(ca, "c.test"), c);
    assert_ptr_equal(get(ca, "d.test"), d);
    tls_leaf_stats(ca, &st);
    assert_int_equal(st.hits, 4);
    assert_int_equal(st.evictions, 1);

    /* b is gone: minting it again evicts exactly one more (a, the LRU) */
    X509 *b2 = NULL;
    assert_int_equal(tls_leaf_get(ca, "b.test", &b2), 0);
    (void)b; /* freed on eviction; compare serials rather than pointers */
    tls_leaf_stats(ca, &st);
    assert_int_equal(st.misses, 5);
    assert_int_equal(st.evictions, 2);
    assert_int_equal(st.size, 3);
    assert_ptr_equal(get(ca, "c.test"), c);
    assert_ptr_equal(get(ca, "d.test"), d);
    tls_leaf_stats(ca, &st);
    assert_int_equal(st.misses, 5);
    get(ca, "a.test"); /* was evicted: a miss */
    tls_leaf_stats(ca, &st);
    assert_int_equal(st.misses, 6);
    assert_int_equal(st.evictions, 3);
    X509_free(b2);
    tls_ca_free(ca);
}

static int freed_count;
static void count_free(void *p)
{
    freed_count++;
    free(p);
}

static void test_lru_direct(void **state)
{
    struct lru *l = lru_new(2, count_free);
    uint64_t ev = 0;

    (void)state;
    freed_count = 0;
    assert_non_null(l);
    assert_null(lru_new(0, NULL));
    assert_int_equal(lru_put(l, "x", strdup("1"), &ev), 0);
    assert_int_equal(lru_put(l, "y", strdup("2"), &ev), 0);
    assert_string_equal(lru_get(l, "x"), "1"); /* x most recent */
    assert_int_equal(lru_put(l, "z", strdup("3"), &ev), 0); /* evicts y */
    assert_int_equal(ev, 1);
    assert_int_equal(freed_count, 1);
    assert_null(lru_get(l, "y"));
    /* replace frees the old value and does not evict */
    assert_int_equal(lru_put(l, "x", strdup("1b"), &ev), 0);
    assert_int_equal(ev, 1);
    assert_int_equal(freed_count, 2);
    assert_string_equal(lru_get(l, "x"), "1b");
    assert_int_equal(lru_len(l), 2);
    assert_true(lru_del(l, "z"));
    assert_false(lru_del(l, "z"));
    assert_int_equal(lru_len(l), 1);
    /* many inserts through a tiny table keep the cap */
    char k[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(lru_put(l, k, strdup(k), &ev), 0);
        assert_true(lru_len(l) <= 2);
    }
    assert_string_equal(lru_get(l, "k999"), "k999");
    assert_string_equal(lru_get(l, "k998"), "k998");
    lru_free(l);
    assert_int_equal(freed_count, 4 + 1000); /* every value ever put */
}

struct worker_arg {
    struct tls_ca *ca;
    int id;
    int iters;
    int failures;
};

static void *worker(void *p)
{
    struct worker_arg *w = p;
    char name[64];
    unsigned seed = (unsigned)w->id * 7919u;
    for (int i = 0; i < w->iters; i++) {
        X509 *x = NULL;
        snprintf(name, sizeof(name), "host%u.test", rand_r(&seed) % 64);
        if (tls_leaf_get(w->ca, name, &x) != 0 || X509_check_host(x, name, 0, 0, NULL) != 1)
            w->failures++;
        X509_free(x);
    }
    return NULL;
}

static void test_concurrent_gets(void **state)
{
    struct tls_ca *ca = new_ca(32, 0, 0); /* fewer slots than names: constant churn */
    pthread_t th[8];
    struct worker_arg args[8];
    struct tls_leaf_stats st;

    (void)state;
    for (int i = 0; i < 8; i++) {
        args[i] = (struct worker_arg){.ca = ca, .id = i + 1, .iters = 1500};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    tls_leaf_stats(ca, &st);
    assert_int_equal(st.hits + st.misses, 8 * 1500);
    assert_true(st.size <= 32);
    assert_true(st.mints >= st.misses - 0); /* every miss mints once */
    assert_int_equal(st.mints, st.misses);
    tls_ca_free(ca);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Not a pass/fail benchmark: prints the cost so it is visible in CI logs,
 * and fails only if minting is absurdly slow (> 5 ms per leaf). */
static void test_mint_time(void **state)
{
    const int n = 2000;
    struct tls_ca *ca = new_ca((size_t)n, 0, 0);
    struct tls_leaf_stats st;
    char name[64];
    uint64_t t0, hit_ns;

    (void)state;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "bench%d.example.test", i);
        get(ca, name);
    }
    t0 = now_ns();
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "bench%d.example.test", i);
        get(ca, name);
    }
    hit_ns = (now_ns() - t0) / (uint64_t)n;
    tls_leaf_stats(ca, &st);
    assert_int_equal(st.mints, (uint64_t)n);
    printf("tls leaf: mint %.1f us/leaf (ECDSA P-256, shared key), cache hit %.2f us\n",
           (double)st.mint_ns_total / (double)st.mints / 1000.0, (double)hit_ns / 1000.0);
    assert_true(st.mint_ns_total / st.mints < 5000000ull);
    tls_ca_free(ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_leaf),
        cmocka_unit_test(test_ip_leaf),
        cmocka_unit_test(test_long_name_cn_truncated),
        cmocka_unit_test(test_leaf_clamped_to_ca),
        cmocka_unit_test(test_leaf_renewed_near_expiry),
        cmocka_unit_test(test_lru_evicts_one),
        cmocka_unit_test(test_lru_direct),
        cmocka_unit_test(test_concurrent_gets),
        cmocka_unit_test(test_mint_time),
    };
    return cmocka_run_group_tests_name("tls_leaf", tests, NULL, NULL);
}
