/* test-net.c - lib/net/net.h: address literals and CIDR, real UDP exchanges over loopback
 * (127/8 and ::1 only) checking that PKTINFO reports where a datagram arrived and that a
 * reply can leave from a chosen local address, the interface address list and the
 * questions asked of it, and multicast group membership on lo. */
#define _GNU_SOURCE 1
#include "net.h"

#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

static PbAddr addr(const char *text, guint16 port)
{
    PbAddr a;
    g_assert_true(pb_addr_parse(text, port, &a));
    return a;
}

static void wait_readable(pb_socket_t s)
{
    struct pollfd p = {.fd = (int)s, .events = POLLIN};
    g_assert_cmpint(poll(&p, 1, 5000), ==, 1);
}

static guint32 lo_index(void)
{
    guint32 idx = if_nametoindex("lo");
    g_assert_cmpuint(idx, >, 0);
    return idx;
}

static void test_parse_format(void)
{
    static const char *const round[] = {
        "192.0.2.1", "0.0.0.0",   "255.255.255.255",  "2001:db8::1",         "::1",
        "::",        "fe80::1%2", "::ffff:192.0.2.7", "2001:db8:0:1:2:3:4:5"};
    char buf[64];
    for (gsize i = 0; i < G_N_ELEMENTS(round); i++) {
        PbAddr a = addr(round[i], 69);
        g_assert_cmpstr(pb_addr_format(&a, FALSE, buf, sizeof buf), ==, round[i]);
        PbAddr b = addr(buf, 69);
        g_assert_true(pb_addr_equal(&a, &b));
    }

    PbAddr a = addr("192.0.2.1", 4011);
    g_assert_cmpuint(a.family, ==, 4);
    g_assert_cmpuint(a.addr[0], ==, 192);
    g_assert_cmpuint(a.addr[3], ==, 1);
    g_assert_cmpstr(pb_addr_format(&a, TRUE, buf, sizeof buf), ==, "192.0.2.1:4011");
    a = addr("2001:db8::a", 69);
    g_assert_cmpuint(a.family, ==, 6);
    g_assert_cmpuint(a.addr[0], ==, 0x20);
    g_assert_cmpuint(a.addr[15], ==, 0x0a);
    g_assert_cmpstr(pb_addr_format(&a, TRUE, buf, sizeof buf), ==, "[2001:db8::a]:69");
    /* Our own with_port spelling of v6 without the port, as URLs write it. */
    PbAddr br = addr("[2001:db8::a]", 69);
    g_assert_true(pb_addr_equal(&a, &br));
    a = addr("fe80::1%7", 0);
    g_assert_cmpuint(a.scope_id, ==, 7);
    a = addr("fe80::1%lo", 0);
    g_assert_cmpuint(a.scope_id, ==, lo_index());

    /* NULL and "" are the IPv4 wildcard: "bind to every address". */
    a = addr(NULL, 67);
    g_assert_cmpuint(a.family, ==, 4);
    g_assert_cmpuint(a.port, ==, 67);
    g_assert_true(pb_addr_is_any(&a));
    a = addr("", 0);
    g_assert_true(pb_addr_is_any(&a));

    static const char *const bad[] = {
        "1.2.3", "1.2.3.4.5", "256.1.1.1", "abc", "10.0.0.0/8", "::1::2",           "[::1",
        "::1]",  "1.2.3.4 ",  "fe80::1%",  "[]",  "[1.2.3.4",   "fe80::1%nosuchif0"};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        PbAddr x;
        g_assert_false(pb_addr_parse(bad[i], 1, &x));
        g_assert_cmpuint(x.family, ==, 0);
    }
}

