/* deps.c - plugins that depend on each other through a service, for the host's
 * dependency order and service watches. Built as several modules:
 *   depprov   provides "test.dep" (publishes it in start())
 *   depcons   requires "test.dep": records what it saw at start and stop, and watches it
 *   depwant   wants "test.dep": the same, without requiring it
 *   depabi10  a descriptor as ABI 1.0 built it (struct_size ends before "provides"; the
 *             1.1 fields hold a pointer that would crash a host reading them anyway)
 * A consumer's counters: provider_at_start / provider_at_stop (1 when the service was
 * there), appeared / withdrawn (watch events), generation (the last one reported). */
#include <preboot/plugin.h>

#include <stdlib.h>
#include <string.h>

#define STR_(x)     #x
#define STR(x)      STR_(x)
#define DEP_SERVICE "test.dep"

typedef struct {
    uint32_t struct_size;
    int value;
} DepIface;

typedef struct {
    const pb_host *host;
    pb_instance *inst;
    DepIface iface;
    bool fail_start, unwatch_on_withdraw;
    pb_service_watch *watch;
    pb_counter *at_start, *at_stop, *appeared, *withdrawn, *generation, *valid_on_withdraw;
} Dep;

static const pb_param params[] = {
    {.name = "fail_start", .type = PB_PARAM_BOOL, .def = "no", .help = "Make start() fail."},
    {.name = "tag", .type = PB_PARAM_STRING, .help = "Changing it re-creates the instance."},
    {.name = "unwatch_on_withdraw",
     .type = PB_PARAM_BOOL,
     .def = "no",
     .help = "Unwatch from inside the WITHDRAWN callback (re-entrancy)."},
};

#if !defined(DEPS_PROVIDER) && !defined(DEPS_ABI10)
static void on_event(void *data, unsigned event, const char *name, uint32_t version,
                     const void *iface, uint64_t generation)
{
    Dep *d = data;
    if (event == PB_SERVICE_APPEARED) {
        d->host->counter_add(d->appeared, 1);
        d->host->counter_set(d->generation, (int64_t)generation);
    } else {
        d->host->counter_add(d->withdrawn, 1);
        /* The provider's interface must still be usable while it is withdrawn. */
        const DepIface *di = iface;
        if (di != NULL && di->value == 42)
            d->host->counter_add(d->valid_on_withdraw, 1);
        if (d->unwatch_on_withdraw) {
            d->host->service_unwatch(d->watch);
            d->watch = NULL;
        }
    }
}

#endif

static void *dep_create(const pb_host *host, pb_instance *inst, const pb_config *cfg, pb_err *err)
{
    Dep *d = calloc(1, sizeof(*d));
    d->host = host;
    d->inst = inst;
    d->fail_start = host->config_bool(cfg, "fail_start");
    d->unwatch_on_withdraw = host->config_bool(cfg, "unwatch_on_withdraw");
    d->iface = (DepIface){sizeof(DepIface), 42};
    d->at_start = host->counter(inst, "provider_at_start");
    d->at_stop = host->counter(inst, "provider_at_stop");
    d->appeared = host->counter(inst, "appeared");
    d->withdrawn = host->counter(inst, "withdrawn");
    d->generation = host->counter(inst, "generation");
    d->valid_on_withdraw = host->counter(inst, "valid_on_withdraw");
    return d;
}

static bool dep_start(void *self, pb_err *err)
{
    Dep *d = self;
    if (d->fail_start) {
        d->host->error(err, "fail_start is set");
        return false;
    }
#if defined(DEPS_PROVIDER) || defined(DEPS_ABI10)
    if (!d->host->service_publish(d->inst, DEP_SERVICE, 1, &d->iface, err))
        return false;
#else
    d->host->counter_set(d->at_start,
                         d->host->service_lookup(d->inst, DEP_SERVICE, 1, NULL) != NULL);
    d->watch = d->host->service_watch(d->inst, DEP_SERVICE, 1, on_event, d);
#endif
    return true;
}

static void dep_stop(void *self)
{
    Dep *d = self;
    d->host->counter_set(d->at_stop,
                         d->host->service_lookup(d->inst, DEP_SERVICE, 1, NULL) != NULL);
}

static void dep_destroy(void *self)
{
    free(self);
}

#if defined(DEPS_PROVIDER)
static const char *const provides[] = {DEP_SERVICE, NULL};
#elif !defined(DEPS_ABI10)
static const char *const needs[] = {DEP_SERVICE, NULL};
#endif

static const pb_plugin descriptor = {
    PB_PLUGIN_HEADER,       .name = STR(DEPS_NAME),
    .version = "1.0.0",     .description = "Dependency test plugin",
    PB_PARAMS(params),      .create = dep_create,
    .start = dep_start,     .stop = dep_stop,
    .destroy = dep_destroy,
#if defined(DEPS_PROVIDER)
    .provides = provides,
#elif defined(DEPS_CONSUMER)
    .requires = needs,
#elif defined(DEPS_WANTER)
    .wants = needs,
#elif defined(DEPS_ABI10)
    /* Never read: struct_size below says these fields do not exist. */
    .provides = (const char *const *)1,
    .requires = (const char *const *)1,
    .wants = (const char *const *)1,
#endif
};

#ifdef DEPS_ABI10
/* What an ABI 1.0 build of the plugin hands over: its descriptor ends before provides. */
static pb_plugin descriptor10;
PB_EXPORT const pb_plugin *depabi10_LTX_preboot_plugin_entry(void);
PB_EXPORT const pb_plugin *depabi10_LTX_preboot_plugin_entry(void)
{
    descriptor10 = descriptor;
    descriptor10.abi_minor = 0;
    descriptor10.struct_size = (uint32_t)offsetof(pb_plugin, provides);
    return &descriptor10;
}
#else
#define DEFINE_(m, d) PB_PLUGIN_DEFINE(m, d)
DEFINE_(DEPS_NAME, descriptor)
#endif
