/* test-host.c - the host driven in process with the test plugin: lifecycle and failure
 * isolation, every service (sockets, timers, deferred calls, counters, registry, control
 * commands, status, state directory, logs), and the staged reload. */
#include "build-config.h"

#include "host.h"
#include "loader.h"
#include "plugins/testlib.h"
#include "testutil.h"

#include "conf-yaml.h"

#include <string.h>

typedef struct {
    char *dir;
    PbHost *host;
    guint16 pa, pb;
} Fixture;

static void fixture_set_up(Fixture *f, gconstpointer data)
{
    f->dir = pbt_tmpdir();
    PbGlobalConfig g;
    pbt_global(&g, f->dir, NULL);
    f->host = pb_host_new(&g);
    pb_global_config_clear(&g);
    f->pa = pbt_free_udp_port();
    do
        f->pb = pbt_free_udp_port();
    while (f->pb == f->pa);
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
    pb_host_free(f->host);
    pbt_rmtree(f->dir);
    g_free(f->dir);
}

static void assert_reply(guint16 port, const char *msg, const char *expect)
{
    g_autofree char *got = pbt_udp_exchange(port, msg, 2000);
    g_assert_cmpstr(got, ==, expect);
}

static void assert_state(Fixture *f, const char *name, PbInstanceState state,
                         const char *error_fragment)
{
    pb_instance *inst = pb_host_find(f->host, name);
    g_assert_nonnull(inst);
    g_assert_cmpstr(pb_instance_state_name(pb_instance_get_state(inst)), ==,
                    pb_instance_state_name(state));
    if (error_fragment) {
        const char *e = pb_instance_get_error(inst);
        g_assert_nonnull(e);
        if (strstr(e, error_fragment) == NULL)
            g_error("instance %s: error '%s' lacks '%s'", name, e, error_fragment);
    }
}

static void apply(Fixture *f, PbConfig *cfg, GString *report)
{
    g_autoptr(GError) error = NULL;
    g_assert_true(pb_host_apply(f->host, cfg, report, &error));
    g_assert_no_error(error);
}

