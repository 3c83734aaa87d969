/* policy-store-pg-none.c - a build without libpq: a policy database is a configuration
 * error, said at start (policy-shared.h). */
#include "policy-shared.h"
#include "policy-store.h"

void policy_shared_snapshot_free(PolicySharedSnapshot *snap)
{
    if (snap == NULL)
        return;
    g_clear_pointer(&snap->assign, g_hash_table_destroy);
    g_clear_pointer(&snap->once, g_hash_table_destroy);
    g_free(snap);
}

PolicyShared *policy_shared_pg_open(const char *conninfo, PolicySharedLogFn log, void *log_data,
                                    GError **error)
{
    (void)conninfo;
    (void)log;
    (void)log_data;
    g_set_error(error, POLICY_STORE_ERROR, POLICY_STORE_ERROR_UNAVAILABLE,
                "this build has no PostgreSQL support (libpq): the policy database cannot be "
                "used");
    return NULL;
}

char *policy_store_conninfo(const char *db, const char *password_file, GError **error)
{
    (void)password_file;
    return g_strdup(db);
}

void policy_store_conninfo_free(char *conninfo)
{
    g_free(conninfo);
}
