/* mcast-send.c - the sending side of a multicast session: waits for receivers, then sends
 * the manifest and every distinct chunk in passes (a carousel) at a set rate, repairing the
 * fragments receivers ask for again while they keep up. A receiver that asks for more than
 * its share is marked slow and no longer repaired: it completes from later passes, so the
 * room goes on at the pace of those who keep up. Receivers silent too long are dropped. */
#define _GNU_SOURCE
#include "mcast.h"

#include "net.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH          32         /* datagrams per send call */
#define CACHE_OBJECTS  16         /* recent objects kept for repairs */
#define REPAIR_MAX     (1u << 18) /* fragments queued for repair, all receivers together */
#define PER_SOURCE_MAX 16         /* receiver ids per source address */
#define ANNOUNCE_US    (250 * 1000)
#define WINDOW_US      (250 * 1000) /* slow receivers are told apart this fast */

G_DEFINE_QUARK(pb - mcast - error - quark, pb_mcast_error)

typedef struct {
    guint8 kind; /* McastObjKind */
    guint8 hash[PB_HASH_LEN];
    PbChunkRef ref;
} Obj;

typedef struct {
    PbMcastClientInfo info;
    PbAddr addr;
    guint64 win_nack; /* fragments asked for in this window */
    gint64 rate_t;    /* when rx_prev was reported */
    guint64 rx_prev;
    double rx_mbit; /* what reaches it, smoothed: the pace for the stragglers */
    gboolean told;  /* told to finish by unicast (slow_policy unicast), until it says it went */
} Client;

typedef struct {
    guint32 obj;
    guint32 nfrags;
    guint8 *bits;
    guint64 requester; /* the one client asking, or 0 when several did */
    PbAddr to;
} Repair;

typedef struct {
    guint32 obj;
    GBytes *bytes;
    guint8 codec;
} Cached;

struct PbMcastSender {
    PbManifest *m;
    PbChunkIO io;
    PbMcastSendOptions o;
    char *name, *image, *bind;
    GArray *objs;
    GBytes *manifest_text;
    pb_socket_t sock;
    PbAddr group, announce;
    guint16 ctl_port;
    guint64 session_id;
    guint8 image_id[8];

    GMutex mu; /* guards everything below that the status and controls touch */
    gboolean go, abort_flag, finished;
    guint expected;
    GHashTable *clients; /* guint64* id -> Client* */
    PbMcastSendStats st;
    gint64 last_join_us;
    gint64 refused_logged_us;

    GThread *thread;
    GError *thread_error;

    /* sender thread only */
    Cached cache[CACHE_OBJECTS];
    guint cache_next;
    GQueue repairs;
    GHashTable *repair_by_obj; /* obj -> Repair* */
    guint64 repair_pending;
    double tokens;
    gint64 tokens_us;
    guint rate_mbit; /* the current rate: o.rate_mbit, lower for the stragglers */
    gint64 next_announce_us, window_us;
    guint64 win_sent;
    guint8 *batch;
};

void pb_mcast_send_options_init(PbMcastSendOptions *o)
{
    memset(o, 0, sizeof(*o));
    o->data_port = PB_MCAST_DATA_PORT;
    o->rate_mbit = PB_MCAST_RATE_DEFAULT;
    o->first_join_s = 0;
    o->later_join_s = 60;
    o->drop_s = 15;
    o->max_clients = 256;
    o->max_passes = 20;
    o->slow_percent = 10;
    o->ttl = 1;
}

void pb_mcast_send_stats_clear(PbMcastSendStats *st)
{
    if (st->clients != NULL)
        g_array_unref(st->clients);
    memset(st, 0, sizeof(*st));
}

