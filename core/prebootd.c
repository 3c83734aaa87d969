/* prebootd.c - the daemon: read the configuration, load and start the plugins, then
 * serve the control socket and signals until told to stop. Everything with substance
 * lives in the core library (host.c, config.c, ...); this file is the command line. */
#include "build-config.h"

#include "conf-yaml.h"
#include "config.h"
#include "control.h"
#include "host.h"
#include "log.h"
#include "os.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *config_path;
    gboolean foreground;
    gboolean check_config;
    gboolean dump_config;
    gboolean list_plugins;
    gboolean version;
    char **plugin_dirs;
    char *pid_file;
    char *control_socket;
    char *log_dir;
    char *state_dir;
    gboolean syslog;
    int log_level;
} Options;

typedef struct {
    Options *opt;
    PbHost *host;
    GMainLoop *loop;
    PbControl *control;
    char *pid_file;
    gint64 started_us;
    gboolean stopping;
} Daemon;

static const char *default_config_path(void)
{
    return PB_SYSCONFDIR "/preboot.yaml";
}

/* Command-line settings override the file's daemon: section. */
static void apply_overrides(const Options *opt, PbGlobalConfig *g)
{
    if (opt->plugin_dirs && *opt->plugin_dirs) {
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();
        g_strv_builder_addv(b, (const char **)opt->plugin_dirs);
        if (g->plugin_path)
            g_strv_builder_addv(b, (const char **)g->plugin_path);
        g_strfreev(g->plugin_path);
        g->plugin_path = g_strv_builder_end(b);
    }
#define OVERRIDE(field, value)      \
    if (value) {                    \
        g_free(g->field);           \
        g->field = g_strdup(value); \
    }
    OVERRIDE(pid_file, opt->pid_file)
    OVERRIDE(control_socket, opt->control_socket)
    OVERRIDE(log_dir, opt->log_dir)
    OVERRIDE(state_dir, opt->state_dir)
#undef OVERRIDE
    if (opt->syslog)
        g->syslog = TRUE;
    if (opt->log_level >= 0)
        g->log_level = opt->log_level;
}

static PbConfig *load_config(const Options *opt, GError **error)
{
    PbConfig *cfg = pb_config_load(opt->config_path, error);
    if (cfg == NULL)
        return NULL;
    apply_overrides(opt, &cfg->global);
    /* --dump-config shows these as such. */
    const struct {
        const char *key;
        gboolean set;
    } given[] = {
        {"plugin_path", opt->plugin_dirs && *opt->plugin_dirs},
        {"pid_file", opt->pid_file != NULL},
        {"control_socket", opt->control_socket != NULL},
        {"log_dir", opt->log_dir != NULL},
        {"state_dir", opt->state_dir != NULL},
        {"syslog", opt->syslog},
        {"log_level", opt->log_level >= 0},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(given); i++)
        if (given[i].set)
            pb_config_note_global_source(cfg, given[i].key, "command line", 0);
    return cfg;
}

static void print_version(void)
{
    printf("prebootd %s\n", PACKAGE_VERSION);
    printf("plugin ABI %d.%d, build %s\n", PB_ABI_MAJOR, PB_ABI_MINOR, PB_BUILD_SIGNATURE);
    printf("features: yaml legacy-conf ltdl");
#ifdef PB_OS_WIN32
    printf(" win32-service");
#else
    printf(" posix-daemon unix-control-socket syslog");
#endif
    printf("\nplugin directory: %s\nconfiguration: %s\n", PB_PLUGINDIR, default_config_path());
}

/* ---- control verbs -------------------------------------------------------------------- */

static gboolean quit_loop(gpointer data)
{
    Daemon *d = data;
    d->stopping = TRUE;
    g_main_loop_quit(d->loop);
    return G_SOURCE_REMOVE;
}

