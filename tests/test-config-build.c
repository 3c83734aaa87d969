/* test-config-build.c - from files to validated values: pb_config_load() on YAML, legacy
 * files and directories; pb_config_build()'s precedence (defaults < legacy files < YAML),
 * sources, warnings and errors; pb_config_dump(). Runs in a scratch directory so the
 * messages carry short relative paths, exactly as a user would see them. */
#include "build-config.h"

#include "conf-yaml.h"
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

static const char *const modes[] = {"fast", "safe", NULL};

static const pb_param params[] = {
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
     .max = 4428},
    {.name = "root", .legacy = "TFTPDirectory", .type = PB_PARAM_PATH, .def = "/srv/tftp"},
    {.name = "allow_writes", .legacy = "TFTPAllowWrites", .type = PB_PARAM_BOOL, .def = "0"},
    {.name = "mode", .type = PB_PARAM_ENUM, .def = "safe", .choices = modes},
    {.name = "allow_networks", .type = PB_PARAM_LIST, .def = ""},
    {.name = "banner", .type = PB_PARAM_STRING, .def = "hello world"},
    {.name = "amt",
     .legacy = "EnableAMTSupport",
     .type = PB_PARAM_BOOL,
     .flags = PB_PARAM_F_DEPRECATED,
     .def = "no",
     .help = "AMT is not supported."},
    {.name = "log_level",
     .legacy = "TFTPLogLevel",
     .type = PB_PARAM_INT,
     .role = PB_ROLE_LOG_LEVEL,
     .def = "2",
     .min = 0,
     .max = 4},
};
static const char *const files[] = {"novell-tftp.conf", NULL};
static const pb_plugin plugin = {PB_PLUGIN_HEADER, .name = "tftp", .version = "1",
                                 PB_PARAMS(params), .legacy_files = files};

static const pb_param required_params[] = {
    {.name = "server",
     .legacy = "PrebootServer",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_REQUIRED},
    {.name = "names", .type = PB_PARAM_LIST, .flags = PB_PARAM_F_REQUIRED},
};
static const pb_plugin required_plugin = {PB_PLUGIN_HEADER, .name = "policy", .version = "1",
                                          PB_PARAMS(required_params)};

typedef struct {
    char *dir;
    char *cwd;
} Fixture;

