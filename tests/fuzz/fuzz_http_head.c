/* libFuzzer: request heads and bodies through http/message, the proxy's
 * target parsers on whatever target the head carries, and the upgrade
 * filter on its headers. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "http/message.h"
#include "proxy/target.h"
#include "proxy/upgrade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_parser hp;
    static struct http_head h;
    http_parser_init(&hp, HTTP_REQUEST_PARSER);
    if (http_parse_head(&hp, (const char *)data, size, &h) == HTTP_HEAD_DONE) {
        struct proxy_target t;
        const char *why;
        if (target_parse_authority(h.target, h.target_len, &t, &why) == 0)
            (void)t;
        if (target_parse_absolute(h.target, h.target_len, &t, &why) == 0)
            (void)t;
        struct buf out;
        if (buf_init(&out, HTTP_HEAD_MAX + 1024) == 0) {
            (void)upgrade_head_needs_filter(&h);
            (void)upgrade_offers_websocket(&h);
            for (size_t i = 0; i < h.n_headers; i++)
                if (upgrade_write_header(&h, &h.headers[i], &out) < 0)
                    break;
            buf_free(&out);
        }
        size_t used;
        if (h.len <= size)
            (void)http_parse_body(&hp, (const char *)data + h.len, size - h.len, &used);
    }
    http_parser_init(&hp, HTTP_RESPONSE_PARSER);
    size_t used;
    enum http_step whole = http_parse_body(&hp, (const char *)data, size, &used);
    size_t ul;
    const char *u = http_parser_upgrade(&hp, &ul);
    if (u && ul > sizeof(hp.upgrade))
        __builtin_trap(); /* the kept Upgrade value never exceeds its buffer */
    /* the same response byte by byte: the same Upgrade value */
    struct http_parser hb;
    http_parser_init(&hb, HTTP_RESPONSE_PARSER);
    enum http_step st = HTTP_NEED_MORE;
    for (size_t i = 0; i < size && st == HTTP_NEED_MORE; i++)
        st = http_parse_body(&hb, (const char *)data + i, 1, &used);
    size_t ul2;
    const char *u2 = http_parser_upgrade(&hb, &ul2);
    if (whole == HTTP_MSG_DONE && st == HTTP_MSG_DONE && u && u2 &&
        (ul != ul2 || memcmp(u, u2, ul) != 0))
        __builtin_trap();
    if (whole != HTTP_ERROR)
        (void)http_parse_eof(&hp);
    return 0;
}
