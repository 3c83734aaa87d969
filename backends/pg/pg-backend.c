/* pg-backend.c - libpreboot-pg, the imaging backend shared by several imaging servers: the
 * catalog, the manifests, which server holds which chunk, the result log and each server's
 * statistics in PostgreSQL (libpq); the bytes of the chunks on each server's own disk, in
 * lib/image's chunk store, as libpreboot-local keeps them.
 *
 *   location   a libpq connection string or service ("service=preboot", "host=/run/pg ...")
 *   state_dir  this server's directory: STATE/preboot-store, chunks/..., tmp/ (the chunk
 *              store), STATE/manifests/SEAL.pbm (manifests fetched or committed here, the
 *              cache a server serves from while the database is away), STATE/catalog.cache
 *              (the catalog rows last read), STATE/pending.log (results and statistics
 *              waiting for the database)
 *   server     this server's imaging URL as the others reach it ("http://HOST:PORT"), or an
 *              address ("HOST[:PORT]", taken as http://HOST[:PORT]); registered in `servers`
 *
 * Replication cannot lie: a chunk this server lacks is fetched at chunk_open from a server the
 * database says holds it, decoded and checked against its hash (pb_chunk_decode_verify)
 * before it is stored here and recorded as held here. A chunk read from the local disk is
 * checked the same way before it is served: a copy that no longer matches its hash is set
 * aside (STATE/tmp/corrupt-HASH), its location row dropped, and fetched again. Nothing is
 * ever deleted on another server.
 *
 * Races between servers are settled by the database: a create-only commit is one INSERT ...
 * ON CONFLICT DO NOTHING (exactly one of two creators inserts); a replacing commit is one
 * upsert. Schema changes are made by open(), under an advisory lock, step by step from the
 * version schema_version records.
 *
 * Without the database (down, restarting, unreachable) the server keeps serving the chunks it
 * holds and the images whose manifests it has cached, appends results and statistics to
 * STATE/pending.log with a warning, and a background thread retries every few seconds and
 * replays the file in one transaction once the database answers again. */
#include "build-config.h"

#include <preboot/backend.h>

#include "backend-common.h"
#include "image-format.h"
#include "image-os.h"
#include "image-store.h"
#include "pq-conn.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#define SCHEMA_VERSION 1
#define LOCK_KEY       1346524999 /* advisory lock of schema migrations ("PBPG") */
#define RETRY_US       (2 * G_USEC_PER_SEC)
#define FETCH_TIMEOUT  60L
#define STALL_S        10L
#define FETCH_BUFFER   (512L * 1024)
/* Pulls in flight: with one core per server, 3 threads and 6 ahead left both servers idle
 * half the time (a 1 GiB replicate 3.7-4.1 s; 6 and 12: 3.2-3.3 s). */
#define READAHEAD         12
#define SYNC_BATCH        32 /* pulled chunks synced and recorded together */
#define READAHEAD_THREADS 6
#define POOL_IDLE         (READAHEAD_THREADS + 2) /* the pulls at once (32 MiB at most) */
#define NEXT_MAX          (1u << 20) /* hashes remembered for read-ahead (about 100 MB) */
#define RESULTS_KEEP      100000
#define API_PATH          "/imaging/v1/"

/* Receive buffers of pulls, each as big as a chunk's body can be and aligned for a direct
 * write, kept for the next pull when its bytes are released: a fresh 4 MiB buffer per
 * chunk cost a page fault and a page clearing per 4 KiB (12 % of B's time in a replicate).
 * Shared by the backend and every buffer out (a reader may outlive a pull, in principle
 * the backend), freed with the last of them. */
typedef struct {
    gint refs;
    GMutex lock;
    GPtrArray *idle; /* at most POOL_IDLE */
    gsize size;
} Pool;

typedef struct {
    PbStore *store;
    char *dir, *conninfo, *server, *base_url;
    GMutex lock; /* conn, pending.log, catalog.cache */
    PGconn *conn;
    gint64 retry_at;
    gboolean down; /* warned, and pending.log may hold entries */
    GThread *retrier;
    GCond wake;
    gboolean closing;
    guint64 results_added;
    void (*log)(void *, int, const char *);
    void *log_data;
    /* Pulls in progress, by hash (64 hex digits -> Flight): a chunk asked for by several
     * clients at once (a room restoring one image through this server) is fetched once,
     * the other callers wait for that fetch. Under flock, never held across the network. */
    GMutex flock;
    GCond flanded;
    GHashTable *flights;
    /* preboot_referral=yes in the connection string: an image committed on another server
     * that this one does not hold whole is answered with that server's address (the
     * plugin's 307, the legacy referral) instead of being pulled here chunk by chunk. */
    gboolean referral;
    GHashTable *whole; /* seals of images held whole here (they stay whole), under flock */
    /* Read-ahead: a chunk pulled because it was asked for is most likely followed by the
     * next ones of the same image (a restore, a replicate, both read in manifest order).
     * The DATA hashes of the manifests read lately, in order (next: hex -> the hex after
     * it), and READAHEAD_THREADS pulling up to READAHEAD of them ahead (queued: hex). */
    GHashTable *next, *queued; /* under flock */
    GThreadPool *ahead;
    GPtrArray *unsynced; /* hex of chunks pulled, not yet synced and recorded; under flock */
    gint ahead_stop;     /* closing: queued read-ahead is dropped */
    /* Idle libcurl handles (under flock): a pull takes one and gives it back, so that the
     * connection to a peer is kept open between chunks instead of set up for each. */
    GPtrArray *handles;
    Pool *pool;
} Pg;

typedef struct {
    guint refs; /* the puller and each waiter */
    gboolean done;
    uint32_t status;
    char message[256];
    /* What the puller fetched and verified, handed to each waiter as it is: reading the
     * stored copy back and hashing it again cost a waiter (a replicate catching up with
     * the read-ahead) as much as the pull itself. */
    GBytes *bytes;
    PbCodec codec;
} Flight;

typedef struct {
    GBytes *bytes;
} Reader;

typedef struct {
    Pg *g;
    guint8 hash[PB_HASH_LEN];
    PbCodec codec;
    guint64 length;
    GByteArray *buf;
} Writer;

static void read_ahead(Pg *g, const char *hex);
static void ahead_main(gpointer data, gpointer user);
static void sync_pulled(Pg *g);
static Pool *pool_new(gsize size);
static void pool_unref(Pool *pl);

/* After a failed store call: lib/image's errors keep errno (g_strerror preserves it). */
static gboolean no_space(void)
{
    return errno == ENOSPC || errno == EDQUOT;
}

#define say(g, level, ...) pb_be_say((g)->log, (g)->log_data, level, __VA_ARGS__)

/* ---- the connection --------------------------------------------------------------------- */

static const char *const migrations[] = {
    /* 1 */
    "CREATE TABLE servers (name text PRIMARY KEY, base_url text NOT NULL,"
    "  last_seen bigint NOT NULL);"
    "CREATE TABLE manifests (seal text PRIMARY KEY, body bytea NOT NULL);"
    "CREATE TABLE images (name text PRIMARY KEY, disk_size bigint NOT NULL,"
    "  chunks bigint NOT NULL, data_bytes bigint NOT NULL, stored_bytes bigint NOT NULL,"
    "  created bigint NOT NULL, seal text NOT NULL REFERENCES manifests(seal),"
    "  manifest_size bigint NOT NULL, origin text NOT NULL);"
    "CREATE TABLE chunk_locations (hash text NOT NULL, server text NOT NULL,"
    "  PRIMARY KEY (hash, server));"
    "CREATE TABLE results (id bigserial PRIMARY KEY, server text NOT NULL, time bigint,"
    "  source text, mac text, uuid text, serial text, type text, image text, result text,"
    "  message text, bytes_written bigint, bytes_transferred bigint, duration_ms bigint,"
    "  work_id text);"
    "CREATE TABLE stats (server text NOT NULL, name text NOT NULL, value bigint NOT NULL,"
    "  PRIMARY KEY (server, name));",
};

/* Creates or migrates the schema, then registers this server. */
static gboolean schema_setup(Pg *g, PGconn *c, char **why)
{
    g_autofree char *now = NULL;
    if (!pb_pq_migrate(c, LOCK_KEY, "schema_version", migrations, (int)G_N_ELEMENTS(migrations),
                       NULL, why))
        return FALSE;
    now = g_strdup_printf("%" G_GINT64_FORMAT, g_get_real_time() / G_USEC_PER_SEC);
    const char *pv[] = {g->server, g->base_url, now};
    PGresult *r =
        PQexecParams(c,
                     "INSERT INTO servers (name, base_url, last_seen) VALUES ($1, $2, $3) "
                     "ON CONFLICT (name) DO UPDATE SET base_url = $2, last_seen = $3",
                     3, NULL, pv, NULL, NULL, 0);
    gboolean ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        *why = g_strdup(pb_pq_message(c));
    return ok;
}

