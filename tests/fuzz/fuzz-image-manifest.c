/* fuzz-image-manifest.c - libFuzzer target for the image manifest parser (manifests come
 * from stores, archives and the network). What parses must build back to the same text
 * (the format is canonical) and parse again with the same seal. make check replays
 * tests/fuzz/corpus/image-manifest. */
#include "image-format.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *e = NULL;
    PbManifest *m = pb_manifest_parse((const char *)data, size, &e);
    if (m == NULL) {
        if (e == NULL || e->domain != PB_IMAGE_ERROR)
            abort();
        g_error_free(e);
        return 0;
    }
    PbManifestStats st;
    pb_manifest_stats(m, &st);
    GString *text = pb_manifest_build(m);
    if (text->len != size || memcmp(text->str, data, size) != 0)
        abort();
    PbManifest *again = pb_manifest_parse(text->str, text->len, NULL);
    if (again == NULL || memcmp(again->seal, m->seal, PB_HASH_LEN) != 0)
        abort();
    pb_manifest_free(again);
    g_string_free(text, TRUE);
    pb_manifest_free(m);
    return 0;
}