static void slog(PbMcastSender *s, int level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void slog(PbMcastSender *s, int level, const char *fmt, ...)
{
    if (s->o.log == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    s->o.log(level, msg, s->o.log_data);
}

static gint64 now_us(void)
{
    return g_get_monotonic_time();
}

static gboolean set_buf(pb_socket_t sock, int opt, int force, int bytes)
{
    /* FORCE passes rmem_max/wmem_max when we may (root); otherwise the kernel caps it. */
    if (setsockopt((int)sock, SOL_SOCKET, force, &bytes, sizeof(bytes)) == 0)
        return TRUE;
    return setsockopt((int)sock, SOL_SOCKET, opt, &bytes, sizeof(bytes)) == 0;
}

PbMcastSender *pb_mcast_sender_new(PbManifest *m, PbChunkIO *io, const PbMcastSendOptions *o,
                                   GError **error)
{
    if (!mcast_name_valid(o->name, strlen(o->name)) ||
        !mcast_name_valid(o->image, strlen(o->image))) {
        g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_FAILED,
                    "session and image names must be [A-Za-z0-9._-]");
        pb_manifest_free(m);
        return NULL;
    }
    PbMcastSender *s = g_new0(PbMcastSender, 1);
    s->m = m;
    s->io = *io;
    s->o = *o;
    s->name = g_strdup(o->name);
    s->image = g_strdup(o->image);
    s->bind = g_strdup(o->bind);
    s->o.name = s->name;
    s->o.image = s->image;
    s->o.bind = s->bind;
    if (s->o.rate_mbit == 0)
        s->o.rate_mbit = PB_MCAST_RATE_DEFAULT;
    if (s->o.max_clients == 0)
        s->o.max_clients = 256;
    s->expected = o->expected;
    s->sock = PB_SOCKET_NONE;
    g_mutex_init(&s->mu);
    s->clients = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
    s->repair_by_obj = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_queue_init(&s->repairs);
    s->batch = g_malloc(BATCH * MCAST_DATAGRAM_MAX);

    GString *text = pb_manifest_build(m);
    s->manifest_text = g_string_free_to_bytes(text);
    memcpy(s->image_id, m->seal, 8);
    s->objs = g_array_new(FALSE, TRUE, sizeof(Obj));
    Obj mo = {.kind = MCAST_OBJ_MANIFEST};
    memcpy(mo.hash, m->seal, PB_HASH_LEN);
    g_array_append_val(s->objs, mo);
    g_autoptr(GHashTable) seen = g_hash_table_new(g_bytes_hash, g_bytes_equal);
    g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    for (guint i = 0; i < m->chunks->len; i++) {
        const PbChunkRef *r = &g_array_index(m->chunks, PbChunkRef, i);
        if (r->kind != PB_CHUNK_DATA)
            continue;
        GBytes *k = g_bytes_new(r->hash, PB_HASH_LEN);
        if (g_hash_table_contains(seen, k)) {
            g_bytes_unref(k);
            continue;
        }
        g_hash_table_add(seen, k);
        g_ptr_array_add(keys, k);
        Obj ob = {.kind = MCAST_OBJ_CHUNK, .ref = *r};
        memcpy(ob.hash, r->hash, PB_HASH_LEN);
        if (io->has != NULL && !io->has(io->self, r->hash, NULL)) {
            char hex[PB_HASH_HEX_LEN + 1];
            pb_hash_to_hex(r->hash, hex);
            g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_FAILED,
                        "image %s: chunk %s is missing from the store", o->image, hex);
            pb_mcast_sender_free(s);
            return NULL;
        }
        g_array_append_val(s->objs, ob);
        s->st.object_bytes += r->stored;
    }
    s->st.object_bytes += g_bytes_get_size(s->manifest_text);
    s->st.n_objects = s->objs->len;
    guint32 sid[2] = {g_random_int(), g_random_int()};
    s->session_id = ((guint64)sid[0] << 32) | sid[1];

    PbAddr local;
    if (!pb_addr_parse(o->bind, o->ctl_port, &local) || local.family != 4) {
        g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_FAILED,
                    "bind address \"%s\" is not an IPv4 address", o->bind ? o->bind : "");
        pb_mcast_sender_free(s);
        return NULL;
    }
    s->sock = pb_udp_open(&local, PB_UDP_NO_PMTUD, error);
    if (s->sock == PB_SOCKET_NONE) {
        g_prefix_error(error, "session %s: ", o->name);
        pb_mcast_sender_free(s);
        return NULL;
    }
    PbAddr bound;
    pb_udp_local_addr(s->sock, &bound);
    s->ctl_port = bound.port;
    if (!pb_udp_set_multicast_ttl(s->sock, o->ttl ? o->ttl : 1, error) ||
        !pb_udp_set_multicast_loop(s->sock, TRUE, error)) {
        pb_mcast_sender_free(s);
        return NULL;
    }
    set_buf(s->sock, SO_SNDBUF, SO_SNDBUFFORCE, 4 << 20);
    set_buf(s->sock, SO_RCVBUF, SO_RCVBUFFORCE, 1 << 20);
    s->group.family = s->announce.family = 4;
    s->group.port = s->announce.port = o->data_port;
    guint32 g = g_htonl(o->group), a = g_htonl(o->announce_group);
    memcpy(s->group.addr, &g, 4);
    memcpy(s->announce.addr, &a, 4);
    return s;
}

guint16 pb_mcast_sender_ctl_port(PbMcastSender *s)
{
    return s->ctl_port;
}

/* ---- objects and repairs -------------------------------------------------------------- */

static GBytes *object_bytes(PbMcastSender *s, guint32 idx, guint8 *codec, GError **error)
{
    if (idx == 0) {
        *codec = PB_CODEC_NONE;
        return g_bytes_ref(s->manifest_text);
    }
    for (guint i = 0; i < CACHE_OBJECTS; i++)
        if (s->cache[i].bytes != NULL && s->cache[i].obj == idx) {
            *codec = s->cache[i].codec;
            return g_bytes_ref(s->cache[i].bytes);
        }
    const Obj *ob = &g_array_index(s->objs, Obj, idx);
    PbCodec c = PB_CODEC_NONE;
    GBytes *b = s->io.get(s->io.self, &ob->ref, &c, error);
    if (b == NULL)
        return NULL;
    if (g_bytes_get_size(b) == 0 || g_bytes_get_size(b) > PB_CHUNK_SIZE_MAX + 1024) {
        g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_FAILED, "a stored chunk has %zu bytes",
                    g_bytes_get_size(b));
        g_bytes_unref(b);
        return NULL;
    }
    Cached *slot = &s->cache[s->cache_next++ % CACHE_OBJECTS];
    if (slot->bytes != NULL)
        g_bytes_unref(slot->bytes);
    slot->obj = idx;
    slot->bytes = g_bytes_ref(b);
    slot->codec = (guint8)c;
    *codec = (guint8)c;
    return b;
}

/* Stored length of an object as the store has it (a chunk may be coded otherwise than its
 * manifest says, after an import): 0 with error when it cannot be read. */
static gsize object_size(PbMcastSender *s, guint32 idx, GError **error)
{
    guint8 codec;
    g_autoptr(GBytes) b = object_bytes(s, idx, &codec, error);
    return b != NULL ? g_bytes_get_size(b) : 0;
}

static guint32 frag_size(void)
{
    return MCAST_FRAG_MAX;
}

static guint32 nfrags_of(gsize len)
{
    return (guint32)((len + frag_size() - 1) / frag_size());
}

static void refill(PbMcastSender *s)
{
    gint64 t = now_us();
    double rate = (double)s->rate_mbit / 8.0; /* bytes per microsecond */
    s->tokens += (double)(t - s->tokens_us) * rate;
    s->tokens_us = t;
    double burst = 4.0 * BATCH * MCAST_DATAGRAM_MAX;
    if (s->tokens > burst)
        s->tokens = burst;
}

static void service(PbMcastSender *s, gint64 wait_us);