static void test_compare(void)
{
    PbAddr a = addr("10.0.0.1", 69), b = addr("10.0.0.1", 69), c = addr("10.0.0.1", 70);
    PbAddr d = addr("10.0.0.2", 69), e = addr("::ffff:10.0.0.1", 69);
    g_assert_true(pb_addr_equal(&a, &b));
    g_assert_false(pb_addr_equal(&a, &c));
    g_assert_false(pb_addr_equal(&a, &d));
    g_assert_false(pb_addr_equal(&a, &e));

    PbAddr any6 = addr("::", 0), unset = {0};
    g_assert_true(pb_addr_is_any(&any6));
    g_assert_true(pb_addr_is_any(&unset));
    g_assert_false(pb_addr_is_any(&a));

    PbAddr m1 = addr("224.0.0.1", 0), m2 = addr("239.255.255.250", 0);
    PbAddr bc = addr("255.255.255.255", 0), m6 = addr("ff02::1:2", 0);
    PbAddr u1 = addr("223.255.255.255", 0), u2 = addr("240.0.0.1", 0);
    g_assert_true(pb_addr_is_multicast_or_broadcast(&m1));
    g_assert_true(pb_addr_is_multicast_or_broadcast(&m2));
    g_assert_true(pb_addr_is_multicast_or_broadcast(&bc));
    g_assert_true(pb_addr_is_multicast_or_broadcast(&m6));
    g_assert_false(pb_addr_is_multicast_or_broadcast(&u1));
    g_assert_false(pb_addr_is_multicast_or_broadcast(&u2));
    g_assert_false(pb_addr_is_multicast_or_broadcast(&any6));
}

static void test_cidr(void)
{
    static const struct {
        const char *addr, *cidr;
        gboolean in;
    } cases[] = {
        {"10.1.2.3", "10.0.0.0/8", TRUE},
        {"11.1.2.3", "10.0.0.0/8", FALSE},
        {"192.168.1.77", "192.168.1.64/27", TRUE},
        {"192.168.1.96", "192.168.1.64/27", FALSE},
        {"192.168.1.63", "192.168.1.64/27", FALSE},
        {"1.2.3.4", "0.0.0.0/0", TRUE},
        {"1.2.3.4", "1.2.3.4", TRUE},
        {"1.2.3.5", "1.2.3.4", FALSE},
        {"1.2.3.4", "1.2.3.4/32", TRUE},
        {"1.2.3.4", " 1.2.3.0/24 ", TRUE},
        {"2001:db8::1", "2001:db8::/32", TRUE},
        {"2001:db9::1", "2001:db8::/32", FALSE},
        {"2001:db8:8000::1", "2001:db8::/33", FALSE},
        {"2001:db8:7fff::1", "2001:db8::/33", TRUE},
        {"::1", "::/0", TRUE},
        {"::1", "::1", TRUE},
        /* A dual-stack socket's IPv4 peer, v4-mapped, still matches an IPv4 network. */
        {"::ffff:10.9.8.7", "10.0.0.0/8", TRUE},
        {"::ffff:11.9.8.7", "10.0.0.0/8", FALSE},
        /* Families do not mix otherwise, and malformed networks match nothing. */
        {"10.1.2.3", "::/0", FALSE},
        {"2001:db8::1", "0.0.0.0/0", FALSE},
        {"10.1.2.3", "10.0.0.0/33", FALSE},
        {"10.1.2.3", "10.0.0.0/", FALSE},
        {"10.1.2.3", "10.0.0.0/+8", FALSE},
        {"10.1.2.3", "10.0.0.0/8x", FALSE},
        {"10.1.2.3", "/8", FALSE},
        {"10.1.2.3", "", FALSE},
        {"2001:db8::1", "2001:db8::/129", FALSE},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        PbAddr a = addr(cases[i].addr, 0);
        if (pb_addr_in_network(&a, cases[i].cidr) != cases[i].in)
            g_error("%s in %s: expected %d", cases[i].addr, cases[i].cidr, cases[i].in);
    }
    PbAddr a = addr("10.1.2.3", 0);
    g_assert_false(pb_addr_in_network(&a, NULL));
}

static pb_socket_t open_ok(const char *text, unsigned flags)
{
    g_autoptr(GError) error = NULL;
    PbAddr b = addr(text, 0);
    pb_socket_t s = pb_udp_open(&b, flags, &error);
    g_assert_no_error(error);
    g_assert_true(s != PB_SOCKET_NONE);
    return s;
}

