/* policy-query.c - proxydhcp as a client of the preboot policy protocol: the wire format is
 * lib/proto's (policy-proto.h), shared with the engine that answers. */
#include "policy-query.h"

#include "policy-proto.h"

#include <string.h>

gsize pd_policy_query_encode(guint32 id, bool commit, const DhcpPacket *req, const PdClient *c,
                             guint8 *out, gsize cap)
{
    PolicyMsg m;
    policy_msg_init(&m);
    m.type = commit ? POLICY_MSG_DECIDE_COMMIT : POLICY_MSG_DECIDE;
    m.id = id;
    m.mac_len = MIN(req->hlen, sizeof m.mac);
    memcpy(m.mac, req->chaddr, m.mac_len);
    gsize ulen;
    const guint8 *u = dhcp_packet_get(req, DHCP_OPT_CLIENT_UUID, &ulen);
    /* RFC 4578 section 2.3: type 0, then the 16 bytes. */
    if (u != NULL && ulen == 17 && u[0] == 0) {
        m.has_uuid = TRUE;
        memcpy(m.uuid, u + 1, 16);
    }
    if (c->arch >= 0) {
        m.has_arch = TRUE;
        m.arch = (guint16)c->arch;
    }
    static const guint8 zero[4];
    if (memcmp(req->ciaddr, zero, 4) != 0) {
        m.client_ip.family = 4;
        memcpy(m.client_ip.addr, req->ciaddr, 4);
    }
    if (memcmp(req->giaddr, zero, 4) != 0) {
        m.relay_ip.family = 4;
        memcpy(m.relay_ip.addr, req->giaddr, 4);
    }
    /* Borrowed, not copied: m is not cleared, only dropped. */
    m.user_class = (char *)(c->user_class[0] ? c->user_class : NULL);
    m.vendor_class = (char *)(c->vendor_class[0] ? c->vendor_class : NULL);

    g_autoptr(GByteArray) b = g_byte_array_new();
    policy_msg_build(&m, b);
    if (b->len > cap)
        return 0;
    memcpy(out, b->data, b->len);
    return b->len;
}

bool pd_policy_reply_parse(const guint8 *data, gsize len, PdPolicyReply *out)
{
    memset(out, 0, sizeof *out);
    PolicyMsg m;
    bool ok = policy_msg_parse(data, len, &m) == POLICY_PARSE_OK && m.type == POLICY_MSG_DECISION &&
              m.has_action;
    if (ok) {
        out->id = m.id;
        out->ignore = m.decision.action == PB_POLICY_IGNORE;
        g_strlcpy(out->boot_file, m.decision.boot_file, sizeof out->boot_file);
    }
    policy_msg_clear(&m);
    return ok;
}
