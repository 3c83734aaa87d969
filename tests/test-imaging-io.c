/* test-imaging-io.c - the imaging server moves chunk bytes off the daemon's main loop: with
 * the backend's first chunk write, then its first chunk read, held at a gate
 * (tests/backends/gatebackend.c) for as long as the test wants, the same server still
 * answers another request, and the held upload and download then complete intact.
 *
 * Three threads: the main one turns the host's loop (as prebootd does); an uploader or
 * downloader thread makes the held request; a checker thread waits until the backend is
 * inside the gate (its open() of the FIFO returns then), asks for the statistics, and only
 * then lets the backend go. Were the bytes read or written on the main loop, the loop would
 * be the thread held, and the statistics request would get no answer (a failure, after a
 * socket timeout, not a hang). Linux only (FIFOs). */
#include "build-config.h"

#include "host.h"
#include "testutil.h"

#include "image-format.h"

#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (4 * 1024 * 1024) /* four of the plugin's write blocks */

typedef struct {
    char *dir, *store;
    PbHost *host;
    guint16 port;
} Fixture;

static guint16 free_tcp_port(void)
{
    g_autoptr(GSocket) s =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) a = g_inet_socket_address_new(lo, 0);
    g_assert_true(g_socket_bind(s, a, FALSE, NULL));
    g_autoptr(GSocketAddress) got = g_socket_get_local_address(s, NULL);
    return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(got));
}

static char *build_dir(const char *a, const char *b)
{
    const char *top = g_getenv("top_builddir");
    return g_build_filename(top ? top : ".", a, b, NULL);
}

static void fx_setup(Fixture *f, gconstpointer data)
{
    f->dir = pbt_tmpdir();
    f->store = g_build_filename(f->dir, "store", NULL);
    PbGlobalConfig g;
    g_autofree char *idir = build_dir("plugins", "imaging");
    pbt_global(&g, f->dir, idir);
    guint n = g_strv_length(g.plugin_path);
    g.plugin_path = g_renew(char *, g.plugin_path, n + 3);
    g.plugin_path[n] = build_dir("plugins", "http");
    g.plugin_path[n + 1] = build_dir("tests", "backends");
    g.plugin_path[n + 2] = NULL;
    f->host = pb_host_new(&g);
    pb_global_config_clear(&g);
    f->port = free_tcp_port();
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    PbConfig *cfg = pbt_yaml("plugins:\n"
                             "  - module: http\n"
                             "    listen: 127.0.0.1\n"
                             "    port: %u\n"
                             "  - module: imaging\n"
                             "    library_name: gatebackend\n"
                             "    store: %s\n"
                             "    upload_token: abc\n",
                             f->port, f->store);
    g_assert_true(pb_host_apply(f->host, cfg, report, &error));
    g_assert_no_error(error);
    for (const char *const *i = (const char *const[]){"http", "imaging", NULL}; *i; i++)
        if (pb_instance_get_state(pb_host_find(f->host, *i)) != PB_INSTANCE_RUNNING)
            g_error("%s did not start: %s\n%s", *i,
                    pb_instance_get_error(pb_host_find(f->host, *i)), report->str);
}

static void fx_teardown(Fixture *f, gconstpointer data)
{
    pb_host_free(f->host);
    pbt_rmtree(f->dir);
    g_free(f->store);
    g_free(f->dir);
}

/* One blocking HTTP/1.0 exchange from a client thread, with a receive timeout: the status,
 * and the body in *out. 0 when no answer came in time. */
static int http(guint16 port, const char *head, const void *body, gsize len, GByteArray **out)
{
    g_autoptr(GSocket) sock =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_socket_set_timeout(sock, 20);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) a = g_inet_socket_address_new(lo, port);
    if (!g_socket_connect(sock, a, NULL, NULL))
        return 0;
    const guint8 *parts[2] = {(const guint8 *)head, body};
    gsize lens[2] = {strlen(head), len};
    for (int i = 0; i < 2; i++)
        for (gsize sent = 0; sent < lens[i];) {
            gssize n =
                g_socket_send(sock, (const char *)parts[i] + sent, lens[i] - sent, NULL, NULL);
            if (n <= 0)
                return 0;
            sent += (gsize)n;
        }
    g_autoptr(GByteArray) in = g_byte_array_new();
    for (;;) {
        char buf[16384];
        gssize n = g_socket_receive(sock, buf, sizeof(buf), NULL, NULL);
        if (n < 0)
            return 0; /* timed out: the server did not answer */
        if (n == 0)
            break;
        g_byte_array_append(in, (const guint8 *)buf, (guint)n);
    }
    g_byte_array_append(in, (const guint8 *)"", 1);
    int status = 0;
    if (sscanf((const char *)in->data, "HTTP/1.%*d %d", &status) != 1)
        return 0;
    const char *sep = strstr((const char *)in->data, "\r\n\r\n");
    if (out != NULL) {
        *out = g_byte_array_new();
        if (sep != NULL)
            g_byte_array_append(*out, (const guint8 *)sep + 4,
                                (guint)(in->len - 1 - (gsize)(sep + 4 - (const char *)in->data)));
    }
    return status;
}

