/* test-proxydhcp-decide.c - who gets which answer, with which bytes, sent where: the
 * firmware profiles, boot files by architecture, iPXE and HTTP boot, relays, port 4011,
 * boot items, and the policy engine's say. Real captured packets where we have them,
 * hand-built requests for the rest. */
#include "proxydhcp-decide.h"

#include <string.h>

static const guint8 SERVER[4] = {192, 0, 2, 1};

static PdConfig *make_config(void)
{
    PdConfig *c = pd_config_new();
    const char *files[PXE_ARCH_CLASS_N] = {"nvlnbp.sys",   "bootia32.efi", "bootx64.efi",
                                           "bootaa64.efi", "bootarm.efi",  ""};
    for (int i = 0; i < PXE_ARCH_CLASS_N; i++) {
        g_free(c->boot_file[i]);
        c->boot_file[i] = g_strdup(files[i]);
    }
    g_free(c->http_url);
    c->http_url = g_strdup("http://192.0.2.1/boot/bootx64.efi");
    return c;
}

typedef struct {
    int msg_type;
    int arch93;     /* -1: no option 93 */
    const char *vc; /* option 60, NULL: none */
    bool uuid;
    bool ipxe;
    guint8 giaddr[4];
    guint8 ciaddr[4];
    bool broadcast;
    int item_type; /* -1: no 43.71 */
    int item_layer;
    int max_msg; /* 0: no option 57 */
} Req;

static const guint8 UUID97[17] = {0,    0x4c, 0x4c, 0x45, 0x44, 0,    0x42, 0x35, 0x10,
                                  0x80, 0x52, 0xb4, 0xc0, 0x4f, 0x4e, 0x4e, 0x31};

static DhcpPacket *build(const Req *r)
{
    guint8 buf[1024];
    DhcpWriter w;
    static const guint8 mac[16] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
    dhcp_writer_init(&w, buf, sizeof buf);
    dhcp_writer_header(&w, DHCP_BOOTREQUEST, 1, 6, 0x01020304,
                       r->broadcast ? DHCP_FLAG_BROADCAST : 0, mac);
    dhcp_writer_set_addr(&w, DHCP_OFF_GIADDR, r->giaddr);
    dhcp_writer_set_addr(&w, DHCP_OFF_CIADDR, r->ciaddr);
    dhcp_writer_option_u8(&w, DHCP_OPT_MSG_TYPE, (guint8)r->msg_type);
    if (r->max_msg) {
        guint8 mm[2] = {(guint8)(r->max_msg >> 8), (guint8)r->max_msg};
        dhcp_writer_option(&w, DHCP_OPT_MAX_MSG_SIZE, mm, 2);
    }
    if (r->arch93 >= 0) {
        guint8 a[2] = {(guint8)(r->arch93 >> 8), (guint8)r->arch93};
        dhcp_writer_option(&w, DHCP_OPT_CLIENT_ARCH, a, 2);
    }
    if (r->vc)
        dhcp_writer_option(&w, DHCP_OPT_VENDOR_CLASS, r->vc, strlen(r->vc));
    if (r->uuid)
        dhcp_writer_option(&w, DHCP_OPT_CLIENT_UUID, UUID97, sizeof UUID97);
    if (r->ipxe)
        dhcp_writer_option(&w, DHCP_OPT_USER_CLASS, "iPXE", 4);
    if (r->item_type >= 0) {
        guint8 s[7] = {71,
                       4,
                       (guint8)(r->item_type >> 8),
                       (guint8)r->item_type,
                       (guint8)(r->item_layer >> 8),
                       (guint8)r->item_layer,
                       255};
        dhcp_writer_option(&w, DHCP_OPT_VENDOR, s, sizeof s);
    }
    gsize n = dhcp_writer_finish(&w);
    DhcpPacket *p = g_new(DhcpPacket, 1);
    g_assert_cmpint(dhcp_packet_parse(buf, n, p), ==, DHCP_PARSE_OK);
    return p;
}

static DhcpPacket *load(const char *name)
{
    g_autofree char *path = g_test_build_filename(G_TEST_DIST, "tests", "data", "dhcp", name, NULL);
    g_autofree char *data = NULL;
    gsize len;
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    DhcpPacket *p = g_new(DhcpPacket, 1);
    g_assert_cmpint(dhcp_packet_parse((guint8 *)data, len, p), ==, DHCP_PARSE_OK);
    return p;
}

/* The decided reply, parsed back. */
typedef struct {
    bool answered;
    const char *why;
    PdPlan plan;
    PdClient client;
    DhcpPacket rep;
} Outcome;

/* The next step the plugin found for iPXE clients (NULL: none), for run(). */
static const char *ipxe_auto;

