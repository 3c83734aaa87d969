## Tests of the tftp plugin (included from plugins/tftp/local.mk).
TFTP_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins/tftp

check_PROGRAMS += tests/test-tftp-packet
TESTS += tests/test-tftp-packet
tests_test_tftp_packet_SOURCES = tests/test-tftp-packet.c
tests_test_tftp_packet_CPPFLAGS = $(TFTP_TEST_CPPFLAGS)
tests_test_tftp_packet_LDADD = plugins/tftp/libtftp-core.la $(GLIB_LIBS)

## The fuzz target's seed corpus (tests/fuzz/corpus/tftp-packet) replayed by make check.
TESTS += tests/fuzz/replay-tftp-packet
check_PROGRAMS += tests/fuzz/replay-tftp-packet
tests_fuzz_replay_tftp_packet_SOURCES = tests/fuzz/fuzz-tftp-packet.c tests/fuzz/replay-main.c
tests_fuzz_replay_tftp_packet_CPPFLAGS = $(TFTP_TEST_CPPFLAGS) -DFUZZ_CORPUS=\"tftp-packet\"
tests_fuzz_replay_tftp_packet_LDADD = plugins/tftp/libtftp-core.la $(GLIB_LIBS)

check_PROGRAMS += tests/test-tftp-admit
TESTS += tests/test-tftp-admit
tests_test_tftp_admit_SOURCES = tests/test-tftp-admit.c
tests_test_tftp_admit_CPPFLAGS = $(TFTP_TEST_CPPFLAGS)
tests_test_tftp_admit_LDADD = plugins/tftp/libtftp-core.la $(GLIB_LIBS)

check_PROGRAMS += tests/test-tftp-session
TESTS += tests/test-tftp-session
tests_test_tftp_session_SOURCES = tests/test-tftp-session.c
tests_test_tftp_session_CPPFLAGS = $(TFTP_TEST_CPPFLAGS)
tests_test_tftp_session_LDADD = plugins/tftp/libtftp-core.la $(GLIB_LIBS)

## libFuzzer build (configure --enable-fuzzing CC=clang): the parsers are compiled into the
## fuzzer so they carry its coverage instrumentation.
##   ./tests/fuzz/fuzz-tftp-packet -max_total_time=300 CORPUS_COPY $(srcdir)/tests/fuzz/corpus/tftp-packet
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-tftp-packet
tests_fuzz_fuzz_tftp_packet_SOURCES = tests/fuzz/fuzz-tftp-packet.c \
	plugins/tftp/tftp-packet.c plugins/tftp/tftp-negotiate.c plugins/tftp/tftp-path.c \
	plugins/tftp/tftp-admit.c plugins/tftp/tftp-netascii.c
tests_fuzz_fuzz_tftp_packet_CPPFLAGS = $(TFTP_TEST_CPPFLAGS)
tests_fuzz_fuzz_tftp_packet_CFLAGS = $(AM_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_tftp_packet_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_tftp_packet_LDADD = $(GLIB_LIBS)
endif

## The module in the real host, in process (needs the module built first).
check_PROGRAMS += tests/test-tftp-plugin
TESTS += tests/test-tftp-plugin
tests_test_tftp_plugin_SOURCES = tests/test-tftp-plugin.c
tests_test_tftp_plugin_CPPFLAGS = $(TFTP_TEST_CPPFLAGS)
tests_test_tftp_plugin_LDADD = plugins/tftp/libtftp-core.la $(TEST_CORE_LIBS)
EXTRA_tests_test_tftp_plugin_DEPENDENCIES = plugins/tftp/tftp.la

## Real clients against the daemon (or tests/tftp-serve until prebootd runs plugins).
check_PROGRAMS += tests/tftp-serve tests/tftp-mangler
tests_tftp_serve_SOURCES = tests/tftp-serve.c
tests_tftp_serve_LDADD = $(TEST_CORE_LIBS)
tests_tftp_mangler_SOURCES = tests/tftp-mangler.c
tests_tftp_mangler_CFLAGS = $(AM_CFLAGS)
TESTS += tests/tftp-interop.sh
EXTRA_DIST += tests/tftp-interop.sh
