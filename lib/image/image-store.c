/* image-store.c - the local chunk store. Writes go to STORE/tmp and reach their real name
 * only by a rename after their bytes are on disk: a crash leaves whole files or stray
 * temporaries (which gc removes), never half a chunk or half a manifest under a real name.
 * Chunks are made durable in batches (pb_store_flush: one syncfs, the renames, another
 * syncfs) rather than with an fsync each, which cost more than hashing and coding them. The OS
 * calls are in image-os-posix.c and image-os-win32.c. */
#include "image-store.h"

#include "image-os.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct PbStore {
    char *path;
    int lock_fd;
    GMutex mu;
    GHashTable *pending; /* hash -> Pending: written to tmp/, not yet renamed */
};

typedef struct {
    char *tmp, *dest;
    guint8 codec;
    guint64 len;
    guint8 base[PB_HASH_LEN]; /* codec DELTA */
} Pending;

/* Chunks written since the last flush, at most: bounds the memory and the work a crash
 * throws away. */
#define PENDING_MAX 1024

static void pending_free(gpointer p)
{
    Pending *pe = p;
    g_free(pe->tmp);
    g_free(pe->dest);
    g_free(pe);
}

static guint hash_hash(gconstpointer p)
{
    guint h;
    memcpy(&h, p, sizeof(h));
    return h;
}
static gboolean hash_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, PB_HASH_LEN) == 0;
}

static gboolean io_error(GError **error, const char *what, const char *path)
{
    int e = errno;
    g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "%s %s: %s", what, path, g_strerror(e));
    return FALSE;
}

const char *pb_store_path(const PbStore *s)
{
    return s->path;
}

PbStore *pb_store_open(const char *path, gboolean create, GError **error)
{
    g_autofree char *marker = g_build_filename(path, "preboot-store", NULL);
    if (!g_file_test(marker, G_FILE_TEST_IS_REGULAR)) {
        if (!create) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING,
                        "%s is not a preboot image store (no preboot-store file)", path);
            return NULL;
        }
        static const char *const dirs[] = {"chunks", "images", "tmp"};
        if (g_mkdir_with_parents(path, 0755) != 0)
            return io_error(error, "cannot create", path), NULL;
        for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
            g_autofree char *d = g_build_filename(path, dirs[i], NULL);
            if (g_mkdir_with_parents(d, 0755) != 0)
                return io_error(error, "cannot create", d), NULL;
        }
        if (!g_file_set_contents(marker, "preboot-store 1\n", -1, error))
            return NULL;
    }
    g_autofree char *lock = g_build_filename(path, "lock", NULL);
    int fd = pb_image_os_lock_open(lock);
    if (fd < 0)
        return io_error(error, "cannot open", lock), NULL;
    if (!pb_image_os_lock(fd, FALSE, FALSE)) {
        close(fd);
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "store %s is locked by a running gc",
                    path);
        return NULL;
    }
    PbStore *s = g_new0(PbStore, 1);
    s->path = g_strdup(path);
    s->lock_fd = fd;
    g_mutex_init(&s->mu);
    s->pending = g_hash_table_new_full(hash_hash, hash_equal, g_free, pending_free);
    return s;
}

void pb_store_close(PbStore *s)
{
    if (s == NULL)
        return;
    /* Chunks nobody committed yet are kept: an interrupted upload resumes from them. */
    g_autoptr(GError) e = NULL;
    if (!pb_store_flush(s, &e))
        g_warning("%s", e->message);
    g_hash_table_unref(s->pending);
    g_mutex_clear(&s->mu);
    close(s->lock_fd);
    g_free(s->path);
    g_free(s);
}

static char *chunk_path(PbStore *s, const guint8 hash[PB_HASH_LEN], PbCodec codec)
{
    char hex[PB_HASH_HEX_LEN + 1];
    pb_hash_to_hex(hash, hex);
    return g_strdup_printf("%s/chunks/%.2s/%s.%s", s->path, hex, hex,
                           codec == PB_CODEC_ZSTD    ? "zst"
                           : codec == PB_CODEC_DELTA ? "pbd"
                                                     : "raw");
}

