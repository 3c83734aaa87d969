/* tftp-packet.c - parse and build TFTP packets. See tftp-packet.h. */
#include "tftp-packet.h"

#include <string.h>

static guint16 get16(const guint8 *p)
{
    return (guint16)((p[0] << 8) | p[1]);
}

static void put16(guint8 *p, guint16 v)
{
    p[0] = (guint8)(v >> 8);
    p[1] = (guint8)v;
}

/* The string starting at p, if a NUL ends it before end. */
static const char *take_string(const guint8 *p, const guint8 *end, const guint8 **next)
{
    const guint8 *nul = p < end ? memchr(p, 0, (gsize)(end - p)) : NULL;
    if (nul == NULL)
        return NULL;
    *next = nul + 1;
    return (const char *)p;
}

/* Strict unsigned decimal: digits only, no sign, no blanks, no overflow. */
static gboolean parse_u64(const char *s, guint64 *out)
{
    guint64 v = 0;
    if (*s == '\0')
        return FALSE;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return FALSE;
        guint d = (guint)(*s - '0');
        if (v > (G_MAXUINT64 - d) / 10)
            return FALSE;
        v = v * 10 + d;
    }
    *out = v;
    return TRUE;
}

static void note_option(TftpOptions *o, const char *name, const char *value)
{
    guint64 v;
    if (!parse_u64(value, &v))
        return; /* an unparsable value is as good as no option (RFC 2347: ignore) */
    if (g_ascii_strcasecmp(name, "blksize") == 0) {
        if (!o->has_blksize && v >= TFTP_BLKSIZE_MIN && v <= TFTP_BLKSIZE_MAX) {
            o->has_blksize = TRUE;
            o->blksize = (guint)v;
        }
    } else if (g_ascii_strcasecmp(name, "timeout") == 0) {
        if (!o->has_timeout && v >= 1 && v <= 255) {
            o->has_timeout = TRUE;
            o->timeout = (guint)v;
        }
    } else if (g_ascii_strcasecmp(name, "tsize") == 0) {
        if (!o->has_tsize) {
            o->has_tsize = TRUE;
            o->tsize = v;
        }
    } else if (g_ascii_strcasecmp(name, "windowsize") == 0) {
        if (!o->has_windowsize && v >= 1 && v <= 65535) {
            o->has_windowsize = TRUE;
            o->windowsize = (guint)v;
        }
    }
}

/* Options after the mode (requests) or the opcode (OACK). Firmware is sloppy here: some
 * PXE ROMs pad requests with NULs and a few send a last option cut short, so an empty name
 * ends the list and an unterminated tail is ignored, as tftp-hpa does. */
static TftpParseResult parse_options(const guint8 *p, const guint8 *end, TftpPacket *out)
{
    while (p < end) {
        const guint8 *next;
        const char *name = take_string(p, end, &next);
        if (name == NULL || *name == '\0')
            break;
        const char *value = take_string(next, end, &next);
        if (value == NULL)
            break;
        if (out->n_raw == TFTP_MAX_OPTIONS)
            return TFTP_PARSE_TOO_MANY_OPTIONS;
        out->raw[out->n_raw].name = name;
        out->raw[out->n_raw].value = value;
        out->n_raw++;
        note_option(&out->opts, name, value);
        p = next;
    }
    return TFTP_PARSE_OK;
}

TftpParseResult tftp_packet_parse(const guint8 *buf, gsize len, TftpPacket *out)
{
    g_return_val_if_fail(out != NULL, TFTP_PARSE_TOO_SHORT);
    memset(out, 0, sizeof(*out));
    if (buf == NULL || len < 2)
        return TFTP_PARSE_TOO_SHORT;
    const guint8 *end = buf + len;
    guint16 op = get16(buf);
    const guint8 *p = buf + 2;
    out->op = (TftpOpcode)op;

    switch (op) {
    case TFTP_OP_RRQ:
    case TFTP_OP_WRQ: {
        out->filename = take_string(p, end, &p);
        if (out->filename == NULL)
            return TFTP_PARSE_UNTERMINATED;
        if (*out->filename == '\0')
            return TFTP_PARSE_EMPTY_NAME;
        out->mode_text = take_string(p, end, &p);
        if (out->mode_text == NULL)
            return TFTP_PARSE_UNTERMINATED;
        if (g_ascii_strcasecmp(out->mode_text, "octet") == 0)
            out->mode = TFTP_MODE_OCTET;
        else if (g_ascii_strcasecmp(out->mode_text, "netascii") == 0)
            out->mode = TFTP_MODE_NETASCII;
        else if (g_ascii_strcasecmp(out->mode_text, "mail") == 0)
            out->mode = TFTP_MODE_MAIL;
        else
            return TFTP_PARSE_BAD_MODE;
        return parse_options(p, end, out);
    }
    case TFTP_OP_DATA:
    case TFTP_OP_ACK:
        if (len < 4)
            return TFTP_PARSE_TOO_SHORT;
        out->block = get16(p);
        if (op == TFTP_OP_DATA) {
            out->data = buf + 4;
            out->data_len = len - 4;
        }
        /* Trailing bytes after an ACK are padding from some ROMs (Ethernet minimum frame);
         * they carry nothing. */
        return TFTP_PARSE_OK;
    case TFTP_OP_ERROR:
        if (len < 4)
            return TFTP_PARSE_TOO_SHORT;
        out->error_code = get16(p);
        out->error_msg = take_string(p + 2, end, &p);
        return TFTP_PARSE_OK;
    case TFTP_OP_OACK:
        return parse_options(p, end, out);
    default:
        return TFTP_PARSE_BAD_OPCODE;
    }
}

