/* tftp-plugin.c - the tftp module: parameters, sockets and the request path (act).
 *
 * A request arrives on the listening socket; it is checked (unicast only, allowed network,
 * per-client rate, not a retransmission of a request already being served), its name is
 * sanitised and opened beneath the root or from a virtual-file provider, options are
 * negotiated (tftp-negotiate.c) and a session (tftp-session.c) runs the transfer from a new
 * socket bound to the address the request arrived on, so the reply leaves from the address
 * the client talked to (multi-homed servers) and carries a fresh TID (RFC 1350 section 4).
 * In single-port mode the listening socket carries the transfers too, for clients behind
 * NAT, and datagrams are told apart by the client's address and port. */
#include "build-config.h"

#include <preboot/plugin.h>

#include "net.h"
#include "tftp-admit.h"
#include "tftp-fs.h"
#include "tftp-ifaddr.h"
#include "tftp-negotiate.h"
#include "tftp-packet.h"
#include "tftp-path.h"
#include <preboot/tftp.h>
#include "tftp-session.h"

#include <string.h>

#define TFTP_RECV_MAX 65536
#define TICK_MS       10

/* ---- parameters ------------------------------------------------------------------------- */

static const char *const rollover_choices[] = {"0", "1", NULL};

static const pb_param params[] = {
    {.name = "interface",
     .legacy = "TFTPInterface",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "Address the server listens on; empty: every address of the host (replies "
             "still leave from the address each request arrived on)."},
    {.name = "block_size",
     .legacy = "TransferBlockSize",
     .type = PB_PARAM_INT,
     .def = "1428",
     .min = 512,
     .max = 4428,
     .unit = "bytes",
     .help = "The largest block the server agrees to (RFC 2348); 1428 suits Ethernet. The "
             "MTU of the interface caps it further, since boot firmware cannot reassemble "
             "fragments."},
    {.name = "timeout",
     .legacy = "TimeoutInterval",
     .type = PB_PARAM_INT,
     .def = "1",
     .min = 1,
     .max = 60,
     .unit = "s",
     .help = "Initial retransmission timeout; it then adapts to the measured round trip "
             "and backs off on loss."},
    {.name = "directory",
     .legacy = "TFTPDirectory",
     .type = PB_PARAM_PATH,
     .def = "/srv/tftp",
     .help = "The TFTP root. Nothing outside it is ever read or written; the plugin does not "
             "start if it does not exist."},
    {.name = "allow_writes",
     .legacy = "TFTPAllowWrites",
     .type = PB_PARAM_BOOL,
     .def = "no",
     .help = "Accept uploads (WRQ) of new files."},
    {.name = "allow_overwrites",
     .legacy = "TFTPAllowOverwrites",
     .type = PB_PARAM_BOOL,
     .def = "no",
     .help = "Let uploads replace existing files; only with allow_writes."},
    PB_LOG_PARAMS("TFTPLogLevel", "TFTPLogFile", "TFTPLogFileSize", "novell-tftp.log",
                  "0 critical, 1 failed transfers, 2 completed transfers, 3 requests and "
                  "options, 4 every packet."),
    /* native only */
    {.name = "port",
     .type = PB_PARAM_INT,
     .flags = PB_PARAM_F_RESTART,
     .def = "69",
     .min = 1,
     .max = 65535,
     .help = "UDP port of the server."},
    {.name = "ipv6",
     .type = PB_PARAM_BOOL,
     .flags = PB_PARAM_F_RESTART,
     .def = "no",
     .help = "Also listen on IPv6 (the wildcard, or interface6)."},
    {.name = "interface6",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "IPv6 address to listen on when ipv6 is set; empty: all."},
    {.name = "jumbo_block_size",
     .type = PB_PARAM_INT,
     .def = "0",
     .min = 0,
     .max = 65464,
     .unit = "bytes",
     .help = "When not 0, replaces block_size as the largest block, beyond the legacy 4428 "
             "(jumbo frames, loopback). The interface MTU still caps it."},
    {.name = "max_window_size",
     .type = PB_PARAM_INT,
     .def = "64",
     .min = 1,
     .max = 4096,
     .unit = "blocks",
     .help = "The largest RFC 7440 window the server agrees to."},
    {.name = "max_window_bytes",
     .type = PB_PARAM_INT,
     .def = "131072",
     .min = 512,
     .max = 16777216,
     .unit = "bytes",
     .help = "A window also never holds more bytes than this, so a burst does not overrun "
             "the client's receive buffer."},
    {.name = "max_transfers",
     .type = PB_PARAM_INT,
     .def = "4096",
     .min = 1,
     .max = 1000000,
     .help = "Concurrent transfers; requests beyond are refused. Each holds a socket and a "
             "file: the daemon warns at start when its descriptor limit (LimitNOFILE, "
             "ulimit -n) cannot carry twice this many."},
    {.name = "max_transfers_per_client",
     .type = PB_PARAM_INT,
     .def = "32",
     .min = 0,
     .max = 1000000,
     .help = "Concurrent transfers from one client address; requests beyond get a TFTP "
             "error (logged once a second at most). A PXE client needs one or two; clients "
             "behind one NAT address share the limit. 0: no limit."},
    {.name = "rate_limit",
     .type = PB_PARAM_INT,
     .def = "100",
     .min = 0,
     .max = 1000000,
     .unit = "requests/s",
     .help = "Requests accepted per second from one client address (bursts of twice as "
             "many); more are dropped unanswered. 0: no limit."},
    {.name = "max_upload_size",
     .type = PB_PARAM_INT,
     .def = "4096",
     .min = 0,
     .max = 1048576,
     .unit = "MB",
     .help = "Largest upload; 0: no limit."},
    {.name = "rollover",
     .type = PB_PARAM_ENUM,
     .def = "0",
     .choices = rollover_choices,
     .help = "Block number after 65535: 0 (what most clients expect) or 1."},
    {.name = "refuse_options",
     .type = PB_PARAM_LIST,
     .flags = PB_PARAM_F_EMPTY_OK,
     .help = "Options never granted, for clients that ask for one and then break: any of "
             "blksize, timeout, tsize, windowsize."},
    {.name = "single_port",
     .type = PB_PARAM_BOOL,
     .def = "no",
     .help = "Run every transfer from the server port instead of a new port each, for "
             "clients behind NAT."},
    {.name = "allow",
     .type = PB_PARAM_LIST,
     .flags = PB_PARAM_F_EMPTY_OK,
     .help = "Networks (CIDR) allowed to use the server; empty: all."},
    {.name = "deny",
     .type = PB_PARAM_LIST,
     .flags = PB_PARAM_F_EMPTY_OK,
     .help = "Networks (CIDR) refused, even when allowed."},
    {.name = "client_timeout_min",
     .type = PB_PARAM_INT,
     .def = "1",
     .min = 1,
     .max = 255,
     .unit = "s",
     .help = "Smallest client timeout option granted (RFC 2349)."},
    {.name = "client_timeout_max",
     .type = PB_PARAM_INT,
     .def = "60",
     .min = 1,
     .max = 255,
     .unit = "s",
     .help = "Largest client timeout option granted; others are left out of "
             "the OACK."},
    {.name = "max_retries",
     .type = PB_PARAM_INT,
     .def = "5",
     .min = 1,
     .max = 50,
     .help = "Retransmissions of one packet before a silent client's transfer is dropped."},
    {.name = "retransmit_min",
     .type = PB_PARAM_INT,
     .def = "100",
     .min = 1,
     .max = 60000,
     .unit = "ms",
     .help = "Floor of the adaptive retransmission timeout."},
};

