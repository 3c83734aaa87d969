/* fuzz-image-archive.c - libFuzzer target for the .pbi archive framing: the whole-archive
 * checker (header, manifest, records, index, trailer) and each fixed-size part parsed at
 * the start of the input. make check replays tests/fuzz/corpus/image-archive. */
#include "image-format.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    PbManifest *m = NULL;
    GError *e = NULL;
    if (pb_archive_check(data, size, &m, &e)) {
        if (m == NULL)
            abort();
        pb_manifest_free(m);
    } else {
        if (e == NULL)
            abort();
        g_error_free(e);
    }
    /* Each part on its own; what parses must build back to the same bytes. */
    PbArchiveRecord r;
    PbArchiveIndexEntry ie;
    PbArchiveTrailer t;
    gboolean is_index;
    guint8 out[64];
    if (pb_archive_parse_record(data, size, &r, &is_index, NULL)) {
        pb_archive_build_record(&r, out);
        if (memcmp(out, data, PB_ARCHIVE_RECORD_LEN) != 0)
            abort();
    }
    if (pb_archive_parse_index_entry(data, size, &ie, NULL)) {
        pb_archive_build_index_entry(&ie, out);
        if (memcmp(out, data, PB_ARCHIVE_INDEX_ENTRY_LEN) != 0)
            abort();
    }
    if (pb_archive_parse_trailer(data, size, &t, NULL)) {
        pb_archive_build_trailer(&t, out);
        if (memcmp(out, data, PB_ARCHIVE_TRAILER_LEN) != 0)
            abort();
    }
    return 0;
}
