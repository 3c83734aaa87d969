/* fuzz-control.c - the control channel's request framing (core/control.c): whatever a local
 * client sends must parse or be refused, never crash, and what parses must re-encode to the
 * same bytes. */
#include "control.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GStrv argv = NULL;
    gsize used = 0;
    const char *why = NULL;
    PbControlParse r = pb_control_parse(data, size, &argv, &used, &why);
    if (r == PB_CONTROL_PARSE_OK) {
        g_assert_cmpuint(used, <=, size);
        GBytes *b = pb_control_encode((int)g_strv_length(argv), (const char *const *)argv, NULL);
        g_assert_nonnull(b);
        gsize len;
        const void *p = g_bytes_get_data(b, &len);
        g_assert_cmpuint(len, ==, used);
        g_assert_true(memcmp(p, data, len) == 0);
        g_bytes_unref(b);
    } else if (r == PB_CONTROL_PARSE_BAD) {
        g_assert_nonnull(why);
    }
    g_strfreev(argv);
    return 0;
}
