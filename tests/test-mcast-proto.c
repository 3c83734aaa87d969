/* test-mcast-proto.c - the multicast imaging wire format (lib/proto/mcast-proto.c): round
 * trips of every message, every refusal, the DATA header the sender lays out itself, and
 * the mapping of session names to group addresses (stable, inside the range, never the
 * announcement address, probing past addresses in use, failing when the range is full). */
#include "mcast-proto.h"

#include <string.h>

static McastMsg parse_ok(GByteArray *b)
{
    McastMsg m;
    g_assert_cmpint(mcast_msg_parse(b->data, b->len, &m), ==, MCAST_PARSE_OK);
    return m;
}

static void test_announce(void)
{
    McastMsg m = {.type = MCAST_MSG_ANNOUNCE, .session_id = 0x0102030405060708ull};
    McastAnnounce *a = &m.u.announce;
    for (int i = 0; i < 32; i++)
        a->seal[i] = (guint8)i;
    a->state = MCAST_STATE_SENDING;
    a->ctl_port = 40000;
    a->group = 0xefc0a005;
    a->data_port = 8092;
    a->frag_size = 1400;
    a->pass = 3;
    a->n_objects = 17;
    a->manifest_len = 4000;
    a->rate_kbit = 400000;
    a->clients = 8;
    a->expected = 9;
    strcpy(a->name, "room-101");
    strcpy(a->image, "win11.base");
    g_autoptr(GByteArray) b = g_byte_array_new();
    g_assert_true(mcast_msg_build(&m, b));
    g_assert_cmpmem(b->data, 8, "PBMC\x01\x01\x00\x00", 8);
    McastMsg p = parse_ok(b);
    g_assert_cmpuint(p.session_id, ==, m.session_id);
    g_assert_cmpmem(p.u.announce.seal, 32, a->seal, 32);
    g_assert_cmpuint(p.u.announce.group, ==, 0xefc0a005);
    g_assert_cmpuint(p.u.announce.pass, ==, 3);
    g_assert_cmpuint(p.u.announce.expected, ==, 9);
    g_assert_cmpstr(p.u.announce.name, ==, "room-101");
    g_assert_cmpstr(p.u.announce.image, ==, "win11.base");
    /* every byte short of the whole is refused */
    for (guint n = 0; n < b->len; n++)
        g_assert_cmpint(mcast_msg_parse(b->data, n, &p), !=, MCAST_PARSE_OK);
    /* a group outside class D, a fragment size over the limit, a bad name */
    McastMsg bad = m;
    bad.u.announce.group = 0x0a000001;
    g_byte_array_set_size(b, 0);
    g_assert_true(mcast_msg_build(&bad, b));
    g_assert_cmpint(mcast_msg_parse(b->data, b->len, &p), ==, MCAST_PARSE_BAD_VALUE);
    bad = m;
    bad.u.announce.frag_size = MCAST_FRAG_MAX + 1;
    g_byte_array_set_size(b, 0);
    g_assert_true(mcast_msg_build(&bad, b));
    g_assert_cmpint(mcast_msg_parse(b->data, b->len, &p), ==, MCAST_PARSE_BAD_VALUE);
    bad = m;
    strcpy(bad.u.announce.name, "../x");
    g_byte_array_set_size(b, 0);
    g_assert_false(mcast_msg_build(&bad, b));
    g_assert_cmpuint(b->len, ==, 0);
}

