/* host-lifecycle.c - the lives of instances, read top to bottom: a record is prepared
 * from its spec (module loaded, configuration built), the set is put in dependency order
 * (providers of a service before those that require or want it), each is created and
 * started in that order, reloaded in stages, and stopped in the reverse order. The
 * host is "ready" when every configured instance runs. */
#include "build-config.h"

#include "host-private.h"

#include <string.h>

/* ---- instances ---------------------------------------------------------------------- */

pb_instance *inst_new(PbHost *host, const char *name)
{
    pb_instance *inst = g_new0(pb_instance, 1);
    inst->host = host;
    inst->name = g_strdup(name);
    inst->state = PB_INSTANCE_FAILED;
    inst->counters = g_hash_table_new(g_str_hash, g_str_equal);
    inst->counter_list = g_ptr_array_new_with_free_func(counter_free);
    return inst;
}

static void inst_fail(pb_instance *inst, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void inst_fail(pb_instance *inst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_free(inst->error);
    inst->error = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    inst->state = PB_INSTANCE_FAILED;
    pb_log_printf_sev(inst->host->log, PB_LOG_CRITICAL, PB_LOG_SEV_ERROR, "%s: %s", inst->name,
                      inst->error);
    if (inst->log)
        pb_log_printf_sev(inst->log, PB_LOG_CRITICAL, PB_LOG_SEV_ERROR, "not running: %s",
                          inst->error);
}

/* Stops and destroys the plugin's side; the record stays for status. Its services are
 * withdrawn before stop() so that consumers hear of it while the provider still works
 * (and can unregister from it). */
static void inst_shutdown(pb_instance *inst)
{
    const pb_plugin *p = inst->module ? inst->module->plugin : NULL;
    if (inst->self && p) {
        inst_withdraw_all(inst);
        if (inst->state == PB_INSTANCE_RUNNING && p->stop)
            p->stop(inst->self);
        inst_clear_loop(inst);
        inst_release_all(inst);
        p->destroy(inst->self);
        inst->self = NULL;
        inst_log_printf(inst, PB_LOG_CRITICAL, "stopped");
    }
    inst_clear_loop(inst);
    if (inst->state == PB_INSTANCE_RUNNING || inst->state == PB_INSTANCE_CREATED)
        inst->state = PB_INSTANCE_STOPPED;
}

void inst_free(gpointer data)
{
    pb_instance *inst = data;
    inst_shutdown(inst);
    pb_config_destroy(inst->config);
    if (inst->spec)
        pb_instance_spec_free(inst->spec);
    pb_log_free(inst->log);
    g_hash_table_destroy(inst->counters);
    g_ptr_array_unref(inst->counter_list);
    g_free(inst->state_dir);
    g_free(inst->error);
    g_free(inst->name);
    g_free(inst);
}

PbInstanceSpec *spec_steal(PbConfig *cfg, guint i)
{
    return g_ptr_array_steal_index(cfg->instances, i);
}

/* Loads the module and builds the configuration of one spec into a new instance. */
pb_instance *inst_prepare(PbHost *host, PbInstanceSpec *spec, GPtrArray *warnings)
{
    pb_instance *inst = inst_new(host, spec->name);
    inst->spec = spec;
    if (!spec->enabled) {
        inst->state = PB_INSTANCE_DISABLED;
        return inst;
    }
    g_autoptr(GError) error = NULL;
    inst->module = host_module(host, spec_module_name(spec), &error);
    if (inst->module == NULL) {
        inst_fail(inst, "%s", error->message);
        return inst;
    }
    inst->config = pb_config_build(inst->module->plugin, spec, warnings, &error);
    if (inst->config == NULL) {
        inst->bad_config = TRUE;
        inst_fail(inst, "%s", error->message);
        return inst;
    }
    inst->state = PB_INSTANCE_STOPPED;
    return inst;
}

void report_warnings(PbHost *host, GPtrArray *warnings, GString *report)
{
    for (guint i = 0; warnings && i < warnings->len; i++) {
        const char *w = g_ptr_array_index(warnings, i);
        host_log(host, PB_LOG_WARNING, "%s", w);
        if (report)
            g_string_append_printf(report, "warning: %s\n", w);
    }
}

/* ---- dependencies ---------------------------------------------------------------------- */

/* A 1.1 descriptor's service lists; NULL for a 1.0 plugin or an empty list. */
static const char *const *plugin_provides(const pb_plugin *p)
{
    return p && PB_HAS_FIELD(pb_plugin, p, provides) ? p->provides : NULL;
}

static const char *const *plugin_requires(const pb_plugin *p)
{
    return p && PB_HAS_FIELD(pb_plugin, p, requires) ? p->requires : NULL;
}

static const char *const *plugin_wants(const pb_plugin *p)
{
    return p && PB_HAS_FIELD(pb_plugin, p, wants) ? p->wants : NULL;
}

static gboolean list_has(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0)
            return TRUE;
    return FALSE;
}

