/* test-tftp-packet.c - the tftp plugin's pure parts: packet parse/build, options
 * negotiation, file-name sanitising, netascii. (The fuzz corpus is replayed by
 * tests/fuzz/replay-tftp-packet.) */
#include "tftp-negotiate.h"
#include "tftp-netascii.h"
#include "tftp-packet.h"
#include "tftp-path.h"

#include <string.h>

#define PKT(s) ((const guint8 *)(s)), (sizeof(s) - 1)

static void test_parse_rrq(void)
{
    TftpPacket p;
    g_assert_cmpint(tftp_packet_parse(PKT("\0\1pxelinux.0\0OcTeT\0BLKSIZE\0001428\0tsize\0000\0"
                                          "x-vendor\0abc\0windowsize\00016\0timeout\0003\0"),
                                      &p),
                    ==, TFTP_PARSE_OK);
    g_assert_cmpint(p.op, ==, TFTP_OP_RRQ);
    g_assert_cmpstr(p.filename, ==, "pxelinux.0");
    g_assert_cmpint(p.mode, ==, TFTP_MODE_OCTET);
    g_assert_true(p.opts.has_blksize);
    g_assert_cmpuint(p.opts.blksize, ==, 1428);
    g_assert_true(p.opts.has_tsize);
    g_assert_cmpuint(p.opts.tsize, ==, 0);
    g_assert_true(p.opts.has_windowsize);
    g_assert_cmpuint(p.opts.windowsize, ==, 16);
    g_assert_true(p.opts.has_timeout);
    g_assert_cmpuint(p.opts.timeout, ==, 3);
    g_assert_cmpuint(p.n_raw, ==, 5);
    g_assert_cmpstr(p.raw[2].name, ==, "x-vendor");
    g_assert_cmpstr(p.raw[2].value, ==, "abc");
}

static void test_parse_request_errors(void)
{
    TftpPacket p;
    g_assert_cmpint(tftp_packet_parse(PKT("\0"), &p), ==, TFTP_PARSE_TOO_SHORT);
    g_assert_cmpint(tftp_packet_parse(PKT("\0\11x\0octet\0"), &p), ==, TFTP_PARSE_BAD_OPCODE);
    g_assert_cmpint(tftp_packet_parse(PKT("\0\1file"), &p), ==, TFTP_PARSE_UNTERMINATED);
    g_assert_cmpint(tftp_packet_parse(PKT("\0\1file\0octet"), &p), ==, TFTP_PARSE_UNTERMINATED);
    g_assert_cmpint(tftp_packet_parse(PKT("\0\1\0octet\0"), &p), ==, TFTP_PARSE_EMPTY_NAME);
    g_assert_cmpint(tftp_packet_parse(PKT("\0\2f\0binary\0"), &p), ==, TFTP_PARSE_BAD_MODE);
    g_assert_cmpint(tftp_packet_parse(PKT("\0\1f\0mail\0"), &p), ==, TFTP_PARSE_OK);
    g_assert_cmpint(p.mode, ==, TFTP_MODE_MAIL);
    /* Padding and a cut-off last option are tolerated (PXE ROMs send both). */
    g_assert_cmpint(tftp_packet_parse(PKT("\0\1f\0netascii\0blksize\000512\0\0\0\0"), &p), ==,
                    TFTP_PARSE_OK);
    g_assert_cmpint(p.mode, ==, TFTP_MODE_NETASCII);
    g_assert_cmpuint(p.opts.blksize, ==, 512);
    g_assert_cmpint(tftp_packet_parse(PKT("\0\1f\0octet\0blksize\0001024"), &p), ==, TFTP_PARSE_OK);
    g_assert_false(p.opts.has_blksize);
}

