/* test-image-format.c - lib/image's pure parts and its store: manifest round trips and
 * every refusal (seal, tiling, counts, escapes, bounds), chunk coding and the hash gate,
 * the domain map, STORE:NAME rules, the archive framing, and the store's atomic writes,
 * deduplication and gc. */
#include "image-engine.h"
#include "image-pbi.h"
#include "image-store.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static PbManifest *sample(void)
{
    PbManifest *m = pb_manifest_new();
    m->chunk_size = 64 * 1024;
    m->disk_size = 1024 * 1024;
    g_free(m->label);
    m->label = g_strdup("gpt");
    m->disk_id = g_strdup("7853AD8A-B95A-704D-B9D5-349B52E29941");
    PbPartition p = {.partno = 1, .start = 65536, .size = 200 * 1024};
    p.type = g_strdup("0FC63DAF-8483-4772-8E79-3D69D8477DE4");
    p.name = g_strdup("root fs=100% -x"); /* spaces, '=', '%' and a '-' */
    p.fs = g_strdup("ext4");
    g_array_append_val(m->partitions, p);
    pb_manifest_add_region(m, 0, 65536, 0);
    guint r = pb_manifest_add_region(m, 65536, 200 * 1024, 1);
    pb_manifest_add_region(m, 65536 + 200 * 1024, m->disk_size - 65536 - 200 * 1024, 0);
    const PbRegion *rg = &g_array_index(m->regions, PbRegion, r);
    g_assert_cmpuint(rg->n_chunks, ==, 4); /* 200 KiB in 64 KiB chunks: 3 and a short one */
    g_assert_cmpuint(pb_region_chunk_len(m, rg, 3), ==, 8 * 1024);
    PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, 0);
    c->kind = PB_CHUNK_DATA;
    c->codec = PB_CODEC_ZSTD;
    pb_sha256("x", 1, c->hash);
    c->stored = 17;
    g_array_index(m->chunks, PbChunkRef, 1).kind = PB_CHUNK_ZERO;
    g_array_index(m->chunks, PbChunkRef, 2).kind = PB_CHUNK_UNUSED;
    return m;
}

static void test_manifest_roundtrip(void)
{
    g_autoptr(PbManifest) m = sample();
    g_autoptr(GString) text = pb_manifest_build(m);
    g_assert_true(g_str_has_prefix(text->str, "preboot-image 1\nchunk-size 65536\n"));
    g_assert_nonnull(strstr(text->str, "name=root%20fs%3D100%25%20-x "));
    g_autoptr(GError) e = NULL;
    g_autoptr(PbManifest) back = pb_manifest_parse(text->str, text->len, &e);
    g_assert_no_error(e);
    g_assert_cmpuint(back->chunks->len, ==, m->chunks->len);
    g_assert_cmpstr(g_array_index(back->partitions, PbPartition, 0).name, ==, "root fs=100% -x");
    g_assert_cmpmem(back->seal, PB_HASH_LEN, m->seal, PB_HASH_LEN);
    g_autoptr(GString) again = pb_manifest_build(back);
    g_assert_cmpstr(again->str, ==, text->str); /* canonical */
    PbManifestStats st;
    pb_manifest_stats(back, &st);
    g_assert_cmpuint(st.n_data, ==, 1);
    g_assert_cmpuint(st.n_zero, ==, 1);
    g_assert_cmpuint(st.n_unused, ==, 1);
    g_assert_cmpuint(st.n_absent, ==, back->chunks->len - 3);
}

