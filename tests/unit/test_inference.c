/* Unit tests for inference/: shapes, errors, headers, bodies, usage, routes. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "inference/inference.h"

static enum inference_shape match(const char *m, const char *p, bool hint, enum inference_api *api)
{
    return inference_shape_match(m, strlen(m), p, strlen(p), hint, api);
}

static void test_shapes(void **st)
{
    enum inference_api a;
    assert_int_equal(match("POST", "/v1/chat/completions", false, &a), INFERENCE_OPENAI_CHAT);
    assert_int_equal(a, INFERENCE_API_OPENAI);
    assert_int_equal(match("POST", "/v1/completions?x=1", false, &a), INFERENCE_OPENAI_COMPLETIONS);
    assert_int_equal(match("POST", "/v1/responses", false, &a), INFERENCE_OPENAI_RESPONSES);
    assert_int_equal(match("GET", "/v1/responses", false, &a), INFERENCE_OPENAI_RESPONSES);
    assert_int_equal(match("POST", "/v1/embeddings", false, &a), INFERENCE_OPENAI_EMBEDDINGS);
    assert_int_equal(match("GET", "/v1/models", false, &a), INFERENCE_OPENAI_MODELS);
    assert_int_equal(match("GET", "/v1/models/gpt-4o", false, &a), INFERENCE_OPENAI_MODELS);
    assert_int_equal(match("GET", "/v1/models/a/b", false, &a), INFERENCE_SHAPE_NONE);
    assert_int_equal(match("GET", "/v1/models/", false, &a), INFERENCE_SHAPE_NONE);
    assert_int_equal(match("POST", "/v1/messages", false, &a), INFERENCE_ANTHROPIC_MESSAGES);
    assert_int_equal(a, INFERENCE_API_ANTHROPIC);
    assert_int_equal(match("POST", "/v1/messages/count_tokens", false, &a), INFERENCE_ANTHROPIC_COUNT);
    assert_int_equal(match("POST", "/api/chat", false, &a), INFERENCE_OLLAMA_CHAT);
    assert_int_equal(a, INFERENCE_API_OLLAMA);
    assert_int_equal(match("POST", "/api/generate", false, &a), INFERENCE_OLLAMA_GENERATE);
    assert_int_equal(match("GET", "/api/tags", false, &a), INFERENCE_OLLAMA_TAGS);
    /* wrong method, unknown paths: none, but the API is still guessed */
    assert_int_equal(match("GET", "/v1/chat/completions", false, &a), INFERENCE_SHAPE_NONE);
    assert_int_equal(a, INFERENCE_API_OPENAI);
    assert_int_equal(match("POST", "/v1/chat/completions/", false, &a), INFERENCE_SHAPE_NONE);
    assert_int_equal(match("POST", "/api/pull", false, &a), INFERENCE_SHAPE_NONE);
    assert_int_equal(a, INFERENCE_API_OLLAMA);
    assert_int_equal(match("POST", "/v1/nothing", true, &a), INFERENCE_SHAPE_NONE);
    assert_int_equal(a, INFERENCE_API_ANTHROPIC);
    /* AWS Bedrock InvokeModel is not an API cordon routes (OpenShell's inference.rs
     * detects it): no shape, so inference.local answers an error and nothing leaves */
    assert_int_equal(match("POST", "/model/anthropic.claude-opus-4-7/invoke", false, &a),
                     INFERENCE_SHAPE_NONE);
    assert_int_equal(match("POST", "/v1/chat/completions?stream=true", false, &a),
                     INFERENCE_OPENAI_CHAT);
    assert_string_equal(inference_shape_name(INFERENCE_OLLAMA_TAGS), "ollama_tags");
    uint32_t mask = 0;
    assert_int_equal(inference_shape_parse("anthropic", &mask), 0);
    assert_true(mask & (1u << INFERENCE_ANTHROPIC_MESSAGES));
    assert_true(mask & (1u << INFERENCE_ANTHROPIC_COUNT));
    assert_false(mask & (1u << INFERENCE_OPENAI_CHAT));
    assert_int_equal(inference_shape_parse("gemini", &mask), -ENOENT);
}

