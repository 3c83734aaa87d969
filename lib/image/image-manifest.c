/* image-manifest.c - the manifest text: parse (pure, bounded, sealed) and build.
 * Grammar in preboot-image(5). Every value is one token; bytes outside '!'..'~', '%', '='
 * and a leading '-' are written %XX so names with spaces or UTF-8 survive unchanged. */
#include "image-format.h"

#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK(pb - image - error - quark, pb_image_error)

PbManifest *pb_manifest_new(void)
{
    PbManifest *m = g_new0(PbManifest, 1);
    m->version = PB_IMAGE_FORMAT_VERSION;
    m->chunk_size = PB_CHUNK_SIZE_DEFAULT;
    m->sector_size = 512;
    m->label = g_strdup("none");
    m->partitions = g_array_new(FALSE, TRUE, sizeof(PbPartition));
    m->regions = g_array_new(FALSE, TRUE, sizeof(PbRegion));
    m->chunks = g_array_new(FALSE, TRUE, sizeof(PbChunkRef));
    return m;
}

void pb_manifest_free(PbManifest *m)
{
    if (m == NULL)
        return;
    for (guint i = 0; i < m->partitions->len; i++) {
        PbPartition *p = &g_array_index(m->partitions, PbPartition, i);
        g_free(p->type);
        g_free(p->uuid);
        g_free(p->name);
        g_free(p->attrs);
        g_free(p->fs);
    }
    g_array_unref(m->partitions);
    g_array_unref(m->regions);
    g_array_unref(m->chunks);
    g_free(m->label);
    g_free(m->disk_id);
    g_free(m);
}

guint pb_manifest_add_region(PbManifest *m, guint64 offset, guint64 length, int partno)
{
    PbRegion r = {.offset = offset, .length = length, .partno = partno};
    r.first_chunk = m->chunks->len;
    r.n_chunks = (guint)((length + m->chunk_size - 1) / m->chunk_size);
    g_array_set_size(m->chunks, m->chunks->len + r.n_chunks); /* zeroed: ABSENT */
    g_array_append_val(m->regions, r);
    return m->regions->len - 1;
}

const PbPartition *pb_manifest_partition(const PbManifest *m, int partno)
{
    for (guint i = 0; i < m->partitions->len; i++)
        if (g_array_index(m->partitions, PbPartition, i).partno == partno)
            return &g_array_index(m->partitions, PbPartition, i);
    return NULL;
}

const PbRegion *pb_manifest_region_for(const PbManifest *m, int partno)
{
    for (guint i = 0; i < m->regions->len; i++)
        if (g_array_index(m->regions, PbRegion, i).partno == partno)
            return &g_array_index(m->regions, PbRegion, i);
    return NULL;
}

guint64 pb_region_chunk_len(const PbManifest *m, const PbRegion *r, guint i)
{
    guint64 off = (guint64)i * m->chunk_size;
    guint64 left = r->length - off;
    return MIN(left, (guint64)m->chunk_size);
}

static int cmp_hash(gconstpointer a, gconstpointer b)
{
    return memcmp(((const PbChunkRef *)a)->hash, ((const PbChunkRef *)b)->hash, PB_HASH_LEN);
}

static int cmp_raw_hash(const void *a, const void *b)
{
    return memcmp(a, b, PB_HASH_LEN);
}

/* SHA-256 output is uniform: its first bytes are a good enough hash key. */
static guint raw_hash_hash(gconstpointer k)
{
    guint h;
    memcpy(&h, k, sizeof(h));
    return h;
}

static gboolean raw_hash_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, PB_HASH_LEN) == 0;
}

