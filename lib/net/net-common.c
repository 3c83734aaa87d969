/* net-common.c - the portable half of net.h: address literals, comparison and CIDR
 * matching. No sockets here, so these run (and are fuzzed) the same on every platform. */
#include "net.h"

#include <errno.h>
#include <string.h>
/* The Windows build finds these in win32/posix/, which maps them onto Winsock. */
#include <arpa/inet.h>
#include <net/if.h>

GQuark pb_net_error_quark(void)
{
    /* Not G_DEFINE_QUARK: clang-format spaces out its unquoted name. */
    /* Not a static string: this file is linked into plugins, which may be unloaded. */
    return g_quark_from_string("pb-net-error-quark");
}

gboolean pb_net_error_would_block(const GError *error)
{
    return error != NULL && g_error_matches(error, PB_NET_ERROR, PB_NET_ERROR_WOULD_BLOCK);
}

static gboolean parse_scope(const char *text, guint32 *out)
{
    if (*text == '\0')
        return FALSE;
    if (g_ascii_isdigit(*text)) {
        guint64 v;
        if (!g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT32, &v, NULL))
            return FALSE;
        *out = (guint32)v;
        return TRUE;
    }
    /* RFC 4007 section 11: the zone may be an interface name ("fe80::1%eth0"). */
    unsigned idx = if_nametoindex(text);
    if (idx == 0)
        return FALSE;
    *out = idx;
    return TRUE;
}

gboolean pb_addr_parse(const char *text, guint16 port, PbAddr *out)
{
    g_return_val_if_fail(out != NULL, FALSE);

    memset(out, 0, sizeof *out);
    out->port = port;
    if (text == NULL || *text == '\0') {
        out->family = 4;
        return TRUE;
    }

    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 4];
    gsize n = strlen(text);
    /* "[2001:db8::1]" as URLs and our own with_port format write it. */
    if (text[0] == '[') {
        if (n < 3 || text[n - 1] != ']')
            return FALSE;
        text++;
        n -= 2;
    }
    if (n >= sizeof buf)
        return FALSE;
    memcpy(buf, text, n);
    buf[n] = '\0';

    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = 4;
        return TRUE;
    }
    char *pct = strchr(buf, '%');
    if (pct != NULL) {
        *pct = '\0';
        if (!parse_scope(pct + 1, &out->scope_id))
            goto fail;
    }
    if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = 6;
        return TRUE;
    }
fail:
    memset(out, 0, sizeof *out);
    return FALSE;
}

const char *pb_addr_format(const PbAddr *a, gboolean with_port, char *buf, gsize len)
{
    g_return_val_if_fail(a != NULL && buf != NULL && len > 0, NULL);

    char host[INET6_ADDRSTRLEN];
    char scope[16] = "";
    if (a->family == 6) {
        if (inet_ntop(AF_INET6, a->addr, host, sizeof host) == NULL)
            g_strlcpy(host, "?", sizeof host);
        if (a->scope_id != 0)
            g_snprintf(scope, sizeof scope, "%%%u", (unsigned)a->scope_id);
    } else if (a->family == 4) {
        if (inet_ntop(AF_INET, a->addr, host, sizeof host) == NULL)
            g_strlcpy(host, "?", sizeof host);
    } else {
        g_strlcpy(host, "(unset)", sizeof host);
    }

    if (!with_port)
        g_snprintf(buf, len, "%s%s", host, scope);
    else if (a->family == 6)
        g_snprintf(buf, len, "[%s%s]:%u", host, scope, (unsigned)a->port);
    else
        g_snprintf(buf, len, "%s:%u", host, (unsigned)a->port);
    return buf;
}

static gsize addr_len(const PbAddr *a)
{
    return a->family == 6 ? 16 : a->family == 4 ? 4 : 0;
}

gboolean pb_addr_equal(const PbAddr *a, const PbAddr *b)
{
    g_return_val_if_fail(a != NULL && b != NULL, FALSE);

    if (a->family != b->family || a->port != b->port)
        return FALSE;
    if (a->family == 6 && a->scope_id != b->scope_id)
        return FALSE;
    return memcmp(a->addr, b->addr, addr_len(a)) == 0;
}

gboolean pb_addr_is_any(const PbAddr *a)
{
    g_return_val_if_fail(a != NULL, FALSE);

    static const guint8 zero[16];
    return a->family == 0 || memcmp(a->addr, zero, addr_len(a)) == 0;
}

gboolean pb_addr_is_multicast_or_broadcast(const PbAddr *a)
{
    g_return_val_if_fail(a != NULL, FALSE);

    if (a->family == 4) {
        /* 224.0.0.0/4 multicast, 255.255.255.255 limited broadcast. A subnet-directed
         * broadcast cannot be told from a unicast address without the netmask. */
        if ((a->addr[0] & 0xf0) == 0xe0)
            return TRUE;
        return a->addr[0] == 255 && a->addr[1] == 255 && a->addr[2] == 255 && a->addr[3] == 255;
    }
    if (a->family == 6)
        return a->addr[0] == 0xff; /* RFC 4291 section 2.7 */
    return FALSE;
}

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2), as a dual-stack
 * socket reports IPv4 peers. */
static gboolean is_v4_mapped(const PbAddr *a)
{
    static const guint8 prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return a->family == 6 && memcmp(a->addr, prefix, sizeof prefix) == 0;
}

static gboolean prefix_match(const guint8 *a, const guint8 *net, guint bits)
{
    guint whole = bits / 8, rest = bits % 8;
    if (memcmp(a, net, whole) != 0)
        return FALSE;
    if (rest == 0)
        return TRUE;
    guint8 mask = (guint8)(0xff << (8 - rest));
    return (a[whole] & mask) == (net[whole] & mask);
}

gboolean pb_addr_in_network(const PbAddr *a, const char *cidr)
{
    g_return_val_if_fail(a != NULL, FALSE);

    if (cidr == NULL)
        return FALSE;
    g_autofree char *text = g_strstrip(g_strdup(cidr));
    char *slash = strchr(text, '/');
    guint64 bits = G_MAXUINT64;
    if (slash != NULL) {
        *slash = '\0';
        /* Digits only: g_ascii_string_to_unsigned alone would also take "+8" or " 8". */
        const char *p = slash + 1;
        if (*p == '\0' || strspn(p, "0123456789") != strlen(p))
            return FALSE;
        if (!g_ascii_string_to_unsigned(p, 10, 0, 128, &bits, NULL))
            return FALSE;
    }
    PbAddr net;
    if (*text == '\0' || !pb_addr_parse(text, 0, &net))
        return FALSE;

    guint max = net.family == 6 ? 128 : 32;
    if (bits == G_MAXUINT64)
        bits = max;
    if (bits > max)
        return FALSE;

    if (a->family == net.family)
        return prefix_match(a->addr, net.addr, (guint)bits);
    if (net.family == 4 && is_v4_mapped(a))
        return prefix_match(a->addr + 12, net.addr, (guint)bits);
    return FALSE;
}
