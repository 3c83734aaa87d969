/* tftp-session.c - one transfer's state machine. See tftp-session.h.
 *
 * Blocks are counted with 64-bit absolute numbers inside; only the wire carries the 16-bit
 * number, so files past 65535 blocks roll over (to 0, or to 1 for clients that want it)
 * without a special case anywhere else.
 *
 * Sorcerer's apprentice (RFC 1350 errata, RFC 1123 4.2.3.1): a duplicate ACK never
 * triggers a send; only the timer retransmits. */
#include "tftp-session.h"

#include "tftp-netascii.h"

#include <string.h>

typedef enum {
    ST_OACK_SENT, /* waiting for ACK 0 (read) or DATA 1 (write) */
    ST_TRANSFER,
    ST_DALLY, /* upload complete; re-ACK a retransmitted last DATA for a while */
    ST_FINISHED,
} State;

struct TftpSession {
    TftpSessionParams p;
    TftpOptions oack;
    gboolean has_oack;
    TftpSendFn send;
    void *ctx;
    State state;
    TftpResult result;
    guint err_code;
    char err_text[128];
    gboolean final_ack_missing;

    TftpSource source;
    TftpSink sink;
    gboolean sink_open;

    guint8 *pkt; /* 4 + blksize: the packet being built */
    gsize pkt_len;
    guint8 last_ctl[512]; /* the last OACK or ACK, for retransmission */
    gsize last_ctl_len;

    /* read side */
    guint64 next_block; /* next block to send */
    guint64 acked;      /* highest block acknowledged (0: OACK or nothing) */
    guint64 last_block; /* number of the final (short) block, 0 until known */
    gsize last_len;     /* its payload length */
    guint64 built;      /* netascii: highest block encoded so far */
    guint64 *sent_at;   /* per window slot: when that block was first sent, 0 if resent */
    gboolean blocked;   /* the socket refused a datagram: retry from tick() */
    TftpNetasciiEncoder enc;
    guint64 raw_offset; /* netascii: source bytes consumed so far */
    guint8 *ra;         /* lock step: read-ahead of the source, READ_AHEAD bytes */
    guint64 ra_off;     /* file offset of ra[0] */
    gsize ra_len;       /* bytes valid in ra */

    /* write side */
    guint64 expected;   /* next block to receive */
    guint since_ack;    /* blocks received since the last ACK we sent */
    gboolean gap_acked; /* already answered the current gap (RFC 7440 section 4) */
    TftpNetasciiDecoder dec;
    guint8 *decoded;

    /* timer */
    guint64 deadline;
    guint64 rto, srtt, rttvar;
    guint retries; /* full-length timeouts without progress */
    guint stalls;  /* any timeouts without progress */
    guint64 rto_initial_eff;
    guint64 ctl_sent_at; /* when the OACK was sent, for an RTT sample from ACK 0 */

    TftpSessionStats stats;
};

/* ---- block numbers -------------------------------------------------------------------- */

static guint16 wire_block(const TftpSession *s, guint64 abs)
{
    if (abs == 0)
        return 0;
    if (s->p.rollover == 1)
        return (guint16)((abs - 1) % 65535 + 1);
    return (guint16)(abs & 0xffff);
}

/* How far the wire number n lies ahead of the absolute block base (mod the cycle). */
static guint64 wire_delta(const TftpSession *s, guint64 base, guint16 n)
{
    if (s->p.rollover == 1 && base > 0) {
        if (n == 0)
            return G_MAXUINT64; /* never on the wire after the start with rollover 1 */
        return (guint64)(((guint)n + 65535u - wire_block(s, base)) % 65535u);
    }
    return (guint64)(guint16)(n - wire_block(s, base));
}

/* ---- timer (RFC 6298, with Karn's rule: no samples from retransmitted packets) ---------- */

