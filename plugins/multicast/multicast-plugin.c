/* multicast-plugin.c - the `multicast` plugin (preboot-multicast(8)): multicast imaging
 * sessions started with `prebootctl mcast start NAME IMAGE [clients=N] [t=MIN]`, each
 * sending one image of a lib/image store to a group of receivers (preboot-img session).
 * Every session runs lib/mcast's sender in a thread of its own; the main loop only starts,
 * stops and reports them. The sender threads log through a queue the main loop drains,
 * since only the main loop may call the host. */
#include "build-config.h"

#include "mcast-record.h"
#include "mcast.h"
#include "net.h"

#include <preboot/http.h>
#include <preboot/multicast.h>
#include <preboot/imaging.h>
#include <preboot/plugin.h>
#include <string.h>

#define DRAIN_MS 200

static const char *const slow_policies[] = {"unicast", "wait", NULL};

static const pb_param params[] = {
    {.name = "store",
     .type = PB_PARAM_PATH,
     .def = PB_STATEDIR "/images",
     .help = "The lib/image store (preboot-image(5)) images are read from and master clients' "
             "sessions stored in when no imaging plugin runs; with one, its backend (what "
             "`prebootctl imaging list` shows) is used instead."},
    {.name = "group_range",
     .type = PB_PARAM_STRING,
     .def = PB_MCAST_RANGE_DEFAULT,
     .help = "IPv4 multicast range A.B.C.D/N the session groups are taken from; its first "
             "address is the announcement group every session is announced on."},
    {.name = "port",
     .type = PB_PARAM_INT,
     .def = "8092",
     .min = 1,
     .max = 65535,
     .help = "UDP port the groups are sent to (receivers listen on it)."},
    {.name = "address",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_EMPTY_OK,
     .help = "IPv4 address sessions send from and take control datagrams on; empty: any."},
    {.name = "rate",
     .type = PB_PARAM_INT,
     .def = "400",
     .min = 1,
     .max = 100000,
     .unit = "Mbit/s",
     .help = "Sending rate of each session."},
    {.name = "first_join_timeout",
     .type = PB_PARAM_INT,
     .def = "1800",
     .min = 0,
     .max = 604800,
     .unit = "s",
     .help = "A session nobody joined in this time is given up; 0: wait forever."},
    {.name = "join_timeout",
     .type = PB_PARAM_INT,
     .def = "300",
     .min = 0,
     .max = 604800,
     .unit = "s",
     .help = "A session starts this long after the last receiver joined, unless t=MIN says "
             "otherwise; 0: only the count or `mcast go` start it."},
    {.name = "drop_timeout",
     .type = PB_PARAM_INT,
     .def = "15",
     .min = 2,
     .max = 3600,
     .unit = "s",
     .help = "A receiver silent this long is dropped (and logged); the room goes on."},
    {.name = "max_sessions",
     .type = PB_PARAM_INT,
     .def = "16",
     .min = 1,
     .max = 1024,
     .help = "Sessions kept (running or finished); the oldest finished one makes room."},
    {.name = "keep_finished",
     .type = PB_PARAM_INT,
     .def = "3600",
     .min = 1,
     .max = 604800,
     .unit = "s",
     .help = "A finished session is forgotten this long after it ended: its status and "
             "the record that sends receivers started after the end to unicast."},
    {.name = "max_clients",
     .type = PB_PARAM_INT,
     .def = "256",
     .min = 1,
     .max = 65535,
     .help = "Receivers admitted to one session."},
    {.name = "max_passes",
     .type = PB_PARAM_INT,
     .def = "20",
     .min = 1,
     .max = 10000,
     .help = "Carousel passes before a session gives up on receivers still missing chunks."},
    {.name = "slow_percent",
     .type = PB_PARAM_INT,
     .def = "10",
     .min = 0,
     .max = 100,
     .unit = "%",
     .help = "A receiver asking again for more than this share of what was sent is slow: it is "
             "no longer repaired while others receive, and completes from later passes; 0: "
             "never."},
    {.name = "slow_policy",
     .type = PB_PARAM_ENUM,
     .def = "unicast",
     .choices = slow_policies,
     .help = "What a slow receiver (slow_percent) gets: unicast, told at once to fetch what it "
             "lacks from the imaging server (preboot-img session's fallback), so the room is "
             "not slowed; wait, the later passes and then, once the others are done, a pass at "
             "its own rate."},
    {.name = "ttl",
     .type = PB_PARAM_INT,
     .def = "1",
     .min = 1,
     .max = 255,
     .help = "Multicast TTL; 1 keeps sessions on the local link."},
    PB_LOG_PARAMS(NULL, NULL, NULL, "multicast.log",
                  "0 critical, 1 dropped receivers and failed sessions, 2 sessions and "
                  "receivers, 3 passes, 4 debug"),
};

typedef struct {
    char *store, *range, *address;
    guint port, rate, first_join, join, drop, max_sessions, keep_finished, max_clients, max_passes,
        slow, ttl;
    guint8 slow_policy; /* PbMcastSlowPolicy */
    guint32 base;
    guint prefix;
} Settings;

/* The imaging plugin's backend as a PbChunkIO for a sender thread (imaging.h: callable
 * from any thread while the service is published). */
typedef struct {
    const pb_imaging_service *svc;
} SvcIO;

typedef struct {
    char *name, *image;
    guint8 seal[PB_HASH_LEN]; /* the image's manifest seal: what a late receiver checks */
    guint32 group;
    gint64 created_us;
    gint64 finished_us; /* when the main loop first saw it finished; 0: running */
    PbStore *store;     /* NULL: read through the imaging service (sio) */
    SvcIO *sio;
    PbMcastSender *sender;
} Session;

/* `mcast store NAME IMAGE`: a receiver in a thread of its own that stores what a master
 * client sends as IMAGE. */
