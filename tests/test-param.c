/* test-param.c - parameter tables and values: pb_param_table_check() catches every kind of
 * inconsistent table with a message naming plugin and parameter, and pb_param_parse()
 * accepts, normalises and refuses values per type with the exact documented messages. */
#include "build-config.h"

#include "config.h"

#include <glib.h>
#include <string.h>

static const char *const modes[] = {"fast", "Safe", "off", NULL};

/* Every type, aliases, ranges, an enum, a list, a deprecated and a required parameter. */
static const pb_param params[] = {
    {.name = "label", .legacy = "Label", .type = PB_PARAM_STRING, .def = "hello"},
    {.name = "block_size",
     .legacy = "TransferBlockSize",
     .type = PB_PARAM_INT,
     .def = "1428",
     .min = 512,
     .max = 4428,
     .unit = "bytes"},
    {.name = "allow_writes", .legacy = "TFTPAllowWrites", .type = PB_PARAM_BOOL, .def = "0"},
    {.name = "mode", .type = PB_PARAM_ENUM, .def = "safe", .choices = modes},
    {.name = "address",
     .legacy = "TFTPInterface",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_EMPTY_OK | PB_PARAM_F_RESTART,
     .def = ""},
    {.name = "root", .legacy = "TFTPDirectory", .type = PB_PARAM_PATH, .def = "/srv/tftp"},
    {.name = "networks", .type = PB_PARAM_LIST, .def = "10.0.0.0/8, 192.168.0.0/16"},
    {.name = "old_knob",
     .legacy = "OldKnob",
     .type = PB_PARAM_BOOL,
     .flags = PB_PARAM_F_DEPRECATED,
     .def = "no",
     .help = "It never did anything."},
    {.name = "server",
     .legacy = "PrebootServer",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_REQUIRED},
    {.name = "offset", .type = PB_PARAM_INT, .def = "-3", .min = G_MININT64, .max = 0},
    {.name = "any", .type = PB_PARAM_INT, .def = "0", .min = G_MININT64, .max = G_MAXINT64},
    {.name = "log_level",
     .legacy = "TFTPLogLevel",
     .type = PB_PARAM_INT,
     .role = PB_ROLE_LOG_LEVEL,
     .def = "2",
     .min = 0,
     .max = 4},
};

static const pb_plugin plugin = {PB_PLUGIN_HEADER, .name = "t", .version = "1", PB_PARAMS(params)};

static const pb_param *param(const char *name)
{
    for (gsize i = 0; i < G_N_ELEMENTS(params); i++)
        if (strcmp(params[i].name, name) == 0)
            return &params[i];
    g_assert_not_reached();
}

static void test_table_good(void)
{
    g_autoptr(GError) error = NULL;
    g_assert_true(pb_param_table_check(&plugin, &error));
    g_assert_no_error(error);
    g_assert_true(pb_plugin_param(&plugin, 3) == &params[3]);

    static const pb_plugin empty = {PB_PLUGIN_HEADER, .name = "empty"};
    g_assert_true(pb_param_table_check(&empty, &error));
    g_assert_no_error(error);
}

/* A plugin built against a later minor ABI may have a longer pb_param: entries are found
 * by param_size, not by sizeof. */
typedef struct {
    pb_param p;
    guint64 future_field;
} pb_param_next;

static void test_table_param_size(void)
{
    static const pb_param_next next[] = {
        {{.name = "a", .type = PB_PARAM_STRING, .def = "x"}, 1},
        {{.name = "b", .type = PB_PARAM_INT, .def = "5", .min = 0, .max = 9}, 2},
    };
    pb_plugin pl = {PB_PLUGIN_HEADER, .name = "next"};
    pl.params = &next[0].p;
    pl.n_params = 2;
    pl.param_size = sizeof(pb_param_next);
    g_autoptr(GError) error = NULL;
    g_assert_true(pb_param_table_check(&pl, &error));
    g_assert_cmpstr(pb_plugin_param(&pl, 1)->name, ==, "b");

    pl.param_size = sizeof(pb_param) - 8;
    g_assert_false(pb_param_table_check(&pl, &error));
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_TABLE);
    g_autofree char *expect =
        g_strdup_printf("plugin 'next': param_size %zu is smaller than ABI 1.%d's %zu",
                        sizeof(pb_param) - 8, PB_ABI_MINOR, sizeof(pb_param));
    g_assert_cmpstr(error->message, ==, expect);
}

