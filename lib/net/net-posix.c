/* net-posix.c - UDP sockets for the protocol plugins on Linux (and, where the options
 * exist, the BSDs): non-blocking, close-on-exec, with the destination address and
 * interface of every datagram (IP_PKTINFO / IPV6_RECVPKTINFO) so that replies leave from
 * the address the request arrived on, which multi-homed PXE servers need. */
#define _GNU_SOURCE 1 /* struct in6_pktinfo, struct in_pktinfo (glibc) */
#include "net-os.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net-sockaddr.h" /* after the socket headers */

static int error_code(int err)
{
    switch (err) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
        return PB_NET_ERROR_WOULD_BLOCK;
    case EADDRINUSE:
        return PB_NET_ERROR_ADDRESS_IN_USE;
    case EACCES:
    case EPERM:
        return PB_NET_ERROR_PERMISSION_DENIED;
    case EINVAL:
    case EAFNOSUPPORT:
    case EADDRNOTAVAIL:
        return PB_NET_ERROR_INVALID_ARGUMENT;
    case EMSGSIZE:
        return PB_NET_ERROR_MESSAGE_TOO_LARGE;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ECONNREFUSED:
        return PB_NET_ERROR_UNREACHABLE;
    default:
        return PB_NET_ERROR_FAILED;
    }
}

static void set_errno_error(GError **error, int err, const char *what, const PbAddr *a)
{
    char buf[80] = "";
    if (a != NULL)
        pb_addr_format(a, TRUE, buf, sizeof buf);
    g_set_error(error, PB_NET_ERROR, error_code(err), "%s%s%s: %s", what, a ? " " : "", buf,
                g_strerror(err));
}

static gboolean setopt(int fd, int level, int name, int value, const char *what, GError **error)
{
    if (setsockopt(fd, level, name, &value, sizeof value) == 0)
        return TRUE;
    int err = errno;
    g_set_error(error, PB_NET_ERROR, error_code(err), "setsockopt(%s): %s", what, g_strerror(err));
    return FALSE;
}

pb_socket_t pb_udp_open(const PbAddr *bind_addr, unsigned flags, GError **error)
{
    g_return_val_if_fail(bind_addr != NULL, PB_SOCKET_NONE);
    g_return_val_if_fail(error == NULL || *error == NULL, PB_SOCKET_NONE);

    int family = bind_addr->family == 6 ? AF_INET6 : AF_INET;
    int type = SOCK_DGRAM;
#ifdef SOCK_NONBLOCK
    type |= SOCK_NONBLOCK | SOCK_CLOEXEC;
#endif
    int fd = socket(family, type, 0);
    if (fd < 0) {
        set_errno_error(error, errno, "socket", NULL);
        return PB_SOCKET_NONE;
    }
#ifndef SOCK_NONBLOCK
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        set_errno_error(error, errno, "fcntl", NULL);
        close(fd);
        return PB_SOCKET_NONE;
    }
