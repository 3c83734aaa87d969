/* fuzz-imaging-api.c - libFuzzer target for what the imaging API reads from the network:
 * result reports (the flat JSON reader), chunks/missing bodies (hash lists), request paths
 * and per-device credentials (a forged one never checks: the fuzzer cannot sign). A path
 * that parses names an image pb_name_valid accepts or a 64-digit hash. make check replays
 * tests/fuzz/corpus/imaging-api. */
#include "image-format.h"
#include "imaging-api.h"
#include "imaging-cred.h"
#include "imaging-json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GHashTable *t = imaging_json_parse_flat((const char *)data, size, NULL);
    if (t != NULL)
        g_hash_table_unref(t);
    gsize n = 0;
    guint8 *h = imaging_hash_list_parse((const char *)data, size, 100, &n, NULL);
    if (h != NULL && n > 100)
        abort();
    g_free(h);
    char *path = g_strndup((const char *)data, size);
    ImagingPath p;
    ImagingEndpoint ep = imaging_path_parse(path, &p);
    if ((ep == IMAGING_EP_IMAGE || ep == IMAGING_EP_INFO) &&
        (!pb_name_valid(p.name) || strchr(p.name, '/') != NULL))
        abort();
    if (ep == IMAGING_EP_CHUNK && strlen(p.hash_hex) != PB_HASH_HEX_LEN)
        abort();
    static const guint8 key[IMAGING_CRED_KEY_LEN] = {1};
    ImagingCred c;
    if (imaging_cred_check(key, path, &c) &&
        (!pb_name_valid(c.image) || c.expires < 0 || strlen(path) > IMAGING_CRED_MAX))
        abort();
    imaging_bearer_token(path);
    g_free(path);
    return 0;
}