/* pb_manifest_data_hashes: DATA chunks only, each once; manifest order or memcmp order. */
static void test_manifest_data_hashes(void)
{
    g_autoptr(PbManifest) m = sample();
    guint8 hx[PB_HASH_LEN], hb[PB_HASH_LEN];
    pb_sha256("x", 1, hx);
    pb_sha256("b", 1, hb);
    /* chunks 0 "x", 1 zero, 2 unused; then "b", "x" again, "b" again */
    for (guint i = 3; i < 6; i++) {
        PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, i);
        c->kind = PB_CHUNK_DATA;
        memcpy(c->hash, i == 4 ? hx : hb, PB_HASH_LEN);
    }
    g_autoptr(GByteArray) in_order = pb_manifest_data_hashes(m, FALSE);
    g_assert_cmpuint(in_order->len, ==, 2 * PB_HASH_LEN);
    g_assert_cmpmem(in_order->data, PB_HASH_LEN, hx, PB_HASH_LEN);
    g_assert_cmpmem(in_order->data + PB_HASH_LEN, PB_HASH_LEN, hb, PB_HASH_LEN);
    g_autoptr(GByteArray) sorted = pb_manifest_data_hashes(m, TRUE);
    g_assert_cmpuint(sorted->len, ==, 2 * PB_HASH_LEN);
    g_assert_cmpint(memcmp(sorted->data, sorted->data + PB_HASH_LEN, PB_HASH_LEN), <, 0);
    g_autoptr(PbManifest) empty = pb_manifest_new();
    g_autoptr(GByteArray) none = pb_manifest_data_hashes(empty, TRUE);
    g_assert_cmpuint(none->len, ==, 0);
}

/* Re-seals edited text so the test reaches the check it aims at, not the seal. */
static char *reseal(const char *body)
{
    guint8 h[PB_HASH_LEN];
    char hex[PB_HASH_HEX_LEN + 1];
    pb_sha256(body, strlen(body), h);
    pb_hash_to_hex(h, hex);
    return g_strdup_printf("%sseal sha256 %s\n", body, hex);
}

static void expect_refused(const char *text, int code, const char *fragment)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(PbManifest) m = pb_manifest_parse(text, strlen(text), &e);
    g_assert_null(m);
    g_assert_error(e, PB_IMAGE_ERROR, code);
    if (strstr(e->message, fragment) == NULL)
        g_error("\"%s\" does not contain \"%s\"", e->message, fragment);
}

static void test_manifest_refusals(void)
{
    g_autoptr(PbManifest) m = sample();
    g_autoptr(GString) text = pb_manifest_build(m);
    /* One flipped byte anywhere before the seal line: the seal catches it. */
    g_autofree char *t1 = g_strdup(text->str);
    char *z = strstr(t1, "\nz\n");
    z[1] = 'u';
    expect_refused(t1, PB_IMAGE_ERROR_SEAL, "seal mismatch");
    g_autofree char *t2 = g_strndup(text->str, text->len - 1); /* no final newline */
    expect_refused(t2, PB_IMAGE_ERROR_PARSE, "newline");
    g_autofree char *t3 = g_strconcat(text->str, "extra\n", NULL);
    expect_refused(t3, PB_IMAGE_ERROR_PARSE, "after the seal");
    g_autofree char *t4 = g_strndup(text->str, (gsize)(strstr(text->str, "seal ") - text->str));
    expect_refused(t4, PB_IMAGE_ERROR_PARSE, "no seal");

    const char *head = "preboot-image 1\nchunk-size 65536\ndisk-size 131072\nsector-size 512\n"
                       "label dos\ndisk-id -\n";
    struct {
        const char *body, *fragment;
    } cases[] = {
        {"preboot-image 3\n", "version"},
        {"chunk-size 65536\n", "not a preboot image"},
        {"preboot-image 1\nchunk-size 100000\n", "power of two"},
        {"preboot-image 1\nchunk-size 65536\ndisk-size 131072\nsector-size 500\n", "sector"},
        {"region 0 131072 table\nz\n", "expected a chunk line"},
        {"region 0 131072 table\nz\nz\nz\n", "unexpected"},
        {"region 0 65536 table\nz\n", "regions end at 65536"},
        {"region 0 65536 table\nz\nregion 512 65536 table\nz\n", "does not follow"},
        {"region 0 131072 table\nc 00 zstd 5\nz\n", "hash"},
        {"region 0 131072 table\nc "
         "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"
         " zstd 5\nz\n",
         "hash"},
        {"region 0 131072 table\nc "
         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
         " lz4 5\nz\n",
         "codec"},
        {"region 0 131072 table\nc "
         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
         " none 5\nz\n",
         "stored length"},
        {"partition 1 start=0 size=200000 type=83 uuid=- name=- attrs=- fs=-\n", "outside"},
        {"partition 1 start=0 size=65536 type=8%3 uuid=- name=- attrs=- fs=-\n", "escape"},
        {"partition 1 start=0 size=65536 type=83 uuid=- name=- attrs=- fs=-\n"
         "region 0 65536 partition=2\nz\nregion 65536 65536 table\nz\n",
         "partition 2"},
        {"region 0  131072 table\nz\nz\n", "malformed"},
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *body = g_str_has_prefix(cases[i].body, "preboot-image") ||
                                        g_str_has_prefix(cases[i].body, "chunk-size")
                                    ? g_strdup(cases[i].body)
                                    : g_strconcat(head, cases[i].body, NULL);
        g_autofree char *sealed = reseal(body);
        expect_refused(sealed, PB_IMAGE_ERROR_PARSE, cases[i].fragment);
    }
    g_autofree char *good_body =
        g_strconcat(head, "partition 1 start=0 size=65536 type=83 uuid=- name=- attrs=- fs=-\n",
                    "region 0 65536 partition=1\nu\nregion 65536 65536 table\na\n", NULL);
    g_autofree char *good = reseal(good_body);
    g_autoptr(GError) e = NULL;
    g_autoptr(PbManifest) ok = pb_manifest_parse(good, strlen(good), &e);
    g_assert_no_error(e);
    g_assert_cmpint(pb_manifest_region_for(ok, 1)->partno, ==, 1);
}

