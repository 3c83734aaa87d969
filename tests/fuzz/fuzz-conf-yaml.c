/* fuzz-conf-yaml.c - libFuzzer target for the preboot.yaml reader and, for every instance
 * that names no legacy file (those would be read from disk), pb_config_build() and
 * pb_config_dump() against a table of every type. Whatever the input: no crash, no leak,
 * no runaway nesting, and either a model that keeps the schema's promises or an error
 * naming the file. Built with --enable-fuzzing (clang); make check replays
 * tests/fuzz/corpus/conf-yaml through replay-conf-yaml. */
#include "build-config.h"

#include "conf-yaml.h"
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const choices[] = {"fast", "Safe", NULL};
static const pb_param params[] = {
    {.name = "root", .legacy = "TFTPDirectory", .type = PB_PARAM_PATH, .def = "/srv"},
    {.name = "block_size",
     .legacy = "TransferBlockSize",
     .type = PB_PARAM_INT,
     .def = "1428",
     .min = 512,
     .max = 4428},
    {.name = "flag", .legacy = "Flag", .type = PB_PARAM_BOOL, .def = "no"},
    {.name = "mode", .type = PB_PARAM_ENUM, .def = "fast", .choices = choices},
    {.name = "address",
     .legacy = "TFTPInterface",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = ""},
    {.name = "allow_networks", .type = PB_PARAM_LIST, .def = ""},
    {.name = "banner", .type = PB_PARAM_STRING, .def = "x"},
    {.name = "old", .type = PB_PARAM_BOOL, .flags = PB_PARAM_F_DEPRECATED, .def = "no"},
};
static const pb_plugin plugin = {PB_PLUGIN_HEADER, .name = "fuzz", .version = "0",
                                 PB_PARAMS(params)};

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(PbConfig) cfg = pb_yaml_parse((const char *)data, size, "fuzz.yaml", &error);
    if (cfg == NULL) {
        check(error != NULL && error->domain == PB_CONFIG_ERROR);
        check(g_str_has_prefix(error->message, "fuzz.yaml:"));
        return 0;
    }
    check(error == NULL);
    check(cfg->global.log_level >= 0 && cfg->global.log_level <= 4);
    check(cfg->global.plugin_path != NULL && cfg->global.log_dir != NULL);
    for (guint i = 0; i < cfg->instances->len; i++) {
        const PbInstanceSpec *spec = g_ptr_array_index(cfg->instances, i);
        check(spec->name != NULL && spec->name[0] != '\0' && strchr(spec->name, '/') == NULL);
        check(spec->legacy != NULL && spec->entries != NULL);
        if (spec->module == NULL) {
            check(spec->legacy->len == 1);
            continue;
        }
        for (guint j = 0; j < i; j++) {
            const PbInstanceSpec *o = g_ptr_array_index(cfg->instances, j);
            check(o->module == NULL || strcmp(o->name, spec->name) != 0);
        }
        if (spec->legacy->len > 0)
            continue;
        g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) berr = NULL;
        g_autoptr(pb_config) built = pb_config_build(&plugin, spec, warnings, &berr);
        if (built == NULL) {
            check(berr != NULL && g_str_has_prefix(berr->message, "fuzz.yaml:"));
            continue;
        }
        g_autoptr(GString) dump = g_string_new(NULL);
        pb_config_dump(built, dump);
        check(g_utf8_validate(dump->str, (gssize)dump->len, NULL));
        for (guint k = 0; k < built->n; k++)
            check(pb_config_value_equal(built, built, k));
    }
    return 0;
}
