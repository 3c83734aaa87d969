/* test-imaging.c - the imaging server in process: its pure parts (request paths, hash lists,
 * the flat JSON reader, device identities), the local backend through its descriptor (chunk
 * writes verified before they are kept, commits that wait for every chunk, create-only,
 * the result log, lasting statistics, what a crash leaves cleaned at open), and the imaging
 * and http modules in the real host with an HTTP client on the loop. */
#include "build-config.h"

#include "host.h"
#include "testutil.h"

#include "image-format.h"
#include "imaging-api.h"
#include "imaging-cred.h"
#include "imaging-json.h"
#include "imaging-sent.h"
#include <preboot/backend.h>

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

PB_EXPORT const void *libpreboot_local_LTX_preboot_backend_entry(void);

/* ---- pure parts ----------------------------------------------------------------------- */

/* Images Sent: a download counts when its last chunk goes, once per manifest download; a
 * report counts only when no completed download of the image by that client was counted. */
static void test_sent(void)
{
    guint8 seal[32] = {1}, seal2[32] = {2}, h[3][32];
    for (int i = 0; i < 3; i++)
        memset(h[i], 0x10 + i, 32);
    guint8 list[4][32]; /* h0 h1 h0 h2: a chunk named twice is fetched once */
    memcpy(list[0], h[0], 32);
    memcpy(list[1], h[1], 32);
    memcpy(list[2], h[0], 32);
    memcpy(list[3], h[2], 32);
    ImagingSent *s = imaging_sent_new(2, 10, 1000);
    g_assert_false(imaging_sent_manifest(s, "a", "img", seal, &list[0][0], 4, 0));
    g_assert_cmpuint(imaging_sent_hashes(s), ==, 3);
    g_assert_cmpuint(imaging_sent_chunk(s, "a", h[0], 1), ==, 0);
    g_assert_cmpuint(imaging_sent_chunk(s, "b", h[1], 1), ==, 0); /* another client */
    g_assert_cmpuint(imaging_sent_chunk(s, "a", h[0], 1), ==, 0); /* again: no progress */
    g_assert_cmpuint(imaging_sent_chunk(s, "a", h[1], 1), ==, 0);
    /* the manifest again (a resumed restore): the chunks sent still count */
    g_assert_false(imaging_sent_manifest(s, "a", "img", seal, &list[0][0], 4, 2));
    g_assert_cmpuint(imaging_sent_chunk(s, "a", h[2], 3), ==, 1);
    g_assert_cmpuint(imaging_sent_hashes(s), ==, 0);
    g_assert_cmpuint(imaging_sent_chunk(s, "a", h[2], 3), ==, 0); /* counted once */
    /* its report is not counted again, a second report is */
    g_assert_false(imaging_sent_report(s, "a", "img", 4));
    g_assert_true(imaging_sent_report(s, "a", "img", 4));
    /* a report without a completed download counts and forgets the unfinished one */
    g_assert_false(imaging_sent_manifest(s, "a", "img", seal, &list[0][0], 4, 5));
    g_assert_cmpuint(imaging_sent_chunk(s, "a", h[0], 5), ==, 0);
    g_assert_true(imaging_sent_report(s, "a", "img", 6));
    g_assert_cmpuint(imaging_sent_tracked(s), ==, 0);
    /* the image replaced between two manifest downloads: afresh */
    g_assert_false(imaging_sent_manifest(s, "a", "img", seal, &list[0][0], 2, 7));
    g_assert_cmpuint(imaging_sent_chunk(s, "a", h[0], 7), ==, 0);
    g_assert_false(imaging_sent_manifest(s, "a", "img", seal2, &list[0][0], 2, 8));
    g_assert_cmpuint(imaging_sent_chunk(s, "a", h[1], 8), ==, 0);
    g_assert_cmpuint(imaging_sent_chunk(s, "a", h[0], 8), ==, 1);
    /* two downloads of one image by two clients: two images sent */
    g_assert_false(imaging_sent_manifest(s, "b", "img", seal, &list[0][0], 1, 9));
    g_assert_false(imaging_sent_manifest(s, "c", "img", seal, &list[0][0], 1, 9));
    g_assert_cmpuint(imaging_sent_chunk(s, "b", h[0], 9), ==, 1);
    g_assert_cmpuint(imaging_sent_chunk(s, "c", h[0], 9), ==, 1);
    /* a manifest with no DATA chunk is sent whole at once */
    g_assert_true(imaging_sent_manifest(s, "d", "empty", seal, NULL, 0, 10));
    /* bounds: per source (2 here), the oldest goes */
    g_assert_false(imaging_sent_manifest(s, "e", "i1", seal, &list[0][0], 1, 11));
    g_assert_false(imaging_sent_manifest(s, "e", "i2", seal, &list[1][0], 1, 11));
    g_assert_false(imaging_sent_manifest(s, "e", "i3", seal, &list[3][0], 1, 11));
    g_assert_cmpuint(imaging_sent_chunk(s, "e", h[0], 12), ==, 0); /* i1 forgotten */
    g_assert_cmpuint(imaging_sent_chunk(s, "e", h[1], 12), ==, 1);
    /* in total (10 hashes): more than that is not followed at all */
    guint8 many[11][32];
    for (int i = 0; i < 11; i++)
        memset(many[i], 0x80 + i, 32);
    g_assert_false(imaging_sent_manifest(s, "f", "big", seal, &many[0][0], 11, 13));
    g_assert_cmpuint(imaging_sent_hashes(s), <=, 10);
    g_assert_false(imaging_sent_manifest(s, "f", "big", seal, &many[0][0], 10, 13));
    g_assert_cmpuint(imaging_sent_hashes(s), ==, 10); /* the others made room */
    /* an unfinished download pausing past the limit is forgotten */
    g_assert_cmpuint(imaging_sent_chunk(s, "f", many[0], 14), ==, 0);
    g_assert_true(imaging_sent_report(s, "zz", "none", 2000));
    g_assert_cmpuint(imaging_sent_tracked(s), ==, 0);
    imaging_sent_free(s);
}

