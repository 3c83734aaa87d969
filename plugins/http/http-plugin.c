/* http-plugin.c - the daemon's one HTTP listener (libmicrohttpd) and the preboot.http
 * service through which other plugins add routes (include/preboot/http.h).
 *
 * Why libmicrohttpd (Debian libmicrohttpd-dev): a small, well-kept embedded server that
 * can run without threads of its own, driven from our main loop ("external" polling), so
 * handlers run on the main loop thread as plugin.h requires and no locking is needed.
 * Hand-written HTTP is exactly what the issue rules out.
 *
 * The loop: libmicrohttpd keeps its sockets in an epoll set whose one descriptor the main
 * loop watches (http-loop-posix.c; Windows: http-loop-win32.c); after every event MHD_run()
 * does the work, and a timer follows MHD_get_timeout() for its idle timeouts and for
 * connections it still has buffered work on.
 *
 * One unfriendly client: connections are bounded per address and in total, a client gets
 * header_timeout seconds to send its headers, each connection's memory is bounded by
 * libmicrohttpd's pool, and a request is refused (405, 403, 401, 413) from its headers,
 * before any of its body is read, unless its route takes a body that size. */
#include "build-config.h"

#include <preboot/http.h>
#include <preboot/plugin.h>

#include "net-access.h"
#include "http-loop.h"
#include "http-range.h"
#include "http-routes.h"
#include "http-sockaddr.h"
#include "net.h"

#include <microhttpd.h>
#include <string.h>

/* The longest the loop sleeps: the header-timeout sweep runs at least this often. */
#define SWEEP_MS 1000
/* Bytes a streamed response asks its read_fn for at once. */
#define STREAM_BLOCK (64 * 1024)
/* libmicrohttpd warnings per second at most (one per refused connection otherwise). */
#define MHD_LOG_PER_SECOND 10

/* An empty MHD_OPTION_ARRAY: the place of the TLS options when there is no certificate. */
static struct MHD_OptionItem no_options[] = {{MHD_OPTION_END, 0, NULL}};

static const pb_param params[] = {
    {.name = "listen",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "Address the HTTP server listens on; empty: every IPv4 address of the host."},
    {.name = "port",
     .type = PB_PARAM_INT,
     .flags = PB_PARAM_F_RESTART,
     .def = "8080",
     .min = 1,
     .max = 65535,
     .help = "TCP port of the HTTP server (iPXE scripts, the imaging API)."},
    {.name = "max_body_size",
     .type = PB_PARAM_INT,
     .def = "1048576",
     .min = 0,
     .max = 1073741824,
     .unit = "bytes",
     .help = "Largest request body buffered for a route that takes whole bodies; larger ones "
             "are refused with 413."},
    {.name = "body_buffer_total",
     .type = PB_PARAM_INT,
     .def = "16777216",
     .min = 0,
     .max = 4294967296,
     .unit = "bytes",
     .help = "Most memory all buffered request bodies together may hold; a request that would "
             "pass it is refused with 503 before its body is read."},
    {.name = "connection_limit",
     .type = PB_PARAM_INT,
     .flags = PB_PARAM_F_RESTART,
     .def = "256",
     .min = 1,
     .max = 10000,
     .help = "Most connections served at once; more are refused."},
    {.name = "per_address_limit",
     .type = PB_PARAM_INT,
     .flags = PB_PARAM_F_RESTART,
     .def = "16",
     .min = 1,
     .max = 10000,
     .help = "Most connections from one client address at once; more are refused."},
    {.name = "connection_timeout",
     .type = PB_PARAM_INT,
     .flags = PB_PARAM_F_RESTART,
     .def = "30",
     .min = 1,
     .max = 3600,
     .unit = "s",
     .help = "An idle connection is closed after this long."},
    {.name = "header_timeout",
     .type = PB_PARAM_INT,
     .def = "10",
     .min = 1,
     .max = 3600,
     .unit = "s",
     .help = "A client must have sent a request's whole header this long after it connected "
             "or its previous request ended, or it is cut, however it trickles."},
    {.name = "connection_memory_limit",
     .type = PB_PARAM_INT,
     .flags = PB_PARAM_F_RESTART,
     .def = "65536",
     .min = 8192,
     .max = 1048576,
     .unit = "bytes",
     .help = "Memory for one connection's headers and buffers; larger headers get 431."},
    {.name = "tls_certificate",
     .type = PB_PARAM_PATH,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "PEM file with the listener's certificate (and its chain); set: the listener "
             "speaks HTTPS only. Read at start and at reload; a changed file takes effect on "
             "restart."},
    {.name = "tls_key",
     .type = PB_PARAM_PATH,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "PEM file with the private key of tls_certificate (unencrypted; keep it readable "
             "by the daemon only)."},
    PB_LOG_PARAMS(NULL, NULL, NULL, "preboot-http.log",
                  "0 critical, 1 warnings and failed requests, 2 every answered request, 3 "
                  "request details, 4 debugging."),
};

typedef struct {
    char *listen;
    char *tls_cert_file, *tls_key_file;
    char *tls_cert, *tls_key; /* their contents, NULL without TLS */
    gint64 port, max_body, body_total, conn_limit, per_addr, conn_timeout, header_timeout,
        conn_memory;
} Settings;

typedef struct Req Req;

typedef struct {
    HttpRoutes *routes;
    struct MHD_Daemon *mhd;
    HttpLoop *loop;
    pb_timer *timer;
    guint64 timer_due_us;
    guint64 next_sweep_us;
    GHashTable *conns; /* Conn* set: every open connection */
    GHashTable *reqs;  /* Req* set: every request in flight */
    guint64 buffered;  /* bytes reserved for buffered bodies, all requests */
    guint64 log_second, log_count, log_dropped;
} State;

typedef struct {
    const pb_host *host;
    pb_instance *inst;
    Settings set;
    State st;
    gboolean running;
    guint16 bound_port;
    pb_http_service iface;
    struct {
        pb_counter *requests, *not_found, *errors, *too_large, *answered, *denied, *bad_method,
            *busy, *header_timeouts;
    } c;
} Http;

