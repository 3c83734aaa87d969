/* local-backend.c - libpreboot-local, the imaging backend used when LIBRARY_NAME is empty:
 * chunks in lib/image's chunk store on the local filesystem, the catalog, the result log and
 * the lasting statistics in SQLite, all under one directory:
 *
 *   STORE/preboot-store, chunks/HH/HASH.zst|.raw, tmp/   the chunk store (preboot-image(5))
 *   STORE/manifests/SEAL.pbm                              manifest texts, named by their seal
 *   STORE/catalog.db                                      images, results, stats (SQLite)
 *
 * Atomic everywhere: a chunk is written to tmp/, synced, checked against its hash and only
 * then renamed to its real name; a manifest is written and synced under its seal before the
 * catalog row naming it is committed, so a crash leaves either the old image or the new one,
 * never half of either. What a crash leaves in tmp/ and manifests nobody names are removed
 * at open. A full disk fails the write in hand (NO_SPACE) and touches nothing stored.
 *
 * Every callback may run on any thread: the catalog's one SQLite connection is used under a
 * mutex; the chunk files need no lock (rename is atomic, a chunk's bytes never change). */
#include "build-config.h"

#include <preboot/backend.h>

#include "backend-common.h"
#include "image-format.h"
#include "image-os.h"
#include "image-store.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* Temporary chunk uploads of this backend: removed at open (the daemon holds the store). */
#define TMP_PREFIX "srv-"
/* The result log keeps this many entries; older ones go. */
#define RESULTS_KEEP 100000

typedef struct {
    PbStore *store;
    char *dir;
    GMutex lock; /* the SQLite connection */
    sqlite3 *db;
    guint64 results_added;
    void (*log)(void *, int, const char *);
    void *log_data;
} Local;

typedef struct {
    int fd;
} Reader;

typedef struct {
    Local *l;
    guint8 hash[PB_HASH_LEN];
    PbCodec codec;
    guint64 length, written;
    char *tmp;
    int fd;
} Writer;

static uint32_t errno_status(int e)
{
    return e == ENOSPC || e == EDQUOT ? PB_BACKEND_NO_SPACE : PB_BACKEND_IO;
}

static uint32_t db_fail(Local *l, pb_backend_error *err, const char *what)
{
    int code = sqlite3_errcode(l->db);
    return pb_be_fail(err, code == SQLITE_FULL ? PB_BACKEND_NO_SPACE : PB_BACKEND_IO,
                      "catalog: %s: %s", what, sqlite3_errmsg(l->db));
}

#define say(l, level, ...) pb_be_say((l)->log, (l)->log_data, level, __VA_ARGS__)

static gboolean fsync_dir(const char *dir)
{
    return pb_image_os_sync_dir(dir);
}

/* ---- open and close ----------------------------------------------------------------------- */

/* WAL with synchronous NORMAL: every transaction is atomic and survives a crash of the
 * daemon; only a power loss may forget the last ones (a commit the client then repeats).
 * FULL would fsync for every result logged, on the daemon's main loop. */
static const char schema[] =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = NORMAL;"
    "CREATE TABLE IF NOT EXISTS images ("
    "  name TEXT PRIMARY KEY, disk_size INTEGER, chunks INTEGER,"
    "  data_bytes INTEGER, stored_bytes INTEGER, created INTEGER,"
    "  seal TEXT NOT NULL, location TEXT NOT NULL DEFAULT '',"
    "  manifest_size INTEGER);"
    "CREATE TABLE IF NOT EXISTS results ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER, source TEXT,"
    "  mac TEXT, uuid TEXT, serial TEXT, type TEXT, image TEXT,"
    "  result TEXT, message TEXT, bytes_written INTEGER,"
    "  bytes_transferred INTEGER, duration_ms INTEGER, work_id TEXT);"
    "CREATE TABLE IF NOT EXISTS stats (name TEXT PRIMARY KEY, value INTEGER);";

static char *manifest_path(Local *l, const char *seal)
{
    g_autofree char *file = g_strconcat(seal, ".pbm", NULL);
    return g_build_filename(l->dir, "manifests", file, NULL);
}

