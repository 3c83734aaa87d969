/* preboot-img - capture, restore, inspect and move disk images (preboot-img(8)). This file
 * only turns arguments into calls of lib/image and prints results: progress on a terminal,
 * a plain line every few seconds otherwise, one JSON object with --json. */
#include "build-config.h"

#include "image-engine.h"
#include "image-pbi.h"
#include "preboot-img-session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    gboolean json;
    gboolean delta;
    gboolean no_used_map;
    int partition;
    GArray *partitions;
    PbCodec codec;
    int level;
    guint32 chunk_size;
    guint threads;
} Opts;

/* ---- progress ------------------------------------------------------------------------- */

typedef struct {
    const char *what;
    gboolean tty, quiet, finished;
    gint64 start, last;
} Progress;

static void human(guint64 b, char *out, gsize n)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    g_snprintf(out, n, i == 0 ? "%.0f %s" : "%.1f %s", v, u[i]);
}

static void progress_cb(guint64 done, guint64 total, void *data)
{
    Progress *p = data;
    if (p->quiet || p->finished)
        return;
    gint64 now = g_get_monotonic_time();
    gint64 every = p->tty ? 200000 : 5000000;
    if (now - p->last < every && done < total)
        return;
    if (!p->tty && done >= total && now - p->start < every)
        return; /* short job: the result line says it all */
    p->last = now;
    p->finished = done >= total;
    double secs = (double)(now - p->start) / 1e6;
    double rate = secs > 0 ? (double)done / secs : 0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    char d[32], t[32], r[32];
    human(done, d, sizeof(d));
    human(total, t, sizeof(t));
    human((guint64)rate, r, sizeof(r));
    int pct = total > 0 ? (int)(done * 100 / total) : 100;
    if (p->tty) {
        char bar[31];
        int fill = pct * 30 / 100;
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r%s [%s] %3d%% %s / %s  %s/s  ETA %d:%02d ", p->what, bar, pct, d, t, r,
                (int)eta / 60, (int)eta % 60);
        if (done >= total)
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s: %d%% %s of %s, %s/s, ETA %ds\n", p->what, pct, d, t, r, (int)eta);
    }
    fflush(stderr);
}

static void progress_init(Progress *p, const char *what, const Opts *o)
{
    p->what = what;
    p->tty = isatty(STDERR_FILENO);
    p->quiet = o->json;
    p->start = p->last = g_get_monotonic_time();
}

/* ---- helpers -------------------------------------------------------------------------- */

static int fail(const char *cmd, GError *e)
{
    fprintf(stderr, "preboot-img %s: %s\n", cmd, e->message);
    g_error_free(e);
    return 1;
}

static PbStore *open_ref(const char *arg, gboolean want_name, gboolean create, PbRef *ref,
                         GError **error)
{
    if (!pb_ref_parse(arg, want_name, ref, error))
        return NULL;
    if (ref->kind == PB_REF_SERVER) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                    "\"%s\" names a server (%s); this preboot-img works on local stores only: "
                    "write a directory as dir:PATH or with a '/', e.g. ./%s",
                    arg, ref->location, arg);
        return NULL;
    }
    return pb_store_open(ref->location, create, error);
}

static double elapsed(gint64 start)
{
    return (double)(g_get_monotonic_time() - start) / 1e6;
}

/* ---- commands ------------------------------------------------------------------------- */