static const char *const legacy_files[] = {"novell-tftp.conf", NULL};

/* ---- the instance ----------------------------------------------------------------------- */

typedef struct {
    char *interface, *interface6;
    guint port;
    gboolean ipv6;
    guint blksize_max;
    guint timeout_s;
    char *directory;
    gboolean allow_writes, allow_overwrites;
    guint max_window, max_window_bytes, max_transfers, max_per_client, rate_limit;
    guint64 upload_max;
    guint rollover;
    guint refuse;
    gboolean single_port;
    GStrv allow, deny;
    guint client_timeout_min, client_timeout_max;
    guint max_retries;
    guint rto_min_ms;
    TftpRoot *root;
} Settings;

typedef struct Tftp Tftp;
typedef struct VSource VSource;

typedef struct {
    Tftp *t;
    TftpSession *s;
    pb_socket_t sock; /* own socket, or the listening one in single-port mode */
    gboolean shared_sock;
    pb_watch *watch;
    pb_watch *out_watch; /* while the socket buffer is full: resume the window when it drains */
    PbAddr peer, local;
    guint32 ifindex;
    char *key; /* peer address:port, the table key */
    char *path;
    char client[64];
    gboolean upload;
    gboolean counted; /* in Tftp.per_client */
    VSource *vsrc;    /* a provider's file (owned by the session), NULL for the disk's */
} Transfer;

typedef struct {
    double tokens;
    guint64 last_us;
} Bucket;

typedef struct {
    void *fn;
    void *data;
    gboolean typed; /* a pb_tftp_open2_fn provider */
} Hook;

struct Tftp {
    const pb_host *host;
    pb_instance *inst;
    Settings set;
    pb_socket_t lsock[2];
    pb_watch *lwatch[2];
    GHashTable *transfers;  /* key -> Transfer */
    GHashTable *buckets;    /* client address -> Bucket */
    GHashTable *per_client; /* client address -> transfers running (GUINT_TO_POINTER) */
    guint64 limit_log_us;   /* last "per-client limit" line */
    guint limit_log_suppressed;
    pb_timer *tick;
    guint8 *buf;  /* datagrams of the listening socket(s) */
    guint8 *tbuf; /* datagrams of transfer sockets (read while a request in buf is held) */
    GArray *providers, *listeners; /* Hook */
    pb_tftp_service iface;
    struct {
        pb_counter *requests, *ok, *failed, *probes, *refused, *bytes_sent, *bytes_received,
            *retransmits, *rate_limited, *ignored, *unknown_tid, *active, *duplicate_requests,
            *client_limited;
    } c;
};

static void settings_clear(Settings *s)
{
    g_free(s->interface);
    g_free(s->interface6);
    g_free(s->directory);
    g_strfreev(s->allow);
    g_strfreev(s->deny);
    tftp_root_free(s->root);
    memset(s, 0, sizeof(*s));
}

static GStrv list_dup(const pb_host *h, const pb_config *cfg, const char *name)
{
    const char *const *items = NULL;
    size_t n = h->config_list(cfg, name, &items);
    GStrv v = g_new0(char *, n + 1);
    for (size_t i = 0; i < n; i++)
        v[i] = g_strdup(items[i]);
    return v;
}

/* Reads and checks a configuration; no side effects beyond opening the root. */
static gboolean settings_load(const pb_host *h, const pb_config *cfg, Settings *s, pb_err *err)
{
    memset(s, 0, sizeof(*s));
    s->interface = g_strdup(h->config_string(cfg, "interface"));
    s->interface6 = g_strdup(h->config_string(cfg, "interface6"));
    s->port = (guint)h->config_int(cfg, "port");
    s->ipv6 = h->config_bool(cfg, "ipv6");
    s->blksize_max = (guint)h->config_int(cfg, "block_size");
    guint jumbo = (guint)h->config_int(cfg, "jumbo_block_size");
    if (jumbo)
        s->blksize_max = MAX(jumbo, (guint)TFTP_DEFAULT_BLKSIZE);
    s->timeout_s = (guint)h->config_int(cfg, "timeout");
    s->directory = g_strdup(h->config_string(cfg, "directory"));
    s->allow_writes = h->config_bool(cfg, "allow_writes");
    s->allow_overwrites = s->allow_writes && h->config_bool(cfg, "allow_overwrites");
    s->max_window = (guint)h->config_int(cfg, "max_window_size");
    s->max_window_bytes = (guint)h->config_int(cfg, "max_window_bytes");
    s->max_transfers = (guint)h->config_int(cfg, "max_transfers");
    s->max_per_client = (guint)h->config_int(cfg, "max_transfers_per_client");
    s->rate_limit = (guint)h->config_int(cfg, "rate_limit");
    s->upload_max = (guint64)h->config_int(cfg, "max_upload_size") * 1024 * 1024;
    s->rollover = g_strcmp0(h->config_string(cfg, "rollover"), "1") == 0 ? 1 : 0;
    s->single_port = h->config_bool(cfg, "single_port");
    s->allow = list_dup(h, cfg, "allow");
    s->deny = list_dup(h, cfg, "deny");
    s->client_timeout_min = (guint)h->config_int(cfg, "client_timeout_min");
    s->client_timeout_max = (guint)h->config_int(cfg, "client_timeout_max");
    s->max_retries = (guint)h->config_int(cfg, "max_retries");
    s->rto_min_ms = (guint)h->config_int(cfg, "retransmit_min");

    g_auto(GStrv) refuse = list_dup(h, cfg, "refuse_options");
    for (char **r = refuse; *r; r++) {
        if (g_ascii_strcasecmp(*r, "blksize") == 0)
            s->refuse |= TFTP_REFUSE_BLKSIZE;
        else if (g_ascii_strcasecmp(*r, "timeout") == 0)
            s->refuse |= TFTP_REFUSE_TIMEOUT;
        else if (g_ascii_strcasecmp(*r, "tsize") == 0)
            s->refuse |= TFTP_REFUSE_TSIZE;
        else if (g_ascii_strcasecmp(*r, "windowsize") == 0)
            s->refuse |= TFTP_REFUSE_WINDOWSIZE;
        else {
            h->error(err, "%s: unknown option '%s' (blksize, timeout, tsize, windowsize)",
                     pb_config_where(h, cfg, "refuse_options"), *r);
            settings_clear(s);
            return FALSE;
        }
    }
    for (int which = 0; which < 2; which++) {
        for (char **n = which ? s->deny : s->allow; *n; n++) {
            PbAddr probe = {.family = 4};
            (void)pb_addr_in_network(&probe, *n);
            g_autofree char *net = g_strdup(*n);
            char *slash = strchr(net, '/');
            if (slash)
                *slash = '\0';
            PbAddr a;
            if (!pb_addr_parse(net, 0, &a) || *net == '\0') {
                h->error(err, "%s: '%s' is not a network",
                         pb_config_where(h, cfg, which ? "deny" : "allow"), *n);
                settings_clear(s);
                return FALSE;
            }
        }
    }
    if (s->client_timeout_min > s->client_timeout_max) {
        h->error(err, "%s is above client_timeout_max",
                 pb_config_where(h, cfg, "client_timeout_min"));
        settings_clear(s);
        return FALSE;
    }
    g_autoptr(GError) e = NULL;
    /* Part of building the configuration, so --check-config and a reload refuse what a
     * start would. The reference: "The TFTP server does not load if this directory does
     * not exist." KEY: 'value': reason, the key as the parameter table names it. */
    s->root = tftp_root_open(s->directory, &e);
    if (s->root == NULL) {
        /* Named as the user wrote it: YAML file:line and key, or the legacy file's. */
        h->error(err, "%s: '%s': %s", pb_config_where(h, cfg, "directory"), s->directory,
                 e->message);
        settings_clear(s);
        return FALSE;
    }
    return TRUE;
}