/* One connection (libmicrohttpd's socket context), for the header timeout. */
typedef struct {
    MHD_socket fd;
    Req *req;         /* the request in flight, if any */
    guint64 since_us; /* connected, or the previous request ended */
    gboolean in_request;
    gboolean cut;
} Conn;

struct pb_http_response {
    Req *rq;
    GPtrArray *headers; /* name, value, name, value... */
    gboolean answered;
    unsigned status;
};

typedef struct Stream Stream;

/* One request in flight (libmicrohttpd's per-request context). */
struct Req {
    pb_http_request pub; /* first: the service hands out &pub and gets it back */
    pb_http_response resp;
    Http *h;
    struct MHD_Connection *conn;
    Conn *c;
    char client[64];
    PbAddr peer;
    /* The route, copied: it may be removed while the request is in flight. */
    guint route_id;
    pb_http_handler_fn fn;
    void *data;
    gboolean v3, buffer_body, cancelled;
    guint64 limit;    /* most body bytes accepted */
    guint64 received; /* body bytes seen */
    guint64 reserved; /* of State.buffered */
    GByteArray *body; /* buffered routes */
    gboolean has_body, admitted, discard, body_ended, can_queue, suspended;
    unsigned refuse_status; /* an answer decided while the body was arriving */
    struct MHD_Response *pending;
    unsigned pending_status;
    pb_http_body_fn body_fn;
    void *body_handle;
    pb_http_done_fn done_fn;
    void *done_handle;
    Stream *stream;
};

struct Stream {
    pb_http_read_fn read;
    pb_http_free_fn free;
    void *handle;
    guint64 base; /* first byte (ranges) */
    Req *rq;      /* NULL once the request is over */
};

static void settings_clear(Settings *s)
{
    g_free(s->listen);
    g_free(s->tls_cert_file);
    g_free(s->tls_key_file);
    g_free(s->tls_cert);
    if (s->tls_key != NULL) {
        memset(s->tls_key, 0, strlen(s->tls_key)); /* a private key: leave no copy behind */
        g_free(s->tls_key);
    }
    memset(s, 0, sizeof(*s));
}

/* One PEM file of a TLS parameter, whole; NULL with the reason (naming the parameter where
 * it is configured) in err. Only the PEM armour is checked here: libmicrohttpd and GnuTLS
 * judge the rest when the listener starts. */
static char *read_pem(const pb_host *h, const pb_config *cfg, const char *param, const char *file,
                      const char *what, pb_err *err)
{
    g_autoptr(GError) e = NULL;
    char *text = NULL;
    gsize len = 0;
    if (!g_file_get_contents(file, &text, &len, &e)) {
        h->error(err, "%s: %s", pb_config_where(h, cfg, param), e->message);
        return NULL;
    }
    if (len == 0 || memchr(text, '\0', len) != NULL || strstr(text, "-----BEGIN ") == NULL ||
        strstr(text, what) == NULL) {
        h->error(err, "%s: %s holds no PEM %s", pb_config_where(h, cfg, param), file, what);
        memset(text, 0, len);
        g_free(text);
        return NULL;
    }
    return text;
}

/* The TLS files: both or neither, readable, PEM. */
static bool settings_load_tls(const pb_host *h, const pb_config *cfg, Settings *s, pb_err *err)
{
    gboolean cert = *s->tls_cert_file != '\0', key = *s->tls_key_file != '\0';
    if (!cert && !key)
        return true;
    if (cert != key) {
        const char *missing = cert ? "tls_key" : "tls_certificate";
        h->error(err, "%s: set, but %s is not: HTTPS needs both",
                 pb_config_where(h, cfg, cert ? "tls_certificate" : "tls_key"), missing);
        return false;
    }
    s->tls_cert = read_pem(h, cfg, "tls_certificate", s->tls_cert_file, "CERTIFICATE", err);
    if (s->tls_cert == NULL)
        return false;
    s->tls_key = read_pem(h, cfg, "tls_key", s->tls_key_file, "PRIVATE KEY", err);
    return s->tls_key != NULL;
}

static void settings_load(const pb_host *h, const pb_config *cfg, Settings *s)
{
    s->listen = g_strdup(h->config_string(cfg, "listen"));
    s->tls_cert_file = g_strdup(h->config_string(cfg, "tls_certificate"));
    s->tls_key_file = g_strdup(h->config_string(cfg, "tls_key"));
    s->port = h->config_int(cfg, "port");
    s->max_body = h->config_int(cfg, "max_body_size");
    s->body_total = h->config_int(cfg, "body_buffer_total");
    s->conn_limit = h->config_int(cfg, "connection_limit");
    s->per_addr = h->config_int(cfg, "per_address_limit");
    s->conn_timeout = h->config_int(cfg, "connection_timeout");
    s->header_timeout = h->config_int(cfg, "header_timeout");
    s->conn_memory = h->config_int(cfg, "connection_memory_limit");
}

/* ---- the event loop --------------------------------------------------------------------- */

static void pump(void *data);

static bool on_timer(void *data)
{
    Http *h = data;
    h->st.timer = NULL; /* this one ends with our return; pump() may start the next */
    pump(h);
    return false;
}

/* Makes sure the loop runs MHD again within delay_ms. */
static void wake_within(Http *h, guint64 delay_ms)
{
    guint64 due = h->host->monotonic_us() + delay_ms * 1000;
    if (h->st.timer != NULL && h->st.timer_due_us <= due)
        return;
    if (h->st.timer != NULL)
        h->host->timer_remove(h->st.timer);
    h->st.timer = h->host->timer_add(h->inst, (uint32_t)delay_ms, on_timer, h);
    h->st.timer_due_us = due;
}

/* Cuts connections whose header has not arrived within header_timeout: libmicrohttpd's
 * own timeout is an idle one, which a client sending a line every few seconds resets. */
static void sweep(Http *h, guint64 now)
{
    guint64 limit = (guint64)h->set.header_timeout * G_USEC_PER_SEC;
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, h->st.conns);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        Conn *c = key;
        if (c->in_request || c->cut || now - c->since_us < limit)
            continue;
        c->cut = TRUE;
        h->host->counter_add(h->c.header_timeouts, 1);
        http_loop_cut(c->fd);
    }
}