static int cmd_make(const char *disk, const char *target, Opts *o)
{
    GError *e = NULL;
    PbRef ref;
    g_autoptr(PbStore) store = open_ref(target, TRUE, TRUE, &ref, &e);
    if (store == NULL)
        return fail("make", e);
    PbChunkIO io;
    pb_store_chunk_io(store, &io);
    Progress p;
    progress_init(&p, "capture", o);
    PbCaptureOptions co = {.codec = o->codec,
                           .level = o->level,
                           .chunk_size = o->chunk_size,
                           .partitions = o->partitions != NULL ? (int *)o->partitions->data : NULL,
                           .n_partitions = o->partitions != NULL ? o->partitions->len : 0,
                           .no_used_map = o->no_used_map,
                           .threads = o->threads,
                           .progress = progress_cb,
                           .progress_data = &p};
    PbCaptureStats st;
    gint64 t0 = g_get_monotonic_time();
    g_autoptr(PbManifest) m = pb_capture(disk, &io, &co, &st, &e);
    if (m == NULL || !pb_store_put_manifest(store, ref.name, m, &e)) {
        pb_ref_clear(&ref);
        return fail("make", e);
    }
    char hex[PB_HASH_HEX_LEN + 1];
    pb_hash_to_hex(m->seal, hex);
    double secs = elapsed(t0);
    if (o->json)
        printf("{\"command\":\"make\",\"image\":\"%s\",\"seal\":\"%s\",\"disk_size\":"
               "%" G_GUINT64_FORMAT ",\"bytes_read\":%" G_GUINT64_FORMAT
               ",\"chunks_data\":%u,\"chunks_new\":%u,\"chunks_zero\":%u,\"chunks_unused\":%u,"
               "\"chunks_absent\":%u,\"bytes_new_stored\":%" G_GUINT64_FORMAT
               ",\"partitions_mapped\":%u,\"seconds\":%.3f}\n",
               ref.name, hex, m->disk_size, st.bytes_read, st.chunks_data, st.chunks_new,
               st.chunks_zero, st.chunks_unused, st.chunks_absent, st.bytes_new_stored,
               st.partitions_mapped, secs);
    else {
        char r[32], n[32];
        human(st.bytes_read, r, sizeof(r));
        human(st.bytes_new_stored, n, sizeof(n));
        printf("captured %s as %s: read %s, %u data chunks (%u new, %s stored), %u zero, "
               "%u unused (used-block map for %u partitions), %.1f s\n",
               disk, ref.name, r, st.chunks_data, st.chunks_new, n, st.chunks_zero,
               st.chunks_unused, st.partitions_mapped, secs);
    }
    pb_ref_clear(&ref);
    return 0;
}

static int cmd_restore(const char *source, const char *disk, Opts *o)
{
    GError *e = NULL;
    PbRef ref;
    g_autoptr(PbStore) store = open_ref(source, TRUE, FALSE, &ref, &e);
    g_autoptr(PbManifest) m = store != NULL ? pb_store_get_manifest(store, ref.name, &e) : NULL;
    if (m == NULL) {
        pb_ref_clear(&ref);
        return fail("restore", e);
    }
    PbChunkIO io;
    pb_store_chunk_io(store, &io);
    Progress p;
    progress_init(&p, o->delta ? "delta restore" : "restore", o);
    PbRestoreOptions ro = {.partition = o->partition,
                           .delta = o->delta,
                           .threads = o->threads,
                           .progress = progress_cb,
                           .progress_data = &p};
    PbRestoreStats st;
    gint64 t0 = g_get_monotonic_time();
    gboolean ok = pb_restore(m, &io, disk, &ro, &st, &e);
    double secs = elapsed(t0);
    if (o->json)
        printf("{\"command\":\"restore\",\"image\":\"%s\",\"ok\":%s,\"partial\":%s,"
               "\"delta\":%s,\"bytes_total\":%" G_GUINT64_FORMAT
               ",\"bytes_written\":%" G_GUINT64_FORMAT ",\"chunks_written\":%u,\"chunks_same\":%u,"
               "\"chunks_skipped\":%u,\"gpt_moved\":%s,\"seconds\":%.3f}\n",
               ref.name, ok ? "true" : "false", st.partial ? "true" : "false",
               o->delta ? "true" : "false", st.bytes_total, st.bytes_written, st.chunks_written,
               st.chunks_same, st.chunks_skipped, st.gpt_moved ? "true" : "false", secs);
    pb_ref_clear(&ref);
    if (!ok)
        return fail("restore", e);
    if (!o->json) {
        char w[32];
        human(st.bytes_written, w, sizeof(w));
        printf("restored onto %s: wrote %s in %u chunks, %u unchanged, %u skipped%s, %.1f s\n",
               disk, w, st.chunks_written, st.chunks_same, st.chunks_skipped,
               st.gpt_moved ? ", GPT backup moved to the end" : "", secs);
    }
    return 0;
}