static Outcome *run(const PdConfig *cfg, const DhcpPacket *req, bool pxe_port, guint16 src_port,
                    const PdPolicyAnswer *pol)
{
    Outcome *o = g_new0(Outcome, 1);
    if (!pd_classify(req, &o->client, &o->why))
        return o;
    PdContext ctx = {.on_pxe_port = pxe_port,
                     .src_addr = {192, 0, 2, 77},
                     .src_port = src_port,
                     .client_port = 68,
                     .server_port = 67,
                     .ipxe_auto = ipxe_auto};
    memcpy(ctx.server_addr, SERVER, 4);
    PdPolicyAnswer def = PD_POLICY_DEFAULT;
    guint8 out[1500];
    o->answered =
        pd_decide(cfg, req, &o->client, &ctx, pol ? pol : &def, out, sizeof out, &o->plan, &o->why);
    if (o->answered)
        g_assert_cmpint(dhcp_packet_parse(out, o->plan.len, &o->rep), ==, DHCP_PARSE_OK);
    return o;
}

/* Checks the fields every proxy reply must have (PXE 2.1 section 2.2.3 and the issue):
 * BOOTREPLY, same xid/chaddr/flags/giaddr, yiaddr 0, siaddr and 54 = us, 60 echoed, no
 * lease, router or DNS options, file NUL-terminated. */
static void check_common(const Outcome *o, const DhcpPacket *req, guint8 type, const char *vc)
{
    g_assert_true(o->answered);
    const DhcpPacket *r = &o->rep;
    static const guint8 zero[4];
    g_assert_cmpuint(r->op, ==, DHCP_BOOTREPLY);
    g_assert_cmpuint(r->msg_type, ==, type);
    g_assert_cmpuint(r->xid, ==, req->xid);
    g_assert_cmpuint(r->flags, ==, req->flags);
    g_assert_cmpmem(r->chaddr, 16, req->chaddr, 16);
    g_assert_cmpmem(r->yiaddr, 4, zero, 4);
    g_assert_cmpmem(r->siaddr, 4, SERVER, 4);
    g_assert_cmpmem(r->giaddr, 4, req->giaddr, 4);
    if (type == DHCP_OFFER)
        g_assert_cmpmem(r->ciaddr, 4, zero, 4);
    else
        g_assert_cmpmem(r->ciaddr, 4, req->ciaddr, 4);
    gsize len;
    const guint8 *sid = dhcp_packet_get(r, DHCP_OPT_SERVER_ID, &len);
    g_assert_cmpmem(sid, len, SERVER, 4);
    const guint8 *v = dhcp_packet_get(r, DHCP_OPT_VENDOR_CLASS, &len);
    g_assert_cmpmem(v, len, vc, strlen(vc));
    static const guint8 never[] = {1, 3, 6, 15, 51, 58, 59};
    for (gsize i = 0; i < G_N_ELEMENTS(never); i++)
        g_assert_false(dhcp_packet_has(r, never[i]));
    g_assert_nonnull(memchr(r->file, 0, 128));
    g_assert_nonnull(memchr(r->sname, 0, 64));
    /* The UUID comes back exactly when it was sent. */
    const guint8 *u = dhcp_packet_get(req, DHCP_OPT_CLIENT_UUID, &len);
    gsize rlen;
    const guint8 *ru = dhcp_packet_get(r, DHCP_OPT_CLIENT_UUID, &rlen);
    if (u == NULL)
        g_assert_null(ru);
    else
        g_assert_cmpmem(ru, rlen, u, len);
}

static void check_dest(const Outcome *o, const guint8 addr[4], guint16 port, bool bcast)
{
    g_assert_cmpmem(o->plan.dest.addr, 4, addr, 4);
    g_assert_cmpuint(o->plan.dest.port, ==, port);
    g_assert_cmpint(o->plan.dest.broadcast, ==, bcast);
}

static const guint8 BCAST[4] = {255, 255, 255, 255};

static void test_bios_menu_offer(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    pd_config_add_menu(cfg, "Install=install.0", NULL);
    pd_config_add_menu(cfg, "Local disk=local", NULL);
    /* QEMU's iPXE ROM is iPXE, but with no ipxe_next set it is served like any BIOS. */
    g_autofree DhcpPacket *req = load("ipxe-bios-discover.bin");
    g_autofree Outcome *o = run(cfg, req, false, 68, NULL);
    check_common(o, req, DHCP_OFFER, "PXEClient");
    check_dest(o, BCAST, 68, true);
    g_assert_cmpint(o->plan.profile, ==, PD_PROFILE_MENU);
    g_assert_cmpint(o->client.arch, ==, 0);
    g_assert_cmpint(o->client.arch_source, ==, 93);
    g_assert_true(o->client.ipxe);
    g_assert_cmpstr(o->client.mac, ==, "52:54:00:12:34:56");
    /* A menu offer names no file: the client asks 4011 for the item it picked. */
    g_assert_cmpuint(o->rep.file[0], ==, 0);
    gsize len;
    const guint8 *v = dhcp_packet_get(&o->rep, DHCP_OPT_VENDOR, &len);
    static const guint8 want[] = {
        6,    1,   7,                                  /* unicast to the list */
        8,    7,   0x80, 0x00, 1,    192, 0,   2,   1, /* type 0x8000: us */
        8,    7,   0x80, 0x01, 1,    192, 0,   2,   1, /* type 0x8001: us */
        9,    38,  0x80, 0x00, 12,   'N', 'e', 't', 'w', 'o', 'r', 'k', ' ', 'b',
        'o',  'o', 't',  0x80, 0x01, 7,   'I', 'n', 's', 't', 'a', 'l', 'l', 0x00,
        0x00, 10,  'L',  'o',  'c',  'a', 'l', ' ', 'd', 'i', 's', 'k', 10,  27,
        2,    'P', 'r',  'e',  's',  's', ' ', 'F', '8', ' ', 'f', 'o', 'r', ' ',
        't',  'h', 'e',  ' ',  'b',  'o', 'o', 't', ' ', 'm', 'e', 'n', 'u', 255};
    g_assert_cmpmem(v, len, want, sizeof want);
    /* Small enough for any client: under the RFC 2132 minimum maximum. */
    g_assert_cmpuint(o->plan.len, <=, 576);
}

