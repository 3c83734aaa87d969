/* pxe-options.h - the options a PXE client speaks: the vendor class (option 60,
 * "PXEClient:Arch:xxxxx:UNDI:yyyzzz", PXE 2.1 section 2.2.5), client architecture and
 * network interface (RFC 4578 options 93 and 94), UUID (97), iPXE's marks (77, 175), and
 * the PXE vendor sub-options carried in option 43 (PXE 2.1 table 2-1: 6, 8, 9, 10, 71).
 * Pure functions over byte ranges; nothing here touches a socket. */
#pragma once

#include "dhcp-packet.h"

G_BEGIN_DECLS

/* RFC 4578 section 2.1 and the IANA "Processor Architecture Types" registry. */
enum {
    PXE_ARCH_X86_BIOS = 0,
    PXE_ARCH_IA32_EFI = 6,
    PXE_ARCH_X64_EFI = 7,
    PXE_ARCH_EBC = 9, /* EDK2 before 2015 sent 9 from x64 machines: treat as x64 */
    PXE_ARCH_ARM32_EFI = 10,
    PXE_ARCH_ARM64_EFI = 11,
    PXE_ARCH_IA32_EFI_HTTP = 15,
    PXE_ARCH_X64_EFI_HTTP = 16,
    PXE_ARCH_EBC_HTTP = 17,
    PXE_ARCH_ARM32_EFI_HTTP = 18,
    PXE_ARCH_ARM64_EFI_HTTP = 19,
    PXE_ARCH_X86_BIOS_HTTP = 20,
};

/* What a boot file is chosen by. */
typedef enum {
    PXE_ARCH_CLASS_BIOS = 0,
    PXE_ARCH_CLASS_EFI_IA32,
    PXE_ARCH_CLASS_EFI_X64,
    PXE_ARCH_CLASS_EFI_ARM64,
    PXE_ARCH_CLASS_EFI_ARM32,
    PXE_ARCH_CLASS_UNKNOWN,
} PxeArchClass;
#define PXE_ARCH_CLASS_N (PXE_ARCH_CLASS_UNKNOWN + 1)

PxeArchClass pxe_arch_class(int arch);
bool pxe_arch_is_http(int arch);
/* "bios", "efi-ia32", "efi-x64", "efi-arm64", "efi-arm32", "unknown". */
const char *pxe_arch_class_name(PxeArchClass c);

typedef enum {
    PXE_VC_NONE = 0, /* not a PXE client: ignore */
    PXE_VC_PXE,      /* "PXEClient..." */
    PXE_VC_HTTP,     /* "HTTPClient..." (UEFI HTTP boot) */
} PxeVendorKind;

typedef struct {
    PxeVendorKind kind;
    int arch;       /* the Arch: field, or -1 when absent or malformed */
    int undi_major; /* the UNDI: field, or -1 */
    int undi_minor;
} PxeVendorClass;

/* Option 60. Only the prefix decides the kind; a malformed tail leaves arch -1. */
void pxe_parse_vendor_class(const guint8 *v, gsize len, PxeVendorClass *out);

/* Option 93: the first architecture listed, or -1 when the option is empty or has an odd
 * length (RFC 4578 section 2.1: a list of 16-bit types). */
int pxe_parse_client_arch(const guint8 *v, gsize len);

/* Option 77 or 175 marks an iPXE client (iPXE sends option 77 as the bare string "iPXE",
 * not in RFC 3004 form; accept either). */
bool pxe_is_ipxe(const DhcpPacket *p);

/* ---- option 43 (PXE vendor sub-options) ---------------------------------------------- */

enum {
    PXE_SUB_DISCOVERY_CONTROL = 6,
    PXE_SUB_BOOT_SERVERS = 8,
    PXE_SUB_BOOT_MENU = 9,
    PXE_SUB_MENU_PROMPT = 10,
    PXE_SUB_BOOT_ITEM = 71,
    PXE_SUB_END = 255,
};

/* PXE 2.1 section 2.2.5 table 2-1, PXE_DISCOVERY_CONTROL bits. */
enum {
    PXE_DC_NO_BROADCAST = 1u << 0,
    PXE_DC_NO_MULTICAST = 1u << 1,
    PXE_DC_ONLY_LISTED = 1u << 2,
    PXE_DC_BOOT_FILE = 1u << 3, /* boot the file in the offer at once, no menu */
};

#define PXE_LAYER_CREDENTIALS 0x8000u /* layer bit 15 asks for credentials */
#define PXE_TYPE_LOCAL_BOOT   0u      /* menu item type 0: boot from the local disk */
#define PXE_TYPE_VENDOR_BASE  0x8000u /* 0x8000-0xfffe: vendor-defined server types */

typedef struct {
    bool has_boot_item;
    guint16 item_type;
    guint16 item_layer;
    bool has_discovery_control;
    guint8 discovery_control;
} PxeVendorOptions;

/* Parses option 43 as PXE sub-options. Returns false when the encapsulation is broken
 * (a sub-option runs past the end); what was read before the break is kept. */
bool pxe_parse_vendor_options(const guint8 *v, gsize len, PxeVendorOptions *out);

/* Builds option 43 contents. A builder on a caller buffer; too much data sets 'full'. */
typedef struct {
    guint8 *buf;
    gsize cap, len;
    gsize menu_hdr;
    bool full;
} PxeSubWriter;

void pxe_sub_init(PxeSubWriter *w, guint8 *buf, gsize cap);
void pxe_sub_add(PxeSubWriter *w, guint8 code, const void *data, gsize len);
void pxe_sub_u8(PxeSubWriter *w, guint8 code, guint8 v);
/* 43.8: one server type with one address. */
void pxe_sub_boot_server(PxeSubWriter *w, guint16 type, const guint8 addr[4]);
/* 43.9 is one option holding every item; call begin, item..., end. */
void pxe_sub_menu_begin(PxeSubWriter *w);
void pxe_sub_menu_item(PxeSubWriter *w, guint16 type, const char *desc);
void pxe_sub_menu_end(PxeSubWriter *w);
void pxe_sub_prompt(PxeSubWriter *w, guint8 timeout, const char *prompt);
void pxe_sub_boot_item(PxeSubWriter *w, guint16 type, guint16 layer);
/* Appends the END sub-option (PXE 2.1: the vendor options list ends with 255). */
gsize pxe_sub_finish(PxeSubWriter *w);

G_END_DECLS
