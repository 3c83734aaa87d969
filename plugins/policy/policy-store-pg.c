/* policy-store-pg.c - the shared policy state (policy-shared.h) in PostgreSQL: the same
 * database as libpreboot-pg (preboot-pg(8)) when so configured, so that work assigned on one
 * server is done once, through any.
 *
 * Tables (versioned in policy_schema_version, migrated under an advisory lock by lib/pq):
 * policy_assignments (key, work, created), policy_once (device_key, what, at) and
 * policy_version, one row whose counter every write bumps in the same statement.
 *
 * Exactly once across servers: consuming an assignment is one DELETE of the row holding
 * that very work (RETURNING it); marking one-shot work done is one INSERT ... ON CONFLICT DO
 * NOTHING (RETURNING it). Of two servers racing, one statement finds the row (or inserts
 * it), the other does not and its server withholds the work.
 *
 * Coherence: the thread of this file polls policy_version every SHARED_REFRESH_MS on its own
 * connection and, when it moved, reads the assignments and one-shot marks in one REPEATABLE
 * READ transaction and hands them over as a snapshot, which the store applies in memory on
 * its own thread (policy_store_sync). Polling a one-row table costs the database nothing;
 * LISTEN/NOTIFY would save the 500 ms of delay but needs a socket watched by the daemon's
 * main loop, which the store does not own. A server sees another's change within about
 * half a second; a decision made before that is still safe: its consume or mark finds
 * nothing to take and the work is withheld.
 *
 * Connections: the thread makes both its own and the one the writes use (the caller's
 * thread, the daemon's main loop, never connects: that may block for connect_timeout). A
 * write failing on a broken connection drops it; the thread makes a new one on its next
 * turn, every RETRY_MS while the database is away. */
#include "policy-shared.h"
#include "policy-store.h"

#include "pq-conn.h"
#include <preboot/plugin.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MS   2000
#define FIRST_WAIT (5 * G_USEC_PER_SEC)
#define LOCK_KEY   1346524998 /* advisory lock of the policy schema's migrations */

static const char *const migrations[] = {
    /* 1 */
    "CREATE TABLE policy_version (id integer PRIMARY KEY CHECK (id = 1), v bigint NOT NULL);"
    "INSERT INTO policy_version VALUES (1, 1);"
    "CREATE TABLE policy_assignments (key text PRIMARY KEY, work text NOT NULL,"
    "  created bigint NOT NULL);"
    "CREATE TABLE policy_once (device_key text NOT NULL, what text NOT NULL,"
    "  at bigint NOT NULL, PRIMARY KEY (device_key, what));",
};

/* Each write bumps the version in the same statement (data-modifying WITH clauses run once,
 * atomically with the statement); the version returned tells the store which snapshots are
 * older than its own write. */
#define BUMP_IF(cte) \
    "UPDATE policy_version SET v = v + 1 WHERE EXISTS (SELECT 1 FROM " cte ") RETURNING v"

static const char q_assign[] =
    "WITH w AS (INSERT INTO policy_assignments (key, work, created) VALUES ($1, $2, $3) "
    "  ON CONFLICT (key) DO UPDATE SET work = $2, created = $3 RETURNING 1) " BUMP_IF("w");
static const char q_unassign[] =
    "WITH w AS (DELETE FROM policy_assignments WHERE key = $1 RETURNING 1) "
    "UPDATE policy_version SET v = v + (SELECT count(*) FROM w) RETURNING v";
static const char q_consume[] =
    "WITH w AS (DELETE FROM policy_assignments WHERE key = $1 AND work = $2 RETURNING 1) " BUMP_IF(
        "w");
static const char q_mark[] =
    "WITH w AS (INSERT INTO policy_once (device_key, what, at) VALUES ($1, $2, $3) "
    "  ON CONFLICT DO NOTHING RETURNING 1) " BUMP_IF("w");
static const char q_clear_once[] =
    "WITH w AS (DELETE FROM policy_once WHERE device_key = $1 RETURNING 1) "
    "UPDATE policy_version SET v = v + (SELECT count(*) FROM w) RETURNING v";

