/* net.h - UDP for the protocol plugins and their clients, behind one header: bind, receive
 * with the address the datagram arrived on (IP_PKTINFO) and leave from it, the host's
 * interface addresses, MTU of an interface, path-MTU discovery off, IPv4/IPv6 multicast
 * groups. lib/net/net-posix.c implements the OS part; lib/net/net-win32.c is its Windows
 * twin; net-common.c, net-send.c, net-ifaddr.c and net-mcast.c are portable (net-os.h: the
 * few socket calls net-mcast.c asks of the twins). Built as a convenience library (libpbnet)
 * linked into each plugin (plugins must not link against the daemon's symbols), so this
 * library may use glib but never host state, and includes nothing of core/ or plugins/. */
#pragma once

#include <glib.h>
#include <preboot/plugin.h>

G_BEGIN_DECLS

typedef struct {
    guint8 family;    /* 4 or 6; 0 = unset */
    guint16 port;     /* host order */
    guint8 addr[16];  /* network order; IPv4 uses the first 4 bytes */
    guint32 scope_id; /* IPv6 scope */
} PbAddr;

/* Errors of the socket calls. Our own domain rather than G_IO_ERROR so that libpbnet and
 * the plugins need glib only, not gio. */
#define PB_NET_ERROR (pb_net_error_quark())
GQuark pb_net_error_quark(void);
typedef enum {
    PB_NET_ERROR_FAILED,
    PB_NET_ERROR_WOULD_BLOCK,       /* nothing queued (EAGAIN); not a failure */
    PB_NET_ERROR_ADDRESS_IN_USE,    /* bind: EADDRINUSE */
    PB_NET_ERROR_PERMISSION_DENIED, /* bind to a port < 1024 without privilege; EACCES */
    PB_NET_ERROR_INVALID_ARGUMENT,  /* bad address/family */
    PB_NET_ERROR_MESSAGE_TOO_LARGE, /* a datagram larger than the buffer (dropped) / EMSGSIZE */
    PB_NET_ERROR_UNREACHABLE,       /* ENETUNREACH, EHOSTUNREACH, ECONNREFUSED (ICMP) */
} PbNetError;
/* TRUE when error is PB_NET_ERROR_WOULD_BLOCK (the normal end of a read loop). */
gboolean pb_net_error_would_block(const GError *error);

/* Parses an IPv4/IPv6 literal; an empty or NULL text gives the IPv4 wildcard. */
gboolean pb_addr_parse(const char *text, guint16 port, PbAddr *out);
/* "192.0.2.1" or "2001:db8::1"; with_port adds ":port" ("[v6]:port"). buf >= 64. */
const char *pb_addr_format(const PbAddr *a, gboolean with_port, char *buf, gsize len);
gboolean pb_addr_equal(const PbAddr *a, const PbAddr *b); /* address and port */
gboolean pb_addr_is_any(const PbAddr *a);
gboolean pb_addr_is_multicast_or_broadcast(const PbAddr *a);
/* CIDR match: "10.0.0.0/8", "2001:db8::/32", or a bare address. */
gboolean pb_addr_in_network(const PbAddr *a, const char *cidr);

enum {
    PB_UDP_PKTINFO = 1u << 0,   /* report destination address and interface of datagrams */
    PB_UDP_BROADCAST = 1u << 1, /* may send to broadcast addresses */
    PB_UDP_REUSEADDR = 1u << 2,
    PB_UDP_NO_PMTUD = 1u << 3, /* never set DF: boot firmware cannot reassemble, so we
                                  must not depend on ICMP "fragmentation needed" */
    PB_UDP_V6ONLY = 1u << 4,
};

/* A non-blocking UDP socket bound to bind (port 0 = ephemeral). */
pb_socket_t pb_udp_open(const PbAddr *bind, unsigned flags, GError **error);
/* Returns bytes read, or -1 with error (PB_NET_ERROR_WOULD_BLOCK when nothing is queued).
 * IPv4 peers of a dual-stack IPv6 socket are reported as family 4 (not v4-mapped), and
 * pb_udp_send accepts family 4 destinations on such a socket. local->port is the socket's.
 * local and ifindex are filled when the socket has PB_UDP_PKTINFO (else zeroed). */
gssize pb_udp_recv(pb_socket_t sock, void *buf, gsize len, PbAddr *from, PbAddr *local,
                   guint32 *ifindex, GError **error);
/* Sends from the given local address (NULL or any: the kernel chooses). */
gssize pb_udp_send(pb_socket_t sock, const void *buf, gsize len, const PbAddr *to,
                   const PbAddr *local, guint32 ifindex, GError **error);
/* Sends a run of datagrams laid out back to back in buf: every one seg_len bytes long but
 * the last, which may be shorter (len - (n - 1) * seg_len). One system call carries many
 * where the OS can (UDP segmentation offload on Linux), which on a window of TFTP blocks
 * spares a syscall, a route lookup and a receiver wake-up per datagram. Returns how many
 * datagrams the socket took: fewer than all when its buffer filled (not an error), -1
 * with error when not even the first was sent (PB_NET_ERROR_WOULD_BLOCK when full). */
