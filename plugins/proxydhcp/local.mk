## plugins/proxydhcp: PXE proxy DHCP (RFC 2131, 2132, 4578; PXE 2.1).
## Pure parse/decide code lives in a convenience library linked into the module, the unit
## tests and the fuzz target alike.
noinst_LTLIBRARIES += plugins/proxydhcp/libproxydhcp-core.la
plugins_proxydhcp_libproxydhcp_core_la_SOURCES = \
	plugins/proxydhcp/dhcp-packet.h plugins/proxydhcp/dhcp-packet.c \
	plugins/proxydhcp/pxe-options.h plugins/proxydhcp/pxe-options.c \
	plugins/proxydhcp/proxydhcp-decide.h plugins/proxydhcp/proxydhcp-decide.c \
	plugins/proxydhcp/policy-query.h plugins/proxydhcp/policy-query.c
plugins_proxydhcp_libproxydhcp_core_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
## Not linked in here: lib/net and lib/proto go once into each program or module that uses
## this library (PROXYDHCP_CORE_LIBS).
plugins_proxydhcp_libproxydhcp_core_la_LIBADD = $(GLIB_LIBS)
PROXYDHCP_CORE_LIBS = plugins/proxydhcp/libproxydhcp-core.la $(PB_PROTO_LIBS) $(PB_NET_LIBS)

## Tests
PROXYDHCP_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/proxydhcp

check_PROGRAMS += tests/test-dhcp-packet
TESTS += tests/test-dhcp-packet
tests_test_dhcp_packet_SOURCES = tests/test-dhcp-packet.c tests/fuzz/fuzz-dhcp-packet.c
tests_test_dhcp_packet_CPPFLAGS = $(PROXYDHCP_TEST_CPPFLAGS)
tests_test_dhcp_packet_LDADD = $(PROXYDHCP_CORE_LIBS)

check_PROGRAMS += tests/test-proxydhcp-decide
TESTS += tests/test-proxydhcp-decide
tests_test_proxydhcp_decide_SOURCES = tests/test-proxydhcp-decide.c
tests_test_proxydhcp_decide_CPPFLAGS = $(PROXYDHCP_TEST_CPPFLAGS)
tests_test_proxydhcp_decide_LDADD = $(PROXYDHCP_CORE_LIBS)

## proxydhcp as a client of the policy protocol, read back with lib/proto's parser.
check_PROGRAMS += tests/test-proxydhcp-policy-query
TESTS += tests/test-proxydhcp-policy-query
tests_test_proxydhcp_policy_query_SOURCES = tests/test-proxydhcp-policy-query.c
tests_test_proxydhcp_policy_query_CPPFLAGS = $(PROXYDHCP_TEST_CPPFLAGS)
tests_test_proxydhcp_policy_query_LDADD = $(PROXYDHCP_CORE_LIBS)

EXTRA_DIST += tests/fuzz/corpus-dhcp-packet tests/data/dhcp bench/proxydhcp.sh bench/pxe-load.c

## libFuzzer build (configure --enable-fuzzing CC=clang).
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-dhcp-packet
tests_fuzz_fuzz_dhcp_packet_SOURCES = tests/fuzz/fuzz-dhcp-packet.c
tests_fuzz_fuzz_dhcp_packet_CPPFLAGS = $(PROXYDHCP_TEST_CPPFLAGS)
tests_fuzz_fuzz_dhcp_packet_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_dhcp_packet_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_dhcp_packet_LDADD = $(PROXYDHCP_CORE_LIBS)
endif

## The module.
plugin_LTLIBRARIES += plugins/proxydhcp/proxydhcp.la
## Interface addresses come from lib/net, the same on every OS: no twins here.
plugins_proxydhcp_proxydhcp_la_SOURCES = plugins/proxydhcp/proxydhcp-plugin.c
plugins_proxydhcp_proxydhcp_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
plugins_proxydhcp_proxydhcp_la_LDFLAGS = $(PLUGIN_MODULE_FLAGS)
plugins_proxydhcp_proxydhcp_la_LIBADD = $(PROXYDHCP_CORE_LIBS)

## The module in the real host, on loopback high ports.
check_PROGRAMS += tests/test-proxydhcp-plugin
TESTS += tests/test-proxydhcp-plugin
tests_test_proxydhcp_plugin_SOURCES = tests/test-proxydhcp-plugin.c
tests_test_proxydhcp_plugin_CPPFLAGS = $(PROXYDHCP_TEST_CPPFLAGS)
tests_test_proxydhcp_plugin_LDADD = plugins/proxydhcp/libproxydhcp-core.la $(PB_PROTO_LIBS) \
	$(TEST_CORE_LIBS)
EXTRA_tests_test_proxydhcp_plugin_DEPENDENCIES = plugins/proxydhcp/proxydhcp.la

## The real daemon and prebootctl, with real packets on loopback high ports.
TESTS += tests/proxydhcp-daemon.sh
EXTRA_DIST += tests/proxydhcp-daemon.sh

## End to end with real firmware (root, namespaces, QEMU): `make check-e2e`, not `make check`.
check_PROGRAMS += tests/e2e/pb-serve
tests_e2e_pb_serve_SOURCES = tests/e2e/pb-serve.c
tests_e2e_pb_serve_LDADD = core/libpreboot-core.la $(GLIB_LIBS) $(YAML_LIBS) $(LTDL_LIBS)
EXTRA_DIST += tests/e2e/proxydhcp-e2e.sh

if BUILD_TFTP
check-e2e-proxydhcp: tests/e2e/pb-serve$(EXEEXT) core/prebootd$(EXEEXT) \
		plugins/proxydhcp/proxydhcp.la plugins/tftp/tftp.la
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' \
	    $(SHELL) $(top_srcdir)/tests/e2e/proxydhcp-e2e.sh
CHECK_E2E += check-e2e-proxydhcp
endif