static int cmd_info(const char *source, Opts *o)
{
    GError *e = NULL;
    PbRef ref;
    g_autoptr(PbStore) store = open_ref(source, TRUE, FALSE, &ref, &e);
    g_autoptr(PbManifest) m = store != NULL ? pb_store_get_manifest(store, ref.name, &e) : NULL;
    if (m == NULL) {
        pb_ref_clear(&ref);
        return fail("info", e);
    }
    PbManifestStats st;
    pb_manifest_stats(m, &st);
    char hex[PB_HASH_HEX_LEN + 1];
    pb_hash_to_hex(m->seal, hex);
    double dedup =
        st.unique_stored_bytes > 0 ? (double)st.stored_bytes / (double)st.unique_stored_bytes : 1.0;
    double ratio = st.stored_bytes > 0 ? (double)st.data_bytes / (double)st.stored_bytes : 1.0;
    guint zstd = 0;
    for (guint i = 0; i < m->chunks->len; i++) {
        const PbChunkRef *c = &g_array_index(m->chunks, PbChunkRef, i);
        zstd += c->kind == PB_CHUNK_DATA && c->codec == PB_CODEC_ZSTD;
    }
    if (o->json) {
        printf("{\"image\":\"%s\",\"seal\":\"%s\",\"disk_size\":%" G_GUINT64_FORMAT
               ",\"sector_size\":%u,\"chunk_size\":%u,\"label\":\"%s\",\"chunks_data\":%u,"
               "\"chunks_unique\":%u,\"chunks_zstd\":%u,\"chunks_zero\":%u,\"chunks_unused\":%u,"
               "\"chunks_absent\":%u,\"data_bytes\":%" G_GUINT64_FORMAT
               ",\"stored_bytes\":%" G_GUINT64_FORMAT ",\"unique_stored_bytes\":%" G_GUINT64_FORMAT
               ",\"dedup_ratio\":%.3f,\"compression_ratio\":%.3f,"
               "\"partitions\":[",
               ref.name, hex, m->disk_size, m->sector_size, m->chunk_size, m->label, st.n_data,
               st.n_unique, zstd, st.n_zero, st.n_unused, st.n_absent, st.data_bytes,
               st.stored_bytes, st.unique_stored_bytes, dedup, ratio);
        for (guint i = 0; i < m->partitions->len; i++) {
            const PbPartition *pt = &g_array_index(m->partitions, PbPartition, i);
            g_autofree char *type = g_strescape(pt->type != NULL ? pt->type : "", NULL);
            g_autofree char *fs = g_strescape(pt->fs != NULL ? pt->fs : "", NULL);
            printf("%s{\"number\":%d,\"start\":%" G_GUINT64_FORMAT ",\"size\":%" G_GUINT64_FORMAT
                   ",\"type\":\"%s\",\"fs\":\"%s\"}",
                   i ? "," : "", pt->partno, pt->start, pt->size, type, fs);
        }
        printf("]}\n");
    } else {
        char b1[32], b2[32], b3[32];
        human(m->disk_size, b1, sizeof(b1));
        printf("image %s\n  seal       sha256 %s\n  disk       %s (%" G_GUINT64_FORMAT
               " bytes), %u-byte sectors, label %s%s%s\n",
               ref.name, hex, b1, m->disk_size, m->sector_size, m->label, m->disk_id ? ", id " : "",
               m->disk_id ? m->disk_id : "");
        for (guint i = 0; i < m->partitions->len; i++) {
            const PbPartition *pt = &g_array_index(m->partitions, PbPartition, i);
            const PbRegion *r = pb_manifest_region_for(m, pt->partno);
            guint64 used = 0;
            for (guint c = 0; r != NULL && c < r->n_chunks; c++) {
                const PbChunkRef *cr = &g_array_index(m->chunks, PbChunkRef, r->first_chunk + c);
                if (cr->kind == PB_CHUNK_DATA)
                    used += pb_region_chunk_len(m, r, c);
            }
            human(pt->size, b1, sizeof(b1));
            human(used, b2, sizeof(b2));
            printf("  partition %d  start %" G_GUINT64_FORMAT "  size %s  used %s  type %s  "
                   "fs %s%s%s\n",
                   pt->partno, pt->start, b1, b2, pt->type ? pt->type : "-", pt->fs ? pt->fs : "-",
                   pt->name ? "  name " : "", pt->name ? pt->name : "");
        }
        human(st.data_bytes, b1, sizeof(b1));
        human(st.stored_bytes, b2, sizeof(b2));
        human(st.unique_stored_bytes, b3, sizeof(b3));
        printf("  chunks     %u data (%u distinct, %u zstd), %u zero, %u unused, %u not "
               "captured; chunk size %u\n",
               st.n_data, st.n_unique, zstd, st.n_zero, st.n_unused, st.n_absent, m->chunk_size);
        printf("  bytes      %s of data stored as %s (ratio %.2f), %s after dedup (ratio "
               "%.2f)\n",
               b1, b2, ratio, b3, dedup);
    }
    pb_ref_clear(&ref);
    return 0;
}

