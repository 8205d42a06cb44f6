#include "http/message.h"

#include <string.h>
#include <strings.h>

#include "core/banned.h"

static struct http_parser *hp_of(llhttp_t *p) { return (struct http_parser *)p->data; }

static int on_method(llhttp_t *p, const char *at, size_t len)
{
    struct http_head *h = hp_of(p)->head;
    if (h) {
        h->method_str = at;
        h->method_len = len;
    }
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct http_head *h = hp_of(p)->head;
    if (h) {
        if (!h->target)
            h->target = at;
        h->target_len = (size_t)(at + len - h->target);
    }
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_parser *hp = hp_of(p);
    struct http_head *h = hp->head;
    /* the name may arrive in pieces (trailers, read by read): its last
     * byte is judged when the name is complete */
    if (len)
        hp->name_last = at[len - 1];
    if (hp->type == HTTP_RESPONSE_PARSER) {
        for (size_t i = 0; i < len && hp->rname_len <= sizeof(hp->rname); i++, hp->rname_len++)
            if (hp->rname_len < sizeof(hp->rname))
                hp->rname[hp->rname_len] = at[i];
    }
    if (!h)
        return 0;
    if (h->n_headers >= HTTP_MAX_HEADERS) {
        hp->header_overflow = true;
        return 0;
    }
    struct http_hdr *x = &h->headers[h->n_headers++];
    x->name = at;
    x->name_len = len;
    x->value = at + len;
    x->value_len = 0;
    return 0;
}

/* RFC 9112 §5.1: no whitespace between field name and colon (400). */
static int on_header_field_complete(llhttp_t *p)
{
    struct http_parser *hp = hp_of(p);
    if (http_name_ws_before_colon(&hp->name_last, 1)) {
        hp->error = "whitespace between header field name and colon";
        return HPE_USER;
    }
    if (hp->type == HTTP_RESPONSE_PARSER) {
        hp->in_upgrade = hp->rname_len == 7 && strncasecmp(hp->rname, "upgrade", 7) == 0;
        hp->rname_len = 0;
        if (hp->in_upgrade && hp->upgrade_len && !hp->upgrade_long) {
            /* a second Upgrade line: a list, as if one line */
            if ((size_t)hp->upgrade_len + 2 > sizeof(hp->upgrade))
                hp->upgrade_long = true;
            else {
                memcpy(hp->upgrade + hp->upgrade_len, ", ", 2);
                hp->upgrade_len += 2;
            }
        }
    }
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    hp_of(p)->in_upgrade = false;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct http_parser *hp = hp_of(p);
    hp->rname_len = 0;
    hp->in_upgrade = hp->upgrade_long = false;
    hp->upgrade_len = 0;
    return 0;
}

