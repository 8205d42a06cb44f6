/* proxy/wsrelay: a WebSocket after a 101, relayed with its frames in view.
 *
 * A raw relay cannot say why a session ended: when the upstream vanished
 * (reset, or EOF without a close frame) or the endpoint's idle timeout
 * fired, the client saw a bare TCP close, the same as a clean end. This
 * relay copies bytes like the tunnel's copy relay (through the client and
 * upstream buffers, TLS on either side or none), and a frame tracker per
 * direction (ws/frame.h) follows the headers of what passes, so the proxy
 * knows where it may put a frame of its own — never inside another frame:
 *
 *   upstream gone without a close frame, no close under way:
 *     between frames → the client gets every whole frame read, then close
 *       1011 with a reason; the proxy waits for the client's close reply
 *       (or its EOF), then closes the connection cleanly (TLS close_notify,
 *       FIN): websocket_upstream_lost.
 *     inside a frame (the upstream died mid-frame) → no close frame can be
 *       sent without corrupting the stream: the client's connection is reset
 *       (SO_LINGER 0, no close_notify): websocket_upstream_lost_mid_frame.
 *   idle timeout → close 1001 "idle timeout" to each side whose direction
 *     is between frames: unmasked to the client, masked with a random key
 *     to the upstream (the proxy speaks as a client there, RFC 6455 §5.3);
 *     then both replies are awaited and the connection closes: idle_timeout.
 *     A side whose direction is mid-frame gets no frame: the client is
 *     reset, the upstream just closed.
 * A close of ours may come between the fragments of a message (control
 * frames may, §5.4). While the proxy's closing handshake runs, nothing more
 * is relayed: each side's input is read only to find its close reply, and
 * the close wait (WSRELAY_CLOSE_WAIT_MS) bounds the whole handshake.
 *
 * A session the tracker cannot follow in either direction (not WebSocket
 * framing, or framing that breaks RFC 6455) is relayed as it was before:
 * the relay adds nothing to it either way, and its end is a plain close. So is an upstream end after
 * a close frame passed in either direction, or after the client's own EOF:
 * that is the peers' own ending.
 *
 * The audit close event carries a "websocket" object: the codes the proxy
 * sent each side, whether the client was reset, how the upstream ended,
 * and the frames seen each way. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "core/log.h"
#include "proxy/internal.h"
#include "proxy/side.h"
#include "ws/frame.h"
#include "core/banned.h"

#define WSRELAY_CLOSE_WAIT_MS 5000u /* our closing handshake, both replies included */
#define WSRELAY_DISCARD 16384       /* read size while waiting for a close reply */

#define WS_CLOSE_GOING_AWAY 1001   /* RFC 6455 §7.4.1 */
#define WS_CLOSE_INTERNAL_ERROR 1011

/* The reasons our close frames carry, sent as they are. */
static const char WHY_UPSTREAM_ERROR[] = "cordon: upstream connection lost";
static const char WHY_UPSTREAM_EOF[] = "cordon: upstream closed without a close frame";
static const char WHY_IDLE[] = "cordon: idle timeout";

enum wsrelay_phase { WSR_RELAY, WSR_CLOSING };

/* One direction: the frames read from its source, and a close frame of
 * ours on its way to its sink. */
struct wsr_dir {
    struct ws_frame_track track;
    uint8_t ctl[WS_FRAME_CLOSE_MAX];
    size_t ctl_len;         /* bytes of ctl not yet in the sink's buffer */
    uint16_t sent;          /* the code of the close we sent the sink (0: none) */
    bool wait_reply;        /* closing: the source's close frame is still due */
    uint64_t closes_before; /* track.closes when the wait began */
    bool logged;            /* the tracking error was logged */
};

struct wsrelay {
    enum wsrelay_phase phase;
    struct wsr_dir up, down;  /* up: client → upstream (masked frames); down: upstream → client */
    const char *why;          /* the close reason, once the proxy closes */
    const char *upstream_end; /* "eof" | "error" once the upstream ended, else NULL */
};

static void feed(struct conn *c, struct wsr_dir *d, const void *p, size_t n)
{
    if (ws_frame_track_feed(&d->track, p, n) == 0 || d->logged)
        return;
    d->logged = true;
    log_info("proxy: conn %llu: %s: the WebSocket's %s frames cannot be followed (%s); the relay "
             "adds no close frame of its own", (unsigned long long)c->id, c->target.host,
             d->track.from_client ? "client" : "upstream", d->track.err);
}

