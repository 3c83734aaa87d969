/* httptest.c - a plugin that uses the preboot.http service the way the imaging plugin
 * will, for tests/test-http-daemon.sh and tests/test-http-stream.sh:
 *   /t/hello    version 1 route: "hello"
 *   /t/legacy   version 1 route: buffers the body whole, answers its length
 *   /t/nobody   version 3, defaults (GET and HEAD, no body)
 *   /t/head     version 3, GET: counts the GETs (a HEAD must not count)
 *   /t/later    version 3, GET: answered from a deferred callback (suspend, then respond)
 *   /t/hang     version 3, GET: suspended and never answered (the daemon's stop must end it)
 *   /t/private  version 3, GET from 192.0.2.0/24 only
 *   /t/upload   version 3, PUT/POST, bearer token, loopback only: streams the body to
 *               DIR/blob.tmp (pausing intake every few pieces until a deferred callback
 *               resumes it) and renames it to DIR/blob at the end (atomic)
 *   /t/blob     version 3, GET/HEAD: DIR/blob with Range support, the reader answering
 *               PB_HTTP_READ_AGAIN now and then (resumed from a deferred callback)
 * With hold_fds N it opens N descriptors (of /dev/null) at start and holds them until stop:
 * started after the http instance, they take every number below the next connection's.
 * With a version 2 http service (an older http plugin) every route is added with
 * route_add(), so that the attack tests run against it too. */
#include <preboot/http.h>
#include <preboot/plugin.h>

#include <glib.h>
#include <glib/gstdio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const pb_param params[] = {
    {.name = "dir",
     .type = PB_PARAM_STRING,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "Where /t/upload stores and /t/blob reads the blob; empty: the state directory."},
    {.name = "token",
     .type = PB_PARAM_STRING,
     .def = "s3cret",
     .help = "The bearer token /t/upload requires."},
    {.name = "hold_fds",
     .type = PB_PARAM_INT,
     .def = "0",
     .min = 0,
     .max = 10000,
     .help = "Descriptors to open at start and hold until stop."},
    PB_LOG_PARAMS(NULL, NULL, NULL, "httptest.log", "The usual levels."),
};

typedef struct {
    const pb_host *host;
    pb_instance *inst;
    char *dir, *token;
    GArray *fds;
    int64_t hold_fds;
    int64_t gets;
    pb_timer *retry;
    bool routed;
} Tp;

typedef struct {
    Tp *tp;
    const pb_http_service *http;
    pb_http_response *resp;
    int fd;
    uint64_t bytes;
    unsigned pieces;
    char *tmp, *final;
    bool failed;
} Upload;

typedef struct {
    Tp *tp;
    const pb_http_service *http;
    pb_http_response *resp;
    int fd;
    unsigned reads;
    bool waited;
} Download;

static const pb_http_service *http_of(Tp *tp)
{
    return tp->host->service_lookup(tp->inst, PB_HTTP_SERVICE, 1, NULL);
}

static bool has_v3(const pb_http_service *http)
{
    return PB_HTTP_HAS(http, respond_range);
}

static bool text(const pb_http_service *http, pb_http_response *resp, unsigned status,
                 const char *s)
{
    return http->respond(http->ctx, resp, status, "text/plain", s, strlen(s));
}

static bool serve_hello(void *data, const pb_http_request *req, pb_http_response *resp)
{
    return text(http_of(data), resp, 200, "hello\n");
}

static bool serve_legacy(void *data, const pb_http_request *req, pb_http_response *resp)
{
    g_autofree char *s = g_strdup_printf("len %zu\n", req->body_len);
    return text(http_of(data), resp, 200, s);
}

static bool serve_nobody(void *data, const pb_http_request *req, pb_http_response *resp)
{
    return text(http_of(data), resp, 200, "nobody\n");
}

static bool serve_head(void *data, const pb_http_request *req, pb_http_response *resp)
{
    Tp *tp = data;
    if (req->method_id != PB_HTTP_M_HEAD)
        tp->gets++; /* the side effect a HEAD must not have */
    g_autofree char *s = g_strdup_printf("gets %" G_GINT64_FORMAT "\n", (gint64)tp->gets);
    return text(http_of(tp), resp, 200, s);
}

typedef struct {
    const pb_http_service *http;
    pb_http_response *resp;
} Later;

static void later_answer(void *data)
{
    Later *l = data;
    text(l->http, l->resp, 200, "later\n");
    g_free(l);
}

static bool serve_later(void *data, const pb_http_request *req, pb_http_response *resp)
{
    Tp *tp = data;
    const pb_http_service *http = http_of(tp);
    Later *l = g_new0(Later, 1);
    l->http = http;
    l->resp = resp;
    http->suspend(http->ctx, resp);
    tp->host->defer(tp->inst, later_answer, l);
    return true;
}

