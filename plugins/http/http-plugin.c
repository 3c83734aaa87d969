/* http-plugin.c - the daemon's one HTTP listener (libmicrohttpd) and the preboot.http
 * service through which other plugins add routes (include/preboot/http.h).
 *
 * Why libmicrohttpd (Debian libmicrohttpd-dev): a small, well-kept embedded server that
 * can run without threads of its own, driven from our main loop ("external select" mode),
 * so handlers run on the main loop thread as plugin.h requires and no locking is needed.
 * Hand-written HTTP is exactly what the issue rules out.
 *
 * The loop: after every event, MHD_run() does the work and MHD_get_fdset2() says which
 * sockets it wants watched next; the watches are brought in line with that set. A timer
 * lets libmicrohttpd expire idle connections. */
#include "build-config.h"

#include <preboot/http.h>
#include <preboot/plugin.h>

#include "http-routes.h"
#include "http-sockaddr.h"
#include "net.h"

#include <microhttpd.h>
#include <string.h>

#define TIMER_MS 500

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
     .help = "Largest request body accepted; larger ones are refused with 413."},
    {.name = "connection_limit",
     .type = PB_PARAM_INT,
     .flags = PB_PARAM_F_RESTART,
     .def = "256",
     .min = 1,
     .max = 1000,
     .help = "Most connections served at once; more wait in the kernel's backlog."},
    {.name = "connection_timeout",
     .type = PB_PARAM_INT,
     .flags = PB_PARAM_F_RESTART,
     .def = "30",
     .min = 1,
     .max = 3600,
     .unit = "s",
     .help = "An idle connection is closed after this long."},
    PB_LOG_PARAMS(NULL, NULL, NULL, "preboot-http.log",
                  "0 critical, 1 warnings and failed requests, 2 every answered request, 3 "
                  "request details, 4 debugging."),
};

typedef struct {
    char *listen;
    gint64 port, max_body, conn_limit, conn_timeout;
} Settings;

typedef struct {
    pb_watch *watch;
    unsigned events;
    guint gen;
} Watch;

typedef struct {
    const pb_host *host;
    pb_instance *inst;
    Settings set;
    struct MHD_Daemon *mhd;
    HttpRoutes *routes;
    GHashTable *watches; /* fd -> Watch* */
    guint gen;
    pb_timer *timer;
    gboolean running;
    guint16 bound_port;
    pb_http_service iface;
    struct {
        pb_counter *requests, *not_found, *errors, *too_large, *answered;
    } c;
} Http;

struct pb_http_response {
    Http *h;
    struct MHD_Connection *conn;
    GPtrArray *headers; /* name, value, name, value... */
    gboolean answered;
    enum MHD_Result result;
    unsigned status;
};

/* What the request-side of one connection accumulates before its handler runs. */
typedef struct {
    GByteArray *body;
    gboolean too_large;
    struct MHD_Connection *conn;
} Pending;

/* pb_http_request as handed out, with the connection for query() and header(). */
typedef struct {
    pb_http_request pub;
    struct MHD_Connection *conn;
} Request;

static void settings_clear(Settings *s)
{
    g_free(s->listen);
    memset(s, 0, sizeof(*s));
}

static void settings_load(const pb_host *h, const pb_config *cfg, Settings *s)
{
    s->listen = g_strdup(h->config_string(cfg, "listen"));
    s->port = h->config_int(cfg, "port");
    s->max_body = h->config_int(cfg, "max_body_size");
    s->conn_limit = h->config_int(cfg, "connection_limit");
    s->conn_timeout = h->config_int(cfg, "connection_timeout");
}

/* ---- the event loop --------------------------------------------------------------------- */

static void pump(Http *h);

static bool on_socket(void *data, pb_socket_t sock, unsigned events)
{
    pump(data);
    return true;
}

static bool on_timer(void *data)
{
    pump(data);
    return true;
}

static void sync_watches(Http *h)
{
    fd_set rs, ws, es;
    MHD_socket max = 0;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_ZERO(&es);
    if (MHD_get_fdset2(h->mhd, &rs, &ws, &es, &max, FD_SETSIZE) != MHD_YES)
        return;
    guint gen = ++h->gen;
    for (MHD_socket fd = 0; fd <= max; fd++) {
        unsigned ev = (FD_ISSET(fd, &rs) ? PB_IO_IN : 0) | (FD_ISSET(fd, &ws) ? PB_IO_OUT : 0);
        if (ev == 0)
            continue;
        Watch *w = g_hash_table_lookup(h->watches, GINT_TO_POINTER(fd));
        if (w != NULL && w->events == ev) {
            w->gen = gen;
            continue;
        }
        if (w != NULL) {
            h->host->watch_remove(w->watch);
            g_hash_table_remove(h->watches, GINT_TO_POINTER(fd));
        }
        w = g_new0(Watch, 1);
        w->events = ev;
        w->gen = gen;
        w->watch = h->host->watch_socket(h->inst, (pb_socket_t)fd, ev, on_socket, h);
        g_hash_table_insert(h->watches, GINT_TO_POINTER(fd), w);
    }
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, h->watches);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        Watch *w = value;
        if (w->gen != gen) {
            h->host->watch_remove(w->watch);
            g_hash_table_iter_remove(&it);
        }
    }
}

