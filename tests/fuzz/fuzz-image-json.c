/* fuzz-image-json.c - libFuzzer target for lib/image's JSON reader (what an imaging server
 * answers: catalogs, work). Whatever parses is walked whole and quoted back; nothing may
 * crash, leak or recurse past PB_JSON_DEPTH_MAX. make check replays
 * tests/fuzz/corpus/image-json. */
#include "image-json.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const PbJson *j, GString *out, int depth)
{
    if (depth > PB_JSON_DEPTH_MAX + 1)
        abort();
    if (j->type == PB_JSON_STRING)
        pb_json_append_string(out, j->text);
    if (j->items != NULL)
        for (guint i = 0; i < j->items->len; i++)
            walk(j->items->pdata[i], out, depth + 1);
    if (j->keys != NULL && j->keys->len != j->items->len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    PbJson *j = pb_json_parse((const char *)data, size, NULL);
    if (j == NULL)
        return 0;
    GString *out = g_string_new(NULL);
    walk(j, out, 0);
    guint64 v;
    (void)pb_json_get_uint(j, "work_id", &v);
    (void)pb_json_get_string(j, "action");
    g_string_free(out, TRUE);
    pb_json_free(j);
    return 0;
}