static void test_lifecycle(Fixture *f, gconstpointer data)
{
    g_autoptr(GString) report = g_string_new(NULL);
    apply(f,
          pbt_yaml("plugins:\n"
                   "  - {module: testplug, name: a, port: %u, greeting: hi-a, log_level: 3, "
                   "networks: [10.0.0.0/8, 192.168.0.0/16]}\n"
                   "  - {module: testplug, name: b, port: %u, greeting: hi-b}\n"
                   "  - {module: testplug, name: c, fail_create: yes}\n"
                   "  - {module: testplug, name: d, fail_start: yes}\n"
                   "  - {module: nosuch, name: e}\n"
                   "  - {module: testplug, name: f, enabled: no}\n"
                   "  - {module: badmajor, name: g}\n",
                   f->pa, f->pb),
          report);

    assert_state(f, "a", PB_INSTANCE_RUNNING, NULL);
    assert_state(f, "b", PB_INSTANCE_RUNNING, NULL);
    assert_state(f, "c", PB_INSTANCE_FAILED, "create failed: fail_create is set");
    assert_state(f, "d", PB_INSTANCE_FAILED, "start failed: fail_start is set");
    assert_state(f, "e", PB_INSTANCE_FAILED, "module 'nosuch' not found on the plugin path");
    assert_state(f, "f", PB_INSTANCE_DISABLED, NULL);
    assert_state(f, "g", PB_INSTANCE_FAILED, "built for plugin ABI 2.0");
    g_assert_nonnull(strstr(report->str, "c: create failed: fail_create is set"));

    /* Sockets through host->watch_socket, deferred calls, the registry. */
    assert_reply(f->pa, "ping", "hi-a: ping");
    assert_reply(f->pb, "pong", "hi-b: pong");
    assert_reply(f->pa, "defer later", "hi-a: later");
    assert_reply(f->pa, "lookup b", "hi-a: hi-b");
    assert_reply(f->pb, "lookup c", "hi-b: (no such service)");
    g_assert_cmpint(pb_host_counter_value(f->host, "a", "datagrams"), ==, 3);
    g_assert_cmpint(pb_host_counter_value(f->host, "a", "deferred replies"), ==, 1);
    g_assert_cmpint(pb_host_counter_value(f->host, "b", "datagrams"), ==, 2);
    g_assert_cmpint(pb_host_counter_value(f->host, "a", "no such counter"), ==, -1);

    /* Control commands registered by plugins. */
    g_autoptr(GString) out = g_string_new(NULL);
    const char *argv[] = {"echo-a", "foo", "bar", NULL};
    g_assert_true(pb_host_command(f->host, 3, argv, out));
    g_assert_cmpstr(out->str, ==, "hi-a: foo bar\n");
    g_string_truncate(out, 0);
    const char *unknown[] = {"frobnicate", NULL};
    g_assert_false(pb_host_command(f->host, 1, unknown, out));
    g_assert_nonnull(strstr(out->str, "unknown command 'frobnicate'"));

    /* Status and statistics. */
    g_string_truncate(out, 0);
    pb_host_status(f->host, out);
    g_assert_nonnull(strstr(out->str, "a: running\n"));
    g_assert_nonnull(strstr(out->str, "    echoing with greeting 'hi-a'\n"));
    g_assert_nonnull(strstr(out->str, "    socket: open\n"));
    g_assert_nonnull(strstr(out->str, "c: failed: create failed: fail_create is set\n"));
    g_assert_nonnull(strstr(out->str, "f: disabled\n"));
    g_string_truncate(out, 0);
    pb_host_stats(f->host, out);
    g_assert_nonnull(strstr(out->str, "a: datagrams = 3\n"));
    g_assert_nonnull(strstr(out->str, "b: datagrams = 2\n"));

    /* State directory per instance, and a log file per instance. */
    g_autofree char *created = g_build_filename(f->dir, "state", "a", "created", NULL);
    g_assert_true(g_file_test(created, G_FILE_TEST_IS_REGULAR));
    g_autofree char *log = g_build_filename(f->dir, "log", "a.log", NULL);
    g_autofree char *text = NULL;
    g_assert_true(g_file_get_contents(log, &text, NULL, NULL));
    g_assert_nonnull(strstr(text, "started (testplug 1.0.0)"));
    g_assert_nonnull(strstr(text, "2 network(s)"));

    /* Stop removes the sockets: nothing answers any more. */
    pb_host_stop_all(f->host);
    assert_state(f, "a", PB_INSTANCE_STOPPED, NULL);
    g_autofree char *none = pbt_udp_exchange(f->pa, "ping", 300);
    g_assert_null(none);
}

static void test_timer_and_cleanup(Fixture *f, gconstpointer data)
{
    apply(f, pbt_yaml("plugins:\n  - {module: testplug, name: t, tick_ms: 10}\n"), NULL);
    pbt_spin(300);
    gint64 ticks = pb_host_counter_value(f->host, "t", "ticks");
    g_assert_cmpint(ticks, >=, 5);
    pb_host_stop_all(f->host);
    gint64 after = pb_host_counter_value(f->host, "t", "ticks");
    pbt_spin(100);
    g_assert_cmpint(pb_host_counter_value(f->host, "t", "ticks"), ==, after);
}

static gboolean reload(Fixture *f, PbConfig *cfg, GString *report, GError **error)
{
    return pb_host_reload(f->host, cfg, report, error);
}