static void test_udp_v4_pktinfo(void)
{
    g_autoptr(GError) error = NULL;
    pb_socket_t server = open_ok("127.0.0.1", PB_UDP_PKTINFO | PB_UDP_NO_PMTUD);
    pb_socket_t client = open_ok("127.0.0.1", 0);
    PbAddr saddr, caddr;
    g_assert_true(pb_udp_local_addr(server, &saddr));
    g_assert_true(pb_udp_local_addr(client, &caddr));
    g_assert_cmpuint(saddr.port, >=, 1024);

    /* Non-blocking and close-on-exec, as the daemon's event loop and its children need. */
    g_assert_true(fcntl((int)server, F_GETFL) & O_NONBLOCK);
    g_assert_true(fcntl((int)server, F_GETFD) & FD_CLOEXEC);
    int pmtu = -1;
    socklen_t sl = sizeof pmtu;
    g_assert_cmpint(getsockopt((int)server, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, &sl), ==, 0);
    g_assert_cmpint(pmtu, ==, IP_PMTUDISC_DONT);

    /* Nothing queued: would-block, not a failure. */
    char buf[64];
    PbAddr from, local;
    guint32 idx = 99;
    g_assert_cmpint(pb_udp_recv(server, buf, sizeof buf, &from, &local, &idx, &error), ==, -1);
    g_assert_true(pb_net_error_would_block(error));
    g_clear_error(&error);

    g_assert_cmpint(pb_udp_send(client, "hello", 5, &saddr, NULL, 0, &error), ==, 5);
    g_assert_no_error(error);
    wait_readable(server);
    gssize n = pb_udp_recv(server, buf, sizeof buf, &from, &local, &idx, &error);
    g_assert_no_error(error);
    g_assert_cmpint(n, ==, 5);
    g_assert_cmpmem(buf, 5, "hello", 5);
    g_assert_true(pb_addr_equal(&from, &caddr));
    g_assert_true(pb_addr_equal(&local, &saddr));
    g_assert_cmpuint(idx, ==, lo_index());

    /* And back, "from" what the request arrived on. */
    g_assert_cmpint(pb_udp_send(server, "world!", 6, &from, &local, idx, &error), ==, 6);
    g_assert_no_error(error);
    wait_readable(client);
    n = pb_udp_recv(client, buf, sizeof buf, &from, &local, &idx, &error);
    g_assert_no_error(error);
    g_assert_cmpint(n, ==, 6);
    g_assert_true(pb_addr_equal(&from, &saddr));
    /* The client did not ask for PKTINFO: local and ifindex are zeroed. */
    g_assert_cmpuint(local.family, ==, 0);
    g_assert_cmpuint(idx, ==, 0);

    pb_udp_close(server);
    pb_udp_close(client);
}

/* 127/8 is all loopback on Linux: a server bound to the wildcard that is reached on
 * 127.0.0.2 must answer from 127.0.0.2, or the client (like a PXE ROM) drops the reply. */
static void test_udp_reply_from_arrival_address(void)
{
    g_autoptr(GError) error = NULL;
    pb_socket_t server = open_ok("0.0.0.0", PB_UDP_PKTINFO);
    pb_socket_t client = open_ok("127.0.0.1", 0);
    PbAddr saddr;
    g_assert_true(pb_udp_local_addr(server, &saddr));

    for (int i = 2; i <= 3; i++) {
        char text[32];
        g_snprintf(text, sizeof text, "127.0.0.%d", i);
        PbAddr to = addr(text, saddr.port);
        g_assert_cmpint(pb_udp_send(client, "rrq", 3, &to, NULL, 0, &error), ==, 3);
        g_assert_no_error(error);
        wait_readable(server);

        char buf[16];
        PbAddr from, local;
        guint32 idx;
        g_assert_cmpint(pb_udp_recv(server, buf, sizeof buf, &from, &local, &idx, &error), ==, 3);
        g_assert_no_error(error);
        g_assert_true(pb_addr_equal(&local, &to));
        g_assert_cmpuint(idx, ==, lo_index());

        g_assert_cmpint(pb_udp_send(server, "data", 4, &from, &local, idx, &error), ==, 4);
        g_assert_no_error(error);
        wait_readable(client);
        PbAddr rfrom;
        g_assert_cmpint(pb_udp_recv(client, buf, sizeof buf, &rfrom, NULL, NULL, &error), ==, 4);
        g_assert_no_error(error);
        g_assert_true(pb_addr_equal(&rfrom, &to));
    }

    /* Without a local address the kernel picks 127.0.0.1 for a loopback peer. */
    PbAddr client_addr;
    g_assert_true(pb_udp_local_addr(client, &client_addr));
    g_assert_cmpint(pb_udp_send(server, "x", 1, &client_addr, NULL, 0, &error), ==, 1);
    wait_readable(client);
    char buf[4];
    PbAddr rfrom, expect = addr("127.0.0.1", saddr.port);
    g_assert_cmpint(pb_udp_recv(client, buf, sizeof buf, &rfrom, NULL, NULL, &error), ==, 1);
    g_assert_true(pb_addr_equal(&rfrom, &expect));

    pb_udp_close(server);
    pb_udp_close(client);
}

