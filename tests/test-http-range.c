/* test-http-range.c - the pure parts of the http plugin: the Range parser (RFC 9110
 * section 14), client network lists and the bearer token check, route options; and a
 * replay of the Range fuzz corpus. */
#include "net-access.h"
#include "http-range.h"
#include "http-routes.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const guint8 *data, gsize size);

static void check_range(const char *v, guint64 size, HttpRangeResult want, guint64 wfirst,
                        guint64 wlast)
{
    guint64 first = 77, last = 77;
    HttpRangeResult r = http_range_parse(v, size, &first, &last);
    if (r != want)
        g_error("'%s' of %" G_GUINT64_FORMAT ": %d, expected %d", v ? v : "(null)", size, r, want);
    if (r == HTTP_RANGE_OK) {
        g_assert_cmpuint(first, ==, wfirst);
        g_assert_cmpuint(last, ==, wlast);
    }
}

static void test_range(void)
{
    check_range(NULL, 100, HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=0-9", 100, HTTP_RANGE_OK, 0, 9);
    check_range("bytes=10-", 100, HTTP_RANGE_OK, 10, 99);
    check_range("bytes=90-200", 100, HTTP_RANGE_OK, 90, 99); /* clipped */
    check_range("bytes=-10", 100, HTTP_RANGE_OK, 90, 99);
    check_range("bytes=-1000", 100, HTTP_RANGE_OK, 0, 99);
    check_range(" Bytes = 5 - 7 ", 100, HTTP_RANGE_NONE, 0, 0); /* no spaces inside a spec */
    check_range("bytes = 5-7", 100, HTTP_RANGE_OK, 5, 7);
    check_range("bytes=99-99", 100, HTTP_RANGE_OK, 99, 99);
    /* Unsatisfiable: 416. */
    check_range("bytes=100-", 100, HTTP_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=100-200", 100, HTTP_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=-0", 100, HTTP_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=0-", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=-5", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0);
    /* Ignored: 200 with everything. */
    check_range("bytes=9-0", 100, HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=0-1,5-6", 100, HTTP_RANGE_NONE, 0, 0);
    check_range("items=0-1", 100, HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=", 100, HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=-", 100, HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=a-b", 100, HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=+1-2", 100, HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=99999999999999999999999-", 100, HTTP_RANGE_NONE, 0, 0);
    check_range("bytes=18446744073709551615-", 100, HTTP_RANGE_UNSATISFIABLE, 0, 0);
    check_range("bytes=0-18446744073709551615", G_MAXUINT64, HTTP_RANGE_OK, 0, G_MAXUINT64 - 1);
}

static void test_networks(void)
{
    const char *good[] = {"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1", NULL};
    g_assert_true(pb_networks_valid(good));
    g_assert_true(pb_networks_valid(NULL));
    const char *bad1[] = {"10.0.0.0/33", NULL}, *bad2[] = {"nonsense", NULL},
               *bad3[] = {"10.0.0.0/", NULL}, *bad4[] = {"2001:db8::/129", NULL},
               *bad5[] = {"10.0.0.0/+8", NULL};
    g_assert_false(pb_networks_valid(bad1));
    g_assert_false(pb_networks_valid(bad2));
    g_assert_false(pb_networks_valid(bad3));
    g_assert_false(pb_networks_valid(bad4));
    g_assert_false(pb_networks_valid(bad5));

    PbAddr a;
    g_assert_true(pb_addr_parse("10.1.2.3", 0, &a));
    g_assert_true(pb_networks_allow(NULL, &a));
    g_assert_true(pb_networks_allow((char **)good, &a));
    char *other[] = {"192.0.2.0/24", NULL};
    g_assert_false(pb_networks_allow(other, &a));
    g_assert_true(pb_addr_parse("2001:db8:1::5", 0, &a));
    g_assert_true(pb_networks_allow((char **)good, &a));
    g_assert_false(pb_networks_allow(other, &a));
}

static void test_bearer(void)
{
    g_assert_true(pb_bearer_ok("Bearer s3cret", "s3cret"));
    g_assert_true(pb_bearer_ok("bearer  s3cret", "s3cret"));
    g_assert_false(pb_bearer_ok("Bearer s3cre", "s3cret"));
    g_assert_false(pb_bearer_ok("Bearer s3crett", "s3cret"));
    g_assert_false(pb_bearer_ok("Bearer S3cret", "s3cret"));
    g_assert_false(pb_bearer_ok("Basic s3cret", "s3cret"));
    g_assert_false(pb_bearer_ok("Bearer ", "s3cret"));
    g_assert_false(pb_bearer_ok(NULL, "s3cret"));
    g_assert_false(pb_bearer_ok("Bearer ", "")); /* no token configured: never a match */
}

static bool dummy(void *data, const pb_http_request *req, pb_http_response *resp)
{
    return true;
}

static void test_route_options(void)
{
    HttpRouteOpts o;
    g_assert_true(http_route_opts_from(NULL, &o));
    g_assert_cmpuint(o.methods, ==, PB_HTTP_M_GET | PB_HTTP_M_HEAD);
    g_assert_cmpuint(o.max_body, ==, 0);
    http_route_opts_clear(&o);

    const char *nets[] = {"10.0.0.0/8", NULL};
    pb_http_route_options in = {.struct_size = sizeof(in),
                                .methods = PB_HTTP_M_GET | PB_HTTP_M_PUT,
                                .max_body = 42,
                                .networks = nets,
                                .bearer_token = "t"};
    g_assert_true(http_route_opts_from(&in, &o));
    g_assert_cmpuint(o.methods, ==, PB_HTTP_M_GET | PB_HTTP_M_HEAD | PB_HTTP_M_PUT);
    g_assert_cmpuint(o.max_body, ==, 42);
    g_assert_cmpstr(o.networks[0], ==, "10.0.0.0/8");
    g_assert_cmpstr(o.token, ==, "t");

    /* A caller built against an older, smaller struct: what it lacks is the default. */
    pb_http_route_options old = in;
    old.struct_size = offsetof(pb_http_route_options, flags);
    HttpRouteOpts o2;
    g_assert_true(http_route_opts_from(&old, &o2));
    g_assert_null(o2.networks);
    g_assert_null(o2.token);
    http_route_opts_clear(&o2);

    const char *bad[] = {"10.0.0.0/99", NULL};
    in.networks = bad;
    g_assert_false(http_route_opts_from(&in, &o2));
    http_route_opts_clear(&o2);

    HttpRoutes *r = http_routes_new();
    g_assert_true(http_routes_add(r, "/a/", dummy, NULL, &o));
    g_assert_null(o.token); /* taken over */
    g_assert_false(http_routes_add(r, "/a/", dummy, NULL, NULL));
    g_assert_true(http_routes_add(r, "/a/b", dummy, NULL, NULL));
    const HttpRoute *hit = http_routes_find(r, "/a/x");
    g_assert_nonnull(hit);
    g_assert_true(hit->opts.v3);
    g_assert_false(http_routes_find(r, "/a/b/c")->opts.v3);
    guint id = hit->id;
    g_assert_cmpuint(http_routes_remove(r, "/a/", dummy, NULL), ==, id);
    g_assert_cmpuint(http_routes_remove(r, "/a/", dummy, NULL), ==, 0);
    http_routes_free(r);
}

static void test_fuzz_corpus(void)
{
    const char *top = g_getenv("top_srcdir") ? g_getenv("top_srcdir") : ".";
    g_autofree char *dir = g_build_filename(top, "tests", "fuzz", "corpus-http-range", NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_assert_nonnull(d);
    const char *name;
    guint n = 0;
    while ((name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *data = NULL;
        gsize len;
        g_assert_true(g_file_get_contents(path, &data, &len, NULL));
        LLVMFuzzerTestOneInput((const guint8 *)data, len);
        n++;
    }
    g_assert_cmpuint(n, >, 3);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/http/range", test_range);
    g_test_add_func("/http/networks", test_networks);
    g_test_add_func("/http/bearer", test_bearer);
    g_test_add_func("/http/route-options", test_route_options);
    g_test_add_func("/http/fuzz/range-corpus-replay", test_fuzz_corpus);
    return g_test_run();
}
