/* tftp-negotiate.h - the server's answer to a request's options (RFC 2347 OACK): which
 * options it grants and with what values, given the configured limits, the file and the
 * path the reply takes. Pure: no sockets, no files, no clock. */
#pragma once

#include "tftp-packet.h"

G_BEGIN_DECLS

/* Options an administrator can refuse outright, for clients that ask for an option and
 * then break when it is granted. */
enum {
    TFTP_REFUSE_BLKSIZE = 1u << 0,
    TFTP_REFUSE_TIMEOUT = 1u << 1,
    TFTP_REFUSE_TSIZE = 1u << 2,
    TFTP_REFUSE_WINDOWSIZE = 1u << 3,
};

typedef struct {
    guint blksize_max; /* TransferBlockSize: the largest block we agree to */
    guint path_mtu;    /* MTU of the interface the reply leaves by; 0 = unknown */
    gboolean ipv6;     /* header overhead for the MTU clamp */
    guint timeout_min; /* client timeouts outside [min, max] are left out of the OACK */
    guint timeout_max;
    guint windowsize_max;     /* blocks */
    guint64 window_bytes_max; /* a window also never holds more than this many bytes */
    guint64 upload_max;       /* WRQ tsize above this is refused up front; 0 = no limit */
    guint refuse;             /* TFTP_REFUSE_* */
} TftpLimits;

typedef struct {
    gboolean is_write;
    TftpMode mode;
    gboolean size_known; /* RRQ: the size of the file (for tsize) */
    guint64 size;
} TftpRequestInfo;

typedef struct {
    TftpOptions oack; /* what goes in the OACK (nothing set: no OACK) */
    guint blksize;    /* in force for the transfer */
    guint windowsize; /* in force (1 without the option) */
    guint timeout_s;  /* the client's timeout when granted, else 0 */
} TftpNegotiation;

/* Returns TFTP_ERR_UNDEFINED (0) when the transfer may go on, or the error code to send:
 * TFTP_ERR_DISK_FULL when a WRQ announces a tsize above upload_max (RFC 2349 lets a server
 * refuse such a request up front). */
TftpErrorCode tftp_negotiate(const TftpOptions *asked, const TftpRequestInfo *req,
                             const TftpLimits *lim, TftpNegotiation *out);

/* The largest payload of one datagram on a link of this MTU: IP and UDP headers and the
 * 4-byte TFTP header come off. 0 for an unknown MTU. */
guint tftp_blksize_for_mtu(guint mtu, gboolean ipv6);

G_END_DECLS
