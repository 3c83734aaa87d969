/* test-policy-script.c - what iPXE and pxelinux are told to boot: the imaging environment
 * (preboot-bootenv(8)) fetched over HTTP from the listener the script came from, with the
 * server, the work and the booting interface on its command line; "Imaging maintenance" in
 * the F8 menu; the local disk when there is no work; nothing a client made up (a Host
 * header) in a script; and the names the /preboot/ route serves. */
#include "policy-engine.h"
#include "policy-script.h"
#include "policy-static.h"

#include <glib/gstdio.h>
#include <string.h>
#ifdef G_OS_UNIX
#include <unistd.h> /* symlink(): the Windows build has no such case */
#endif

static const char rules_yaml[] = "imaging:\n"
                                 "  kernel: preboot/vmlinuz\n"
                                 "  initrd: preboot/initrd.img\n"
                                 "  args: quiet\n"
                                 "rules:\n"
                                 "  - name: lab\n"
                                 "    match: {mac: {starts_with: '52:54:00'}}\n"
                                 "    work: local\n";

typedef struct {
    PolicyRules *rules;
    PolicyEngine e;
} Fixture;

static void fx_setup(Fixture *f, const char *yaml)
{
    g_autoptr(GError) error = NULL;
    f->rules = yaml ? policy_rules_parse(yaml, strlen(yaml), "t.yaml", &error)
                    : policy_rules_new_default();
    g_assert_no_error(error);
    memset(&f->e, 0, sizeof(f->e));
    f->e.rules = f->rules;
}

static void fx_teardown(Fixture *f)
{
    policy_rules_free(f->rules);
}

static pb_policy_decision decision(guint32 work, const char *arg, guint32 menu)
{
    pb_policy_decision d = {.struct_size = sizeof(d), .action = PB_POLICY_BOOT};
    d.work = work;
    g_strlcpy(d.work_arg, arg, sizeof(d.work_arg));
    d.menu = menu;
    d.menu_timeout_s = 3;
    g_strlcpy(d.rule, "assignment", sizeof(d.rule));
    g_strlcpy(d.device_id, "mac:52:54:00:e2:e1:0a", sizeof(d.device_id));
    return d;
}

/* Capture work: kernel and initrd from the HTTP listener the script was fetched from. */
static void test_ipxe_capture(void)
{
    Fixture f;
    fx_setup(&f, rules_yaml);
    pb_policy_decision d = decision(PB_POLICY_WORK_CAPTURE, "golden", PB_POLICY_MENU_NEVER);
    g_autofree char *s = policy_ipxe_script(&f.e, &d, "http://10.0.0.1:8080");
    g_assert_true(g_str_has_prefix(s, "#!ipxe\n"));
    g_assert_nonnull(strstr(s, "\nkernel http://10.0.0.1:8080/preboot/vmlinuz initrd=initrd.img "
                               "quiet preboot.work=capture preboot.arg=golden "
                               "preboot.device=mac:52:54:00:e2:e1:0a preboot.server=10.0.0.1:8080 "
                               "BOOTIF=01-${netX/mac:hexhyp} || goto failed\n"));
    g_assert_nonnull(strstr(s, "\ninitrd http://10.0.0.1:8080/preboot/initrd.img || goto failed\n"
                               "boot || goto failed\n"));
    /* No menu asked for: no maintenance entry either. */
    g_assert_null(strstr(s, "maintenance"));
    g_assert_nonnull(
        strstr(s, ":failed\necho preboot: that failed; booting the local disk\nexit 0"));
    fx_teardown(&f);
}

/* Absolute URLs in the rules stay as they are; the server still goes on the command line. */
static void test_ipxe_absolute(void)
{
    Fixture f;
    fx_setup(&f, "imaging:\n  kernel: http://192.0.2.9/k\n  initrd: http://192.0.2.9/i.img?v=2\n");
    pb_policy_decision d = decision(PB_POLICY_WORK_RESTORE, "lab", PB_POLICY_MENU_NEVER);
    g_autofree char *s = policy_ipxe_script(&f.e, &d, "http://10.0.0.1:8080");
    g_assert_nonnull(strstr(s, "\nkernel http://192.0.2.9/k initrd=i.img preboot.work=restore "
                               "preboot.arg=lab "));
    g_assert_nonnull(strstr(s, " preboot.server=10.0.0.1:8080 "));
    g_assert_nonnull(strstr(s, "\ninitrd http://192.0.2.9/i.img?v=2 || goto failed\n"));
    fx_teardown(&f);
}