static const pb_plugin *inst_plugin(const pb_instance *inst)
{
    return inst->module ? inst->module->plugin : NULL;
}

/* Whether a must start before b: a provides something b requires or wants. */
static gboolean provides_for(const pb_instance *a, const pb_instance *b)
{
    const pb_plugin *pa = inst_plugin(a), *pb = inst_plugin(b);
    if (a == b || pa == NULL || pb == NULL)
        return FALSE;
    for (const char *const *s = plugin_provides(pa); s && *s; s++)
        if (list_has(plugin_requires(pb), *s) || list_has(plugin_wants(pb), *s))
            return TRUE;
    return FALSE;
}

const char *pb_plugin_unprovided(const pb_plugin *p, GPtrArray *configured)
{
    for (const char *const *r = plugin_requires(p); r && *r; r++) {
        gboolean found = FALSE;
        for (guint i = 0; i < configured->len && !found; i++)
            found = list_has(plugin_provides(g_ptr_array_index(configured, i)), *r);
        if (!found)
            return *r;
    }
    return NULL;
}

/* The instances in start order: providers before their consumers, otherwise in
 * configuration order (a stable topological sort). A cycle is logged and broken at
 * the first instance configured. */
GPtrArray *pb_host_start_order(PbHost *host, GPtrArray *list)
{
    guint n = list->len;
    GPtrArray *out = g_ptr_array_sized_new(n);
    g_autofree gboolean *placed = g_new0(gboolean, n + 1);
    for (guint round = 0; round < n; round++) {
        guint pick = n;
        for (guint i = 0; i < n && pick == n; i++) {
            if (placed[i])
                continue;
            gboolean ready = TRUE;
            for (guint j = 0; j < n && ready; j++)
                if (!placed[j] &&
                    provides_for(g_ptr_array_index(list, j), g_ptr_array_index(list, i)))
                    ready = FALSE;
            if (ready)
                pick = i;
        }
        if (pick == n) {
            for (pick = 0; placed[pick]; pick++)
                ;
            host_log(host, PB_LOG_WARNING,
                     "%s: its services depend on each other in a cycle; starting it in "
                     "configuration order",
                     ((pb_instance *)g_ptr_array_index(list, pick))->name);
        }
        placed[pick] = TRUE;
        g_ptr_array_add(out, g_ptr_array_index(list, pick));
    }
    return out;
}

/* Why inst cannot start for want of a required service, or NULL. Providers started
 * first (dependency order), so what is not published now will not be. */
static char *missing_requirement(pb_instance *inst)
{
    PbHost *host = inst->host;
    for (const char *const *r = plugin_requires(inst_plugin(inst)); r && *r; r++) {
        GPtrArray *published = g_hash_table_lookup(host->services, *r);
        if (published != NULL && published->len > 0)
            continue;
        for (guint i = 0; i < host->instances->len; i++) {
            pb_instance *other = g_ptr_array_index(host->instances, i);
            if (other != inst && list_has(plugin_provides(inst_plugin(other)), *r))
                return g_strdup_printf("it requires service %s, which %s provides, but %s is "
                                       "%s%s%s",
                                       *r, other->name, other->name,
                                       pb_instance_state_name(other->state),
                                       other->error ? ": " : "", other->error ? other->error : "");
        }
        return g_strdup_printf("it requires service %s, which no configured instance provides", *r);
    }
    return NULL;
}