/* The base a stored delta chunk names (its first PB_DELTA_HEADER_LEN bytes). */
static gboolean read_delta_base(const char *path, guint8 base[PB_HASH_LEN])
{
    guint8 h[PB_DELTA_HEADER_LEN];
    int fd = pb_image_os_open_read(path);
    if (fd < 0)
        return FALSE;
    gssize n = pb_image_os_pread(fd, h, sizeof(h), 0);
    close(fd);
    return n == (gssize)sizeof(h) && pb_delta_base(h, sizeof(h), base, NULL);
}

gboolean pb_store_has_chunk(PbStore *s, const guint8 hash[PB_HASH_LEN], PbChunkRef *found)
{
    g_mutex_lock(&s->mu);
    Pending *pe = g_hash_table_lookup(s->pending, hash);
    if (pe != NULL && found != NULL) {
        found->kind = PB_CHUNK_DATA;
        found->codec = pe->codec;
        memcpy(found->hash, hash, PB_HASH_LEN);
        found->stored = pe->len;
        memcpy(found->base, pe->base, PB_HASH_LEN);
    }
    g_mutex_unlock(&s->mu);
    if (pe != NULL)
        return TRUE;
    static const PbCodec order[] = {PB_CODEC_ZSTD, PB_CODEC_NONE, PB_CODEC_DELTA};
    for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
        PbCodec c = order[i];
        g_autofree char *p = chunk_path(s, hash, c);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
            if (found != NULL) {
                found->kind = PB_CHUNK_DATA;
                found->codec = (guint8)c;
                memcpy(found->hash, hash, PB_HASH_LEN);
                found->stored = (guint64)st.st_size;
                memset(found->base, 0, PB_HASH_LEN);
                if (c == PB_CODEC_DELTA && !read_delta_base(p, found->base))
                    return FALSE;
            }
            return TRUE;
        }
    }
    return FALSE;
}

static gboolean fsync_dir(const char *dir, GError **error)
{
    if (!pb_image_os_sync_dir(dir))
        return io_error(error, "cannot sync", dir);
    return TRUE;
}

/* Writes data to a new temporary file in STORE/tmp (fsynced when sync, else left to the
 * next pb_store_flush) and returns its path; direct: around the page cache where it can
 * (pb_image_os_write_direct). */
static char *write_temp(PbStore *s, const void *data, gsize len, gboolean sync, gboolean direct,
                        GError **error)
{
    g_autofree char *tmp = g_build_filename(s->path, "tmp", "w-XXXXXX", NULL);
    int fd = pb_image_os_mkstemp(tmp);
    if (fd < 0)
        return io_error(error, "cannot create a temporary file in", s->path), NULL;
    gsize off = direct ? pb_image_os_write_direct(fd, data, len) : 0;
    const guint8 *p = (const guint8 *)data + off;
    gsize left = len - off;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = ENOSPC;
            io_error(error, "cannot write", tmp);
            close(fd);
            unlink(tmp);
            return NULL;
        }
        p += n;
        left -= (gsize)n;
    }
    if (!(sync ? pb_image_os_sync_file(fd) : pb_image_os_batch_add(fd)) || close(fd) != 0) {
        io_error(error, "cannot write", tmp);
        unlink(tmp);
        return NULL;
    }
    return g_steal_pointer(&tmp);
}

/* Writes data to a temporary, fsyncs it, renames it to dest and fsyncs the directory. */
static gboolean atomic_write(PbStore *s, const char *dest, const void *data, gsize len,
                             GError **error)
{
    g_autofree char *tmp = write_temp(s, data, len, TRUE, FALSE, error);
    if (tmp == NULL)
        return FALSE;
    if (!pb_image_os_rename(tmp, dest)) {
        io_error(error, "cannot rename into", dest);
        unlink(tmp);
        return FALSE;
    }
    g_autofree char *dir = g_path_get_dirname(dest);
    return fsync_dir(dir, error);
}

