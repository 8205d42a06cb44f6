/* http/server: HTTP/1.1 connections on llhttp, one request at a time.
 *
 * Connection states:
 *   READING   -> parsing a request (EPOLLIN on)
 *   HANDLING  -> request dispatched, waiting for the handler's answer
 *   WRITING   -> a complete response is being flushed
 *   STREAMING -> a chunked response is open (producer writes, on_drain)
 *   CLOSING   -> flushing a last response, then close
 *   CLOSED    -> fd closed, object freed at the end of the loop turn */
#include "http/server.h"

#include <errno.h>
#include <fcntl.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/parse.h"
#include "core/banned.h"

enum hc_state { HC_READING, HC_HANDLING, HC_WRITING, HC_STREAMING, HC_CLOSING, HC_CLOSED };

static const char *const hc_state_names[] = {"READING", "HANDLING", "WRITING",
                                             "STREAMING", "CLOSING", "CLOSED"};

enum hc_span { SPAN_NONE, SPAN_URL, SPAN_FIELD, SPAN_VALUE };

struct http_server {
    struct loop *loop;
    struct http_server_cfg cfg;
    struct loop_io io;
    struct loop_timer accept_pause; /* out of fds: stop accepting for a while */
    http_request_cb cb;
    void *cb_data;
    struct http_conn *conns;
    size_t nconns;
    uint64_t next_id;
};

struct http_conn {
    struct http_server *srv;
    struct http_conn *prev, *next;
    uint64_t id;
    struct loop_io io;
    struct loop_timer idle;
    struct loop_deferred defer;
    enum hc_state state;
    llhttp_t parser;
    struct http_head_guard hguard; /* line endings of the current head */
    struct chunk_guard cguard;     /* framing of a chunked request body */
    char peer[64];
    int in_parse;
    int notify_close;
    int held; /* HANDLING with an owner that wants to hear of a close */
    int keep_alive;
    int close_after;
    /* input */
    uint8_t rbuf[HTTP_READ_BUF];
    size_t rpos, rlen;
    /* request head, stored NUL-separated in arena (cap cfg.max_head) */
    char *arena;
    size_t arena_len;
    enum hc_span span;
    size_t span_start;
    size_t url_off, url_len;
    struct http_req req;
    int err_status;
    const char *err_code, *err_msg;
    /* body (cap cfg.max_body) */
    uint8_t *body;
    size_t body_len, body_cap;
    /* output */
    uint8_t *out;
    size_t out_len, out_pos, out_cap;
    struct http_stream_cbs cbs;
    void *cbs_data;
    /* a file body being sent (http_respond_file) */
    int file_fd;
    uint64_t file_off, file_left;
    /* a streamed request body (http_body_stream) */
    struct http_body_cbs sink;
    void *sink_data;
    int sink_on;     /* the body goes to sink.on_data */
    int sink_failed; /* on_data refused: drop the rest */
    int body_paused; /* on_data asked for a pause: the socket is not read until
                      * http_body_resume() */
};

static void conn_set_state(struct http_conn *c, enum hc_state st)
{
    if (c->state == st)
        return;
    log_debug("http: conn %llu %s: %s -> %s", (unsigned long long)c->id, c->peer,
              hc_state_names[c->state], hc_state_names[st]);
    c->state = st;
}

static void conn_update_io(struct http_conn *c)
{
    if (c->io.fd < 0)
        return;
    /* paused: neither input nor a half-close is looked at (the unread body
     * waits in the socket; level-triggered RDHUP would spin) */
    uint32_t ev = c->body_paused ? 0 : EPOLLRDHUP;
    if (c->state == HC_READING && !c->body_paused)
        ev |= EPOLLIN;
    if (c->out_pos < c->out_len || c->file_left > 0)
        ev |= EPOLLOUT;
    if (loop_io_mod(c->srv->loop, &c->io, ev) < 0)
        log_warn("http: conn %s: epoll_ctl failed", c->peer);
}

static void conn_free(void *arg)
{
    struct http_conn *c = arg;
    /* A stream owner hears of the close here, at the end of the turn, never
     * from inside an http_stream_* call it is making. */
    if (c->notify_close && c->cbs.on_close)
        c->cbs.on_close(c, c->cbs_data);
    if (c->sink_on && c->sink.on_abort)
        c->sink.on_abort(c->sink_data); /* the body never completed */
    if (c->file_fd >= 0)
        close(c->file_fd);
    free(c->arena);
    free(c->body);
    free(c->out);
    free(c);
}

