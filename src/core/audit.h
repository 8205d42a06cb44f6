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
/* Opens path for the audit log of a sandbox: created 0640 if missing,
 * never through a symlink, and refused unless it is a regular file owned by
 * this process's user with one link (-EPERM; a file someone else planted or
 * linked). Returns 0 or -errno. */
int audit_open_private(const char *path) __attribute__((warn_unused_result));
/* Re-opens the same path (log rotation on SIGHUP). */
int audit_reopen(void);
void audit_close(void);

/* How events are written: one JSON object per line (default), or one text
 * line "TIME EVENT key=value ..." (values with spaces or quotes are JSON
 * strings). The observer always gets the JSON form. */
enum audit_format { AUDIT_FORMAT_JSON, AUDIT_FORMAT_TEXT };
/* "json" or "text"; returns 0 or -EINVAL. */
int audit_parse_format(const char *s, enum audit_format *out);
void audit_set_format(enum audit_format f);

/* Adds "time" (RFC 3339, ms) and "event", writes the object as one line and
 * drops the caller's reference. Safe from any thread. */
void audit_emit(const char *event, json_t *obj);

/* Optional in-process observer (the terminal lines of `cordon run`): called
 * after each write, on the emitting thread, with the event name, the whole
 * event (borrowed; do not keep) and its JSON line (without newline). */
typedef void (*audit_observer_cb)(const char *event, json_t *ev, const char *line, size_t len,
                                  void *data);
void audit_set_observer(audit_observer_cb cb, void *data);

#endif
