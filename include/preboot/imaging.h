/* preboot/imaging.h - the service the imaging plugin publishes for other plugins (the
 * multicast plugin): its backend's images and chunks, read and stored through the same
 * backend `prebootctl imaging` and the imaging API use (libpreboot-local, libpreboot-pg or
 * any LIBRARY_NAME library), so a multicast session serves exactly what `imaging list`
 * shows and a session recorded from a master client lands in the same catalog.
 *
 * Looked up (or watched, plugin.h service_watch) as PB_IMAGING_SERVICE with
 * PB_IMAGING_SERVICE_VERSION; valid between APPEARED and WITHDRAWN. Unlike most services,
 * every call here may be made from any thread, several at once (the backend is
 * thread-safe, backend.h): a consumer's worker threads read chunks while its main loop
 * runs. A consumer must stop those threads when the service is WITHDRAWN (the watch
 * callback is the last moment the pointer is valid).
 *
 * Self-contained: only this header and plugin.h. Hashes are SHA-256 of a chunk's
 * uncompressed bytes; codecs and statuses have backend.h's values.
 *
 * Changelog (newest first)
 *   1  2026-12-07  First version: manifest, chunk stat/get/put, store begin/end, image commit.
 *
 * Versioning as plugin.h: struct_size says which calls the publisher's build has; new
 * calls only at the end. */
#ifndef PREBOOT_IMAGING_H
#define PREBOOT_IMAGING_H

#include <preboot/plugin.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PB_IMAGING_SERVICE         "preboot.imaging"
#define PB_IMAGING_SERVICE_VERSION 1u
#define PB_IMAGING_HASH_LEN        32

/* Statuses: 0 OK, 1 NOT_FOUND, 3 MISSING, 4 CORRUPT, 5 NO_SPACE, 6 INVALID, 7 IO, 8 BUSY
 * (the values of pb_backend_status, plus BUSY). */
enum {
    PB_IMAGING_OK = 0,
    PB_IMAGING_NOT_FOUND = 1,
    PB_IMAGING_MISSING = 3,
    PB_IMAGING_CORRUPT = 4,
    PB_IMAGING_NO_SPACE = 5,
    PB_IMAGING_INVALID = 6,
    PB_IMAGING_IO = 7,
    PB_IMAGING_BUSY = 8, /* a garbage collection runs: try again later */
};

typedef struct pb_imaging_error {
    uint32_t struct_size; /* set by the caller */
    uint32_t status;
    char message[256];
} pb_imaging_error;

/* Receives bytes as they are read; false stops the read (the call then fails). */
typedef bool (*pb_imaging_bytes_fn)(void *data, const void *bytes, size_t len);

typedef struct pb_imaging_service {
    uint32_t struct_size;
    void *ctx;           /* the first argument of every call */
    const char *backend; /* the backend's name, for messages ("libpreboot-local") */

    /* The manifest text of image name (in one or more pieces). NOT_FOUND when the
     * catalog has no such image. */
    uint32_t (*manifest)(void *ctx, const char *name, pb_imaging_bytes_fn fn, void *data,
                         pb_imaging_error *err);
    /* Whether a chunk is stored: *codec (0 none, 1 zstd) and *stored (its stored bytes) when
     * it is; NOT_FOUND when not. */
    uint32_t (*chunk_stat)(void *ctx, const uint8_t hash[PB_IMAGING_HASH_LEN], uint32_t *codec,
                           uint64_t *stored, pb_imaging_error *err);
    /* A chunk's stored (coded) bytes, whole, through fn; *codec as above. */
    uint32_t (*chunk_get)(void *ctx, const uint8_t hash[PB_IMAGING_HASH_LEN], uint32_t *codec,
                          pb_imaging_bytes_fn fn, void *data, pb_imaging_error *err);

    /* Storing an image: store_begin() before the first chunk_put() and store_end() after
     * the image_commit() (or the failure): chunks put in between are safe from the
     * imaging plugin's garbage collection, which waits. BUSY while a collection runs. */
    uint32_t (*store_begin)(void *ctx, pb_imaging_error *err);
    void (*store_end)(void *ctx);
    /* Stores one chunk: its coded bytes, codec (0 none, 1 zstd) and decoded length; checked
     * against hash and length before it becomes visible (CORRUPT: nothing kept). OK when
     * the chunk was stored already. */
    uint32_t (*chunk_put)(void *ctx, const uint8_t hash[PB_IMAGING_HASH_LEN], uint32_t codec,
                          uint64_t length, const void *data, size_t len, pb_imaging_error *err);
    /* Parses and commits manifest text as image name, atomically (MISSING: a chunk it names
     * is not stored; nothing changes), replacing an image of that name, and writes the
     * result log entry (type "session", source as given). */
    uint32_t (*image_commit)(void *ctx, const char *name, const char *manifest, size_t len,
                             const char *source, pb_imaging_error *err);
} pb_imaging_service;

#ifdef __cplusplus
}
#endif

#endif /* PREBOOT_IMAGING_H */
