/* test-conf-yaml.c - the preboot.yaml reader: the good files give exactly the model they
 * describe; every tests/data/config/bad-*.yaml fails with the message in its .expect file. */
#include "build-config.h"

#include "conf-yaml.h"
#include "config.h"

#include <glib.h>
#include <string.h>

static char *data_path(const char *name)
{
    return g_test_build_filename(G_TEST_DIST, "tests", "data", "config", name, NULL);
}

/* Parses a data file under the name given (so messages and relative paths use it). */
static PbConfig *parse_as(const char *name, const char *as, GError **error)
{
    g_autofree char *path = data_path(name);
    g_autofree char *text = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(path, &text, &len, NULL));
    return pb_yaml_parse(text, len, as, error);
}

static PbInstanceSpec *instance(PbConfig *cfg, guint i)
{
    g_assert_cmpuint(i, <, cfg->instances->len);
    return g_ptr_array_index(cfg->instances, i);
}

static const PbRawEntry *raw(PbInstanceSpec *spec, guint i)
{
    g_assert_cmpuint(i, <, spec->entries->len);
    return g_ptr_array_index(spec->entries, i);
}

static void assert_strv(char **v, const char *const *expect)
{
    g_assert_nonnull(v);
    g_assert_cmpuint(g_strv_length(v), ==, g_strv_length((char **)expect));
    for (guint i = 0; expect[i] != NULL; i++)
        g_assert_cmpstr(v[i], ==, expect[i]);
}

static void assert_legacy(PbInstanceSpec *spec, const char *const *expect)
{
    g_assert_cmpuint(spec->legacy->len, ==, g_strv_length((char **)expect));
    for (guint i = 0; expect[i] != NULL; i++) {
        g_autofree char *got = g_strdup(g_ptr_array_index(spec->legacy, i));
#ifdef G_OS_WIN32
        g_strdelimit(got, "\\", '/'); /* Windows joins paths with '\\' */
#endif
        g_assert_cmpstr(got, ==, expect[i]);
    }
}

