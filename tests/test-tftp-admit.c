/* test-tftp-admit.c - the admission decision (tftp-admit.c) and the temporary-name rule
 * (tftp_path_is_temporary), pure functions, case by case. */
#include "tftp-admit.h"
#include "tftp-path.h"

static const TftpAdmitRules rules = {
    .max_transfers = 10, .max_per_client = 3, .allow_writes = FALSE};

static TftpAdmitVerdict admit(const TftpAdmitRules *r, gboolean upload, TftpMode mode,
                              const char *name, guint active, guint mine, TftpAdmission *ad,
                              char *path)
{
    TftpAdmitRequest rq = {.upload = upload,
                           .mode = mode,
                           .filename = name,
                           .active = active,
                           .active_from_client = mine};
    return tftp_admit(r, &rq, path, 256, ad);
}

static void test_ok(void)
{
    char path[256];
    TftpAdmission ad;
    g_assert_cmpint(admit(&rules, FALSE, TFTP_MODE_OCTET, "./boot//pxelinux.0", 0, 0, &ad, path),
                    ==, TFTP_ADMIT_OK);
    g_assert_cmpstr(path, ==, "boot/pxelinux.0");
    g_assert_cmpint(ad.verdict, ==, TFTP_ADMIT_OK);
    /* one below each limit is fine */
    g_assert_cmpint(admit(&rules, FALSE, TFTP_MODE_NETASCII, "a", 9, 2, &ad, path), ==,
                    TFTP_ADMIT_OK);
}

static void test_per_client_limit(void)
{
    char path[256];
    TftpAdmission ad;
    g_assert_cmpint(admit(&rules, FALSE, TFTP_MODE_OCTET, "a", 3, 3, &ad, path), ==,
                    TFTP_ADMIT_CLIENT_LIMIT);
    g_assert_cmpint(ad.code, ==, TFTP_ERR_UNDEFINED);
    g_assert_nonnull(ad.msg);
    g_assert_cmpstr(ad.why, ==, "per-client transfer limit");
    /* another client, with the server as busy, is served */
    g_assert_cmpint(admit(&rules, FALSE, TFTP_MODE_OCTET, "a", 3, 0, &ad, path), ==, TFTP_ADMIT_OK);
    /* 0: no per-client limit */
    TftpAdmitRules open = rules;
    open.max_per_client = 0;
    g_assert_cmpint(admit(&open, FALSE, TFTP_MODE_OCTET, "a", 9, 9, &ad, path), ==, TFTP_ADMIT_OK);
    /* the total comes first */
    g_assert_cmpint(admit(&rules, FALSE, TFTP_MODE_OCTET, "a", 10, 3, &ad, path), ==,
                    TFTP_ADMIT_BUSY);
    g_assert_cmpstr(ad.msg, ==, "Server busy");
}

static void test_names_and_modes(void)
{
    char path[256];
    TftpAdmission ad;
    g_assert_cmpint(admit(&rules, FALSE, TFTP_MODE_MAIL, "a", 0, 0, &ad, path), ==,
                    TFTP_ADMIT_MAIL_MODE);
    g_assert_cmpint(ad.code, ==, TFTP_ERR_ILLEGAL_OP);
    g_assert_cmpint(admit(&rules, FALSE, TFTP_MODE_OCTET, "../etc/passwd", 0, 0, &ad, path), ==,
                    TFTP_ADMIT_BAD_NAME);
    g_assert_cmpint(ad.code, ==, TFTP_ERR_ACCESS);
    g_assert_cmpstr(ad.why, ==, "parent directory in path");
    /* a name refused is refused before any limit is looked at */
    g_assert_cmpint(admit(&rules, FALSE, TFTP_MODE_OCTET, "/abs", 10, 3, &ad, path), ==,
                    TFTP_ADMIT_BAD_NAME);
    /* temporary upload files: never read, never written by a client */
    g_assert_cmpint(
        admit(&rules, FALSE, TFTP_MODE_OCTET, "dir/.boot.img.0a1b2c3d.tftp-part", 0, 0, &ad, path),
        ==, TFTP_ADMIT_TEMPORARY);
    g_assert_cmpint(ad.code, ==, TFTP_ERR_NOT_FOUND);
    TftpAdmitRules w = rules;
    w.allow_writes = TRUE;
    g_assert_cmpint(admit(&w, TRUE, TFTP_MODE_OCTET, ".x.00000000.tftp-part", 0, 0, &ad, path), ==,
                    TFTP_ADMIT_TEMPORARY);
}

static void test_writes(void)
{
    char path[256];
    TftpAdmission ad;
    g_assert_cmpint(admit(&rules, TRUE, TFTP_MODE_OCTET, "up", 0, 0, &ad, path), ==,
                    TFTP_ADMIT_NO_WRITES);
    g_assert_cmpint(ad.code, ==, TFTP_ERR_ACCESS);
    g_assert_cmpstr(ad.msg, ==, "Writes are disabled");
    TftpAdmitRules w = rules;
    w.allow_writes = TRUE;
    g_assert_cmpint(admit(&w, TRUE, TFTP_MODE_OCTET, "up", 0, 0, &ad, path), ==, TFTP_ADMIT_OK);
    /* a read is not a write */
    g_assert_cmpint(admit(&rules, FALSE, TFTP_MODE_OCTET, "up", 0, 0, &ad, path), ==,
                    TFTP_ADMIT_OK);
}

static void test_temporary_names(void)
{
    static const struct {
        const char *name;
        gboolean temp;
    } cases[] = {
        {".pxelinux.0.deadbeef.tftp-part", TRUE},
        {"a/b/.x.0123ABCD.tftp-part", TRUE},
        {".X.0123abcd.TFTP-PART", TRUE},        /* Windows opens it without case */
        {".x.0123abcd.tftp-part. . ", TRUE},    /* and without trailing dots and spaces */
        {".x.0123abcd.tftp-part/child", FALSE}, /* only the last component */
        {"x.0123abcd.tftp-part", FALSE},        /* ours start with a dot */
        {"..0123abcd.tftp-part", FALSE},        /* NAME is not empty */
        {".x.0123abcg.tftp-part", FALSE},       /* 8 hex digits */
        {".x.123abcd.tftp-part", FALSE},
        {".x-0123abcd.tftp-part", FALSE},
        {".x.0123abcd.tftp-par", FALSE},
        {"pxelinux.0", FALSE},
        {"", FALSE},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        if (tftp_path_is_temporary(cases[i].name) != cases[i].temp)
            g_error("%s: expected %d", cases[i].name, cases[i].temp);
    g_assert_false(tftp_path_is_temporary(NULL));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tftp/admit/ok", test_ok);
    g_test_add_func("/tftp/admit/per-client-limit", test_per_client_limit);
    g_test_add_func("/tftp/admit/names-and-modes", test_names_and_modes);
    g_test_add_func("/tftp/admit/writes", test_writes);
    g_test_add_func("/tftp/admit/temporary-names", test_temporary_names);
    return g_test_run();
}
