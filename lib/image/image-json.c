/* image-json.c - a bounded JSON reader (RFC 8259) for the imaging API's bodies. Pure. */
#include "image-json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p, *end;
    GError **error;
} Reader;

G_DEFINE_QUARK(pb - json - error - quark, pb_json_error)

static gboolean fail(Reader *r, const char *what)
{
    g_set_error(r->error, PB_JSON_ERROR, 0, "JSON: %s", what);
    return FALSE;
}

static void skip_ws(Reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

void pb_json_free(PbJson *j)
{
    if (j == NULL)
        return;
    g_free(j->text);
    if (j->keys != NULL)
        g_ptr_array_unref(j->keys);
    if (j->items != NULL)
        g_ptr_array_unref(j->items);
    g_free(j);
}

static int hexval(char c)
{
    return g_ascii_xdigit_value(c);
}

static gboolean read_hex4(Reader *r, guint *out)
{
    if (r->end - r->p < 4)
        return fail(r, "short \\u escape");
    guint v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hexval(r->p[i]);
        if (d < 0)
            return fail(r, "bad \\u escape");
        v = v * 16 + (guint)d;
    }
    r->p += 4;
    *out = v;
    return TRUE;
}

static char *read_string(Reader *r)
{
    /* r->p is at the opening quote. */
    r->p++;
    GString *s = g_string_new(NULL);
    while (r->p < r->end && *r->p != '"') {
        unsigned char c = (unsigned char)*r->p;
        if (c < 0x20) {
            fail(r, "control character in a string");
            goto bad;
        }
        if (c != '\\') {
            g_string_append_c(s, (char)c);
            r->p++;
            continue;
        }
        if (++r->p >= r->end) {
            fail(r, "unterminated escape");
            goto bad;
        }
        char e = *r->p++;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            g_string_append_c(s, e);
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
            guint u;
            if (!read_hex4(r, &u))
                goto bad;
            if (u >= 0xD800 && u < 0xDC00) {
                guint lo;
                if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u') {
                    fail(r, "lone surrogate");
                    goto bad;
                }
                r->p += 2;
                if (!read_hex4(r, &lo))
                    goto bad;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    fail(r, "bad surrogate pair");
                    goto bad;
                }
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            } else if (u >= 0xDC00 && u <= 0xDFFF) {
                fail(r, "lone surrogate");
                goto bad;
            }
            if (u == 0) {
                fail(r, "NUL in a string");
                goto bad;
            }
            g_string_append_unichar(s, (gunichar)u);
            break;
        }
        default:
            fail(r, "bad escape");
            goto bad;
        }
    }
    if (r->p >= r->end) {
        fail(r, "unterminated string");
        goto bad;
    }
    r->p++;
    if (!g_utf8_validate(s->str, (gssize)s->len, NULL)) {
        fail(r, "string is not UTF-8");
        goto bad;
    }
    return g_string_free(s, FALSE);
bad:
    g_string_free(s, TRUE);
    return NULL;
}

static PbJson *read_value(Reader *r, int depth);

static PbJson *node(PbJsonType t)
{
    PbJson *j = g_new0(PbJson, 1);
    j->type = t;
    return j;
}

static PbJson *read_container(Reader *r, int depth, gboolean object)
{
    PbJson *j = node(object ? PB_JSON_OBJECT : PB_JSON_ARRAY);
    j->items = g_ptr_array_new_with_free_func((GDestroyNotify)pb_json_free);
    if (object)
        j->keys = g_ptr_array_new_with_free_func(g_free);
    char close = object ? '}' : ']';
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return j;
    }
    for (;;) {
        skip_ws(r);
        if (object) {
            if (r->p >= r->end || *r->p != '"') {
                fail(r, "expected a member name");
                goto bad;
            }
            char *k = read_string(r);
            if (k == NULL)
                goto bad;
            g_ptr_array_add(j->keys, k);
            skip_ws(r);
            if (r->p >= r->end || *r->p != ':') {
                fail(r, "expected ':'");
                goto bad;
            }
            r->p++;
        }
        PbJson *v = read_value(r, depth + 1);
        if (v == NULL)
            goto bad;
        g_ptr_array_add(j->items, v);
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            return j;
        }
        fail(r, object ? "expected ',' or '}'" : "expected ',' or ']'");
        goto bad;
    }
bad:
    pb_json_free(j);
    return NULL;
}