/* Releases the connection: unregisters, closes the fd unless taken, tells a
 * stream owner, frees at the end of the turn. */
static void conn_close(struct http_conn *c)
{
    if (c->state == HC_CLOSED)
        return;
    int was_stream = c->state == HC_STREAMING;
    conn_set_state(c, HC_CLOSED);
    struct loop *l = c->srv->loop;
    loop_timer_stop(l, &c->idle);
    if (c->io.fd >= 0) {
        loop_io_del(l, &c->io);
        close(c->io.fd);
        c->io.fd = -1;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->srv->nconns--;
    c->notify_close = was_stream || c->held;
    loop_defer(l, &c->defer, conn_free, c);
}

static int out_append(struct http_conn *c, const void *data, size_t len)
{
    if (c->out_pos == c->out_len)
        c->out_pos = c->out_len = 0;
    if (c->out_len + len > c->out_cap) {
        size_t ncap = c->out_cap ? c->out_cap : 4096;
        while (ncap < c->out_len + len)
            ncap *= 2;
        uint8_t *n = realloc(c->out, ncap);
        if (!n)
            return -ENOMEM;
        c->out = n;
        c->out_cap = ncap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

static void conn_parse(struct http_conn *c);

/* A complete response has been flushed. */
static void conn_response_done(struct http_conn *c)
{
    if (c->close_after || !c->keep_alive) {
        conn_close(c);
        return;
    }
    conn_set_state(c, HC_READING);
    if (loop_timer_start(c->srv->loop, &c->idle, c->srv->cfg.idle_ms) < 0)
        log_warn("http: conn %s: timer heap full, no idle timeout", c->peer);
    conn_update_io(c);
    if (!c->in_parse)
        conn_parse(c);
}

/* Writes what is queued. Returns 0 (all written or would block) or -errno
 * (the connection is closed). on_drain fires only when from_io (an EPOLLOUT
 * wakeup), never inside a producer's own http_stream_write(). */
static int conn_flush(struct http_conn *c, int from_io)
{
    while (c->out_pos < c->out_len) {
        ssize_t n = send(c->io.fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            int e = n < 0 ? errno : EPIPE;
            log_debug("http: conn %s: write failed: %s", c->peer, strerror(e));
            conn_close(c);
            return -e;
        }
        c->out_pos += (size_t)n;
    }
    while (c->out_pos == c->out_len && c->file_left > 0) {
        off_t off = (off_t)c->file_off;
        size_t want = c->file_left > (1u << 20) ? (1u << 20) : (size_t)c->file_left;
        ssize_t n = sendfile(c->io.fd, c->file_fd, &off, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) { /* the file shrank, or the socket failed: never look complete */
            log_debug("http: conn %s: file body cut short: %s", c->peer,
                      n < 0 ? strerror(errno) : "end of file");
            conn_close(c);
            return n < 0 ? -errno : -EIO;
        }
        c->file_off += (uint64_t)n;
        c->file_left -= (uint64_t)n;
    }
    if (c->file_fd >= 0 && c->file_left == 0) {
        close(c->file_fd);
        c->file_fd = -1;
    }
    conn_update_io(c);
    if (c->out_pos < c->out_len || c->file_left > 0)
        return 0;
    c->out_pos = c->out_len = 0;
    if (c->out_cap > 65536) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    switch (c->state) {
    case HC_WRITING:
        conn_response_done(c);
        break;
    case HC_CLOSING:
        conn_close(c);
        break;
    case HC_STREAMING:
        if (from_io && c->cbs.on_drain)
            c->cbs.on_drain(c, c->cbs_data);
        break;
    case HC_READING:
    case HC_HANDLING:
    case HC_CLOSED:
        break;
    }
    return 0;
}

static int write_head(struct http_conn *c, int status, const char *ctype, const char *extra,
                      const char *framing)
{
    size_t cap = 512 + (ctype ? strlen(ctype) : 0) + strlen(framing) + (extra ? strlen(extra) : 0);
    char stackbuf[1024];
    char *head = cap <= sizeof(stackbuf) ? stackbuf : malloc(cap);
    if (!head)
        return -ENOMEM;
    int n = snprintf(head, cap, "HTTP/1.1 %d %s\r\n%s%s%s%s%sConnection: %s\r\n\r\n",
                     status, http_status_text(status), ctype ? "Content-Type: " : "",
                     ctype ? ctype : "", ctype ? "\r\n" : "", framing, extra ? extra : "",
                     (c->close_after || !c->keep_alive) ? "close" : "keep-alive");
    int r = n < 0 || (size_t)n >= cap ? -ENOSPC : out_append(c, head, (size_t)n);
    if (head != stackbuf)
        free(head);
    return r;
}

void http_hold(struct http_conn *c, void (*on_close)(struct http_conn *c, void *data),
               void *data)
{
    if (c->state != HC_HANDLING)
        return;
    c->held = 1;
    memset(&c->cbs, 0, sizeof(c->cbs));
    c->cbs.on_close = on_close;
    c->cbs_data = data;
}

int http_respond(struct http_conn *c, int status, const char *ctype, const void *body,
                 size_t len, const char *extra)
{
    char framing[64];
    int r;
    /* Answering ends a hold even on a connection that closed earlier in
     * this turn: its owner is done with it and must not hear of it again. */
    if (c->held) {
        c->held = 0;
        memset(&c->cbs, 0, sizeof(c->cbs));
    }
    if (c->state != HC_HANDLING)
        return -EINVAL;
    snprintf(framing, sizeof(framing), "Content-Length: %zu\r\n", len);
    r = write_head(c, status, ctype, extra, framing);
    if (r == 0 && len)
        r = out_append(c, body, len);
    if (r < 0) {
        conn_close(c);
        return r;
    }
    conn_set_state(c, (c->close_after || !c->keep_alive) ? HC_CLOSING : HC_WRITING);
    return conn_flush(c, 0);
}

int http_respond_file(struct http_conn *c, int status, const char *ctype, int fd, uint64_t off,
                      uint64_t len, const char *extra)
{
    char framing[64];
    int r;
    if (c->held) {
        c->held = 0;
        memset(&c->cbs, 0, sizeof(c->cbs));
    }
    if (c->state != HC_HANDLING || c->file_fd >= 0) {
        close(fd);
        return -EINVAL;
    }
    snprintf(framing, sizeof(framing), "Content-Length: %llu\r\n", (unsigned long long)len);
    r = write_head(c, status, ctype, extra, framing);
    if (r < 0) {
        close(fd);
        conn_close(c);
        return r;
    }
    if (c->req.method == HTTP_HEAD || len == 0) {
        close(fd);
    } else {
        c->file_fd = fd;
        c->file_off = off;
        c->file_left = len;
    }
    conn_set_state(c, (c->close_after || !c->keep_alive) ? HC_CLOSING : HC_WRITING);
    return conn_flush(c, 0);
}

int http_body_stream(struct http_conn *c, const struct http_body_cbs *cbs, void *data)
{
    if (c->state != HC_READING || c->sink_on || !cbs->on_data)
        return -EINVAL;
    c->sink = *cbs;
    c->sink_data = data;
    c->sink_on = 1;
    c->sink_failed = 0;
    return 0;
}

/* Answers an error the layer detected itself, then closes. */
static void conn_fail(struct http_conn *c, int status, const char *code, const char *msg)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "{\"code\":\"%s\",\"message\":\"%s\"}", code, msg);
    log_info("http: %s: %d %s: %s", c->peer, status, code, msg);
    c->close_after = 1;
    conn_set_state(c, HC_HANDLING);
    (void)http_respond(c, status, "application/json", body,
                       n > 0 && (size_t)n < sizeof(body) ? (size_t)n : 0, NULL);
}

int http_stream_begin(struct http_conn *c, int status, const char *ctype, const char *extra,
                      const struct http_stream_cbs *cbs, void *data)
{
    if (c->held) {
        c->held = 0;
        memset(&c->cbs, 0, sizeof(c->cbs));
    }
    if (c->state != HC_HANDLING)
        return -EINVAL;
    int r = write_head(c, status, ctype, extra, "Transfer-Encoding: chunked\r\n");
    if (r < 0) {
        conn_close(c);
        return r;
    }
    c->cbs = *cbs;
    c->cbs_data = data;
    conn_set_state(c, HC_STREAMING);
    return conn_flush(c, 0);
}

size_t http_stream_room(const struct http_conn *c)
{
    size_t queued = c->out_len - c->out_pos;
    if (c->state != HC_STREAMING || queued >= c->srv->cfg.max_out)
        return 0;
    return c->srv->cfg.max_out - queued;
}

int http_stream_write(struct http_conn *c, const void *data, size_t len)
{
    char size[32];
    if (c->state != HC_STREAMING)
        return -EPIPE;
    if (len == 0)
        return 0;
    if (http_stream_room(c) == 0)
        return -ENOBUFS;
    int n = snprintf(size, sizeof(size), "%zx\r\n", len);
    int r = out_append(c, size, (size_t)n);
    if (r == 0)
        r = out_append(c, data, len);
    if (r == 0)
        r = out_append(c, "\r\n", 2);
    if (r < 0) {
        conn_close(c);
        return r;
    }
    return conn_flush(c, 0);
}

void http_abort(struct http_conn *c)
{
    c->notify_close = 0;
    c->held = 0;
    memset(&c->cbs, 0, sizeof(c->cbs));
    conn_close(c);
}

void http_set_close(struct http_conn *c)
{
    c->close_after = 1;
}

int http_stream_end(struct http_conn *c)
{
    c->notify_close = 0; /* the owner is done with c either way */
    if (c->state != HC_STREAMING)
        return -EPIPE;
    memset(&c->cbs, 0, sizeof(c->cbs));
    int r = out_append(c, "0\r\n\r\n", 5);
    if (r < 0) {
        conn_close(c);
        return r;
    }
    conn_set_state(c, (c->close_after || !c->keep_alive) ? HC_CLOSING : HC_WRITING);
    return conn_flush(c, 0);
}

int http_upgrade_take(struct http_conn *c, int *fd, uint8_t *leftover, size_t cap,
                      size_t *leftover_len)
{
    size_t n = c->rlen - c->rpos;
    if (c->state != HC_HANDLING || c->io.fd < 0)
        return -EINVAL;
    if (n > cap)
        return -ENOSPC;
    memcpy(leftover, c->rbuf + c->rpos, n);
    *leftover_len = n;
    c->held = 0;
    loop_io_del(c->srv->loop, &c->io);
    *fd = c->io.fd;
    c->io.fd = -1;
    conn_close(c);
    return 0;
}

/* ---- llhttp callbacks: build the request in the arena ---- */

static int arena_put(struct http_conn *c, const char *at, size_t len)
{
    if (c->arena_len + len + 1 > c->srv->cfg.max_head) {
        c->err_status = 431;
        c->err_code = "HEADERS_TOO_LARGE";
        c->err_msg = "request line and headers exceed the configured limit";
        return -1;
    }
    memcpy(c->arena + c->arena_len, at, len);
    c->arena_len += len;
    return 0;
}

static int span_data(llhttp_t *p, enum hc_span kind, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    if (c->span != kind) {
        c->span = kind;
        c->span_start = c->arena_len;
    }
    return arena_put(c, at, len) < 0 ? HPE_USER : 0;
}

/* Terminates the current span; returns its start or (size_t)-1 on overflow.
 * An empty span (no data callback) yields an empty string. */
static size_t span_end(struct http_conn *c, enum hc_span kind, size_t *len)
{
    if (c->span != kind) {
        c->span_start = c->arena_len;
    }
    c->span = SPAN_NONE;
    *len = c->arena_len - c->span_start;
    if (arena_put(c, "", 1) < 0)
        return (size_t)-1;
    c->arena[c->arena_len - 1] = '\0';
    return c->span_start;
}

static int on_message_begin(llhttp_t *p)
{
    struct http_conn *c = p->data;
    c->arena_len = 0;
    c->span = SPAN_NONE;
    c->url_len = 0;
    c->url_off = 0;
    c->body_len = 0;
    c->sink_on = 0;
    c->sink_failed = 0;
    c->body_paused = 0;
    memset(&c->req, 0, sizeof(c->req));
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) { return span_data(p, SPAN_URL, at, len); }
static int on_hfield(llhttp_t *p, const char *at, size_t len)
{
    return span_data(p, SPAN_FIELD, at, len);
}
static int on_hvalue(llhttp_t *p, const char *at, size_t len)
{
    return span_data(p, SPAN_VALUE, at, len);
}

static int on_url_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    size_t off = span_end(c, SPAN_URL, &c->url_len);
    if (off == (size_t)-1)
        return HPE_USER;
    c->url_off = off;
    return 0;
}

