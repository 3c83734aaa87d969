/* preboot/plugin.h - the whole contract between prebootd and its plugins.
 *
 * A plugin includes this header and nothing else of preboot's. It exports exactly one
 * symbol, defined with PB_PLUGIN_DEFINE(), that returns a pb_plugin descriptor. Everything
 * the plugin needs from the daemon (logging, the event loop, its configuration, statistics,
 * the service registry, control commands) arrives through the pb_host table handed to
 * create(); a plugin never links against symbols of the daemon. That is what lets the same
 * plugin source build as an ELF module, a Windows DLL, or a dlpreopened static object.
 *
 * ABI changelog (newest first; see doc/plugin-abi.md for the full rules)
 *   1.1  2026-12-07  Services that come and go: service_watch/service_unwatch (appeared /
 *                    withdrawn, with a generation number per publication); descriptor
 *                    fields provides/requires/wants (the host starts instances in
 *                    dependency order, stops them in reverse, and is "ready" only when
 *                    every configured instance runs); config_origin (where a value came
 *                    from, for start-up errors); library_open/library_close (a LIBRARY_NAME
 *                    backend through the plugin loader's checks); PB_HAS_FIELD(),
 *                    pb_config_where() and PB_LIBRARY_DEFINE() (source only). 1.0
 *                    plugins load unchanged. check(): a configuration checked as
 *                    create() would check it, with no side effects, for
 *                    `prebootd --check-config` (descriptor, after wants).
 *   1.0  2026-12-05  (source only, no ABI change) PB_LOG_PARAMS for the log parameters.
 *   1.0  2026-11-24  First stable ABI: descriptor, parameter table, staged reload, host
 *                    services (log, loop, config, counters, registry, control commands).
 *
 * Versioning rules (GStreamer/SQLite style, not lighttpd's exact match):
 *   - magic must equal PB_PLUGIN_MAGIC; anything else is not a preboot plugin.
 *   - abi_major must equal the host's; a change of major is a break.
 *   - the plugin's abi_minor may not exceed the host's (it could call services the host
 *     lacks); an older minor is always accepted.
 *   - every struct that crosses the boundary starts with, or carries, its struct_size, and
 *     a reader touches only what that size covers. New fields are appended at the end of
 *     a struct, with a minor bump. Fields are never reordered, retyped or removed.
 *   - a NULL callback means "not supported" and the host falls back (documented per field).
 *   - build_signature names OS, CPU and pointer size; a plugin built for another platform
 *     is refused with a message naming both signatures.
 *
 * Threading: every callback runs on the daemon's main loop thread. A plugin that runs
 * threads of its own must hop back through host->defer() before calling any other service.
 */
#ifndef PREBOOT_PLUGIN_H
#define PREBOOT_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PB_PLUGIN_MAGIC 0x50425047u /* "PBPG" */
#define PB_ABI_MAJOR    1
#define PB_ABI_MINOR    1

/* ---- platform glue ------------------------------------------------------------------ */

#if defined(_WIN32) || defined(__CYGWIN__)
#define PB_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define PB_EXPORT __attribute__((visibility("default")))
#else
#define PB_EXPORT
#endif

#if defined(__GNUC__) && defined(_WIN32)
/* the host formats with glib (its own printf: %zu, %lld), not the msvcrt one that gcc's
 * "printf" checks against on Windows */
#define PB_PRINTF(fmt, args) __attribute__((format(gnu_printf, fmt, args)))
#elif defined(__GNUC__)
#define PB_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PB_PRINTF(fmt, args)
#endif

#if defined(_WIN32)
#define PB_BUILD_OS "windows"
#elif defined(__linux__)
#define PB_BUILD_OS "linux"
#elif defined(__APPLE__)
#define PB_BUILD_OS "darwin"
#elif defined(__FreeBSD__)
#define PB_BUILD_OS "freebsd"
#else
#define PB_BUILD_OS "unix"
#endif

#if defined(__x86_64__) || defined(_M_X64)
#define PB_BUILD_CPU "x86_64"
#elif defined(__i386__) || defined(_M_IX86)
#define PB_BUILD_CPU "i386"
#elif defined(__aarch64__) || defined(_M_ARM64)
#define PB_BUILD_CPU "aarch64"
#elif defined(__arm__)
#define PB_BUILD_CPU "arm"
#elif defined(__riscv)
#define PB_BUILD_CPU "riscv"
#elif defined(__powerpc64__)
#define PB_BUILD_CPU "ppc64"
#elif defined(__s390x__)
#define PB_BUILD_CPU "s390x"
#else
#define PB_BUILD_CPU "unknown"
#endif