/* A Host header is the client's: one that is not a plain host[:port] names no server, and
 * nothing of it reaches the script. */
static void test_ipxe_bad_host(void)
{
    Fixture f;
    fx_setup(&f, rules_yaml);
    pb_policy_decision d = decision(PB_POLICY_WORK_CAPTURE, "golden", PB_POLICY_MENU_NEVER);
    g_autofree char *s = policy_ipxe_script(&f.e, &d, "http://evil.example/x ${root}\nshell");
    g_assert_null(strstr(s, "evil"));
    g_assert_null(strstr(s, "preboot.server="));
    g_assert_null(strstr(s, "\nshell"));
    g_assert_nonnull(strstr(s, "\nkernel preboot/vmlinuz "));
    g_autofree char *e = policy_ipxe_script(&f.e, &d, "http://");
    g_assert_null(strstr(e, "preboot.server="));
    fx_teardown(&f);
}

/* F8: the menu offers the maintenance prompt; the default (no key) is the work: here the
 * local disk, which leaves iPXE to the firmware's next boot device. */
static void test_ipxe_f8_maintenance(void)
{
    Fixture f;
    fx_setup(&f, rules_yaml);
    pb_policy_decision d = decision(PB_POLICY_WORK_LOCAL, "", PB_POLICY_MENU_F8);
    g_autofree char *s = policy_ipxe_script(&f.e, &d, "http://10.0.0.1:8080");
    g_assert_nonnull(strstr(s, "prompt --key 0x147e --timeout 3000 Press F8"));
    g_assert_nonnull(strstr(s, "\nitem maintenance Imaging maintenance\n"));
    const char *m = strstr(s, "\n:maintenance\n");
    g_assert_nonnull(m);
    g_assert_nonnull(strstr(m,
                            "kernel http://10.0.0.1:8080/preboot/vmlinuz initrd=initrd.img quiet "
                            "preboot.work=maintenance preboot.arg= "));
    const char *w = strstr(s, "\n:work\n");
    g_assert_nonnull(w);
    g_assert_true(g_str_has_prefix(w, "\n:work\necho preboot: booting the local disk\nexit 0\n"));
    g_assert_true(m < w);
    fx_teardown(&f);
}

/* Without an imaging environment there is no maintenance entry and imaging work says why. */
static void test_ipxe_no_imaging(void)
{
    Fixture f;
    fx_setup(&f, "rules: []\n");
    pb_policy_decision d = decision(PB_POLICY_WORK_LOCAL, "", PB_POLICY_MENU_ALWAYS);
    g_autofree char *s = policy_ipxe_script(&f.e, &d, "http://10.0.0.1:8080");
    g_assert_null(strstr(s, "maintenance"));
    d = decision(PB_POLICY_WORK_RESTORE, "x", PB_POLICY_MENU_NEVER);
    g_autofree char *r = policy_ipxe_script(&f.e, &d, "http://10.0.0.1:8080");
    g_assert_nonnull(strstr(r, "needs the imaging environment"));
    g_assert_null(strstr(r, "\nkernel "));
    fx_teardown(&f);
}

/* No rules file: the built-in rules boot preboot-bootenv's output, so building it is the only
 * step; with no work the device still boots its disk. */
