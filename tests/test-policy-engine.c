/* test-policy-engine.c - the policy decision with its durable state: assignments above rules,
 * one-shot work consumed exactly once (also across a restart and a kill -9, with batched
 * bookkeeping pending), just-imaged and last-image behaviour, dry runs, identity across docks,
 * boot counting, and the batched bookkeeping: seen before it is written, written by a flush
 * (on the writer thread too) and on close; and the store's copy of it all in memory: the same
 * as the table after a flush, a reopen, many batches, a rollback and a kill -9. */
#include "policy-engine.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char rules_yaml[] = "rules:\n"
                                 "  - name: capture-once\n"
                                 "    match: {serial: CAP-1}\n"
                                 "    work: capture golden\n"
                                 "    once: yes\n"
                                 "  - name: lab\n"
                                 "    match: {mac: {starts_with: '52:54:00:01'}}\n"
                                 "    work: restore lab-image\n"
                                 "  - name: lab-force\n"
                                 "    match: {mac: {starts_with: '52:54:00:02'}}\n"
                                 "    work: restore lab-image force\n"
                                 "  - name: blocked\n"
                                 "    match: {mac: 52:54:00:ff:ff:ff}\n"
                                 "    ignore: yes\n"
                                 "default:\n"
                                 "  menu: never\n"
                                 "  boot_file: default.0\n"
                                 "imaging:\n"
                                 "  kernel: http://192.0.2.1/vmlinuz\n";

typedef struct {
    char *dir;
    char *db;
    PolicyRules *rules;
    PolicyStore *store;
    PolicyEngine e;
} Fixture;

static void fx_open(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    f->store = policy_store_open(f->db, &error);
    g_assert_no_error(error);
    f->e.rules = f->rules;
    f->e.store = f->store;
}

static void fx_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    f->dir = g_dir_make_tmp("policy-engine-XXXXXX", &error);
    g_assert_no_error(error);
    f->db = g_build_filename(f->dir, "policy.db", NULL);
    f->rules = policy_rules_parse(rules_yaml, strlen(rules_yaml), "t.yaml", &error);
    g_assert_no_error(error);
    fx_open(f);
}

static void fx_teardown(Fixture *f, gconstpointer data)
{
    policy_store_close(f->store);
    policy_rules_free(f->rules);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (gsize i = 0; i < G_N_ELEMENTS(suffix); i++) {
        g_autofree char *p = g_strconcat(f->db, suffix[i], NULL);
        g_unlink(p);
    }
    g_rmdir(f->dir);
    g_free(f->db);
    g_free(f->dir);
}

static void fx_restart(Fixture *f)
{
    policy_store_close(f->store);
    fx_open(f);
}

static void dev_mac(PolicyDevice *d, const char *mac)
{
    policy_device_init(d);
    g_assert_true(policy_mac_normalize(mac, d->mac));
}

static pb_policy_decision decide(Fixture *f, const PolicyDevice *d, gboolean commit)
{
    pb_policy_decision out = {.struct_size = sizeof(out)};
    g_autoptr(GError) error = NULL;
    g_autoptr(GString) why = g_string_new(NULL);
    gboolean ok =
        policy_engine_decide(&f->e, d, commit ? PB_POLICY_REQ_CONSUME : 0, 1000, &out, why, &error);
    g_assert_no_error(error);
    g_assert_true(ok);
    /* The explanation and the fast path agree. */
    pb_policy_decision quiet = {.struct_size = sizeof(quiet)};
    if (!commit) {
        g_assert_true(policy_engine_decide(&f->e, d, 0, 1000, &quiet, NULL, NULL));
        g_assert_cmpuint(quiet.work, ==, out.work);
        g_assert_cmpstr(quiet.rule, ==, out.rule);
    }
    return out;
}

static void assign(Fixture *f, const char *key, const char *work)
{
    PolicyWork w;
    g_autoptr(GError) error = NULL;
    g_assert_true(policy_work_parse(work, &w, &error));
    g_assert_true(policy_store_assign(f->store, key, &w, 900, &error));
    g_assert_no_error(error);
    policy_work_clear(&w);
}

static void test_assignment_once(Fixture *f, gconstpointer data)
{
    PolicyDevice d;
    dev_mac(&d, "52:54:00:00:00:10");
    pb_policy_decision r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_cmpstr(r.rule, ==, "default");
    g_assert_cmpuint(r.menu, ==, PB_POLICY_MENU_NEVER);
    g_assert_cmpstr(r.boot_file, ==, "default.0");

    assign(f, "mac:52:54:00:00:00:10", "program memtest.efi once");
    /* Dry runs (DHCPDISCOVER, prebootctl policy test) do not consume it. */
    for (int i = 0; i < 3; i++) {
        r = decide(f, &d, FALSE);
        g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_PROGRAM);
        g_assert_cmpstr(r.work_arg, ==, "memtest.efi");
        g_assert_true(r.flags & PB_POLICY_F_ASSIGNED);
        g_assert_true(r.flags & PB_POLICY_F_ONCE);
    }
    r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_PROGRAM);
    /* Consumed exactly once, and still consumed after a restart. */
    r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);
    fx_restart(f);
    r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);

    PolicyDeviceRecord rec = {0};
    g_assert_true(policy_store_find(f->store, &d, &rec, NULL));
    g_assert_cmpint(rec.boot_count, ==, 4);
    g_assert_cmpint(rec.first_seen, ==, 1000);
    g_assert_cmpstr(rec.last_rule, ==, "default");
    policy_device_record_clear(&rec);

    /* An assignment that is not once stays, and sits above a rule that ignores. */
    PolicyDevice b;
    dev_mac(&b, "52:54:00:ff:ff:ff");
    g_assert_cmpuint(decide(f, &b, TRUE).action, ==, PB_POLICY_IGNORE);
    assign(f, "mac:52:54:00:ff:ff:ff", "script inventory");
    for (int i = 0; i < 2; i++) {
        r = decide(f, &b, TRUE);
        g_assert_cmpuint(r.action, ==, PB_POLICY_BOOT);
        g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_SCRIPT);
    }
    guint removed = 0;
    g_assert_true(policy_store_clear(f->store, "mac:52:54:00:ff:ff:ff", &removed, NULL));
    g_assert_cmpuint(removed, ==, 1);
    g_assert_cmpuint(decide(f, &b, TRUE).action, ==, PB_POLICY_IGNORE);
    policy_device_clear(&d);
    policy_device_clear(&b);
}

/* proxydhcp commits (records the boot) without consuming: the one-shot work must still be
 * there when iPXE asks for its script. Answers within the boot window count once. */
