/* server/store: the local driver's SQLite state (DATA/sandboxes.db).
 *
 * One row per sandbox that exists: its record (state, times, image,
 * metadata, entrypoint) and what a restarted server needs to find it again
 * (the supervisor's pid and start time, its address, its cgroup). Writes
 * are synchronous (WAL, synchronous=NORMAL): a server killed right after an
 * answer still has the row. Only server/local.c uses this. */
#ifndef CORDON_SERVER_STORE_H
#define CORDON_SERVER_STORE_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "server/driver.h"

struct store;

struct store_row {
    struct sbx_record rec;
    pid_t run_pid;
    uint64_t run_start; /* /proc/PID/stat starttime, against pid reuse */
    char ip[16];        /* sandbox address, "" before it is known */
    json_t *cgroup;     /* the local driver's {"v2", "dirs"} of its sandbox/cgroup group */
    char token[65];     /* execd's access token (hex) */
};

int store_open(const char *path, struct store **out, char *err, size_t cap)
    __attribute__((warn_unused_result));
void store_close(struct store *st);
/* Inserts or replaces the row. Returns 0 or -EIO (logged). */
int store_put(struct store *st, const struct store_row *row);
int store_delete(struct store *st, const char *id);
/* Calls fn for every row (the row is valid during the call only). */
int store_load(struct store *st, void (*fn)(void *data, const struct store_row *row),
               void *data);

#endif
