/* backend-common.c - see backend-common.h. */
#include "backend-common.h"

#include <stdarg.h>
#include <string.h>
#include <zstd.h>

uint32_t pb_be_fail(pb_backend_error *err, uint32_t status, const char *fmt, ...)
{
    if (err != NULL && PB_HAS_FIELD(pb_backend_error, err, message)) {
        va_list ap;
        va_start(ap, fmt);
        g_vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

void pb_be_say(void (*log)(void *, int, const char *), void *log_data, int level, const char *fmt,
               ...)
{
    if (log == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *m = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    log(log_data, level, m);
    g_free(m);
}

gboolean pb_be_seal_valid(const char *seal)
{
    return seal != NULL && strlen(seal) == PB_HASH_HEX_LEN &&
           strspn(seal, "0123456789abcdef") == PB_HASH_HEX_LEN;
}

void pb_be_take_seal(void *data, const pb_backend_image *im)
{
    g_strlcpy(data, im->seal ? im->seal : "", PB_HASH_HEX_LEN + 1);
}

uint32_t pb_be_chunk_begin_check(PbStore *store, const uint8_t hash[PB_BACKEND_HASH_LEN],
                                 uint32_t codec, uint64_t length, uint64_t stored,
                                 pb_backend_error *err)
{
    if (codec != PB_BACKEND_CODEC_NONE && codec != PB_BACKEND_CODEC_ZSTD)
        return pb_be_fail(err, PB_BACKEND_INVALID, "unknown codec %u", codec);
    if (length == 0 || length > PB_CHUNK_SIZE_MAX)
        return pb_be_fail(err, PB_BACKEND_INVALID,
                          "chunk length %" G_GUINT64_FORMAT " out of range", length);
    if (stored != UINT64_MAX && stored > ZSTD_compressBound(length))
        return pb_be_fail(err, PB_BACKEND_INVALID,
                          "%" G_GUINT64_FORMAT " stored bytes for a chunk of %" G_GUINT64_FORMAT,
                          stored, length);
    if (pb_store_has_chunk(store, hash, NULL))
        return pb_be_fail(err, PB_BACKEND_EXISTS, "chunk already stored");
    return PB_BACKEND_OK;
}

uint32_t pb_be_chunk_write_check(uint64_t written, size_t len, uint64_t length,
                                 pb_backend_error *err)
{
    if (written + len > ZSTD_compressBound(length))
        return pb_be_fail(err, PB_BACKEND_INVALID,
                          "more bytes than a chunk of %" G_GUINT64_FORMAT " can take", length);
    return PB_BACKEND_OK;
}

PbCodec pb_be_codec(uint32_t codec)
{
    return codec == PB_BACKEND_CODEC_ZSTD ? PB_CODEC_ZSTD : PB_CODEC_NONE;
}

uint32_t pb_be_backend_codec(PbCodec codec)
{
    return codec == PB_CODEC_ZSTD ? PB_BACKEND_CODEC_ZSTD : PB_BACKEND_CODEC_NONE;
}

uint32_t pb_be_image_check(const pb_backend_image *image, pb_backend_error *err)
{
    if (image == NULL || image->name == NULL || !pb_name_valid(image->name))
        return pb_be_fail(err, PB_BACKEND_INVALID, "invalid image name");
    if (!pb_be_seal_valid(image->seal))
        return pb_be_fail(err, PB_BACKEND_INVALID, "invalid seal");
    return PB_BACKEND_OK;
}

uint32_t pb_be_report_missing(const uint8_t (*hashes)[PB_BACKEND_HASH_LEN], size_t n,
                              const uint8_t *absent, void (*missing_fn)(void *, const char *),
                              void *missing_data, pb_backend_error *err)
{
    size_t missing = 0;
    for (size_t i = 0; i < n; i++)
        if (absent[i]) {
            missing++;
            if (missing_fn != NULL) {
                char hex[PB_HASH_HEX_LEN + 1];
                pb_hash_to_hex(hashes[i], hex);
                missing_fn(missing_data, hex);
            }
        }
    if (missing > 0)
        return pb_be_fail(err, PB_BACKEND_MISSING, "%zu chunk(s) the manifest names are not stored",
                          missing);
    return PB_BACKEND_OK;
}
