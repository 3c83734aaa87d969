/* fuzz-addr.c - address literals and CIDR networks as configuration files give them
 * (lib/net/net-common.c): parse, format, parse again to the same address; CIDR matching on
 * arbitrary text. Input: "ADDRESS\nNETWORK". */
#include "net.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = g_strndup((const char *)data, size);
    char *nl = strchr(text, '\n');
    const char *cidr = "";
    if (nl != NULL) {
        *nl = '\0';
        cidr = nl + 1;
    }
    PbAddr a;
    if (pb_addr_parse(text, 4011, &a)) {
        char buf[80], buf2[80];
        pb_addr_format(&a, FALSE, buf, sizeof buf);
        PbAddr b;
        g_assert_true(pb_addr_parse(buf, 4011, &b));
        g_assert_true(pb_addr_equal(&a, &b));
        pb_addr_format(&a, TRUE, buf2, sizeof buf2);
        /* An address is in its own /32 or /128 and in ::/0 or 0.0.0.0/0. */
        g_assert_true(pb_addr_in_network(&a, buf));
        g_assert_true(pb_addr_in_network(&a, a.family == 6 ? "::/0" : "0.0.0.0/0"));
        (void)pb_addr_in_network(&a, cidr);
        (void)pb_addr_is_any(&a);
        (void)pb_addr_is_multicast_or_broadcast(&a);
    }
    g_free(text);
    return 0;
}
