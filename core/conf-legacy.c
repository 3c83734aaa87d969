/* conf-legacy.c - the legacy .conf syntax, as the ZENworks Preboot Services files use it:
 *
 *     # full-line comment (also ';')
 *     TransferBlockSize = 1428     # inline comment after whitespace
 *     TFTPDirectory="/srv/tftp"
 *     PrebootServiceLogFileSize    (a key alone, or "Key =": use the default)
 *
 * The files were edited with Notepad as often as with vi, so CRLF line ends, a UTF-8 BOM
 * and ANSI (Latin-1) bytes are all accepted. Pure: text in, PbRawEntry* out. */
#include "build-config.h"

#include "conf-legacy.h"

#include <string.h>

/* How much of an offending line an error message quotes. */
#define EXCERPT_CHARS 40

static gboolean is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static gboolean is_key_start(char c)
{
    return g_ascii_isalpha(c) || c == '_';
}

static gboolean is_key_char(char c)
{
    return g_ascii_isalnum(c) || c == '_';
}

/* Files written on Windows are in the ANSI code page, not UTF-8; reading the bytes of a
 * line that is not valid UTF-8 as Latin-1 keeps every value printable and every message
 * valid UTF-8 instead of refusing the file. */
static char *line_to_utf8(const char *line, gsize len)
{
    if (g_utf8_validate(line, (gssize)len, NULL))
        return g_strndup(line, len);
    GString *s = g_string_sized_new(len + 16);
    for (gsize i = 0; i < len; i++) {
        guchar c = (guchar)line[i];
        if (c < 0x80) {
            g_string_append_c(s, (char)c);
        } else {
            g_string_append_c(s, (char)(0xC0 | (c >> 6)));
            g_string_append_c(s, (char)(0x80 | (c & 0x3F)));
        }
    }
    return g_string_free(s, FALSE);
}

/* The offending text for a message: at most EXCERPT_CHARS characters, control bytes
 * shown as \xNN so a message never carries a raw escape sequence to a terminal. */
static char *excerpt(const char *utf8)
{
    GString *s = g_string_new(NULL);
    glong n = 0;
    const char *p = utf8;
    for (; *p != '\0' && n < EXCERPT_CHARS; p = g_utf8_next_char(p), n++) {
        guchar c = (guchar)*p;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            g_string_append_printf(s, "\\x%02X", c);
        else
            g_string_append_len(s, p, g_utf8_next_char(p) - p);
    }
    if (*p != '\0')
        g_string_append(s, "...");
    return g_string_free(s, FALSE);
}

static PbRawEntry *entry_new(const char *key, gsize key_len, char *value, const char *filename,
                             guint line)
{
    PbRawEntry *e = g_new0(PbRawEntry, 1);
    e->key = g_strndup(key, key_len);
    e->value = value;
    e->source.kind = PB_SOURCE_LEGACY;
    e->source.file = g_strdup(filename);
    e->source.line = line;
    return e;
}

static gboolean syntax_error(const char *line, const char *filename, guint lineno, GError **error)
{
    g_autofree char *ex = excerpt(line);
    g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX,
                "%s:%u: expected 'Key = value', got '%s'", filename, lineno, ex);
    return FALSE;
}

/* One line, already trimmed of its line end. Returns FALSE with error on a syntax error;
 * *out is NULL for blank and comment lines. */
