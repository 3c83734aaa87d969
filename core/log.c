/* log.c - per-instance logs: a level filter, one line per message
 * ("2026-11-24T16:09:13.123Z [tftp] INFO: message", UTC), appended to a file with a size
 * cap that keeps one previous generation, and optionally copied to stderr and syslog. */
#include "log.h"

#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RATE_KEYS_MAX 1024

typedef struct {
    gint64 window_start; /* monotonic, microseconds */
    guint count;         /* messages allowed in this window */
    guint suppressed;    /* messages refused in this window */
} RateSlot;

struct PbLog {
    GMutex lock;
    char *ident;
    char *path;
    int fd;
    int level;
    guint64 max_bytes;
    guint64 size; /* bytes in the current file, as far as we know */
    gboolean to_stderr;
    gboolean to_syslog;
    gboolean rotate_failed; /* reported once until a rotation works again */
    GHashTable *rate;       /* key -> RateSlot */
};

PbLogSeverity pb_log_level_severity(int level)
{
    static const PbLogSeverity map[] = {PB_LOG_SEV_NOTICE, PB_LOG_SEV_WARNING, PB_LOG_SEV_NOTICE,
                                        PB_LOG_SEV_INFO, PB_LOG_SEV_DEBUG};
    return map[CLAMP(level, 0, (int)G_N_ELEMENTS(map) - 1)];
}

const char *pb_log_severity_name(PbLogSeverity sev)
{
    switch (sev) {
    case PB_LOG_SEV_ERROR:
        return "ERROR";
    case PB_LOG_SEV_WARNING:
        return "WARNING";
    case PB_LOG_SEV_NOTICE:
        return "NOTICE";
    case PB_LOG_SEV_INFO:
        return "INFO";
    case PB_LOG_SEV_DEBUG:
        break;
    }
    return sev < PB_LOG_SEV_ERROR ? "ERROR" : "DEBUG";
}

const char *pb_log_level_name(int level)
{
    return pb_log_severity_name(pb_log_level_severity(level));
}

PbLog *pb_log_new(const char *ident)
{
    PbLog *log = g_new0(PbLog, 1);
    g_mutex_init(&log->lock);
    log->ident = g_strdup(ident ? ident : "preboot");
    log->fd = -1;
    log->level = 2; /* the legacy default for every service */
    log->rate = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return log;
}

static void close_file(PbLog *log)
{
    if (log->fd >= 0)
        close(log->fd);
    log->fd = -1;
    log->size = 0;
}

void pb_log_free(PbLog *log)
{
    if (log == NULL)
        return;
    close_file(log);
    g_hash_table_unref(log->rate);
    g_free(log->ident);
    g_free(log->path);
    g_mutex_clear(&log->lock);
    g_free(log);
}

static gboolean open_file(PbLog *log, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(log->path);
    if (g_mkdir_with_parents(dir, 0750) < 0) {
        int err = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err),
                    "log file %s: directory %s: %s", log->path, dir, g_strerror(err));
        return FALSE;
    }
    int fd = open(log->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) {
        int err = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err), "log file %s: %s", log->path,
                    g_strerror(err));
        return FALSE;
    }
    struct stat st;
    log->fd = fd;
    log->size = fstat(fd, &st) == 0 ? (guint64)st.st_size : 0;
    return TRUE;
}

gboolean pb_log_configure(PbLog *log, const char *path, int level, guint64 max_bytes,
                          gboolean to_stderr, gboolean to_syslog, GError **error)
{
    g_return_val_if_fail(log != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    g_mutex_lock(&log->lock);
    close_file(log);
    g_free(log->path);
    log->path = path && *path ? g_strdup(path) : NULL;
    log->level = level;
    log->max_bytes = max_bytes;
    log->to_stderr = to_stderr;
    log->to_syslog = to_syslog;
    if (to_syslog)
        pb_os_syslog_open(g_get_prgname());
    gboolean ok = log->path == NULL || open_file(log, error);
    g_mutex_unlock(&log->lock);
    return ok;
}

gboolean pb_log_enabled(const PbLog *log, int level)
{
    return log != NULL && level <= log->level;
}

const char *pb_log_path(const PbLog *log)
{
    g_return_val_if_fail(log != NULL, NULL);
    return log->path;
}

static void write_all(int fd, const char *buf, gsize len);
static void format_time(GString *line);

/* Said where it is seen: in the file itself (still open), on stderr and in syslog. */
static void rotate_failed(PbLog *log, const char *why)
{
    if (log->rotate_failed)
        return;
    log->rotate_failed = TRUE;
    g_autoptr(GString) line = g_string_new(NULL);
    format_time(line);
    gsize stamp_len = line->len;
    g_string_append_printf(line,
                           "[%s] WARNING: log rotation of %s failed (%s): writing on to the "
                           "same file\n",
                           log->ident, log->path, why);
    write_all(log->fd, line->str, line->len);
    if (log->to_stderr)
        write_all(STDERR_FILENO, line->str, line->len);
    if (log->to_syslog) {
        line->str[line->len - 1] = '\0';
        pb_os_syslog(PB_LOG_SEV_WARNING, line->str + stamp_len);
    }
}

/* Keeps exactly one previous generation: the lines that explain a failure are usually
 * just before the write that filled the file (the legacy service deleted them). The old
 * file stays open until the new one is: a daemon that can no longer create files in the
 * directory (privileges dropped, a full disk) keeps logging, and says so, rather than
 * falling silent for good. */
static void rotate(PbLog *log)
{
    g_autofree char *old = g_strconcat(log->path, ".1", NULL);
    if (rename(log->path, old) < 0) { /* replaces the older .1 atomically */
        rotate_failed(log, g_strerror(errno));
        log->size = 0; /* try again after another max_bytes */
        return;
    }
    int fd = open(log->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) {
        rotate_failed(log, g_strerror(errno));
        log->size = 0; /* the open file is now path.1: keep writing there */
        return;
    }
    close(log->fd);
    log->fd = fd;
    log->size = 0;
    log->rotate_failed = FALSE;
}

/* Client-supplied text (file names, option values) ends up in messages: control
 * characters are escaped so that nobody can forge a log line or a terminal sequence. */
static void append_escaped(GString *line, const char *msg)
{
    for (const guchar *p = (const guchar *)msg; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            if (*p == '\t')
                g_string_append_c(line, ' ');
            else if (*p == '\n' && p[1] == '\0')
                continue; /* a trailing newline is just a habit of printf users */
            else
                g_string_append_printf(line, "\\x%02x", *p);
        } else {
            g_string_append_c(line, (char)*p);
        }
    }
}

