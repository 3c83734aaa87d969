/* log.h - per-instance logs with the legacy semantics: levels 0-4 (a message is written
 * when its level <= the configured level), a file per instance, and a size cap in MB.
 * Where the legacy product deleted a full log, we keep one previous generation
 * (file.1) so the lines that explain a failure survive the rotation that follows it. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct PbLog PbLog;

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
void pb_log_write(PbLog *log, int level, const char *message);
void pb_log_printf(PbLog *log, int level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
void pb_log_vprintf(PbLog *log, int level, const char *fmt, va_list ap) G_GNUC_PRINTF(3, 0);
const char *pb_log_path(const PbLog *log);

/* The name a level has in log lines: CRITICAL, WARNING, NOTICE, INFO, DEBUG (0-4; out of
 * range values are clamped). Lines read "2026-11-24T16:09:13.123Z [ident] LEVEL: message"
 * (UTC); control characters in the message are written as \xNN so that text from the
 * network cannot forge lines. Syslog gets the part after the time stamp, with levels mapped
 * to LOG_CRIT, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG. */
const char *pb_log_level_name(int level);

/* For messages a client can trigger at line rate (a flood of bad packets): TRUE when a
 * message under key may be written, at most per_second per key and second. The number
 * refused is reported, at WARNING, by the first call for that key after the second is
 * over. Keys are copied; quiet ones are forgotten after a while. */
gboolean pb_log_ratelimit(PbLog *log, const char *key, guint per_second);

G_END_DECLS
