/* proxydhcp-decide.c - from a parsed request to the reply's bytes and destination.
 *
 * The exchanges (PXE 2.1 section 2.2, and what EDK2 and iPXE do):
 *   port 67  DISCOVER                 -> proxy OFFER (yiaddr 0, no lease options)
 *   port 67  REQUEST with 43.71       -> ACK (broadcast boot server discovery)
 *   port 67  REQUEST without 43.71    -> silence: that one is for the DHCP server
 *   4011     REQUEST/INFORM, 43.71    -> ACK naming the item's file
 *   4011     REQUEST/INFORM, no 43.71 -> ACK with the profile's answer (EDK2's BINL retry,
 *                                       iPXE's ProxyDHCP request, LocalDHCPFlag = 1) */
#include "proxydhcp-decide.h"

#include <stdio.h>
#include <string.h>

const char *pd_profile_name(PdProfile p)
{
    switch (p) {
    case PD_PROFILE_MENU:
        return "menu";
    case PD_PROFILE_BINL:
        return "binl";
    case PD_PROFILE_DIRECT:
        return "direct";
    }
    return "?";
}

bool pd_profile_parse(const char *text, PdProfile *out)
{
    for (int i = 0; i < PD_PROFILE_N; i++) {
        if (g_ascii_strcasecmp(text, pd_profile_name((PdProfile)i)) == 0) {
            *out = (PdProfile)i;
            return true;
        }
    }
    return false;
}

static void rule_free(gpointer p)
{
    PdProfileRule *r = p;
    g_free(r->value);
    g_free(r);
}

static void menu_entry_free(gpointer p)
{
    PdMenuEntry *m = p;
    g_free(m->text);
    g_free(m->file);
    g_free(m);
}

PdConfig *pd_config_new(void)
{
    PdConfig *c = g_new0(PdConfig, 1);
    for (int i = 0; i < PXE_ARCH_CLASS_N; i++) {
        c->boot_file[i] = g_strdup("");
        c->profile[i] = PD_PROFILE_BINL;
    }
    c->profile[PXE_ARCH_CLASS_BIOS] = PD_PROFILE_MENU;
    c->http_url = g_strdup("");
    c->ipxe_next = g_strdup("");
    c->rules = g_ptr_array_new_with_free_func(rule_free);
    c->menu = g_ptr_array_new_with_free_func(menu_entry_free);
    c->menu_timeout = 2;
    c->menu_prompt = g_strdup("Press F8 for the boot menu");
    c->menu_title = g_strdup("Network boot");
    c->sname = g_strdup("");
    return c;
}

void pd_config_free(PdConfig *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < PXE_ARCH_CLASS_N; i++)
        g_free(c->boot_file[i]);
    g_free(c->http_url);
    g_free(c->ipxe_next);
    g_ptr_array_unref(c->rules);
    g_ptr_array_unref(c->menu);
    g_free(c->menu_prompt);
    g_free(c->menu_title);
    g_free(c->sname);
    g_free(c);
}

