/* image-http.c - the imaging API client over libcurl (image-http.h). */
#include "build-config.h"

#include "image-http.h"
#include "image-workers.h"

#include <curl/curl.h>
#include <zstd.h>
#include <string.h>

/* Bodies are bounded so a broken or hostile server cannot make us allocate without limit:
 * a chunk is at most PB_CHUNK_SIZE_MAX coded (pb_chunk_encode keeps the raw bytes when
 * zstd would grow them), a manifest at most what the archive format allows. */
#define CHUNK_BODY_MAX    ((gsize)PB_CHUNK_SIZE_MAX + 4096)
#define MANIFEST_BODY_MAX ((gsize)PB_ARCHIVE_MANIFEST_MAX)
#define SMALL_BODY_MAX    ((gsize)PB_JSON_TEXT_MAX)
#define POOL_MAX          64
#define BACKOFF_MIN_MS    100
#define BACKOFF_MAX_MS    5000
/* Chunks a manifest names more than once are kept after their first fetch, up to this many
 * bytes, until their last use: an image with repeated content fetches each once. */
#define REUSE_BYTES_MAX (256u * 1024u * 1024u)

struct PbHttp {
    GMutex mu;
    char *base;
    char *auth;        /* "Authorization: Bearer ..." or NULL; never logged */
    char *ca_file;     /* CURLOPT_CAINFO, or NULL: libcurl's default CA bundle */
    GPtrArray *idle;   /* CURL *, each keeping its connection open */
    GHashTable *known; /* GBytes hash -> PbChunkRef *: held by the server */
    gint64 retry_us;
    gint64 down_since; /* first failure since the server last answered; 0: it answers */
    PbHttpStats st;
    /* Requests in flight, at most PB_HTTP_INFLIGHT_MAX: the server refers or refuses a client
     * past its per-address limit, whatever our thread count. */
    GCond slot_free;
    guint inflight;
    GHashTable *uses; /* GBytes hash -> remaining uses (GUINT_TO_POINTER), repeated chunks */
    GHashTable *kept; /* GBytes hash -> Kept *: fetched bytes of repeated chunks */
    gsize kept_bytes;
    /* Puts in the background (pb_http_set_put_queue): at most put_queue queued or being
     * sent; the first failure is kept and fails every later put, flush and commit. */
    PbWorkers *senders;
    guint put_queue, put_pending;
    GCond put_done;
    GError *put_error;
};

typedef struct {
    PbHttp *h;
    guint8 hash[PB_HASH_LEN];
    PbCodec codec;
    void *data;
    gsize len;
} PutJob;

typedef struct {
    GBytes *data;
    PbCodec codec;
} Kept;

static void kept_free(gpointer p)
{
    Kept *k = p;
    g_bytes_unref(k->data);
    g_free(k);
}

typedef struct {
    const char *method; /* "GET", "HEAD", "PUT", "POST" */
    char *url;
    const void *body;
    gsize body_len;
    const char *content_type;
    GPtrArray *headers; /* extra "Name: value" lines, or NULL */
    gsize max_body;
} Req;

typedef struct {
    long status;
    GByteArray *body;
    gsize max_body;
    gboolean too_big;
    char codec[16];
    gint64 content_length;
    char *effective_url;
} Resp;

static void resp_clear(Resp *r)
{
    if (r->body != NULL)
        g_byte_array_unref(r->body);
    g_free(r->effective_url);
    memset(r, 0, sizeof(*r));
}

static gpointer global_init(gpointer unused)
{
    (void)unused;
    /* Not thread-safe in libcurl before 7.84; done once, before any handle exists. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return NULL;
}

static char *normalize_base(const char *loc, GError **error)
{
    g_autofree char *s = NULL;
    if (g_str_has_prefix(loc, "http://") || g_str_has_prefix(loc, "https://"))
        s = g_strdup(loc);
    else if (strchr(loc, '/') == NULL)
        s = strchr(loc, ':') != NULL || loc[0] == '['
                ? g_strdup_printf("http://%s", loc)
                : g_strdup_printf("http://%s:%d", loc, PB_HTTP_DEFAULT_PORT);
    if (s == NULL || strlen(s) <= strlen("https://")) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                    "\"%s\" is not a server (http://HOST[:PORT] or HOST[:PORT])", loc);
        return NULL;
    }
    /* Keep scheme://authority only: the API's prefix is ours to add. */
    char *auth = strstr(s, "://") + 3;
    char *slash = strchr(auth, '/');
    if (slash != NULL)
        *slash = '\0';
    if (*auth == '\0' || *auth == ':' || strpbrk(auth, "?#@ ") != NULL) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID, "\"%s\" is not a server", loc);
        return NULL;
    }
    return g_steal_pointer(&s);
}

