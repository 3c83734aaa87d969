/* preboot-img - capture, restore, inspect and move disk images (preboot-img(8)). This file
 * only turns arguments into calls of lib/image and prints results: progress on a terminal,
 * a plain line every few seconds otherwise, one JSON object with --json. */
#include "build-config.h"

#include "image-engine.h"
#include "image-http.h"
#include "image-pbi.h"
#include "mcast.h"
#include "net.h"
#include "preboot-img-session.h"

#include <dirent.h>
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
    /* network */
    char *token_file;
    char *ca_file;
    gboolean create_only;
    guint retry_seconds;
    guint session_wait; /* auto, session work: for the announcement, and a silent sender */
    const char *mac, *uuid, *serial;
    const char *base; /* make: image to code deltas against, "newest"; NULL or "none": none */
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
    memset(p, 0, sizeof(*p));
    p->what = what;
    p->tty = isatty(STDERR_FILENO);
    p->quiet = o->json;
    p->start = p->last = g_get_monotonic_time();
}

/* ---- helpers -------------------------------------------------------------------------- */

/* A JSON string body: quotes, backslashes and control bytes escaped, UTF-8 as it is. */
static char *json_str(const char *v)
{
    GString *s = g_string_new(NULL);
    for (const unsigned char *p = (const unsigned char *)(v != NULL ? v : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_printf(s, "\\%c", *p);
        else if (*p < 0x20)
            g_string_append_printf(s, "\\u%04x", *p);
        else
            g_string_append_c(s, (char)*p);
    }
    return g_string_free(s, FALSE);
}

static int fail(const char *cmd, GError *e)
{
    fprintf(stderr, "preboot-img %s: %s\n", cmd, e->message);
    g_error_free(e);
    return 1;
}

/* A STORE argument opened: a local store or an imaging server (pb_ref_parse's rule). */
typedef struct {
    PbRef ref;
    PbStore *store;
    PbHttp *http;
    PbChunkIO io;
} Target;

static void target_close(Target *t)
{
    g_clear_pointer(&t->store, pb_store_close);
    g_clear_pointer(&t->http, pb_http_free);
    pb_ref_clear(&t->ref);
}

/* The credential: --token-file, else $PREBOOT_TOKEN, else none (downloads may not need
 * one). Never taken from the command line, where ps and shell histories would show it. */
static gboolean read_token(const Opts *o, char **token, GError **error)
{
    *token = NULL;
    if (o->token_file != NULL) {
        *token = pb_http_read_token(o->token_file, error);
        return *token != NULL;
    }
    const char *env = g_getenv("PREBOOT_TOKEN");
    if (env != NULL && *env != '\0')
        *token = g_strdup(env);
    return TRUE;
}

static gboolean target_open(Target *t, const char *arg, gboolean want_name, gboolean create,
                            gboolean server_ok, const Opts *o, GError **error)
{
    memset(t, 0, sizeof(*t));
    if (!pb_ref_parse(arg, want_name, &t->ref, error))
        return FALSE;
    if (t->ref.kind == PB_REF_SERVER) {
        if (!server_ok) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                        "\"%s\" names a server (%s); this command works on a local store only "
                        "(a directory is dir:PATH or a path with a '/', e.g. ./%s)",
                        arg, t->ref.location, arg);
            return FALSE;
        }
        g_autofree char *token = NULL;
        if (!read_token(o, &token, error))
            return FALSE;
        t->http = pb_http_new(t->ref.location, token, o->retry_seconds, error);
        if (t->http == NULL)
            return FALSE;
        pb_http_set_ca_file(t->http, o->ca_file);
        pb_http_chunk_io(t->http, &t->io);
        return TRUE;
    }
    t->store = pb_store_open(t->ref.location, create, error);
    if (t->store == NULL)
        return FALSE;
    pb_store_chunk_io(t->store, &t->io);
    return TRUE;
}

/* A server that cannot be reached, named without a scheme or port, may be a directory
 * written without its '/': say how to write one. */
static void hint_server(const Target *t, GError **error)
{
    const char *loc = t->ref.location;
    if (t->http == NULL || error == NULL || *error == NULL ||
        !g_error_matches(*error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO) || strchr(loc, ':') != NULL)
        return;
    g_prefix_error(error,
                   "\"%s\" names a server (a directory is dir:PATH or a path with a '/', "
                   "e.g. ./%s): ",
                   loc, loc);
}

static PbManifest *target_manifest(Target *t, GError **error)
{
    if (t->http == NULL)
        return pb_store_get_manifest(t->store, t->ref.name, error);
    PbManifest *m = pb_http_get_manifest(t->http, t->ref.name, error);
    if (m == NULL)
        hint_server(t, error);
    return m;
}

/* An image to read (restore, info, verify, export): source opened and its manifest fetched,
 * or NULL with error. t is to be closed (target_close) either way. */
static PbManifest *target_open_manifest(Target *t, const char *source, const Opts *o,
                                        GError **error)
{
    if (!target_open(t, source, TRUE, FALSE, TRUE, o, error))
        return NULL;
    return target_manifest(t, error);
}

/* ",\"net\":{...}" for --json: what the network cost, so a resumed transfer can be checked
 * for chunks sent or fetched twice. */
static void print_net_json(Target *t)
{
    if (t->http == NULL)
        return;
    PbHttpStats ns;
    pb_http_get_stats(t->http, &ns);
    printf(",\"server\":\"%s\",\"net\":{\"chunk_puts\":%" G_GUINT64_FORMAT
           ",\"chunk_gets\":%" G_GUINT64_FORMAT ",\"chunk_heads\":%" G_GUINT64_FORMAT
           ",\"missing_queries\":%" G_GUINT64_FORMAT ",\"bytes_sent\":%" G_GUINT64_FORMAT
           ",\"bytes_received\":%" G_GUINT64_FORMAT ",\"retries\":%" G_GUINT64_FORMAT "}",
           pb_http_base(t->http), ns.chunk_puts, ns.chunk_gets, ns.chunk_heads, ns.missing_queries,
           ns.bytes_sent, ns.bytes_received, ns.retries);
}

