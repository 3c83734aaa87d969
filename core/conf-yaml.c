/* conf-yaml.c - preboot.yaml: libyaml's event parser builds a small tree (scalars,
 * sequences, mappings, each with its line), then the schema walk turns it into a PbConfig.
 * Aliases are refused rather than expanded: a configuration file has no use for them, and
 * refusing them removes the "billion laughs" expansion outright. */
#include "build-config.h"

#include "conf-yaml.h"

#include <string.h>
#include <yaml.h>

/* Our schema is four levels deep; anything much deeper is an error or an attack. */
#define MAX_DEPTH 32

typedef enum { NODE_SCALAR, NODE_SEQUENCE, NODE_MAPPING } NodeKind;

typedef struct Node {
    NodeKind kind;
    guint line;
    char *value;     /* scalars */
    gboolean plain;  /* an unquoted scalar: "~", "null" and "" mean "no value" */
    GPtrArray *kids; /* sequence items; mapping keys and values alternating */
} Node;

static void node_free(Node *n)
{
    if (n == NULL)
        return;
    g_free(n->value);
    if (n->kids != NULL)
        g_ptr_array_unref(n->kids);
    g_free(n);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Node, node_free)

static Node *node_new(NodeKind kind, const yaml_mark_t *mark)
{
    Node *n = g_new0(Node, 1);
    n->kind = kind;
    n->line = (guint)mark->line + 1;
    if (kind != NODE_SCALAR)
        n->kids = g_ptr_array_new_with_free_func((GDestroyNotify)node_free);
    return n;
}

static guint line_of_offset(const char *text, gsize len, gsize offset)
{
    guint line = 1;
    for (gsize i = 0; i < offset && i < len; i++)
        line += text[i] == '\n';
    return line;
}

static void set_parser_error(const yaml_parser_t *parser, const char *text, gsize len,
                             const char *filename, GError **error)
{
    guint line;
    if (parser->error == YAML_READER_ERROR)
        line = line_of_offset(text, len, parser->problem_offset);
    else
        line = (guint)parser->problem_mark.line + 1;
    const char *problem = parser->problem != NULL ? parser->problem : "invalid YAML";
    if (parser->context != NULL)
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX, "%s:%u: %s %s", filename, line,
                    parser->context, problem);
    else
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX, "%s:%u: %s", filename, line,
                    problem);
}

/* Returns the document's root (NULL for an empty stream) or FALSE with error. */
static gboolean load_tree(const char *text, gsize len, const char *filename, Node **root,
                          GError **error)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX, "%s: out of memory", filename);
        return FALSE;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

    g_autoptr(GPtrArray) stack = g_ptr_array_new();
    Node *top = NULL;
    int documents = 0;
    gboolean ok = TRUE, done = FALSE;
    while (ok && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            set_parser_error(&parser, text, len, filename, error);
            ok = FALSE;
            break;
        }
        Node *n = NULL;
        guint line = (guint)ev.start_mark.line + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = TRUE;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1) {
                g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX,
                            "%s:%u: only one YAML document is allowed", filename, line);
                ok = FALSE;
            }
            break;
        case YAML_ALIAS_EVENT:
            g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX,
                        "%s:%u: YAML aliases (*%s) are not supported", filename, line,
                        (const char *)ev.data.alias.anchor);
            ok = FALSE;
            break;
        case YAML_SCALAR_EVENT:
            n = node_new(NODE_SCALAR, &ev.start_mark);
            n->value = g_strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (stack->len >= MAX_DEPTH) {
                g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX,
                            "%s:%u: nested deeper than %d levels", filename, line, MAX_DEPTH);
                ok = FALSE;
                break;
            }
            n = node_new(ev.type == YAML_SEQUENCE_START_EVENT ? NODE_SEQUENCE : NODE_MAPPING,
                         &ev.start_mark);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (stack->len > 0)
                g_ptr_array_remove_index(stack, stack->len - 1);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (n == NULL)
            continue;
        /* Attach to the parent, or make it the root; containers then become the parent. */
        if (stack->len > 0)
            g_ptr_array_add(((Node *)g_ptr_array_index(stack, stack->len - 1))->kids, n);
        else if (top == NULL)
            top = n;
        else {
            node_free(n); /* unreachable with one document; never leak */
            continue;
        }
        if (n->kind != NODE_SCALAR)
            g_ptr_array_add(stack, n);
    }
    yaml_parser_delete(&parser);
    if (!ok) {
        node_free(top);
        return FALSE;
    }
    *root = top;
    return TRUE;
}

