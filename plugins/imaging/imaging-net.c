/* imaging-net.c - access checks over the http plugin's pure helpers. The detected address
 * (IPAddress empty, as novell-pbserv detected it) is in imaging-addr-posix.c and its Windows
 * twin imaging-addr-win32.c. */
#include "imaging-net.h"

#include "net-access.h"
#include "net.h"

#include <string.h>

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