static void test_chunk_coding(void)
{
    gsize len = 256 * 1024;
    g_autofree guint8 *data = g_malloc0(len);
    g_assert_true(pb_is_zero(data, len));
    data[len - 1] = 1;
    g_assert_false(pb_is_zero(data, len));
    for (gsize i = 0; i < len; i++)
        data[i] = (guint8)(i % 251 < 100 ? 'a' : i % 7);
    guint8 h[PB_HASH_LEN];
    pb_sha256(data, len, h);
    char hex[PB_HASH_HEX_LEN + 1];
    pb_sha256("abc", 3, h);
    pb_hash_to_hex(h, hex);
    g_assert_cmpstr(hex, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    guint8 back[PB_HASH_LEN];
    g_assert_true(pb_hash_from_hex(hex, PB_HASH_HEX_LEN, back));
    g_assert_cmpmem(back, PB_HASH_LEN, h, PB_HASH_LEN);

    pb_sha256(data, len, h);
    PbCodec used;
    g_autoptr(GBytes) z = pb_chunk_encode(PB_CODEC_ZSTD, 3, data, len, &used);
    g_assert_cmpint(used, ==, PB_CODEC_ZSTD);
    g_assert_cmpuint(g_bytes_get_size(z), <, len);
    g_autofree guint8 *out = g_malloc(len);
    g_autoptr(GError) e = NULL;
    g_assert_true(pb_chunk_decode_verify(PB_CODEC_ZSTD, g_bytes_get_data(z, NULL),
                                         g_bytes_get_size(z), h, out, len, &e));
    g_assert_cmpmem(out, len, data, len);
    /* A flipped byte in the stored frame, or the right frame under another hash: refused. */
    g_autofree guint8 *bad = g_memdup2(g_bytes_get_data(z, NULL), g_bytes_get_size(z));
    bad[g_bytes_get_size(z) / 2] ^= 0x40;
    g_assert_false(
        pb_chunk_decode_verify(PB_CODEC_ZSTD, bad, g_bytes_get_size(z), h, out, len, &e));
    g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT);
    g_clear_error(&e);
    guint8 other[PB_HASH_LEN] = {0};
    g_assert_false(pb_chunk_decode_verify(PB_CODEC_NONE, data, len, other, out, len, &e));
    g_assert_nonnull(strstr(e->message, "hash mismatch"));
    g_clear_error(&e);
    /* Random-looking bytes zstd cannot shrink are kept as they are. */
    for (gsize i = 0; i < len; i++)
        data[i] = (guint8)g_random_int();
    g_autoptr(GBytes) raw = pb_chunk_encode(PB_CODEC_ZSTD, 3, data, len, &used);
    g_assert_cmpint(used, ==, PB_CODEC_NONE);
    g_assert_cmpuint(g_bytes_get_size(raw), ==, len);
}

