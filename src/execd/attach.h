/* execd/attach: the WebSocket client of a session (GET /pty/{id}/ws and
 * GET /ws/session/{id}).
 *
 * Pre-upgrade checks, in order: the session exists (404 CONTEXT_NOT_FOUND,
 * done by the router), the query parses (400 INVALID_QUERY), the session is
 * free unless this is a takeover (409 ALREADY_CONNECTED), the request is a
 * valid WebSocket handshake (400/426), the shell starts (500 START_FAILED).
 * Then: 101, [replay frame], connected frame, live frames. Snapshot and
 * attach happen in the same loop turn, so a client that reconnects with
 * since=<next offset> gets every byte exactly once. */
#ifndef CORDON_EXECD_ATTACH_H
#define CORDON_EXECD_ATTACH_H

struct execd;
struct http_conn;
struct http_req;
struct session;

enum attach_flavor {
    ATTACH_PTY_ROUTE,  /* /pty/{id}/ws: PTY unless pty=0; since absent = 0 */
    ATTACH_WS_SESSION, /* /ws/session/{id}: pipes unless pty=1; since absent = no replay */
};

/* Answers req (an error response, or the upgrade). */
void attach_handle(struct execd *ed, struct http_conn *c, const struct http_req *req,
                   struct session *s, enum attach_flavor flavor);

/* Drops every WebSocket client now (shutdown). */
void attach_abort_all(struct execd *ed);

#endif
