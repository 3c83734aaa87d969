/* prebootctl - controls a running prebootd with the legacy service verbs (start, stop,
 * restart, force-reload, status, showpid) plus stats and plugin commands, over the
 * control channel of core/control.h. Exit codes follow the LSB init script rules:
 * 0 ok, 1 error (start: a configured service did not start), and for status 1 dead with
 * its pid file left, 3 not running (or a configured service is not), 4 unknown. */
#include "build-config.h"

#include "config.h"
#include "control.h"
#include "os.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_OK = 0, EXIT_ERROR = 1, EXIT_DEAD = 1, EXIT_NOT_RUNNING = 3, EXIT_UNKNOWN = 4 };

typedef struct {
    char *config;        /* what -c named, or the default file when it exists */
    gboolean config_set; /* -c given */
    char *socket;
    char *pid_file;
    char *prebootd;
    gint timeout_s;
    gboolean socket_set; /* -s given: passed on to prebootd by start */
    gboolean pid_file_set;
} Ctl;

static const char *const usage_verbs =
    "Verbs:\n"
    "  start          start prebootd and wait until every configured service runs\n"
    "                 (exit 1, naming it, when one does not)\n"
    "  stop           stop prebootd and wait until it is gone\n"
    "  restart        stop (if running), then start\n"
    "  force-reload   re-read the configuration (staged: all or nothing)\n"
    "  status         show the daemon's and each instance's state (exit 3: not running,\n"
    "                 or a configured service is not; 1: dead, pid file left; 4: unknown)\n"
    "  showpid        print the daemon's pid (exit 3: not running)\n"
    "  stats          show the counters\n"
    "  VERB [ARGS]    any other verb is a plugin command, passed on as it is\n";

static guint timeout_ms(const Ctl *c)
{
    return (guint)c->timeout_s * 1000;
}

/* Set by ask() when the last request failed because this user may not use the socket. */
static gboolean ask_denied;

/* One request. Returns EXIT_OK with the reply in out (and *ok), EXIT_NOT_RUNNING when no
 * daemon listens, EXIT_ERROR otherwise (message printed). */
static int ask(const Ctl *c, int argc, const char *const *argv, GString *out, gboolean *ok,
               gboolean quiet)
{
    g_autoptr(GError) error = NULL;
    ask_denied = FALSE;
    if (pb_control_request(c->socket, argc, argv, timeout_ms(c), out, ok, &error))
        return EXIT_OK;
    if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return EXIT_NOT_RUNNING;
    ask_denied = g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_ACCES) ||
                 g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_PERM);
    if (!quiet)
        fprintf(stderr, "prebootctl: %s\n", error->message);
    return EXIT_ERROR;
}

static void print_reply(const GString *out, gboolean ok)
{
    FILE *f = ok ? stdout : stderr;
    fputs(out->str, f);
    if (out->len > 0 && out->str[out->len - 1] != '\n')
        fputc('\n', f);
}

/* The pid of the running daemon: from the pid file (verified alive), else from the daemon
 * itself ("pid"), or 0. */
static gint64 daemon_pid(const Ctl *c)
{
    gint64 pid = c->pid_file ? pb_os_pidfile_read(c->pid_file) : 0;
    if (pid > 0)
        return pid;
    const char *const argv[] = {"pid", NULL};
    g_autoptr(GString) out = g_string_new(NULL);
    gboolean ok = FALSE;
    if (ask(c, 1, argv, out, &ok, TRUE) == EXIT_OK && ok) {
        guint64 v = 0;
        g_strstrip(out->str);
        if (g_ascii_string_to_unsigned(out->str, 10, 1, G_MAXINT32, &v, NULL) &&
            pb_os_process_alive((gint64)v))
            return (gint64)v;
    }
    return 0;
}

