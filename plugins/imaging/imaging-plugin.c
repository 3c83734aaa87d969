/* imaging-plugin.c - the imaging server (the legacy novell-pbserv): the imaging API of
 * doc/imaging-api.md on the daemon's HTTP listener, the catalog, chunk store, result log and
 * lasting statistics through a LIBRARY_NAME backend (include/preboot/backend.h), work for a
 * device through the policy service, the legacy statistics (D.11.2) and `prebootctl imaging`.
 *
 * Nothing here holds an image: uploads are written to the backend in blocks as they
 * arrive, downloads are read from it in blocks as the client takes them. The main loop,
 * which also answers DHCP and TFTP, never touches the backend's bytes: it only copies
 * between the listener and bounded per-transfer buffers. Chunk opens, reads and writes run
 * on an I/O worker pool (a download reads the next block ahead while the current one is
 * sent, and waits suspended when the client is faster than the disk; an upload hands full
 * blocks to a worker and stops taking the body while two are in hand), and chunk
 * verification, catalog commits, manifest reads and missing-chunk lookups run on a second
 * pool, so that a slow fsync never holds a download back. Results come back to the main
 * loop (host->defer()), where the answers are sent. */
#include "build-config.h"

#include <preboot/backend.h>
#include <preboot/http.h>
#include <preboot/plugin.h>
#include <preboot/policy.h>

#include "image-format.h"
#include "imaging-api.h"
#include "imaging-cred.h"
#include "imaging-json.h"
#include "imaging-net.h"
#include "imaging-sent.h"
#include "imaging-service.h"

#include <openssl/rand.h>
#include <string.h>
#include <zstd.h>

#define BACKEND_DEFAULT "libpreboot-local"
#define BACKEND_PG      "libpreboot-pg"
/* A manifest of a 4 TiB disk at 4 MiB chunks is about 100 MB; a 64 MiB limit covers 2 TiB
 * at the default chunk size. Bodies are buffered, so they are bounded by transfers too. */
#define MANIFEST_MAX     (64u * 1024u * 1024u)
#define RESULT_BODY_MAX  (64u * 1024u)
#define MISSING_BODY_MAX ((gsize)IMAGING_MISSING_MAX * (PB_HASH_HEX_LEN + 2))
#define LOG_LIMIT_MAX    10000
/* Request bodies held in memory at once (manifests, missing lists, reports), all clients. */
#define BUFFERED_MAX   (256u * 1024u * 1024u)
#define STATS_FLUSH_MS 5000
#define WORKERS        4
/* Chunk reads and writes waiting on a disk (or a remote store) do not use the CPU: more
 * of them than cores keeps 8 restores and uploads moving while commits verify. */
#define IO_WORKERS 8
/* Bytes one chunk transfer reads ahead or hands a writer at once; a transfer holds at most
 * two such blocks (one a worker fills or writes, one the listener copies), plus the last
 * piece of body that arrived (tens of KiB), and all of them together at most IO_MAX (the
 * default max_transfers' worth). Large, because each block costs a trip to a worker and
 * back, which on a loaded machine waits for the scheduler twice. */
#define IO_BLOCK ((gsize)1024 * 1024)
#define IO_MAX   ((gsize)128 * 1024 * 1024)
/* Refusals written to the result log per second at most: a client cannot fill the log. */
#define REFUSALS_LOGGED_PER_SECOND 10

/* ---- parameters ------------------------------------------------------------------------- */

static const pb_param params[] = {
    {.name = "database",
     .type = PB_PARAM_STRING,
     .flags = PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "A PostgreSQL connection string or service (\"service=preboot\", \"host=db "
             "dbname=preboot user=preboot\") shared by several imaging servers: with it the "
             "backend is " BACKEND_PG " (unless library_name names another) and the store "
             "directory keeps this server's chunks. See preboot-pg(8)."},
    {.name = "database_password_file",
     .type = PB_PARAM_PATH,
     .flags = PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "A file whose first line is the database password (never logged); relative to "
             "the configuration directory."},
    {.name = "enable_logging",
     .legacy = "EnableLogging",
     .type = PB_PARAM_BOOL,
     .role = PB_ROLE_LOG_ENABLE,
     .def = "yes",
     .help = "Write the imaging server's log file (novell-pbserv.log in the log directory)."},
    {.name = "ip_address",
     .legacy = "IPAddress",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "The address clients reach this imaging server at (a cluster's virtual server, "
             "one NIC of several): advertised in referrals and the catalog. Empty: the HTTP "
             "listener's address, or the one the routing table picks."},
    {.name = "server_url",
     .type = PB_PARAM_STRING,
     .flags = PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "This server's imaging URL as the other servers sharing a database reach it "
             "(\"http://10.0.0.5:8080\"), registered for replication. Empty: http://ADDRESS "
             "(ip_address)."},
    {.name = "library_name",
     .legacy = "LIBRARY_NAME",
     .type = PB_PARAM_STRING,
     .flags = PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "The backend library holding the catalog, chunks and result log (a path, or a "
             "name on the plugin path); empty: " BACKEND_DEFAULT " (local files and SQLite)."},
    {.name = "log_level",
     .type = PB_PARAM_INT,
     .role = PB_ROLE_LOG_LEVEL,
     .def = "2",
     .min = 0,
     .max = 4,
     .help = "0 critical, 1 failed and refused requests, 2 every upload, commit, delete and "
             "report, 3 every request, 4 debugging."},
    {.name = "log_file",
     .type = PB_PARAM_PATH,
     .flags = PB_PARAM_F_EMPTY_OK,
     .role = PB_ROLE_LOG_FILE,
     .def = "novell-pbserv.log",
     .help = "Log file, relative to the daemon's log directory; empty: INSTANCE.log."},
    {.name = "log_file_size",
     .legacy = "PrebootServiceLogFileSize",
     .type = PB_PARAM_INT,
     .role = PB_ROLE_LOG_SIZE,
     .def = "15",
     .min = 0,
     .max = 4096,
     .unit = "MB",
     .help = "When the log grows past this it is deleted and restarted; 0: no limit."},
    {.name = "store",
     .type = PB_PARAM_PATH,
     .flags = PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "Where the backend keeps its data: the store directory of the local backend, a "
             "connection string for others. Empty: store/ in the instance's state directory."},
    {.name = "upload_networks",
     .type = PB_PARAM_LIST,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = "127.0.0.0/8, ::1",
     .help = "Client networks allowed to upload, commit, delete and report results "
             "(\"10.0.0.0/8\", \"2001:db8::/32\"); others get 403."},
    {.name = "upload_token",
     .type = PB_PARAM_STRING,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "The credential uploads, deletes and result reports need, as \"Authorization: "
             "Bearer TOKEN\" (401 without it). Empty, with no upload_token_file: writes are "
             "refused."},
    {.name = "upload_token_file",
     .type = PB_PARAM_PATH,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "A file whose first line is the upload token (kept out of the configuration "
             "file); relative to the configuration directory."},
    {.name = "credential_lifetime",
     .type = PB_PARAM_INT,
     .def = "14400",
     .min = 0,
     .max = 604800,
     .unit = "s",
     .help =
         "How long a per-device credential handed out with capture, restore or session work (GET "
         "work) stays valid: longer than the longest capture, as short as that allows. 0 "
         "hands out credentials that are already expired (tests)."},
    {.name = "download_networks",
     .type = PB_PARAM_LIST,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "Client networks allowed to list images, fetch manifests and chunks and ask for "
             "work; empty: any."},
    {.name = "max_transfers",
     .type = PB_PARAM_INT,
     .def = "64",
     .min = 1,
     .max = 100000,
     .help = "Chunk and manifest transfers served at once; past it a client is referred to a "
             "referral peer, or told to retry (503)."},
    {.name = "max_transfers_per_address",
     .type = PB_PARAM_INT,
     .def = "8",
     .min = 1,
     .max = 10000,
     .help = "Transfers one client address may have at once (one unfriendly client); more "
             "get 429."},
    {.name = "referral_peers",
     .type = PB_PARAM_LIST,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "Other imaging servers (\"HOST:PORT\") a download is referred to (307) when this "
             "one is at max_transfers."},
};

/* Downloads followed for Images Sent (imaging-sent.h): per client address, chunk hashes in
 * total (32 bytes and one more each: about 8.5 MiB), and how long one may pause. */
/* gc keeps chunks an upload stored or was told are held this long ago or less, and holds
 * at most HELD_MAX such hashes (past that, gc refuses until the oldest could have aged). */
#define HELD_TTL_US     ((gint64)6 * 3600 * G_USEC_PER_SEC)
#define HELD_MAX        (256u * 1024u)
#define SENT_PER_SOURCE 4
#define SENT_HASHES_MAX (256u * 1024u)
#define SENT_TTL_US     ((gint64)3600 * G_USEC_PER_SEC)

/* Held chunks (Imaging.held) are keyed by chunk hash (PB_HASH_LEN bytes) then the client
 * address (a C string): a client's commit releases its own holds, not another's. */
static guint held_key_hash(gconstpointer k)
{
    guint h;
    memcpy(&h, k, sizeof(h)); /* SHA-256 bytes: any four are well spread */
    return h ^ g_str_hash((const char *)k + PB_HASH_LEN);
}

static gboolean held_key_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, PB_HASH_LEN) == 0 &&
           strcmp((const char *)a + PB_HASH_LEN, (const char *)b + PB_HASH_LEN) == 0;
}

static guint8 *held_key(const guint8 *hash, const char *client)
{
    gsize n = strlen(client) + 1;
    guint8 *k = g_malloc(PB_HASH_LEN + n);
    memcpy(k, hash, PB_HASH_LEN);
    memcpy(k + PB_HASH_LEN, client, n);
    return k;
}

static const char *const legacy_files[] = {"novell-pbserv.conf", NULL};

typedef struct {
    char *ip_address;
    char *library;
    char *store;
    char *token;
    char *database; /* with the password appended: never logged */
    char *server_url;
    char **upload_nets, **download_nets, **peers;
    gint64 max_transfers, max_per_address;
    gint64 cred_lifetime;
} Settings;

typedef struct Imaging Imaging;

/* One request that transfers or buffers something (uploads, downloads, bodies). */
typedef struct Transfer {
    Imaging *p;
    ImagingPath path;
    const pb_http_request *req;
    pb_http_response *resp;
    char client[64];
    gboolean counted;     /* holds a transfer slot */
    gboolean create_only; /* If-None-Match: * */
    GString *body;        /* buffered bodies: manifest, missing, results */
    gsize reserved;       /* of Imaging.buffered */
    gsize body_max;
    void *writer;         /* chunk upload in progress (a worker's while it writes) */
    guint32 write_status; /* a failed write: its answer, once the body is drained */
    char write_error[256];
    guint64 received;
    GByteArray *fill;    /* chunk upload: body bytes not yet handed to a writer */
    GByteArray *spare;   /* the block a finished write gave back, for reuse */
    gsize io_reserved;   /* of Imaging.io_buffered */
    struct Download *dl; /* chunk download: its reading ahead */
    guint32 codec;       /* chunk upload: as declared (PB_BACKEND_CODEC_*) */
    guint64 length, stored;
    gboolean began;       /* chunk upload: a job has called (or calls) chunk_begin */
    gboolean body_ended;  /* chunk upload: the whole body is in */
    gboolean stalled;     /* chunk upload: intake suspended until a write is done */
    gboolean upload;      /* chunk put, missing query or image commit: gc waits for it */
    gboolean whole_chunk; /* a GET of a whole chunk: sent once the response completes */
    /* A job that names this transfer runs on a worker (one at a time). Opens and commits
     * suspend the request; a block write does not, so the request may end meanwhile: then
     * it is an orphan, freed when the job is done. */
    gboolean busy;
    gboolean orphan; /* the listener dropped the request: no answer, no on_done */
    gint64 started_us;
} Transfer;

/* A chunk download, read ahead by the I/O workers: `cur` is what the listener copies from,
 * `next` what a worker fills meanwhile. Main loop only, except `next` and the reader while
 * `reading` (the worker's then). Lives as long as the listener's stream and a read in
 * flight both (refs), which may be longer than its request. */
typedef struct Download {
    Imaging *p;
    struct Transfer *t; /* NULL once the request is over */
    guint refs;
    void *reader;
    guint64 size;
    gsize block, reserved;
    guint8 *cur, *next;
    guint64 cur_off, next_off;
    gsize cur_len, next_len;
    gboolean reading, next_ok, waiting, failed;
} Download;

typedef enum {
    JOB_CHUNK_COMMIT,
    JOB_IMAGE_COMMIT,
    JOB_MISSING,
    JOB_GC,
    JOB_CHUNK_OPEN,  /* I/O: open a chunk for a download, read its first block */
    JOB_CHUNK_READ,  /* I/O: read the next block of a download */
    JOB_CHUNK_WRITE, /* I/O: write a block of an upload */
    JOB_MANIFEST,    /* the catalog entry and manifest of an image, for a GET */
} JobKind;

typedef struct {
    JobKind kind;
    Transfer *t;
    void *writer;
    GString *body;
    GByteArray *data; /* a block to write (JOB_CHUNK_WRITE, JOB_CHUNK_COMMIT) */
    gboolean begin;   /* begin the chunk first (the upload's first block) */
    Download *dl;     /* JOB_CHUNK_READ */
    /* JOB_CHUNK_OPEN */
    pb_backend_chunk_info info;
    void *reader;
    gboolean prefetch;
    guint8 *buf;
    gint64 nread;
    /* JOB_MANIFEST */
    gboolean get;
    char *if_none_match;
    gboolean found;
    char seal[PB_HASH_HEX_LEN + 1];
    char location[256];
    guint8 info_seal[PB_HASH_LEN]; /* the parsed manifest's, for Images Sent */
    /* results */
    guint32 status; /* pb_backend_status */
    pb_backend_error err;
    GString *out;     /* missing hashes, one per line */
    GByteArray *keep; /* gc: the held chunks, sorted */
    guint64 removed, freed;
    gboolean replaced;
    guint http_status;
    char message[320];
} Job;

typedef struct {
    gboolean found;
    char seal[PB_HASH_HEX_LEN + 1];
    char location[256];
    GString *json;
} InfoCopy;

static void info_copy(void *data, const pb_backend_image *im);
static bool append_bytes(void *data, const void *bytes, size_t len);

struct Imaging {
    const pb_host *host;
    pb_instance *inst;
    Settings set;
    char advertised[80];
    pb_library *lib;
    const pb_backend *be;
    void *bh;
    pb_service_watch *http_watch;
    const pb_http_service *http;
    gboolean routed, stopping;
    GHashTable *transfers;   /* Transfer* set */
    GHashTable *per_address; /* client -> count (GUINT_TO_POINTER) */
    guint active;
    gsize buffered; /* bytes reserved by buffered bodies */
    guint peer_next;
    GThreadPool *pool;
    GThreadPool *io;   /* chunk opens, reads and writes (IO_WORKERS) */
    gsize io_buffered; /* bytes reserved by chunk transfers' blocks (at most IO_MAX) */
    GMutex done_lock;
    GQueue done; /* Job*, finished on a worker */
    gboolean drain_pending;
    gint64 started;
    pb_timer *flush;
    /* Garbage collection (prebootctl imaging gc): chunks that uploads in progress hold
     * (stored or found held lately, hash -> last use, monotonic us) are kept; while a gc is
     * waiting or running, new upload requests get 503 and it starts once none is in flight. */
    GHashTable *held;
    gint64 held_overflow_until;
    guint uploads;
    gboolean gc_wanted, gc_running;
    char gc_last[256];
    ImagingSent *sent;   /* downloads followed for Images Sent (imaging-sent.h) */
    ImagingService *svc; /* PB_IMAGING_SERVICE for the multicast plugin (imaging-service.c) */
    gint64 stats[3];     /* pxe requests, images sent, images received since start */
    gint64 unflushed[3]; /* the part of them not yet added to the backend's totals */
    guint64 refusal_second, refusals_logged;
    /* Per-device credentials (imaging-cred.h): the key (credential.key in the state
     * directory), what each piece of work did ("MAC|WORK_ID" -> CredWork), and the longest
     * credential_lifetime this process has handed out. */
    /* prebootctl imaging replicate runs on a thread of its own (it may pull gigabytes
     * through a shared backend, which must not hold the main loop that answers DHCP): one at
     * a time; its progress under repl_lock, each image's result in the result log. */
    GThread *repl;
    gint repl_done, repl_cancel, repl_unlogged;
    GMutex repl_lock;
    char repl_status[160];
    guint8 cred_key[IMAGING_CRED_KEY_LEN];
    gboolean cred_ready;
    GHashTable *cred_works;
    gint64 cred_lifetime_max;
    struct {
        pb_counter *pxe_requests, *images_sent, *images_received, *chunks_received, *chunks_sent,
            *bytes_received, *refused, *referred, *corrupt, *no_space, *busy;
    } c;
};