static double elapsed(gint64 start)
{
    return (double)(g_get_monotonic_time() - start) / 1e6;
}

/* ---- commands ------------------------------------------------------------------------- */

/* Re-reads, codes and uploads the chunks a commit was refused for (409): the server lost
 * them (a gc, a failed disk) or another client's upload raced ours. */
static gboolean upload_missing(const char *disk, const PbManifest *m, PbChunkIO *io,
                               GPtrArray *missing, const Opts *o, GError **error)
{
    g_autoptr(GHashTable) want = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < missing->len; i++)
        g_hash_table_add(want, missing->pdata[i]);
    PbDisk d;
    if (!pb_disk_open(&d, disk, FALSE, 0, error))
        return FALSE;
    g_autofree guint8 *buf = g_malloc(m->chunk_size);
    gboolean ok = TRUE;
    for (guint ri = 0; ok && ri < m->regions->len; ri++) {
        const PbRegion *r = &g_array_index(m->regions, PbRegion, ri);
        for (guint c = 0; ok && c < r->n_chunks; c++) {
            const PbChunkRef *ref = &g_array_index(m->chunks, PbChunkRef, r->first_chunk + c);
            char hex[PB_HASH_HEX_LEN + 1];
            if (ref->kind != PB_CHUNK_DATA)
                continue;
            pb_hash_to_hex(ref->hash, hex);
            if (!g_hash_table_remove(want, hex))
                continue;
            guint64 off = r->offset + (guint64)c * m->chunk_size;
            gsize len = pb_region_chunk_len(m, r, c);
            if (pread(d.fd, buf, len, (off_t)off) != (ssize_t)len) {
                g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_IO,
                            "%s: read at %" G_GUINT64_FORMAT " failed", disk, off);
                ok = FALSE;
                break;
            }
            guint8 h[PB_HASH_LEN];
            pb_sha256(buf, len, h);
            if (memcmp(h, ref->hash, PB_HASH_LEN) != 0) {
                g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT,
                            "%s changed since it was captured (offset %" G_GUINT64_FORMAT
                            "); capture it again",
                            disk, off);
                ok = FALSE;
                break;
            }
            PbCodec used;
            g_autoptr(GBytes) coded =
                pb_chunk_encode((PbCodec)ref->codec, o->level, buf, len, &used);
            gsize n;
            const void *data = g_bytes_get_data(coded, &n);
            ok = io->put(io->self, ref->hash, used, data, n, error);
        }
    }
    pb_disk_close(&d);
    if (ok && g_hash_table_size(want) > 0) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                    "the server asked for %u chunks this image does not name",
                    g_hash_table_size(want));
        ok = FALSE;
    }
    return ok;
}

/* Commits an image to a server: PUT images/NAME; on 409 the chunks it lacks are uploaded
 * again from the disk and the commit repeated (a few rounds, then it gives up). */
static gboolean commit_remote(Target *t, const char *disk, PbManifest *m, const Opts *o,
                              GError **error)
{
    for (int round = 0;; round++) {
        GPtrArray *missing = NULL;
        GError *e = NULL;
        if (pb_http_commit(t->http, t->ref.name, m, o->create_only, NULL, &missing, &e))
            return TRUE;
        if (missing == NULL || round == 3) {
            if (missing != NULL)
                g_ptr_array_unref(missing);
            g_propagate_error(error, e);
            return FALSE;
        }
        g_debug("%s; uploading them again", e->message);
        g_error_free(e);
        gboolean ok = upload_missing(disk, m, &t->io, missing, o, error);
        g_ptr_array_unref(missing);
        if (!ok)
            return FALSE;
    }
}

static PbManifest *do_capture(const char *disk, Target *t, const Opts *o, PbCaptureStats *st,
                              GError **error)
{
    if (t->http != NULL) {
        /* Capturing again under an existing name: one batched question tells which of the
         * old image's chunks the server holds, so unchanged ones are not even asked about. */
        g_autoptr(GError) e = NULL;
        g_autoptr(PbManifest) old = pb_http_get_manifest(t->http, t->ref.name, &e);
        GPtrArray *lack = old != NULL ? pb_http_missing(t->http, old, &e) : NULL;
        if (lack != NULL)
            g_ptr_array_unref(lack);
        if (e != NULL && !g_error_matches(e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING))
            g_debug("the previous image: %s", e->message);
    }
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
    /* Asked for (--base newest|NAME), a second capture into a local store codes its changed
     * chunks as deltas against a previous image (chunks matched by disk offset). Not by
     * default: a server verifies each chunk on its own and a multicast receiver restores
     * from one session's chunks, and neither can resolve a base. */
    g_autoptr(PbManifest) base = NULL;
    if (t->http == NULL && t->store != NULL) {
        PbDisk d;
        if (o->base != NULL && strcmp(o->base, "newest") == 0 &&
            pb_disk_open(&d, disk, FALSE, 0, NULL)) {
            guint64 size = d.size;
            pb_disk_close(&d);
            base = pb_store_newest_manifest(
                t->store, size, o->chunk_size != 0 ? o->chunk_size : PB_CHUNK_SIZE_DEFAULT, NULL,
                NULL);
        } else if (o->base != NULL && strcmp(o->base, "none") != 0 &&
                   strcmp(o->base, "newest") != 0 &&
                   (base = pb_store_get_manifest(t->store, o->base, error)) == NULL) {
            return NULL;
        }
    }
    co.base = base;
    /* Chunks go to a server in the background while the next ones are compressed; the
     * commit waits for them (and fails with the first that did not get there). */
    if (t->http != NULL)
        pb_http_set_put_queue(t->http, PB_HTTP_PUT_QUEUE);
    g_autoptr(PbManifest) m = pb_capture(disk, &t->io, &co, st, error);
    if (m == NULL)
        return NULL;
    gboolean ok = t->http != NULL ? commit_remote(t, disk, m, o, error)
                                  : pb_store_put_manifest(t->store, t->ref.name, m, error);
    return ok ? g_steal_pointer(&m) : NULL;
}