typedef struct {
    char *name, *image;
    PbStore *store;
    GThread *thread;
    GMutex mu;
    gboolean finished, ok;
    char *message;
    guint64 done, total;
    gint cancel;
    PbMcastRecvOptions o;
    PbMcastRecvStats st;
    GAsyncQueue *logq;             /* the plugin's */
    const pb_imaging_service *svc; /* not NULL: stored through the imaging backend */
} Recording;

typedef struct {
    const pb_host *host;
    pb_instance *inst;
    Settings set;
    GPtrArray *sessions;   /* Session*, oldest first */
    GPtrArray *recordings; /* Recording* */
    GAsyncQueue *logq;     /* LogLine* from the sender threads */
    pb_service_watch *img_watch;
    const pb_imaging_service *img; /* the imaging plugin's backend, while published */
    pb_service_watch *http_watch;
    const pb_http_service *http; /* the daemon's HTTP listener, while published */
    gboolean routed;             /* PB_MCAST_RECORD_PREFIX is ours there */
    gint64 record_log_us;        /* record lookups are logged once a second at most */
    guint record_log_quiet;      /* ...and counted meanwhile */
    pb_counter *c_records;
    pb_timer *drain;
    guint64 started;
    pb_counter *c_started;
    pb_mcast_service svc; /* preboot.multicast, for the policy plugin */
} Mcast;

typedef struct {
    int level;
    char *msg;
} LogLine;

static void settings_load(const pb_host *h, const pb_config *cfg, Settings *s)
{
    s->store = g_strdup(h->config_string(cfg, "store"));
    s->range = g_strdup(h->config_string(cfg, "group_range"));
    s->address = g_strdup(h->config_string(cfg, "address"));
    s->port = (guint)h->config_int(cfg, "port");
    s->rate = (guint)h->config_int(cfg, "rate");
    s->first_join = (guint)h->config_int(cfg, "first_join_timeout");
    s->join = (guint)h->config_int(cfg, "join_timeout");
    s->drop = (guint)h->config_int(cfg, "drop_timeout");
    s->max_sessions = (guint)h->config_int(cfg, "max_sessions");
    s->keep_finished = (guint)h->config_int(cfg, "keep_finished");
    s->max_clients = (guint)h->config_int(cfg, "max_clients");
    s->max_passes = (guint)h->config_int(cfg, "max_passes");
    s->slow = (guint)h->config_int(cfg, "slow_percent");
    s->ttl = (guint)h->config_int(cfg, "ttl");
    s->slow_policy = g_ascii_strcasecmp(h->config_string(cfg, "slow_policy"), "wait") == 0
                         ? PB_MCAST_SLOW_WAIT
                         : PB_MCAST_SLOW_UNICAST;
}

static void settings_clear(Settings *s)
{
    g_free(s->store);
    g_free(s->range);
    g_free(s->address);
    memset(s, 0, sizeof(*s));
}

static gboolean settings_check(const pb_host *h, const pb_config *cfg, Settings *s, pb_err *err)
{
    if (!mcast_range_parse(s->range, &s->base, &s->prefix)) {
        h->error(err, "%s: \"%s\" is not an IPv4 multicast range A.B.C.D/N (N 8-30)",
                 pb_config_where(h, cfg, "group_range"), s->range);
        return FALSE;
    }
    PbAddr a;
    if (*s->address && (!pb_addr_parse(s->address, 0, &a) || a.family != 4)) {
        h->error(err, "%s: sessions send over IPv4; \"%s\" is not an IPv4 address",
                 pb_config_where(h, cfg, "address"), s->address);
        return FALSE;
    }
    return TRUE;
}

static void session_free(gpointer p)
{
    Session *s = p;
    pb_mcast_sender_free(s->sender);
    pb_store_close(s->store);
    g_free(s->sio);
    g_free(s->name);
    g_free(s->image);
    g_free(s);
}

static void log_line_free(gpointer p)
{
    LogLine *l = p;
    g_free(l->msg);
    g_free(l);
}

/* From sender threads: queue it for the main loop. */
static void sender_log(int level, const char *msg, void *data)
{
    Mcast *mc = data;
    LogLine *l = g_new(LogLine, 1);
    l->level = level;
    l->msg = g_strdup(msg);
    g_async_queue_push(mc->logq, l);
}

/* ---- the imaging plugin's backend (PB_IMAGING_SERVICE) --------------------------------- */

static void svc_error(GError **error, const char *what, const pb_imaging_error *e)
{
    g_set_error(error, PB_IMAGE_ERROR,
                e->status == PB_IMAGING_NOT_FOUND ? PB_IMAGE_ERROR_MISSING : PB_IMAGE_ERROR_IO,
                "%s: %s", what, e->message);
}

static gboolean sio_has(void *self, const guint8 hash[PB_HASH_LEN], PbChunkRef *found)
{
    SvcIO *io = self;
    uint32_t codec = 0;
    uint64_t stored = 0;
    if (io->svc->chunk_stat(io->svc->ctx, hash, &codec, &stored, NULL) != PB_IMAGING_OK)
        return FALSE;
    if (found != NULL) {
        memset(found, 0, sizeof(*found));
        found->kind = PB_CHUNK_DATA;
        found->codec = (guint8)codec;
        found->stored = stored;
        memcpy(found->hash, hash, PB_HASH_LEN);
    }
    return TRUE;
}

static bool take_bytes(void *data, const void *bytes, size_t len)
{
    g_byte_array_append(data, bytes, (guint)len);
    return true;
}

