/* libFuzzer target: what the proxy reads from an inference request and
 * response: the shape (method + path), header names, the JSON body (model,
 * stream, the model rewrite) and the token-count scanner on response bytes.
 * Input layout: byte 0 selects the split; the rest is cut in three parts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inference/inference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1, a = n ? data[0] % (n + 1) : 0;
    enum inference_api api;
    enum inference_shape s = inference_shape_match("POST", 4, p, a, data[0] & 1, &api);
    (void)inference_shape_name(s);
    (void)inference_header_allowed(p, a);
    (void)inference_header_is_credential(p, a);

    struct inference_body_info bi;
    if (inference_body_inspect(p + a, n - a, &bi) == 0 && bi.json_object) {
        char *out = NULL;
        size_t ol;
        if (inference_body_set_model(p + a, n - a, "rewritten", &out, &ol) == 0) {
            struct inference_body_info again;
            if (inference_body_inspect(out, ol, &again) != 0 || !again.has_model ||
                strcmp(again.model, "rewritten") != 0)
                abort(); /* a rewrite must be readable and carry the new model */
            free(out);
        }
    }
    struct inference_usage u;
    inference_usage_init(&u);
    for (size_t i = a; i < n; i += 7)
        inference_usage_feed(&u, p + i, n - i < 7 ? n - i : 7);
    char *e = inference_stream_error(api, s, "c", "m");
    free(e);
    return 0;
}