static gboolean answers(const Ctl *c)
{
    const char *const argv[] = {"status", NULL};
    g_autoptr(GString) out = g_string_new(NULL);
    gboolean ok = FALSE;
    return ask(c, 1, argv, out, &ok, TRUE) == EXIT_OK;
}

static gboolean running(const Ctl *c)
{
    return daemon_pid(c) > 0 || answers(c);
}

typedef struct {
    gint status;
    gboolean exited;
    gboolean timed_out;
} StartWait;

static void on_started(GPid pid, gint status, gpointer data)
{
    StartWait *w = data;
    w->status = status;
    w->exited = TRUE;
    g_spawn_close_pid(pid);
}

static gboolean on_start_timeout(gpointer data)
{
    ((StartWait *)data)->timed_out = TRUE;
    return G_SOURCE_REMOVE;
}

static int verb_start(const Ctl *c)
{
    gint64 pid = daemon_pid(c);
    if (pid > 0 || answers(c)) {
        /* LSB: starting a running service is a success. */
        if (pid > 0)
            printf("prebootd is already running (pid %" G_GINT64_FORMAT ")\n", pid);
        else
            printf("prebootd is already running\n");
        return EXIT_OK;
    }

    g_autoptr(GPtrArray) args = g_ptr_array_new();
    g_ptr_array_add(args, c->prebootd);
    if (c->config) {
        g_ptr_array_add(args, "-c");
        g_ptr_array_add(args, c->config);
    }
    if (c->pid_file_set) {
        g_ptr_array_add(args, "-p");
        g_ptr_array_add(args, c->pid_file);
    }
    if (c->socket_set) {
        g_ptr_array_add(args, "-s");
        g_ptr_array_add(args, c->socket);
    }
    g_ptr_array_add(args, NULL);

    /* prebootd daemonizes: the process we run exits once the daemon is ready (0) or
     * failed to start (its status), having printed why on stderr, which we share. A plugin
     * stuck in its start-up must not hang us: that wait is bounded too. */
    g_autoptr(GError) error = NULL;
    GPid child;
    if (!g_spawn_async(NULL, (char **)args->pdata, NULL,
                       G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, &child,
                       &error)) {
        fprintf(stderr, "prebootctl: cannot run %s: %s\n", c->prebootd, error->message);
        return EXIT_ERROR;
    }
    StartWait w = {.status = -1};
    g_autoptr(GMainContext) ctx = g_main_context_new();
    GSource *watch = g_child_watch_source_new(child);
    g_source_set_callback(watch, (GSourceFunc)(void (*)(void))on_started, &w, NULL);
    g_source_attach(watch, ctx);
    GSource *timer = g_timeout_source_new_seconds((guint)c->timeout_s * 3);
    g_source_set_callback(timer, on_start_timeout, &w, NULL);
    g_source_attach(timer, ctx);
    while (!w.exited && !w.timed_out)
        g_main_context_iteration(ctx, TRUE);
    g_source_destroy(watch);
    g_source_unref(watch);
    g_source_destroy(timer);
    g_source_unref(timer);
    if (!w.exited) {
        fprintf(stderr, "prebootctl: %s did not finish starting within %d s\n", c->prebootd,
                c->timeout_s * 3);
        return EXIT_ERROR;
    }
    if (!g_spawn_check_wait_status(w.status, &error)) {
        fprintf(stderr, "prebootctl: %s failed to start (%s)\n", c->prebootd, error->message);
        return EXIT_ERROR;
    }

    /* The daemon answers "ready" once every configured instance serves (its start() and
     * the hookups it caused have returned): only then is "started" true. The loop
     * covers a daemon whose socket is not up yet (started in the foreground by hand). */
    gint64 deadline = g_get_monotonic_time() + (gint64)c->timeout_s * G_USEC_PER_SEC;
    while (g_get_monotonic_time() < deadline) {
        const char *const argv[] = {"ready", NULL};
        g_autoptr(GString) out = g_string_new(NULL);
        gboolean ok = FALSE;
        if (ask(c, 1, argv, out, &ok, TRUE) == EXIT_OK) {
            pid = daemon_pid(c);
            g_autofree char *which =
                pid > 0 ? g_strdup_printf(" (pid %" G_GINT64_FORMAT ")", pid) : g_strdup("");
            if (ok) {
                printf("prebootd started%s\n", which);
                return EXIT_OK;
            }
            fprintf(stderr, "prebootctl: prebootd started%s, but ", which);
            print_reply(out, FALSE);
            return EXIT_ERROR;
        }
        g_usleep(50 * 1000);
    }
    fprintf(stderr, "prebootctl: prebootd did not answer on %s within %d s\n", c->socket,
            c->timeout_s);
    return EXIT_ERROR;
}

