## Core tests: the loader and host with test plugins, the daemon end to end, and a plugin
## built out of tree against the installed header.

# Test modules are never installed; -rpath makes libtool build them shared anyway.
TEST_MODULE_FLAGS = $(PLUGIN_MODULE_FLAGS) -rpath /nowhere

check_LTLIBRARIES += tests/plugins/testplug.la tests/plugins/testplug_norl.la \
	tests/plugins/badmagic.la tests/plugins/badmajor.la tests/plugins/badminor.la \
	tests/plugins/smallstruct.la tests/plugins/badsig.la tests/plugins/badtable.la \
	tests/plugins/noentry.la

tests_plugins_testplug_la_SOURCES = tests/plugins/testplug.c
tests_plugins_testplug_la_CPPFLAGS = $(AM_CPPFLAGS) -DTESTPLUG_NAME=testplug
tests_plugins_testplug_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_testplug_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_testplug_la_LIBADD = $(PB_NET_LIBS)

tests_plugins_testplug_norl_la_SOURCES = tests/plugins/testplug.c
tests_plugins_testplug_norl_la_CPPFLAGS = $(AM_CPPFLAGS) -DTESTPLUG_NAME=testplug_norl \
	-DTESTPLUG_NO_RELOAD
tests_plugins_testplug_norl_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_testplug_norl_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_testplug_norl_la_LIBADD = $(PB_NET_LIBS)

BROKEN_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_badmagic_la_SOURCES = tests/plugins/broken.c
tests_plugins_badmagic_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_NAME=badmagic -DBROKEN_MAGIC
tests_plugins_badmagic_la_CFLAGS = $(BROKEN_CFLAGS)
tests_plugins_badmagic_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_badmajor_la_SOURCES = tests/plugins/broken.c
tests_plugins_badmajor_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_NAME=badmajor -DBROKEN_MAJOR
tests_plugins_badmajor_la_CFLAGS = $(BROKEN_CFLAGS)
tests_plugins_badmajor_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_badminor_la_SOURCES = tests/plugins/broken.c
tests_plugins_badminor_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_NAME=badminor -DBROKEN_MINOR
tests_plugins_badminor_la_CFLAGS = $(BROKEN_CFLAGS)
tests_plugins_badminor_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_smallstruct_la_SOURCES = tests/plugins/broken.c
tests_plugins_smallstruct_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_NAME=smallstruct -DBROKEN_SIZE
tests_plugins_smallstruct_la_CFLAGS = $(BROKEN_CFLAGS)
tests_plugins_smallstruct_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_badsig_la_SOURCES = tests/plugins/broken.c
tests_plugins_badsig_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_NAME=badsig -DBROKEN_SIGNATURE
tests_plugins_badsig_la_CFLAGS = $(BROKEN_CFLAGS)
tests_plugins_badsig_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_badtable_la_SOURCES = tests/plugins/broken.c
tests_plugins_badtable_la_CPPFLAGS = $(AM_CPPFLAGS) -DBROKEN_NAME=badtable -DBROKEN_TABLE
tests_plugins_badtable_la_CFLAGS = $(BROKEN_CFLAGS)
tests_plugins_badtable_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_noentry_la_SOURCES = tests/plugins/noentry.c
tests_plugins_noentry_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_noentry_la_LDFLAGS = -module -avoid-version -no-undefined -shared -rpath /nowhere

## Plugins that depend on each other through a service (dependency order, watches), and
## one built as ABI 1.0 would have built it.
check_LTLIBRARIES += tests/plugins/depprov.la tests/plugins/depcons.la \
	tests/plugins/depwant.la tests/plugins/depabi10.la
tests_plugins_depprov_la_SOURCES = tests/plugins/deps.c
tests_plugins_depprov_la_CPPFLAGS = $(AM_CPPFLAGS) -DDEPS_NAME=depprov -DDEPS_PROVIDER
tests_plugins_depprov_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_depprov_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_depcons_la_SOURCES = tests/plugins/deps.c
tests_plugins_depcons_la_CPPFLAGS = $(AM_CPPFLAGS) -DDEPS_NAME=depcons -DDEPS_CONSUMER
tests_plugins_depcons_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_depcons_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_depwant_la_SOURCES = tests/plugins/deps.c
tests_plugins_depwant_la_CPPFLAGS = $(AM_CPPFLAGS) -DDEPS_NAME=depwant -DDEPS_WANTER
tests_plugins_depwant_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_depwant_la_LDFLAGS = $(TEST_MODULE_FLAGS)
tests_plugins_depabi10_la_SOURCES = tests/plugins/deps.c
tests_plugins_depabi10_la_CPPFLAGS = $(AM_CPPFLAGS) -DDEPS_NAME=depabi10 -DDEPS_ABI10
tests_plugins_depabi10_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_depabi10_la_LDFLAGS = $(TEST_MODULE_FLAGS)