static void rtt_sample(TftpSession *s, guint64 r)
{
    if (s->srtt == 0) {
        s->srtt = MAX(r, 1);
        s->rttvar = r / 2;
    } else {
        guint64 diff = s->srtt > r ? s->srtt - r : r - s->srtt;
        s->rttvar = (3 * s->rttvar + diff) / 4;
        s->srtt = (7 * s->srtt + r) / 8;
    }
    s->rto = CLAMP(s->srtt + MAX(4 * s->rttvar, 1000), s->p.rto_min_us, s->p.rto_max_us);
}

static void backoff(TftpSession *s)
{
    s->rto = MIN(s->rto * 2, s->p.rto_max_us);
}

static void arm(TftpSession *s, guint64 now)
{
    s->deadline = now + s->rto;
}

/* ---- ending ----------------------------------------------------------------------------- */

static void release_io(TftpSession *s, gboolean commit_ok)
{
    if (s->source.close) {
        s->source.close(s->source.data);
        s->source.close = NULL;
    }
    if (s->sink_open) {
        if (!commit_ok && s->sink.abort)
            s->sink.abort(s->sink.data);
        s->sink_open = FALSE;
    }
}

static void finish(TftpSession *s, TftpResult r)
{
    if (s->result == TFTP_RESULT_RUNNING)
        s->result = r;
    release_io(s, FALSE);
    s->state = ST_FINISHED;
    s->deadline = G_MAXUINT64;
}

static void send_raw(TftpSession *s, const guint8 *buf, gsize len)
{
    s->stats.packets_sent++;
    (void)s->send(s->ctx, buf, len);
}

/* Sends ERROR and ends the transfer. */
static void fail(TftpSession *s, TftpResult r, TftpErrorCode code, const char *msg)
{
    guint8 b[160];
    s->err_code = code;
    g_strlcpy(s->err_text, msg ? msg : tftp_error_text(code), sizeof(s->err_text));
    send_raw(s, b, tftp_build_error(b, sizeof(b), code, s->err_text));
    finish(s, r);
}

static void peer_error(TftpSession *s, const TftpPacket *pk)
{
    s->err_code = pk->error_code;
    g_strlcpy(s->err_text, pk->error_msg ? pk->error_msg : "", sizeof(s->err_text));
    /* UEFI (EDK2) asks for tsize, reads the OACK and aborts with ERROR 8 before fetching
     * for real with a new RRQ: a probe, not a failure. */
    if (s->state == ST_OACK_SENT && !s->p.is_write && s->p.tsize_asked &&
        (pk->error_code == TFTP_ERR_OPTION || pk->error_code == TFTP_ERR_UNDEFINED))
        finish(s, TFTP_RESULT_TSIZE_PROBE);
    else
        finish(s, TFTP_RESULT_PEER_ERROR);
}

static void send_ctl(TftpSession *s, const guint8 *buf, gsize len, guint64 now)
{
    memcpy(s->last_ctl, buf, len);
    s->last_ctl_len = len;
    s->ctl_sent_at = now;
    send_raw(s, buf, len);
}

/* ---- read side -------------------------------------------------------------------------- */

/* Lock step reads a block at a time, and a read per block was a system call per datagram
 * for the file alone: small blocks come from a read-ahead buffer instead, filled a few
 * blocks at once. Small enough that a thousand lock-step transfers hold 16 MiB. */
#define READ_AHEAD 16384

/* Reads want bytes at off from the source, or what there is up to its end; -1 on a read
 * error, unless enough bytes were read by then (those are returned: the error comes back
 * when the rest is needed). */
static gssize read_full(TftpSession *s, guint64 off, guint8 *buf, gsize want, gsize enough)
{
    gsize got = 0;
    while (got < want) {
        gssize r = s->source.read(s->source.data, off + got, buf + got, want - got);
        if (r < 0)
            return got >= enough ? (gssize)got : -1;
        if (r == 0)
            break;
        got += (gsize)r;
    }
    return (gssize)got;
}

/* Copies len bytes at off from the source through the read-ahead buffer; returns the
 * bytes copied (fewer only at the end) or -1. */
