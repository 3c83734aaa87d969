/* test-policy-plugin.c - the policy and http modules (and tftp, for pxelinux.cfg files)
 * loaded by the real host, in process: the preboot.policy service, the UDP protocol end to
 * end with bad and truncated datagrams and retransmissions, /boot.ipxe over HTTP, the
 * prebootctl commands, a reload with a broken rules file keeping the old rules, and the
 * http service's routing. */
#include "build-config.h"

#include "host.h"
#include "testutil.h"

#include "policy-proto.h"
#include <preboot/http.h>
#include <preboot/policy.h>

#include <arpa/inet.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    char *dir;
    char *rules;
    char *tftp_root;
    PbHost *host;
    guint16 udp_port, http_port, tftp_port;
} Fixture;

static const char rules_v1[] = "boot_files:\n"
                               "  efi-x64: ipxe.efi\n"
                               "rules:\n"
                               "  - name: blocked\n"
                               "    match: {mac: 52:54:00:00:00:66}\n"
                               "    ignore: yes\n"
                               "  - name: lab\n"
                               "    match: {mac: {starts_with: '52:54:00:00:01'}}\n"
                               "    work: program lab.efi\n"
                               "    menu: never\n"
                               "default:\n"
                               "  menu: f8\n"
                               "  menu_timeout: 3\n";

static guint16 free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    socklen_t l = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static char *build_dir(const char *plugin)
{
    const char *b = g_getenv("top_builddir");
    return g_build_filename(b ? b : ".", "plugins", plugin, NULL);
}

static PbConfig *config(Fixture *f, const char *rules_file)
{
    return pbt_yaml("plugins:\n"
                    "  - module: http\n"
                    "    listen: 127.0.0.1\n"
                    "    port: %u\n"
                    "  - module: policy\n"
                    "    local_interface: 127.0.0.1\n"
                    "    port: %u\n"
                    "    rules_file: %s\n"
                    "    log_level: 4\n"
                    "  - module: tftp\n"
                    "    interface: 127.0.0.1\n"
                    "    port: %u\n"
                    "    directory: %s\n",
                    f->http_port, f->udp_port, rules_file, f->tftp_port, f->tftp_root);
}

static void fx_setup(Fixture *f, gconstpointer data)
{
    f->dir = pbt_tmpdir();
    f->rules = g_build_filename(f->dir, "rules.yaml", NULL);
    f->tftp_root = g_build_filename(f->dir, "tftp", NULL);
    g_assert_cmpint(g_mkdir(f->tftp_root, 0755), ==, 0);
    g_assert_true(g_file_set_contents(f->rules, rules_v1, -1, NULL));
    PbGlobalConfig g;
    g_autofree char *pdir = build_dir("policy");
    pbt_global(&g, f->dir, pdir);
    /* plugin_path: the test modules, policy, then http and tftp */
    guint n = g_strv_length(g.plugin_path);
    g.plugin_path = g_renew(char *, g.plugin_path, n + 3);
    g.plugin_path[n] = build_dir("http");
    g.plugin_path[n + 1] = build_dir("tftp");
    g.plugin_path[n + 2] = NULL;
    f->host = pb_host_new(&g);
    pb_global_config_clear(&g);
    f->udp_port = pbt_free_udp_port();
    f->tftp_port = pbt_free_udp_port();
    f->http_port = free_tcp_port();
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    g_assert_true(pb_host_apply(f->host, config(f, f->rules), report, &error));
    g_assert_no_error(error);
    for (const char *const *i = (const char *const[]){"http", "policy", "tftp", NULL}; *i; i++)
        if (pb_instance_get_state(pb_host_find(f->host, *i)) != PB_INSTANCE_RUNNING)
            g_error("%s did not start: %s\n%s", *i,
                    pb_instance_get_error(pb_host_find(f->host, *i)), report->str);
    pbt_spin(20);
}

static void fx_teardown(Fixture *f, gconstpointer data)
{
    pb_host_free(f->host);
    pbt_rmtree(f->dir);
    g_free(f->dir);
    g_free(f->rules);
    g_free(f->tftp_root);
}

static const pb_policy_service *policy_service(Fixture *f)
{
    pb_instance *inst = pb_host_find(f->host, "policy");
    guint32 v = 0;
    const pb_policy_service *s =
        pb_host_services()->service_lookup(inst, PB_POLICY_SERVICE, PB_POLICY_SERVICE_VERSION, &v);
    g_assert_nonnull(s);
    g_assert_cmpuint(v, ==, PB_POLICY_SERVICE_VERSION);
    return s;
}

static pb_policy_decision svc_decide(Fixture *f, const char *mac, guint16 arch, gboolean commit)
{
    const pb_policy_service *s = policy_service(f);
    pb_policy_request req = {.struct_size = sizeof(req)};
    unsigned int b[6];
    g_assert_cmpint(sscanf(mac, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]), ==,
                    6);
    for (int i = 0; i < 6; i++)
        req.mac[i] = (guint8)b[i];
    req.mac_len = 6;
    req.has_arch = 1;
    req.arch = arch;
    req.client_ip = "127.0.0.1";
    /* TRUE: as iPXE's script fetch does (consume); proxydhcp's COMMIT is tested apart. */
    req.flags = commit ? PB_POLICY_REQ_CONSUME : 0;
    pb_policy_decision d = {.struct_size = sizeof(d)};
    g_assert_true(s->decide(s->ctx, &req, &d));
    return d;
}

static char *command(Fixture *f, gboolean expect_ok, const char *line)
{
    g_auto(GStrv) argv = g_strsplit(line, " ", -1);
    GString *out = g_string_new(NULL);
    gboolean ok =
        pb_host_command(f->host, (int)g_strv_length(argv), (const char *const *)argv, out);
    if (ok != expect_ok)
        g_error("policy command '%s' gave %d: %s", line, ok, out->str);
    return g_string_free(out, FALSE);
}

