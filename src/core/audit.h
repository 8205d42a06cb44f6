/* core/audit: the audit log, one JSON object per line.
 *
 * Every security decision and every connection close is one event. The sink
 * is stderr or a file opened O_APPEND; each event is one write(2), so lines
 * from different worker threads never interleave. Never log secrets. */
#ifndef CORDON_CORE_AUDIT_H
#define CORDON_CORE_AUDIT_H

#include <jansson.h>

/* Opens path for appending (NULL or "-" = stderr). Returns 0 or -errno. */
int audit_open(const char *path) __attribute__((warn_unused_result));
/* Re-opens the same path (log rotation on SIGHUP). */
int audit_reopen(void);
void audit_close(void);

/* Adds "time" (RFC 3339, ms) and "event", writes the object as one line and
 * drops the caller's reference. Safe from any thread. */
void audit_emit(const char *event, json_t *obj);

/* Optional in-process observer (tests, the sandbox's "last denials"):
 * called after each write with the serialized line (without newline). */
typedef void (*audit_observer_cb)(const char *line, size_t len, void *data);
void audit_set_observer(audit_observer_cb cb, void *data);

#endif