/* Waits until the rate allows bytes more, serving control datagrams meanwhile. */
static void pace(PbMcastSender *s, gsize bytes)
{
    refill(s);
    while (s->tokens < (double)bytes) {
        double rate = (double)s->rate_mbit / 8.0; /* bytes per microsecond */
        gint64 wait = (gint64)(((double)bytes - s->tokens) / rate) + 1;
        service(s, wait);
        refill(s);
    }
    s->tokens -= (double)bytes;
}

/* Sends fragments [first, first+count) of object idx to `to`. */
static gboolean send_frags(PbMcastSender *s, guint32 idx, guint32 first, guint32 count,
                           const PbAddr *to, GError **error)
{
    guint8 codec = 0;
    g_autoptr(GBytes) b = object_bytes(s, idx, &codec, error);
    if (b == NULL)
        return FALSE;
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(b, &len);
    const Obj *ob = &g_array_index(s->objs, Obj, idx);
    guint32 nf = nfrags_of(len);
    if (first >= nf)
        return TRUE;
    count = MIN(count, nf - first);
    McastData d = {.object = idx, .object_len = (guint32)len, .codec = codec, .kind = ob->kind};
    memcpy(d.image_id, s->image_id, 8);
    memcpy(d.hash, ob->hash, PB_HASH_LEN);
    guint32 f = first, end = first + count;
    while (f < end) {
        guint32 n = MIN(BATCH, end - f);
        gsize total = 0;
        gsize seg = MCAST_DATA_HEADER + frag_size();
        for (guint32 i = 0; i < n; i++) {
            guint32 off = (f + i) * frag_size();
            gsize pl = MIN((gsize)frag_size(), len - off);
            d.offset = off;
            guint8 *p = s->batch + total;
            mcast_data_header(s->session_id, &d, p);
            memcpy(p + MCAST_DATA_HEADER, data + off, pl);
            total += MCAST_DATA_HEADER + pl;
        }
        pace(s, total);
        gsize done = 0;
        while (done < n) {
            GError *e = NULL;
            gssize k = pb_udp_send_segments(s->sock, s->batch + done * seg, total - done * seg, seg,
                                            to, NULL, 0, &e);
            if (k < 0) {
                if (pb_net_error_would_block(e)) {
                    g_clear_error(&e);
                    struct pollfd pfd = {.fd = (int)s->sock, .events = POLLOUT};
                    (void)poll(&pfd, 1, 10);
                    continue;
                }
                g_propagate_error(error, e);
                return FALSE;
            }
            done += (gsize)k;
        }
        g_mutex_lock(&s->mu);
        s->st.bytes_sent += total;
        s->st.datagrams_sent += n;
        g_mutex_unlock(&s->mu);
        s->win_sent += n;
        f += n;
    }
    return TRUE;
}

static void repair_free(Repair *r)
{
    g_free(r->bits);
    g_free(r);
}

/* Sends every queued repair, oldest first. */
static gboolean send_repairs(PbMcastSender *s, GError **error)
{
    Repair *r;
    while ((r = g_queue_pop_head(&s->repairs)) != NULL) {
        g_hash_table_remove(s->repair_by_obj, GUINT_TO_POINTER(r->obj));
        guint32 i = 0;
        gboolean ok = TRUE;
        while (ok && i < r->nfrags) {
            if (!(r->bits[i / 8] & (1u << (i % 8)))) {
                i++;
                continue;
            }
            guint32 j = i;
            while (j < r->nfrags && (r->bits[j / 8] & (1u << (j % 8))))
                j++;
            ok = send_frags(s, r->obj, i, j - i, r->requester ? &r->to : &s->group, error);
            g_mutex_lock(&s->mu);
            s->st.repair_frags += j - i;
            g_mutex_unlock(&s->mu);
            s->repair_pending -= MIN(s->repair_pending, j - i);
            i = j;
        }
        repair_free(r);
        if (!ok)
            return FALSE;
    }
    return TRUE;
}

/* ---- control datagrams ---------------------------------------------------------------- */

static guint clients_from(PbMcastSender *s, const PbAddr *from)
{
    guint n = 0;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, s->clients);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        Client *c = v;
        if (!c->info.dropped && memcmp(c->addr.addr, from->addr, 4) == 0)
            n++;
    }
    return n;
}

