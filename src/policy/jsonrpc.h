/* policy/jsonrpc: a JSON-RPC 2.0 request body (one object or a batch) as
 * L7 rules see it: each element's method, whether it is a notification or
 * a (client-sent) response, its id, and for MCP `tools/call` the tool name
 * (params.name). Parsed with jansson, duplicate keys and NUL characters
 * refused, so the proxy and the server cannot read two different methods
 * out of one body. */
#ifndef CORDON_POLICY_JSONRPC_H
#define CORDON_POLICY_JSONRPC_H

#include <stdbool.h>
#include <stddef.h>

#define POLICY_RPC_MAX_BATCH 128
#define POLICY_RPC_METHOD_MAX 256
#define POLICY_RPC_TOOL_MAX 256
#define POLICY_RPC_ID_MAX 96

struct policy_rpc_call {
    bool response;     /* has result/error and no method: a response sent by the client */
    bool notification; /* no id */
    bool has_tool;     /* params.name present and a string */
    char method[POLICY_RPC_METHOD_MAX + 1];
    char tool[POLICY_RPC_TOOL_MAX + 1];
    char id[POLICY_RPC_ID_MAX + 1]; /* the id as JSON text; "null" when absent */
};

struct policy_rpc_msg {
    bool batch;
    size_t n;
    struct policy_rpc_call calls[POLICY_RPC_MAX_BATCH];
};

/* Parses body[0..len) into out. Returns 0, or -EINVAL with *why set to a
 * static explanation (not JSON, duplicate key, not JSON-RPC 2.0, empty or
 * too large batch, method or tool name too long). When the body parsed
 * far enough, out->calls[0].id holds the first id for the error reply. */
int policy_jsonrpc_parse(const char *body, size_t len, struct policy_rpc_msg *out,
                         const char **why) __attribute__((warn_unused_result));

#endif
