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
 * last few transactions but never corrupts the database (sqlite.org/wal.html).
 *
 * Two kinds of writes, on purpose:
 *
 * - What changes a later answer is written synchronously, in the caller's transaction,
 *   before the answer goes out: one-shot work done (once_done), an assignment consumed,
 *   just-imaged marks and the last image (policy_store_persist() first writes the device's
 *   record so those rows have a row id to refer to).
 *
 * - The bookkeeping of every boot (a new device's record, last_seen, boot_count, last_rule,
 *   identifiers learnt later) is not: it goes to an in-memory overlay (Pend below) that every
 *   read consults, and is written in batches, many devices per transaction, by
 *   policy_store_flush() (the plugin calls it every 200 ms and on stop, reload and destroy;
 *   it also starts by itself when FLUSH_PENDING devices wait) on the writer thread's own
 *   connection. A committed SQLite transaction costs 100-200 us of WAL writes; made once per
 *   request it capped proxydhcp's port-4011 path near 2,800 answers/s (doc/benchmarks.md).
 *   The price, and the only one: a kill -9 or a crash loses the bookkeeping noted since the
 *   last batch was committed (the batch being written, if any, and what was noted after it
 *   was handed over: normally under half a second of boots). A device first seen then is
 *   unknown again and recorded anew at its next boot; the others' last_seen and boot counts
 *   are older. None of that changes what a device is told to do: every write that does is
 *   of the first kind, and carries the device's record with it. man/preboot-policy.8.in
 *   says the same to administrators. */
#include "policy-store.h"

#include <sqlite3.h>
#include <string.h>

/* Devices waiting for a flush before it starts by itself (the timer usually comes first). */
#define FLUSH_PENDING 1024

enum {
    Q_FIND_UUID,
    Q_FIND_SERIAL,
    Q_FIND_MAC,
    Q_FIND_ID,
    Q_INSERT,
    Q_UPDATE_SEEN,
    Q_UPDATE_TIMES,
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

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *st[Q_N_];
} Conn;

/* A device whose bookkeeping is not written yet: the record as it reads now. */
typedef struct {
    gint64 id;      /* its row id, given out by the store before the row exists */
    gboolean in_db; /* the row exists (else the flush inserts it) */
    char key[128];
    char mac[24];
    char uuid[40];
    char *serial;
    gint64 first_seen, last_seen, boot_count;
    char *last_rule;
    gint64 boots_added; /* boots not written yet */
    guint64 gen;        /* bumped at every change */
    guint64 ids_gen;    /* gen when mac/uuid/serial last changed */
    guint64 written;    /* gen of its last write */
} Pend;

/* One device of a batch: a copy, so the writer thread shares nothing with the main one. */
typedef struct {
    Pend *pend; /* for the main thread only, at reconcile time */
    guint64 gen;
    gint64 id;
    gboolean in_db, ids_changed, dropped;
    char key[128], mac[24], uuid[40];
    char *serial, *last_rule;
    gint64 first_seen, last_seen, boot_count, boots_added;
} Row;

typedef struct {
    GArray *rows;
    gboolean done; /* set by the writer, under PolicyStore.lock */
    gboolean ok;
    guint dropped; /* rows refused by a constraint (another process wrote the same device) */
    char *error;
} Batch;

struct PolicyStore {
    Conn main;
    char *path;
    /* the overlay: id -> Pend (owned); uuid -> Pend; serial, mac -> GPtrArray of Pend */
    GHashTable *pend, *by_uuid, *by_serial, *by_mac;
    gint64 next_id; /* the last device id given out */
    guint64 gen;
    GPtrArray *txn_written; /* Pends persisted in the open transaction */
    char *flush_error;      /* the last failed batch, until reported */
    /* the writer thread (policy_store_start_writer): batches and WAL checkpoints */
    GThread *thread;
    Conn writer;
    GMutex lock;
    GCond cond;
    gboolean stop;
    guint interval_ms;
    Batch *batch; /* handed over, until reconciled */
};

#define DEVICE_COLS                                                                            \
    "id, key, mac, uuid, serial, first_seen, last_seen, boot_count, just_imaged, last_image, " \
    "last_rule"

