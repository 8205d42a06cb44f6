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

static enum conn_step refuse(struct conn *c, const char *reason, const char *detail)
{
    auditev_decision(c, false, reason, detail);
    return conn_fail(c, reason);
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

/* ---- TLS_CONNECT: upstream TLS (inspected tunnels and https:// forward
 * requests) ---- */

static enum conn_step upstream_tls_step(struct conn *c)
{
    int r = tls_conn_handshake(c->utls);
    if (r == TLS_WANT_READ || r == TLS_WANT_WRITE)
        return CONN_STEP_WAIT;
    if (r == TLS_ERROR) {
        char detail[512];
        const char *reason = tls_conn_failure(c->utls, detail, sizeof(detail));
        upstream_close(c); /* a failed session is never reused */
        return respond_deny(c, reason == TLS_REASON_UPSTREAM_INVALID ? 403 : 502, reason, detail,
                            reason == TLS_REASON_UPSTREAM_INVALID
                                ? "the upstream's certificate did not verify; an operator can "
                                  "add its CA with --upstream-ca"
                                : NULL);
    }
    return CONN_STEP_NEXT; /* EXCHANGE for a waiting request, else REQ_HEAD */
}

enum conn_step inspect_tls_connect_enter(struct conn *c)
{
    SSL *ssl;
    struct proxy *p = c->w->proxy;
    if (proxy_tls_wait(p) < 0 || !p->tls_client ||
        tls_client_ssl_new(p->tls_client, c->ufd, c->target.host, c->target.port, &ssl) < 0 ||
        new_tls(&c->utls, ssl) < 0)
        return respond_error(c, 502, PROXY_REASON_UPSTREAM_TLS_HANDSHAKE,
                             "could not start TLS to the upstream");
    return upstream_tls_step(c);
}

enum conn_step inspect_tls_connect_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    (void)s, (void)ev;
    return upstream_tls_step(c);
}

enum conn_step inspect_tls_connect_timer(struct conn *c)
{
    upstream_close(c);
    return respond_deny(c, 504, PROXY_REASON_UPSTREAM_TLS_TIMEOUT,
                        "the upstream did not finish the TLS handshake in time", NULL);
}

/* ---- TLS_ACCEPT: the client side ---- */

static enum conn_step client_tls_step(struct conn *c)
{
    int r = tls_conn_handshake(c->ctls);
    if (r == TLS_WANT_READ || r == TLS_WANT_WRITE)
        return CONN_STEP_WAIT;
    if (r == TLS_ERROR) {
        log_info("proxy: conn %llu: client TLS handshake for %s failed: %s",
                 (unsigned long long)c->id, c->target.host, c->ctls->err);
        if (c->ctls->alert >= 0) { /* the client said why: tls_client_rejected */
            char detail[512];
            auditev_tls_client_rejected(c, c->ctls->alert, detail, sizeof(detail));
            return refuse(c, TLS_REASON_CLIENT_HANDSHAKE, detail);
        }
        return refuse(c, TLS_REASON_CLIENT_HANDSHAKE, c->ctls->err);
    }
    return CONN_STEP_NEXT; /* TLS_CONNECT */
}

enum conn_step inspect_tls_accept_enter(struct conn *c)
{
    return client_tls_step(c);
}

enum conn_step inspect_tls_accept_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    (void)s, (void)ev;
    return client_tls_step(c);
}

/* PEEK and TLS_ACCEPT: the client did not start or finish TLS in time. */
enum conn_step inspect_client_timer(struct conn *c)
{
    return refuse(c, PROXY_REASON_CLIENT_TIMEOUT,
                  "the client did not start or finish TLS in time");
}

/* ---- PEEK ---- */

static enum conn_step start_client_tls(struct conn *c, const char *sni)
{
    SSL *ssl;
    struct proxy *p = c->w->proxy;
    if (sni[0] && strcasecmp(sni, c->target.host) != 0) {
        char d[600];
        snprintf(d, sizeof(d), "TLS SNI '%s' does not match the CONNECT authority '%s'", sni,
                 c->target.host);
        return refuse(c, PROXY_REASON_SNI_MISMATCH, d);
    }
    if (proxy_tls_wait(p) < 0 ||
        tls_server_ssl_new(p->tls_server_ctx, c->cfd, c->target.host, TLS_SERVER_SNI_MUST_MATCH, &ssl) < 0 ||
        new_tls(&c->ctls, ssl) < 0)
        return refuse(c, PROXY_REASON_TLS_SETUP_FAILED,
                      "could not create the client-side TLS session");
    return CONN_STEP_NEXT; /* TLS_ACCEPT */
}

