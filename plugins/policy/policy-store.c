/* policy-store.c - the policy engine's durable state in SQLite.
 *
 * Why SQLite: the state is small but must survive kill -9 and power cuts mid-write (a
 * one-shot "restore" that comes back after a crash re-images a machine the user already
 * worked on). SQLite gives atomic multi-row transactions (record the boot AND consume the
 * one-shot work, or neither), an on-disk format that admins can inspect with sqlite3(1),
 * and indexed lookups by MAC/UUID/serial over 100,000 devices; it is in every distribution
 * (Debian libsqlite3-dev) and on Windows. GKeyFile or hand-written journal files would need
 * their own crash-safe rewrite scheme.
 *
 * WAL with synchronous=NORMAL: a committed transaction is in the WAL file before COMMIT
 * returns, so it survives the process being killed at any point; a power cut may lose the
 * last few transactions but never corrupts the database (sqlite.org/wal.html). */
#include "policy-store.h"

#include <sqlite3.h>
#include <string.h>

struct PolicyStore {
    sqlite3 *db;
    sqlite3_stmt *st[32];
    char *path;
    /* the background checkpointer (policy_store_start_checkpointer) */
    GThread *ckpt;
    GMutex lock;
    GCond cond;
    gboolean stop;
    guint interval_ms;
};

enum {
    Q_FIND_UUID,
    Q_FIND_SERIAL,
    Q_FIND_MAC,
    Q_FIND_ID,
    Q_INSERT,
    Q_UPDATE_SEEN,
    Q_SET_IMAGED,
    Q_CLEAR_JUST,
    Q_ASSIGN,
    Q_GET_ASSIGN,
    Q_DEL_ASSIGN,
    Q_ONCE_DONE,
    Q_MARK_ONCE,
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_FIND_KEY,
    Q_N_
};

#define DEVICE_COLS                                                                            \
    "id, key, mac, uuid, serial, first_seen, last_seen, boot_count, just_imaged, last_image, " \
    "last_rule"

static const char *const queries[Q_N_] = {
    [Q_FIND_UUID] = "SELECT " DEVICE_COLS " FROM devices WHERE uuid = ?1",
    [Q_FIND_SERIAL] = "SELECT " DEVICE_COLS " FROM devices WHERE serial = ?1 "
                      "AND (uuid IS NULL OR ?2 IS NULL) ORDER BY last_seen DESC LIMIT 1",
    /* A MAC identifies a machine only when nothing better does: a record that has a UUID or
     * serial of its own belongs to that machine, and only a request without either may
     * borrow it (docks and USB adapters move MACs around). */
    [Q_FIND_MAC] = "SELECT " DEVICE_COLS " FROM devices WHERE mac = ?1 "
                   "AND ((uuid IS NULL AND serial IS NULL) OR ?2 = 0) "
                   "ORDER BY last_seen DESC LIMIT 1",
    [Q_FIND_ID] = "SELECT " DEVICE_COLS " FROM devices WHERE id = ?1",
    [Q_INSERT] = "INSERT INTO devices (key, mac, uuid, serial, first_seen, last_seen, "
                 "boot_count, just_imaged, last_rule) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, 0, ?7)",
    [Q_UPDATE_SEEN] = "UPDATE devices SET mac = coalesce(?2, mac), uuid = coalesce(?3, uuid), "
                      "serial = coalesce(?4, serial), last_seen = ?5, "
                      "boot_count = boot_count + ?6, last_rule = coalesce(?7, last_rule) "
                      "WHERE id = ?1",
    [Q_SET_IMAGED] = "UPDATE devices SET last_image = coalesce(?2, last_image), "
                     "just_imaged = ?3 WHERE id = ?1",
    [Q_CLEAR_JUST] = "UPDATE devices SET just_imaged = 0 WHERE id = ?1",
    [Q_ASSIGN] = "INSERT OR REPLACE INTO assignments (key, work, created) VALUES (?1, ?2, ?3)",
    [Q_GET_ASSIGN] = "SELECT work FROM assignments WHERE key = ?1",
    [Q_DEL_ASSIGN] = "DELETE FROM assignments WHERE key = ?1",
    [Q_ONCE_DONE] = "SELECT 1 FROM once_done WHERE device = ?1 AND what = ?2",
    [Q_MARK_ONCE] = "INSERT OR IGNORE INTO once_done (device, what, at) VALUES (?1, ?2, ?3)",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_FIND_KEY] = "SELECT " DEVICE_COLS " FROM devices WHERE key = ?1 OR "
                   "('mac:' || mac) = ?1 OR ('uuid:' || uuid) = ?1 OR ('serial:' || serial) = ?1 "
                   "ORDER BY last_seen DESC LIMIT 1",
};

