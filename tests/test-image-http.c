/* test-image-http.c - lib/image's JSON reader (every refusal, the bounds) and the imaging API
 * client against tests/imaging-standin.py, a separate server process that implements the
 * API's text (not an in-test fake): chunk put/has/get, the hash gate on the server (422),
 * batched missing, commit's 409 and 412, a 307 referral followed with the chunks then
 * fetched from the referred server, 401 without the token and the token kept out of error
 * messages, and a dead server giving up within the retry time. Skips without python3/zstd. */
#include "image-http.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

/* ---- JSON ------------------------------------------------------------------------------- */

static void test_json(void)
{
    g_autoptr(GError) e = NULL;
    const char *text = " {\"action\":\"restore\",\"image\":\"w\\u00e9\\ud83d\\ude00\",\"n\":42,"
                       "\"neg\":-1,\"f\":1.5e3,\"b\":true,\"z\":null,\"a\":[1,{\"x\":[]}],"
                       "\"dup\":1,\"dup\":2,\"esc\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"} ";
    g_autoptr(PbJson) j = pb_json_parse(text, strlen(text), &e);
    g_assert_no_error(e);
    g_assert_cmpstr(pb_json_get_string(j, "action"), ==, "restore");
    g_assert_cmpstr(pb_json_get_string(j, "image"), ==, "w\xc3\xa9\xf0\x9f\x98\x80");
    g_assert_cmpstr(pb_json_get_string(j, "esc"), ==, "\"\\/\b\f\n\r\t");
    guint64 v = 0;
    g_assert_true(pb_json_get_uint(j, "n", &v));
    g_assert_cmpuint(v, ==, 42);
    g_assert_true(pb_json_get_uint(j, "dup", &v));
    g_assert_cmpuint(v, ==, 2); /* the last one */
    g_assert_false(pb_json_get_uint(j, "neg", &v));
    g_assert_false(pb_json_get_uint(j, "f", &v));
    g_assert_false(pb_json_get_uint(j, "action", &v));
    g_assert_null(pb_json_get_string(j, "n"));
    g_assert_null(pb_json_get_string(j, "missing"));
    g_assert_true(pb_json_get(j, "b")->boolean);
    g_assert_cmpint(pb_json_get(j, "z")->type, ==, PB_JSON_NULL);
    g_assert_cmpuint(pb_json_get(j, "a")->items->len, ==, 2);
    g_assert_cmpfloat(pb_json_get(j, "f")->number, ==, 1500.0);

    static const char *const bad[] = {
        "",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "[1,]",
        "[1 2]",
        "{a:1}",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"a\nb\"",
        "01",
        "1.",
        "1e",
        "-",
        "tru",
        "nul",
        "{} {}",
        "\"\\u0000\"",
        "\"\xff\"",
        "[\"unterminated",
    };
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) be = NULL;
        g_autoptr(PbJson) bj = pb_json_parse(bad[i], strlen(bad[i]), &be);
        if (bj != NULL)
            g_error("accepted bad JSON: %s", bad[i]);
        g_assert_error(be, PB_JSON_ERROR, 0);
    }
    /* Nesting is bounded: no stack overflow from a hostile server. */
    GString *deep = g_string_new(NULL);
    for (int i = 0; i < 100000; i++)
        g_string_append_c(deep, '[');
    g_autoptr(GError) de = NULL;
    g_assert_null(pb_json_parse(deep->str, deep->len, &de));
    g_assert_nonnull(strstr(de->message, "deeply"));
    g_string_free(deep, TRUE);
    GString *ok = g_string_new(NULL);
    for (int i = 0; i < PB_JSON_DEPTH_MAX; i++)
        g_string_append_c(ok, '[');
    for (int i = 0; i < PB_JSON_DEPTH_MAX; i++)
        g_string_append_c(ok, ']');
    g_autoptr(PbJson) okj = pb_json_parse(ok->str, ok->len, NULL);
    g_assert_nonnull(okj);
    g_string_free(ok, TRUE);

    GString *out = g_string_new(NULL);
    pb_json_append_string(out, "a\"b\\c\n\x01");
    g_string_append_c(out, ' ');
    pb_json_append_string(out, NULL);
    g_assert_cmpstr(out->str, ==, "\"a\\\"b\\\\c\\u000a\\u0001\" null");
    g_autoptr(PbJson) back = pb_json_parse(out->str, strcspn(out->str, " "), NULL);
    g_assert_cmpstr(back->text, ==, "a\"b\\c\n\x01");
    g_string_free(out, TRUE);
}

