/* os.h - everything the daemon needs from the operating system, behind one header.
 * core/os-posix.c implements it for Linux and the BSDs; win32/os-win32.c for Windows.
 * Protocol and core code call these and carry no #ifdef of their own. */
#pragma once

#include <glib.h>
#include <preboot/plugin.h>
#include <time.h>

G_BEGIN_DECLS

/* Detaches from the terminal (fork, setsid, stdio to /dev/null). The parent exits only
 * once the child called pb_os_daemon_ready(), with the child's exit status if it failed
 * before that, so `prebootd` returns non-zero when start-up fails. */
gboolean pb_os_daemonize(GError **error);
void pb_os_daemon_ready(gboolean ok);

gboolean pb_os_pidfile_write(const char *path, GError **error);
void pb_os_pidfile_remove(const char *path);
/* The pid recorded in path, or 0 when absent or stale (no such process). */
gint64 pb_os_pidfile_read(const char *path);
gboolean pb_os_process_alive(gint64 pid);
/* Sends the "stop" request to a process (SIGTERM / service stop). */
gboolean pb_os_process_terminate(gint64 pid, GError **error);

/* setgid/setuid to user after the sockets are bound; no-op when user is NULL/empty. The
 * paths registered with pb_os_keep_writable() are given to user first. */
gboolean pb_os_drop_privileges(const char *user, GError **error);
/* Registers a path the daemon still writes after pb_os_drop_privileges(): a directory it
 * creates and removes files in (the log, state and run directories) or an instance's state
 * directory. The drop makes it owned by the user and the user's group, and with contents
 * the files and directories in it too (recursively, never following a symbolic link).
 * A directory is given away only when it is the daemon's own: it did not exist before
 * this start (created is TRUE), it already belongs to the user, or its name is "preboot";
 * a shared one (/run, /var/log) keeps its owner and only the daemon's files in it are
 * given away. No-op on Windows, where the service account is chosen by the SCM. */
void pb_os_keep_writable(const char *path, gboolean created, gboolean contents);
/* TRUE when the process runs with every privilege (uid 0 on POSIX). */
gboolean pb_os_is_superuser(void);
/* The name of user's primary group (newly allocated), or NULL when there is no such user
 * (or on Windows). */
char *pb_os_user_group(const char *user);
/* Whether prebootd could drop to user and use group for the control socket, as a start
 * would: FALSE with the reason when not (no such user or group; Windows cannot drop). */
gboolean pb_os_check_user(const char *user, GError **error);
gboolean pb_os_check_group(const char *group, GError **error);
/* Raises the soft limit on open descriptors to the hard limit, so that the daemon can hold
 * what its configured maxima need (a TFTP transfer is a socket and a file). Returns the
 * limit in effect, or 0 when there is none to speak of (Windows). */
guint64 pb_os_raise_fd_limit(void);

typedef enum { PB_OS_SIGNAL_TERMINATE, PB_OS_SIGNAL_RELOAD } PbOsSignal;
/* Calls fn on the main loop when the signal arrives (SIGTERM/SIGINT, SIGHUP). */
guint pb_os_signal_watch(PbOsSignal which, GSourceFunc fn, gpointer data);

/* The control channel: a local stream socket that only root and members of group may
 * use (a Unix socket with mode 0660 and SO_PEERCRED on POSIX). */
pb_socket_t pb_os_control_listen(const char *path, const char *group, GError **error);
/* A connection waiting on a listening control socket (non-blocking, close-on-exec), or
 * PB_SOCKET_NONE with errno set (EAGAIN when none is queued). */
pb_socket_t pb_os_control_accept(pb_socket_t listener);
/* Connects to a daemon's control socket; the socket returned is non-blocking. When no
 * daemon listens, the error is G_FILE_ERROR_NOENT. */
pb_socket_t pb_os_control_connect(const char *path, GError **error);
gboolean pb_os_control_peer_allowed(pb_socket_t sock, const char *group);
void pb_os_control_unlink(const char *path);

/* A GSource for a socket handle (an fd source on POSIX, a Winsock event on Windows).
 * Its callback, set with g_source_set_callback((GSourceFunc)fn, ...), has the type
 * PbOsSocketFunc; return FALSE to remove the source. */
typedef gboolean (*PbOsSocketFunc)(pb_socket_t sock, GIOCondition cond, gpointer data);
GSource *pb_os_socket_source_new(pb_socket_t sock, GIOCondition cond);
void pb_os_socket_close(pb_socket_t sock);
/* recv/send: bytes moved, 0 at end of stream (read), or -1 with errno (EAGAIN). */
gssize pb_os_socket_read(pb_socket_t sock, void *buf, gsize len);
gssize pb_os_socket_write(pb_socket_t sock, const void *buf, gsize len);

/* Module file extension for messages (".so", ".dll"). */
const char *pb_os_module_ext(void);

/* The system log: opened once with the program's name; severity is syslog's (RFC 5424:
 * 3 err, 4 warning, 5 notice, 6 info, 7 debug). No-ops on Windows, where the service
 * wrapper reports to the event log. */
void pb_os_syslog_open(const char *ident);
void pb_os_syslog(int severity, const char *line);

/* UTC broken-down time of a Unix time (gmtime_r / gmtime_s). */
void pb_os_gmtime(gint64 secs, struct tm *tm);

/* How a character of a legacy `dir\file` path is spelled on this platform: Windows keeps
 * the backslash, everywhere else it becomes '/'. */
char pb_os_legacy_path_char(char c);

/* mkdir -p with mode; TRUE if it exists afterwards. */
gboolean pb_os_mkdir_p(const char *path, int mode, GError **error);

G_END_DECLS