static const char *const queries[Q_N_] = {
    [Q_FIND_UUID] = "SELECT " DEVICE_COLS " FROM devices WHERE uuid = ?1",
    [Q_FIND_SERIAL] = "SELECT " DEVICE_COLS " FROM devices WHERE serial = ?1 "
                      "AND (uuid IS NULL OR ?2 IS NULL) ORDER BY last_seen DESC",
    /* A MAC identifies a machine only when nothing better does: a record that has a UUID or
     * serial of its own belongs to that machine, and only a request without either may
     * borrow it (docks and USB adapters move MACs around). */
    [Q_FIND_MAC] = "SELECT " DEVICE_COLS " FROM devices WHERE mac = ?1 "
                   "AND ((uuid IS NULL AND serial IS NULL) OR ?2 = 0) "
                   "ORDER BY last_seen DESC",
    [Q_FIND_ID] = "SELECT " DEVICE_COLS " FROM devices WHERE id = ?1",
    /* ids are given out by the store (PolicyStore.next_id), so a device has the same id in
     * the overlay and in the table */
    [Q_INSERT] = "INSERT INTO devices (id, key, mac, uuid, serial, first_seen, last_seen, "
                 "boot_count, just_imaged, last_rule) "
                 "VALUES (?1, ?8, ?2, ?3, ?4, ?9, ?5, ?6, 0, ?7)",
    [Q_UPDATE_SEEN] = "UPDATE devices SET mac = coalesce(?2, mac), uuid = coalesce(?3, uuid), "
                      "serial = coalesce(?4, serial), last_seen = ?5, "
                      "boot_count = boot_count + ?6, last_rule = coalesce(?7, last_rule) "
                      "WHERE id = ?1",
    /* the same without the indexed columns, when they did not change: no index churn */
    [Q_UPDATE_TIMES] = "UPDATE devices SET last_seen = ?5, boot_count = boot_count + ?6, "
                       "last_rule = coalesce(?7, last_rule) WHERE id = ?1",
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

static gboolean conn_fail(sqlite3 *db, GError **error, const char *what)
{
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "state database: %s: %s", what,
                sqlite3_errmsg(db));
    return FALSE;
}

static gboolean db_fail(PolicyStore *s, GError **error, const char *what)
{
    return conn_fail(s->main.db, error, what);
}

static void conn_close(Conn *c)
{
    for (int i = 0; i < Q_N_; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    memset(c, 0, sizeof(*c));
}

static gboolean conn_open(Conn *c, const char *path, const char *extra, GError **error)
{
    int rc = sqlite3_open_v2(
        path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "state database %s: %s", path,
                    c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        return FALSE;
    }
    /* Another process (sqlite3(1) in an admin's shell) may hold a lock for a moment. */
    sqlite3_busy_timeout(c->db, 2000);
    char *msg = NULL;
    if (sqlite3_exec(c->db, schema, NULL, NULL, &msg) != SQLITE_OK ||
        (extra != NULL && sqlite3_exec(c->db, extra, NULL, NULL, &msg) != SQLITE_OK)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "state database %s: %s", path,
                    msg ? msg : "cannot create the schema");
        sqlite3_free(msg);
        return FALSE;
    }
    for (int i = 0; i < Q_N_; i++) {
        if (sqlite3_prepare_v3(c->db, queries[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL) !=
            SQLITE_OK)
            return conn_fail(c->db, error, queries[i]);
    }
    return TRUE;
}

static void pend_free(gpointer data)
{
    Pend *e = data;
    g_free(e->serial);
    g_free(e->last_rule);
    g_free(e);
}

PolicyStore *policy_store_open(const char *path, GError **error)
{
    g_return_val_if_fail(path != NULL, NULL);
    PolicyStore *s = g_new0(PolicyStore, 1);
    s->path = g_strdup(path);
    g_mutex_init(&s->lock);
    g_cond_init(&s->cond);
    s->pend = g_hash_table_new(g_int64_hash, g_int64_equal);
    s->by_uuid =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
    s->by_serial =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
    s->by_mac =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
    s->txn_written = g_ptr_array_new_with_free_func(pend_free);
    if (!conn_open(&s->main, path, NULL, error)) {
        policy_store_close(s);
        return NULL;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->main.db, "SELECT coalesce(max(id), 0) FROM devices", -1, &st, NULL) !=
            SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        db_fail(s, error, "max(id)");
        sqlite3_finalize(st);
        policy_store_close(s);
        return NULL;
    }
    s->next_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return s;
}

