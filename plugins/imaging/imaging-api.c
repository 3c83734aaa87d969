/* imaging-api.c - request paths, hash lists and identities of the imaging API. Pure. */
#include "imaging-api.h"

#include "image-format.h"

#include <string.h>

static gboolean hash_hex_ok(const char *s, gsize len)
{
    if (len != PB_HASH_HEX_LEN)
        return FALSE;
    for (gsize i = 0; i < len; i++)
        if (!g_ascii_isdigit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return FALSE;
    return TRUE;
}

ImagingEndpoint imaging_path_parse(const char *path, ImagingPath *out)
{
    memset(out, 0, sizeof(*out));
    if (path == NULL || !g_str_has_prefix(path, IMAGING_PREFIX))
        return IMAGING_EP_NONE;
    const char *rest = path + strlen(IMAGING_PREFIX);
    static const struct {
        const char *word;
        ImagingEndpoint ep;
    } fixed[] = {
        {"images", IMAGING_EP_IMAGES}, {"chunks/missing", IMAGING_EP_MISSING},
        {"work", IMAGING_EP_WORK},     {"results", IMAGING_EP_RESULTS},
        {"log", IMAGING_EP_LOG},       {"stats", IMAGING_EP_STATS},
    };
    for (guint i = 0; i < G_N_ELEMENTS(fixed); i++)
        if (strcmp(rest, fixed[i].word) == 0)
            return out->ep = fixed[i].ep;
    if (g_str_has_prefix(rest, "images/")) {
        const char *name = rest + 7;
        const char *slash = strchr(name, '/');
        gsize n = slash ? (gsize)(slash - name) : strlen(name);
        if (n == 0 || n >= sizeof(out->name))
            return IMAGING_EP_NONE;
        memcpy(out->name, name, n);
        out->name[n] = '\0';
        if (!pb_name_valid(out->name))
            return IMAGING_EP_NONE;
        if (slash == NULL)
            return out->ep = IMAGING_EP_IMAGE;
        if (strcmp(slash, "/info") == 0)
            return out->ep = IMAGING_EP_INFO;
        return IMAGING_EP_NONE;
    }
    if (g_str_has_prefix(rest, "chunks/")) {
        const char *h = rest + 7;
        if (!hash_hex_ok(h, strlen(h)) || !pb_hash_from_hex(h, PB_HASH_HEX_LEN, out->hash))
            return IMAGING_EP_NONE;
        memcpy(out->hash_hex, h, PB_HASH_HEX_LEN + 1);
        return out->ep = IMAGING_EP_CHUNK;
    }
    return IMAGING_EP_NONE;
}

guint8 *imaging_hash_list_parse(const char *text, gsize len, gsize max, gsize *n_out,
                                GError **error)
{
    GByteArray *a = g_byte_array_new();
    gsize line = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (gsize)(end - p));
        const char *le = nl ? nl : end;
        line++;
        gsize n = (gsize)(le - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > 0) {
            guint8 h[PB_HASH_LEN];
            if (!hash_hex_ok(p, n) || !pb_hash_from_hex(p, n, h)) {
                g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_PARSE,
                            "line %" G_GSIZE_FORMAT ": not a hash (64 lower-case hex digits)",
                            line);
                g_byte_array_unref(a);
                return NULL;
            }
            if (a->len / PB_HASH_LEN >= max) {
                g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                            "more than %" G_GSIZE_FORMAT " hashes", max);
                g_byte_array_unref(a);
                return NULL;
            }
            g_byte_array_append(a, h, PB_HASH_LEN);
        }
        p = nl ? nl + 1 : end;
    }
    *n_out = a->len / PB_HASH_LEN;
    return g_byte_array_free(a, FALSE);
}

static gboolean hex_bytes(const char *text, guint8 *out, gsize n, const char *seps)
{
    gsize k = 0;
    for (const char *p = text; *p; p++) {
        if (strchr(seps, *p) != NULL)
            continue;
        int hi = g_ascii_xdigit_value(p[0]);
        if (hi < 0 || p[1] == '\0')
            return FALSE;
        int lo = g_ascii_xdigit_value(p[1]);
        if (lo < 0 || k >= n)
            return FALSE;
        out[k++] = (guint8)(hi << 4 | lo);
        p++;
    }
    return k == n;
}

gboolean imaging_mac_parse(const char *text, guint8 mac[6])
{
    return text != NULL && strlen(text) <= 17 && hex_bytes(text, mac, 6, ":-");
}

gboolean imaging_uuid_parse(const char *text, guint8 uuid[16])
{
    guint8 t[16];
    if (text == NULL || strlen(text) > 38 || !hex_bytes(text, t, 16, "-{}"))
        return FALSE;
    /* PXE (option 97) and SMBIOS 2.6 carry the first three fields little-endian */
    static const guint8 order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    for (int i = 0; i < 16; i++)
        uuid[order[i]] = t[i];
    return TRUE;
}

gboolean imaging_location_valid(const char *text)
{
    if (text == NULL || strlen(text) > 200)
        return FALSE;
    const char *h = text;
    if (g_str_has_prefix(h, "http://"))
        h += 7;
    else if (g_str_has_prefix(h, "https://"))
        h += 8;
    const char *port = NULL;
    if (*h == '[') {
        const char *end = strchr(h, ']');
        if (end == NULL || end == h + 1 ||
            strspn(h + 1, "0123456789abcdefABCDEF:.") != (gsize)(end - h - 1))
            return FALSE;
        if (end[1] == ':')
            port = end + 2;
        else if (end[1] != '\0')
            return FALSE;
    } else {
        gsize n = strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
        if (n == 0 || h[0] == '-' || h[0] == '.')
            return FALSE;
        if (h[n] == ':')
            port = h + n + 1;
        else if (h[n] != '\0')
            return FALSE;
    }
    guint64 v = 0;
    return port == NULL || g_ascii_string_to_unsigned(port, 10, 1, 65535, &v, NULL);
}