typedef struct {
    Fixture *f;
    const char *gate; /* FIFO path */
    const guint8 *chunk;
    char hex[PB_HASH_HEX_LEN + 1];
    gboolean upload;
    int status, stats_status;
    GByteArray *got;
    gint done;        /* threads finished */
    gint in_gate;     /* the checker's open() of the gate returned */
    gint transfer_ok; /* the transfer ended */
    int unblock_fd;   /* a reader the transfer thread opened when nothing entered the gate */
    gboolean missed;  /* the transfer ended without its backend call entering the gate */
} Run;

static gpointer transfer_thread(gpointer data)
{
    Run *r = data;
    g_autofree char *head = NULL;
    if (r->upload)
        head = g_strdup_printf("PUT /imaging/v1/chunks/%s HTTP/1.0\r\nHost: x\r\n"
                               "Authorization: Bearer abc\r\nX-Preboot-Codec: none\r\n"
                               "X-Preboot-Length: %d\r\nContent-Length: %d\r\n\r\n",
                               r->hex, CHUNK, CHUNK);
    else
        head = g_strdup_printf("GET /imaging/v1/chunks/%s HTTP/1.0\r\nHost: x\r\n\r\n", r->hex);
    r->status = http(r->f->port, head, r->chunk, r->upload ? CHUNK : 0, &r->got);
    g_atomic_int_set(&r->transfer_ok, 1);
    /* Nothing entered the gate (a defect): let the checker's open() return, so that the
     * test fails rather than hangs. */
    if (!g_atomic_int_get(&r->in_gate))
        r->unblock_fd = open(r->gate, O_RDONLY | O_NONBLOCK);
    g_atomic_int_inc(&r->done);
    g_main_context_wakeup(NULL);
    return NULL;
}

static gpointer checker_thread(gpointer data)
{
    Run *r = data;
    /* Returns once the backend has opened the other end: the held call is in progress. */
    int fd = open(r->gate, O_WRONLY);
    g_assert_cmpint(fd, >=, 0);
    g_atomic_int_set(&r->in_gate, 1);
    r->missed = g_atomic_int_get(&r->transfer_ok);
    GByteArray *body = NULL;
    r->stats_status =
        http(r->f->port, "GET /imaging/v1/stats HTTP/1.0\r\nHost: x\r\n\r\n", NULL, 0, &body);
    if (body != NULL)
        g_byte_array_unref(body);
    close(fd); /* the backend goes on */
    g_atomic_int_inc(&r->done);
    g_main_context_wakeup(NULL);
    return NULL;
}

static void run(Fixture *f, Run *r, const char *gate_name)
{
    g_autofree char *gate = g_build_filename(f->store, gate_name, NULL);
    g_assert_cmpint(mkfifo(gate, 0600), ==, 0);
    r->f = f;
    r->gate = gate;
    r->unblock_fd = -1;
    GThread *a = g_thread_new("transfer", transfer_thread, r);
    GThread *b = g_thread_new("checker", checker_thread, r);
    /* The daemon's loop turns until both are done (each wakes it when it is); each waits
     * for an answer at most the socket timeout, so this ends whether or not the server
     * misbehaves. */
    while (g_atomic_int_get(&r->done) < 2)
        g_main_context_iteration(NULL, TRUE);
    g_thread_join(a);
    g_thread_join(b);
    if (r->unblock_fd >= 0)
        close(r->unblock_fd);
    g_unlink(gate);
    g_assert_false(r->missed); /* the backend call was held while the checker asked */
}

static void test_off_loop(Fixture *f, gconstpointer data)
{
    g_autofree guint8 *chunk = g_malloc(CHUNK);
    for (gsize i = 0; i < CHUNK; i++)
        chunk[i] = (guint8)((i * 7) % 253);
    guint8 hash[PB_HASH_LEN];
    pb_sha256(chunk, CHUNK, hash);

    Run up = {.chunk = chunk, .upload = TRUE};
    pb_hash_to_hex(hash, up.hex);
    run(f, &up, "gate-write");
    g_assert_cmpint(up.stats_status, ==, 200); /* answered while the write was held */
    g_assert_cmpint(up.status, ==, 201);       /* then stored, verified */
    g_byte_array_unref(up.got);

    Run down = {.upload = FALSE};
    memcpy(down.hex, up.hex, sizeof(down.hex));
    run(f, &down, "gate-read");
    g_assert_cmpint(down.stats_status, ==, 200); /* answered while the read was held */
    g_assert_cmpint(down.status, ==, 200);
    g_assert_nonnull(down.got);
    g_assert_cmpmem(down.got->data, down.got->len, chunk, CHUNK);
    g_byte_array_unref(down.got);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/imaging/io/off-main-loop", Fixture, NULL, fx_setup, test_off_loop, fx_teardown);
    return g_test_run();
}