static void setup(Fixture *f, gconstpointer data)
{
    f->cwd = g_get_current_dir();
    f->dir = g_dir_make_tmp("preboot-config-XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    g_assert_cmpint(g_chdir(f->dir), ==, 0);
}

static void remove_tree(const char *path)
{
    if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
        g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
        const char *n;
        while (d != NULL && (n = g_dir_read_name(d)) != NULL) {
            g_autofree char *child = g_build_filename(path, n, NULL);
            remove_tree(child);
        }
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

static void teardown(Fixture *f, gconstpointer data)
{
    g_assert_cmpint(g_chdir(f->cwd), ==, 0);
    remove_tree(f->dir);
    g_free(f->dir);
    g_free(f->cwd);
}

static void write_file(const char *path, const char *text)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static PbConfig *yaml(const char *text)
{
    g_autoptr(GError) error = NULL;
    PbConfig *cfg = pb_yaml_parse(text, strlen(text), "preboot.yaml", &error);
    g_assert_no_error(error);
    return cfg;
}

static PbInstanceSpec *last_instance(PbConfig *cfg)
{
    g_assert_cmpuint(cfg->instances->len, >=, 1);
    return g_ptr_array_index(cfg->instances, cfg->instances->len - 1);
}

/* Paths as this test writes them: the Windows build joins with '\\'. */
static char *slashed(const char *path)
{
    char *p = g_strdup(path);
#ifdef G_OS_WIN32
    if (p)
        g_strdelimit(p, "\\", '/');
#endif
    return p;
}

static void assert_value(const struct pb_config *cfg, const char *name, const char *text,
                         PbSourceKind kind, const char *file, guint line)
{
    const PbValue *v = pb_config_value(cfg, name);
    g_assert_nonnull(v);
    g_autofree char *got = g_strdup(v->text);
#ifdef G_OS_WIN32
    g_strdelimit(got, "\\", '/'); /* the Windows build keeps legacy '\\' */
#endif
    g_assert_cmpstr(got, ==, text);
    g_assert_cmpint(v->source.kind, ==, kind);
    g_autofree char *src = g_strdup(v->source.file);
#ifdef G_OS_WIN32
    if (src)
        g_strdelimit(src, "\\", '/');
#endif
    g_assert_cmpstr(src, ==, file);
    g_assert_cmpuint(v->source.line, ==, line);
}

/* Defaults, then each legacy file in order, then YAML; each value remembers its source. */
static void test_precedence(Fixture *f, gconstpointer data)
{
    write_file("novell-tftp.conf", "TFTPInterface = 10.0.0.1\n"
                                   "TransferBlockSize = 1024\n"
                                   "TFTPDirectory = %PB_TEST_ROOT%\\tftp\n"
                                   "TFTPAllowWrites = 1\n"
                                   "allow_networks = 10.0.0.0/8, 172.16.0.0/12\n");
    write_file("site/override.conf", "transferblocksize = 2048\n"
                                     "TFTPLogLevel = 4\n");
    g_setenv("PB_TEST_ROOT", "/data", TRUE);
    g_autoptr(PbConfig) cfg = yaml("plugins:\n"
                                   "  - module: tftp\n"
                                   "    legacy: [novell-tftp.conf, site/override.conf]\n"
                                   "    TransferBlockSize: 4096\n"
                                   "    mode: FAST\n"
                                   "    TFTPLogLevel:\n"
                                   "    banner: \"\"\n");
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;
    g_autoptr(pb_config) c = pb_config_build(&plugin, last_instance(cfg), warnings, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(warnings->len, ==, 0);
    g_assert_true(c->plugin == &plugin);
    g_assert_cmpuint(c->n, ==, G_N_ELEMENTS(params));

    assert_value(c, "address", "10.0.0.1", PB_SOURCE_LEGACY, "novell-tftp.conf", 1);
    assert_value(c, "block_size", "4096", PB_SOURCE_YAML, "preboot.yaml", 4);
    g_assert_cmpint(pb_config_value(c, "block_size")->number, ==, 4096);
    assert_value(c, "root", "/data/tftp", PB_SOURCE_LEGACY, "novell-tftp.conf", 3);
    assert_value(c, "allow_writes", "yes", PB_SOURCE_LEGACY, "novell-tftp.conf", 4);
    assert_value(c, "mode", "fast", PB_SOURCE_YAML, "preboot.yaml", 5);
    g_assert_cmpint(pb_config_value(c, "mode")->number, ==, 0);
    assert_value(c, "allow_networks", "10.0.0.0/8, 172.16.0.0/12", PB_SOURCE_LEGACY,
                 "novell-tftp.conf", 5);
    g_assert_cmpuint(g_strv_length(pb_config_value(c, "allow_networks")->list), ==, 2);
    assert_value(c, "banner", "", PB_SOURCE_YAML, "preboot.yaml", 7);
    assert_value(c, "amt", "no", PB_SOURCE_DEFAULT, NULL, 0);
    /* The later legacy file set 4; the YAML "TFTPLogLevel:" with no value asks for the
     * default again. */
    assert_value(c, "log_level", "2", PB_SOURCE_DEFAULT, NULL, 0);

    g_assert_cmpint(pb_config_find(c, "root"), ==, 2);
    g_assert_cmpint(pb_config_find(c, "TFTPDirectory"), ==, -1);
    g_assert_cmpint(pb_config_find(c, "nope"), ==, -1);
    g_assert_null(pb_config_value(c, "nope"));

    g_autoptr(GString) dump = g_string_new(NULL);
    pb_config_dump(c, dump);
#ifdef G_OS_WIN32
    g_strdelimit(dump->str, "\\", '/'); /* the Windows build keeps legacy '\\' */
#endif
    g_assert_cmpstr(dump->str, ==,
                    "  address: 10.0.0.1    # novell-tftp.conf:1 (TFTPInterface)\n"
                    "  block_size: 4096    # preboot.yaml:4\n"
                    "  root: /data/tftp    # novell-tftp.conf:3 (TFTPDirectory)\n"
                    "  allow_writes: yes    # novell-tftp.conf:4 (TFTPAllowWrites)\n"
                    "  mode: fast    # preboot.yaml:5\n"
                    "  allow_networks: [10.0.0.0/8, 172.16.0.0/12]    # novell-tftp.conf:5 "
                    "(allow_networks)\n"
                    "  banner: \"\"    # preboot.yaml:7\n"
                    "  amt: no    # default\n"
                    "  log_level: 2    # default\n");
}

static void test_yaml_list(Fixture *f, gconstpointer data)
{
    g_autoptr(PbConfig) cfg = yaml("plugins:\n"
                                   "  - module: tftp\n"
                                   "    allow_networks: [10.0.0.0/8, '192.168.0.0/16']\n"
                                   "    banner: 'say: \"hi\"'\n");
    g_autoptr(GError) error = NULL;
    g_autoptr(pb_config) c = pb_config_build(&plugin, last_instance(cfg), NULL, &error);
    g_assert_no_error(error);
    const PbValue *v = pb_config_value(c, "allow_networks");
    g_assert_cmpuint(g_strv_length(v->list), ==, 2);
    g_assert_cmpstr(v->list[1], ==, "192.168.0.0/16");
    g_assert_cmpuint(v->source.line, ==, 3);

    g_autoptr(GString) dump = g_string_new(NULL);
    pb_config_dump(c, dump);
    g_assert_nonnull(strstr(dump->str, "  allow_networks: [10.0.0.0/8, 192.168.0.0/16]    # "
                                       "preboot.yaml:3\n"));
    g_assert_nonnull(strstr(dump->str, "  banner: \"say: \\\"hi\\\"\"    # preboot.yaml:4\n"));
}

static void test_warnings(Fixture *f, gconstpointer data)
{
    write_file("novell-tftp.conf", "Frobnicate = 1\n"
                                   "EnableAMTSupport = yes\n"
                                   "TFTPLogLevel = 3\n"
                                   "TFTPLogLevel = 1\n");
    g_autoptr(PbConfig) cfg = yaml("plugins:\n"
                                   "  - module: tftp\n"
                                   "    legacy: novell-tftp.conf\n"
                                   "    blocksize: 512\n"
                                   "    amt: no\n"
                                   "    root: /a\n"
                                   "    TFTPDirectory: /b\n");
    g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;
    g_autoptr(pb_config) c = pb_config_build(&plugin, last_instance(cfg), warnings, &error);
    g_assert_no_error(error);
    const char *expect[] = {
        /* The reader's warnings come first: it reads the whole file before any key is
         * matched to the table. */
        "novell-tftp.conf:4: TFTPLogLevel: also set at line 3; this later value wins",
        "novell-tftp.conf:1: unknown key 'Frobnicate' (plugin tftp)",
        "novell-tftp.conf:2: EnableAMTSupport: deprecated: AMT is not supported.",
        "preboot.yaml:4: unknown key 'blocksize' (plugin tftp)",
        "preboot.yaml:5: amt: deprecated: AMT is not supported.",
        "preboot.yaml:7: TFTPDirectory: also set at line 6 (as root); this later value wins",
    };
    g_assert_cmpuint(warnings->len, ==, G_N_ELEMENTS(expect));
    for (guint i = 0; i < G_N_ELEMENTS(expect); i++)
        g_assert_cmpstr(g_ptr_array_index(warnings, i), ==, expect[i]);
    assert_value(c, "log_level", "1", PB_SOURCE_LEGACY, "novell-tftp.conf", 4);
    assert_value(c, "amt", "no", PB_SOURCE_YAML, "preboot.yaml", 5);
    assert_value(c, "root", "/b", PB_SOURCE_YAML, "preboot.yaml", 7);
}

/* Every bad value is reported, file:line: key as the input spelled it: message. */
static void test_errors(Fixture *f, gconstpointer data)
{
    write_file("novell-tftp.conf", "TFTPLogLevel = 9\n");
    g_autoptr(PbConfig) cfg = yaml("plugins:\n"
                                   "  - module: tftp\n"
                                   "    legacy: novell-tftp.conf\n"
                                   "    TransferBlockSize: 9000\n"
                                   "    root: [/a, /b]\n"
                                   "    MODE: slow\n"
                                   "    allow_writes: perhaps\n"
                                   "    address: localhost\n");
    g_autoptr(GError) error = NULL;
    g_autoptr(pb_config) c = pb_config_build(&plugin, last_instance(cfg), NULL, &error);
    g_assert_null(c);
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE);
    g_assert_cmpstr(error->message, ==,
                    "novell-tftp.conf:1: TFTPLogLevel: '9' is out of range (0-4)\n"
                    "preboot.yaml:4: TransferBlockSize: '9000' is out of range (512-4428)\n"
                    "preboot.yaml:5: root: expected a single value, got a list\n"
                    "preboot.yaml:6: MODE: 'slow' is not one of: fast, safe\n"
                    "preboot.yaml:7: allow_writes: 'perhaps' is not a boolean (yes/no, "
                    "true/false, on/off, 1/0)\n"
                    "preboot.yaml:8: address: 'localhost' is not an IPv4 or IPv6 address");
}

static void test_required(Fixture *f, gconstpointer data)
{
    g_autoptr(PbConfig) cfg = yaml("plugins:\n"
                                   "  - module: tftp\n"
                                   "  - module: policy\n"
                                   "    PrebootServer:\n");
    g_autoptr(GError) error = NULL;
    g_autoptr(pb_config) c = pb_config_build(&required_plugin, last_instance(cfg), NULL, &error);
    g_assert_null(c);
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE);
    g_assert_cmpstr(error->message, ==,
                    "preboot.yaml:4: PrebootServer: a value is required\n"
                    "preboot.yaml:3: names: a value is required");
    g_clear_error(&error);

    g_autoptr(PbConfig) ok = yaml("plugins:\n"
                                  "  - module: policy\n"
                                  "    server: 10.0.0.5\n"
                                  "    names: [a]\n");
    g_autoptr(pb_config) c2 = pb_config_build(&required_plugin, last_instance(ok), NULL, &error);
    g_assert_no_error(error);
    assert_value(c2, "server", "10.0.0.5", PB_SOURCE_YAML, "preboot.yaml", 3);
}

static void test_legacy_problems(Fixture *f, gconstpointer data)
{
    g_autoptr(PbInstanceSpec) missing = pb_instance_spec_new_legacy("nope.conf", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(pb_config) c = pb_config_build(&plugin, missing, NULL, &error);
    g_assert_null(c);
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_IO);
    g_assert_cmpstr(error->message, ==, "nope.conf: cannot read: no such file or directory");
    g_clear_error(&error);

    write_file("bad.conf", "TFTPLogLevel = 1\nthis is not a setting\n");
    g_autoptr(PbInstanceSpec) bad = pb_instance_spec_new_legacy("bad.conf", NULL);
    g_assert_cmpstr(bad->name, ==, "bad");
    g_autoptr(pb_config) c2 = pb_config_build(&plugin, bad, NULL, &error);
    g_assert_null(c2);
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX);
    g_assert_cmpstr(error->message, ==,
                    "bad.conf:2: expected 'Key = value', got 'this is not a setting'");
    g_clear_error(&error);

    /* Legacy-only instances get a name fit for a directory and a prebootctl word. */
    static const char *const names[][2] = {
        {"/", "_"},
        {"/etc/opt/novell/novell-tftp.conf", "novell-tftp"},
        {"my file.CONF", "my_file"},
        {".hidden.conf", "_hidden"},
        {"a.b.conf", "a.b"},
        {"../x/caf\xc3\xa9.conf", "caf__"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autoptr(PbInstanceSpec) s = pb_instance_spec_new_legacy(names[i][0], NULL);
        g_assert_cmpstr(s->name, ==, names[i][1]);
        {
            g_autofree char *l0 = slashed(g_ptr_array_index(s->legacy, 0));
            g_assert_cmpstr(l0, ==, names[i][0]);
        }
    }

    /* A broken table is refused before any file is read. */
    static const pb_param broken[] = {{.name = "Bad", .type = PB_PARAM_STRING}};
    static const pb_plugin broken_plugin = {PB_PLUGIN_HEADER, .name = "broken", PB_PARAMS(broken)};
    g_autoptr(pb_config) c3 = pb_config_build(&broken_plugin, missing, NULL, &error);
    g_assert_null(c3);
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_TABLE);
}