/* What a request with a per-device credential spent (below, "per-device credentials"). */
enum { CRED_COMMITTED = 1u << 0, CRED_REPORTED = 1u << 1 };
static void cred_spend(Imaging *p, const pb_http_request *req, guint what);

static void settings_clear(Settings *s)
{
    g_free(s->ip_address);
    g_free(s->library);
    g_free(s->store);
    if (s->token != NULL)
        memset(s->token, 0, strlen(s->token));
    g_free(s->token);
    if (s->database != NULL)
        memset(s->database, 0, strlen(s->database));
    g_free(s->database);
    g_free(s->server_url);
    g_strfreev(s->upload_nets);
    g_strfreev(s->download_nets);
    g_strfreev(s->peers);
    memset(s, 0, sizeof(*s));
}

static char **list_copy(const pb_host *h, const pb_config *cfg, const char *name)
{
    const char *const *items = NULL;
    size_t n = h->config_list(cfg, name, &items);
    char **v = g_new0(char *, n + 1);
    for (size_t i = 0; i < n; i++)
        v[i] = g_strstrip(g_strdup(items[i]));
    return v;
}

/* database, with the password of database_password_file appended as libpq reads it: a
 * keyword/value string gets password='...', a URI a password query parameter. */
static gboolean database_load(const pb_host *h, const pb_config *cfg, Settings *s, pb_err *err)
{
    s->server_url = g_strdup(h->config_string(cfg, "server_url"));
    const char *db = h->config_string(cfg, "database");
    const char *pf = h->config_string(cfg, "database_password_file");
    if (*pf == '\0' || *db == '\0') {
        s->database = g_strdup(db);
        return TRUE;
    }
    g_autofree char *path =
        g_path_is_absolute(pf) ? g_strdup(pf) : g_build_filename(PB_SYSCONFDIR, pf, NULL);
    g_autofree char *text = NULL;
    g_autoptr(GError) e = NULL;
    if (!g_file_get_contents(path, &text, NULL, &e)) {
        h->error(err, "%s: %s", pb_config_where(h, cfg, "database_password_file"), e->message);
        return FALSE;
    }
    text[strcspn(text, "\r\n")] = '\0';
    GString *c = g_string_new(db);
    if (g_str_has_prefix(db, "postgres://") || g_str_has_prefix(db, "postgresql://")) {
        g_autofree char *esc = g_uri_escape_string(text, NULL, FALSE);
        g_string_append_printf(c, "%cpassword=%s", strchr(db, '?') ? '&' : '?', esc);
        memset(esc, 0, strlen(esc));
    } else {
        g_string_append(c, " password='");
        for (const char *q = text; *q; q++) {
            if (*q == '\'' || *q == '\\')
                g_string_append_c(c, '\\');
            g_string_append_c(c, *q);
        }
        g_string_append_c(c, '\'');
    }
    memset(text, 0, strlen(text));
    s->database = g_string_free(c, FALSE);
    return TRUE;
}

static gboolean settings_load(const pb_host *h, const pb_config *cfg, Settings *s, pb_err *err)
{
    s->ip_address = g_strdup(h->config_string(cfg, "ip_address"));
    s->library = g_strdup(h->config_string(cfg, "library_name"));
    s->store = g_strdup(h->config_string(cfg, "store"));
    s->upload_nets = list_copy(h, cfg, "upload_networks");
    s->download_nets = list_copy(h, cfg, "download_networks");
    s->peers = list_copy(h, cfg, "referral_peers");
    s->max_transfers = h->config_int(cfg, "max_transfers");
    s->max_per_address = h->config_int(cfg, "max_transfers_per_address");
    s->cred_lifetime = h->config_int(cfg, "credential_lifetime");
    const char *nets[] = {"upload_networks", "download_networks"};
    char **lists[] = {s->upload_nets, s->download_nets};
    for (int i = 0; i < 2; i++)
        if (!imaging_networks_valid((const char *const *)lists[i])) {
            h->error(err, "%s: not a list of ADDRESS or ADDRESS/BITS networks",
                     pb_config_where(h, cfg, nets[i]));
            return FALSE;
        }
    if (!database_load(h, cfg, s, err))
        return FALSE;
    const char *tf = h->config_string(cfg, "upload_token_file");
    if (*tf != '\0') {
        g_autofree char *path =
            g_path_is_absolute(tf) ? g_strdup(tf) : g_build_filename(PB_SYSCONFDIR, tf, NULL);
        g_autofree char *text = NULL;
        g_autoptr(GError) e = NULL;
        if (!g_file_get_contents(path, &text, NULL, &e)) {
            h->error(err, "%s: %s", pb_config_where(h, cfg, "upload_token_file"), e->message);
            return FALSE;
        }
        text[strcspn(text, "\r\n")] = '\0';
        s->token = g_strdup(g_strstrip(text));
        memset(text, 0, strlen(text));
        if (*s->token == '\0') {
            h->error(err, "%s: %s holds no token", pb_config_where(h, cfg, "upload_token_file"),
                     path);
            return FALSE;
        }
    } else {
        s->token = g_strdup(h->config_string(cfg, "upload_token"));
    }
    return TRUE;
}

/* ---- statistics and the result log ------------------------------------------------------ */

enum { ST_PXE, ST_SENT, ST_RECEIVED };
static const char *const stat_names[] = {"pxe_requests", "images_sent", "images_received"};

static void stat_bump(Imaging *p, int which)
{
    pb_counter *c[] = {p->c.pxe_requests, p->c.images_sent, p->c.images_received};
    p->host->counter_add(c[which], 1);
    p->stats[which]++;
    p->unflushed[which]++;
}

/* The lasting totals go to the backend in batches: one database write per request would
 * cost more than the request. */
static void stats_flush(Imaging *p)
{
    if (p->be == NULL)
        return;
    for (int i = 0; i < 3; i++)
        if (p->unflushed[i] != 0) {
            pb_backend_error e = {.struct_size = sizeof(e)};
            if (p->be->stat_add(p->bh, stat_names[i], p->unflushed[i], &e) == PB_BACKEND_OK)
                p->unflushed[i] = 0;
        }
}

static bool flush_tick(void *data)
{
    stats_flush(data);
    return true;
}

static void log_result(Imaging *p, const pb_backend_result *r)
{
    pb_backend_error e = {.struct_size = sizeof(e)};
    if (p->be->result_add(p->bh, r, &e) != PB_BACKEND_OK)
        p->host->log(p->inst, PB_LOG_WARNING, "result log: %s", e.message);
}

static void log_event(Imaging *p, const char *client, const char *type, const char *image,
                      const char *result, const char *message)
{
    pb_backend_result r = {.struct_size = sizeof(r),
                           .source = client,
                           .type = type,
                           .image = image,
                           .result = result,
                           .message = message};
    log_result(p, &r);
}

/* ---- answers ---------------------------------------------------------------------------- */

#define TEXT "text/plain; charset=utf-8"
#define JSON "application/json"

static bool answer(Imaging *p, pb_http_response *resp, unsigned status, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
static bool answer(Imaging *p, pb_http_response *resp, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (p->http == NULL)
        return false;
    return p->http->respond(p->http->ctx, resp, status, TEXT, text, strlen(text));
}

static bool answer_json(Imaging *p, pb_http_response *resp, unsigned status, GString *json)
{
    g_string_append_c(json, '\n');
    return p->http->respond(p->http->ctx, resp, status, JSON, json->str, json->len);
}

static unsigned status_http(guint32 st)
{
    switch (st) {
    case PB_BACKEND_OK:
        return 200;
    case PB_BACKEND_NOT_FOUND:
        return 404;
    case PB_BACKEND_EXISTS:
        return 412;
    case PB_BACKEND_MISSING:
        return 409;
    case PB_BACKEND_CORRUPT:
        return 422;
    case PB_BACKEND_NO_SPACE:
        return 507;
    case PB_BACKEND_INVALID:
        return 400;
    default:
        return 500;
    }
}

/* ---- transfers: bounds per address and in total ----------------------------------------- */

static void gc_maybe_start(Imaging *p);

static void gc_deferred(void *data)
{
    gc_maybe_start(data);
}

static void download_unref(Download *dl)
{
    if (--dl->refs > 0)
        return;
    Imaging *p = dl->p;
    if (dl->t != NULL)
        dl->t->dl = NULL;
    if (dl->reader != NULL && p->be != NULL)
        p->be->chunk_close(dl->reader);
    p->io_buffered -= dl->reserved;
    g_free(dl->cur);
    g_free(dl->next);
    g_free(dl);
}

static void transfer_free(Transfer *t)
{
    Imaging *p = t->p;
    if (t->dl != NULL) {
        /* The download's blocks outlive the request until the listener lets go of them. */
        t->dl->reserved += t->io_reserved;
        t->dl->t = NULL;
        t->io_reserved = 0;
    }
    p->io_buffered -= t->io_reserved;
    if (t->fill != NULL)
        g_byte_array_unref(t->fill);
    if (t->spare != NULL)
        g_byte_array_unref(t->spare);
    if (t->upload && --p->uploads == 0 && p->gc_wanted && !p->stopping)
        p->host->defer(p->inst, gc_deferred, p);
    if (t->counted) {
        guint n = GPOINTER_TO_UINT(g_hash_table_lookup(p->per_address, t->client));
        if (n <= 1)
            g_hash_table_remove(p->per_address, t->client);
        else
            g_hash_table_insert(p->per_address, g_strdup(t->client), GUINT_TO_POINTER(n - 1));
        p->active--;
    }
    if (t->writer != NULL && p->be != NULL)
        p->be->chunk_abort(t->writer);
    if (t->body != NULL)
        g_string_free(t->body, TRUE);
    p->buffered -= t->reserved;
    g_hash_table_remove(p->transfers, t);
    g_free(t);
}

static void on_transfer_done(void *handle, bool completed)
{
    Transfer *t = handle;
    Imaging *p = t->p;
    if (completed && t->whole_chunk && p->sent != NULL) {
        guint n =
            imaging_sent_chunk(p->sent, t->client, t->path.hash, (gint64)p->host->monotonic_us());
        while (n-- > 0)
            stat_bump(p, ST_SENT);
    }
    if (t->dl != NULL)
        t->dl->t = NULL; /* resp is gone: a read that ends now resumes nothing */
    if (t->busy) {
        t->orphan = TRUE; /* a block write still holds the writer: freed when it is done */
        return;
    }
    transfer_free(handle);
}

/* Reserves the two blocks of a chunk transfer, or answers 503: all transfers together
 * hold at most IO_MAX of buffers, whatever max_transfers says. */
static gboolean io_reserve(Imaging *p, Transfer *t, guint64 size)
{
    gsize want = 2 * (gsize)MIN(size, (guint64)IO_BLOCK) + 64 * 1024;
    if (p->io_buffered + want > IO_MAX) {
        p->host->counter_add(p->c.busy, 1);
        p->http->add_header(p->http->ctx, t->resp, "Retry-After", "5");
        answer(p, t->resp, 503, "busy: too many chunk transfers buffered at once\n");
        return FALSE;
    }
    p->io_buffered += want;
    t->io_reserved = want;
    return TRUE;
}

static Transfer *transfer_new(Imaging *p, const pb_http_request *req, pb_http_response *resp,
                              const ImagingPath *path)
{
    Transfer *t = g_new0(Transfer, 1);
    t->p = p;
    t->req = req;
    t->resp = resp;
    t->path = *path;
    g_strlcpy(t->client, req->client ? req->client : "?", sizeof(t->client));
    t->started_us = (gint64)p->host->monotonic_us();
    t->upload = path->ep == IMAGING_EP_MISSING ||
                ((path->ep == IMAGING_EP_CHUNK || path->ep == IMAGING_EP_IMAGE) &&
                 (req->method_id & PB_HTTP_M_PUT));
    p->uploads += t->upload;
    g_hash_table_add(p->transfers, t);
    p->http->on_done(p->http->ctx, resp, on_transfer_done, t);
    return t;
}

/* Takes a transfer slot, or answers: 429 for a client at its own limit, 307 to a referral
 * peer or 503 when the server is at its limit. */
static gboolean transfer_admit(Imaging *p, Transfer *t)
{
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(p->per_address, t->client));
    if (n >= (guint)p->set.max_per_address) {
        p->host->counter_add(p->c.busy, 1);
        p->http->add_header(p->http->ctx, t->resp, "Retry-After", "2");
        answer(p, t->resp, 429, "too many transfers from %s at once (%u)\n", t->client, n);
        return FALSE;
    }
    if (p->active >= (guint)p->set.max_transfers) {
        guint npeers = g_strv_length(p->set.peers);
        /* Reads go to a peer holding the same images. chunks/missing too (a restore asks
         * it first; a 307 repeats the POST and its body): an uploader told by the peer
         * that a chunk is held when it is not here learns it from its commit's 409. */
        if (npeers > 0 && ((t->req->method_id & (PB_HTTP_M_GET | PB_HTTP_M_HEAD)) ||
                           t->path.ep == IMAGING_EP_MISSING)) {
            const char *peer = p->set.peers[p->peer_next++ % npeers];
            g_autofree char *loc = g_strdup_printf("http://%s%s", peer, t->req->path);
            p->host->counter_add(p->c.referred, 1);
            p->http->add_header(p->http->ctx, t->resp, "Location", loc);
            answer(p, t->resp, 307, "busy: referred to %s\n", peer);
            return FALSE;
        }
        p->host->counter_add(p->c.busy, 1);
        p->http->add_header(p->http->ctx, t->resp, "Retry-After", "5");
        answer(p, t->resp, 503, "busy: %u transfers at once\n", p->active);
        return FALSE;
    }
    g_hash_table_insert(p->per_address, g_strdup(t->client), GUINT_TO_POINTER(n + 1));
    p->active++;
    t->counted = TRUE;
    return TRUE;
}

/* ---- worker jobs ------------------------------------------------------------------------ */

static void job_free(Imaging *p, Job *j)
{
    if (j->reader != NULL && p->be != NULL)
        p->be->chunk_close(j->reader);
    if (j->writer != NULL && p->be != NULL)
        p->be->chunk_abort(j->writer);
    if (j->data != NULL)
        g_byte_array_unref(j->data);
    g_free(j->buf);
    g_free(j->if_none_match);
    if (j->keep != NULL)
        g_byte_array_unref(j->keep);
    if (j->body != NULL)
        g_string_free(j->body, TRUE);
    if (j->out != NULL)
        g_string_free(j->out, TRUE);
    g_free(j);
}

static void missing_line(void *data, const char *hex)
{
    GString *out = data;
    g_string_append(out, hex);
    g_string_append_c(out, '\n');
}

static int cmp_hash(const void *a, const void *b)
{
    return memcmp(a, b, PB_HASH_LEN);
}

/* Parses the manifest and commits it: on a worker (a big manifest takes a while to parse
 * and its every chunk is looked up). */
