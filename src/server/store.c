/* server/store: SQLite rows for the local driver's sandboxes. */
#include "server/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/banned.h"

struct store {
    sqlite3 *db;
    sqlite3_stmt *put, *del, *all;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS sandboxes ("
    " id TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT, message TEXT,"
    " image TEXT, created_ms INTEGER, expires_ms INTEGER, transition_ms INTEGER,"
    " metadata TEXT, entrypoint TEXT, run_pid INTEGER, run_start INTEGER,"
    " ip TEXT, cgroup TEXT);";

int store_open(const char *path, struct store **out, char *err, size_t cap)
{
    struct store *st = calloc(1, sizeof(*st));
    int r = -EIO;
    if (!st)
        return -ENOMEM;
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_busy_timeout(st->db, 2000);
    if (sqlite3_exec(st->db, schema, NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    /* added later: execd's token (fails harmlessly when the column exists) */
    (void)sqlite3_exec(st->db, "ALTER TABLE sandboxes ADD COLUMN token TEXT", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(st->db,
            "INSERT OR REPLACE INTO sandboxes VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1,
            &st->put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st->db, "DELETE FROM sandboxes WHERE id = ?", -1, &st->del,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st->db, "SELECT * FROM sandboxes ORDER BY created_ms", -1, &st->all,
                           NULL) != SQLITE_OK)
        goto fail;
    *out = st;
    return 0;
fail:
    snprintf(err, cap, "state database %s: %s", path,
             st->db ? sqlite3_errmsg(st->db) : "cannot open");
    store_close(st);
    return r;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    sqlite3_finalize(st->put);
    sqlite3_finalize(st->del);
    sqlite3_finalize(st->all);
    sqlite3_close(st->db);
    free(st);
}

static int bind_json(sqlite3_stmt *s, int i, const json_t *j)
{
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    int r = t ? sqlite3_bind_text(s, i, t, -1, free) : sqlite3_bind_null(s, i);
    return r;
}

int store_put(struct store *st, const struct store_row *row)
{
    const struct sbx_record *r = &row->rec;
    sqlite3_stmt *s = st->put;
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, r->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, sbx_state_name(r->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, r->reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, r->message, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 5, r->image, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 6, r->created_ms);
    sqlite3_bind_int64(s, 7, r->expires_ms);
    sqlite3_bind_int64(s, 8, r->transition_ms);
    bind_json(s, 9, r->metadata);
    bind_json(s, 10, r->entrypoint);
    sqlite3_bind_int64(s, 11, row->run_pid);
    sqlite3_bind_int64(s, 12, (sqlite3_int64)row->run_start);
    sqlite3_bind_text(s, 13, row->ip, -1, SQLITE_TRANSIENT);
    bind_json(s, 14, row->cgroup);
    sqlite3_bind_text(s, 15, row->token, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) {
        log_error("server: state database: cannot save sandbox %s: %s", r->id,
                  sqlite3_errmsg(st->db));
        return -EIO;
    }
    return 0;
}

int store_delete(struct store *st, const char *id)
{
    sqlite3_reset(st->del);
    sqlite3_bind_text(st->del, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st->del);
    sqlite3_reset(st->del);
    if (rc != SQLITE_DONE) {
        log_error("server: state database: cannot delete sandbox %s: %s", id,
                  sqlite3_errmsg(st->db));
        return -EIO;
    }
    return 0;
}

static void copy_text(sqlite3_stmt *s, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static json_t *col_json(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? json_loads((const char *)t, 0, NULL) : NULL;
}

int store_load(struct store *st, void (*fn)(void *data, const struct store_row *row), void *data)
{
    sqlite3_stmt *s = st->all;
    int rc;
    sqlite3_reset(s);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_row row;
        char state[32];
        memset(&row, 0, sizeof(row));
        copy_text(s, 0, row.rec.id, sizeof(row.rec.id));
        copy_text(s, 1, state, sizeof(state));
        if (sbx_state_parse(state, &row.rec.state) < 0)
            row.rec.state = SBX_FAILED;
        copy_text(s, 2, row.rec.reason, sizeof(row.rec.reason));
        copy_text(s, 3, row.rec.message, sizeof(row.rec.message));
        copy_text(s, 4, row.rec.image, sizeof(row.rec.image));
        row.rec.created_ms = sqlite3_column_int64(s, 5);
        row.rec.expires_ms = sqlite3_column_int64(s, 6);
        row.rec.transition_ms = sqlite3_column_int64(s, 7);
        row.rec.metadata = col_json(s, 8);
        row.rec.entrypoint = col_json(s, 9);
        row.run_pid = (pid_t)sqlite3_column_int64(s, 10);
        row.run_start = (uint64_t)sqlite3_column_int64(s, 11);
        copy_text(s, 12, row.ip, sizeof(row.ip));
        row.cgroup = col_json(s, 13);
        copy_text(s, 14, row.token, sizeof(row.token));
        if (!row.rec.metadata)
            row.rec.metadata = json_object();
        if (!row.rec.entrypoint)
            row.rec.entrypoint = json_array();
        fn(data, &row);
        sbx_record_clear(&row.rec);
        json_decref(row.cgroup);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -EIO;
}