static gboolean do_reload(Daemon *d, GString *out)
{
    g_autoptr(GError) error = NULL;
    PbConfig *cfg = load_config(d->opt, &error);
    if (cfg == NULL) {
        pb_log_printf(pb_host_log(d->host), PB_LOG_WARNING,
                      "reload refused, the running configuration stays: %s", error->message);
        g_string_append_printf(out, "reload refused, the running configuration stays: %s\n",
                               error->message);
        return FALSE;
    }
    if (!pb_host_reload(d->host, cfg, out, &error)) {
        g_string_append_printf(out, "%s\n", error->message);
        return FALSE;
    }
    g_string_append(out, "configuration reloaded\n");
    return TRUE;
}

static gboolean on_control(gpointer data, int argc, const char *const *argv, GString *out)
{
    Daemon *d = data;
    const char *verb = argc > 0 ? argv[0] : "";
    if (strcmp(verb, "status") == 0) {
        gint64 up = (g_get_monotonic_time() - d->started_us) / G_USEC_PER_SEC;
        g_string_append_printf(
            out, "prebootd %s running, pid %d, up %" G_GINT64_FORMAT " s, plugin ABI %d.%d\n",
            PACKAGE_VERSION, (int)getpid(), up, PB_ABI_MAJOR, PB_ABI_MINOR);
        pb_host_status(d->host, out);
        /* ERR when a configured instance is not running: prebootctl status exits 3. */
        return pb_host_ready(d->host, NULL);
    }
    if (strcmp(verb, "ready") == 0) {
        /* What prebootctl start waits for: OK once every configured instance serves
         * (routes and hookups included), ERR naming each one that does not, and why. */
        g_autoptr(GString) why = g_string_new(NULL);
        if (pb_host_ready(d->host, why)) {
            g_string_append(out, "ready\n");
            return TRUE;
        }
        g_string_append_printf(out, "not ready: a configured service is not running\n%s", why->str);
        return FALSE;
    }
    if (strcmp(verb, "stats") == 0) {
        pb_host_stats(d->host, out);
        return TRUE;
    }
    if (strcmp(verb, "pid") == 0 || strcmp(verb, "showpid") == 0) {
        g_string_append_printf(out, "%d\n", (int)getpid());
        return TRUE;
    }
    if (strcmp(verb, "stop") == 0) {
        g_string_append(out, "stopping\n");
        /* Reply first; quit from the loop once this request is answered. */
        g_idle_add(quit_loop, d);
        return TRUE;
    }
    if (strcmp(verb, "reload") == 0 || strcmp(verb, "force-reload") == 0)
        return do_reload(d, out);
    if (strcmp(verb, "help") == 0) {
        /* What prebootctl --help adds to its own verbs: the running plugins' commands. */
        pb_host_command_help(d->host, out);
        return TRUE;
    }
    if (strcmp(verb, "list-plugins") == 0) {
        pb_host_list_modules(d->host, out);
        return TRUE;
    }
    return pb_host_command(d->host, argc, argv, out);
}

static gboolean on_terminate(gpointer data)
{
    Daemon *d = data;
    pb_log_printf(pb_host_log(d->host), PB_LOG_CRITICAL, "terminating on signal");
    quit_loop(d);
    return G_SOURCE_CONTINUE;
}

static gboolean on_reload_signal(gpointer data)
{
    Daemon *d = data;
    g_autoptr(GString) report = g_string_new(NULL);
    pb_log_printf(pb_host_log(d->host), PB_LOG_CRITICAL, "SIGHUP: reloading %s",
                  d->opt->config_path);
    do_reload(d, report);
    g_auto(GStrv) lines = g_strsplit(g_strchomp(report->str), "\n", -1);
    for (char **l = lines; *l; l++)
        if (**l)
            pb_log_printf(pb_host_log(d->host), PB_LOG_TRANSACTION, "reload: %s", *l);
    return G_SOURCE_CONTINUE;
}

/* ---- run ---------------------------------------------------------------------------- */

