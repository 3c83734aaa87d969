/* test-dhcp-packet.c - DHCP/PXE decoding and encoding, on packets captured from QEMU's
 * iPXE ROM (BIOS and EFI) and OVMF's own PXE stack (tests/data/dhcp/README), on edge
 * cases built by hand, and on the fuzz corpus replayed through the fuzz target. */
#include "dhcp-packet.h"
#include "pxe-options.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const guint8 *data, gsize size);

static GBytes *load_vector(const char *name)
{
    g_autofree char *path = g_test_build_filename(G_TEST_DIST, "tests", "data", "dhcp", name, NULL);
    g_autoptr(GError) error = NULL;
    char *data = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &data, &len, &error))
        g_error("%s: %s", path, error->message);
    return g_bytes_new_take(data, len);
}

static DhcpPacket *parse_vector(const char *name)
{
    g_autoptr(GBytes) b = load_vector(name);
    DhcpPacket *p = g_new(DhcpPacket, 1);
    gsize len;
    const guint8 *d = g_bytes_get_data(b, &len);
    g_assert_cmpint(dhcp_packet_parse(d, len, p), ==, DHCP_PARSE_OK);
    return p;
}

static char *opt_string(const DhcpPacket *p, guint8 code)
{
    gsize len;
    const guint8 *v = dhcp_packet_get(p, code, &len);
    return v ? g_strndup((const char *)v, len) : NULL;
}

static void test_ipxe_bios_discover(void)
{
    g_autofree DhcpPacket *p = parse_vector("ipxe-bios-discover.bin");
    static const guint8 mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    g_assert_cmpuint(p->op, ==, DHCP_BOOTREQUEST);
    g_assert_cmpuint(p->htype, ==, 1);
    g_assert_cmpuint(p->hlen, ==, 6);
    g_assert_cmpmem(p->chaddr, 6, mac, 6);
    g_assert_cmpuint(p->msg_type, ==, DHCP_DISCOVER);
    g_assert_true(p->has_end);
    g_autofree char *vc = opt_string(p, DHCP_OPT_VENDOR_CLASS);
    g_assert_cmpstr(vc, ==, "PXEClient:Arch:00000:UNDI:002001");
    gsize len;
    const guint8 *a = dhcp_packet_get(p, DHCP_OPT_CLIENT_ARCH, &len);
    g_assert_cmpint(pxe_parse_client_arch(a, len), ==, PXE_ARCH_X86_BIOS);
    g_assert_true(pxe_is_ipxe(p));
    g_assert_nonnull(dhcp_packet_get(p, DHCP_OPT_CLIENT_UUID, &len));
    g_assert_cmpuint(len, ==, 17);
    const guint8 *mm = dhcp_packet_get(p, DHCP_OPT_MAX_MSG_SIZE, &len);
    g_assert_cmpuint(len, ==, 2);
    g_assert_cmpuint(mm[0] << 8 | mm[1], >=, 576);
    PxeVendorClass v;
    pxe_parse_vendor_class((const guint8 *)vc, strlen(vc), &v);
    g_assert_cmpint(v.kind, ==, PXE_VC_PXE);
    g_assert_cmpint(v.arch, ==, 0);
    g_assert_cmpint(v.undi_major, ==, 2);
    g_assert_cmpint(v.undi_minor, ==, 1);
}

static void test_ovmf_discover(void)
{
    g_autofree DhcpPacket *p = parse_vector("ovmf-pxe-discover.bin");
    g_assert_cmpuint(p->msg_type, ==, DHCP_DISCOVER);
    g_autofree char *vc = opt_string(p, DHCP_OPT_VENDOR_CLASS);
    g_assert_cmpstr(vc, ==, "PXEClient:Arch:00007:UNDI:003001");
    gsize len;
    const guint8 *a = dhcp_packet_get(p, DHCP_OPT_CLIENT_ARCH, &len);
    g_assert_cmpint(pxe_parse_client_arch(a, len), ==, PXE_ARCH_X64_EFI);
    /* EDK2's own stack is not iPXE, even when iPXE's driver provides the NIC below it. */
    g_assert_false(pxe_is_ipxe(p));
    const guint8 *nii = dhcp_packet_get(p, DHCP_OPT_CLIENT_NDI, &len);
    g_assert_cmpuint(len, ==, 3);
    g_assert_cmpuint(nii[0], ==, 1);
    g_assert_cmpuint(nii[1], ==, 3);
    g_assert_cmpuint(nii[2], ==, 1);
    const guint8 *uuid = dhcp_packet_get(p, DHCP_OPT_CLIENT_UUID, &len);
    g_assert_cmpuint(len, ==, 17);
    g_assert_cmpuint(uuid[0], ==, 0);
}

