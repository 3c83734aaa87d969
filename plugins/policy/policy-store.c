/* policy-store.c - the policy engine's durable state in SQLite, and all of it in memory.
 *
 * Why SQLite: the state is small but must survive kill -9 and power cuts mid-write (a
 * one-shot "restore" that comes back after a crash re-images a machine the user already
 * worked on). SQLite gives atomic multi-row transactions (record the boot AND consume the
 * one-shot work, or neither), an on-disk format that admins can inspect with sqlite3(1), and
 * it is in every distribution (Debian libsqlite3-dev) and on Windows. GKeyFile or
 * hand-written journal files would need their own crash-safe rewrite scheme.
 *
 * WAL with synchronous=NORMAL: a committed transaction is in the WAL file before COMMIT
 * returns, so it survives the process being killed at any point; a power cut may lose the
 * last few transactions but never corrupts the database (sqlite.org/wal.html).
 *
 * Reads never go to SQLite on the decision path. policy_store_open() loads every device
 * (with its one-shot marks) and every assignment into memory, indexed by UUID, serial and
 * MAC, and every write keeps that copy current, so a decision for a known or a new device
 * is a few hash probes (an SQL lookup, even from the page cache, costs a read transaction:
 * two fcntl() locks and, after the writer's last commit, pread()s of the WAL, 5-10 us per
 * query; doc/benchmarks.md). 100,000 devices take about 32 MB (bench/policy.sh). The
 * database is the daemon's: changes made to it behind the daemon's back (sqlite3(1)) are seen
 * at the next open (the daemon's next start).
 *
 * Two kinds of writes, on purpose:
 *
 * - What changes a later answer is written synchronously, in the caller's transaction,
 *   before the answer goes out: one-shot work done (mark_once), an assignment consumed,
 *   just-imaged marks and the last image (policy_store_persist() first writes the device's
 *   record so those rows have a row id to refer to). The copy in memory changes when the
 *   write succeeds and is put back at a rollback (the undo log below).
 *
 * - The bookkeeping of every boot (a new device's record, last_seen, boot_count, last_rule,
 *   identifiers learnt later) is not: it changes the copy in memory, which every read
 *   consults, and is written in batches, many devices per transaction, by
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
 *   says the same to administrators.
 *
 * The writer writes a batch in transactions of at most CHUNK_ROWS devices. The main thread
 * never waits for a whole batch: a write of the first kind takes the turn between two
 * chunks (PolicyStore.wlock; the writer lets it go first), writes the device's record
 * itself if its row is still in the part of the batch not yet written, and has the writer
 * skip that row. It waits at most for one chunk being written (about a millisecond). */
#include "policy-store.h"
#include "policy-shared.h"

#include <sqlite3.h>
#include <string.h>

/* Devices waiting for a flush before it starts by itself (the timer usually comes first). */
#define FLUSH_PENDING 1024
/* Devices per transaction of the writer: the longest a write of the main thread waits. */
#define CHUNK_ROWS 128
/* Devices per batch: copying them for the writer is the main thread's part of a flush
 * (about 0.1 us each); more wait for the next batch. */
#define BATCH_ROWS 4096

enum {
    Q_INSERT,
    Q_UPDATE_SEEN,
    Q_UPDATE_TIMES,
    Q_SET_IMAGED,
    Q_CLEAR_JUST,
    Q_ASSIGN,
    Q_DEL_ASSIGN,
    Q_MARK_ONCE,
    Q_DEL_ONCE,
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_FIND_KEY,
    Q_DEL_DEVICE,
    Q_N_
};

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *st[Q_N_];
} Conn;

enum { IX_UUID, IX_SERIAL, IX_MAC, IX_N_ };

/* A device: its record as it reads now, and how much of it is written. */
typedef struct Dev Dev;
struct Dev {
    gint64 id; /* first: the device is its own key in PolicyStore.devs */
    char mac[24];
    char uuid[40];
    char *key;
    char *serial;
    char *last_rule;
    char *last_image;
    GPtrArray *once; /* one-shot work done (strings); NULL when none */
    gint64 first_seen, last_seen, boot_count;
    gint64 boots_added; /* boots not written yet */
    guint64 gen;        /* bumped at every change of the bookkeeping */
    guint64 ids_gen;    /* gen when mac/uuid/serial last changed */
    guint64 written;    /* the gen its row holds (committed) */
    gint inflight;      /* its row in the batch being written, -1 = none */
    gboolean in_db;     /* its row exists */
    gboolean just_imaged;
    gboolean queued;  /* in PolicyStore.dirty */
    Dev *next[IX_N_]; /* the next device with the same UUID, serial, MAC */
};

/* One device of a batch: a copy, so the writer thread shares nothing with the main one. */
typedef struct {
    Dev *dev; /* for the main thread only */
    guint64 gen;
    gint64 id;
    gboolean in_db, ids_changed;
    gboolean dropped; /* set by the writer */
    gboolean skip;    /* set by the main thread, holding wlock: it wrote the device itself */
    char key[160], mac[24], uuid[40];
    char *serial, *last_rule;
    gint64 first_seen, last_seen, boot_count, boots_added;
} Row;

typedef struct {
    GArray *rows;
    guint committed; /* rows [0, committed) are written; set by the writer, under lock */
    gboolean done;   /* set by the writer, under lock */
    gboolean ok;
    guint dropped; /* rows refused by a constraint (another process wrote the same device) */
    char *error;
    guint reconciled; /* main thread: rows taken back so far */
} Batch;

/* What a rollback puts back in memory. */
typedef enum { U_PERSIST, U_IMAGED, U_ONCE_ADD, U_ONCE_CLEAR, U_ASSIGN } UndoKind;
typedef struct {
    UndoKind kind;
    Dev *dev;
    gboolean in_db, just_imaged;
    gint64 boots_added;
    guint64 written;
    char *str;       /* U_IMAGED: the old last_image; U_ONCE_ADD: the mark; U_ASSIGN: key */
    char *old;       /* U_ASSIGN: the old work, NULL = none */
    GPtrArray *once; /* U_ONCE_CLEAR: the marks removed */
} Undo;

