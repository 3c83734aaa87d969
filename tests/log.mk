## tests (log, os, net, control): the OS layer the daemon and the plugins stand on.
check_PROGRAMS += tests/test-net
TESTS += tests/test-net
tests_test_net_SOURCES = tests/test-net.c
tests_test_net_LDADD = core/libpbnet.la $(GLIB_LIBS)

# Sources are compiled in (not the core library) so these tests do not wait on the rest of it.
check_PROGRAMS += tests/test-log
TESTS += tests/test-log
tests_test_log_SOURCES = tests/test-log.c core/log.c core/os-posix.c
tests_test_log_CFLAGS = $(AM_CFLAGS)
tests_test_log_LDADD = $(GLIB_LIBS)

check_PROGRAMS += tests/test-os
TESTS += tests/test-os
tests_test_os_SOURCES = tests/test-os.c core/os-posix.c
tests_test_os_CFLAGS = $(AM_CFLAGS)
tests_test_os_LDADD = $(GLIB_LIBS)

check_PROGRAMS += tests/test-control
TESTS += tests/test-control
tests_test_control_SOURCES = tests/test-control.c core/control.c core/os-posix.c core/log.c
tests_test_control_CFLAGS = $(AM_CFLAGS)
tests_test_control_LDADD = $(GLIB_LIBS)

## Fuzz targets: the control channel's framing and address/CIDR literals. make check
## replays their seed corpora (tests/fuzz/corpus/{control,addr}) through replay-main.c.
CONTROL_SOURCES = core/control.c core/os-posix.c core/log.c
TESTS += tests/fuzz/replay-control tests/fuzz/replay-addr
check_PROGRAMS += tests/fuzz/replay-control tests/fuzz/replay-addr
tests_fuzz_replay_control_SOURCES = tests/fuzz/fuzz-control.c tests/fuzz/replay-main.c \
	$(CONTROL_SOURCES)
tests_fuzz_replay_control_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_CORPUS=\"control\"
tests_fuzz_replay_control_LDADD = $(GLIB_LIBS)
tests_fuzz_replay_addr_SOURCES = tests/fuzz/fuzz-addr.c tests/fuzz/replay-main.c
tests_fuzz_replay_addr_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_CORPUS=\"addr\"
tests_fuzz_replay_addr_LDADD = core/libpbnet.la $(GLIB_LIBS)

if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-control tests/fuzz/fuzz-addr
tests_fuzz_fuzz_control_SOURCES = tests/fuzz/fuzz-control.c $(CONTROL_SOURCES)
tests_fuzz_fuzz_control_CFLAGS = $(AM_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_control_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_control_LDADD = $(GLIB_LIBS)
tests_fuzz_fuzz_addr_SOURCES = tests/fuzz/fuzz-addr.c core/net-common.c
tests_fuzz_fuzz_addr_CFLAGS = $(AM_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_addr_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_addr_LDADD = $(GLIB_LIBS)
endif
