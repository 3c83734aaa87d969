/* testplug.c - a plugin that exercises every service of the host, for the loader, host
 * and daemon tests. It echoes UDP datagrams with its greeting, so a test can see a
 * reload take effect from the outside:
 *   "<text>"        -> "<greeting>: <text>"
 *   "defer <text>"  -> the same reply, sent from a host->defer() callback
 *   "lookup NAME"   -> the greeting of the instance publishing service "testplug.NAME"
 * Built twice: testplug (staged reload) and testplug_norl (no reload callbacks, so the
 * host must re-create it). */
#include <preboot/plugin.h>

#include "net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TESTPLUG_NAME
#define TESTPLUG_NAME testplug
#endif
#define STR_(x) #x
#define STR(x)  STR_(x)

typedef struct {
    uint32_t struct_size;
    const char *(*greeting)(void *self);
    void *self;
} TestplugIface;

typedef struct {
    char *greeting;
    uint32_t tick_ms;
} Settings;

typedef struct {
    const pb_host *host;
    pb_instance *inst;
    Settings set;
    pb_socket_t sock;
    pb_watch *watch;
    pb_timer *timer;
    pb_counter *datagrams, *ticks, *deferred;
    TestplugIface iface;
    bool fail_start;
    char *service_name;
    char *verb;
} Testplug;

typedef struct {
    Testplug *tp;
    PbAddr to;
    char *text;
} DeferredReply;

static const char *const modes[] = {"fast", "slow", "careful", NULL};

static const pb_param params[] = {
    {.name = "greeting",
     .legacy = "TestGreeting",
     .type = PB_PARAM_STRING,
     .def = "hello",
     .help = "Prefix of every echoed datagram."},
    {.name = "address",
     .legacy = "TestInterface",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK,
     .def = "127.0.0.1",
     .help = "Address of the echo socket."},
    {.name = "port",
     .legacy = "TestPort",
     .type = PB_PARAM_INT,
     .flags = PB_PARAM_F_RESTART,
     .def = "0",
     .min = 0,
     .max = 65535,
     .help = "UDP echo port; 0 = no socket."},
    {.name = "mode",
     .legacy = "TestMode",
     .type = PB_PARAM_ENUM,
     .def = "fast",
     .choices = modes,
     .help = "A setting with allowed values."},
    {.name = "flag",
     .legacy = "TestFlag",
     .type = PB_PARAM_BOOL,
     .def = "no",
     .help = "A yes/no setting."},
    {.name = "directory",
     .legacy = "TestDirectory",
     .type = PB_PARAM_PATH,
     .def = "/tmp",
     .help = "A path setting."},
    {.name = "networks",
     .legacy = "TestNetworks",
     .type = PB_PARAM_LIST,
     .flags = PB_PARAM_F_EMPTY_OK,
     .help = "A list setting."},
    {.name = "tick_ms",
     .legacy = "TestTick",
     .type = PB_PARAM_INT,
     .def = "0",
     .min = 0,
     .max = 60000,
     .unit = "ms",
     .help = "Timer period; 0 = no timer."},
    {.name = "fail_create",
     .legacy = "TestFailCreate",
     .type = PB_PARAM_BOOL,
     .def = "no",
     .help = "Make create() fail."},
    {.name = "fail_start",
     .legacy = "TestFailStart",
     .type = PB_PARAM_BOOL,
     .def = "no",
     .help = "Make start() fail."},
    {.name = "refuse_reload",
     .legacy = "TestRefuseReload",
     .type = PB_PARAM_BOOL,
     .def = "no",
     .help = "Make reload_prepare() refuse a configuration that sets it."},
    {.name = "obsolete",
     .legacy = "TestObsolete",
     .type = PB_PARAM_BOOL,
     .flags = PB_PARAM_F_DEPRECATED,
     .def = "no",
     .help = "Not supported any more."},
    {.name = "log_level",
     .legacy = "TestLogLevel",
     .type = PB_PARAM_INT,
     .role = PB_ROLE_LOG_LEVEL,
     .def = "2",
     .min = 0,
     .max = 4,
     .help = "Log level."},
    {.name = "log_file",
     .legacy = "TestLogFile",
     .type = PB_PARAM_PATH,
     .flags = PB_PARAM_F_EMPTY_OK,
     .role = PB_ROLE_LOG_FILE,
     .help = "Log file."},
    {.name = "log_size",
     .legacy = "TestLogFileSize",
     .type = PB_PARAM_INT,
     .role = PB_ROLE_LOG_SIZE,
     .def = "15",
     .min = 0,
     .max = 1024,
     .unit = "MB",
     .help = "Log size cap."},
};

