/* test-conf-legacy.c - the legacy .conf reader: syntax, exact error messages, and the four
 * files of the ZENworks admin guide read against tables holding every parameter the guide
 * documents, with its documented default and range. */
#include "build-config.h"

#include "conf-legacy.h"
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

static GPtrArray *parse(const char *text, GPtrArray *warnings, GError **error)
{
    return pb_legacy_parse_full(text, strlen(text), "t.conf", warnings, error);
}

static const PbRawEntry *entry(GPtrArray *a, guint i)
{
    g_assert_cmpuint(i, <, a->len);
    return g_ptr_array_index(a, i);
}

static void assert_entry(GPtrArray *a, guint i, const char *key, const char *value, guint line)
{
    const PbRawEntry *e = entry(a, i);
    g_assert_cmpstr(e->key, ==, key);
    g_assert_cmpstr(e->value, ==, value);
    g_assert_null(e->list);
    g_assert_cmpint(e->source.kind, ==, PB_SOURCE_LEGACY);
    g_assert_cmpstr(e->source.file, ==, "t.conf");
    g_assert_cmpuint(e->source.line, ==, line);
}

static void test_syntax(void)
{
    const char *text = "# comment\n"
                       "; also a comment\n"
                       "\n"
                       "   \t\n"
                       "TransferBlockSize = 1428\n"
                       "TFTPDirectory=/srv/tftp\n"
                       "  Indented\t=\tvalue with spaces   \n"
                       "Inline = 2   # the comment\n"
                       "Hash=a#b\n"
                       "Quoted = \"C:\\Program Files\\x # not a comment\"  # comment\n"
                       "EmptyQuoted = \"\"\n"
                       "NoValue =\n"
                       "NoValueComment = # nothing\n"
                       "PrebootServiceLogFileSize\n"
                       "Bare # with a comment\n"
                       "_under_score9 = x\n"
                       "Eq = a=b\n"
                       "Inner = say \"hi\"\n"
                       "Last = no newline at the end";
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) a = parse(text, NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(a);
    guint i = 0;
    assert_entry(a, i++, "TransferBlockSize", "1428", 5);
    assert_entry(a, i++, "TFTPDirectory", "/srv/tftp", 6);
    assert_entry(a, i++, "Indented", "value with spaces", 7);
    assert_entry(a, i++, "Inline", "2", 8);
    assert_entry(a, i++, "Hash", "a#b", 9);
    assert_entry(a, i++, "Quoted", "C:\\Program Files\\x # not a comment", 10);
    assert_entry(a, i++, "EmptyQuoted", "", 11);
    assert_entry(a, i++, "NoValue", NULL, 12);
    assert_entry(a, i++, "NoValueComment", NULL, 13);
    assert_entry(a, i++, "PrebootServiceLogFileSize", NULL, 14);
    assert_entry(a, i++, "Bare", NULL, 15);
    assert_entry(a, i++, "_under_score9", "x", 16);
    assert_entry(a, i++, "Eq", "a=b", 17);
    assert_entry(a, i++, "Inner", "say \"hi\"", 18);
    assert_entry(a, i++, "Last", "no newline at the end", 19);
    g_assert_cmpuint(a->len, ==, i);
}

