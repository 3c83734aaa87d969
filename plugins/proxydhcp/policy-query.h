/* policy-query.h - the question proxydhcp asks a remote policy engine (NovellPolicyEngine)
 * when no policy plugin runs in this daemon, and the answer: the preboot policy protocol
 * v1 spoken by plugins/policy (doc/protocols.md): a 12-byte header "PBPL", version 1,
 * type, two zero bytes, a 32-bit id; then one-byte type, one-byte length TLVs. Only the
 * part proxydhcp needs is here, so the module does not link the policy plugin's code.
 * Pure: bytes out, bytes in. */
#pragma once

#include "proxydhcp-decide.h"

G_BEGIN_DECLS

#define PD_POLICY_PORT 4012 /* the protocol's default, beside 4011 */

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
