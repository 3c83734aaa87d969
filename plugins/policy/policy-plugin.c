/* policy-plugin.c - the policy module: parameters, the preboot.policy service, the UDP
 * server, /boot.ipxe on the daemon's HTTP listener, pxelinux.cfg files through tftp, the
 * `prebootctl policy` commands and reloads that keep the old rules on a bad file (act).
 * The decisions themselves are policy-engine.c's. */
#include "build-config.h"

#include <preboot/http.h>
#include <preboot/multicast.h>
#include <preboot/plugin.h>
#include <preboot/policy.h>

#include "net.h"
#include "policy-engine.h"
#include "policy-proto.h"
#include "policy-server.h"
#include "policy-remote.h"
#include "policy-rules.h"
#include "policy-script.h"
#include "policy-static.h"
#include "policy-store.h"
#include <preboot/tftp.h>

#include <string.h>

/* FLUSH_MS: how often the boots noted in memory are written (policy-store.c: a kill -9 may
 * lose what was noted since the last write). */
#define FLUSH_MS            200
#define REPLY_CACHE_ENTRIES 4096
#define REPLY_CACHE_TTL_US  (30 * G_USEC_PER_SEC)
#define BOOT_IPXE           "/boot.ipxe"

/* ---- parameters ------------------------------------------------------------------------- */

static const pb_param params[] = {
    {.name = "local_interface",
     .legacy = "LocalInterface",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "Address the policy UDP server listens on (servers with several LAN "
             "interfaces); empty: every address."},
    PB_LOG_PARAMS("PolicyLogLevel", "PolicyLogFile", "PolicyLogFileSize",
                  "novell-zmgprebootpolicy.log",
                  "0-1 critical (start, stop, errors), 2 normal (every decision acted on), 3 "
                  "debug (every question, with the reasoning), 4 complete (every datagram)."),
    {.name = "preboot_server",
     .legacy = "PrebootServer",
     .type = PB_PARAM_ADDRESS,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "Address of the imaging server that resolves a device's work (GET "
             "/imaging/v1/work on preboot_server_port); empty: decide locally. The rules "
             "still decide when it does not answer within preboot_server_timeout."},
    /* native only */
    {.name = "preboot_server_port",
     .type = PB_PARAM_INT,
     .def = "8080",
     .min = 1,
     .max = 65535,
     .help = "TCP port of preboot_server's HTTP listener."},
    {.name = "preboot_server_timeout",
     .type = PB_PARAM_INT,
     .def = "2000",
     .min = 50,
     .max = 60000,
     .unit = "ms",
     .help = "How long an answer from preboot_server is waited for (iPXE's /boot.ipxe waits "
             "that long at most; the main loop never does); then the rules decide."},
    {.name = "enable_amt_support",
     .legacy = "EnableAMTSupport",
     .type = PB_PARAM_BOOL,
     .flags = PB_PARAM_F_DEPRECATED,
     .def = "no",
     .help = "Intel AMT support is not supported (as in the legacy product); the setting is "
             "accepted and ignored."},
    /* native only */
    {.name = "rules_file",
     .type = PB_PARAM_PATH,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "The rules file (preboot-rules.yaml(5)); a relative path is taken from the "
             "configuration directory. Empty: built-in rules, every device boots its disk."},
    {.name = "state_database",
     .type = PB_PARAM_PATH,
     .flags = PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "The SQLite database of devices, assignments and one-shot work; empty: "
             "policy.db in the instance's state directory."},
    {.name = "database",
     .type = PB_PARAM_STRING,
     .flags = PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "A PostgreSQL connection string or service (\"service=preboot\", \"host=db "
             "dbname=preboot user=preboot\"), the imaging servers' database (preboot-pg(8)): "
             "assignments and one-shot work are shared there, so that work assigned on one "
             "server is done once through any. state_database stays this server's copy. "
             "Empty: not shared."},
    {.name = "database_password_file",
     .type = PB_PARAM_PATH,
     .flags = PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "A file whose first line is the database password (never logged); relative to "
             "the configuration directory."},
    {.name = "port",
     .type = PB_PARAM_INT,
     .flags = PB_PARAM_F_RESTART,
     .def = "4012",
     .min = 0,
     .max = 65535,
     .help = "UDP port of the policy protocol (doc/protocols.md); 0: no UDP server."},
    {.name = "http",
     .type = PB_PARAM_BOOL,
     .def = "yes",
     .help = "Serve /boot.ipxe on the daemon's HTTP listener (the http plugin)."},
    {.name = "pxelinux_files",
     .type = PB_PARAM_BOOL,
     .def = "yes",
     .help = "Serve pxelinux.cfg/01-<mac> files through the tftp plugin."},
    {.name = "bootenv_directory",
     .type = PB_PARAM_PATH,
     .flags = PB_PARAM_F_EMPTY_OK,
     .def = "",
     .help = "Directory served read-only under /preboot/ on the HTTP listener: the preboot "
             "environment that preboot-bootenv(8) builds (vmlinuz, initrd.img), which iPXE "
             "fetches over HTTP. Empty: not served."},
    {.name = "max_devices",
     .type = PB_PARAM_INT,
     .def = "100000",
     .min = 0,
     .max = 100000000,
     .help = "Device records kept. Anyone on the LAN can ask about made-up devices: at this "
             "many a new device replaces the oldest record that changes no answer (no "
             "assignment, image, just-imaged mark or one-shot work done), and is not recorded "
             "when there is none. 100,000 records take about 32 MB. 0: no limit."},
};

static const char *const legacy_files[] = {"novell-zmgprebootpolicy.conf", NULL};

typedef struct {
    char *local_interface;
    char *preboot_server;
    gint64 preboot_server_port, preboot_server_timeout;
    gboolean amt;
    char *rules_file; /* resolved; "" = built-in */
    char *state_database;
    char *database, *database_password_file; /* the latter resolved */
    char *bootenv_directory;
    gint64 port;
    gboolean http, pxelinux;
    guint max_devices;
} Settings;

typedef struct {
    Settings set;
    PolicyRules *rules;
} Staged;

typedef struct {
    const pb_host *host;
    pb_instance *inst;
    Settings set;
    PolicyRules *rules;
    PolicyStore *store;
    PolicyEngine engine;
    pb_socket_t sock;
    pb_watch *watch;
    PolicyReplyCache *cache;
    guint8 buf[2048];
    pb_policy_service iface;
    pb_timer *flush;
    gint64 flush_warned_us; /* last "cannot write" warning, to log one every 10 s at most */
    gint64 mcast_warned_us; /* last "cannot start a session" warning, likewise */
    /* http and tftp as their watches report them (NULL: not running), and whether our
     * route and file provider are on them. */
    pb_service_watch *http_watch, *tftp_watch;
    const pb_http_service *http;
    const pb_tftp_service *tftp;
    bool http_routed, tftp_hooked, static_routed;
    guint16 bound_port;
    PolicyRemote *remote; /* PrebootServer, or NULL */
    char *remote_config;  /* what remote was made from: "ADDR PORT TIMEOUT" */
    GPtrArray *pxe_files; /* PxeFile handed to tftp and not closed yet */
    struct {
        pb_counter *decisions, *commits, *ignored, *udp_requests, *udp_bad, *udp_retransmits,
            *scripts, *pxelinux, *state_errors, *reports, *devices_created, *devices_evicted,
            *devices_refused, *http_refused, *remote_asked, *remote_answered, *sessions_started;
    } c;
} Policy;

static void settings_clear(Settings *s)
{
    g_free(s->local_interface);
    g_free(s->preboot_server);
    g_free(s->rules_file);
    g_free(s->state_database);
    g_free(s->database);
    g_free(s->database_password_file);
    g_free(s->bootenv_directory);
    memset(s, 0, sizeof(*s));
}