/* ---- events and counters ---------------------------------------------------------------- */

static void emit(Tftp *t, const pb_tftp_event *ev)
{
    for (guint i = 0; i < t->listeners->len; i++) {
        Hook *h = &g_array_index(t->listeners, Hook, i);
        ((pb_tftp_event_fn)h->fn)(h->data, ev);
    }
}

static void emit_refused(Tftp *t, const char *client, guint16 port, const char *path,
                         gboolean upload, guint code, const char *text)
{
    t->host->counter_add(t->c.refused, 1);
    if (t->listeners->len == 0)
        return;
    pb_tftp_event ev = {.struct_size = sizeof(ev),
                        .client = client,
                        .client_port = port,
                        .path = path,
                        .upload = upload,
                        .result = PB_TFTP_REFUSED,
                        .error_code = code,
                        .error_text = text};
    emit(t, &ev);
}

/* ---- transfers -------------------------------------------------------------------------- */

static void update_tick(Tftp *t);

static void client_count(Tftp *t, const char *client, int delta);
static void vsource_finish(VSource *v, guint32 result, guint64 bytes);
static void vsource_release(VSource *v);

static void transfer_free(Transfer *x)
{
    if (x->counted)
        client_count(x->t, x->client, -1);
    if (x->watch)
        x->t->host->watch_remove(x->watch);
    if (x->out_watch)
        x->t->host->watch_remove(x->out_watch);
    if (!x->shared_sock && x->sock != PB_SOCKET_NONE)
        pb_udp_close(x->sock);
    tftp_session_free(x->s);
    if (x->vsrc != NULL) /* the session has let go of it (or never will again) */
        vsource_release(x->vsrc);
    g_free(x->key);
    g_free(x->path);
    g_free(x);
}

/* Logs, counts and announces a finished transfer, then frees it. */
static void transfer_end(Tftp *t, Transfer *x)
{
    const pb_host *h = t->host;
    TftpSessionStats st;
    tftp_session_stats(x->s, &st);
    TftpResult r = tftp_session_result(x->s);
    guint64 dur = h->monotonic_us() - st.started_us;
    double secs = MAX(dur, 1) / 1e6;
    h->counter_add(x->upload ? t->c.bytes_received : t->c.bytes_sent, (gint64)st.bytes);
    h->counter_add(t->c.retransmits, (gint64)st.retransmits);
    switch (r) {
    case TFTP_RESULT_OK:
        h->counter_add(t->c.ok, 1);
        h->log(t->inst, PB_LOG_TRANSACTION,
               "%s %s %s: %" G_GUINT64_FORMAT " bytes in %.3f s (%.1f KiB/s, %" G_GUINT64_FORMAT
               " retransmitted)%s",
               x->client, x->upload ? "uploaded" : "downloaded", x->path, st.bytes, secs,
               st.bytes / 1024.0 / secs, st.retransmits,
               tftp_session_final_ack_missing(x->s) ? ", final ACK not seen" : "");
        break;
    case TFTP_RESULT_TSIZE_PROBE:
        /* UEFI's size probe: normal, so no failure in the log. */
        h->counter_add(t->c.probes, 1);
        h->log(t->inst, PB_LOG_REQUEST, "%s asked for the size of %s only", x->client, x->path);
        break;
    default:
        h->counter_add(t->c.failed, 1);
        h->log(
            t->inst, PB_LOG_WARNING, "%s %s %s failed (%s): %s after %" G_GUINT64_FORMAT " bytes",
            x->client, x->upload ? "upload" : "download", x->path, tftp_result_name(r),
            *tftp_session_error_text(x->s) ? tftp_session_error_text(x->s) : "no reason", st.bytes);
        break;
    }
    static const guint32 map[] = {
        [TFTP_RESULT_RUNNING] = PB_TFTP_SERVER_ERROR,
        [TFTP_RESULT_OK] = PB_TFTP_OK,
        [TFTP_RESULT_TSIZE_PROBE] = PB_TFTP_TSIZE_PROBE,
        [TFTP_RESULT_TIMEOUT] = PB_TFTP_TIMEOUT,
        [TFTP_RESULT_PEER_ERROR] = PB_TFTP_CLIENT_ERROR,
        [TFTP_RESULT_PROTOCOL] = PB_TFTP_PROTOCOL_ERROR,
        [TFTP_RESULT_LOCAL_ERROR] = PB_TFTP_SERVER_ERROR,
    };
    /* Before the session closes the provider's file: it learns whether it was handed over. */
    vsource_finish(x->vsrc, map[r], st.bytes);
    if (t->listeners->len) {
        pb_tftp_event ev = {.struct_size = sizeof(ev),
                            .client = x->client,
                            .client_port = x->peer.port,
                            .path = x->path,
                            .upload = x->upload,
                            .bytes = st.bytes,
                            .duration_us = dur,
                            .result = map[r],
                            .error_code = tftp_session_error_code(x->s),
                            .error_text = tftp_session_error_text(x->s)};
        emit(t, &ev);
    }
    g_hash_table_remove(t->transfers, x->key); /* frees x */
    h->counter_set(t->c.active, g_hash_table_size(t->transfers));
    update_tick(t);
}

/* Returns how many of the datagrams were queued: fewer when the socket buffer filled. */
static gsize transfer_send_segments(void *ctx, const guint8 *buf, gsize len, gsize seg_len)
{
    Transfer *x = ctx;
    g_autoptr(GError) e = NULL;
    /* In single-port mode the shared socket is bound to the wildcard: name the source. A
     * transfer's own socket is bound to it already, and a cmsg per datagram costs. */
    gssize n = pb_udp_send_segments(x->sock, buf, len, seg_len, &x->peer,
                                    x->shared_sock ? &x->local : NULL,
                                    x->shared_sock ? x->ifindex : 0, &e);
    if (n >= 0)
        return (gsize)n;
    if (pb_net_error_would_block(e))
        return 0;
    if (x->t->host->log_enabled(x->t->inst, PB_LOG_DEBUG))
        x->t->host->log(x->t->inst, PB_LOG_DEBUG, "%s: send: %s", x->client, e->message);
    return (len + seg_len - 1) / seg_len; /* lost like any datagram; the timer recovers */
}

static gboolean transfer_send(void *ctx, const guint8 *buf, gsize len)
{
    return transfer_send_segments(ctx, buf, len, len) == 1;
}

static bool transfer_writable(void *data, pb_socket_t sock, unsigned events);

/* A window stopped at a full socket buffer (a session deadline of 0): wait for the socket
 * to drain instead of for the next tick, so large windows do not stall 10 ms a time. */
static void transfer_check_blocked(Tftp *t, Transfer *x)
{
    if (x->out_watch == NULL && !x->shared_sock && tftp_session_deadline(x->s) == 0)
        x->out_watch = t->host->watch_socket(t->inst, x->sock, PB_IO_OUT, transfer_writable, x);
}

static bool transfer_writable(void *data, pb_socket_t sock, unsigned events)
{
    Transfer *x = data;
    Tftp *t = x->t;
    x->out_watch = NULL; /* this watch ends when we return false */
    tftp_session_tick(x->s, t->host->monotonic_us());
    if (tftp_session_finished(x->s))
        transfer_end(t, x);
    else
        transfer_check_blocked(t, x);
    return false;
}