static void test_empty(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) a = pb_legacy_parse("", 0, "t.conf", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(a->len, ==, 0);
    g_autoptr(GPtrArray) b = pb_legacy_parse(NULL, 0, "t.conf", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(b->len, ==, 0);
    g_autoptr(GPtrArray) c = parse("\xEF\xBB\xBF", NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(c->len, ==, 0);
}

/* Files saved by Notepad: a BOM, CRLF, and ANSI bytes. */
static void test_windows_file(void)
{
    const char *text = "\xEF\xBB\xBF"
                       "TFTPDirectory = C:\\tftp\r\n"
                       "\r\n"
                       "# comment\r\n"
                       "NBPx86 = \"nvlnbp.sys\"\r\n"
                       "Bare\r\n"
                       "Name = caf\xE9\r\n";
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) a = parse(text, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(a->len, ==, 4);
    assert_entry(a, 0, "TFTPDirectory", "C:\\tftp", 1);
    assert_entry(a, 1, "NBPx86", "nvlnbp.sys", 4);
    assert_entry(a, 2, "Bare", NULL, 5);
    assert_entry(a, 3, "Name", "caf\xC3\xA9", 6); /* Latin-1 e-acute read as U+00E9 */
}

static void test_duplicates(void)
{
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) a = parse("A = 1\n"
                                   "B = 2\n"
                                   "a = 3\n"
                                   "C\n"
                                   "A = 4\n",
                                   warnings, &error);
    g_assert_no_error(error);
    /* Later wins, at its own place; the spelling is the later one's. */
    g_assert_cmpuint(a->len, ==, 3);
    assert_entry(a, 0, "B", "2", 2);
    assert_entry(a, 1, "C", NULL, 4);
    assert_entry(a, 2, "A", "4", 5);
    g_assert_cmpuint(warnings->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(warnings, 0), ==,
                    "t.conf:3: a: also set at line 1; this later value wins");
    g_assert_cmpstr(g_ptr_array_index(warnings, 1), ==,
                    "t.conf:5: A: also set at line 3; this later value wins");
}

static void test_nul(void)
{
    static const char text[] = "A = 1\nB = 2\nC = x\0y\nD = 4\n";
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) a = pb_legacy_parse(text, sizeof(text) - 1, "t.conf", &error);
    g_assert_null(a);
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX);
    g_assert_cmpstr(error->message, ==, "t.conf:3: NUL byte in the line (not a text file?)");
}

static const struct {
    const char *text;
    const char *message;
} bad[] = {
    {"= value\n", "t.conf:1: expected 'Key = value', got '= value'"},
    {"A = 1\n\n9Lives = 3\n", "t.conf:3: expected 'Key = value', got '9Lives = 3'"},
    {"Key value\n", "t.conf:1: expected 'Key = value', got 'Key value'"},
    {"Key: value\n", "t.conf:1: expected 'Key = value', got 'Key: value'"},
    {"[section]\n", "t.conf:1: expected 'Key = value', got '[section]'"},
    {"Key-Name = 1\n", "t.conf:1: expected 'Key = value', got 'Key-Name = 1'"},
    {"Key#x = 1\n", "t.conf:1: expected 'Key = value', got 'Key#x = 1'"},
    {"  \"Quoted\" = 1\r\n", "t.conf:1: expected 'Key = value', got '\"Quoted\" = 1'"},
    {"K\xC3\xA9y = 1\n", "t.conf:1: expected 'Key = value', got 'K\xC3\xA9y = 1'"},
    /* The quoted text is cut at 40 characters; control bytes are shown escaped. */
    {"ThisIsAVeryLongKeyName ThatGoesOnAndOnAndOnForever = 1\n",
     "t.conf:1: expected 'Key = value', got 'ThisIsAVeryLongKeyName ThatGoesOnAndOnAn...'"},
    {"A\x1b[31m = 1\n", "t.conf:1: expected 'Key = value', got 'A\\x1B[31m = 1'"},
    {"A = \"open\n", "t.conf:1: A: no closing double quote"},
    {"Path = \"a\" b\n", "t.conf:1: Path: unexpected text after the closing quote: 'b'"},
    {"Path = \"a\"#b\n", "t.conf:1: Path: unexpected text after the closing quote: '#b'"},
};

static void test_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) a = parse(bad[i].text, NULL, &error);
        g_test_message("case %zu: %s", i, bad[i].message);
        g_assert_null(a);
        g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX);
        g_assert_cmpstr(error->message, ==, bad[i].message);
    }
}

/* ---- the reference files ------------------------------------------------------------- */

/* Every parameter the admin guide documents for each service, with its documented default
 * and range, as the plugins are expected to declare them (the plugins own the real tables;
 * this one pins down what the guide promises). Undocumented ranges are generous. */