GByteArray *pb_manifest_data_hashes(const PbManifest *m, gboolean sorted)
{
    GByteArray *out = g_byte_array_new();
    g_autoptr(GHashTable) seen =
        sorted ? NULL : g_hash_table_new(raw_hash_hash, raw_hash_equal); /* keys: m's own */
    for (guint i = 0; i < m->chunks->len; i++) {
        const PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, i);
        if (c->kind != PB_CHUNK_DATA)
            continue;
        if (seen != NULL && !g_hash_table_add(seen, (gpointer)c->hash))
            continue;
        g_byte_array_append(out, c->hash, PB_HASH_LEN);
    }
    if (!sorted)
        return out;
    gsize n = out->len / PB_HASH_LEN, u = 0;
    if (n > 0) /* an empty GByteArray may have no data, and qsort's array may not be NULL */
        qsort(out->data, n, PB_HASH_LEN, cmp_raw_hash);
    for (gsize i = 0; i < n; i++)
        if (u == 0 || memcmp(out->data + (u - 1) * PB_HASH_LEN, out->data + i * PB_HASH_LEN,
                             PB_HASH_LEN) != 0)
            memmove(out->data + u++ * PB_HASH_LEN, out->data + i * PB_HASH_LEN, PB_HASH_LEN);
    g_byte_array_set_size(out, (guint)(u * PB_HASH_LEN));
    return out;
}

void pb_manifest_stats(const PbManifest *m, PbManifestStats *st)
{
    memset(st, 0, sizeof(*st));
    g_autoptr(GArray) data = g_array_new(FALSE, FALSE, sizeof(PbChunkRef));
    for (guint ri = 0; ri < m->regions->len; ri++) {
        const PbRegion *r = &g_array_index(m->regions, PbRegion, ri);
        for (guint i = 0; i < r->n_chunks; i++) {
            const PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, r->first_chunk + i);
            guint64 len = pb_region_chunk_len(m, r, i);
            switch (c->kind) {
            case PB_CHUNK_DATA:
                st->n_data++;
                st->data_bytes += len;
                st->stored_bytes += c->stored;
                g_array_append_val(data, *c);
                break;
            case PB_CHUNK_ZERO:
                st->n_zero++;
                st->zero_bytes += len;
                break;
            case PB_CHUNK_UNUSED:
                st->n_unused++;
                st->unused_bytes += len;
                break;
            default:
                st->n_absent++;
                st->absent_bytes += len;
            }
        }
    }
    g_array_sort(data, cmp_hash);
    for (guint i = 0; i < data->len; i++)
        if (i == 0 || cmp_hash(&g_array_index(data, PbChunkRef, i - 1),
                               &g_array_index(data, PbChunkRef, i)) != 0) {
            st->n_unique++;
            st->unique_stored_bytes += g_array_index(data, PbChunkRef, i).stored;
        }
}

/* ---- building ------------------------------------------------------------------------- */

static void put_value(GString *s, const char *v)
{
    if (v == NULL || *v == '\0') {
        g_string_append_c(s, '-');
        return;
    }
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '%' || *p == '=' ||
            (p == (const unsigned char *)v && *p == '-'))
            g_string_append_printf(s, "%%%02X", *p);
        else
            g_string_append_c(s, (char)*p);
    }
}