gboolean pb_host_ready(PbHost *host, GString *why)
{
    g_return_val_if_fail(host != NULL, FALSE);
    gboolean ready = TRUE;
    for (guint i = 0; i < host->instances->len; i++) {
        pb_instance *inst = g_ptr_array_index(host->instances, i);
        if (inst->state == PB_INSTANCE_RUNNING || inst->state == PB_INSTANCE_DISABLED)
            continue;
        ready = FALSE;
        if (why)
            g_string_append_printf(why, "%s: %s%s%s\n", inst->name,
                                   pb_instance_state_name(inst->state), inst->error ? ": " : "",
                                   inst->error ? inst->error : "");
    }
    return ready;
}

/* ---- one instance -------------------------------------------------------------------- */

/* Creates and starts one instance from its module and built configuration. */
static gboolean inst_run(pb_instance *inst)
{
    const pb_plugin *p = inst->module->plugin;
    g_autoptr(GError) log_error = NULL;
    if (!inst_configure_log(inst, inst->config, &log_error))
        host_log(inst->host, PB_LOG_WARNING, "%s: log file: %s", inst->name, log_error->message);

    struct pb_err err = {0};
    g_autofree char *missing = missing_requirement(inst);
    if (missing != NULL) {
        inst_fail(inst, "not started: %s", missing);
        return FALSE;
    }
    inst->self = p->create(pb_host_table(), inst, inst->config, &err);
    if (inst->self == NULL) {
        inst_clear_loop(inst);
        inst_release_all(inst);
        inst_fail(inst, "create failed: %s", err.message ? err.message : "(no reason given)");
        g_free(err.message);
        return FALSE;
    }
    inst->state = PB_INSTANCE_CREATED;
    if (p->start && !p->start(inst->self, &err)) {
        inst_release_all(inst);
        inst_clear_loop(inst);
        p->destroy(inst->self);
        inst->self = NULL;
        inst_fail(inst, "start failed: %s", err.message ? err.message : "(no reason given)");
        g_free(err.message);
        return FALSE;
    }
    g_free(err.message);
    inst->state = PB_INSTANCE_RUNNING;
    inst->started_us = g_get_monotonic_time();
    g_clear_pointer(&inst->error, g_free);
    inst_log_printf(inst, PB_LOG_CRITICAL, "started (%s %s)", p->name,
                    p->version ? p->version : "");
    return TRUE;
}

/* ---- apply, reload, stop ----------------------------------------------------------------- */

gboolean pb_host_apply(PbHost *host, PbConfig *cfg, GString *report, GError **error)
{
    g_return_val_if_fail(host != NULL && cfg != NULL, FALSE);
    g_autoptr(PbConfig) owned = cfg; /* ours from here on, whatever happens */
    (void)owned;
    g_autoptr(GString) local = report ? NULL : g_string_new(NULL);
    if (report == NULL)
        report = local;
    report_warnings(host, cfg->warnings, report);
    resolve_specs(host, cfg, report);
    if (!check_names(cfg, error))
        return FALSE;

    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) fresh = g_ptr_array_new();
    while (cfg->instances->len > 0) {
        pb_instance *inst = inst_prepare(host, spec_steal(cfg, 0), warnings);
        g_ptr_array_add(host->instances, inst);
        g_ptr_array_add(fresh, inst);
    }
    report_warnings(host, warnings, report);
    /* Providers first, so that a consumer's watch reports them from its start(); a
     * failure affects only its own instance (and those that require it). */
    g_autoptr(GPtrArray) order = pb_host_start_order(host, fresh);
    for (guint i = 0; i < order->len; i++) {
        pb_instance *inst = g_ptr_array_index(order, i);
        if (inst->state == PB_INSTANCE_STOPPED && !inst_run(inst))
            g_string_append_printf(report, "%s: %s\n", inst->name, inst->error);
        else if (inst->state == PB_INSTANCE_FAILED)
            g_string_append_printf(report, "%s: %s\n", inst->name, inst->error);
    }
    return TRUE;
}

pb_instance *find_instance(GPtrArray *list, const char *name)
{
    for (guint i = 0; i < list->len; i++) {
        pb_instance *inst = g_ptr_array_index(list, i);
        if (g_strcmp0(inst->name, name) == 0)
            return inst;
    }
    return NULL;
}