static json_t *load(const char *s)
{
    json_error_t e;
    json_t *o = json_loads(s, 0, &e);
    assert_non_null(o);
    return o;
}

static void test_errors(void **st)
{
    char *s = inference_error_body(INFERENCE_API_OPENAI, 404, "unknown_path", "no such \"path\"");
    json_t *o = load(s);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"), "message")),
                        "no such \"path\"");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"), "code")),
                        "unknown_path");
    json_decref(o);
    free(s);
    s = inference_error_body(INFERENCE_API_ANTHROPIC, 413, "too_large", "big");
    o = load(s);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "error");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"), "type")),
                        "request_too_large");
    json_decref(o);
    free(s);
    s = inference_error_body(INFERENCE_API_OLLAMA, 502, "x", "down");
    assert_string_equal(s, "{\"error\":\"down\"}");
    free(s);
    s = inference_stream_error(INFERENCE_API_ANTHROPIC, INFERENCE_ANTHROPIC_MESSAGES, "upstream_failed", "cut");
    assert_true(strncmp(s, "event: error\ndata: {", 20) == 0);
    assert_true(strcmp(s + strlen(s) - 2, "\n\n") == 0);
    free(s);
    s = inference_stream_error(INFERENCE_API_OPENAI, INFERENCE_OPENAI_CHAT, "upstream_failed", "cut");
    assert_true(strncmp(s, "data: {\"error\":", 15) == 0);
    free(s);
    s = inference_stream_error(INFERENCE_API_OPENAI, INFERENCE_OPENAI_RESPONSES, "upstream_failed", "cut");
    assert_true(strncmp(s, "event: error\ndata: {\"type\":\"error\"", 34) == 0);
    free(s);
    s = inference_stream_error(INFERENCE_API_OLLAMA, INFERENCE_OLLAMA_CHAT, "upstream_failed", "cut");
    assert_string_equal(s, "{\"error\":\"cut\"}\n");
    free(s);
}

static bool allowed(const char *n) { return inference_header_allowed(n, strlen(n)); }
static bool cred(const char *n) { return inference_header_is_credential(n, strlen(n)); }

static void test_headers(void **st)
{
    assert_true(allowed("Content-Type"));
    assert_true(allowed("anthropic-version"));
    assert_true(allowed("X-Stainless-Lang"));
    assert_true(allowed("accept"));
    assert_false(allowed("Authorization"));
    assert_false(allowed("x-api-key"));
    assert_false(allowed("Cookie"));
    assert_false(allowed("x-goog-api-key"));
    assert_false(allowed("X-Stainless-Auth-Token"));
    assert_false(allowed("host"));
    assert_false(allowed("content-length"));
    assert_false(allowed("transfer-encoding"));
    assert_false(allowed("x-forwarded-for"));
    assert_true(cred("Proxy-Authorization"));
    assert_true(cred("api-key"));
    assert_true(cred("X-Session-Id"));
    assert_false(cred("idempotency-key"));
    assert_false(cred("content-type"));
}

static void test_body(void **st)
{
    struct inference_body_info bi;
    const char *b = "{\"messages\":[],\"model\":\"gpt-4o\",\"stream\":true,\"z\":1}";
    assert_int_equal(inference_body_inspect(b, strlen(b), &bi), 0);
    assert_true(bi.json_object && bi.has_model && bi.stream);
    assert_string_equal(bi.model, "gpt-4o");
    char *out;
    size_t ol;
    assert_int_equal(inference_body_set_model(b, strlen(b), "llama3", &out, &ol), 0);
    assert_string_equal(out, "{\"messages\":[],\"model\":\"llama3\",\"stream\":true,\"z\":1}");
    assert_int_equal(ol, strlen(out));
    free(out);
    assert_int_equal(inference_body_inspect("[1]", 3, &bi), 0);
    assert_false(bi.json_object);
    assert_int_equal(inference_body_inspect("nope", 4, &bi), 0);
    assert_false(bi.json_object);
    assert_int_equal(inference_body_inspect("{\"model\":5}", 11, &bi), -EINVAL);
    const char *dup = "{\"model\":\"a\",\"model\":\"b\"}";
    assert_int_equal(inference_body_inspect(dup, strlen(dup), &bi), 0);
    assert_false(bi.json_object); /* duplicate keys: not trusted as JSON */
    assert_int_equal(inference_body_set_model("[]", 2, "m", &out, &ol), -EINVAL);
}

