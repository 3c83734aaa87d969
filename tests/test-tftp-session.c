/* test-tftp-session.c - the transfer state machine driven packet by packet with a fake
 * clock: lock step, windows, block-number rollover, loss, duplicates, reordering, the
 * adaptive timer, uploads, netascii, and the files layer beneath the root. */
#include "tftp-fs.h"
#include "tftp-session.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- a fake network: every datagram the session sends is kept --------------------------- */

typedef struct {
    GPtrArray *sent; /* GBytes */
    gboolean refuse; /* simulate a full socket buffer */
    guint seg_limit; /* send_segments: datagrams taken per call, 0 = all */
    guint seg_calls;
} Net;

static gboolean net_send(void *ctx, const guint8 *buf, gsize len)
{
    Net *n = ctx;
    if (n->refuse)
        return FALSE;
    g_ptr_array_add(n->sent, g_bytes_new(buf, len));
    return TRUE;
}

/* What pb_udp_send_segments does to the bytes: cut at every seg_len. */
static gsize net_send_segments(void *ctx, const guint8 *buf, gsize len, gsize seg_len)
{
    Net *n = ctx;
    n->seg_calls++;
    if (n->refuse)
        return 0;
    gsize k = 0;
    for (gsize off = 0; off < len && (n->seg_limit == 0 || k < n->seg_limit); off += seg_len, k++) {
        gsize l = MIN(seg_len, len - off);
        if (off + seg_len < len)
            g_assert_cmpuint(l, ==, seg_len); /* only the last may be short */
        g_ptr_array_add(n->sent, g_bytes_new(buf + off, l));
    }
    return k;
}

static Net *net_new(void)
{
    Net *n = g_new0(Net, 1);
    n->sent = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    return n;
}

static void net_free(Net *n)
{
    g_ptr_array_unref(n->sent);
    g_free(n);
}

/* Parses sent packet i. */
static TftpPacket sent(Net *n, guint i)
{
    g_assert_cmpuint(i, <, n->sent->len);
    gsize len;
    const guint8 *d = g_bytes_get_data(n->sent->pdata[i], &len);
    TftpPacket p;
    g_assert_cmpint(tftp_packet_parse(d, len, &p), ==, TFTP_PARSE_OK);
    return p;
}

static void ack(TftpSession *s, guint16 block, guint64 now)
{
    guint8 b[4];
    tftp_build_ack(b, sizeof(b), block);
    tftp_session_input(s, b, 4, now);
}

static void data(TftpSession *s, guint16 block, const void *d, gsize len, guint64 now)
{
    guint8 b[70000];
    tftp_session_input(s, b, tftp_build_data(b, sizeof(b), block, d, len), now);
}

/* ---- a generated source: byte i of the file is a function of i --------------------------- */

typedef struct {
    guint64 size;
    gboolean closed;
    gboolean fail_at_4k;
} GenFile;

static guint8 gen_byte(guint64 i)
{
    return (guint8)((i * 2654435761u) >> 13);
}

static gssize gen_read(void *data, guint64 off, guint8 *buf, gsize len)
{
    GenFile *g = data;
    if (g->fail_at_4k && off >= 4096)
        return -1;
    if (off >= g->size)
        return 0;
    gsize n = (gsize)MIN((guint64)len, g->size - off);
    if (g->fail_at_4k && off + n > 4096)
        n = 4096 - (gsize)off; /* like a disk: what lies before the bad sector, then errors */
    for (gsize i = 0; i < n; i++)
        buf[i] = gen_byte(off + i);
    return (gssize)n;
}

static void gen_close(void *data)
{
    ((GenFile *)data)->closed = TRUE;
}

static TftpSource gen_source(GenFile *g)
{
    return (TftpSource){.read = gen_read, .close = gen_close, .data = g};
}

/* A memory source over fixed bytes. */
typedef struct {
    const guint8 *d;
    gsize len;
} Mem;

static gssize mem_read(void *data, guint64 off, guint8 *buf, gsize len)
{
    Mem *m = data;
    if (off >= m->len)
        return 0;
    gsize n = MIN(len, m->len - (gsize)off);
    memcpy(buf, m->d + off, n);
    return (gssize)n;
}

/* ---- a memory sink ---------------------------------------------------------------------- */

typedef struct {
    GByteArray *got;
    gboolean committed, aborted;
} MemSink;

static gboolean sink_write(void *data, const guint8 *buf, gsize len)
{
    g_byte_array_append(((MemSink *)data)->got, buf, len);
    return TRUE;
}

static gboolean sink_commit(void *data)
{
    ((MemSink *)data)->committed = TRUE;
    return TRUE;
}

static void sink_abort(void *data)
{
    ((MemSink *)data)->aborted = TRUE;
}

static TftpSink mem_sink(MemSink *m)
{
    m->got = g_byte_array_new();
    return (TftpSink){.write = sink_write, .commit = sink_commit, .abort = sink_abort, .data = m};
}

static TftpSessionParams params(gboolean write, guint blksize, guint window)
{
    return (TftpSessionParams){.is_write = write,
                               .mode = TFTP_MODE_OCTET,
                               .blksize = blksize,
                               .windowsize = window,
                               .rto_initial_us = 1000000,
                               .rto_min_us = 50000,
                               .rto_max_us = 8000000,
                               .max_retries = 4};
}

#define MS  1000
#define SEC 1000000

/* ---- downloads -------------------------------------------------------------------------- */

