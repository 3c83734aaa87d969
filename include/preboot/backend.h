/* preboot/backend.h - the imaging backend ABI: what a LIBRARY_NAME library gives the imaging
 * plugin.
 *
 * The imaging plugin keeps no state of its own. The image catalog and manifests, the bytes
 * of the chunks, the result log and the statistics that must outlive one server live in a
 * backend: a library opened with the host's library_open() (plugin.h, ABI 1.1), by the path
 * or name the legacy LIBRARY_NAME setting gives, or `libpreboot-local` (the chunk store on
 * the local filesystem plus SQLite) when it is empty. A backend includes this header and
 * plugin.h, nothing else of preboot's, and exports one symbol:
 *
 *     static const pb_backend my_backend = {PB_BACKEND_HEADER("mine", "1.0"), .open = ...};
 *     PB_BACKEND_DEFINE(mine, my_backend)   -- exports mine_LTX_preboot_backend_entry
 *
 * Nothing here assumes a local filesystem: chunks are read through an open reader (read at
 * offsets, like a file but maybe a database large object or a remote object), written
 * through a writer (begin, write pieces, commit with verification, or abort), the catalog
 * takes names and manifest bytes, results are structs. A PostgreSQL backend shared by many
 * servers fits the same calls. doc/backend-abi.md is the long form of this header.
 *
 * ABI changelog (newest first)
 *   1.1  2026-12-07  gc (optional): drop chunks no image names, keeping a given set.
 *   1.0  2026-12-07  First ABI: open/close, chunk stat/open/read/close, begin/write/commit/
 *                    abort, missing; image list/info/manifest/commit/delete; result add/list;
 *                    stat add/list.
 *
 * Versioning rules are those of plugin.h (doc/plugin-abi.md): magic PB_BACKEND_MAGIC;
 * abi_major must equal the plugin's PB_BACKEND_ABI_MAJOR; the backend's abi_minor may not
 * exceed the plugin's; pb_backend.header.struct_size says which callbacks the backend's
 * build has (test with PB_HAS_FIELD(pb_backend, b, FIELD)); every struct crossing the
 * boundary starts with its struct_size, set by whoever fills it; new fields and callbacks
 * only at the end with a minor bump; never reordered, retyped or removed. A NULL optional
 * callback means "not supported" (documented per callback).
 *
 * Threads: every callback may be called from any thread, several at once (the plugin runs
 * chunk verification and catalog commits on worker threads, so that the daemon's main loop
 * never waits for a disk or a database). A backend locks what it shares. A reader or writer
 * handle is used by one thread at a time.
 *
 * Errors: calls return a pb_backend_status; on anything but PB_BACKEND_OK they fill the
 * caller's pb_backend_error (when not NULL) with a one-line reason, which the plugin logs
 * and sends to the client. Strings handed to callbacks are valid during the call only.
 */
#ifndef PREBOOT_BACKEND_H
#define PREBOOT_BACKEND_H

#include <preboot/plugin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PB_BACKEND_MAGIC        0x50424245u /* "PBBE" */
#define PB_BACKEND_ABI_MAJOR    1
#define PB_BACKEND_ABI_MINOR    1
#define PB_BACKEND_ENTRY_SYMBOL "preboot_backend_entry"
#define PB_BACKEND_KIND         "imaging backend"

#define PB_BACKEND_HASH_LEN 32  /* SHA-256 of a chunk's uncompressed bytes */
#define PB_BACKEND_NAME_MAX 128 /* image names: [A-Za-z0-9._-], not starting with '.' */

typedef enum pb_backend_status {
    PB_BACKEND_OK = 0,
    PB_BACKEND_NOT_FOUND = 1, /* no such image or chunk */
    PB_BACKEND_EXISTS = 2,    /* chunk already stored (begin); image exists (create only) */
    PB_BACKEND_MISSING = 3,   /* a commit names chunks that are not stored */
    PB_BACKEND_CORRUPT = 4,   /* bytes do not match their hash or length: nothing kept */
    PB_BACKEND_NO_SPACE = 5,  /* out of space: nothing kept, nothing stored before lost */
    PB_BACKEND_INVALID = 6,   /* bad argument: name, codec, size */
    PB_BACKEND_IO = 7,        /* any other failure of the storage */
} pb_backend_status;

typedef enum pb_backend_codec {
    PB_BACKEND_CODEC_NONE = 0,
    PB_BACKEND_CODEC_ZSTD = 1, /* one zstd frame holding its content size */
} pb_backend_codec;

typedef struct pb_backend_error {
    uint32_t struct_size; /* set by the caller */
    uint32_t status;      /* pb_backend_status, as returned */
    char message[256];
} pb_backend_error;

