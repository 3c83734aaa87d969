/* test-policy-proto.c - the policy UDP protocol (lib/proto): parse/build round trips, every
 * refusal (short, wrong magic, version, type, truncated, malformed), unknown options
 * skipped; and a replay of the fuzz corpus. The server's side (the device a request
 * describes, the reply cache) is tested in test-policy-server.c. */
#include "policy-proto.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const guint8 *data, gsize size);

static void test_request_roundtrip(void)
{
    PolicyMsg m;
    policy_msg_init(&m);
    m.type = POLICY_MSG_DECIDE_COMMIT;
    m.id = 0xdeadbeef;
    const guint8 mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    memcpy(m.mac, mac, 6);
    m.mac_len = 6;
    m.has_uuid = TRUE;
    for (int i = 0; i < 16; i++)
        m.uuid[i] = (guint8)(i + 1);
    m.has_arch = TRUE;
    m.arch = 7;
    g_assert_true(pb_addr_parse("10.0.0.5", 0, &m.client_ip));
    g_assert_true(pb_addr_parse("2001:db8::1", 0, &m.relay_ip));
    m.user_class = g_strdup("iPXE");
    m.serial = g_strdup("  CZC1234 ");
    m.manufacturer = g_strdup("HP");
    m.ram_mb = 8192;
    m.disk_gb = 256;
    g_autoptr(GByteArray) out = g_byte_array_new();
    policy_msg_build(&m, out);
    g_assert_cmpmem(out->data, 12, "PBPL\x01\x02\x00\x00\xde\xad\xbe\xef", 12);
    policy_msg_clear(&m);

    g_assert_cmpint(policy_msg_parse(out->data, out->len, &m), ==, POLICY_PARSE_OK);
    g_assert_cmpuint(m.id, ==, 0xdeadbeef);
    g_assert_cmpuint(m.type, ==, POLICY_MSG_DECIDE_COMMIT);
    g_assert_cmpuint(m.mac_len, ==, 6);
    g_assert_cmpmem(m.mac, 6, mac, 6);
    g_assert_true(m.has_uuid);
    g_assert_cmpuint(m.uuid[0], ==, 1);
    g_assert_cmpuint(m.uuid[15], ==, 16);
    g_assert_true(m.has_arch);
    g_assert_cmpuint(m.arch, ==, 7);
    g_assert_cmpuint(m.client_ip.family, ==, 4);
    g_assert_cmpmem(m.client_ip.addr, 4, "\x0a\x00\x00\x05", 4);
    g_assert_cmpuint(m.relay_ip.family, ==, 6);
    g_assert_cmpuint(m.relay_ip.addr[0], ==, 0x20);
    g_assert_cmpstr(m.user_class, ==, "iPXE");
    g_assert_cmpstr(m.serial, ==, "  CZC1234 "); /* as sent: trimming is the engine's */
    g_assert_cmpstr(m.manufacturer, ==, "HP");
    g_assert_null(m.product);
    g_assert_cmpuint(m.ram_mb, ==, 8192);
    g_assert_cmpuint(m.disk_gb, ==, 256);
    policy_msg_clear(&m);
}

static void test_decision_roundtrip(void)
{
    PolicyMsg m;
    policy_msg_init(&m);
    m.type = POLICY_MSG_DECISION;
    m.id = 42;
    m.decision.struct_size = sizeof(m.decision);
    m.decision.action = PB_POLICY_BOOT;
    m.decision.menu = PB_POLICY_MENU_ALWAYS;
    m.decision.menu_timeout_s = 10;
    m.decision.work = PB_POLICY_WORK_RESTORE;
    m.decision.flags = PB_POLICY_F_ONCE | PB_POLICY_F_ASSIGNED;
    strcpy(m.decision.boot_file, "ipxe.efi");
    strcpy(m.decision.work_arg, "win11");
    strcpy(m.decision.rule, "lab");
    g_autoptr(GByteArray) out = g_byte_array_new();
    policy_msg_build(&m, out);
    policy_msg_clear(&m);
    g_assert_cmpint(policy_msg_parse(out->data, out->len, &m), ==, POLICY_PARSE_OK);
    g_assert_cmpuint(m.decision.action, ==, PB_POLICY_BOOT);
    g_assert_cmpuint(m.decision.menu, ==, PB_POLICY_MENU_ALWAYS);
    g_assert_cmpuint(m.decision.menu_timeout_s, ==, 10);
    g_assert_cmpuint(m.decision.work, ==, PB_POLICY_WORK_RESTORE);
    g_assert_cmpuint(m.decision.flags, ==, PB_POLICY_F_ONCE | PB_POLICY_F_ASSIGNED);
    g_assert_cmpstr(m.decision.boot_file, ==, "ipxe.efi");
    g_assert_cmpstr(m.decision.work_arg, ==, "win11");
    g_assert_cmpstr(m.decision.rule, ==, "lab");
    g_assert_cmpstr(m.decision.menu_name, ==, "");
    policy_msg_clear(&m);

    m.type = POLICY_MSG_ERROR;
    m.error_text = g_strdup("no");
    g_byte_array_set_size(out, 0);
    policy_msg_build(&m, out);
    policy_msg_clear(&m);
    g_assert_cmpint(policy_msg_parse(out->data, out->len, &m), ==, POLICY_PARSE_OK);
    g_assert_cmpstr(m.error_text, ==, "no");
    policy_msg_clear(&m);
}