#endif

    if ((flags & PB_UDP_REUSEADDR) &&
        !setopt(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR", error))
        goto fail;
    if ((flags & PB_UDP_BROADCAST) &&
        !setopt(fd, SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST", error))
        goto fail;

    if (family == AF_INET6) {
        /* Explicit either way: the system default (net.ipv6.bindv6only) varies. */
        if (!setopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, (flags & PB_UDP_V6ONLY) ? 1 : 0, "IPV6_V6ONLY",
                    error))
            goto fail;
        if ((flags & PB_UDP_PKTINFO) &&
            !setopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO", error))
            goto fail;
#ifdef IP_PKTINFO
        /* Linux reports IPv4 datagrams of a dual-stack socket through IP_PKTINFO; a
         * v6-only socket or another system may refuse it, which costs nothing. */
        if ((flags & PB_UDP_PKTINFO) && !(flags & PB_UDP_V6ONLY))
            (void)setopt(fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO", NULL);
#endif
#if defined(IPV6_MTU_DISCOVER) && defined(IPV6_PMTUDISC_DONT)
        /* IPv6 routers never fragment; DONT makes the kernel fragment at the source to
         * the interface MTU instead of trusting (or waiting for) Packet Too Big. */
        if ((flags & PB_UDP_NO_PMTUD) && !setopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER,
                                                 IPV6_PMTUDISC_DONT, "IPV6_MTU_DISCOVER", error))
            goto fail;
#endif
    } else {
#ifdef IP_PKTINFO
        if ((flags & PB_UDP_PKTINFO) && !setopt(fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO", error))
            goto fail;
#endif
    }
    if ((flags & PB_UDP_NO_PMTUD) && family == AF_INET) {
        /* Boot ROMs cannot reassemble and many networks drop ICMP "fragmentation needed",
         * so a DF datagram too big for a link would vanish: never set DF. */
#if defined(IP_MTU_DISCOVER) && defined(IP_PMTUDISC_DONT)
        if (!setopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT, "IP_MTU_DISCOVER", error))
            goto fail;
#elif defined(IP_DONTFRAG)
        if (!setopt(fd, IPPROTO_IP, IP_DONTFRAG, 0, "IP_DONTFRAG", error))
            goto fail;
#endif
    }

    struct sockaddr_storage ss;
    socklen_t sl = (socklen_t)pb_sockaddr_from_addr(bind_addr, &ss);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
        set_errno_error(error, errno, "bind", bind_addr);
        goto fail;
    }
    return fd;

fail:
    close(fd);
    return PB_SOCKET_NONE;
}

gssize pb_udp_recv(pb_socket_t sock, void *buf, gsize len, PbAddr *from, PbAddr *local,
                   guint32 *ifindex, GError **error)
{
    g_return_val_if_fail(sock != PB_SOCKET_NONE && buf != NULL, -1);

    struct sockaddr_storage ss;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
    } control;
    struct msghdr msg = {
        .msg_name = &ss,
        .msg_namelen = sizeof ss,
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof control.buf,
    };
    memset(&ss, 0, sizeof ss);

    if (local != NULL)
        memset(local, 0, sizeof *local);
    if (ifindex != NULL)
        *ifindex = 0;

    ssize_t n;
    do
        n = recvmsg((int)sock, &msg, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK)
            g_set_error_literal(error, PB_NET_ERROR, PB_NET_ERROR_WOULD_BLOCK,
                                "no datagram queued");
        else
            set_errno_error(error, err, "recvmsg", NULL);
        return -1;
    }
    if (from != NULL)
        pb_addr_from_sockaddr((const struct sockaddr *)&ss, from);
    if (msg.msg_flags & MSG_TRUNC) {
        /* Every protocol we serve has a maximum datagram size; a larger one is malformed,
         * and handing the caller a silently cut copy would only move the confusion. */
        g_set_error(error, PB_NET_ERROR, PB_NET_ERROR_MESSAGE_TOO_LARGE,
                    "datagram larger than %" G_GSIZE_FORMAT " bytes dropped", len);
        return -1;
    }

    if (local == NULL && ifindex == NULL)
        return n;

    guint32 idx = 0;
    PbAddr dst = {0};
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
#ifdef IP_PKTINFO
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            dst.family = 4;
            /* ipi_addr is the header's destination (255.255.255.255 for a broadcast
             * DHCP request); callers check pb_addr_is_multicast_or_broadcast. */
            memcpy(dst.addr, &pi.ipi_addr, 4);
            idx = (guint32)pi.ipi_ifindex;
        }
#endif
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof pi);
            idx = (guint32)pi.ipi6_ifindex;
            pb_addr_from_in6(&pi.ipi6_addr, 0, IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr) ? idx : 0,
                             &dst);
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
    return n;
}

/* One sendmsg: with a source address (IP_PKTINFO) when given, and with a UDP_SEGMENT size
 * when gso_size is not 0 (the kernel then cuts buf into datagrams of that size). */
static gssize send_once(int fd, const void *buf, gsize len, const PbAddr *to, const PbAddr *local,
                        guint32 ifindex, guint16 gso_size)
{
    struct sockaddr_storage ss;
    socklen_t sl = (socklen_t)pb_sockaddr_from_addr(to, &ss);
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(guint16))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {
        .msg_name = &ss,
        .msg_namelen = sl,
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
    };
    struct cmsghdr *c = (struct cmsghdr *)control.buf;

    /* A broadcast or multicast destination of the request is no source for the reply: the
     * kernel then picks the address of the interface (ifindex) instead. */
    gboolean have_src = local != NULL && local->family != 0 && !pb_addr_is_any(local) &&
                        !pb_addr_is_multicast_or_broadcast(local);
    if (have_src || ifindex != 0) {
        gboolean v6 = have_src ? local->family == 6 : to->family == 6;
        if (v6) {
            struct in6_pktinfo pi;
            memset(&pi, 0, sizeof pi);
            if (have_src)
                memcpy(&pi.ipi6_addr, local->addr, 16);
            pi.ipi6_ifindex = ifindex;
            c->cmsg_level = IPPROTO_IPV6;
            c->cmsg_type = IPV6_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof pi);
            memcpy(CMSG_DATA(c), &pi, sizeof pi);
            msg.msg_controllen += CMSG_SPACE(sizeof pi);
            c = (struct cmsghdr *)(control.buf + msg.msg_controllen);
        }