static void job_image_commit(Imaging *p, Job *j)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(PbManifest) m = pb_manifest_parse(j->body->str, j->body->len, &e);
    if (m == NULL) {
        j->http_status = 400;
        g_snprintf(j->message, sizeof(j->message), "bad manifest: %s", e->message);
        return;
    }
    PbManifestStats st;
    pb_manifest_stats(m, &st);
    /* Distinct and sorted: a chunk named twice is looked up (and reported) once. */
    g_autoptr(GByteArray) hashes = pb_manifest_data_hashes(m, TRUE);
    guint u = hashes->len / PB_HASH_LEN;
    char seal[PB_HASH_HEX_LEN + 1];
    pb_hash_to_hex(m->seal, seal);
    pb_backend_image im = {.struct_size = sizeof(im),
                           .name = j->t->path.name,
                           .disk_size = m->disk_size,
                           .chunks = m->chunks->len,
                           .data_bytes = st.data_bytes,
                           .stored_bytes = st.unique_stored_bytes,
                           .seal = seal,
                           .location = ""};
    j->out = g_string_new(NULL);
    j->keep = g_byte_array_ref(hashes); /* for held_release() */
    bool replaced = false;
    j->status = p->be->image_commit(p->bh, &im, j->body->str, j->body->len,
                                    (const uint8_t(*)[PB_BACKEND_HASH_LEN])hashes->data, u,
                                    j->t->create_only ? PB_BACKEND_CREATE_ONLY : 0, missing_line,
                                    j->out, &replaced, &j->err);
    j->replaced = replaced;
    if (j->status == PB_BACKEND_OK) {
        j->http_status = replaced ? 200 : 201;
        g_snprintf(j->message, sizeof(j->message), "image %s %s: %u chunks, seal %s",
                   j->t->path.name, replaced ? "replaced" : "created", m->chunks->len, seal);
    } else {
        j->http_status = status_http(j->status);
        g_strlcpy(j->message, j->err.message, sizeof(j->message));
    }
}

static void job_missing(Imaging *p, Job *j)
{
    g_autoptr(GError) e = NULL;
    gsize n = 0;
    g_autofree guint8 *hashes =
        imaging_hash_list_parse(j->body->str, j->body->len, IMAGING_MISSING_MAX, &n, &e);
    if (e != NULL) {
        j->http_status = 400;
        g_snprintf(j->message, sizeof(j->message), "%s", e->message);
        return;
    }
    if (n == 0) { /* an empty list (NULL without an error): none is missing */
        j->out = g_string_new(NULL);
        j->http_status = 200;
        return;
    }
    g_autofree guint8 *missing = g_malloc0(MAX(n, 1));
    j->status = p->be->chunk_missing(p->bh, (const uint8_t(*)[PB_BACKEND_HASH_LEN])hashes, n,
                                     missing, &j->err);
    if (j->status != PB_BACKEND_OK) {
        j->http_status = status_http(j->status);
        g_strlcpy(j->message, j->err.message, sizeof(j->message));
        return;
    }
    j->out = g_string_new(NULL);
    for (gsize i = 0; i < n; i++)
        if (missing[i]) {
            char hex[PB_HASH_HEX_LEN + 1];
            pb_hash_to_hex(hashes + i * PB_HASH_LEN, hex);
            missing_line(j->out, hex);
        }
    j->http_status = 200;
}

/* Reads len bytes at off whole (a reader may answer in pieces): the count, short only at
 * the end of the chunk, or -1. */
static gint64 read_block(Imaging *p, void *reader, guint64 off, guint8 *buf, gsize len)
{
    gsize got = 0;
    while (got < len) {
        int64_t n = p->be->chunk_read(reader, off + got, buf + got, len - got);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (gsize)n;
    }
    return (gint64)got;
}

/* Writes a block, the first one after beginning the chunk (EXISTS: stored already, nothing
 * to write); on a failure the writer is aborted (nothing of the chunk is kept). */
static void write_block(Imaging *p, Job *j)
{
    j->status = PB_BACKEND_OK;
    if (j->begin) {
        const Transfer *t = j->t; /* these fields are set before the first job, then read */
        j->status = p->be->chunk_begin(p->bh, t->path.hash, t->codec, t->length, t->stored,
                                       &j->writer, &j->err);
        if (j->status != PB_BACKEND_OK)
            return;
    }
    if (j->data != NULL && j->data->len > 0)
        j->status = p->be->chunk_write(j->writer, j->data->data, j->data->len, &j->err);
    if (j->status != PB_BACKEND_OK) {
        p->be->chunk_abort(j->writer);
        j->writer = NULL;
    }
}

/* The manifest of an image for a GET or HEAD: its catalog entry, then (unless the client
 * has it or it lives elsewhere) its text, and the DATA hashes a GET follows (Images Sent). */
static void job_manifest(Imaging *p, Job *j)
{
    InfoCopy c = {0};
    j->status = p->be->image_info(p->bh, j->t->path.name, info_copy, &c, &j->err);
    if (j->status != PB_BACKEND_OK)
        return;
    j->found = TRUE;
    g_strlcpy(j->seal, c.seal, sizeof(j->seal));
    g_strlcpy(j->location, c.location, sizeof(j->location));
    g_autofree char *etag = g_strdup_printf("\"%s\"", c.seal);
    if (c.location[0] != '\0' || (j->if_none_match != NULL && strcmp(j->if_none_match, etag) == 0))
        return;
    j->out = g_string_new(NULL);
    j->status = p->be->image_manifest(p->bh, j->t->path.name, append_bytes, j->out, &j->err);
    if (j->status != PB_BACKEND_OK || !j->get)
        return;
    g_autoptr(PbManifest) m = pb_manifest_parse(j->out->str, j->out->len, NULL);
    if (m == NULL)
        return; /* the backend holds what a commit checked: not expected */
    memcpy(j->info_seal, m->seal, PB_HASH_LEN);
    j->keep = g_byte_array_new();
    for (guint i = 0; i < m->chunks->len; i++) {
        const PbChunkRef *r = &g_array_index(m->chunks, PbChunkRef, i);
        if (r->kind == PB_CHUNK_DATA)
            g_byte_array_append(j->keep, r->hash, PB_HASH_LEN);
    }
}

static void drain_done(void *data);

static void worker(gpointer data, gpointer user)
{
    Job *j = data;
    Imaging *p = user;
    /* Each job (one system call): a GPrivate flag would outlive the module (unloaded). */
    imaging_thread_background();
    j->err.struct_size = sizeof(j->err);
    switch (j->kind) {
    case JOB_CHUNK_COMMIT:
        write_block(p, j); /* the last block of the body, then verify and keep */
        if (j->status == PB_BACKEND_OK) {
            j->status = p->be->chunk_commit(j->writer, &j->err);
            j->writer = NULL;
        }
        j->http_status = j->status == PB_BACKEND_OK ? 201 : status_http(j->status);
        g_strlcpy(j->message, j->err.message, sizeof(j->message));
        break;
    case JOB_CHUNK_WRITE:
        write_block(p, j);
        g_strlcpy(j->message, j->err.message, sizeof(j->message));
        break;

    case JOB_CHUNK_OPEN:
        j->info.struct_size = sizeof(j->info);
        j->status = p->be->chunk_open(p->bh, j->t->path.hash, &j->info, &j->reader, &j->err);
        g_strlcpy(j->message, j->err.message, sizeof(j->message));
        if (j->status == PB_BACKEND_OK && j->prefetch && j->info.stored > 0) {
            gsize n = (gsize)MIN(j->info.stored, (guint64)IO_BLOCK);
            j->buf = g_malloc(n);
            j->nread = read_block(p, j->reader, 0, j->buf, n);
        }
        break;
    case JOB_CHUNK_READ: {
        Download *dl = j->dl;
        gsize n = (gsize)MIN(dl->size - dl->next_off, (guint64)dl->block);
        j->nread = read_block(p, dl->reader, dl->next_off, dl->next, n);
        if (j->nread == 0 && n > 0)
            j->nread = -1; /* shorter than it said it was */
        break;
    }
    case JOB_MANIFEST:
        job_manifest(p, j);
        break;
    case JOB_IMAGE_COMMIT:
        job_image_commit(p, j);
        break;
    case JOB_MISSING:
        job_missing(p, j);
        break;
    case JOB_GC:
        j->status = p->be->gc(p->bh, (const uint8_t(*)[PB_BACKEND_HASH_LEN])j->keep->data,
                              j->keep->len / PB_BACKEND_HASH_LEN, &j->removed, &j->freed, &j->err);
        break;
    }
    g_mutex_lock(&p->done_lock);
    g_queue_push_tail(&p->done, j);
    gboolean kick = !p->drain_pending;
    p->drain_pending = TRUE;
    g_mutex_unlock(&p->done_lock);
    if (kick)
        p->host->defer(p->inst, drain_done, p);
}

/* On the main loop: answers what the workers finished. */
static void held_touch(Imaging *p, const guint8 *hash, const char *client)
{
    guint8 *k = held_key(hash, client);
    if (g_hash_table_size(p->held) >= HELD_MAX && !g_hash_table_contains(p->held, k)) {
        p->held_overflow_until = (gint64)p->host->monotonic_us() + HELD_TTL_US;
        g_free(k);
        return;
    }
    /* the last use, in monotonic seconds (a pointer holds 32 bits everywhere) */
    guint now_s = (guint)(p->host->monotonic_us() / G_USEC_PER_SEC);
    g_hash_table_insert(p->held, k, GUINT_TO_POINTER(now_s));
}

/* A commit by client: the chunks it names are the image's now, no longer its upload's. */
static void held_release(Imaging *p, const GByteArray *hashes, const char *client)
{
    for (guint i = 0; hashes != NULL && i + PB_HASH_LEN <= hashes->len; i += PB_HASH_LEN) {
        g_autofree guint8 *k = held_key(hashes->data + i, client);
        g_hash_table_remove(p->held, k);
    }
}

static gboolean held_expired(gpointer key, gpointer value, gpointer data)
{
    return GPOINTER_TO_UINT(value) < GPOINTER_TO_UINT(data);
}

static int cmp_hash(const void *a, const void *b);

/* Starts the gc asked for once no upload request is in flight (new ones get 503 meanwhile). */
static void gc_maybe_start(Imaging *p)
{
    if (!p->gc_wanted || p->gc_running || p->uploads > 0 || p->be == NULL || p->stopping)
        return;
    if (!imaging_service_gc_enter(p->svc))
        return; /* a multicast session stores an image: its end calls us again */
    p->gc_wanted = FALSE;
    p->gc_running = TRUE;
    gint64 now = (gint64)p->host->monotonic_us();
    guint cutoff = now > HELD_TTL_US ? (guint)((now - HELD_TTL_US) / G_USEC_PER_SEC) : 0;
    g_hash_table_foreach_remove(p->held, held_expired, GUINT_TO_POINTER(cutoff));
    Job *j = g_new0(Job, 1);
    j->kind = JOB_GC;
    j->keep = g_byte_array_sized_new(g_hash_table_size(p->held) * PB_HASH_LEN);
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, p->held);
    while (g_hash_table_iter_next(&it, &key, NULL))
        g_byte_array_append(j->keep, key, PB_HASH_LEN); /* repeats (two clients) are harmless */
    if (j->keep->len > 0)
        qsort(j->keep->data, j->keep->len / PB_HASH_LEN, PB_HASH_LEN, cmp_hash);
    p->host->log(p->inst, PB_LOG_TRANSACTION, "gc started (%u chunk(s) held by uploads kept)",
                 j->keep->len / PB_HASH_LEN);
    g_thread_pool_push(p->pool, j, NULL);
}

static void finish_gc(Imaging *p, Job *j)
{
    p->gc_running = FALSE;
    imaging_service_gc_leave(p->svc);
    if (j->status == PB_BACKEND_OK)
        g_snprintf(p->gc_last, sizeof(p->gc_last),
                   "gc removed %" G_GUINT64_FORMAT " chunk(s), %" G_GUINT64_FORMAT
                   " bytes; kept %u held by uploads",
                   j->removed, j->freed, (guint)(j->keep->len / PB_BACKEND_HASH_LEN));
    else
        g_snprintf(p->gc_last, sizeof(p->gc_last), "gc failed: %s", j->err.message);
    p->host->log(p->inst, j->status == PB_BACKEND_OK ? PB_LOG_TRANSACTION : PB_LOG_WARNING, "%s",
                 p->gc_last);
    log_event(p, "prebootctl", "gc", NULL, j->status == PB_BACKEND_OK ? "ok" : "failed",
              p->gc_last);
}

static void finish_read(Imaging *p, Job *j);
static void finish_write(Imaging *p, Transfer *t, Job *j);
static void finish_open(Imaging *p, Transfer *t, Job *j);
static void finish_manifest(Imaging *p, Transfer *t, Job *j);

static void finish_job(Imaging *p, Job *j)
{
    if (j->kind == JOB_GC) {
        finish_gc(p, j);
        return;
    }
    if (j->kind == JOB_CHUNK_READ) {
        finish_read(p, j);
        return;
    }
    Transfer *t = j->t;
    t->busy = FALSE;
    if (j->kind == JOB_CHUNK_WRITE)
        t->writer = g_steal_pointer(&j->writer); /* back to the transfer (NULL if aborted) */
    if (t->orphan) {
        transfer_free(t);
        return;
    }
    pb_http_response *resp = t->resp;
    switch (j->kind) {
    case JOB_CHUNK_WRITE:
        finish_write(p, t, j);
        break;
    case JOB_CHUNK_OPEN:
        finish_open(p, t, j);
        break;

    case JOB_MANIFEST:
        finish_manifest(p, t, j);
        break;
    case JOB_CHUNK_READ:
        break; /* finish_read */
    case JOB_CHUNK_COMMIT:
        if (j->status == PB_BACKEND_EXISTS) { /* found when it was begun */
            held_touch(p, t->path.hash, t->client);
            answer(p, resp, 200, "already stored\n");
        } else if (j->status == PB_BACKEND_OK) {
            p->host->counter_add(p->c.chunks_received, 1);
            p->host->counter_add(p->c.bytes_received, (gint64)t->received);
            held_touch(p, t->path.hash, t->client);
            p->host->log(p->inst, PB_LOG_REQUEST,
                         "%s: chunk %s stored (%" G_GUINT64_FORMAT " bytes)", t->client,
                         t->path.hash_hex, t->received);
            answer(p, resp, 201, "stored\n");
        } else {
            if (j->status == PB_BACKEND_CORRUPT)
                p->host->counter_add(p->c.corrupt, 1);
            if (j->status == PB_BACKEND_NO_SPACE)
                p->host->counter_add(p->c.no_space, 1);
            p->host->log(p->inst, PB_LOG_WARNING, "%s: chunk %s refused: %s", t->client,
                         t->path.hash_hex, j->message);
            answer(p, resp, j->http_status, "%s\n", j->message);
        }
        break;
    case JOB_IMAGE_COMMIT: {
        gboolean ok = j->http_status == 200 || j->http_status == 201;
        if (j->http_status == 201)
            stat_bump(p, ST_RECEIVED);
        if (ok) {
            held_release(p, j->keep, t->client);
            cred_spend(p, t->req, CRED_COMMITTED);
        }
        p->host->log(p->inst, ok ? PB_LOG_TRANSACTION : PB_LOG_WARNING, "%s: commit %s: %s",
                     t->client, t->path.name, j->message);
        log_event(p, t->client, "upload", t->path.name, ok ? "ok" : "failed", j->message);
        if (j->http_status == 409)
            p->http->respond(p->http->ctx, resp, 409, TEXT, j->out->str, j->out->len);
        else
            answer(p, resp, j->http_status, "%s\n", j->message);
        break;
    }
    case JOB_MISSING:
        if (j->http_status == 200) {
            /* What the client was told is held, it will not send: keep it from gc. */
            gsize n = 0;
            g_autofree guint8 *hashes =
                imaging_hash_list_parse(j->body->str, j->body->len, IMAGING_MISSING_MAX, &n, NULL);
            for (gsize i = 0; hashes != NULL && i < n; i++)
                held_touch(p, hashes + i * PB_HASH_LEN, t->client);
        }
        if (j->http_status == 200)
            p->http->respond(p->http->ctx, resp, 200, TEXT, j->out->str, j->out->len);
        else
            answer(p, resp, j->http_status, "%s\n", j->message);
        break;
    case JOB_GC:
        break; /* finish_gc */
    }
}

