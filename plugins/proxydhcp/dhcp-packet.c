/* dhcp-packet.c - DHCP message decoding and encoding (RFC 2131, RFC 2132, RFC 3396). */
#include "dhcp-packet.h"

#include <string.h>

static const guint8 dhcp_magic[DHCP_MAGIC_LEN] = {99, 130, 83, 99}; /* RFC 2131 section 3 */

const char *dhcp_parse_result_str(DhcpParseResult r)
{
    switch (r) {
    case DHCP_PARSE_OK:
        return "ok";
    case DHCP_PARSE_SHORT:
        return "shorter than a DHCP header";
    case DHCP_PARSE_LONG:
        return "longer than any DHCP message we accept";
    case DHCP_PARSE_MAGIC:
        return "no DHCP magic cookie (plain BOOTP?)";
    case DHCP_PARSE_HLEN:
        return "hardware address length above 16";
    case DHCP_PARSE_TRUNCATED:
        return "an option runs past the end of the message";
    }
    return "?";
}

static void mark_present(DhcpPacket *p, guint8 code)
{
    p->opt_present[code / 8] |= (guint8)(1u << (code % 8));
}

bool dhcp_packet_has(const DhcpPacket *p, guint8 code)
{
    return (p->opt_present[code / 8] >> (code % 8)) & 1u;
}

const guint8 *dhcp_packet_get(const DhcpPacket *p, guint8 code, gsize *len)
{
    if (!dhcp_packet_has(p, code)) {
        *len = 0;
        return NULL;
    }
    *len = p->opt_len[code];
    return p->optbuf + p->opt_off[code];
}

/* One option instance as found on the wire: where its value starts in the message. */
typedef struct {
    guint16 src;
    guint8 code;
    guint8 len;
} OptRef;

/* Every instance takes at least two bytes, so a message holds at most half its length. */
#define MAX_INSTANCES (DHCP_MAX_LEN / 2)

/* Walks one option field, recording instances. Returns false on truncation. */
static bool scan_field(const guint8 *data, gsize start, gsize len, OptRef *refs, gsize *n,
                       bool *saw_end)
{
    gsize i = start, stop = start + len;
    while (i < stop) {
        guint8 code = data[i++];
        if (code == DHCP_OPT_PAD)
            continue;
        if (code == DHCP_OPT_END) {
            *saw_end = true;
            return true;
        }
        if (i >= stop)
            return false;
        guint8 olen = data[i++];
        if (olen > stop - i)
            return false;
        refs[*n].src = (guint16)i;
        refs[*n].code = code;
        refs[*n].len = olen;
        (*n)++;
        i += olen;
    }
    return true;
}

DhcpParseResult dhcp_packet_parse(const guint8 *data, gsize len, DhcpPacket *p)
{
    g_return_val_if_fail(p != NULL, DHCP_PARSE_SHORT);
    memset(p, 0, offsetof(DhcpPacket, optbuf));
    if (data == NULL || len < DHCP_MIN_LEN)
        return DHCP_PARSE_SHORT;
    if (len > DHCP_MAX_LEN)
        return DHCP_PARSE_LONG;

    p->op = data[0];
    p->htype = data[1];
    p->hlen = data[2];
    p->hops = data[3];
    memcpy(&p->xid, data + 4, 4);
    p->secs = (guint16)(data[8] << 8 | data[9]);
    p->flags = (guint16)(data[10] << 8 | data[11]);
    memcpy(p->ciaddr, data + DHCP_OFF_CIADDR, 4);
    memcpy(p->yiaddr, data + DHCP_OFF_YIADDR, 4);
    memcpy(p->siaddr, data + DHCP_OFF_SIADDR, 4);
    memcpy(p->giaddr, data + DHCP_OFF_GIADDR, 4);
    memcpy(p->chaddr, data + DHCP_OFF_CHADDR, 16);
    memcpy(p->sname, data + DHCP_OFF_SNAME, 64);
    memcpy(p->file, data + DHCP_OFF_FILE, 128);
    if (p->hlen > 16)
        return DHCP_PARSE_HLEN;
    if (memcmp(data + DHCP_FIXED_LEN, dhcp_magic, DHCP_MAGIC_LEN) != 0)
        return DHCP_PARSE_MAGIC;

    OptRef refs[MAX_INSTANCES];
    gsize n = 0;
    bool end = false;
    if (!scan_field(data, DHCP_MIN_LEN, len - DHCP_MIN_LEN, refs, &n, &end))
        return DHCP_PARSE_TRUNCATED;
    p->has_end = end;

    /* RFC 2131 section 4.1: with option 52 the file and then the sname field carry
     * options too; only the options field may hold option 52 itself. */
    guint8 overload = 0;
    for (gsize i = 0; i < n; i++) {
        if (refs[i].code == DHCP_OPT_OVERLOAD && refs[i].len >= 1) {
            overload = data[refs[i].src];
            break;
        }
    }
    if (overload >= 1 && overload <= 3) {
        bool e = false;
        if (overload & 1) {
            p->file_overloaded = true;
            if (!scan_field(data, DHCP_OFF_FILE, 128, refs, &n, &e))
                return DHCP_PARSE_TRUNCATED;
        }
        if (overload & 2) {
            p->sname_overloaded = true;
            e = false;
            if (!scan_field(data, DHCP_OFF_SNAME, 64, refs, &n, &e))
                return DHCP_PARSE_TRUNCATED;
        }
    }

    /* RFC 3396 section 5: all instances of a code form one value, in order. Lay the
     * codes out contiguously: sum lengths, assign offsets, copy. */
    for (gsize i = 0; i < n; i++)
        p->opt_len[refs[i].code] += refs[i].len;
    guint16 off = 0;
    for (guint c = 0; c < 256; c++) {
        p->opt_off[c] = off;
        off += p->opt_len[c];
    }
    guint16 fill[256];
    memcpy(fill, p->opt_off, sizeof fill);
    for (gsize i = 0; i < n; i++) {
        mark_present(p, refs[i].code);
        memcpy(p->optbuf + fill[refs[i].code], data + refs[i].src, refs[i].len);
        fill[refs[i].code] += refs[i].len;
    }
    p->optbuf_used = off;

    gsize tlen;
    const guint8 *t = dhcp_packet_get(p, DHCP_OPT_MSG_TYPE, &tlen);
    if (t != NULL && tlen == 1)
        p->msg_type = t[0];
    return DHCP_PARSE_OK;
}