static void pending_replay(Pg *g, PGconn *c);

/* The connection, (re)made when needed; NULL while the database is away (tried again every
 * RETRY_US, so that a server without its database answers at once). Under g->lock. */
static PGconn *db(Pg *g)
{
    if (g->conn != NULL && PQstatus(g->conn) == CONNECTION_OK)
        return g->conn;
    gint64 now = g_get_monotonic_time();
    if (g->conn == NULL && now < g->retry_at)
        return NULL;
    if (g->conn != NULL) {
        PQfinish(g->conn);
        g->conn = NULL;
    }
    PGconn *c = PQconnectdb(g->conninfo);
    g_autofree char *why = NULL;
    if (PQstatus(c) != CONNECTION_OK)
        why = g_strdup(pb_pq_message(c));
    else if (!schema_setup(g, c, &why))
        ;
    else {
        g->conn = c;
        if (g->down)
            say(g, PB_LOG_CRITICAL, "database reachable again: catching up");
        pending_replay(g, c);
        return c;
    }
    PQfinish(c);
    g->retry_at = now + RETRY_US;
    if (!g->down)
        say(g, PB_LOG_WARNING,
            "database unreachable (%s): serving the chunks and cached manifests held here, "
            "queuing results in %s/pending.log until it returns",
            why, g->dir);
    g->down = TRUE;
    return NULL;
}

/* After a failed query: a lost connection makes the next call reconnect. */
static uint32_t db_fail(Pg *g, pb_backend_error *err, const char *what)
{
    uint32_t rc = pb_be_fail(err, PB_BACKEND_IO, "database: %s: %s", what, pb_pq_message(g->conn));
    if (g->conn != NULL && PQstatus(g->conn) != CONNECTION_OK) {
        PQfinish(g->conn);
        g->conn = NULL;
        g->retry_at = 0;
    }
    return rc;
}

/* A connection the database dropped (a restart) is only seen when used: outside a
 * transaction, one reset and one more try. */
static PGresult *query(Pg *g, const char *sql, int n, const char *const *values)
{
    gboolean idle = PQtransactionStatus(g->conn) == PQTRANS_IDLE;
    PGresult *r = PQexecParams(g->conn, sql, n, NULL, values, NULL, NULL, 0);
    if (idle && PQresultStatus(r) == PGRES_FATAL_ERROR && PQstatus(g->conn) == CONNECTION_BAD) {
        PQreset(g->conn);
        if (PQstatus(g->conn) == CONNECTION_OK) {
            PQclear(r);
            r = PQexecParams(g->conn, sql, n, NULL, values, NULL, NULL, 0);
        }
    }
    return r;
}

