/* control.c - the control channel: framing (pure), the server on the main loop, and the
 * client prebootctl uses. Sockets only through core/os.h, so Windows shares this file. */
#include "control.h"

#include "os.h"

#include <errno.h>
#include <string.h>

/* ---- framing ------------------------------------------------------------------------ */

GBytes *pb_control_encode(int argc, const char *const *argv, GError **error)
{
    g_return_val_if_fail(argc >= 0 && (argc == 0 || argv != NULL), NULL);

    if (argc < 1 || argc > PB_CONTROL_MAX_ARGS) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "a control request has 1 to %d arguments, not %d", PB_CONTROL_MAX_ARGS, argc);
        return NULL;
    }
    GByteArray *buf = g_byte_array_new();
    for (int i = 0; i < argc; i++) {
        gsize n = argv[i] ? strlen(argv[i]) : 0;
        /* The empty item is the terminator: an empty argument cannot be framed. */
        if (n == 0) {
            g_byte_array_unref(buf);
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "argument %d of a control request is empty", i + 1);
            return NULL;
        }
        g_byte_array_append(buf, (const guint8 *)argv[i], (guint)n + 1);
    }
    g_byte_array_append(buf, (const guint8 *)"", 1);
    if (buf->len > PB_CONTROL_MAX_REQUEST) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "control request of %u bytes exceeds the limit of %d", buf->len,
                    PB_CONTROL_MAX_REQUEST);
        g_byte_array_unref(buf);
        return NULL;
    }
    return g_byte_array_free_to_bytes(buf);
}

PbControlParse pb_control_parse(const guint8 *buf, gsize len, GStrv *argv_out, gsize *consumed,
                                const char **reason)
{
    g_return_val_if_fail(buf != NULL || len == 0, PB_CONTROL_PARSE_BAD);

    const char *why = NULL;
    if (argv_out)
        *argv_out = NULL;
    if (consumed)
        *consumed = 0;

    gsize pos = 0;
    int argc = 0;
    for (;;) {
        const guint8 *nul = memchr(buf + pos, 0, len - pos);
        if (nul == NULL) {
            if (len > PB_CONTROL_MAX_REQUEST) {
                why = "request too large";
                goto bad;
            }
            return PB_CONTROL_PARSE_INCOMPLETE;
        }
        gsize item = (gsize)(nul - (buf + pos));
        if (item == 0)
            break;
        if (++argc > PB_CONTROL_MAX_ARGS) {
            why = "too many arguments";
            goto bad;
        }
        if (!g_utf8_validate((const char *)buf + pos, (gssize)item, NULL)) {
            why = "arguments must be UTF-8";
            goto bad;
        }
        pos += item + 1;
    }
    pos++; /* the terminator */
    if (argc == 0) {
        why = "empty request";
        goto bad;
    }
    if (pos > PB_CONTROL_MAX_REQUEST) {
        why = "request too large";
        goto bad;
    }

    if (argv_out) {
        GStrv v = g_new0(char *, argc + 1);
        gsize p = 0;
        for (int i = 0; i < argc; i++) {
            v[i] = g_strdup((const char *)buf + p);
            p += strlen(v[i]) + 1;
        }
        *argv_out = v;
    }
    if (consumed)
        *consumed = pos;
    return PB_CONTROL_PARSE_OK;

bad:
    if (reason)
        *reason = why;
    return PB_CONTROL_PARSE_BAD;
}

/* ---- server ------------------------------------------------------------------------- */

typedef struct Conn Conn;

struct PbControl {
    char *path;
    char *group;
    pb_socket_t listener;
    GSource *accept_src;
    PbControlHandler fn;
    gpointer data;
    PbLog *log;
    GMainContext *ctx;
    GList *conns; /* Conn* */
    guint n_conns;
    guint idle_ms;
    guint max_clients;
};

struct Conn {
    PbControl *c;
    pb_socket_t sock;
    GSource *io;
    GSource *idle;
    GByteArray *in;
    GString *reply; /* NULL while reading */
    gsize sent;
};

