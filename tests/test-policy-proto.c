/* test-policy-proto.c - the policy UDP protocol: parse/build round trips, every refusal
 * (short, wrong magic, version, type, truncated, malformed), unknown options skipped, the
 * reply cache that makes retransmissions idempotent; and a replay of the fuzz corpus. */
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
    g_assert_true(policy_ip_parse("10.0.0.5", &m.client_ip));
    g_assert_true(policy_ip_parse("2001:db8::1", &m.relay_ip));
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
    PolicyDevice d;
    policy_msg_to_device(&m, &d);
    g_assert_cmpstr(d.mac, ==, "52:54:00:12:34:56");
    g_assert_cmpstr(d.uuid, ==, "04030201-0605-0807-090a-0b0c0d0e0f10");
    g_assert_cmpint(d.arch, ==, 7);
    g_assert_cmpint(d.ip.family, ==, 4);
    g_assert_cmpint(d.relay.family, ==, 6);
    g_assert_cmpstr(d.user_class, ==, "iPXE");
    g_assert_cmpstr(d.serial, ==, "CZC1234");
    g_assert_cmpstr(d.manufacturer, ==, "HP");
    g_assert_null(d.product);
    g_assert_cmpuint(d.ram_mb, ==, 8192);
    g_assert_cmpuint(d.disk_gb, ==, 256);
    policy_device_clear(&d);
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

static void test_reply_cache(void)
{
    PolicyReplyCache *c = policy_reply_cache_new(3, 1000);
    g_autoptr(GBytes) a = g_bytes_new_static("a", 1);
    g_autoptr(GBytes) b = g_bytes_new_static("b", 1);
    policy_reply_cache_put(c, "10.0.0.1:4000", 1, 2, a, 0);
    GBytes *hit = policy_reply_cache_get(c, "10.0.0.1:4000", 1, 2, 10);
    g_assert_true(hit != NULL && g_bytes_equal(hit, a));
    g_bytes_unref(hit);
    /* another peer, id or type is another request */
    g_assert_null(policy_reply_cache_get(c, "10.0.0.2:4000", 1, 2, 10));
    g_assert_null(policy_reply_cache_get(c, "10.0.0.1:4000", 2, 2, 10));
    g_assert_null(policy_reply_cache_get(c, "10.0.0.1:4000", 1, 1, 10));
    /* bounded in size: the oldest goes */
    policy_reply_cache_put(c, "p", 2, 2, b, 20);
    policy_reply_cache_put(c, "p", 3, 2, b, 30);
    policy_reply_cache_put(c, "p", 4, 2, b, 40);
    g_assert_cmpuint(policy_reply_cache_size(c), ==, 3);
    g_assert_null(policy_reply_cache_get(c, "10.0.0.1:4000", 1, 2, 40));
    /* and in time */
    hit = policy_reply_cache_get(c, "p", 4, 2, 1040);
    g_assert_nonnull(hit);
    g_bytes_unref(hit);
    g_assert_null(policy_reply_cache_get(c, "p", 4, 2, 1041));
    g_assert_cmpuint(policy_reply_cache_size(c), ==, 0);
    policy_reply_cache_free(c);
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
    g_test_add_func("/policy/proto/reply-cache", test_reply_cache);
    g_test_add_func("/policy/fuzz/proto-corpus-replay", test_fuzz_corpus);
    return g_test_run();
}