static void settings_load(const pb_host *h, const pb_config *cfg, Settings *s)
{
    s->local_interface = g_strdup(h->config_string(cfg, "local_interface"));
    s->preboot_server = g_strdup(h->config_string(cfg, "preboot_server"));
    s->preboot_server_port = h->config_int(cfg, "preboot_server_port");
    s->preboot_server_timeout = h->config_int(cfg, "preboot_server_timeout");
    s->amt = h->config_bool(cfg, "enable_amt_support");
    const char *rf = h->config_string(cfg, "rules_file");
    if (*rf == '\0' || g_path_is_absolute(rf))
        s->rules_file = g_strdup(rf);
    else
        s->rules_file = g_build_filename(PB_SYSCONFDIR, rf, NULL);
    s->state_database = g_strdup(h->config_string(cfg, "state_database"));
    s->database = g_strdup(h->config_string(cfg, "database"));
    const char *pf = h->config_string(cfg, "database_password_file");
    s->database_password_file = *pf == '\0' || g_path_is_absolute(pf)
                                    ? g_strdup(pf)
                                    : g_build_filename(PB_SYSCONFDIR, pf, NULL);
    s->bootenv_directory = g_strdup(h->config_string(cfg, "bootenv_directory"));
    s->port = h->config_int(cfg, "port");
    s->http = h->config_bool(cfg, "http");
    s->pxelinux = h->config_bool(cfg, "pxelinux_files");
    s->max_devices = (guint)h->config_int(cfg, "max_devices");
}

static PolicyRules *rules_load(const char *path, GError **error)
{
    if (path == NULL || *path == '\0')
        return policy_rules_new_default();
    g_autofree char *text = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &text, &len, error))
        return NULL;
    return policy_rules_parse(text, len, path, error);
}

/* ---- deciding --------------------------------------------------------------------------- */

static void log_decision(Policy *p, const char *via, const pb_policy_decision *d, gboolean commit,
                         GString *why)
{
    int level = commit ? PB_LOG_TRANSACTION : PB_LOG_REQUEST;
    if (!p->host->log_enabled(p->inst, level))
        return;
    if (d->action == PB_POLICY_IGNORE)
        p->host->log(p->inst, level, "%s: %s: ignored (%s)", via, d->device_id, d->rule);
    else
        p->host->log(p->inst, level, "%s: %s: %s%s%s, menu %s (%s)%s", via, d->device_id,
                     policy_work_name(d->work), d->work_arg[0] ? " " : "", d->work_arg,
                     policy_menu_show_name(d->menu), d->rule, commit ? "" : " [dry run]");
    if (why != NULL && p->host->log_enabled(p->inst, PB_LOG_DEBUG))
        p->host->log(p->inst, PB_LOG_DEBUG, "%s", why->str);
}

/* Whether a request is a device on its way to its work: the boot that carries it out
 * (proxydhcp's commit, iPXE's script, pxelinux's file) or the imaging environment asking
 * for it. Not a dry run, and not the CONSUME of imaging's report, which comes after the
 * work: a session finished by then must not start again. */
static gboolean on_the_way(guint32 flags)
{
    return (flags & (PB_POLICY_REQ_WORK | POLICY_REQ_BOOT_PROGRAM)) != 0 ||
           (flags & (PB_POLICY_REQ_COMMIT | PB_POLICY_REQ_CONSUME)) == PB_POLICY_REQ_COMMIT;
}

/* Multicast work that says how the server starts its session (image=IMAGE): the session
 * is started through the multicast plugin's service when the first device assigned to it
 * is on its way, unless it runs. Every device of the room asks; only the first starts it. */
static void start_session(Policy *p, const char *via, const PolicyDevice *dev,
                          const pb_policy_decision *d)
{
    PolicyWork w;
    if (!policy_engine_session_spec(&p->engine, dev, d, &w))
        return;
    const pb_mcast_service *mc =
        p->host->service_lookup(p->inst, PB_MCAST_SERVICE, PB_MCAST_SERVICE_VERSION, NULL);
    uint32_t r = PB_MCAST_ENSURE_REFUSED;
    char by[192];
    g_snprintf(by, sizeof(by), "policy: %s", d->device_id);
    if (mc != NULL && PB_HAS_FIELD(pb_mcast_service, mc, ensure_session) &&
        mc->ensure_session != NULL) {
        pb_mcast_session_spec spec = {.struct_size = sizeof(spec),
                                      .name = w.arg,
                                      .image = w.image,
                                      .clients = w.clients,
                                      .t_min = w.t_min,
                                      .by = by};
        r = mc->ensure_session(mc->ctx, &spec);
    }
    gint64 now = (gint64)p->host->monotonic_us();
    if (r == PB_MCAST_ENSURE_STARTED) {
        p->host->counter_add(p->c.sessions_started, 1);
        p->host->log(p->inst, PB_LOG_TRANSACTION, "%s: %s: started multicast session %s (image %s)",
                     via, d->device_id, w.arg, w.image);
    } else if (r == PB_MCAST_ENSURE_REFUSED &&
               (p->mcast_warned_us == 0 || now - p->mcast_warned_us >= 10 * G_USEC_PER_SEC)) {
        /* Devices ask again and again while it cannot start: one warning every 10 s. */
        p->mcast_warned_us = now;
        p->host->log(p->inst, PB_LOG_WARNING, "%s: %s: multicast session %s (image %s) %s", via,
                     d->device_id, w.arg, w.image,
                     mc == NULL ? "cannot be started: no multicast plugin runs"
                                : "was not started (the multicast log says why)");
    }
    policy_work_clear(&w);
}

/* Every way in (service, UDP, HTTP, TFTP) comes through here. */
static void decide(Policy *p, const char *via, const PolicyDevice *dev, guint32 flags,
                   pb_policy_decision *out)
{
    gboolean commit = (flags & (PB_POLICY_REQ_COMMIT | PB_POLICY_REQ_CONSUME)) != 0;
    /* PrebootServer: its recent answer decides the work. One-shot work of our own is then
     * not used up; a device acted on without an answer yet has one asked for (in the
     * background) so the next request of its boot (iPXE after proxyDHCP) finds it. */
    PolicyRemoteAnswer remote = {0};
    if (p->remote != NULL && !policy_remote_cached(p->remote, dev, &remote) && commit)
        policy_remote_ask(p->remote, dev, NULL, NULL);
    if (remote.answered)
        flags = (flags & ~(guint32)PB_POLICY_REQ_CONSUME) | (commit ? PB_POLICY_REQ_COMMIT : 0);
    g_autoptr(GError) error = NULL;
    g_autoptr(GString) why =
        p->host->log_enabled(p->inst, PB_LOG_DEBUG) ? g_string_new(NULL) : NULL;
    if (!policy_engine_decide(&p->engine, dev, flags, g_get_real_time() / G_USEC_PER_SEC, out, why,
                              &error)) {
        p->host->counter_add(p->c.state_errors, 1);
        p->host->log(p->inst, PB_LOG_WARNING, "%s: %s (answered from the rules alone)", via,
                     error ? error->message : "decision failed");
    }
    if (remote.answered)
        policy_remote_apply(&remote, policy_remote_server(p->remote), out);
    else if (out->action == PB_POLICY_BOOT && out->work == PB_POLICY_WORK_MULTICAST &&
             on_the_way(flags))
        start_session(p, via, dev, out);
    p->host->counter_add(p->c.decisions, 1);
    if (commit)
        p->host->counter_add(p->c.commits, 1);
    if (out->action == PB_POLICY_IGNORE)
        p->host->counter_add(p->c.ignored, 1);
    log_decision(p, via, out, commit, why);
}

