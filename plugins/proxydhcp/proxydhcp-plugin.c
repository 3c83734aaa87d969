/* proxydhcp-plugin.c - the proxydhcp module: parameters, sockets on 67 and 4011, the
 * policy engine (in process, or by UDP with a deadline), the optional reply delay on a
 * timer, counters, status and the per-MAC exchange history. Everything about what to
 * answer lives in proxydhcp-decide.c; this file only moves bytes and keeps state. A
 * request is parsed and classified once, in handle(); the Pending that carries it to
 * finish() holds the result. */
#include "build-config.h"

#include "net.h"
#include "policy-query.h"
#include "proxydhcp-decide.h"

#include <preboot/http.h>
#include <preboot/plugin.h>
#include <preboot/policy.h>
#include <string.h>

/* The suite's version, as every plugin reports it. */
#define PD_VERSION PACKAGE_VERSION

static const char *const profile_choices[] = {"menu", "binl", "direct", NULL};

static const pb_param pd_params[] = {
    {"local_dhcp", "LocalDHCPFlag", PB_PARAM_BOOL, PB_PARAM_F_RESTART, 0, "0", 0, 0, NULL, NULL,
     "1 when the DHCP server for this subnet runs on this host: it owns port 67 and sends "
     "option 60 PXEClient, and proxydhcp serves port 4011 only."},
    {"local_interface", "LocalInterface", PB_PARAM_ADDRESS, PB_PARAM_F_EMPTY_OK, 0, "", 0, 0, NULL,
     NULL,
     "The address proxydhcp names as the boot server; requests arriving on other interfaces "
     "are ignored. Empty: the address of the interface each request came in on."},
    {"policy_engine", "NovellPolicyEngine", PB_PARAM_ADDRESS, PB_PARAM_F_EMPTY_OK, 0, "", 0, 0,
     NULL, NULL,
     "Address of a remote policy engine asked by UDP when no policy plugin runs in this "
     "daemon. Empty: no remote engine."},
    {"policy_port", NULL, PB_PARAM_INT, 0, 0, "4012", 1, 65535, NULL, NULL,
     "UDP port of the remote policy engine (the preboot policy protocol)."},
    {"policy_timeout", NULL, PB_PARAM_INT, 0, 0, "200", 10, 5000, NULL, "ms",
     "How long a reply waits for the remote policy engine before the default answer goes "
     "out."},
    {"nbp_x86", "NBPx86", PB_PARAM_STRING, 0, 0, "nvlnbp.sys", 0, 0, NULL, NULL,
     "Boot file for x86 BIOS clients (architecture 0)."},
    {"boot_file_efi_x64", NULL, PB_PARAM_STRING, 0, 0, "", 0, 0, NULL, NULL,
     "Boot file for x86-64 UEFI clients (architectures 7 and 9). Empty: not answered."},
    {"boot_file_efi_ia32", NULL, PB_PARAM_STRING, 0, 0, "", 0, 0, NULL, NULL,
     "Boot file for IA32 UEFI clients (architecture 6). Empty: not answered."},
    {"boot_file_efi_arm64", NULL, PB_PARAM_STRING, 0, 0, "", 0, 0, NULL, NULL,
     "Boot file for ARM64 UEFI clients (architecture 11). Empty: not answered."},
    {"boot_file_efi_arm32", NULL, PB_PARAM_STRING, 0, 0, "", 0, 0, NULL, NULL,
     "Boot file for ARM32 UEFI clients (architecture 10). Empty: not answered."},
    {"http_boot_url", NULL, PB_PARAM_STRING, 0, 0, "", 0, 0, NULL, NULL,
     "URL for UEFI HTTP boot clients (HTTPClient, architectures 15, 16, 19). Empty: not "
     "answered."},
    {"ipxe_next", NULL, PB_PARAM_STRING, 0, 0, "", 0, 0, NULL, NULL,
     "What a client that already runs iPXE gets instead of the boot file (a script URL or "
     "file), so it never loads iPXE again. Empty: iPXE clients are served like the others."},
    {"menu_timeout", "MenuTimeout", PB_PARAM_INT, 0, 0, "2", 0, 255, NULL, "s",
     "Seconds the F8 prompt waits before booting the first menu entry; 0 boots it at once, "
     "255 shows the menu at once."},
    {"menu_prompt", NULL, PB_PARAM_STRING, 0, 0, "Press F8 for the boot menu", 0, 0, NULL, NULL,
     "The prompt text of the PXE menu."},
    {"menu_title", NULL, PB_PARAM_STRING, 0, 0, "Network boot", 0, 0, NULL, NULL,
     "The first menu entry: this server's default boot file."},
    {"menu", NULL, PB_PARAM_LIST, PB_PARAM_F_EMPTY_OK, 0, NULL, 0, 0, NULL, NULL,
     "Further menu entries, \"Text=bootfile\" or \"Text=local\" (boot the local disk)."},
    {"profile_bios", NULL, PB_PARAM_ENUM, 0, 0, "menu", 0, 0, profile_choices, NULL,
     "Firmware profile for BIOS clients: menu, binl or direct."},
    {"profile_efi", NULL, PB_PARAM_ENUM, 0, 0, "binl", 0, 0, profile_choices, NULL,
     "Firmware profile for UEFI clients: menu, binl or direct."},
    {"profile_rules", NULL, PB_PARAM_LIST, PB_PARAM_F_EMPTY_OK, 0, NULL, 0, 0, NULL, NULL,
     "Profile overrides, first match wins: \"mac 52:54:00:12:34:56 direct\", \"arch 7 menu\", "
     "\"vendor PXEClient:Arch:00000:UNDI:002001 binl\"."},
    {"reply_delay", NULL, PB_PARAM_INT, 0, 0, "0", 0, 10000, NULL, "ms",
     "Wait this long before each reply (some firmware needs it); other clients are served "
     "meanwhile."},
    {"server_name", NULL, PB_PARAM_STRING, 0, 0, "", 0, 0, NULL, NULL,
     "Host name put in the sname field of replies. Empty: none."},
    {"bind_address", NULL, PB_PARAM_ADDRESS, PB_PARAM_F_RESTART | PB_PARAM_F_EMPTY_OK, 0, "", 0, 0,
     NULL, NULL, "Address the sockets bind to. Empty: every address (needed to hear broadcasts)."},
    {"port", NULL, PB_PARAM_INT, PB_PARAM_F_RESTART, 0, "67", 1, 65535, NULL, NULL,
     "The DHCP server port (relays send here too)."},
    {"pxe_port", NULL, PB_PARAM_INT, PB_PARAM_F_RESTART, 0, "4011", 1, 65535, NULL, NULL,
     "The PXE boot server port."},
    {"relay_port", NULL, PB_PARAM_INT, 0, 0, "67", 1, 65535, NULL, NULL,
     "The port relayed requests (giaddr set) are answered on: the relay's server port."},
    {"client_port", NULL, PB_PARAM_INT, 0, 0, "68", 1, 65535, NULL, NULL,
     "The DHCP client port replies are sent to."},
    {"history", NULL, PB_PARAM_INT, 0, 0, "8", 0, 64, NULL, NULL,
     "Exchanges remembered per MAC address for `prebootctl proxydhcp-client MAC`."},
    PB_LOG_PARAMS("ProxyLogLevel", "ProxyLogFile", "ProxyLogFileSize", "novell-proxydhcp.log",
                  "0 critical, 1 warnings, 2 transactions, 3 every request and why one was "
                  "ignored, 4 packets decoded."),
};

