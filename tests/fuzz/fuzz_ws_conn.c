/* libFuzzer: a server-side WebSocket connection (ws/conn over wslay) fed
 * arbitrary client bytes through a socketpair: frame parsing, message
 * assembly and the max_msg (1009) check, pings, the close that waits behind
 * queued output. The first input byte picks max_msg and whether messages
 * are echoed back (output queued when the close comes); the rest is what the
 * client sends before it shuts down its side.
 * Checks: every delivered message fits max_msg; on_close fires exactly once,
 * and within 10 s of the client's EOF (a hang aborts). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/loop.h"
#include "ws/conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
    struct loop *loop;
    size_t max_msg;
    int echo;
    int closed;
    int msgs;
};

static void fz_msg(struct ws_conn *ws, enum ws_opcode op, const uint8_t *msg, size_t len,
                   void *data)
{
    struct fz *f = data;
    if (len > f->max_msg || (len && !msg))
        abort();
    f->msgs++;
    if (f->echo)
        (void)ws_conn_send(ws, op, NULL, 0, msg, len);
    if (f->echo && f->msgs == 3)
        ws_conn_close(ws, 1000, "enough");
}

static void fz_close(struct ws_conn *ws, uint16_t code, void *data)
{
    struct fz *f = data;
    (void)ws;
    (void)code;
    if (f->closed++)
        abort();
    loop_stop(f->loop);
}

static void fz_timeout(struct loop *l, struct loop_timer *t)
{
    (void)l;
    (void)t;
    abort(); /* the connection outlived its peer's EOF: a hang */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct ws_conn_cbs cbs = {.on_msg = fz_msg, .on_close = fz_close};
    if (size < 1)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    struct fz f = {.loop = loop_new(16), .max_msg = 16u << (data[0] & 7), .echo = data[0] >> 7};
    if (!f.loop) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    /* the client's bytes, then its half-close (the socketpair holds them) */
    size_t off = 1;
    while (off < size) {
        ssize_t n = write(sv[1], data + off, size - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(sv[1], SHUT_WR);
    struct ws_conn_cfg cfg = {.max_msg = f.max_msg, .ping_ms = 0, .low_water = 1024,
                              .label = "fuzz"};
    struct ws_conn *ws;
    struct loop_timer guard = {.cb = fz_timeout};
    static const char none[1];
    if (ws_conn_new(f.loop, sv[0], none, 0, none, 0, &cfg, &cbs, &f, &ws) == 0) {
        (void)loop_timer_start(f.loop, &guard, 10000);
        (void)loop_run(f.loop);
        if (!f.closed) {
            ws_conn_abort(ws);
            loop_run_deferred(f.loop);
            if (!f.closed)
                abort();
        }
        loop_timer_stop(f.loop, &guard);
    }
    close(sv[1]);
    loop_free(f.loop);
    return 0;
}
