/* mcast-recv.c - the receiving side: finds the session by name on the announcement group,
 * joins its group, takes the manifest (asking for it at once, so a late joiner need not
 * wait for the next pass) and then whatever chunks go by, in any order. A chunk is
 * assembled in memory, decoded and checked against its hash (pb_chunk_decode_verify)
 * before it is written at every offset the manifest gives it, so a datagram of another
 * session, another image or a forged one can never reach the disk. Fragments lost are
 * asked for again (NACK); what the sender no longer repairs comes with the next pass. */
#define _GNU_SOURCE
#include "mcast.h"

#include "image-disk.h"
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STATUS_US  (300 * 1000)
#define NACK_DELAY (30 * 1000) /* silence on an object before asking again */
#define NACK_EVERY (100 * 1000)
#define NACK_TRIES 20
#define RX_BATCH   64
#define RX_BUF     (MCAST_DATAGRAM_MAX + 1) /* one more: a longer datagram is refused */

typedef struct {
    guint64 off;
    guint32 len;
} Pos;

typedef struct {
    guint8 hash[PB_HASH_LEN];
    GArray *pos; /* Pos */
    guint32 len; /* raw length */
    gboolean done;
    gboolean queued; /* for the unicast fallback: one fetch however often the manifest names it */
} Want;

typedef struct {
    guint32 object;
    guint8 hash[PB_HASH_LEN];
    guint8 codec, kind;
    guint32 len, nfrags, got;
    guint8 *buf, *bits;
    gint64 last_rx, last_nack;
    guint nacks;
} Partial;

typedef struct {
    const PbMcastRecvOptions *o;
    PbMcastRecvStats *st;
    pb_socket_t sock;
    PbAddr sender; /* control address */
    guint64 session_id, client_id;
    McastAnnounce ann;
    PbManifest *m;
    PbDisk disk;
    gboolean disk_open;
    GHashTable *want; /* hash (32 bytes, key in Want) -> Want* */
    guint remaining;
    GHashTable *partials; /* object -> Partial* */
    guint64 partial_bytes, max_partial;
    guint8 *raw; /* decode buffer: chunk_size */
    guint8 state;
    gint64 last_status, last_heard;
    guint64 datagrams; /* of this session, wanted or not: what the link carries to us */
    char label[MCAST_CLIENT_MAX + 1];
    gboolean to_store; /* into a store or a sink, not onto a disk */
} Rx;

/* What take() found. */
enum { TAKE_ON = 0, TAKE_ALL = 1, TAKE_FAILED = -1, TAKE_UNICAST = 2 };

static void partial_free(gpointer p)
{
    Partial *pa = p;
    g_free(pa->buf);
    g_free(pa->bits);
    g_free(pa);
}

static void want_free(gpointer p)
{
    Want *w = p;
    g_array_unref(w->pos);
    g_free(w);
}

static guint hash32(gconstpointer k)
{
    guint h;
    memcpy(&h, k, sizeof(h));
    return h;
}
static gboolean eq32(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, PB_HASH_LEN) == 0;
}

static void send_msg(Rx *rx, McastMsg *m)
{
    if (rx->sender.family == 0)
        return; /* started after the session ended: there is nobody to tell */
    m->session_id = rx->session_id;
    g_autoptr(GByteArray) out = g_byte_array_new();
    if (mcast_msg_build(m, out))
        pb_udp_send(rx->sock, out->data, out->len, &rx->sender, NULL, 0, NULL);
}

static void send_status(Rx *rx)
{
    McastMsg m = {.type = MCAST_MSG_STATUS};
    McastStatus *s = &m.u.status;
    s->client_id = rx->client_id;
    s->state = rx->state;
    s->total = rx->st->chunks_total;
    s->have = rx->st->chunks_total - rx->remaining;
    if (rx->m == NULL)
        s->have = s->total = 0;
    s->bytes_written = rx->st->bytes_written;
    s->rx_frags = rx->datagrams;
    s->nack_frags = rx->st->nack_frags;
    g_strlcpy(s->label, rx->label, sizeof(s->label));
    send_msg(rx, &m);
    rx->last_status = g_get_monotonic_time();
}

static void send_nack(Rx *rx, Partial *pa)
{
    McastMsg m = {.type = MCAST_MSG_NACK};
    McastNack *k = &m.u.nack;
    k->client_id = rx->client_id;
    k->object = pa->object;
    memcpy(k->hash, pa->hash, PB_HASH_LEN);
    guint32 i = 0;
    while (i < pa->nfrags && k->n_ranges < MCAST_NACK_RANGES) {
        if (pa->bits[i / 8] & (1u << (i % 8))) {
            i++;
            continue;
        }
        guint32 j = i;
        while (j < pa->nfrags && !(pa->bits[j / 8] & (1u << (j % 8))))
            j++;
        k->ranges[k->n_ranges].first = i;
        k->ranges[k->n_ranges].count = j - i;
        k->n_ranges++;
        rx->st->nack_frags += j - i;
        i = j;
    }
    if (k->n_ranges > 0)
        send_msg(rx, &m);
    pa->last_nack = g_get_monotonic_time();
    pa->nacks++;
}