static void test_requests(void)
{
    const char *names[] = {"ipxe-bios-request.bin", "ipxe-efi-request.bin", "ovmf-pxe-request.bin"};
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree DhcpPacket *p = parse_vector(names[i]);
        g_assert_cmpuint(p->msg_type, ==, DHCP_REQUEST);
        gsize len;
        /* A lease REQUEST names the DHCP server it chose (RFC 2131 section 4.3.2). */
        g_assert_nonnull(dhcp_packet_get(p, DHCP_OPT_SERVER_ID, &len));
        g_assert_cmpuint(len, ==, 4);
        g_assert_false(dhcp_packet_has(p, DHCP_OPT_VENDOR));
    }
    g_autofree DhcpPacket *e = parse_vector("ipxe-efi-discover.bin");
    gsize len;
    const guint8 *a = dhcp_packet_get(e, DHCP_OPT_CLIENT_ARCH, &len);
    g_assert_cmpint(pxe_parse_client_arch(a, len), ==, PXE_ARCH_X64_EFI);
    g_assert_true(pxe_is_ipxe(e));
}

/* Every prefix of a real packet parses or is refused with a reason; none reads past it. */
static void test_truncation(void)
{
    g_autoptr(GBytes) b = load_vector("ovmf-pxe-discover.bin");
    gsize len;
    const guint8 *d = g_bytes_get_data(b, &len);
    g_autofree DhcpPacket *p = g_new(DhcpPacket, 1);
    for (gsize n = 0; n < len; n++) {
        guint8 *copy = g_memdup2(d, n); /* exact size, so ASan sees any over-read */
        DhcpParseResult r = dhcp_packet_parse(copy, n, p);
        if (n < DHCP_MIN_LEN)
            g_assert_cmpint(r, ==, DHCP_PARSE_SHORT);
        else
            g_assert_true(r == DHCP_PARSE_OK || r == DHCP_PARSE_TRUNCATED);
        g_free(copy);
    }
    /* Cut inside option 60's value: truncated, not silently accepted. */
    const guint8 *vc = NULL;
    for (gsize i = 0; i + 9 <= len && vc == NULL; i++)
        if (memcmp(d + i, "PXEClient", 9) == 0)
            vc = d + i;
    g_assert_nonnull(vc);
    g_assert_cmpint(dhcp_packet_parse(d, (gsize)(vc - d) + 4, p), ==, DHCP_PARSE_TRUNCATED);
}

static gsize build_base(guint8 *buf, gsize cap)
{
    DhcpWriter w;
    static const guint8 mac[16] = {0x52, 0x54, 0, 1, 2, 3};
    dhcp_writer_init(&w, buf, cap);
    dhcp_writer_header(&w, DHCP_BOOTREQUEST, 1, 6, 0x11223344, 0, mac);
    dhcp_writer_option_u8(&w, DHCP_OPT_MSG_TYPE, DHCP_DISCOVER);
    return w.len;
}