static void test_value_equal(Fixture *f, gconstpointer data)
{
    g_autoptr(PbConfig) a = yaml("plugins: [{module: tftp, root: /a, allow_networks: [x, y]}]");
    g_autoptr(PbConfig) b = yaml("plugins:\n\n  - {module: tftp, root: /a, block_size: 600,\n"
                                 "     allow_networks: ['x, y']}");
    g_autoptr(pb_config) ca = pb_config_build(&plugin, last_instance(a), NULL, NULL);
    g_autoptr(pb_config) cb = pb_config_build(&plugin, last_instance(b), NULL, NULL);
    g_assert_nonnull(ca);
    g_assert_nonnull(cb);
    /* Same value from different lines: equal (a reload need not touch it). */
    g_assert_true(pb_config_value_equal(ca, cb, (guint)pb_config_find(ca, "root")));
    g_assert_true(pb_config_value_equal(ca, cb, (guint)pb_config_find(ca, "banner")));
    g_assert_false(pb_config_value_equal(ca, cb, (guint)pb_config_find(ca, "block_size")));
    /* ["x", "y"] and ["x, y"] print alike but differ. */
    g_assert_false(pb_config_value_equal(ca, cb, (guint)pb_config_find(ca, "allow_networks")));
}

static void test_load_yaml(Fixture *f, gconstpointer data)
{
    write_file("etc/legacy.d/novell-tftp.conf", "TFTPLogLevel = 3\n");
    write_file("etc/legacy.d/novell-proxydhcp.conf", "ProxyLogLevel = 3\n");
    write_file("etc/legacy.d/README", "not a conf file\n");
    write_file("etc/preboot.yaml", "daemon:\n"
                                   "  log_dir: /tmp/x\n"
                                   "legacy:\n"
                                   "  - legacy.d\n"
                                   "  - /etc/opt/novell/novell-zmgprebootpolicy.conf\n"
                                   "plugins:\n"
                                   "  - module: tftp\n"
                                   "    legacy: legacy.d/novell-tftp.conf\n");
    g_autoptr(GError) error = NULL;
    g_autoptr(PbConfig) cfg = pb_config_load("etc/preboot.yaml", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(cfg->main_file, ==, "etc/preboot.yaml");
    g_assert_cmpstr(cfg->global.log_dir, ==, "/tmp/x");
    /* The directory became one legacy-only instance per .conf file, sorted. */
    g_assert_cmpuint(cfg->instances->len, ==, 4);
    const char *expect[][2] = {
        {"novell-proxydhcp", "etc/legacy.d/novell-proxydhcp.conf"},
        {"novell-tftp", "etc/legacy.d/novell-tftp.conf"},
        {"novell-zmgprebootpolicy", "/etc/opt/novell/novell-zmgprebootpolicy.conf"},
    };
    for (guint i = 0; i < 3; i++) {
        PbInstanceSpec *s = g_ptr_array_index(cfg->instances, i);
        g_assert_null(s->module);
        g_assert_cmpstr(s->name, ==, expect[i][0]);
        g_assert_cmpuint(s->legacy->len, ==, 1);
        g_autofree char *got = g_strdup(g_ptr_array_index(s->legacy, 0));
#ifdef G_OS_WIN32
        g_strdelimit(got, "\\", '/'); /* Windows joins paths with '\\' */
#endif
        g_assert_cmpstr(got, ==, expect[i][1]);
        g_assert_cmpstr(s->source.file, ==, "etc/preboot.yaml");
        g_assert_cmpuint(s->source.line, ==, i < 2 ? 4 : 5);
    }
    PbInstanceSpec *tftp = g_ptr_array_index(cfg->instances, 3);
    g_assert_cmpstr(tftp->module, ==, "tftp");
    g_autoptr(pb_config) c = pb_config_build(&plugin, tftp, NULL, &error);
    g_assert_no_error(error);
    assert_value(c, "log_level", "3", PB_SOURCE_LEGACY, "etc/legacy.d/novell-tftp.conf", 1);

    /* .yml works too, and errors name the file as given. */
    write_file("other.YML", "plugins: {}\n");
    g_autoptr(PbConfig) bad = pb_config_load("other.YML", &error);
    g_assert_null(bad);
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SCHEMA);
    g_assert_cmpstr(error->message, ==, "other.YML:1: 'plugins' must be a list of mappings");
    g_clear_error(&error);

    write_file("empty.d/.keep", "");
    write_file("empty.yaml", "legacy: empty.d\n");
    g_autoptr(PbConfig) empty = pb_config_load("empty.yaml", &error);
    g_assert_null(empty);
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_IO);
    g_assert_cmpstr(error->message, ==, "empty.yaml:1: legacy: 'empty.d' holds no .conf files");
}

