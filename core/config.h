/* config.h - the daemon's configuration model: what the YAML and legacy readers produce,
 * and how one instance's raw entries become a validated pb_config against its plugin's
 * parameter table. Nothing here opens sockets or loads modules. */
#pragma once

#include <glib.h>
#include <preboot/plugin.h>

G_BEGIN_DECLS

#define PB_CONFIG_ERROR (pb_config_error_quark())
GQuark pb_config_error_quark(void);

typedef enum {
    PB_CONFIG_ERROR_IO,      /* a file could not be read */
    PB_CONFIG_ERROR_SYNTAX,  /* YAML or legacy syntax */
    PB_CONFIG_ERROR_SCHEMA,  /* wrong shape: a list where a mapping belongs, etc. */
    PB_CONFIG_ERROR_VALUE,   /* a value out of range / not allowed */
    PB_CONFIG_ERROR_UNKNOWN, /* no plugin owns a legacy file; unknown module */
    PB_CONFIG_ERROR_TABLE,   /* a plugin's own parameter table is inconsistent */
} PbConfigError;

typedef enum {
    PB_SOURCE_DEFAULT = 0,
    PB_SOURCE_YAML = 1,
    PB_SOURCE_LEGACY = 2,
} PbSourceKind;

/* Where a value came from; file is NULL for defaults. */
typedef struct {
    PbSourceKind kind;
    char *file;
    guint line;
} PbSource;

/* One key as read, before validation. value is NULL for a legacy key present without a
 * value ("given a default value", as the reference says); list is set instead of value
 * for a YAML sequence. */
typedef struct {
    char *key;
    char *value;
    GStrv list;
    PbSource source;
} PbRawEntry;

void pb_raw_entry_free(PbRawEntry *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbRawEntry, pb_raw_entry_free)

/* One configured plugin instance. module is NULL until resolved when the instance came
 * from a legacy file alone (the owning plugin is found by the file's basename). */
typedef struct {
    char *name;   /* instance name; defaults to the module name */
    char *module; /* module name or full path */
    gboolean enabled;
    GPtrArray *legacy;  /* char*: legacy .conf files included for this instance */
    GPtrArray *entries; /* PbRawEntry*: YAML parameters (applied over legacy ones) */
    PbSource source;    /* where the instance was declared */
} PbInstanceSpec;

void pb_instance_spec_free(PbInstanceSpec *spec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbInstanceSpec, pb_instance_spec_free)

typedef struct {
    GStrv plugin_path; /* directories searched for modules, in order */
    char *log_dir;     /* where relative log files go */
    char *state_dir;   /* per-instance state lives in state_dir/<instance> */
    char *pid_file;
    char *control_socket;
    char *control_group; /* group allowed on the control socket besides root; may be NULL */
    char *user;          /* drop privileges to this user after binding; NULL = stay */
    gboolean syslog;     /* also log to syslog */
    int log_level;       /* the daemon's own log level, 0-4 */
    guint log_size_mb;   /* the daemon's own log cap */
} PbGlobalConfig;

typedef struct {
    char *main_file; /* what -c named */
    PbGlobalConfig global;
    GPtrArray *instances; /* PbInstanceSpec* */
    GPtrArray *warnings;  /* char*: "file:line: message" (unknown keys and such) */
    /* daemon: key -> PbSource*, where its value came from (absent: the default); filled by
     * pb_config_note_global_source() (conf-yaml.h). May be NULL. */
    GHashTable *global_sources;
} PbConfig;

void pb_config_free(PbConfig *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbConfig, pb_config_free)

/* Fills the compiled-in defaults (paths from configure). */
void pb_global_config_init_defaults(PbGlobalConfig *g);

/* Reads what -c names: a YAML file (*.yaml, *.yml), a legacy .conf file, or a directory
 * of legacy .conf files. Legacy files become instances with module == NULL. Errors name
 * file:line. */
PbConfig *pb_config_load(const char *path, GError **error);

/* ---- validated values --------------------------------------------------------------- */