#define PB_STR_(x) #x
#define PB_STR(x)  PB_STR_(x)
#if defined(__SIZEOF_POINTER__)
#define PB_BUILD_PTR PB_STR(__SIZEOF_POINTER__)
#elif defined(_WIN64)
#define PB_BUILD_PTR "8"
#else
#define PB_BUILD_PTR "4"
#endif

/* e.g. "linux-x86_64-ptr8"; compared as a string by the host. */
#define PB_BUILD_SIGNATURE PB_BUILD_OS "-" PB_BUILD_CPU "-ptr" PB_BUILD_PTR

/* Whether a struct that starts with (or carries) its struct_size holds field F, as the
 * code that BUILT it was compiled: a reader touches a field only when this is true.
 * Use it for every struct that crosses a boundary, host tables and descriptors included:
 *     if (PB_HAS_FIELD(pb_host, host, service_watch) && host->service_watch != NULL) ... */
#define PB_HAS_FIELD(type, ptr, field) \
    ((ptr) != NULL &&                  \
     (size_t)(ptr)->struct_size >= offsetof(type, field) + sizeof(((const type *)0)->field))

/* A socket handle wide enough for a Windows SOCKET; -1 is "none". */
typedef intptr_t pb_socket_t;
#define PB_SOCKET_NONE ((pb_socket_t)-1)

/* ---- opaque host objects ------------------------------------------------------------ */

typedef struct pb_instance pb_instance;           /* one configured plugin instance */
typedef struct pb_config pb_config;               /* its validated configuration */
typedef struct pb_err pb_err;                     /* where a callback reports why it failed */
typedef struct pb_status pb_status;               /* where status() writes */
typedef struct pb_reply pb_reply;                 /* where a control command writes */
typedef struct pb_watch pb_watch;                 /* a socket watch */
typedef struct pb_timer pb_timer;                 /* a timer */
typedef struct pb_counter pb_counter;             /* a named statistics counter */
typedef struct pb_service_watch pb_service_watch; /* a watch on a named service (1.1) */
typedef struct pb_library pb_library;             /* an open LIBRARY_NAME module (1.1) */

/* ---- the parameter table ------------------------------------------------------------ */

/* A plugin declares each parameter once; the host parses and validates YAML and legacy
 * .conf input against that declaration, fills defaults, reports file:line errors, and
 * renders the table in --dump-config and the man pages. */
typedef enum pb_param_type {
    PB_PARAM_STRING = 1,  /* any text */
    PB_PARAM_INT = 2,     /* 64-bit integer within [min, max] */
    PB_PARAM_BOOL = 3,    /* yes/no, true/false, on/off, 1/0 (any case) */
    PB_PARAM_ENUM = 4,    /* one of choices[] (case-insensitive; stored as listed) */
    PB_PARAM_PATH = 5,    /* a file system path; legacy `dir\file` spellings accepted */
    PB_PARAM_ADDRESS = 6, /* an IPv4 or IPv6 literal, or empty for "detect" */
    PB_PARAM_LIST = 7,    /* a list of strings: a YAML sequence, or comma-separated */
} pb_param_type;

enum pb_param_flags {
    PB_PARAM_F_RESTART = 1u << 0,    /* a change takes effect only on restart */
    PB_PARAM_F_REQUIRED = 1u << 1,   /* must be given; no default */
    PB_PARAM_F_DEPRECATED = 1u << 2, /* accepted, but warns with help as the reason */
    PB_PARAM_F_EMPTY_OK = 1u << 3,   /* an empty value is valid (e.g. "detect address") */
};

/* Roles let the host act on a plugin's own parameter names: the legacy product names
 * the same setting TFTPLogLevel, ProxyLogLevel, PolicyLogLevel... */
typedef enum pb_param_role {
    PB_ROLE_NONE = 0,
    PB_ROLE_LOG_LEVEL = 1,  /* INT 0-4: the instance's log level */
    PB_ROLE_LOG_FILE = 2,   /* PATH: the instance's log file; relative to log_dir */
    PB_ROLE_LOG_SIZE = 3,   /* INT: size cap in MB; 0 = unlimited */
    PB_ROLE_LOG_ENABLE = 4, /* BOOL: whether the log file is written at all */
} pb_param_role;

