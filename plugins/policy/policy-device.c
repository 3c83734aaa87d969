/* policy-device.c - normalising what a device tells us about itself. Pure code. */
#include "policy-device.h"

#include <preboot/plugin.h> /* PB_HAS_FIELD */

#include <string.h>

void policy_device_init(PolicyDevice *d)
{
    memset(d, 0, sizeof(*d));
    d->arch = -1;
}

void policy_device_clear(PolicyDevice *d)
{
    g_free(d->serial);
    g_free(d->manufacturer);
    g_free(d->product);
    g_free(d->asset_tag);
    g_free(d->bios_version);
    g_free(d->user_class);
    g_free(d->vendor_class);
    policy_device_init(d);
}

static char *dup_nonempty(const char *s)
{
    if (s == NULL)
        return NULL;
    while (g_ascii_isspace(*s))
        s++;
    if (*s == '\0')
        return NULL;
    char *r = g_strdup(s);
    return g_strchomp(r);
}

void policy_device_from_request(PolicyDevice *d, const pb_policy_request *req)
{
    policy_device_init(d);
    /* Read a field only when the caller's build of the struct holds it. */
    if (!PB_HAS_FIELD(pb_policy_request, req, disk_gb))
        return; /* version 1 is the smallest request there is */
    if (req->mac_len > 0 && req->mac_len <= sizeof(req->mac))
        policy_mac_format(req->mac, req->mac_len, d->mac);
    if (req->has_uuid)
        policy_uuid_format(req->uuid, d->uuid);
    if (req->has_arch)
        d->arch = req->arch;
    /* Version 2 callers pass the addresses as bytes: nothing printed and parsed back. */
    gboolean typed = PB_HAS_FIELD(pb_policy_request, req, relay_addr);
    if (typed && (req->client_family == 4 || req->client_family == 6))
        policy_ip_from_bytes(&d->ip, req->client_family, req->client_addr);
    else if (req->client_ip != NULL)
        policy_ip_parse(req->client_ip, &d->ip);
    if (typed && (req->relay_family == 4 || req->relay_family == 6))
        policy_ip_from_bytes(&d->relay, req->relay_family, req->relay_addr);
    else if (req->relay_ip != NULL)
        policy_ip_parse(req->relay_ip, &d->relay);
    d->user_class = dup_nonempty(req->user_class);
    d->vendor_class = dup_nonempty(req->vendor_class);
    d->serial = dup_nonempty(req->serial);
    if (d->serial != NULL && policy_serial_is_placeholder(d->serial))
        g_clear_pointer(&d->serial, g_free);
    d->manufacturer = dup_nonempty(req->manufacturer);
    d->product = dup_nonempty(req->product);
    d->asset_tag = dup_nonempty(req->asset_tag);
    if (d->asset_tag != NULL && policy_serial_is_placeholder(d->asset_tag))
        g_clear_pointer(&d->asset_tag, g_free);
    d->bios_version = dup_nonempty(req->bios_version);
    d->ram_mb = req->ram_mb;
    d->disk_gb = req->disk_gb;
}

const char *policy_time_text(gint64 unix_s, char *out, gsize len)
{
    g_autoptr(GDateTime) t = unix_s > 0 ? g_date_time_new_from_unix_utc(unix_s) : NULL;
    g_autofree char *s = t ? g_date_time_format(t, "%Y-%m-%d %H:%M:%S") : NULL;
    g_strlcpy(out, s ? s : "-", len);
    return out;
}

void policy_ip_from_bytes(PolicyIp *ip, guint8 family, const guint8 *addr)
{
    memset(ip, 0, sizeof(*ip));
    if (family != 4 && family != 6)
        return;
    ip->family = family;
    memcpy(ip->addr, addr, family == 4 ? 4 : 16);
}

void policy_mac_format(const guint8 *mac, gsize len, char out[24])
{
    out[0] = '\0';
    if (len > 8)
        len = 8; /* 8 * 3 = 24: longer hardware addresses are not Ethernet anyway */
    /* by hand: this runs for every request, and six g_snprintf() calls showed in profiles */
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (gsize i = 0; i < len; i++) {
        if (i > 0)
            *p++ = ':';
        *p++ = hex[mac[i] >> 4];
        *p++ = hex[mac[i] & 15];
    }
    *p = '\0';
}

