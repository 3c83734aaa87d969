/* test-policy-rules.c - the policy plugin's rules file reader and matcher: every match kind,
 * AND/OR/NOT, ordering, groups, the default rule, identity normalisation and placeholder
 * handling, file:line errors; and a replay of the fuzz corpus. */
#include "policy-rules.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const guint8 *data, gsize size);

static PolicyRules *load(const char *name)
{
    g_autofree char *path = g_build_filename(g_getenv("top_srcdir") ? g_getenv("top_srcdir") : ".",
                                             "tests", "data", "policy", name, NULL);
    g_autofree char *text = NULL;
    gsize len;
    g_autoptr(GError) error = NULL;
    g_assert_true(g_file_get_contents(path, &text, &len, &error));
    PolicyRules *r = policy_rules_parse(text, len, name, &error);
    g_assert_no_error(error);
    g_assert_nonnull(r);
    return r;
}

static PolicyRules *parse(const char *yaml, GError **error)
{
    return policy_rules_parse(yaml, strlen(yaml), "t.yaml", error);
}

static const char *match_name(const PolicyRules *r, const PolicyDevice *d)
{
    const PolicyRule *fast = policy_rules_match(r, d, NULL);
    g_autoptr(GString) why = g_string_new(NULL);
    const PolicyRule *slow = policy_rules_match(r, d, why);
    /* The index is a shortcut to the same answer as walking every rule. */
    g_assert_true(fast == slow);
    return fast->name;
}

typedef struct {
    PolicyDevice d;
} Dev;

static void dev_init(PolicyDevice *d, const char *mac)
{
    policy_device_init(d);
    if (mac != NULL)
        g_assert_true(policy_mac_normalize(mac, d->mac));
}

