/* proxy/inspect: CONNECT tunnels to `protocol: rest` endpoints are inspected.
 *
 * After the 200, the first client bytes are peeked (never consumed):
 *   TLS ClientHello → the SNI must name the CONNECT host; the client side is
 *     terminated with a leaf of the sandbox CA, then the upstream side is
 *     opened with verification (failure: 403 upstream_tls_invalid, sent
 *     inside the client's TLS so the agent can read it);
 *   plaintext HTTP/1 → inspected as is;
 *   anything else (HTTP/2 preface, other protocols) → refused and logged:
 *     an L7 endpoint never degrades to a raw tunnel.
 * Then requests are walked one by one by the forward relay in origin-form
 * mode, each checked against the endpoint's L7 rules (see conn.c).
 * The same TLS client also serves absolute-form https:// requests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "proxy/internal.h"
#include "proxy/side.h"
#include "tls/tls.h"
#include "core/banned.h"

#define PEEK_MAX 16384

static void refuse(struct conn *c, const char *reason, const char *detail)
{
    auditev_decision(c, false, reason, detail);
    conn_close(c, reason);
}

static int new_tls(struct tls_conn **out, SSL *ssl)
{
    *out = malloc(sizeof(**out));
    if (!*out) {
        SSL_free(ssl);
        return -ENOMEM;
    }
    tls_conn_init(*out, ssl);
    return 0;
}

/* The tunnel is established (and terminated when TLS): walk its requests
 * with a fresh request parser (the CONNECT's one ended in upgrade state). */
void inspect_enter_requests(struct conn *c)
{
    c->state = CONN_HEAD;
    c->head_parsed = false;
    http_parser_init(&c->req, HTTP_REQUEST_PARSER);
    if (loop_timer_start(c->w->loop, &c->timer, p_head_timeout(c)) < 0)
        conn_close(c, "timer_full");
    else
        conn_on_client(c->w->loop, &c->cio, EPOLLIN);
}

/* ---- upstream TLS (inspected tunnels and https:// forward requests) ---- */

void inspect_upstream_tls_start(struct conn *c)
{
    SSL *ssl;
    struct proxy *p = c->w->proxy;
    if (!p->tls_client || tls_client_ssl_new(p->tls_client, c->ufd, c->target.host, c->target.port, &ssl) < 0 ||
        new_tls(&c->utls, ssl) < 0) {
        respond_error(c, 502, "upstream_tls_handshake", "could not start TLS to the upstream");
        return;
    }
    c->state = CONN_TLS_CONNECT;
    if (loop_timer_start(c->w->loop, &c->timer, p->cfg.connect_timeout_ms) < 0) {
        conn_close(c, "timer_full");
        return;
    }
    inspect_on_event(c);
}

static void upstream_tls_step(struct conn *c)
{
    int r = tls_conn_handshake(c->utls);
    if (r == TLS_WANT_READ || r == TLS_WANT_WRITE)
        return;
    loop_timer_stop(c->w->loop, &c->timer);
    if (r == TLS_ERROR) {
        char detail[512];
        const char *reason = tls_conn_failure(c->utls, detail, sizeof(detail));
        respond_deny(c, reason == TLS_REASON_UPSTREAM_INVALID ? 403 : 502, reason, detail,
                     reason == TLS_REASON_UPSTREAM_INVALID
                         ? "the upstream's certificate did not verify; an operator can add its CA "
                           "with --upstream-ca"
                         : NULL);
        return;
    }
    if (c->kind == KIND_FORWARD || c->head_parsed) {
        forward_start(c); /* a request is waiting for this upstream */
        return;
    }
    inspect_enter_requests(c);
}

/* ---- client side ---- */

static void client_tls_step(struct conn *c)
{
    int r = tls_conn_handshake(c->ctls);
    if (r == TLS_WANT_READ || r == TLS_WANT_WRITE)
        return;
    if (r == TLS_ERROR) {
        log_info("proxy: conn %llu: client TLS handshake for %s failed: %s",
                 (unsigned long long)c->id, c->target.host, c->ctls->err);
        refuse(c, TLS_REASON_CLIENT_HANDSHAKE, c->ctls->err);
        return;
    }
    if (c->infer) { /* inference: the backend is dialled per request */
        inspect_enter_requests(c);
        return;
    }
    inspect_upstream_tls_start(c);
}