static const pb_param pbserv_params[] = {
    {.name = "log_enable",
     .legacy = "EnableLogging",
     .type = PB_PARAM_BOOL,
     .role = PB_ROLE_LOG_ENABLE,
     .def = "yes"},
    {.name = "address",
     .legacy = "IPAddress",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_EMPTY_OK | PB_PARAM_F_RESTART,
     .def = ""},
    {.name = "library",
     .legacy = "LIBRARY_NAME",
     .type = PB_PARAM_PATH,
     .def = "/opt/novell/zenworks/preboot/lib/libzenimgweb.so"},
    {.name = "log_file_size",
     .legacy = "PrebootServiceLogFileSize",
     .type = PB_PARAM_INT,
     .role = PB_ROLE_LOG_SIZE,
     .def = "15",
     .min = 0,
     .max = 4096,
     .unit = "MB"},
};

static const pb_param proxydhcp_params[] = {
    {.name = "local_dhcp", .legacy = "LocalDHCPFlag", .type = PB_PARAM_BOOL, .def = "0"},
    {.name = "address",
     .legacy = "LocalInterface",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_EMPTY_OK | PB_PARAM_F_RESTART,
     .def = ""},
    {.name = "policy_engine",
     .legacy = "NovellPolicyEngine",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = ""},
    {.name = "nbp_x86", .legacy = "NBPx86", .type = PB_PARAM_STRING, .def = "nvlnbp.sys"},
    {.name = "menu_timeout",
     .legacy = "MenuTimeout",
     .type = PB_PARAM_INT,
     .def = "2",
     .min = 0,
     .max = 255,
     .unit = "s"},
    PB_LOG_PARAMS("ProxyLogLevel", "ProxyLogFile", "ProxyLogFileSize", "novell-proxydhcp.log",
                  NULL),
};

static const pb_param tftp_params[] = {
    {.name = "address",
     .legacy = "TFTPInterface",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_EMPTY_OK | PB_PARAM_F_RESTART,
     .def = ""},
    {.name = "block_size",
     .legacy = "TransferBlockSize",
     .type = PB_PARAM_INT,
     .def = "1428",
     .min = 512,
     .max = 4428,
     .unit = "bytes"},
    {.name = "timeout",
     .legacy = "TimeoutInterval",
     .type = PB_PARAM_INT,
     .def = "1",
     .min = 1,
     .max = 60,
     .unit = "s"},
    {.name = "root", .legacy = "TFTPDirectory", .type = PB_PARAM_PATH, .def = "/srv/tftp"},
    {.name = "allow_writes", .legacy = "TFTPAllowWrites", .type = PB_PARAM_BOOL, .def = "0"},
    {.name = "allow_overwrites",
     .legacy = "TFTPAllowOverwrites",
     .type = PB_PARAM_BOOL,
     .def = "0"},
    PB_LOG_PARAMS("TFTPLogLevel", "TFTPLogFile", "TFTPLogFileSize", "novell-tftp.log", NULL),
};

static const pb_param policy_params[] = {
    {.name = "address",
     .legacy = "LocalInterface",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_EMPTY_OK | PB_PARAM_F_RESTART,
     .def = ""},
    PB_LOG_PARAMS("PolicyLogLevel", "PolicyLogFile", "PolicyLogFileSize",
                  "novell-zmgprebootpolicy.log", NULL),
    {.name = "preboot_server",
     .legacy = "PrebootServer",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = ""},
    {.name = "amt_support",
     .legacy = "EnableAMTSupport",
     .type = PB_PARAM_BOOL,
     .flags = PB_PARAM_F_DEPRECATED,
     .def = "no",
     .help = "Intel AMT support was never implemented by the legacy product and is ignored."},
};

static const char *const pbserv_files[] = {"novell-pbserv.conf", NULL};
static const char *const proxydhcp_files[] = {"novell-proxydhcp.conf", NULL};
static const char *const tftp_files[] = {"novell-tftp.conf", NULL};
static const char *const policy_files[] = {"novell-zmgprebootpolicy.conf", NULL};

#define REF_PLUGIN(var, modname, table, files)                                          \
    static const pb_plugin var = {PB_PLUGIN_HEADER, .name = modname, .version = "test", \
                                  PB_PARAMS(table), .legacy_files = files}