/* Delta chunks: only the changed blocks are stored, they apply back bit-exact, and every
 * damage (wrong base, bad runs, flipped byte) is refused before the bytes are used. */
static void test_delta(void)
{
    const gsize len = 256 * 1024;
    g_autofree guint8 *base = g_malloc(len), *data = g_malloc(len), *buf = g_malloc(len);
    for (gsize i = 0; i < len; i++)
        base[i] = (guint8)(i * 7 + i / 4096);
    memcpy(data, base, len);
    memset(data + 5000, 0xAA, 100);    /* block 1 */
    memset(data + 8192, 0x55, 4096);   /* block 2, touching block 1's run */
    memset(data + len - 10, 0x11, 10); /* the last block */
    guint8 bh[PB_HASH_LEN], dh[PB_HASH_LEN], got[PB_HASH_LEN];
    pb_sha256(base, len, bh);
    pb_sha256(data, len, dh);
    g_assert_null(pb_delta_encode(bh, base, data, len, 1, 8192)); /* 3 blocks > 2 allowed */
    g_autoptr(GBytes) d = pb_delta_encode(bh, base, data, len, 1, len / 2);
    g_assert_nonnull(d);
    gsize n;
    const guint8 *db = g_bytes_get_data(d, &n);
    g_assert_cmpuint(n, <, 3 * 4096 + 200);
    g_assert_true(pb_delta_base(db, n, got, NULL));
    g_assert_cmpmem(got, PB_HASH_LEN, bh, PB_HASH_LEN);
    memcpy(buf, base, len);
    g_assert_true(pb_delta_apply_verify(db, n, dh, buf, len, NULL));
    g_assert_cmpmem(buf, len, data, len);
    /* Applied to the wrong base, the result does not match the hash. */
    g_autoptr(GError) e = NULL;
    memset(buf, 0, len);
    g_assert_false(pb_delta_apply_verify(db, n, dh, buf, len, &e));
    g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT);
    g_clear_error(&e);
    /* A flipped byte in the frame, a cut frame, no magic. */
    g_autofree guint8 *bad = g_memdup2(db, n);
    bad[n - 5] ^= 1;
    memcpy(buf, base, len);
    g_assert_false(pb_delta_apply_verify(bad, n, dh, buf, len, &e));
    g_clear_error(&e);
    g_assert_false(pb_delta_apply_verify(db, n - 3, dh, buf, len, &e));
    g_clear_error(&e);
    g_assert_false(pb_delta_apply_verify(db, 20, dh, buf, len, &e));
    g_clear_error(&e);
    /* Identical chunks make an empty delta; a plain decoder refuses delta bytes. */
    g_autoptr(GBytes) same = pb_delta_encode(bh, base, base, len, 1, 0);
    g_assert_nonnull(same);
    db = g_bytes_get_data(same, &n);
    g_assert_true(pb_delta_apply_verify(db, n, bh, memcpy(buf, base, len), len, NULL));
    g_assert_false(pb_chunk_decode_verify(PB_CODEC_DELTA, db, n, bh, buf, len, &e));
    g_clear_error(&e);

    /* Manifests: a delta chunk makes version 2 and names its base; version 1 cannot. */
    g_autoptr(PbManifest) m = sample();
    for (guint i = 0; i < m->chunks->len; i++) {
        PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, i);
        if (c->kind == PB_CHUNK_DATA) {
            c->codec = PB_CODEC_DELTA;
            c->stored = 77;
            memcpy(c->base, bh, PB_HASH_LEN);
            break;
        }
    }
    g_autoptr(GString) text = pb_manifest_build(m);
    g_assert_true(g_str_has_prefix(text->str, "preboot-image 2\n"));
    char bhex[PB_HASH_HEX_LEN + 1];
    pb_hash_to_hex(bh, bhex);
    g_autofree char *line = g_strdup_printf(" delta 77 %s\n", bhex);
    g_assert_nonnull(strstr(text->str, line));
    g_autoptr(PbManifest) back = pb_manifest_parse(text->str, text->len, &e);
    g_assert_no_error(e);
    g_autoptr(GString) again = pb_manifest_build(back);
    g_assert_cmpstr(again->str, ==, text->str);
    gboolean found = FALSE;
    for (guint i = 0; i < back->chunks->len; i++) {
        const PbChunkRef *c = &g_array_index(back->chunks, PbChunkRef, i);
        if (c->kind == PB_CHUNK_DATA && c->codec == PB_CODEC_DELTA) {
            g_assert_cmpmem(c->base, PB_HASH_LEN, bh, PB_HASH_LEN);
            g_assert_cmpuint(c->stored, ==, 77);
            found = TRUE;
        }
    }
    g_assert_true(found);
    /* The same text claiming version 1, and a version 2 without any delta chunk. */
    g_autofree char *body = g_strndup(text->str, (gsize)(strstr(text->str, "seal ") - text->str));
    body[strlen("preboot-image ")] = '1';
    g_autofree char *v1 = reseal(body);
    expect_refused(v1, PB_IMAGE_ERROR_PARSE, "version 2");
    g_autoptr(PbManifest) plain = sample();
    g_autoptr(GString) ptext = pb_manifest_build(plain);
    g_assert_true(g_str_has_prefix(ptext->str, "preboot-image 1\n"));
    g_autofree char *pbody =
        g_strndup(ptext->str, (gsize)(strstr(ptext->str, "seal ") - ptext->str));
    pbody[strlen("preboot-image ")] = '2';
    g_autofree char *v2 = reseal(pbody);
    expect_refused(v2, PB_IMAGE_ERROR_PARSE, "without a delta");
}

