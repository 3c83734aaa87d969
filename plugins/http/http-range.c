/* http-range.c - see http-range.h. Grammar (RFC 9110 14.1.1), one range only:
 *   "bytes" OWS "=" OWS ( first "-" [ last ] / "-" suffix ) OWS   */
#include "http-range.h"

#include <string.h>

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Decimal digits into *out; FALSE when there are none or the value overflows. */
static gboolean digits(const char **pp, guint64 *out)
{
    const char *p = *pp;
    guint64 v = 0;
    if (!g_ascii_isdigit(*p))
        return FALSE;
    for (; g_ascii_isdigit(*p); p++) {
        guint d = (guint)(*p - '0');
        if (v > (G_MAXUINT64 - d) / 10)
            return FALSE;
        v = v * 10 + d;
    }
    *out = v;
    *pp = p;
    return TRUE;
}

HttpRangeResult http_range_parse(const char *value, guint64 size, guint64 *first, guint64 *last)
{
    if (value == NULL)
        return HTTP_RANGE_NONE;
    const char *p = skip_ows(value);
    if (g_ascii_strncasecmp(p, "bytes", 5) != 0)
        return HTTP_RANGE_NONE;
    p = skip_ows(p + 5);
    if (*p != '=')
        return HTTP_RANGE_NONE;
    p = skip_ows(p + 1);

    guint64 a = 0, b = 0;
    gboolean suffix = FALSE, open_end = FALSE;
    if (*p == '-') {
        p++;
        if (!digits(&p, &b))
            return HTTP_RANGE_NONE;
        suffix = TRUE;
    } else {
        if (!digits(&p, &a) || *p != '-')
            return HTTP_RANGE_NONE;
        p++;
        if (!digits(&p, &b))
            open_end = TRUE;
        else if (b < a)
            return HTTP_RANGE_NONE; /* invalid range-spec: the whole set is ignored */
    }
    p = skip_ows(p);
    if (*p != '\0')
        return HTTP_RANGE_NONE; /* several ranges, or trailing garbage */

    if (suffix) {
        /* The last b bytes; "-0" can never be satisfied (RFC 9110 14.1.1). */
        if (b == 0 || size == 0)
            return HTTP_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return HTTP_RANGE_OK;
    }
    if (a >= size)
        return HTTP_RANGE_UNSATISFIABLE;
    *first = a;
    *last = open_end || b >= size ? size - 1 : b;
    return HTTP_RANGE_OK;
}
