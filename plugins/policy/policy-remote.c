/* policy-remote.c - PrebootServer over libcurl (policy-remote.h). Threads: the main loop
 * owns the pending set, the cache and every callback; a worker only performs the GET and
 * hands its result back through host->defer. A question's deadline is a main-loop timer, so
 * it holds even when every worker is busy with a server that does not answer. */
#include "build-config.h"

#include "policy-remote.h"

#include <curl/curl.h>
#include <string.h>

#define WORKERS      4
#define ANSWER_MAX   65536
#define DEFAULT_PORT 8080

struct PolicyRemote {
    gint refs;
    gint closed; /* atomic: stop asking, stop delivering */
    const pb_host *host;
    pb_instance *inst;
    char *server;   /* as configured, for logs */
    char *base_url; /* "http://HOST:PORT/imaging/v1/work" */
    guint timeout_ms;
    GThreadPool *pool;
    GHashTable *pending; /* Query * (main loop only) */
    GHashTable *cache;   /* key -> Cached * (main loop only) */
};

typedef struct {
    PolicyRemoteAnswer a;
    gint64 at_us;
} Cached;

typedef struct {
    gint refs;
    PolicyRemote *r;
    char *key;
    char *url;
    PolicyRemoteFn fn;
    void *data;
    pb_timer *timer;
    gboolean delivered; /* main loop only */
    /* written by the worker before the defer, read on the main loop after it */
    PolicyRemoteAnswer answer;
    char *failure;
} Query;

static void remote_unref(PolicyRemote *r)
{
    if (!g_atomic_int_dec_and_test(&r->refs))
        return;
    g_free(r->server);
    g_free(r->base_url);
    g_hash_table_unref(r->pending);
    g_hash_table_unref(r->cache);
    g_free(r);
}

static void query_unref(Query *q)
{
    if (!g_atomic_int_dec_and_test(&q->refs))
        return;
    remote_unref(q->r);
    g_free(q->key);
    g_free(q->url);
    g_free(q->failure);
    g_free(q);
}

static char *device_key(const PolicyDevice *d)
{
    return g_strdup_printf("%s|%s|%s", d->mac, d->uuid, d->serial != NULL ? d->serial : "");
}

/* On the main loop: the answer, or the deadline; the first one wins. */
static void deliver(Query *q, const PolicyRemoteAnswer *a)
{
    PolicyRemote *r = q->r;
    if (q->delivered)
        return;
    q->delivered = TRUE;
    if (q->timer != NULL) {
        r->host->timer_remove(q->timer);
        q->timer = NULL;
    }
    {
        /* No answer is remembered too (briefly), so a server that is down costs each
         * device one question per POLICY_REMOTE_NEGATIVE_TTL_S, not one per request. */
        if (g_hash_table_size(r->cache) >= POLICY_REMOTE_CACHE_MAX)
            g_hash_table_remove_all(r->cache); /* bounded; answers are cheap to ask again */
        Cached *c = g_new(Cached, 1);
        c->a = *a;
        c->at_us = (gint64)r->host->monotonic_us();
        g_hash_table_replace(r->cache, g_strdup(q->key), c);
    }
    if (q->fn != NULL)
        q->fn(q->data, a);
    if (g_hash_table_remove(r->pending, q))
        query_unref(q); /* the pending set's reference */
}

static bool on_deadline(void *data)
{
    Query *q = data;
    PolicyRemote *r = q->r;
    q->timer = NULL; /* removed by returning false */
    if (!q->delivered) {
        r->host->log(r->inst, PB_LOG_WARNING,
                     "PrebootServer %s: no answer within %u ms; the rules decide", r->server,
                     r->timeout_ms);
        PolicyRemoteAnswer none = {0};
        deliver(q, &none);
    }
    return false;
}

static void on_answer(void *data)
{
    Query *q = data;
    PolicyRemote *r = q->r;
    if (!g_atomic_int_get(&r->closed) && !q->delivered) {
        if (q->failure != NULL)
            r->host->log(r->inst, PB_LOG_WARNING, "PrebootServer %s: %s; the rules decide",
                         r->server, q->failure);
        deliver(q, &q->answer);
    }
    query_unref(q); /* the worker's reference */
}

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
    GByteArray *b = data;
    if (b->len + size * n > ANSWER_MAX)
        return 0;
    g_byte_array_append(b, (const guint8 *)p, (guint)(size * n));
    return size * n;
}

static void work(gpointer data, gpointer user)
{
    Query *q = data;
    PolicyRemote *r = user;
    (void)user;
    if (g_atomic_int_get(&r->closed)) {
        query_unref(q);
        return;
    }
    GByteArray *body = g_byte_array_new();
    CURL *c = curl_easy_init();
    long status = 0;
    CURLcode cc = CURLE_FAILED_INIT;
    if (c != NULL) {
        curl_easy_setopt(c, CURLOPT_URL, q->url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "prebootd-policy/" PACKAGE_VERSION);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
        cc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
    }
    GError *e = NULL;
    if (cc != CURLE_OK)
        q->failure = g_strdup(curl_easy_strerror(cc));
    else if (status != 200)
        q->failure = g_strdup_printf("HTTP %ld", status);
    else if (!policy_remote_parse((const char *)body->data, body->len, &q->answer, &e)) {
        q->failure = g_strdup(e->message);
        g_error_free(e);
    }
    g_byte_array_unref(body);
    if (g_atomic_int_get(&r->closed))
        query_unref(q);
    else
        r->host->defer(r->inst, on_answer, q); /* hands the worker's reference on */
}