static void test_domain(void)
{
    const char *map = "# Domain logfile created by partclone\n"
                      "# current_pos  current_status\n0x00000000     ?\n"
                      "#      pos        size  status\n"
                      "0x00000000  0x00001000  +\n0x00001000  0x00100000  ?\n"
                      "0x00101000  0x00001000  +\n0x00102000  0x00001000  +\n";
    g_autoptr(GError) e = NULL;
    g_autoptr(GArray) r = pb_domain_parse(map, strlen(map), &e);
    g_assert_no_error(e);
    g_assert_cmpuint(r->len, ==, 2); /* the two touching ranges merged */
    g_assert_true(pb_domain_used(r, 0, 1));
    g_assert_false(pb_domain_used(r, 0x1000, 0x100000));
    g_assert_true(pb_domain_used(r, 0x1000, 0x100001));
    g_assert_true(pb_domain_used(r, 0x102fff, 10));
    g_assert_false(pb_domain_used(r, 0x103000, 10));
    const char *bad[] = {"",
                         "# only comments\n",
                         "0 ?\n0x10 +\n",
                         "0 ?\n0 10 x\n",
                         "0 ?\n0 -1 +\n",
                         "0 ?\n0 0x2000000000000000 +\n"};
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) e2 = NULL;
        g_autoptr(GArray) none = pb_domain_parse(bad[i], strlen(bad[i]), &e2);
        g_assert_null(none);
        g_assert_error(e2, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE);
    }
}