static void test_usage(void **st)
{
    struct inference_usage u;
    inference_usage_init(&u);
    const char *s = "data: {\"choices\":[{\"delta\":{\"content\":\"\\\"prompt_tokens\\\": 99\"}}]}\n\n"
                    "data: {\"usage\":{\"prompt_tokens\": 12,\"completion_tokens\":34}}\n\n";
    for (size_t i = 0; i < strlen(s); i++) /* one byte at a time */
        inference_usage_feed(&u, s + i, 1);
    assert_int_equal(u.input, 12);
    assert_int_equal(u.output, 34);
    inference_usage_init(&u);
    const char *a = "event: message_delta\ndata: {\"usage\":{\"input_tokens\":7,\"output_tokens\":3}}\n";
    inference_usage_feed(&u, a, strlen(a));
    assert_int_equal(u.input, 7);
    assert_int_equal(u.output, 3);
    inference_usage_init(&u);
    const char *o = "{\"done\":true,\"prompt_eval_count\":5,\"eval_count\":8}\n";
    inference_usage_feed(&u, o, strlen(o));
    assert_int_equal(u.input, 5);
    assert_int_equal(u.output, 8);
}

static int parse(const char *y, struct inference_routes **r, char *errbuf, size_t cap)
{
    FILE *f = fmemopen(errbuf, cap, "w");
    int rc = inference_routes_parse("routes.yaml", y, strlen(y), f, r);
    fclose(f);
    return rc;
}

