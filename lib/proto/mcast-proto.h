/* mcast-proto.h - the multicast imaging protocol (doc/multicast.md): session announcements
 * and chunk fragments from the sender to a group, status and repair requests (NACKs) from
 * each receiver back to the sender. The one definition of the wire format, used by the
 * sender (lib/mcast, plugins/multicast), the receiver (preboot-img session) and the tests.
 * Pure: bytes in, message out; message in, bytes out. Every datagram names its session
 * (a random 64-bit id per run of a session) and, for data, the image (the first bytes of
 * its manifest seal) and the chunk's full hash, so no datagram can be taken for another
 * session's or another chunk's; the receiver still checks every chunk against its hash
 * before it writes a byte. Big-endian throughout. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MCAST_PROTO_MAGIC   "PBMC"
#define MCAST_PROTO_VERSION 1
#define MCAST_HEADER_LEN    16 /* magic, version, type, flags, session id */
#define MCAST_HASH_LEN      32
#define MCAST_DATA_HEADER   72
/* Payload of one data datagram: 72 + 1400 = 1472 bytes of UDP payload, which fills an
 * Ethernet frame of 1500 bytes exactly and never fragments. */
#define MCAST_FRAG_MAX     1400
#define MCAST_NAME_MAX     128 /* session and image names (PB_NAME_MAX) */
#define MCAST_CLIENT_MAX   64  /* a receiver's label */
#define MCAST_NACK_RANGES  128 /* fragment ranges in one NACK */
#define MCAST_DATAGRAM_MAX 1472

typedef enum {
    MCAST_MSG_ANNOUNCE = 1, /* sender -> group: a session, its image and state */
    MCAST_MSG_DATA = 2,     /* sender -> group: one fragment of the manifest or of a chunk */
    MCAST_MSG_STATUS = 3,   /* receiver -> sender: join, progress, done, failed */
    MCAST_MSG_NACK = 4,     /* receiver -> sender: fragments of an object it lacks */
    MCAST_MSG_DIRECT = 5,   /* sender -> one receiver (unicast): do this (McastDirectAction) */
} McastMsgType;

typedef enum {
    MCAST_STATE_WAITING = 1, /* collecting receivers */
    MCAST_STATE_SENDING = 2,
    MCAST_STATE_DONE = 3, /* every receiver that kept up finished */
    MCAST_STATE_ABORTED = 4,
} McastSessionState;

typedef enum {
    MCAST_RX_JOINING = 1, /* has not got the manifest yet */
    MCAST_RX_RECEIVING = 2,
    MCAST_RX_DONE = 3,
    MCAST_RX_FAILED = 4,
    MCAST_RX_LEAVING = 5, /* gave up (interrupted); drop me now */
    MCAST_RX_UNICAST = 6, /* finishing by unicast from the imaging server: do not wait for me */
} McastRxState;

typedef enum {
    MCAST_OBJ_MANIFEST = 0, /* the manifest text; its hash is the manifest's seal */
    MCAST_OBJ_CHUNK = 1,    /* stored (coded) bytes of a chunk; hash = SHA-256 of the raw bytes */
} McastObjKind;

typedef enum {
    MCAST_PARSE_OK = 0,
    MCAST_PARSE_NOT_OURS,  /* too short for a header or wrong magic: drop silently */
    MCAST_PARSE_VERSION,   /* a version we do not speak */
    MCAST_PARSE_BAD_TYPE,  /* unknown message type */
    MCAST_PARSE_TRUNCATED, /* shorter than its type needs */
    MCAST_PARSE_BAD_VALUE, /* a field out of its range, or a name that is not a name */
} McastParseResult;

typedef struct {
    guint8 seal[MCAST_HASH_LEN]; /* the manifest's seal: names the image */
    guint8 state;                /* McastSessionState */
    guint16 ctl_port;            /* where STATUS and NACK go (at the announcer's address) */
    guint32 group;               /* the session's IPv4 group, network order */
    guint16 data_port;
    guint32 pass;      /* carousel pass, 1-based; 0 while waiting */
    guint32 n_objects; /* manifest + distinct DATA chunks */
    guint32 manifest_len;
    guint16 frag_size; /* payload bytes per data datagram (the last of an object may be less) */
    guint32 rate_kbit; /* the sender's rate */
    guint16 clients, expected;
    char name[MCAST_NAME_MAX + 1];
    char image[MCAST_NAME_MAX + 1];
} McastAnnounce;