gboolean policy_mac_normalize(const char *text, char out[24])
{
    guint8 b[6];
    int n = 0, nib = 0;
    out[0] = '\0';
    if (text == NULL)
        return FALSE;
    for (const char *p = text; *p; p++) {
        if (*p == ':' || *p == '-' || *p == '.') {
            if (nib == 1) { /* "0:1:2:3:4:5" style single-digit octets */
                n++;
                nib = 0;
            }
            continue;
        }
        int v = g_ascii_xdigit_value(*p);
        if (v < 0 || n >= 6)
            return FALSE;
        if (nib == 0)
            b[n] = (guint8)v;
        else
            b[n] = (guint8)(b[n] << 4 | v);
        if (++nib == 2) {
            n++;
            nib = 0;
        }
    }
    if (nib == 1)
        n++;
    if (n != 6)
        return FALSE;
    policy_mac_format(b, 6, out);
    return TRUE;
}

void policy_uuid_format(const guint8 *u, char out[40])
{
    gboolean all0 = TRUE, allf = TRUE;
    for (int i = 0; i < 16; i++) {
        all0 &= u[i] == 0;
        allf &= u[i] == 0xff;
    }
    if (all0 || allf) {
        out[0] = '\0';
        return;
    }
    /* the byte order of "%02x%02x%02x%02x-%02x%02x-%02x%02x-..." with u[3], u[2], u[1], u[0],
     * u[5], u[4], u[7], u[6], u[8]...; by hand, as policy_mac_format() */
    static const guint8 order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[u[order[i]] >> 4];
        *p++ = hex[u[order[i]] & 15];
    }
    *p = '\0';
}

