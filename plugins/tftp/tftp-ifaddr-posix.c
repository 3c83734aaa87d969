/* tftp-ifaddr-posix.c - tftp-ifaddr.h with getifaddrs(). */
#include "tftp-ifaddr.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define REFRESH_US (5 * G_USEC_PER_SEC)

/* Main-loop only, like every plugin callback: no locking. */
static GArray *cached; /* guint32, network order */
static guint64 cached_at;

static void refresh(guint64 now)
{
    if (cached == NULL)
        cached = g_array_new(FALSE, FALSE, sizeof(guint32));
    g_array_set_size(cached, 0);
    cached_at = now;
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) != 0)
        return;
    for (struct ifaddrs *i = list; i; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_netmask == NULL || i->ifa_addr->sa_family != AF_INET)
            continue;
        guint32 addr = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
        guint32 mask = ntohl(((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr);
        if (mask == 0xffffffffu || mask == 0xfffffffeu)
            continue; /* /32 and /31 (RFC 3021) have no broadcast address */
        guint32 b[2] = {htonl((addr & mask) | ~mask), htonl(addr & mask)};
        g_array_append_vals(cached, b, 2);
    }
    freeifaddrs(list);
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
