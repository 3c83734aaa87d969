## plugins/policy: the policy engine (who boots what, which menu, what work).
## Pure parse/decide code lives in a convenience library linked into the module, the unit
## tests and the fuzz targets alike.
prebootinclude_HEADERS += include/preboot/policy.h
## The multicast plugin's service (plugins/multicast), which the policy plugin calls.
prebootinclude_HEADERS += include/preboot/multicast.h

noinst_LTLIBRARIES += plugins/policy/libpolicy-core.la
plugins_policy_libpolicy_core_la_SOURCES = \
	plugins/policy/policy-device.h plugins/policy/policy-device.c \
	plugins/policy/policy-rules.h plugins/policy/policy-rules.c \
	plugins/policy/policy-match.c \
	plugins/policy/policy-store.h plugins/policy/policy-store.c \
	plugins/policy/policy-engine.h plugins/policy/policy-engine.c \
	plugins/policy/policy-server.h plugins/policy/policy-server.c \
	plugins/policy/policy-remote.h plugins/policy/policy-remote-parse.c \
	plugins/policy/policy-shared.h \
	lib/image/image-json.h lib/image/image-json.c
plugins_policy_libpolicy_core_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image
plugins_policy_libpolicy_core_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN) $(YAML_CFLAGS) $(SQLITE_CFLAGS)
## The wire format is lib/proto's (policy-proto.h), carried inside this library.
plugins_policy_libpolicy_core_la_LIBADD = $(PB_PROTO_LIBS) $(GLIB_LIBS) $(YAML_LIBS) $(SQLITE_LIBS)
## The state shared by several servers (the database option): PostgreSQL through lib/pq when
## libpq is there, else a stub that refuses the option.
if ENABLE_PG
plugins_policy_libpolicy_core_la_SOURCES += plugins/policy/policy-store-pg.c
plugins_policy_libpolicy_core_la_CPPFLAGS += -I$(top_srcdir)/lib/pq
plugins_policy_libpolicy_core_la_CFLAGS += $(PQ_CFLAGS)
plugins_policy_libpolicy_core_la_LIBADD += $(PB_PQ_LIBS)
else
plugins_policy_libpolicy_core_la_SOURCES += plugins/policy/policy-store-pg-none.c
endif
EXTRA_DIST += plugins/policy/policy-store-pg.c plugins/policy/policy-store-pg-none.c

## Tests
POLICY_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/policy -I$(top_srcdir)/lib/image $(SQLITE_CFLAGS)

check_PROGRAMS += tests/test-policy-rules
TESTS += tests/test-policy-rules
tests_test_policy_rules_SOURCES = tests/test-policy-rules.c tests/fuzz/fuzz-policy-rules.c
tests_test_policy_rules_CPPFLAGS = $(POLICY_TEST_CPPFLAGS)
tests_test_policy_rules_LDADD = plugins/policy/libpolicy-core.la $(GLIB_LIBS)
EXTRA_DIST += tests/fuzz/corpus-policy-rules tests/data/policy

check_PROGRAMS += tests/test-policy-engine
TESTS += tests/test-policy-engine
tests_test_policy_engine_SOURCES = tests/test-policy-engine.c
tests_test_policy_engine_CPPFLAGS = $(POLICY_TEST_CPPFLAGS)
tests_test_policy_engine_LDADD = plugins/policy/libpolicy-core.la $(GLIB_LIBS) $(SQLITE_LIBS)

## The server's side of the policy UDP protocol (the wire format's tests are lib/proto's).
check_PROGRAMS += tests/test-policy-server
TESTS += tests/test-policy-server
tests_test_policy_server_SOURCES = tests/test-policy-server.c
tests_test_policy_server_CPPFLAGS = $(POLICY_TEST_CPPFLAGS)
tests_test_policy_server_LDADD = plugins/policy/libpolicy-core.la $(PB_NET_LIBS)

check_PROGRAMS += tests/test-policy-remote
TESTS += tests/test-policy-remote
tests_test_policy_remote_SOURCES = tests/test-policy-remote.c
tests_test_policy_remote_CPPFLAGS = $(POLICY_TEST_CPPFLAGS)
tests_test_policy_remote_LDADD = plugins/policy/libpolicy-core.la $(GLIB_LIBS)


if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-policy-rules
tests_fuzz_fuzz_policy_rules_SOURCES = tests/fuzz/fuzz-policy-rules.c
tests_fuzz_fuzz_policy_rules_CPPFLAGS = $(POLICY_TEST_CPPFLAGS)
tests_fuzz_fuzz_policy_rules_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_policy_rules_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_policy_rules_LDADD = plugins/policy/libpolicy-core.la $(GLIB_LIBS)
endif

## The module.
plugin_LTLIBRARIES += plugins/policy/policy.la
plugins_policy_policy_la_SOURCES = plugins/policy/policy-plugin.c \
	plugins/policy/policy-script.h plugins/policy/policy-script.c \
	plugins/policy/policy-static.h plugins/policy/policy-static.c
