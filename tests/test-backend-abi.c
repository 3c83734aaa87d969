/* test-backend-abi.c - the imaging backend ABI (include/preboot/backend.h) against any built
 * backend, loaded as the imaging plugin loads it (its one exported entry point):
 *
 *     test-backend-abi LIBRARY.so MODNAME LOCATION STATE_DIR [SERVER]
 *
 * e.g. libpreboot-local with a store directory, libpreboot-pg with a connection string and a
 * chunk directory (tests/test-pg-backend.sh runs both). The calls every backend must answer
 * alike: verified chunk writes (corrupt and short refused, nothing kept), EXISTS, stat,
 * reads at offsets, abort, missing; commits (MISSING with the hashes, create-only, EXISTS,
 * replace), manifests, delete; results newest first; statistics summed. Prints TAP. */
#include "build-config.h"

#include <preboot/backend.h>

#include "image-format.h"

#include <dlfcn.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

static int n, failed;

#define CHECK(what, cond)                                                    \
    do {                                                                     \
        n++;                                                                 \
        if (cond)                                                            \
            printf("ok %d - %s\n", n, what);                                 \
        else {                                                               \
            failed++;                                                        \
            printf("not ok %d - %s (%s:%d)\n", n, what, __FILE__, __LINE__); \
        }                                                                    \
    } while (0)

static guint32 put(const pb_backend *b, void *h, const guint8 hash[32], const void *data, gsize len,
                   gsize plain_len, pb_backend_error *e)
{
    void *w = NULL;
    guint32 st = b->chunk_begin(h, hash, PB_BACKEND_CODEC_NONE, plain_len, len, &w, e);
    if (st != PB_BACKEND_OK)
        return st;
    for (gsize off = 0; off < len; off += 1000) {
        st = b->chunk_write(w, (const guint8 *)data + off, MIN(1000, len - off), e);
        if (st != PB_BACKEND_OK) {
            b->chunk_abort(w);
            return st;
        }
    }
    return b->chunk_commit(w, e);
}

static void collect_missing(void *data, const char *hex)
{
    g_ptr_array_add(data, g_strdup(hex));
}

static void count_image(void *data, const pb_backend_image *im)
{
    if (strcmp(im->name, "abi-img") == 0)
        (*(guint *)data)++;
}

static bool append(void *data, const void *bytes, size_t len)
{
    g_string_append_len(data, bytes, (gssize)len);
    return true;
}

static void collect_result(void *data, const pb_backend_result *r)
{
    g_ptr_array_add(data, g_strdup_printf("%s %s %s", r->type, r->image, r->result));
}

