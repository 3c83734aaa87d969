/* http-sockaddr-posix.c - PbAddr to struct sockaddr and back for libmicrohttpd, through the
 * OS layers' own conversions (net-sockaddr.h). */
#include "http-sockaddr.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "net-sockaddr.h" /* after the socket headers */

gsize http_sockaddr_from(const PbAddr *a, void *storage, gsize cap)
{
    if (a->family != 4 && a->family != 6)
        return 0;
    struct sockaddr_storage ss;
    gsize n = pb_sockaddr_from_addr(a, &ss);
    if (n > cap)
        return 0;
    memcpy(storage, &ss, n); /* storage may be any byte buffer: no alignment assumed */
    return n;
}

gboolean http_sockaddr_format(const void *sa, char *buf, gsize len, guint16 *port)
{
    if (sa == NULL)
        return FALSE;
    PbAddr a;
    pb_addr_from_sockaddr(sa, &a); /* v4-mapped IPv6 comes back as IPv4 */
    if (a.family == 0)
        return FALSE;
    *port = a.port;
    pb_addr_format(&a, FALSE, buf, len);
    return TRUE;
}
