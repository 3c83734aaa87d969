/* pq-conn.h - what every preboot user of PostgreSQL (libpq) shares: the connection string
 * with the password of a password file, one-line error messages, schema migrations under
 * an advisory lock, and queries bounded in time for callers that must not hang (a daemon's
 * main loop). Used by backends/pg (libpreboot-pg) and the policy plugin's shared store.
 * Built only with libpq (ENABLE_PG). */
#pragma once

#include <glib.h>
#include <libpq-fe.h>

G_BEGIN_DECLS

/* db (a libpq keyword/value string, a postgres:// URI or "service=NAME") with the first line
 * of password_file appended as libpq reads it: password='...' (quoted) for a keyword/value
 * string, a password query parameter for a URI. password_file "" or NULL: db as it is. The
 * password is wiped from the buffers that held it; the result holds it: wipe it with
 * pb_pq_conninfo_free(). */
char *pb_pq_conninfo(const char *db, const char *password_file, GError **error);
void pb_pq_conninfo_free(char *conninfo);

/* Checks that libpq can parse conninfo (a configuration error otherwise), without
 * connecting. The message never contains the string itself (it may hold a password). */
gboolean pb_pq_conninfo_check(const char *conninfo, GError **error);

/* libpq's last message of c, on one line (libpq's end with a newline). Valid until the next
 * call on this thread. */
const char *pb_pq_message(PGconn *c);

/* Runs sql (no parameters): TRUE when it succeeded. */
gboolean pb_pq_exec_ok(PGconn *c, const char *sql);

/* Brings the schema to version n_migrations: under pg_advisory_xact_lock(lock_key), creates
 * version_table when missing and runs migrations[have .. n-1] in one transaction. A
 * database newer than n is refused. *version: the version now. FALSE with *why. */
gboolean pb_pq_migrate(PGconn *c, gint64 lock_key, const char *version_table,
                       const char *const *migrations, int n_migrations, int *version, char **why);

/* PQexecParams with a deadline: sends the query and waits for its result at most
 * timeout_ms (the socket polled, never a blocking read). NULL (the reason in *why when why
 * is not NULL) when it could not be sent or the deadline passed (the query is then
 * cancelled): the connection is unusable and the caller must PQfinish() it, reconnecting
 * where it may block (not on a main loop). */
PGresult *pb_pq_exec_timeout(PGconn *c, const char *sql, int n, const char *const *values,
                             guint timeout_ms, char **why);

G_END_DECLS

G_BEGIN_DECLS
/* Takes preboot's own option key out of a keyword/value connection string (libpq refuses
 * keywords it does not know): returns the string without "key=value" and sets *value
 * (unquoted; NULL when absent). A URI, or a string that does not parse, is returned as it
 * is (libpq then says what is wrong with it). A pure function. */
char *pb_pq_take_option(const char *conninfo, const char *key, char **value);
G_END_DECLS