static void test_identifiers(void)
{
    char out[40];
    g_assert_true(policy_mac_normalize("52-54-00-AB-cd-0E", out));
    g_assert_cmpstr(out, ==, "52:54:00:ab:cd:0e");
    g_assert_true(policy_mac_normalize("525400abcd0e", out));
    g_assert_cmpstr(out, ==, "52:54:00:ab:cd:0e");
    g_assert_true(policy_mac_normalize("0:1:2:a:b:c", out));
    g_assert_cmpstr(out, ==, "00:01:02:0a:0b:0c");
    g_assert_false(policy_mac_normalize("52:54:00:ab:cd", out));
    g_assert_false(policy_mac_normalize("52:54:00:ab:cd:0e:ff", out));
    g_assert_false(policy_mac_normalize("zz:54:00:ab:cd:0e", out));

    g_assert_true(policy_uuid_normalize("{4C4C4544-0042-3510-8052-B4C04F4E4E31}", out));
    g_assert_cmpstr(out, ==, "4c4c4544-0042-3510-8052-b4c04f4e4e31");
    g_assert_false(policy_uuid_normalize("00000000-0000-0000-0000-000000000000", out));
    g_assert_false(policy_uuid_normalize("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", out));
    g_assert_false(policy_uuid_normalize("4c4c4544", out));

    /* Option 97 bytes: the first three fields are little-endian (SMBIOS 2.6+). */
    const guint8 raw[16] = {0x44, 0x45, 0x4c, 0x4c, 0x42, 0x00, 0x10, 0x35,
                            0x80, 0x52, 0xb4, 0xc0, 0x4f, 0x4e, 0x4e, 0x31};
    policy_uuid_format(raw, out);
    g_assert_cmpstr(out, ==, "4c4c4544-0042-3510-8052-b4c04f4e4e31");
    const guint8 zero[16] = {0};
    policy_uuid_format(zero, out);
    g_assert_cmpstr(out, ==, "");

    g_assert_true(policy_serial_is_placeholder("To be filled by O.E.M."));
    g_assert_true(policy_serial_is_placeholder("  Default string "));
    g_assert_true(policy_serial_is_placeholder("00000000"));
    g_assert_true(policy_serial_is_placeholder("FFFFFFFF"));
    g_assert_true(policy_serial_is_placeholder(""));
    g_assert_false(policy_serial_is_placeholder("CZC1234XYZ"));
    g_assert_false(policy_serial_is_placeholder("0000000A"));

    PolicyIp ip, net;
    guint prefix;
    g_assert_true(policy_cidr_parse("10.20.0.0/16", &net, &prefix));
    g_assert_cmpuint(prefix, ==, 16);
    g_assert_true(policy_ip_parse("10.20.255.1", &ip));
    g_assert_true(policy_ip_in(&ip, &net, prefix));
    g_assert_true(policy_ip_parse("10.21.0.1", &ip));
    g_assert_false(policy_ip_in(&ip, &net, prefix));
    g_assert_true(policy_ip_parse("::ffff:10.20.3.4", &ip));
    g_assert_true(policy_ip_in(&ip, &net, prefix));
    g_assert_true(policy_cidr_parse("2001:db8:1::/48", &net, &prefix));
    g_assert_true(policy_ip_parse("2001:db8:1:ffff::5", &ip));
    g_assert_true(policy_ip_in(&ip, &net, prefix));
    g_assert_true(policy_ip_parse("2001:db8:2::5", &ip));
    g_assert_false(policy_ip_in(&ip, &net, prefix));
    g_assert_true(policy_cidr_parse("10.0.0.0/9", &net, &prefix));
    g_assert_true(policy_ip_parse("10.127.0.1", &ip));
    g_assert_true(policy_ip_in(&ip, &net, prefix));
    g_assert_true(policy_ip_parse("10.128.0.1", &ip));
    g_assert_false(policy_ip_in(&ip, &net, prefix));
    g_assert_false(policy_cidr_parse("10.0.0.0/33", &net, &prefix));
    g_assert_false(policy_cidr_parse("10.0.0/8", &net, &prefix));
    g_assert_false(policy_cidr_parse("1:2:3:4:5:6:7:8:9", &net, &prefix));
    g_assert_false(policy_cidr_parse("1::2::3", &net, &prefix));

    g_assert_cmpint(policy_arch_parse("efi-x64"), ==, 7);
    g_assert_cmpint(policy_arch_parse("BIOS"), ==, 0);
    g_assert_cmpint(policy_arch_parse("11"), ==, 11);
    g_assert_cmpint(policy_arch_parse("amiga"), ==, -1);

    char key[128];
    g_assert_true(policy_device_key_parse("52-54-00-00-00-01", key, sizeof(key)));
    g_assert_cmpstr(key, ==, "mac:52:54:00:00:00:01");
    g_assert_true(policy_device_key_parse("serial:CZC1", key, sizeof(key)));
    g_assert_cmpstr(key, ==, "serial:CZC1");
    g_assert_false(policy_device_key_parse("serial:To be filled by O.E.M.", key, sizeof(key)));
    g_assert_false(policy_device_key_parse("not-a-device", key, sizeof(key)));
}

static void test_identity_preference(void)
{
    pb_policy_request req = {.struct_size = sizeof(req)};
    PolicyDevice d;
    char id[128];
    const guint8 mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    memcpy(req.mac, mac, 6);
    req.mac_len = 6;
    policy_device_from_request(&d, &req);
    g_assert_true(policy_device_identity(&d, id, sizeof(id)));
    g_assert_cmpstr(id, ==, "mac:52:54:00:12:34:56");
    policy_device_clear(&d);

    /* A real serial beats the MAC (docks move MACs); a placeholder does not. */
    req.serial = "To be filled by O.E.M.";
    policy_device_from_request(&d, &req);
    g_assert_null(d.serial);
    g_assert_true(policy_device_identity(&d, id, sizeof(id)));
    g_assert_cmpstr(id, ==, "mac:52:54:00:12:34:56");
    policy_device_clear(&d);
    req.serial = "CZC1234";
    policy_device_from_request(&d, &req);
    g_assert_true(policy_device_identity(&d, id, sizeof(id)));
    g_assert_cmpstr(id, ==, "serial:CZC1234");
    policy_device_clear(&d);

    /* The UUID beats both, unless it is all zero or all F. */
    memset(req.uuid, 0xff, 16);
    req.has_uuid = 1;
    policy_device_from_request(&d, &req);
    g_assert_true(policy_device_identity(&d, id, sizeof(id)));
    g_assert_cmpstr(id, ==, "serial:CZC1234");
    policy_device_clear(&d);
    req.uuid[0] = 0x01;
    policy_device_from_request(&d, &req);
    g_assert_true(policy_device_identity(&d, id, sizeof(id)));
    g_assert_cmpstr(id, ==, "uuid:ffffff01-ffff-ffff-ffff-ffffffffffff");
    policy_device_clear(&d);

    /* A caller built against a smaller (future-older) struct is not read past its size. */
    req.struct_size = 8;
    policy_device_from_request(&d, &req);
    g_assert_false(policy_device_identity(&d, id, sizeof(id)));
    policy_device_clear(&d);
}

