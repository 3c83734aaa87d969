/* image-chunk.c - naming and coding chunks: SHA-256 through libcrypto's EVP (it uses the
 * CPU's SHA extensions where present), zstd or no coding. Memory only. */
#include "image-format.h"

#include <openssl/evp.h>
#include <string.h>
#include <zstd.h>

void pb_sha256(const void *data, gsize len, guint8 out[PB_HASH_LEN])
{
    unsigned int n = PB_HASH_LEN;
    /* EVP_Digest cannot fail for SHA-256 short of memory exhaustion; abort rather than name
     * a chunk with a wrong hash. */
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != PB_HASH_LEN)
        g_error("SHA-256 failed");
}

void pb_hash_to_hex(const guint8 hash[PB_HASH_LEN], char out[PB_HASH_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < PB_HASH_LEN; i++) {
        out[2 * i] = digits[hash[i] >> 4];
        out[2 * i + 1] = digits[hash[i] & 15];
    }
    out[PB_HASH_HEX_LEN] = '\0';
}

static int lhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

gboolean pb_hash_from_hex(const char *hex, gsize len, guint8 out[PB_HASH_LEN])
{
    if (len != PB_HASH_HEX_LEN)
        return FALSE;
    for (int i = 0; i < PB_HASH_LEN; i++) {
        int hi = lhex(hex[2 * i]), lo = lhex(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return FALSE;
        out[i] = (guint8)(hi << 4 | lo);
    }
    return TRUE;
}

gboolean pb_is_zero(const void *data, gsize len)
{
    const guint8 *p = data;
    /* Compare the buffer with itself shifted by 16 bytes after checking the first 16:
     * memcmp is vectorised, a byte loop is not. */
    gsize head = MIN(len, (gsize)16);
    for (gsize i = 0; i < head; i++)
        if (p[i] != 0)
            return FALSE;
    return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}

const char *pb_codec_name(PbCodec c)
{
    return c == PB_CODEC_ZSTD ? "zstd" : c == PB_CODEC_DELTA ? "delta" : "none";
}

gboolean pb_codec_parse(const char *s, PbCodec *out)
{
    if (strcmp(s, "zstd") == 0)
        *out = PB_CODEC_ZSTD;
    else if (strcmp(s, "none") == 0)
        *out = PB_CODEC_NONE;
    else
        return FALSE;
    return TRUE;
}

static void free_cctx(gpointer p)
{
    ZSTD_freeCCtx(p);
}
static void free_dctx(gpointer p)
{
    ZSTD_freeDCtx(p);
}
static GPrivate cctx_key = G_PRIVATE_INIT(free_cctx);
static GPrivate dctx_key = G_PRIVATE_INIT(free_dctx);

/* A thread's output buffer for compression, kept between chunks. */
typedef struct {
    guint8 *data;
    gsize cap;
} Scratch;
static void free_scratch(gpointer p)
{
    Scratch *s = p;
    g_free(s->data);
    g_free(s);
}
static GPrivate scratch_key = G_PRIVATE_INIT(free_scratch);

GBytes *pb_chunk_encode(PbCodec codec, int level, const void *data, gsize len, PbCodec *used)
{
    if (codec == PB_CODEC_ZSTD) {
        /* Compressed into a buffer the thread keeps, then copied out at its real size: a
         * new bound-sized buffer per chunk is a fresh mapping each time (above malloc's
         * mmap threshold) whose page faults cost 5 % of a capture's CPU. */
        Scratch *s = g_private_get(&scratch_key);
        if (s == NULL) {
            s = g_new0(Scratch, 1);
            g_private_set(&scratch_key, s);
        }
        gsize cap = ZSTD_compressBound(len);
        if (s->cap < cap) {
            g_free(s->data);
            s->data = g_malloc(cap);
            s->cap = cap;
        }
        /* One context per thread, freed when the thread ends: creating one per chunk
         * costs more than a small chunk's compression at level 1. */
        ZSTD_CCtx *cctx = g_private_get(&cctx_key);
        if (cctx == NULL) {
            cctx = ZSTD_createCCtx();
            g_private_set(&cctx_key, cctx);
        }
        size_t n = ZSTD_compressCCtx(cctx, s->data, cap, data, len, level);
        if (!ZSTD_isError(n) && n < len) {
            *used = PB_CODEC_ZSTD;
            return g_bytes_new(s->data, n);
        }
    }
    *used = PB_CODEC_NONE;
    return g_bytes_new(data, len);
}

gboolean pb_chunk_decode_verify(PbCodec codec, const void *stored, gsize stored_len,
                                const guint8 hash[PB_HASH_LEN], void *out, gsize len,
                                GError **error)
{
    if (codec == PB_CODEC_ZSTD) {
        unsigned long long fs = ZSTD_getFrameContentSize(stored, stored_len);
        if (fs != len) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT,
                        "zstd frame holds %s bytes, expected %" G_GSIZE_FORMAT,
                        fs == ZSTD_CONTENTSIZE_ERROR || fs == ZSTD_CONTENTSIZE_UNKNOWN
                            ? "an unknown number of"
                            : "another number of",
                        len);
            return FALSE;
        }
        ZSTD_DCtx *dctx = g_private_get(&dctx_key);
        if (dctx == NULL) {
            dctx = ZSTD_createDCtx();
            g_private_set(&dctx_key, dctx);
        }
        size_t n = ZSTD_decompressDCtx(dctx, out, len, stored, stored_len);
        if (ZSTD_isError(n) || n != len) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT, "zstd: %s",
                        ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short frame");
            return FALSE;
        }
    } else if (codec == PB_CODEC_NONE) {
        if (stored_len != len) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT,
                        "stored %" G_GSIZE_FORMAT " bytes, expected %" G_GSIZE_FORMAT, stored_len,
                        len);
            return FALSE;
        }
        memcpy(out, stored, len);
    } else if (codec == PB_CODEC_DELTA) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT,
                    "a delta chunk is decoded onto its base (pb_delta_apply_verify)");
        return FALSE;
    } else {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT, "unknown codec %d", codec);
        return FALSE;
    }
    guint8 got[PB_HASH_LEN];
    pb_sha256(out, len, got);
    if (memcmp(got, hash, PB_HASH_LEN) != 0) {
        char want_hex[PB_HASH_HEX_LEN + 1], got_hex[PB_HASH_HEX_LEN + 1];
        pb_hash_to_hex(hash, want_hex);
        pb_hash_to_hex(got, got_hex);
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT,
                    "hash mismatch: expected %s, the bytes hash to %s", want_hex, got_hex);
        return FALSE;
    }
    return TRUE;
}