/* What a crash can leave: uploads in tmp/ and manifests written but never committed. */
static void clean_leftovers(Local *l)
{
    g_autofree char *tmp = g_build_filename(l->dir, "tmp", NULL);
    g_autoptr(GDir) d = g_dir_open(tmp, 0, NULL);
    const char *f;
    guint removed = 0;
    while (d != NULL && (f = g_dir_read_name(d)) != NULL)
        if (g_str_has_prefix(f, TMP_PREFIX)) {
            g_autofree char *p = g_build_filename(tmp, f, NULL);
            removed += unlink(p) == 0;
        }
    g_autoptr(GHashTable) live = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->db, "SELECT seal FROM images", -1, &st, NULL) == SQLITE_OK)
        while (sqlite3_step(st) == SQLITE_ROW)
            g_hash_table_add(live, g_strdup((const char *)sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    g_autofree char *mdir = g_build_filename(l->dir, "manifests", NULL);
    g_autoptr(GDir) md = g_dir_open(mdir, 0, NULL);
    while (md != NULL && (f = g_dir_read_name(md)) != NULL) {
        g_autofree char *seal = g_strndup(f, strcspn(f, "."));
        if (g_str_has_suffix(f, ".pbm") && g_hash_table_contains(live, seal))
            continue;
        g_autofree char *p = g_build_filename(mdir, f, NULL);
        removed += unlink(p) == 0;
    }
    if (removed > 0)
        say(l, PB_LOG_WARNING, "removed %u file(s) an interrupted upload left in %s", removed,
            l->dir);
}

/* STORE/images/NAME.pbm, what preboot-img reads in a local store (and what its gc keeps
 * chunks for), is a hard link to the manifest the catalog names, switched atomically by a
 * rename. The catalog stays the truth: open() relinks whatever a crash left stale. */
static void mirror(Local *l, const char *name, const char *seal)
{
    g_autofree char *src = manifest_path(l, seal);
    g_autofree char *file = g_strconcat(name, ".pbm", NULL);
    g_autofree char *dest = g_build_filename(l->dir, "images", file, NULL);
    if (pb_image_os_same_file(src, dest))
        return;
    g_autofree char *tmp = g_build_filename(l->dir, "tmp", TMP_PREFIX "link", NULL);
    unlink(tmp);
    if (!pb_image_os_link(src, tmp) || !pb_image_os_rename(tmp, dest)) {
        say(l, PB_LOG_WARNING, "cannot link %s to %s: %s", dest, src, g_strerror(errno));
        unlink(tmp);
    }
}

static void unmirror(Local *l, const char *name)
{
    g_autofree char *file = g_strconcat(name, ".pbm", NULL);
    g_autofree char *dest = g_build_filename(l->dir, "images", file, NULL);
    unlink(dest);
}

static void mirror_all(Local *l)
{
    sqlite3_stmt *st = NULL;
    g_autoptr(GHashTable) names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (sqlite3_prepare_v2(l->db, "SELECT name, seal FROM images WHERE location = ''", -1, &st,
                           NULL) == SQLITE_OK)
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(st, 0);
            mirror(l, name, (const char *)sqlite3_column_text(st, 1));
            g_hash_table_add(names, g_strdup(name));
        }
    sqlite3_finalize(st);
    /* an image deleted from the catalog whose link a crash left */
    g_autoptr(GPtrArray) files = pb_store_list(l->store, NULL);
    for (guint i = 0; files != NULL && i < files->len; i++)
        if (!g_hash_table_contains(names, files->pdata[i]))
            unmirror(l, files->pdata[i]);
}

static void local_close(void *be)
{
    Local *l = be;
    if (l == NULL)
        return;
    if (l->db != NULL)
        sqlite3_close(l->db);
    pb_store_close(l->store);
    g_mutex_clear(&l->lock);
    g_free(l->dir);
    g_free(l);
}