/* Returns TRUE when the transfer ended (x is gone). */
static gboolean transfer_input(Tftp *t, Transfer *x, const guint8 *buf, gsize len, guint64 now)
{
    if (t->host->log_enabled(t->inst, PB_LOG_DEBUG) && len >= 4)
        t->host->log(t->inst, PB_LOG_DEBUG, "%s: %s %u (%zu bytes)", x->client,
                     tftp_opcode_name((guint)(buf[0] << 8 | buf[1])), (guint)(buf[2] << 8 | buf[3]),
                     len);
    tftp_session_input(x->s, buf, len, now);
    if (!tftp_session_finished(x->s)) {
        transfer_check_blocked(t, x);
        return FALSE;
    }
    transfer_end(t, x);
    return TRUE;
}

static void send_error_from(pb_socket_t sock, const PbAddr *to, const PbAddr *local,
                            guint32 ifindex, TftpErrorCode code, const char *msg)
{
    guint8 b[200];
    gsize n = tftp_build_error(b, sizeof(b), code, msg);
    (void)pb_udp_send(sock, b, n, to, local, ifindex, NULL);
}

static bool transfer_readable(void *data, pb_socket_t sock, unsigned events)
{
    Transfer *x = data;
    Tftp *t = x->t;
    for (int i = 0; i < 64; i++) {
        PbAddr from;
        /* No GError: the loop ends on the first empty read, and building one per burst
         * would be an allocation per packet on the hot path. */
        gssize n = pb_udp_recv(sock, t->tbuf, TFTP_RECV_MAX, &from, NULL, NULL, NULL);
        if (n < 0)
            break;
        if (!pb_addr_equal(&from, &x->peer)) {
            /* RFC 1350 section 4: a packet from a wrong TID gets ERROR 5 and is otherwise
             * ignored; the transfer goes on. */
            t->host->counter_add(t->c.unknown_tid, 1);
            send_error_from(sock, &from, NULL, 0, TFTP_ERR_UNKNOWN_TID, NULL);
            continue;
        }
        if (transfer_input(t, x, t->tbuf, (gsize)n, t->host->monotonic_us()))
            return false; /* transfer_end() removed the watch and freed x */
        /* A download's client sends one ACK per window and waits for the next: after the
         * ACK we just answered nothing more can be queued but a stray duplicate, and a
         * read that finds nothing would cost a system call per block of a lock-step
         * transfer. The watch is level-triggered, so a duplicate is read next time. An
         * upload's window of DATA is read in one go. */
        if (!x->upload)
            break;
    }
    return true;
}

static bool on_tick(void *data)
{
    Tftp *t = data;
    guint64 now = t->host->monotonic_us();
    GHashTableIter it;
    gpointer v;
    GPtrArray *done = NULL;
    g_hash_table_iter_init(&it, t->transfers);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        Transfer *x = v;
        if (tftp_session_deadline(x->s) <= now)
            tftp_session_tick(x->s, now);
        if (!tftp_session_finished(x->s))
            transfer_check_blocked(t, x);
        if (tftp_session_finished(x->s)) {
            if (done == NULL)
                done = g_ptr_array_new();
            g_ptr_array_add(done, x);
        }
    }
    if (done) {
        for (guint i = 0; i < done->len; i++)
            transfer_end(t, done->pdata[i]);
        g_ptr_array_free(done, TRUE);
    }
    if (g_hash_table_size(t->transfers) == 0) {
        t->tick = NULL;
        return false;
    }
    return true;
}

/* The tick runs only while transfers do: an idle server does not wake up. */
static void update_tick(Tftp *t)
{
    if (g_hash_table_size(t->transfers) > 0 && t->tick == NULL)
        t->tick = t->host->timer_add(t->inst, TICK_MS, on_tick, t);
}

/* ---- deciding on a request -------------------------------------------------------------- */

static gboolean client_allowed(const Settings *s, const PbAddr *a)
{
    for (char **n = s->deny; *n; n++)
        if (pb_addr_in_network(a, *n))
            return FALSE;
    if (s->allow[0] == NULL)
        return TRUE;
    for (char **n = s->allow; *n; n++)
        if (pb_addr_in_network(a, *n))
            return TRUE;
    return FALSE;
}

/* Token bucket per client address: rate per second, bursts of twice that. */
static gboolean rate_ok(Tftp *t, const char *client, guint64 now)
{
    guint rate = t->set.rate_limit;
    if (rate == 0)
        return TRUE;
    Bucket *b = g_hash_table_lookup(t->buckets, client);
    if (b == NULL) {
        /* Forget idle clients now and then, so the table cannot grow without bound. */
        if (g_hash_table_size(t->buckets) > 65536)
            g_hash_table_remove_all(t->buckets);
        b = g_new0(Bucket, 1);
        b->tokens = 2.0 * rate;
        b->last_us = now;
        g_hash_table_insert(t->buckets, g_strdup(client), b);
    }
    b->tokens = MIN(2.0 * rate, b->tokens + (now - b->last_us) * rate / 1e6);
    b->last_us = now;
    if (b->tokens < 1.0)
        return FALSE;
    b->tokens -= 1.0;
    return TRUE;
}

/* A provider's file as the session's source. The session closes its source as soon as it
 * has read the last block, before the client acknowledged it; the provider must hear how the
 * transfer ended (finish) before its close(). So once a transfer holds it, the session's
 * close only marks it, and the transfer releases it when it ends. */
struct VSource {
    pb_tftp_vfile vf;
    gboolean has_finish; /* the provider's struct covers finish */
    gboolean finished;
    gboolean held; /* by a Transfer: released by transfer_free() */
};

static gssize vsource_read(void *data, guint64 off, guint8 *buf, gsize len)
{
    VSource *v = data;
    return (gssize)v->vf.read(v->vf.handle, off, buf, len);
}

static void vsource_finish(VSource *v, guint32 result, guint64 bytes)
{
    if (v == NULL || v->finished)
        return;
    v->finished = TRUE;
    if (v->has_finish && v->vf.finish != NULL)
        v->vf.finish(v->vf.handle, result, bytes);
}

static void vsource_release(VSource *v)
{
    /* Ended without transfer_end() (stop, a refusal after open): nothing was handed over. */
    vsource_finish(v, PB_TFTP_SERVER_ERROR, 0);
    if (v->vf.close)
        v->vf.close(v->vf.handle);
    g_free(v);
}

static void vsource_close(void *data)
{
    VSource *v = data;
    if (!v->held)
        vsource_release(v);
}

/* Asks the virtual-file providers, in the order they were added: 1 served (source filled,
 * *vsrc the provider's file), 0 none, -1 refused. */
static int open_virtual(Tftp *t, const PbAddr *from, const char *client, const char *path,
                        TftpSource *src, VSource **vsrc, gboolean *size_known, guint64 *size)
{
    pb_tftp_open_request rq = {.struct_size = sizeof(rq),
                               .family = from->family,
                               .port = from->port,
                               .client = client,
                               .path = path};
    memcpy(rq.addr, from->addr, sizeof(rq.addr));
    for (guint i = 0; i < t->providers->len; i++) {
        Hook *h = &g_array_index(t->providers, Hook, i);
        pb_tftp_vfile vf = {.struct_size = sizeof(vf), .size = -1};
        int r = h->typed ? ((pb_tftp_open2_fn)h->fn)(h->data, &rq, &vf)
                         : ((pb_tftp_open_fn)h->fn)(h->data, client, path, &vf);
        if (r < 0)
            return -1;
        if (r == 0)
            continue;
        if (vf.read == NULL) {
            if (vf.close)
                vf.close(vf.handle);
            return -1;
        }
        VSource *v = g_new0(VSource, 1);
        v->vf = vf;
        v->has_finish = PB_HAS_FIELD(pb_tftp_vfile, &vf, finish);
        *src = (TftpSource){.read = vsource_read, .close = vsource_close, .data = v};
        *vsrc = v;
        *size_known = vf.size >= 0;
        *size = vf.size >= 0 ? (guint64)vf.size : 0;
        return 1;
    }
    return 0;
}