## Libraries for library_open (not plugins): one good, one per refusal. A library exports
## its kind's entry symbol, not the plugin one.
TEST_LIBRARY_FLAGS = -module -avoid-version -no-undefined -shared \
	-export-symbols-regex '_LTX_testlib_entry$$' -rpath /nowhere
check_LTLIBRARIES += tests/plugins/testlib.la tests/plugins/testlib_badmagic.la \
	tests/plugins/testlib_badmajor.la tests/plugins/testlib_newminor.la \
	tests/plugins/testlib_small.la tests/plugins/testlib_badsig.la
tests_plugins_testlib_la_SOURCES = tests/plugins/testlib.c tests/plugins/testlib.h
tests_plugins_testlib_la_CPPFLAGS = $(AM_CPPFLAGS) -DTESTLIB_NAME=testlib
tests_plugins_testlib_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_testlib_la_LDFLAGS = $(TEST_LIBRARY_FLAGS)
tests_plugins_testlib_badmagic_la_SOURCES = tests/plugins/testlib.c tests/plugins/testlib.h
tests_plugins_testlib_badmagic_la_CPPFLAGS = $(AM_CPPFLAGS) -DTESTLIB_NAME=testlib_badmagic -DTESTLIB_BAD_MAGIC
tests_plugins_testlib_badmagic_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_testlib_badmagic_la_LDFLAGS = $(TEST_LIBRARY_FLAGS)
tests_plugins_testlib_badmajor_la_SOURCES = tests/plugins/testlib.c tests/plugins/testlib.h
tests_plugins_testlib_badmajor_la_CPPFLAGS = $(AM_CPPFLAGS) -DTESTLIB_NAME=testlib_badmajor -DTESTLIB_BAD_MAJOR
tests_plugins_testlib_badmajor_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_testlib_badmajor_la_LDFLAGS = $(TEST_LIBRARY_FLAGS)
tests_plugins_testlib_newminor_la_SOURCES = tests/plugins/testlib.c tests/plugins/testlib.h
tests_plugins_testlib_newminor_la_CPPFLAGS = $(AM_CPPFLAGS) -DTESTLIB_NAME=testlib_newminor -DTESTLIB_NEW_MINOR
tests_plugins_testlib_newminor_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_testlib_newminor_la_LDFLAGS = $(TEST_LIBRARY_FLAGS)
tests_plugins_testlib_small_la_SOURCES = tests/plugins/testlib.c tests/plugins/testlib.h
tests_plugins_testlib_small_la_CPPFLAGS = $(AM_CPPFLAGS) -DTESTLIB_NAME=testlib_small -DTESTLIB_SMALL
tests_plugins_testlib_small_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_testlib_small_la_LDFLAGS = $(TEST_LIBRARY_FLAGS)
tests_plugins_testlib_badsig_la_SOURCES = tests/plugins/testlib.c tests/plugins/testlib.h
tests_plugins_testlib_badsig_la_CPPFLAGS = $(AM_CPPFLAGS) -DTESTLIB_NAME=testlib_badsig -DTESTLIB_BAD_SIG
tests_plugins_testlib_badsig_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
tests_plugins_testlib_badsig_la_LDFLAGS = $(TEST_LIBRARY_FLAGS)

## Readiness with the real http, policy and tftp plugins: start returns once /boot.ipxe is
## routed; a configured service that fails makes start and status fail, naming it.
TESTS += tests/test-ready.sh
EXTRA_DIST += tests/test-ready.sh

## In-process tests link the core library; testutil holds the shared helpers.
check_LTLIBRARIES += tests/libtestutil.la
tests_libtestutil_la_SOURCES = tests/testutil.c tests/testutil.h
## testutil's socket helpers use lib/net.
tests_libtestutil_la_LIBADD = core/libpreboot-core.la $(PB_NET_LIBS) $(GLIB_LIBS) $(YAML_LIBS) \
	$(LTDL_LIBS)
TEST_CORE_LIBS = tests/libtestutil.la core/libpreboot-core.la $(PB_NET_LIBS) $(GLIB_LIBS) \
	$(YAML_LIBS) $(LTDL_LIBS)

check_PROGRAMS += tests/test-loader tests/test-host
TESTS += tests/test-loader tests/test-host
tests_test_loader_SOURCES = tests/test-loader.c
tests_test_loader_LDADD = $(TEST_CORE_LIBS)
tests_test_host_SOURCES = tests/test-host.c
tests_test_host_LDADD = $(TEST_CORE_LIBS)

## The daemon and prebootctl, end to end; and a plugin built against the installed header.
TESTS += tests/test-daemon.sh tests/test-out-of-tree.sh
## The legacy .conf files of tftp, proxydhcp and policy through the real daemon.
if BUILD_TFTP
if BUILD_PROXYDHCP
if BUILD_POLICY
TESTS += tests/test-legacy-conf.sh
endif
endif
endif
EXTRA_DIST += tests/test-daemon.sh tests/test-out-of-tree.sh tests/test-legacy-conf.sh tests/tap.sh \
	tests/data/oot/oot.c