static void test_data(void)
{
    guint8 payload[MCAST_FRAG_MAX];
    for (guint i = 0; i < sizeof(payload); i++)
        payload[i] = (guint8)(i * 7);
    McastMsg m = {.type = MCAST_MSG_DATA, .session_id = 42};
    McastData *d = &m.u.data;
    memcpy(d->image_id, "IMAGEID!", 8);
    d->object = 5;
    d->object_len = 5000;
    d->offset = 2800;
    d->codec = 1;
    d->kind = MCAST_OBJ_CHUNK;
    memset(d->hash, 0xab, 32);
    d->payload = payload;
    d->payload_len = MCAST_FRAG_MAX;
    g_autoptr(GByteArray) b = g_byte_array_new();
    g_assert_true(mcast_msg_build(&m, b));
    g_assert_cmpuint(b->len, ==, MCAST_DATAGRAM_MAX);
    /* the header the sender writes by itself is the same bytes */
    guint8 hdr[MCAST_DATA_HEADER];
    mcast_data_header(42, d, hdr);
    g_assert_cmpmem(hdr, sizeof(hdr), b->data, MCAST_DATA_HEADER);
    McastMsg p = parse_ok(b);
    g_assert_cmpuint(p.u.data.object, ==, 5);
    g_assert_cmpuint(p.u.data.offset, ==, 2800);
    g_assert_cmpmem(p.u.data.payload, p.u.data.payload_len, payload, MCAST_FRAG_MAX);
    g_assert_true(p.u.data.payload == b->data + MCAST_DATA_HEADER);
    /* a fragment running past its object, an offset past the end, a manifest that is
     * not object 0, an empty payload */
    McastMsg bad = m;
    bad.u.data.offset = 4000;
    g_byte_array_set_size(b, 0);
    g_assert_true(mcast_msg_build(&bad, b));
    g_assert_cmpint(mcast_msg_parse(b->data, b->len, &p), ==, MCAST_PARSE_BAD_VALUE);
    bad = m;
    bad.u.data.kind = MCAST_OBJ_MANIFEST;
    g_byte_array_set_size(b, 0);
    g_assert_true(mcast_msg_build(&bad, b));
    g_assert_cmpint(mcast_msg_parse(b->data, b->len, &p), ==, MCAST_PARSE_BAD_VALUE);
    g_byte_array_set_size(b, 0);
    g_assert_true(mcast_msg_build(&m, b));
    g_assert_cmpint(mcast_msg_parse(b->data, MCAST_DATA_HEADER, &p), ==, MCAST_PARSE_BAD_VALUE);
    g_assert_cmpint(mcast_msg_parse(b->data, MCAST_DATA_HEADER - 1, &p), ==, MCAST_PARSE_TRUNCATED);
    /* an oversized datagram */
    guint8 big[MCAST_DATAGRAM_MAX + 1] = {0};
    memcpy(big, b->data, b->len);
    g_assert_cmpint(mcast_msg_parse(big, sizeof(big), &p), ==, MCAST_PARSE_BAD_VALUE);
    bad = m;
    bad.u.data.payload_len = 0;
    g_assert_false(mcast_msg_build(&bad, b));
}

