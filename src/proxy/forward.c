/* proxy/forward: absolute-form requests (GET http://host/path), one
 * exchange at a time per client connection.
 *
 * The request head is rewritten to origin-form (RFC 9112 §3.2.1) with the
 * proxy's hop-by-hop headers removed and Host set from the URI; the body is
 * streamed to the upstream as it arrives, framed by llhttp (chunked framing
 * passes unchanged). The response is read straight into the client output
 * buffer, parsed in place to find its end, and written out. The exchange
 * ends Reusable (next request on the same connections), Consumed (close),
 * or Upgraded (101 after a request that asked for it: raw tunnel). Pipelined
 * requests wait in the input buffer until the current response is done. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/log.h"
#include "proxy/internal.h"
#include "proxy/side.h"
#include "core/banned.h"

#define FWD_UOUT_CAP (HTTP_HEAD_MAX + 1024)

/* RFC 9110 §7.6.1: headers named in Connection are hop-by-hop. Upgrade
 * stays when the request asks for an upgrade the relay will carry. */
static bool named_in_connection(const struct http_head *head, const struct http_hdr *h)
{
    char name[64];
    if (h->name_len >= sizeof(name))
        return false;
    memcpy(name, h->name, h->name_len);
    name[h->name_len] = '\0';
    if (head->upgrade && strcasecmp(name, "upgrade") == 0)
        return false;
    for (size_t i = 0; i < head->n_headers; i++) {
        const struct http_hdr *c = &head->headers[i];
        if (c->name_len == 10 && strncasecmp(c->name, "connection", 10) == 0 &&
            http_value_has_token(c->value, c->value_len, name))
            return true;
    }
    return false;
}