static void test_refusals(void)
{
    guint8 buf[600];
    g_autofree DhcpPacket *p = g_new(DhcpPacket, 1);
    gsize n = build_base(buf, sizeof buf);
    buf[n++] = DHCP_OPT_END;
    g_assert_cmpint(dhcp_packet_parse(buf, n, p), ==, DHCP_PARSE_OK);
    g_assert_cmpuint(p->msg_type, ==, DHCP_DISCOVER);

    buf[DHCP_FIXED_LEN] ^= 1;
    g_assert_cmpint(dhcp_packet_parse(buf, n, p), ==, DHCP_PARSE_MAGIC);
    buf[DHCP_FIXED_LEN] ^= 1;
    buf[2] = 17;
    g_assert_cmpint(dhcp_packet_parse(buf, n, p), ==, DHCP_PARSE_HLEN);
    buf[2] = 6;
    g_autofree guint8 *big = g_malloc0(DHCP_MAX_LEN + 1);
    memcpy(big, buf, n);
    g_assert_cmpint(dhcp_packet_parse(big, DHCP_MAX_LEN + 1, p), ==, DHCP_PARSE_LONG);
    g_assert_cmpint(dhcp_packet_parse(big, DHCP_MAX_LEN, p), ==, DHCP_PARSE_OK);
    g_assert_cmpstr(dhcp_parse_result_str(DHCP_PARSE_MAGIC), !=, "?");

    /* A missing END is tolerated (some ROMs pad with zeros instead) but noted. */
    n = build_base(buf, sizeof buf);
    g_assert_cmpint(dhcp_packet_parse(buf, n, p), ==, DHCP_PARSE_OK);
    g_assert_false(p->has_end);
    /* A length byte with nothing after it. */
    buf[n] = DHCP_OPT_VENDOR_CLASS;
    g_assert_cmpint(dhcp_packet_parse(buf, n + 1, p), ==, DHCP_PARSE_TRUNCATED);
}

/* RFC 3396: instances of a code concatenate; RFC 2131 4.1: option 52 moves options into
 * file (1), sname (2) or both, read after the options field, file before sname. */
static void test_overload_and_concat(void)
{
    guint8 buf[600];
    g_autofree DhcpPacket *p = g_new(DhcpPacket, 1);
    gsize n = build_base(buf, sizeof buf);
    const guint8 rest[] = {
        DHCP_OPT_VENDOR, 2, 'a', 'b',         DHCP_OPT_OVERLOAD, 1, 3, DHCP_OPT_HOSTNAME, 1, 'h',
        DHCP_OPT_VENDOR, 1, 'c', DHCP_OPT_END};
    memcpy(buf + n, rest, sizeof rest);
    n += sizeof rest;
    const guint8 in_file[] = {DHCP_OPT_VENDOR, 2, 'd', 'e', DHCP_OPT_END};
    memcpy(buf + DHCP_OFF_FILE, in_file, sizeof in_file);
    const guint8 in_sname[] = {DHCP_OPT_PAD, DHCP_OPT_VENDOR, 1, 'f', DHCP_OPT_HOSTNAME, 1,
                               'i',          DHCP_OPT_END};
    memcpy(buf + DHCP_OFF_SNAME, in_sname, sizeof in_sname);
    g_assert_cmpint(dhcp_packet_parse(buf, n, p), ==, DHCP_PARSE_OK);
    g_assert_true(p->file_overloaded);
    g_assert_true(p->sname_overloaded);
    g_autofree char *v = opt_string(p, DHCP_OPT_VENDOR);
    g_assert_cmpstr(v, ==, "abcdef");
    g_autofree char *h = opt_string(p, DHCP_OPT_HOSTNAME);
    g_assert_cmpstr(h, ==, "hi");
    g_assert_cmpuint(p->msg_type, ==, DHCP_DISCOVER);

    /* Overload value 1: sname stays a name, not options. */
    buf[n - 10 + 0] = DHCP_OPT_OVERLOAD; /* unchanged, keeps the layout readable */
    guint8 *ov = memchr(buf + DHCP_MIN_LEN, DHCP_OPT_OVERLOAD, n - DHCP_MIN_LEN);
    ov[2] = 1;
    g_assert_cmpint(dhcp_packet_parse(buf, n, p), ==, DHCP_PARSE_OK);
    g_assert_true(p->file_overloaded);
    g_assert_false(p->sname_overloaded);
    g_autofree char *v2 = opt_string(p, DHCP_OPT_VENDOR);
    g_assert_cmpstr(v2, ==, "abcde");

    /* A broken option inside the overloaded file field is truncation. */
    buf[DHCP_OFF_FILE + 1] = 200;
    g_assert_cmpint(dhcp_packet_parse(buf, n, p), ==, DHCP_PARSE_TRUNCATED);
}

