/* param.c - a plugin's parameter table: checking the table itself, and parsing one value
 * against one declaration. Messages here are the MESSAGE part of "FILE:LINE: KEY: MESSAGE";
 * config.c adds where the value came from. */
#include "build-config.h"

#include "config.h"
#include "os.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const pb_param *pb_plugin_param(const pb_plugin *plugin, guint n)
{
    g_return_val_if_fail(plugin != NULL, NULL);
    g_return_val_if_fail(n < plugin->n_params, NULL);
    /* param_size, not sizeof(pb_param): a plugin built against a later minor ABI may carry
     * fields we do not know at the end of each entry. */
    return (const pb_param *)(const void *)((const char *)plugin->params +
                                            (gsize)n * plugin->param_size);
}

void pb_value_clear(PbValue *v)
{
    if (v == NULL)
        return;
    g_free(v->text);
    g_strfreev(v->list);
    g_free(v->source.file);
    memset(v, 0, sizeof(*v));
}

gboolean pb_config_parse_bool(const char *text, gboolean *out)
{
    static const char *const truths[] = {"yes", "true", "on", "1"};
    static const char *const lies[] = {"no", "false", "off", "0"};
    if (text == NULL)
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(truths); i++) {
        if (g_ascii_strcasecmp(text, truths[i]) == 0) {
            *out = TRUE;
            return TRUE;
        }
        if (g_ascii_strcasecmp(text, lies[i]) == 0) {
            *out = FALSE;
            return TRUE;
        }
    }
    return FALSE;
}

/* ---- addresses ------------------------------------------------------------------------ */

/* Dotted quad, four decimal parts 0-255 without leading zeros: inet_pton's rules, since a
 * leading zero means octal to inet_aton and the two would disagree on "010.0.0.1". */
static gboolean is_ipv4(const char *s, const char *end)
{
    int parts = 0;
    while (s < end) {
        const char *d = s;
        unsigned v = 0;
        while (s < end && g_ascii_isdigit(*s) && s - d < 3) {
            v = v * 10 + (unsigned)(*s - '0');
            s++;
        }
        if (s == d || v > 255 || (s - d > 1 && *d == '0'))
            return FALSE;
        parts++;
        if (s == end)
            break;
        if (*s != '.' || parts == 4)
            return FALSE;
        s++;
        if (s == end)
            return FALSE;
    }
    return parts == 4;
}

/* RFC 4291 section 2.2 text forms, with an optional RFC 4007 "%zone". */
static gboolean is_ipv6(const char *s)
{
    const char *end = strchr(s, '%');
    if (end != NULL) {
        if (end[1] == '\0')
            return FALSE;
        for (const char *z = end + 1; *z != '\0'; z++)
            if (!g_ascii_isalnum(*z) && *z != '_' && *z != '-' && *z != '.')
                return FALSE;
    } else {
        end = s + strlen(s);
    }
    int groups = 0;
    gboolean gap = FALSE;
    const char *p = s;
    if (end - p >= 2 && p[0] == ':' && p[1] == ':') {
        gap = TRUE;
        p += 2;
    } else if (p < end && *p == ':') {
        return FALSE;
    }
    while (p < end) {
        const char *g = p;
        while (p < end && g_ascii_isxdigit(*p) && p - g < 4)
            p++;
        if (p < end && *p == '.') {
            /* Embedded IPv4 ("::ffff:192.0.2.1") takes the last two groups. */
            if (!is_ipv4(g, end))
                return FALSE;
            groups += 2;
            p = end;
            break;
        }
        if (p == g)
            return FALSE;
        groups++;
        if (p == end)
            break;
        if (*p != ':')
            return FALSE;
        p++;
        if (p < end && *p == ':') {
            if (gap)
                return FALSE;
            gap = TRUE;
            p++;
        } else if (p == end) {
            return FALSE;
        }
    }
    return gap ? groups <= 7 : groups == 8;
}

static gboolean is_address(const char *s)
{
    if (strchr(s, ':') != NULL)
        return is_ipv6(s);
    return is_ipv4(s, s + strlen(s));
}

/* ---- legacy paths ----------------------------------------------------------------------- */