static void test_menu_timeouts(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    guint timeouts[] = {0, 255, 10};
    for (gsize i = 0; i < G_N_ELEMENTS(timeouts); i++) {
        cfg->menu_timeout = timeouts[i];
        Req r = {.msg_type = DHCP_DISCOVER,
                 .arch93 = 0,
                 .vc = "PXEClient:Arch:00000:UNDI:002001",
                 .item_type = -1};
        g_autofree DhcpPacket *req = build(&r);
        g_autofree Outcome *o = run(cfg, req, false, 68, NULL);
        gsize len;
        const guint8 *v = dhcp_packet_get(&o->rep, DHCP_OPT_VENDOR, &len);
        const guint8 *p = v;
        while (p < v + len && *p != 10)
            p += 2 + p[1];
        g_assert_true(p < v + len);
        g_assert_cmpuint(p[2], ==, timeouts[i]);
    }
}

/* OVMF's real DISCOVER, under the default UEFI profile (BINL): no 43 and no file, so EDK2
 * files it as ProxyBinl and asks 4011; then the 4011 REQUEST gets the file. */
static void test_uefi_binl(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    g_autofree DhcpPacket *req = load("ovmf-pxe-discover.bin");
    g_autofree Outcome *o = run(cfg, req, false, 68, NULL);
    check_common(o, req, DHCP_OFFER, "PXEClient");
    g_assert_cmpint(o->plan.profile, ==, PD_PROFILE_BINL);
    g_assert_false(dhcp_packet_has(&o->rep, DHCP_OPT_VENDOR));
    g_assert_cmpuint(o->rep.file[0], ==, 0);
    g_assert_cmpint(o->client.undi_major, ==, 3);
    g_assert_cmpint(o->client.undi_minor, ==, 1);
    g_assert_false(o->client.ipxe);

    /* Its lease REQUEST on 67 belongs to the DHCP server. */
    g_autofree DhcpPacket *lease = load("ovmf-pxe-request.bin");
    g_autofree Outcome *l = run(cfg, lease, false, 68, NULL);
    g_assert_false(l->answered);
    g_assert_nonnull(strstr(l->why, "DHCP server"));

    /* The BINL REQUEST to 4011, from 4011 (EDK2 listens there). */
    Req r = {.msg_type = DHCP_REQUEST,
             .arch93 = 7,
             .vc = "PXEClient:Arch:00007:UNDI:003001",
             .uuid = true,
             .ciaddr = {192, 0, 2, 77},
             .item_type = -1};
    g_autofree DhcpPacket *binl = build(&r);
    g_autofree Outcome *a = run(cfg, binl, true, 4011, NULL);
    check_common(a, binl, DHCP_ACK, "PXEClient");
    static const guint8 client[4] = {192, 0, 2, 77};
    check_dest(a, client, 4011, false);
    g_assert_cmpstr((const char *)a->rep.file, ==, "bootx64.efi");
    g_assert_false(dhcp_packet_has(&a->rep, DHCP_OPT_VENDOR));
}

/* Architecture -> file: 7 and 9 are both x64; 6 IA32; 11 ARM64; no 93 falls back to
 * option 60's Arch field, and with neither the client is a PXE 2.0 BIOS. */