static sqlite3_stmt *cstmt(Conn *c, int q)
{
    sqlite3_stmt *st = c->st[q];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static sqlite3_stmt *stmt(PolicyStore *s, int q)
{
    return cstmt(&s->main, q);
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

/* ---- the overlay of unwritten bookkeeping ------------------------------------------------ */

static void idx_add(GHashTable *idx, const char *k, Pend *e)
{
    if (k == NULL || *k == '\0')
        return;
    GPtrArray *a = g_hash_table_lookup(idx, k);
    if (a == NULL) {
        a = g_ptr_array_new();
        g_hash_table_insert(idx, g_strdup(k), a);
    }
    g_ptr_array_add(a, e);
}

static void idx_del(GHashTable *idx, const char *k, Pend *e)
{
    if (k == NULL || *k == '\0')
        return;
    GPtrArray *a = g_hash_table_lookup(idx, k);
    if (a == NULL)
        return;
    g_ptr_array_remove_fast(a, e);
    if (a->len == 0)
        g_hash_table_remove(idx, k);
}

static void pend_attach(PolicyStore *s, Pend *e)
{
    g_hash_table_insert(s->pend, &e->id, e);
    idx_add(s->by_uuid, e->uuid, e);
    idx_add(s->by_serial, e->serial, e);
    idx_add(s->by_mac, e->mac, e);
}

static void pend_detach(PolicyStore *s, Pend *e)
{
    g_hash_table_remove(s->pend, &e->id);
    idx_del(s->by_uuid, e->uuid, e);
    idx_del(s->by_serial, e->serial, e);
    idx_del(s->by_mac, e->mac, e);
}

static void row_clear(Row *r)
{
    g_free(r->serial);
    g_free(r->last_rule);
}

static void row_from(Row *r, Pend *e)
{
    memset(r, 0, sizeof(*r));
    r->pend = e;
    r->gen = e->gen;
    r->id = e->id;
    r->in_db = e->in_db;
    r->ids_changed = e->ids_gen > e->written;
    memcpy(r->key, e->key, sizeof(r->key));
    memcpy(r->mac, e->mac, sizeof(r->mac));
    memcpy(r->uuid, e->uuid, sizeof(r->uuid));
    r->serial = g_strdup(e->serial);
    r->last_rule = g_strdup(e->last_rule);
    r->first_seen = e->first_seen;
    r->last_seen = e->last_seen;
    r->boot_count = e->boot_count;
    r->boots_added = e->boots_added;
}

/* Writes one device: its row if it has none yet, else what changed. An sqlite3 result code. */
static int write_row(Conn *c, const Row *r)
{
    sqlite3_stmt *st = cstmt(c, !r->in_db        ? Q_INSERT
                                : r->ids_changed ? Q_UPDATE_SEEN
                                                 : Q_UPDATE_TIMES);
    sqlite3_bind_int64(st, 1, r->id);
    bind_text(st, 2, r->mac);
    bind_text(st, 3, r->uuid);
    bind_text(st, 4, r->serial);
    sqlite3_bind_int64(st, 5, r->last_seen);
    sqlite3_bind_int64(st, 6, r->in_db ? r->boots_added : r->boot_count);
    bind_text(st, 7, r->last_rule);
    if (!r->in_db) {
        bind_text(st, 8, r->key);
        sqlite3_bind_int64(st, 9, r->first_seen);
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc;
}

/* One transaction for the whole batch; on the writer thread's connection, or the main one when
 * there is no writer thread. Touches nothing but the batch and the connection. */
static void write_batch(Conn *c, Batch *b)
{
    b->ok = FALSE;
    int rc = sqlite3_step(cstmt(c, Q_BEGIN));
    sqlite3_reset(c->st[Q_BEGIN]);
    if (rc != SQLITE_DONE)
        goto failed;
    for (guint i = 0; i < b->rows->len; i++) {
        Row *r = &g_array_index(b->rows, Row, i);
        rc = write_row(c, r);
        if (rc == SQLITE_DONE)
            continue;
        if ((rc & 0xff) != SQLITE_CONSTRAINT)
            goto failed;
        /* e.g. the UUID is already another row's: this device's bookkeeping is dropped */
        r->dropped = TRUE;
        b->dropped++;
        if (b->error == NULL)
            b->error = g_strdup(sqlite3_errmsg(c->db));
    }
    rc = sqlite3_step(cstmt(c, Q_COMMIT));
    sqlite3_reset(c->st[Q_COMMIT]);
    if (rc != SQLITE_DONE)
        goto failed;
    b->ok = TRUE;
    return;
failed:
    g_free(b->error);
    b->error = g_strdup(sqlite3_errmsg(c->db));
    if (!sqlite3_get_autocommit(c->db)) {
        sqlite3_step(cstmt(c, Q_ROLLBACK));
        sqlite3_reset(c->st[Q_ROLLBACK]);
    }
}

static void batch_free(Batch *b)
{
    for (guint i = 0; i < b->rows->len; i++)
        row_clear(&g_array_index(b->rows, Row, i));
    g_array_unref(b->rows);
    g_free(b->error);
    g_free(b);
}

/* Main thread, once the batch is written: what was written leaves the overlay, unless it
 * changed meanwhile (then only the boots written are taken off). */
static void reconcile(PolicyStore *s, Batch *b)
{
    if (!b->ok) {
        g_free(s->flush_error);
        s->flush_error = g_strdup_printf("writing %u device record(s): %s", b->rows->len,
                                         b->error ? b->error : "failed");
        return; /* all stay in the overlay and are tried again */
    }
    if (b->dropped) {
        g_free(s->flush_error);
        s->flush_error = g_strdup_printf("%u device record(s) not written: %s", b->dropped,
                                         b->error ? b->error : "constraint");
    }
    for (guint i = 0; i < b->rows->len; i++) {
        Row *r = &g_array_index(b->rows, Row, i);
        Pend *e = r->pend;
        if (!r->dropped) {
            e->in_db = TRUE;
            e->boots_added -= r->in_db ? r->boots_added : r->boot_count;
        }
        e->written = r->gen;
        if (e->gen == r->gen) {
            pend_detach(s, e);
            pend_free(e);
        }
    }
}

/* Takes back a batch the writer has finished (waiting for it if wait). */
static void collect(PolicyStore *s, gboolean wait)
{
    if (s->batch == NULL)
        return;
    g_mutex_lock(&s->lock);
    while (wait && !s->batch->done)
        g_cond_wait(&s->cond, &s->lock);
    Batch *b = s->batch->done ? s->batch : NULL;
    if (b != NULL)
        s->batch = NULL;
    g_mutex_unlock(&s->lock);
    if (b != NULL) {
        reconcile(s, b);
        batch_free(b);
    }
}

/* Hands what the overlay holds to the writer (or writes it here without one). Never while the
 * main connection is in a transaction: it holds the write lock the writer would wait for. */
static void start_flush(PolicyStore *s)
{
    collect(s, FALSE);
    if (s->batch != NULL || g_hash_table_size(s->pend) == 0 || !sqlite3_get_autocommit(s->main.db))
        return;
    Batch *b = g_new0(Batch, 1);
    b->rows = g_array_sized_new(FALSE, FALSE, sizeof(Row), g_hash_table_size(s->pend));
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, s->pend);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        Pend *e = v;
        if (e->gen <= e->written)
            continue;
        Row r;
        row_from(&r, e);
        g_array_append_val(b->rows, r);
    }
    if (b->rows->len == 0) {
        batch_free(b);
        return;
    }
    if (s->thread == NULL) {
        write_batch(&s->main, b);
        b->done = TRUE;
    }
    g_mutex_lock(&s->lock);
    s->batch = b;
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
    if (s->thread == NULL)
        collect(s, FALSE);
}

/* Everything in the overlay written (unless in a transaction), for the readers that go to
 * SQL alone: listings, counts, lookups by key. */
static void sync_all(PolicyStore *s)
{
    collect(s, TRUE);
    start_flush(s);
    collect(s, TRUE);
}

gboolean policy_store_flush(PolicyStore *s, gboolean wait, GError **error)
{
    g_return_val_if_fail(s != NULL, FALSE);
    if (wait)
        sync_all(s);
    else
        start_flush(s);
    if (s->flush_error != NULL) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "state database: %s", s->flush_error);
        g_clear_pointer(&s->flush_error, g_free);
        return FALSE;
    }
    return TRUE;
}