static void test_full(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(PbConfig) cfg = parse_as("good-full.yaml", "conf/preboot.yaml", &error);
    g_assert_no_error(error);
    g_assert_nonnull(cfg);
    g_assert_cmpstr(cfg->main_file, ==, "conf/preboot.yaml");
    g_assert_cmpuint(cfg->warnings->len, ==, 0);

    const PbGlobalConfig *g = &cfg->global;
    assert_strv(g->plugin_path,
                (const char *const[]){"/usr/local/lib/preboot", "/opt/preboot/plugins", NULL});
    g_assert_cmpstr(g->log_dir, ==, "/var/log/preboot");
    g_assert_cmpstr(g->state_dir, ==, "/var/lib/preboot");
    g_assert_cmpstr(g->pid_file, ==, "/run/preboot/prebootd.pid");
    g_assert_cmpstr(g->control_socket, ==, "/run/preboot/control.sock");
    g_assert_cmpstr(g->control_group, ==, "adm");
    g_assert_cmpstr(g->user, ==, "preboot");
    g_assert_true(g->syslog);
    g_assert_cmpint(g->log_level, ==, 3);
    g_assert_cmpuint(g->log_size_mb, ==, 20);

    /* Two legacy-only instances (relative paths resolved against the YAML's directory),
     * then the three plugins. */
    g_assert_cmpuint(cfg->instances->len, ==, 5);
    PbInstanceSpec *l0 = instance(cfg, 0);
    g_assert_null(l0->module);
    g_assert_cmpstr(l0->name, ==, "novell-tftp");
    g_assert_true(l0->enabled);
    assert_legacy(l0, (const char *const[]){"/etc/opt/novell/novell-tftp.conf", NULL});
    g_assert_cmpuint(l0->entries->len, ==, 0);
    g_assert_cmpint(l0->source.kind, ==, PB_SOURCE_YAML);
    g_assert_cmpstr(l0->source.file, ==, "conf/preboot.yaml");
    g_assert_cmpuint(l0->source.line, ==, 15);
    PbInstanceSpec *l1 = instance(cfg, 1);
    g_assert_null(l1->module);
    g_assert_cmpstr(l1->name, ==, "legacy.d");
    assert_legacy(l1, (const char *const[]){"conf/legacy.d", NULL});
    g_assert_cmpuint(l1->source.line, ==, 16);

    PbInstanceSpec *tftp = instance(cfg, 2);
    g_assert_cmpstr(tftp->module, ==, "tftp");
    g_assert_cmpstr(tftp->name, ==, "tftp");
    g_assert_true(tftp->enabled);
    g_assert_cmpuint(tftp->source.line, ==, 19);
    assert_legacy(tftp, (const char *const[]){"/etc/opt/novell/novell-tftp.conf", NULL});
    g_assert_cmpuint(tftp->entries->len, ==, 2);
    g_assert_cmpstr(raw(tftp, 0)->key, ==, "root");
    g_assert_cmpstr(raw(tftp, 0)->value, ==, "/srv/tftp");
    g_assert_cmpint(raw(tftp, 0)->source.kind, ==, PB_SOURCE_YAML);
    g_assert_cmpstr(raw(tftp, 0)->source.file, ==, "conf/preboot.yaml");
    g_assert_cmpuint(raw(tftp, 0)->source.line, ==, 21);
    g_assert_cmpstr(raw(tftp, 1)->key, ==, "TransferBlockSize");
    g_assert_cmpstr(raw(tftp, 1)->value, ==, "1428");
    g_assert_cmpuint(raw(tftp, 1)->source.line, ==, 22);

    PbInstanceSpec *pxe = instance(cfg, 3);
    g_assert_cmpstr(pxe->module, ==, "proxydhcp");
    g_assert_cmpstr(pxe->name, ==, "pxe-lab");
    g_assert_false(pxe->enabled);
    assert_legacy(pxe, (const char *const[]){"conf/novell-proxydhcp.conf",
                                             "conf/../shared/extra.conf", NULL});
    g_assert_cmpuint(pxe->entries->len, ==, 5);
    g_assert_cmpstr(raw(pxe, 0)->key, ==, "allow_networks");
    g_assert_null(raw(pxe, 0)->value);
    assert_strv(raw(pxe, 0)->list, (const char *const[]){"10.0.0.0/8", "192.168.0.0/16", NULL});
    g_assert_cmpuint(raw(pxe, 0)->source.line, ==, 28);
    g_assert_cmpstr(raw(pxe, 1)->key, ==, "menu_timeout");
    g_assert_cmpstr(raw(pxe, 1)->value, ==, "5");
    /* "key:" with nothing: the default, like a legacy "Key =". */
    g_assert_cmpstr(raw(pxe, 2)->key, ==, "nbp_x86");
    g_assert_null(raw(pxe, 2)->value);
    g_assert_null(raw(pxe, 2)->list);
    /* A quoted "" is an empty value, not the default. */
    g_assert_cmpstr(raw(pxe, 3)->key, ==, "address");
    g_assert_cmpstr(raw(pxe, 3)->value, ==, "");
    g_assert_cmpstr(raw(pxe, 4)->key, ==, "empty_list");
    g_assert_nonnull(raw(pxe, 4)->list);
    g_assert_cmpuint(g_strv_length(raw(pxe, 4)->list), ==, 0);

    PbInstanceSpec *policy = instance(cfg, 4);
    g_assert_cmpstr(policy->module, ==, "/usr/lib/preboot/policy.so");
    g_assert_cmpstr(policy->name, ==, "policy");
    g_assert_true(policy->enabled);
    g_assert_cmpuint(policy->legacy->len, ==, 0);
    g_assert_cmpuint(policy->entries->len, ==, 0);
}

