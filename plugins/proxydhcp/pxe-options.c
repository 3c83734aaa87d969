/* pxe-options.c - PXE client options: RFC 4578, PXE 2.1 section 2.2.5, iPXE's marks. */
#include "pxe-options.h"

#include <string.h>

PxeArchClass pxe_arch_class(int arch)
{
    switch (arch) {
    case PXE_ARCH_X86_BIOS:
    case PXE_ARCH_X86_BIOS_HTTP:
        return PXE_ARCH_CLASS_BIOS;
    case PXE_ARCH_IA32_EFI:
    case PXE_ARCH_IA32_EFI_HTTP:
        return PXE_ARCH_CLASS_EFI_IA32;
    case PXE_ARCH_X64_EFI:
    case PXE_ARCH_EBC: /* see pxe-options.h: early EDK2 x64 builds */
    case PXE_ARCH_X64_EFI_HTTP:
    case PXE_ARCH_EBC_HTTP:
        return PXE_ARCH_CLASS_EFI_X64;
    case PXE_ARCH_ARM64_EFI:
    case PXE_ARCH_ARM64_EFI_HTTP:
        return PXE_ARCH_CLASS_EFI_ARM64;
    case PXE_ARCH_ARM32_EFI:
    case PXE_ARCH_ARM32_EFI_HTTP:
        return PXE_ARCH_CLASS_EFI_ARM32;
    default:
        return PXE_ARCH_CLASS_UNKNOWN;
    }
}

bool pxe_arch_is_http(int arch)
{
    return arch >= PXE_ARCH_IA32_EFI_HTTP && arch <= PXE_ARCH_X86_BIOS_HTTP;
}

const char *pxe_arch_class_name(PxeArchClass c)
{
    static const char *const names[PXE_ARCH_CLASS_N] = {
        "bios", "efi-ia32", "efi-x64", "efi-arm64", "efi-arm32", "unknown",
    };
    return (unsigned)c < PXE_ARCH_CLASS_N ? names[c] : "unknown";
}

