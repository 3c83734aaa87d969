/* host.c - the plugin host object and its front end: finding modules (by name, path or
 * legacy file), resolving and checking configured instances, --check-config and
 * --dump-config, and the status, stats and command views. The instances' lives are
 * host-lifecycle.c's and the table plugins call is host-services.c's. The core never
 * names a plugin: it knows modules only by what their descriptors declare. */
#include "build-config.h"

#include "host-private.h"

#include "conf-yaml.h"

#include "os.h"

#include <string.h>

const char *pb_instance_state_name(PbInstanceState s)
{
    switch (s) {
    case PB_INSTANCE_DISABLED:
        return "disabled";
    case PB_INSTANCE_FAILED:
        return "failed";
    case PB_INSTANCE_CREATED:
        return "created";
    case PB_INSTANCE_RUNNING:
        return "running";
    case PB_INSTANCE_STOPPED:
        return "stopped";
    }
    return "unknown";
}

/* ---- modules ------------------------------------------------------------------------- */

PbModule *host_module(PbHost *host, const char *name_or_path, GError **error)
{
    PbModule *m = g_hash_table_lookup(host->modules, name_or_path);
    if (m)
        return m;
    const pb_plugin *builtin = g_hash_table_lookup(host->builtins, name_or_path);
    m = builtin
            ? pb_module_new_builtin(builtin, error)
            : pb_module_open((const char *const *)host->global.plugin_path, name_or_path, error);
    if (m)
        g_hash_table_insert(host->modules, g_strdup(name_or_path), m);
    return m;
}

static gboolean plugin_owns_file(const pb_plugin *p, const char *base)
{
    for (const char *const *f = p->legacy_files; f && *f; f++)
        if (g_ascii_strcasecmp(*f, base) == 0)
            return TRUE;
    return FALSE;
}

/* Finds the module that declares a legacy file basename as its own. */
static PbModule *host_module_for_legacy(PbHost *host, const char *file, GError **error)
{
    g_autofree char *base = g_path_get_basename(file);
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, host->builtins);
    while (g_hash_table_iter_next(&it, &key, &value))
        if (plugin_owns_file(value, base))
            return host_module(host, key, error);
    g_autoptr(GPtrArray) files = pb_module_scan((const char *const *)host->global.plugin_path);
    for (guint i = 0; i < files->len; i++) {
        const char *path = g_ptr_array_index(files, i);
        g_autofree char *stem = g_path_get_basename(path);
        char *dot = strrchr(stem, '.');
        if (dot)
            *dot = '\0';
        g_autoptr(GError) ignored = NULL;
        PbModule *m = host_module(host, stem, &ignored);
        if (m && plugin_owns_file(m->plugin, base))
            return m;
    }
    g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_UNKNOWN,
                "%s: no plugin on the plugin path owns legacy file %s", file, base);
    return NULL;
}

const char *spec_module_name(const PbInstanceSpec *spec)
{
    return spec->module ? spec->module : "";
}

/* Legacy-only specs (module NULL) find their plugin by the file's basename; when the YAML
 * also declares an instance of that plugin, the file attaches to it (YAML keys win). */
gboolean resolve_specs(PbHost *host, PbConfig *cfg, GString *report)
{
    gboolean ok = TRUE;
    for (guint i = 0; i < cfg->instances->len;) {
        PbInstanceSpec *spec = g_ptr_array_index(cfg->instances, i);
        if (spec->module != NULL) {
            i++;
            continue;
        }
        const char *file =
            spec->legacy && spec->legacy->len ? g_ptr_array_index(spec->legacy, 0) : spec->name;
        g_autoptr(GError) error = NULL;
        PbModule *m = host_module_for_legacy(host, file ? file : "?", &error);
        if (m == NULL) {
            g_string_append_printf(report, "%s\n", error->message);
            g_ptr_array_remove_index(cfg->instances, i);
            ok = FALSE;
            continue;
        }
        PbInstanceSpec *owner = NULL;
        for (guint j = 0; j < cfg->instances->len; j++) {
            PbInstanceSpec *other = g_ptr_array_index(cfg->instances, j);
            if (other == spec || other->module == NULL)
                continue;
            PbModule *om = g_hash_table_lookup(host->modules, other->module);
            if (g_strcmp0(other->module, m->name) == 0 || (om && om->plugin == m->plugin)) {
                owner = other;
                break;
            }
        }
        if (owner) {
            if (owner->legacy == NULL)
                owner->legacy = g_ptr_array_new_with_free_func(g_free);
            for (guint k = 0; spec->legacy && k < spec->legacy->len; k++)
                g_ptr_array_add(owner->legacy, g_strdup(g_ptr_array_index(spec->legacy, k)));
            g_ptr_array_remove_index(cfg->instances, i);
            continue;
        }
        spec->module = g_strdup(m->name);
        /* The reader names such an instance after the file ("novell-tftp"), as the
         * legacy service was named. */
        if (spec->name == NULL)
            spec->name = g_strdup(m->name);
        i++;
    }
    return ok;
}

