/* imaging-service.c - PB_IMAGING_SERVICE (include/preboot/imaging.h): the backend's
 * images and chunks for the multicast plugin's sessions, which read chunks and store a
 * master client's image from threads of their own. Every call goes straight to the backend
 * (thread-safe by its ABI); the only state here is the count of stores in progress, which
 * holds off the garbage collection so that chunks put for an image not yet committed are
 * not collected under it. */
#include "build-config.h"

#include "imaging-service.h"

#include "image-format.h"

#include <string.h>

struct ImagingService {
    pb_imaging_service iface;
    const pb_host *host;
    pb_instance *inst;
    const pb_backend *be;
    void *bh;
    gint stores; /* store_begin without store_end */
    gint gc;     /* a collection runs */
    pb_defer_fn idle;
    void *idle_data;
};

static uint32_t fail(pb_imaging_error *err, uint32_t st, const char *msg)
{
    if (err != NULL) {
        err->status = st;
        g_strlcpy(err->message, msg, sizeof(err->message));
    }
    return st;
}

static uint32_t from_backend(pb_imaging_error *err, uint32_t st, const pb_backend_error *e)
{
    return st == PB_BACKEND_OK ? PB_IMAGING_OK : fail(err, st, e->message);
}

static uint32_t svc_manifest(void *ctx, const char *name, pb_imaging_bytes_fn fn, void *data,
                             pb_imaging_error *err)
{
    ImagingService *s = ctx;
    pb_backend_error e = {.struct_size = sizeof(e)};
    return from_backend(err, s->be->image_manifest(s->bh, name, fn, data, &e), &e);
}

static uint32_t svc_chunk_stat(void *ctx, const uint8_t hash[PB_IMAGING_HASH_LEN], uint32_t *codec,
                               uint64_t *stored, pb_imaging_error *err)
{
    ImagingService *s = ctx;
    pb_backend_error e = {.struct_size = sizeof(e)};
    pb_backend_chunk_info info = {.struct_size = sizeof(info)};
    uint32_t st = s->be->chunk_stat(s->bh, hash, &info, &e);
    if (st == PB_BACKEND_OK) {
        if (codec != NULL)
            *codec = info.codec;
        if (stored != NULL)
            *stored = info.stored;
    }
    return from_backend(err, st, &e);
}

static uint32_t svc_chunk_get(void *ctx, const uint8_t hash[PB_IMAGING_HASH_LEN], uint32_t *codec,
                              pb_imaging_bytes_fn fn, void *data, pb_imaging_error *err)
{
    ImagingService *s = ctx;
    pb_backend_error e = {.struct_size = sizeof(e)};
    pb_backend_chunk_info info = {.struct_size = sizeof(info)};
    void *reader = NULL;
    uint32_t st = s->be->chunk_open(s->bh, hash, &info, &reader, &e);
    if (st != PB_BACKEND_OK)
        return from_backend(err, st, &e);
    if (codec != NULL)
        *codec = info.codec;
    guint8 buf[64 * 1024];
    uint64_t off = 0;
    for (;;) {
        int64_t n = s->be->chunk_read(reader, off, buf, sizeof(buf));
        if (n < 0) {
            st = fail(err, PB_IMAGING_IO, "the backend failed to read the chunk");
            break;
        }
        if (n == 0) {
            if (off != info.stored)
                st = fail(err, PB_IMAGING_IO, "the chunk ended early");
            break;
        }
        if (!fn(data, buf, (size_t)n)) {
            st = fail(err, PB_IMAGING_IO, "stopped by the reader");
            break;
        }
        off += (uint64_t)n;
    }
    s->be->chunk_close(reader);
    return st;
}

static uint32_t svc_store_begin(void *ctx, pb_imaging_error *err)
{
    ImagingService *s = ctx;
    /* With gc_enter's order (flag, then count), one of the two always sees the other. */
    g_atomic_int_inc(&s->stores);
    if (g_atomic_int_get(&s->gc)) {
        if (g_atomic_int_dec_and_test(&s->stores) && s->idle != NULL)
            s->host->defer(s->inst, s->idle, s->idle_data);
        return fail(err, PB_IMAGING_BUSY, "a garbage collection runs; try again when it is done");
    }
    return PB_IMAGING_OK;
}

static void svc_store_end(void *ctx)
{
    ImagingService *s = ctx;
    if (g_atomic_int_dec_and_test(&s->stores) && s->idle != NULL)
        s->host->defer(s->inst, s->idle, s->idle_data);
}

