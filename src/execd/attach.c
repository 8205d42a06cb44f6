/* execd/attach: a session's WebSocket client: replay, live output, stdin,
 * control frames, takeover, exit. */
#include "execd/attach.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "execd/api.h"
#include "execd/execd.h"
#include "execd/frame.h"
#include "execd/session.h"
#include "http/server.h"
#include "ws/conn.h"
#include "ws/handshake.h"
#include "core/banned.h"

#define ATTACH_CHUNK (32 * 1024)       /* payload per output frame (as OpenSandbox) */
#define ATTACH_HIGH_WATER (256 * 1024) /* queued output before waiting for the socket */
#define ATTACH_LOW_WATER (64 * 1024)
#define WS_CLOSE_TAKEN_OVER 4001

struct attach {
    struct session_client sc; /* first: session callbacks get &sc */
    struct execd *ed;
    struct attach *next, *prev; /* ed->attaches */
    struct session *s;        /* NULL once detached (taken over, or closing) */
    struct ws_conn *ws;
    int exit_sent;
};

struct attach_query {
    int pty;
    int has_since;
    uint64_t since;
    int takeover;
};

static void send_text(struct attach *a, char *json)
{
    if (!json)
        return;
    (void)ws_conn_send(a->ws, WS_TEXT, NULL, 0, json, strlen(json));
    free(json);
}

/* Moves output from the ring to the socket until the socket is full. */
static void attach_pump(struct attach *a)
{
    struct session *s = a->s;
    if (!s || ws_conn_closing(a->ws))
        return;
    while (ws_conn_queued(a->ws) < ATTACH_HIGH_WATER) {
        const uint8_t *p;
        size_t len;
        uint8_t ch;
        if (session_peek(s, &p, &len, &ch) == -ERANGE) {
            uint64_t from = s->cursor;
            uint64_t to = session_skip_lost(s);
            log_info("execd: session %s: client fell behind; %llu bytes lost", s->id,
                     (unsigned long long)(to - from));
            send_text(a, frame_lost(from, to));
            continue;
        }
        if (len == 0)
            break;
        if (len > ATTACH_CHUNK)
            len = ATTACH_CHUNK;
        uint8_t head = ch == FRAME_CH_STDERR ? FRAME_CH_STDERR : FRAME_CH_STDOUT;
        if (ws_conn_send(a->ws, WS_BINARY, &head, 1, p, len) < 0)
            return;
        session_consume(s, len);
    }
    if (s->state == SESSION_EXITED && s->cursor == ring_total(&s->child.ring) && !a->exit_sent) {
        int code;
        const char *sig;
        session_exit_info(s, &code, &sig);
        a->exit_sent = 1;
        send_text(a, frame_exit(code, sig));
        ws_conn_close(a->ws, 1000, "process exited");
    }
}

static void on_output(struct session_client *sc) { attach_pump((struct attach *)sc); }

static void on_stdin_room(struct session_client *sc)
{
    struct attach *a = (struct attach *)sc;
    ws_conn_pause_read(a->ws, 0);
}

static void ws_drain(struct ws_conn *ws, void *data)
{
    (void)ws;
    attach_pump(data);
}

static void handle_frame(struct attach *a, const struct frame_in *f)
{
    struct session *s = a->s;
    int r;
    switch (f->kind) {
    case FRAME_STDIN:
        r = session_stdin(s, f->data, f->len);
        if (r == 1)
            ws_conn_pause_read(a->ws, 1);
        else if (r < 0)
            send_text(a, frame_error("STDIN_WRITE_FAILED", "the shell is not running"));
        break;
    case FRAME_RESIZE:
        r = session_resize(s, f->cols, f->rows);
        if (r < 0 && r != -ENOTTY && r != -EPIPE)
            send_text(a, frame_error("RUNTIME_ERROR", "resize failed"));
        break;
    case FRAME_SIGNAL:
        r = session_signal(s, f->signo);
        if (r < 0 && r != -ESRCH)
            send_text(a, frame_error("RUNTIME_ERROR", "could not deliver the signal"));
        break;
    case FRAME_PING:
        send_text(a, frame_pong());
        break;
    case FRAME_INVALID:
        send_text(a, frame_error("INVALID_FRAME", f->error));
        break;
    }
}