static void test_arch_files(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    for (int i = 0; i < PXE_ARCH_CLASS_N; i++)
        cfg->profile[i] = PD_PROFILE_DIRECT;
    struct {
        int a93;
        const char *vc;
        const char *file;
        int arch, src;
    } cases[] = {
        {7, "PXEClient:Arch:00007:UNDI:003016", "bootx64.efi", 7, 93},
        {9, "PXEClient:Arch:00009:UNDI:003016", "bootx64.efi", 9, 93},
        {6, "PXEClient:Arch:00006:UNDI:003016", "bootia32.efi", 6, 93},
        {11, "PXEClient:Arch:00011:UNDI:003016", "bootaa64.efi", 11, 93},
        {0, "PXEClient:Arch:00000:UNDI:002001", "nvlnbp.sys", 0, 93},
        {-1, "PXEClient:Arch:00007:UNDI:003016", "bootx64.efi", 7, 60},
        {-1, "PXEClient:Arch:00011", "bootaa64.efi", 11, 60},
        {-1, "PXEClient", "nvlnbp.sys", -1, 0},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        Req r = {.msg_type = DHCP_DISCOVER,
                 .arch93 = cases[i].a93,
                 .vc = cases[i].vc,
                 .uuid = i % 2 == 0,
                 .item_type = -1};
        g_autofree DhcpPacket *req = build(&r);
        g_autofree Outcome *o = run(cfg, req, false, 68, NULL);
        check_common(o, req, DHCP_OFFER, "PXEClient");
        g_assert_cmpstr((const char *)o->rep.file, ==, cases[i].file);
        g_assert_cmpint(o->client.arch, ==, cases[i].arch);
        g_assert_cmpint(o->client.arch_source, ==, cases[i].src);
        gsize len;
        const guint8 *v = dhcp_packet_get(&o->rep, DHCP_OPT_VENDOR, &len);
        static const guint8 direct[] = {6, 1, 8, 255};
        g_assert_cmpmem(v, len, direct, sizeof direct);
    }
    /* A malformed option 93 (odd length) is ignored in favour of option 60. */
    guint8 buf[600];
    DhcpWriter w;
    static const guint8 mac[16] = {2};
    dhcp_writer_init(&w, buf, sizeof buf);
    dhcp_writer_header(&w, DHCP_BOOTREQUEST, 1, 6, 5, 0, mac);
    dhcp_writer_option_u8(&w, DHCP_OPT_MSG_TYPE, DHCP_DISCOVER);
    dhcp_writer_option(&w, DHCP_OPT_CLIENT_ARCH, "\x00\x07\x00", 3);
    dhcp_writer_option(&w, DHCP_OPT_VENDOR_CLASS, "PXEClient:Arch:00011:UNDI:003016", 32);
    gsize n = dhcp_writer_finish(&w);
    g_autofree DhcpPacket *bad = g_new(DhcpPacket, 1);
    g_assert_cmpint(dhcp_packet_parse(buf, n, bad), ==, DHCP_PARSE_OK);
    g_autofree Outcome *o = run(cfg, bad, false, 68, NULL);
    g_assert_cmpstr((const char *)o->rep.file, ==, "bootaa64.efi");
    g_assert_cmpint(o->client.arch_source, ==, 60);

    /* An architecture we have no file for is ignored, with the reason. */
    Req r = {.msg_type = DHCP_DISCOVER, .arch93 = 2, .vc = "PXEClient:Arch:00002", .item_type = -1};
    g_autofree DhcpPacket *ia64 = build(&r);
    g_autofree Outcome *u = run(cfg, ia64, false, 68, NULL);
    g_assert_false(u->answered);
    g_assert_nonnull(strstr(u->why, "no boot file"));
}

static void test_http_boot(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    Req r = {.msg_type = DHCP_DISCOVER,
             .arch93 = 16,
             .vc = "HTTPClient:Arch:00016:UNDI:003001",
             .uuid = true,
             .item_type = -1};
    g_autofree DhcpPacket *req = build(&r);
    g_autofree Outcome *o = run(cfg, req, false, 68, NULL);
    check_common(o, req, DHCP_OFFER, "HTTPClient");
    g_assert_true(o->client.http);
    g_assert_cmpstr((const char *)o->rep.file, ==, "http://192.0.2.1/boot/bootx64.efi");
    g_assert_false(dhcp_packet_has(&o->rep, DHCP_OPT_VENDOR));

    /* OVMF's real HTTP boot DISCOVER. */
    g_autofree DhcpPacket *ovmf = load("ovmf-http-discover.bin");
    g_autofree Outcome *oh = run(cfg, ovmf, false, 68, NULL);
    check_common(oh, ovmf, DHCP_OFFER, "HTTPClient");
    g_assert_cmpint(oh->client.arch, ==, 16);
    g_assert_true(oh->client.http);
    g_assert_false(oh->client.ipxe);
    g_assert_cmpstr((const char *)oh->rep.file, ==, "http://192.0.2.1/boot/bootx64.efi");
    g_assert_false(dhcp_packet_has(&oh->rep, DHCP_OPT_VENDOR));

    /* ARM64 HTTP (19) gets the URL too; without a URL set HTTP clients are ignored. */
    r.arch93 = 19;
    r.vc = "HTTPClient:Arch:00019:UNDI:003001";
    g_autofree DhcpPacket *arm = build(&r);
    g_free(cfg->http_url);
    cfg->http_url = g_strdup("");
    g_autofree Outcome *n = run(cfg, arm, false, 68, NULL);
    g_assert_false(n->answered);
    g_assert_nonnull(strstr(n->why, "http_boot_url"));
}

static void test_ipxe_next(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    g_free(cfg->ipxe_next);
    cfg->ipxe_next = g_strdup("http://192.0.2.1/boot.ipxe");
    g_autofree DhcpPacket *req = load("ipxe-efi-discover.bin");
    g_autofree Outcome *o = run(cfg, req, false, 68, NULL);
    check_common(o, req, DHCP_OFFER, "PXEClient");
    g_assert_cmpint(o->plan.profile, ==, PD_PROFILE_DIRECT);
    g_assert_cmpstr((const char *)o->rep.file, ==, "http://192.0.2.1/boot.ipxe");

    /* The same firmware before iPXE runs (no 77/175) gets the normal file, whatever the
     * next step for iPXE would be. */
    Req r = {.msg_type = DHCP_DISCOVER,
             .arch93 = 7,
             .vc = "PXEClient:Arch:00007:UNDI:003001",
             .item_type = -1};
    cfg->profile[PXE_ARCH_CLASS_EFI_X64] = PD_PROFILE_DIRECT;
    g_autofree DhcpPacket *plain = build(&r);
    ipxe_auto = "http://192.0.2.1:8080/boot.ipxe";
    g_autofree Outcome *p = run(cfg, plain, false, 68, NULL);
    ipxe_auto = NULL;
    g_assert_cmpstr((const char *)p->rep.file, ==, "bootx64.efi");
    g_assert_false(p->client.ipxe);
}

