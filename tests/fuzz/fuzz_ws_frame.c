/* libFuzzer target: the WebSocket frame tracker (ws/frame), which follows
 * peer bytes relayed after a 101, and the close frames the proxy adds.
 * Input: byte 0 picks the direction (bit 0: client frames, masked) and a
 * seed for how the rest is cut into pieces; the rest is the stream.
 * Checks the contracts, not just "no crash":
 *  - the tracker's state does not depend on how the stream is cut: fed
 *    whole, byte by byte, or in pieces, it ends the same (frames, closes,
 *    error, header and payload position, message state);
 *  - an error is final: once set it stays, and there is never a boundary;
 *  - closes <= frames; a header in progress never exceeds its need;
 *  - a close frame built from the input's first bytes (code, reason) is
 *    read back by a fresh tracker of the right direction as one whole
 *    close frame, and appended at a boundary it leaves the stream in step.
 * The stream is copied to an exact-size heap buffer so ASan catches any
 * over-read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const struct ws_frame_track *a, const struct ws_frame_track *b)
{
    if (a->frames != b->frames || a->closes != b->closes || (a->err == NULL) != (b->err == NULL) ||
        a->err != b->err || a->left != b->left || a->in_msg != b->in_msg)
        abort();
    if (!a->err && (a->hlen != b->hlen || memcmp(a->hdr, b->hdr, a->hlen) != 0))
        abort();
}

static void sane(const struct ws_frame_track *t)
{
    if (t->closes > t->frames || t->hlen > t->hneed || t->hneed > WS_FRAME_HEADER_MAX)
        abort();
    if (t->err && ws_frame_track_at_boundary(t))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool from_client = data[0] & 1;
    unsigned seed = data[0] >> 1;
    size_t n = size - 1;
    uint8_t *s = malloc(n ? n : 1);
    if (!s)
        return 0;
    memcpy(s, data + 1, n);

    struct ws_frame_track whole, bytes, pieces;
    ws_frame_track_init(&whole, from_client);
    ws_frame_track_init(&bytes, from_client);
    ws_frame_track_init(&pieces, from_client);
    int rw = ws_frame_track_feed(&whole, s, n);
    sane(&whole);
    const char *err = NULL;
    for (size_t i = 0; i < n; i++) {
        int r = ws_frame_track_feed(&bytes, s + i, 1);
        sane(&bytes);
        if (err && (!bytes.err || r == 0)) /* an error is final */
            abort();
        err = bytes.err;
    }
    for (size_t i = 0; i < n;) {
        size_t k = 1 + (seed * 31 + i * 7) % 97;
        if (k > n - i)
            k = n - i;
        (void)ws_frame_track_feed(&pieces, s + i, k);
        sane(&pieces);
        i += k;
    }
    same(&whole, &bytes);
    same(&whole, &pieces);
    if ((rw != 0) != (whole.err != NULL))
        abort();

    /* a close frame of ours, from the input's first bytes */
    uint16_t code = (uint16_t)(1000 + (n >= 2 ? ((s[0] << 8 | s[1]) % 4000) : 0));
    char reason[WS_FRAME_CLOSE_REASON_MAX + 1];
    size_t rl = n > 2 ? (n - 2 < WS_FRAME_CLOSE_REASON_MAX ? n - 2 : WS_FRAME_CLOSE_REASON_MAX) : 0;
    for (size_t i = 0; i < rl; i++)
        reason[i] = (char)('a' + s[2 + i] % 26);
    reason[rl] = '\0';
    uint8_t f[WS_FRAME_CLOSE_MAX];
    int fl = ws_frame_close(code, reason, from_client, f, sizeof(f));
    if (fl < 0)
        abort();
    struct ws_frame_track t;
    ws_frame_track_init(&t, from_client);
    if (ws_frame_track_feed(&t, f, (size_t)fl) != 0 || t.frames != 1 || t.closes != 1 ||
        !ws_frame_track_at_boundary(&t))
        abort();
    if (ws_frame_track_at_boundary(&whole)) {
        uint64_t before = whole.frames;
        if (ws_frame_track_feed(&whole, f, (size_t)fl) != 0 || whole.frames != before + 1 ||
            !ws_frame_track_at_boundary(&whole))
            abort();
    }
    free(s);
    return 0;
}