bool pd_config_add_rule(PdConfig *c, const char *text, GError **error)
{
    g_auto(GStrv) f = g_strsplit_set(text, " \t", -1);
    const char *w[3];
    int n = 0;
    for (int i = 0; f[i] != NULL; i++) {
        if (f[i][0] == '\0')
            continue;
        if (n == 3) {
            n = 4;
            break;
        }
        w[n++] = f[i];
    }
    if (n != 3) {
        g_set_error(error, PD_CONFIG_ERROR, 0,
                    "profile rule \"%s\": expected \"mac|arch|vendor VALUE PROFILE\"", text);
        return false;
    }
    PdProfileRule r = {0};
    if (g_ascii_strcasecmp(w[0], "mac") == 0) {
        r.kind = PD_MATCH_MAC;
    } else if (g_ascii_strcasecmp(w[0], "arch") == 0) {
        r.kind = PD_MATCH_ARCH;
        char *end = NULL;
        guint64 v = g_ascii_strtoull(w[1], &end, 10);
        if (end == w[1] || *end != '\0' || v > 65535) {
            g_set_error(error, PD_CONFIG_ERROR, 0,
                        "profile rule \"%s\": architecture must be 0-65535", text);
            return false;
        }
    } else if (g_ascii_strcasecmp(w[0], "vendor") == 0) {
        r.kind = PD_MATCH_VENDOR;
    } else {
        g_set_error(error, PD_CONFIG_ERROR, 0,
                    "profile rule \"%s\": match on mac, arch or vendor, not \"%s\"", text, w[0]);
        return false;
    }
    if (!pd_profile_parse(w[2], &r.profile)) {
        g_set_error(error, PD_CONFIG_ERROR, 0,
                    "profile rule \"%s\": profile must be menu, binl or direct", text);
        return false;
    }
    PdProfileRule *p = g_new(PdProfileRule, 1);
    *p = r;
    p->value = r.kind == PD_MATCH_MAC ? g_ascii_strdown(w[1], -1) : g_strdup(w[1]);
    if (r.kind == PD_MATCH_MAC)
        g_strdelimit(p->value, "-", ':');
    g_ptr_array_add(c->rules, p);
    return true;
}

bool pd_config_add_menu(PdConfig *c, const char *text, GError **error)
{
    const char *eq = strrchr(text, '=');
    if (eq == NULL || eq == text || eq[1] == '\0') {
        g_set_error(error, PD_CONFIG_ERROR, 0,
                    "menu entry \"%s\": expected \"Text=bootfile\" or \"Text=local\"", text);
        return false;
    }
    if (strlen(eq + 1) > 127) {
        g_set_error(error, PD_CONFIG_ERROR, 0, "menu entry \"%s\": boot file longer than 127 bytes",
                    text);
        return false;
    }
    PdMenuEntry *m = g_new0(PdMenuEntry, 1);
    m->text = g_strndup(text, (gsize)(eq - text));
    m->file = g_ascii_strcasecmp(eq + 1, "local") == 0 ? NULL : g_strdup(eq + 1);
    g_ptr_array_add(c->menu, m);
    return true;
}

/* ---- classify ------------------------------------------------------------------------ */

static void printable(const guint8 *v, gsize len, char *out, gsize cap)
{
    gsize j = 0;
    for (gsize i = 0; i < len && j + 1 < cap; i++)
        out[j++] = (v[i] >= 0x20 && v[i] < 0x7f) ? (char)v[i] : '.';
    out[j] = '\0';
}