static void on_status(PbMcastSender *s, const McastStatus *m, const PbAddr *from)
{
    g_mutex_lock(&s->mu);
    Client *c = g_hash_table_lookup(s->clients, &m->client_id);
    if (c == NULL) {
        if (m->state == MCAST_RX_LEAVING || m->state == MCAST_RX_DONE) {
            g_mutex_unlock(&s->mu);
            return;
        }
        if (g_hash_table_size(s->clients) >= s->o.max_clients ||
            clients_from(s, from) >= PER_SOURCE_MAX) {
            /* one line per 10 s at most: the refused keep asking */
            gboolean say = now_us() - s->refused_logged_us > 10 * G_USEC_PER_SEC;
            if (say)
                s->refused_logged_us = now_us();
            g_mutex_unlock(&s->mu);
            char a[64];
            if (say)
                slog(s, 1, "session %s: receiver %s refused (at most %u receivers, %u per address)",
                     s->name, pb_addr_format(from, FALSE, a, sizeof(a)), s->o.max_clients,
                     PER_SOURCE_MAX);
            return;
        }
        c = g_new0(Client, 1);
        c->info.id = m->client_id;
        c->info.joined_us = now_us();
        g_hash_table_insert(s->clients, &c->info.id, c);
        s->last_join_us = now_us();
    }
    gboolean was_dropped = c->info.dropped;
    c->addr = *from;
    c->addr.port = s->o.data_port;
    pb_addr_format(from, TRUE, c->info.addr, sizeof(c->info.addr));
    g_strlcpy(c->info.label, m->label, sizeof(c->info.label));
    guint8 old = c->info.state;
    c->info.state = m->state;
    c->info.have = m->have;
    c->info.total = m->total;
    c->info.bytes_written = m->bytes_written;
    c->info.rx_frags = m->rx_frags;
    c->info.nack_frags = m->nack_frags;
    c->info.last_us = now_us();
    if (c->rate_t == 0 || m->rx_frags < c->rx_prev) {
        c->rate_t = c->info.last_us;
        c->rx_prev = m->rx_frags;
    } else if (c->info.last_us - c->rate_t >= 200 * 1000) {
        double mbit = (double)(m->rx_frags - c->rx_prev) * MCAST_DATAGRAM_MAX * 8.0 /
                      (double)(c->info.last_us - c->rate_t);
        c->rx_mbit = c->rx_mbit > 0 ? (c->rx_mbit + mbit) / 2 : mbit;
        c->rate_t = c->info.last_us;
        c->rx_prev = m->rx_frags;
    }
    if (m->state == MCAST_RX_LEAVING)
        c->info.dropped = TRUE;
    else
        c->info.dropped = FALSE;
    gboolean went_unicast = m->state == MCAST_RX_UNICAST && !c->info.unicast;
    if (m->state == MCAST_RX_UNICAST)
        c->info.unicast = TRUE; /* on its own (it heard nothing) or as told: not waited for */
    char addr[64];
    g_strlcpy(addr, c->info.addr, sizeof(addr));
    char label[MCAST_CLIENT_MAX + 1];
    g_strlcpy(label, c->info.label, sizeof(label));
    guint32 have = m->have, total = m->total;
    g_mutex_unlock(&s->mu);
    if (old == 0)
        slog(s, 2, "session %s: receiver %s (%s) joined", s->name, addr, label);
    else if (was_dropped && m->state != MCAST_RX_LEAVING)
        slog(s, 1, "session %s: receiver %s (%s) is back", s->name, addr, label);
    if (old != m->state && m->state == MCAST_RX_DONE)
        slog(s, 2, "session %s: receiver %s (%s) done: %u chunks", s->name, addr, label, total);
    else if (old != m->state && m->state == MCAST_RX_FAILED)
        slog(s, 1, "session %s: receiver %s (%s) failed with %u of %u chunks", s->name, addr, label,
             have, total);
    else if (old != m->state && m->state == MCAST_RX_LEAVING)
        slog(s, 1, "session %s: receiver %s (%s) left with %u of %u chunks", s->name, addr, label,
             have, total);
    if (went_unicast)
        slog(s, 2,
             "session %s: receiver %s (%s) finishes by unicast from the imaging server (%u of "
             "%u chunks here)",
             s->name, addr, label, have, total);
}

static void on_nack(PbMcastSender *s, const McastNack *k, const PbAddr *from)
{
    g_mutex_lock(&s->mu);
    s->st.nacks_received++;
    Client *c = g_hash_table_lookup(s->clients, &k->client_id);
    gboolean ok = c != NULL && !c->info.dropped && memcmp(c->addr.addr, from->addr, 4) == 0 &&
                  k->object < s->objs->len &&
                  memcmp(g_array_index(s->objs, Obj, k->object).hash, k->hash, PB_HASH_LEN) == 0 &&
                  (!c->info.slow || k->object == 0) && s->st.state == MCAST_STATE_SENDING;
    /* the manifest may be asked for while waiting too: receivers prepare meanwhile */
    if (c != NULL && k->object == 0 && !c->info.dropped && k->object < s->objs->len &&
        memcmp(g_array_index(s->objs, Obj, 0).hash, k->hash, PB_HASH_LEN) == 0)
        ok = TRUE;
    if (!ok) {
        s->st.nacks_ignored++;
        g_mutex_unlock(&s->mu);
        return;
    }
    PbAddr to = c->addr;
    guint64 cid = c->info.id;
    g_mutex_unlock(&s->mu);

    gsize len = object_size(s, k->object, NULL);
    guint32 nf = nfrags_of(len);
    if (nf == 0)
        return;
    Repair *r = g_hash_table_lookup(s->repair_by_obj, GUINT_TO_POINTER(k->object));
    if (r == NULL) {
        r = g_new0(Repair, 1);
        r->obj = k->object;
        r->nfrags = nf;
        r->bits = g_malloc0((nf + 7) / 8);
        r->requester = cid;
        r->to = to;
        g_hash_table_insert(s->repair_by_obj, GUINT_TO_POINTER(k->object), r);
        g_queue_push_tail(&s->repairs, r);
    } else if (r->requester != cid) {
        r->requester = 0; /* several ask: one multicast serves them all */
    }
    /* Only what is not already queued counts towards "slow": a receiver repeats its NACK
     * every 100 ms while the repair is on its way, and a busy CPU is not a slow link. */
    guint64 asked = 0;
    for (guint i = 0; i < k->n_ranges; i++) {
        guint32 a = k->ranges[i].first, e = a + k->ranges[i].count;
        for (guint32 f = a; f < e && f < nf && s->repair_pending < REPAIR_MAX; f++) {
            if (!(r->bits[f / 8] & (1u << (f % 8)))) {
                r->bits[f / 8] |= (guint8)(1u << (f % 8));
                s->repair_pending++;
                asked++;
            }
        }
    }
    if (k->object != 0) {
        g_mutex_lock(&s->mu);
        c = g_hash_table_lookup(s->clients, &cid);
        if (c != NULL)
            c->win_nack += asked;
        g_mutex_unlock(&s->mu);
    }
}

