/* fuzz-conf-legacy.c - libFuzzer target for the legacy .conf reader, and for every value
 * type's parser fed with what it read as a legacy file would feed them (%VAR% expansion,
 * addresses, numbers). Whatever the input: no crash, no leak, and either entries that obey
 * the syntax's promises or an error naming the file. Built with --enable-fuzzing (clang);
 * make check replays tests/fuzz/corpus/conf-legacy through replay-conf-legacy. */
#include "build-config.h"

#include "conf-legacy.h"
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const choices[] = {"fast", "Safe", NULL};
static const pb_param params[] = {
    {.name = "s", .type = PB_PARAM_STRING, .def = "x"},
    {.name = "i", .type = PB_PARAM_INT, .def = "1428", .min = 512, .max = 4428},
    {.name = "w", .type = PB_PARAM_INT, .def = "0", .min = G_MININT64, .max = G_MAXINT64},
    {.name = "b", .type = PB_PARAM_BOOL, .def = "no"},
    {.name = "e", .type = PB_PARAM_ENUM, .def = "fast", .choices = choices},
    {.name = "p", .type = PB_PARAM_PATH, .def = "/srv"},
    {.name = "a", .type = PB_PARAM_ADDRESS, .flags = PB_PARAM_F_EMPTY_OK, .def = ""},
    {.name = "l", .type = PB_PARAM_LIST, .def = "a, b"},
};

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) entries =
        pb_legacy_parse_full((const char *)data, size, "fuzz.conf", warnings, &error);
    if (entries == NULL) {
        check(error != NULL && g_str_has_prefix(error->message, "fuzz.conf:"));
        check(g_utf8_validate(error->message, -1, NULL));
        return 0;
    }
    check(error == NULL);
    guint lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    for (guint i = 0; i < entries->len; i++) {
        const PbRawEntry *e = g_ptr_array_index(entries, i);
        /* Keys are [A-Za-z_][A-Za-z0-9_]*, unique case-insensitively, lines in order. */
        check(e->key[0] != '\0' && (g_ascii_isalpha(e->key[0]) || e->key[0] == '_'));
        for (const char *k = e->key; *k != '\0'; k++)
            check(g_ascii_isalnum(*k) || *k == '_');
        check(e->value == NULL || g_utf8_validate(e->value, -1, NULL));
        check(e->list == NULL && e->source.kind == PB_SOURCE_LEGACY);
        check(e->source.line >= 1 && e->source.line <= lines);
        for (guint j = 0; j < i; j++) {
            const PbRawEntry *o = g_ptr_array_index(entries, j);
            check(g_ascii_strcasecmp(o->key, e->key) != 0 && o->source.line < e->source.line);
        }
        for (gsize p = 0; p < G_N_ELEMENTS(params); p++) {
            PbValue v;
            g_autoptr(GError) verr = NULL;
            if (pb_param_parse(&params[p], e->value, PB_SOURCE_LEGACY, &v, &verr)) {
                check(v.text != NULL);
                pb_value_clear(&v);
            } else {
                check(verr != NULL && v.text == NULL);
            }
        }
    }
    for (guint i = 0; i < warnings->len; i++)
        check(g_str_has_prefix(g_ptr_array_index(warnings, i), "fuzz.conf:"));
    return 0;
}