static const char *const pd_legacy_files[] = {"novell-proxydhcp.conf", "novell-proxydhcpd.conf",
                                              NULL};

/* How many MAC addresses the history keeps (oldest forgotten first). */
#define HISTORY_CLIENTS 1024

typedef struct Pd Pd;

/* A request held until the policy engine answers, its deadline passes, or the reply
 * delay is over. */
typedef struct {
    Pd *pd;
    DhcpPacket req; /* parsed once, in handle() */
    PdClient client;
    PdContext ctx;
    guint32 ifindex;
    PbAddr local;
    bool on_pxe;
    guint32 query_id;
    PdPolicyAnswer answer;
    char policy_file[256];
    char ipxe_auto[128]; /* the DHCP file field's size */
    pb_timer *timer;
    guint8 out[1024];
    PdPlan plan;
} Pending;

typedef struct {
    PdConfig *pd;
    bool local_dhcp;
    guint8 local_if[4];
    bool have_local_if;
    PbAddr policy_engine;
    bool have_policy_engine;
    guint policy_timeout_ms;
    guint reply_delay_ms;
    guint16 client_port;
    guint16 relay_port;
    guint history;
} Settings;

struct Pd {
    const pb_host *host;
    pb_instance *inst;
    Settings *set;
    pb_socket_t sock[2]; /* [0] = 67, [1] = 4011 */
    pb_watch *watch[2];
    guint16 port[2];
    pb_socket_t policy_sock;
    pb_watch *policy_watch;
    GHashTable *pending; /* query id -> Pending* (those waiting for the policy engine) */
    GList *delayed;      /* Pending* waiting for the reply delay */
    guint32 next_query;
    GHashTable *history;  /* mac -> GQueue of char* */
    GQueue history_order; /* mac (owned by the hash table key) */
    pb_counter *c_requests, *c_ignored, *c_offers, *c_acks, *c_errors, *c_policy_timeouts;
    /* The host's interface addresses, re-read at most every IFADDRS_CACHE_US: getifaddrs()
     * dumps every address over netlink, too slow to repeat for each broadcast DISCOVER of
     * a boot storm. */
    GArray *ifaddrs;
    guint64 ifaddrs_at_us;
    DhcpPacket scratch; /* parse buffer: big, so not on the stack per packet */
    bool warned_ipxe_loop;
};

#define IFADDRS_CACHE_US (2 * G_USEC_PER_SEC)

static const GArray *host_ifaddrs(Pd *pd)
{
    guint64 now = pd->host->monotonic_us();
    if (pd->ifaddrs == NULL || now - pd->ifaddrs_at_us >= IFADDRS_CACHE_US) {
        if (pd->ifaddrs != NULL)
            g_array_unref(pd->ifaddrs);
        pd->ifaddrs = pb_net_ifaddrs();
        pd->ifaddrs_at_us = now;
    }
    return pd->ifaddrs;
}

/* ---- settings ------------------------------------------------------------------------ */

static void settings_free(Settings *s)
{
    if (s == NULL)
        return;
    pd_config_free(s->pd);
    g_free(s);
}