gboolean pb_store_flush(PbStore *s, GError **error)
{
    g_mutex_lock(&s->mu);
    if (g_hash_table_size(s->pending) == 0) {
        g_mutex_unlock(&s->mu);
        return TRUE;
    }
    gboolean ok = TRUE;
    gint64 t0 = g_get_monotonic_time();
    guint n = g_hash_table_size(s->pending);
    /* One syncfs puts every temporary's bytes on disk; only then do they get real names. */
    if (!pb_image_os_sync_batch(s->lock_fd))
        ok = io_error(error, "cannot sync", s->path);
    gint64 t1 = g_get_monotonic_time();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, s->pending);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        Pending *pe = v;
        if (ok && !pb_image_os_rename(pe->tmp, pe->dest))
            ok = io_error(error, "cannot rename into", pe->dest);
        if (!ok)
            unlink(pe->tmp);
    }
    g_hash_table_remove_all(s->pending);
    g_mutex_unlock(&s->mu);
    /* The renames made durable at once, as the bytes were: on Linux a second syncfs took
     * 0.00-0.01 s where an fsync of each chunk directory (about 220 for 470 chunks) took
     * 0.03-0.10 s, and 0.4-0.9 s on a loaded machine. */
    if (ok && !pb_image_os_sync_batch(s->lock_fd))
        ok = io_error(error, "cannot sync", s->path);
    g_debug("store flush: %u chunks, sync %.2f s, renames and their sync %.2f s", n,
            (t1 - t0) / 1e6, (g_get_monotonic_time() - t1) / 1e6);
    return ok;
}

static gboolean put_chunk(PbStore *s, const guint8 hash[PB_HASH_LEN], PbCodec codec,
                          const void *data, gsize len, gboolean direct, GError **error)
{
    if (pb_store_has_chunk(s, hash, NULL))
        return TRUE;
    g_autofree char *dest = chunk_path(s, hash, codec);
    g_autofree char *dir = g_path_get_dirname(dest);
    if (g_mkdir_with_parents(dir, 0755) != 0)
        return io_error(error, "cannot create", dir);
    char *tmp = write_temp(s, data, len, FALSE, direct, error);
    if (tmp == NULL)
        return FALSE;
    g_mutex_lock(&s->mu);
    gboolean dup = g_hash_table_contains(s->pending, hash);
    if (!dup) {
        Pending *pe = g_new0(Pending, 1);
        pe->tmp = tmp;
        pe->dest = g_steal_pointer(&dest);
        pe->codec = (guint8)codec;
        pe->len = len;
        if (codec == PB_CODEC_DELTA && !pb_delta_base(data, len, pe->base, NULL))
            memset(pe->base, 0, PB_HASH_LEN);
        g_hash_table_insert(s->pending, g_memdup2(hash, PB_HASH_LEN), pe);
    }
    guint n = g_hash_table_size(s->pending);
    g_mutex_unlock(&s->mu);
    if (dup) { /* another thread stored the same bytes meanwhile */
        unlink(tmp);
        g_free(tmp);
    }
    return n < PENDING_MAX || pb_store_flush(s, error);
}

gboolean pb_store_put_chunk(PbStore *s, const guint8 hash[PB_HASH_LEN], PbCodec codec,
                            const void *data, gsize len, GError **error)
{
    return put_chunk(s, hash, codec, data, len, FALSE, error);
}

gboolean pb_store_put_chunk_direct(PbStore *s, const guint8 hash[PB_HASH_LEN], PbCodec codec,
                                   const void *data, gsize len, GError **error)
{
    return put_chunk(s, hash, codec, data, len, TRUE, error);
}