guint policy_store_pending(PolicyStore *s)
{
    return g_hash_table_size(s->pend);
}

void policy_store_close(PolicyStore *s)
{
    if (s == NULL)
        return;
    if (s->main.db != NULL) {
        policy_store_rollback(s);
        sync_all(s);
    }
    if (s->thread != NULL) {
        g_mutex_lock(&s->lock);
        s->stop = TRUE;
        g_cond_broadcast(&s->cond);
        g_mutex_unlock(&s->lock);
        g_thread_join(s->thread);
        conn_close(&s->writer);
    }
    if (s->batch != NULL)
        batch_free(s->batch);
    if (s->pend != NULL) {
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, s->pend);
        while (g_hash_table_iter_next(&it, NULL, &v))
            pend_free(v);
        g_hash_table_destroy(s->pend);
    }
    g_clear_pointer(&s->by_uuid, g_hash_table_destroy);
    g_clear_pointer(&s->by_serial, g_hash_table_destroy);
    g_clear_pointer(&s->by_mac, g_hash_table_destroy);
    g_clear_pointer(&s->txn_written, g_ptr_array_unref);
    g_free(s->flush_error);
    g_mutex_clear(&s->lock);
    g_cond_clear(&s->cond);
    g_free(s->path);
    conn_close(&s->main);
    g_free(s);
}

