/* ifaddr-win32.h - the host's IPv4 addresses with their prefix lengths and interface
 * indexes (GetAdaptersAddresses), for the plugins' Windows twins of getifaddrs() users:
 * tftp-ifaddr-win32.c and proxydhcp-iface-win32.c. Compiled into each plugin. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    guint32 ifindex;
    guint8 addr[4];
    guint8 mask[4];
    guint8 prefix; /* 0-32 */
} PbWin32Ipv4;

/* Every IPv4 unicast address of every interface that is up (loopback included).
 * Free with g_array_unref. Never NULL; empty when the system says nothing. */
GArray *pb_win32_ipv4_list(void);

G_END_DECLS