static void test_match_kinds(void)
{
    g_autoptr(PolicyRules) r = load("lab.yaml");
    PolicyDevice d;

    /* No facts at all: the default. */
    dev_init(&d, NULL);
    g_assert_cmpstr(match_name(r, &d), ==, "default");
    g_assert_cmpint(r->fallback->menu_show, ==, PB_POLICY_MENU_F8);
    g_assert_cmpint(r->fallback->menu_timeout, ==, 2);
    policy_device_clear(&d);

    /* mac equals, any spelling */
    dev_init(&d, "52:54:00:DE:AD:00");
    g_assert_cmpstr(match_name(r, &d), ==, "blocked");
    g_assert_true(policy_rules_match(r, &d, NULL)->ignore);
    policy_device_clear(&d);

    /* group listing MACs; earlier disabled rule with an empty (always) match is skipped */
    dev_init(&d, "52:54:00:00:01:02");
    g_assert_cmpstr(match_name(r, &d), ==, "classroom");
    g_assert_cmpint(policy_rules_match(r, &d, NULL)->menu_show, ==, PB_POLICY_MENU_NEVER);
    policy_device_clear(&d);
    dev_init(&d, "52:54:00:00:01:03");
    g_assert_cmpstr(match_name(r, &d), ==, "default");
    policy_device_clear(&d);

    /* group by serial (case-insensitive) and by UUID; the group rule comes first so it
     * wins over the classroom rule for a device in both */
    dev_init(&d, "52:54:00:00:01:01");
    d.serial = g_strdup("vip-0001");
    g_assert_cmpstr(match_name(r, &d), ==, "vip-capture");
    const PolicyRule *vip = policy_rules_match(r, &d, NULL);
    g_assert_cmpuint(vip->work.work, ==, PB_POLICY_WORK_CAPTURE);
    g_assert_cmpstr(vip->work.arg, ==, "vip-backup");
    g_assert_true(vip->work.once);
    policy_device_clear(&d);
    dev_init(&d, NULL);
    g_assert_true(policy_uuid_normalize("4C4C4544-0042-3510-8052-B4C04F4E4E31", d.uuid));
    g_assert_cmpstr(match_name(r, &d), ==, "vip-capture");
    policy_device_clear(&d);

    /* contains + size comparisons with units: ram >= 8 GB, disk > 100 (GB) */
    dev_init(&d, "00:11:22:33:44:55");
    d.manufacturer = g_strdup("Dell Inc.");
    d.ram_mb = 8192;
    d.disk_gb = 101;
    g_assert_cmpstr(match_name(r, &d), ==, "dell-big");
    g_assert_true(policy_rules_match(r, &d, NULL)->work.force);
    d.ram_mb = 8191;
    g_assert_cmpstr(match_name(r, &d), !=, "dell-big");
    d.ram_mb = 16384;
    d.disk_gb = 100;
    g_assert_cmpstr(match_name(r, &d), !=, "dell-big");
    d.disk_gb = 0; /* unknown sizes match no comparison */
    g_assert_cmpstr(match_name(r, &d), ==, "default");
    policy_device_clear(&d);

    /* starts_with + regex (case-insensitive), two keys in one match = AND */
    dev_init(&d, "00:11:22:33:44:56");
    d.manufacturer = g_strdup("hp inc.");
    d.product = g_strdup("EliteBook 840 G7");
    g_assert_cmpstr(match_name(r, &d), ==, "hp-model");
    g_free(d.product);
    d.product = g_strdup("EliteBook 840 G3");
    g_assert_cmpstr(match_name(r, &d), ==, "default");
    policy_device_clear(&d);

    /* ends_with + NOT arch */
    dev_init(&d, "00:11:22:33:44:57");
    d.manufacturer = g_strdup("LENOVO");
    d.arch = 7;
    g_assert_cmpstr(match_name(r, &d), ==, "lenovo-not-arm");
    d.arch = 11;
    g_assert_cmpstr(match_name(r, &d), ==, "default");
    policy_device_clear(&d);

    /* ip CIDR */
    dev_init(&d, "00:11:22:33:44:58");
    g_assert_true(policy_ip_parse("10.20.1.2", &d.ip));
    const PolicyRule *sub = policy_rules_match(r, &d, NULL);
    g_assert_cmpstr(sub->name, ==, "subnet");
    g_assert_cmpuint(sub->work.work, ==, PB_POLICY_WORK_PROGRAM);
    g_assert_cmpstr(sub->boot_file, ==, "memtest.efi");
    g_assert_true(policy_ip_parse("10.2.1.2", &d.ip));
    g_assert_cmpstr(match_name(r, &d), ==, "default");
    policy_device_clear(&d);

    /* relay (giaddr) CIDR over IPv6, and a named menu */
    dev_init(&d, "00:11:22:33:44:59");
    g_assert_true(policy_ip_parse("2001:db8:1:5::1", &d.relay));
    const PolicyRule *rel = policy_rules_match(r, &d, NULL);
    g_assert_cmpstr(rel->name, ==, "relayed-v6");
    g_assert_cmpstr(rel->menu_name, ==, "lab-menu");
    const PolicyMenu *m = policy_rules_menu(r, "lab-menu");
    g_assert_nonnull(m);
    g_assert_cmpint(m->show, ==, PB_POLICY_MENU_ALWAYS);
    g_assert_cmpuint(m->entries->len, ==, 2);
    policy_device_clear(&d);

    /* ram < 1024 */
    dev_init(&d, "00:11:22:33:44:5a");
    d.ram_mb = 512;
    g_assert_cmpstr(match_name(r, &d), ==, "small-ram");
    g_assert_cmpint(policy_rules_match(r, &d, NULL)->menu_timeout, ==, 3);
    policy_device_clear(&d);

    /* or: asset tag or BIOS version */
    dev_init(&d, "00:11:22:33:44:5b");
    d.asset_tag = g_strdup("asset-42");
    g_assert_cmpstr(match_name(r, &d), ==, "asset-or-bios");
    g_clear_pointer(&d.asset_tag, g_free);
    d.bios_version = g_strdup("1.2.3");
    g_assert_cmpstr(match_name(r, &d), ==, "asset-or-bios");
    g_free(d.bios_version);
    d.bios_version = g_strdup("1.2.30");
    g_assert_cmpstr(match_name(r, &d), ==, "default");
    policy_device_clear(&d);

    /* <> and vendor class prefix; then user class with <= */
    dev_init(&d, "00:11:22:33:44:5c");
    d.vendor_class = g_strdup("PXEClient:Arch:00000:UNDI:002001");
    d.disk_gb = 250;
    g_assert_cmpstr(match_name(r, &d), ==, "disk-ne");
    d.disk_gb = 500;
    g_assert_cmpstr(match_name(r, &d), ==, "default");
    d.user_class = g_strdup("iPXE");
    g_assert_cmpstr(match_name(r, &d), ==, "ipxe");
    g_clear_pointer(&d.vendor_class, g_free);
    g_assert_cmpstr(match_name(r, &d), ==, "ipxe");
    d.disk_gb = 501;
    g_assert_cmpstr(match_name(r, &d), ==, "default");
    policy_device_clear(&d);

    /* boot files by architecture */
    g_assert_cmpstr(g_hash_table_lookup(r->boot_files, GINT_TO_POINTER(7 + 1)), ==, "ipxe.efi");
    g_assert_cmpstr(g_hash_table_lookup(r->boot_files, GINT_TO_POINTER(0 + 1)), ==,
                    "undionly.kpxe");
    g_assert_cmpstr(r->imaging_kernel, ==, "http://192.0.2.1/imaging/vmlinuz");
}

