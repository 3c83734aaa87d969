/* backend-common.h - what every imaging backend built in this tree (backends/local,
 * backends/pg) does the same way around lib/image's chunk store: errors into the caller's
 * pb_backend_error, logging through the host, the checks of a chunk upload and of an image
 * commit, the report of missing chunks. A convenience library linked into each backend
 * module (its symbols stay hidden there), never part of the ABI. */
#pragma once

#include <preboot/backend.h>

#include "image-format.h"
#include "image-store.h"

#include <glib.h>

G_BEGIN_DECLS

/* Fills err (when it has room for a message) and returns status. */
uint32_t pb_be_fail(pb_backend_error *err, uint32_t status, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/* Logs through pb_backend_config's log callback (NULL: nothing). */
void pb_be_say(void (*log)(void *, int, const char *), void *log_data, int level, const char *fmt,
               ...) G_GNUC_PRINTF(4, 5);

/* A manifest seal as the catalog keeps it: 64 lower-case hex digits. */
gboolean pb_be_seal_valid(const char *seal);
/* A pb_backend_image_fn copying the image's seal into data (PB_HASH_HEX_LEN + 1 bytes). */
void pb_be_take_seal(void *data, const pb_backend_image *im);

/* The checks of chunk_begin: codec, declared length and stored size in range (INVALID), and
 * EXISTS when the store holds the chunk already. OK: go on and make a writer. */
uint32_t pb_be_chunk_begin_check(PbStore *store, const uint8_t hash[PB_BACKEND_HASH_LEN],
                                 uint32_t codec, uint64_t length, uint64_t stored,
                                 pb_backend_error *err);
/* chunk_write's bound: a chunk of length decoded bytes is at most ZSTD_compressBound(length)
 * stored bytes (INVALID past it). */
uint32_t pb_be_chunk_write_check(uint64_t written, size_t len, uint64_t length,
                                 pb_backend_error *err);
/* lib/image's codec of a pb_backend_codec, and back. */
PbCodec pb_be_codec(uint32_t codec);
uint32_t pb_be_backend_codec(PbCodec codec);

/* The checks of image_commit before anything is read: name and seal (INVALID). */
uint32_t pb_be_image_check(const pb_backend_image *image, pb_backend_error *err);
/* After the caller set absent[i] for every data hash no one holds: calls missing_fn with each
 * as hex and returns MISSING, or OK when none is absent. */
uint32_t pb_be_report_missing(const uint8_t (*hashes)[PB_BACKEND_HASH_LEN], size_t n,
                              const uint8_t *absent, void (*missing_fn)(void *, const char *),
                              void *missing_data, pb_backend_error *err);

G_END_DECLS
