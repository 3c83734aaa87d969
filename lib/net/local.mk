## lib/net: UDP sockets, interface addresses and multicast groups for the plugins and their
## clients (net.h). A convenience library linked into each module that needs it: plugins
## reach the host only through the services table, never through its symbols.
## Link it with $(PB_NET_LIBS); its header is on every target's path (AM_CPPFLAGS).
## It includes only include/preboot/ and itself: nothing of core/ or plugins/.
noinst_LTLIBRARIES += lib/net/libpbnet.la
lib_net_libpbnet_la_SOURCES = lib/net/net.h lib/net/net-sockaddr.h \
	lib/net/net-common.c lib/net/net-send.c lib/net/net-ifaddr.c \
	lib/net/net-access.h lib/net/net-access.c \
	lib/net/net-os.h lib/net/net-mcast.c
lib_net_libpbnet_la_CPPFLAGS = $(LIB_CPPFLAGS)
lib_net_libpbnet_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
lib_net_libpbnet_la_LIBADD = $(GLIB_LIBS) $(NET_LIBS)
## The OS twins: one of them is built.
if OS_WIN32
lib_net_libpbnet_la_SOURCES += lib/net/net-win32.c lib/net/win32-sock.h
else
lib_net_libpbnet_la_SOURCES += lib/net/net-posix.c
endif
EXTRA_DIST += lib/net/net-posix.c lib/net/net-win32.c lib/net/win32-sock.h
PB_NET_LIBS = lib/net/libpbnet.la $(GLIB_LIBS) $(NET_LIBS)

## Tests: addresses, UDP exchanges, interface addresses and multicast on loopback.
check_PROGRAMS += tests/test-net
TESTS += tests/test-net
tests_test_net_SOURCES = tests/test-net.c
tests_test_net_LDADD = $(PB_NET_LIBS)

## Fuzz target: address and CIDR literals; make check replays tests/fuzz/corpus/addr.
TESTS += tests/fuzz/replay-addr
check_PROGRAMS += tests/fuzz/replay-addr
tests_fuzz_replay_addr_SOURCES = tests/fuzz/fuzz-addr.c tests/fuzz/replay-main.c
tests_fuzz_replay_addr_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_CORPUS=\"addr\"
tests_fuzz_replay_addr_LDADD = $(PB_NET_LIBS)
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-addr
tests_fuzz_fuzz_addr_SOURCES = tests/fuzz/fuzz-addr.c lib/net/net-common.c
tests_fuzz_fuzz_addr_CFLAGS = $(AM_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_addr_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_addr_LDADD = $(GLIB_LIBS)
endif