/* Asks for the manifest before any fragment of it arrived. */
static void nack_manifest(Rx *rx)
{
    McastMsg m = {.type = MCAST_MSG_NACK};
    McastNack *k = &m.u.nack;
    k->client_id = rx->client_id;
    k->object = 0;
    memcpy(k->hash, rx->ann.seal, PB_HASH_LEN);
    k->n_ranges = 1;
    k->ranges[0].first = 0;
    k->ranges[0].count = (rx->ann.manifest_len + rx->ann.frag_size - 1) / rx->ann.frag_size;
    send_msg(rx, &m);
}

static gboolean pwrite_all(int fd, const guint8 *p, gsize len, guint64 off, GError **error)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "write: %s", g_strerror(e));
            return FALSE;
        }
        p += n;
        len -= (gsize)n;
        off += (guint64)n;
    }
    return TRUE;
}

static gboolean pread_all(int fd, guint8 *p, gsize len, guint64 off)
{
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FALSE;
        p += n;
        len -= (gsize)n;
        off += (guint64)n;
    }
    return TRUE;
}

/* The manifest arrived: open the target, lay out what is wanted, zero what must be. */
/* Into a store: every distinct DATA chunk the store lacks is wanted. */
static void prepare_store(Rx *rx)
{
    PbManifest *m = rx->m;
    rx->raw = g_malloc(m->chunk_size);
    for (guint r = 0; r < m->regions->len; r++) {
        const PbRegion *reg = &g_array_index(m->regions, PbRegion, r);
        for (guint i = 0; i < reg->n_chunks; i++) {
            const PbChunkRef *ref = &g_array_index(m->chunks, PbChunkRef, reg->first_chunk + i);
            guint32 len = (guint32)pb_region_chunk_len(m, reg, i);
            rx->st->bytes_total += len;
            if (ref->kind != PB_CHUNK_DATA || g_hash_table_contains(rx->want, ref->hash))
                continue;
            Want *w = g_new0(Want, 1);
            memcpy(w->hash, ref->hash, PB_HASH_LEN);
            w->pos = g_array_new(FALSE, FALSE, sizeof(Pos));
            w->len = len;
            g_hash_table_insert(rx->want, w->hash, w);
            rx->st->chunks_total++;
            if (rx->o->sink_has != NULL ? rx->o->sink_has(rx->o->sink_data, ref->hash)
                                        : pb_store_has_chunk(rx->o->store, ref->hash, NULL)) {
                w->done = TRUE;
                rx->st->chunks_same++;
            } else
                rx->remaining++;
        }
    }
}

static gboolean prepare(Rx *rx, const char *target, GError **error)
{
    PbManifest *m = rx->m;
    if (rx->to_store) {
        prepare_store(rx);
        return TRUE;
    }
    if (!pb_disk_open(&rx->disk, target, TRUE, m->disk_size, error))
        return FALSE;
    rx->disk_open = TRUE;
    if (rx->disk.size < m->disk_size) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_TOO_SMALL,
                    "%s is %" G_GUINT64_FORMAT " bytes, the image needs %" G_GUINT64_FORMAT
                    " bytes; nothing written",
                    target, rx->disk.size, m->disk_size);
        return FALSE;
    }
    rx->raw = g_malloc(m->chunk_size);
    for (guint r = 0; r < m->regions->len; r++) {
        const PbRegion *reg = &g_array_index(m->regions, PbRegion, r);
        for (guint i = 0; i < reg->n_chunks; i++) {
            const PbChunkRef *ref = &g_array_index(m->chunks, PbChunkRef, reg->first_chunk + i);
            Pos p = {.off = reg->offset + (guint64)i * m->chunk_size,
                     .len = (guint32)pb_region_chunk_len(m, reg, i)};
            rx->st->bytes_total += p.len;
            if (ref->kind == PB_CHUNK_DATA) {
                Want *w = g_hash_table_lookup(rx->want, ref->hash);
                if (w == NULL) {
                    w = g_new0(Want, 1);
                    memcpy(w->hash, ref->hash, PB_HASH_LEN);
                    w->pos = g_array_new(FALSE, FALSE, sizeof(Pos));
                    w->len = p.len;
                    g_hash_table_insert(rx->want, w->hash, w);
                    rx->st->chunks_total++;
                    rx->remaining++;
                }
                g_array_append_val(w->pos, p);
            } else if (ref->kind == PB_CHUNK_ZERO ||
                       (ref->kind == PB_CHUNK_UNUSED && !rx->o->delta)) {
                /* A new file reads as zeros already; anything else gets a hole or zeros,
                 * as pb_restore does. */
                if (rx->disk.created || (ref->kind == PB_CHUNK_UNUSED && rx->disk.is_block))
                    continue;
                if (rx->o->delta && pread_all(rx->disk.fd, rx->raw, p.len, p.off) &&
                    pb_is_zero(rx->raw, p.len))
                    continue;
                if (rx->disk.is_block ||
                    fallocate(rx->disk.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)p.off,
                              (off_t)p.len) != 0) {
                    memset(rx->raw, 0, p.len);
                    if (!pwrite_all(rx->disk.fd, rx->raw, p.len, p.off, error))
                        return FALSE;
                }
            }
        }
    }
    if (rx->o->delta && !rx->disk.created) {
        /* Delta: every chunk already in place at all its offsets is kept. */
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, rx->want);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
            Want *w = v;
            gboolean same = TRUE;
            for (guint i = 0; i < w->pos->len && same; i++) {
                Pos *p = &g_array_index(w->pos, Pos, i);
                guint8 h[PB_HASH_LEN];
                same = pread_all(rx->disk.fd, rx->raw, p->len, p->off);
                if (same) {
                    pb_sha256(rx->raw, p->len, h);
                    same = memcmp(h, w->hash, PB_HASH_LEN) == 0;
                }
            }
            if (same) {
                w->done = TRUE;
                rx->remaining--;
                rx->st->chunks_same++;
            }
        }
    }
    return TRUE;
}