static Settings *settings_build(const pb_host *h, const pb_config *cfg, pb_err *err)
{
    Settings *s = g_new0(Settings, 1);
    PdConfig *c = s->pd = pd_config_new();
    s->local_dhcp = h->config_bool(cfg, "local_dhcp");
    const char *lif = h->config_string(cfg, "local_interface");
    if (lif[0] != '\0') {
        PbAddr a;
        if (!pb_addr_parse(lif, 0, &a) || a.family != 4) {
            h->error(err, "%s: \"%s\" is not an IPv4 address",
                     pb_config_where(h, cfg, "local_interface"), lif);
            settings_free(s);
            return NULL;
        }
        memcpy(s->local_if, a.addr, 4);
        s->have_local_if = true;
    }
    const char *pe = h->config_string(cfg, "policy_engine");
    if (pe[0] != '\0') {
        if (!pb_addr_parse(pe, (guint16)h->config_int(cfg, "policy_port"), &s->policy_engine)) {
            h->error(err, "%s: \"%s\" is not an address", pb_config_where(h, cfg, "policy_engine"),
                     pe);
            settings_free(s);
            return NULL;
        }
        s->have_policy_engine = true;
    }
    s->policy_timeout_ms = (guint)h->config_int(cfg, "policy_timeout");
    s->reply_delay_ms = (guint)h->config_int(cfg, "reply_delay");
    s->client_port = (guint16)h->config_int(cfg, "client_port");
    s->relay_port = (guint16)h->config_int(cfg, "relay_port");
    s->history = (guint)h->config_int(cfg, "history");

    static const char *const file_keys[PXE_ARCH_CLASS_N] = {
        [PXE_ARCH_CLASS_BIOS] = "nbp_x86",
        [PXE_ARCH_CLASS_EFI_IA32] = "boot_file_efi_ia32",
        [PXE_ARCH_CLASS_EFI_X64] = "boot_file_efi_x64",
        [PXE_ARCH_CLASS_EFI_ARM64] = "boot_file_efi_arm64",
        [PXE_ARCH_CLASS_EFI_ARM32] = "boot_file_efi_arm32",
    };
    for (int i = 0; i < PXE_ARCH_CLASS_N; i++) {
        if (file_keys[i] == NULL)
            continue;
        const char *f = h->config_string(cfg, file_keys[i]);
        if (strlen(f) > 127) {
            h->error(err, "%s: a boot file name must fit the 128-byte file field",
                     pb_config_where(h, cfg, file_keys[i]));
            settings_free(s);
            return NULL;
        }
        g_free(c->boot_file[i]);
        c->boot_file[i] = g_strdup(f);
    }
    g_free(c->http_url);
    c->http_url = g_strdup(h->config_string(cfg, "http_boot_url"));
    g_free(c->ipxe_next);
    c->ipxe_next = g_strdup(h->config_string(cfg, "ipxe_next"));
    c->menu_timeout = (guint)h->config_int(cfg, "menu_timeout");
    g_free(c->menu_prompt);
    c->menu_prompt = g_strdup(h->config_string(cfg, "menu_prompt"));
    g_free(c->menu_title);
    c->menu_title = g_strdup(h->config_string(cfg, "menu_title"));
    g_free(c->sname);
    c->sname = g_strdup(h->config_string(cfg, "server_name"));
    if (strlen(c->sname) > 63) {
        h->error(err, "%s: longer than the 64-byte sname field",
                 pb_config_where(h, cfg, "server_name"));
        settings_free(s);
        return NULL;
    }
    PdProfile p;
    pd_profile_parse(h->config_string(cfg, "profile_bios"), &p);
    c->profile[PXE_ARCH_CLASS_BIOS] = p;
    pd_profile_parse(h->config_string(cfg, "profile_efi"), &p);
    for (int i = PXE_ARCH_CLASS_EFI_IA32; i < PXE_ARCH_CLASS_N; i++)
        c->profile[i] = p;

    const char *const *items;
    size_t n = h->config_list(cfg, "menu", &items);
    for (size_t i = 0; i < n; i++) {
        GError *e = NULL;
        if (!pd_config_add_menu(c, items[i], &e)) {
            h->error(err, "%s: %s", pb_config_where(h, cfg, "menu"), e->message);
            g_error_free(e);
            settings_free(s);
            return NULL;
        }
    }
    n = h->config_list(cfg, "profile_rules", &items);
    for (size_t i = 0; i < n; i++) {
        GError *e = NULL;
        if (!pd_config_add_rule(c, items[i], &e)) {
            h->error(err, "%s: %s", pb_config_where(h, cfg, "profile_rules"), e->message);
            g_error_free(e);
            settings_free(s);
            return NULL;
        }
    }
    return s;
}

/* ---- history and counters ------------------------------------------------------------ */