gboolean policy_uuid_normalize(const char *text, char out[40])
{
    char hex[33];
    int n = 0;
    out[0] = '\0';
    if (text == NULL)
        return FALSE;
    for (const char *p = text; *p; p++) {
        if (*p == '-' || *p == '{' || *p == '}' || g_ascii_isspace(*p))
            continue;
        if (!g_ascii_isxdigit(*p) || n >= 32)
            return FALSE;
        hex[n++] = g_ascii_tolower(*p);
    }
    if (n != 32)
        return FALSE;
    hex[32] = '\0';
    if (strspn(hex, "0") == 32 || strspn(hex, "f") == 32)
        return FALSE;
    g_snprintf(out, 40, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
    return TRUE;
}

gboolean policy_serial_is_placeholder(const char *s)
{
    static const char *const junk[] = {
        "to be filled by o.e.m.",
        "to be filled by oem",
        "default string",
        "system serial number",
        "not specified",
        "not applicable",
        "none",
        "n/a",
        "na",
        "0123456789",
        "123456789",
        "chassis serial number",
        "base board serial number",
        "serial number",
        "invalid",
        "empty",
        "unknown",
        "oem",
        "o.e.m.",
        "xxxxxxxxxx",
    };
    if (s == NULL)
        return TRUE;
    g_autofree char *t = g_strstrip(g_ascii_strdown(s, -1));
    if (*t == '\0')
        return TRUE;
    for (gsize i = 0; i < G_N_ELEMENTS(junk); i++)
        if (strcmp(t, junk[i]) == 0)
            return TRUE;
    /* All one repeated filler character: "00000000", "FFFFFFFF", "........", "     " */
    gboolean same = TRUE;
    for (const char *p = t + 1; *p; p++)
        same &= *p == t[0];
    return same && (t[0] == '0' || t[0] == 'f' || t[0] == '.' || t[0] == ' ' || t[0] == '-' ||
                    t[0] == 'x' || t[0] == '*');
}

static gboolean parse_v4(const char *s, guint8 out[4])
{
    int parts = 0;
    const char *p = s;
    while (parts < 4) {
        if (!g_ascii_isdigit(*p))
            return FALSE;
        unsigned v = 0;
        int digits = 0;
        while (g_ascii_isdigit(*p)) {
            v = v * 10 + (unsigned)(*p - '0');
            if (++digits > 3 || v > 255)
                return FALSE;
            p++;
        }
        out[parts++] = (guint8)v;
        if (parts < 4) {
            if (*p != '.')
                return FALSE;
            p++;
        }
    }
    return *p == '\0';
}

static gboolean parse_v6(const char *s, guint8 out[16])
{
    guint16 words[8] = {0};
    int n = 0, gap = -1;
    const char *p = s;
    if (p[0] == ':') {
        if (p[1] != ':')
            return FALSE;
        p++;
    }
    while (*p) {
        if (*p == ':') {
            if (gap >= 0)
                return FALSE;
            gap = n;
            p++;
            if (*p == '\0')
                break;
            continue;
        }
        if (n >= 8)
            return FALSE;
        /* An embedded IPv4 tail: ::ffff:192.0.2.1 */
        const char *dot = strchr(p, '.');
        const char *colon = strchr(p, ':');
        if (dot != NULL && (colon == NULL || dot < colon)) {
            guint8 v4[4];
            if (n > 6 || !parse_v4(p, v4))
                return FALSE;
            words[n++] = (guint16)(v4[0] << 8 | v4[1]);
            words[n++] = (guint16)(v4[2] << 8 | v4[3]);
            p += strlen(p);
            break;
        }
        unsigned v = 0;
        int digits = 0;
        while (g_ascii_isxdigit(*p)) {
            v = v << 4 | (unsigned)g_ascii_xdigit_value(*p);
            if (++digits > 4)
                return FALSE;
            p++;
        }
        if (digits == 0)
            return FALSE;
        words[n++] = (guint16)v;
        if (*p == ':') {
            p++;
            if (*p == '\0')
                return FALSE;
            if (*p == ':') {
                if (gap >= 0)
                    return FALSE;
                gap = n;
                p++;
            }
        } else if (*p != '\0') {
            return FALSE;
        }
    }
    if (gap < 0 && n != 8)
        return FALSE;
    if (gap >= 0 && n >= 8)
        return FALSE;
    guint16 full[8] = {0};
    if (gap < 0) {
        memcpy(full, words, sizeof(full));
    } else {
        int tail = n - gap;
        memcpy(full, words, (gsize)gap * 2);
        memcpy(full + 8 - tail, words + gap, (gsize)tail * 2);
    }
    for (int i = 0; i < 8; i++) {
        out[2 * i] = (guint8)(full[i] >> 8);
        out[2 * i + 1] = (guint8)full[i];
    }
    return TRUE;
}

gboolean policy_ip_parse(const char *text, PolicyIp *out)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL || *text == '\0')
        return FALSE;
    if (strchr(text, ':') != NULL) {
        if (!parse_v6(text, out->addr))
            return FALSE;
        out->family = 6;
        return TRUE;
    }
    if (!parse_v4(text, out->addr))
        return FALSE;
    out->family = 4;
    return TRUE;
}

gboolean policy_cidr_parse(const char *text, PolicyIp *net, guint *prefix)
{
    g_autofree char *copy = g_strstrip(g_strdup(text ? text : ""));
    char *slash = strchr(copy, '/');
    if (slash != NULL)
        *slash++ = '\0';
    if (!policy_ip_parse(copy, net))
        return FALSE;
    guint max = net->family == 4 ? 32 : 128;
    if (slash == NULL) {
        *prefix = max;
        return TRUE;
    }
    if (*slash == '\0' || strlen(slash) > 3)
        return FALSE;
    guint v = 0;
    for (const char *p = slash; *p; p++) {
        if (!g_ascii_isdigit(*p))
            return FALSE;
        v = v * 10 + (guint)(*p - '0');
    }
    if (v > max)
        return FALSE;
    *prefix = v;
    return TRUE;
}