static gssize read_ahead(TftpSession *s, guint64 off, guint8 *buf, gsize len)
{
    if (s->ra == NULL)
        s->ra = g_malloc(READ_AHEAD);
    if (off < s->ra_off || off + len > s->ra_off + s->ra_len) {
        /* a read error past this block does not fail it */
        gssize got = read_full(s, off, s->ra, READ_AHEAD, len);
        if (got < 0)
            return -1;
        s->ra_off = off;
        s->ra_len = (gsize)got;
    }
    gsize n = (gsize)MIN((guint64)len, s->ra_off + s->ra_len - off);
    memcpy(buf, s->ra + (off - s->ra_off), n);
    return (gssize)n;
}

/* Fills s->pkt with block abs; FALSE after a read error (already answered). */
static gboolean build_block(TftpSession *s, guint64 abs)
{
    tftp_build_data_header(s->pkt, 4 + s->p.blksize, wire_block(s, abs));
    gsize n = 0;
    if (s->p.mode == TFTP_MODE_NETASCII) {
        /* Window 1 only (negotiation sees to it), so blocks are built in order once and a
         * retransmission reuses the packet still in s->pkt. */
        guint8 raw[1024];
        while (n < s->p.blksize) {
            gssize r = 0;
            if (!tftp_netascii_encoder_pending(&s->enc)) {
                r = s->source.read(s->source.data, s->raw_offset, raw,
                                   MIN(sizeof(raw), s->p.blksize - n));
                if (r < 0)
                    goto read_error;
                if (r == 0)
                    break;
            }
            gsize used = 0;
            n += tftp_netascii_encode(&s->enc, raw, (gsize)r, &used, s->pkt + 4 + n,
                                      s->p.blksize - n);
            s->raw_offset += used;
        }
    } else if (s->p.windowsize == 1 && s->p.blksize <= READ_AHEAD / 4) {
        gssize r = read_ahead(s, (abs - 1) * (guint64)s->p.blksize, s->pkt + 4, s->p.blksize);
        if (r < 0)
            goto read_error;
        n = (gsize)r;
    } else {
        gssize r =
            read_full(s, (abs - 1) * (guint64)s->p.blksize, s->pkt + 4, s->p.blksize, G_MAXSIZE);
        if (r < 0)
            goto read_error;
        n = (gsize)r;
    }
    s->pkt_len = 4 + n;
    if (n < s->p.blksize) {
        s->last_block = abs;
        s->last_len = n;
    }
    return TRUE;

read_error:
    fail(s, TFTP_RESULT_LOCAL_ERROR, TFTP_ERR_UNDEFINED, "Read error");
    return FALSE;
}

/* Bytes of DATA packets one send_segments() call carries at most: what one UDP
 * segmentation-offload send takes. The batch is built on the stack, so that a thousand
 * sessions do not each hold a window's worth of memory. */
#define BATCH_BYTES 65000

/* Reads blocks b.. into buf as back-to-back DATA packets, at most count of them, with one
 * source read. Returns how many packets were built (the final short block, when reached,
 * is the last); -1 after a read error (already answered). */
static gssize build_batch(TftpSession *s, guint64 b, gsize count, guint8 *buf)
{
    gsize bs = s->p.blksize, want = count * bs, got;
    /* Read the file bytes in one piece at the end of buf, then slide each block down to
     * its packet's place: block i moves left by 4 * (count - 1 - i) bytes, over bytes
     * that were already moved, and leaves a 4-byte gap for its header. */
    guint8 *raw = buf + 4 * count;
    gssize r = read_full(s, (b - 1) * (guint64)bs, raw, want, G_MAXSIZE);
    if (r < 0) {
        fail(s, TFTP_RESULT_LOCAL_ERROR, TFTP_ERR_UNDEFINED, "Read error");
        return -1;
    }
    got = (gsize)r;
    gsize full = got / bs, n = full < count ? full + 1 : count;
    for (gsize i = 0; i < n; i++) {
        gsize len = i < full ? bs : got - full * bs;
        guint8 *pkt = buf + i * (4 + bs);
        memmove(pkt + 4, raw + i * bs, len);
        tftp_build_data_header(pkt, 4 + bs, wire_block(s, b + i));
        if (len < bs) {
            s->last_block = b + i;
            s->last_len = len;
        }
    }
    return (gssize)n;
}