static void test_reload_staged(Fixture *f, gconstpointer data)
{
    apply(f,
          pbt_yaml("plugins:\n"
                   "  - {module: testplug, name: a, port: %u, greeting: hi-a}\n"
                   "  - {module: testplug, name: b, port: %u, greeting: hi-b}\n",
                   f->pa, f->pb),
          NULL);
    assert_reply(f->pa, "x", "hi-a: x");

    /* b refuses: a must not change either. */
    g_autoptr(GError) error = NULL;
    g_autoptr(GString) report = g_string_new(NULL);
    g_assert_false(reload(f,
                          pbt_yaml("plugins:\n"
                                   "  - {module: testplug, name: a, port: %u, greeting: new-a}\n"
                                   "  - {module: testplug, name: b, port: %u, greeting: new-b, "
                                   "refuse_reload: yes}\n",
                                   f->pa, f->pb),
                          report, &error));
    g_assert_nonnull(error);
    g_assert_nonnull(strstr(error->message, "reload refused, the running configuration stays"));
    g_assert_nonnull(strstr(error->message, "b: refuse_reload is set"));
    assert_reply(f->pa, "x", "hi-a: x");
    assert_reply(f->pb, "x", "hi-b: x");

    /* A bad value anywhere refuses the whole reload too. */
    g_clear_error(&error);
    g_assert_false(reload(f,
                          pbt_yaml("plugins:\n"
                                   "  - {module: testplug, name: a, port: %u, greeting: new-a}\n"
                                   "  - {module: testplug, name: b, port: %u, mode: bogus}\n",
                                   f->pa, f->pb),
                          report, &error));
    g_assert_nonnull(strstr(error->message, "mode"));
    assert_reply(f->pa, "x", "hi-a: x");

    /* A good one switches both. */
    g_clear_error(&error);
    g_string_truncate(report, 0);
    g_assert_true(reload(f,
                         pbt_yaml("plugins:\n"
                                  "  - {module: testplug, name: a, port: %u, greeting: new-a}\n"
                                  "  - {module: testplug, name: b, port: %u, greeting: new-b}\n",
                                  f->pa, f->pb),
                         report, &error));
    g_assert_no_error(error);
    assert_reply(f->pa, "x", "new-a: x");
    assert_reply(f->pb, "x", "new-b: x");
    /* Counters survive a reload (they reset only on restart). */
    g_assert_cmpint(pb_host_counter_value(f->host, "a", "datagrams"), ==, 4);

    /* A parameter that needs a restart is reported, and the old socket keeps serving. */
    guint16 other = pbt_free_udp_port();
    g_string_truncate(report, 0);
    g_assert_true(reload(f,
                         pbt_yaml("plugins:\n"
                                  "  - {module: testplug, name: a, port: %u, greeting: new-a}\n"
                                  "  - {module: testplug, name: b, port: %u, greeting: new-b}\n",
                                  other, f->pb),
                         report, &error));
    g_autofree char *expect =
        g_strdup_printf("a: port changed to '%u'; it takes effect on restart", other);
    g_assert_nonnull(strstr(report->str, expect));
    assert_reply(f->pa, "x", "new-a: x");

    /* Removing b stops it; adding c starts it. */
    guint16 pc = pbt_free_udp_port();
    g_string_truncate(report, 0);
    g_assert_true(reload(f,
                         pbt_yaml("plugins:\n"
                                  "  - {module: testplug, name: a, port: %u, greeting: new-a}\n"
                                  "  - {module: testplug, name: c, port: %u, greeting: hi-c}\n",
                                  f->pa, pc),
                         report, &error));
    g_assert_nonnull(strstr(report->str, "b: removed from the configuration, stopped"));
    g_assert_null(pb_host_find(f->host, "b"));
    assert_reply(pc, "x", "hi-c: x");
    g_autofree char *none = pbt_udp_exchange(f->pb, "x", 300);
    g_assert_null(none);
}

static void test_reload_recreate(Fixture *f, gconstpointer data)
{
    apply(f,
          pbt_yaml("plugins:\n  - {module: testplug_norl, name: n, port: %u, greeting: one}\n",
                   f->pa),
          NULL);
    assert_reply(f->pa, "x", "one: x");
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    /* Unchanged: the instance is left alone (its counters keep counting). */
    g_assert_true(
        reload(f,
               pbt_yaml("plugins:\n  - {module: testplug_norl, name: n, port: %u, greeting: one}\n",
                        f->pa),
               report, &error));
    g_assert_null(strstr(report->str, "restarted"));
    g_assert_cmpint(pb_host_counter_value(f->host, "n", "datagrams"), ==, 1);
    /* Changed, and no reload support: stopped and created again with the new values. */
    g_assert_true(
        reload(f,
               pbt_yaml("plugins:\n  - {module: testplug_norl, name: n, port: %u, greeting: two}\n",
                        f->pa),
               report, &error));
    g_assert_nonnull(strstr(report->str, "n: restarted with its new configuration"));
    assert_reply(f->pa, "x", "two: x");
    g_assert_cmpint(pb_host_counter_value(f->host, "n", "datagrams"), ==, 1);
}

