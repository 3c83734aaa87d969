/* pg-bench.c - bench/pg.sh's load generator: catalog operations of an imaging backend loaded
 * by path (libpreboot-local on SQLite, libpreboot-pg on PostgreSQL: the same calls), and the
 * policy store's shared operations and decisions, on SQLite alone or shared through
 * PostgreSQL. Prints operations per second and latency percentiles.
 *
 *   pg-bench catalog LIBRARY MODNAME LOCATION DIR SERVER N
 *   pg-bench policy RULES SQLITE-DB CONNINFO|"" N
 */
#include <preboot/backend.h>

#include "policy-engine.h"
#include "policy-rules.h"
#include "policy-store.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b)
{
    guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, guint64 *lat, guint n, gint64 total_us)
{
    qsort(lat, n, sizeof(*lat), cmp_u64);
    printf("%-34s %7u ops %9.0f/s  p50 %8.1f us  p99 %8.1f us  max %8.1f us\n", what, n,
           n / (total_us / 1e6), (double)lat[n / 2], (double)lat[(guint)(n * 0.99)],
           (double)lat[n - 1]);
}

#define TIMED(what, n, ...)                                     \
    do {                                                        \
        gint64 t_all = g_get_monotonic_time();                  \
        for (guint i = 0; i < (n); i++) {                       \
            gint64 t0 = g_get_monotonic_time();                 \
            __VA_ARGS__;                                        \
            lat[i] = (guint64)(g_get_monotonic_time() - t0);    \
        }                                                       \
        report(what, lat, (n), g_get_monotonic_time() - t_all); \
    } while (0)

static void ignore_image(void *data, const pb_backend_image *im)
{
    (void)im;
    (*(guint *)data)++;
}

