/* policy-engine.c - who boots what. The order of precedence, highest first:
 *   1. a per-device assignment (prebootctl policy assign, or imaging after a job);
 *   2. the first enabled rule that matches (or the default rule);
 * and then the state corrects the work:
 *   - a device marked just-imaged boots its disk once instead of looping back into imaging;
 *   - "restore IMAGE" when IMAGE is the last image laid down boots the disk, unless force;
 *   - one-shot work already done by this device boots the disk.
 * A commit (the caller acts on the answer) records the boot; a consume (the caller carries
 * out the work) also consumes what was used, in one transaction so a crash can neither lose
 * nor repeat one-shot work. The boot itself (last seen, boot count) is noted in memory and
 * written in batches (policy-store.c says why and what a crash may lose). Every read is from
 * the store's copy in memory: a decision that writes nothing durable touches no SQLite, and
 * one that does opens its transaction only to write. */
#include "policy-engine.h"

#include <preboot/plugin.h> /* PB_HAS_FIELD */

#include <string.h>

const char *policy_menu_show_name(guint32 show)
{
    switch (show) {
    case PB_POLICY_MENU_ALWAYS:
        return "always";
    case PB_POLICY_MENU_F8:
        return "f8";
    default:
        return "never";
    }
}

static void say(GString *why, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void say(GString *why, const char *fmt, ...)
{
    if (why == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_string_append_vprintf(why, fmt, ap);
    va_end(ap);
}

gboolean policy_work_needs_imaging(guint32 work)
{
    return work == PB_POLICY_WORK_CAPTURE || work == PB_POLICY_WORK_RESTORE ||
           work == PB_POLICY_WORK_MULTICAST || work == PB_POLICY_WORK_SCRIPT;
}

/* Work that runs the imaging environment (and so would loop after a reboot). */
#define is_imaging policy_work_needs_imaging

static const char *boot_file_for(const PolicyRules *rules, const PolicyRule *rule,
                                 const PolicyDevice *dev)
{
    if (rule->boot_file != NULL)
        return rule->boot_file;
    if (dev->arch >= 0) {
        const char *f = g_hash_table_lookup(rules->boot_files, GINT_TO_POINTER(dev->arch + 1));
        if (f != NULL)
            return f;
    }
    return rules->fallback->boot_file ? rules->fallback->boot_file : "";
}

gboolean policy_engine_decide(const PolicyEngine *e, const PolicyDevice *dev, guint32 flags,
                              gint64 now, pb_policy_decision *out, GString *why, GError **error)
{
    g_return_val_if_fail(e != NULL && e->rules != NULL && dev != NULL && out != NULL, FALSE);
    const PolicyRules *rules = e->rules;
    gboolean consume = (flags & PB_POLICY_REQ_CONSUME) != 0;
    gboolean boot_program = (flags & POLICY_REQ_BOOT_PROGRAM) != 0;
    gboolean commit = consume || (flags & PB_POLICY_REQ_COMMIT) != 0;
    guint32 size = out->struct_size;
    if (size < G_STRUCT_OFFSET(pb_policy_decision, device_id)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "decision struct too small (%u bytes)",
                    size);
        return FALSE;
    }
    pb_policy_decision d;
    memset(&d, 0, sizeof(d));
    d.struct_size = (guint32)sizeof(d);
    d.action = PB_POLICY_BOOT;
    GError *err = NULL;
    gboolean ok = TRUE;
    GString *rwhy = NULL;
    PolicyWork assigned = {0};
    char assigned_key[160] = "";
    static const PolicyWork local_work = {.work = PB_POLICY_WORK_LOCAL};

    char id[128] = "";
    gboolean have_id = policy_device_identity(dev, id, sizeof(id));
    g_strlcpy(d.device_id, id, sizeof(d.device_id));
    say(why, "device %s\n", have_id ? id : "(no MAC, UUID or serial)");

    PolicyDeviceRecord rec = {0};
    gboolean known = FALSE;
    gboolean in_txn = FALSE;
    if (e->store != NULL)
        policy_store_sync(e->store); /* what other servers changed, if shared: in memory */
    if (e->store != NULL && have_id) {
        /* From memory, which only this thread changes: nothing can change between this read
         * and the writes below, so a consume opens its transaction only to write. */
        known = policy_store_find(e->store, dev, &rec, &err);
        if (err != NULL)
            goto state_failed;
    }
    if (known) {
        d.flags |= PB_POLICY_F_KNOWN;
        char since[32];
        say(why, "known since %s, %" G_GINT64_FORMAT " boots, last image %s%s\n",
            policy_time_text(rec.first_seen, since, sizeof(since)), rec.boot_count,
            rec.last_image ? rec.last_image : "(none)", rec.just_imaged ? ", just imaged" : "");
    }

    /* 1. per-device assignment: by UUID, serial, then MAC */
    if (e->store != NULL && have_id && policy_store_assignment_count(e->store) > 0) {
        char keys[3][160];
        int nk = 0;
        if (dev->uuid[0])
            g_snprintf(keys[nk++], sizeof(keys[0]), "uuid:%s", dev->uuid);
        if (dev->serial != NULL)
            g_snprintf(keys[nk++], sizeof(keys[0]), "serial:%s", dev->serial);
        if (dev->mac[0])
            g_snprintf(keys[nk++], sizeof(keys[0]), "mac:%s", dev->mac);
        for (int i = 0; i < nk && !assigned_key[0]; i++) {
            if (policy_store_get_assignment(e->store, keys[i], &assigned, &err))
                g_strlcpy(assigned_key, keys[i], sizeof(assigned_key));
            else if (err != NULL)
                goto state_failed;
        }
    }

    /* 2. rules: the menu and boot program come from the matching rule even when an
     * assignment sets the work */
    if (why != NULL)
        rwhy = g_string_new(NULL);
    const PolicyRule *rule = policy_rules_match(rules, dev, rwhy);
    if (why != NULL)
        g_string_append(why, rwhy->str);

    const PolicyWork *work;
    char once_key[400] = "";
    if (assigned_key[0]) {
        work = &assigned;
        d.flags |= PB_POLICY_F_ASSIGNED;
        g_snprintf(d.rule, sizeof(d.rule), "assignment %s", assigned_key);
        g_autofree char *ws = policy_work_to_string(&assigned);
        say(why, "assignment for %s: %s (above the rules)\n", assigned_key, ws);
    } else {
        g_strlcpy(d.rule, rule->name, sizeof(d.rule));
        if (rule->ignore) {
            d.action = PB_POLICY_IGNORE;
            say(why, "rule %s: ignore this device\n", rule->name);
            goto done;
        }
        work = rule->has_work ? &rule->work : &rules->fallback->work;
        if (!rule->has_work && !rules->fallback->has_work)
            work = &local_work;
    }

    /* menu: the rule's own setting, else its named menu's, else the default's */
    const PolicyMenu *menu = rule->menu_name ? policy_rules_menu(rules, rule->menu_name) : NULL;
    int show = rule->menu_show;
    if (show < 0 && menu != NULL)
        show = menu->show;
    if (show < 0)
        show = rules->fallback->menu_show >= 0 ? rules->fallback->menu_show : PB_POLICY_MENU_F8;
    int timeout = rule->menu_timeout;
    if (timeout < 0 && menu != NULL)
        timeout = menu->timeout_s;
    if (timeout < 0)
        timeout = rules->fallback->menu_timeout >= 0 ? rules->fallback->menu_timeout : 2;
    d.menu = (guint32)show;
    d.menu_timeout_s = (guint32)timeout;
    if (menu != NULL)
        g_strlcpy(d.menu_name, menu->name, sizeof(d.menu_name));
    g_strlcpy(d.boot_file, boot_file_for(rules, rule, dev), sizeof(d.boot_file));

    d.work = work->work;
    if (work->arg != NULL)
        g_strlcpy(d.work_arg, work->arg, sizeof(d.work_arg));
    if (work->once)
        d.flags |= PB_POLICY_F_ONCE;
    if (work->force)
        d.flags |= PB_POLICY_F_FORCE;

    /* 3. what the state says about that work (a session that names its image lays it
     * down as a restore does) */
    const char *laid = d.work == PB_POLICY_WORK_RESTORE     ? work->arg
                       : d.work == PB_POLICY_WORK_MULTICAST ? work->image
                                                            : NULL;
    if (known && rec.just_imaged && is_imaging(d.work)) {
        say(why, "just imaged: boot the local disk this time instead of %s\n",
            policy_work_name(d.work));
        d.work = PB_POLICY_WORK_LOCAL;
        d.work_arg[0] = '\0';
        d.flags |= PB_POLICY_F_JUST_IMAGED;
    } else if (known && laid != NULL && !work->force && rec.last_image != NULL &&
               strcmp(rec.last_image, laid) == 0) {
        say(why, "image %s is already on the disk (assign with force to lay it down again)\n",
            laid);
        d.work = PB_POLICY_WORK_LOCAL;
        d.work_arg[0] = '\0';
        d.flags |= PB_POLICY_F_SAME_IMAGE;
    } else if (work->once && !assigned_key[0] && d.work != PB_POLICY_WORK_LOCAL) {
        g_autofree char *ws = policy_work_to_string(work);
        g_snprintf(once_key, sizeof(once_key), "%s: %s", rule->name, ws);
        gboolean done = FALSE;
        if (known && !policy_store_once_done(e->store, rec.id, once_key, &done, &err))
            goto state_failed;
        if (done) {
            say(why, "one-shot work of rule %s already done: boot the local disk\n", rule->name);
            d.work = PB_POLICY_WORK_LOCAL;
            d.work_arg[0] = '\0';
            once_key[0] = '\0';
        }
    }
    /* Work the device cannot do now is not used up: it waits for a rules file with an
     * imaging environment (prebootctl policy assign refuses it up front). */
    gboolean doable = !is_imaging(d.work) || rules->imaging_kernel != NULL;
    if (!doable)
        say(why,
            "%s needs the imaging environment and the rules file has no imaging: kernel: "
            "nothing is consumed\n",
            policy_work_name(d.work));
    say(why, "decision: %s%s%s, menu %s (%us)%s%s\n", policy_work_name(d.work),
        d.work_arg[0] ? " " : "", d.work_arg, policy_menu_show_name(d.menu), d.menu_timeout_s,
        d.boot_file[0] ? ", boot file " : "", d.boot_file);

    /* 4. commit: note the boot (in memory, written by the store's next batch) and consume
     * what this answer used (written now, with the device's record, before the answer goes
     * out: a kill -9 after it must not hand the work out again) */
    if (commit && e->store != NULL && have_id) {
        gboolean count = !known || e->boot_window_s <= 0 || now - rec.last_seen >= e->boot_window_s;
        gint64 dev_id = 0;
        if (!policy_store_note_boot(e->store, known ? &rec : NULL, dev, now, d.rule, count, &dev_id,
                                    &err)) {
            if (!g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOSPC))
                goto state_failed;
            /* At the bound on device records (policy_store_set_max_devices): answered from
             * the rules, nothing recorded and nothing consumed. Not a state failure. */
            say(why, "%s\n", err->message);
            g_clear_error(&err);
            goto done;
        }
        /* The mark asks for one boot of the disk after imaging: any boot of the disk that
         * is handed over serves it, also one the rules or the default chose. Kept past
         * such a boot, it would turn the next imaging work away (an admin's new
         * assignment after the device came back up from its restore). */
        gboolean clear_mark =
            consume && known && rec.just_imaged &&
            ((d.flags & PB_POLICY_F_JUST_IMAGED) != 0 || d.work == PB_POLICY_WORK_LOCAL);
        /* A boot program handed over does not use up imaging work: its report does. */
        gboolean use_work = consume && doable && !(boot_program && is_imaging(d.work));
        gboolean drop_assignment =
            use_work && assigned_key[0] && assigned.once && !(d.flags & PB_POLICY_F_JUST_IMAGED);
        gboolean mark = use_work && once_key[0];
        gboolean step = TRUE;
        if (clear_mark || drop_assignment || mark) {
            /* the device's record and what was used, in one transaction */
            if (!policy_store_begin(e->store, &err))
                goto state_failed;
            in_txn = TRUE;
            step = policy_store_persist(e->store, dev_id, &err);
        }
        if (step && clear_mark)
            step = policy_store_clear_just_imaged(e->store, dev_id, &err);
        if (step && drop_assignment)
            step = policy_store_consume_assignment(e->store, assigned_key, &assigned, &err);
        if (step && mark)
            step = policy_store_mark_once(e->store, dev_id, once_key, now, &err);
        if (!step)
            goto state_failed;
        if (in_txn && !policy_store_commit(e->store, &err))
            goto state_failed;
        in_txn = FALSE;
        if (drop_assignment)
            say(why, "one-shot assignment consumed\n");
    }
    goto done;

state_failed:
    if (in_txn)
        policy_store_rollback(e->store);
    in_txn = FALSE;
    /* Work shared with other servers that could not be used up here (another server used it
     * first, or the shared database is away) is not handed out: the device boots its disk,
     * and work still assigned waits for its next boot. */
    if (g_error_matches(err, POLICY_STORE_ERROR, POLICY_STORE_ERROR_TAKEN) ||
        g_error_matches(err, POLICY_STORE_ERROR, POLICY_STORE_ERROR_UNAVAILABLE)) {
        say(why, "%s: work withheld, boot the local disk\n", err->message);
        d.work = PB_POLICY_WORK_LOCAL;
        d.work_arg[0] = '\0';
        d.flags &= ~(guint32)(PB_POLICY_F_ONCE | PB_POLICY_F_FORCE);
        if (err->code == POLICY_STORE_ERROR_TAKEN) {
            g_clear_error(&err);
            goto done;
        }
    }
    /* The rules still answer; only the state-dependent corrections are lost. */
    ok = FALSE;
    g_propagate_error(error, err);
    err = NULL;
    if (d.rule[0] == '\0') {
        const PolicyRule *r = policy_rules_match(rules, dev, NULL);
        g_strlcpy(d.rule, r->name, sizeof(d.rule));
        if (r->ignore)
            d.action = PB_POLICY_IGNORE;
        d.menu = PB_POLICY_MENU_F8;
        d.menu_timeout_s = 2;
        g_strlcpy(d.boot_file, boot_file_for(rules, r, dev), sizeof(d.boot_file));
    }
done:
    policy_work_clear(&assigned);
    policy_device_record_clear(&rec);
    if (rwhy != NULL)
        g_string_free(rwhy, TRUE);
    memcpy((char *)out + sizeof(guint32), (char *)&d + sizeof(guint32),
           MIN(size, sizeof(d)) - sizeof(guint32));
    return ok;
}

