/* libFuzzer target: the inference routes file (YAML, validation, URL
 * parsing). A loaded file is also asked for a route once. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "inference/inference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct inference_routes *r = NULL;
    if (inference_routes_parse("fuzz.yaml", (const char *)data, size, NULL, &r) == 0) {
        const struct inference_route *rt = inference_route_pick(r, INFERENCE_OPENAI_CHAT, "gpt-4o");
        char path[256];
        if (rt) {
            (void)inference_route_model(rt, "gpt-4o");
            (void)inference_route_path(rt, "/v1/chat/completions", 20, path, sizeof(path));
        }
        (void)inference_routes_intercepts(r, "inference.local.", 443);
        inference_routes_free(r);
    }
    return 0;
}