/* ---- the schema --------------------------------------------------------------------------- */

typedef struct {
    const char *filename;
    char *dir; /* of filename, for relative legacy paths; NULL when "." */
    PbConfig *cfg;
} Parse;

static gboolean is_null(const Node *n)
{
    return n->kind == NODE_SCALAR && n->plain &&
           (n->value[0] == '\0' || strcmp(n->value, "~") == 0 ||
            g_ascii_strcasecmp(n->value, "null") == 0);
}

static const char *kind_name(const Node *n)
{
    return n->kind == NODE_MAPPING ? "a mapping" : n->kind == NODE_SEQUENCE ? "a list" : "a value";
}

static gboolean fail(Parse *ps, GError **error, PbConfigError code, guint line, const char *fmt,
                     ...) G_GNUC_PRINTF(5, 6);
static gboolean fail(Parse *ps, GError **error, PbConfigError code, guint line, const char *fmt,
                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, PB_CONFIG_ERROR, code, "%s:%u: %s", ps->filename, line, msg);
    return FALSE;
}

static void warn(Parse *ps, guint line, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void warn(Parse *ps, guint line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_ptr_array_add(ps->cfg->warnings, g_strdup_printf("%s:%u: %s", ps->filename, line, msg));
}

/* Keys must be plain text and unique: YAML says a duplicate is an error, and silently
 * taking either one would hide a typo. */
static gboolean check_mapping(Parse *ps, const Node *map, GError **error)
{
    for (guint i = 0; i + 1 < map->kids->len; i += 2) {
        const Node *k = g_ptr_array_index(map->kids, i);
        if (k->kind != NODE_SCALAR)
            return fail(ps, error, PB_CONFIG_ERROR_SCHEMA, k->line,
                        "a key must be plain text, not %s", kind_name(k));
        for (guint j = 0; j < i; j += 2) {
            const Node *o = g_ptr_array_index(map->kids, j);
            if (strcmp(o->value, k->value) == 0)
                return fail(ps, error, PB_CONFIG_ERROR_SCHEMA, k->line,
                            "duplicate key '%s' (first at line %u)", k->value, o->line);
        }
    }
    return TRUE;
}

#define MAP_KEY(map, i)   ((const Node *)g_ptr_array_index((map)->kids, (i)))
#define MAP_VALUE(map, i) ((const Node *)g_ptr_array_index((map)->kids, (i) + 1))

/* A scalar or a list of scalars, as a NULL-terminated vector. */
static GStrv string_list(Parse *ps, const char *key, const Node *v, const char *what,
                         GError **error)
{
    GPtrArray *items = g_ptr_array_new_with_free_func(g_free);
    if (v->kind == NODE_SCALAR) {
        g_ptr_array_add(items, g_strdup(v->value));
    } else if (v->kind == NODE_SEQUENCE) {
        for (guint i = 0; i < v->kids->len; i++) {
            const Node *it = g_ptr_array_index(v->kids, i);
            if (it->kind != NODE_SCALAR) {
                fail(ps, error, PB_CONFIG_ERROR_SCHEMA, it->line,
                     "%s: a list may only hold single values, not %s", key, kind_name(it));
                g_ptr_array_unref(items);
                return NULL;
            }
            g_ptr_array_add(items, g_strdup(it->value));
        }
    } else {
        fail(ps, error, PB_CONFIG_ERROR_SCHEMA, v->line, "'%s' must be %s", key, what);
        g_ptr_array_unref(items);
        return NULL;
    }
    g_ptr_array_set_free_func(items, NULL);
    g_ptr_array_add(items, NULL);
    return (GStrv)g_ptr_array_free(items, FALSE);
}

static const char *scalar(Parse *ps, const char *key, const Node *v, GError **error)
{
    if (v->kind != NODE_SCALAR) {
        fail(ps, error, PB_CONFIG_ERROR_SCHEMA, v->line, "%s: expected a single value, got %s", key,
             kind_name(v));
        return NULL;
    }
    return v->value;
}

/* Daemon numbers and booleans go through the same parser as plugin parameters, so their
 * messages read the same ("'7' is out of range (0-4)"). */
static gboolean typed_value(Parse *ps, const char *key, const Node *v, const pb_param *p,
                            PbValue *out, GError **error)
{
    const char *text = scalar(ps, key, v, error);
    if (text == NULL)
        return FALSE;
    g_autoptr(GError) local = NULL;
    if (!pb_param_parse(p, text, PB_SOURCE_YAML, out, &local))
        return fail(ps, error, PB_CONFIG_ERROR_VALUE, v->line, "%s: %s", key, local->message);
    return TRUE;
}

static const pb_param daemon_log_level = {
    .name = "log_level", .type = PB_PARAM_INT, .def = "2", .min = 0, .max = 4};
static const pb_param daemon_log_size = {
    .name = "log_size", .type = PB_PARAM_INT, .def = "15", .min = 0, .max = 1048576};
static const pb_param a_bool = {.name = "bool", .type = PB_PARAM_BOOL, .def = "no"};

static void replace_string(char **slot, const char *value, gboolean empty_is_null)
{
    g_free(*slot);
    *slot = (empty_is_null && (value == NULL || *value == '\0')) ? NULL : g_strdup(value);
}

static void source_free(gpointer data)
{
    PbSource *src = data;
    g_free(src->file);
    g_free(src);
}

void pb_config_note_global_source(PbConfig *cfg, const char *key, const char *file, guint line)
{
    g_return_if_fail(cfg != NULL && key != NULL);
    if (cfg->global_sources == NULL)
        cfg->global_sources = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, source_free);
    PbSource *src = g_new0(PbSource, 1);
    src->kind = line > 0 ? PB_SOURCE_YAML : PB_SOURCE_DEFAULT;
    src->file = g_strdup(file);
    src->line = line;
    g_hash_table_replace(cfg->global_sources, g_strdup(key), src);
}

