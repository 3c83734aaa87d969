/* oot-backend.c - an imaging backend built out of tree against the installed
 * <preboot/backend.h> only: a read-only catalog of one image it makes up, and a result log
 * that counts. Enough to show that the ABI is all a LIBRARY_NAME library needs. */
#include <preboot/backend.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned results;
} Oot;

static uint32_t no(pb_backend_error *err, uint32_t st, const char *why)
{
    if (err != NULL) {
        err->status = st;
        snprintf(err->message, sizeof(err->message), "oot backend: %s", why);
    }
    return st;
}

static void *oot_open(const pb_backend_config *cfg, pb_backend_error *err)
{
    (void)cfg;
    (void)err;
    return calloc(1, sizeof(Oot));
}

static void oot_close(void *be)
{
    free(be);
}

static uint32_t oot_stat(void *be, const uint8_t h[PB_BACKEND_HASH_LEN], pb_backend_chunk_info *i,
                         pb_backend_error *err)
{
    return no(err, PB_BACKEND_NOT_FOUND, "no chunks here");
}

static uint32_t oot_missing(void *be, const uint8_t (*h)[PB_BACKEND_HASH_LEN], size_t n,
                            uint8_t *missing, pb_backend_error *err)
{
    memset(missing, 1, n);
    return PB_BACKEND_OK;
}

static uint32_t oot_copen(void *be, const uint8_t h[PB_BACKEND_HASH_LEN], pb_backend_chunk_info *i,
                          void **reader, pb_backend_error *err)
{
    return no(err, PB_BACKEND_NOT_FOUND, "no chunks here");
}

static int64_t oot_read(void *reader, uint64_t off, void *buf, size_t len)
{
    return -1;
}

static void oot_cclose(void *reader)
{
}

static uint32_t oot_begin(void *be, const uint8_t h[PB_BACKEND_HASH_LEN], uint32_t codec,
                          uint64_t length, uint64_t stored, void **writer, pb_backend_error *err)
{
    return no(err, PB_BACKEND_INVALID, "read-only");
}

static uint32_t oot_write(void *w, const void *d, size_t len, pb_backend_error *err)
{
    return no(err, PB_BACKEND_INVALID, "read-only");
}

static uint32_t oot_commit(void *w, pb_backend_error *err)
{
    return no(err, PB_BACKEND_INVALID, "read-only");
}

static void oot_abort(void *w)
{
}

static void one(pb_backend_image_fn fn, void *data)
{
    pb_backend_image im = {.struct_size = sizeof(im),
                           .name = "made-up-by-oot-backend",
                           .disk_size = 1048576,
                           .chunks = 1,
                           .created = 1796601600,
                           .seal =
                               "0000000000000000000000000000000000000000000000000000000000000000",
                           .location = ""};
    fn(data, &im);
}

static uint32_t oot_list(void *be, pb_backend_image_fn fn, void *data, pb_backend_error *err)
{
    one(fn, data);
    return PB_BACKEND_OK;
}

static uint32_t oot_info(void *be, const char *name, pb_backend_image_fn fn, void *data,
                         pb_backend_error *err)
{
    if (strcmp(name, "made-up-by-oot-backend") != 0)
        return no(err, PB_BACKEND_NOT_FOUND, "no such image");
    one(fn, data);
    return PB_BACKEND_OK;
}

static uint32_t oot_manifest(void *be, const char *name, pb_backend_bytes_fn fn, void *data,
                             pb_backend_error *err)
{
    return no(err, PB_BACKEND_NOT_FOUND, "no manifests here");
}

static uint32_t oot_icommit(void *be, const pb_backend_image *image, const char *m, size_t len,
                            const uint8_t (*h)[PB_BACKEND_HASH_LEN], size_t n, uint32_t flags,
                            void (*missing_fn)(void *, const char *), void *md, bool *replaced,
                            pb_backend_error *err)
{
    return no(err, PB_BACKEND_INVALID, "read-only");
}

static uint32_t oot_delete(void *be, const char *name, pb_backend_error *err)
{
    return no(err, PB_BACKEND_NOT_FOUND, "read-only");
}

static uint32_t oot_result_add(void *be, const pb_backend_result *r, pb_backend_error *err)
{
    ((Oot *)be)->results++;
    return PB_BACKEND_OK;
}

static uint32_t oot_result_list(void *be, uint32_t limit, pb_backend_result_fn fn, void *data,
                                pb_backend_error *err)
{
    char msg[64];
    snprintf(msg, sizeof(msg), "%u result(s) counted", ((Oot *)be)->results);
    pb_backend_result r = {.struct_size = sizeof(r),
                           .time = 1796601600,
                           .type = "oot",
                           .result = "ok",
                           .message = msg};
    fn(data, &r);
    return PB_BACKEND_OK;
}

static uint32_t oot_stat_add(void *be, const char *name, int64_t d, pb_backend_error *err)
{
    return PB_BACKEND_OK;
}

static uint32_t oot_stat_list(void *be, pb_backend_stat_fn fn, void *data, pb_backend_error *err)
{
    return PB_BACKEND_OK;
}

static const pb_backend oot_backend = {
    .header = PB_BACKEND_HEADER("oot", "0.0.1"),
    .description = "out of tree, read-only, in memory",
    .open = oot_open,
    .close = oot_close,
    .chunk_stat = oot_stat,
    .chunk_missing = oot_missing,
    .chunk_open = oot_copen,
    .chunk_read = oot_read,
    .chunk_close = oot_cclose,
    .chunk_begin = oot_begin,
    .chunk_write = oot_write,
    .chunk_commit = oot_commit,
    .chunk_abort = oot_abort,
    .image_list = oot_list,
    .image_info = oot_info,
    .image_manifest = oot_manifest,
    .image_commit = oot_icommit,
    .image_delete = oot_delete,
    .result_add = oot_result_add,
    .result_list = oot_result_list,
    .stat_add = oot_stat_add,
    .stat_list = oot_stat_list,
};

PB_BACKEND_DEFINE(liboot_backend, oot_backend)