gboolean policy_engine_report(const PolicyEngine *e, const PolicyDevice *dev, guint32 event,
                              const char *image, gint64 now, GError **error)
{
    if (e->store == NULL) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOSYS, "no state database");
        return FALSE;
    }
    if (event == PB_POLICY_EVENT_FAILED || event == PB_POLICY_EVENT_CAPTURED)
        return TRUE; /* nothing to remember beyond the log line the caller writes */
    if (event != PB_POLICY_EVENT_RESTORED) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "unknown event %u", event);
        return FALSE;
    }
    PolicyDeviceRecord rec = {0};
    if (!policy_store_begin(e->store, error))
        return FALSE;
    /* A device imaged here was seen by definition; record_boot with no boot counted would
     * be cleaner, but the imaging boot was a boot. */
    GError *err = NULL;
    if (!policy_store_find(e->store, dev, &rec, &err)) {
        if (err != NULL || !policy_store_record_boot(e->store, dev, now, NULL, &rec, &err))
            goto failed;
    }
    if (!policy_store_set_imaged(e->store, rec.id, image, TRUE, &err))
        goto failed;
    policy_device_record_clear(&rec);
    return policy_store_commit(e->store, error);
failed:
    policy_device_record_clear(&rec);
    policy_store_rollback(e->store);
    g_propagate_error(error, err);
    return FALSE;
}