static void test_parse_option_values(void)
{
    TftpPacket p;
    /* Out-of-range or malformed values count as absent (RFC 2347: ignore). */
    g_assert_cmpint(tftp_packet_parse(PKT("\0\1f\0octet\0blksize\0007\0timeout\0000\0"
                                          "windowsize\00065536\0tsize\0-1\0"),
                                      &p),
                    ==, TFTP_PARSE_OK);
    g_assert_false(p.opts.has_blksize);
    g_assert_false(p.opts.has_timeout);
    g_assert_false(p.opts.has_windowsize);
    g_assert_false(p.opts.has_tsize);
    g_assert_cmpint(tftp_packet_parse(PKT("\0\1f\0octet\0blksize\00065465\0timeout\000256\0"
                                          "blksize\000+8\0tsize\00099999999999999999999\0"),
                                      &p),
                    ==, TFTP_PARSE_OK);
    g_assert_false(p.opts.has_blksize);
    g_assert_false(p.opts.has_timeout);
    g_assert_false(p.opts.has_tsize);
    /* 64-bit sizes; the first of a repeated option wins. */
    g_assert_cmpint(tftp_packet_parse(PKT("\0\2f\0octet\0tsize\00018446744073709551615\0"
                                          "tsize\0005\0blksize\00065464\0"),
                                      &p),
                    ==, TFTP_PARSE_OK);
    g_assert_cmpuint(p.opts.tsize, ==, G_MAXUINT64);
    g_assert_cmpuint(p.opts.blksize, ==, 65464);

    GString *many = g_string_new_len("\0\1f\0octet\0", 10);
    for (int i = 0; i < TFTP_MAX_OPTIONS + 1; i++)
        g_string_append_len(many, "o\0v\0", 4);
    g_assert_cmpint(tftp_packet_parse((const guint8 *)many->str, many->len, &p), ==,
                    TFTP_PARSE_TOO_MANY_OPTIONS);
    g_string_free(many, TRUE);
}

static void test_parse_data_ack_error(void)
{
    TftpPacket p;
    g_assert_cmpint(tftp_packet_parse(PKT("\0\3\1\2hello"), &p), ==, TFTP_PARSE_OK);
    g_assert_cmpint(p.op, ==, TFTP_OP_DATA);
    g_assert_cmpuint(p.block, ==, 0x102);
    g_assert_cmpuint(p.data_len, ==, 5);
    g_assert_cmpmem(p.data, 5, "hello", 5);
    g_assert_cmpint(tftp_packet_parse(PKT("\0\3\0\1"), &p), ==, TFTP_PARSE_OK);
    g_assert_cmpuint(p.data_len, ==, 0);
    g_assert_cmpint(tftp_packet_parse(PKT("\0\4\377\377\0\0"), &p), ==, TFTP_PARSE_OK);
    g_assert_cmpuint(p.block, ==, 65535);
    g_assert_cmpint(tftp_packet_parse(PKT("\0\4\0"), &p), ==, TFTP_PARSE_TOO_SHORT);
    g_assert_cmpint(tftp_packet_parse(PKT("\0\5\0\10tsize probe\0"), &p), ==, TFTP_PARSE_OK);
    g_assert_cmpuint(p.error_code, ==, TFTP_ERR_OPTION);
    g_assert_cmpstr(p.error_msg, ==, "tsize probe");
    g_assert_cmpint(tftp_packet_parse(PKT("\0\5\0\1no nul"), &p), ==, TFTP_PARSE_OK);
    g_assert_null(p.error_msg);
}

