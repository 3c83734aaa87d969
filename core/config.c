/* config.c - from files to a validated configuration: pb_config_load() reads what -c
 * names (YAML, a legacy .conf file, or a directory of them), and pb_config_build() lays
 * one instance's values over its plugin's defaults with the documented precedence:
 * defaults < legacy files (in the order given) < YAML keys. */
#include "build-config.h"

#include "conf-legacy.h"
#include "conf-yaml.h"
#include "config.h"

#include <string.h>

#ifndef PB_PLUGINDIR
#define PB_PLUGINDIR "/usr/local/lib/preboot"
#endif
#ifndef PB_LOGDIR
#define PB_LOGDIR "/var/log/preboot"
#endif
#ifndef PB_STATEDIR
#define PB_STATEDIR "/var/lib/preboot"
#endif
#ifndef PB_RUNDIR
#define PB_RUNDIR "/run/preboot"
#endif

G_DEFINE_QUARK(pb - config - error - quark, pb_config_error)

/* ---- the model ---------------------------------------------------------------------- */

void pb_raw_entry_free(PbRawEntry *e)
{
    if (e == NULL)
        return;
    g_free(e->key);
    g_free(e->value);
    g_strfreev(e->list);
    g_free(e->source.file);
    g_free(e);
}

void pb_instance_spec_free(PbInstanceSpec *spec)
{
    if (spec == NULL)
        return;
    g_free(spec->name);
    g_free(spec->module);
    if (spec->legacy != NULL)
        g_ptr_array_unref(spec->legacy);
    if (spec->entries != NULL)
        g_ptr_array_unref(spec->entries);
    g_free(spec->source.file);
    g_free(spec);
}

void pb_global_config_init_defaults(PbGlobalConfig *g)
{
    g_return_if_fail(g != NULL);
    memset(g, 0, sizeof(*g));
    g->plugin_path = g_new0(char *, 2);
    g->plugin_path[0] = g_strdup(PB_PLUGINDIR);
    g->log_dir = g_strdup(PB_LOGDIR);
    g->state_dir = g_strdup(PB_STATEDIR);
    g->pid_file = g_strdup(PB_RUNDIR "/prebootd.pid");
    g->control_socket = g_strdup(PB_RUNDIR "/control.sock");
    g->control_group = NULL;
    g->user = NULL;
    g->syslog = FALSE;
    g->log_level = 2; /* transactions, the legacy services' default */
    g->log_size_mb = 15;
}

void pb_global_config_clear(PbGlobalConfig *g)
{
    if (g == NULL)
        return;
    g_strfreev(g->plugin_path);
    g_free(g->log_dir);
    g_free(g->state_dir);
    g_free(g->pid_file);
    g_free(g->control_socket);
    g_free(g->control_group);
    g_free(g->user);
    memset(g, 0, sizeof(*g));
}

void pb_global_config_copy(PbGlobalConfig *dst, const PbGlobalConfig *src)
{
    g_return_if_fail(dst != NULL && src != NULL);
    *dst = *src;
    dst->plugin_path = g_strdupv(src->plugin_path);
    dst->log_dir = g_strdup(src->log_dir);
    dst->state_dir = g_strdup(src->state_dir);
    dst->pid_file = g_strdup(src->pid_file);
    dst->control_socket = g_strdup(src->control_socket);
    dst->control_group = g_strdup(src->control_group);
    dst->user = g_strdup(src->user);
}

PbConfig *pb_config_new(const char *main_file)
{
    PbConfig *cfg = g_new0(PbConfig, 1);
    cfg->main_file = g_strdup(main_file);
    pb_global_config_init_defaults(&cfg->global);
    cfg->instances = g_ptr_array_new_with_free_func((GDestroyNotify)pb_instance_spec_free);
    cfg->warnings = g_ptr_array_new_with_free_func(g_free);
    return cfg;
}

void pb_config_free(PbConfig *cfg)
{
    if (cfg == NULL)
        return;
    g_free(cfg->main_file);
    pb_global_config_clear(&cfg->global);
    if (cfg->instances != NULL)
        g_ptr_array_unref(cfg->instances);
    if (cfg->warnings != NULL)
        g_ptr_array_unref(cfg->warnings);
    if (cfg->global_sources != NULL)
        g_hash_table_unref(cfg->global_sources);
    g_free(cfg);
}