plugins_policy_policy_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image
plugins_policy_policy_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
## PrebootServer: over libcurl when there is one, else a stub that logs and lets the rules
## decide (the Windows build).
if HAVE_CURL
plugins_policy_policy_la_SOURCES += plugins/policy/policy-remote.c
plugins_policy_policy_la_CFLAGS += $(CURL_CFLAGS)
POLICY_CURL_LIBS = $(CURL_LIBS)
else
plugins_policy_policy_la_SOURCES += plugins/policy/policy-remote-none.c
POLICY_CURL_LIBS =
endif
EXTRA_DIST += plugins/policy/policy-remote.c plugins/policy/policy-remote-none.c
plugins_policy_policy_la_LDFLAGS = $(PLUGIN_MODULE_FLAGS)
plugins_policy_policy_la_LIBADD = plugins/policy/libpolicy-core.la $(PB_NET_LIBS) \
	$(GLIB_LIBS) $(YAML_LIBS) $(SQLITE_LIBS) $(POLICY_CURL_LIBS)

## The iPXE scripts and pxelinux files (the imaging environment's entries) and the
## /preboot/ file names, as text.
check_PROGRAMS += tests/test-policy-script
TESTS += tests/test-policy-script
tests_test_policy_script_SOURCES = tests/test-policy-script.c \
	plugins/policy/policy-script.c plugins/policy/policy-static.c
tests_test_policy_script_CPPFLAGS = $(POLICY_TEST_CPPFLAGS)
tests_test_policy_script_LDADD = plugins/policy/libpolicy-core.la $(GLIB_LIBS) $(SQLITE_LIBS)

## What a client controls in its script (Host header) and the /preboot/ names, fuzzed.
TESTS += tests/fuzz/replay-policy-script
check_PROGRAMS += tests/fuzz/replay-policy-script
tests_fuzz_replay_policy_script_SOURCES = tests/fuzz/fuzz-policy-script.c tests/fuzz/replay-main.c \
	plugins/policy/policy-script.c plugins/policy/policy-static.c
tests_fuzz_replay_policy_script_CPPFLAGS = $(POLICY_TEST_CPPFLAGS) -DFUZZ_CORPUS=\"policy-script\"
tests_fuzz_replay_policy_script_LDADD = plugins/policy/libpolicy-core.la $(GLIB_LIBS) $(SQLITE_LIBS)
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-policy-script
tests_fuzz_fuzz_policy_script_SOURCES = tests/fuzz/fuzz-policy-script.c \
	plugins/policy/policy-script.c plugins/policy/policy-static.c
tests_fuzz_fuzz_policy_script_CPPFLAGS = $(POLICY_TEST_CPPFLAGS)
tests_fuzz_fuzz_policy_script_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_policy_script_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_policy_script_LDADD = plugins/policy/libpolicy-core.la $(GLIB_LIBS) $(SQLITE_LIBS)
endif

## The modules in the real host, in process: policy with http and tftp (when all three are
## built).
if BUILD_HTTP
if BUILD_TFTP
check_PROGRAMS += tests/test-policy-plugin
TESTS += tests/test-policy-plugin
tests_test_policy_plugin_SOURCES = tests/test-policy-plugin.c
tests_test_policy_plugin_CPPFLAGS = $(POLICY_TEST_CPPFLAGS)
tests_test_policy_plugin_LDADD = plugins/policy/libpolicy-core.la $(TEST_CORE_LIBS) $(SQLITE_LIBS)
EXTRA_tests_test_policy_plugin_DEPENDENCIES = plugins/policy/policy.la plugins/http/http.la \
	plugins/tftp/tftp.la

endif
endif

## The real daemon with curl (skips without curl).
if BUILD_HTTP
TESTS += tests/test-policy-daemon.sh
endif
EXTRA_DIST += tests/test-policy-daemon.sh

## PrebootServer in the real daemon: answered by tests/imaging-standin.py, and a server
## that never answers (the rules decide by the deadline).
TESTS += tests/policy-remote.sh
EXTRA_DIST += tests/policy-remote.sh

## bench/policy.sh builds its load generator itself (not run by make check).
EXTRA_DIST += bench/policy.sh bench/policy-bench.c

## End to end with real iPXE firmware in QEMU (root, namespaces): `make check-e2e`.
EXTRA_DIST += tests/e2e/policy-e2e.sh
if BUILD_HTTP
if BUILD_PROXYDHCP
if BUILD_TFTP
check-e2e-policy: core/prebootd$(EXEEXT) tools/prebootctl$(EXEEXT) \
		plugins/policy/policy.la plugins/http/http.la \
		plugins/proxydhcp/proxydhcp.la plugins/tftp/tftp.la
	top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' \
	    $(SHELL) $(top_srcdir)/tests/e2e/policy-e2e.sh
CHECK_E2E += check-e2e-policy
endif
endif
endif

## Multicast sessions started by policy assignments: policy, imaging and multicast in a real
## prebootd, two devices running preboot-img auto in network namespaces (root; skipped
## otherwise).
if ENABLE_IMAGE
TESTS += tests/mcast-policy.sh
endif
EXTRA_DIST += tests/mcast-policy.sh