static void test_status_nack(void)
{
    McastMsg m = {.type = MCAST_MSG_STATUS, .session_id = 7};
    McastStatus *s = &m.u.status;
    s->client_id = 0x1122334455667788ull;
    s->state = MCAST_RX_RECEIVING;
    s->have = 10;
    s->total = 20;
    s->bytes_written = 1ull << 40;
    s->rx_frags = 123456;
    s->nack_frags = 99;
    strcpy(s->label, "pc-17 (52:54:00:12:34:56)");
    g_autoptr(GByteArray) b = g_byte_array_new();
    g_assert_true(mcast_msg_build(&m, b));
    McastMsg p = parse_ok(b);
    g_assert_cmpuint(p.u.status.client_id, ==, s->client_id);
    g_assert_cmpuint(p.u.status.bytes_written, ==, 1ull << 40);
    g_assert_cmpstr(p.u.status.label, ==, s->label);
    /* have > total, an unknown state, a control character in the label */
    McastMsg bad = m;
    bad.u.status.have = 21;
    g_byte_array_set_size(b, 0);
    g_assert_true(mcast_msg_build(&bad, b));
    g_assert_cmpint(mcast_msg_parse(b->data, b->len, &p), ==, MCAST_PARSE_BAD_VALUE);
    bad = m;
    bad.u.status.state = 9;
    g_byte_array_set_size(b, 0);
    g_assert_true(mcast_msg_build(&bad, b));
    g_assert_cmpint(mcast_msg_parse(b->data, b->len, &p), ==, MCAST_PARSE_BAD_VALUE);
    bad = m;
    strcpy(bad.u.status.label, "a\nb");
    g_assert_false(mcast_msg_build(&bad, b));

    McastMsg k = {.type = MCAST_MSG_NACK, .session_id = 7};
    k.u.nack.client_id = 3;
    k.u.nack.object = 9;
    memset(k.u.nack.hash, 0x5a, 32);
    k.u.nack.n_ranges = 2;
    k.u.nack.ranges[0] = (McastRange){0, 3};
    k.u.nack.ranges[1] = (McastRange){100, 1};
    g_byte_array_set_size(b, 0);
    g_assert_true(mcast_msg_build(&k, b));
    p = parse_ok(b);
    g_assert_cmpuint(p.u.nack.n_ranges, ==, 2);
    g_assert_cmpuint(p.u.nack.ranges[1].first, ==, 100);
    /* an empty range, one that wraps, too many ranges */
    McastMsg bad2 = k;
    bad2.u.nack.ranges[1] = (McastRange){100, 0};
    g_byte_array_set_size(b, 0);
    g_assert_true(mcast_msg_build(&bad2, b));
    g_assert_cmpint(mcast_msg_parse(b->data, b->len, &p), ==, MCAST_PARSE_BAD_VALUE);
    bad2 = k;
    bad2.u.nack.ranges[1] = (McastRange){G_MAXUINT32, 2};
    g_byte_array_set_size(b, 0);
    g_assert_true(mcast_msg_build(&bad2, b));
    g_assert_cmpint(mcast_msg_parse(b->data, b->len, &p), ==, MCAST_PARSE_BAD_VALUE);

    /* DIRECT: to one receiver; an unknown action and a short one are refused */
    McastMsg d = {.type = MCAST_MSG_DIRECT, .session_id = 7};
    d.u.direct.client_id = 0x0102030405060708ull;
    d.u.direct.action = MCAST_DIRECT_UNICAST;
    g_byte_array_set_size(b, 0);
    g_assert_true(mcast_msg_build(&d, b));
    p = parse_ok(b);
    g_assert_cmpuint(p.u.direct.client_id, ==, d.u.direct.client_id);
    g_assert_cmpuint(p.u.direct.action, ==, MCAST_DIRECT_UNICAST);
    g_assert_cmpint(mcast_msg_parse(b->data, b->len - 4, &p), ==, MCAST_PARSE_TRUNCATED);
    b->data[MCAST_HEADER_LEN + 8] = 9;
    g_assert_cmpint(mcast_msg_parse(b->data, b->len, &p), ==, MCAST_PARSE_BAD_VALUE);
    d.u.direct.action = 9;
    g_assert_false(mcast_msg_build(&d, b));
    /* the unicast state of a receiver's status */
    McastMsg u = m;
    u.u.status.state = MCAST_RX_UNICAST;
    g_byte_array_set_size(b, 0);
    g_assert_true(mcast_msg_build(&u, b));
    p = parse_ok(b);
    g_assert_cmpstr(mcast_rx_state_name(p.u.status.state), ==, "unicast");
    bad2 = k;
    bad2.u.nack.n_ranges = MCAST_NACK_RANGES + 1;
    g_assert_false(mcast_msg_build(&bad2, b));
}