static void start_client_tls(struct conn *c, const char *sni)
{
    SSL *ssl;
    struct proxy *p = c->w->proxy;
    if (sni[0] && strcasecmp(sni, c->target.host) != 0) {
        char d[600];
        snprintf(d, sizeof(d), "TLS SNI '%s' does not match the CONNECT authority '%s'", sni,
                 c->target.host);
        refuse(c, "sni_mismatch", d);
        return;
    }
    if (tls_server_ssl_new(p->tls_server_ctx, c->cfd, c->target.host, TLS_SERVER_SNI_MUST_MATCH, &ssl) < 0 ||
        new_tls(&c->ctls, ssl) < 0) {
        refuse(c, "tls_setup_failed", "could not create the client-side TLS session");
        return;
    }
    c->state = CONN_TLS_ACCEPT;
    client_tls_step(c);
}

static void peek_step(struct conn *c)
{
    static __thread char peek[PEEK_MAX];
    ssize_t n = recv(c->cfd, peek, sizeof(peek), MSG_PEEK);
    if (n == 0) {
        conn_close(c, "client_closed");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            conn_close(c, "client_read_error");
        return;
    }
    if (c->infer) {
        switch (infer_classify_first((unsigned char)peek[0])) {
        case INFER_FIRST_HTTP:
            loop_timer_stop(c->w->loop, &c->timer);
            inspect_enter_requests(c);
            return;
        case INFER_FIRST_OTHER:
            infer_refuse_first(c, "inference_bad_first_byte", (unsigned char)peek[0], NULL);
            return;
        case INFER_FIRST_TLS:
            break; /* terminated below; a record that is no ClientHello fails the handshake */
        }
    }
    enum tls_peek_kind k = tls_peek_classify(peek, (size_t)n);
    if (c->infer && k == TLS_PEEK_OTHER)
        k = TLS_PEEK_TLS;
    char sni[256] = "";
    switch (k) {
    case TLS_PEEK_NEED_MORE:
        return;
    case TLS_PEEK_TLS: {
        int r = tls_sni_parse(peek, (size_t)n, sni, sizeof(sni));
        if (r == -EAGAIN && n < PEEK_MAX)
            return; /* wait for the rest of the ClientHello */
        if (r < 0 && r != -ENOENT) {
            refuse(c, "bad_client_hello", "the TLS ClientHello could not be parsed");
            return;
        }
        loop_timer_stop(c->w->loop, &c->timer);
        start_client_tls(c, r == 0 ? sni : "");
        return;
    }
    case TLS_PEEK_HTTP1:
        loop_timer_stop(c->w->loop, &c->timer);
        inspect_enter_requests(c);
        return;
    case TLS_PEEK_H2_PREFACE:
        refuse(c, "l7_unsupported_protocol",
               "HTTP/2 prior knowledge cannot be inspected on a protocol: rest endpoint; "
               "use HTTP/1.1 (or tls: skip on the endpoint to relay it uninspected)");
        return;
    case TLS_PEEK_OTHER:
        refuse(c, "l7_unsupported_protocol",
               "the tunnel does not carry TLS or HTTP/1; a protocol: rest endpoint only "
               "relays inspectable HTTP");
        return;
    }
}

void inspect_start(struct conn *c)
{
    static const char ok[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
    c->inspect = true;
    auditev_decision(c, true, NULL, "tunnel allowed; requests are inspected");
    if (c->cin.len > c->head.len) {
        /* the client did not wait for our 200: its bytes are already ours */
        refuse(c, "early_data", "the client sent tunnel bytes before the 200 on an inspected endpoint");
        return;
    }
    buf_consume(&c->cin, c->cin.len);
    c->head_parsed = false; /* the CONNECT is done; requests come next */
    if (buf_append(&c->cout, ok, sizeof(ok) - 1) < 0 || conn_flush_client(c) < 0)
        return;
    c->state = CONN_PEEK;
    if (loop_timer_start(c->w->loop, &c->timer, p_head_timeout(c)) < 0) {
        conn_close(c, "timer_full");
        return;
    }
    peek_step(c);
}

void inspect_on_event(struct conn *c)
{
    switch (c->state) {
    case CONN_PEEK:
        peek_step(c);
        return;
    case CONN_TLS_ACCEPT:
        client_tls_step(c);
        return;
    case CONN_TLS_CONNECT:
        upstream_tls_step(c);
        return;
    case CONN_HEAD:
    case CONN_RESOLVE:
    case CONN_CONNECT:
    case CONN_TUNNEL:
    case CONN_FORWARD:
    case CONN_INFER_BODY:
    case CONN_CLOSED:
        return;
    }
}
