/* policy-script.c - decisions as iPXE scripts and pxelinux configuration files. */
#include "policy-script.h"

#include <string.h>

/* Text from rules and assignments goes into a script: no line breaks, no iPXE settings
 * expansion ("${...}"), no control characters. */
static char *clean(const char *s)
{
    GString *o = g_string_new(NULL);
    for (const char *p = s ? s : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || c == '$')
            g_string_append_c(o, '_');
        else
            g_string_append_c(o, (char)c);
    }
    return g_string_free(o, FALSE);
}

static void work_desc(GString *o, guint32 work, const char *arg)
{
    g_autofree char *a = clean(arg);
    if (work == PB_POLICY_WORK_LOCAL)
        g_string_append(o, POLICY_LABEL_LOCAL);
    else
        g_string_append_printf(o, "%s %s", policy_work_name(work), a);
}

/* A menu entry that does what the decided work does already: its first item. Shown twice it
 * read "Boot the local disk" twice (or once in each spelling). */
static gboolean same_work(const pb_policy_menu_entry *me, const pb_policy_decision *d)
{
    return me->work == d->work &&
           (d->work == PB_POLICY_WORK_LOCAL || strcmp(me->work_arg, d->work_arg) == 0);
}

static void ipxe_work(GString *o, const PolicyEngine *e, guint32 work, const char *arg,
                      const char *device_id)
{
    const PolicyRules *r = e->rules;
    g_autofree char *a = clean(arg);
    g_autofree char *id = clean(device_id);
    switch (work) {
    case PB_POLICY_WORK_LOCAL:
        /* Leaving iPXE hands control back to the firmware, which tries the next boot
         * device: the disk. sanboot --drive 0x80 would be BIOS-only. */
        g_string_append(o, "echo preboot: booting the local disk\nexit 0\n");
        return;
    case PB_POLICY_WORK_PROGRAM:
        g_string_append_printf(o, "echo preboot: booting %s\nchain --autofree %s || goto failed\n",
                               a, a);
        return;
    default:
        break;
    }
    if (r->imaging_kernel == NULL) {
        g_string_append_printf(o,
                               "echo preboot: %s %s needs the imaging environment, and the rules "
                               "file has no imaging: kernel\ngoto failed\n",
                               policy_work_name(work), a);
        return;
    }
    g_autofree char *k = clean(r->imaging_kernel);
    g_autofree char *args = clean(r->imaging_args);
    g_string_append_printf(o,
                           "echo preboot: %s %s\nkernel %s%s%s preboot.work=%s "
                           "preboot.arg=%s preboot.device=%s || goto failed\n",
                           policy_work_name(work), a, k, *args ? " " : "", args,
                           policy_work_name(work), a, id);
    if (r->imaging_initrd != NULL) {
        g_autofree char *i = clean(r->imaging_initrd);
        g_string_append_printf(o, "initrd %s || goto failed\n", i);
    }
    g_string_append(o, "boot || goto failed\n");
}

char *policy_ipxe_script(const PolicyEngine *e, const pb_policy_decision *d, const char *server_url)
{
    GString *o = g_string_new("#!ipxe\n");
    g_autofree char *rule = clean(d->rule);
    g_autofree char *id = clean(d->device_id);
    g_string_append_printf(o, "# preboot policy for %s, decided by %s\n", *id ? id : "?", rule);
    (void)server_url;
    if (d->action == PB_POLICY_IGNORE) {
        g_string_append(o, "echo preboot: this device is not served here\nexit 1\n");
        return g_string_free(o, FALSE);
    }

    /* The menu: entries of the named menu (or the built-in one) after the decided work. */
    if (d->menu != PB_POLICY_MENU_NEVER) {
        guint ms = d->menu_timeout_s * 1000;
        if (d->menu == PB_POLICY_MENU_F8)
            /* F8 is KEY_ANSI(19,'~') = 0x147e in iPXE's include/ipxe/keys.h, the key PXE
             * ROMs use for their boot menu (PXE 2.1 spec, section 2.4.4). */
            g_string_append_printf(o,
                                   "prompt --key 0x147e --timeout %u Press F8 for the boot "
                                   "menu... && goto menu || goto work\n",
                                   ms);
        g_string_append(o, ":menu\nmenu Preboot menu\nitem work ");
        work_desc(o, d->work, d->work_arg);
        g_string_append(o, "\n");
        pb_policy_menu_entry me = {.struct_size = sizeof(me)};
        guint n = 0;
        while (policy_engine_menu_entry(e, d->menu_name, n, &me)) {
            if (!same_work(&me, d)) {
                g_autofree char *label = clean(me.label);
                g_string_append_printf(o, "item e%u %s\n", n, label);
            }
            n++;
        }
        g_string_append_printf(o,
                               "choose --timeout %u --default work target && goto ${target} || "
                               "goto work\n",
                               d->menu == PB_POLICY_MENU_ALWAYS ? ms : 0);
        for (guint i = 0; i < n; i++) {
            policy_engine_menu_entry(e, d->menu_name, i, &me);
            if (same_work(&me, d))
                continue;
            g_string_append_printf(o, ":e%u\n", i);
            ipxe_work(o, e, me.work, me.work_arg, d->device_id);
        }
    }
    g_string_append(o, ":work\n");
    ipxe_work(o, e, d->work, d->work_arg, d->device_id);
    g_string_append(o, ":failed\necho preboot: that failed; booting the local disk\nexit 0\n");
    return g_string_free(o, FALSE);
}