static int cmd_make(const char *disk, const char *target, Opts *o)
{
    GError *e = NULL;
    Target t;
    if (!target_open(&t, target, TRUE, TRUE, TRUE, o, &e)) {
        target_close(&t);
        return fail("make", e);
    }
    PbCaptureStats st;
    gint64 t0 = g_get_monotonic_time();
    g_autoptr(PbManifest) m = do_capture(disk, &t, o, &st, &e);
    if (m == NULL) {
        hint_server(&t, &e);
        if (o->json) {
            printf("{\"command\":\"make\",\"ok\":false");
            print_net_json(&t);
            printf("}\n");
        }
        target_close(&t);
        return fail("make", e);
    }
    char hex[PB_HASH_HEX_LEN + 1];
    pb_hash_to_hex(m->seal, hex);
    double secs = elapsed(t0);
    if (o->json) {
        printf("{\"command\":\"make\",\"ok\":true,\"image\":\"%s\",\"seal\":\"%s\",\"disk_size\":"
               "%" G_GUINT64_FORMAT ",\"bytes_read\":%" G_GUINT64_FORMAT
               ",\"chunks_data\":%u,\"chunks_new\":%u,\"chunks_zero\":%u,\"chunks_unused\":%u,"
               "\"chunks_absent\":%u,\"bytes_new_stored\":%" G_GUINT64_FORMAT
               ",\"partitions_mapped\":%u,\"chunks_delta\":%u,\"seconds\":%.3f",
               t.ref.name, hex, m->disk_size, st.bytes_read, st.chunks_data, st.chunks_new,
               st.chunks_zero, st.chunks_unused, st.chunks_absent, st.bytes_new_stored,
               st.partitions_mapped, st.chunks_delta, secs);
        print_net_json(&t);
        printf("}\n");
    } else {
        char r[32], n[32];
        human(st.bytes_read, r, sizeof(r));
        human(st.bytes_new_stored, n, sizeof(n));
        printf("captured %s as %s%s%s: read %s, %u data chunks (%u new, %s stored), %u zero, "
               "%u unused (used-block map for %u partitions), %.1f s\n",
               disk, t.ref.name, t.http != NULL ? " on " : "",
               t.http != NULL ? pb_http_base(t.http) : "", r, st.chunks_data, st.chunks_new, n,
               st.chunks_zero, st.chunks_unused, st.partitions_mapped, secs);
    }
    target_close(&t);
    return 0;
}

static gboolean do_restore(Target *t, const PbManifest *m, const char *disk, const Opts *o,
                           PbRestoreStats *st, GError **error)
{
    memset(st, 0, sizeof(*st));
    if (t->http != NULL) {
        /* One batched question before the first byte is written: the engine's own check
         * (has() for every chunk) is then answered from this set. */
        g_autoptr(GPtrArray) lack = pb_http_missing(t->http, m, error);
        if (lack == NULL)
            return FALSE;
        if (lack->len > 0) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_MISSING,
                        "%s lacks %u chunks of %s (the first: %s); nothing written",
                        pb_http_base(t->http), lack->len, t->ref.name, (char *)lack->pdata[0]);
            return FALSE;
        }
    }
    Progress p;
    progress_init(&p, o->delta ? "delta restore" : "restore", o);
    PbRestoreOptions ro = {.partition = o->partition,
                           .delta = o->delta,
                           .threads = o->threads,
                           .progress = progress_cb,
                           .progress_data = &p};
    gboolean ok = pb_restore(m, &t->io, disk, &ro, st, error);
    /* Over the network a broken connection is the likely cause: say how to resume. */
    if (!ok && st->partial && t->http != NULL && error != NULL && *error != NULL &&
        !g_error_matches(*error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_CORRUPT)) {
        char *msg = g_strdup_printf("%s (run it again with --delta to resume: what was written "
                                    "is checked here, not fetched again)",
                                    (*error)->message);
        g_free((*error)->message);
        (*error)->message = msg;
    }
    return ok;
}