static gboolean parse_line(const char *text, const char *filename, guint lineno, PbRawEntry **out,
                           GError **error)
{
    *out = NULL;
    const char *p = text;
    while (is_blank(*p))
        p++;
    const char *end = p + strlen(p);
    while (end > p && is_blank(end[-1]))
        end--;
    if (p == end || *p == '#' || *p == ';')
        return TRUE;

    g_autofree char *line = g_strndup(p, (gsize)(end - p));
    const char *key = line;
    const char *k = key;
    if (!is_key_start(*k))
        return syntax_error(line, filename, lineno, error);
    while (is_key_char(*k))
        k++;
    gsize key_len = (gsize)(k - key);
    const char *q = k;
    while (is_blank(*q))
        q++;

    /* A key alone ("PrebootServiceLogFileSize", as the admin guide shows the pbserv file)
     * means "use the default", exactly like "Key =". */
    if (*q == '\0' || (*q == '#' && q > k)) {
        *out = entry_new(key, key_len, NULL, filename, lineno);
        return TRUE;
    }
    if (*q != '=')
        return syntax_error(line, filename, lineno, error);

    const char *v = q + 1;
    while (is_blank(*v))
        v++;
    if (*v == '\0' || (*v == '#' && v > q + 1)) {
        *out = entry_new(key, key_len, NULL, filename, lineno);
        return TRUE;
    }

    if (*v == '"') {
        const char *close = strchr(v + 1, '"');
        if (close == NULL) {
            g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX,
                        "%s:%u: %.*s: no closing double quote", filename, lineno, (int)key_len,
                        key);
            return FALSE;
        }
        const char *r = close + 1;
        while (is_blank(*r))
            r++;
        if (*r != '\0' && !(*r == '#' && r > close + 1)) {
            g_autofree char *ex = excerpt(r);
            g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX,
                        "%s:%u: %.*s: unexpected text after the closing quote: '%s'", filename,
                        lineno, (int)key_len, key, ex);
            return FALSE;
        }
        /* Quoted: the text is taken as is, '#' included, and "" is an explicitly empty
         * value rather than the default. */
        *out = entry_new(key, key_len, g_strndup(v + 1, (gsize)(close - v - 1)), filename, lineno);
        return TRUE;
    }

    /* Unquoted: an inline comment starts only at a '#' after whitespace, so values such
     * as "a#b" (URL fragments, passwords) keep theirs. */
    const char *vend = v;
    for (const char *c = v; *c != '\0'; c++) {
        if (*c == '#' && is_blank(c[-1]))
            break;
        vend = c + 1;
    }
    while (vend > v && is_blank(vend[-1]))
        vend--;
    *out = entry_new(key, key_len, g_strndup(v, (gsize)(vend - v)), filename, lineno);
    return TRUE;
}

GPtrArray *pb_legacy_parse_full(const char *text, gsize len, const char *filename,
                                GPtrArray *warnings, GError **error)
{
    g_return_val_if_fail(text != NULL || len == 0, NULL);
    g_return_val_if_fail(filename != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    const char *nul = len > 0 ? memchr(text, '\0', len) : NULL;
    if (nul != NULL) {
        guint line = 1;
        for (const char *c = text; c < nul; c++)
            line += *c == '\n';
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX,
                    "%s:%u: NUL byte in the line (not a text file?)", filename, line);
        return NULL;
    }

    const char *p = text;
    const char *end = text + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;

    g_autoptr(GPtrArray) entries =
        g_ptr_array_new_with_free_func((GDestroyNotify)pb_raw_entry_free);
    /* lower-cased key -> index in entries + 1 */
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    guint lineno = 0;
    while (p < end) {
        lineno++;
        const char *nl = memchr(p, '\n', (gsize)(end - p));
        const char *eol = nl != NULL ? nl : end;
        const char *next = nl != NULL ? nl + 1 : end;
        if (eol > p && eol[-1] == '\r')
            eol--;
        g_autofree char *line = line_to_utf8(p, (gsize)(eol - p));
        p = next;

        PbRawEntry *e = NULL;
        if (!parse_line(line, filename, lineno, &e, error))
            return NULL;
        if (e == NULL)
            continue;
        char *folded = g_ascii_strdown(e->key, -1);
        guint prev = GPOINTER_TO_UINT(g_hash_table_lookup(seen, folded));
        if (prev != 0) {
            PbRawEntry *old = g_ptr_array_index(entries, prev - 1);
            if (warnings != NULL)
                g_ptr_array_add(warnings,
                                g_strdup_printf("%s:%u: %s: also set at line %u; this later "
                                                "value wins",
                                                filename, lineno, e->key, old->source.line));
            /* Leave a hole; compacted below so file order is kept. */
            pb_raw_entry_free(old);
            g_ptr_array_index(entries, prev - 1) = NULL;
        }
        g_ptr_array_add(entries, e);
        g_hash_table_replace(seen, folded, GUINT_TO_POINTER(entries->len));
    }

    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)pb_raw_entry_free);
    for (guint i = 0; i < entries->len; i++) {
        PbRawEntry *e = g_ptr_array_index(entries, i);
        if (e != NULL)
            g_ptr_array_add(out, e);
        g_ptr_array_index(entries, i) = NULL;
    }
    return out;
}

GPtrArray *pb_legacy_parse(const char *text, gsize len, const char *filename, GError **error)
{
    return pb_legacy_parse_full(text, len, filename, NULL, error);
}
