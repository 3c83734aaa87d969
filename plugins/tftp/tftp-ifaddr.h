/* tftp-ifaddr.h - is an IPv4 destination a subnet-directed broadcast of one of our
 * interfaces? IP_PKTINFO reports the header's destination, and pb_addr_is_multicast_or_
 * broadcast() can only see 255.255.255.255 and multicast: telling 10.1.255.255 from a
 * unicast address takes the interface netmasks, which this asks the system for through
 * lib/net (pb_net_ifaddrs: getifaddrs() or GetAdaptersAddresses()). */
#pragma once

#include "net.h"

G_BEGIN_DECLS

/* TRUE for the broadcast (host part all ones) or old-style all-zeros network address of a
 * configured IPv4 subnet. The interface list is re-read at most every few seconds. */
gboolean tftp_addr_is_directed_broadcast(const PbAddr *a, guint64 now_us);

G_END_DECLS