static void test_routes(void **st)
{
    char err[4096] = "";
    struct inference_routes *r;
    setenv("TEST_INFER_KEY", "sk-route", 1);
    const char *y =
        "version: 1\n"
        "intercept:\n  hosts: [Inference.Local., llm.internal]\n  ports: [80, 443]\n"
        "routes:\n"
        "  - name: claude\n    shapes: [anthropic]\n    base_url: https://api.example.com\n"
        "    credential: {env: TEST_INFER_KEY}\n    headers: {anthropic-version: \"2023-06-01\"}\n"
        "  - name: local\n    shapes: [openai, ollama_chat]\n    base_url: http://127.0.0.1:11434/v1/\n"
        "    models: [\"llama*\", fast]\n    aliases: {fast: llama3.1:8b}\n"
        "    timeouts: {connect_s: 2, idle_s: 5}\n"
        "  - name: fallback\n    shapes: [openai_chat_completions]\n    base_url: http://[::1]:8000\n"
        "    model: qwen\n";
    assert_int_equal(parse(y, &r, err, sizeof(err)), 0);
    assert_int_equal(r->n_routes, 3);
    assert_true(inference_routes_intercepts(r, "inference.local", 80));
    assert_true(inference_routes_intercepts(r, "llm.internal.", 443));
    assert_false(inference_routes_intercepts(r, "inference.local", 8000));
    assert_false(inference_routes_intercepts(r, "example.com", 80));
    const struct inference_route *c = &r->routes[0], *l = &r->routes[1], *fb = &r->routes[2];
    assert_true(c->tls);
    assert_int_equal(c->port, 443);
    assert_string_equal(c->credential, "sk-route");
    assert_string_equal(c->credential_from, "env:TEST_INFER_KEY");
    assert_int_equal(c->idle_timeout_ms, INFERENCE_DEFAULT_IDLE_MS);
    assert_string_equal(l->host, "127.0.0.1");
    assert_int_equal(l->port, 11434);
    assert_string_equal(l->prefix, "/v1");
    assert_int_equal(l->idle_timeout_ms, 5000);
    assert_string_equal(fb->host, "::1");
    assert_ptr_equal(inference_route_pick(r, INFERENCE_ANTHROPIC_MESSAGES, "claude-3"), c);
    assert_ptr_equal(inference_route_pick(r, INFERENCE_OPENAI_CHAT, "llama3"), l);
    assert_ptr_equal(inference_route_pick(r, INFERENCE_OPENAI_CHAT, "fast"), l);
    assert_ptr_equal(inference_route_pick(r, INFERENCE_OPENAI_CHAT, "gpt-4o"), fb);
    assert_null(inference_route_pick(r, INFERENCE_OPENAI_EMBEDDINGS, "gpt-4o"));
    assert_null(inference_route_pick(r, INFERENCE_OLLAMA_TAGS, ""));
    assert_string_equal(inference_route_model(l, "fast"), "llama3.1:8b");
    assert_null(inference_route_model(l, "llama3"));
    assert_string_equal(inference_route_model(fb, "gpt-4o"), "qwen");
    char path[64];
    assert_int_equal(inference_route_path(l, "/v1/chat/completions", 20, path, sizeof(path)), 0);
    assert_string_equal(path, "/v1/chat/completions");
    assert_int_equal(inference_route_path(l, "/api/chat", 9, path, sizeof(path)), 0);
    assert_string_equal(path, "/api/chat");
    assert_int_equal(inference_route_path(fb, "/v1/models?x", 12, path, sizeof(path)), 0);
    assert_string_equal(path, "/v1/models?x");
    assert_int_equal(inference_route_path(fb, "/v1/models", 10, path, 5), -ENOSPC);
    assert_ptr_equal(inference_routes_ref(r), r); /* shared snapshot: two references */
    inference_routes_unref(r);
    assert_string_equal(r->routes[0].name, "claude"); /* still alive */
    inference_routes_unref(r);                        /* the last one frees (ASan checks) */
    assert_false(inference_routes_intercepts(NULL, "example.com", 80));
    assert_true(inference_routes_intercepts(NULL, "INFERENCE.local.", 8000));
}

static void test_routes_errors(void **st)
{
    char err[4096] = "";
    struct inference_routes *r = NULL;
    unsetenv("TEST_INFER_MISSING");
    const char *y =
        "routes:\n"
        "  - name: a\n    shapes: [opena]\n    base_url: ftp://x\n"
        "    credential: {env: TEST_INFER_MISSING}\n    headers: {authorization: x}\n"
        "    timeouts: {idle_s: 0}\n    modle: x\n";
    assert_int_equal(parse(y, &r, err, sizeof(err)), -EINVAL);
    assert_null(r);
    assert_non_null(strstr(err, "routes.yaml:3:14: error:"));  /* opena, with did-you-mean */
    assert_non_null(strstr(err, "openai"));
    assert_non_null(strstr(err, "routes.yaml:4:15: error:"));  /* ftp */
    assert_non_null(strstr(err, "TEST_INFER_MISSING"));
    assert_non_null(strstr(err, "credentials go in 'credential:'"));
    assert_non_null(strstr(err, "modle"));
    memset(err, 0, sizeof(err));
    assert_int_equal(parse("routes: []\n", &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "no routes"));
    memset(err, 0, sizeof(err));
    assert_int_equal(parse("routes: [{name: a, base_url: 'http://u@h/'}]\n", &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "user@"));
    memset(err, 0, sizeof(err));
    assert_int_equal(parse("a: [\n", &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "routes.yaml:"));
    memset(err, 0, sizeof(err));
    assert_int_equal(parse("routes: [{name: a, base_url: 'http://h', credential: {file: /nonexistent/k}}]\n",
                           &r, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "cannot read '/nonexistent/k'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),  cmocka_unit_test(test_errors),
        cmocka_unit_test(test_headers), cmocka_unit_test(test_body),
        cmocka_unit_test(test_usage),   cmocka_unit_test(test_routes),
        cmocka_unit_test(test_routes_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
