/* proxydhcp-iface.h - the IPv4 address of the interface a request came in on, for siaddr
 * and option 54 (the request's own destination is 255.255.255.255 when broadcast).
 * proxydhcp-iface-posix.c implements it with getifaddrs(); Windows gets a twin. */
#pragma once

#include <glib.h>
#include <stdbool.h>

G_BEGIN_DECLS

/* The interface's IPv4 address; when it has several, the one whose subnet holds 'near'
 * (the relay or client address; may be NULL or 0.0.0.0). False when it has none. */
bool pd_iface_ipv4(guint32 ifindex, const guint8 near[4], guint8 out[4]);
/* True when the interface holds addr. */
bool pd_iface_has(guint32 ifindex, const guint8 addr[4]);

G_END_DECLS
