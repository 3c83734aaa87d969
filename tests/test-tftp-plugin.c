/* test-tftp-plugin.c - the tftp module loaded by the real host, in process, talked to over
 * loopback by a small TFTP client written here (it keeps the main loop turning while it
 * waits). Covers the request path and every security rule of the issue; the real-client
 * interop lives in tests/tftp-interop.sh. */
#include "build-config.h"

#include "host.h"
#include "testutil.h"

#include "tftp-packet.h"
#include <preboot/tftp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *dir, *root;
    PbHost *host;
    guint16 port;
} Fixture;

/* ---- a TFTP client that pumps the main loop ----------------------------------------------- */

typedef struct {
    int fd;
    struct sockaddr_in peer; /* the server's TID once known */
    guint16 server_port;
} Client;

static gboolean wake(gpointer data)
{
    return G_SOURCE_CONTINUE;
}

/* The address clients send from: 127.0.0.1, or another loopback address to play a second
 * machine (Linux answers all of 127/8 on lo). */
static const char *client_source = "127.0.0.1";

static void client_open(Client *c, guint16 server_port)
{
    c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    g_assert_cmpint(c->fd, >=, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    g_assert_cmpint(inet_pton(AF_INET, client_source, &a.sin_addr), ==, 1);
    g_assert_cmpint(bind(c->fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    c->server_port = server_port;
    memset(&c->peer, 0, sizeof(c->peer));
}

static void client_close(Client *c)
{
    close(c->fd);
}

static void client_send_to(Client *c, guint16 port, const guint8 *buf, gsize len)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    g_assert_cmpint(sendto(c->fd, buf, len, 0, (struct sockaddr *)&a, sizeof(a)), ==, len);
}

/* Waits for a datagram; returns its length or -1 after timeout_ms. */
static gssize client_recv(Client *c, guint8 *buf, gsize cap, struct sockaddr_in *from,
                          guint timeout_ms)
{
    guint src = g_timeout_add(2, wake, NULL);
    gint64 end = g_get_monotonic_time() + timeout_ms * 1000;
    gssize n = -1;
    while (g_get_monotonic_time() < end) {
        socklen_t fl = sizeof(*from);
        n = recvfrom(c->fd, buf, cap, 0, (struct sockaddr *)from, &fl);
        if (n >= 0)
            break;
        g_main_context_iteration(NULL, TRUE);
    }
    g_source_remove(src);
    return n;
}

static void client_send_request(Client *c, TftpOpcode op, const char *file, const char *opts)
{
    guint8 b[1024];
    gsize n = tftp_build_request(b, sizeof(b), op, file, "octet", NULL);
    /* opts: "name=value name=value" */
    if (opts) {
        g_auto(GStrv) pairs = g_strsplit(opts, " ", -1);
        for (char **p = pairs; *p; p++) {
            char *eq = strchr(*p, '=');
            *eq = '\0';
            gsize a = strlen(*p) + 1, v = strlen(eq + 1) + 1;
            memcpy(b + n, *p, a);
            memcpy(b + n + a, eq + 1, v);
            n += a + v;
        }
    }
    client_send_to(c, c->server_port, b, n);
}

static void client_ack(Client *c, guint16 block)
{
    guint8 b[4];
    tftp_build_ack(b, 4, block);
    g_assert_cmpint(sendto(c->fd, b, 4, 0, (struct sockaddr *)&c->peer, sizeof(c->peer)), ==, 4);
}

typedef struct {
    GByteArray *data;
    guint error_code; /* 0 and error_text NULL on success */
    char *error_text;
    TftpOptions oack;
    gboolean got_oack;
    guint16 tid;
} Result;

static void result_clear(Result *r)
{
    if (r->data)
        g_byte_array_unref(r->data);
    g_free(r->error_text);
    memset(r, 0, sizeof(*r));
}

/* Downloads file; opts as in client_send_request. blksize/window assumed from the OACK. */
static gboolean tftp_get(Fixture *f, const char *file, const char *opts, Result *r)
{
    Client c;
    client_open(&c, f->port);
    memset(r, 0, sizeof(*r));
    r->data = g_byte_array_new();
    client_send_request(&c, TFTP_OP_RRQ, file, opts);
    guint8 buf[70000];
    guint blksize = 512, window = 1, since = 0;
    guint16 expect = 1;
    for (;;) {
        struct sockaddr_in from;
        gssize n = client_recv(&c, buf, sizeof(buf), &from, 5000);
        if (n < 0) {
            r->error_text = g_strdup("client timed out");
            break;
        }
        if (c.peer.sin_port == 0) {
            c.peer = from;
            r->tid = ntohs(from.sin_port);
        } else if (from.sin_port != c.peer.sin_port) {
            continue;
        }
        TftpPacket p;
        g_assert_cmpint(tftp_packet_parse(buf, (gsize)n, &p), ==, TFTP_PARSE_OK);
        if (p.op == TFTP_OP_ERROR) {
            r->error_code = p.error_code;
            r->error_text = g_strdup(p.error_msg ? p.error_msg : "");
            break;
        }
        if (p.op == TFTP_OP_OACK) {
            r->got_oack = TRUE;
            r->oack = p.opts;
            if (p.opts.has_blksize)
                blksize = p.opts.blksize;
            if (p.opts.has_windowsize)
                window = p.opts.windowsize;
            client_ack(&c, 0);
            continue;
        }
        g_assert_cmpint(p.op, ==, TFTP_OP_DATA);
        if (p.block != expect) {
            client_ack(&c, (guint16)(expect - 1));
            since = 0;
            continue;
        }
        g_byte_array_append(r->data, p.data, (guint)p.data_len);
        expect++;
        if (++since >= window || p.data_len < blksize) {
            client_ack(&c, p.block);
            since = 0;
        }
        if (p.data_len < blksize)
            break;
    }
    client_close(&c);
    return r->error_text == NULL;
}

/* Uploads content as file, lock step. */
static gboolean tftp_put(Fixture *f, const char *file, const char *opts, const guint8 *content,
                         gsize len, Result *r)
{
    Client c;
    client_open(&c, f->port);
    memset(r, 0, sizeof(*r));
    client_send_request(&c, TFTP_OP_WRQ, file, opts);
    guint8 buf[70000];
    guint blksize = 512;
    gsize off = 0;
    guint16 block = 0;
    gboolean last = FALSE;
    for (;;) {
        struct sockaddr_in from;
        gssize n = client_recv(&c, buf, sizeof(buf), &from, 5000);
        if (n < 0) {
            r->error_text = g_strdup("client timed out");
            break;
        }
        if (c.peer.sin_port == 0)
            c.peer = from;
        TftpPacket p;
        g_assert_cmpint(tftp_packet_parse(buf, (gsize)n, &p), ==, TFTP_PARSE_OK);
        if (p.op == TFTP_OP_ERROR) {
            r->error_code = p.error_code;
            r->error_text = g_strdup(p.error_msg ? p.error_msg : "");
            break;
        }
        if (p.op == TFTP_OP_OACK && block == 0) {
            r->got_oack = TRUE;
            r->oack = p.opts;
            if (p.opts.has_blksize)
                blksize = p.opts.blksize;
        } else if (p.op != TFTP_OP_ACK || p.block != block) {
            continue;
        }
        if (last)
            break;
        gsize chunk = MIN((gsize)blksize, len - off);
        block++;
        gsize m = tftp_build_data(buf, sizeof(buf), block, content + off, chunk);
        g_assert_cmpint(sendto(c.fd, buf, m, 0, (struct sockaddr *)&c.peer, sizeof(c.peer)), ==, m);
        off += chunk;
        last = chunk < blksize;
    }
    client_close(&c);
    return r->error_text == NULL;
}

/* ---- fixture ---------------------------------------------------------------------------- */

static const char *plugin_dir(void)
{
    static char *dir;
    if (dir == NULL) {
        const char *b = g_getenv("top_builddir");
        dir = g_build_filename(b ? b : ".", "plugins", "tftp", NULL);
    }
    return dir;
}

static void put_file(Fixture *f, const char *name, const void *data, gsize len)
{
    g_autofree char *p = g_build_filename(f->root, name, NULL);
    g_assert_true(g_file_set_contents(p, data, (gssize)len, NULL));
}

static guint8 *pattern(gsize len)
{
    guint8 *d = g_malloc(len);
    for (gsize i = 0; i < len; i++)
        d[i] = (guint8)(i * 7 + (i >> 9));
    return d;
}

static void start(Fixture *f, const char *extra_yaml)
{
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    PbConfig *cfg = pbt_yaml("plugins:\n"
                             "  - module: tftp\n"
                             "    interface: 127.0.0.1\n"
                             "    port: %u\n"
                             "    directory: %s\n"
                             "    log_level: 4\n"
                             "%s",
                             f->port, f->root, extra_yaml ? extra_yaml : "");
    g_assert_true(pb_host_apply(f->host, cfg, report, &error));
    g_assert_no_error(error);
}

static void fixture_set_up(Fixture *f, gconstpointer data)
{
    f->dir = pbt_tmpdir();
    f->root = g_build_filename(f->dir, "root", NULL);
    g_assert_cmpint(g_mkdir(f->root, 0755), ==, 0);
    PbGlobalConfig g;
    pbt_global(&g, f->dir, plugin_dir());
    f->host = pb_host_new(&g);
    pb_global_config_clear(&g);
    f->port = pbt_free_udp_port();
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
    pb_host_free(f->host);
    pbt_rmtree(f->dir);
    g_free(f->dir);
    g_free(f->root);
}

static gint64 counter(Fixture *f, const char *name)
{
    return pb_host_counter_value(f->host, "tftp", name);
}

static char *log_text(Fixture *f)
{
    g_autofree char *p = g_build_filename(f->dir, "log", "novell-tftp.log", NULL);
    char *t = NULL;
    g_file_get_contents(p, &t, NULL, NULL);
    return t ? t : g_strdup("");
}

static void assert_running(Fixture *f)
{
    pb_instance *inst = pb_host_find(f->host, "tftp");
    g_assert_nonnull(inst);
    if (pb_instance_get_state(inst) != PB_INSTANCE_RUNNING)
        g_error("tftp not running: %s", pb_instance_get_error(inst));
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_download(Fixture *f, gconstpointer data)
{
    gsize len = 200000;
    g_autofree guint8 *content = pattern(len);
    put_file(f, "pxelinux.0", content, len);
    start(f, NULL);
    assert_running(f);

    Result r;
    g_assert_true(tftp_get(f, "pxelinux.0", NULL, &r));
    g_assert_false(r.got_oack);
    g_assert_cmpmem(r.data->data, r.data->len, content, len);
    g_assert_cmpuint(r.tid, !=, f->port); /* a new TID per transfer */
    result_clear(&r);

    g_assert_true(tftp_get(f, "pxelinux.0", "blksize=65464 tsize=0 windowsize=8 x-unknown=1", &r));
    g_assert_true(r.got_oack);
    g_assert_cmpuint(r.oack.blksize, ==, 1428); /* TransferBlockSize */
    g_assert_cmpuint(r.oack.tsize, ==, len);
    g_assert_cmpuint(r.oack.windowsize, ==, 8);
    g_assert_cmpmem(r.data->data, r.data->len, content, len);
    result_clear(&r);

    /* A client timeout outside the configured range is left out of the OACK. */
    g_assert_true(tftp_get(f, "pxelinux.0", "timeout=200 blksize=1024", &r));
    g_assert_false(r.oack.has_timeout);
    g_assert_cmpuint(r.oack.blksize, ==, 1024);
    result_clear(&r);

    for (int i = 0; i < 50 && counter(f, "active_transfers") > 0; i++)
        pbt_spin(10);
    g_assert_cmpint(counter(f, "transfers_ok"), ==, 3);
    g_assert_cmpint(counter(f, "bytes_sent"), ==, 3 * (gint64)len);
    g_assert_cmpint(counter(f, "active_transfers"), ==, 0);
    g_autofree char *log = log_text(f);
    g_assert_nonnull(strstr(log, "downloaded pxelinux.0: 200000 bytes"));
}

static void test_refusals(Fixture *f, gconstpointer data)
{
    g_autofree char *outside = g_build_filename(f->dir, "secret", NULL);
    g_assert_true(g_file_set_contents(outside, "secret", -1, NULL));
    g_autofree char *link = g_build_filename(f->root, "escape", NULL);
    g_assert_cmpint(symlink(outside, link), ==, 0);
    g_autofree char *rel = g_build_filename(f->root, "escape2", NULL);
    g_assert_cmpint(symlink("../secret", rel), ==, 0);
    g_autofree char *fifo = g_build_filename(f->root, "fifo", NULL);
    g_assert_cmpint(mkfifo(fifo, 0644), ==, 0);
    g_autofree char *dev = g_build_filename(f->root, "zero", NULL);
    g_assert_cmpint(symlink("/dev/zero", dev), ==, 0);
    put_file(f, "ok", "fine", 4);
    start(f, NULL);

    static const struct {
        const char *name;
        guint code;
    } cases[] = {
        {"missing", TFTP_ERR_NOT_FOUND},     {"../secret", TFTP_ERR_ACCESS},
        {"a/../../secret", TFTP_ERR_ACCESS}, {"..\\secret", TFTP_ERR_ACCESS},
        {"\\ok", TFTP_ERR_ACCESS},           {"/etc/passwd", TFTP_ERR_ACCESS},
        {"escape", TFTP_ERR_ACCESS},         {"escape2", TFTP_ERR_ACCESS},
        {"fifo", TFTP_ERR_ACCESS},           {"zero", TFTP_ERR_ACCESS},
        {".../secret", TFTP_ERR_ACCESS},     {"C:\\ok", TFTP_ERR_ACCESS},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        Result r;
        g_assert_false(tftp_get(f, cases[i].name, NULL, &r));
        if (r.error_code != cases[i].code)
            g_error("%s: error %u (%s), expected %u", cases[i].name, r.error_code, r.error_text,
                    cases[i].code);
        result_clear(&r);
    }
    /* Writes are off by default. */
    Result r;
    g_assert_false(tftp_put(f, "new", NULL, (const guint8 *)"x", 1, &r));
    g_assert_cmpuint(r.error_code, ==, TFTP_ERR_ACCESS);
    result_clear(&r);
    g_autofree char *np = g_build_filename(f->root, "new", NULL);
    g_assert_false(g_file_test(np, G_FILE_TEST_EXISTS));
    g_assert_true(tftp_get(f, "ok", NULL, &r));
    result_clear(&r);
    g_assert_cmpint(counter(f, "refused"), ==, G_N_ELEMENTS(cases) + 1);
    g_autofree char *log = log_text(f);
    g_assert_nonnull(strstr(log, "RRQ ../secret refused: parent directory in path"));
    g_assert_nonnull(strstr(log, "RRQ escape refused"));
    g_assert_nonnull(strstr(log, "RRQ fifo refused: not a regular file"));
    g_assert_nonnull(strstr(log, "WRQ new refused: writes are disabled"));
}

static void test_uploads(Fixture *f, gconstpointer data)
{
    put_file(f, "exists", "old content", 11);
    start(f, "    allow_writes: yes\n    max_upload_size: 1\n");
    gsize len = 5000;
    g_autofree guint8 *content = pattern(len);
    Result r;
    g_assert_true(tftp_put(f, "up.bin", "blksize=1000", content, len, &r));
    g_assert_true(r.got_oack);
    result_clear(&r);
    g_autofree char *p = g_build_filename(f->root, "up.bin", NULL);
    g_autofree char *got = NULL;
    gsize got_len;
    g_assert_true(g_file_get_contents(p, &got, &got_len, NULL));
    g_assert_cmpmem(got, got_len, content, len);

    /* An existing file without overwrites: error 6, the old content untouched. */
    g_assert_false(tftp_put(f, "exists", NULL, content, 100, &r));
    g_assert_cmpuint(r.error_code, ==, TFTP_ERR_EXISTS);
    result_clear(&r);
    /* tsize above the upload limit (1 MB): refused up front with error 3. */
    g_assert_false(tftp_put(f, "big", "tsize=2000000", content, 100, &r));
    g_assert_cmpuint(r.error_code, ==, TFTP_ERR_DISK_FULL);
    result_clear(&r);
    g_autofree char *bp = g_build_filename(f->root, "big", NULL);
    g_assert_false(g_file_test(bp, G_FILE_TEST_EXISTS));

    /* Reload with overwrites on: the same upload now replaces the file. */
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    PbConfig *cfg = pbt_yaml("plugins:\n  - module: tftp\n    interface: 127.0.0.1\n"
                             "    port: %u\n    directory: %s\n    allow_writes: yes\n"
                             "    allow_overwrites: yes\n",
                             f->port, f->root);
    g_assert_true(pb_host_reload(f->host, cfg, report, &error));
    g_assert_no_error(error);
    g_assert_true(tftp_put(f, "exists", NULL, content, 700, &r));
    result_clear(&r);
    g_autofree char *ep = g_build_filename(f->root, "exists", NULL);
    g_autofree char *e = NULL;
    g_assert_true(g_file_get_contents(ep, &e, &got_len, NULL));
    g_assert_cmpmem(e, got_len, content, 700);
    /* No temporary files left behind. */
    g_autoptr(GDir) d = g_dir_open(f->root, 0, NULL);
    const char *n;
    while ((n = g_dir_read_name(d)))
        g_assert_null(strstr(n, "tftp-part"));
}

static void test_aborted_upload(Fixture *f, gconstpointer data)
{
    /* The client stops after two blocks: nothing appears under the real name. */
    start(f, "    allow_writes: yes\n    timeout: 1\n    max_retries: 1\n");
    Client c;
    client_open(&c, f->port);
    client_send_request(&c, TFTP_OP_WRQ, "partial", NULL);
    guint8 buf[600];
    struct sockaddr_in from;
    g_assert_cmpint(client_recv(&c, buf, sizeof(buf), &from, 2000), ==, 4);
    c.peer = from;
    guint8 blk[512] = {1};
    for (guint16 b = 1; b <= 2; b++) {
        gsize m = tftp_build_data(buf, sizeof(buf), b, blk, 512);
        sendto(c.fd, buf, m, 0, (struct sockaddr *)&c.peer, sizeof(c.peer));
        g_assert_cmpint(client_recv(&c, buf, sizeof(buf), &from, 2000), ==, 4);
    }
    g_autofree char *p = g_build_filename(f->root, "partial", NULL);
    for (int i = 0; i < 2000 && counter(f, "active_transfers") > 0; i++)
        pbt_spin(10);
    g_assert_cmpint(counter(f, "active_transfers"), ==, 0);
    g_assert_cmpint(counter(f, "transfers_failed"), ==, 1);
    g_assert_false(g_file_test(p, G_FILE_TEST_EXISTS));
    g_autoptr(GDir) d = g_dir_open(f->root, 0, NULL);
    g_assert_null(g_dir_read_name(d)); /* no temporary file either */
    client_close(&c);
}

static void test_wrong_tid_and_duplicate_rrq(Fixture *f, gconstpointer data)
{
    gsize len = 3000;
    g_autofree guint8 *content = pattern(len);
    put_file(f, "f", content, len);
    start(f, NULL);
    Client c, stranger;
    client_open(&c, f->port);
    client_open(&stranger, f->port);
    client_send_request(&c, TFTP_OP_RRQ, "f", NULL);
    client_send_request(&c, TFTP_OP_RRQ, "f", NULL); /* retransmitted request */
    guint8 buf[600];
    struct sockaddr_in from;
    g_assert_cmpint(client_recv(&c, buf, sizeof(buf), &from, 2000), ==, 516);
    c.peer = from;
    /* A stranger talks to the transfer's port: ERROR 5 to it, the transfer goes on. */
    guint8 a[4];
    tftp_build_ack(a, 4, 1);
    client_send_to(&stranger, ntohs(from.sin_port), a, 4);
    struct sockaddr_in sf;
    gssize n = client_recv(&stranger, buf, sizeof(buf), &sf, 2000);
    TftpPacket p;
    g_assert_cmpint(tftp_packet_parse(buf, (gsize)n, &p), ==, TFTP_PARSE_OK);
    g_assert_cmpint(p.op, ==, TFTP_OP_ERROR);
    g_assert_cmpuint(p.error_code, ==, TFTP_ERR_UNKNOWN_TID);
    GByteArray *got = g_byte_array_new();
    guint16 expect = 1;
    n = tftp_build_data(buf, sizeof(buf), 1, content, 512); /* the DATA 1 received above */
    for (;;) {
        g_assert_cmpint(tftp_packet_parse(buf, (gsize)n, &p), ==, TFTP_PARSE_OK);
        g_assert_cmpint(p.op, ==, TFTP_OP_DATA);
        g_assert_cmpuint(p.block, ==, expect); /* never a duplicate */
        g_byte_array_append(got, p.data, (guint)p.data_len);
        client_ack(&c, p.block);
        /* duplicate every ACK: must not double the DATA (sorcerer's apprentice) */
        client_ack(&c, p.block);
        expect++;
        if (p.data_len < 512)
            break;
        n = client_recv(&c, buf, sizeof(buf), &from, 3000);
        g_assert_cmpint(n, >=, 4);
        g_assert_cmpuint(ntohs(from.sin_port), ==, ntohs(c.peer.sin_port)); /* one TID only */
    }
    g_assert_cmpmem(got->data, got->len, content, len);
    g_byte_array_unref(got);
    /* Nothing more arrives: no duplicated DATA from the duplicate ACKs, no second transfer. */
    g_assert_cmpint(client_recv(&c, buf, sizeof(buf), &from, 300), ==, -1);
    g_assert_cmpint(counter(f, "duplicate_requests"), ==, 1);
    g_assert_cmpint(counter(f, "unknown_tid"), ==, 1);
    g_assert_cmpint(counter(f, "transfers_ok"), ==, 1);
    client_close(&c);
    client_close(&stranger);
}

static void test_tsize_probe(Fixture *f, gconstpointer data)
{
    put_file(f, "bootx64.efi", "0123456789", 10);
    start(f, NULL);
    Client c;
    client_open(&c, f->port);
    client_send_request(&c, TFTP_OP_RRQ, "bootx64.efi", "tsize=0 blksize=1468");
    guint8 buf[600];
    struct sockaddr_in from;
    gssize n = client_recv(&c, buf, sizeof(buf), &from, 2000);
    TftpPacket p;
    g_assert_cmpint(tftp_packet_parse(buf, (gsize)n, &p), ==, TFTP_PARSE_OK);
    g_assert_cmpint(p.op, ==, TFTP_OP_OACK);
    g_assert_cmpuint(p.opts.tsize, ==, 10);
    c.peer = from;
    gsize m = tftp_build_error(buf, sizeof(buf), TFTP_ERR_OPTION, "tsize probe");
    sendto(c.fd, buf, m, 0, (struct sockaddr *)&c.peer, sizeof(c.peer));
    /* Then at once the real request, from the same port (as EDK2 may): the ERROR still
     * queued on the probe's socket must not make it look like a retransmission. */
    client_send_request(&c, TFTP_OP_RRQ, "bootx64.efi", "tsize=0 blksize=1468");
    n = client_recv(&c, buf, sizeof(buf), &from, 2000);
    g_assert_cmpint(tftp_packet_parse(buf, (gsize)n, &p), ==, TFTP_PARSE_OK);
    g_assert_cmpint(p.op, ==, TFTP_OP_OACK);
    g_assert_cmpuint(ntohs(from.sin_port), !=, ntohs(c.peer.sin_port)); /* a new transfer */
    c.peer = from;
    client_ack(&c, 0);
    n = client_recv(&c, buf, sizeof(buf), &from, 2000);
    g_assert_cmpint(n, ==, 14);
    g_assert_cmpmem(buf + 4, 10, "0123456789", 10);
    client_ack(&c, 1);
    for (int i = 0; i < 100 && counter(f, "transfers_ok") < 1; i++)
        pbt_spin(5);
    g_assert_cmpint(counter(f, "active_transfers"), ==, 0);
    g_assert_cmpint(counter(f, "tsize_probes"), ==, 1);
    g_assert_cmpint(counter(f, "transfers_ok"), ==, 1);
    g_assert_cmpint(counter(f, "transfers_failed"), ==, 0);
    g_assert_cmpint(counter(f, "duplicate_requests"), ==, 0);
    client_close(&c);
    g_autofree char *log = log_text(f);
    g_assert_null(strstr(log, "failed"));
}

static void test_silent_client(Fixture *f, gconstpointer data)
{
    gsize len = 100000;
    g_autofree guint8 *content = pattern(len);
    put_file(f, "big", content, len);
    start(f, "    timeout: 1\n    max_retries: 2\n");
    Client c;
    client_open(&c, f->port);
    client_send_request(&c, TFTP_OP_RRQ, "big", NULL);
    guint8 buf[600];
    struct sockaddr_in from;
    g_assert_cmpint(client_recv(&c, buf, sizeof(buf), &from, 2000), ==, 516);
    g_assert_cmpint(counter(f, "active_transfers"), ==, 1);
    /* Never acknowledge: retransmitted with backoff (1 s, 2 s), then dropped. */
    gint64 t0 = g_get_monotonic_time();
    guint resent = 0;
    while (counter(f, "active_transfers") > 0 &&
           g_get_monotonic_time() - t0 < 10 * G_USEC_PER_SEC) {
        if (client_recv(&c, buf, sizeof(buf), &from, 50) == 516)
            resent++;
    }
    g_assert_cmpint(counter(f, "active_transfers"), ==, 0);
    g_assert_cmpuint(resent, ==, 2);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 8 * G_USEC_PER_SEC);
    g_assert_cmpint(counter(f, "transfers_failed"), ==, 1);
    g_autofree char *log = log_text(f);
    g_assert_nonnull(strstr(log, "download big failed (timeout)"));
    client_close(&c);
}

static void test_rate_limit_and_networks(Fixture *f, gconstpointer data)
{
    start(f, "    rate_limit: 2\n");
    Client c;
    client_open(&c, f->port);
    for (int i = 0; i < 10; i++)
        client_send_request(&c, TFTP_OP_RRQ, "missing", NULL);
    guint8 buf[600];
    struct sockaddr_in from;
    guint answers = 0;
    while (client_recv(&c, buf, sizeof(buf), &from, 300) > 0)
        answers++;
    g_assert_cmpuint(answers, ==, 4); /* a burst of twice the rate */
    g_assert_cmpint(counter(f, "rate_limited"), ==, 6);
    client_close(&c);

    /* deny wins over allow; a denied client gets no answer at all. */
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    PbConfig *cfg = pbt_yaml("plugins:\n  - module: tftp\n    interface: 127.0.0.1\n"
                             "    port: %u\n    directory: %s\n    allow: [127.0.0.0/8]\n"
                             "    deny: [127.0.0.1/32]\n    rate_limit: 0\n",
                             f->port, f->root);
    g_assert_true(pb_host_reload(f->host, cfg, report, &error));
    client_open(&c, f->port);
    client_send_request(&c, TFTP_OP_RRQ, "missing", NULL);
    g_assert_cmpint(client_recv(&c, buf, sizeof(buf), &from, 300), ==, -1);
    client_close(&c);
}

static void test_broadcast_ignored(Fixture *f, gconstpointer data)
{
    /* Listening on the wildcard, a request sent to a broadcast address gets no answer: the
     * server is no amplifier. */
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    put_file(f, "f", "x", 1);
    PbConfig *cfg =
        pbt_yaml("plugins:\n  - module: tftp\n    port: %u\n    directory: %s\n", f->port, f->root);
    g_assert_true(pb_host_apply(f->host, cfg, report, &error));
    assert_running(f);
    Client c;
    client_open(&c, f->port);
    int on = 1;
    setsockopt(c.fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof(on));
    guint8 b[64];
    gsize n = tftp_build_request(b, sizeof(b), TFTP_OP_RRQ, "f", "octet", NULL);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(f->port),
                            .sin_addr.s_addr = inet_addr("127.255.255.255")};
    if (sendto(c.fd, b, n, 0, (struct sockaddr *)&a, sizeof(a)) != (gssize)n) {
        g_test_skip("cannot send to 127.255.255.255 here");
        client_close(&c);
        return;
    }
    guint8 buf[600];
    struct sockaddr_in from;
    g_assert_cmpint(client_recv(&c, buf, sizeof(buf), &from, 300), ==, -1);
    g_assert_cmpint(counter(f, "ignored"), ==, 1);
    g_assert_cmpint(counter(f, "requests"), ==, 0);
    /* The same request, unicast, is answered. */
    client_send_request(&c, TFTP_OP_RRQ, "f", NULL);
    g_assert_cmpint(client_recv(&c, buf, sizeof(buf), &from, 2000), ==, 5);
    client_close(&c);
}

static void test_reply_from_request_address(Fixture *f, gconstpointer data)
{
    /* Multi-homed: listening on the wildcard, a request sent to 127.0.0.2 is answered from
     * 127.0.0.2 (IP_PKTINFO), or the client would drop the reply as coming from a stranger. */
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    put_file(f, "f", "hello", 5);
    PbConfig *cfg =
        pbt_yaml("plugins:\n  - module: tftp\n    port: %u\n    directory: %s\n", f->port, f->root);
    g_assert_true(pb_host_apply(f->host, cfg, report, &error));
    assert_running(f);
    Client c;
    client_open(&c, f->port);
    guint8 b[600];
    gsize n = tftp_build_request(b, sizeof(b), TFTP_OP_RRQ, "f", "octet", NULL);
    for (int i = 2; i <= 3; i++) {
        char dst[16];
        g_snprintf(dst, sizeof(dst), "127.0.0.%d", i);
        struct sockaddr_in a = {
            .sin_family = AF_INET, .sin_port = htons(f->port), .sin_addr.s_addr = inet_addr(dst)};
        g_assert_cmpint(sendto(c.fd, b, n, 0, (struct sockaddr *)&a, sizeof(a)), ==, n);
        struct sockaddr_in from;
        gssize got = client_recv(&c, b + 100, 500, &from, 2000);
        if (got != 9) {
            g_autofree char *log = log_text(f);
            g_test_message("log: %s", log);
        }
        g_assert_cmpint(got, ==, 9);
        g_assert_cmpstr(inet_ntoa(from.sin_addr), ==, dst);
        c.peer = from;
        client_ack(&c, 1);
    }
    client_close(&c);
}

static void test_ipv6(Fixture *f, gconstpointer data)
{
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in6 me = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0) {
        g_test_skip("no IPv6 loopback here");
        if (fd >= 0)
            close(fd);
        return;
    }
    put_file(f, "f6", "over ipv6", 9);
    start(f, "    ipv6: yes\n    interface6: \"::1\"\n");
    assert_running(f);
    guint8 b[600];
    gsize n = tftp_build_request(b, sizeof(b), TFTP_OP_RRQ, "f6", "octet", NULL);
    struct sockaddr_in6 srv = {
        .sin6_family = AF_INET6, .sin6_port = htons(f->port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    g_assert_cmpint(sendto(fd, b, n, 0, (struct sockaddr *)&srv, sizeof(srv)), ==, n);
    guint src = g_timeout_add(2, wake, NULL);
    gint64 end = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
    gssize got = -1;
    struct sockaddr_in6 from;
    while (got < 0 && g_get_monotonic_time() < end) {
        socklen_t fl = sizeof(from);
        got = recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&from, &fl);
        if (got < 0)
            g_main_context_iteration(NULL, TRUE);
    }
    g_source_remove(src);
    g_assert_cmpint(got, ==, 13);
    g_assert_cmpmem(b + 4, 9, "over ipv6", 9);
    g_assert_cmpuint(ntohs(from.sin6_port), !=, f->port);
    guint8 a[4];
    tftp_build_ack(a, 4, 1);
    sendto(fd, a, 4, 0, (struct sockaddr *)&from, sizeof(from));
    for (int i = 0; i < 200 && counter(f, "transfers_ok") < 1; i++)
        pbt_spin(5);
    g_assert_cmpint(counter(f, "transfers_ok"), ==, 1);
    close(fd);
}

typedef struct {
    GPtrArray *events;
} Listener;

static void on_event(void *data, const pb_tftp_event *ev)
{
    Listener *l = data;
    g_ptr_array_add(l->events,
                    g_strdup_printf("%s %s %s %" G_GUINT64_FORMAT " %u", ev->client,
                                    ev->upload ? "up" : "down", ev->path, ev->bytes, ev->result));
}

typedef struct {
    char *text;
} VHandle;

static int64_t v_read(void *handle, uint64_t off, void *buf, size_t len)
{
    VHandle *h = handle;
    size_t total = strlen(h->text);
    if (off >= total)
        return 0;
    size_t n = MIN(len, total - off);
    memcpy(buf, h->text + off, n);
    return (int64_t)n;
}

static void v_close(void *handle)
{
    VHandle *h = handle;
    g_free(h->text);
    g_free(h);
}

static int v_open(void *data, const char *client, const char *path, pb_tftp_vfile *out)
{
    if (g_strcmp0(path, "menu.cfg") == 0) {
        VHandle *h = g_new0(VHandle, 1);
        h->text = g_strdup_printf("menu for %s\n", client);
        out->size = (int64_t)strlen(h->text);
        out->read = v_read;
        out->close = v_close;
        out->handle = h;
        return 1;
    }
    if (g_strcmp0(path, "forbidden") == 0)
        return -1;
    return 0;
}

static void test_virtual_files_and_events(Fixture *f, gconstpointer data)
{
    put_file(f, "disk", "from disk", 9);
    start(f, NULL);
    pb_instance *inst = pb_host_find(f->host, "tftp");
    const pb_host *h = pb_host_services();
    uint32_t ver = 0;
    const pb_tftp_service *svc = h->service_lookup(inst, PB_TFTP_SERVICE, 1, &ver);
    g_assert_nonnull(svc);
    g_assert_cmpuint(ver, ==, PB_TFTP_SERVICE_VERSION);
    Listener l = {g_ptr_array_new_with_free_func(g_free)};
    g_assert_true(svc->add_file_provider(svc->ctx, v_open, NULL));
    g_assert_true(svc->add_listener(svc->ctx, on_event, &l));

    Result r;
#define WAIT_EVENTS(n)                                   \
    for (int i = 0; i < 200 && l.events->len < (n); i++) \
        pbt_spin(5);                                     \
    g_assert_cmpuint(l.events->len, ==, (n))
    g_assert_true(tftp_get(f, "menu.cfg", "tsize=0", &r));
    g_assert_cmpmem(r.data->data, r.data->len, "menu for 127.0.0.1\n", 19);
    g_assert_cmpuint(r.oack.tsize, ==, 19);
    result_clear(&r);
    WAIT_EVENTS(1);
    g_assert_true(tftp_get(f, "disk", NULL, &r)); /* not the provider's: from disk */
    g_assert_cmpmem(r.data->data, r.data->len, "from disk", 9);
    result_clear(&r);
    WAIT_EVENTS(2);
    g_assert_false(tftp_get(f, "forbidden", NULL, &r));
    g_assert_cmpuint(r.error_code, ==, TFTP_ERR_ACCESS);
    result_clear(&r);
    WAIT_EVENTS(3);
    g_assert_cmpstr(l.events->pdata[0], ==, "127.0.0.1 down menu.cfg 19 0");
    g_assert_cmpstr(l.events->pdata[1], ==, "127.0.0.1 down disk 9 0");
    g_assert_cmpstr(l.events->pdata[2], ==, "127.0.0.1 down forbidden 0 6");
    svc->remove_listener(svc->ctx, on_event, &l);
    svc->remove_file_provider(svc->ctx, v_open, NULL);
    g_assert_true(tftp_get(f, "disk", NULL, &r));
    result_clear(&r);
    g_assert_cmpuint(l.events->len, ==, 3);
    g_ptr_array_unref(l.events);
}

/* A provider of the typed kind (service version 2): the client's address as bytes, and
 * finish() told how the transfer ended, before close(). */
typedef struct {
    GPtrArray *calls; /* "open 4 127.0.0.1", "finish 1 0", "close" */
} Typed;

static const char typed_text[] = "typed content\n";

static int64_t typed_read(void *handle, uint64_t offset, void *buf, size_t len)
{
    gsize size = sizeof(typed_text) - 1;
    if (offset >= size)
        return 0;
    gsize n = MIN(len, size - offset);
    memcpy(buf, typed_text + offset, n);
    return (int64_t)n;
}

static void typed_finish(void *handle, uint32_t result, uint64_t bytes)
{
    Typed *t = handle;
    g_ptr_array_add(t->calls, g_strdup_printf("finish %u %" G_GUINT64_FORMAT, result, bytes));
}

static void typed_close(void *handle)
{
    Typed *t = handle;
    g_ptr_array_add(t->calls, g_strdup("close"));
}

static int typed_open(void *data, const pb_tftp_open_request *rq, pb_tftp_vfile *out)
{
    Typed *t = data;
    if (strcmp(rq->path, "typed.cfg") != 0)
        return 0;
    char a[64];
    inet_ntop(rq->family == 6 ? AF_INET6 : AF_INET, rq->addr, a, sizeof(a));
    g_ptr_array_add(t->calls, g_strdup_printf("open %u %s %s", rq->family, a, rq->client));
    out->struct_size = sizeof(*out);
    out->size = sizeof(typed_text) - 1;
    out->read = typed_read;
    out->finish = typed_finish;
    out->close = typed_close;
    out->handle = t;
    return 1;
}

static void test_typed_provider_finish(Fixture *f, gconstpointer data)
{
    start(f, NULL);
    pb_instance *inst = pb_host_find(f->host, "tftp");
    uint32_t ver = 0;
    const pb_tftp_service *svc = pb_host_services()->service_lookup(inst, PB_TFTP_SERVICE, 2, &ver);
    g_assert_nonnull(svc);
    g_assert_cmpuint(ver, >=, 2);
    Typed t = {g_ptr_array_new_with_free_func(g_free)};
    g_assert_true(svc->add_file_provider2(svc->ctx, typed_open, &t));
    /* UEFI's size probe: RRQ with tsize, the OACK, then ERROR 8 */
    Client c;
    client_open(&c, f->port);
    client_send_request(&c, TFTP_OP_RRQ, "typed.cfg", "tsize=0");
    guint8 buf[600];
    struct sockaddr_in from;
    gssize n = client_recv(&c, buf, sizeof(buf), &from, 2000);
    TftpPacket p;
    g_assert_cmpint(tftp_packet_parse(buf, (gsize)n, &p), ==, TFTP_PARSE_OK);
    g_assert_cmpint(p.op, ==, TFTP_OP_OACK);
    g_assert_cmpuint(p.opts.tsize, ==, sizeof(typed_text) - 1);
    gsize m = tftp_build_error(buf, sizeof(buf), TFTP_ERR_OPTION, "tsize probe");
    sendto(c.fd, buf, m, 0, (struct sockaddr *)&from, sizeof(from));
    client_close(&c);
    for (int i = 0; i < 300 && t.calls->len < 3; i++)
        pbt_spin(5);
    g_assert_cmpuint(t.calls->len, ==, 3);
    g_assert_cmpstr(t.calls->pdata[0], ==, "open 4 127.0.0.1 127.0.0.1");
    g_autofree char *probe = g_strdup_printf("finish %u 0", PB_TFTP_TSIZE_PROBE);
    g_assert_cmpstr(t.calls->pdata[1], ==, probe);
    g_assert_cmpstr(t.calls->pdata[2], ==, "close");
    /* the real fetch: finish says OK with the bytes, then close */
    Result r;
    g_assert_true(tftp_get(f, "typed.cfg", NULL, &r));
    g_assert_cmpmem(r.data->data, r.data->len, typed_text, sizeof(typed_text) - 1);
    result_clear(&r);
    for (int i = 0; i < 300 && t.calls->len < 6; i++)
        pbt_spin(5);
    g_assert_cmpuint(t.calls->len, ==, 6);
    g_autofree char *okf = g_strdup_printf("finish %u %zu", PB_TFTP_OK, sizeof(typed_text) - 1);
    g_assert_cmpstr(t.calls->pdata[4], ==, okf);
    g_assert_cmpstr(t.calls->pdata[5], ==, "close");
    svc->remove_file_provider2(svc->ctx, typed_open, &t);
    g_assert_false(tftp_get(f, "typed.cfg", NULL, &r));
    result_clear(&r);
    g_ptr_array_unref(t.calls);
}

/* One address holding transfers open up to the limit gets errors beyond it, while another
 * address is still served. */
static void test_per_client_limit(Fixture *f, gconstpointer data)
{
    gsize len = 100000;
    g_autofree guint8 *content = pattern(len);
    put_file(f, "big", content, len);
    start(f, "    max_transfers_per_client: 3\n    timeout: 10\n");
    Client c[5];
    guint8 buf[600];
    struct sockaddr_in from;
    for (int i = 0; i < 3; i++) { /* three downloads started and left hanging */
        client_open(&c[i], f->port);
        client_send_request(&c[i], TFTP_OP_RRQ, "big", NULL);
        g_assert_cmpint(client_recv(&c[i], buf, sizeof(buf), &from, 2000), ==, 516);
    }
    g_assert_cmpint(counter(f, "active_transfers"), ==, 3);
    for (int i = 3; i < 5; i++) { /* the fourth and fifth are refused */
        client_open(&c[i], f->port);
        client_send_request(&c[i], TFTP_OP_RRQ, "big", NULL);
        gssize n = client_recv(&c[i], buf, sizeof(buf), &from, 2000);
        TftpPacket p;
        g_assert_cmpint(tftp_packet_parse(buf, (gsize)n, &p), ==, TFTP_PARSE_OK);
        g_assert_cmpint(p.op, ==, TFTP_OP_ERROR);
        g_assert_cmpuint(p.error_code, ==, TFTP_ERR_UNDEFINED);
        g_assert_cmpstr(p.error_msg, ==, "Too many transfers from your address");
    }
    g_assert_cmpint(counter(f, "client_limited"), ==, 2);
    /* another machine is served meanwhile */
    client_source = "127.0.0.2";
    Result r;
    gboolean ok = tftp_get(f, "big", NULL, &r);
    client_source = "127.0.0.1";
    g_assert_true(ok);
    g_assert_cmpmem(r.data->data, r.data->len, content, len);
    result_clear(&r);
    /* and the log says so once, not once per refusal */
    g_autofree char *log = log_text(f);
    g_assert_nonnull(strstr(log, "127.0.0.1: RRQ big refused: 3 transfers from that address"));
    g_assert_null(
        strstr(strstr(log, "3 transfers from that address") + 1, "3 transfers from that address"));
    for (int i = 0; i < 5; i++)
        client_close(&c[i]);
}

/* After a kill -9 mid-upload the temporary file stays: removed at start, and never served
 * (nor writable under that name) should one appear later. */
static void test_temporary_files(Fixture *f, gconstpointer data)
{
    put_file(f, ".boot.efi.0000abcd.tftp-part", "half", 4);
    g_autofree char *sub = g_build_filename(f->root, "sub", NULL);
    g_assert_cmpint(g_mkdir(sub, 0755), ==, 0);
    put_file(f, "sub/.x.12345678.tftp-part", "half", 4);
    put_file(f, "sub/keep.tftp-part", "kept", 4); /* not one of ours */
    /* a link out of the root is not followed */
    g_autofree char *outside = g_build_filename(f->dir, "outside", NULL);
    g_assert_cmpint(g_mkdir(outside, 0755), ==, 0);
    g_autofree char *ofile = g_build_filename(outside, ".y.12345678.tftp-part", NULL);
    g_assert_true(g_file_set_contents(ofile, "x", -1, NULL));
    g_autofree char *link = g_build_filename(f->root, "link", NULL);
    g_assert_cmpint(symlink(outside, link), ==, 0);

    start(f, "    allow_writes: yes\n");
    assert_running(f);
    g_autofree char *t1 = g_build_filename(f->root, ".boot.efi.0000abcd.tftp-part", NULL);
    g_autofree char *t2 = g_build_filename(sub, ".x.12345678.tftp-part", NULL);
    g_autofree char *k = g_build_filename(sub, "keep.tftp-part", NULL);
    g_assert_false(g_file_test(t1, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(t2, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(k, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(ofile, G_FILE_TEST_EXISTS));
    g_autofree char *log = log_text(f);
    g_assert_nonnull(strstr(log, "removed 2 temporary file(s)"));

    /* one that appears later (an upload running, another daemon killed) is not served */
    put_file(f, ".later.0000abcd.tftp-part", "secret", 6);
    Result r;
    g_assert_false(tftp_get(f, ".later.0000abcd.tftp-part", NULL, &r));
    g_assert_cmpuint(r.error_code, ==, TFTP_ERR_NOT_FOUND);
    result_clear(&r);
    g_assert_false(tftp_get(f, "sub/../.later.0000ABCD.tftp-part", NULL, &r));
    result_clear(&r);
    /* nor written by a client */
    g_assert_false(tftp_put(f, ".evil.00000000.tftp-part", NULL, (const guint8 *)"x", 1, &r));
    g_assert_cmpuint(r.error_code, ==, TFTP_ERR_NOT_FOUND);
    result_clear(&r);
    g_free(log);
    log = log_text(f);
    g_assert_nonnull(strstr(log, "RRQ .later.0000abcd.tftp-part refused: temporary upload file"));
}

/* The process's descriptor limit cannot carry the configured maxima: said at start. */
static void test_fd_limit_warning(Fixture *f, gconstpointer data)
{
    struct rlimit old, low;
    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &old), ==, 0);
    low = old;
    low.rlim_cur = 200;
    if (old.rlim_max != RLIM_INFINITY && old.rlim_max < 200) {
        g_test_skip("descriptor limit below 200");
        return;
    }
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &low), ==, 0);
    start(f, "    max_transfers: 4096\n");
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &old), ==, 0);
    assert_running(f);
    g_autofree char *log = log_text(f);
    g_assert_nonnull(strstr(log, "the descriptor limit (200) cannot carry max_transfers 4096"));
}

