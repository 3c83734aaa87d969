/* test-policy-shared.c - the policy store and engine with state shared by several servers
 * (policy-shared.h), through a fake shared state in memory standing for the database and the
 * other servers: another server's assignment seen after a snapshot and used up once; work
 * another server used first (TAKEN) and work while the database is away (UNAVAILABLE)
 * withheld, the device booting its disk; a rule's one-shot work another server did; a
 * snapshot older than this server's own write ignored. The real database is
 * tests/test-policy-pg.sh's. */
#include "policy-engine.h"
#include "policy-shared.h"

#include <glib/gstdio.h>
#include <string.h>

static const char rules_yaml[] = "rules:\n"
                                 "  - name: lab\n"
                                 "    match: {mac: {starts_with: '52:54:00:aa'}}\n"
                                 "    work: program lab.efi once\n"
                                 "default:\n"
                                 "  menu: never\n";

/* The database and the other servers, as this server's store sees them. */
typedef struct {
    PolicyShared base;
    gint64 version;
    GHashTable *assign; /* key -> work */
    GHashTable *once;   /* "key\nwhat" */
    gboolean down;
    PolicySharedSnapshot *pending;
    guint closed;
} Fake;

static gboolean fake_up(Fake *f, GError **error)
{
    if (f->down)
        g_set_error(error, POLICY_STORE_ERROR, POLICY_STORE_ERROR_UNAVAILABLE,
                    "policy database unavailable (test): nothing changed");
    return !f->down;
}

static gint64 fake_assign(PolicyShared *sh, const char *key, const char *work, gint64 now,
                          GError **error)
{
    Fake *f = (Fake *)sh;
    (void)now;
    if (!fake_up(f, error))
        return -1;
    g_hash_table_replace(f->assign, g_strdup(key), g_strdup(work));
    return ++f->version;
}

static gint64 fake_unassign(PolicyShared *sh, const char *key, GError **error)
{
    Fake *f = (Fake *)sh;
    if (!fake_up(f, error))
        return -1;
    g_hash_table_remove(f->assign, key);
    return ++f->version;
}

static gint64 fake_consume(PolicyShared *sh, const char *key, const char *work, GError **error)
{
    Fake *f = (Fake *)sh;
    if (!fake_up(f, error))
        return -1;
    const char *have = g_hash_table_lookup(f->assign, key);
    if (have == NULL || strcmp(have, work) != 0) {
        g_set_error(error, POLICY_STORE_ERROR, POLICY_STORE_ERROR_TAKEN, "taken (test)");
        return -1;
    }
    g_hash_table_remove(f->assign, key);
    return ++f->version;
}

static gint64 fake_mark_once(PolicyShared *sh, const char *key, const char *what, gint64 now,
                             GError **error)
{
    Fake *f = (Fake *)sh;
    (void)now;
    if (!fake_up(f, error))
        return -1;
    if (!g_hash_table_add(f->once, g_strconcat(key, "\n", what, NULL))) {
        g_set_error(error, POLICY_STORE_ERROR, POLICY_STORE_ERROR_TAKEN, "taken (test)");
        return -1;
    }
    return ++f->version;
}

static gint64 fake_clear_once(PolicyShared *sh, const char *key, GError **error)
{
    Fake *f = (Fake *)sh;
    if (!fake_up(f, error))
        return -1;
    (void)key;
    return ++f->version;
}

static PolicySharedSnapshot *fake_take(PolicyShared *sh)
{
    Fake *f = (Fake *)sh;
    return g_steal_pointer(&f->pending);
}

static void fake_close(PolicyShared *sh)
{
    ((Fake *)sh)->closed++;
}

static const PolicySharedOps fake_ops = {
    .name = "fake",
    .assign = fake_assign,
    .unassign = fake_unassign,
    .consume = fake_consume,
    .mark_once = fake_mark_once,
    .clear_once = fake_clear_once,
    .take = fake_take,
    .close = fake_close,
};

/* What the poller would hand over now (version: as read, possibly older). */
static void publish(Fake *f, gint64 version)
{
    PolicySharedSnapshot *s = g_new0(PolicySharedSnapshot, 1);
    s->version = version;
    s->assign = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    s->once = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, f->assign);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_hash_table_replace(s->assign, g_strdup(k), g_strdup(v));
    g_hash_table_iter_init(&it, f->once);
    while (g_hash_table_iter_next(&it, &k, NULL))
        g_hash_table_add(s->once, g_strdup(k));
    policy_shared_snapshot_free(f->pending);
    f->pending = s;
}

typedef struct {
    char *dir;
    PolicyRules *rules;
    PolicyStore *store;
    PolicyEngine e;
    Fake fake;
} Fx;