static bool serve_hang(void *data, const pb_http_request *req, pb_http_response *resp)
{
    Tp *tp = data;
    const pb_http_service *http = http_of(tp);
    tp->host->log(tp->inst, PB_LOG_CRITICAL, "hanging %s", req->path);
    return http->suspend(http->ctx, resp);
}

static bool serve_private(void *data, const pb_http_request *req, pb_http_response *resp)
{
    return text(http_of(data), resp, 200, "private\n");
}

/* ---- upload ------------------------------------------------------------------------------ */

static void upload_resume(void *data)
{
    Upload *u = data;
    u->http->resume(u->http->ctx, u->resp);
}

static void upload_done(void *handle, bool completed)
{
    Upload *u = handle;
    if (u->fd >= 0)
        close(u->fd);
    if (u->tmp != NULL)
        g_unlink(u->tmp); /* nothing half-written stays behind */
    g_free(u->tmp);
    g_free(u->final);
    g_free(u);
}

static bool upload_piece(void *handle, const pb_http_request *req, pb_http_response *resp,
                         const void *data, size_t len)
{
    Upload *u = handle;
    if (len == 0) {
        /* No fsync(): it would hold the main loop (and proxyDHCP with it) for as long as
         * the disk takes to write a gigabyte; a real store syncs off the loop. */
        if (close(u->fd) != 0) {
            u->fd = -1;
            return text(u->http, resp, 500, "cannot store\n");
        }
        u->fd = -1;
        if (g_rename(u->tmp, u->final) != 0)
            return text(u->http, resp, 500, "cannot store\n");
        g_clear_pointer(&u->tmp, g_free);
        g_autofree char *s = g_strdup_printf("stored %" G_GUINT64_FORMAT "\n", u->bytes);
        return text(u->http, resp, 201, s);
    }
    const char *p = data;
    for (size_t off = 0; off < len;) {
        ssize_t n = write(u->fd, p + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false; /* cut the upload: an answer could only follow the whole body */
        off += (size_t)n;
    }
    u->bytes += len;
    /* Back-pressure, as a slow disk would need it: every 16th piece waits for the loop. */
    if (++u->pieces % 16 == 0) {
        u->http->suspend(u->http->ctx, resp);
        u->tp->host->defer(u->tp->inst, upload_resume, u);
    }
    return true;
}

static bool serve_upload(void *data, const pb_http_request *req, pb_http_response *resp)
{
    Tp *tp = data;
    const pb_http_service *http = http_of(tp);
    Upload *u = g_new0(Upload, 1);
    u->tp = tp;
    u->http = http;
    u->resp = resp;
    u->tmp = g_build_filename(tp->dir, "blob.tmp", NULL);
    u->final = g_build_filename(tp->dir, "blob", NULL);
    u->fd = open(u->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    http->on_done(http->ctx, resp, upload_done, u);
    if (u->fd < 0)
        return text(http, resp, 500, "cannot create\n");
    return http->receive_body(http->ctx, resp, upload_piece, u);
}

/* ---- download ---------------------------------------------------------------------------- */

static void download_resume(void *data)
{
    Download *d = data;
    d->http->resume(d->http->ctx, d->resp);
}

static int64_t download_read(void *handle, uint64_t offset, void *buf, size_t len)
{
    Download *d = handle;
    /* As a reader waiting for a backend would: now and then no data yet. */
    if (++d->reads % 64 == 0 && !d->waited) {
        d->waited = true;
        d->tp->host->defer(d->tp->inst, download_resume, d);
        return PB_HTTP_READ_AGAIN;
    }
    d->waited = false;
    ssize_t n = pread(d->fd, buf, len, (off_t)offset);
    return n < 0 ? -1 : (int64_t)n;
}

static void download_free(void *handle)
{
    Download *d = handle;
    close(d->fd);
    g_free(d);
}

static bool serve_blob(void *data, const pb_http_request *req, pb_http_response *resp)
{
    Tp *tp = data;
    const pb_http_service *http = http_of(tp);
    g_autofree char *path = g_build_filename(tp->dir, "blob", NULL);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return text(http, resp, 404, "no blob\n");
    off_t size = lseek(fd, 0, SEEK_END);
    Download *d = g_new0(Download, 1);
    d->tp = tp;
    d->http = http;
    d->resp = resp;
    d->fd = fd;
    http->add_header(http->ctx, resp, "ETag", "\"blob\"");
    return http->respond_range(http->ctx, req, resp, "application/octet-stream", (uint64_t)size,
                               download_read, download_free, d);
}

/* ---- routes ------------------------------------------------------------------------------ */

typedef struct {
    const char *prefix;
    pb_http_handler_fn fn;
    uint32_t methods;
    uint64_t max_body;
    bool private_net, auth;
} RouteDef;

static const RouteDef routes[] = {
    {"/t/hello", serve_hello, 0, 0, false, false},
    {"/t/legacy", serve_legacy, 0, 0, false, false}, /* version 1 always */
    {"/t/nobody", serve_nobody, 0, 0, false, false},
    {"/t/head", serve_head, PB_HTTP_M_GET, 0, false, false},
    {"/t/later", serve_later, PB_HTTP_M_GET, 0, false, false},
    {"/t/hang", serve_hang, PB_HTTP_M_GET, 0, false, false},
    {"/t/private", serve_private, PB_HTTP_M_GET, 0, true, false},
    {"/t/upload", serve_upload, PB_HTTP_M_PUT | PB_HTTP_M_POST, 8ull << 30, false, true},
    {"/t/blob", serve_blob, PB_HTTP_M_GET, 0, false, false},
};

static bool add_routes(Tp *tp)
{
    const pb_http_service *http = http_of(tp);
    if (http == NULL)
        return false;
    static const char *const test_net[] = {"192.0.2.0/24", NULL};
    static const char *const loopback[] = {"127.0.0.0/8", "::1", NULL};
    for (size_t i = 0; i < G_N_ELEMENTS(routes); i++) {
        const RouteDef *r = &routes[i];
        bool ok;
        if (!has_v3(http) || r->fn == serve_hello || r->fn == serve_legacy) {
            ok = http->route_add(http->ctx, r->prefix, r->fn, tp);
        } else {
            pb_http_route_options o = {.struct_size = sizeof(o),
                                       .methods = r->methods,
                                       .max_body = r->max_body,
                                       .networks = r->private_net ? test_net
                                                   : r->auth      ? loopback
                                                                  : NULL,
                                       .bearer_token = r->auth ? tp->token : NULL};
            ok = http->route_add_ex(http->ctx, r->prefix, r->fn, tp, &o);
        }
        if (!ok)
            tp->host->log(tp->inst, PB_LOG_WARNING, "route %s refused", r->prefix);
    }
    tp->host->log(tp->inst, PB_LOG_CRITICAL, "routes added (http service %s)",
                  has_v3(http) ? "version 3" : "before version 3");
    return true;
}

static bool retry_routes(void *data)
{
    Tp *tp = data;
    if (!add_routes(tp))
        return true;
    tp->routed = true;
    tp->retry = NULL;
    return false;
}

static void *tp_create(const pb_host *host, pb_instance *inst, const pb_config *cfg, pb_err *err)
{
    Tp *tp = g_new0(Tp, 1);
    tp->host = host;
    tp->inst = inst;
    const char *dir = host->config_string(cfg, "dir");
    tp->dir = g_strdup(*dir ? dir : host->state_dir(inst));
    tp->token = g_strdup(host->config_string(cfg, "token"));
    tp->fds = g_array_new(FALSE, FALSE, sizeof(int));
    tp->hold_fds = host->config_int(cfg, "hold_fds");
    return tp;
}

static bool tp_start(void *self, pb_err *err)
{
    Tp *tp = self;
    for (int64_t i = 0; i < tp->hold_fds; i++) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            tp->host->error(err, "cannot open descriptor %" G_GINT64_FORMAT ": %s", i,
                            g_strerror(errno));
            return false;
        }
        g_array_append_val(tp->fds, fd);
    }
    /* The http instance may start after this one: try until it is there. */
    if (add_routes(tp))
        tp->routed = true;
    else
        tp->retry = tp->host->timer_add(tp->inst, 100, retry_routes, tp);
    return true;
}

static void tp_stop(void *self)
{
    Tp *tp = self;
    if (tp->retry != NULL)
        tp->host->timer_remove(tp->retry);
    tp->retry = NULL;
    const pb_http_service *http = http_of(tp);
    if (http != NULL && tp->routed)
        for (size_t i = 0; i < G_N_ELEMENTS(routes); i++)
            http->route_remove(http->ctx, routes[i].prefix, routes[i].fn, tp);
    tp->routed = false;
    for (guint i = 0; i < tp->fds->len; i++)
        close(g_array_index(tp->fds, int, i));
    g_array_set_size(tp->fds, 0);
}

static void tp_destroy(void *self)
{
    Tp *tp = self;
    g_array_unref(tp->fds);
    g_free(tp->dir);
    g_free(tp->token);
    g_free(tp);
}

static const pb_plugin httptest_plugin = {
    PB_PLUGIN_HEADER,      .name = "httptest",
    .version = "1",        .description = "Routes on the http service for the http tests",
    PB_PARAMS(params),     .create = tp_create,
    .start = tp_start,     .stop = tp_stop,
    .destroy = tp_destroy,
};

PB_PLUGIN_DEFINE(httptest, httptest_plugin)