static GBytes *sio_get(void *self, const PbChunkRef *ref, PbCodec *codec, GError **error)
{
    SvcIO *io = self;
    GByteArray *a = g_byte_array_sized_new((guint)MIN(ref->stored, PB_CHUNK_SIZE_MAX + 1024u));
    uint32_t c = 0;
    pb_imaging_error e = {.struct_size = sizeof(e)};
    if (io->svc->chunk_get(io->svc->ctx, ref->hash, &c, take_bytes, a, &e) != PB_IMAGING_OK) {
        char hex[PB_HASH_HEX_LEN + 1];
        pb_hash_to_hex(ref->hash, hex);
        g_autofree char *what = g_strdup_printf("chunk %s", hex);
        svc_error(error, what, &e);
        g_byte_array_unref(a);
        return NULL;
    }
    *codec = (PbCodec)c;
    return g_byte_array_free_to_bytes(a);
}

static gboolean sio_put(void *self, const guint8 hash[PB_HASH_LEN], PbCodec codec, const void *data,
                        gsize len, GError **error)
{
    g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "a session's chunks are not written");
    return FALSE;
}

static void sio_chunk_io(SvcIO *sio, PbChunkIO *io)
{
    io->self = sio;
    io->has = sio_has;
    io->get = sio_get;
    io->put = sio_put;
}

static PbManifest *svc_manifest(const pb_imaging_service *svc, const char *image, GError **error)
{
    g_autoptr(GByteArray) text = g_byte_array_new();
    pb_imaging_error e = {.struct_size = sizeof(e)};
    if (svc->manifest(svc->ctx, image, take_bytes, text, &e) != PB_IMAGING_OK) {
        svc_error(error, svc->backend, &e);
        return NULL;
    }
    return pb_manifest_parse((const char *)text->data, text->len, error);
}

/* A master's session into the backend: what the receiver (lib/mcast) stores. */
static gboolean rec_has(void *data, const guint8 hash[PB_HASH_LEN])
{
    const pb_imaging_service *svc = data;
    return svc->chunk_stat(svc->ctx, hash, NULL, NULL, NULL) == PB_IMAGING_OK;
}

static gboolean rec_put(void *data, const guint8 hash[PB_HASH_LEN], PbCodec codec, guint32 length,
                        const void *bytes, gsize len, GError **error)
{
    const pb_imaging_service *svc = data;
    pb_imaging_error e = {.struct_size = sizeof(e)};
    if (svc->chunk_put(svc->ctx, hash, codec, length, bytes, len, &e) == PB_IMAGING_OK)
        return TRUE;
    svc_error(error, svc->backend, &e);
    return FALSE;
}

static gboolean rec_commit(void *data, const char *name, const PbManifest *m, GError **error)
{
    const pb_imaging_service *svc = data;
    g_autoptr(GString) text = pb_manifest_build((PbManifest *)m);
    pb_imaging_error e = {.struct_size = sizeof(e)};
    if (svc->image_commit(svc->ctx, name, text->str, text->len, "multicast", &e) == PB_IMAGING_OK)
        return TRUE;
    svc_error(error, svc->backend, &e);
    return FALSE;
}