bool pd_classify(const DhcpPacket *p, PdClient *c, const char **why)
{
    memset(c, 0, sizeof *c);
    c->arch = -1;
    c->undi_major = c->undi_minor = -1;
    if (p->op != DHCP_BOOTREQUEST) {
        *why = "not a BOOTREQUEST";
        return false;
    }
    c->msg_type = p->msg_type;
    if (p->msg_type == 0) {
        *why = "no DHCP message type (plain BOOTP)";
        return false;
    }

    gsize hl = MIN(p->hlen, 16), j = 0;
    for (gsize i = 0; i < hl; i++)
        j += (gsize)g_snprintf(c->mac + j, sizeof c->mac - j, i ? ":%02x" : "%02x", p->chaddr[i]);

    gsize vlen;
    const guint8 *vc = dhcp_packet_get(p, DHCP_OPT_VENDOR_CLASS, &vlen);
    printable(vc, vlen, c->vendor_class, sizeof c->vendor_class);
    PxeVendorClass v;
    pxe_parse_vendor_class(vc, vlen, &v);
    c->kind = v.kind;
    if (v.kind == PXE_VC_NONE) {
        *why = vc ? "option 60 is not PXEClient or HTTPClient" : "no option 60: not a PXE client";
        return false;
    }

    /* RFC 4578 option 93 first; PXE 2.1 clients also state it in option 60. */
    gsize alen;
    const guint8 *ao = dhcp_packet_get(p, DHCP_OPT_CLIENT_ARCH, &alen);
    int a93 = pxe_parse_client_arch(ao, alen);
    if (a93 >= 0) {
        c->arch = a93;
        c->arch_source = 93;
    } else if (v.arch >= 0) {
        c->arch = v.arch;
        c->arch_source = 60;
    }
    /* PXE 2.0 ROMs sent neither: they are all x86 BIOS. */
    c->arch_class = c->arch < 0 ? PXE_ARCH_CLASS_BIOS : pxe_arch_class(c->arch);
    c->http = v.kind == PXE_VC_HTTP || (c->arch >= 0 && pxe_arch_is_http(c->arch));
    c->ipxe = pxe_is_ipxe(p);

    gsize nlen;
    const guint8 *nii = dhcp_packet_get(p, DHCP_OPT_CLIENT_NDI, &nlen);
    if (nii != NULL && nlen == 3 && nii[0] == 1) {
        c->undi_major = nii[1];
        c->undi_minor = nii[2];
    } else {
        c->undi_major = v.undi_major;
        c->undi_minor = v.undi_minor;
    }

    gsize ulen;
    const guint8 *uuid = dhcp_packet_get(p, DHCP_OPT_CLIENT_UUID, &ulen);
    /* RFC 4578 section 2.3: type 0 then 16 bytes. */
    if (uuid != NULL && ulen == 17 && uuid[0] == 0) {
        const guint8 *u = uuid + 1;
        g_snprintf(c->uuid, sizeof c->uuid,
                   "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
                   u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
                   u[14], u[15]);
    }
    gsize uclen;
    const guint8 *uc = dhcp_packet_get(p, DHCP_OPT_USER_CLASS, &uclen);
    printable(uc, uclen, c->user_class, sizeof c->user_class);

    gsize olen;
    const guint8 *o43 = dhcp_packet_get(p, DHCP_OPT_VENDOR, &olen);
    if (o43 != NULL)
        pxe_parse_vendor_options(o43, olen, &c->vendor);
    return true;
}

/* ---- decide -------------------------------------------------------------------------- */

PdProfile pd_choose_profile(const PdConfig *cfg, const PdClient *c)
{
    for (guint i = 0; i < cfg->rules->len; i++) {
        const PdProfileRule *r = g_ptr_array_index(cfg->rules, i);
        switch (r->kind) {
        case PD_MATCH_MAC:
            if (strcmp(r->value, c->mac) == 0)
                return r->profile;
            break;
        case PD_MATCH_ARCH:
            if (c->arch >= 0 && atoi(r->value) == c->arch)
                return r->profile;
            break;
        case PD_MATCH_VENDOR:
            if (g_str_has_prefix(c->vendor_class, r->value))
                return r->profile;
            break;
        }
    }
    return cfg->profile[c->arch_class];
}

void pd_reply_dest(const DhcpPacket *req, const PdContext *ctx, PdDest *d)
{
    static const guint8 zero[4];
    memset(d, 0, sizeof *d);
    if (ctx->on_pxe_port && memcmp(ctx->src_addr, zero, 4) != 0) {
        /* PXE 2.1: a boot server answers where the request came from. EDK2 sends from and
         * listens on 4011, old ROMs and iPXE on 68: the source port says which. */
        memcpy(d->addr, ctx->src_addr, 4);
        d->port = ctx->src_port;
        return;
    }
    if (memcmp(req->giaddr, zero, 4) != 0) {
        /* RFC 2131 section 4.1: to the relay's server port; it forwards to the client and
         * honours the broadcast flag, which we copy. */
        memcpy(d->addr, req->giaddr, 4);
        d->port = ctx->server_port;
        return;
    }
    if (memcmp(req->ciaddr, zero, 4) != 0) {
        memcpy(d->addr, req->ciaddr, 4);
        d->port = ctx->client_port;
        return;
    }
    /* No address yet and we assign none, so the client cannot receive unicast: broadcast
     * on the interface the request came in on. A request to 4011 from 0.0.0.0 gets the
     * same, to its own source port. */
    memset(d->addr, 255, 4);
    d->port = ctx->on_pxe_port ? ctx->src_port : ctx->client_port;
    d->broadcast = true;
}

