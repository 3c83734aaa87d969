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

/* "host", "host:port", "[v6]:port": what a Host header or a listener address may be. Anything
 * else (a client's made-up Host header) is not put into a script or a command line. */
gboolean policy_server_valid(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 255)
        return FALSE;
    for (const char *p = s; *p; p++)
        if (!g_ascii_isalnum(*p) && strchr(".-:[]", *p) == NULL)
            return FALSE;
    return TRUE;
}

/* "http://10.0.0.1:8080" -> "10.0.0.1:8080"; NULL when it is not a plain http base. */
static char *server_of(const char *base)
{
    if (base == NULL || !g_str_has_prefix(base, "http://"))
        return NULL;
    const char *h = base + strlen("http://");
    return policy_server_valid(h) ? g_strdup(h) : NULL;
}

/* A path of the rules' imaging: section as iPXE fetches it: URLs as they are, a relative
 * path ("preboot/vmlinuz", the preboot-bootenv(8) output under the TFTP root) from the
 * HTTP listener the script came from, which serves that directory (bootenv_directory). */
static char *bootenv_url(const char *path, const char *server)
{
    g_autofree char *p = clean(path);
    if (strstr(p, "://") != NULL || server == NULL)
        return g_steal_pointer(&p);
    const char *rel = p;
    while (*rel == '/')
        rel++;
    return g_strdup_printf("http://%s/%s", server, rel);
}

/* Boots the imaging environment for work (a policy_work_name, or "maintenance"). BOOTIF
 * names the interface iPXE booted from (as pxelinux's IPAPPEND 2 does), so the environment
 * asks DHCP there first; initrd= lets an EFI stub kernel find the initrd iPXE registered
 * under that name. */
static void ipxe_bootenv(GString *o, const PolicyEngine *e, const char *work, const char *a,
                         const char *id, const char *base)
{
    const PolicyRules *r = e->rules;
    g_autofree char *server = server_of(base);
    g_autofree char *k = bootenv_url(r->imaging_kernel, server);
    g_autofree char *args = clean(r->imaging_args);
    g_autofree char *i = r->imaging_initrd ? bootenv_url(r->imaging_initrd, server) : NULL;
    g_autofree char *iname = NULL;
    if (i != NULL) {
        const char *slash = strrchr(i, '/');
        iname = g_strndup(slash ? slash + 1 : i, strcspn(slash ? slash + 1 : i, "?#"));
    }
    g_string_append_printf(o, "echo preboot: %s%s%s\nkernel %s", work, *a ? " " : "", a, k);
    if (iname != NULL && *iname)
        g_string_append_printf(o, " initrd=%s", iname);
    if (*args)
        g_string_append_printf(o, " %s", args);
    g_string_append_printf(o, " preboot.work=%s preboot.arg=%s preboot.device=%s", work, a, id);
    if (server != NULL)
        g_string_append_printf(o, " preboot.server=%s", server);
    g_string_append(o, " BOOTIF=01-${netX/mac:hexhyp} || goto failed\n");
    if (i != NULL)
        g_string_append_printf(o, "initrd %s || goto failed\n", i);
    g_string_append(o, "boot || goto failed\n");
}

static void ipxe_work(GString *o, const PolicyEngine *e, guint32 work, const char *arg,
                      const char *device_id, const char *base)
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
    ipxe_bootenv(o, e, policy_work_name(work), a, id, base);
}