static void announce(PbMcastSender *s)
{
    McastMsg m = {.type = MCAST_MSG_ANNOUNCE, .session_id = s->session_id};
    McastAnnounce *a = &m.u.announce;
    memcpy(a->seal, s->m->seal, PB_HASH_LEN);
    g_mutex_lock(&s->mu);
    a->state = s->st.state;
    a->pass = s->st.pass;
    a->clients = (guint16)MIN(s->st.clients_live, G_MAXUINT16);
    a->expected = (guint16)MIN(s->expected, G_MAXUINT16);
    g_mutex_unlock(&s->mu);
    a->ctl_port = s->ctl_port;
    a->group = s->o.group;
    a->data_port = s->o.data_port;
    a->frag_size = (guint16)frag_size();
    a->n_objects = s->objs->len;
    a->manifest_len = (guint32)g_bytes_get_size(s->manifest_text);
    a->rate_kbit = s->o.rate_mbit * 1000u;
    g_strlcpy(a->name, s->name, sizeof(a->name));
    g_strlcpy(a->image, s->image, sizeof(a->image));
    g_autoptr(GByteArray) out = g_byte_array_new();
    if (!mcast_msg_build(&m, out))
        return;
    pb_udp_send(s->sock, out->data, out->len, &s->group, NULL, 0, NULL);
    pb_udp_send(s->sock, out->data, out->len, &s->announce, NULL, 0, NULL);
}

/* Drops silent receivers, marks slow ones, counts. Called at least every 250 ms. */
static void housekeeping(PbMcastSender *s)
{
    gint64 t = now_us();
    gboolean window = t - s->window_us >= WINDOW_US;
    guint64 sent = s->win_sent;
    if (window) {
        s->window_us = t;
        s->win_sent = 0;
    }
    g_autoptr(GPtrArray) msgs = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GArray) now_slow = g_array_new(FALSE, FALSE, sizeof(guint64));
    g_autoptr(GArray) tell = g_array_new(FALSE, FALSE, sizeof(PbAddr));
    g_autoptr(GArray) tell_id = g_array_new(FALSE, FALSE, sizeof(guint64));
    g_mutex_lock(&s->mu);
    guint live = 0, done = 0, dropped = 0, slow = 0, unicast = 0;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, s->clients);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        Client *c = v;
        if (!c->info.dropped && s->o.drop_s > 0 &&
            t - c->info.last_us > (gint64)s->o.drop_s * G_USEC_PER_SEC) {
            c->info.dropped = TRUE;
            if (c->info.state != MCAST_RX_DONE)
                g_ptr_array_add(msgs, g_strdup_printf("session %s: receiver %s (%s) silent for "
                                                      "%u s: dropped with %u of %u chunks",
                                                      s->name, c->info.addr, c->info.label,
                                                      s->o.drop_s, c->info.have, c->info.total));
        }
        if (window && !c->info.slow && !c->info.dropped && sent >= 256 &&
            c->win_nack * 100 > (guint64)s->o.slow_percent * sent && s->o.slow_percent > 0) {
            c->info.slow = TRUE;
            g_array_append_val(now_slow, c->info.id);
            gboolean uni = s->o.slow_policy == PB_MCAST_SLOW_UNICAST;
            g_ptr_array_add(
                msgs,
                g_strdup_printf(
                    "session %s: receiver %s (%s) asked again for %" G_GUINT64_FORMAT
                    " of %" G_GUINT64_FORMAT " datagrams in %d ms: slow, no more repairs for it "
                    "(%s)",
                    s->name, c->info.addr, c->info.label, c->win_nack, sent, WINDOW_US / 1000,
                    uni ? "told to finish by unicast" : "it completes from later passes"));
            c->told = uni;
        }
        /* Told again every window until its status says it went (a DIRECT may be lost); one
         * that cannot (no imaging server to fetch from) stays, as with slow_policy wait. */
        if (window && c->told && !c->info.unicast && !c->info.dropped &&
            c->info.state != MCAST_RX_DONE) {
            g_array_append_val(tell, c->addr);
            g_array_append_val(tell_id, c->info.id);
        }
        if (window)
            c->win_nack = 0;
        if (c->info.dropped) {
            if (c->info.state != MCAST_RX_DONE)
                dropped++;
            else
                done++;
            continue;
        }
        live++;
        if (c->info.state == MCAST_RX_DONE)
            done++;
        if (c->info.slow)
            slow++;
        if (c->info.unicast && c->info.state != MCAST_RX_DONE)
            unicast++;
    }
    s->st.clients_live = live;
    s->st.clients_unicast = unicast;
    s->st.clients_done = done;
    s->st.clients_dropped = dropped;
    s->st.clients_slow = slow;
    g_mutex_unlock(&s->mu);
    /* What was queued for a receiver now slow alone is not sent either. */
    for (GList *l = s->repairs.head; l != NULL && now_slow->len > 0;) {
        GList *next = l->next;
        Repair *r = l->data;
        for (guint i = 0; i < now_slow->len; i++)
            if (r->requester != 0 && r->requester == g_array_index(now_slow, guint64, i) &&
                r->obj != 0) {
                guint32 n = 0;
                for (guint32 f = 0; f < r->nfrags; f++)
                    n += (r->bits[f / 8] >> (f % 8)) & 1;
                s->repair_pending -= MIN(s->repair_pending, n);
                g_hash_table_remove(s->repair_by_obj, GUINT_TO_POINTER(r->obj));
                g_queue_delete_link(&s->repairs, l);
                repair_free(r);
                break;
            }
        l = next;
    }
    for (guint i = 0; i < tell->len; i++) {
        McastMsg d = {.type = MCAST_MSG_DIRECT, .session_id = s->session_id};
        d.u.direct.client_id = g_array_index(tell_id, guint64, i);
        d.u.direct.action = MCAST_DIRECT_UNICAST;
        g_autoptr(GByteArray) out = g_byte_array_new();
        if (mcast_msg_build(&d, out))
            pb_udp_send(s->sock, out->data, out->len, &g_array_index(tell, PbAddr, i), NULL, 0,
                        NULL);
    }
    for (guint i = 0; i < msgs->len; i++)
        slog(s, 1, "%s", (char *)g_ptr_array_index(msgs, i));
    if (t >= s->next_announce_us) {
        s->next_announce_us = t + ANNOUNCE_US;
        announce(s);
    }
}

