/* imaging-net.c - access checks over the http plugin's pure helpers, and the detected
 * address (IPAddress empty, as novell-pbserv detected it). */
#include "imaging-net.h"

#include "net-access.h"
#include "net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

gboolean imaging_networks_valid(const char *const *networks)
{
    return pb_networks_valid(networks);
}

gboolean imaging_network_allows(const char *const *networks, const char *client)
{
    PbAddr a;
    if (networks == NULL || client == NULL || !pb_addr_parse(client, 0, &a))
        return FALSE;
    return pb_networks_allow((char *const *)networks, &a);
}

gboolean imaging_bearer_ok(const char *authorization, const char *token)
{
    return pb_bearer_ok(authorization, token);
}

void imaging_detect_address(const char *configured, char *out, gsize len)
{
    if (configured != NULL && *configured != '\0') {
        g_strlcpy(out, configured, len);
        return;
    }
    g_strlcpy(out, "127.0.0.1", len);
    /* connect() on a UDP socket only asks the routing table; TEST-NET-1 is never reached */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
    inet_pton(AF_INET, "192.0.2.1", &to.sin_addr);
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0 &&
        getsockname(fd, (struct sockaddr *)&me, &ml) == 0 && me.sin_addr.s_addr != 0)
        inet_ntop(AF_INET, &me.sin_addr, out, (socklen_t)len);
    close(fd);
}