char *policy_ipxe_script(const PolicyEngine *e, const pb_policy_decision *d, const char *server_url)
{
    GString *o = g_string_new("#!ipxe\n");
    g_autofree char *rule = clean(d->rule);
    g_autofree char *id = clean(d->device_id);
    g_string_append_printf(o, "# preboot policy for %s, decided by %s\n", *id ? id : "?", rule);
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
        /* The legacy "imaging maintenance mode": the environment's prompt, whatever the
         * work, whenever there is an environment to boot. */
        if (e->rules->imaging_kernel != NULL)
            g_string_append(o, "item maintenance " POLICY_LABEL_MAINTENANCE "\n");
        g_string_append_printf(o,
                               "choose --timeout %u --default work target && goto ${target} || "
                               "goto work\n",
                               d->menu == PB_POLICY_MENU_ALWAYS ? ms : 0);
        for (guint i = 0; i < n; i++) {
            policy_engine_menu_entry(e, d->menu_name, i, &me);
            if (same_work(&me, d))
                continue;
            g_string_append_printf(o, ":e%u\n", i);
            ipxe_work(o, e, me.work, me.work_arg, d->device_id, server_url);
        }
        if (e->rules->imaging_kernel != NULL) {
            g_autofree char *id2 = clean(d->device_id);
            g_string_append(o, ":maintenance\n");
            ipxe_bootenv(o, e, "maintenance", "", id2, server_url);
        }
    }
    g_string_append(o, ":work\n");
    ipxe_work(o, e, d->work, d->work_arg, d->device_id, server_url);
    g_string_append(o, ":failed\necho preboot: that failed; booting the local disk\nexit 0\n");
    return g_string_free(o, FALSE);
}

/* The imaging environment over TFTP: a relative kernel path is taken from the TFTP root,
 * where preboot-bootenv(8) writes. IPAPPEND 3 adds ip= (the TFTP server, the environment's
 * fallback for the imaging server's host) and BOOTIF= (the interface that booted). server:
 * "HOST:PORT" of the HTTP listener, ":PORT" when its host is unknown, or NULL. */
static void pxelinux_bootenv(GString *o, const PolicyEngine *e, const char *work, const char *a,
                             const char *id, const char *server)
{
    const PolicyRules *r = e->rules;
    g_autofree char *k = clean(r->imaging_kernel);
    g_autofree char *args = clean(r->imaging_args);
    g_autofree char *i = clean(r->imaging_initrd);
    g_string_append_printf(o,
                           "  KERNEL %s\n  APPEND%s%s%s%s preboot.work=%s preboot.arg=%s "
                           "preboot.device=%s",
                           k, *i ? " initrd=" : "", i, *args ? " " : "", args, work, a, id);
    if (server != NULL && server[0] == ':' && policy_server_valid(server + 1))
        g_string_append_printf(o, " preboot.port=%s", server + 1);
    else if (policy_server_valid(server))
        g_string_append_printf(o, " preboot.server=%s", server);
    g_string_append(o, "\n  IPAPPEND 3\n");
}

static void pxelinux_work(GString *o, const PolicyEngine *e, guint32 work, const char *arg,
                          const char *device_id, const char *server)
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
        pxelinux_bootenv(o, e, policy_work_name(work), a, id, server);
    }
}

char *policy_pxelinux_cfg(const PolicyEngine *e, const pb_policy_decision *d)
{
    return policy_pxelinux_cfg_server(e, d, NULL);
}

char *policy_pxelinux_cfg_server(const PolicyEngine *e, const pb_policy_decision *d,
                                 const char *server)
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
    pxelinux_work(o, e, d->work, d->work_arg, d->device_id, server);
    pb_policy_menu_entry me = {.struct_size = sizeof(me)};
    for (guint n = 0; policy_engine_menu_entry(e, d->menu_name, n, &me); n++) {
        if (same_work(&me, d))
            continue;
        g_autofree char *label = clean(me.label);
        g_string_append_printf(o, "LABEL e%u\n  MENU LABEL %s\n", n, label);
        pxelinux_work(o, e, me.work, me.work_arg, d->device_id, server);
    }
    /* At the boot: prompt (or in menu.c32) the user may type "maintenance". */
    if (d->menu != PB_POLICY_MENU_NEVER && e->rules->imaging_kernel != NULL) {
        g_string_append(o, "LABEL maintenance\n  MENU LABEL " POLICY_LABEL_MAINTENANCE "\n");
        pxelinux_bootenv(o, e, "maintenance", "", id, server);
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
