/* execd/command: POST /command and friends. */
#include "execd/command.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "execd/api.h"
#include "execd/execd.h"
#include "execd/frame.h"
#include "execd/child.h"
#include "execd/proc.h"
#include "execd/ring.h"
#include "execd/sse.h"
#include "http/server.h"
#include "core/banned.h"

#define CMD_EVENT_CHUNK (4 * 1024)  /* ring bytes turned into events per step */
#define CMD_LINE_MAX (64 * 1024)    /* a longer line is sent in pieces of this size */
#define CMD_PARTIAL_MS 100          /* an unfinished line waits this long, then goes out */

enum command_state { CMD_RUNNING, CMD_EXITING, CMD_DONE };

static const char *const cmd_state_names[] = {"RUNNING", "EXITING", "DONE"};

struct command {
    struct execd *ed;
    struct command *next, *prev;
    char id[33];
    char *cmdline;
    int background;
    enum command_state state;
    struct child child; /* the process, its output ring (execd/child) */
    char label[48];     /* "command <id>" for the engine's logs */
    struct loop_timer timeout, kill, ping;
    uint64_t timeout_ms;
    int timed_out, interrupted, kill_sent;
    uint64_t started_at, finished_at; /* wall ms */
    uint64_t start_mono, end_mono;
    /* foreground event stream: one stdout/stderr event per line */
    struct http_conn *sse;
    uint64_t sse_cursor;
    struct cmd_line {
        uint8_t *buf; /* the current line's bytes, no terminator */
        size_t len;
        int after_cr;      /* the last byte was CR: a following LF ends nothing */
        int partial_sent;  /* part of this line already went out (delay or size) */
    } line[2];             /* [0] stdout, [1] stderr */
    struct loop_timer partial;
    char init_text[64];    /* init's text: the command id, or a bash session's id */
    command_done_fn on_done; /* a bash session's run: told the status when reaped */
    void *done_data;
    struct loop_deferred defer;
};

static void cmd_set_state(struct command *c, enum command_state st)
{
    if (c->state == st)
        return;
    log_debug("execd: command %s: %s -> %s", c->id, cmd_state_names[c->state],
              cmd_state_names[st]);
    c->state = st;
}

static void cmd_free(void *arg)
{
    struct command *c = arg;
    free(c->line[0].buf);
    free(c->line[1].buf);
    child_free(&c->child);
    free(c->cmdline);
    free(c);
}

/* Unregisters c and frees it at the end of the turn (DONE, no stream). */
static void cmd_remove(struct command *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->ed->commands = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->ed->ncommands--;
    loop_defer(c->ed->loop, &c->defer, cmd_free, c);
}

static struct command *cmd_find(struct execd *ed, const char *id)
{
    for (struct command *c = ed->commands; c; c = c->next) {
        if (strcmp(c->id, id) == 0)
            return c;
    }
    return NULL;
}

/* Makes room for one more record: evicts the oldest finished one. */
static int cmd_make_room(struct execd *ed)
{
    struct command *victim = NULL;
    if (ed->ncommands < ed->cfg.max_commands)
        return 0;
    for (struct command *c = ed->commands; c; c = c->next) {
        if (c->state == CMD_DONE && !c->sse)
            victim = c; /* the list is newest first: keep the last match */
    }
    if (!victim)
        return -ENOSPC;
    log_info("execd: command %s evicted to stay within --max-commands %zu", victim->id,
             ed->cfg.max_commands);
    cmd_remove(victim);
    return 0;
}

static void exit_info(const struct command *c, int *code, const char **sig)
{
    child_exit_info(&c->child, code, sig);
}

/* ---- the engine's callbacks ---- */

static void cmd_pump(struct command *c);
static void cmd_finish(void *owner);

/* While a foreground client streams, the command is not read faster than
 * the client takes events. */
static size_t cmd_room(void *owner)
{
    const struct command *c = owner;
    if (!c->sse)
        return SIZE_MAX;
    uint64_t unsent = ring_total(&c->child.ring) - c->sse_cursor;
    return unsent >= c->child.ring.cap ? 0 : c->child.ring.cap - (size_t)unsent;
}

static void cmd_on_output(void *owner, size_t got)
{
    (void)got;
    cmd_pump(owner);
}

static void cmd_on_reaped(void *owner);