static int cmd_restore(const char *source, const char *disk, Opts *o)
{
    GError *e = NULL;
    Target t;
    g_autoptr(PbManifest) m = target_open_manifest(&t, source, o, &e);
    if (m == NULL) {
        target_close(&t);
        return fail("restore", e);
    }
    PbRestoreStats st;
    gint64 t0 = g_get_monotonic_time();
    gboolean ok = do_restore(&t, m, disk, o, &st, &e);
    double secs = elapsed(t0);
    if (o->json) {
        printf("{\"command\":\"restore\",\"image\":\"%s\",\"ok\":%s,\"partial\":%s,"
               "\"delta\":%s,\"bytes_total\":%" G_GUINT64_FORMAT
               ",\"bytes_written\":%" G_GUINT64_FORMAT ",\"chunks_written\":%u,\"chunks_same\":%u,"
               "\"chunks_skipped\":%u,\"gpt_moved\":%s,\"seconds\":%.3f",
               t.ref.name, ok ? "true" : "false", st.partial ? "true" : "false",
               o->delta ? "true" : "false", st.bytes_total, st.bytes_written, st.chunks_written,
               st.chunks_same, st.chunks_skipped, st.gpt_moved ? "true" : "false", secs);
        print_net_json(&t);
        printf("}\n");
    }
    target_close(&t);
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
    Target t;
    g_autoptr(PbManifest) m = target_open_manifest(&t, source, o, &e);
    PbRef ref = t.ref;
    t.ref = (PbRef){0};
    target_close(&t);
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
        g_autofree char *label = json_str(m->label);
        printf("{\"image\":\"%s\",\"seal\":\"%s\",\"disk_size\":%" G_GUINT64_FORMAT
               ",\"sector_size\":%u,\"chunk_size\":%u,\"label\":\"%s\",\"chunks_data\":%u,"
               "\"chunks_unique\":%u,\"chunks_zstd\":%u,\"chunks_zero\":%u,\"chunks_unused\":%u,"
               "\"chunks_absent\":%u,\"data_bytes\":%" G_GUINT64_FORMAT
               ",\"stored_bytes\":%" G_GUINT64_FORMAT ",\"unique_stored_bytes\":%" G_GUINT64_FORMAT
               ",\"dedup_ratio\":%.3f,\"compression_ratio\":%.3f,"
               "\"partitions\":[",
               ref.name, hex, m->disk_size, m->sector_size, m->chunk_size, label, st.n_data,
               st.n_unique, zstd, st.n_zero, st.n_unused, st.n_absent, st.data_bytes,
               st.stored_bytes, st.unique_stored_bytes, dedup, ratio);
        for (guint i = 0; i < m->partitions->len; i++) {
            const PbPartition *pt = &g_array_index(m->partitions, PbPartition, i);
            g_autofree char *type = json_str(pt->type);
            g_autofree char *fs = json_str(pt->fs);
            g_autofree char *pname = json_str(pt->name);
            printf("%s{\"number\":%d,\"start\":%" G_GUINT64_FORMAT ",\"size\":%" G_GUINT64_FORMAT
                   ",\"type\":\"%s\",\"fs\":\"%s\",\"name\":\"%s\"}",
                   i ? "," : "", pt->partno, pt->start, pt->size, type, fs, pname);
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
    Target t;
    g_autoptr(PbManifest) m = target_open_manifest(&t, source, o, &e);
    if (m == NULL) {
        if (o->json)
            printf("{\"command\":\"verify\",\"ok\":false,\"seal_ok\":false}\n");
        target_close(&t);
        return fail("verify", e);
    }
    Progress p;
    progress_init(&p, "verify", o);
    PbVerifyStats st;
    gboolean ok = pb_verify(m, &t.io, o->threads, progress_cb, &p, &st, &e);
    if (o->json) {
        printf("{\"command\":\"verify\",\"image\":\"%s\",\"ok\":%s,\"seal_ok\":true,"
               "\"chunks_checked\":%u,\"chunks_bad\":%u",
               t.ref.name, ok ? "true" : "false", st.chunks_checked, st.chunks_bad);
        print_net_json(&t);
        printf("}\n");
    }
    target_close(&t);
    if (!ok)
        return fail("verify", e);
    if (!o->json)
        printf("image %s: seal and %u chunks OK\n", source, st.chunks_checked);
    return 0;
}

static int cmd_gc(const char *arg, Opts *o)
{
    GError *e = NULL;
    Target t;
    PbGcStats st;
    gboolean ok = target_open(&t, arg, FALSE, FALSE, FALSE, o, &e) && pb_store_gc(t.store, &st, &e);
    target_close(&t);
    if (!ok)
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

static gint cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* GET images: the catalog's names (a name that is not a valid image name is refused rather
 * than printed: it would be the server's bytes on our terminal). */
static GPtrArray *list_remote(PbHttp *h, GError **error)
{
    g_autoptr(PbJson) j = pb_http_get_json(h, "/images", error);
    if (j == NULL)
        return NULL;
    const PbJson *imgs = pb_json_get(j, "images");
    if (imgs == NULL || imgs->type != PB_JSON_ARRAY) {
        g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE,
                    "%s: the catalog has no \"images\" array", pb_http_base(h));
        return NULL;
    }
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < imgs->items->len; i++) {
        const char *n = pb_json_get_string(imgs->items->pdata[i], "name");
        if (n == NULL || !pb_name_valid(n)) {
            g_set_error(error, PB_IMAGE_ERROR, PB_IMAGE_ERROR_PARSE,
                        "%s: catalog entry %u has no valid name", pb_http_base(h), i);
            g_ptr_array_unref(names);
            return NULL;
        }
        g_ptr_array_add(names, g_strdup(n));
    }
    g_ptr_array_sort(names, cmp_names);
    return names;
}

static int cmd_list(const char *arg, Opts *o)
{
    GError *e = NULL;
    Target t;
    g_autoptr(GPtrArray) names = NULL;
    if (target_open(&t, arg, FALSE, FALSE, TRUE, o, &e))
        names = t.http != NULL ? list_remote(t.http, &e) : pb_store_list(t.store, &e);
    if (names == NULL)
        hint_server(&t, &e);
    target_close(&t);
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
    Target t;
    gboolean ok = target_open(&t, arg, TRUE, FALSE, FALSE, o, &e) &&
                  pb_store_delete_manifest(t.store, t.ref.name, &e);
    target_close(&t);
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
    Target t;
    g_autoptr(PbManifest) m = target_open_manifest(&t, source, o, &e);
    if (m == NULL) {
        target_close(&t);
        return fail("export", e);
    }
    PbChunkIO io = t.io;
    PbArchiveStats st;
    if (strcmp(file, "-") == 0) {
        gboolean ok = pb_archive_export(m, &io, STDOUT_FILENO, &st, &e);
        target_close(&t);
        return ok ? 0 : fail("export", e);
    }
    /* Written beside its final name and renamed when complete. */
    g_autofree char *tmp = g_strconcat(file, ".partial", NULL);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "preboot-img export: %s: %s\n", tmp, g_strerror(errno));
        target_close(&t);
        return 1;
    }
    gboolean ok = pb_archive_export(m, &io, fd, &st, &e);
    target_close(&t);
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
    Target t;
    PbArchiveStats st;
    gboolean ok = target_open(&t, target, TRUE, TRUE, FALSE, o, &e) &&
                  pb_archive_import(fd, head, got, t.store, t.ref.name, &st, &e);
    if (fd != STDIN_FILENO)
        close(fd);
    target_close(&t);
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