static void pump(void *data)
{
    Http *h = data;
    if (h->st.mhd == NULL || !h->running)
        return;
    MHD_run(h->st.mhd);
    guint64 now = h->host->monotonic_us();
    if (now >= h->st.next_sweep_us) {
        h->st.next_sweep_us = now + SWEEP_MS * 1000;
        sweep(h, now);
    }
    http_loop_sync(h->st.loop);
    MHD_UNSIGNED_LONG_LONG ms = SWEEP_MS;
    if (MHD_get_timeout(h->st.mhd, &ms) != MHD_YES || ms > SWEEP_MS)
        ms = SWEEP_MS;
    wake_within(h, ms);
}

/* ---- requests: refusals ----------------------------------------------------------------- */

static struct MHD_Response *text_response(const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (r != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    return r;
}

static void log_request(Http *h, const pb_http_request *req, unsigned status)
{
    int level = status >= 500 ? PB_LOG_WARNING : PB_LOG_TRANSACTION;
    if (h->host->log_enabled(h->inst, level))
        h->host->log(h->inst, level, "%s %s %s -> %u", req->client, req->method, req->path, status);
}

static const struct {
    const char *name;
    guint32 bit;
} methods[] = {
    {"GET", PB_HTTP_M_GET},     {"HEAD", PB_HTTP_M_HEAD},     {"POST", PB_HTTP_M_POST},
    {"PUT", PB_HTTP_M_PUT},     {"DELETE", PB_HTTP_M_DELETE}, {"OPTIONS", PB_HTTP_M_OPTIONS},
    {"PATCH", PB_HTTP_M_PATCH},
};

static guint32 method_bit(const char *m)
{
    for (guint i = 0; i < G_N_ELEMENTS(methods); i++)
        if (strcmp(m, methods[i].name) == 0)
            return methods[i].bit;
    return PB_HTTP_M_OTHER;
}

static char *allow_header(guint32 allowed)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < G_N_ELEMENTS(methods); i++)
        if (allowed & methods[i].bit)
            g_string_append_printf(s, "%s%s", s->len ? ", " : "", methods[i].name);
    return g_string_free(s, FALSE);
}

/* Queues a refusal from the headers (the body, if any, is never read: libmicrohttpd closes
 * the connection after the answer). extra_name/value: one header, or NULL. */
static enum MHD_Result refuse(Req *rq, unsigned status, const char *text, const char *extra_name,
                              const char *extra_value)
{
    struct MHD_Response *r = text_response(text);
    if (r == NULL)
        return MHD_NO;
    if (extra_name != NULL)
        MHD_add_response_header(r, extra_name, extra_value);
    enum MHD_Result res = MHD_queue_response(rq->conn, status, r);
    MHD_destroy_response(r);
    rq->resp.answered = TRUE;
    rq->resp.status = status;
    log_request(rq->h, &rq->pub, status);
    return res;
}

/* ---- requests: answers ------------------------------------------------------------------ */

static void kick(Http *h)
{
    if (h->running)
        wake_within(h, 0);
}

/* Hands a response to libmicrohttpd, which takes it only from its request callback or for
 * a suspended connection; otherwise (a piece of body is being delivered) it waits for the
 * end of the body. */
static gboolean deliver(Req *rq, struct MHD_Response *r, unsigned status)
{
    rq->resp.answered = TRUE;
    rq->resp.status = status;
    log_request(rq->h, &rq->pub, status);
    if (rq->can_queue || rq->suspended) {
        enum MHD_Result res = MHD_queue_response(rq->conn, status, r);
        if (res == MHD_YES || rq->can_queue) {
            MHD_destroy_response(r);
            if (rq->suspended) {
                rq->suspended = FALSE;
                MHD_resume_connection(rq->conn);
                kick(rq->h);
            }
            return res == MHD_YES;
        }
    }
    /* Mid-body: the rest of the body is read and dropped, then this answer goes out. */
    rq->pending = r;
    rq->pending_status = status;
    rq->discard = TRUE;
    if (rq->suspended) {
        rq->suspended = FALSE;
        MHD_resume_connection(rq->conn);
        kick(rq->h);
    }
    return TRUE;
}

static gboolean finish(pb_http_response *resp, struct MHD_Response *r, unsigned status,
                       const char *content_type)
{
    if (r == NULL)
        return FALSE;
    if (content_type != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (guint i = 0; i + 1 < resp->headers->len; i += 2)
        MHD_add_response_header(r, g_ptr_array_index(resp->headers, i),
                                g_ptr_array_index(resp->headers, i + 1));
    return deliver(resp->rq, r, status);
}

/* ---- requests: the request callback ----------------------------------------------------- */

static void release_body(Req *rq)
{
    rq->h->st.buffered -= rq->reserved;
    rq->reserved = 0;
    if (rq->body != NULL)
        g_byte_array_unref(rq->body);
    rq->body = NULL;
}

static Req *req_new(Http *h, struct MHD_Connection *conn, const char *url, const char *method)
{
    Req *rq = g_new0(Req, 1);
    rq->h = h;
    rq->conn = conn;
    rq->resp.rq = rq;
    rq->resp.headers = g_ptr_array_new_with_free_func(g_free);
    g_strlcpy(rq->client, "?", sizeof(rq->client));
    guint16 cport = 0;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci != NULL && http_sockaddr_format(ci->client_addr, rq->client, sizeof(rq->client), &cport))
        pb_addr_parse(rq->client, cport, &rq->peer);
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci != NULL && ci->socket_context != NULL) {
        rq->c = ci->socket_context;
        rq->c->in_request = TRUE;
        rq->c->req = rq;
    }
    rq->pub.struct_size = sizeof(rq->pub);
    rq->pub.method = method;
    rq->pub.path = url;
    rq->pub.client = rq->client;
    rq->pub.client_port = cport;
    rq->pub.method_id = method_bit(method);

    /* The announced body: Content-Length, or chunked (RFC 9112 6.3). */
    const char *te =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    guint64 n = 0;
    if (te != NULL && g_ascii_strcasecmp(te, "identity") != 0)
        rq->pub.content_length = PB_HTTP_LENGTH_UNKNOWN;
    else if (cl != NULL && g_ascii_string_to_unsigned(cl, 10, 0, G_MAXUINT64 - 1, &n, NULL))
        rq->pub.content_length = n;
    rq->has_body = rq->pub.content_length != 0;
    g_hash_table_add(h->st.reqs, rq);
    return rq;
}

