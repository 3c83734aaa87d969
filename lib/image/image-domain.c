/* image-domain.c - reads the ddrescue "domain" map partclone writes with -D --domain: the
 * byte ranges a filesystem uses. Pure. Format (GNU ddrescue manual, "Mapfile structure"):
 * '#' comment lines, one status line "POS STATUS [PASS]", then "POS SIZE STATUS" lines with
 * hexadecimal (0x) or decimal numbers; STATUS '+' is a used (finished) block. */
#include "image-format.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static gboolean num(const char *s, guint64 *out)
{
    if (*s == '\0' || *s == '-' || *s == '+')
        return FALSE;
    char *end;
    errno = 0;
    guint64 v = g_ascii_strtoull(s, &end, 0);
    if (*end != '\0' || errno != 0 || v > PB_DISK_SIZE_MAX)
        return FALSE;
    *out = v;
    return TRUE;
}

static int cmp_range(gconstpointer a, gconstpointer b)
{
    guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;
    return x < y ? -1 : x > y;
}

GArray *pb_domain_parse(const char *text, gsize len, GError **error)
{
    g_autoptr(GArray) r = g_array_new(FALSE, FALSE, sizeof(guint64) * 2);
    g_autofree char *copy = g_strndup(text, len);
    if (strlen(copy) != len) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE, "domain map: NUL byte");
        return NULL;
    }
    g_auto(GStrv) lines = g_strsplit(copy, "\n", -1);
    gboolean status_seen = FALSE;
    for (guint i = 0; lines[i] != NULL; i++) {
        char *l = g_strstrip(lines[i]);
        if (*l == '\0' || *l == '#')
            continue;
        g_auto(GStrv) f = g_strsplit_set(l, " \t", -1);
        char *v[4];
        int n = 0;
        for (guint j = 0; f[j] != NULL; j++)
            if (*f[j] != '\0') {
                if (n == 4) {
                    n = 5;
                    break;
                }
                v[n++] = f[j];
            }
        if (!status_seen) {
            guint64 pos;
            if (n < 2 || n > 3 || !num(v[0], &pos)) {
                g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE,
                            "domain map line %u: bad status line", i + 1);
                return NULL;
            }
            status_seen = TRUE;
            continue;
        }
        guint64 pos, size;
        if (n != 3 || !num(v[0], &pos) || !num(v[1], &size) || strlen(v[2]) != 1 ||
            !strchr("?*/-+", v[2][0]) || pos + size > PB_DISK_SIZE_MAX) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE,
                        "domain map line %u: expected POS SIZE STATUS", i + 1);
            return NULL;
        }
        if (v[2][0] == '+' && size > 0) {
            guint64 pr[2] = {pos, size};
            g_array_append_val(r, pr);
        }
    }
    if (!status_seen) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE, "domain map: empty");
        return NULL;
    }
    g_array_sort(r, cmp_range);
    /* Merge overlapping and touching ranges. */
    guint w = 0;
    for (guint i = 0; i < r->len; i++) {
        guint64 *cur = &g_array_index(r, guint64, 2 * i);
        if (w > 0) {
            guint64 *last = &g_array_index(r, guint64, 2 * (w - 1));
            if (cur[0] <= last[0] + last[1]) {
                last[1] = MAX(last[0] + last[1], cur[0] + cur[1]) - last[0];
                continue;
            }
        }
        guint64 *dst = &g_array_index(r, guint64, 2 * w);
        dst[0] = cur[0];
        dst[1] = cur[1];
        w++;
    }
    g_array_set_size(r, w);
    return g_steal_pointer(&r);
}

gboolean pb_domain_used(const GArray *ranges, guint64 off, guint64 len)
{
    /* Binary search for the last range starting before off + len. */
    guint lo = 0, hi = ranges->len;
    while (lo < hi) {
        guint mid = (lo + hi) / 2;
        if (g_array_index(ranges, guint64, 2 * mid) < off + len)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return FALSE;
    const guint64 *r = &g_array_index(ranges, guint64, 2 * (lo - 1));
    return r[0] + r[1] > off;
}