static bool svc_decide(void *ctx, const pb_policy_request *req, pb_policy_decision *out)
{
    Policy *p = ctx;
    if (req == NULL || !PB_HAS_FIELD(pb_policy_decision, out, flags))
        return false;
    PolicyDevice dev;
    policy_device_from_request(&dev, req);
    guint32 flags =
        PB_HAS_FIELD(pb_policy_request, req, flags)
            ? req->flags & (PB_POLICY_REQ_COMMIT | PB_POLICY_REQ_CONSUME | PB_POLICY_REQ_WORK)
            : 0;
    pb_policy_decision d = {.struct_size = sizeof(d)};
    decide(p, "service", &dev, flags, &d);
    policy_device_clear(&dev);
    guint32 size = out->struct_size;
    memcpy((char *)out + sizeof(guint32), (char *)&d + sizeof(guint32),
           MIN(size, sizeof(d)) - sizeof(guint32));
    return true;
}

static bool svc_report(void *ctx, const pb_policy_request *req, uint32_t event, const char *image)
{
    Policy *p = ctx;
    PolicyDevice dev;
    policy_device_from_request(&dev, req);
    g_autoptr(GError) error = NULL;
    char id[160];
    policy_device_identity(&dev, id, sizeof(id));
    gboolean ok = policy_engine_report(&p->engine, &dev, event, image,
                                       g_get_real_time() / G_USEC_PER_SEC, &error);
    p->host->counter_add(p->c.reports, 1);
    p->host->log(p->inst, ok ? PB_LOG_TRANSACTION : PB_LOG_WARNING, "report: %s: event %u%s%s%s%s",
                 *id ? id : "(unidentified)", event, image ? " image " : "", image ? image : "",
                 ok ? "" : ": ", ok ? "" : error->message);
    policy_device_clear(&dev);
    return ok;
}

static bool svc_menu_entry(void *ctx, const char *menu, uint32_t index, pb_policy_menu_entry *out)
{
    Policy *p = ctx;
    return out != NULL && policy_engine_menu_entry(&p->engine, menu, index, out);
}

/* ---- the UDP server --------------------------------------------------------------------- */

static void udp_send(Policy *p, const PbAddr *to, const PbAddr *local, guint32 ifindex,
                     GBytes *reply)
{
    g_autoptr(GError) e = NULL;
    gsize len;
    const guint8 *data = g_bytes_get_data(reply, &len);
    if (pb_udp_send(p->sock, data, len, to, local, ifindex, &e) < 0 &&
        p->host->log_enabled(p->inst, PB_LOG_WARNING)) {
        char a[80];
        p->host->log(p->inst, PB_LOG_WARNING, "reply to %s: %s",
                     pb_addr_format(to, TRUE, a, sizeof(a)), e->message);
    }
}

static GBytes *error_reply(guint32 id, const char *text)
{
    PolicyMsg m;
    policy_msg_init(&m);
    m.type = POLICY_MSG_ERROR;
    m.id = id;
    m.error_text = g_strdup(text);
    GByteArray *out = g_byte_array_new();
    policy_msg_build(&m, out);
    policy_msg_clear(&m);
    return g_byte_array_free_to_bytes(out);
}

static void udp_datagram(Policy *p, const guint8 *buf, gsize len, const PbAddr *from,
                         const PbAddr *local, guint32 ifindex)
{
    char peer[80];
    pb_addr_format(from, TRUE, peer, sizeof(peer));
    PolicyMsg m;
    PolicyParseResult r = policy_msg_parse(buf, len, &m);
    p->host->counter_add(p->c.udp_requests, 1);
    if (r == POLICY_PARSE_NOT_OURS) {
        p->host->counter_add(p->c.udp_bad, 1);
        p->host->log(p->inst, PB_LOG_REQUEST, "udp: %s: %s (%zu bytes), dropped", peer,
                     policy_parse_result_text(r), len);
        policy_msg_clear(&m);
        return;
    }
    guint64 now = p->host->monotonic_us();
    g_autoptr(GBytes) cached = policy_reply_cache_get(p->cache, peer, m.id, m.type, (gint64)now);
    if (cached != NULL) {
        /* A retransmission: the same answer, and nothing decided or committed twice. */
        p->host->counter_add(p->c.udp_retransmits, 1);
        udp_send(p, from, local, ifindex, cached);
        policy_msg_clear(&m);
        return;
    }
    g_autoptr(GBytes) reply = NULL;
    if (r != POLICY_PARSE_OK) {
        p->host->counter_add(p->c.udp_bad, 1);
        p->host->log(p->inst, PB_LOG_WARNING, "udp: %s: %s", peer, policy_parse_result_text(r));
        reply = error_reply(m.id, policy_parse_result_text(r));
    } else if (m.type == POLICY_MSG_DECIDE || m.type == POLICY_MSG_DECIDE_COMMIT ||
               m.type == POLICY_MSG_DECIDE_CONSUME) {
        PolicyDevice dev;
        policy_msg_to_device(&m, &dev);
        PolicyMsg out;
        policy_msg_init(&out);
        out.type = POLICY_MSG_DECISION;
        out.id = m.id;
        out.decision.struct_size = sizeof(out.decision);
        g_autofree char *via = g_strdup_printf("udp %s", peer);
        guint32 flags = m.type == POLICY_MSG_DECIDE_COMMIT    ? PB_POLICY_REQ_COMMIT
                        : m.type == POLICY_MSG_DECIDE_CONSUME ? PB_POLICY_REQ_CONSUME
                                                              : 0;
        decide(p, via, &dev, flags, &out.decision);
        GByteArray *b = g_byte_array_new();
        policy_msg_build(&out, b);
        reply = g_byte_array_free_to_bytes(b);
        policy_msg_clear(&out);
        policy_device_clear(&dev);
    } else if (m.type == POLICY_MSG_REPORT) {
        PolicyDevice dev;
        policy_msg_to_device(&m, &dev);
        g_autoptr(GError) error = NULL;
        p->host->counter_add(p->c.reports, 1);
        if (policy_engine_report(&p->engine, &dev, m.event, m.image,
                                 g_get_real_time() / G_USEC_PER_SEC, &error)) {
            PolicyMsg ok;
            policy_msg_init(&ok);
            ok.type = POLICY_MSG_REPORT_OK;
            ok.id = m.id;
            GByteArray *b = g_byte_array_new();
            policy_msg_build(&ok, b);
            reply = g_byte_array_free_to_bytes(b);
        } else {
            reply = error_reply(m.id, error->message);
        }
        policy_device_clear(&dev);
    } else {
        /* a reply type sent to the server: not answered, or two servers would ping-pong */
        p->host->counter_add(p->c.udp_bad, 1);
        policy_msg_clear(&m);
        return;
    }
    policy_reply_cache_put(p->cache, peer, m.id, m.type, reply, (gint64)now);
    udp_send(p, from, local, ifindex, reply);
    policy_msg_clear(&m);
}

static bool udp_readable(void *data, pb_socket_t sock, unsigned events)
{
    Policy *p = data;
    for (int i = 0; i < 64; i++) {
        PbAddr from, local;
        guint32 ifindex = 0;
        g_autoptr(GError) e = NULL;
        gssize n = pb_udp_recv(sock, p->buf, sizeof(p->buf), &from, &local, &ifindex, &e);
        if (n < 0)
            break;
        /* Only unicast questions from real unicast sources are answered: no amplifier. */
        if (pb_addr_is_multicast_or_broadcast(&local) || pb_addr_is_any(&from) ||
            pb_addr_is_multicast_or_broadcast(&from) || from.port == 0) {
            p->host->counter_add(p->c.udp_bad, 1);
            continue;
        }
        udp_datagram(p, p->buf, (gsize)n, &from, &local, ifindex);
    }
    return true;
}

/* ---- /boot.ipxe ------------------------------------------------------------------------- */

typedef struct {
    Policy *p;
    const pb_http_service *http;
    const pb_http_request *req;
    pb_http_response *resp;
    PolicyDevice dev;
    gboolean commit;
} BootWait;

static bool answer_boot_ipxe(Policy *p, const pb_http_service *http, const pb_http_request *req,
                             pb_http_response *resp, PolicyDevice *dev, gboolean commit);