REF_PLUGIN(pbserv_plugin, "imaging", pbserv_params, pbserv_files);
REF_PLUGIN(proxydhcp_plugin, "proxydhcp", proxydhcp_params, proxydhcp_files);
REF_PLUGIN(tftp_plugin, "tftp", tftp_params, tftp_files);
REF_PLUGIN(policy_plugin, "policy", policy_params, policy_files);

static const pb_plugin *const ref_plugins[] = {&pbserv_plugin, &proxydhcp_plugin, &tftp_plugin,
                                               &policy_plugin};

static char *data_file(const char *name)
{
    return g_test_build_filename(G_TEST_DIST, "tests", "data", "legacy", name, NULL);
}

static struct pb_config *build_file(const pb_plugin *plugin, const char *path, GPtrArray *warnings)
{
    g_autoptr(PbInstanceSpec) spec = pb_instance_spec_new_legacy(path, NULL);
    g_autoptr(GError) error = NULL;
    struct pb_config *cfg = pb_config_build(plugin, spec, warnings, &error);
    g_assert_no_error(error);
    g_assert_nonnull(cfg);
    return cfg;
}

static void assert_value(const struct pb_config *cfg, const char *name, const char *text,
                         PbSourceKind kind, guint line)
{
    const PbValue *v = pb_config_value(cfg, name);
    g_assert_nonnull(v);
    g_assert_cmpstr(v->text, ==, text);
    g_assert_cmpint(v->source.kind, ==, kind);
    g_assert_cmpuint(v->source.line, ==, line);
}

static void test_reference_tables(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(ref_plugins); i++) {
        g_autoptr(GError) error = NULL;
        g_assert_true(pb_param_table_check(ref_plugins[i], &error));
        g_assert_no_error(error);
    }
}

/* Each reference file parses cleanly, and every key in it is a documented parameter. */
static void test_reference_files(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(ref_plugins); i++) {
        const pb_plugin *plugin = ref_plugins[i];
        g_autofree char *path = data_file(plugin->legacy_files[0]);
        g_autofree char *text = NULL;
        gsize len = 0;
        g_assert_true(g_file_get_contents(path, &text, &len, NULL));
        g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) entries = pb_legacy_parse_full(text, len, path, warnings, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(warnings->len, ==, 0);
        /* The guide lists every parameter of the table in its file. */
        g_assert_cmpuint(entries->len, ==, plugin->n_params);
        for (guint j = 0; j < entries->len; j++) {
            const PbRawEntry *e = g_ptr_array_index(entries, j);
            gboolean found = FALSE;
            for (guint k = 0; k < plugin->n_params; k++)
                found = found || g_ascii_strcasecmp(plugin->params[k].legacy, e->key) == 0;
            g_test_message("%s: %s", plugin->name, e->key);
            g_assert_true(found);
        }
    }
}

static void test_reference_values(void)
{
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);

    g_autofree char *pbserv = data_file("novell-pbserv.conf");
    g_autoptr(pb_config) c1 = build_file(&pbserv_plugin, pbserv, warnings);
    assert_value(c1, "log_enable", "yes", PB_SOURCE_LEGACY, 4);
    /* "IPAddress=", "LIBRARY_NAME=" and a bare "PrebootServiceLogFileSize": defaults. */
    assert_value(c1, "address", "", PB_SOURCE_DEFAULT, 0);
    assert_value(c1, "library", "/opt/novell/zenworks/preboot/lib/libzenimgweb.so",
                 PB_SOURCE_DEFAULT, 0);
    assert_value(c1, "log_file_size", "15", PB_SOURCE_DEFAULT, 0);
    g_assert_cmpint(pb_config_value(c1, "log_file_size")->number, ==, 15);

    g_autofree char *proxy = data_file("novell-proxydhcp.conf");
    g_autoptr(pb_config) c2 = build_file(&proxydhcp_plugin, proxy, warnings);
    assert_value(c2, "local_dhcp", "no", PB_SOURCE_LEGACY, 5);
    assert_value(c2, "address", "10.0.0.1", PB_SOURCE_LEGACY, 6);
    assert_value(c2, "policy_engine", "10.0.0.1", PB_SOURCE_LEGACY, 7);
    assert_value(c2, "nbp_x86", "nvlnbp.sys", PB_SOURCE_LEGACY, 8);
    assert_value(c2, "menu_timeout", "2", PB_SOURCE_LEGACY, 9);
    assert_value(c2, "log_level", "2", PB_SOURCE_LEGACY, 10);