/* With ipxe_next empty, iPXE gets the plugin's own next step (the policy script on our
 * HTTP listener) instead of the boot file, which would load iPXE again; ipxe_next, when
 * set, and a file named by the policy engine come first (other clients: test_ipxe_next). */
static void test_ipxe_auto(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    g_autofree DhcpPacket *req = load("ipxe-efi-discover.bin");
    g_autofree Outcome *none = run(cfg, req, false, 68, NULL);
    g_assert_cmpstr((const char *)none->rep.file, !=, "http://192.0.2.1:8080/boot.ipxe");

    ipxe_auto = "http://192.0.2.1:8080/boot.ipxe";
    g_autofree Outcome *o = run(cfg, req, false, 68, NULL);
    check_common(o, req, DHCP_OFFER, "PXEClient");
    g_assert_cmpint(o->plan.profile, ==, PD_PROFILE_DIRECT);
    g_assert_cmpstr((const char *)o->rep.file, ==, "http://192.0.2.1:8080/boot.ipxe");

    PdPolicyAnswer pol = {.profile = -1, .boot_file = "from-policy.efi"};
    g_autofree Outcome *p = run(cfg, req, false, 68, &pol);
    g_assert_cmpstr((const char *)p->rep.file, ==, "from-policy.efi");

    g_free(cfg->ipxe_next);
    cfg->ipxe_next = g_strdup("configured.ipxe");
    g_autofree Outcome *c = run(cfg, req, false, 68, NULL);
    g_assert_cmpstr((const char *)c->rep.file, ==, "configured.ipxe");
    ipxe_auto = NULL;
}

/* RFC 2131 section 4.1 reply addressing. */
static void test_addressing(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    Req r = {.msg_type = DHCP_DISCOVER,
             .arch93 = 0,
             .vc = "PXEClient:Arch:00000:UNDI:002001",
             .giaddr = {198, 51, 100, 1},
             .broadcast = true,
             .item_type = -1};
    g_autofree DhcpPacket *relayed = build(&r);
    g_autofree Outcome *o = run(cfg, relayed, false, 67, NULL);
    check_common(o, relayed, DHCP_OFFER, "PXEClient");
    check_dest(o, r.giaddr, 67, false);
    g_assert_cmpuint(o->rep.flags & DHCP_FLAG_BROADCAST, ==, DHCP_FLAG_BROADCAST);

    Req c = {.msg_type = DHCP_DISCOVER,
             .arch93 = 0,
             .vc = "PXEClient",
             .ciaddr = {10, 1, 1, 5},
             .item_type = -1};
    g_autofree DhcpPacket *with_ci = build(&c);
    g_autofree Outcome *oc = run(cfg, with_ci, false, 68, NULL);
    check_dest(oc, c.ciaddr, 68, false);

    /* 4011 replies go back to the source port: 68 (old ROMs, iPXE) or 4011 (EDK2). */
    static const guint8 src[4] = {192, 0, 2, 77};
    Req q = {.msg_type = DHCP_REQUEST,
             .arch93 = 0,
             .vc = "PXEClient:Arch:00000:UNDI:002001",
             .ciaddr = {192, 0, 2, 77},
             .item_type = 0x8000};
    g_autofree DhcpPacket *item = build(&q);
    g_autofree Outcome *a68 = run(cfg, item, true, 68, NULL);
    check_dest(a68, src, 68, false);
    g_autofree Outcome *a4011 = run(cfg, item, true, 4011, NULL);
    check_dest(a4011, src, 4011, false);
}

static void test_boot_items(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    pd_config_add_menu(cfg, "Install=install.0", NULL);
    pd_config_add_menu(cfg, "Local=local", NULL);
    struct {
        int type, layer;
        const char *file; /* NULL: ignored */
    } cases[] = {
        {0x8000, 0, "nvlnbp.sys"}, {0x8001, 0, "install.0"},
        {0, 0, "nvlnbp.sys"},      {0x8002, 0, NULL},
        {0x8003, 0, NULL},         {0x8000, 1, NULL},
        {0x8000, 0x8000, NULL},    {5, 0, NULL},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        Req r = {.msg_type = DHCP_REQUEST,
                 .arch93 = 0,
                 .vc = "PXEClient:Arch:00000:UNDI:002001",
                 .uuid = true,
                 .ciaddr = {192, 0, 2, 77},
                 .item_type = cases[i].type,
                 .item_layer = cases[i].layer};
        g_autofree DhcpPacket *req = build(&r);
        g_autofree Outcome *o = run(cfg, req, true, 4011, NULL);
        if (cases[i].file == NULL) {
            g_assert_false(o->answered);
            g_assert_nonnull(o->why);
            continue;
        }
        check_common(o, req, DHCP_ACK, "PXEClient");
        g_assert_cmpstr((const char *)o->rep.file, ==, cases[i].file);
        gsize len;
        const guint8 *v = dhcp_packet_get(&o->rep, DHCP_OPT_VENDOR, &len);
        guint8 want[] = {71, 4, (guint8)(cases[i].type >> 8), (guint8)cases[i].type, 0, 0, 255};
        g_assert_cmpmem(v, len, want, sizeof want);
    }
    /* Broadcast discovery: a REQUEST with 43.71 on port 67 is ours too. */
    Req b = {.msg_type = DHCP_REQUEST, .arch93 = 0, .vc = "PXEClient", .item_type = 0x8001};
    g_autofree DhcpPacket *bq = build(&b);
    g_autofree Outcome *bo = run(cfg, bq, false, 68, NULL);
    check_common(bo, bq, DHCP_ACK, "PXEClient");
    check_dest(bo, BCAST, 68, true);
    g_assert_cmpstr((const char *)bo->rep.file, ==, "install.0");
}

