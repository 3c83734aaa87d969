/* host.c - the plugin host: instance lifecycle, staged reload, and the pb_host services
 * table every plugin receives. The core never names a plugin: it knows modules only by
 * what their descriptors declare. */
#include "build-config.h"

#include "host.h"

#include "conf-yaml.h"
#include "loader.h"
#include "os.h"

#include <string.h>

struct pb_err {
    char *message;
};

struct pb_status {
    GString *out;
    gboolean has_text;
};

struct pb_reply {
    GString *out;
};

struct pb_counter {
    char *name;
    gint64 value;
};

struct pb_watch {
    pb_instance *inst;
    GSource *source;
    pb_io_fn fn;
    void *data;
    gboolean dispatching;
    gboolean removed;
};

struct pb_timer {
    pb_instance *inst;
    GSource *source;
    pb_timer_fn fn;
    void *data;
    gboolean dispatching;
    gboolean removed;
};

typedef struct {
    pb_instance *inst;
    GSource *source;
    pb_defer_fn fn;
    void *data;
} PbDefer;

typedef struct {
    pb_instance *inst;
    char *name;
    guint32 version;
    const void *iface;
} PbService;

typedef struct {
    pb_instance *inst;
    char *verb;
    char *usage;
    pb_command_fn fn;
} PbCommand;

struct pb_instance {
    PbHost *host;
    char *name;
    PbModule *module; /* borrowed from host->modules */
    struct pb_config *config;
    PbInstanceSpec *spec; /* as configured; NULL for none */
    PbInstanceState state;
    char *error;
    void *self;
    PbLog *log;
    char *state_dir;
    GHashTable *counters;    /* name -> pb_counter* */
    GPtrArray *counter_list; /* creation order, for stats */
    GList *watches;
    GList *timers;
    GList *defers; /* guarded by host->defer_lock */
    gint64 started_us;
    gboolean bad_config; /* its configuration, not its module, is what failed */
};

struct PbHost {
    PbGlobalConfig global;
    gboolean foreground;
    PbLog *log;
    GPtrArray *instances; /* pb_instance* */
    GHashTable *modules;  /* name or path -> PbModule* */
    GHashTable *builtins; /* plugin name -> const pb_plugin* */
    GHashTable *services; /* name -> GPtrArray of PbService* */
    GHashTable *commands; /* verb -> PbCommand* */
    GMutex defer_lock;
};

static const pb_host services_table;

/* Core verbs that plugins cannot take over. */
static const char *const reserved_verbs[] = {
    "start", "stop",  "restart", "force-reload", "reload",  "status", "showpid",
    "pid",   "stats", "help",    "version",      "install", NULL,
};

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

/* ---- logging ------------------------------------------------------------------------ */

static PbLog *inst_log(pb_instance *inst)
{
    return inst && inst->log ? inst->log : inst ? inst->host->log : NULL;
}

G_GNUC_PRINTF(3, 0)
static void svc_logv(pb_instance *inst, int level, const char *fmt, va_list ap)
{
    PbLog *log = inst_log(inst);
    if (log)
        pb_log_vprintf(log, level, fmt, ap);
}

G_GNUC_PRINTF(3, 4)
static void svc_log(pb_instance *inst, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    svc_logv(inst, level, fmt, ap);
    va_end(ap);
}

static bool svc_log_enabled(pb_instance *inst, int level)
{
    PbLog *log = inst_log(inst);
    return log && pb_log_enabled(log, level);
}