/* ---- transactions ------------------------------------------------------------------------- */

gboolean policy_store_begin(PolicyStore *s, GError **error)
{
    /* A batch in flight holds (or is about to take) the write lock: let it finish rather than
     * sleep in SQLite's busy handler. */
    collect(s, TRUE);
    return run(s, stmt(s, Q_BEGIN), error);
}

gboolean policy_store_commit(PolicyStore *s, GError **error)
{
    if (!run(s, stmt(s, Q_COMMIT), error))
        return FALSE;
    g_ptr_array_set_size(s->txn_written, 0); /* written for good: out of the overlay */
    return TRUE;
}

void policy_store_rollback(PolicyStore *s)
{
    if (!sqlite3_get_autocommit(s->main.db))
        run(s, stmt(s, Q_ROLLBACK), NULL);
    /* what policy_store_persist() wrote is unwritten again: back to the overlay */
    for (guint i = 0; i < s->txn_written->len; i++)
        pend_attach(s, g_ptr_array_index(s->txn_written, i));
    g_ptr_array_set_free_func(s->txn_written, NULL);
    g_ptr_array_set_size(s->txn_written, 0);
    g_ptr_array_set_free_func(s->txn_written, pend_free);
}

/* ---- reading --------------------------------------------------------------------------- */

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

/* The record of an overlay device: the overlay's bookkeeping over the row's marks. */
static gboolean record_from_pend(PolicyStore *s, const Pend *e, PolicyDeviceRecord *out,
                                 GError **error)
{
    policy_device_record_clear(out);
    if (e->in_db) {
        GError *err = NULL;
        sqlite3_stmt *st = stmt(s, Q_FIND_ID);
        sqlite3_bind_int64(st, 1, e->id);
        fetch(s, st, out, &err);
        if (err != NULL) {
            g_propagate_error(error, err);
            return FALSE;
        }
    }
    out->id = e->id;
    memcpy(out->key, e->key, sizeof(out->key));
    memcpy(out->mac, e->mac, sizeof(out->mac));
    memcpy(out->uuid, e->uuid, sizeof(out->uuid));
    g_free(out->serial);
    out->serial = g_strdup(e->serial);
    out->first_seen = e->first_seen;
    out->last_seen = e->last_seen;
    out->boot_count = e->boot_count;
    if (e->last_rule != NULL) {
        g_free(out->last_rule);
        out->last_rule = g_strdup(e->last_rule);
    }
    return TRUE;
}

/* The SQL queries' conditions, on an overlay device. */
static gboolean pend_matches(const Pend *e, const PolicyDevice *d, int q)
{
    switch (q) {
    case Q_FIND_UUID:
        return d->uuid[0] && strcmp(e->uuid, d->uuid) == 0;
    case Q_FIND_SERIAL:
        return d->serial != NULL && g_strcmp0(e->serial, d->serial) == 0 &&
               (!e->uuid[0] || !d->uuid[0]);
    default:
        return d->mac[0] && strcmp(e->mac, d->mac) == 0 &&
               ((!e->uuid[0] && e->serial == NULL) || (!d->uuid[0] && d->serial == NULL));
    }
}