static void test_build(void)
{
    guint8 b[600];
    TftpPacket p;
    g_assert_cmpuint(tftp_build_ack(b, sizeof(b), 65535), ==, 4);
    g_assert_cmpmem(b, 4, "\0\4\377\377", 4);
    g_assert_cmpuint(tftp_build_ack(b, 3, 1), ==, 0);
    g_assert_cmpuint(tftp_build_data(b, sizeof(b), 7, "abc", 3), ==, 7);
    g_assert_cmpmem(b, 7, "\0\3\0\7abc", 7);
    g_assert_cmpuint(tftp_build_data(b, 6, 7, "abc", 3), ==, 0);
    gsize n = tftp_build_error(b, sizeof(b), TFTP_ERR_ACCESS, NULL);
    g_assert_cmpint(tftp_packet_parse(b, n, &p), ==, TFTP_PARSE_OK);
    g_assert_cmpuint(p.error_code, ==, 2);
    g_assert_cmpstr(p.error_msg, ==, "Access violation");
    n = tftp_build_error(b, 10, TFTP_ERR_UNDEFINED, "a long message that is cut");
    g_assert_cmpuint(n, ==, 10);
    g_assert_cmpint(b[9], ==, 0);

    TftpOptions o = {.has_blksize = TRUE,
                     .blksize = 1428,
                     .has_tsize = TRUE,
                     .tsize = G_GUINT64_CONSTANT(5000000000),
                     .has_windowsize = TRUE,
                     .windowsize = 16};
    n = tftp_build_oack(b, sizeof(b), &o);
    g_assert_cmpmem(b, n, "\0\6blksize\0001428\0tsize\0005000000000\0windowsize\00016\0",
                    sizeof("\0\6blksize\0001428\0tsize\0005000000000\0windowsize\00016\0") - 1);
    TftpOptions none = {0};
    g_assert_cmpuint(tftp_build_oack(b, sizeof(b), &none), ==, 0);
    g_assert_cmpuint(tftp_build_oack(b, 10, &o), ==, 0);

    n = tftp_build_request(b, sizeof(b), TFTP_OP_WRQ, "dir/f", "octet", &o);
    g_assert_cmpint(tftp_packet_parse(b, n, &p), ==, TFTP_PARSE_OK);
    g_assert_cmpint(p.op, ==, TFTP_OP_WRQ);
    g_assert_cmpstr(p.filename, ==, "dir/f");
    g_assert_cmpuint(p.opts.tsize, ==, G_GUINT64_CONSTANT(5000000000));
    g_assert_cmpuint(p.opts.windowsize, ==, 16);
}

static const TftpLimits default_limits = {.blksize_max = 1428,
                                          .path_mtu = 0,
                                          .timeout_min = 1,
                                          .timeout_max = 60,
                                          .windowsize_max = 64,
                                          .window_bytes_max = 65536,
                                          .upload_max = 1000000,
                                          .refuse = 0};

static void test_negotiate_blksize(void)
{
    TftpOptions a = {.has_blksize = TRUE, .blksize = 65464};
    TftpRequestInfo r = {.mode = TFTP_MODE_OCTET};
    TftpLimits l = default_limits;
    TftpNegotiation n;
    g_assert_cmpint(tftp_negotiate(&a, &r, &l, &n), ==, 0);
    g_assert_cmpuint(n.blksize, ==, 1428); /* clamped to TransferBlockSize */
    g_assert_true(n.oack.has_blksize);
    a.blksize = 600;
    tftp_negotiate(&a, &r, &l, &n);
    g_assert_cmpuint(n.blksize, ==, 600);
    /* The link MTU: 1500 - 20 (IP) - 8 (UDP) - 4 (TFTP). */
    a.blksize = 65464;
    l.blksize_max = 4428;
    l.path_mtu = 1500;
    tftp_negotiate(&a, &r, &l, &n);
    g_assert_cmpuint(n.blksize, ==, 1468);
    l.ipv6 = TRUE;
    tftp_negotiate(&a, &r, &l, &n);
    g_assert_cmpuint(n.blksize, ==, 1448);
    /* No option: 512 and no OACK at all. */
    TftpOptions none = {0};
    tftp_negotiate(&none, &r, &l, &n);
    g_assert_cmpuint(n.blksize, ==, 512);
    g_assert_cmpuint(n.windowsize, ==, 1);
    guint8 b[64];
    g_assert_cmpuint(tftp_build_oack(b, sizeof(b), &n.oack), ==, 0);
    l.refuse = TFTP_REFUSE_BLKSIZE;
    tftp_negotiate(&a, &r, &l, &n);
    g_assert_false(n.oack.has_blksize);
    g_assert_cmpuint(n.blksize, ==, 512);
}