const char *http_parser_upgrade(const struct http_parser *hp, size_t *len)
{
    *len = hp->upgrade_len;
    return hp->upgrade_long ? NULL : hp->upgrade;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_parser *hp = hp_of(p);
    struct http_head *h = hp->head;
    if (hp->in_upgrade && !hp->upgrade_long) {
        /* llhttp hands the value without leading whitespace; pieces of one
         * value arrive in order */
        if ((size_t)hp->upgrade_len + len > sizeof(hp->upgrade))
            hp->upgrade_long = true;
        else {
            memcpy(hp->upgrade + hp->upgrade_len, at, len);
            hp->upgrade_len = (uint8_t)(hp->upgrade_len + len);
        }
    }
    if (!h || hp->header_overflow || h->n_headers == 0)
        return 0;
    struct http_hdr *x = &h->headers[h->n_headers - 1];
    x->value = at;
    while (len > 0 && (at[len - 1] == ' ' || at[len - 1] == '\t'))
        len--;
    x->value_len = len;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_parser *hp = hp_of(p);
    struct http_head *h = hp->head;
    hp->head_seen = true;
    if (hp->type == HTTP_RESPONSE_PARSER) {
        hp->status = p->status_code;
        if (h) {
            h->http_major = p->http_major;
            h->http_minor = p->http_minor;
            h->keep_alive = llhttp_should_keep_alive(p);
            h->has_body = (p->flags & F_CHUNKED) || (p->flags & F_CONTENT_LENGTH);
        }
        /* A HEAD response has no body; a 1xx is a head only. */
        if (hp->skip_body && p->status_code >= 200)
            return 1;
        return 0;
    }
    if (h) {
        h->method = p->method;
        h->http_major = p->http_major;
        h->http_minor = p->http_minor;
        h->keep_alive = llhttp_should_keep_alive(p);
        h->has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_parser *hp = hp_of(p);
    if (hp->on_body)
        hp->on_body(hp->body_data, at, len);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_parser *hp = hp_of(p);
    if (hp->type == HTTP_RESPONSE_PARSER && hp->status >= 100 && hp->status < 200 &&
        hp->status != 101) {
        hp->head_seen = false; /* interim response; the final one follows */
        return 0;
    }
    hp->msg_done = true;
    return HPE_PAUSED;
}

void http_parser_init(struct http_parser *hp, enum http_type type)
{
    memset(hp, 0, sizeof(*hp));
    hp->type = type;
    llhttp_settings_init(&hp->s);
    hp->s.on_method = on_method;
    hp->s.on_url = on_url;
    hp->s.on_header_field = on_header_field;
    hp->s.on_header_field_complete = on_header_field_complete;
    hp->s.on_header_value = on_header_value;
    hp->s.on_header_value_complete = on_header_value_complete;
    hp->s.on_message_begin = on_message_begin;
    hp->s.on_headers_complete = on_headers_complete;
    hp->s.on_message_complete = on_message_complete;
    hp->s.on_body = on_body;
    llhttp_init(&hp->p, type == HTTP_REQUEST_PARSER ? HTTP_REQUEST : HTTP_RESPONSE, &hp->s);
    hp->p.data = hp;
}

void http_parser_next(struct http_parser *hp)
{
    hp->msg_done = false;
    hp->head_seen = false;
    hp->skip_body = false;
    hp->status = 0;
    if (llhttp_get_errno(&hp->p) == HPE_PAUSED)
        llhttp_resume(&hp->p);
}

bool http_parser_msg_done(const struct http_parser *hp) { return hp->msg_done; }
const char *http_parser_error(const struct http_parser *hp) { return hp->error; }
void http_parser_expect_no_body(struct http_parser *hp, bool no_body) { hp->skip_body = no_body; }

static void derive_flags(struct http_head *h)
{
    const struct http_hdr *up = http_head_find(h, "upgrade");
    const struct http_hdr *conn = http_head_find(h, "connection");
    h->upgrade = up && conn && http_value_has_token(conn->value, conn->value_len, "upgrade");
    const struct http_hdr *exp = http_head_find(h, "expect");
    h->expect_continue = exp && exp->value_len == 12 && strncasecmp(exp->value, "100-continue", 12) == 0;
}

static enum http_step head_error(struct http_parser *hp, const char *why)
{
    hp->error = why;
    hp->head = NULL;
    return HTTP_ERROR;
}

enum http_step http_parse_head(struct http_parser *hp, const char *buf, size_t len,
                               struct http_head *head)
{
    size_t skip = 0;
    while (skip + 1 < len && buf[skip] == '\r' && buf[skip + 1] == '\n')
        skip += 2;
    /* Line endings and obs-fold first, so a bare-LF head fails at once
     * instead of waiting for a CRLF CRLF that never comes. */
    struct http_head_guard g;
    const char *why = NULL;
    http_head_guard_init(&g);
    long n = http_head_guard_feed(&g, buf + skip, len - skip, &why);
    if (n < 0)
        return head_error(hp, why);
    if (!g.done)
        return len >= HTTP_HEAD_MAX ? HTTP_TOO_LARGE : HTTP_NEED_MORE;
    size_t hlen = skip + (size_t)n;
    if (hlen > HTTP_HEAD_MAX)
        return HTTP_TOO_LARGE;
    memset(head, 0, sizeof(*head));
    hp->head = head;
    hp->header_overflow = false;
    hp->msg_done = false;
    llhttp_errno_t e = llhttp_execute(&hp->p, buf + skip, hlen - skip);
    hp->head = NULL;
    if (e != HPE_OK && e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE) {
        if (e != HPE_USER || !hp->error)
            hp->error = llhttp_get_error_reason(&hp->p);
        return HTTP_ERROR;
    }
    if (hp->header_overflow)
        return head_error(hp, "too many header fields");
    if (!hp->head_seen)
        return head_error(hp, "incomplete request head");
    if (hp->type == HTTP_REQUEST_PARSER && head->http_major != 1)
        return head_error(hp, "unsupported HTTP version (HTTP/1.0 or HTTP/1.1 required)");
    /* RFC 9112 §6.1: faulty framing; an HTTP/1.0 upstream may ignore the
     * coding and read the chunks as a request of its own */
    if (hp->type == HTTP_REQUEST_PARSER && head->http_minor == 0 && (hp->p.flags & F_CHUNKED))
        return head_error(hp, "Transfer-Encoding in an HTTP/1.0 request (send HTTP/1.1, or "
                              "the body with Content-Length)");
    /* RFC 9112 §3.2: more than one Host line is a 400. A proxy that
     * judged one Host and forwarded both would let a virtual-hosting
     * upstream route by the other (a site the rules never saw). */
    if (hp->type == HTTP_REQUEST_PARSER) {
        size_t hosts = 0;
        for (size_t i = 0; i < head->n_headers; i++)
            if (head->headers[i].name_len == 4 &&
                strncasecmp(head->headers[i].name, "host", 4) == 0)
                hosts++;
        if (hosts > 1)
            return head_error(hp, "more than one Host header");
    }
    head->len = hlen;
    derive_flags(head);
    if (e == HPE_PAUSED_UPGRADE)
        hp->msg_done = true; /* CONNECT or upgrade: no body follows */
    memset(&hp->cg, 0, sizeof(hp->cg));
    hp->guard_chunks = !hp->msg_done && (hp->p.flags & F_CHUNKED);
    return HTTP_HEAD_DONE;
}

enum http_step http_parse_body(struct http_parser *hp, const char *buf, size_t len,
                               size_t *consumed)
{
    *consumed = 0;
    if (hp->msg_done)
        return HTTP_MSG_DONE;
    if (len == 0)
        return HTTP_NEED_MORE;
    llhttp_errno_t e = llhttp_execute(&hp->p, buf, len);
    if (e == HPE_OK || e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        bool done = e != HPE_OK;
        *consumed = done ? (size_t)(llhttp_get_error_pos(&hp->p) - buf) : len;
        if (hp->guard_chunks && (!http_chunk_guard_feed(&hp->cg, buf, *consumed) ||
                                 (done && !http_chunk_guard_done(&hp->cg)))) {
            *consumed = 0;
            hp->error = "invalid chunked framing";
            return HTTP_ERROR;
        }
        hp->msg_done = done;
        return done ? HTTP_MSG_DONE : HTTP_NEED_MORE;
    }
    hp->error = llhttp_get_error_reason(&hp->p);
    if (!hp->error)
        hp->error = llhttp_errno_name(e);
    return HTTP_ERROR;
}

enum http_step http_parse_eof(struct http_parser *hp)
{
    if (hp->msg_done)
        return HTTP_MSG_DONE;
    llhttp_errno_t e = llhttp_finish(&hp->p);
    if (e == HPE_OK || e == HPE_PAUSED)
        return hp->msg_done ? HTTP_MSG_DONE : HTTP_NEED_MORE;
    hp->error = "connection closed before the message ended";
    return HTTP_ERROR;
}

const struct http_hdr *http_head_find(const struct http_head *h, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < h->n_headers; i++)
        if (h->headers[i].name_len == nl && strncasecmp(h->headers[i].name, name, nl) == 0)
            return &h->headers[i];
    return NULL;
}

bool http_value_has_token(const char *value, size_t len, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        size_t s = i;
        while (i < len && value[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (value[e - 1] == ' ' || value[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(value + s, token, tl) == 0)
            return true;
    }
    return false;
}