/* A 4011 REQUEST without 43.71 (LocalDHCPFlag = 1, iPXE's ProxyDHCP request) gets the
 * profile's answer as an ACK: the menu for BIOS. */
static void test_pxe_port_profile_ack(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    Req r = {.msg_type = DHCP_REQUEST,
             .arch93 = 0,
             .vc = "PXEClient:Arch:00000:UNDI:002001",
             .ciaddr = {192, 0, 2, 77},
             .item_type = -1};
    g_autofree DhcpPacket *req = build(&r);
    g_autofree Outcome *o = run(cfg, req, true, 68, NULL);
    check_common(o, req, DHCP_ACK, "PXEClient");
    g_assert_cmpint(o->plan.profile, ==, PD_PROFILE_MENU);
    gsize len;
    const guint8 *v = dhcp_packet_get(&o->rep, DHCP_OPT_VENDOR, &len);
    g_assert_nonnull(v);
    g_assert_cmpuint(v[0], ==, 6);

    /* INFORM is accepted on 4011; DISCOVER is not. */
    r.msg_type = DHCP_INFORM;
    g_autofree DhcpPacket *inf = build(&r);
    g_autofree Outcome *oi = run(cfg, inf, true, 68, NULL);
    g_assert_true(oi->answered);
    r.msg_type = DHCP_DISCOVER;
    g_autofree DhcpPacket *disc = build(&r);
    g_autofree Outcome *od = run(cfg, disc, true, 68, NULL);
    g_assert_false(od->answered);
}

static void test_ignored(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    Req plain = {.msg_type = DHCP_DISCOVER, .arch93 = -1, .vc = NULL, .item_type = -1};
    g_autofree DhcpPacket *p = build(&plain);
    g_autofree Outcome *o = run(cfg, p, false, 68, NULL);
    g_assert_false(o->answered);
    g_assert_nonnull(strstr(o->why, "option 60"));
    Req msft = {.msg_type = DHCP_DISCOVER, .arch93 = -1, .vc = "MSFT 5.0", .item_type = -1};
    g_autofree DhcpPacket *m = build(&msft);
    g_autofree Outcome *om = run(cfg, m, false, 68, NULL);
    g_assert_false(om->answered);
    g_assert_nonnull(strstr(om->why, "PXEClient"));
    Req rel = {.msg_type = DHCP_RELEASE, .arch93 = 0, .vc = "PXEClient", .item_type = -1};
    g_autofree DhcpPacket *r = build(&rel);
    g_autofree Outcome *orl = run(cfg, r, false, 68, NULL);
    g_assert_false(orl->answered);
    /* Replies we see (our own broadcast offer, another proxy's) are not requests. */
    g_autofree DhcpPacket *own = load("ipxe-bios-discover.bin");
    own->op = DHCP_BOOTREPLY;
    g_autofree Outcome *oo = run(cfg, own, false, 68, NULL);
    g_assert_false(oo->answered);
    g_assert_cmpstr(oo->why, ==, "not a BOOTREQUEST");
}

