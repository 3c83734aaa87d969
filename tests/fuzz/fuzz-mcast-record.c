/* fuzz-mcast-record.c - libFuzzer target for a session's record (GET
 * /multicast/v1/sessions/NAME: what a receiver started after its session ended reads from
 * the server, lib/mcast/mcast-record.c). What parses must build again and parse back to the
 * same record. make check replays tests/fuzz/corpus/mcast-record through
 * replay-mcast-record. */
#include "mcast-record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    PbMcastRecord r, again;
    GError *e = NULL;
    if (!pb_mcast_record_parse((const char *)data, size, &r, &e)) {
        if (e == NULL)
            abort();
        g_error_free(e);
        return 0;
    }
    GString *out = g_string_new(NULL);
    pb_mcast_record_build(&r, out);
    if (!pb_mcast_record_parse(out->str, out->len, &again, NULL) ||
        strcmp(r.session, again.session) != 0 || strcmp(r.image, again.image) != 0 ||
        r.state != again.state || memcmp(r.seal, again.seal, sizeof(r.seal)) != 0)
        abort();
    g_string_free(out, TRUE);
    return 0;
}