typedef struct {
    guint8 image_id[8]; /* first 8 bytes of the seal */
    guint32 object;     /* index in the sender's object list: 0 = manifest */
    guint32 object_len; /* stored bytes of the whole object */
    guint32 offset;     /* of this fragment in the object */
    guint8 codec;       /* PbCodec of a chunk's stored bytes */
    guint8 kind;        /* McastObjKind */
    guint8 hash[MCAST_HASH_LEN];
    const guint8 *payload; /* points into the parsed buffer */
    guint16 payload_len;
} McastData;

typedef struct {
    guint64 client_id;   /* random per receiver run */
    guint8 state;        /* McastRxState */
    guint32 have, total; /* distinct chunks held and wanted */
    guint64 bytes_written;
    guint64 rx_frags, nack_frags; /* fragments received, fragments asked for again */
    char label[MCAST_CLIENT_MAX + 1];
} McastStatus;

typedef struct {
    guint32 first, count;
} McastRange;

typedef struct {
    guint64 client_id;
    guint32 object;
    guint8 hash[MCAST_HASH_LEN];
    guint16 n_ranges;
    McastRange ranges[MCAST_NACK_RANGES]; /* fragment indexes, each range non-empty */
} McastNack;

typedef enum {
    MCAST_DIRECT_UNICAST = 1, /* finish by unicast now (a slow receiver, slow_policy unicast) */
} McastDirectAction;

typedef struct {
    guint64 client_id; /* the receiver it is meant for */
    guint8 action;     /* McastDirectAction */
} McastDirect;

typedef struct {
    guint8 type; /* McastMsgType */
    guint64 session_id;
    union {
        McastAnnounce announce;
        McastData data;
        McastStatus status;
        McastNack nack;
        McastDirect direct;
    } u;
} McastMsg;

/* Parses one datagram. For DATA, m->u.data.payload points into buf. Pure. */
McastParseResult mcast_msg_parse(const guint8 *buf, gsize len, McastMsg *m);
const char *mcast_parse_result_text(McastParseResult r);
/* Appends the datagram for m to out; for DATA the payload is copied after the header.
 * Returns FALSE (out unchanged) when m cannot be built (names too long or not valid,
 * too many ranges, payload over MCAST_FRAG_MAX). */
gboolean mcast_msg_build(const McastMsg *m, GByteArray *out);
/* Writes only the DATA header (MCAST_DATA_HEADER bytes) for a payload the caller places
 * right after it: the sender lays out many datagrams in one buffer without copies. */
void mcast_data_header(guint64 session_id, const McastData *d, guint8 out[MCAST_DATA_HEADER]);
/* Session and image names: [A-Za-z0-9._-], 1..MCAST_NAME_MAX bytes, not starting with '.'. */
gboolean mcast_name_valid(const char *name, gsize len);
/* Labels: printable ASCII, at most MCAST_CLIENT_MAX bytes. */
gboolean mcast_label_valid(const char *label, gsize len);
const char *mcast_state_name(guint8 state);
const char *mcast_rx_state_name(guint8 state);

/* Group addresses: a session name maps to an IPv4 class-D address inside a range
 * base/prefix (host order), by a hash of the name, probing onwards past addresses in use
 * (taken(addr, data) TRUE) and past the range's first address (the announcement group that
 * every session is announced on). Returns the address in host order, or 0 when the range
 * is full or not a multicast range. Pure but for taken(). */
typedef gboolean (*McastTakenFunc)(guint32 addr, void *data);
guint32 mcast_group_for(const char *name, guint32 base, guint prefix, McastTakenFunc taken,
                        void *data);
/* "239.192.160.0/24" -> base (host order) and prefix; TRUE only for a class-D range with
 * at least 4 addresses (prefix 8..30). */
gboolean mcast_range_parse(const char *text, guint32 *base, guint *prefix);

G_END_DECLS
