/* execd/sse: event-stream encoding for POST /command.
 *
 * Each event is one line "data: {json}" followed by a blank line. Output
 * text must be valid UTF-8 inside JSON: sse_utf8_cut() holds back a
 * sequence split across reads, and sse_text() turns bytes that are still
 * invalid into U+FFFD (the exact bytes stay available from
 * /command/{id}/logs). */
#ifndef CORDON_EXECD_SSE_H
#define CORDON_EXECD_SSE_H

#include <stddef.h>
#include <stdint.h>

/* Length of the longest prefix of p[0..len) that does not end inside an
 * incomplete (but so far valid) UTF-8 sequence. */
size_t sse_utf8_cut(const uint8_t *p, size_t len);

/* A JSON string (json_t *) holding p[0..len) with invalid UTF-8 replaced
 * by U+FFFD. NULL on out-of-memory. */
void *sse_text(const uint8_t *p, size_t len);

/* Encodes json (a json_t *, reference stolen) as one event into a malloc'd
 * buffer; *len gets its size. NULL on out-of-memory. */
char *sse_event(void *json, size_t *len);

#endif