static void test_paths(void)
{
    ImagingPath p;
    g_assert_cmpint(imaging_path_parse("/imaging/v1/images", &p), ==, IMAGING_EP_IMAGES);
    g_assert_cmpint(imaging_path_parse("/imaging/v1/images/win-10.x", &p), ==, IMAGING_EP_IMAGE);
    g_assert_cmpstr(p.name, ==, "win-10.x");
    g_assert_cmpint(imaging_path_parse("/imaging/v1/images/w/info", &p), ==, IMAGING_EP_INFO);
    g_assert_cmpint(imaging_path_parse("/imaging/v1/chunks/missing", &p), ==, IMAGING_EP_MISSING);
    g_assert_cmpint(imaging_path_parse("/imaging/v1/work", &p), ==, IMAGING_EP_WORK);
    g_assert_cmpint(imaging_path_parse("/imaging/v1/results", &p), ==, IMAGING_EP_RESULTS);
    g_assert_cmpint(imaging_path_parse("/imaging/v1/log", &p), ==, IMAGING_EP_LOG);
    g_assert_cmpint(imaging_path_parse("/imaging/v1/stats", &p), ==, IMAGING_EP_STATS);
    char hex[65];
    memset(hex, 'a', 64);
    hex[64] = '\0';
    g_autofree char *cp = g_strconcat("/imaging/v1/chunks/", hex, NULL);
    g_assert_cmpint(imaging_path_parse(cp, &p), ==, IMAGING_EP_CHUNK);
    g_assert_cmpint(p.hash[0], ==, 0xaa);
    /* nothing reaches outside the store */
    const char *bad[] = {"/imaging/v1/images/../etc",
                         "/imaging/v1/images/.hidden",
                         "/imaging/v1/images/a/b",
                         "/imaging/v1/images/",
                         "/imaging/v1/images/a b",
                         "/imaging/v1/images/a%2Fb",
                         "/imaging/v1/chunks/../../x",
                         "/imaging/v1/chunks/AAAA",
                         "/imaging/v2/images",
                         "/imaging/v1/",
                         NULL};
    for (int i = 0; bad[i]; i++)
        g_assert_cmpint(imaging_path_parse(bad[i], &p), ==, IMAGING_EP_NONE);
    g_autofree char *upper = g_ascii_strup(cp, -1);
    g_assert_cmpint(imaging_path_parse(upper, &p), ==, IMAGING_EP_NONE);
}

static void test_hash_list(void)
{
    char a[65], b[65];
    memset(a, '1', 64);
    memset(b, 'f', 64);
    a[64] = b[64] = '\0';
    g_autofree char *text = g_strdup_printf("%s\r\n\n%s\n", a, b);
    gsize n = 0;
    g_autoptr(GError) e = NULL;
    g_autofree guint8 *h = imaging_hash_list_parse(text, strlen(text), 10, &n, &e);
    g_assert_no_error(e);
    g_assert_cmpuint(n, ==, 2);
    g_assert_cmpint(h[32], ==, 0xff);
    g_assert_null(imaging_hash_list_parse(text, strlen(text), 1, &n, &e));
    g_assert_nonnull(strstr(e->message, "more than 1"));
    g_clear_error(&e);
    g_assert_null(imaging_hash_list_parse("xyz\n", 4, 10, &n, &e));
    g_assert_nonnull(strstr(e->message, "line 1"));
    g_autofree guint8 *none = imaging_hash_list_parse("", 0, 10, &n, NULL);
    g_assert_cmpuint(n, ==, 0);
}

