/* execd/bash_session: OpenSandbox's bash "session" API (run_in_session).
 *
 *   POST   /session            {cwd?}  -> 200 {"session_id"}; cwd is created
 *   POST   /session/{id}/run   {command, cwd?, timeout?} -> event stream
 *   GET    /session/{id}       -> {"session_id","running","cwd"}
 *   DELETE /session/{id}       -> 200; SIGKILL to the run in progress
 *
 * Each run is a fresh `bash -c` started through the command engine
 * (command_start), stdout and stderr merged into stdout events, init's text
 * the session id. What carries over between runs, as in OpenSandbox:
 * exported variables and the working directory (a per-run cwd sticks), read
 * back from a state file the run's EXIT trap writes (`pwd`, then `env -0`).
 * One run at a time per session (409 SESSION_BUSY); at most max_sessions
 * sessions (429 SESSION_LIMIT). */
#ifndef CORDON_EXECD_BASH_SESSION_H
#define CORDON_EXECD_BASH_SESSION_H

#include <stddef.h>

struct execd;
struct http_conn;
struct http_req;

void bash_session_create(struct execd *ed, struct http_conn *c, const struct http_req *req);
void bash_session_run(struct execd *ed, struct http_conn *c, const struct http_req *req,
                      const char *id);
void bash_session_status(struct execd *ed, struct http_conn *c, const char *id);
void bash_session_delete(struct execd *ed, struct http_conn *c, const char *id);
/* 1 if id names a bash session (DELETE /command?id= deletes it, as OpenSandbox). */
int bash_session_exists(struct execd *ed, const char *id);
/* Parses a state file (buf is modified): "<absolute cwd>\n" then NUL-
 * separated K=V; drops per-shell variables (PWD, SHLVL, PS1...) and values
 * over 8 KiB. Returns 0 with *cwd and *env (caller frees), -ENODATA if the
 * content is not a state, -ENOMEM. */
int bash_session_parse_state(char *buf, size_t len, char **cwd, char ***env);
/* Releases every session (after the loop has stopped). */
void bash_session_free_all(struct execd *ed);

#endif