/* One way of finding a device (q: Q_FIND_UUID, _SERIAL or _MAC) over the overlay and the
 * table: the most recently seen match, the overlay's version of a device standing for its row.
 * 1 found, 0 not, -1 failed. */
static int find_by(PolicyStore *s, const PolicyDevice *d, int q, PolicyDeviceRecord *out,
                   GError **error)
{
    GHashTable *idx = q == Q_FIND_UUID ? s->by_uuid : q == Q_FIND_SERIAL ? s->by_serial : s->by_mac;
    const char *v = q == Q_FIND_UUID ? d->uuid : q == Q_FIND_SERIAL ? d->serial : d->mac;
    const Pend *best = NULL;
    GPtrArray *a = g_hash_table_lookup(idx, v);
    for (guint i = 0; a != NULL && i < a->len; i++) {
        const Pend *e = g_ptr_array_index(a, i);
        if (pend_matches(e, d, q) && (best == NULL || e->last_seen > best->last_seen))
            best = e;
    }
    sqlite3_stmt *st = stmt(s, q);
    bind_text(st, 1, v);
    if (q == Q_FIND_SERIAL)
        bind_text(st, 2, d->uuid);
    else if (q == Q_FIND_MAC)
        sqlite3_bind_int(st, 2, d->uuid[0] || d->serial != NULL);
    int rc;
    gboolean from_sql = FALSE;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gint64 id = sqlite3_column_int64(st, 0);
        if (g_hash_table_contains(s->pend, &id))
            continue; /* the overlay's version, weighed above */
        if (best == NULL || sqlite3_column_int64(st, 6) > best->last_seen) {
            if (out != NULL)
                read_record(st, out);
            from_sql = TRUE;
        }
        break; /* most recent first: the rest are older */
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_fail(s, error, "read");
        return -1;
    }
    if (from_sql)
        return 1;
    if (best == NULL)
        return 0;
    if (out != NULL && !record_from_pend(s, best, out, error))
        return -1;
    return 1;
}

gboolean policy_store_find(PolicyStore *s, const PolicyDevice *d, PolicyDeviceRecord *out,
                           GError **error)
{
    static const int order[] = {Q_FIND_UUID, Q_FIND_SERIAL, Q_FIND_MAC};
    for (gsize i = 0; i < G_N_ELEMENTS(order); i++) {
        if (order[i] == Q_FIND_UUID && !d->uuid[0])
            continue;
        if (order[i] == Q_FIND_SERIAL && d->serial == NULL)
            continue;
        if (order[i] == Q_FIND_MAC && !d->mac[0])
            continue;
        int r = find_by(s, d, order[i], out, error);
        if (r != 0)
            return r > 0;
    }
    return FALSE;
}

gboolean policy_store_find_key(PolicyStore *s, const char *key, PolicyDeviceRecord *out,
                               GError **error)
{
    sync_all(s);
    sqlite3_stmt *st = stmt(s, Q_FIND_KEY);
    bind_text(st, 1, key);
    return fetch(s, st, out, error);
}

/* ---- writing ------------------------------------------------------------------------------ */

static Pend *note(PolicyStore *s, const PolicyDeviceRecord *known, const PolicyDevice *d,
                  gint64 now, const char *rule, gboolean count_boot, GError **error)
{
    Pend *e = known != NULL ? g_hash_table_lookup(s->pend, &known->id) : NULL;
    if (e == NULL) {
        e = g_new0(Pend, 1);
        if (known != NULL) {
            e->id = known->id;
            e->in_db = TRUE;
            memcpy(e->key, known->key, sizeof(e->key));
            memcpy(e->mac, known->mac, sizeof(e->mac));
            memcpy(e->uuid, known->uuid, sizeof(e->uuid));
            e->serial = g_strdup(known->serial);
            e->first_seen = known->first_seen;
            e->last_seen = known->last_seen;
            e->boot_count = known->boot_count;
            e->last_rule = g_strdup(known->last_rule);
        } else {
            if (!policy_device_identity(d, e->key, sizeof(e->key))) {
                g_free(e);
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                            "device has no MAC, UUID or serial");
                return NULL;
            }
            e->id = ++s->next_id;
            e->first_seen = now;
            count_boot = TRUE;
        }
        pend_attach(s, e);
    }
    e->gen = ++s->gen;
    /* identifiers learnt: as coalesce() in Q_UPDATE_SEEN */
    if (d->mac[0] && strcmp(e->mac, d->mac) != 0) {
        idx_del(s->by_mac, e->mac, e);
        g_strlcpy(e->mac, d->mac, sizeof(e->mac));
        idx_add(s->by_mac, e->mac, e);
        e->ids_gen = e->gen;
    }
    if (d->uuid[0] && strcmp(e->uuid, d->uuid) != 0) {
        idx_del(s->by_uuid, e->uuid, e);
        g_strlcpy(e->uuid, d->uuid, sizeof(e->uuid));
        idx_add(s->by_uuid, e->uuid, e);
        e->ids_gen = e->gen;
    }
    if (d->serial != NULL && g_strcmp0(e->serial, d->serial) != 0) {
        idx_del(s->by_serial, e->serial, e);
        g_free(e->serial);
        e->serial = g_strdup(d->serial);
        idx_add(s->by_serial, e->serial, e);
        e->ids_gen = e->gen;
    }
    e->last_seen = now;
    if (count_boot) {
        e->boot_count++;
        e->boots_added++;
    }
    if (rule != NULL && *rule != '\0' && g_strcmp0(e->last_rule, rule) != 0) {
        g_free(e->last_rule);
        e->last_rule = g_strdup(rule);
    }
    return e;
}