static void test_commit_vs_consume(Fixture *f, gconstpointer data)
{
    PolicyDevice d;
    dev_mac(&d, "52:54:00:00:00:20");
    assign(f, "mac:52:54:00:00:00:20", "program tool.efi once");
    f->e.boot_window_s = 60;
    pb_policy_decision out = {.struct_size = sizeof(out)};
    g_assert_true(policy_engine_decide(&f->e, &d, PB_POLICY_REQ_COMMIT, 5000, &out, NULL, NULL));
    g_assert_cmpuint(out.work, ==, PB_POLICY_WORK_PROGRAM);
    g_assert_true(policy_engine_decide(&f->e, &d, PB_POLICY_REQ_COMMIT, 5001, &out, NULL, NULL));
    g_assert_cmpuint(out.work, ==, PB_POLICY_WORK_PROGRAM);
    g_assert_true(policy_engine_decide(&f->e, &d, PB_POLICY_REQ_CONSUME, 5002, &out, NULL, NULL));
    g_assert_cmpuint(out.work, ==, PB_POLICY_WORK_PROGRAM);
    g_assert_true(policy_engine_decide(&f->e, &d, PB_POLICY_REQ_CONSUME, 5003, &out, NULL, NULL));
    g_assert_cmpuint(out.work, ==, PB_POLICY_WORK_LOCAL);
    PolicyDeviceRecord rec = {0};
    g_assert_true(policy_store_find(f->store, &d, &rec, NULL));
    g_assert_cmpint(rec.boot_count, ==, 1); /* four answers, one boot */
    g_assert_cmpint(rec.last_seen, ==, 5003);
    policy_device_record_clear(&rec);
    g_assert_true(
        policy_engine_decide(&f->e, &d, PB_POLICY_REQ_COMMIT, 5003 + 60, &out, NULL, NULL));
    g_assert_true(policy_store_find(f->store, &d, &rec, NULL));
    g_assert_cmpint(rec.boot_count, ==, 2); /* a minute later: the next boot */
    policy_device_record_clear(&rec);
    policy_device_clear(&d);
}

static void test_rule_once(Fixture *f, gconstpointer data)
{
    PolicyDevice d;
    dev_mac(&d, "00:11:22:33:44:55");
    d.serial = g_strdup("CAP-1");
    pb_policy_decision r = decide(f, &d, FALSE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_CAPTURE);
    r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_CAPTURE);
    g_assert_cmpstr(r.work_arg, ==, "golden");
    g_assert_cmpstr(r.device_id, ==, "serial:CAP-1");
    fx_restart(f);
    r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_cmpstr(r.rule, ==, "capture-once");
    /* prebootctl policy clear forgets what was done */
    guint removed = 0;
    g_assert_true(policy_store_clear(f->store, "serial:CAP-1", &removed, NULL));
    g_assert_cmpuint(removed, ==, 1);
    g_assert_cmpuint(decide(f, &d, TRUE).work, ==, PB_POLICY_WORK_CAPTURE);
    policy_device_clear(&d);
}

/* Without an imaging environment, imaging work is not used up: it waits for a rules file
 * that can carry it out (prebootctl policy assign refuses it too). */
static void test_undoable_work_kept(Fixture *f, gconstpointer data)
{
    static const char no_imaging[] = "rules:\n"
                                     "  - name: capture-once\n"
                                     "    match: {serial: CAP-1}\n"
                                     "    work: capture golden\n"
                                     "    once: yes\n";
    g_autoptr(GError) error = NULL;
    PolicyRules *bare = policy_rules_parse(no_imaging, strlen(no_imaging), "bare.yaml", &error);
    g_assert_no_error(error);
    f->e.rules = bare;
    PolicyDevice d;
    dev_mac(&d, "00:11:22:33:44:66");
    d.serial = g_strdup("CAP-1");
    PolicyWork w = {0};
    g_assert_true(policy_work_parse("restore win10 once", &w, NULL));
    g_assert_true(policy_store_assign(f->store, "mac:00:11:22:33:44:66", &w, 900, NULL));
    policy_work_clear(&w);
    for (int i = 0; i < 3; i++) { /* consumed three times, still there */
        pb_policy_decision r = decide(f, &d, TRUE);
        g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_RESTORE);
        g_assert_cmpstr(r.work_arg, ==, "win10");
    }
    g_assert_true(policy_store_delete_assignment(f->store, "mac:00:11:22:33:44:66", NULL));
    for (int i = 0; i < 2; i++) /* the rule's one-shot capture is not marked done either */
        g_assert_cmpuint(decide(f, &d, TRUE).work, ==, PB_POLICY_WORK_CAPTURE);
    /* with the imaging environment back, the first consume uses it up */
    f->e.rules = f->rules;
    g_assert_cmpuint(decide(f, &d, TRUE).work, ==, PB_POLICY_WORK_CAPTURE);
    g_assert_cmpuint(decide(f, &d, TRUE).work, ==, PB_POLICY_WORK_LOCAL);
    policy_rules_free(bare);
    policy_device_clear(&d);
}

static pb_policy_decision decide_flags(Fixture *f, const PolicyDevice *d, guint32 flags)
{
    pb_policy_decision out = {.struct_size = sizeof(out)};
    g_autoptr(GError) error = NULL;
    g_assert_true(policy_engine_decide(&f->e, d, flags, 1000, &out, NULL, &error));
    g_assert_no_error(error);
    return out;
}

/* The boot script or pxelinux file hands over a boot program, not imaging work: the imaging
 * environment it starts asks for the same work and must find it. The imaging plugin's
 * report (a CONSUME through the service) uses it up; a program is used up by the script. */
static void test_boot_program_keeps_imaging_work(Fixture *f, gconstpointer data)
{
    PolicyDevice d;
    dev_mac(&d, "52:54:00:0a:00:01");
    PolicyWork w = {0};
    g_assert_true(policy_work_parse("restore lab-image once", &w, NULL));
    g_assert_true(policy_store_assign(f->store, "mac:52:54:00:0a:00:01", &w, 900, NULL));
    policy_work_clear(&w);
    const guint32 script = PB_POLICY_REQ_CONSUME | POLICY_REQ_BOOT_PROGRAM;
    for (int i = 0; i < 2; i++) { /* the script, fetched again after a failed boot */
        pb_policy_decision r = decide_flags(f, &d, script);
        g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_RESTORE);
        g_assert_cmpstr(r.work_arg, ==, "lab-image");
    }
    /* the imaging environment's question (the service, dry run), then its report */
    g_assert_cmpuint(decide_flags(f, &d, 0).work, ==, PB_POLICY_WORK_RESTORE);
    g_assert_cmpuint(decide_flags(f, &d, PB_POLICY_REQ_CONSUME).work, ==, PB_POLICY_WORK_RESTORE);
    g_assert_cmpuint(decide_flags(f, &d, script).work, !=, PB_POLICY_WORK_RESTORE);

    g_assert_true(policy_work_parse("program http://192.0.2.1/once.efi once", &w, NULL));
    g_assert_true(policy_store_assign(f->store, "mac:52:54:00:0a:00:01", &w, 950, NULL));
    policy_work_clear(&w);
    g_assert_cmpuint(decide_flags(f, &d, script).work, ==, PB_POLICY_WORK_PROGRAM);
    g_assert_cmpuint(decide_flags(f, &d, script).work, !=, PB_POLICY_WORK_PROGRAM);
    policy_device_clear(&d);
}

