/* fuzz-http-range.c - libFuzzer target for the Range header parser (any client sends it).
 * The first 8 bytes are the resource size, the rest the header value. What parses as a
 * range must lie inside the resource. Built with --enable-fuzzing (clang); make check
 * replays tests/fuzz/corpus-http-range through test-http-range. */
#include "http-range.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    guint64 total = 1000;
    if (size >= 8 && data[0] == 0xff) {
        memcpy(&total, data, 8);
        data += 8;
        size -= 8;
    }
    char *text = g_strndup((const char *)data, size);
    guint64 first = 0, last = 0;
    if (http_range_parse(text, total, &first, &last) == HTTP_RANGE_OK &&
        (first > last || last >= total))
        abort();
    g_free(text);
    return 0;
}
