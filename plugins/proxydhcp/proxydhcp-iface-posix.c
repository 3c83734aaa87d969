/* proxydhcp-iface-posix.c - interface addresses through getifaddrs(3). */
#include "proxydhcp-iface.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static bool same_subnet(const struct ifaddrs *a, const guint8 near[4])
{
    if (a->ifa_netmask == NULL)
        return false;
    guint8 ip[4], mask[4];
    memcpy(ip, &((const struct sockaddr_in *)a->ifa_addr)->sin_addr, 4);
    memcpy(mask, &((const struct sockaddr_in *)a->ifa_netmask)->sin_addr, 4);
    for (int i = 0; i < 4; i++)
        if ((ip[i] & mask[i]) != (near[i] & mask[i]))
            return false;
    return true;
}

/* Walks the IPv4 addresses of ifindex; fn returns true to stop. */
static bool walk(guint32 ifindex, bool (*fn)(const struct ifaddrs *a, void *data), void *data)
{
    char name[IF_NAMESIZE];
    if (ifindex == 0 || if_indextoname(ifindex, name) == NULL)
        return false;
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) != 0)
        return false;
    bool stopped = false;
    for (struct ifaddrs *a = list; a != NULL && !stopped; a = a->ifa_next) {
        if (a->ifa_addr == NULL || a->ifa_addr->sa_family != AF_INET)
            continue;
        /* Aliases appear as "eth0:1" with the same index; compare the base name. */
        gsize n = strlen(name);
        if (strncmp(a->ifa_name, name, n) != 0 || (a->ifa_name[n] != '\0' && a->ifa_name[n] != ':'))
            continue;
        stopped = fn(a, data);
    }
    freeifaddrs(list);
    return stopped;
}

typedef struct {
    const guint8 *near;
    guint8 *out;
    bool found;
} Pick;

static bool pick(const struct ifaddrs *a, void *data)
{
    Pick *p = data;
    if (!p->found) {
        memcpy(p->out, &((const struct sockaddr_in *)a->ifa_addr)->sin_addr, 4);
        p->found = true;
    }
    if (p->near != NULL && same_subnet(a, p->near)) {
        memcpy(p->out, &((const struct sockaddr_in *)a->ifa_addr)->sin_addr, 4);
        return true;
    }
    return false;
}

bool pd_iface_ipv4(guint32 ifindex, const guint8 near[4], guint8 out[4])
{
    static const guint8 zero[4];
    Pick p = {.near = (near && memcmp(near, zero, 4) != 0) ? near : NULL, .out = out};
    walk(ifindex, pick, &p);
    return p.found;
}

static bool has(const struct ifaddrs *a, void *data)
{
    return memcmp(&((const struct sockaddr_in *)a->ifa_addr)->sin_addr, data, 4) == 0;
}

bool pd_iface_has(guint32 ifindex, const guint8 addr[4])
{
    return walk(ifindex, has, (void *)addr);
}
