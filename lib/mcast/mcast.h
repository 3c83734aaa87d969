/* mcast.h - multicast imaging sessions (doc/multicast.md): a sender that carousels one
 * image's manifest and distinct chunks to a group, repairing what receivers ask for
 * (NACKs) while they keep up, and a receiver that restores them onto a disk in whatever
 * order they come, checking each chunk against its hash before writing it. The wire format
 * is lib/proto/mcast-proto.h. Linux only for now (it needs lib/image). */
#pragma once

#include "image-engine.h"
#include "mcast-proto.h"
#include "mcast-record.h"

G_BEGIN_DECLS

#define PB_MCAST_ERROR (pb_mcast_error_quark())
GQuark pb_mcast_error_quark(void);
typedef enum {
    PB_MCAST_ERROR_FAILED,
    PB_MCAST_ERROR_TIMEOUT,   /* no sender, or the sender went silent */
    PB_MCAST_ERROR_ENDED,     /* the session finished or was aborted without us */
    PB_MCAST_ERROR_NO_CLIENT, /* nobody joined in time */
    PB_MCAST_ERROR_UNKNOWN,   /* the server knows no session of that name */
} PbMcastError;

#define PB_MCAST_DATA_PORT     8092
#define PB_MCAST_RANGE_DEFAULT "239.192.160.0/24"
#define PB_MCAST_RATE_DEFAULT  400 /* Mbit/s */
#define PB_MCAST_PARTIAL_MAX   (256u * 1024u * 1024u)

/* Called from the sender's own thread; a plugin hops to its main loop itself. */
typedef void (*PbMcastLogFunc)(int level, const char *msg, void *data);

typedef enum {
    PB_MCAST_SLOW_WAIT = 0,    /* later passes, then at its own rate once the others are done */
    PB_MCAST_SLOW_UNICAST = 1, /* told to finish by unicast from the imaging server at once */
} PbMcastSlowPolicy;

typedef struct {
    const char *name;       /* session name */
    const char *image;      /* image name, for announcements */
    guint32 group;          /* session group, host order */
    guint32 announce_group; /* every session is announced here too (host order) */
    guint16 data_port;
    guint16 ctl_port;   /* 0: ephemeral */
    const char *bind;   /* local address to send from (and receive control on); NULL any */
    guint rate_mbit;    /* sending rate */
    guint expected;     /* start when this many joined (0: no count) */
    guint first_join_s; /* give up when nobody joined in this time (0: wait forever) */
    guint later_join_s; /* start this long after the last join (0: wait for count or go) */
    guint drop_s;       /* drop a receiver silent this long */
    guint max_clients;  /* receivers admitted */
    guint max_passes;   /* carousel passes before giving up on the stragglers */
    guint slow_percent; /* a receiver asking for more than this share again is slow */
    guint8 slow_policy; /* PbMcastSlowPolicy: what a slow receiver gets */
    guint ttl;
    PbMcastLogFunc log;
    void *log_data;
} PbMcastSendOptions;
void pb_mcast_send_options_init(PbMcastSendOptions *o);

typedef struct {
    guint64 id;
    char label[MCAST_CLIENT_MAX + 1];
    char addr[64];
    guint8 state; /* McastRxState */
    gboolean slow, dropped;
    gboolean unicast; /* finishing by unicast (told to, or on its own): not waited for */
    guint32 have, total;
    guint64 bytes_written, rx_frags, nack_frags;
    gint64 joined_us, last_us; /* monotonic */
} PbMcastClientInfo;

typedef struct {
    guint8 state; /* McastSessionState */
    guint32 pass, n_objects;
    guint expected, clients_live, clients_done, clients_dropped, clients_slow, clients_unicast;
    guint64 bytes_sent, datagrams_sent, repair_frags, nacks_received, nacks_ignored;
    guint64 object_bytes; /* stored bytes of one pass */
    gint64 started_us, sending_us, finished_us;
    double rate_mbit; /* averaged over the sending time */
    GArray *clients;  /* PbMcastClientInfo */
} PbMcastSendStats;
void pb_mcast_send_stats_clear(PbMcastSendStats *st);

typedef struct PbMcastSender PbMcastSender;
/* Takes the manifest; io gives the chunks (a local store's, or later the imaging
 * backend's). Opens the sockets; sends nothing before run/start. */
PbMcastSender *pb_mcast_sender_new(PbManifest *m, PbChunkIO *io, const PbMcastSendOptions *o,
                                   GError **error);
/* Runs the session in the calling thread until done, aborted or failed. */
gboolean pb_mcast_sender_run(PbMcastSender *s, GError **error);
/* Runs it in a thread of its own. */
void pb_mcast_sender_start(PbMcastSender *s);
gboolean pb_mcast_sender_finished(PbMcastSender *s);
/* Thread-safe controls: start now, change the count, abort. */
void pb_mcast_sender_go(PbMcastSender *s);
void pb_mcast_sender_set_expected(PbMcastSender *s, guint n);
void pb_mcast_sender_abort(PbMcastSender *s);
guint16 pb_mcast_sender_ctl_port(PbMcastSender *s);
/* A snapshot; clear with pb_mcast_send_stats_clear. */
void pb_mcast_sender_stats(PbMcastSender *s, PbMcastSendStats *st);
/* One session's state for `prebootctl mcast status`: a text block, or one JSON object
 * (--json) with the same fields. */