static int on_hfield_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    size_t len;
    if (c->req.nheaders == HTTP_MAX_HEADERS) {
        c->err_status = 431;
        c->err_code = "HEADERS_TOO_LARGE";
        c->err_msg = "too many header fields";
        return HPE_USER;
    }
    size_t off = span_end(c, SPAN_FIELD, &len);
    if (off == (size_t)-1)
        return HPE_USER;
    if (http_name_ws_before_colon(c->arena + off, len)) { /* RFC 9112 §5.1 */
        c->err_status = 400;
        c->err_code = "BAD_REQUEST";
        c->err_msg = "whitespace between header field name and colon";
        return HPE_USER;
    }
    /* offsets for now; turned into pointers at dispatch (the arena is fixed) */
    c->req.headers[c->req.nheaders].name = c->arena + off;
    c->req.headers[c->req.nheaders].name_len = len;
    return 0;
}

static int on_hvalue_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    size_t len;
    size_t off = span_end(c, SPAN_VALUE, &len);
    if (off == (size_t)-1)
        return HPE_USER;
    /* trim trailing whitespace (RFC 9110 §5.5: OWS is not part of the value) */
    while (len > 0 && (c->arena[off + len - 1] == ' ' || c->arena[off + len - 1] == '\t'))
        c->arena[off + --len] = '\0';
    c->req.headers[c->req.nheaders].value = c->arena + off;
    c->req.headers[c->req.nheaders].value_len = len;
    c->req.nheaders++;
    return 0;
}

