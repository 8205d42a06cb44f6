/* ws/conn: a server-side WebSocket connection on the loop, framed by wslay.
 *
 * Takes a socket after the HTTP upgrade and owns it. Limits and behaviour:
 *   max_msg   a bigger incoming message closes with 1009, decided at the
 *             frame header (messages are assembled here, not by wslay)
 *   ping_ms   a ping every ping_ms; nothing heard for 2 * ping_ms closes
 *             with 1011 "keepalive timeout"; 0 disables both
 *   output    callers check ws_conn_queued() against their own high-water
 *             mark before queueing and resume on on_drain; when the queue
 *             (data plus the pongs and replies the peer's frames cause)
 *             passes 1 MiB, the connection stops reading the peer until it
 *             drains, so a peer that sends without reading stalls itself
 * Closing: ws_conn_close() sends its close frame only after every message
 * queued before it is written (a peer that takes nothing for 60 s meanwhile
 * is cut, code 1006), then waits up to 2 s for the peer's reply and closes
 * the socket. on_close fires exactly once,
 * when the socket is gone (the code is the one received, or 1006 when the
 * peer vanished). The object is freed at the end of that loop turn.
 *
 * Loop-thread only. */
#ifndef CORDON_WS_CONN_H
#define CORDON_WS_CONN_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct ws_conn;

enum ws_opcode { WS_TEXT = 1, WS_BINARY = 2 };

struct ws_conn_cbs {
    /* A complete text or binary message arrived. */
    void (*on_msg)(struct ws_conn *ws, enum ws_opcode op, const uint8_t *msg, size_t len,
                   void *data);
    /* Queued output fell below the low-water mark: queue more. */
    void (*on_drain)(struct ws_conn *ws, void *data);
    /* Optional: the peer's close frame arrived (code 1005 when it carried
     * none; reason is its UTF-8 text, not NUL-terminated). The reply is
     * queued by the layer; on_close follows once the socket is gone. */
    void (*on_peer_close)(struct ws_conn *ws, uint16_t code, const uint8_t *reason,
                          size_t len, void *data);
    /* The connection is over; do not touch ws after this returns. */
    void (*on_close)(struct ws_conn *ws, uint16_t code, void *data);
};

struct ws_conn_cfg {
    size_t max_msg;
    uint64_t ping_ms;
    size_t low_water;
    const char *label; /* for log lines, e.g. "session 1234 from 127.0.0.1:5555" */
    int client;        /* 1: the client end (frames we send are masked, RFC 6455 §5.3) */
};

/* Wraps fd (nonblocking). preamble (the 101 response) is written first;
 * leftover holds bytes already read after the request head. Returns 0 and
 * *out or -errno (fd is closed on failure). */
int ws_conn_new(struct loop *l, int fd, const void *preamble, size_t plen, const void *leftover,
                size_t llen, const struct ws_conn_cfg *cfg, const struct ws_conn_cbs *cbs,
                void *data, struct ws_conn **out) __attribute__((warn_unused_result));

/* Changes who gets the callbacks (NULL cbs: nobody). */
void ws_conn_set_cbs(struct ws_conn *ws, const struct ws_conn_cbs *cbs, void *data);

/* Queues a message made of head + body (either may be empty) and starts
 * sending. Returns 0, -EPIPE when closing/closed, -ENOMEM. */
int ws_conn_send(struct ws_conn *ws, enum ws_opcode op, const void *head, size_t hlen,
                 const void *body, size_t blen);
/* Bytes queued and not yet written. */
size_t ws_conn_queued(const struct ws_conn *ws);
/* Starts the closing handshake with code and reason (after queued data).
 * code 0 sends a close frame without a status code. */
void ws_conn_close(struct ws_conn *ws, uint16_t code, const char *reason);
/* Closes the socket now, without a close frame (shutdown). on_close fires
 * before this returns, with code 1006. */
void ws_conn_abort(struct ws_conn *ws);
/* 1 once closing has started or the socket is gone. */
int ws_conn_closing(const struct ws_conn *ws);
/* Stops (1) or resumes (0) reading messages: backpressure for the consumer. */
void ws_conn_pause_read(struct ws_conn *ws, int paused);

#endif
