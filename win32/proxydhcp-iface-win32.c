/* proxydhcp-iface-win32.c - plugins/proxydhcp/proxydhcp-iface.h with
 * GetAdaptersAddresses (the twin of proxydhcp-iface-posix.c). Windows keeps every address
 * of an interface on the one adapter, so there are no "eth0:1" aliases to fold. */
#include "../plugins/proxydhcp/proxydhcp-iface.h"

#include "ifaddr-win32.h"

#include <string.h>

static bool same_subnet(const PbWin32Ipv4 *e, const guint8 near[4])
{
    for (int i = 0; i < 4; i++)
        if ((e->addr[i] & e->mask[i]) != (near[i] & e->mask[i]))
            return false;
    return true;
}

bool pd_iface_ipv4(guint32 ifindex, const guint8 near[4], guint8 out[4])
{
    static const guint8 zero[4];
    if (ifindex == 0)
        return false;
    const guint8 *want = (near && memcmp(near, zero, 4) != 0) ? near : NULL;
    g_autoptr(GArray) list = pb_win32_ipv4_list();
    bool found = false;
    for (guint i = 0; i < list->len; i++) {
        const PbWin32Ipv4 *e = &g_array_index(list, PbWin32Ipv4, i);
        if (e->ifindex != ifindex)
            continue;
        if (!found) {
            memcpy(out, e->addr, 4);
            found = true;
        }
        if (want != NULL && same_subnet(e, want)) {
            memcpy(out, e->addr, 4);
            break;
        }
    }
    return found;
}

bool pd_iface_has(guint32 ifindex, const guint8 addr[4])
{
    if (ifindex == 0)
        return false;
    g_autoptr(GArray) list = pb_win32_ipv4_list();
    for (guint i = 0; i < list->len; i++) {
        const PbWin32Ipv4 *e = &g_array_index(list, PbWin32Ipv4, i);
        if (e->ifindex == ifindex && memcmp(e->addr, addr, 4) == 0)
            return true;
    }
    return false;
}