static void req_fill_view(struct http_conn *c);

static int on_headers_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    int has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length);
    if (has_body && c->srv->cfg.on_head) {
        req_fill_view(c);
        c->srv->cfg.on_head(c, &c->req, c->srv->cb_data);
    }
    if (!c->sink_on && (p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->cfg.max_body) {
        c->err_status = 413;
        c->err_code = "PAYLOAD_TOO_LARGE";
        c->err_msg = "request body exceeds the configured limit (--max-body)";
        return HPE_USER;
    }
    c->req.upgrade = p->upgrade;
    /* RFC 9110 §10.1.1: a client waiting for 100-continue gets it now
     * (curl otherwise stalls a second before sending bodies over 1 KiB). */
    const char *expect = http_req_header(&c->req, "Expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 &&
        out_append(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0 && conn_flush(c, 0) < 0)
        return HPE_USER; /* the connection is gone */
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    if (c->sink_on) {
        c->body_len += len;
        if (!c->sink_failed) {
            int r = c->sink.on_data(c, (const uint8_t *)at, len, c->sink_data);
            if (r < 0)
                c->sink_failed = 1;
            else if (r == HTTP_BODY_PAUSE)
                c->body_paused = 1; /* the rest of this read still arrives */
        }
        return 0;
    }
    if (c->body_len + len > c->srv->cfg.max_body) {
        c->err_status = 413;
        c->err_code = "PAYLOAD_TOO_LARGE";
        c->err_msg = "request body exceeds the configured limit (--max-body)";
        return HPE_USER;
    }
    if (c->body_len + len > c->body_cap) {
        size_t ncap = c->body_cap ? c->body_cap : 1024;
        while (ncap < c->body_len + len)
            ncap *= 2;
        uint8_t *n = realloc(c->body, ncap);
        if (!n) {
            c->err_status = 503;
            c->err_code = "OUT_OF_MEMORY";
            c->err_msg = "cannot buffer the request body";
            return HPE_USER;
        }
        c->body = n;
        c->body_cap = ncap;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    c->keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED;
}

static const llhttp_settings_t *parser_settings(void)
{
    static llhttp_settings_t s;
    static int ready;
    if (!ready) {
        llhttp_settings_init(&s);
        s.on_message_begin = on_message_begin;
        s.on_url = on_url;
        s.on_url_complete = on_url_complete;
        s.on_header_field = on_hfield;
        s.on_header_field_complete = on_hfield_complete;
        s.on_header_value = on_hvalue;
        s.on_header_value_complete = on_hvalue_complete;
        s.on_headers_complete = on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        ready = 1;
    }
    return &s;
}

/* Fills the request view from the parsed head (and the body so far). */
static void req_fill_view(struct http_conn *c)
{
    struct http_req *r = &c->req;
    const char *url = c->arena + c->url_off;
    const char *q = memchr(url, '?', c->url_len);
    r->method = llhttp_get_method(&c->parser);
    r->method_name = llhttp_method_name((llhttp_method_t)r->method);
    r->path = url;
    r->path_len = q ? (size_t)(q - url) : c->url_len;
    r->query = q ? q + 1 : "";
    r->query_len = q ? c->url_len - r->path_len - 1 : 0;
    r->body = c->sink_on ? NULL : c->body;
    r->body_len = c->body_len;
    r->peer = c->peer;
    r->body_sink = c->sink_on ? c->sink_data : NULL;
}

/* Completes the request view and hands it to the handler. */
static void conn_dispatch(struct http_conn *c)
{
    struct http_req *r = &c->req;
    req_fill_view(c);
    c->sink_on = 0; /* the body is complete: the handler owns the sink now */
    c->body_paused = 0;
    if (r->upgrade)
        c->close_after = 1; /* unless taken, an upgrade request ends the connection */
    loop_timer_stop(c->srv->loop, &c->idle);
    conn_set_state(c, HC_HANDLING);
    conn_update_io(c);
    log_debug("http: %s %s %.*s", c->peer, r->method_name, (int)c->url_len,
              c->arena + c->url_off);
    c->srv->cb(c, r, c->srv->cb_data);
}

/* Starts the strict checks over for the next message on the connection. */
static void conn_guards_reset(struct http_conn *c)
{
    http_head_guard_init(&c->hguard);
    memset(&c->cguard, 0, sizeof(c->cguard));
}

/* Feeds buffered input to llhttp. The head's line endings go through the
 * shared head guard first (bare LF/CR, obs-fold: 400), and a chunked body's
 * raw framing through the chunk guard, so this front door refuses what the
 * proxy's does (http/vocab.h). */
static void conn_parse(struct http_conn *c)
{
    c->in_parse = 1;
    while (c->state == HC_READING && !c->body_paused && c->rpos < c->rlen) {
        const char *start = (const char *)c->rbuf + c->rpos;
        size_t avail = c->rlen - c->rpos, body_from = 0;
        if (!c->hguard.done) {
            const char *why = NULL;
            long n = http_head_guard_feed(&c->hguard, start, avail, &why);
            if (n < 0) {
                conn_fail(c, 400, "BAD_REQUEST", why);
                break;
            }
            body_from = c->hguard.done ? (size_t)n : avail;
        }
        llhttp_errno_t err = llhttp_execute(&c->parser, start, avail);
        if (c->state == HC_CLOSED)
            break;
        if (err == HPE_OK || err == HPE_PAUSED) {
            size_t used = err == HPE_OK ? avail
                                        : (size_t)(llhttp_get_error_pos(&c->parser) - start);
            if ((c->parser.flags & F_CHUNKED) && used > body_from &&
                (!http_chunk_guard_feed(&c->cguard, start + body_from, used - body_from) ||
                 (err == HPE_PAUSED && !http_chunk_guard_done(&c->cguard)))) {
                conn_fail(c, 400, "BAD_REQUEST", "invalid chunked framing");
                break;
            }
        }
        if (err == HPE_OK) {
            c->rpos = c->rlen;
            break;
        }
        if (err == HPE_PAUSED) {
            const char *pos = llhttp_get_error_pos(&c->parser);
            c->rpos = (size_t)((const uint8_t *)pos - c->rbuf);
            llhttp_resume(&c->parser);
            conn_guards_reset(c);
            conn_dispatch(c);
            continue;
        }
        if (c->err_status) {
            conn_fail(c, c->err_status, c->err_code, c->err_msg);
        } else {
            const char *why = llhttp_get_error_reason(&c->parser);
            conn_fail(c, 400, "BAD_REQUEST", why && why[0] ? why : llhttp_errno_name(err));
        }
        break;
    }
    if (c->state != HC_CLOSED && c->rpos == c->rlen)
        c->rpos = c->rlen = 0;
    c->in_parse = 0;
    if (c->state == HC_READING && c->body_paused) {
        loop_timer_stop(c->srv->loop, &c->idle); /* the sink's owner times it */
        conn_update_io(c);
    }
}

void http_body_resume(struct http_conn *c)
{
    if (!c->body_paused)
        return;
    c->body_paused = 0;
    if (c->in_parse || c->state != HC_READING)
        return; /* the parse loop in progress carries on */
    if (loop_timer_start(c->srv->loop, &c->idle, c->srv->cfg.idle_ms) < 0)
        log_warn("http: conn %s: timer heap full", c->peer);
    conn_update_io(c);
    if (c->rpos < c->rlen)
        conn_parse(c);
}

static void conn_read(struct http_conn *c)
{
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    if (c->rlen == sizeof(c->rbuf))
        return; /* cannot happen while READING: the parser consumes all input */
    ssize_t n = read(c->io.fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->rlen += (size_t)n;
    if (loop_timer_start(c->srv->loop, &c->idle, c->srv->cfg.idle_ms) < 0)
        log_warn("http: conn %s: timer heap full", c->peer);
    conn_parse(c);
}

static void conn_io(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct http_conn *c = io->data;
    (void)l;
    if (c->state == HC_CLOSED || io->fd < 0)
        return;
    if (events & EPOLLOUT) {
        if (conn_flush(c, 1) < 0 || c->state == HC_CLOSED)
            return;
    }
    if (c->body_paused && (events & (EPOLLHUP | EPOLLERR))) {
        log_debug("http: conn %s: peer closed while its body was paused", c->peer);
        conn_close(c);
        return;
    }
    if (c->state == HC_READING && !c->body_paused && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        conn_read(c);
        return;
    }
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        log_debug("http: conn %s: peer closed while %s", c->peer, hc_state_names[c->state]);
        conn_close(c);
    }
}

static void conn_idle(struct loop *l, struct loop_timer *t)
{
    struct http_conn *c = t->data;
    (void)l;
    log_debug("http: conn %s: idle timeout", c->peer);
    conn_close(c);
}

static void accept_one(struct http_server *s, int fd, const struct sockaddr_storage *ss)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                               "application/json\r\nContent-Length: 86\r\nConnection: close\r\n\r\n"
                               "{\"code\":\"TOO_MANY_CONNECTIONS\",\"message\":\"connection limit "
                               "reached (--max-conns)\"}";
    char ip[64];
    if (s->nconns >= s->cfg.max_conns) {
        log_warn("http: connection limit %zu reached; refusing %s", s->cfg.max_conns,
                 sockaddr_ip_str((const struct sockaddr *)ss, ip, sizeof(ip)));
        ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        close(fd);
        return;
    }
    struct http_conn *c = calloc(1, sizeof(*c));
    if (c)
        c->arena = malloc(s->cfg.max_head);
    if (!c || !c->arena) {
        log_warn("http: out of memory accepting a connection");
        if (c)
            free(c);
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->srv = s;
    c->id = ++s->next_id;
    snprintf(c->peer, sizeof(c->peer), "%s:%u",
             sockaddr_ip_str((const struct sockaddr *)ss, ip, sizeof(ip)),
             sockaddr_port((const struct sockaddr *)ss));
    llhttp_init(&c->parser, HTTP_REQUEST, parser_settings());
    conn_guards_reset(c);
    c->parser.data = c;
    c->io.cb = conn_io;
    c->io.data = c;
    c->idle.cb = conn_idle;
    c->idle.data = c;
    c->state = HC_READING;
    c->file_fd = -1;
    if (loop_io_add(s->loop, &c->io, fd, EPOLLIN | EPOLLRDHUP) < 0) {
        close(fd);
        conn_free(c);
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (loop_timer_start(s->loop, &c->idle, s->cfg.idle_ms) < 0)
        log_warn("http: timer heap full; %s has no idle timeout", c->peer);
}

#define HTTP_ACCEPT_PAUSE_MS 100

static void accept_resume(struct loop *l, struct loop_timer *t)
{
    struct http_server *s = t->data;
    if (loop_io_mod(l, &s->io, EPOLLIN) < 0)
        log_warn("http: cannot resume accepting");
}

static void listen_io(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct http_server *s = io->data;
    (void)events;
    for (int i = 0; i < 64; i++) { /* bounded work per turn */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            accept_one(s, fd, &ss);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* the pending connection stays queued; retry soon instead of spinning */
            log_warn("http: accept: %s; pausing %d ms (raise the fd limit or lower --max-conns)",
                     strerror(errno), HTTP_ACCEPT_PAUSE_MS);
            (void)loop_io_mod(l, io, 0);
            if (loop_timer_start(l, &s->accept_pause, HTTP_ACCEPT_PAUSE_MS) < 0)
                accept_resume(l, &s->accept_pause);
        } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            log_warn("http: accept: %s", strerror(errno));
        }
        return;
    }
}

int http_server_start(struct loop *l, const struct sockaddr *addr, socklen_t alen,
                      const struct http_server_cfg *cfg, http_request_cb cb, void *data,
                      struct http_server **out)
{
    int r, one = 1;
    struct http_server *s = calloc(1, sizeof(*s));
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (!s || fd < 0) {
        r = s ? -errno : -ENOMEM;
        goto out;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, addr, alen) < 0 || listen(fd, 1024) < 0) {
        r = -errno;
        goto out;
    }
    s->loop = l;
    s->cfg = *cfg;
    if (s->cfg.max_head == 0 || s->cfg.max_head > HTTP_HEAD_MAX)
        s->cfg.max_head = HTTP_HEAD_MAX; /* one head limit for every front door */
    s->cb = cb;
    s->cb_data = data;
    s->io.cb = listen_io;
    s->io.data = s;
    s->accept_pause.cb = accept_resume;
    s->accept_pause.data = s;
    r = loop_io_add(l, &s->io, fd, EPOLLIN);
    if (r < 0)
        goto out;
    *out = s;
    return 0;
out:
    if (fd >= 0)
        close(fd);
    free(s);
    return r;
}