static void test_rules_and_policy(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    g_autoptr(GError) error = NULL;
    g_assert_true(pd_config_add_rule(cfg, "mac 52-54-00-AB-CD-EF direct", &error));
    g_assert_true(pd_config_add_rule(cfg, "arch 7 menu", &error));
    g_assert_true(pd_config_add_rule(cfg, "vendor PXEClient:Arch:00006 direct", &error));
    g_assert_false(pd_config_add_rule(cfg, "mac 52:54:00:ab:cd:ef", &error));
    g_clear_error(&error);
    g_assert_false(pd_config_add_rule(cfg, "serial 1 menu", &error));
    g_clear_error(&error);
    g_assert_false(pd_config_add_rule(cfg, "arch x64 menu", &error));
    g_clear_error(&error);
    g_assert_false(pd_config_add_rule(cfg, "arch 7 fancy", &error));
    g_clear_error(&error);
    g_assert_false(pd_config_add_menu(cfg, "no equals sign", &error));
    g_clear_error(&error);

    Req r = {.msg_type = DHCP_DISCOVER,
             .arch93 = 0,
             .vc = "PXEClient:Arch:00000:UNDI:002001",
             .item_type = -1};
    g_autofree DhcpPacket *bios = build(&r); /* MAC 52:54:00:ab:cd:ef */
    g_autofree Outcome *o = run(cfg, bios, false, 68, NULL);
    g_assert_cmpint(o->plan.profile, ==, PD_PROFILE_DIRECT);
    g_autofree DhcpPacket *ovmf = load("ovmf-pxe-discover.bin");
    g_autofree Outcome *o7 = run(cfg, ovmf, false, 68, NULL);
    g_assert_cmpint(o7->plan.profile, ==, PD_PROFILE_MENU);

    PdPolicyAnswer pol = {.ignore = false, .profile = PD_PROFILE_BINL, .boot_file = "special.0"};
    g_autofree Outcome *op = run(cfg, bios, false, 68, &pol);
    g_assert_cmpint(op->plan.profile, ==, PD_PROFILE_BINL);
    r.msg_type = DHCP_REQUEST;
    r.ciaddr[0] = 10;
    g_autofree DhcpPacket *binl = build(&r);
    g_autofree Outcome *ob = run(cfg, binl, true, 4011, &pol);
    g_assert_cmpstr((const char *)ob->rep.file, ==, "special.0");
    pol.ignore = true;
    g_autofree Outcome *oi = run(cfg, bios, false, 68, &pol);
    g_assert_false(oi->answered);
    g_assert_nonnull(strstr(oi->why, "policy"));
}

/* Option 57 is honoured, and a menu too big for it is refused rather than cut. */
static void test_max_message(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    g_free(cfg->menu_prompt);
    cfg->menu_prompt = g_strnfill(200, 'P');
    for (int i = 0; i < 5; i++) {
        g_autofree char *e = g_strdup_printf("A rather long menu entry number %02d=file%d", i, i);
        g_assert_true(pd_config_add_menu(cfg, e, NULL));
    }
    Req r = {
        .msg_type = DHCP_DISCOVER, .arch93 = 0, .vc = "PXEClient", .item_type = -1, .max_msg = 576};
    g_autofree DhcpPacket *small = build(&r);
    g_autofree Outcome *o = run(cfg, small, false, 68, NULL);
    g_assert_false(o->answered);
    g_assert_nonnull(strstr(o->why, "maximum message size"));
    r.max_msg = 1500;
    g_autofree DhcpPacket *large = build(&r);
    g_autofree Outcome *ol = run(cfg, large, false, 68, NULL);
    g_assert_true(ol->answered);
    g_assert_cmpuint(ol->plan.len, >, 576);
    g_assert_cmpuint(ol->plan.len, <=, 1024);
}

/* Real 4011 requests recorded in the end-to-end test: each gets an ACK to its source. */
static void test_real_4011(void)
{
    g_autoptr(PdConfig) cfg = make_config();
    static const guint8 src[4] = {192, 0, 2, 77};

    g_autofree DhcpPacket *bs = load("ipxe-bios-pxebs-4011.bin");
    g_autofree Outcome *o = run(cfg, bs, true, 68, NULL);
    check_common(o, bs, DHCP_ACK, "PXEClient");
    check_dest(o, src, 68, false);
    g_assert_true(o->client.vendor.has_boot_item);
    g_assert_cmpstr((const char *)o->rep.file, ==, "nvlnbp.sys");
    gsize len;
    const guint8 *v = dhcp_packet_get(&o->rep, DHCP_OPT_VENDOR, &len);
    static const guint8 item[] = {71, 4, 0x80, 0x00, 0, 0, 255};
    g_assert_cmpmem(v, len, item, sizeof item);

    g_autofree DhcpPacket *efi = load("ipxe-efi-proxy-4011.bin");
    g_autofree Outcome *e = run(cfg, efi, true, 68, NULL);
    check_common(e, efi, DHCP_ACK, "PXEClient");
    g_assert_cmpint(e->plan.profile, ==, PD_PROFILE_BINL);
    g_assert_cmpstr((const char *)e->rep.file, ==, "bootx64.efi");
    g_assert_false(dhcp_packet_has(&e->rep, DHCP_OPT_VENDOR));

    g_autofree DhcpPacket *px = load("ipxe-bios-proxy-4011.bin");
    g_autofree Outcome *m = run(cfg, px, true, 68, NULL);
    check_common(m, px, DHCP_ACK, "PXEClient");
    g_assert_cmpint(m->plan.profile, ==, PD_PROFILE_MENU);
    v = dhcp_packet_get(&m->rep, DHCP_OPT_VENDOR, &len);
    g_assert_nonnull(v);
    g_assert_cmpuint(v[0], ==, PXE_SUB_DISCOVERY_CONTROL);
}

static PbIfAddr ifa(guint32 ifindex, const char *text, guint8 prefix, guint flags)
{
    PbIfAddr e = {.ifindex = ifindex, .prefix = prefix, .flags = flags};
    g_assert_true(pb_addr_parse(text, 0, &e.addr));
    return e;
}

static void expect_server(const DhcpPacket *req, const PdArrival *in, PdServerAddrResult want,
                          const char *addr)
{
    guint8 out[4];
    g_assert_cmpint(pd_choose_server_addr(req, in, out), ==, want);
    if (addr != NULL) {
        PbAddr a;
        g_assert_true(pb_addr_parse(addr, 0, &a));
        g_assert_cmpmem(out, 4, a.addr, 4);
    }
}