static gboolean begin(Pg *g)
{
    PGresult *r = query(g, "BEGIN", 0, NULL);
    gboolean ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

/* ---- what waits for the database: pending.log -------------------------------------------- */

/* One line per entry, tab-separated, strings escaped (g_strescape): "R" and the 13 fields of
 * a result, or "S", a name and a delta. Appended and synced; replayed in one transaction. */
static char *pending_path(Pg *g)
{
    return g_build_filename(g->dir, "pending.log", NULL);
}

static gboolean pending_append(Pg *g, const char *line)
{
    g_autofree char *p = pending_path(g);
    int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return FALSE;
    gsize len = strlen(line);
    gboolean ok = write(fd, line, len) == (ssize_t)len && fdatasync(fd) == 0;
    close(fd);
    g->down = TRUE;
    return ok;
}

static const char *const result_cols = "time, source, mac, uuid, serial, type, image, result, "
                                       "message, bytes_written, bytes_transferred, duration_ms, "
                                       "work_id";

static gboolean insert_result(Pg *g, PGconn *c, const char *const *v)
{
    const char *pv[14] = {g->server};
    for (int i = 0; i < 13; i++)
        pv[i + 1] = v[i];
    g_autofree char *sql =
        g_strdup_printf("INSERT INTO results (server, %s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
                        "$9, $10, $11, $12, $13, $14)",
                        result_cols);
    PGresult *r = PQexecParams(c, sql, 14, NULL, pv, NULL, NULL, 0);
    gboolean ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

static gboolean add_stat(Pg *g, PGconn *c, const char *name, const char *delta)
{
    const char *pv[] = {g->server, name, delta};
    PGresult *r = PQexecParams(c,
                               "INSERT INTO stats (server, name, value) VALUES ($1, $2, $3) "
                               "ON CONFLICT (server, name) DO UPDATE SET value = stats.value + $3",
                               3, NULL, pv, NULL, NULL, 0);
    gboolean ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

static void pending_replay(Pg *g, PGconn *c)
{
    g_autofree char *p = pending_path(g);
    g_autofree char *text = NULL;
    if (!g_file_get_contents(p, &text, NULL, NULL)) {
        g->down = FALSE;
        return;
    }
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    guint n = 0;
    gboolean ok = pb_pq_exec_ok(c, "BEGIN");
    for (guint i = 0; ok && lines[i] != NULL; i++) {
        if (*lines[i] == '\0')
            continue;
        g_auto(GStrv) f = g_strsplit(lines[i], "\t", -1);
        for (guint j = 0; f[j] != NULL; j++) {
            char *u = g_strcompress(f[j]);
            g_free(f[j]);
            f[j] = u;
        }
        guint nf = g_strv_length(f);
        if (nf == 14 && strcmp(f[0], "R") == 0)
            ok = insert_result(g, c, (const char *const *)f + 1);
        else if (nf == 3 && strcmp(f[0], "S") == 0)
            ok = add_stat(g, c, f[1], f[2]);
        else
            continue; /* a line cut by a crash */
        n++;
    }
    if (ok && pb_pq_exec_ok(c, "COMMIT") && unlink(p) == 0) {
        if (n > 0)
            say(g, PB_LOG_CRITICAL, "%u queued result(s) and statistic(s) written to the database",
                n);
        g->down = FALSE;
        return;
    }
    pb_pq_exec_ok(c, "ROLLBACK");
    say(g, PB_LOG_WARNING, "cannot replay %s yet: %s", p, pb_pq_message(c));
}

/* Retries the database every RETRY_US while something waits for it. */
static gpointer retrier(gpointer data)
{
    Pg *g = data;
    g_mutex_lock(&g->lock);
    while (!g->closing) {
        gint64 until = g_get_monotonic_time() + RETRY_US;
        while (!g->closing && g_cond_wait_until(&g->wake, &g->lock, until))
            ;
        if (!g->closing && g->down) {
            PGconn *c = db(g); /* a reconnection replays pending.log itself */
            if (c != NULL && g->down)
                pending_replay(g, c);
        }
    }
    g_mutex_unlock(&g->lock);
    return NULL;
}

/* ---- the local catalog cache --------------------------------------------------------------- */

static char *manifest_path(Pg *g, const char *seal)
{
    g_autofree char *file = g_strconcat(seal, ".pbm", NULL);
    return g_build_filename(g->dir, "manifests", file, NULL);
}

static char *cache_path(Pg *g)
{
    return g_build_filename(g->dir, "catalog.cache", NULL);
}

static void cache_put(GKeyFile *k, const pb_backend_image *im)
{
    g_key_file_set_uint64(k, im->name, "disk_size", im->disk_size);
    g_key_file_set_uint64(k, im->name, "chunks", im->chunks);
    g_key_file_set_uint64(k, im->name, "data_bytes", im->data_bytes);
    g_key_file_set_uint64(k, im->name, "stored_bytes", im->stored_bytes);
    g_key_file_set_int64(k, im->name, "created", im->created);
    g_key_file_set_string(k, im->name, "seal", im->seal);
    g_key_file_set_uint64(k, im->name, "manifest_size", im->manifest_size);
}

static void cache_save(Pg *g, GKeyFile *k)
{
    g_autofree char *p = cache_path(g);
    gsize len;
    g_autofree char *text = g_key_file_to_data(k, &len, NULL);
    g_autofree char *old = NULL;
    if (g_file_get_contents(p, &old, NULL, NULL) && strcmp(old, text) == 0)
        return; /* one read per listing; a write only when a row changed */
    g_file_set_contents(p, text, (gssize)len, NULL);
}

static GKeyFile *cache_load(Pg *g)
{
    g_autofree char *p = cache_path(g);
    GKeyFile *k = g_key_file_new();
    g_key_file_load_from_file(k, p, G_KEY_FILE_NONE, NULL);
    return k;
}

static void cache_one(Pg *g, const char *name, const pb_backend_image *im)
{
    g_autoptr(GKeyFile) k = cache_load(g);
    if (im != NULL)
        cache_put(k, im);
    else
        g_key_file_remove_group(k, name, NULL);
    cache_save(g, k);
}

/* Lists the cached rows (name NULL: all) whose manifest is cached here. */
static uint32_t cache_query(Pg *g, const char *name, pb_backend_image_fn fn, void *data,
                            pb_backend_error *err)
{
    g_autoptr(GKeyFile) k = cache_load(g);
    g_auto(GStrv) groups = g_key_file_get_groups(k, NULL);
    guint found = 0;
    for (guint i = 0; groups[i] != NULL; i++) {
        if (name != NULL && strcmp(name, groups[i]) != 0)
            continue;
        g_autofree char *seal = g_key_file_get_string(k, groups[i], "seal", NULL);
        g_autofree char *mp = seal ? manifest_path(g, seal) : NULL;
        if (mp == NULL || !g_file_test(mp, G_FILE_TEST_IS_REGULAR))
            continue;
        pb_backend_image im = {
            .struct_size = sizeof(im),
            .name = groups[i],
            .disk_size = g_key_file_get_uint64(k, groups[i], "disk_size", NULL),
            .chunks = g_key_file_get_uint64(k, groups[i], "chunks", NULL),
            .data_bytes = g_key_file_get_uint64(k, groups[i], "data_bytes", NULL),
            .stored_bytes = g_key_file_get_uint64(k, groups[i], "stored_bytes", NULL),
            .created = g_key_file_get_int64(k, groups[i], "created", NULL),
            .seal = seal,
            .location = "",
            .manifest_size = g_key_file_get_uint64(k, groups[i], "manifest_size", NULL),
        };
        fn(data, &im);
        found++;
    }
    if (name != NULL && found == 0)
        return pb_be_fail(err, PB_BACKEND_IO,
                          "the database is unreachable and image %s is not cached on this server",
                          name);
    return PB_BACKEND_OK;
}

/* ---- open and close ----------------------------------------------------------------------- */

static void handle_free(gpointer c)
{
    curl_easy_cleanup(c);
}

static void pg_close(void *be)
{
    Pg *g = be;
    if (g == NULL)
        return;
    if (g->ahead != NULL) { /* what is queued is dropped; pulls under way end */
        g_atomic_int_set(&g->ahead_stop, 1);
        g_thread_pool_free(g->ahead, FALSE, TRUE);
    }
    if (g->unsynced != NULL && g->store != NULL)
        sync_pulled(g);
    g->ahead = NULL;
    if (g->retrier != NULL) {
        g_mutex_lock(&g->lock);
        g->closing = TRUE;
        g_cond_signal(&g->wake);
        g_mutex_unlock(&g->lock);
        g_thread_join(g->retrier);
    }
    if (g->conn != NULL)
        PQfinish(g->conn);
    pb_store_close(g->store);
    g_cond_clear(&g->wake);
    g_mutex_clear(&g->lock);
    g_clear_pointer(&g->flights, g_hash_table_destroy);
    g_clear_pointer(&g->whole, g_hash_table_destroy);
    g_clear_pointer(&g->next, g_hash_table_destroy);
    g_clear_pointer(&g->queued, g_hash_table_destroy);
    g_clear_pointer(&g->unsynced, g_ptr_array_unref);
    g_clear_pointer(&g->handles, g_ptr_array_unref);
    g_clear_pointer(&g->pool, pool_unref);
    g_cond_clear(&g->flanded);
    g_mutex_clear(&g->flock);
    g_free(g->dir);
    if (g->conninfo != NULL)
        memset(g->conninfo, 0, strlen(g->conninfo)); /* it may hold a password */
    g_free(g->conninfo);
    g_free(g->server);
    g_free(g->base_url);
    g_free(g);
}

static void *pg_open(const pb_backend_config *cfg, pb_backend_error *err)
{
    const char *loc = PB_HAS_FIELD(pb_backend_config, cfg, location) ? cfg->location : NULL;
    const char *dir = PB_HAS_FIELD(pb_backend_config, cfg, state_dir) ? cfg->state_dir : NULL;
    const char *server = PB_HAS_FIELD(pb_backend_config, cfg, server) ? cfg->server : NULL;
    if (loc == NULL || *loc == '\0') {
        pb_be_fail(err, PB_BACKEND_INVALID, "the pg backend needs a connection string (database)");
        return NULL;
    }
    if (dir == NULL || *dir == '\0' || server == NULL || *server == '\0') {
        pb_be_fail(err, PB_BACKEND_INVALID, "the pg backend needs a directory and a server name");
        return NULL;
    }
    Pg *g = g_new0(Pg, 1);
    g_mutex_init(&g->lock);
    g_cond_init(&g->wake);
    g_mutex_init(&g->flock);
    g_cond_init(&g->flanded);
    g->flights = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g->handles = g_ptr_array_new_with_free_func(handle_free);
    g->pool = pool_new(ZSTD_compressBound(PB_CHUNK_SIZE_MAX));
    g->dir = g_strdup(dir);
    g_autofree char *referral = NULL;
    g->conninfo = pb_pq_take_option(loc, "preboot_referral", &referral);
    g->whole = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g->next = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g->queued = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g->unsynced = g_ptr_array_new_with_free_func(g_free);
    if (referral != NULL && strcmp(referral, "yes") != 0 && strcmp(referral, "no") != 0) {
        pb_be_fail(err, PB_BACKEND_INVALID, "database: preboot_referral must be yes or no, not %s",
                   referral);
        pg_close(g);
        return NULL;
    }
    g->referral = referral != NULL && strcmp(referral, "yes") == 0;
    if (PB_HAS_FIELD(pb_backend_config, cfg, log_data)) {
        g->log = cfg->log;
        g->log_data = cfg->log_data;
    }
    if (strstr(server, "://") != NULL) {
        g->base_url = g_strdup_printf("%s%s", server, g_str_has_suffix(server, "/") ? "" : "/");
        /* the server's name: its URL without the scheme */
        g->server = g_strdup(strstr(server, "://") + 3);
        g->server[strcspn(g->server, "/")] = '\0';
    } else {
        g->server = g_strdup(server);
        g->base_url = g_strdup_printf("http://%s" API_PATH, server);
    }
    if (!g_str_has_suffix(g->base_url, API_PATH)) {
        char *b = g_strconcat(g->base_url, API_PATH + 1, NULL);
        g_free(g->base_url);
        g->base_url = b;
    }
    g_autoptr(GError) e = NULL;
    g->store = pb_store_open(dir, TRUE, &e);
    g_autofree char *mdir = g_build_filename(dir, "manifests", NULL);
    if (g->store == NULL || g_mkdir_with_parents(mdir, 0755) != 0) {
        pb_be_fail(err, PB_BACKEND_IO, "%s", e ? e->message : g_strerror(errno));
        pg_close(g);
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        pb_be_fail(err, PB_BACKEND_IO, "cannot initialize libcurl");
        pg_close(g);
        return NULL;
    }
    /* A database that is away at start is not fatal: this server serves what it holds. But
     * a connection string libpq cannot parse is a configuration error. */
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(g->conninfo, &perr);
    if (opts == NULL) {
        pb_be_fail(err, PB_BACKEND_INVALID, "database: %s",
                   perr ? g_strstrip(perr) : "out of memory");
        PQfreemem(perr);
        pg_close(g);
        return NULL;
    }
    PQconninfoFree(opts);
    g_mutex_lock(&g->lock);
    PGconn *c = db(g);
    g_mutex_unlock(&g->lock);
    if (c != NULL)
        say(g, PB_LOG_CRITICAL, "database connected, schema version %d, this server %s (%s)",
            SCHEMA_VERSION, g->server, g->base_url);
    g->retrier = g_thread_new("pg-retry", retrier, g);
    g->ahead = g_thread_pool_new(ahead_main, g, READAHEAD_THREADS, FALSE, NULL);
    return g;
}

/* ---- chunks ------------------------------------------------------------------------------- */

static void hex_of(const uint8_t hash[PB_BACKEND_HASH_LEN], char hex[PB_HASH_HEX_LEN + 1])
{
    pb_hash_to_hex(hash, hex);
}

static guint64 frame_length(PbCodec codec, const void *data, gsize len)
{
    if (codec == PB_CODEC_NONE)
        return len;
    unsigned long long fs = ZSTD_getFrameContentSize(data, len);
    return fs == ZSTD_CONTENTSIZE_ERROR || fs == ZSTD_CONTENTSIZE_UNKNOWN ? 0 : fs;
}

/* Checks stored bytes against hash: decoded and hashed. Uncoded bytes are hashed where they
 * are (the same check pb_chunk_decode_verify makes, without copying 4 MiB to hash the copy). */
static gboolean stored_verify(PbCodec codec, const void *data, gsize len,
                              const guint8 hash[PB_HASH_LEN], GError **error)
{
    guint64 length = frame_length(codec, data, len);
    if (length == 0 || length > PB_CHUNK_SIZE_MAX) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT, "bad length");
        return FALSE;
    }
    if (codec != PB_CODEC_NONE) {
        g_autofree guint8 *plain = g_malloc(length);
        return pb_chunk_decode_verify(codec, data, len, hash, plain, length, error);
    }
    guint8 got[PB_HASH_LEN];
    pb_sha256(data, len, got);
    if (memcmp(got, hash, PB_HASH_LEN) != 0) {
        char hex[PB_HASH_HEX_LEN + 1];
        pb_hash_to_hex(got, hex);
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT,
                    "hash mismatch: the bytes hash to %s", hex);
        return FALSE;
    }
    return TRUE;
}