/* Runs the handler; afterwards the request is answered, suspended, taking its body, or
 * failed (500). */
static void run_handler(Req *rq)
{
    Http *h = rq->h;
    gboolean ok = rq->fn(rq->data, &rq->pub, &rq->resp);
    if (rq->resp.answered || rq->suspended || (ok && rq->body_fn != NULL))
        return;
    if (rq->v3 && !rq->buffer_body && ok && !rq->has_body)
        return; /* the final callback follows at once; it decides */
    h->host->counter_add(h->c.errors, 1);
    if (ok)
        h->host->log(h->inst, PB_LOG_WARNING, "%s %s: the handler did not answer", rq->pub.method,
                     rq->pub.path);
    struct MHD_Response *r = text_response("internal error\n");
    if (r != NULL)
        deliver(rq, r, MHD_HTTP_INTERNAL_SERVER_ERROR);
}

/* The headers are in: decide from them alone, before any of the body is read. */
static enum MHD_Result admit(Http *h, Req *rq)
{
    h->host->counter_add(h->c.requests, 1);
    const HttpRoute *route = http_routes_find(h->st.routes, rq->pub.path);
    if (route == NULL) {
        h->host->counter_add(h->c.not_found, 1);
        return refuse(rq, MHD_HTTP_NOT_FOUND, "not found\n", NULL, NULL);
    }
    const HttpRouteOpts *o = &route->opts;
    rq->route_id = route->id;
    rq->fn = route->fn;
    rq->data = route->data;
    rq->v3 = o->v3;
    rq->buffer_body = !o->v3 || (o->flags & PB_HTTP_ROUTE_BUFFER_BODY);
    rq->limit = o->v3 ? o->max_body : (guint64)h->set.max_body;
    if (rq->buffer_body && rq->limit > (guint64)h->set.max_body && !o->v3)
        rq->limit = (guint64)h->set.max_body;