/* The address we name as the boot server (siaddr, option 54), by how the request arrived. */
static void test_server_addr(void)
{
    g_autoptr(GArray) host = g_array_new(FALSE, TRUE, sizeof(PbIfAddr));
    PbIfAddr all[] = {
        ifa(1, "127.0.0.1", 8, PB_IFADDR_UP | PB_IFADDR_LOOPBACK),
        ifa(2, "10.1.0.5", 16, PB_IFADDR_UP),
        ifa(2, "192.168.7.1", 24, PB_IFADDR_UP),
        ifa(3, "172.20.0.9", 24, PB_IFADDR_UP),
    };
    g_array_append_vals(host, all, G_N_ELEMENTS(all));
    Req r = {.msg_type = DHCP_DISCOVER, .arch93 = 0, .vc = "PXEClient", .item_type = -1};
    DhcpPacket *req = build(&r);
    PdArrival in = {.ifindex = 2, .ifaddrs = host};

    /* A broadcast: the receiving interface's first address... */
    g_assert_true(pb_addr_parse("255.255.255.255", 67, &in.local));
    expect_server(req, &in, PD_SERVER_ADDR_OK, "10.1.0.5");
    /* ...or the one on the relay's subnet, and else on the client's. */
    g_free(req);
    Req relayed = r;
    memcpy(relayed.giaddr, (guint8[]){192, 168, 7, 254}, 4);
    memcpy(relayed.ciaddr, (guint8[]){10, 1, 9, 9}, 4);
    req = build(&relayed);
    expect_server(req, &in, PD_SERVER_ADDR_OK, "192.168.7.1");
    g_free(req);
    Req renewing = r;
    memcpy(renewing.ciaddr, (guint8[]){192, 168, 7, 50}, 4);
    req = build(&renewing);
    expect_server(req, &in, PD_SERVER_ADDR_OK, "192.168.7.1");

    /* A unicast request names us itself. */
    g_assert_true(pb_addr_parse("172.20.0.9", 4011, &in.local));
    expect_server(req, &in, PD_SERVER_ADDR_OK, "172.20.0.9");

    /* An interface without IPv4, or an unknown one: the host's first non-loopback. */
    memset(&in.local, 0, sizeof in.local);
    in.ifindex = 7;
    expect_server(req, &in, PD_SERVER_ADDR_OK, "10.1.0.5");
    in.ifindex = 0;
    expect_server(req, &in, PD_SERVER_ADDR_OK, "10.1.0.5");
    g_autoptr(GArray) lonely = g_array_new(FALSE, TRUE, sizeof(PbIfAddr));
    g_array_append_val(lonely, all[0]);
    in.ifaddrs = lonely;
    expect_server(req, &in, PD_SERVER_ADDR_NONE, NULL);
    in.ifaddrs = host;

    /* LocalInterface: named whatever the request's destination, but only for requests that
     * came in on the interface that holds it (or were sent to it). */
    static const guint8 lif[4] = {172, 20, 0, 9};
    in.local_if = lif;
    g_assert_true(pb_addr_parse("255.255.255.255", 67, &in.local));
    in.ifindex = 3;
    expect_server(req, &in, PD_SERVER_ADDR_OK, "172.20.0.9");
    in.ifindex = 2;
    expect_server(req, &in, PD_SERVER_ADDR_WRONG_IFACE, NULL);
    g_assert_true(pb_addr_parse("172.20.0.9", 67, &in.local));
    expect_server(req, &in, PD_SERVER_ADDR_OK, "172.20.0.9");
    in.ifindex = 0; /* unknown interface: trusted */
    memset(&in.local, 0, sizeof in.local);
    expect_server(req, &in, PD_SERVER_ADDR_OK, "172.20.0.9");
    g_free(req);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/proxydhcp/bios-menu-offer", test_bios_menu_offer);
    g_test_add_func("/proxydhcp/menu-timeouts", test_menu_timeouts);
    g_test_add_func("/proxydhcp/uefi-binl", test_uefi_binl);
    g_test_add_func("/proxydhcp/arch-files", test_arch_files);
    g_test_add_func("/proxydhcp/http-boot", test_http_boot);
    g_test_add_func("/proxydhcp/ipxe-next", test_ipxe_next);
    g_test_add_func("/proxydhcp/ipxe-auto", test_ipxe_auto);
    g_test_add_func("/proxydhcp/addressing", test_addressing);
    g_test_add_func("/proxydhcp/boot-items", test_boot_items);
    g_test_add_func("/proxydhcp/pxe-port-profile-ack", test_pxe_port_profile_ack);
    g_test_add_func("/proxydhcp/ignored", test_ignored);
    g_test_add_func("/proxydhcp/rules-and-policy", test_rules_and_policy);
    g_test_add_func("/proxydhcp/max-message", test_max_message);
    g_test_add_func("/proxydhcp/real-4011", test_real_4011);
    g_test_add_func("/proxydhcp/server-addr", test_server_addr);
    return g_test_run();
}