static void dump_source(const PbConfig *cfg, const char *key, GString *out)
{
    const PbSource *src =
        cfg->global_sources ? g_hash_table_lookup(cfg->global_sources, key) : NULL;
    if (src == NULL || src->file == NULL)
        g_string_append(out, "    # default\n");
    else if (src->line == 0)
        g_string_append_printf(out, "    # %s\n", src->file);
    else
        g_string_append_printf(out, "    # %s:%u\n", src->file, src->line);
}

void pb_config_dump_global(const PbConfig *cfg, GString *out)
{
    g_return_if_fail(cfg != NULL && out != NULL);
    const PbGlobalConfig *g = &cfg->global;
    g_autofree char *path = g->plugin_path ? g_strjoinv(", ", g->plugin_path) : g_strdup("");
    g_string_append(out, "daemon:\n");
    g_string_append_printf(out, "  plugin_path: [%s]", path);
    dump_source(cfg, "plugin_path", out);
    const struct {
        const char *key;
        const char *value;
        const char *unset; /* what an unset optional key means; NULL: a path, always set */
    } strings[] = {
        {"log_dir", g->log_dir, NULL},
        {"state_dir", g->state_dir, NULL},
        {"pid_file", g->pid_file, NULL},
        {"control_socket", g->control_socket, NULL},
        {"control_group", g->control_group,
         "unset: root, the daemon's user and the user's group may use the socket"},
        {"user", g->user, "unset: the daemon keeps running as the user that started it"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(strings); i++) {
        if (strings[i].unset && (strings[i].value == NULL || *strings[i].value == '\0')) {
            g_string_append_printf(out, "  # %s:    # %s\n", strings[i].key, strings[i].unset);
            continue;
        }
        g_string_append_printf(out, "  %s: %s", strings[i].key,
                               strings[i].value ? strings[i].value : "");
        dump_source(cfg, strings[i].key, out);
    }
    g_string_append_printf(out, "  syslog: %s", g->syslog ? "yes" : "no");
    dump_source(cfg, "syslog", out);
    g_string_append_printf(out, "  log_level: %d", g->log_level);
    dump_source(cfg, "log_level", out);
    g_string_append_printf(out, "  log_size: %u", g->log_size_mb);
    dump_source(cfg, "log_size", out);
}

static gboolean parse_daemon(Parse *ps, const Node *map, GError **error)
{
    PbGlobalConfig *g = &ps->cfg->global;
    if (!check_mapping(ps, map, error))
        return FALSE;
    for (guint i = 0; i + 1 < map->kids->len; i += 2) {
        const char *key = MAP_KEY(map, i)->value;
        const Node *v = MAP_VALUE(map, i);
        if (is_null(v))
            continue; /* "key:" with nothing keeps the default */
        pb_config_note_global_source(ps->cfg, key, ps->filename, MAP_KEY(map, i)->line);
        static const struct {
            const char *key;
            gsize offset;
            gboolean empty_is_null;
        } strings[] = {
            {"log_dir", G_STRUCT_OFFSET(PbGlobalConfig, log_dir), FALSE},
            {"state_dir", G_STRUCT_OFFSET(PbGlobalConfig, state_dir), FALSE},
            {"pid_file", G_STRUCT_OFFSET(PbGlobalConfig, pid_file), FALSE},
            {"control_socket", G_STRUCT_OFFSET(PbGlobalConfig, control_socket), FALSE},
            {"control_group", G_STRUCT_OFFSET(PbGlobalConfig, control_group), TRUE},
            {"user", G_STRUCT_OFFSET(PbGlobalConfig, user), TRUE},
        };
        gboolean known = FALSE;
        for (gsize s = 0; s < G_N_ELEMENTS(strings) && !known; s++) {
            if (strcmp(key, strings[s].key) != 0)
                continue;
            known = TRUE;
            const char *text = scalar(ps, key, v, error);
            if (text == NULL)
                return FALSE;
            if (*text == '\0' && !strings[s].empty_is_null)
                return fail(ps, error, PB_CONFIG_ERROR_VALUE, v->line, "%s: a path is required",
                            key);
            replace_string(G_STRUCT_MEMBER_P(g, strings[s].offset), text, strings[s].empty_is_null);
        }
        if (known)
            continue;
        if (strcmp(key, "plugin_path") == 0) {
            GStrv path = string_list(ps, key, v, "a directory or a list of directories", error);
            if (path == NULL)
                return FALSE;
            g_strfreev(g->plugin_path);
            g->plugin_path = path;
        } else if (strcmp(key, "syslog") == 0) {
            PbValue val;
            if (!typed_value(ps, key, v, &a_bool, &val, error))
                return FALSE;
            g->syslog = val.number != 0;
            pb_value_clear(&val);
        } else if (strcmp(key, "log_level") == 0) {
            PbValue val;
            if (!typed_value(ps, key, v, &daemon_log_level, &val, error))
                return FALSE;
            g->log_level = (int)val.number;
            pb_value_clear(&val);
        } else if (strcmp(key, "log_size") == 0) {
            PbValue val;
            if (!typed_value(ps, key, v, &daemon_log_size, &val, error))
                return FALSE;
            g->log_size_mb = (guint)val.number;
            pb_value_clear(&val);
        } else {
            warn(ps, MAP_KEY(map, i)->line, "unknown key '%s'", key);
        }
    }
    return TRUE;
}

static char *resolve_legacy(Parse *ps, const char *path)
{
    if (ps->dir == NULL || g_path_is_absolute(path))
        return g_strdup(path);
    return g_build_filename(ps->dir, path, NULL);
}

/* Instance names become directory names under state_dir and words in prebootctl
 * commands, so they stay short and tame. */
static gboolean valid_instance_name(const char *s)
{
    gsize n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '.' || s[0] == '-')
        return FALSE;
    for (; *s != '\0'; s++)
        if (!g_ascii_isalnum(*s) && *s != '_' && *s != '-' && *s != '.')
            return FALSE;
    return TRUE;
}

