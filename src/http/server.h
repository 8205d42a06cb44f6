/* http/server: a small event-driven HTTP/1.1 server on llhttp.
 *
 * One request at a time per connection (pipelined requests wait in the read
 * buffer until the previous response is done). Every request gets exactly
 * one of: http_respond(), a stream (http_stream_begin ... http_stream_end),
 * or an upgrade hand-off (http_upgrade_take). Limits, each with its
 * behaviour when hit:
 *   max_head  request line + headers   -> 431, connection closed
 *             (0 or more than HTTP_HEAD_MAX: HTTP_HEAD_MAX)
 *   headers   HTTP_MAX_HEADERS fields      -> 431
 * Strictness (shared with the proxy through http/vocab): bare LF or CR,
 * obs-fold, whitespace before a colon, Content-Length with
 * Transfer-Encoding, duplicate Content-Length, bad chunked framing -> 400,
 * connection closed.
 *   max_body  request body             -> 413, connection closed
 *   max_conns open connections         -> 503 written on accept, closed
 *   max_out   stream output buffer     -> http_stream_write() says -ENOBUFS;
 *                                         the producer waits for on_drain
 *   idle_ms   waiting for a request    -> connection closed silently
 * Errors the layer answers itself use the JSON envelope
 * {"code": "...", "message": "..."}.
 *
 * Loop-thread only. Connections are freed through loop_defer, so a pointer
 * handed to a callback stays valid until the current loop turn ends. */
#ifndef CORDON_HTTP_SERVER_H
#define CORDON_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http/vocab.h"

struct loop;
struct http_server;
struct http_conn;


struct http_header {
    const char *name, *value;
    size_t name_len, value_len;
};

/* Valid only during the request callback (copy what you keep). Strings are
 * NUL-terminated. */
struct http_req {
    int method;              /* llhttp_method_t */
    const char *method_name; /* "GET", ... */
    const char *path;        /* request-target up to '?' (not decoded) */
    size_t path_len;
    const char *query;       /* after '?', "" when absent (not decoded) */
    size_t query_len;
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    const uint8_t *body;
    size_t body_len;
    int upgrade;             /* Connection: upgrade + Upgrade: present */
    const char *peer;        /* "ip:port" of the client */
    void *body_sink;         /* the data given to http_body_stream(), else NULL */
};

/* Fires once per complete request. The callee must answer (now or later). */
typedef void (*http_request_cb)(struct http_conn *c, const struct http_req *req, void *data);

/* Optional: fires once the head of a request that has a body is parsed,
 * before any of the body is read (the request view has method, path, query,
 * headers and peer; body fields are empty). It must not answer; it may call
 * http_body_stream() to take the body as a stream. */
typedef void (*http_head_cb)(struct http_conn *c, const struct http_req *req, void *data);

struct http_server_cfg {
    size_t max_head;
    size_t max_body;   /* buffered bodies only; a streamed body has no cap here */
    size_t max_conns;
    size_t max_out;
    uint64_t idle_ms;
    http_head_cb on_head; /* NULL: every body is buffered (max_body) */
};

/* Listens on addr (SO_REUSEADDR, nonblocking) and serves on loop l.
 * Returns 0 and *out, or -errno. */
int http_server_start(struct loop *l, const struct sockaddr *addr, socklen_t alen,
                      const struct http_server_cfg *cfg, http_request_cb cb, void *data,
                      struct http_server **out) __attribute__((warn_unused_result));
/* The bound address (useful with port 0). */
int http_server_addr(struct http_server *s, struct sockaddr_storage *ss, socklen_t *len);
/* Closes the listener and every connection (streams get on_close). */
void http_server_free(struct http_server *s);

/* Streamed request bodies. Called from on_head: the body goes to
 * cbs->on_data in pieces as it is read (at most HTTP_READ_BUF at a time,
 * de-chunked, never buffered by the layer), then the request callback fires
 * as usual with req->body NULL, req->body_len the total and req->body_sink
 * == data. Memory stays bounded by the read buffer: the layer reads the next
 * piece only after on_data returns. */
struct http_body_cbs {
    /* Returns 0, or -errno to drop the rest of the body: it is still read
     * (so the answer reaches a client that is still sending) and the
     * request callback still fires. Or HTTP_BODY_PAUSE: the piece is taken,
     * but the socket is not read again until http_body_resume() (the rest
     * of the current read, at most HTTP_READ_BUF bytes, may still arrive;
     * the idle timeout is off while paused). This is how a sink that
     * forwards the body (the server's proxy route) applies backpressure. */
    int (*on_data)(struct http_conn *c, const uint8_t *p, size_t n, void *data);
    /* The connection closed before the body was complete (fires at the end
     * of that loop turn); the request callback will not fire. */
    void (*on_abort)(void *data);
};
int http_body_stream(struct http_conn *c, const struct http_body_cbs *cbs, void *data)
    __attribute__((warn_unused_result));
