/* execd: the daemon that serves shells (PTY or pipes, over WebSocket) and
 * one-shot commands (over an event stream) on one event loop.
 *
 * Module map: server.c (start-up, shutdown), api.c (HTTP routes, auth,
 * errors), child.c (the child-process engine: spawn, output pump into the
 * replay ring, stdin, reap, drain), session.c (long-lived shells),
 * attach.c (the WebSocket client of a session), command.c (POST /command),
 * files.c, upload.c, download.c (the files API), sse.c (event encoding),
 * ring.c, frame.c, proc.c, reaper.c. The protocol is in doc/execd.md. */
#ifndef CORDON_EXECD_EXECD_H
#define CORDON_EXECD_EXECD_H

#include "execd/metrics.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct loop;
struct http_server;
struct reaper;
struct session;
struct command;
struct bash_session;
struct metrics_watch;
struct attach;

struct execd_cfg {
    struct sockaddr_storage listen;
    socklen_t listen_len;
    char token[512];    /* empty: no authentication */
    size_t ring_size;     /* replay ring per session and per command */
    size_t max_sessions;  /* live + exited sessions kept */
    size_t max_commands;  /* command records kept (finished ones evicted first) */
    size_t max_frame;     /* largest client WebSocket message */
    size_t max_body;      /* largest HTTP request body */
    size_t max_conns;     /* open HTTP connections */
    size_t stdin_max;     /* stdin bytes buffered per session before reads pause */
    uint64_t ping_ms;     /* WebSocket keepalive ping interval, 0 = off */
    uint64_t sse_ping_ms; /* event-stream keepalive, 0 = off */
    uint64_t kill_grace_ms; /* SIGTERM -> SIGKILL */
    uint64_t stall_ms;    /* how long a non-reading client may hold a shell's output */
    uint64_t idle_ms;     /* idle keep-alive HTTP connections */
    char shell[PATH_MAX]; /* bash (or sh) */
};

struct execd {
    struct loop *loop;
    struct execd_cfg cfg;
    struct http_server *http;
    struct reaper *reaper;
    struct session *sessions;
    size_t nsessions;
    struct session *dying; /* deleted, waiting for the reap or the client */
    struct command *commands;
    size_t ncommands;
    struct bash_session *bash_sessions; /* OpenSandbox's /session API */
    size_t nbash_sessions;
    struct execd_metrics metrics;       /* /metrics CPU sampling */
    struct metrics_watch *watchers;     /* open /metrics/watch streams */
    size_t nwatchers;
    struct attach *attaches; /* every live WebSocket client, for shutdown */
    size_t nattaches;        /* counted against max_conns too */
    int stopping;
};

/* Runs execd until SIGTERM or SIGINT. SIGCHLD, SIGTERM and SIGINT must be
 * blocked and SIGPIPE ignored before the call. Prints "listening ADDR:PORT"
 * on stdout once ready. Returns 0 or -errno. */
int execd_run(const struct execd_cfg *cfg);

/* A random id: a dashed UUID v4 (dashed=1, 37 bytes) or 32 hex chars
 * (33 bytes). */
void execd_new_id(char *out, int dashed);

/* Wall-clock milliseconds since the epoch (for timestamps in JSON). */
uint64_t execd_wall_ms(void);

#endif