static char *name_from_module(const char *module)
{
    char *base = g_path_get_basename(module);
    char *dot = strrchr(base, '.');
    if (dot != NULL && dot != base)
        *dot = '\0';
    return base;
}

static gboolean parse_legacy_list(Parse *ps, const char *key, const Node *v, GPtrArray *paths,
                                  GPtrArray *lines, GError **error)
{
    if (v->kind == NODE_SCALAR) {
        if (v->value[0] == '\0')
            return fail(ps, error, PB_CONFIG_ERROR_VALUE, v->line, "%s: a path is required", key);
        g_ptr_array_add(paths, resolve_legacy(ps, v->value));
        if (lines != NULL)
            g_ptr_array_add(lines, GUINT_TO_POINTER(v->line));
        return TRUE;
    }
    if (v->kind != NODE_SEQUENCE)
        return fail(ps, error, PB_CONFIG_ERROR_SCHEMA, v->line,
                    "'%s' must be a path or a list of paths", key);
    for (guint i = 0; i < v->kids->len; i++) {
        const Node *it = g_ptr_array_index(v->kids, i);
        if (it->kind != NODE_SCALAR || it->value[0] == '\0')
            return fail(ps, error, PB_CONFIG_ERROR_SCHEMA, it->line,
                        "'%s' must be a path or a list of paths", key);
        g_ptr_array_add(paths, resolve_legacy(ps, it->value));
        if (lines != NULL)
            g_ptr_array_add(lines, GUINT_TO_POINTER(it->line));
    }
    return TRUE;
}

