/* image-archive.c - the .pbi archive framing: pure builders and parsers of its fixed-size
 * parts, and a whole-archive checker. Layout (preboot-image(5)): header, manifest, one
 * record per chunk (header + stored bytes), index, trailer; all integers little-endian. A
 * reader may stream it front to back (records are self-describing) or seek via the trailer. */
#include "image-format.h"

#include <string.h>

static void put64(guint8 *p, guint64 v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (guint8)(v >> (8 * i));
}
static void put32(guint8 *p, guint32 v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (guint8)(v >> (8 * i));
}
static guint64 get64(const guint8 *p)
{
    guint64 v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static guint32 get32(const guint8 *p)
{
    return (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 | (guint32)p[3] << 24;
}

static gboolean bad(GError **error, const char *what)
{
    g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE, "archive: %s", what);
    return FALSE;
}

static gboolean zeros(const guint8 *p, gsize n)
{
    for (gsize i = 0; i < n; i++)
        if (p[i] != 0)
            return FALSE;
    return TRUE;
}

void pb_archive_build_header(const PbArchiveHeader *h, guint8 out[PB_ARCHIVE_HEADER_LEN])
{
    memset(out, 0, PB_ARCHIVE_HEADER_LEN);
    memcpy(out, PB_ARCHIVE_MAGIC, 8);
    put32(out + 8, h->version);
    put64(out + 16, h->manifest_len);
}

gboolean pb_archive_parse_header(const guint8 *b, gsize len, PbArchiveHeader *h, GError **error)
{
    if (len < PB_ARCHIVE_HEADER_LEN || memcmp(b, PB_ARCHIVE_MAGIC, 8) != 0)
        return bad(error, "not a preboot image archive (bad magic)");
    h->version = get32(b + 8);
    h->manifest_len = get64(b + 16);
    if (h->version != 1)
        return bad(error, "unsupported archive version");
    if (!zeros(b + 12, 4) || !zeros(b + 24, 8))
        return bad(error, "reserved header bytes are not zero");
    if (h->manifest_len == 0 || h->manifest_len > PB_ARCHIVE_MANIFEST_MAX)
        return bad(error, "manifest length out of range");
    return TRUE;
}

void pb_archive_build_record(const PbArchiveRecord *r, guint8 out[PB_ARCHIVE_RECORD_LEN])
{
    memset(out, 0, PB_ARCHIVE_RECORD_LEN);
    memcpy(out, PB_ARCHIVE_RECORD_MAGIC, 4);
    out[4] = r->codec;
    memcpy(out + 8, r->hash, PB_HASH_LEN);
    put64(out + 40, r->stored);
}

gboolean pb_archive_parse_record(const guint8 *b, gsize len, PbArchiveRecord *r, gboolean *is_index,
                                 GError **error)
{
    *is_index = FALSE;
    if (len >= 4 && memcmp(b, PB_ARCHIVE_INDEX_MAGIC, 4) == 0) {
        *is_index = TRUE;
        return FALSE;
    }
    if (len < PB_ARCHIVE_RECORD_LEN || memcmp(b, PB_ARCHIVE_RECORD_MAGIC, 4) != 0)
        return bad(error, "bad chunk record");
    r->codec = b[4];
    if (r->codec > PB_CODEC_DELTA || !zeros(b + 5, 3))
        return bad(error, "bad chunk record codec");
    memcpy(r->hash, b + 8, PB_HASH_LEN);
    r->stored = get64(b + 40);
    if (r->stored == 0 || r->stored > 2ull * PB_CHUNK_SIZE_MAX)
        return bad(error, "chunk record length out of range");
    return TRUE;
}

gboolean pb_archive_parse_index_header(const guint8 *b, gsize len, guint64 *count, GError **error)
{
    if (len < PB_ARCHIVE_INDEX_HEADER_LEN || memcmp(b, PB_ARCHIVE_INDEX_MAGIC, 4) != 0 ||
        !zeros(b + 4, 4))
        return bad(error, "bad index header");
    *count = get64(b + 8);
    return TRUE;
}

void pb_archive_build_index_entry(const PbArchiveIndexEntry *e,
                                  guint8 out[PB_ARCHIVE_INDEX_ENTRY_LEN])
{
    memset(out, 0, PB_ARCHIVE_INDEX_ENTRY_LEN);
    memcpy(out, e->hash, PB_HASH_LEN);
    out[32] = e->codec;
    put64(out + 40, e->offset);
    put64(out + 48, e->stored);
}

gboolean pb_archive_parse_index_entry(const guint8 *b, gsize len, PbArchiveIndexEntry *e,
                                      GError **error)
{
    if (len < PB_ARCHIVE_INDEX_ENTRY_LEN || b[32] > PB_CODEC_DELTA || !zeros(b + 33, 7))
        return bad(error, "bad index entry");
    memcpy(e->hash, b, PB_HASH_LEN);
    e->codec = b[32];
    e->offset = get64(b + 40);
    e->stored = get64(b + 48);
    return TRUE;
}

void pb_archive_build_trailer(const PbArchiveTrailer *t, guint8 out[PB_ARCHIVE_TRAILER_LEN])
{
    put64(out, t->index_offset);
    put64(out + 8, t->count);
    memcpy(out + 16, PB_ARCHIVE_TRAILER_MAGIC, 8);
}

gboolean pb_archive_parse_trailer(const guint8 *b, gsize len, PbArchiveTrailer *t, GError **error)
{
    if (len < PB_ARCHIVE_TRAILER_LEN || memcmp(b + 16, PB_ARCHIVE_TRAILER_MAGIC, 8) != 0)
        return bad(error, "bad trailer (truncated archive?)");
    t->index_offset = get64(b);
    t->count = get64(b + 8);
    return TRUE;
}

gboolean pb_archive_check(const guint8 *b, gsize len, PbManifest **manifest, GError **error)
{
    PbArchiveHeader h;
    PbArchiveTrailer t;
    if (!pb_archive_parse_header(b, len, &h, error))
        return FALSE;
    if (h.manifest_len > len - PB_ARCHIVE_HEADER_LEN)
        return bad(error, "manifest runs past the end");
    g_autoptr(PbManifest) m =
        pb_manifest_parse((const char *)b + PB_ARCHIVE_HEADER_LEN, h.manifest_len, error);
    if (m == NULL)
        return FALSE;
    if (len < PB_ARCHIVE_TRAILER_LEN)
        return bad(error, "no trailer");
    if (!pb_archive_parse_trailer(b + len - PB_ARCHIVE_TRAILER_LEN, PB_ARCHIVE_TRAILER_LEN, &t,
                                  error))
        return FALSE;
    guint64 pos = PB_ARCHIVE_HEADER_LEN + h.manifest_len;
    g_autoptr(GArray) seen = g_array_new(FALSE, FALSE, sizeof(PbArchiveIndexEntry));
    for (;;) {
        PbArchiveRecord r;
        gboolean is_index;
        if (pos > len)
            return bad(error, "records run past the end");
        if (!pb_archive_parse_record(b + pos, len - pos, &r, &is_index, error)) {
            if (!is_index)
                return FALSE;
            break;
        }
        if (r.stored > len - pos - PB_ARCHIVE_RECORD_LEN)
            return bad(error, "chunk record runs past the end");
        PbArchiveIndexEntry e = {.codec = r.codec, .offset = pos, .stored = r.stored};
        memcpy(e.hash, r.hash, PB_HASH_LEN);
        g_array_append_val(seen, e);
        pos += PB_ARCHIVE_RECORD_LEN + r.stored;
    }
    guint64 count;
    if (pos != t.index_offset || len - pos < PB_ARCHIVE_INDEX_HEADER_LEN + PB_ARCHIVE_TRAILER_LEN)
        return bad(error, "index is not where the trailer says");
    if (!pb_archive_parse_index_header(b + pos, len - pos, &count, error))
        return FALSE;
    if (count != seen->len || count != t.count ||
        (len - pos - PB_ARCHIVE_INDEX_HEADER_LEN - PB_ARCHIVE_TRAILER_LEN) !=
            count * PB_ARCHIVE_INDEX_ENTRY_LEN)
        return bad(error, "index size does not match the records");
    pos += PB_ARCHIVE_INDEX_HEADER_LEN;
    for (guint i = 0; i < seen->len; i++, pos += PB_ARCHIVE_INDEX_ENTRY_LEN) {
        PbArchiveIndexEntry e;
        const PbArchiveIndexEntry *s = &g_array_index(seen, PbArchiveIndexEntry, i);
        if (!pb_archive_parse_index_entry(b + pos, len - pos, &e, error))
            return FALSE;
        if (memcmp(e.hash, s->hash, PB_HASH_LEN) != 0 || e.codec != s->codec ||
            e.offset != s->offset || e.stored != s->stored)
            return bad(error, "index entry does not match its record");
    }
    if (manifest != NULL)
        *manifest = g_steal_pointer(&m);
    return TRUE;
}