/* ---- the client against the stand-in server ----------------------------------------------- */

#define TOKEN "test-token-0123456789"

typedef struct {
    GPid pid;
    char *dir;
    int port;
} Server;

static gboolean start_server(Server *s, const char *dir, const char *extra)
{
    s->dir = g_build_filename(dir, "srv", NULL);
    g_autofree char *portfile = g_strdup_printf("%s.port", s->dir);
    const char *script = g_test_get_filename(G_TEST_DIST, "tests", "imaging-standin.py", NULL);
    g_autofree char *cmd = g_strdup_printf(
        "python3 %s --dir %s --port-file %s --token " TOKEN " %s", script, s->dir, portfile, extra);
    g_auto(GStrv) argv = NULL;
    g_assert_true(g_shell_parse_argv(cmd, NULL, &argv, NULL));
    g_autoptr(GError) e = NULL;
    if (!g_spawn_async(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                       NULL, &s->pid, &e))
        return FALSE;
    /* The server writes its port file once it listens: wait for that (bounded). */
    for (int i = 0; i < 200; i++) {
        g_autofree char *text = NULL;
        if (g_file_get_contents(portfile, &text, NULL, NULL)) {
            s->port = atoi(text);
            return s->port > 0;
        }
        g_usleep(50000);
    }
    return FALSE;
}

static void stop_server(Server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        g_spawn_close_pid(s->pid);
    }
    g_free(s->dir);
}

static void rm_rf(const char *path)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", path);
    g_assert_cmpint(system(cmd), ==, 0);
}

static PbManifest *manifest_with(const guint8 hashes[][PB_HASH_LEN], const gsize *stored, guint n)
{
    PbManifest *m = pb_manifest_new();
    m->chunk_size = 64 * 1024;
    m->disk_size = (guint64)n * 64 * 1024;
    pb_manifest_add_region(m, 0, m->disk_size, 0);
    for (guint i = 0; i < n; i++) {
        PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, i);
        c->kind = PB_CHUNK_DATA;
        c->codec = PB_CODEC_ZSTD;
        memcpy(c->hash, hashes[i], PB_HASH_LEN);
        c->stored = stored[i];
    }
    return m;
}