typedef struct {
    PolicyShared base;
    char *conninfo;
    PolicySharedLogFn log;
    void *log_data;
    GThread *thread;
    GMutex lock; /* guards what follows */
    GCond cond;
    gboolean closing;
    gboolean first; /* the thread's first turn is over */
    PGconn *wconn;  /* the writers' connection: made by the thread, used and dropped by writers */
    PolicySharedSnapshot *snap; /* handed over, not taken yet */
    /* the thread's own */
    PGconn *conn;
    gint64 seen; /* the version of the last snapshot read */
    gboolean down;
} Pg;

void policy_shared_snapshot_free(PolicySharedSnapshot *snap)
{
    if (snap == NULL)
        return;
    g_clear_pointer(&snap->assign, g_hash_table_destroy);
    g_clear_pointer(&snap->once, g_hash_table_destroy);
    g_free(snap);
}

static void say(Pg *g, int level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void say(Pg *g, int level, const char *fmt, ...)
{
    if (g->log == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *m = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g->log(g->log_data, level, m);
}

/* ---- the thread: connections and snapshots -------------------------------------------------- */

static PGconn *connect_db(Pg *g, char **why)
{
    PGconn *c = PQconnectdb(g->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        *why = g_strdup(pb_pq_message(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

static PolicySharedSnapshot *read_snapshot(PGconn *c)
{
    if (!pb_pq_exec_ok(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        return NULL;
    PolicySharedSnapshot *snap = g_new0(PolicySharedSnapshot, 1);
    snap->assign = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    snap->once = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    gboolean ok = FALSE;
    PGresult *r = PQexec(c, "SELECT v FROM policy_version");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        snap->version = g_ascii_strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        r = PQexec(c, "SELECT key, work FROM policy_assignments");
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            for (int i = 0; i < PQntuples(r); i++)
                g_hash_table_replace(snap->assign, g_strdup(PQgetvalue(r, i, 0)),
                                     g_strdup(PQgetvalue(r, i, 1)));
            PQclear(r);
            r = PQexec(c, "SELECT device_key || E'\\n' || what FROM policy_once");
            if (PQresultStatus(r) == PGRES_TUPLES_OK) {
                for (int i = 0; i < PQntuples(r); i++)
                    g_hash_table_add(snap->once, g_strdup(PQgetvalue(r, i, 0)));
                ok = TRUE;
            }
        }
    }
    PQclear(r);
    if (!pb_pq_exec_ok(c, "COMMIT"))
        ok = FALSE;
    if (!ok) {
        policy_shared_snapshot_free(snap);
        return NULL;
    }
    return snap;
}

static gint64 read_version(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT v FROM policy_version");
    gint64 v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = g_ascii_strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static void went_down(Pg *g, const char *why)
{
    if (!g->down)
        say(g, PB_LOG_WARNING,
            "policy database unreachable (%s): deciding from this server's copy; assignments "
            "and one-shot work are refused until it returns",
            why);
    g->down = TRUE;
    if (g->conn != NULL)
        PQfinish(g->conn);
    g->conn = NULL;
}

/* One turn: (re)connect, give the writers a connection, read a snapshot if the version
 * moved. */
static void turn(Pg *g)
{
    g_autofree char *why = NULL;
    if (g->conn != NULL && PQstatus(g->conn) != CONNECTION_OK)
        g_clear_pointer(&g->conn, PQfinish);
    if (g->conn == NULL) {
        g->conn = connect_db(g, &why);
        if (g->conn == NULL) {
            went_down(g, why);
            return;
        }
        int version = 0;
        if (!pb_pq_migrate(g->conn, LOCK_KEY, "policy_schema_version", migrations,
                           (int)G_N_ELEMENTS(migrations), &version, &why)) {
            went_down(g, why);
            return;
        }
        say(g, PB_LOG_CRITICAL, "policy database %s, schema version %d",
            g->down ? "reachable again: catching up" : "connected", version);
        g->down = FALSE;
        g->seen = -1;
    }
    g_mutex_lock(&g->lock);
    gboolean need = g->wconn == NULL || PQstatus(g->wconn) != CONNECTION_OK;
    g_mutex_unlock(&g->lock);
    if (need) {
        PGconn *w = connect_db(g, &why);
        if (w == NULL) {
            went_down(g, why);
            return;
        }
        g_mutex_lock(&g->lock);
        if (g->wconn != NULL)
            PQfinish(g->wconn);
        g->wconn = w;
        g_mutex_unlock(&g->lock);
    }
    gint64 v = read_version(g->conn);
    if (v < 0) {
        went_down(g, pb_pq_message(g->conn));
        return;
    }
    if (v == g->seen)
        return;
    PolicySharedSnapshot *snap = read_snapshot(g->conn);
    if (snap == NULL) {
        went_down(g, pb_pq_message(g->conn));
        return;
    }
    g->seen = snap->version;
    g_mutex_lock(&g->lock);
    policy_shared_snapshot_free(g->snap);
    g->snap = snap;
    g_mutex_unlock(&g->lock);
}

static gpointer thread_main(gpointer data)
{
    Pg *g = data;
    g_mutex_lock(&g->lock);
    while (!g->closing) {
        g_mutex_unlock(&g->lock);
        turn(g);
        g_mutex_lock(&g->lock);
        if (!g->first) {
            g->first = TRUE;
            g_cond_broadcast(&g->cond);
        }
        gint64 until = g_get_monotonic_time() +
                       (g->down ? RETRY_MS : SHARED_REFRESH_MS) * G_TIME_SPAN_MILLISECOND;
        if (!g->closing) /* a write wakes it early: a spurious wake is one more turn */
            g_cond_wait_until(&g->cond, &g->lock, until);
    }
    g_mutex_unlock(&g->lock);
    return NULL;
}

/* ---- writes, on the caller's thread ------------------------------------------------------ */

static gint64 write_row(Pg *g, const char *sql, int n, const char *const *v, gboolean may_be_taken,
                        const char *what, GError **error)
{
    g_autofree char *why = NULL;
    gint64 version = -1;
    g_mutex_lock(&g->lock);
    PGresult *r = NULL;
    if (g->wconn == NULL || PQstatus(g->wconn) != CONNECTION_OK)
        why = g_strdup("not connected");
    else {
        r = pb_pq_exec_timeout(g->wconn, sql, n, v, SHARED_TIMEOUT_MS, &why);
        if (r == NULL || PQstatus(g->wconn) != CONNECTION_OK)
            g_clear_pointer(&g->wconn, PQfinish); /* the thread makes a new one */
    }
    if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK) {
        if (PQntuples(r) == 1)
            version = g_ascii_strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        else if (may_be_taken)
            g_set_error(error, POLICY_STORE_ERROR, POLICY_STORE_ERROR_TAKEN,
                        "%s: done already through another server", what);
        else
            g_set_error(error, POLICY_STORE_ERROR, POLICY_STORE_ERROR_UNAVAILABLE,
                        "%s: the policy database changed nothing", what);
    } else if (why == NULL)
        why = g_strdup(pb_pq_message(g->wconn));
    g_mutex_unlock(&g->lock);
    PQclear(r);
    if (version < 0 && error != NULL && *error == NULL)
        g_set_error(error, POLICY_STORE_ERROR, POLICY_STORE_ERROR_UNAVAILABLE,
                    "%s: policy database unavailable (%s): nothing changed", what, why);
    if (version >= 0) {
        /* the thread reads the new state at once rather than at its next turn */
        g_mutex_lock(&g->lock);
        g_cond_broadcast(&g->cond);
        g_mutex_unlock(&g->lock);
    }
    return version;
}

static gint64 pg_assign(PolicyShared *sh, const char *key, const char *work, gint64 now,
                        GError **error)
{
    char t[32];
    g_snprintf(t, sizeof(t), "%" G_GINT64_FORMAT, now);
    const char *v[] = {key, work, t};
    return write_row((Pg *)sh, q_assign, 3, v, FALSE, "assignment not made", error);
}

static gint64 pg_unassign(PolicyShared *sh, const char *key, GError **error)
{
    const char *v[] = {key};
    return write_row((Pg *)sh, q_unassign, 1, v, FALSE, "assignment not removed", error);
}

static gint64 pg_consume(PolicyShared *sh, const char *key, const char *work, GError **error)
{
    const char *v[] = {key, work};
    g_autofree char *what = g_strdup_printf("one-shot assignment %s for %s", work, key);
    return write_row((Pg *)sh, q_consume, 2, v, TRUE, what, error);
}

static gint64 pg_mark_once(PolicyShared *sh, const char *device_key, const char *what, gint64 now,
                           GError **error)
{
    char t[32];
    g_snprintf(t, sizeof(t), "%" G_GINT64_FORMAT, now);
    const char *v[] = {device_key, what, t};
    g_autofree char *w = g_strdup_printf("one-shot work %s for %s", what, device_key);
    return write_row((Pg *)sh, q_mark, 3, v, TRUE, w, error);
}

static gint64 pg_clear_once(PolicyShared *sh, const char *device_key, GError **error)
{
    const char *v[] = {device_key};
    return write_row((Pg *)sh, q_clear_once, 1, v, FALSE, "one-shot marks not removed", error);
}

static PolicySharedSnapshot *pg_take(PolicyShared *sh)
{
    Pg *g = (Pg *)sh;
    g_mutex_lock(&g->lock);
    PolicySharedSnapshot *s = g_steal_pointer(&g->snap);
    g_mutex_unlock(&g->lock);
    return s;
}

static void pg_close(PolicyShared *sh)
{
    Pg *g = (Pg *)sh;
    if (g == NULL)
        return;
    if (g->thread != NULL) {
        g_mutex_lock(&g->lock);
        g->closing = TRUE;
        g_cond_broadcast(&g->cond);
        g_mutex_unlock(&g->lock);
        g_thread_join(g->thread);
    }
    if (g->conn != NULL)
        PQfinish(g->conn);
    if (g->wconn != NULL)
        PQfinish(g->wconn);
    policy_shared_snapshot_free(g->snap);
    pb_pq_conninfo_free(g->conninfo);
    g_mutex_clear(&g->lock);
    g_cond_clear(&g->cond);
    g_free(g);
}

static const PolicySharedOps pg_ops = {
    .name = "postgresql",
    .assign = pg_assign,
    .unassign = pg_unassign,
    .consume = pg_consume,
    .mark_once = pg_mark_once,
    .clear_once = pg_clear_once,
    .take = pg_take,
    .close = pg_close,
};

PolicyShared *policy_shared_pg_open(const char *conninfo, PolicySharedLogFn log, void *log_data,
                                    GError **error)
{
    if (!pb_pq_conninfo_check(conninfo, error))
        return NULL;
    Pg *g = g_new0(Pg, 1);
    g->base.ops = &pg_ops;
    g->conninfo = g_strdup(conninfo);
    g->log = log;
    g->log_data = log_data;
    g->seen = -1;
    g_mutex_init(&g->lock);
    g_cond_init(&g->cond);
    g->thread = g_thread_new("policy-pg", thread_main, g);
    /* A server starts coherent when it can: its first decisions then see what the others
     * assigned while it was down. */
    gint64 until = g_get_monotonic_time() + FIRST_WAIT;
    g_mutex_lock(&g->lock);
    while (!g->first && g_cond_wait_until(&g->cond, &g->lock, until))
        ;
    g_mutex_unlock(&g->lock);
    return &g->base;
}

char *policy_store_conninfo(const char *db, const char *password_file, GError **error)
{
    return pb_pq_conninfo(db, password_file, error);
}

void policy_store_conninfo_free(char *conninfo)
{
    pb_pq_conninfo_free(conninfo);
}