static void control_log(PbControl *c, int level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void control_log(PbControl *c, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (c->log)
        pb_log_write(c->log, level, msg);
    else
        g_message("%s", msg);
}

static void conn_free(Conn *k)
{
    PbControl *c = k->c;
    c->conns = g_list_remove(c->conns, k);
    c->n_conns--;
    if (k->io) {
        g_source_destroy(k->io);
        g_source_unref(k->io);
    }
    if (k->idle) {
        g_source_destroy(k->idle);
        g_source_unref(k->idle);
    }
    /* Unread input makes the close a reset (ECONNRESET at the client on Linux), which
     * could cost a refused client its reply: drain what is already queued. */
    guint8 sink[4096];
    for (int i = 0; i < 16 && pb_os_socket_read(k->sock, sink, sizeof sink) > 0; i++)
        ;
    pb_os_socket_close(k->sock);
    g_byte_array_unref(k->in);
    if (k->reply)
        g_string_free(k->reply, TRUE);
    g_free(k);
}

static gboolean conn_io(pb_socket_t sock, GIOCondition cond, gpointer data);

static void conn_watch(Conn *k, GIOCondition cond)
{
    if (k->io) {
        g_source_destroy(k->io);
        g_source_unref(k->io);
    }
    k->io = pb_os_socket_source_new(k->sock, cond | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(k->io, (GSourceFunc)(void (*)(void))conn_io, k, NULL);
    g_source_attach(k->io, k->c->ctx);
}

/* Writes what the socket takes now; TRUE when the reply is out (or cannot be sent). */
static gboolean conn_flush(Conn *k)
{
    while (k->sent < k->reply->len) {
        gssize n = pb_os_socket_write(k->sock, k->reply->str + k->sent, k->reply->len - k->sent);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return FALSE;
        if (n <= 0)
            return TRUE; /* the client went away; nothing more to do */
        k->sent += (gsize)n;
    }
    return TRUE;
}

/* Switches to writing; the connection is freed once the reply is out. FALSE when that
 * happened at once (k is gone). */
static gboolean conn_reply(Conn *k, gboolean ok, const char *text)
{
    k->reply = g_string_new(ok ? "OK\n" : "ERR\n");
    g_string_append(k->reply, text);
    if (conn_flush(k)) {
        conn_free(k);
        return FALSE;
    }
    conn_watch(k, G_IO_OUT);
    return TRUE;
}

static gboolean conn_refuse(Conn *k, const char *why)
{
    control_log(k->c, PB_LOG_WARNING, "control: request refused: %s", why);
    g_autofree char *text = g_strconcat(why, "\n", NULL);
    return conn_reply(k, FALSE, text);
}

/* A whole request arrived: run the handler, answer. */
static gboolean conn_dispatch(Conn *k, GStrv argv)
{
    PbControl *c = k->c;
    g_autoptr(GString) out = g_string_new(NULL);
    gboolean ok =
        c->fn ? c->fn(c->data, (int)g_strv_length(argv), (const char *const *)argv, out) : FALSE;
    return conn_reply(k, ok, out->str);
}

static gboolean conn_read(Conn *k)
{
    guint8 buf[4096];
    for (;;) {
        gssize n = pb_os_socket_read(k->sock, buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return TRUE;
        if (n < 0) {
            conn_free(k);
            return FALSE;
        }
        if (n > 0)
            g_byte_array_append(k->in, buf, (guint)n);

        g_auto(GStrv) argv = NULL;
        gsize used = 0;
        const char *why = NULL;
        switch (pb_control_parse(k->in->data, k->in->len, &argv, &used, &why)) {
        case PB_CONTROL_PARSE_OK:
            if (used != k->in->len)
                return conn_refuse(k, "bad framing: data after the request");
            return conn_dispatch(k, argv);
        case PB_CONTROL_PARSE_BAD:
            return conn_refuse(k, why);
        case PB_CONTROL_PARSE_INCOMPLETE:
            if (n == 0)
                return conn_refuse(k, "bad framing: request not terminated");
            break;
        }
    }
}

static gboolean conn_io(pb_socket_t sock, GIOCondition cond, gpointer data)
{
    Conn *k = data;
    if (k->reply == NULL)
        return conn_read(k) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
    if (conn_flush(k)) {
        conn_free(k);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static gboolean conn_idle(gpointer data)
{
    Conn *k = data;
    control_log(k->c, PB_LOG_WARNING, "control: dropping a connection not done after %u ms",
                k->c->idle_ms);
    /* conn_free destroys this source: drop its reference here, return REMOVE. */
    g_source_unref(k->idle);
    k->idle = NULL;
    conn_free(k);
    return G_SOURCE_REMOVE;
}

static gboolean on_accept(pb_socket_t sock, GIOCondition cond, gpointer data)
{
    PbControl *c = data;
    for (;;) {
        pb_socket_t s = pb_os_control_accept(c->listener);
        if (s == PB_SOCKET_NONE)
            return G_SOURCE_CONTINUE;
        if (c->n_conns >= c->max_clients) {
            control_log(c, PB_LOG_WARNING, "control: too many connections, closing one");
            pb_os_socket_close(s);
            continue;
        }
        Conn *k = g_new0(Conn, 1);
        k->c = c;
        k->sock = s;
        k->in = g_byte_array_new();
        c->conns = g_list_prepend(c->conns, k);
        c->n_conns++;
        k->idle = g_timeout_source_new(c->idle_ms);
        g_source_set_callback(k->idle, conn_idle, k, NULL);
        g_source_attach(k->idle, c->ctx);
        if (!pb_os_control_peer_allowed(s, c->group)) {
            control_log(c, PB_LOG_WARNING,
                        "control: permission denied to a peer (not root, not our user%s%s)",
                        c->group ? ", not in group " : "", c->group ? c->group : "");
            conn_reply(k, FALSE, "permission denied\n");
            continue;
        }
        conn_watch(k, G_IO_IN);
    }
}

PbControl *pb_control_new(const char *path, const char *group, PbControlHandler fn, gpointer data,
                          GError **error)
{
    g_return_val_if_fail(path != NULL && fn != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    const char *grp = group && *group ? group : NULL;
    pb_socket_t l = pb_os_control_listen(path, grp, error);
    if (l == PB_SOCKET_NONE)
        return NULL;
    PbControl *c = g_new0(PbControl, 1);
    c->path = g_strdup(path);
    c->group = g_strdup(grp);
    c->listener = l;
    c->fn = fn;
    c->data = data;
    c->idle_ms = PB_CONTROL_IDLE_MS;
    c->max_clients = PB_CONTROL_MAX_CLIENTS;
    c->ctx = g_main_context_ref_thread_default();
    c->accept_src = pb_os_socket_source_new(l, G_IO_IN);
    g_source_set_callback(c->accept_src, (GSourceFunc)(void (*)(void))on_accept, c, NULL);
    g_source_attach(c->accept_src, c->ctx);
    return c;
}

void pb_control_set_log(PbControl *c, PbLog *log)
{
    g_return_if_fail(c != NULL);
    c->log = log;
}

void pb_control_set_limits(PbControl *c, guint idle_ms, guint max_clients)
{
    g_return_if_fail(c != NULL);
    if (idle_ms > 0)
        c->idle_ms = idle_ms;
    if (max_clients > 0)
        c->max_clients = max_clients;
}

void pb_control_free(PbControl *c)
{
    if (c == NULL)
        return;
    while (c->conns) {
        Conn *k = c->conns->data;
        /* A "stop" reply may still be queued when the loop ends: one last try. */
        if (k->reply)
            conn_flush(k);
        conn_free(k);
    }
    g_source_destroy(c->accept_src);
    g_source_unref(c->accept_src);
    pb_os_socket_close(c->listener);
    pb_os_control_unlink(c->path);
    g_main_context_unref(c->ctx);
    g_free(c->path);
    g_free(c->group);
    g_free(c);
}

/* ---- client ------------------------------------------------------------------------- */

typedef struct {
    pb_socket_t sock;
    GBytes *request;
    gsize sent;
    GByteArray *reply;
    gboolean done;
    gboolean timed_out;
    int err; /* errno of a failed read/write */
} Client;

static gboolean client_io(pb_socket_t sock, GIOCondition cond, gpointer data)
{
    Client *cl = data;
    gsize len;
    const guint8 *req = g_bytes_get_data(cl->request, &len);
    /* Nothing more needs writing, but keep reading the reply: the server may answer (and
     * close) before it read all of an oversized request. */
    while (cl->sent < len) {
        gssize n = pb_os_socket_write(sock, req + cl->sent, len - cl->sent);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            cl->sent = len; /* EPIPE: the server closed; its reply may be readable */
            break;
        }
        cl->sent += (gsize)n;
    }
    for (;;) {
        guint8 buf[8192];
        gssize n = pb_os_socket_read(sock, buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return G_SOURCE_CONTINUE;
        /* A server that refused a request before reading it all resets the connection
         * after its reply: the reply is what counts. */
        if (n < 0 && errno == ECONNRESET && cl->reply->len > 0)
            n = 0;
        if (n < 0) {
            cl->err = errno;
            cl->done = TRUE;
            return G_SOURCE_REMOVE;
        }
        if (n == 0) {
            cl->done = TRUE;
            return G_SOURCE_REMOVE;
        }
        g_byte_array_append(cl->reply, buf, (guint)n);
        if (cl->reply->len > PB_CONTROL_MAX_REPLY) {
            cl->err = EMSGSIZE;
            cl->done = TRUE;
            return G_SOURCE_REMOVE;
        }
    }
}

static gboolean client_timeout(gpointer data)
{
    ((Client *)data)->timed_out = TRUE;
    return G_SOURCE_REMOVE;
}

gboolean pb_control_request(const char *path, int argc, const char *const *argv, guint timeout_ms,
                            GString *out, gboolean *ok, GError **error)
{
    g_return_val_if_fail(path != NULL && out != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (ok)
        *ok = FALSE;
    g_autoptr(GBytes) request = pb_control_encode(argc, argv, error);
    if (request == NULL)
        return FALSE;
    pb_socket_t sock = pb_os_control_connect(path, error);
    if (sock == PB_SOCKET_NONE)
        return FALSE;

    Client cl = {.sock = sock, .request = request, .reply = g_byte_array_new()};
    GMainContext *ctx = g_main_context_new();
    GSource *io = pb_os_socket_source_new(sock, G_IO_IN | G_IO_OUT | G_IO_HUP | G_IO_ERR);
    g_source_set_callback(io, (GSourceFunc)(void (*)(void))client_io, &cl, NULL);
    g_source_attach(io, ctx);
    GSource *timer = g_timeout_source_new(timeout_ms);
    g_source_set_callback(timer, client_timeout, &cl, NULL);
    g_source_attach(timer, ctx);

    gboolean switched = FALSE;
    while (!cl.done && !cl.timed_out) {
        /* Once the request is out, stop polling for writability (it is always true). */
        if (!switched && cl.sent == g_bytes_get_size(request)) {
            g_source_destroy(io);
            g_source_unref(io);
            io = pb_os_socket_source_new(sock, G_IO_IN | G_IO_HUP | G_IO_ERR);
            g_source_set_callback(io, (GSourceFunc)(void (*)(void))client_io, &cl, NULL);
            g_source_attach(io, ctx);
            switched = TRUE;
        }
        g_main_context_iteration(ctx, TRUE);
    }
    g_source_destroy(io);
    g_source_unref(io);
    g_source_destroy(timer);
    g_source_unref(timer);
    g_main_context_unref(ctx);
    pb_os_socket_close(sock);

    g_autoptr(GByteArray) reply = cl.reply;
    if (cl.timed_out) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_AGAIN,
                    "control socket %s: no reply within %u ms", path, timeout_ms);
        return FALSE;
    }
    if (cl.err != 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "control socket %s: %s", path,
                    g_strerror(cl.err));
        return FALSE;
    }
    const char *text = (const char *)reply->data;
    gsize len = reply->len, skip;
    if (len >= 3 && memcmp(text, "OK\n", 3) == 0) {
        skip = 3;
        if (ok)
            *ok = TRUE;
    } else if (len >= 4 && memcmp(text, "ERR\n", 4) == 0) {
        skip = 4;
    } else {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "control socket %s: malformed reply (%s)", path,
                    len == 0 ? "empty" : "no OK/ERR line");
        return FALSE;
    }
    g_string_append_len(out, text + skip, (gssize)(len - skip));
    return TRUE;
}