gboolean policy_engine_session_spec(const PolicyEngine *e, const PolicyDevice *dev,
                                    const pb_policy_decision *d, PolicyWork *out)
{
    memset(out, 0, sizeof(*out));
    out->t_min = -1;
    if (d->action != PB_POLICY_BOOT || d->work != PB_POLICY_WORK_MULTICAST)
        return FALSE;
    static const char assignment[] = "assignment ";
    if (d->flags & PB_POLICY_F_ASSIGNED) {
        if (e->store == NULL || !g_str_has_prefix(d->rule, assignment) ||
            !policy_store_get_assignment(e->store, d->rule + strlen(assignment), out, NULL))
            return FALSE;
    } else {
        const PolicyRule *rule = policy_rules_match(e->rules, dev, NULL);
        const PolicyWork *w = rule->has_work ? &rule->work : &e->rules->fallback->work;
        out->work = w->work;
        out->arg = g_strdup(w->arg);
        out->image = g_strdup(w->image);
        out->clients = w->clients;
        out->t_min = w->t_min;
    }
    /* The same work the decision carried (not a PrebootServer's answer, not another) and a
     * session the server is to start. */
    if (out->work != PB_POLICY_WORK_MULTICAST || out->image == NULL ||
        g_strcmp0(out->arg, d->work_arg) != 0) {
        policy_work_clear(out);
        return FALSE;
    }
    return TRUE;
}

