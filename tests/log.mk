## tests (log, os, net, control): the OS layer the daemon and the plugins stand on.
check_PROGRAMS += tests/test-net
TESTS += tests/test-net
tests_test_net_SOURCES = tests/test-net.c
tests_test_net_LDADD = core/libpbnet.la $(GLIB_LIBS)

# Sources are compiled in (not the core library) so these tests do not wait on the rest of it.
check_PROGRAMS += tests/test-log
TESTS += tests/test-log
tests_test_log_SOURCES = tests/test-log.c core/log.c
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
