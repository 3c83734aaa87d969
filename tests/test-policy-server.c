/* test-policy-server.c - the policy engine's side of the policy UDP protocol
 * (plugins/policy/policy-server.c): the device a parsed request describes, and the reply
 * cache that makes retransmissions idempotent. */
#include "policy-server.h"

#include <string.h>

static void test_to_device(void)
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
    m.asset_tag = g_strdup("To be filled by O.E.M.");
    m.manufacturer = g_strdup("HP");
    m.ram_mb = 8192;
    m.disk_gb = 256;

    /* Through the wire and back, as the engine receives it. */
    g_autoptr(GByteArray) out = g_byte_array_new();
    policy_msg_build(&m, out);
    policy_msg_clear(&m);
    g_assert_cmpint(policy_msg_parse(out->data, out->len, &m), ==, POLICY_PARSE_OK);

    PolicyDevice d;
    policy_msg_to_device(&m, &d);
    g_assert_cmpstr(d.mac, ==, "52:54:00:12:34:56");
    g_assert_cmpstr(d.uuid, ==, "04030201-0605-0807-090a-0b0c0d0e0f10");
    g_assert_cmpint(d.arch, ==, 7);
    g_assert_cmpint(d.ip.family, ==, 4);
    g_assert_cmpmem(d.ip.addr, 4, "\x0a\x00\x00\x05", 4);
    g_assert_cmpint(d.relay.family, ==, 6);
    g_assert_cmpuint(d.relay.addr[0], ==, 0x20);
    g_assert_cmpstr(d.user_class, ==, "iPXE");
    g_assert_cmpstr(d.serial, ==, "CZC1234");
    g_assert_null(d.asset_tag); /* a placeholder identifies nothing */
    g_assert_cmpstr(d.manufacturer, ==, "HP");
    g_assert_null(d.product);
    g_assert_cmpuint(d.ram_mb, ==, 8192);
    g_assert_cmpuint(d.disk_gb, ==, 256);
    policy_device_clear(&d);
    policy_msg_clear(&m);
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

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/policy/server/to-device", test_to_device);
    g_test_add_func("/policy/server/reply-cache", test_reply_cache);
    return g_test_run();
}