static void test_reload_recovers_failed(Fixture *f, gconstpointer data)
{
    apply(
        f,
        pbt_yaml("plugins:\n  - {module: testplug, name: a, port: %u, fail_create: yes}\n", f->pa),
        NULL);
    assert_state(f, "a", PB_INSTANCE_FAILED, "fail_create");
    g_autoptr(GError) error = NULL;
    g_assert_true(reload(
        f,
        pbt_yaml("plugins:\n  - {module: testplug, name: a, port: %u, greeting: fixed}\n", f->pa),
        NULL, &error));
    assert_state(f, "a", PB_INSTANCE_RUNNING, NULL);
    assert_reply(f->pa, "x", "fixed: x");
}

static void test_legacy_attach(Fixture *f, gconstpointer data)
{
    g_autofree char *legacy = g_build_filename(f->dir, "novell-pbtest.conf", NULL);
    g_autofree char *text = g_strdup_printf("# legacy settings\n"
                                            "TestGreeting = from-legacy\n"
                                            "TestPort = %u\n"
                                            "TestMode = SLOW\n"
                                            "TestLogLevel =\n",
                                            f->pa);
    g_assert_true(g_file_set_contents(legacy, text, -1, NULL));
    apply(f,
          pbt_yaml("legacy: [%s]\nplugins:\n  - {module: testplug, name: l, flag: yes}\n", legacy),
          NULL);
    assert_reply(f->pa, "x", "from-legacy: x");
    pb_instance *inst = pb_host_find(f->host, "l");
    g_assert_nonnull(inst);
    g_assert_null(pb_host_find(f->host, "testplug"));

    /* YAML keys win over the legacy file's. */
    g_autoptr(GError) error = NULL;
    g_assert_true(reload(f,
                         pbt_yaml("legacy: [%s]\nplugins:\n  - {module: testplug, name: l, "
                                  "greeting: from-yaml}\n",
                                  legacy),
                         NULL, &error));
    g_assert_no_error(error);
    assert_reply(f->pa, "x", "from-yaml: x");
}

static void test_legacy_alone(Fixture *f, gconstpointer data)
{
    g_autofree char *legacy = g_build_filename(f->dir, "novell-pbtest.conf", NULL);
    g_autofree char *text = g_strdup_printf("TestGreeting = alone\nTestPort = %u\n", f->pa);
    g_assert_true(g_file_set_contents(legacy, text, -1, NULL));
    g_autoptr(GError) error = NULL;
    PbConfig *cfg = pb_config_load(legacy, &error);
    g_assert_no_error(error);
    apply(f, cfg, NULL);
    /* The owning plugin is found by the file's basename; the instance is named after the
     * file, as the legacy service was. */
    assert_state(f, "novell-pbtest", PB_INSTANCE_RUNNING, NULL);
    assert_reply(f->pa, "x", "alone: x");
}

static void test_duplicate_names(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    const char *text = "plugins:\n  - {module: testplug}\n  - {module: testplug}\n";
    PbConfig *cfg = pb_yaml_parse(text, strlen(text), "test.yaml", &error);
    /* The YAML reader may catch this itself; either way it is refused with both lines. */
    if (cfg != NULL)
        g_assert_false(pb_host_apply(f->host, cfg, NULL, &error));
    g_assert_nonnull(strstr(error->message, "test.yaml:3"));
    g_assert_true(strstr(error->message, "test.yaml:2") || strstr(error->message, "line 2"));
}

/* ---- ABI 1.1: dependency order, service watches, readiness ------------------------------ */

static gint64 counter(Fixture *f, const char *inst, const char *name)
{
    return pb_host_counter_value(f->host, inst, name);
}

static gboolean reload_yaml(Fixture *f, PbConfig *cfg)
{
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    gboolean ok = pb_host_reload(f->host, cfg, report, &error);
    g_assert_no_error(error);
    return ok;
}

/* Consumers configured before their provider still start after it, see it at once through
 * their watch, follow its restart as a new generation, and stop before it. */