static void pump(Http *h)
{
    if (h->mhd == NULL || !h->running)
        return;
    MHD_run(h->mhd);
    sync_watches(h);
}

static void drop_watches(Http *h)
{
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, h->watches);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        h->host->watch_remove(((Watch *)value)->watch);
        g_hash_table_iter_remove(&it);
    }
}

/* ---- requests --------------------------------------------------------------------------- */

static enum MHD_Result queue_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    enum MHD_Result res = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return res;
}

static void log_request(Http *h, const pb_http_request *req, unsigned status)
{
    int level = status >= 500 ? PB_LOG_WARNING : PB_LOG_TRANSACTION;
    if (h->host->log_enabled(h->inst, level))
        h->host->log(h->inst, level, "%s %s %s -> %u", req->client, req->method, req->path, status);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    Http *h = cls;
    Pending *p = *con_cls;
    if (p == NULL) {
        p = g_new0(Pending, 1);
        p->conn = conn;
        *con_cls = p;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!p->too_large) {
            if (p->body == NULL)
                p->body = g_byte_array_new();
            if ((gint64)(p->body->len + *upload_data_size) > h->set.max_body) {
                p->too_large = TRUE;
                g_byte_array_set_size(p->body, 0);
            } else {
                g_byte_array_append(p->body, (const guint8 *)upload_data, (guint)*upload_data_size);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    h->host->counter_add(h->c.requests, 1);
    char client[64] = "?";
    guint16 cport = 0;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci != NULL)
        http_sockaddr_format(ci->client_addr, client, sizeof(client), &cport);
    Request rq = {.pub = {.struct_size = sizeof(pb_http_request),
                          .method = method,
                          .path = url,
                          .client = client,
                          .client_port = cport,
                          .body = p->body ? p->body->data : NULL,
                          .body_len = p->body ? p->body->len : 0},
                  .conn = conn};
    (void)version;

    if (p->too_large) {
        h->host->counter_add(h->c.too_large, 1);
        log_request(h, &rq.pub, 413 /* Content Too Large */);
        return queue_text(conn, 413 /* Content Too Large */, "request body too large\n");
    }
    const HttpRoute *route = http_routes_find(h->routes, url);
    if (route == NULL) {
        h->host->counter_add(h->c.not_found, 1);
        log_request(h, &rq.pub, MHD_HTTP_NOT_FOUND);
        return queue_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    }
    pb_http_response resp = {
        .h = h, .conn = conn, .headers = g_ptr_array_new_with_free_func(g_free)};
    gboolean ok = route->fn(route->data, &rq.pub, &resp);
    g_ptr_array_unref(resp.headers);
    if (!resp.answered) {
        h->host->counter_add(h->c.errors, 1);
        if (ok)
            h->host->log(h->inst, PB_LOG_WARNING, "%s %s: the handler did not answer", method, url);
        log_request(h, &rq.pub, MHD_HTTP_INTERNAL_SERVER_ERROR);
        return queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
    }
    h->host->counter_add(h->c.answered, 1);
    log_request(h, &rq.pub, resp.status);
    return resp.result;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    Pending *p = *con_cls;
    if (p == NULL)
        return;
    if (p->body != NULL)
        g_byte_array_unref(p->body);
    g_free(p);
    *con_cls = NULL;
}

G_GNUC_PRINTF(2, 0)
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    Http *h = cls;
    /* libmicrohttpd's messages end in a newline; ours must not. */
    g_autofree char *msg = g_strchomp(g_strdup_vprintf(fmt, ap));
    h->host->log(h->inst, PB_LOG_WARNING, "libmicrohttpd: %s", msg);
}

/* ---- the service ------------------------------------------------------------------------ */

static bool svc_route_add(void *ctx, const char *prefix, pb_http_handler_fn fn, void *data)
{
    Http *h = ctx;
    gboolean ok = http_routes_add(h->routes, prefix, fn, data);
    h->host->log(h->inst, ok ? PB_LOG_REQUEST : PB_LOG_WARNING, "route %s %s", prefix,
                 ok ? "added" : "refused (taken or invalid)");
    return ok;
}

static void svc_route_remove(void *ctx, const char *prefix, pb_http_handler_fn fn, void *data)
{
    Http *h = ctx;
    if (http_routes_remove(h->routes, prefix, fn, data))
        h->host->log(h->inst, PB_LOG_REQUEST, "route %s removed", prefix);
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
    return path != NULL && http_routes_find(h->routes, path) != NULL;
}