static void test_first_match_wins(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(PolicyRules) r = parse("rules:\n"
                                     "  - name: by-oui\n"
                                     "    match: {mac: {starts_with: 52-54-00}}\n"
                                     "    work: restore a\n"
                                     "  - name: exact\n"
                                     "    match: {mac: 52:54:00:00:00:01}\n"
                                     "    work: restore b\n"
                                     "  - name: exact-other\n"
                                     "    match: {mac: 00:00:00:00:00:01}\n"
                                     "    work: restore c\n",
                                     &error);
    g_assert_no_error(error);
    PolicyDevice d;
    /* The scanned prefix rule comes first in the file, so it beats the indexed one. */
    dev_init(&d, "52:54:00:00:00:01");
    g_assert_cmpstr(match_name(r, &d), ==, "by-oui");
    policy_device_clear(&d);
    dev_init(&d, "00:00:00:00:00:01");
    g_assert_cmpstr(match_name(r, &d), ==, "exact-other");
    policy_device_clear(&d);

    /* Reversed: the indexed exact rule first wins for its device only. */
    g_autoptr(PolicyRules) r2 = parse("rules:\n"
                                      "  - name: exact\n"
                                      "    match: {mac: 52:54:00:00:00:01}\n"
                                      "  - name: by-oui\n"
                                      "    match: {mac: {starts_with: '52:54:00'}}\n",
                                      &error);
    g_assert_no_error(error);
    dev_init(&d, "52:54:00:00:00:01");
    g_assert_cmpstr(match_name(r2, &d), ==, "exact");
    policy_device_clear(&d);
    dev_init(&d, "52:54:00:00:00:02");
    g_assert_cmpstr(match_name(r2, &d), ==, "by-oui");
    policy_device_clear(&d);

    /* The index holds exact rules; the rest are scanned. */
    g_assert_cmpuint(g_hash_table_size(r2->index), ==, 1);
    g_assert_cmpuint(r2->scan->len, ==, 1);
}