typedef struct pb_param {
    const char *name;           /* native (YAML) name: lower_snake_case */
    const char *legacy;         /* legacy .conf alias (e.g. "TFTPDirectory"), or NULL */
    uint32_t type;              /* pb_param_type */
    uint32_t flags;             /* pb_param_flags */
    uint32_t role;              /* pb_param_role */
    const char *def;            /* default as text; NULL = unset (empty) */
    int64_t min, max;           /* PB_PARAM_INT range, inclusive */
    const char *const *choices; /* PB_PARAM_ENUM: NULL-terminated */
    const char *unit;           /* "s", "MB", "bytes"... for docs; may be NULL */
    const char *help;           /* one or two sentences */
} pb_param;

/* The three log parameters of a service, as the legacy product has them for each one
 * (TFTPLogLevel, TFTPLogFile, TFTPLogFileSize; NULL where there is no legacy name): level
 * 0-4 (default 2; level_help says what each level shows for this service), a file under
 * the daemon's log directory (empty: named after the instance), and a size in MB past
 * which the file is restarted. Put it inside a pb_param table:
 *
 *     PB_LOG_PARAMS("TFTPLogLevel", "TFTPLogFile", "TFTPLogFileSize", "novell-tftp.log",
 *                   "0 critical, 1 failed transfers, ..."),
 *
 * A source convenience only: the table it expands to is what a plugin could write by hand. */
/* clang-format off */
#define PB_LOG_PARAMS(legacy_level, legacy_file, legacy_size, default_file, level_help)     \
    {.name = "log_level", .legacy = (legacy_level), .type = PB_PARAM_INT,                 \
     .role = PB_ROLE_LOG_LEVEL, .def = "2", .min = 0, .max = 4, .help = (level_help)},    \
    {.name = "log_file", .legacy = (legacy_file), .type = PB_PARAM_PATH,                  \
     .flags = PB_PARAM_F_EMPTY_OK, .role = PB_ROLE_LOG_FILE, .def = (default_file),       \
     .help = "Log file, relative to the daemon's log directory; empty: INSTANCE.log."},   \
    {.name = "log_file_size", .legacy = (legacy_size), .type = PB_PARAM_INT,              \
     .role = PB_ROLE_LOG_SIZE, .def = "15", .min = 0, .max = 4096, .unit = "MB",          \
     .help = "When the log grows past this it is deleted and restarted; 0: no limit."}
/* clang-format on */

/* ---- the host services table -------------------------------------------------------- */

enum pb_io_events {
    PB_IO_IN = 1u << 0,
    PB_IO_OUT = 1u << 2,
    PB_IO_ERR = 1u << 3,
    PB_IO_HUP = 1u << 4,
};

enum pb_log_level {
    PB_LOG_CRITICAL = 0,    /* start, stop, critical events */
    PB_LOG_WARNING = 1,     /* warnings, failed transactions */
    PB_LOG_TRANSACTION = 2, /* completed client transactions */
    PB_LOG_REQUEST = 3,     /* every request, and why one was ignored */
    PB_LOG_DEBUG = 4,       /* packets, decoded */
};

/* Return true to keep the watch or timer, false to remove it. */
typedef bool (*pb_io_fn)(void *data, pb_socket_t sock, unsigned events);
typedef bool (*pb_timer_fn)(void *data);
typedef void (*pb_defer_fn)(void *data);
/* argv[0] is the verb; write output with host->reply(); return false on failure. */
typedef bool (*pb_command_fn)(void *self, int argc, const char *const *argv, pb_reply *reply);

/* ABI 1.1: service watches (see service_watch). */
enum pb_service_event {
    PB_SERVICE_APPEARED = 1,
    PB_SERVICE_WITHDRAWN = 2,
};
typedef void (*pb_service_fn)(void *data, unsigned event, const char *name, uint32_t version,
                              const void *iface, uint64_t generation);

