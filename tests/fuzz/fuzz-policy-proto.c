/* fuzz-policy-proto.c - libFuzzer target for the policy UDP protocol parser (anyone on the
 * network can send these datagrams). What parses must survive a build/parse round trip
 * unchanged. lib/proto/policy-proto.c only. Built with --enable-fuzzing (clang); make
 * check replays tests/fuzz/corpus-policy-proto through test-policy-proto. */
#include "policy-proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    PolicyMsg m, again;
    PolicyParseResult r = policy_msg_parse(data, size, &m);
    (void)policy_parse_result_text(r);
    if (r == POLICY_PARSE_OK) {
        GByteArray *out = g_byte_array_new();
        policy_msg_build(&m, out);
        if (policy_msg_parse(out->data, out->len, &again) != POLICY_PARSE_OK)
            abort();
        /* The builder writes the options that belong to the message type only. */
        gboolean request = m.type == POLICY_MSG_DECIDE || m.type == POLICY_MSG_DECIDE_COMMIT ||
                           m.type == POLICY_MSG_DECIDE_CONSUME || m.type == POLICY_MSG_REPORT;
        if (again.id != m.id || again.type != m.type ||
            (request &&
             (again.mac_len != m.mac_len || memcmp(again.mac, m.mac, sizeof(m.mac)) != 0 ||
              again.ram_mb != m.ram_mb || g_strcmp0(again.serial, m.serial) != 0)) ||
            (m.type == POLICY_MSG_DECISION &&
             (again.decision.work != m.decision.work ||
              strcmp(again.decision.boot_file, m.decision.boot_file) != 0)))
            abort();
        policy_msg_clear(&again);
        g_byte_array_unref(out);
    }
    policy_msg_clear(&m);
    return 0;
}
