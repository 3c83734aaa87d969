/* mcast-sender.c - one multicast session from a lib/image store without the daemon: what
 * the multicast plugin runs in its thread, for tests/mcast-netns.sh and bench/multicast.sh.
 * Logs to stderr; prints the final state (pb_mcast_stats_format, --json) on stdout and
 * exits 0 when the session finished with every receiver done. */
#include "mcast.h"
#include "net.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>

/* --forge: what an unfriendly host on the LAN can do after overhearing an announcement:
 * send datagrams with the session's id, its image id and the real chunk hashes and object
 * numbers, but bytes of its own. Each object is sent once, then the forger exits.
 * Receivers must write none of it (they check every chunk against its hash). */
static int forge(const char *session, guint32 ann_group, guint16 port, PbManifest *m)
{
    PbAddr bind = {.family = 4, .port = port}, ag = {.family = 4};
    guint32 a = g_htonl(ann_group);
    memcpy(ag.addr, &a, 4);
    GError *e = NULL;
    pb_socket_t sock = pb_udp_open(&bind, PB_UDP_REUSEADDR, &e);
    if (sock == PB_SOCKET_NONE || !pb_udp_join_group(sock, &ag, 0, &e)) {
        fprintf(stderr, "mcast-sender: %s\n", e->message);
        return 1;
    }
    McastMsg ann;
    guint8 buf[MCAST_DATAGRAM_MAX + 1];
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    for (;;) {
        if (g_get_monotonic_time() > deadline) {
            fprintf(stderr, "mcast-sender: --forge: no announcement of %s\n", session);
            return 1;
        }
        gssize n = pb_udp_recv(sock, buf, sizeof(buf), NULL, NULL, NULL, NULL);
        if (n < 0) {
            g_usleep(10000);
            continue;
        }
        if (mcast_msg_parse(buf, (gsize)n, &ann) == MCAST_PARSE_OK &&
            ann.type == MCAST_MSG_ANNOUNCE && strcmp(ann.u.announce.name, session) == 0 &&
            ann.u.announce.state == MCAST_STATE_SENDING)
            break;
    }
    PbAddr to = {.family = 4, .port = ann.u.announce.data_port};
    guint32 g = g_htonl(ann.u.announce.group);
    memcpy(to.addr, &g, 4);
    pb_udp_set_multicast_ttl(sock, 1, NULL);
    guint8 junk[MCAST_FRAG_MAX];
    guint obj = 0, sent = 0;
    g_autoptr(GHashTable) seen =
        g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, NULL);
    for (guint i = 0; i < m->chunks->len; i++) {
        const PbChunkRef *r = &g_array_index(m->chunks, PbChunkRef, i);
        GBytes *k = g_bytes_new(r->hash, PB_HASH_LEN);
        if (r->kind != PB_CHUNK_DATA || g_hash_table_contains(seen, k)) {
            g_bytes_unref(k);
            continue;
        }
        g_hash_table_add(seen, k);
        obj++;
        McastMsg d = {.type = MCAST_MSG_DATA, .session_id = ann.session_id};
        memcpy(d.u.data.image_id, ann.u.announce.seal, 8);
        memcpy(d.u.data.hash, r->hash, PB_HASH_LEN);
        d.u.data.object = obj;
        d.u.data.object_len = (guint32)r->stored;
        d.u.data.codec = r->codec;
        d.u.data.kind = MCAST_OBJ_CHUNK;
        for (guint32 off = 0; off < r->stored; off += ann.u.announce.frag_size) {
            for (guint j = 0; j < sizeof(junk); j++)
                junk[j] = (guint8)g_random_int();
            d.u.data.offset = off;
            d.u.data.payload = junk;
            d.u.data.payload_len = (guint16)MIN(ann.u.announce.frag_size, r->stored - off);
            g_autoptr(GByteArray) out = g_byte_array_new();
            if (mcast_msg_build(&d, out))
                pb_udp_send(sock, out->data, out->len, &to, NULL, 0, NULL);
            if (++sent % 64 == 0)
                g_usleep(1000);
        }
    }
    fprintf(stderr, "mcast-sender: --forge: sent %u forged datagrams for %u chunks\n", sent, obj);
    pb_udp_close(sock);
    return 0;
}

static void log_line(int level, const char *msg, void *data)
{
    int verbose = GPOINTER_TO_INT(data);
    if (level <= verbose)
        fprintf(stderr, "mcast-sender: %s\n", msg);
}