gboolean check_names(PbConfig *cfg, GError **error)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < cfg->instances->len; i++) {
        PbInstanceSpec *spec = g_ptr_array_index(cfg->instances, i);
        if (spec->name == NULL) {
            g_autofree char *base = g_path_get_basename(spec_module_name(spec));
            char *dot = strrchr(base, '.');
            if (dot && dot != base)
                *dot = '\0';
            spec->name = g_strdup(base);
        }
        PbInstanceSpec *other = g_hash_table_lookup(seen, spec->name);
        if (other) {
            g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SCHEMA,
                        "%s:%u: instance name '%s' is already used at %s:%u",
                        spec->source.file ? spec->source.file : "?", spec->source.line, spec->name,
                        other->source.file ? other->source.file : "?", other->source.line);
            return FALSE;
        }
        g_hash_table_insert(seen, spec->name, spec);
    }
    return TRUE;
}

/* ---- the host API ------------------------------------------------------------------------ */

PbHost *pb_host_new(const PbGlobalConfig *global)
{
    g_return_val_if_fail(global != NULL, NULL);
    PbHost *host = g_new0(PbHost, 1);
    pb_global_config_copy(&host->global, global);
    host->log = pb_log_new("prebootd");
    pb_log_configure(host->log, NULL, host->global.log_level, 0, TRUE, FALSE, NULL);
    host->instances = g_ptr_array_new_with_free_func(inst_free);
    host->modules =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)pb_module_close);
    host->builtins = g_hash_table_new(g_str_hash, g_str_equal);
    host->services =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
    host->commands = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, command_free);
    host->watchers = g_ptr_array_new_with_free_func(service_watch_free);
    g_mutex_init(&host->defer_lock);
    return host;
}

void pb_host_free(PbHost *host)
{
    if (host == NULL)
        return;
    pb_host_stop_all(host);
    g_ptr_array_unref(host->instances);
    g_hash_table_destroy(host->commands);
    g_ptr_array_unref(host->watchers);
    g_hash_table_destroy(host->services);
    g_hash_table_destroy(host->modules);
    g_hash_table_destroy(host->builtins);
    pb_log_free(host->log);
    pb_global_config_clear(&host->global);
    g_mutex_clear(&host->defer_lock);
    g_free(host);
}

void pb_host_set_foreground(PbHost *host, gboolean foreground)
{
    g_return_if_fail(host != NULL);
    host->foreground = foreground;
}

PbLog *pb_host_log(PbHost *host)
{
    g_return_val_if_fail(host != NULL, NULL);
    return host->log;
}

void pb_host_add_builtin(PbHost *host, const pb_plugin *plugin)
{
    g_return_if_fail(host != NULL && plugin != NULL && plugin->name != NULL);
    g_hash_table_insert(host->builtins, (gpointer)plugin->name, (gpointer)plugin);
}

