/* imaging-json.c - the imaging API's flat JSON objects, over lib/image's bounded reader and
 * string writer (image-json.h: one JSON implementation, unit-tested and fuzzed there). Pure:
 * bytes in, a hash table out; bounded in keys and by the caller's body size. */
#include "imaging-json.h"

#include "image-json.h"

#include <string.h>

/* Longer numbers are no count or size the API knows; refused as before the shared reader. */
#define NUMBER_TEXT_MAX 32

static gboolean refuse(GError **error, const char *why)
{
    g_set_error(error, PB_JSON_ERROR, 0, "JSON: %s", why);
    return FALSE;
}

/* The text a member's value is kept as: NULL with *null for null, NULL alone when refused. */
static char *flat_value(const PbJson *v, gboolean *null)
{
    *null = FALSE;
    switch (v->type) {
    case PB_JSON_STRING:
        return g_strdup(v->text);
    case PB_JSON_NUMBER:
        return strlen(v->text) <= NUMBER_TEXT_MAX ? g_strdup(v->text) : NULL;
    case PB_JSON_BOOL:
        return g_strdup(v->boolean ? "true" : "false");
    case PB_JSON_NULL:
        *null = TRUE;
        return NULL;
    default:
        return NULL; /* nested objects and arrays */
    }
}

GHashTable *imaging_json_parse_flat(const char *text, gsize len, GError **error)
{
    g_autoptr(PbJson) j = pb_json_parse(text, len, error);
    if (j == NULL)
        return NULL;
    if (j->type != PB_JSON_OBJECT) {
        refuse(error, "expected an object");
        return NULL;
    }
    g_autoptr(GHashTable) t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (guint i = 0; i < j->keys->len; i++) {
        const char *key = j->keys->pdata[i];
        gboolean null;
        char *val = flat_value(j->items->pdata[i], &null);
        if (val == NULL && !null) {
            refuse(error, "expected a string, number, boolean or null value");
            return NULL;
        }
        if (g_hash_table_contains(t, key) || g_hash_table_size(t) >= IMAGING_JSON_MAX_KEYS) {
            g_free(val);
            refuse(error, "a duplicate key, or too many keys");
            return NULL;
        }
        if (!null)
            g_hash_table_insert(t, g_strdup(key), val);
    }
    return g_steal_pointer(&t);
}

void imaging_json_string(GString *out, const char *s)
{
    pb_json_append_string(out, s != NULL ? s : "");
}