static void test_dependency_order(Fixture *f, gconstpointer data)
{
#define DEPS_YAML                         \
    "plugins:\n"                          \
    "  - {module: depcons, name: cons}\n" \
    "  - {module: depwant, name: want}\n" \
    "  - {module: depprov, name: prov, tag: %s}\n"
    apply(f, pbt_yaml(DEPS_YAML, "one"), NULL);
    assert_state(f, "cons", PB_INSTANCE_RUNNING, NULL);
    assert_state(f, "want", PB_INSTANCE_RUNNING, NULL);
    assert_state(f, "prov", PB_INSTANCE_RUNNING, NULL);
    g_assert_cmpint(counter(f, "cons", "provider_at_start"), ==, 1);
    g_assert_cmpint(counter(f, "want", "provider_at_start"), ==, 1);
    g_assert_cmpint(counter(f, "cons", "appeared"), ==, 1);
    g_assert_cmpint(counter(f, "cons", "withdrawn"), ==, 0);
    gint64 first = counter(f, "cons", "generation");
    g_assert_cmpint(first, >, 0);
    g_assert_cmpint(counter(f, "want", "generation"), ==, first);
    g_autoptr(GString) why = g_string_new(NULL);
    g_assert_true(pb_host_ready(f->host, why));
    g_assert_cmpstr(why->str, ==, "");

    /* The provider is re-created (no reload support, a changed value): withdrawn while
     * its interface still works, back as a new generation, consumers untouched. */
    g_assert_true(reload_yaml(f, pbt_yaml(DEPS_YAML, "two")));
    assert_state(f, "cons", PB_INSTANCE_RUNNING, NULL);
    g_assert_cmpint(counter(f, "cons", "withdrawn"), ==, 1);
    g_assert_cmpint(counter(f, "cons", "valid_on_withdraw"), ==, 1);
    g_assert_cmpint(counter(f, "cons", "appeared"), ==, 2);
    g_assert_cmpint(counter(f, "cons", "generation"), >, first);
    g_assert_cmpint(counter(f, "want", "appeared"), ==, 2);
    g_assert_true(pb_host_ready(f->host, NULL));

    /* Shutdown is the reverse of the dependency order, not of the configuration's. */
    pb_host_stop_all(f->host);
    g_assert_cmpint(counter(f, "cons", "provider_at_stop"), ==, 1);
    g_assert_cmpint(counter(f, "want", "provider_at_stop"), ==, 1);
}

/* A required service nobody provides fails the instance, naming the service and, when a
 * configured provider failed, which one and why; a wanted one does not. */
static void test_requires(Fixture *f, gconstpointer data)
{
    apply(f,
          pbt_yaml("plugins:\n"
                   "  - {module: depcons, name: cons}\n"
                   "  - {module: depwant, name: want}\n"
                   "  - {module: depprov, name: prov, fail_start: yes}\n"),
          NULL);
    assert_state(f, "prov", PB_INSTANCE_FAILED, "start failed: fail_start is set");
    assert_state(f, "cons", PB_INSTANCE_FAILED,
                 "not started: it requires service test.dep, which prov provides, but prov is "
                 "failed: start failed: fail_start is set");
    assert_state(f, "want", PB_INSTANCE_RUNNING, NULL);
    g_assert_cmpint(counter(f, "want", "appeared"), ==, 0);
    g_autoptr(GString) why = g_string_new(NULL);
    g_assert_false(pb_host_ready(f->host, why));
    g_assert_nonnull(strstr(why->str, "prov: failed: start failed: fail_start is set\n"));
    g_assert_nonnull(strstr(why->str, "cons: failed: not started: it requires service test.dep"));
    g_assert_null(strstr(why->str, "want"));

    /* No provider configured at all. */
    g_assert_true(reload_yaml(f, pbt_yaml("plugins:\n  - {module: depcons, name: cons}\n")));
    assert_state(f, "cons", PB_INSTANCE_FAILED,
                 "it requires service test.dep, which no configured instance provides");
}

/* A watch removed from inside its own callback hears nothing more (and is freed once the
 * notification ends: valgrind and ASan runs see to that). */