static void test_json(void)
{
    static const char ok[] = " {\"mac\":\"52:54:00:aa:bb:cc\", \"n\": 12, \"b\":true,"
                             "\"z\":null, \"s\":\"a\\\"b\\u00e9\\n\"} ";
    g_autoptr(GError) e = NULL;
    g_autoptr(GHashTable) t = imaging_json_parse_flat(ok, strlen(ok), &e);
    g_assert_no_error(e);
    g_assert_cmpstr(g_hash_table_lookup(t, "mac"), ==, "52:54:00:aa:bb:cc");
    g_assert_cmpstr(g_hash_table_lookup(t, "n"), ==, "12");
    g_assert_cmpstr(g_hash_table_lookup(t, "b"), ==, "true");
    g_assert_false(g_hash_table_contains(t, "z"));
    g_assert_cmpstr(g_hash_table_lookup(t, "s"), ==, "a\"b\xc3\xa9\n");
    const char *bad[] = {"",
                         "[]",
                         "{\"a\":{}}",
                         "{\"a\":[1]}",
                         "{\"a\":1,}",
                         "{\"a\" 1}",
                         "{\"a\":1}x",
                         "{\"a\":1,\"a\":2}",
                         "{\"a\":\"\\u0000\"}",
                         "{\"a\":\"x",
                         "{\"a\":\"\\ud800\"}",
                         "{a:1}",
                         "{\"a\":1.2.3}",
                         "{\"n\":123456789012345678901234567890123}",
                         NULL};
    for (int i = 0; bad[i]; i++) {
        GHashTable *r = imaging_json_parse_flat(bad[i], strlen(bad[i]), NULL);
        if (r != NULL)
            g_error("accepted: %s", bad[i]);
    }
    g_autoptr(GString) o = g_string_new(NULL);
    imaging_json_string(o, "q\"\\\n");
    g_assert_cmpstr(o->str, ==, "\"q\\\"\\\\\\u000a\"");
}

static void test_identities(void)
{
    guint8 mac[6], uuid[16];
    g_assert_true(imaging_mac_parse("52:54:00:AA:bb:01", mac));
    g_assert_cmpint(mac[3], ==, 0xaa);
    g_assert_true(imaging_mac_parse("52-54-00-aa-bb-01", mac));
    g_assert_false(imaging_mac_parse("52:54:00:aa:bb", mac));
    g_assert_false(imaging_mac_parse("52:54:00:aa:bb:01:02", mac));
    g_assert_true(imaging_uuid_parse("4c4c4544-0042-3510-8052-b4c04f4e4e31", uuid));
    g_assert_cmpint(uuid[0], ==, 0x44); /* first field little-endian, as PXE sends it */
    g_assert_cmpint(uuid[8], ==, 0x80);
    g_assert_false(imaging_uuid_parse("4c4c4544", uuid));
}

/* ---- the local backend ------------------------------------------------------------------ */

static const pb_backend *local(void)
{
    const pb_backend *b = libpreboot_local_LTX_preboot_backend_entry();
    g_assert_cmpuint(b->header.magic, ==, PB_BACKEND_MAGIC);
    g_assert_cmpuint(b->header.struct_size, ==, sizeof(pb_backend));
    return b;
}

static void *open_at(const pb_backend *b, const char *dir)
{
    pb_backend_config c = {.struct_size = sizeof(c), .location = dir, .state_dir = dir};
    pb_backend_error e = {.struct_size = sizeof(e)};
    void *h = b->open(&c, &e);
    if (h == NULL)
        g_error("open: %s", e.message);
    return h;
}

static guint32 put(const pb_backend *b, void *h, const guint8 hash[32], const void *data, gsize len,
                   gsize plain_len, pb_backend_error *e)
{
    void *w = NULL;
    guint32 st = b->chunk_begin(h, hash, PB_BACKEND_CODEC_NONE, plain_len, len, &w, e);
    if (st != PB_BACKEND_OK)
        return st;
    /* in pieces, as an upload arrives */
    for (gsize off = 0; off < len; off += 1000) {
        st = b->chunk_write(w, (const guint8 *)data + off, MIN(1000, len - off), e);
        if (st != PB_BACKEND_OK) {
            b->chunk_abort(w);
            return st;
        }
    }
    return b->chunk_commit(w, e);
}