PbHttp *pb_http_new(const char *location, const char *token, guint retry_seconds, GError **error)
{
    static GOnce once = G_ONCE_INIT;
    g_once(&once, global_init, NULL);
    char *base = normalize_base(location, error);
    if (base == NULL)
        return NULL;
    if (token != NULL && (token[0] == '\0' || strpbrk(token, "\r\n") != NULL)) {
        g_free(base);
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                    "the token is empty or has a line break");
        return NULL;
    }
    PbHttp *h = g_new0(PbHttp, 1);
    g_mutex_init(&h->mu);
    g_cond_init(&h->slot_free);
    g_cond_init(&h->put_done);
    h->base = base;
    h->auth = token != NULL ? g_strdup_printf("Authorization: Bearer %s", token) : NULL;
    h->idle = g_ptr_array_new_with_free_func((GDestroyNotify)curl_easy_cleanup);
    h->known =
        g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, g_free);
    h->retry_us = (gint64)retry_seconds * G_USEC_PER_SEC;
    h->uses =
        g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, NULL);
    h->kept = g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref,
                                    kept_free);
    return h;
}

void pb_http_set_ca_file(PbHttp *h, const char *file)
{
    g_free(h->ca_file);
    h->ca_file = g_strdup(file);
}

void pb_http_free(PbHttp *h)
{
    if (h == NULL)
        return;
    if (h->senders != NULL)
        pb_workers_free(h->senders); /* the queued puts are sent first */
    g_clear_error(&h->put_error);
    g_cond_clear(&h->put_done);
    g_ptr_array_unref(h->idle);
    g_hash_table_unref(h->known);
    g_cond_clear(&h->slot_free);
    g_hash_table_unref(h->uses);
    g_hash_table_unref(h->kept);
    if (h->auth != NULL) {
        memset(h->auth, 0, strlen(h->auth));
        g_free(h->auth);
    }
    g_free(h->base);
    g_free(h->ca_file);
    g_mutex_clear(&h->mu);
    g_free(h);
}

const char *pb_http_base(PbHttp *h)
{
    return h->base;
}

void pb_http_get_stats(PbHttp *h, PbHttpStats *st)
{
    g_mutex_lock(&h->mu);
    *st = h->st;
    st->chunks_known = g_hash_table_size(h->known);
    g_mutex_unlock(&h->mu);
}

#define COUNT(h, field, n)        \
    do {                          \
        g_mutex_lock(&(h)->mu);   \
        (h)->st.field += (n);     \
        g_mutex_unlock(&(h)->mu); \
    } while (0)

static char *url_for(PbHttp *h, const char *path)
{
    g_mutex_lock(&h->mu);
    char *u = g_strconcat(h->base, PB_HTTP_PREFIX, path, NULL);
    g_mutex_unlock(&h->mu);
    return u;
}

static CURL *handle_take(PbHttp *h)
{
    g_mutex_lock(&h->mu);
    while (h->inflight >= PB_HTTP_INFLIGHT_MAX)
        g_cond_wait(&h->slot_free, &h->mu);
    h->inflight++;
    CURL *c = h->idle->len > 0 ? g_ptr_array_steal_index_fast(h->idle, h->idle->len - 1) : NULL;
    g_mutex_unlock(&h->mu);
    if (c == NULL)
        c = curl_easy_init();
    if (c == NULL)
        g_error("curl_easy_init failed (out of memory)");
    return c;
}

static void handle_give(PbHttp *h, CURL *c)
{
    g_mutex_lock(&h->mu);
    if (h->idle->len < POOL_MAX)
        g_ptr_array_add(h->idle, c);
    else
        curl_easy_cleanup(c);
    h->inflight--;
    g_cond_signal(&h->slot_free);
    g_mutex_unlock(&h->mu);
}

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
    Resp *r = data;
    gsize len = size * n;
    if (r->body->len + len > r->max_body) {
        r->too_big = TRUE;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    g_byte_array_append(r->body, (const guint8 *)p, (guint)len);
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *data)
{
    Resp *r = data;
    gsize len = size * n;
    /* A redirect's headers come first; only the final answer's count. */
    if (len >= 5 && g_ascii_strncasecmp(p, "HTTP/", 5) == 0)
        r->codec[0] = '\0';
    static const char key[] = "x-preboot-codec:";
    if (len > sizeof(key) - 1 && g_ascii_strncasecmp(p, key, sizeof(key) - 1) == 0) {
        g_autofree char *v = g_strndup(p + sizeof(key) - 1, len - (sizeof(key) - 1));
        g_strstrip(v);
        g_strlcpy(r->codec, v, sizeof(r->codec));
    }
    return len;
}

/* Errors worth another attempt: the connection failed or broke, or the server is
 * restarting. Everything else (a bad URL, our body limit, too many redirects) is final, and
 * so is a name that does not resolve: most often a directory written without its '/'. */
static gboolean transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return TRUE;
    default:
        return FALSE;
    }
}

