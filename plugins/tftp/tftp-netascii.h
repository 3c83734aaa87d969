/* tftp-netascii.h - RFC 1350 netascii (RFC 764's NVT ASCII): LF travels as CR LF and a bare
 * CR as CR NUL. Streaming, so a pair split across two blocks comes out right. Pure. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    int pending; /* second byte of a pair that did not fit in the last output, or -1 */
} TftpNetasciiEncoder;

typedef struct {
    gboolean cr; /* the last input byte was a CR whose partner has not arrived yet */
} TftpNetasciiDecoder;

void tftp_netascii_encoder_init(TftpNetasciiEncoder *e);
/* Encodes in into out until either runs out; *consumed says how much of in was used.
 * Returns the bytes written. */
gsize tftp_netascii_encode(TftpNetasciiEncoder *e, const guint8 *in, gsize in_len, gsize *consumed,
                           guint8 *out, gsize out_cap);
/* True when the encoder still holds a byte to emit (call encode with in_len 0). */
gboolean tftp_netascii_encoder_pending(const TftpNetasciiEncoder *e);

void tftp_netascii_decoder_init(TftpNetasciiDecoder *d);
/* Decodes in into out, which must hold in_len + 1 bytes. Returns the bytes written. */
gsize tftp_netascii_decode(TftpNetasciiDecoder *d, const guint8 *in, gsize in_len, guint8 *out);
/* At the end of the stream: a lone trailing CR is kept as CR. Returns bytes written. */
gsize tftp_netascii_decode_finish(TftpNetasciiDecoder *d, guint8 *out);

G_END_DECLS