static guint tmp_files(const char *dir)
{
    g_autofree char *tmp = g_build_filename(dir, "tmp", NULL);
    g_autoptr(GDir) d = g_dir_open(tmp, 0, NULL);
    guint n = 0;
    while (d != NULL && g_dir_read_name(d) != NULL)
        n++;
    return n;
}

static void collect_missing(void *data, const char *hex)
{
    g_ptr_array_add(data, g_strdup(hex));
}

static void count_image(void *data, const pb_backend_image *im)
{
    (*(guint *)data)++;
}

static bool append(void *data, const void *bytes, size_t len)
{
    g_string_append_len(data, bytes, (gssize)len);
    return true;
}

static void collect_result(void *data, const pb_backend_result *r)
{
    g_ptr_array_add(data, g_strdup_printf("%s %s %s", r->type, r->image, r->result));
}

static void collect_stat(void *data, const char *name, int64_t v)
{
    g_ptr_array_add(data, g_strdup_printf("%s=%" G_GINT64_FORMAT, name, (gint64)v));
}

static void test_backend(void)
{
    g_autofree char *dir = pbt_tmpdir();
    const pb_backend *b = local();
    void *h = open_at(b, dir);
    pb_backend_error e = {.struct_size = sizeof(e)};
    guint8 data[3000], hash[32], other[32];
    for (guint i = 0; i < sizeof(data); i++)
        data[i] = (guint8)(i * 7);
    pb_sha256(data, sizeof(data), hash);
    memset(other, 0x5a, sizeof(other));

    /* a corrupted chunk: refused, nothing kept, no temporary left */
    guint8 bad[3000];
    memcpy(bad, data, sizeof(bad));
    bad[100] ^= 1;
    g_assert_cmpuint(put(b, h, hash, bad, sizeof(bad), sizeof(bad), &e), ==, PB_BACKEND_CORRUPT);
    g_assert_nonnull(strstr(e.message, "hash mismatch"));
    g_assert_cmpuint(b->chunk_stat(h, hash, NULL, &e), ==, PB_BACKEND_NOT_FOUND);
    g_assert_cmpuint(tmp_files(dir), ==, 0);
    /* a short one */
    g_assert_cmpuint(put(b, h, hash, data, 2000, 3000, &e), ==, PB_BACKEND_CORRUPT);
    /* the real one */
    g_assert_cmpuint(put(b, h, hash, data, sizeof(data), sizeof(data), &e), ==, PB_BACKEND_OK);
    g_assert_cmpuint(put(b, h, hash, data, sizeof(data), sizeof(data), &e), ==, PB_BACKEND_EXISTS);
    pb_backend_chunk_info info = {.struct_size = sizeof(info)};
    g_assert_cmpuint(b->chunk_stat(h, hash, &info, &e), ==, PB_BACKEND_OK);
    g_assert_cmpuint(info.stored, ==, sizeof(data));
    g_assert_cmpuint(info.length, ==, sizeof(data));
    void *r = NULL;
    g_assert_cmpuint(b->chunk_open(h, hash, &info, &r, &e), ==, PB_BACKEND_OK);
    guint8 back[100];
    g_assert_cmpint(b->chunk_read(r, 1000, back, sizeof(back)), ==, 100);
    g_assert_cmpmem(back, 100, data + 1000, 100);
    g_assert_cmpint(b->chunk_read(r, sizeof(data), back, sizeof(back)), ==, 0);
    b->chunk_close(r);
    /* an abort leaves nothing */
    void *w = NULL;
    g_assert_cmpuint(b->chunk_begin(h, other, PB_BACKEND_CODEC_NONE, 10, 10, &w, &e), ==,
                     PB_BACKEND_OK);
    g_assert_cmpuint(b->chunk_write(w, "0123456789", 10, &e), ==, PB_BACKEND_OK);
    b->chunk_abort(w);
    g_assert_cmpuint(tmp_files(dir), ==, 0);
    /* more than a chunk of that length can hold */
    g_assert_cmpuint(b->chunk_begin(h, other, PB_BACKEND_CODEC_NONE, 0, 10, &w, &e), ==,
                     PB_BACKEND_INVALID);

    guint8 hashes[2][32];
    memcpy(hashes[0], hash, 32);
    memcpy(hashes[1], other, 32);
    guint8 missing[2];
    g_assert_cmpuint(b->chunk_missing(h, (const uint8_t(*)[32])hashes, 2, missing, &e), ==,
                     PB_BACKEND_OK);
    g_assert_cmpint(missing[0], ==, 0);
    g_assert_cmpint(missing[1], ==, 1);

    /* commits */
    static const char text[] = "manifest text\n";
    char seal[65];
    memset(seal, 'b', 64);
    seal[64] = '\0';
    pb_backend_image im = {.struct_size = sizeof(im), .name = "img", .seal = seal, .chunks = 2};
    g_autoptr(GPtrArray) miss = g_ptr_array_new_with_free_func(g_free);
    bool replaced = true;
    g_assert_cmpuint(b->image_commit(h, &im, text, strlen(text), (const uint8_t(*)[32])hashes, 2, 0,
                                     collect_missing, miss, &replaced, &e),
                     ==, PB_BACKEND_MISSING);
    g_assert_cmpuint(miss->len, ==, 1);
    char ohex[65];
    pb_hash_to_hex(other, ohex);
    g_assert_cmpstr(miss->pdata[0], ==, ohex);
    guint n = 0;
    g_assert_cmpuint(b->image_list(h, count_image, &n, &e), ==, PB_BACKEND_OK);
    g_assert_cmpuint(n, ==, 0);
    g_assert_cmpuint(b->image_commit(h, &im, text, strlen(text), (const uint8_t(*)[32])hashes, 1,
                                     PB_BACKEND_CREATE_ONLY, NULL, NULL, &replaced, &e),
                     ==, PB_BACKEND_OK);
    g_assert_false(replaced);
    g_assert_cmpuint(b->image_commit(h, &im, text, strlen(text), (const uint8_t(*)[32])hashes, 1,
                                     PB_BACKEND_CREATE_ONLY, NULL, NULL, &replaced, &e),
                     ==, PB_BACKEND_EXISTS);
    g_assert_cmpuint(b->image_commit(h, &im, text, strlen(text), (const uint8_t(*)[32])hashes, 1, 0,
                                     NULL, NULL, &replaced, &e),
                     ==, PB_BACKEND_OK);
    g_assert_true(replaced);
    g_autoptr(GString) got = g_string_new(NULL);
    g_assert_cmpuint(b->image_manifest(h, "img", append, got, &e), ==, PB_BACKEND_OK);
    g_assert_cmpstr(got->str, ==, text);
    g_assert_cmpuint(b->image_manifest(h, "nope", append, got, &e), ==, PB_BACKEND_NOT_FOUND);
    g_assert_cmpuint(b->image_info(h, "../x", count_image, &n, &e), ==, PB_BACKEND_INVALID);
    /* preboot-img reads the same store */
    g_autofree char *pbm = g_build_filename(dir, "images", "img.pbm", NULL);
    g_assert_true(g_file_test(pbm, G_FILE_TEST_IS_REGULAR));

    /* results and statistics */
    pb_backend_result res = {.struct_size = sizeof(res),
                             .type = "restore",
                             .image = "img",
                             .result = "ok",
                             .source = "192.0.2.9"};
    g_assert_cmpuint(b->result_add(h, &res, &e), ==, PB_BACKEND_OK);
    res.type = "capture";
    g_assert_cmpuint(b->result_add(h, &res, &e), ==, PB_BACKEND_OK);
    g_autoptr(GPtrArray) log = g_ptr_array_new_with_free_func(g_free);
    g_assert_cmpuint(b->result_list(h, 10, collect_result, log, &e), ==, PB_BACKEND_OK);
    g_assert_cmpuint(log->len, ==, 2);
    g_assert_cmpstr(log->pdata[0], ==, "capture img ok"); /* newest first */
    g_assert_cmpuint(b->stat_add(h, "images_sent", 2, &e), ==, PB_BACKEND_OK);
    g_assert_cmpuint(b->stat_add(h, "images_sent", 3, &e), ==, PB_BACKEND_OK);

    /* delete */
    g_assert_cmpuint(b->image_delete(h, "img", &e), ==, PB_BACKEND_OK);
    g_assert_cmpuint(b->image_delete(h, "img", &e), ==, PB_BACKEND_NOT_FOUND);
    g_assert_false(g_file_test(pbm, G_FILE_TEST_EXISTS));
    g_assert_cmpuint(b->image_commit(h, &im, text, strlen(text), (const uint8_t(*)[32])hashes, 1, 0,
                                     NULL, NULL, &replaced, &e),
                     ==, PB_BACKEND_OK);
    b->close(h);

    /* what a crash leaves: a half upload, a manifest no catalog row names */
    g_autofree char *half = g_build_filename(dir, "tmp", "srv-crashed", NULL);
    g_assert_true(g_file_set_contents(half, "half a chunk", -1, NULL));
    g_autofree char *orphan = g_build_filename(dir, "manifests", "0000.pbm", NULL);
    g_assert_true(g_file_set_contents(orphan, "x", -1, NULL));
    h = open_at(b, dir);
    g_assert_false(g_file_test(half, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(orphan, G_FILE_TEST_EXISTS));
    n = 0;
    g_assert_cmpuint(b->image_list(h, count_image, &n, &e), ==, PB_BACKEND_OK);
    g_assert_cmpuint(n, ==, 1);
    g_autoptr(GPtrArray) stats = g_ptr_array_new_with_free_func(g_free);
    g_assert_cmpuint(b->stat_list(h, collect_stat, stats, &e), ==, PB_BACKEND_OK);
    g_assert_cmpuint(stats->len, ==, 1);
    g_assert_cmpstr(stats->pdata[0], ==, "images_sent=5");
    b->close(h);
    pbt_rmtree(dir);
}

/* ---- the modules in the host ------------------------------------------------------------ */

typedef struct {
    char *dir;
    PbHost *host;
    guint16 port;
} Fixture;

/* GSocket rather than BSD sockets: the test runs under wine too (win32/local.mk). */
static GSocketAddress *loopback(guint16 port)
{
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    return g_inet_socket_address_new(lo, port);
}

static guint16 free_tcp_port(void)
{
    g_autoptr(GSocket) s =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GSocketAddress) a = loopback(0);
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
    PbGlobalConfig g;
    g_autofree char *idir = build_dir("plugins", "imaging");
    pbt_global(&g, f->dir, idir);
    guint n = g_strv_length(g.plugin_path);
    g.plugin_path = g_renew(char *, g.plugin_path, n + 3);
    g.plugin_path[n] = build_dir("plugins", "http");
    g.plugin_path[n + 1] = build_dir("backends", "local");
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
                             "    upload_token: abc\n"
                             "    log_level: 4\n",
                             f->port);
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
    g_free(f->dir);
}

