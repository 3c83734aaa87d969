/* oot.c - a plugin built out of tree against the installed <preboot/plugin.h> only. */
#include <preboot/plugin.h>

#include <stdlib.h>
#include <string.h>

typedef struct {
    const pb_host *host;
    char *motto;
} Oot;

static const pb_param params[] = {
    {.name = "motto",
     .legacy = "OotMotto",
     .type = PB_PARAM_STRING,
     .def = "built elsewhere",
     .help = "What status says."},
};

static void *oot_create(const pb_host *host, pb_instance *inst, const pb_config *cfg, pb_err *err)
{
    Oot *o = calloc(1, sizeof(*o));
    o->host = host;
    o->motto = strdup(host->config_string(cfg, "motto"));
    host->counter_add(host->counter(inst, "creations"), 1);
    return o;
}

static void oot_status(void *self, pb_status *st)
{
    Oot *o = self;
    o->host->status_text(st, "out of tree: %s", o->motto);
}

static void oot_destroy(void *self)
{
    Oot *o = self;
    free(o->motto);
    free(o);
}

static const pb_plugin descriptor = {
    PB_PLUGIN_HEADER,     .name = "oot",
    .version = "0.0.1",   .description = "Out-of-tree test plugin",
    PB_PARAMS(params),    .create = oot_create,
    .status = oot_status, .destroy = oot_destroy,
};

PB_PLUGIN_DEFINE(oot, descriptor)