static gboolean complete(Rx *rx, Partial *pa, const char *target, GError **error)
{
    if (pa->kind == MCAST_OBJ_MANIFEST) {
        GError *e = NULL;
        PbManifest *m = pb_manifest_parse((const char *)pa->buf, pa->len, &e);
        if (m == NULL || memcmp(m->seal, rx->ann.seal, PB_HASH_LEN) != 0) {
            /* Not the announced image: forged or corrupt. Ask again. */
            g_clear_error(&e);
            pb_manifest_free(m);
            rx->st->chunks_bad++;
            return TRUE;
        }
        rx->m = m;
        if (!prepare(rx, target, error))
            return FALSE;
        /* Preparing (a delta target is read whole) is not silence of the sender. */
        rx->last_heard = g_get_monotonic_time();
        rx->state = MCAST_RX_RECEIVING;
        send_status(rx);
        return TRUE;
    }
    Want *w = rx->m != NULL ? g_hash_table_lookup(rx->want, pa->hash) : NULL;
    if (w == NULL || w->done)
        return TRUE;
    GError *e = NULL;
    if (!pb_chunk_decode_verify(pa->codec, pa->buf, pa->len, w->hash, rx->raw, w->len, &e)) {
        /* A forged or damaged fragment: nothing is written; the chunk comes again. */
        g_clear_error(&e);
        rx->st->chunks_bad++;
        return TRUE;
    }
    if (rx->to_store) {
        /* Into a store: the coded bytes as they came, now that they are checked. */
        if (rx->o->sink_put != NULL
                ? !rx->o->sink_put(rx->o->sink_data, w->hash, pa->codec, w->len, pa->buf, pa->len,
                                   error)
                : !pb_store_put_chunk(rx->o->store, w->hash, pa->codec, pa->buf, pa->len, error))
            return FALSE;
        rx->st->bytes_written += pa->len;
    }
    for (guint i = 0; !rx->to_store && i < w->pos->len; i++) {
        Pos *p = &g_array_index(w->pos, Pos, i);
        if (!pwrite_all(rx->disk.fd, rx->raw, p->len, p->off, error)) {
            g_prefix_error(error, "%s: ", target);
            return FALSE;
        }
        rx->st->bytes_written += p->len;
    }
    w->done = TRUE;
    rx->remaining--;
    rx->st->chunks_received++;
    return TRUE;
}