int main(int argc, char **argv)
{
    g_autofree char *store = NULL, *image = NULL, *session = NULL, *group = NULL, *range = NULL,
                    *bind = NULL;
    int port = PB_MCAST_DATA_PORT, ctl = 0, rate = PB_MCAST_RATE_DEFAULT, clients = 0, later = 0,
        first = 0, drop = 10, passes = 20, slow = 10, verbose = 2;
    gboolean forger = FALSE, slow_unicast = FALSE;
    GOptionEntry entries[] = {
        {"store", 0, 0, G_OPTION_ARG_STRING, &store, "lib/image store directory", "DIR"},
        {"image", 0, 0, G_OPTION_ARG_STRING, &image, "image name", "NAME"},
        {"session", 0, 0, G_OPTION_ARG_STRING, &session, "session name", "NAME"},
        {"range", 0, 0, G_OPTION_ARG_STRING, &range, "group range", "A.B.C.D/N"},
        {"group", 0, 0, G_OPTION_ARG_STRING, &group, "session group (default: from the name)",
         "ADDR"},
        {"bind", 0, 0, G_OPTION_ARG_STRING, &bind, "local address", "ADDR"},
        {"port", 0, 0, G_OPTION_ARG_INT, &port, "data port", "N"},
        {"ctl-port", 0, 0, G_OPTION_ARG_INT, &ctl, "control port (0: any)", "N"},
        {"rate", 0, 0, G_OPTION_ARG_INT, &rate, "Mbit/s", "N"},
        {"clients", 0, 0, G_OPTION_ARG_INT, &clients, "start when this many joined", "N"},
        {"later", 0, 0, G_OPTION_ARG_INT, &later, "start S s after the last join", "S"},
        {"first", 0, 0, G_OPTION_ARG_INT, &first, "give up when nobody joined in S s", "S"},
        {"drop", 0, 0, G_OPTION_ARG_INT, &drop, "drop receivers silent S s", "S"},
        {"passes", 0, 0, G_OPTION_ARG_INT, &passes, "carousel passes at most", "N"},
        {"slow", 0, 0, G_OPTION_ARG_INT, &slow, "slow receiver threshold (% asked again)", "P"},
        {"slow-unicast", 0, 0, G_OPTION_ARG_NONE, &slow_unicast,
         "tell slow receivers to finish by unicast", NULL},
        {"forge", 0, 0, G_OPTION_ARG_NONE, &forger, "forge datagrams for the session", NULL},
        {"verbose", 'v', 0, G_OPTION_ARG_INT, &verbose, "log level 0-4", "N"},
        {NULL}};
    g_autoptr(GOptionContext) ctx = g_option_context_new("- send one multicast session");
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *e = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &e) || store == NULL || image == NULL ||
        session == NULL) {
        fprintf(stderr, "mcast-sender: %s\n", e ? e->message : "--store, --image and --session");
        return 2;
    }
    guint32 base = 0, g = 0;
    guint prefix = 0;
    if (!mcast_range_parse(range ? range : PB_MCAST_RANGE_DEFAULT, &base, &prefix)) {
        fprintf(stderr, "mcast-sender: bad --range\n");
        return 2;
    }
    if (group != NULL) {
        PbAddr a;
        if (!pb_addr_parse(group, 0, &a) || a.family != 4) {
            fprintf(stderr, "mcast-sender: bad --group\n");
            return 2;
        }
        g = ((guint32)a.addr[0] << 24) | ((guint32)a.addr[1] << 16) | ((guint32)a.addr[2] << 8) |
            a.addr[3];
    } else
        g = mcast_group_for(session, base, prefix, NULL, NULL);
    g_autoptr(PbStore) st = pb_store_open(store, FALSE, &e);
    PbManifest *m = st ? pb_store_get_manifest(st, image, &e) : NULL;
    if (m == NULL) {
        fprintf(stderr, "mcast-sender: %s\n", e->message);
        return 1;
    }
    if (forger) {
        int rc = forge(session, base, (guint16)port, m);
        pb_manifest_free(m);
        return rc;
    }
    PbChunkIO io;
    pb_store_chunk_io(st, &io);
    PbMcastSendOptions o;
    pb_mcast_send_options_init(&o);
    o.name = session;
    o.image = image;
    o.group = g;
    o.announce_group = base;
    o.data_port = (guint16)port;
    o.ctl_port = (guint16)ctl;
    o.bind = bind;
    o.rate_mbit = (guint)rate;
    o.expected = (guint)clients;
    o.later_join_s = (guint)later;
    o.first_join_s = (guint)first;
    o.drop_s = (guint)drop;
    o.max_passes = (guint)passes;
    o.slow_percent = (guint)slow;
    o.slow_policy = slow_unicast ? PB_MCAST_SLOW_UNICAST : PB_MCAST_SLOW_WAIT;
    o.log = log_line;
    o.log_data = GINT_TO_POINTER(verbose);
    PbMcastSender *s = pb_mcast_sender_new(m, &io, &o, &e);
    if (s == NULL) {
        fprintf(stderr, "mcast-sender: %s\n", e->message);
        return 1;
    }
    gboolean ok = pb_mcast_sender_run(s, &e);
    PbMcastSendStats ss = {0};
    pb_mcast_sender_stats(s, &ss);
    g_autoptr(GString) out = g_string_new(NULL);
    pb_mcast_stats_format(session, image, g, &ss, TRUE, out);
    printf("%s\n", out->str);
    int rc = ok && ss.clients_dropped == 0 && ss.clients_done > 0 ? 0 : 1;
    if (!ok)
        fprintf(stderr, "mcast-sender: %s\n", e->message);
    pb_mcast_send_stats_clear(&ss);
    pb_mcast_sender_free(s);
    return rc;
}