/* 5xx but "not implemented", "version not supported" and "disk full" (retrying would not
 * help), and 429: the server's per-address limit of transfers at once. */
static gboolean status_transient(long st)
{
    return st == 429 || (st >= 500 && st != 501 && st != 505 && st != 507);
}

/* One attempt. FALSE with *cc set when no HTTP answer came. */
static gboolean perform_once(PbHttp *h, const Req *rq, Resp *rs, CURLcode *cc)
{
    CURL *c = handle_take(h);
    curl_easy_reset(c); /* keeps the connection cache */
    resp_clear(rs);
    rs->body = g_byte_array_new();
    rs->max_body = rq->max_body;
    rs->content_length = -1;
    struct curl_slist *hdr = NULL;
    if (h->auth != NULL)
        hdr = curl_slist_append(hdr, h->auth);
    /* libcurl waits up to a second for "100 Continue" on large bodies otherwise. */
    hdr = curl_slist_append(hdr, "Expect:");
    if (rq->content_type != NULL) {
        g_autofree char *ct = g_strdup_printf("Content-Type: %s", rq->content_type);
        hdr = curl_slist_append(hdr, ct);
    }
    for (guint i = 0; rq->headers != NULL && i < rq->headers->len; i++)
        hdr = curl_slist_append(hdr, rq->headers->pdata[i]);
    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (h->ca_file != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "preboot-img/" PACKAGE_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)PB_HTTP_MAX_REDIRS);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    /* A connection that stalls (a cable pulled, a proxy hung) is given up after 60 s below
     * 1 byte/s and retried like a dropped one. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, rs);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, rs);
    if (strcmp(rq->method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(rq->method, "GET") != 0) {
        /* A 307 referral repeats the method and the body (RFC 9110, 15.4.8). */
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body_len > 0 ? rq->body : "");
    }
    *cc = curl_easy_perform(c);
    curl_slist_free_all(hdr);
    gboolean ok = *cc == CURLE_OK;
    if (ok) {
        char *eff = NULL;
        curl_off_t cl = -1;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
        curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
        curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        rs->effective_url = g_strdup(eff);
        rs->content_length = cl;
    }
    handle_give(h, c);
    return ok;
}

static void backoff(gint64 *delay_ms)
{
    g_usleep((gulong)*delay_ms * 1000);
    *delay_ms = MIN(*delay_ms * 2, BACKOFF_MAX_MS);
}

/* Whether a transient failure may be retried: for retry_us after this request's first
 * failure, and for retry_us after the server last answered any request, so that a server
 * that is gone fails the whole operation in retry_us, not once per chunk. */
static gboolean may_retry(PbHttp *h, gint64 *first_fail)
{
    gint64 now = g_get_monotonic_time();
    if (*first_fail == 0)
        *first_fail = now;
    g_mutex_lock(&h->mu);
    if (h->down_since == 0)
        h->down_since = now;
    gint64 down = h->down_since;
    g_mutex_unlock(&h->mu);
    return now - *first_fail < h->retry_us && now - down < h->retry_us;
}

/* A final answer came: the server is there. */
static void note_answer(PbHttp *h)
{
    g_mutex_lock(&h->mu);
    h->down_since = 0;
    g_mutex_unlock(&h->mu);
}

/* Performs rq, retrying transient failures until h->retry_us have passed since the first.
 * FALSE with an error when no final HTTP answer came. */
static gboolean perform(PbHttp *h, const Req *rq, Resp *rs, GError **error)
{
    gint64 first_fail = 0, delay = BACKOFF_MIN_MS;
    for (;;) {
        CURLcode cc = CURLE_OK;
        gboolean answered = perform_once(h, rq, rs, &cc);
        if (answered && !status_transient(rs->status)) {
            note_answer(h);
            return TRUE;
        }
        if (!answered && !transient(cc)) {
            if (rs->too_big)
                g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO,
                            "%s %s: the answer is larger than %" G_GSIZE_FORMAT " bytes",
                            rq->method, rq->url, rq->max_body);
            else
                g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "%s %s: %s", rq->method,
                            rq->url, curl_easy_strerror(cc));
            return FALSE;
        }
        if (!may_retry(h, &first_fail)) {
            if (answered)
                return TRUE; /* the caller reports the 5xx */
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "%s %s: %s (gave up after %d s)",
                        rq->method, rq->url, curl_easy_strerror(cc),
                        (int)(h->retry_us / G_USEC_PER_SEC));
            return FALSE;
        }
        g_debug("%s %s: %s; retrying in %" G_GINT64_FORMAT " ms", rq->method, rq->url,
                answered ? "server error" : curl_easy_strerror(cc), delay);
        COUNT(h, retries, 1);
        backoff(&delay);
    }
}