/* Waits up to wait_us for control datagrams and handles them; then housekeeping. */
static void service(PbMcastSender *s, gint64 wait_us)
{
    struct pollfd pfd = {.fd = (int)s->sock, .events = POLLIN};
    struct timespec ts = {.tv_sec = wait_us / G_USEC_PER_SEC,
                          .tv_nsec = (wait_us % G_USEC_PER_SEC) * 1000};
    if (ppoll(&pfd, 1, wait_us > 0 ? &ts : &(struct timespec){0, 0}, NULL) > 0) {
        guint8 buf[MCAST_DATAGRAM_MAX + 1];
        for (int i = 0; i < 256; i++) {
            PbAddr from;
            gssize n = pb_udp_recv(s->sock, buf, sizeof(buf), &from, NULL, NULL, NULL);
            if (n < 0)
                break;
            McastMsg m;
            if (from.family != 4 || mcast_msg_parse(buf, (gsize)n, &m) != MCAST_PARSE_OK ||
                m.session_id != s->session_id)
                continue;
            if (m.type == MCAST_MSG_STATUS)
                on_status(s, &m.u.status, &from);
            else if (m.type == MCAST_MSG_NACK)
                on_nack(s, &m.u.nack, &from);
        }
    }
    housekeeping(s);
}

/* ---- the session ---------------------------------------------------------------------- */

static void set_state(PbMcastSender *s, guint8 state)
{
    g_mutex_lock(&s->mu);
    s->st.state = state;
    if (state == MCAST_STATE_SENDING)
        s->st.sending_us = now_us();
    if (state == MCAST_STATE_DONE || state == MCAST_STATE_ABORTED)
        s->st.finished_us = now_us();
    g_mutex_unlock(&s->mu);
    s->next_announce_us = 0;
}

static gboolean aborted(PbMcastSender *s)
{
    g_mutex_lock(&s->mu);
    gboolean a = s->abort_flag;
    g_mutex_unlock(&s->mu);
    return a;
}

/* TRUE when every receiver still there is done (and there was one). */
static gboolean room_done(PbMcastSender *s, guint *live_out)
{
    g_mutex_lock(&s->mu);
    guint live = 0, notdone = 0;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, s->clients);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        Client *c = v;
        if (c->info.dropped)
            continue;
        live++;
        /* One finishing by unicast is not waited for: the room goes on without it. */
        if (c->info.state != MCAST_RX_DONE && !c->info.unicast)
            notdone++;
    }
    g_mutex_unlock(&s->mu);
    *live_out = live;
    return notdone == 0;
}

static gboolean wait_for_start(PbMcastSender *s, GError **error)
{
    gint64 t0 = now_us();
    for (;;) {
        if (aborted(s)) {
            g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_ENDED, "session %s aborted", s->name);
            return FALSE;
        }
        service(s, 50 * 1000);
        if (!send_repairs(s, error)) /* manifests asked for by early receivers */
            return FALSE;
        gint64 t = now_us();
        g_mutex_lock(&s->mu);
        guint joined = 0;
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, s->clients);
        while (g_hash_table_iter_next(&it, NULL, &v))
            if (!((Client *)v)->info.dropped)
                joined++;
        gboolean go = s->go;
        guint expected = s->expected;
        gint64 last = s->last_join_us;
        g_mutex_unlock(&s->mu);
        const char *why = NULL;
        if (go)
            why = "started by the operator";
        else if (expected > 0 && joined >= expected)
            why = "the expected receivers joined";
        else if (joined > 0 && s->o.later_join_s > 0 &&
                 t - last >= (gint64)s->o.later_join_s * G_USEC_PER_SEC)
            why = "no further receiver joined in time";
        if (why != NULL) {
            slog(s, 2, "session %s: sending image %s to %u receivers (%s)", s->name, s->image,
                 joined, why);
            return TRUE;
        }
        if (joined == 0 && s->o.first_join_s > 0 &&
            t - t0 >= (gint64)s->o.first_join_s * G_USEC_PER_SEC) {
            g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_NO_CLIENT,
                        "session %s: no receiver joined within %u s", s->name, s->o.first_join_s);
            return FALSE;
        }
    }
}

/* When everyone who kept up is done, the slow ones are all that is left: serve them at the
 * rate that reaches the slowest of them, with repairs again. */
static void stragglers(PbMcastSender *s)
{
    g_mutex_lock(&s->mu);
    guint fast_left = 0, slow_left = 0;
    double slowest = 0;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, s->clients);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        Client *c = v;
        if (c->info.dropped || c->info.state == MCAST_RX_DONE || c->info.unicast)
            continue;
        if (!c->info.slow) {
            fast_left++;
            continue;
        }
        slow_left++;
        if (c->rx_mbit > 0 && (slowest == 0 || c->rx_mbit < slowest))
            slowest = c->rx_mbit;
    }
    if (fast_left > 0 || slow_left == 0) {
        g_mutex_unlock(&s->mu);
        return;
    }
    g_hash_table_iter_init(&it, s->clients);
    while (g_hash_table_iter_next(&it, NULL, &v))
        ((Client *)v)->info.slow = FALSE;
    guint rate = slowest > 0 ? (guint)(slowest * 0.9) : s->rate_mbit / 4;
    s->rate_mbit = CLAMP(rate, 5u, s->rate_mbit);
    g_mutex_unlock(&s->mu);
    slog(s, 2, "session %s: only %u slow receivers left: %u Mbit/s for them, with repairs", s->name,
         slow_left, s->rate_mbit);
}