static void fx_setup(Fx *x, gconstpointer data)
{
    (void)data;
    g_autoptr(GError) error = NULL;
    x->dir = g_dir_make_tmp("policy-shared-XXXXXX", &error);
    g_assert_no_error(error);
    g_autofree char *db = g_build_filename(x->dir, "policy.db", NULL);
    x->rules = policy_rules_parse(rules_yaml, strlen(rules_yaml), "t.yaml", &error);
    g_assert_no_error(error);
    x->store = policy_store_open(db, &error);
    g_assert_no_error(error);
    x->fake.base.ops = &fake_ops;
    x->fake.version = 1;
    x->fake.assign = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    x->fake.once = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    policy_store_attach_shared(x->store, &x->fake.base);
    x->e.rules = x->rules;
    x->e.store = x->store;
}

static void fx_teardown(Fx *x, gconstpointer data)
{
    (void)data;
    policy_store_close(x->store);
    g_assert_cmpuint(x->fake.closed, ==, 1);
    policy_shared_snapshot_free(x->fake.pending);
    g_hash_table_destroy(x->fake.assign);
    g_hash_table_destroy(x->fake.once);
    policy_rules_free(x->rules);
    g_autofree char *db = g_build_filename(x->dir, "policy.db", NULL);
    g_autofree char *wal = g_strconcat(db, "-wal", NULL);
    g_autofree char *shm = g_strconcat(db, "-shm", NULL);
    g_unlink(db);
    g_unlink(wal);
    g_unlink(shm);
    g_rmdir(x->dir);
    g_free(x->dir);
}

static guint32 decide(Fx *x, const char *mac, gboolean consume, gboolean *ok, char **why_out)
{
    PolicyDevice d;
    policy_device_init(&d);
    g_strlcpy(d.mac, mac, sizeof(d.mac));
    pb_policy_decision out = {.struct_size = sizeof(out)};
    g_autoptr(GString) why = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    gboolean r = policy_engine_decide(&x->e, &d, consume ? PB_POLICY_REQ_CONSUME : 0, 1000, &out,
                                      why, &error);
    if (ok != NULL)
        *ok = r;
    if (why_out != NULL)
        *why_out = g_strdup(why->str);
    policy_device_clear(&d);
    return out.work;
}

static void test_other_servers_assignment(Fx *x, gconstpointer data)
{
    (void)data;
    /* assigned through another server: unknown here until a snapshot says so */
    g_hash_table_replace(x->fake.assign, g_strdup("mac:52:54:00:bb:00:01"),
                         g_strdup("program tool.efi once"));
    x->fake.version++;
    g_assert_cmpuint(decide(x, "52:54:00:bb:00:01", FALSE, NULL, NULL), ==, PB_POLICY_WORK_LOCAL);
    publish(&x->fake, x->fake.version);
    g_assert_cmpuint(decide(x, "52:54:00:bb:00:01", TRUE, NULL, NULL), ==, PB_POLICY_WORK_PROGRAM);
    g_assert_false(g_hash_table_contains(x->fake.assign, "mac:52:54:00:bb:00:01"));
    g_assert_cmpuint(policy_store_assignment_count(x->store), ==, 0);
    g_assert_cmpuint(decide(x, "52:54:00:bb:00:01", TRUE, NULL, NULL), ==, PB_POLICY_WORK_LOCAL);
}

static void test_taken_elsewhere(Fx *x, gconstpointer data)
{
    (void)data;
    PolicyWork w = {0};
    g_assert_true(policy_work_parse("program tool.efi once", &w, NULL));
    g_assert_true(policy_store_assign(x->store, "mac:52:54:00:bb:00:02", &w, 1, NULL));
    policy_work_clear(&w);
    /* another server uses it up before this one hears of it */
    g_hash_table_remove(x->fake.assign, "mac:52:54:00:bb:00:02");
    x->fake.version++;
    gboolean ok = FALSE;
    g_autofree char *why = NULL;
    g_assert_cmpuint(decide(x, "52:54:00:bb:00:02", TRUE, &ok, &why), ==, PB_POLICY_WORK_LOCAL);
    g_assert_true(ok); /* not a failure: the work went where it should */
    g_assert_nonnull(strstr(why, "work withheld"));
    /* the snapshot of that version drops it here too */
    publish(&x->fake, x->fake.version);
    policy_store_sync(x->store);
    g_assert_cmpuint(policy_store_assignment_count(x->store), ==, 0);
}