/* The configuration's build step checks the root: a reload (and --check-config, which
 * runs the same step) refuses what a start would, naming the key and the value. */
static void test_reload_checks_root(Fixture *f, gconstpointer data)
{
    start(f, NULL);
    put_file(f, "plain", "x", 1);
    const char *bad[] = {"gone", "root/plain"};
    const char *why[] = {"No such file or directory", "not a directory"};
    for (int i = 0; i < 2; i++) {
        g_autoptr(GString) report = g_string_new(NULL);
        g_autoptr(GError) error = NULL;
        PbConfig *cfg = pbt_yaml("plugins:\n  - module: tftp\n    interface: 127.0.0.1\n"
                                 "    port: %u\n    directory: %s/%s\n",
                                 f->port, f->dir, bad[i]);
        g_assert_false(pb_host_reload(f->host, cfg, report, &error));
        g_autofree char *want = g_strdup_printf("directory: '%s/%s': %s", f->dir, bad[i], why[i]);
        const char *all = error ? error->message : report->str;
        if (strstr(all, want) == NULL && strstr(report->str, want) == NULL)
            g_error("expected \"%s\" in: %s / %s", want, all, report->str);
    }
    assert_running(f); /* still serving the old root */
}

static void test_single_port(Fixture *f, gconstpointer data)
{
    gsize len = 20000;
    g_autofree guint8 *content = pattern(len);
    put_file(f, "f", content, len);
    start(f, "    single_port: yes\n");
    Result r;
    g_assert_true(tftp_get(f, "f", "blksize=1000 windowsize=4", &r));
    g_assert_cmpuint(r.tid, ==, f->port); /* everything from the server port (NAT) */
    g_assert_cmpmem(r.data->data, r.data->len, content, len);
    result_clear(&r);
}