char *pb_config_legacy_path(const char *text, GError **error)
{
    g_return_val_if_fail(text != NULL, NULL);
    GString *s = g_string_sized_new(strlen(text) + 16);
    for (const char *p = text; *p != '\0';) {
        if (*p == '%') {
            const char *close = strchr(p + 1, '%');
            if (close == p + 1) { /* "%%" is a literal '%' */
                g_string_append_c(s, '%');
                p += 2;
                continue;
            }
            if (close != NULL) {
                g_autofree char *name = g_strndup(p + 1, (gsize)(close - p - 1));
                gboolean plausible = TRUE;
                for (const char *n = name; *n != '\0'; n++)
                    plausible = plausible && (g_ascii_isalnum(*n) || *n == '_');
                if (plausible) {
                    const char *val = g_getenv(name);
                    if (val == NULL) {
                        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE,
                                    "'%s' uses %%%s%%, which is not set in the environment", text,
                                    name);
                        g_string_free(s, TRUE);
                        return NULL;
                    }
                    for (const char *v = val; *v != '\0'; v++)
                        g_string_append_c(s, pb_os_legacy_path_char(*v));
                    p = close + 1;
                    continue;
                }
            }
        }
        g_string_append_c(s, pb_os_legacy_path_char(*p));
        p++;
    }
    return g_string_free(s, FALSE);
}

/* ---- one value ---------------------------------------------------------------------------- */

static char *range_text(const pb_param *p)
{
    gboolean lo = p->min != G_MININT64, hi = p->max != G_MAXINT64;
    if (lo && hi)
        return g_strdup_printf(" (%" G_GINT64_FORMAT "-%" G_GINT64_FORMAT ")", (gint64)p->min,
                               (gint64)p->max);
    if (lo)
        return g_strdup_printf(" (at least %" G_GINT64_FORMAT ")", (gint64)p->min);
    if (hi)
        return g_strdup_printf(" (at most %" G_GINT64_FORMAT ")", (gint64)p->max);
    return g_strdup("");
}

static gboolean parse_int(const pb_param *p, const char *text, gint64 *out, GError **error)
{
    const char *s = text;
    if (*s == '+' || *s == '-')
        s++;
    gboolean digits = *s != '\0';
    for (const char *d = s; *d != '\0'; d++)
        digits = digits && g_ascii_isdigit(*d);
    g_autofree char *range = range_text(p);
    if (!digits) {
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE, "'%s' is not a number%s", text,
                    range);
        return FALSE;
    }
    errno = 0;
    gint64 v = g_ascii_strtoll(text, NULL, 10);
    if (errno == ERANGE || v < p->min || v > p->max) {
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE, "'%s' is out of range%s", text,
                    range);
        return FALSE;
    }
    *out = v;
    return TRUE;
}

static GStrv split_list(const char *text)
{
    g_auto(GStrv) parts = g_strsplit(text, ",", -1);
    GPtrArray *items = g_ptr_array_new();
    for (char **it = parts; *it != NULL; it++) {
        char *item = g_strstrip(*it);
        if (*item != '\0')
            g_ptr_array_add(items, g_strdup(item));
    }
    g_ptr_array_add(items, NULL);
    return (GStrv)g_ptr_array_free(items, FALSE);
}

static gboolean param_parse_text(const pb_param *p, const char *text, PbSourceKind kind,
                                 PbValue *out, GError **error)
{
    memset(out, 0, sizeof(*out));
    out->source.kind = kind;

    if (text == NULL) {
        if (p->def == NULL) {
            if (p->flags & PB_PARAM_F_REQUIRED) {
                g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE, "a value is required");
                return FALSE;
            }
            /* Unset: what the host hands out for it is ""/0/no/empty list. */
            out->text = g_strdup("");
            if (p->type == PB_PARAM_LIST)
                out->list = g_new0(char *, 1);
            return TRUE;
        }
        /* Defaults are written in the native syntax, never as legacy text. */
        if (!param_parse_text(p, p->def, PB_SOURCE_DEFAULT, out, error))
            return FALSE;
        out->source.kind = kind;
        return TRUE;
    }

    if (*text == '\0' && (p->flags & PB_PARAM_F_EMPTY_OK)) {
        out->text = g_strdup("");
        if (p->type == PB_PARAM_LIST)
            out->list = g_new0(char *, 1);
        return TRUE;
    }

    switch (p->type) {
    case PB_PARAM_STRING:
        out->text = g_strdup(text);
        return TRUE;
    case PB_PARAM_INT: {
        gint64 v = 0;
        if (!parse_int(p, text, &v, error))
            return FALSE;
        out->number = v;
        out->text = g_strdup_printf("%" G_GINT64_FORMAT, v);
        return TRUE;
    }
    case PB_PARAM_BOOL: {
        gboolean b = FALSE;
        if (!pb_config_parse_bool(text, &b)) {
            g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE,
                        "'%s' is not a boolean (yes/no, true/false, on/off, 1/0)", text);
            return FALSE;
        }
        out->number = b;
        out->text = g_strdup(b ? "yes" : "no");
        return TRUE;
    }
    case PB_PARAM_ENUM: {
        for (guint i = 0; p->choices != NULL && p->choices[i] != NULL; i++) {
            if (g_ascii_strcasecmp(text, p->choices[i]) == 0) {
                out->number = i;
                out->text = g_strdup(p->choices[i]);
                return TRUE;
            }
        }
        g_autofree char *allowed =
            p->choices != NULL ? g_strjoinv(", ", (char **)p->choices) : g_strdup("");
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE, "'%s' is not one of: %s", text,
                    allowed);
        return FALSE;
    }
    case PB_PARAM_PATH:
        if (*text == '\0') {
            g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE, "a path is required");
            return FALSE;
        }
        out->text = kind == PB_SOURCE_LEGACY ? pb_config_legacy_path(text, error) : g_strdup(text);
        return out->text != NULL;
    case PB_PARAM_ADDRESS:
        if (!is_address(text)) {
            g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE,
                        "'%s' is not an IPv4 or IPv6 address", text);
            return FALSE;
        }
        out->text = g_strdup(text);
        return TRUE;
    case PB_PARAM_LIST:
        out->list = split_list(text);
        out->text = g_strjoinv(", ", out->list);
        return TRUE;
    default:
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_TABLE, "unknown parameter type %u",
                    p->type);
        return FALSE;
    }
}