static void *local_open(const pb_backend_config *cfg, pb_backend_error *err)
{
    const char *loc = PB_HAS_FIELD(pb_backend_config, cfg, location) ? cfg->location : NULL;
    if (loc == NULL || *loc == '\0') {
        pb_be_fail(err, PB_BACKEND_INVALID, "the local backend needs a store directory");
        return NULL;
    }
    Local *l = g_new0(Local, 1);
    g_mutex_init(&l->lock);
    l->dir = g_strdup(loc);
    if (PB_HAS_FIELD(pb_backend_config, cfg, log_data)) {
        l->log = cfg->log;
        l->log_data = cfg->log_data;
    }
    g_autoptr(GError) e = NULL;
    l->store = pb_store_open(loc, TRUE, &e);
    if (l->store == NULL) {
        pb_be_fail(err, PB_BACKEND_IO, "%s", e->message);
        local_close(l);
        return NULL;
    }
    g_autofree char *mdir = g_build_filename(loc, "manifests", NULL);
    if (g_mkdir_with_parents(mdir, 0755) != 0) {
        pb_be_fail(err, PB_BACKEND_IO, "cannot create %s: %s", mdir, g_strerror(errno));
        local_close(l);
        return NULL;
    }
    g_autofree char *db = g_build_filename(loc, "catalog.db", NULL);
    char *msg = NULL;
    if (sqlite3_open_v2(db, &l->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(l->db, 5000) != SQLITE_OK ||
        sqlite3_exec(l->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        pb_be_fail(err, PB_BACKEND_IO, "%s: %s", db, msg ? msg : sqlite3_errmsg(l->db));
        sqlite3_free(msg);
        local_close(l);
        return NULL;
    }
    clean_leftovers(l);
    mirror_all(l);
    return l;
}

/* ---- chunks ------------------------------------------------------------------------------- */

static char *chunk_file(Local *l, const guint8 hash[PB_HASH_LEN], PbCodec codec)
{
    char hex[PB_HASH_HEX_LEN + 1];
    pb_hash_to_hex(hash, hex);
    return g_strdup_printf("%s/chunks/%.2s/%s.%s", l->dir, hex, hex,
                           codec == PB_CODEC_ZSTD ? "zst" : "raw");
}

/* The decoded length: a zstd frame says it in its header (we only keep frames that do). */
static guint64 decoded_length(const char *path, PbCodec codec, guint64 stored)
{
    if (codec == PB_CODEC_NONE)
        return stored;
    guint8 head[32]; /* ZSTD_FRAMEHEADERSIZE_MAX is 18 */
    int fd = pb_image_os_open_read(path);
    if (fd < 0)
        return 0;
    gssize n = pb_image_os_pread(fd, head, sizeof(head), 0);
    close(fd);
    if (n <= 0)
        return 0;
    unsigned long long fs = ZSTD_getFrameContentSize(head, (size_t)n);
    return fs == ZSTD_CONTENTSIZE_ERROR || fs == ZSTD_CONTENTSIZE_UNKNOWN ? 0 : fs;
}

static void fill_info(Local *l, const PbChunkRef *r, pb_backend_chunk_info *info)
{
    if (!PB_HAS_FIELD(pb_backend_chunk_info, info, length))
        return;
    info->codec = pb_be_backend_codec((PbCodec)r->codec);
    info->stored = r->stored;
    g_autofree char *p = chunk_file(l, r->hash, (PbCodec)r->codec);
    info->length = decoded_length(p, (PbCodec)r->codec, r->stored);
}

static uint32_t local_chunk_stat(void *be, const uint8_t hash[PB_BACKEND_HASH_LEN],
                                 pb_backend_chunk_info *info, pb_backend_error *err)
{
    Local *l = be;
    PbChunkRef r;
    if (!pb_store_has_chunk(l->store, hash, &r))
        return pb_be_fail(err, PB_BACKEND_NOT_FOUND, "chunk not stored");
    if (info != NULL)
        fill_info(l, &r, info);
    return PB_BACKEND_OK;
}

static uint32_t local_chunk_missing(void *be, const uint8_t (*hashes)[PB_BACKEND_HASH_LEN],
                                    size_t n, uint8_t *missing, pb_backend_error *err)
{
    Local *l = be;
    for (size_t i = 0; i < n; i++)
        missing[i] = !pb_store_has_chunk(l->store, hashes[i], NULL);
    return PB_BACKEND_OK;
}

static uint32_t local_chunk_open(void *be, const uint8_t hash[PB_BACKEND_HASH_LEN],
                                 pb_backend_chunk_info *info, void **reader, pb_backend_error *err)
{
    Local *l = be;
    PbChunkRef r;
    if (!pb_store_has_chunk(l->store, hash, &r))
        return pb_be_fail(err, PB_BACKEND_NOT_FOUND, "chunk not stored");
    g_autofree char *p = chunk_file(l, hash, (PbCodec)r.codec);
    int fd = pb_image_os_open_read(p);
    if (fd < 0)
        return pb_be_fail(err, errno == ENOENT ? PB_BACKEND_NOT_FOUND : PB_BACKEND_IO, "%s: %s", p,
                          g_strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) == 0)
        r.stored = (guint64)sb.st_size;
    if (info != NULL)
        fill_info(l, &r, info);
    Reader *rd = g_new0(Reader, 1);
    rd->fd = fd;
    *reader = rd;
    return PB_BACKEND_OK;
}

static int64_t local_chunk_read(void *reader, uint64_t offset, void *buf, size_t len)
{
    Reader *rd = reader;
    gssize n = pb_image_os_pread(rd->fd, buf, len, offset);
    return n < 0 ? -1 : (int64_t)n;
}

static void local_chunk_close(void *reader)
{
    Reader *rd = reader;
    if (rd == NULL)
        return;
    close(rd->fd);
    g_free(rd);
}

static uint32_t local_chunk_begin(void *be, const uint8_t hash[PB_BACKEND_HASH_LEN], uint32_t codec,
                                  uint64_t length, uint64_t stored, void **writer,
                                  pb_backend_error *err)
{
    Local *l = be;
    uint32_t rc = pb_be_chunk_begin_check(l->store, hash, codec, length, stored, err);
    if (rc != PB_BACKEND_OK)
        return rc;
    Writer *w = g_new0(Writer, 1);
    w->l = l;
    memcpy(w->hash, hash, PB_HASH_LEN);
    w->codec = pb_be_codec(codec);
    w->length = length;
    w->tmp = g_build_filename(l->dir, "tmp", TMP_PREFIX "XXXXXX", NULL);
    w->fd = pb_image_os_mkstemp(w->tmp);
    if (w->fd < 0) {
        int e = errno;
        g_free(w->tmp);
        g_free(w);
        return pb_be_fail(err, errno_status(e), "cannot create a temporary file in %s: %s", l->dir,
                          g_strerror(e));
    }
    *writer = w;
    return PB_BACKEND_OK;
}

static void writer_free(Writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp != NULL)
        unlink(w->tmp);
    g_free(w->tmp);
    g_free(w);
}

