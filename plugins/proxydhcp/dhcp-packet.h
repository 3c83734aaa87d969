/* dhcp-packet.h - DHCP/BOOTP messages as bytes in, struct out (RFC 2131 section 2, RFC 2132,
 * RFC 3396 long options) and struct in, bytes out. Pure: no sockets, no globals, no
 * allocation, so the fuzzer drives dhcp_packet_parse() exactly as the server does. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

G_BEGIN_DECLS

#define DHCP_FIXED_LEN   236u /* op .. file, RFC 2131 figure 1 */
#define DHCP_MAGIC_LEN   4u
#define DHCP_MIN_LEN     (DHCP_FIXED_LEN + DHCP_MAGIC_LEN)
#define DHCP_MAX_LEN     4096u /* far above any Ethernet frame; longer input is refused */
#define DHCP_BOOTP_MIN   300u  /* RFC 1542 section 2.1: some relays drop shorter replies */
#define DHCP_MIN_MAX_MSG 576u  /* RFC 2132 section 9.10: option 57 may not be below this */

enum {
    DHCP_BOOTREQUEST = 1,
    DHCP_BOOTREPLY = 2,
};

/* Option 53 message types (RFC 2132 section 9.6). */
enum {
    DHCP_DISCOVER = 1,
    DHCP_OFFER = 2,
    DHCP_REQUEST = 3,
    DHCP_DECLINE = 4,
    DHCP_ACK = 5,
    DHCP_NAK = 6,
    DHCP_RELEASE = 7,
    DHCP_INFORM = 8,
};

/* Option codes this plugin reads or writes. */
enum {
    DHCP_OPT_PAD = 0,
    DHCP_OPT_HOSTNAME = 12,
    DHCP_OPT_VENDOR = 43, /* PXE sub-options when option 60 says PXEClient */
    DHCP_OPT_OVERLOAD = 52,
    DHCP_OPT_MSG_TYPE = 53,
    DHCP_OPT_SERVER_ID = 54,
    DHCP_OPT_PARAM_LIST = 55,
    DHCP_OPT_MAX_MSG_SIZE = 57,
    DHCP_OPT_VENDOR_CLASS = 60,
    DHCP_OPT_CLIENT_ID = 61,
    DHCP_OPT_TFTP_SERVER = 66,
    DHCP_OPT_BOOTFILE = 67,
    DHCP_OPT_USER_CLASS = 77,  /* RFC 3004; iPXE sends the bare string "iPXE" */
    DHCP_OPT_CLIENT_ARCH = 93, /* RFC 4578 section 2.1 */
    DHCP_OPT_CLIENT_NDI = 94,  /* RFC 4578 section 2.2 (UNDI version) */
    DHCP_OPT_CLIENT_UUID = 97, /* RFC 4578 section 2.3 */
    DHCP_OPT_IPXE_ENCAP = 175, /* iPXE's feature flags */
    DHCP_OPT_END = 255,
};

#define DHCP_FLAG_BROADCAST 0x8000u

typedef enum {
    DHCP_PARSE_OK = 0,
    DHCP_PARSE_SHORT,     /* under 240 bytes */
    DHCP_PARSE_LONG,      /* over DHCP_MAX_LEN */
    DHCP_PARSE_MAGIC,     /* no RFC 1497 magic cookie: plain BOOTP or garbage */
    DHCP_PARSE_HLEN,      /* hlen above 16 */
    DHCP_PARSE_TRUNCATED, /* an option runs past the end of its field */
} DhcpParseResult;

const char *dhcp_parse_result_str(DhcpParseResult r);

/* A decoded message. Option values are stored concatenated per code (RFC 3396 section 5:
 * several instances of one code are one option), in the order options, file, sname. */
typedef struct {
    guint8 op, htype, hlen, hops;
    guint32 xid;   /* as on the wire (network order bytes copied verbatim) */
    guint16 secs;  /* host order */
    guint16 flags; /* host order */
    guint8 ciaddr[4], yiaddr[4], siaddr[4], giaddr[4];
    guint8 chaddr[16];
    guint8 sname[64]; /* raw field; meaningless when overloaded (file_overloaded etc.) */
    guint8 file[128];
    bool sname_overloaded, file_overloaded;
    guint8 msg_type; /* option 53, 0 when absent or malformed */
    bool has_end;    /* an END option was seen (RFC 2131 requires it; some ROMs omit it) */

    guint16 opt_len[256];
    guint16 opt_off[256];
    guint8 opt_present[256 / 8];
    guint16 optbuf_used;
    guint8 optbuf[DHCP_MAX_LEN];
} DhcpPacket;

/* Decodes len bytes into *out (fully overwritten). */
DhcpParseResult dhcp_packet_parse(const guint8 *data, gsize len, DhcpPacket *out);

bool dhcp_packet_has(const DhcpPacket *p, guint8 code);
/* The option's value and length, or NULL (and *len = 0) when absent. */
const guint8 *dhcp_packet_get(const DhcpPacket *p, guint8 code, gsize *len);

/* ---- encoding ------------------------------------------------------------------------ */

/* A reply under construction in a caller-owned buffer. Options that do not fit are
 * dropped and counted in 'overflow' rather than written past 'cap'. */
typedef struct {
    guint8 *buf;
    gsize cap; /* hard limit (the client's option 57 or our own maximum) */
    gsize len; /* bytes used so far (header + magic + options) */
    guint overflow;
} DhcpWriter;

/* Writes the fixed header with all fields zero but op, htype, hlen, magic. */
void dhcp_writer_init(DhcpWriter *w, guint8 *buf, gsize cap);
void dhcp_writer_header(DhcpWriter *w, guint8 op, guint8 htype, guint8 hlen, guint32 xid,
                        guint16 flags, const guint8 chaddr[16]);
void dhcp_writer_set_addr(DhcpWriter *w, gsize field_off, const guint8 addr[4]);
/* file and sname are copied and always NUL-terminated; longer text is refused (false). */
bool dhcp_writer_set_file(DhcpWriter *w, const char *file);
bool dhcp_writer_set_sname(DhcpWriter *w, const char *sname);
/* Appends an option, splitting values over 255 bytes into several instances (RFC 3396).
 * Returns false (and counts overflow) when it does not fit before the END byte. */
bool dhcp_writer_option(DhcpWriter *w, guint8 code, const void *data, gsize len);
bool dhcp_writer_option_u8(DhcpWriter *w, guint8 code, guint8 v);
/* Writes END and pads to DHCP_BOOTP_MIN when the cap allows. Returns the final length. */
gsize dhcp_writer_finish(DhcpWriter *w);

/* Byte offsets of the address fields for dhcp_writer_set_addr(). */
enum {
    DHCP_OFF_CIADDR = 12,
    DHCP_OFF_YIADDR = 16,
    DHCP_OFF_SIADDR = 20,
    DHCP_OFF_GIADDR = 24,
    DHCP_OFF_CHADDR = 28,
    DHCP_OFF_SNAME = 44,
    DHCP_OFF_FILE = 108,
};

G_END_DECLS