static void test_client(void)
{
    g_autofree char *python = g_find_program_in_path("python3");
    g_autofree char *zstd = g_find_program_in_path("zstd");
    if (python == NULL || zstd == NULL) {
        g_test_skip("python3 or zstd missing");
        return;
    }
    g_autofree char *dir = g_dir_make_tmp("image-http-XXXXXX", NULL);
    g_autofree char *dir_b = g_build_filename(dir, "b", NULL);
    g_mkdir(dir_b, 0700);
    Server b = {0}, a = {0};
    g_assert_true(start_server(&b, dir_b, ""));
    g_autofree char *refer = g_strdup_printf("--refer far=%d", b.port);
    g_assert_true(start_server(&a, dir, refer));
    g_autofree char *loc = g_strdup_printf("127.0.0.1:%d", a.port);
    g_autofree char *loc_b = g_strdup_printf("http://127.0.0.1:%d", b.port);
    g_autoptr(GError) e = NULL;

    /* Three chunks: two sent, one not. */
    guint8 raw[3][64 * 1024];
    guint8 hash[3][PB_HASH_LEN];
    gsize stored[3];
    GBytes *coded[3];
    for (guint i = 0; i < 3; i++) {
        for (guint k = 0; k < sizeof(raw[i]); k++)
            raw[i][k] = (guint8)((k * (i + 3)) ^ (k >> 7));
        pb_sha256(raw[i], sizeof(raw[i]), hash[i]);
        PbCodec used;
        coded[i] = pb_chunk_encode(PB_CODEC_ZSTD, 3, raw[i], sizeof(raw[i]), &used);
        g_assert_cmpint(used, ==, PB_CODEC_ZSTD);
        stored[i] = g_bytes_get_size(coded[i]);
    }

    g_autoptr(PbHttp) anon = pb_http_new(loc, NULL, 0, &e);
    g_assert_no_error(e);
    PbChunkIO io;
    pb_http_chunk_io(anon, &io);
    g_assert_false(
        io.put(io.self, hash[0], PB_CODEC_ZSTD, g_bytes_get_data(coded[0], NULL), stored[0], &e));
    g_assert_nonnull(strstr(e->message, "HTTP 401"));
    g_clear_error(&e);

    g_autoptr(PbHttp) h = pb_http_new(loc, TOKEN, 5, &e);
    g_assert_no_error(e);
    g_autofree char *want_base = g_strdup_printf("http://%s", loc);
    g_assert_cmpstr(pb_http_base(h), ==, want_base);
    pb_http_chunk_io(h, &io);
    g_assert_false(io.has(io.self, hash[0], NULL));
    for (guint i = 0; i < 2; i++)
        g_assert_true(io.put(io.self, hash[i], PB_CODEC_ZSTD, g_bytes_get_data(coded[i], NULL),
                             stored[i], &e));
    g_assert_no_error(e);
    /* The server checks the bytes against the hash: a wrong chunk is refused (422). */
    g_assert_false(
        io.put(io.self, hash[2], PB_CODEC_ZSTD, g_bytes_get_data(coded[0], NULL), stored[0], &e));
    g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT);
    g_assert_null(strstr(e->message, TOKEN));
    g_clear_error(&e);

    PbChunkRef found;
    g_autoptr(PbHttp) h2 = pb_http_new(loc, TOKEN, 5, &e);
    PbChunkIO io2;
    pb_http_chunk_io(h2, &io2);
    g_assert_true(io2.has(io2.self, hash[1], &found)); /* HEAD */
    g_assert_cmpint(found.codec, ==, PB_CODEC_ZSTD);
    g_assert_cmpuint(found.stored, ==, stored[1]);
    PbCodec codec;
    g_autoptr(GBytes) got = io2.get(io2.self, &found, &codec, &e);
    g_assert_no_error(e);
    guint8 back[64 * 1024];
    g_assert_true(pb_chunk_decode_verify(codec, g_bytes_get_data(got, NULL), g_bytes_get_size(got),
                                         hash[1], back, sizeof(back), &e));
    g_assert_cmpmem(back, sizeof(back), raw[1], sizeof(raw[1]));
    PbChunkRef absent = {.kind = PB_CHUNK_DATA};
    memcpy(absent.hash, hash[2], PB_HASH_LEN);
    g_assert_null(io2.get(io2.self, &absent, &codec, &e));
    g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING);
    g_clear_error(&e);

    /* Batched missing, then has() answers from the set without asking. */
    g_autoptr(PbManifest) m = manifest_with(hash, stored, 3);
    g_autoptr(GPtrArray) lack = pb_http_missing(h2, m, &e);
    g_assert_no_error(e);
    g_assert_cmpuint(lack->len, ==, 1);
    char hex2[PB_HASH_HEX_LEN + 1];
    pb_hash_to_hex(hash[2], hex2);
    g_assert_cmpstr(lack->pdata[0], ==, hex2);
    PbHttpStats st;
    pb_http_get_stats(h2, &st);
    guint64 heads = st.chunk_heads;
    g_assert_true(io2.has(io2.self, hash[0], NULL));
    pb_http_get_stats(h2, &st);
    g_assert_cmpuint(st.chunk_heads, ==, heads);
    g_assert_cmpuint(st.missing_queries, ==, 1);

    /* Commit: 409 names the missing chunk; after it is sent, 201; create-only then 412. */
    GPtrArray *missing = NULL;
    gboolean created = FALSE;
    g_assert_false(pb_http_commit(h, "img", m, FALSE, &created, &missing, &e));
    g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING);
    g_clear_error(&e);
    g_assert_nonnull(missing);
    g_assert_cmpuint(missing->len, ==, 1);
    g_assert_cmpstr(missing->pdata[0], ==, hex2);
    g_ptr_array_unref(missing);
    g_assert_true(
        io.put(io.self, hash[2], PB_CODEC_ZSTD, g_bytes_get_data(coded[2], NULL), stored[2], &e));
    g_assert_true(pb_http_commit(h, "img", m, TRUE, &created, NULL, &e));
    g_assert_no_error(e);
    g_assert_true(created);
    g_assert_false(pb_http_commit(h, "img", m, TRUE, &created, NULL, &e));
    g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID);
    g_clear_error(&e);
    g_assert_true(pb_http_commit(h, "img", m, FALSE, &created, NULL, &e));
    g_assert_false(created);
    g_autoptr(PbManifest) m2 = pb_http_get_manifest(h2, "img", &e);
    g_assert_no_error(e);
    g_assert_cmpmem(m2->seal, PB_HASH_LEN, m->seal, PB_HASH_LEN);
    g_assert_null(pb_http_get_manifest(h2, "nothing", &e));
    g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING);
    g_clear_error(&e);
    g_autoptr(PbJson) cat = pb_http_get_json(h2, "/images", &e);
    g_assert_no_error(e);
    g_assert_cmpuint(pb_json_get(cat, "images")->items->len, ==, 1);

    /* A chunk named twice by a manifest is fetched once. */
    {
        guint8 twice[2][PB_HASH_LEN];
        gsize twice_stored[2] = {stored[1], stored[1]};
        memcpy(twice[0], hash[1], PB_HASH_LEN);
        memcpy(twice[1], hash[1], PB_HASH_LEN);
        g_autoptr(PbManifest) mt = manifest_with(twice, twice_stored, 2);
        g_autoptr(PbHttp) ht = pb_http_new(loc, NULL, 5, &e);
        g_autoptr(GPtrArray) none = pb_http_missing(ht, mt, &e);
        g_assert_cmpuint(none->len, ==, 0);
        PbChunkIO iot;
        pb_http_chunk_io(ht, &iot);
        for (int i = 0; i < 2; i++) {
            g_autoptr(GBytes) fetched =
                iot.get(iot.self, &g_array_index(mt->chunks, PbChunkRef, i), &codec, &e);
            g_assert_no_error(e);
            g_assert_true(g_bytes_equal(fetched, coded[1]));
        }
        pb_http_get_stats(ht, &st);
        g_assert_cmpuint(st.chunk_gets, ==, 1);
    }

    /* A referral: "far" lives on B; the chunks are then fetched from B. */
    g_autoptr(PbHttp) hb = pb_http_new(loc_b, TOKEN, 5, &e);
    PbChunkIO iob;
    pb_http_chunk_io(hb, &iob);
    g_assert_true(
        iob.put(iob.self, hash[0], PB_CODEC_ZSTD, g_bytes_get_data(coded[0], NULL), stored[0], &e));
    g_autoptr(PbManifest) mf = manifest_with(hash, stored, 1);
    g_assert_true(pb_http_commit(hb, "far", mf, FALSE, NULL, NULL, &e));
    g_assert_no_error(e);
    g_autoptr(PbHttp) hr = pb_http_new(loc, NULL, 5, &e);
    g_autoptr(PbManifest) mr = pb_http_get_manifest(hr, "far", &e);
    g_assert_no_error(e);
    g_assert_cmpstr(pb_http_base(hr), ==, loc_b);
    g_assert_cmpmem(mr->seal, PB_HASH_LEN, mf->seal, PB_HASH_LEN);

    /* Queued puts (pb_http_set_put_queue, as preboot-img make uses them): put() returns at
     * once; the commit waits for them. A chunk the server refuses fails the flush, every
     * later put and the commit with the server's reason. */
    {
        g_autoptr(PbHttp) hq = pb_http_new(loc, TOKEN, 5, &e);
        pb_http_set_put_queue(hq, 2);
        PbChunkIO ioq;
        pb_http_chunk_io(hq, &ioq);
        for (guint i = 0; i < 3; i++)
            g_assert_true(ioq.put(ioq.self, hash[i], PB_CODEC_ZSTD,
                                  g_bytes_get_data(coded[i], NULL), stored[i], &e));
        g_assert_no_error(e);
        g_assert_true(pb_http_flush(hq, &e));
        g_assert_no_error(e);
        pb_http_get_stats(hq, &st);
        g_assert_cmpuint(st.chunk_puts, ==, 3);
        g_assert_true(pb_http_commit(hq, "queued", m, FALSE, NULL, NULL, &e));
        g_assert_no_error(e);

        g_autoptr(PbHttp) hbad = pb_http_new(loc, TOKEN, 5, &e);
        pb_http_set_put_queue(hbad, 2);
        pb_http_chunk_io(hbad, &ioq);
        guint8 wrong[PB_HASH_LEN];
        memset(wrong, 0x5a, sizeof(wrong));
        g_assert_true(ioq.put(ioq.self, wrong, PB_CODEC_ZSTD, g_bytes_get_data(coded[0], NULL),
                              stored[0], &e)); /* queued: the answer comes later */
        g_assert_false(pb_http_flush(hbad, &e));
        g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT);
        g_clear_error(&e);
        g_assert_false(ioq.put(ioq.self, hash[1], PB_CODEC_ZSTD, g_bytes_get_data(coded[1], NULL),
                               stored[1], &e));
        g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT);
        g_clear_error(&e);
        GPtrArray *bad_lack = NULL;
        g_assert_false(pb_http_commit(hbad, "bad", m, FALSE, NULL, &bad_lack, &e));
        g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT);
        g_assert_null(bad_lack);
        g_clear_error(&e);
    }

    /* A server that is gone: the client gives up within its retry time. */
    stop_server(&b);
    b.pid = 0;
    g_autoptr(PbHttp) hd = pb_http_new(loc_b, NULL, 1, &e);
    gint64 t0 = g_get_monotonic_time();
    g_assert_null(pb_http_get_manifest(hd, "far", &e));
    g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO);
    g_assert_nonnull(strstr(e->message, "gave up"));
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
    pb_http_get_stats(hd, &st);
    g_assert_cmpuint(st.retries, >=, 1);
    g_clear_error(&e);

    for (guint i = 0; i < 3; i++)
        g_bytes_unref(coded[i]);
    stop_server(&a);
    rm_rf(dir);
}

static void test_bad_locations(void)
{
    static const char *const bad[] = {"http://", "http:///x", "host@evil", "a b", ""};
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) e = NULL;
        g_autoptr(PbHttp) h = pb_http_new(bad[i], NULL, 0, &e);
        if (h != NULL)
            g_error("accepted %s", bad[i]);
        g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID);
    }
    g_autoptr(GError) e = NULL;
    g_autoptr(PbHttp) h = pb_http_new("imgsrv", "tok\nX-Evil: 1", 0, &e);
    g_assert_null(h);
    g_clear_error(&e);
    g_autoptr(PbHttp) h2 = pb_http_new("imgsrv", NULL, 0, &e);
    g_assert_cmpstr(pb_http_base(h2), ==, "http://imgsrv:8080");
    g_autoptr(PbHttp) h3 = pb_http_new("https://imgsrv:8443/ignored", NULL, 0, &e);
    g_assert_cmpstr(pb_http_base(h3), ==, "https://imgsrv:8443");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/image/json", test_json);
    g_test_add_func("/image/http/locations", test_bad_locations);
    g_test_add_func("/image/http/client", test_client);
    return g_test_run();
}
