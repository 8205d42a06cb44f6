/* server internals shared by routes.c, hproxy.c and wsproxy.c. */
#ifndef CORDON_SERVER_SERVER_INT_H
#define CORDON_SERVER_SERVER_INT_H

#include <jansson.h>
#include <netinet/in.h>

#include "core/loop.h"

#include "http/server.h"
#include "server/driver.h"
#include "server/server.h"

struct srv {
    struct loop *loop;
    struct server_cfg cfg;
    struct sbx_driver *drv;
    struct http_server *http;
    uint64_t next_id;
};

/* "X-Request-ID: ...\r\n" for req (echoed when sane, else generated). */
void server_request_id(const struct http_req *req, char *out, size_t cap);
/* {code, message} error with the request id header. */
void server_error(struct http_conn *c, const char *rid, int status, const char *code,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A JSON response (steals j). */
void server_json(struct http_conn *c, const char *rid, int status, json_t *j);

/* The proxy routes. rest is the path after /proxy/{port} (may be empty),
 * query the raw query string. Auth and the port are already checked. */
void hproxy_handle(struct srv *s, struct http_conn *c, const struct http_req *req,
                   const char *rid, const char *id, uint16_t port, const char *rest,
                   size_t rest_len);
/* From the front door's on_head, for a proxied request with a body whose
 * sandbox is running: the body is streamed to the backend as it arrives
 * (http_body_stream). Says nothing when it does not take the body (it is
 * then buffered and the request handled when complete);
 * hproxy_body_done() finishes it from the request callback (sink is
 * req->body_sink). */
void hproxy_stream(struct srv *s, struct http_conn *c, const struct http_req *req,
                   const char *rid, const char *id, uint16_t port, const char *rest,
                   size_t rest_len);
void hproxy_body_done(void *sink, struct http_conn *c);
void wsproxy_handle(struct srv *s, struct http_conn *c, const struct http_req *req,
                    const char *rid, const char *id, uint16_t port, const char *rest,
                    size_t rest_len);

/* Shared by both proxies: is this request header forwarded to a sandbox?
 * Drops Host, hop-by-hop headers, every header named in Connection,
 * Authorization, Cookie, the API key, and (ws) the handshake headers. */
int hproxy_forward_header(const struct http_req *req, const struct http_header *h, int ws);
/* Resolves the backend; answers the client itself on failure (returns <0). */
int hproxy_resolve(struct srv *s, struct http_conn *c, const char *rid, const char *id,
                   uint16_t port, struct sockaddr_in *out, char *token, size_t cap);

/* The request head for the backend: method, "/{rest}?{query}", Host,
 * filtered headers, X-Forwarded-*, and when token is not empty
 * X-EXECD-ACCESS-TOKEN (the client's own is replaced). mode: BUFFERED adds
 * Content-Length and the buffered body; STREAM the client's framing
 * (its Content-Length, or chunked), the body follows; WS nothing (the
 * caller appends the handshake headers and the final CRLF). NULL when out
 * of memory. */
enum { HPX_HEAD_BUFFERED = 0, HPX_HEAD_WS = 1, HPX_HEAD_STREAM = 2 };
char *hproxy_build_head(const struct http_req *req, const struct sockaddr_in *be,
                        const char *token, const char *rest, size_t rest_len, int mode,
                        size_t *len);

void server_on_request(struct http_conn *c, const struct http_req *req, void *data);
/* The front door's on_head: a proxied request body is streamed. */
void server_on_head(struct http_conn *c, const struct http_req *req, void *data);

#endif
