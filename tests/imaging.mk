## The imaging server: its pure parts, the local backend and the modules in process, the
## fuzz target's corpus (on Windows too, under wine), and the real daemon with curl (Linux).
if ENABLE_IMAGE_CORE
IMAGING_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image -I$(top_srcdir)/plugins/imaging \
	-I$(top_srcdir)/tests

check_PROGRAMS += tests/test-imaging
TESTS += tests/test-imaging
## The local backend is compiled in: its descriptor is called directly.
tests_test_imaging_SOURCES = tests/test-imaging.c backends/local/local-backend.c
tests_test_imaging_CPPFLAGS = $(IMAGING_TEST_CPPFLAGS) -I$(top_srcdir)/lib/backend
## GIO for its HTTP client's sockets: portable, it runs under wine too.
tests_test_imaging_CFLAGS = $(AM_CFLAGS) $(IMAGE_CORE_CFLAGS) $(SQLITE_CFLAGS) $(GIO_CFLAGS)
tests_test_imaging_LDADD = plugins/imaging/libimaging-core.la lib/backend/libpbbackend.la \
	lib/image/libpbimage-core.la \
	$(TEST_CORE_LIBS) $(IMAGE_CORE_LIBS) $(SQLITE_LIBS) $(GIO_LIBS)
EXTRA_tests_test_imaging_DEPENDENCIES = plugins/imaging/imaging.la plugins/http/http.la \
	backends/local/libpreboot-local.la

TESTS += tests/fuzz/replay-imaging-api
check_PROGRAMS += tests/fuzz/replay-imaging-api
tests_fuzz_replay_imaging_api_SOURCES = tests/fuzz/fuzz-imaging-api.c tests/fuzz/replay-main.c
tests_fuzz_replay_imaging_api_CPPFLAGS = $(IMAGING_TEST_CPPFLAGS) -DFUZZ_CORPUS=\"imaging-api\"
tests_fuzz_replay_imaging_api_LDADD = plugins/imaging/libimaging-core.la lib/image/libpbimage-core.la \
	$(IMAGE_CORE_LIBS) $(GLIB_LIBS)

if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-imaging-api
tests_fuzz_fuzz_imaging_api_SOURCES = tests/fuzz/fuzz-imaging-api.c \
	plugins/imaging/imaging-api.c plugins/imaging/imaging-json.c plugins/imaging/imaging-cred.c
tests_fuzz_fuzz_imaging_api_CPPFLAGS = $(IMAGING_TEST_CPPFLAGS)
tests_fuzz_fuzz_imaging_api_CFLAGS = $(AM_CFLAGS) $(IMAGE_CORE_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_imaging_api_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_imaging_api_LDADD = lib/image/libpbimage-core.la $(IMAGE_CORE_LIBS) $(GLIB_LIBS)
endif
endif

if ENABLE_IMAGE
TESTS += tests/test-imaging-daemon.sh tests/test-imaging-tls.sh tests/test-imaging-server.sh \
	tests/test-imaging-cred.sh tests/test-imaging-referral.sh tests/test-imaging-legacy.sh
endif
EXTRA_DIST += tests/test-imaging-daemon.sh tests/test-imaging-tls.sh tests/test-imaging-server.sh \
	tests/test-imaging-cred.sh tests/test-imaging-referral.sh tests/test-imaging-legacy.sh tests/imaging.mk tests/test-imaging.c \
	tests/data/oot/oot-backend.c \
	tests/fuzz/fuzz-imaging-api.c
## The configuration start tests/test-imaging-*.sh share.
EXTRA_DIST += tests/lib-imaging.sh

## The imaging plugin keeps chunk bytes off the main loop: a backend whose reads and writes
## wait at a gate the test holds (FIFOs: Linux).
if ENABLE_IMAGE_CORE
if !OS_WIN32
check_LTLIBRARIES += tests/backends/gatebackend.la
tests_backends_gatebackend_la_SOURCES = tests/backends/gatebackend.c backends/local/local-backend.c
tests_backends_gatebackend_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image \
	-I$(top_srcdir)/lib/backend
tests_backends_gatebackend_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN) $(IMAGE_CORE_CFLAGS) $(SQLITE_CFLAGS)
tests_backends_gatebackend_la_LDFLAGS = -module -avoid-version -no-undefined -shared \
	-export-symbols-regex '^gatebackend_LTX_preboot_backend_entry$$' -rpath /nowhere \
	-Wl,-z,nodelete
tests_backends_gatebackend_la_LIBADD = lib/backend/libpbbackend.la lib/image/libpbimage-core.la $(IMAGE_CORE_LIBS) \
	$(SQLITE_LIBS) $(GLIB_LIBS)

check_PROGRAMS += tests/test-imaging-io
TESTS += tests/test-imaging-io
tests_test_imaging_io_SOURCES = tests/test-imaging-io.c
tests_test_imaging_io_CPPFLAGS = $(IMAGING_TEST_CPPFLAGS)
tests_test_imaging_io_CFLAGS = $(AM_CFLAGS) $(IMAGE_CORE_CFLAGS) $(GIO_CFLAGS)
tests_test_imaging_io_LDADD = lib/image/libpbimage-core.la $(TEST_CORE_LIBS) $(IMAGE_CORE_LIBS) \
	$(GIO_LIBS)
EXTRA_tests_test_imaging_io_DEPENDENCIES = plugins/imaging/imaging.la plugins/http/http.la \
	tests/backends/gatebackend.la
endif
endif
EXTRA_DIST += tests/test-imaging-io.c tests/backends/gatebackend.c
