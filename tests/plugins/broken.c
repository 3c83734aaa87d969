/* broken.c - plugins the host must refuse, one per BROKEN_* variant, each built as its
 * own module: a wrong magic, another ABI major, a newer ABI minor, a descriptor too
 * small, another platform's build signature, an inconsistent parameter table. */
#include <preboot/plugin.h>

#include <stdlib.h>

#define STR_(x) #x
#define STR(x)  STR_(x)

static void *b_create(const pb_host *host, pb_instance *inst, const pb_config *cfg, pb_err *err)
{
    return malloc(1);
}

static void b_destroy(void *self)
{
    free(self);
}

static const pb_param params[] = {
    {.name = "size",
     .legacy = "Size",
     .type = PB_PARAM_INT,
     .def = "5",
     .min = 1,
     .max = 10,
     .help = "A size."},
#ifdef BROKEN_TABLE
    /* The default is outside the declared range. */
    {.name = "count", .type = PB_PARAM_INT, .def = "99", .min = 1, .max = 10, .help = "A count."},
#endif
};

static const pb_plugin descriptor = {
#ifdef BROKEN_MAGIC
    .magic = 0xdeadbeefu,
#else
    .magic = PB_PLUGIN_MAGIC,
#endif
#ifdef BROKEN_MAJOR
    .abi_major = PB_ABI_MAJOR + 1,
#else
    .abi_major = PB_ABI_MAJOR,
#endif
#if defined(BROKEN_MINOR)
    .abi_minor = PB_ABI_MINOR + 7,
#elif defined(BROKEN_MAJOR)
    .abi_minor = 0, /* "built for 2.0" */
#else
    .abi_minor = PB_ABI_MINOR,
#endif
#ifdef BROKEN_SIZE
    .struct_size = 24,
#else
    .struct_size = sizeof(pb_plugin),
#endif
#ifdef BROKEN_SIGNATURE
    .build_signature = "plan9-mips-ptr4",
#else
    .build_signature = PB_BUILD_SIGNATURE,
#endif
    .name = STR(BROKEN_NAME),
    .version = "0.0.1",
    .description = "A plugin the host must refuse",
    PB_PARAMS(params),
    .create = b_create,
    .destroy = b_destroy,
};

#define DEFINE_(m, d) PB_PLUGIN_DEFINE(m, d)
DEFINE_(BROKEN_NAME, descriptor)