static int catalog(char **argv)
{
    void *mod = dlopen(argv[0], RTLD_NOW | RTLD_LOCAL);
    if (mod == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    g_autofree char *sym = g_strdup_printf("%s_LTX_" PB_BACKEND_ENTRY_SYMBOL, argv[1]);
    const pb_backend *(*entry)(void);
    *(void **)&entry = dlsym(mod, sym);
    if (entry == NULL) {
        fprintf(stderr, "no %s\n", sym);
        return 1;
    }
    const pb_backend *b = entry();
    pb_backend_error e = {.struct_size = sizeof(e)};
    pb_backend_config cfg = {
        .struct_size = sizeof(cfg), .location = argv[2], .state_dir = argv[3], .server = argv[4]};
    void *h = b->open(&cfg, &e);
    if (h == NULL) {
        fprintf(stderr, "open: %s\n", e.message);
        return 1;
    }
    guint n = (guint)atoi(argv[5]);
    guint64 *lat = g_new(guint64, n);
    g_autoptr(GString) text = g_string_new(NULL);
    for (int i = 0; i < 16; i++)
        g_string_append(text, "c 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef "
                              "1048576 zstd\n");
    char name[32], seal[65];
    bool replaced;
    TIMED("catalog: image_commit (replace)", n, {
        g_snprintf(name, sizeof(name), "bench-%u", i % 10);
        for (int k = 0; k < 64; k++)
            seal[k] = "0123456789abcdef"[((i + 1) * 2654435761u >> (k % 28)) & 15];
        seal[64] = '\0';
        pb_backend_image im = {.struct_size = sizeof(im), .name = name, .seal = seal, .chunks = 16};
        if (b->image_commit(h, &im, text->str, text->len, NULL, 0, 0, NULL, NULL, &replaced, &e) !=
            PB_BACKEND_OK) {
            fprintf(stderr, "commit: %s\n", e.message);
            return 1;
        }
    });
    guint seen = 0;
    TIMED("catalog: image_info", n, {
        g_snprintf(name, sizeof(name), "bench-%u", i % 10);
        b->image_info(h, name, ignore_image, &seen, &e);
    });
    TIMED("catalog: image_list (10 images)", n, b->image_list(h, ignore_image, &seen, &e));
    guint8 hashes[64][PB_BACKEND_HASH_LEN];
    guint8 missing[64];
    for (int k = 0; k < 64; k++)
        for (int j = 0; j < PB_BACKEND_HASH_LEN; j++)
            hashes[k][j] = (guint8)(k * 31 + j * 7);
    TIMED("chunks: chunk_missing (64 hashes)", n,
          b->chunk_missing(h, (const uint8_t(*)[PB_BACKEND_HASH_LEN])hashes, 64, missing, &e));
    TIMED("results: result_add", n, {
        pb_backend_result r = {.struct_size = sizeof(r),
                               .source = "192.0.2.7",
                               .mac = "52:54:00:12:34:56",
                               .type = "restore",
                               .image = "bench-1",
                               .result = "ok",
                               .message = "bench"};
        b->result_add(h, &r, &e);
    });
    TIMED("stats: stat_add", n, b->stat_add(h, "bench", 1, &e));
    for (guint i = 0; i < 10; i++) {
        g_snprintf(name, sizeof(name), "bench-%u", i);
        b->image_delete(h, name, &e);
    }
    b->close(h);
    g_free(lat);
    return 0;
}

static void fill_device(PolicyDevice *d, guint32 i)
{
    policy_device_init(d);
    g_snprintf(d->mac, sizeof(d->mac), "52:54:%02x:%02x:%02x:%02x", (i >> 24) & 0xff,
               (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
}

static void store_log(void *data, int level, const char *message)
{
    (void)data;
    (void)level;
    fprintf(stderr, "store: %s\n", message);
}

static int policy(char **argv)
{
    GError *error = NULL;
    gchar *text = NULL;
    gsize len;
    if (!g_file_get_contents(argv[0], &text, &len, &error)) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    PolicyRules *rules = policy_rules_parse(text, len, argv[0], &error);
    g_free(text);
    PolicyStore *store = rules ? policy_store_open(argv[1], &error) : NULL;
    if (store == NULL || !policy_store_start_writer(store, 1000, &error) ||
        (*argv[2] && !policy_store_share(store, argv[2], store_log, NULL, &error))) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    guint n = (guint)atoi(argv[3]);
    guint base = (guint)g_random_int_range(0, 1 << 20) << 8; /* fresh devices each run */
    guint64 *lat = g_new(guint64, n);
    PolicyEngine e = {.rules = rules, .store = store, .boot_window_s = 60};
    PolicyWork w = {0};
    policy_work_parse("program http://192.0.2.1/tool.efi once", &w, NULL);
    char key[64];
    TIMED("policy: assign (prebootctl)", n, {
        g_snprintf(key, sizeof(key), "mac:52:54:%02x:%02x:%02x:%02x", ((base + i) >> 24) & 0xff,
                   ((base + i) >> 16) & 0xff, ((base + i) >> 8) & 0xff, (base + i) & 0xff);
        if (!policy_store_assign(store, key, &w, 1000, &error)) {
            fprintf(stderr, "assign: %s\n", error->message);
            return 1;
        }
    });
    guint handed = 0;
    gint64 flushed = g_get_monotonic_time();
    TIMED("policy: decision using up work", n, {
        PolicyDevice d;
        fill_device(&d, base + i);
        pb_policy_decision out = {.struct_size = sizeof(out)};
        policy_engine_decide(&e, &d, PB_POLICY_REQ_CONSUME, 2000 + i, &out, NULL, NULL);
        handed += out.work == PB_POLICY_WORK_PROGRAM;
        policy_device_clear(&d);
    });
    printf("  (%u of %u handed their work)\n", handed, n);
    TIMED("policy: decision (nothing assigned)", n, {
        if (g_get_monotonic_time() - flushed >= 200000) { /* the plugin's timer */
            policy_store_flush(store, FALSE, NULL);
            flushed = g_get_monotonic_time();
        }
        PolicyDevice d;
        fill_device(&d, base + n + i);
        pb_policy_decision out = {.struct_size = sizeof(out)};
        policy_engine_decide(&e, &d, PB_POLICY_REQ_COMMIT, 3000 + i, &out, NULL, NULL);
        policy_device_clear(&d);
    });
    policy_work_clear(&w);
    policy_store_close(store);
    policy_rules_free(rules);
    g_free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 8 && strcmp(argv[1], "catalog") == 0)
        return catalog(argv + 2);
    if (argc == 6 && strcmp(argv[1], "policy") == 0)
        return policy(argv + 2);
    fprintf(stderr, "usage: pg-bench catalog LIBRARY MODNAME LOCATION DIR SERVER N\n"
                    "       pg-bench policy RULES SQLITE-DB CONNINFO|\"\" N\n");
    return 2;
}
