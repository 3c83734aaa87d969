/* image-store.h - a chunk store on the local filesystem (preboot-image(5), "Store layout"):
 *   STORE/preboot-store          marker: "preboot-store 1"
 *   STORE/chunks/HH/HASH.zst|.raw|.pbd one file per chunk (zstd, none, delta), HH = first
 *                                two hex digits of HASH
 *   STORE/images/NAME.pbm        manifests
 *   STORE/tmp/                   temporary files; renamed into place once fsynced
 *   STORE/lock                   flock: shared while in use, exclusive for gc
 * Every function is safe to call from several threads at once. */
#pragma once

#include "image-format.h"

G_BEGIN_DECLS

typedef struct PbStore PbStore;

PbStore *pb_store_open(const char *path, gboolean create, GError **error);
void pb_store_close(PbStore *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbStore, pb_store_close)
const char *pb_store_path(const PbStore *s);

/* TRUE when the chunk is stored; fills codec and stored length when found is not NULL. */
gboolean pb_store_has_chunk(PbStore *s, const guint8 hash[PB_HASH_LEN], PbChunkRef *found);
/* Stores coded bytes under hash; a chunk already present is kept. Callers from the network
 * must check the bytes against the hash first (pb_chunk_decode_verify). The chunk is
 * visible to has/get at once and reaches its real name, durably, at the next flush
 * (put_manifest, close, or every 1024 chunks). */
gboolean pb_store_put_chunk(PbStore *s, const guint8 hash[PB_HASH_LEN], PbCodec codec,
                            const void *data, gsize len, GError **error);
/* The same, written around the page cache where data is aligned to
 * PB_IMAGE_OS_DIRECT_ALIGN (4096) and the file system allows (O_DIRECT; else as put_chunk):
 * for chunks nobody reads back soon, e.g. pulled from another server (libpreboot-pg). */
gboolean pb_store_put_chunk_direct(PbStore *s, const guint8 hash[PB_HASH_LEN], PbCodec codec,
                                   const void *data, gsize len, GError **error);
/* Puts every chunk written so far on disk (one syncfs), renames each to its name and makes
 * the renames durable (another). */
gboolean pb_store_flush(PbStore *s, GError **error);
/* The stored (coded) bytes of ref's hash, and how they are coded (the store may hold a
 * chunk coded otherwise than the manifest that names it says, e.g. after an import). */
GBytes *pb_store_get_chunk(PbStore *s, const PbChunkRef *ref, PbCodec *codec, GError **error);

/* Manifests. put refuses unless every DATA chunk it names is stored (so an image never
 * becomes visible half-uploaded) and replaces an older image of that name atomically. */
gboolean pb_store_put_manifest(PbStore *s, const char *name, PbManifest *m, GError **error);
PbManifest *pb_store_get_manifest(PbStore *s, const char *name, GError **error);
gboolean pb_store_delete_manifest(PbStore *s, const char *name, GError **error);
/* Image names, sorted. */
GPtrArray *pb_store_list(PbStore *s, GError **error);
/* The image written last (by the time of its manifest file) among those captured whole
 * (no partition left out) with this disk size and chunk size (0: any), and its name;
 * NULL when the store holds none. */
PbManifest *pb_store_newest_manifest(PbStore *s, guint64 disk_size, guint32 chunk_size, char **name,
                                     GError **error);

typedef struct {
    guint chunks_kept, chunks_removed, temps_removed;
    guint64 bytes_removed;
} PbGcStats;
/* Removes chunks no manifest references, and temporary files. Takes the store's lock
 * exclusively; fails rather than wait while another process uses the store. */
gboolean pb_store_gc(PbStore *s, PbGcStats *st, GError **error);

/* The chunk source/sink the capture and restore engines talk to, so the same engine works
 * over a local store (below), the imaging server's HTTP API or a multicast receiver.
 * Callbacks are called from worker threads concurrently. */
typedef struct {
    void *self;
    gboolean (*has)(void *self, const guint8 hash[PB_HASH_LEN], PbChunkRef *found);
    gboolean (*put)(void *self, const guint8 hash[PB_HASH_LEN], PbCodec codec, const void *data,
                    gsize len, GError **error);
    GBytes *(*get)(void *self, const PbChunkRef *ref, PbCodec *codec, GError **error);
} PbChunkIO;
void pb_store_chunk_io(PbStore *s, PbChunkIO *io);

/* Decodes a chunk's stored bytes into buf (len bytes) and checks them against hash; a delta
 * chunk's base is fetched through io (and must not be a delta itself). */
gboolean pb_chunk_decode_io(PbChunkIO *io, PbCodec codec, const void *stored, gsize stored_len,
                            const guint8 hash[PB_HASH_LEN], guint8 *buf, gsize len, GError **error);

/* Fetches a chunk through io and decodes it as above; *stored_len gets its stored size. */
gboolean pb_chunk_fetch(PbChunkIO *io, const PbChunkRef *ref, guint8 *buf, gsize len,
                        PbCodec *codec, gsize *stored_len, GError **error);

G_END_DECLS