/* One parameter's value after validation. */
typedef struct {
    char *text;    /* normalised text (bools "yes"/"no", ints decimal, paths with '/') */
    gint64 number; /* INT; BOOL as 0/1; ENUM as the index into choices */
    GStrv list;    /* LIST */
    PbSource source;
} PbValue;

/* The struct behind the ABI's opaque pb_config. */
struct pb_config {
    const pb_plugin *plugin;
    guint n;
    PbValue *values; /* aligned with plugin->params (stepped by param_size) */
    char **keys;     /* per value: the key as the file spelled it; NULL for a default */
    char **origins;  /* per value: pb_config_origin()'s text, made when first asked */
};

/* Where value i came from, for messages: strings owned by cfg. */
typedef struct {
    guint kind;       /* pb_origin_kind (= PbSourceKind) */
    const char *file; /* NULL for a default */
    guint line;
    const char *key;  /* as written; the native name for a default */
    const char *text; /* "FILE:LINE: KEY" or "KEY (default)" */
} PbValueOrigin;
void pb_config_origin(struct pb_config *cfg, guint i, PbValueOrigin *out);

/* Parameter n of a descriptor, honouring the plugin's param_size. */
const pb_param *pb_plugin_param(const pb_plugin *plugin, guint n);

/* Checks a plugin's own table: names unique and lower_snake_case, aliases unique, types
 * known, defaults valid for their own type and range. */
gboolean pb_param_table_check(const pb_plugin *plugin, GError **error);

/* Parses and validates one value. origin names it in errors ("file:line: key"). */
gboolean pb_param_parse(const pb_param *p, const char *text, PbSourceKind kind, PbValue *out,
                        GError **error);

/* Builds an instance's configuration: defaults, then every legacy file of the spec (keys
 * matched to legacy aliases, case-insensitively), then the YAML entries (native names or
 * aliases). Unknown keys add "file:line: unknown key" warnings. */
struct pb_config *pb_config_build(const pb_plugin *plugin, const PbInstanceSpec *spec,
                                  GPtrArray *warnings, GError **error);
void pb_config_destroy(struct pb_config *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(pb_config, pb_config_destroy)

/* Index of a parameter by native name, or -1. */
int pb_config_find(const struct pb_config *cfg, const char *name);
/* Whether two configs of the same plugin hold the same value for parameter i. */
gboolean pb_config_value_equal(const struct pb_config *a, const struct pb_config *b, guint i);

/* Writes "name: value  # source" lines for --dump-config. */
void pb_config_dump(const struct pb_config *cfg, GString *out);

/* ---- additions (config helper): helpers for host.c and the readers ------------------ */

/* The validated value of a parameter by native name, or NULL when undeclared. */
const PbValue *pb_config_value(const struct pb_config *cfg, const char *name);
/* Frees what a PbValue holds and zeroes it. */
void pb_value_clear(PbValue *v);
/* Frees what a PbGlobalConfig holds (not g itself); copies one into a zeroed struct. */
void pb_global_config_clear(PbGlobalConfig *g);
void pb_global_config_copy(PbGlobalConfig *dst, const PbGlobalConfig *src);
/* yes/no, true/false, on/off, 1/0 in any case. */
gboolean pb_config_parse_bool(const char *text, gboolean *out);
/* pb_param_parse for a YAML sequence: only PB_PARAM_LIST accepts one. */
gboolean pb_param_parse_list(const pb_param *p, const char *const *items, PbSourceKind kind,
                             PbValue *out, GError **error);
/* A legacy path as this platform spells it: %VAR% expanded from the environment and, off
 * Windows, '\' turned into '/'. NULL (with error) when a variable is not set. */
char *pb_config_legacy_path(const char *text, GError **error);
/* An instance made of one legacy file alone (module NULL, named after the file without
 * ".conf"); where is the line that named it, or NULL for the file itself. */
PbInstanceSpec *pb_instance_spec_new_legacy(const char *path, const PbSource *where);
/* An empty configuration with the compiled-in global defaults. */
PbConfig *pb_config_new(const char *main_file);

G_END_DECLS