/* Reads and checks the local copy: the verified stored bytes, or NULL (not here, or corrupt:
 * then set aside, so that it is fetched again). */
static GBytes *local_read(Pg *g, const guint8 hash[PB_HASH_LEN], PbCodec *codec, gboolean *corrupt)
{
    PbChunkRef r;
    *corrupt = FALSE;
    if (!pb_store_has_chunk(g->store, hash, &r))
        return NULL;
    g_autoptr(GError) e = NULL;
    GBytes *b = pb_store_get_chunk(g->store, &r, codec, &e);
    if (b == NULL)
        return NULL;
    gsize len;
    const void *data = g_bytes_get_data(b, &len);
    if (stored_verify(*codec, data, len, hash, &e))
        return b;
    g_bytes_unref(b);
    char hex[PB_HASH_HEX_LEN + 1];
    hex_of(hash, hex);
    g_autofree char *from = g_strdup_printf("%s/chunks/%.2s/%s.%s", g->dir, hex, hex,
                                            *codec == PB_CODEC_ZSTD ? "zst" : "raw");
    g_autofree char *to = g_strdup_printf("%s/tmp/corrupt-%s", g->dir, hex);
    rename(from, to);
    say(g, PB_LOG_CRITICAL, "chunk %s on this server does not match its hash (%s): set aside as %s",
        hex, e->message, to);
    *corrupt = TRUE;
    return NULL;
}

static Pool *pool_new(gsize size)
{
    Pool *pl = g_new0(Pool, 1);
    pl->refs = 1;
    g_mutex_init(&pl->lock);
    pl->idle = g_ptr_array_new_with_free_func(free);
    pl->size = (size + PB_IMAGE_OS_DIRECT_ALIGN - 1) & ~(gsize)(PB_IMAGE_OS_DIRECT_ALIGN - 1);
    return pl;
}

static void pool_unref(Pool *pl)
{
    if (!g_atomic_int_dec_and_test(&pl->refs))
        return;
    g_ptr_array_unref(pl->idle);
    g_mutex_clear(&pl->lock);
    g_free(pl);
}

/* A buffer of pl->size bytes, aligned; NULL when out of memory. */
static void *pool_take(Pool *pl)
{
    g_mutex_lock(&pl->lock);
    void *p = pl->idle->len > 0 ? g_ptr_array_steal_index_fast(pl->idle, pl->idle->len - 1) : NULL;
    g_mutex_unlock(&pl->lock);
    if (p == NULL && posix_memalign(&p, PB_IMAGE_OS_DIRECT_ALIGN, pl->size) != 0)
        return NULL;
    g_atomic_int_inc(&pl->refs);
    return p;
}

typedef struct {
    Pool *pool;
    void *p;
} PoolBuf;

static void pool_give(gpointer data)
{
    PoolBuf *b = data;
    Pool *pl = b->pool;
    g_mutex_lock(&pl->lock);
    if (pl->idle->len < POOL_IDLE)
        g_ptr_array_add(pl->idle, g_steal_pointer(&b->p));
    g_mutex_unlock(&pl->lock);
    free(b->p);
    g_free(b);
    pool_unref(pl);
}

/* A chunk's body as it arrives, in a pool buffer (aligned for a direct write to the store,
 * pb_store_put_chunk_direct). */
typedef struct {
    Pool *pool;
    guint8 *data;
    gsize len;
    char codec[16];
} Fetch;

static size_t fetch_body(char *ptr, size_t size, size_t n, void *data)
{
    Fetch *f = data;
    if (f->data == NULL && (f->data = pool_take(f->pool)) == NULL)
        return 0;
    if (f->len + size * n > f->pool->size)
        return 0; /* more than a chunk can be: cut */
    memcpy(f->data + f->len, ptr, size * n);
    f->len += size * n;
    return size * n;
}

/* The received bytes as GBytes; the buffer goes back to the pool with the last reference. */
static GBytes *fetch_bytes(Fetch *f)
{
    if (f->data == NULL)
        return g_bytes_new(NULL, 0);
    PoolBuf *b = g_new(PoolBuf, 1);
    b->pool = f->pool;
    b->p = f->data;
    return g_bytes_new_with_free_func(f->data, f->len, pool_give, b);
}

static size_t fetch_header(char *ptr, size_t size, size_t n, void *data)
{
    Fetch *f = data;
    gsize len = size * n;
    static const char name[] = "x-preboot-codec:";
    if (len > sizeof(name) && g_ascii_strncasecmp(ptr, name, sizeof(name) - 1) == 0) {
        g_autofree char *v = g_strndup(ptr + sizeof(name) - 1, len - (sizeof(name) - 1));
        g_strlcpy(f->codec, g_strstrip(v), sizeof(f->codec));
    }
    return len;
}

/* GETs the chunk from one server and checks it; the verified bytes or NULL. */
static GBytes *fetch_from(Pg *g, const char *base, const guint8 hash[PB_HASH_LEN], PbCodec *codec,
                          char **why)
{
    char hex[PB_HASH_HEX_LEN + 1];
    hex_of(hash, hex);
    g_autofree char *url = g_strdup_printf("%schunks/%s", base, hex);
    Fetch f = {.pool = g->pool};
    g_mutex_lock(&g->flock);
    CURL *c =
        g->handles->len > 0 ? g_ptr_array_steal_index_fast(g->handles, g->handles->len - 1) : NULL;
    g_mutex_unlock(&g->flock);
    if (c == NULL)
        c = curl_easy_init();
    if (c == NULL) {
        *why = g_strdup("cannot start libcurl");
        return NULL;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, FETCH_TIMEOUT);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    /* A peer that stalls is given up after STALL_S rather than FETCH_TIMEOUT: the caller (a
     * worker of the plugin) is busy meanwhile, and the next server holding it may answer. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, STALL_S);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    /* A chunk is MiBs: received in 512 KiB reads rather than libcurl's default 16 KiB (a
     * recv and a callback each; a 4 MiB chunk took 260 of them). */
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, FETCH_BUFFER);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, fetch_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &f);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) { /* kept with its connection for the next pull */
        g_mutex_lock(&g->flock);
        g_ptr_array_add(g->handles, c);
        g_mutex_unlock(&g->flock);
    } else
        curl_easy_cleanup(c);
    GBytes *b = fetch_bytes(&f);
    if (rc != CURLE_OK) {
        *why = g_strdup_printf("%s: %s", url, curl_easy_strerror(rc));
        g_bytes_unref(b);
        return NULL;
    }
    PbCodec cd = PB_CODEC_NONE;
    if (*f.codec != '\0' && !pb_codec_parse(f.codec, &cd)) {
        *why = g_strdup_printf("%s: unknown codec %s", url, f.codec);
        g_bytes_unref(b);
        return NULL;
    }
    gsize len;
    const void *data = g_bytes_get_data(b, &len);
    g_autoptr(GError) e = NULL;
    if (!stored_verify(cd, data, len, hash, &e)) {
        *why = g_strdup_printf("%s: %s", url, e->message);
        g_bytes_unref(b);
        return NULL;
    }
    *codec = cd;
    return b;
}

/* Syncs the chunks pulled so far and records them as held here, in one statement. */
static void sync_pulled(Pg *g)
{
    g_mutex_lock(&g->flock);
    GPtrArray *hexes = g->unsynced;
    g->unsynced = g_ptr_array_new_with_free_func(g_free);
    g_mutex_unlock(&g->flock);
    if (hexes->len > 0) {
        g_autoptr(GError) e = NULL;
        if (!pb_store_flush(g->store, &e))
            say(g, PB_LOG_WARNING, "pulled chunks not synced: %s", e->message);
        else {
            g_autoptr(GString) list = g_string_new("{");
            for (guint i = 0; i < hexes->len; i++)
                g_string_append_printf(list, "%s%s", i ? "," : "", (char *)hexes->pdata[i]);
            g_string_append_c(list, '}');
            g_mutex_lock(&g->lock);
            if (db(g) != NULL) {
                const char *pv[] = {list->str, g->server};
                PQclear(query(g,
                              "INSERT INTO chunk_locations (hash, server) "
                              "SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING",
                              2, pv));
            }
            g_mutex_unlock(&g->lock);
        }
    }
    g_ptr_array_unref(hexes);
}

