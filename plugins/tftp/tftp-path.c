/* tftp-path.c - client file names to root-relative paths. See tftp-path.h. */
#include "tftp-path.h"

#include <string.h>

/* Windows drops trailing dots and spaces from a path component, so "..." and ". ." name
 * the parent there; refuse every component made only of dots and spaces other than ".". */
static gboolean component_is_dots(const char *c, gsize n)
{
    if (n == 0)
        return FALSE;
    for (gsize i = 0; i < n; i++)
        if (c[i] != '.' && c[i] != ' ')
            return FALSE;
    return !(n == 1 && c[0] == '.');
}

gboolean tftp_path_sanitize(const char *in, char *out, gsize cap, const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = NULL;
    g_return_val_if_fail(in != NULL && out != NULL && cap > 0, FALSE);

    if (in[0] == '/') {
        *why = "absolute path";
        return FALSE;
    }
    if (g_ascii_isalpha(in[0]) && in[1] == ':') {
        *why = "drive letter";
        return FALSE;
    }
    for (const char *p = in; *p; p++) {
        if (*p == '\\') {
            *why = "backslash in path";
            return FALSE;
        }
        if ((guchar)*p < 0x20 || *p == 0x7f) {
            *why = "control character in path";
            return FALSE;
        }
    }

    gsize o = 0;
    const char *p = in;
    while (*p) {
        const char *slash = strchr(p, '/');
        gsize n = slash ? (gsize)(slash - p) : strlen(p);
        if (component_is_dots(p, n)) {
            *why = "parent directory in path";
            return FALSE;
        }
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (o + (o ? 1 : 0) + n + 1 > cap) {
                *why = "path too long";
                return FALSE;
            }
            if (o)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
        if (*p == '/')
            p++;
    }
    if (o == 0) {
        *why = "empty path";
        return FALSE;
    }
    out[o] = '\0';
    return TRUE;
}

gboolean tftp_path_is_temporary(const char *path)
{
    if (path == NULL)
        return FALSE;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    static const char suffix[] = ".tftp-part";
    gsize n = strlen(base), sl = sizeof(suffix) - 1;
    /* Windows opens "NAME.TFTP-PART. " as "NAME.tftp-part": compare as that system would,
     * without case and without trailing dots and spaces. */
    while (n > 0 && (base[n - 1] == '.' || base[n - 1] == ' '))
        n--;
    /* "." + at least one character of NAME + "." + 8 hex digits + suffix */
    if (base[0] != '.' || n < 1 + 1 + 1 + 8 + sl ||
        g_ascii_strncasecmp(base + n - sl, suffix, sl) != 0)
        return FALSE;
    const char *hex = base + n - sl - 8;
    if (hex[-1] != '.')
        return FALSE;
    for (int i = 0; i < 8; i++)
        if (!g_ascii_isxdigit(hex[i]))
            return FALSE;
    return TRUE;
}
