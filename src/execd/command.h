/* execd/command: one-shot commands (POST /command), streamed as events.
 *
 * States: RUNNING -> EXITING (reaped; reading what is left in the pipes)
 * -> DONE (status final, pipes closed). The stream ends right after DONE:
 * no tail delay. Output goes into a ring (ring_size) that
 * GET /command/{id}/logs reads; while a foreground client streams, the
 * command is not read faster than the client takes events (backpressure,
 * no loss, memory bounded by ring_size + max_out). A client that goes away
 * does not stop the command. Timeout and DELETE send SIGTERM to the process
 * group, then SIGKILL after kill_grace_ms. Records are kept up to
 * max_commands; the oldest finished one is evicted to make room, and when
 * all are running the request gets 429 COMMAND_LIMIT. */
#ifndef CORDON_EXECD_COMMAND_H
#define CORDON_EXECD_COMMAND_H

struct execd;
struct http_conn;
struct http_req;

void command_post(struct execd *ed, struct http_conn *c, const struct http_req *req);
void command_status(struct execd *ed, struct http_conn *c, const char *id);
void command_logs(struct execd *ed, struct http_conn *c, const struct http_req *req,
                  const char *id);
void command_interrupt(struct execd *ed, struct http_conn *c, const char *id);
void command_list(struct execd *ed, struct http_conn *c);
/* SIGKILL for every running command (shutdown). */
void command_kill_all(struct execd *ed);
/* Releases every record (after the loop has stopped). */
void command_free_all(struct execd *ed);

#endif