GString *pb_manifest_build(PbManifest *m)
{
    GString *s = g_string_new(NULL);
    /* Version 1 unless a chunk is delta-coded, so older readers read every image they can. */
    guint version = 1;
    for (guint i = 0; i < m->chunks->len; i++) {
        const PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, i);
        if (c->kind == PB_CHUNK_DATA && c->codec == PB_CODEC_DELTA)
            version = 2;
    }
    m->version = version;
    g_string_append_printf(s, "preboot-image %u\n", version);
    g_string_append_printf(s, "chunk-size %u\n", m->chunk_size);
    g_string_append_printf(s, "disk-size %" G_GUINT64_FORMAT "\n", m->disk_size);
    g_string_append_printf(s, "sector-size %u\n", m->sector_size);
    g_string_append(s, "label ");
    put_value(s, m->label);
    g_string_append(s, "\ndisk-id ");
    put_value(s, m->disk_id);
    g_string_append_c(s, '\n');
    for (guint i = 0; i < m->partitions->len; i++) {
        const PbPartition *p = &g_array_index(m->partitions, PbPartition, i);
        g_string_append_printf(
            s,
            "partition %d start=%" G_GUINT64_FORMAT " size=%" G_GUINT64_FORMAT " type=", p->partno,
            p->start, p->size);
        put_value(s, p->type);
        g_string_append(s, " uuid=");
        put_value(s, p->uuid);
        g_string_append(s, " name=");
        put_value(s, p->name);
        g_string_append(s, " attrs=");
        put_value(s, p->attrs);
        g_string_append(s, " fs=");
        put_value(s, p->fs);
        g_string_append_c(s, '\n');
    }
    for (guint ri = 0; ri < m->regions->len; ri++) {
        const PbRegion *r = &g_array_index(m->regions, PbRegion, ri);
        g_string_append_printf(s, "region %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " ", r->offset,
                               r->length);
        if (r->partno > 0)
            g_string_append_printf(s, "partition=%d\n", r->partno);
        else
            g_string_append(s, "table\n");
        for (guint i = 0; i < r->n_chunks; i++) {
            const PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, r->first_chunk + i);
            char hex[PB_HASH_HEX_LEN + 1];
            switch (c->kind) {
            case PB_CHUNK_DATA:
                pb_hash_to_hex(c->hash, hex);
                g_string_append_printf(s, "c %s %s %" G_GUINT64_FORMAT, hex,
                                       pb_codec_name(c->codec), c->stored);
                if (c->codec == PB_CODEC_DELTA) {
                    pb_hash_to_hex(c->base, hex);
                    g_string_append_printf(s, " %s", hex);
                }
                g_string_append_c(s, '\n');
                break;
            case PB_CHUNK_ZERO:
                g_string_append(s, "z\n");
                break;
            case PB_CHUNK_UNUSED:
                g_string_append(s, "u\n");
                break;
            default:
                g_string_append(s, "a\n");
            }
        }
    }
    pb_sha256(s->str, s->len, m->seal);
    char hex[PB_HASH_HEX_LEN + 1];
    pb_hash_to_hex(m->seal, hex);
    g_string_append_printf(s, "seal sha256 %s\n", hex);
    return s;
}

/* ---- parsing -------------------------------------------------------------------------- */

typedef struct {
    const char *p, *end;
    guint line;
    GError **error;
} Parser;

static gboolean fail(Parser *ps, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static gboolean fail(Parser *ps, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(ps->error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE, "manifest line %u: %s", ps->line,
                msg);
    return FALSE;
}

/* Splits the next line into at most max space-separated tokens (copied, NUL-terminated). */
static int next_line(Parser *ps, char **tok, int max, const char **line_start)
{
    if (ps->p >= ps->end)
        return -1;
    *line_start = ps->p;
    const char *nl = memchr(ps->p, '\n', (size_t)(ps->end - ps->p));
    if (nl == NULL)
        return -2;
    ps->line++;
    /* Printable ASCII only: a NUL would end a token early and let two texts mean the same. */
    for (const char *c = ps->p; c < nl; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            return -3;
    int n = 0;
    const char *q = ps->p;
    while (q < nl) {
        const char *sp = memchr(q, ' ', (size_t)(nl - q));
        const char *e = sp != NULL ? sp : nl;
        if (e == q || n == max || (sp != NULL && sp + 1 == nl)) {
            /* empty token (double space), too many, or a trailing space */
            for (int i = 0; i < n; i++)
                g_free(tok[i]);
            return -3;
        }
        tok[n++] = g_strndup(q, (gsize)(e - q));
        q = sp != NULL ? sp + 1 : nl;
    }
    ps->p = nl + 1;
    return n;
}

static void free_tokens(char **tok, int n)
{
    for (int i = 0; i < n; i++)
        g_free(tok[i]);
}

static gboolean parse_u64(const char *s, guint64 max, guint64 *out)
{
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] != '\0'))
        return FALSE;
    guint64 v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return FALSE;
        if (v > (G_MAXUINT64 - 9) / 10)
            return FALSE;
        v = v * 10 + (guint64)(*s - '0');
    }
    if (v > max)
        return FALSE;
    *out = v;
    return TRUE;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a value token; NULL for "-". *ok FALSE on a bad escape. */
