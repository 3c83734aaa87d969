/* policy-remote.h - PrebootServer: asking an imaging server for a device's work
 * (GET /imaging/v1/work, doc/imaging-api.md) without blocking the main loop, with a
 * deadline after which the local rules answer. A question runs on a small worker pool
 * (libcurl, blocking there); its answer, or the deadline, comes back to the main loop
 * (host->defer, a host timer), whichever is first. Answers are kept a short while per device
 * so the synchronous paths (the preboot.policy service, UDP) can use them too.
 * Built without libcurl (policy-remote-none.c) every question falls back at once. */
#pragma once

#include <glib.h>
#include <preboot/plugin.h>
#include <preboot/policy.h>

#include "policy-device.h"

G_BEGIN_DECLS

#define POLICY_REMOTE_PENDING_MAX    64   /* questions in flight; more fall back at once */
#define POLICY_REMOTE_CACHE_MAX      4096 /* devices whose answer is kept */
#define POLICY_REMOTE_CACHE_TTL_S    30
#define POLICY_REMOTE_NEGATIVE_TTL_S 5 /* "no answer in time" is kept this long */

typedef struct {
    gboolean answered; /* FALSE: no answer in time (or none possible): the rules decide */
    guint32 work;      /* pb_policy_work */
    char work_arg[PB_POLICY_TEXT_MAX];
    char work_id[128];
} PolicyRemoteAnswer;

typedef void (*PolicyRemoteFn)(void *data, const PolicyRemoteAnswer *a);
typedef struct PolicyRemote PolicyRemote;

/* server: "HOST[:PORT]" or "http://HOST[:PORT]" (port 8080 by default). NULL with an error
 * when it cannot be used (a bad address, no libcurl in this build). */
PolicyRemote *policy_remote_new(const pb_host *host, pb_instance *inst, const char *server,
                                guint timeout_ms, GError **error);
/* Answers every pending question as "no answer" (their callbacks run now), waits for the
 * questions being asked (each ends by its deadline) and frees. */
void policy_remote_free(PolicyRemote *r);
const char *policy_remote_server(const PolicyRemote *r);

/* Asks about dev; fn (may be NULL: only fills the cache) runs once on the main loop, with the
 * answer or, at the deadline, with answered FALSE. FALSE (fn is not called) when too many
 * questions are pending or dev has no MAC. */
gboolean policy_remote_ask(PolicyRemote *r, const PolicyDevice *dev, PolicyRemoteFn fn, void *data);
/* A recent outcome of asking about dev, without asking: TRUE when there is one (out->answered
 * then says whether the server answered or the rules decided). */
gboolean policy_remote_cached(PolicyRemote *r, const PolicyDevice *dev, PolicyRemoteAnswer *out);

/* Pure: the work call's JSON answer ({"action":"none|capture|restore|session|maintenance",
 * "image", "session", "work_id"}) as work; FALSE with an error for anything else. */
gboolean policy_remote_parse(const char *json, gsize len, PolicyRemoteAnswer *out, GError **error);
/* Puts an answer's work into a decision made by the rules (boot file and menu stay theirs). */
void policy_remote_apply(const PolicyRemoteAnswer *a, const char *server, pb_policy_decision *d);

G_END_DECLS