int http_server_addr(struct http_server *s, struct sockaddr_storage *ss, socklen_t *len)
{
    *len = sizeof(*ss);
    return getsockname(s->io.fd, (struct sockaddr *)ss, len) < 0 ? -errno : 0;
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_close(s->conns);
    loop_timer_stop(s->loop, &s->accept_pause);
    loop_io_del(s->loop, &s->io);
    close(s->io.fd);
    free(s);
}

const char *http_req_header(const struct http_req *req, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++) {
        if (req->headers[i].name_len == nl && strncasecmp(req->headers[i].name, name, nl) == 0)
            return req->headers[i].value;
    }
    return NULL;
}

/* Percent-decodes s[0..len) into out (cap incl. NUL); '+' means space. */
int http_query_decode(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= len)
                return -EINVAL;
            int hi = http_hexval(s[i + 1]), lo = http_hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (o + 1 >= cap)
            return -ENOSPC;
        out[o++] = ch;
    }
    out[o] = '\0';
    return (int)o;
}

int http_query_get(const char *query, size_t qlen, const char *name, char *out, size_t cap)
{
    return http_query_nth(query, qlen, name, 0, out, cap);
}

int http_query_nth(const char *query, size_t qlen, const char *name, unsigned n, char *out,
                   size_t cap)
{
    size_t nl = strlen(name);
    size_t i = 0;
    if (cap == 0)
        return -ENOSPC;
    while (i < qlen) {
        const char *p = query + i;
        const char *amp = memchr(p, '&', qlen - i);
        size_t plen = amp ? (size_t)(amp - p) : qlen - i;
        const char *eq = memchr(p, '=', plen);
        size_t klen = eq ? (size_t)(eq - p) : plen;
        if (klen == nl && memcmp(p, name, nl) == 0 && n-- == 0) {
            if (!eq) {
                out[0] = '\0';
                return 0;
            }
            return http_query_decode(eq + 1, plen - klen - 1, out, cap);
        }
        i += plen + 1;
    }
    return -ENOENT;
}