static const char *const no_choices[] = {NULL};
static const char *const twice[] = {"a", "A", NULL};

static const struct {
    pb_param p[2];
    guint n;
    const char *message;
} bad_tables[] = {
    {{{.name = "Label", .type = PB_PARAM_STRING}},
     1,
     "plugin 'bad': parameter 'Label': a name must be lower_snake_case ([a-z][a-z0-9_]*)"},
    {{{.name = "9lives", .type = PB_PARAM_STRING}},
     1,
     "plugin 'bad': parameter '9lives': a name must be lower_snake_case ([a-z][a-z0-9_]*)"},
    {{{.name = NULL, .type = PB_PARAM_STRING}},
     1,
     "plugin 'bad': parameter '(null)': a name must be lower_snake_case ([a-z][a-z0-9_]*)"},
    {{{.name = "module", .type = PB_PARAM_STRING}},
     1,
     "plugin 'bad': parameter 'module': the name is reserved for the instance itself"},
    {{{.name = "enabled", .type = PB_PARAM_BOOL}},
     1,
     "plugin 'bad': parameter 'enabled': the name is reserved for the instance itself"},
    {{{.name = "legacy", .type = PB_PARAM_PATH}},
     1,
     "plugin 'bad': parameter 'legacy': the name is reserved for the instance itself"},
    {{{.name = "name", .type = PB_PARAM_STRING}},
     1,
     "plugin 'bad': parameter 'name': the name is reserved for the instance itself"},
    {{{.name = "a", .legacy = "Bad-Alias", .type = PB_PARAM_STRING}},
     1,
     "plugin 'bad': parameter 'a': legacy alias 'Bad-Alias' is not a legacy key "
     "([A-Za-z_][A-Za-z0-9_]*)"},
    {{{.name = "a", .type = 0}}, 1, "plugin 'bad': parameter 'a': unknown type 0"},
    {{{.name = "a", .type = 99}}, 1, "plugin 'bad': parameter 'a': unknown type 99"},
    {{{.name = "a", .type = PB_PARAM_INT, .def = "1", .min = 5, .max = 4}},
     1,
     "plugin 'bad': parameter 'a': min 5 is above max 4"},
    {{{.name = "a", .type = PB_PARAM_ENUM, .def = "x"}},
     1,
     "plugin 'bad': parameter 'a': an enum needs choices"},
    {{{.name = "a", .type = PB_PARAM_ENUM, .def = "x", .choices = no_choices}},
     1,
     "plugin 'bad': parameter 'a': an enum needs choices"},
    {{{.name = "a", .type = PB_PARAM_ENUM, .def = "a", .choices = twice}},
     1,
     "plugin 'bad': parameter 'a': choice 'A' is listed twice"},
    {{{.name = "a", .type = PB_PARAM_ENUM, .def = "b", .choices = twice}},
     1,
     "plugin 'bad': parameter 'a': choice 'A' is listed twice"},
    {{{.name = "a", .type = PB_PARAM_ENUM, .def = "b", .choices = modes}},
     1,
     "plugin 'bad': parameter 'a': default: 'b' is not one of: fast, Safe, off"},
    {{{.name = "a", .type = PB_PARAM_INT, .def = "9000", .min = 512, .max = 4428}},
     1,
     "plugin 'bad': parameter 'a': default: '9000' is out of range (512-4428)"},
    {{{.name = "a", .type = PB_PARAM_BOOL, .def = "maybe"}},
     1,
     "plugin 'bad': parameter 'a': default: 'maybe' is not a boolean (yes/no, true/false, "
     "on/off, 1/0)"},
    {{{.name = "a", .type = PB_PARAM_ADDRESS, .def = ""}},
     1,
     "plugin 'bad': parameter 'a': default: '' is not an IPv4 or IPv6 address"},
    {{{.name = "a", .type = PB_PARAM_INT, .min = 0, .max = 4}},
     1,
     "plugin 'bad': parameter 'a': needs a default or PB_PARAM_F_REQUIRED"},
    {{{.name = "a", .type = PB_PARAM_STRING, .flags = PB_PARAM_F_REQUIRED, .def = "x"}},
     1,
     "plugin 'bad': parameter 'a': a required parameter cannot have a default"},
    {{{.name = "a", .type = PB_PARAM_STRING, .role = PB_ROLE_LOG_LEVEL, .def = "x"}},
     1,
     "plugin 'bad': parameter 'a': role 1 needs type INT"},
    {{{.name = "a", .type = PB_PARAM_STRING, .role = PB_ROLE_LOG_FILE, .def = "x"}},
     1,
     "plugin 'bad': parameter 'a': role 2 needs type PATH"},
    {{{.name = "a", .type = PB_PARAM_STRING, .role = 9, .def = "x"}},
     1,
     "plugin 'bad': parameter 'a': unknown role 9"},
    {{{.name = "a", .type = PB_PARAM_STRING}, {.name = "a", .type = PB_PARAM_PATH}},
     2,
     "plugin 'bad': parameter 'a': declared twice"},
    {{{.name = "a", .legacy = "Key", .type = PB_PARAM_STRING},
      {.name = "b", .legacy = "KEY", .type = PB_PARAM_STRING}},
     2,
     "plugin 'bad': parameter 'b': legacy alias 'KEY' is also the alias of 'a'"},
    {{{.name = "a", .type = PB_PARAM_STRING},
      {.name = "b", .legacy = "A", .type = PB_PARAM_STRING}},
     2,
     "plugin 'bad': parameter 'b': legacy alias 'A' is the name of 'a'"},
    {{{.name = "a", .legacy = "B", .type = PB_PARAM_STRING},
      {.name = "b", .type = PB_PARAM_STRING}},
     2,
     "plugin 'bad': parameter 'b': the name is the legacy alias of 'a'"},
    {{{.name = "a", .type = PB_PARAM_INT, .role = PB_ROLE_LOG_SIZE, .def = "1", .max = 9},
      {.name = "b", .type = PB_PARAM_INT, .role = PB_ROLE_LOG_SIZE, .def = "1", .max = 9}},
     2,
     "plugin 'bad': parameter 'b': role 3 is already taken by 'a'"},
};