/* Block b went out (first time or again): count it, and time it for an RTT sample only the
 * first time (Karn). */
static void note_sent(TftpSession *s, guint64 b, guint64 now)
{
    gboolean fresh = b > s->stats.blocks;
    s->stats.packets_sent++;
    if (fresh)
        s->stats.blocks = b;
    else
        s->stats.retransmits++;
    s->sent_at[b % s->p.windowsize] = fresh ? now : 0;
    s->next_block = b + 1;
}

/* The octet window's fast way: the blocks the window allows, built and sent in batches. */
static void send_window_batched(TftpSession *s, guint64 now)
{
    guint8 buf[BATCH_BYTES];
    gsize per_batch = BATCH_BYTES / (4 + s->p.blksize);
    while (s->state == ST_TRANSFER && s->next_block <= s->acked + s->p.windowsize &&
           (s->last_block == 0 || s->next_block <= s->last_block)) {
        guint64 b = s->next_block;
        guint64 end = s->acked + s->p.windowsize; /* last block the window allows */
        if (s->last_block != 0)
            end = MIN(end, s->last_block);
        gssize n = build_batch(s, b, (gsize)MIN(end - b + 1, per_batch), buf);
        if (n < 0)
            return;
        gsize seg = 4 + s->p.blksize;
        gsize len = (gsize)(n - 1) * seg + 4 +
                    (s->last_block == b + (guint64)n - 1 ? s->last_len : s->p.blksize);
        gsize sent = s->p.send_segments(s->ctx, buf, len, seg);
        for (gsize i = 0; i < sent; i++)
            note_sent(s, b + i, now);
        if (sent < (gsize)n) {
            s->blocked = TRUE; /* retried from tick(), not lost until the timer says so */
            break;
        }
    }
    arm(s, now);
}

/* Sends what the window allows from next_block on. */
static void send_window(TftpSession *s, guint64 now)
{
    s->blocked = FALSE;
    if (s->p.send_segments != NULL && s->p.mode != TFTP_MODE_NETASCII && s->p.windowsize > 1 &&
        BATCH_BYTES / (4 + s->p.blksize) >= 2) {
        send_window_batched(s, now);
        return;
    }
    while (s->state == ST_TRANSFER && s->next_block <= s->acked + s->p.windowsize &&
           (s->last_block == 0 || s->next_block <= s->last_block)) {
        guint64 b = s->next_block;
        if (s->p.mode != TFTP_MODE_NETASCII || b > s->built) {
            if (!build_block(s, b))
                return;
            s->built = b;
        }
        if (!s->send(s->ctx, s->pkt, s->pkt_len)) {
            s->blocked = TRUE; /* retried from tick(), not lost until the timer says so */
            break;
        }
        note_sent(s, b, now);
    }
    arm(s, now);
}

/* Wire bytes of a download whose last block is known. */
static guint64 delivered(const TftpSession *s)
{
    return (s->last_block - 1) * (guint64)s->p.blksize + s->last_len;
}

static void read_ack(TftpSession *s, guint16 n, guint64 now)
{
    if (s->state == ST_OACK_SENT) {
        if (n != 0)
            return;
        if (s->stalls == 0)
            rtt_sample(s, now - s->ctl_sent_at);
        s->state = ST_TRANSFER;
        s->retries = s->stalls = 0;
        send_window(s, now);
        return;
    }
    guint64 d = wire_delta(s, s->acked, n);
    if (d == 0 || d == G_MAXUINT64 || s->acked + d >= s->next_block)
        return; /* duplicate, or for a block not (yet) sent: never a trigger to send */
    guint64 b = s->acked + d;
    guint64 t = s->sent_at[b % s->p.windowsize];
    if (t != 0 && now >= t)
        rtt_sample(s, now - t);
    s->acked = b;
    s->retries = s->stalls = 0;
    if (s->last_block && b >= s->last_block) {
        s->stats.bytes = delivered(s);
        finish(s, TFTP_RESULT_OK);
        return;
    }
    s->stats.bytes = b * (guint64)s->p.blksize;
    /* Windows go in lock step (RFC 7440 section 4): the next one starts after the block
     * acknowledged, which resends the tail of the last window when the client saw a gap
     * and acknowledged the last block it had in order. */
    s->next_block = b + 1;
    send_window(s, now);
}