/* The server's own words for a refusal: the first line of its body, printable only. */
static char *reason(const Resp *rs)
{
    if (rs->body == NULL || rs->body->len == 0)
        return g_strdup("");
    gsize n = MIN(rs->body->len, 200u);
    GString *s = g_string_new(": ");
    for (gsize i = 0; i < n && rs->body->data[i] != '\n'; i++) {
        guint8 c = rs->body->data[i];
        g_string_append_c(s, c >= 0x20 && c < 0x7f ? (char)c : '?');
    }
    return g_string_free(s, FALSE);
}

static void set_status_error(GError **error, const Req *rq, const Resp *rs)
{
    g_autofree char *why = reason(rs);
    int code = rs->status == 404 ? PB_IMAGE_ERROR_MISSING : PB_IMAGE_ERROR_IO;
    const char *hint = "";
    if (rs->status == 401)
        hint = " (no or wrong credential: --token-file FILE or PREBOOT_TOKEN)";
    else if (rs->status == 403)
        hint = " (this address may not do that on the server)";
    else if (rs->status == 507)
        hint = " (the server's store is full)";
    g_set_error(error, PB_IMAGE_ERROR, code, "%s %s: HTTP %ld%s%s", rq->method, rq->url, rs->status,
                hint, why);
}

/* ---- chunks ----------------------------------------------------------------------------- */

static gboolean known_lookup(PbHttp *h, const guint8 hash[PB_HASH_LEN], PbChunkRef *found)
{
    GBytes *k = g_bytes_new_static(hash, PB_HASH_LEN);
    g_mutex_lock(&h->mu);
    const PbChunkRef *r = g_hash_table_lookup(h->known, k);
    if (r != NULL && found != NULL)
        *found = *r;
    g_mutex_unlock(&h->mu);
    g_bytes_unref(k);
    return r != NULL;
}

static void known_add(PbHttp *h, const guint8 hash[PB_HASH_LEN], PbCodec codec, guint64 stored)
{
    PbChunkRef *r = g_new0(PbChunkRef, 1);
    r->kind = PB_CHUNK_DATA;
    r->codec = (guint8)codec;
    memcpy(r->hash, hash, PB_HASH_LEN);
    r->stored = stored;
    g_mutex_lock(&h->mu);
    g_hash_table_replace(h->known, g_bytes_new(hash, PB_HASH_LEN), r);
    g_mutex_unlock(&h->mu);
}

static char *chunk_url(PbHttp *h, const guint8 hash[PB_HASH_LEN])
{
    char hex[PB_HASH_HEX_LEN + 1];
    pb_hash_to_hex(hash, hex);
    g_autofree char *path = g_strconcat("/chunks/", hex, NULL);
    return url_for(h, path);
}

/* HEAD chunks/HASH: 1 held (found filled), 0 not held, -1 error. */
static int chunk_head(PbHttp *h, const guint8 hash[PB_HASH_LEN], PbChunkRef *found, GError **error)
{
    Req rq = {.method = "HEAD", .url = chunk_url(h, hash), .max_body = 0};
    Resp rs = {0};
    COUNT(h, chunk_heads, 1);
    int ret = -1;
    if (perform(h, &rq, &rs, error)) {
        PbCodec codec;
        if (rs.status == 404)
            ret = 0;
        else if (rs.status == 200 && pb_codec_parse(rs.codec, &codec) && rs.content_length >= 0) {
            known_add(h, hash, codec, (guint64)rs.content_length);
            known_lookup(h, hash, found);
            ret = 1;
        } else if (rs.status == 200)
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO,
                        "HEAD %s: no X-Preboot-Codec or Content-Length", rq.url);
        else
            set_status_error(error, &rq, &rs);
    }
    resp_clear(&rs);
    g_free(rq.url);
    return ret;
}

static gboolean io_has(void *self, const guint8 hash[PB_HASH_LEN], PbChunkRef *found)
{
    PbHttp *h = self;
    PbChunkRef tmp;
    if (known_lookup(h, hash, found != NULL ? found : &tmp))
        return TRUE;
    g_autoptr(GError) e = NULL;
    int r = chunk_head(h, hash, found != NULL ? found : &tmp, &e);
    if (r < 0)
        g_debug("%s", e->message); /* answered "no": the put that follows reports the error */
    return r > 0;
}

