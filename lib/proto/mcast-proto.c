/* mcast-proto.c - parse and build the multicast imaging datagrams (mcast-proto.h). */
#include "mcast-proto.h"

#include <string.h>

/* ---- byte helpers ------------------------------------------------------------------- */

static guint16 get16(const guint8 *p)
{
    return (guint16)((p[0] << 8) | p[1]);
}
static guint32 get32(const guint8 *p)
{
    return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}
static guint64 get64(const guint8 *p)
{
    return ((guint64)get32(p) << 32) | get32(p + 4);
}
static void put16(guint8 *p, guint16 v)
{
    p[0] = (guint8)(v >> 8);
    p[1] = (guint8)v;
}
static void put32(guint8 *p, guint32 v)
{
    p[0] = (guint8)(v >> 24);
    p[1] = (guint8)(v >> 16);
    p[2] = (guint8)(v >> 8);
    p[3] = (guint8)v;
}
static void put64(guint8 *p, guint64 v)
{
    put32(p, (guint32)(v >> 32));
    put32(p + 4, (guint32)v);
}

gboolean mcast_name_valid(const char *name, gsize len)
{
    if (len == 0 || len > MCAST_NAME_MAX || name[0] == '.')
        return FALSE;
    for (gsize i = 0; i < len; i++)
        if (!g_ascii_isalnum(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
            return FALSE;
    return TRUE;
}

gboolean mcast_label_valid(const char *label, gsize len)
{
    if (len > MCAST_CLIENT_MAX)
        return FALSE;
    for (gsize i = 0; i < len; i++)
        if (label[i] < 0x20 || label[i] > 0x7e)
            return FALSE;
    return TRUE;
}

const char *mcast_parse_result_text(McastParseResult r)
{
    switch (r) {
    case MCAST_PARSE_OK:
        return "ok";
    case MCAST_PARSE_NOT_OURS:
        return "not a preboot multicast datagram";
    case MCAST_PARSE_VERSION:
        return "unsupported protocol version";
    case MCAST_PARSE_BAD_TYPE:
        return "unknown message type";
    case MCAST_PARSE_TRUNCATED:
        return "truncated message";
    case MCAST_PARSE_BAD_VALUE:
        return "malformed field";
    }
    return "?";
}

const char *mcast_state_name(guint8 state)
{
    switch (state) {
    case MCAST_STATE_WAITING:
        return "waiting";
    case MCAST_STATE_SENDING:
        return "sending";
    case MCAST_STATE_DONE:
        return "done";
    case MCAST_STATE_ABORTED:
        return "aborted";
    }
    return "?";
}

const char *mcast_rx_state_name(guint8 state)
{
    switch (state) {
    case MCAST_RX_JOINING:
        return "joining";
    case MCAST_RX_RECEIVING:
        return "receiving";
    case MCAST_RX_DONE:
        return "done";
    case MCAST_RX_FAILED:
        return "failed";
    case MCAST_RX_LEAVING:
        return "leaving";
    case MCAST_RX_UNICAST:
        return "unicast";
    }
    return "?";
}

/* ---- layouts (offsets after the 16-byte common header) ------------------------------- */

/* ANNOUNCE: seal 32, state 1, pad 1, ctl_port 2, group 4, data_port 2, frag_size 2,
 * pass 4, n_objects 4, manifest_len 4, rate_kbit 4, clients 2, expected 2,
 * name_len 1, image_len 1, name, image. */
#define ANN_FIXED 66
/* STATUS: client_id 8, state 1, label_len 1, pad 2, have 4, total 4, bytes_written 8,
 * rx_frags 8, nack_frags 8, label. */
#define STATUS_FIXED 44
/* NACK: client_id 8, object 4, hash 32, n_ranges 2, pad 2, ranges (first 4, count 4). */
#define NACK_FIXED 48
/* DIRECT: client_id 8, action 1, zero 3 */
#define DIRECT_FIXED 12

static gboolean parse_name(const guint8 *p, gsize n, char *out)
{
    if (!mcast_name_valid((const char *)p, n))
        return FALSE;
    memcpy(out, p, n);
    out[n] = '\0';
    return TRUE;
}

McastParseResult mcast_msg_parse(const guint8 *buf, gsize len, McastMsg *m)
{
    memset(m, 0, sizeof(*m));
    if (len < MCAST_HEADER_LEN || memcmp(buf, MCAST_PROTO_MAGIC, 4) != 0)
        return MCAST_PARSE_NOT_OURS;
    if (buf[4] != MCAST_PROTO_VERSION)
        return MCAST_PARSE_VERSION;
    m->type = buf[5];
    /* buf[6..7]: flags, none defined; ignored so later versions may add some */
    m->session_id = get64(buf + 8);
    const guint8 *p = buf + MCAST_HEADER_LEN;
    gsize n = len - MCAST_HEADER_LEN;
    switch (m->type) {
    case MCAST_MSG_ANNOUNCE: {
        McastAnnounce *a = &m->u.announce;
        if (n < ANN_FIXED)
            return MCAST_PARSE_TRUNCATED;
        memcpy(a->seal, p, 32);
        a->state = p[32];
        a->ctl_port = get16(p + 34);
        a->group = get32(p + 36);
        a->data_port = get16(p + 40);
        a->frag_size = get16(p + 42);
        a->pass = get32(p + 44);
        a->n_objects = get32(p + 48);
        a->manifest_len = get32(p + 52);
        a->rate_kbit = get32(p + 56);
        a->clients = get16(p + 60);
        a->expected = get16(p + 62);
        guint nl = p[64], il = p[65];
        if (n < (gsize)ANN_FIXED + nl + il)
            return MCAST_PARSE_TRUNCATED;
        if (a->state < MCAST_STATE_WAITING || a->state > MCAST_STATE_ABORTED || a->ctl_port == 0 ||
            a->data_port == 0 || a->frag_size == 0 || a->frag_size > MCAST_FRAG_MAX ||
            (a->group >> 28) != 0xe || a->n_objects == 0 || a->manifest_len == 0 ||
            !parse_name(p + ANN_FIXED, nl, a->name) ||
            !parse_name(p + ANN_FIXED + nl, il, a->image))
            return MCAST_PARSE_BAD_VALUE;
        return MCAST_PARSE_OK;
    }
    case MCAST_MSG_DATA: {
        McastData *d = &m->u.data;
        if (len < MCAST_DATA_HEADER)
            return MCAST_PARSE_TRUNCATED;
        memcpy(d->image_id, p, 8);
        d->object = get32(p + 8);
        d->object_len = get32(p + 12);
        d->offset = get32(p + 16);
        d->codec = p[20];
        d->kind = p[21];
        memcpy(d->hash, p + 24, 32);
        d->payload = buf + MCAST_DATA_HEADER;
        d->payload_len = (guint16)MIN(len - MCAST_DATA_HEADER, G_MAXUINT16);
        if (len - MCAST_DATA_HEADER > MCAST_FRAG_MAX || d->payload_len == 0 ||
            d->kind > MCAST_OBJ_CHUNK || d->object_len == 0 || d->offset >= d->object_len ||
            d->payload_len > d->object_len - d->offset ||
            (d->kind == MCAST_OBJ_MANIFEST) != (d->object == 0))
            return MCAST_PARSE_BAD_VALUE;
        return MCAST_PARSE_OK;
    }
    case MCAST_MSG_STATUS: {
        McastStatus *s = &m->u.status;
        if (n < STATUS_FIXED)
            return MCAST_PARSE_TRUNCATED;
        s->client_id = get64(p);
        s->state = p[8];
        guint ll = p[9];
        s->have = get32(p + 12);
        s->total = get32(p + 16);
        s->bytes_written = get64(p + 20);
        s->rx_frags = get64(p + 28);
        s->nack_frags = get64(p + 36);
        if (n < (gsize)STATUS_FIXED + ll)
            return MCAST_PARSE_TRUNCATED;
        if (s->state < MCAST_RX_JOINING || s->state > MCAST_RX_UNICAST || s->have > s->total ||
            !mcast_label_valid((const char *)p + STATUS_FIXED, ll))
            return MCAST_PARSE_BAD_VALUE;
        memcpy(s->label, p + STATUS_FIXED, ll);
        s->label[ll] = '\0';
        return MCAST_PARSE_OK;
    }
    case MCAST_MSG_NACK: {
        McastNack *k = &m->u.nack;
        if (n < NACK_FIXED)
            return MCAST_PARSE_TRUNCATED;
        k->client_id = get64(p);
        k->object = get32(p + 8);
        memcpy(k->hash, p + 12, 32);
        k->n_ranges = get16(p + 44);
        if (k->n_ranges == 0 || k->n_ranges > MCAST_NACK_RANGES)
            return MCAST_PARSE_BAD_VALUE;
        if (n < (gsize)NACK_FIXED + 8u * k->n_ranges)
            return MCAST_PARSE_TRUNCATED;
        for (guint i = 0; i < k->n_ranges; i++) {
            k->ranges[i].first = get32(p + NACK_FIXED + 8 * i);
            k->ranges[i].count = get32(p + NACK_FIXED + 8 * i + 4);
            if (k->ranges[i].count == 0 || k->ranges[i].first > G_MAXUINT32 - k->ranges[i].count)
                return MCAST_PARSE_BAD_VALUE;
        }
        return MCAST_PARSE_OK;
    }
    case MCAST_MSG_DIRECT: {
        McastDirect *d = &m->u.direct;
        if (n < DIRECT_FIXED)
            return MCAST_PARSE_TRUNCATED;
        d->client_id = get64(p);
        d->action = p[8];
        if (d->action != MCAST_DIRECT_UNICAST)
            return MCAST_PARSE_BAD_VALUE;
        return MCAST_PARSE_OK;
    }
    default:
        return MCAST_PARSE_BAD_TYPE;
    }
}

static void put_header(guint8 *h, guint8 type, guint64 session_id)
{
    memcpy(h, MCAST_PROTO_MAGIC, 4);
    h[4] = MCAST_PROTO_VERSION;
    h[5] = type;
    h[6] = h[7] = 0;
    put64(h + 8, session_id);
}

void mcast_data_header(guint64 session_id, const McastData *d, guint8 out[MCAST_DATA_HEADER])
{
    put_header(out, MCAST_MSG_DATA, session_id);
    guint8 *p = out + MCAST_HEADER_LEN;
    memcpy(p, d->image_id, 8);
    put32(p + 8, d->object);
    put32(p + 12, d->object_len);
    put32(p + 16, d->offset);
    p[20] = d->codec;
    p[21] = d->kind;
    p[22] = p[23] = 0;
    memcpy(p + 24, d->hash, 32);
}

gboolean mcast_msg_build(const McastMsg *m, GByteArray *out)
{
    guint8 b[MCAST_DATAGRAM_MAX];
    gsize n = 0;
    put_header(b, m->type, m->session_id);
    guint8 *p = b + MCAST_HEADER_LEN;
    switch (m->type) {
    case MCAST_MSG_ANNOUNCE: {
        const McastAnnounce *a = &m->u.announce;
        gsize nl = strlen(a->name), il = strlen(a->image);
        if (!mcast_name_valid(a->name, nl) || !mcast_name_valid(a->image, il))
            return FALSE;
        memcpy(p, a->seal, 32);
        p[32] = a->state;
        p[33] = 0;
        put16(p + 34, a->ctl_port);
        put32(p + 36, a->group);
        put16(p + 40, a->data_port);
        put16(p + 42, a->frag_size);
        put32(p + 44, a->pass);
        put32(p + 48, a->n_objects);
        put32(p + 52, a->manifest_len);
        put32(p + 56, a->rate_kbit);
        put16(p + 60, a->clients);
        put16(p + 62, a->expected);
        p[64] = (guint8)nl;
        p[65] = (guint8)il;
        memcpy(p + ANN_FIXED, a->name, nl);
        memcpy(p + ANN_FIXED + nl, a->image, il);
        n = MCAST_HEADER_LEN + ANN_FIXED + nl + il;
        break;
    }
    case MCAST_MSG_DATA: {
        const McastData *d = &m->u.data;
        if (d->payload_len == 0 || d->payload_len > MCAST_FRAG_MAX)
            return FALSE;
        mcast_data_header(m->session_id, d, b);
        memcpy(b + MCAST_DATA_HEADER, d->payload, d->payload_len);
        n = MCAST_DATA_HEADER + d->payload_len;
        break;
    }
    case MCAST_MSG_STATUS: {
        const McastStatus *s = &m->u.status;
        gsize ll = strlen(s->label);
        if (!mcast_label_valid(s->label, ll))
            return FALSE;
        put64(p, s->client_id);
        p[8] = s->state;
        p[9] = (guint8)ll;
        p[10] = p[11] = 0;
        put32(p + 12, s->have);
        put32(p + 16, s->total);
        put64(p + 20, s->bytes_written);
        put64(p + 28, s->rx_frags);
        put64(p + 36, s->nack_frags);
        memcpy(p + STATUS_FIXED, s->label, ll);
        n = MCAST_HEADER_LEN + STATUS_FIXED + ll;
        break;
    }
    case MCAST_MSG_NACK: {
        const McastNack *k = &m->u.nack;
        if (k->n_ranges == 0 || k->n_ranges > MCAST_NACK_RANGES)
            return FALSE;
        put64(p, k->client_id);
        put32(p + 8, k->object);
        memcpy(p + 12, k->hash, 32);
        put16(p + 44, k->n_ranges);
        p[46] = p[47] = 0;
        for (guint i = 0; i < k->n_ranges; i++) {
            put32(p + NACK_FIXED + 8 * i, k->ranges[i].first);
            put32(p + NACK_FIXED + 8 * i + 4, k->ranges[i].count);
        }
        n = MCAST_HEADER_LEN + NACK_FIXED + 8u * k->n_ranges;
        break;
    }
    case MCAST_MSG_DIRECT: {
        const McastDirect *d = &m->u.direct;
        if (d->action != MCAST_DIRECT_UNICAST)
            return FALSE;
        put64(p, d->client_id);
        p[8] = d->action;
        p[9] = p[10] = p[11] = 0;
        n = MCAST_HEADER_LEN + DIRECT_FIXED;
        break;
    }
    default:
        return FALSE;
    }
    g_byte_array_append(out, b, (guint)n);
    return TRUE;
}

/* ---- group addresses ---------------------------------------------------------------- */

gboolean mcast_range_parse(const char *text, guint32 *base, guint *prefix)
{
    if (text == NULL)
        return FALSE;
    const char *slash = strchr(text, '/');
    if (slash == NULL)
        return FALSE;
    guint a[4];
    char *end;
    const char *s = text;
    for (int i = 0; i < 4; i++) {
        if (!g_ascii_isdigit(*s))
            return FALSE;
        guint64 v = g_ascii_strtoull(s, &end, 10);
        if (v > 255 || end - s > 3)
            return FALSE;
        a[i] = (guint)v;
        s = end;
        if (i < 3) {
            if (*s != '.')
                return FALSE;
            s++;
        }
    }
    if (s != slash || !g_ascii_isdigit(slash[1]))
        return FALSE;
    guint64 pl = g_ascii_strtoull(slash + 1, &end, 10);
    if (*end != '\0' || end - (slash + 1) > 2 || pl < 8 || pl > 30)
        return FALSE;
    guint32 addr = (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3];
    guint32 mask = 0xffffffffu << (32 - pl);
    if ((addr >> 28) != 0xe || (pl < 4))
        return FALSE;
    *base = addr & mask;
    *prefix = (guint)pl;
    return ((*base) >> 28) == 0xe;
}

guint32 mcast_group_for(const char *name, guint32 base, guint prefix, McastTakenFunc taken,
                        void *data)
{
    if (prefix < 8 || prefix > 30 || (base >> 28) != 0xe)
        return 0;
    guint32 size = 1u << (32 - prefix);
    base &= ~(size - 1);
    /* FNV-1a: stable across builds and platforms, so every server computes the same
     * address for a name (the first choice; probing decides only on a collision). */
    guint32 h = 2166136261u;
    for (const char *c = name; *c != '\0'; c++) {
        h ^= (guint8)*c;
        h *= 16777619u;
    }
    /* Offset 0 is the announcement group; the last offset stays free too, since some
     * stacks treat an all-ones host part specially. */
    guint32 usable = size - 2;
    for (guint32 i = 0; i < usable; i++) {
        guint32 addr = base + 1 + (h + i) % usable;
        if (taken == NULL || !taken(addr, data))
            return addr;
    }
    return 0;
}
