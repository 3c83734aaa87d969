/* tftp-packet.h - TFTP on the wire: parse and build packets (RFC 1350, 2347, 2348, 2349,
 * 7440). Pure functions: bytes in, struct out; no sockets, no globals, no allocation, so the
 * fuzzer calls them exactly as the server does. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    TFTP_OP_RRQ = 1,
    TFTP_OP_WRQ = 2,
    TFTP_OP_DATA = 3,
    TFTP_OP_ACK = 4,
    TFTP_OP_ERROR = 5,
    TFTP_OP_OACK = 6, /* RFC 2347 */
} TftpOpcode;

/* RFC 1350 section 5 and RFC 2347 (8). */
typedef enum {
    TFTP_ERR_UNDEFINED = 0,
    TFTP_ERR_NOT_FOUND = 1,
    TFTP_ERR_ACCESS = 2,
    TFTP_ERR_DISK_FULL = 3,
    TFTP_ERR_ILLEGAL_OP = 4,
    TFTP_ERR_UNKNOWN_TID = 5,
    TFTP_ERR_EXISTS = 6,
    TFTP_ERR_NO_USER = 7,
    TFTP_ERR_OPTION = 8,
} TftpErrorCode;

typedef enum {
    TFTP_MODE_OCTET,
    TFTP_MODE_NETASCII,
    TFTP_MODE_MAIL, /* obsolete (RFC 1350 says so); parsed only to be refused */
} TftpMode;

/* Why a datagram was not a well-formed packet. */
typedef enum {
    TFTP_PARSE_OK = 0,
    TFTP_PARSE_TOO_SHORT,
    TFTP_PARSE_BAD_OPCODE,
    TFTP_PARSE_UNTERMINATED, /* a string runs off the end of the datagram */
    TFTP_PARSE_EMPTY_NAME,
    TFTP_PARSE_BAD_MODE,
    TFTP_PARSE_BAD_OPTION, /* an option name without a value, or an empty name */
    TFTP_PARSE_TOO_MANY_OPTIONS,
} TftpParseResult;

/* Option values the server understands; the has_* flag is set only when the client sent
 * the option with a value inside the RFC's range (an invalid value counts as absent, as
 * RFC 2347 lets a server ignore what it cannot honour). */
typedef struct {
    gboolean has_blksize; /* RFC 2348: 8..65464 */
    guint blksize;
    gboolean has_timeout; /* RFC 2349: 1..255 s */
    guint timeout;
    gboolean has_tsize; /* RFC 2349: 64-bit here, files over 4 GiB are real */
    guint64 tsize;
    gboolean has_windowsize; /* RFC 7440: 1..65535 */
    guint windowsize;
} TftpOptions;

#define TFTP_MAX_OPTIONS     32
#define TFTP_BLKSIZE_MIN     8
#define TFTP_BLKSIZE_MAX     65464
#define TFTP_DEFAULT_BLKSIZE 512

typedef struct {
    const char *name;
    const char *value;
} TftpRawOption;

/* A parsed packet. Strings point into the parsed buffer (which the parser checked is
 * NUL-terminated where they end), so the packet is valid as long as the buffer. */
typedef struct {
    TftpOpcode op;
    /* RRQ/WRQ */
    const char *filename;
    const char *mode_text;
    TftpMode mode;
    TftpOptions opts;
    TftpRawOption raw[TFTP_MAX_OPTIONS]; /* every option as sent, known or not */
    guint n_raw;
    /* DATA/ACK */
    guint16 block;
    const guint8 *data;
    gsize data_len;
    /* ERROR */
    guint16 error_code;
    const char *error_msg; /* may be NULL when the client sent no terminated message */
    /* OACK: the options in opts/raw */
} TftpPacket;

TftpParseResult tftp_packet_parse(const guint8 *buf, gsize len, TftpPacket *out);
const char *tftp_parse_result_text(TftpParseResult r);
const char *tftp_opcode_name(guint op);
const char *tftp_error_text(TftpErrorCode code);

/* Builders write into buf (capacity cap) and return the length, or 0 if it does not fit. */
gsize tftp_build_ack(guint8 *buf, gsize cap, guint16 block);
/* Writes only the 4-byte DATA header; the payload goes at buf + 4. */
gsize tftp_build_data_header(guint8 *buf, gsize cap, guint16 block);
gsize tftp_build_data(guint8 *buf, gsize cap, guint16 block, const void *data, gsize len);
/* msg NULL: the standard text for the code. */
gsize tftp_build_error(guint8 *buf, gsize cap, TftpErrorCode code, const char *msg);
/* OACK with the options whose has_* flag is set, in RFC order. An empty set gives 0. */
gsize tftp_build_oack(guint8 *buf, gsize cap, const TftpOptions *opts);
/* RRQ/WRQ, for clients (tests, the load generator). opts may be NULL. */
gsize tftp_build_request(guint8 *buf, gsize cap, TftpOpcode op, const char *filename,
                         const char *mode, const TftpOptions *opts);

G_END_DECLS