gboolean policy_ip_in(const PolicyIp *ip, const PolicyIp *net, guint prefix)
{
    const guint8 *a = ip->addr;
    guint8 mapped[4];
    if (ip->family == 0 || net->family == 0)
        return FALSE;
    if (ip->family != net->family) {
        /* An IPv4 client seen through a dual-stack socket as ::ffff:a.b.c.d */
        static const guint8 v4map[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!(ip->family == 6 && net->family == 4 && memcmp(ip->addr, v4map, 12) == 0))
            return FALSE;
        memcpy(mapped, ip->addr + 12, 4);
        a = mapped;
    }
    guint full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net->addr, full) != 0)
        return FALSE;
    if (rest == 0)
        return TRUE;
    guint8 mask = (guint8)(0xff << (8 - rest));
    return (a[full] & mask) == (net->addr[full] & mask);
}

static const struct {
    const char *name;
    int arch;
} arch_names[] = {
    /* IANA "Processor Architecture Types" registry, referenced by RFC 4578 section 2.1 */
    {"bios", 0},           {"x86", 0},           {"x86-bios", 0},        {"pc98", 1},
    {"itanium", 2},        {"efi-ia64", 2},      {"alpha", 3},           {"arc-x86", 4},
    {"intel-lean", 5},     {"efi-ia32", 6},      {"efi-x64", 7},         {"efi-x86-64", 7},
    {"efi-xscale", 8},     {"efi-bc", 9},        {"efi-arm32", 10},      {"efi-arm64", 11},
    {"efi-ia32-http", 15}, {"efi-x64-http", 16}, {"efi-arm32-http", 18}, {"efi-arm64-http", 19},
    {"bios-http", 20},     {"efi-riscv64", 27},
};

int policy_arch_parse(const char *text)
{
    if (text == NULL || *text == '\0')
        return -1;
    gboolean digits = TRUE;
    for (const char *p = text; *p; p++)
        digits &= g_ascii_isdigit(*p) != 0;
    if (digits && strlen(text) <= 5) {
        int v = atoi(text);
        return v <= 0xffff ? v : -1;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(arch_names); i++)
        if (g_ascii_strcasecmp(text, arch_names[i].name) == 0)
            return arch_names[i].arch;
    return -1;
}

const char *policy_arch_name(int arch)
{
    for (gsize i = 0; i < G_N_ELEMENTS(arch_names); i++)
        if (arch_names[i].arch == arch)
            return arch_names[i].name;
    return NULL;
}

static void prefixed(char *out, gsize len, const char *prefix, const char *value)
{
    gsize n = g_strlcpy(out, prefix, len);
    if (n < len)
        g_strlcpy(out + n, value, len - n);
}

gboolean policy_device_identity(const PolicyDevice *d, char *out, gsize len)
{
    if (d->uuid[0])
        prefixed(out, len, "uuid:", d->uuid);
    else if (d->serial != NULL)
        prefixed(out, len, "serial:", d->serial);
    else if (d->mac[0])
        prefixed(out, len, "mac:", d->mac);
    else {
        if (len > 0)
            out[0] = '\0';
        return FALSE;
    }
    return TRUE;
}

gboolean policy_device_key_parse(const char *text, char *out, gsize len)
{
    char norm[40];
    if (text == NULL)
        return FALSE;
    if (g_str_has_prefix(text, "mac:"))
        return policy_mac_normalize(text + 4, norm) && (g_snprintf(out, len, "mac:%s", norm), TRUE);
    if (g_str_has_prefix(text, "uuid:"))
        return policy_uuid_normalize(text + 5, norm) &&
               (g_snprintf(out, len, "uuid:%s", norm), TRUE);
    if (g_str_has_prefix(text, "serial:")) {
        if (policy_serial_is_placeholder(text + 7))
            return FALSE;
        g_snprintf(out, len, "serial:%s", text + 7);
        return TRUE;
    }
    if (policy_mac_normalize(text, norm)) {
        g_snprintf(out, len, "mac:%s", norm);
        return TRUE;
    }
    if (policy_uuid_normalize(text, norm)) {
        g_snprintf(out, len, "uuid:%s", norm);
        return TRUE;
    }
    return FALSE;
}