static const struct child_ops cmd_child_ops = {
    .room = cmd_room,
    .on_output = cmd_on_output,
    .on_reaped = cmd_on_reaped,
    .on_exit = cmd_finish,
};

/* ---- the event stream ---- */

static int stream_event(struct command *c, json_t *o)
{
    size_t len;
    if (!o)
        return -ENOMEM;
    if (!c->sse) {
        json_decref(o);
        return -EPIPE;
    }
    json_object_set_new(o, "timestamp", json_integer((json_int_t)execd_wall_ms()));
    char *ev = sse_event(o, &len);
    if (!ev)
        return -ENOMEM;
    int r = http_stream_write(c->sse, ev, len);
    free(ev);
    return r;
}

/* Sends the first n bytes of a channel's line as one event (an empty
 * line is the text "\n", as OpenSandbox sends it) and keeps the rest. */
static int emit_line(struct command *c, int ch, size_t n)
{
    struct cmd_line *ln = &c->line[ch];
    json_t *text = n ? sse_text(ln->buf, n) : json_string("\n");
    json_t *o = json_pack("{s:s, s:o}", "type", ch ? "stderr" : "stdout", "text", text);
    memmove(ln->buf, ln->buf + n, ln->len - n);
    ln->len -= n;
    return stream_event(c, o);
}

/* Sends what an unfinished line holds (cut before an unfinished UTF-8
 * sequence unless final), e.g. a prompt that waits for input. */
static int flush_partial(struct command *c, int ch, int final)
{
    struct cmd_line *ln = &c->line[ch];
    size_t cut = final ? ln->len : sse_utf8_cut(ln->buf, ln->len);
    if (cut == 0)
        return 0;
    ln->partial_sent = 1;
    return emit_line(c, ch, cut);
}

/* Splits output into lines on LF or CR (CRLF is one break) and sends one
 * event per line, blank lines included. Takes all of p even when sending
 * fails (the first error is returned). */
static int emit_output(struct command *c, const uint8_t *p, size_t len, uint8_t chan)
{
    int ch = chan == FRAME_CH_STDERR, err = 0;
    struct cmd_line *ln = &c->line[ch];
    if (!ln->buf && !(ln->buf = malloc(CMD_LINE_MAX + 4)))
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = p[i];
        int r = 0;
        if (b == '\n' && ln->after_cr) {
            ln->after_cr = 0;
            continue;
        }
        ln->after_cr = b == '\r';
        if (b == '\n' || b == '\r') {
            if (ln->len || !ln->partial_sent)
                r = emit_line(c, ch, ln->len);
            ln->partial_sent = 0;
        } else {
            ln->buf[ln->len++] = b;
            if (ln->len >= CMD_LINE_MAX)
                r = flush_partial(c, ch, 0);
        }
        if (r < 0 && !err)
            err = r;
    }
    return err;
}

/* An unfinished line goes out once the command has written nothing for
 * CMD_PARTIAL_MS — not while the client is just slow to take the rest of it
 * (then the pump restarts the timer when it catches up), and not because
 * the timer was armed for an earlier partial line. */
static void on_partial_timer(struct loop *l, struct loop_timer *t)
{
    struct command *c = t->data;
    if (!c->sse || c->sse_cursor != ring_total(&c->child.ring))
        return;
    uint64_t quiet = loop_now_ms(l) - c->child.last_data_ms;
    if (quiet < CMD_PARTIAL_MS) {
        (void)loop_timer_start(l, t, CMD_PARTIAL_MS - quiet);
        return;
    }
    for (int ch = 0; ch < 2 && c->sse; ch++)
        (void)flush_partial(c, ch, 0);
}

static void emit_final(struct command *c)
{
    int code;
    const char *sig;
    char evalue[16], trace[64];
    exit_info(c, &code, &sig);
    json_int_t ms = (json_int_t)(c->end_mono - c->start_mono);
    json_t *o = json_pack("{s:s, s:i, s:I}", "type", "exit", "exit_code", code,
                          "execution_time", ms);
    if (o && sig)
        json_object_set_new(o, "signal", json_string(sig));
    if (o && c->timed_out)
        json_object_set_new(o, "timed_out", json_true());
    if (stream_event(c, o) < 0 && !c->sse)
        return;
    /* OpenSandbox clients end on execution_complete or error. */
    if (code == 0 && !sig) {
        o = json_pack("{s:s, s:I}", "type", "execution_complete", "execution_time", ms);
    } else {
        snprintf(evalue, sizeof(evalue), "%d", code);
        if (sig)
            snprintf(trace, sizeof(trace), "killed by %s%s", sig,
                     c->timed_out ? " (timeout)" : "");
        else
            snprintf(trace, sizeof(trace), "exit status %d", code);
        o = json_pack("{s:s, s:{s:s, s:s, s:[s]}}", "type", "error", "error", "ename",
                      c->timed_out ? "TimeoutError" : "CommandExecError", "evalue", evalue,
                      "traceback", trace);
    }
    (void)stream_event(c, o);
}

