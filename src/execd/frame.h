/* execd/frame: the PTY WebSocket protocol's frames (OpenSandbox /pty
 * compatible, see doc/execd.md).
 *
 * Client -> server: binary 0x00 + bytes (stdin); text JSON {"type": "stdin",
 * "data"}, {"type": "resize", "cols", "rows"}, {"type": "signal", "signal"},
 * {"type": "ping"}. Anything else is FRAME_INVALID with a reason, answered
 * with an INVALID_FRAME error frame by the caller.
 * Server -> client: binary 0x01/0x02 + bytes (stdout/stderr), 0x03 + 8-byte
 * big-endian offset + bytes (replay); JSON connected/exit/error/pong. */
#ifndef CORDON_EXECD_FRAME_H
#define CORDON_EXECD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_CH_STDIN 0x00
#define FRAME_CH_STDOUT 0x01
#define FRAME_CH_STDERR 0x02
#define FRAME_CH_REPLAY 0x03
#define FRAME_REPLAY_HEAD 9 /* channel byte + 8-byte offset */

enum frame_kind { FRAME_STDIN, FRAME_RESIZE, FRAME_SIGNAL, FRAME_PING, FRAME_INVALID };

struct frame_in {
    enum frame_kind kind;
    const uint8_t *data; /* FRAME_STDIN: bytes (into msg or into json) */
    size_t len;
    uint16_t cols, rows; /* FRAME_RESIZE, both >= 1 */
    int signo;           /* FRAME_SIGNAL */
    const char *error;   /* FRAME_INVALID: why (static string) */
    void *json;          /* owned parse tree; frame_release() */
};

/* Parses one client message. Never fails: malformed input gives
 * FRAME_INVALID with error set. out->data may point into msg, so msg must
 * outlive out. Call frame_release(out) afterwards. */
void frame_parse(int is_text, const uint8_t *msg, size_t len, struct frame_in *out);
void frame_release(struct frame_in *f);

/* Signal names accepted in signal frames ("SIGINT", "INT", or a number).
 * Returns the signal number or -EINVAL. */
int frame_signal_parse(const char *name);
/* "SIGINT" for SIGINT, NULL when not in the table. */
const char *frame_signal_name(int signo);

/* Writes the replay head (0x03 + big-endian offset) into head[9]. */
void frame_replay_head(uint8_t *head, uint64_t offset);

/* JSON text frames, returned as malloc'd NUL-terminated strings (NULL on
 * out-of-memory). */
char *frame_connected(const char *session_id, const char *mode, uint64_t output_offset,
                      uint64_t replay_offset, uint64_t lost_bytes, int running);
char *frame_exit(int exit_code, const char *signal);
char *frame_error(const char *code, const char *message);
char *frame_lost(uint64_t offset, uint64_t resume_offset);
char *frame_pong(void);

#endif