int wsrelay_start(struct conn *c, const void *early, size_t n)
{
    wsrelay_free(c);
    struct wsrelay *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return -ENOMEM;
    ws_frame_track_init(&ws->up.track, true);
    ws_frame_track_init(&ws->down.track, false);
    c->ws = ws;
    feed(c, &ws->down, early, n);
    return 0;
}

void wsrelay_client_early(struct conn *c, const void *p, size_t n)
{
    if (c->ws)
        feed(c, &c->ws->up, p, n);
}

void wsrelay_free(struct conn *c)
{
    free(c->ws);
    c->ws = NULL;
}

/* Both directions are WebSocket framing the tracker follows: otherwise
 * the session is relayed untouched and gets no frame of ours either way. */
static bool followed(const struct wsrelay *ws)
{
    return !ws->up.track.err && !ws->down.track.err;
}

bool wsrelay_closing(const struct conn *c)
{
    return c->ws && c->ws->phase == WSR_CLOSING;
}

/* ---- closing ---- */

static int queue_close(struct wsr_dir *d, uint16_t code, const char *why, bool masked)
{
    int n = ws_frame_close(code, why, masked, d->ctl, sizeof(d->ctl));
    if (n < 0)
        return n;
    d->ctl_len = (size_t)n;
    d->sent = code;
    return 0;
}

/* Writes pre (bytes from before the tunnel) to a sink. Returns 1 when it
 * is empty, 0 if the sink would block, or the write error. */
static long write_pre(struct buf *pre, int fd, struct tls_conn *t)
{
    while (pre && pre->data && pre->len) {
        long n = side_buf_write(pre, fd, t);
        if (n == -EAGAIN)
            return 0;
        if (n < 0)
            return n;
    }
    return 1;
}

/* Writes what is left for one sink: pre, then b, then our close frame.
 * Returns 1 when all of it is written, 0 if the sink would block, or the
 * write error. */
static long flush_sink(struct wsr_dir *d, struct splice_dir *s, int fd, struct tls_conn *t,
                       struct buf *b, struct buf *pre)
{
    long r = write_pre(pre, fd, t);
    if (r <= 0)
        return r;
    for (;;) {
        if (d->ctl_len && buf_append(b, d->ctl, d->ctl_len) == 0)
            d->ctl_len = 0; /* behind every byte read before it */
        if (b->len == 0)
            return d->ctl_len ? 0 : 1;
        long n = side_buf_write(b, fd, t);
        if (n == -EAGAIN)
            return 0;
        if (n <= 0)
            return n < 0 ? n : -EIO;
        s->bytes += (uint64_t)n;
    }
}

/* Reads a side's input only to find its close reply (nothing is relayed
 * any more). Returns true once nothing more is awaited from it: the close
 * came, the side ended, or its frames cannot be followed. */
static bool await_reply(struct conn *c, struct wsr_dir *d, int fd, struct tls_conn *t)
{
    char tmp[WSRELAY_DISCARD];
    for (;;) {
        long n = side_recv(fd, t, tmp, sizeof(tmp));
        if (n == -EAGAIN)
            return false;
        if (n <= 0)
            return true;
        feed(c, d, tmp, (size_t)n);
        if (d->track.closes > d->closes_before || d->track.err)
            return true;
    }
}

static enum conn_step closing_pump(struct conn *c)
{
    struct wsrelay *ws = c->ws;
    if (c->ufd >= 0 && flush_sink(&ws->up, &c->up, c->ufd, c->utls, &c->cin, &c->uout) < 0) {
        ws->down.wait_reply = false; /* the upstream is gone: no reply will come */
        upstream_close(c);
    }
    long fc = flush_sink(&ws->down, &c->down, c->cfd, c->ctls, &c->cout, NULL);
    if (fc < 0)
        return conn_fail(c, ws->why); /* the client is gone: nothing left to say */
    if (ws->up.wait_reply && await_reply(c, &ws->up, c->cfd, c->ctls))
        ws->up.wait_reply = false;
    if (ws->down.wait_reply && c->ufd >= 0 && await_reply(c, &ws->down, c->ufd, c->utls)) {
        ws->down.wait_reply = false;
        upstream_close(c); /* its close came: the upstream's part is over */
    }
    bool up_done = c->ufd < 0 || (c->cin.len == 0 && ws->up.ctl_len == 0 &&
                                  !(c->uout.data && c->uout.len));
    if (ws->down.wait_reply && c->ufd < 0)
        ws->down.wait_reply = false;
    if (fc == 1 && up_done && !ws->up.wait_reply && !ws->down.wait_reply)
        return conn_fail(c, ws->why);
    return CONN_STEP_WAIT;
}

