/* host.h - the plugin host: loads modules, builds each instance's configuration from its
 * plugin's parameter table, runs the lifecycle (create, start, staged reload, stop,
 * destroy, in dependency order: host-lifecycle.c) and implements the pb_host services
 * table (host-services.c). The daemon is a thin shell around this; the tests drive it in
 * process (a "fake host" is just this one, without prebootd). */
#pragma once

#include "config.h"
#include "log.h"
#include <glib.h>
#include <preboot/plugin.h>

G_BEGIN_DECLS

typedef struct PbHost PbHost;

typedef enum {
    PB_INSTANCE_DISABLED, /* enabled: false in the configuration */
    PB_INSTANCE_FAILED,   /* load, configuration, create or start failed: see error */
    PB_INSTANCE_CREATED,
    PB_INSTANCE_RUNNING,
    PB_INSTANCE_STOPPED,
} PbInstanceState;

const char *pb_instance_state_name(PbInstanceState s);

/* global is copied. The host runs on the thread-default main context. */
PbHost *pb_host_new(const PbGlobalConfig *global);
void pb_host_free(PbHost *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbHost, pb_host_free)

/* Makes a descriptor available under its name without a module file (a static or
 * dlpreopened build, and in-process plugin tests). Call before pb_host_apply(). */
void pb_host_add_builtin(PbHost *host, const pb_plugin *plugin);

/* Loads and starts every instance of cfg (taking ownership of cfg). An instance that fails
 * is kept, FAILED, with the reason logged and shown by status; the others run. Returns
 * FALSE only when the configuration as a whole is unusable (e.g. duplicate instance
 * names); "report" (may be NULL) receives warnings and failures, one per line. */
gboolean pb_host_apply(PbHost *host, PbConfig *cfg, GString *report, GError **error);

/* Validates cfg against the modules without starting anything (--check-config). Every
 * error is appended to report as "file:line: message"; returns FALSE if any. */
gboolean pb_host_check(PbHost *host, PbConfig *cfg, GString *report);
/* Writes the effective configuration, with each value's source (--dump-config). */
gboolean pb_host_dump(PbHost *host, PbConfig *cfg, GString *out, GError **error);

/* Staged reload (SIGHUP, prebootctl force-reload): every running instance prepares its
 * new configuration; if any fails, all are aborted and the old configuration keeps
 * serving. Parameters flagged PB_PARAM_F_RESTART that changed are reported. Instances
 * added or removed in cfg are started or stopped. Takes ownership of cfg. */
gboolean pb_host_reload(PbHost *host, PbConfig *cfg, GString *report, GError **error);

/* Stops every instance, in the reverse of the dependency (start) order. */
void pb_host_stop_all(PbHost *host);

/* TRUE when every configured (enabled) instance is running: its routes, listeners and
 * hookups are in place, since start() and the watch callbacks it caused have returned.
 * Otherwise why (may be NULL) gets one "NAME: STATE: REASON" line per instance that is
 * not. */
gboolean pb_host_ready(PbHost *host, GString *why);

/* Foreground daemons also log every instance to stderr. */
void pb_host_set_foreground(PbHost *host, gboolean foreground);

/* Text for prebootctl status / stats. */
void pb_host_status(PbHost *host, GString *out);
void pb_host_stats(PbHost *host, GString *out);
/* Runs a plugin-registered control command; FALSE (and a message in out) if unknown. */
gboolean pb_host_command(PbHost *host, int argc, const char *const *argv, GString *out);
/* The plugin-registered commands, one "  USAGE    (instance)" line each, sorted by verb. */
void pb_host_command_help(PbHost *host, GString *out);

/* Lists modules on the plugin path: "name version abi path description" lines. */
void pb_host_list_modules(PbHost *host, GString *out);

/* For tests and the daemon. */
pb_instance *pb_host_find(PbHost *host, const char *instance_name);
PbInstanceState pb_instance_get_state(pb_instance *inst);
const char *pb_instance_get_error(pb_instance *inst);
void *pb_instance_get_self(pb_instance *inst);
/* A counter's value, or -1 when the instance or counter does not exist. */
gint64 pb_host_counter_value(PbHost *host, const char *instance_name, const char *counter);
/* The services table (the same one every plugin receives). */
const pb_host *pb_host_services(void);
PbLog *pb_host_log(PbHost *host); /* the daemon's own log */

G_END_DECLS