struct PolicyStore {
    Conn main;
    char *path;
    GHashTable *devs;       /* all devices, by id (the Dev is its own key) */
    GHashTable *idx[IX_N_]; /* uuid, serial, mac -> the first Dev of a chain (keys borrowed) */
    GHashTable *assign;     /* key -> work text */
    GPtrArray *dirty;       /* devices whose bookkeeping is not handed to a batch yet */
    gint64 next_id;         /* the last device id given out */
    guint64 gen;
    gboolean in_txn;
    GArray *undo;      /* of Undo, while in_txn */
    guint held;        /* depth of wl_enter() */
    char *flush_error; /* the last failed batch, until reported */
    /* the writer thread (policy_store_start_writer): batches and WAL checkpoints */
    GThread *thread;
    Conn writer;
    GMutex lock; /* guards what follows, and Batch.committed/done */
    GCond cond;
    gboolean stop;
    gboolean main_wants; /* the main thread waits for wlock: the writer lets it go first */
    guint interval_ms;
    Batch *batch; /* handed over, until reconciled */
    GMutex wlock; /* the turn to write: the writer for one chunk, the main thread for one write
                   * or one transaction */
    /* The bound on what unauthenticated requests can create (policy_store_set_max_devices):
     * device ids oldest first, candidates for eviction, checked when taken. */
    guint max_devices; /* 0 = no bound */
    GQueue *age;
    guint64 created, evicted, refused;
    /* The state shared with other servers (policy_store_share, policy-shared.h): writes go
     * there first; its snapshots replace the assignments here (and in SQLite, the copy a
     * server starts from while the database is away) and the one-shot marks of shared_once. */
    PolicyShared *shared;
    gint64 shared_written;   /* the version of this server's last shared write */
    GHashTable *shared_once; /* "DEVICEKEY\nWHAT", as the last snapshot had them */
};

G_DEFINE_QUARK(policy - store - error - quark, policy_store_error)

#define DEVICE_COLS                                                                            \
    "id, key, mac, uuid, serial, first_seen, last_seen, boot_count, just_imaged, last_image, " \
    "last_rule"

static const char *const queries[Q_N_] = {
    /* ids are given out by the store (PolicyStore.next_id), so a device has the same id in
     * memory and in the table */
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
    [Q_DEL_ASSIGN] = "DELETE FROM assignments WHERE key = ?1",
    [Q_MARK_ONCE] = "INSERT OR IGNORE INTO once_done (device, what, at) VALUES (?1, ?2, ?3)",
    [Q_DEL_ONCE] = "DELETE FROM once_done WHERE device = ?1",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_FIND_KEY] = "SELECT " DEVICE_COLS " FROM devices WHERE key = ?1 OR "
                   "('mac:' || mac) = ?1 OR ('uuid:' || uuid) = ?1 OR ('serial:' || serial) = ?1 "
                   "ORDER BY last_seen DESC LIMIT 1",
    [Q_DEL_DEVICE] = "DELETE FROM devices WHERE id = ?1",
};

static const char schema[] =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = NORMAL;"
    "PRAGMA foreign_keys = ON;"
    /* the writer's inserts and updates touch four indexes over up to 100,000 rows */
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
    /* Lookups by MAC, serial and key are made in memory now: their indexes only cost the
     * writer (three more b-trees per new device, in random order). An older version that
     * opens the file creates them again (IF NOT EXISTS). */
    "DROP INDEX IF EXISTS devices_serial;"
    "DROP INDEX IF EXISTS devices_mac;"
    "DROP INDEX IF EXISTS devices_key;"
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

static const char *col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* ---- the devices in memory ---------------------------------------------------------------- */

static const char *ix_value(const Dev *e, int ix)
{
    const char *v = ix == IX_UUID ? e->uuid : ix == IX_SERIAL ? e->serial : e->mac;
    return v != NULL && *v != '\0' ? v : NULL;
}

/* Each index maps a value to a chain of the devices that have it; the hash table's key is the
 * first device's own copy of the value. */
static void ix_add(PolicyStore *s, Dev *e, int ix)
{
    const char *v = ix_value(e, ix);
    if (v == NULL)
        return;
    Dev *head = g_hash_table_lookup(s->idx[ix], v);
    e->next[ix] = head;
    g_hash_table_replace(s->idx[ix], (gpointer)v, e);
}

static void ix_del(PolicyStore *s, Dev *e, int ix)
{
    const char *v = ix_value(e, ix);
    if (v == NULL)
        return;
    Dev *head = g_hash_table_lookup(s->idx[ix], v);
    if (head == e) {
        if (e->next[ix] != NULL)
            g_hash_table_replace(s->idx[ix], (gpointer)ix_value(e->next[ix], ix), e->next[ix]);
        else
            g_hash_table_remove(s->idx[ix], v);
    } else {
        for (Dev *p = head; p != NULL; p = p->next[ix]) {
            if (p->next[ix] == e) {
                p->next[ix] = e->next[ix];
                break;
            }
        }
    }
    e->next[ix] = NULL;
}

static void dev_free(gpointer data)
{
    Dev *e = data;
    g_free(e->key);
    g_free(e->serial);
    g_free(e->last_rule);
    g_free(e->last_image);
    if (e->once != NULL)
        g_ptr_array_unref(e->once);
    g_free(e);
}

/* glib 2.66 has no g_memdup2, and g_memdup is deprecated in later ones */
static void age_push(PolicyStore *s, gint64 id)
{
    gint64 *p = g_new(gint64, 1);
    *p = id;
    g_queue_push_tail(s->age, p);
}

static void dev_add(PolicyStore *s, Dev *e)
{
    e->inflight = -1;
    g_hash_table_add(s->devs, e);
    for (int ix = 0; ix < IX_N_; ix++)
        ix_add(s, e, ix);
}

static Dev *dev_get(PolicyStore *s, gint64 id)
{
    return g_hash_table_lookup(s->devs, &id);
}

static Dev *dev_get_or_error(PolicyStore *s, gint64 id, GError **error)
{
    Dev *e = dev_get(s, id);
    if (e == NULL)
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "no device %" G_GINT64_FORMAT, id);
    return e;
}

/* Its bookkeeping changed: the next batch writes it. */
static void dev_touch(PolicyStore *s, Dev *e)
{
    e->gen = ++s->gen;
    if (!e->queued) {
        e->queued = TRUE;
        g_ptr_array_add(s->dirty, e);
    }
}