static uint32_t local_chunk_write(void *writer, const void *data, size_t len, pb_backend_error *err)
{
    Writer *w = writer;
    uint32_t rc = pb_be_chunk_write_check(w->written, len, w->length, err);
    if (rc != PB_BACKEND_OK)
        return rc;
    const guint8 *p = data;
    while (len > 0) {
        ssize_t n = write(w->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n == 0 ? ENOSPC : errno;
            return pb_be_fail(err, errno_status(e), "cannot write %s: %s", w->tmp, g_strerror(e));
        }
        p += n;
        len -= (size_t)n;
        w->written += (guint64)n;
    }
    return PB_BACKEND_OK;
}

static uint32_t local_chunk_commit(void *writer, pb_backend_error *err)
{
    Writer *w = writer;
    uint32_t rc = PB_BACKEND_OK;
    g_autofree char *dest = NULL, *dir = NULL;
    g_autoptr(GMappedFile) mf = NULL;
    g_autoptr(GError) e = NULL;
    g_autofree guint8 *plain = NULL;
    if (!pb_image_os_sync_file(w->fd)) {
        int en = errno;
        rc = pb_be_fail(err, errno_status(en), "cannot write %s: %s", w->tmp, g_strerror(en));
        goto out;
    }
    /* Check what the disk holds, not what we meant to write: read back through a mapping. */
    mf = g_mapped_file_new_from_fd(w->fd, FALSE, &e);
    if (mf == NULL && w->written > 0) {
        rc = pb_be_fail(err, PB_BACKEND_IO, "%s", e->message);
        goto out;
    }
    plain = g_malloc(w->length);
    if (!pb_chunk_decode_verify(w->codec, mf ? g_mapped_file_get_contents(mf) : "", w->written,
                                w->hash, plain, w->length, &e)) {
        rc = pb_be_fail(err, PB_BACKEND_CORRUPT, "%s", e->message);
        goto out;
    }
    dest = chunk_file(w->l, w->hash, w->codec);
    dir = g_path_get_dirname(dest);
    if (g_mkdir_with_parents(dir, 0755) != 0 || !pb_image_os_rename(w->tmp, dest)) {
        int en = errno;
        rc = pb_be_fail(err, errno_status(en), "cannot store %s: %s", dest, g_strerror(en));
        goto out;
    }
    g_clear_pointer(&w->tmp, g_free);
    if (!fsync_dir(dir)) {
        int en = errno;
        rc = pb_be_fail(err, errno_status(en), "cannot sync %s: %s", dir, g_strerror(en));
    }
out:
    writer_free(w);
    return rc;
}

static void local_chunk_abort(void *writer)
{
    if (writer != NULL)
        writer_free(writer);
}

/* ---- the catalog -------------------------------------------------------------------------- */

#define IMAGE_COLUMNS \
    "name, disk_size, chunks, data_bytes, stored_bytes, created, seal, location, manifest_size"

static void image_from_row(sqlite3_stmt *st, pb_backend_image *im)
{
    memset(im, 0, sizeof(*im));
    im->struct_size = sizeof(*im);
    im->name = (const char *)sqlite3_column_text(st, 0);
    im->disk_size = (uint64_t)sqlite3_column_int64(st, 1);
    im->chunks = (uint64_t)sqlite3_column_int64(st, 2);
    im->data_bytes = (uint64_t)sqlite3_column_int64(st, 3);
    im->stored_bytes = (uint64_t)sqlite3_column_int64(st, 4);
    im->created = sqlite3_column_int64(st, 5);
    im->seal = (const char *)sqlite3_column_text(st, 6);
    im->location = (const char *)sqlite3_column_text(st, 7);
    im->manifest_size = (uint64_t)sqlite3_column_int64(st, 8);
}

