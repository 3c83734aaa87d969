/* host-services.c - the pb_host table every plugin receives, read top to bottom: logging,
 * errors and status text, configuration values and their origins, the event loop,
 * counters, the service registry and its watches, control verbs, libraries, identity.
 * Everything here acts for one instance; the lives of instances are host-lifecycle.c's. */
#include "build-config.h"

#include "host-private.h"

#include "os.h"

#include <string.h>

static const pb_host services_table;

/* Core verbs that plugins cannot take over. */
static const char *const reserved_verbs[] = {
    "start", "stop",  "restart", "force-reload", "reload",  "status", "showpid",
    "pid",   "stats", "help",    "version",      "install", "ready",  NULL,
};

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

void inst_log_printf(pb_instance *inst, int level, const char *fmt, ...)
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

void host_log(PbHost *host, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pb_log_vprintf(host->log, level, fmt, ap);
    va_end(ap);
}

/* Applies the log settings a plugin declared through parameter roles (TFTPLogLevel,
 * ProxyLogFile...). A plugin that declares none logs at the daemon's level into
 * <log_dir>/<instance>.log. */
gboolean inst_configure_log(pb_instance *inst, const struct pb_config *cfg, GError **error)
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

G_GNUC_PRINTF(2, 0)
static void svc_errorv(pb_err *err, const char *fmt, va_list ap)
{
    if (err == NULL)
        return;
    g_free(err->message);
    err->message = g_strdup_vprintf(fmt, ap);
}

G_GNUC_PRINTF(2, 3)
static void svc_error(pb_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    svc_errorv(err, fmt, ap);
    va_end(ap);
}

