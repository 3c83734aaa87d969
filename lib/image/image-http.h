/* image-http.h - the imaging server's HTTP API (preboot-imaging(8), doc/imaging-api.md) as
 * a PbChunkIO, so capture and restore run over the network with the engine they use on a
 * local store; plus the catalog, manifest, work and result calls preboot-img needs.
 *
 * Built on libcurl: keep-alive, HTTP/1.1 framing, redirects, TLS and timeouts are a
 * protocol library's job, not ours. Every call is safe from several threads at once: each
 * request borrows an easy handle (and its open connection) from a small pool.
 *
 * Resume: connection errors and 5xx answers (507 excepted) are retried with backoff for a
 * bounded time; a chunk upload that failed is re-sent only if the server says it still lacks
 * it; chunks learnt present are never sent, chunks fetched are never fetched again by the
 * same call. */
#pragma once

#include "image-json.h"
#include "image-store.h"

G_BEGIN_DECLS

#define PB_HTTP_DEFAULT_PORT  8080
#define PB_HTTP_PREFIX        "/imaging/v1"
#define PB_HTTP_MISSING_BATCH 65536 /* lines per chunks/missing request (the API's limit) */
#define PB_HTTP_MAX_REDIRS    5
#define PB_HTTP_INFLIGHT_MAX  8 /* requests at once: the server's default per-address limit */

typedef struct PbHttp PbHttp;

typedef struct {
    guint64 chunk_puts;                 /* PUT chunks/HASH requests sent (retries included) */
    guint64 chunk_gets;                 /* GET chunks/HASH requests sent (retries included) */
    guint64 chunk_heads;                /* HEAD chunks/HASH (capture asks about hashes it meets) */
    guint64 missing_queries;            /* POST chunks/missing requests */
    guint64 bytes_sent, bytes_received; /* chunk bodies only */
    guint64 retries;                    /* requests repeated after a connection error or 5xx */
    guint64 chunks_known;               /* distinct chunks the server was found to hold */
} PbHttpStats;

/* location: "http://HOST[:PORT]", "https://..." or a bare "HOST[:PORT]" (http, port
 * PB_HTTP_DEFAULT_PORT). token: the bearer credential or NULL; it is sent only in the
 * Authorization header and to the server named (libcurl drops it on a redirect elsewhere).
 * retry_seconds: how long one request keeps retrying after connection errors (0: never). */
PbHttp *pb_http_new(const char *location, const char *token, guint retry_seconds, GError **error);
void pb_http_free(PbHttp *h);
/* Trust the certificates in file (PEM) for https:// servers instead of the system's CA
 * bundle (a server with a self-signed certificate). NULL: the system's again. */
void pb_http_set_ca_file(PbHttp *h, const char *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbHttp, pb_http_free)
/* "http://HOST:PORT": the server in use (after a referral, the server referred to). */
const char *pb_http_base(PbHttp *h);
void pb_http_get_stats(PbHttp *h, PbHttpStats *st);

/* has/put/get over chunks/. has answers from what the server is known to hold (learnt by
 * pb_http_missing, by earlier puts and heads), else asks with HEAD. */
void pb_http_chunk_io(PbHttp *h, PbChunkIO *io);

/* Makes the put() of pb_http_chunk_io return once the chunk is queued: up to n chunks (at
 * most PB_HTTP_INFLIGHT_MAX) are sent at once in the background, each copied, so that a
 * capture keeps reading and compressing while the server stores and verifies. A failed
 * put fails every later put, pb_http_flush() and pb_http_commit() with its error. Call
 * once, before the first put; 0 (the default): put() returns when the server answered. */
#define PB_HTTP_PUT_QUEUE 6 /* what preboot-img uses: the per-address limit less two */
void pb_http_set_put_queue(PbHttp *h, guint n);
/* Waits for the queued puts; FALSE with the first failure among them. pb_http_commit()
 * does this first. */
gboolean pb_http_flush(PbHttp *h, GError **error);

/* POST chunks/missing for every distinct DATA chunk of m (in batches of
 * PB_HTTP_MISSING_BATCH): returns the hashes the server lacks (hex), and remembers the
 * others as held, with m's codec and stored length. Also counts how often m names each
 * chunk, so that get() fetches a repeated chunk once (kept in memory, up to 256 MiB, until
 * its last use). */
GPtrArray *pb_http_missing(PbHttp *h, const PbManifest *m, GError **error);

/* GET images/NAME: the manifest, parsed and its seal checked. A 307 referral is followed and
 * the referred server is used for everything after (its chunks are there). NULL with
 * PB_IMAGE_ERROR_MISSING for 404. */
PbManifest *pb_http_get_manifest(PbHttp *h, const char *name, GError **error);

/* PUT images/NAME. On 409 returns FALSE with PB_IMAGE_ERROR_MISSING and *missing set to the
 * hashes the server says it lacks; on 412 (create_only and the image exists) FALSE with
 * PB_IMAGE_ERROR_INVALID. *created: 201 rather than 200. */
gboolean pb_http_commit(PbHttp *h, const char *name, PbManifest *m, gboolean create_only,
                        gboolean *created, GPtrArray **missing, GError **error);

/* GET of a JSON document under the prefix ("/images", "/work?mac=..."). */
PbJson *pb_http_get_json(PbHttp *h, const char *path, GError **error);
/* GET of a small document (up to max bytes) at a path from the server's root, outside the
 * imaging API: another plugin's on the same listener (/multicast/v1/sessions/NAME). NULL
 * with PB_IMAGE_ERROR_MISSING for 404. */
GBytes *pb_http_get_at(PbHttp *h, const char *path, gsize max, GError **error);
/* POST of a JSON body under the prefix; TRUE for a 2xx answer. */
gboolean pb_http_post_json(PbHttp *h, const char *path, const char *body, GError **error);

/* Reads a bearer token from a file (first line, surrounding blanks removed). */
char *pb_http_read_token(const char *path, GError **error);

G_END_DECLS
