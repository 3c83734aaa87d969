/* net-win32.c - lib/net/net.h on Winsock 2: the same non-blocking UDP sockets as
 * net-posix.c, with the destination address and interface of every datagram
 * (IP_PKTINFO / IPV6_PKTINFO through WSARecvMsg) so replies leave from the address the
 * request arrived on (WSASendMsg with a pktinfo control message).
 *
 * Differences from POSIX that matter to a server, each handled below:
 *  - Winsock must be started (WSAStartup) before the first socket call;
 *  - an ICMP port unreachable caused by an earlier sendto() makes the NEXT recvfrom() on
 *    the socket fail with WSAECONNRESET (KB263823): one vanished TFTP client would stall
 *    the listening socket, so SIO_UDP_CONNRESET is switched off;
 *  - SO_REUSEADDR lets any other process bind the same port and steal datagrams, so
 *    without PB_UDP_REUSEADDR we ask for SO_EXCLUSIVEADDRUSE instead;
 *  - the error is in WSAGetLastError(), not errno. */
#include "win32-sock.h"

#include "net-os.h"

#include <iphlpapi.h>
#include <mswsock.h>
#include <string.h>

#include "net-sockaddr.h" /* after the socket headers */

static int error_code(int err)
{
    switch (err) {
    case WSAEWOULDBLOCK:
        return PB_NET_ERROR_WOULD_BLOCK;
    case WSAEADDRINUSE:
        return PB_NET_ERROR_ADDRESS_IN_USE;
    case WSAEACCES:
        return PB_NET_ERROR_PERMISSION_DENIED;
    case WSAEINVAL:
    case WSAEAFNOSUPPORT:
    case WSAEADDRNOTAVAIL:
    case WSAEFAULT:
        return PB_NET_ERROR_INVALID_ARGUMENT;
    case WSAEMSGSIZE:
        return PB_NET_ERROR_MESSAGE_TOO_LARGE;
    case WSAENETUNREACH:
    case WSAEHOSTUNREACH:
    case WSAECONNREFUSED:
    case WSAECONNRESET:
    case WSAENETRESET:
        return PB_NET_ERROR_UNREACHABLE;
    default:
        return PB_NET_ERROR_FAILED;
    }
}

static void set_wsa_error(GError **error, int err, const char *what, const PbAddr *a)
{
    char buf[80] = "";
    if (a != NULL)
        pb_addr_format(a, TRUE, buf, sizeof buf);
    g_autofree char *msg = g_win32_error_message(err);
    g_set_error(error, PB_NET_ERROR, error_code(err), "%s%s%s: %s", what, a ? " " : "", buf, msg);
}

static gboolean setopt(SOCKET s, int level, int name, DWORD value, const char *what, GError **error)
{
    if (setsockopt(s, level, name, (const char *)&value, sizeof value) == 0)
        return TRUE;
    int err = WSAGetLastError();
    g_autofree char *msg = g_win32_error_message(err);
    g_set_error(error, PB_NET_ERROR, error_code(err), "setsockopt(%s): %s", what, msg);
    return FALSE;
}

/* WSARecvMsg is an extension function: its address is asked of the provider, once. */
static LPFN_WSARECVMSG recvmsg_ptr;
static LPFN_WSARECVMSG wsarecvmsg_fn(SOCKET s)
{
    static gsize once;
    if (g_once_init_enter(&once)) {
        GUID guid = WSAID_WSARECVMSG;
        DWORD n = 0;
        if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &recvmsg_ptr,
                     sizeof recvmsg_ptr, &n, NULL, NULL) != 0)
            recvmsg_ptr = NULL; /* recvfrom() then, without pktinfo */
        g_once_init_leave(&once, 1);
    }
    return recvmsg_ptr;
}

/* Winsock needs starting once per process before any other call; the handle is kept
 * for the life of the process (WSACleanup at exit would only race other threads). */
gboolean pb_win32_wsa_init(GError **error)
{
    static gsize once;
    static int startup_error;
    if (g_once_init_enter(&once)) {
        WSADATA wsa;
        startup_error = WSAStartup(MAKEWORD(2, 2), &wsa);
        g_once_init_leave(&once, 1);
    }
    if (startup_error != 0) {
        g_autofree char *msg = g_win32_error_message(startup_error);
        g_set_error(error, PB_NET_ERROR, PB_NET_ERROR_FAILED, "WSAStartup: %s", msg);
        return FALSE;
    }
    return TRUE;
}