static void settings_read(const pb_host *h, const pb_config *cfg, Settings *s)
{
    s->greeting = strdup(h->config_string(cfg, "greeting"));
    s->tick_ms = (uint32_t)h->config_int(cfg, "tick_ms");
}

static const char *iface_greeting(void *self)
{
    return ((Testplug *)self)->set.greeting;
}

static void reply(Testplug *tp, const PbAddr *to, const char *text)
{
    char out[600];
    int n = snprintf(out, sizeof(out), "%s: %s", tp->set.greeting, text);
    if (n > (int)sizeof(out) - 1)
        n = (int)sizeof(out) - 1;
    pb_udp_send(tp->sock, out, (size_t)n, to, NULL, 0, NULL);
}

static void deferred_reply(void *data)
{
    DeferredReply *d = data;
    d->tp->host->counter_add(d->tp->deferred, 1);
    reply(d->tp, &d->to, d->text);
    free(d->text);
    free(d);
}

static bool on_datagram(void *data, pb_socket_t sock, unsigned events)
{
    Testplug *tp = data;
    char buf[512];
    PbAddr from;
    for (;;) {
        gssize n = pb_udp_recv(sock, buf, sizeof(buf) - 1, &from, NULL, NULL, NULL);
        if (n < 0)
            break;
        buf[n] = '\0';
        tp->host->counter_add(tp->datagrams, 1);
        tp->host->log(tp->inst, PB_LOG_REQUEST, "datagram: %s", buf);
        if (strncmp(buf, "defer ", 6) == 0) {
            DeferredReply *d = calloc(1, sizeof(*d));
            d->tp = tp;
            d->to = from;
            d->text = strdup(buf + 6);
            tp->host->defer(tp->inst, deferred_reply, d);
        } else if (strncmp(buf, "lookup ", 7) == 0) {
            char name[600];
            snprintf(name, sizeof(name), "testplug.%s", buf + 7);
            const TestplugIface *other = tp->host->service_lookup(tp->inst, name, 1, NULL);
            reply(tp, &from, other ? other->greeting(other->self) : "(no such service)");
        } else {
            reply(tp, &from, buf);
        }
    }
    return true;
}

static bool on_tick(void *data)
{
    Testplug *tp = data;
    tp->host->counter_add(tp->ticks, 1);
    return true;
}

static bool cmd_echo(void *self, int argc, const char *const *argv, pb_reply *r)
{
    Testplug *tp = self;
    if (argc < 2) {
        tp->host->reply(r, "usage: %s TEXT\n", argv[0]);
        return false;
    }
    tp->host->reply(r, "%s:", tp->set.greeting);
    for (int i = 1; i < argc; i++)
        tp->host->reply(r, " %s", argv[i]);
    tp->host->reply(r, "\n");
    return true;
}

static void tp_destroy(void *self);

/* What create() refuses, without creating anything (--check-config). */
static bool tp_check(const pb_host *host, const pb_config *cfg, pb_err *err)
{
    if (host->config_bool(cfg, "fail_create")) {
        host->error(err, "fail_create is set");
        return false;
    }
    return true;
}

static void *tp_create(const pb_host *host, pb_instance *inst, const pb_config *cfg, pb_err *err)
{
    if (host->config_bool(cfg, "fail_create")) {
        host->error(err, "fail_create is set");
        return NULL;
    }
    Testplug *tp = calloc(1, sizeof(*tp));
    tp->host = host;
    tp->inst = inst;
    tp->sock = PB_SOCKET_NONE;
    settings_read(host, cfg, &tp->set);
    tp->fail_start = host->config_bool(cfg, "fail_start");
    tp->datagrams = host->counter(inst, "datagrams");
    tp->ticks = host->counter(inst, "ticks");
    tp->deferred = host->counter(inst, "deferred replies");

    const char *const *nets;
    size_t n_nets = host->config_list(cfg, "networks", &nets);
    host->log(inst, PB_LOG_REQUEST, "mode %s, flag %d, directory %s, %zu network(s)",
              host->config_string(cfg, "mode"), host->config_bool(cfg, "flag"),
              host->config_string(cfg, "directory"), n_nets);

    int64_t port = host->config_int(cfg, "port");
    if (port > 0) {
        PbAddr bind;
        GError *e = NULL;
        if (!pb_addr_parse(host->config_string(cfg, "address"), (guint16)port, &bind) ||
            (tp->sock = pb_udp_open(&bind, 0, &e)) == PB_SOCKET_NONE) {
            host->error(err, "cannot bind %s:%d: %s", host->config_string(cfg, "address"),
                        (int)port, e ? e->message : "bad address");
            if (e)
                g_error_free(e);
            tp_destroy(tp);
            return NULL;
        }
    }

    const char *name = host->instance_name(inst);
    tp->service_name = malloc(strlen(name) + 16);
    sprintf(tp->service_name, "testplug.%s", name);
    tp->iface = (TestplugIface){sizeof(TestplugIface), iface_greeting, tp};
    if (!host->service_publish(inst, tp->service_name, 1, &tp->iface, err)) {
        tp_destroy(tp);
        return NULL;
    }
    tp->verb = malloc(strlen(name) + 8);
    sprintf(tp->verb, "echo-%s", name);
    if (!host->command_register(inst, tp->verb, "echo-NAME TEXT...", cmd_echo, err)) {
        tp_destroy(tp);
        return NULL;
    }
    /* The state directory must exist and be writable. */
    char probe[4096];
    snprintf(probe, sizeof(probe), "%s/created", host->state_dir(inst));
    FILE *f = fopen(probe, "w");
    if (f == NULL) {
        host->error(err, "state directory %s is not writable", host->state_dir(inst));
        tp_destroy(tp);
        return NULL;
    }
    fputs("yes\n", f);
    fclose(f);
    return tp;
}

