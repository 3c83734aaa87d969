/* policy-device.h - what the engine knows about one booting device, normalised: MACs as
 * "52:54:00:12:34:56", UUIDs in lower case 8-4-4-4-12, placeholders dropped. Pure code. */
#pragma once

#include <glib.h>
#include <preboot/policy.h>

G_BEGIN_DECLS

typedef struct {
    guint8 family;   /* 0 = unknown, 4, 6 */
    guint8 addr[16]; /* network order */
} PolicyIp;

typedef struct {
    char mac[24];  /* "" = unknown */
    char uuid[40]; /* "" = unknown or placeholder */
    char *serial;  /* NULL = unknown or placeholder; the rest NULL = unknown */
    char *manufacturer;
    char *product;
    char *asset_tag;
    char *bios_version;
    char *user_class;
    char *vendor_class;
    int arch; /* -1 = unknown */
    PolicyIp ip;
    PolicyIp relay;
    guint64 ram_mb;  /* 0 = unknown */
    guint64 disk_gb; /* 0 = unknown */
} PolicyDevice;

void policy_device_init(PolicyDevice *d);
void policy_device_clear(PolicyDevice *d);
/* Fills d from a service request (copying only what req->struct_size covers). */
void policy_device_from_request(PolicyDevice *d, const pb_policy_request *req);

/* "52-54-00-12-34-56", "525400123456", "52:54:00:12:34:56" -> "52:54:00:12:34:56". */
gboolean policy_mac_normalize(const char *text, char out[24]);
void policy_mac_format(const guint8 *mac, gsize len, char out[24]);
/* Parses a UUID in text form (with or without hyphens or braces). Placeholders (all zero,
 * all F) give FALSE and an empty out. */
gboolean policy_uuid_normalize(const char *text, char out[40]);
/* Formats option 97's 16 bytes the way SMBIOS 2.6+, dmidecode and iPXE's ${uuid} print
 * them: the first three fields are little-endian on the wire (SMBIOS 7.2.1). */
void policy_uuid_format(const guint8 *bytes, char out[40]);
/* Firmware placeholders that identify nothing: "To be filled by O.E.M.", "Default string",
 * "0123456789", "System Serial Number", all zeros / all F / blanks. */
gboolean policy_serial_is_placeholder(const char *serial);
gboolean policy_ip_parse(const char *text, PolicyIp *out);
/* An address as bytes (family 4: the first 4 of addr; 6: all 16); any other family: unknown. */
void policy_ip_from_bytes(PolicyIp *ip, guint8 family, const guint8 *addr);
/* "10.0.0.0/8", "2001:db8::/32" or a bare address. FALSE on a bad text. */
gboolean policy_cidr_parse(const char *text, PolicyIp *net, guint *prefix);
gboolean policy_ip_in(const PolicyIp *ip, const PolicyIp *net, guint prefix);

/* Unix seconds as "2026-12-07 01:02:03" (UTC), the one way prebootctl's policy commands
 * print a time; "-" for 0 (never). Returns out. */
const char *policy_time_text(gint64 unix_s, char *out, gsize len);

/* RFC 4578 section 2.1 architecture names: "bios"/"x86", "efi-ia32", "efi-x64",
 * "efi-bc", "efi-arm32", "efi-arm64", "efi-x64-http" (RFC 7.. IANA registry), or a number.
 * Returns -1 for an unknown name. */
int policy_arch_parse(const char *text);
const char *policy_arch_name(int arch);

/* The identity the engine records the device under: uuid, then serial, then MAC. Writes
 * "uuid:...", "serial:..." or "mac:..."; FALSE (and "") when the device has none. */
gboolean policy_device_identity(const PolicyDevice *d, char *out, gsize len);

/* Parses a DEVICE argument of `prebootctl policy ...`: a MAC, a UUID, "serial:X",
 * "mac:X", "uuid:X". Fills a key like policy_device_identity() does. */
gboolean policy_device_key_parse(const char *text, char *out, gsize len);

G_END_DECLS