/* Pulls a chunk this server lacks from a server that holds it: NOT_FOUND when none has it. */
static uint32_t pull(Pg *g, const guint8 hash[PB_HASH_LEN], GBytes **out, PbCodec *codec,
                     pb_backend_error *err)
{
    char hex[PB_HASH_HEX_LEN + 1];
    hex_of(hash, hex);
    g_autoptr(GPtrArray) urls = g_ptr_array_new_with_free_func(g_free);
    g_mutex_lock(&g->lock);
    if (db(g) != NULL) {
        const char *pv[] = {hex, g->server};
        PGresult *r = query(g,
                            "SELECT s.base_url FROM chunk_locations c JOIN servers s "
                            "ON s.name = c.server WHERE c.hash = $1 AND c.server <> $2 "
                            "ORDER BY s.last_seen DESC",
                            2, pv);
        for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
            g_ptr_array_add(urls, g_strdup(PQgetvalue(r, i, 0)));
        PQclear(r);
    }
    g_mutex_unlock(&g->lock);
    if (urls->len == 0)
        return pb_be_fail(err, PB_BACKEND_NOT_FOUND, "chunk not stored");
    g_autofree char *last = NULL;
    for (guint i = 0; i < urls->len; i++) {
        g_free(last);
        last = NULL;
        GBytes *b = fetch_from(g, urls->pdata[i], hash, codec, &last);
        if (b == NULL) {
            say(g, PB_LOG_WARNING, "chunk %s: %s", hex, last);
            continue;
        }
        g_autoptr(GError) e = NULL;
        gsize len;
        const void *data = g_bytes_get_data(b, &len);
        /* Made durable and recorded as held here in batches (sync_pulled): one syncfs per
         * chunk cost more than the transfer. Served meanwhile from the store's pending
         * copy; the database never names a chunk this server could lose in a crash. */
        /* Written around the page cache: the bytes are served from memory now, and
         * copying them into fresh page-cache pages cost B more than receiving them. */
        if (!pb_store_put_chunk_direct(g->store, hash, *codec, data, len, &e)) {
            uint32_t st = no_space() ? PB_BACKEND_NO_SPACE : PB_BACKEND_IO;
            g_bytes_unref(b);
            return pb_be_fail(err, st, "%s", e->message);
        }
        g_mutex_lock(&g->flock);
        g_ptr_array_add(g->unsynced, g_strdup(hex));
        g_mutex_unlock(&g->flock);
        say(g, PB_LOG_REQUEST, "chunk %s fetched from %s, verified, kept", hex,
            (const char *)urls->pdata[i]);
        *out = b;
        return PB_BACKEND_OK;
    }
    return pb_be_fail(err, PB_BACKEND_NOT_FOUND,
                      "chunk not here, and no server holding it served it (%s)", last ? last : "?");
}

static void flight_unref(Flight *f)
{
    if (--f->refs > 0)
        return;
    if (f->bytes != NULL)
        g_bytes_unref(f->bytes);
    g_free(f);
}

/* pull(), once per hash at a time: a caller finding a pull of the same chunk in progress
 * waits for it, then shares the bytes it verified. */
static uint32_t pull_once(Pg *g, const guint8 hash[PB_HASH_LEN], GBytes **out, PbCodec *codec,
                          pb_backend_error *err)
{
    char hex[PB_HASH_HEX_LEN + 1];
    hex_of(hash, hex);
    g_mutex_lock(&g->flock);
    Flight *f = g_hash_table_lookup(g->flights, hex);
    if (f != NULL) {
        f->refs++;
        while (!f->done)
            g_cond_wait(&g->flanded, &g->flock);
        uint32_t st = f->status;
        char msg[sizeof(f->message)];
        g_strlcpy(msg, f->message, sizeof(msg));
        if (st == PB_BACKEND_OK) {
            *out = g_bytes_ref(f->bytes);
            *codec = f->codec;
        }
        flight_unref(f);
        g_mutex_unlock(&g->flock);
        return st == PB_BACKEND_OK ? st : pb_be_fail(err, st, "%s", msg);
    }
    f = g_new0(Flight, 1);
    f->refs = 1;
    g_hash_table_insert(g->flights, g_strdup(hex), f);
    g_mutex_unlock(&g->flock);

    pb_backend_error mine = {.struct_size = sizeof(mine)};
    uint32_t st = pull(g, hash, out, codec, &mine);
    if (st == PB_BACKEND_OK)
        read_ahead(g, hex);

    g_mutex_lock(&g->flock);
    f->done = TRUE;
    f->status = st;
    g_strlcpy(f->message, mine.message, sizeof(f->message));
    if (st == PB_BACKEND_OK && f->refs > 1) {
        f->bytes = g_bytes_ref(*out);
        f->codec = *codec;
    }
    g_hash_table_remove(g->flights, hex);
    g_cond_broadcast(&g->flanded);
    flight_unref(f);
    /* the last pull of a run, or a batch's worth: sync them */
    gboolean sync = g->unsynced->len >= SYNC_BATCH ||
                    (g->unsynced->len > 0 && g_hash_table_size(g->flights) == 0);
    g_mutex_unlock(&g->flock);
    if (sync)
        sync_pulled(g);
    return st == PB_BACKEND_OK ? st : pb_be_fail(err, st, "%s", mine.message);
}

/* Queues the READAHEAD chunks after hex (in the manifests read lately) that are not here. */
static void read_ahead(Pg *g, const char *hex)
{
    if (g->ahead == NULL)
        return;
    g_mutex_lock(&g->flock);
    const char *h = hex;
    for (int i = 0; i < READAHEAD; i++) {
        h = g_hash_table_lookup(g->next, h);
        if (h == NULL)
            break;
        guint8 hash[PB_HASH_LEN];
        if (g_hash_table_contains(g->queued, h) || g_hash_table_contains(g->flights, h) ||
            !pb_hash_from_hex(h, PB_HASH_HEX_LEN, hash) || pb_store_has_chunk(g->store, hash, NULL))
            continue;
        g_hash_table_add(g->queued, g_strdup(h));
        g_thread_pool_push(g->ahead, g_strdup(h), NULL);
    }
    g_mutex_unlock(&g->flock);
}

static void ahead_main(gpointer data, gpointer user)
{
    Pg *g = user;
    g_autofree char *hex = data;
    guint8 hash[PB_HASH_LEN];
    if (!g_atomic_int_get(&g->ahead_stop) && pb_hash_from_hex(hex, PB_HASH_HEX_LEN, hash) &&
        !pb_store_has_chunk(g->store, hash, NULL)) {
        GBytes *b = NULL;
        PbCodec codec;
        if (pull_once(g, hash, &b, &codec, NULL) == PB_BACKEND_OK)
            g_bytes_unref(b);
    }
    g_mutex_lock(&g->flock);
    g_hash_table_remove(g->queued, hex);
    g_mutex_unlock(&g->flock);
}

/* Remembers the order of a manifest's DATA chunks, for read_ahead. */
static void learn_order(Pg *g, const char *text, gsize len)
{
    g_autoptr(PbManifest) m = pb_manifest_parse(text, len, NULL);
    if (m == NULL)
        return;
    g_mutex_lock(&g->flock);
    if (g_hash_table_size(g->next) + m->chunks->len > NEXT_MAX)
        g_hash_table_remove_all(g->next);
    char prev[PB_HASH_HEX_LEN + 1] = "";
    for (guint i = 0; i < m->chunks->len; i++) {
        const PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, i);
        if (c->kind != PB_CHUNK_DATA)
            continue;
        char hex[PB_HASH_HEX_LEN + 1];
        pb_hash_to_hex(c->hash, hex);
        if (strcmp(hex, prev) == 0)
            continue;
        if (*prev)
            g_hash_table_replace(g->next, g_strdup(prev), g_strdup(hex));
        memcpy(prev, hex, sizeof(prev));
    }
    g_mutex_unlock(&g->flock);
}

static uint32_t pg_chunk_stat(void *be, const uint8_t hash[PB_BACKEND_HASH_LEN],
                              pb_backend_chunk_info *info, pb_backend_error *err)
{
    Pg *g = be;
    PbChunkRef r;
    if (!pb_store_has_chunk(g->store, hash, &r))
        return pb_be_fail(err, PB_BACKEND_NOT_FOUND, "chunk not stored");
    if (info != NULL && PB_HAS_FIELD(pb_backend_chunk_info, info, length)) {
        info->codec = pb_be_backend_codec((PbCodec)r.codec);
        info->stored = r.stored;
        info->length = r.codec == PB_CODEC_NONE ? r.stored : 0;
    }
    return PB_BACKEND_OK;
}

/* Whether any server holds it: here, or where chunk_locations says (this server pulls it when
 * asked). Without the database, what is here. */
