/* imaging-cred.c - per-device credentials: minted and checked with HMAC-SHA256 (GLib's
 * GHmac, so the Windows build needs nothing more). See imaging-cred.h. */
#include "imaging-cred.h"

#include "image-format.h"

#include <string.h>

const char *imaging_bearer_token(const char *authorization)
{
    if (authorization == NULL || g_ascii_strncasecmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    const char *t = authorization + 7;
    while (*t == ' ')
        t++;
    return *t ? t : NULL;
}

gboolean imaging_cred_is(const char *token)
{
    return token != NULL && g_str_has_prefix(token, IMAGING_CRED_PREFIX);
}

const char *imaging_cred_kind_name(ImagingCredKind k)
{
    switch (k) {
    case IMAGING_CRED_CAPTURE:
        return "capture";
    case IMAGING_CRED_RESTORE:
        return "restore";
    case IMAGING_CRED_SESSION:
        return "session";
    default:
        return NULL;
    }
}

static gboolean hex_only(const char *s, gsize min, gsize max)
{
    gsize n = strlen(s);
    if (n < min || n > max)
        return FALSE;
    for (gsize i = 0; i < n; i++)
        if (!g_ascii_isdigit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return FALSE;
    return TRUE;
}

static char *sign(const guint8 key[IMAGING_CRED_KEY_LEN], const char *text, gsize len)
{
    return g_compute_hmac_for_data(G_CHECKSUM_SHA256, key, IMAGING_CRED_KEY_LEN,
                                   (const guchar *)text, len);
}

char *imaging_cred_mint(const guint8 key[IMAGING_CRED_KEY_LEN], const ImagingCred *c)
{
    const char *kind = imaging_cred_kind_name(c->kind);
    if (kind == NULL || !pb_name_valid(c->image) || !hex_only(c->work_id, 1, 64) ||
        c->expires < 0 || c->issued_ms < 0)
        return NULL;
    GString *o = g_string_new(IMAGING_CRED_PREFIX);
    g_string_append_printf(
        o, "%s~%02x%02x%02x%02x%02x%02x~%" G_GINT64_FORMAT "~%" G_GINT64_FORMAT "~%s~%s", kind,
        c->mac[0], c->mac[1], c->mac[2], c->mac[3], c->mac[4], c->mac[5], c->issued_ms, c->expires,
        c->work_id, c->image);
    g_autofree char *mac = sign(key, o->str, o->len);
    g_string_append_printf(o, "~%s", mac);
    return g_string_free(o, FALSE);
}

gboolean imaging_cred_check(const guint8 key[IMAGING_CRED_KEY_LEN], const char *token,
                            ImagingCred *out)
{
    memset(out, 0, sizeof(*out));
    if (!imaging_cred_is(token) || strlen(token) > IMAGING_CRED_MAX)
        return FALSE;
    const char *last = strrchr(token, '~');
    /* KIND MAC ISSUED EXPIRES WORK_ID IMAGE HMAC */
    g_auto(GStrv) f = g_strsplit(token + strlen(IMAGING_CRED_PREFIX), "~", 0);
    if (g_strv_length(f) != 7)
        return FALSE;
    for (ImagingCredKind k = IMAGING_CRED_CAPTURE; k <= IMAGING_CRED_SESSION; k++)
        if (strcmp(f[0], imaging_cred_kind_name(k)) == 0)
            out->kind = k;
    if (out->kind == 0)
        return FALSE;
    if (!hex_only(f[1], 12, 12) || !hex_only(f[4], 1, 64) || !pb_name_valid(f[5]) ||
        !hex_only(f[6], 64, 64))
        return FALSE;
    guint64 issued = 0, exp = 0;
    if (!g_ascii_string_to_unsigned(f[2], 10, 0, G_MAXINT64, &issued, NULL) ||
        !g_ascii_string_to_unsigned(f[3], 10, 0, G_MAXINT64, &exp, NULL))
        return FALSE;
    /* The signature last, compared in constant time: the fields above are only shapes. */
    g_autofree char *want = sign(key, token, (gsize)(last - token));
    guint8 diff = 0;
    for (gsize i = 0; i < 64; i++)
        diff |= (guint8)(want[i] ^ f[6][i]);
    if (diff != 0)
        return FALSE;
    for (int i = 0; i < 6; i++)
        out->mac[i] = (guint8)g_ascii_strtoull((char[]){f[1][2 * i], f[1][2 * i + 1], 0}, NULL, 16);
    g_snprintf(out->mac_text, sizeof(out->mac_text), "%02x:%02x:%02x:%02x:%02x:%02x", out->mac[0],
               out->mac[1], out->mac[2], out->mac[3], out->mac[4], out->mac[5]);
    out->issued_ms = (gint64)issued;
    out->expires = (gint64)exp;
    g_strlcpy(out->work_id, f[4], sizeof(out->work_id));
    g_strlcpy(out->image, f[5], sizeof(out->image));
    return TRUE;
}
