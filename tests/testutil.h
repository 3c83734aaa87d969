/* testutil.h - helpers shared by the in-process tests: temporary directories, a global
 * configuration confined to them, YAML from a format string, and a UDP client that keeps
 * the main loop turning while it waits for the answer. */
#pragma once

#include "config.h"
#include "host.h"
#include "net.h"

#include <glib.h>

/* A fresh directory under the system temp dir; removed by pbt_rmtree. */
char *pbt_tmpdir(void);
void pbt_rmtree(const char *path);

/* Defaults with log_dir, state_dir, pid and socket inside dir, and the plugin path set to
 * the test modules of the build tree plus extra (may be NULL). */
void pbt_global(PbGlobalConfig *g, const char *dir, const char *extra_plugin_dir);

/* The directory holding the test modules (tests/plugins in the build tree). */
const char *pbt_test_modules(void);

/* Parses YAML from a printf format; aborts the test on a parse error. */
PbConfig *pbt_yaml(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* A UDP port that was free a moment ago on 127.0.0.1. */
guint16 pbt_free_udp_port(void);

/* Sends msg to 127.0.0.1:port and returns the first reply, iterating the thread-default
 * main context meanwhile; NULL after timeout_ms. */
char *pbt_udp_exchange(guint16 port, const char *msg, guint timeout_ms);

/* Iterates the main context for ms milliseconds. */
void pbt_spin(guint ms);