static guint held_elsewhere(Pg *g, const uint8_t (*hashes)[PB_BACKEND_HASH_LEN], size_t n,
                            uint8_t *missing)
{
    g_autoptr(GString) list = g_string_new("{");
    guint asked = 0;
    for (size_t i = 0; i < n; i++)
        if (missing[i]) {
            char hex[PB_HASH_HEX_LEN + 1];
            hex_of(hashes[i], hex);
            g_string_append_printf(list, "%s%s", asked++ ? "," : "", hex);
        }
    if (asked == 0)
        return 0;
    g_string_append_c(list, '}');
    g_autoptr(GHashTable) found = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_mutex_lock(&g->lock);
    if (db(g) != NULL) {
        const char *pv[] = {list->str};
        PGresult *r = query(g,
                            "SELECT DISTINCT c.hash FROM chunk_locations c JOIN servers s "
                            "ON s.name = c.server WHERE c.hash = ANY($1::text[])",
                            1, pv);
        for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
            g_hash_table_add(found, g_strdup(PQgetvalue(r, i, 0)));
        PQclear(r);
    }
    g_mutex_unlock(&g->lock);
    guint held = 0;
    for (size_t i = 0; i < n; i++) {
        char hex[PB_HASH_HEX_LEN + 1];
        hex_of(hashes[i], hex);
        if (missing[i] && g_hash_table_contains(found, hex)) {
            missing[i] = 0;
            held++;
        }
    }
    return held;
}

/* Missing means no server holds it: an upload to any server dedups against every server's
 * chunks, and a restore from a server that must pull them first is not refused. */
static uint32_t pg_chunk_missing(void *be, const uint8_t (*hashes)[PB_BACKEND_HASH_LEN], size_t n,
                                 uint8_t *missing, pb_backend_error *err)
{
    Pg *g = be;
    for (size_t i = 0; i < n; i++)
        missing[i] = !pb_store_has_chunk(g->store, hashes[i], NULL);
    held_elsewhere(g, hashes, n, missing);
    return PB_BACKEND_OK;
}

/* The chunk's stored bytes, checked against its hash before anything is served: from this
 * server's disk, else pulled from a server holding it. */
static uint32_t pg_chunk_open(void *be, const uint8_t hash[PB_BACKEND_HASH_LEN],
                              pb_backend_chunk_info *info, void **reader, pb_backend_error *err)
{
    Pg *g = be;
    PbCodec codec = PB_CODEC_NONE;
    gboolean corrupt;
    GBytes *b = local_read(g, hash, &codec, &corrupt);
    if (corrupt) {
        char hex[PB_HASH_HEX_LEN + 1];
        hex_of(hash, hex);
        g_mutex_lock(&g->lock);
        if (db(g) != NULL) {
            const char *pv[] = {hex, g->server};
            PQclear(query(g, "DELETE FROM chunk_locations WHERE hash = $1 AND server = $2", 2, pv));
        }
        g_mutex_unlock(&g->lock);
    }
    if (b == NULL) {
        uint32_t rc = pull_once(g, hash, &b, &codec, err);
        if (rc != PB_BACKEND_OK)
            return rc;
    }
    gsize len;
    const void *data = g_bytes_get_data(b, &len);
    if (info != NULL && PB_HAS_FIELD(pb_backend_chunk_info, info, length)) {
        info->codec = pb_be_backend_codec(codec);
        info->stored = len;
        info->length = frame_length(codec, data, len);
    }
    Reader *rd = g_new0(Reader, 1);
    rd->bytes = b;
    *reader = rd;
    return PB_BACKEND_OK;
}

static int64_t pg_chunk_read(void *reader, uint64_t offset, void *buf, size_t len)
{
    Reader *rd = reader;
    gsize size;
    const guint8 *data = g_bytes_get_data(rd->bytes, &size);
    if (offset >= size)
        return 0;
    size_t n = MIN(len, size - offset);
    memcpy(buf, data + offset, n);
    return (int64_t)n;
}

static void pg_chunk_close(void *reader)
{
    Reader *rd = reader;
    if (rd == NULL)
        return;
    g_bytes_unref(rd->bytes);
    g_free(rd);
}

static uint32_t pg_chunk_begin(void *be, const uint8_t hash[PB_BACKEND_HASH_LEN], uint32_t codec,
                               uint64_t length, uint64_t stored, void **writer,
                               pb_backend_error *err)
{
    Pg *g = be;
    uint32_t rc = pb_be_chunk_begin_check(g->store, hash, codec, length, stored, err);
    if (rc != PB_BACKEND_OK)
        return rc;
    Writer *w = g_new0(Writer, 1);
    w->g = g;
    memcpy(w->hash, hash, PB_HASH_LEN);
    w->codec = pb_be_codec(codec);
    w->length = length;
    w->buf = g_byte_array_new();
    *writer = w;
    return PB_BACKEND_OK;
}

static uint32_t pg_chunk_write(void *writer, const void *data, size_t len, pb_backend_error *err)
{
    Writer *w = writer;
    uint32_t rc = pb_be_chunk_write_check(w->buf->len, len, w->length, err);
    if (rc != PB_BACKEND_OK)
        return rc;
    g_byte_array_append(w->buf, data, (guint)len);
    return PB_BACKEND_OK;
}

static void pg_chunk_abort(void *writer)
{
    Writer *w = writer;
    if (w == NULL)
        return;
    g_byte_array_unref(w->buf);
    g_free(w);
}

static uint32_t pg_chunk_commit(void *writer, pb_backend_error *err)
{
    Writer *w = writer;
    uint32_t rc = PB_BACKEND_OK;
    g_autoptr(GError) e = NULL;
    g_autofree guint8 *plain = g_malloc(w->length);
    if (!pb_chunk_decode_verify(w->codec, w->buf->data, w->buf->len, w->hash, plain, w->length, &e))
        rc = pb_be_fail(err, PB_BACKEND_CORRUPT, "%s", e->message);
    else if (!pb_store_put_chunk(w->g->store, w->hash, w->codec, w->buf->data, w->buf->len, &e) ||
             !pb_store_flush(w->g->store, &e))
        rc = pb_be_fail(err, no_space() ? PB_BACKEND_NO_SPACE : PB_BACKEND_IO, "%s", e->message);
    pg_chunk_abort(w);
    return rc;
}

/* ---- the catalog ------------------------------------------------------------------------ */

#define IMAGE_COLUMNS \
    "name, disk_size, chunks, data_bytes, stored_bytes, created, seal, manifest_size"

static guint64 u64(PGresult *r, int row, int col)
{
    return g_ascii_strtoull(PQgetvalue(r, row, col), NULL, 10);
}

/* Whether every DATA chunk of the image sealed seal is on this server's disk, by its cached
 * manifest (none: it never served the image, so no). Remembered once true: chunks are only
 * removed by gc, of images no longer in the catalog. */
static gboolean held_whole(Pg *g, const char *seal)
{
    g_mutex_lock(&g->flock);
    gboolean known = g_hash_table_contains(g->whole, seal);
    g_mutex_unlock(&g->flock);
    if (known)
        return TRUE;
    g_autofree char *p = manifest_path(g, seal);
    g_autofree char *text = NULL;
    gsize len = 0;
    if (!g_file_get_contents(p, &text, &len, NULL))
        return FALSE;
    g_autoptr(PbManifest) m = pb_manifest_parse(text, len, NULL);
    if (m == NULL)
        return FALSE;
    for (guint i = 0; i < m->chunks->len; i++) {
        const PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, i);
        if (c->kind == PB_CHUNK_DATA && !pb_store_has_chunk(g->store, c->hash, NULL))
            return FALSE;
    }
    g_mutex_lock(&g->flock);
    g_hash_table_add(g->whole, g_strdup(seal));
    g_mutex_unlock(&g->flock);
    return TRUE;
}

/* The catalog entry's location: "" (served here, pulling what is missing), or with referral
 * on, the server that committed an image this one does not hold whole. */
static const char *refer_to(Pg *g, const char *seal, const char *origin)
{
    if (!g->referral || *origin == '\0' || strcmp(origin, g->server) == 0 || held_whole(g, seal))
        return "";
    return origin;
}

