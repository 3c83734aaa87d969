/* net-access.c - see net-access.h. */
#include "net-access.h"

#include <string.h>

static gboolean network_valid(const char *cidr)
{
    g_autofree char *text = g_strdup(cidr);
    char *slash = strchr(text, '/');
    if (slash != NULL)
        *slash = '\0';
    PbAddr a;
    if (*text == '\0' || !pb_addr_parse(text, 0, &a))
        return FALSE;
    if (slash == NULL)
        return TRUE;
    const char *bits = slash + 1;
    guint64 n;
    if (*bits == '\0' || strspn(bits, "0123456789") != strlen(bits) ||
        !g_ascii_string_to_unsigned(bits, 10, 0, a.family == 6 ? 128 : 32, &n, NULL))
        return FALSE;
    return TRUE;
}

gboolean pb_networks_valid(const char *const *networks)
{
    for (guint i = 0; networks != NULL && networks[i] != NULL; i++)
        if (!network_valid(networks[i]))
            return FALSE;
    return TRUE;
}

gboolean pb_networks_allow(char *const *networks, const PbAddr *client)
{
    if (networks == NULL)
        return TRUE;
    for (guint i = 0; networks[i] != NULL; i++)
        if (pb_addr_in_network(client, networks[i]))
            return TRUE;
    return FALSE;
}

gboolean pb_bearer_ok(const char *authorization, const char *token)
{
    if (authorization == NULL || token == NULL || *token == '\0')
        return FALSE;
    const char *p = authorization;
    while (*p == ' ')
        p++;
    if (g_ascii_strncasecmp(p, "Bearer ", 7) != 0)
        return FALSE;
    p += 7;
    while (*p == ' ')
        p++;
    gsize got = strlen(p), want = strlen(token);
    /* Always walk the whole expected token; the given one is read in bounds. */
    guint diff = got != want;
    for (gsize i = 0; i < want; i++)
        diff |= (guint)(guchar)token[i] ^ (guint)(guchar)(i < got ? p[i] : 0);
    return diff == 0;
}