/* ---- auto: this device's work ----------------------------------------------------------- */

/* Exit statuses of auto (preboot-img(8)), so a preboot script can branch on them. */
enum {
    AUTO_DONE = 0,        /* work done and its result reported */
    AUTO_FAILED = 1,      /* work failed (reported when the server could be reached) */
    AUTO_NO_WORK = 3,     /* the server has no work for this device */
    AUTO_UNSUPPORTED = 4, /* work preboot-img does not do (maintenance): left alone */
    AUTO_UNREPORTED = 5,  /* work done, but the server did not take the report */
};

static char *read_sys(const char *path)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return NULL;
    g_strstrip(text);
    return text[0] != '\0' ? g_steal_pointer(&text) : NULL;
}

/* "aa:bb:cc:dd:ee:ff" in lower case, or NULL. */
static char *normalize_mac(const char *s)
{
    guint8 b[6];
    char sep = strlen(s) == 17 ? s[2] : 0;
    if (sep != ':' && sep != '-')
        return NULL;
    for (int i = 0; i < 6; i++) {
        int hi = g_ascii_xdigit_value(s[i * 3]), lo = g_ascii_xdigit_value(s[i * 3 + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != sep))
            return NULL;
        b[i] = (guint8)(hi * 16 + lo);
    }
    return g_strdup_printf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
}

/* The MAC of the interface holding the IPv4 default route (the one the server sees us on). */
static char *default_route_mac(void)
{
    g_autofree char *routes = NULL;
    if (!g_file_get_contents("/proc/net/route", &routes, NULL, NULL))
        return NULL;
    g_auto(GStrv) lines = g_strsplit(routes, "\n", -1);
    for (guint i = 1; lines[i] != NULL; i++) {
        g_auto(GStrv) f = g_strsplit_set(lines[i], " \t", -1);
        guint n = 0;
        const char *col[4] = {0};
        for (guint k = 0; f[k] != NULL && n < 4; k++)
            if (f[k][0] != '\0')
                col[n++] = f[k];
        if (n < 4 || strcmp(col[1], "00000000") != 0 || !(strtoul(col[3], NULL, 16) & 1))
            continue;
        g_autofree char *path = g_strdup_printf("/sys/class/net/%s/address", col[0]);
        g_autofree char *mac = read_sys(path);
        return mac != NULL ? normalize_mac(mac) : NULL;
    }
    return NULL;
}

/* The first whole, fixed disk (sda before sdb, nvme0n1 ...): what a lab machine images. */
static char *default_disk(void)
{
    DIR *d = opendir("/sys/block");
    if (d == NULL)
        return NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    struct dirent *de;
    static const char *const skip[] = {"loop", "ram", "zram", "sr", "dm-", "md", "fd", "nbd", NULL};
    while ((de = readdir(d)) != NULL) {
        gboolean bad = de->d_name[0] == '.';
        for (guint i = 0; !bad && skip[i] != NULL; i++)
            bad = g_str_has_prefix(de->d_name, skip[i]);
        g_autofree char *rm = g_strdup_printf("/sys/block/%s/removable", de->d_name);
        g_autofree char *removable = bad ? NULL : read_sys(rm);
        if (!bad && g_strcmp0(removable, "1") != 0)
            g_ptr_array_add(names, g_strdup(de->d_name));
    }
    closedir(d);
    if (names->len == 0)
        return NULL;
    g_ptr_array_sort(names, cmp_names);
    return g_strdup_printf("/dev/%s", (char *)names->pdata[0]);
}

static void append_query(GString *q, const char *key, const char *value)
{
    if (value == NULL)
        return;
    g_autofree char *v = g_uri_escape_string(value, NULL, FALSE);
    g_string_append_printf(q, "%c%s=%s", strchr(q->str, '?') != NULL ? '&' : '?', key, v);
}

/* Who asked for the work, as the report names it. */
typedef struct {
    const char *mac, *uuid, *serial, *work_id;
} AutoDevice;

/* The server's address when it is an IPv4 literal: announcements are then taken from it
 * alone (a name is not resolved here; any announcer of the session is heard then). */
static char *server_ipv4(PbHttp *h)
{
    g_autoptr(GUri) u = g_uri_parse(pb_http_base(h), G_URI_FLAGS_NONE, NULL);
    const char *host = u != NULL ? g_uri_get_host(u) : NULL;
    PbAddr a;
    return host != NULL && pb_addr_parse(host, 0, &a) && a.family == 4 ? g_strdup(host) : NULL;
}

/* Session work (PB_POLICY_WORK_MULTICAST): joins the session the server named, as
 * `preboot-img session NAME client DISK --server ADDR` does, keeping what the disk already
 * holds (reimaging). Then verifies the disk against the server's copy of the image the
 * session announced: a delta pass reads and hashes every chunk and fetches by unicast
 * whatever differs or is missing, so a receiver the session ended without (dropped, a
 * late joiner past the last pass) still finishes, and a disk is reported "ok" only when
 * it matches the server's image chunk for chunk. The result is reported like a restore's
 * (type "session", the work's id), a failure too. */
