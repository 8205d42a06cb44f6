/* ws/frame: WebSocket frames seen from the middle of a connection.
 *
 * A relay that passes a WebSocket's bytes through (the proxy after a 101)
 * needs to know where frames begin and end to add a frame of its own
 * without cutting one in two: ws_frame_track follows one direction's byte
 * stream incrementally, reading each frame header (RFC 6455 §5.2) and
 * counting the payload past without keeping or unmasking it. It never
 * buffers more than one header (at most 14 bytes) and takes the stream in
 * pieces of any size, so a header split across reads is fine.
 *
 * The tracker checks what it must trust to stay in step, and what makes an
 * added control frame legal between two frames: the mask bit for the
 * direction (§5.1), known opcodes, control frames final and at most 125
 * bytes (§5.5), the minimal length encoding with the top bit clear (§5.2),
 * and the order of fragments (§5.4). On a violation it stops (err says
 * what) and reports no boundary from then on: a stream it cannot follow
 * gets no frame of ours. RSV bits are left to the extensions (§5.8).
 *
 * ws_frame_close() builds a close frame (§5.5.1) through wslay's frame
 * layer, masked with a fresh random key when it goes to a server. */
#ifndef CORDON_WS_FRAME_H
#define CORDON_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_FRAME_HEADER_MAX 14 /* 2 + 8 (64-bit length) + 4 (mask key) */
#define WS_FRAME_CLOSE_REASON_MAX 123
#define WS_FRAME_CLOSE_MAX (WS_FRAME_HEADER_MAX + 2 + WS_FRAME_CLOSE_REASON_MAX)

enum ws_frame_op {
    WS_FRAME_CONT = 0x0,
    WS_FRAME_TEXT = 0x1,
    WS_FRAME_BINARY = 0x2,
    WS_FRAME_CLOSE = 0x8,
    WS_FRAME_PING = 0x9,
    WS_FRAME_PONG = 0xa,
};

struct ws_frame_track {
    bool from_client;    /* frames must be masked (client → server), else unmasked */
    uint8_t hdr[WS_FRAME_HEADER_MAX];
    uint8_t hlen;        /* header bytes of the current frame seen so far */
    uint8_t hneed;       /* its full length, once the first two bytes are in */
    uint64_t left;       /* payload bytes of the current frame still to pass */
    uint8_t opcode;      /* of the current (or last) frame */
    bool fin;
    bool in_msg;         /* a fragmented data message is open (§5.4) */
    uint64_t frames;     /* frames passed whole */
    uint64_t closes;     /* close frames passed whole */
    const char *err;     /* why tracking stopped (a constant), or NULL */
};

void ws_frame_track_init(struct ws_frame_track *t, bool from_client);

/* Follows n more bytes of the stream. Returns 0, or -EPROTO when they
 * break the framing (t->err says how; the rest is ignored, now and later). */
int ws_frame_track_feed(struct ws_frame_track *t, const void *p, size_t n)
    __attribute__((warn_unused_result));

/* True when the stream is in step and every byte fed so far belongs to a
 * whole frame: a frame of our own may follow. (A control frame may come
 * between the fragments of a data message, §5.4; a data frame may not, so
 * a caller adding one checks in_msg too.) */
bool ws_frame_track_at_boundary(const struct ws_frame_track *t);

/* Writes a close frame with code (1000-4999) and reason (UTF-8, at most
 * WS_FRAME_CLOSE_REASON_MAX bytes) into out: masked with a random key
 * when masked (a client's frame), else unmasked. Returns its length, or
 * -EINVAL (code, reason), -ENOSPC (cap), -EIO (no random bytes). */
int ws_frame_close(uint16_t code, const char *reason, bool masked, uint8_t *out, size_t cap)
    __attribute__((warn_unused_result));

#endif