/* ABI 1.1: where a configuration value came from (see config_origin). */
enum pb_origin_kind {
    PB_ORIGIN_DEFAULT = 0, /* not configured: the parameter's default */
    PB_ORIGIN_YAML = 1,
    PB_ORIGIN_LEGACY = 2,
};
typedef struct pb_value_origin {
    uint32_t struct_size; /* set by the caller: sizeof(pb_value_origin) of its build */
    uint32_t kind;        /* pb_origin_kind */
    const char *file;     /* NULL for a default */
    uint32_t line;        /* 0 when not known */
    const char *key;      /* the key as the file spells it (legacy: its alias) */
    const char *text;     /* "FILE:LINE: KEY", or "KEY (default)": a message prefix */
} pb_value_origin;

/* ABI 1.1: libraries opened with library_open(). Their descriptor starts with this
 * header, laid out like the start of pb_plugin; the rest is the library kind's own. */
typedef struct pb_library_header {
    uint32_t magic; /* the kind's magic, not PB_PLUGIN_MAGIC */
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t struct_size;        /* sizeof(the whole descriptor) of the library's build */
    const char *build_signature; /* PB_BUILD_SIGNATURE */
    const char *name;
    const char *version;
} pb_library_header;

/* What the caller of library_open() expects. */
typedef struct pb_library_spec {
    uint32_t struct_size; /* sizeof(pb_library_spec) */
    uint32_t magic;
    uint16_t abi_major;       /* must be equal */
    uint16_t abi_minor;       /* the library's may not be higher */
    uint32_t min_struct_size; /* the smallest descriptor the caller can read */
    const char *entry_symbol; /* exported as NAME_LTX_<entry_symbol> (PB_LIBRARY_DEFINE) */
    const char *kind;         /* for messages: "imaging backend" */
} pb_library_spec;
typedef const void *(*pb_library_entry_fn)(void);

