/* image-engine.h - capture, restore and verify: the "act" part, reading and writing disks
 * with a pool of worker threads (hashing, coding, verifying) and a bounded number of chunk
 * buffers in flight. Chunks come from and go to a PbChunkIO, so the imaging plugin's
 * network client and the multicast receiver reuse the engine with their own IO. */
#pragma once

#include "image-disk.h"
#include "image-store.h"

G_BEGIN_DECLS

/* Called from the calling thread, at least every 200 ms while work runs. */
typedef void (*PbProgressFunc)(guint64 done, guint64 total, void *data);

typedef struct {
    PbCodec codec;
    int level;
    guint32 chunk_size;    /* 0: PB_CHUNK_SIZE_DEFAULT */
    const int *partitions; /* capture only these (1-based), or NULL for all */
    guint n_partitions;
    gboolean no_used_map; /* do not ask partclone; read every chunk */
    guint threads;        /* 0: one per core */
    PbProgressFunc progress;
    void *progress_data;
    /* An earlier image of this disk, or NULL: a new chunk that differs from the chunk at the
     * same offset there in few blocks is stored as a delta against it. */
    const PbManifest *base;
} PbCaptureOptions;

typedef struct {
    guint64 bytes_total, bytes_read;
    guint64 bytes_new_stored; /* coded bytes written to the store */
    guint chunks_data, chunks_new, chunks_zero, chunks_unused, chunks_absent;
    guint partitions_mapped; /* partitions whose used-block map partclone gave */
    guint chunks_delta;      /* new chunks stored as deltas against the base image */
} PbCaptureStats;

PbManifest *pb_capture(const char *disk, PbChunkIO *io, const PbCaptureOptions *o,
                       PbCaptureStats *st, GError **error);

typedef struct {
    int partition;  /* 0: whole disk; N: only partition N */
    gboolean delta; /* read the target and write only chunks that differ */
    guint threads;
    PbProgressFunc progress;
    void *progress_data;
} PbRestoreOptions;

typedef struct {
    guint64 bytes_total, bytes_written;
    guint chunks_written, chunks_same, chunks_skipped;
    gboolean partial; /* failed after writing something: the target is inconsistent */
    gboolean gpt_moved;
} PbRestoreStats;

gboolean pb_restore(const PbManifest *m, PbChunkIO *io, const char *disk, const PbRestoreOptions *o,
                    PbRestoreStats *st, GError **error);

typedef struct {
    guint chunks_checked, chunks_bad;
    guint64 bytes_checked;
} PbVerifyStats;
/* Fetches, decodes and hashes every distinct chunk; errors name each bad chunk and where
 * it sits (the first few in the message, all in the count). */
gboolean pb_verify(const PbManifest *m, PbChunkIO *io, guint threads, PbProgressFunc progress,
                   void *progress_data, PbVerifyStats *st, GError **error);

G_END_DECLS