static gboolean on_data(Rx *rx, const McastData *d, const char *target, GError **error)
{
    if (memcmp(d->image_id, rx->ann.seal, 8) != 0) {
        rx->st->foreign_datagrams++;
        return TRUE;
    }
    if (d->kind == MCAST_OBJ_MANIFEST) {
        if (rx->m != NULL || memcmp(d->hash, rx->ann.seal, PB_HASH_LEN) != 0)
            return TRUE;
    } else {
        Want *w = rx->m != NULL ? g_hash_table_lookup(rx->want, d->hash) : NULL;
        if (w == NULL || w->done) {
            rx->st->dup_frags++;
            return TRUE;
        }
    }
    rx->st->rx_frags++;
    Partial *pa = g_hash_table_lookup(rx->partials, GUINT_TO_POINTER(d->object));
    if (pa != NULL && (memcmp(pa->hash, d->hash, PB_HASH_LEN) != 0 || pa->len != d->object_len ||
                       pa->codec != d->codec || pa->kind != d->kind)) {
        rx->st->foreign_datagrams++; /* disagrees with what we hold: keep the first */
        return TRUE;
    }
    if (pa == NULL) {
        if (d->object_len > PB_CHUNK_SIZE_MAX + 1024 || d->offset % rx->ann.frag_size != 0 ||
            rx->partial_bytes + d->object_len > rx->max_partial)
            return TRUE;
        pa = g_new0(Partial, 1);
        pa->object = d->object;
        memcpy(pa->hash, d->hash, PB_HASH_LEN);
        pa->codec = d->codec;
        pa->kind = d->kind;
        pa->len = d->object_len;
        pa->nfrags = (pa->len + rx->ann.frag_size - 1) / rx->ann.frag_size;
        pa->buf = g_malloc(pa->len);
        pa->bits = g_malloc0((pa->nfrags + 7) / 8);
        g_hash_table_insert(rx->partials, GUINT_TO_POINTER(d->object), pa);
        rx->partial_bytes += pa->len;
    }
    guint32 f = d->offset / rx->ann.frag_size;
    gsize expect = MIN((gsize)rx->ann.frag_size, (gsize)(pa->len - d->offset));
    if (d->offset % rx->ann.frag_size != 0 || f >= pa->nfrags || d->payload_len != expect)
        return TRUE;
    pa->last_rx = g_get_monotonic_time();
    if (pa->bits[f / 8] & (1u << (f % 8))) {
        rx->st->dup_frags++;
        return TRUE;
    }
    memcpy(pa->buf + d->offset, d->payload, d->payload_len);
    pa->bits[f / 8] |= (guint8)(1u << (f % 8));
    pa->got++;
    pa->nacks = 0; /* it moves again: ask again when it stalls */
    if (pa->got < pa->nfrags)
        return TRUE;
    g_hash_table_steal(rx->partials, GUINT_TO_POINTER(d->object));
    rx->partial_bytes -= pa->len;
    gboolean ok = complete(rx, pa, target, error);
    partial_free(pa);
    return ok;
}

enum { FIND_FAILED = 0, FIND_LIVE = 1, FIND_LATE = 2, FIND_UNKNOWN = 3 };

/* Asks the server about a session nothing announced (o->lookup): FIND_LATE when it ended,
 * with its image and seal in rx->ann and st; FIND_UNKNOWN when the server has no session of
 * that name; else FIND_FAILED with *heard saying what the server said, for the error at
 * the end of the wait. */
static int ask_server(Rx *rx, char **heard)
{
    const PbMcastRecvOptions *o = rx->o;
    const char *where = o->lookup_where != NULL ? o->lookup_where : "the server";
    PbMcastRecord rec;
    GError *e = NULL;
    int r = o->lookup(o->lookup_data, o->session, &rec, &e);
    g_free(*heard);
    if (r == PB_MCAST_LOOKUP_FOUND && strcmp(rec.session, o->session) != 0) {
        r = PB_MCAST_LOOKUP_FAILED;
        g_set_error(&e, PB_MCAST_ERROR, PB_MCAST_ERROR_FAILED, "it answered for session %s",
                    rec.session);
    }
    if (r == PB_MCAST_LOOKUP_FOUND &&
        (rec.state == MCAST_STATE_DONE || rec.state == MCAST_STATE_ABORTED)) {
        *heard = NULL;
        rx->ann.state = rec.state;
        g_strlcpy(rx->ann.name, rec.session, sizeof(rx->ann.name));
        g_strlcpy(rx->ann.image, rec.image, sizeof(rx->ann.image));
        memcpy(rx->ann.seal, rec.seal, PB_HASH_LEN);
        rx->st->late = TRUE;
        g_strlcpy(rx->st->image, rec.image, sizeof(rx->st->image));
        memcpy(rx->st->seal, rec.seal, PB_HASH_LEN);
        return FIND_LATE;
    }
    if (r == PB_MCAST_LOOKUP_FOUND)
        *heard = g_strdup_printf("; the server at %s says it is %s (image %s), but no "
                                 "announcement of it reached this receiver (its group, port "
                                 "and --announce-group?)",
                                 where, mcast_state_name(rec.state), rec.image);
    else if (r == PB_MCAST_LOOKUP_UNKNOWN) {
        /* Neither running nor among the finished ones it remembers: waiting on cannot
         * help (a typo, or a record dropped for room or age), so say it now. */
        *heard = g_strdup_printf("the server at %s knows no session of that name", where);
        return FIND_UNKNOWN;
    } else
        *heard = g_strdup_printf("; asking the server at %s about it failed: %s", where,
                                 e != NULL ? e->message : "?");
    g_clear_error(&e);
    return FIND_FAILED;
}

/* Waits for the session's announcement on the announcement group: FIND_LIVE; FIND_LATE
 * when the server's record says the session ended (ask_server); FIND_FAILED, error set. */