gboolean pb_param_parse(const pb_param *p, const char *text, PbSourceKind kind, PbValue *out,
                        GError **error)
{
    g_return_val_if_fail(p != NULL, FALSE);
    g_return_val_if_fail(out != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
    if (!param_parse_text(p, text, kind, out, error)) {
        pb_value_clear(out);
        return FALSE;
    }
    return TRUE;
}

gboolean pb_param_parse_list(const pb_param *p, const char *const *items, PbSourceKind kind,
                             PbValue *out, GError **error)
{
    g_return_val_if_fail(p != NULL, FALSE);
    g_return_val_if_fail(items != NULL, FALSE);
    g_return_val_if_fail(out != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
    memset(out, 0, sizeof(*out));
    if (p->type != PB_PARAM_LIST) {
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE,
                    "expected a single value, got a list");
        return FALSE;
    }
    out->source.kind = kind;
    out->list = g_strdupv((char **)items);
    out->text = g_strjoinv(", ", out->list);
    return TRUE;
}

/* ---- the table -------------------------------------------------------------------------- */

static gboolean is_native_name(const char *s)
{
    if (s == NULL || !g_ascii_islower(*s))
        return FALSE;
    for (; *s != '\0'; s++)
        if (!g_ascii_islower(*s) && !g_ascii_isdigit(*s) && *s != '_')
            return FALSE;
    return TRUE;
}

/* The legacy reader only produces keys of this shape, so no other alias could match. */
static gboolean is_legacy_name(const char *s)
{
    if (s == NULL || !(g_ascii_isalpha(*s) || *s == '_'))
        return FALSE;
    for (; *s != '\0'; s++)
        if (!g_ascii_isalnum(*s) && *s != '_')
            return FALSE;
    return TRUE;
}

#define TABLE_ERROR(fmt, ...)                                                                      \
    (g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_TABLE,                                    \
                 "plugin '%s': parameter '%s': " fmt, pname, p->name != NULL ? p->name : "(null)", \
                 ##__VA_ARGS__),                                                                   \
     FALSE)

static gboolean check_one(const char *pname, const pb_param *p, GError **error)
{
    static const char *const reserved[] = {"module", "name", "enabled", "legacy"};
    if (!is_native_name(p->name))
        return TABLE_ERROR("a name must be lower_snake_case ([a-z][a-z0-9_]*)");
    for (gsize i = 0; i < G_N_ELEMENTS(reserved); i++)
        if (strcmp(p->name, reserved[i]) == 0)
            return TABLE_ERROR("the name is reserved for the instance itself");
    if (p->legacy != NULL && !is_legacy_name(p->legacy))
        return TABLE_ERROR("legacy alias '%s' is not a legacy key ([A-Za-z_][A-Za-z0-9_]*)",
                           p->legacy);
    if (p->type < PB_PARAM_STRING || p->type > PB_PARAM_LIST)
        return TABLE_ERROR("unknown type %u", p->type);
    if (p->type == PB_PARAM_INT && p->min > p->max)
        return TABLE_ERROR("min %" G_GINT64_FORMAT " is above max %" G_GINT64_FORMAT,
                           (gint64)p->min, (gint64)p->max);
    if (p->type == PB_PARAM_ENUM && (p->choices == NULL || p->choices[0] == NULL))
        return TABLE_ERROR("an enum needs choices");
    if (p->type == PB_PARAM_ENUM)
        for (guint i = 0; p->choices[i] != NULL; i++)
            for (guint j = 0; j < i; j++)
                if (g_ascii_strcasecmp(p->choices[i], p->choices[j]) == 0)
                    return TABLE_ERROR("choice '%s' is listed twice", p->choices[i]);
    if ((p->flags & PB_PARAM_F_REQUIRED) && p->def != NULL)
        return TABLE_ERROR("a required parameter cannot have a default");
    /* The host hands out 0 for an unset INT and index 0 for an unset ENUM: both would be
     * silent inventions, so the table has to say what it means. */
    if (!(p->flags & PB_PARAM_F_REQUIRED) && p->def == NULL &&
        (p->type == PB_PARAM_INT || p->type == PB_PARAM_ENUM))
        return TABLE_ERROR("needs a default or PB_PARAM_F_REQUIRED");

    static const struct {
        pb_param_role role;
        pb_param_type type;
        const char *what;
    } roles[] = {
        {PB_ROLE_LOG_LEVEL, PB_PARAM_INT, "INT"},
        {PB_ROLE_LOG_FILE, PB_PARAM_PATH, "PATH"},
        {PB_ROLE_LOG_SIZE, PB_PARAM_INT, "INT"},
        {PB_ROLE_LOG_ENABLE, PB_PARAM_BOOL, "BOOL"},
    };
    if (p->role > PB_ROLE_LOG_ENABLE)
        return TABLE_ERROR("unknown role %u", p->role);
    for (gsize i = 0; i < G_N_ELEMENTS(roles); i++)
        if (p->role == roles[i].role && p->type != roles[i].type)
            return TABLE_ERROR("role %u needs type %s", p->role, roles[i].what);

    if (p->def != NULL) {
        PbValue v;
        g_autoptr(GError) local = NULL;
        if (!pb_param_parse(p, p->def, PB_SOURCE_DEFAULT, &v, &local))
            return TABLE_ERROR("default: %s", local->message);
        pb_value_clear(&v);
    }
    return TRUE;
}

gboolean pb_param_table_check(const pb_plugin *plugin, GError **error)
{
    g_return_val_if_fail(plugin != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
    const char *pname = plugin->name != NULL ? plugin->name : "(unnamed)";
    if (plugin->n_params == 0)
        return TRUE;
    if (plugin->params == NULL) {
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_TABLE,
                    "plugin '%s': %u parameters declared but no table", pname, plugin->n_params);
        return FALSE;
    }
    if (plugin->param_size < sizeof(pb_param)) {
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_TABLE,
                    "plugin '%s': param_size %u is smaller than ABI %d.%d's %zu", pname,
                    plugin->param_size, PB_ABI_MAJOR, PB_ABI_MINOR, sizeof(pb_param));
        return FALSE;
    }
    guint roles_seen[PB_ROLE_LOG_ENABLE + 1] = {0};
    for (guint i = 0; i < plugin->n_params; i++) {
        const pb_param *p = pb_plugin_param(plugin, i);
        if (!check_one(pname, p, error))
            return FALSE;
        if (p->role != PB_ROLE_NONE) {
            if (roles_seen[p->role] != 0)
                return TABLE_ERROR("role %u is already taken by '%s'", p->role,
                                   pb_plugin_param(plugin, roles_seen[p->role] - 1)->name);
            roles_seen[p->role] = i + 1;
        }
        for (guint j = 0; j < i; j++) {
            const pb_param *o = pb_plugin_param(plugin, j);
            if (strcmp(p->name, o->name) == 0)
                return TABLE_ERROR("declared twice");
            /* YAML keys may be native names or aliases, case-insensitively: any overlap
             * would make a key mean two parameters. */
            if (p->legacy != NULL && o->legacy != NULL &&
                g_ascii_strcasecmp(p->legacy, o->legacy) == 0)
                return TABLE_ERROR("legacy alias '%s' is also the alias of '%s'", p->legacy,
                                   o->name);
            if (p->legacy != NULL && g_ascii_strcasecmp(p->legacy, o->name) == 0)
                return TABLE_ERROR("legacy alias '%s' is the name of '%s'", p->legacy, o->name);
            if (o->legacy != NULL && g_ascii_strcasecmp(o->legacy, p->name) == 0)
                return TABLE_ERROR("the name is the legacy alias of '%s'", o->name);
        }
    }
    return TRUE;
}