static gboolean put_now(PbHttp *h, const guint8 hash[PB_HASH_LEN], PbCodec codec, const void *data,
                        gsize len, GError **error)
{
    g_autoptr(GPtrArray) hdrs = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(hdrs, g_strdup_printf("X-Preboot-Codec: %s", pb_codec_name(codec)));
    /* The uncompressed length the API asks for: the engine does not pass it, but a zstd
     * frame records it (pb_chunk_encode writes one frame with its content size). */
    guint64 raw = len;
    if (codec == PB_CODEC_ZSTD) {
        unsigned long long n = ZSTD_getFrameContentSize(data, len);
        if (n == ZSTD_CONTENTSIZE_UNKNOWN || n == ZSTD_CONTENTSIZE_ERROR || n > PB_CHUNK_SIZE_MAX) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                        "a zstd chunk without its length in the frame");
            return FALSE;
        }
        raw = n;
    }
    g_ptr_array_add(hdrs, g_strdup_printf("X-Preboot-Length: %" G_GUINT64_FORMAT, raw));
    Req rq = {.method = "PUT",
              .url = chunk_url(h, hash),
              .body = data,
              .body_len = len,
              .content_type = "application/octet-stream",
              .headers = hdrs,
              .max_body = SMALL_BODY_MAX};
    Resp rs = {0};
    gboolean ok = FALSE;
    gint64 first_fail = 0, delay = BACKOFF_MIN_MS;
    for (;;) {
        CURLcode cc = CURLE_OK;
        COUNT(h, chunk_puts, 1);
        gboolean answered = perform_once(h, &rq, &rs, &cc);
        if (answered && !status_transient(rs.status))
            note_answer(h);
        if (answered && (rs.status == 200 || rs.status == 201)) {
            COUNT(h, bytes_sent, len);
            known_add(h, hash, codec, len);
            ok = TRUE;
            break;
        }
        if (answered && !status_transient(rs.status)) {
            if (rs.status == 422) {
                g_autofree char *why = reason(&rs);
                g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT,
                            "PUT %s: the server found the bytes do not match the hash%s", rq.url,
                            why);
            } else
                set_status_error(error, &rq, &rs);
            break;
        }
        if (!answered && !transient(cc)) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "PUT %s: %s", rq.url,
                        curl_easy_strerror(cc));
            break;
        }
        if (!may_retry(h, &first_fail)) {
            if (answered)
                set_status_error(error, &rq, &rs);
            else
                g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO,
                            "PUT %s: %s (gave up after %d s)", rq.url, curl_easy_strerror(cc),
                            (int)(h->retry_us / G_USEC_PER_SEC));
            break;
        }
        COUNT(h, retries, 1);
        backoff(&delay);
        /* The upload may have been kept before the connection broke: ask before sending
         * the bytes again. */
        PbChunkRef tmp;
        g_autoptr(GError) e = NULL;
        if (chunk_head(h, hash, &tmp, &e) > 0) {
            ok = TRUE;
            break;
        }
    }
    resp_clear(&rs);
    g_free(rq.url);
    return ok;
}

static void put_job_run(gpointer data, gpointer user)
{
    PutJob *pj = data;
    PbHttp *h = pj->h;
    GError *e = NULL;
    gboolean ok = put_now(h, pj->hash, pj->codec, pj->data, pj->len, &e);
    g_mutex_lock(&h->mu);
    if (!ok && h->put_error == NULL)
        h->put_error = g_steal_pointer(&e);
    h->put_pending--;
    g_cond_broadcast(&h->put_done);
    g_mutex_unlock(&h->mu);
    if (e != NULL)
        g_error_free(e);
    g_free(pj->data);
    g_free(pj);
}

void pb_http_set_put_queue(PbHttp *h, guint n)
{
    g_return_if_fail(h->senders == NULL); /* once, before the first put */
    n = MIN(n, (guint)PB_HTTP_INFLIGHT_MAX);
    if (n == 0)
        return;
    h->senders = pb_workers_new("http-put", n, put_job_run, h);
    h->put_queue = n;
}

gboolean pb_http_flush(PbHttp *h, GError **error)
{
    g_mutex_lock(&h->mu);
    while (h->put_pending > 0)
        g_cond_wait(&h->put_done, &h->mu);
    gboolean ok = h->put_error == NULL;
    if (!ok)
        g_set_error_literal(error, h->put_error->domain, h->put_error->code, h->put_error->message);
    g_mutex_unlock(&h->mu);
    return ok;
}

static gboolean io_put(void *self, const guint8 hash[PB_HASH_LEN], PbCodec codec, const void *data,
                       gsize len, GError **error)
{
    PbHttp *h = self;
    if (known_lookup(h, hash, NULL))
        return TRUE; /* another worker sent (or queued) the same bytes */
    if (h->put_queue == 0)
        return put_now(h, hash, codec, data, len, error);
    /* Queued: the capture goes on reading and compressing while the server stores and
     * verifies this chunk (a round trip and its fsyncs), a few chunks at once. */
    g_mutex_lock(&h->mu);
    while (h->put_pending >= h->put_queue && h->put_error == NULL)
        g_cond_wait(&h->put_done, &h->mu);
    if (h->put_error != NULL) {
        g_set_error_literal(error, h->put_error->domain, h->put_error->code, h->put_error->message);
        g_mutex_unlock(&h->mu);
        return FALSE;
    }
    h->put_pending++;
    g_mutex_unlock(&h->mu);
    /* Known from now on: a repeat of it in the disk names it without sending it twice; if
     * this put fails, so do the capture and its commit. */
    known_add(h, hash, codec, len);
    PutJob *pj = g_new0(PutJob, 1);
    pj->h = h;
    memcpy(pj->hash, hash, PB_HASH_LEN);
    pj->codec = codec;
    pj->data = g_memdup2(data, len);
    pj->len = len;
    pb_workers_push(h->senders, pj);
    return TRUE;
}