gboolean policy_store_note_boot(PolicyStore *s, const PolicyDeviceRecord *known,
                                const PolicyDevice *d, gint64 now, const char *rule,
                                gboolean count_boot, gint64 *id, GError **error)
{
    g_return_val_if_fail(s != NULL && d != NULL, FALSE);
    Pend *e = note(s, known, d, now, rule, count_boot, error);
    if (e == NULL)
        return FALSE;
    if (id != NULL)
        *id = e->id;
    if (g_hash_table_size(s->pend) >= FLUSH_PENDING)
        start_flush(s);
    return TRUE;
}

gboolean policy_store_persist(PolicyStore *s, gint64 id, GError **error)
{
    collect(s, TRUE); /* a batch in flight may hold this device: let it land first */
    Pend *e = g_hash_table_lookup(s->pend, &id);
    if (e == NULL)
        return TRUE;
    Row r;
    row_from(&r, e);
    int rc = write_row(&s->main, &r);
    row_clear(&r);
    if (rc != SQLITE_DONE)
        return db_fail(s, error, "write");
    pend_detach(s, e);
    if (sqlite3_get_autocommit(s->main.db))
        pend_free(e);
    else
        g_ptr_array_add(s->txn_written, e); /* out for good at commit, back at rollback */
    return TRUE;
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
    Pend *e = note(s, found ? &rec : NULL, d, now, rule, TRUE, error);
    policy_device_record_clear(&rec);
    if (e == NULL)
        return FALSE;
    gint64 id = e->id;
    if (!policy_store_persist(s, id, error))
        return FALSE;
    if (out != NULL) {
        sqlite3_stmt *st = stmt(s, Q_FIND_ID);
        sqlite3_bind_int64(st, 1, id);
        if (!fetch(s, st, out, error))
            return FALSE;
    }
    return TRUE;
}

gboolean policy_store_set_imaged(PolicyStore *s, gint64 id, const char *image, gboolean just_imaged,
                                 GError **error)
{
    if (!policy_store_persist(s, id, error))
        return FALSE;
    sqlite3_stmt *st = stmt(s, Q_SET_IMAGED);
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, image);
    sqlite3_bind_int(st, 3, just_imaged);
    return run(s, st, error);
}

gboolean policy_store_clear_just_imaged(PolicyStore *s, gint64 id, GError **error)
{
    if (!policy_store_persist(s, id, error))
        return FALSE;
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
    n += (guint)sqlite3_changes(s->main.db);
    PolicyDeviceRecord rec = {0};
    GError *err = NULL;
    if (policy_store_find_key(s, key, &rec, &err)) {
        char *msg = NULL;
        g_autofree char *sql =
            g_strdup_printf("DELETE FROM once_done WHERE device = %" G_GINT64_FORMAT ";", rec.id);
        if (sqlite3_exec(s->main.db, sql, NULL, NULL, &msg) != SQLITE_OK) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "state database: %s", msg);
            sqlite3_free(msg);
            policy_device_record_clear(&rec);
            return FALSE;
        }
        n += (guint)sqlite3_changes(s->main.db);
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
    if (!policy_store_persist(s, id, error))
        return FALSE;
    sqlite3_stmt *st = stmt(s, Q_MARK_ONCE);
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, what);
    sqlite3_bind_int64(st, 3, now);
    return run(s, st, error);
}