/* One HTTP/1.0 request with an optional body while the main loop turns; the body's length
 * is left in last_len (bodies may hold NULs). */
static gsize last_len;

static int http(Fixture *f, const char *method, const char *path, const char *headers,
                const void *body, gsize len, char **out)
{
    g_autoptr(GSocket) sock =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_socket_set_blocking(sock, FALSE);
    g_autoptr(GSocketAddress) a = loopback(f->port);
    g_autoptr(GError) ce = NULL;
    if (!g_socket_connect(sock, a, NULL, &ce))
        g_assert_error(ce, G_IO_ERROR, G_IO_ERROR_PENDING);
    GString *req = g_string_new(NULL);
    g_string_append_printf(
        req, "%s %s HTTP/1.0\r\nHost: x\r\n%sContent-Length: %" G_GSIZE_FORMAT "\r\n\r\n", method,
        path, headers ? headers : "", len);
    g_string_append_len(req, body, (gssize)len);
    gsize sent = 0;
    GString *in = g_string_new(NULL);
    gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    gboolean eof = FALSE;
    while (!eof && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        if (sent < req->len) {
            gssize n = g_socket_send(sock, req->str + sent, req->len - sent, NULL, NULL);
            if (n > 0)
                sent += (gsize)n;
        }
        char buf[4096];
        gssize n = g_socket_receive(sock, buf, sizeof(buf), NULL, NULL);
        if (n > 0)
            g_string_append_len(in, buf, n);
        else if (n == 0)
            eof = TRUE;
        else
            g_usleep(200);
    }
    g_socket_close(sock, NULL);
    g_string_free(req, TRUE);
    g_assert_true(eof);
    int status = 0;
    g_assert_cmpint(sscanf(in->str, "HTTP/1.%*d %d", &status), ==, 1);
    const char *sep = strstr(in->str, "\r\n\r\n");
    last_len = sep ? in->len - (gsize)(sep + 4 - in->str) : 0;
    *out = sep ? g_memdup2(sep + 4, last_len + 1) : g_strdup("");
    g_string_free(in, TRUE);
    return status;
}

