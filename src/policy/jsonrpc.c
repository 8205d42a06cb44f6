/* policy/jsonrpc: JSON-RPC 2.0 request bodies (JSON-RPC 2.0 §4-§6; MCP
 * Streamable HTTP carries the same envelope). */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "policy/jsonrpc.h"

#include "core/banned.h"

static int copy_str(char *dst, size_t cap, const char *s, size_t len)
{
    if (len >= cap)
        return -1;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

static void id_text(const json_t *id, char *out, size_t cap)
{
    char *t = id ? json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    if (!t || strlen(t) >= cap || (!json_is_string(id) && !json_is_integer(id) &&
                                   !json_is_real(id) && !json_is_null(id)))
        copy_str(out, cap, "null", 4);
    else
        copy_str(out, cap, t, strlen(t));
    free(t);
}

static int one_call(const json_t *o, struct policy_rpc_call *c, const char **why)
{
    const json_t *ver, *method, *id, *params, *name;
    if (!json_is_object(o))
        return *why = "has a batch element that is not an object", -EINVAL;
    id = json_object_get(o, "id");
    id_text(id, c->id, sizeof(c->id));
    ver = json_object_get(o, "jsonrpc");
    if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0)
        return *why = "is not JSON-RPC 2.0 (\"jsonrpc\": \"2.0\" missing)", -EINVAL;
    method = json_object_get(o, "method");
    if (!method) {
        if (json_object_get(o, "result") || json_object_get(o, "error")) {
            c->response = true;
            return 0;
        }
        return *why = "has an element without a method", -EINVAL;
    }
    if (!json_is_string(method))
        return *why = "has a method that is not a string", -EINVAL;
    if (json_object_get(o, "result") || json_object_get(o, "error")) /* JSON-RPC 2.0 §4, §5 */
        return *why = "has both a method and a result or error (neither request nor response)",
               -EINVAL;
    if (copy_str(c->method, sizeof(c->method), json_string_value(method),
                 json_string_length(method)) < 0)
        return *why = "has a method name longer than 256 bytes", -EINVAL;
    c->notification = id == NULL;
    params = json_object_get(o, "params");
    if (params && !json_is_object(params) && !json_is_array(params))
        return *why = "has params that are neither an object nor an array", -EINVAL;
    name = json_is_object(params) ? json_object_get(params, "name") : NULL;
    if (json_is_string(name)) {
        if (copy_str(c->tool, sizeof(c->tool), json_string_value(name),
                     json_string_length(name)) < 0)
            return *why = "has a params.name longer than 256 bytes", -EINVAL;
        c->has_tool = true;
    }
    return 0;
}

int policy_jsonrpc_parse(const char *body, size_t len, struct policy_rpc_msg *out,
                         const char **why)
{
    json_error_t err;
    int rc = 0;
    memset(out, 0, sizeof(*out));
    copy_str(out->calls[0].id, sizeof(out->calls[0].id), "null", 4);
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return *why = strstr(err.text, "duplicate") ? "has a duplicate key"
                                                    : "is not valid JSON", -EINVAL;
    if (json_is_array(root)) {
        out->batch = true;
        size_t n = json_array_size(root);
        if (n == 0)
            rc = (*why = "is an empty batch", -EINVAL);
        else if (n > POLICY_RPC_MAX_BATCH)
            rc = (*why = "is a batch of more than 128 calls", -EINVAL);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            rc = one_call(json_array_get(root, i), &out->calls[i], why);
            out->n = i + 1;
        }
    } else {
        out->n = 1;
        rc = one_call(root, &out->calls[0], why);
    }
    json_decref(root);
    return rc;
}
