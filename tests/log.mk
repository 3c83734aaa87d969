## tests (log, os, control): the OS layer the daemon stands on. lib/net's are in
## lib/net/local.mk.
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

## Fuzz target: the control channel's framing. make check replays its seed corpus
## (tests/fuzz/corpus/control) through replay-main.c.
CONTROL_SOURCES = core/control.c core/os-posix.c core/log.c
TESTS += tests/fuzz/replay-control
check_PROGRAMS += tests/fuzz/replay-control
tests_fuzz_replay_control_SOURCES = tests/fuzz/fuzz-control.c tests/fuzz/replay-main.c \
	$(CONTROL_SOURCES)
tests_fuzz_replay_control_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_CORPUS=\"control\"
tests_fuzz_replay_control_LDADD = $(GLIB_LIBS)

if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-control
tests_fuzz_fuzz_control_SOURCES = tests/fuzz/fuzz-control.c $(CONTROL_SOURCES)
tests_fuzz_fuzz_control_CFLAGS = $(AM_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_control_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_control_LDADD = $(GLIB_LIBS)
endif
