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

G_END_DECLS
