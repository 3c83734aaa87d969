/* test-loader.c - loading modules: the good one, and every way a module is refused, each
 * with the message an administrator would read. */
#include "build-config.h"

#include "loader.h"
#include "plugins/testlib.h"
#include "testutil.h"

#include <string.h>

static const char *const *search_path(void)
{
    static const char *path[2];
    path[0] = pbt_test_modules();
    return path;
}

static void test_open_by_name(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(PbModule) m = pb_module_open(search_path(), "testplug", &error);
    g_assert_no_error(error);
    g_assert_nonnull(m);
    g_assert_cmpstr(m->name, ==, "testplug");
    g_assert_cmpstr(m->plugin->version, ==, "1.0.0");
    g_assert_cmpuint(m->plugin->abi_major, ==, PB_ABI_MAJOR);
    g_assert_nonnull(strstr(m->path, "testplug"));
    g_assert_cmpuint(m->plugin->n_params, >, 10);
}

static void test_open_by_path(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename(pbt_test_modules(), "testplug_norl.la", NULL);
    g_autoptr(PbModule) m = pb_module_open(NULL, path, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(m->name, ==, "testplug_norl");
    g_assert_null(m->plugin->reload_prepare);
}

static void expect_refusal(const char *name, int code, const char *fragment)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(PbModule) m = pb_module_open(search_path(), name, &error);
    g_assert_null(m);
    g_assert_error(error, PB_LOADER_ERROR, code);
    if (strstr(error->message, fragment) == NULL)
        g_error("message for %s: '%s' lacks '%s'", name, error->message, fragment);
}

static void test_missing(void)
{
    g_autofree char *expect =
        g_strdup_printf("module 'nosuch' not found on the plugin path (%s)", pbt_test_modules());
    expect_refusal("nosuch", PB_LOADER_ERROR_NOT_FOUND, expect);
    expect_refusal("/nonexistent/dir/tftp", PB_LOADER_ERROR_NOT_FOUND,
                   "module file /nonexistent/dir/tftp not found");
}

static void test_bad_magic(void)
{
    expect_refusal("badmagic", PB_LOADER_ERROR_ABI,
                   ": not a preboot plugin (magic 0xdeadbeef, expected 0x50425047)");
}

static void test_bad_major(void)
{
    g_autofree char *expect = g_strdup_printf(
        ": built for plugin ABI %d.%d, but this prebootd speaks ABI %d.%d (the major version "
        "must match: rebuild the plugin)",
        PB_ABI_MAJOR + 1, 0, PB_ABI_MAJOR, PB_ABI_MINOR);
    expect_refusal("badmajor", PB_LOADER_ERROR_ABI, expect);
}

static void test_bad_minor(void)
{
    g_autofree char *expect =
        g_strdup_printf(": needs plugin ABI %d.%d, but this prebootd provides only %d.%d "
                        "(upgrade prebootd)",
                        PB_ABI_MAJOR, PB_ABI_MINOR + 7, PB_ABI_MAJOR, PB_ABI_MINOR);
    expect_refusal("badminor", PB_LOADER_ERROR_ABI, expect);
}

static void test_small_struct(void)
{
    expect_refusal("smallstruct", PB_LOADER_ERROR_ABI,
                   ": descriptor is 24 bytes, ABI 1.0 needs at least ");
}

static void test_bad_signature(void)
{
    g_autofree char *expect =
        g_strdup_printf(": built for plan9-mips-ptr4, but this prebootd is %s", PB_BUILD_SIGNATURE);
    expect_refusal("badsig", PB_LOADER_ERROR_ABI, expect);
}

static void test_bad_table(void)
{
    expect_refusal("badtable", PB_LOADER_ERROR_INVALID, "count");
}

static void test_no_entry(void)
{
    expect_refusal("noentry", PB_LOADER_ERROR_NO_ENTRY,
                   ": no entry point (noentry_LTX_preboot_plugin_entry)");
}

static void test_scan(void)
{
    g_autoptr(GPtrArray) files = pb_module_scan(search_path());
    const char *expect[] = {
        "badmagic",         "badmajor",         "badminor",       "badsig",
        "badtable",         "depabi10",         "depcons",        "depprov",
        "depwant",          "noentry",          "smallstruct",    "testlib",
        "testlib_badmagic", "testlib_badmajor", "testlib_badsig", "testlib_newminor",
        "testlib_small",    "testplug",         "testplug_norl"};
    g_assert_cmpuint(files->len, ==, G_N_ELEMENTS(expect));
    for (guint i = 0; i < files->len; i++) {
        g_autofree char *base = g_path_get_basename(g_ptr_array_index(files, i));
        g_autofree char *want = g_strconcat(expect[i], ".la", NULL);
        g_assert_cmpstr(base, ==, want);
    }
}

/* A plugin as ABI 1.0 built it loads, and its descriptor is read only as far as its
 * struct_size says (the 1.1 fields of depabi10 hold a pointer that would crash). */