static void drain_done(void *data)
{
    Imaging *p = data;
    for (;;) {
        g_mutex_lock(&p->done_lock);
        Job *j = g_queue_pop_head(&p->done);
        if (j == NULL)
            p->drain_pending = FALSE;
        g_mutex_unlock(&p->done_lock);
        if (j == NULL)
            return;
        finish_job(p, j);
        job_free(p, j);
    }
}

static Job *job_new(Transfer *t, JobKind kind)
{
    Job *j = g_new0(Job, 1);
    j->kind = kind;
    j->t = t;
    j->writer = g_steal_pointer(&t->writer);
    j->body = g_steal_pointer(&t->body);
    if (kind == JOB_CHUNK_COMMIT || kind == JOB_CHUNK_WRITE) {
        j->data = g_steal_pointer(&t->fill);
        j->begin = !t->began;
        t->began = TRUE;
    }
    t->busy = TRUE;
    return j;
}

/* A job the request waits for, suspended: its answer comes from finish_job(). */
static void run_job(Imaging *p, Transfer *t, JobKind kind)
{
    Job *j = job_new(t, kind);
    p->http->suspend(p->http->ctx, t->resp);
    gboolean io = kind == JOB_CHUNK_OPEN;
    g_thread_pool_push(io ? p->io : p->pool, j, NULL);
}

/* ---- chunk transfers: blocks on the I/O workers ----------------------------------------- */

/* Hands the upload's full block to a writer; the body keeps coming into the spare one. */
static void write_start(Imaging *p, Transfer *t)
{
    Job *j = job_new(t, JOB_CHUNK_WRITE);
    t->fill = t->spare != NULL ? g_steal_pointer(&t->spare) : g_byte_array_sized_new(IO_BLOCK);
    g_thread_pool_push(p->io, j, NULL);
}

static void finish_write(Imaging *p, Transfer *t, Job *j)
{
    if (j->data != NULL && t->spare == NULL) {
        g_byte_array_set_size(j->data, 0);
        t->spare = g_steal_pointer(&j->data);
    }
    if (j->status == PB_BACKEND_EXISTS) {
        /* Stored already: the rest of the body is read and dropped, then the answer goes. */
        held_touch(p, t->path.hash, t->client);
        t->write_status = PB_BACKEND_EXISTS;
        g_clear_pointer(&t->fill, g_byte_array_unref);
        t->stalled = FALSE;
        answer(p, t->resp, 200, "already stored\n");
        return;
    }
    if (j->status != PB_BACKEND_OK) {
        /* Nothing of this chunk is kept (the worker aborted it); the client hears why at
         * once, and the rest of its body is read and dropped. */
        t->write_status = j->status;
        g_strlcpy(t->write_error, j->message, sizeof(t->write_error));
        g_clear_pointer(&t->fill, g_byte_array_unref);
        if (j->status == PB_BACKEND_NO_SPACE)
            p->host->counter_add(p->c.no_space, 1);
        p->host->log(p->inst, PB_LOG_WARNING, "%s: chunk %s: %s", t->client, t->path.hash_hex,
                     j->message);
        t->stalled = FALSE;
        answer(p, t->resp, status_http(j->status), "%s\n", j->message);
        return;
    }
    if (t->body_ended) {
        run_job(p, t, JOB_CHUNK_COMMIT);
        return;
    }
    if (t->fill->len >= IO_BLOCK)
        write_start(p, t);
    if (t->stalled) {
        t->stalled = FALSE;
        p->http->resume(p->http->ctx, t->resp);
    }
}

/* Starts reading the block at off into dl->next, on a worker. */
static void download_fill(Imaging *p, Download *dl, guint64 off)
{
    Job *j = g_new0(Job, 1);
    j->kind = JOB_CHUNK_READ;
    j->dl = dl;
    dl->refs++;
    dl->reading = TRUE;
    dl->next_ok = FALSE;
    dl->next_off = off;
    g_thread_pool_push(p->io, j, NULL);
}

/* The listener's read_fn: copies from the block in hand; asks for the next one ahead of
 * need; says "again" (the request waits, suspended) when the client is ahead of the disk. */
static int64_t download_read(void *handle, uint64_t offset, void *buf, size_t len)
{
    Download *dl = handle;
    Imaging *p = dl->p;
    if (dl->failed)
        return -1;
    if (offset >= dl->size)
        return 0;
    if (offset < dl->cur_off || offset >= dl->cur_off + dl->cur_len) {
        if (dl->reading) {
            dl->waiting = TRUE;
            return PB_HTTP_READ_AGAIN;
        }
        if (!dl->next_ok || offset < dl->next_off || offset >= dl->next_off + dl->next_len) {
            if (p->io == NULL)
                return -1; /* stopping */
            download_fill(p, dl, offset);
            dl->waiting = TRUE;
            return PB_HTTP_READ_AGAIN;
        }
        guint8 *b = dl->cur;
        dl->cur = dl->next;
        dl->cur_off = dl->next_off;
        dl->cur_len = dl->next_len;
        dl->next = b;
        dl->next_ok = FALSE;
    }
    gsize at = (gsize)(offset - dl->cur_off);
    gsize n = MIN(len, dl->cur_len - at);
    memcpy(buf, dl->cur + at, n);
    guint64 end = dl->cur_off + dl->cur_len;
    if (!dl->reading && !dl->next_ok && end < dl->size && p->io != NULL)
        download_fill(p, dl, end); /* read ahead while this block is sent */
    return (int64_t)n;
}

static void download_stream_free(void *handle)
{
    download_unref(handle);
}

static void finish_read(Imaging *p, Job *j)
{
    Download *dl = j->dl;
    dl->reading = FALSE;
    if (j->nread < 0) {
        dl->failed = TRUE;
        p->host->log(p->inst, PB_LOG_WARNING, "chunk read failed at %" G_GUINT64_FORMAT,
                     dl->next_off);
    } else {
        dl->next_len = (gsize)j->nread;
        dl->next_ok = TRUE;
    }
    /* The listener asked and was told to wait (or the read failed): wake the request. */
    if (dl->waiting && dl->t != NULL && !dl->t->orphan && p->http != NULL) {
        dl->waiting = FALSE;
        p->http->resume(p->http->ctx, dl->t->resp);
    }
    download_unref(dl);
}

static void finish_open(Imaging *p, Transfer *t, Job *j)
{
    pb_http_response *resp = t->resp;
    const pb_http_request *req = t->req;
    const pb_http_service *h = p->http;
    if (j->status != PB_BACKEND_OK) {
        answer(p, resp, status_http(j->status), "%s\n", j->message);
        return;
    }
    pb_backend_chunk_info *info = &j->info;
    char len[32];
    g_snprintf(len, sizeof(len), "%" G_GUINT64_FORMAT, info->length);
    g_autofree char *etag = g_strdup_printf("\"%s\"", t->path.hash_hex);
    h->add_header(h->ctx, resp, "ETag", etag);
    h->add_header(h->ctx, resp, "Cache-Control", "public, max-age=31536000, immutable");
    h->add_header(h->ctx, resp, "X-Preboot-Codec",
                  info->codec == PB_BACKEND_CODEC_ZSTD ? "zstd" : "none");
    if (info->length > 0)
        h->add_header(h->ctx, resp, "X-Preboot-Length", len);
    const char *inm = h->header(h->ctx, req, "If-None-Match");
    if (inm != NULL && strcmp(inm, etag) == 0) {
        h->respond(h->ctx, resp, 304, NULL, NULL, 0);
        return; /* job_free closes the reader */
    }
    Download *dl = g_new0(Download, 1);
    dl->p = p;
    dl->t = t;
    dl->refs = 1; /* the listener's stream */
    dl->reader = g_steal_pointer(&j->reader);
    dl->size = info->stored;
    dl->block = (gsize)MAX(1, MIN(info->stored, (guint64)IO_BLOCK));
    dl->next = j->buf != NULL ? g_steal_pointer(&j->buf) : g_malloc(dl->block);
    dl->cur = g_malloc(dl->block);
    if (j->prefetch && info->stored > 0) {
        if (j->nread < 0 || (j->nread == 0 && info->stored > 0))
            dl->failed = TRUE;
        else {
            dl->next_len = (gsize)j->nread;
            dl->next_ok = TRUE;
        }
    }
    t->dl = dl;
    if (req->method_id & PB_HTTP_M_GET) {
        p->host->counter_add(p->c.chunks_sent, 1);
        /* Only a whole chunk counts towards an image sent (preboot-img fetches whole ones). */
        t->whole_chunk = h->header(h->ctx, req, "Range") == NULL;
    }
    h->respond_range(h->ctx, req, resp, "application/octet-stream", info->stored, download_read,
                     download_stream_free, dl);
}

static void finish_manifest(Imaging *p, Transfer *t, Job *j)
{
    pb_http_response *resp = t->resp;
    const char *client = t->client;
    const char *name = t->path.name;
    if (!j->found) {
        if (j->get)
            log_event(p, client, "download", name, "failed", j->err.message);
        answer(p, resp, status_http(j->status), "%s\n", j->err.message);
        return;
    }
    if (j->location[0] != '\0') {
        /* The catalog places this image on another server: refer the client there. */
        g_autofree char *loc =
            g_strdup_printf("%s%s" IMAGING_PREFIX "images/%s",
                            strstr(j->location, "://") != NULL ? "" : "http://", j->location, name);
        p->host->counter_add(p->c.referred, 1);
        if (j->get)
            log_event(p, client, "download", name, "referred", loc);
        p->http->add_header(p->http->ctx, resp, "Location", loc);
        answer(p, resp, 307, "image %s is on %s\n", name, j->location);
        return;
    }
    g_autofree char *etag = g_strdup_printf("\"%s\"", j->seal);
    p->http->add_header(p->http->ctx, resp, "ETag", etag);
    p->http->add_header(p->http->ctx, resp, "Cache-Control", "no-cache");
    if (j->out == NULL) { /* If-None-Match matched */
        p->http->respond(p->http->ctx, resp, 304, NULL, NULL, 0);
        return;
    }
    if (j->status != PB_BACKEND_OK) {
        answer(p, resp, status_http(j->status), "%s\n", j->err.message);
        return;
    }
    if (j->get) {
        p->host->log(p->inst, PB_LOG_TRANSACTION, "%s: manifest of %s sent", client, name);
        log_event(p, client, "download", name, "ok", "manifest sent");
        /* A manifest sent: follow the download of its chunks (Images Sent, imaging-sent.h). */
        if (j->keep != NULL &&
            imaging_sent_manifest(p->sent, client, name, j->info_seal, j->keep->data,
                                  j->keep->len / PB_HASH_LEN, (gint64)p->host->monotonic_us()))
            stat_bump(p, ST_SENT);
    }
    p->http->respond(p->http->ctx, resp, 200, TEXT, j->out->str, j->out->len);
}

/* ---- access ----------------------------------------------------------------------------- */

static void log_refusal(Imaging *p, const pb_http_request *req, const ImagingPath *path,
                        const char *why)
{
    p->host->counter_add(p->c.refused, 1);
    p->host->log(p->inst, PB_LOG_WARNING, "%s %s %s refused: %s", req->client, req->method,
                 req->path, why);
    guint64 second = p->host->monotonic_us() / G_USEC_PER_SEC;
    if (second != p->refusal_second) {
        p->refusal_second = second;
        p->refusals_logged = 0;
    }
    if (++p->refusals_logged > REFUSALS_LOGGED_PER_SECOND)
        return;
    g_autofree char *type =
        g_strdup_printf("%s %s", req->method, req->path + strlen(IMAGING_PREFIX));
    log_event(p, req->client, type, path->name[0] ? path->name : NULL, "denied", why);
}

/* ---- per-device credentials (imaging-cred.h, preboot-imaging(8)) ------------------------ */

/* What each piece of work did, by device and work id: a credential issued before its commit
 * commits no more, one issued before its report does nothing more. Remembered until every
 * credential issued before then has expired; past this many, commits and reports with a
 * credential are refused (503) rather than forgotten. */
#define CRED_WORKS_MAX 65536
#define CRED_KEY_FILE  "credential.key"

typedef struct {
    gint64 committed_ms, reported_ms; /* Unix ms; 0: not yet */
    gint64 keep_until;                /* Unix seconds */
} CredWork;

static gint64 now_s(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

static gint64 now_ms(void)
{
    return g_get_real_time() / 1000;
}

/* The key: 32 random bytes in the state directory, made (0600) on first start and kept, so
 * credentials handed out before a restart still work after it. */
static gboolean cred_key_load(Imaging *p, const char *dir, GError **error)
{
    g_autofree char *file = g_build_filename(dir, CRED_KEY_FILE, NULL);
    g_autofree char *text = NULL;
    if (g_file_get_contents(file, &text, NULL, NULL)) {
        g_strstrip(text);
        /* 64 hex digits, written as a hash is */
        if (!pb_hash_from_hex(text, strlen(text), p->cred_key)) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "%s: not 64 hex digits (remove it to make a new key)", file);
            return FALSE;
        }
        memset(text, 0, strlen(text));
        return TRUE;
    }
    if (RAND_bytes(p->cred_key, sizeof(p->cred_key)) != 1) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "no random bytes for %s", file);
        return FALSE;
    }
    char hex[2 * IMAGING_CRED_KEY_LEN + 2];
    pb_hash_to_hex(p->cred_key, hex);
    strcat(hex, "\n");
    g_mkdir_with_parents(dir, 0700);
    gboolean ok =
        g_file_set_contents_full(file, hex, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
    memset(hex, 0, sizeof(hex));
    return ok;
}

static char *cred_work_key(const guint8 mac[6], const char *work_id)
{
    return g_strdup_printf("%02x%02x%02x%02x%02x%02x|%s", mac[0], mac[1], mac[2], mac[3], mac[4],
                           mac[5], work_id);
}

static CredWork *cred_work(Imaging *p, const guint8 mac[6], const char *work_id)
{
    g_autofree char *key = cred_work_key(mac, work_id);
    return g_hash_table_lookup(p->cred_works, key);
}

static gboolean cred_work_old(gpointer key, gpointer value, gpointer data)
{
    return ((CredWork *)value)->keep_until <= *(gint64 *)data;
}

/* Room to remember one more piece of work (what no credential can need is forgotten first). */
static gboolean cred_room(Imaging *p)
{
    if (g_hash_table_size(p->cred_works) < CRED_WORKS_MAX)
        return TRUE;
    gint64 now = now_s();
    g_hash_table_foreach_remove(p->cred_works, cred_work_old, &now);
    return g_hash_table_size(p->cred_works) < CRED_WORKS_MAX;
}

/* Notes that a piece of work was committed or reported (by a credential or the token). */
static void cred_note(Imaging *p, const guint8 mac[6], const char *work_id, guint what)
{
    CredWork *w = cred_work(p, mac, work_id);
    if (w == NULL) {
        if (!cred_room(p))
            return; /* checked by cred_allowed; a race of two uses at the limit */
        w = g_new0(CredWork, 1);
        g_hash_table_insert(p->cred_works, cred_work_key(mac, work_id), w);
    }
    if (what & CRED_COMMITTED)
        w->committed_ms = now_ms();
    if (what & CRED_REPORTED)
        w->reported_ms = now_ms();
    /* Every credential issued until now expires before this (the longest lifetime this
     * process has handed out). */
    w->keep_until = now_s() + p->cred_lifetime_max + 1;
}

