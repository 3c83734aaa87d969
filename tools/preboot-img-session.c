/* preboot-img-session.c - `preboot-img session NAME [client] DISK`: joins a multicast
 * session (lib/mcast) and restores its image onto DISK, the legacy `img session` of the
 * imaging maintenance prompt. Kept apart from preboot-img.c so the multicast client has its
 * own options and that file only dispatches to it. */
#include "build-config.h"

#include "image-http.h"
#include "mcast.h"
#include "net.h"
#include "preboot-img-session.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void session_usage(FILE *f)
{
    fprintf(f, "usage: preboot-img session NAME [client] DISK [--server ADDR] [--delta]\n"
               "       [--label TEXT] [--port N] [--announce-group ADDR] [--wait SECONDS]\n"
               "       [--max-partial MIB] [--http URL] [--no-fallback]\n"
               "       [--fallback-after SECONDS] [--json]\n"
               "       preboot-img session NAME master DISK [clients=N] [t=MIN] [--rate MBIT]\n"
               "       [--image NAME] [--range A.B.C.D/N] [--spool DIR] [--port N] [--json]\n"
               "Joins multicast session NAME and restores its image onto DISK (a disk or a\n"
               "disk image file, created when missing); as master, captures DISK and sends it\n"
               "to the session (the server stores it with `prebootctl mcast store`).\n"
               "What the session does not bring (it ended or dropped us, the sender says we\n"
               "are slow, or nothing came for --fallback-after s, default 5) is fetched from\n"
               "the imaging server by unicast: --http URL, else http://ADDR:8080 of --server.\n"
               "Started after the session ended (nothing announced for --fallback-after s),\n"
               "it asks that server which image the session sent and restores it by unicast.\n"
               "See preboot-multicast(8).\n");
}

static void master_log(int level, const char *msg, void *data)
{
    if (level <= 2)
        fprintf(stderr, "master: %s\n", msg);
}