static int cmd_verify(const char *source, Opts *o)
{
    GError *e = NULL;
    PbRef ref;
    g_autoptr(PbStore) store = open_ref(source, TRUE, FALSE, &ref, &e);
    g_autoptr(PbManifest) m = store != NULL ? pb_store_get_manifest(store, ref.name, &e) : NULL;
    if (m == NULL) {
        if (o->json)
            printf("{\"command\":\"verify\",\"ok\":false,\"seal_ok\":false}\n");
        pb_ref_clear(&ref);
        return fail("verify", e);
    }
    PbChunkIO io;
    pb_store_chunk_io(store, &io);
    Progress p;
    progress_init(&p, "verify", o);
    PbVerifyStats st;
    gboolean ok = pb_verify(m, &io, o->threads, progress_cb, &p, &st, &e);
    if (o->json)
        printf("{\"command\":\"verify\",\"image\":\"%s\",\"ok\":%s,\"seal_ok\":true,"
               "\"chunks_checked\":%u,\"chunks_bad\":%u}\n",
               ref.name, ok ? "true" : "false", st.chunks_checked, st.chunks_bad);
    pb_ref_clear(&ref);
    if (!ok)
        return fail("verify", e);
    if (!o->json)
        printf("image %s: seal and %u chunks OK\n", source, st.chunks_checked);
    return 0;
}

static int cmd_gc(const char *arg, Opts *o)
{
    GError *e = NULL;
    PbRef ref;
    g_autoptr(PbStore) store = open_ref(arg, FALSE, FALSE, &ref, &e);
    pb_ref_clear(&ref);
    PbGcStats st;
    if (store == NULL || !pb_store_gc(store, &st, &e))
        return fail("gc", e);
    if (o->json)
        printf("{\"command\":\"gc\",\"chunks_kept\":%u,\"chunks_removed\":%u,"
               "\"bytes_removed\":%" G_GUINT64_FORMAT ",\"temps_removed\":%u}\n",
               st.chunks_kept, st.chunks_removed, st.bytes_removed, st.temps_removed);
    else
        printf("gc: kept %u chunks, removed %u (%" G_GUINT64_FORMAT " bytes) and %u "
               "temporary files\n",
               st.chunks_kept, st.chunks_removed, st.bytes_removed, st.temps_removed);
    return 0;
}

static int cmd_list(const char *arg, Opts *o)
{
    GError *e = NULL;
    PbRef ref;
    g_autoptr(PbStore) store = open_ref(arg, FALSE, FALSE, &ref, &e);
    pb_ref_clear(&ref);
    g_autoptr(GPtrArray) names = store != NULL ? pb_store_list(store, &e) : NULL;
    if (names == NULL)
        return fail("list", e);
    if (o->json) {
        printf("[");
        for (guint i = 0; i < names->len; i++)
            printf("%s\"%s\"", i ? "," : "", (char *)names->pdata[i]);
        printf("]\n");
    } else
        for (guint i = 0; i < names->len; i++)
            printf("%s\n", (char *)names->pdata[i]);
    return 0;
}

static int cmd_delete(const char *arg, Opts *o)
{
    GError *e = NULL;
    PbRef ref;
    g_autoptr(PbStore) store = open_ref(arg, TRUE, FALSE, &ref, &e);
    gboolean ok = store != NULL && pb_store_delete_manifest(store, ref.name, &e);
    pb_ref_clear(&ref);
    if (!ok)
        return fail("delete", e);
    if (!o->json)
        printf("deleted %s (its chunks go at the next gc)\n", arg);
    return 0;
}

/* export STORE:NAME FILE: a .pbi archive when FILE ends in .pbi or is "-", else a raw disk
 * image file (a restore onto a new regular file). */