static void ws_msg(struct ws_conn *ws, enum ws_opcode op, const uint8_t *msg, size_t len,
                   void *data)
{
    struct attach *a = data;
    struct frame_in f;
    (void)ws;
    if (!a->s)
        return;
    frame_parse(op == WS_TEXT, msg, len, &f);
    handle_frame(a, &f);
    frame_release(&f);
}

static void ws_closed(struct ws_conn *ws, uint16_t code, void *data)
{
    struct attach *a = data;
    (void)ws;
    if (a->s) {
        log_info("execd: session %s: client left (close code %u)", a->s->id, code);
        session_detach(a->s, &a->sc);
    }
    if (a->prev)
        a->prev->next = a->next;
    else
        a->ed->attaches = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->ed->nattaches--;
    free(a);
}

static const struct ws_conn_cbs attach_ws_cbs = {
    .on_msg = ws_msg, .on_drain = ws_drain, .on_close = ws_closed};

/* The current holder gives way: close 4001, no more output. */
static void evict(struct session *s)
{
    struct attach *old = (struct attach *)s->client;
    log_info("execd: session %s: taken over by a new client; the previous one gets its output "
             "up to offset %llu, then close 4001",
             s->id, (unsigned long long)s->cursor);
    session_detach(s, &old->sc);
    old->s = NULL;
    ws_conn_close(old->ws, WS_CLOSE_TAKEN_OVER, "TAKEN_OVER");
}

static int parse_query(const struct http_req *req, enum attach_flavor flavor,
                       struct attach_query *q, const char **why)
{
    char v[32];
    int n;
    q->pty = flavor == ATTACH_PTY_ROUTE;
    n = http_query_get(req->query, req->query_len, "pty", v, sizeof(v));
    if (n >= 0)
        q->pty = flavor == ATTACH_PTY_ROUTE ? strcmp(v, "0") != 0 : strcmp(v, "1") == 0;
    q->has_since = flavor == ATTACH_PTY_ROUTE;
    q->since = 0;
    n = http_query_get(req->query, req->query_len, "since", v, sizeof(v));
    if (n >= 0) {
        char *end;
        q->has_since = 1;
        if (strcmp(v, "tail") == 0) {
            q->has_since = 0;
        } else if (v[0] == '-' && v[1] >= '0' && v[1] <= '9') {
            q->since = 0; /* negative: the oldest byte kept */
        } else {
            errno = 0;
            unsigned long long x = strtoull(v, &end, 10);
            if (v[0] < '0' || v[0] > '9' || *end || errno) {
                *why = "since must be a byte offset (a non-negative integer) or 'tail'";
                return -EINVAL;
            }
            q->since = x;
        }
    } else if (n != -ENOENT) {
        *why = "since must be a byte offset (a non-negative integer) or 'tail'";
        return -EINVAL;
    }
    n = http_query_get(req->query, req->query_len, "takeover", v, sizeof(v));
    q->takeover = n >= 0 && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
    return 0;
}

/* Sends the replay snapshot and the connected frame, then attaches. */
static void attach_start(struct attach *a, const struct attach_query *q)
{
    struct session *s = a->s;
    uint64_t total = ring_total(&s->child.ring), oldest = ring_oldest(&s->child.ring);
    uint64_t start = q->has_since ? q->since : total, lost = 0;
    if (start > total)
        start = total;
    if (start < oldest) {
        lost = oldest - start;
        start = oldest;
    }
    size_t n = (size_t)(total - start);
    if (n > 0) {
        uint8_t *buf = malloc(FRAME_REPLAY_HEAD + n);
        if (buf) {
            frame_replay_head(buf, start);
            if (ring_copy(&s->child.ring, start, buf + FRAME_REPLAY_HEAD, n) == (ssize_t)n)
                (void)ws_conn_send(a->ws, WS_BINARY, NULL, 0, buf, FRAME_REPLAY_HEAD + n);
            free(buf);
        }
    }
    if (lost)
        log_info("execd: session %s: replay from %llu asked, %llu bytes already gone", s->id,
                 (unsigned long long)q->since, (unsigned long long)lost);
    send_text(a, frame_connected(s->id, session_mode_name(s->mode), total, start, lost,
                                 s->state == SESSION_RUNNING));
    if (session_attach(s, &a->sc, total) < 0) { /* cannot happen: checked before */
        a->s = NULL;
        ws_conn_close(a->ws, 1011, "session busy");
        return;
    }
    attach_pump(a); /* an exited session: exit + close now */
}