gboolean policy_store_foreach(PolicyStore *s, guint limit, PolicyDeviceFn fn, gpointer data,
                              GError **error)
{
    sync_all(s); /* the listing is SQL's: the overlay written first */
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT d.id, d.key, d.mac, d.uuid, d.serial, d.first_seen, d.last_seen, "
                      "d.boot_count, d.just_imaged, d.last_image, d.last_rule, "
                      "(SELECT work FROM assignments a WHERE a.key = d.key "
                      "   OR a.key = 'mac:' || d.mac OR a.key = 'uuid:' || d.uuid "
                      "   OR a.key = 'serial:' || d.serial LIMIT 1) "
                      "FROM devices d ORDER BY d.last_seen DESC, d.id DESC LIMIT ?1";
    if (sqlite3_prepare_v2(s->main.db, sql, -1, &st, NULL) != SQLITE_OK)
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
    if (sqlite3_prepare_v2(s->main.db, "SELECT key, work FROM assignments ORDER BY key", -1, &st,
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
    sync_all(s);
    sqlite3_stmt *st = NULL;
    gint64 n = -1;
    if (sqlite3_prepare_v2(s->main.db, "SELECT count(*) FROM devices", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Checkpoints copy the WAL back into the database and fsync it: tens of milliseconds on a
 * busy disk. Done by SQLite inside a COMMIT now and then, that lands in the middle of a
 * decision; done here, on the writer thread with its own connection, a PASSIVE checkpoint
 * runs beside the main connection without blocking it (sqlite.org/wal.html#ckpt). The same
 * thread writes the batches of bookkeeping handed over by start_flush(). */
static gpointer writer_main(gpointer data)
{
    PolicyStore *s = data;
    gint64 next = g_get_monotonic_time() + (gint64)s->interval_ms * 1000;
    g_mutex_lock(&s->lock);
    for (;;) {
        if (s->batch != NULL && !s->batch->done) {
            Batch *b = s->batch;
            g_mutex_unlock(&s->lock);
            write_batch(&s->writer, b);
            g_mutex_lock(&s->lock);
            b->done = TRUE;
            g_cond_broadcast(&s->cond);
            continue;
        }
        if (s->stop)
            break;
        if (g_get_monotonic_time() >= next) {
            g_mutex_unlock(&s->lock);
            sqlite3_wal_checkpoint_v2(s->writer.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
            g_mutex_lock(&s->lock);
            next = g_get_monotonic_time() + (gint64)s->interval_ms * 1000;
            continue;
        }
        g_cond_wait_until(&s->cond, &s->lock, next);
    }
    g_mutex_unlock(&s->lock);
    /* a last checkpoint so a clean stop leaves a small WAL */
    sqlite3_wal_checkpoint_v2(s->writer.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return NULL;
}

gboolean policy_store_start_writer(PolicyStore *s, guint interval_ms, GError **error)
{
    g_return_val_if_fail(s != NULL && s->thread == NULL, FALSE);
    if (strcmp(s->path, ":memory:") == 0 || g_str_has_prefix(s->path, "file::memory:"))
        return TRUE; /* no second connection to it: batches are written on the main one */
    char *msg = NULL;
    if (sqlite3_exec(s->main.db, "PRAGMA wal_autocheckpoint = 0;", NULL, NULL, &msg) != SQLITE_OK) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "state database: %s", msg);
        sqlite3_free(msg);
        return FALSE;
    }
    if (!conn_open(&s->writer, s->path, "PRAGMA wal_autocheckpoint = 0;", error)) {
        conn_close(&s->writer);
        sqlite3_exec(s->main.db, "PRAGMA wal_autocheckpoint = 1000;", NULL, NULL, NULL);
        return FALSE;
    }
    s->interval_ms = MAX(interval_ms, 10);
    s->thread = g_thread_try_new("policy-writer", writer_main, s, error);
    if (s->thread == NULL) {
        conn_close(&s->writer);
        sqlite3_exec(s->main.db, "PRAGMA wal_autocheckpoint = 1000;", NULL, NULL, NULL);
        return FALSE;
    }
    return TRUE;
}