static int cmd_export(const char *source, const char *file, Opts *o)
{
    if (!g_str_has_suffix(file, ".pbi") && strcmp(file, "-") != 0) {
        if (g_file_test(file, G_FILE_TEST_EXISTS)) {
            fprintf(stderr, "preboot-img export: %s exists; a raw export writes a new file\n",
                    file);
            return 1;
        }
        return cmd_restore(source, file, o);
    }
    GError *e = NULL;
    PbRef ref;
    g_autoptr(PbStore) store = open_ref(source, TRUE, FALSE, &ref, &e);
    g_autoptr(PbManifest) m = store != NULL ? pb_store_get_manifest(store, ref.name, &e) : NULL;
    pb_ref_clear(&ref);
    if (m == NULL)
        return fail("export", e);
    PbChunkIO io;
    pb_store_chunk_io(store, &io);
    PbArchiveStats st;
    if (strcmp(file, "-") == 0) {
        if (!pb_archive_export(m, &io, STDOUT_FILENO, &st, &e))
            return fail("export", e);
        return 0;
    }
    /* Written beside its final name and renamed when complete. */
    g_autofree char *tmp = g_strconcat(file, ".partial", NULL);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "preboot-img export: %s: %s\n", tmp, g_strerror(errno));
        return 1;
    }
    gboolean ok = pb_archive_export(m, &io, fd, &st, &e);
    if (ok && (fsync(fd) != 0 || rename(tmp, file) != 0)) {
        g_set_error(&e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO, "%s: %s", file, g_strerror(errno));
        ok = FALSE;
    }
    close(fd);
    if (!ok) {
        unlink(tmp);
        return fail("export", e);
    }
    if (o->json)
        printf("{\"command\":\"export\",\"chunks\":%u,\"bytes\":%" G_GUINT64_FORMAT "}\n",
               st.chunks, st.bytes);
    else
        printf("exported %u chunks, %" G_GUINT64_FORMAT " bytes to %s\n", st.chunks, st.bytes,
               file);
    return 0;
}

/* import FILE STORE:NAME: a .pbi archive (recognised by its magic; "-" reads one from
 * stdin), else a raw disk image file (a capture of it). */
static int cmd_import(const char *file, const char *target, Opts *o)
{
    int fd = strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "preboot-img import: %s: %s\n", file, g_strerror(errno));
        return 1;
    }
    guint8 head[8];
    gsize got = 0;
    while (got < sizeof(head)) {
        ssize_t n = read(fd, head + got, sizeof(head) - got);
        if (n <= 0)
            break;
        got += (gsize)n;
    }
    if (got < 8 || memcmp(head, PB_ARCHIVE_MAGIC, 8) != 0) {
        if (fd != STDIN_FILENO)
            close(fd);
        if (fd == STDIN_FILENO) {
            fprintf(stderr, "preboot-img import: stdin is not a .pbi archive\n");
            return 1;
        }
        return cmd_make(file, target, o);
    }
    GError *e = NULL;
    PbRef ref;
    g_autoptr(PbStore) store = open_ref(target, TRUE, TRUE, &ref, &e);
    PbArchiveStats st;
    gboolean ok = store != NULL && pb_archive_import(fd, head, got, store, ref.name, &st, &e);
    if (fd != STDIN_FILENO)
        close(fd);
    pb_ref_clear(&ref);
    if (!ok)
        return fail("import", e);
    if (o->json)
        printf("{\"command\":\"import\",\"chunks\":%u,\"bytes\":%" G_GUINT64_FORMAT "}\n",
               st.chunks, st.bytes);
    else
        printf("imported %u chunks, %" G_GUINT64_FORMAT " bytes from %s\n", st.chunks, st.bytes,
               file);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: preboot-img COMMAND ARGS [OPTIONS]\n"
               "  make DISK STORE:NAME [--partitions 1,3] [--codec zstd|none] [--level N]\n"
               "                       [--chunk-size BYTES] [--no-used-map]\n"
               "  restore STORE:NAME DISK [--partition N] [--delta]\n"
               "  info STORE:NAME | verify STORE:NAME | delete STORE:NAME | list STORE | gc STORE\n"
               "  export STORE:NAME FILE.pbi|RAWFILE|-   import FILE.pbi|RAWFILE|- STORE:NAME\n"
               "  session NAME [client] DISK [--server ADDR] [--delta]   (multicast)\n"
               "common: [--json] [--threads N]\n"
               "STORE is a directory: dir:PATH, or a path with a '/' (./images:NAME).\n"
               "See preboot-img(8).\n");
}