static void test_plugin(Fixture *f, gconstpointer data)
{
    char *body = NULL;
    g_assert_cmpint(http(f, "GET", "/imaging/v1/images", NULL, NULL, 0, &body), ==, 200);
    g_assert_cmpstr(body, ==, "{\"images\":[]}\n");
    g_free(body);

    /* an image of one 64 KiB data chunk and one zero chunk */
    gsize cs = PB_CHUNK_SIZE_MIN;
    g_autofree guint8 *chunk = g_malloc(cs);
    for (gsize i = 0; i < cs; i++)
        chunk[i] = (guint8)(i % 251);
    g_autoptr(PbManifest) m = pb_manifest_new();
    m->chunk_size = (guint32)cs;
    m->disk_size = 2 * cs;
    pb_manifest_add_region(m, 0, 2 * cs, 0);
    PbChunkRef *c0 = &g_array_index(m->chunks, PbChunkRef, 0);
    c0->kind = PB_CHUNK_DATA;
    c0->codec = PB_CODEC_NONE;
    c0->stored = cs;
    pb_sha256(chunk, cs, c0->hash);
    g_array_index(m->chunks, PbChunkRef, 1).kind = PB_CHUNK_ZERO;
    g_autoptr(GString) text = pb_manifest_build(m);
    char hex[65];
    pb_hash_to_hex(c0->hash, hex);
    g_autofree char *cpath = g_strconcat("/imaging/v1/chunks/", hex, NULL);
    const char *auth = "Authorization: Bearer abc\r\n";
    g_autofree char *hdrs = g_strdup_printf(
        "%sX-Preboot-Codec: none\r\nX-Preboot-Length: %" G_GSIZE_FORMAT "\r\n", auth, cs);

    g_assert_cmpint(http(f, "PUT", "/imaging/v1/images/one", auth, text->str, text->len, &body), ==,
                    409);
    g_autofree char *want = g_strconcat(hex, "\n", NULL);
    g_assert_cmpstr(body, ==, want);
    g_free(body);
    g_assert_cmpint(http(f, "PUT", cpath, "X-Preboot-Length: 65536\r\n", chunk, cs, &body), ==,
                    401);
    g_free(body);
    chunk[7] ^= 1;
    g_assert_cmpint(http(f, "PUT", cpath, hdrs, chunk, cs, &body), ==, 422);
    g_free(body);
    chunk[7] ^= 1;
    g_assert_cmpint(http(f, "PUT", cpath, hdrs, chunk, cs, &body), ==, 201);
    g_free(body);
    g_assert_cmpint(http(f, "POST", "/imaging/v1/chunks/missing", NULL, hex, 64, &body), ==, 200);
    g_assert_cmpstr(body, ==, "");
    g_free(body);
    /* An empty list (it once crashed the worker): nothing is missing. */
    g_assert_cmpint(http(f, "POST", "/imaging/v1/chunks/missing", NULL, "", 0, &body), ==, 200);
    g_assert_cmpstr(body, ==, "");
    g_free(body);
    g_autofree char *create = g_strconcat(auth, "If-None-Match: *\r\n", NULL);
    g_assert_cmpint(http(f, "PUT", "/imaging/v1/images/one", create, text->str, text->len, &body),
                    ==, 201);
    g_free(body);
    g_assert_cmpint(http(f, "GET", "/imaging/v1/images/one", NULL, NULL, 0, &body), ==, 200);
    g_assert_cmpstr(body, ==, text->str);
    g_free(body);
    g_assert_cmpint(http(f, "GET", cpath, NULL, NULL, 0, &body), ==, 200);
    g_assert_cmpmem(body, last_len, chunk, cs);
    g_free(body);

    g_autoptr(GString) out = g_string_new(NULL);
    const char *list[] = {"imaging", "list", NULL};
    g_assert_true(pb_host_command(f->host, 2, list, out));
    g_assert_nonnull(strstr(out->str, "one "));
    g_string_truncate(out, 0);
    pb_host_stats(f->host, out);
    g_assert_nonnull(strstr(out->str, "imaging: Images Received = 1"));
    g_assert_nonnull(strstr(out->str, "imaging: PXE Requests = "));
    g_string_truncate(out, 0);
    const char *del[] = {"imaging", "delete", "one", NULL};
    g_assert_true(pb_host_command(f->host, 3, del, out));
    g_assert_cmpint(http(f, "GET", "/imaging/v1/images/one", NULL, NULL, 0, &body), ==, 404);
    g_free(body);
}

