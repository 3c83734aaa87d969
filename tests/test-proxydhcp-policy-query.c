/* test-proxydhcp-policy-query.c - proxydhcp as a client of the policy UDP protocol: the
 * question it builds from a DHCP request reads back, field by field, through the protocol's
 * one parser (lib/proto), and only a well-formed DECISION with an ACTION is taken as an
 * answer. */
#include "policy-proto.h"
#include "policy-query.h"

#include <string.h>

static const guint8 MAC[6] = {0x52, 0x54, 0x00, 0x11, 0x22, 0x33};

/* A REQUEST relayed by 10.0.0.254 from a client at 10.0.0.5 with option 97 and user class. */
static DhcpPacket *request(void)
{
    guint8 buf[600];
    DhcpWriter w;
    guint8 chaddr[16] = {0};
    memcpy(chaddr, MAC, 6);
    dhcp_writer_init(&w, buf, sizeof buf);
    dhcp_writer_header(&w, DHCP_BOOTREQUEST, 1, 6, 0x01020304, 0, chaddr);
    dhcp_writer_set_addr(&w, DHCP_OFF_CIADDR, (const guint8[]){10, 0, 0, 5});
    dhcp_writer_set_addr(&w, DHCP_OFF_GIADDR, (const guint8[]){10, 0, 0, 254});
    dhcp_writer_option_u8(&w, DHCP_OPT_MSG_TYPE, DHCP_REQUEST);
    dhcp_writer_option(&w, DHCP_OPT_CLIENT_ARCH, (const guint8[]){0, 7}, 2);
    const char *vc = "PXEClient:Arch:00007:UNDI:003016";
    dhcp_writer_option(&w, DHCP_OPT_VENDOR_CLASS, vc, strlen(vc));
    guint8 uuid[17] = {0};
    for (int i = 1; i < 17; i++)
        uuid[i] = (guint8)i;
    dhcp_writer_option(&w, DHCP_OPT_CLIENT_UUID, uuid, sizeof uuid);
    dhcp_writer_option(&w, DHCP_OPT_USER_CLASS, "iPXE", 4);
    gsize n = dhcp_writer_finish(&w);
    DhcpPacket *p = g_new(DhcpPacket, 1);
    g_assert_cmpint(dhcp_packet_parse(buf, n, p), ==, DHCP_PARSE_OK);
    return p;
}

static void test_encode(void)
{
    g_autofree DhcpPacket *req = request();
    PdClient c;
    const char *why = NULL;
    g_assert_true(pd_classify(req, &c, &why));
    guint8 q[1400];
    gsize n = pd_policy_query_encode(0x01020304, true, req, &c, q, sizeof q);
    g_assert_cmpuint(n, >, POLICY_PROTO_HEADER);

    PolicyMsg m;
    g_assert_cmpint(policy_msg_parse(q, n, &m), ==, POLICY_PARSE_OK);
    g_assert_cmpuint(m.type, ==, POLICY_MSG_DECIDE_COMMIT);
    g_assert_cmpuint(m.id, ==, 0x01020304);
    g_assert_cmpuint(m.mac_len, ==, 6);
    g_assert_cmpmem(m.mac, 6, MAC, 6);
    g_assert_true(m.has_uuid);
    g_assert_cmpuint(m.uuid[0], ==, 1);
    g_assert_cmpuint(m.uuid[15], ==, 16);
    g_assert_true(m.has_arch);
    g_assert_cmpuint(m.arch, ==, 7);
    g_assert_cmpuint(m.client_ip.family, ==, 4);
    g_assert_cmpmem(m.client_ip.addr, 4, ((const guint8[]){10, 0, 0, 5}), 4);
    g_assert_cmpuint(m.relay_ip.family, ==, 4);
    g_assert_cmpmem(m.relay_ip.addr, 4, ((const guint8[]){10, 0, 0, 254}), 4);
    g_assert_cmpstr(m.user_class, ==, "iPXE");
    g_assert_cmpstr(m.vendor_class, ==, "PXEClient:Arch:00007:UNDI:003016");
    g_assert_null(m.serial);
    policy_msg_clear(&m);

    /* A dry run is a DECIDE; a buffer too small for the question gives nothing. */
    n = pd_policy_query_encode(9, false, req, &c, q, sizeof q);
    g_assert_cmpint(policy_msg_parse(q, n, &m), ==, POLICY_PARSE_OK);
    g_assert_cmpuint(m.type, ==, POLICY_MSG_DECIDE);
    policy_msg_clear(&m);
    g_assert_cmpuint(pd_policy_query_encode(9, false, req, &c, q, 20), ==, 0);
}

static GByteArray *built(const PolicyMsg *m)
{
    GByteArray *b = g_byte_array_new();
    policy_msg_build(m, b);
    return b;
}

static void test_reply(void)
{
    PolicyMsg m;
    policy_msg_init(&m);
    m.type = POLICY_MSG_DECISION;
    m.id = 77;
    m.decision.action = PB_POLICY_BOOT;
    g_strlcpy(m.decision.boot_file, "policy.efi", sizeof m.decision.boot_file);
    g_autoptr(GByteArray) b = built(&m);
    PdPolicyReply r;
    g_assert_true(pd_policy_reply_parse(b->data, b->len, &r));
    g_assert_cmpuint(r.id, ==, 77);
    g_assert_false(r.ignore);
    g_assert_cmpstr(r.boot_file, ==, "policy.efi");

    m.decision.action = PB_POLICY_IGNORE;
    m.decision.boot_file[0] = '\0';
    g_autoptr(GByteArray) ign = built(&m);
    g_assert_true(pd_policy_reply_parse(ign->data, ign->len, &r));
    g_assert_true(r.ignore);
    g_assert_cmpstr(r.boot_file, ==, "");

    /* Not answers: an ERROR, a request, a DECISION without its ACTION, a truncated one,
     * another version. */
    m.type = POLICY_MSG_ERROR;
    m.error_text = g_strdup("no");
    g_autoptr(GByteArray) err = built(&m);
    policy_msg_clear(&m);
    g_assert_false(pd_policy_reply_parse(err->data, err->len, &r));
    m.type = POLICY_MSG_DECIDE;
    g_autoptr(GByteArray) ask = built(&m);
    g_assert_false(pd_policy_reply_parse(ask->data, ask->len, &r));
    g_assert_false(pd_policy_reply_parse(b->data, POLICY_PROTO_HEADER, &r)); /* no ACTION */
    g_assert_false(pd_policy_reply_parse(b->data, b->len - 1, &r));
    b->data[4] = POLICY_PROTO_VERSION + 1;
    g_assert_false(pd_policy_reply_parse(b->data, b->len, &r));
    g_assert_false(pd_policy_reply_parse(NULL, 0, &r));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/proxydhcp/policy-query/encode", test_encode);
    g_test_add_func("/proxydhcp/policy-query/reply", test_reply);
    return g_test_run();
}