static void test_minimal(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(PbConfig) cfg = parse_as("good-minimal.yaml", "preboot.yaml", &error);
    g_assert_no_error(error);
    PbGlobalConfig def;
    pb_global_config_init_defaults(&def);
    g_assert_cmpstr(cfg->global.log_dir, ==, def.log_dir);
    g_assert_cmpstr(cfg->global.state_dir, ==, def.state_dir);
    g_assert_cmpstr(cfg->global.pid_file, ==, def.pid_file);
    g_assert_cmpstr(cfg->global.control_socket, ==, def.control_socket);
    assert_strv(cfg->global.plugin_path, (const char *const *)def.plugin_path);
    g_assert_null(cfg->global.user);
    g_assert_null(cfg->global.control_group);
    g_assert_false(cfg->global.syslog);
    g_assert_cmpint(cfg->global.log_level, ==, 2);
    g_assert_cmpuint(cfg->global.log_size_mb, ==, 15);
    pb_global_config_clear(&def);
    g_assert_cmpuint(cfg->instances->len, ==, 1);
    g_assert_cmpstr(instance(cfg, 0)->module, ==, "tftp");
    g_assert_cmpstr(instance(cfg, 0)->name, ==, "tftp");
    g_assert_cmpuint(instance(cfg, 0)->source.line, ==, 2);
}