static PbRawEntry *raw_entry(Parse *ps, const char *key, const Node *v, GError **error)
{
    g_autoptr(PbRawEntry) e = g_new0(PbRawEntry, 1);
    e->key = g_strdup(key);
    e->source.kind = PB_SOURCE_YAML;
    e->source.file = g_strdup(ps->filename);
    e->source.line = v->line;
    if (v->kind == NODE_MAPPING) {
        fail(ps, error, PB_CONFIG_ERROR_SCHEMA, v->line,
             "%s: expected a value or a list, got a mapping", key);
        return NULL;
    }
    if (v->kind == NODE_SEQUENCE) {
        e->list = string_list(ps, key, v, "a value or a list", error);
        if (e->list == NULL)
            return NULL;
    } else if (!is_null(v)) {
        e->value = g_strdup(v->value);
    }
    return g_steal_pointer(&e);
}

static PbInstanceSpec *parse_instance(Parse *ps, const Node *map, GError **error)
{
    if (!check_mapping(ps, map, error))
        return NULL;
    g_autoptr(PbInstanceSpec) spec = g_new0(PbInstanceSpec, 1);
    spec->enabled = TRUE;
    spec->legacy = g_ptr_array_new_with_free_func(g_free);
    spec->entries = g_ptr_array_new_with_free_func((GDestroyNotify)pb_raw_entry_free);
    spec->source.kind = PB_SOURCE_YAML;
    spec->source.file = g_strdup(ps->filename);
    spec->source.line = map->line;

    for (guint i = 0; i + 1 < map->kids->len; i += 2) {
        const char *key = MAP_KEY(map, i)->value;
        const Node *v = MAP_VALUE(map, i);
        if (strcmp(key, "module") == 0 || strcmp(key, "name") == 0) {
            const char *text = scalar(ps, key, v, error);
            if (text == NULL)
                return NULL;
            if (*text == '\0') {
                fail(ps, error, PB_CONFIG_ERROR_SCHEMA, v->line, "%s: must not be empty", key);
                return NULL;
            }
            if (key[0] == 'n' && !valid_instance_name(text)) {
                fail(ps, error, PB_CONFIG_ERROR_VALUE, v->line,
                     "name: '%s' is not a valid instance name (up to 64 letters, digits, '_', "
                     "'-', '.')",
                     text);
                return NULL;
            }
            replace_string(key[0] == 'm' ? &spec->module : &spec->name, text, FALSE);
        } else if (strcmp(key, "enabled") == 0) {
            PbValue val;
            if (!typed_value(ps, key, v, &a_bool, &val, error))
                return NULL;
            spec->enabled = val.number != 0;
            pb_value_clear(&val);
        } else if (strcmp(key, "legacy") == 0) {
            if (!is_null(v) && !parse_legacy_list(ps, key, v, spec->legacy, NULL, error))
                return NULL;
        } else {
            PbRawEntry *e = raw_entry(ps, key, v, error);
            if (e == NULL)
                return NULL;
            g_ptr_array_add(spec->entries, e);
        }
    }
    if (spec->module == NULL) {
        fail(ps, error, PB_CONFIG_ERROR_SCHEMA, map->line, "plugin entry has no 'module'");
        return NULL;
    }
    if (spec->name == NULL) {
        spec->name = name_from_module(spec->module);
        if (!valid_instance_name(spec->name)) {
            fail(ps, error, PB_CONFIG_ERROR_VALUE, map->line,
                 "module: '%s' gives no valid instance name; add 'name:'", spec->module);
            return NULL;
        }
    }
    return g_steal_pointer(&spec);
}