/* A repeated chunk fetched before: its bytes, one use fewer (forgotten after the last). */
static GBytes *reuse_take(PbHttp *h, const guint8 hash[PB_HASH_LEN], PbCodec *codec)
{
    GBytes *k = g_bytes_new_static(hash, PB_HASH_LEN);
    GBytes *out = NULL;
    g_mutex_lock(&h->mu);
    Kept *kept = g_hash_table_lookup(h->kept, k);
    if (kept != NULL) {
        out = g_bytes_ref(kept->data);
        *codec = kept->codec;
        guint left = GPOINTER_TO_UINT(g_hash_table_lookup(h->uses, k));
        if (left <= 1) {
            h->kept_bytes -= g_bytes_get_size(kept->data);
            g_hash_table_remove(h->kept, k);
            g_hash_table_remove(h->uses, k);
        } else
            g_hash_table_insert(h->uses, g_bytes_ref(k), GUINT_TO_POINTER(left - 1));
    }
    g_mutex_unlock(&h->mu);
    g_bytes_unref(k);
    return out;
}

/* Keeps a fetched chunk the manifest names again (its first use is this fetch). */
static void reuse_keep(PbHttp *h, const guint8 hash[PB_HASH_LEN], GBytes *data, PbCodec codec)
{
    GBytes *k = g_bytes_new(hash, PB_HASH_LEN);
    g_mutex_lock(&h->mu);
    guint left = GPOINTER_TO_UINT(g_hash_table_lookup(h->uses, k));
    if (left > 1 && !g_hash_table_contains(h->kept, k) &&
        h->kept_bytes + g_bytes_get_size(data) <= REUSE_BYTES_MAX) {
        Kept *kept = g_new(Kept, 1);
        kept->data = g_bytes_ref(data);
        kept->codec = codec;
        h->kept_bytes += g_bytes_get_size(data);
        g_hash_table_insert(h->kept, g_bytes_ref(k), kept);
        g_hash_table_insert(h->uses, g_bytes_ref(k), GUINT_TO_POINTER(left - 1));
    }
    g_mutex_unlock(&h->mu);
    g_bytes_unref(k);
}

static GBytes *io_get(void *self, const PbChunkRef *ref, PbCodec *codec, GError **error)
{
    PbHttp *h = self;
    GBytes *again = reuse_take(h, ref->hash, codec);
    if (again != NULL)
        return again;
    Req rq = {.method = "GET", .url = chunk_url(h, ref->hash), .max_body = CHUNK_BODY_MAX};
    Resp rs = {0};
    GBytes *out = NULL;
    /* Counted per attempt, so a test can see what a broken connection cost. */
    gint64 first_fail = 0, delay = BACKOFF_MIN_MS;
    for (;;) {
        CURLcode cc = CURLE_OK;
        COUNT(h, chunk_gets, 1);
        gboolean answered = perform_once(h, &rq, &rs, &cc);
        if (answered && !status_transient(rs.status))
            note_answer(h);
        if (answered && rs.status == 200) {
            if (!pb_codec_parse(rs.codec, codec)) {
                g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO,
                            "GET %s: no or unknown X-Preboot-Codec \"%s\"", rq.url, rs.codec);
                break;
            }
            COUNT(h, bytes_received, rs.body->len);
            out = g_byte_array_free_to_bytes(g_steal_pointer(&rs.body));
            reuse_keep(h, ref->hash, out, *codec);
            break;
        }
        if (answered && !status_transient(rs.status)) {
            set_status_error(error, &rq, &rs);
            break;
        }
        if (!answered && !transient(cc)) {
            if (rs.too_big)
                g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT,
                            "GET %s: more than %" G_GSIZE_FORMAT " bytes", rq.url, rq.max_body);
            else
                g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "GET %s: %s", rq.url,
                            curl_easy_strerror(cc));
            break;
        }
        if (!may_retry(h, &first_fail)) {
            if (answered)
                set_status_error(error, &rq, &rs);
            else
                g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO,
                            "GET %s: %s (gave up after %d s)", rq.url, curl_easy_strerror(cc),
                            (int)(h->retry_us / G_USEC_PER_SEC));
            break;
        }
        COUNT(h, retries, 1);
        backoff(&delay);
    }
    resp_clear(&rs);
    g_free(rq.url);
    return out;
}

void pb_http_chunk_io(PbHttp *h, PbChunkIO *io)
{
    io->self = h;
    io->has = io_has;
    io->put = io_put;
    io->get = io_get;
}

/* ---- manifests, missing, JSON ------------------------------------------------------------ */

