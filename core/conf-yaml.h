/* conf-yaml.h - the reader of preboot.yaml (see preboot.yaml(5)). A pure function: text
 * in, PbConfig out; it opens no files (legacy files and directories it names are read
 * later, by pb_config_load() and pb_config_build()), so it can be fuzzed as it is. */
#pragma once

#include "config.h"
#include <glib.h>

G_BEGIN_DECLS

/* Parses one preboot.yaml. filename names it in messages ("preboot.yaml:7: ...") and is
 * the base for relative legacy paths. Global settings start from
 * pb_global_config_init_defaults(); unknown keys become cfg->warnings. */
PbConfig *pb_yaml_parse(const char *text, gsize len, const char *filename, GError **error);

/* Records where the daemon: key's value came from: file and line, or line 0 for a whole
 * source such as "command line". */
void pb_config_note_global_source(PbConfig *cfg, const char *key, const char *file, guint line);

/* The daemon: section as YAML, each value with its source ("# preboot.yaml:9", "# default",
 * "# command line"); optional keys that are unset are shown as comments, never as "key: ". */
void pb_config_dump_global(const PbConfig *cfg, GString *out);

G_END_DECLS