/* Who asked, and where the answer leaves from: what every refusal needs. */
typedef struct {
    pb_socket_t sock; /* the listening socket the request came to */
    const PbAddr *from, *local;
    guint32 ifindex;
    const char *client;   /* from, as text */
    const char *filename; /* as requested; NULL when the request did not parse */
    gboolean upload;
} Asker;

static void refuse(Tftp *t, const Asker *a, TftpErrorCode code, const char *msg, const char *why)
{
    send_error_from(a->sock, a->from, a->local, a->ifindex, code, msg);
    t->host->log(t->inst, code == TFTP_ERR_NOT_FOUND ? PB_LOG_REQUEST : PB_LOG_WARNING,
                 "%s: %s %s refused: %s", a->client, a->upload ? "WRQ" : "RRQ",
                 a->filename ? a->filename : "", why);
    emit_refused(t, a->client, a->from->port, a->filename, a->upload, code,
                 msg ? msg : tftp_error_text(code));
}

/* The per-client limit is what one unfriendly address hits over and over: one log line a
 * second at most, saying how many were refused in between. */
static void refuse_client_limit(Tftp *t, const Asker *a, const TftpAdmission *ad, guint64 now)
{
    send_error_from(a->sock, a->from, a->local, a->ifindex, ad->code, ad->msg);
    t->host->counter_add(t->c.client_limited, 1);
    emit_refused(t, a->client, a->from->port, a->filename, a->upload, ad->code, ad->msg);
    if (t->limit_log_us != 0 && now - t->limit_log_us < G_USEC_PER_SEC) {
        t->limit_log_suppressed++;
        return;
    }
    t->host->log(t->inst, PB_LOG_WARNING,
                 "%s: %s %s refused: %u transfers from that address already (%s)%s", a->client,
                 a->upload ? "WRQ" : "RRQ", a->filename, t->set.max_per_client,
                 "max_transfers_per_client",
                 t->limit_log_suppressed ? "; more refusals since the last such line" : "");
    t->limit_log_us = now;
    t->limit_log_suppressed = 0;
}

static guint client_active(Tftp *t, const char *client)
{
    return GPOINTER_TO_UINT(g_hash_table_lookup(t->per_client, client));
}

static void client_count(Tftp *t, const char *client, int delta)
{
    guint n = client_active(t, client);
    n = delta > 0 ? n + 1 : (n > 0 ? n - 1 : 0);
    if (n == 0)
        g_hash_table_remove(t->per_client, client);
    else
        g_hash_table_replace(t->per_client, g_strdup(client), GUINT_TO_POINTER(n));
}

/* A request already being served from the same address and port: returns TRUE when this
 * one is its retransmission (dropped). A different request from that port ends the old. */
static gboolean take_duplicate(Tftp *t, const char *key, const char *filename, gboolean upload)
{
    Transfer *old = g_hash_table_lookup(t->transfers, key);
    if (old && !old->shared_sock) {
        /* The same client port may have finished its last transfer (final ACK, or UEFI's
         * ERROR after the tsize probe) in a datagram still queued on that transfer's
         * socket: take it first, so the order of the two sockets does not matter. */
        g_autofree char *k = g_strdup(key);
        transfer_readable(old, old->sock, PB_IO_IN);
        old = g_hash_table_lookup(t->transfers, k);
    }
    if (old == NULL)
        return FALSE;
    if (g_strcmp0(old->path, filename) == 0 && old->upload == upload) {
        t->host->counter_add(t->c.duplicate_requests, 1);
        return TRUE;
    }
    /* Something else from the same port: the client moved on. */
    tftp_session_abandon(old->s, "client sent a new request");
    transfer_end(t, old);
    return FALSE;
}

static TftpErrorCode fs_error_code(TftpFsStatus fs)
{
    return fs == TFTP_FS_NOT_FOUND ? TFTP_ERR_NOT_FOUND
           : fs == TFTP_FS_ACCESS  ? TFTP_ERR_ACCESS
           : fs == TFTP_FS_EXISTS  ? TFTP_ERR_EXISTS
                                   : TFTP_ERR_UNDEFINED;
}

/* The file a download reads: a provider's, else the disk's. FALSE after refusing. */
static gboolean open_download(Tftp *t, const Asker *a, const char *path, TftpSource *src,
                              VSource **vsrc, gboolean *size_known, guint64 *size)
{
    int v = open_virtual(t, a->from, a->client, path, src, vsrc, size_known, size);
    if (v < 0) {
        refuse(t, a, TFTP_ERR_ACCESS, NULL, "refused by a file provider");
        return FALSE;
    }
    if (v > 0)
        return TRUE;
    const char *why = NULL;
    TftpFsStatus fs = tftp_fs_open_read(t->set.root, path, src, size, &why);
    if (fs != TFTP_FS_OK) {
        refuse(t, a, fs_error_code(fs), NULL, why);
        return FALSE;
    }
    *size_known = TRUE;
    return TRUE;
}

/* Starts the transfer: its own socket (or the shared one), its session, its place in the
 * tables. The session owns src or sink from here. */
static void transfer_start(Tftp *t, const Asker *a, const char *key, const TftpPacket *pk,
                           const TftpNegotiation *neg, TftpSource src, VSource *vsrc, TftpSink sink,
                           guint64 now)
{
    const pb_host *h = t->host;
    const Settings *s = &t->set;
    Transfer *x = g_new0(Transfer, 1);
    x->t = t;
    x->peer = *a->from;
    x->local = *a->local;
    x->ifindex = a->ifindex;
    x->key = g_strdup(key);
    x->path = g_strdup(pk->filename);
    x->upload = a->upload;
    x->vsrc = vsrc;
    g_strlcpy(x->client, a->client, sizeof(x->client));
    if (s->single_port) {
        x->sock = a->sock;
        x->shared_sock = TRUE;
    } else {
        /* A new TID, bound to the address the request came to (IP_PKTINFO), so the client
         * sees the answer come from the server it asked. */
        PbAddr bind = *a->local;
        bind.port = 0;
        if (bind.family == 0)
            pb_addr_parse(a->from->family == 6 ? "::" : "0.0.0.0", 0, &bind);
        g_autoptr(GError) e = NULL;
        x->sock = pb_udp_open(&bind, PB_UDP_NO_PMTUD, &e);
        if (x->sock == PB_SOCKET_NONE) {
            h->log(t->inst, PB_LOG_WARNING, "%s: cannot open a transfer socket: %s", a->client,
                   e->message);
            if (src.close)
                src.close(src.data);
            if (sink.abort)
                sink.abort(sink.data);
            g_free(x->key);
            g_free(x->path);
            g_free(x);
            send_error_from(a->sock, a->from, a->local, a->ifindex, TFTP_ERR_UNDEFINED,
                            "Server error");
            return;
        }
    }

    TftpSessionParams sp = {
        .is_write = a->upload,
        .mode = pk->mode,
        .blksize = neg->blksize,
        .windowsize = neg->windowsize,
        .oack = &neg->oack,
        .rto_initial_us = (guint64)(neg->timeout_s ? neg->timeout_s : s->timeout_s) * 1000000,
        .rto_min_us = (guint64)s->rto_min_ms * 1000,
        /* Backing off beyond a few initial timeouts only delays noticing a dead client. */
        .rto_max_us =
            (guint64)MIN(60u, 8 * (neg->timeout_s ? neg->timeout_s : s->timeout_s)) * 1000000,
        .max_retries = s->max_retries,
        .rollover = s->rollover,
        .upload_max = s->upload_max,
        .tsize_asked = pk->opts.has_tsize,
        .send_segments = transfer_send_segments,
    };
    if (vsrc != NULL)
        vsrc->held = TRUE; /* from here the transfer releases it, after finish() */
    g_hash_table_insert(t->transfers, x->key, x);
    client_count(t, x->client, +1);
    x->counted = TRUE;
    if (!x->shared_sock)
        x->watch = h->watch_socket(t->inst, x->sock, PB_IO_IN, transfer_readable, x);
    x->s = a->upload ? tftp_session_new_write(&sp, sink, transfer_send, x, now)
                     : tftp_session_new_read(&sp, src, transfer_send, x, now);
    h->counter_set(t->c.active, g_hash_table_size(t->transfers));
    update_tick(t);
    if (tftp_session_finished(x->s))
        transfer_end(t, x); /* e.g. a read error on the first block */
    else
        transfer_check_blocked(t, x);
}