static void test_service(Fixture *f, gconstpointer data)
{
    pb_policy_decision d = svc_decide(f, "52:54:00:00:01:05", 7, FALSE);
    g_assert_cmpuint(d.action, ==, PB_POLICY_BOOT);
    g_assert_cmpuint(d.work, ==, PB_POLICY_WORK_PROGRAM);
    g_assert_cmpstr(d.work_arg, ==, "lab.efi");
    g_assert_cmpstr(d.boot_file, ==, "ipxe.efi");
    g_assert_cmpuint(d.menu, ==, PB_POLICY_MENU_NEVER);
    d = svc_decide(f, "52:54:00:00:00:66", 7, TRUE);
    g_assert_cmpuint(d.action, ==, PB_POLICY_IGNORE);
    d = svc_decide(f, "52:54:00:00:02:01", 0, TRUE);
    g_assert_cmpuint(d.work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_cmpuint(d.menu, ==, PB_POLICY_MENU_F8);
    g_assert_cmpuint(d.menu_timeout_s, ==, 3);
    g_assert_cmpstr(d.boot_file, ==, "");

    /* A caller built against a smaller decision struct gets only what it has room for. */
    struct {
        pb_policy_decision d;
        char guard[8];
    } small;
    memset(&small, 0x5a, sizeof(small));
    small.d.struct_size = G_STRUCT_OFFSET(pb_policy_decision, boot_file);
    const pb_policy_service *s = policy_service(f);
    pb_policy_request req = {.struct_size = sizeof(req), .mac_len = 6};
    g_assert_true(s->decide(s->ctx, &req, &small.d));
    g_assert_cmpuint(small.d.action, ==, PB_POLICY_BOOT);
    g_assert_cmpint(small.d.boot_file[0], ==, 0x5a);

    /* Work the device cannot do is refused up front, with the reason: these rules have no
     * imaging environment, so a restore would fail and be gone at the next boot. */
    g_autofree char *no = command(f, FALSE, "policy assign 52-54-00-00-02-01 restore win10 once");
    g_assert_nonnull(strstr(no, "not assigned: restore needs the imaging environment"));
    g_assert_nonnull(strstr(no, "has no imaging: kernel"));
    g_autofree char *shown = command(f, TRUE, "policy show");
    g_assert_null(strstr(shown, "win10"));
    /* one-shot assignment through prebootctl, consumed by the first committed answer */
    g_autofree char *out =
        command(f, TRUE, "policy assign 52-54-00-00-02-01 program http://192.0.2.1/w.efi once");
    g_assert_nonnull(
        strstr(out, "assigned program http://192.0.2.1/w.efi once to mac:52:54:00:00:02:01"));
    d = svc_decide(f, "52:54:00:00:02:01", 0, FALSE);
    g_assert_cmpuint(d.work, ==, PB_POLICY_WORK_PROGRAM);
    d = svc_decide(f, "52:54:00:00:02:01", 0, TRUE);
    g_assert_cmpuint(d.work, ==, PB_POLICY_WORK_PROGRAM);
    g_assert_true(d.flags & PB_POLICY_F_ASSIGNED);
    d = svc_decide(f, "52:54:00:00:02:01", 0, TRUE);
    g_assert_cmpuint(d.work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_cmpint(pb_host_counter_value(f->host, "policy", "commits"), ==, 4);

    /* imaging's report: just imaged */
    pb_policy_request rq = {
        .struct_size = sizeof(rq), .mac_len = 6, .mac = {0x52, 0x54, 0, 0, 2, 1}};
    g_assert_true(s->report(s->ctx, &rq, PB_POLICY_EVENT_RESTORED, "win11"));
    pb_policy_menu_entry me = {.struct_size = sizeof(me)};
    g_assert_true(s->menu_entry(s->ctx, "", 0, &me));
    g_assert_cmpuint(me.work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_false(s->menu_entry(s->ctx, "", 1, &me));
    g_assert_false(s->menu_entry(s->ctx, "nope", 0, &me));
}

static void test_commands(Fixture *f, gconstpointer data)
{
    svc_decide(f, "52:54:00:00:01:07", 7, TRUE);
    g_autofree char *show = command(f, TRUE, "policy show");
    g_assert_nonnull(strstr(show, "2 rules (2 enabled"));
    g_assert_nonnull(strstr(show, "blocked"));
    g_autofree char *test = command(f, TRUE, "policy test 52:54:00:00:01:07 arch=efi-x64");
    g_assert_nonnull(strstr(test, "blocked (line 4): does not match"));
    g_assert_nonnull(strstr(test, "lab (line 7): matches"));
    g_assert_nonnull(strstr(test, "answer: program lab.efi"));
    /* a date, as policy devices prints it, not a raw epoch */
    const char *since = strstr(test, "known since ");
    g_assert_nonnull(since);
    g_assert_true(g_regex_match_simple("^known since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d,",
                                       since, G_REGEX_MULTILINE, 0));
    g_autofree char *devs = command(f, TRUE, "policy devices");
    g_assert_nonnull(strstr(devs, "mac:52:54:00:00:01:07"));
    g_assert_nonnull(strstr(devs, "1 device(s) known"));
    g_autofree char *bad = command(f, FALSE, "policy test not-a-mac");
    g_assert_nonnull(strstr(bad, "not a MAC"));
    g_autofree char *bad2 = command(f, FALSE, "policy assign 52:54:00:00:01:07 reformat");
    g_assert_nonnull(strstr(bad2, "unknown work"));
    g_autofree char *cl = command(f, TRUE, "policy clear 52:54:00:00:01:07");
    g_assert_nonnull(strstr(cl, "cleared mac:52:54:00:00:01:07"));
    g_autofree char *u = command(f, FALSE, "policy frobnicate");
    g_assert_nonnull(strstr(u, "usage"));
}

/* ---- UDP ---------------------------------------------------------------------------------- */

static GByteArray *udp_exchange(Fixture *f, pb_socket_t s, const guint8 *msg, gsize len,
                                guint timeout_ms)
{
    PbAddr to;
    g_assert_true(pb_addr_parse("127.0.0.1", f->udp_port, &to));
    g_autoptr(GError) error = NULL;
    g_assert_cmpint(pb_udp_send(s, msg, len, &to, NULL, 0, &error), ==, (gssize)len);
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    guint8 buf[2048];
    while (g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        PbAddr from;
        g_clear_error(&error);
        gssize n = pb_udp_recv(s, buf, sizeof(buf), &from, NULL, NULL, &error);
        if (n >= 0) {
            GByteArray *r = g_byte_array_new();
            g_byte_array_append(r, buf, (guint)n);
            return r;
        }
        g_usleep(500);
    }
    return NULL;
}

static GByteArray *request(guint8 type, guint32 id, const char *mac)
{
    PolicyMsg m;
    policy_msg_init(&m);
    m.type = type;
    m.id = id;
    unsigned int b[6];
    sscanf(mac, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]);
    for (int i = 0; i < 6; i++)
        m.mac[i] = (guint8)b[i];
    m.mac_len = 6;
    m.has_arch = TRUE;
    m.arch = 7;
    GByteArray *out = g_byte_array_new();
    policy_msg_build(&m, out);
    policy_msg_clear(&m);
    return out;
}

static void test_udp(Fixture *f, gconstpointer data)
{
    PbAddr any;
    g_assert_true(pb_addr_parse("127.0.0.1", 0, &any));
    g_autoptr(GError) error = NULL;
    pb_socket_t s = pb_udp_open(&any, 0, &error);
    g_assert_no_error(error);

    g_free(command(f, TRUE, "policy assign 52:54:00:00:03:01 program once.efi once"));
    /* proxydhcp's DECIDE_COMMIT records the boot but leaves the work to whoever runs it */
    g_autoptr(GByteArray) qc = request(POLICY_MSG_DECIDE_COMMIT, 0x1111, "52:54:00:00:03:01");
    g_autoptr(GByteArray) rc = udp_exchange(f, s, qc->data, qc->len, 2000);
    g_assert_nonnull(rc);
    PolicyMsg mc;
    g_assert_cmpint(policy_msg_parse(rc->data, rc->len, &mc), ==, POLICY_PARSE_OK);
    g_assert_cmpuint(mc.decision.work, ==, PB_POLICY_WORK_PROGRAM);
    policy_msg_clear(&mc);
    g_autoptr(GByteArray) q = request(POLICY_MSG_DECIDE_CONSUME, 0xabcd, "52:54:00:00:03:01");
    g_autoptr(GByteArray) r1 = udp_exchange(f, s, q->data, q->len, 2000);
    g_assert_nonnull(r1);
    PolicyMsg m;
    g_assert_cmpint(policy_msg_parse(r1->data, r1->len, &m), ==, POLICY_PARSE_OK);
    g_assert_cmpuint(m.type, ==, POLICY_MSG_DECISION);
    g_assert_cmpuint(m.id, ==, 0xabcd);
    g_assert_cmpuint(m.decision.work, ==, PB_POLICY_WORK_PROGRAM);
    g_assert_cmpstr(m.decision.work_arg, ==, "once.efi");
    g_assert_cmpstr(m.decision.boot_file, ==, "ipxe.efi");
    g_assert_cmpstr(m.decision.device_id, ==, "mac:52:54:00:00:03:01");
    policy_msg_clear(&m);
    gint64 commits = pb_host_counter_value(f->host, "policy", "commits");

    /* The reply was "lost": the retransmission (same id) gets the same answer and does not
     * commit again, although the one-shot work is consumed. */
    g_autoptr(GByteArray) r2 = udp_exchange(f, s, q->data, q->len, 2000);
    g_assert_nonnull(r2);
    g_assert_cmpmem(r1->data, r1->len, r2->data, r2->len);
    g_assert_cmpint(pb_host_counter_value(f->host, "policy", "commits"), ==, commits);
    g_assert_cmpint(pb_host_counter_value(f->host, "policy", "udp_retransmits"), ==, 1);
    /* A new id is a new question: the one-shot work is gone. */
    q->data[11] ^= 1;
    g_autoptr(GByteArray) r3 = udp_exchange(f, s, q->data, q->len, 2000);
    g_assert_cmpint(policy_msg_parse(r3->data, r3->len, &m), ==, POLICY_PARSE_OK);
    g_assert_cmpuint(m.decision.work, ==, PB_POLICY_WORK_LOCAL);
    policy_msg_clear(&m);

    /* blocked device */
    g_autoptr(GByteArray) qi = request(POLICY_MSG_DECIDE, 9, "52:54:00:00:00:66");
    g_autoptr(GByteArray) ri = udp_exchange(f, s, qi->data, qi->len, 2000);
    g_assert_cmpint(policy_msg_parse(ri->data, ri->len, &m), ==, POLICY_PARSE_OK);
    g_assert_cmpuint(m.decision.action, ==, PB_POLICY_IGNORE);
    policy_msg_clear(&m);

    /* truncated: an ERROR with the same id */
    q->data[11] = 0x55;
    g_autoptr(GByteArray) rt = udp_exchange(f, s, q->data, q->len - 3, 2000);
    g_assert_nonnull(rt);
    g_assert_cmpint(policy_msg_parse(rt->data, rt->len, &m), ==, POLICY_PARSE_OK);
    g_assert_cmpuint(m.type, ==, POLICY_MSG_ERROR);
    g_assert_cmpuint(m.id, ==, 0xab55);
    g_assert_cmpstr(m.error_text, ==, "truncated option");
    policy_msg_clear(&m);
    /* another version: an ERROR saying so (the library writes version 1 only) */
    PolicyMsg bare;
    policy_msg_init(&bare);
    bare.type = POLICY_MSG_DECIDE;
    bare.id = 7;
    g_autoptr(GByteArray) v2 = g_byte_array_new();
    policy_msg_build(&bare, v2);
    v2->data[4] = POLICY_PROTO_VERSION + 1;
    g_autoptr(GByteArray) rv = udp_exchange(f, s, v2->data, v2->len, 2000);
    g_assert_cmpint(policy_msg_parse(rv->data, rv->len, &m), ==, POLICY_PARSE_OK);
    g_assert_cmpstr(m.error_text, ==, "unsupported protocol version");
    policy_msg_clear(&m);
    /* not ours: no answer at all */
    const guint8 junk[] = "GET / HTTP/1.0\r\n\r\n";
    g_assert_null(udp_exchange(f, s, junk, sizeof(junk) - 1, 200));
    g_assert_null(udp_exchange(f, s, v2->data, 5, 200));
    /* a reply type sent to the server is not answered */
    bare.type = POLICY_MSG_DECISION;
    bare.id = 8;
    g_autoptr(GByteArray) dec = g_byte_array_new();
    policy_msg_build(&bare, dec);
    policy_msg_clear(&bare);
    g_assert_null(udp_exchange(f, s, dec->data, dec->len, 200));
    g_assert_cmpint(pb_host_counter_value(f->host, "policy", "udp_bad"), ==, 5);

    /* REPORT: restored -> just imaged */
    PolicyMsg rep;
    policy_msg_init(&rep);
    rep.type = POLICY_MSG_REPORT;
    rep.id = 77;
    memcpy(rep.mac, (guint8[]){0x52, 0x54, 0, 0, 3, 1}, 6);
    rep.mac_len = 6;
    rep.event = PB_POLICY_EVENT_RESTORED;
    rep.image = g_strdup("img");
    g_autoptr(GByteArray) qr = g_byte_array_new();
    policy_msg_build(&rep, qr);
    policy_msg_clear(&rep);
    g_autoptr(GByteArray) rr = udp_exchange(f, s, qr->data, qr->len, 2000);
    g_assert_cmpint(policy_msg_parse(rr->data, rr->len, &m), ==, POLICY_PARSE_OK);
    g_assert_cmpuint(m.type, ==, POLICY_MSG_REPORT_OK);
    policy_msg_clear(&m);
    g_autofree char *devs = command(f, TRUE, "policy devices");
    g_assert_nonnull(strstr(devs, "image img just-imaged"));
    pb_udp_close(s);
}

/* ---- HTTP --------------------------------------------------------------------------------- */

/* GET over HTTP/1.0 while the main loop turns; returns the status, body in *body. */
/* One HTTP/1.0 request; *head (may be NULL) receives the status line and headers. */
static int http_request(Fixture *f, const char *method, const char *path, char **head, char **body)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(f->http_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    g_assert_true(rc == 0 || errno == EINPROGRESS);
    g_autofree char *req =
        g_strdup_printf("%s %s HTTP/1.0\r\nHost: 127.0.0.1:%u\r\n\r\n", method, path, f->http_port);
    gsize sent = 0;
    GString *in = g_string_new(NULL);
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    gboolean eof = FALSE;
    while (!eof && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        if (sent < strlen(req)) {
            ssize_t n = send(fd, req + sent, strlen(req) - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (gsize)n;
        }
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0)
            g_string_append_len(in, buf, n);
        else if (n == 0)
            eof = TRUE;
        else
            g_usleep(500);
    }
    close(fd);
    g_assert_true(eof);
    int status = 0;
    g_assert_cmpint(sscanf(in->str, "HTTP/1.%*d %d", &status), ==, 1);
    const char *sep = strstr(in->str, "\r\n\r\n");
    *body = g_strdup(sep ? sep + 4 : "");
    if (head != NULL)
        *head = g_strndup(in->str, sep ? (gsize)(sep - in->str) : in->len);
    g_string_free(in, TRUE);
    return status;
}

static int http_get(Fixture *f, const char *path, char **body)
{
    return http_request(f, "GET", path, NULL, body);
}

static guint count_of(const char *hay, const char *needle)
{
    guint n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_boot_ipxe(Fixture *f, gconstpointer data)
{
    char *body = NULL;
    g_assert_cmpint(
        http_get(f, "/boot.ipxe?mac=52:54:00:00:01:09&platform=efi&buildarch=x86_64", &body), ==,
        200);
    g_assert_true(g_str_has_prefix(body, "#!ipxe\n"));
    g_assert_nonnull(strstr(body, "chain --autofree lab.efi"));
    g_assert_null(strstr(body, "prompt")); /* menu: never */
    g_clear_pointer(&body, g_free);

    /* the default: local disk, F8 menu for 3 s */
    g_assert_cmpint(
        http_get(f, "/boot.ipxe?mac=52-54-00-00-04-01&serial=To%20be%20filled%20by%20O.E.M.",
                 &body),
        ==, 200);
    g_assert_nonnull(strstr(body, "prompt --key 0x147e --timeout 3000"));
    g_assert_nonnull(strstr(body, ":work\necho preboot: booting the local disk\nexit 0\n"));
    g_assert_nonnull(strstr(body, "for mac:52:54:00:00:04:01"));
    /* the menu offers local boot once, in one spelling */
    g_assert_cmpuint(count_of(body, "Boot the local disk"), ==, 1);
    g_assert_null(strstr(body, "item work boot the local disk"));
    g_clear_pointer(&body, g_free);

    /* the same device assigned a named program gets it, once */
    g_free(
        command(f, TRUE, "policy assign 52:54:00:00:04:01 program http://192.0.2.1/tool.efi once"));
    g_assert_cmpint(http_get(f, "/boot.ipxe?mac=52:54:00:00:04:01&commit=0", &body), ==, 200);
    g_assert_nonnull(strstr(body, "chain --autofree http://192.0.2.1/tool.efi"));
    g_clear_pointer(&body, g_free);
    g_assert_cmpint(http_get(f, "/boot.ipxe?mac=52:54:00:00:04:01", &body), ==, 200);
    g_assert_nonnull(strstr(body, "chain --autofree http://192.0.2.1/tool.efi"));
    g_clear_pointer(&body, g_free);
    g_assert_cmpint(http_get(f, "/boot.ipxe?mac=52:54:00:00:04:01", &body), ==, 200);
    g_assert_null(strstr(body, "tool.efi"));
    g_clear_pointer(&body, g_free);

    /* ignored devices are refused */
    g_assert_cmpint(http_get(f, "/boot.ipxe?mac=52:54:00:00:00:66", &body), ==, 403);
    g_assert_nonnull(strstr(body, "exit 1"));
    g_clear_pointer(&body, g_free);
    /* the http plugin's own answers */
    g_assert_cmpint(http_get(f, "/nothing-here", &body), ==, 404);
    g_clear_pointer(&body, g_free);
    g_assert_cmpint(pb_host_counter_value(f->host, "policy", "ipxe_scripts"), ==, 6);
    g_assert_cmpint(pb_host_counter_value(f->host, "http", "not_found"), ==, 1);
}

/* A route added by someone else through the service, with headers and a streamed body. */
static bool echo_handler(void *data, const pb_http_request *req, pb_http_response *resp)
{
    const pb_http_service *http = data;
    const char *who = http->query(http->ctx, req, "who");
    g_autofree char *text = g_strdup_printf("%s %s %s", req->method, req->path, who ? who : "-");
    http->add_header(http->ctx, resp, "X-Test", "yes");
    g_assert_false(http->add_header(http->ctx, resp, "Bad:Name", "x"));
    return http->respond(http->ctx, resp, 200, "text/plain", text, strlen(text));
}

static int64_t count_read(void *handle, uint64_t offset, void *buf, size_t len)
{
    const uint64_t total = 100000;
    if (offset >= total)
        return 0;
    size_t n = (size_t)MIN(len, total - offset);
    for (size_t i = 0; i < n; i++)
        ((char *)buf)[i] = (char)('a' + (offset + i) % 26);
    return (int64_t)n;
}

static bool stream_handler(void *data, const pb_http_request *req, pb_http_response *resp)
{
    const pb_http_service *http = data;
    return http->respond_stream(http->ctx, resp, 200, "application/octet-stream", 100000,
                                count_read, NULL, NULL);
}

static bool silent_handler(void *data, const pb_http_request *req, pb_http_response *resp)
{
    return true; /* forgets to answer: 500 */
}

static void test_http_service(Fixture *f, gconstpointer data)
{
    pb_instance *inst = pb_host_find(f->host, "http");
    const pb_http_service *http =
        pb_host_services()->service_lookup(inst, PB_HTTP_SERVICE, PB_HTTP_SERVICE_VERSION, NULL);
    g_assert_nonnull(http);
    g_assert_true(http->route_add(http->ctx, "/t/", echo_handler, (void *)http));
    g_assert_true(http->route_add(http->ctx, "/t/stream", stream_handler, (void *)http));
    g_assert_true(http->route_add(http->ctx, "/t/silent", silent_handler, NULL));
    g_assert_false(http->route_add(http->ctx, "/t/", echo_handler, (void *)http));
    g_assert_false(http->route_add(http->ctx, "no-slash", echo_handler, NULL));
    g_assert_false(http->route_add(http->ctx, "/boot.ipxe", echo_handler, NULL));
    char *body = NULL;
    g_assert_cmpint(http_get(f, "/t/a%20b?who=me%21", &body), ==, 200);
    g_assert_cmpstr(body, ==, "GET /t/a b me!");
    g_clear_pointer(&body, g_free);
    g_assert_cmpint(http_get(f, "/t/stream", &body), ==, 200);
    g_assert_cmpuint(strlen(body), ==, 100000);
    g_assert_cmpint(body[99999], ==, 'a' + 99999 % 26);
    g_clear_pointer(&body, g_free);
    g_assert_cmpint(http_get(f, "/t/silent", &body), ==, 500);
    g_clear_pointer(&body, g_free);
    http->route_remove(http->ctx, "/t/", echo_handler, (void *)http);
    g_assert_cmpint(http_get(f, "/t/x", &body), ==, 404);
    g_clear_pointer(&body, g_free);

    /* Version 2: where the listener is and what it serves (proxydhcp points iPXE at it). */
    g_assert_true(PB_HTTP_HAS(http, routed));
    g_assert_cmpuint(http->listen_port(http->ctx), ==, f->http_port);
    g_assert_cmpstr(http->listen_address(http->ctx), ==, "127.0.0.1");
    g_assert_true(http->routed(http->ctx, "/boot.ipxe"));
    g_assert_true(http->routed(http->ctx, "/t/stream"));
    g_assert_false(http->routed(http->ctx, "/t/x"));
    g_assert_false(http->routed(http->ctx, "/nothing"));
}

/* Only a GET hands one-shot work over: HEAD answers without side effects, other methods
 * get 405 and an Allow header, and the work is still there for the GET. */
static void test_http_methods(Fixture *f, gconstpointer data)
{
    g_free(
        command(f, TRUE, "policy assign 52:54:00:00:05:01 program http://192.0.2.1/once.efi once"));
    const char *url = "/boot.ipxe?mac=52:54:00:00:05:01";
    char *head = NULL, *body = NULL;
    g_assert_cmpint(http_request(f, "HEAD", url, &head, &body), ==, 200);
    g_assert_cmpstr(body, ==, "");
    g_clear_pointer(&head, g_free);
    g_clear_pointer(&body, g_free);
    static const char *const others[] = {"DELETE", "POST", "PUT", "OPTIONS"};
    for (gsize i = 0; i < G_N_ELEMENTS(others); i++) {
        g_assert_cmpint(http_request(f, others[i], url, &head, &body), ==, 405);
        g_assert_true(g_regex_match_simple("^Allow: GET, HEAD\r?$", head,
                                           G_REGEX_MULTILINE | G_REGEX_CASELESS, 0));
        g_clear_pointer(&head, g_free);
        g_clear_pointer(&body, g_free);
    }
    /* refused by the listener from the route's options, before the handler runs */
    g_assert_cmpint(pb_host_counter_value(f->host, "http", "bad_method"), ==, 4);
    g_assert_cmpint(http_get(f, url, &body), ==, 200);
    g_assert_nonnull(strstr(body, "chain --autofree http://192.0.2.1/once.efi"));
    g_clear_pointer(&body, g_free);
    g_assert_cmpint(http_get(f, url, &body), ==, 200);
    g_assert_null(strstr(body, "once.efi"));
    g_clear_pointer(&body, g_free);
}

/* ---- pxelinux.cfg through tftp ------------------------------------------------------------ */

/* A raw TFTP client step: sends pkt to `to`, returns the first answer (its source in from). */
static gssize tftp_step(pb_socket_t s, const PbAddr *to, const void *pkt, gsize len, guint8 *buf,
                        gsize cap, PbAddr *from)
{
    g_autoptr(GError) error = NULL;
    g_assert_cmpint(pb_udp_send(s, pkt, len, to, NULL, 0, &error), ==, (gssize)len);
    gint64 end = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
    while (g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        g_clear_error(&error);
        gssize n = pb_udp_recv(s, buf, cap - 1, from, NULL, NULL, &error);
        if (n >= 0) {
            buf[n] = '\0';
            return n;
        }
        g_usleep(500);
    }
    return -1;
}

/* Fetches a pxelinux.cfg file whole (lock step, 512-byte blocks); NULL on an ERROR. */
static char *pxelinux_fetch(Fixture *f, pb_socket_t s, const char *name)
{
    PbAddr to, from;
    g_assert_true(pb_addr_parse("127.0.0.1", f->tftp_port, &to));
    guint8 req[128], buf[1024];
    req[0] = 0;
    req[1] = 1;
    gsize len = 2 + (gsize)g_snprintf((char *)req + 2, sizeof(req) - 2, "%s", name) + 1;
    memcpy(req + len, "octet", 6);
    len += 6;
    gssize n = tftp_step(s, &to, req, len, buf, sizeof(buf), &from);
    g_assert_cmpint(n, >=, 4);
    if (buf[1] == 5)
        return NULL;
    GString *text = g_string_new(NULL);
    for (;;) {
        g_assert_cmpint(buf[1], ==, 3);
        g_string_append_len(text, (const char *)buf + 4, n - 4);
        guint8 ack[4] = {0, 4, buf[2], buf[3]};
        if (n - 4 < 512) {
            g_autoptr(GError) e = NULL;
            pb_udp_send(s, ack, 4, &from, NULL, 0, &e);
            break;
        }
        n = tftp_step(s, &from, ack, 4, buf, sizeof(buf), &from);
        g_assert_cmpint(n, >=, 4);
    }
    return g_string_free(text, FALSE);
}

/* The tftp hook-up: wait for it (the test fails when it never comes). */
static void wait_pxelinux_served(Fixture *f)
{
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    for (;;) {
        g_autoptr(GString) st = g_string_new(NULL);
        pb_host_status(f->host, st);
        if (strstr(st->str, "pxelinux_cfg: served") || strstr(st->str, "pxelinux_cfg=served"))
            return;
        if (g_get_monotonic_time() > end)
            g_error("the policy plugin never hooked up to tftp:\n%s", st->str);
        pbt_spin(10);
    }
}

/* UEFI asks for the size first (RRQ with tsize, then ERROR 8): that must not use up
 * one-shot work, and the real fetch right after gets it. Used up once a transfer completes. */
static void test_pxelinux_tsize_probe(Fixture *f, gconstpointer data)
{
    wait_pxelinux_served(f);
    g_free(
        command(f, TRUE, "policy assign 52:54:00:00:06:01 program http://192.0.2.1/px.efi once"));
    const char *name = "pxelinux.cfg/01-52-54-00-00-06-01";
    PbAddr any, to, from;
    g_assert_true(pb_addr_parse("127.0.0.1", 0, &any));
    g_assert_true(pb_addr_parse("127.0.0.1", f->tftp_port, &to));
    g_autoptr(GError) error = NULL;
    pb_socket_t s = pb_udp_open(&any, 0, &error);
    g_assert_no_error(error);
    /* the probe */
    guint8 req[128], buf[1024];
    gsize len = 0;
    req[len++] = 0;
    req[len++] = 1;
    memcpy(req + len, name, strlen(name) + 1);
    len += strlen(name) + 1;
    memcpy(req + len,
           "octet\0tsize\0"
           "0",
           14);
    len += 14;
    gssize n = tftp_step(s, &to, req, len, buf, sizeof(buf), &from);
    g_assert_cmpint(n, >, 2);
    g_assert_cmpint(buf[1], ==, 6); /* OACK with the size */
    static const guint8 err8[] = {0, 5, 0, 8, 't', 's', 'i', 'z', 'e', 0};
    g_assert_cmpint(pb_udp_send(s, err8, sizeof(err8), &from, NULL, 0, &error), ==, sizeof(err8));
    /* wait for the tftp server to take the probe's end */
    for (int i = 0; i < 300 && pb_host_counter_value(f->host, "tftp", "tsize_probes") < 1; i++)
        pbt_spin(10);
    g_assert_cmpint(pb_host_counter_value(f->host, "tftp", "tsize_probes"), ==, 1);
    /* the real fetch gets the work */
    g_autofree char *cfg = pxelinux_fetch(f, s, name);
    g_assert_nonnull(cfg);
    g_assert_nonnull(strstr(cfg, "KERNEL http://192.0.2.1/px.efi"));
    for (int i = 0; i < 300 && pb_host_counter_value(f->host, "tftp", "transfers_ok") < 1; i++)
        pbt_spin(10);
    g_assert_cmpint(pb_host_counter_value(f->host, "tftp", "transfers_ok"), ==, 1);
    /* and used it up: the next fetch gets the default (the local disk) */
    g_autofree char *again = pxelinux_fetch(f, s, name);
    g_assert_nonnull(again);
    g_assert_null(strstr(again, "px.efi"));
    g_assert_nonnull(strstr(again, "LOCALBOOT 0"));
    pb_udp_close(s);
}

/* Random MACs from anyone must not grow the device table without bound, nor push out the
 * devices whose records matter (assignments, images). */
static void test_device_bound(Fixture *f, gconstpointer data)
{
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    PbConfig *cfg = pbt_yaml("plugins:\n"
                             "  - module: http\n"
                             "    listen: 127.0.0.1\n"
                             "    port: %u\n"
                             "  - module: policy\n"
                             "    local_interface: 127.0.0.1\n"
                             "    port: %u\n"
                             "    rules_file: %s\n"
                             "    max_devices: 20\n"
                             "  - module: tftp\n"
                             "    interface: 127.0.0.1\n"
                             "    port: %u\n"
                             "    directory: %s\n",
                             f->http_port, f->udp_port, f->rules, f->tftp_port, f->tftp_root);
    g_assert_true(pb_host_reload(f->host, cfg, report, &error));
    g_assert_no_error(error);
    /* two devices that matter: one assigned, one just imaged */
    g_free(command(f, TRUE, "policy assign 52:54:00:00:07:01 program keep.efi"));
    svc_decide(f, "52:54:00:00:07:01", 7, TRUE);
    const pb_policy_service *s = policy_service(f);
    pb_policy_request rq = {
        .struct_size = sizeof(rq), .mac_len = 6, .mac = {0x52, 0x54, 0, 0, 7, 2}};
    g_assert_true(s->report(s->ctx, &rq, PB_POLICY_EVENT_RESTORED, "img"));
    /* then 200 made-up devices, through the service and through HTTP */
    for (guint i = 0; i < 200; i++) {
        char mac[24];
        g_snprintf(mac, sizeof(mac), "02:00:00:00:%02x:%02x", i >> 8, i & 0xff);
        if (i % 10 == 0) {
            g_autofree char *url = g_strdup_printf("/boot.ipxe?mac=%s", mac);
            char *body = NULL;
            g_assert_cmpint(http_get(f, url, &body), ==, 200);
            g_free(body);
        } else {
            svc_decide(f, mac, 7, i % 2 == 0);
        }
    }
    g_autofree char *devs = command(f, TRUE, "policy devices 0");
    g_assert_nonnull(strstr(devs, "\n20 device(s) known"));
    g_assert_nonnull(strstr(devs, "mac:52:54:00:00:07:01"));
    g_assert_nonnull(strstr(devs, "mac:52:54:00:00:07:02"));
    g_assert_nonnull(strstr(devs, "assigned: program keep.efi"));
    g_assert_nonnull(strstr(devs, "image img just-imaged"));
    /* the newest made-up device recorded (198: a commit) is there: the oldest were the ones
     * forgotten */
    g_assert_nonnull(strstr(devs, "mac:02:00:00:00:00:c6"));
    g_assert_null(strstr(devs, "mac:02:00:00:00:00:01 "));
    /* counted in prebootctl stats (refreshed by the flush timer: wait for it) */
    for (int i = 0; i < 300 && pb_host_counter_value(f->host, "policy", "devices_evicted") == 0;
         i++)
        pbt_spin(10);
    gint64 created = pb_host_counter_value(f->host, "policy", "devices_created");
    gint64 evicted = pb_host_counter_value(f->host, "policy", "devices_evicted");
    g_assert_cmpint(created, ==, 2 + 20 + 80); /* the dry runs (odd i) record nothing */
    g_assert_cmpint(created - evicted, ==, 20);
    g_assert_cmpint(pb_host_counter_value(f->host, "policy", "devices_refused"), ==, 0);
    g_autoptr(GString) stats = g_string_new(NULL);
    pb_host_stats(f->host, stats);
    g_assert_nonnull(strstr(stats->str, "devices_evicted"));
    /* the assignment still works */
    g_assert_cmpstr(svc_decide(f, "52:54:00:00:07:01", 7, FALSE).work_arg, ==, "keep.efi");
}

static void test_pxelinux(Fixture *f, gconstpointer data)
{
    PbAddr any, to;
    g_assert_true(pb_addr_parse("127.0.0.1", 0, &any));
    g_assert_true(pb_addr_parse("127.0.0.1", f->tftp_port, &to));
    g_autoptr(GError) error = NULL;
    pb_socket_t s = pb_udp_open(&any, 0, &error);
    /* tftp is configured after policy but started before it (policy wants its service),
     * and policy's watch hooks up from its start(): served from the first request on,
     * with nothing to wait for. */
    g_autoptr(GString) st = g_string_new(NULL);
    pb_host_status(f->host, st);
    g_assert_nonnull(strstr(st->str, "pxelinux_cfg: served"));
    const char rrq[] = "\0\1pxelinux.cfg/01-52-54-00-00-01-0a\0octet";
    g_assert_cmpint(pb_udp_send(s, rrq, sizeof(rrq), &to, NULL, 0, &error), ==, sizeof(rrq));
    guint8 buf[1024];
    gssize n = -1;
    gint64 end = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
    PbAddr from;
    while (n < 0 && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        g_clear_error(&error);
        n = pb_udp_recv(s, buf, sizeof(buf) - 1, &from, NULL, NULL, &error);
        if (n < 0)
            g_usleep(500);
    }
    g_assert_cmpint(n, >, 4);
    buf[n] = '\0';
    if (buf[1] != 3) /* DATA */
        g_error("tftp answered %u: %s", buf[1], (const char *)buf + 4);
    const char *text = (const char *)buf + 4;
    g_assert_nonnull(strstr(text, "DEFAULT work"));
    g_assert_nonnull(strstr(text, "KERNEL lab.efi"));
    g_assert_nonnull(strstr(text, "PROMPT 0"));
    guint8 ack[4] = {0, 4, buf[2], buf[3]};
    pb_udp_send(s, ack, 4, &from, NULL, 0, NULL);
    pbt_spin(20);
    pb_udp_close(s);
    g_assert_cmpint(pb_host_counter_value(f->host, "policy", "pxelinux_files"), ==, 1);
}

/* ---- providers that come and go ---------------------------------------------------------- */

static gboolean reload_with(Fixture *f, PbConfig *cfg)
{
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    gboolean ok = pb_host_reload(f->host, cfg, report, &error);
    g_assert_no_error(error);
    return ok;
}

/* http goes (reload without it) and comes back (a new instance, perhaps at the same
 * address as the old one): policy's watch sees the new generation and routes /boot.ipxe
 * on it before the reload returns. No polling, no sleeping. */
static void test_http_restart(Fixture *f, gconstpointer data)
{
    char *body = NULL;
    g_assert_cmpint(http_get(f, "/boot.ipxe?mac=52:54:00:00:01:09", &body), ==, 200);
    g_clear_pointer(&body, g_free);

    PbConfig *cfg = config(f, f->rules);
    PbInstanceSpec *http = g_ptr_array_steal_index(cfg->instances, 0);
    g_assert_cmpstr(http->module, ==, "http");
    pb_instance_spec_free(http);
    g_assert_true(reload_with(f, cfg));
    g_assert_null(pb_host_find(f->host, "http"));
    g_autoptr(GString) st = g_string_new(NULL);
    pb_host_status(f->host, st);
    g_assert_nonnull(strstr(st->str, "boot_ipxe: no http listener"));

    g_assert_true(reload_with(f, config(f, f->rules)));
    g_assert_cmpint(pb_instance_get_state(pb_host_find(f->host, "http")), ==, PB_INSTANCE_RUNNING);
    g_assert_cmpint(http_get(f, "/boot.ipxe?mac=52:54:00:00:01:09", &body), ==, 200);
    g_assert_true(g_str_has_prefix(body, "#!ipxe\n"));
    g_clear_pointer(&body, g_free);
    g_string_truncate(st, 0);
    pb_host_status(f->host, st);
    g_assert_nonnull(strstr(st->str, "boot_ipxe: served"));
}

/* ---- reload ------------------------------------------------------------------------------- */

static void test_reload(Fixture *f, gconstpointer data)
{
    g_assert_cmpuint(svc_decide(f, "52:54:00:00:01:01", 7, FALSE).work, ==, PB_POLICY_WORK_PROGRAM);
    /* A broken file is refused with file:line, and the old rules stay in force. */
    const char *top = g_getenv("top_srcdir") ? g_getenv("top_srcdir") : ".";
    g_autofree char *broken = g_build_filename(top, "tests", "data", "policy", "broken.yaml", NULL);
    g_autofree char *text = NULL;
    g_assert_true(g_file_get_contents(broken, &text, NULL, NULL));
    g_assert_true(g_file_set_contents(f->rules, text, -1, NULL));
    g_autoptr(GString) report = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    g_assert_false(pb_host_reload(f->host, config(f, f->rules), report, &error));
    g_assert_nonnull(error);
    g_autofree char *where = g_strdup_printf("%s:7:", f->rules);
    if (strstr(error->message, where) == NULL)
        g_error("expected %s in: %s", where, error->message);
    g_assert_cmpuint(svc_decide(f, "52:54:00:00:01:01", 7, FALSE).work, ==, PB_POLICY_WORK_PROGRAM);
    g_autofree char *show = command(f, TRUE, "policy show");
    g_assert_nonnull(strstr(show, "2 rules"));

    /* A good file replaces them without a restart. */
    g_clear_error(&error);
    g_assert_true(g_file_set_contents(
        f->rules, "rules:\n  - match: {mac: 52:54:00:00:01:01}\n    work: capture c1\n", -1, NULL));
    g_assert_true(pb_host_reload(f->host, config(f, f->rules), report, &error));
    g_assert_no_error(error);
    pb_policy_decision d = svc_decide(f, "52:54:00:00:01:01", 7, FALSE);
    g_assert_cmpuint(d.work, ==, PB_POLICY_WORK_CAPTURE);
    g_assert_cmpstr(d.rule, ==, "rule-1");
    /* and the routes survive the reload */
    char *body = NULL;
    g_assert_cmpint(http_get(f, "/boot.ipxe?mac=52:54:00:00:01:01&commit=0", &body), ==, 200);
    g_assert_nonnull(strstr(body, "capture c1"));
    g_free(body);
}

/* Rows of the state database with this MAC, through a connection of its own: what is
 * written, not what the plugin holds in memory. */
static gint64 rows_with_mac(Fixture *f, const char *mac)
{
    g_autofree char *db = g_build_filename(f->dir, "state", "policy", "policy.db", NULL);
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    g_assert_cmpint(
        sqlite3_prepare_v2(h, "SELECT count(*) FROM devices WHERE mac = ?1", -1, &st, NULL), ==,
        SQLITE_OK);
    sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    gint64 n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* proxydhcp's COMMIT: the boot is noted in memory (known at once) and written by the plugin's
 * flush timer a moment later; stopping the instance writes what is left. */
static void test_flush_timer(Fixture *f, gconstpointer data)
{
    const pb_policy_service *s = policy_service(f);
    pb_policy_request req = {.struct_size = sizeof(req), .mac_len = 6, .has_arch = 1, .arch = 7};
    memcpy(req.mac, (const guint8[]){0x52, 0x54, 0x00, 0x00, 0x03, 0x01}, 6);
    req.flags = PB_POLICY_REQ_COMMIT;
    pb_policy_decision d = {.struct_size = sizeof(d)};
    g_assert_true(s->decide(s->ctx, &req, &d));
    g_assert_false(d.flags & PB_POLICY_F_KNOWN);
    /* no event loop turn yet: nothing written, but the next question knows the device */
    g_assert_cmpint(rows_with_mac(f, "52:54:00:00:03:01"), ==, 0);
    g_assert_true(s->decide(s->ctx, &req, &d));
    g_assert_true(d.flags & PB_POLICY_F_KNOWN);
    gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (rows_with_mac(f, "52:54:00:00:03:01") == 0 && g_get_monotonic_time() < until)
        pbt_spin(20);
    g_assert_cmpint(rows_with_mac(f, "52:54:00:00:03:01"), ==, 1);

    /* a boot noted just before the instance stops is written by the stop */
    memcpy(req.mac, (const guint8[]){0x52, 0x54, 0x00, 0x00, 0x03, 0x02}, 6);
    g_assert_true(s->decide(s->ctx, &req, &d));
    pb_host_free(f->host);
    f->host = NULL;
    g_assert_cmpint(rows_with_mac(f, "52:54:00:00:03:02"), ==, 1);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define T(name, fn) g_test_add("/policy/plugin/" name, Fixture, NULL, fx_setup, fn, fx_teardown)
    T("http-methods", test_http_methods);
    T("pxelinux-tsize-probe", test_pxelinux_tsize_probe);
    T("device-bound", test_device_bound);
    T("service", test_service);
    T("commands", test_commands);
    T("udp", test_udp);
    T("boot-ipxe", test_boot_ipxe);
    T("http-service", test_http_service);
    T("pxelinux", test_pxelinux);
    T("http-restart", test_http_restart);
    T("reload-keeps-old-rules", test_reload);
    T("flush-timer", test_flush_timer);
    return g_test_run();
}