static int find_session(Rx *rx, GError **error)
{
    guint8 buf[MCAST_DATAGRAM_MAX + 1];
    g_autofree char *heard = NULL;
    guint after = rx->o->fallback_after_s ? rx->o->fallback_after_s : 5;
    gint64 next_ask = g_get_monotonic_time() + (gint64)after * G_USEC_PER_SEC;
    PbAddr server = {0};
    if (rx->o->server != NULL && !pb_addr_parse(rx->o->server, 0, &server)) {
        g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_FAILED,
                    "--server %s: not an IPv4 address", rx->o->server);
        return FIND_FAILED;
    }
    gint64 deadline = g_get_monotonic_time() + (gint64)rx->o->wait_s * G_USEC_PER_SEC;
    for (;;) {
        if (rx->o->cancel != NULL && g_atomic_int_get(rx->o->cancel)) {
            g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_ENDED, "cancelled");
            return FIND_FAILED;
        }
        if (rx->o->lookup != NULL && g_get_monotonic_time() >= next_ask) {
            int r = ask_server(rx, &heard);
            if (r == FIND_LATE)
                return FIND_LATE;
            if (r == FIND_UNKNOWN) {
                g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_UNKNOWN,
                            "no session \"%s\": nothing announced for %u s and %s (the "
                            "name? a session must be started, by prebootctl mcast start, a "
                            "policy or a master, before it can be joined)",
                            rx->o->session, after, heard);
                return FIND_FAILED;
            }
            next_ask = g_get_monotonic_time() + (gint64)after * G_USEC_PER_SEC;
        }
        gint64 left = deadline - g_get_monotonic_time();
        if (left <= 0) {
            g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_TIMEOUT,
                        "no session \"%s\" announced within %u s%s", rx->o->session, rx->o->wait_s,
                        heard != NULL ? heard : "");
            return FIND_FAILED;
        }
        struct pollfd pfd = {.fd = (int)rx->sock, .events = POLLIN};
        if (poll(&pfd, 1, (int)MIN(left / 1000 + 1, 200)) <= 0)
            continue;
        PbAddr from;
        gssize n;
        while ((n = pb_udp_recv(rx->sock, buf, sizeof(buf), &from, NULL, NULL, NULL)) >= 0) {
            McastMsg m;
            if (mcast_msg_parse(buf, (gsize)n, &m) != MCAST_PARSE_OK ||
                m.type != MCAST_MSG_ANNOUNCE || strcmp(m.u.announce.name, rx->o->session) != 0)
                continue;
            if (server.family != 0 && memcmp(server.addr, from.addr, 4) != 0)
                continue;
            if (m.u.announce.state == MCAST_STATE_DONE || m.u.announce.state == MCAST_STATE_ABORTED)
                continue; /* an earlier run of that name; wait for a live one */
            rx->ann = m.u.announce;
            rx->session_id = m.session_id;
            rx->sender = from;
            rx->sender.port = m.u.announce.ctl_port;
            return FIND_LIVE;
        }
    }
}

/* Whether what the session does not bring can be fetched by unicast. */
static gboolean can_fall_back(Rx *rx)
{
    return rx->o->fallback != NULL && !rx->to_store &&
           (rx->m != NULL || rx->o->fallback_manifest != NULL);
}

/* One datagram off the data socket: TAKE_FAILED (error set), TAKE_ALL every chunk is in,
 * TAKE_UNICAST the rest comes by unicast (fallback_why says why), TAKE_ON go on. */
static int take(Rx *rx, const guint8 *buf, gsize n, const char *target, GError **error)
{
    McastMsg m;
    if (n > MCAST_DATAGRAM_MAX || mcast_msg_parse(buf, n, &m) != MCAST_PARSE_OK ||
        m.session_id != rx->session_id) {
        rx->st->foreign_datagrams++;
        return 0;
    }
    rx->last_heard = g_get_monotonic_time();
    if (m.type == MCAST_MSG_ANNOUNCE) {
        rx->st->passes_seen = MAX(rx->st->passes_seen, m.u.announce.pass);
        if ((m.u.announce.state == MCAST_STATE_DONE || m.u.announce.state == MCAST_STATE_ABORTED) &&
            can_fall_back(rx)) {
            g_strlcpy(rx->st->fallback_why, "the session ended", sizeof(rx->st->fallback_why));
            return TAKE_UNICAST;
        }
        if (m.u.announce.state == MCAST_STATE_DONE || m.u.announce.state == MCAST_STATE_ABORTED) {
            g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_ENDED,
                        "session %s %s before this receiver had every chunk (%u of %u missing; "
                        "restore --delta from the server fetches them)",
                        rx->o->session, mcast_state_name(m.u.announce.state), rx->remaining,
                        rx->st->chunks_total);
            return -1;
        }
    } else if (m.type == MCAST_MSG_DIRECT) {
        /* A slow receiver sent to unicast (slow_policy unicast); without a fallback it
         * stays and takes the later passes. */
        if (m.u.direct.client_id == rx->client_id && m.u.direct.action == MCAST_DIRECT_UNICAST &&
            can_fall_back(rx)) {
            g_strlcpy(rx->st->fallback_why, "told to by the sender (slow)",
                      sizeof(rx->st->fallback_why));
            return TAKE_UNICAST;
        }
    } else if (m.type == MCAST_MSG_DATA) {
        rx->datagrams++;
        if (!on_data(rx, &m.u.data, target, error))
            return -1;
        if (rx->m != NULL && rx->remaining == 0)
            return 1;
    }
    return 0;
}