static void stream_end(struct command *c)
{
    struct http_conn *h = c->sse;
    c->sse = NULL;
    loop_timer_stop(c->ed->loop, &c->ping);
    loop_timer_stop(c->ed->loop, &c->partial);
    if (h)
        (void)http_stream_end(h);
}

/* Sends events while the client's buffer has room. */
static void cmd_pump(struct command *c)
{
    while (c->sse && http_stream_room(c->sse) > 0) {
        const uint8_t *p;
        size_t len;
        uint8_t chan;
        if (ring_peek(&c->child.ring, c->sse_cursor, &p, &len, &chan) < 0) {
            c->sse_cursor = ring_oldest(&c->child.ring); /* cannot happen: reads wait for us */
            continue;
        }
        if (len == 0)
            break;
        if (len > CMD_EVENT_CHUNK)
            len = CMD_EVENT_CHUNK;
        (void)emit_output(c, p, len, chan); /* fails only when the stream is gone */
        c->sse_cursor += len;
    }
    if (c->sse && c->sse_cursor == ring_total(&c->child.ring)) {
        if (c->state == CMD_DONE) {
            for (int ch = 0; ch < 2 && c->sse; ch++)
                (void)flush_partial(c, ch, 1);
            if (c->sse)
                emit_final(c);
            stream_end(c);
            return;
        }
        if ((c->line[0].len || c->line[1].len) && !c->partial.heap_idx) /* not armed */
            (void)loop_timer_start(c->ed->loop, &c->partial, CMD_PARTIAL_MS);
    }
    child_update_io(&c->child); /* room changed; a held drain goes on */
}

static void sse_drain(struct http_conn *h, void *data)
{
    (void)h;
    cmd_pump(data);
}

static void sse_closed(struct http_conn *h, void *data)
{
    struct command *c = data;
    (void)h;
    log_info("execd: command %s: client went away; the command keeps running", c->id);
    c->sse = NULL;
    loop_timer_stop(c->ed->loop, &c->ping);
    loop_timer_stop(c->ed->loop, &c->partial);
    child_update_io(&c->child); /* no reader: output flows, a held drain ends */
}

static void on_ping(struct loop *l, struct loop_timer *t)
{
    struct command *c = t->data;
    if (!c->sse)
        return;
    if (http_stream_room(c->sse) > 0)
        (void)stream_event(c, json_pack("{s:s, s:s}", "type", "ping", "text", "pong"));
    if (c->sse)
        (void)loop_timer_start(l, t, c->ed->cfg.sse_ping_ms);
}

/* ---- lifecycle ---- */

/* The engine's on_exit: status final, output complete. */
static void cmd_finish(void *owner)
{
    struct command *c = owner;
    int code;
    const char *sig;
    loop_timer_stop(c->ed->loop, &c->timeout);
    loop_timer_stop(c->ed->loop, &c->kill);
    cmd_set_state(c, CMD_DONE);
    exit_info(c, &code, &sig);
    if (c->on_done) {
        command_done_fn fn = c->on_done;
        c->on_done = NULL;
        fn(c->done_data, code, sig);
    }
    log_info("execd: command %s: exited (code %d%s%s) after %llu ms, %llu bytes", c->id, code,
             sig ? ", " : "", sig ? sig : "", (unsigned long long)(c->end_mono - c->start_mono),
             (unsigned long long)ring_total(&c->child.ring));
    cmd_pump(c);
}

/* The engine's on_reaped: it then takes what is left in the pipes. */
static void cmd_on_reaped(void *owner)
{
    struct command *c = owner;
    c->finished_at = execd_wall_ms();
    c->end_mono = loop_clock_ms();
    /* Stragglers of a timed-out or interrupted group get no more grace. */
    if ((c->timed_out || c->interrupted) && !c->kill_sent)
        kill(-c->child.pid, SIGKILL);
    cmd_set_state(c, CMD_EXITING);
}