PbInstanceSpec *pb_instance_spec_new_legacy(const char *path, const PbSource *where)
{
    g_return_val_if_fail(path != NULL, NULL);
    PbInstanceSpec *spec = g_new0(PbInstanceSpec, 1);
    g_autofree char *base = g_path_get_basename(path);
    gsize n = strlen(base);
    if (n > 5 && g_ascii_strcasecmp(base + n - 5, ".conf") == 0)
        base[n - 5] = '\0';
    /* The name becomes a directory under state_dir and a prebootctl word: whatever the
     * file is called ("/", "my file.conf"), keep it to the characters a YAML name may use. */
    for (char *c = base; *c != '\0'; c++)
        if (!g_ascii_isalnum(*c) && *c != '_' && *c != '-' && (*c != '.' || c == base))
            *c = '_';
    spec->name = g_strdup(base);
    spec->module = NULL;
    spec->enabled = TRUE;
    spec->legacy = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(spec->legacy, g_strdup(path));
    spec->entries = g_ptr_array_new_with_free_func((GDestroyNotify)pb_raw_entry_free);
    if (where != NULL) {
        spec->source = *where;
        spec->source.file = g_strdup(where->file);
    } else {
        spec->source.kind = PB_SOURCE_LEGACY;
        spec->source.file = g_strdup(path);
        spec->source.line = 0;
    }
    return spec;
}

/* ---- reading files -------------------------------------------------------------------- */

static gboolean read_text(const char *path, char **text, gsize *len, GError **error)
{
    g_autoptr(GError) local = NULL;
    if (g_file_get_contents(path, text, len, &local))
        return TRUE;
    const char *why = local->message;
    switch (local->code) {
    case G_FILE_ERROR_NOENT:
        why = "no such file or directory";
        break;
    case G_FILE_ERROR_ACCES:
        why = "permission denied";
        break;
    case G_FILE_ERROR_ISDIR:
        why = "is a directory";
        break;
    default:
        break;
    }
    g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_IO, "%s: cannot read: %s", path, why);
    return FALSE;
}

static gint compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.conf of a directory, sorted bytewise so the order never depends on the locale. */
static GPtrArray *list_conf_files(const char *dir, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(GDir) d = g_dir_open(dir, 0, &local);
    if (d == NULL) {
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_IO, "%s: cannot read: %s", dir,
                    local->message);
        return NULL;
    }
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    while ((n = g_dir_read_name(d)) != NULL) {
        gsize len = strlen(n);
        if (n[0] != '.' && len > 5 && g_ascii_strcasecmp(n + len - 5, ".conf") == 0)
            g_ptr_array_add(names, g_strdup(n));
    }
    g_ptr_array_sort(names, compare_names);
    for (guint i = 0; i < names->len; i++) {
        char *full = g_build_filename(dir, g_ptr_array_index(names, i), NULL);
        g_free(g_ptr_array_index(names, i));
        g_ptr_array_index(names, i) = full;
    }
    return names;
}

static char *where_text(const PbSource *src)
{
    if (src->file == NULL)
        return g_strdup("default");
    if (src->line == 0)
        return g_strdup(src->file);
    return g_strdup_printf("%s:%u", src->file, src->line);
}

/* A legacy-only instance naming a directory stands for every .conf file in it. */
static gboolean expand_legacy_dirs(PbConfig *cfg, GError **error)
{
    for (guint i = 0; i < cfg->instances->len; i++) {
        PbInstanceSpec *spec = g_ptr_array_index(cfg->instances, i);
        if (spec->module != NULL || spec->legacy->len != 1)
            continue;
        const char *dir = g_ptr_array_index(spec->legacy, 0);
        if (!g_file_test(dir, G_FILE_TEST_IS_DIR))
            continue;
        g_autoptr(GPtrArray) files = list_conf_files(dir, error);
        if (files == NULL)
            return FALSE;
        if (files->len == 0) {
            if (spec->source.line == 0) {
                g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_IO,
                            "%s: no .conf files in this directory", dir);
                return FALSE;
            }
            g_autofree char *where = where_text(&spec->source);
            g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_IO,
                        "%s: legacy: '%s' holds no .conf files", where, dir);
            return FALSE;
        }
        PbSource src = spec->source;
        src.file = g_strdup(spec->source.file);
        g_ptr_array_remove_index(cfg->instances, i);
        for (guint j = 0; j < files->len; j++)
            g_ptr_array_insert(cfg->instances, (gint)(i + j),
                               pb_instance_spec_new_legacy(
                                   g_ptr_array_index(files, j),
                                   src.kind == PB_SOURCE_LEGACY && src.line == 0 ? NULL : &src));
        g_free(src.file);
        i += files->len - 1;
    }
    return TRUE;
}

