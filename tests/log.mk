## tests (log, os, net, control): the OS layer the daemon and the plugins stand on.
check_PROGRAMS += tests/test-net
TESTS += tests/test-net
tests_test_net_SOURCES = tests/test-net.c
tests_test_net_LDADD = core/libpbnet.la $(GLIB_LIBS)