static void on_kill_timer(struct loop *l, struct loop_timer *t)
{
    struct command *c = t->data;
    (void)l;
    if (c->state != CMD_RUNNING)
        return;
    log_info("execd: command %s: still running %llu ms after SIGTERM; SIGKILL to group %d",
             c->id, (unsigned long long)c->ed->cfg.kill_grace_ms, (int)c->child.pid);
    c->kill_sent = 1;
    kill(-c->child.pid, SIGKILL);
}

/* SIGTERM to the group now, SIGKILL after the grace period. */
static void cmd_terminate(struct command *c)
{
    kill(-c->child.pid, SIGTERM);
    if (loop_timer_start(c->ed->loop, &c->kill, c->ed->cfg.kill_grace_ms) < 0) {
        c->kill_sent = 1;
        kill(-c->child.pid, SIGKILL);
    }
}

static void on_timeout(struct loop *l, struct loop_timer *t)
{
    struct command *c = t->data;
    (void)l;
    if (c->state != CMD_RUNNING)
        return;
    log_info("execd: command %s: timeout after %llu ms; SIGTERM to group %d", c->id,
             (unsigned long long)c->timeout_ms, (int)c->child.pid);
    c->timed_out = 1;
    cmd_terminate(c);
}

/* Validates the body; answers 400 and returns -1 on bad input. */
static int parse_req(struct http_conn *h, json_t *root, struct command_spec *r)
{
    json_t *v;
    struct stat st;
    memset(r, 0, sizeof(*r));
    r->command = json_string_value(json_object_get(root, "command"));
    if (!r->command || !*r->command) {
        api_error(h, 400, "INVALID_REQUEST_BODY", "\"command\" must be a non-empty string");
        return -1;
    }
    v = json_object_get(root, "cwd");
    if (v && !json_is_null(v)) {
        r->cwd = json_string_value(v);
        if (!r->cwd || stat(r->cwd, &st) < 0 || !S_ISDIR(st.st_mode)) {
            api_error(h, 400, "INVALID_REQUEST_BODY",
                      "\"cwd\" must name an existing directory");
            return -1;
        }
    }
    v = json_object_get(root, "timeout_ms");
    if (!v)
        v = json_object_get(root, "timeout"); /* OpenSandbox's name, also milliseconds */
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            api_error(h, 400, "INVALID_REQUEST_BODY",
                      "\"timeout_ms\" must be a non-negative integer (0 = no limit)");
            return -1;
        }
        r->timeout_ms = (uint64_t)json_integer_value(v);
    }
    v = json_object_get(root, "background");
    if (v && !json_is_boolean(v) && !json_is_null(v)) {
        api_error(h, 400, "INVALID_REQUEST_BODY", "\"background\" must be a boolean");
        return -1;
    }
    r->background = json_is_true(v);
    const char *ids[2] = {"uid", "gid"};
    for (int i = 0; i < 2; i++) {
        v = json_object_get(root, ids[i]);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > 0x7fffffff) {
            api_error(h, 400, "INVALID_REQUEST_BODY", "\"%s\" must be a non-negative integer",
                      ids[i]);
            return -1;
        }
        *(i ? &r->gid : &r->uid) = (uint32_t)json_integer_value(v);
        *(i ? &r->has_gid : &r->has_uid) = 1;
    }
    return api_env(h, root, &r->env);
}

static int cmd_spawn(struct command *c, const struct command_spec *r)
{
    char *argv[] = {c->ed->cfg.shell, "-c", (char *)(r->script ? r->script : c->cmdline), NULL};
    struct proc_spec spec = {.path = c->ed->cfg.shell,
                             .argv = argv,
                             .env = r->env,
                             .cwd = r->cwd,
                             .io = PROC_IO_NULL_IN,
                             .has_uid = r->has_uid,
                             .has_gid = r->has_gid,
                             .uid = r->uid,
                             .gid = r->gid};
    return child_spawn(&c->child, &spec);
}

