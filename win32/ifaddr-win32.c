/* ifaddr-win32.c - see ifaddr-win32.h. */
#include "win32-sock.h"

#include "ifaddr-win32.h"

#include <iphlpapi.h>
#include <string.h>

GArray *pb_win32_ipv4_list(void)
{
    GArray *out = g_array_new(FALSE, TRUE, sizeof(PbWin32Ipv4));
    ULONG size = 16 * 1024, rc = ERROR_BUFFER_OVERFLOW;
    g_autofree IP_ADAPTER_ADDRESSES *list = NULL;
    /* the list can grow between the sizing call and the real one */
    for (int tries = 0; tries < 3 && rc == ERROR_BUFFER_OVERFLOW; tries++) {
        g_free(list);
        list = g_malloc(size);
        rc = GetAdaptersAddresses(
            AF_INET, GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST | GAA_FLAG_SKIP_DNS_SERVER,
            NULL, list, &size);
    }
    if (rc != NO_ERROR)
        return out;
    for (IP_ADAPTER_ADDRESSES *a = list; a != NULL; a = a->Next) {
        if (a->OperStatus != IfOperStatusUp)
            continue;
        for (IP_ADAPTER_UNICAST_ADDRESS *u = a->FirstUnicastAddress; u != NULL; u = u->Next) {
            const struct sockaddr *sa = u->Address.lpSockaddr;
            if (sa == NULL || sa->sa_family != AF_INET)
                continue;
            PbWin32Ipv4 e = {.ifindex = a->IfIndex};
            memcpy(e.addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
            e.prefix = u->OnLinkPrefixLength <= 32 ? u->OnLinkPrefixLength : 32;
            guint32 m = e.prefix == 0 ? 0 : htonl(0xffffffffu << (32 - e.prefix));
            memcpy(e.mask, &m, 4);
            g_array_append_val(out, e);
        }
    }
    return out;
}