static void test_lockstep_download(void)
{
    Net *n = net_new();
    GenFile g = {.size = 1300};
    TftpSessionParams p = params(FALSE, 512, 1);
    TftpSession *s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    g_assert_cmpuint(n->sent->len, ==, 1);
    TftpPacket d = sent(n, 0);
    g_assert_cmpint(d.op, ==, TFTP_OP_DATA);
    g_assert_cmpuint(d.block, ==, 1);
    g_assert_cmpuint(d.data_len, ==, 512);
    g_assert_cmpuint(d.data[7], ==, gen_byte(7));
    ack(s, 1, 10 * MS);
    ack(s, 1, 11 * MS); /* duplicate: nothing may be sent (sorcerer's apprentice) */
    ack(s, 1, 12 * MS);
    g_assert_cmpuint(n->sent->len, ==, 2);
    ack(s, 2, 20 * MS);
    d = sent(n, 2);
    g_assert_cmpuint(d.block, ==, 3);
    g_assert_cmpuint(d.data_len, ==, 1300 - 1024);
    g_assert_cmpuint(d.data[0], ==, gen_byte(1024));
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_RUNNING);
    ack(s, 3, 30 * MS);
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_OK);
    g_assert_true(tftp_session_finished(s));
    g_assert_true(g.closed);
    TftpSessionStats st;
    tftp_session_stats(s, &st);
    g_assert_cmpuint(st.bytes, ==, 1300);
    g_assert_cmpuint(st.retransmits, ==, 0);
    g_assert_false(tftp_session_final_ack_missing(s));
    tftp_session_free(s);
    net_free(n);
}

static void test_exact_multiple(void)
{
    /* A file of exactly two blocks ends with an empty third block (RFC 1350 section 6). */
    Net *n = net_new();
    GenFile g = {.size = 1024};
    TftpSessionParams p = params(FALSE, 512, 1);
    TftpSession *s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    ack(s, 1, 1);
    ack(s, 2, 2);
    TftpPacket d = sent(n, 2);
    g_assert_cmpuint(d.block, ==, 3);
    g_assert_cmpuint(d.data_len, ==, 0);
    ack(s, 3, 3);
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_OK);
    tftp_session_free(s);
    net_free(n);
}

static void test_oack_and_probe(void)
{
    Net *n = net_new();
    GenFile g = {.size = 5000};
    TftpOptions o = {.has_blksize = TRUE, .blksize = 1428, .has_tsize = TRUE, .tsize = 5000};
    TftpSessionParams p = params(FALSE, 1428, 1);
    p.oack = &o;
    p.tsize_asked = TRUE;
    TftpSession *s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    TftpPacket pk = sent(n, 0);
    g_assert_cmpint(pk.op, ==, TFTP_OP_OACK);
    g_assert_cmpuint(pk.opts.tsize, ==, 5000);
    ack(s, 1, 5); /* not ACK 0: ignored */
    g_assert_cmpuint(n->sent->len, ==, 1);
    ack(s, 0, 10 * MS);
    pk = sent(n, 1);
    g_assert_cmpint(pk.op, ==, TFTP_OP_DATA);
    g_assert_cmpuint(pk.data_len, ==, 1428);
    tftp_session_free(s);

    /* UEFI's probe: OACK, then ERROR 8. Not a failure, and the file is closed at once. */
    g_ptr_array_set_size(n->sent, 0);
    g.closed = FALSE;
    s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    guint8 b[64];
    gsize len = tftp_build_error(b, sizeof(b), TFTP_ERR_OPTION, "tsize only");
    tftp_session_input(s, b, len, 10 * MS);
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_TSIZE_PROBE);
    g_assert_true(tftp_session_finished(s));
    g_assert_true(g.closed);
    g_assert_cmpuint(n->sent->len, ==, 1); /* no ERROR back */
    tftp_session_free(s);

    /* The same ERROR in the middle of a transfer is the client's failure. */
    g_ptr_array_set_size(n->sent, 0);
    s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    ack(s, 0, 1);
    tftp_session_input(s, b, len, 2);
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_PEER_ERROR);
    g_assert_cmpuint(tftp_session_error_code(s), ==, 8);
    g_assert_cmpstr(tftp_session_error_text(s), ==, "tsize only");
    tftp_session_free(s);
    net_free(n);
}

/* Downloads a generated file, checking every byte, acking each window's last block. */
static void run_download(guint64 size, guint blksize, guint window, guint rollover,
                         gboolean batched)
{
    Net *n = net_new();
    GenFile g = {.size = size};
    TftpSessionParams p = params(FALSE, blksize, window);
    p.rollover = rollover;
    if (batched)
        p.send_segments = net_send_segments;
    TftpSession *s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    guint64 got = 0, blocks = 0, now = 0;
    guint i = 0;
    gboolean saw_zero = FALSE, saw_wrap = FALSE;
    while (!tftp_session_finished(s)) {
        g_assert_cmpuint(i, <, n->sent->len);
        TftpPacket d = sent(n, i++);
        g_assert_cmpint(d.op, ==, TFTP_OP_DATA);
        blocks++;
        guint16 expect = rollover == 1 ? (guint16)((blocks - 1) % 65535 + 1) : (guint16)blocks;
        g_assert_cmpuint(d.block, ==, expect);
        saw_zero |= d.block == 0;
        saw_wrap |= blocks > 65535 && d.block == 1;
        for (gsize k = 0; k < d.data_len; k += 97)
            if (d.data[k] != gen_byte(got + k))
                g_error("byte %" G_GUINT64_FORMAT " differs", got + k);
        got += d.data_len;
        if (blocks % window == 0 || d.data_len < blksize) {
            now += 100;
            ack(s, d.block, now);
        }
        if (i > 4096) { /* keep memory flat on the long runs */
            g_ptr_array_remove_range(n->sent, 0, i);
            i = 0;
        }
    }
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_OK);
    g_assert_cmpuint(got, ==, size);
    if (size / blksize > 65536) {
        g_assert_true(rollover == 1 ? saw_wrap : saw_zero);
        g_assert_true(rollover == 1 ? !saw_zero : TRUE);
    }
    TftpSessionStats st;
    tftp_session_stats(s, &st);
    g_assert_cmpuint(st.bytes, ==, size);
    g_assert_cmpuint(st.retransmits, ==, 0);
    /* Batches are used where a window holds two blocks or more, and are then whole windows
     * (or as much of one as 65000 bytes hold). */
    guint per_call = 65000 / (4 + blksize);
    if (batched && window > 1 && per_call >= 2) {
        guint64 windows = (st.blocks + window - 1) / window;
        g_assert_cmpuint(n->seg_calls, <=, windows * ((window + per_call - 1) / per_call));
    } else
        g_assert_cmpuint(n->seg_calls, ==, 0);
    tftp_session_free(s);
    net_free(n);
}