void pb_mcast_stats_format(const char *name, const char *image, guint32 group,
                           const PbMcastSendStats *st, gboolean json, GString *out);
/* Aborts a running session, waits for its thread, frees. */
void pb_mcast_sender_free(PbMcastSender *s);

/* What PbMcastRecvOptions.lookup found. */
typedef enum {
    PB_MCAST_LOOKUP_FOUND = 0,   /* the record is filled in */
    PB_MCAST_LOOKUP_UNKNOWN = 1, /* the server has no session of that name */
    PB_MCAST_LOOKUP_FAILED = 2,  /* it could not be asked (error set) */
} PbMcastLookup;

typedef struct {
    const char *session;    /* name to join */
    guint32 announce_group; /* host order; 0: the default range's first address */
    guint16 data_port;
    const char *server;   /* accept announcements only from this address (NULL: any) */
    const char *label;    /* shown in the server's status (hostname...) */
    gboolean delta;       /* keep chunks the target already holds */
    guint64 max_partial;  /* bytes of half-received chunks held (0: PB_MCAST_PARTIAL_MAX) */
    guint wait_s;         /* for the announcement, and for a silent sender */
    PbStore *store;       /* not NULL: store the image here (target unused), keeping the
                           * chunks the store has: how the server records a master's disk */
    const char *store_as; /* its name there (NULL: the announced image name) */
    /* Instead of store: the image goes to whatever these give (the imaging plugin's
     * backend): has (chunks kept), put (a checked chunk's coded bytes), commit (the
     * manifest, at the end). All three or none. */
    gboolean (*sink_has)(void *data, const guint8 hash[PB_HASH_LEN]);
    gboolean (*sink_put)(void *data, const guint8 hash[PB_HASH_LEN], PbCodec codec, guint32 length,
                         const void *bytes, gsize len, GError **error);
    gboolean (*sink_commit)(void *data, const char *name, const PbManifest *m, GError **error);
    void *sink_data;
    /* Unicast fallback (the imaging server's chunks, pb_http_chunk_io): what the session
     * does not bring - it ended or dropped us, the sender told us to go (a slow receiver,
     * slow_policy unicast), or nothing came for fallback_after_s - is fetched from here,
     * checked against its hash like any chunk, and written. NULL: none (the receiver
     * fails with the count it lacks). */
    PbChunkIO *fallback;
    /* The manifest of the announced image from the same server, when the session ended
     * before ours came (its seal must be the announced one). May be NULL. */
    PbManifest *(*fallback_manifest)(void *data, const char *image, GError **error);
    void *fallback_data;
    guint fallback_after_s; /* 0: 5 s */
    /* A receiver started after its session ended hears no announcement: the server's
     * record of the session (GET PB_MCAST_RECORD_PREFIX NAME, the multicast plugin's)
     * names the image it sent. Asked once nothing was announced for fallback_after_s, and
     * again every fallback_after_s until wait_s is over. For a session that ended, the
     * receiver restores that image by unicast (fallback and fallback_manifest; the manifest
     * must bear the record's seal), or, without them, fails at once with
     * PB_MCAST_ERROR_ENDED, st->late set and st->image and st->seal naming the image. A
     * server that knows no session of that name (PB_MCAST_LOOKUP_UNKNOWN) ends the wait at
     * once with PB_MCAST_ERROR_UNKNOWN; a running session's record, or a server that
     * cannot be asked, only makes the final error clearer. Returns a PbMcastLookup. NULL:
     * never asked. */
    int (*lookup)(void *data, const char *session, PbMcastRecord *rec, GError **error);
    void *lookup_data;
    const char *lookup_where; /* the server asked, for messages ("http://10.0.0.1:8080") */
    gint *cancel;             /* not NULL: give up soon after it becomes non-zero (atomic) */
    PbProgressFunc progress;
    void *progress_data;
} PbMcastRecvOptions;

typedef struct {
    guint64 bytes_total, bytes_written;
    guint chunks_total, chunks_received, chunks_same, chunks_bad;
    guint64 rx_frags, dup_frags, nack_frags, foreign_datagrams;
    guint32 passes_seen;
    guint chunks_fallback; /* fetched by unicast (fallback) */
    char fallback_why[64]; /* why the fallback ran: "session ended", "told by the sender"... */
    char image[MCAST_NAME_MAX + 1];
    gboolean late;            /* started after the session ended: image and seal from its record */
    guint8 seal[PB_HASH_LEN]; /* the image's seal, when late */
} PbMcastRecvStats;

gboolean pb_mcast_receive(const char *target, const PbMcastRecvOptions *o, PbMcastRecvStats *st,
                          GError **error);

G_END_DECLS