/* PrebootServer answered /boot.ipxe's question, or its deadline passed: decide() finds the
 * answer (if any) in policy-remote's cache. */
static void boot_ipxe_answered(void *data, const PolicyRemoteAnswer *a)
{
    BootWait *w = data;
    if (a->answered)
        w->p->host->counter_add(w->p->c.remote_answered, 1);
    answer_boot_ipxe(w->p, w->http, w->req, w->resp, &w->dev, w->commit);
    g_free(w);
}

static bool serve_boot_ipxe(void *data, const pb_http_request *req, pb_http_response *resp)
{
    Policy *p = data;
    uint32_t v = 0;
    const pb_http_service *http =
        p->host->service_lookup(p->inst, PB_HTTP_SERVICE, PB_HTTP_SERVICE_VERSION, &v);
    if (http == NULL)
        return false;
    /* Only a GET hands the work over (and so may use up one-shot work); HEAD is answered
     * the same without side effects (RFC 9110 section 9.3.2); nothing else is meaningful. */
    gboolean get = req->method != NULL && strcmp(req->method, "GET") == 0;
    gboolean head = req->method != NULL && strcmp(req->method, "HEAD") == 0;
    if (!get && !head) {
        static const char text[] = "method not allowed: GET or HEAD\n";
        p->host->counter_add(p->c.http_refused, 1);
        http->add_header(http->ctx, resp, "Allow", "GET, HEAD");
        return http->respond(http->ctx, resp, 405, "text/plain; charset=utf-8", text,
                             sizeof(text) - 1);
    }
#define Q(name) http->query(http->ctx, req, name)
    PolicyDevice dev;
    policy_device_init(&dev);
    const char *mac = Q("mac"), *uuid = Q("uuid"), *t;
    if (mac != NULL)
        policy_mac_normalize(mac, dev.mac);
    if (uuid != NULL)
        policy_uuid_normalize(uuid, dev.uuid);
    char **slots[] = {&dev.serial,       &dev.manufacturer, &dev.product,     &dev.asset_tag,
                      &dev.bios_version, &dev.user_class,   &dev.vendor_class};
    const char *names[] = {"serial",       "manufacturer", "product",     "asset",
                           "bios_version", "user_class",   "vendor_class"};
    for (gsize i = 0; i < G_N_ELEMENTS(slots); i++) {
        t = Q(names[i]);
        if (t != NULL && *t != '\0')
            *slots[i] = g_strstrip(g_strdup(t));
    }
    if (dev.serial != NULL && policy_serial_is_placeholder(dev.serial))
        g_clear_pointer(&dev.serial, g_free);
    if (dev.asset_tag != NULL && policy_serial_is_placeholder(dev.asset_tag))
        g_clear_pointer(&dev.asset_tag, g_free);
    if (dev.user_class == NULL)
        dev.user_class = g_strdup("iPXE"); /* whoever fetches a .ipxe script is iPXE */
    if ((t = Q("arch")) != NULL)
        dev.arch = policy_arch_parse(t);
    else
        dev.arch = policy_arch_from_ipxe(Q("platform"), Q("buildarch"));
    if ((t = Q("ram")) != NULL)
        dev.ram_mb = g_ascii_strtoull(t, NULL, 10);
    if ((t = Q("disk")) != NULL)
        dev.disk_gb = g_ascii_strtoull(t, NULL, 10);
    if ((t = Q("ip")) == NULL || !policy_ip_parse(t, &dev.ip))
        policy_ip_parse(req->client, &dev.ip);
    /* Fetching the script is acting on it, unless asked for a dry run (commit=0) or only
     * for the headers (HEAD). */
    gboolean commit = get && ((t = Q("commit")) == NULL || strcmp(t, "0") != 0);
#undef Q
    PolicyRemoteAnswer cached;
    if (p->remote != NULL && get && PB_HAS_FIELD(pb_http_service, http, suspend) &&
        http->suspend != NULL && !policy_remote_cached(p->remote, &dev, &cached)) {
        /* Ask PrebootServer and answer when it has (or at its deadline): the request
         * waits, the main loop does not (http version 3 keeps req and resp valid). */
        BootWait *w = g_new0(BootWait, 1);
        *w = (BootWait){
            .p = p, .http = http, .req = req, .resp = resp, .dev = dev, .commit = commit};
        if (policy_remote_ask(p->remote, &w->dev, boot_ipxe_answered, w)) {
            p->host->counter_add(p->c.remote_asked, 1);
            p->host->log(p->inst, PB_LOG_DEBUG, "http %s: %s: asking PrebootServer %s", req->client,
                         w->dev.mac, policy_remote_server(p->remote));
            http->suspend(http->ctx, resp);
            return true;
        }
        dev = w->dev; /* too many questions pending: the rules answer now */
        g_free(w);
    }
    return answer_boot_ipxe(p, http, req, resp, &dev, commit);
}

static bool answer_boot_ipxe(Policy *p, const pb_http_service *http, const pb_http_request *req,
                             pb_http_response *resp, PolicyDevice *dev, gboolean commit)
{
    const char *host_hdr = http->header(http->ctx, req, "Host");
    pb_policy_decision d = {.struct_size = sizeof(d)};
    g_autofree char *via = g_strdup_printf("http %s %s", req->method, req->client);
    decide(p, via, dev, commit ? PB_POLICY_REQ_CONSUME | POLICY_REQ_BOOT_PROGRAM : 0, &d);
    policy_device_clear(dev);
    g_autofree char *base = g_strdup_printf("http://%s", host_hdr ? host_hdr : "");
    g_autofree char *script = policy_ipxe_script(&p->engine, &d, base);
    p->host->counter_add(p->c.scripts, 1);
    http->add_header(http->ctx, resp, "Cache-Control", "no-store");
    return http->respond(http->ctx, resp, d.action == PB_POLICY_IGNORE ? 403 : 200,
                         "text/plain; charset=utf-8", script, strlen(script));
}

/* ---- pxelinux.cfg through tftp ---------------------------------------------------------- */

/* A pxelinux.cfg file handed to tftp. The boot is recorded when the file is asked for; what
 * it hands out (one-shot work, a just-imaged mark) is used up only when the transfer
 * completes: UEFI firmware first asks for the size (RRQ with tsize, then ERROR 8), and the
 * fetch right after must get the same work. */
typedef struct {
    Policy *p; /* NULL once the policy instance stopped: finish() then does nothing */
    GBytes *text;
    PolicyDevice dev; /* who asked, for the consume */
    pb_policy_decision d;
    char via[96];
} PxeFile;

static int64_t vfile_read(void *handle, uint64_t offset, void *buf, size_t len)
{
    PxeFile *f = handle;
    gsize size;
    const guint8 *data = g_bytes_get_data(f->text, &size);
    if (offset >= size)
        return 0;
    gsize n = MIN(len, size - offset);
    memcpy(buf, data + offset, n);
    return (int64_t)n;
}

/* Whether the decision at fetch time still is the one the file carried: the work, its
 * argument and what a consume would use up. */
static gboolean same_decision(const pb_policy_decision *a, const pb_policy_decision *b)
{
    const guint32 used = PB_POLICY_F_ONCE | PB_POLICY_F_JUST_IMAGED | PB_POLICY_F_ASSIGNED;
    return a->action == b->action && a->work == b->work && strcmp(a->work_arg, b->work_arg) == 0 &&
           (a->flags & used) == (b->flags & used);
}

