/* http-range.h - the Range request header (RFC 9110 section 14.2), one byte range of a
 * resource of known size. Pure: text in, numbers out, so it is unit-tested and fuzzed alone
 * (tests/test-http-range.c, tests/fuzz/fuzz-http-range.c). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    HTTP_RANGE_NONE,          /* no header, or one to ignore: answer 200 with everything */
    HTTP_RANGE_OK,            /* one satisfiable range: answer 206 */
    HTTP_RANGE_UNSATISFIABLE, /* bytes ranges that all miss the resource: answer 416 */
} HttpRangeResult;

/* Parses value (may be NULL) for a resource of size bytes. On HTTP_RANGE_OK, *first and
 * *last (inclusive) are the bytes to send, clipped to the resource. A value that is not a
 * well-formed "bytes=" range set, or names more than one range, is ignored (NONE): the
 * RFC lets a server ignore Range, and one range is all an image client asks for. */
HttpRangeResult http_range_parse(const char *value, guint64 size, guint64 *first, guint64 *last);

G_END_DECLS
