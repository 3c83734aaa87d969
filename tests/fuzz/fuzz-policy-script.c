/* fuzz-policy-script.c - what an iPXE client controls in its script: the Host header (as
 * the base URL the kernel, initrd and preboot.server come from) and, under /preboot/, the
 * file name (policy-script.c, policy-static.c). Input: "HOST\nNAME". Whatever the input,
 * the script has exactly the lines of its template, expands no iPXE setting but BOOTIF's,
 * and a name the route accepts cannot leave its directory. */
#include "policy-engine.h"
#include "policy-script.h"
#include "policy-static.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char rules_yaml[] = "imaging:\n"
                                 "  kernel: preboot/vmlinuz\n"
                                 "  initrd: preboot/initrd.img\n"
                                 "  args: quiet\n";

static guint count_lines(const char *s)
{
    guint n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static PolicyRules *rules;
    if (rules == NULL)
        rules = policy_rules_parse(rules_yaml, strlen(rules_yaml), "fuzz.yaml", NULL);
    g_assert_nonnull(rules);
    PolicyEngine e;
    memset(&e, 0, sizeof(e));
    e.rules = rules;

    char *text = g_strndup((const char *)data, size);
    char *nl = strchr(text, '\n');
    const char *name = "";
    if (nl != NULL) {
        *nl = '\0';
        name = nl + 1;
    }
    char *base = g_strconcat("http://", text, NULL);
    pb_policy_decision d = {.struct_size = sizeof(d), .action = PB_POLICY_BOOT};
    d.work = PB_POLICY_WORK_CAPTURE;
    d.menu = PB_POLICY_MENU_F8;
    g_strlcpy(d.work_arg, "golden", sizeof(d.work_arg));
    g_strlcpy(d.device_id, "mac:52:54:00:00:00:01", sizeof(d.device_id));
    char *script = policy_ipxe_script(&e, &d, base);
    char *reference = policy_ipxe_script(&e, &d, "http://192.0.2.1:8080");
    g_assert_cmpuint(count_lines(script), ==, count_lines(reference));
    /* "${" only where the template puts it: the menu's target and BOOTIF (twice). */
    guint expansions = 0;
    for (const char *p = script; (p = strstr(p, "${")) != NULL; p += 2)
        expansions++;
    g_assert_cmpuint(expansions, ==, 3);
    if (policy_server_valid(text))
        g_assert_nonnull(strstr(script, " preboot.server="));
    else
        g_assert_null(strstr(script, " preboot.server="));
    g_free(reference);
    g_free(script);
    g_free(base);

    if (policy_static_name_valid(name)) {
        g_assert_null(strchr(name, '/'));
        g_assert_null(strchr(name, '\\'));
        g_assert_cmpint(name[0], !=, '.');
        g_assert_cmpuint(strlen(name), <=, 128);
    }
    g_free(text);
    return 0;
}