static uint32_t svc_chunk_put(void *ctx, const uint8_t hash[PB_IMAGING_HASH_LEN], uint32_t codec,
                              uint64_t length, const void *data, size_t len, pb_imaging_error *err)
{
    ImagingService *s = ctx;
    pb_backend_error e = {.struct_size = sizeof(e)};
    void *w = NULL;
    uint32_t st = s->be->chunk_begin(s->bh, hash, codec, length, len, &w, &e);
    if (st == PB_BACKEND_EXISTS)
        return PB_IMAGING_OK;
    if (st != PB_BACKEND_OK)
        return from_backend(err, st, &e);
    st = s->be->chunk_write(w, data, len, &e);
    if (st != PB_BACKEND_OK) {
        s->be->chunk_abort(w);
        return from_backend(err, st, &e);
    }
    return from_backend(err, s->be->chunk_commit(w, &e), &e);
}

static void count_missing(void *data, const char *hex)
{
    (*(guint *)data)++;
}

static uint32_t svc_image_commit(void *ctx, const char *name, const char *manifest, size_t len,
                                 const char *source, pb_imaging_error *err)
{
    ImagingService *s = ctx;
    g_autoptr(GError) ge = NULL;
    g_autoptr(PbManifest) m = pb_manifest_parse(manifest, len, &ge);
    if (m == NULL)
        return fail(err, PB_IMAGING_INVALID, ge->message);
    if (!pb_name_valid(name))
        return fail(err, PB_IMAGING_INVALID, "not an image name");
    PbManifestStats ms;
    pb_manifest_stats(m, &ms);
    /* The distinct DATA chunks, sorted: what the backend checks are all stored. */
    g_autoptr(GByteArray) hashes = pb_manifest_data_hashes(m, TRUE);
    guint u = hashes->len / PB_HASH_LEN;
    char seal[PB_HASH_HEX_LEN + 1];
    pb_hash_to_hex(m->seal, seal);
    pb_backend_image im = {.struct_size = sizeof(im),
                           .name = name,
                           .disk_size = m->disk_size,
                           .chunks = m->chunks->len,
                           .data_bytes = ms.data_bytes,
                           .stored_bytes = ms.unique_stored_bytes,
                           .seal = seal,
                           .location = ""};
    pb_backend_error e = {.struct_size = sizeof(e)};
    guint missing = 0;
    bool replaced = false;
    uint32_t st = s->be->image_commit(s->bh, &im, manifest, len,
                                      (const uint8_t(*)[PB_BACKEND_HASH_LEN])hashes->data, u, 0,
                                      count_missing, &missing, &replaced, &e);
    g_autofree char *msg =
        st == PB_BACKEND_OK
            ? g_strdup_printf("image %s %s from a multicast session: %u "
                              "chunks, seal %s",
                              name, replaced ? "replaced" : "created", m->chunks->len, seal)
            : g_strdup_printf("image %s not stored: %s", name, e.message);
    pb_backend_result r = {.struct_size = sizeof(r),
                           .source = source,
                           .type = "session",
                           .image = name,
                           .result = st == PB_BACKEND_OK ? "ok" : "failed",
                           .message = msg,
                           .bytes_written = ms.data_bytes};
    pb_backend_error re = {.struct_size = sizeof(re)};
    (void)s->be->result_add(s->bh, &r, &re); /* the commit stands even when the log fails */
    return from_backend(err, st, &e);
}

ImagingService *imaging_service_new(const pb_host *host, pb_instance *inst, const pb_backend *be,
                                    void *bh, pb_defer_fn idle, void *idle_data)
{
    ImagingService *s = g_new0(ImagingService, 1);
    s->host = host;
    s->inst = inst;
    s->be = be;
    s->bh = bh;
    s->idle = idle;
    s->idle_data = idle_data;
    s->iface = (pb_imaging_service){.struct_size = sizeof(pb_imaging_service),
                                    .ctx = s,
                                    .backend = be->header.name,
                                    .manifest = svc_manifest,
                                    .chunk_stat = svc_chunk_stat,
                                    .chunk_get = svc_chunk_get,
                                    .store_begin = svc_store_begin,
                                    .store_end = svc_store_end,
                                    .chunk_put = svc_chunk_put,
                                    .image_commit = svc_image_commit};
    return s;
}

void imaging_service_publish(ImagingService *s)
{
    pb_err *err = NULL;
    if (!s->host->service_publish(s->inst, PB_IMAGING_SERVICE, PB_IMAGING_SERVICE_VERSION,
                                  &s->iface, err))
        s->host->log(s->inst, PB_LOG_WARNING,
                     "cannot publish %s (another imaging instance does): multicast sessions "
                     "do not read this one's images",
                     PB_IMAGING_SERVICE);
}

gboolean imaging_service_gc_enter(ImagingService *s)
{
    if (s == NULL)
        return TRUE;
    g_atomic_int_set(&s->gc, 1);
    if (g_atomic_int_get(&s->stores) > 0) {
        g_atomic_int_set(&s->gc, 0);
        return FALSE;
    }
    return TRUE;
}

void imaging_service_gc_leave(ImagingService *s)
{
    if (s != NULL)
        g_atomic_int_set(&s->gc, 0);
}

void imaging_service_free(ImagingService *s)
{
    g_free(s);
}
