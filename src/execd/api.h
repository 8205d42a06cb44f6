/* execd/api: the HTTP routes, authentication and the error envelope.
 *
 * Every error is JSON {"code": "<STABLE_CODE>", "message": "<what and what
 * to do>"}; codes are listed in doc/execd.md. */
#ifndef CORDON_EXECD_API_H
#define CORDON_EXECD_API_H

#include <stddef.h>

struct execd;
struct http_conn;
struct http_req;

/* The http_server request callback (data is the struct execd). */
void api_on_request(struct http_conn *c, const struct http_req *req, void *data);
/* The http_server on_head hook: POST /files/upload streams its body. */
void api_on_head(struct http_conn *c, const struct http_req *req, void *data);

/* Error responses. */
void api_error(struct http_conn *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void api_error_hdr(struct http_conn *c, int status, const char *extra, const char *code,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Sends json (a json_t *, reference stolen) with status. */
void api_json(struct http_conn *c, int status, void *json);
/* Parses the body as a JSON object ({} when empty). On failure answers 400
 * INVALID_REQUEST_BODY with the parse position and returns NULL. */
void *api_body_object(struct http_conn *c, const struct http_req *req);
/* Reads an optional "env"/"envs" object of strings into a NULL-terminated
 * "K=V" array (*out, free with api_strv_free). Answers 400 and returns -1
 * on bad input. */
int api_env(struct http_conn *c, void *root, char ***out);
/* Reads "cwd" from root (a json_t object): expands a leading ~ and creates
 * the directory into out. *has = 0 when absent. Answers 400 and returns -1
 * on failure. */
int api_cwd_create(struct http_conn *c, void *root, char *out, size_t cap, int *has);
void api_strv_free(char **v);

#endif
