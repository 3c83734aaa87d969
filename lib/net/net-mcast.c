/* net-mcast.c - multicast groups and options (net.h), the same on POSIX and Windows: both
 * have RFC 3678's protocol-independent group requests and the IPv6 options by interface
 * index. What differs (how a socket is named and its errors read, IPv4's multicast
 * interface, Linux's IP_MULTICAST_ALL) is behind net-os.h. */
#include "net-os.h"

#include <string.h>
/* The Windows build finds these in win32/posix/, which maps them onto Winsock. */
#include <netinet/in.h>
#include <sys/socket.h>

#include "net-sockaddr.h" /* after the socket headers */

static gboolean group_membership(pb_socket_t sock, const PbAddr *group, guint32 ifindex,
                                 gboolean join, GError **error)
{
    g_return_val_if_fail(sock != PB_SOCKET_NONE && group != NULL, FALSE);

    const char *what = join ? "MCAST_JOIN_GROUP" : "MCAST_LEAVE_GROUP";
    if ((group->family != 4 && group->family != 6) || !pb_addr_is_multicast_or_broadcast(group)) {
        g_set_error(error, PB_NET_ERROR, PB_NET_ERROR_INVALID_ARGUMENT, "%s: not a group", what);
        return FALSE;
    }
    int family = pb_net_os_socket_family(sock, error);
    if (family < 0)
        return FALSE;
    if (family != (group->family == 6 ? AF_INET6 : AF_INET)) {
        g_set_error(error, PB_NET_ERROR, PB_NET_ERROR_INVALID_ARGUMENT,
                    "%s: the group is not of the socket's family", what);
        return FALSE;
    }
    /* RFC 3678's protocol-independent form: the interface by index, for both families
     * (Windows from Vista on). */
    struct group_req req;
    memset(&req, 0, sizeof req);
    req.gr_interface = ifindex;
    PbAddr g = *group;
    g.port = 0;
    pb_sockaddr_from_addr(&g, &req.gr_group);
    int level = group->family == 6 ? IPPROTO_IPV6 : IPPROTO_IP;
    if (!pb_net_os_setopt_struct(sock, level, join ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP, &req,
                                 sizeof req, what, group, error))
        return FALSE;
    if (join)
        pb_net_os_joined_group(sock, group);
    return TRUE;
}

gboolean pb_udp_join_group(pb_socket_t sock, const PbAddr *group, guint32 ifindex, GError **error)
{
    return group_membership(sock, group, ifindex, TRUE, error);
}

gboolean pb_udp_leave_group(pb_socket_t sock, const PbAddr *group, guint32 ifindex, GError **error)
{
    return group_membership(sock, group, ifindex, FALSE, error);
}

gboolean pb_udp_set_multicast_if(pb_socket_t sock, guint32 ifindex, GError **error)
{
    g_return_val_if_fail(sock != PB_SOCKET_NONE, FALSE);

    int family = pb_net_os_socket_family(sock, error);
    if (family < 0)
        return FALSE;
    if (family == AF_INET6)
        return pb_net_os_setopt(sock, IPPROTO_IPV6, IPV6_MULTICAST_IF, (int)ifindex,
                                "IPV6_MULTICAST_IF", error);
    return pb_net_os_set_multicast_if4(sock, ifindex, error);
}

gboolean pb_udp_set_multicast_ttl(pb_socket_t sock, guint ttl, GError **error)
{
    g_return_val_if_fail(sock != PB_SOCKET_NONE, FALSE);

    if (ttl > 255) {
        g_set_error(error, PB_NET_ERROR, PB_NET_ERROR_INVALID_ARGUMENT,
                    "multicast TTL %u is above 255", ttl);
        return FALSE;
    }
    int family = pb_net_os_socket_family(sock, error);
    if (family < 0)
        return FALSE;
    if (family == AF_INET6)
        return pb_net_os_setopt(sock, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, (int)ttl,
                                "IPV6_MULTICAST_HOPS", error);
    return pb_net_os_setopt(sock, IPPROTO_IP, IP_MULTICAST_TTL, (int)ttl, "IP_MULTICAST_TTL",
                            error);
}

gboolean pb_udp_set_multicast_loop(pb_socket_t sock, gboolean loop, GError **error)
{
    g_return_val_if_fail(sock != PB_SOCKET_NONE, FALSE);

    int family = pb_net_os_socket_family(sock, error);
    if (family < 0)
        return FALSE;
    /* Windows applies loop on the receiving socket, POSIX on the sending one; set on the
     * sender it means the same on both ("our own members hear it") in the common case of
     * one process holding both. */
    if (family == AF_INET6)
        return pb_net_os_setopt(sock, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, loop ? 1 : 0,
                                "IPV6_MULTICAST_LOOP", error);
    return pb_net_os_setopt(sock, IPPROTO_IP, IP_MULTICAST_LOOP, loop ? 1 : 0, "IP_MULTICAST_LOOP",
                            error);
}