static void dev_to_record(const Dev *e, PolicyDeviceRecord *r)
{
    policy_device_record_clear(r);
    r->id = e->id;
    g_strlcpy(r->key, e->key ? e->key : "", sizeof(r->key));
    memcpy(r->mac, e->mac, sizeof(r->mac));
    memcpy(r->uuid, e->uuid, sizeof(r->uuid));
    r->serial = g_strdup(e->serial);
    r->first_seen = e->first_seen;
    r->last_seen = e->last_seen;
    r->boot_count = e->boot_count;
    r->just_imaged = e->just_imaged;
    r->last_image = g_strdup(e->last_image);
    r->last_rule = g_strdup(e->last_rule);
}

static gboolean once_has(const Dev *e, const char *what)
{
    for (guint i = 0; e->once != NULL && i < e->once->len; i++) {
        if (strcmp(g_ptr_array_index(e->once, i), what) == 0)
            return TRUE;
    }
    return FALSE;
}

static void once_add(Dev *e, const char *what)
{
    if (e->once == NULL)
        e->once = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(e->once, g_strdup(what));
}

/* Everything the table holds, into memory. */
static gboolean load(PolicyStore *s, GError **error)
{
    sqlite3_stmt *st = NULL;
    int rc;
    /* in id order, which is the order devices were first seen in: the eviction queue's */
    if (sqlite3_prepare_v2(s->main.db, "SELECT " DEVICE_COLS " FROM devices ORDER BY id", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, error, "load");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        Dev *e = g_new0(Dev, 1);
        e->id = sqlite3_column_int64(st, 0);
        e->key = g_strdup(col(st, 1) ? col(st, 1) : "");
        g_strlcpy(e->mac, col(st, 2) ? col(st, 2) : "", sizeof(e->mac));
        g_strlcpy(e->uuid, col(st, 3) ? col(st, 3) : "", sizeof(e->uuid));
        e->serial = g_strdup(col(st, 4));
        e->first_seen = sqlite3_column_int64(st, 5);
        e->last_seen = sqlite3_column_int64(st, 6);
        e->boot_count = sqlite3_column_int64(st, 7);
        e->just_imaged = sqlite3_column_int(st, 8) != 0;
        e->last_image = g_strdup(col(st, 9));
        e->last_rule = g_strdup(col(st, 10));
        e->in_db = TRUE;
        s->next_id = MAX(s->next_id, e->id);
        dev_add(s, e);
        age_push(s, e->id);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, error, "load");
    if (sqlite3_prepare_v2(s->main.db, "SELECT device, what FROM once_done", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s, error, "load");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        Dev *e = dev_get(s, sqlite3_column_int64(st, 0));
        if (e != NULL && col(st, 1) != NULL)
            once_add(e, col(st, 1));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, error, "load");
    if (sqlite3_prepare_v2(s->main.db, "SELECT key, work FROM assignments", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s, error, "load");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (col(st, 0) != NULL && col(st, 1) != NULL)
            g_hash_table_replace(s->assign, g_strdup(col(st, 0)), g_strdup(col(st, 1)));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(s, error, "load");
    /* the pages read are not needed again on this connection */
    sqlite3_db_release_memory(s->main.db);
    return TRUE;
}

PolicyStore *policy_store_open(const char *path, GError **error)
{
    g_return_val_if_fail(path != NULL, NULL);
    PolicyStore *s = g_new0(PolicyStore, 1);
    s->path = g_strdup(path);
    g_mutex_init(&s->lock);
    g_mutex_init(&s->wlock);
    g_cond_init(&s->cond);
    s->devs = g_hash_table_new_full(g_int64_hash, g_int64_equal, dev_free, NULL);
    for (int ix = 0; ix < IX_N_; ix++)
        s->idx[ix] = g_hash_table_new(g_str_hash, g_str_equal);
    s->assign = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    s->dirty = g_ptr_array_new();
    s->undo = g_array_new(FALSE, TRUE, sizeof(Undo));
    s->age = g_queue_new();
    if (!conn_open(&s->main, path, NULL, error) || !load(s, error)) {
        policy_store_close(s);
        return NULL;
    }
    return s;
}

guint policy_store_device_count(PolicyStore *s)
{
    return g_hash_table_size(s->devs);
}

/* ---- batches of bookkeeping --------------------------------------------------------------- */

static void row_clear(Row *r)
{
    g_free(r->serial);
    g_free(r->last_rule);
}

static void row_from(Row *r, Dev *e)
{
    memset(r, 0, sizeof(*r));
    r->dev = e;
    r->gen = e->gen;
    r->id = e->id;
    r->in_db = e->in_db;
    r->ids_changed = e->ids_gen > e->written;
    g_strlcpy(r->key, e->key ? e->key : "", sizeof(r->key));
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

/* Rows [from, to) of a batch in one transaction, those not skipped. Touches nothing but the
 * batch's rows and the connection. */
static gboolean write_chunk(Conn *c, Batch *b, guint from, guint to)
{
    int rc = sqlite3_step(cstmt(c, Q_BEGIN));
    sqlite3_reset(c->st[Q_BEGIN]);
    if (rc != SQLITE_DONE)
        goto failed;
    for (guint i = from; i < to; i++) {
        Row *r = &g_array_index(b->rows, Row, i);
        if (r->skip)
            continue;
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
    return TRUE;
failed:
    g_free(b->error);
    b->error = g_strdup(sqlite3_errmsg(c->db));
    if (!sqlite3_get_autocommit(c->db)) {
        sqlite3_step(cstmt(c, Q_ROLLBACK));
        sqlite3_reset(c->st[Q_ROLLBACK]);
    }
    return FALSE;
}

/* The writer thread: the batch chunk by chunk, each in its turn (wlock), the main thread first
 * when it asks. Without a writer thread (s->thread NULL) the main thread calls this itself. */
static void write_batch(PolicyStore *s, Conn *c, Batch *b, gboolean threaded)
{
    guint n = b->rows->len;
    gboolean ok = TRUE;
    for (guint i = 0; ok && i < n;) {
        guint end = MIN(i + CHUNK_ROWS, n);
        if (threaded) {
            g_mutex_lock(&s->lock);
            while (s->main_wants)
                g_cond_wait(&s->cond, &s->lock);
            g_mutex_unlock(&s->lock);
            g_mutex_lock(&s->wlock);
        }
        ok = write_chunk(c, b, i, end);
        /* published before the turn is given back: the main thread, holding it, knows
         * exactly which rows are written */
        g_mutex_lock(&s->lock);
        if (ok)
            b->committed = end;
        b->ok = ok;
        b->done = !ok || end == n;
        g_cond_broadcast(&s->cond);
        g_mutex_unlock(&s->lock);
        if (threaded)
            g_mutex_unlock(&s->wlock);
        i = end;
    }
    if (n == 0) {
        g_mutex_lock(&s->lock);
        b->ok = b->done = TRUE;
        g_cond_broadcast(&s->cond);
        g_mutex_unlock(&s->lock);
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

/* Main thread: a row that is written (or skipped) no longer holds its device. */
static void reconcile_row(Row *r)
{
    Dev *e = r->dev;
    e->inflight = -1;
    if (r->skip)
        return; /* the main thread wrote the device itself (policy_store_persist) */
    if (!r->dropped) {
        e->in_db = TRUE;
        e->boots_added -= r->in_db ? r->boots_added : r->boot_count;
    }
    if (r->gen > e->written)
        e->written = r->gen;
}

/* Takes back what the writer has written of the batch in flight (waiting for all of it if
 * wait); once it is done, what it could not write waits for the next batch. */
static void collect(PolicyStore *s, gboolean wait)
{
    Batch *b = s->batch;
    if (b == NULL)
        return;
    g_mutex_lock(&s->lock);
    while (wait && !b->done)
        g_cond_wait(&s->cond, &s->lock);
    guint committed = b->committed;
    gboolean done = b->done;
    g_mutex_unlock(&s->lock);
    for (; b->reconciled < committed; b->reconciled++)
        reconcile_row(&g_array_index(b->rows, Row, b->reconciled));
    if (!done)
        return;
    for (guint i = b->reconciled; i < b->rows->len; i++) {
        Row *r = &g_array_index(b->rows, Row, i);
        Dev *e = r->dev;
        e->inflight = -1;
        if (e->gen > e->written && !e->queued) { /* not written: tried again */
            e->queued = TRUE;
            g_ptr_array_add(s->dirty, e);
        }
    }
    if (!b->ok) {
        g_free(s->flush_error);
        s->flush_error =
            g_strdup_printf("writing %u device record(s): %s", b->rows->len - b->committed,
                            b->error ? b->error : "failed");
    } else if (b->dropped) {
        g_free(s->flush_error);
        s->flush_error = g_strdup_printf("%u device record(s) not written: %s", b->dropped,
                                         b->error ? b->error : "constraint");
    }
    g_mutex_lock(&s->lock);
    s->batch = NULL;
    g_mutex_unlock(&s->lock);
    batch_free(b);
}

/* The main thread's turn to write (nested calls count): it waits at most for the chunk the
 * writer is writing, and the writer starts no other until wl_leave(). */
static void wl_enter(PolicyStore *s)
{
    if (s->held++ > 0)
        return;
    if (s->thread != NULL) {
        g_mutex_lock(&s->lock);
        s->main_wants = TRUE;
        g_mutex_unlock(&s->lock);
        g_mutex_lock(&s->wlock);
    }
    collect(s, FALSE); /* what the writer wrote is known before anything is written here */
}

static void wl_leave(PolicyStore *s)
{
    g_assert(s->held > 0);
    if (--s->held > 0)
        return;
    if (s->thread != NULL) {
        g_mutex_unlock(&s->wlock);
        g_mutex_lock(&s->lock);
        s->main_wants = FALSE;
        g_cond_broadcast(&s->cond);
        g_mutex_unlock(&s->lock);
    }
}

/* Hands the devices noted since the last batch to the writer (or writes them here without
 * one). Never while the main connection is in a transaction: it holds the write lock the
 * writer would wait for. */
static void start_flush(PolicyStore *s)
{
    collect(s, FALSE);
    if (s->batch != NULL || s->dirty->len == 0 || s->in_txn || s->held > 0)
        return;
    Batch *b = g_new0(Batch, 1);
    b->rows = g_array_sized_new(FALSE, FALSE, sizeof(Row), MIN(s->dirty->len, BATCH_ROWS));
    guint i = 0;
    for (; i < s->dirty->len && b->rows->len < BATCH_ROWS; i++) {
        Dev *e = g_ptr_array_index(s->dirty, i);
        e->queued = FALSE;
        if (e->gen <= e->written)
            continue; /* written since (policy_store_persist) */
        Row r;
        row_from(&r, e);
        e->inflight = (gint)b->rows->len;
        g_array_append_val(b->rows, r);
    }
    g_ptr_array_remove_range(s->dirty, 0, i);
    if (b->rows->len == 0) {
        batch_free(b);
        return;
    }
    g_mutex_lock(&s->lock);
    s->batch = b;
    g_mutex_unlock(&s->lock);
    if (s->thread == NULL) {
        write_batch(s, &s->main, b, FALSE);
        collect(s, FALSE);
        return;
    }
    g_mutex_lock(&s->lock);
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
}

/* Everything noted written (unless in a transaction), for the readers that go to SQL:
 * listings, counts, lookups by key. */
static void sync_all(PolicyStore *s)
{
    guint before;
    do { /* BATCH_ROWS at a time, while that makes progress (a failing batch does not) */
        before = s->dirty->len;
        collect(s, TRUE);
        start_flush(s);
        collect(s, TRUE);
    } while (s->dirty->len > 0 && s->dirty->len < before);
}

gboolean policy_store_flush(PolicyStore *s, gboolean wait, GError **error)
{
    g_return_val_if_fail(s != NULL, FALSE);
    policy_store_sync(s);
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
    collect(s, FALSE);
    guint n = 0;
    for (guint i = 0; i < s->dirty->len; i++) {
        const Dev *e = g_ptr_array_index(s->dirty, i);
        n += e->gen > e->written;
    }
    for (guint i = s->batch ? s->batch->reconciled : 0; s->batch && i < s->batch->rows->len; i++) {
        const Row *r = &g_array_index(s->batch->rows, Row, i);
        n += !r->skip && !r->dev->queued;
    }
    return n;
}

/* ---- transactions ------------------------------------------------------------------------- */

static Undo *undo_push(PolicyStore *s, UndoKind kind, Dev *e)
{
    if (!s->in_txn)
        return NULL; /* written for good as it is: nothing to put back */
    Undo u = {.kind = kind, .dev = e};
    g_array_append_val(s->undo, u);
    return &g_array_index(s->undo, Undo, s->undo->len - 1);
}

static void undo_clear(PolicyStore *s)
{
    for (guint i = 0; i < s->undo->len; i++) {
        Undo *u = &g_array_index(s->undo, Undo, i);
        g_free(u->str);
        g_free(u->old);
        if (u->once != NULL)
            g_ptr_array_unref(u->once);
    }
    g_array_set_size(s->undo, 0);
}

/* What the transaction changed in memory, put back, newest first. */
static void undo_apply(PolicyStore *s)
{
    for (guint i = s->undo->len; i-- > 0;) {
        Undo *u = &g_array_index(s->undo, Undo, i);
        Dev *e = u->dev;
        switch (u->kind) {
        case U_PERSIST:
            e->in_db = u->in_db;
            e->boots_added = u->boots_added;
            e->written = u->written;
            if (e->gen > e->written && !e->queued) {
                e->queued = TRUE;
                g_ptr_array_add(s->dirty, e);
            }
            break;
        case U_IMAGED:
            e->just_imaged = u->just_imaged;
            g_free(e->last_image);
            e->last_image = g_steal_pointer(&u->str);
            break;
        case U_ONCE_ADD:
            for (guint j = 0; e->once != NULL && j < e->once->len; j++) {
                if (strcmp(g_ptr_array_index(e->once, j), u->str) == 0) {
                    g_ptr_array_remove_index(e->once, j);
                    break;
                }
            }
            break;
        case U_ONCE_CLEAR:
            if (e->once != NULL)
                g_ptr_array_unref(e->once);
            e->once = g_steal_pointer(&u->once);
            break;
        case U_ASSIGN:
            if (u->old != NULL)
                g_hash_table_replace(s->assign, g_steal_pointer(&u->str), g_steal_pointer(&u->old));
            else
                g_hash_table_remove(s->assign, u->str);
            break;
        }
    }
    undo_clear(s);
}

gboolean policy_store_begin(PolicyStore *s, GError **error)
{
    g_return_val_if_fail(s != NULL && !s->in_txn, FALSE);
    /* waits at most for the chunk the writer is writing, not for its whole batch */
    wl_enter(s);
    if (!run(s, stmt(s, Q_BEGIN), error)) {
        wl_leave(s);
        return FALSE;
    }
    s->in_txn = TRUE;
    return TRUE;
}

gboolean policy_store_commit(PolicyStore *s, GError **error)
{
    if (!s->in_txn)
        return TRUE;
    if (!run(s, stmt(s, Q_COMMIT), error)) {
        policy_store_rollback(s);
        return FALSE;
    }
    s->in_txn = FALSE;
    undo_clear(s);
    wl_leave(s);
    return TRUE;
}

void policy_store_rollback(PolicyStore *s)
{
    if (!s->in_txn)
        return;
    if (!sqlite3_get_autocommit(s->main.db))
        run(s, stmt(s, Q_ROLLBACK), NULL);
    s->in_txn = FALSE;
    undo_apply(s);
    wl_leave(s);
}

/* ---- reading: memory only ------------------------------------------------------------------ */

void policy_device_record_clear(PolicyDeviceRecord *r)
{
    g_free(r->serial);
    g_free(r->last_image);
    g_free(r->last_rule);
    memset(r, 0, sizeof(*r));
}

/* The conditions of one way of finding a device. A MAC identifies a machine only when nothing
 * better does: a record that has a UUID or serial of its own belongs to that machine, and only
 * a request without either may borrow it (docks and USB adapters move MACs around). */
static gboolean dev_matches(const Dev *e, const PolicyDevice *d, int ix)
{
    switch (ix) {
    case IX_UUID:
        return strcmp(e->uuid, d->uuid) == 0;
    case IX_SERIAL:
        return g_strcmp0(e->serial, d->serial) == 0 && (!e->uuid[0] || !d->uuid[0]);
    default:
        return strcmp(e->mac, d->mac) == 0 &&
               ((!e->uuid[0] && e->serial == NULL) || (!d->uuid[0] && d->serial == NULL));
    }
}

/* By UUID when it has one, else by serial, else by MAC: the most recently seen match. */
static Dev *find_dev(PolicyStore *s, const PolicyDevice *d)
{
    for (int ix = 0; ix < IX_N_; ix++) {
        const char *v = ix == IX_UUID ? d->uuid : ix == IX_SERIAL ? d->serial : d->mac;
        if (v == NULL || *v == '\0')
            continue;
        Dev *best = NULL;
        for (Dev *e = g_hash_table_lookup(s->idx[ix], v); e != NULL; e = e->next[ix]) {
            if (dev_matches(e, d, ix) && (best == NULL || e->last_seen > best->last_seen ||
                                          (e->last_seen == best->last_seen && e->id > best->id)))
                best = e;
        }
        if (best != NULL)
            return best;
    }
    return NULL;
}

gboolean policy_store_find(PolicyStore *s, const PolicyDevice *d, PolicyDeviceRecord *out,
                           GError **error)
{
    g_return_val_if_fail(s != NULL && d != NULL, FALSE);
    Dev *e = find_dev(s, d);
    if (e != NULL && out != NULL)
        dev_to_record(e, out);
    return e != NULL;
}

gboolean policy_store_get(PolicyStore *s, gint64 id, PolicyDeviceRecord *out)
{
    Dev *e = dev_get(s, id);
    if (e != NULL && out != NULL)
        dev_to_record(e, out);
    return e != NULL;
}

gboolean policy_store_find_key(PolicyStore *s, const char *key, PolicyDeviceRecord *out,
                               GError **error)
{
    policy_store_sync(s);
    sync_all(s);
    sqlite3_stmt *st = stmt(s, Q_FIND_KEY);
    bind_text(st, 1, key);
    int rc = sqlite3_step(st);
    Dev *e = rc == SQLITE_ROW ? dev_get(s, sqlite3_column_int64(st, 0)) : NULL;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        db_fail(s, error, "read");
    sqlite3_reset(st);
    if (e != NULL && out != NULL)
        dev_to_record(e, out); /* the copy in memory: what is noted in a transaction too */
    return e != NULL;
}

gboolean policy_store_once_done(PolicyStore *s, gint64 id, const char *what, gboolean *done,
                                GError **error)
{
    Dev *e = dev_get(s, id);
    *done = e != NULL && once_has(e, what);
    if (!*done && e != NULL && s->shared_once != NULL && e->key != NULL) {
        g_autofree char *k = g_strconcat(e->key, "\n", what, NULL);
        *done = g_hash_table_contains(s->shared_once, k);
    }
    return TRUE;
}

gboolean policy_store_get_assignment(PolicyStore *s, const char *key, PolicyWork *out,
                                     GError **error)
{
    const char *text = g_hash_table_lookup(s->assign, key);
    /* Written by policy_store_assign from a parsed work, so it parses; a hand-edited
     * database that does not is treated as no assignment. */
    return text != NULL && policy_work_parse(text, out, NULL);
}

guint policy_store_assignment_count(PolicyStore *s)
{
    return g_hash_table_size(s->assign);
}

/* ---- the bound on devices ------------------------------------------------------------------ */

void policy_store_set_max_devices(PolicyStore *s, guint max)
{
    s->max_devices = max;
}

void policy_store_device_stats(PolicyStore *s, guint64 *created, guint64 *evicted, guint64 *refused)
{
    *created = s->created;
    *evicted = s->evicted;
    *refused = s->refused;
}

static gboolean assigned(PolicyStore *s, const Dev *e)
{
    if (g_hash_table_size(s->assign) == 0)
        return FALSE;
    char k[160];
    if (e->key != NULL && g_hash_table_contains(s->assign, e->key))
        return TRUE;
    if (e->mac[0] && g_snprintf(k, sizeof(k), "mac:%s", e->mac) > 0 &&
        g_hash_table_contains(s->assign, k))
        return TRUE;
    if (e->uuid[0] && g_snprintf(k, sizeof(k), "uuid:%s", e->uuid) > 0 &&
        g_hash_table_contains(s->assign, k))
        return TRUE;
    return e->serial != NULL && g_snprintf(k, sizeof(k), "serial:%s", e->serial) > 0 &&
           g_hash_table_contains(s->assign, k);
}

/* A record whose loss changes no answer: no assignment, no image laid down, no just-imaged
 * mark, no one-shot work done. Only its bookkeeping (first and last seen, boots) would go,
 * and it comes back at the device's next boot. Anyone can make such records by asking
 * about random MACs; the others need an administrator or a finished imaging job. */
static gboolean evictable(PolicyStore *s, const Dev *e)
{
    return !e->just_imaged && e->last_image == NULL && (e->once == NULL || e->once->len == 0) &&
           e->inflight < 0 && !assigned(s, e);
}

static gboolean evict(PolicyStore *s, Dev *e)
{
    wl_enter(s);
    gboolean ok = e->inflight < 0; /* collect() may have just taken its row back */
    if (ok && e->in_db) {
        sqlite3_stmt *st = stmt(s, Q_DEL_DEVICE);
        sqlite3_bind_int64(st, 1, e->id);
        ok = run(s, st, NULL);
    }
    wl_leave(s);
    if (!ok)
        return FALSE;
    if (e->queued)
        g_ptr_array_remove(s->dirty, e);
    for (int ix = 0; ix < IX_N_; ix++)
        ix_del(s, e, ix);
    g_hash_table_remove(s->devs, e); /* frees e */
    return TRUE;
}

/* Makes room for one more device under max_devices: forgets the oldest evictable one. Looks
 * at a bounded number of the oldest per call (those that must stay go to the back of the
 * queue), so a store full of devices that must stay refuses new ones in constant time. */
static gboolean make_room(PolicyStore *s)
{
    if (s->max_devices == 0 || g_hash_table_size(s->devs) < s->max_devices)
        return TRUE;
    if (s->in_txn)
        return TRUE; /* a report in its transaction: the undo log holds devices; one over */
    for (guint tries = 0; tries < 64 && !g_queue_is_empty(s->age); tries++) {
        gint64 *id = g_queue_pop_head(s->age);
        Dev *e = dev_get(s, *id);
        if (e == NULL) {
            g_free(id);
            continue;
        }
        if (evictable(s, e) && evict(s, e)) {
            g_free(id);
            s->evicted++;
            if (g_hash_table_size(s->devs) < s->max_devices)
                return TRUE;
            continue;
        }
        g_queue_push_tail(s->age, id);
    }
    return g_hash_table_size(s->devs) < s->max_devices;
}

/* ---- writing ------------------------------------------------------------------------------ */

static Dev *note(PolicyStore *s, const PolicyDeviceRecord *known, const PolicyDevice *d, gint64 now,
                 const char *rule, gboolean count_boot, GError **error)
{
    Dev *e = known != NULL ? dev_get(s, known->id) : NULL;
    if (e == NULL) {
        char key[160];
        if (!policy_device_identity(d, key, sizeof(key))) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "device has no MAC, UUID or serial");
            return NULL;
        }
        if (!make_room(s)) {
            s->refused++;
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOSPC,
                        "%u devices known, none of them can be forgotten (max_devices): %s not "
                        "recorded",
                        s->max_devices, key);
            return NULL;
        }
        s->created++;
        e = g_new0(Dev, 1);
        e->id = ++s->next_id;
        e->key = g_strdup(key);
        e->first_seen = now;
        count_boot = TRUE;
        dev_add(s, e);
        age_push(s, e->id);
    }
    dev_touch(s, e);
    /* identifiers learnt: as coalesce() in Q_UPDATE_SEEN */
    if (d->mac[0] && strcmp(e->mac, d->mac) != 0) {
        ix_del(s, e, IX_MAC);
        g_strlcpy(e->mac, d->mac, sizeof(e->mac));
        ix_add(s, e, IX_MAC);
        e->ids_gen = e->gen;
    }
    if (d->uuid[0] && strcmp(e->uuid, d->uuid) != 0) {
        ix_del(s, e, IX_UUID);
        g_strlcpy(e->uuid, d->uuid, sizeof(e->uuid));
        ix_add(s, e, IX_UUID);
        e->ids_gen = e->gen;
    }
    if (d->serial != NULL && g_strcmp0(e->serial, d->serial) != 0) {
        ix_del(s, e, IX_SERIAL);
        g_free(e->serial);
        e->serial = g_strdup(d->serial);
        ix_add(s, e, IX_SERIAL);
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
    Dev *e = note(s, known, d, now, rule, count_boot, error);
    if (e == NULL)
        return FALSE;
    if (id != NULL)
        *id = e->id;
    if (s->dirty->len >= FLUSH_PENDING)
        start_flush(s);
    return TRUE;
}

/* Writes the device's bookkeeping now, holding the turn (wl_enter). Its row, if in the part of
 * the batch in flight not written yet, is skipped by the writer. */
static gboolean persist(PolicyStore *s, Dev *e, GError **error)
{
    if (e->gen <= e->written)
        return TRUE; /* its row holds all of it */
    Row r;
    row_from(&r, e);
    int rc = write_row(&s->main, &r);
    row_clear(&r);
    if (rc != SQLITE_DONE)
        return db_fail(s, error, "write");
    Undo *u = undo_push(s, U_PERSIST, e);
    if (u != NULL) {
        u->in_db = e->in_db;
        u->boots_added = e->boots_added;
        u->written = e->written;
    }
    if (e->inflight >= 0) /* not written by the writer yet (collect() took the rest back) */
        g_array_index(s->batch->rows, Row, e->inflight).skip = TRUE;
    e->in_db = TRUE;
    e->boots_added = 0;
    e->written = e->gen;
    return TRUE;
}

gboolean policy_store_persist(PolicyStore *s, gint64 id, GError **error)
{
    Dev *e = dev_get(s, id);
    if (e == NULL)
        return TRUE;
    wl_enter(s);
    gboolean ok = persist(s, e, error);
    wl_leave(s);
    return ok;
}

gboolean policy_store_record_boot(PolicyStore *s, const PolicyDevice *d, gint64 now,
                                  const char *rule, PolicyDeviceRecord *out, GError **error)
{
    Dev *found = find_dev(s, d);
    PolicyDeviceRecord known = {.id = found ? found->id : 0};
    Dev *e = note(s, found ? &known : NULL, d, now, rule, TRUE, error);
    if (e == NULL)
        return FALSE;
    if (!policy_store_persist(s, e->id, error))
        return FALSE;
    if (out != NULL)
        dev_to_record(e, out);
    return TRUE;
}

/* Before an imaging mark changes in memory: how to put it back if the transaction fails. */
static void undo_imaged(PolicyStore *s, Dev *e)
{
    Undo *u = undo_push(s, U_IMAGED, e);
    if (u != NULL) {
        u->just_imaged = e->just_imaged;
        u->str = g_strdup(e->last_image);
    }
}

gboolean policy_store_set_imaged(PolicyStore *s, gint64 id, const char *image, gboolean just_imaged,
                                 GError **error)
{
    Dev *e = dev_get_or_error(s, id, error);
    if (e == NULL)
        return FALSE;
    wl_enter(s);
    gboolean ok = persist(s, e, error);
    if (ok) {
        sqlite3_stmt *st = stmt(s, Q_SET_IMAGED);
        sqlite3_bind_int64(st, 1, id);
        bind_text(st, 2, image);
        sqlite3_bind_int(st, 3, just_imaged);
        ok = run(s, st, error);
    }
    if (ok) {
        undo_imaged(s, e);
        e->just_imaged = just_imaged;
        if (image != NULL && *image != '\0') {
            g_free(e->last_image);
            e->last_image = g_strdup(image);
        }
    }
    wl_leave(s);
    return ok;
}

gboolean policy_store_clear_just_imaged(PolicyStore *s, gint64 id, GError **error)
{
    Dev *e = dev_get(s, id);
    if (e == NULL)
        return TRUE;
    wl_enter(s);
    gboolean ok = persist(s, e, error);
    if (ok) {
        sqlite3_stmt *st = stmt(s, Q_CLEAR_JUST);
        sqlite3_bind_int64(st, 1, id);
        ok = run(s, st, error);
    }
    if (ok) {
        undo_imaged(s, e);
        e->just_imaged = FALSE;
    }
    wl_leave(s);
    return ok;
}

static void assign_mem(PolicyStore *s, const char *key, const char *text)
{
    Undo *u = undo_push(s, U_ASSIGN, NULL);
    if (u != NULL) {
        u->str = g_strdup(key);
        u->old = g_strdup(g_hash_table_lookup(s->assign, key));
    }
    if (text != NULL)
        g_hash_table_replace(s->assign, g_strdup(key), g_strdup(text));
    else
        g_hash_table_remove(s->assign, key);
}

/* After a write to the shared state: snapshots older than it would undo it here. */
static gboolean shared_wrote(PolicyStore *s, gint64 version)
{
    if (version < 0)
        return FALSE;
    s->shared_written = MAX(s->shared_written, version);
    return TRUE;
}

gboolean policy_store_assign(PolicyStore *s, const char *key, const PolicyWork *w, gint64 now,
                             GError **error)
{
    g_autofree char *text = policy_work_to_string(w);
    if (s->shared != NULL &&
        !shared_wrote(s, s->shared->ops->assign(s->shared, key, text, now, error)))
        return FALSE;
    wl_enter(s);
    sqlite3_stmt *st = stmt(s, Q_ASSIGN);
    bind_text(st, 1, key);
    bind_text(st, 2, text);
    sqlite3_bind_int64(st, 3, now);
    gboolean ok = run(s, st, error);
    if (ok)
        assign_mem(s, key, text);
    wl_leave(s);
    return ok;
}

static gboolean delete_assignment(PolicyStore *s, const char *key, GError **error)
{
    wl_enter(s);
    sqlite3_stmt *st = stmt(s, Q_DEL_ASSIGN);
    bind_text(st, 1, key);
    gboolean ok = run(s, st, error);
    if (ok && g_hash_table_contains(s->assign, key))
        assign_mem(s, key, NULL);
    wl_leave(s);
    return ok;
}

gboolean policy_store_delete_assignment(PolicyStore *s, const char *key, GError **error)
{
    if (s->shared != NULL && !shared_wrote(s, s->shared->ops->unassign(s->shared, key, error)))
        return FALSE;
    return delete_assignment(s, key, error);
}

gboolean policy_store_consume_assignment(PolicyStore *s, const char *key, const PolicyWork *w,
                                         GError **error)
{
    if (s->shared != NULL) {
        g_autofree char *text = policy_work_to_string(w);
        if (!shared_wrote(s, s->shared->ops->consume(s->shared, key, text, error)))
            return FALSE;
    }
    return delete_assignment(s, key, error);
}

gboolean policy_store_clear(PolicyStore *s, const char *key, guint *removed, GError **error)
{
    guint n = 0;
    PolicyDeviceRecord rec = {0};
    GError *err = NULL;
    gboolean found = policy_store_find_key(s, key, &rec, &err); /* before the turn: it syncs */
    if (err != NULL) {
        g_propagate_error(error, err);
        return FALSE;
    }
    gboolean had = g_hash_table_contains(s->assign, key);
    if (s->shared != NULL) {
        gboolean ok = shared_wrote(s, s->shared->ops->clear_once(s->shared, key, error));
        if (ok && found && rec.key[0] && strcmp(rec.key, key) != 0)
            ok = shared_wrote(s, s->shared->ops->clear_once(s->shared, rec.key, error));
        if (!ok) {
            policy_device_record_clear(&rec);
            return FALSE;
        }
    }
    if (!policy_store_delete_assignment(s, key, error)) {
        policy_device_record_clear(&rec);
        return FALSE;
    }
    n += had;
    if (found) {
        Dev *e = dev_get(s, rec.id);
        wl_enter(s);
        sqlite3_stmt *st = stmt(s, Q_DEL_ONCE);
        sqlite3_bind_int64(st, 1, rec.id);
        gboolean ok = run(s, st, error);
        if (ok && e != NULL && e->once != NULL) {
            n += e->once->len;
            Undo *u = undo_push(s, U_ONCE_CLEAR, e);
            if (u != NULL)
                u->once = g_steal_pointer(&e->once);
            else
                g_clear_pointer(&e->once, g_ptr_array_unref);
        }
        wl_leave(s);
        if (ok && rec.just_imaged) {
            ok = policy_store_clear_just_imaged(s, rec.id, error);
            n += ok;
        }
        policy_device_record_clear(&rec);
        if (!ok)
            return FALSE;
    }
    if (removed != NULL)
        *removed = n;
    return TRUE;
}

gboolean policy_store_mark_once(PolicyStore *s, gint64 id, const char *what, gint64 now,
                                GError **error)
{
    Dev *e = dev_get_or_error(s, id, error);
    if (e == NULL)
        return FALSE;
    /* Shared: the database says whether another server did it first (TAKEN). */
    if (s->shared != NULL && !once_has(e, what) &&
        !shared_wrote(s, s->shared->ops->mark_once(s->shared, e->key, what, now, error)))
        return FALSE;
    wl_enter(s);
    gboolean ok = persist(s, e, error);
    if (ok) {
        sqlite3_stmt *st = stmt(s, Q_MARK_ONCE);
        sqlite3_bind_int64(st, 1, id);
        bind_text(st, 2, what);
        sqlite3_bind_int64(st, 3, now);
        ok = run(s, st, error);
    }
    if (ok && !once_has(e, what)) {
        once_add(e, what);
        Undo *u = undo_push(s, U_ONCE_ADD, e);
        if (u != NULL)
            u->str = g_strdup(what);
    }
    wl_leave(s);
    return ok;
}

/* ---- listings: SQL, after writing what is noted ------------------------------------------- */

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
            write_batch(s, &s->writer, b, TRUE);
            g_mutex_lock(&s->lock);
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

void policy_store_close(PolicyStore *s)
{
    if (s == NULL)
        return;
    if (s->main.db != NULL) {
        policy_store_rollback(s);
        sync_all(s);
    }
    if (s->shared != NULL)
        s->shared->ops->close(s->shared);
    g_clear_pointer(&s->shared_once, g_hash_table_destroy);
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
    if (s->undo != NULL) {
        undo_clear(s);
        g_array_unref(s->undo);
    }
    for (int ix = 0; ix < IX_N_; ix++)
        g_clear_pointer(&s->idx[ix], g_hash_table_destroy);
    g_clear_pointer(&s->devs, g_hash_table_destroy);
    g_clear_pointer(&s->assign, g_hash_table_destroy);
    g_clear_pointer(&s->dirty, g_ptr_array_unref);
    if (s->age != NULL)
        g_queue_free_full(s->age, g_free);
    g_free(s->flush_error);
    g_mutex_clear(&s->lock);
    g_mutex_clear(&s->wlock);
    g_cond_clear(&s->cond);
    g_free(s->path);
    conn_close(&s->main);
    g_free(s);
}

/* ---- the shared state (policy-shared.h) ---------------------------------------------------- */

gboolean policy_store_share(PolicyStore *s, const char *conninfo, PolicyStoreLogFn log,
                            void *log_data, GError **error)
{
    g_return_val_if_fail(s->shared == NULL, FALSE);
    s->shared = policy_shared_pg_open(conninfo, log, log_data, error);
    if (s->shared == NULL)
        return FALSE;
    policy_store_sync(s);
    return TRUE;
}

void policy_store_attach_shared(PolicyStore *s, PolicyShared *sh)
{
    g_return_if_fail(s->shared == NULL);
    s->shared = sh;
    policy_store_sync(s);
}

gboolean policy_store_shared(PolicyStore *s)
{
    return s->shared != NULL;
}

void policy_store_sync(PolicyStore *s)
{
    if (s->shared == NULL || s->in_txn)
        return;
    PolicySharedSnapshot *snap = s->shared->ops->take(s->shared);
    if (snap == NULL)
        return;
    if (snap->version < s->shared_written) {
        /* read before this server's own last write: the thread reads again (the version
         * moved since) */
        policy_shared_snapshot_free(snap);
        return;
    }
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    /* This server's copy of the assignments follows the database, in SQLite too: the copy a
     * restart without the database starts from. */
    wl_enter(s);
    GHashTableIter it;
    gpointer k, v;
    GPtrArray *gone = g_ptr_array_new_with_free_func(g_free);
    g_hash_table_iter_init(&it, s->assign);
    while (g_hash_table_iter_next(&it, &k, &v))
        if (!g_hash_table_contains(snap->assign, k))
            g_ptr_array_add(gone, g_strdup(k));
    for (guint i = 0; i < gone->len; i++) {
        sqlite3_stmt *st = stmt(s, Q_DEL_ASSIGN);
        bind_text(st, 1, gone->pdata[i]);
        if (run(s, st, NULL))
            g_hash_table_remove(s->assign, gone->pdata[i]);
    }
    g_ptr_array_unref(gone);
    g_hash_table_iter_init(&it, snap->assign);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const char *have = g_hash_table_lookup(s->assign, k);
        if (have != NULL && strcmp(have, v) == 0)
            continue;
        sqlite3_stmt *st = stmt(s, Q_ASSIGN);
        bind_text(st, 1, k);
        bind_text(st, 2, v);
        sqlite3_bind_int64(st, 3, now);
        if (run(s, st, NULL))
            g_hash_table_replace(s->assign, g_strdup(k), g_strdup(v));
    }
    wl_leave(s);
    g_clear_pointer(&s->shared_once, g_hash_table_destroy);
    s->shared_once = g_steal_pointer(&snap->once);
    policy_shared_snapshot_free(snap);
}