typedef struct pb_host {
    uint32_t struct_size; /* sizeof(pb_host) of the host's build */
    uint16_t abi_major;
    uint16_t abi_minor;

    /* Logging, honouring the instance's level, file, size cap and syslog settings. */
    void (*log)(pb_instance *inst, int level, const char *fmt, ...) PB_PRINTF(3, 4);
    void (*logv)(pb_instance *inst, int level, const char *fmt, va_list ap);
    /* True when a message at level would be written: skip expensive formatting if not. */
    bool (*log_enabled)(pb_instance *inst, int level);

    /* Failure reports from callbacks; the host shows them in logs and `status`. */
    void (*error)(pb_err *err, const char *fmt, ...) PB_PRINTF(2, 3);

    /* Configuration: validated values by native name. Strings are never NULL ("" when
     * unset); asking for an undeclared name returns ""/0/false and logs a bug. */
    const char *(*config_string)(const pb_config *cfg, const char *name);
    int64_t (*config_int)(const pb_config *cfg, const char *name);
    bool (*config_bool)(const pb_config *cfg, const char *name);
    /* PB_PARAM_LIST: number of items; *items is valid as long as cfg. */
    size_t (*config_list)(const pb_config *cfg, const char *name, const char *const **items);

    /* The event loop. Watches and timers belong to the instance: the host removes any
     * left over when the instance stops. */
    pb_watch *(*watch_socket)(pb_instance *inst, pb_socket_t sock, unsigned events, pb_io_fn fn,
                              void *data);
    void (*watch_remove)(pb_watch *watch);
    pb_timer *(*timer_add)(pb_instance *inst, uint32_t interval_ms, pb_timer_fn fn, void *data);
    void (*timer_remove)(pb_timer *timer);
    /* Runs fn once from the main loop soon; safe to call from any thread. */
    void (*defer)(pb_instance *inst, pb_defer_fn fn, void *data);
    uint64_t (*monotonic_us)(void);

    /* Statistics: named counters shown by `prebootctl stats`, reset when the daemon
     * restarts. The same name returns the same counter. */
    pb_counter *(*counter)(pb_instance *inst, const char *name);
    void (*counter_add)(pb_counter *counter, int64_t delta);
    void (*counter_set)(pb_counter *counter, int64_t value);

    /* Service registry: a plugin publishes a named, versioned interface (a struct that
     * starts with its own uint32_t struct_size) and others look it up. A lookup returns
     * the highest published version >= min_version, or NULL. The pointer is valid while
     * the publisher runs; consumers look up per use rather than caching across returns
     * to the main loop (lookups are a hash probe), or keep it only between a watch's
     * APPEARED and WITHDRAWN (1.1, service_watch). Published services are withdrawn
     * automatically when the publishing instance stops (before its stop() runs). */
    bool (*service_publish)(pb_instance *inst, const char *name, uint32_t version,
                            const void *iface, pb_err *err);
    const void *(*service_lookup)(pb_instance *inst, const char *name, uint32_t min_version,
                                  uint32_t *version_out);
    void (*service_withdraw)(pb_instance *inst, const char *name);

    /* Control commands: `prebootctl VERB args...` reaches fn when no core verb matches.
     * Verbs are global; a second registration of the same verb fails. */
    bool (*command_register)(pb_instance *inst, const char *verb, const char *usage,
                             pb_command_fn fn, pb_err *err);
    void (*reply)(pb_reply *reply, const char *fmt, ...) PB_PRINTF(2, 3);

    /* Status output for `prebootctl status`: free text and key/value pairs. */
    void (*status_text)(pb_status *st, const char *fmt, ...) PB_PRINTF(2, 3);
    void (*status_kv)(pb_status *st, const char *key, const char *fmt, ...) PB_PRINTF(3, 4);

    /* Identity and places. state_dir is writable and private to the instance. */
    const char *(*instance_name)(pb_instance *inst);
    const char *(*state_dir)(pb_instance *inst);

    /* ---- ABI 1.1 (test with PB_HAS_FIELD(pb_host, host, FIELD) before use) ---------- */

    /* Watches a service: fn runs with PB_SERVICE_APPEARED for the publication that
     * service_lookup(name, min_version) would return, at once from service_watch() when
     * one is there already, and again whenever that changes (a provider starts, restarts
     * or publishes a higher version); with PB_SERVICE_WITHDRAWN when it goes. Every
     * publication has its own generation (host-wide, never 0, never reused), so a
     * restarted provider is a new generation even at the same address: never compare
     * iface pointers. During WITHDRAWN the iface is still valid (the host withdraws an
     * instance's services before calling its stop()): the last moment to unregister
     * from it. Callbacks run on the main loop, synchronously inside the publish or
     * withdraw that caused them; fn may call any service, unwatch included. Watches
     * belong to the instance and are removed when it stops. NULL only on bad
     * arguments. */
    pb_service_watch *(*service_watch)(pb_instance *inst, const char *name, uint32_t min_version,
                                       pb_service_fn fn, void *data);
    void (*service_unwatch)(pb_service_watch *watch);

    /* Where a configuration value came from: fills out (its struct_size set by the
     * caller) with the YAML file and line and the key as written, or the legacy file,
     * line and legacy key name, or "default". out->text is all of it as one message
     * prefix ("/etc/preboot.yaml:12: root"); strings live as long as cfg. False for an
     * undeclared name. */
    bool (*config_origin)(const pb_config *cfg, const char *name, pb_value_origin *out);

    /* Opens a LIBRARY_NAME module (an imaging backend...) through the plugin loader: the
     * same search path (name) or file (path), then the checks spec asks for: magic,
     * ABI major equal, minor not above the caller's, struct_size at least
     * min_struct_size, build signature, and the one entry symbol (NAME_LTX_symbol first).
     * Returns the library's descriptor (a struct starting with pb_library_header) and
     * sets *lib to the handle for library_close(); NULL with err naming both sides
     * ("built for ABI 2.0, this caller speaks 1.3") otherwise. Libraries still open when
     * the instance stops are closed by the host. */
    const void *(*library_open)(pb_instance *inst, const pb_library_spec *spec,
                                const char *name_or_path, pb_library **lib, pb_err *err);
    void (*library_close)(pb_library *lib);
} pb_host;

/* Where a value came from, as a message prefix: "/etc/preboot.yaml:12: root",
 * "/etc/opt/novell/novell-tftp.conf:3: TFTPDirectory" or "root (default)"; the bare name
 * from a host older than 1.1. For start-up errors about a configured value:
 *     host->error(err, "%s: %s", pb_config_where(host, cfg, "root"), why);
 * A source convenience over config_origin. */
static inline const char *pb_config_where(const pb_host *host, const pb_config *cfg,
                                          const char *name)
{
    pb_value_origin o = {sizeof(pb_value_origin), 0, NULL, 0, NULL, NULL};
    if (PB_HAS_FIELD(pb_host, host, config_origin) && host->config_origin != NULL &&
        host->config_origin(cfg, name, &o) && o.text != NULL)
        return o.text;
    return name;
}

/* ---- the plugin descriptor ---------------------------------------------------------- */

