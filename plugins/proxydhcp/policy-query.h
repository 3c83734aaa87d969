/* policy-query.h - the question proxydhcp asks a remote policy engine (NovellPolicyEngine)
 * when no policy plugin runs in this daemon, and the answer, in the preboot policy protocol
 * spoken by plugins/policy (doc/protocols.md). The wire format has one home,
 * lib/proto/policy-proto.h; this is proxydhcp's use of it: a request from a parsed DHCP
 * packet, and the two things a DECISION tells proxydhcp. Pure: bytes out, bytes in. */
#pragma once

#include "proxydhcp-decide.h"

G_BEGIN_DECLS

/* The request for a client: DECIDE, or DECIDE_COMMIT when we act on the answer. Writes at
 * most cap bytes into out and returns the length. */
gsize pd_policy_query_encode(guint32 id, bool commit, const DhcpPacket *req, const PdClient *c,
                             guint8 *out, gsize cap);

typedef struct {
    guint32 id;
    bool ignore;
    char boot_file[256]; /* "" = no opinion */
} PdPolicyReply;

/* Parses a DECISION; false for anything else (an ERROR, a wrong version, truncation). */
bool pd_policy_reply_parse(const guint8 *data, gsize len, PdPolicyReply *out);

G_END_DECLS