static bool skip_header(const struct http_head *head, const struct http_hdr *h)
{
    if (named_in_connection(head, h))
        return true;
    static const char *const drop[] = {"proxy-connection", "proxy-authorization", "host",
                                       "proxy-authenticate", "keep-alive"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (h->name_len == strlen(drop[i]) && strncasecmp(h->name, drop[i], h->name_len) == 0)
            return true;
    return false;
}

static int put(struct buf *b, const char *p, size_t n) { return buf_append(b, p, n); }
static int puts_(struct buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

static bool default_port(const struct proxy_target *t)
{
    bool tls = t->scheme == TARGET_HTTPS || t->scheme == TARGET_WSS;
    return t->port == (tls ? 443 : 80);
}

/* Writes the origin-form head into uout. Returns 0 or -ENOBUFS. */
static int rewrite_head(struct conn *c)
{
    struct http_head *h = &c->head;
    struct buf *b = &c->uout;
    char line[64];
    int r = 0;
    r |= put(b, h->method_str, h->method_len);
    r |= puts_(b, " ");
    if (c->target.path[0] != '/')
        r |= puts_(b, "/");
    r |= put(b, c->target.path, c->target.path_len);
    snprintf(line, sizeof(line), " HTTP/%u.%u\r\nHost: ", h->http_major, h->http_minor);
    r |= puts_(b, line);
    bool v6 = strchr(c->target.host, ':') != NULL;
    r |= puts_(b, v6 ? "[" : "");
    r |= puts_(b, c->target.host);
    r |= puts_(b, v6 ? "]" : "");
    if (!default_port(&c->target)) {
        snprintf(line, sizeof(line), ":%u", c->target.port);
        r |= puts_(b, line);
    }
    r |= puts_(b, "\r\n");
    for (size_t i = 0; i < h->n_headers; i++) {
        const struct http_hdr *x = &h->headers[i];
        if (skip_header(h, x))
            continue;
        r |= put(b, x->name, x->name_len);
        r |= puts_(b, ": ");
        r |= put(b, x->value, x->value_len);
        r |= puts_(b, "\r\n");
    }
    r |= puts_(b, "\r\n");
    return r ? -ENOBUFS : 0;
}

static void exchange_done(struct conn *c);

void forward_start(struct conn *c)
{
    if ((!c->uout.data && buf_init(&c->uout, FWD_UOUT_CAP) < 0)) {
        respond_error(c, 503, "out_of_memory", "the proxy is out of memory");
        return;
    }
    if (c->infer) {
        /* infer.c wrote the backend request (head and body) into uout and
         * consumed the client's request */
        c->req_done = true;
        c->req_pending = 0;
        goto started;
    }
    c->uout.off = c->uout.len = 0;
    if (c->inspect) {
        /* inside a tunnel the head goes on unchanged: it was checked as sent */
        if (buf_append(&c->uout, buf_head(&c->cin), c->head.len) < 0) {
            respond_error(c, 431, "head_too_large", "the request head is too large");
            return;
        }
    } else if (rewrite_head(c) < 0) {
        respond_error(c, 431, "head_too_large", "the rewritten request head is too large");
        return;
    }
    if (!c->inspect)
        auditev_decision(c, true, NULL, NULL);
    c->fwd_up += c->head.len;
    buf_consume(&c->cin, c->head.len);
    c->req_pending = 0;
    c->req_done = http_parser_msg_done(&c->req);
started:
    c->req_is_head = c->head.method == HTTP_HEAD;
    c->req_upgrade = c->head.upgrade;
    c->req_keep_alive = c->head.keep_alive;
    c->resp_done = false;
    http_parser_init(&c->resp, HTTP_RESPONSE_PARSER);
    http_parser_expect_no_body(&c->resp, c->req_is_head);
    c->state = CONN_FORWARD;
    c->last_active_ms = loop_now_ms(c->w->loop);
    if (c->idle_ms && loop_timer_start(c->w->loop, &c->timer, c->idle_ms) < 0) {
        conn_close(c, "timer_full");
        return;
    }
    forward_on_event(c);
}

/* client → upstream. Returns -1 if the connection was closed. */
static int pump_request(struct conn *c)
{
    while (c->uout.len) {
        long n = side_buf_write(&c->uout, c->ufd, c->utls);
        if (n == -EAGAIN)
            return 0;
        if (n < 0) {
            conn_close(c, "upstream_write_error");
            return -1;
        }
    }
    while (!c->req_done || c->req_pending) {
        if (c->req_pending == 0 && c->cin.len) {
            size_t used = 0;
            enum http_step st = http_parse_body(&c->req, buf_head(&c->cin), c->cin.len, &used);
            if (st == HTTP_ERROR) {
                log_info("proxy: conn %llu: bad request body framing: %s", (unsigned long long)c->id,
                         http_parser_error(&c->req));
                conn_close(c, "bad_request_body");
                return -1;
            }
            c->req_pending = used;
            c->req_done = st == HTTP_MSG_DONE;
        }
        if (c->req_pending) {
            long n = side_send(c->ufd, c->utls, buf_head(&c->cin), c->req_pending);
            if (n == -EAGAIN)
                return 0;
            if (n < 0) {
                conn_close(c, "upstream_write_error");
                return -1;
            }
            buf_consume(&c->cin, (size_t)n);
            c->req_pending -= (size_t)n;
            c->fwd_up += (uint64_t)n;
            c->last_active_ms = loop_now_ms(c->w->loop);
            continue;
        }
        if (c->req_done)
            break;
        long r = side_buf_read(&c->cin, c->cfd, c->ctls);
        if (r == -EAGAIN)
            return 0;
        if (r == 0 || (r < 0 && r != -ENOBUFS)) {
            conn_close(c, r == 0 ? "client_closed_mid_request" : "client_read_error");
            return -1;
        }
    }
    return 0;
}

/* Parses freshly read response bytes at the tail of cout. */
static int parse_response_bytes(struct conn *c, size_t n)
{
    size_t used = 0;
    char *start = buf_tail(&c->cout) - n;
    enum http_step st = http_parse_body(&c->resp, start, n, &used);
    if (c->infer) /* after the parse: the framing flags are known */
        infer_response_bytes(c, start, st == HTTP_MSG_DONE ? used : n);
    if (st == HTTP_ERROR) {
        log_info("proxy: conn %llu: bad response from %s: %s", (unsigned long long)c->id,
                 c->target.host, http_parser_error(&c->resp));
        conn_close(c, "bad_upstream_response");
        return -1;
    }
    if (st == HTTP_MSG_DONE && c->resp.status == 101 && !c->req_upgrade) {
        /* An upgrade nobody asked for: withhold it and everything after it. */
        c->cout.len -= n;
        log_warn("proxy: conn %llu: %s answered 101 to a request without Upgrade and "
                 "Connection: upgrade; cut off", (unsigned long long)c->id, c->target.host);
        auditev_decision(c, false, "unsolicited_101", "the upstream switched protocols without being asked");
        conn_close(c, "unsolicited_101");
        return -1;
    }
    if (st == HTTP_MSG_DONE) {
        c->resp_done = true;
        if (used < n && c->resp.status != 101) {
            /* bytes after a complete response that nobody asked for */
            c->cout.len -= n - used;
            c->req_keep_alive = false;
        }
    }
    return 0;
}

/* upstream → client. Returns -1 if the connection was closed. */
static int pump_response(struct conn *c)
{
    for (;;) {
        if (c->cout.len) {
            long n = side_buf_write(&c->cout, c->cfd, c->ctls);
            if (n == -EAGAIN)
                return 0;
            if (n < 0) {
                conn_close(c, "client_write_error");
                return -1;
            }
            c->fwd_down += (uint64_t)n;
            c->last_active_ms = loop_now_ms(c->w->loop);
            continue;
        }
        if (c->resp_done)
            return 0;
        buf_compact(&c->cout);
        long r = side_buf_read(&c->cout, c->ufd, c->utls);
        if (r == -EAGAIN)
            return 0;
        if (r > 0) {
            if (parse_response_bytes(c, (size_t)r) < 0)
                return -1;
            continue;
        }
        if (r == 0) {
            c->upstream_eof = true;
            enum http_step st = http_parse_eof(&c->resp);
            c->req_keep_alive = false;
            if (st == HTTP_MSG_DONE) {
                c->resp_done = true;
                continue;
            }
            const char *why = c->resp.head_seen ? "upstream_closed_mid_response" : "upstream_closed_early";
            if (!infer_upstream_failed(c, why))
                conn_close(c, why);
            return -1;
        }
        if (!infer_upstream_failed(c, "upstream_read_error"))
            conn_close(c, "upstream_read_error");
        return -1;
    }
}

static void start_upgrade(struct conn *c)
{
    if (!c->req_upgrade) {
        log_warn("proxy: conn %llu: %s answered 101 to a request without Upgrade; cut off",
                 (unsigned long long)c->id, c->target.host);
        conn_close(c, "unsolicited_101");
        return;
    }
    /* Anything the client sent after the upgrade request goes first. */
    if (c->cin.len && buf_append(&c->uout, buf_head(&c->cin), c->cin.len) < 0) {
        conn_close(c, "upgrade_overflow");
        return;
    }
    c->fwd_up += c->cin.len;
    buf_consume(&c->cin, c->cin.len);
    c->idle_ms = c->ep ? policy_endpoint_upgrade_idle_timeout_ms(c->ep) : PROXY_UPGRADE_IDLE_MS;
    auditev_upgrade(c);
    if (tunnel_start(c, false) < 0)
        conn_close(c, "tunnel_setup_failed");
}

static void exchange_done(struct conn *c)
{
    loop_timer_stop(c->w->loop, &c->timer);
    if (c->infer)
        infer_exchange_done(c);
    if (c->resp.status == 101) {
        start_upgrade(c);
        return;
    }
    bool keep = c->req_keep_alive && llhttp_should_keep_alive(&c->resp.p) && !c->upstream_eof;
    if (!keep) {
        if (!c->req_keep_alive || c->client_eof) {
            conn_close(c, "exchange_done");
            return;
        }
        upstream_close(c);
    }
    http_parser_init(&c->req, HTTP_REQUEST_PARSER);
    conn_request_done(c);
}

void forward_on_event(struct conn *c)
{
    if (c->state != CONN_FORWARD)
        return;
    if (pump_request(c) < 0)
        return;
    if (pump_response(c) < 0)
        return;
    if (c->resp_done && c->cout.len == 0 && c->req_done && c->req_pending == 0)
        exchange_done(c);
}