static struct command *cmd_new(struct execd *ed, const struct command_spec *r, int *err)
{
    struct command *c = calloc(1, sizeof(*c));
    *err = -ENOMEM;
    if (!c)
        return NULL;
    execd_new_id(c->id, 0);
    snprintf(c->label, sizeof(c->label), "command %s", c->id);
    if (child_init(&c->child, ed, c->label, &cmd_child_ops, c, 0) < 0) {
        free(c);
        return NULL;
    }
    c->cmdline = strdup(r->command);
    if (!c->cmdline) {
        cmd_free(c);
        return NULL;
    }
    c->ed = ed;
    c->background = r->background;
    c->timeout_ms = r->timeout_ms;
    c->timeout.cb = on_timeout;
    c->kill.cb = on_kill_timer;
    c->ping.cb = on_ping;
    c->partial.cb = on_partial_timer;
    c->timeout.data = c->kill.data = c->ping.data = c->partial.data = c;
    snprintf(c->init_text, sizeof(c->init_text), "%s", r->init_text ? r->init_text : c->id);
    c->on_done = r->on_done;
    c->done_data = r->done_data;
    c->started_at = execd_wall_ms();
    c->start_mono = loop_clock_ms();
    *err = cmd_spawn(c, r);
    if (*err < 0) {
        cmd_free(c);
        return NULL;
    }
    c->next = ed->commands;
    if (ed->commands)
        ed->commands->prev = c;
    ed->commands = c;
    ed->ncommands++;
    return c;
}

int command_start(struct execd *ed, struct http_conn *h, const struct command_spec *r,
                  struct command **out)
{
    static const char sse_headers[] = "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";
    static const struct http_stream_cbs cbs = {.on_drain = sse_drain, .on_close = sse_closed};
    int err;
    if (cmd_make_room(ed) < 0) {
        api_error(h, 429, "COMMAND_LIMIT",
                  "%zu commands are running (--max-commands); wait for one to finish",
                  ed->cfg.max_commands);
        return -ENOSPC;
    }
    struct command *c = cmd_new(ed, r, &err);
    if (!c) { /* nothing streamed yet, so a plain JSON error */
        api_error(h, 500, "RUNTIME_ERROR", "cannot start the command: %s", strerror(-err));
        return err;
    }
    if (out)
        *out = c;
    log_info("execd: command %s: started %d%s: %s", c->id, (int)c->child.pid,
             c->background ? " in the background" : "", c->cmdline);
    if (c->timeout_ms && loop_timer_start(ed->loop, &c->timeout, c->timeout_ms) < 0)
        log_warn("execd: command %s: timer heap full; no timeout", c->id);
    if (http_stream_begin(h, 200, "text/event-stream", sse_headers, &cbs, c) < 0)
        goto run;
    c->sse = h;
    (void)stream_event(c, json_pack("{s:s, s:s}", "type", "init", "text", c->init_text));
    if (c->background) { /* OpenSandbox: init, then execution_complete at once */
        (void)stream_event(c, json_pack("{s:s}", "type", "execution_complete"));
        stream_end(c);
        goto run;
    }
    if (ed->cfg.sse_ping_ms && c->sse)
        (void)loop_timer_start(ed->loop, &c->ping, ed->cfg.sse_ping_ms);
run:
    child_update_io(&c->child); /* the reader's room is known now */
    return 0;
}

void command_post(struct execd *ed, struct http_conn *h, const struct http_req *req)
{
    struct command_spec r;
    json_t *root = api_body_object(h, req);
    if (!root)
        return;
    if (parse_req(h, root, &r) == 0)
        (void)command_start(ed, h, &r, NULL);
    api_strv_free(r.env);
    json_decref(root);
}

void command_forget_owner(struct command *c)
{
    c->on_done = NULL;
    c->done_data = NULL;
}

void command_kill(struct command *c)
{
    if (c->state != CMD_RUNNING)
        return;
    log_info("execd: command %s: killed with its owner; SIGKILL to group %d", c->id, (int)c->child.pid);
    c->interrupted = 1;
    c->kill_sent = 1;
    kill(-c->child.pid, SIGKILL);
}

static json_t *iso_time(uint64_t ms)
{
    char buf[80];
    struct tm tm;
    time_t s = (time_t)(ms / 1000);
    gmtime_r(&s, &tm);
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return json_string(buf);
}