pb_socket_t pb_udp_open(const PbAddr *bind_addr, unsigned flags, GError **error)
{
    g_return_val_if_fail(bind_addr != NULL, PB_SOCKET_NONE);
    g_return_val_if_fail(error == NULL || *error == NULL, PB_SOCKET_NONE);

    if (!pb_win32_wsa_init(error))
        return PB_SOCKET_NONE;

    int family = bind_addr->family == 6 ? AF_INET6 : AF_INET;
    /* WSA_FLAG_NO_HANDLE_INHERIT: the Windows twin of SOCK_CLOEXEC. */
    SOCKET s = WSASocketW(family, SOCK_DGRAM, IPPROTO_UDP, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) {
        set_wsa_error(error, WSAGetLastError(), "socket", NULL);
        return PB_SOCKET_NONE;
    }
    u_long nonblocking = 1;
    if (ioctlsocket(s, FIONBIO, &nonblocking) != 0) {
        set_wsa_error(error, WSAGetLastError(), "ioctlsocket(FIONBIO)", NULL);
        goto fail;
    }

    BOOL off = FALSE;
    DWORD n = 0;
    /* KB263823: see the top of this file. Best effort: wine does not need it. */
    (void)WSAIoctl(s, SIO_UDP_CONNRESET, &off, sizeof off, NULL, 0, &n, NULL, NULL);

    if (flags & PB_UDP_REUSEADDR) {
        if (!setopt(s, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR", error))
            goto fail;
    } else {
        (void)setopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1, "SO_EXCLUSIVEADDRUSE", NULL);
    }
    if ((flags & PB_UDP_BROADCAST) &&
        !setopt(s, SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST", error))
        goto fail;

    if (family == AF_INET6) {
        /* Windows defaults to v6-only; POSIX systems vary. Explicit either way. */
        if (!setopt(s, IPPROTO_IPV6, IPV6_V6ONLY, (flags & PB_UDP_V6ONLY) ? 1 : 0, "IPV6_V6ONLY",
                    error))
            goto fail;
        if ((flags & PB_UDP_PKTINFO) &&
            !setopt(s, IPPROTO_IPV6, IPV6_PKTINFO, 1, "IPV6_PKTINFO", error))
            goto fail;
        /* A dual-mode socket reports IPv4 datagrams with IP_PKTINFO only when that is
         * asked for separately. */
        if ((flags & PB_UDP_PKTINFO) && !(flags & PB_UDP_V6ONLY))
            (void)setopt(s, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO", NULL);
        if (flags & PB_UDP_NO_PMTUD)
            (void)setopt(s, IPPROTO_IPV6, IPV6_DONTFRAG, 0, "IPV6_DONTFRAG", NULL);
    } else {
        if ((flags & PB_UDP_PKTINFO) && !setopt(s, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO", error))
            goto fail;
    }
    if (flags & PB_UDP_NO_PMTUD) {
        /* Boot ROMs cannot reassemble and many networks drop ICMP "fragmentation needed",
         * so a DF datagram too big for a link would vanish: never set DF. DF is off by
         * default on Windows; IP_MTU_DISCOVER exists from Windows 10 1703 on, so older
         * systems (and wine) refusing it cost nothing. */
        if (family == AF_INET)
            (void)setopt(s, IPPROTO_IP, IP_DONTFRAGMENT, 0, "IP_DONTFRAGMENT", NULL);
        (void)setopt(s, family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
                     family == AF_INET ? IP_MTU_DISCOVER : IPV6_MTU_DISCOVER, IP_PMTUDISC_DONT,
                     "IP_MTU_DISCOVER", NULL);
    }

    struct sockaddr_storage ss;
    int sl = (int)pb_sockaddr_from_addr(bind_addr, &ss);
    if (bind(s, (struct sockaddr *)&ss, sl) != 0) {
        set_wsa_error(error, WSAGetLastError(), "bind", bind_addr);
        goto fail;
    }
    return (pb_socket_t)s;

fail:
    closesocket(s);
    return PB_SOCKET_NONE;
}

gssize pb_udp_recv(pb_socket_t sock, void *buf, gsize len, PbAddr *from, PbAddr *local,
                   guint32 *ifindex, GError **error)
{
    g_return_val_if_fail(sock != PB_SOCKET_NONE && buf != NULL, -1);

    SOCKET s = (SOCKET)sock;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    union {
        WSACMSGHDR align;
        char buf[WSA_CMSG_SPACE(sizeof(IN6_PKTINFO)) + WSA_CMSG_SPACE(sizeof(IN_PKTINFO))];
    } control;
    WSABUF data = {.len = (ULONG)MIN(len, G_MAXULONG), .buf = buf};
    WSAMSG msg = {
        .name = (struct sockaddr *)&ss,
        .namelen = sizeof ss,
        .lpBuffers = &data,
        .dwBufferCount = 1,
        .Control = {.len = sizeof control.buf, .buf = control.buf},
    };

    if (local != NULL)
        memset(local, 0, sizeof *local);
    if (ifindex != NULL)
        *ifindex = 0;

    DWORD got = 0;
    int rc;
    LPFN_WSARECVMSG recvmsg_fn = wsarecvmsg_fn(s);
    if (recvmsg_fn != NULL) {
        rc = recvmsg_fn(s, &msg, &got, NULL, NULL);
    } else {
        int sl = sizeof ss;
        rc = recvfrom(s, buf, (int)data.len, 0, (struct sockaddr *)&ss, &sl);
        got = rc >= 0 ? (DWORD)rc : 0;
        msg.Control.len = 0;
    }
    if (rc == SOCKET_ERROR) {
        int err = WSAGetLastError();
        if (err == WSAEWOULDBLOCK)
            g_set_error_literal(error, PB_NET_ERROR, PB_NET_ERROR_WOULD_BLOCK,
                                "no datagram queued");
        else if (err == WSAEMSGSIZE)
            /* Every protocol we serve has a maximum datagram size; a larger one is
             * malformed, and a silently cut copy would only move the confusion. */
            g_set_error(error, PB_NET_ERROR, PB_NET_ERROR_MESSAGE_TOO_LARGE,
                        "datagram larger than %" G_GSIZE_FORMAT " bytes dropped", len);
        else
            set_wsa_error(error, err, "WSARecvMsg", NULL);
        return -1;
    }
    if (from != NULL)
        pb_addr_from_sockaddr((struct sockaddr *)&ss, from);
    if (msg.dwFlags & MSG_TRUNC) {
        g_set_error(error, PB_NET_ERROR, PB_NET_ERROR_MESSAGE_TOO_LARGE,
                    "datagram larger than %" G_GSIZE_FORMAT " bytes dropped", len);
        return -1;
    }
    if (local == NULL && ifindex == NULL)
        return (gssize)got;

    guint32 idx = 0;
    PbAddr dst = {0};
    for (WSACMSGHDR *c = WSA_CMSG_FIRSTHDR(&msg); c != NULL; c = WSA_CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            IN_PKTINFO pi;
            memcpy(&pi, WSA_CMSG_DATA(c), sizeof pi);
            dst.family = 4;
            /* the header's destination (255.255.255.255 for a broadcast DHCP request);
             * callers check pb_addr_is_multicast_or_broadcast. */
            memcpy(dst.addr, &pi.ipi_addr, 4);
            idx = (guint32)pi.ipi_ifindex;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            IN6_PKTINFO pi;
            memcpy(&pi, WSA_CMSG_DATA(c), sizeof pi);
            struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
            memcpy(&s6.sin6_addr, &pi.ipi6_addr, 16);
            pb_addr_from_sockaddr((struct sockaddr *)&s6, &dst);
            idx = (guint32)pi.ipi6_ifindex;
            if (dst.family == 6 && IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
                dst.scope_id = idx;
        }
    }
    if (local != NULL && dst.family != 0) {
        PbAddr self;
        *local = dst;
        if (pb_udp_local_addr(sock, &self))
            local->port = self.port;
    }
    if (ifindex != NULL)
        *ifindex = idx;
    return (gssize)got;
}

static int send_once(SOCKET s, const void *buf, gsize len, const PbAddr *to, const PbAddr *local,
                     guint32 ifindex, gboolean with_pktinfo, DWORD *sent)
{
    struct sockaddr_storage ss;
    int sl = (int)pb_sockaddr_from_addr(to, &ss);
    union {
        WSACMSGHDR align;
        char buf[WSA_CMSG_SPACE(sizeof(IN6_PKTINFO))];
    } control;
    memset(&control, 0, sizeof control);
    WSABUF data = {.len = (ULONG)len, .buf = (char *)buf};
    WSAMSG msg = {
        .name = (struct sockaddr *)&ss,
        .namelen = sl,
        .lpBuffers = &data,
        .dwBufferCount = 1,
    };

    /* A broadcast or multicast destination of the request is no source for the reply:
     * the stack then picks the address of the interface (ifindex) instead. */
    gboolean have_src = local != NULL && local->family != 0 && !pb_addr_is_any(local) &&
                        !pb_addr_is_multicast_or_broadcast(local);
    if (with_pktinfo && (have_src || ifindex != 0)) {
        WSACMSGHDR *c = (WSACMSGHDR *)control.buf;
        gboolean v6 = have_src ? local->family == 6 : to->family == 6;
        if (v6) {
            IN6_PKTINFO pi;
            memset(&pi, 0, sizeof pi);
            if (have_src)
                memcpy(&pi.ipi6_addr, local->addr, 16);
            pi.ipi6_ifindex = ifindex;
            c->cmsg_level = IPPROTO_IPV6;
            c->cmsg_type = IPV6_PKTINFO;
            c->cmsg_len = WSA_CMSG_LEN(sizeof pi);
            memcpy(WSA_CMSG_DATA(c), &pi, sizeof pi);
            msg.Control.len = WSA_CMSG_SPACE(sizeof pi);
        } else {
            IN_PKTINFO pi;
            memset(&pi, 0, sizeof pi);
            if (have_src)
                memcpy(&pi.ipi_addr, local->addr, 4);
            pi.ipi_ifindex = ifindex;
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_PKTINFO;
            c->cmsg_len = WSA_CMSG_LEN(sizeof pi);
            memcpy(WSA_CMSG_DATA(c), &pi, sizeof pi);
            msg.Control.len = WSA_CMSG_SPACE(sizeof pi);
        }
        msg.Control.buf = control.buf;
    }
    *sent = 0;
    return WSASendMsg(s, &msg, 0, sent, NULL, NULL);
}

gssize pb_udp_send(pb_socket_t sock, const void *buf, gsize len, const PbAddr *to,
                   const PbAddr *local, guint32 ifindex, GError **error)
{
    g_return_val_if_fail(sock != PB_SOCKET_NONE && to != NULL, -1);
    g_return_val_if_fail(buf != NULL || len == 0, -1);
    g_return_val_if_fail(len <= G_MAXULONG, -1);

    SOCKET s = (SOCKET)sock;
    PbAddr dest = *to;
    PbAddr self;
    /* A dual-mode IPv6 socket takes IPv4 destinations only in their v4-mapped form. */
    if (to->family == 4 && pb_udp_local_addr(sock, &self) && self.family == 6)
        pb_addr_map_v4(to, &dest);

    DWORD sent = 0;
    int rc = send_once(s, buf, len, &dest, local, ifindex, TRUE, &sent);
    if (rc == SOCKET_ERROR && WSAGetLastError() == WSAEINVAL && (local != NULL || ifindex)) {
        /* Some stacks (wine before 9) take no control data on send: the routing table
         * then picks the source, which is right on every single-homed host. */
        rc = send_once(s, buf, len, &dest, local, ifindex, FALSE, &sent);
    }
    if (rc == SOCKET_ERROR) {
        set_wsa_error(error, WSAGetLastError(), "WSASendMsg to", to);
        return -1;
    }
    return (gssize)sent;
}

/* Winsock has no segmentation offload for UDP senders that works on loopback everywhere
 * (UDP_SEND_MSG_SIZE needs Windows 10 2004 or later): one send per datagram. */
gssize pb_udp_send_segments(pb_socket_t sock, const void *buf, gsize len, gsize seg_len,
                            const PbAddr *to, const PbAddr *local, guint32 ifindex, GError **error)
{
    g_return_val_if_fail(sock != PB_SOCKET_NONE && to != NULL && buf != NULL, -1);
    g_return_val_if_fail(seg_len > 0 && len > 0, -1);

    return pb_udp_send_each(sock, buf, len, seg_len, 0, to, local, ifindex, error);
}

gboolean pb_udp_local_addr(pb_socket_t sock, PbAddr *out)
{
    g_return_val_if_fail(out != NULL, FALSE);

    struct sockaddr_storage ss;
    int sl = sizeof ss;
    memset(out, 0, sizeof *out);
    if (sock == PB_SOCKET_NONE || getsockname((SOCKET)sock, (struct sockaddr *)&ss, &sl) != 0)
        return FALSE;
    /* getsockname keeps the socket's own family: a dual-mode socket stays family 6 */
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        out->family = 6;
        out->port = ntohs(s6->sin6_port);
        memcpy(out->addr, &s6->sin6_addr, 16);
        out->scope_id = s6->sin6_scope_id;
        return TRUE;
    }
    pb_addr_from_sockaddr((struct sockaddr *)&ss, out);
    return out->family != 0;
}

void pb_udp_close(pb_socket_t sock)
{
    if (sock != PB_SOCKET_NONE)
        closesocket((SOCKET)sock);
}

guint pb_net_iface_mtu(guint32 ifindex)
{
    if (ifindex == 0)
        return 0;
    MIB_IF_ROW2 row;
    memset(&row, 0, sizeof row);
    row.InterfaceIndex = ifindex;
    if (GetIfEntry2(&row) != NO_ERROR)
        return 0;
    return row.Mtu > 0 && row.Mtu < G_MAXUINT ? (guint)row.Mtu : 0;
}

GArray *pb_net_ifaddrs(void)
{
    GArray *out = g_array_new(FALSE, TRUE, sizeof(PbIfAddr));
    ULONG size = 16 * 1024, rc = ERROR_BUFFER_OVERFLOW;
    g_autofree IP_ADAPTER_ADDRESSES *list = NULL;
    /* The list can grow between the sizing call and the real one: retry a few times. */
    for (int tries = 0; tries < 3 && rc == ERROR_BUFFER_OVERFLOW; tries++) {
        g_free(list);
        list = g_malloc(size);
        rc = GetAdaptersAddresses(
            AF_UNSPEC, GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST | GAA_FLAG_SKIP_DNS_SERVER,
            NULL, list, &size);
    }
    if (rc != NO_ERROR)
        return out;
    /* Windows keeps every address of an interface on its one adapter: no aliases to fold. */
    for (IP_ADAPTER_ADDRESSES *a = list; a != NULL; a = a->Next) {
        for (IP_ADAPTER_UNICAST_ADDRESS *u = a->FirstUnicastAddress; u != NULL; u = u->Next) {
            const struct sockaddr *sa = u->Address.lpSockaddr;
            if (sa == NULL || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
                continue;
            PbIfAddr e = {.ifindex = sa->sa_family == AF_INET6 ? a->Ipv6IfIndex : a->IfIndex};
            pb_addr_from_sockaddr(sa, &e.addr);
            e.addr.port = 0;
            guint max = sa->sa_family == AF_INET6 ? 128 : 32;
            e.prefix = (guint8)MIN(u->OnLinkPrefixLength, max);
            if (a->OperStatus == IfOperStatusUp)
                e.flags |= PB_IFADDR_UP;
            if (a->IfType == IF_TYPE_SOFTWARE_LOOPBACK)
                e.flags |= PB_IFADDR_LOOPBACK;
            g_array_append_val(out, e);
        }
    }
    return out;
}

/* ---- multicast (net-mcast.c asks these of us) ------------------------------------------ */

int pb_net_os_socket_family(pb_socket_t sock, GError **error)
{
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (getsockname((SOCKET)sock, (struct sockaddr *)&ss, &sl) != 0) {
        set_wsa_error(error, WSAGetLastError(), "getsockname", NULL);
        return -1;
    }
    return ss.ss_family;
}

gboolean pb_net_os_setopt(pb_socket_t sock, int level, int name, int value, const char *what,
                          GError **error)
{
    return setopt((SOCKET)sock, level, name, (DWORD)value, what, error);
}

gboolean pb_net_os_setopt_struct(pb_socket_t sock, int level, int name, const void *value,
                                 gsize len, const char *what, const PbAddr *about, GError **error)
{
    if (setsockopt((SOCKET)sock, level, name, (const char *)value, (int)len) == 0)
        return TRUE;
    set_wsa_error(error, WSAGetLastError(), what, about);
    return FALSE;
}

gboolean pb_net_os_set_multicast_if4(pb_socket_t sock, guint32 ifindex, GError **error)
{
    /* IPv4 takes an index as an address in 0.0.0.0/8, in network order ("0.0.0.idx"). */
    return setopt((SOCKET)sock, IPPROTO_IP, IP_MULTICAST_IF, htonl(ifindex), "IP_MULTICAST_IF",
                  error);
}

void pb_net_os_joined_group(pb_socket_t sock, const PbAddr *group)
{
    /* Windows never hands a socket the groups other sockets joined: no IP_MULTICAST_ALL. */
    (void)sock;
    (void)group;
}

guint64 pb_fd_limit(void)
{
    /* Winsock sockets are kernel handles, not C runtime descriptors: no RLIMIT_NOFILE. */
    return 0;
}