static bool tp_start(void *self, pb_err *err)
{
    Testplug *tp = self;
    if (tp->fail_start) {
        tp->host->error(err, "fail_start is set");
        return false;
    }
    if (tp->sock != PB_SOCKET_NONE)
        tp->watch = tp->host->watch_socket(tp->inst, tp->sock, PB_IO_IN, on_datagram, tp);
    if (tp->set.tick_ms > 0)
        tp->timer = tp->host->timer_add(tp->inst, tp->set.tick_ms, on_tick, tp);
    tp->host->log(tp->inst, PB_LOG_TRANSACTION, "serving with greeting '%s'", tp->set.greeting);
    return true;
}

#ifndef TESTPLUG_NO_RELOAD
static void *tp_reload_prepare(void *self, const pb_config *cfg, pb_err *err)
{
    Testplug *tp = self;
    if (tp->host->config_bool(cfg, "refuse_reload")) {
        tp->host->error(err, "refuse_reload is set");
        return NULL;
    }
    Settings *s = calloc(1, sizeof(*s));
    settings_read(tp->host, cfg, s);
    return s;
}

static void tp_reload_commit(void *self, void *staged)
{
    Testplug *tp = self;
    Settings *s = staged;
    free(tp->set.greeting);
    if (tp->timer && s->tick_ms != tp->set.tick_ms) {
        tp->host->timer_remove(tp->timer);
        tp->timer = NULL;
    }
    if (tp->timer == NULL && s->tick_ms > 0)
        tp->timer = tp->host->timer_add(tp->inst, s->tick_ms, on_tick, tp);
    tp->set = *s;
    free(s);
}

static void tp_reload_abort(void *self, void *staged)
{
    Settings *s = staged;
    free(s->greeting);
    free(s);
}

#endif

static void tp_status(void *self, pb_status *st)
{
    Testplug *tp = self;
    tp->host->status_text(st, "echoing with greeting '%s'", tp->set.greeting);
    tp->host->status_kv(st, "socket", "%s", tp->sock != PB_SOCKET_NONE ? "open" : "none");
}

static void tp_stop(void *self)
{
    Testplug *tp = self;
    tp->host->watch_remove(tp->watch);
    tp->watch = NULL;
    tp->host->timer_remove(tp->timer);
    tp->timer = NULL;
}

static void tp_destroy(void *self)
{
    Testplug *tp = self;
    if (tp->sock != PB_SOCKET_NONE)
        pb_udp_close(tp->sock);
    free(tp->set.greeting);
    free(tp->service_name);
    free(tp->verb);
    free(tp);
}

#ifdef TESTPLUG_NO_RELOAD
#define TESTPLUG_LEGACY NULL
#else
static const char *const legacy_files[] = {"novell-pbtest.conf", NULL};
#define TESTPLUG_LEGACY legacy_files
#endif

static const pb_plugin descriptor = {
    PB_PLUGIN_HEADER,
    .name = STR(TESTPLUG_NAME),
    .version = "1.0.0",
    .description = "Test plugin exercising every host service",
    PB_PARAMS(params),
    .legacy_files = TESTPLUG_LEGACY,
    .create = tp_create,
    .start = tp_start,
#ifndef TESTPLUG_NO_RELOAD
    .reload_prepare = tp_reload_prepare,
    .reload_commit = tp_reload_commit,
    .reload_abort = tp_reload_abort,
#endif
    .status = tp_status,
    .stop = tp_stop,
    .destroy = tp_destroy,
    .check = tp_check,
};

#define DEFINE_(m, d) PB_PLUGIN_DEFINE(m, d)
DEFINE_(TESTPLUG_NAME, descriptor)
