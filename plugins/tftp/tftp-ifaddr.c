/* tftp-ifaddr.c - tftp-ifaddr.h over lib/net's interface list (the same on every OS). */
#include "tftp-ifaddr.h"

#include <string.h>

#define REFRESH_US (5 * G_USEC_PER_SEC)
/* Subnets remembered between refreshes. A fixed table, so that nothing is left allocated
 * when the module is unloaded; a host with more falls back to asking the system each time. */
#define CACHE_MAX 64

/* Main-loop only, like every plugin callback: no locking. */
static guint8 cached[CACHE_MAX][2][4]; /* broadcast and network address, network order */
static guint n_cached;
static gboolean cache_full; /* more subnets than CACHE_MAX: do not trust the table */
static gboolean cache_valid;
static guint64 cached_at;

static void refresh(guint64 now)
{
    n_cached = 0;
    cache_full = FALSE;
    cache_valid = TRUE;
    cached_at = now;
    g_autoptr(GArray) list = pb_net_ifaddrs();
    for (guint i = 0; i < list->len; i++) {
        PbAddr b, n;
        if (!pb_ifaddr_broadcast(&g_array_index(list, PbIfAddr, i), &b, &n))
            continue;
        if (n_cached == CACHE_MAX) {
            cache_full = TRUE;
            return;
        }
        memcpy(cached[n_cached][0], b.addr, 4);
        memcpy(cached[n_cached][1], n.addr, 4);
        n_cached++;
    }
}

gboolean tftp_addr_is_directed_broadcast(const PbAddr *a, guint64 now_us)
{
    if (a->family != 4)
        return FALSE;
    if (!cache_valid || now_us - cached_at > REFRESH_US || now_us < cached_at)
        refresh(now_us);
    if (cache_full) {
        g_autoptr(GArray) list = pb_net_ifaddrs();
        return pb_ifaddrs_is_directed_broadcast(list, a);
    }
    for (guint i = 0; i < n_cached; i++)
        if (memcmp(cached[i][0], a->addr, 4) == 0 || memcmp(cached[i][1], a->addr, 4) == 0)
            return TRUE;
    return FALSE;
}