static int verb_stop(const Ctl *c)
{
    gint64 pid = daemon_pid(c);
    const char *const argv[] = {"stop", NULL};
    g_autoptr(GString) out = g_string_new(NULL);
    gboolean ok = FALSE;
    int rc = ask(c, 1, argv, out, &ok, TRUE);
    if (rc == EXIT_NOT_RUNNING && pid == 0) {
        /* LSB: stopping a stopped service is a success. */
        printf("prebootd is not running\n");
        return EXIT_OK;
    }
    if (rc != EXIT_OK || !ok) {
        /* No control channel (or refused): the pid file's process gets SIGTERM. */
        if (rc == EXIT_OK)
            print_reply(out, FALSE);
        g_autoptr(GError) error = NULL;
        if (pid == 0) {
            fprintf(stderr, "prebootctl: cannot stop prebootd: %s on %s and no live pid in %s\n",
                    ask_denied ? "permission denied" : "no answer", c->socket,
                    c->pid_file ? c->pid_file : "(no pid file)");
            return EXIT_ERROR;
        }
        if (!pb_os_process_terminate(pid, &error)) {
            fprintf(stderr, "prebootctl: %s\n", error->message);
            return EXIT_ERROR;
        }
    }

    gint64 deadline = g_get_monotonic_time() + (gint64)c->timeout_s * G_USEC_PER_SEC;
    while (g_get_monotonic_time() < deadline) {
        gboolean alive = pid > 0 ? pb_os_process_alive(pid) : answers(c);
        if (!alive) {
            printf("prebootd stopped\n");
            return EXIT_OK;
        }
        g_usleep(100 * 1000);
    }
    fprintf(stderr, "prebootctl: prebootd (pid %" G_GINT64_FORMAT ") still runs after %d s\n", pid,
            c->timeout_s);
    return EXIT_ERROR;
}

static int verb_status(const Ctl *c)
{
    const char *const argv[] = {"status", NULL};
    g_autoptr(GString) out = g_string_new(NULL);
    gboolean ok = FALSE;
    int rc = ask(c, 1, argv, out, &ok, TRUE);
    if (rc == EXIT_OK) {
        /* ERR: the daemon runs, but a configured service does not; the text says which
         * and why. LSB has no code of its own for that: 3, "not running", as systemctl
         * says of a failed unit. */
        print_reply(out, TRUE);
        if (!ok)
            fprintf(stderr, "prebootctl: prebootd runs, but a configured service does not\n");
        return ok ? EXIT_OK : EXIT_NOT_RUNNING;
    }
    gint64 pid = c->pid_file ? pb_os_pidfile_read(c->pid_file) : 0;
    if (ask_denied) {
        /* Not "does not answer": it may well answer, but not to this user. */
        fprintf(stderr,
                "prebootctl: permission denied on %s: root, the daemon's user and members of "
                "its group (or control_group) may use it\n",
                c->socket);
        return 4;
    }
    if (pid > 0) {
        /* LSB 4: "status unknown" - a process is there but does not answer. */
        printf("prebootd (pid %" G_GINT64_FORMAT ") is running but does not answer on %s\n", pid,
               c->socket);
        return EXIT_UNKNOWN;
    }
    if (rc == EXIT_NOT_RUNNING && c->pid_file && g_file_test(c->pid_file, G_FILE_TEST_EXISTS)) {
        /* LSB 1: "dead and /var/run pid file exists". */
        printf("prebootd is not running, but its pid file %s remains (it died)\n", c->pid_file);
        return EXIT_DEAD;
    }
    if (rc == EXIT_NOT_RUNNING)
        printf("prebootd is not running\n");
    return rc == EXIT_NOT_RUNNING ? EXIT_NOT_RUNNING : EXIT_UNKNOWN;
}