static const char schema[] =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = NORMAL;"
    "PRAGMA foreign_keys = ON;"
    /* 100,000 devices are ~15 MB: keep them in memory rather than in read() calls. */
    "PRAGMA cache_size = -32768;"
    "PRAGMA mmap_size = 268435456;"
    "PRAGMA temp_store = MEMORY;"
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);"
    "INSERT OR IGNORE INTO meta VALUES ('schema', '1');"
    "CREATE TABLE IF NOT EXISTS devices ("
    "  id INTEGER PRIMARY KEY, key TEXT NOT NULL, mac TEXT, uuid TEXT, serial TEXT,"
    "  first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
    "  boot_count INTEGER NOT NULL DEFAULT 0, just_imaged INTEGER NOT NULL DEFAULT 0,"
    "  last_image TEXT, last_rule TEXT);"
    "CREATE UNIQUE INDEX IF NOT EXISTS devices_uuid ON devices(uuid);"
    "CREATE INDEX IF NOT EXISTS devices_serial ON devices(serial);"
    "CREATE INDEX IF NOT EXISTS devices_mac ON devices(mac);"
    "CREATE INDEX IF NOT EXISTS devices_key ON devices(key);"
    "CREATE TABLE IF NOT EXISTS assignments ("
    "  key TEXT PRIMARY KEY, work TEXT NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS once_done ("
    "  device INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE, what TEXT NOT NULL,"
    "  at INTEGER NOT NULL, PRIMARY KEY (device, what));";

static gboolean db_fail(PolicyStore *s, GError **error, const char *what)
{
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "state database: %s: %s", what,
                sqlite3_errmsg(s->db));
    return FALSE;
}

PolicyStore *policy_store_open(const char *path, GError **error)
{
    g_return_val_if_fail(path != NULL, NULL);
    PolicyStore *s = g_new0(PolicyStore, 1);
    s->path = g_strdup(path);
    g_mutex_init(&s->lock);
    g_cond_init(&s->cond);
    int rc = sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "state database %s: %s", path,
                    s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        policy_store_close(s);
        return NULL;
    }
    /* Another process (sqlite3(1) in an admin's shell) may hold a lock for a moment. */
    sqlite3_busy_timeout(s->db, 2000);
    char *msg = NULL;
    if (sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "state database %s: %s", path,
                    msg ? msg : "cannot create the schema");
        sqlite3_free(msg);
        policy_store_close(s);
        return NULL;
    }
    for (int i = 0; i < Q_N_; i++) {
        if (sqlite3_prepare_v3(s->db, queries[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) !=
            SQLITE_OK) {
            db_fail(s, error, queries[i]);
            policy_store_close(s);
            return NULL;
        }
    }
    return s;
}