static void history_add(Pd *pd, const char *mac, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void history_add(Pd *pd, const char *mac, const char *fmt, ...)
{
    if (pd->set->history == 0 || mac[0] == '\0')
        return;
    GQueue *q = g_hash_table_lookup(pd->history, mac);
    if (q == NULL) {
        if (g_hash_table_size(pd->history) >= HISTORY_CLIENTS) {
            char *old = g_queue_pop_head(&pd->history_order);
            g_hash_table_remove(pd->history, old);
        }
        q = g_queue_new();
        char *key = g_strdup(mac);
        g_hash_table_insert(pd->history, key, q);
        g_queue_push_tail(&pd->history_order, key);
    }
    GDateTime *now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S");
    g_date_time_unref(now);
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_queue_push_tail(q, g_strdup_printf("%sZ %s", stamp, msg));
    while (g_queue_get_length(q) > pd->set->history)
        g_free(g_queue_pop_head(q));
}

static void history_queue_free(gpointer p)
{
    g_queue_free_full(p, g_free);
}

static void count(Pd *pd, const char *prefix, const char *name)
{
    char key[64];
    g_snprintf(key, sizeof key, "%s %s", prefix, name);
    pd->host->counter_add(pd->host->counter(pd->inst, key), 1);
}

static const char *msg_name(guint8 t)
{
    static const char *const n[] = {"?",   "DISCOVER", "OFFER",   "REQUEST", "DECLINE",
                                    "ACK", "NAK",      "RELEASE", "INFORM"};
    return t < G_N_ELEMENTS(n) ? n[t] : "?";
}

/* ---- sending ------------------------------------------------------------------------- */

static void send_reply(Pending *pe)
{
    Pd *pd = pe->pd;
    const PdPlan *plan = &pe->plan;
    PbAddr to = {.family = 4, .port = plan->dest.port};
    memcpy(to.addr, plan->dest.addr, 4);
    PbAddr from = {.family = 4};
    memcpy(from.addr, pe->ctx.server_addr, 4);
    /* Offers to 68 and relayed replies leave from 67, 4011 answers from 4011: clients
     * and relays check the source port. */
    pb_socket_t s = pd->sock[pe->on_pxe ? 1 : 0];
    if (s == PB_SOCKET_NONE)
        s = pd->sock[1];
    GError *error = NULL;
    if (pb_udp_send(s, pe->out, plan->len, &to, &from, plan->dest.broadcast ? pe->ifindex : 0,
                    &error) < 0) {
        char buf[64];
        pd->host->log(pd->inst, PB_LOG_WARNING, "sending to %s failed: %s",
                      pb_addr_format(&to, TRUE, buf, sizeof buf), error->message);
        pd->host->counter_add(pd->c_errors, 1);
        g_error_free(error);
        return;
    }
    pd->host->counter_add(plan->reply_type == DHCP_OFFER ? pd->c_offers : pd->c_acks, 1);
}

static bool delay_done(void *data)
{
    Pending *pe = data;
    pe->pd->delayed = g_list_remove(pe->pd->delayed, pe);
    send_reply(pe);
    g_free(pe);
    return false;
}

/* Decides with whatever the policy said, logs, and sends now or after the delay. */
static void finish(Pending *pe)
{
    Pd *pd = pe->pd;
    const pb_host *h = pd->host;
    const PdClient *c = &pe->client;
    const char *why = NULL;
    if (!pd_decide(pd->set->pd, &pe->req, c, &pe->ctx, &pe->answer, pe->out, sizeof pe->out,
                   &pe->plan, &why)) {
        h->counter_add(pd->c_ignored, 1);
        if (h->log_enabled(pd->inst, PB_LOG_REQUEST))
            h->log(pd->inst, PB_LOG_REQUEST, "%s %s from %s (%s): ignored: %s",
                   pe->on_pxe ? "4011" : "67", msg_name(c->msg_type), c->mac,
                   pxe_arch_class_name(c->arch_class), why);
        history_add(pd, c->mac, "%s on %s, arch %d (%s): ignored: %s", msg_name(c->msg_type),
                    pe->on_pxe ? "4011" : "67", c->arch, c->vendor_class, why);
        g_free(pe);
        return;
    }
    /* Answer first, account afterwards: the client is waiting, the log is not. */
    bool delayed = pd->set->reply_delay_ms > 0;
    if (!delayed)
        send_reply(pe);
    count(pd, "profile", pd_profile_name(pe->plan.profile));
    char dest[64];
    PbAddr d = {.family = 4, .port = pe->plan.dest.port};
    memcpy(d.addr, pe->plan.dest.addr, 4);
    pb_addr_format(&d, TRUE, dest, sizeof dest);
    const char *file = pe->plan.boot_file ? pe->plan.boot_file : "";
    if (h->log_enabled(pd->inst, PB_LOG_TRANSACTION))
        h->log(pd->inst, PB_LOG_TRANSACTION,
               "%s %s from %s arch %d (%s%s%s) -> %s, profile %s, file \"%s\", to %s%s",
               pe->on_pxe ? "4011" : "67", msg_name(c->msg_type), c->mac, c->arch,
               pxe_arch_class_name(c->arch_class), c->ipxe ? ", iPXE" : "", c->http ? ", HTTP" : "",
               msg_name(pe->plan.reply_type), pd_profile_name(pe->plan.profile), file, dest,
               pe->plan.dest.broadcast ? " (broadcast)" : "");
    history_add(pd, c->mac, "%s on %s, arch %d (%s)%s: %s profile %s, file \"%s\", to %s%s",
                msg_name(c->msg_type), pe->on_pxe ? "4011" : "67", c->arch, c->vendor_class,
                c->ipxe ? " iPXE" : "", msg_name(pe->plan.reply_type),
                pd_profile_name(pe->plan.profile), file, dest,
                pe->plan.dest.broadcast ? " (broadcast)" : "");
    if (delayed) {
        /* A timer, not a sleep: everyone else is served meanwhile. */
        pd->delayed = g_list_prepend(pd->delayed, pe);
        pe->timer = h->timer_add(pd->inst, pd->set->reply_delay_ms, delay_done, pe);
        return;
    }
    g_free(pe);
}

/* ---- the policy engine --------------------------------------------------------------- */

/* In process: the policy plugin's service, when one runs. Returns false when absent. */
static bool ask_local_policy(Pd *pd, const DhcpPacket *req, const PdClient *c, Pending *pe)
{
    uint32_t v = 0;
    const pb_policy_service *pol =
        pd->host->service_lookup(pd->inst, PB_POLICY_SERVICE, PB_POLICY_SERVICE_VERSION, &v);
    if (!PB_HAS_FIELD(pb_policy_service, pol, decide) || pol->decide == NULL)
        return false;
    pb_policy_request q;
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    /* Only the final answer (an ACK) records a boot; an OFFER is a dry run. */
    q.flags = (c->msg_type == DHCP_REQUEST || c->msg_type == DHCP_INFORM) &&
                      (pe->on_pxe || c->vendor.has_boot_item)
                  ? PB_POLICY_REQ_COMMIT
                  : 0;
    q.mac_len = (uint8_t)MIN(req->hlen, 16);
    memcpy(q.mac, req->chaddr, q.mac_len);
    gsize ulen;
    const guint8 *u = dhcp_packet_get(req, DHCP_OPT_CLIENT_UUID, &ulen);
    if (u != NULL && ulen == 17 && u[0] == 0) {
        q.has_uuid = 1;
        memcpy(q.uuid, u + 1, 16);
    }
    if (c->arch >= 0) {
        q.has_arch = 1;
        q.arch = (uint16_t)c->arch;
    }
    /* policy service version 2: addresses as bytes, not printed and parsed back */
    static const guint8 zero[4];
    if (memcmp(req->ciaddr, zero, 4) != 0) {
        q.client_family = 4;
        memcpy(q.client_addr, req->ciaddr, 4);
    }
    if (memcmp(req->giaddr, zero, 4) != 0) {
        q.relay_family = 4;
        memcpy(q.relay_addr, req->giaddr, 4);
    }
    q.user_class = c->user_class;
    q.vendor_class = c->vendor_class;
    pb_policy_decision d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    if (!pol->decide(pol->ctx, &q, &d))
        return false;
    pe->answer.ignore = d.action == PB_POLICY_IGNORE;
    if (d.boot_file[0] != '\0') {
        g_strlcpy(pe->policy_file, d.boot_file, sizeof pe->policy_file);
        pe->answer.boot_file = pe->policy_file;
    }
    pd->host->log(pd->inst, PB_LOG_DEBUG, "policy for %s: %s%s%s (rule %s)", c->mac,
                  pe->answer.ignore ? "ignore" : "boot", d.boot_file[0] ? " " : "", d.boot_file,
                  d.rule);
    return true;
}

static bool policy_deadline(void *data)
{
    Pending *pe = data;
    Pd *pd = pe->pd;
    pe->timer = NULL;
    g_hash_table_steal(pd->pending, GUINT_TO_POINTER(pe->query_id));
    pd->host->counter_add(pd->c_policy_timeouts, 1);
    pd->host->log(pd->inst, PB_LOG_WARNING,
                  "policy engine did not answer within %u ms: default answer",
                  pd->set->policy_timeout_ms);
    finish(pe);
    return false;
}

static bool policy_readable(void *data, pb_socket_t sock, unsigned events)
{
    Pd *pd = data;
    for (int i = 0; i < 64; i++) {
        guint8 buf[2048];
        PbAddr from;
        GError *error = NULL;
        gssize n = pb_udp_recv(sock, buf, sizeof buf, &from, NULL, NULL, &error);
        if (n < 0) {
            g_error_free(error);
            break;
        }
        PdPolicyReply r;
        if (!pd_policy_reply_parse(buf, (gsize)n, &r) ||
            !pb_addr_equal(&from, &pd->set->policy_engine))
            continue;
        Pending *pe = g_hash_table_lookup(pd->pending, GUINT_TO_POINTER(r.id));
        if (pe == NULL)
            continue; /* late: its default answer already went out */
        g_hash_table_steal(pd->pending, GUINT_TO_POINTER(r.id));
        pd->host->timer_remove(pe->timer);
        pe->timer = NULL;
        pe->answer.ignore = r.ignore;
        if (r.boot_file[0] != '\0') {
            g_strlcpy(pe->policy_file, r.boot_file, sizeof pe->policy_file);
            pe->answer.boot_file = pe->policy_file;
        }
        finish(pe);
    }
    return true;
}

/* Sends the question; false when it could not be asked (then the default applies). */
static bool ask_remote_policy(Pd *pd, const DhcpPacket *req, const PdClient *c, Pending *pe)
{
    if (!pd->set->have_policy_engine)
        return false;
    if (pd->policy_sock == PB_SOCKET_NONE) {
        PbAddr any;
        pb_addr_parse(pd->set->policy_engine.family == 6 ? "::" : "0.0.0.0", 0, &any);
        GError *error = NULL;
        pd->policy_sock = pb_udp_open(&any, 0, &error);
        if (pd->policy_sock == PB_SOCKET_NONE) {
            pd->host->log(pd->inst, PB_LOG_WARNING, "policy socket: %s", error->message);
            g_error_free(error);
            return false;
        }
        pd->policy_watch =
            pd->host->watch_socket(pd->inst, pd->policy_sock, PB_IO_IN, policy_readable, pd);
    }
    pe->query_id = ++pd->next_query;
    guint8 q[1400];
    bool commit = (c->msg_type == DHCP_REQUEST || c->msg_type == DHCP_INFORM) &&
                  (pe->on_pxe || c->vendor.has_boot_item);
    gsize qlen = pd_policy_query_encode(pe->query_id, commit, req, c, q, sizeof q);
    GError *error = NULL;
    if (pb_udp_send(pd->policy_sock, q, qlen, &pd->set->policy_engine, NULL, 0, &error) < 0) {
        pd->host->log(pd->inst, PB_LOG_WARNING, "policy query: %s", error->message);
        g_error_free(error);
        return false;
    }
    g_hash_table_insert(pd->pending, GUINT_TO_POINTER(pe->query_id), pe);
    pe->timer = pd->host->timer_add(pd->inst, pd->set->policy_timeout_ms, policy_deadline, pe);
    return true;
}

/* ---- receiving ----------------------------------------------------------------------- */

/* An iPXE client with no ipxe_next configured: point it at the policy script on this
 * daemon's HTTP listener when one serves /boot.ipxe, at the address it reached us on (or
 * the listener's own), with the identifiers iPXE fills in itself. Without that it would
 * be offered the boot file again: iPXE loading iPXE, forever. */
static void ipxe_auto(Pd *pd, const PdClient *c, Pending *pe)
{
    const pb_host *h = pd->host;
    const pb_http_service *http =
        h->service_lookup(pd->inst, PB_HTTP_SERVICE, PB_HTTP_SERVICE_VERSION, NULL);
    if (http != NULL && PB_HTTP_HAS(http, routed) && http->routed(http->ctx, "/boot.ipxe")) {
        PbAddr at;
        guint16 port = http->listen_port(http->ctx);
        if (!pb_addr_parse(http->listen_address(http->ctx), port, &at) || pb_addr_is_any(&at)) {
            memset(&at, 0, sizeof(at));
            at.family = 4;
            at.port = port;
            memcpy(at.addr, pe->ctx.server_addr, 4);
        }
        char hostport[80];
        int n = g_snprintf(pe->ipxe_auto, sizeof(pe->ipxe_auto),
                           "http://%s/boot.ipxe?mac=${net0/mac}&platform=${platform}"
                           "&buildarch=${buildarch}",
                           pb_addr_format(&at, TRUE, hostport, sizeof(hostport)));
        if (n > 0 && (gsize)n < sizeof(pe->ipxe_auto)) {
            pe->ctx.ipxe_auto = pe->ipxe_auto;
            return;
        }
    }
    if (!pd->warned_ipxe_loop) {
        pd->warned_ipxe_loop = true;
        /* Said as it is known: the request shows iPXE (user class "iPXE", option 77, or
         * iPXE's option 175), which a NIC whose ROM is iPXE sends on its very first
         * DISCOVER too, so it need not be an iPXE we had it load. */
        h->log(pd->inst, PB_LOG_WARNING,
               "%s runs iPXE (%s), and ipxe_next is empty with no /boot.ipxe on an HTTP "
               "listener here: it is offered the boot file, which loops if that is iPXE. Set "
               "ipxe_next, or load the http and policy plugins.",
               c->mac,
               strstr(c->user_class, "iPXE") != NULL ? "DHCP user class \"iPXE\""
                                                     : "iPXE's option 175");
    }
}

static void handle(Pd *pd, int which, const guint8 *buf, gsize n, const PbAddr *from,
                   const PbAddr *local, guint32 ifindex)
{
    const pb_host *h = pd->host;
    DhcpPacket *req = &pd->scratch;
    char src[64];
    pb_addr_format(from, TRUE, src, sizeof src);
    DhcpParseResult r = dhcp_packet_parse(buf, n, req);
    if (r != DHCP_PARSE_OK) {
        h->log(pd->inst, PB_LOG_REQUEST, "datagram from %s ignored: %s", src,
               dhcp_parse_result_str(r));
        h->counter_add(pd->c_ignored, 1);
        return;
    }
    PdClient c;
    const char *why = NULL;
    if (!pd_classify(req, &c, &why)) {
        /* Every DHCP client on the segment reaches port 67: only level 3 hears of them. */
        if (h->log_enabled(pd->inst, PB_LOG_REQUEST))
            h->log(pd->inst, PB_LOG_REQUEST, "%s from %s (%s) ignored: %s", msg_name(req->msg_type),
                   src, c.mac[0] ? c.mac : "?", why);
        h->counter_add(pd->c_ignored, 1);
        if (req->op == DHCP_BOOTREQUEST)
            history_add(pd, c.mac, "%s from %s: ignored: %s", msg_name(req->msg_type), src, why);
        return;
    }
    h->counter_add(pd->c_requests, 1);
    count(pd, "arch", pxe_arch_class_name(c.arch_class));
    if (h->log_enabled(pd->inst, PB_LOG_DEBUG))
        h->log(pd->inst, PB_LOG_DEBUG,
               "%s on %u from %s: mac %s xid %08x arch %d (from %s) vendor \"%s\" uuid %s "
               "user-class \"%s\" nii %d.%d iPXE %s giaddr %u.%u.%u.%u ciaddr %u.%u.%u.%u "
               "item %s%04x/%u",
               msg_name(c.msg_type), pd->port[which], src, c.mac, GUINT32_FROM_BE(req->xid), c.arch,
               c.arch_source == 93   ? "93"
               : c.arch_source == 60 ? "60"
                                     : "default",
               c.vendor_class, c.uuid[0] ? c.uuid : "-", c.user_class, c.undi_major, c.undi_minor,
               c.ipxe ? "yes" : "no", req->giaddr[0], req->giaddr[1], req->giaddr[2],
               req->giaddr[3], req->ciaddr[0], req->ciaddr[1], req->ciaddr[2], req->ciaddr[3],
               c.vendor.has_boot_item ? "" : "none ", c.vendor.item_type, c.vendor.item_layer);

    /* Our address as the client should see it (pd_choose_server_addr). */
    guint8 server_addr[4];
    PdArrival arrival = {
        .local_if = pd->set->have_local_if ? pd->set->local_if : NULL,
        .ifindex = ifindex,
        .local = *local,
        .ifaddrs = host_ifaddrs(pd),
    };
    switch (pd_choose_server_addr(req, &arrival, server_addr)) {
    case PD_SERVER_ADDR_OK:
        break;
    case PD_SERVER_ADDR_WRONG_IFACE:
        h->log(pd->inst, PB_LOG_REQUEST,
               "%s from %s ignored: arrived on an interface "
               "without LocalInterface's address",
               msg_name(c.msg_type), c.mac);
        h->counter_add(pd->c_ignored, 1);
        return;
    case PD_SERVER_ADDR_NONE:
        h->log(pd->inst, PB_LOG_WARNING,
               "no IPv4 address on interface %u to name as the boot server", ifindex);
        return;
    }

    /* What was parsed and classified travels with the request: nothing is parsed again. */
    Pending *pe = g_new0(Pending, 1);
    pe->pd = pd;
    pe->req = *req;
    pe->client = c;
    pe->on_pxe = which == 1;
    pe->ifindex = ifindex;
    pe->local = *local;
    pe->answer = PD_POLICY_DEFAULT;
    pe->ctx.on_pxe_port = which == 1;
    if (from->family == 4)
        memcpy(pe->ctx.src_addr, from->addr, 4);
    pe->ctx.src_port = from->port;
    pe->ctx.client_port = pd->set->client_port;
    pe->ctx.server_port = pd->set->relay_port;
    memcpy(pe->ctx.server_addr, server_addr, 4);

    if (c.ipxe && pd->set->pd->ipxe_next[0] == '\0')
        ipxe_auto(pd, &c, pe);

    if (ask_local_policy(pd, &pe->req, &pe->client, pe)) {
        finish(pe);
        return;
    }
    if (ask_remote_policy(pd, &pe->req, &pe->client, pe))
        return; /* finish() runs on the answer or at the deadline */
    finish(pe);
}

static bool readable(Pd *pd, int which)
{
    /* Drain a bounded batch, then let the loop serve the other sockets. */
    for (int i = 0; i < 64; i++) {
        guint8 buf[DHCP_MAX_LEN];
        PbAddr from, local;
        guint32 ifindex = 0;
        GError *error = NULL;
        gssize n = pb_udp_recv(pd->sock[which], buf, sizeof buf, &from, &local, &ifindex, &error);
        if (n < 0) {
            if (!pb_net_error_would_block(error))
                pd->host->log(pd->inst, PB_LOG_WARNING, "receive on port %u: %s", pd->port[which],
                              error->message);
            g_error_free(error);
            break;
        }
        handle(pd, which, buf, (gsize)n, &from, &local, ifindex);
    }
    return true;
}

static bool readable67(void *data, pb_socket_t sock, unsigned events)
{
    return readable(data, 0);
}

static bool readable4011(void *data, pb_socket_t sock, unsigned events)
{
    return readable(data, 1);
}

/* ---- control command ----------------------------------------------------------------- */

static bool cmd_client(void *self, int argc, const char *const *argv, pb_reply *reply)
{
    Pd *pd = self;
    if (argc != 2) {
        pd->host->reply(reply, "usage: %s MAC\n", argv[0]);
        return false;
    }
    g_autofree char *mac = g_ascii_strdown(argv[1], -1);
    g_strdelimit(mac, "-", ':');
    GQueue *q = g_hash_table_lookup(pd->history, mac);
    if (q == NULL) {
        pd->host->reply(reply, "no exchanges with %s since the daemon started\n", mac);
        return true;
    }
    for (GList *l = q->head; l != NULL; l = l->next)
        pd->host->reply(reply, "%s\n", (const char *)l->data);
    return true;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

static void pd_destroy(void *self);

static void *pd_create(const pb_host *host, pb_instance *inst, const pb_config *cfg, pb_err *err)
{
    Settings *s = settings_build(host, cfg, err);
    if (s == NULL)
        return NULL;
    Pd *pd = g_new0(Pd, 1);
    pd->host = host;
    pd->inst = inst;
    pd->set = s;
    pd->sock[0] = pd->sock[1] = pd->policy_sock = PB_SOCKET_NONE;
    pd->pending = g_hash_table_new(g_direct_hash, g_direct_equal);
    pd->history = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, history_queue_free);
    g_queue_init(&pd->history_order);
    pd->port[0] = (guint16)host->config_int(cfg, "port");
    pd->port[1] = (guint16)host->config_int(cfg, "pxe_port");

    /* Bind now, before the daemon drops privileges; serve from start(). */
    const char *bind = host->config_string(cfg, "bind_address");
    for (int i = 0; i < 2; i++) {
        /* LocalDHCPFlag = 1: the DHCP server on this host owns 67. */
        if (i == 0 && s->local_dhcp)
            continue;
        PbAddr a;
        if (!pb_addr_parse(bind, pd->port[i], &a)) {
            host->error(err, "%s: \"%s\" is not an address",
                        pb_config_where(host, cfg, "bind_address"), bind);
            pd_destroy(pd);
            return NULL;
        }
        GError *error = NULL;
        pd->sock[i] = pb_udp_open(
            &a, PB_UDP_PKTINFO | PB_UDP_BROADCAST | PB_UDP_REUSEADDR | PB_UDP_NO_PMTUD, &error);
        if (pd->sock[i] == PB_SOCKET_NONE) {
            host->error(err, "%s: UDP port %u: %s",
                        pb_config_where(host, cfg, i == 0 ? "port" : "pxe_port"), pd->port[i],
                        error->message);
            g_error_free(error);
            pd_destroy(pd);
            return NULL;
        }
    }
    pd->c_requests = host->counter(inst, "PXE Requests");
    pd->c_ignored = host->counter(inst, "Ignored");
    pd->c_offers = host->counter(inst, "Offers");
    pd->c_acks = host->counter(inst, "Acks");
    pd->c_errors = host->counter(inst, "Send errors");
    pd->c_policy_timeouts = host->counter(inst, "Policy timeouts");
    return pd;
}

static bool pd_start(void *self, pb_err *err)
{
    Pd *pd = self;
    const pb_host *h = pd->host;
    if (pd->sock[0] != PB_SOCKET_NONE)
        pd->watch[0] = h->watch_socket(pd->inst, pd->sock[0], PB_IO_IN, readable67, pd);
    pd->watch[1] = h->watch_socket(pd->inst, pd->sock[1], PB_IO_IN, readable4011, pd);
    /* A second instance in one daemon simply has no command; not a failure. */
    h->command_register(pd->inst, "proxydhcp-client", "proxydhcp-client MAC", cmd_client, NULL);
    if (pd->sock[0] != PB_SOCKET_NONE)
        h->log(pd->inst, PB_LOG_CRITICAL, "proxydhcp %s serving on UDP %u and %u", PD_VERSION,
               pd->port[0], pd->port[1]);
    else
        h->log(pd->inst, PB_LOG_CRITICAL,
               "proxydhcp %s serving on UDP %u only (LocalDHCPFlag = 1: the local DHCP server "
               "owns %u)",
               PD_VERSION, pd->port[1], pd->port[0]);
    return true;
}

static void *pd_reload_prepare(void *self, const pb_config *cfg, pb_err *err)
{
    Pd *pd = self;
    return settings_build(pd->host, cfg, err);
}

static void pd_reload_commit(void *self, void *staged)
{
    Pd *pd = self;
    Settings *old = pd->set;
    Settings *s = staged;
    /* Sockets and ports need a restart (PB_PARAM_F_RESTART); keep the running mode. */
    s->local_dhcp = old->local_dhcp;
    pd->set = s;
    settings_free(old);
    pd->host->log(pd->inst, PB_LOG_CRITICAL, "configuration reloaded");
}

static void pd_reload_abort(void *self, void *staged)
{
    settings_free(staged);
}

static void pd_status(void *self, pb_status *st)
{
    Pd *pd = self;
    const pb_host *h = pd->host;
    const PdConfig *c = pd->set->pd;
    if (pd->sock[0] != PB_SOCKET_NONE)
        h->status_text(st, "PXE proxy DHCP on UDP %u and %u", pd->port[0], pd->port[1]);
    else
        h->status_text(st, "PXE boot server on UDP %u only (LocalDHCPFlag = 1)", pd->port[1]);
    h->status_kv(st, "local_dhcp", "%d", pd->set->local_dhcp);
    h->status_kv(st, "port", "%u", pd->port[0]);
    h->status_kv(st, "pxe_port", "%u", pd->port[1]);
    h->status_kv(st, "nbp_x86", "%s", c->boot_file[PXE_ARCH_CLASS_BIOS]);
    h->status_kv(st, "boot_file_efi_x64", "%s", c->boot_file[PXE_ARCH_CLASS_EFI_X64]);
    h->status_kv(st, "profile_bios", "%s", pd_profile_name(c->profile[PXE_ARCH_CLASS_BIOS]));
    h->status_kv(st, "profile_efi", "%s", pd_profile_name(c->profile[PXE_ARCH_CLASS_EFI_X64]));
    h->status_kv(st, "pending_policy", "%u", g_hash_table_size(pd->pending));
    h->status_kv(st, "delayed_replies", "%u", g_list_length(pd->delayed));
    h->status_kv(st, "clients_remembered", "%u", g_hash_table_size(pd->history));
}

static void drop_pending(Pd *pd)
{
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, pd->pending);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        Pending *pe = v;
        pd->host->timer_remove(pe->timer);
        g_free(pe);
    }
    g_hash_table_remove_all(pd->pending);
    for (GList *l = pd->delayed; l != NULL; l = l->next) {
        Pending *pe = l->data;
        pd->host->timer_remove(pe->timer);
        g_free(pe);
    }
    g_list_free(pd->delayed);
    pd->delayed = NULL;
}

