/* tftp-netascii.c - netascii both ways. See tftp-netascii.h. */
#include "tftp-netascii.h"

void tftp_netascii_encoder_init(TftpNetasciiEncoder *e)
{
    e->pending = -1;
}

gboolean tftp_netascii_encoder_pending(const TftpNetasciiEncoder *e)
{
    return e->pending >= 0;
}

gsize tftp_netascii_encode(TftpNetasciiEncoder *e, const guint8 *in, gsize in_len, gsize *consumed,
                           guint8 *out, gsize out_cap)
{
    gsize i = 0, o = 0;
    if (e->pending >= 0 && o < out_cap) {
        out[o++] = (guint8)e->pending;
        e->pending = -1;
    }
    while (i < in_len && o < out_cap && e->pending < 0) {
        guint8 c = in[i++];
        if (c == '\n' || c == '\r') {
            out[o++] = '\r';
            guint8 second = c == '\n' ? '\n' : '\0';
            if (o < out_cap)
                out[o++] = second;
            else
                e->pending = second;
        } else {
            out[o++] = c;
        }
    }
    *consumed = i;
    return o;
}

void tftp_netascii_decoder_init(TftpNetasciiDecoder *d)
{
    d->cr = FALSE;
}

gsize tftp_netascii_decode(TftpNetasciiDecoder *d, const guint8 *in, gsize in_len, guint8 *out)
{
    gsize o = 0;
    for (gsize i = 0; i < in_len; i++) {
        guint8 c = in[i];
        if (d->cr) {
            d->cr = FALSE;
            if (c == '\n') {
                out[o++] = '\n';
                continue;
            }
            out[o++] = '\r';
            if (c == '\0')
                continue;
            /* A CR followed by anything else is not netascii; keep both bytes. */
        }
        if (c == '\r')
            d->cr = TRUE;
        else
            out[o++] = c;
    }
    return o;
}

gsize tftp_netascii_decode_finish(TftpNetasciiDecoder *d, guint8 *out)
{
    if (!d->cr)
        return 0;
    d->cr = FALSE;
    out[0] = '\r';
    return 1;
}