/* The device credential a request carries, checked (signature and expiry), or NULL. */
static const char *cred_of(Imaging *p, const pb_http_request *req, ImagingCred *c)
{
    const char *tok = imaging_bearer_token(p->http->header(p->http->ctx, req, "Authorization"));
    if (!p->cred_ready || !imaging_cred_is(tok) || !imaging_cred_check(p->cred_key, tok, c) ||
        now_s() >= c->expires)
        return NULL;
    return tok;
}

/* Notes what a request with a device credential did (a commit, a report). */
static void cred_spend(Imaging *p, const pb_http_request *req, guint what)
{
    ImagingCred c;
    if (cred_of(p, req, &c) != NULL)
        cred_note(p, c.mac, c.work_id, what);
}

/* A write with a device credential: its scope is the one image of its work, and each use
 * once. What GET work hands out anyone may ask for (a MAC is no authentication), so this
 * bounds what a stranger asking for another device's work can do: what that work allows. */
static gboolean cred_allowed(Imaging *p, const pb_http_request *req, pb_http_response *resp,
                             const ImagingPath *path, const char *tok)
{
    ImagingCred c;
    const char *why = NULL;
    unsigned status = 401;
    if (!p->cred_ready)
        why = "device credentials are off here (no credential key: see the start-up log)";
    else if (!imaging_cred_check(p->cred_key, tok, &c))
        why = "a forged or malformed device credential";
    else if (now_s() >= c.expires)
        why = "an expired device credential";
    else {
        CredWork *w = cred_work(p, c.mac, c.work_id);
        status = 403;
        if (w != NULL && w->reported_ms >= c.issued_ms)
            why = "a device credential used up (its work's result was reported)", status = 401;
        else if (path->ep == IMAGING_EP_RESULTS)
            why = NULL; /* the report is checked against the credential in handle_result */
        else if (c.kind != IMAGING_CRED_CAPTURE)
            why = "a device credential for a restore or a session uploads nothing";
        else if (w != NULL && w->committed_ms >= c.issued_ms)
            why = "a device credential used up (its image was committed)", status = 401;
        else if (!(req->method_id & PB_HTTP_M_PUT))
            why = "a device credential deletes nothing";
        else if (path->ep == IMAGING_EP_IMAGE && strcmp(path->name, c.image) != 0)
            why = "a device credential for another image";
        if (why == NULL && path->ep != IMAGING_EP_CHUNK && w == NULL && !cred_room(p)) {
            p->host->counter_add(p->c.busy, 1);
            p->http->add_header(p->http->ctx, resp, "Retry-After", "60");
            answer(p, resp, 503, "busy: too many device credentials in use\n");
            return FALSE;
        }
    }
    if (why == NULL)
        return TRUE;
    log_refusal(p, req, path, why);
    if (status == 401)
        p->http->add_header(p->http->ctx, resp, "WWW-Authenticate",
                            "Bearer realm=\"preboot imaging\"");
    answer(p, resp, status, "%s: %s\n", status == 401 ? "unauthorized" : "forbidden", why);
    return FALSE;
}

/* Writes need an upload network and the token (or a device credential for this write);
 * reads a download network. */
static gboolean allowed(Imaging *p, const pb_http_request *req, pb_http_response *resp,
                        const ImagingPath *path, gboolean write)
{
    if (write) {
        if (!imaging_network_allows((const char *const *)p->set.upload_nets, req->client)) {
            log_refusal(p, req, path, "not from an upload network");
            answer(p, resp, 403, "forbidden: not from an upload network\n");
            return FALSE;
        }
        const char *tok = imaging_bearer_token(p->http->header(p->http->ctx, req, "Authorization"));
        if (imaging_cred_is(tok))
            return cred_allowed(p, req, resp, path, tok);
        if (*p->set.token == '\0') {
            log_refusal(p, req, path, "no upload token configured");
            answer(p, resp, 403, "forbidden: this server takes no uploads (no upload_token)\n");
            return FALSE;
        }
        if (!imaging_bearer_ok(p->http->header(p->http->ctx, req, "Authorization"), p->set.token)) {
            log_refusal(p, req, path, "no or wrong credential");
            p->http->add_header(p->http->ctx, resp, "WWW-Authenticate",
                                "Bearer realm=\"preboot imaging\"");
            answer(p, resp, 401, "unauthorized\n");
            return FALSE;
        }
        return TRUE;
    }
    if (p->set.download_nets[0] != NULL &&
        !imaging_network_allows((const char *const *)p->set.download_nets, req->client)) {
        log_refusal(p, req, path, "not from a download network");
        answer(p, resp, 403, "forbidden: not from a download network\n");
        return FALSE;
    }
    return TRUE;
}

/* ---- the catalog ------------------------------------------------------------------------ */

static void image_json(GString *o, const pb_backend_image *im)
{
    g_string_append(o, "{\"name\":");
    imaging_json_string(o, im->name);
    g_string_append_printf(
        o,
        ",\"disk_size\":%" G_GUINT64_FORMAT ",\"chunks\":%" G_GUINT64_FORMAT
        ",\"data_bytes\":%" G_GUINT64_FORMAT ",\"stored_bytes\":%" G_GUINT64_FORMAT
        ",\"created\":%" G_GINT64_FORMAT ",\"seal\":",
        im->disk_size, im->chunks, im->data_bytes, im->stored_bytes, im->created);
    imaging_json_string(o, im->seal);
    if (im->location != NULL && *im->location) {
        g_string_append(o, ",\"location\":");
        imaging_json_string(o, im->location);
    }
    g_string_append_c(o, '}');
}

static void list_one(void *data, const pb_backend_image *im)
{
    GString *o = data;
    if (o->str[o->len - 1] != '[')
        g_string_append_c(o, ',');
    image_json(o, im);
}

static bool serve_list(Imaging *p, pb_http_response *resp)
{
    g_autoptr(GString) o = g_string_new("{\"images\":[");
    pb_backend_error e = {.struct_size = sizeof(e)};
    guint32 st = p->be->image_list(p->bh, list_one, o, &e);
    if (st != PB_BACKEND_OK)
        return answer(p, resp, 500, "%s\n", e.message);
    g_string_append(o, "]}");
    return answer_json(p, resp, 200, o);
}

static void info_copy(void *data, const pb_backend_image *im)
{
    InfoCopy *c = data;
    c->found = TRUE;
    g_strlcpy(c->seal, im->seal ? im->seal : "", sizeof(c->seal));
    g_strlcpy(c->location, im->location ? im->location : "", sizeof(c->location));
    if (c->json != NULL)
        image_json(c->json, im);
}

static bool append_bytes(void *data, const void *bytes, size_t len)
{
    g_string_append_len(data, bytes, (gssize)len);
    return true;
}

static bool serve_manifest(Imaging *p, const pb_http_request *req, pb_http_response *resp,
                           const ImagingPath *path)
{
    /* The catalog and the manifest (up to MANIFEST_MAX) are read on a worker. */
    Transfer *t = transfer_new(p, req, resp, path);
    Job *j = job_new(t, JOB_MANIFEST);
    j->get = (req->method_id & PB_HTTP_M_GET) != 0;
    j->if_none_match = g_strdup(p->http->header(p->http->ctx, req, "If-None-Match"));
    p->http->suspend(p->http->ctx, resp);
    g_thread_pool_push(p->pool, j, NULL);
    return true;
}

static bool serve_info(Imaging *p, pb_http_response *resp, const ImagingPath *path)
{
    g_autoptr(GString) o = g_string_new(NULL);
    InfoCopy c = {.json = o};
    pb_backend_error e = {.struct_size = sizeof(e)};
    guint32 st = p->be->image_info(p->bh, path->name, info_copy, &c, &e);
    if (st != PB_BACKEND_OK)
        return answer(p, resp, status_http(st), "%s\n", e.message);
    return answer_json(p, resp, 200, o);
}

static bool serve_delete(Imaging *p, const pb_http_request *req, pb_http_response *resp,
                         const ImagingPath *path)
{
    pb_backend_error e = {.struct_size = sizeof(e)};
    guint32 st = p->be->image_delete(p->bh, path->name, &e);
    log_event(p, req->client, "delete", path->name, st == PB_BACKEND_OK ? "ok" : "failed",
              st == PB_BACKEND_OK ? "deleted" : e.message);
    if (st != PB_BACKEND_OK)
        return answer(p, resp, status_http(st), "%s\n", e.message);
    p->host->log(p->inst, PB_LOG_TRANSACTION, "%s: image %s deleted", req->client, path->name);
    return p->http->respond(p->http->ctx, resp, 204, NULL, NULL, 0);
}

/* ---- chunks ----------------------------------------------------------------------------- */

static bool serve_chunk_get(Imaging *p, const pb_http_request *req, pb_http_response *resp,
                            const ImagingPath *path)
{
    Transfer *t = transfer_new(p, req, resp, path);
    if (!transfer_admit(p, t) || !io_reserve(p, t, IO_BLOCK))
        return true;
    /* Opened (and, for a whole chunk, its first block read) on an I/O worker; the answer
     * starts from finish_open(). */
    Job *j = job_new(t, JOB_CHUNK_OPEN);
    j->prefetch =
        (req->method_id & PB_HTTP_M_GET) && p->http->header(p->http->ctx, req, "Range") == NULL;
    p->http->suspend(p->http->ctx, resp);
    g_thread_pool_push(p->io, j, NULL);
    return true;
}

static bool chunk_body(void *handle, const pb_http_request *req, pb_http_response *resp,
                       const void *data, size_t len)
{
    Transfer *t = handle;
    Imaging *p = t->p;
    if (len > 0) {
        t->received += len;
        if (t->write_status != PB_BACKEND_OK)
            return true; /* drained: the answer goes out at the end */
        /* Bounded: a full block goes to a writer; with one already writing, intake stops
         * (suspend) until it is done, so the fill holds a block and one piece at most. */
        g_byte_array_append(t->fill, data, (guint)len);
        if (t->fill->len >= IO_BLOCK) {
            if (!t->busy)
                write_start(p, t);
            else if (!t->stalled) {
                t->stalled = TRUE;
                p->http->suspend(p->http->ctx, resp);
            }
        }
        return true;
    }
    t->body_ended = TRUE;
    if (t->write_status != PB_BACKEND_OK)
        return true; /* answered already (stored already, or a write failed) */
    if (t->busy)
        p->http->suspend(p->http->ctx, resp); /* the commit follows the write in flight */
    else
        run_job(p, t, JOB_CHUNK_COMMIT);
    return true;
}

static bool serve_chunk_put(Imaging *p, const pb_http_request *req, pb_http_response *resp,
                            const ImagingPath *path)
{
    const pb_http_service *h = p->http;
    const char *codec_s = h->header(h->ctx, req, "X-Preboot-Codec");
    const char *len_s = h->header(h->ctx, req, "X-Preboot-Length");
    PbCodec codec = PB_CODEC_NONE;
    guint64 length = 0;
    if ((codec_s != NULL && !pb_codec_parse(codec_s, &codec)) || len_s == NULL ||
        !g_ascii_string_to_unsigned(len_s, 10, 1, PB_CHUNK_SIZE_MAX, &length, NULL))
        return answer(p, resp, 400,
                      "X-Preboot-Codec (zstd or none) and X-Preboot-Length (1-%u) are needed\n",
                      PB_CHUNK_SIZE_MAX);
    guint64 stored = req->content_length;
    if (stored != PB_HTTP_LENGTH_UNKNOWN && stored > ZSTD_compressBound(length))
        return answer(p, resp, 413,
                      "%" G_GUINT64_FORMAT " bytes for a chunk of %" G_GUINT64_FORMAT "\n", stored,
                      length);
    Transfer *t = transfer_new(p, req, resp, path);
    if (!transfer_admit(p, t) ||
        !io_reserve(p, t, stored == PB_HTTP_LENGTH_UNKNOWN ? IO_BLOCK : stored))
        return true;
    t->fill = g_byte_array_sized_new((guint)MIN(stored, (guint64)IO_BLOCK));
    t->codec = codec == PB_CODEC_ZSTD ? PB_BACKEND_CODEC_ZSTD : PB_BACKEND_CODEC_NONE;
    t->length = length;
    t->stored = stored == PB_HTTP_LENGTH_UNKNOWN ? UINT64_MAX : stored;
    /* The chunk is begun (is it stored already? its temporary file) by the worker that
     * writes its first block, not here on the loop. */
    return h->receive_body(h->ctx, resp, chunk_body, t);
}

/* ---- buffered bodies: manifests, missing lists, result reports -------------------------- */

static void handle_result(Imaging *p, Transfer *t);

static bool buffered_body(void *handle, const pb_http_request *req, pb_http_response *resp,
                          const void *data, size_t len)
{
    Transfer *t = handle;
    Imaging *p = t->p;
    if (len > 0) {
        if (t->body->len + len > t->body_max)
            return false; /* a chunked body past the limit: cut */
        g_string_append_len(t->body, data, (gssize)len);
        return true;
    }
    switch (t->path.ep) {
    case IMAGING_EP_IMAGE:
        run_job(p, t, JOB_IMAGE_COMMIT);
        break;
    case IMAGING_EP_MISSING:
        run_job(p, t, JOB_MISSING);
        break;
    default:
        handle_result(p, t);
        break;
    }
    return true;
}

static bool take_body(Imaging *p, const pb_http_request *req, pb_http_response *resp,
                      const ImagingPath *path, gsize max, gboolean slot)
{
    if (req->content_length != PB_HTTP_LENGTH_UNKNOWN && req->content_length > max)
        return answer(p, resp, 413, "body too large (at most %" G_GSIZE_FORMAT " bytes)\n", max);
    Transfer *t = transfer_new(p, req, resp, path);
    if (slot && !transfer_admit(p, t))
        return true;
    if (path->ep == IMAGING_EP_IMAGE) {
        const char *inm = p->http->header(p->http->ctx, req, "If-None-Match");
        t->create_only = inm != NULL && strcmp(inm, "*") == 0;
    }
    /* The whole announced body (or the most it may be) is reserved before any of it is
     * read, so that many clients trickling bodies cannot together hold more. */
    gsize want = req->content_length != PB_HTTP_LENGTH_UNKNOWN ? (gsize)req->content_length : max;
    if (p->buffered + want > BUFFERED_MAX) {
        p->host->counter_add(p->c.busy, 1);
        p->http->add_header(p->http->ctx, resp, "Retry-After", "5");
        return answer(p, resp, 503, "busy: too many request bodies at once\n");
    }
    p->buffered += want;
    t->reserved = want;
    t->body_max = max;
    t->body = g_string_sized_new(
        req->content_length != PB_HTTP_LENGTH_UNKNOWN ? MIN(req->content_length, max) + 1 : 4096);
    return p->http->receive_body(p->http->ctx, resp, buffered_body, t);
}

/* ---- work and results ------------------------------------------------------------------- */

static const pb_policy_service *policy(Imaging *p)
{
    return p->host->service_lookup(p->inst, PB_POLICY_SERVICE, PB_POLICY_SERVICE_VERSION, NULL);
}

static void device_request(pb_policy_request *r, const char *mac, const char *uuid,
                           const char *serial, const char *client)
{
    memset(r, 0, sizeof(*r));
    r->struct_size = sizeof(*r);
    if (mac != NULL && imaging_mac_parse(mac, r->mac))
        r->mac_len = 6;
    if (uuid != NULL && imaging_uuid_parse(uuid, r->uuid))
        r->has_uuid = 1;
    r->serial = serial != NULL && *serial ? serial : NULL;
    r->client_ip = client;
}

