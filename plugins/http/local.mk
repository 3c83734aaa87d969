## plugins/http: the daemon's one HTTP listener (libmicrohttpd) and the preboot.http
## service other plugins add routes to (include/preboot/http.h).
prebootinclude_HEADERS += include/preboot/http.h

## Pure parts (routes, Range, access lists): unit-tested and fuzzed alone.
noinst_LTLIBRARIES += plugins/http/libhttp-core.la
plugins_http_libhttp_core_la_SOURCES = plugins/http/http-routes.h plugins/http/http-routes.c \
	plugins/http/http-range.h plugins/http/http-range.c \
	plugins/http/http-access.h plugins/http/http-access.c
plugins_http_libhttp_core_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
## Users link core/libpbnet.la (pb_addr_*) themselves: one copy per module.
plugins_http_libhttp_core_la_LIBADD = $(GLIB_LIBS)

plugin_LTLIBRARIES += plugins/http/http.la
## http-sockaddr-posix.c builds unchanged for Windows: there win32/posix/ supplies the POSIX
## socket headers from Winsock (inet_ntop, sockaddr_in/in6 are the same there). The loop
## has OS twins: epoll on Linux, select on Windows (http-loop.h).
plugins_http_http_la_SOURCES = plugins/http/http-plugin.c plugins/http/http-sockaddr.h \
	plugins/http/http-sockaddr-posix.c plugins/http/http-loop.h
if OS_WIN32
plugins_http_http_la_SOURCES += plugins/http/http-loop-win32.c
else
plugins_http_http_la_SOURCES += plugins/http/http-loop-posix.c
endif
EXTRA_DIST += plugins/http/http-loop-posix.c plugins/http/http-loop-win32.c
plugins_http_http_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN) $(MHD_CFLAGS)
plugins_http_http_la_LDFLAGS = $(PLUGIN_MODULE_FLAGS)
plugins_http_http_la_LIBADD = plugins/http/libhttp-core.la $(PB_NET_LIBS) \
	$(MHD_LIBS)

## Tests: the pure parts, and the real daemon with a test plugin using the service
## (tests/plugins/httptest.c) against an unfriendly client (tests/http-flood.c).
check_PROGRAMS += tests/test-http-range
TESTS += tests/test-http-range
tests_test_http_range_SOURCES = tests/test-http-range.c tests/fuzz/fuzz-http-range.c
tests_test_http_range_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/http
tests_test_http_range_LDADD = plugins/http/libhttp-core.la $(PB_NET_LIBS)
EXTRA_DIST += tests/fuzz/corpus-http-range

if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-http-range
tests_fuzz_fuzz_http_range_SOURCES = tests/fuzz/fuzz-http-range.c plugins/http/http-range.c
tests_fuzz_fuzz_http_range_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/http
tests_fuzz_fuzz_http_range_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_http_range_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_http_range_LDADD = $(GLIB_LIBS)
endif

if !OS_WIN32
## Built into a directory of its own: test-loader expects tests/plugins to hold its modules only.
check_LTLIBRARIES += tests/plugins/http/httptest.la
tests_plugins_http_httptest_la_SOURCES = tests/plugins/httptest.c
tests_plugins_http_httptest_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_http_httptest_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_http_httptest_la_LIBADD = $(GLIB_LIBS)

check_PROGRAMS += tests/http-flood
tests_http_flood_SOURCES = tests/http-flood.c

TESTS += tests/test-http-daemon.sh tests/test-http-stream.sh
endif
EXTRA_DIST += tests/test-http-daemon.sh tests/test-http-stream.sh