static void find_stat(void *data, const char *name, int64_t v)
{
    if (strcmp(name, "abi_test") == 0)
        *(gint64 *)data = v;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s LIBRARY MODNAME LOCATION STATE_DIR [SERVER]\n", argv[0]);
        return 2;
    }
    void *mod = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (mod == NULL) {
        printf("1..0 # SKIP %s\n", dlerror());
        return 0;
    }
    g_autofree char *sym = g_strdup_printf("%s_LTX_" PB_BACKEND_ENTRY_SYMBOL, argv[2]);
    const void *(*entry)(void) = NULL;
    *(void **)&entry = dlsym(mod, sym);
    CHECK("the entry point is exported", entry != NULL);
    if (entry == NULL)
        return 1;
    const pb_backend *b = entry();
    CHECK("magic and ABI major",
          b->header.magic == PB_BACKEND_MAGIC && b->header.abi_major == PB_BACKEND_ABI_MAJOR);
    CHECK("struct_size covers every callback", b->header.struct_size >= sizeof(pb_backend));
    pb_backend_config c = {.struct_size = sizeof(c),
                           .location = argv[3],
                           .state_dir = argv[4],
                           .server = argc > 5 ? argv[5] : ""};
    pb_backend_error e = {.struct_size = sizeof(e)};
    void *h = b->open(&c, &e);
    CHECK("open", h != NULL);
    if (h == NULL) {
        printf("# %s\n", e.message);
        printf("1..%d\n", n);
        return 1;
    }
    guint8 data[3000], hash[32], other[32];
    /* different bytes at every run: a shared database keeps what earlier runs stored */
    guint32 seed = g_random_int();
    for (guint i = 0; i < sizeof(data); i++)
        data[i] = (guint8)(i * 7 + seed);
    memcpy(data, &seed, sizeof(seed));
    pb_sha256(data, sizeof(data), hash);
    for (guint i = 0; i < sizeof(other); i++)
        other[i] = (guint8)g_random_int();

    guint8 bad[3000];
    memcpy(bad, data, sizeof(bad));
    bad[100] ^= 1;
    CHECK("a corrupted chunk is refused (CORRUPT)",
          put(b, h, hash, bad, sizeof(bad), sizeof(bad), &e) == PB_BACKEND_CORRUPT);
    CHECK("and not kept", b->chunk_stat(h, hash, NULL, &e) == PB_BACKEND_NOT_FOUND);
    CHECK("a short chunk is refused", put(b, h, hash, data, 2000, 3000, &e) == PB_BACKEND_CORRUPT);
    CHECK("a verified chunk is stored",
          put(b, h, hash, data, sizeof(data), sizeof(data), &e) == PB_BACKEND_OK);
    CHECK("storing it again is EXISTS",
          put(b, h, hash, data, sizeof(data), sizeof(data), &e) == PB_BACKEND_EXISTS);
    pb_backend_chunk_info info = {.struct_size = sizeof(info)};
    CHECK("chunk_stat",
          b->chunk_stat(h, hash, &info, &e) == PB_BACKEND_OK && info.stored == sizeof(data));
    void *r = NULL;
    CHECK("chunk_open", b->chunk_open(h, hash, &info, &r, &e) == PB_BACKEND_OK);
    guint8 back[100];
    CHECK("chunk_read at an offset", r != NULL && b->chunk_read(r, 1000, back, 100) == 100 &&
                                         memcmp(back, data + 1000, 100) == 0);
    CHECK("chunk_read at the end is 0",
          r != NULL && b->chunk_read(r, sizeof(data), back, 100) == 0);
    if (r != NULL)
        b->chunk_close(r);
    void *w = NULL;
    CHECK("chunk_begin",
          b->chunk_begin(h, other, PB_BACKEND_CODEC_NONE, 10, 10, &w, &e) == PB_BACKEND_OK);
    if (w != NULL) {
        b->chunk_write(w, "0123456789", 10, &e);
        b->chunk_abort(w);
    }
    CHECK("an aborted chunk is not stored",
          b->chunk_stat(h, other, NULL, &e) == PB_BACKEND_NOT_FOUND);
    CHECK("a zero length is INVALID",
          b->chunk_begin(h, other, PB_BACKEND_CODEC_NONE, 0, 10, &w, &e) == PB_BACKEND_INVALID);
    guint8 hashes[2][32];
    memcpy(hashes[0], hash, 32);
    memcpy(hashes[1], other, 32);
    guint8 missing[2] = {9, 9};
    CHECK("chunk_missing",
          b->chunk_missing(h, (const uint8_t(*)[32])hashes, 2, missing, &e) == PB_BACKEND_OK &&
              missing[0] == 0 && missing[1] == 1);

    char seal[65];
    for (int i = 0; i < 64; i++)
        seal[i] = "0123456789abcdef"[(seed >> (i % 28)) & 15];
    seal[64] = '\0';
    g_autofree char *text = g_strdup_printf("manifest text %u\n", seed);
    b->image_delete(h, "abi-img", &e); /* an earlier run's, in a shared database */
    pb_backend_image im = {.struct_size = sizeof(im), .name = "abi-img", .seal = seal, .chunks = 2};
    g_autoptr(GPtrArray) miss = g_ptr_array_new_with_free_func(g_free);
    bool replaced = true;
    char ohex[65];
    pb_hash_to_hex(other, ohex);
    CHECK("a commit naming a chunk not stored is MISSING",
          b->image_commit(h, &im, text, strlen(text), (const uint8_t(*)[32])hashes, 2, 0,
                          collect_missing, miss, &replaced, &e) == PB_BACKEND_MISSING);
    CHECK("with that hash", miss->len == 1 && strcmp(miss->pdata[0], ohex) == 0);
    guint cnt = 0;
    b->image_list(h, count_image, &cnt, &e);
    CHECK("and nothing changed", cnt == 0);
    CHECK("a create-only commit",
          b->image_commit(h, &im, text, strlen(text), (const uint8_t(*)[32])hashes, 1,
                          PB_BACKEND_CREATE_ONLY, NULL, NULL, &replaced, &e) == PB_BACKEND_OK &&
              !replaced);
    CHECK("create-only on a taken name is EXISTS",
          b->image_commit(h, &im, text, strlen(text), (const uint8_t(*)[32])hashes, 1,
                          PB_BACKEND_CREATE_ONLY, NULL, NULL, &replaced, &e) == PB_BACKEND_EXISTS);
    CHECK("a plain commit replaces",
          b->image_commit(h, &im, text, strlen(text), (const uint8_t(*)[32])hashes, 1, 0, NULL,
                          NULL, &replaced, &e) == PB_BACKEND_OK &&
              replaced);
    g_autoptr(GString) got = g_string_new(NULL);
    CHECK("image_manifest", b->image_manifest(h, "abi-img", append, got, &e) == PB_BACKEND_OK &&
                                strcmp(got->str, text) == 0);
    CHECK("an unknown image is NOT_FOUND",
          b->image_manifest(h, "abi-nope", append, got, &e) == PB_BACKEND_NOT_FOUND);
    CHECK("a bad name is INVALID",
          b->image_info(h, "../x", count_image, &cnt, &e) == PB_BACKEND_INVALID);
    g_autofree char *tag = g_strdup_printf("abi-%u", seed);
    pb_backend_result res = {.struct_size = sizeof(res),
                             .type = "restore",
                             .image = tag,
                             .result = "ok",
                             .source = "192.0.2.9"};
    CHECK("result_add", b->result_add(h, &res, &e) == PB_BACKEND_OK);
    res.type = "capture";
    CHECK("result_add again", b->result_add(h, &res, &e) == PB_BACKEND_OK);
    g_autoptr(GPtrArray) log = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *want = g_strdup_printf("capture %s ok", tag);
    CHECK("result_list, newest first",
          b->result_list(h, 2, collect_result, log, &e) == PB_BACKEND_OK && log->len == 2 &&
              strcmp(log->pdata[0], want) == 0);
    gint64 before = 0, after = 0;
    b->stat_list(h, find_stat, &before, &e);
    CHECK("stat_add", b->stat_add(h, "abi_test", 2, &e) == PB_BACKEND_OK &&
                          b->stat_add(h, "abi_test", 3, &e) == PB_BACKEND_OK);
    CHECK("stat_list sums",
          b->stat_list(h, find_stat, &after, &e) == PB_BACKEND_OK && after == before + 5);
    CHECK("image_delete", b->image_delete(h, "abi-img", &e) == PB_BACKEND_OK);
    CHECK("deleting again is NOT_FOUND", b->image_delete(h, "abi-img", &e) == PB_BACKEND_NOT_FOUND);
    b->close(h);
    printf("1..%d\n", n);
    return failed ? 1 : 0;
}
