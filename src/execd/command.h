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

#include <stdint.h>

struct execd;
struct http_conn;
struct http_req;

struct command;

/* Told a run's status once it is reaped (code -1 and sig set when killed). */
typedef void (*command_done_fn)(void *data, int code, const char *sig);

/* What to run. script, when set, is what the shell runs instead of command
 * (command is what status and logs show); init_text replaces the command
 * id in the init event; on_done, when set, is called at the end. */
struct command_spec {
    const char *command, *script, *cwd, *init_text;
    char **env; /* "K=V" over execd's environment */
    uint64_t timeout_ms;
    int background;
    int has_uid, has_gid;
    uint32_t uid, gid;
    command_done_fn on_done;
    void *done_data;
};

void command_post(struct execd *ed, struct http_conn *c, const struct http_req *req);
/* Starts spec and streams it on c (or answers c with an error). Returns 0
 * and *out (may be NULL), or -errno after answering. */
int command_start(struct execd *ed, struct http_conn *c, const struct command_spec *spec,
                  struct command **out);
/* The owner of on_done goes away: no callback. */
void command_forget_owner(struct command *c);
/* SIGKILL to the command's process group now. */
void command_kill(struct command *c);
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
