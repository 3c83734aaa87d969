/* fuzz-policy-rules.c - libFuzzer target for the rules file reader and the matcher: a rules
 * file is administrator input, but it is YAML parsed by our code, and a crash there takes
 * down every boot service. Whatever parses is matched against a few devices, and the index
 * must agree with a plain walk of every rule. Built with --enable-fuzzing (clang); make
 * check replays tests/fuzz/corpus-policy-rules through test-policy-rules. */
#include "policy-rules.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *error = NULL;
    PolicyRules *rules = policy_rules_parse((const char *)data, size, "fuzz.yaml", &error);
    if (rules == NULL) {
        /* Every refusal says where. */
        if (error == NULL || !g_str_has_prefix(error->message, "fuzz.yaml:"))
            abort();
        g_error_free(error);
        return 0;
    }
    static const char *const macs[] = {"52:54:00:12:34:56", "00:50:56:aa:bb:cc", ""};
    for (gsize i = 0; i < G_N_ELEMENTS(macs); i++) {
        PolicyDevice d;
        policy_device_init(&d);
        g_strlcpy(d.mac, macs[i], sizeof(d.mac));
        if (i == 0) {
            policy_uuid_normalize("4c4c4544-0042-3510-8052-b4c04f4e4e31", d.uuid);
            d.serial = g_strdup("abc123");
            d.manufacturer = g_strdup("Dell Inc.");
            d.arch = 7;
            d.ram_mb = 8192;
            d.disk_gb = 256;
            policy_ip_parse("10.1.2.3", &d.ip);
        }
        const PolicyRule *fast = policy_rules_match(rules, &d, NULL);
        GString *why = g_string_new(NULL);
        const PolicyRule *slow = policy_rules_match(rules, &d, why);
        g_string_free(why, TRUE);
        if (fast != slow)
            abort(); /* the index gave another answer than walking every rule */
        policy_device_clear(&d);
    }
    policy_rules_free(rules);
    return 0;
}