#define PKT(s) ((const guint8 *)(s)), (sizeof(s) - 1)

static void expect(const guint8 *data, gsize len, PolicyParseResult want)
{
    PolicyMsg m;
    g_assert_cmpint(policy_msg_parse(data, len, &m), ==, want);
    policy_msg_clear(&m);
}

static void test_refusals(void)
{
    expect(PKT(""), POLICY_PARSE_NOT_OURS);
    expect(PKT("PBPL\x01\x01\x00\x00\x00\x00\x00"), POLICY_PARSE_NOT_OURS); /* 11 bytes */
    expect(PKT("XBPL\x01\x01\x00\x00\x00\x00\x00\x01"), POLICY_PARSE_NOT_OURS);
    expect(PKT("PBPL\x02\x01\x00\x00\x00\x00\x00\x01"), POLICY_PARSE_VERSION);
    expect(PKT("PBPL\x01\x07\x00\x00\x00\x00\x00\x01"), POLICY_PARSE_BAD_TYPE);
    expect(PKT("PBPL\x01\x01\x00\x00\x00\x00\x00\x01"), POLICY_PARSE_OK); /* no options */
    /* an option header cut in half, and an option running past the end */
    expect(PKT("PBPL\x01\x01\x00\x00\x00\x00\x00\x01\x01"), POLICY_PARSE_TRUNCATED);
    expect(PKT("PBPL\x01\x01\x00\x00\x00\x00\x00\x01\x01\x06\x52\x54"), POLICY_PARSE_TRUNCATED);
    /* wrong lengths and bad text */
    expect(PKT("PBPL\x01\x01\x00\x00\x00\x00\x00\x01\x02\x03\x01\x02\x03"), POLICY_PARSE_BAD_VALUE);
    expect(PKT("PBPL\x01\x01\x00\x00\x00\x00\x00\x01\x03\x01\x07"), POLICY_PARSE_BAD_VALUE);
    expect(PKT("PBPL\x01\x01\x00\x00\x00\x00\x00\x01\x04\x05\x01\x02\x03\x04\x05"),
           POLICY_PARSE_BAD_VALUE);
    expect(PKT("PBPL\x01\x01\x00\x00\x00\x00\x00\x01\x08\x03"
               "a\0"
               "b"),
           POLICY_PARSE_BAD_VALUE);
    expect(PKT("PBPL\x01\x01\x00\x00\x00\x00\x00\x01\x08\x02\xff\xfe"), POLICY_PARSE_BAD_VALUE);
    expect(PKT("PBPL\x01\x01\x00\x00\x00\x00\x00\x01\x01\x00"), POLICY_PARSE_BAD_VALUE);
    expect(PKT("PBPL\x01\x81\x00\x00\x00\x00\x00\x01\x43\x01\x09"), POLICY_PARSE_BAD_VALUE);
    /* unknown options are skipped */
    PolicyMsg m;
    g_assert_cmpint(policy_msg_parse(PKT("PBPL\x01\x01\x00\x00\x00\x00\x00\x01"
                                         "\x63\x03xyz\x01\x06\x52\x54\x00\x00\x00\x01"),
                                     &m),
                    ==, POLICY_PARSE_OK);
    g_assert_cmpuint(m.mac_len, ==, 6);
    policy_msg_clear(&m);
    g_assert_cmpstr(policy_parse_result_text(POLICY_PARSE_TRUNCATED), ==, "truncated option");
}

static void test_fuzz_corpus(void)
{
    const char *top = g_getenv("top_srcdir") ? g_getenv("top_srcdir") : ".";
    g_autofree char *dir = g_build_filename(top, "tests", "fuzz", "corpus-policy-proto", NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_assert_nonnull(d);
    const char *name;
    guint n = 0;
    while ((name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *data = NULL;
        gsize len;
        g_assert_true(g_file_get_contents(path, &data, &len, NULL));
        LLVMFuzzerTestOneInput((const guint8 *)data, len);
        n++;
    }
    g_assert_cmpuint(n, >, 3);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/policy/proto/request-roundtrip", test_request_roundtrip);
    g_test_add_func("/policy/proto/decision-roundtrip", test_decision_roundtrip);
    g_test_add_func("/policy/proto/refusals", test_refusals);
    g_test_add_func("/policy/fuzz/proto-corpus-replay", test_fuzz_corpus);
    return g_test_run();
}