static int verb_showpid(const Ctl *c)
{
    gint64 pid = daemon_pid(c);
    if (pid == 0)
        return EXIT_NOT_RUNNING;
    printf("%" G_GINT64_FORMAT "\n", pid);
    return EXIT_OK;
}

/* force-reload, stats and plugin commands: print the reply; ERR is a failure. */
static int verb_pass(const Ctl *c, int argc, const char *const *argv)
{
    g_autoptr(GString) out = g_string_new(NULL);
    gboolean ok = FALSE;
    int rc = ask(c, argc, argv, out, &ok, FALSE);
    if (rc == EXIT_NOT_RUNNING) {
        fprintf(stderr, "prebootctl: prebootd is not running (no daemon on %s)\n", c->socket);
        return rc;
    }
    if (rc != EXIT_OK)
        return rc;
    print_reply(out, ok);
    return ok ? EXIT_OK : EXIT_ERROR;
}

/* The verbs the running daemon's plugins registered; the daemon answers "help" with them. */
static void print_plugin_verbs(const Ctl *c)
{
    const char *const argv[] = {"help", NULL};
    g_autoptr(GString) out = g_string_new(NULL);
    gboolean ok = FALSE;
    int rc = ask(c, 1, argv, out, &ok, TRUE);
    if (rc == EXIT_OK && ok) {
        printf("Plugin commands of the daemon on %s:\n%s", c->socket,
               out->len > 0 ? out->str : "  (none)\n");
    } else if (rc == EXIT_NOT_RUNNING) {
        printf("Plugin commands: prebootd is not running on %s; start it to list them.\n",
               c->socket);
    } else if (ask_denied) {
        printf("Plugin commands: permission denied on %s.\n", c->socket);
    } else {
        printf("Plugin commands: the daemon on %s did not list them.\n", c->socket);
    }
}

static gboolean load_defaults(Ctl *c, const char *config_opt, GError **error)
{
    PbGlobalConfig g = {0};
    g_autoptr(PbConfig) cfg = NULL;
    const char *path = config_opt;
    if (path == NULL && g_file_test(PB_SYSCONFDIR "/preboot.yaml", G_FILE_TEST_EXISTS))
        path = PB_SYSCONFDIR "/preboot.yaml";
    if (path != NULL) {
        cfg = pb_config_load(path, error);
        if (cfg == NULL)
            return FALSE;
        c->config = g_strdup(path);
        pb_global_config_copy(&g, &cfg->global);
    } else {
        pb_global_config_init_defaults(&g);
    }
    if (c->socket == NULL)
        c->socket = g_strdup(g.control_socket);
    /* The pid file belongs to the daemon of that configuration: with another socket named
     * (-s), that is another daemon, and a stop that gets no answer must not signal it. */
    if (c->pid_file == NULL && g.pid_file && *g.pid_file &&
        g_strcmp0(c->socket, g.control_socket) == 0)
        c->pid_file = g_strdup(g.pid_file);
    pb_global_config_clear(&g);
    return TRUE;
}

static void ctl_clear(Ctl *c)
{
    g_free(c->config);
    g_free(c->socket);
    g_free(c->pid_file);
    g_free(c->prebootd);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Ctl, ctl_clear)