/* Removes the spool store made for one master run: its files are ours alone. */
static void remove_tree(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *n;
    while (d != NULL && (n = g_dir_read_name(d)) != NULL) {
        g_autofree char *p = g_build_filename(path, n, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
            remove_tree(p);
        else
            (void)g_remove(p);
    }
    if (d != NULL)
        g_dir_close(d);
    (void)g_rmdir(path);
}

typedef struct {
    guint clients, t_min, rate;
    const char *image, *range, *spool;
} Master;

/* A master: the legacy `img session NAME master`. Captures the disk into a spool store (a
 * temporary directory unless --spool), then sends it as session NAME from here. */
static int run_master(const char *name, const char *disk, const Master *ms, guint16 port,
                      gboolean json)
{
    GError *e = NULL;
    guint32 base;
    guint prefix;
    if (!mcast_range_parse(ms->range, &base, &prefix)) {
        fprintf(stderr, "preboot-img session: --range %s: not a multicast range\n", ms->range);
        return 2;
    }
    g_autofree char *tmp = NULL;
    const char *spool = ms->spool;
    if (spool == NULL && (spool = tmp = g_dir_make_tmp("preboot-master-XXXXXX", &e)) == NULL)
        goto fail;
    PbStore *store = pb_store_open(spool, TRUE, &e);
    if (store == NULL)
        goto fail;
    PbChunkIO io;
    pb_store_chunk_io(store, &io);
    PbCaptureOptions co = {.codec = PB_CODEC_ZSTD, .level = 3};
    PbCaptureStats cs;
    PbManifest *m = pb_capture(disk, &io, &co, &cs, &e);
    if (m == NULL) {
        pb_store_close(store);
        goto fail;
    }
    PbMcastSendOptions o;
    pb_mcast_send_options_init(&o);
    o.name = name;
    o.image = ms->image != NULL ? ms->image : name;
    o.group = mcast_group_for(name, base, prefix, NULL, NULL);
    o.announce_group = base;
    o.data_port = port;
    o.rate_mbit = ms->rate;
    o.expected = ms->clients;
    o.later_join_s = ms->t_min * 60;
    if (o.expected == 0 && o.later_join_s == 0)
        o.later_join_s = 60;
    o.log = master_log;
    PbMcastSender *snd = pb_mcast_sender_new(m, &io, &o, &e);
    gboolean ok = snd != NULL && pb_mcast_sender_run(snd, &e);
    PbMcastSendStats st = {0};
    if (snd != NULL)
        pb_mcast_sender_stats(snd, &st);
    if (json && snd != NULL) {
        g_autoptr(GString) out = g_string_new(NULL);
        pb_mcast_stats_format(name, o.image, o.group, &st, TRUE, out);
        printf("{\"command\":\"session\",\"role\":\"master\",\"ok\":%s,\"session\":%s}\n",
               ok ? "true" : "false", out->str);
    } else if (ok)
        printf("session %s: sent %s to %u receivers\n", name, disk, st.clients_done);
    pb_mcast_send_stats_clear(&st);
    pb_mcast_sender_free(snd);
    pb_store_close(store);
    if (tmp != NULL)
        remove_tree(tmp);
    if (!ok)
        goto fail;
    return 0;
fail:
    if (tmp != NULL)
        remove_tree(tmp);
    fprintf(stderr, "preboot-img session: %s\n", e != NULL ? e->message : "failed");
    g_clear_error(&e);
    return 1;
}

static void session_progress(guint64 done, guint64 total, void *data)
{
    gboolean *quiet = data;
    if (*quiet || total == 0)
        return;
    fprintf(stderr, "session: %3d%% %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes\n",
            (int)(done * 100 / total), done, total);
}

int preboot_img_session_lookup(void *data, const char *session, PbMcastRecord *rec, GError **error)
{
    g_autoptr(GError) e = NULL;
    g_autofree char *path = g_strconcat(PB_MCAST_RECORD_PREFIX, session, NULL);
    g_autoptr(GBytes) b = pb_http_get_at(data, path, PB_MCAST_RECORD_MAX, &e);
    if (b == NULL && g_error_matches(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING))
        return PB_MCAST_LOOKUP_UNKNOWN;
    if (b == NULL) {
        g_propagate_error(error, g_steal_pointer(&e));
        return PB_MCAST_LOOKUP_FAILED;
    }
    gsize len = 0;
    const char *text = g_bytes_get_data(b, &len);
    return pb_mcast_record_parse(text, len, rec, error) ? PB_MCAST_LOOKUP_FOUND
                                                        : PB_MCAST_LOOKUP_FAILED;
}

/* The unicast fallback's manifest, when the session ended before the receiver had it. */
static PbManifest *fallback_manifest(void *data, const char *image, GError **error)
{
    return pb_http_get_manifest(data, image, error);
}

int preboot_img_session(int argc, char **argv)
{
    PbMcastRecvOptions o = {.data_port = PB_MCAST_DATA_PORT, .wait_s = 60};
    gboolean json = FALSE, master = FALSE, no_fallback = FALSE;
    const char *name = NULL, *disk = NULL, *http = NULL;
    Master ms = {.rate = PB_MCAST_RATE_DEFAULT, .range = PB_MCAST_RANGE_DEFAULT};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(a, "--json") == 0)
            json = TRUE;
        else if (strcmp(a, "--delta") == 0)
            o.delta = TRUE;
        else if (strcmp(a, "--no-fallback") == 0)
            no_fallback = TRUE;
        else if (val != NULL && strcmp(a, "--http") == 0) {
            http = val;
            i++;
        } else if (val != NULL && strcmp(a, "--fallback-after") == 0) {
            guint64 v = g_ascii_strtoull(val, &end, 10);
            if (*end != '\0' || v == 0 || v > 86400)
                goto bad;
            o.fallback_after_s = (guint)v;
            i++;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            session_usage(stdout);
            return 0;
        } else if (val != NULL && strcmp(a, "--server") == 0) {
            o.server = val;
            i++;
        } else if (val != NULL && strcmp(a, "--image") == 0) {
            ms.image = val;
            i++;
        } else if (val != NULL && strcmp(a, "--range") == 0) {
            ms.range = val;
            i++;
        } else if (val != NULL && strcmp(a, "--spool") == 0) {
            ms.spool = val;
            i++;
        } else if (val != NULL && strcmp(a, "--rate") == 0) {
            guint64 v = g_ascii_strtoull(val, &end, 10);
            if (*end != '\0' || v == 0 || v > 100000)
                goto bad;
            ms.rate = (guint)v;
            i++;
        } else if (g_str_has_prefix(a, "clients=") || g_str_has_prefix(a, "t=")) {
            const char *num = strchr(a, '=') + 1;
            guint64 v = g_ascii_strtoull(num, &end, 10);
            if (*num == '\0' || *end != '\0' || v > 10080) {
                fprintf(stderr, "preboot-img session: bad %s\n", a);
                return 2;
            }
            if (a[0] == 'c')
                ms.clients = (guint)v;
            else
                ms.t_min = (guint)v;
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
            continue; /* the legacy role word */
        else if (disk == NULL && strcmp(a, "master") == 0 && i + 1 < argc)
            master = TRUE;
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
    if (master)
        return run_master(name, disk, &ms, o.data_port, json);
    o.session = name;
    o.progress = session_progress;
    o.progress_data = &json;
    PbMcastRecvStats st;
    GError *e = NULL;
    /* The unicast fallback: the imaging server the announcements must come from. */
    g_autoptr(PbHttp) h = NULL;
    PbChunkIO fio;
    g_autofree char *loc = NULL;
    if (http != NULL || o.server != NULL) {
        loc = http != NULL ? g_strdup(http)
                           : g_strdup_printf("http://%s:%u", o.server, PB_HTTP_DEFAULT_PORT);
        h = pb_http_new(loc, g_getenv("PREBOOT_TOKEN"), 30, &e);
        if (h == NULL) {
            fprintf(stderr, "preboot-img session: %s: %s\n", loc, e->message);
            g_error_free(e);
            return 2;
        }
        /* Started after the session ended: the server's record names its image. */
        o.lookup = preboot_img_session_lookup;
        o.lookup_data = h;
        o.lookup_where = loc; /* pb_http_base() may move on a referral */
    }
    if (h != NULL && !no_fallback) {
        pb_http_chunk_io(h, &fio);
        o.fallback = &fio;
        o.fallback_manifest = fallback_manifest;
        o.fallback_data = h;
    }
    gint64 t0 = g_get_monotonic_time();
    gboolean ok = pb_mcast_receive(disk, &o, &st, &e);
    double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
    if (json)
        printf("{\"command\":\"session\",\"session\":\"%s\",\"image\":\"%s\",\"ok\":%s,"
               "\"bytes_total\":%" G_GUINT64_FORMAT ",\"bytes_written\":%" G_GUINT64_FORMAT
               ",\"chunks\":%u,\"chunks_received\":%u,\"chunks_same\":%u,\"chunks_bad\":%u,"
               "\"datagrams\":%" G_GUINT64_FORMAT ",\"repairs_asked\":%" G_GUINT64_FORMAT
               ",\"foreign_datagrams\":%" G_GUINT64_FORMAT
               ",\"chunks_fallback\":%u,\"fallback\":\"%s\",\"late\":%s,\"seconds\":%.3f}\n",
               name, st.image, ok ? "true" : "false", st.bytes_total, st.bytes_written,
               st.chunks_total, st.chunks_received, st.chunks_same, st.chunks_bad, st.rx_frags,
               st.nack_frags, st.foreign_datagrams, st.chunks_fallback, st.fallback_why,
               st.late ? "true" : "false", secs);
    if (!ok) {
        fprintf(stderr, "preboot-img session: %s\n", e->message);
        g_error_free(e);
        return 1;
    }
    if (!json && st.late)
        printf("session %s: session ended; restored by unicast: image %s onto %s, %u chunks from "
               "the imaging server, %.1f s\n",
               name, st.image, disk, st.chunks_fallback, secs);
    else if (!json)
        printf("session %s: restored image %s onto %s: %u chunks received, %u already there, "
               "%u rejected, %u by unicast%s%s%s, %.1f s\n",
               name, st.image, disk, st.chunks_received, st.chunks_same, st.chunks_bad,
               st.chunks_fallback, st.fallback_why[0] ? " (" : "", st.fallback_why,
               st.fallback_why[0] ? ")" : "", secs);
    return 0;
}