static gboolean parse_plugins(Parse *ps, const Node *v, GError **error)
{
    if (v->kind != NODE_SEQUENCE)
        return fail(ps, error, PB_CONFIG_ERROR_SCHEMA, v->line,
                    "'plugins' must be a list of mappings");
    for (guint i = 0; i < v->kids->len; i++) {
        const Node *item = g_ptr_array_index(v->kids, i);
        if (item->kind != NODE_MAPPING)
            return fail(ps, error, PB_CONFIG_ERROR_SCHEMA, item->line,
                        "'plugins' must be a list of mappings");
        PbInstanceSpec *spec = parse_instance(ps, item, error);
        if (spec == NULL)
            return FALSE;
        for (guint j = 0; j < ps->cfg->instances->len; j++) {
            const PbInstanceSpec *o = g_ptr_array_index(ps->cfg->instances, j);
            if (o->module != NULL && strcmp(o->name, spec->name) == 0) {
                fail(ps, error, PB_CONFIG_ERROR_SCHEMA, spec->source.line,
                     "duplicate instance name '%s' (first declared at line %u)", spec->name,
                     o->source.line);
                pb_instance_spec_free(spec);
                return FALSE;
            }
        }
        g_ptr_array_add(ps->cfg->instances, spec);
    }
    return TRUE;
}

static gboolean parse_root(Parse *ps, const Node *root, GError **error)
{
    if (root == NULL || is_null(root))
        return TRUE; /* an empty file: defaults, no instances */
    if (root->kind != NODE_MAPPING)
        return fail(ps, error, PB_CONFIG_ERROR_SCHEMA, root->line,
                    "the top level must be a mapping (daemon:, legacy:, plugins:)");
    if (!check_mapping(ps, root, error))
        return FALSE;
    for (guint i = 0; i + 1 < root->kids->len; i += 2) {
        const char *key = MAP_KEY(root, i)->value;
        const Node *v = MAP_VALUE(root, i);
        if (strcmp(key, "daemon") == 0) {
            if (is_null(v))
                continue;
            if (v->kind != NODE_MAPPING)
                return fail(ps, error, PB_CONFIG_ERROR_SCHEMA, v->line,
                            "'daemon' must be a mapping");
            if (!parse_daemon(ps, v, error))
                return FALSE;
        } else if (strcmp(key, "legacy") == 0) {
            if (is_null(v))
                continue;
            g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
            g_autoptr(GPtrArray) lines = g_ptr_array_new();
            if (!parse_legacy_list(ps, key, v, paths, lines, error))
                return FALSE;
            for (guint j = 0; j < paths->len; j++) {
                PbSource where = {PB_SOURCE_YAML, (char *)ps->filename,
                                  GPOINTER_TO_UINT(g_ptr_array_index(lines, j))};
                g_ptr_array_add(ps->cfg->instances,
                                pb_instance_spec_new_legacy(g_ptr_array_index(paths, j), &where));
            }
        } else if (strcmp(key, "plugins") == 0) {
            if (is_null(v))
                continue;
            if (!parse_plugins(ps, v, error))
                return FALSE;
        } else {
            warn(ps, MAP_KEY(root, i)->line, "unknown key '%s'", key);
        }
    }
    return TRUE;
}

PbConfig *pb_yaml_parse(const char *text, gsize len, const char *filename, GError **error)
{
    g_return_val_if_fail(text != NULL || len == 0, NULL);
    g_return_val_if_fail(filename != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    g_autoptr(Node) root = NULL;
    if (!load_tree(text != NULL ? text : "", len, filename, &root, error))
        return NULL;

    g_autoptr(PbConfig) cfg = pb_config_new(filename);
    g_autofree char *dir = g_path_get_dirname(filename);
    Parse ps = {filename, strcmp(dir, ".") == 0 ? NULL : dir, cfg};
    if (!parse_root(&ps, root, error))
        return NULL;
    return g_steal_pointer(&cfg);
}