static void test_builtin_rules(void)
{
    Fixture f;
    fx_setup(&f, NULL);
    g_assert_cmpstr(f.rules->imaging_kernel, ==, "preboot/vmlinuz");
    g_assert_cmpstr(f.rules->imaging_initrd, ==, "preboot/initrd.img");
    pb_policy_decision d = decision(PB_POLICY_WORK_RESTORE, "golden", PB_POLICY_MENU_NEVER);
    g_autofree char *s = policy_ipxe_script(&f.e, &d, "http://10.0.0.1:8080");
    g_assert_nonnull(strstr(s, "\nkernel http://10.0.0.1:8080/preboot/vmlinuz initrd=initrd.img "
                               "preboot.work=restore preboot.arg=golden "));
    d = decision(PB_POLICY_WORK_LOCAL, "", PB_POLICY_MENU_NEVER);
    g_autofree char *l = policy_ipxe_script(&f.e, &d, "http://10.0.0.1:8080");
    g_assert_nonnull(strstr(l, ":work\necho preboot: booting the local disk\nexit 0\n"));
    g_assert_null(strstr(l, "kernel"));
    fx_teardown(&f);
}

/* pxelinux: the environment over TFTP, the server and the booting interface passed on. */
static void test_pxelinux(void)
{
    Fixture f;
    fx_setup(&f, rules_yaml);
    pb_policy_decision d = decision(PB_POLICY_WORK_RESTORE, "golden", PB_POLICY_MENU_F8);
    g_autofree char *s = policy_pxelinux_cfg_server(&f.e, &d, "10.0.0.1:8080");
    g_assert_nonnull(strstr(s, "LABEL work\n  MENU LABEL restore golden\n  KERNEL preboot/vmlinuz\n"
                               "  APPEND initrd=preboot/initrd.img quiet preboot.work=restore "
                               "preboot.arg=golden preboot.device=mac:52:54:00:e2:e1:0a "
                               "preboot.server=10.0.0.1:8080\n  IPAPPEND 3\n"));
    g_assert_nonnull(strstr(s, "LABEL e0\n  MENU LABEL Boot the local disk\n  LOCALBOOT 0\n"));
    g_assert_nonnull(strstr(s, "LABEL maintenance\n  MENU LABEL Imaging maintenance\n"
                               "  KERNEL preboot/vmlinuz\n  APPEND initrd=preboot/initrd.img quiet "
                               "preboot.work=maintenance preboot.arg= "));
    /* Host unknown: the port only; the environment takes the host from IPAPPEND's ip=. */
    g_autofree char *p = policy_pxelinux_cfg_server(&f.e, &d, ":8080");
    g_assert_nonnull(strstr(p, " preboot.port=8080\n  IPAPPEND 3\n"));
    g_assert_null(strstr(p, "preboot.server="));
    g_autofree char *n = policy_pxelinux_cfg(&f.e, &d);
    g_assert_null(strstr(n, "preboot.server="));
    g_assert_null(strstr(n, "preboot.port="));
    /* No menu: no maintenance label; local work boots the disk. */
    d = decision(PB_POLICY_WORK_LOCAL, "", PB_POLICY_MENU_NEVER);
    g_autofree char *l = policy_pxelinux_cfg_server(&f.e, &d, "10.0.0.1:8080");
    g_assert_null(strstr(l, "maintenance"));
    g_assert_nonnull(strstr(l, "DEFAULT work\nPROMPT 0\nTIMEOUT 1\nLABEL work\n  MENU LABEL Boot "
                               "the local disk\n  LOCALBOOT 0\n"));
    fx_teardown(&f);
}

static void test_server_valid(void)
{
    g_assert_true(policy_server_valid("10.0.0.1:8080"));
    g_assert_true(policy_server_valid("imgsrv.example.org"));
    g_assert_true(policy_server_valid("[2001:db8::1]:8080"));
    g_assert_false(policy_server_valid(NULL));
    g_assert_false(policy_server_valid(""));
    g_assert_false(policy_server_valid("a b"));
    g_assert_false(policy_server_valid("a/b"));
    g_assert_false(policy_server_valid("${x}"));
    g_assert_false(policy_server_valid("a\nb"));
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    g_assert_false(policy_server_valid(big));
}