/* The unicast fallback: every chunk still wanted is fetched from o->fallback (the imaging
 * server), decoded and checked against its hash by pb_chunk_fetch, and written where the
 * manifest puts it, as a chunk of the session would be; FALLBACK_THREADS requests at once
 * (lib/image's HTTP client is thread-safe). The sender hears that we went
 * (MCAST_RX_UNICAST), and our status every STATUS_US meanwhile, so it neither waits for
 * us nor drops us as silent. */
#define FALLBACK_THREADS 4

typedef struct {
    Rx *rx;
    const char *target;
    GPtrArray *refs; /* const PbChunkRef*, one per wanted chunk */
    gint next;
    GMutex mu; /* guards rx->remaining, rx->st, error, running */
    GCond cond;
    GError *error;
    guint running;
} Fallback;

static gpointer fallback_worker(gpointer data)
{
    Fallback *fb = data;
    Rx *rx = fb->rx;
    guint8 *raw = g_malloc(rx->m->chunk_size);
    for (;;) {
        guint i = (guint)g_atomic_int_add(&fb->next, 1);
        if (i >= fb->refs->len)
            break;
        g_mutex_lock(&fb->mu);
        gboolean stop =
            fb->error != NULL || (rx->o->cancel != NULL && g_atomic_int_get(rx->o->cancel));
        g_mutex_unlock(&fb->mu);
        if (stop)
            break;
        const PbChunkRef *ref = g_ptr_array_index(fb->refs, i);
        Want *w = g_hash_table_lookup(rx->want, ref->hash); /* the table is not changed now */
        PbCodec codec;
        gsize stored = 0;
        GError *e = NULL;
        gboolean ok = pb_chunk_fetch(rx->o->fallback, ref, raw, w->len, &codec, &stored, &e);
        for (guint k = 0; ok && k < w->pos->len; k++) {
            Pos *p = &g_array_index(w->pos, Pos, k);
            ok = pwrite_all(rx->disk.fd, raw, p->len, p->off, &e);
            if (!ok)
                g_prefix_error(&e, "%s: ", fb->target);
        }
        g_mutex_lock(&fb->mu);
        if (ok) {
            w->done = TRUE;
            rx->remaining--;
            rx->st->chunks_fallback++;
            rx->st->bytes_written += (guint64)w->len * w->pos->len;
        } else if (fb->error == NULL)
            fb->error = e;
        else
            g_error_free(e);
        g_mutex_unlock(&fb->mu);
    }
    g_free(raw);
    g_mutex_lock(&fb->mu);
    fb->running--;
    g_cond_signal(&fb->cond);
    g_mutex_unlock(&fb->mu);
    return NULL;
}