static void test_empty(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(PbConfig) a = parse_as("good-empty.yaml", "preboot.yaml", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(a->instances->len, ==, 0);
    g_autoptr(PbConfig) b = pb_yaml_parse("", 0, "preboot.yaml", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(b->instances->len, ==, 0);
    g_autoptr(PbConfig) c = pb_yaml_parse("---\n...\n", 8, "preboot.yaml", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(c->instances->len, ==, 0);
}

static void test_warnings(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(PbConfig) cfg = parse_as("good-warnings.yaml", "/etc/preboot/preboot.yaml", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(cfg->global.log_dir, ==, "/tmp/log");
    g_assert_false(cfg->global.syslog);
    g_assert_cmpuint(cfg->warnings->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(cfg->warnings, 0), ==,
                    "/etc/preboot/preboot.yaml:3: unknown key 'logdir'");
    g_assert_cmpstr(g_ptr_array_index(cfg->warnings, 1), ==,
                    "/etc/preboot/preboot.yaml:5: unknown key 'plugin'");
    /* "legacy: one/path" is one legacy-only instance. */
    g_assert_cmpuint(cfg->instances->len, ==, 1);
    g_assert_null(instance(cfg, 0)->module);
    assert_legacy(instance(cfg, 0), (const char *const[]){"/etc/preboot/novell-tftp.conf", NULL});
}

static void test_flow_and_crlf(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(PbConfig) cfg = parse_as("good-flow.yaml", "preboot.yaml", &error);
    g_assert_no_error(error);
    assert_strv(cfg->global.plugin_path, (const char *const[]){"/p", NULL});
    /* Empty group and user: none, i.e. root only and no privilege drop. */
    g_assert_null(cfg->global.control_group);
    g_assert_null(cfg->global.user);
    g_assert_cmpuint(cfg->instances->len, ==, 2);
    g_assert_cmpstr(instance(cfg, 0)->name, ==, "t1");
    g_assert_true(instance(cfg, 0)->enabled);
    g_assert_cmpstr(instance(cfg, 1)->name, ==, "t2");
    g_assert_false(instance(cfg, 1)->enabled);

    g_autoptr(PbConfig) crlf = parse_as("good-crlf.yaml", "preboot.yaml", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(crlf->instances->len, ==, 1);
    g_assert_cmpstr(raw(instance(crlf, 0), 0)->value, ==, "/srv/tftp");
    g_assert_cmpuint(raw(instance(crlf, 0), 0)->source.line, ==, 3);
}

static void test_booleans(void)
{
    static const char *const yes[] = {"yes", "Yes", "YES", "true", "True", "on", "ON", "1"};
    static const char *const no[] = {"no", "NO", "false", "FALSE", "off", "Off", "0"};
    for (guint pass = 0; pass < 2; pass++) {
        const char *const *words = pass == 0 ? yes : no;
        gsize n = pass == 0 ? G_N_ELEMENTS(yes) : G_N_ELEMENTS(no);
        for (gsize i = 0; i < n; i++) {
            g_autofree char *text = g_strdup_printf("daemon: {syslog: %s}\nplugins:\n"
                                                    "  - {module: tftp, enabled: '%s'}\n",
                                                    words[i], words[i]);
            g_autoptr(GError) error = NULL;
            g_autoptr(PbConfig) cfg = pb_yaml_parse(text, strlen(text), "b.yaml", &error);
            g_assert_no_error(error);
            g_assert_cmpint(cfg->global.syslog, ==, pass == 0);
            g_assert_cmpint(instance(cfg, 0)->enabled, ==, pass == 0);
        }
    }
}

/* The messages libyaml itself produces, with our file:line in front. */
static const struct {
    const char *text;
    const char *message;
} syntax[] = {
    {"plugins: [tftp\n",
     "s.yaml:2: while parsing a flow sequence did not find expected ',' or ']'"},
    {"daemon:\n\tlog_dir: /x\n",
     "s.yaml:2: while scanning for the next token found character that cannot start any token"},
    {"daemon:\n  log_dir: /x\n bad: 1\n",
     "s.yaml:3: while parsing a block mapping did not find expected key"},
    {"a: \"open\n", "s.yaml:2: while scanning a quoted scalar found unexpected end of stream"},
    {"ok: 1\nbad: \xff\xfe\n", "s.yaml:2: invalid leading UTF-8 octet"},
    {"ok: 1\nnul: a\0b\n", "s.yaml:2: control characters are not allowed"},
};

static void test_syntax_errors(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(syntax); i++) {
        g_autoptr(GError) error = NULL;
        gsize len = strlen(syntax[i].text);
        if (strncmp(syntax[i].text, "ok: 1\nnul", 9) == 0)
            len = 15;
        g_autoptr(PbConfig) cfg = pb_yaml_parse(syntax[i].text, len, "s.yaml", &error);
        g_test_message("case %zu", i);
        g_assert_null(cfg);
        g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_SYNTAX);
        g_assert_cmpstr(error->message, ==, syntax[i].message);
    }
}

static void test_bad_files(void)
{
    g_autofree char *dir = data_path("");
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_assert_nonnull(d);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    while ((n = g_dir_read_name(d)) != NULL)
        if (g_str_has_prefix(n, "bad-") && g_str_has_suffix(n, ".yaml"))
            g_ptr_array_add(names, g_strdup(n));
    g_assert_cmpuint(names->len, >=, 30);
    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        g_autofree char *stem = g_strndup(name, strlen(name) - 5);
        g_autofree char *expect_name = g_strconcat(stem, ".expect", NULL);
        g_autofree char *expect_path = data_path(expect_name);
        g_autofree char *expect = NULL;
        g_test_message("%s", name);
        g_assert_true(g_file_get_contents(expect_path, &expect, NULL, NULL));
        g_strchomp(expect);
        g_autoptr(GError) error = NULL;
        g_autoptr(PbConfig) cfg = parse_as(name, name, &error);
        g_assert_null(cfg);
        g_assert_nonnull(error);
        g_assert_true(error->domain == PB_CONFIG_ERROR);
        g_assert_cmpstr(error->message, ==, expect);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/yaml/full", test_full);
    g_test_add_func("/yaml/minimal", test_minimal);
    g_test_add_func("/yaml/empty", test_empty);
    g_test_add_func("/yaml/warnings", test_warnings);
    g_test_add_func("/yaml/flow-and-crlf", test_flow_and_crlf);
    g_test_add_func("/yaml/booleans", test_booleans);
    g_test_add_func("/yaml/syntax-errors", test_syntax_errors);
    g_test_add_func("/yaml/bad-files", test_bad_files);
    return g_test_run();
}