static void test_rollover(void)
{
    /* More than 65536 blocks at blksize 512. */
    run_download(65540ull * 512 + 100, 512, 1, 0, FALSE);
    run_download(65540ull * 512 + 100, 512, 1, 1, FALSE);
    run_download(70000ull * 512, 512, 16, 0, FALSE);
    run_download(70000ull * 512, 512, 16, 0, TRUE);
    run_download(65540ull * 512 + 100, 512, 16, 1, TRUE);
}

static void test_windows(void)
{
    for (int batched = 0; batched <= 1; batched++) {
        run_download(100000, 1428, 4, 0, batched);
        run_download(100000, 1428, 16, 0, batched);
        run_download(16 * 1428, 1428, 16, 0, batched); /* an empty block in a new window */
        run_download(15 * 1428, 1428, 16, 0, batched); /* an empty block ends the window */
        run_download(1, 8192, 64, 0, batched);
        run_download(3000000, 8192, 64, 0, batched); /* 7 blocks a batch */
        run_download(3000000, 1428, 64, 0, batched); /* 45 blocks a batch */
        run_download(200000, 40000, 4, 0, batched);  /* too big to batch: one by one */
        run_download(100000, 1428, 1, 0, batched);   /* lock step: one by one */
    }
}

/* A socket that takes only part of a batch: the rest follows from tick(), in order, and
 * nothing counts as a retransmission; a gap then resends through the batch path. */
static void test_batched_partial(void)
{
    Net *n = net_new();
    GenFile g = {.size = 100000};
    TftpSessionParams p = params(FALSE, 512, 16);
    p.send_segments = net_send_segments;
    n->seg_limit = 5;
    TftpSession *s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    g_assert_cmpuint(n->sent->len, ==, 5);
    g_assert_cmpuint(tftp_session_deadline(s), ==, 0); /* blocked: retry at once */
    tftp_session_tick(s, 1 * MS);
    g_assert_cmpuint(n->sent->len, ==, 10);
    tftp_session_tick(s, 2 * MS);
    tftp_session_tick(s, 3 * MS);
    g_assert_cmpuint(n->sent->len, ==, 16);
    g_assert_cmpuint(tftp_session_deadline(s), >, 3 * MS); /* window full: wait for the ACK */
    for (guint i = 0; i < 16; i++)
        g_assert_cmpuint(sent(n, i).block, ==, i + 1);
    TftpSessionStats st;
    tftp_session_stats(s, &st);
    g_assert_cmpuint(st.retransmits, ==, 0);
    g_assert_cmpuint(st.packets_sent, ==, 16);
    /* The client lost block 9: it acknowledges 8, and 9.. go again. */
    n->seg_limit = 0;
    ack(s, 8, 10 * MS);
    g_assert_cmpuint(n->sent->len, ==, 32);
    g_assert_cmpuint(sent(n, 16).block, ==, 9);
    g_assert_cmpuint(sent(n, 31).block, ==, 24);
    tftp_session_stats(s, &st);
    g_assert_cmpuint(st.retransmits, ==, 8); /* 9-16 */
    tftp_session_free(s);

    /* A read error while building a batch is answered with ERROR, and nothing of the
     * failed batch goes out. */
    g_ptr_array_set_size(n->sent, 0);
    GenFile bad = {.size = 100000, .fail_at_4k = TRUE};
    p.blksize = 256;
    s = tftp_session_new_read(&p, gen_source(&bad), net_send, n, 0);
    g_assert_cmpuint(n->sent->len, ==, 16); /* blocks 1-16 lie below 4 KiB */
    ack(s, 16, 5 * MS);
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_LOCAL_ERROR);
    g_assert_cmpuint(n->sent->len, ==, 17);
    g_assert_cmpint(sent(n, 16).op, ==, TFTP_OP_ERROR);
    g_assert_true(bad.closed);
    tftp_session_free(s);
    net_free(n);
}

static void test_window_gap(void)
{
    /* Window 4: blocks 1-4 sent; the client lost 3, so it acknowledges 2. The next window
     * starts at 3 (RFC 7440 section 4). */
    Net *n = net_new();
    GenFile g = {.size = 100000};
    TftpSessionParams p = params(FALSE, 512, 4);
    TftpSession *s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    g_assert_cmpuint(n->sent->len, ==, 4);
    ack(s, 2, 10 * MS);
    g_assert_cmpuint(n->sent->len, ==, 8);
    g_assert_cmpuint(sent(n, 4).block, ==, 3);
    g_assert_cmpuint(sent(n, 7).block, ==, 6);
    /* A stale ACK from before, reordered behind the new one: ignored. */
    ack(s, 1, 11 * MS);
    ack(s, 2, 11 * MS);
    g_assert_cmpuint(n->sent->len, ==, 8);
    /* An ACK for a block never sent: ignored. */
    ack(s, 9, 12 * MS);
    g_assert_cmpuint(n->sent->len, ==, 8);
    ack(s, 6, 20 * MS);
    g_assert_cmpuint(sent(n, 8).block, ==, 7);
    tftp_session_free(s);
    net_free(n);
}

