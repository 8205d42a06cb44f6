/* libFuzzer: chunked request bodies through http/message (llhttp and the
 * chunk guard), as the proxy's REQ_BODY and EXCHANGE parse them: the input
 * is the body of a chunked POST, decoded in one piece, in two pieces (split
 * where the first byte says), and byte by byte. Every way must agree on the
 * outcome, the bytes consumed, the decoded bytes and whether the first
 * chunk-size line was seen; decoded bytes never exceed raw ones; a complete
 * body always had a valid first size line. Any disagreement traps. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEC_MAX 65536

struct run {
    enum http_step st;
    size_t consumed;
    bool sized;
    char dec[DEC_MAX];
    size_t dec_len;
    bool dec_over;
};

static void on_body(void *p, const char *at, size_t len)
{
    struct run *r = p;
    if (r->dec_over || len > DEC_MAX - r->dec_len) {
        r->dec_over = true;
        return;
    }
    memcpy(r->dec + r->dec_len, at, len);
    r->dec_len += len;
}

static const char HEAD[] = "POST /f HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\n\r\n";

/* Feeds body in pieces of at most step bytes (0 = split once at split). */
static void run(struct run *r, const char *body, size_t n, size_t step, size_t split)
{
    struct http_parser hp;
    static struct http_head h;
    memset(r, 0, sizeof(*r));
    http_parser_init(&hp, HTTP_REQUEST_PARSER);
    if (http_parse_head(&hp, HEAD, sizeof(HEAD) - 1, &h) != HTTP_HEAD_DONE ||
        !http_parser_chunked(&hp))
        __builtin_trap();
    hp.on_body = on_body;
    hp.body_data = r;
    r->st = HTTP_NEED_MORE;
    size_t at = 0;
    while (at < n && r->st == HTTP_NEED_MORE) {
        size_t len = step ? (n - at < step ? n - at : step)
                          : (at < split ? split - at : n - at);
        size_t used = 0;
        r->st = http_parse_body(&hp, body + at, len, &used);
        if (used > len)
            __builtin_trap();
        at += used;
        if (r->st == HTTP_NEED_MORE && used != len)
            __builtin_trap();
    }
    r->consumed = at;
    r->sized = http_parser_chunk_sized(&hp);
    if (r->st == HTTP_MSG_DONE && (!r->sized || http_parser_chunked(&hp)))
        __builtin_trap();
}

static void same(const struct run *a, const struct run *b)
{
    if (a->st != b->st)
        __builtin_trap();
    if (a->st == HTTP_ERROR)
        return; /* where exactly a piecewise parse stops may differ */
    if (a->consumed != b->consumed || a->sized != b->sized || a->dec_over != b->dec_over ||
        a->dec_len != b->dec_len || memcmp(a->dec, b->dec, a->dec_len) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run whole, halves, bytes;
    if (size == 0 || size > 8192)
        return 0;
    size_t split = data[0] % size;
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    run(&whole, body, n, n ? n : 1, 0);
    run(&halves, body, n, 0, split);
    run(&bytes, body, n, 1, 0);
    same(&whole, &halves);
    same(&whole, &bytes);
    if (whole.st != HTTP_ERROR && !whole.dec_over && whole.dec_len > whole.consumed)
        __builtin_trap();
    /* the guard alone, in one piece and byte by byte, agrees with itself */
    struct chunk_guard g1 = {0}, g2 = {0};
    bool ok1 = http_chunk_guard_feed(&g1, body, n), ok2 = true;
    for (size_t i = 0; i < n && ok2; i++)
        ok2 = http_chunk_guard_feed(&g2, body + i, 1);
    if (ok1 != ok2 || (ok1 && (g1.st != g2.st || g1.sized != g2.sized)))
        __builtin_trap();
    return 0;
}