    if (o->v3 && !(o->methods & rq->pub.method_id)) {
        h->host->counter_add(h->c.bad_method, 1);
        g_autofree char *allow = allow_header(o->methods);
        return refuse(rq, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
                      MHD_HTTP_HEADER_ALLOW, allow);
    }
    if (!pb_networks_allow(o->networks, &rq->peer)) {
        h->host->counter_add(h->c.denied, 1);
        return refuse(rq, MHD_HTTP_FORBIDDEN, "forbidden\n", NULL, NULL);
    }
    if (o->token != NULL &&
        !pb_bearer_ok(
            MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
            o->token)) {
        h->host->counter_add(h->c.denied, 1);
        return refuse(rq, MHD_HTTP_UNAUTHORIZED, "unauthorized\n", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                      "Bearer realm=\"preboot\"");
    }
    guint64 len = rq->pub.content_length;
    if (rq->has_body && (rq->limit == 0 || (len != PB_HTTP_LENGTH_UNKNOWN && len > rq->limit))) {
        h->host->counter_add(h->c.too_large, 1);
        return refuse(rq, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n", NULL, NULL);
    }
    if (rq->buffer_body && rq->has_body) {
        /* Reserve the announced length now, so that many clients announcing bodies cannot
         * together hold more than body_buffer_total while they trickle them. */
        guint64 want = len == PB_HTTP_LENGTH_UNKNOWN ? 0 : len;
        if (h->st.buffered + want > (guint64)h->set.body_total) {
            h->host->counter_add(h->c.busy, 1);
            return refuse(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "busy, try again later\n",
                          MHD_HTTP_HEADER_RETRY_AFTER, "5");
        }
        h->st.buffered += want;
        rq->reserved = want;
    }
    if (!rq->buffer_body)
        run_handler(rq);
    return MHD_YES;
}

static enum MHD_Result take_body(Http *h, Req *rq, const char *data, size_t *size)
{
    size_t len = *size;
    *size = 0;
    if (rq->discard || rq->cancelled)
        return MHD_YES;
    rq->received += len;
    if (rq->received > rq->limit) {
        /* A chunked body past the limit. */
        h->host->counter_add(h->c.too_large, 1);
        if (!rq->buffer_body)
            return MHD_NO; /* the route has taken part of it: cut, do not pretend */
        rq->discard = TRUE;
        rq->refuse_status = MHD_HTTP_CONTENT_TOO_LARGE;
        release_body(rq);
        return MHD_YES;
    }
    if (rq->buffer_body) {
        if (rq->received > rq->reserved) {
            guint64 more = rq->received - rq->reserved;
            if (h->st.buffered + more > (guint64)h->set.body_total) {
                h->host->counter_add(h->c.busy, 1);
                rq->discard = TRUE;
                rq->refuse_status = MHD_HTTP_SERVICE_UNAVAILABLE;
                release_body(rq);
                return MHD_YES;
            }
            h->st.buffered += more;
            rq->reserved += more;
        }
        if (rq->body == NULL)
            rq->body = g_byte_array_sized_new((guint)MIN(rq->reserved, 1u << 20));
        g_byte_array_append(rq->body, (const guint8 *)data, (guint)len);
        return MHD_YES;
    }
    if (rq->body_fn == NULL)
        return MHD_NO;
    if (!rq->body_fn(rq->body_handle, &rq->pub, &rq->resp, data, len))
        return MHD_NO;
    return MHD_YES;
}

/* The whole request is in (libmicrohttpd may call this again while it is unanswered). */
static enum MHD_Result body_end(Http *h, Req *rq)
{
    if (rq->pending != NULL) {
        enum MHD_Result res = MHD_queue_response(rq->conn, rq->pending_status, rq->pending);
        MHD_destroy_response(rq->pending);
        rq->pending = NULL;
        return res;
    }
    if (rq->resp.answered)
        return MHD_YES; /* queued already (a suspended request answered, then resumed) */
    if (rq->cancelled)
        return refuse(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "route removed\n", NULL, NULL);
    if (rq->refuse_status != 0)
        return refuse(rq, rq->refuse_status,
                      rq->refuse_status == MHD_HTTP_SERVICE_UNAVAILABLE
                          ? "busy\n"
                          : "request body too large\n",
                      NULL, NULL);
    if (rq->buffer_body) {
        if (rq->body_ended) {
            if (rq->suspended)
                return MHD_YES;
        } else {
            rq->body_ended = TRUE;
            rq->pub.body = rq->body ? rq->body->data : NULL;
            rq->pub.body_len = rq->body ? rq->body->len : 0;
            run_handler(rq);
            return MHD_YES;
        }
    } else if (!rq->body_ended && rq->body_fn != NULL) {
        rq->body_ended = TRUE;
        if (!rq->body_fn(rq->body_handle, &rq->pub, &rq->resp, NULL, 0) && !rq->resp.answered)
            return MHD_NO;
        if (rq->resp.answered || rq->suspended)
            return MHD_YES;
    } else if (rq->suspended) {
        return MHD_YES;
    }
    h->host->counter_add(h->c.errors, 1);
    h->host->log(h->inst, PB_LOG_WARNING, "%s %s: the route did not answer", rq->pub.method,
                 rq->pub.path);
    return refuse(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n", NULL, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    Http *h = cls;
    Req *rq = *con_cls;
    (void)version;
    enum MHD_Result res;
    if (rq == NULL) {
        rq = req_new(h, conn, url, method);
        *con_cls = rq;
        /* libmicrohttpd (0.9.75) closes the connection after any answer queued in a
         * request's first call, even to a GET: it has not seen the request's end. A request
         * without a body is therefore admitted at its second call, which follows at once,
         * and its connection stays open for the next request (a capture's chunk requests,
         * the files of an HTTP boot). One with a body is decided here, from its headers
         * alone, before any of the body is read (a refused upload is never sent: Expect:
         * 100-continue); its connection closes after a refusal. */
        if (!rq->has_body)
            return MHD_YES;
        rq->admitted = TRUE;
        rq->can_queue = TRUE;
        res = admit(h, rq);
        rq->can_queue = FALSE;
        return res;
    }
    if (*upload_data_size > 0)
        return take_body(h, rq, upload_data, upload_data_size);
    rq->can_queue = TRUE;
    if (!rq->admitted) {
        rq->admitted = TRUE;
        res = admit(h, rq);
        if (res != MHD_YES || rq->resp.answered) {
            rq->can_queue = FALSE;
            return res;
        }
    }
    res = body_end(h, rq);
    rq->can_queue = FALSE;
    return res;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    Http *h = cls;
    Req *rq = *con_cls;
    if (rq == NULL)
        return;
    *con_cls = NULL;
    g_hash_table_remove(h->st.reqs, rq);
    if (rq->c != NULL) {
        rq->c->req = NULL;
        rq->c->in_request = FALSE;
        rq->c->since_us = h->host->monotonic_us();
    }
    if (rq->resp.answered && rq->resp.status < 400)
        h->host->counter_add(h->c.answered, 1);
    if (rq->stream != NULL)
        rq->stream->rq = NULL;
    if (rq->pending != NULL)
        MHD_destroy_response(rq->pending);
    release_body(rq);
    if (rq->done_fn != NULL)
        rq->done_fn(rq->done_handle, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    g_ptr_array_unref(rq->resp.headers);
    g_free(rq);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    Http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        Conn *c = g_new0(Conn, 1);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci != NULL ? ci->connect_fd : MHD_INVALID_SOCKET;
        c->since_us = h->host->monotonic_us();
        g_hash_table_add(h->st.conns, c);
        *socket_context = c;
    } else if (*socket_context != NULL) {
        Conn *c = *socket_context;
        if (c->req != NULL)
            c->req->c = NULL; /* should the request outlive its connection's record */
        g_hash_table_remove(h->st.conns, c);
        g_free(*socket_context);
        *socket_context = NULL;
    }
}

G_GNUC_PRINTF(2, 0)
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    Http *h = cls;
    /* One message per refused connection would let a client fill the log: a few per
     * second, then a count of what was left out. */
    guint64 second = h->host->monotonic_us() / G_USEC_PER_SEC;
    if (second != h->st.log_second) {
        if (h->st.log_dropped > 0)
            h->host->log(h->inst, PB_LOG_WARNING,
                         "libmicrohttpd: %" G_GUINT64_FORMAT " more message(s) left out",
                         h->st.log_dropped);
        h->st.log_second = second;
        h->st.log_count = h->st.log_dropped = 0;
    }
    if (++h->st.log_count > MHD_LOG_PER_SECOND) {
        h->st.log_dropped++;
        return;
    }
    /* libmicrohttpd's messages end in a newline; ours must not. */
    g_autofree char *msg = g_strchomp(g_strdup_vprintf(fmt, ap));
    h->host->log(h->inst, PB_LOG_WARNING, "libmicrohttpd: %s", msg);
}

/* ---- the service ------------------------------------------------------------------------ */

static bool route_add_opts(Http *h, const char *prefix, pb_http_handler_fn fn, void *data,
                           HttpRouteOpts *opts)
{
    gboolean ok = http_routes_add(h->st.routes, prefix, fn, data, opts);
    h->host->log(h->inst, ok ? PB_LOG_REQUEST : PB_LOG_WARNING, "route %s %s", prefix,
                 ok ? "added" : "refused (taken or invalid)");
    return ok;
}

static bool svc_route_add(void *ctx, const char *prefix, pb_http_handler_fn fn, void *data)
{
    return route_add_opts(ctx, prefix, fn, data, NULL);
}

static bool svc_route_add_ex(void *ctx, const char *prefix, pb_http_handler_fn fn, void *data,
                             const pb_http_route_options *options)
{
    Http *h = ctx;
    HttpRouteOpts o;
    if (!http_route_opts_from(options, &o)) {
        h->host->log(h->inst, PB_LOG_WARNING, "route %s refused: a network is not valid", prefix);
        http_route_opts_clear(&o);
        return false;
    }
    bool ok = route_add_opts(h, prefix, fn, data, &o);
    http_route_opts_clear(&o); /* empty when taken over */
    return ok;
}

static void stream_drop(Stream *s)
{
    if (s->free != NULL)
        s->free(s->handle);
    s->free = NULL;
    s->read = NULL;
}

/* The route's plugin may be going away: none of its callbacks runs after this. Waiting
 * requests get 503; a download in progress ends with an error. */
static void cancel(Http *h, Req *rq)
{
    rq->cancelled = TRUE;
    rq->body_fn = NULL;
    rq->done_fn = NULL;
    if (rq->stream != NULL)
        stream_drop(rq->stream);
    if (rq->suspended && !rq->resp.answered) {
        struct MHD_Response *r = text_response("route removed\n");
        if (r != NULL)
            deliver(rq, r, MHD_HTTP_SERVICE_UNAVAILABLE);
    }
    if (rq->suspended) {
        rq->suspended = FALSE;
        MHD_resume_connection(rq->conn);
        kick(h);
    }
}

static void svc_route_remove(void *ctx, const char *prefix, pb_http_handler_fn fn, void *data)
{
    Http *h = ctx;
    guint id = http_routes_remove(h->st.routes, prefix, fn, data);
    if (id == 0)
        return;
    h->host->log(h->inst, PB_LOG_REQUEST, "route %s removed", prefix);
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, h->st.reqs);
    while (g_hash_table_iter_next(&it, &key, NULL))
        if (((Req *)key)->route_id == id)
            cancel(h, key);
}