static void test_timeout_backoff_and_give_up(void)
{
    Net *n = net_new();
    GenFile g = {.size = 10000};
    TftpSessionParams p = params(FALSE, 512, 1);
    TftpSession *s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    g_assert_cmpuint(tftp_session_deadline(s), ==, 1 * SEC); /* TimeoutInterval */
    tftp_session_tick(s, SEC - 1);
    g_assert_cmpuint(n->sent->len, ==, 1);
    guint64 t = 0, expect_rto = SEC;
    for (guint r = 1; r <= p.max_retries; r++) {
        t = tftp_session_deadline(s);
        tftp_session_tick(s, t);
        g_assert_cmpuint(n->sent->len, ==, 1 + r);
        g_assert_cmpuint(sent(n, r).block, ==, 1); /* the same block again */
        expect_rto = MIN(expect_rto * 2, p.rto_max_us);
        g_assert_cmpuint(tftp_session_deadline(s) - t, ==, expect_rto); /* backing off */
    }
    tftp_session_tick(s, tftp_session_deadline(s));
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_TIMEOUT);
    g_assert_true(tftp_session_finished(s));
    g_assert_true(g.closed);
    /* Bounded: 1 + 2 + 4 + 8 + 8 s. */
    g_assert_cmpuint(t, <=, 30 * SEC);
    tftp_session_free(s);
    net_free(n);
}

/* A lock-step download whose first 50 blocks were acknowledged after a steady 2 ms round
 * trip each, so that its timer has adapted; *now is the time of the last ACK. */
static TftpSession *adapted_download(Net *n, GenFile *g, guint64 *now)
{
    TftpSessionParams p = params(FALSE, 512, 1);
    p.rto_min_us = 1000;
    TftpSession *s = tftp_session_new_read(&p, gen_source(g), net_send, n, 0);
    *now = 0;
    for (guint16 b = 1; b <= 50; b++) {
        *now += 2 * MS;
        ack(s, b, *now);
    }
    return s;
}

static void test_adaptive_rto(void)
{
    Net *n = net_new();
    GenFile g = {.size = 512 * 200};
    guint64 now;
    TftpSession *s = adapted_download(n, &g, &now);
    TftpSessionStats st;
    tftp_session_stats(s, &st);
    g_assert_cmpuint(st.srtt_us, >=, 1900);
    g_assert_cmpuint(st.srtt_us, <=, 2100);
    g_assert_cmpuint(st.rto_us, <, 20 * MS); /* far below the initial second */
    g_assert_cmpuint(tftp_session_deadline(s), ==, now + st.rto_us);
    /* A loss: retransmitted after the measured timeout, not a second later. */
    guint before = n->sent->len;
    tftp_session_tick(s, now + st.rto_us);
    g_assert_cmpuint(n->sent->len, ==, before + 1);
    g_assert_cmpuint(sent(n, before).block, ==, 51);
    /* Karn: the ACK of a retransmitted block gives no sample (10 ms would otherwise
     * raise srtt). */
    ack(s, 51, now + st.rto_us + 10 * MS);
    TftpSessionStats st2;
    tftp_session_stats(s, &st2);
    g_assert_cmpuint(st2.srtt_us, ==, st.srtt_us);
    g_assert_cmpuint(st2.retransmits, ==, 1);
    tftp_session_free(s);
    net_free(n);
}

static void test_quick_timeouts_not_counted(void)
{
    /* After the timer adapted to a 2 ms path, the first retransmissions come fast; they
     * do not use up max_retries, so a loaded server does not drop a session within a
     * second of its first losses. Giving up still happens, within bounds. */
    Net *n = net_new();
    GenFile g = {.size = 512 * 200};
    guint64 now;
    TftpSession *s = adapted_download(n, &g, &now);
    TftpSessionParams p = params(FALSE, 512, 1);
    guint before = n->sent->len;
    guint64 silent_from = now;
    while (!tftp_session_finished(s)) {
        now = tftp_session_deadline(s);
        tftp_session_tick(s, now);
    }
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_TIMEOUT);
    guint resent = n->sent->len - before;
    g_assert_cmpuint(resent, >, p.max_retries);
    g_assert_cmpuint(resent, <=, p.max_retries + 16);
    g_assert_cmpuint(now - silent_from, >, 4 * SEC);
    g_assert_cmpuint(now - silent_from, <, 60 * SEC);
    tftp_session_free(s);
    net_free(n);
}

static void test_missing_final_ack(void)
{
    Net *n = net_new();
    GenFile g = {.size = 700};
    TftpSessionParams p = params(FALSE, 512, 1);
    TftpSession *s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    ack(s, 1, 1 * MS);
    while (!tftp_session_finished(s))
        tftp_session_tick(s, tftp_session_deadline(s));
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_OK);
    g_assert_true(tftp_session_final_ack_missing(s));
    TftpSessionStats st;
    tftp_session_stats(s, &st);
    g_assert_cmpuint(st.bytes, ==, 700);
    tftp_session_free(s);
    net_free(n);
}