static GPtrArray *parse_hash_lines(const GByteArray *b, GError **error)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    const char *p = (const char *)b->data, *end = p + b->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (gsize)(end - p));
        const char *le = nl != NULL ? nl : end;
        gsize n = (gsize)(le - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        guint8 tmp[PB_HASH_LEN];
        if (n > 0) {
            if (n != PB_HASH_HEX_LEN || !pb_hash_from_hex(p, n, tmp)) {
                g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE,
                            "the server answered a line that is not a hash");
                g_ptr_array_unref(out);
                return NULL;
            }
            g_ptr_array_add(out, g_strndup(p, n));
        }
        p = nl != NULL ? nl + 1 : end;
    }
    return out;
}

GPtrArray *pb_http_missing(PbHttp *h, const PbManifest *m, GError **error)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GPtrArray) hexes = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) refs = g_ptr_array_new();
    g_mutex_lock(&h->mu);
    g_hash_table_remove_all(h->uses);
    g_hash_table_remove_all(h->kept);
    h->kept_bytes = 0;
    for (guint i = 0; i < m->chunks->len; i++) {
        const PbChunkRef *r = &g_array_index(m->chunks, PbChunkRef, i);
        if (r->kind != PB_CHUNK_DATA)
            continue;
        GBytes *k = g_bytes_new(r->hash, PB_HASH_LEN);
        guint n = GPOINTER_TO_UINT(g_hash_table_lookup(h->uses, k));
        g_hash_table_insert(h->uses, k, GUINT_TO_POINTER(n + 1));
    }
    g_mutex_unlock(&h->mu);
    for (guint i = 0; i < m->chunks->len; i++) {
        const PbChunkRef *r = &g_array_index(m->chunks, PbChunkRef, i);
        if (r->kind != PB_CHUNK_DATA)
            continue;
        char *hex = g_malloc(PB_HASH_HEX_LEN + 1);
        pb_hash_to_hex(r->hash, hex);
        if (!g_hash_table_add(seen, hex)) {
            g_free(hex);
            continue;
        }
        g_ptr_array_add(hexes, hex);
        g_ptr_array_add(refs, (gpointer)r);
    }
    GPtrArray *missing = g_ptr_array_new_with_free_func(g_free);
    for (guint start = 0; start < hexes->len; start += PB_HTTP_MISSING_BATCH) {
        guint end = MIN(hexes->len, start + PB_HTTP_MISSING_BATCH);
        GString *body = g_string_sized_new((end - start) * (PB_HASH_HEX_LEN + 1));
        for (guint i = start; i < end; i++) {
            g_string_append(body, hexes->pdata[i]);
            g_string_append_c(body, '\n');
        }
        Req rq = {.method = "POST",
                  .url = url_for(h, "/chunks/missing"),
                  .body = body->str,
                  .body_len = body->len,
                  .content_type = "text/plain",
                  .max_body = (gsize)(end - start) * (PB_HASH_HEX_LEN + 2) + 1024};
        Resp rs = {0};
        COUNT(h, missing_queries, 1);
        gboolean ok = perform(h, &rq, &rs, error);
        GPtrArray *got = NULL;
        if (ok && rs.status != 200) {
            set_status_error(error, &rq, &rs);
            ok = FALSE;
        }
        if (ok)
            got = parse_hash_lines(rs.body, error);
        g_string_free(body, TRUE);
        resp_clear(&rs);
        g_free(rq.url);
        if (got == NULL) {
            g_ptr_array_unref(missing);
            return NULL;
        }
        g_autoptr(GHashTable) lack = g_hash_table_new(g_str_hash, g_str_equal);
        for (guint i = 0; i < got->len; i++)
            g_hash_table_add(lack, got->pdata[i]);
        for (guint i = start; i < end; i++) {
            const PbChunkRef *r = refs->pdata[i];
            if (g_hash_table_contains(lack, hexes->pdata[i]))
                g_ptr_array_add(missing, g_strdup(hexes->pdata[i]));
            else
                known_add(h, r->hash, (PbCodec)r->codec, r->stored);
        }
        g_ptr_array_unref(got);
    }
    return missing;
}

/* After a referral the chunks live where the manifest came from: use that server. */
static void rebase(PbHttp *h, const char *effective)
{
    if (effective == NULL)
        return;
    const char *auth = strstr(effective, "://");
    const char *p = auth != NULL ? strstr(auth + 3, PB_HTTP_PREFIX "/") : NULL;
    if (p == NULL)
        return;
    g_autofree char *nb = g_strndup(effective, (gsize)(p - effective));
    g_mutex_lock(&h->mu);
    if (strcmp(nb, h->base) != 0) {
        g_debug("referred to %s", nb);
        g_free(h->base);
        h->base = g_steal_pointer(&nb);
    }
    g_mutex_unlock(&h->mu);
}

