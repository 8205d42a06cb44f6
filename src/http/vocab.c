/* http/vocab: shared limits, status phrases and strict framing checks. */
#include "http/vocab.h"

#include <errno.h>

#include "core/banned.h"

const char *http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void http_head_guard_init(struct http_head_guard *g)
{
    g->prev = '\n';
    g->line_len = 0;
    g->started = false;
    g->done = false;
}

long http_head_guard_feed(struct http_head_guard *g, const char *buf, size_t len,
                          const char **why)
{
    if (g->done)
        return 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = (uint8_t)buf[i];
        if (ch == '\n') {
            /* RFC 9112 §2.2: a bare LF is refused (smuggling via parsers
             * that disagree about line ends). */
            if (g->prev != '\r') {
                *why = "bare LF in the request head (lines must end with CRLF)";
                return -EINVAL;
            }
            if (g->line_len == 1 && g->started) { /* only the CR: the empty line */
                g->done = true;
                return (long)(i + 1);
            }
            g->line_len = 0;
        } else {
            if (g->prev == '\r') {
                *why = "bare CR in the request head";
                return -EINVAL;
            }
            /* RFC 9112 §5.2: obs-fold (a line starting with SP/HT). */
            if (g->line_len == 0 && g->started && (ch == ' ' || ch == '\t')) {
                *why = "obsolete line folding (obs-fold) in a header";
                return -EINVAL;
            }
            if (ch != '\r')
                g->started = true;
            if (g->line_len < 2)
                g->line_len++;
        }
        g->prev = ch;
    }
    return (long)len;
}

int http_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool http_name_ws_before_colon(const char *name, size_t len)
{
    return len && (name[len - 1] == ' ' || name[len - 1] == '\t');
}

static enum chunk_state chunk_size_step(struct chunk_guard *g, char ch)
{
    int v = http_hexval(ch);
    if (v >= 0 && g->digits < 16) {
        g->left = g->left * 16 + (uint64_t)v;
        g->digits++;
        return CHUNK_SIZE;
    }
    if (g->st == CHUNK_SIZE0)
        return CHUNK_BAD;
    g->last = g->left == 0;
    if (ch == ';')
        return CHUNK_EXT;
    return ch == '\r' ? CHUNK_SIZE_LF : CHUNK_BAD;
}

/* One byte of chunked framing; returns the next state. */
static enum chunk_state chunk_step(struct chunk_guard *g, char ch)
{
    switch (g->st) {
    case CHUNK_SIZE0:
    case CHUNK_SIZE:
        return chunk_size_step(g, ch);
    case CHUNK_EXT:
        return ch == '\r' ? CHUNK_SIZE_LF : ch == '\n' ? CHUNK_BAD : CHUNK_EXT;
    case CHUNK_SIZE_LF:
        if (ch != '\n')
            return CHUNK_BAD;
        g->sized = true;
        return g->last ? CHUNK_TRAILER0 : CHUNK_DATA;
    case CHUNK_DATA:
        return --g->left == 0 ? CHUNK_DATA_CR : CHUNK_DATA;
    case CHUNK_DATA_CR:
        return ch == '\r' ? CHUNK_DATA_LF : CHUNK_BAD;
    case CHUNK_DATA_LF:
        g->digits = 0;
        return ch == '\n' ? CHUNK_SIZE0 : CHUNK_BAD;
    case CHUNK_TRAILER0: /* a trailer line never starts with whitespace (obs-fold, §5.2) */
        return ch == '\r' ? CHUNK_END_LF : ch == ' ' || ch == '\t' || ch == '\n' ? CHUNK_BAD
                                                                              : CHUNK_TRAILER;
    case CHUNK_TRAILER:
        return ch == '\r' ? CHUNK_TRAILER_LF : ch == '\n' ? CHUNK_BAD : CHUNK_TRAILER;
    case CHUNK_TRAILER_LF:
        return ch == '\n' ? CHUNK_TRAILER0 : CHUNK_BAD;
    case CHUNK_END_LF:
        return ch == '\n' ? CHUNK_DONE : CHUNK_BAD;
    case CHUNK_DONE:
    case CHUNK_BAD:
        return CHUNK_BAD;
    }
    return CHUNK_BAD;
}

bool http_chunk_guard_feed(struct chunk_guard *g, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (g->st == CHUNK_DATA && g->left > 1) {
            uint64_t skip = g->left - 1 < n - i ? g->left - 1 : n - i;
            g->left -= skip;
            i += (size_t)skip;
            continue;
        }
        g->st = chunk_step(g, p[i++]);
        if (g->st == CHUNK_BAD)
            return false;
    }
    return true;
}