static int upgrade(struct execd *ed, struct http_conn *c, struct session *s, const char *accept,
                   const struct attach_query *q)
{
    char pre[256], label[128];
    uint8_t left[HTTP_READ_BUF];
    size_t llen;
    int fd;
    int plen = ws_handshake_response(accept, pre, sizeof(pre));
    struct attach *a = calloc(1, sizeof(*a));
    if (plen < 0 || !a) {
        free(a);
        return -ENOMEM;
    }
    int r = http_upgrade_take(c, &fd, left, sizeof(left), &llen);
    if (r < 0) {
        free(a);
        return r; /* c is still ours to answer */
    }
    snprintf(label, sizeof(label), "session %s", s->id);
    struct ws_conn_cfg cfg = {.max_msg = ed->cfg.max_frame,
                              .ping_ms = ed->cfg.ping_ms,
                              .low_water = ATTACH_LOW_WATER,
                              .label = label};
    a->ed = ed;
    a->s = s;
    a->sc.on_output = on_output;
    a->sc.on_stdin_room = on_stdin_room;
    r = ws_conn_new(ed->loop, fd, pre, (size_t)plen, left, llen, &cfg, &attach_ws_cbs, a, &a->ws);
    if (r < 0) {
        log_warn("execd: session %s: cannot set up the WebSocket: %s", s->id, strerror(-r));
        free(a);
        return 0; /* the socket is closed; nothing left to answer */
    }
    a->next = ed->attaches;
    if (ed->attaches)
        ed->attaches->prev = a;
    ed->attaches = a;
    ed->nattaches++;
    if (s->client && q->takeover)
        evict(s);
    attach_start(a, q);
    return 0;
}

void attach_handle(struct execd *ed, struct http_conn *c, const struct http_req *req,
                   struct session *s, enum attach_flavor flavor)
{
    struct attach_query q;
    const char *why = NULL;
    char accept[WS_ACCEPT_LEN + 1];
    if (parse_query(req, flavor, &q, &why) < 0) {
        api_error(c, 400, "INVALID_QUERY", "%s", why);
        return;
    }
    int hs = ws_handshake_check(req, accept, &why);
    if (s->client && !(q.takeover && hs == 0)) {
        api_error(c, 409, "ALREADY_CONNECTED",
                  "session %s already has a client; reconnect with takeover=1 to replace it",
                  s->id);
        return;
    }
    if (hs == -EPROTONOSUPPORT) {
        api_error_hdr(c, 426, "Sec-WebSocket-Version: 13\r\n", "UPGRADE_REQUIRED", "%s", why);
        return;
    }
    if (hs < 0) {
        api_error(c, 400, "NOT_WEBSOCKET", "%s", why);
        return;
    }
    if (ed->nattaches >= ed->cfg.max_conns) {
        log_warn("execd: WebSocket limit %zu reached", ed->cfg.max_conns);
        api_error(c, 503, "TOO_MANY_CONNECTIONS",
                  "%zu WebSocket clients are connected (--max-conns)", ed->cfg.max_conns);
        return;
    }
    if (s->state == SESSION_CREATED) {
        int r = session_start(s, q.pty ? SESSION_MODE_PTY : SESSION_MODE_PIPE);
        if (r < 0) {
            api_error(c, 500, "START_FAILED", "cannot start the shell: %s", strerror(-r));
            return;
        }
    }
    int r = upgrade(ed, c, s, accept, &q);
    if (r < 0)
        api_error(c, 500, "RUNTIME_ERROR", "upgrade failed: %s", strerror(-r));
}

void attach_abort_all(struct execd *ed)
{
    while (ed->attaches)
        ws_conn_abort(ed->attaches->ws); /* on_close unlinks it */
}