static void format_time(GString *line)
{
    gint64 now = g_get_real_time();
    struct tm tm;
    pb_os_gmtime(now / G_USEC_PER_SEC, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    g_string_append_printf(line, "%s.%03dZ ", buf, (int)((now % G_USEC_PER_SEC) / 1000));
}

static void write_all(int fd, const char *buf, gsize len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (gsize)n;
    }
}

/* Called with the lock held. */
static void write_locked(PbLog *log, PbLogSeverity sev, const char *message)
{
    g_autoptr(GString) line = g_string_sized_new(128);
    format_time(line);
    gsize stamp_len = line->len; /* syslog stamps the time itself */
    g_string_append_printf(line, "[%s] %s: ", log->ident, pb_log_severity_name(sev));
    append_escaped(line, message ? message : "");
    g_string_append_c(line, '\n');

    if (log->fd >= 0) {
        if (log->max_bytes > 0 && log->size > 0 && log->size + line->len > log->max_bytes)
            rotate(log);
        if (log->fd >= 0) {
            write_all(log->fd, line->str, line->len);
            log->size += line->len;
        }
    }
    if (log->to_stderr)
        write_all(STDERR_FILENO, line->str, line->len);
    if (log->to_syslog) {
        line->str[line->len - 1] = '\0';
        pb_os_syslog(sev, line->str + stamp_len);
    }
}

void pb_log_write_sev(PbLog *log, int level, PbLogSeverity sev, const char *message)
{
    if (!pb_log_enabled(log, level))
        return;
    g_mutex_lock(&log->lock);
    write_locked(log, sev, message);
    g_mutex_unlock(&log->lock);
}

void pb_log_write(PbLog *log, int level, const char *message)
{
    pb_log_write_sev(log, level, pb_log_level_severity(level), message);
}

void pb_log_printf_sev(PbLog *log, int level, PbLogSeverity sev, const char *fmt, ...)
{
    if (!pb_log_enabled(log, level))
        return;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    pb_log_write_sev(log, level, sev, msg);
}

void pb_log_vprintf(PbLog *log, int level, const char *fmt, va_list ap)
{
    if (!pb_log_enabled(log, level))
        return;
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    pb_log_write(log, level, msg);
}

void pb_log_printf(PbLog *log, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pb_log_vprintf(log, level, fmt, ap);
    va_end(ap);
}

static gboolean slot_stale(gpointer key, gpointer value, gpointer data)
{
    const RateSlot *s = value;
    return s->window_start + 10 * G_USEC_PER_SEC < *(const gint64 *)data;
}

gboolean pb_log_ratelimit(PbLog *log, const char *key, guint per_second)
{
    g_return_val_if_fail(log != NULL && key != NULL, TRUE);

    gint64 now = g_get_monotonic_time();
    g_mutex_lock(&log->lock);
    RateSlot *s = g_hash_table_lookup(log->rate, key);
    if (s == NULL) {
        /* Keys may carry client addresses: forget quiet ones before the table grows. */
        if (g_hash_table_size(log->rate) >= RATE_KEYS_MAX)
            g_hash_table_foreach_remove(log->rate, slot_stale, &now);
        s = g_new0(RateSlot, 1);
        s->window_start = now;
        g_hash_table_insert(log->rate, g_strdup(key), s);
    }
    if (now - s->window_start >= G_USEC_PER_SEC) {
        if (s->suppressed > 0 && log->level >= 1) {
            g_autofree char *msg = g_strdup_printf(
                "%u messages like \"%s\" suppressed (limit %u/s)", s->suppressed, key, per_second);
            write_locked(log, PB_LOG_SEV_WARNING, msg);
        }
        s->window_start = now;
        s->count = 0;
        s->suppressed = 0;
    }
    gboolean ok = s->count < per_second;
    if (ok)
        s->count++;
    else
        s->suppressed++;
    g_mutex_unlock(&log->lock);
    return ok;
}