GBytes *pb_store_get_chunk(PbStore *s, const PbChunkRef *ref, PbCodec *codec, GError **error)
{
    char hex[PB_HASH_HEX_LEN + 1];
    pb_hash_to_hex(ref->hash, hex);
    g_mutex_lock(&s->mu);
    Pending *pe = g_hash_table_lookup(s->pending, ref->hash);
    g_autofree char *pending_path = pe != NULL ? g_strdup(pe->tmp) : NULL;
    if (pe != NULL)
        *codec = (PbCodec)pe->codec;
    g_mutex_unlock(&s->mu);
    if (pending_path != NULL) {
        char *pdata;
        gsize plen;
        if (!g_file_get_contents(pending_path, &pdata, &plen, error))
            return NULL;
        return g_bytes_new_take(pdata, plen);
    }
    PbChunkRef have;
    if (!pb_store_has_chunk(s, ref->hash, &have)) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING, "chunk %s is not in %s", hex,
                    s->path);
        return NULL;
    }
    g_autofree char *p = chunk_path(s, ref->hash, (PbCodec)have.codec);
    *codec = (PbCodec)have.codec;
    char *data;
    gsize len;
    if (!g_file_get_contents(p, &data, &len, error))
        return NULL;
    return g_bytes_new_take(data, len);
}

static char *manifest_path(PbStore *s, const char *name)
{
    g_autofree char *file = g_strconcat(name, ".pbm", NULL);
    return g_build_filename(s->path, "images", file, NULL);
}

static gboolean check_name(const char *name, GError **error)
{
    if (pb_name_valid(name))
        return TRUE;
    g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID, "invalid image name \"%s\"", name);
    return FALSE;
}

gboolean pb_store_put_manifest(PbStore *s, const char *name, PbManifest *m, GError **error)
{
    if (!check_name(name, error) || !pb_store_flush(s, error))
        return FALSE;
    for (guint i = 0; i < m->chunks->len; i++) {
        const PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, i);
        const guint8 *miss = NULL;
        if (c->kind == PB_CHUNK_DATA && !pb_store_has_chunk(s, c->hash, NULL))
            miss = c->hash;
        else if (c->kind == PB_CHUNK_DATA && c->codec == PB_CODEC_DELTA &&
                 !pb_store_has_chunk(s, c->base, NULL))
            miss = c->base;
        if (miss != NULL) {
            char hex[PB_HASH_HEX_LEN + 1];
            pb_hash_to_hex(miss, hex);
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING,
                        "image %s names chunk %s, which is not stored", name, hex);
            return FALSE;
        }
    }
    g_autoptr(GString) text = pb_manifest_build(m);
    g_autofree char *dest = manifest_path(s, name);
    return atomic_write(s, dest, text->str, text->len, error);
}

PbManifest *pb_store_get_manifest(PbStore *s, const char *name, GError **error)
{
    if (!check_name(name, error))
        return NULL;
    g_autofree char *p = manifest_path(s, name);
    g_autofree char *text = NULL;
    gsize len;
    if (!g_file_test(p, G_FILE_TEST_IS_REGULAR)) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING, "no image %s in %s", name,
                    s->path);
        return NULL;
    }
    if (!g_file_get_contents(p, &text, &len, error))
        return NULL;
    GError *e = NULL;
    PbManifest *m = pb_manifest_parse(text, len, &e);
    if (m == NULL) {
        g_set_error(error, PB_IMAGE_ERROR, e->code, "image %s: %s", name, e->message);
        g_error_free(e);
    }
    return m;
}

gboolean pb_store_delete_manifest(PbStore *s, const char *name, GError **error)
{
    if (!check_name(name, error))
        return FALSE;
    g_autofree char *p = manifest_path(s, name);
    if (unlink(p) != 0)
        return io_error(error, "cannot delete", p);
    g_autofree char *dir = g_path_get_dirname(p);
    return fsync_dir(dir, error);
}

/* g_ptr_array_sort passes pointers to the elements. */
static gint cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

GPtrArray *pb_store_list(PbStore *s, GError **error)
{
    g_autofree char *dir = g_build_filename(s->path, "images", NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, error);
    if (d == NULL)
        return NULL;
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    while ((n = g_dir_read_name(d)) != NULL)
        if (g_str_has_suffix(n, ".pbm")) {
            char *name = g_strndup(n, strlen(n) - 4);
            if (pb_name_valid(name))
                g_ptr_array_add(names, name);
            else
                g_free(name);
        }
    g_ptr_array_sort(names, cmp_names);
    return names;
}

static gint cmp_newest(gconstpointer a, gconstpointer b)
{
    gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
    return x > y ? -1 : x < y;
}