static void pxelinux_work(GString *o, const PolicyEngine *e, guint32 work, const char *arg,
                          const char *device_id)
{
    const PolicyRules *r = e->rules;
    g_autofree char *a = clean(arg);
    g_autofree char *id = clean(device_id);
    if (work == PB_POLICY_WORK_LOCAL) {
        g_string_append(o, "  LOCALBOOT 0\n");
    } else if (work == PB_POLICY_WORK_PROGRAM) {
        g_string_append_printf(o, "  KERNEL %s\n", a);
    } else if (r->imaging_kernel == NULL) {
        g_string_append(o, "  # no imaging: kernel in the rules file\n  LOCALBOOT 0\n");
    } else {
        g_autofree char *k = clean(r->imaging_kernel);
        g_autofree char *args = clean(r->imaging_args);
        g_autofree char *i = clean(r->imaging_initrd);
        g_string_append_printf(o,
                               "  KERNEL %s\n  APPEND%s%s%s%s preboot.work=%s preboot.arg=%s "
                               "preboot.device=%s\n",
                               k, *i ? " initrd=" : "", i, *args ? " " : "", args,
                               policy_work_name(work), a, id);
    }
}

char *policy_pxelinux_cfg(const PolicyEngine *e, const pb_policy_decision *d)
{
    GString *o = g_string_new(NULL);
    g_autofree char *rule = clean(d->rule);
    g_autofree char *id = clean(d->device_id);
    g_string_append_printf(o, "# preboot policy for %s, decided by %s\n", *id ? id : "?", rule);
    if (d->menu == PB_POLICY_MENU_ALWAYS)
        g_string_append(o, "UI menu.c32\n");
    /* TIMEOUT is in tenths of a second; PROMPT 1 shows "boot:" so a user can pick. */
    g_string_append_printf(o, "DEFAULT work\nPROMPT %d\nTIMEOUT %u\n",
                           d->menu == PB_POLICY_MENU_NEVER ? 0 : 1,
                           d->menu == PB_POLICY_MENU_NEVER ? 1 : d->menu_timeout_s * 10);
    g_string_append(o, "LABEL work\n  MENU LABEL ");
    work_desc(o, d->work, d->work_arg);
    g_string_append(o, "\n");
    pxelinux_work(o, e, d->work, d->work_arg, d->device_id);
    pb_policy_menu_entry me = {.struct_size = sizeof(me)};
    for (guint n = 0; policy_engine_menu_entry(e, d->menu_name, n, &me); n++) {
        if (same_work(&me, d))
            continue;
        g_autofree char *label = clean(me.label);
        g_string_append_printf(o, "LABEL e%u\n  MENU LABEL %s\n", n, label);
        pxelinux_work(o, e, me.work, me.work_arg, d->device_id);
    }
    return g_string_free(o, FALSE);
}

gboolean policy_pxelinux_mac(const char *path, char mac[24])
{
    mac[0] = '\0';
    if (path == NULL)
        return FALSE;
    if (path[0] == '/')
        path++;
    /* "01" is the ARP hardware type of Ethernet, as pxelinux prefixes it. */
    if (!g_str_has_prefix(path, "pxelinux.cfg/01-") || strlen(path) != 16 + 17)
        return FALSE;
    return policy_mac_normalize(path + 16, mac);
}

int policy_arch_from_ipxe(const char *platform, const char *buildarch)
{
    if (platform == NULL)
        return -1;
    if (g_ascii_strcasecmp(platform, "pcbios") == 0)
        return 0;
    if (g_ascii_strcasecmp(platform, "efi") != 0 || buildarch == NULL)
        return -1;
    if (!g_ascii_strcasecmp(buildarch, "i386"))
        return 6;
    if (!g_ascii_strcasecmp(buildarch, "x86_64"))
        return 7;
    if (!g_ascii_strcasecmp(buildarch, "arm32"))
        return 10;
    if (!g_ascii_strcasecmp(buildarch, "arm64"))
        return 11;
    if (!g_ascii_strcasecmp(buildarch, "riscv64"))
        return 27;
    return -1;
}