/* A device with no work boots its disk after the restore: that serves the just-imaged mark,
 * so work assigned afterwards is handed out at the next boot, not turned away once. */
static void test_just_imaged_served_by_local_boot(Fixture *f, gconstpointer data)
{
    PolicyDevice d;
    dev_mac(&d, "52:54:00:09:00:01"); /* no rule gives it work: the default boots the disk */
    g_assert_cmpuint(decide(f, &d, TRUE).work, ==, PB_POLICY_WORK_LOCAL);
    g_autoptr(GError) error = NULL;
    g_assert_true(
        policy_engine_report(&f->e, &d, PB_POLICY_EVENT_RESTORED, "lab-image", 1100, &error));
    g_assert_no_error(error);
    pb_policy_decision r = decide(f, &d, FALSE); /* a dry run serves nothing */
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);
    r = decide(f, &d, TRUE); /* the device boots its disk */
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);
    PolicyWork w = {0};
    g_assert_true(policy_work_parse("capture golden once", &w, NULL));
    g_assert_true(policy_store_assign(f->store, "mac:52:54:00:09:00:01", &w, 1200, NULL));
    policy_work_clear(&w);
    r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_CAPTURE);
    g_assert_cmpstr(r.work_arg, ==, "golden");
    g_assert_false(r.flags & PB_POLICY_F_JUST_IMAGED);
    policy_device_clear(&d);
}

static void test_just_imaged(Fixture *f, gconstpointer data)
{
    PolicyDevice d;
    dev_mac(&d, "52:54:00:01:00:01");
    pb_policy_decision r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_RESTORE);
    g_assert_cmpstr(r.work_arg, ==, "lab-image");

    /* imaging reports the restore: the next boot goes to the disk, once */
    g_autoptr(GError) error = NULL;
    g_assert_true(
        policy_engine_report(&f->e, &d, PB_POLICY_EVENT_RESTORED, "other-image", 1100, &error));
    g_assert_no_error(error);
    r = decide(f, &d, FALSE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_true(r.flags & PB_POLICY_F_JUST_IMAGED);
    r = decide(f, &d, TRUE);
    g_assert_true(r.flags & PB_POLICY_F_JUST_IMAGED);
    fx_restart(f);
    /* mark consumed: the rule applies again, and other-image is not lab-image */
    r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_RESTORE);

    /* now lab-image is laid down: the same image is not laid down again... */
    g_assert_true(
        policy_engine_report(&f->e, &d, PB_POLICY_EVENT_RESTORED, "lab-image", 1200, &error));
    r = decide(f, &d, TRUE);
    g_assert_true(r.flags & PB_POLICY_F_JUST_IMAGED);
    r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_true(r.flags & PB_POLICY_F_SAME_IMAGE);
    r = decide(f, &d, TRUE);
    g_assert_true(r.flags & PB_POLICY_F_SAME_IMAGE);

    /* ...unless the assignment says force */
    PolicyDevice g;
    dev_mac(&g, "52:54:00:02:00:01");
    g_assert_true(
        policy_engine_report(&f->e, &g, PB_POLICY_EVENT_RESTORED, "lab-image", 1200, &error));
    r = decide(f, &g, TRUE);
    g_assert_true(r.flags & PB_POLICY_F_JUST_IMAGED);
    r = decide(f, &g, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_RESTORE);
    g_assert_true(r.flags & PB_POLICY_F_FORCE);
    policy_device_clear(&d);
    policy_device_clear(&g);
}

static void test_identity(Fixture *f, gconstpointer data)
{
    /* Two laptops share one USB adapter (same MAC), different SMBIOS UUIDs. */
    PolicyDevice a, b, bare;
    dev_mac(&a, "00:50:b6:00:00:01");
    g_assert_true(policy_uuid_normalize("11111111-2222-3333-4444-555555555555", a.uuid));
    dev_mac(&b, "00:50:b6:00:00:01");
    g_assert_true(policy_uuid_normalize("aaaaaaaa-2222-3333-4444-555555555555", b.uuid));
    assign(f, "uuid:11111111-2222-3333-4444-555555555555", "restore a-image");
    g_assert_cmpuint(decide(f, &a, TRUE).work, ==, PB_POLICY_WORK_RESTORE);
    g_assert_cmpuint(decide(f, &b, TRUE).work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_cmpint(policy_store_count_devices(f->store), ==, 2);

    /* A MAC-only first sighting is upgraded when the UUID shows up. */
    dev_mac(&bare, "00:50:b6:00:00:02");
    decide(f, &bare, TRUE);
    g_assert_true(policy_uuid_normalize("bbbbbbbb-2222-3333-4444-555555555555", bare.uuid));
    decide(f, &bare, TRUE);
    g_assert_cmpint(policy_store_count_devices(f->store), ==, 3);
    PolicyDeviceRecord rec = {0};
    g_assert_true(
        policy_store_find_key(f->store, "uuid:bbbbbbbb-2222-3333-4444-555555555555", &rec, NULL));
    g_assert_cmpint(rec.boot_count, ==, 2);
    g_assert_cmpstr(rec.key, ==, "mac:00:50:b6:00:00:02");
    policy_device_record_clear(&rec);
    policy_device_clear(&a);
    policy_device_clear(&b);
    policy_device_clear(&bare);
}

/* Multicast work that names its image: the session it starts is found again from the
 * assignment or rule that decided, only for that decision; and once the device laid that
 * image down, it boots its disk as after a restore of it. */
static void test_session_spec(Fixture *f, gconstpointer data)
{
    PolicyDevice d, other;
    dev_mac(&d, "52:54:00:00:00:30");
    dev_mac(&other, "52:54:00:00:00:31");
    assign(f, "mac:52:54:00:00:00:30", "join session room image=golden clients=2 once");
    assign(f, "mac:52:54:00:00:00:31", "multicast hand");
    pb_policy_decision r = decide(f, &d, FALSE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_MULTICAST);
    g_assert_cmpstr(r.work_arg, ==, "room");
    PolicyWork w;
    g_assert_true(policy_engine_session_spec(&f->e, &d, &r, &w));
    g_assert_cmpstr(w.arg, ==, "room");
    g_assert_cmpstr(w.image, ==, "golden");
    g_assert_cmpuint(w.clients, ==, 2);
    g_assert_cmpint(w.t_min, ==, -1);
    policy_work_clear(&w);
    /* A session started by hand (no image=): nothing for the server to start. */
    pb_policy_decision o = decide(f, &other, FALSE);
    g_assert_cmpuint(o.work, ==, PB_POLICY_WORK_MULTICAST);
    g_assert_false(policy_engine_session_spec(&f->e, &other, &o, &w));
    g_assert_null(w.arg);
    /* A decision that does not carry that work (another session, local) names none. */
    pb_policy_decision forged = r;
    g_strlcpy(forged.work_arg, "other", sizeof(forged.work_arg));
    g_assert_false(policy_engine_session_spec(&f->e, &d, &forged, &w));
    forged = r;
    forged.work = PB_POLICY_WORK_LOCAL;
    g_assert_false(policy_engine_session_spec(&f->e, &d, &forged, &w));

    /* The session's report: the assignment used up, the image remembered. */
    r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_MULTICAST);
    g_assert_true(policy_engine_report(&f->e, &d, PB_POLICY_EVENT_RESTORED, "golden", 1001, NULL));
    r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_false(policy_engine_session_spec(&f->e, &d, &r, &w));
    /* A standing assignment to a session sending golden: the disk holds golden already. */
    assign(f, "mac:52:54:00:00:00:30", "multicast room image=golden");
    r = decide(f, &d, TRUE); /* the just-imaged boot */
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);
    r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_true(r.flags & PB_POLICY_F_SAME_IMAGE);
    assign(f, "mac:52:54:00:00:00:30", "multicast room image=golden force");
    r = decide(f, &d, FALSE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_MULTICAST);
    policy_device_clear(&d);
    policy_device_clear(&other);
}