void policy_store_close(PolicyStore *s)
{
    if (s == NULL)
        return;
    if (s->ckpt != NULL) {
        g_mutex_lock(&s->lock);
        s->stop = TRUE;
        g_cond_signal(&s->cond);
        g_mutex_unlock(&s->lock);
        g_thread_join(s->ckpt);
    }
    g_mutex_clear(&s->lock);
    g_cond_clear(&s->cond);
    g_free(s->path);
    for (int i = 0; i < Q_N_; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    g_free(s);
}

static sqlite3_stmt *stmt(PolicyStore *s, int q)
{
    sqlite3_stmt *st = s->st[q];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v == NULL || *v == '\0')
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

static gboolean run(PolicyStore *s, sqlite3_stmt *st, GError **error)
{
    int rc = sqlite3_step(st);
    gboolean ok = rc == SQLITE_DONE || rc == SQLITE_ROW;
    if (!ok)
        db_fail(s, error, "write");
    sqlite3_reset(st);
    return ok;
}

gboolean policy_store_begin(PolicyStore *s, GError **error)
{
    return run(s, stmt(s, Q_BEGIN), error);
}

gboolean policy_store_commit(PolicyStore *s, GError **error)
{
    return run(s, stmt(s, Q_COMMIT), error);
}

void policy_store_rollback(PolicyStore *s)
{
    if (!sqlite3_get_autocommit(s->db))
        run(s, stmt(s, Q_ROLLBACK), NULL);
}

void policy_device_record_clear(PolicyDeviceRecord *r)
{
    g_free(r->serial);
    g_free(r->last_image);
    g_free(r->last_rule);
    memset(r, 0, sizeof(*r));
}

static const char *col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static void read_record(sqlite3_stmt *st, PolicyDeviceRecord *r)
{
    policy_device_record_clear(r);
    r->id = sqlite3_column_int64(st, 0);
    g_strlcpy(r->key, col(st, 1) ? col(st, 1) : "", sizeof(r->key));
    g_strlcpy(r->mac, col(st, 2) ? col(st, 2) : "", sizeof(r->mac));
    g_strlcpy(r->uuid, col(st, 3) ? col(st, 3) : "", sizeof(r->uuid));
    r->serial = g_strdup(col(st, 4));
    r->first_seen = sqlite3_column_int64(st, 5);
    r->last_seen = sqlite3_column_int64(st, 6);
    r->boot_count = sqlite3_column_int64(st, 7);
    r->just_imaged = sqlite3_column_int(st, 8) != 0;
    r->last_image = g_strdup(col(st, 9));
    r->last_rule = g_strdup(col(st, 10));
}

/* Steps a SELECT of DEVICE_COLS: TRUE with a row, FALSE at the end or on failure. */
static gboolean fetch(PolicyStore *s, sqlite3_stmt *st, PolicyDeviceRecord *out, GError **error)
{
    int rc = sqlite3_step(st);
    gboolean found = FALSE;
    if (rc == SQLITE_ROW) {
        if (out != NULL)
            read_record(st, out);
        found = TRUE;
    } else if (rc != SQLITE_DONE) {
        db_fail(s, error, "read");
    }
    sqlite3_reset(st);
    return found;
}

gboolean policy_store_find(PolicyStore *s, const PolicyDevice *d, PolicyDeviceRecord *out,
                           GError **error)
{
    sqlite3_stmt *st;
    GError *err = NULL;
    if (d->uuid[0]) {
        st = stmt(s, Q_FIND_UUID);
        bind_text(st, 1, d->uuid);
        if (fetch(s, st, out, &err))
            return TRUE;
        if (err != NULL)
            goto failed;
    }
    if (d->serial != NULL) {
        st = stmt(s, Q_FIND_SERIAL);
        bind_text(st, 1, d->serial);
        bind_text(st, 2, d->uuid);
        if (fetch(s, st, out, &err))
            return TRUE;
        if (err != NULL)
            goto failed;
    }
    if (d->mac[0]) {
        st = stmt(s, Q_FIND_MAC);
        bind_text(st, 1, d->mac);
        sqlite3_bind_int(st, 2, d->uuid[0] || d->serial != NULL);
        if (fetch(s, st, out, &err))
            return TRUE;
        if (err != NULL)
            goto failed;
    }
    return FALSE;
failed:
    g_propagate_error(error, err);
    return FALSE;
}

gboolean policy_store_find_key(PolicyStore *s, const char *key, PolicyDeviceRecord *out,
                               GError **error)
{
    sqlite3_stmt *st = stmt(s, Q_FIND_KEY);
    bind_text(st, 1, key);
    return fetch(s, st, out, error);
}

gboolean policy_store_record_boot(PolicyStore *s, const PolicyDevice *d, gint64 now,
                                  const char *rule, PolicyDeviceRecord *out, GError **error)
{
    PolicyDeviceRecord rec = {0};
    GError *err = NULL;
    gboolean found = policy_store_find(s, d, &rec, &err);
    if (err != NULL) {
        g_propagate_error(error, err);
        return FALSE;
    }
    sqlite3_stmt *st;
    gint64 id;
    if (found) {
        st = stmt(s, Q_UPDATE_SEEN);
        sqlite3_bind_int64(st, 1, rec.id);
        id = rec.id;
    } else {
        char key[128];
        if (!policy_device_identity(d, key, sizeof(key))) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "device has no MAC, UUID or serial");
            return FALSE;
        }
        st = stmt(s, Q_INSERT);
        bind_text(st, 1, key);
        id = 0;
    }
    bind_text(st, 2, d->mac);
    bind_text(st, 3, d->uuid);
    bind_text(st, 4, d->serial);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 6, 1);
    bind_text(st, 7, rule);
    policy_device_record_clear(&rec);
    if (!run(s, st, error))
        return FALSE;
    if (id == 0)
        id = sqlite3_last_insert_rowid(s->db);
    if (out != NULL) {
        st = stmt(s, Q_FIND_ID);
        sqlite3_bind_int64(st, 1, id);
        if (!fetch(s, st, out, error))
            return FALSE;
    }
    return TRUE;
}