static uint32_t images_query(Local *l, const char *name, pb_backend_image_fn fn, void *data,
                             pb_backend_error *err)
{
    sqlite3_stmt *st = NULL;
    uint32_t rc = PB_BACKEND_OK;
    guint found = 0;
    g_mutex_lock(&l->lock);
    const char *sql = name ? "SELECT " IMAGE_COLUMNS " FROM images WHERE name = ?"
                           : "SELECT " IMAGE_COLUMNS " FROM images ORDER BY name";
    if (sqlite3_prepare_v2(l->db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(l, err, "list");
        goto out;
    }
    if (name != NULL)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        pb_backend_image im;
        image_from_row(st, &im);
        found++;
        fn(data, &im);
    }
    if (r != SQLITE_DONE)
        rc = db_fail(l, err, "list");
    else if (name != NULL && found == 0)
        rc = pb_be_fail(err, PB_BACKEND_NOT_FOUND, "no image %s", name);
out:
    sqlite3_finalize(st);
    g_mutex_unlock(&l->lock);
    return rc;
}

static uint32_t local_image_list(void *be, pb_backend_image_fn fn, void *data,
                                 pb_backend_error *err)
{
    return images_query(be, NULL, fn, data, err);
}

static uint32_t local_image_info(void *be, const char *name, pb_backend_image_fn fn, void *data,
                                 pb_backend_error *err)
{
    if (name == NULL || !pb_name_valid(name))
        return pb_be_fail(err, PB_BACKEND_INVALID, "invalid image name");
    return images_query(be, name, fn, data, err);
}

static uint32_t local_image_manifest(void *be, const char *name, pb_backend_bytes_fn fn, void *data,
                                     pb_backend_error *err)
{
    Local *l = be;
    char seal[PB_HASH_HEX_LEN + 1] = "";
    uint32_t rc = local_image_info(be, name, pb_be_take_seal, seal, err);
    if (rc != PB_BACKEND_OK)
        return rc;
    if (!pb_be_seal_valid(seal))
        return pb_be_fail(err, PB_BACKEND_IO, "image %s: bad seal in the catalog", name);
    g_autofree char *p = manifest_path(l, seal);
    int fd = pb_image_os_open_read(p);
    if (fd < 0)
        return pb_be_fail(err, PB_BACKEND_IO, "image %s: %s: %s", name, p, g_strerror(errno));
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return pb_be_fail(err, PB_BACKEND_IO, "%s: %s", p, g_strerror(e));
        }
        if (n == 0)
            break;
        if (!fn(data, buf, (size_t)n)) {
            close(fd);
            return pb_be_fail(err, PB_BACKEND_IO, "manifest reader stopped");
        }
    }
    close(fd);
    return PB_BACKEND_OK;
}

/* Writes the manifest under its seal: synced before any catalog row names it. */
static uint32_t write_manifest(Local *l, const char *seal, const char *text, size_t len,
                               pb_backend_error *err)
{
    g_autofree char *dest = manifest_path(l, seal);
    if (g_file_test(dest, G_FILE_TEST_IS_REGULAR))
        return PB_BACKEND_OK; /* the same seal is the same text */
    g_autofree char *tmp = g_build_filename(l->dir, "tmp", TMP_PREFIX "XXXXXX", NULL);
    int fd = pb_image_os_mkstemp(tmp);
    if (fd < 0)
        return pb_be_fail(err, errno_status(errno), "cannot create a temporary file: %s",
                          g_strerror(errno));
    const char *p = text;
    size_t left = len;
    int e = 0;
    while (left > 0 && e == 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            e = n == 0 ? ENOSPC : errno;
        else {
            p += n;
            left -= (size_t)n;
        }
    }
    if (e == 0 && !pb_image_os_sync_file(fd))
        e = errno;
    if (close(fd) != 0 && e == 0)
        e = errno;
    if (e == 0 && !pb_image_os_rename(tmp, dest))
        e = errno;
    if (e != 0) {
        unlink(tmp);
        return pb_be_fail(err, errno_status(e), "cannot write the manifest: %s", g_strerror(e));
    }
    g_autofree char *dir = g_path_get_dirname(dest);
    fsync_dir(dir);
    return PB_BACKEND_OK;
}