static void test_table_bad(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(bad_tables); i++) {
        pb_plugin pl = {PB_PLUGIN_HEADER, .name = "bad"};
        pl.params = bad_tables[i].p;
        pl.n_params = bad_tables[i].n;
        pl.param_size = sizeof(pb_param);
        g_autoptr(GError) error = NULL;
        g_test_message("case %zu: %s", i, bad_tables[i].message);
        g_assert_false(pb_param_table_check(&pl, &error));
        g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_TABLE);
        g_assert_cmpstr(error->message, ==, bad_tables[i].message);
    }

    pb_plugin pl = {PB_PLUGIN_HEADER, .name = "bad", .n_params = 2, .param_size = sizeof(pb_param)};
    g_autoptr(GError) error = NULL;
    g_assert_false(pb_param_table_check(&pl, &error));
    g_assert_cmpstr(error->message, ==, "plugin 'bad': 2 parameters declared but no table");
}

typedef struct {
    const char *param;
    const char *text;
    PbSourceKind kind;
    const char *expect; /* normalised text, or NULL when it must fail */
    gint64 number;
    const char *message;
} ValueCase;

static const ValueCase values[] = {
    {"label", "anything at all # really", PB_SOURCE_YAML, "anything at all # really", 0, NULL},
    {"label", "", PB_SOURCE_YAML, "", 0, NULL},
    {"label", NULL, PB_SOURCE_LEGACY, "hello", 0, NULL},
    /* INT */
    {"block_size", "1428", PB_SOURCE_LEGACY, "1428", 1428, NULL},
    {"block_size", "512", PB_SOURCE_YAML, "512", 512, NULL},
    {"block_size", "4428", PB_SOURCE_YAML, "4428", 4428, NULL},
    {"block_size", "+0600", PB_SOURCE_YAML, "600", 600, NULL},
    {"block_size", NULL, PB_SOURCE_LEGACY, "1428", 1428, NULL},
    {"block_size", "9000", PB_SOURCE_LEGACY, NULL, 0, "'9000' is out of range (512-4428)"},
    {"block_size", "511", PB_SOURCE_LEGACY, NULL, 0, "'511' is out of range (512-4428)"},
    {"block_size", "-1428", PB_SOURCE_LEGACY, NULL, 0, "'-1428' is out of range (512-4428)"},
    {"block_size", "99999999999999999999", PB_SOURCE_YAML, NULL, 0,
     "'99999999999999999999' is out of range (512-4428)"},
    {"block_size", "abc", PB_SOURCE_LEGACY, NULL, 0, "'abc' is not a number (512-4428)"},
    {"block_size", "", PB_SOURCE_LEGACY, NULL, 0, "'' is not a number (512-4428)"},
    {"block_size", "1428 bytes", PB_SOURCE_LEGACY, NULL, 0,
     "'1428 bytes' is not a number (512-4428)"},
    {"block_size", "0x400", PB_SOURCE_LEGACY, NULL, 0, "'0x400' is not a number (512-4428)"},
    {"block_size", " 600", PB_SOURCE_YAML, NULL, 0, "' 600' is not a number (512-4428)"},
    {"block_size", "-", PB_SOURCE_YAML, NULL, 0, "'-' is not a number (512-4428)"},
    {"offset", "-9223372036854775808", PB_SOURCE_YAML, "-9223372036854775808", G_MININT64, NULL},
    {"offset", "1", PB_SOURCE_YAML, NULL, 0, "'1' is out of range (at most 0)"},
    {"offset", "x", PB_SOURCE_YAML, NULL, 0, "'x' is not a number (at most 0)"},
    {"any", "9223372036854775807", PB_SOURCE_YAML, "9223372036854775807", G_MAXINT64, NULL},
    {"any", "9223372036854775808", PB_SOURCE_YAML, NULL, 0,
     "'9223372036854775808' is out of range"},
    {"any", "x", PB_SOURCE_YAML, NULL, 0, "'x' is not a number"},
    /* BOOL */
    {"allow_writes", "yes", PB_SOURCE_YAML, "yes", 1, NULL},
    {"allow_writes", "YES", PB_SOURCE_LEGACY, "yes", 1, NULL},
    {"allow_writes", "True", PB_SOURCE_YAML, "yes", 1, NULL},
    {"allow_writes", "on", PB_SOURCE_YAML, "yes", 1, NULL},
    {"allow_writes", "1", PB_SOURCE_LEGACY, "yes", 1, NULL},
    {"allow_writes", "No", PB_SOURCE_YAML, "no", 0, NULL},
    {"allow_writes", "FALSE", PB_SOURCE_YAML, "no", 0, NULL},
    {"allow_writes", "oFF", PB_SOURCE_YAML, "no", 0, NULL},
    {"allow_writes", "0", PB_SOURCE_LEGACY, "no", 0, NULL},
    {"allow_writes", NULL, PB_SOURCE_LEGACY, "no", 0, NULL},
    {"allow_writes", "2", PB_SOURCE_LEGACY, NULL, 0,
     "'2' is not a boolean (yes/no, true/false, on/off, 1/0)"},
    {"allow_writes", "y", PB_SOURCE_YAML, NULL, 0,
     "'y' is not a boolean (yes/no, true/false, on/off, 1/0)"},
    {"allow_writes", "", PB_SOURCE_YAML, NULL, 0,
     "'' is not a boolean (yes/no, true/false, on/off, 1/0)"},
    /* ENUM: case-insensitive, stored as declared */
    {"mode", "FAST", PB_SOURCE_YAML, "fast", 0, NULL},
    {"mode", "safe", PB_SOURCE_LEGACY, "Safe", 1, NULL},
    {"mode", "Off", PB_SOURCE_YAML, "off", 2, NULL},
    {"mode", NULL, PB_SOURCE_YAML, "Safe", 1, NULL},
    {"mode", "slow", PB_SOURCE_YAML, NULL, 0, "'slow' is not one of: fast, Safe, off"},
    {"mode", "", PB_SOURCE_YAML, NULL, 0, "'' is not one of: fast, Safe, off"},
    /* ADDRESS */
    {"address", "10.0.0.1", PB_SOURCE_LEGACY, "10.0.0.1", 0, NULL},
    {"address", "0.0.0.0", PB_SOURCE_LEGACY, "0.0.0.0", 0, NULL},
    {"address", "255.255.255.255", PB_SOURCE_LEGACY, "255.255.255.255", 0, NULL},
    {"address", "::", PB_SOURCE_YAML, "::", 0, NULL},
    {"address", "::1", PB_SOURCE_YAML, "::1", 0, NULL},
    {"address", "1::", PB_SOURCE_YAML, "1::", 0, NULL},
    {"address", "2001:DB8::1", PB_SOURCE_YAML, "2001:DB8::1", 0, NULL},
    {"address", "1:2:3:4:5:6:7:8", PB_SOURCE_YAML, "1:2:3:4:5:6:7:8", 0, NULL},
    {"address", "1:2:3:4:5:6:7::", PB_SOURCE_YAML, "1:2:3:4:5:6:7::", 0, NULL},
    {"address", "::ffff:192.0.2.1", PB_SOURCE_YAML, "::ffff:192.0.2.1", 0, NULL},
    {"address", "1:2:3:4:5:6:192.0.2.1", PB_SOURCE_YAML, "1:2:3:4:5:6:192.0.2.1", 0, NULL},
    {"address", "fe80::1%eth0", PB_SOURCE_YAML, "fe80::1%eth0", 0, NULL},
    {"address", "", PB_SOURCE_LEGACY, "", 0, NULL}, /* EMPTY_OK: detect */
    {"address", NULL, PB_SOURCE_LEGACY, "", 0, NULL},
    {"address", "10.0.0.300", PB_SOURCE_LEGACY, NULL, 0,
     "'10.0.0.300' is not an IPv4 or IPv6 address"},
    {"address", "1.2.3", PB_SOURCE_LEGACY, NULL, 0, "'1.2.3' is not an IPv4 or IPv6 address"},
    {"address", "1.2.3.4.5", PB_SOURCE_LEGACY, NULL, 0,
     "'1.2.3.4.5' is not an IPv4 or IPv6 address"},
    {"address", "1.2.3.", PB_SOURCE_LEGACY, NULL, 0, "'1.2.3.' is not an IPv4 or IPv6 address"},
    {"address", "010.0.0.1", PB_SOURCE_LEGACY, NULL, 0,
     "'010.0.0.1' is not an IPv4 or IPv6 address"},
    {"address", "1..2.3", PB_SOURCE_LEGACY, NULL, 0, "'1..2.3' is not an IPv4 or IPv6 address"},
    {"address", "1.2.3.4 ", PB_SOURCE_YAML, NULL, 0, "'1.2.3.4 ' is not an IPv4 or IPv6 address"},
    {"address", "server.example", PB_SOURCE_YAML, NULL, 0,
     "'server.example' is not an IPv4 or IPv6 address"},
    {"address", ":::", PB_SOURCE_YAML, NULL, 0, "':::' is not an IPv4 or IPv6 address"},
    {"address", ":1", PB_SOURCE_YAML, NULL, 0, "':1' is not an IPv4 or IPv6 address"},
    {"address", "1:", PB_SOURCE_YAML, NULL, 0, "'1:' is not an IPv4 or IPv6 address"},
    {"address", "1::2::3", PB_SOURCE_YAML, NULL, 0, "'1::2::3' is not an IPv4 or IPv6 address"},
    {"address", "12345::", PB_SOURCE_YAML, NULL, 0, "'12345::' is not an IPv4 or IPv6 address"},
    {"address", "1:2:3:4:5:6:7:8:9", PB_SOURCE_YAML, NULL, 0,
     "'1:2:3:4:5:6:7:8:9' is not an IPv4 or IPv6 address"},
    {"address", "1:2:3:4:5:6:7", PB_SOURCE_YAML, NULL, 0,
     "'1:2:3:4:5:6:7' is not an IPv4 or IPv6 address"},
    {"address", "1:2:3:4:5:6:7:1.2.3.4", PB_SOURCE_YAML, NULL, 0,
     "'1:2:3:4:5:6:7:1.2.3.4' is not an IPv4 or IPv6 address"},
    {"address", "::1.2.3", PB_SOURCE_YAML, NULL, 0, "'::1.2.3' is not an IPv4 or IPv6 address"},
    {"address", "fe80::1%", PB_SOURCE_YAML, NULL, 0, "'fe80::1%' is not an IPv4 or IPv6 address"},
    {"address", "fe80::1%a/b", PB_SOURCE_YAML, NULL, 0,
     "'fe80::1%a/b' is not an IPv4 or IPv6 address"},
    {"server", "", PB_SOURCE_YAML, NULL, 0, "'' is not an IPv4 or IPv6 address"},
    {"server", NULL, PB_SOURCE_YAML, NULL, 0, "a value is required"},
    /* PATH: legacy spellings turned into this platform's */
    {"root", "/srv/tftp", PB_SOURCE_YAML, "/srv/tftp", 0, NULL},
    {"root", "C:\\tftp", PB_SOURCE_YAML, "C:\\tftp", 0, NULL},
#ifndef G_OS_WIN32
    {"root", "%PB_TEST_HOME%\\boot\\x86", PB_SOURCE_LEGACY, "/opt/zen/boot/x86", 0, NULL},
    {"root", "path\\novell-tftp.log", PB_SOURCE_LEGACY, "path/novell-tftp.log", 0, NULL},
    {"root", "50%%\\x", PB_SOURCE_LEGACY, "50%/x", 0, NULL},
    {"root", "100%", PB_SOURCE_LEGACY, "100%", 0, NULL},
    {"root", "%a b%\\x", PB_SOURCE_LEGACY, "%a b%/x", 0, NULL},
#endif
    {"root", "%PB_TEST_HOME%", PB_SOURCE_YAML, "%PB_TEST_HOME%", 0, NULL},
    {"root", "%PB_TEST_UNSET_VAR%\\x", PB_SOURCE_LEGACY, NULL, 0,
     "'%PB_TEST_UNSET_VAR%\\x' uses %PB_TEST_UNSET_VAR%, which is not set in the environment"},
    {"root", "", PB_SOURCE_YAML, NULL, 0, "a path is required"},
    {"root", NULL, PB_SOURCE_LEGACY, "/srv/tftp", 0, NULL},
    /* LIST from text */
    {"networks", "a, b ,,c ", PB_SOURCE_LEGACY, "a, b, c", 0, NULL},
    {"networks", "", PB_SOURCE_LEGACY, "", 0, NULL},
    {"networks", NULL, PB_SOURCE_LEGACY, "10.0.0.0/8, 192.168.0.0/16", 0, NULL},
};

