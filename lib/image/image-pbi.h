/* image-pbi.h - writing and reading .pbi archives (framing in image-format.h) between a
 * chunk store and a file descriptor. Both directions stream: export writes front to back
 * (a pipe or a USB stick is fine), import reads front to back and checks every chunk
 * against its hash before it is stored; the manifest is stored last. */
#pragma once

#include "image-store.h"

G_BEGIN_DECLS

typedef struct {
    guint chunks;
    guint64 bytes;
} PbArchiveStats;

gboolean pb_archive_export(const PbManifest *m, PbChunkIO *io, int fd, PbArchiveStats *st,
                           GError **error);
/* Reads an archive whose first bytes (already read by the caller, e.g. to sniff the
 * magic) are in head/head_len, then stores its chunks and, under name, its manifest. */
gboolean pb_archive_import(int fd, const guint8 *head, gsize head_len, PbStore *store,
                           const char *name, PbArchiveStats *st, GError **error);

G_END_DECLS