static void work_id(const pb_policy_decision *d, char out[33])
{
    g_autofree char *key =
        g_strdup_printf("%s|%u|%s|%s", d->device_id, d->work, d->work_arg, d->rule);
    guint8 h[PB_HASH_LEN];
    char hex[PB_HASH_HEX_LEN + 1];
    pb_sha256(key, strlen(key), h);
    pb_hash_to_hex(h, hex);
    g_strlcpy(out, hex, 33);
}

static const char *work_action(guint32 work)
{
    switch (work) {
    case PB_POLICY_WORK_CAPTURE:
        return "capture";
    case PB_POLICY_WORK_RESTORE:
        return "restore";
    case PB_POLICY_WORK_MULTICAST:
        return "session";
    case PB_POLICY_WORK_SCRIPT:
        return "maintenance";
    default:
        return "none";
    }
}

static bool serve_work(Imaging *p, const pb_http_request *req, pb_http_response *resp)
{
    const pb_http_service *h = p->http;
    const char *mac = h->query(h->ctx, req, "mac"), *uuid = h->query(h->ctx, req, "uuid"),
               *serial = h->query(h->ctx, req, "serial");
    pb_policy_request r;
    device_request(&r, mac, uuid, serial, req->client);
    if (r.mac_len == 0 && !r.has_uuid && r.serial == NULL)
        return answer(p, resp, 400, "work needs mac=, uuid= or serial=\n");
    r.flags = PB_POLICY_REQ_WORK; /* the policy prepares the work (starts its session) */
    g_autoptr(GString) o = g_string_new("{\"action\":");
    const pb_policy_service *pol = policy(p);
    pb_policy_decision d = {.struct_size = sizeof(d)};
    /* A dry run: one-shot work is used up by the report of its result, not by asking. */
    if (pol == NULL || !pol->decide(pol->ctx, &r, &d) || d.action != PB_POLICY_BOOT) {
        d.work = PB_POLICY_WORK_LOCAL;
        d.work_arg[0] = '\0';
    }
    const char *action = work_action(d.work);
    char id[33] = "";
    if (strcmp(action, "none") != 0)
        work_id(&d, id);
    imaging_json_string(o, action);
    g_string_append(o, ",\"image\":");
    imaging_json_string(
        o, d.work == PB_POLICY_WORK_CAPTURE || d.work == PB_POLICY_WORK_RESTORE ? d.work_arg : "");
    g_string_append(o, ",\"session\":");
    imaging_json_string(o, d.work == PB_POLICY_WORK_MULTICAST ? d.work_arg : "");
    g_string_append(o, ",\"work_id\":");
    imaging_json_string(o, id);
    /* A credential for this work only (imaging-cred.h), where it can be used at all. */
    ImagingCred c = {.kind = d.work == PB_POLICY_WORK_CAPTURE     ? IMAGING_CRED_CAPTURE
                             : d.work == PB_POLICY_WORK_RESTORE   ? IMAGING_CRED_RESTORE
                             : d.work == PB_POLICY_WORK_MULTICAST ? IMAGING_CRED_SESSION
                                                                  : 0,
                     .issued_ms = now_ms(),
                     .expires = now_s() + p->set.cred_lifetime};
    g_strlcpy(c.work_id, id, sizeof(c.work_id));
    g_strlcpy(c.image, d.work_arg, sizeof(c.image));
    memcpy(c.mac, r.mac, sizeof(c.mac));
    g_autofree char *cred =
        c.kind != 0 && r.mac_len == 6 && p->cred_ready &&
                imaging_network_allows((const char *const *)p->set.upload_nets, req->client)
            ? imaging_cred_mint(p->cred_key, &c)
            : NULL;
    if (cred != NULL) {
        g_string_append(o, ",\"credential\":");
        imaging_json_string(o, cred);
        g_string_append_printf(o, ",\"credential_expires\":%" G_GINT64_FORMAT, c.expires);
    }
    g_string_append_c(o, '}');
    pb_backend_result lr = {.struct_size = sizeof(lr),
                            .source = req->client,
                            .mac = mac,
                            .uuid = uuid,
                            .serial = serial,
                            .type = "work",
                            .image = d.work_arg,
                            .result = action,
                            .message = pol == NULL ? "no policy service" : d.rule,
                            .work_id = id};
    log_result(p, &lr);
    p->host->log(p->inst, PB_LOG_TRANSACTION, "%s: work for %s: %s %s", req->client,
                 d.device_id[0] ? d.device_id : (mac ? mac : "?"), action, d.work_arg);
    h->add_header(h->ctx, resp, "Cache-Control", "no-store");
    return answer_json(p, resp, 200, o);
}

static const char *jget(GHashTable *t, const char *k)
{
    return g_hash_table_lookup(t, k);
}

static guint64 jnum(GHashTable *t, const char *k)
{
    const char *v = jget(t, k);
    return v ? g_ascii_strtoull(v, NULL, 10) : 0;
}

static void handle_result(Imaging *p, Transfer *t)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(GHashTable) j = imaging_json_parse_flat(t->body->str, t->body->len, &e);
    if (j == NULL) {
        answer(p, t->resp, 400, "%s\n", e->message);
        return;
    }
    const char *type = jget(j, "type"), *result = jget(j, "result"), *image = jget(j, "image");
    static const char *const types[] = {"capture", "restore", "session", "verify", NULL};
    if (type == NULL || !g_strv_contains(types, type) || result == NULL ||
        (strcmp(result, "ok") != 0 && strcmp(result, "failed") != 0)) {
        answer(p, t->resp, 400,
               "a report needs type (capture, restore, session, verify) and result (ok, failed)\n");
        return;
    }
    if (image != NULL && *image != '\0' && !pb_name_valid(image)) {
        answer(p, t->resp, 400, "invalid image name\n");
        return;
    }
    const char *mac = jget(j, "mac"), *uuid = jget(j, "uuid"), *serial = jget(j, "serial"),
               *wid = jget(j, "work_id");
    /* A device credential reports its own work once: that device, image, kind and work. */
    ImagingCred dc;
    const char *tok = imaging_bearer_token(p->http->header(p->http->ctx, t->req, "Authorization"));
    if (imaging_cred_is(tok)) {
        guint8 m[6];
        /* A session's report may name the image it laid down: its session is the work. */
        if (cred_of(p, t->req, &dc) == NULL || mac == NULL || !imaging_mac_parse(mac, m) ||
            memcmp(m, dc.mac, 6) != 0 || strcmp(type, imaging_cred_kind_name(dc.kind)) != 0 ||
            (dc.kind != IMAGING_CRED_SESSION && (image == NULL || strcmp(image, dc.image) != 0)) ||
            wid == NULL || strcmp(wid, dc.work_id) != 0) {
            log_refusal(p, t->req, &t->path, "a report outside its device credential's work");
            answer(p, t->resp, 403, "forbidden: the report is not of the credential's work\n");
            return;
        }
        cred_spend(p, t->req, CRED_REPORTED);
    }
    pb_backend_result r = {.struct_size = sizeof(r),
                           .source = t->client,
                           .mac = mac,
                           .uuid = uuid,
                           .serial = serial,
                           .type = type,
                           .image = image,
                           .result = result,
                           .message = jget(j, "message"),
                           .bytes_written = jnum(j, "bytes_written"),
                           .bytes_transferred = jnum(j, "bytes_transferred"),
                           .duration_ms = jnum(j, "duration_ms"),
                           .work_id = wid};
    log_result(p, &r);
    gboolean ok = strcmp(result, "ok") == 0;
    if (ok && strcmp(type, "restore") == 0 && image != NULL) {
        /* D.11.2: only images retrieved from this server count */
        pb_backend_error be = {.struct_size = sizeof(be)};
        InfoCopy c = {0};
        /* ... and once: not again when its download was counted when it completed. */
        if (p->be->image_info(p->bh, image, info_copy, &c, &be) == PB_BACKEND_OK &&
            c.location[0] == '\0' &&
            imaging_sent_report(p->sent, t->client, image, (gint64)p->host->monotonic_us()))
            stat_bump(p, ST_SENT);
    }
    /* The work is done (or failed): use up what the policy handed out, then tell it. */
    const pb_policy_service *pol = policy(p);
    pb_policy_request dev;
    device_request(&dev, mac, uuid, serial, t->client);
    if (pol != NULL && (dev.mac_len || dev.has_uuid || dev.serial)) {
        /* Only a success uses the work up: a failed job is tried again at the next boot,
         * as the policy's FAILED event clears nothing. */
        if (ok && wid != NULL && *wid != '\0') {
            pb_policy_decision d = {.struct_size = sizeof(d)};
            char now_id[33] = "";
            if (pol->decide(pol->ctx, &dev, &d) && d.work != PB_POLICY_WORK_LOCAL)
                work_id(&d, now_id);
            if (strcmp(now_id, wid) == 0) {
                dev.flags = PB_POLICY_REQ_CONSUME;
                pol->decide(pol->ctx, &dev, &d);
                dev.flags = 0;
                /* The work is done: the credentials handed out for it are spent too. */
                if (dev.mac_len == 6)
                    cred_note(p, dev.mac, wid, CRED_REPORTED);
            }
        }
        /* A session's receiver laid the session's image down: a restore to the policy. */
        guint32 ev = !ok ? PB_POLICY_EVENT_FAILED
                     : strcmp(type, "restore") == 0 || strcmp(type, "session") == 0
                         ? PB_POLICY_EVENT_RESTORED
                     : strcmp(type, "capture") == 0 ? PB_POLICY_EVENT_CAPTURED
                                                    : 0;
        if (ev != 0)
            pol->report(pol->ctx, &dev, ev, image);
    }
    p->host->log(p->inst, ok ? PB_LOG_TRANSACTION : PB_LOG_WARNING, "%s: %s %s: %s%s%s", t->client,
                 type, image ? image : "", result, jget(j, "message") ? ": " : "",
                 jget(j, "message") ? jget(j, "message") : "");
    p->http->respond(p->http->ctx, t->resp, 204, NULL, NULL, 0);
}

/* ---- log and stats ---------------------------------------------------------------------- */

static void result_json(void *data, const pb_backend_result *r)
{
    GString *o = data;
    if (o->str[o->len - 1] != '[')
        g_string_append_c(o, ',');
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(r->time);
    g_autofree char *when = dt ? g_date_time_format_iso8601(dt) : g_strdup("");
    g_string_append_printf(o, "{\"time\":%" G_GINT64_FORMAT ",\"date\":", r->time);
    imaging_json_string(o, when);
    const char *keys[] = {"source", "mac",    "uuid",    "serial", "type",
                          "image",  "result", "message", "work_id"};
    const char *vals[] = {r->source, r->mac,    r->uuid,    r->serial, r->type,
                          r->image,  r->result, r->message, r->work_id};
    for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
        g_string_append_printf(o, ",\"%s\":", keys[i]);
        imaging_json_string(o, vals[i]);
    }
    g_string_append_printf(o,
                           ",\"bytes_written\":%" G_GUINT64_FORMAT
                           ",\"bytes_transferred\":%" G_GUINT64_FORMAT
                           ",\"duration_ms\":%" G_GUINT64_FORMAT "}",
                           r->bytes_written, r->bytes_transferred, r->duration_ms);
}

static gboolean log_json(Imaging *p, guint limit, GString *o, char *why, gsize why_len)
{
    g_string_append(o, "{\"log\":[");
    pb_backend_error e = {.struct_size = sizeof(e)};
    if (p->be->result_list(p->bh, limit, result_json, o, &e) != PB_BACKEND_OK) {
        g_strlcpy(why, e.message, why_len);
        return FALSE;
    }
    g_string_append(o, "]}");
    return TRUE;
}

static void stats_json(Imaging *p, GString *o)
{
    g_string_append_printf(
        o,
        "{\"pxe_requests\":%" G_GINT64_FORMAT ",\"images_sent\":%" G_GINT64_FORMAT
        ",\"images_received\":%" G_GINT64_FORMAT ",\"started\":%" G_GINT64_FORMAT "}",
        p->stats[ST_PXE], p->stats[ST_SENT], p->stats[ST_RECEIVED], p->started);
}

/* ---- the route -------------------------------------------------------------------------- */

static bool serve(void *data, const pb_http_request *req, pb_http_response *resp)
{
    Imaging *p = data;
    if (p->http == NULL || p->be == NULL)
        return false;
    ImagingPath path;
    ImagingEndpoint ep = imaging_path_parse(req->path, &path);
    guint32 m = req->method_id;
    gboolean get = (m & (PB_HTTP_M_GET | PB_HTTP_M_HEAD)) != 0;
    /* D.11.2: every request for work or an image counts, failed and refused ones too */
    if ((ep == IMAGING_EP_WORK || ep == IMAGING_EP_CHUNK || ep == IMAGING_EP_RESULTS ||
         (ep == IMAGING_EP_IMAGE && (m & (PB_HTTP_M_GET | PB_HTTP_M_PUT)))))
        stat_bump(p, ST_PXE);
    if (p->host->log_enabled(p->inst, PB_LOG_REQUEST))
        p->host->log(p->inst, PB_LOG_REQUEST, "%s %s %s", req->client, req->method, req->path);
    if ((p->gc_wanted || p->gc_running) &&
        (ep == IMAGING_EP_MISSING ||
         ((ep == IMAGING_EP_CHUNK || ep == IMAGING_EP_IMAGE) && (m & PB_HTTP_M_PUT)))) {
        /* A gc decides from the catalog and the held set as they are when it starts. */
        p->http->add_header(p->http->ctx, resp, "Retry-After", "5");
        return answer(p, resp, 503, "garbage collection running; try again shortly\n");
    }
    switch (ep) {
    case IMAGING_EP_IMAGES:
        if (!get)
            break;
        return !allowed(p, req, resp, &path, FALSE) || serve_list(p, resp);
    case IMAGING_EP_IMAGE:
        if (get)
            return !allowed(p, req, resp, &path, FALSE) || serve_manifest(p, req, resp, &path);
        if (m & PB_HTTP_M_PUT)
            return !allowed(p, req, resp, &path, TRUE) ||
                   take_body(p, req, resp, &path, MANIFEST_MAX, TRUE);
        if (m & PB_HTTP_M_DELETE)
            return !allowed(p, req, resp, &path, TRUE) || serve_delete(p, req, resp, &path);
        break;
    case IMAGING_EP_INFO:
        if (!get)
            break;
        return !allowed(p, req, resp, &path, FALSE) || serve_info(p, resp, &path);
    case IMAGING_EP_CHUNK:
        if (get)
            return !allowed(p, req, resp, &path, FALSE) || serve_chunk_get(p, req, resp, &path);
        if (m & PB_HTTP_M_PUT)
            return !allowed(p, req, resp, &path, TRUE) || serve_chunk_put(p, req, resp, &path);
        break;
    case IMAGING_EP_MISSING:
        if (!(m & PB_HTTP_M_POST))
            break;
        return !allowed(p, req, resp, &path, FALSE) ||
               take_body(p, req, resp, &path, MISSING_BODY_MAX, TRUE);
    case IMAGING_EP_WORK:
        if (!get)
            break;
        return !allowed(p, req, resp, &path, FALSE) || serve_work(p, req, resp);
    case IMAGING_EP_RESULTS:
        if (!(m & PB_HTTP_M_POST))
            break;
        return !allowed(p, req, resp, &path, TRUE) ||
               take_body(p, req, resp, &path, RESULT_BODY_MAX, FALSE);
    case IMAGING_EP_LOG: {
        if (!get)
            break;
        if (!allowed(p, req, resp, &path, FALSE))
            return true;
        const char *ls = p->http->query(p->http->ctx, req, "limit");
        guint64 limit = 100;
        if (ls != NULL && !g_ascii_string_to_unsigned(ls, 10, 1, LOG_LIMIT_MAX, &limit, NULL))
            return answer(p, resp, 400, "limit: 1-%d\n", LOG_LIMIT_MAX);
        g_autoptr(GString) o = g_string_new(NULL);
        char why[256];
        if (!log_json(p, (guint)limit, o, why, sizeof(why)))
            return answer(p, resp, 500, "%s\n", why);
        return answer_json(p, resp, 200, o);
    }
    case IMAGING_EP_STATS: {
        if (!get)
            break;
        if (!allowed(p, req, resp, &path, FALSE))
            return true;
        g_autoptr(GString) o = g_string_new(NULL);
        stats_json(p, o);
        return answer_json(p, resp, 200, o);
    }
    case IMAGING_EP_NONE:
    default:
        return answer(p, resp, 404, "not found (names: [A-Za-z0-9._-]; hashes: 64 hex digits)\n");
    }
    return answer(p, resp, 405, "method not allowed here\n");
}