gboolean policy_engine_menu_entry(const PolicyEngine *e, const char *name, guint index,
                                  pb_policy_menu_entry *out)
{
    if (!PB_HAS_FIELD(pb_policy_menu_entry, out, work_arg))
        return FALSE;
    static const PolicyMenuEntry builtin[] = {
        {.label = (char *)POLICY_LABEL_LOCAL, .work = {.work = PB_POLICY_WORK_LOCAL}},
    };
    const PolicyMenuEntry *entry = NULL;
    const PolicyMenu *m = name && *name ? policy_rules_menu(e->rules, name) : NULL;
    if (m != NULL) {
        if (index >= m->entries->len)
            return FALSE;
        entry = g_ptr_array_index(m->entries, index);
    } else {
        if (name != NULL && *name != '\0')
            return FALSE;
        if (index >= G_N_ELEMENTS(builtin))
            return FALSE;
        entry = &builtin[index];
    }
    out->work = entry->work.work;
    g_strlcpy(out->label, entry->label, sizeof(out->label));
    g_strlcpy(out->work_arg, entry->work.arg ? entry->work.arg : "", sizeof(out->work_arg));
    return TRUE;
}

gboolean policy_device_from_words(PolicyDevice *d, int argc, const char *const *argv,
                                  GError **error)
{
    policy_device_init(d);
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        const char *eq = strchr(w, '=');
        if (eq == NULL) {
            char key[160];
            if (!policy_device_key_parse(w, key, sizeof(key))) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                            "\"%s\" is not a MAC, a UUID or serial:TEXT", w);
                return FALSE;
            }
            if (g_str_has_prefix(key, "mac:"))
                g_strlcpy(d->mac, key + 4, sizeof(d->mac));
            else if (g_str_has_prefix(key, "uuid:"))
                g_strlcpy(d->uuid, key + 5, sizeof(d->uuid));
            else {
                g_free(d->serial);
                d->serial = g_strdup(key + 7);
            }
            continue;
        }
        g_autofree char *k = g_strndup(w, (gsize)(eq - w));
        const char *v = eq + 1;
        char norm[40];
        gboolean good = TRUE;
        char **slot = NULL;
        if (!strcmp(k, "mac"))
            good = policy_mac_normalize(v, d->mac);
        else if (!strcmp(k, "uuid"))
            good = policy_uuid_normalize(v, norm) && g_strlcpy(d->uuid, norm, sizeof(d->uuid));
        else if (!strcmp(k, "serial"))
            slot = &d->serial;
        else if (!strcmp(k, "manufacturer"))
            slot = &d->manufacturer;
        else if (!strcmp(k, "model") || !strcmp(k, "product"))
            slot = &d->product;
        else if (!strcmp(k, "asset_tag") || !strcmp(k, "asset"))
            slot = &d->asset_tag;
        else if (!strcmp(k, "bios_version"))
            slot = &d->bios_version;
        else if (!strcmp(k, "user_class"))
            slot = &d->user_class;
        else if (!strcmp(k, "vendor_class"))
            slot = &d->vendor_class;
        else if (!strcmp(k, "arch"))
            good = (d->arch = policy_arch_parse(v)) >= 0;
        else if (!strcmp(k, "ip"))
            good = policy_ip_parse(v, &d->ip);
        else if (!strcmp(k, "relay"))
            good = policy_ip_parse(v, &d->relay);
        else if (!strcmp(k, "ram"))
            d->ram_mb = g_ascii_strtoull(v, NULL, 10);
        else if (!strcmp(k, "disk"))
            d->disk_gb = g_ascii_strtoull(v, NULL, 10);
        else {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "unknown fact \"%s\" (mac, uuid, serial, manufacturer, model, asset_tag, "
                        "bios_version, user_class, vendor_class, arch, ip, relay, ram, disk)",
                        k);
            return FALSE;
        }
        if (slot != NULL) {
            g_free(*slot);
            *slot = g_strdup(v);
        }
        if (!good) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "bad value in \"%s\"", w);
            return FALSE;
        }
    }
    if (d->serial != NULL && policy_serial_is_placeholder(d->serial))
        g_clear_pointer(&d->serial, g_free);
    return TRUE;
}