static uint16_t svc_listen_port(void *ctx)
{
    return ((Http *)ctx)->bound_port;
}

static const char *svc_listen_address(void *ctx)
{
    return ((Http *)ctx)->set.listen;
}

static bool svc_routed(void *ctx, const char *path)
{
    Http *h = ctx;
    return path != NULL && http_routes_find(h->st.routes, path) != NULL;
}

static const char *svc_query(void *ctx, const pb_http_request *req, const char *name)
{
    const Req *r = (const Req *)req;
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static const char *svc_header(void *ctx, const pb_http_request *req, const char *name)
{
    const Req *r = (const Req *)req;
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static gboolean header_ok(const char *s, gboolean name)
{
    if (s == NULL || (name && *s == '\0'))
        return FALSE;
    for (const char *p = s; *p; p++)
        if (*p == '\r' || *p == '\n' || (name && (*p == ':' || *p == ' ')))
            return FALSE;
    return TRUE;
}

static bool svc_add_header(void *ctx, pb_http_response *resp, const char *name, const char *value)
{
    if (resp->answered || !header_ok(name, TRUE) || !header_ok(value, FALSE))
        return false;
    g_ptr_array_add(resp->headers, g_strdup(name));
    g_ptr_array_add(resp->headers, g_strdup(value));
    return true;
}

static bool svc_respond(void *ctx, pb_http_response *resp, unsigned status,
                        const char *content_type, const void *body, size_t len)
{
    if (resp->answered || resp->rq->cancelled || status < 100 || status > 599)
        return false;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(len ? body : ""), MHD_RESPMEM_MUST_COPY);
    return finish(resp, r, status, content_type);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    Stream *s = cls;
    if (s->read == NULL)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    int64_t n = s->read(s->handle, s->base + pos, buf, max);
    if (n == PB_HTTP_READ_AGAIN && s->rq != NULL) {
        /* No data yet: out of the loop until the route calls resume(). Suspending from
         * here is allowed (microhttpd.h, MHD_suspend_connection). */
        s->rq->suspended = TRUE;
        MHD_suspend_connection(s->rq->conn);
        return 0;
    }
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    return (ssize_t)MIN((uint64_t)n, max);
}

static void stream_free(void *cls)
{
    Stream *s = cls;
    stream_drop(s);
    if (s->rq != NULL)
        s->rq->stream = NULL;
    g_free(s);
}

static bool respond_stream_at(pb_http_response *resp, unsigned status, const char *content_type,
                              int64_t size, guint64 base, pb_http_read_fn read_fn,
                              pb_http_free_fn free_fn, void *handle)
{
    Stream *s = g_new0(Stream, 1);
    s->read = read_fn;
    s->free = free_fn;
    s->handle = handle;
    s->base = base;
    s->rq = resp->rq;
    struct MHD_Response *r = MHD_create_response_from_callback(
        size < 0 ? MHD_SIZE_UNKNOWN : (uint64_t)size, STREAM_BLOCK, stream_read, s, stream_free);
    if (r == NULL) {
        stream_free(s);
        return false;
    }
    resp->rq->stream = s;
    return finish(resp, r, status, content_type);
}

static bool svc_respond_stream(void *ctx, pb_http_response *resp, unsigned status,
                               const char *content_type, int64_t size, pb_http_read_fn read_fn,
                               pb_http_free_fn free_fn, void *handle)
{
    if (resp->answered || resp->rq->cancelled || read_fn == NULL || status < 100 || status > 599)
        return false;
    return respond_stream_at(resp, status, content_type, size, 0, read_fn, free_fn, handle);
}

static const char *response_header(const pb_http_response *resp, const char *name)
{
    for (guint i = 0; i + 1 < resp->headers->len; i += 2)
        if (g_ascii_strcasecmp(g_ptr_array_index(resp->headers, i), name) == 0)
            return g_ptr_array_index(resp->headers, i + 1);
    return NULL;
}

static bool svc_respond_range(void *ctx, const pb_http_request *req, pb_http_response *resp,
                              const char *content_type, uint64_t size, pb_http_read_fn read_fn,
                              pb_http_free_fn free_fn, void *handle)
{
    if (resp->answered || resp->rq->cancelled || read_fn == NULL || size > G_MAXINT64)
        return false;
    Req *rq = resp->rq;
    const char *range = NULL;
    if (rq->pub.method_id & (PB_HTTP_M_GET | PB_HTTP_M_HEAD))
        range = svc_header(ctx, req, MHD_HTTP_HEADER_RANGE);
    /* If-Range (RFC 9110 13.1.5): the range only applies to the representation the client
     * has; with a validator other than our ETag, it gets the whole of the current one. */
    const char *if_range = svc_header(ctx, req, MHD_HTTP_HEADER_IF_RANGE);
    const char *etag = response_header(resp, MHD_HTTP_HEADER_ETAG);
    if (range != NULL && if_range != NULL && (etag == NULL || strcmp(etag, if_range) != 0))
        range = NULL;
    svc_add_header(ctx, resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    guint64 first = 0, last = 0;
    char cr[96];
    switch (http_range_parse(range, size, &first, &last)) {
    case HTTP_RANGE_OK:
        g_snprintf(cr, sizeof(cr),
                   "bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT, first,
                   last, (guint64)size);
        svc_add_header(ctx, resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        return respond_stream_at(resp, MHD_HTTP_PARTIAL_CONTENT, content_type,
                                 (int64_t)(last - first + 1), first, read_fn, free_fn, handle);
    case HTTP_RANGE_UNSATISFIABLE: {
        if (free_fn != NULL)
            free_fn(handle);
        g_snprintf(cr, sizeof(cr), "bytes */%" G_GUINT64_FORMAT, (guint64)size);
        svc_add_header(ctx, resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        static const char text[] = "range not satisfiable\n";
        return svc_respond(ctx, resp, MHD_HTTP_RANGE_NOT_SATISFIABLE, "text/plain; charset=utf-8",
                           text, sizeof(text) - 1);
    }
    case HTTP_RANGE_NONE:
    default:
        return respond_stream_at(resp, MHD_HTTP_OK, content_type, (int64_t)size, 0, read_fn,
                                 free_fn, handle);
    }
}

static bool svc_receive_body(void *ctx, pb_http_response *resp, pb_http_body_fn fn, void *handle)
{
    Req *rq = resp->rq;
    if (fn == NULL || rq->body_fn != NULL || resp->answered || rq->buffer_body || rq->cancelled)
        return false;
    rq->body_fn = fn;
    rq->body_handle = handle;
    return true;
}

static bool svc_suspend(void *ctx, pb_http_response *resp)
{
    Req *rq = resp->rq;
    if (rq->cancelled || resp->answered)
        return false;
    if (!rq->suspended) {
        rq->suspended = TRUE;
        MHD_suspend_connection(rq->conn);
    }
    return true;
}

static bool svc_resume(void *ctx, pb_http_response *resp)
{
    Req *rq = resp->rq;
    if (!rq->suspended)
        return true;
    rq->suspended = FALSE;
    MHD_resume_connection(rq->conn);
    kick(rq->h);
    return true;
}

static bool svc_on_done(void *ctx, pb_http_response *resp, pb_http_done_fn fn, void *handle)
{
    Req *rq = resp->rq;
    if (rq->done_fn != NULL || rq->cancelled)
        return false;
    rq->done_fn = fn;
    rq->done_handle = handle;
    return true;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void state_free(Http *h)
{
    http_routes_free(h->st.routes);
    h->st.routes = NULL;
    if (h->st.conns != NULL)
        g_hash_table_unref(h->st.conns);
    if (h->st.reqs != NULL)
        g_hash_table_unref(h->st.reqs);
    h->st.conns = h->st.reqs = NULL;
}

static void *http_create(const pb_host *host, pb_instance *inst, const pb_config *cfg, pb_err *err)
{
    Http *h = g_new0(Http, 1);
    h->host = host;
    h->inst = inst;
    settings_load(host, cfg, &h->set);
    h->st.routes = http_routes_new();
    h->st.conns = g_hash_table_new(NULL, NULL);
    h->st.reqs = g_hash_table_new(NULL, NULL);
    h->c.requests = host->counter(inst, "requests");
    h->c.answered = host->counter(inst, "answered");
    h->c.not_found = host->counter(inst, "not_found");
    h->c.errors = host->counter(inst, "errors");
    h->c.too_large = host->counter(inst, "too_large");
    h->c.denied = host->counter(inst, "denied");
    h->c.bad_method = host->counter(inst, "bad_method");
    h->c.busy = host->counter(inst, "busy");
    h->c.header_timeouts = host->counter(inst, "header_timeouts");

    if (!settings_load_tls(host, cfg, &h->set, err))
        goto fail;
    gboolean tls = h->set.tls_cert != NULL;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        host->error(err,
                    "%s: set, but this libmicrohttpd was built without TLS "
                    "(GnuTLS): remove tls_certificate and tls_key, or install a libmicrohttpd "
                    "with HTTPS support",
                    pb_config_where(host, cfg, "tls_certificate"));
        goto fail;
    }

    PbAddr bind;
    if (!pb_addr_parse(*h->set.listen ? h->set.listen : "0.0.0.0", (guint16)h->set.port, &bind)) {
        host->error(err, "%s: cannot parse listen address '%s'",
                    pb_config_where(host, cfg, "listen"), h->set.listen);
        goto fail;
    }
    guint8 sa[128];
    gsize salen = http_sockaddr_from(&bind, sa, sizeof(sa));
    if (salen == 0) {
        host->error(err, "unusable listen address '%s'", h->set.listen);
        goto fail;
    }
    /* Bind now, so a port in use is a start-up failure with a clear reason; serve only
     * from start(). The logger comes first: libmicrohttpd warns when it does not, and
     * would print what the options before it have to say on stderr. */
    h->st.mhd = MHD_start_daemon(
        MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME | http_loop_mhd_flags() |
            (bind.family == 6 ? MHD_USE_IPv6 : 0) | (tls ? MHD_USE_TLS : 0),
        (uint16_t)h->set.port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        /* Without TLS the two options are skipped: MHD_OPTION_ARRAY with no entries. */
        tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_ARRAY,
        tls ? (void *)h->set.tls_cert : (void *)no_options,
        tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_ARRAY,
        tls ? (void *)h->set.tls_key : (void *)no_options, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)h->set.conn_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)h->set.per_addr,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)h->set.conn_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)h->set.conn_memory, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_END);
    if (h->st.mhd == NULL) {
        char a[80];
        if (tls)
            host->error(err,
                        "cannot listen on %s (in use, not an address of this host, or "
                        "tls_certificate %s and tls_key %s do not make a certificate and its "
                        "key?)",
                        pb_addr_format(&bind, TRUE, a, sizeof(a)), h->set.tls_cert_file,
                        h->set.tls_key_file);
        else
            host->error(err, "cannot listen on %s (in use, or not an address of this host?)",
                        pb_addr_format(&bind, TRUE, a, sizeof(a)));
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->st.mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->bound_port = di ? di->port : (guint16)h->set.port;

    h->iface.struct_size = sizeof(h->iface);
    h->iface.ctx = h;
    h->iface.route_add = svc_route_add;
    h->iface.route_remove = svc_route_remove;
    h->iface.query = svc_query;
    h->iface.header = svc_header;
    h->iface.add_header = svc_add_header;
    h->iface.respond = svc_respond;
    h->iface.respond_stream = svc_respond_stream;
    h->iface.listen_port = svc_listen_port;
    h->iface.listen_address = svc_listen_address;
    h->iface.routed = svc_routed;
    h->iface.route_add_ex = svc_route_add_ex;
    h->iface.receive_body = svc_receive_body;
    h->iface.suspend = svc_suspend;
    h->iface.resume = svc_resume;
    h->iface.on_done = svc_on_done;
    h->iface.respond_range = svc_respond_range;
    return h;
fail:
    state_free(h);
    settings_clear(&h->set);
    g_free(h);
    return NULL;
}

static bool http_start(void *self, pb_err *err)
{
    Http *h = self;
    h->st.loop = http_loop_new(h->host, h->inst, h->st.mhd, pump, h);
    if (h->st.loop == NULL) {
        h->host->error(err, "cannot watch libmicrohttpd's sockets");
        return false;
    }
    if (!h->host->service_publish(h->inst, PB_HTTP_SERVICE, PB_HTTP_SERVICE_VERSION, &h->iface,
                                  err)) {
        http_loop_free(h->st.loop);
        h->st.loop = NULL;
        return false;
    }
    h->running = TRUE;
    pump(h);
    h->host->log(h->inst, PB_LOG_CRITICAL, "%s server listening on %s:%u",
                 h->set.tls_cert ? "HTTPS" : "HTTP", *h->set.listen ? h->set.listen : "*",
                 h->bound_port);
    return true;
}

static void *http_reload_prepare(void *self, const pb_config *cfg, pb_err *err)
{
    Http *h = self;
    Settings *s = g_new0(Settings, 1);
    settings_load(h->host, cfg, s);
    /* Read again, so a reload reports a file gone bad now rather than at the next restart.
     * libmicrohttpd keeps the certificate it started with: a new one needs a restart. */
    if (!settings_load_tls(h->host, cfg, s, err)) {
        settings_clear(s);
        g_free(s);
        return NULL;
    }
    if (g_strcmp0(s->tls_cert, h->set.tls_cert) != 0 || g_strcmp0(s->tls_key, h->set.tls_key) != 0)
        h->host->log(h->inst, PB_LOG_WARNING,
                     "tls_certificate or tls_key changed; the listener uses the new ones after "
                     "a restart");
    return s;
}

static void http_reload_commit(void *self, void *staged)
{
    Http *h = self;
    Settings *s = staged;
    /* These change in place; the rest is PB_PARAM_F_RESTART. */
    h->set.max_body = s->max_body;
    h->set.body_total = s->body_total;
    h->set.header_timeout = s->header_timeout;
    settings_clear(s);
    g_free(s);
}

static void http_reload_abort(void *self, void *staged)
{
    settings_clear(staged);
    g_free(staged);
}

static void http_status(void *self, pb_status *st)
{
    Http *h = self;
    h->host->status_text(st, "HTTP on %s:%u, %u route(s), %u connection(s)",
                         *h->set.listen ? h->set.listen : "*", h->bound_port,
                         http_routes_count(h->st.routes), g_hash_table_size(h->st.conns));
    h->host->status_kv(st, "port", "%u", h->bound_port);
    h->host->status_kv(st, "connections", "%u", g_hash_table_size(h->st.conns));
    for (guint i = 0; i < http_routes_count(h->st.routes); i++)
        h->host->status_kv(st, "route", "%s", http_routes_nth(h->st.routes, i)->prefix);
}

static void http_stop(void *self)
{
    Http *h = self;
    h->running = FALSE;
    h->host->service_withdraw(h->inst, PB_HTTP_SERVICE);
    http_loop_free(h->st.loop);
    h->st.loop = NULL;
    if (h->st.timer != NULL)
        h->host->timer_remove(h->st.timer);
    h->st.timer = NULL;
    if (h->st.mhd != NULL) {
        /* libmicrohttpd must not be stopped with suspended connections (microhttpd.h):
         * answer the waiting ones and let them go. Their routes still hear on_done(). */
        GHashTableIter it;
        gpointer key;
        g_hash_table_iter_init(&it, h->st.reqs);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
            Req *rq = key;
            if (!rq->suspended)
                continue;
            if (!rq->resp.answered) {
                struct MHD_Response *r = text_response("stopping\n");
                if (r != NULL &&
                    MHD_queue_response(rq->conn, MHD_HTTP_SERVICE_UNAVAILABLE, r) == MHD_YES)
                    rq->resp.answered = TRUE;
                if (r != NULL)
                    MHD_destroy_response(r);
            }
            rq->suspended = FALSE;
            MHD_resume_connection(rq->conn);
        }
        MHD_run(h->st.mhd);
        MHD_stop_daemon(h->st.mhd);
    }
    h->st.mhd = NULL;
}

static void http_destroy(void *self)
{
    Http *h = self;
    if (h->st.mhd != NULL)
        http_stop(h);
    state_free(h);
    settings_clear(&h->set);
    g_free(h);
}

/* Consumers (policy's /boot.ipxe) are started after us and stopped before us. */
static const char *const provides[] = {PB_HTTP_SERVICE, NULL};

static const pb_plugin http_plugin = {
    PB_PLUGIN_HEADER,
    .name = "http",
    .version = PACKAGE_VERSION,
    .description = "The daemon's HTTP listener (iPXE scripts, imaging API) for other plugins",
    PB_PARAMS(params),
    .provides = provides,
    .create = http_create,
    .start = http_start,
    .reload_prepare = http_reload_prepare,
    .reload_commit = http_reload_commit,
    .reload_abort = http_reload_abort,
    .status = http_status,
    .stop = http_stop,
    .destroy = http_destroy,
};

PB_PLUGIN_DEFINE(http, http_plugin)