PdServerAddrResult pd_choose_server_addr(const DhcpPacket *req, const PdArrival *in, guint8 out[4])
{
    memset(out, 0, 4);
    if (in->local_if != NULL) {
        /* Requests that reach us on another interface are for another server: answering
         * them with LocalInterface's address would send the client where it cannot go. */
        PbAddr want = {.family = 4};
        memcpy(want.addr, in->local_if, 4);
        bool is_dest = in->local.family == 4 && memcmp(in->local.addr, in->local_if, 4) == 0;
        if (in->ifindex != 0 && !pb_ifaddrs_has(in->ifaddrs, in->ifindex, &want) && !is_dest)
            return PD_SERVER_ADDR_WRONG_IFACE;
        memcpy(out, in->local_if, 4);
        return PD_SERVER_ADDR_OK;
    }
    if (in->local.family == 4 && !pb_addr_is_any(&in->local) &&
        !pb_addr_is_multicast_or_broadcast(&in->local)) {
        memcpy(out, in->local.addr, 4);
        return PD_SERVER_ADDR_OK;
    }
    /* A broadcast's destination names no one: the receiving interface's address, on the
     * relay's subnet (giaddr) or else the client's (ciaddr) when it has several. */
    static const guint8 zero[4];
    PbAddr near = {.family = 4};
    memcpy(near.addr, memcmp(req->giaddr, zero, 4) != 0 ? req->giaddr : req->ciaddr, 4);
    PbAddr a;
    if (pb_ifaddrs_pick_ipv4(in->ifaddrs, in->ifindex, &near, &a)) {
        memcpy(out, a.addr, 4);
        return PD_SERVER_ADDR_OK;
    }
    if (pb_ifaddrs_default_ipv4(in->ifaddrs, &a)) {
        memcpy(out, a.addr, 4);
        return PD_SERVER_ADDR_OK;
    }
    return PD_SERVER_ADDR_NONE;
}

/* What an iPXE client gets next, or NULL: ipxe_next, else the script on our HTTP listener. */
static const char *ipxe_next(const PdConfig *cfg, const PdClient *c, const PdContext *ctx)
{
    if (!c->ipxe)
        return NULL;
    if (cfg->ipxe_next[0] != '\0')
        return cfg->ipxe_next;
    return ctx->ipxe_auto;
}

/* The file for an architecture after policy and the iPXE rule. */
static const char *default_file(const PdConfig *cfg, const PdClient *c, const PdContext *ctx,
                                const PdPolicyAnswer *pol)
{
    if (pol->boot_file != NULL && pol->boot_file[0] != '\0')
        return pol->boot_file;
    /* An iPXE client asking again gets the next step, or it would load iPXE forever. */
    const char *next = ipxe_next(cfg, c, ctx);
    if (next != NULL)
        return next;
    if (c->http)
        return cfg->http_url;
    return cfg->boot_file[c->arch_class];
}

static void build_menu(const PdConfig *cfg, const PdContext *ctx, PxeSubWriter *sw)
{
    /* List us as the boot server for every item and turn broadcast and multicast
     * discovery off: the client unicasts its choice to our 4011 (PXE 2.1 table 2-1). */
    pxe_sub_u8(sw, PXE_SUB_DISCOVERY_CONTROL,
               PXE_DC_NO_BROADCAST | PXE_DC_NO_MULTICAST | PXE_DC_ONLY_LISTED);
    pxe_sub_boot_server(sw, PXE_TYPE_VENDOR_BASE, ctx->server_addr);
    for (guint i = 0; i < cfg->menu->len; i++) {
        const PdMenuEntry *m = g_ptr_array_index(cfg->menu, i);
        if (m->file != NULL)
            pxe_sub_boot_server(sw, (guint16)(PXE_TYPE_VENDOR_BASE + 1 + i), ctx->server_addr);
    }
    pxe_sub_menu_begin(sw);
    /* The reference: the first entry is always this server and its default NBP. */
    pxe_sub_menu_item(sw, PXE_TYPE_VENDOR_BASE, cfg->menu_title);
    for (guint i = 0; i < cfg->menu->len; i++) {
        const PdMenuEntry *m = g_ptr_array_index(cfg->menu, i);
        pxe_sub_menu_item(
            sw, m->file ? (guint16)(PXE_TYPE_VENDOR_BASE + 1 + i) : PXE_TYPE_LOCAL_BOOT, m->text);
    }
    pxe_sub_menu_end(sw);
    /* Always a prompt: Intel ROMs stop with PXE-E74 when a menu comes without one. */
    pxe_sub_prompt(sw, (guint8)MIN(cfg->menu_timeout, 255u), cfg->menu_prompt);
}