static void test_read_error_and_illegal(void)
{
    Net *n = net_new();
    GenFile g = {.size = 10000, .fail_at_4k = TRUE};
    TftpSessionParams p = params(FALSE, 1024, 1);
    TftpSession *s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    for (guint16 b = 1; b <= 4; b++)
        ack(s, b, b);
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_LOCAL_ERROR);
    TftpPacket e = sent(n, n->sent->len - 1);
    g_assert_cmpint(e.op, ==, TFTP_OP_ERROR);
    g_assert_cmpuint(e.error_code, ==, TFTP_ERR_UNDEFINED);
    tftp_session_free(s);

    /* Lock step reads ahead, past the block it needs: a read error there must not cost
     * the blocks before it. 512-byte blocks: 1-8 lie below 4 KiB and go out whole. */
    g_ptr_array_set_size(n->sent, 0);
    g = (GenFile){.size = 10000, .fail_at_4k = TRUE};
    TftpSessionParams small = params(FALSE, 512, 1);
    s = tftp_session_new_read(&small, gen_source(&g), net_send, n, 0);
    for (guint16 b = 1; b <= 8; b++) {
        TftpPacket d = sent(n, b - 1);
        g_assert_cmpint(d.op, ==, TFTP_OP_DATA);
        g_assert_cmpuint(d.data_len, ==, 512);
        g_assert_cmpuint(d.data[511], ==, gen_byte((guint64)b * 512 - 1));
        ack(s, b, b);
    }
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_LOCAL_ERROR);
    g_assert_cmpuint(n->sent->len, ==, 9);
    g_assert_cmpint(sent(n, 8).op, ==, TFTP_OP_ERROR);
    tftp_session_free(s);

    /* DATA sent to a download is illegal: ERROR 4. */
    g_ptr_array_set_size(n->sent, 0);
    g.fail_at_4k = FALSE;
    s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    data(s, 1, "x", 1, 5);
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_PROTOCOL);
    g_assert_cmpuint(sent(n, 1).error_code, ==, TFTP_ERR_ILLEGAL_OP);
    tftp_session_free(s);

    /* A retransmitted RRQ reaching the transfer's port changes nothing. */
    g_ptr_array_set_size(n->sent, 0);
    s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    guint8 b[64];
    tftp_session_input(s, b, tftp_build_request(b, sizeof(b), TFTP_OP_RRQ, "f", "octet", NULL), 5);
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_RUNNING);
    g_assert_cmpuint(n->sent->len, ==, 1);
    tftp_session_free(s);
    net_free(n);
}

static void test_blocked_socket(void)
{
    /* A full socket buffer: the window resumes from tick() without waiting a timeout. */
    Net *n = net_new();
    GenFile g = {.size = 100000};
    TftpSessionParams p = params(FALSE, 512, 8);
    n->refuse = TRUE;
    TftpSession *s = tftp_session_new_read(&p, gen_source(&g), net_send, n, 0);
    g_assert_cmpuint(n->sent->len, ==, 0);
    g_assert_cmpuint(tftp_session_deadline(s), ==, 0);
    n->refuse = FALSE;
    tftp_session_tick(s, 5 * MS);
    g_assert_cmpuint(n->sent->len, ==, 8);
    g_assert_cmpuint(sent(n, 0).block, ==, 1);
    TftpSessionStats st;
    tftp_session_stats(s, &st);
    g_assert_cmpuint(st.retransmits, ==, 0);
    tftp_session_free(s);
    net_free(n);
}

static void test_netascii_download(void)
{
    /* Every LF grows to CR LF, so the wire blocks straddle pairs. */
    GString *text = g_string_new(NULL);
    for (int i = 0; i < 300; i++)
        g_string_append_printf(text, "line %d\n%s", i, i % 7 ? "" : "bare\rcr\n");
    Mem m = {(const guint8 *)text->str, text->len};
    Net *n = net_new();
    TftpSessionParams p = params(FALSE, 512, 1);
    p.mode = TFTP_MODE_NETASCII;
    TftpSession *s =
        tftp_session_new_read(&p, (TftpSource){.read = mem_read, .data = &m}, net_send, n, 0);
    GByteArray *wire = g_byte_array_new();
    guint i = 0;
    while (!tftp_session_finished(s)) {
        TftpPacket d = sent(n, i++);
        if (i == 3) { /* lose block 3 once: the retransmission must be identical */
            tftp_session_tick(s, tftp_session_deadline(s));
            TftpPacket again = sent(n, i++);
            g_assert_cmpuint(again.block, ==, d.block);
            g_assert_cmpmem(again.data, again.data_len, d.data, d.data_len);
        }
        g_byte_array_append(wire, d.data, d.data_len);
        ack(s, d.block, i);
    }
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_OK);
    g_autofree char *expect = NULL;
    GString *e = g_string_new(NULL);
    for (gsize k = 0; k < text->len; k++) {
        if (text->str[k] == '\n')
            g_string_append(e, "\r\n");
        else if (text->str[k] == '\r')
            g_string_append_len(e, "\r\0", 2);
        else
            g_string_append_c(e, text->str[k]);
    }
    g_assert_cmpmem(wire->data, wire->len, e->str, e->len);
    g_string_free(e, TRUE);
    g_byte_array_unref(wire);
    g_string_free(text, TRUE);
    tftp_session_free(s);
    net_free(n);
}

/* ---- uploads ---------------------------------------------------------------------------- */

