/* conf-legacy.h - the reader of the legacy ZENworks Preboot Services .conf files
 * (novell-tftp.conf, novell-proxydhcp.conf, ...). A pure function: text in, raw entries out;
 * no file I/O, no globals, so it can be fuzzed as it is. See preboot-legacy.conf(5). */
#pragma once

#include "config.h"
#include <glib.h>

G_BEGIN_DECLS

/* Parses one legacy file. Returns PbRawEntry* in file order (source = {PB_SOURCE_LEGACY,
 * filename, line}); a key present without a value has value NULL ("use the default").
 * A key given twice keeps only its last occurrence. filename is used as given in messages
 * ("novell-tftp.conf:3: expected 'Key = value', got '...'"). */
GPtrArray *pb_legacy_parse(const char *text, gsize len, const char *filename, GError **error);

/* The same, adding "file:line: ..." warnings (char*, e.g. duplicated keys) to warnings
 * when it is not NULL. */
GPtrArray *pb_legacy_parse_full(const char *text, gsize len, const char *filename,
                                GPtrArray *warnings, GError **error);

G_END_DECLS