static void test_unwatch_in_callback(Fixture *f, gconstpointer data)
{
#define UNWATCH_YAML                                             \
    "plugins:\n"                                                 \
    "  - {module: depwant, name: w, unwatch_on_withdraw: yes}\n" \
    "  - {module: depwant, name: other}\n"                       \
    "  - {module: depprov, name: prov, tag: %s}\n"
    apply(f, pbt_yaml(UNWATCH_YAML, "one"), NULL);
    g_assert_true(reload_yaml(f, pbt_yaml(UNWATCH_YAML, "two")));
    g_assert_cmpint(counter(f, "w", "withdrawn"), ==, 1);
    g_assert_cmpint(counter(f, "w", "appeared"), ==, 1); /* unwatched: not told again */
    g_assert_cmpint(counter(f, "other", "appeared"), ==, 2);
    g_assert_true(reload_yaml(f, pbt_yaml(UNWATCH_YAML, "three")));
    g_assert_cmpint(counter(f, "w", "withdrawn"), ==, 1);
    g_assert_cmpint(counter(f, "other", "withdrawn"), ==, 2);
}

/* --check-config tells what start would refuse: a required service nobody provides. */
static void test_check_requires(Fixture *f, gconstpointer data)
{
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(PbConfig) bad = pbt_yaml("plugins:\n"
                                       "  - {module: depcons, name: cons}\n"
                                       "  - {module: depprov, name: prov, enabled: no}\n");
    g_assert_false(pb_host_check(f->host, bad, report));
    g_assert_nonnull(
        strstr(report->str,
               "test.yaml:2: cons requires service test.dep, which no enabled instance provides"));
    g_string_truncate(report, 0);
    g_autoptr(PbConfig) good = pbt_yaml("plugins:\n"
                                        "  - {module: depcons, name: cons}\n"
                                        "  - {module: depprov, name: prov}\n");
    if (!pb_host_check(f->host, good, report))
        g_error("check refused: %s", report->str);
}

/* A plugin built against ABI 1.0 loads and runs (its descriptor is read only as far as
 * its struct_size), and a watch set before its service exists reports it when published. */
static void test_abi10_plugin_runs(Fixture *f, gconstpointer data)
{
    apply(f,
          pbt_yaml("plugins:\n"
                   "  - {module: depwant, name: want}\n"
                   "  - {module: depabi10, name: old}\n"),
          NULL);
    assert_state(f, "old", PB_INSTANCE_RUNNING, NULL);
    assert_state(f, "want", PB_INSTANCE_RUNNING, NULL);
    /* No declarations in 1.0: configuration order, so want started first... */
    g_assert_cmpint(counter(f, "want", "provider_at_start"), ==, 0);
    /* ...and its watch told it when old published. */
    g_assert_cmpint(counter(f, "want", "appeared"), ==, 1);
    g_assert_true(pb_host_ready(f->host, NULL));
}

/* library_open through the services table a plugin receives; left-open libraries are
 * the host's to close when the instance stops (valgrind/ASan would see a leak). */
static void test_library_service(Fixture *f, gconstpointer data)
{
    apply(f, pbt_yaml("plugins:\n  - {module: depwant, name: w}\n"), NULL);
    const pb_host *h = pb_host_services();
    g_assert_true(PB_HAS_FIELD(pb_host, h, library_open));
    pb_instance *inst = pb_host_find(f->host, "w");
    const pb_library_spec spec = {
        .struct_size = sizeof(spec),
        .magic = TESTLIB_MAGIC,
        .abi_major = TESTLIB_ABI_MAJOR,
        .abi_minor = TESTLIB_ABI_MINOR,
        .min_struct_size = sizeof(TestLib),
        .entry_symbol = TESTLIB_ENTRY,
        .kind = "test library",
    };
    pb_library *lib = NULL;
    const TestLib *t = h->library_open(inst, &spec, "testlib", &lib, NULL);
    g_assert_nonnull(t);
    g_assert_nonnull(lib);
    g_assert_cmpint(t->add(2, 3), ==, 5);
    h->library_close(lib);
    pb_library *bad = (pb_library *)&spec;
    g_assert_null(h->library_open(inst, &spec, "testlib_badsig", &bad, NULL));
    g_assert_null(bad);
    /* Left open: closed with the instance. */
    g_assert_nonnull(h->library_open(inst, &spec, "testlib", &lib, NULL));
}

/* Where each value came from: YAML file:line and key, legacy file:line and alias, or
 * the default; this is what plugins put in front of their start-up errors. */