static void test_abi10_plugin(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(PbModule) m = pb_module_open(search_path(), "depabi10", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(m->plugin->abi_minor, ==, 0);
    g_assert_cmpuint(m->plugin->struct_size, ==, offsetof(pb_plugin, provides));
    g_assert_false(PB_HAS_FIELD(pb_plugin, m->plugin, provides));
    g_assert_true(PB_HAS_FIELD(pb_plugin, m->plugin, destroy));
}

/* ---- libraries (library_open) --------------------------------------------------------- */

static const pb_library_spec testlib_spec = {
    .struct_size = sizeof(pb_library_spec),
    .magic = TESTLIB_MAGIC,
    .abi_major = TESTLIB_ABI_MAJOR,
    .abi_minor = TESTLIB_ABI_MINOR,
    .min_struct_size = sizeof(TestLib),
    .entry_symbol = TESTLIB_ENTRY,
    .kind = "test library",
};

static void test_library_open(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(PbLibrary) lib = pb_library_open(search_path(), "testlib", &testlib_spec, &error);
    g_assert_no_error(error);
    const TestLib *t = lib->desc;
    g_assert_cmpstr(t->header.name, ==, "testlib");
    g_assert_cmpstr(t->header.version, ==, "3.2.1");
    g_assert_cmpint(t->add(40, 2), ==, 42);
    g_assert_nonnull(strstr(lib->path, "testlib"));

    /* By path too, like a plugin. */
    g_autofree char *path = g_build_filename(pbt_test_modules(), "testlib.la", NULL);
    g_autoptr(PbLibrary) again = pb_library_open(NULL, path, &testlib_spec, &error);
    g_assert_no_error(error);
    g_assert_true(again->desc == lib->desc); /* the same module, opened twice */
}

static void expect_library_refusal(const char *name, const pb_library_spec *spec, int code,
                                   const char *fragment)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(PbLibrary) lib = pb_library_open(search_path(), name, spec, &error);
    g_assert_null(lib);
    g_assert_error(error, PB_LOADER_ERROR, code);
    if (strstr(error->message, fragment) == NULL)
        g_error("message for %s: '%s' lacks '%s'", name, error->message, fragment);
}

static void test_library_refused(void)
{
    expect_library_refusal("nosuch", &testlib_spec, PB_LOADER_ERROR_NOT_FOUND,
                           "module 'nosuch' not found on the plugin path");
    expect_library_refusal("testlib_badmagic", &testlib_spec, PB_LOADER_ERROR_ABI,
                           ": not a test library (magic 0x50425047, expected 0x544c4942)");
    expect_library_refusal("testlib_badmajor", &testlib_spec, PB_LOADER_ERROR_ABI,
                           ": test library built for ABI 4.0, but its caller speaks ABI 3.2 "
                           "(the major version must match");
    expect_library_refusal("testlib_newminor", &testlib_spec, PB_LOADER_ERROR_ABI,
                           ": test library needs ABI 3.3, but its caller provides only 3.2");
    g_autofree char *small =
        g_strdup_printf(": test library descriptor is %u bytes, its caller needs at least %u",
                        (unsigned)sizeof(pb_library_header), (unsigned)sizeof(TestLib));
    expect_library_refusal("testlib_small", &testlib_spec, PB_LOADER_ERROR_ABI, small);
    g_autofree char *sig = g_strdup_printf(
        ": test library built for plan9-mips-ptr4, but this prebootd is %s", PB_BUILD_SIGNATURE);
    expect_library_refusal("testlib_badsig", &testlib_spec, PB_LOADER_ERROR_ABI, sig);
    /* A plugin is not a library of this kind: its entry symbol is another. */
    expect_library_refusal("testplug", &testlib_spec, PB_LOADER_ERROR_NO_ENTRY,
                           ": no entry point (testplug_LTX_testlib_entry): not a test library");
    /* An older library is fine: the caller reads only what it declares. */
    pb_library_spec newer = testlib_spec;
    newer.abi_minor = TESTLIB_ABI_MINOR + 5;
    g_autoptr(GError) error = NULL;
    g_autoptr(PbLibrary) lib = pb_library_open(search_path(), "testlib", &newer, &error);
    g_assert_no_error(error);
    /* A spec without an entry symbol is the caller's bug, said as such. */
    pb_library_spec none = testlib_spec;
    none.entry_symbol = NULL;
    expect_library_refusal("testlib", &none, PB_LOADER_ERROR_INVALID, "no entry symbol");
}

static void *noop_create(const pb_host *h, pb_instance *i, const pb_config *c, pb_err *e)
{
    return g_malloc(1);
}

static void noop_commit(void *self, void *staged)
{
}

static void test_builtin(void)
{
    static const pb_plugin good = {PB_PLUGIN_HEADER, .name = "inline", .version = "9",
                                   .create = noop_create, .destroy = g_free};
    g_autoptr(GError) error = NULL;
    g_autoptr(PbModule) m = pb_module_new_builtin(&good, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(m->path, ==, "(built in)");

    static const pb_plugin half_reload = {PB_PLUGIN_HEADER, .name = "half", .create = noop_create,
                                          .destroy = g_free, .reload_commit = noop_commit};
    g_autoptr(PbModule) bad = pb_module_new_builtin(&half_reload, &error);
    g_assert_null(bad);
    g_assert_error(error, PB_LOADER_ERROR, PB_LOADER_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "reload_prepare, reload_commit and reload_abort"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/loader/open-by-name", test_open_by_name);
    g_test_add_func("/loader/open-by-path", test_open_by_path);
    g_test_add_func("/loader/missing", test_missing);
    g_test_add_func("/loader/bad-magic", test_bad_magic);
    g_test_add_func("/loader/abi-major-mismatch", test_bad_major);
    g_test_add_func("/loader/abi-minor-newer", test_bad_minor);
    g_test_add_func("/loader/struct-too-small", test_small_struct);
    g_test_add_func("/loader/build-signature", test_bad_signature);
    g_test_add_func("/loader/bad-parameter-table", test_bad_table);
    g_test_add_func("/loader/no-entry-point", test_no_entry);
    g_test_add_func("/loader/scan", test_scan);
    g_test_add_func("/loader/builtin", test_builtin);
    g_test_add_func("/loader/abi-1.0-plugin", test_abi10_plugin);
    g_test_add_func("/loader/library-open", test_library_open);
    g_test_add_func("/loader/library-refused", test_library_refused);
    return g_test_run();
}
