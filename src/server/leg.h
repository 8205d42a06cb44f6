/* server/leg: the backend leg of a proxied exchange — one TCP connection from
 * the server to a port in a sandbox, shared by the HTTP route (server/hproxy)
 * and the WebSocket route (server/wsproxy).
 *
 *   CONNECTING -> SENDING -> HEAD -> BODY -> DONE
 *
 * The leg owns the socket, its timer, the request bytes, the response head
 * buffer and parser, and the end of the exchange: leg_finish() (socket
 * closed, the owner released at the end of the loop turn), leg_fail() (a
 * JSON error to the client if it has not been answered yet, then finish),
 * the timeout (504 before the response head, or the owner's on_timeout) and
 * the client going away (leg_client_gone, for http_hold). The owner embeds
 * struct leg and says what is special through leg_ops: what else to send
 * after the request head (a streamed body), what to do with the response
 * head, the readable socket after it, and how to free itself.
 *
 * A leg may be pinned (leg_pin): the front door still holds the owner as a
 * body sink, so it is not released, and a failure is kept (leg->err_*) to be
 * answered by the owner once the client has sent its body. */
#ifndef CORDON_SERVER_LEG_H
#define CORDON_SERVER_LEG_H

#include <netinet/in.h>
#include <stddef.h>

#include "core/loop.h"
#include "http/message.h"
#include "http/server.h"

struct srv;
struct leg;

enum leg_state { LEG_CONNECTING, LEG_SENDING, LEG_HEAD, LEG_BODY, LEG_DONE };

struct leg_ops {
    /* SENDING, after the request head went out: send what else there is.
     * Returns 1 when the request is complete (-> HEAD), 0 to wait (after
     * calling leg_watch itself: EPOLLOUT only when it has bytes pending),
     * -1 after failing the leg.
     * NULL: the head is the whole request. */
    int (*send_more)(struct leg *g);
    /* The response head is in g->head (bytes after it: g->hbuf + g->head.len
     * up to g->hlen). The owner moves on (leg_set_state(BODY)) or ends. */
    void (*on_head)(struct leg *g);
    /* BODY: the socket is readable (or closed). */
    void (*on_readable)(struct leg *g);
    /* The timer fired after the head (NULL: 504 as before the head). */
    void (*on_timeout)(struct leg *g);
    /* The leg just finished (socket closed); optional. */
    void (*on_finish)(struct leg *g);
    /* Frees the owner (at the end of a loop turn, once). */
    void (*release)(struct leg *g);
    const char *what; /* "request" or "handshake", for messages */
};

struct leg {
    const struct leg_ops *ops;
    struct srv *s;
    struct http_conn *c; /* the client while it waits for an answer, else NULL */
    char rid[200];       /* "X-Request-ID: ...\r\n" */
    char label[96];
    enum leg_state state;
    int fd;
    struct loop_io io;
    struct loop_timer timer;
    struct loop_deferred defer;
    char *req; /* the request head (owned) */
    size_t req_len, req_pos;
    struct http_parser rp;
    struct http_head head;
    char hbuf[HTTP_HEAD_MAX];
    size_t hlen;
    int pinned, freeing;
    int err_status; /* a failure kept while pinned */
    const char *err_code;
    char err_msg[512];
};

/* Sets up g (the owner has zeroed it): ops, the client, its request id,
 * a label for logs, req (taken). */
void leg_init(struct leg *g, const struct leg_ops *ops, struct srv *s, struct http_conn *c,
              const char *rid, const char *label, char *req, size_t req_len);
/* Connects to be and starts the timer (--proxy-timeout). Returns 0, or -1
 * after answering the client (when answer; else the failure is kept as by
 * leg_fail on a pinned leg) and releasing nothing: the caller frees. */
int leg_dial(struct leg *g, const struct sockaddr_in *be, int answer)
    __attribute__((warn_unused_result));
void leg_set_state(struct leg *g, enum leg_state st);
/* Which events to watch: computed from the state (CONNECTING/SENDING with
 * bytes pending: out; HEAD: in) or, in BODY, the owner's choice. */
void leg_watch(struct leg *g, uint32_t body_events);
/* (Re)starts the timer: the owner's progress. */
void leg_timer_restart(struct leg *g);
void leg_timer_stop(struct leg *g);
/* SENDING: sends what is pending of a buffer. 1 all sent, 0 socket full,
 * -1 the leg failed (502). */
int leg_send_buf(struct leg *g, const void *p, size_t *pos, size_t len);
/* Ends the exchange: socket closed, owner released when not pinned. */
void leg_finish(struct leg *g);
/* Fails before the response head reached the client: {code, message} to
 * it (kept for later when pinned), then leg_finish. */
void leg_fail(struct leg *g, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void leg_pin(struct leg *g);
/* Unpins; releases the owner when the leg is done. */
void leg_unpin(struct leg *g);
/* For http_hold: the client went away. */
void leg_client_gone(struct http_conn *c, void *data);

#endif
