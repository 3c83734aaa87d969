/* mcast-record.c - a session's record (mcast-record.h): build and parse, nothing else. */
#include "mcast-record.h"

#include "image-json.h"

#include <string.h>

static const char hexdigits[] = "0123456789abcdef";

void pb_mcast_record_build(const PbMcastRecord *r, GString *out)
{
    g_string_append(out, "{\"session\":");
    pb_json_append_string(out, r->session);
    g_string_append(out, ",\"image\":");
    pb_json_append_string(out, r->image);
    g_string_append_printf(out, ",\"state\":\"%s\",\"seal\":\"", mcast_state_name(r->state));
    for (guint i = 0; i < MCAST_HASH_LEN; i++) {
        g_string_append_c(out, hexdigits[r->seal[i] >> 4]);
        g_string_append_c(out, hexdigits[r->seal[i] & 15]);
    }
    g_string_append(out, "\"}\n");
}

static gboolean bad(GError **error, const char *what)
{
    g_set_error(error, PB_JSON_ERROR, 0, "not a session record: %s", what);
    return FALSE;
}

static gboolean copy_name(const PbJson *j, const char *key, char *out, gsize size)
{
    const char *s = pb_json_get_string(j, key);
    if (s == NULL || !mcast_name_valid(s, strlen(s)))
        return FALSE;
    g_strlcpy(out, s, size);
    return TRUE;
}

gboolean pb_mcast_record_parse(const char *text, gsize len, PbMcastRecord *out, GError **error)
{
    memset(out, 0, sizeof(*out));
    if (len > PB_MCAST_RECORD_MAX)
        return bad(error, "too long");
    g_autoptr(PbJson) j = pb_json_parse(text, len, error);
    if (j == NULL)
        return FALSE;
    if (j->type != PB_JSON_OBJECT)
        return bad(error, "not an object");
    if (!copy_name(j, "session", out->session, sizeof(out->session)))
        return bad(error, "no valid \"session\"");
    if (!copy_name(j, "image", out->image, sizeof(out->image)))
        return bad(error, "no valid \"image\"");
    const char *st = pb_json_get_string(j, "state");
    for (guint8 s = MCAST_STATE_WAITING; st != NULL && s <= MCAST_STATE_ABORTED; s++)
        if (strcmp(st, mcast_state_name(s)) == 0)
            out->state = s;
    if (out->state == 0)
        return bad(error, "no valid \"state\"");
    const char *seal = pb_json_get_string(j, "seal");
    if (seal == NULL || strlen(seal) != 2 * MCAST_HASH_LEN)
        return bad(error, "no valid \"seal\"");
    for (guint i = 0; i < MCAST_HASH_LEN; i++) {
        int hi = g_ascii_xdigit_value(seal[2 * i]), lo = g_ascii_xdigit_value(seal[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return bad(error, "no valid \"seal\"");
        out->seal[i] = (guint8)(hi << 4 | lo);
    }
    return TRUE;
}