gboolean policy_store_touch(PolicyStore *s, gint64 id, const PolicyDevice *d, gint64 now,
                            const char *rule, gboolean count_boot, GError **error)
{
    sqlite3_stmt *st = stmt(s, Q_UPDATE_SEEN);
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, d->mac);
    bind_text(st, 3, d->uuid);
    bind_text(st, 4, d->serial);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 6, count_boot ? 1 : 0);
    bind_text(st, 7, rule);
    return run(s, st, error);
}

gboolean policy_store_set_imaged(PolicyStore *s, gint64 id, const char *image, gboolean just_imaged,
                                 GError **error)
{
    sqlite3_stmt *st = stmt(s, Q_SET_IMAGED);
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, image);
    sqlite3_bind_int(st, 3, just_imaged);
    return run(s, st, error);
}

gboolean policy_store_clear_just_imaged(PolicyStore *s, gint64 id, GError **error)
{
    sqlite3_stmt *st = stmt(s, Q_CLEAR_JUST);
    sqlite3_bind_int64(st, 1, id);
    return run(s, st, error);
}

gboolean policy_store_assign(PolicyStore *s, const char *key, const PolicyWork *w, gint64 now,
                             GError **error)
{
    g_autofree char *text = policy_work_to_string(w);
    sqlite3_stmt *st = stmt(s, Q_ASSIGN);
    bind_text(st, 1, key);
    bind_text(st, 2, text);
    sqlite3_bind_int64(st, 3, now);
    return run(s, st, error);
}

gboolean policy_store_get_assignment(PolicyStore *s, const char *key, PolicyWork *out,
                                     GError **error)
{
    sqlite3_stmt *st = stmt(s, Q_GET_ASSIGN);
    bind_text(st, 1, key);
    int rc = sqlite3_step(st);
    gboolean found = FALSE;
    if (rc == SQLITE_ROW) {
        /* Written by policy_store_assign from a parsed work, so it parses; a hand-edited
         * database that does not is treated as no assignment. */
        found = policy_work_parse(col(st, 0), out, NULL);
    } else if (rc != SQLITE_DONE) {
        db_fail(s, error, "read");
    }
    sqlite3_reset(st);
    return found;
}

gboolean policy_store_delete_assignment(PolicyStore *s, const char *key, GError **error)
{
    sqlite3_stmt *st = stmt(s, Q_DEL_ASSIGN);
    bind_text(st, 1, key);
    return run(s, st, error);
}

gboolean policy_store_clear(PolicyStore *s, const char *key, guint *removed, GError **error)
{
    guint n = 0;
    if (!policy_store_delete_assignment(s, key, error))
        return FALSE;
    n += (guint)sqlite3_changes(s->db);
    PolicyDeviceRecord rec = {0};
    GError *err = NULL;
    if (policy_store_find_key(s, key, &rec, &err)) {
        char *msg = NULL;
        g_autofree char *sql =
            g_strdup_printf("DELETE FROM once_done WHERE device = %" G_GINT64_FORMAT ";", rec.id);
        if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "state database: %s", msg);
            sqlite3_free(msg);
            policy_device_record_clear(&rec);
            return FALSE;
        }
        n += (guint)sqlite3_changes(s->db);
        if (rec.just_imaged) {
            if (!policy_store_clear_just_imaged(s, rec.id, error)) {
                policy_device_record_clear(&rec);
                return FALSE;
            }
            n++;
        }
        policy_device_record_clear(&rec);
    } else if (err != NULL) {
        g_propagate_error(error, err);
        return FALSE;
    }
    if (removed != NULL)
        *removed = n;
    return TRUE;
}