static PbJson *read_number(Reader *r)
{
    const char *s = r->p;
    if (r->p < r->end && *r->p == '-')
        r->p++;
    if (r->p >= r->end || !g_ascii_isdigit(*r->p)) {
        fail(r, "bad number");
        return NULL;
    }
    if (*r->p == '0')
        r->p++;
    else
        while (r->p < r->end && g_ascii_isdigit(*r->p))
            r->p++;
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (r->p >= r->end || !g_ascii_isdigit(*r->p)) {
            fail(r, "bad fraction");
            return NULL;
        }
        while (r->p < r->end && g_ascii_isdigit(*r->p))
            r->p++;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (r->p >= r->end || !g_ascii_isdigit(*r->p)) {
            fail(r, "bad exponent");
            return NULL;
        }
        while (r->p < r->end && g_ascii_isdigit(*r->p))
            r->p++;
    }
    PbJson *j = node(PB_JSON_NUMBER);
    j->text = g_strndup(s, (gsize)(r->p - s));
    j->number = g_ascii_strtod(j->text, NULL);
    return j;
}

static gboolean literal(Reader *r, const char *word)
{
    gsize n = strlen(word);
    if ((gsize)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return FALSE;
    r->p += n;
    return TRUE;
}

static PbJson *read_value(Reader *r, int depth)
{
    if (depth > PB_JSON_DEPTH_MAX) {
        fail(r, "nested too deeply");
        return NULL;
    }
    skip_ws(r);
    if (r->p >= r->end) {
        fail(r, "unexpected end");
        return NULL;
    }
    switch (*r->p) {
    case '{':
        return read_container(r, depth, TRUE);
    case '[':
        return read_container(r, depth, FALSE);
    case '"': {
        char *s = read_string(r);
        if (s == NULL)
            return NULL;
        PbJson *j = node(PB_JSON_STRING);
        j->text = s;
        return j;
    }
    default:
        break;
    }
    if (literal(r, "true") || literal(r, "false")) {
        PbJson *j = node(PB_JSON_BOOL);
        j->boolean = r->p[-1] == 'e' && r->p[-2] == 'u';
        return j;
    }
    if (literal(r, "null"))
        return node(PB_JSON_NULL);
    return read_number(r);
}

PbJson *pb_json_parse(const char *text, gsize len, GError **error)
{
    if (len > PB_JSON_TEXT_MAX) {
        g_set_error(error, PB_JSON_ERROR, 0, "JSON: more than %u bytes", PB_JSON_TEXT_MAX);
        return NULL;
    }
    Reader r = {.p = text, .end = text + len, .error = error};
    PbJson *j = read_value(&r, 0);
    if (j == NULL)
        return NULL;
    skip_ws(&r);
    if (r.p != r.end) {
        fail(&r, "trailing bytes after the value");
        pb_json_free(j);
        return NULL;
    }
    return j;
}

const PbJson *pb_json_get(const PbJson *obj, const char *key)
{
    if (obj == NULL || obj->type != PB_JSON_OBJECT)
        return NULL;
    for (guint i = obj->keys->len; i-- > 0;)
        if (strcmp(obj->keys->pdata[i], key) == 0)
            return obj->items->pdata[i];
    return NULL;
}

const char *pb_json_get_string(const PbJson *obj, const char *key)
{
    const PbJson *v = pb_json_get(obj, key);
    return v != NULL && v->type == PB_JSON_STRING ? v->text : NULL;
}

gboolean pb_json_get_uint(const PbJson *obj, const char *key, guint64 *out)
{
    const PbJson *v = pb_json_get(obj, key);
    if (v == NULL || v->type != PB_JSON_NUMBER || v->text[0] == '-')
        return FALSE;
    for (const char *p = v->text; *p != '\0'; p++)
        if (!g_ascii_isdigit(*p))
            return FALSE;
    char *end;
    errno = 0;
    guint64 n = g_ascii_strtoull(v->text, &end, 10);
    if (errno != 0)
        return FALSE;
    *out = n;
    return TRUE;
}

void pb_json_append_string(GString *out, const char *s)
{
    if (s == NULL) {
        g_string_append(out, "null");
        return;
    }
    g_string_append_c(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_printf(out, "\\%c", *p);
        else if (*p < 0x20)
            g_string_append_printf(out, "\\u%04x", *p);
        else
            g_string_append_c(out, (char)*p);
    }
    g_string_append_c(out, '"');
}