gssize pb_udp_send_segments(pb_socket_t sock, const void *buf, gsize len, gsize seg_len,
                            const PbAddr *to, const PbAddr *local, guint32 ifindex, GError **error);
/* The portable half of pb_udp_send_segments: one pb_udp_send per datagram from datagram
 * first on; for the OS layers, which try their batched ways first. */
gssize pb_udp_send_each(pb_socket_t sock, const void *buf, gsize len, gsize seg_len, gsize first,
                        const PbAddr *to, const PbAddr *local, guint32 ifindex, GError **error);
gboolean pb_udp_local_addr(pb_socket_t sock, PbAddr *out);
void pb_udp_close(pb_socket_t sock);
/* MTU of an interface by index, or 0 when unknown. */
guint pb_net_iface_mtu(guint32 ifindex);
/* How many descriptors (files and sockets together) this process may hold open: the soft
 * RLIMIT_NOFILE on POSIX. 0 when there is no such limit or it is not known (Windows: sockets
 * and files have no common small limit there). For start-up warnings. */
guint64 pb_fd_limit(void);
/* The first non-loopback IPv4 address of an interface that is up (for "detect" settings). */
gboolean pb_net_default_addr(PbAddr *out);

/* ---- interface addresses ---------------------------------------------------------------- */

enum {
    PB_IFADDR_UP = 1u << 0,
    PB_IFADDR_LOOPBACK = 1u << 1,
};

/* One unicast address of one interface. */
typedef struct {
    guint32 ifindex; /* aliases ("eth0:1") carry the index of their interface */
    PbAddr addr;     /* family 4 or 6, port 0 */
    guint8 prefix;   /* on-link prefix length: 0-32 for IPv4, 0-128 for IPv6 */
    guint flags;     /* PB_IFADDR_* */
} PbIfAddr;

/* Every IPv4 and IPv6 unicast address of every interface, up or not, loopback included, in
 * the system's order (getifaddrs, GetAdaptersAddresses). A GArray of PbIfAddr; never NULL,
 * empty when the system says nothing. Free with g_array_unref. The OS twins implement only
 * this; the questions below are portable code over its answer. */
GArray *pb_net_ifaddrs(void);

/* TRUE when a lies in e's subnet (same family, same prefix). */
gboolean pb_ifaddr_contains(const PbIfAddr *e, const PbAddr *a);
/* The subnet-directed broadcast (host part all ones) and network (all zeros) addresses of an
 * IPv4 entry; FALSE for IPv6 and for /31 (RFC 3021) and /32, which have neither. */
gboolean pb_ifaddr_broadcast(const PbIfAddr *e, PbAddr *broadcast, PbAddr *network);
/* The IPv4 address of interface ifindex; when it has several, the one whose subnet holds
 * near (NULL or 0.0.0.0: the first). FALSE when the interface has no IPv4 address. */
gboolean pb_ifaddrs_pick_ipv4(const GArray *list, guint32 ifindex, const PbAddr *near, PbAddr *out);
/* The first IPv4 address of an interface that is up and not loopback. */
gboolean pb_ifaddrs_default_ipv4(const GArray *list, PbAddr *out);
/* TRUE when interface ifindex holds addr (port ignored). */
gboolean pb_ifaddrs_has(const GArray *list, guint32 ifindex, const PbAddr *addr);
/* TRUE when a is the broadcast or old-style all-zeros network address of one of the IPv4
 * subnets in list (what IP_PKTINFO reports for a subnet-directed broadcast). */
gboolean pb_ifaddrs_is_directed_broadcast(const GArray *list, const PbAddr *a);

/* ---- multicast ---------------------------------------------------------------------------- */

/* Joins (leaves) group on interface ifindex (0: the one the routing table picks) for
 * receiving on sock, which must be of the group's family. After a join the socket gets the
 * datagrams of the groups IT joined only, not those other sockets of the host joined for the
 * same port (Linux's IP_MULTICAST_ALL default), so two sessions never see each other's. */
gboolean pb_udp_join_group(pb_socket_t sock, const PbAddr *group, guint32 ifindex, GError **error);
gboolean pb_udp_leave_group(pb_socket_t sock, const PbAddr *group, guint32 ifindex, GError **error);
/* For sending to groups: the interface datagrams leave by (0: the routing table's), their
 * TTL / hop limit (1 keeps them on the link), and whether the host's own members of the
 * group receive them too (loop). */
gboolean pb_udp_set_multicast_if(pb_socket_t sock, guint32 ifindex, GError **error);
gboolean pb_udp_set_multicast_ttl(pb_socket_t sock, guint ttl, GError **error);
gboolean pb_udp_set_multicast_loop(pb_socket_t sock, gboolean loop, GError **error);

G_END_DECLS
