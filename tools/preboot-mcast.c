/* preboot-mcast - the legacy `zmgmcast -status` (novell-zmgmcast): the imaging server's
 * statistics as D.11.2 defines them (PXE Requests, Images Sent, Images Received, reset when
 * the server restarts), read from prebootd's control socket, and the multicast plugin's
 * sessions (`prebootctl mcast status`) when it runs; without it there are none.
 *
 *   preboot-mcast -status          text
 *   preboot-mcast -status --json   for tools
 * Exit: 0, 1 error, 3 prebootd not running. */
#include "build-config.h"

#include "config.h"
#include "control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"PXE Requests", "Images Sent", "Images Received"};
static const char *const keys[] = {"pxe_requests", "images_sent", "images_received"};

static int usage(void)
{
    fprintf(stderr, "usage: preboot-mcast [-c CONFIG] [-s SOCKET] -status [--json]\n");
    return 1;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *sock = NULL;
    gboolean status = FALSE, json = FALSE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-status") == 0 || strcmp(a, "--status") == 0 || strcmp(a, "status") == 0)
            status = TRUE;
        else if (strcmp(a, "--json") == 0 || strcmp(a, "-json") == 0)
            json = TRUE;
        else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc)
            config = argv[++i];
        else if ((strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0) && i + 1 < argc)
            sock = argv[++i];
        else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("preboot-mcast %s\n", PACKAGE_VERSION);
            return 0;
        } else
            return usage();
    }
    if (!status)
        return usage();
    g_autoptr(GError) error = NULL;
    g_autofree char *socket_path = g_strdup(sock);
    if (socket_path == NULL) {
        PbGlobalConfig g = {0};
        g_autoptr(PbConfig) cfg = NULL;
        if (config == NULL && g_file_test(PB_SYSCONFDIR "/preboot.yaml", G_FILE_TEST_EXISTS))
            config = PB_SYSCONFDIR "/preboot.yaml";
        if (config != NULL) {
            cfg = pb_config_load(config, &error);
            if (cfg == NULL) {
                fprintf(stderr, "preboot-mcast: %s\n", error->message);
                return 1;
            }
            pb_global_config_copy(&g, &cfg->global);
        } else {
            pb_global_config_init_defaults(&g);
        }
        socket_path = g_strdup(g.control_socket);
        pb_global_config_clear(&g);
    }
    const char *const req[] = {"stats", NULL};
    g_autoptr(GString) out = g_string_new(NULL);
    gboolean ok = FALSE;
    if (!pb_control_request(socket_path, 1, req, 10000, out, &ok, &error)) {
        if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            fprintf(stderr, "preboot-mcast: prebootd is not running (no daemon on %s)\n",
                    socket_path);
            return 3;
        }
        fprintf(stderr, "preboot-mcast: %s\n", error->message);
        return 1;
    }
    if (!ok) {
        fprintf(stderr, "preboot-mcast: %s", out->str);
        return 1;
    }
    /* "INSTANCE: PXE Requests = N" lines; several imaging instances add up. */
    gint64 v[3] = {0, 0, 0};
    gboolean found = FALSE;
    g_auto(GStrv) lines = g_strsplit(out->str, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++)
        for (guint k = 0; k < G_N_ELEMENTS(names); k++) {
            g_autofree char *pat = g_strdup_printf(": %s = ", names[k]);
            const char *at = strstr(lines[i], pat);
            if (at != NULL) {
                v[k] += g_ascii_strtoll(at + strlen(pat), NULL, 10);
                found = TRUE;
            }
        }
    /* The sessions, from the multicast plugin's `mcast status` when one runs (a daemon
     * without it does not know the verb). */
    const char *const mreq[] = {"mcast", "status", json ? "--json" : NULL, NULL};
    g_autoptr(GString) sessions = g_string_new(NULL);
    gboolean have_mcast = FALSE;
    g_autoptr(GError) merr = NULL;
    if (!pb_control_request(socket_path, json ? 3 : 2, mreq, 10000, sessions, &have_mcast, &merr))
        have_mcast = FALSE;
    if (json) {
        g_strchomp(sessions->str);
        printf("{\"imaging_server\":%s,\"%s\":%" G_GINT64_FORMAT ",\"%s\":%" G_GINT64_FORMAT
               ",\"%s\":%" G_GINT64_FORMAT ",%s%s}\n",
               found ? "true" : "false", keys[0], v[0], keys[1], v[1], keys[2], v[2],
               have_mcast ? "\"multicast\":" : "\"sessions\":[]", have_mcast ? sessions->str : "");
        return 0;
    }
    if (!found)
        printf("no imaging server runs in this prebootd (no imaging instance)\n");
    for (guint k = 0; k < G_N_ELEMENTS(names); k++)
        printf("%-16s %" G_GINT64_FORMAT "\n", names[k], v[k]);
    if (have_mcast)
        printf("%s", sessions->str);
    else
        printf("no multicast sessions\n");
    return 0;
}