static void test_explain(void)
{
    g_autoptr(PolicyRules) r = load("lab.yaml");
    PolicyDevice d;
    dev_init(&d, "52:54:00:00:01:01");
    g_autoptr(GString) why = g_string_new(NULL);
    const PolicyRule *hit = policy_rules_match(r, &d, why);
    g_assert_cmpstr(hit->name, ==, "classroom");
    g_assert_nonnull(strstr(why->str, "blocked (line 30): does not match"));
    g_assert_nonnull(strstr(why->str, "disabled-catch-all (line 33): disabled"));
    g_assert_nonnull(strstr(why->str, "classroom (line 41): matches"));
    policy_device_clear(&d);
}

static void test_work_parse(void)
{
    PolicyWork w;
    g_autoptr(GError) error = NULL;
    g_assert_true(policy_work_parse("restore win11 once force", &w, &error));
    g_assert_cmpuint(w.work, ==, PB_POLICY_WORK_RESTORE);
    g_assert_cmpstr(w.arg, ==, "win11");
    g_assert_true(w.once && w.force);
    g_autofree char *s = policy_work_to_string(&w);
    g_assert_cmpstr(s, ==, "restore win11 once force");
    policy_work_clear(&w);
    g_assert_true(policy_work_parse("  local  ", &w, &error));
    g_assert_cmpuint(w.work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_null(w.arg);
    g_assert_false(policy_work_parse("restore", &w, &error));
    g_assert_nonnull(strstr(error->message, "needs a name"));
    g_clear_error(&error);
    g_assert_false(policy_work_parse("restore a b", &w, &error));
    g_clear_error(&error);
    g_assert_false(policy_work_parse("reformat c:", &w, &error));
    g_clear_error(&error);
    g_assert_false(policy_work_parse("", &w, &error));
    g_clear_error(&error);

    /* Multicast work: the legacy wordings, and how the server starts the session. */
    static const char *const same[] = {"multicast room", "session room", "join session room",
                                       "JOIN Session room"};
    for (gsize i = 0; i < G_N_ELEMENTS(same); i++) {
        g_assert_true(policy_work_parse(same[i], &w, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(w.work, ==, PB_POLICY_WORK_MULTICAST);
        g_assert_cmpstr(w.arg, ==, "room");
        g_assert_null(w.image);
        g_autofree char *t = policy_work_to_string(&w);
        g_assert_cmpstr(t, ==, "multicast room");
        policy_work_clear(&w);
    }
    g_assert_true(
        policy_work_parse("join session room image=golden clients=3 t=10 once", &w, &error));
    g_assert_cmpstr(w.image, ==, "golden");
    g_assert_cmpuint(w.clients, ==, 3);
    g_assert_cmpint(w.t_min, ==, 10);
    g_assert_true(w.once);
    g_autofree char *t = policy_work_to_string(&w);
    g_assert_cmpstr(t, ==, "multicast room image=golden clients=3 t=10 once");
    policy_work_clear(&w);
    /* What is stored parses back to itself (assignments are kept as text). */
    g_assert_true(policy_work_parse(t, &w, &error));
    g_autofree char *t2 = policy_work_to_string(&w);
    g_assert_cmpstr(t2, ==, t);
    policy_work_clear(&w);
    g_assert_true(policy_work_parse("multicast room image=golden", &w, &error));
    g_assert_cmpuint(w.clients, ==, 0);
    g_assert_cmpint(w.t_min, ==, -1);
    policy_work_clear(&w);
    static const char *const bad[] = {
        "multicast room clients=3", /* counts without the image they start */
        "multicast room image=golden t=99999",
        "multicast room image=golden clients=-1",
        "multicast room image=.hidden",
        "multicast .room",
        "multicast room image=a/b",
        "restore golden clients=3",
        "join room",
        "session",
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_false(policy_work_parse(bad[i], &w, &error));
        g_assert_nonnull(error);
        g_assert_null(w.arg);
        g_assert_null(w.image);
        g_clear_error(&error);
    }
}

static void expect_error(const char *yaml, const char *where, const char *what)
{
    g_autoptr(GError) error = NULL;
    PolicyRules *r = parse(yaml, &error);
    g_assert_null(r);
    g_assert_nonnull(error);
    if (!g_str_has_prefix(error->message, where) || strstr(error->message, what) == NULL)
        g_error("expected \"%s...%s\", got \"%s\"", where, what, error->message);
}

static void test_errors(void)
{
    expect_error("rules:\n  - match: {mac: 52:54:00}\n", "t.yaml:2:", "not a MAC");
    expect_error("rules:\n  - match: {colour: red}\n", "t.yaml:2:", "unknown condition");
    expect_error("rules:\n  - match: {ram: {'>=': lots}}\n", "t.yaml:2:", "not a size");
    expect_error("rules:\n  - match: {ram: {contains: 4}}\n", "t.yaml:2:", "compared");
    expect_error("rules:\n  - match: {ip: 10.0.0.0/40}\n", "t.yaml:2:", "address");
    expect_error("rules:\n  - match: {model: {regex: '(a'}}\n", "t.yaml:2:", "regular expression");
    expect_error("rules:\n  - match: {group: nope}\n", "t.yaml:2:", "not defined");
    expect_error("rules:\n  - match: {arch: amiga}\n", "t.yaml:2:", "architecture");
    expect_error("rules:\n  - match: {mac: 52:54:00:00:00:01}\n    work: reimage\n",
                 "t.yaml:3:", "unknown work");
    expect_error("rules:\n  - match: {mac: 52:54:00:00:00:01}\n    wrk: local\n",
                 "t.yaml:3:", "unknown rule key");
    expect_error("rules:\n  - work: local\n", "t.yaml:2:", "no match");
    expect_error("rules:\n  - {name: a, match: {}}\n  - {name: a, match: {}}\n",
                 "t.yaml:3:", "already used");
    expect_error("rules:\n  - match: {}\n    once: yes\n", "t.yaml:2:", "need work");
    expect_error("rules:\n  - match: {}\n    menu: sometimes\n", "t.yaml:3:", "menu");
    expect_error("rulez: []\n", "t.yaml:1:", "unknown section");
    expect_error("version: 2\n", "t.yaml:1:", "not supported");
    expect_error("rules: [\n", "t.yaml:2:", "");
    expect_error("- a\n", "t.yaml:1:", "must be a mapping");
    expect_error("rules:\n  - match: {uuid: 00000000-0000-0000-0000-000000000000}\n",
                 "t.yaml:2:", "placeholder");
    expect_error("groups:\n  a: {group: b}\n  b: {mac: 52:54:00:00:00:01}\n",
                 "t.yaml:2:", "not defined");
    /* YAML aliases that expand exponentially are refused, not evaluated. */
    GString *bomb = g_string_new("groups:\n  g0: &a0 {mac: [1:2:3:4:5:6, 1:2:3:4:5:7]}\n");
    for (int i = 1; i < 24; i++)
        g_string_append_printf(bomb, "  g%d: &a%d {any: [*a%d, *a%d, *a%d, *a%d]}\n", i, i, i - 1,
                               i - 1, i - 1, i - 1);
    expect_error(bomb->str, "t.yaml:", "too many conditions");
    g_string_free(bomb, TRUE);

    /* An empty file is valid: everyone gets the default. */
    g_autoptr(GError) error = NULL;
    g_autoptr(PolicyRules) r = parse("", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(r->rules->len, ==, 0);
}

static void test_many_rules_indexed(void)
{
    /* 1000 per-machine rules plus one subnet rule at the end: all but one are indexed. */
    GString *y = g_string_new("rules:\n");
    for (int i = 0; i < 1000; i++)
        g_string_append_printf(y,
                               "  - name: m%d\n    match: {mac: 02:00:00:00:%02x:%02x}\n"
                               "    work: restore img%d\n",
                               i, i >> 8, i & 0xff, i);
    g_string_append(y, "  - name: net\n    match: {ip: 10.0.0.0/8}\n");
    g_autoptr(GError) error = NULL;
    g_autoptr(PolicyRules) r = policy_rules_parse(y->str, y->len, "big.yaml", &error);
    g_string_free(y, TRUE);
    g_assert_no_error(error);
    g_assert_cmpuint(g_hash_table_size(r->index), ==, 1000);
    g_assert_cmpuint(r->scan->len, ==, 1);
    PolicyDevice d;
    dev_init(&d, "02:00:00:00:03:e7");
    g_assert_cmpstr(match_name(r, &d), ==, "m999");
    policy_device_clear(&d);
    dev_init(&d, "02:00:00:00:04:00");
    g_assert_true(policy_ip_parse("10.9.9.9", &d.ip));
    g_assert_cmpstr(match_name(r, &d), ==, "net");
    policy_device_clear(&d);
}

static void test_fuzz_corpus(void)
{
    const char *top = g_getenv("top_srcdir") ? g_getenv("top_srcdir") : ".";
    g_autofree char *dir = g_build_filename(top, "tests", "fuzz", "corpus-policy-rules", NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_assert_nonnull(d);
    const char *name;
    guint n = 0;
    while ((name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *data = NULL;
        gsize len;
        g_assert_true(g_file_get_contents(path, &data, &len, NULL));
        LLVMFuzzerTestOneInput((const guint8 *)data, len);
        n++;
    }
    g_assert_cmpuint(n, >, 3);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/policy/rules/identifiers", test_identifiers);
    g_test_add_func("/policy/rules/identity-preference", test_identity_preference);
    g_test_add_func("/policy/rules/match-kinds", test_match_kinds);
    g_test_add_func("/policy/rules/first-match-wins", test_first_match_wins);
    g_test_add_func("/policy/rules/explain", test_explain);
    g_test_add_func("/policy/rules/work-parse", test_work_parse);
    g_test_add_func("/policy/rules/errors", test_errors);
    g_test_add_func("/policy/rules/many-rules-indexed", test_many_rules_indexed);
    g_test_add_func("/policy/fuzz/rules-corpus-replay", test_fuzz_corpus);
    return g_test_run();
}
