/* pq-conn.c - see pq-conn.h. */
#include "pq-conn.h"

#include <string.h>

void pb_pq_conninfo_free(char *conninfo)
{
    if (conninfo == NULL)
        return;
    memset(conninfo, 0, strlen(conninfo)); /* it may hold a password */
    g_free(conninfo);
}

char *pb_pq_conninfo(const char *db, const char *password_file, GError **error)
{
    if (db == NULL)
        db = "";
    if (password_file == NULL || *password_file == '\0')
        return g_strdup(db);
    char *text = NULL;
    gsize len = 0;
    if (!g_file_get_contents(password_file, &text, &len, error))
        return NULL;
    text[strcspn(text, "\r\n")] = '\0';
    GString *c = g_string_new(db);
    if (g_str_has_prefix(db, "postgres://") || g_str_has_prefix(db, "postgresql://")) {
        char *esc = g_uri_escape_string(text, NULL, FALSE);
        g_string_append_printf(c, "%cpassword=%s", strchr(db, '?') ? '&' : '?', esc);
        memset(esc, 0, strlen(esc));
        g_free(esc);
    } else {
        g_string_append(c, " password='");
        for (const char *q = text; *q; q++) {
            if (*q == '\'' || *q == '\\')
                g_string_append_c(c, '\\');
            g_string_append_c(c, *q);
        }
        g_string_append_c(c, '\'');
    }
    memset(text, 0, len);
    g_free(text);
    return g_string_free(c, FALSE);
}

gboolean pb_pq_conninfo_check(const char *conninfo, GError **error)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (opts == NULL) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "database: %s",
                    perr ? g_strstrip(perr) : "out of memory");
        PQfreemem(perr);
        return FALSE;
    }
    PQconninfoFree(opts);
    return TRUE;
}

const char *pb_pq_message(PGconn *c)
{
    static GPrivate buf = G_PRIVATE_INIT(g_free);
    char *m = g_strdup(c ? PQerrorMessage(c) : "no connection");
    g_strdelimit(m, "\r\n", ' ');
    g_strstrip(m);
    if (*m == '\0') {
        g_free(m);
        m = g_strdup(c && PQstatus(c) != CONNECTION_OK ? "connection lost" : "unknown error");
    }
    g_private_replace(&buf, m);
    return m;
}

gboolean pb_pq_exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    PQclear(r);
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