static void test_negotiate_timeout_tsize(void)
{
    TftpOptions a = {.has_timeout = TRUE, .timeout = 61, .has_tsize = TRUE, .tsize = 0};
    TftpRequestInfo r = {
        .mode = TFTP_MODE_OCTET, .size_known = TRUE, .size = G_GUINT64_CONSTANT(6000000000)};
    TftpLimits l = default_limits;
    TftpNegotiation n;
    g_assert_cmpint(tftp_negotiate(&a, &r, &l, &n), ==, 0);
    /* RFC 2349 has no counter-offer for timeout: out of range means left out. */
    g_assert_false(n.oack.has_timeout);
    g_assert_true(n.oack.has_tsize);
    g_assert_cmpuint(n.oack.tsize, ==, G_GUINT64_CONSTANT(6000000000));
    a.timeout = 5;
    tftp_negotiate(&a, &r, &l, &n);
    g_assert_true(n.oack.has_timeout);
    g_assert_cmpuint(n.timeout_s, ==, 5);
    l.timeout_min = 6;
    tftp_negotiate(&a, &r, &l, &n);
    g_assert_false(n.oack.has_timeout);
    /* netascii or unknown size: no tsize in the OACK. */
    r.mode = TFTP_MODE_NETASCII;
    tftp_negotiate(&a, &r, &l, &n);
    g_assert_false(n.oack.has_tsize);
    r.mode = TFTP_MODE_OCTET;
    r.size_known = FALSE;
    tftp_negotiate(&a, &r, &l, &n);
    g_assert_false(n.oack.has_tsize);
    /* WRQ: echo the announced size, refuse what exceeds the upload limit up front. */
    r.is_write = TRUE;
    a.tsize = 1000000;
    g_assert_cmpint(tftp_negotiate(&a, &r, &l, &n), ==, 0);
    g_assert_cmpuint(n.oack.tsize, ==, 1000000);
    a.tsize = 1000001;
    g_assert_cmpint(tftp_negotiate(&a, &r, &l, &n), ==, TFTP_ERR_DISK_FULL);
    l.refuse = TFTP_REFUSE_TSIZE;
    g_assert_cmpint(tftp_negotiate(&a, &r, &l, &n), ==, 0);
    g_assert_false(n.oack.has_tsize);
}

static void test_negotiate_window(void)
{
    TftpOptions a = {
        .has_blksize = TRUE, .blksize = 8192, .has_windowsize = TRUE, .windowsize = 64};
    TftpRequestInfo r = {.mode = TFTP_MODE_OCTET};
    TftpLimits l = default_limits;
    l.blksize_max = 8192;
    TftpNegotiation n;
    tftp_negotiate(&a, &r, &l, &n);
    /* Capped in bytes: 65536 / 8192 = 8 blocks. */
    g_assert_cmpuint(n.windowsize, ==, 8);
    g_assert_cmpuint(n.oack.windowsize, ==, 8);
    l.window_bytes_max = 1 << 20;
    tftp_negotiate(&a, &r, &l, &n);
    g_assert_cmpuint(n.windowsize, ==, 64);
    l.windowsize_max = 16;
    tftp_negotiate(&a, &r, &l, &n);
    g_assert_cmpuint(n.windowsize, ==, 16);
    l.window_bytes_max = 100; /* smaller than a block: still one block */
    tftp_negotiate(&a, &r, &l, &n);
    g_assert_cmpuint(n.windowsize, ==, 1);
    l.window_bytes_max = 0;
    r.mode = TFTP_MODE_NETASCII;
    tftp_negotiate(&a, &r, &l, &n);
    g_assert_cmpuint(n.windowsize, ==, 1);
    l.refuse = TFTP_REFUSE_WINDOWSIZE;
    r.mode = TFTP_MODE_OCTET;
    tftp_negotiate(&a, &r, &l, &n);
    g_assert_false(n.oack.has_windowsize);
    g_assert_cmpuint(n.windowsize, ==, 1);
}