static gboolean fall_back(Rx *rx, const char *target, GError **error)
{
    const PbMcastRecvOptions *o = rx->o;
    rx->state = MCAST_RX_UNICAST;
    send_status(rx);
    if (rx->m == NULL) {
        /* The session ended before the manifest came: the server's, if it is the one
         * announced. */
        PbManifest *m = o->fallback_manifest(o->fallback_data, rx->ann.image, error);
        if (m == NULL) {
            g_prefix_error(error, "session %s: unicast fallback: ", o->session);
            return FALSE;
        }
        if (memcmp(m->seal, rx->ann.seal, PB_HASH_LEN) != 0) {
            pb_manifest_free(m);
            g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_FAILED,
                        "session %s: the server's image %s is not the one the session sent",
                        o->session, rx->ann.image);
            return FALSE;
        }
        rx->m = m;
        if (!prepare(rx, target, error))
            return FALSE;
    }
    g_hash_table_remove_all(rx->partials); /* what they hold is fetched whole */
    rx->partial_bytes = 0;
    Fallback fb = {.rx = rx, .target = target, .refs = g_ptr_array_new()};
    g_mutex_init(&fb.mu);
    g_cond_init(&fb.cond);
    for (guint i = 0; i < rx->m->chunks->len; i++) {
        const PbChunkRef *ref = &g_array_index(rx->m->chunks, PbChunkRef, i);
        Want *w = ref->kind == PB_CHUNK_DATA ? g_hash_table_lookup(rx->want, ref->hash) : NULL;
        if (w != NULL && !w->done && !w->queued) {
            w->queued = TRUE;
            g_ptr_array_add(fb.refs, (gpointer)ref);
        }
    }
    GThread *threads[FALLBACK_THREADS];
    guint n = MIN(FALLBACK_THREADS, fb.refs->len);
    fb.running = n;
    for (guint i = 0; i < n; i++)
        threads[i] = g_thread_new("mcast-fallback", fallback_worker, &fb);
    gint64 last_progress = 0;
    g_mutex_lock(&fb.mu);
    while (fb.running > 0) {
        g_cond_wait_until(&fb.cond, &fb.mu, g_get_monotonic_time() + STATUS_US);
        gint64 t = g_get_monotonic_time();
        if (t - rx->last_status >= STATUS_US)
            send_status(rx);
        if (o->progress != NULL && t - last_progress > 200 * 1000) {
            o->progress(rx->st->bytes_written, rx->st->bytes_total, o->progress_data);
            last_progress = t;
        }
    }
    g_mutex_unlock(&fb.mu);
    for (guint i = 0; i < n; i++)
        g_thread_join(threads[i]);
    g_ptr_array_unref(fb.refs);
    g_mutex_clear(&fb.mu);
    g_cond_clear(&fb.cond);
    if (fb.error != NULL) {
        g_propagate_prefixed_error(error, fb.error,
                                   "session %s: unicast fallback (%u chunks left): ", o->session,
                                   rx->remaining);
        return FALSE;
    }
    if (rx->remaining > 0) {
        g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_ENDED, "cancelled");
        return FALSE;
    }
    return TRUE;
}