PbManifest *pb_store_newest_manifest(PbStore *s, guint64 disk_size, guint32 chunk_size, char **name,
                                     GError **error)
{
    g_autoptr(GPtrArray) names = pb_store_list(s, error);
    if (names == NULL)
        return NULL;
    /* Newest first, by the time each manifest file was written. */
    g_autoptr(GArray) order = g_array_new(FALSE, FALSE, sizeof(gint64) * 2);
    for (guint i = 0; i < names->len; i++) {
        g_autofree char *p = manifest_path(s, names->pdata[i]);
        gint64 written = pb_image_os_mtime_ns(p);
        if (written < 0)
            continue;
        gint64 e[2] = {written, i};
        g_array_append_val(order, e);
    }
    g_array_sort(order, cmp_newest);
    for (guint k = 0; k < order->len; k++) {
        const char *n = names->pdata[g_array_index(order, gint64, 2 * k + 1)];
        PbManifest *m = pb_store_get_manifest(s, n, NULL);
        if (m == NULL)
            continue;
        gboolean whole = (disk_size == 0 || m->disk_size == disk_size) &&
                         (chunk_size == 0 || m->chunk_size == chunk_size);
        for (guint c = 0; c < m->chunks->len && whole; c++)
            whole = g_array_index(m->chunks, PbChunkRef, c).kind != PB_CHUNK_ABSENT;
        if (whole) {
            if (name != NULL)
                *name = g_strdup(n);
            return m;
        }
        pb_manifest_free(m);
    }
    return NULL;
}

static gboolean gc_locked(PbStore *s, PbGcStats *st, GError **error)
{
    g_autoptr(GHashTable) live = g_hash_table_new_full(hash_hash, hash_equal, g_free, NULL);
    g_autoptr(GPtrArray) names = pb_store_list(s, error);
    if (names == NULL)
        return FALSE;
    for (guint i = 0; i < names->len; i++) {
        /* A manifest that does not parse keeps gc from running at all: deleting the chunks
         * of an image we cannot read would make a repairable store unrepairable. */
        g_autoptr(PbManifest) m = pb_store_get_manifest(s, names->pdata[i], error);
        if (m == NULL) {
            g_prefix_error(error, "gc not run: ");
            return FALSE;
        }
        for (guint c = 0; c < m->chunks->len; c++) {
            const PbChunkRef *r = &g_array_index(m->chunks, PbChunkRef, c);
            if (r->kind == PB_CHUNK_DATA)
                g_hash_table_add(live, g_memdup2(r->hash, PB_HASH_LEN));
            if (r->kind == PB_CHUNK_DATA && r->codec == PB_CODEC_DELTA)
                g_hash_table_add(live, g_memdup2(r->base, PB_HASH_LEN));
        }
    }
    /* The store may hold a live chunk as a delta where its manifest says otherwise (an
     * import met it already stored): the base its file names lives too. */
    g_autoptr(GPtrArray) bases = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, live);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        PbChunkRef have;
        if (pb_store_has_chunk(s, key, &have) && have.codec == PB_CODEC_DELTA)
            g_ptr_array_add(bases, g_memdup2(have.base, PB_HASH_LEN));
    }
    for (guint i = 0; i < bases->len; i++)
        g_hash_table_add(live, g_steal_pointer(&bases->pdata[i]));
    g_autofree char *chunks = g_build_filename(s->path, "chunks", NULL);
    g_autoptr(GDir) top = g_dir_open(chunks, 0, error);
    if (top == NULL)
        return FALSE;
    const char *sub;
    while ((sub = g_dir_read_name(top)) != NULL) {
        g_autofree char *subdir = g_build_filename(chunks, sub, NULL);
        g_autoptr(GDir) d = g_dir_open(subdir, 0, NULL);
        const char *f;
        while (d != NULL && (f = g_dir_read_name(d)) != NULL) {
            guint8 h[PB_HASH_LEN];
            g_autofree char *p = g_build_filename(subdir, f, NULL);
            if (strlen(f) == PB_HASH_HEX_LEN + 4 && pb_hash_from_hex(f, PB_HASH_HEX_LEN, h) &&
                g_hash_table_contains(live, h)) {
                st->chunks_kept++;
                continue;
            }
            struct stat sb;
            if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && unlink(p) == 0) {
                st->chunks_removed++;
                st->bytes_removed += (guint64)sb.st_size;
            }
        }
    }
    /* With the lock held exclusively no writer runs: every temporary is a crash's leftover. */
    g_autofree char *tmp = g_build_filename(s->path, "tmp", NULL);
    g_autoptr(GDir) td = g_dir_open(tmp, 0, NULL);
    const char *f;
    while (td != NULL && (f = g_dir_read_name(td)) != NULL) {
        g_autofree char *p = g_build_filename(tmp, f, NULL);
        if (unlink(p) == 0)
            st->temps_removed++;
    }
    return TRUE;
}