static void test_path(void)
{
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"pxelinux.0", "pxelinux.0"},
        {"boot//x86/./wdsnbp.com", "boot/x86/wdsnbp.com"},
        {"./a/", "a"},
        {"a..b/..c", "a..b/..c"},
        {".hidden", ".hidden"},
        {"%2e%2e/x", "%2e%2e/x"},
    };
    static const char *const bad[] = {
        "/etc/passwd", "..",  "../x",   "a/../../x", "a/..",  "..\\x", "a\\b",
        "\\boot\\x",   "C:x", "c:\\x",  ".../x",     ". ./x", ".. /x", "a/.. ",
        ".",           "./",  "a\x01b", "x\x7f",     "//x",
    };
    char out[64];
    const char *why;
    for (gsize i = 0; i < G_N_ELEMENTS(ok); i++) {
        g_assert_true(tftp_path_sanitize(ok[i].in, out, sizeof(out), &why));
        g_assert_cmpstr(out, ==, ok[i].out);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        why = NULL;
        if (tftp_path_sanitize(bad[i], out, sizeof(out), &why))
            g_error("accepted \"%s\" as \"%s\"", bad[i], out);
        g_assert_nonnull(why);
    }
    g_assert_false(tftp_path_sanitize("abcdefgh/ijklmnop", out, 10, &why));
    g_assert_cmpstr(why, ==, "path too long");
}

static void test_netascii(void)
{
    const char *text = "line1\nline2\r\nbare\rcr\n";
    const char *wire = "line1\r\nline2\r\0\r\nbare\r\0cr\r\n";
    gsize wire_len = 26;
    guint8 enc[64];
    TftpNetasciiEncoder e;
    tftp_netascii_encoder_init(&e);
    gsize used;
    gsize n = tftp_netascii_encode(&e, (const guint8 *)text, strlen(text), &used, enc, 64);
    g_assert_cmpuint(used, ==, strlen(text));
    g_assert_cmpmem(enc, n, wire, wire_len);

    /* Block edges in the middle of a pair: output one byte at a time. */
    tftp_netascii_encoder_init(&e);
    gsize in = 0, o = 0;
    while (in < strlen(text) || tftp_netascii_encoder_pending(&e)) {
        o += tftp_netascii_encode(&e, (const guint8 *)text + in, strlen(text) - in, &used, enc + o,
                                  1);
        in += used;
    }
    g_assert_cmpmem(enc, o, wire, wire_len);

    guint8 dec[64];
    TftpNetasciiDecoder d;
    tftp_netascii_decoder_init(&d);
    gsize dn = 0;
    for (gsize i = 0; i < wire_len; i++) /* one byte per block */
        dn += tftp_netascii_decode(&d, (const guint8 *)wire + i, 1, dec + dn);
    dn += tftp_netascii_decode_finish(&d, dec + dn);
    g_assert_cmpmem(dec, dn, text, strlen(text));
    /* A trailing lone CR, and CR followed by something else, are kept. */
    tftp_netascii_decoder_init(&d);
    dn = tftp_netascii_decode(&d, (const guint8 *)"a\rb\r", 4, dec);
    dn += tftp_netascii_decode_finish(&d, dec + dn);
    g_assert_cmpmem(dec, dn, "a\rb\r", 4);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tftp/packet/parse-rrq", test_parse_rrq);
    g_test_add_func("/tftp/packet/parse-request-errors", test_parse_request_errors);
    g_test_add_func("/tftp/packet/parse-option-values", test_parse_option_values);
    g_test_add_func("/tftp/packet/parse-data-ack-error", test_parse_data_ack_error);
    g_test_add_func("/tftp/packet/build", test_build);
    g_test_add_func("/tftp/negotiate/blksize", test_negotiate_blksize);
    g_test_add_func("/tftp/negotiate/timeout-tsize", test_negotiate_timeout_tsize);
    g_test_add_func("/tftp/negotiate/window", test_negotiate_window);
    g_test_add_func("/tftp/path/sanitize", test_path);
    g_test_add_func("/tftp/netascii/roundtrip", test_netascii);
    return g_test_run();
}
