/* pb-serve.c - runs the plugin host in the foreground from a configuration file until
 * SIGTERM or SIGINT: what `prebootd -f -c FILE` does, for the end-to-end tests while the
 * daemon's own front end is not built yet (the harness prefers prebootd once its
 * --version answers). No daemonising, no control socket: just the host and its loop. */
#include "config.h"
#include "host.h"

#include <glib-unix.h>
#include <stdio.h>

static gboolean on_signal(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CONFIG.yaml\n", argv[0]);
        return 2;
    }
    g_autoptr(GError) error = NULL;
    PbConfig *cfg = pb_config_load(argv[1], &error);
    if (cfg == NULL) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    g_autoptr(PbHost) host = pb_host_new(&cfg->global);
    g_autoptr(GString) report = g_string_new(NULL);
    if (!pb_host_apply(host, cfg, report, &error)) {
        fprintf(stderr, "%s\n%s", error->message, report->str);
        return 1;
    }
    if (report->len)
        fprintf(stderr, "%s", report->str);
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGTERM, on_signal, loop);
    g_unix_signal_add(SIGINT, on_signal, loop);
    fprintf(stderr, "pb-serve: running\n");
    g_main_loop_run(loop);
    pb_host_stop_all(host);
    return 0;
}
