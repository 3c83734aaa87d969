/* http-sockaddr-posix.c - PbAddr to struct sockaddr for libmicrohttpd (POSIX). */
#include "http-sockaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

gsize http_sockaddr_from(const PbAddr *a, void *storage, gsize cap)
{
    if (a->family == 4 && cap >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in *s = storage;
        memset(s, 0, sizeof(*s));
        s->sin_family = AF_INET;
        s->sin_port = htons(a->port);
        memcpy(&s->sin_addr, a->addr, 4);
        return sizeof(*s);
    }
    if (a->family == 6 && cap >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 *s = storage;
        memset(s, 0, sizeof(*s));
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(a->port);
        memcpy(&s->sin6_addr, a->addr, 16);
        s->sin6_scope_id = a->scope_id;
        return sizeof(*s);
    }
    return 0;
}

gboolean http_sockaddr_format(const void *sa, char *buf, gsize len, guint16 *port)
{
    const struct sockaddr *s = sa;
    if (s == NULL)
        return FALSE;
    if (s->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = sa;
        *port = ntohs(v4->sin_port);
        return inet_ntop(AF_INET, &v4->sin_addr, buf, (socklen_t)len) != NULL;
    }
    if (s->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = sa;
        *port = ntohs(v6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
            return inet_ntop(AF_INET, v6->sin6_addr.s6_addr + 12, buf, (socklen_t)len) != NULL;
        return inet_ntop(AF_INET6, &v6->sin6_addr, buf, (socklen_t)len) != NULL;
    }
    return FALSE;
}
