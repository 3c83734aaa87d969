/* log.h - per-instance logs with the legacy semantics: levels 0-4 (a message is written
 * when its level <= the configured level), a file per instance, and a size cap in MB.
 * The level only filters; what a line and syslog call the message is its severity
 * (syslog's), so that "started" at the always-shown level 0 reads NOTICE, not CRITICAL.
 * Where the legacy product deleted a full log, we keep one previous generation
 * (file.1) so the lines that explain a failure survive the rotation that follows it. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct PbLog PbLog;

/* Syslog's severities (RFC 5424 numbers, the same as LOG_ERR...LOG_DEBUG). */
typedef enum {
    PB_LOG_SEV_ERROR = 3,
    PB_LOG_SEV_WARNING = 4,
    PB_LOG_SEV_NOTICE = 5,
    PB_LOG_SEV_INFO = 6,
    PB_LOG_SEV_DEBUG = 7,
} PbLogSeverity;

/* ident names the source in stderr and syslog lines ("tftp", "prebootd"). */
PbLog *pb_log_new(const char *ident);
void pb_log_free(PbLog *log);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbLog, pb_log_free)

/* path NULL: no file. max_bytes 0: no cap. Reopens the file (use after rotation by an
 * outside tool, or on reload). Returns FALSE, with the log still usable on stderr/syslog,
 * when the file cannot be opened. */
gboolean pb_log_configure(PbLog *log, const char *path, int level, guint64 max_bytes,
                          gboolean to_stderr, gboolean to_syslog, GError **error);
gboolean pb_log_enabled(const PbLog *log, int level);
/* A message at a legacy level, with that level's usual severity (pb_log_level_severity). */
void pb_log_write(PbLog *log, int level, const char *message);
void pb_log_printf(PbLog *log, int level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
void pb_log_vprintf(PbLog *log, int level, const char *fmt, va_list ap) G_GNUC_PRINTF(3, 0);
/* The same with the severity given: an error the administrator must see at any level is
 * (PB_LOG_CRITICAL, PB_LOG_SEV_ERROR). */
void pb_log_write_sev(PbLog *log, int level, PbLogSeverity sev, const char *message);
void pb_log_printf_sev(PbLog *log, int level, PbLogSeverity sev, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);
const char *pb_log_path(const PbLog *log);

/* The severity a message at a legacy level has unless its writer says otherwise: level 0
 * (start, stop, reload: the plugin ABI's PB_LOG_CRITICAL) NOTICE, 1 WARNING, 2 NOTICE,
 * 3 INFO, 4 DEBUG (out of range levels are clamped). */
PbLogSeverity pb_log_level_severity(int level);
/* ERROR, WARNING, NOTICE, INFO, DEBUG. Lines read
 * "2026-11-24T16:09:13.123Z [ident] SEVERITY: message" (UTC); control characters in the
 * message are written as \xNN so that text from the network cannot forge lines. Syslog
 * gets the part after the time stamp, at that severity. */
const char *pb_log_severity_name(PbLogSeverity sev);
/* The name of a level's usual severity. */
const char *pb_log_level_name(int level);

/* For messages a client can trigger at line rate (a flood of bad packets): TRUE when a
 * message under key may be written, at most per_second per key and second. The number
 * refused is reported, at WARNING, by the first call for that key after the second is
 * over. Keys are copied; quiet ones are forgotten after a while. */
gboolean pb_log_ratelimit(PbLog *log, const char *key, guint per_second);

G_END_DECLS