static const char *svc_query(void *ctx, const pb_http_request *req, const char *name)
{
    const Request *r = (const Request *)req;
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static const char *svc_header(void *ctx, const pb_http_request *req, const char *name)
{
    const Request *r = (const Request *)req;
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

static bool finish(pb_http_response *resp, struct MHD_Response *r, unsigned status,
                   const char *content_type)
{
    if (r == NULL)
        return false;
    if (content_type != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (guint i = 0; i + 1 < resp->headers->len; i += 2)
        MHD_add_response_header(r, g_ptr_array_index(resp->headers, i),
                                g_ptr_array_index(resp->headers, i + 1));
    resp->result = MHD_queue_response(resp->conn, status, r);
    MHD_destroy_response(r);
    resp->answered = TRUE;
    resp->status = status;
    return resp->result == MHD_YES;
}

static bool svc_respond(void *ctx, pb_http_response *resp, unsigned status,
                        const char *content_type, const void *body, size_t len)
{
    if (resp->answered || status < 100 || status > 599)
        return false;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(len ? body : ""), MHD_RESPMEM_MUST_COPY);
    return finish(resp, r, status, content_type);
}

typedef struct {
    pb_http_read_fn read;
    pb_http_free_fn free;
    void *handle;
} Stream;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    Stream *s = cls;
    int64_t n = s->read(s->handle, pos, buf, max);
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    return (ssize_t)MIN((uint64_t)n, max);
}

static void stream_free(void *cls)
{
    Stream *s = cls;
    if (s->free != NULL)
        s->free(s->handle);
    g_free(s);
}

static bool svc_respond_stream(void *ctx, pb_http_response *resp, unsigned status,
                               const char *content_type, int64_t size, pb_http_read_fn read_fn,
                               pb_http_free_fn free_fn, void *handle)
{
    if (resp->answered || read_fn == NULL || status < 100 || status > 599)
        return false;
    Stream *s = g_new0(Stream, 1);
    s->read = read_fn;
    s->free = free_fn;
    s->handle = handle;
    struct MHD_Response *r = MHD_create_response_from_callback(
        size < 0 ? MHD_SIZE_UNKNOWN : (uint64_t)size, 64 * 1024, stream_read, s, stream_free);
    if (r == NULL) {
        stream_free(s);
        return false;
    }
    return finish(resp, r, status, content_type);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void *http_create(const pb_host *host, pb_instance *inst, const pb_config *cfg, pb_err *err)
{
    Http *h = g_new0(Http, 1);
    h->host = host;
    h->inst = inst;
    settings_load(host, cfg, &h->set);
    h->routes = http_routes_new();
    h->watches = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    h->c.requests = host->counter(inst, "requests");
    h->c.answered = host->counter(inst, "answered");
    h->c.not_found = host->counter(inst, "not_found");
    h->c.errors = host->counter(inst, "errors");
    h->c.too_large = host->counter(inst, "too_large");

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
    h->mhd = MHD_start_daemon(
        MHD_USE_ERROR_LOG | (bind.family == 6 ? MHD_USE_IPv6 : 0), (uint16_t)h->set.port, NULL,
        NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)h->set.conn_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)h->set.conn_timeout, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_END);
    if (h->mhd == NULL) {
        char a[80];
        host->error(err, "cannot listen on %s (in use, or not an address of this host?)",
                    pb_addr_format(&bind, TRUE, a, sizeof(a)));
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
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
    return h;
fail:
    http_routes_free(h->routes);
    g_hash_table_unref(h->watches);
    settings_clear(&h->set);
    g_free(h);
    return NULL;
}

static bool http_start(void *self, pb_err *err)
{
    Http *h = self;
    if (!h->host->service_publish(h->inst, PB_HTTP_SERVICE, PB_HTTP_SERVICE_VERSION, &h->iface,
                                  err))
        return false;
    h->running = TRUE;
    h->timer = h->host->timer_add(h->inst, TIMER_MS, on_timer, h);
    sync_watches(h);
    h->host->log(h->inst, PB_LOG_CRITICAL, "HTTP server listening on %s:%u",
                 *h->set.listen ? h->set.listen : "*", h->bound_port);
    return true;
}

static void *http_reload_prepare(void *self, const pb_config *cfg, pb_err *err)
{
    Http *h = self;
    Settings *s = g_new0(Settings, 1);
    settings_load(h->host, cfg, s);
    return s;
}

static void http_reload_commit(void *self, void *staged)
{
    Http *h = self;
    Settings *s = staged;
    /* Only max_body_size changes in place; the rest is PB_PARAM_F_RESTART. */
    h->set.max_body = s->max_body;
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
    h->host->status_text(st, "HTTP on %s:%u, %u route(s)", *h->set.listen ? h->set.listen : "*",
                         h->bound_port, http_routes_count(h->routes));
    h->host->status_kv(st, "port", "%u", h->bound_port);
    for (guint i = 0; i < http_routes_count(h->routes); i++)
        h->host->status_kv(st, "route", "%s", http_routes_nth(h->routes, i)->prefix);
}

static void http_stop(void *self)
{
    Http *h = self;
    h->running = FALSE;
    h->host->service_withdraw(h->inst, PB_HTTP_SERVICE);
    drop_watches(h);
    if (h->timer != NULL)
        h->host->timer_remove(h->timer);
    h->timer = NULL;
    if (h->mhd != NULL)
        MHD_stop_daemon(h->mhd);
    h->mhd = NULL;
}

static void http_destroy(void *self)
{
    Http *h = self;
    if (h->mhd != NULL)
        http_stop(h);
    http_routes_free(h->routes);
    g_hash_table_unref(h->watches);
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
