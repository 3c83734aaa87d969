/* net-ifaddr.c - the portable questions asked of the host's interface addresses (which
 * address answers on an interface, is this a subnet-directed broadcast). The OS twins only
 * list the addresses (pb_net_ifaddrs); everything here works on that list, so the POSIX and
 * Windows builds decide alike. */
#include "net.h"

#include <string.h>

static gboolean prefix_equal(const guint8 *a, const guint8 *b, guint bits)
{
    guint whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return FALSE;
    if (rest == 0)
        return TRUE;
    guint8 mask = (guint8)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

gboolean pb_ifaddr_contains(const PbIfAddr *e, const PbAddr *a)
{
    g_return_val_if_fail(e != NULL && a != NULL, FALSE);

    if (a->family != e->addr.family || (a->family != 4 && a->family != 6))
        return FALSE;
    guint max = a->family == 6 ? 128 : 32;
    return prefix_equal(e->addr.addr, a->addr, MIN(e->prefix, max));
}

gboolean pb_ifaddr_broadcast(const PbIfAddr *e, PbAddr *broadcast, PbAddr *network)
{
    g_return_val_if_fail(e != NULL, FALSE);

    if (e->addr.family != 4 || e->prefix >= 31)
        return FALSE; /* /32 and /31 (RFC 3021) have no broadcast address */
    guint32 addr, mask = e->prefix == 0 ? 0 : g_htonl(0xffffffffu << (32 - e->prefix));
    memcpy(&addr, e->addr.addr, 4);
    guint32 b = (addr & mask) | ~mask, n = addr & mask; /* network order throughout */
    if (broadcast != NULL) {
        memset(broadcast, 0, sizeof *broadcast);
        broadcast->family = 4;
        memcpy(broadcast->addr, &b, 4);
    }
    if (network != NULL) {
        memset(network, 0, sizeof *network);
        network->family = 4;
        memcpy(network->addr, &n, 4);
    }
    return TRUE;
}

gboolean pb_ifaddrs_pick_ipv4(const GArray *list, guint32 ifindex, const PbAddr *near, PbAddr *out)
{
    g_return_val_if_fail(list != NULL && out != NULL, FALSE);

    memset(out, 0, sizeof *out);
    if (ifindex == 0)
        return FALSE;
    if (near != NULL && (near->family != 4 || pb_addr_is_any(near)))
        near = NULL;
    gboolean found = FALSE;
    for (guint i = 0; i < list->len; i++) {
        const PbIfAddr *e = &g_array_index(list, PbIfAddr, i);
        if (e->ifindex != ifindex || e->addr.family != 4)
            continue;
        if (!found) {
            *out = e->addr;
            found = TRUE;
        }
        /* A relay or a client with an address names the subnet it is on; answer from our
         * address in that subnet, not from the interface's first. */
        if (near != NULL && pb_ifaddr_contains(e, near)) {
            *out = e->addr;
            break;
        }
    }
    out->port = 0;
    return found;
}

gboolean pb_ifaddrs_has(const GArray *list, guint32 ifindex, const PbAddr *addr)
{
    g_return_val_if_fail(list != NULL && addr != NULL, FALSE);

    if (ifindex == 0)
        return FALSE;
    gsize len = addr->family == 6 ? 16 : 4;
    for (guint i = 0; i < list->len; i++) {
        const PbIfAddr *e = &g_array_index(list, PbIfAddr, i);
        if (e->ifindex == ifindex && e->addr.family == addr->family &&
            memcmp(e->addr.addr, addr->addr, len) == 0)
            return TRUE;
    }
    return FALSE;
}

gboolean pb_ifaddrs_is_directed_broadcast(const GArray *list, const PbAddr *a)
{
    g_return_val_if_fail(list != NULL && a != NULL, FALSE);

    if (a->family != 4)
        return FALSE;
    for (guint i = 0; i < list->len; i++) {
        PbAddr b, n;
        if (!pb_ifaddr_broadcast(&g_array_index(list, PbIfAddr, i), &b, &n))
            continue;
        if (memcmp(a->addr, b.addr, 4) == 0 || memcmp(a->addr, n.addr, 4) == 0)
            return TRUE;
    }
    return FALSE;
}

gboolean pb_ifaddrs_default_ipv4(const GArray *list, PbAddr *out)
{
    g_return_val_if_fail(list != NULL && out != NULL, FALSE);

    memset(out, 0, sizeof *out);
    for (guint i = 0; i < list->len; i++) {
        const PbIfAddr *e = &g_array_index(list, PbIfAddr, i);
        if (e->addr.family == 4 && (e->flags & PB_IFADDR_UP) && !(e->flags & PB_IFADDR_LOOPBACK)) {
            *out = e->addr;
            out->port = 0;
            return TRUE;
        }
    }
    return FALSE;
}

gboolean pb_net_default_addr(PbAddr *out)
{
    g_return_val_if_fail(out != NULL, FALSE);

    g_autoptr(GArray) list = pb_net_ifaddrs();
    return pb_ifaddrs_default_ipv4(list, out);
}