#define HTTP_BODY_PAUSE 1
/* Reads the body again after on_data returned HTTP_BODY_PAUSE (no-op when
 * not paused). May call on_data, and the request callback, before it
 * returns. */
void http_body_resume(struct http_conn *c);

/* Case-insensitive header lookup; returns the value or NULL. */
const char *http_req_header(const struct http_req *req, const char *name);
/* Finds query parameter `name`, percent-decodes it into out (cap bytes incl.
 * NUL). Returns its length, -ENOENT when absent, -ENOSPC when too long,
 * -EINVAL on a bad escape. */
int http_query_get(const char *query, size_t qlen, const char *name, char *out, size_t cap)
    __attribute__((warn_unused_result));
/* As http_query_get for the n-th (from 0) occurrence of a repeated
 * parameter (?path=a&path=b). */
int http_query_nth(const char *query, size_t qlen, const char *name, unsigned n, char *out,
                   size_t cap) __attribute__((warn_unused_result));

/* Percent-decodes s[0..len) ('+' is a space) into out (cap bytes incl.
 * NUL). Returns the length, -ENOSPC or -EINVAL (bad escape). */
int http_query_decode(const char *s, size_t len, char *out, size_t cap)
    __attribute__((warn_unused_result));

/* Sends a complete response. extra is NULL or preformatted header lines
 * ("Name: value\r\n..."). Returns 0 or -errno (the connection is then
 * closed). */
int http_respond(struct http_conn *c, int status, const char *ctype, const void *body,
                 size_t len, const char *extra);

/* Sends a response whose body is len bytes of fd from off, written with
 * sendfile (no copy into memory; a HEAD request gets the head only).
 * Content-Length is len. Takes fd: it is closed when the body is sent or
 * the connection ends. A file that ends before len bytes closes the
 * connection (the body never looks complete). Returns 0 or -errno. */
int http_respond_file(struct http_conn *c, int status, const char *ctype, int fd, uint64_t off,
                      uint64_t len, const char *extra);

/* For a handler that answers later: on_close fires (at the end of the loop
 * turn) if the client goes away before the answer, after which c is gone.
 * Answering (http_respond, http_stream_begin, http_upgrade_take) cancels it,
 * even when it fails because the connection closed earlier in the turn. */
void http_hold(struct http_conn *c, void (*on_close)(struct http_conn *c, void *data),
               void *data);

/* Streaming responses (chunked transfer coding). */
struct http_stream_cbs {
    /* The output buffer emptied: write more. */
    void (*on_drain)(struct http_conn *c, void *data);
    /* The client went away or the server is shutting down. Fires at the
     * end of the loop turn in which the connection closed (never inside an
     * http_stream_* call); until then writes fail with -EPIPE and room is 0.
     * c must not be used after this returns. Not called once the owner has
     * called http_stream_end(). */
    void (*on_close)(struct http_conn *c, void *data);
};
int http_stream_begin(struct http_conn *c, int status, const char *ctype, const char *extra,
                      const struct http_stream_cbs *cbs, void *data);
/* Queues one chunk. Returns 0, -ENOBUFS when the buffer is already at
 * max_out (nothing queued; wait for on_drain), or -EPIPE. */
int http_stream_write(struct http_conn *c, const void *data, size_t len);
/* Bytes that may still be queued before the buffer is at max_out. */
size_t http_stream_room(const struct http_conn *c);
/* Writes the last chunk (or, on a closed connection, just releases it:
 * -EPIPE); on_close is not called after this. */
int http_stream_end(struct http_conn *c);

/* Closes the connection now, without finishing the response (a relayed
 * body that broke off must not look complete). No callbacks fire. */
void http_abort(struct http_conn *c);
/* The connection closes after the current response. */
void http_set_close(struct http_conn *c);

/* Takes the connection's socket for a protocol switch. The connection object
 * is released; *fd now belongs to the caller. Bytes the client already sent
 * after the request head are copied to leftover (cap bytes; at most the
 * read buffer size, 16 KiB). Returns 0 or -errno. */
int http_upgrade_take(struct http_conn *c, int *fd, uint8_t *leftover, size_t cap,
                      size_t *leftover_len) __attribute__((warn_unused_result));

#define HTTP_READ_BUF 16384

#endif