static void pd_stop(void *self)
{
    Pd *pd = self;
    drop_pending(pd);
    for (int i = 0; i < 2; i++) {
        pd->host->watch_remove(pd->watch[i]);
        pd->watch[i] = NULL;
        if (pd->sock[i] != PB_SOCKET_NONE)
            pb_udp_close(pd->sock[i]);
        pd->sock[i] = PB_SOCKET_NONE;
    }
    pd->host->watch_remove(pd->policy_watch);
    pd->policy_watch = NULL;
    if (pd->policy_sock != PB_SOCKET_NONE)
        pb_udp_close(pd->policy_sock);
    pd->policy_sock = PB_SOCKET_NONE;
}

static void pd_destroy(void *self)
{
    Pd *pd = self;
    if (pd == NULL)
        return;
    for (int i = 0; i < 2; i++)
        if (pd->sock[i] != PB_SOCKET_NONE)
            pb_udp_close(pd->sock[i]);
    if (pd->policy_sock != PB_SOCKET_NONE)
        pb_udp_close(pd->policy_sock);
    /* Timers were removed by stop() or by the host; only memory is left. */
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, pd->pending);
    while (g_hash_table_iter_next(&it, NULL, &v))
        g_free(v);
    g_hash_table_destroy(pd->pending);
    g_list_free_full(pd->delayed, g_free);
    g_queue_clear(&pd->history_order);
    g_hash_table_destroy(pd->history);
    if (pd->ifaddrs != NULL)
        g_array_unref(pd->ifaddrs);
    settings_free(pd->set);
    g_free(pd);
}

/* Started after the policy engine and the HTTP listener it asks about, so that the first
 * DISCOVER is answered as configured rather than from the defaults. */
static const char *const pd_wants[] = {PB_POLICY_SERVICE, PB_HTTP_SERVICE, NULL};

static const pb_plugin pd_plugin = {
    PB_PLUGIN_HEADER,
    .name = "proxydhcp",
    .version = PD_VERSION,
    .description = "PXE proxy DHCP: boot instructions for BIOS, UEFI, iPXE and HTTP-boot clients",
    PB_PARAMS(pd_params),
    .legacy_files = pd_legacy_files,
    .wants = pd_wants,
    .create = pd_create,
    .start = pd_start,
    .reload_prepare = pd_reload_prepare,
    .reload_commit = pd_reload_commit,
    .reload_abort = pd_reload_abort,
    .status = pd_status,
    .stop = pd_stop,
    .destroy = pd_destroy,
};

PB_PLUGIN_DEFINE(proxydhcp, pd_plugin)
