/* testlib.c - a library (not a plugin) for library_open, one module per TESTLIB_* variant:
 * good, another magic, another ABI major, a newer minor, a descriptor too small, another
 * platform's signature. */
#include "testlib.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

static int add(int a, int b)
{
    return a + b;
}

static const TestLib descriptor = {
    .header =
        {
#ifdef TESTLIB_BAD_MAGIC
            .magic = PB_PLUGIN_MAGIC,
#else
            .magic = TESTLIB_MAGIC,
#endif
#ifdef TESTLIB_BAD_MAJOR
            .abi_major = TESTLIB_ABI_MAJOR + 1,
            .abi_minor = 0,
#elif defined(TESTLIB_NEW_MINOR)
            .abi_major = TESTLIB_ABI_MAJOR,
            .abi_minor = TESTLIB_ABI_MINOR + 1,
#else
            .abi_major = TESTLIB_ABI_MAJOR,
            .abi_minor = TESTLIB_ABI_MINOR,
#endif
#ifdef TESTLIB_SMALL
            .struct_size = sizeof(pb_library_header),
#else
            .struct_size = sizeof(TestLib),
#endif
#ifdef TESTLIB_BAD_SIG
            .build_signature = "plan9-mips-ptr4",
#else
            .build_signature = PB_BUILD_SIGNATURE,
#endif
            .name = STR(TESTLIB_NAME),
            .version = "3.2.1",
        },
    .add = add,
};

#define DEFINE_(m, e, d) PB_LIBRARY_DEFINE(m, e, d)
DEFINE_(TESTLIB_NAME, testlib_entry, descriptor)