#ifdef G_OS_WIN32
    assert_value(c2, "log_file", "path\\novell-proxydhcp.log", PB_SOURCE_LEGACY, 11);
#else
    assert_value(c2, "log_file", "path/novell-proxydhcp.log", PB_SOURCE_LEGACY, 11);
#endif
    assert_value(c2, "log_file_size", "15", PB_SOURCE_LEGACY, 12);

    g_autofree char *tftp = data_file("novell-tftp.conf");
    g_autoptr(pb_config) c3 = build_file(&tftp_plugin, tftp, warnings);
    assert_value(c3, "address", "10.0.0.1", PB_SOURCE_LEGACY, 5);
    assert_value(c3, "block_size", "1428", PB_SOURCE_LEGACY, 6);
    g_assert_cmpint(pb_config_value(c3, "block_size")->number, ==, 1428);
    assert_value(c3, "timeout", "1", PB_SOURCE_LEGACY, 7);
    assert_value(c3, "root", "/srv/tftp", PB_SOURCE_LEGACY, 8);
    assert_value(c3, "allow_writes", "no", PB_SOURCE_LEGACY, 9);
    assert_value(c3, "allow_overwrites", "no", PB_SOURCE_LEGACY, 10);
    assert_value(c3, "log_level", "2", PB_SOURCE_LEGACY, 11);
    assert_value(c3, "log_file_size", "15", PB_SOURCE_LEGACY, 13);
    g_assert_cmpstr(pb_config_value(c3, "log_file")->source.file, ==, tftp);

    g_assert_cmpuint(warnings->len, ==, 0);

    g_autofree char *policy = data_file("novell-zmgprebootpolicy.conf");
    g_autoptr(pb_config) c4 = build_file(&policy_plugin, policy, warnings);
    assert_value(c4, "address", "10.0.0.1", PB_SOURCE_LEGACY, 5);
    assert_value(c4, "log_level", "1", PB_SOURCE_LEGACY, 6);
    assert_value(c4, "log_file_size", "15", PB_SOURCE_LEGACY, 8);
    assert_value(c4, "preboot_server", "10.0.0.5", PB_SOURCE_LEGACY, 9);
    assert_value(c4, "amt_support", "yes", PB_SOURCE_LEGACY, 10);
    /* EnableAMTSupport is documented as unsupported: accepted, with a warning. */
    g_assert_cmpuint(warnings->len, ==, 1);
    g_autofree char *expect = g_strdup_printf(
        "%s:10: EnableAMTSupport: deprecated: Intel AMT support was never implemented by the "
        "legacy product and is ignored.",
        policy);
    g_assert_cmpstr(g_ptr_array_index(warnings, 0), ==, expect);
}

/* A file listing every documented key without a value gets every documented default; so
 * does no file at all. */
