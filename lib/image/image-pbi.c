/* image-pbi.c - export and import of .pbi archives. */
#include "image-pbi.h"

#include "image-engine.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static gboolean write_all(int fd, const void *buf, gsize len, GError **error)
{
    const guint8 *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n == 0 ? ENOSPC : errno;
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "archive write: %s",
                        g_strerror(e));
            return FALSE;
        }
        p += n;
        len -= (gsize)n;
    }
    return TRUE;
}

gboolean pb_archive_export(const PbManifest *m, PbChunkIO *io, int fd, PbArchiveStats *st,
                           GError **error)
{
    memset(st, 0, sizeof(*st));
    PbManifest *mm = (PbManifest *)m; /* build only recomputes the seal it already has */
    g_autoptr(GString) text = pb_manifest_build(mm);
    guint8 hdr[PB_ARCHIVE_HEADER_LEN];
    PbArchiveHeader h = {.version = 1, .manifest_len = text->len};
    pb_archive_build_header(&h, hdr);
    if (!write_all(fd, hdr, sizeof(hdr), error) || !write_all(fd, text->str, text->len, error))
        return FALSE;
    guint64 pos = sizeof(hdr) + text->len;
    g_autoptr(GArray) index = g_array_new(FALSE, FALSE, sizeof(PbArchiveIndexEntry));
    g_autoptr(GHashTable) seen =
        g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, NULL);
    /* Each delta chunk's base goes before it, so a streaming reader can check the delta
     * as it arrives. */
    g_autoptr(GArray) order = g_array_new(FALSE, FALSE, sizeof(PbChunkRef));
    for (guint i = 0; i < m->chunks->len; i++) {
        const PbChunkRef *ref = &g_array_index(m->chunks, PbChunkRef, i);
        if (ref->kind != PB_CHUNK_DATA)
            continue;
        if (ref->codec == PB_CODEC_DELTA) {
            PbChunkRef b = {.kind = PB_CHUNK_DATA, .codec = PB_CODEC_ZSTD};
            memcpy(b.hash, ref->base, PB_HASH_LEN);
            g_array_append_val(order, b);
        }
        g_array_append_val(order, *ref);
    }
    for (guint i = 0; i < order->len; i++) {
        const PbChunkRef *ref = &g_array_index(order, PbChunkRef, i);
        GBytes *key = g_bytes_new(ref->hash, PB_HASH_LEN);
        if (!g_hash_table_add(seen, key))
            continue;
        PbCodec codec = PB_CODEC_NONE;
        g_autoptr(GBytes) data = io->get(io->self, ref, &codec, error);
        if (data == NULL)
            return FALSE;
        /* A store holding the chunk as a delta where the manifest does not say so: its
         * base is not on the list; refuse rather than write an archive that cannot be
         * read back. */
        if (codec == PB_CODEC_DELTA && ref->codec != PB_CODEC_DELTA) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                        "a chunk is stored as a delta the manifest does not name");
            return FALSE;
        }
        gsize n;
        const void *d = g_bytes_get_data(data, &n);
        PbArchiveRecord r = {.codec = (guint8)codec, .stored = n};
        memcpy(r.hash, ref->hash, PB_HASH_LEN);
        guint8 rec[PB_ARCHIVE_RECORD_LEN];
        pb_archive_build_record(&r, rec);
        if (!write_all(fd, rec, sizeof(rec), error) || !write_all(fd, d, n, error))
            return FALSE;
        PbArchiveIndexEntry e = {.codec = (guint8)codec, .offset = pos, .stored = n};
        memcpy(e.hash, ref->hash, PB_HASH_LEN);
        g_array_append_val(index, e);
        pos += sizeof(rec) + n;
        st->chunks++;
    }
    guint8 ih[PB_ARCHIVE_INDEX_HEADER_LEN] = {0};
    memcpy(ih, PB_ARCHIVE_INDEX_MAGIC, 4);
    for (int b = 0; b < 8; b++)
        ih[8 + b] = (guint8)((guint64)index->len >> (8 * b));
    if (!write_all(fd, ih, sizeof(ih), error))
        return FALSE;
    for (guint i = 0; i < index->len; i++) {
        guint8 e[PB_ARCHIVE_INDEX_ENTRY_LEN];
        pb_archive_build_index_entry(&g_array_index(index, PbArchiveIndexEntry, i), e);
        if (!write_all(fd, e, sizeof(e), error))
            return FALSE;
    }
    PbArchiveTrailer t = {.index_offset = pos, .count = index->len};
    guint8 tr[PB_ARCHIVE_TRAILER_LEN];
    pb_archive_build_trailer(&t, tr);
    if (!write_all(fd, tr, sizeof(tr), error))
        return FALSE;
    st->bytes = pos + sizeof(ih) + index->len * PB_ARCHIVE_INDEX_ENTRY_LEN + sizeof(tr);
    return TRUE;
}

typedef struct {
    int fd;
    const guint8 *head;
    gsize head_len, head_pos;
    guint64 pos;
} Reader;

static gboolean read_exact(Reader *r, void *buf, gsize len, GError **error)
{
    guint8 *p = buf;
    while (len > 0 && r->head_pos < r->head_len) {
        gsize n = MIN(len, r->head_len - r->head_pos);
        memcpy(p, r->head + r->head_pos, n);
        r->head_pos += n;
        p += n;
        len -= n;
        r->pos += n;
    }
    while (len > 0) {
        ssize_t n = read(r->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE,
                        "archive: %s at byte %" G_GUINT64_FORMAT,
                        n == 0 ? "truncated" : g_strerror(errno), r->pos);
            return FALSE;
        }
        p += n;
        len -= (gsize)n;
        r->pos += (guint64)n;
    }
    return TRUE;
}