static void test_database_away(Fx *x, gconstpointer data)
{
    (void)data;
    PolicyWork w = {0};
    g_assert_true(policy_work_parse("program tool.efi once", &w, NULL));
    g_assert_true(policy_store_assign(x->store, "mac:52:54:00:bb:00:03", &w, 1, NULL));
    x->fake.down = TRUE;
    g_autoptr(GError) error = NULL;
    g_assert_false(policy_store_assign(x->store, "mac:52:54:00:bb:00:04", &w, 1, &error));
    g_assert_error(error, POLICY_STORE_ERROR, POLICY_STORE_ERROR_UNAVAILABLE);
    g_assert_cmpuint(policy_store_assignment_count(x->store), ==, 1);
    gboolean ok = TRUE;
    g_assert_cmpuint(decide(x, "52:54:00:bb:00:03", TRUE, &ok, NULL), ==, PB_POLICY_WORK_LOCAL);
    g_assert_false(ok); /* reported: the plugin logs it */
    g_assert_cmpuint(policy_store_assignment_count(x->store), ==, 1); /* still assigned */
    /* decisions that need no shared write go on */
    g_assert_cmpuint(decide(x, "52:54:00:aa:00:09", FALSE, &ok, NULL), ==, PB_POLICY_WORK_PROGRAM);
    g_assert_true(ok);
    x->fake.down = FALSE;
    g_assert_cmpuint(decide(x, "52:54:00:bb:00:03", TRUE, &ok, NULL), ==, PB_POLICY_WORK_PROGRAM);
    g_assert_true(ok);
    policy_work_clear(&w);
}

static void test_rule_once_elsewhere(Fx *x, gconstpointer data)
{
    (void)data;
    /* this server knows the device */
    g_assert_cmpuint(decide(x, "52:54:00:aa:00:01", FALSE, NULL, NULL), ==, PB_POLICY_WORK_PROGRAM);
    PolicyDevice d;
    policy_device_init(&d);
    g_strlcpy(d.mac, "52:54:00:aa:00:01", sizeof(d.mac));
    g_assert_true(policy_store_record_boot(x->store, &d, 1, NULL, NULL, NULL));
    policy_device_clear(&d);
    /* another server did the rule's one-shot work for it */
    g_hash_table_add(x->fake.once, g_strdup("mac:52:54:00:aa:00:01\nlab: program lab.efi once"));
    publish(&x->fake, ++x->fake.version);
    g_assert_cmpuint(decide(x, "52:54:00:aa:00:01", TRUE, NULL, NULL), ==, PB_POLICY_WORK_LOCAL);
    /* one not known to have done it here, but marked by another server first: TAKEN */
    decide(x, "52:54:00:aa:00:02", FALSE, NULL, NULL);
    policy_device_init(&d);
    g_strlcpy(d.mac, "52:54:00:aa:00:02", sizeof(d.mac));
    g_assert_true(policy_store_record_boot(x->store, &d, 1, NULL, NULL, NULL));
    policy_device_clear(&d);
    g_hash_table_add(x->fake.once, g_strdup("mac:52:54:00:aa:00:02\nlab: program lab.efi once"));
    g_assert_cmpuint(decide(x, "52:54:00:aa:00:02", TRUE, NULL, NULL), ==, PB_POLICY_WORK_LOCAL);
}

static void test_stale_snapshot(Fx *x, gconstpointer data)
{
    (void)data;
    gint64 before = x->fake.version;
    publish(&x->fake, before); /* read before the write below */
    PolicyWork w = {0};
    g_assert_true(policy_work_parse("program tool.efi", &w, NULL));
    g_assert_true(policy_store_assign(x->store, "mac:52:54:00:bb:00:05", &w, 1, NULL));
    policy_work_clear(&w);
    policy_store_sync(x->store); /* the older snapshot must not undo the assignment */
    g_assert_cmpuint(policy_store_assignment_count(x->store), ==, 1);
    publish(&x->fake, x->fake.version);
    policy_store_sync(x->store);
    g_assert_cmpuint(policy_store_assignment_count(x->store), ==, 1);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/policy/shared/other-servers-assignment", Fx, NULL, fx_setup,
               test_other_servers_assignment, fx_teardown);
    g_test_add("/policy/shared/taken-elsewhere", Fx, NULL, fx_setup, test_taken_elsewhere,
               fx_teardown);
    g_test_add("/policy/shared/database-away", Fx, NULL, fx_setup, test_database_away, fx_teardown);
    g_test_add("/policy/shared/rule-once-elsewhere", Fx, NULL, fx_setup, test_rule_once_elsewhere,
               fx_teardown);
    g_test_add("/policy/shared/stale-snapshot", Fx, NULL, fx_setup, test_stale_snapshot,
               fx_teardown);
    return g_test_run();
}
