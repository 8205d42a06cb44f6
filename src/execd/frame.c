/* execd/frame: client frame parsing and server JSON frames. */
#include "execd/frame.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parse.h"
#include "core/banned.h"

static const struct {
    const char *name;
    int signo;
} signals[] = {
    {"SIGHUP", SIGHUP},   {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT}, {"SIGKILL", SIGKILL},
    {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGTERM", SIGTERM}, {"SIGCONT", SIGCONT},
    {"SIGSTOP", SIGSTOP}, {"SIGTSTP", SIGTSTP}, {"SIGWINCH", SIGWINCH}, {"SIGALRM", SIGALRM},
    {"SIGPIPE", SIGPIPE}, {"SIGABRT", SIGABRT}, {"SIGSEGV", SIGSEGV}, {"SIGBUS", SIGBUS},
    {"SIGFPE", SIGFPE},   {"SIGILL", SIGILL},   {"SIGTRAP", SIGTRAP}, {"SIGXCPU", SIGXCPU},
};

int frame_signal_parse(const char *name)
{
    uint32_t n;
    if (parse_u32_str(name, 1, 64, &n) == 0)
        return (int)n;
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
        if (strcmp(name, signals[i].name) == 0 || strcmp(name, signals[i].name + 3) == 0)
            return signals[i].signo;
    }
    return -EINVAL;
}

const char *frame_signal_name(int signo)
{
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
        if (signals[i].signo == signo)
            return signals[i].name;
    }
    return NULL;
}

static void invalid(struct frame_in *f, const char *why)
{
    f->kind = FRAME_INVALID;
    f->error = why;
}

/* Reads an integer member in [1, 65535]. */
static int get_dim(json_t *o, const char *key, uint16_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return -EINVAL;
    json_int_t n = json_integer_value(v);
    if (n < 1 || n > 65535)
        return -ERANGE;
    *out = (uint16_t)n;
    return 0;
}

static void parse_text(const uint8_t *msg, size_t len, struct frame_in *f)
{
    json_error_t err;
    json_t *root = json_loadb((const char *)msg, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!root) {
        invalid(f, "text frame is not valid JSON");
        return;
    }
    f->json = root;
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!json_is_object(root) || !type) {
        invalid(f, "text frame must be a JSON object with a string \"type\"");
        return;
    }
    if (strcmp(type, "stdin") == 0) {
        json_t *d = json_object_get(root, "data");
        if (!json_is_string(d)) {
            invalid(f, "stdin frame needs a string \"data\"");
            return;
        }
        f->kind = FRAME_STDIN;
        f->data = (const uint8_t *)json_string_value(d);
        f->len = json_string_length(d);
    } else if (strcmp(type, "resize") == 0) {
        if (get_dim(root, "cols", &f->cols) < 0 || get_dim(root, "rows", &f->rows) < 0) {
            invalid(f, "resize frame needs integer \"cols\" and \"rows\" in 1..65535");
            return;
        }
        f->kind = FRAME_RESIZE;
    } else if (strcmp(type, "signal") == 0) {
        json_t *s = json_object_get(root, "signal");
        int signo = -EINVAL;
        if (json_is_string(s))
            signo = frame_signal_parse(json_string_value(s));
        else if (json_is_integer(s) && json_integer_value(s) >= 1 && json_integer_value(s) <= 64)
            signo = (int)json_integer_value(s);
        if (signo < 0) {
            invalid(f, "signal frame needs a known \"signal\" such as \"SIGINT\"");
            return;
        }
        f->kind = FRAME_SIGNAL;
        f->signo = signo;
    } else if (strcmp(type, "ping") == 0) {
        f->kind = FRAME_PING;
    } else {
        invalid(f, "unknown frame type");
    }
}

void frame_parse(int is_text, const uint8_t *msg, size_t len, struct frame_in *out)
{
    memset(out, 0, sizeof(*out));
    if (is_text) {
        parse_text(msg, len, out);
        return;
    }
    if (len == 0 || msg[0] != FRAME_CH_STDIN) {
        invalid(out, "binary frames from the client must start with 0x00 (stdin)");
        return;
    }
    out->kind = FRAME_STDIN;
    out->data = msg + 1;
    out->len = len - 1;
}

void frame_release(struct frame_in *f)
{
    if (f->json)
        json_decref(f->json);
    f->json = NULL;
}

void frame_replay_head(uint8_t *head, uint64_t offset)
{
    head[0] = FRAME_CH_REPLAY;
    for (int i = 0; i < 8; i++)
        head[1 + i] = (uint8_t)(offset >> (56 - 8 * i));
}

static char *dump(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

char *frame_connected(const char *session_id, const char *mode, uint64_t output_offset,
                      uint64_t replay_offset, uint64_t lost_bytes, int running)
{
    return dump(json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:b}", "type", "connected",
                          "session_id", session_id, "mode", mode, "output_offset",
                          (json_int_t)output_offset, "replay_offset", (json_int_t)replay_offset,
                          "lost_bytes", (json_int_t)lost_bytes, "running", running));
}

char *frame_exit(int exit_code, const char *signal)
{
    json_t *o = json_pack("{s:s, s:i}", "type", "exit", "exit_code", exit_code);
    if (o && signal)
        json_object_set_new(o, "signal", json_string(signal));
    return dump(o);
}

char *frame_error(const char *code, const char *message)
{
    return dump(json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "error", message));
}

char *frame_lost(uint64_t offset, uint64_t resume_offset)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "client fell behind the replay buffer: %llu bytes lost",
             (unsigned long long)(resume_offset - offset));
    return dump(json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "type", "error", "code",
                          "OUTPUT_LOST", "error", msg, "offset", (json_int_t)offset,
                          "resume_offset", (json_int_t)resume_offset, "lost_bytes",
                          (json_int_t)(resume_offset - offset)));
}

char *frame_pong(void) { return dump(json_pack("{s:s}", "type", "pong")); }