static void test_upload_lockstep(void)
{
    Net *n = net_new();
    MemSink m = {0};
    TftpSessionParams p = params(TRUE, 512, 1);
    TftpSession *s = tftp_session_new_write(&p, mem_sink(&m), net_send, n, 0);
    g_assert_cmpuint(sent(n, 0).op, ==, TFTP_OP_ACK);
    g_assert_cmpuint(sent(n, 0).block, ==, 0);
    guint8 blk[512];
    memset(blk, 'a', sizeof(blk));
    data(s, 1, blk, 512, 1 * MS);
    g_assert_cmpuint(sent(n, 1).block, ==, 1);
    /* Our ACK 1 was lost; the client resends DATA 1: re-ACK, do not write twice. */
    data(s, 1, blk, 512, 2 * MS);
    g_assert_cmpuint(n->sent->len, ==, 3);
    g_assert_cmpuint(sent(n, 2).block, ==, 1);
    g_assert_cmpuint(m.got->len, ==, 512);
    memset(blk, 'b', sizeof(blk));
    data(s, 2, blk, 100, 3 * MS);
    g_assert_true(m.committed);
    g_assert_false(m.aborted);
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_OK);
    g_assert_cmpuint(m.got->len, ==, 612);
    g_assert_cmpuint(m.got->data[511], ==, 'a');
    g_assert_cmpuint(m.got->data[512], ==, 'b');
    /* Dallying: a retransmitted last block is acknowledged again, then the session ends. */
    g_assert_false(tftp_session_finished(s));
    guint before = n->sent->len;
    data(s, 2, blk, 100, 4 * MS);
    g_assert_cmpuint(n->sent->len, ==, before + 1);
    g_assert_cmpuint(sent(n, before).block, ==, 2);
    tftp_session_tick(s, tftp_session_deadline(s));
    g_assert_true(tftp_session_finished(s));
    tftp_session_free(s);
    g_byte_array_unref(m.got);
    net_free(n);
}

static void test_upload_window_reorder(void)
{
    Net *n = net_new();
    MemSink m = {0};
    TftpOptions o = {.has_windowsize = TRUE, .windowsize = 4};
    TftpSessionParams p = params(TRUE, 8, 4);
    p.oack = &o;
    TftpSession *s = tftp_session_new_write(&p, mem_sink(&m), net_send, n, 0);
    g_assert_cmpint(sent(n, 0).op, ==, TFTP_OP_OACK);
    data(s, 1, "AAAAAAAA", 8, 1);
    data(s, 3, "CCCCCCCC", 8, 2); /* reordered: 3 before 2 */
    g_assert_cmpuint(n->sent->len, ==, 2);
    g_assert_cmpuint(sent(n, 1).block, ==, 1); /* acknowledges what it has in order */
    data(s, 4, "DDDDDDDD", 8, 3);              /* no ACK storm for more strays */
    g_assert_cmpuint(n->sent->len, ==, 2);
    data(s, 2, "BBBBBBBB", 8, 4);
    data(s, 3, "CCCCCCCC", 8, 5);
    data(s, 4, "DDDDDDDD", 8, 6);
    data(s, 5, "EEEEEEEE", 8, 7);
    g_assert_cmpuint(n->sent->len, ==, 3); /* one ACK at the end of the window */
    g_assert_cmpuint(sent(n, 2).block, ==, 5);
    data(s, 6, "FF", 2, 8);
    g_assert_cmpuint(sent(n, 3).block, ==, 6);
    g_assert_true(m.committed);
    g_assert_cmpmem(m.got->data, m.got->len, "AAAAAAAABBBBBBBBCCCCCCCCDDDDDDDDEEEEEEEEFF", 42);
    tftp_session_free(s);
    g_byte_array_unref(m.got);
    net_free(n);
}

static void test_upload_limits_and_failures(void)
{
    Net *n = net_new();
    MemSink m = {0};
    TftpSessionParams p = params(TRUE, 512, 1);
    p.upload_max = 1000;
    TftpSession *s = tftp_session_new_write(&p, mem_sink(&m), net_send, n, 0);
    guint8 blk[512] = {0};
    data(s, 1, blk, 512, 1);
    data(s, 2, blk, 512, 2);
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_LOCAL_ERROR);
    g_assert_true(m.aborted);
    g_assert_false(m.committed);
    g_assert_cmpuint(sent(n, n->sent->len - 1).error_code, ==, TFTP_ERR_DISK_FULL);
    tftp_session_free(s);
    g_byte_array_unref(m.got);

    /* The client goes silent: ACK retransmitted, then the upload is thrown away. */
    MemSink m2 = {0};
    p.upload_max = 0;
    g_ptr_array_set_size(n->sent, 0);
    s = tftp_session_new_write(&p, mem_sink(&m2), net_send, n, 0);
    data(s, 1, blk, 512, 1);
    guint i = 0;
    while (!tftp_session_finished(s) && i++ < 100)
        tftp_session_tick(s, tftp_session_deadline(s));
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_TIMEOUT);
    g_assert_true(m2.aborted);
    /* max_retries full-length timeouts, after the quick ones of an adapted timer. */
    g_assert_cmpuint(n->sent->len, >, 2 + p.max_retries);
    g_assert_cmpuint(n->sent->len, <=, 2 + p.max_retries + 16);
    g_assert_cmpuint(sent(n, 3).block, ==, 1);
    tftp_session_free(s);
    g_byte_array_unref(m2.got);

    /* The client aborts with ERROR: aborted too. A block larger than agreed: ERROR 4. */
    MemSink m3 = {0};
    s = tftp_session_new_write(&p, mem_sink(&m3), net_send, n, 0);
    guint8 big[600] = {0};
    data(s, 1, big, 600, 1);
    g_assert_cmpint(tftp_session_result(s), ==, TFTP_RESULT_PROTOCOL);
    g_assert_true(m3.aborted);
    tftp_session_free(s);
    g_byte_array_unref(m3.got);
    net_free(n);
}

static void test_upload_netascii(void)
{
    Net *n = net_new();
    MemSink m = {0};
    TftpSessionParams p = params(TRUE, 8, 1);
    p.mode = TFTP_MODE_NETASCII;
    TftpSession *s = tftp_session_new_write(&p, mem_sink(&m), net_send, n, 0);
    data(s, 1, "abc\r\ndef", 8, 1);
    data(s, 2, "\r\0x\r\ny\r", 7, 2); /* ends in a lone CR */
    g_assert_true(m.committed);
    g_assert_cmpmem(m.got->data, m.got->len, "abc\ndef\rx\ny\r", 12);
    tftp_session_free(s);
    g_byte_array_unref(m.got);
    net_free(n);
}

