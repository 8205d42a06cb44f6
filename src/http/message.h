/* http/message: HTTP/1.x message framing on llhttp, for relays.
 *
 * One http_parser follows one direction of a connection message by message.
 * Requests: the whole head must be in one buffer (the caller accumulates up
 * to HTTP_HEAD_MAX bytes); http_parse_head() validates it strictly with
 * llhttp and records the request line and headers as spans into that
 * buffer. The body is then streamed through http_parse_body(), which only
 * finds the message's end: bytes are relayed by the caller unchanged, so
 * chunked framing is preserved.
 * Responses: http_parse_body() is used from the first byte (heads are not
 * captured); status and upgrade are available once the head is parsed.
 *
 * Refused (RFC 9112 §6.1, §6.3, §11.2): Content-Length with Transfer-Encoding,
 * duplicate or invalid Content-Length, invalid chunk framing, obs-fold,
 * Transfer-Encoding in an HTTP/1.0 request. */
#ifndef CORDON_HTTP_MESSAGE_H
#define CORDON_HTTP_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/vocab.h"
#include "llhttp.h"

struct http_hdr {
    const char *name;
    size_t name_len;
    const char *value; /* surrounding whitespace trimmed */
    size_t value_len;
};

struct http_head {
    int method; /* llhttp_method_t */
    const char *method_str;
    size_t method_len;
    const char *target;
    size_t target_len;
    uint8_t http_major, http_minor;
    size_t n_headers;
    struct http_hdr headers[HTTP_MAX_HEADERS];
    size_t len;        /* bytes of the head, including the final CRLF CRLF */
    bool keep_alive;   /* per version and Connection header */
    bool upgrade;      /* Upgrade header together with Connection: upgrade */
    bool has_body;     /* Content-Length > 0 or Transfer-Encoding */
    bool expect_continue;
};

enum http_type { HTTP_REQUEST_PARSER, HTTP_RESPONSE_PARSER };

enum http_step {
    HTTP_NEED_MORE,  /* consumed everything; message not finished */
    HTTP_HEAD_DONE,  /* http_parse_head: head parsed (message may also be done) */
    HTTP_MSG_DONE,   /* the message ended at *consumed */
    HTTP_TOO_LARGE,  /* head exceeds HTTP_HEAD_MAX */
    HTTP_ERROR,      /* malformed; http_parser_error() says why */
};

struct http_parser {
    llhttp_t p;
    struct chunk_guard cg;
    bool guard_chunks;
    llhttp_settings_t s;
    enum http_type type;
    struct http_head *head; /* capture target while parsing a head, else NULL */
    bool header_overflow;
    char name_last;         /* last byte of the header field name being parsed */
    /* Responses: the Upgrade header's value(s) of the current message,
     * collected while streaming (heads are not captured), for a relay that
     * must check a 101 switches to what was offered (http_parser_upgrade). */
    char rname[8];          /* the header name being parsed, if it fits */
    uint8_t rname_len;      /* > sizeof(rname): longer (not "upgrade") */
    bool in_upgrade;        /* the current value is an Upgrade header's */
    bool upgrade_long;      /* more Upgrade bytes than fit */
    uint8_t upgrade_len;
    char upgrade[96];
    bool msg_done;
    bool skip_body;       /* response to HEAD */
    int status;           /* response status of the last parsed head */
    bool head_seen;       /* response: current message's head parsed */
    const char *error;    /* static reason string */
    /* Optional: decoded body bytes (chunked framing removed) as they are
     * parsed, for a consumer that re-frames the body. */
    void (*on_body)(void *data, const char *at, size_t len);
    void *body_data;
};

void http_parser_init(struct http_parser *hp, enum http_type type);

/* Requests, and response heads (then head->target is empty and the status
 * is http_parser_status()). buf holds len bytes starting at a message start (leading
 * CRLFs are skipped and counted in head->len). Returns HTTP_HEAD_DONE,
 * HTTP_NEED_MORE (no complete head yet), HTTP_TOO_LARGE or HTTP_ERROR.
 * After HTTP_HEAD_DONE, http_parser_msg_done() tells whether the message
 * (without body) is already complete. */
enum http_step http_parse_head(struct http_parser *hp, const char *buf, size_t len,
                               struct http_head *head);

/* Streams body bytes (requests) or a whole response. Sets *consumed to the
 * bytes that belong to the current message. Returns HTTP_MSG_DONE when the
 * message ended (interim 1xx responses other than 101 do not end it),
 * HTTP_NEED_MORE, or HTTP_ERROR. */
enum http_step http_parse_body(struct http_parser *hp, const char *buf, size_t len,
                               size_t *consumed);
/* The peer closed: ends a close-delimited message. Returns HTTP_MSG_DONE,
 * HTTP_ERROR (truncated), or HTTP_NEED_MORE if no message was in progress. */
enum http_step http_parse_eof(struct http_parser *hp);

/* Prepares for the next message after HTTP_MSG_DONE. */
void http_parser_next(struct http_parser *hp);

bool http_parser_msg_done(const struct http_parser *hp);
/* The current message's body is chunked and not yet complete. */
static inline bool http_parser_chunked(const struct http_parser *hp)
{
    return hp->guard_chunks && !hp->msg_done;
}
/* The current chunked body's first chunk-size line was parsed and is valid. */
static inline bool http_parser_chunk_sized(const struct http_parser *hp)
{
    return hp->guard_chunks && http_chunk_guard_sized(&hp->cg);
}
/* Responses: the current message's Upgrade header value(s), joined with
 * ", " (*len 0: none); NULL when longer than the parser keeps. */
const char *http_parser_upgrade(const struct http_parser *hp, size_t *len);
/* Response status of the last parsed head (0 before). */
static inline int http_parser_status(const struct http_parser *hp) { return hp->status; }
const char *http_parser_error(const struct http_parser *hp);
/* For responses: the request was HEAD, so the response has no body. */
void http_parser_expect_no_body(struct http_parser *hp, bool no_body);

/* Header lookup, ASCII case-insensitive name; returns the first match. */
const struct http_hdr *http_head_find(const struct http_head *h, const char *name);
/* True when the comma-separated header value contains token (case-insensitive). */
bool http_value_has_token(const char *value, size_t len, const char *token);

#endif