/* ---- write side ------------------------------------------------------------------------- */

static void send_ack(TftpSession *s, guint64 abs, guint64 now)
{
    guint8 b[4];
    send_ctl(s, b, tftp_build_ack(b, sizeof(b), wire_block(s, abs)), now);
    s->since_ack = 0;
}

static void write_data(TftpSession *s, const TftpPacket *pk, guint64 now)
{
    if (pk->data_len > s->p.blksize) {
        fail(s, TFTP_RESULT_PROTOCOL, TFTP_ERR_ILLEGAL_OP, "Block larger than negotiated");
        return;
    }
    if (s->state == ST_DALLY) {
        if (pk->block == wire_block(s, s->expected - 1))
            send_ack(s, s->expected - 1, now);
        return;
    }
    guint64 d = wire_delta(s, s->expected, pk->block);
    if (d != 0) {
        /* A duplicate (our ACK was lost) or a gap. Answer with the last in-order block,
         * once per event, so a burst of strays cannot make us an ACK storm. */
        if (!s->gap_acked && s->expected > 1) {
            send_ack(s, s->expected - 1, now);
            s->gap_acked = TRUE;
            arm(s, now);
        }
        return;
    }
    if (s->state == ST_OACK_SENT) {
        if (s->stalls == 0)
            rtt_sample(s, now - s->ctl_sent_at);
        s->state = ST_TRANSFER;
    }
    if (s->p.upload_max && s->stats.bytes + pk->data_len > s->p.upload_max) {
        fail(s, TFTP_RESULT_LOCAL_ERROR, TFTP_ERR_DISK_FULL, "Upload size limit exceeded");
        return;
    }
    const guint8 *out = pk->data;
    gsize out_len = pk->data_len;
    if (s->p.mode == TFTP_MODE_NETASCII) {
        out_len = tftp_netascii_decode(&s->dec, pk->data, pk->data_len, s->decoded);
        if (pk->data_len < s->p.blksize)
            out_len += tftp_netascii_decode_finish(&s->dec, s->decoded + out_len);
        out = s->decoded;
    }
    if (out_len && !s->sink.write(s->sink.data, out, out_len)) {
        fail(s, TFTP_RESULT_LOCAL_ERROR, TFTP_ERR_DISK_FULL, "Write failed");
        return;
    }
    s->stats.bytes += pk->data_len;
    s->stats.blocks++;
    s->expected++;
    s->since_ack++;
    s->retries = s->stalls = 0;
    s->gap_acked = FALSE;
    if (pk->data_len < s->p.blksize) {
        if (!s->sink.commit(s->sink.data)) {
            s->sink_open = FALSE; /* commit cleans up after itself */
            fail(s, TFTP_RESULT_LOCAL_ERROR, TFTP_ERR_DISK_FULL, "Could not store file");
            return;
        }
        s->sink_open = FALSE;
        send_ack(s, s->expected - 1, now);
        s->result = TFTP_RESULT_OK;
        s->state = ST_DALLY;
        /* Long enough for the client to time out once and retransmit the last block. */
        s->deadline = now + MAX(2 * s->rto, s->p.rto_initial_us);
        return;
    }
    if (s->since_ack >= s->p.windowsize)
        send_ack(s, s->expected - 1, now);
    arm(s, now);
}

/* ---- public ----------------------------------------------------------------------------- */

