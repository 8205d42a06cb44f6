/* http/vocab: the one HTTP/1.1 vocabulary every cordon front door shares —
 * the proxy (http/message), execd's and the server's (http/server).
 *
 *   limits        HTTP_HEAD_MAX bytes of request line + headers,
 *                 HTTP_MAX_HEADERS header fields (more: 431)
 *   status table  http_status_text(): one reason phrase per code
 *   strict heads  http_head_guard: bare LF, bare CR and obs-fold are refused
 *                 (RFC 9112 §2.2, §5.2) before llhttp sees the bytes; llhttp
 *                 itself refuses Content-Length with Transfer-Encoding and
 *                 duplicate Content-Length (RFC 9112 §6.3)
 *   strict chunks http_chunk_guard: a second look at chunked framing
 *                 (RFC 9112 §7.1): llhttp 8.1 accepts any two bytes where
 *                 the CRLF after chunk data belongs
 *   names         http_name_ws_before_colon(): "Name :" is a 400 (§5.1) */
#ifndef CORDON_HTTP_VOCAB_H
#define CORDON_HTTP_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX 16384
#define HTTP_MAX_HEADERS 128

/* Reason phrase for a status code ("Unknown" for codes not in the table). */
const char *http_status_text(int status);

/* Incremental check of a request head's line endings. Feed bytes from the
 * start of a message; the guard stops at the empty line that ends the head
 * (leading empty lines before the request line are skipped, RFC 9112 §2.2). */
struct http_head_guard {
    uint8_t prev;      /* previous byte */
    uint8_t line_len;  /* bytes on the current line, saturating at 2 */
    bool started;      /* the request line has begun */
    bool done;         /* the head's final CRLF was seen */
};

void http_head_guard_init(struct http_head_guard *g);
/* Checks buf[0..len). Returns the number of bytes that belong to the head
 * (== len unless the head ended inside buf), or -EINVAL with *why set. Once
 * done, returns 0 for any further input. */
long http_head_guard_feed(struct http_head_guard *g, const char *buf, size_t len,
                          const char **why) __attribute__((warn_unused_result));

enum chunk_state {
    CHUNK_SIZE0, CHUNK_SIZE, CHUNK_EXT, CHUNK_SIZE_LF, CHUNK_DATA, CHUNK_DATA_CR, CHUNK_DATA_LF,
    CHUNK_TRAILER0, CHUNK_TRAILER, CHUNK_TRAILER_LF, CHUNK_END_LF, CHUNK_DONE, CHUNK_BAD,
};

struct chunk_guard {
    enum chunk_state st;
    uint64_t left;    /* data bytes left in the current chunk */
    unsigned digits;
    bool last;        /* the size was 0 */
    bool sized;       /* a whole chunk-size line (size, extensions, CRLF) was seen */
};

/* Validates bytes of a chunked body (data bytes skipped in bulk). Returns
 * false at the first framing error. g zeroed = at the first chunk size. */
bool http_chunk_guard_feed(struct chunk_guard *g, const char *p, size_t n);
static inline bool http_chunk_guard_done(const struct chunk_guard *g)
{
    return g->st == CHUNK_DONE;
}
/* True once the first chunk-size line is complete and valid: a proxy may
 * then let the request head go (RFC 9112 §7.1; a bad size is refused
 * before anything reaches the upstream). */
static inline bool http_chunk_guard_sized(const struct chunk_guard *g)
{
    return g->sized;
}

/* Hex digit value or -1. */
int http_hexval(char c);

/* True when a header field name ends in whitespace ("Name :"). */
bool http_name_ws_before_colon(const char *name, size_t len);

#endif