int main(int argc, char **argv)
{
    g_auto(Ctl) c = {.timeout_s = 10};
    g_autofree char *config_opt = NULL;
    gboolean version = FALSE;
    gboolean help = FALSE;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_opt,
         "Configuration to read the socket and pid file from (default " PB_SYSCONFDIR
         "/preboot.yaml)",
         "FILE"},
        {"socket", 's', 0, G_OPTION_ARG_FILENAME, &c.socket, "Control socket", "PATH"},
        {"pidfile", 'p', 0, G_OPTION_ARG_FILENAME, &c.pid_file, "Pid file", "PATH"},
        {"timeout", 't', 0, G_OPTION_ARG_INT, &c.timeout_s,
         "Seconds to wait for answers, start and stop (default 10)", "SECONDS"},
        {"version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
        {"help", 'h', 0, G_OPTION_ARG_NONE, &help,
         "Show this help, with the running daemon's plugin commands", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("VERB [ARGS...]");
    g_option_context_set_summary(ctx, "Controls prebootd, the PXE preboot services daemon.");
    g_option_context_set_description(ctx, usage_verbs);
    g_option_context_add_main_entries(ctx, entries, NULL);
    /* Options end at the verb: what follows belongs to the (plugin) command. */
    g_option_context_set_strict_posix(ctx, TRUE);
    /* --help is ours: it asks the daemon for its plugins' commands, which needs -s/-c. */
    g_option_context_set_help_enabled(ctx, FALSE);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "prebootctl: %s\n", error->message);
        return EXIT_ERROR;
    }
    if (version) {
        printf("prebootctl %s (control protocol 1)\n", PACKAGE_VERSION);
        return EXIT_OK;
    }
    if (help) {
        g_autofree char *text = g_option_context_get_help(ctx, TRUE, NULL);
        fputs(text, stdout);
        if (!load_defaults(&c, config_opt, &error)) {
            printf("Plugin commands: unknown (%s)\n", error->message);
            return EXIT_OK;
        }
        print_plugin_verbs(&c);
        return EXIT_OK;
    }
    if (argc < 2) {
        g_autofree char *text = g_option_context_get_help(ctx, TRUE, NULL);
        fputs(text, stderr);
        return EXIT_ERROR;
    }
    if (c.timeout_s < 1) {
        fprintf(stderr, "prebootctl: --timeout must be at least 1 second\n");
        return EXIT_ERROR;
    }
    c.socket_set = c.socket != NULL;
    c.pid_file_set = c.pid_file != NULL;
    if (!load_defaults(&c, config_opt, &error)) {
        fprintf(stderr, "prebootctl: %s\n", error->message);
        return EXIT_ERROR;
    }
    /* $PREBOOTD: another daemon binary (tests run the one in the build tree). */
    const char *env = g_getenv("PREBOOTD");
    c.prebootd = g_strdup(env && *env ? env : PB_SBINDIR "/prebootd");

    const char *verb = argv[1];
    const char *const *rest = (const char *const *)argv + 1;
    int nrest = argc - 1;
    int rc;
    if (strcmp(verb, "start") == 0) {
        rc = verb_start(&c);
    } else if (strcmp(verb, "stop") == 0) {
        rc = verb_stop(&c);
    } else if (strcmp(verb, "restart") == 0) {
        rc = running(&c) ? verb_stop(&c) : EXIT_OK;
        if (rc == EXIT_OK)
            rc = verb_start(&c);
    } else if (strcmp(verb, "force-reload") == 0 || strcmp(verb, "reload") == 0) {
        const char *const r[] = {"reload", NULL};
        rc = verb_pass(&c, 1, r);
    } else if (strcmp(verb, "status") == 0) {
        rc = verb_status(&c);
    } else if (strcmp(verb, "showpid") == 0) {
        rc = verb_showpid(&c);
    } else {
        rc = verb_pass(&c, nrest, rest); /* stats, and plugin commands */
    }
    return rc;
}