PbManifest *pb_http_get_manifest(PbHttp *h, const char *name, GError **error)
{
    g_autofree char *path = g_strconcat("/images/", name, NULL);
    Req rq = {.method = "GET", .url = url_for(h, path), .max_body = MANIFEST_BODY_MAX};
    Resp rs = {0};
    PbManifest *m = NULL;
    if (perform(h, &rq, &rs, error)) {
        if (rs.status == 200) {
            m = pb_manifest_parse((const char *)rs.body->data, rs.body->len, error);
            if (m == NULL)
                g_prefix_error(error, "image %s from %s: ", name, h->base);
            else
                rebase(h, rs.effective_url);
        } else if (rs.status == 404)
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING, "%s has no image %s",
                        h->base, name);
        else
            set_status_error(error, &rq, &rs);
    }
    resp_clear(&rs);
    g_free(rq.url);
    return m;
}

gboolean pb_http_commit(PbHttp *h, const char *name, PbManifest *m, gboolean create_only,
                        gboolean *created, GPtrArray **missing, GError **error)
{
    if (missing != NULL)
        *missing = NULL;
    if (!pb_http_flush(h, error))
        return FALSE; /* a chunk the manifest names did not get there */
    g_autoptr(GString) text = pb_manifest_build(m);
    g_autofree char *path = g_strconcat("/images/", name, NULL);
    g_autoptr(GPtrArray) hdrs = g_ptr_array_new();
    if (create_only)
        g_ptr_array_add(hdrs, "If-None-Match: *");
    Req rq = {.method = "PUT",
              .url = url_for(h, path),
              .body = text->str,
              .body_len = text->len,
              .content_type = "text/plain",
              .headers = hdrs,
              .max_body = MANIFEST_BODY_MAX};
    Resp rs = {0};
    gboolean ok = FALSE;
    if (missing != NULL)
        *missing = NULL;
    if (perform(h, &rq, &rs, error)) {
        if (rs.status == 200 || rs.status == 201) {
            ok = TRUE;
            if (created != NULL)
                *created = rs.status == 201;
        } else if (rs.status == 409) {
            GPtrArray *lack = parse_hash_lines(rs.body, error);
            if (lack != NULL) {
                g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING,
                            "%s lacks %u chunks of %s", h->base, lack->len, name);
                if (missing != NULL)
                    *missing = lack;
                else
                    g_ptr_array_unref(lack);
            }
        } else if (rs.status == 412)
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                        "%s already has an image %s (--create-only)", h->base, name);
        else
            set_status_error(error, &rq, &rs);
    }
    resp_clear(&rs);
    g_free(rq.url);
    return ok;
}

PbJson *pb_http_get_json(PbHttp *h, const char *path, GError **error)
{
    Req rq = {.method = "GET", .url = url_for(h, path), .max_body = SMALL_BODY_MAX};
    Resp rs = {0};
    PbJson *j = NULL;
    if (perform(h, &rq, &rs, error)) {
        if (rs.status == 200) {
            j = pb_json_parse((const char *)rs.body->data, rs.body->len, error);
            if (j == NULL)
                g_prefix_error(error, "GET %s: ", rq.url);
        } else
            set_status_error(error, &rq, &rs);
    }
    resp_clear(&rs);
    g_free(rq.url);
    return j;
}

GBytes *pb_http_get_at(PbHttp *h, const char *path, gsize max, GError **error)
{
    g_mutex_lock(&h->mu);
    Req rq = {.method = "GET", .url = g_strconcat(h->base, path, NULL), .max_body = max};
    g_mutex_unlock(&h->mu);
    Resp rs = {0};
    GBytes *b = NULL;
    if (perform(h, &rq, &rs, error)) {
        if (rs.status == 200)
            b = g_bytes_new(rs.body->data, rs.body->len);
        else
            set_status_error(error, &rq, &rs);
    }
    resp_clear(&rs);
    g_free(rq.url);
    return b;
}

gboolean pb_http_post_json(PbHttp *h, const char *path, const char *body, GError **error)
{
    Req rq = {.method = "POST",
              .url = url_for(h, path),
              .body = body,
              .body_len = strlen(body),
              .content_type = "application/json",
              .max_body = SMALL_BODY_MAX};
    Resp rs = {0};
    gboolean ok = perform(h, &rq, &rs, error);
    if (ok && (rs.status < 200 || rs.status > 299)) {
        set_status_error(error, &rq, &rs);
        ok = FALSE;
    }
    resp_clear(&rs);
    g_free(rq.url);
    return ok;
}

char *pb_http_read_token(const char *path, GError **error)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &text, &len, error))
        return NULL;
    char *nl = strpbrk(text, "\r\n");
    if (nl != NULL)
        *nl = '\0';
    g_strstrip(text);
    if (text[0] == '\0') {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID, "%s: no token in it", path);
        return NULL;
    }
    return g_steal_pointer(&text);
}
