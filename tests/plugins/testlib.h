/* testlib.h - the descriptor of the test library kind that library_open is tested with
 * (tests/plugins/testlib.c), as a real LIBRARY_NAME backend kind would define its own. */
#pragma once

#include <preboot/plugin.h>

#define TESTLIB_MAGIC     0x544c4942u /* "TLIB" */
#define TESTLIB_ABI_MAJOR 3
#define TESTLIB_ABI_MINOR 2
#define TESTLIB_ENTRY     "testlib_entry"

typedef struct {
    pb_library_header header;
    int (*add)(int a, int b);
} TestLib;
