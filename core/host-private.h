/* host-private.h - what the host's own files share: the structs behind the ABI's opaque
 * types and the helpers one file calls in another. host.c holds the host object and
 * the configuration front end, host-services.c the pb_host table plugins call, and
 * host-lifecycle.c the instances' lives (dependency order, start, reload, stop). Not
 * installed, not for plugins. */
#pragma once

#include "host.h"
#include "loader.h"

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
    guint64 generation; /* host-wide, per publication: what watchers compare */
} PbService;

struct pb_service_watch {
    pb_instance *inst;
    char *name;
    guint32 min_version;
    pb_service_fn fn;
    void *data;
    guint64 seen;     /* generation last reported APPEARED; 0 when none */
    gboolean removed; /* unwatched while a notification ran: freed afterwards */
};

struct pb_library {
    pb_instance *inst;
    PbLibrary *lib;
};

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
    GList *defers;          /* guarded by host->defer_lock */
    GList *service_watches; /* pb_service_watch* this instance set */
    GList *libraries;       /* pb_library* this instance opened */
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
    GPtrArray *watchers;  /* every live pb_service_watch, in creation order */
    guint64 generation;   /* the last publication's */
    guint notifying;      /* depth of watch notifications running */
    GMutex defer_lock;
};

/* ---- host-services.c ---------------------------------------------------------------- */

const pb_host *pb_host_table(void);
void host_log(PbHost *host, int level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
void inst_log_printf(pb_instance *inst, int level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
void inst_error(pb_err *err, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Applies the log settings the plugin declared through parameter roles. */
gboolean inst_configure_log(pb_instance *inst, const struct pb_config *cfg, GError **error);
/* Removes what a stopped instance left on the loop: watches, timers, deferred calls. */
void inst_clear_loop(pb_instance *inst);
/* Withdraws every service of inst (telling watchers), removes its service watches,
 * its control verbs, and closes the libraries it left open. */
void inst_withdraw_all(pb_instance *inst);
void inst_release_all(pb_instance *inst);
void counter_free(gpointer p);
void command_free(gpointer p);
void service_watch_free(gpointer p);

/* ---- host-lifecycle.c --------------------------------------------------------------- */

pb_instance *inst_new(PbHost *host, const char *name);
void inst_free(gpointer data);
pb_instance *inst_prepare(PbHost *host, PbInstanceSpec *spec, GPtrArray *warnings);
void report_warnings(PbHost *host, GPtrArray *warnings, GString *report);
PbInstanceSpec *spec_steal(PbConfig *cfg, guint i);
/* The first service p requires that none of configured (const pb_plugin*) provides, or
 * NULL: what --check-config can tell before anything starts. */
const char *pb_plugin_unprovided(const pb_plugin *p, GPtrArray *configured);
/* list's instances in start order (a new array, borrowing them). */
GPtrArray *pb_host_start_order(PbHost *host, GPtrArray *list);
pb_instance *find_instance(GPtrArray *list, const char *name);

/* ---- host.c ------------------------------------------------------------------------- */

PbModule *host_module(PbHost *host, const char *name_or_path, GError **error);
gboolean resolve_specs(PbHost *host, PbConfig *cfg, GString *report);
gboolean check_names(PbConfig *cfg, GError **error);
const char *spec_module_name(const PbInstanceSpec *spec);
