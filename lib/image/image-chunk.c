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
    return c == PB_CODEC_ZSTD ? "zstd" : "none";
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

GBytes *pb_chunk_encode(PbCodec codec, int level, const void *data, gsize len, PbCodec *used)
{
    if (codec == PB_CODEC_ZSTD) {
        gsize cap = ZSTD_compressBound(len);
        guint8 *buf = g_malloc(cap);
        /* One context per thread, freed when the thread ends: creating one per chunk
         * costs more than a small chunk's compression at level 1. */
        ZSTD_CCtx *cctx = g_private_get(&cctx_key);
        if (cctx == NULL) {
            cctx = ZSTD_createCCtx();
            g_private_set(&cctx_key, cctx);
        }
        size_t n = ZSTD_compressCCtx(cctx, buf, cap, data, len, level);
        if (!ZSTD_isError(n) && n < len) {
            *used = PB_CODEC_ZSTD;
            return g_bytes_new_take(g_realloc(buf, n), n);
        }
        g_free(buf);
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