gboolean pb_store_gc(PbStore *s, PbGcStats *st, GError **error)
{
    memset(st, 0, sizeof(*st));
    if (!pb_image_os_lock(s->lock_fd, TRUE, FALSE)) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO,
                    "store %s is in use by another process; gc not run", s->path);
        return FALSE;
    }
    gboolean ok = gc_locked(s, st, error);
    pb_image_os_lock(s->lock_fd, FALSE, TRUE);
    return ok;
}

static gboolean io_has(void *self, const guint8 hash[PB_HASH_LEN], PbChunkRef *found)
{
    return pb_store_has_chunk(self, hash, found);
}
static gboolean io_put(void *self, const guint8 hash[PB_HASH_LEN], PbCodec codec, const void *data,
                       gsize len, GError **error)
{
    return pb_store_put_chunk(self, hash, codec, data, len, error);
}
static GBytes *io_get(void *self, const PbChunkRef *ref, PbCodec *codec, GError **error)
{
    return pb_store_get_chunk(self, ref, codec, error);
}

void pb_store_chunk_io(PbStore *s, PbChunkIO *io)
{
    io->self = s;
    io->has = io_has;
    io->put = io_put;
    io->get = io_get;
}

/* ---- decoding through a chunk IO (delta chunks fetch their base through it) ---------- */

gboolean pb_chunk_decode_io(PbChunkIO *io, PbCodec codec, const void *stored, gsize stored_len,
                            const guint8 hash[PB_HASH_LEN], guint8 *buf, gsize len, GError **error)
{
    if (codec != PB_CODEC_DELTA)
        return pb_chunk_decode_verify(codec, stored, stored_len, hash, buf, len, error);
    PbChunkRef base = {.kind = PB_CHUNK_DATA, .codec = PB_CODEC_ZSTD};
    if (!pb_delta_base(stored, stored_len, base.hash, error))
        return FALSE;
    PbCodec bc = PB_CODEC_NONE;
    g_autoptr(GBytes) b = io->get(io->self, &base, &bc, error);
    if (b == NULL)
        return FALSE;
    /* Depth one: a base is a whole chunk, so a chain of deltas cannot make a restore
     * fetch without end. */
    if (bc == PB_CODEC_DELTA) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT,
                    "the base of a delta chunk is itself a delta");
        return FALSE;
    }
    gsize bn;
    const void *bd = g_bytes_get_data(b, &bn);
    if (!pb_chunk_decode_verify(bc, bd, bn, base.hash, buf, len, error)) {
        g_prefix_error(error, "base of a delta chunk: ");
        return FALSE;
    }
    return pb_delta_apply_verify(stored, stored_len, hash, buf, len, error);
}

gboolean pb_chunk_fetch(PbChunkIO *io, const PbChunkRef *ref, guint8 *buf, gsize len,
                        PbCodec *codec, gsize *stored_len, GError **error)
{
    PbCodec c = PB_CODEC_NONE;
    g_autoptr(GBytes) stored = io->get(io->self, ref, &c, error);
    if (stored == NULL)
        return FALSE;
    gsize n;
    const void *d = g_bytes_get_data(stored, &n);
    if (codec != NULL)
        *codec = c;
    if (stored_len != NULL)
        *stored_len = n;
    return pb_chunk_decode_io(io, c, d, n, ref->hash, buf, len, error);
}
