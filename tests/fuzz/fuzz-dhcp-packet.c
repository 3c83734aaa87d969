/* fuzz-dhcp-packet.c - libFuzzer target for everything proxydhcp does with a datagram
 * before it touches a socket: decode, classify, decide and encode, on both ports, with
 * and without a menu. Whatever comes back must be a well-formed reply that never hands
 * out an address and fits what the client accepts. Built with --enable-fuzzing (clang);
 * make check replays tests/fuzz/corpus-dhcp-packet through test-dhcp-packet. */
#include "dhcp-packet.h"
#include "proxydhcp-decide.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static PdConfig *fuzz_config(void)
{
    PdConfig *c = pd_config_new();
    for (int i = 0; i < PXE_ARCH_CLASS_N; i++) {
        g_free(c->boot_file[i]);
        c->boot_file[i] = g_strdup_printf("boot-%d.efi", i);
    }
    g_free(c->http_url);
    c->http_url = g_strdup("http://192.0.2.1/boot.efi");
    pd_config_add_menu(c, "Second=second.0", NULL);
    pd_config_add_menu(c, "Local disk=local", NULL);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static DhcpPacket req, rep;
    static PdConfig *cfg;
    if (cfg == NULL)
        cfg = fuzz_config();
    if (dhcp_packet_parse(data, size, &req) != DHCP_PARSE_OK)
        return 0;
    PdClient c;
    const char *why = NULL;
    if (!pd_classify(&req, &c, &why)) {
        if (why == NULL)
            abort();
        return 0;
    }
    for (int port = 0; port < 2; port++) {
        for (int prof = -1; prof < PD_PROFILE_N; prof++) {
            PdContext ctx = {.on_pxe_port = port == 1,
                             .src_addr = {10, 0, 0, 9},
                             .src_port = 68,
                             .server_addr = {10, 0, 0, 1},
                             .client_port = 68,
                             .server_port = 67};
            PdPolicyAnswer pol = PD_POLICY_DEFAULT;
            pol.profile = prof;
            guint8 out[1500];
            PdPlan plan;
            why = NULL;
            if (!pd_decide(cfg, &req, &c, &ctx, &pol, out, sizeof out, &plan, &why)) {
                if (why == NULL)
                    abort();
                continue;
            }
            if (plan.len < DHCP_MIN_LEN || plan.len > 1024)
                abort();
            if (dhcp_packet_parse(out, plan.len, &rep) != DHCP_PARSE_OK)
                abort();
            static const guint8 zero[4];
            if (rep.op != DHCP_BOOTREPLY || memcmp(rep.yiaddr, zero, 4) != 0 ||
                rep.xid != req.xid || rep.msg_type != plan.reply_type || !rep.has_end)
                abort();
            if (memchr(rep.file, 0, sizeof rep.file) == NULL)
                abort();
        }
    }
    return 0;
}
