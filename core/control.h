/* control.h - the daemon's control channel (what `prebootctl` talks to) and its client.
 *
 * Transport: a local stream socket from core/os.h (a Unix socket, mode 0660, peers checked
 * with SO_PEERCRED on POSIX; see os-win32.c for Windows). One request per connection.
 *
 * Wire protocol:
 *   request = ARG NUL { ARG NUL } NUL
 *             each ARG a non-empty UTF-8 string without NUL; the empty item ends the list.
 *             At most PB_CONTROL_MAX_ARGS arguments and PB_CONTROL_MAX_REQUEST bytes in all.
 *   reply   = ( "OK\n" | "ERR\n" ) TEXT
 *             then the server closes the connection (end of TEXT = end of stream).
 * Example: "status\0\0" -> "OK\nprebootd 0.1.0 running...\n".
 * prebootd's own verbs (prebootd.c): status (ERR, with the same text, when a configured
 * instance is not running), ready ("OK\nready\n", or ERR and one "NAME: STATE: REASON"
 * line per instance that is not running: what prebootctl start waits for), stats, pid,
 * stop, reload, list-plugins; any other verb goes to the plugin that registered it.
 * A request that breaks these rules is answered "ERR\n<reason>\n" without reaching the
 * handler; a peer that is not allowed gets "ERR\npermission denied\n" (and a log line).
 * A connection not done (request read, reply sent) within PB_CONTROL_IDLE_MS is dropped,
 * and beyond PB_CONTROL_MAX_CLIENTS at once new ones are closed unanswered, so that
 * stalled local clients cannot pin the daemon's memory or file descriptors. */
#pragma once

#include "log.h"
#include <glib.h>

G_BEGIN_DECLS

#define PB_CONTROL_MAX_REQUEST (64 * 1024)
#define PB_CONTROL_MAX_ARGS    64
#define PB_CONTROL_MAX_REPLY   (16 * 1024 * 1024) /* what the client accepts */
#define PB_CONTROL_MAX_CLIENTS 16
#define PB_CONTROL_IDLE_MS     10000

/* Runs on the main loop for every well-formed request from an allowed peer; appends the
 * reply text to out and returns TRUE for "OK", FALSE for "ERR". argv[argc] is NULL. */
typedef gboolean (*PbControlHandler)(gpointer data, int argc, const char *const *argv,
                                     GString *out);

typedef struct PbControl PbControl;

/* Listens on path (replacing a stale socket; group may be NULL) and serves requests on
 * the thread-default main context. */
PbControl *pb_control_new(const char *path, const char *group, PbControlHandler fn, gpointer data,
                          GError **error);
/* Where refused peers and malformed requests are reported (default: g_message). The log
 * must outlive the control channel or be unset with NULL. */
void pb_control_set_log(PbControl *c, PbLog *log);
/* Overrides PB_CONTROL_IDLE_MS and PB_CONTROL_MAX_CLIENTS for new connections (tests;
 * 0 keeps a value). */
void pb_control_set_limits(PbControl *c, guint idle_ms, guint max_clients);
/* Sends what replies are still pending (best effort, without blocking), closes every
 * connection and the socket, and unlinks it. */
void pb_control_free(PbControl *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PbControl, pb_control_free)

/* Client side: sends argv, appends the reply text to out and sets *ok to the handler's
 * result (FALSE also for requests the server refused). Returns FALSE with error when no
 * reply came: G_FILE_ERROR_NOENT when no daemon listens, G_FILE_ERROR_AGAIN on timeout,
 * G_FILE_ERROR_FAILED for a broken or malformed reply. */
gboolean pb_control_request(const char *path, int argc, const char *const *argv, guint timeout_ms,
                            GString *out, gboolean *ok, GError **error);

/* The framing, exposed for tests and fuzzing (pure functions). pb_control_encode fails on
 * empty or too many arguments, or a request over the size limit. */
GBytes *pb_control_encode(int argc, const char *const *argv, GError **error);
typedef enum {
    PB_CONTROL_PARSE_OK,
    PB_CONTROL_PARSE_INCOMPLETE, /* no terminator yet: read more */
    PB_CONTROL_PARSE_BAD,        /* *reason says why */
} PbControlParse;
/* On OK, *argv_out is a NULL-terminated vector (g_strfreev) and *consumed the request's
 * length (bytes after it are a framing error for the server). */
PbControlParse pb_control_parse(const guint8 *buf, gsize len, GStrv *argv_out, gsize *consumed,
                                const char **reason);

G_END_DECLS
