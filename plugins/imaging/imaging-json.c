/* imaging-json.c - a flat JSON object reader and a string writer (RFC 8259). Pure: bytes in,
 * a hash table out; bounded in keys and by the caller's body size. */
#include "imaging-json.h"

#include <string.h>

typedef struct {
    const char *p, *end;
} Cursor;

static void skip_ws(Cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int d = g_ascii_xdigit_value(p[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A string at c->p (the opening quote); NULL when malformed. */
static char *parse_string(Cursor *c)
{
    if (c->p >= c->end || *c->p != '"')
        return NULL;
    c->p++;
    GString *s = g_string_new(NULL);
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20)
            goto bad;
        if (ch != '\\') {
            g_string_append_c(s, (char)ch);
            c->p++;
            continue;
        }
        if (++c->p >= c->end)
            goto bad;
        char e = *c->p++;
        switch (e) {
        case '"':
            g_string_append_c(s, '"');
            break;
        case '\\':
            g_string_append_c(s, '\\');
            break;
        case '/':
            g_string_append_c(s, '/');
            break;
        case 'b':
            g_string_append_c(s, '\b');
            break;
        case 'f':
            g_string_append_c(s, '\f');
            break;
        case 'n':
            g_string_append_c(s, '\n');
            break;
        case 'r':
            g_string_append_c(s, '\r');
            break;
        case 't':
            g_string_append_c(s, '\t');
            break;
        case 'u': {
            if (c->end - c->p < 4)
                goto bad;
            int u = hex4(c->p);
            c->p += 4;
            if (u < 0)
                goto bad;
            if (u >= 0xd800 && u < 0xdc00) { /* a surrogate pair */
                if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u')
                    goto bad;
                int lo = hex4(c->p + 2);
                if (lo < 0xdc00 || lo > 0xdfff)
                    goto bad;
                c->p += 6;
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            } else if (u >= 0xdc00 && u <= 0xdfff) {
                goto bad;
            }
            if (u == 0)
                goto bad; /* no NUL inside our C strings */
            g_string_append_unichar(s, (gunichar)u);
            break;
        }
        default:
            goto bad;
        }
    }
    if (c->p >= c->end)
        goto bad;
    c->p++;
    if (!g_utf8_validate(s->str, (gssize)s->len, NULL))
        goto bad;
    return g_string_free(s, FALSE);
bad:
    g_string_free(s, TRUE);
    return NULL;
}

static char *parse_number(Cursor *c)
{
    const char *start = c->p;
    if (c->p < c->end && *c->p == '-')
        c->p++;
    gboolean digits = FALSE;
    while (c->p < c->end && (g_ascii_isdigit(*c->p) || *c->p == '.' || *c->p == 'e' ||
                             *c->p == 'E' || *c->p == '+' || *c->p == '-')) {
        digits |= g_ascii_isdigit(*c->p);
        c->p++;
    }
    if (!digits || c->p - start > 32)
        return NULL;
    return g_strndup(start, (gsize)(c->p - start));
}

static gboolean word(Cursor *c, const char *w)
{
    gsize n = strlen(w);
    if ((gsize)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
        return FALSE;
    c->p += n;
    return TRUE;
}

GHashTable *imaging_json_parse_flat(const char *text, gsize len, GError **error)
{
    Cursor c = {text, text + len};
    g_autoptr(GHashTable) t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    const char *why = "expected an object";
    skip_ws(&c);
    if (c.p >= c.end || *c.p++ != '{')
        goto bad;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
        goto end;
    }
    for (;;) {
        skip_ws(&c);
        why = "expected a key";
        char *key = parse_string(&c);
        if (key == NULL)
            goto bad;
        skip_ws(&c);
        if (c.p >= c.end || *c.p++ != ':') {
            g_free(key);
            why = "expected ':'";
            goto bad;
        }
        skip_ws(&c);
        char *val = NULL;
        gboolean null = FALSE;
        if (c.p < c.end && *c.p == '"')
            val = parse_string(&c);
        else if (word(&c, "true"))
            val = g_strdup("true");
        else if (word(&c, "false"))
            val = g_strdup("false");
        else if (word(&c, "null"))
            null = TRUE;
        else
            val = parse_number(&c);
        if (val == NULL && !null) {
            g_free(key);
            why = "expected a string, number, boolean or null value";
            goto bad;
        }
        if (g_hash_table_contains(t, key) || g_hash_table_size(t) >= IMAGING_JSON_MAX_KEYS) {
            g_free(key);
            g_free(val);
            why = "a duplicate key, or too many keys";
            goto bad;
        }
        if (null) {
            g_free(key);
        } else {
            g_hash_table_insert(t, key, val);
        }
        skip_ws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        why = "expected ',' or '}'";
        if (c.p >= c.end || *c.p++ != '}')
            goto bad;
        break;
    }
end:
    skip_ws(&c);
    why = "text after the object";
    if (c.p != c.end)
        goto bad;
    return g_steal_pointer(&t);
bad:
    g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_PARSE, "bad JSON at byte %td: %s", c.p - text,
                why);
    return NULL;
}

void imaging_json_string(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_printf(out, "\\%c", *p);
        else if (*p < 0x20)
            g_string_append_printf(out, "\\u%04x", *p);
        else
            g_string_append_c(out, (char)*p);
    }
    g_string_append_c(out, '"');
}