static TftpSession *session_new(const TftpSessionParams *p, TftpSendFn send, void *ctx, guint64 now)
{
    g_return_val_if_fail(p->blksize >= TFTP_BLKSIZE_MIN && p->blksize <= TFTP_BLKSIZE_MAX, NULL);
    TftpSession *s = g_new0(TftpSession, 1);
    s->p = *p;
    s->p.windowsize = MAX(p->windowsize, 1u);
    s->p.rto_min_us = MAX(p->rto_min_us, 1000);
    s->p.rto_max_us = MAX(p->rto_max_us, s->p.rto_min_us);
    if (p->oack) {
        s->oack = *p->oack;
        s->has_oack = p->oack->has_blksize || p->oack->has_timeout || p->oack->has_tsize ||
                      p->oack->has_windowsize;
    }
    s->p.oack = NULL;
    s->send = send;
    s->ctx = ctx;
    s->rto = CLAMP(p->rto_initial_us, s->p.rto_min_us, s->p.rto_max_us);
    s->rto_initial_eff = s->rto;
    s->stats.started_us = now;
    s->pkt = g_malloc(4 + p->blksize);
    s->sent_at = g_new0(guint64, s->p.windowsize);
    s->expected = 1;
    tftp_netascii_encoder_init(&s->enc);
    tftp_netascii_decoder_init(&s->dec);
    return s;
}

static void send_oack(TftpSession *s, guint64 now)
{
    guint8 b[sizeof(s->last_ctl)];
    send_ctl(s, b, tftp_build_oack(b, sizeof(b), &s->oack), now);
    s->state = ST_OACK_SENT;
    arm(s, now);
}

TftpSession *tftp_session_new_read(const TftpSessionParams *p, TftpSource source, TftpSendFn send,
                                   void *ctx, guint64 now_us)
{
    TftpSession *s = session_new(p, send, ctx, now_us);
    if (s == NULL) {
        if (source.close)
            source.close(source.data);
        return NULL;
    }
    s->source = source;
    s->next_block = 1;
    if (s->has_oack) {
        send_oack(s, now_us);
    } else {
        s->state = ST_TRANSFER;
        send_window(s, now_us);
    }
    return s;
}

TftpSession *tftp_session_new_write(const TftpSessionParams *p, TftpSink sink, TftpSendFn send,
                                    void *ctx, guint64 now_us)
{
    TftpSession *s = session_new(p, send, ctx, now_us);
    if (s == NULL) {
        if (sink.abort)
            sink.abort(sink.data);
        return NULL;
    }
    s->sink = sink;
    s->sink_open = TRUE;
    s->decoded = g_malloc(p->blksize + 1);
    if (s->has_oack) {
        send_oack(s, now_us);
    } else {
        s->state = ST_OACK_SENT; /* ACK 0 plays the OACK's part */
        send_ack(s, 0, now_us);
        arm(s, now_us);
    }
    return s;
}

void tftp_session_free(TftpSession *s)
{
    if (s == NULL)
        return;
    release_io(s, FALSE);
    g_free(s->pkt);
    g_free(s->ra);
    g_free(s->sent_at);
    g_free(s->decoded);
    g_free(s);
}

void tftp_session_abandon(TftpSession *s, const char *reason)
{
    if (s->state == ST_FINISHED)
        return;
    g_strlcpy(s->err_text, reason, sizeof(s->err_text));
    finish(s, s->state == ST_DALLY ? TFTP_RESULT_OK : TFTP_RESULT_PEER_ERROR);
}

void tftp_session_input(TftpSession *s, const guint8 *buf, gsize len, guint64 now)
{
    if (s->state == ST_FINISHED)
        return;
    TftpPacket pk;
    if (tftp_packet_parse(buf, len, &pk) != TFTP_PARSE_OK) {
        if (s->state != ST_DALLY)
            fail(s, TFTP_RESULT_PROTOCOL, TFTP_ERR_ILLEGAL_OP, "Malformed packet");
        return;
    }
    if (pk.op == TFTP_OP_ERROR) {
        if (s->state == ST_DALLY)
            finish(s, TFTP_RESULT_OK); /* whatever it says, the file is stored */
        else
            peer_error(s, &pk);
        return;
    }
    if (!s->p.is_write && pk.op == TFTP_OP_ACK) {
        read_ack(s, pk.block, now);
        return;
    }
    if (s->p.is_write && pk.op == TFTP_OP_DATA) {
        write_data(s, &pk, now);
        return;
    }
    /* A retransmitted request reaching the transfer's port is harmless; anything else
     * is not TFTP at this stage. */
    if (pk.op == TFTP_OP_RRQ || pk.op == TFTP_OP_WRQ || s->state == ST_DALLY)
        return;
    fail(s, TFTP_RESULT_PROTOCOL, TFTP_ERR_ILLEGAL_OP, "Unexpected packet");
}

