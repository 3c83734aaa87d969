/* test-pq-conn.c - lib/pq's pure parts: preboot's own option taken out of a libpq
 * connection string, and the password file added to it. */
#include "pq-conn.h"

#include <glib/gstdio.h>

static void take(const char *in, const char *want_rest, const char *want_value)
{
    char *value = NULL;
    g_autofree char *rest = pb_pq_take_option(in, "preboot_referral", &value);
    g_assert_cmpstr(rest, ==, want_rest);
    g_assert_cmpstr(value, ==, want_value);
    g_free(value);
}

static void test_take_option(void)
{
    take("host=/run/pg dbname=preboot", "host=/run/pg dbname=preboot", NULL);
    take("host=/run/pg preboot_referral=yes dbname=x", "host=/run/pg dbname=x", "yes");
    take("preboot_referral = 'yes'  host = db", "host = db", "yes");
    take("password='a b\\'c' preboot_referral=no", "password='a b\\'c'", "no");
    take("service=preboot preboot_referral=yes", "service=preboot", "yes");
    /* URIs and what does not parse stay as they are: libpq reports them */
    take("postgres://db/preboot?preboot_referral=yes", "postgres://db/preboot?preboot_referral=yes",
         NULL);
    take("host=db password='unterminated", "host=db password='unterminated", NULL);
    take("no-equals here", "no-equals here", NULL);
    take("", "", NULL);
}

static void test_conninfo_password(void)
{
    g_autofree char *dir = g_dir_make_tmp("pq-conn-XXXXXX", NULL);
    g_autofree char *pf = g_build_filename(dir, "pw", NULL);
    g_assert_true(g_file_set_contents(pf, "it's\\secret\nsecond line\n", -1, NULL));
    g_autoptr(GError) e = NULL;
    char *c = pb_pq_conninfo("host=db", pf, &e);
    g_assert_no_error(e);
    g_assert_cmpstr(c, ==, "host=db password='it\\'s\\\\secret'");
    pb_pq_conninfo_free(c);
    c = pb_pq_conninfo("postgres://db/x", pf, &e);
    g_assert_no_error(e);
    g_assert_true(g_str_has_prefix(c, "postgres://db/x?password=it"));
    pb_pq_conninfo_free(c);
    c = pb_pq_conninfo("host=db", "", &e);
    g_assert_cmpstr(c, ==, "host=db");
    pb_pq_conninfo_free(c);
    g_assert_null(pb_pq_conninfo("host=db", "/nonexistent/pw", &e));
    g_assert_nonnull(e);
    g_clear_error(&e);
    g_assert_false(pb_pq_conninfo_check("host='unterminated", &e));
    g_assert_nonnull(e);
    g_unlink(pf);
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/pq/take-option", test_take_option);
    g_test_add_func("/pq/conninfo-password", test_conninfo_password);
    return g_test_run();
}