static gpointer global_init(gpointer unused)
{
    (void)unused;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return NULL;
}

PolicyRemote *policy_remote_new(const pb_host *host, pb_instance *inst, const char *server,
                                guint timeout_ms, GError **error)
{
    static GOnce once = G_ONCE_INIT;
    g_once(&once, global_init, NULL);
    GQuark q = g_quark_from_static_string("policy-remote");
    g_autofree char *base = NULL;
    if (g_str_has_prefix(server, "http://") || g_str_has_prefix(server, "https://"))
        base = g_strdup(server);
    else if (strchr(server, ':') != NULL && server[0] != '[' &&
             strchr(server, ':') != strrchr(server, ':'))
        base = g_strdup_printf("http://[%s]:%d", server, DEFAULT_PORT); /* bare IPv6 */
    else if (strchr(server, ':') != NULL)
        base = g_strdup_printf("http://%s", server);
    else
        base = g_strdup_printf("http://%s:%d", server, DEFAULT_PORT);
    char *auth = strstr(base, "://") + 3;
    char *slash = strchr(auth, '/');
    if (slash != NULL)
        *slash = '\0';
    if (*auth == '\0' || *auth == ':' || strpbrk(auth, "?#@ ") != NULL) {
        g_set_error(error, q, 0, "PrebootServer \"%s\" is not HOST[:PORT] or http://HOST[:PORT]",
                    server);
        return NULL;
    }
    PolicyRemote *r = g_new0(PolicyRemote, 1);
    r->refs = 1;
    r->host = host;
    r->inst = inst;
    r->server = g_strdup(server);
    r->base_url = g_strconcat(base, "/imaging/v1/work", NULL);
    r->timeout_ms = timeout_ms;
    r->pending = g_hash_table_new(NULL, NULL);
    r->cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    r->pool = g_thread_pool_new(work, r, WORKERS, FALSE, NULL);
    return r;
}

const char *policy_remote_server(const PolicyRemote *r)
{
    return r->server;
}

gboolean policy_remote_cached(PolicyRemote *r, const PolicyDevice *dev, PolicyRemoteAnswer *out)
{
    g_autofree char *key = device_key(dev);
    Cached *c = g_hash_table_lookup(r->cache, key);
    if (c == NULL)
        return FALSE;
    gint64 ttl = c->a.answered ? POLICY_REMOTE_CACHE_TTL_S : POLICY_REMOTE_NEGATIVE_TTL_S;
    if ((gint64)r->host->monotonic_us() - c->at_us > ttl * G_USEC_PER_SEC) {
        g_hash_table_remove(r->cache, key);
        return FALSE;
    }
    *out = c->a;
    return TRUE;
}

static void append_query(GString *u, const char *key, const char *value)
{
    if (value == NULL || *value == '\0')
        return;
    g_autofree char *v = g_uri_escape_string(value, NULL, FALSE);
    g_string_append_printf(u, "%c%s=%s", strchr(u->str, '?') != NULL ? '&' : '?', key, v);
}

gboolean policy_remote_ask(PolicyRemote *r, const PolicyDevice *dev, PolicyRemoteFn fn, void *data)
{
    if (dev->mac[0] == '\0' || g_hash_table_size(r->pending) >= POLICY_REMOTE_PENDING_MAX ||
        g_atomic_int_get(&r->closed))
        return FALSE;
    Query *q = g_new0(Query, 1);
    q->refs = 2; /* the pending set's and the worker's */
    g_atomic_int_inc(&r->refs);
    q->r = r;
    q->key = device_key(dev);
    q->fn = fn;
    q->data = data;
    GString *u = g_string_new(r->base_url);
    append_query(u, "mac", dev->mac);
    append_query(u, "uuid", dev->uuid);
    append_query(u, "serial", dev->serial);
    q->url = g_string_free(u, FALSE);
    g_hash_table_add(r->pending, q);
    q->timer = r->host->timer_add(r->inst, r->timeout_ms, on_deadline, q);
    g_thread_pool_push(r->pool, q, NULL);
    return TRUE;
}

void policy_remote_free(PolicyRemote *r)
{
    if (r == NULL)
        return;
    /* Everyone waiting gets the rules' answer now. */
    GList *waiting = g_hash_table_get_keys(r->pending);
    PolicyRemoteAnswer none = {0};
    for (GList *l = waiting; l != NULL; l = l->next)
        deliver(l->data, &none);
    g_list_free(waiting);
    g_atomic_int_set(&r->closed, 1);
    /* Questions not started are dropped by work(); those being asked end by their
     * deadline (CURLOPT_TIMEOUT_MS), so this wait is bounded. */
    g_thread_pool_free(r->pool, FALSE, TRUE);
    remote_unref(r);
}