/* Options (tftp-negotiate.c) within the server's and the interface's limits. FALSE after
 * refusing. */
static gboolean negotiate(Tftp *t, const Asker *a, const TftpPacket *pk, gboolean size_known,
                          guint64 size, TftpNegotiation *neg)
{
    const Settings *s = &t->set;
    TftpLimits lim = {.blksize_max = s->blksize_max,
                      .path_mtu = a->ifindex ? pb_net_iface_mtu(a->ifindex) : 0,
                      .ipv6 = a->from->family == 6,
                      .timeout_min = s->client_timeout_min,
                      .timeout_max = s->client_timeout_max,
                      .windowsize_max = s->max_window,
                      .window_bytes_max = s->max_window_bytes,
                      .upload_max = s->upload_max,
                      .refuse = s->refuse};
    TftpRequestInfo ri = {
        .is_write = a->upload, .mode = pk->mode, .size_known = size_known, .size = size};
    TftpErrorCode nerr = tftp_negotiate(&pk->opts, &ri, &lim, neg);
    if (nerr != TFTP_ERR_UNDEFINED) {
        refuse(t, a, nerr, "File too large", "announced size above the upload limit");
        return FALSE;
    }
    if (t->host->log_enabled(t->inst, PB_LOG_REQUEST))
        t->host->log(t->inst, PB_LOG_REQUEST, "%s: %s: blksize %u, window %u%s (interface MTU %u)",
                     a->client, pk->filename, neg->blksize, neg->windowsize,
                     neg->oack.has_tsize ? ", tsize sent" : "", lim.path_mtu);
    return TRUE;
}

/* A request at the listening socket: parse, admit (tftp-admit.c decides), open, negotiate,
 * start. */
static void handle_request(Tftp *t, pb_socket_t lsock, const guint8 *buf, gsize len,
                           const PbAddr *from, const PbAddr *local, guint32 ifindex, guint64 now)
{
    const pb_host *h = t->host;
    const Settings *s = &t->set;
    char client[64];
    pb_addr_format(from, FALSE, client, sizeof(client));
    Asker a = {.sock = lsock, .from = from, .local = local, .ifindex = ifindex, .client = client};

    TftpPacket pk;
    TftpParseResult pr = tftp_packet_parse(buf, len, &pk);
    if (pr == TFTP_PARSE_OK && pk.op != TFTP_OP_RRQ && pk.op != TFTP_OP_WRQ) {
        /* DATA/ACK/ERROR at the server port from no transfer of ours: a stray. */
        h->counter_add(t->c.ignored, 1);
        return;
    }
    h->counter_add(t->c.requests, 1);
    if (!rate_ok(t, client, now)) {
        h->counter_add(t->c.rate_limited, 1);
        if (h->log_enabled(t->inst, PB_LOG_REQUEST))
            h->log(t->inst, PB_LOG_REQUEST, "%s: over the rate limit, request dropped", client);
        return;
    }
    if (pr != TFTP_PARSE_OK) {
        refuse(t, &a, TFTP_ERR_ILLEGAL_OP, NULL, tftp_parse_result_text(pr));
        return;
    }
    a.upload = pk.op == TFTP_OP_WRQ;
    a.filename = pk.filename;
    if (h->log_enabled(t->inst, PB_LOG_REQUEST)) {
        GString *o = g_string_new(NULL);
        for (guint i = 0; i < pk.n_raw; i++)
            g_string_append_printf(o, " %s=%s", pk.raw[i].name, pk.raw[i].value);
        h->log(t->inst, PB_LOG_REQUEST, "%s: %s %s mode %s%s", client, a.upload ? "WRQ" : "RRQ",
               pk.filename, pk.mode_text, o->str);
        g_string_free(o, TRUE);
    }

    /* A retransmitted request (the client missed our first answer) must not start a second
     * transfer: the running one retransmits by itself. */
    char key[80];
    pb_addr_format(from, TRUE, key, sizeof(key));
    if (take_duplicate(t, key, pk.filename, a.upload))
        return;

    TftpAdmitRules rules = {.max_transfers = s->max_transfers,
                            .max_per_client = s->max_per_client,
                            .allow_writes = s->allow_writes};
    TftpAdmitRequest rq = {.upload = a.upload,
                           .mode = pk.mode,
                           .filename = pk.filename,
                           .active = g_hash_table_size(t->transfers),
                           .active_from_client = client_active(t, client)};
    char path[1024];
    TftpAdmission ad;
    TftpAdmitVerdict verdict = tftp_admit(&rules, &rq, path, sizeof(path), &ad);
    if (verdict == TFTP_ADMIT_CLIENT_LIMIT) {
        refuse_client_limit(t, &a, &ad, now);
        return;
    }
    if (verdict != TFTP_ADMIT_OK) {
        refuse(t, &a, ad.code, ad.msg, ad.why);
        return;
    }

    TftpSource src = {0};
    TftpSink sink = {0};
    VSource *vsrc = NULL;
    gboolean size_known = FALSE;
    guint64 size = 0;
    if (!a.upload && !open_download(t, &a, path, &src, &vsrc, &size_known, &size))
        return;

    TftpNegotiation neg;
    if (!negotiate(t, &a, &pk, size_known, size, &neg)) {
        if (src.close)
            src.close(src.data);
        return;
    }
    if (a.upload) {
        const char *why = NULL;
        TftpFsStatus fs = tftp_fs_open_write(s->root, path, s->allow_overwrites, &sink, &why);
        if (fs != TFTP_FS_OK) {
            refuse(t, &a, fs == TFTP_FS_IO ? TFTP_ERR_DISK_FULL : fs_error_code(fs), NULL, why);
            return;
        }
    }
    transfer_start(t, &a, key, &pk, &neg, src, vsrc, sink, now);
}