static void test_static_names(void)
{
    g_assert_true(policy_static_name_valid("vmlinuz"));
    g_assert_true(policy_static_name_valid("initrd.img"));
    g_assert_true(policy_static_name_valid("bootenv-6.1_x.img"));
    g_assert_false(policy_static_name_valid(NULL));
    g_assert_false(policy_static_name_valid(""));
    g_assert_false(policy_static_name_valid("."));
    g_assert_false(policy_static_name_valid(".."));
    g_assert_false(policy_static_name_valid(".initrd.img.tmp"));
    g_assert_false(policy_static_name_valid("../etc/passwd"));
    g_assert_false(policy_static_name_valid("a/b"));
    g_assert_false(policy_static_name_valid("a\\b"));
    g_assert_false(policy_static_name_valid("a b"));
    g_assert_false(policy_static_name_valid("a%2fb"));
    char name[200];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    g_assert_false(policy_static_name_valid(name));
    name[128] = '\0';
    g_assert_true(policy_static_name_valid(name));
    name[128] = 'a';
    name[129] = '\0';
    g_assert_false(policy_static_name_valid(name));
}

/* ---- /preboot/ through a stand-in for the http service ---------------------------------- */

typedef struct {
    unsigned status;
    GString *body;
    gboolean ranged;
    char *allow;
} FakeAnswer;

static bool fake_add_header(void *ctx, pb_http_response *resp, const char *name, const char *value)
{
    FakeAnswer *a = ctx;
    (void)resp;
    if (strcmp(name, "Allow") == 0) {
        g_free(a->allow);
        a->allow = g_strdup(value);
    }
    return true;
}

static bool fake_respond(void *ctx, pb_http_response *resp, unsigned status, const char *type,
                         const void *body, size_t len)
{
    FakeAnswer *a = ctx;
    (void)resp;
    (void)type;
    a->status = status;
    g_string_append_len(a->body, body, (gssize)len);
    return true;
}

/* Reads the file the way the listener would: in pieces, then frees the handle. */
static void drain(FakeAnswer *a, uint64_t size, pb_http_read_fn read_fn, pb_http_free_fn free_fn,
                  void *handle)
{
    char buf[7];
    uint64_t off = 0;
    int64_t n;
    while ((n = read_fn(handle, off, buf, sizeof(buf))) > 0) {
        g_string_append_len(a->body, buf, (gssize)n);
        off += (uint64_t)n;
    }
    g_assert_cmpint(n, ==, 0);
    g_assert_cmpuint(off, ==, size);
    /* A range: the second half again, from an offset. */
    if (size > 4) {
        n = read_fn(handle, size / 2, buf, 3);
        g_assert_cmpint(n, ==, 3);
        g_assert_cmpmem(buf, 3, a->body->str + size / 2, 3);
    }
    free_fn(handle);
}

static bool fake_stream(void *ctx, pb_http_response *resp, unsigned status, const char *type,
                        int64_t size, pb_http_read_fn read_fn, pb_http_free_fn free_fn,
                        void *handle)
{
    FakeAnswer *a = ctx;
    (void)resp;
    (void)type;
    a->status = status;
    drain(a, (uint64_t)size, read_fn, free_fn, handle);
    return true;
}

static bool fake_range(void *ctx, const pb_http_request *req, pb_http_response *resp,
                       const char *type, uint64_t size, pb_http_read_fn read_fn,
                       pb_http_free_fn free_fn, void *handle)
{
    FakeAnswer *a = ctx;
    (void)req;
    (void)resp;
    (void)type;
    a->status = 200;
    a->ranged = TRUE;
    drain(a, size, read_fn, free_fn, handle);
    return true;
}

static FakeAnswer serve(const char *dir, const char *method, const char *path, gboolean v3)
{
    FakeAnswer a = {.body = g_string_new(NULL)};
    pb_http_service http = {.struct_size = sizeof(http), .ctx = &a};
    http.add_header = fake_add_header;
    http.respond = fake_respond;
    http.respond_stream = fake_stream;
    if (v3)
        http.respond_range = fake_range;
    else /* an older listener: its struct ends before the version 3 callbacks */
        http.struct_size = G_STRUCT_OFFSET(pb_http_service, route_add_ex);
    pb_http_request req = {.struct_size = sizeof(req), .method = method, .path = path};
    g_assert_true(policy_static_serve(&http, dir, &req, NULL));
    return a;
}