/* ---- delta chunks --------------------------------------------------------------------- */

static void put32(guint8 *p, guint32 v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (guint8)(v >> (8 * i));
}
static guint32 get32(const guint8 *p)
{
    return (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 | (guint32)p[3] << 24;
}

GBytes *pb_delta_encode(const guint8 base_hash[PB_HASH_LEN], const void *base, const void *data,
                        gsize len, int level, gsize max_changed)
{
    const guint8 *a = base, *b = data;
    g_autoptr(GArray) runs = g_array_new(FALSE, FALSE, sizeof(guint32) * 2);
    gsize changed = 0;
    for (gsize off = 0; off < len; off += PB_DELTA_BLOCK) {
        gsize n = MIN((gsize)PB_DELTA_BLOCK, len - off);
        if (memcmp(a + off, b + off, n) == 0)
            continue;
        changed += n;
        if (changed > max_changed)
            return NULL;
        guint32 *last = runs->len > 0 ? &g_array_index(runs, guint32, 2 * (runs->len - 1)) : NULL;
        if (last != NULL && last[0] + last[1] == off)
            last[1] += (guint32)n;
        else {
            guint32 r[2] = {(guint32)off, (guint32)n};
            g_array_append_val(runs, r);
        }
    }
    gsize plen = 4 + 8 * (gsize)runs->len + changed;
    g_autofree guint8 *payload = g_malloc(plen);
    put32(payload, runs->len);
    guint8 *p = payload + 4 + 8 * (gsize)runs->len;
    for (guint i = 0; i < runs->len; i++) {
        const guint32 *r = &g_array_index(runs, guint32, 2 * i);
        put32(payload + 4 + 8 * i, r[0]);
        put32(payload + 8 + 8 * i, r[1]);
        memcpy(p, b + r[0], r[1]);
        p += r[1];
    }
    gsize cap = PB_DELTA_HEADER_LEN + ZSTD_compressBound(plen);
    guint8 *out = g_malloc(cap);
    memcpy(out, PB_DELTA_MAGIC, 4);
    memcpy(out + 4, base_hash, PB_HASH_LEN);
    ZSTD_CCtx *cctx = g_private_get(&cctx_key);
    if (cctx == NULL) {
        cctx = ZSTD_createCCtx();
        g_private_set(&cctx_key, cctx);
    }
    size_t n = ZSTD_compressCCtx(cctx, out + PB_DELTA_HEADER_LEN, cap - PB_DELTA_HEADER_LEN,
                                 payload, plen, level);
    if (ZSTD_isError(n)) {
        g_free(out);
        return NULL;
    }
    return g_bytes_new_take(g_realloc(out, PB_DELTA_HEADER_LEN + n), PB_DELTA_HEADER_LEN + n);
}

gboolean pb_delta_base(const void *stored, gsize stored_len, guint8 base_hash[PB_HASH_LEN],
                       GError **error)
{
    if (stored_len < PB_DELTA_HEADER_LEN || memcmp(stored, PB_DELTA_MAGIC, 4) != 0) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT, "not a delta chunk");
        return FALSE;
    }
    memcpy(base_hash, (const guint8 *)stored + 4, PB_HASH_LEN);
    return TRUE;
}

