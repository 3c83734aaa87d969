/* test-policy-remote.c - PrebootServer's pure part: the imaging server's work answer read
 * into policy work (every action, every refusal) and put into a decision of the rules. The
 * network side (answer, deadline, fallback) is tests/policy-remote.sh against the daemon. */
#include "policy-remote.h"

#include <string.h>

static gboolean parse(const char *json, PolicyRemoteAnswer *a)
{
    g_autoptr(GError) e = NULL;
    gboolean ok = policy_remote_parse(json, strlen(json), a, &e);
    g_assert_true(ok == (e == NULL));
    return ok;
}

static void test_parse(void)
{
    PolicyRemoteAnswer a;
    g_assert_true(parse("{\"action\":\"restore\",\"image\":\"win11-lab\",\"work_id\":\"w7\"}", &a));
    g_assert_true(a.answered);
    g_assert_cmpuint(a.work, ==, PB_POLICY_WORK_RESTORE);
    g_assert_cmpstr(a.work_arg, ==, "win11-lab");
    g_assert_cmpstr(a.work_id, ==, "w7");
    g_assert_true(parse("{\"action\":\"capture\",\"image\":\"golden\"}", &a));
    g_assert_cmpuint(a.work, ==, PB_POLICY_WORK_CAPTURE);
    g_assert_true(parse("{\"action\":\"session\",\"session\":\"room-4\"}", &a));
    g_assert_cmpuint(a.work, ==, PB_POLICY_WORK_MULTICAST);
    g_assert_cmpstr(a.work_arg, ==, "room-4");
    g_assert_true(parse("{\"action\":\"none\"}", &a));
    g_assert_cmpuint(a.work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_cmpstr(a.work_arg, ==, "");
    g_assert_true(parse("{\"action\":\"maintenance\",\"image\":\"x\"}", &a));
    g_assert_cmpuint(a.work, ==, PB_POLICY_WORK_LOCAL);

    static const char *const bad[] = {
        "",
        "[]",
        "{}",
        "{\"action\":1}",
        "{\"action\":\"format-disk\"}",
        "{\"action\":\"restore\"}",
        "{\"action\":\"restore\",\"image\":\"\"}",
        "{\"action\":\"restore\",\"image\":\".hidden\"}",
        /* a name that would be a command in the iPXE script */
        "{\"action\":\"restore\",\"image\":\"x\\nshell\"}",
        "{\"action\":\"restore\",\"image\":\"a b\"}",
        "{\"action\":\"session\",\"image\":\"x\"}",
        "{\"action\":\"restore\",\"image\":\"x\"} trailing",
    };
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        if (parse(bad[i], &a))
            g_error("accepted: %s", bad[i]);
        g_assert_false(a.answered);
    }
}

static void test_apply(void)
{
    pb_policy_decision d = {.struct_size = sizeof(d),
                            .action = PB_POLICY_IGNORE,
                            .work = PB_POLICY_WORK_PROGRAM,
                            .flags = PB_POLICY_F_ONCE | PB_POLICY_F_KNOWN};
    g_strlcpy(d.work_arg, "lab.efi", sizeof(d.work_arg));
    g_strlcpy(d.boot_file, "ipxe.efi", sizeof(d.boot_file));
    PolicyRemoteAnswer none = {0};
    policy_remote_apply(&none, "192.0.2.1:8080", &d); /* no answer: the rules' decision */
    g_assert_cmpuint(d.work, ==, PB_POLICY_WORK_PROGRAM);
    PolicyRemoteAnswer a;
    const char *json = "{\"action\":\"restore\",\"image\":\"img\"}";
    g_assert_true(policy_remote_parse(json, strlen(json), &a, NULL));
    policy_remote_apply(&a, "192.0.2.1:8080", &d);
    g_assert_cmpuint(d.action, ==, PB_POLICY_BOOT);
    g_assert_cmpuint(d.work, ==, PB_POLICY_WORK_RESTORE);
    g_assert_cmpstr(d.work_arg, ==, "img");
    g_assert_cmpstr(d.boot_file, ==, "ipxe.efi"); /* the rules' boot program stays */
    g_assert_cmpuint(d.flags, ==, PB_POLICY_F_KNOWN);
    g_assert_cmpstr(d.rule, ==, "PrebootServer 192.0.2.1:8080");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/policy/remote/parse", test_parse);
    g_test_add_func("/policy/remote/apply", test_apply);
    return g_test_run();
}
