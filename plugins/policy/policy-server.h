/* policy-server.h - the policy engine's side of the policy UDP protocol (the wire format is
 * lib/proto/policy-proto.h): the device a request describes, and the cache that makes
 * retransmitted requests idempotent. Pure code. */
#pragma once

#include "policy-device.h"
#include "policy-proto.h"

G_BEGIN_DECLS

/* The device a request describes. */
void policy_msg_to_device(const PolicyMsg *m, PolicyDevice *d);

/* Retransmitted requests get the same reply, without deciding (and committing) twice. */
typedef struct PolicyReplyCache PolicyReplyCache;
PolicyReplyCache *policy_reply_cache_new(guint max_entries, gint64 ttl_us);
void policy_reply_cache_free(PolicyReplyCache *c);
/* The cached reply for (peer, id, type), or NULL. peer is any text naming the sender. */
GBytes *policy_reply_cache_get(PolicyReplyCache *c, const char *peer, guint32 id, guint8 type,
                               gint64 now_us);
void policy_reply_cache_put(PolicyReplyCache *c, const char *peer, guint32 id, guint8 type,
                            GBytes *reply, gint64 now_us);
guint policy_reply_cache_size(PolicyReplyCache *c);

G_END_DECLS