static uint32_t images_query(Pg *g, const char *name, pb_backend_image_fn fn, void *data,
                             pb_backend_error *err)
{
    g_mutex_lock(&g->lock);
    if (db(g) == NULL) {
        g_mutex_unlock(&g->lock);
        return cache_query(g, name, fn, data, err);
    }
    const char *pv[] = {name};
    PGresult *r =
        name ? query(g, "SELECT " IMAGE_COLUMNS ", origin FROM images WHERE name = $1", 1, pv)
             : query(g, "SELECT " IMAGE_COLUMNS ", origin FROM images ORDER BY name", 0, NULL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        uint32_t rc = db_fail(g, err, "catalog");
        g_mutex_unlock(&g->lock);
        /* the connection was lost under the query: the cache answers */
        return g->conn == NULL ? cache_query(g, name, fn, data, err) : rc;
    }
    g_autoptr(GKeyFile) k = name ? cache_load(g) : g_key_file_new();
    g_mutex_unlock(&g->lock);
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        pb_backend_image im = {
            .struct_size = sizeof(im),
            .name = PQgetvalue(r, i, 0),
            .disk_size = u64(r, i, 1),
            .chunks = u64(r, i, 2),
            .data_bytes = u64(r, i, 3),
            .stored_bytes = u64(r, i, 4),
            .created = (int64_t)g_ascii_strtoll(PQgetvalue(r, i, 5), NULL, 10),
            .seal = PQgetvalue(r, i, 6),
            .location = refer_to(g, PQgetvalue(r, i, 6), PQgetvalue(r, i, 8)),
            .manifest_size = u64(r, i, 7),
        };
        cache_put(k, &im);
        fn(data, &im);
    }
    PQclear(r);
    g_mutex_lock(&g->lock);
    cache_save(g, k);
    g_mutex_unlock(&g->lock);
    if (name != NULL && n == 0)
        return pb_be_fail(err, PB_BACKEND_NOT_FOUND, "no image %s", name);
    return PB_BACKEND_OK;
}

static uint32_t pg_image_list(void *be, pb_backend_image_fn fn, void *data, pb_backend_error *err)
{
    return images_query(be, NULL, fn, data, err);
}

static uint32_t pg_image_info(void *be, const char *name, pb_backend_image_fn fn, void *data,
                              pb_backend_error *err)
{
    if (name == NULL || !pb_name_valid(name))
        return pb_be_fail(err, PB_BACKEND_INVALID, "invalid image name");
    return images_query(be, name, fn, data, err);
}

/* The manifest text: from this server's cache, else from the database (then cached). The
 * text is checked against its seal either way. */
static uint32_t pg_image_manifest(void *be, const char *name, pb_backend_bytes_fn fn, void *data,
                                  pb_backend_error *err)
{
    Pg *g = be;
    char seal[PB_HASH_HEX_LEN + 1] = "";
    uint32_t rc = pg_image_info(be, name, pb_be_take_seal, seal, err);
    if (rc != PB_BACKEND_OK)
        return rc;
    if (!pb_be_seal_valid(seal))
        return pb_be_fail(err, PB_BACKEND_IO, "image %s: bad seal in the catalog", name);
    g_autofree char *p = manifest_path(g, seal);
    g_autofree char *text = NULL;
    gsize len = 0;
    if (!g_file_get_contents(p, &text, &len, NULL)) {
        g_mutex_lock(&g->lock);
        if (db(g) == NULL) {
            g_mutex_unlock(&g->lock);
            return pb_be_fail(
                err, PB_BACKEND_IO,
                "image %s: the database is unreachable and its manifest is not cached", name);
        }
        const char *pv[] = {seal};
        PGresult *r = PQexecParams(g->conn, "SELECT body FROM manifests WHERE seal = $1", 1, NULL,
                                   pv, NULL, NULL, 1 /* binary: the bytes as they are */);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
            PQclear(r);
            rc = db_fail(g, err, "manifest");
            g_mutex_unlock(&g->lock);
            return rc;
        }
        len = (gsize)PQgetlength(r, 0, 0);
        text = g_memdup2(PQgetvalue(r, 0, 0), len + 1);
        text[len] = '\0';
        PQclear(r);
        g_mutex_unlock(&g->lock);
        g_autoptr(PbManifest) m = pb_manifest_parse(text, len, NULL);
        char got[PB_HASH_HEX_LEN + 1] = "";
        if (m != NULL)
            pb_hash_to_hex(m->seal, got);
        if (m == NULL || strcmp(got, seal) != 0)
            return pb_be_fail(err, PB_BACKEND_CORRUPT,
                              "image %s: the database's manifest fails its seal", name);
        g_file_set_contents(p, text, (gssize)len, NULL);
    }
    learn_order(g, text, len);
    if (!fn(data, text, len))
        return pb_be_fail(err, PB_BACKEND_IO, "manifest reader stopped");
    return PB_BACKEND_OK;
}

static uint32_t pg_image_commit(void *be, const pb_backend_image *image, const char *manifest,
                                size_t manifest_len,
                                const uint8_t (*data_hashes)[PB_BACKEND_HASH_LEN], size_t n_hashes,
                                uint32_t flags, void (*missing_fn)(void *, const char *),
                                void *missing_data, bool *replaced, pb_backend_error *err)
{
    Pg *g = be;
    uint32_t rc = pb_be_image_check(image, err);
    if (rc != PB_BACKEND_OK)
        return rc;
    /* Every chunk is held by some server (here, or where chunk_locations says): then every
     * server can pull what it lacks. Those held here are recorded as held here. */
    g_autofree uint8_t *here = g_malloc0(n_hashes + 1);
    g_autofree uint8_t *absent = g_malloc0(n_hashes + 1);
    for (size_t i = 0; i < n_hashes; i++) {
        here[i] = pb_store_has_chunk(g->store, data_hashes[i], NULL);
        absent[i] = !here[i];
    }
    held_elsewhere(g, data_hashes, n_hashes, absent);
    rc = pb_be_report_missing(data_hashes, n_hashes, absent, missing_fn, missing_data, err);
    if (rc != PB_BACKEND_OK)
        return rc;
    g_autofree char *mp = manifest_path(g, image->seal);
    if (!g_file_test(mp, G_FILE_TEST_IS_REGULAR))
        g_file_set_contents(mp, manifest, (gssize)manifest_len, NULL);
    g_autofree char *created = g_strdup_printf(
        "%" G_GINT64_FORMAT, image->created ? image->created : g_get_real_time() / G_USEC_PER_SEC);
    char *v[5] = {
        g_strdup_printf("%" G_GUINT64_FORMAT, image->disk_size),
        g_strdup_printf("%" G_GUINT64_FORMAT, image->chunks),
        g_strdup_printf("%" G_GUINT64_FORMAT, image->data_bytes),
        g_strdup_printf("%" G_GUINT64_FORMAT, image->stored_bytes),
        g_strdup_printf("%zu", manifest_len),
    };
    gboolean existed = FALSE;
    g_mutex_lock(&g->lock);
    if (db(g) == NULL) {
        g_mutex_unlock(&g->lock);
        return pb_be_fail(
            err, PB_BACKEND_IO,
            "the database is unreachable: images cannot be committed until it returns");
    }
    if (!begin(g)) {
        rc = db_fail(g, err, "begin");
        goto out;
    }
    /* manifest bytes as bytea, binary */
    const char *mv[] = {image->seal, manifest};
    const int ml[] = {0, (int)manifest_len};
    const int mf[] = {0, 1};
    PGresult *r = PQexecParams(g->conn,
                               "INSERT INTO manifests (seal, body) VALUES ($1, $2) "
                               "ON CONFLICT (seal) DO NOTHING",
                               2, NULL, mv, ml, mf, 0);
    gboolean ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        rc = db_fail(g, err, "commit");
        goto rollback;
    }
    const char *pv[] = {image->name, v[0], v[1], v[2], v[3], created, image->seal, v[4], g->server};
    const char *create_sql =
        "INSERT INTO images (" IMAGE_COLUMNS ", origin) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
        "$9) ON CONFLICT (name) DO NOTHING RETURNING false";
    const char *upsert_sql =
        "INSERT INTO images (" IMAGE_COLUMNS ", origin) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
        "$9) ON CONFLICT (name) DO UPDATE SET disk_size = $2, chunks = $3, data_bytes = $4, "
        "stored_bytes = $5, created = $6, seal = $7, manifest_size = $8, origin = $9 "
        "RETURNING (xmax <> 0)";
    r = query(g, (flags & PB_BACKEND_CREATE_ONLY) ? create_sql : upsert_sql, 9, pv);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        rc = db_fail(g, err, "commit");
        goto rollback;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        rc = pb_be_fail(err, PB_BACKEND_EXISTS, "image %s exists", image->name);
        goto rollback;
    }
    existed = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    /* the chunks held here */
    for (size_t i = 0; i < n_hashes; i++) {
        if (!here[i])
            continue;
        char hex[PB_HASH_HEX_LEN + 1];
        hex_of(data_hashes[i], hex);
        const char *lv[] = {hex, g->server};
        r = query(g,
                  "INSERT INTO chunk_locations (hash, server) VALUES ($1, $2) "
                  "ON CONFLICT DO NOTHING",
                  2, lv);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            rc = db_fail(g, err, "commit");
            goto rollback;
        }
    }
    if (!pb_pq_exec_ok(g->conn, "COMMIT")) {
        rc = db_fail(g, err, "commit");
        goto rollback;
    }
    if (replaced != NULL)
        *replaced = existed;
    pb_backend_image cached = *image;
    cached.created = (int64_t)g_ascii_strtoll(created, NULL, 10);
    cached.manifest_size = manifest_len;
    cache_one(g, image->name, &cached);
    goto out;