static gboolean delta_bad(GError **error, const char *why)
{
    g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT, "delta chunk: %s", why);
    return FALSE;
}

gboolean pb_delta_apply_verify(const void *stored, gsize stored_len, const guint8 hash[PB_HASH_LEN],
                               guint8 *buf, gsize len, GError **error)
{
    guint8 base_hash[PB_HASH_LEN];
    if (!pb_delta_base(stored, stored_len, base_hash, error))
        return FALSE;
    const guint8 *frame = (const guint8 *)stored + PB_DELTA_HEADER_LEN;
    gsize flen = stored_len - PB_DELTA_HEADER_LEN;
    unsigned long long plen = ZSTD_getFrameContentSize(frame, flen);
    /* The most a delta can hold: every block a run of its own. */
    unsigned long long most = 4 + 8ull * (len / PB_DELTA_BLOCK + 1) + len;
    if (plen == ZSTD_CONTENTSIZE_ERROR || plen == ZSTD_CONTENTSIZE_UNKNOWN || plen < 4 ||
        plen > most)
        return delta_bad(error, "bad frame size");
    g_autofree guint8 *payload = g_malloc(plen);
    ZSTD_DCtx *dctx = g_private_get(&dctx_key);
    if (dctx == NULL) {
        dctx = ZSTD_createDCtx();
        g_private_set(&dctx_key, dctx);
    }
    size_t n = ZSTD_decompressDCtx(dctx, payload, plen, frame, flen);
    if (ZSTD_isError(n) || n != plen)
        return delta_bad(error, ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short frame");
    guint64 count = get32(payload);
    if (count > (plen - 4) / 8)
        return delta_bad(error, "run table runs past the end");
    guint64 data_at = 4 + 8 * count, end = 0;
    const guint8 *p = payload + data_at;
    for (guint64 i = 0; i < count; i++) {
        guint64 off = get32(payload + 4 + 8 * i), rl = get32(payload + 8 + 8 * i);
        if (rl == 0 || off < end || off + rl > len || rl > plen - (guint64)(p - payload))
            return delta_bad(error, "bad run");
        memcpy(buf + off, p, rl);
        p += rl;
        end = off + rl;
    }
    if ((guint64)(p - payload) != plen)
        return delta_bad(error, "bytes after the last run");
    guint8 got[PB_HASH_LEN];
    pb_sha256(buf, len, got);
    if (memcmp(got, hash, PB_HASH_LEN) != 0) {
        char want_hex[PB_HASH_HEX_LEN + 1], got_hex[PB_HASH_HEX_LEN + 1];
        pb_hash_to_hex(hash, want_hex);
        pb_hash_to_hex(got, got_hex);
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT,
                    "hash mismatch after applying the delta: expected %s, the bytes hash to %s",
                    want_hex, got_hex);
        return FALSE;
    }
    return TRUE;
}