static void vfile_finish(void *handle, uint32_t result, uint64_t bytes)
{
    PxeFile *f = handle;
    Policy *p = f->p;
    if (p == NULL || result != PB_TFTP_OK)
        return; /* a size probe, a timeout, an error: nothing was handed over */
    if (!(f->d.flags & (PB_POLICY_F_ONCE | PB_POLICY_F_JUST_IMAGED)))
        return; /* nothing to use up; the boot was recorded at open */
    /* Work assigned or done meanwhile (prebootctl, another boot of the same device) is not
     * what this file carried: use up only what it did carry. */
    pb_policy_decision now = {.struct_size = sizeof(now)};
    (void)policy_engine_decide(&p->engine, &f->dev, 0, g_get_real_time() / G_USEC_PER_SEC, &now,
                               NULL, NULL);
    if (!same_decision(&now, &f->d)) {
        p->host->log(p->inst, PB_LOG_TRANSACTION,
                     "%s: %s: the decision changed since the file was sent: nothing consumed",
                     f->via, f->d.device_id);
        return;
    }
    pb_policy_decision d = {.struct_size = sizeof(d)};
    decide(p, f->via, &f->dev, PB_POLICY_REQ_CONSUME | POLICY_REQ_BOOT_PROGRAM, &d);
}

static void vfile_close(void *handle)
{
    PxeFile *f = handle;
    if (f->p != NULL)
        g_ptr_array_remove_fast(f->p->pxe_files, f);
    g_bytes_unref(f->text);
    policy_device_clear(&f->dev);
    g_free(f);
}

/* Where the imaging environment finds the HTTP listener: "HOST:PORT", or ":PORT" when it
 * listens on every address and the policy has no local_interface either (the environment
 * then uses the TFTP server's address), or NULL without a listener. */
static char *pxelinux_server(Policy *p)
{
    const pb_http_service *h = p->http;
    if (h == NULL || !PB_HAS_FIELD(pb_http_service, h, listen_address) || h->listen_port == NULL)
        return NULL;
    const char *addr = h->listen_address != NULL ? h->listen_address(h->ctx) : "";
    if (addr == NULL || *addr == '\0')
        addr = p->set.local_interface;
    gboolean v6 = strchr(addr, ':') != NULL;
    return g_strdup_printf("%s%s%s:%u", v6 ? "[" : "", addr, v6 ? "]" : "", h->listen_port(h->ctx));
}

static int open_pxelinux(void *data, const pb_tftp_open_request *req, pb_tftp_vfile *out)
{
    Policy *p = data;
    PxeFile *f = g_new0(PxeFile, 1);
    policy_device_init(&f->dev);
    if (req->path == NULL || !policy_pxelinux_mac(req->path, f->dev.mac)) {
        g_free(f);
        return 0;
    }
    /* The address as the tftp server read it off the socket (service version 2). */
    policy_ip_from_bytes(&f->dev.ip, req->family, req->addr);
    g_snprintf(f->via, sizeof(f->via), "tftp %s", req->client ? req->client : "?");
    f->d.struct_size = sizeof(f->d);
    decide(p, f->via, &f->dev, PB_POLICY_REQ_COMMIT, &f->d);
    if (f->d.action == PB_POLICY_IGNORE) {
        policy_device_clear(&f->dev);
        g_free(f);
        return 0; /* not ours to answer: pxelinux goes on to its next file name */
    }
    g_autofree char *server = pxelinux_server(p);
    char *text = policy_pxelinux_cfg_server(&p->engine, &f->d, server);
    gsize len = strlen(text);
    f->text = g_bytes_new_take(text, len);
    f->p = p;
    g_ptr_array_add(p->pxe_files, f);
    out->struct_size = sizeof(*out);
    out->size = (int64_t)len;
    out->read = vfile_read;
    out->close = vfile_close;
    out->finish = vfile_finish;
    out->handle = f;
    p->host->counter_add(p->c.pxelinux, 1);
    return 1;
}

static bool pxelinux_hook(const pb_tftp_service *tftp, Policy *p)
{
    return PB_HAS_FIELD(pb_tftp_service, tftp, add_file_provider2) &&
           tftp->add_file_provider2 != NULL &&
           tftp->add_file_provider2(tftp->ctx, open_pxelinux, p);
}

static void pxelinux_unhook(const pb_tftp_service *tftp, Policy *p)
{
    if (PB_HAS_FIELD(pb_tftp_service, tftp, remove_file_provider2) &&
        tftp->remove_file_provider2 != NULL)
        tftp->remove_file_provider2(tftp->ctx, open_pxelinux, p);
}

/* Files still with tftp when the instance stops: closed later by tftp, with no Policy. */
static void pxelinux_detach(Policy *p)
{
    for (guint i = 0; i < p->pxe_files->len; i++)
        ((PxeFile *)g_ptr_array_index(p->pxe_files, i))->p = NULL;
    g_ptr_array_set_size(p->pxe_files, 0);
}

/* ---- hooking up to http and tftp, whenever they run ------------------------------------- */

/* The script takes GET and HEAD and no body: through route options (http version 3) the
 * listener refuses other methods (405) and any body (413) from the headers, before reading
 * it; an older listener hands us every request, and serve_boot_ipxe() refuses the rest. */
static bool boot_ipxe_route_add(const pb_http_service *http, Policy *p)
{
    if (PB_HAS_FIELD(pb_http_service, http, route_add_ex) && http->route_add_ex != NULL) {
        const pb_http_route_options o = {.struct_size = sizeof(o), .methods = PB_HTTP_M_GET};
        return http->route_add_ex(http->ctx, BOOT_IPXE, serve_boot_ipxe, p, &o);
    }
    return http->route_add(http->ctx, BOOT_IPXE, serve_boot_ipxe, p);
}

/* /preboot/: the environment's files (policy-static.c), read-only, GET and HEAD. */
static bool serve_static(void *data, const pb_http_request *req, pb_http_response *resp)
{
    Policy *p = data;
    const pb_http_service *http =
        p->host->service_lookup(p->inst, PB_HTTP_SERVICE, PB_HTTP_SERVICE_VERSION, NULL);
    return http != NULL && policy_static_serve(http, p->set.bootenv_directory, req, resp);
}

static void static_unroute(Policy *p)
{
    if (p->http != NULL && p->static_routed)
        p->http->route_remove(p->http->ctx, POLICY_STATIC_PREFIX, serve_static, p);
    p->static_routed = false;
}

static void static_sync(Policy *p)
{
    bool want = p->http != NULL && *p->set.bootenv_directory != '\0';
    if (want && !p->static_routed) {
        const pb_http_route_options o = {.struct_size = sizeof(o), .methods = PB_HTTP_M_GET};
        p->static_routed =
            PB_HAS_FIELD(pb_http_service, p->http, route_add_ex) && p->http->route_add_ex != NULL
                ? p->http->route_add_ex(p->http->ctx, POLICY_STATIC_PREFIX, serve_static, p, &o)
                : p->http->route_add(p->http->ctx, POLICY_STATIC_PREFIX, serve_static, p);
        if (p->static_routed)
            p->host->log(p->inst, PB_LOG_CRITICAL, "serving %s on the HTTP listener as %s",
                         p->set.bootenv_directory, POLICY_STATIC_PREFIX);
    } else if (!want) {
        static_unroute(p);
    }
}

/* Puts our route and file provider on what runs now, or takes them off when a reload
 * turned them off. The watches below say what runs: no polling, no pointer compares. */
static void sync_hooks(Policy *p)
{
    if (p->http != NULL && p->set.http && !p->http_routed) {
        p->http_routed = boot_ipxe_route_add(p->http, p);
        if (p->http_routed)
            p->host->log(p->inst, PB_LOG_CRITICAL, "serving %s on the HTTP listener", BOOT_IPXE);
    } else if (p->http != NULL && !p->set.http && p->http_routed) {
        p->http->route_remove(p->http->ctx, BOOT_IPXE, serve_boot_ipxe, p);
        p->http_routed = false;
    }
    if (p->tftp != NULL && p->set.pxelinux && !p->tftp_hooked) {
        p->tftp_hooked = pxelinux_hook(p->tftp, p);
        if (p->tftp_hooked)
            p->host->log(p->inst, PB_LOG_CRITICAL, "serving pxelinux.cfg/01-<mac> through tftp");
    } else if (p->tftp != NULL && !p->set.pxelinux && p->tftp_hooked) {
        pxelinux_unhook(p->tftp, p);
        p->tftp_hooked = false;
    }
    static_sync(p);
}