#ifdef IP_PKTINFO
        else {
            struct in_pktinfo pi;
            memset(&pi, 0, sizeof pi);
            if (have_src)
                memcpy(&pi.ipi_spec_dst, local->addr, 4);
            pi.ipi_ifindex = (int)ifindex;
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof pi);
            memcpy(CMSG_DATA(c), &pi, sizeof pi);
            msg.msg_controllen += CMSG_SPACE(sizeof pi);
            c = (struct cmsghdr *)(control.buf + msg.msg_controllen);
        }
#endif
    }
#ifdef UDP_SEGMENT
    if (gso_size != 0) {
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof gso_size);
        memcpy(CMSG_DATA(c), &gso_size, sizeof gso_size);
        msg.msg_controllen += CMSG_SPACE(sizeof gso_size);
    }
#else
    g_assert(gso_size == 0);
#endif
    if (msg.msg_controllen == 0)
        msg.msg_control = NULL;

    ssize_t n;
    do
        n = sendmsg(fd, &msg, 0);
    while (n < 0 && errno == EINTR);
    return n;
}

gssize pb_udp_send(pb_socket_t sock, const void *buf, gsize len, const PbAddr *to,
                   const PbAddr *local, guint32 ifindex, GError **error)
{
    g_return_val_if_fail(sock != PB_SOCKET_NONE && to != NULL, -1);
    g_return_val_if_fail(buf != NULL || len == 0, -1);

    gssize n = send_once((int)sock, buf, len, to, local, ifindex, 0);
    if (n < 0 && to->family == 4 && (errno == EAFNOSUPPORT || errno == EINVAL)) {
        /* A dual-stack IPv6 socket on a system that wants v4-mapped destinations
         * (Linux takes AF_INET as it is, the BSDs do not). */
        PbAddr mapped;
        pb_addr_map_v4(to, &mapped);
        n = send_once((int)sock, buf, len, &mapped, local, ifindex, 0);
    }
    if (n < 0) {
        set_errno_error(error, errno, "sendmsg to", to);
        return -1;
    }
    return n;
}

/* UDP_SEGMENT takes at most 64 segments and one IP datagram's worth of payload per call. */
#define GSO_MAX_SEGMENTS 64
#define GSO_MAX_BYTES    65000

/* Cleared for good the first time the kernel refuses segmentation offload (built without
 * it, or a route through a device that cannot checksum): then one sendmsg per datagram. */
static gint gso_usable = 1;

gssize pb_udp_send_segments(pb_socket_t sock, const void *buf, gsize len, gsize seg_len,
                            const PbAddr *to, const PbAddr *local, guint32 ifindex, GError **error)
{
    g_return_val_if_fail(sock != PB_SOCKET_NONE && to != NULL && buf != NULL, -1);
    g_return_val_if_fail(seg_len > 0 && len > 0, -1);

    gsize done = 0;
#ifdef UDP_SEGMENT
    const guint8 *p = buf;
    gsize total = (len + seg_len - 1) / seg_len;
    gsize per_call = MIN(GSO_MAX_SEGMENTS, GSO_MAX_BYTES / seg_len);
    while (per_call >= 2 && total - done >= 2 && g_atomic_int_get(&gso_usable)) {
        gsize k = MIN(per_call, total - done);
        gsize bytes = MIN(k * seg_len, len - done * seg_len);
        gssize n =
            send_once((int)sock, p + done * seg_len, bytes, to, local, ifindex, (guint16)seg_len);
        if (n >= 0) {
            done += k;
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
            break; /* the caller retries the rest when the socket drains */
        if (errno != EIO && errno != EINVAL && errno != ENOPROTOOPT && errno != EOPNOTSUPP)
            break; /* a real error: pb_udp_send below reports it */
        g_atomic_int_set(&gso_usable, 0);
    }
#endif
    return pb_udp_send_each(sock, buf, len, seg_len, done, to, local, ifindex, error);
}

gboolean pb_udp_local_addr(pb_socket_t sock, PbAddr *out)
{
    g_return_val_if_fail(out != NULL, FALSE);

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(out, 0, sizeof *out);
    if (sock == PB_SOCKET_NONE || getsockname((int)sock, (struct sockaddr *)&ss, &sl) < 0)
        return FALSE;
    pb_addr_from_sockaddr((const struct sockaddr *)&ss, out);
    return out->family != 0;
}

void pb_udp_close(pb_socket_t sock)
{
    if (sock != PB_SOCKET_NONE)
        close((int)sock);
}

guint pb_net_iface_mtu(guint32 ifindex)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ifindex == 0 || if_indextoname(ifindex, ifr.ifr_name) == NULL)
        return 0;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int rc = ioctl(fd, SIOCGIFMTU, &ifr);
    close(fd);
    return rc == 0 && ifr.ifr_mtu > 0 ? (guint)ifr.ifr_mtu : 0;
}