static uint32_t local_image_commit(void *be, const pb_backend_image *image, const char *manifest,
                                   size_t manifest_len,
                                   const uint8_t (*data_hashes)[PB_BACKEND_HASH_LEN],
                                   size_t n_hashes, uint32_t flags,
                                   void (*missing_fn)(void *, const char *), void *missing_data,
                                   bool *replaced, pb_backend_error *err)
{
    Local *l = be;
    uint32_t rc = pb_be_image_check(image, err);
    if (rc != PB_BACKEND_OK)
        return rc;
    /* Chunks are removed only by local_gc, which never runs during a commit (backend.h), so
     * checking them before taking the catalog lock is enough. */
    g_autofree uint8_t *absent = g_malloc0(n_hashes + 1);
    for (size_t i = 0; i < n_hashes; i++)
        absent[i] = !pb_store_has_chunk(l->store, data_hashes[i], NULL);
    rc = pb_be_report_missing(data_hashes, n_hashes, absent, missing_fn, missing_data, err);
    if (rc != PB_BACKEND_OK)
        return rc;
    rc = write_manifest(l, image->seal, manifest, manifest_len, err);
    if (rc != PB_BACKEND_OK)
        return rc;
    g_mutex_lock(&l->lock);
    sqlite3_stmt *st = NULL;
    gboolean exists = FALSE;
    if (sqlite3_exec(l->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(l, err, "begin");
        goto out;
    }
    if (sqlite3_prepare_v2(l->db, "SELECT 1 FROM images WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(l, err, "commit");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, image->name, -1, SQLITE_TRANSIENT);
    exists = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    st = NULL;
    if (exists && (flags & PB_BACKEND_CREATE_ONLY)) {
        rc = pb_be_fail(err, PB_BACKEND_EXISTS, "image %s exists", image->name);
        goto rollback;
    }
    if (sqlite3_prepare_v2(l->db,
                           "INSERT OR REPLACE INTO images (" IMAGE_COLUMNS
                           ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(l, err, "commit");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, image->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)image->disk_size);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)image->chunks);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)image->data_bytes);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)image->stored_bytes);
    sqlite3_bind_int64(st, 6, image->created ? image->created : g_get_real_time() / G_USEC_PER_SEC);
    sqlite3_bind_text(st, 7, image->seal, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, image->location ? image->location : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)manifest_len);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(l, err, "commit");
        goto rollback;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(l, err, "commit");
        goto rollback;
    }
    if (replaced != NULL)
        *replaced = exists;
    /* images/NAME.pbm lists what this store can restore: not an image on another server. */
    if (image->location != NULL && *image->location)
        unmirror(l, image->name);
    else
        mirror(l, image->name, image->seal);
    goto out;
rollback:
    sqlite3_finalize(st);
    sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
out:
    g_mutex_unlock(&l->lock);
    return rc;
}