gboolean policy_store_once_done(PolicyStore *s, gint64 id, const char *what, gboolean *done,
                                GError **error)
{
    sqlite3_stmt *st = stmt(s, Q_ONCE_DONE);
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, what);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(s, error, "read");
    *done = rc == SQLITE_ROW;
    return TRUE;
}

gboolean policy_store_mark_once(PolicyStore *s, gint64 id, const char *what, gint64 now,
                                GError **error)
{
    sqlite3_stmt *st = stmt(s, Q_MARK_ONCE);
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, what);
    sqlite3_bind_int64(st, 3, now);
    return run(s, st, error);
}

gboolean policy_store_foreach(PolicyStore *s, guint limit, PolicyDeviceFn fn, gpointer data,
                              GError **error)
{
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT d.id, d.key, d.mac, d.uuid, d.serial, d.first_seen, d.last_seen, "
                      "d.boot_count, d.just_imaged, d.last_image, d.last_rule, "
                      "(SELECT work FROM assignments a WHERE a.key = d.key "
                      "   OR a.key = 'mac:' || d.mac OR a.key = 'uuid:' || d.uuid "
                      "   OR a.key = 'serial:' || d.serial LIMIT 1) "
                      "FROM devices d ORDER BY d.last_seen DESC, d.id DESC LIMIT ?1";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, error, "list");
    sqlite3_bind_int64(st, 1, limit ? (gint64)limit : -1);
    int rc;
    PolicyDeviceRecord rec = {0};
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_record(st, &rec);
        fn(&rec, col(st, 11), data);
    }
    policy_device_record_clear(&rec);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, error, "list");
    return TRUE;
}

gboolean policy_store_foreach_assignment(PolicyStore *s,
                                         void (*fn)(const char *key, const char *work,
                                                    gpointer data),
                                         gpointer data, GError **error)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT key, work FROM assignments ORDER BY key", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, error, "list");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(col(st, 0), col(st, 1), data);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, error, "list");
    return TRUE;
}

gint64 policy_store_count_devices(PolicyStore *s)
{
    sqlite3_stmt *st = NULL;
    gint64 n = -1;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM devices", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Checkpoints copy the WAL back into the database and fsync it: tens of milliseconds on a
 * busy disk. Done by SQLite inside a COMMIT now and then, that lands in the middle of a
 * decision; done here, on a thread with its own connection, a PASSIVE checkpoint runs beside
 * the writer without blocking it (sqlite.org/wal.html#ckpt). */
static gpointer checkpointer(gpointer data)
{
    PolicyStore *s = data;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 100);
    g_mutex_lock(&s->lock);
    while (!s->stop) {
        gint64 until = g_get_monotonic_time() + (gint64)s->interval_ms * 1000;
        g_cond_wait_until(&s->cond, &s->lock, until);
        if (s->stop)
            break;
        g_mutex_unlock(&s->lock);
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        g_mutex_lock(&s->lock);
    }
    g_mutex_unlock(&s->lock);
    /* a last full checkpoint so a clean stop leaves a small WAL */
    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    sqlite3_close(db);
    return NULL;
}

gboolean policy_store_start_checkpointer(PolicyStore *s, guint interval_ms, GError **error)
{
    g_return_val_if_fail(s != NULL && s->ckpt == NULL, FALSE);
    if (strcmp(s->path, ":memory:") == 0 || g_str_has_prefix(s->path, "file::memory:"))
        return TRUE;
    char *msg = NULL;
    if (sqlite3_exec(s->db, "PRAGMA wal_autocheckpoint = 0;", NULL, NULL, &msg) != SQLITE_OK) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "state database: %s", msg);
        sqlite3_free(msg);
        return FALSE;
    }
    s->interval_ms = MAX(interval_ms, 10);
    s->ckpt = g_thread_try_new("policy-checkpoint", checkpointer, s, error);
    if (s->ckpt == NULL) {
        sqlite3_exec(s->db, "PRAGMA wal_autocheckpoint = 1000;", NULL, NULL, NULL);
        return FALSE;
    }
    return TRUE;
}