static enum conn_step peek_step(struct conn *c)
{
    char peek[PEEK_MAX]; /* the worker's stack, not static TLS (zeroed per thread) */
    int f = conn_flush_client(c); /* our 200 first */
    if (f <= 0)
        return f < 0 ? CONN_STEP_CLOSE : CONN_STEP_WAIT;
    ssize_t n = recv(c->cfd, peek, sizeof(peek), MSG_PEEK);
    if (n == 0)
        return conn_fail(c, PROXY_REASON_CLIENT_CLOSED);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return conn_fail(c, PROXY_REASON_CLIENT_READ_ERROR);
        return CONN_STEP_WAIT;
    }
    if (c->infer) { /* inference.local: TLS or plaintext on the raw tunnel */
        unsigned char b = (unsigned char)peek[0];
        switch (infer_classify_first(b)) {
        case INFER_FIRST_HTTP:
            return CONN_STEP_NEXT; /* REQ_HEAD: plaintext requests */
        case INFER_FIRST_OTHER: {
            char d[300];
            snprintf(d, sizeof(d), "the first byte after the CONNECT 200 was 0x%02x: neither a TLS "
                     "record (0x14-0x18) nor an HTTP request; send HTTP/1.1 or TLS to the inference host", b);
            return refuse(c, PROXY_REASON_INFERENCE_BAD_FIRST_BYTE, d);
        }
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
        return CONN_STEP_WAIT;
    case TLS_PEEK_TLS: {
        int r = tls_sni_parse(peek, (size_t)n, sni, sizeof(sni));
        if (r == -EAGAIN && n < PEEK_MAX)
            return CONN_STEP_WAIT; /* wait for the rest of the ClientHello */
        if (r < 0 && r != -ENOENT)
            return refuse(c, PROXY_REASON_BAD_CLIENT_HELLO, "the TLS ClientHello could not be parsed");
        return start_client_tls(c, r == 0 ? sni : "");
    }
    case TLS_PEEK_HTTP1:
        return CONN_STEP_NEXT; /* REQ_HEAD: plaintext requests */
    case TLS_PEEK_H2_PREFACE:
        return refuse(c, PROXY_REASON_L7_UNSUPPORTED_PROTOCOL,
                      "HTTP/2 prior knowledge cannot be inspected on a protocol: rest endpoint; "
                      "use HTTP/1.1 (or tls: skip on the endpoint to relay it uninspected)");
    case TLS_PEEK_OTHER:
        return refuse(c, PROXY_REASON_L7_UNSUPPORTED_PROTOCOL,
                      "the tunnel does not carry TLS or HTTP/1; a protocol: rest endpoint only "
                      "relays inspectable HTTP");
    }
    return CONN_STEP_WAIT;
}

/* PEEK's entry: the tunnel is allowed; answer 200, then classify. */
enum conn_step inspect_peek_enter(struct conn *c)
{
    static const char ok[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
    c->inspect = true;
    if (c->infer) {
        json_t *o = json_object();
        json_object_set_new(o, "outcome", json_string("tunnel_intercepted"));
        auditev_inference(c, o);
    } else {
        auditev_decision(c, true, NULL, "tunnel allowed; requests are inspected");
    }
    if (c->infer && c->cin.len > c->msg->head.len) {
        /* the client did not wait for our 200: its first bytes are read already */
        unsigned char b = (unsigned char)buf_head(&c->cin)[c->msg->head.len];
        enum infer_first k = infer_classify_first(b);
        if (k != INFER_FIRST_HTTP) {
            char d[300];
            snprintf(d, sizeof(d), "the first byte after the CONNECT 200 was 0x%02x: %s", b,
                     k == INFER_FIRST_TLS ? "TLS sent before the 200 cannot be terminated; wait for the 200"
                                          : "neither a TLS record (0x14-0x18) nor an HTTP request");
            return refuse(c, k == INFER_FIRST_TLS ? PROXY_REASON_EARLY_DATA : PROXY_REASON_INFERENCE_BAD_FIRST_BYTE, d);
        }
        buf_consume(&c->cin, c->msg->head.len); /* plaintext requests already here: keep them */
        c->head_parsed = false;
        if (buf_append(&c->cout, ok, sizeof(ok) - 1) < 0)
            return conn_fail(c, PROXY_REASON_OUT_OF_MEMORY);
        int f = conn_flush_client(c);
        return f < 0 ? CONN_STEP_CLOSE : f == 0 ? conn_fail(c, PROXY_REASON_CLIENT_WRITE_ERROR) : CONN_STEP_NEXT;
    }
    if (c->cin.len > c->msg->head.len) /* the client did not wait for our 200: its bytes are already ours */
        return refuse(c, PROXY_REASON_EARLY_DATA,
                      "the client sent tunnel bytes before the 200 on an inspected endpoint");
    buf_consume(&c->cin, c->cin.len);
    c->head_parsed = false; /* the CONNECT is done; requests come next */
    if (!c->transparent && buf_append(&c->cout, ok, sizeof(ok) - 1) < 0)
        return conn_fail(c, PROXY_REASON_OUT_OF_MEMORY);
    return peek_step(c);
}

enum conn_step inspect_peek_event(struct conn *c, enum conn_side s, uint32_t ev)
{
    (void)s, (void)ev;
    return peek_step(c);
}