static gboolean parse_uint(const char *s, guint64 max, guint64 *out)
{
    char *end;
    errno = 0;
    guint64 v = g_ascii_strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v > max || *s == '-')
        return FALSE;
    *out = v;
    return TRUE;
}

int main(int argc, char **argv)
{
    Opts o = {.codec = PB_CODEC_ZSTD, .level = 3};
    /* the multicast client parses its own options (preboot-img-session.c) */
    if (argc > 1 && strcmp(argv[1], "session") == 0)
        return preboot_img_session(argc - 1, argv + 1);
    GPtrArray *args = g_ptr_array_new();
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        guint64 v;
        if (strcmp(a, "--json") == 0)
            o.json = TRUE;
        else if (strcmp(a, "--delta") == 0)
            o.delta = TRUE;
        else if (strcmp(a, "--no-used-map") == 0)
            o.no_used_map = TRUE;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--version") == 0) {
            printf("preboot-img %s (image format %d)\n", PACKAGE_VERSION, PB_IMAGE_FORMAT_VERSION);
            rc = 0;
            goto out;
        } else if (val != NULL && strcmp(a, "--partition") == 0 &&
                   parse_uint(val, PB_PARTITIONS_MAX, &v) && v > 0) {
            o.partition = (int)v;
            i++;
        } else if (val != NULL && strcmp(a, "--partitions") == 0) {
            g_auto(GStrv) list = g_strsplit(val, ",", -1);
            o.partitions = g_array_new(FALSE, FALSE, sizeof(int));
            for (guint k = 0; list[k] != NULL; k++) {
                if (!parse_uint(list[k], PB_PARTITIONS_MAX, &v) || v == 0) {
                    fprintf(stderr, "preboot-img: bad partition number \"%s\"\n", list[k]);
                    goto out;
                }
                int n = (int)v;
                g_array_append_val(o.partitions, n);
            }
            i++;
        } else if (val != NULL && strcmp(a, "--codec") == 0 && pb_codec_parse(val, &o.codec)) {
            i++;
        } else if (val != NULL && strcmp(a, "--level") == 0 && parse_uint(val, 19, &v) && v >= 1) {
            o.level = (int)v;
            i++;
        } else if (val != NULL && strcmp(a, "--threads") == 0 && parse_uint(val, 64, &v)) {
            o.threads = (guint)v;
            i++;
        } else if (val != NULL && strcmp(a, "--chunk-size") == 0 &&
                   parse_uint(val, PB_CHUNK_SIZE_MAX, &v) && v >= PB_CHUNK_SIZE_MIN &&
                   (v & (v - 1)) == 0) {
            o.chunk_size = (guint32)v;
            i++;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "preboot-img: unknown option or bad value: %s%s%s\n", a, val ? " " : "",
                    val ? val : "");
            goto out;
        } else
            g_ptr_array_add(args, (char *)a);
    }
    const char *cmd = args->len > 0 ? args->pdata[0] : NULL;
    const char *a1 = args->len > 1 ? args->pdata[1] : NULL;
    const char *a2 = args->len > 2 ? args->pdata[2] : NULL;
    guint n = args->len;
    if (cmd == NULL)
        usage(stderr);
    else if (strcmp(cmd, "make") == 0 && n == 3)
        rc = cmd_make(a1, a2, &o);
    else if (strcmp(cmd, "restore") == 0 && n == 3)
        rc = cmd_restore(a1, a2, &o);
    else if (strcmp(cmd, "info") == 0 && n == 2)
        rc = cmd_info(a1, &o);
    else if (strcmp(cmd, "verify") == 0 && n == 2)
        rc = cmd_verify(a1, &o);
    else if (strcmp(cmd, "list") == 0 && n == 2)
        rc = cmd_list(a1, &o);
    else if (strcmp(cmd, "delete") == 0 && n == 2)
        rc = cmd_delete(a1, &o);
    else if (strcmp(cmd, "gc") == 0 && n == 2)
        rc = cmd_gc(a1, &o);
    else if (strcmp(cmd, "export") == 0 && n == 3)
        rc = cmd_export(a1, a2, &o);
    else if (strcmp(cmd, "import") == 0 && n == 3)
        rc = cmd_import(a1, a2, &o);
    else
        usage(stderr);
out:
    if (o.partitions != NULL)
        g_array_unref(o.partitions);
    g_ptr_array_unref(args);
    return rc;
}