gboolean pb_pq_migrate(PGconn *c, gint64 lock_key, const char *version_table,
                       const char *const *migrations, int n_migrations, int *version, char **why)
{
    char *sql = g_strdup_printf("SELECT pg_advisory_xact_lock(%" G_GINT64_FORMAT ")", lock_key);
    gboolean ok = pb_pq_exec_ok(c, "SET client_min_messages = warning") &&
                  pb_pq_exec_ok(c, "BEGIN") && pb_pq_exec_ok(c, sql);
    g_free(sql);
    if (ok) {
        sql = g_strdup_printf("CREATE TABLE IF NOT EXISTS %s (version integer NOT NULL)",
                              version_table);
        ok = pb_pq_exec_ok(c, sql);
        g_free(sql);
    }
    int have = 0;
    if (ok) {
        sql = g_strdup_printf("SELECT coalesce(max(version), 0) FROM %s", version_table);
        PGresult *r = PQexec(c, sql);
        g_free(sql);
        ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        if (ok)
            have = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    if (ok && have > n_migrations) {
        *why = g_strdup_printf("the database's schema (%s) is version %d, newer than this "
                               "server's %d",
                               version_table, have, n_migrations);
        pb_pq_exec_ok(c, "ROLLBACK");
        return FALSE;
    }
    for (int v = have + 1; ok && v <= n_migrations; v++) {
        sql = g_strdup_printf("DELETE FROM %s; INSERT INTO %s VALUES (%d)", version_table,
                              version_table, v);
        ok = pb_pq_exec_ok(c, migrations[v - 1]) && pb_pq_exec_ok(c, sql);
        g_free(sql);
    }
    if (ok)
        ok = pb_pq_exec_ok(c, "COMMIT");
    if (!ok) {
        *why = g_strdup(pb_pq_message(c));
        pb_pq_exec_ok(c, "ROLLBACK");
        return FALSE;
    }
    if (version != NULL)
        *version = MAX(have, n_migrations);
    return TRUE;
}

PGresult *pb_pq_exec_timeout(PGconn *c, const char *sql, int n, const char *const *values,
                             guint timeout_ms, char **why)
{
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        if (why != NULL)
            *why = g_strdup(pb_pq_message(c));
        return NULL;
    }
    if (!PQsendQueryParams(c, sql, n, NULL, values, NULL, NULL, 0)) {
        if (why != NULL)
            *why = g_strdup(pb_pq_message(c));
        return NULL;
    }
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    PGresult *last = NULL;
    for (;;) {
        while (!PQisBusy(c)) {
            PGresult *r = PQgetResult(c);
            if (r == NULL)
                return last; /* every result read: the last one is the answer */
            PQclear(last);
            last = r;
        }
        gint64 left = deadline - g_get_monotonic_time();
        GPollFD fd = {.fd = PQsocket(c), .events = G_IO_IN | G_IO_ERR | G_IO_HUP};
        if (left <= 0 || fd.fd < 0 || g_poll(&fd, 1, (gint)MAX(left / 1000, 1)) < 0)
            break;
        if (fd.revents != 0 && !PQconsumeInput(c))
            break; /* the server went away: PQisBusy is then false and the error result
                    * follows, but a dead socket may also say nothing more */
        if (fd.revents == 0 && g_get_monotonic_time() >= deadline)
            break;
    }
    /* The deadline passed, or the connection broke: a server that answers nothing (stopped,
     * or a network gone) must not keep the caller. The connection is not reusable now. */
    if (why != NULL)
        *why = PQstatus(c) == CONNECTION_OK
                   ? g_strdup_printf("no answer from the database within %u ms", timeout_ms)
                   : g_strdup(pb_pq_message(c));
    PGcancel *cancel = PQgetCancel(c);
    if (cancel != NULL) {
        char errbuf[256];
        PQcancel(cancel, errbuf, sizeof(errbuf));
        PQfreeCancel(cancel);
    }
    PQclear(last);
    return NULL;
}

/* libpq's keyword/value syntax: key = value, value either 'single quoted' or up to the next
 * space, a backslash escaping the next character in both. */
char *pb_pq_take_option(const char *conninfo, const char *key, char **value)
{
    *value = NULL;
    if (conninfo == NULL)
        return g_strdup("");
    if (g_str_has_prefix(conninfo, "postgres://") || g_str_has_prefix(conninfo, "postgresql://"))
        return g_strdup(conninfo);
    GString *out = g_string_new(NULL);
    const char *p = conninfo;
    char *found = NULL;
    for (;;) {
        while (g_ascii_isspace(*p))
            p++;
        if (*p == '\0')
            break;
        const char *start = p;
        while (g_ascii_isalnum(*p) || *p == '_' || *p == '.')
            p++;
        gsize klen = (gsize)(p - start);
        while (g_ascii_isspace(*p))
            p++;
        if (klen == 0 || *p != '=')
            goto unparsed;
        p++;
        while (g_ascii_isspace(*p))
            p++;
        GString *v = g_string_new(NULL);
        if (*p == '\'') {
            p++;
            while (*p != '\0' && *p != '\'') {
                if (*p == '\\' && p[1] != '\0')
                    p++;
                g_string_append_c(v, *p++);
            }
            if (*p != '\'') {
                g_string_free(v, TRUE);
                goto unparsed;
            }
            p++;
        } else {
            while (*p != '\0' && !g_ascii_isspace(*p)) {
                if (*p == '\\' && p[1] != '\0')
                    p++;
                g_string_append_c(v, *p++);
            }
        }
        if (klen == strlen(key) && strncmp(start, key, klen) == 0) {
            g_free(found);
            found = g_string_free(v, FALSE);
        } else {
            g_string_free(v, TRUE);
            if (out->len > 0)
                g_string_append_c(out, ' ');
            g_string_append_len(out, start, p - start);
        }
    }
    *value = found;
    return g_string_free(out, FALSE);
unparsed:
    g_free(found);
    g_string_free(out, TRUE);
    return g_strdup(conninfo);
}