static bool listen_readable(void *data, pb_socket_t sock, unsigned events)
{
    Tftp *t = data;
    for (int i = 0; i < 64; i++) {
        PbAddr from, local;
        guint32 ifindex = 0;
        gssize n = pb_udp_recv(sock, t->buf, TFTP_RECV_MAX, &from, &local, &ifindex, NULL);
        if (n < 0)
            break;
        guint64 now = t->host->monotonic_us();
        /* No amplifier: only unicast requests from real unicast sources are answered. */
        if (pb_addr_is_multicast_or_broadcast(&local) ||
            tftp_addr_is_directed_broadcast(&local, now) || pb_addr_is_any(&from) ||
            pb_addr_is_multicast_or_broadcast(&from) || from.port == 0) {
            t->host->counter_add(t->c.ignored, 1);
            if (t->host->log_enabled(t->inst, PB_LOG_REQUEST)) {
                char a[64], b[64];
                t->host->log(t->inst, PB_LOG_REQUEST, "ignored datagram from %s to %s",
                             pb_addr_format(&from, TRUE, a, sizeof(a)),
                             pb_addr_format(&local, FALSE, b, sizeof(b)));
            }
            continue;
        }
        if (!client_allowed(&t->set, &from)) {
            t->host->counter_add(t->c.ignored, 1);
            if (t->host->log_enabled(t->inst, PB_LOG_REQUEST)) {
                char a[64];
                t->host->log(t->inst, PB_LOG_REQUEST, "%s: not an allowed network, ignored",
                             pb_addr_format(&from, FALSE, a, sizeof(a)));
            }
            continue;
        }
        if (t->set.single_port) {
            char key[80];
            pb_addr_format(&from, TRUE, key, sizeof(key));
            Transfer *x = g_hash_table_lookup(t->transfers, key);
            if (x && x->shared_sock && n >= 2 && t->buf[1] != TFTP_OP_RRQ &&
                t->buf[1] != TFTP_OP_WRQ) {
                transfer_input(t, x, t->buf, (gsize)n, now);
                continue;
            }
        }
        handle_request(t, sock, t->buf, (gsize)n, &from, &local, ifindex, now);
    }
    return true;
}

/* ---- the service for other plugins ------------------------------------------------------ */

static bool hook_add(GArray *a, void *fn, void *data, gboolean typed)
{
    if (fn == NULL || a->len >= 64)
        return false;
    Hook h = {fn, data, typed};
    g_array_append_val(a, h);
    return true;
}

static void hook_remove(GArray *a, void *fn, void *data)
{
    for (guint i = 0; i < a->len; i++) {
        Hook *h = &g_array_index(a, Hook, i);
        if (h->fn == fn && h->data == data) {
            g_array_remove_index(a, i);
            return;
        }
    }
}

static bool svc_add_provider(void *ctx, pb_tftp_open_fn fn, void *data)
{
    return hook_add(((Tftp *)ctx)->providers, (void *)fn, data, FALSE);
}

static void svc_remove_provider(void *ctx, pb_tftp_open_fn fn, void *data)
{
    hook_remove(((Tftp *)ctx)->providers, (void *)fn, data);
}

static bool svc_add_provider2(void *ctx, pb_tftp_open2_fn fn, void *data)
{
    return hook_add(((Tftp *)ctx)->providers, (void *)fn, data, TRUE);
}

static void svc_remove_provider2(void *ctx, pb_tftp_open2_fn fn, void *data)
{
    hook_remove(((Tftp *)ctx)->providers, (void *)fn, data);
}

static bool svc_add_listener(void *ctx, pb_tftp_event_fn fn, void *data)
{
    return hook_add(((Tftp *)ctx)->listeners, (void *)fn, data, FALSE);
}

static void svc_remove_listener(void *ctx, pb_tftp_event_fn fn, void *data)
{
    hook_remove(((Tftp *)ctx)->listeners, (void *)fn, data);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void *tftp_create(const pb_host *host, pb_instance *inst, const pb_config *cfg, pb_err *err)
{
    Settings s;
    if (!settings_load(host, cfg, &s, err))
        return NULL;
    Tftp *t = g_new0(Tftp, 1);
    t->host = host;
    t->inst = inst;
    t->set = s;
    t->lsock[0] = t->lsock[1] = PB_SOCKET_NONE;
    t->transfers =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)transfer_free);
    t->buckets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    t->per_client = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    t->buf = g_malloc(TFTP_RECV_MAX);
    t->tbuf = g_malloc(TFTP_RECV_MAX);
    t->providers = g_array_new(FALSE, FALSE, sizeof(Hook));
    t->listeners = g_array_new(FALSE, FALSE, sizeof(Hook));
#define C(field, name) t->c.field = host->counter(inst, name)
    C(requests, "requests");
    C(ok, "transfers_ok");
    C(failed, "transfers_failed");
    C(probes, "tsize_probes");
    C(refused, "refused");
    C(bytes_sent, "bytes_sent");
    C(bytes_received, "bytes_received");
    C(retransmits, "retransmits");
    C(rate_limited, "rate_limited");
    C(ignored, "ignored");
    C(unknown_tid, "unknown_tid");
    C(active, "active_transfers");
    C(duplicate_requests, "duplicate_requests");
    C(client_limited, "client_limited");
#undef C

    /* Bind now, so a port already in use is a start-up failure with a clear reason. */
    for (int i = 0; i < (s.ipv6 ? 2 : 1); i++) {
        PbAddr bind;
        const char *text = i == 0 ? s.interface : s.interface6;
        if (!pb_addr_parse(*text ? text : (i == 0 ? "0.0.0.0" : "::"), (guint16)s.port, &bind)) {
            host->error(err, "cannot parse listen address '%s'", text);
            goto fail;
        }
        g_autoptr(GError) e = NULL;
        t->lsock[i] =
            pb_udp_open(&bind, PB_UDP_PKTINFO | PB_UDP_NO_PMTUD | (i == 1 ? PB_UDP_V6ONLY : 0), &e);
        if (t->lsock[i] == PB_SOCKET_NONE) {
            char a[64];
            host->error(err, "cannot listen on %s: %s", pb_addr_format(&bind, TRUE, a, sizeof(a)),
                        e->message);
            goto fail;
        }
    }
    t->iface = (pb_tftp_service){.struct_size = sizeof(pb_tftp_service),
                                 .ctx = t,
                                 .add_file_provider = svc_add_provider,
                                 .remove_file_provider = svc_remove_provider,
                                 .add_listener = svc_add_listener,
                                 .remove_listener = svc_remove_listener,
                                 .add_file_provider2 = svc_add_provider2,
                                 .remove_file_provider2 = svc_remove_provider2};
    return t;

fail:
    for (int i = 0; i < 2; i++)
        if (t->lsock[i] != PB_SOCKET_NONE)
            pb_udp_close(t->lsock[i]);
    settings_clear(&t->set);
    g_hash_table_unref(t->transfers);
    g_hash_table_unref(t->buckets);
    g_hash_table_unref(t->per_client);
    g_free(t->buf);
    g_free(t->tbuf);
    g_array_unref(t->providers);
    g_array_unref(t->listeners);
    g_free(t);
    return NULL;
}

/* Descriptors the configured maxima need: a socket and a file per transfer, plus the
 * daemon's own (listening sockets, logs, other plugins, the control socket). */
#define FD_MARGIN 64

static void clean_root(Tftp *t)
{
    guint failed = 0;
    guint removed = tftp_fs_remove_temporary(t->set.root, &failed);
    if (removed > 0)
        t->host->log(t->inst, PB_LOG_CRITICAL,
                     "%s: removed %u temporary file(s) of uploads cut short", t->set.directory,
                     removed);
    if (failed > 0)
        t->host->log(t->inst, PB_LOG_WARNING,
                     "%s: %u temporary file(s) of uploads cut short could not be removed (they "
                     "are never served)",
                     t->set.directory, failed);
}