static gboolean has_suffix_ci(const char *s, const char *suffix)
{
    gsize n = strlen(s), m = strlen(suffix);
    return n >= m && g_ascii_strcasecmp(s + n - m, suffix) == 0;
}

PbConfig *pb_config_load(const char *path, GError **error)
{
    g_return_val_if_fail(path != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_autoptr(PbConfig) cfg = pb_config_new(path);
        g_ptr_array_add(cfg->instances, pb_instance_spec_new_legacy(path, NULL));
        if (!expand_legacy_dirs(cfg, error))
            return NULL;
        /* Checking the syntax now makes -c DIR fail at once, like -c FILE does. */
        for (guint i = 0; i < cfg->instances->len; i++) {
            PbInstanceSpec *spec = g_ptr_array_index(cfg->instances, i);
            const char *file = g_ptr_array_index(spec->legacy, 0);
            g_autofree char *text = NULL;
            gsize len = 0;
            if (!read_text(file, &text, &len, error))
                return NULL;
            g_autoptr(GPtrArray) entries =
                pb_legacy_parse_full(text, len, file, cfg->warnings, error);
            if (entries == NULL)
                return NULL;
        }
        return g_steal_pointer(&cfg);
    }

    g_autofree char *text = NULL;
    gsize len = 0;
    if (!read_text(path, &text, &len, error))
        return NULL;

    if (has_suffix_ci(path, ".yaml") || has_suffix_ci(path, ".yml")) {
        g_autoptr(PbConfig) cfg = pb_yaml_parse(text, len, path, error);
        if (cfg == NULL || !expand_legacy_dirs(cfg, error))
            return NULL;
        return g_steal_pointer(&cfg);
    }

    g_autoptr(PbConfig) cfg = pb_config_new(path);
    g_autoptr(GPtrArray) entries = pb_legacy_parse_full(text, len, path, cfg->warnings, error);
    if (entries == NULL)
        return NULL;
    g_ptr_array_add(cfg->instances, pb_instance_spec_new_legacy(path, NULL));
    return g_steal_pointer(&cfg);
}

/* ---- building one instance -------------------------------------------------------------- */

/* Keys match native names and legacy aliases case-insensitively; pb_param_table_check()
 * guarantees no key can mean two parameters. */
static int find_param(const pb_plugin *plugin, const char *key)
{
    for (guint i = 0; i < plugin->n_params; i++) {
        const pb_param *p = pb_plugin_param(plugin, i);
        if (g_ascii_strcasecmp(key, p->name) == 0 ||
            (p->legacy != NULL && g_ascii_strcasecmp(key, p->legacy) == 0))
            return (int)i;
    }
    return -1;
}

typedef struct {
    const pb_plugin *plugin;
    struct pb_config *cfg;
    gboolean *missing; /* REQUIRED and not given yet */
    GString *errors;
    GPtrArray *warnings;
    const PbRawEntry **seen; /* per parameter: the entry of the current file that set it */
} Build;

