/* http-sockaddr.h - a listening address for libmicrohttpd, which wants a struct sockaddr.
 * http-sockaddr-posix.c serves both: the Windows build finds the POSIX socket headers in
 * win32/posix/, which include Winsock's (the same sockaddr_in/in6 and inet_ntop). */
#pragma once

#include "net.h"

G_BEGIN_DECLS

/* Fills storage (cap bytes, any alignment) from a; returns the sockaddr length, 0 when a
 * is no IP address or storage is too small. */
gsize http_sockaddr_from(const PbAddr *a, void *storage, gsize cap);

/* Formats a struct sockaddr (IPv4, IPv6; v4-mapped IPv6 shown as IPv4) as text into buf
 * (>= 64 bytes) and its port into *port. FALSE for other families. */
gboolean http_sockaddr_format(const void *sa, char *buf, gsize len, guint16 *port);

G_END_DECLS