/* ---- hooking up to http whenever it runs ------------------------------------------------ */

static void route_on(Imaging *p)
{
    const pb_http_service *h = p->http;
    if (h == NULL || p->routed)
        return;
    if (!PB_HAS_FIELD(pb_http_service, h, respond_range) || h->route_add_ex == NULL) {
        p->host->log(p->inst, PB_LOG_CRITICAL,
                     "the HTTP listener is older than preboot.http version 3: imaging API off");
        return;
    }
    const pb_http_route_options o = {
        .struct_size = sizeof(o),
        .methods =
            PB_HTTP_M_GET | PB_HTTP_M_HEAD | PB_HTTP_M_PUT | PB_HTTP_M_POST | PB_HTTP_M_DELETE,
        .max_body = MAX((guint64)MANIFEST_MAX, (guint64)ZSTD_compressBound(PB_CHUNK_SIZE_MAX)),
    };
    p->routed = h->route_add_ex(h->ctx, IMAGING_PREFIX, serve, p, &o);
    /* IPAddress empty: the listener's own address is the one clients reach us at. */
    if (*p->set.ip_address == '\0' && PB_HAS_FIELD(pb_http_service, h, listen_address) &&
        h->listen_address(h->ctx) != NULL && *h->listen_address(h->ctx) != '\0')
        g_strlcpy(p->advertised, h->listen_address(h->ctx), sizeof(p->advertised));
    p->host->log(p->inst, p->routed ? PB_LOG_CRITICAL : PB_LOG_WARNING,
                 p->routed ? "imaging API on the HTTP listener at " IMAGING_PREFIX " (port %u)"
                           : "cannot add the route " IMAGING_PREFIX " (taken?) (port %u)",
                 PB_HAS_FIELD(pb_http_service, h, listen_port) ? h->listen_port(h->ctx) : 0);
}

/* Once our route is removed the listener has dropped our requests (answering the waiting
 * ones) and calls none of our callbacks again, on_done included: what they held is ours to
 * free, at once or, for a request a worker still handles, when the worker is done. */
static void route_off(Imaging *p)
{
    if (p->http != NULL && p->routed)
        p->http->route_remove(p->http->ctx, IMAGING_PREFIX, serve, p);
    p->routed = FALSE;
    GHashTableIter it;
    gpointer key;
    g_autoptr(GPtrArray) idle = g_ptr_array_new();
    g_hash_table_iter_init(&it, p->transfers);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        Transfer *t = key;
        t->orphan = TRUE;
        if (!t->busy)
            g_ptr_array_add(idle, t);
    }
    for (guint i = 0; i < idle->len; i++)
        transfer_free(idle->pdata[i]);
}

static void on_http(void *data, unsigned event, const char *name, uint32_t version,
                    const void *iface, uint64_t generation)
{
    Imaging *p = data;
    route_off(p);
    p->http = event == PB_SERVICE_APPEARED ? iface : NULL;
    p->host->log(p->inst, PB_LOG_REQUEST,
                 "service %s version %u %s (generation %" G_GUINT64_FORMAT ")", name, version,
                 event == PB_SERVICE_APPEARED ? "appeared" : "withdrawn", (guint64)generation);
    route_on(p);
}

/* ---- prebootctl imaging ----------------------------------------------------------------- */

static const char usage[] = "imaging list | info NAME | delete NAME | log [--json] [N] | stats "
                            "[--json] | replicate [NAME|status] | gc | refer NAME SERVER";

typedef struct {
    const pb_host *h;
    pb_reply *reply;
} Out;

static void show_image(void *data, const pb_backend_image *im)
{
    Out *o = data;
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(im->created);
    g_autofree char *when = dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S") : g_strdup("?");
    o->h->reply(
        o->reply,
        "%-32s disk %" G_GUINT64_FORMAT " MiB, %" G_GUINT64_FORMAT
        " chunks, data %" G_GUINT64_FORMAT " MiB, stored %" G_GUINT64_FORMAT " MiB, %s%s%s\n",
        im->name, im->disk_size >> 20, im->chunks, im->data_bytes >> 20, im->stored_bytes >> 20,
        when, im->location && *im->location ? ", on " : "", im->location ? im->location : "");
}

static void show_info(void *data, const pb_backend_image *im)
{
    Out *o = data;
    const pb_host *h = o->h;
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(im->created);
    g_autofree char *when = dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S") : g_strdup("?");
    h->reply(o->reply, "name:         %s\n", im->name);
    h->reply(o->reply, "disk size:    %" G_GUINT64_FORMAT " bytes\n", im->disk_size);
    h->reply(o->reply, "chunks:       %" G_GUINT64_FORMAT "\n", im->chunks);
    h->reply(o->reply, "data bytes:   %" G_GUINT64_FORMAT "\n", im->data_bytes);
    h->reply(o->reply, "stored bytes: %" G_GUINT64_FORMAT "\n", im->stored_bytes);
    h->reply(o->reply, "created:      %s\n", when);
    h->reply(o->reply, "seal:         %s\n", im->seal);
    h->reply(o->reply, "location:     %s\n", im->location && *im->location ? im->location : "here");
}

static void show_result(void *data, const pb_backend_result *r)
{
    Out *o = data;
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(r->time);
    g_autofree char *when = dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S") : g_strdup("?");
    const char *who = r->mac && *r->mac ? r->mac : (r->serial && *r->serial ? r->serial : "");
    o->h->reply(o->reply, "%s %-15s %-17s %-8s %-24s %-7s %s\n", when, r->source ? r->source : "",
                who, r->type ? r->type : "", r->image && *r->image ? r->image : "-",
                r->result ? r->result : "", r->message ? r->message : "");
}

static bool take_bytes(void *data, const void *bytes, size_t len)
{
    g_string_append_len(data, bytes, (gssize)len);
    return true;
}

static void take_name(void *data, const pb_backend_image *im)
{
    g_ptr_array_add(data, g_strdup(im->name));
}

/* prebootctl imaging refer NAME SERVER: the catalog places NAME on another imaging server
 * (HOST[:PORT] or an http(s):// URL without a path), and downloads of it are referred there
 * (307). An image stored here keeps its entry (its totals, its manifest), moved: its chunks
 * are no longer kept here by gc. A name not here gets an entry of its own, with no totals.
 * `imaging delete NAME` removes the referral. */
typedef struct {
    pb_backend_image im;
    char seal[PB_HASH_HEX_LEN + 1];
} ImageCopy;

static void image_copy(void *data, const pb_backend_image *im)
{
    ImageCopy *c = data;
    c->im.disk_size = im->disk_size;
    c->im.chunks = im->chunks;
    c->im.data_bytes = im->data_bytes;
    c->im.stored_bytes = im->stored_bytes;
    c->im.created = im->created;
    g_strlcpy(c->seal, im->seal ? im->seal : "", sizeof(c->seal));
}

static bool cmd_refer(Imaging *p, const char *name, const char *server, pb_reply *reply)
{
    const pb_host *h = p->host;
    if (!imaging_location_valid(server)) {
        h->reply(reply, "'%s' is no imaging server: HOST[:PORT] or http(s)://HOST[:PORT]\n",
                 server);
        return false;
    }
    pb_backend_error e = {.struct_size = sizeof(e)};
    ImageCopy c = {.im = {.struct_size = sizeof(c.im)}};
    g_autoptr(GString) text = g_string_new(NULL);
    guint32 st = p->be->image_info(p->bh, name, image_copy, &c, &e);
    if (st == PB_BACKEND_OK) {
        if (p->be->image_manifest(p->bh, name, append_bytes, text, &e) != PB_BACKEND_OK)
            goto failed;
    } else if (st == PB_BACKEND_NOT_FOUND) {
        /* No manifest here: an empty one under a seal of its own, never a real image's. */
        g_autofree char *what = g_strdup_printf("preboot referral %s %s", name, server);
        guint8 hash[PB_HASH_LEN];
        pb_sha256(what, strlen(what), hash);
        pb_hash_to_hex(hash, c.seal);
    } else
        goto failed;
    c.im.name = name;
    c.im.seal = c.seal;
    c.im.location = server;
    bool replaced = false;
    /* No DATA hashes: the chunks are on the other server, not checked for here. */
    if (p->be->image_commit(p->bh, &c.im, text->str, text->len, NULL, 0, 0, NULL, NULL, &replaced,
                            &e) != PB_BACKEND_OK)
        goto failed;
    log_event(p, "prebootctl", "refer", name, "ok", server);
    h->log(p->inst, PB_LOG_TRANSACTION, "image %s referred to %s (prebootctl)", name, server);
    h->reply(reply, "image %s is on %s: downloads of it are referred there%s\n", name, server,
             replaced ? " (its chunks here go at the next gc)" : "");
    return true;
failed:
    h->reply(reply, "%s\n", e.message);
    return false;
}

/* prebootctl imaging replicate [NAME]: opens every DATA chunk of the image(s) this server
 * does not hold (chunk_stat), which a shared backend (libpreboot-pg) pulls from a server holding
 * it, verifies and keeps. Nothing is removed anywhere. It runs on a thread of its own (backend
 * calls are safe from any thread, doc/backend-abi.md; the host's are not, so it writes only
 * the result log and its status line): each image's result, with how many chunks came and
 * whether any failed, lands in the result log as type "replicate". */
typedef struct {
    Imaging *p;
    char *only;
} Replication;

