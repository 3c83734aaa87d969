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

G_END_DECLS