static void answer_clear(FakeAnswer *a)
{
    g_string_free(a->body, TRUE);
    g_free(a->allow);
}

static void test_static_serve(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *top = g_dir_make_tmp("policy-static-XXXXXX", &error);
    g_assert_no_error(error);
    g_autofree char *dir = g_build_filename(top, "preboot", NULL);
    g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
    g_autofree char *kernel = g_build_filename(dir, "vmlinuz", NULL);
    g_autofree char *secret = g_build_filename(top, "secret", NULL);
    g_autofree char *link = g_build_filename(dir, "link", NULL);
    g_autofree char *sub = g_build_filename(dir, "sub", NULL);
    g_autofree char *tmp = g_build_filename(dir, ".initrd.img.tmp", NULL);
    const char text[] = "a kernel, of sorts: 0123456789abcdefghij";
    g_assert_true(g_file_set_contents(kernel, text, -1, NULL));
    g_assert_true(g_file_set_contents(secret, "secret", -1, NULL));
    g_assert_true(g_file_set_contents(tmp, "half", -1, NULL));
#ifdef G_OS_UNIX
    g_assert_cmpint(symlink(secret, link), ==, 0);
#endif
    g_assert_cmpint(g_mkdir(sub, 0755), ==, 0);

    for (int v3 = 0; v3 <= 1; v3++) {
        FakeAnswer a = serve(dir, "GET", "/preboot/vmlinuz", v3);
        g_assert_cmpuint(a.status, ==, 200);
        g_assert_cmpstr(a.body->str, ==, text);
        g_assert_cmpint(a.ranged, ==, v3);
        answer_clear(&a);
    }
    const char *refused[] = {"/preboot/link",  "/preboot/sub",     "/preboot/../secret",
                             "/preboot/",      "/preboot/missing", "/preboot/.initrd.img.tmp",
                             "/preboot/sub/x", "/other/vmlinuz"};
    for (gsize i = 0; i < G_N_ELEMENTS(refused); i++) {
        FakeAnswer a = serve(dir, "GET", refused[i], TRUE);
        g_assert_cmpuint(a.status, ==, 404);
        g_assert_null(strstr(a.body->str, "secret"));
        answer_clear(&a);
    }
    /* Not configured: nothing is served. */
    FakeAnswer none = serve("", "GET", "/preboot/vmlinuz", TRUE);
    g_assert_cmpuint(none.status, ==, 404);
    answer_clear(&none);
    FakeAnswer post = serve(dir, "POST", "/preboot/vmlinuz", TRUE);
    g_assert_cmpuint(post.status, ==, 405);
    g_assert_cmpstr(post.allow, ==, "GET, HEAD");
    answer_clear(&post);
    FakeAnswer head = serve(dir, "HEAD", "/preboot/vmlinuz", TRUE);
    g_assert_cmpuint(head.status, ==, 200);
    answer_clear(&head);

    g_unlink(link);
    g_unlink(kernel);
    g_unlink(tmp);
    g_rmdir(sub);
    g_rmdir(dir);
    g_unlink(secret);
    g_rmdir(top);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/policy-script/ipxe-capture", test_ipxe_capture);
    g_test_add_func("/policy-script/ipxe-absolute", test_ipxe_absolute);
    g_test_add_func("/policy-script/ipxe-bad-host", test_ipxe_bad_host);
    g_test_add_func("/policy-script/ipxe-f8-maintenance", test_ipxe_f8_maintenance);
    g_test_add_func("/policy-script/ipxe-no-imaging", test_ipxe_no_imaging);
    g_test_add_func("/policy-script/builtin-rules", test_builtin_rules);
    g_test_add_func("/policy-script/pxelinux", test_pxelinux);
    g_test_add_func("/policy-script/server-valid", test_server_valid);
    g_test_add_func("/policy-script/static-names", test_static_names);
    g_test_add_func("/policy-script/static-serve", test_static_serve);
    return g_test_run();
}