static void test_missing_root(Fixture *f, gconstpointer data)
{
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    PbConfig *cfg = pbt_yaml("plugins:\n  - module: tftp\n    port: %u\n"
                             "    directory: %s/does-not-exist\n",
                             f->port, f->dir);
    g_assert_true(pb_host_apply(f->host, cfg, report, &error));
    pb_instance *inst = pb_host_find(f->host, "tftp");
    g_assert_cmpint(pb_instance_get_state(inst), ==, PB_INSTANCE_FAILED);
    /* Named as the YAML user wrote it (file:line and key), not by its legacy alias. */
    const char *why = pb_instance_get_error(inst);
    const char *expect = "test.yaml:4: directory: ";
    if (strstr(why, expect) == NULL || strstr(why, "does-not-exist") == NULL)
        g_error("'%s' does not name test.yaml:4, the key and the path", why);
    g_assert_null(strstr(why, "TFTPDirectory"));
    g_autofree char *want =
        g_strdup_printf("directory: '%s/does-not-exist': No such file or directory", f->dir);
    g_assert_true(g_str_has_suffix(pb_instance_get_error(inst), want));
}

static void test_legacy_conf(Fixture *f, gconstpointer data)
{
    /* The reference's novell-tftp.conf, with the port and root moved into the test. */
    gsize len = 3000;
    g_autofree guint8 *content = pattern(len);
    put_file(f, "f", content, len);
    g_autofree char *conf = g_build_filename(f->dir, "novell-tftp.conf", NULL);
    g_autofree char *text = g_strdup_printf("# legacy\nTFTPInterface = 127.0.0.1\n"
                                            "TransferBlockSize = 1024\nTimeoutInterval = 1\n"
                                            "TFTPDirectory = %s\nTFTPAllowWrites = 0\n"
                                            "TFTPAllowOverwrites = 0\nTFTPLogLevel = 3\n"
                                            "TFTPLogFile = legacy-tftp.log\nTFTPLogFileSize = 15\n",
                                            f->root);
    g_assert_true(g_file_set_contents(conf, text, -1, NULL));
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    PbConfig *cfg =
        pbt_yaml("plugins:\n  - module: tftp\n    legacy: %s\n    port: %u\n", conf, f->port);
    g_assert_true(pb_host_apply(f->host, cfg, report, &error));
    assert_running(f);
    Result r;
    g_assert_true(tftp_get(f, "f", "blksize=1428", &r));
    g_assert_cmpuint(r.oack.blksize, ==, 1024);
    g_assert_cmpmem(r.data->data, r.data->len, content, len);
    result_clear(&r);
    g_autofree char *lp = g_build_filename(f->dir, "log", "legacy-tftp.log", NULL);
    g_autofree char *log = NULL;
    g_assert_true(g_file_get_contents(lp, &log, NULL, NULL));
    g_assert_nonnull(strstr(log, "RRQ f mode octet blksize=1428"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* Each test unloads the module. net-common.c registers its error quark with a static
     * string, which would then point into the unloaded module: register it from this
     * binary's own copy of libpbnet first. (Reported: the daemon needs the same.) */
    (void)PB_NET_ERROR;
#define ADD(name, fn) \
    g_test_add("/tftp/plugin/" name, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
    ADD("download", test_download);
    ADD("refusals", test_refusals);
    ADD("uploads", test_uploads);
    ADD("aborted-upload", test_aborted_upload);
    ADD("wrong-tid-duplicate-rrq", test_wrong_tid_and_duplicate_rrq);
    ADD("tsize-probe", test_tsize_probe);
    ADD("silent-client", test_silent_client);
    ADD("rate-limit-networks", test_rate_limit_and_networks);
    ADD("broadcast-ignored", test_broadcast_ignored);
    ADD("reply-from-request-address", test_reply_from_request_address);
    ADD("ipv6", test_ipv6);
    ADD("virtual-files-events", test_virtual_files_and_events);
    ADD("single-port", test_single_port);
    ADD("missing-root", test_missing_root);
    ADD("legacy-conf", test_legacy_conf);
    ADD("typed-provider-finish", test_typed_provider_finish);
    ADD("per-client-limit", test_per_client_limit);
    ADD("temporary-files", test_temporary_files);
    ADD("fd-limit-warning", test_fd_limit_warning);
    ADD("reload-checks-root", test_reload_checks_root);
    return g_test_run();
}