static Session *find(Mcast *mc, const char *name)
{
    for (guint i = 0; i < mc->sessions->len; i++) {
        Session *s = g_ptr_array_index(mc->sessions, i);
        if (strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

static gboolean group_taken(guint32 addr, void *data)
{
    Mcast *mc = data;
    for (guint i = 0; i < mc->sessions->len; i++) {
        Session *s = g_ptr_array_index(mc->sessions, i);
        if (s->group == addr && !pb_mcast_sender_finished(s->sender))
            return TRUE;
    }
    return FALSE;
}

/* Finished sessions are kept keep_finished seconds (and while max_sessions leaves room):
 * long enough for a receiver started after the end to learn the image from the record,
 * not so long that a name reused days later sends it to an old image. */
static void forget_old(Mcast *mc)
{
    gint64 now = g_get_monotonic_time();
    for (guint i = 0; i < mc->sessions->len; i++) {
        Session *s = g_ptr_array_index(mc->sessions, i);
        if (s->finished_us == 0 && pb_mcast_sender_finished(s->sender))
            s->finished_us = now;
        if (s->finished_us == 0 ||
            now - s->finished_us < (gint64)mc->set.keep_finished * G_USEC_PER_SEC)
            continue;
        mc->host->log(mc->inst, PB_LOG_TRANSACTION,
                      "session %s: finished %u s ago, forgotten (keep_finished)", s->name,
                      mc->set.keep_finished);
        g_ptr_array_remove_index(mc->sessions, i--);
    }
}

/* The sender threads' log lines, written from the main loop; and old sessions forgotten. */
static bool drain_tick(void *data)
{
    Mcast *mc = data;
    LogLine *l;
    while ((l = g_async_queue_try_pop(mc->logq)) != NULL) {
        mc->host->log(mc->inst, l->level, "%s", l->msg);
        log_line_free(l);
    }
    forget_old(mc);
    return true;
}

static void drop_finished_for_room(Mcast *mc)
{
    while (mc->sessions->len >= mc->set.max_sessions) {
        guint i;
        for (i = 0; i < mc->sessions->len; i++)
            if (pb_mcast_sender_finished(((Session *)g_ptr_array_index(mc->sessions, i))->sender))
                break;
        if (i == mc->sessions->len)
            return;
        g_ptr_array_remove_index(mc->sessions, i);
    }
}

static gboolean parse_count(const char *text, guint max, guint *out)
{
    char *end;
    guint64 v = g_ascii_strtoull(text, &end, 10);
    if (*text == '\0' || *end != '\0' || *text == '-' || v > max)
        return FALSE;
    *out = (guint)v;
    return TRUE;
}

static void recording_progress(guint64 done, guint64 total, void *data)
{
    Recording *r = data;
    g_mutex_lock(&r->mu);
    r->done = done;
    r->total = total;
    g_mutex_unlock(&r->mu);
}

static gpointer recording_main(gpointer data)
{
    Recording *r = data;
    GError *e = NULL;
    gboolean ok = pb_mcast_receive(NULL, &r->o, &r->st, &e);
    LogLine *l = g_new(LogLine, 1);
    l->level = ok ? PB_LOG_TRANSACTION : PB_LOG_WARNING;
    l->msg = ok ? g_strdup_printf("session %s: stored as image %s: %u chunks received, %u "
                                  "already in the store",
                                  r->name, r->image, r->st.chunks_received, r->st.chunks_same)
                : g_strdup_printf("session %s: not stored as image %s: %s", r->name, r->image,
                                  e->message);
    g_async_queue_push(r->logq, l);
    if (r->svc != NULL)
        r->svc->store_end(r->svc->ctx);
    g_mutex_lock(&r->mu);
    r->finished = TRUE;
    r->ok = ok;
    r->message = g_strdup(ok ? "stored" : e->message);
    g_mutex_unlock(&r->mu);
    g_clear_error(&e);
    return NULL;
}

static void recording_free(gpointer p)
{
    Recording *r = p;
    g_atomic_int_set(&r->cancel, 1); /* it looks at least every 200 ms */
    if (r->thread != NULL)
        g_thread_join(r->thread);
    pb_store_close(r->store);
    g_mutex_clear(&r->mu);
    g_free(r->message);
    g_free(r->name);
    g_free(r->image);
    g_free(r);
}

static bool cmd_store(Mcast *mc, int argc, const char *const *argv, pb_reply *reply)
{
    const pb_host *h = mc->host;
    if (argc < 4 || !mcast_name_valid(argv[2], strlen(argv[2])) || !pb_name_valid(argv[3])) {
        h->reply(reply, "usage: mcast store NAME IMAGE (names [A-Za-z0-9._-])\n");
        return false;
    }
    for (guint i = 0; i < mc->recordings->len; i++) {
        Recording *r = g_ptr_array_index(mc->recordings, i);
        g_mutex_lock(&r->mu);
        gboolean fin = r->finished;
        g_mutex_unlock(&r->mu);
        if (fin) {
            g_ptr_array_remove_index(mc->recordings, i--);
            continue;
        }
        if (strcmp(r->name, argv[2]) == 0) {
            h->reply(reply, "session %s is being stored already\n", argv[2]);
            return false;
        }
    }
    if (mc->recordings->len >= mc->set.max_sessions) {
        h->reply(reply, "%u sessions are being stored: the limit (max_sessions)\n",
                 mc->recordings->len);
        return false;
    }
    g_autoptr(GError) e = NULL;
    PbStore *store = NULL;
    if (mc->img != NULL) {
        pb_imaging_error ie = {.struct_size = sizeof(ie)};
        if (mc->img->store_begin(mc->img->ctx, &ie) != PB_IMAGING_OK) {
            h->reply(reply, "%s: %s\n", mc->img->backend, ie.message);
            return false;
        }
    } else if ((store = pb_store_open(mc->set.store, TRUE, &e)) == NULL) {
        h->reply(reply, "%s\n", e->message);
        return false;
    }
    Recording *r = g_new0(Recording, 1);
    r->svc = mc->img;
    g_mutex_init(&r->mu);
    r->name = g_strdup(argv[2]);
    r->image = g_strdup(argv[3]);
    r->store = store;
    r->logq = mc->logq;
    r->o.session = r->name;
    r->o.announce_group = mc->set.base;
    r->o.data_port = (guint16)mc->set.port;
    r->o.label = "server";
    r->o.wait_s = mc->set.first_join ? mc->set.first_join : 3600;
    r->o.store = store;
    r->o.store_as = r->image;
    if (r->svc != NULL) {
        r->o.sink_has = rec_has;
        r->o.sink_put = rec_put;
        r->o.sink_commit = rec_commit;
        r->o.sink_data = (void *)r->svc;
    }
    r->o.progress = recording_progress;
    r->o.progress_data = r;
    r->o.cancel = &r->cancel;
    r->thread = g_thread_new("mcast-store", recording_main, r);
    g_ptr_array_add(mc->recordings, r);
    h->log(mc->inst, PB_LOG_TRANSACTION, "session %s: storing it as image %s (%s)", r->name,
           r->image, r->svc != NULL ? r->svc->backend : mc->set.store);
    h->reply(reply, "session %s: will be stored as image %s\n", r->name, r->image);
    return true;
}

static bool cmd_start(Mcast *mc, int argc, const char *const *argv, pb_reply *reply)
{
    const pb_host *h = mc->host;
    if (argc < 4) {
        h->reply(reply, "usage: mcast start NAME IMAGE [clients=N] [t=MIN]\n");
        return false;
    }
    const char *name = argv[2], *image = argv[3];
    guint clients = 0, t_s = mc->set.join;
    for (int i = 4; i < argc; i++) {
        guint v;
        if (g_str_has_prefix(argv[i], "clients=") && parse_count(argv[i] + 8, 65535, &v))
            clients = v;
        else if (g_str_has_prefix(argv[i], "t=") && parse_count(argv[i] + 2, 10080, &v))
            t_s = v * 60;
        else {
            h->reply(reply, "bad argument \"%s\": clients=N (0-65535) or t=MINUTES (0-10080)\n",
                     argv[i]);
            return false;
        }
    }
    if (!mcast_name_valid(name, strlen(name)) || !pb_name_valid(image)) {
        h->reply(reply, "session and image names are [A-Za-z0-9._-], not starting with '.'\n");
        return false;
    }
    Session *old = find(mc, name);
    if (old != NULL && !pb_mcast_sender_finished(old->sender)) {
        h->reply(reply, "session %s is running (mcast delete %s first)\n", name, name);
        return false;
    }
    if (old != NULL)
        g_ptr_array_remove(mc->sessions, old);
    drop_finished_for_room(mc);
    if (mc->sessions->len >= mc->set.max_sessions) {
        h->reply(reply, "%u sessions are running: the limit (max_sessions)\n", mc->sessions->len);
        return false;
    }
    guint32 group = mcast_group_for(name, mc->set.base, mc->set.prefix, group_taken, mc);
    if (group == 0) {
        h->reply(reply, "no free group address left in %s\n", mc->set.range);
        return false;
    }
    g_autoptr(GError) e = NULL;
    PbStore *store = NULL;
    SvcIO *sio = NULL;
    PbManifest *m = NULL;
    PbChunkIO io;
    if (mc->img != NULL) {
        /* The imaging plugin's backend: what `prebootctl imaging list` shows. */
        if ((m = svc_manifest(mc->img, image, &e)) != NULL) {
            sio = g_new0(SvcIO, 1);
            sio->svc = mc->img;
            sio_chunk_io(sio, &io);
        }
    } else {
        store = pb_store_open(mc->set.store, FALSE, &e);
        if ((m = store != NULL ? pb_store_get_manifest(store, image, &e) : NULL) != NULL)
            pb_store_chunk_io(store, &io);
    }
    if (m == NULL) {
        h->reply(reply, "image %s: %s\n", image, e->message);
        pb_store_close(store);
        return false;
    }
    guint8 seal[PB_HASH_LEN];
    memcpy(seal, m->seal, PB_HASH_LEN); /* the sender takes m */
    PbMcastSendOptions o;
    pb_mcast_send_options_init(&o);
    o.name = name;
    o.image = image;
    o.group = group;
    o.announce_group = mc->set.base;
    o.data_port = (guint16)mc->set.port;
    o.bind = *mc->set.address ? mc->set.address : NULL;
    o.rate_mbit = mc->set.rate;
    o.expected = clients;
    o.first_join_s = mc->set.first_join;
    o.later_join_s = t_s;
    o.drop_s = mc->set.drop;
    o.max_clients = mc->set.max_clients;
    o.max_passes = mc->set.max_passes;
    o.slow_percent = mc->set.slow;
    o.slow_policy = mc->set.slow_policy;
    o.ttl = mc->set.ttl;
    o.log = sender_log;
    o.log_data = mc;
    PbMcastSender *snd = pb_mcast_sender_new(m, &io, &o, &e);
    if (snd == NULL) {
        h->reply(reply, "session %s: %s\n", name, e->message);
        pb_store_close(store);
        g_free(sio);
        return false;
    }
    Session *s = g_new0(Session, 1);
    memcpy(s->seal, seal, PB_HASH_LEN);
    s->name = g_strdup(name);
    s->image = g_strdup(image);
    s->group = group;
    s->created_us = g_get_monotonic_time();
    s->store = store;
    s->sio = sio;
    s->sender = snd;
    g_ptr_array_add(mc->sessions, s);
    pb_mcast_sender_start(snd);
    mc->started++;
    h->counter_add(mc->c_started, 1);
    h->reply(reply, "session %s: image %s on %u.%u.%u.%u port %u, waiting for %s%u receivers\n",
             name, image, group >> 24, (group >> 16) & 255, (group >> 8) & 255, group & 255,
             mc->set.port, clients ? "" : "any number of ", clients);
    return true;
}

/* preboot.multicast's ensure_session (include/preboot/multicast.h): the session another
 * plugin's work names (the policy's "multicast NAME image=IMAGE"), started as `mcast start
 * NAME IMAGE clients=N [t=MIN]` would start it, unless one of that name runs. cmd_start's
 * reply has nobody to go to here (the host's reply() drops a NULL reply): the outcome is
 * logged instead. */
static uint32_t svc_ensure_session(void *ctx, const pb_mcast_session_spec *spec)
{
    Mcast *mc = ctx;
    if (spec == NULL || !PB_HAS_FIELD(pb_mcast_session_spec, spec, by) || spec->name == NULL ||
        spec->image == NULL)
        return PB_MCAST_ENSURE_REFUSED;
    Session *s = find(mc, spec->name);
    if (s != NULL && !pb_mcast_sender_finished(s->sender))
        return PB_MCAST_ENSURE_RUNNING;
    char clients[32], t[32];
    g_snprintf(clients, sizeof(clients), "clients=%u", spec->clients);
    g_snprintf(t, sizeof(t), "t=%d", spec->t_min);
    const char *const argv[] = {"mcast", "start", spec->name, spec->image, clients, t};
    bool ok = cmd_start(mc, spec->t_min >= 0 ? 6 : 5, argv, NULL);
    mc->host->log(mc->inst, ok ? PB_LOG_TRANSACTION : PB_LOG_WARNING,
                  "session %s: %s for %s: mcast start %s %s %s%s%s", spec->name,
                  ok ? "started" : "not started (try the command for the reason)",
                  spec->by != NULL ? spec->by : "another plugin", spec->name, spec->image, clients,
                  spec->t_min >= 0 ? " " : "", spec->t_min >= 0 ? t : "");
    return ok ? PB_MCAST_ENSURE_STARTED : PB_MCAST_ENSURE_REFUSED;
}

static void status_all(Mcast *mc, gboolean json, const char *only, GString *out)
{
    if (json)
        g_string_append_printf(out,
                               "{\"sessions_started\":%" G_GUINT64_FORMAT
                               ",\"announce_group\":\"%u.%u.%u.%u\",\"port\":%u,\"sessions\":[",
                               mc->started, mc->set.base >> 24, (mc->set.base >> 16) & 255,
                               (mc->set.base >> 8) & 255, mc->set.base & 255, mc->set.port);
    else
        g_string_append_printf(out,
                               "multicast: %u sessions (%" G_GUINT64_FORMAT
                               " started since the daemon started), images from %s%s\n",
                               mc->sessions->len, mc->started,
                               mc->img != NULL ? "the imaging backend " : "the store ",
                               mc->img != NULL ? mc->img->backend : mc->set.store);
    gboolean first = TRUE;
    guint64 receivers_done = 0;
    for (guint i = 0; i < mc->sessions->len; i++) {
        Session *s = g_ptr_array_index(mc->sessions, i);
        if (only != NULL && strcmp(only, s->name) != 0)
            continue;
        PbMcastSendStats st = {0};
        pb_mcast_sender_stats(s->sender, &st);
        receivers_done += st.clients_done;
        if (json && !first)
            g_string_append_c(out, ',');
        first = FALSE;
        pb_mcast_stats_format(s->name, s->image, s->group, &st, json, out);
        pb_mcast_send_stats_clear(&st);
    }
    if (json)
        g_string_append_printf(out, "],\"receivers_done\":%" G_GUINT64_FORMAT ",\"stored\":[",
                               receivers_done);
    for (guint i = 0; i < mc->recordings->len; i++) {
        Recording *r = g_ptr_array_index(mc->recordings, i);
        g_mutex_lock(&r->mu);
        const char *state = !r->finished ? "receiving" : r->ok ? "stored" : "failed";
        if (json)
            g_string_append_printf(out,
                                   "%s{\"session\":\"%s\",\"image\":\"%s\",\"state\":\"%s\","
                                   "\"bytes_done\":%" G_GUINT64_FORMAT
                                   ",\"bytes_total\":%" G_GUINT64_FORMAT "}",
                                   i ? "," : "", r->name, r->image, state, r->done, r->total);
        else
            g_string_append_printf(out, "storing session %s as image %s: %s%s%s\n", r->name,
                                   r->image, state, r->finished ? ": " : "",
                                   r->finished ? r->message : "");
        g_mutex_unlock(&r->mu);
    }
    if (json)
        g_string_append(out, "]}\n");
}

static const char usage[] = "mcast start NAME IMAGE [clients=N] [t=MIN] | status [--json] [NAME] "
                            "| list | go NAME | clients NAME N | delete NAME | store NAME IMAGE";

static bool cmd_mcast(void *self, int argc, const char *const *argv, pb_reply *reply)
{
    Mcast *mc = self;
    const pb_host *h = mc->host;
    const char *sub = argc > 1 ? argv[1] : "status";
    if (strcmp(sub, "start") == 0)
        return cmd_start(mc, argc, argv, reply);
    if (strcmp(sub, "store") == 0)
        return cmd_store(mc, argc, argv, reply);
    if (strcmp(sub, "status") == 0 || strcmp(sub, "list") == 0) {
        gboolean json = FALSE;
        const char *only = NULL;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--json") == 0)
                json = TRUE;
            else
                only = argv[i];
        }
        if (only != NULL && find(mc, only) == NULL) {
            h->reply(reply, "no session %s\n", only);
            return false;
        }
        g_autoptr(GString) out = g_string_new(NULL);
        if (strcmp(sub, "list") == 0 && !json) {
            for (guint i = 0; i < mc->sessions->len; i++) {
                Session *s = g_ptr_array_index(mc->sessions, i);
                PbMcastSendStats st = {0};
                pb_mcast_sender_stats(s->sender, &st);
                g_string_append_printf(out, "%-24s %-24s %u.%u.%u.%u %-8s %u/%u done\n", s->name,
                                       s->image, s->group >> 24, (s->group >> 16) & 255,
                                       (s->group >> 8) & 255, s->group & 255,
                                       mcast_state_name(st.state), st.clients_done,
                                       st.clients_live + st.clients_dropped);
                pb_mcast_send_stats_clear(&st);
            }
        } else
            status_all(mc, json, only, out);
        h->reply(reply, "%s", out->str);
        return true;
    }
    if (argc < 3) {
        h->reply(reply, "usage: %s\n", usage);
        return false;
    }
    Session *s = find(mc, argv[2]);
    if (s == NULL) {
        h->reply(reply, "no session %s\n", argv[2]);
        return false;
    }
    gboolean running = !pb_mcast_sender_finished(s->sender);
    if (strcmp(sub, "go") == 0) {
        if (!running) {
            h->reply(reply, "session %s has finished\n", s->name);
            return false;
        }
        pb_mcast_sender_go(s->sender);
        h->log(mc->inst, PB_LOG_TRANSACTION, "session %s: go (by the operator)", s->name);
        h->reply(reply, "session %s: starting\n", s->name);
        return true;
    }
    if (strcmp(sub, "clients") == 0) {
        guint n;
        if (argc < 4 || !parse_count(argv[3], 65535, &n)) {
            h->reply(reply, "usage: mcast clients NAME N (0-65535)\n");
            return false;
        }
        if (!running) {
            h->reply(reply, "session %s has finished\n", s->name);
            return false;
        }
        pb_mcast_sender_set_expected(s->sender, n);
        h->reply(reply, "session %s: now expecting %u receivers\n", s->name, n);
        return true;
    }
    if (strcmp(sub, "delete") == 0) {
        g_ptr_array_remove(mc->sessions, s); /* aborts it and waits for its thread */
        drain_tick(mc);
        h->reply(reply, "session %s deleted%s\n", argv[2], running ? " (aborted)" : "");
        return true;
    }
    h->reply(reply, "usage: %s\n", usage);
    return false;
}

/* ---- session records on the HTTP listener ---------------------------------------------- */

/* GET /multicast/v1/sessions/NAME: the record of session NAME, running or finished, for as
 * long as the plugin keeps it (max_sessions). A receiver started after its session ended
 * hears no announcement; this tells it which image the session sent (and that image's
 * seal), so it restores that image by unicast from the imaging server rather than waiting
 * for a session that is over (preboot-img session). Over HTTP rather than the session's
 * UDP: TCP's handshake means no answer goes to a forged source, and the listener's bounds
 * per address and in total apply before this runs. Read-only, answered from what the
 * plugin holds: a request keeps no state and costs one scan of at most max_sessions. */
static bool serve_record(void *data, const pb_http_request *req, pb_http_response *resp)
{
    Mcast *mc = data;
    const pb_http_service *h = mc->http;
    const char *name = req->path + strlen(PB_MCAST_RECORD_PREFIX);
    gboolean valid = mcast_name_valid(name, strlen(name));
    Session *s = valid ? find(mc, name) : NULL;
    PbMcastRecord r = {0};
    if (s != NULL) {
        PbMcastSendStats st = {0};
        pb_mcast_sender_stats(s->sender, &st);
        r.state = st.state != 0 ? st.state : MCAST_STATE_WAITING; /* its thread not yet on */
        pb_mcast_send_stats_clear(&st);
        g_strlcpy(r.session, s->name, sizeof(r.session));
        g_strlcpy(r.image, s->image, sizeof(r.image));
        memcpy(r.seal, s->seal, PB_HASH_LEN);
        mc->host->counter_add(mc->c_records, 1);
    }
    /* Anyone may ask, as often as the listener lets them: one line a second at most. */
    gint64 now = g_get_monotonic_time();
    if (now - mc->record_log_us >= G_USEC_PER_SEC) {
        char more[64] = "";
        if (mc->record_log_quiet > 0)
            g_snprintf(more, sizeof(more), " (%u lookups before not logged)", mc->record_log_quiet);
        mc->host->log(mc->inst, PB_LOG_TRANSACTION, "session %s: record asked for by %s: %s%s%s%s",
                      valid ? name : "(not a session name)", req->client,
                      s != NULL ? mcast_state_name(r.state) : "no such session",
                      s != NULL ? ", image " : "", s != NULL ? s->image : "", more);
        mc->record_log_us = now;
        mc->record_log_quiet = 0;
    } else
        mc->record_log_quiet++;
    h->add_header(h->ctx, resp, "Cache-Control", "no-store");
    if (s == NULL) {
        g_autofree char *body = g_strdup_printf("no session %s\n", valid ? name : "of that name");
        return h->respond(h->ctx, resp, 404, "text/plain", body, strlen(body));
    }
    g_autoptr(GString) out = g_string_new(NULL);
    pb_mcast_record_build(&r, out);
    return h->respond(h->ctx, resp, 200, "application/json", out->str, out->len);
}

static void record_route_off(Mcast *mc)
{
    if (mc->http != NULL && mc->routed)
        mc->http->route_remove(mc->http->ctx, PB_MCAST_RECORD_PREFIX, serve_record, mc);
    mc->routed = FALSE;
}

static void record_route_on(Mcast *mc)
{
    const pb_http_service *h = mc->http;
    if (h == NULL || mc->routed)
        return;
    /* GET and HEAD only, no body: the listener refuses the rest before we run. */
    if (PB_HAS_FIELD(pb_http_service, h, route_add_ex) && h->route_add_ex != NULL) {
        const pb_http_route_options o = {.struct_size = sizeof(o),
                                         .methods = PB_HTTP_M_GET | PB_HTTP_M_HEAD};
        mc->routed = h->route_add_ex(h->ctx, PB_MCAST_RECORD_PREFIX, serve_record, mc, &o);
    } else
        mc->routed = h->route_add(h->ctx, PB_MCAST_RECORD_PREFIX, serve_record, mc);
    mc->host->log(mc->inst, mc->routed ? PB_LOG_CRITICAL : PB_LOG_WARNING,
                  mc->routed ? "session records on the HTTP listener at " PB_MCAST_RECORD_PREFIX
                               " (port %u)"
                             : "cannot add the route " PB_MCAST_RECORD_PREFIX
                               " (taken?) (port %u): receivers started after their session "
                               "ended cannot learn its image",
                  PB_HAS_FIELD(pb_http_service, h, listen_port) ? h->listen_port(h->ctx) : 0);
}

/* The http plugin came or went; its interface is valid only until this returns. */
static void on_http(void *data, unsigned event, const char *name, uint32_t version,
                    const void *iface, uint64_t generation)
{
    Mcast *mc = data;
    record_route_off(mc);
    mc->http = event == PB_SERVICE_APPEARED ? iface : NULL;
    record_route_on(mc);
}

static void *mcast_create(const pb_host *host, pb_instance *inst, const pb_config *cfg, pb_err *err)
{
    Mcast *mc = g_new0(Mcast, 1);
    mc->host = host;
    mc->inst = inst;
    settings_load(host, cfg, &mc->set);
    if (!settings_check(host, cfg, &mc->set, err)) {
        settings_clear(&mc->set);
        g_free(mc);
        return NULL;
    }
    mc->sessions = g_ptr_array_new_with_free_func(session_free);
    mc->recordings = g_ptr_array_new_with_free_func(recording_free);
    mc->logq = g_async_queue_new_full(log_line_free);
    mc->c_started = host->counter(inst, "sessions_started");
    mc->c_records = host->counter(inst, "records_served");
    return mc;
}

/* The imaging plugin came or went. When it goes, the sessions and recordings reading or
 * writing through it stop now: its interface is valid only until this returns. */
static void on_imaging(void *data, unsigned event, const char *name, uint32_t version,
                       const void *iface, uint64_t generation)
{
    Mcast *mc = data;
    for (guint i = 0; i < mc->sessions->len; i++) {
        Session *s = g_ptr_array_index(mc->sessions, i);
        if (s->sio != NULL && !pb_mcast_sender_finished(s->sender)) {
            mc->host->log(mc->inst, PB_LOG_WARNING,
                          "session %s: aborted (the imaging plugin it reads from stopped)",
                          s->name);
            g_ptr_array_remove_index(mc->sessions, i--);
        }
    }
    for (guint i = 0; i < mc->recordings->len; i++) {
        Recording *r = g_ptr_array_index(mc->recordings, i);
        if (r->svc != NULL)
            g_ptr_array_remove_index(mc->recordings, i--); /* cancels and joins it */
    }
    drain_tick(mc);
    const pb_imaging_service *svc = iface;
    mc->img = event == PB_SERVICE_APPEARED && svc != NULL &&
                      svc->struct_size >=
                          offsetof(pb_imaging_service, image_commit) + sizeof(svc->image_commit)
                  ? svc
                  : NULL;
    mc->host->log(mc->inst, PB_LOG_CRITICAL, "images from %s%s",
                  mc->img != NULL ? "the imaging backend " : "the store ",
                  mc->img != NULL ? mc->img->backend : mc->set.store);
}

static bool mcast_start(void *self, pb_err *err)
{
    Mcast *mc = self;
    if (!mc->host->command_register(mc->inst, "mcast", usage, cmd_mcast, err))
        return false;
    mc->drain = mc->host->timer_add(mc->inst, DRAIN_MS, drain_tick, mc);
    mc->svc = (pb_mcast_service){
        .struct_size = sizeof(mc->svc), .ctx = mc, .ensure_session = svc_ensure_session};
    if (!mc->host->service_publish(mc->inst, PB_MCAST_SERVICE, PB_MCAST_SERVICE_VERSION, &mc->svc,
                                   err))
        return false;
    if (PB_HAS_FIELD(pb_host, mc->host, service_watch) && mc->host->service_watch != NULL)
        mc->img_watch = mc->host->service_watch(mc->inst, PB_IMAGING_SERVICE,
                                                PB_IMAGING_SERVICE_VERSION, on_imaging, mc);
    if (PB_HAS_FIELD(pb_host, mc->host, service_watch) && mc->host->service_watch != NULL)
        mc->http_watch = mc->host->service_watch(mc->inst, PB_HTTP_SERVICE, PB_HTTP_SERVICE_VERSION,
                                                 on_http, mc);
    /* The store may be made later (by the imaging plugin or preboot-img): say so, but start. */
    g_autoptr(GError) e = NULL;
    g_autoptr(PbStore) st = pb_store_open(mc->set.store, FALSE, &e);
    mc->host->log(mc->inst, PB_LOG_CRITICAL,
                  "multicast sessions from %s%s%s%s; groups %s, port %u, %u Mbit/s",
                  mc->img != NULL ? "the imaging backend " : "",
                  mc->img != NULL ? mc->img->backend : mc->set.store,
                  mc->img == NULL && st == NULL ? " (not a store yet: " : "",
                  mc->img == NULL && st == NULL ? e->message : "", mc->set.range, mc->set.port,
                  mc->set.rate);
    return true;
}

static void *mcast_reload_prepare(void *self, const pb_config *cfg, pb_err *err)
{
    Mcast *mc = self;
    Settings *s = g_new0(Settings, 1);
    settings_load(mc->host, cfg, s);
    if (!settings_check(mc->host, cfg, s, err)) {
        settings_clear(s);
        g_free(s);
        return NULL;
    }
    return s;
}

/* New sessions take the new settings; running ones keep theirs. */
static void mcast_reload_commit(void *self, void *staged)
{
    Mcast *mc = self;
    settings_clear(&mc->set);
    mc->set = *(Settings *)staged;
    g_free(staged);
}

static void mcast_reload_abort(void *self, void *staged)
{
    settings_clear(staged);
    g_free(staged);
}

static void mcast_status(void *self, pb_status *st)
{
    Mcast *mc = self;
    guint running = 0;
    for (guint i = 0; i < mc->sessions->len; i++)
        if (!pb_mcast_sender_finished(((Session *)g_ptr_array_index(mc->sessions, i))->sender))
            running++;
    mc->host->status_kv(st, "sessions", "%u", mc->sessions->len);
    mc->host->status_kv(st, "running", "%u", running);
    mc->host->status_kv(st, "images", "%s", mc->img != NULL ? mc->img->backend : mc->set.store);
    mc->host->status_kv(st, "groups", "%s", mc->set.range);
    mc->host->status_kv(st, "records", "%s", mc->routed ? PB_MCAST_RECORD_PREFIX : "off");
}

static void mcast_stop(void *self)
{
    Mcast *mc = self;
    if (mc->img_watch != NULL)
        mc->host->service_unwatch(mc->img_watch);
    mc->img_watch = NULL;
    record_route_off(mc);
    if (mc->http_watch != NULL)
        mc->host->service_unwatch(mc->http_watch);
    mc->http_watch = NULL;
    mc->http = NULL;
    g_ptr_array_set_size(mc->sessions, 0); /* aborts and joins every sender */
    g_ptr_array_set_size(mc->recordings, 0);
    if (mc->logq != NULL)
        drain_tick(mc);
}

static void mcast_destroy(void *self)
{
    Mcast *mc = self;
    g_ptr_array_unref(mc->sessions);
    g_ptr_array_unref(mc->recordings);
    g_async_queue_unref(mc->logq);
    settings_clear(&mc->set);
    g_free(mc);
}

static const char *const provides[] = {PB_MCAST_SERVICE, NULL};
/* The imaging plugin, when configured, starts first (its backend holds the images) and
 * stops after us; so does http (the session records). */
static const char *const wants[] = {PB_IMAGING_SERVICE, PB_HTTP_SERVICE, NULL};

static const pb_plugin multicast_plugin = {
    PB_PLUGIN_HEADER,
    .name = "multicast",
    .version = PACKAGE_VERSION,
    .description = "multicast imaging sessions: one image to a room of receivers",
    PB_PARAMS(params),
    .wants = wants,
    .create = mcast_create,
    .start = mcast_start,
    .reload_prepare = mcast_reload_prepare,
    .reload_commit = mcast_reload_commit,
    .reload_abort = mcast_reload_abort,
    .status = mcast_status,
    .stop = mcast_stop,
    .destroy = mcast_destroy,
    .provides = provides,
};

PB_PLUGIN_DEFINE(multicast, multicast_plugin)