static void test_ref(void)
{
    struct {
        const char *arg;
        gboolean want_name, ok;
        PbRefKind kind;
        const char *location, *name;
    } cases[] = {
        {"./images:win10", TRUE, TRUE, PB_REF_DIR, "./images", "win10"},
        {"/srv/img:a.b-c_1", TRUE, TRUE, PB_REF_DIR, "/srv/img", "a.b-c_1"},
        {"dir:images:win10", TRUE, TRUE, PB_REF_DIR, "images", "win10"},
        {"dir:a:b:c", TRUE, TRUE, PB_REF_DIR, "a:b", "c"},
        {"imgsrv:win10", TRUE, TRUE, PB_REF_SERVER, "imgsrv", "win10"},
        {"http://imgsrv:8080/win10", TRUE, TRUE, PB_REF_SERVER, "http://imgsrv:8080", "win10"},
        {"https://[2001:db8::1]:8443/w", TRUE, TRUE, PB_REF_SERVER, "https://[2001:db8::1]:8443",
         "w"},
        {"http://imgsrv:8080/", FALSE, TRUE, PB_REF_SERVER, "http://imgsrv:8080", NULL},
        {"http://imgsrv:8080", TRUE, FALSE, 0, NULL, NULL},
        {"./images", TRUE, FALSE, 0, NULL, NULL},
        {"http://imgsrv:8080/a/b", TRUE, FALSE, 0, NULL, NULL},
        {"./images:../x", TRUE, FALSE, 0, NULL, NULL},
        {"./images:.hidden", TRUE, FALSE, 0, NULL, NULL},
        {":name", TRUE, FALSE, 0, NULL, NULL},
        {"./images", FALSE, TRUE, PB_REF_DIR, "./images", NULL},
        {".", FALSE, TRUE, PB_REF_DIR, ".", NULL},
        {"imgsrv", FALSE, TRUE, PB_REF_SERVER, "imgsrv", NULL},
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        PbRef r;
        g_autoptr(GError) e = NULL;
        gboolean ok = pb_ref_parse(cases[i].arg, cases[i].want_name, &r, &e);
        if (ok != cases[i].ok)
            g_error("%s: expected %s", cases[i].arg, cases[i].ok ? "ok" : "refusal");
        if (!ok)
            continue;
        g_assert_cmpint(r.kind, ==, cases[i].kind);
        g_assert_cmpstr(r.location, ==, cases[i].location);
        g_assert_cmpstr(r.name, ==, cases[i].name);
        pb_ref_clear(&r);
    }
}

static char *tmpdir(void)
{
    g_autoptr(GError) e = NULL;
    char *d = g_dir_make_tmp("test-image-XXXXXX", &e);
    g_assert_no_error(e);
    return d;
}

static void rm_rf(const char *path)
{
    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        GDir *d = g_dir_open(path, 0, NULL);
        const char *n;
        while (d != NULL && (n = g_dir_read_name(d)) != NULL) {
            g_autofree char *p = g_build_filename(path, n, NULL);
            rm_rf(p);
        }
        if (d != NULL)
            g_dir_close(d);
        g_rmdir(path);
    } else
        g_unlink(path);
}

static guint count_files(const char *dir)
{
    guint n = 0;
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *f;
    while (d != NULL && (f = g_dir_read_name(d)) != NULL) {
        g_autofree char *p = g_build_filename(dir, f, NULL);
        n += g_file_test(p, G_FILE_TEST_IS_DIR) ? count_files(p) : 1;
    }
    if (d != NULL)
        g_dir_close(d);
    return n;
}

/* A manifest of one region whose chunks are the given bytes, stored in s. */
static PbManifest *stored_image(PbStore *s, const char *const *chunks, guint n)
{
    PbManifest *m = pb_manifest_new();
    m->chunk_size = 64 * 1024;
    m->disk_size = (guint64)n * m->chunk_size;
    pb_manifest_add_region(m, 0, m->disk_size, 0);
    g_autofree guint8 *buf = g_malloc0(m->chunk_size);
    for (guint i = 0; i < n; i++) {
        memset(buf, 0, m->chunk_size);
        g_strlcpy((char *)buf, chunks[i], m->chunk_size);
        PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, i);
        PbCodec used;
        pb_sha256(buf, m->chunk_size, c->hash);
        g_autoptr(GBytes) coded = pb_chunk_encode(PB_CODEC_ZSTD, 1, buf, m->chunk_size, &used);
        g_autoptr(GError) e = NULL;
        g_assert_true(pb_store_put_chunk(s, c->hash, used, g_bytes_get_data(coded, NULL),
                                         g_bytes_get_size(coded), &e));
        g_assert_no_error(e);
        c->kind = PB_CHUNK_DATA;
        c->codec = (guint8)used;
        c->stored = g_bytes_get_size(coded);
    }
    return m;
}