gboolean pb_archive_import(int fd, const guint8 *head, gsize head_len, PbStore *store,
                           const char *name, PbArchiveStats *st, GError **error)
{
    memset(st, 0, sizeof(*st));
    if (!pb_name_valid(name)) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID, "invalid image name \"%s\"",
                    name);
        return FALSE;
    }
    Reader r = {.fd = fd, .head = head, .head_len = head_len};
    guint8 hdr[PB_ARCHIVE_HEADER_LEN];
    PbArchiveHeader h;
    if (!read_exact(&r, hdr, sizeof(hdr), error) ||
        !pb_archive_parse_header(hdr, sizeof(hdr), &h, error))
        return FALSE;
    g_autofree char *text = g_malloc(h.manifest_len);
    if (!read_exact(&r, text, h.manifest_len, error))
        return FALSE;
    g_autoptr(PbManifest) m = pb_manifest_parse(text, h.manifest_len, error);
    if (m == NULL)
        return FALSE;
    /* Each hash the manifest names, with its uncompressed length: what a record must hold. */
    g_autoptr(GHashTable) want =
        g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, NULL);
    for (guint ri = 0; ri < m->regions->len; ri++) {
        const PbRegion *rg = &g_array_index(m->regions, PbRegion, ri);
        for (guint i = 0; i < rg->n_chunks; i++) {
            const PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, rg->first_chunk + i);
            if (c->kind == PB_CHUNK_DATA)
                g_hash_table_insert(want, g_bytes_new(c->hash, PB_HASH_LEN),
                                    GSIZE_TO_POINTER((gsize)pb_region_chunk_len(m, rg, i)));
            if (c->kind == PB_CHUNK_DATA && c->codec == PB_CODEC_DELTA)
                g_hash_table_insert(want, g_bytes_new(c->base, PB_HASH_LEN),
                                    GSIZE_TO_POINTER((gsize)pb_region_chunk_len(m, rg, i)));
        }
    }
    PbChunkIO io;
    pb_store_chunk_io(store, &io);
    guint64 records = 0, index_at = 0;
    guint8 *buf = g_malloc(m->chunk_size);
    gboolean ok = FALSE;
    for (;;) {
        guint8 rec[PB_ARCHIVE_RECORD_LEN];
        PbArchiveRecord pr;
        gboolean is_index;
        guint64 at = r.pos;
        if (!read_exact(&r, rec, 4, error))
            goto out;
        if (memcmp(rec, PB_ARCHIVE_INDEX_MAGIC, 4) == 0) {
            index_at = at;
            break;
        }
        if (!read_exact(&r, rec + 4, sizeof(rec) - 4, error) ||
            !pb_archive_parse_record(rec, sizeof(rec), &pr, &is_index, error))
            goto out;
        g_autoptr(GBytes) key = g_bytes_new(pr.hash, PB_HASH_LEN);
        gpointer lenp;
        if (!g_hash_table_lookup_extended(want, key, NULL, &lenp)) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE,
                        "archive: record at byte %" G_GUINT64_FORMAT
                        " holds a chunk the manifest does not name",
                        at);
            goto out;
        }
        g_autofree guint8 *stored = g_malloc(pr.stored);
        if (!read_exact(&r, stored, pr.stored, error))
            goto out;
        /* A delta's base came earlier in the archive or was in the store already. */
        if (!pb_chunk_decode_io(&io, (PbCodec)pr.codec, stored, pr.stored, pr.hash, buf,
                                GPOINTER_TO_SIZE(lenp), error)) {
            g_prefix_error(error, "archive record at byte %" G_GUINT64_FORMAT ": ", at);
            goto out;
        }
        if (!pb_store_put_chunk(store, pr.hash, (PbCodec)pr.codec, stored, pr.stored, error))
            goto out;
        records++;
        st->chunks++;
    }
    guint8 ih[PB_ARCHIVE_INDEX_HEADER_LEN], tr[PB_ARCHIVE_TRAILER_LEN];
    guint64 count;
    PbArchiveTrailer t;
    memcpy(ih, PB_ARCHIVE_INDEX_MAGIC, 4);
    if (!read_exact(&r, ih + 4, sizeof(ih) - 4, error) ||
        !pb_archive_parse_index_header(ih, sizeof(ih), &count, error))
        goto out;
    if (count != records) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE,
                    "archive: index lists %" G_GUINT64_FORMAT " chunks, %" G_GUINT64_FORMAT
                    " were read",
                    count, records);
        goto out;
    }
    for (guint64 i = 0; i < count; i++) {
        guint8 e[PB_ARCHIVE_INDEX_ENTRY_LEN];
        PbArchiveIndexEntry ie;
        if (!read_exact(&r, e, sizeof(e), error) ||
            !pb_archive_parse_index_entry(e, sizeof(e), &ie, error))
            goto out;
    }
    if (!read_exact(&r, tr, sizeof(tr), error) ||
        !pb_archive_parse_trailer(tr, sizeof(tr), &t, error))
        goto out;
    if (t.index_offset != index_at || t.count != count) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE,
                    "archive: trailer does not match the index");
        goto out;
    }
    st->bytes = r.pos;
    /* put_manifest refuses unless every chunk is now stored: a short archive adds none. */
    ok = pb_store_put_manifest(store, name, m, error);
out:
    g_free(buf);
    return ok;
}