static void test_load_legacy(Fixture *f, gconstpointer data)
{
    write_file("conf/novell-tftp.conf", "TFTPLogLevel = 3\n");
    write_file("conf/novell-pbserv.conf", "EnableLogging=YES\n");
    g_autoptr(GError) error = NULL;

    g_autoptr(PbConfig) one = pb_config_load("conf/novell-tftp.conf", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(one->instances->len, ==, 1);
    PbInstanceSpec *s = g_ptr_array_index(one->instances, 0);
    g_assert_null(s->module);
    g_assert_cmpstr(s->name, ==, "novell-tftp");
    g_assert_true(s->enabled);
    {
        g_autofree char *l0 = slashed(g_ptr_array_index(s->legacy, 0));
        g_assert_cmpstr(l0, ==, "conf/novell-tftp.conf");
    }
    g_assert_cmpint(s->source.kind, ==, PB_SOURCE_LEGACY);
    {
        g_autofree char *sf = slashed(s->source.file);
        g_assert_cmpstr(sf, ==, "conf/novell-tftp.conf");
    }

    g_autoptr(PbConfig) dir = pb_config_load("conf", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(dir->main_file, ==, "conf");
    g_assert_cmpuint(dir->instances->len, ==, 2);
    s = g_ptr_array_index(dir->instances, 0);
    g_assert_cmpstr(s->name, ==, "novell-pbserv");
    {
        g_autofree char *l0 = slashed(g_ptr_array_index(s->legacy, 0));
        g_assert_cmpstr(l0, ==, "conf/novell-pbserv.conf");
    }
    s = g_ptr_array_index(dir->instances, 1);
    g_assert_cmpstr(s->name, ==, "novell-tftp");

    /* Syntax errors show at load time, before any plugin is involved. */
    write_file("conf/broken.conf", "ok = 1\n[section]\n");
    g_autoptr(PbConfig) broken = pb_config_load("conf", &error);
    g_assert_null(broken);
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX);
    g_autofree char *m1 = slashed(error->message);
    g_assert_cmpstr(m1, ==, "conf/broken.conf:2: expected 'Key = value', got '[section]'");
    g_clear_error(&error);
    g_autoptr(PbConfig) broken1 = pb_config_load("conf/broken.conf", &error);
    g_assert_null(broken1);
    g_autofree char *m2 = slashed(error->message);
    g_assert_cmpstr(m2, ==, "conf/broken.conf:2: expected 'Key = value', got '[section]'");
    g_clear_error(&error);

    g_autoptr(PbConfig) missing = pb_config_load("missing.yaml", &error);
    g_assert_null(missing);
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_IO);
    g_assert_cmpstr(error->message, ==, "missing.yaml: cannot read: no such file or directory");
    g_clear_error(&error);

    g_assert_cmpint(g_mkdir("none.d", 0700), ==, 0);
    g_autoptr(PbConfig) none = pb_config_load("none.d", &error);
    g_assert_null(none);
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_IO);
    g_assert_cmpstr(error->message, ==, "none.d: no .conf files in this directory");
}