static void test_store(void)
{
    g_autofree char *dir = tmpdir();
    g_autofree char *path = g_build_filename(dir, "store", NULL);
    g_autoptr(GError) e = NULL;
    g_assert_null(pb_store_open(path, FALSE, &e)); /* not created unless asked */
    g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING);
    g_clear_error(&e);
    g_autoptr(PbStore) s = pb_store_open(path, TRUE, &e);
    g_assert_no_error(e);
    const char *a[] = {"alpha", "beta", "gamma"};
    const char *b[] = {"alpha", "beta", "delta"}; /* shares two chunks with a */
    g_autoptr(PbManifest) ma = stored_image(s, a, 3);
    g_autoptr(PbManifest) mb = stored_image(s, b, 3);
    g_autofree char *chunks = g_build_filename(path, "chunks", NULL);
    g_autofree char *tmpd = g_build_filename(path, "tmp", NULL);
    /* Before a flush the chunks sit in tmp/, visible to has/get, under no real name. */
    g_assert_cmpuint(count_files(chunks), ==, 0);
    g_assert_cmpuint(count_files(tmpd), ==, 4);
    g_assert_true(pb_store_has_chunk(s, g_array_index(mb->chunks, PbChunkRef, 2).hash, NULL));
    g_assert_true(pb_store_flush(s, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(count_files(chunks), ==, 4); /* each chunk stored once */
    g_assert_cmpuint(count_files(tmpd), ==, 0);
    g_assert_true(pb_store_put_manifest(s, "a", ma, &e));
    g_assert_true(pb_store_put_manifest(s, "b", mb, &e));
    g_assert_no_error(e);
    g_autoptr(GPtrArray) names = pb_store_list(s, &e);
    g_assert_cmpuint(names->len, ==, 2);
    g_assert_cmpstr(names->pdata[0], ==, "a");

    /* A manifest naming a chunk the store lacks is refused: never visible half-stored. */
    g_autoptr(PbManifest) mc = stored_image(s, a, 1);
    g_array_index(mc->chunks, PbChunkRef, 0).hash[0] ^= 1;
    g_assert_false(pb_store_put_manifest(s, "c", mc, &e));
    g_assert_error(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING);
    g_clear_error(&e);
    g_assert_false(pb_store_put_manifest(s, "../evil", ma, &e));
    g_clear_error(&e);

    /* A stale temporary (a crash mid-write) and an unreferenced chunk go; a's chunks stay
     * after b is deleted; a still verifies. */
    g_autofree char *stale = g_build_filename(path, "tmp", "w-crash1", NULL);
    g_assert_true(g_file_set_contents(stale, "half", -1, NULL));
    g_assert_true(pb_store_delete_manifest(s, "b", &e));
    PbGcStats gs;
    g_assert_true(pb_store_gc(s, &gs, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(gs.chunks_kept, ==, 3);
    g_assert_cmpuint(gs.chunks_removed, ==, 1);
    g_assert_cmpuint(gs.temps_removed, ==, 1);
    g_assert_false(g_file_test(stale, G_FILE_TEST_EXISTS));
    g_autoptr(PbManifest) back = pb_store_get_manifest(s, "a", &e);
    g_assert_no_error(e);
    PbChunkIO io;
    pb_store_chunk_io(s, &io);
    PbVerifyStats vs;
    g_assert_true(pb_verify(back, &io, 2, NULL, NULL, &vs, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(vs.chunks_checked, ==, 3);

    /* The archive: export, check in memory, import into a second store. */
    g_autofree char *pbi = g_build_filename(dir, "a.pbi", NULL);
    int fd = open(pbi, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    PbArchiveStats as;
    g_assert_true(pb_archive_export(back, &io, fd, &as, &e));
    close(fd);
    g_assert_cmpuint(as.chunks, ==, 3);
    g_autofree char *bytes = NULL;
    gsize len;
    g_assert_true(g_file_get_contents(pbi, &bytes, &len, NULL));
    g_assert_cmpuint(len, ==, as.bytes);
    g_autoptr(PbManifest) inside = NULL;
    g_assert_true(pb_archive_check((guint8 *)bytes, len, &inside, &e));
    g_assert_no_error(e);
    g_assert_cmpmem(inside->seal, PB_HASH_LEN, back->seal, PB_HASH_LEN);
    g_autofree char *path2 = g_build_filename(dir, "store2", NULL);
    g_autoptr(PbStore) s2 = pb_store_open(path2, TRUE, &e);
    fd = open(pbi, O_RDONLY);
    g_assert_true(pb_archive_import(fd, NULL, 0, s2, "a", &as, &e));
    g_assert_no_error(e);
    close(fd);
    /* A truncated archive, and one with a flipped chunk byte, add no image. */
    for (int k = 0; k < 2; k++) {
        g_autofree char *cut = g_build_filename(dir, "cut.pbi", NULL);
        g_autofree char *copy = g_memdup2(bytes, len);
        if (k == 1)
            copy[len - PB_ARCHIVE_TRAILER_LEN - 16 - 3 * 56 - 10] ^= 0x55;
        g_assert_true(
            g_file_set_contents(cut, copy, k == 0 ? (gssize)len - 30 : (gssize)len, NULL));
        g_assert_false(pb_archive_check((guint8 *)copy, k == 0 ? len - 30 : len, NULL, &e) &&
                       k == 0);
        g_clear_error(&e);
        fd = open(cut, O_RDONLY);
        g_assert_false(pb_archive_import(fd, NULL, 0, s2, "cut", &as, &e));
        g_assert_nonnull(e);
        g_clear_error(&e);
        close(fd);
        g_autoptr(PbManifest) none = pb_store_get_manifest(s2, "cut", &e);
        g_assert_null(none);
        g_clear_error(&e);
    }
    g_clear_pointer(&s, pb_store_close);
    g_clear_pointer(&s2, pb_store_close);
    rm_rf(dir);
}

/* pb_store_put_chunk_direct: an aligned buffer with an unaligned length (the tail goes
 * through the page cache) and an unaligned one (all of it does) are stored byte for byte. */
static void test_store_direct(void)
{
    g_autofree char *dir = tmpdir();
    g_autofree char *path = g_build_filename(dir, "store", NULL);
    g_autoptr(GError) e = NULL;
    g_autoptr(PbStore) s = pb_store_open(path, TRUE, &e);
    g_assert_no_error(e);
    gsize len = 3 * 4096 + 123;
    void *mem = NULL;
    g_assert_cmpint(posix_memalign(&mem, 4096, len + 1), ==, 0);
    guint8 *buf = mem;
    for (guint k = 0; k < 2; k++) {
        guint8 *at = buf + k; /* k 1: not aligned */
        for (gsize i = 0; i < len; i++)
            at[i] = (guint8)(i * 7 + k);
        PbChunkRef r = {.kind = PB_CHUNK_DATA, .codec = PB_CODEC_NONE, .stored = len};
        pb_sha256(at, len, r.hash);
        g_assert_true(pb_store_put_chunk_direct(s, r.hash, PB_CODEC_NONE, at, len, &e));
        g_assert_no_error(e);
        g_assert_true(pb_store_flush(s, &e));
        g_assert_no_error(e);
        PbCodec codec;
        g_autoptr(GBytes) back = pb_store_get_chunk(s, &r, &codec, &e);
        g_assert_no_error(e);
        g_assert_cmpint(codec, ==, PB_CODEC_NONE);
        g_assert_cmpmem(g_bytes_get_data(back, NULL), g_bytes_get_size(back), at, len);
    }
    free(mem);
    g_clear_pointer(&s, pb_store_close);
    rm_rf(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/image/manifest/roundtrip", test_manifest_roundtrip);
    g_test_add_func("/image/manifest/data-hashes", test_manifest_data_hashes);
    g_test_add_func("/image/manifest/refusals", test_manifest_refusals);
    g_test_add_func("/image/chunk/coding", test_chunk_coding);
    g_test_add_func("/image/chunk/delta", test_delta);
    g_test_add_func("/image/domain", test_domain);
    g_test_add_func("/image/ref", test_ref);
    g_test_add_func("/image/store", test_store);
    g_test_add_func("/image/store/direct", test_store_direct);
    return g_test_run();
}