static void test_refusals(void)
{
    McastMsg p;
    g_assert_cmpint(mcast_msg_parse((const guint8 *)"PBMC", 4, &p), ==, MCAST_PARSE_NOT_OURS);
    g_assert_cmpint(mcast_msg_parse((const guint8 *)"XXXX\x01\x01\0\0\0\0\0\0\0\0\0\0", 16, &p), ==,
                    MCAST_PARSE_NOT_OURS);
    g_assert_cmpint(mcast_msg_parse((const guint8 *)"PBMC\x02\x01\0\0\0\0\0\0\0\0\0\0", 16, &p), ==,
                    MCAST_PARSE_VERSION);
    g_assert_cmpint(mcast_msg_parse((const guint8 *)"PBMC\x01\x09\0\0\0\0\0\0\0\0\0\0", 16, &p), ==,
                    MCAST_PARSE_BAD_TYPE);
    g_assert_cmpint(mcast_msg_parse((const guint8 *)"PBMC\x01\x03\0\0\0\0\0\0\0\0\0\0", 16, &p), ==,
                    MCAST_PARSE_TRUNCATED);
    g_assert_cmpstr(mcast_parse_result_text(MCAST_PARSE_VERSION), ==,
                    "unsupported protocol version");
    g_assert_true(mcast_name_valid("a.b-c_9", 7));
    g_assert_false(mcast_name_valid(".hidden", 7));
    g_assert_false(mcast_name_valid("", 0));
    g_assert_false(mcast_name_valid("a/b", 3));
}

static gboolean taken_set(guint32 addr, void *data)
{
    return g_hash_table_contains(data, GUINT_TO_POINTER(addr));
}

static void test_groups(void)
{
    guint32 base;
    guint prefix;
    g_assert_true(mcast_range_parse("239.192.160.0/24", &base, &prefix));
    g_assert_cmpuint(base, ==, 0xefc0a000);
    g_assert_cmpuint(prefix, ==, 24);
    g_assert_true(mcast_range_parse("239.192.160.77/24", &base, &prefix));
    g_assert_cmpuint(base, ==, 0xefc0a000); /* host bits dropped */
    g_assert_false(mcast_range_parse("10.0.0.0/8", &base, &prefix));
    g_assert_false(mcast_range_parse("239.1.1.0/31", &base, &prefix));
    g_assert_false(mcast_range_parse("239.1.1.0", &base, &prefix));
    g_assert_false(mcast_range_parse("239.1.1.0/24x", &base, &prefix));
    g_assert_false(mcast_range_parse("239.1.1/24", &base, &prefix));
    g_assert_false(mcast_range_parse("239.1.1.256/24", &base, &prefix));
    g_assert_true(mcast_range_parse("239.192.160.0/24", &base, &prefix));

    /* stable: the same name gives the same address every time, inside the range, never
     * the announcement address (offset 0) or the last one */
    guint32 a = mcast_group_for("room-101", base, prefix, NULL, NULL);
    g_assert_cmpuint(a, ==, mcast_group_for("room-101", base, prefix, NULL, NULL));
    g_assert_cmpuint(a, ==, 0xefc0a000 + 1 + (0xc576191fu % 254)); /* FNV-1a of the name */
    GHashTable *taken = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (int i = 0; i < 500; i++) {
        g_autofree char *n = g_strdup_printf("s%d", i);
        guint32 g = mcast_group_for(n, base, 30, NULL, NULL);
        g_assert_cmpuint(g, >, base);
        g_assert_cmpuint(g, <, base + 3);
    }
    /* two sessions never share: probing past taken addresses until the range is full */
    guint32 small = 0xefc0a100;
    for (int i = 0; i < 6; i++) {
        g_autofree char *n = g_strdup_printf("sess%d", i);
        guint32 g = mcast_group_for(n, small, 29, taken_set, taken);
        g_assert_cmpuint(g, >, small);
        g_assert_cmpuint(g, <, small + 7);
        g_assert_false(g_hash_table_contains(taken, GUINT_TO_POINTER(g)));
        g_hash_table_add(taken, GUINT_TO_POINTER(g));
    }
    g_assert_cmpuint(mcast_group_for("one-more", small, 29, taken_set, taken), ==, 0);
    g_assert_cmpuint(mcast_group_for("x", 0x0a000000, 24, NULL, NULL), ==, 0);
    g_hash_table_destroy(taken);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/mcast-proto/announce", test_announce);
    g_test_add_func("/mcast-proto/data", test_data);
    g_test_add_func("/mcast-proto/status-nack", test_status_nack);
    g_test_add_func("/mcast-proto/refusals", test_refusals);
    g_test_add_func("/mcast-proto/groups", test_groups);
    return g_test_run();
}
