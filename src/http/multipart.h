/* http/multipart: a streaming multipart/form-data parser (RFC 7578 over
 * RFC 2046 §5.1.1).
 *
 * Bytes go in as they arrive, in pieces of any size; part data comes out
 * through on_data in pieces, without being collected: memory is the struct
 * (one part head of at most HTTP_MP_HEAD_MAX bytes, the boundary). Rules:
 *   - the boundary comes from the Content-Type parameter, 1..70 characters
 *     of RFC 2046's bchars (no CR or LF, so a delimiter can only start at a
 *     CR and a broken partial match never hides the start of another);
 *   - the preamble before the first delimiter and the epilogue after the
 *     close delimiter are ignored; transport padding (spaces, tabs) after a
 *     delimiter is allowed;
 *   - part heads end with CRLF CRLF, use CRLF line ends, no obs-fold; a
 *     head over HTTP_MP_HEAD_MAX bytes or HTTP_MP_MAX_FIELDS fields is an
 *     error; Content-Disposition must be form-data with a name;
 *   - the body must end with the close delimiter (http_multipart_finish).
 * Errors set why (a constant) and stick: every later feed fails too. */
#ifndef CORDON_HTTP_MULTIPART_H
#define CORDON_HTTP_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MP_HEAD_MAX 8192
#define HTTP_MP_MAX_FIELDS 16
#define HTTP_MP_BOUNDARY_MAX 70

enum mp_state { MP_PREAMBLE, MP_AFTER_DELIM, MP_AFTER_DASH, MP_PAD_LF, MP_HEAD, MP_BODY,
                MP_EPILOGUE, MP_ERROR };

/* What a part's head said. Strings are NUL-terminated and live until the
 * part ends. filename and content_type are "" when absent. */
struct http_mp_part {
    const char *name;
    const char *filename;
    const char *content_type;
};

struct http_mp_cbs {
    /* A part begins. Return 0, or -errno to stop the parse (why is then
     * "refused by the receiver"). */
    int (*on_part)(const struct http_mp_part *part, void *data);
    int (*on_data)(const uint8_t *p, size_t n, void *data);
    int (*on_part_end)(void *data);
};

struct http_multipart {
    enum mp_state st;
    char delim[4 + HTTP_MP_BOUNDARY_MAX]; /* "\r\n--" + boundary */
    size_t dlen;
    size_t match;     /* delimiter bytes matched and held back */
    int in_part;      /* on_part fired, on_part_end not yet */
    unsigned nparts;
    char head[HTTP_MP_HEAD_MAX + 1];
    size_t hlen;
    char vals[HTTP_MP_HEAD_MAX + 2]; /* name and filename, decoded */
    const char *why;
    struct http_mp_cbs cbs;
    void *data;
};

/* Reads the boundary from a Content-Type value ("multipart/form-data;
 * boundary=..."). Returns 0, or -EINVAL with *why set. */
int http_multipart_init(struct http_multipart *m, const char *content_type,
                        const struct http_mp_cbs *cbs, void *data, const char **why)
    __attribute__((warn_unused_result));
/* Parses the next piece of the body. Returns 0 or -EINVAL (m->why says
 * what), or the receiver's -errno. */
int http_multipart_feed(struct http_multipart *m, const uint8_t *p, size_t n)
    __attribute__((warn_unused_result));
/* At the end of the body: 0 when the close delimiter was seen, else
 * -EINVAL (m->why set). */
int http_multipart_finish(struct http_multipart *m) __attribute__((warn_unused_result));

#endif