typedef struct {
    pb_instance *inst; /* the running instance */
    pb_instance *next; /* the prepared replacement record (config, spec) */
    void *staged;      /* from reload_prepare */
    gboolean recreate; /* no reload support, or the module changed */
} PbReloadStep;

static void report_restart_params(pb_instance *inst, const struct pb_config *old,
                                  const struct pb_config *cfg, GString *report)
{
    for (guint i = 0; old && cfg && i < cfg->n && i < old->n; i++) {
        const pb_param *p = pb_plugin_param(cfg->plugin, i);
        if ((p->flags & PB_PARAM_F_RESTART) && !pb_config_value_equal(old, cfg, i)) {
            g_string_append_printf(report, "%s: %s changed to '%s'; it takes effect on restart\n",
                                   inst->name, p->name,
                                   cfg->values[i].text ? cfg->values[i].text : "");
            inst_log_printf(inst, PB_LOG_WARNING, "%s changed; it takes effect on restart",
                            p->name);
        }
    }
}

static gboolean configs_equal(const struct pb_config *a, const struct pb_config *b)
{
    if (a == NULL || b == NULL || a->plugin != b->plugin || a->n != b->n)
        return FALSE;
    for (guint i = 0; i < a->n; i++)
        if (!pb_config_value_equal(a, b, i))
            return FALSE;
    return TRUE;
}