/* Reads exactly n decimal digits; -1 if any is not a digit. */
static int read_digits(const guint8 *p, gsize n)
{
    int v = 0;
    for (gsize i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

void pxe_parse_vendor_class(const guint8 *v, gsize len, PxeVendorClass *out)
{
    memset(out, 0, sizeof *out);
    out->arch = out->undi_major = out->undi_minor = -1;
    if (v == NULL)
        return;
    /* Both prefixes are 9 and 10 characters; PXE 2.1 fixes the field layout after them:
     * "PXEClient:Arch:xxxxx:UNDI:yyyzzz" (5 arch digits, 3+3 UNDI digits). */
    gsize plen;
    if (len >= 9 && memcmp(v, "PXEClient", 9) == 0) {
        out->kind = PXE_VC_PXE;
        plen = 9;
    } else if (len >= 10 && memcmp(v, "HTTPClient", 10) == 0) {
        out->kind = PXE_VC_HTTP;
        plen = 10;
    } else {
        return;
    }
    const guint8 *t = v + plen;
    gsize rest = len - plen;
    if (rest >= 11 && memcmp(t, ":Arch:", 6) == 0) {
        out->arch = read_digits(t + 6, 5);
        t += 11;
        rest -= 11;
        if (rest >= 12 && memcmp(t, ":UNDI:", 6) == 0) {
            out->undi_major = read_digits(t + 6, 3);
            out->undi_minor = read_digits(t + 9, 3);
            if (out->undi_major < 0 || out->undi_minor < 0)
                out->undi_major = out->undi_minor = -1;
        }
    }
}

int pxe_parse_client_arch(const guint8 *v, gsize len)
{
    if (v == NULL || len < 2 || len % 2 != 0)
        return -1;
    return v[0] << 8 | v[1];
}

static bool contains(const guint8 *hay, gsize n, const char *needle)
{
    gsize k = strlen(needle);
    for (gsize i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return true;
    return false;
}

bool pxe_is_ipxe(const DhcpPacket *p)
{
    if (dhcp_packet_has(p, DHCP_OPT_IPXE_ENCAP))
        return true;
    gsize len;
    const guint8 *uc = dhcp_packet_get(p, DHCP_OPT_USER_CLASS, &len);
    /* Bare "iPXE" (what iPXE sends) or RFC 3004 instances one of which is "iPXE"; a
     * substring search covers both without misreading the length bytes. */
    return uc != NULL && contains(uc, len, "iPXE");
}

bool pxe_parse_vendor_options(const guint8 *v, gsize len, PxeVendorOptions *out)
{
    memset(out, 0, sizeof *out);
    gsize i = 0;
    while (i < len) {
        guint8 code = v[i++];
        if (code == 0)
            continue;
        if (code == PXE_SUB_END)
            return true;
        if (i >= len)
            return false;
        guint8 sl = v[i++];
        if (sl > len - i)
            return false;
        const guint8 *d = v + i;
        if (code == PXE_SUB_BOOT_ITEM && sl >= 4) {
            out->has_boot_item = true;
            out->item_type = (guint16)(d[0] << 8 | d[1]);
            out->item_layer = (guint16)(d[2] << 8 | d[3]);
        } else if (code == PXE_SUB_DISCOVERY_CONTROL && sl >= 1) {
            out->has_discovery_control = true;
            out->discovery_control = d[0];
        }
        i += sl;
    }
    return true;
}

void pxe_sub_init(PxeSubWriter *w, guint8 *buf, gsize cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->menu_hdr = 0;
    w->full = false;
}

static void put(PxeSubWriter *w, const void *data, gsize n)
{
    if (w->full || n > w->cap - w->len) {
        w->full = true;
        return;
    }
    memcpy(w->buf + w->len, data, n);
    w->len += n;
}

static void put_u8(PxeSubWriter *w, guint8 v)
{
    put(w, &v, 1);
}

static void put_u16(PxeSubWriter *w, guint16 v)
{
    guint8 b[2] = {(guint8)(v >> 8), (guint8)v};
    put(w, b, 2);
}

void pxe_sub_add(PxeSubWriter *w, guint8 code, const void *data, gsize len)
{
    if (len > 255) {
        w->full = true;
        return;
    }
    put_u8(w, code);
    put_u8(w, (guint8)len);
    put(w, data, len);
}

void pxe_sub_u8(PxeSubWriter *w, guint8 code, guint8 v)
{
    pxe_sub_add(w, code, &v, 1);
}

void pxe_sub_boot_server(PxeSubWriter *w, guint16 type, const guint8 addr[4])
{
    guint8 b[7] = {(guint8)(type >> 8), (guint8)type, 1, addr[0], addr[1], addr[2], addr[3]};
    pxe_sub_add(w, PXE_SUB_BOOT_SERVERS, b, sizeof b);
}

/* The menu's length byte is patched in pxe_sub_menu_end(). */
void pxe_sub_menu_begin(PxeSubWriter *w)
{
    w->menu_hdr = w->len;
    put_u8(w, PXE_SUB_BOOT_MENU);
    put_u8(w, 0);
}

void pxe_sub_menu_item(PxeSubWriter *w, guint16 type, const char *desc)
{
    gsize n = MIN(strlen(desc), 255);
    put_u16(w, type);
    put_u8(w, (guint8)n);
    put(w, desc, n);
}

void pxe_sub_menu_end(PxeSubWriter *w)
{
    if (w->full)
        return;
    gsize body = w->len - w->menu_hdr - 2;
    if (body > 255) {
        w->full = true;
        return;
    }
    w->buf[w->menu_hdr + 1] = (guint8)body;
}

void pxe_sub_prompt(PxeSubWriter *w, guint8 timeout, const char *prompt)
{
    gsize n = MIN(strlen(prompt), 254);
    put_u8(w, PXE_SUB_MENU_PROMPT);
    put_u8(w, (guint8)(n + 1));
    put_u8(w, timeout);
    put(w, prompt, n);
}

void pxe_sub_boot_item(PxeSubWriter *w, guint16 type, guint16 layer)
{
    guint8 b[4] = {(guint8)(type >> 8), (guint8)type, (guint8)(layer >> 8), (guint8)layer};
    pxe_sub_add(w, PXE_SUB_BOOT_ITEM, b, sizeof b);
}

gsize pxe_sub_finish(PxeSubWriter *w)
{
    put_u8(w, PXE_SUB_END);
    return w->full ? 0 : w->len;
}