/* http started (at once when it runs already), restarted (a new generation: its routes
 * are empty) or stopped. The iface is still valid while it is withdrawn. */
static void on_http(void *data, unsigned event, const char *name, uint32_t version,
                    const void *iface, uint64_t generation)
{
    Policy *p = data;
    if (p->http != NULL && p->http_routed)
        p->http->route_remove(p->http->ctx, BOOT_IPXE, serve_boot_ipxe, p);
    p->http_routed = false;
    static_unroute(p);
    p->http = event == PB_SERVICE_APPEARED ? iface : NULL;
    p->host->log(p->inst, PB_LOG_REQUEST,
                 "service %s version %u %s (generation %" G_GUINT64_FORMAT ")", name, version,
                 event == PB_SERVICE_APPEARED ? "appeared" : "withdrawn", (guint64)generation);
    sync_hooks(p);
}

static void on_tftp(void *data, unsigned event, const char *name, uint32_t version,
                    const void *iface, uint64_t generation)
{
    Policy *p = data;
    if (p->tftp != NULL && p->tftp_hooked)
        pxelinux_unhook(p->tftp, p);
    p->tftp_hooked = false;
    p->tftp = event == PB_SERVICE_APPEARED ? iface : NULL;
    p->host->log(p->inst, PB_LOG_REQUEST,
                 "service %s version %u %s (generation %" G_GUINT64_FORMAT ")", name, version,
                 event == PB_SERVICE_APPEARED ? "appeared" : "withdrawn", (guint64)generation);
    sync_hooks(p);
}

static void unhook(Policy *p)
{
    if (p->http != NULL && p->http_routed)
        p->http->route_remove(p->http->ctx, BOOT_IPXE, serve_boot_ipxe, p);
    if (p->tftp != NULL && p->tftp_hooked)
        pxelinux_unhook(p->tftp, p);
    static_unroute(p);
    p->http_routed = p->tftp_hooked = false;
    p->host->service_unwatch(p->http_watch);
    p->host->service_unwatch(p->tftp_watch);
    p->http_watch = p->tftp_watch = NULL;
    p->http = NULL;
    p->tftp = NULL;
}

/* ---- prebootctl policy ... -------------------------------------------------------------- */

static void show_device(const PolicyDeviceRecord *r, const char *assignment, gpointer data)
{
    void **ctx = data;
    const pb_host *h = ctx[0];
    pb_reply *reply = ctx[1];
    char when[32];
    policy_time_text(r->last_seen, when, sizeof(when));
    h->reply(reply, "%-44s mac %-17s boots %-5" G_GINT64_FORMAT " last %s rule %s%s%s%s%s%s\n",
             r->key, r->mac[0] ? r->mac : "-", r->boot_count, when,
             r->last_rule ? r->last_rule : "-", r->last_image ? " image " : "",
             r->last_image ? r->last_image : "", r->just_imaged ? " just-imaged" : "",
             assignment ? " assigned: " : "", assignment ? assignment : "");
}

static void show_assignment(const char *key, const char *work, gpointer data)
{
    void **ctx = data;
    const pb_host *h = ctx[0];
    h->reply(ctx[1], "  %-44s %s\n", key, work);
}

static const char usage[] =
    "policy show | test DEVICE [fact=value...] | assign DEVICE WORK [once] [force] | "
    "clear DEVICE | devices [N]";