/* Enters the proxy's closing handshake (the close frames are queued). */
static enum conn_step start_closing(struct conn *c, const char *why)
{
    struct wsrelay *ws = c->ws;
    ws->phase = WSR_CLOSING;
    ws->why = why;
    ws->up.wait_reply = ws->down.sent != 0; /* the client answers the close we sent it */
    ws->down.wait_reply = ws->up.sent != 0;
    ws->up.closes_before = ws->up.track.closes;
    ws->down.closes_before = ws->down.track.closes;
    enum conn_step s = conn_timer_rearm(c, WSRELAY_CLOSE_WAIT_MS);
    return s == CONN_STEP_WAIT ? closing_pump(c) : s;
}

/* The upstream ended (err 0: EOF, else the read or write error) with no
 * close frame in either direction. */
static enum conn_step upstream_lost(struct conn *c, long err)
{
    struct wsrelay *ws = c->ws;
    bool boundary = ws_frame_track_at_boundary(&ws->down.track);
    log_info("proxy: conn %llu: %s: the WebSocket's upstream %s without a close frame; %s",
             (unsigned long long)c->id, c->target.host, err ? "failed" : "closed",
             boundary ? "closing the client with 1011"
                      : "it stopped inside a frame: resetting the client");
    upstream_close(c);
    if (!boundary) {
        c->reset_client = true;
        return conn_fail(c, PROXY_REASON_WS_UPSTREAM_LOST_MID_FRAME);
    }
    buf_consume(&c->cin, c->cin.len); /* nowhere to go */
    if (queue_close(&ws->down, WS_CLOSE_INTERNAL_ERROR, err ? WHY_UPSTREAM_ERROR : WHY_UPSTREAM_EOF,
                    false) < 0)
        return conn_fail(c, PROXY_REASON_WS_UPSTREAM_LOST);
    return start_closing(c, PROXY_REASON_WS_UPSTREAM_LOST);
}

/* The upstream ended or failed. Returns CONN_STEP_WAIT when this is an
 * ordinary end of the relay (after a close frame either way, after the
 * client's own EOF, or on a stream the tracker cannot follow): the
 * half-close goes on as in any tunnel. */
static enum conn_step upstream_gone(struct conn *c, long err)
{
    struct wsrelay *ws = c->ws;
    ws->upstream_end = err ? "error" : "eof";
    if (ws->down.track.closes || ws->up.track.closes || !followed(ws) || c->up.eof)
        return err ? conn_fail(c, PROXY_REASON_RELAY_ERROR) : CONN_STEP_WAIT;
    return upstream_lost(c, err);
}

enum conn_step wsrelay_idle(struct conn *c)
{
    struct wsrelay *ws = c->ws;
    struct wsr_dir *to_client = &ws->down, *to_upstream = &ws->up;
    if (!followed(ws))
        return conn_fail(c, PROXY_REASON_IDLE_TIMEOUT); /* as a plain relay */
    bool client_ok = ws_frame_track_at_boundary(&to_client->track) && !to_client->track.closes &&
                     !c->down.shut;
    bool upstream_ok = c->ufd >= 0 && ws_frame_track_at_boundary(&to_upstream->track) &&
                       !to_upstream->track.closes && !c->up.shut;
    if (!client_ok && !to_client->track.closes && !c->down.shut)
        c->reset_client = true; /* a frame to the client is cut: it must not look whole */
    if (client_ok && queue_close(to_client, WS_CLOSE_GOING_AWAY, WHY_IDLE, false) < 0)
        client_ok = false;
    if (upstream_ok && queue_close(to_upstream, WS_CLOSE_GOING_AWAY, WHY_IDLE, true) < 0)
        upstream_ok = false;
    log_info("proxy: conn %llu: %s: WebSocket idle for %llu ms; close 1001 to the client: %s, "
             "to the upstream: %s", (unsigned long long)c->id, c->target.host,
             (unsigned long long)c->idle_ms,
             client_ok ? "sent" : c->reset_client ? "no (mid-frame: reset)" : "no",
             upstream_ok ? "sent" : "no");
    if (!client_ok && !upstream_ok)
        return conn_fail(c, PROXY_REASON_IDLE_TIMEOUT);
    return start_closing(c, PROXY_REASON_IDLE_TIMEOUT);
}

enum conn_step wsrelay_close_timeout(struct conn *c)
{
    log_info("proxy: conn %llu: %s: the WebSocket closing handshake did not finish in %u ms; "
             "closing", (unsigned long long)c->id, c->target.host, WSRELAY_CLOSE_WAIT_MS);
    return conn_fail(c, c->ws->why);
}