static uint32_t local_image_delete(void *be, const char *name, pb_backend_error *err)
{
    Local *l = be;
    if (name == NULL || !pb_name_valid(name))
        return pb_be_fail(err, PB_BACKEND_INVALID, "invalid image name");
    uint32_t rc = PB_BACKEND_OK;
    sqlite3_stmt *st = NULL;
    g_mutex_lock(&l->lock);
    if (sqlite3_prepare_v2(l->db, "DELETE FROM images WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(l, err, "delete");
        goto out;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(l, err, "delete");
    else if (sqlite3_changes(l->db) == 0)
        rc = pb_be_fail(err, PB_BACKEND_NOT_FOUND, "no image %s", name);
    else
        unmirror(l, name);
out:
    sqlite3_finalize(st);
    g_mutex_unlock(&l->lock);
    return rc;
}

/* ---- results and statistics --------------------------------------------------------------- */

static uint32_t local_result_add(void *be, const pb_backend_result *r, pb_backend_error *err)
{
    Local *l = be;
    if (!PB_HAS_FIELD(pb_backend_result, r, work_id))
        return pb_be_fail(err, PB_BACKEND_INVALID, "result struct too small");
    uint32_t rc = PB_BACKEND_OK;
    sqlite3_stmt *st = NULL;
    g_mutex_lock(&l->lock);
    if (sqlite3_prepare_v2(l->db,
                           "INSERT INTO results (time, source, mac, uuid, serial, type, image, "
                           "result, message, bytes_written, bytes_transferred, duration_ms, "
                           "work_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(l, err, "log");
        goto out;
    }
    sqlite3_bind_int64(st, 1, r->time ? r->time : g_get_real_time() / G_USEC_PER_SEC);
    const char *texts[] = {r->source, r->mac,   r->uuid,   r->serial,
                           r->type,   r->image, r->result, r->message};
    for (int i = 0; i < 8; i++)
        sqlite3_bind_text(st, 2 + i, texts[i] ? texts[i] : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 10, (sqlite3_int64)r->bytes_written);
    sqlite3_bind_int64(st, 11, (sqlite3_int64)r->bytes_transferred);
    sqlite3_bind_int64(st, 12, (sqlite3_int64)r->duration_ms);
    sqlite3_bind_text(st, 13, r->work_id ? r->work_id : "", -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(l, err, "log");
    /* A bounded log: every so often the oldest entries beyond RESULTS_KEEP go. */
    if (rc == PB_BACKEND_OK && ++l->results_added % 1000 == 0) {
        char sql[160];
        g_snprintf(sql, sizeof(sql),
                   "DELETE FROM results WHERE id <= (SELECT MAX(id) FROM results) - %d",
                   RESULTS_KEEP);
        sqlite3_exec(l->db, sql, NULL, NULL, NULL);
    }
out:
    sqlite3_finalize(st);
    g_mutex_unlock(&l->lock);
    return rc;
}

static const char *col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static uint32_t local_result_list(void *be, uint32_t limit, pb_backend_result_fn fn, void *data,
                                  pb_backend_error *err)
{
    Local *l = be;
    uint32_t rc = PB_BACKEND_OK;
    sqlite3_stmt *st = NULL;
    g_mutex_lock(&l->lock);
    if (sqlite3_prepare_v2(l->db,
                           "SELECT time, source, mac, uuid, serial, type, image, result, message, "
                           "bytes_written, bytes_transferred, duration_ms, work_id FROM results "
                           "ORDER BY id DESC LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(l, err, "log");
        goto out;
    }
    sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : -1);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        pb_backend_result e = {
            .struct_size = sizeof(e),
            .time = sqlite3_column_int64(st, 0),
            .source = col(st, 1),
            .mac = col(st, 2),
            .uuid = col(st, 3),
            .serial = col(st, 4),
            .type = col(st, 5),
            .image = col(st, 6),
            .result = col(st, 7),
            .message = col(st, 8),
            .bytes_written = (uint64_t)sqlite3_column_int64(st, 9),
            .bytes_transferred = (uint64_t)sqlite3_column_int64(st, 10),
            .duration_ms = (uint64_t)sqlite3_column_int64(st, 11),
            .work_id = col(st, 12),
        };
        fn(data, &e);
    }
    if (r != SQLITE_DONE)
        rc = db_fail(l, err, "log");
out:
    sqlite3_finalize(st);
    g_mutex_unlock(&l->lock);
    return rc;
}

static uint32_t local_stat_add(void *be, const char *name, int64_t delta, pb_backend_error *err)
{
    Local *l = be;
    uint32_t rc = PB_BACKEND_OK;
    sqlite3_stmt *st = NULL;
    g_mutex_lock(&l->lock);
    if (sqlite3_prepare_v2(l->db,
                           "INSERT INTO stats (name, value) VALUES (?1, ?2) "
                           "ON CONFLICT(name) DO UPDATE SET value = value + ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(l, err, "stats");
        goto out;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, delta);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(l, err, "stats");
out:
    sqlite3_finalize(st);
    g_mutex_unlock(&l->lock);
    return rc;
}

static uint32_t local_stat_list(void *be, pb_backend_stat_fn fn, void *data, pb_backend_error *err)
{
    Local *l = be;
    uint32_t rc = PB_BACKEND_OK;
    sqlite3_stmt *st = NULL;
    g_mutex_lock(&l->lock);
    if (sqlite3_prepare_v2(l->db, "SELECT name, value FROM stats ORDER BY name", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(l, err, "stats");
        goto out;
    }
    while (sqlite3_step(st) == SQLITE_ROW)
        fn(data, col(st, 0), sqlite3_column_int64(st, 1));
out:
    sqlite3_finalize(st);
    g_mutex_unlock(&l->lock);
    return rc;
}

/* ---- garbage collection ------------------------------------------------------------------ */

static int cmp_hash(const void *a, const void *b)
{
    return memcmp(a, b, PB_HASH_LEN);
}

/* Adds the DATA chunks of the manifest under seal to live. */
static uint32_t add_live(Local *l, const char *seal, GHashTable *live, pb_backend_error *err)
{
    g_autofree char *p = manifest_path(l, seal);
    g_autofree char *text = NULL;
    gsize len = 0;
    g_autoptr(GError) e = NULL;
    if (!g_file_get_contents(p, &text, &len, &e))
        return pb_be_fail(err, PB_BACKEND_IO, "gc not run: %s", e->message);
    g_autoptr(PbManifest) m = pb_manifest_parse(text, len, &e);
    if (m == NULL)
        return pb_be_fail(err, PB_BACKEND_IO, "gc not run: %s: %s", p, e->message);
    for (guint i = 0; i < m->chunks->len; i++) {
        const PbChunkRef *r = &g_array_index(m->chunks, PbChunkRef, i);
        if (r->kind == PB_CHUNK_DATA)
            g_hash_table_add(live, g_bytes_new(r->hash, PB_HASH_LEN));
    }
    return PB_BACKEND_OK;
}

/* The plugin sends no chunk put and no commit while this runs (backend.h): the catalog read
 * first is the one that holds when the files go. Temporary files are left alone: they are
 * uploads in flight (or a crash's leftovers, which open() removes). */
static uint32_t local_gc(void *be, const uint8_t (*keep)[PB_BACKEND_HASH_LEN], size_t n_keep,
                         uint64_t *chunks_removed, uint64_t *bytes_removed, pb_backend_error *err)
{
    Local *l = be;
    *chunks_removed = *bytes_removed = 0;
    g_autoptr(GPtrArray) seals = g_ptr_array_new_with_free_func(g_free);
    g_mutex_lock(&l->lock);
    sqlite3_stmt *st = NULL;
    uint32_t rc = PB_BACKEND_OK;
    if (sqlite3_prepare_v2(l->db, "SELECT seal FROM images WHERE location = ''", -1, &st, NULL) !=
        SQLITE_OK)
        rc = db_fail(l, err, "gc");
    else
        while (sqlite3_step(st) == SQLITE_ROW)
            g_ptr_array_add(seals, g_strdup((const char *)sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    g_mutex_unlock(&l->lock);
    if (rc != PB_BACKEND_OK)
        return rc;
    g_autoptr(GHashTable) live =
        g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, NULL);
    for (guint i = 0; i < seals->len; i++) {
        const char *seal = seals->pdata[i];
        if (strlen(seal) != PB_HASH_HEX_LEN || strspn(seal, "0123456789abcdef") != PB_HASH_HEX_LEN)
            return pb_be_fail(err, PB_BACKEND_IO, "gc not run: bad seal in the catalog");
        rc = add_live(l, seal, live, err);
        if (rc != PB_BACKEND_OK)
            return rc;
    }
    g_autofree char *chunks = g_build_filename(pb_store_path(l->store), "chunks", NULL);
    g_autoptr(GError) e = NULL;
    g_autoptr(GDir) top = g_dir_open(chunks, 0, &e);
    if (top == NULL)
        return pb_be_fail(err, PB_BACKEND_IO, "gc: %s", e->message);
    const char *sub;
    while ((sub = g_dir_read_name(top)) != NULL) {
        g_autofree char *subdir = g_build_filename(chunks, sub, NULL);
        g_autoptr(GDir) d = g_dir_open(subdir, 0, NULL);
        const char *f;
        while (d != NULL && (f = g_dir_read_name(d)) != NULL) {
            guint8 h[PB_HASH_LEN];
            /* Only chunk files (HASH.zst, HASH.raw) are ours to judge. */
            if (strlen(f) != PB_HASH_HEX_LEN + 4 || !pb_hash_from_hex(f, PB_HASH_HEX_LEN, h) ||
                (strcmp(f + PB_HASH_HEX_LEN, ".zst") != 0 &&
                 strcmp(f + PB_HASH_HEX_LEN, ".raw") != 0))
                continue;
            g_autoptr(GBytes) key = g_bytes_new_static(h, PB_HASH_LEN);
            if (g_hash_table_contains(live, key) ||
                (n_keep > 0 && bsearch(h, keep, n_keep, PB_HASH_LEN, cmp_hash) != NULL))
                continue;
            g_autofree char *p = g_build_filename(subdir, f, NULL);
            struct stat sb;
            if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && unlink(p) == 0) {
                (*chunks_removed)++;
                *bytes_removed += (guint64)sb.st_size;
            }
        }
    }
    if (*chunks_removed > 0)
        say(l, PB_LOG_TRANSACTION,
            "gc removed %" G_GUINT64_FORMAT " chunk(s), %" G_GUINT64_FORMAT " bytes",
            *chunks_removed, *bytes_removed);
    return PB_BACKEND_OK;
}

static const pb_backend local_backend = {
    .header = PB_BACKEND_HEADER("local", PACKAGE_VERSION),
    .description = "chunk store on the local filesystem, catalog and results in SQLite",
    .open = local_open,
    .close = local_close,
    .chunk_stat = local_chunk_stat,
    .chunk_missing = local_chunk_missing,
    .chunk_open = local_chunk_open,
    .chunk_read = local_chunk_read,
    .chunk_close = local_chunk_close,
    .chunk_begin = local_chunk_begin,
    .chunk_write = local_chunk_write,
    .chunk_commit = local_chunk_commit,
    .chunk_abort = local_chunk_abort,
    .image_list = local_image_list,
    .image_info = local_image_info,
    .image_manifest = local_image_manifest,
    .image_commit = local_image_commit,
    .image_delete = local_image_delete,
    .result_add = local_result_add,
    .result_list = local_result_list,
    .stat_add = local_stat_add,
    .stat_list = local_stat_list,
    .gc = local_gc,
};

PB_BACKEND_DEFINE(libpreboot_local, local_backend)