void tftp_session_tick(TftpSession *s, guint64 now)
{
    if (s->state == ST_FINISHED)
        return;
    if (s->blocked && s->state == ST_TRANSFER && now < s->deadline) {
        send_window(s, now);
        return;
    }
    if (now < s->deadline)
        return;
    if (s->state == ST_DALLY) {
        s->state = ST_FINISHED;
        s->deadline = G_MAXUINT64;
        return;
    }
    /* Only timeouts at least as long as the initial one count against max_retries: after
     * the timer adapted to a fast path, the first few quick retransmissions are about
     * loss, not about a client gone away, and a busy server (1,000 transfers bursting
     * into one loopback queue) must not drop sessions a second after its first losses.
     * The quick ones are bounded too. */
    if (s->rto >= s->rto_initial_eff)
        s->retries++;
    if (++s->stalls > s->p.max_retries + 16 || s->retries > s->p.max_retries) {
        /* RFC 1350 section 6: the final ACK may be lost and the client gone happily. */
        if (!s->p.is_write && s->state == ST_TRANSFER && s->last_block &&
            s->next_block > s->last_block) {
            s->final_ack_missing = TRUE;
            s->stats.bytes = delivered(s);
            finish(s, TFTP_RESULT_OK);
            return;
        }
        s->err_code = 0;
        g_strlcpy(s->err_text, "Timed out", sizeof(s->err_text));
        finish(s, TFTP_RESULT_TIMEOUT);
        return;
    }
    backoff(s);
    if (s->p.is_write && s->state == ST_TRANSFER) {
        /* RFC 7440: on silence the receiver acknowledges what it has in order. */
        s->stats.retransmits++;
        send_ack(s, s->expected - 1, now);
        arm(s, now);
        return;
    }
    if (s->state == ST_OACK_SENT) {
        s->stats.retransmits++;
        send_raw(s, s->last_ctl, s->last_ctl_len);
        s->ctl_sent_at = now;
        arm(s, now);
        return;
    }
    /* Go back to the first unacknowledged block and resend the window. */
    s->next_block = s->acked + 1;
    send_window(s, now);
}

guint64 tftp_session_deadline(const TftpSession *s)
{
    return s->blocked ? 0 : s->deadline;
}

TftpResult tftp_session_result(const TftpSession *s)
{
    return s->result;
}

gboolean tftp_session_finished(const TftpSession *s)
{
    return s->state == ST_FINISHED;
}

guint tftp_session_error_code(const TftpSession *s)
{
    return s->err_code;
}

const char *tftp_session_error_text(const TftpSession *s)
{
    return s->err_text;
}

gboolean tftp_session_final_ack_missing(const TftpSession *s)
{
    return s->final_ack_missing;
}

void tftp_session_stats(const TftpSession *s, TftpSessionStats *out)
{
    *out = s->stats;
    out->rto_us = s->rto;
    out->srtt_us = s->srtt;
}

const char *tftp_result_name(TftpResult r)
{
    switch (r) {
    case TFTP_RESULT_RUNNING:
        return "running";
    case TFTP_RESULT_OK:
        return "ok";
    case TFTP_RESULT_TSIZE_PROBE:
        return "tsize-probe";
    case TFTP_RESULT_TIMEOUT:
        return "timeout";
    case TFTP_RESULT_PEER_ERROR:
        return "client-error";
    case TFTP_RESULT_PROTOCOL:
        return "protocol-error";
    case TFTP_RESULT_LOCAL_ERROR:
        return "server-error";
    }
    return "?";
}
