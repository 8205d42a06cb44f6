/* ws/conn: wslay's event API driven by our epoll loop.
 *
 * States: OPEN -> CLOSING (close asked for, queued or received) -> CLOSED
 * (socket gone).
 *
 * Order at the end: wslay sends control frames ahead of queued data and
 * stops writing once its close is out, so our close is only handed to wslay
 * when everything queued before it has been written (close_pending until
 * then). Incoming messages are assembled here (wslay runs unbuffered), so a
 * message over max_msg is caught at its frame header and closed the same
 * way, with 1009, instead of by wslay ahead of the queue; the rest of that
 * message is read and dropped, so the socket is not reset with unread input.
 * A peer that makes no progress reading for drain_ms while a close waits
 * behind its output is cut (1006).
 *
 * on_close is never called from inside a function the owner called
 * (ws_conn_send, ws_conn_close): failures there schedule the teardown for
 * the end of the loop turn, so an owner never sees itself detached halfway
 * through its own loop. */
#include "ws/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "core/log.h"
#include "core/loop.h"
#include <openssl/rand.h>

#include "core/banned.h"

#define WS_CLOSE_WAIT_MS 2000
#define WS_DRAIN_MS 60000 /* no write progress before a pending close gives up, no pings */
#define WS_INBUF_KEEP 65536
#define WS_READ_BUDGET (256 * 1024) /* bytes read per loop turn, for fairness */
#define WS_SCRATCH_KEEP 65536
#define WS_MAX_QUEUED (1024 * 1024) /* output queued before we stop reading input */

enum ws_state { WS_OPEN, WS_CLOSING, WS_CLOSED };

static const char *const ws_state_names[] = {"OPEN", "CLOSING", "CLOSED"};

struct ws_conn {
    struct loop *loop;
    struct loop_io io;
    struct loop_timer ping, close_wait;
    struct loop_deferred defer; /* the teardown-and-free, or just the free */
    wslay_event_context_ptr ctx;
    enum ws_state state;
    struct ws_conn_cfg cfg;
    char label[160];
    struct ws_conn_cbs cbs;
    void *data;
    uint8_t *pre;
    size_t pre_len, pre_pos;
    uint8_t *left;
    size_t left_len, left_pos;
    uint8_t *scratch;
    size_t scratch_cap;
    uint64_t last_rx;
    size_t read_this_turn;
    int paused;
    int teardown_pending;
    uint16_t close_code; /* what the peer sent, or what we end with */
    int close_pending;   /* our close waits for the queued output */
    uint16_t send_code;  /* the code our close frame carries (0: none) */
    char close_reason[124];
    uint64_t last_tx;    /* last time send() took bytes */
    /* the incoming data message, assembled here (wslay is unbuffered) */
    uint8_t *in_buf;
    size_t in_len, in_cap;
    int in_ctrl;      /* the current frame is a control frame (wslay keeps it) */
    int in_drop;      /* the current message is too big: its bytes are dropped */
};

static void ws_set_state(struct ws_conn *ws, enum ws_state st)
{
    if (ws->state == st)
        return;
    log_debug("ws: %s: %s -> %s", ws->label, ws_state_names[ws->state], ws_state_names[st]);
    ws->state = st;
}

static void ws_free(void *arg)
{
    struct ws_conn *ws = arg;
    if (ws->ctx)
        wslay_event_context_free(ws->ctx);
    free(ws->pre);
    free(ws->left);
    free(ws->scratch);
    free(ws->in_buf);
    free(ws);
}

/* Closes the socket and tells the owner; frees at the end of the turn.
 * One deferred node per object: when a teardown is already scheduled, that
 * deferred call does the free (two nodes would run last-in first-out, the
 * free before the teardown). */
static void ws_teardown(struct ws_conn *ws)
{
    if (ws->state == WS_CLOSED)
        return;
    ws_set_state(ws, WS_CLOSED);
    loop_timer_stop(ws->loop, &ws->ping);
    loop_timer_stop(ws->loop, &ws->close_wait);
    if (ws->io.fd >= 0) {
        loop_io_del(ws->loop, &ws->io);
        close(ws->io.fd);
        ws->io.fd = -1;
    }
    if (ws->cbs.on_close)
        ws->cbs.on_close(ws, ws->close_code, ws->data);
    if (!ws->teardown_pending)
        loop_defer(ws->loop, &ws->defer, ws_free, ws);
}