static void test_global(Fixture *f, gconstpointer data)
{
    PbGlobalConfig a, b;
    pb_global_config_init_defaults(&a);
    g_assert_cmpstr(a.plugin_path[0], ==, PB_PLUGINDIR);
    g_assert_null(a.plugin_path[1]);
    g_assert_cmpstr(a.log_dir, ==, PB_LOGDIR);
    g_assert_cmpstr(a.state_dir, ==, PB_STATEDIR);
    g_assert_cmpstr(a.pid_file, ==, PB_RUNDIR "/prebootd.pid");
    g_assert_cmpstr(a.control_socket, ==, PB_RUNDIR "/control.sock");
    g_free(a.user);
    a.user = g_strdup("preboot");
    pb_global_config_copy(&b, &a);
    g_assert_true(b.user != a.user);
    g_assert_cmpstr(b.user, ==, "preboot");
    g_assert_true(b.plugin_path != a.plugin_path);
    g_assert_cmpstr(b.plugin_path[0], ==, a.plugin_path[0]);
    g_assert_cmpint(b.log_level, ==, 2);
    pb_global_config_clear(&a);
    g_assert_null(a.log_dir);
    g_assert_cmpstr(b.log_dir, ==, PB_LOGDIR);
    pb_global_config_clear(&b);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, setup, fn, teardown)
    ADD("/config/build/precedence", test_precedence);
    ADD("/config/build/yaml-list", test_yaml_list);
    ADD("/config/build/warnings", test_warnings);
    ADD("/config/build/errors", test_errors);
    ADD("/config/build/required", test_required);
    ADD("/config/build/legacy-problems", test_legacy_problems);
    ADD("/config/build/value-equal", test_value_equal);
    ADD("/config/load/yaml", test_load_yaml);
    ADD("/config/load/legacy", test_load_legacy);
    ADD("/config/global", test_global);
    return g_test_run();
}