void inst_error(pb_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    svc_errorv(err, fmt, ap);
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

static bool svc_config_origin(const pb_config *cfg, const char *name, pb_value_origin *out)
{
    if (cfg == NULL || name == NULL || out == NULL || out->struct_size < sizeof(uint32_t))
        return false;
    int i = pb_config_find(cfg, name);
    if (i < 0) {
        g_warning("plugin %s asked where undeclared parameter '%s' came from",
                  cfg->plugin ? cfg->plugin->name : "?", name);
        return false;
    }
    PbValueOrigin o;
    pb_config_origin((struct pb_config *)cfg, (guint)i, &o);
    pb_value_origin full = {
        .struct_size = out->struct_size,
        .kind = o.kind,
        .file = o.file,
        .line = o.line,
        .key = o.key,
        .text = o.text,
    };
    /* Only what the caller's build of the struct holds. */
    memcpy((char *)out + sizeof(uint32_t), (char *)&full + sizeof(uint32_t),
           MIN(out->struct_size, (uint32_t)sizeof(full)) - sizeof(uint32_t));
    return true;
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
void inst_clear_loop(pb_instance *inst)
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

void counter_free(gpointer p)
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

/* What service_lookup(name, min_version) returns: the highest version >= min_version. */
static PbService *service_best(PbHost *host, const char *name, guint32 min_version)
{
    GPtrArray *list = g_hash_table_lookup(host->services, name);
    PbService *best = NULL;
    for (guint i = 0; list && i < list->len; i++) {
        PbService *s = g_ptr_array_index(list, i);
        if (s->version >= min_version && (best == NULL || s->version > best->version))
            best = s;
    }
    return best;
}

void service_watch_free(gpointer p)
{
    pb_service_watch *w = p;
    g_free(w->name);
    g_free(w);
}

/* Brings one watch up to date with the registry: WITHDRAWN for the publication it last
 * reported when that is no longer the best one, APPEARED for a new best. gone is the
 * publication being withdrawn (still in the registry so that its iface is valid). */
static void watch_update(pb_service_watch *w, const PbService *gone)
{
    PbHost *host = w->inst->host;
    PbService *best = service_best(host, w->name, w->min_version);
    if (best != NULL && best == gone) {
        /* Being withdrawn: the next best (if any) takes over once it is gone. */
        GPtrArray *list = g_hash_table_lookup(host->services, w->name);
        best = NULL;
        for (guint i = 0; list && i < list->len; i++) {
            PbService *s = g_ptr_array_index(list, i);
            if (s != gone && s->version >= w->min_version &&
                (best == NULL || s->version > best->version))
                best = s;
        }
    }
    guint64 now = best ? best->generation : 0;
    if (now == w->seen)
        return;
    if (w->seen != 0) {
        /* Report the old publication's iface while it is still valid. */
        const PbService *old = NULL;
        GPtrArray *list = g_hash_table_lookup(host->services, w->name);
        for (guint i = 0; list && i < list->len; i++) {
            PbService *s = g_ptr_array_index(list, i);
            if (s->generation == w->seen)
                old = s;
        }
        guint64 seen = w->seen;
        w->seen = 0;
        w->fn(w->data, PB_SERVICE_WITHDRAWN, w->name, old ? old->version : 0,
              old ? old->iface : NULL, seen);
        if (w->removed)
            return;
    }
    if (best != NULL) {
        w->seen = best->generation;
        w->fn(w->data, PB_SERVICE_APPEARED, w->name, best->version, best->iface, best->generation);
    }
}

/* Ends a notification: once none runs any more, frees the watches unwatched meanwhile. */
static void notify_done(PbHost *host)
{
    if (--host->notifying > 0)
        return;
    for (guint i = 0; i < host->watchers->len;) {
        pb_service_watch *w = g_ptr_array_index(host->watchers, i);
        if (w->removed)
            g_ptr_array_remove_index(host->watchers, i); /* frees it */
        else
            i++;
    }
}

/* Tells every watcher of name what changed. Callbacks may publish, withdraw, watch and
 * unwatch: the loop runs over a snapshot, and unwatched records are freed at the end. */
static void notify_watchers(PbHost *host, const char *name, const PbService *gone)
{
    g_autoptr(GPtrArray) snapshot = g_ptr_array_new();
    for (guint i = 0; i < host->watchers->len; i++) {
        pb_service_watch *w = g_ptr_array_index(host->watchers, i);
        if (!w->removed && strcmp(w->name, name) == 0)
            g_ptr_array_add(snapshot, w);
    }
    host->notifying++;
    for (guint i = 0; i < snapshot->len; i++) {
        pb_service_watch *w = g_ptr_array_index(snapshot, i);
        if (!w->removed)
            watch_update(w, gone);
    }
    notify_done(host);
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
    s->generation = ++host->generation;
    g_ptr_array_add(list, s);
    svc_log(inst, PB_LOG_DEBUG,
            "published service %s version %u (generation %" G_GUINT64_FORMAT ")", name, version,
            s->generation);
    notify_watchers(host, name, NULL);
    return true;
}

static const void *svc_service_lookup(pb_instance *inst, const char *name, uint32_t min_version,
                                      uint32_t *version_out)
{
    if (inst == NULL || name == NULL)
        return NULL;
    PbService *best = service_best(inst->host, name, min_version);
    if (best && version_out)
        *version_out = best->version;
    return best ? best->iface : NULL;
}

static void svc_service_withdraw(pb_instance *inst, const char *name)
{
    if (inst == NULL || name == NULL)
        return;
    PbHost *host = inst->host;
    for (;;) {
        /* Looked up again each time: a watcher's callback may change the registry. */
        GPtrArray *list = g_hash_table_lookup(host->services, name);
        PbService *mine = NULL;
        for (guint i = 0; list && i < list->len && mine == NULL; i++) {
            PbService *s = g_ptr_array_index(list, i);
            if (s->inst == inst)
                mine = s;
        }
        if (mine == NULL)
            return;
        /* Watchers hear of it while the iface is still valid, then it goes. */
        notify_watchers(host, name, mine);
        list = g_hash_table_lookup(host->services, name);
        if (list == NULL || !g_ptr_array_remove(list, mine))
            return;
        svc_log(inst, PB_LOG_DEBUG, "withdrew service %s", name);
        notify_watchers(host, name, NULL); /* the next best, if another publishes it */
    }
}

static pb_service_watch *svc_service_watch(pb_instance *inst, const char *name,
                                           uint32_t min_version, pb_service_fn fn, void *data)
{
    g_return_val_if_fail(inst != NULL && name != NULL && *name != '\0' && fn != NULL, NULL);
    pb_service_watch *w = g_new0(pb_service_watch, 1);
    w->inst = inst;
    w->name = g_strdup(name);
    w->min_version = min_version;
    w->fn = fn;
    w->data = data;
    g_ptr_array_add(inst->host->watchers, w);
    inst->service_watches = g_list_prepend(inst->service_watches, w);
    /* What is there already is reported at once, so a consumer needs no lookup first. */
    inst->host->notifying++;
    watch_update(w, NULL);
    gboolean unwatched = w->removed; /* fn may unwatch from its first call */
    notify_done(inst->host);
    return unwatched ? NULL : w;
}

static void svc_service_unwatch(pb_service_watch *w)
{
    if (w == NULL || w->removed)
        return;
    PbHost *host = w->inst->host;
    w->inst->service_watches = g_list_remove(w->inst->service_watches, w);
    w->removed = TRUE;
    if (host->notifying == 0)
        g_ptr_array_remove(host->watchers, w); /* frees it */
}

void inst_withdraw_all(pb_instance *inst)
{
    g_autofree const char **names =
        (const char **)g_hash_table_get_keys_as_array(inst->host->services, NULL);
    g_autoptr(GPtrArray) mine = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; names[i] != NULL; i++) {
        GPtrArray *list = g_hash_table_lookup(inst->host->services, names[i]);
        for (guint k = 0; list && k < list->len; k++)
            if (((PbService *)g_ptr_array_index(list, k))->inst == inst) {
                g_ptr_array_add(mine, g_strdup(names[i]));
                break;
            }
    }
    for (guint i = 0; i < mine->len; i++)
        svc_service_withdraw(inst, g_ptr_array_index(mine, i));
}

/* ---- control commands ------------------------------------------------------------------ */

void command_free(gpointer p)
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

/* ---- libraries ------------------------------------------------------------------------- */

static const void *svc_library_open(pb_instance *inst, const pb_library_spec *spec,
                                    const char *name_or_path, pb_library **lib, pb_err *err)
{
    if (lib)
        *lib = NULL;
    if (inst == NULL || spec == NULL || name_or_path == NULL || *name_or_path == '\0' ||
        lib == NULL) {
        svc_error(err, "library_open: instance, spec, name and handle are required");
        return NULL;
    }
    g_autoptr(GError) error = NULL;
    PbLibrary *l = pb_library_open((const char *const *)inst->host->global.plugin_path,
                                   name_or_path, spec, &error);
    if (l == NULL) {
        svc_error(err, "%s", error->message);
        return NULL;
    }
    const pb_library_header *h = l->desc;
    svc_log(inst, PB_LOG_TRANSACTION, "opened %s %s %s (ABI %u.%u, %s)",
            spec->kind && *spec->kind ? spec->kind : "library", h->name,
            h->version ? h->version : "", h->abi_major, h->abi_minor, l->path);
    pb_library *handle = g_new0(pb_library, 1);
    handle->inst = inst;
    handle->lib = l;
    inst->libraries = g_list_prepend(inst->libraries, handle);
    *lib = handle;
    return l->desc;
}

static void svc_library_close(pb_library *lib)
{
    if (lib == NULL)
        return;
    lib->inst->libraries = g_list_remove(lib->inst->libraries, lib);
    pb_library_close(lib->lib);
    g_free(lib);
}

/* Everything an instance registered with the host, released in the reverse of how it
 * depends on it: its publications first (watchers hear while they are valid), then
 * its watches, verbs and libraries. */
void inst_release_all(pb_instance *inst)
{
    inst_withdraw_all(inst);
    while (inst->service_watches)
        svc_service_unwatch(inst->service_watches->data);
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, inst->host->commands);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        PbCommand *c = value;
        if (c->inst == inst)
            g_hash_table_iter_remove(&it);
    }
    while (inst->libraries)
        svc_library_close(inst->libraries->data);
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
    .service_watch = svc_service_watch,
    .service_unwatch = svc_service_unwatch,
    .config_origin = svc_config_origin,
    .library_open = svc_library_open,
    .library_close = svc_library_close,
};

const pb_host *pb_host_table(void)
{
    return &services_table;
}

const pb_host *pb_host_services(void)
{
    return &services_table;
}