## plugins/proxydhcp: PXE proxy DHCP (RFC 2131, 2132, 4578; PXE 2.1).
## Pure parse/decide code lives in a convenience library linked into the module, the unit
## tests and the fuzz target alike.
noinst_LTLIBRARIES += plugins/proxydhcp/libproxydhcp-core.la
plugins_proxydhcp_libproxydhcp_core_la_SOURCES = \
	plugins/proxydhcp/dhcp-packet.h plugins/proxydhcp/dhcp-packet.c \
	plugins/proxydhcp/pxe-options.h plugins/proxydhcp/pxe-options.c \
	plugins/proxydhcp/proxydhcp-decide.h plugins/proxydhcp/proxydhcp-decide.c
plugins_proxydhcp_libproxydhcp_core_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
plugins_proxydhcp_libproxydhcp_core_la_LIBADD = $(GLIB_LIBS)

## Tests
PROXYDHCP_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/proxydhcp

check_PROGRAMS += tests/test-dhcp-packet
TESTS += tests/test-dhcp-packet
tests_test_dhcp_packet_SOURCES = tests/test-dhcp-packet.c tests/fuzz/fuzz-dhcp-packet.c
tests_test_dhcp_packet_CPPFLAGS = $(PROXYDHCP_TEST_CPPFLAGS)
tests_test_dhcp_packet_LDADD = plugins/proxydhcp/libproxydhcp-core.la $(GLIB_LIBS)

check_PROGRAMS += tests/test-proxydhcp-decide
TESTS += tests/test-proxydhcp-decide
tests_test_proxydhcp_decide_SOURCES = tests/test-proxydhcp-decide.c
tests_test_proxydhcp_decide_CPPFLAGS = $(PROXYDHCP_TEST_CPPFLAGS)
tests_test_proxydhcp_decide_LDADD = plugins/proxydhcp/libproxydhcp-core.la $(GLIB_LIBS)

EXTRA_DIST += tests/fuzz/corpus-dhcp-packet tests/data/dhcp

## libFuzzer build (configure --enable-fuzzing CC=clang).
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-dhcp-packet
tests_fuzz_fuzz_dhcp_packet_SOURCES = tests/fuzz/fuzz-dhcp-packet.c
tests_fuzz_fuzz_dhcp_packet_CPPFLAGS = $(PROXYDHCP_TEST_CPPFLAGS)
tests_fuzz_fuzz_dhcp_packet_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_dhcp_packet_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_dhcp_packet_LDADD = plugins/proxydhcp/libproxydhcp-core.la $(GLIB_LIBS)
endif