gboolean pb_host_reload(PbHost *host, PbConfig *cfg, GString *report, GError **error)
{
    g_return_val_if_fail(host != NULL && cfg != NULL, FALSE);
    g_autoptr(PbConfig) owned = cfg; /* ours from here on, whatever happens */
    (void)owned;
    g_autoptr(GString) local = report ? NULL : g_string_new(NULL);
    if (report == NULL)
        report = local;
    report_warnings(host, cfg->warnings, report);
    if (!resolve_specs(host, cfg, report)) {
        g_autofree char *text = g_strchomp(g_strdup(report->str));
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_UNKNOWN,
                    "reload refused, the running configuration stays: %s", text);
        return FALSE;
    }
    if (!check_names(cfg, error))
        return FALSE;

    /* Stage 1: build every new configuration; nothing running is touched. */
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) next = g_ptr_array_new_with_free_func(inst_free);
    while (cfg->instances->len > 0)
        g_ptr_array_add(next, inst_prepare(host, spec_steal(cfg, 0), warnings));
    report_warnings(host, warnings, report);

    GArray *steps = g_array_new(FALSE, TRUE, sizeof(PbReloadStep));
    gboolean failed = FALSE;
    g_autoptr(GString) why = g_string_new(NULL);
    for (guint i = 0; i < next->len; i++) {
        pb_instance *n = g_ptr_array_index(next, i);
        pb_instance *cur = find_instance(host->instances, n->name);
        /* A bad value anywhere refuses the file, as --check-config would. A module that
         * cannot be loaded refuses the reload only when it would take a running instance
         * down; one that was failing already stays failed and is reported. */
        if (n->state == PB_INSTANCE_FAILED &&
            (n->bad_config || (cur && cur->state == PB_INSTANCE_RUNNING))) {
            g_string_append_printf(why, "%s: %s\n", n->name, n->error);
            failed = TRUE;
            continue;
        }
        if (n->state == PB_INSTANCE_FAILED)
            continue;
        if (cur == NULL || cur->state != PB_INSTANCE_RUNNING || n->state == PB_INSTANCE_DISABLED)
            continue;
        PbReloadStep step = {.inst = cur, .next = n};
        const pb_plugin *p = cur->module->plugin;
        if (n->module->plugin != p || p->reload_prepare == NULL) {
            step.recreate = !configs_equal(cur->config, n->config) || n->module->plugin != p;
        } else {
            struct pb_err err = {0};
            step.staged = p->reload_prepare(cur->self, n->config, &err);
            if (step.staged == NULL) {
                g_string_append_printf(why, "%s: %s\n", cur->name,
                                       err.message ? err.message : "reload refused");
                failed = TRUE;
            }
            g_free(err.message);
        }
        g_array_append_val(steps, step);
    }

    if (failed) {
        for (guint i = 0; i < steps->len; i++) {
            PbReloadStep *s = &g_array_index(steps, PbReloadStep, i);
            if (s->staged)
                s->inst->module->plugin->reload_abort(s->inst->self, s->staged);
        }
        g_array_unref(steps);
        g_strchomp(why->str);
        host_log(host, PB_LOG_WARNING, "reload refused, the running configuration stays: %s",
                 why->str);
        g_set_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE,
                    "reload refused, the running configuration stays:\n%s", why->str);
        return FALSE;
    }

    /* Stage 2: commit. Nothing below can make the reload as a whole fail. */
    for (guint i = 0; i < steps->len; i++) {
        PbReloadStep *s = &g_array_index(steps, PbReloadStep, i);
        pb_instance *cur = s->inst, *n = s->next;
        if (s->staged) {
            cur->module->plugin->reload_commit(cur->self, s->staged);
            report_restart_params(cur, cur->config, n->config, report);
            /* Hand the new configuration and spec to the running record. */
            struct pb_config *old = cur->config;
            cur->config = n->config;
            n->config = old;
            PbInstanceSpec *oldspec = cur->spec;
            cur->spec = n->spec;
            n->spec = oldspec;
            g_autoptr(GError) log_error = NULL;
            if (!inst_configure_log(cur, cur->config, &log_error))
                inst_log_printf(cur, PB_LOG_WARNING, "log file: %s", log_error->message);
            inst_log_printf(cur, PB_LOG_CRITICAL, "configuration reloaded");
        }
    }

    /* Recreate what cannot reload in place, start what is new, stop what is gone. */
    g_autoptr(GPtrArray) old = g_ptr_array_new();
    while (host->instances->len > 0)
        g_ptr_array_add(old, g_ptr_array_steal_index(host->instances, 0));
    /* In dependency order, so that a recreated provider is back before its consumers
     * start; host->instances is put back in configuration order afterwards. */
    g_autoptr(GPtrArray) order = pb_host_start_order(host, next);
    g_autoptr(GPtrArray) started = g_ptr_array_new();
    for (guint o = 0; o < order->len; o++) {
        pb_instance *n = g_ptr_array_index(order, o);
        guint i = 0;
        g_ptr_array_find(next, n, &i);
        pb_instance *cur = find_instance(old, n->name);
        gboolean keep = FALSE;
        if (cur && cur->state == PB_INSTANCE_RUNNING && n->state != PB_INSTANCE_DISABLED) {
            keep = TRUE;
            for (guint k = 0; k < steps->len; k++) {
                PbReloadStep *s = &g_array_index(steps, PbReloadStep, k);
                if (s->inst == cur && s->recreate)
                    keep = FALSE;
            }
        }
        if (keep) {
            g_ptr_array_remove(old, cur);
            g_ptr_array_add(started, cur);
            continue;
        }
        /* Take the new record: move it out of `next` without freeing it. */
        g_ptr_array_index(next, i) = inst_new(host, n->name);
        if (cur) {
            g_ptr_array_remove(old, cur);
            inst_free(cur);
            g_string_append_printf(report, "%s: restarted with its new configuration\n", n->name);
        }
        g_ptr_array_add(started, n);
        if ((n->state == PB_INSTANCE_STOPPED && !inst_run(n)) || n->state == PB_INSTANCE_FAILED)
            g_string_append_printf(report, "%s: not running: %s\n", n->name, n->error);
    }
    /* Back to configuration order (status lists instances as configured). */
    for (guint i = 0; i < next->len; i++) {
        const char *name = ((pb_instance *)g_ptr_array_index(next, i))->name;
        pb_instance *inst = find_instance(started, name);
        if (inst)
            g_ptr_array_add(host->instances, inst);
    }
    for (guint i = old->len; i > 0; i--) {
        pb_instance *gone = g_ptr_array_index(old, i - 1);
        g_string_append_printf(report, "%s: removed from the configuration, stopped\n", gone->name);
        inst_free(gone);
    }
    g_array_unref(steps);
    host_log(host, PB_LOG_CRITICAL, "configuration reloaded");
    return TRUE;
}

void pb_host_stop_all(PbHost *host)
{
    g_return_if_fail(host != NULL);
    /* The reverse of the start order: consumers stop before the services they use. */
    g_autoptr(GPtrArray) order = pb_host_start_order(host, host->instances);
    for (guint i = order->len; i > 0; i--)
        inst_shutdown(g_ptr_array_index(order, i - 1));
}