static guint8 mask_prefix(const struct sockaddr *mask, int family)
{
    if (mask == NULL || mask->sa_family != family)
        return family == AF_INET6 ? 128 : 32;
    const guint8 *b;
    gsize len;
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;
    if (family == AF_INET6) {
        memcpy(&s6, mask, sizeof s6);
        b = (const guint8 *)&s6.sin6_addr;
        len = 16;
    } else {
        memcpy(&s4, mask, sizeof s4);
        b = (const guint8 *)&s4.sin_addr;
        len = 4;
    }
    guint8 bits = 0;
    for (gsize i = 0; i < len; i++)
        bits += (guint8)__builtin_popcount(b[i]);
    return bits;
}

GArray *pb_net_ifaddrs(void)
{
    GArray *out = g_array_new(FALSE, TRUE, sizeof(PbIfAddr));
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) != 0)
        return out;
    for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL ||
            (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        /* Linux names an alias address by its label ("eth0:1"); the interface is the part
         * before the colon. */
        char name[IF_NAMESIZE];
        g_strlcpy(name, i->ifa_name, sizeof name);
        char *colon = strchr(name, ':');
        if (colon != NULL)
            *colon = '\0';
        PbIfAddr e = {.ifindex = if_nametoindex(name)};
        if (e.ifindex == 0)
            continue;
        pb_addr_from_sockaddr(i->ifa_addr, &e.addr);
        e.addr.port = 0;
        e.prefix = mask_prefix(i->ifa_netmask, i->ifa_addr->sa_family);
        if (i->ifa_flags & IFF_UP)
            e.flags |= PB_IFADDR_UP;
        if (i->ifa_flags & IFF_LOOPBACK)
            e.flags |= PB_IFADDR_LOOPBACK;
        g_array_append_val(out, e);
    }
    freeifaddrs(list);
    return out;
}

/* ---- multicast (net-mcast.c asks these of us) ------------------------------------------ */

int pb_net_os_socket_family(pb_socket_t sock, GError **error)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname((int)sock, (struct sockaddr *)&ss, &sl) < 0) {
        set_errno_error(error, errno, "getsockname", NULL);
        return -1;
    }
    return ss.ss_family;
}

gboolean pb_net_os_setopt(pb_socket_t sock, int level, int name, int value, const char *what,
                          GError **error)
{
    return setopt((int)sock, level, name, value, what, error);
}

gboolean pb_net_os_setopt_struct(pb_socket_t sock, int level, int name, const void *value,
                                 gsize len, const char *what, const PbAddr *about, GError **error)
{
    if (setsockopt((int)sock, level, name, value, (socklen_t)len) == 0)
        return TRUE;
    set_errno_error(error, errno, what, about);
    return FALSE;
}

gboolean pb_net_os_set_multicast_if4(pb_socket_t sock, guint32 ifindex, GError **error)
{
    /* ip_mreqn names the interface by index (Linux, FreeBSD); in_addr would need one of its
     * addresses, which an unnumbered interface does not have. */
    struct ip_mreqn mr;
    memset(&mr, 0, sizeof mr);
    mr.imr_ifindex = (int)ifindex;
    return pb_net_os_setopt_struct(sock, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr,
                                   "IP_MULTICAST_IF", NULL, error);
}

void pb_net_os_joined_group(pb_socket_t sock, const PbAddr *group)
{
#ifdef IP_MULTICAST_ALL
    /* Linux hands a socket bound to the wildcard the datagrams of every group any socket of
     * the host joined for its port; off, it gets its own groups only. */
    if (group->family == 4)
        (void)setopt((int)sock, IPPROTO_IP, IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL", NULL);
#else
    (void)sock;
    (void)group;
#endif
}

guint64 pb_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    return (guint64)rl.rlim_cur;
}
