/* replay-main.c - runs every file of a fuzz target's seed corpus through its
 * LLVMFuzzerTestOneInput, so make check exercises the targets without clang or libFuzzer.
 * Prints TAP, one test per file. Each input is copied into a buffer of exactly its size so
 * ASan builds catch reads past the end as the real fuzzer would.
 *
 * Usage: replay-X [FILE|DIR]...  Without arguments it reads
 * $G_TEST_SRCDIR/tests/fuzz/corpus/FUZZ_CORPUS (or $top_srcdir/..., or the source tree
 * configure saw). Link it with one fuzz-*.c and -DFUZZ_CORPUS=\"name\". */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_CORPUS
#error "define FUZZ_CORPUS as the corpus directory's name"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gint compare(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void collect(const char *path, GPtrArray *files)
{
    if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_ptr_array_add(files, g_strdup(path));
        return;
    }
    GDir *d = g_dir_open(path, 0, NULL);
    const char *n;
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    while (d != NULL && (n = g_dir_read_name(d)) != NULL)
        if (n[0] != '.')
            g_ptr_array_add(names, g_build_filename(path, n, NULL));
    if (d != NULL)
        g_dir_close(d);
    g_ptr_array_sort(names, compare);
    for (guint i = 0; i < names->len; i++)
        collect(g_ptr_array_index(names, i), files);
    g_ptr_array_unref(names);
}

int main(int argc, char **argv)
{
    GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
    for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-') /* ignore --tap and friends */
            collect(argv[i], files);
    if (files->len == 0) {
        const char *top = g_getenv("G_TEST_SRCDIR");
        if (top == NULL)
            top = g_getenv("top_srcdir");
#ifdef FUZZ_SRCDIR
        if (top == NULL)
            top = FUZZ_SRCDIR;
#endif
        if (top == NULL)
            top = ".";
        char *dir = g_build_filename(top, "tests", "fuzz", "corpus", FUZZ_CORPUS, NULL);
        collect(dir, files);
        g_free(dir);
    }
    printf("1..%u\n", files->len);
    int failed = 0;
    for (guint i = 0; i < files->len; i++) {
        const char *f = g_ptr_array_index(files, i);
        char *text = NULL;
        gsize len = 0;
        GError *error = NULL;
        if (!g_file_get_contents(f, &text, &len, &error)) {
            printf("not ok %u - %s: %s\n", i + 1, f, error->message);
            g_error_free(error);
            failed++;
            continue;
        }
        uint8_t *buf = malloc(len > 0 ? len : 1);
        memcpy(buf, text, len);
        g_free(text);
        LLVMFuzzerTestOneInput(buf, len); /* a failure aborts: the TAP plan stays short */
        free(buf);
        printf("ok %u - %s\n", i + 1, f);
        fflush(stdout);
    }
    g_ptr_array_unref(files);
    return failed > 0 ? 1 : 0;
}