static void test_writer(void)
{
    guint8 buf[1024];
    DhcpWriter w;
    static const guint8 mac[16] = {1, 2, 3, 4, 5, 6};
    dhcp_writer_init(&w, buf, sizeof buf);
    dhcp_writer_header(&w, DHCP_BOOTREPLY, 1, 6, 0xdeadbeef, DHCP_FLAG_BROADCAST, mac);
    g_assert_true(dhcp_writer_set_file(&w, "pxelinux.0"));
    g_autofree char *long_name = g_strnfill(128, 'x');
    g_assert_false(dhcp_writer_set_file(&w, long_name));
    long_name[127] = '\0';
    g_assert_true(dhcp_writer_set_sname(&w, "server"));
    g_assert_true(dhcp_writer_option_u8(&w, DHCP_OPT_MSG_TYPE, DHCP_OFFER));
    guint8 big[300];
    for (gsize i = 0; i < sizeof big; i++)
        big[i] = (guint8)i;
    g_assert_true(dhcp_writer_option(&w, DHCP_OPT_VENDOR, big, sizeof big));
    gsize n = dhcp_writer_finish(&w);
    g_assert_cmpuint(n, ==, DHCP_MIN_LEN + 3 + 2 + 255 + 2 + 45 + 1);

    g_autofree DhcpPacket *p = g_new(DhcpPacket, 1);
    g_assert_cmpint(dhcp_packet_parse(buf, n, p), ==, DHCP_PARSE_OK);
    g_assert_cmpuint(p->op, ==, DHCP_BOOTREPLY);
    g_assert_cmpuint(p->flags, ==, DHCP_FLAG_BROADCAST);
    g_assert_cmpstr((const char *)p->file, ==, "pxelinux.0");
    g_assert_cmpstr((const char *)p->sname, ==, "server");
    gsize len;
    const guint8 *v = dhcp_packet_get(p, DHCP_OPT_VENDOR, &len);
    g_assert_cmpmem(v, len, big, sizeof big);

    /* Short replies are padded to the BOOTP minimum; overflow is refused, not written. */
    dhcp_writer_init(&w, buf, 300);
    dhcp_writer_option_u8(&w, DHCP_OPT_MSG_TYPE, DHCP_ACK);
    g_assert_false(dhcp_writer_option(&w, DHCP_OPT_VENDOR, big, 100));
    g_assert_cmpuint(w.overflow, ==, 1);
    g_assert_cmpuint(dhcp_writer_finish(&w), ==, 300);
    g_assert_cmpuint(buf[DHCP_MIN_LEN + 3], ==, DHCP_OPT_END);
}

static void test_vendor_class(void)
{
    PxeVendorClass v;
#define VC(s) pxe_parse_vendor_class((const guint8 *)(s), strlen(s), &v)
    VC("HTTPClient:Arch:00016:UNDI:003001");
    g_assert_cmpint(v.kind, ==, PXE_VC_HTTP);
    g_assert_cmpint(v.arch, ==, 16);
    VC("PXEClient");
    g_assert_cmpint(v.kind, ==, PXE_VC_PXE);
    g_assert_cmpint(v.arch, ==, -1);
    g_assert_cmpint(v.undi_major, ==, -1);
    VC("PXEClient:Arch:0x007:UNDI:003001");
    g_assert_cmpint(v.kind, ==, PXE_VC_PXE);
    g_assert_cmpint(v.arch, ==, -1);
    VC("PXEClient:Arch:00011");
    g_assert_cmpint(v.arch, ==, 11);
    g_assert_cmpint(v.undi_major, ==, -1);
    VC("PXECLIENT");
    g_assert_cmpint(v.kind, ==, PXE_VC_NONE);
    VC("MSFT 5.0");
    g_assert_cmpint(v.kind, ==, PXE_VC_NONE);
    pxe_parse_vendor_class(NULL, 0, &v);
    g_assert_cmpint(v.kind, ==, PXE_VC_NONE);
#undef VC

    static const guint8 a[] = {0, 7, 0, 6};
    g_assert_cmpint(pxe_parse_client_arch(a, 4), ==, 7);
    g_assert_cmpint(pxe_parse_client_arch(a, 3), ==, -1);
    g_assert_cmpint(pxe_parse_client_arch(a, 0), ==, -1);
    g_assert_cmpint(pxe_arch_class(9), ==, PXE_ARCH_CLASS_EFI_X64);
    g_assert_cmpint(pxe_arch_class(7), ==, PXE_ARCH_CLASS_EFI_X64);
    g_assert_cmpint(pxe_arch_class(6), ==, PXE_ARCH_CLASS_EFI_IA32);
    g_assert_cmpint(pxe_arch_class(11), ==, PXE_ARCH_CLASS_EFI_ARM64);
    g_assert_cmpint(pxe_arch_class(19), ==, PXE_ARCH_CLASS_EFI_ARM64);
    g_assert_cmpint(pxe_arch_class(2), ==, PXE_ARCH_CLASS_UNKNOWN);
    g_assert_true(pxe_arch_is_http(16));
    g_assert_false(pxe_arch_is_http(7));
    g_assert_cmpstr(pxe_arch_class_name(PXE_ARCH_CLASS_EFI_X64), ==, "efi-x64");
}