bool pd_decide(const PdConfig *cfg, const DhcpPacket *req, const PdClient *c, const PdContext *ctx,
               const PdPolicyAnswer *pol, guint8 *out, gsize cap, PdPlan *plan, const char **why)
{
    memset(plan, 0, sizeof *plan);
    if (pol->ignore) {
        *why = "the policy engine says to ignore this client";
        return false;
    }

    bool item_request = c->vendor.has_boot_item;
    if (!ctx->on_pxe_port) {
        if (c->msg_type == DHCP_DISCOVER) {
            plan->reply_type = DHCP_OFFER;
        } else if (c->msg_type == DHCP_REQUEST && item_request) {
            plan->reply_type = DHCP_ACK;
        } else if (c->msg_type == DHCP_REQUEST) {
            *why = "REQUEST on port 67 without a boot item: that one is for the DHCP server";
            return false;
        } else {
            *why = "message type not answered on port 67";
            return false;
        }
    } else {
        if (c->msg_type != DHCP_REQUEST && c->msg_type != DHCP_INFORM) {
            *why = "only REQUEST and INFORM are answered on the PXE port";
            return false;
        }
        plan->reply_type = DHCP_ACK;
    }

    PdProfile profile = pd_choose_profile(cfg, c);
    if (pol->profile >= 0 && pol->profile < PD_PROFILE_N)
        profile = (PdProfile)pol->profile;
    /* iPXE and HTTP boot take a file or URL directly; a menu would only slow them. */
    if (ipxe_next(cfg, c, ctx) != NULL || c->http)
        profile = PD_PROFILE_DIRECT;
    plan->profile = profile;

    const char *file = default_file(cfg, c, ctx, pol);
    guint16 item_type = 0, item_layer = 0;
    if (item_request) {
        item_type = c->vendor.item_type;
        item_layer = c->vendor.item_layer;
        if (item_layer & PXE_LAYER_CREDENTIALS) {
            *why = "boot item asks for credentials, which we do not serve";
            return false;
        }
        if (item_layer != 0) {
            *why = "boot item asks for a layer above 0, which we do not serve";
            return false;
        }
        /* Type 0 from EDK2 means "the bootstrap", i.e. our default. */
        if (item_type != 0 && item_type != PXE_TYPE_VENDOR_BASE) {
            guint idx = (guint)item_type - PXE_TYPE_VENDOR_BASE - 1;
            if (item_type < PXE_TYPE_VENDOR_BASE + 1 || idx >= cfg->menu->len ||
                ((PdMenuEntry *)g_ptr_array_index(cfg->menu, idx))->file == NULL) {
                *why = "boot item type is not one of our menu entries";
                return false;
            }
            file = ((PdMenuEntry *)g_ptr_array_index(cfg->menu, idx))->file;
        }
        plan->item_type = item_type;
    }
    if (file == NULL || file[0] == '\0') {
        *why = c->http ? "HTTP boot client but no http_boot_url is set"
                       : "no boot file is configured for this architecture";
        return false;
    }
    if (strlen(file) > 127) {
        *why = "the boot file name does not fit the 128-byte file field";
        return false;
    }
    plan->boot_file = file;

    /* RFC 2132 section 9.10: never larger than the client said it accepts; older EDK2
     * builds keep offers in 1024-byte buffers whatever option 57 says. */
    gsize max = DHCP_MIN_MAX_MSG;
    gsize mlen;
    const guint8 *mm = dhcp_packet_get(req, DHCP_OPT_MAX_MSG_SIZE, &mlen);
    if (mm != NULL && mlen == 2)
        max = MAX(max, (gsize)(mm[0] << 8 | mm[1]));
    max = MIN(MIN(max, (gsize)1024), cap);

    DhcpWriter w;
    dhcp_writer_init(&w, out, max);
    dhcp_writer_header(&w, DHCP_BOOTREPLY, req->htype, req->hlen, req->xid, req->flags,
                       req->chaddr);
    /* RFC 2131 table 3: ACK echoes ciaddr, OFFER leaves it 0; giaddr is always copied.
     * yiaddr stays 0: we never hand out addresses. */
    if (plan->reply_type == DHCP_ACK)
        dhcp_writer_set_addr(&w, DHCP_OFF_CIADDR, req->ciaddr);
    dhcp_writer_set_addr(&w, DHCP_OFF_GIADDR, req->giaddr);
    dhcp_writer_set_addr(&w, DHCP_OFF_SIADDR, ctx->server_addr);
    if (cfg->sname[0] != '\0')
        dhcp_writer_set_sname(&w, cfg->sname);

    dhcp_writer_option_u8(&w, DHCP_OPT_MSG_TYPE, plan->reply_type);
    dhcp_writer_option(&w, DHCP_OPT_SERVER_ID, ctx->server_addr, 4);
    if (c->http)
        dhcp_writer_option(&w, DHCP_OPT_VENDOR_CLASS, "HTTPClient", 10);
    else
        dhcp_writer_option(&w, DHCP_OPT_VENDOR_CLASS, "PXEClient", 9);
    gsize ulen;
    const guint8 *uuid = dhcp_packet_get(req, DHCP_OPT_CLIENT_UUID, &ulen);
    if (uuid != NULL)
        dhcp_writer_option(&w, DHCP_OPT_CLIENT_UUID, uuid, ulen);

    guint8 sub[512];
    PxeSubWriter sw;
    pxe_sub_init(&sw, sub, sizeof sub);
    bool with_file = true;
    bool with_43 = false;
    if (item_request) {
        /* PXE 2.1: the boot server's ACK echoes the item and layer it answers. */
        pxe_sub_boot_item(&sw, item_type, item_layer);
        with_43 = true;
    } else if (c->http) {
        /* EDK2 HttpBootDxe: a proxy offer with HTTPClient and a URI, nothing else. */
    } else if (profile == PD_PROFILE_MENU) {
        build_menu(cfg, ctx, &sw);
        with_43 = true;
        with_file = false;
    } else if (profile == PD_PROFILE_DIRECT) {
        pxe_sub_u8(&sw, PXE_SUB_DISCOVERY_CONTROL, PXE_DC_BOOT_FILE);
        with_43 = true;
    } else if (plan->reply_type == DHCP_OFFER) {
        /* BINL: no 43 and no file, so EDK2 classes the offer ProxyBinl and asks 4011. */
        with_file = false;
    }
    if (with_43) {
        gsize n = pxe_sub_finish(&sw);
        if (n == 0 || !dhcp_writer_option(&w, DHCP_OPT_VENDOR, sub, n)) {
            *why = "the PXE options do not fit the client's maximum message size";
            return false;
        }
    }
    if (with_file && !dhcp_writer_set_file(&w, file)) {
        *why = "the boot file name does not fit the 128-byte file field";
        return false;
    }
    if (!with_file)
        plan->boot_file = profile == PD_PROFILE_MENU ? file : NULL;
    if (w.overflow) {
        *why = "the reply does not fit the client's maximum message size";
        return false;
    }
    plan->len = dhcp_writer_finish(&w);
    pd_reply_dest(req, ctx, &plan->dest);
    return true;
}
