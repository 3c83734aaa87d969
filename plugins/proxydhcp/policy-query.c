/* policy-query.c - the preboot policy protocol, the part a proxydhcp asks with. */
#include "policy-query.h"

#include <string.h>

enum {
    MSG_DECIDE = 1,
    MSG_DECIDE_COMMIT = 2,
    MSG_DECISION = 0x81,
    TLV_MAC = 1,
    TLV_UUID = 2,
    TLV_ARCH = 3,
    TLV_CLIENT_IP = 4,
    TLV_RELAY_IP = 5,
    TLV_USER_CLASS = 6,
    TLV_VENDOR_CLASS = 7,
    TLV_ACTION = 64,
    TLV_BOOT_FILE = 69,
    ACTION_IGNORE = 0,
};

typedef struct {
    guint8 *out;
    gsize cap, len;
} Buf;

static void put(Buf *b, guint8 t, const void *v, gsize len)
{
    len = MIN(len, 255);
    if (b->len + 2 + len > b->cap)
        return;
    b->out[b->len++] = t;
    b->out[b->len++] = (guint8)len;
    memcpy(b->out + b->len, v, len);
    b->len += len;
}

gsize pd_policy_query_encode(guint32 id, bool commit, const DhcpPacket *req, const PdClient *c,
                             guint8 *out, gsize cap)
{
    if (cap < 12)
        return 0;
    Buf b = {out, cap, 12};
    memcpy(out, "PBPL", 4);
    out[4] = 1;
    out[5] = commit ? MSG_DECIDE_COMMIT : MSG_DECIDE;
    out[6] = out[7] = 0;
    out[8] = (guint8)(id >> 24);
    out[9] = (guint8)(id >> 16);
    out[10] = (guint8)(id >> 8);
    out[11] = (guint8)id;
    if (req->hlen > 0)
        put(&b, TLV_MAC, req->chaddr, MIN(req->hlen, 16));
    gsize ulen;
    const guint8 *u = dhcp_packet_get(req, DHCP_OPT_CLIENT_UUID, &ulen);
    if (u != NULL && ulen == 17 && u[0] == 0)
        put(&b, TLV_UUID, u + 1, 16);
    if (c->arch >= 0) {
        guint8 a[2] = {(guint8)(c->arch >> 8), (guint8)c->arch};
        put(&b, TLV_ARCH, a, 2);
    }
    static const guint8 zero[4];
    if (memcmp(req->ciaddr, zero, 4) != 0)
        put(&b, TLV_CLIENT_IP, req->ciaddr, 4);
    if (memcmp(req->giaddr, zero, 4) != 0)
        put(&b, TLV_RELAY_IP, req->giaddr, 4);
    if (c->user_class[0])
        put(&b, TLV_USER_CLASS, c->user_class, strlen(c->user_class));
    if (c->vendor_class[0])
        put(&b, TLV_VENDOR_CLASS, c->vendor_class, strlen(c->vendor_class));
    return b.len;
}

bool pd_policy_reply_parse(const guint8 *data, gsize len, PdPolicyReply *out)
{
    memset(out, 0, sizeof *out);
    if (data == NULL || len < 12 || memcmp(data, "PBPL", 4) != 0 || data[4] != 1 ||
        data[5] != MSG_DECISION)
        return false;
    out->id = (guint32)data[8] << 24 | (guint32)data[9] << 16 | (guint32)data[10] << 8 | data[11];
    bool have_action = false;
    gsize off = 12;
    while (off < len) {
        if (len - off < 2)
            return false;
        guint8 t = data[off], l = data[off + 1];
        const guint8 *v = data + off + 2;
        if (len - off - 2 < l)
            return false;
        off += 2u + l;
        if (t == TLV_ACTION) {
            if (l != 1)
                return false;
            out->ignore = v[0] == ACTION_IGNORE;
            have_action = true;
        } else if (t == TLV_BOOT_FILE) {
            if (memchr(v, '\0', l) != NULL)
                return false;
            memcpy(out->boot_file, v, l);
            out->boot_file[l] = '\0';
        }
    }
    return have_action;
}