/* ---- encoding ------------------------------------------------------------------------ */

void dhcp_writer_init(DhcpWriter *w, guint8 *buf, gsize cap)
{
    g_return_if_fail(cap >= DHCP_MIN_LEN + 1);
    w->buf = buf;
    w->cap = cap;
    w->overflow = 0;
    memset(buf, 0, DHCP_MIN_LEN);
    memcpy(buf + DHCP_FIXED_LEN, dhcp_magic, DHCP_MAGIC_LEN);
    w->len = DHCP_MIN_LEN;
}

void dhcp_writer_header(DhcpWriter *w, guint8 op, guint8 htype, guint8 hlen, guint32 xid,
                        guint16 flags, const guint8 chaddr[16])
{
    w->buf[0] = op;
    w->buf[1] = htype;
    w->buf[2] = hlen;
    w->buf[3] = 0;
    memcpy(w->buf + 4, &xid, 4);
    w->buf[8] = w->buf[9] = 0;
    w->buf[10] = (guint8)(flags >> 8);
    w->buf[11] = (guint8)flags;
    memcpy(w->buf + DHCP_OFF_CHADDR, chaddr, 16);
}

void dhcp_writer_set_addr(DhcpWriter *w, gsize field_off, const guint8 addr[4])
{
    memcpy(w->buf + field_off, addr, 4);
}

static bool set_text(DhcpWriter *w, gsize off, gsize field, const char *text)
{
    gsize n = text ? strlen(text) : 0;
    /* The field must stay NUL-terminated: EDK2 copies it with AsciiStrCpyS. */
    if (n >= field)
        return false;
    memset(w->buf + off, 0, field);
    if (n)
        memcpy(w->buf + off, text, n);
    return true;
}

bool dhcp_writer_set_file(DhcpWriter *w, const char *file)
{
    return set_text(w, DHCP_OFF_FILE, 128, file);
}

bool dhcp_writer_set_sname(DhcpWriter *w, const char *sname)
{
    return set_text(w, DHCP_OFF_SNAME, 64, sname);
}

bool dhcp_writer_option(DhcpWriter *w, guint8 code, const void *data, gsize len)
{
    gsize pieces = len == 0 ? 1 : (len + 254) / 255;
    /* Keep one byte for END. */
    if (w->len + len + 2 * pieces + 1 > w->cap) {
        w->overflow++;
        return false;
    }
    const guint8 *d = data;
    do {
        gsize n = MIN(len, 255);
        w->buf[w->len++] = code;
        w->buf[w->len++] = (guint8)n;
        if (n)
            memcpy(w->buf + w->len, d, n);
        w->len += n;
        d += n;
        len -= n;
    } while (len > 0);
    return true;
}

bool dhcp_writer_option_u8(DhcpWriter *w, guint8 code, guint8 v)
{
    return dhcp_writer_option(w, code, &v, 1);
}

gsize dhcp_writer_finish(DhcpWriter *w)
{
    w->buf[w->len++] = DHCP_OPT_END;
    gsize target = MIN((gsize)DHCP_BOOTP_MIN, w->cap);
    if (w->len < target) {
        memset(w->buf + w->len, 0, target - w->len);
        w->len = target;
    }
    return w->len;
}
