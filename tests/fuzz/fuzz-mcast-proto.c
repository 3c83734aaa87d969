/* fuzz-mcast-proto.c - libFuzzer target for the multicast imaging datagrams (anyone on the
 * LAN can send them to a receiver or to the sender's control port). What parses must build
 * again and parse back to the same message. lib/proto/mcast-proto.c only. make check
 * replays tests/fuzz/corpus/mcast-proto through replay-mcast-proto. */
#include "mcast-proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    McastMsg m, again;
    McastParseResult r = mcast_msg_parse(data, size, &m);
    (void)mcast_parse_result_text(r);
    if (r != MCAST_PARSE_OK)
        return 0;
    GByteArray *out = g_byte_array_new();
    if (!mcast_msg_build(&m, out))
        abort();
    if (mcast_msg_parse(out->data, out->len, &again) != MCAST_PARSE_OK || again.type != m.type ||
        again.session_id != m.session_id)
        abort();
    switch (m.type) {
    case MCAST_MSG_ANNOUNCE:
        if (strcmp(again.u.announce.name, m.u.announce.name) != 0 ||
            again.u.announce.pass != m.u.announce.pass ||
            memcmp(again.u.announce.seal, m.u.announce.seal, 32) != 0)
            abort();
        break;
    case MCAST_MSG_DATA:
        if (again.u.data.payload_len != m.u.data.payload_len ||
            memcmp(again.u.data.payload, m.u.data.payload, m.u.data.payload_len) != 0 ||
            again.u.data.offset != m.u.data.offset)
            abort();
        break;
    case MCAST_MSG_STATUS:
        if (again.u.status.have != m.u.status.have ||
            strcmp(again.u.status.label, m.u.status.label) != 0)
            abort();
        break;
    case MCAST_MSG_NACK:
        if (again.u.nack.n_ranges != m.u.nack.n_ranges ||
            memcmp(again.u.nack.ranges, m.u.nack.ranges, m.u.nack.n_ranges * sizeof(McastRange)))
            abort();
        break;
    }
    g_byte_array_unref(out);
    return 0;
}
