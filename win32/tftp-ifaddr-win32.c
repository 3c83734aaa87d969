/* tftp-ifaddr-win32.c - plugins/tftp/tftp-ifaddr.h with GetAdaptersAddresses (the twin
 * of tftp-ifaddr-posix.c). */
#include "../plugins/tftp/tftp-ifaddr.h"

#include "ifaddr-win32.h"

#include <string.h>

#define REFRESH_US (5 * G_USEC_PER_SEC)

/* Main-loop only, like every plugin callback: no locking. */
static GArray *cached; /* guint32, network order: broadcast and network addresses */
static guint64 cached_at;

static void refresh(guint64 now)
{
    if (cached == NULL)
        cached = g_array_new(FALSE, FALSE, sizeof(guint32));
    g_array_set_size(cached, 0);
    cached_at = now;
    g_autoptr(GArray) list = pb_win32_ipv4_list();
    for (guint i = 0; i < list->len; i++) {
        const PbWin32Ipv4 *e = &g_array_index(list, PbWin32Ipv4, i);
        if (e->prefix >= 31)
            continue; /* /32 and /31 (RFC 3021) have no broadcast address */
        guint32 addr, mask;
        memcpy(&addr, e->addr, 4);
        memcpy(&mask, e->mask, 4);
        guint32 b[2] = {(addr & mask) | ~mask, addr & mask}; /* network order throughout */
        g_array_append_vals(cached, b, 2);
    }
}

gboolean tftp_addr_is_directed_broadcast(const PbAddr *a, guint64 now_us)
{
    if (a->family != 4)
        return FALSE;
    if (cached == NULL || now_us - cached_at > REFRESH_US || now_us < cached_at)
        refresh(now_us);
    guint32 v;
    memcpy(&v, a->addr, 4);
    for (guint i = 0; i < cached->len; i++)
        if (g_array_index(cached, guint32, i) == v)
            return TRUE;
    return FALSE;
}