gboolean pb_host_check(PbHost *host, PbConfig *cfg, GString *report)
{
    g_return_val_if_fail(host != NULL && cfg != NULL && report != NULL, FALSE);
    gboolean ok = resolve_specs(host, cfg, report);
    for (guint i = 0; cfg->warnings && i < cfg->warnings->len; i++)
        g_string_append_printf(report, "warning: %s\n",
                               (const char *)g_ptr_array_index(cfg->warnings, i));
    g_autoptr(GError) error = NULL;
    if (!check_names(cfg, &error)) {
        g_string_append_printf(report, "%s\n", error->message);
        return FALSE;
    }
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) plugins = g_ptr_array_new(); /* of enabled instances, or NULL */
    for (guint i = 0; i < cfg->instances->len; i++) {
        PbInstanceSpec *spec = g_ptr_array_index(cfg->instances, i);
        g_clear_error(&error);
        PbModule *m = host_module(host, spec_module_name(spec), &error);
        g_ptr_array_add(plugins, m && spec->enabled ? (gpointer)m->plugin : NULL);
        if (m == NULL) {
            g_string_append_printf(report, "%s:%u: %s\n",
                                   spec->source.file ? spec->source.file : cfg->main_file,
                                   spec->source.line, error->message);
            ok = FALSE;
            continue;
        }
        g_autoptr(pb_config) built = pb_config_build(m->plugin, spec, warnings, &error);
        if (built == NULL) {
            g_string_append_printf(report, "%s\n", error->message);
            ok = FALSE;
            continue;
        }
        /* The plugin's own checks, those create() would make (ABI 1.1). */
        const pb_plugin *p = m->plugin;
        if (PB_HAS_FIELD(pb_plugin, p, check) && p->check != NULL) {
            struct pb_err err = {0};
            if (!p->check(pb_host_table(), built, &err)) {
                g_string_append_printf(report, "%s: %s\n", spec->name,
                                       err.message ? err.message : "configuration refused");
                ok = FALSE;
            }
            g_free(err.message);
        }
    }
    /* A required service that no enabled instance provides would fail the start. */
    g_autoptr(GPtrArray) providers = g_ptr_array_new();
    for (guint i = 0; i < plugins->len; i++)
        if (g_ptr_array_index(plugins, i) != NULL)
            g_ptr_array_add(providers, g_ptr_array_index(plugins, i));
    for (guint i = 0; i < plugins->len; i++) {
        const pb_plugin *p = g_ptr_array_index(plugins, i);
        const char *missing = p ? pb_plugin_unprovided(p, providers) : NULL;
        if (missing == NULL)
            continue;
        PbInstanceSpec *spec = g_ptr_array_index(cfg->instances, i);
        g_string_append_printf(report,
                               "%s:%u: %s requires service %s, which no enabled instance "
                               "provides\n",
                               spec->source.file ? spec->source.file : cfg->main_file,
                               spec->source.line, spec->name, missing);
        ok = FALSE;
    }
    for (guint i = 0; i < warnings->len; i++)
        g_string_append_printf(report, "warning: %s\n",
                               (const char *)g_ptr_array_index(warnings, i));
    return ok;
}

gboolean pb_host_dump(PbHost *host, PbConfig *cfg, GString *out, GError **error)
{
    g_return_val_if_fail(host != NULL && cfg != NULL && out != NULL, FALSE);
    g_autoptr(GString) report = g_string_new(NULL);
    if (!resolve_specs(host, cfg, report)) {
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_UNKNOWN, "%s", g_strchomp(report->str));
        return FALSE;
    }
    if (!check_names(cfg, error))
        return FALSE;
    g_string_append_printf(out, "# effective configuration of %s\n",
                           cfg->main_file ? cfg->main_file : "(defaults)");
    pb_config_dump_global(cfg, out);
    g_string_append(out, "plugins:\n");
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < cfg->instances->len; i++) {
        PbInstanceSpec *spec = g_ptr_array_index(cfg->instances, i);
        PbModule *m = host_module(host, spec_module_name(spec), error);
        if (m == NULL)
            return FALSE;
        g_autoptr(pb_config) built = pb_config_build(m->plugin, spec, warnings, error);
        if (built == NULL)
            return FALSE;
        g_string_append_printf(
            out, "  - module: %s    # %s %s, %s\n    name: %s\n    enabled: %s\n",
            spec_module_name(spec), m->plugin->name, m->plugin->version ? m->plugin->version : "",
            m->path, spec->name, spec->enabled ? "yes" : "no");
        g_autoptr(GString) body = g_string_new(NULL);
        pb_config_dump(built, body);
        /* pb_config_dump indents by two; nest it under the list item. */
        g_auto(GStrv) lines = g_strsplit(body->str, "\n", -1);
        for (char **l = lines; *l; l++)
            if (**l)
                g_string_append_printf(out, "  %s\n", *l);
    }
    for (guint i = 0; i < warnings->len; i++)
        g_string_append_printf(out, "# warning: %s\n",
                               (const char *)g_ptr_array_index(warnings, i));
    return TRUE;
}
pb_instance *pb_host_find(PbHost *host, const char *name)
{
    g_return_val_if_fail(host != NULL && name != NULL, NULL);
    return find_instance(host->instances, name);
}
static void format_uptime(GString *out, gint64 us)
{
    gint64 s = us / G_USEC_PER_SEC;
    g_string_append_printf(out, "%" G_GINT64_FORMAT "d %02d:%02d:%02d", s / 86400,
                           (int)(s / 3600 % 24), (int)(s / 60 % 60), (int)(s % 60));
}

void pb_host_status(PbHost *host, GString *out)
{
    g_return_if_fail(host != NULL && out != NULL);
    gint64 now = g_get_monotonic_time();
    for (guint i = 0; i < host->instances->len; i++) {
        pb_instance *inst = g_ptr_array_index(host->instances, i);
        const pb_plugin *p = inst->module ? inst->module->plugin : NULL;
        g_string_append_printf(out, "%s: %s", inst->name, pb_instance_state_name(inst->state));
        if (inst->state == PB_INSTANCE_FAILED && inst->error)
            g_string_append_printf(out, ": %s", inst->error);
        g_string_append_c(out, '\n');
        if (p)
            g_string_append_printf(out, "    module: %s %s (%s)\n", p->name,
                                   p->version ? p->version : "", inst->module->path);
        if (inst->state == PB_INSTANCE_RUNNING) {
            g_string_append(out, "    uptime: ");
            format_uptime(out, now - inst->started_us);
            g_string_append_c(out, '\n');
            if (p->status) {
                struct pb_status st = {.out = out};
                p->status(inst->self, &st);
            }
        }
    }
}