rollback:
    if (g->conn != NULL)
        pb_pq_exec_ok(g->conn, "ROLLBACK");
out:
    g_mutex_unlock(&g->lock);
    for (int i = 0; i < 5; i++)
        g_free(v[i]);
    return rc;
}

/* Removes the name from the shared catalog. Chunks stay on every server. */
static uint32_t pg_image_delete(void *be, const char *name, pb_backend_error *err)
{
    Pg *g = be;
    if (name == NULL || !pb_name_valid(name))
        return pb_be_fail(err, PB_BACKEND_INVALID, "invalid image name");
    uint32_t rc = PB_BACKEND_OK;
    g_mutex_lock(&g->lock);
    if (db(g) == NULL) {
        g_mutex_unlock(&g->lock);
        return pb_be_fail(err, PB_BACKEND_IO, "the database is unreachable: nothing deleted");
    }
    const char *pv[] = {name};
    PGresult *r = query(g, "DELETE FROM images WHERE name = $1", 1, pv);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = db_fail(g, err, "delete");
    else if (strcmp(PQcmdTuples(r), "0") == 0)
        rc = pb_be_fail(err, PB_BACKEND_NOT_FOUND, "no image %s", name);
    else
        cache_one(g, name, NULL);
    PQclear(r);
    g_mutex_unlock(&g->lock);
    return rc;
}

/* ---- results and statistics --------------------------------------------------------------- */

static uint32_t pg_result_add(void *be, const pb_backend_result *r, pb_backend_error *err)
{
    Pg *g = be;
    if (!PB_HAS_FIELD(pb_backend_result, r, work_id))
        return pb_be_fail(err, PB_BACKEND_INVALID, "result struct too small");
    g_autofree char *t = g_strdup_printf("%" G_GINT64_FORMAT,
                                         r->time ? r->time : g_get_real_time() / G_USEC_PER_SEC);
    g_autofree char *bw = g_strdup_printf("%" G_GUINT64_FORMAT, (guint64)r->bytes_written);
    g_autofree char *bt = g_strdup_printf("%" G_GUINT64_FORMAT, (guint64)r->bytes_transferred);
    g_autofree char *du = g_strdup_printf("%" G_GUINT64_FORMAT, (guint64)r->duration_ms);
#define S(x) ((x) ? (x) : "")
    const char *v[13] = {t,          S(r->source), S(r->mac),    S(r->uuid),    S(r->serial),
                         S(r->type), S(r->image),  S(r->result), S(r->message), bw,
                         bt,         du,           S(r->work_id)};
#undef S
    uint32_t rc = PB_BACKEND_OK;
    g_mutex_lock(&g->lock);
    PGconn *c = g->down ? NULL : db(g); /* while entries wait, new ones queue behind them */
    if (c != NULL && insert_result(g, c, v)) {
        if (++g->results_added % 1000 == 0) {
            g_autofree char *sql = g_strdup_printf(
                "DELETE FROM results WHERE id <= (SELECT max(id) FROM results) - %d", RESULTS_KEEP);
            pb_pq_exec_ok(c, sql);
        }
        goto out;
    }
    if (c != NULL)
        db_fail(g, NULL, "log");
    GString *line = g_string_new("R");
    for (int i = 0; i < 13; i++) {
        g_autofree char *esc = g_strescape(v[i], NULL);
        g_string_append_c(line, '\t');
        g_string_append(line, esc);
    }
    g_string_append_c(line, '\n');
    if (!pending_append(g, line->str))
        rc = pb_be_fail(err, PB_BACKEND_IO,
                        "the database is unreachable and %s/pending.log cannot be "
                        "written: %s",
                        g->dir, g_strerror(errno));
    else
        say(g, PB_LOG_WARNING, "database unreachable: result queued in %s/pending.log", g->dir);
    g_string_free(line, TRUE);
out:
    g_mutex_unlock(&g->lock);
    return rc;
}

static uint32_t pg_result_list(void *be, uint32_t limit, pb_backend_result_fn fn, void *data,
                               pb_backend_error *err)
{
    Pg *g = be;
    g_mutex_lock(&g->lock);
    if (db(g) == NULL) {
        g_mutex_unlock(&g->lock);
        return pb_be_fail(
            err, PB_BACKEND_IO,
            "the database is unreachable: the log is shown once it returns (results are "
            "queued meanwhile)");
    }
    g_autofree char *lim = limit ? g_strdup_printf("%u", limit) : NULL;
    const char *pv[] = {lim};
    g_autofree char *sql =
        g_strdup_printf("SELECT %s FROM results ORDER BY id DESC LIMIT $1", result_cols);
    PGresult *r = query(g, sql, 1, pv);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        uint32_t rc = db_fail(g, err, "log");
        g_mutex_unlock(&g->lock);
        return rc;
    }
    g_mutex_unlock(&g->lock);
    for (int i = 0; i < PQntuples(r); i++) {
        pb_backend_result e = {
            .struct_size = sizeof(e),
            .time = g_ascii_strtoll(PQgetvalue(r, i, 0), NULL, 10),
            .source = PQgetvalue(r, i, 1),
            .mac = PQgetvalue(r, i, 2),
            .uuid = PQgetvalue(r, i, 3),
            .serial = PQgetvalue(r, i, 4),
            .type = PQgetvalue(r, i, 5),
            .image = PQgetvalue(r, i, 6),
            .result = PQgetvalue(r, i, 7),
            .message = PQgetvalue(r, i, 8),
            .bytes_written = u64(r, i, 9),
            .bytes_transferred = u64(r, i, 10),
            .duration_ms = u64(r, i, 11),
            .work_id = PQgetvalue(r, i, 12),
        };
        fn(data, &e);
    }
    PQclear(r);
    return PB_BACKEND_OK;
}

static uint32_t pg_stat_add(void *be, const char *name, int64_t delta, pb_backend_error *err)
{
    Pg *g = be;
    g_autofree char *d = g_strdup_printf("%" G_GINT64_FORMAT, delta);
    uint32_t rc = PB_BACKEND_OK;
    g_mutex_lock(&g->lock);
    PGconn *c = g->down ? NULL : db(g);
    if (c == NULL || !add_stat(g, c, name, d)) {
        if (c != NULL)
            db_fail(g, NULL, "stats");
        g_autofree char *esc = g_strescape(name, NULL);
        g_autofree char *line = g_strdup_printf("S\t%s\t%s\n", esc, d);
        if (!pending_append(g, line))
            rc = pb_be_fail(err, PB_BACKEND_IO,
                            "the database is unreachable and %s/pending.log cannot "
                            "be written",
                            g->dir);
    }
    g_mutex_unlock(&g->lock);
    return rc;
}

/* Totals over every server. */
static uint32_t pg_stat_list(void *be, pb_backend_stat_fn fn, void *data, pb_backend_error *err)
{
    Pg *g = be;
    g_mutex_lock(&g->lock);
    if (db(g) == NULL) {
        g_mutex_unlock(&g->lock);
        return pb_be_fail(err, PB_BACKEND_IO, "the database is unreachable");
    }
    PGresult *r =
        query(g, "SELECT name, sum(value) FROM stats GROUP BY name ORDER BY name", 0, NULL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        uint32_t rc = db_fail(g, err, "stats");
        g_mutex_unlock(&g->lock);
        return rc;
    }
    g_mutex_unlock(&g->lock);
    for (int i = 0; i < PQntuples(r); i++)
        fn(data, PQgetvalue(r, i, 0), g_ascii_strtoll(PQgetvalue(r, i, 1), NULL, 10));
    PQclear(r);
    return PB_BACKEND_OK;
}

static const pb_backend pg_backend = {
    .header = PB_BACKEND_HEADER("pg", PACKAGE_VERSION),
    .description = "catalog, chunk locations, results and statistics in PostgreSQL shared by "
                   "several servers; chunks on each server's disk, pulled and verified on demand",
    .open = pg_open,
    .close = pg_close,
    .chunk_stat = pg_chunk_stat,
    .chunk_missing = pg_chunk_missing,
    .chunk_open = pg_chunk_open,
    .chunk_read = pg_chunk_read,
    .chunk_close = pg_chunk_close,
    .chunk_begin = pg_chunk_begin,
    .chunk_write = pg_chunk_write,
    .chunk_commit = pg_chunk_commit,
    .chunk_abort = pg_chunk_abort,
    .image_list = pg_image_list,
    .image_info = pg_image_info,
    .image_manifest = pg_image_manifest,
    .image_commit = pg_image_commit,
    .image_delete = pg_image_delete,
    .result_add = pg_result_add,
    .result_list = pg_result_list,
    .stat_add = pg_stat_add,
    .stat_list = pg_stat_list,
};

PB_BACKEND_DEFINE(libpreboot_pg, pg_backend)
