/* fuzz-tftp-packet.c - libFuzzer target for everything in the tftp plugin that reads bytes
 * from the network: the packet parser, option negotiation, file-name sanitising and the
 * netascii codec. Built with --enable-fuzzing (clang); make check replays the corpus in
 * tests/fuzz/corpus/tftp-packet through tests/fuzz/replay-tftp-packet. */
#include "tftp-admit.h"
#include "tftp-negotiate.h"
#include "tftp-netascii.h"
#include "tftp-packet.h"
#include "tftp-path.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    TftpPacket pkt;
    TftpParseResult r = tftp_packet_parse(data, size, &pkt);
    (void)tftp_parse_result_text(r);
    (void)tftp_opcode_name(pkt.op);

    if (r == TFTP_PARSE_OK && (pkt.op == TFTP_OP_RRQ || pkt.op == TFTP_OP_WRQ)) {
        char path[512];
        const char *why = NULL;
        if (tftp_path_sanitize(pkt.filename, path, sizeof(path), &why)) {
            /* What sanitize lets through must never climb out of the root. */
            gsize n = strlen(path);
            if (path[0] == '/' || strcmp(path, "..") == 0 || strncmp(path, "../", 3) == 0 ||
                strstr(path, "/../") || (n >= 3 && strcmp(path + n - 3, "/..") == 0) ||
                strchr(path, '\\'))
                abort();
        } else if (why == NULL) {
            abort();
        }
        /* Admission: a temporary upload name is never admitted, whatever its spelling. */
        TftpAdmitRules rules = {.max_transfers = 4, .max_per_client = 2, .allow_writes = TRUE};
        TftpAdmitRequest rq = {.upload = pkt.op == TFTP_OP_WRQ,
                               .mode = pkt.mode,
                               .filename = pkt.filename,
                               .active = size % 5,
                               .active_from_client = size % 3};
        char apath[512];
        TftpAdmission ad;
        TftpAdmitVerdict v = tftp_admit(&rules, &rq, apath, sizeof(apath), &ad);
        if (v == TFTP_ADMIT_OK && tftp_path_is_temporary(apath))
            abort();
        if (v != TFTP_ADMIT_OK && ad.why == NULL)
            abort();

        TftpLimits lim = {.blksize_max = 1428,
                          .path_mtu = 1500,
                          .timeout_min = 1,
                          .timeout_max = 60,
                          .windowsize_max = 64,
                          .window_bytes_max = 65536,
                          .upload_max = 1 << 20};
        TftpRequestInfo req = {
            .is_write = pkt.op == TFTP_OP_WRQ, .mode = pkt.mode, .size_known = TRUE, .size = size};
        TftpNegotiation neg;
        if (tftp_negotiate(&pkt.opts, &req, &lim, &neg) == TFTP_ERR_UNDEFINED) {
            if (neg.blksize < TFTP_BLKSIZE_MIN || neg.blksize > 1428 || neg.windowsize < 1 ||
                (guint64)neg.windowsize * neg.blksize > 65536 + 1428)
                abort();
            /* The OACK we would send must parse back to the same options. */
            guint8 oack[512];
            gsize n = tftp_build_oack(oack, sizeof(oack), &neg.oack);
            if (n) {
                TftpPacket back;
                if (tftp_packet_parse(oack, n, &back) != TFTP_PARSE_OK ||
                    back.opts.has_blksize != neg.oack.has_blksize ||
                    back.opts.blksize != neg.oack.blksize ||
                    back.opts.has_tsize != neg.oack.has_tsize || back.opts.tsize != neg.oack.tsize)
                    abort();
            }
        }
    }

    /* netascii: decode(encode(x)) == x, whatever the block split. */
    if (size > 0 && size < 4096) {
        guint8 *enc = g_malloc(size * 2 + 1), *dec = g_malloc(size * 2 + 2);
        TftpNetasciiEncoder e;
        tftp_netascii_encoder_init(&e);
        gsize split = data[0] % 7 + 1, in = 0, en = 0;
        while (in < size || tftp_netascii_encoder_pending(&e)) {
            gsize used = 0;
            en += tftp_netascii_encode(&e, data + in, size - in, &used, enc + en,
                                       MIN(split, size * 2 - en));
            in += used;
        }
        TftpNetasciiDecoder d;
        tftp_netascii_decoder_init(&d);
        gsize dn = 0;
        for (gsize i = 0; i < en; i += split)
            dn += tftp_netascii_decode(&d, enc + i, MIN(split, en - i), dec + dn);
        dn += tftp_netascii_decode_finish(&d, dec + dn);
        if (dn != size || memcmp(dec, data, size) != 0)
            abort();
        g_free(enc);
        g_free(dec);
    }
    return 0;
}