static gboolean run_passes(PbMcastSender *s, GError **error)
{
    guint live = 0;
    for (guint pass = 1; s->o.max_passes == 0 || pass <= s->o.max_passes; pass++) {
        g_mutex_lock(&s->mu);
        s->st.pass = pass;
        g_mutex_unlock(&s->mu);
        if (pass > 1) {
            slog(s, 3, "session %s: pass %u for the receivers still missing chunks", s->name, pass);
            stragglers(s);
        }
        for (guint32 i = 0; i < s->objs->len; i++) {
            if (aborted(s)) {
                g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_ENDED, "session %s aborted",
                            s->name);
                return FALSE;
            }
            if (!send_repairs(s, error))
                return FALSE;
            if (room_done(s, &live) && live > 0)
                return TRUE;
            GError *e = NULL;
            gsize len = object_size(s, i, &e);
            if (e != NULL) {
                g_propagate_error(error, e);
                return FALSE;
            }
            /* Later passes start each object at a random fragment: a receiver whose link
             * drops in a pattern (a rate limiter) then gets other fragments each time. */
            guint32 nf = nfrags_of(len), start = pass > 1 ? g_random_int_range(0, (gint32)nf) : 0;
            if (!send_frags(s, i, start, nf - start, &s->group, error) ||
                !send_frags(s, i, 0, start, &s->group, error))
                return FALSE;
        }
        /* The end of a pass: serve the last repairs until the room is quiet. */
        gint64 quiet = now_us() + 300 * 1000;
        while (now_us() < quiet) {
            service(s, 20 * 1000);
            if (s->repairs.length > 0) {
                if (!send_repairs(s, error))
                    return FALSE;
                quiet = now_us() + 300 * 1000;
            }
            if (room_done(s, &live) && live > 0)
                return TRUE;
        }
        if (live == 0) {
            g_mutex_lock(&s->mu);
            guint done = s->st.clients_done;
            g_mutex_unlock(&s->mu);
            if (done > 0)
                return TRUE;
            g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_ENDED,
                        "session %s: every receiver left or was dropped", s->name);
            return FALSE;
        }
    }
    slog(s, 1, "session %s: %u passes sent; giving up on the receivers not done", s->name,
         s->o.max_passes);
    return TRUE;
}

gboolean pb_mcast_sender_run(PbMcastSender *s, GError **error)
{
    g_mutex_lock(&s->mu);
    s->st.started_us = now_us();
    g_mutex_unlock(&s->mu);
    set_state(s, MCAST_STATE_WAITING);
    s->tokens_us = now_us();
    s->window_us = now_us();
    s->rate_mbit = s->o.rate_mbit;
    slog(s, 2, "session %s: image %s on group %u.%u.%u.%u port %u, waiting for receivers", s->name,
         s->image, (s->o.group >> 24) & 255, (s->o.group >> 16) & 255, (s->o.group >> 8) & 255,
         s->o.group & 255, s->o.data_port);
    gboolean ok = wait_for_start(s, error);
    if (ok) {
        set_state(s, MCAST_STATE_SENDING);
        ok = run_passes(s, error);
    }
    set_state(s, ok ? MCAST_STATE_DONE : MCAST_STATE_ABORTED);
    /* Say so a few times: receivers still waiting learn the session is over. */
    for (int i = 0; i < 3; i++) {
        announce(s);
        g_usleep(50 * 1000);
    }
    housekeeping(s);
    if (ok) {
        PbMcastSendStats st = {0};
        pb_mcast_sender_stats(s, &st);
        slog(s, 2,
             "session %s: finished after %u passes: %u receivers done, %u dropped, "
             "%" G_GUINT64_FORMAT " bytes sent, %" G_GUINT64_FORMAT " repaired datagrams, %.0f "
             "Mbit/s",
             s->name, st.pass, st.clients_done, st.clients_dropped, st.bytes_sent, st.repair_frags,
             st.rate_mbit);
        pb_mcast_send_stats_clear(&st);
    }
    return ok;
}

static gpointer thread_main(gpointer data)
{
    PbMcastSender *s = data;
    GError *e = NULL;
    if (!pb_mcast_sender_run(s, &e)) {
        slog(s, 1, "%s", e->message);
        g_mutex_lock(&s->mu);
        s->thread_error = e;
        g_mutex_unlock(&s->mu);
    }
    g_mutex_lock(&s->mu);
    s->finished = TRUE;
    g_mutex_unlock(&s->mu);
    return NULL;
}

void pb_mcast_sender_start(PbMcastSender *s)
{
    s->thread = g_thread_new("mcast-send", thread_main, s);
}

gboolean pb_mcast_sender_finished(PbMcastSender *s)
{
    g_mutex_lock(&s->mu);
    gboolean f = s->finished;
    g_mutex_unlock(&s->mu);
    return f;
}

void pb_mcast_sender_go(PbMcastSender *s)
{
    g_mutex_lock(&s->mu);
    s->go = TRUE;
    g_mutex_unlock(&s->mu);
}

void pb_mcast_sender_set_expected(PbMcastSender *s, guint n)
{
    g_mutex_lock(&s->mu);
    s->expected = n;
    g_mutex_unlock(&s->mu);
}

void pb_mcast_sender_abort(PbMcastSender *s)
{
    g_mutex_lock(&s->mu);
    s->abort_flag = TRUE;
    g_mutex_unlock(&s->mu);
}

void pb_mcast_sender_stats(PbMcastSender *s, PbMcastSendStats *st)
{
    g_mutex_lock(&s->mu);
    *st = s->st;
    st->expected = s->expected;
    gint64 end = s->st.finished_us ? s->st.finished_us : now_us();
    if (s->st.sending_us > 0 && end > s->st.sending_us)
        st->rate_mbit = (double)s->st.bytes_sent * 8.0 / (double)(end - s->st.sending_us);
    st->clients = g_array_new(FALSE, TRUE, sizeof(PbMcastClientInfo));
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, s->clients);
    while (g_hash_table_iter_next(&it, NULL, &v))
        g_array_append_val(st->clients, ((Client *)v)->info);
    g_mutex_unlock(&s->mu);
}

