/* tftp-session.h - one transfer: the RFC 1350 lock-step (or RFC 7440 window) state machine
 * with an adaptive retransmission timer. No sockets and no clock of its own: the caller
 * hands in packets and the time, and the session answers through a send callback. That is
 * what lets the unit tests drop, duplicate and reorder packets at will. */
#pragma once

#include "tftp-packet.h"

G_BEGIN_DECLS

/* Where a download's bytes come from: a file under the root, or another plugin's
 * virtual file. read() returns fewer than len bytes only at the end, -1 on error. */
typedef struct {
    gssize (*read)(void *data, guint64 offset, guint8 *buf, gsize len);
    void (*close)(void *data);
    void *data;
} TftpSource;

/* Where an upload goes: a temporary file renamed into place by commit(). */
typedef struct {
    gboolean (*write)(void *data, const guint8 *buf, gsize len);
    gboolean (*commit)(void *data);
    void (*abort)(void *data); /* removes what was written; also frees */
    void *data;
} TftpSink;

/* Returns FALSE when the datagram could not be queued (the socket buffer is full). */
typedef gboolean (*TftpSendFn)(void *ctx, const guint8 *buf, gsize len);
/* Sends several DATA packets laid out back to back, each seg_len bytes but the last; returns
 * how many were queued (fewer when the socket buffer filled). */
typedef gsize (*TftpSendSegmentsFn)(void *ctx, const guint8 *buf, gsize len, gsize seg_len);

typedef enum {
    TFTP_RESULT_RUNNING = 0,
    TFTP_RESULT_OK,
    TFTP_RESULT_TSIZE_PROBE, /* RRQ, OACK, then ERROR: UEFI asking for the size only */
    TFTP_RESULT_TIMEOUT,     /* the client went silent */
    TFTP_RESULT_PEER_ERROR,  /* the client sent ERROR */
    TFTP_RESULT_PROTOCOL,    /* the client sent something illegal (we answered ERROR 4) */
    TFTP_RESULT_LOCAL_ERROR, /* read/write failure or upload limit (we answered ERROR) */
} TftpResult;

typedef struct {
    gboolean is_write;
    TftpMode mode;
    guint blksize;
    guint windowsize;
    const TftpOptions *oack; /* options to acknowledge; NULL or empty: no OACK */
    guint64 rto_initial_us;  /* TimeoutInterval, or the client's timeout option */
    guint64 rto_min_us;
    guint64 rto_max_us;
    guint max_retries;    /* retransmissions of one packet before giving up */
    guint rollover;       /* block after 65535: 0 (default) or 1 */
    guint64 upload_max;   /* WRQ: bytes; 0 = no limit */
    gboolean tsize_asked; /* the client asked for tsize: an ERROR after OACK is a probe */
    /* Optional: octet windows go out through this, many blocks per call (same ctx as send) */
    TftpSendSegmentsFn send_segments;
} TftpSessionParams;

typedef struct TftpSession TftpSession;

/* Starts a transfer: sends the OACK, or the first window (RRQ) / ACK 0 (WRQ). The session
 * owns source or sink from here on. */
TftpSession *tftp_session_new_read(const TftpSessionParams *p, TftpSource source, TftpSendFn send,
                                   void *ctx, guint64 now_us);
TftpSession *tftp_session_new_write(const TftpSessionParams *p, TftpSink sink, TftpSendFn send,
                                    void *ctx, guint64 now_us);
void tftp_session_free(TftpSession *s);

/* Ends a running transfer that its client gave up on (it asked for something else from
 * the same port): PEER_ERROR with reason, nothing sent. */
void tftp_session_abandon(TftpSession *s, const char *reason);

/* A datagram from the client's TID. */
void tftp_session_input(TftpSession *s, const guint8 *buf, gsize len, guint64 now_us);
/* Retransmits or gives up when the deadline passed; also retries a send the socket
 * refused. Call at least every few tens of milliseconds while the session lives. */
void tftp_session_tick(TftpSession *s, guint64 now_us);
/* When tick() next has something to do. */
guint64 tftp_session_deadline(const TftpSession *s);

/* The transfer's outcome: RUNNING until decided. A finished upload lingers (dallies) a
 * while after its result to answer a retransmitted last DATA; free it once finished. */
TftpResult tftp_session_result(const TftpSession *s);
gboolean tftp_session_finished(const TftpSession *s);
/* The error code and text sent or received with a failure; code 0 and "" otherwise. */
guint tftp_session_error_code(const TftpSession *s);
const char *tftp_session_error_text(const TftpSession *s);
/* TRUE when a download ended without the final ACK (not a failure: RFC 1350 section 6). */
gboolean tftp_session_final_ack_missing(const TftpSession *s);

typedef struct {
    guint64 bytes;  /* file bytes delivered (acked) or received */
    guint64 blocks; /* distinct blocks */
    guint64 packets_sent;
    guint64 retransmits;
    guint64 rto_us;  /* the current retransmission timeout */
    guint64 srtt_us; /* smoothed round trip, 0 before the first sample */
    guint64 started_us;
} TftpSessionStats;

void tftp_session_stats(const TftpSession *s, TftpSessionStats *out);

const char *tftp_result_name(TftpResult r);

G_END_DECLS