/* ---- relaying ---- */

/* source → b → sink until neither moves, the tracker seeing every byte
 * read; pre (bytes from before the tunnel) goes first. The source's end
 * sets s->eof (and *rerr to its error, if any). Returns 0 or the sink's
 * write error. */
static long move(struct conn *c, struct wsr_dir *d, struct splice_dir *s, int src,
                 struct tls_conn *st, int dst, struct tls_conn *dt, struct buf *b,
                 struct buf *pre, long *rerr)
{
    long r = write_pre(pre, dst, dt);
    if (r <= 0)
        return r;
    for (bool progress = true; progress;) {
        progress = false;
        if (b->len) {
            long n = side_buf_write(b, dst, dt);
            if (n > 0) {
                s->bytes += (uint64_t)n;
                progress = true;
            } else if (n != -EAGAIN && n != 0) {
                return n;
            }
        }
        if (!s->eof) {
            long n = side_buf_read(b, src, st);
            if (n > 0) {
                feed(c, d, buf_tail(b) - n, (size_t)n);
                progress = true;
            } else if (n == 0 || (n != -EAGAIN && n != -ENOBUFS)) {
                s->eof = true;
                *rerr = n;
            }
        }
        if (progress)
            c->last_active_ms = loop_now_ms(c->w->loop);
    }
    return 0;
}

/* After a source's end: the sink's write side closes once its bytes are out. */
static void half_close(struct splice_dir *s, int fd, struct tls_conn *t, const struct buf *b,
                       const struct buf *pre)
{
    if (s->eof && !s->shut && b->len == 0 && !(pre && pre->data && pre->len)) {
        side_shutdown_write(fd, t);
        s->shut = true;
    }
}

static enum conn_step relay_pump(struct conn *c)
{
    struct wsrelay *ws = c->ws;
    long cerr = 0, uerr = 0;
    long wu = move(c, &ws->up, &c->up, c->cfd, c->ctls, c->ufd, c->utls, &c->cin, &c->uout, &cerr);
    /* then the other way, also when writing upstream failed: what the
     * upstream sent before it went (a close frame, say) is read first */
    long wc = move(c, &ws->down, &c->down, c->ufd, c->utls, c->cfd, c->ctls, &c->cout, NULL, &uerr);
    if (cerr || wc < 0)
        return conn_fail(c, PROXY_REASON_RELAY_ERROR);
    if (wu < 0 && !c->down.eof) { /* writing to the upstream failed: it is gone */
        c->down.eof = true;
        uerr = wu;
    }
    if (c->down.eof && !ws->upstream_end) {
        enum conn_step s = upstream_gone(c, uerr);
        if (s != CONN_STEP_WAIT || ws->phase != WSR_RELAY)
            return s;
    }
    half_close(&c->up, c->ufd, c->utls, &c->cin, &c->uout);
    half_close(&c->down, c->cfd, c->ctls, &c->cout, NULL);
    if (c->up.shut && c->down.shut)
        return conn_fail(c, c->up.eof ? PROXY_REASON_CLIENT_CLOSED : PROXY_REASON_UPSTREAM_CLOSED);
    return CONN_STEP_WAIT;
}

enum conn_step wsrelay_event(struct conn *c)
{
    return c->ws->phase == WSR_CLOSING ? closing_pump(c) : relay_pump(c);
}

/* ---- audit ---- */

static json_t *code_or_null(uint16_t code)
{
    return code ? json_integer(code) : json_null();
}

void wsrelay_audit(const struct conn *c, json_t *o)
{
    const struct wsrelay *ws = c->ws;
    json_t *w = json_object();
    json_object_set_new(w, "close_to_client", code_or_null(ws->down.sent));
    json_object_set_new(w, "close_to_upstream", code_or_null(ws->up.sent));
    json_object_set_new(w, "client_reset", json_boolean(c->reset_client));
    json_object_set_new(w, "upstream_end",
                        ws->upstream_end ? json_string(ws->upstream_end) : json_null());
    json_object_set_new(w, "frames_up", json_integer((json_int_t)ws->up.track.frames));
    json_object_set_new(w, "frames_down", json_integer((json_int_t)ws->down.track.frames));
    if (ws->up.track.err)
        json_object_set_new(w, "untracked_up", json_string(ws->up.track.err));
    if (ws->down.track.err)
        json_object_set_new(w, "untracked_down", json_string(ws->down.track.err));
    json_object_set_new(o, "websocket", w);
}