static void test_words(void)
{
    PolicyDevice d;
    g_autoptr(GError) error = NULL;
    const char *argv[] = {
        "52-54-00-00-00-01", "arch=efi-x64",           "ip=10.1.2.3",
        "ram=4096",          "manufacturer=Dell Inc.", "serial=To be filled by O.E.M."};
    g_assert_true(policy_device_from_words(&d, G_N_ELEMENTS(argv), argv, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(d.mac, ==, "52:54:00:00:00:01");
    g_assert_cmpint(d.arch, ==, 7);
    g_assert_cmpuint(d.ram_mb, ==, 4096);
    g_assert_cmpstr(d.manufacturer, ==, "Dell Inc.");
    g_assert_null(d.serial);
    policy_device_clear(&d);
    const char *bad[] = {"colour=red"};
    g_assert_false(policy_device_from_words(&d, 1, bad, &error));
    g_assert_nonnull(error);
    policy_device_clear(&d);
}

/* The daemon is killed (-9) right after answering with one-shot work: the work must be
 * gone after it comes back, and the database intact. */
/* Waits (10 s at most) until the child pid says with SIGUSR1 that it is where the test
 * wants it, lets it run linger_us more, then kills it with SIGKILL, as a crash would. */
static void kill_when_signalled(pid_t pid, gulong linger_us)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct timespec ts = {.tv_sec = 10};
    int sig = sigtimedwait(&set, NULL, &ts);
    if (linger_us > 0)
        g_usleep(linger_us);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    g_assert_cmpint(sig, ==, SIGUSR1);
    g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void test_kill9(Fixture *f, gconstpointer data)
{
    assign(f, "mac:52:54:00:00:00:99", "restore once-image once");
    policy_store_close(f->store);
    f->store = NULL;
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        PolicyStore *s = policy_store_open(f->db, NULL);
        if (s == NULL || !policy_store_start_writer(s, 50, NULL)) /* as the plugin does */
            _exit(4);
        PolicyEngine e = {.rules = f->rules, .store = s};
        PolicyDevice d;
        dev_mac(&d, "52:54:00:00:00:99");
        pb_policy_decision r = {.struct_size = sizeof(r)};
        if (!policy_engine_decide(&e, &d, PB_POLICY_REQ_CONSUME, 1000, &r, NULL, NULL) ||
            r.work != PB_POLICY_WORK_RESTORE)
            _exit(3);
        /* keep writing, so the kill lands in the middle of something: the boots are noted in
         * memory and written in batches, as the plugin's timer does, every 10 decisions; the
         * first 51 are written for sure before the parent is told to kill */
        for (int i = 0;; i++) {
            PolicyDevice o;
            char mac[24];
            g_snprintf(mac, sizeof(mac), "02:00:00:00:%02x:%02x", (i >> 8) & 0xff, i & 0xff);
            dev_mac(&o, mac);
            policy_engine_decide(&e, &o, PB_POLICY_REQ_CONSUME, 1000 + i, &r, NULL, NULL);
            policy_device_clear(&o);
            if (i % 10 == 0)
                policy_store_flush(s, FALSE, NULL);
            if (i == 50) {
                policy_store_flush(s, TRUE, NULL);
                kill(getppid(), SIGUSR1);
            }
        }
    }
    /* Wait until the child is well into its writes, then kill it. */
    kill_when_signalled(pid, 0);

    fx_open(f);
    PolicyDevice d;
    dev_mac(&d, "52:54:00:00:00:99");
    pb_policy_decision r = decide(f, &d, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_cmpint(policy_store_count_devices(f->store), >, 50);
    policy_device_clear(&d);
}

/* ---- the batched bookkeeping ---------------------------------------------------------- */

/* A number from the database file through a connection of its own: what is written. */
static gint64 db_scalar(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    g_assert_cmpint(sqlite3_prepare_v2(h, sql, -1, &st, NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    gint64 v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static gint64 written_devices(Fixture *f)
{
    return db_scalar(f->db, "SELECT count(*) FROM devices");
}

static pb_policy_decision commit(Fixture *f, const PolicyDevice *d, gint64 now)
{
    pb_policy_decision out = {.struct_size = sizeof(out)};
    g_autoptr(GError) error = NULL;
    g_assert_true(policy_engine_decide(&f->e, d, PB_POLICY_REQ_COMMIT, now, &out, NULL, &error));
    g_assert_no_error(error);
    return out;
}

/* A boot is noted in memory, not written; every read sees it at once. */
static void test_pending_visible(Fixture *f, gconstpointer data)
{
    f->e.boot_window_s = 60;
    PolicyDevice d;
    dev_mac(&d, "52:54:00:00:00:30");
    pb_policy_decision r = commit(f, &d, 5000);
    g_assert_false(r.flags & PB_POLICY_F_KNOWN);
    g_assert_cmpuint(policy_store_pending(f->store), ==, 1);
    g_assert_cmpint(written_devices(f), ==, 0); /* not written yet */

    /* ...but known to the next decision, a millisecond later */
    r = commit(f, &d, 5000);
    g_assert_true(r.flags & PB_POLICY_F_KNOWN);
    PolicyDeviceRecord rec = {0};
    g_assert_true(policy_store_find(f->store, &d, &rec, NULL));
    g_assert_cmpint(rec.first_seen, ==, 5000);
    g_assert_cmpint(rec.boot_count, ==, 1); /* within the boot window: one boot */
    g_assert_cmpstr(rec.last_rule, ==, "default");
    gint64 id = rec.id;
    g_assert_cmpint(id, >, 0);
    policy_device_record_clear(&rec);

    /* a UUID learnt later finds the same device, before anything is written */
    g_assert_true(policy_uuid_normalize("33333333-2222-3333-4444-555555555555", d.uuid));
    r = commit(f, &d, 5100);
    g_assert_true(r.flags & PB_POLICY_F_KNOWN);
    PolicyDevice by_uuid;
    policy_device_init(&by_uuid);
    g_strlcpy(by_uuid.uuid, d.uuid, sizeof(by_uuid.uuid));
    g_assert_true(policy_store_find(f->store, &by_uuid, &rec, NULL));
    g_assert_cmpint(rec.id, ==, id);
    g_assert_cmpint(rec.boot_count, ==, 2);
    g_assert_cmpint(rec.last_seen, ==, 5100);
    policy_device_record_clear(&rec);
    g_assert_cmpint(written_devices(f), ==, 0);

    /* A dry run notes nothing. */
    PolicyDevice other;
    dev_mac(&other, "52:54:00:00:00:31");
    decide(f, &other, FALSE);
    g_assert_cmpuint(policy_store_pending(f->store), ==, 1);

    /* Written by a flush (here on this thread: no writer thread started), as it reads. */
    g_autoptr(GError) error = NULL;
    g_assert_true(policy_store_flush(f->store, FALSE, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(policy_store_pending(f->store), ==, 0);
    g_assert_cmpint(written_devices(f), ==, 1);
    g_assert_cmpint(db_scalar(f->db, "SELECT boot_count FROM devices WHERE uuid = "
                                     "'33333333-2222-3333-4444-555555555555'"),
                    ==, 2);
    g_assert_cmpint(db_scalar(f->db, "SELECT last_seen FROM devices"), ==, 5100);
    g_assert_true(policy_store_find(f->store, &by_uuid, &rec, NULL));
    g_assert_cmpint(rec.id, ==, id);
    g_assert_cmpint(rec.boot_count, ==, 2);
    policy_device_record_clear(&rec);

    /* A written device seen again: noted over its row, the row updated by the next flush. */
    commit(f, &d, 5200);
    g_assert_cmpuint(policy_store_pending(f->store), ==, 1);
    g_assert_true(policy_store_find(f->store, &d, &rec, NULL));
    g_assert_cmpint(rec.boot_count, ==, 3);
    policy_device_record_clear(&rec);
    g_assert_cmpint(db_scalar(f->db, "SELECT boot_count FROM devices"), ==, 2);
    g_assert_true(policy_store_flush(f->store, TRUE, NULL));
    g_assert_cmpint(db_scalar(f->db, "SELECT boot_count FROM devices"), ==, 3);
    g_assert_cmpint(written_devices(f), ==, 1);
    policy_device_clear(&d);
    policy_device_clear(&by_uuid);
    policy_device_clear(&other);
}

/* The writer thread writes a batch without the caller waiting; boots noted while it writes
 * are kept for the next one. */
static void test_flush_thread(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_assert_true(policy_store_start_writer(f->store, 50, &error));
    g_assert_no_error(error);
    for (int i = 0; i < 300; i++) {
        PolicyDevice d;
        char mac[24];
        g_snprintf(mac, sizeof(mac), "02:00:00:00:%02x:%02x", (i >> 8) & 0xff, i & 0xff);
        dev_mac(&d, mac);
        commit(f, &d, 6000 + i);
        if (i == 150)
            g_assert_true(policy_store_flush(f->store, FALSE, NULL)); /* handed over */
        policy_device_clear(&d);
    }
    g_assert_cmpuint(policy_store_pending(f->store), >=, 149);
    /* the first batch lands by itself (bounded wait: the machine may be loaded) */
    gint64 until = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    while (written_devices(f) < 151 && g_get_monotonic_time() < until)
        g_usleep(10000);
    g_assert_cmpint(written_devices(f), ==, 151);
    g_assert_true(policy_store_flush(f->store, TRUE, NULL));
    g_assert_cmpint(written_devices(f), ==, 300);
    g_assert_cmpuint(policy_store_pending(f->store), ==, 0);
    g_assert_cmpint(db_scalar(f->db, "SELECT sum(boot_count) FROM devices"), ==, 300);
}

/* Closing the store (the plugin's destroy) writes what is pending. */
static void test_flush_on_close(Fixture *f, gconstpointer data)
{
    g_assert_true(policy_store_start_writer(f->store, 1000, NULL));
    for (int i = 0; i < 20; i++) {
        PolicyDevice d;
        char mac[24];
        g_snprintf(mac, sizeof(mac), "02:00:00:00:01:%02x", i);
        dev_mac(&d, mac);
        commit(f, &d, 7000);
        commit(f, &d, 7100); /* boot_window_s is 0: each commit is a boot */
        policy_device_clear(&d);
    }
    g_assert_cmpint(written_devices(f), ==, 0);
    policy_store_close(f->store);
    f->store = NULL;
    g_assert_cmpint(written_devices(f), ==, 20);
    g_assert_cmpint(db_scalar(f->db, "SELECT sum(boot_count) FROM devices"), ==, 40);
    g_assert_cmpint(db_scalar(f->db, "SELECT min(last_seen) FROM devices"), ==, 7100);
    fx_open(f);
}

/* kill -9 while boots are pending and batches are being written: the one-shot work consumed
 * before the kill stays consumed (it was written, with its device, before the answer), and
 * it is consumed exactly once; the batched bookkeeping may lose its last batch, no more. */
static void test_kill9_batched(Fixture *f, gconstpointer data)
{
    policy_store_close(f->store);
    f->store = NULL;
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        PolicyStore *s = policy_store_open(f->db, NULL);
        if (s == NULL || !policy_store_start_writer(s, 50, NULL))
            _exit(4);
        PolicyEngine e = {.rules = f->rules, .store = s, .boot_window_s = 60};
        pb_policy_decision r = {.struct_size = sizeof(r)};
        for (int i = 0;; i++) {
            PolicyDevice o;
            char mac[24];
            g_snprintf(mac, sizeof(mac), "02:00:00:01:%02x:%02x", (i >> 8) & 0xff, i & 0xff);
            dev_mac(&o, mac);
            policy_engine_decide(&e, &o, PB_POLICY_REQ_COMMIT, 2000 + i, &r, NULL, NULL);
            policy_device_clear(&o);
            if (i % 25 == 0 && (i < 90 || i > 100))
                policy_store_flush(s, FALSE, NULL); /* the plugin's timer */
            if (i == 90)
                policy_store_flush(s, TRUE, NULL); /* 0..90 written for sure */
            if (i == 100) {
                if (policy_store_pending(s) < 10) /* 91..100: noted, not written */
                    _exit(6);
                /* the capture-once device, new, with boots pending and a batch in flight */
                PolicyDevice c;
                dev_mac(&c, "00:11:22:33:44:66");
                c.serial = g_strdup("CAP-1");
                policy_engine_decide(&e, &c, PB_POLICY_REQ_COMMIT, 2100, &r, NULL, NULL);
                if (r.work != PB_POLICY_WORK_CAPTURE)
                    _exit(3);
                if (!policy_engine_decide(&e, &c, PB_POLICY_REQ_CONSUME, 2101, &r, NULL, NULL) ||
                    r.work != PB_POLICY_WORK_CAPTURE)
                    _exit(5);
                policy_device_clear(&c);
                kill(getppid(), SIGUSR1); /* answered: from here on it must never run again */
            }
        }
    }
    kill_when_signalled(pid, 20000); /* into the next batches */

    g_assert_cmpint(db_scalar(f->db, "SELECT count(*) FROM pragma_integrity_check "
                                     "WHERE integrity_check != 'ok'"),
                    ==, 0);
    /* marked done exactly once, for the one record of that device */
    g_assert_cmpint(db_scalar(f->db, "SELECT count(*) FROM once_done"), ==, 1);
    g_assert_cmpint(db_scalar(f->db, "SELECT count(*) FROM devices WHERE serial = 'CAP-1'"), ==, 1);
    fx_open(f);
    PolicyDevice c;
    dev_mac(&c, "00:11:22:33:44:66");
    c.serial = g_strdup("CAP-1");
    for (int i = 0; i < 2; i++) {
        pb_policy_decision r = decide(f, &c, TRUE);
        g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);
        g_assert_true(r.flags & PB_POLICY_F_KNOWN);
    }
    policy_device_clear(&c);
    g_assert_cmpint(db_scalar(f->db, "SELECT count(*) FROM once_done"), ==, 1);
    /* what was written before the kill is there: at least 0..90 and the capture device */
    g_assert_cmpint(policy_store_count_devices(f->store), >=, 92);
}

/* ---- the store's copy in memory ----------------------------------------------------------- */

/* Every row of the table, and the same device in memory, field by field; and no device in
 * memory that the table does not have (after a flush: nothing pending). */
static void assert_index_matches_db(PolicyStore *s, const char *db)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    g_assert_cmpint(sqlite3_prepare_v2(h,
                                       "SELECT id, key, mac, uuid, serial, first_seen, last_seen, "
                                       "boot_count, just_imaged, last_image, last_rule, "
                                       "(SELECT count(*) FROM once_done o WHERE o.device = d.id) "
                                       "FROM devices d",
                                       -1, &st, NULL),
                    ==, SQLITE_OK);
    guint rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        rows++;
        PolicyDeviceRecord rec = {0};
        gint64 id = sqlite3_column_int64(st, 0);
        g_assert_true(policy_store_get(s, id, &rec));
#define TXT(i) ((const char *)sqlite3_column_text(st, i))
        g_assert_cmpstr(rec.key, ==, TXT(1));
        g_assert_cmpstr(rec.mac, ==, TXT(2) ? TXT(2) : "");
        g_assert_cmpstr(rec.uuid, ==, TXT(3) ? TXT(3) : "");
        g_assert_cmpstr(rec.serial, ==, TXT(4));
        g_assert_cmpint(rec.first_seen, ==, sqlite3_column_int64(st, 5));
        g_assert_cmpint(rec.last_seen, ==, sqlite3_column_int64(st, 6));
        g_assert_cmpint(rec.boot_count, ==, sqlite3_column_int64(st, 7));
        g_assert_cmpint(rec.just_imaged, ==, sqlite3_column_int(st, 8));
        g_assert_cmpstr(rec.last_image, ==, TXT(9));
        g_assert_cmpstr(rec.last_rule, ==, TXT(10));
#undef TXT
        policy_device_record_clear(&rec);
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    g_assert_cmpuint(policy_store_device_count(s), ==, rows);
}

static void dev_full(PolicyDevice *d, const char *mac, const char *uuid, const char *serial)
{
    dev_mac(d, mac);
    if (uuid != NULL)
        g_assert_true(policy_uuid_normalize(uuid, d->uuid));
    d->serial = g_strdup(serial);
}

static gint64 found_id(Fixture *f, const PolicyDevice *d)
{
    PolicyDeviceRecord rec = {0};
    if (!policy_store_find(f->store, d, &rec, NULL))
        return 0;
    gint64 id = rec.id;
    policy_device_record_clear(&rec);
    return id;
}

/* Who is who: a UUID or serial names a machine before its MAC does, placeholder UUIDs and
 * serials name nothing; the same answers from the copy in memory before anything is written,
 * after a flush, and after a reopen (loaded from the table). */
static void test_index_identity(Fixture *f, gconstpointer data)
{
    PolicyDevice a, b, s1, bare, moved, zero, borrow, other_uuid;
    /* two laptops behind one USB adapter: one MAC, two UUIDs */
    dev_full(&a, "00:50:b6:00:00:10", "11111111-0000-0000-0000-000000000001", NULL);
    dev_full(&b, "00:50:b6:00:00:10", "11111111-0000-0000-0000-000000000002", NULL);
    /* a machine known by its serial (iPXE's ${serial}) */
    dev_full(&s1, "52:54:00:aa:00:01", NULL, "SN-0001");
    dev_mac(&bare, "52:54:00:aa:00:02");
    commit(f, &a, 100);
    commit(f, &b, 101);
    commit(f, &s1, 102);
    commit(f, &bare, 103);
    /* the serial machine with another NIC: still the same machine */
    dev_full(&moved, "52:54:00:aa:00:99", NULL, "SN-0001");
    /* firmware that sends an all-zero UUID and a placeholder serial: both ignored */
    pb_policy_request q = {.struct_size = sizeof(q), .mac_len = 6, .has_uuid = 1};
    memcpy(q.mac, (const guint8[]){0x52, 0x54, 0x00, 0xaa, 0x00, 0x02}, 6);
    q.serial = "To be filled by O.E.M.";
    policy_device_from_request(&zero, &q);
    g_assert_cmpstr(zero.uuid, ==, "");
    g_assert_null(zero.serial);
    /* a MAC-only request may borrow a record that has a UUID; one with another UUID may not */
    dev_mac(&borrow, "00:50:b6:00:00:10");
    dev_full(&other_uuid, "00:50:b6:00:00:10", "11111111-0000-0000-0000-000000000003", NULL);

    for (int round = 0; round < 3; round++) {
        gint64 ida = found_id(f, &a), idb = found_id(f, &b), ids = found_id(f, &s1),
               idbare = found_id(f, &bare);
        g_assert_cmpint(ida, >, 0);
        g_assert_cmpint(idb, >, 0);
        g_assert_cmpint(ida, !=, idb);
        g_assert_cmpint(found_id(f, &moved), ==, ids);
        g_assert_cmpint(found_id(f, &zero), ==, idbare);
        g_assert_cmpint(found_id(f, &borrow), ==, idb); /* the most recently seen of the two */
        g_assert_cmpint(found_id(f, &other_uuid), ==, 0);
        PolicyDeviceRecord rec = {0};
        g_assert_true(policy_store_get(f->store, ids, &rec));
        g_assert_cmpstr(rec.key, ==, "serial:SN-0001");
        g_assert_cmpstr(rec.mac, ==, "52:54:00:aa:00:01");
        policy_device_record_clear(&rec);
        if (round == 0) {
            g_assert_true(policy_store_flush(f->store, TRUE, NULL));
            assert_index_matches_db(f->store, f->db);
        } else if (round == 1) {
            fx_restart(f);
            assert_index_matches_db(f->store, f->db);
        }
    }
    /* the MAC learnt later moves the device in the MAC index: found by either afterwards */
    commit(f, &moved, 200);
    PolicyDevice by_new_mac;
    dev_mac(&by_new_mac, "52:54:00:aa:00:99");
    g_assert_cmpint(found_id(f, &by_new_mac), ==, found_id(f, &s1));
    g_assert_true(policy_store_flush(f->store, TRUE, NULL));
    assert_index_matches_db(f->store, f->db);
    PolicyDevice *all[] = {&a, &b, &s1, &bare, &moved, &zero, &borrow, &other_uuid, &by_new_mac};
    for (gsize i = 0; i < G_N_ELEMENTS(all); i++)
        policy_device_clear(all[i]);
}

/* Many batches on the writer thread, devices seen again and learning identifiers between
 * them, one-shot work and imaging marks written in between: the copy in memory and the table
 * agree at the end, and a reopen loads the same. */
static void test_index_batches(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_assert_true(policy_store_start_writer(f->store, 20, &error));
    f->e.boot_window_s = 0;
    for (int i = 0; i < 5000; i++) {
        int n = i % 2500; /* each device twice */
        PolicyDevice d;
        char mac[24], uuid[40];
        g_snprintf(mac, sizeof(mac), "02:00:00:02:%02x:%02x", (n >> 8) & 0xff, n & 0xff);
        dev_mac(&d, mac);
        if (i >= 2500 && n % 3 == 0) { /* its UUID shows up the second time */
            g_snprintf(uuid, sizeof(uuid), "22222222-0000-0000-0000-%012d", n);
            g_assert_true(policy_uuid_normalize(uuid, d.uuid));
        }
        commit(f, &d, 10000 + i);
        if (i % 700 == 0)
            g_assert_true(policy_store_flush(f->store, FALSE, NULL));
        if (i % 997 == 0) { /* a write that must not wait for the batch: imaging reports */
            g_assert_true(policy_engine_report(&f->e, &d, PB_POLICY_EVENT_RESTORED, "img",
                                               10000 + i, &error));
            g_assert_no_error(error);
        }
        policy_device_clear(&d);
    }
    /* the capture-once device, consumed while batches are in flight */
    PolicyDevice c;
    dev_full(&c, "00:11:22:33:44:77", NULL, "CAP-1");
    g_assert_cmpuint(decide(f, &c, TRUE).work, ==, PB_POLICY_WORK_CAPTURE);
    g_assert_cmpuint(decide(f, &c, TRUE).work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_true(policy_store_flush(f->store, TRUE, NULL));
    g_assert_cmpuint(policy_store_pending(f->store), ==, 0);
    g_assert_cmpint(written_devices(f), ==, 2501);
    g_assert_cmpint(db_scalar(f->db, "SELECT sum(boot_count) FROM devices"), ==,
                    5000 + 2); /* + the capture device, twice */
    g_assert_cmpint(db_scalar(f->db, "SELECT count(*) FROM devices WHERE uuid IS NOT NULL"), ==,
                    834);
    g_assert_cmpint(db_scalar(f->db, "SELECT count(*) FROM devices WHERE just_imaged = 1"), ==, 6);
    g_assert_cmpint(db_scalar(f->db, "SELECT count(*) FROM once_done"), ==, 1);
    assert_index_matches_db(f->store, f->db);
    fx_restart(f);
    assert_index_matches_db(f->store, f->db);
    g_assert_cmpuint(decide(f, &c, TRUE).work, ==, PB_POLICY_WORK_LOCAL);
    policy_device_clear(&c);
}

/* A transaction rolled back leaves memory as it found it: one-shot marks, imaging marks,
 * assignments and the written state of the device's bookkeeping. */
static void test_index_rollback(Fixture *f, gconstpointer data)
{
    assign(f, "mac:52:54:00:00:00:40", "restore x-image once");
    PolicyDevice d;
    dev_mac(&d, "52:54:00:00:00:40");
    commit(f, &d, 100); /* noted, not written */
    g_assert_cmpuint(policy_store_pending(f->store), ==, 1);
    gint64 id = found_id(f, &d);
    g_autoptr(GError) error = NULL;
    g_assert_true(policy_store_begin(f->store, &error));
    g_assert_true(policy_store_mark_once(f->store, id, "r: w", 100, &error));
    g_assert_true(policy_store_set_imaged(f->store, id, "x-image", TRUE, &error));
    g_assert_true(policy_store_delete_assignment(f->store, "mac:52:54:00:00:00:40", &error));
    g_assert_no_error(error);
    gboolean done = FALSE;
    g_assert_true(policy_store_once_done(f->store, id, "r: w", &done, NULL));
    g_assert_true(done);
    g_assert_cmpuint(policy_store_pending(f->store), ==, 0); /* written in the transaction */
    policy_store_rollback(f->store);

    g_assert_true(policy_store_once_done(f->store, id, "r: w", &done, NULL));
    g_assert_false(done);
    PolicyDeviceRecord rec = {0};
    g_assert_true(policy_store_get(f->store, id, &rec));
    g_assert_false(rec.just_imaged);
    g_assert_null(rec.last_image);
    policy_device_record_clear(&rec);
    g_assert_cmpuint(policy_store_assignment_count(f->store), ==, 1);
    g_assert_cmpuint(policy_store_pending(f->store), ==, 1); /* to be written again */
    g_assert_cmpint(written_devices(f), ==, 0);
    /* the decision sees the assignment still there, and consumes it for real */
    g_assert_cmpuint(decide(f, &d, TRUE).work, ==, PB_POLICY_WORK_RESTORE);
    g_assert_cmpuint(policy_store_assignment_count(f->store), ==, 0);
    g_assert_cmpint(db_scalar(f->db, "SELECT count(*) FROM assignments"), ==, 0);
    g_assert_true(policy_store_flush(f->store, TRUE, NULL));
    assert_index_matches_db(f->store, f->db);
    policy_device_clear(&d);
}

/* kill -9 in the middle of batches: the table is consistent, and what a reopen loads from it
 * is what it holds (and the one-shot work consumed before the kill stays consumed). */
static void test_index_kill9(Fixture *f, gconstpointer data)
{
    policy_store_close(f->store);
    f->store = NULL;
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        PolicyStore *s = policy_store_open(f->db, NULL);
        if (s == NULL || !policy_store_start_writer(s, 10, NULL))
            _exit(4);
        PolicyEngine e = {.rules = f->rules, .store = s};
        pb_policy_decision r = {.struct_size = sizeof(r)};
        for (int i = 0;; i++) {
            PolicyDevice o;
            char mac[24];
            int n = i % 3000;
            g_snprintf(mac, sizeof(mac), "02:00:00:03:%02x:%02x", (n >> 8) & 0xff, n & 0xff);
            dev_mac(&o, mac);
            policy_engine_decide(&e, &o, PB_POLICY_REQ_COMMIT, 3000 + i, &r, NULL, NULL);
            policy_device_clear(&o);
            if (i % 300 == 0)
                policy_store_flush(s, FALSE, NULL);
            if (i == 2000) {
                PolicyDevice c;
                dev_mac(&c, "00:11:22:33:44:88");
                c.serial = g_strdup("CAP-1");
                if (!policy_engine_decide(&e, &c, PB_POLICY_REQ_CONSUME, 5000, &r, NULL, NULL) ||
                    r.work != PB_POLICY_WORK_CAPTURE)
                    _exit(5);
                policy_device_clear(&c);
                kill(getppid(), SIGUSR1);
            }
        }
    }
    kill_when_signalled(pid, 30000); /* into the next batches */

    fx_open(f);
    assert_index_matches_db(f->store, f->db);
    g_assert_cmpint(db_scalar(f->db, "SELECT count(*) FROM once_done"), ==, 1);
    PolicyDevice c;
    dev_mac(&c, "00:11:22:33:44:88");
    c.serial = g_strdup("CAP-1");
    pb_policy_decision r = decide(f, &c, TRUE);
    g_assert_cmpuint(r.work, ==, PB_POLICY_WORK_LOCAL);
    g_assert_true(r.flags & PB_POLICY_F_KNOWN);
    policy_device_clear(&c);
    /* and it goes on from there: new boots noted, written, still in agreement */
    for (int i = 0; i < 100; i++) {
        PolicyDevice o;
        char mac[24];
        g_snprintf(mac, sizeof(mac), "02:00:00:04:00:%02x", i);
        dev_mac(&o, mac);
        commit(f, &o, 9000 + i);
        policy_device_clear(&o);
    }
    g_assert_true(policy_store_flush(f->store, TRUE, NULL));
    assert_index_matches_db(f->store, f->db);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/policy/engine/assignment-once", Fixture, NULL, fx_setup, test_assignment_once,
               fx_teardown);
    g_test_add("/policy/engine/rule-once", Fixture, NULL, fx_setup, test_rule_once, fx_teardown);
    g_test_add("/policy/engine/undoable-work-kept", Fixture, NULL, fx_setup,
               test_undoable_work_kept, fx_teardown);
    g_test_add("/policy/engine/commit-vs-consume", Fixture, NULL, fx_setup, test_commit_vs_consume,
               fx_teardown);
    g_test_add("/policy/engine/just-imaged", Fixture, NULL, fx_setup, test_just_imaged,
               fx_teardown);
    g_test_add("/policy/engine/session-spec", Fixture, NULL, fx_setup, test_session_spec,
               fx_teardown);
    g_test_add("/policy/engine/boot-program-keeps-imaging-work", Fixture, NULL, fx_setup,
               test_boot_program_keeps_imaging_work, fx_teardown);
    g_test_add("/policy/engine/just-imaged-served-by-local-boot", Fixture, NULL, fx_setup,
               test_just_imaged_served_by_local_boot, fx_teardown);
    g_test_add("/policy/engine/identity", Fixture, NULL, fx_setup, test_identity, fx_teardown);
    g_test_add_func("/policy/engine/words", test_words);
    g_test_add("/policy/engine/kill-9", Fixture, NULL, fx_setup, test_kill9, fx_teardown);
    g_test_add("/policy/engine/pending-visible", Fixture, NULL, fx_setup, test_pending_visible,
               fx_teardown);
    g_test_add("/policy/engine/flush-thread", Fixture, NULL, fx_setup, test_flush_thread,
               fx_teardown);
    g_test_add("/policy/engine/flush-on-close", Fixture, NULL, fx_setup, test_flush_on_close,
               fx_teardown);
    g_test_add("/policy/engine/kill-9-batched", Fixture, NULL, fx_setup, test_kill9_batched,
               fx_teardown);
    g_test_add("/policy/store/index-identity", Fixture, NULL, fx_setup, test_index_identity,
               fx_teardown);
    g_test_add("/policy/store/index-batches", Fixture, NULL, fx_setup, test_index_batches,
               fx_teardown);
    g_test_add("/policy/store/index-rollback", Fixture, NULL, fx_setup, test_index_rollback,
               fx_teardown);
    g_test_add("/policy/store/index-kill-9", Fixture, NULL, fx_setup, test_index_kill9,
               fx_teardown);
    return g_test_run();
}