static void add_error(Build *b, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void add_error(Build *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (b->errors->len > 0)
        g_string_append_c(b->errors, '\n');
    g_string_append_vprintf(b->errors, fmt, ap);
    va_end(ap);
}

static void apply_entry(Build *b, const PbRawEntry *e)
{
    g_autofree char *where = where_text(&e->source);
    int i = find_param(b->plugin, e->key);
    if (i < 0) {
        g_ptr_array_add(b->warnings, g_strdup_printf("%s: unknown key '%s' (plugin %s)", where,
                                                     e->key, b->plugin->name));
        return;
    }
    const pb_param *p = pb_plugin_param(b->plugin, (guint)i);
    /* The reader already folds repeats of one spelling; a native name and its alias in
     * the same file ("root" and "TFTPDirectory") are caught here. */
    const PbRawEntry *prev = b->seen[i];
    if (prev != NULL && g_strcmp0(prev->source.file, e->source.file) == 0)
        g_ptr_array_add(b->warnings,
                        g_strdup_printf("%s: %s: also set at line %u (as %s); this later value "
                                        "wins",
                                        where, e->key, prev->source.line, prev->key));
    b->seen[i] = e;
    PbValue v;
    g_autoptr(GError) local = NULL;
    gboolean ok = e->list != NULL ? pb_param_parse_list(p, (const char *const *)e->list,
                                                        e->source.kind, &v, &local)
                                  : pb_param_parse(p, e->value, e->source.kind, &v, &local);
    if (!ok) {
        add_error(b, "%s: %s: %s", where, e->key, local->message);
        b->missing[i] = FALSE; /* reported already; "required" would say it twice */
        return;
    }
    if (p->flags & PB_PARAM_F_DEPRECATED)
        g_ptr_array_add(b->warnings,
                        g_strdup_printf("%s: %s: deprecated: %s", where, e->key,
                                        p->help != NULL ? p->help : "no reason given"));
    if (e->value == NULL && e->list == NULL) {
        /* "Key =" asks for the default: say so in --dump-config. */
        v.source.kind = PB_SOURCE_DEFAULT;
    } else {
        v.source = e->source;
        v.source.file = g_strdup(e->source.file);
    }
    pb_value_clear(&b->cfg->values[i]);
    b->cfg->values[i] = v;
    g_free(b->cfg->keys[i]);
    b->cfg->keys[i] = v.source.kind == PB_SOURCE_DEFAULT ? NULL : g_strdup(e->key);
    b->missing[i] = FALSE;
}

struct pb_config *pb_config_build(const pb_plugin *plugin, const PbInstanceSpec *spec,
                                  GPtrArray *warnings, GError **error)
{
    g_return_val_if_fail(plugin != NULL, NULL);
    g_return_val_if_fail(spec != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    if (!pb_param_table_check(plugin, error))
        return NULL;

    g_autoptr(pb_config) cfg = g_new0(struct pb_config, 1);
    cfg->plugin = plugin;
    cfg->n = plugin->n_params;
    cfg->values = g_new0(PbValue, cfg->n > 0 ? cfg->n : 1);
    cfg->keys = g_new0(char *, cfg->n + 1);
    cfg->origins = g_new0(char *, cfg->n + 1);
    g_autofree gboolean *missing = g_new0(gboolean, cfg->n > 0 ? cfg->n : 1);
    g_autoptr(GPtrArray) own_warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GString) errors = g_string_new(NULL);
    g_autofree const PbRawEntry **seen = g_new0(const PbRawEntry *, cfg->n > 0 ? cfg->n : 1);
    Build b = {plugin, cfg, missing, errors, warnings != NULL ? warnings : own_warnings, seen};

    for (guint i = 0; i < cfg->n; i++) {
        const pb_param *p = pb_plugin_param(plugin, i);
        if (p->flags & PB_PARAM_F_REQUIRED) {
            missing[i] = TRUE;
            cfg->values[i].text = g_strdup("");
            if (p->type == PB_PARAM_LIST)
                cfg->values[i].list = g_new0(char *, 1);
            continue;
        }
        /* Cannot fail: pb_param_table_check() parsed every default already. */
        if (!pb_param_parse(p, NULL, PB_SOURCE_DEFAULT, &cfg->values[i], error))
            return NULL;
    }

    for (guint f = 0; spec->legacy != NULL && f < spec->legacy->len; f++) {
        const char *file = g_ptr_array_index(spec->legacy, f);
        g_autofree char *text = NULL;
        gsize len = 0;
        if (!read_text(file, &text, &len, error))
            return NULL;
        g_autoptr(GPtrArray) entries = pb_legacy_parse_full(text, len, file, b.warnings, error);
        if (entries == NULL)
            return NULL;
        for (guint i = 0; i < entries->len; i++)
            apply_entry(&b, g_ptr_array_index(entries, i));
        /* entries is freed here: forget them before the next file. */
        memset(seen, 0, sizeof(*seen) * cfg->n);
    }

    for (guint i = 0; spec->entries != NULL && i < spec->entries->len; i++)
        apply_entry(&b, g_ptr_array_index(spec->entries, i));

    g_autofree char *where = where_text(&spec->source);
    for (guint i = 0; i < cfg->n; i++)
        if (missing[i])
            add_error(&b, "%s: %s: a value is required", where, pb_plugin_param(plugin, i)->name);

    if (errors->len > 0) {
        g_set_error_literal(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE, errors->str);
        return NULL;
    }
    return g_steal_pointer(&cfg);
}

void pb_config_destroy(struct pb_config *cfg)
{
    if (cfg == NULL)
        return;
    for (guint i = 0; i < cfg->n; i++) {
        pb_value_clear(&cfg->values[i]);
        if (cfg->keys)
            g_free(cfg->keys[i]);
        if (cfg->origins)
            g_free(cfg->origins[i]);
    }
    g_free(cfg->keys);
    g_free(cfg->origins);
    g_free(cfg->values);
    g_free(cfg);
}

int pb_config_find(const struct pb_config *cfg, const char *name)
{
    g_return_val_if_fail(cfg != NULL, -1);
    g_return_val_if_fail(name != NULL, -1);
    for (guint i = 0; i < cfg->n; i++)
        if (strcmp(pb_plugin_param(cfg->plugin, i)->name, name) == 0)
            return (int)i;
    return -1;
}

void pb_config_origin(struct pb_config *cfg, guint i, PbValueOrigin *out)
{
    g_return_if_fail(cfg != NULL && i < cfg->n && out != NULL);
    const PbValue *v = &cfg->values[i];
    const pb_param *p = pb_plugin_param(cfg->plugin, i);
    gboolean given = v->source.kind != PB_SOURCE_DEFAULT && v->source.file != NULL;
    out->kind = given ? (guint)v->source.kind : PB_ORIGIN_DEFAULT;
    out->file = given ? v->source.file : NULL;
    out->line = given ? v->source.line : 0;
    out->key = given && cfg->keys && cfg->keys[i] ? cfg->keys[i] : p->name;
    if (cfg->origins[i] == NULL) {
        if (!given)
            cfg->origins[i] = g_strdup_printf("%s (default)", p->name);
        else if (out->line > 0)
            cfg->origins[i] = g_strdup_printf("%s:%u: %s", out->file, out->line, out->key);
        else
            cfg->origins[i] = g_strdup_printf("%s: %s", out->file, out->key);
    }
    out->text = cfg->origins[i];
}

const PbValue *pb_config_value(const struct pb_config *cfg, const char *name)
{
    int i = pb_config_find(cfg, name);
    return i < 0 ? NULL : &cfg->values[i];
}

gboolean pb_config_value_equal(const struct pb_config *a, const struct pb_config *b, guint i)
{
    g_return_val_if_fail(a != NULL && b != NULL, FALSE);
    g_return_val_if_fail(i < a->n && i < b->n, FALSE);
    const PbValue *x = &a->values[i], *y = &b->values[i];
    if (g_strcmp0(x->text, y->text) != 0 || x->number != y->number)
        return FALSE;
    /* Compare lists item by item: "a, b" joined could also be one item "a, b". */
    if ((x->list == NULL) != (y->list == NULL))
        return FALSE;
    return x->list == NULL ||
           g_strv_equal((const char *const *)x->list, (const char *const *)y->list);
}

static void dump_scalar(GString *out, const char *s)
{
    gboolean plain = *s != '\0' && strpbrk(s, ":#[]{},\"'&*!|>%@`") == NULL &&
                     !g_ascii_isspace(s[0]) && !g_ascii_isspace(s[strlen(s) - 1]);
    if (plain) {
        g_string_append(out, s);
        return;
    }
    g_string_append_c(out, '"');
    for (const char *c = s; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\')
            g_string_append_c(out, '\\');
        g_string_append_c(out, *c);
    }
    g_string_append_c(out, '"');
}

void pb_config_dump(const struct pb_config *cfg, GString *out)
{
    g_return_if_fail(cfg != NULL && out != NULL);
    for (guint i = 0; i < cfg->n; i++) {
        const pb_param *p = pb_plugin_param(cfg->plugin, i);
        const PbValue *v = &cfg->values[i];
        g_string_append_printf(out, "  %s: ", p->name);
        if (p->type == PB_PARAM_LIST) {
            g_string_append_c(out, '[');
            for (guint j = 0; v->list != NULL && v->list[j] != NULL; j++) {
                if (j > 0)
                    g_string_append(out, ", ");
                dump_scalar(out, v->list[j]);
            }
            g_string_append_c(out, ']');
        } else {
            dump_scalar(out, v->text != NULL ? v->text : "");
        }
        g_autofree char *where = where_text(&v->source);
        g_string_append_printf(out, "    # %s",
                               v->source.kind == PB_SOURCE_DEFAULT ? "default" : where);
        if (v->source.kind == PB_SOURCE_LEGACY)
            g_string_append_printf(out, " (%s)", p->legacy != NULL ? p->legacy : p->name);
        g_string_append_c(out, '\n');
    }
}