/* What open() gets. */
typedef struct pb_backend_config {
    uint32_t struct_size;
    /* Where the data lives, as the backend understands it: a directory for the local
     * backend, a connection string for a database. May be "" (the backend's default). */
    const char *location;
    /* A writable directory private to this imaging instance (its own files, if any). */
    const char *state_dir;
    /* The server's name in the catalog (its advertised address), for shared backends
     * that place images on several servers. May be "". */
    const char *server;
    /* Logging through the host: level 0-4 as in plugin.h. May be NULL. */
    void (*log)(void *log_data, int level, const char *message);
    void *log_data;
} pb_backend_config;

/* A stored chunk. */
typedef struct pb_backend_chunk_info {
    uint32_t struct_size;
    uint32_t codec;  /* pb_backend_codec of the stored bytes */
    uint64_t stored; /* bytes stored (coded) */
    uint64_t length; /* bytes once decoded; 0 when the backend cannot tell */
} pb_backend_chunk_info;

/* A catalog entry. */
typedef struct pb_backend_image {
    uint32_t struct_size;
    const char *name;
    uint64_t disk_size;    /* bytes */
    uint64_t chunks;       /* chunks the manifest names (every kind) */
    uint64_t data_bytes;   /* uncompressed bytes of its DATA chunks */
    uint64_t stored_bytes; /* their stored bytes */
    int64_t created;       /* Unix time of the commit */
    const char *seal;      /* the manifest's seal, 64 hex digits */
    /* "" when the image is here; else the imaging server that has it ("192.0.2.5:8080"):
     * the plugin answers with a referral. */
    const char *location;
    uint64_t manifest_size; /* bytes of manifest text */
} pb_backend_image;

/* One entry of the result log (the legacy ZIMGLOG): what a client reported, or what the
 * server did (uploads, deletes, refusals). Every string may be NULL or "". */
typedef struct pb_backend_result {
    uint32_t struct_size;
    int64_t time;       /* Unix time; 0: now (add) */
    const char *source; /* client address */
    const char *mac, *uuid, *serial;
    const char *type; /* capture, restore, session, verify, upload, delete, work... */
    const char *image;
    const char *result; /* ok, failed, denied, referred */
    const char *message;
    uint64_t bytes_written, bytes_transferred, duration_ms;
    const char *work_id;
} pb_backend_result;

typedef void (*pb_backend_image_fn)(void *data, const pb_backend_image *image);
typedef void (*pb_backend_result_fn)(void *data, const pb_backend_result *result);
typedef void (*pb_backend_stat_fn)(void *data, const char *name, int64_t value);
/* Receives manifest text as it is read; returns false to stop (the call then fails). */
typedef bool (*pb_backend_bytes_fn)(void *data, const void *bytes, size_t len);

enum pb_backend_commit_flags {
    PB_BACKEND_CREATE_ONLY = 1u << 0, /* EXISTS when an image of that name is there */
};