static void test_udp_truncated(void)
{
    g_autoptr(GError) error = NULL;
    pb_socket_t server = open_ok("127.0.0.1", PB_UDP_PKTINFO);
    pb_socket_t client = open_ok("127.0.0.1", 0);
    PbAddr saddr;
    g_assert_true(pb_udp_local_addr(server, &saddr));

    char big[100];
    memset(big, 'x', sizeof big);
    g_assert_cmpint(pb_udp_send(client, big, sizeof big, &saddr, NULL, 0, &error), ==, 100);
    g_assert_cmpint(pb_udp_send(client, big, 10, &saddr, NULL, 0, &error), ==, 10);
    wait_readable(server);
    char buf[10];
    g_assert_cmpint(pb_udp_recv(server, buf, sizeof buf, NULL, NULL, NULL, &error), ==, -1);
    g_assert_error(error, PB_NET_ERROR, PB_NET_ERROR_MESSAGE_TOO_LARGE);
    g_clear_error(&error);
    /* The oversized datagram is gone; the next one is intact. */
    g_assert_cmpint(pb_udp_recv(server, buf, sizeof buf, NULL, NULL, NULL, &error), ==, 10);
    g_assert_no_error(error);

    pb_udp_close(server);
    pb_udp_close(client);
}

/* A run of datagrams handed over in one buffer arrives as separate datagrams, each cut at
 * seg_len, the last one short; with a source address as well (pktinfo and segmentation
 * share the control data). */
