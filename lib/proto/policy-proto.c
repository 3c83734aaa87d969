/* policy-proto.c - the policy UDP protocol, version 1 (doc/protocols.md). Pure code. */
#include "policy-proto.h"

#include <string.h>

void policy_msg_init(PolicyMsg *m)
{
    memset(m, 0, sizeof(*m));
}

void policy_msg_clear(PolicyMsg *m)
{
    g_free(m->user_class);
    g_free(m->vendor_class);
    g_free(m->serial);
    g_free(m->manufacturer);
    g_free(m->product);
    g_free(m->asset_tag);
    g_free(m->bios_version);
    g_free(m->image);
    g_free(m->error_text);
    policy_msg_init(m);
}

const char *policy_parse_result_text(PolicyParseResult r)
{
    switch (r) {
    case POLICY_PARSE_OK:
        return "ok";
    case POLICY_PARSE_NOT_OURS:
        return "not a policy protocol datagram";
    case POLICY_PARSE_VERSION:
        return "unsupported protocol version";
    case POLICY_PARSE_BAD_TYPE:
        return "unknown message type";
    case POLICY_PARSE_TRUNCATED:
        return "truncated option";
    case POLICY_PARSE_BAD_VALUE:
        return "malformed option";
    }
    return "?";
}

static guint32 be32(const guint8 *p)
{
    return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

static gboolean take_text(const guint8 *v, guint8 len, char **slot)
{
    if (memchr(v, '\0', len) != NULL || !g_utf8_validate((const char *)v, len, NULL))
        return FALSE;
    g_free(*slot);
    /* An empty text is the same as an absent one (the builder never sends either). */
    *slot = len > 0 ? g_strndup((const char *)v, len) : NULL;
    return TRUE;
}

static gboolean take_ip(const guint8 *v, guint8 len, PbAddr *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (len == 4)
        ip->family = 4;
    else if (len == 16)
        ip->family = 6;
    else
        return FALSE;
    memcpy(ip->addr, v, len);
    return TRUE;
}

static gboolean is_known_type(guint8 t)
{
    return t == POLICY_MSG_DECIDE || t == POLICY_MSG_DECIDE_COMMIT || t == POLICY_MSG_REPORT ||
           t == POLICY_MSG_DECIDE_CONSUME || t == POLICY_MSG_DECISION ||
           t == POLICY_MSG_REPORT_OK || t == POLICY_MSG_ERROR;
}

PolicyParseResult policy_msg_parse(const guint8 *data, gsize len, PolicyMsg *m)
{
    policy_msg_init(m);
    if (data == NULL || len < POLICY_PROTO_HEADER || memcmp(data, POLICY_PROTO_MAGIC, 4) != 0)
        return POLICY_PARSE_NOT_OURS;
    m->version = data[4];
    m->type = data[5];
    /* data[6..7]: flags, reserved (sent as zero, ignored on receipt) */
    m->id = be32(data + 8);
    if (m->version != POLICY_PROTO_VERSION)
        return POLICY_PARSE_VERSION;
    if (!is_known_type(m->type))
        return POLICY_PARSE_BAD_TYPE;
    if (m->type == POLICY_MSG_DECISION)
        m->decision.struct_size = sizeof(m->decision);

    gsize off = POLICY_PROTO_HEADER;
    while (off < len) {
        if (len - off < 2)
            return POLICY_PARSE_TRUNCATED;
        guint8 t = data[off], l = data[off + 1];
        const guint8 *v = data + off + 2;
        if (len - off - 2 < l)
            return POLICY_PARSE_TRUNCATED;
        off += 2u + l;
        gboolean ok = TRUE;
        pb_policy_decision *d = &m->decision;
        switch (t) {
        case POLICY_TLV_MAC:
            ok = l >= 1 && l <= sizeof(m->mac);
            if (ok) {
                memset(m->mac, 0, sizeof(m->mac));
                memcpy(m->mac, v, l);
                m->mac_len = l;
            }
            break;
        case POLICY_TLV_UUID:
            ok = l == 16;
            if (ok) {
                memcpy(m->uuid, v, 16);
                m->has_uuid = TRUE;
            }
            break;
        case POLICY_TLV_ARCH:
            ok = l == 2;
            if (ok) {
                m->arch = (guint16)(v[0] << 8 | v[1]);
                m->has_arch = TRUE;
            }
            break;
        case POLICY_TLV_CLIENT_IP:
            ok = take_ip(v, l, &m->client_ip);
            break;
        case POLICY_TLV_RELAY_IP:
            ok = take_ip(v, l, &m->relay_ip);
            break;
        case POLICY_TLV_USER_CLASS:
            ok = take_text(v, l, &m->user_class);
            break;
        case POLICY_TLV_VENDOR_CLASS:
            ok = take_text(v, l, &m->vendor_class);
            break;
        case POLICY_TLV_SERIAL:
            ok = take_text(v, l, &m->serial);
            break;
        case POLICY_TLV_MANUFACTURER:
            ok = take_text(v, l, &m->manufacturer);
            break;
        case POLICY_TLV_PRODUCT:
            ok = take_text(v, l, &m->product);
            break;
        case POLICY_TLV_ASSET_TAG:
            ok = take_text(v, l, &m->asset_tag);
            break;
        case POLICY_TLV_BIOS_VERSION:
            ok = take_text(v, l, &m->bios_version);
            break;
        case POLICY_TLV_IMAGE:
            ok = take_text(v, l, &m->image);
            break;
        case POLICY_TLV_RAM_MB:
            ok = l == 4;
            if (ok)
                m->ram_mb = be32(v);
            break;
        case POLICY_TLV_DISK_GB:
            ok = l == 4;
            if (ok)
                m->disk_gb = be32(v);
            break;
        case POLICY_TLV_EVENT:
            ok = l == 1;
            if (ok)
                m->event = v[0];
            break;
        case POLICY_TLV_ACTION:
            ok = l == 1 && v[0] <= PB_POLICY_BOOT;
            if (ok) {
                d->action = v[0];
                m->has_action = TRUE;
            }
            break;
        case POLICY_TLV_MENU:
            ok = l == 1 && v[0] <= PB_POLICY_MENU_ALWAYS;
            if (ok)
                d->menu = v[0];
            break;
        case POLICY_TLV_MENU_TIMEOUT:
            ok = l == 2;
            if (ok)
                d->menu_timeout_s = (guint32)(v[0] << 8 | v[1]);
            break;
        case POLICY_TLV_WORK:
            ok = l == 1 && v[0] <= PB_POLICY_WORK_PROGRAM;
            if (ok)
                d->work = v[0];
            break;
        case POLICY_TLV_FLAGS:
            ok = l == 4;
            if (ok)
                d->flags = be32(v);
            break;
        case POLICY_TLV_BOOT_FILE:
        case POLICY_TLV_WORK_ARG:
        case POLICY_TLV_MENU_NAME:
        case POLICY_TLV_RULE:
        case POLICY_TLV_DEVICE_ID: {
            char *s = NULL;
            ok = take_text(v, l, &s);
            if (ok && s == NULL)
                s = g_strdup("");
            if (ok) {
                char *dst = t == POLICY_TLV_BOOT_FILE   ? d->boot_file
                            : t == POLICY_TLV_WORK_ARG  ? d->work_arg
                            : t == POLICY_TLV_MENU_NAME ? d->menu_name
                            : t == POLICY_TLV_RULE      ? d->rule
                                                        : d->device_id;
                gsize cap = t == POLICY_TLV_BOOT_FILE   ? sizeof(d->boot_file)
                            : t == POLICY_TLV_WORK_ARG  ? sizeof(d->work_arg)
                            : t == POLICY_TLV_MENU_NAME ? sizeof(d->menu_name)
                            : t == POLICY_TLV_RULE      ? sizeof(d->rule)
                                                        : sizeof(d->device_id);
                g_strlcpy(dst, s, cap);
            }
            g_free(s);
            break;
        }
        case POLICY_TLV_ERROR_TEXT:
            ok = take_text(v, l, &m->error_text);
            break;
        default:
            /* Unknown options are skipped: a newer peer may send more (doc/protocols.md). */
            break;
        }
        if (!ok)
            return POLICY_PARSE_BAD_VALUE;
    }
    return POLICY_PARSE_OK;
}

static void put_tlv(GByteArray *out, guint8 t, const void *v, gsize len)
{
    if (len > 255)
        len = 255;
    guint8 h[2] = {t, (guint8)len};
    g_byte_array_append(out, h, 2);
    g_byte_array_append(out, v, (guint)len);
}

static void put_text(GByteArray *out, guint8 t, const char *s)
{
    if (s != NULL && *s != '\0')
        put_tlv(out, t, s, strlen(s));
}

static void put_u8(GByteArray *out, guint8 t, guint8 v)
{
    put_tlv(out, t, &v, 1);
}

static void put_u16(GByteArray *out, guint8 t, guint32 v)
{
    guint8 b[2] = {(guint8)(v >> 8), (guint8)v};
    put_tlv(out, t, b, 2);
}

static void put_u32(GByteArray *out, guint8 t, guint32 v)
{
    guint8 b[4] = {(guint8)(v >> 24), (guint8)(v >> 16), (guint8)(v >> 8), (guint8)v};
    put_tlv(out, t, b, 4);
}

static void put_ip(GByteArray *out, guint8 t, const PbAddr *ip)
{
    if (ip->family == 4)
        put_tlv(out, t, ip->addr, 4);
    else if (ip->family == 6)
        put_tlv(out, t, ip->addr, 16);
}

void policy_msg_build(const PolicyMsg *m, GByteArray *out)
{
    guint8 h[POLICY_PROTO_HEADER] = {'P',
                                     'B',
                                     'P',
                                     'L',
                                     POLICY_PROTO_VERSION,
                                     m->type,
                                     0,
                                     0,
                                     (guint8)(m->id >> 24),
                                     (guint8)(m->id >> 16),
                                     (guint8)(m->id >> 8),
                                     (guint8)m->id};
    g_byte_array_append(out, h, sizeof(h));
    switch (m->type) {
    case POLICY_MSG_DECIDE:
    case POLICY_MSG_DECIDE_COMMIT:
    case POLICY_MSG_DECIDE_CONSUME:
    case POLICY_MSG_REPORT:
        if (m->mac_len > 0)
            put_tlv(out, POLICY_TLV_MAC, m->mac, MIN(m->mac_len, sizeof(m->mac)));
        if (m->has_uuid)
            put_tlv(out, POLICY_TLV_UUID, m->uuid, 16);
        if (m->has_arch)
            put_u16(out, POLICY_TLV_ARCH, m->arch);
        put_ip(out, POLICY_TLV_CLIENT_IP, &m->client_ip);
        put_ip(out, POLICY_TLV_RELAY_IP, &m->relay_ip);
        put_text(out, POLICY_TLV_USER_CLASS, m->user_class);
        put_text(out, POLICY_TLV_VENDOR_CLASS, m->vendor_class);
        put_text(out, POLICY_TLV_SERIAL, m->serial);
        put_text(out, POLICY_TLV_MANUFACTURER, m->manufacturer);
        put_text(out, POLICY_TLV_PRODUCT, m->product);
        put_text(out, POLICY_TLV_ASSET_TAG, m->asset_tag);
        put_text(out, POLICY_TLV_BIOS_VERSION, m->bios_version);
        if (m->ram_mb)
            put_u32(out, POLICY_TLV_RAM_MB, m->ram_mb);
        if (m->disk_gb)
            put_u32(out, POLICY_TLV_DISK_GB, m->disk_gb);
        if (m->type == POLICY_MSG_REPORT) {
            put_u8(out, POLICY_TLV_EVENT, m->event);
            put_text(out, POLICY_TLV_IMAGE, m->image);
        }
        break;
    case POLICY_MSG_DECISION: {
        const pb_policy_decision *d = &m->decision;
        put_u8(out, POLICY_TLV_ACTION, (guint8)d->action);
        put_u8(out, POLICY_TLV_MENU, (guint8)d->menu);
        put_u16(out, POLICY_TLV_MENU_TIMEOUT, MIN(d->menu_timeout_s, 0xffff));
        put_u8(out, POLICY_TLV_WORK, (guint8)d->work);
        put_u32(out, POLICY_TLV_FLAGS, d->flags);
        put_text(out, POLICY_TLV_BOOT_FILE, d->boot_file);
        put_text(out, POLICY_TLV_WORK_ARG, d->work_arg);
        put_text(out, POLICY_TLV_MENU_NAME, d->menu_name);
        put_text(out, POLICY_TLV_RULE, d->rule);
        put_text(out, POLICY_TLV_DEVICE_ID, d->device_id);
        break;
    }
    case POLICY_MSG_ERROR:
        put_text(out, POLICY_TLV_ERROR_TEXT, m->error_text);
        break;
    default:
        break;
    }
}