void pb_mcast_sender_free(PbMcastSender *s)
{
    if (s == NULL)
        return;
    if (s->thread != NULL) {
        pb_mcast_sender_abort(s);
        g_thread_join(s->thread);
    }
    if (s->sock != PB_SOCKET_NONE)
        pb_udp_close(s->sock);
    for (guint i = 0; i < CACHE_OBJECTS; i++)
        if (s->cache[i].bytes != NULL)
            g_bytes_unref(s->cache[i].bytes);
    Repair *r;
    while ((r = g_queue_pop_head(&s->repairs)) != NULL)
        repair_free(r);
    g_hash_table_destroy(s->repair_by_obj);
    g_hash_table_destroy(s->clients);
    if (s->objs != NULL)
        g_array_unref(s->objs);
    if (s->manifest_text != NULL)
        g_bytes_unref(s->manifest_text);
    g_clear_error(&s->thread_error);
    pb_manifest_free(s->m);
    g_free(s->batch);
    g_free(s->name);
    g_free(s->image);
    g_free(s->bind);
    g_mutex_clear(&s->mu);
    g_free(s);
}

/* ---- status output -------------------------------------------------------------------- */

static void json_str(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (const char *c = s; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\')
            g_string_append_printf(out, "\\%c", *c);
        else if ((guchar)*c < 0x20)
            g_string_append_printf(out, "\\u%04x", (guchar)*c);
        else
            g_string_append_c(out, *c);
    }
    g_string_append_c(out, '"');
}

void pb_mcast_stats_format(const char *name, const char *image, guint32 group,
                           const PbMcastSendStats *st, gboolean json, GString *out)
{
    char grp[16];
    g_snprintf(grp, sizeof(grp), "%u.%u.%u.%u", (group >> 24) & 255, (group >> 16) & 255,
               (group >> 8) & 255, group & 255);
    gint64 end = st->finished_us ? st->finished_us : g_get_monotonic_time();
    double secs = st->sending_us ? (double)(end - st->sending_us) / 1e6 : 0.0;
    guint n = st->clients != NULL ? st->clients->len : 0;
    if (json) {
        g_string_append(out, "{\"name\":");
        json_str(out, name);
        g_string_append(out, ",\"image\":");
        json_str(out, image);
        g_string_append_printf(
            out,
            ",\"group\":\"%s\",\"state\":\"%s\",\"pass\":%u,\"objects\":%u,\"pass_bytes\":"
            "%" G_GUINT64_FORMAT
            ",\"expected\":%u,\"clients\":%u,\"done\":%u,\"dropped\":%u,\"slow\":%u,"
            "\"unicast\":%u,"
            "\"bytes_sent\":%" G_GUINT64_FORMAT ",\"datagrams_sent\":%" G_GUINT64_FORMAT
            ",\"repaired_datagrams\":%" G_GUINT64_FORMAT ",\"nacks\":%" G_GUINT64_FORMAT
            ",\"nacks_ignored\":%" G_GUINT64_FORMAT ",\"sending_seconds\":%.3f,\"rate_mbit\":%.1f,"
            "\"receivers\":[",
            grp, mcast_state_name(st->state), st->pass, st->n_objects, st->object_bytes,
            st->expected, st->clients_live, st->clients_done, st->clients_dropped, st->clients_slow,
            st->clients_unicast, st->bytes_sent, st->datagrams_sent, st->repair_frags,
            st->nacks_received, st->nacks_ignored, secs, st->rate_mbit);
        for (guint i = 0; i < n; i++) {
            const PbMcastClientInfo *c = &g_array_index(st->clients, PbMcastClientInfo, i);
            g_string_append(out, i ? ",{\"address\":" : "{\"address\":");
            json_str(out, c->addr);
            g_string_append(out, ",\"label\":");
            json_str(out, c->label);
            g_string_append_printf(
                out,
                ",\"state\":\"%s\",\"chunks\":%u,\"chunks_total\":%u,"
                "\"bytes_written\":%" G_GUINT64_FORMAT ",\"datagrams\":%" G_GUINT64_FORMAT
                ",\"repairs_asked\":%" G_GUINT64_FORMAT ",\"slow\":%s,\"unicast\":%s,"
                "\"dropped\":%s}",
                c->dropped && c->state != MCAST_RX_DONE ? "dropped" : mcast_rx_state_name(c->state),
                c->have, c->total, c->bytes_written, c->rx_frags, c->nack_frags,
                c->slow ? "true" : "false", c->unicast ? "true" : "false",
                c->dropped ? "true" : "false");
        }
        g_string_append(out, "]}");
        return;
    }
    g_string_append_printf(
        out,
        "session %s: image %s, group %s, %s, pass %u, %u of %u receivers "
        "done (%u expected, %u dropped, %u slow, %u finishing by unicast)\n"
        "  sent %" G_GUINT64_FORMAT " bytes in %.1f s (%.0f Mbit/s), %" G_GUINT64_FORMAT
        " datagrams repaired for %" G_GUINT64_FORMAT " NACKs (%" G_GUINT64_FORMAT " ignored)\n",
        name, image, grp, mcast_state_name(st->state), st->pass, st->clients_done,
        st->clients_live + st->clients_dropped, st->expected, st->clients_dropped, st->clients_slow,
        st->clients_unicast, st->bytes_sent, secs, st->rate_mbit, st->repair_frags,
        st->nacks_received, st->nacks_ignored);
    for (guint i = 0; i < n; i++) {
        const PbMcastClientInfo *c = &g_array_index(st->clients, PbMcastClientInfo, i);
        guint pct = c->total ? (guint)((guint64)c->have * 100 / c->total) : 0;
        g_string_append_printf(
            out, "  %-21s %-20s %-9s %3u%% (%u/%u chunks)%s\n", c->addr, c->label,
            c->dropped && c->state != MCAST_RX_DONE ? "dropped" : mcast_rx_state_name(c->state),
            pct, c->have, c->total, c->slow ? " slow" : "");
    }
}
