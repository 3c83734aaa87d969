/* test-loader.c - loading modules: the good one, and every way a module is refused, each
 * with the message an administrator would read. */
#include "build-config.h"

#include "loader.h"
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
        PB_ABI_MAJOR + 1, PB_ABI_MINOR, PB_ABI_MAJOR, PB_ABI_MINOR);
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
    const char *expect[] = {"badmagic", "badmajor",    "badminor", "badsig",       "badtable",
                            "noentry",  "smallstruct", "testplug", "testplug_norl"};
    g_assert_cmpuint(files->len, ==, G_N_ELEMENTS(expect));
    for (guint i = 0; i < files->len; i++) {
        g_autofree char *base = g_path_get_basename(g_ptr_array_index(files, i));
        g_autofree char *want = g_strconcat(expect[i], ".la", NULL);
        g_assert_cmpstr(base, ==, want);
    }
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
    return g_test_run();
}