static int auto_session(Target *t, const char *session, const char *disk_arg, const AutoDevice *dev,
                        Opts *o)
{
    if (session == NULL || !mcast_name_valid(session, strlen(session))) {
        fprintf(stderr, "preboot-img auto: session work without a valid session name\n");
        return AUTO_FAILED;
    }
    g_autofree char *disk = disk_arg != NULL ? g_strdup(disk_arg) : default_disk();
    if (disk == NULL) {
        fprintf(stderr, "preboot-img auto: no disk found; name one: auto HOST DISK\n");
        return AUTO_FAILED;
    }
    g_autofree char *server = server_ipv4(t->http);
    g_autofree char *where = g_strdup(pb_http_base(t->http)); /* it may move on a referral */
    /* The label the server's session status shows: the MAC, which labels allow. */
    PbMcastRecvOptions ro = {.session = session,
                             .data_port = PB_MCAST_DATA_PORT,
                             .server = server,
                             .label = dev->mac,
                             .delta = TRUE,
                             .wait_s = o->session_wait,
                             /* started after the session ended: the server's record of it
                              * names the image; the restore below is then all there is */
                             .lookup = preboot_img_session_lookup,
                             .lookup_data = t->http,
                             .lookup_where = where};
    if (!o->json)
        fprintf(stderr, "joining session %s%s%s onto %s\n", session, server ? " from " : "",
                server ? server : "", disk);
    gint64 t0 = g_get_monotonic_time();
    PbMcastRecvStats ms;
    GError *e = NULL, *se = NULL;
    gboolean received = pb_mcast_receive(disk, &ro, &ms, &se);
    guint64 written = ms.bytes_written;
    /* The check (and, after a failed session, the completion) by unicast. */
    gboolean ok = FALSE, verified = FALSE;
    PbRestoreStats rs = {0};
    if (ms.image[0] != '\0' && pb_name_valid(ms.image)) {
        g_free(t->ref.name);
        t->ref.name = g_strdup(ms.image);
        g_autoptr(PbManifest) m = pb_http_get_manifest(t->http, ms.image, &e);
        if (m != NULL && ms.late && memcmp(m->seal, ms.seal, PB_HASH_LEN) != 0) {
            /* the image was replaced since the session sent it: not what the room got */
            g_set_error(&e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                        "the server's image %s is not the one session %s sent", ms.image, session);
            g_clear_pointer(&m, pb_manifest_free);
        }
        Opts od = *o;
        od.delta = TRUE;
        verified = m != NULL && do_restore(t, m, disk, &od, &rs, &e);
        written += rs.bytes_written;
        ok = verified;
    } else if (received) {
        g_set_error(&e, PB_IMAGE_ERROR, PB_IMAGE_ERROR_INVALID,
                    "session %s announced no valid image name", session);
    }
    g_autofree char *why = NULL;
    if (ok && ms.late)
        why = g_strdup_printf("session %s: session ended; restored by unicast: image %s, "
                              "verified against the server's image (%" G_GUINT64_FORMAT
                              " bytes written)",
                              session, ms.image, rs.bytes_written);
    else if (ok)
        why = g_strdup_printf(
            "session %s: %u chunks received, %u already there, %u rejected; "
            "verified against the server's image%s%s (%" G_GUINT64_FORMAT " bytes repaired)",
            session, ms.chunks_received, ms.chunks_same, ms.chunks_bad,
            received ? "" : " after the session failed: ", received ? "" : se->message,
            rs.bytes_written);
    else
        why =
            g_strdup_printf("session %s: %s%s%s", session, se != NULL ? se->message : "",
                            se != NULL && e != NULL ? "; then " : "", e != NULL ? e->message : "");
    gint64 ms_taken = (g_get_monotonic_time() - t0) / 1000;
    PbHttpStats ns;
    pb_http_get_stats(t->http, &ns);
    GString *r = g_string_new("{\"mac\":");
    pb_json_append_string(r, dev->mac);
    g_string_append(r, ",\"uuid\":");
    pb_json_append_string(r, dev->uuid);
    g_string_append(r, ",\"serial\":");
    pb_json_append_string(r, dev->serial);
    g_string_append(r, ",\"type\":\"session\",\"session\":");
    pb_json_append_string(r, session);
    g_string_append(r, ",\"image\":");
    pb_json_append_string(r, ms.image);
    g_string_append_printf(r, ",\"result\":\"%s\",\"message\":", ok ? "ok" : "failed");
    pb_json_append_string(r, why);
    /* What the session carried is not counted by the HTTP client: its datagrams' payload,
     * about 1400 bytes each. */
    g_string_append_printf(
        r,
        ",\"bytes_written\":%" G_GUINT64_FORMAT ",\"bytes_transferred\":%" G_GUINT64_FORMAT
        ",\"duration_ms\":%" G_GINT64_FORMAT ",\"work_id\":",
        written, ns.bytes_sent + ns.bytes_received + ms.rx_frags * 1400, ms_taken);
    pb_json_append_string(r, dev->work_id);
    g_string_append_c(r, '}');
    GError *re = NULL;
    gboolean reported = pb_http_post_json(t->http, "/results", r->str, &re);
    g_string_free(r, TRUE);
    if (o->json) {
        g_autoptr(GString) j =
            g_string_new("{\"command\":\"auto\",\"action\":\"session\",\"image\":");
        pb_json_append_string(j, ms.image);
        g_string_append(j, ",\"session\":");
        pb_json_append_string(j, session);
        g_string_append(j, ",\"disk\":");
        pb_json_append_string(j, disk);
        g_string_append_printf(
            j,
            ",\"ok\":%s,\"reported\":%s,\"received\":%s,\"verified\":%s,\"bytes_written\":"
            "%" G_GUINT64_FORMAT ",\"bytes_repaired\":%" G_GUINT64_FORMAT
            ",\"chunks_received\":%u,\"chunks_same\":%u,\"chunks_bad\":%u,\"datagrams\":"
            "%" G_GUINT64_FORMAT ",\"seconds\":%.3f,\"message\":",
            ok ? "true" : "false", reported ? "true" : "false", received ? "true" : "false",
            verified ? "true" : "false", written, rs.bytes_written, ms.chunks_received,
            ms.chunks_same, ms.chunks_bad, ms.rx_frags, (double)ms_taken / 1000);
        pb_json_append_string(j, why);
        printf("%s", j->str);
        print_net_json(t);
        printf("}\n");
    } else if (ok)
        printf("%s; %s onto %s, %" G_GUINT64_FORMAT " bytes written in %.1f s%s\n", why, ms.image,
               disk, written, (double)ms_taken / 1000, reported ? "; result reported" : "");
    g_clear_error(&se);
    g_clear_error(&e);
    if (!ok) {
        fprintf(stderr, "preboot-img auto: %s\n", why);
        if (re != NULL)
            fprintf(stderr, "preboot-img auto: the result could not be reported either: %s\n",
                    re->message);
        g_clear_error(&re);
        return AUTO_FAILED;
    }
    if (!reported) {
        fprintf(stderr, "preboot-img auto: work done, but the result was not reported: %s\n",
                re->message);
        g_error_free(re);
        return AUTO_UNREPORTED;
    }
    return AUTO_DONE;
}

