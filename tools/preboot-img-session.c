/* preboot-img-session.c - `preboot-img session NAME [client] DISK`: joins a multicast
 * session (lib/mcast) and restores its image onto DISK, the legacy `img session` of the
 * imaging maintenance prompt. Kept apart from preboot-img.c so the multicast client has its
 * own options and that file only dispatches to it. */
#include "build-config.h"

#include "mcast.h"
#include "net.h"
#include "preboot-img-session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void session_usage(FILE *f)
{
    fprintf(f, "usage: preboot-img session NAME [client] DISK [--server ADDR] [--delta]\n"
               "       [--label TEXT] [--port N] [--announce-group ADDR] [--wait SECONDS]\n"
               "       [--max-partial MIB] [--json]\n"
               "Joins multicast session NAME and restores its image onto DISK (a disk or a\n"
               "disk image file, created when missing). See preboot-img(8).\n");
}

static void session_progress(guint64 done, guint64 total, void *data)
{
    gboolean *quiet = data;
    if (*quiet || total == 0)
        return;
    fprintf(stderr, "session: %3d%% %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes\n",
            (int)(done * 100 / total), done, total);
}

int preboot_img_session(int argc, char **argv)
{
    PbMcastRecvOptions o = {.data_port = PB_MCAST_DATA_PORT, .wait_s = 60};
    gboolean json = FALSE;
    const char *name = NULL, *disk = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(a, "--json") == 0)
            json = TRUE;
        else if (strcmp(a, "--delta") == 0)
            o.delta = TRUE;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            session_usage(stdout);
            return 0;
        } else if (val != NULL && strcmp(a, "--server") == 0) {
            o.server = val;
            i++;
        } else if (val != NULL && strcmp(a, "--label") == 0) {
            o.label = val;
            i++;
        } else if (val != NULL && strcmp(a, "--port") == 0) {
            guint64 v = g_ascii_strtoull(val, &end, 10);
            if (*end != '\0' || v == 0 || v > 65535)
                goto bad;
            o.data_port = (guint16)v;
            i++;
        } else if (val != NULL && strcmp(a, "--wait") == 0) {
            guint64 v = g_ascii_strtoull(val, &end, 10);
            if (*end != '\0' || v == 0 || v > 86400)
                goto bad;
            o.wait_s = (guint)v;
            i++;
        } else if (val != NULL && strcmp(a, "--max-partial") == 0) {
            guint64 v = g_ascii_strtoull(val, &end, 10);
            if (*end != '\0' || v < 64 || v > 65536)
                goto bad;
            o.max_partial = v << 20;
            i++;
        } else if (val != NULL && strcmp(a, "--announce-group") == 0) {
            PbAddr g;
            if (!pb_addr_parse(val, 0, &g) || g.family != 4 || (g.addr[0] >> 4) != 0xe)
                goto bad;
            o.announce_group = ((guint32)g.addr[0] << 24) | ((guint32)g.addr[1] << 16) |
                               ((guint32)g.addr[2] << 8) | g.addr[3];
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "preboot-img session: unknown option or missing value: %s\n", a);
            return 2;
        } else if (name == NULL)
            name = a;
        else if (disk == NULL && strcmp(a, "client") == 0 && i + 1 < argc)
            continue; /* the legacy role word; "master" is not supported yet */
        else if (disk == NULL)
            disk = a;
        else {
            session_usage(stderr);
            return 2;
        }
        continue;
    bad:
        fprintf(stderr, "preboot-img session: bad value for %s: %s\n", a, val);
        return 2;
    }
    if (name == NULL || disk == NULL || !mcast_name_valid(name, strlen(name))) {
        session_usage(stderr);
        return 2;
    }
    if (strcmp(disk, "master") == 0) {
        fprintf(stderr, "preboot-img session: master sessions are not supported yet\n");
        return 2;
    }
    o.session = name;
    o.progress = session_progress;
    o.progress_data = &json;
    PbMcastRecvStats st;
    GError *e = NULL;
    gint64 t0 = g_get_monotonic_time();
    gboolean ok = pb_mcast_receive(disk, &o, &st, &e);
    double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
    if (json)
        printf("{\"command\":\"session\",\"session\":\"%s\",\"image\":\"%s\",\"ok\":%s,"
               "\"bytes_total\":%" G_GUINT64_FORMAT ",\"bytes_written\":%" G_GUINT64_FORMAT
               ",\"chunks\":%u,\"chunks_received\":%u,\"chunks_same\":%u,\"chunks_bad\":%u,"
               "\"datagrams\":%" G_GUINT64_FORMAT ",\"repairs_asked\":%" G_GUINT64_FORMAT
               ",\"foreign_datagrams\":%" G_GUINT64_FORMAT ",\"seconds\":%.3f}\n",
               name, st.image, ok ? "true" : "false", st.bytes_total, st.bytes_written,
               st.chunks_total, st.chunks_received, st.chunks_same, st.chunks_bad, st.rx_frags,
               st.nack_frags, st.foreign_datagrams, secs);
    if (!ok) {
        fprintf(stderr, "preboot-img session: %s\n", e->message);
        g_error_free(e);
        return 1;
    }
    if (!json)
        printf("session %s: restored image %s onto %s: %u chunks received, %u already there, "
               "%u rejected, %.1f s\n",
               name, st.image, disk, st.chunks_received, st.chunks_same, st.chunks_bad, secs);
    return 0;
}