gboolean pb_mcast_receive(const char *target, const PbMcastRecvOptions *o, PbMcastRecvStats *st,
                          GError **error)
{
    memset(st, 0, sizeof(*st));
    Rx rx = {.o = o, .st = st, .sock = PB_SOCKET_NONE, .state = MCAST_RX_JOINING};
    rx.max_partial = o->max_partial ? o->max_partial : PB_MCAST_PARTIAL_MAX;
    rx.client_id = ((guint64)g_random_int() << 32) | g_random_int();
    if (rx.client_id == 0)
        rx.client_id = 1;
    g_strlcpy(rx.label, o->label != NULL ? o->label : g_get_host_name(), sizeof(rx.label));
    if (!mcast_label_valid(rx.label, strlen(rx.label)))
        g_strlcpy(rx.label, "receiver", sizeof(rx.label));
    rx.to_store = o->store != NULL || o->sink_put != NULL;
    rx.want = g_hash_table_new_full(hash32, eq32, NULL, want_free);
    rx.partials = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, partial_free);
    gboolean ok = FALSE;
    guint8 *bufs = NULL;
    guint32 ann_group = o->announce_group;
    if (ann_group == 0) {
        guint prefix;
        mcast_range_parse(PB_MCAST_RANGE_DEFAULT, &ann_group, &prefix);
    }
    PbAddr bind = {.family = 4, .port = o->data_port ? o->data_port : PB_MCAST_DATA_PORT};
    PbAddr ag = {.family = 4}, sg = {.family = 4};
    guint32 a = g_htonl(ann_group);
    memcpy(ag.addr, &a, 4);
    rx.sock = pb_udp_open(&bind, PB_UDP_REUSEADDR, error);
    if (rx.sock == PB_SOCKET_NONE)
        goto out;
    {
        int big = 16 << 20;
        if (setsockopt((int)rx.sock, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) != 0)
            (void)setsockopt((int)rx.sock, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    }
    int found = FIND_FAILED;
    if (!pb_udp_join_group(rx.sock, &ag, 0, error) ||
        (found = find_session(&rx, error)) == FIND_FAILED)
        goto out;
    if (found == FIND_LATE && !can_fall_back(&rx)) {
        g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_ENDED,
                    "session %s ended (%s) before this receiver started; it sent image %s: "
                    "restore that image from the imaging server",
                    o->session, mcast_state_name(rx.ann.state), rx.ann.image);
        goto out;
    }
    if (found == FIND_LATE) {
        /* Nothing to join: the whole image by unicast, the manifest the record's. */
        g_strlcpy(st->fallback_why, "session ended; restored by unicast", sizeof(st->fallback_why));
        goto unicast;
    }
    guint32 g = g_htonl(rx.ann.group);
    memcpy(sg.addr, &g, 4);
    if (!pb_udp_join_group(rx.sock, &sg, 0, error))
        goto out;
    g_strlcpy(st->image, rx.ann.image, sizeof(st->image));
    send_status(&rx);
    nack_manifest(&rx);
    rx.last_heard = g_get_monotonic_time();
    bufs = g_malloc((gsize)RX_BATCH * RX_BUF);
    struct mmsghdr msgs[RX_BATCH];
    struct iovec iov[RX_BATCH];
    memset(msgs, 0, sizeof(msgs));
    for (int k = 0; k < RX_BATCH; k++) {
        iov[k].iov_base = bufs + (gsize)k * RX_BUF;
        iov[k].iov_len = RX_BUF;
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
    }
    gint64 last_progress = 0, last_manifest_ask = g_get_monotonic_time();
    for (;;) {
        gint64 t = g_get_monotonic_time();
        if (rx.m != NULL && rx.remaining == 0)
            break;
        if (o->cancel != NULL && g_atomic_int_get(o->cancel)) {
            g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_ENDED, "cancelled");
            goto out;
        }
        guint after = o->fallback_after_s ? o->fallback_after_s : 5;
        if (can_fall_back(&rx) && t - rx.last_heard > (gint64)after * G_USEC_PER_SEC) {
            g_snprintf(st->fallback_why, sizeof(st->fallback_why), "nothing heard for %u s", after);
            goto unicast;
        }
        if (t - rx.last_heard > (gint64)o->wait_s * G_USEC_PER_SEC) {
            g_set_error(error, PB_MCAST_ERROR, PB_MCAST_ERROR_TIMEOUT,
                        "session %s: nothing heard from the sender for %u s", o->session,
                        o->wait_s);
            goto out;
        }
        struct pollfd pfd = {.fd = (int)rx.sock, .events = POLLIN};
        int pr = poll(&pfd, 1, 20);
        /* recvmmsg: one system call for up to RX_BATCH datagrams (the receivers' CPU per
         * GiB is one of the goals: doc/multicast.md) */
        for (int round = 0; pr > 0 && round < 64; round++) {
            int got = recvmmsg((int)rx.sock, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
            if (got <= 0)
                break;
            for (int k = 0; k < got; k++) {
                msgs[k].msg_hdr.msg_flags = 0;
                int r = take(&rx, bufs + (gsize)k * RX_BUF, msgs[k].msg_len, target, error);
                if (r == TAKE_FAILED)
                    goto out;
                if (r == TAKE_ALL)
                    goto received;
                if (r == TAKE_UNICAST)
                    goto unicast;
            }
            if (got < RX_BATCH)
                break;
        }
        t = g_get_monotonic_time();
        if (rx.m == NULL && t - last_manifest_ask > 500 * 1000 &&
            g_hash_table_lookup(rx.partials, GUINT_TO_POINTER(0)) == NULL) {
            nack_manifest(&rx);
            last_manifest_ask = t;
        }
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, rx.partials);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
            Partial *pa = v;
            if (t - pa->last_rx > NACK_DELAY && t - pa->last_nack > NACK_EVERY &&
                pa->nacks < NACK_TRIES)
                send_nack(&rx, pa);
        }
        if (t - rx.last_status > STATUS_US)
            send_status(&rx);
        if (o->progress != NULL && t - last_progress > 200 * 1000 && rx.m != NULL) {
            o->progress(st->bytes_written, st->bytes_total, o->progress_data);
            last_progress = t;
        }
    }
    goto received;
unicast:
    if (!fall_back(&rx, target, error))
        goto out;
received:
    if (rx.to_store) {
        const char *as = o->store_as != NULL ? o->store_as : rx.ann.image;
        if (o->sink_commit != NULL ? !o->sink_commit(o->sink_data, as, rx.m, error)
                                   : !pb_store_put_manifest(o->store, as, rx.m, error)) {
            g_prefix_error(error, "image %s: ", as);
            goto out;
        }
        goto stored;
    }
    if (fsync(rx.disk.fd) != 0) {
        int e = errno;
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "%s: %s", target, g_strerror(e));
        goto out;
    }
    {
        gboolean grow = rx.disk.size > rx.m->disk_size && g_strcmp0(rx.m->label, "gpt") == 0;
        pb_disk_close(&rx.disk);
        rx.disk_open = FALSE;
        if (grow && !pb_disk_fix_gpt(target, error))
            goto out;
    }
stored:
    rx.state = MCAST_RX_DONE;
    for (int i = 0; i < 3; i++)
        send_status(&rx);
    ok = TRUE;
out:
    if (!ok && rx.sock != PB_SOCKET_NONE && rx.session_id != 0) {
        rx.state = MCAST_RX_LEAVING;
        send_status(&rx);
    }
    if (rx.disk_open)
        pb_disk_close(&rx.disk);
    if (rx.sock != PB_SOCKET_NONE)
        pb_udp_close(rx.sock);
    g_hash_table_destroy(rx.partials);
    g_hash_table_destroy(rx.want);
    pb_manifest_free(rx.m);
    g_free(rx.raw);
    g_free(bufs);
    return ok;
}