/* Creates a directory the daemon writes and registers it for the privilege drop: one the
 * daemon had to create is its own; an existing one is given away only when it is (see
 * pb_os_keep_writable). The log directory's files go too: they were opened as root and are
 * rotated and reopened after the drop. */
static void make_dir(const char *dir, int mode, gboolean contents)
{
    gboolean created = !g_file_test(dir, G_FILE_TEST_EXISTS);
    if (pb_os_mkdir_p(dir, mode, NULL))
        pb_os_keep_writable(dir, created, contents);
}

static int run(Options *opt, PbConfig *cfg)
{
    PbGlobalConfig *g = &cfg->global;
    g_autoptr(GError) error = NULL;
    g_autofree char *user = g_strdup(g->user);
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GString) why = g_string_new(NULL); /* instances not running, if any */

    gint64 other = g->pid_file ? pb_os_pidfile_read(g->pid_file) : 0;
    if (other > 0) {
        fprintf(stderr, "prebootd: already running as pid %" G_GINT64_FORMAT " (%s)\n", other,
                g->pid_file);
        return 1;
    }
    if (!opt->foreground && !pb_os_daemonize(&error)) {
        fprintf(stderr, "prebootd: %s\n", error->message);
        return 1;
    }

    Daemon d = {.opt = opt};
    d.started_us = g_get_monotonic_time();
    d.loop = g_main_loop_new(NULL, FALSE);
    d.host = pb_host_new(g);
    pb_host_set_foreground(d.host, opt->foreground);
    g_autofree char *log_path =
        g->log_dir && *g->log_dir ? g_build_filename(g->log_dir, "prebootd.log", NULL) : NULL;
    if (log_path)
        make_dir(g->log_dir, 0750, TRUE);
    if (!pb_log_configure(pb_host_log(d.host), log_path, g->log_level,
                          (guint64)g->log_size_mb * 1024 * 1024, opt->foreground, g->syslog,
                          &error)) {
        fprintf(stderr, "prebootd: warning: %s\n", error->message);
        g_clear_error(&error);
    }
    PbLog *log = pb_host_log(d.host);
    pb_log_printf(log, PB_LOG_CRITICAL, "prebootd %s starting (config %s, plugin ABI %d.%d)",
                  PACKAGE_VERSION, opt->config_path, PB_ABI_MAJOR, PB_ABI_MINOR);
    guint64 fd_limit = pb_os_raise_fd_limit();
    if (fd_limit > 0 && fd_limit != G_MAXUINT64)
        pb_log_printf(log, PB_LOG_TRANSACTION, "descriptor limit: %" G_GUINT64_FORMAT, fd_limit);
    if ((user == NULL || *user == '\0') && pb_os_is_superuser())
        pb_log_printf_sev(log, PB_LOG_WARNING, PB_LOG_SEV_WARNING,
                          "running as root: every plugin keeps all privileges; set `user:` in "
                          "the daemon section (e.g. user: preboot) to drop them once the ports "
                          "are bound (README.security)");
    if (g->state_dir && *g->state_dir)
        make_dir(g->state_dir, 0750, FALSE);

    int status = 0;
    if (g->pid_file && *g->pid_file) {
        g_autofree char *dir = g_path_get_dirname(g->pid_file);
        make_dir(dir, 0755, FALSE);
        if (!pb_os_pidfile_write(g->pid_file, &error)) {
            pb_log_printf_sev(log, PB_LOG_CRITICAL, PB_LOG_SEV_ERROR, "%s", error->message);
            status = 1;
            goto out;
        }
        d.pid_file = g_strdup(g->pid_file);
        pb_os_keep_writable(g->pid_file, FALSE, FALSE);
    }
    if (g->control_socket && *g->control_socket) {
        g_autofree char *dir = g_path_get_dirname(g->control_socket);
        make_dir(dir, 0755, FALSE);
        /* Root, the daemon's own user and its group (or control_group) may use it. */
        g_autofree char *group = g->control_group && *g->control_group ? g_strdup(g->control_group)
                                                                       : pb_os_user_group(user);
        d.control = pb_control_new(g->control_socket, group, on_control, &d, &error);
        if (d.control == NULL) {
            pb_log_printf_sev(log, PB_LOG_CRITICAL, PB_LOG_SEV_ERROR, "control socket: %s",
                              error->message);
            status = 1;
            goto out;
        }
        pb_control_set_log(d.control, log);
        pb_os_keep_writable(g->control_socket, FALSE, FALSE);
    }
    /* Plugins bind their (privileged) ports in create(); privileges go afterwards. */
    if (!pb_host_apply(d.host, cfg, report, &error)) {
        cfg = NULL;
        pb_log_printf_sev(log, PB_LOG_CRITICAL, PB_LOG_SEV_ERROR, "%s", error->message);
        status = 1;
        goto out;
    }
    cfg = NULL;
    if (user && *user) {
        if (!pb_os_drop_privileges(user, &error)) {
            pb_log_printf_sev(log, PB_LOG_CRITICAL, PB_LOG_SEV_ERROR, "%s", error->message);
            status = 1;
            goto out;
        }
        pb_log_printf(log, PB_LOG_TRANSACTION, "running as user %s", user);
    }
    pb_os_signal_watch(PB_OS_SIGNAL_TERMINATE, on_terminate, &d);
    pb_os_signal_watch(PB_OS_SIGNAL_RELOAD, on_reload_signal, &d);
    if (!opt->foreground)
        pb_os_daemon_ready(TRUE);
    /* "ready" means every configured service serves; anything less is said as such
     * (the daemon keeps serving what does run; prebootctl start and status exit non-zero). */
    if (pb_host_ready(d.host, why)) {
        pb_log_printf(log, PB_LOG_CRITICAL, "ready");
    } else {
        g_auto(GStrv) lines = g_strsplit(g_strchomp(why->str), "\n", -1);
        for (char **l = lines; *l; l++)
            pb_log_printf_sev(log, PB_LOG_CRITICAL, PB_LOG_SEV_WARNING, "not ready: %s", *l);
    }
    g_main_loop_run(d.loop);
    pb_log_printf(log, PB_LOG_CRITICAL, "stopping");

