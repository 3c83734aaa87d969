/* tftp-serve.c - runs a preboot.yaml in the real host, in the foreground, for the interop
 * script while core/prebootd is not there to do it (the script prefers prebootd -f when
 * it works). SIGTERM/SIGINT stop it; SIGUSR1 writes `prebootctl stats`-style lines to the
 * file named by -s. Test helper only: never installed. */
#include "build-config.h"

#include "config.h"
#include "host.h"
#include "net.h"

#include <glib-unix.h>
#include <stdio.h>

static GMainLoop *loop;
static PbHost *host;
static const char *stats_file;

static gboolean on_term(gpointer data)
{
    g_main_loop_quit(loop);
    return G_SOURCE_CONTINUE;
}

static gboolean on_usr1(gpointer data)
{
    g_autoptr(GString) out = g_string_new(NULL);
    pb_host_stats(host, out);
    if (stats_file)
        g_file_set_contents(stats_file, out->str, (gssize)out->len, NULL);
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    if (argc == 4 && g_strcmp0(argv[1], "-s") == 0) {
        stats_file = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: tftp-serve [-s STATSFILE] CONFIG.yaml\n");
        return 2;
    }
    /* Keep the net error quark's name in this binary, not in a module (see
     * test-tftp-plugin.c). */
    (void)PB_NET_ERROR;
    g_autoptr(GError) error = NULL;
    PbConfig *cfg = pb_config_load(argv[1], &error);
    if (cfg == NULL) {
        fprintf(stderr, "tftp-serve: %s\n", error->message);
        return 1;
    }
    host = pb_host_new(&cfg->global);
    pb_host_set_foreground(host, TRUE);
    g_autoptr(GString) report = g_string_new(NULL);
    if (!pb_host_apply(host, cfg, report, &error)) {
        fprintf(stderr, "tftp-serve: %s\n", error->message);
        return 1;
    }
    if (report->len)
        fprintf(stderr, "%s", report->str);
    loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGTERM, on_term, NULL);
    g_unix_signal_add(SIGINT, on_term, NULL);
    g_unix_signal_add(SIGUSR1, on_usr1, NULL);
    g_main_loop_run(loop);
    pb_host_free(host);
    g_main_loop_unref(loop);
    return 0;
}
