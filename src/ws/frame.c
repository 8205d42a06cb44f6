/* ws/frame: see frame.h. */
#include "ws/frame.h"

#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <wslay/wslay.h>
#include <openssl/rand.h>

#include "core/banned.h"

/* Why tracking stopped: constants, logged as they are. */
static const char ERR_UNMASKED[] = "a client frame is not masked (RFC 6455 §5.1)";
static const char ERR_MASKED[] = "a server frame is masked (RFC 6455 §5.1)";
static const char ERR_OPCODE[] = "reserved opcode (RFC 6455 §5.2)";
static const char ERR_CONTROL[] = "a control frame is fragmented or longer than 125 bytes (RFC 6455 §5.5)";
static const char ERR_LENGTH[] = "payload length not in its minimal form or over 2^63 (RFC 6455 §5.2)";
static const char ERR_CONT[] = "a continuation frame outside a fragmented message (RFC 6455 §5.4)";
static const char ERR_INTERLEAVED[] = "a new data message inside a fragmented one (RFC 6455 §5.4)";

void ws_frame_track_init(struct ws_frame_track *t, bool from_client)
{
    memset(t, 0, sizeof(*t));
    t->from_client = from_client;
    t->hneed = 2;
}

static int fail(struct ws_frame_track *t, const char *why)
{
    t->err = why;
    return -EPROTO;
}

/* The first two bytes are in: the header's length and the checks that
 * need only them. */
static int first_two(struct ws_frame_track *t)
{
    uint8_t b0 = t->hdr[0], b1 = t->hdr[1], len7 = b1 & 0x7f;
    bool masked = (b1 & 0x80) != 0;
    t->fin = (b0 & 0x80) != 0;
    t->opcode = b0 & 0x0f;
    if (masked != t->from_client)
        return fail(t, t->from_client ? ERR_UNMASKED : ERR_MASKED);
    switch (t->opcode) {
    case WS_FRAME_CONT:
        if (!t->in_msg)
            return fail(t, ERR_CONT);
        break;
    case WS_FRAME_TEXT:
    case WS_FRAME_BINARY:
        if (t->in_msg)
            return fail(t, ERR_INTERLEAVED);
        break;
    case WS_FRAME_CLOSE:
    case WS_FRAME_PING:
    case WS_FRAME_PONG:
        if (!t->fin || len7 > 125)
            return fail(t, ERR_CONTROL);
        break;
    default:
        return fail(t, ERR_OPCODE);
    }
    t->hneed = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (masked ? 4 : 0));
    return 0;
}

/* The whole header is in: the payload length (§5.2: 7 bits, or 16 or 64
 * in network order, each only when the shorter form cannot hold it). */
static int header_done(struct ws_frame_track *t)
{
    uint8_t len7 = t->hdr[1] & 0x7f;
    uint64_t len = len7;
    if (len7 == 126) {
        len = (uint64_t)t->hdr[2] << 8 | t->hdr[3];
        if (len < 126)
            return fail(t, ERR_LENGTH);
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | t->hdr[2 + i];
        if (len <= 0xffff || (len >> 63))
            return fail(t, ERR_LENGTH);
    }
    if (t->opcode == WS_FRAME_TEXT || t->opcode == WS_FRAME_BINARY)
        t->in_msg = !t->fin;
    else if (t->opcode == WS_FRAME_CONT && t->fin)
        t->in_msg = false;
    t->left = len;
    return 0;
}

static void frame_done(struct ws_frame_track *t)
{
    t->frames++;
    if (t->opcode == WS_FRAME_CLOSE)
        t->closes++;
    t->hlen = 0;
    t->hneed = 2;
}

int ws_frame_track_feed(struct ws_frame_track *t, const void *p, size_t n)
{
    const uint8_t *s = p;
    while (n > 0 && !t->err) {
        if (t->left > 0) { /* payload: counted, not kept */
            size_t k = t->left < n ? (size_t)t->left : n;
            t->left -= k;
            s += k;
            n -= k;
            if (t->left == 0)
                frame_done(t);
            continue;
        }
        size_t k = (size_t)(t->hneed - t->hlen);
        if (k > n)
            k = n;
        memcpy(t->hdr + t->hlen, s, k);
        t->hlen = (uint8_t)(t->hlen + k);
        s += k;
        n -= k;
        if (t->hlen == 2 && t->hneed == 2 && first_two(t) < 0)
            break;
        if (t->hlen < t->hneed)
            continue;
        if (header_done(t) < 0)
            break;
        if (t->left == 0)
            frame_done(t); /* no payload */
    }
    return t->err ? -EPROTO : 0;
}

bool ws_frame_track_at_boundary(const struct ws_frame_track *t)
{
    return !t->err && t->hlen == 0 && t->left == 0;
}

/* ---- a close frame of our own, framed by wslay ---- */

struct out {
    uint8_t *p;
    size_t cap, len;
};

static ssize_t out_send(const uint8_t *data, size_t len, int flags, void *user)
{
    struct out *o = user;
    (void)flags;
    if (len > o->cap - o->len)
        return -1;
    memcpy(o->p + o->len, data, len);
    o->len += len;
    return (ssize_t)len;
}

static ssize_t out_recv(uint8_t *buf, size_t len, int flags, void *user)
{
    (void)buf, (void)len, (void)flags, (void)user;
    return -1; /* never reads */
}

static int out_mask(uint8_t *buf, size_t len, void *user)
{
    (void)user;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

int ws_frame_close(uint16_t code, const char *reason, bool masked, uint8_t *out, size_t cap)
{
    size_t rlen = reason ? strlen(reason) : 0;
    if (code < 1000 || code > 4999 || rlen > WS_FRAME_CLOSE_REASON_MAX)
        return -EINVAL;
    uint8_t payload[2 + WS_FRAME_CLOSE_REASON_MAX];
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    if (rlen)
        memcpy(payload + 2, reason, rlen);
    if (cap < 2 + (masked ? 4 : 0) + 2 + rlen)
        return -ENOSPC;
    struct out o = {out, cap, 0};
    struct wslay_frame_callbacks cb = {out_send, out_recv, out_mask};
    wslay_frame_context_ptr ctx;
    if (wslay_frame_context_init(&ctx, &cb, &o) != 0)
        return -ENOMEM;
    struct wslay_frame_iocb io = {
        .fin = 1,
        .rsv = 0,
        .opcode = WSLAY_CONNECTION_CLOSE,
        .payload_length = 2 + rlen,
        .mask = masked ? 1 : 0,
        .data = payload,
        .data_length = 2 + rlen,
    };
    ssize_t r = wslay_frame_send(ctx, &io);
    wslay_frame_context_free(ctx);
    if (r != (ssize_t)(2 + rlen))
        return r == WSLAY_ERR_NOMEM ? -ENOMEM : -EIO; /* -EIO: no random mask key */
    return (int)o.len;
}
