/* test-mcast-record.c - a session's record as the multicast plugin serves it and
 * preboot-img session reads it (lib/mcast/mcast-record.c): round trips in every state,
 * other members ignored, and every refusal (not JSON, not an object, a missing or invalid
 * name, an unknown state, a seal that is not 64 hex digits, too long). */
#include "mcast-record.h"

#include <string.h>

static PbMcastRecord sample(guint8 state)
{
    PbMcastRecord r = {.state = state};
    strcpy(r.session, "room-101");
    strcpy(r.image, "win11.base_2");
    for (int i = 0; i < MCAST_HASH_LEN; i++)
        r.seal[i] = (guint8)(i * 37 + 5);
    return r;
}

static void test_round_trip(void)
{
    for (guint8 st = MCAST_STATE_WAITING; st <= MCAST_STATE_ABORTED; st++) {
        PbMcastRecord r = sample(st), p;
        g_autoptr(GString) out = g_string_new(NULL);
        pb_mcast_record_build(&r, out);
        g_assert_true(g_str_has_suffix(out->str, "}\n"));
        g_autoptr(GError) e = NULL;
        g_assert_true(pb_mcast_record_parse(out->str, out->len, &p, &e));
        g_assert_no_error(e);
        g_assert_cmpstr(p.session, ==, "room-101");
        g_assert_cmpstr(p.image, ==, "win11.base_2");
        g_assert_cmpuint(p.state, ==, st);
        g_assert_cmpmem(p.seal, MCAST_HASH_LEN, r.seal, MCAST_HASH_LEN);
    }
    PbMcastRecord r = sample(MCAST_STATE_DONE);
    g_autoptr(GString) out = g_string_new(NULL);
    pb_mcast_record_build(&r, out);
    g_assert_nonnull(strstr(out->str, "\"session\":\"room-101\",\"image\":\"win11.base_2\","
                                      "\"state\":\"done\",\"seal\":\"052a"));
}

static void test_extra_members(void)
{
    const char *t = "{\"passes\":3,\"session\":\"a\",\"image\":\"b\",\"state\":\"aborted\","
                    "\"seal\":\"00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\","
                    "\"receivers\":[1,2]}";
    PbMcastRecord p;
    g_assert_true(pb_mcast_record_parse(t, strlen(t), &p, NULL));
    g_assert_cmpuint(p.state, ==, MCAST_STATE_ABORTED);
    g_assert_cmpuint(p.seal[10], ==, 0xaa);
    g_assert_cmpuint(p.seal[31], ==, 0xff);
}

static void refused(const char *text, const char *why)
{
    PbMcastRecord p;
    g_autoptr(GError) e = NULL;
    g_assert_false(pb_mcast_record_parse(text, strlen(text), &p, &e));
    g_assert_nonnull(e);
    if (why != NULL && strstr(e->message, why) == NULL)
        g_error("\"%s\": %s (expected %s)", text, e->message, why);
}

#define SEAL "\"seal\":\"0000000000000000000000000000000000000000000000000000000000000000\""

static void test_refusals(void)
{
    refused("", NULL);
    refused("not json", NULL);
    refused("[1,2]", "not an object");
    refused("{\"image\":\"b\",\"state\":\"done\"," SEAL "}", "\"session\"");
    refused("{\"session\":\".hidden\",\"image\":\"b\",\"state\":\"done\"," SEAL "}", "\"session\"");
    refused("{\"session\":\"a/b\",\"image\":\"b\",\"state\":\"done\"," SEAL "}", "\"session\"");
    refused("{\"session\":\"a\",\"image\":\"../etc\",\"state\":\"done\"," SEAL "}", "\"image\"");
    refused("{\"session\":\"a\",\"image\":7,\"state\":\"done\"," SEAL "}", "\"image\"");
    refused("{\"session\":\"a\",\"image\":\"b\",\"state\":\"finished\"," SEAL "}", "\"state\"");
    refused("{\"session\":\"a\",\"image\":\"b\"," SEAL "}", "\"state\"");
    refused("{\"session\":\"a\",\"image\":\"b\",\"state\":\"done\"}", "\"seal\"");
    refused("{\"session\":\"a\",\"image\":\"b\",\"state\":\"done\",\"seal\":\"00\"}", "\"seal\"");
    refused("{\"session\":\"a\",\"image\":\"b\",\"state\":\"done\",\"seal\":"
            "\"000000000000000000000000000000000000000000000000000000000000000g\"}",
            "\"seal\"");
    /* a name one byte over MCAST_NAME_MAX */
    g_autofree char *longname = g_strnfill(MCAST_NAME_MAX + 1, 'x');
    g_autofree char *t = g_strdup_printf(
        "{\"session\":\"%s\",\"image\":\"b\",\"state\":\"done\"," SEAL "}", longname);
    refused(t, "\"session\"");
    g_autofree char *big = g_strnfill(PB_MCAST_RECORD_MAX + 1, ' ');
    refused(big, "too long");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/mcast-record/round-trip", test_round_trip);
    g_test_add_func("/mcast-record/extra-members", test_extra_members);
    g_test_add_func("/mcast-record/refusals", test_refusals);
    return g_test_run();
}
