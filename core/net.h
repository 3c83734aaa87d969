/* net.h - UDP for the protocol plugins, behind one header: bind, receive with the
 * address the datagram arrived on (IP_PKTINFO) and leave from it, MTU of an interface,
 * path-MTU discovery off. core/net-posix.c implements it; win32/net-win32.c for Windows.
 * Built as a static convenience library linked into each plugin (plugins must not link
 * against the daemon's symbols), so this file may use glib but never host state. */
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
/* The first non-loopback IPv4 address of the host (for "detect" settings). */
gboolean pb_net_default_addr(PbAddr *out);

G_END_DECLS