static void check_segments(gsize seg_len, guint count, gsize last_len, const char *src)
{
    g_autoptr(GError) error = NULL;
    pb_socket_t server = open_ok("127.0.0.1", PB_UDP_PKTINFO);
    pb_socket_t client = open_ok(src ? "0.0.0.0" : "127.0.0.1", PB_UDP_PKTINFO);
    PbAddr saddr, cself = addr(src ? src : "127.0.0.1", 0);
    g_assert_true(pb_udp_local_addr(server, &saddr));
    gsize len = (count - 1) * seg_len + last_len;
    g_autofree guint8 *buf = g_malloc(len);
    for (gsize i = 0; i < len; i++)
        buf[i] = (guint8)(i / seg_len * 7 + i % 251);
    g_assert_cmpint(
        pb_udp_send_segments(client, buf, len, seg_len, &saddr, src ? &cself : NULL, 0, &error), ==,
        count);
    g_assert_no_error(error);
    g_autofree guint8 *got = g_malloc(seg_len + 1);
    for (guint k = 0; k < count; k++) {
        wait_readable(server);
        PbAddr from;
        gssize n = pb_udp_recv(server, got, seg_len + 1, &from, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpint(n, ==, k + 1 < count ? seg_len : last_len);
        g_assert_cmpmem(got, n, buf + k * seg_len, n);
        if (src)
            g_assert_true(memcmp(from.addr, cself.addr, 4) == 0);
    }
    char extra[8];
    g_assert_cmpint(pb_udp_recv(server, extra, sizeof extra, NULL, NULL, NULL, &error), ==, -1);
    g_assert_true(pb_net_error_would_block(error));
    pb_udp_close(server);
    pb_udp_close(client);
}

static void test_udp_segments(void)
{
    check_segments(1432, 16, 1432, NULL);  /* one TFTP window, one call */
    check_segments(1432, 20, 4, NULL);     /* an empty last DATA block */
    check_segments(10000, 13, 9999, NULL); /* several calls of 6, then one alone */
    check_segments(516, 3, 100, "127.0.0.2");
    check_segments(600, 1, 600, NULL);
}

static void test_udp_bind_conflict(void)
{
    g_autoptr(GError) error = NULL;
    pb_socket_t a = open_ok("127.0.0.1", 0);
    PbAddr aaddr;
    g_assert_true(pb_udp_local_addr(a, &aaddr));
    g_assert_true(pb_udp_open(&aaddr, 0, &error) == PB_SOCKET_NONE);
    g_assert_error(error, PB_NET_ERROR, PB_NET_ERROR_ADDRESS_IN_USE);
    /* The message names what could not be bound. */
    char text[64];
    g_assert_nonnull(strstr(error->message, pb_addr_format(&aaddr, TRUE, text, sizeof text)));
    pb_udp_close(a);
}

static gboolean have_ipv6_loopback(void)
{
    PbAddr b = addr("::1", 0);
    pb_socket_t s = pb_udp_open(&b, PB_UDP_V6ONLY, NULL);
    if (s == PB_SOCKET_NONE)
        return FALSE;
    pb_udp_close(s);
    return TRUE;
}

static void test_udp_v6(void)
{
    if (!have_ipv6_loopback()) {
        g_test_skip("no IPv6 loopback (::1) on this host");
        return;
    }
    g_autoptr(GError) error = NULL;
    pb_socket_t server = open_ok("::1", PB_UDP_PKTINFO | PB_UDP_V6ONLY | PB_UDP_NO_PMTUD);
    pb_socket_t client = open_ok("::1", PB_UDP_V6ONLY);
    PbAddr saddr, caddr;
    g_assert_true(pb_udp_local_addr(server, &saddr));
    g_assert_true(pb_udp_local_addr(client, &caddr));
    g_assert_cmpuint(saddr.family, ==, 6);

    int pmtu = -1;
    socklen_t sl = sizeof pmtu;
    g_assert_cmpint(getsockopt((int)server, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, &sl), ==, 0);
    g_assert_cmpint(pmtu, ==, IPV6_PMTUDISC_DONT);

    g_assert_cmpint(pb_udp_send(client, "six", 3, &saddr, NULL, 0, &error), ==, 3);
    g_assert_no_error(error);
    wait_readable(server);
    char buf[16];
    PbAddr from, local;
    guint32 idx;
    g_assert_cmpint(pb_udp_recv(server, buf, sizeof buf, &from, &local, &idx, &error), ==, 3);
    g_assert_no_error(error);
    g_assert_true(pb_addr_equal(&from, &caddr));
    g_assert_true(pb_addr_equal(&local, &saddr));
    g_assert_cmpuint(idx, ==, lo_index());

    g_assert_cmpint(pb_udp_send(server, "back", 4, &from, &local, idx, &error), ==, 4);
    g_assert_no_error(error);
    wait_readable(client);
    PbAddr rfrom;
    g_assert_cmpint(pb_udp_recv(client, buf, sizeof buf, &rfrom, NULL, NULL, &error), ==, 4);
    g_assert_true(pb_addr_equal(&rfrom, &saddr));

    pb_udp_close(server);
    pb_udp_close(client);
}

/* A dual-stack socket on :: reports IPv4 peers and destinations as plain IPv4, and sends
 * to them given as IPv4. */
static void test_udp_dual_stack(void)
{
    if (!have_ipv6_loopback()) {
        g_test_skip("no IPv6 on this host");
        return;
    }
    g_autoptr(GError) error = NULL;
    pb_socket_t server = open_ok("::", PB_UDP_PKTINFO);
    pb_socket_t client = open_ok("127.0.0.1", 0);
    PbAddr saddr, caddr;
    g_assert_true(pb_udp_local_addr(server, &saddr));
    g_assert_true(pb_udp_local_addr(client, &caddr));
    PbAddr to = addr("127.0.0.1", saddr.port);

    g_assert_cmpint(pb_udp_send(client, "four", 4, &to, NULL, 0, &error), ==, 4);
    wait_readable(server);
    char buf[16];
    PbAddr from, local;
    guint32 idx;
    g_assert_cmpint(pb_udp_recv(server, buf, sizeof buf, &from, &local, &idx, &error), ==, 4);
    g_assert_no_error(error);
    g_assert_true(pb_addr_equal(&from, &caddr));
    g_assert_true(pb_addr_equal(&local, &to));
    g_assert_cmpuint(idx, ==, lo_index());

    g_assert_cmpint(pb_udp_send(server, "ok", 2, &from, &local, idx, &error), ==, 2);
    g_assert_no_error(error);
    wait_readable(client);
    PbAddr rfrom;
    g_assert_cmpint(pb_udp_recv(client, buf, sizeof buf, &rfrom, NULL, NULL, &error), ==, 2);
    g_assert_true(pb_addr_equal(&rfrom, &to));

    pb_udp_close(server);
    pb_udp_close(client);
}

static void test_iface(void)
{
    guint mtu = pb_net_iface_mtu(lo_index());
    g_assert_cmpuint(mtu, >=, 1280);
    g_assert_cmpuint(pb_net_iface_mtu(0), ==, 0);
    g_assert_cmpuint(pb_net_iface_mtu(G_MAXUINT32 - 1), ==, 0);

    PbAddr d;
    if (pb_net_default_addr(&d)) {
        g_assert_cmpuint(d.family, ==, 4);
        g_assert_cmpuint(d.addr[0], !=, 127);
        g_assert_false(pb_addr_is_any(&d));
    } else {
        g_assert_cmpuint(d.family, ==, 0);
    }
}

static PbIfAddr ifa(guint32 ifindex, const char *text, guint8 prefix, guint flags)
{
    PbIfAddr e = {.ifindex = ifindex, .prefix = prefix, .flags = flags};
    e.addr = addr(text, 0);
    return e;
}

/* The portable questions, on a made-up host: eth (2) with two subnets, lo (1), a /31 link
 * (3), and an interface that is down (4). */
static void test_ifaddrs_logic(void)
{
    g_autoptr(GArray) l = g_array_new(FALSE, TRUE, sizeof(PbIfAddr));
    PbIfAddr all[] = {
        ifa(1, "127.0.0.1", 8, PB_IFADDR_UP | PB_IFADDR_LOOPBACK),
        ifa(4, "198.51.100.7", 24, 0),
        ifa(2, "10.1.0.5", 16, PB_IFADDR_UP),
        ifa(2, "192.168.7.1", 24, PB_IFADDR_UP),
        ifa(2, "2001:db8::5", 64, PB_IFADDR_UP),
        ifa(3, "172.16.0.0", 31, PB_IFADDR_UP),
    };
    g_array_append_vals(l, all, G_N_ELEMENTS(all));
    PbAddr out, near;
    char buf[64];

    /* The interface's first IPv4 address, or the one on the subnet near names. */
    g_assert_true(pb_ifaddrs_pick_ipv4(l, 2, NULL, &out));
    g_assert_cmpstr(pb_addr_format(&out, FALSE, buf, sizeof buf), ==, "10.1.0.5");
    near = addr("0.0.0.0", 0);
    g_assert_true(pb_ifaddrs_pick_ipv4(l, 2, &near, &out));
    g_assert_cmpstr(pb_addr_format(&out, FALSE, buf, sizeof buf), ==, "10.1.0.5");
    near = addr("192.168.7.200", 0);
    g_assert_true(pb_ifaddrs_pick_ipv4(l, 2, &near, &out));
    g_assert_cmpstr(pb_addr_format(&out, FALSE, buf, sizeof buf), ==, "192.168.7.1");
    near = addr("203.0.113.1", 0); /* on none of its subnets: the first */
    g_assert_true(pb_ifaddrs_pick_ipv4(l, 2, &near, &out));
    g_assert_cmpstr(pb_addr_format(&out, FALSE, buf, sizeof buf), ==, "10.1.0.5");
    g_assert_false(pb_ifaddrs_pick_ipv4(l, 0, NULL, &out));
    g_assert_false(pb_ifaddrs_pick_ipv4(l, 9, NULL, &out));
    g_assert_cmpuint(out.family, ==, 0);

    PbAddr a = addr("192.168.7.1", 0);
    g_assert_true(pb_ifaddrs_has(l, 2, &a));
    g_assert_false(pb_ifaddrs_has(l, 1, &a));
    g_assert_false(pb_ifaddrs_has(l, 0, &a));
    a = addr("2001:db8::5", 0);
    g_assert_true(pb_ifaddrs_has(l, 2, &a));

    /* Subnet-directed broadcasts and old-style network addresses; /31 has neither. */
    static const char *const yes[] = {"10.1.255.255", "10.1.0.0",        "192.168.7.255",
                                      "192.168.7.0",  "127.255.255.255", "198.51.100.255"};
    static const char *const no[] = {"10.1.0.5",   "10.2.255.255",    "172.16.0.1",
                                     "172.16.0.0", "255.255.255.255", "2001:db8::ffff"};
    for (gsize i = 0; i < G_N_ELEMENTS(yes); i++) {
        a = addr(yes[i], 0);
        g_assert_true(pb_ifaddrs_is_directed_broadcast(l, &a));
    }
    for (gsize i = 0; i < G_N_ELEMENTS(no); i++) {
        a = addr(no[i], 0);
        g_assert_false(pb_ifaddrs_is_directed_broadcast(l, &a));
    }
    PbAddr b, n;
    g_assert_true(pb_ifaddr_broadcast(&all[2], &b, &n));
    g_assert_cmpstr(pb_addr_format(&b, FALSE, buf, sizeof buf), ==, "10.1.255.255");
    g_assert_cmpstr(pb_addr_format(&n, FALSE, buf, sizeof buf), ==, "10.1.0.0");
    g_assert_false(pb_ifaddr_broadcast(&all[4], &b, &n)); /* IPv6 */
    g_assert_false(pb_ifaddr_broadcast(&all[5], &b, &n)); /* /31 */

    a = addr("10.1.200.3", 0);
    g_assert_true(pb_ifaddr_contains(&all[2], &a));
    g_assert_false(pb_ifaddr_contains(&all[3], &a));
    a = addr("2001:db8::1:2", 0);
    g_assert_true(pb_ifaddr_contains(&all[4], &a));
    g_assert_false(pb_ifaddr_contains(&all[2], &a));

    /* The host's default: up, not loopback, IPv4 (the interface that is down is skipped). */
    g_assert_true(pb_ifaddrs_default_ipv4(l, &out));
    g_assert_cmpstr(pb_addr_format(&out, FALSE, buf, sizeof buf), ==, "10.1.0.5");
    g_array_remove_range(l, 2, 2);
    g_array_remove_index(l, 3);
    g_assert_false(pb_ifaddrs_default_ipv4(l, &out));
    g_assert_cmpuint(out.family, ==, 0);
}

/* The system's list: lo is there with 127.0.0.1/8, flagged up and loopback. */
static void test_ifaddrs_system(void)
{
    g_autoptr(GArray) l = pb_net_ifaddrs();
    guint32 lo = lo_index();
    gboolean seen = FALSE;
    for (guint i = 0; i < l->len; i++) {
        const PbIfAddr *e = &g_array_index(l, PbIfAddr, i);
        g_assert_cmpuint(e->ifindex, >, 0);
        g_assert_true(e->addr.family == 4 || e->addr.family == 6);
        g_assert_cmpuint(e->addr.port, ==, 0);
        g_assert_cmpuint(e->prefix, <=, e->addr.family == 6 ? 128 : 32);
        if (e->ifindex == lo && e->addr.family == 4) {
            char buf[64];
            g_assert_cmpstr(pb_addr_format(&e->addr, FALSE, buf, sizeof buf), ==, "127.0.0.1");
            g_assert_cmpuint(e->prefix, ==, 8);
            g_assert_cmpuint(e->flags & (PB_IFADDR_UP | PB_IFADDR_LOOPBACK), ==,
                             PB_IFADDR_UP | PB_IFADDR_LOOPBACK);
            seen = TRUE;
        }
    }
    g_assert_true(seen);
    PbAddr a = addr("127.0.0.1", 0), out;
    g_assert_true(pb_ifaddrs_has(l, lo, &a));
    g_assert_true(pb_ifaddrs_pick_ipv4(l, lo, NULL, &out));
    g_assert_true(pb_addr_equal(&out, &a));
}

/* Reads what is queued on s within timeout_ms; -1 when nothing came. */
static gssize recv_within(pb_socket_t s, void *buf, gsize len, int timeout_ms)
{
    struct pollfd p = {.fd = (int)s, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    return pb_udp_recv(s, buf, len, NULL, NULL, NULL, NULL);
}

/* Two members of a group on lo and a sender: both hear it; after one leaves, the datagram
 * the other hears proves the one that left would have had it queued too, and it has not.
 * Skipped when the kernel refuses multicast on lo (no route, no membership). */
static void test_multicast(void)
{
    guint32 lo = lo_index();
    PbAddr group = addr("239.255.42.99", 0), bind_any = addr("0.0.0.0", 0);
    g_autoptr(GError) error = NULL;
    pb_socket_t a = pb_udp_open(&bind_any, PB_UDP_REUSEADDR, &error);
    g_assert_no_error(error);
    PbAddr bound;
    g_assert_true(pb_udp_local_addr(a, &bound));
    /* A second member on the same port. */
    bind_any.port = bound.port;
    pb_socket_t b = pb_udp_open(&bind_any, PB_UDP_REUSEADDR, &error);
    g_assert_no_error(error);
    group.port = bound.port;

    if (!pb_udp_join_group(a, &group, lo, &error)) {
        g_autofree char *why =
            g_strdup_printf("the kernel refuses multicast on lo: %s", error->message);
        g_test_skip(why);
        pb_udp_close(a);
        pb_udp_close(b);
        return;
    }
    g_assert_true(pb_udp_join_group(b, &group, lo, &error));
    g_assert_no_error(error);

    PbAddr lo_addr = addr("127.0.0.1", 0);
    pb_socket_t tx = pb_udp_open(&lo_addr, 0, &error);
    g_assert_no_error(error);
    g_assert_true(pb_udp_set_multicast_if(tx, lo, &error));
    g_assert_true(pb_udp_set_multicast_ttl(tx, 1, &error));
    g_assert_true(pb_udp_set_multicast_loop(tx, TRUE, &error));
    g_assert_no_error(error);
    g_assert_false(pb_udp_set_multicast_ttl(tx, 256, &error));
    g_assert_error(error, PB_NET_ERROR, PB_NET_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);

    if (pb_udp_send(tx, "one", 3, &group, NULL, 0, &error) < 0) {
        g_autofree char *why =
            g_strdup_printf("the kernel refuses multicast on lo: %s", error->message);
        g_test_skip(why);
        pb_udp_close(tx);
        pb_udp_close(a);
        pb_udp_close(b);
        return;
    }
    char buf[16];
    g_assert_cmpint(recv_within(a, buf, sizeof buf, 5000), ==, 3);
    g_assert_cmpmem(buf, 3, "one", 3);
    g_assert_cmpint(recv_within(b, buf, sizeof buf, 5000), ==, 3);

    g_assert_true(pb_udp_leave_group(a, &group, lo, &error));
    g_assert_no_error(error);
    g_assert_cmpint(pb_udp_send(tx, "two", 3, &group, NULL, 0, &error), ==, 3);
    /* b still hears the group; the kernel delivers to every member at once, so once b has
     * it, a would have it queued too if it were still a member. */
    g_assert_cmpint(recv_within(b, buf, sizeof buf, 5000), ==, 3);
    g_assert_cmpmem(buf, 3, "two", 3);
    g_assert_cmpint(recv_within(a, buf, sizeof buf, 0), ==, -1);

    /* Leaving twice, a group that is not one, and a family mismatch are refused. */
    g_assert_false(pb_udp_leave_group(a, &group, lo, &error));
    g_clear_error(&error);
    PbAddr unicast = addr("127.0.0.1", 0);
    g_assert_false(pb_udp_join_group(a, &unicast, lo, &error));
    g_assert_error(error, PB_NET_ERROR, PB_NET_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    PbAddr v6group = addr("ff02::1:2", 0);
    g_assert_false(pb_udp_join_group(a, &v6group, lo, &error));
    g_assert_error(error, PB_NET_ERROR, PB_NET_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);

    pb_udp_close(tx);
    pb_udp_close(a);
    pb_udp_close(b);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/net/addr/parse-format", test_parse_format);
    g_test_add_func("/net/addr/compare", test_compare);
    g_test_add_func("/net/addr/cidr", test_cidr);
    g_test_add_func("/net/udp/v4-pktinfo", test_udp_v4_pktinfo);
    g_test_add_func("/net/udp/reply-from-arrival-address", test_udp_reply_from_arrival_address);
    g_test_add_func("/net/udp/truncated", test_udp_truncated);
    g_test_add_func("/net/udp/bind-conflict", test_udp_bind_conflict);
    g_test_add_func("/net/udp/segments", test_udp_segments);
    g_test_add_func("/net/udp/v6", test_udp_v6);
    g_test_add_func("/net/udp/dual-stack", test_udp_dual_stack);
    g_test_add_func("/net/iface", test_iface);
    g_test_add_func("/net/ifaddrs/logic", test_ifaddrs_logic);
    g_test_add_func("/net/ifaddrs/system", test_ifaddrs_system);
    g_test_add_func("/net/multicast/join-leave", test_multicast);
    return g_test_run();
}