static void test_values(void)
{
    g_setenv("PB_TEST_HOME", "/opt/zen", TRUE);
    g_unsetenv("PB_TEST_UNSET_VAR");
    for (gsize i = 0; i < G_N_ELEMENTS(values); i++) {
        const ValueCase *c = &values[i];
        g_test_message("case %zu: %s = '%s'", i, c->param, c->text ? c->text : "(null)");
        PbValue v;
        g_autoptr(GError) error = NULL;
        gboolean ok = pb_param_parse(param(c->param), c->text, c->kind, &v, &error);
        if (c->expect == NULL) {
            g_assert_false(ok);
            g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE);
            g_assert_cmpstr(error->message, ==, c->message);
            g_assert_null(v.text);
            continue;
        }
        g_assert_no_error(error);
        g_assert_true(ok);
        g_assert_cmpstr(v.text, ==, c->expect);
        g_assert_cmpint(v.number, ==, c->number);
        g_assert_cmpint(v.source.kind, ==, c->kind);
        g_assert_null(v.source.file);
        pb_value_clear(&v);
        g_assert_null(v.text);
    }
}

static void test_lists(void)
{
    PbValue v;
    g_autoptr(GError) error = NULL;
    g_assert_true(pb_param_parse(param("networks"), " 10.0.0.0/8 ,192.168.0.0/16", PB_SOURCE_LEGACY,
                                 &v, &error));
    g_assert_cmpuint(g_strv_length(v.list), ==, 2);
    g_assert_cmpstr(v.list[0], ==, "10.0.0.0/8");
    g_assert_cmpstr(v.list[1], ==, "192.168.0.0/16");
    pb_value_clear(&v);

    /* A YAML sequence is taken item by item, commas and all. */
    const char *const items[] = {"a, b", " c", NULL};
    g_assert_true(pb_param_parse_list(param("networks"), items, PB_SOURCE_YAML, &v, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(g_strv_length(v.list), ==, 2);
    g_assert_cmpstr(v.list[0], ==, "a, b");
    g_assert_cmpstr(v.list[1], ==, " c");
    g_assert_cmpint(v.source.kind, ==, PB_SOURCE_YAML);
    pb_value_clear(&v);

    const char *const none[] = {NULL};
    g_assert_true(pb_param_parse_list(param("networks"), none, PB_SOURCE_YAML, &v, &error));
    g_assert_cmpuint(g_strv_length(v.list), ==, 0);
    g_assert_cmpstr(v.text, ==, "");
    pb_value_clear(&v);

    g_assert_false(pb_param_parse_list(param("root"), items, PB_SOURCE_YAML, &v, &error));
    g_assert_error(error, PB_CONFIG_ERROR, PB_CONFIG_ERROR_VALUE);
    g_assert_cmpstr(error->message, ==, "expected a single value, got a list");
}

static void test_bool_helper(void)
{
    static const char *const yes[] = {"yes", "Yes", "YES", "true", "TRUE", "on", "On", "1"};
    static const char *const no[] = {"no", "NO", "false", "False", "off", "OFF", "0"};
    static const char *const neither[] = {"", "y", "n", "2", "yess", "enable", " yes", "-1"};
    gboolean b;
    for (gsize i = 0; i < G_N_ELEMENTS(yes); i++) {
        b = FALSE;
        g_assert_true(pb_config_parse_bool(yes[i], &b));
        g_assert_true(b);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(no); i++) {
        b = TRUE;
        g_assert_true(pb_config_parse_bool(no[i], &b));
        g_assert_false(b);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(neither); i++)
        g_assert_false(pb_config_parse_bool(neither[i], &b));
    g_assert_false(pb_config_parse_bool(NULL, &b));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/param/table/good", test_table_good);
    g_test_add_func("/param/table/param-size", test_table_param_size);
    g_test_add_func("/param/table/bad", test_table_bad);
    g_test_add_func("/param/values", test_values);
    g_test_add_func("/param/lists", test_lists);
    g_test_add_func("/param/bool", test_bool_helper);
    return g_test_run();
}
