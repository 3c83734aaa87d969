/* net-os.h - the few socket calls the portable files of libpbnet ask of the OS twins
 * (lib/net/net-posix.c, lib/net/net-win32.c) beyond net.h: Winsock and POSIX differ in the
 * descriptor type, the option value type and where the error is (WSAGetLastError, errno),
 * not in what these do. Internal to the library (hidden like the rest of it): no plugin
 * includes this. */
#pragma once

#include "net.h"

G_BEGIN_DECLS

/* The address family (AF_INET, AF_INET6) the socket was opened with, which its bound
 * address tells; -1 with error. */
int pb_net_os_socket_family(pb_socket_t sock, GError **error);
/* An integer socket option; what names it in the error ("setsockopt(what): reason"). */
gboolean pb_net_os_setopt(pb_socket_t sock, int level, int name, int value, const char *what,
                          GError **error);
/* A socket option that is a structure; the error reads "what about: reason" (about may be
 * NULL). */
gboolean pb_net_os_setopt_struct(pb_socket_t sock, int level, int name, const void *value,
                                 gsize len, const char *what, const PbAddr *about, GError **error);
/* The interface IPv4 multicast leaves by, by index: each OS names it in its own way. */
gboolean pb_net_os_set_multicast_if4(pb_socket_t sock, guint32 ifindex, GError **error);
/* What the OS needs after a socket joined an IPv4 or IPv6 group, beyond RFC 3678. */
void pb_net_os_joined_group(pb_socket_t sock, const PbAddr *group);

G_END_DECLS