static void host_log(PbHost *host, int level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void host_log(PbHost *host, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pb_log_vprintf(host->log, level, fmt, ap);
    va_end(ap);
}

/* Applies the log settings a plugin declared through parameter roles (TFTPLogLevel,
 * ProxyLogFile...). A plugin that declares none logs at the daemon's level into
 * <log_dir>/<instance>.log. */
static gboolean inst_configure_log(pb_instance *inst, const struct pb_config *cfg, GError **error)
{
    PbHost *host = inst->host;
    int level = host->global.log_level;
    guint64 size_mb = host->global.log_size_mb;
    gboolean enabled = TRUE;
    const char *file = NULL;

    for (guint i = 0; cfg && i < cfg->n; i++) {
        const pb_param *p = pb_plugin_param(cfg->plugin, i);
        const PbValue *v = &cfg->values[i];
        switch (p->role) {
        case PB_ROLE_LOG_LEVEL:
            level = (int)v->number;
            break;
        case PB_ROLE_LOG_SIZE:
            size_mb = v->number > 0 ? (guint64)v->number : 0;
            break;
        case PB_ROLE_LOG_ENABLE:
            enabled = v->number != 0;
            break;
        case PB_ROLE_LOG_FILE:
            file = v->text && *v->text ? v->text : NULL;
            break;
        default:
            break;
        }
    }
    g_autofree char *path = NULL;
    if (enabled && host->global.log_dir && *host->global.log_dir) {
        g_autofree char *def = g_strconcat(inst->name, ".log", NULL);
        if (file == NULL)
            file = def;
        path = g_path_is_absolute(file) ? g_strdup(file)
                                        : g_build_filename(host->global.log_dir, file, NULL);
    } else if (enabled && file && g_path_is_absolute(file)) {
        path = g_strdup(file);
    }
    if (inst->log == NULL)
        inst->log = pb_log_new(inst->name);
    return pb_log_configure(inst->log, path, level, size_mb * 1024 * 1024, host->foreground,
                            host->global.syslog, error);
}

/* ---- errors, status, replies ---------------------------------------------------------- */

G_GNUC_PRINTF(2, 3)
static void svc_error(pb_err *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_free(err->message);
    err->message = g_strdup_vprintf(fmt, ap);
    va_end(ap);
}

G_GNUC_PRINTF(2, 3)
static void svc_reply(pb_reply *reply, const char *fmt, ...)
{
    if (reply == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_string_append_vprintf(reply->out, fmt, ap);
    va_end(ap);
}

G_GNUC_PRINTF(2, 3)
static void svc_status_text(pb_status *st, const char *fmt, ...)
{
    if (st == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    /* Indent every line so status output stays grouped under its instance. */
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++)
        if (**l)
            g_string_append_printf(st->out, "    %s\n", *l);
}

G_GNUC_PRINTF(3, 4)
static void svc_status_kv(pb_status *st, const char *key, const char *fmt, ...)
{
    if (st == NULL || key == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *value = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_string_append_printf(st->out, "    %s: %s\n", key, value);
}

/* ---- configuration accessors -------------------------------------------------------- */

static const PbValue *cfg_value(const pb_config *cfg, const char *name, guint type)
{
    if (cfg == NULL || name == NULL)
        return NULL;
    int i = pb_config_find(cfg, name);
    if (i < 0) {
        g_warning("plugin %s asked for undeclared parameter '%s'",
                  cfg->plugin ? cfg->plugin->name : "?", name);
        return NULL;
    }
    const pb_param *p = pb_plugin_param(cfg->plugin, (guint)i);
    if (type != 0 && p->type != type && !(type == PB_PARAM_STRING && p->type != PB_PARAM_LIST)) {
        g_warning("plugin %s read parameter '%s' with the wrong type", cfg->plugin->name, name);
    }
    return &cfg->values[i];
}

static const char *svc_config_string(const pb_config *cfg, const char *name)
{
    const PbValue *v = cfg_value(cfg, name, PB_PARAM_STRING);
    return v && v->text ? v->text : "";
}

static int64_t svc_config_int(const pb_config *cfg, const char *name)
{
    const PbValue *v = cfg_value(cfg, name, 0);
    return v ? v->number : 0;
}

static bool svc_config_bool(const pb_config *cfg, const char *name)
{
    const PbValue *v = cfg_value(cfg, name, PB_PARAM_BOOL);
    return v ? v->number != 0 : false;
}

static size_t svc_config_list(const pb_config *cfg, const char *name, const char *const **items)
{
    static const char *const empty[] = {NULL};
    const PbValue *v = cfg_value(cfg, name, PB_PARAM_LIST);
    if (v == NULL || v->list == NULL) {
        if (items)
            *items = empty;
        return 0;
    }
    if (items)
        *items = (const char *const *)v->list;
    return g_strv_length(v->list);
}

/* ---- event loop --------------------------------------------------------------------- */

static void watch_free(pb_watch *w)
{
    if (w->source) {
        g_source_destroy(w->source);
        g_source_unref(w->source);
    }
    g_free(w);
}

static gboolean watch_dispatch(pb_socket_t sock, GIOCondition cond, gpointer data)
{
    pb_watch *w = data;
    unsigned events = 0;
    if (cond & (G_IO_IN | G_IO_PRI))
        events |= PB_IO_IN;
    if (cond & G_IO_OUT)
        events |= PB_IO_OUT;
    if (cond & (G_IO_ERR | G_IO_NVAL))
        events |= PB_IO_ERR;
    if (cond & G_IO_HUP)
        events |= PB_IO_HUP;
    w->dispatching = TRUE;
    gboolean keep = w->fn(w->data, sock, events);
    w->dispatching = FALSE;
    if (keep && !w->removed)
        return G_SOURCE_CONTINUE;
    /* Returning FALSE destroys the source; drop our reference and the record. */
    w->inst->watches = g_list_remove(w->inst->watches, w);
    g_source_unref(w->source);
    w->source = NULL;
    g_free(w);
    return G_SOURCE_REMOVE;
}

static pb_watch *svc_watch_socket(pb_instance *inst, pb_socket_t sock, unsigned events, pb_io_fn fn,
                                  void *data)
{
    g_return_val_if_fail(inst != NULL && fn != NULL && sock != PB_SOCKET_NONE, NULL);
    GIOCondition cond = G_IO_ERR | G_IO_HUP | G_IO_NVAL;
    if (events & PB_IO_IN)
        cond |= G_IO_IN | G_IO_PRI;
    if (events & PB_IO_OUT)
        cond |= G_IO_OUT;
    pb_watch *w = g_new0(pb_watch, 1);
    w->inst = inst;
    w->fn = fn;
    w->data = data;
    w->source = pb_os_socket_source_new(sock, cond);
    g_source_set_callback(w->source, (GSourceFunc)(void (*)(void))watch_dispatch, w, NULL);
    g_source_attach(w->source, g_main_context_get_thread_default());
    inst->watches = g_list_prepend(inst->watches, w);
    return w;
}

static void svc_watch_remove(pb_watch *w)
{
    if (w == NULL)
        return;
    if (w->dispatching) {
        w->removed = TRUE; /* freed when its callback returns */
        return;
    }
    w->inst->watches = g_list_remove(w->inst->watches, w);
    watch_free(w);
}

static gboolean timer_dispatch(gpointer data)
{
    pb_timer *t = data;
    t->dispatching = TRUE;
    gboolean keep = t->fn(t->data);
    t->dispatching = FALSE;
    if (keep && !t->removed)
        return G_SOURCE_CONTINUE;
    t->inst->timers = g_list_remove(t->inst->timers, t);
    g_source_unref(t->source);
    g_free(t);
    return G_SOURCE_REMOVE;
}

static pb_timer *svc_timer_add(pb_instance *inst, uint32_t interval_ms, pb_timer_fn fn, void *data)
{
    g_return_val_if_fail(inst != NULL && fn != NULL, NULL);
    pb_timer *t = g_new0(pb_timer, 1);
    t->inst = inst;
    t->fn = fn;
    t->data = data;
    t->source = g_timeout_source_new(interval_ms);
    g_source_set_callback(t->source, timer_dispatch, t, NULL);
    g_source_attach(t->source, g_main_context_get_thread_default());
    inst->timers = g_list_prepend(inst->timers, t);
    return t;
}

static void timer_free(pb_timer *t)
{
    g_source_destroy(t->source);
    g_source_unref(t->source);
    g_free(t);
}

static void svc_timer_remove(pb_timer *t)
{
    if (t == NULL)
        return;
    if (t->dispatching) {
        t->removed = TRUE;
        return;
    }
    t->inst->timers = g_list_remove(t->inst->timers, t);
    timer_free(t);
}

static gboolean defer_dispatch(gpointer data)
{
    PbDefer *d = data;
    PbHost *host = d->inst->host;
    g_mutex_lock(&host->defer_lock);
    d->inst->defers = g_list_remove(d->inst->defers, d);
    g_mutex_unlock(&host->defer_lock);
    d->fn(d->data);
    g_source_unref(d->source);
    g_free(d);
    return G_SOURCE_REMOVE;
}

static void svc_defer(pb_instance *inst, pb_defer_fn fn, void *data)
{
    g_return_if_fail(inst != NULL && fn != NULL);
    PbDefer *d = g_new0(PbDefer, 1);
    d->inst = inst;
    d->fn = fn;
    d->data = data;
    d->source = g_idle_source_new();
    g_source_set_callback(d->source, defer_dispatch, d, NULL);
    g_mutex_lock(&inst->host->defer_lock);
    inst->defers = g_list_prepend(inst->defers, d);
    g_mutex_unlock(&inst->host->defer_lock);
    /* The host's main context, not the caller's: defer() exists for other threads. */
    g_source_attach(d->source, NULL);
}

static uint64_t svc_monotonic_us(void)
{
    return (uint64_t)g_get_monotonic_time();
}

/* Removes what a stopped instance left behind on the loop. */
static void inst_clear_loop(pb_instance *inst)
{
    guint n = g_list_length(inst->watches) + g_list_length(inst->timers);
    if (n > 0)
        svc_log(inst, PB_LOG_DEBUG, "removing %u watch(es)/timer(s) left after stop", n);
    while (inst->watches) {
        pb_watch *w = inst->watches->data;
        inst->watches = g_list_delete_link(inst->watches, inst->watches);
        watch_free(w);
    }
    while (inst->timers) {
        pb_timer *t = inst->timers->data;
        inst->timers = g_list_delete_link(inst->timers, inst->timers);
        timer_free(t);
    }
    g_mutex_lock(&inst->host->defer_lock);
    GList *defers = inst->defers;
    inst->defers = NULL;
    g_mutex_unlock(&inst->host->defer_lock);
    for (GList *l = defers; l; l = l->next) {
        PbDefer *d = l->data;
        g_source_destroy(d->source);
        g_source_unref(d->source);
        g_free(d);
    }
    g_list_free(defers);
}

/* ---- counters ----------------------------------------------------------------------- */

static pb_counter *svc_counter(pb_instance *inst, const char *name)
{
    g_return_val_if_fail(inst != NULL && name != NULL, NULL);
    pb_counter *c = g_hash_table_lookup(inst->counters, name);
    if (c == NULL) {
        c = g_new0(pb_counter, 1);
        c->name = g_strdup(name);
        g_hash_table_insert(inst->counters, c->name, c);
        g_ptr_array_add(inst->counter_list, c);
    }
    return c;
}

static void svc_counter_add(pb_counter *c, int64_t delta)
{
    if (c)
        c->value += delta;
}

static void svc_counter_set(pb_counter *c, int64_t value)
{
    if (c)
        c->value = value;
}

static void counter_free(gpointer p)
{
    pb_counter *c = p;
    g_free(c->name);
    g_free(c);
}

/* ---- service registry ------------------------------------------------------------------ */

static void service_free(gpointer p)
{
    PbService *s = p;
    g_free(s->name);
    g_free(s);
}

static bool svc_service_publish(pb_instance *inst, const char *name, uint32_t version,
                                const void *iface, pb_err *err)
{
    if (inst == NULL || name == NULL || *name == '\0' || iface == NULL) {
        svc_error(err, "service_publish: instance, name and interface are required");
        return false;
    }
    PbHost *host = inst->host;
    GPtrArray *list = g_hash_table_lookup(host->services, name);
    if (list == NULL) {
        list = g_ptr_array_new_with_free_func(service_free);
        g_hash_table_insert(host->services, g_strdup(name), list);
    }
    for (guint i = 0; i < list->len; i++) {
        PbService *s = g_ptr_array_index(list, i);
        if (s->version == version) {
            svc_error(err, "service %s version %u is already published by %s", name, version,
                      s->inst->name);
            return false;
        }
    }
    PbService *s = g_new0(PbService, 1);
    s->inst = inst;
    s->name = g_strdup(name);
    s->version = version;
    s->iface = iface;
    g_ptr_array_add(list, s);
    svc_log(inst, PB_LOG_DEBUG, "published service %s version %u", name, version);
    return true;
}

static const void *svc_service_lookup(pb_instance *inst, const char *name, uint32_t min_version,
                                      uint32_t *version_out)
{
    if (inst == NULL || name == NULL)
        return NULL;
    PbHost *host = inst->host;
    GPtrArray *list = g_hash_table_lookup(host->services, name);
    PbService *best = NULL;
    for (guint i = 0; list && i < list->len; i++) {
        PbService *s = g_ptr_array_index(list, i);
        if (s->version >= min_version && (best == NULL || s->version > best->version))
            best = s;
    }
    if (best && version_out)
        *version_out = best->version;
    return best ? best->iface : NULL;
}

static void svc_service_withdraw(pb_instance *inst, const char *name)
{
    if (inst == NULL || name == NULL)
        return;
    GPtrArray *list = g_hash_table_lookup(inst->host->services, name);
    for (guint i = 0; list && i < list->len;) {
        PbService *s = g_ptr_array_index(list, i);
        if (s->inst == inst)
            g_ptr_array_remove_index(list, i);
        else
            i++;
    }
}

static void inst_withdraw_all(pb_instance *inst)
{
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, inst->host->services);
    while (g_hash_table_iter_next(&it, &key, &value))
        svc_service_withdraw(inst, key);
    g_hash_table_iter_init(&it, inst->host->commands);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        PbCommand *c = value;
        if (c->inst == inst)
            g_hash_table_iter_remove(&it);
    }
}

/* ---- control commands ------------------------------------------------------------------ */

static void command_free(gpointer p)
{
    PbCommand *c = p;
    g_free(c->verb);
    g_free(c->usage);
    g_free(c);
}

static bool svc_command_register(pb_instance *inst, const char *verb, const char *usage,
                                 pb_command_fn fn, pb_err *err)
{
    if (inst == NULL || verb == NULL || *verb == '\0' || fn == NULL) {
        svc_error(err, "command_register: instance, verb and function are required");
        return false;
    }
    if (g_strv_contains(reserved_verbs, verb)) {
        svc_error(err, "'%s' is a prebootctl verb of its own", verb);
        return false;
    }
    PbCommand *old = g_hash_table_lookup(inst->host->commands, verb);
    if (old) {
        svc_error(err, "control verb '%s' is already registered by %s", verb, old->inst->name);
        return false;
    }
    PbCommand *c = g_new0(PbCommand, 1);
    c->inst = inst;
    c->verb = g_strdup(verb);
    c->usage = g_strdup(usage ? usage : verb);
    c->fn = fn;
    g_hash_table_insert(inst->host->commands, c->verb, c);
    return true;
}

/* ---- identity and places --------------------------------------------------------------- */

static const char *svc_instance_name(pb_instance *inst)
{
    return inst ? inst->name : "";
}

static const char *svc_state_dir(pb_instance *inst)
{
    if (inst == NULL)
        return "";
    if (inst->state_dir == NULL) {
        inst->state_dir = g_build_filename(inst->host->global.state_dir, inst->name, NULL);
        g_autoptr(GError) error = NULL;
        if (!pb_os_mkdir_p(inst->state_dir, 0750, &error))
            svc_log(inst, PB_LOG_WARNING, "state directory: %s", error->message);
        pb_os_keep_writable(inst->state_dir, TRUE, TRUE); /* the instance's own, all of it */
    }
    return inst->state_dir;
}

static const pb_host services_table = {
    .struct_size = sizeof(pb_host),
    .abi_major = PB_ABI_MAJOR,
    .abi_minor = PB_ABI_MINOR,
    .log = svc_log,
    .logv = svc_logv,
    .log_enabled = svc_log_enabled,
    .error = svc_error,
    .config_string = svc_config_string,
    .config_int = svc_config_int,
    .config_bool = svc_config_bool,
    .config_list = svc_config_list,
    .watch_socket = svc_watch_socket,
    .watch_remove = svc_watch_remove,
    .timer_add = svc_timer_add,
    .timer_remove = svc_timer_remove,
    .defer = svc_defer,
    .monotonic_us = svc_monotonic_us,
    .counter = svc_counter,
    .counter_add = svc_counter_add,
    .counter_set = svc_counter_set,
    .service_publish = svc_service_publish,
    .service_lookup = svc_service_lookup,
    .service_withdraw = svc_service_withdraw,
    .command_register = svc_command_register,
    .reply = svc_reply,
    .status_text = svc_status_text,
    .status_kv = svc_status_kv,
    .instance_name = svc_instance_name,
    .state_dir = svc_state_dir,
};

const pb_host *pb_host_services(void)
{
    return &services_table;
}

/* ---- instances ---------------------------------------------------------------------- */

static pb_instance *inst_new(PbHost *host, const char *name)
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

/* Stops and destroys the plugin's side; the record stays for status. */
static void inst_shutdown(pb_instance *inst)
{
    const pb_plugin *p = inst->module ? inst->module->plugin : NULL;
    if (inst->self && p) {
        if (inst->state == PB_INSTANCE_RUNNING && p->stop)
            p->stop(inst->self);
        inst_clear_loop(inst);
        inst_withdraw_all(inst);
        p->destroy(inst->self);
        inst->self = NULL;
        svc_log(inst, PB_LOG_CRITICAL, "stopped");
    }
    inst_clear_loop(inst);
    if (inst->state == PB_INSTANCE_RUNNING || inst->state == PB_INSTANCE_CREATED)
        inst->state = PB_INSTANCE_STOPPED;
}

static void inst_free(gpointer data)
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

/* Creates and starts one instance from its module and built configuration. */
static gboolean inst_run(pb_instance *inst)
{
    const pb_plugin *p = inst->module->plugin;
    g_autoptr(GError) log_error = NULL;
    if (!inst_configure_log(inst, inst->config, &log_error))
        host_log(inst->host, PB_LOG_WARNING, "%s: log file: %s", inst->name, log_error->message);

    struct pb_err err = {0};
    inst->self = p->create(&services_table, inst, inst->config, &err);
    if (inst->self == NULL) {
        inst_clear_loop(inst);
        inst_withdraw_all(inst);
        inst_fail(inst, "create failed: %s", err.message ? err.message : "(no reason given)");
        g_free(err.message);
        return FALSE;
    }
    inst->state = PB_INSTANCE_CREATED;
    if (p->start && !p->start(inst->self, &err)) {
        inst_clear_loop(inst);
        inst_withdraw_all(inst);
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
    svc_log(inst, PB_LOG_CRITICAL, "started (%s %s)", p->name, p->version ? p->version : "");
    return TRUE;
}

/* ---- modules ------------------------------------------------------------------------- */

static PbModule *host_module(PbHost *host, const char *name_or_path, GError **error)
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

static const char *spec_module_name(const PbInstanceSpec *spec)
{
    return spec->module ? spec->module : "";
}

/* Legacy-only specs (module NULL) find their plugin by the file's basename; when the YAML
 * also declares an instance of that plugin, the file attaches to it (YAML keys win). */
static gboolean resolve_specs(PbHost *host, PbConfig *cfg, GString *report)
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

static gboolean check_names(PbConfig *cfg, GError **error)
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

static PbInstanceSpec *spec_steal(PbConfig *cfg, guint i)
{
    return g_ptr_array_steal_index(cfg->instances, i);
}

/* Loads the module and builds the configuration of one spec into a new instance. */
static pb_instance *inst_prepare(PbHost *host, PbInstanceSpec *spec, GPtrArray *warnings)
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

static void report_warnings(PbHost *host, GPtrArray *warnings, GString *report)
{
    for (guint i = 0; warnings && i < warnings->len; i++) {
        const char *w = g_ptr_array_index(warnings, i);
        host_log(host, PB_LOG_WARNING, "%s", w);
        if (report)
            g_string_append_printf(report, "warning: %s\n", w);
    }
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
    /* All creates run before any start so services published in create() are there
     * for every start(); a failure affects only its own instance. */
    for (guint i = 0; i < fresh->len; i++) {
        pb_instance *inst = g_ptr_array_index(fresh, i);
        if (inst->state == PB_INSTANCE_STOPPED && !inst_run(inst))
            g_string_append_printf(report, "%s: %s\n", inst->name, inst->error);
        else if (inst->state == PB_INSTANCE_FAILED)
            g_string_append_printf(report, "%s: %s\n", inst->name, inst->error);
    }
    return TRUE;
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
    for (guint i = 0; i < cfg->instances->len; i++) {
        PbInstanceSpec *spec = g_ptr_array_index(cfg->instances, i);
        g_clear_error(&error);
        PbModule *m = host_module(host, spec_module_name(spec), &error);
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
        if (p->struct_size >= G_STRUCT_OFFSET(pb_plugin, check) + sizeof(p->check) && p->check) {
            struct pb_err err = {0};
            if (!p->check(&services_table, built, &err)) {
                g_string_append_printf(report, "%s: %s\n", spec->name,
                                       err.message ? err.message : "configuration refused");
                ok = FALSE;
            }
            g_free(err.message);
        }
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

static pb_instance *find_instance(GPtrArray *list, const char *name)
{
    for (guint i = 0; i < list->len; i++) {
        pb_instance *inst = g_ptr_array_index(list, i);
        if (g_strcmp0(inst->name, name) == 0)
            return inst;
    }
    return NULL;
}

pb_instance *pb_host_find(PbHost *host, const char *name)
{
    g_return_val_if_fail(host != NULL && name != NULL, NULL);
    return find_instance(host->instances, name);
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
            svc_log(inst, PB_LOG_WARNING, "%s changed; it takes effect on restart", p->name);
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
                svc_log(cur, PB_LOG_WARNING, "log file: %s", log_error->message);
            svc_log(cur, PB_LOG_CRITICAL, "configuration reloaded");
        }
    }

    /* Recreate what cannot reload in place, start what is new, stop what is gone. */
    g_autoptr(GPtrArray) old = g_ptr_array_new();
    while (host->instances->len > 0)
        g_ptr_array_add(old, g_ptr_array_steal_index(host->instances, 0));
    for (guint i = 0; i < next->len; i++) {
        pb_instance *n = g_ptr_array_index(next, i);
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
            g_ptr_array_add(host->instances, cur);
            continue;
        }
        /* Take the new record: move it out of `next` without freeing it. */
        g_ptr_array_index(next, i) = inst_new(host, n->name);
        if (cur) {
            g_ptr_array_remove(old, cur);
            inst_free(cur);
            g_string_append_printf(report, "%s: restarted with its new configuration\n", n->name);
        }
        g_ptr_array_add(host->instances, n);
        if ((n->state == PB_INSTANCE_STOPPED && !inst_run(n)) || n->state == PB_INSTANCE_FAILED)
            g_string_append_printf(report, "%s: not running: %s\n", n->name, n->error);
    }
    for (guint i = 0; i < old->len; i++) {
        pb_instance *gone = g_ptr_array_index(old, i);
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
    /* Reverse order: consumers stop before the services they use. */
    for (guint i = host->instances->len; i > 0; i--)
        inst_shutdown(g_ptr_array_index(host->instances, i - 1));
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