static void test_upload_rollover(void)
{
    Net *n = net_new();
    MemSink m = {0};
    TftpSessionParams p = params(TRUE, 8, 1);
    TftpSession *s = tftp_session_new_write(&p, mem_sink(&m), net_send, n, 0);
    for (guint32 b = 1; b <= 65537; b++)
        data(s, (guint16)b, "01234567", 8, b);
    data(s, (guint16)65538, "", 0, 70000);
    g_assert_true(m.committed);
    g_assert_cmpuint(m.got->len, ==, 65537 * 8);
    g_assert_cmpuint(sent(n, n->sent->len - 1).block, ==, 2);
    tftp_session_free(s);
    g_byte_array_unref(m.got);
    net_free(n);
}

/* ---- files beneath the root ------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *content)
{
    g_autofree char *p = g_build_filename(dir, name, NULL);
    g_assert_true(g_file_set_contents(p, content, -1, NULL));
}

static void test_fs(void)
{
    g_autofree char *top = g_dir_make_tmp("tftp-fs-XXXXXX", NULL);
    g_autofree char *root = g_build_filename(top, "root", NULL);
    g_assert_cmpint(g_mkdir(root, 0755), ==, 0);
    g_autofree char *sub = g_build_filename(root, "sub", NULL);
    g_assert_cmpint(g_mkdir(sub, 0755), ==, 0);
    write_file(top, "secret", "outside");
    write_file(root, "boot.bin", "inside!");
    write_file(sub, "menu", "m");
    g_autofree char *l1 = g_build_filename(root, "escape", NULL);
    g_assert_cmpint(symlink("../secret", l1), ==, 0);
    g_autofree char *l2 = g_build_filename(root, "abs", NULL);
    g_assert_cmpint(symlink("/etc/passwd", l2), ==, 0);
    g_autofree char *l3 = g_build_filename(root, "inner", NULL);
    g_assert_cmpint(symlink("sub/menu", l3), ==, 0);
    g_autofree char *fifo = g_build_filename(root, "fifo", NULL);
    g_assert_cmpint(mkfifo(fifo, 0644), ==, 0);
    g_autofree char *null = g_build_filename(root, "null", NULL);
    g_assert_cmpint(symlink("/dev/null", null), ==, 0);

    g_assert_null(tftp_root_open("/nonexistent/tftp", NULL));
    TftpRoot *r = tftp_root_open(root, NULL);
    g_assert_nonnull(r);
    TftpSource src;
    guint64 size;
    const char *why;
    g_assert_cmpint(tftp_fs_open_read(r, "boot.bin", &src, &size, &why), ==, TFTP_FS_OK);
    g_assert_cmpuint(size, ==, 7);
    guint8 buf[16];
    g_assert_cmpint(src.read(src.data, 2, buf, sizeof(buf)), ==, 5);
    g_assert_cmpmem(buf, 5, "side!", 5);
    src.close(src.data);
    g_assert_cmpint(tftp_fs_open_read(r, "nope", &src, &size, &why), ==, TFTP_FS_NOT_FOUND);
    g_assert_cmpint(tftp_fs_open_read(r, "sub", &src, &size, &why), ==, TFTP_FS_ACCESS);
    g_assert_cmpint(tftp_fs_open_read(r, "escape", &src, &size, &why), ==, TFTP_FS_ACCESS);
    g_assert_cmpint(tftp_fs_open_read(r, "abs", &src, &size, &why), ==, TFTP_FS_ACCESS);
    g_assert_cmpint(tftp_fs_open_read(r, "null", &src, &size, &why), ==, TFTP_FS_ACCESS);
    /* A FIFO is refused, and opening it does not hang. */
    g_assert_cmpint(tftp_fs_open_read(r, "fifo", &src, &size, &why), ==, TFTP_FS_ACCESS);
    /* Even without the string checks, the kernel keeps ".." inside. */
    g_assert_cmpint(tftp_fs_open_read(r, "../secret", &src, &size, &why), !=, TFTP_FS_OK);
    g_assert_cmpint(tftp_fs_open_read(r, "sub/../../secret", &src, &size, &why), !=, TFTP_FS_OK);
    if (tftp_fs_kernel_beneath()) {
        /* A link that stays inside is followed when the kernel checks the walk. */
        g_assert_cmpint(tftp_fs_open_read(r, "inner", &src, &size, &why), ==, TFTP_FS_OK);
        src.close(src.data);
    } else {
        g_test_message("openat2 unavailable: portable fallback refuses every link");
        g_assert_cmpint(tftp_fs_open_read(r, "inner", &src, &size, &why), ==, TFTP_FS_ACCESS);
    }
    /* The portable walk (kernels before 5.6, seccomp refusing openat2, valgrind) is the
     * last gate too: forced here, it keeps ".." and absolute paths inside as well. */
    tftp_fs_force_portable(TRUE);
    g_assert_false(tftp_fs_kernel_beneath());
    static const char *const outside[] = {"../secret",
                                          "sub/../../secret",
                                          "sub/../../../etc/passwd",
                                          "/etc/passwd",
                                          "escape",
                                          "abs",
                                          "inner",
                                          "sub/"};
    for (gsize i = 0; i < G_N_ELEMENTS(outside); i++)
        if (tftp_fs_open_read(r, outside[i], &src, &size, &why) == TFTP_FS_OK)
            g_error("the portable walk opened '%s'", outside[i]);
    g_assert_cmpint(tftp_fs_open_read(r, "sub/menu", &src, &size, &why), ==, TFTP_FS_OK);
    src.close(src.data);
    g_assert_cmpint(tftp_fs_open_read(r, "./sub//menu", &src, &size, &why), ==, TFTP_FS_OK);
    src.close(src.data);
    tftp_fs_force_portable(FALSE);

    /* Uploads: to a temporary name, renamed only on commit. */
    TftpSink sink;
    g_assert_cmpint(tftp_fs_open_write(r, "boot.bin", FALSE, &sink, &why), ==, TFTP_FS_EXISTS);
    g_assert_cmpint(tftp_fs_open_write(r, "escape", TRUE, &sink, &why), ==, TFTP_FS_ACCESS);
    g_assert_cmpint(tftp_fs_open_write(r, "fifo", TRUE, &sink, &why), ==, TFTP_FS_ACCESS);
    g_assert_cmpint(tftp_fs_open_write(r, "nodir/x", TRUE, &sink, &why), ==, TFTP_FS_NOT_FOUND);
    g_assert_cmpint(tftp_fs_open_write(r, "new.bin", FALSE, &sink, &why), ==, TFTP_FS_OK);
    g_assert_true(sink.write(sink.data, (const guint8 *)"half", 4));
    g_autofree char *newp = g_build_filename(root, "new.bin", NULL);
    g_assert_false(g_file_test(newp, G_FILE_TEST_EXISTS));
    sink.abort(sink.data);
    g_assert_false(g_file_test(newp, G_FILE_TEST_EXISTS));
    /* Nothing is left behind by the aborted upload: only the files we made. */
    g_autoptr(GDir) d = g_dir_open(root, 0, NULL);
    guint entries = 0;
    while (g_dir_read_name(d))
        entries++;
    g_assert_cmpuint(entries, ==, 7);

    g_assert_cmpint(tftp_fs_open_write(r, "sub/new.bin", FALSE, &sink, &why), ==, TFTP_FS_OK);
    g_assert_true(sink.write(sink.data, (const guint8 *)"whole", 5));
    g_assert_true(sink.commit(sink.data));
    g_autofree char *subnew = g_build_filename(sub, "new.bin", NULL);
    g_autofree char *content = NULL;
    g_assert_true(g_file_get_contents(subnew, &content, NULL, NULL));
    g_assert_cmpstr(content, ==, "whole");

    /* Overwrite: the old content stays whole until the new one is complete. */
    g_assert_cmpint(tftp_fs_open_write(r, "boot.bin", TRUE, &sink, &why), ==, TFTP_FS_OK);
    g_assert_true(sink.write(sink.data, (const guint8 *)"NEW", 3));
    g_autofree char *bootp = g_build_filename(root, "boot.bin", NULL);
    g_autofree char *c2 = NULL;
    g_assert_true(g_file_get_contents(bootp, &c2, NULL, NULL));
    g_assert_cmpstr(c2, ==, "inside!");
    g_assert_true(sink.commit(sink.data));
    g_autofree char *c3 = NULL;
    g_assert_true(g_file_get_contents(bootp, &c3, NULL, NULL));
    g_assert_cmpstr(c3, ==, "NEW");

    /* No overwrite, and the name appears while uploading: commit fails, nothing replaced. */
    g_assert_cmpint(tftp_fs_open_write(r, "race", FALSE, &sink, &why), ==, TFTP_FS_OK);
    write_file(root, "race", "first");
    g_assert_true(sink.write(sink.data, (const guint8 *)"second", 6));
    g_assert_false(sink.commit(sink.data));
    g_autofree char *racep = g_build_filename(root, "race", NULL);
    g_autofree char *c4 = NULL;
    g_assert_true(g_file_get_contents(racep, &c4, NULL, NULL));
    g_assert_cmpstr(c4, ==, "first");

    tftp_root_free(r);
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", top);
    g_assert_cmpint(system(cmd), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tftp/session/lockstep-download", test_lockstep_download);
    g_test_add_func("/tftp/session/exact-multiple", test_exact_multiple);
    g_test_add_func("/tftp/session/oack-and-tsize-probe", test_oack_and_probe);
    g_test_add_func("/tftp/session/rollover", test_rollover);
    g_test_add_func("/tftp/session/windows", test_windows);
    g_test_add_func("/tftp/session/window-gap", test_window_gap);
    g_test_add_func("/tftp/session/batched-partial", test_batched_partial);
    g_test_add_func("/tftp/session/timeout-backoff-give-up", test_timeout_backoff_and_give_up);
    g_test_add_func("/tftp/session/adaptive-rto", test_adaptive_rto);
    g_test_add_func("/tftp/session/quick-timeouts-not-counted", test_quick_timeouts_not_counted);
    g_test_add_func("/tftp/session/missing-final-ack", test_missing_final_ack);
    g_test_add_func("/tftp/session/read-error-illegal-op", test_read_error_and_illegal);
    g_test_add_func("/tftp/session/blocked-socket", test_blocked_socket);
    g_test_add_func("/tftp/session/netascii-download", test_netascii_download);
    g_test_add_func("/tftp/session/upload-lockstep", test_upload_lockstep);
    g_test_add_func("/tftp/session/upload-window-reorder", test_upload_window_reorder);
    g_test_add_func("/tftp/session/upload-limits-failures", test_upload_limits_and_failures);
    g_test_add_func("/tftp/session/upload-netascii", test_upload_netascii);
    g_test_add_func("/tftp/session/upload-rollover", test_upload_rollover);
    g_test_add_func("/tftp/fs/beneath-root", test_fs);
    return g_test_run();
}