static void test_vendor_options(void)
{
    guint8 buf[128];
    PxeSubWriter sw;
    static const guint8 srv[4] = {192, 0, 2, 1};
    pxe_sub_init(&sw, buf, sizeof buf);
    pxe_sub_u8(&sw, PXE_SUB_DISCOVERY_CONTROL, 7);
    pxe_sub_boot_server(&sw, 0x8000, srv);
    pxe_sub_menu_begin(&sw);
    pxe_sub_menu_item(&sw, 0x8000, "Net");
    pxe_sub_menu_item(&sw, 0, "Disk");
    pxe_sub_menu_end(&sw);
    pxe_sub_prompt(&sw, 2, "F8");
    gsize n = pxe_sub_finish(&sw);
    static const guint8 want[] = {6,  1,  7,                                /* 43.6 */
                                  8,  7,  0x80, 0,   1,   192, 0,   2,   1, /* 43.8 */
                                  9,  13, 0x80, 0,   3,   'N', 'e', 't',    /* 43.9 */
                                  0,  0,  4,    'D', 'i', 's', 'k',         /* ... */
                                  10, 3,  2,    'F', '8',                   /* 43.10 */
                                  255};
    g_assert_cmpmem(buf, n, want, sizeof want);

    PxeVendorOptions o;
    g_assert_true(pxe_parse_vendor_options(buf, n, &o));
    g_assert_true(o.has_discovery_control);
    g_assert_cmpuint(o.discovery_control, ==, 7);
    g_assert_false(o.has_boot_item);

    static const guint8 item[] = {71, 4, 0x80, 0x01, 0x00, 0x00, 255};
    g_assert_true(pxe_parse_vendor_options(item, sizeof item, &o));
    g_assert_true(o.has_boot_item);
    g_assert_cmpuint(o.item_type, ==, 0x8001);
    g_assert_cmpuint(o.item_layer, ==, 0);
    static const guint8 broken[] = {71, 9, 0x80, 0x01};
    g_assert_false(pxe_parse_vendor_options(broken, sizeof broken, &o));

    /* A builder that runs out of room says so instead of writing a partial option. */
    pxe_sub_init(&sw, buf, 8);
    pxe_sub_prompt(&sw, 2, "a long prompt");
    g_assert_cmpuint(pxe_sub_finish(&sw), ==, 0);
}

/* Replays the fuzz corpus (real captures and crafted edge cases) through the target. */
static void test_fuzz_corpus(void)
{
    g_autofree char *dir =
        g_test_build_filename(G_TEST_DIST, "tests", "fuzz", "corpus-dhcp-packet", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) d = g_dir_open(dir, 0, &error);
    g_assert_no_error(error);
    guint count = 0;
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *data = NULL;
        gsize len;
        g_assert_true(g_file_get_contents(path, &data, &len, NULL));
        g_autofree guint8 *exact = g_memdup2(data, len);
        LLVMFuzzerTestOneInput(exact, len);
        count++;
    }
    g_assert_cmpuint(count, >=, 6);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dhcp-packet/ipxe-bios-discover", test_ipxe_bios_discover);
    g_test_add_func("/dhcp-packet/ovmf-discover", test_ovmf_discover);
    g_test_add_func("/dhcp-packet/requests", test_requests);
    g_test_add_func("/dhcp-packet/truncation", test_truncation);
    g_test_add_func("/dhcp-packet/refusals", test_refusals);
    g_test_add_func("/dhcp-packet/overload-concat", test_overload_and_concat);
    g_test_add_func("/dhcp-packet/writer", test_writer);
    g_test_add_func("/pxe-options/vendor-class", test_vendor_class);
    g_test_add_func("/pxe-options/vendor-options", test_vendor_options);
    g_test_add_func("/dhcp-packet/fuzz-corpus", test_fuzz_corpus);
    return g_test_run();
}