static json_t *cmd_status_json(const struct command *c)
{
    int code;
    const char *sig;
    exit_info(c, &code, &sig);
    json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:s, s:b, s:b, s:b, s:I, s:o}", "id", c->id,
                          "command", c->cmdline, "content", c->cmdline, "running",
                          c->state == CMD_RUNNING, "state", cmd_state_names[c->state],
                          "background", c->background, "timed_out", c->timed_out,
                          "interrupted", c->interrupted, "output_offset",
                          (json_int_t)ring_total(&c->child.ring), "started_at",
                          iso_time(c->started_at));
    if (!o)
        return NULL;
    json_object_set_new(o, "exit_code", c->state == CMD_DONE ? json_integer(code) : json_null());
    json_object_set_new(o, "finished_at",
                        c->state == CMD_DONE ? iso_time(c->finished_at) : json_null());
    if (sig)
        json_object_set_new(o, "signal", json_string(sig));
    json_object_set_new(o, "pid", json_integer(c->child.pid));
    return o;
}

static void not_found(struct http_conn *h, const char *id)
{
    api_error(h, 404, "CONTEXT_NOT_FOUND", "command %s not found", id);
}

void command_status(struct execd *ed, struct http_conn *h, const char *id)
{
    struct command *c = cmd_find(ed, id);
    if (!c) {
        not_found(h, id);
        return;
    }
    api_json(h, 200, cmd_status_json(c));
}

void command_list(struct execd *ed, struct http_conn *h)
{
    json_t *a = json_array();
    for (struct command *c = ed->commands; c && a; c = c->next)
        json_array_append_new(a, cmd_status_json(c));
    api_json(h, 200, json_pack("{s:o}", "commands", a));
}

void command_logs(struct execd *ed, struct http_conn *h, const struct http_req *req,
                  const char *id)
{
    char v[32], hdr[160];
    uint64_t cursor = 0, lost = 0;
    struct command *c = cmd_find(ed, id);
    if (!c) {
        not_found(h, id);
        return;
    }
    int n = http_query_get(req->query, req->query_len, "cursor", v, sizeof(v));
    if (n >= 0) {
        char *end;
        errno = 0;
        cursor = strtoull(v, &end, 10);
        if (v[0] < '0' || v[0] > '9' || *end || errno) {
            api_error(h, 400, "INVALID_QUERY", "cursor must be a byte offset");
            return;
        }
    }
    uint64_t total = ring_total(&c->child.ring), oldest = ring_oldest(&c->child.ring);
    if (cursor > total)
        cursor = total;
    if (cursor < oldest) {
        lost = oldest - cursor;
        cursor = oldest;
    }
    size_t len = (size_t)(total - cursor);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf || ring_copy(&c->child.ring, cursor, buf, len) != (ssize_t)len) {
        free(buf);
        api_error(h, 500, "RUNTIME_ERROR", "out of memory");
        return;
    }
    snprintf(hdr, sizeof(hdr), "EXECD-COMMANDS-TAIL-CURSOR: %llu\r\nX-EXECD-LOST-BYTES: %llu\r\n",
             (unsigned long long)total, (unsigned long long)lost);
    (void)http_respond(h, 200, "text/plain; charset=utf-8", buf, len, hdr);
    free(buf);
}

void command_interrupt(struct execd *ed, struct http_conn *h, const char *id)
{
    struct command *c = cmd_find(ed, id);
    if (!c) {
        not_found(h, id);
        return;
    }
    if (c->state != CMD_RUNNING) {
        api_error(h, 409, "NOT_RUNNING", "command %s has already exited", id);
        return;
    }
    log_info("execd: command %s: interrupted; SIGTERM to group %d", c->id, (int)c->child.pid);
    c->interrupted = 1;
    cmd_terminate(c);
    api_json(h, 200, cmd_status_json(c));
}

void command_kill_all(struct execd *ed)
{
    for (struct command *c = ed->commands; c; c = c->next) {
        if (c->state == CMD_RUNNING)
            kill(-c->child.pid, SIGKILL);
    }
}

void command_free_all(struct execd *ed)
{
    while (ed->commands) {
        struct command *c = ed->commands;
        ed->commands = c->next;
        child_stop(&c->child);
        loop_timer_stop(ed->loop, &c->timeout);
        loop_timer_stop(ed->loop, &c->kill);
        loop_timer_stop(ed->loop, &c->ping);
        loop_timer_stop(ed->loop, &c->partial);
        cmd_free(c);
    }
    ed->ncommands = 0;
}