const char *tftp_parse_result_text(TftpParseResult r)
{
    switch (r) {
    case TFTP_PARSE_OK:
        return "ok";
    case TFTP_PARSE_TOO_SHORT:
        return "packet too short";
    case TFTP_PARSE_BAD_OPCODE:
        return "unknown opcode";
    case TFTP_PARSE_UNTERMINATED:
        return "unterminated string";
    case TFTP_PARSE_EMPTY_NAME:
        return "empty file name";
    case TFTP_PARSE_BAD_MODE:
        return "unknown transfer mode";
    case TFTP_PARSE_BAD_OPTION:
        return "malformed option";
    case TFTP_PARSE_TOO_MANY_OPTIONS:
        return "too many options";
    }
    return "?";
}

const char *tftp_opcode_name(guint op)
{
    static const char *const names[] = {"?", "RRQ", "WRQ", "DATA", "ACK", "ERROR", "OACK"};
    return op < G_N_ELEMENTS(names) ? names[op] : "?";
}

const char *tftp_error_text(TftpErrorCode code)
{
    switch (code) {
    case TFTP_ERR_UNDEFINED:
        return "Undefined error";
    case TFTP_ERR_NOT_FOUND:
        return "File not found";
    case TFTP_ERR_ACCESS:
        return "Access violation";
    case TFTP_ERR_DISK_FULL:
        return "Disk full or allocation exceeded";
    case TFTP_ERR_ILLEGAL_OP:
        return "Illegal TFTP operation";
    case TFTP_ERR_UNKNOWN_TID:
        return "Unknown transfer ID";
    case TFTP_ERR_EXISTS:
        return "File already exists";
    case TFTP_ERR_NO_USER:
        return "No such user";
    case TFTP_ERR_OPTION:
        return "Option negotiation failed";
    }
    return "Undefined error";
}

gsize tftp_build_ack(guint8 *buf, gsize cap, guint16 block)
{
    if (cap < 4)
        return 0;
    put16(buf, TFTP_OP_ACK);
    put16(buf + 2, block);
    return 4;
}

gsize tftp_build_data_header(guint8 *buf, gsize cap, guint16 block)
{
    if (cap < 4)
        return 0;
    put16(buf, TFTP_OP_DATA);
    put16(buf + 2, block);
    return 4;
}

gsize tftp_build_data(guint8 *buf, gsize cap, guint16 block, const void *data, gsize len)
{
    if (cap < 4 || len > cap - 4)
        return 0;
    tftp_build_data_header(buf, cap, block);
    if (len)
        memmove(buf + 4, data, len);
    return 4 + len;
}

gsize tftp_build_error(guint8 *buf, gsize cap, TftpErrorCode code, const char *msg)
{
    if (msg == NULL)
        msg = tftp_error_text(code);
    gsize mlen = strlen(msg);
    if (cap < 5)
        return 0;
    if (mlen > cap - 5)
        mlen = cap - 5; /* a cut message is better than no error packet */
    put16(buf, TFTP_OP_ERROR);
    put16(buf + 2, (guint16)code);
    memcpy(buf + 4, msg, mlen);
    buf[4 + mlen] = 0;
    return 5 + mlen;
}

static gboolean append_pair(guint8 *buf, gsize cap, gsize *pos, const char *name, const char *value)
{
    gsize n = strlen(name) + 1, v = strlen(value) + 1;
    if (*pos + n + v > cap)
        return FALSE;
    memcpy(buf + *pos, name, n);
    memcpy(buf + *pos + n, value, v);
    *pos += n + v;
    return TRUE;
}

static gboolean append_options(guint8 *buf, gsize cap, gsize *pos, const TftpOptions *o)
{
    char num[24];
    if (o->has_blksize) {
        g_snprintf(num, sizeof(num), "%u", o->blksize);
        if (!append_pair(buf, cap, pos, "blksize", num))
            return FALSE;
    }
    if (o->has_timeout) {
        g_snprintf(num, sizeof(num), "%u", o->timeout);
        if (!append_pair(buf, cap, pos, "timeout", num))
            return FALSE;
    }
    if (o->has_tsize) {
        g_snprintf(num, sizeof(num), "%" G_GUINT64_FORMAT, o->tsize);
        if (!append_pair(buf, cap, pos, "tsize", num))
            return FALSE;
    }
    if (o->has_windowsize) {
        g_snprintf(num, sizeof(num), "%u", o->windowsize);
        if (!append_pair(buf, cap, pos, "windowsize", num))
            return FALSE;
    }
    return TRUE;
}

gsize tftp_build_oack(guint8 *buf, gsize cap, const TftpOptions *opts)
{
    if (cap < 2 || opts == NULL)
        return 0;
    if (!opts->has_blksize && !opts->has_timeout && !opts->has_tsize && !opts->has_windowsize)
        return 0;
    put16(buf, TFTP_OP_OACK);
    gsize pos = 2;
    return append_options(buf, cap, &pos, opts) ? pos : 0;
}

gsize tftp_build_request(guint8 *buf, gsize cap, TftpOpcode op, const char *filename,
                         const char *mode, const TftpOptions *opts)
{
    g_return_val_if_fail(op == TFTP_OP_RRQ || op == TFTP_OP_WRQ, 0);
    if (cap < 2)
        return 0;
    put16(buf, (guint16)op);
    gsize pos = 2;
    if (!append_pair(buf, cap, &pos, filename, mode))
        return 0;
    if (opts && !append_options(buf, cap, &pos, opts))
        return 0;
    return pos;
}
