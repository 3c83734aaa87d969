/* net-sockaddr.h - PbAddr to and from struct sockaddr, for the two OS layers (lib/net/net-posix.c
 * and lib/net/net-win32.c), which include their own socket headers before this one. Inline,
 * so that the builds share the code and no symbol. */
#pragma once

#include "net.h"

#include <string.h>

/* Fills ss for a; returns the length of the address in it. */
static inline gsize pb_sockaddr_from_addr(const PbAddr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (a->family == 6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(a->port);
        memcpy(&s6->sin6_addr, a->addr, 16);
        s6->sin6_scope_id = a->scope_id;
        return sizeof *s6;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(a->port);
    memcpy(&s4->sin_addr, a->addr, 4);
    return sizeof *s4;
}

/* An IPv6 address (16 bytes); a v4-mapped one, as a dual-stack socket reports IPv4 peers,
 * becomes the IPv4 address it carries. */
static inline void pb_addr_from_in6(const void *in6, guint16 port, guint32 scope_id, PbAddr *out)
{
    static const guint8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(out, 0, sizeof *out);
    out->port = port;
    if (memcmp(in6, mapped, sizeof mapped) == 0) {
        out->family = 4;
        memcpy(out->addr, (const guint8 *)in6 + 12, 4);
    } else {
        out->family = 6;
        memcpy(out->addr, in6, 16);
        out->scope_id = scope_id;
    }
}

/* family 0 for anything but IPv4 and IPv6. Copies before reading: sa may be unaligned. */
static inline void pb_addr_from_sockaddr(const struct sockaddr *sa, PbAddr *out)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in s4;
        memcpy(&s4, sa, sizeof s4);
        out->family = 4;
        out->port = ntohs(s4.sin_port);
        memcpy(out->addr, &s4.sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 s6;
        memcpy(&s6, sa, sizeof s6);
        pb_addr_from_in6(&s6.sin6_addr, ntohs(s6.sin6_port), s6.sin6_scope_id, out);
    }
}

/* The v4-mapped IPv6 form of an IPv4 address, for dual-stack sockets that want it. */
static inline void pb_addr_map_v4(const PbAddr *v4, PbAddr *v6)
{
    memset(v6, 0, sizeof *v6);
    v6->family = 6;
    v6->port = v4->port;
    v6->addr[10] = v6->addr[11] = 0xff;
    memcpy(v6->addr + 12, v4->addr, 4);
}