static void check_fd_limit(Tftp *t)
{
    guint64 limit = pb_fd_limit();
    guint64 need = (guint64)t->set.max_transfers * 2 + FD_MARGIN;
    if (limit != 0 && limit < need)
        t->host->log(t->inst, PB_LOG_WARNING,
                     "the descriptor limit (%" G_GUINT64_FORMAT
                     ") cannot carry max_transfers %u (about %" G_GUINT64_FORMAT
                     " needed: a socket and a file each, plus %u): raise LimitNOFILE (ulimit "
                     "-n) or lower max_transfers, or transfers beyond will fail",
                     limit, t->set.max_transfers, need, FD_MARGIN);
}

static bool tftp_start(void *self, pb_err *err)
{
    Tftp *t = self;
    /* Before the first request: a file left by a kill -9 mid-upload is never served, and
     * does not stay behind taking space either. */
    clean_root(t);
    check_fd_limit(t);
    for (int i = 0; i < 2; i++)
        if (t->lsock[i] != PB_SOCKET_NONE)
            t->lwatch[i] =
                t->host->watch_socket(t->inst, t->lsock[i], PB_IO_IN, listen_readable, t);
    /* Service names are global: every instance publishes preboot.tftp.NAME, and the first
     * one also plain preboot.tftp (a second instance's attempt fails quietly). */
    g_autofree char *own = g_strconcat(PB_TFTP_SERVICE ".", t->host->instance_name(t->inst), NULL);
    if (!t->host->service_publish(t->inst, own, PB_TFTP_SERVICE_VERSION, &t->iface, err))
        return false;
    (void)t->host->service_publish(t->inst, PB_TFTP_SERVICE, PB_TFTP_SERVICE_VERSION, &t->iface,
                                   NULL);
    t->host->log(t->inst, PB_LOG_CRITICAL,
                 "serving %s on port %u%s (block size up to %u, window up to %u, writes %s)",
                 t->set.directory, t->set.port, t->set.ipv6 ? " (IPv4 and IPv6)" : "",
                 t->set.blksize_max, t->set.max_window,
                 !t->set.allow_writes      ? "off"
                 : t->set.allow_overwrites ? "on, overwriting"
                                           : "on, new files only");
    return true;
}

/* --check-config: what create() would refuse (a root that is missing or not a directory),
 * opening nothing but the root, which is closed again. */
static bool tftp_check(const pb_host *host, const pb_config *cfg, pb_err *err)
{
    Settings s;
    if (!settings_load(host, cfg, &s, err))
        return false;
    settings_clear(&s);
    return true;
}

static void *tftp_reload_prepare(void *self, const pb_config *cfg, pb_err *err)
{
    Tftp *t = self;
    Settings *s = g_new0(Settings, 1);
    if (!settings_load(t->host, cfg, s, err)) {
        g_free(s);
        return NULL;
    }
    return s;
}

static void tftp_reload_commit(void *self, void *staged)
{
    Tftp *t = self;
    Settings *s = staged;
    /* Address, port and IPv6 need a restart (PB_PARAM_F_RESTART): keep the bound ones. The
     * running transfers keep their negotiated values and their open files. */
    g_free(s->interface);
    s->interface = g_strdup(t->set.interface);
    g_free(s->interface6);
    s->interface6 = g_strdup(t->set.interface6);
    s->port = t->set.port;
    s->ipv6 = t->set.ipv6;
    settings_clear(&t->set);
    t->set = *s;
    g_free(s);
    g_hash_table_remove_all(t->buckets);
    t->host->log(t->inst, PB_LOG_CRITICAL, "configuration reloaded: serving %s", t->set.directory);
}

static void tftp_reload_abort(void *self, void *staged)
{
    Settings *s = staged;
    settings_clear(s);
    g_free(s);
}

static void tftp_status(void *self, pb_status *st)
{
    Tftp *t = self;
    const pb_host *h = t->host;
    h->status_text(st, "serving %s on port %u, %u transfer(s) running", t->set.directory,
                   t->set.port, g_hash_table_size(t->transfers));
    h->status_kv(st, "directory", "%s", t->set.directory);
    h->status_kv(st, "port", "%u", t->set.port);
    h->status_kv(st, "active_transfers", "%u", g_hash_table_size(t->transfers));
    h->status_kv(st, "writes", "%s",
                 !t->set.allow_writes      ? "off"
                 : t->set.allow_overwrites ? "overwrite"
                                           : "new");
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, t->transfers);
    guint shown = 0;
    while (g_hash_table_iter_next(&it, NULL, &v) && shown++ < 20) {
        Transfer *x = v;
        TftpSessionStats ss;
        tftp_session_stats(x->s, &ss);
        h->status_text(st, "  %s %s %s: %" G_GUINT64_FORMAT " bytes", x->key,
                       x->upload ? "<-" : "->", x->path, ss.bytes);
    }
}

static void tftp_stop(void *self)
{
    Tftp *t = self;
    g_hash_table_remove_all(t->transfers);
    for (int i = 0; i < 2; i++) {
        if (t->lwatch[i])
            t->host->watch_remove(t->lwatch[i]);
        t->lwatch[i] = NULL;
        if (t->lsock[i] != PB_SOCKET_NONE)
            pb_udp_close(t->lsock[i]);
        t->lsock[i] = PB_SOCKET_NONE;
    }
    if (t->tick)
        t->host->timer_remove(t->tick);
    t->tick = NULL;
    g_array_set_size(t->providers, 0);
    g_array_set_size(t->listeners, 0);
    /* The host withdraws both names of this instance when it stops. */
}

static void tftp_destroy(void *self)
{
    Tftp *t = self;
    /* The host removed whatever watches and timers were left before calling destroy():
     * forget them rather than remove them twice. */
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, t->transfers);
    while (g_hash_table_iter_next(&it, NULL, &v))
        ((Transfer *)v)->watch = ((Transfer *)v)->out_watch = NULL;
    t->lwatch[0] = t->lwatch[1] = NULL;
    t->tick = NULL;
    g_hash_table_remove_all(t->transfers);
    for (int i = 0; i < 2; i++)
        if (t->lsock[i] != PB_SOCKET_NONE)
            pb_udp_close(t->lsock[i]);
    g_hash_table_unref(t->transfers);
    g_hash_table_unref(t->buckets);
    g_hash_table_unref(t->per_client);
    settings_clear(&t->set);
    g_free(t->buf);
    g_free(t->tbuf);
    g_array_unref(t->providers);
    g_array_unref(t->listeners);
    g_free(t);
}

/* Consumers (policy's pxelinux.cfg files) are started after us and stopped before us. */
static const char *const provides[] = {PB_TFTP_SERVICE, NULL};

static const pb_plugin tftp_plugin = {
    PB_PLUGIN_HEADER,
    .name = "tftp",
    .version = PACKAGE_VERSION,
    .description = "TFTP server for PXE boot files (RFC 1350, 2347-2349, 7440)",
    PB_PARAMS(params),
    .legacy_files = legacy_files,
    .provides = provides,
    .create = tftp_create,
    .start = tftp_start,
    .reload_prepare = tftp_reload_prepare,
    .reload_commit = tftp_reload_commit,
    .reload_abort = tftp_reload_abort,
    .status = tftp_status,
    .stop = tftp_stop,
    .destroy = tftp_destroy,
    .check = tftp_check,
};

PB_PLUGIN_DEFINE(tftp, tftp_plugin)
