/* inference/body: the requested model in a JSON request body, and its
 * rewrite. Bodies come from the sandbox: they are parsed with jansson
 * (bounded depth, duplicate keys refused) and never trusted to be JSON. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "inference/inference.h"
#include "core/banned.h"

int inference_body_inspect(const char *body, size_t len, struct inference_body_info *out)
{
    memset(out, 0, sizeof(*out));
    json_error_t e;
    json_t *o = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &e) : NULL;
    if (!o)
        return 0;
    int rc = 0;
    if (!json_is_object(o))
        goto out;
    out->json_object = true;
    json_t *m = json_object_get(o, "model");
    if (m) {
        size_t ml = json_is_string(m) ? json_string_length(m) : 0;
        if (!json_is_string(m) || ml > INFERENCE_MODEL_MAX || memchr(json_string_value(m), 0, ml)) {
            rc = -EINVAL;
            goto out;
        }
        memcpy(out->model, json_string_value(m), ml);
        out->model[ml] = '\0';
        out->has_model = true;
    }
    json_t *s = json_object_get(o, "stream");
    out->stream = json_is_true(s);
    out->stream_given = s != NULL;
out:
    json_decref(o);
    return rc;
}

int inference_body_set_model(const char *body, size_t len, const char *model, char **out,
                             size_t *out_len)
{
    json_error_t e;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
    int rc = -EINVAL;
    if (!o || !json_is_object(o))
        goto out;
    rc = -ENOMEM;
    if (json_object_set_new(o, "model", json_string(model)) < 0)
        goto out;
    *out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!*out)
        goto out;
    *out_len = strlen(*out);
    rc = 0;
out:
    json_decref(o);
    return rc;
}