void pb_host_stats(PbHost *host, GString *out)
{
    g_return_if_fail(host != NULL && out != NULL);
    for (guint i = 0; i < host->instances->len; i++) {
        pb_instance *inst = g_ptr_array_index(host->instances, i);
        for (guint k = 0; k < inst->counter_list->len; k++) {
            pb_counter *c = g_ptr_array_index(inst->counter_list, k);
            g_string_append_printf(out, "%s: %s = %" G_GINT64_FORMAT "\n", inst->name, c->name,
                                   c->value);
        }
    }
}

gboolean pb_host_command(PbHost *host, int argc, const char *const *argv, GString *out)
{
    g_return_val_if_fail(host != NULL && out != NULL, FALSE);
    if (argc < 1 || argv[0] == NULL) {
        g_string_append(out, "no command given\n");
        return FALSE;
    }
    PbCommand *c = g_hash_table_lookup(host->commands, argv[0]);
    if (c == NULL) {
        g_string_append_printf(out, "unknown command '%s'", argv[0]);
        if (g_hash_table_size(host->commands) > 0) {
            g_autofree const char **verbs =
                (const char **)g_hash_table_get_keys_as_array(host->commands, NULL);
            g_autofree char *list = g_strjoinv(", ", (char **)verbs);
            g_string_append_printf(out, " (plugin commands: %s)", list);
        }
        g_string_append_c(out, '\n');
        return FALSE;
    }
    struct pb_reply reply = {.out = out};
    return c->fn(c->inst->self, argc, argv, &reply);
}

static gint command_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(((const PbCommand *)a)->verb, ((const PbCommand *)b)->verb);
}

void pb_host_command_help(PbHost *host, GString *out)
{
    g_return_if_fail(host != NULL && out != NULL);
    GList *cmds = g_list_sort(g_hash_table_get_values(host->commands), command_cmp);
    for (GList *l = cmds; l; l = l->next) {
        const PbCommand *c = l->data;
        g_string_append_printf(out, "  %s    (%s)\n", c->usage, c->inst->name);
    }
    g_list_free(cmds);
}

void pb_host_list_modules(PbHost *host, GString *out)
{
    g_return_if_fail(host != NULL && out != NULL);
    g_autoptr(GPtrArray) files = pb_module_scan((const char *const *)host->global.plugin_path);
    for (guint i = 0; i < files->len; i++) {
        const char *path = g_ptr_array_index(files, i);
        g_autoptr(GError) error = NULL;
        g_autoptr(PbModule) m =
            pb_module_open((const char *const *)host->global.plugin_path, path, &error);
        if (m == NULL) {
            g_string_append_printf(out, "%s: refused: %s\n", path, error->message);
            continue;
        }
        const pb_plugin *p = m->plugin;
        g_string_append_printf(out, "%-12s %-8s ABI %u.%u  %s\n             %s\n", p->name,
                               p->version ? p->version : "-", p->abi_major, p->abi_minor, m->path,
                               p->description ? p->description : "");
    }
    if (files->len == 0) {
        g_autofree char *joined =
            host->global.plugin_path ? g_strjoinv(":", host->global.plugin_path) : g_strdup("");
        g_string_append_printf(out, "no modules found on the plugin path (%s)\n", joined);
    }
}

PbInstanceState pb_instance_get_state(pb_instance *inst)
{
    g_return_val_if_fail(inst != NULL, PB_INSTANCE_FAILED);
    return inst->state;
}

const char *pb_instance_get_error(pb_instance *inst)
{
    g_return_val_if_fail(inst != NULL, NULL);
    return inst->error;
}

void *pb_instance_get_self(pb_instance *inst)
{
    g_return_val_if_fail(inst != NULL, NULL);
    return inst->self;
}

gint64 pb_host_counter_value(PbHost *host, const char *instance_name, const char *counter)
{
    g_return_val_if_fail(host != NULL && instance_name != NULL && counter != NULL, -1);
    pb_instance *inst = pb_host_find(host, instance_name);
    if (inst == NULL)
        return -1;
    pb_counter *c = g_hash_table_lookup(inst->counters, counter);
    return c ? c->value : -1;
}