out:
    if (status != 0 && !opt->foreground)
        pb_os_daemon_ready(FALSE);
    if (cfg)
        pb_config_free(cfg);
    pb_host_stop_all(d.host);
    if (d.control)
        pb_control_free(d.control);
    if (d.pid_file)
        pb_os_pidfile_remove(d.pid_file);
    pb_log_printf(log, PB_LOG_CRITICAL, "stopped");
    pb_host_free(d.host);
    g_main_loop_unref(d.loop);
    g_free(d.pid_file);
    return status;
}

static int cli(Options *o, int argc, char **argv)
{
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &o->config_path,
         "Configuration: a YAML file, a legacy .conf file, or a directory of them", "FILE"},
        {"foreground", 'f', 0, G_OPTION_ARG_NONE, &o->foreground,
         "Stay in the foreground and log to stderr too", NULL},
        {"check-config", 0, 0, G_OPTION_ARG_NONE, &o->check_config,
         "Validate the configuration and exit (non-zero on errors)", NULL},
        {"dump-config", 0, 0, G_OPTION_ARG_NONE, &o->dump_config,
         "Print the effective configuration with each value's source", NULL},
        {"list-plugins", 0, 0, G_OPTION_ARG_NONE, &o->list_plugins,
         "List the modules on the plugin path with their ABI and version", NULL},
        {"plugin-path", 'P', 0, G_OPTION_ARG_FILENAME_ARRAY, &o->plugin_dirs,
         "Search DIR for plugins before the configured path (repeatable)", "DIR"},
        {"pid-file", 'p', 0, G_OPTION_ARG_FILENAME, &o->pid_file, "Override the pid file", "FILE"},
        {"control-socket", 's', 0, G_OPTION_ARG_FILENAME, &o->control_socket,
         "Override the control socket", "PATH"},
        {"log-dir", 0, 0, G_OPTION_ARG_FILENAME, &o->log_dir, "Override the log directory", "DIR"},
        {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &o->state_dir, "Override the state directory",
         "DIR"},
        {"log-level", 'l', 0, G_OPTION_ARG_INT, &o->log_level, "The daemon's own log level (0-4)",
         "N"},
        {"syslog", 0, 0, G_OPTION_ARG_NONE, &o->syslog, "Also log to syslog", NULL},
        {"version", 'V', 0, G_OPTION_ARG_NONE, &o->version,
         "Print version, plugin ABI and features", NULL},
        {NULL}};
    g_autoptr(GOptionContext) ctx = g_option_context_new("- PXE preboot services daemon");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_description(ctx, "See prebootd(8), preboot.yaml(5) and "
                                          "preboot-legacy.conf(5).");
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "prebootd: %s (try --help)\n", error->message);
        return 2;
    }
    if (o->version) {
        print_version();
        return 0;
    }
    if (o->log_level > 4) {
        fprintf(stderr, "prebootd: --log-level must be 0-4\n");
        return 2;
    }
    if (o->config_path == NULL)
        o->config_path = g_strdup(default_config_path());

    if (o->list_plugins) {
        PbConfig *cfg =
            g_file_test(o->config_path, G_FILE_TEST_EXISTS) ? load_config(o, NULL) : NULL;
        PbGlobalConfig g = {0};
        if (cfg == NULL) {
            pb_global_config_init_defaults(&g);
            apply_overrides(o, &g);
        }
        g_autoptr(PbHost) host = pb_host_new(cfg ? &cfg->global : &g);
        g_autoptr(GString) out = g_string_new(NULL);
        pb_host_list_modules(host, out);
        fputs(out->str, stdout);
        if (cfg)
            pb_config_free(cfg);
        else
            pb_global_config_clear(&g);
        return 0;
    }

    PbConfig *cfg = load_config(o, &error);
    if (cfg == NULL) {
        fprintf(stderr, "prebootd: %s\n", error->message);
        return 1;
    }
    if (o->check_config || o->dump_config) {
        g_autoptr(PbHost) host = pb_host_new(&cfg->global);
        g_autoptr(GString) out = g_string_new(NULL);
        gboolean ok;
        if (o->check_config) {
            ok = pb_host_check(host, cfg, out);
            /* The daemon's own refusals: a start would stop at these too. */
            g_autoptr(GError) why = NULL;
            if (!pb_os_check_user(cfg->global.user, &why) ||
                !pb_os_check_group(cfg->global.control_group, &why)) {
                g_string_append_printf(out, "%s: daemon: %s\n", o->config_path, why->message);
                ok = FALSE;
            }
            fputs(out->str, ok ? stdout : stderr);
            if (ok)
                printf("%s: configuration OK\n", o->config_path);
        } else {
            ok = pb_host_dump(host, cfg, out, &error);
            if (ok)
                fputs(out->str, stdout);
            else
                fprintf(stderr, "prebootd: %s\n", error->message);
        }
        pb_config_free(cfg);
        return ok ? 0 : 1;
    }
    return run(o, cfg);
}

static void options_clear(Options *o)
{
    g_free(o->config_path);
    g_strfreev(o->plugin_dirs);
    g_free(o->pid_file);
    g_free(o->control_socket);
    g_free(o->log_dir);
    g_free(o->state_dir);
}

int main(int argc, char **argv)
{
    Options opt = {.log_level = -1};
    int status = cli(&opt, argc, argv);
    options_clear(&opt);
    return status;
}