static void test_reference_defaults(void)
{
    g_autofree char *dir = g_dir_make_tmp("preboot-legacy-XXXXXX", NULL);
    g_assert_nonnull(dir);
    for (gsize i = 0; i < G_N_ELEMENTS(ref_plugins); i++) {
        const pb_plugin *plugin = ref_plugins[i];
        g_autoptr(GString) text = g_string_new("# every key, no values\r\n");
        for (guint k = 0; k < plugin->n_params; k++)
            g_string_append_printf(text, k % 2 ? "%s =\r\n" : "%s\r\n", plugin->params[k].legacy);
        g_autofree char *path = g_build_filename(dir, plugin->legacy_files[0], NULL);
        g_assert_true(g_file_set_contents(path, text->str, (gssize)text->len, NULL));

        g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(pb_config) cfg = build_file(plugin, path, warnings);
        g_autoptr(PbInstanceSpec) empty = g_new0(PbInstanceSpec, 1);
        g_autoptr(GError) error = NULL;
        g_autoptr(pb_config) none = pb_config_build(plugin, empty, NULL, &error);
        g_assert_no_error(error);
        for (guint k = 0; k < plugin->n_params; k++) {
            const pb_param *p = &plugin->params[k];
            PbValue def;
            g_assert_true(pb_param_parse(p, p->def, PB_SOURCE_DEFAULT, &def, NULL));
            g_test_message("%s: %s = %s", plugin->name, p->legacy, def.text);
            g_assert_cmpstr(cfg->values[k].text, ==, def.text);
            g_assert_cmpint(cfg->values[k].source.kind, ==, PB_SOURCE_DEFAULT);
            g_assert_true(pb_config_value_equal(cfg, none, k));
            pb_value_clear(&def);
        }
        /* Naming a deprecated key warns even without a value. */
        guint deprecated = 0;
        for (guint k = 0; k < plugin->n_params; k++)
            deprecated += (plugin->params[k].flags & PB_PARAM_F_DEPRECATED) != 0;
        g_assert_cmpuint(warnings->len, ==, deprecated);
        g_assert_cmpint(g_unlink(path), ==, 0);
    }
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* The message the brief promises, with the path as given. */
static void test_value_error_in_file(void)
{
    g_autofree char *dir = g_dir_make_tmp("preboot-legacy-XXXXXX", NULL);
    g_autofree char *cwd = g_get_current_dir();
    g_assert_cmpint(g_chdir(dir), ==, 0);
    const char *text = "# novell-tftp.conf\n"
                       "TFTPInterface = 10.0.0.1\n"
                       "\n\n\n\n\n\n\n\n\n"
                       "TransferBlockSize = 9000\n"
                       "TimeoutInterval = soon\n"
                       "TFTPInterface = 10.0.0.300\n"
                       "Frobnicate = 1\n";
    g_assert_true(g_file_set_contents("novell-tftp.conf", text, -1, NULL));
    g_autoptr(PbInstanceSpec) spec = pb_instance_spec_new_legacy("novell-tftp.conf", NULL);
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;
    g_autoptr(pb_config) cfg = pb_config_build(&tftp_plugin, spec, warnings, &error);
    g_assert_null(cfg);
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE);
    /* Every bad value is reported, not only the first. */
    g_assert_cmpstr(error->message, ==,
                    "novell-tftp.conf:12: TransferBlockSize: '9000' is out of range (512-4428)\n"
                    "novell-tftp.conf:13: TimeoutInterval: 'soon' is not a number (1-60)\n"
                    "novell-tftp.conf:14: TFTPInterface: '10.0.0.300' is not an IPv4 or IPv6 "
                    "address");
    g_assert_cmpuint(warnings->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(warnings, 0), ==,
                    "novell-tftp.conf:14: TFTPInterface: also set at line 2; this later value "
                    "wins");
    g_assert_cmpstr(g_ptr_array_index(warnings, 1), ==,
                    "novell-tftp.conf:15: unknown key 'Frobnicate' (plugin tftp)");
    g_assert_cmpint(g_unlink("novell-tftp.conf"), ==, 0);
    g_assert_cmpint(g_chdir(cwd), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/legacy/syntax", test_syntax);
    g_test_add_func("/legacy/empty", test_empty);
    g_test_add_func("/legacy/windows-file", test_windows_file);
    g_test_add_func("/legacy/duplicates", test_duplicates);
    g_test_add_func("/legacy/nul", test_nul);
    g_test_add_func("/legacy/bad", test_bad);
    g_test_add_func("/legacy/reference/tables", test_reference_tables);
    g_test_add_func("/legacy/reference/files", test_reference_files);
    g_test_add_func("/legacy/reference/values", test_reference_values);
    g_test_add_func("/legacy/reference/defaults", test_reference_defaults);
    g_test_add_func("/legacy/value-error-in-file", test_value_error_in_file);
    return g_test_run();
}
