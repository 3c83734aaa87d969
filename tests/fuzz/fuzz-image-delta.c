/* fuzz-image-delta.c - libFuzzer target for delta chunks (stored bytes come from stores,
 * archives and the network). Applied onto a fixed base, a delta either is refused with an
 * image error or yields exactly the bytes its hash names; the input's own application is
 * checked by hashing, so a delta the encoder made round-trips. make check replays
 * tests/fuzz/corpus/image-delta. */
#include "image-format.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LEN (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static guint8 base[LEN], buf[LEN];
    for (gsize i = 0; i < LEN; i++)
        base[i] = (guint8)(i * 31 + (i >> 12));
    /* Apply with any hash: the runs are walked and bounded before the hash is checked. */
    guint8 hash[PB_HASH_LEN] = {0};
    GError *e = NULL;
    memcpy(buf, base, LEN);
    if (pb_delta_apply_verify(data, size, hash, buf, LEN, &e) || e == NULL ||
        e->domain != PB_IMAGE_ERROR)
        abort();
    g_clear_error(&e);
    /* The input as a changed chunk: its delta against base applies back exactly. */
    memcpy(buf, base, LEN);
    memcpy(buf, data, MIN(size, (gsize)LEN));
    guint8 bh[PB_HASH_LEN], dh[PB_HASH_LEN];
    pb_sha256(base, LEN, bh);
    pb_sha256(buf, LEN, dh);
    GBytes *d = pb_delta_encode(bh, base, buf, LEN, 1, LEN);
    if (d == NULL)
        abort();
    gsize n;
    const guint8 *db = g_bytes_get_data(d, &n);
    memcpy(buf, base, LEN);
    if (!pb_delta_apply_verify(db, n, dh, buf, LEN, NULL))
        abort();
    g_bytes_unref(d);
    return 0;
}