typedef struct pb_plugin {
    uint32_t magic; /* PB_PLUGIN_MAGIC */
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t struct_size;        /* sizeof(pb_plugin) of the plugin's build */
    const char *build_signature; /* PB_BUILD_SIGNATURE */

    const char *name;        /* module name, e.g. "tftp" */
    const char *version;     /* the plugin's own version */
    const char *description; /* one line */

    const pb_param *params; /* the parameter table */
    uint32_t n_params;
    uint32_t param_size; /* sizeof(pb_param) of the plugin's build */
    /* Basenames of legacy .conf files this plugin owns ("novell-tftp.conf"), NULL-
     * terminated; keys in those files resolve against this plugin's aliases. May be NULL. */
    const char *const *legacy_files;

    /* Builds an instance from a validated configuration. May open sockets, but must not
     * serve before start(). Returns the plugin's own state, or NULL with err set. */
    void *(*create)(const pb_host *host, pb_instance *inst, const pb_config *cfg, pb_err *err);
    /* Starts serving. NULL: create() already started it. */
    bool (*start)(void *self, pb_err *err);
    /* Staged reload. prepare() checks and builds a new configuration with no side effects
     * and returns it as an opaque object; commit() switches to it and cannot fail; abort()
     * frees it when another instance's prepare failed. NULL prepare: the host stops,
     * destroys and re-creates the instance when its configuration changed. */
    void *(*reload_prepare)(void *self, const pb_config *cfg, pb_err *err);
    void (*reload_commit)(void *self, void *staged);
    void (*reload_abort)(void *self, void *staged);
    /* Reports state for `prebootctl status`. May be NULL. */
    void (*status)(void *self, pb_status *st);
    /* Stops serving: closes sockets, cancels transfers. May be NULL. */
    void (*stop)(void *self);
    /* Frees self. Required. */
    void (*destroy)(void *self);

    /* ---- ABI 1.1 (the host reads these only when struct_size covers them) ----------- */

    /* Services, by name, as NULL-terminated lists (each may be NULL). The host starts
     * the instances that provide a service before those that require or want it, stops
     * them in the reverse order, and fails an instance whose required service no
     * running instance provides ("wants": used when configured, not needed). */
    const char *const *provides;
    const char *const *requires;
    const char *const *wants;

    /* Checks cfg as create() would (a directory that must exist, values that only make
     * sense together), with no side effects: no sockets, no files written, no state.
     * `prebootd --check-config` calls it for every instance, so that a start's refusals are
     * known before the start. May be NULL: the parameter table's checks are all there is. */
    bool (*check)(const pb_host *host, const pb_config *cfg, pb_err *err);
} pb_plugin;

/* The one exported entry point: libltdl looks for NAME_LTX_preboot_plugin_entry first
 * (NAME = the module's file name), which keeps dlpreopened builds free of clashes. */
typedef const pb_plugin *(*pb_plugin_entry_fn)(void);
#define PB_PLUGIN_ENTRY_SYMBOL "preboot_plugin_entry"

#define PB_PLUGIN_DEFINE(modname, descriptor)                            \
    PB_EXPORT const pb_plugin *modname##_LTX_preboot_plugin_entry(void); \
    PB_EXPORT const pb_plugin *modname##_LTX_preboot_plugin_entry(void)  \
    {                                                                    \
        return &(descriptor);                                            \
    }

/* The one exported entry point of a library for library_open(): entry is the caller's
 * spec.entry_symbol, descriptor a struct starting with pb_library_header. */
#define PB_LIBRARY_DEFINE(modname, entry, descriptor)  \
    PB_EXPORT const void *modname##_LTX_##entry(void); \
    PB_EXPORT const void *modname##_LTX_##entry(void)  \
    {                                                  \
        return &(descriptor);                          \
    }

/* Fills the fixed header of a descriptor. */
#define PB_PLUGIN_HEADER                                                            \
    .magic = PB_PLUGIN_MAGIC, .abi_major = PB_ABI_MAJOR, .abi_minor = PB_ABI_MINOR, \
    .struct_size = sizeof(pb_plugin), .build_signature = PB_BUILD_SIGNATURE

#define PB_PARAMS(table)                                               \
    .params = (table), .n_params = sizeof(table) / sizeof((table)[0]), \
    .param_size = sizeof(pb_param)

#ifdef __cplusplus
}
#endif

#endif /* PREBOOT_PLUGIN_H */