static void test_config_origin(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(PbModule) m =
        pb_module_open((const char *const[]){pbt_test_modules(), NULL}, "testplug", &error);
    g_assert_no_error(error);
    g_autofree char *legacy = g_build_filename(f->dir, "novell-pbtest.conf", NULL);
    g_assert_true(
        g_file_set_contents(legacy, "# test\nTestPort = 7\nTestGreeting = hey\n", -1, NULL));
    g_autoptr(PbConfig) cfg = pbt_yaml("plugins:\n"
                                       "  - module: testplug\n"
                                       "    legacy: [%s]\n"
                                       "    mode: slow\n"
                                       "    TestFlag: yes\n",
                                       legacy);
    PbInstanceSpec *spec = g_ptr_array_index(cfg->instances, 0);
    g_autoptr(pb_config) built = pb_config_build(m->plugin, spec, NULL, &error);
    g_assert_no_error(error);
    const pb_host *h = pb_host_services();

    pb_value_origin o = {.struct_size = sizeof(o)};
    g_assert_true(h->config_origin(built, "mode", &o));
    g_assert_cmpuint(o.kind, ==, PB_ORIGIN_YAML);
    g_assert_cmpstr(o.file, ==, "test.yaml");
    g_assert_cmpuint(o.line, ==, 4);
    g_assert_cmpstr(o.key, ==, "mode");
    g_assert_cmpstr(o.text, ==, "test.yaml:4: mode");
    /* A legacy alias written in YAML is named as written. */
    g_assert_true(h->config_origin(built, "flag", &o));
    g_assert_cmpstr(o.text, ==, "test.yaml:5: TestFlag");

    g_assert_true(h->config_origin(built, "greeting", &o));
    g_assert_cmpuint(o.kind, ==, PB_ORIGIN_LEGACY);
    g_assert_cmpstr(o.key, ==, "TestGreeting");
    g_autofree char *want = g_strdup_printf("%s:3: TestGreeting", legacy);
    g_assert_cmpstr(o.text, ==, want);
    g_assert_cmpstr(pb_config_where(h, built, "greeting"), ==, want);

    g_assert_true(h->config_origin(built, "directory", &o));
    g_assert_cmpuint(o.kind, ==, PB_ORIGIN_DEFAULT);
    g_assert_null(o.file);
    g_assert_cmpstr(o.text, ==, "directory (default)");

    /* A caller built with a smaller struct gets only what it holds. */
    struct {
        uint32_t struct_size, kind;
        const char *file;
        uint32_t line;
        const char *key, *text, *beyond;
    } small = {.struct_size = offsetof(pb_value_origin, key), .beyond = "untouched"};
    g_assert_true(h->config_origin(built, "mode", (pb_value_origin *)&small));
    g_assert_cmpuint(small.line, ==, 4);
    g_assert_null(small.key);
    g_assert_null(small.text);
    g_assert_cmpstr(small.beyond, ==, "untouched");

    g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "*undeclared parameter 'nosuch'*");
    g_assert_false(h->config_origin(built, "nosuch", &o));
    g_test_assert_expected_messages();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
    ADD("/host/lifecycle", test_lifecycle);
    ADD("/host/timer-and-cleanup", test_timer_and_cleanup);
    ADD("/host/reload/staged", test_reload_staged);
    ADD("/host/reload/recreate-without-reload-support", test_reload_recreate);
    ADD("/host/reload/recovers-failed-instance", test_reload_recovers_failed);
    ADD("/host/legacy/attach-to-yaml-instance", test_legacy_attach);
    ADD("/host/legacy/file-alone", test_legacy_alone);
    ADD("/host/duplicate-instance-names", test_duplicate_names);
    ADD("/host/abi-1.1/dependency-order", test_dependency_order);
    ADD("/host/abi-1.1/requires", test_requires);
    ADD("/host/abi-1.1/abi-1.0-plugin-runs", test_abi10_plugin_runs);
    ADD("/host/abi-1.1/unwatch-in-callback", test_unwatch_in_callback);
    ADD("/host/abi-1.1/check-config-requires", test_check_requires);
    ADD("/host/abi-1.1/library-open", test_library_service);
    ADD("/host/abi-1.1/config-origin", test_config_origin);
    return g_test_run();
}