static bool cmd_policy(void *self, int argc, const char *const *argv, pb_reply *reply)
{
    Policy *p = self;
    const pb_host *h = p->host;
    const char *sub = argc > 1 ? argv[1] : "show";
    g_autoptr(GError) error = NULL;
    if (strcmp(sub, "show") == 0) {
        const PolicyRules *r = p->rules;
        h->reply(reply, "rules: %s\n", r->file);
        guint enabled = 0;
        for (guint i = 0; i < r->rules->len; i++)
            enabled += ((const PolicyRule *)g_ptr_array_index(r->rules, i))->enabled;
        h->reply(reply,
                 "%u rules (%u enabled; %u indexed keys, %u always scanned), %u groups, "
                 "%u menus\n",
                 r->rules->len, enabled, g_hash_table_size(r->index), r->scan->len, r->groups->len,
                 r->menus->len);
        for (guint i = 0; i < r->rules->len + 1; i++) {
            const PolicyRule *rule =
                i < r->rules->len ? g_ptr_array_index(r->rules, i) : r->fallback;
            g_autofree char *w =
                rule->has_work ? policy_work_to_string(&rule->work) : g_strdup("(default work)");
            h->reply(reply, "  %-24s line %-4u %s%s%s%s%s%s\n", rule->name, rule->line,
                     rule->enabled ? "" : "[disabled] ", rule->ignore ? "ignore" : w,
                     rule->menu_show >= 0 ? ", menu " : "",
                     rule->menu_show >= 0 ? policy_menu_show_name((guint32)rule->menu_show) : "",
                     rule->menu_name ? ", menu " : "", rule->menu_name ? rule->menu_name : "");
        }
        h->reply(reply, "devices: %" G_GINT64_FORMAT "\n",
                 p->store ? policy_store_count_devices(p->store) : 0);
        if (p->store != NULL) {
            h->reply(reply, "assignments:\n");
            void *ctx[2] = {(void *)h, reply};
            policy_store_foreach_assignment(p->store, show_assignment, ctx, NULL);
        }
        return true;
    }
    if (strcmp(sub, "test") == 0) {
        if (argc < 3) {
            h->reply(reply, "usage: policy test DEVICE [fact=value...]\n");
            return false;
        }
        PolicyDevice dev;
        if (!policy_device_from_words(&dev, argc - 2, argv + 2, &error)) {
            h->reply(reply, "%s\n", error->message);
            policy_device_clear(&dev);
            return false;
        }
        g_autoptr(GString) why = g_string_new(NULL);
        pb_policy_decision d = {.struct_size = sizeof(d)};
        gboolean ok = policy_engine_decide(&p->engine, &dev, 0, g_get_real_time() / G_USEC_PER_SEC,
                                           &d, why, &error);
        policy_device_clear(&dev);
        h->reply(reply, "%s", why->str);
        if (!ok)
            h->reply(reply, "warning: %s\n", error->message);
        if (d.action == PB_POLICY_IGNORE)
            h->reply(reply, "answer: ignore (rule %s)\n", d.rule);
        else
            h->reply(reply, "answer: %s%s%s, menu %s %us, boot file %s (by %s)\n",
                     policy_work_name(d.work), d.work_arg[0] ? " " : "", d.work_arg,
                     policy_menu_show_name(d.menu), d.menu_timeout_s,
                     d.boot_file[0] ? d.boot_file : "(default)", d.rule);
        return true;
    }
    if (strcmp(sub, "assign") == 0 || strcmp(sub, "clear") == 0) {
        gboolean assign = sub[0] == 'a';
        char key[160];
        if (argc < (assign ? 4 : 3) || !policy_device_key_parse(argv[2], key, sizeof(key))) {
            h->reply(reply, "usage: policy %s DEVICE%s (DEVICE: a MAC, a UUID or serial:TEXT)\n",
                     sub, assign ? " WORK [once] [force]" : "");
            return false;
        }
        if (p->store == NULL) {
            h->reply(reply, "no state database\n");
            return false;
        }
        if (assign) {
            g_autofree char *text = g_strjoinv(" ", (char **)argv + 3);
            PolicyWork w;
            if (!policy_work_parse(text, &w, &error)) {
                h->reply(reply, "%s\n", error->message);
                return false;
            }
            /* Refused now rather than handed out, failed and gone at the next boot. The
             * engine keeps such work unconsumed too, should the rules lose imaging later. */
            if (policy_work_needs_imaging(w.work) && p->rules->imaging_kernel == NULL) {
                h->reply(reply,
                         "not assigned: %s needs the imaging environment, and the rules "
                         "file (%s) has no imaging: kernel\n",
                         policy_work_name(w.work), p->rules->file);
                policy_work_clear(&w);
                return false;
            }
            gboolean ok =
                policy_store_assign(p->store, key, &w, g_get_real_time() / G_USEC_PER_SEC, &error);
            g_autofree char *ws = policy_work_to_string(&w);
            policy_work_clear(&w);
            if (!ok) {
                h->reply(reply, "%s\n", error->message);
                return false;
            }
            h->log(p->inst, PB_LOG_CRITICAL, "assigned %s to %s", ws, key);
            h->reply(reply, "assigned %s to %s\n", ws, key);
            return true;
        }
        guint removed = 0;
        if (!policy_store_clear(p->store, key, &removed, &error)) {
            h->reply(reply, "%s\n", error->message);
            return false;
        }
        h->log(p->inst, PB_LOG_CRITICAL, "cleared %s (%u records)", key, removed);
        h->reply(reply, "cleared %s: %u assignment(s), one-shot or just-imaged mark(s) removed\n",
                 key, removed);
        return true;
    }
    if (strcmp(sub, "devices") == 0) {
        if (p->store == NULL) {
            h->reply(reply, "no state database\n");
            return false;
        }
        guint limit = argc > 2 ? (guint)g_ascii_strtoull(argv[2], NULL, 10) : 100;
        void *ctx[2] = {(void *)h, reply};
        if (!policy_store_foreach(p->store, limit, show_device, ctx, &error)) {
            h->reply(reply, "%s\n", error->message);
            return false;
        }
        h->reply(reply, "%" G_GINT64_FORMAT " device(s) known\n",
                 policy_store_count_devices(p->store));
        return true;
    }
    h->reply(reply, "usage: %s\n", usage);
    return false;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

/* Writes the boots noted in memory: handed to the store's writer thread (wait = FALSE, the
 * timer), or written before returning (stop, reload). */
static void flush_state(Policy *p, gboolean wait)
{
    g_autoptr(GError) error = NULL;
    if (p->store == NULL || policy_store_flush(p->store, wait, &error))
        return;
    p->host->counter_add(p->c.state_errors, 1);
    gint64 now = (gint64)p->host->monotonic_us();
    if (p->flush_warned_us == 0 || now - p->flush_warned_us >= 10 * G_USEC_PER_SEC || wait) {
        p->flush_warned_us = now;
        p->host->log(p->inst, PB_LOG_WARNING, "%s (kept in memory, tried again)", error->message);
    }
}

/* The store counts what unauthenticated traffic made it create and forget. */
static void device_counters(Policy *p)
{
    if (p->store == NULL)
        return;
    guint64 created, evicted, refused;
    policy_store_device_stats(p->store, &created, &evicted, &refused);
    p->host->counter_set(p->c.devices_created, (gint64)created);
    p->host->counter_set(p->c.devices_evicted, (gint64)evicted);
    p->host->counter_set(p->c.devices_refused, (gint64)refused);
}

static bool flush_tick(void *data)
{
    flush_state(data, FALSE);
    device_counters(data);
    return true;
}

/* PrebootServer follows the settings (at start and at each reload). */
static void remote_sync(Policy *p, const Settings *s)
{
    g_autofree char *want =
        *s->preboot_server
            ? g_strdup_printf("%s %" G_GINT64_FORMAT " %" G_GINT64_FORMAT, s->preboot_server,
                              s->preboot_server_port, s->preboot_server_timeout)
            : NULL;
    if (g_strcmp0(want, p->remote_config) == 0)
        return;
    g_clear_pointer(&p->remote, policy_remote_free);
    g_clear_pointer(&p->remote_config, g_free);
    if (want == NULL)
        return;
    g_autofree char *hostport =
        strchr(s->preboot_server, ':') != NULL
            ? g_strdup_printf("[%s]:%" G_GINT64_FORMAT, s->preboot_server, s->preboot_server_port)
            : g_strdup_printf("%s:%" G_GINT64_FORMAT, s->preboot_server, s->preboot_server_port);
    g_autoptr(GError) error = NULL;
    p->remote =
        policy_remote_new(p->host, p->inst, hostport, (guint)s->preboot_server_timeout, &error);
    p->remote_config = g_steal_pointer(&want);
    if (p->remote == NULL)
        p->host->log(p->inst, PB_LOG_WARNING, "%s", error->message);
    else
        p->host->log(p->inst, PB_LOG_CRITICAL,
                     "work is asked of PrebootServer %s (deadline %" G_GINT64_FORMAT
                     " ms, then the rules)",
                     hostport, s->preboot_server_timeout);
}

static void warn_settings(Policy *p, const Settings *s)
{
    remote_sync(p, s);
    if (s->amt)
        p->host->log(p->inst, PB_LOG_WARNING,
                     "EnableAMTSupport: Intel AMT is not supported; the setting is ignored");
}

/* The shared database's warnings, from its thread or this one. */
static void store_log(void *data, int level, const char *message)
{
    Policy *p = data;
    p->host->log(p->inst, level, "%s", message);
}

static void *policy_create(const pb_host *host, pb_instance *inst, const pb_config *cfg,
                           pb_err *err)
{
    Policy *p = g_new0(Policy, 1);
    p->host = host;
    p->inst = inst;
    p->sock = PB_SOCKET_NONE;
    settings_load(host, cfg, &p->set);
    g_autoptr(GError) error = NULL;
#define C(field, name) p->c.field = host->counter(inst, name)
    C(decisions, "decisions");
    C(commits, "commits");
    C(ignored, "ignored");
    C(udp_requests, "udp_requests");
    C(udp_bad, "udp_bad");
    C(udp_retransmits, "udp_retransmits");
    C(scripts, "ipxe_scripts");
    C(pxelinux, "pxelinux_files");
    C(state_errors, "state_errors");
    C(reports, "reports");
    C(devices_created, "devices_created");
    C(devices_evicted, "devices_evicted");
    C(devices_refused, "devices_refused");
    C(http_refused, "http_methods_refused");
    C(remote_asked, "preboot_server_asked");
    C(remote_answered, "preboot_server_answered");
    C(sessions_started, "sessions_started");
#undef C
    p->pxe_files = g_ptr_array_new();

    p->rules = rules_load(p->set.rules_file, &error);
    if (p->rules == NULL) {
        host->error(err, "%s", error->message);
        goto fail;
    }
    char *db = *p->set.state_database ? g_strdup(p->set.state_database)
                                      : g_build_filename(host->state_dir(inst), "policy.db", NULL);
    p->store = policy_store_open(db, &error);
    g_free(db);
    if (p->store == NULL || !policy_store_start_writer(p->store, 1000, &error)) {
        host->error(err, "%s", error->message);
        goto fail;
    }
    if (*p->set.database) {
        char *conninfo =
            policy_store_conninfo(p->set.database, p->set.database_password_file, &error);
        gboolean shared =
            conninfo != NULL && policy_store_share(p->store, conninfo, store_log, p, &error);
        policy_store_conninfo_free(conninfo);
        if (!shared) {
            host->error(err, "%s: %s", pb_config_where(host, cfg, "database"), error->message);
            goto fail;
        }
    }
    policy_store_set_max_devices(p->store, p->set.max_devices);
    p->engine.rules = p->rules;
    p->engine.store = p->store;
    p->engine.boot_window_s = 60;
    p->cache = policy_reply_cache_new(REPLY_CACHE_ENTRIES, REPLY_CACHE_TTL_US);

    if (p->set.port > 0) {
        PbAddr bind;
        const char *text = *p->set.local_interface ? p->set.local_interface : "0.0.0.0";
        if (!pb_addr_parse(text, (guint16)p->set.port, &bind)) {
            host->error(err, "%s: cannot parse '%s'", pb_config_where(host, cfg, "local_interface"),
                        text);
            goto fail;
        }
        p->sock = pb_udp_open(&bind, PB_UDP_PKTINFO | PB_UDP_NO_PMTUD, &error);
        if (p->sock == PB_SOCKET_NONE) {
            char a[80];
            host->error(err, "%s: cannot listen on %s: %s",
                        pb_config_where(host, cfg, "local_interface"),
                        pb_addr_format(&bind, TRUE, a, sizeof(a)), error->message);
            goto fail;
        }
        PbAddr got;
        p->bound_port = pb_udp_local_addr(p->sock, &got) ? got.port : (guint16)p->set.port;
    }
    p->iface.struct_size = sizeof(p->iface);
    p->iface.ctx = p;
    p->iface.decide = svc_decide;
    p->iface.report = svc_report;
    p->iface.menu_entry = svc_menu_entry;
    return p;
fail:
    if (p->sock != PB_SOCKET_NONE)
        pb_udp_close(p->sock);
    policy_reply_cache_free(p->cache);
    policy_store_close(p->store);
    policy_rules_free(p->rules);
    settings_clear(&p->set);
    g_ptr_array_unref(p->pxe_files);
    g_free(p);
    return NULL;
}

static bool policy_start(void *self, pb_err *err)
{
    Policy *p = self;
    if (!p->host->service_publish(p->inst, PB_POLICY_SERVICE, PB_POLICY_SERVICE_VERSION, &p->iface,
                                  err))
        return false;
    if (!p->host->command_register(p->inst, "policy", usage, cmd_policy, err))
        return false;
    if (p->sock != PB_SOCKET_NONE)
        p->watch = p->host->watch_socket(p->inst, p->sock, PB_IO_IN, udp_readable, p);
    p->flush = p->host->timer_add(p->inst, FLUSH_MS, flush_tick, p);
    /* http and tftp start before us when configured (we want them: dependency order),
     * so the watches hook up at once, before start() returns and the daemon says
     * "ready"; they also follow restarts. */
    p->http_watch =
        p->host->service_watch(p->inst, PB_HTTP_SERVICE, PB_HTTP_SERVICE_VERSION, on_http, p);
    p->tftp_watch =
        p->host->service_watch(p->inst, PB_TFTP_SERVICE, PB_TFTP_SERVICE_VERSION, on_tftp, p);
    warn_settings(p, &p->set);
    p->host->log(p->inst, PB_LOG_CRITICAL, "policy engine started: %s, %u rules", p->rules->file,
                 p->rules->rules->len);
    if (p->bound_port)
        p->host->log(p->inst, PB_LOG_CRITICAL, "policy protocol on UDP port %u", p->bound_port);
    return true;
}

static void *policy_reload_prepare(void *self, const pb_config *cfg, pb_err *err)
{
    Policy *p = self;
    Staged *s = g_new0(Staged, 1);
    settings_load(p->host, cfg, &s->set);
    g_autoptr(GError) error = NULL;
    /* A bad rules file refuses the reload: the rules in force stay in force. */
    s->rules = rules_load(s->set.rules_file, &error);
    if (s->rules == NULL) {
        p->host->error(err, "%s (the previous rules stay in force)", error->message);
        p->host->log(p->inst, PB_LOG_WARNING, "reload refused: %s", error->message);
        settings_clear(&s->set);
        g_free(s);
        return NULL;
    }
    return s;
}

static void policy_reload_commit(void *self, void *staged)
{
    Policy *p = self;
    Staged *s = staged;
    policy_rules_free(p->rules);
    p->rules = s->rules;
    p->engine.rules = p->rules;
    /* port, local_interface and state_database need a restart (PB_PARAM_F_RESTART); the
     * rest applies now. */
    p->set.http = s->set.http;
    p->set.pxelinux = s->set.pxelinux;
    g_free(p->set.rules_file);
    p->set.rules_file = g_steal_pointer(&s->set.rules_file);
    g_free(p->set.preboot_server);
    p->set.preboot_server = g_steal_pointer(&s->set.preboot_server);
    p->set.preboot_server_port = s->set.preboot_server_port;
    p->set.preboot_server_timeout = s->set.preboot_server_timeout;
    p->set.amt = s->set.amt;
    p->set.max_devices = s->set.max_devices;
    policy_store_set_max_devices(p->store, p->set.max_devices);
    settings_clear(&s->set);
    g_free(s);
    flush_state(p, TRUE);
    sync_hooks(p);
    warn_settings(p, &p->set);
    p->host->log(p->inst, PB_LOG_CRITICAL, "rules reloaded: %s, %u rules", p->rules->file,
                 p->rules->rules->len);
}

static void policy_reload_abort(void *self, void *staged)
{
    Staged *s = staged;
    policy_rules_free(s->rules);
    settings_clear(&s->set);
    g_free(s);
}

static void policy_status(void *self, pb_status *st)
{
    Policy *p = self;
    const pb_host *h = p->host;
    h->status_text(st, "rules %s: %u rules; %" G_GINT64_FORMAT " devices known", p->rules->file,
                   p->rules->rules->len, p->store ? policy_store_count_devices(p->store) : 0);
    h->status_kv(st, "rules_file", "%s", p->rules->file);
    h->status_kv(st, "rules", "%u", p->rules->rules->len);
    h->status_kv(st, "udp_port", "%u", p->bound_port);
    h->status_kv(st, "boot_ipxe", "%s",
                 p->http_routed ? "served"
                 : p->http      ? "off"
                                : "no http listener");
    h->status_kv(st, "pxelinux_cfg", "%s",
                 p->tftp_hooked ? "served"
                 : p->tftp      ? "off"
                                : "no tftp server");
    device_counters(p);
}

static void policy_stop(void *self)
{
    Policy *p = self;
    /* Requests waiting for PrebootServer get the rules' answer now, while http is ours. */
    g_clear_pointer(&p->remote, policy_remote_free);
    g_clear_pointer(&p->remote_config, g_free);
    unhook(p);
    pxelinux_detach(p);
    if (p->watch != NULL)
        p->host->watch_remove(p->watch);
    p->watch = NULL;
    if (p->sock != PB_SOCKET_NONE)
        pb_udp_close(p->sock);
    p->sock = PB_SOCKET_NONE;
    p->host->service_withdraw(p->inst, PB_POLICY_SERVICE);
    if (p->flush != NULL)
        p->host->timer_remove(p->flush);
    p->flush = NULL;
    flush_state(p, TRUE);
}

static void policy_destroy(void *self)
{
    Policy *p = self;
    if (p->sock != PB_SOCKET_NONE)
        pb_udp_close(p->sock);
    policy_reply_cache_free(p->cache);
    policy_store_close(p->store); /* writes what is still pending first */
    policy_rules_free(p->rules);
    settings_clear(&p->set);
    pxelinux_detach(p);
    g_ptr_array_unref(p->pxe_files);
    g_free(p);
}

/* The daemon starts http and tftp first (when configured) and stops them after us. */
static const char *const provides[] = {PB_POLICY_SERVICE, NULL};
static const char *const wants[] = {PB_HTTP_SERVICE, PB_TFTP_SERVICE, NULL};

static const pb_plugin policy_plugin = {
    PB_PLUGIN_HEADER,
    .name = "policy",
    .version = PACKAGE_VERSION,
    .description = "Policy engine: who boots what, which menu, what work (rules + state)",
    PB_PARAMS(params),
    .legacy_files = legacy_files,
    .provides = provides,
    .wants = wants,
    .create = policy_create,
    .start = policy_start,
    .reload_prepare = policy_reload_prepare,
    .reload_commit = policy_reload_commit,
    .reload_abort = policy_reload_abort,
    .status = policy_status,
    .stop = policy_stop,
    .destroy = policy_destroy,
};

PB_PLUGIN_DEFINE(policy, policy_plugin)