static void ws_teardown_deferred(void *arg)
{
    struct ws_conn *ws = arg;
    ws_teardown(ws);
    ws_free(ws);
}

static void ws_schedule_teardown(struct ws_conn *ws)
{
    if (ws->teardown_pending || ws->state == WS_CLOSED)
        return;
    ws->teardown_pending = 1;
    loop_defer(ws->loop, &ws->defer, ws_teardown_deferred, ws);
}

/* Input is not read while the owner paused it, or while our own output
 * (data, but also pongs and error replies the peer's input causes) is over
 * WS_MAX_QUEUED: a peer that sends without reading stalls itself instead of
 * growing our queue. */
static int ws_read_blocked(const struct ws_conn *ws)
{
    return ws->paused || wslay_event_get_queued_msg_length(ws->ctx) >= WS_MAX_QUEUED ||
           wslay_event_get_queued_msg_count(ws->ctx) >= WS_MAX_QUEUED / 64;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
    struct ws_conn *ws = user;
    (void)flags;
    if (ws->left_pos < ws->left_len) {
        size_t n = ws->left_len - ws->left_pos;
        if (n > len)
            n = len;
        memcpy(buf, ws->left + ws->left_pos, n);
        ws->left_pos += n;
        return (ssize_t)n;
    }
    if (ws_read_blocked(ws) || ws->read_this_turn >= WS_READ_BUDGET) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    for (;;) {
        ssize_t n = read(ws->io.fd, buf, len);
        if (n > 0) {
            ws->read_this_turn += (size_t)n;
            ws->last_rx = loop_now_ms(ws->loop);
            return n;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct ws_conn *ws = user;
    for (;;) {
        ssize_t n = send(ws->io.fd, data, len,
                         MSG_NOSIGNAL | ((flags & WSLAY_MSG_MORE) ? MSG_MORE : 0));
        if (n > 0)
            ws->last_tx = loop_now_ms(ws->loop);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        wslay_event_set_error(ctx, (errno == EAGAIN || errno == EWOULDBLOCK)
                                       ? WSLAY_ERR_WOULDBLOCK
                                       : WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
}

/* Masking keys for the client end (RFC 6455 §5.3: unpredictable). */
static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)user;
    if (RAND_bytes(buf, (int)len) != 1) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return 0;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    struct ws_conn *ws = user;
    (void)ctx;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
    case WSLAY_BINARY_FRAME:
        if (ws->state == WS_OPEN && !ws->in_drop && ws->cbs.on_msg)
            ws->cbs.on_msg(ws, arg->opcode == WSLAY_TEXT_FRAME ? WS_TEXT : WS_BINARY,
                           ws->in_buf, ws->in_len, ws->data);
        ws->in_len = 0;
        ws->in_drop = 0;
        if (ws->in_cap > WS_INBUF_KEEP) {
            free(ws->in_buf);
            ws->in_buf = NULL;
            ws->in_cap = 0;
        }
        break;
    case WSLAY_CONNECTION_CLOSE:
        ws->close_code = arg->status_code ? arg->status_code : WSLAY_CODE_NO_STATUS_RCVD;
        if (ws->state == WS_OPEN && ws->cbs.on_peer_close)
            ws->cbs.on_peer_close(ws, ws->close_code, arg->msg_length > 2 ? arg->msg + 2 : NULL,
                                  arg->msg_length > 2 ? arg->msg_length - 2 : 0, ws->data);
        ws_set_state(ws, WS_CLOSING);
        break;
    default:
        break;
    }
}

static void ws_close_after_queue(struct ws_conn *ws, uint16_t code, const char *reason);

/* A frame header: a data message over max_msg is refused here, before its
 * payload is read (wslay's own check would queue its close ahead of our
 * output). Control frames are buffered by wslay itself. */
static void frame_start_cb(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    struct ws_conn *ws = user;
    (void)ctx;
    ws->in_ctrl = (arg->opcode & 0x8) != 0;
    if (ws->in_ctrl || ws->in_drop)
        return;
    if (arg->opcode != WSLAY_CONTINUATION_FRAME)
        ws->in_len = 0;
    if (arg->payload_length > ws->cfg.max_msg - ws->in_len) {
        log_info("ws: %s: message over %zu bytes; closing with 1009 after the queued output",
                 ws->label, ws->cfg.max_msg);
        ws->in_drop = 1;
        ws_close_after_queue(ws, WSLAY_CODE_MESSAGE_TOO_BIG, "message too big");
        return;
    }
    size_t need = ws->in_len + (size_t)arg->payload_length;
    if (need > ws->in_cap) {
        uint8_t *n = realloc(ws->in_buf, need ? need : 1);
        if (!n) {
            ws->in_drop = 1;
            ws_close_after_queue(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
            return;
        }
        ws->in_buf = n;
        ws->in_cap = need;
    }
}

static void frame_chunk_cb(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
    struct ws_conn *ws = user;
    (void)ctx;
    if (ws->in_ctrl || ws->in_drop || arg->data_length == 0)
        return;
    if (arg->data_length > ws->in_cap - ws->in_len) { /* cannot happen: sized at the header */
        ws->in_drop = 1;
        return;
    }
    memcpy(ws->in_buf + ws->in_len, arg->data, arg->data_length);
    ws->in_len += arg->data_length;
}

static void ws_update_io(struct ws_conn *ws)
{
    if (ws->state == WS_CLOSED)
        return;
    uint32_t ev = EPOLLRDHUP;
    if (!ws_read_blocked(ws) && wslay_event_want_read(ws->ctx))
        ev |= EPOLLIN;
    if (ws->pre_pos < ws->pre_len || wslay_event_want_write(ws->ctx))
        ev |= EPOLLOUT;
    /* bytes that came with the handshake are input too: a writable socket
     * wakes us at once to read them */
    if (ws->left_pos < ws->left_len && !ws_read_blocked(ws))
        ev |= EPOLLOUT;
    if (loop_io_mod(ws->loop, &ws->io, ev) < 0)
        log_warn("ws: %s: epoll_ctl failed", ws->label);
}

/* Writes the preamble, then wslay's queue. Returns 0 or -EPIPE (dead). */
static int ws_flush(struct ws_conn *ws)
{
    while (ws->pre_pos < ws->pre_len) {
        ssize_t n = send(ws->io.fd, ws->pre + ws->pre_pos, ws->pre_len - ws->pre_pos,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return -EPIPE;
        ws->pre_pos += (size_t)n;
    }
    if (wslay_event_send(ws->ctx) != 0)
        return -EPIPE;
    return 0;
}

/* Both directions done (close exchanged, or the peer vanished). */
static int ws_finished(struct ws_conn *ws)
{
    return !ws->close_pending && !wslay_event_want_read(ws->ctx) &&
           !wslay_event_want_write(ws->ctx) && ws->pre_pos == ws->pre_len;
}

/* Hands a pending close to wslay once everything before it is written.
 * Returns 0, or -EPIPE when the connection is dead. */
static int ws_release_close(struct ws_conn *ws)
{
    if (!ws->close_pending)
        return 0;
    if (wslay_event_get_close_received(ws->ctx) || !wslay_event_get_read_enabled(ws->ctx) ||
        wslay_event_get_close_sent(ws->ctx)) {
        ws->close_pending = 0; /* the peer closed, or wslay already answers an error */
        return 0;
    }
    if (ws->pre_pos < ws->pre_len || wslay_event_get_queued_msg_count(ws->ctx) > 0)
        return 0;
    ws->close_pending = 0;
    const char *rs = ws->close_reason;
    if (wslay_event_queue_close(ws->ctx, ws->send_code, (const uint8_t *)rs, strlen(rs)) != 0)
        return -EPIPE;
    ws->last_tx = loop_now_ms(ws->loop); /* the reply wait starts now */
    return wslay_event_send(ws->ctx) != 0 ? -EPIPE : 0;
}

static void ws_io(struct loop *l, struct loop_io *io, uint32_t events)
{
    struct ws_conn *ws = io->data;
    (void)l;
    if (ws->state == WS_CLOSED || io->fd < 0)
        return;
    ws->read_this_turn = 0;
    int blocked = ws_read_blocked(ws);
    if (((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || ws->left_pos < ws->left_len) && !blocked) {
        if (wslay_event_recv(ws->ctx) != 0) {
            if (ws->close_code == 0)
                ws->close_code = WSLAY_CODE_ABNORMAL_CLOSURE;
            ws_teardown(ws);
            return;
        }
    } else if (blocked && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        ws->close_code = WSLAY_CODE_ABNORMAL_CLOSURE;
        ws_teardown(ws);
        return;
    }
    if (ws->state == WS_CLOSED)
        return;
    if (ws_flush(ws) < 0 || ws_release_close(ws) < 0) {
        if (ws->close_code == 0)
            ws->close_code = WSLAY_CODE_ABNORMAL_CLOSURE;
        ws_teardown(ws);
        return;
    }
    if (ws_finished(ws)) {
        if (wslay_event_get_close_received(ws->ctx))
            ws->close_code = wslay_event_get_status_code_received(ws->ctx);
        else if (wslay_event_get_close_sent(ws->ctx))
            ws->close_code = wslay_event_get_status_code_sent(ws->ctx);
        ws_teardown(ws);
        return;
    }
    ws_update_io(ws);
    if (ws->state == WS_OPEN && ws->cbs.on_drain &&
        wslay_event_get_queued_msg_length(ws->ctx) < ws->cfg.low_water)
        ws->cbs.on_drain(ws, ws->data);
}

static void ws_ping(struct loop *l, struct loop_timer *t)
{
    struct ws_conn *ws = t->data;
    if (ws->state != WS_OPEN)
        return;
    if (loop_now_ms(l) - ws->last_rx > 2 * ws->cfg.ping_ms) {
        log_info("ws: %s: nothing heard for %llu ms; closing", ws->label,
                 (unsigned long long)(loop_now_ms(l) - ws->last_rx));
        ws_conn_close(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR, "keepalive timeout");
        ws_teardown(ws); /* a silent peer will not answer the close either */
        return;
    }
    struct wslay_event_msg m = {.opcode = WSLAY_PING, .msg = NULL, .msg_length = 0};
    if (wslay_event_queue_msg(ws->ctx, &m) == 0 && ws_flush(ws) < 0) {
        ws_schedule_teardown(ws);
        return;
    }
    ws_update_io(ws);
    (void)loop_timer_start(l, &ws->ping, ws->cfg.ping_ms);
}

/* While a close waits behind output, the peer has WS_DRAIN_MS without
 * write progress; once the close is out, WS_CLOSE_WAIT_MS to answer it. */
static void ws_close_wait(struct loop *l, struct loop_timer *t)
{
    struct ws_conn *ws = t->data;
    int draining = ws->close_pending || wslay_event_want_write(ws->ctx);
    uint64_t limit = draining ? WS_DRAIN_MS : WS_CLOSE_WAIT_MS;
    uint64_t idle = loop_now_ms(l) - ws->last_tx;
    if (idle < limit && loop_timer_start(l, &ws->close_wait, limit - idle) == 0)
        return;
    if (draining)
        log_info("ws: %s: peer read nothing for %llu ms with output queued before the close; "
                 "dropping it", ws->label, (unsigned long long)idle);
    else
        log_debug("ws: %s: peer did not answer the close in time", ws->label);
    if (draining)
        ws->close_code = WSLAY_CODE_ABNORMAL_CLOSURE;
    ws_teardown(ws);
}

int ws_conn_new(struct loop *l, int fd, const void *preamble, size_t plen, const void *leftover,
                size_t llen, const struct ws_conn_cfg *cfg, const struct ws_conn_cbs *cbs,
                void *data, struct ws_conn **out)
{
    static const struct wslay_event_callbacks wcbs = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .genmask_callback = genmask_cb,
        .on_frame_recv_start_callback = frame_start_cb,
        .on_frame_recv_chunk_callback = frame_chunk_cb,
        .on_msg_recv_callback = msg_cb};
    int r = -ENOMEM;
    struct ws_conn *ws = calloc(1, sizeof(*ws));
    if (!ws)
        goto out;
    ws->io.fd = -1;
    ws->pre = malloc(plen ? plen : 1);
    ws->left = malloc(llen ? llen : 1);
    if (!ws->pre || !ws->left ||
        (cfg->client ? wslay_event_context_client_init(&ws->ctx, &wcbs, ws)
                     : wslay_event_context_server_init(&ws->ctx, &wcbs, ws)) != 0)
        goto out;
    memcpy(ws->pre, preamble, plen);
    ws->pre_len = plen;
    memcpy(ws->left, leftover, llen);
    ws->left_len = llen;
    /* we assemble messages and enforce max_msg ourselves (frame_start_cb);
     * wslay's limit only bounds the control frames it buffers */
    wslay_event_config_set_no_buffering(ws->ctx, 1);
    ws->loop = l;
    ws->cfg = *cfg;
    snprintf(ws->label, sizeof(ws->label), "%s", cfg->label ? cfg->label : "ws");
    ws->cfg.label = ws->label;
    if (cbs)
        ws->cbs = *cbs;
    ws->data = data;
    ws->last_rx = loop_now_ms(l);
    ws->io.cb = ws_io;
    ws->io.data = ws;
    ws->ping.cb = ws_ping;
    ws->ping.data = ws;
    ws->close_wait.cb = ws_close_wait;
    ws->close_wait.data = ws;
    r = loop_io_add(l, &ws->io, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    if (r < 0)
        goto out;
    if (cfg->ping_ms && loop_timer_start(l, &ws->ping, cfg->ping_ms) < 0)
        log_warn("ws: %s: timer heap full, no keepalive", ws->label);
    if (ws_flush(ws) < 0)
        ws_schedule_teardown(ws);
    ws_update_io(ws);
    *out = ws;
    return 0;
out:
    close(fd);
    if (ws) {
        if (ws->io.fd >= 0)
            loop_io_del(l, &ws->io);
        ws_free(ws);
    }
    return r;
}

void ws_conn_set_cbs(struct ws_conn *ws, const struct ws_conn_cbs *cbs, void *data)
{
    if (cbs)
        ws->cbs = *cbs;
    else
        memset(&ws->cbs, 0, sizeof(ws->cbs));
    ws->data = data;
}

int ws_conn_send(struct ws_conn *ws, enum ws_opcode op, const void *head, size_t hlen,
                 const void *body, size_t blen)
{
    if (ws->state != WS_OPEN || ws->teardown_pending)
        return -EPIPE;
    size_t len = hlen + blen;
    const uint8_t *msg = body;
    if (hlen) {
        if (len > ws->scratch_cap) {
            uint8_t *n = realloc(ws->scratch, len);
            if (!n)
                return -ENOMEM;
            ws->scratch = n;
            ws->scratch_cap = len;
        }
        memcpy(ws->scratch, head, hlen);
        if (blen)
            memcpy(ws->scratch + hlen, body, blen);
        msg = ws->scratch;
    }
    struct wslay_event_msg m = {
        .opcode = op == WS_TEXT ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME,
        .msg = msg,
        .msg_length = len};
    int r = wslay_event_queue_msg(ws->ctx, &m);
    if (ws->scratch_cap > WS_SCRATCH_KEEP) {
        free(ws->scratch);
        ws->scratch = NULL;
        ws->scratch_cap = 0;
    }
    if (r != 0)
        return r == WSLAY_ERR_NOMEM ? -ENOMEM : -EPIPE;
    if (ws_flush(ws) < 0) {
        ws->close_code = WSLAY_CODE_ABNORMAL_CLOSURE;
        ws_schedule_teardown(ws);
        return -EPIPE;
    }
    ws_update_io(ws);
    return 0;
}

size_t ws_conn_queued(const struct ws_conn *ws)
{
    if (ws->state == WS_CLOSED)
        return 0;
    return wslay_event_get_queued_msg_length(ws->ctx);
}

/* The close goes out after everything queued so far (ws_release_close). */
static void ws_close_after_queue(struct ws_conn *ws, uint16_t code, const char *reason)
{
    if (ws->state != WS_OPEN)
        return;
    ws_set_state(ws, WS_CLOSING);
    /* code 0: a close frame without a status code (reported as 1005) */
    ws->close_code = code ? code : WSLAY_CODE_NO_STATUS_RCVD;
    ws->send_code = code;
    snprintf(ws->close_reason, sizeof(ws->close_reason), "%s", reason && code ? reason : "");
    ws->close_pending = 1;
    ws->last_tx = loop_now_ms(ws->loop);
    if (ws_flush(ws) < 0 || ws_release_close(ws) < 0) {
        ws_schedule_teardown(ws);
        return;
    }
    if (loop_timer_start(ws->loop, &ws->close_wait, WS_CLOSE_WAIT_MS) < 0)
        ws_schedule_teardown(ws);
    ws_update_io(ws);
}

void ws_conn_close(struct ws_conn *ws, uint16_t code, const char *reason)
{
    ws_close_after_queue(ws, code, reason);
}

void ws_conn_abort(struct ws_conn *ws)
{
    if (ws->state == WS_CLOSED)
        return;
    ws->close_code = WSLAY_CODE_ABNORMAL_CLOSURE;
    ws_teardown(ws);
}

int ws_conn_closing(const struct ws_conn *ws)
{
    return ws->state != WS_OPEN || ws->teardown_pending;
}

void ws_conn_pause_read(struct ws_conn *ws, int paused)
{
    if (ws->paused == paused || ws->state == WS_CLOSED)
        return;
    ws->paused = paused;
    ws_update_io(ws);
}