static void repl_status(Imaging *p, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void repl_status(Imaging *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_mutex_lock(&p->repl_lock);
    g_vsnprintf(p->repl_status, sizeof(p->repl_status), fmt, ap);
    g_mutex_unlock(&p->repl_lock);
    va_end(ap);
}

/* The result log from the replication's thread: the backend's call is safe there, the host's
 * log (log_result's warning) is not, so a failure to log is only counted. */
static void repl_log(Imaging *p, const char *image, const char *result, const char *message)
{
    pb_backend_result r = {.struct_size = sizeof(r),
                           .source = "prebootctl",
                           .type = "replicate",
                           .image = image,
                           .result = result,
                           .message = message};
    pb_backend_error e = {.struct_size = sizeof(e)};
    if (p->be->result_add(p->bh, &r, &e) != PB_BACKEND_OK)
        g_atomic_int_inc(&p->repl_unlogged);
}

/* One image: how many of its distinct data chunks were missing here, and fetched. */
static gboolean replicate_image(Imaging *p, const char *name)
{
    pb_backend_error e = {.struct_size = sizeof(e)};
    g_autoptr(GString) text = g_string_new(NULL);
    g_autoptr(GError) ge = NULL;
    if (p->be->image_manifest(p->bh, name, take_bytes, text, &e) != PB_BACKEND_OK) {
        repl_log(p, name, "failed", e.message);
        return FALSE;
    }
    g_autoptr(PbManifest) m = pb_manifest_parse(text->str, text->len, &ge);
    if (m == NULL) {
        repl_log(p, name, "failed", ge->message);
        return FALSE;
    }
    /* In the manifest's order: a shared backend reads ahead in that order. */
    g_autoptr(GByteArray) hashes = pb_manifest_data_hashes(m, FALSE);
    guint n_hashes = hashes->len / PB_HASH_LEN;
    guint want = 0, got = 0, failed = 0;
    g_autofree char *first_error = NULL;
    for (guint c = 0; c < n_hashes && !g_atomic_int_get(&p->repl_cancel); c++) {
        void *reader = NULL;
        pb_backend_chunk_info info = {.struct_size = sizeof(info)};
        const uint8_t *hash = (const uint8_t *)hashes->data + (gsize)c * PB_HASH_LEN;
        repl_status(p, "replicating %s: chunk %u of %u, %u fetched", name, c + 1, n_hashes, got);
        /* chunk_stat: held on this server (chunk_missing of a shared backend answers for
         * every server) */
        if (p->be->chunk_stat(p->bh, hash, &info, &e) == PB_BACKEND_OK)
            continue;
        want++;
        if (p->be->chunk_open(p->bh, hash, &info, &reader, &e) == PB_BACKEND_OK) {
            p->be->chunk_close(reader);
            got++;
        } else {
            if (first_error == NULL) {
                char hex[PB_HASH_HEX_LEN + 1];
                pb_hash_to_hex(hash, hex);
                first_error = g_strdup_printf("; chunk %s: %s", hex, e.message);
            }
            failed++;
        }
    }
    gboolean cancelled = g_atomic_int_get(&p->repl_cancel);
    g_autofree char *msg = g_strdup_printf(
        "%u chunk(s), %u missing here, %u fetched and verified%s%s%s", n_hashes, want, got,
        failed ? ", SOME FAILED" : "", cancelled ? ", stopped with the daemon" : "",
        first_error ? first_error : "");
    repl_log(p, name, failed || cancelled ? "failed" : "ok", msg);
    return failed == 0 && !cancelled;
}

static gpointer replicate_thread(gpointer data)
{
    Replication *r = data;
    Imaging *p = r->p;
    pb_backend_error e = {.struct_size = sizeof(e)};
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    guint failed = 0;
    if (r->only != NULL)
        g_ptr_array_add(names, g_strdup(r->only));
    else if (p->be->image_list(p->bh, take_name, names, &e) != PB_BACKEND_OK) {
        repl_log(p, "", "failed", e.message);
        failed++;
    }
    for (guint i = 0; i < names->len && !g_atomic_int_get(&p->repl_cancel); i++)
        if (!replicate_image(p, names->pdata[i]))
            failed++;
    guint unlogged = (guint)g_atomic_int_get(&p->repl_unlogged);
    repl_status(p, "last replication (%s): %u image(s), %s; see prebootctl imaging log%s",
                r->only ? r->only : "every image", names->len,
                failed ? "SOME FAILED" : "all complete",
                unlogged ? " (some results could not be logged)" : "");
    g_free(r->only);
    g_free(r);
    g_atomic_int_set(&p->repl_done, 1);
    return NULL;
}

/* Joins a replication that has ended (or, stopping, ends it first). */
static void replicate_reap(Imaging *p, gboolean stop)
{
    if (p->repl == NULL)
        return;
    if (stop)
        g_atomic_int_set(&p->repl_cancel, 1);
    else if (!g_atomic_int_get(&p->repl_done))
        return;
    g_thread_join(p->repl);
    p->repl = NULL;
}

static bool cmd_replicate(Imaging *p, const char *only, pb_reply *reply)
{
    const pb_host *h = p->host;
    replicate_reap(p, FALSE);
    if (only != NULL && strcmp(only, "status") == 0) {
        g_mutex_lock(&p->repl_lock);
        h->reply(reply, "%s\n", p->repl_status[0] ? p->repl_status : "no replication yet");
        g_mutex_unlock(&p->repl_lock);
        return true;
    }
    if (p->repl != NULL) {
        g_mutex_lock(&p->repl_lock);
        h->reply(reply, "a replication is running (%s): try again when it is done\n",
                 p->repl_status);
        g_mutex_unlock(&p->repl_lock);
        return false;
    }
    if (only != NULL && !pb_name_valid(only)) {
        h->reply(reply, "replicate: not an image name: %s\n", only);
        return false;
    }
    Replication *r = g_new0(Replication, 1);
    r->p = p;
    r->only = g_strdup(only);
    g_atomic_int_set(&p->repl_done, 0);
    g_atomic_int_set(&p->repl_cancel, 0);
    g_atomic_int_set(&p->repl_unlogged, 0);
    repl_status(p, "replicating %s: starting", only ? only : "every image");
    p->repl = g_thread_new("imaging-replicate", replicate_thread, r);
    h->log(p->inst, PB_LOG_TRANSACTION, "replicate %s: started (prebootctl)",
           only ? only : "every image");
    h->reply(reply,
             "replicating %s in the background: `prebootctl imaging replicate status` says how "
             "far; each image's result goes to `prebootctl imaging log` (type replicate)\n",
             only ? only : "every image");
    return true;
}

static bool cmd_imaging(void *self, int argc, const char *const *argv, pb_reply *reply)
{
    Imaging *p = self;
    const pb_host *h = p->host;
    const char *sub = argc > 1 ? argv[1] : "list";
    pb_backend_error e = {.struct_size = sizeof(e)};
    Out o = {h, reply};
    gboolean json = FALSE;
    guint limit = 50;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = TRUE;
        else if (g_ascii_isdigit(argv[i][0]))
            limit = (guint)CLAMP(g_ascii_strtoull(argv[i], NULL, 10), 1, LOG_LIMIT_MAX);
    }
    if (strcmp(sub, "list") == 0) {
        if (json) {
            g_autoptr(GString) s = g_string_new("{\"images\":[");
            if (p->be->image_list(p->bh, list_one, s, &e) != PB_BACKEND_OK)
                goto failed;
            h->reply(reply, "%s]}\n", s->str);
            return true;
        }
        if (p->be->image_list(p->bh, show_image, &o, &e) != PB_BACKEND_OK)
            goto failed;
        return true;
    }
    if ((strcmp(sub, "info") == 0 || strcmp(sub, "delete") == 0) && argc >= 3) {
        if (!pb_name_valid(argv[2])) {
            h->reply(reply, "invalid image name '%s'\n", argv[2]);
            return false;
        }
        if (sub[0] == 'i') {
            if (p->be->image_info(p->bh, argv[2], show_info, &o, &e) != PB_BACKEND_OK)
                goto failed;
            return true;
        }
        if (p->be->image_delete(p->bh, argv[2], &e) != PB_BACKEND_OK)
            goto failed;
        log_event(p, "prebootctl", "delete", argv[2], "ok", "deleted");
        h->log(p->inst, PB_LOG_TRANSACTION, "image %s deleted (prebootctl)", argv[2]);
        h->reply(reply, "image %s deleted (its chunks stay until a garbage collection)\n", argv[2]);
        return true;
    }
    if (strcmp(sub, "log") == 0) {
        if (json) {
            g_autoptr(GString) s = g_string_new(NULL);
            char why[256];
            if (!log_json(p, limit, s, why, sizeof(why))) {
                h->reply(reply, "%s\n", why);
                return false;
            }
            h->reply(reply, "%s\n", s->str);
            return true;
        }
        if (p->be->result_list(p->bh, limit, show_result, &o, &e) != PB_BACKEND_OK)
            goto failed;
        return true;
    }
    if (strcmp(sub, "refer") == 0 && argc >= 4) {
        if (!pb_name_valid(argv[2])) {
            h->reply(reply, "invalid image name '%s'\n", argv[2]);
            return false;
        }
        return cmd_refer(p, argv[2], argv[3], reply);
    }
    if (strcmp(sub, "replicate") == 0) {
        if (argc >= 3 && !pb_name_valid(argv[2])) {
            h->reply(reply, "invalid image name '%s'\n", argv[2]);
            return false;
        }
        return cmd_replicate(p, argc >= 3 ? argv[2] : NULL, reply);
    }
    if (strcmp(sub, "gc") == 0) {
        if (p->be->header.struct_size < offsetof(pb_backend, gc) + sizeof(p->be->gc) ||
            p->be->gc == NULL) {
            h->reply(reply, "the %s backend does not support garbage collection\n",
                     p->be->header.name);
            return false;
        }
        if (p->held_overflow_until > (gint64)h->monotonic_us()) {
            h->reply(reply, "gc not started: more uploads in progress than it can protect; try "
                            "again later\n");
            return false;
        }
        if (p->gc_wanted || p->gc_running) {
            h->reply(reply, "gc already %s\n", p->gc_running ? "running" : "waiting for uploads");
            return true;
        }
        p->gc_wanted = TRUE;
        gc_maybe_start(p);
        h->reply(reply,
                 "gc %s; uploads get 503 until it ends; the result goes to the log "
                 "(prebootctl imaging log)%s%s\n",
                 p->gc_running ? "started" : "waits for uploads in flight",
                 p->gc_last[0] ? "; last: " : "", p->gc_last);
        return true;
    }
    if (strcmp(sub, "stats") == 0) {
        g_autoptr(GString) s = g_string_new(NULL);
        stats_json(p, s);
        h->reply(reply, "%s\n", s->str);
        return true;
    }
    h->reply(reply, "usage: %s\n", usage);
    return false;
failed:
    h->reply(reply, "%s\n", e.message);
    return false;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void backend_log(void *data, int level, const char *message)
{
    Imaging *p = data;
    p->host->log(p->inst, level, "backend: %s", message);
}

/* The backend is closed in stop() (or when start() fails): the host closes an instance's
 * libraries after stop() and before destroy(), so destroy() must not call into it. */
static void backend_close(Imaging *p)
{
    stats_flush(p);
    if (p->bh != NULL)
        p->be->close(p->bh);
    p->bh = NULL;
    if (p->lib != NULL)
        p->host->library_close(p->lib);
    p->lib = NULL;
}

static void imaging_free(Imaging *p)
{
    if (p->transfers != NULL)
        g_hash_table_unref(p->transfers);
    if (p->per_address != NULL)
        g_hash_table_unref(p->per_address);
    imaging_sent_free(p->sent);
    if (p->held != NULL)
        g_hash_table_unref(p->held);
    if (p->cred_works != NULL)
        g_hash_table_unref(p->cred_works);
    memset(p->cred_key, 0, sizeof(p->cred_key));
    g_mutex_clear(&p->done_lock);
    g_mutex_clear(&p->repl_lock);
    settings_clear(&p->set);
    g_free(p);
}

static void *imaging_create(const pb_host *host, pb_instance *inst, const pb_config *cfg,
                            pb_err *err)
{
    if (!PB_HAS_FIELD(pb_host, host, library_open) || host->library_open == NULL ||
        host->service_watch == NULL) {
        host->error(err, "the imaging plugin needs a host of plugin ABI 1.1 or later");
        return NULL;
    }
    g_autofree char *store = NULL;
    Imaging *p = g_new0(Imaging, 1);
    p->host = host;
    p->inst = inst;
    g_mutex_init(&p->done_lock);
    g_mutex_init(&p->repl_lock);
    g_queue_init(&p->done);
    p->transfers = g_hash_table_new(NULL, NULL);
    p->per_address = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    p->held = g_hash_table_new_full(held_key_hash, held_key_equal, g_free, NULL);
    p->sent = imaging_sent_new(SENT_PER_SOURCE, SENT_HASHES_MAX, SENT_TTL_US);
    if (!settings_load(host, cfg, &p->set, err))
        goto fail;
#define C(field, name) p->c.field = host->counter(inst, name)
    C(pxe_requests, "PXE Requests");
    C(images_sent, "Images Sent");
    C(images_received, "Images Received");
    C(chunks_received, "chunks_received");
    C(chunks_sent, "chunks_sent");
    C(bytes_received, "bytes_received");
    C(refused, "refused");
    C(referred, "referred");
    C(corrupt, "corrupt_chunks");
    C(no_space, "disk_full");
    C(busy, "busy");
#undef C
    /* 1.0 backends (no gc) load too: gc is checked for before use. */
    static const pb_library_spec spec = PB_BACKEND_SPEC_INIT(offsetof(pb_backend, gc));
    const char *lib = *p->set.library    ? p->set.library
                      : *p->set.database ? BACKEND_PG
                                         : BACKEND_DEFAULT;
    p->be = host->library_open(inst, &spec, lib, &p->lib, err);
    if (p->be == NULL)
        goto fail;
    store = *p->set.store ? g_strdup(p->set.store)
                          : g_build_filename(host->state_dir(inst), "store", NULL);
    imaging_detect_address(p->set.ip_address, p->advertised, sizeof(p->advertised));
    /* With a database, the backend's data is there and the store directory keeps this
     * server's own files (its chunks). */
    gboolean shared = *p->set.database != '\0';
    pb_backend_config bc = {.struct_size = sizeof(bc),
                            .location = shared ? p->set.database : store,
                            .state_dir = shared ? store : host->state_dir(inst),
                            .server = *p->set.server_url ? p->set.server_url : p->advertised,
                            .log = backend_log,
                            .log_data = p};
    pb_backend_error e = {.struct_size = sizeof(e)};
    p->bh = p->be->open(&bc, &e);
    if (p->bh == NULL) {
        host->error(err, "%s: %s backend: %s", pb_config_where(host, cfg, "library_name"),
                    p->be->header.name, e.message);
        goto fail;
    }
    p->started = g_get_real_time() / G_USEC_PER_SEC;
    p->cred_works = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    p->cred_lifetime_max = p->set.cred_lifetime;
    GError *ke = NULL; /* not g_autoptr: the gotos above jump past it */
    p->cred_ready = cred_key_load(p, host->state_dir(inst), &ke);
    if (!p->cred_ready) {
        host->log(inst, PB_LOG_WARNING, "no per-device credentials: %s", ke->message);
        g_error_free(ke);
    }
    return p;
fail:
    backend_close(p);
    imaging_free(p);
    return NULL;
}

static bool imaging_start(void *self, pb_err *err)
{
    Imaging *p = self;
    g_autoptr(GError) e = NULL;
    /* Exclusive: the threads start now and stay. GLib's shared threads are kept idle two
     * at most, so a pool of them starts a thread for most chunks (milliseconds on a busy
     * machine, per chunk uploaded). */
    p->pool = g_thread_pool_new(worker, p, WORKERS, TRUE, &e);
    if (p->pool != NULL)
        p->io = g_thread_pool_new(worker, p, IO_WORKERS, TRUE, &e);
    if (p->io == NULL) {
        p->host->error(err, "cannot start worker threads: %s", e->message);
        if (p->pool != NULL)
            g_thread_pool_free(p->pool, FALSE, TRUE);
        p->pool = NULL;
        backend_close(p);
        return false;
    }
    if (!p->host->command_register(p->inst, "imaging", usage, cmd_imaging, err)) {
        g_thread_pool_free(p->io, FALSE, TRUE);
        g_thread_pool_free(p->pool, FALSE, TRUE);
        p->io = NULL;
        p->pool = NULL;
        backend_close(p);
        return false;
    }
    p->flush = p->host->timer_add(p->inst, STATS_FLUSH_MS, flush_tick, p);
    p->http_watch =
        p->host->service_watch(p->inst, PB_HTTP_SERVICE, PB_HTTP_SERVICE_VERSION, on_http, p);
    p->svc = imaging_service_new(p->host, p->inst, p->be, p->bh, gc_deferred, p);
    imaging_service_publish(p->svc);
    p->host->log(p->inst, PB_LOG_CRITICAL, "imaging server started: backend %s %s, address %s%s",
                 p->be->header.name, p->be->header.version ? p->be->header.version : "",
                 p->advertised,
                 p->http ? "" : "; no HTTP listener yet (configure an http instance)");
    if (*p->set.token == '\0')
        p->host->log(p->inst, PB_LOG_WARNING,
                     "no upload_token or upload_token_file: uploads, deletes and reports are "
                     "refused but for the per-device credentials handed out with work");
    return true;
}

static void *imaging_reload_prepare(void *self, const pb_config *cfg, pb_err *err)
{
    Imaging *p = self;
    Settings *s = g_new0(Settings, 1);
    if (!settings_load(p->host, cfg, s, err)) {
        settings_clear(s);
        g_free(s);
        return NULL;
    }
    return s;
}

static void imaging_reload_commit(void *self, void *staged)
{
    Imaging *p = self;
    Settings *s = staged;
    /* library_name, store, database and server_url need a restart (PB_PARAM_F_RESTART) */
    g_free(s->database);
    s->database = g_steal_pointer(&p->set.database);
    g_free(s->server_url);
    s->server_url = g_steal_pointer(&p->set.server_url);
    g_free(s->library);
    s->library = g_steal_pointer(&p->set.library);
    g_free(s->store);
    s->store = g_steal_pointer(&p->set.store);
    settings_clear(&p->set);
    p->set = *s;
    g_free(s);
    p->cred_lifetime_max = MAX(p->cred_lifetime_max, p->set.cred_lifetime);
    imaging_detect_address(p->set.ip_address, p->advertised, sizeof(p->advertised));
    p->host->log(p->inst, PB_LOG_CRITICAL, "configuration reloaded");
}

static void imaging_reload_abort(void *self, void *staged)
{
    settings_clear(staged);
    g_free(staged);
}

static void imaging_status(void *self, pb_status *st)
{
    Imaging *p = self;
    const pb_host *h = p->host;
    h->status_text(st, "backend %s, address %s, API %s, %u transfer(s)", p->be->header.name,
                   p->advertised,
                   p->routed ? "served"
                   : p->http ? "off"
                             : "waiting for an HTTP listener",
                   p->active);
    h->status_kv(st, "backend", "%s", p->be->header.name);
    h->status_kv(st, "address", "%s", p->advertised);
    h->status_kv(st, "api", "%s", p->routed ? IMAGING_PREFIX : "off");
    h->status_kv(st, "transfers", "%u", p->active);
    h->status_kv(st, "gc", "%s",
                 p->gc_running   ? "running"
                 : p->gc_wanted  ? "waiting for uploads"
                 : p->gc_last[0] ? p->gc_last
                                 : "not run");
}

static void imaging_stop(void *self)
{
    Imaging *p = self;
    p->stopping = TRUE;
    /* The listener cancels our requests (503 to the waiting ones) and calls us no more. */
    route_off(p);
    p->host->service_unwatch(p->http_watch);
    p->http_watch = NULL;
    p->http = NULL;
    /* Both pools finish what they hold (a read ahead of a download the listener dropped
     * too); drain_done() then frees it, closing its readers before the backend closes. */
    if (p->io != NULL)
        g_thread_pool_free(p->io, FALSE, TRUE);
    p->io = NULL;
    if (p->pool != NULL)
        g_thread_pool_free(p->pool, FALSE, TRUE);
    p->pool = NULL;
    replicate_reap(p, TRUE);      /* a replication stops between two chunks */
    drain_done(p);                /* frees the transfers the workers held */
    imaging_service_free(p->svc); /* withdrawn by the host already, its users stopped */
    p->svc = NULL;
    if (p->flush != NULL)
        p->host->timer_remove(p->flush);
    p->flush = NULL;
    backend_close(p);
}

static void imaging_destroy(void *self)
{
    imaging_free(self);
}

/* http and policy start before us when configured, and stop after us. Both are wanted, not
 * required: a directory of legacy .conf files configures no http instance, and the server
 * then runs (and says so) until one appears. */
static const char *const wants[] = {PB_HTTP_SERVICE, PB_POLICY_SERVICE, NULL};

static const pb_plugin imaging_plugin = {
    PB_PLUGIN_HEADER,
    .name = "imaging",
    .version = PACKAGE_VERSION,
    .description = "Imaging server: stores and serves images, resolves work, logs results",
    PB_PARAMS(params),
    .legacy_files = legacy_files,
    .wants = wants,
    .create = imaging_create,
    .start = imaging_start,
    .reload_prepare = imaging_reload_prepare,
    .reload_commit = imaging_reload_commit,
    .reload_abort = imaging_reload_abort,
    .status = imaging_status,
    .stop = imaging_stop,
    .destroy = imaging_destroy,
};

PB_PLUGIN_DEFINE(imaging, imaging_plugin)