typedef struct pb_backend {
    pb_library_header header; /* PB_BACKEND_HEADER(name, version) */
    const char *description;

    /* ---- life --------------------------------------------------------------------------- */
    /* Opens (creates when needed) the backend's storage. Returns its handle (passed as be
     * below), or NULL with err. A backend may clean up what a crash left behind here. */
    void *(*open)(const pb_backend_config *cfg, pb_backend_error *err);
    void (*close)(void *be);

    /* ---- chunks, by hash ------------------------------------------------------------------ */
    /* Whether hash is stored, and how. NOT_FOUND when it is not. */
    uint32_t (*chunk_stat)(void *be, const uint8_t hash[PB_BACKEND_HASH_LEN],
                           pb_backend_chunk_info *info, pb_backend_error *err);
    /* For n hashes, sets missing[i] to 1 when hashes[i] is not stored, else 0. */
    uint32_t (*chunk_missing)(void *be, const uint8_t (*hashes)[PB_BACKEND_HASH_LEN], size_t n,
                              uint8_t *missing, pb_backend_error *err);
    /* Opens a stored chunk for reading: *reader for chunk_read/chunk_close, info filled. */
    uint32_t (*chunk_open)(void *be, const uint8_t hash[PB_BACKEND_HASH_LEN],
                           pb_backend_chunk_info *info, void **reader, pb_backend_error *err);
    /* Up to len stored bytes at offset; 0 at the end; -1 on an error. */
    int64_t (*chunk_read)(void *reader, uint64_t offset, void *buf, size_t len);
    void (*chunk_close)(void *reader);

    /* Starts storing a chunk: codec and length (decoded) as the client declares them;
     * stored is the coded size when known, else UINT64_MAX. EXISTS when the chunk is
     * stored already (nothing to write); else *writer for the calls below. */
    uint32_t (*chunk_begin)(void *be, const uint8_t hash[PB_BACKEND_HASH_LEN], uint32_t codec,
                            uint64_t length, uint64_t stored, void **writer, pb_backend_error *err);
    /* Appends a piece. NO_SPACE when the storage is full (the writer is then aborted by
     * the caller). */
    uint32_t (*chunk_write)(void *writer, const void *data, size_t len, pb_backend_error *err);
    /* Decodes and checks the bytes against the hash and length (CORRUPT: nothing kept), then
     * makes the chunk visible under its hash, atomically and durably. Frees the writer
     * whatever it returns. May take a while (a few ms for 4 MiB): call it off the main loop. */
    uint32_t (*chunk_commit)(void *writer, pb_backend_error *err);
    /* Forgets what was written. Frees the writer. */
    void (*chunk_abort)(void *writer);

    /* ---- the catalog ------------------------------------------------------------------------ */
    uint32_t (*image_list)(void *be, pb_backend_image_fn fn, void *data, pb_backend_error *err);
    uint32_t (*image_info)(void *be, const char *name, pb_backend_image_fn fn, void *data,
                           pb_backend_error *err);
    /* The manifest text of name, through fn (in one or more pieces). */
    uint32_t (*image_manifest)(void *be, const char *name, pb_backend_bytes_fn fn, void *data,
                               pb_backend_error *err);
    /* Makes image->name visible with this manifest text, atomically: only when every hash
     * of data_hashes (the manifest's DATA chunks, which the caller has parsed and checked)
     * is stored; otherwise MISSING, with missing_fn called for each absent hash (as 64 hex
     * digits), and nothing changes. CREATE_ONLY: EXISTS when the name is taken (exactly one
     * of two racing creators wins). *replaced says whether an image of that name was there.
     * image carries the totals the catalog lists (created 0: now). */
    uint32_t (*image_commit)(void *be, const pb_backend_image *image, const char *manifest,
                             size_t manifest_len, const uint8_t (*data_hashes)[PB_BACKEND_HASH_LEN],
                             size_t n_hashes, uint32_t flags,
                             void (*missing_fn)(void *, const char *), void *missing_data,
                             bool *replaced, pb_backend_error *err);
    /* Removes name from the catalog. Its chunks stay until a garbage collection. */
    uint32_t (*image_delete)(void *be, const char *name, pb_backend_error *err);

    /* ---- the result log --------------------------------------------------------------------- */
    uint32_t (*result_add)(void *be, const pb_backend_result *result, pb_backend_error *err);
    /* The newest limit entries, newest first (limit 0: every entry). */
    uint32_t (*result_list)(void *be, uint32_t limit, pb_backend_result_fn fn, void *data,
                            pb_backend_error *err);

    /* ---- statistics that outlive a server (totals over every start, every server) ------ */
    uint32_t (*stat_add)(void *be, const char *name, int64_t delta, pb_backend_error *err);
    uint32_t (*stat_list)(void *be, pb_backend_stat_fn fn, void *data, pb_backend_error *err);

    /* ---- 1.1 ------------------------------------------------------------------------------ */
    /* Garbage collection, optional (NULL or a 1.0 backend: not supported). Removes every
     * stored chunk that no image of the catalog names and that keep (n_keep hashes, sorted
     * with memcmp) does not list: keep holds the chunks of uploads in progress, which a
     * commit may name soon. The plugin calls it on a worker thread and sends no chunk put,
     * missing query or image commit to the backend while it runs; a backend shared by
     * several servers must also protect what the others' uploads hold (for example by
     * keeping chunks stored recently). A manifest the backend cannot read stops the
     * collection (an error, nothing removed after it). Counts what it removed. */
    uint32_t (*gc)(void *be, const uint8_t (*keep)[PB_BACKEND_HASH_LEN], size_t n_keep,
                   uint64_t *chunks_removed, uint64_t *bytes_removed, pb_backend_error *err);
} pb_backend;

/* Fills the header of a pb_backend descriptor. */
#define PB_BACKEND_HEADER(backend_name, backend_version)                      \
    {                                                                         \
        .magic = PB_BACKEND_MAGIC, .abi_major = PB_BACKEND_ABI_MAJOR,         \
        .abi_minor = PB_BACKEND_ABI_MINOR, .struct_size = sizeof(pb_backend), \
        .build_signature = PB_BUILD_SIGNATURE, .name = (backend_name),        \
        .version = (backend_version)                                          \
    }

/* The one exported symbol: modname_LTX_preboot_backend_entry (modname = the library's file
 * name without extension, dashes as underscores: libpreboot-local.so -> libpreboot_local). */
#define PB_BACKEND_DEFINE(modname, descriptor) \
    PB_LIBRARY_DEFINE(modname, preboot_backend_entry, descriptor)

/* What the imaging plugin passes to library_open(). */
#define PB_BACKEND_SPEC_INIT(min_size)                                          \
    {                                                                           \
        .struct_size = sizeof(pb_library_spec), .magic = PB_BACKEND_MAGIC,      \
        .abi_major = PB_BACKEND_ABI_MAJOR, .abi_minor = PB_BACKEND_ABI_MINOR,   \
        .min_struct_size = (min_size), .entry_symbol = PB_BACKEND_ENTRY_SYMBOL, \
        .kind = PB_BACKEND_KIND                                                 \
    }

#ifdef __cplusplus
}
#endif

#endif /* PREBOOT_BACKEND_H */