/* Per-device credentials: what is minted checks, with every field back; a change to any
 * part, another key or a malformed text does not. */
static void test_cred(void)
{
    guint8 key[IMAGING_CRED_KEY_LEN], other[IMAGING_CRED_KEY_LEN];
    memset(key, 7, sizeof(key));
    memset(other, 8, sizeof(other));
    ImagingCred c = {.kind = IMAGING_CRED_CAPTURE,
                     .mac = {0x52, 0x54, 0, 0x12, 0x34, 0x56},
                     .issued_ms = 1799999999123,
                     .expires = 1800000000,
                     .work_id = "0123456789abcdef",
                     .image = "win-10.x_64"};
    g_autofree char *tok = imaging_cred_mint(key, &c);
    g_assert_nonnull(tok);
    g_assert_true(imaging_cred_is(tok));
    g_assert_true(g_str_has_prefix(tok, "pbc1~capture~525400123456~1799999999123~1800000000~"
                                        "0123456789abcdef~win-10.x_64~"));
    ImagingCred o;
    g_assert_true(imaging_cred_check(key, tok, &o));
    g_assert_cmpint(o.kind, ==, IMAGING_CRED_CAPTURE);
    g_assert_cmpmem(o.mac, 6, c.mac, 6);
    g_assert_cmpstr(o.mac_text, ==, "52:54:00:12:34:56");
    g_assert_cmpint(o.issued_ms, ==, 1799999999123);
    g_assert_cmpint(o.expires, ==, 1800000000);
    g_assert_cmpstr(o.work_id, ==, c.work_id);
    g_assert_cmpstr(o.image, ==, c.image);
    g_assert_false(imaging_cred_check(other, tok, &o));
    /* every byte matters: flip each in turn */
    for (gsize i = strlen(IMAGING_CRED_PREFIX); tok[i]; i++) {
        g_autofree char *bad = g_strdup(tok);
        bad[i] = bad[i] == '1' ? '2' : '1';
        g_assert_false(imaging_cred_check(key, bad, &o));
    }
    g_autofree char *cut = g_strndup(tok, strlen(tok) - 1);
    g_assert_false(imaging_cred_check(key, cut, &o));
    g_autofree char *longer = g_strconcat(tok, "0", NULL);
    g_assert_false(imaging_cred_check(key, longer, &o));
    const char *bad[] = {"",
                         "pbc1~",
                         "pbc1~~~~~~",
                         "pbc1~capture~525400123456~1~1~ab~img~",
                         "pbc1~capture~525400123456~1~-1~ab~img~",
                         "Bearer x"};
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
        g_assert_false(imaging_cred_check(key, bad[i], &o));
    /* what cannot be named is not minted */
    ImagingCred n = c;
    g_strlcpy(n.image, "../etc", sizeof(n.image));
    g_assert_null(imaging_cred_mint(key, &n));
    n = c;
    n.work_id[0] = '\0';
    g_assert_null(imaging_cred_mint(key, &n));
    n = c;
    n.kind = 0;
    g_assert_null(imaging_cred_mint(key, &n));
    c.kind = IMAGING_CRED_RESTORE;
    g_autofree char *rt = imaging_cred_mint(key, &c);
    g_assert_true(imaging_cred_check(key, rt, &o));
    g_assert_cmpint(o.kind, ==, IMAGING_CRED_RESTORE);
    c.kind = IMAGING_CRED_SESSION;
    g_autofree char *st = imaging_cred_mint(key, &c);
    g_assert_true(g_str_has_prefix(st, "pbc1~session~"));
    g_assert_true(imaging_cred_check(key, st, &o));
    g_assert_cmpint(o.kind, ==, IMAGING_CRED_SESSION);
    g_assert_cmpstr(imaging_cred_kind_name(IMAGING_CRED_SESSION), ==, "session");
    g_assert_null(imaging_cred_kind_name(0));
    g_assert_cmpstr(imaging_bearer_token("Bearer abc"), ==, "abc");
    g_assert_cmpstr(imaging_bearer_token("bearer  abc"), ==, "abc");
    g_assert_null(imaging_bearer_token("Basic abc"));
    g_assert_null(imaging_bearer_token("Bearer "));
    g_assert_null(imaging_bearer_token(NULL));
}

