/* fuzz-image-domain.c - libFuzzer target for the reader of partclone's ddrescue domain
 * maps (the output of a tool run on an untrusted disk). Ranges come out sorted, merged and
 * non-empty. make check replays tests/fuzz/corpus/image-domain. */
#include "image-format.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GArray *r = pb_domain_parse((const char *)data, size, NULL);
    if (r == NULL)
        return 0;
    for (guint i = 0; i < r->len; i++) {
        guint64 off = g_array_index(r, guint64, 2 * i), len = g_array_index(r, guint64, 2 * i + 1);
        if (len == 0 || (i > 0 && off <= g_array_index(r, guint64, 2 * i - 2) +
                                             g_array_index(r, guint64, 2 * i - 1)))
            abort();
        if (!pb_domain_used(r, off, 1) || !pb_domain_used(r, off + len - 1, 1))
            abort();
    }
    g_array_unref(r);
    return 0;
}