static char *get_value(const char *t, gboolean *ok)
{
    *ok = TRUE;
    if (strcmp(t, "-") == 0)
        return NULL;
    GString *s = g_string_new(NULL);
    for (const char *p = t; *p; p++) {
        if (*p == '%') {
            int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                *ok = FALSE;
                break;
            }
            g_string_append_c(s, (char)(hi * 16 + lo));
            p += 2;
        } else if (*p == '=' || (p == t && *p == '-')) {
            *ok = FALSE;
            break;
        } else {
            g_string_append_c(s, *p);
        }
    }
    if (!*ok) {
        g_string_free(s, TRUE);
        return NULL;
    }
    return g_string_free(s, FALSE);
}

static gboolean is_pow2(guint64 v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

static gboolean parse_partition(Parser *ps, PbManifest *m, char **tok, int n)
{
    static const char *const keys[] = {"start", "size", "type", "uuid", "name", "attrs", "fs"};
    guint64 partno;
    if (n != 9 || !parse_u64(tok[1], PB_PARTITIONS_MAX, &partno) || partno == 0)
        return fail(ps, "expected: partition N start= size= type= uuid= name= attrs= fs=");
    if (m->partitions->len >= PB_PARTITIONS_MAX || pb_manifest_partition(m, (int)partno) != NULL)
        return fail(ps, "partition %" G_GUINT64_FORMAT " repeated or too many partitions", partno);
    PbPartition p = {.partno = (int)partno};
    char *vals[7] = {NULL};
    gboolean good = TRUE;
    for (int k = 0; k < 7 && good; k++) {
        size_t kl = strlen(keys[k]);
        if (strncmp(tok[2 + k], keys[k], kl) != 0 || tok[2 + k][kl] != '=') {
            good = fail(ps, "expected %s= as field %d", keys[k], k + 1);
            break;
        }
        const char *v = tok[2 + k] + kl + 1;
        if (k < 2) {
            if (!parse_u64(v, PB_DISK_SIZE_MAX, k == 0 ? &p.start : &p.size))
                good = fail(ps, "bad %s", keys[k]);
        } else {
            vals[k] = get_value(v, &good);
            if (!good)
                fail(ps, "bad escape in %s", keys[k]);
        }
    }
    p.type = vals[2];
    p.uuid = vals[3];
    p.name = vals[4];
    p.attrs = vals[5];
    p.fs = vals[6];
    if (good && (p.size == 0 || p.start + p.size > m->disk_size))
        good = fail(ps, "partition %d lies outside the disk", p.partno);
    if (!good) {
        for (int k = 2; k < 7; k++)
            g_free(vals[k]);
        return FALSE;
    }
    g_array_append_val(m->partitions, p);
    return TRUE;
}

PbManifest *pb_manifest_parse(const char *text, gsize len, GError **error)
{
    g_autoptr(PbManifest) m = pb_manifest_new();
    Parser ps = {.p = text, .end = text + len, .error = error};
    char *tok[10];
    gboolean any_delta = FALSE;
    const char *line_start = NULL;
    int state = 0; /* header fields seen, in order */
    guint64 next_offset = 0;
    PbRegion *cur = NULL;
    guint cur_i = 0;
    g_clear_pointer(&m->label, g_free);

    for (;;) {
        int n = next_line(&ps, tok, G_N_ELEMENTS(tok), &line_start);
        if (n == -1) {
            fail(&ps, "no seal line");
            return NULL;
        }
        if (n == -2) {
            ps.line++;
            fail(&ps, "missing newline at the end");
            return NULL;
        }
        if (n < 1) {
            fail(&ps, "malformed line (empty, doubled or trailing space, a byte that is not "
                      "printable ASCII, or too many fields)");
            return NULL;
        }
        gboolean ok = TRUE;
        const char *k = tok[0];
        guint64 v = 0;
        if (cur != NULL && cur_i < cur->n_chunks) {
            PbChunkRef c = {0};
            if (strcmp(k, "z") == 0 && n == 1)
                c.kind = PB_CHUNK_ZERO;
            else if (strcmp(k, "u") == 0 && n == 1)
                c.kind = PB_CHUNK_UNUSED;
            else if (strcmp(k, "a") == 0 && n == 1)
                c.kind = PB_CHUNK_ABSENT;
            else if (strcmp(k, "c") == 0 && (n == 4 || n == 5)) {
                gboolean delta = strcmp(tok[2], "delta") == 0;
                PbCodec codec = delta ? PB_CODEC_DELTA : PB_CODEC_NONE;
                guint64 clen = pb_region_chunk_len(m, cur, cur_i);
                c.kind = PB_CHUNK_DATA;
                if (strlen(tok[1]) != PB_HASH_HEX_LEN ||
                    !pb_hash_from_hex(tok[1], PB_HASH_HEX_LEN, c.hash))
                    ok = fail(&ps, "bad chunk hash (64 lowercase hex digits)");
                else if (delta && (m->version < 2 || n != 5))
                    ok = fail(&ps, "a delta chunk needs version 2 and its base's hash");
                else if (delta && (strlen(tok[4]) != PB_HASH_HEX_LEN ||
                                   !pb_hash_from_hex(tok[4], PB_HASH_HEX_LEN, c.base) ||
                                   memcmp(c.base, c.hash, PB_HASH_LEN) == 0))
                    ok = fail(&ps, "bad base hash");
                else if (!delta && n != 4)
                    ok = fail(&ps, "only a delta chunk names a base");
                else if (!delta && !pb_codec_parse(tok[2], &codec))
                    ok = fail(&ps, "unknown codec \"%s\"", tok[2]);
                else if (!parse_u64(tok[3], PB_CHUNK_SIZE_MAX * 2ull, &c.stored) || c.stored == 0 ||
                         (codec == PB_CODEC_NONE && c.stored != clen))
                    ok = fail(&ps, "bad stored length");
                any_delta |= delta;
                c.codec = (guint8)codec;
            } else
                ok = fail(&ps,
                          "expected a chunk line (c HASH CODEC LEN, z, u or a), %u more "
                          "in this region",
                          cur->n_chunks - cur_i);
            if (ok) {
                g_array_append_val(m->chunks, c);
                cur_i++;
            }
        } else if (strcmp(k, "preboot-image") == 0 && state == 0) {
            if (n != 2 || !parse_u64(tok[1], 1000, &v) || v < 1 || v > PB_IMAGE_FORMAT_VERSION)
                ok = fail(&ps, "unsupported format version (this reader knows 1 to %d)",
                          PB_IMAGE_FORMAT_VERSION);
            m->version = (guint)v;
            state = 1;
        } else if (state == 0) {
            ok = fail(&ps, "not a preboot image manifest");
        } else if (strcmp(k, "chunk-size") == 0 && state == 1) {
            if (n != 2 || !parse_u64(tok[1], PB_CHUNK_SIZE_MAX, &v) || v < PB_CHUNK_SIZE_MIN ||
                !is_pow2(v))
                ok = fail(&ps, "chunk-size must be a power of two in %u..%u", PB_CHUNK_SIZE_MIN,
                          PB_CHUNK_SIZE_MAX);
            m->chunk_size = (guint32)v;
            state = 2;
        } else if (strcmp(k, "disk-size") == 0 && state == 2) {
            if (n != 2 || !parse_u64(tok[1], PB_DISK_SIZE_MAX, &m->disk_size))
                ok = fail(&ps, "bad disk-size");
            state = 3;
        } else if (strcmp(k, "sector-size") == 0 && state == 3) {
            if (n != 2 || !parse_u64(tok[1], 65536, &v) || v < 512 || !is_pow2(v) ||
                m->disk_size % v != 0)
                ok = fail(&ps, "bad sector-size (512..65536, dividing disk-size)");
            m->sector_size = (guint32)v;
            state = 4;
        } else if (strcmp(k, "label") == 0 && state == 4) {
            if (n != 2 || (m->label = get_value(tok[1], &ok)) == NULL || !ok)
                ok = fail(&ps, "bad label");
            state = 5;
        } else if (strcmp(k, "disk-id") == 0 && state == 5) {
            if (n != 2)
                ok = fail(&ps, "bad disk-id");
            else if ((m->disk_id = get_value(tok[1], &ok)), !ok)
                fail(&ps, "bad escape in disk-id");
            state = 6;
        } else if (strcmp(k, "partition") == 0 && state == 6) {
            ok = parse_partition(&ps, m, tok, n);
        } else if (strcmp(k, "region") == 0 && state >= 6) {
            guint64 off, rlen, pn = 0;
            state = 7;
            if (n != 4 || !parse_u64(tok[1], PB_DISK_SIZE_MAX, &off) ||
                !parse_u64(tok[2], PB_DISK_SIZE_MAX, &rlen) || rlen == 0)
                ok = fail(&ps, "expected: region OFFSET LENGTH table|partition=N");
            else if (off != next_offset || off + rlen > m->disk_size)
                ok = fail(
                    &ps,
                    "region does not follow the previous one (expected offset %" G_GUINT64_FORMAT
                    ") or passes the end of the disk",
                    next_offset);
            else if (strcmp(tok[3], "table") != 0 &&
                     (strncmp(tok[3], "partition=", 10) != 0 ||
                      !parse_u64(tok[3] + 10, PB_PARTITIONS_MAX, &pn) || pn == 0))
                ok = fail(&ps, "region kind must be table or partition=N");
            else if (pn != 0 && (pb_manifest_partition(m, (int)pn) == NULL ||
                                 pb_manifest_region_for(m, (int)pn) != NULL ||
                                 pb_manifest_partition(m, (int)pn)->start != off ||
                                 pb_manifest_partition(m, (int)pn)->size != rlen))
                ok = fail(&ps, "region does not match partition %" G_GUINT64_FORMAT, pn);
            if (ok) {
                PbRegion r = {.offset = off, .length = rlen, .partno = (int)pn};
                r.first_chunk = m->chunks->len;
                r.n_chunks = (guint)((rlen + m->chunk_size - 1) / m->chunk_size);
                g_array_append_val(m->regions, r);
                cur = &g_array_index(m->regions, PbRegion, m->regions->len - 1);
                cur_i = 0;
                next_offset = off + rlen;
            }
        } else if (strcmp(k, "seal") == 0 && state >= 6) {
            guint8 want[PB_HASH_LEN];
            if (n != 3 || strcmp(tok[1], "sha256") != 0 || strlen(tok[2]) != PB_HASH_HEX_LEN ||
                !pb_hash_from_hex(tok[2], PB_HASH_HEX_LEN, want))
                ok = fail(&ps, "expected: seal sha256 HEX");
            else if (next_offset != m->disk_size)
                ok = fail(&ps,
                          "regions end at %" G_GUINT64_FORMAT ", the disk at %" G_GUINT64_FORMAT,
                          next_offset, m->disk_size);
            else if (ps.p != ps.end)
                ok = fail(&ps, "text after the seal");
            else if (m->version == 2 && !any_delta)
                ok = fail(&ps, "version 2 without a delta chunk (write version 1)");
            else {
                pb_sha256(text, (gsize)(line_start - text), m->seal);
                if (memcmp(m->seal, want, PB_HASH_LEN) != 0) {
                    g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_SEAL,
                                "manifest seal mismatch: the manifest was changed or damaged");
                    ok = FALSE;
                }
            }
            free_tokens(tok, n);
            return ok ? g_steal_pointer(&m) : NULL;
        } else {
            ok = fail(&ps, "unexpected \"%s\"", k);
        }
        free_tokens(tok, n);
        if (!ok)
            return NULL;
    }
}