static int cmd_auto(const char *host, const char *disk_arg, Opts *o)
{
    GError *e = NULL;
    g_autofree char *mac = o->mac != NULL ? normalize_mac(o->mac) : default_route_mac();
    g_autofree char *uuid = g_strdup(o->uuid != NULL ? o->uuid : NULL);
    g_autofree char *serial = g_strdup(o->serial != NULL ? o->serial : NULL);
    if (uuid == NULL)
        uuid = read_sys("/sys/class/dmi/id/product_uuid");
    if (serial == NULL)
        serial = read_sys("/sys/class/dmi/id/product_serial");
    if (mac == NULL) {
        fprintf(stderr, "preboot-img auto: %s; give --mac aa:bb:cc:dd:ee:ff\n",
                o->mac != NULL ? "bad --mac" : "no interface holds the default route");
        return 2;
    }
    Target t;
    if (!target_open(&t, host, FALSE, FALSE, TRUE, o, &e)) {
        target_close(&t);
        return fail("auto", e);
    }
    GString *q = g_string_new("/work");
    append_query(q, "mac", mac);
    append_query(q, "uuid", uuid);
    append_query(q, "serial", serial);
    g_autoptr(PbJson) work = pb_http_get_json(t.http, q->str, &e);
    g_string_free(q, TRUE);
    if (work == NULL) {
        target_close(&t);
        return fail("auto", e);
    }
    const char *action = pb_json_get_string(work, "action");
    const char *image = pb_json_get_string(work, "image");
    const char *work_id = pb_json_get_string(work, "work_id");
    if (action == NULL)
        action = "none";
    if (strcmp(action, "none") == 0) {
        if (o->json)
            printf("{\"command\":\"auto\",\"action\":\"none\",\"mac\":\"%s\"}\n", mac);
        else
            printf("no work for %s on %s\n", mac, pb_http_base(t.http));
        target_close(&t);
        return AUTO_NO_WORK;
    }
    /* The server hands a credential for exactly this work with it (preboot-imaging(8)): it
     * replaces the token for everything after (the work and its report), so the preboot
     * environment needs none of its own. */
    const char *cred = pb_json_get_string(work, "credential");
    if (cred != NULL && *cred != '\0') {
        PbHttp *ch = pb_http_new(pb_http_base(t.http), cred, o->retry_seconds, &e);
        if (ch == NULL) {
            target_close(&t);
            return fail("auto", e);
        }
        pb_http_set_ca_file(ch, o->ca_file);
        pb_http_free(t.http);
        t.http = ch;
        pb_http_chunk_io(t.http, &t.io);
    }
    if (strcmp(action, "session") == 0) {
        AutoDevice dev = {mac, uuid, serial, work_id};
        int rc = auto_session(&t, pb_json_get_string(work, "session"), disk_arg, &dev, o);
        target_close(&t);
        return rc;
    }
    if (strcmp(action, "restore") != 0 && strcmp(action, "capture") != 0) {
        gboolean known = strcmp(action, "maintenance") == 0;
        fprintf(stderr, "preboot-img auto: the work is \"%s\"; left for the tool that does it\n",
                known ? action : "(unknown)");
        target_close(&t);
        return known ? AUTO_UNSUPPORTED : AUTO_FAILED;
    }
    if (image == NULL || !pb_name_valid(image)) {
        fprintf(stderr, "preboot-img auto: %s work without a valid image name\n", action);
        target_close(&t);
        return AUTO_FAILED;
    }
    g_autofree char *disk = disk_arg != NULL ? g_strdup(disk_arg) : default_disk();
    if (disk == NULL) {
        fprintf(stderr, "preboot-img auto: no disk found; name one: auto HOST DISK\n");
        target_close(&t);
        return AUTO_FAILED;
    }
    t.ref.name = g_strdup(image);
    gboolean capture = strcmp(action, "capture") == 0;
    gint64 t0 = g_get_monotonic_time();
    guint64 written = 0;
    gboolean ok;
    if (capture) {
        PbCaptureStats cs = {0};
        g_autoptr(PbManifest) m = do_capture(disk, &t, o, &cs, &e);
        ok = m != NULL;
        written = cs.bytes_new_stored;
    } else {
        PbRestoreStats rs = {0};
        g_autoptr(PbManifest) m = pb_http_get_manifest(t.http, image, &e);
        /* Reimaging is mostly writing what is already there: a delta restore reads the disk
         * and fetches and writes only the chunks that differ (on an empty disk, all). */
        Opts od = *o;
        od.delta = TRUE;
        ok = m != NULL && do_restore(&t, m, disk, &od, &rs, &e);
        written = rs.bytes_written;
    }
    gint64 ms = (g_get_monotonic_time() - t0) / 1000;
    PbHttpStats ns;
    pb_http_get_stats(t.http, &ns);
    GString *r = g_string_new("{\"mac\":");
    pb_json_append_string(r, mac);
    g_string_append(r, ",\"uuid\":");
    pb_json_append_string(r, uuid);
    g_string_append(r, ",\"serial\":");
    pb_json_append_string(r, serial);
    g_string_append_printf(r, ",\"type\":\"%s\",\"image\":", capture ? "capture" : "restore");
    pb_json_append_string(r, image);
    g_string_append_printf(r, ",\"result\":\"%s\",\"message\":", ok ? "ok" : "failed");
    pb_json_append_string(r, ok ? "" : e->message);
    g_string_append_printf(r,
                           ",\"bytes_written\":%" G_GUINT64_FORMAT
                           ",\"bytes_transferred\":%" G_GUINT64_FORMAT
                           ",\"duration_ms\":%" G_GINT64_FORMAT ",\"work_id\":",
                           written, ns.bytes_sent + ns.bytes_received, ms);
    pb_json_append_string(r, work_id);
    g_string_append_c(r, '}');
    GError *re = NULL;
    gboolean reported = pb_http_post_json(t.http, "/results", r->str, &re);
    g_string_free(r, TRUE);
    if (o->json) {
        printf("{\"command\":\"auto\",\"action\":\"%s\",\"image\":\"%s\",\"disk\":", action, image);
        g_autoptr(GString) dj = g_string_new(NULL);
        pb_json_append_string(dj, disk);
        printf("%s,\"ok\":%s,\"reported\":%s,\"bytes_written\":%" G_GUINT64_FORMAT
               ",\"seconds\":%.3f",
               dj->str, ok ? "true" : "false", reported ? "true" : "false", written,
               (double)ms / 1000);
        print_net_json(&t);
        printf("}\n");
    } else if (ok)
        printf("%s %s %s %s: done, %" G_GUINT64_FORMAT " bytes written in %.1f s%s\n",
               capture ? "captured" : "restored", capture ? disk : image, capture ? "as" : "onto",
               capture ? image : disk, written, (double)ms / 1000,
               reported ? "; result reported" : "");
    target_close(&t);
    if (!ok) {
        if (re != NULL) {
            fprintf(stderr, "preboot-img auto: the result could not be reported either: %s\n",
                    re->message);
            g_error_free(re);
        }
        fail("auto", e);
        return AUTO_FAILED;
    }
    if (!reported) {
        fprintf(stderr, "preboot-img auto: work done, but the result was not reported: %s\n",
                re->message);
        g_error_free(re);
        return AUTO_UNREPORTED;
    }
    return AUTO_DONE;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: preboot-img COMMAND ARGS [OPTIONS]\n"
            "  make DISK STORE:NAME [--partitions 1,3] [--codec zstd|none] [--level N]\n"
            "                       [--chunk-size BYTES] [--no-used-map] [--base NAME|newest]\n"
            "  restore STORE:NAME DISK [--partition N] [--delta]\n"
            "  info STORE:NAME | verify STORE:NAME | delete STORE:NAME | list STORE | gc STORE\n"
            "  export STORE:NAME FILE.pbi|RAWFILE|-   import FILE.pbi|RAWFILE|- STORE:NAME\n"
            "  auto HOST [DISK] [--mac MAC] [--uuid UUID] [--serial SERIAL] [--wait SECONDS]\n"
            "  session NAME [client] DISK [--server ADDR] [--delta]   (multicast)\n"
            "common: [--json] [--threads N]; network: [--token-file FILE] [--retry-time S]\n"
            "        [--cacert FILE] (https: trust the certificates in FILE)\n"
            "        [--create-only] (make: fail if the image exists)\n"
            "STORE is a directory: dir:PATH, or a path with a '/' (./images:NAME);\n"
            "anything else is an imaging server: HOST[:PORT]:NAME or http://HOST[:PORT]/NAME.\n"
            "The token is read from --token-file or $PREBOOT_TOKEN, never from the command line.\n"
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
    Opts o = {.codec = PB_CODEC_ZSTD, .level = 3, .retry_seconds = 120, .session_wait = 600};
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
        else if (strcmp(a, "--create-only") == 0)
            o.create_only = TRUE;
        else if (val != NULL && strcmp(a, "--token-file") == 0) {
            o.token_file = (char *)val;
            i++;
        } else if (val != NULL && strcmp(a, "--cacert") == 0) {
            o.ca_file = (char *)val;
            i++;
        } else if (val != NULL && strcmp(a, "--retry-time") == 0 && parse_uint(val, 86400, &v)) {
            o.retry_seconds = (guint)v;
            i++;
        } else if (val != NULL && strcmp(a, "--wait") == 0 && parse_uint(val, 86400, &v) && v > 0) {
            o.session_wait = (guint)v;
            i++;
        } else if (val != NULL && strcmp(a, "--mac") == 0) {
            o.mac = val;
            i++;
        } else if (val != NULL && strcmp(a, "--uuid") == 0) {
            o.uuid = val;
            i++;
        } else if (val != NULL && strcmp(a, "--serial") == 0) {
            o.serial = val;
            i++;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
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
        } else if (val != NULL && strcmp(a, "--base") == 0 &&
                   (strcmp(val, "none") == 0 || pb_name_valid(val))) {
            o.base = val;
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
    else if (strcmp(cmd, "auto") == 0 && (n == 2 || n == 3))
        rc = cmd_auto(a1, a2, &o);
    else if (strcmp(cmd, "session") == 0) {
        fprintf(stderr, "preboot-img session: multicast sessions are not supported yet "
                        "(they come with the multicast service)\n");
        rc = 2;
    } else
        usage(stderr);
out:
    if (o.partitions != NULL)
        g_array_unref(o.partitions);
    g_ptr_array_unref(args);
    return rc;
}