/* Where a referral may point: a server, never a path or anything else. */
static void test_location(void)
{
    const char *good[] = {"192.0.2.5",          "192.0.2.5:8080",     "imgsrv.example:80",
                          "[2001:db8::1]:8080", "http://imgsrv:8080", "https://[::1]"};
    const char *bad[] = {
        "",     "-x",    ":8080", "host:0",     "host:65536",  "host:80/x", "http://h/path",
        "[::1", "[]:80", "a b",   "ftp://host", "host:8080:1", "h\r\nX: y", "http://",
        NULL};
    for (guint i = 0; i < G_N_ELEMENTS(good); i++)
        g_assert_true(imaging_location_valid(good[i]));
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
        g_assert_false(imaging_location_valid(bad[i]));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/imaging/paths", test_paths);
    g_test_add_func("/imaging/hash-list", test_hash_list);
    g_test_add_func("/imaging/json", test_json);
    g_test_add_func("/imaging/sent", test_sent);
    g_test_add_func("/imaging/identities", test_identities);
    g_test_add_func("/imaging/cred", test_cred);
    g_test_add_func("/imaging/location", test_location);
    g_test_add_func("/imaging/backend/local", test_backend);
    g_test_add("/imaging/plugin/api", Fixture, NULL, fx_setup, test_plugin, fx_teardown);
    return g_test_run();
}
