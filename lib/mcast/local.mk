## lib/mcast: multicast imaging sessions (doc/multicast.md): the sender (used by the
## multicast plugin and tests/mcast-sender) and the receiver (preboot-img session). Linux
## only, like lib/image which it builds on. The wire format is pure code in lib/proto
## (mcast-proto.[ch], part of libpbproto on every platform).
lib_proto_libpbproto_la_SOURCES += lib/proto/mcast-proto.h lib/proto/mcast-proto.c

## The wire format: round trips, refusals, group mapping, and the fuzz corpus
## (tests/fuzz/corpus/mcast-proto) replayed through the fuzz target.
check_PROGRAMS += tests/test-mcast-proto tests/fuzz/replay-mcast-proto
TESTS += tests/test-mcast-proto tests/fuzz/replay-mcast-proto
tests_test_mcast_proto_SOURCES = tests/test-mcast-proto.c
tests_test_mcast_proto_LDADD = $(PB_PROTO_LIBS)
tests_fuzz_replay_mcast_proto_SOURCES = tests/fuzz/fuzz-mcast-proto.c tests/fuzz/replay-main.c
tests_fuzz_replay_mcast_proto_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_CORPUS=\"mcast-proto\"
tests_fuzz_replay_mcast_proto_LDADD = $(PB_PROTO_LIBS)
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-mcast-proto
tests_fuzz_fuzz_mcast_proto_SOURCES = tests/fuzz/fuzz-mcast-proto.c lib/proto/mcast-proto.c
tests_fuzz_fuzz_mcast_proto_CFLAGS = $(AM_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_mcast_proto_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_mcast_proto_LDADD = $(GLIB_LIBS)
endif

if ENABLE_IMAGE
MCAST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image -I$(top_srcdir)/lib/mcast
noinst_LTLIBRARIES += lib/mcast/libpbmcast.la
lib_mcast_libpbmcast_la_SOURCES = lib/mcast/mcast.h lib/mcast/mcast-send.c lib/mcast/mcast-recv.c \
	lib/mcast/mcast-record.h lib/mcast/mcast-record.c
lib_mcast_libpbmcast_la_CPPFLAGS = $(LIB_CPPFLAGS) -I$(top_srcdir)/lib/image -I$(top_srcdir)/lib/mcast
lib_mcast_libpbmcast_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN) $(IMAGE_CFLAGS)
lib_mcast_libpbmcast_la_LIBADD = lib/image/libpbimage.la $(PB_PROTO_LIBS) $(PB_NET_LIBS) \
	$(IMAGE_LIBS) $(GLIB_LIBS)
PB_MCAST_LIBS = lib/mcast/libpbmcast.la

## A session's record (GET /multicast/v1/sessions/NAME): round trips and refusals, and
## the fuzz corpus (tests/fuzz/corpus/mcast-record) replayed through the fuzz target.
## Pure: the record code, lib/image's JSON reader and the name rules only.
MCAST_RECORD_SOURCES = lib/mcast/mcast-record.c lib/image/image-json.c
check_PROGRAMS += tests/test-mcast-record tests/fuzz/replay-mcast-record
TESTS += tests/test-mcast-record tests/fuzz/replay-mcast-record
tests_test_mcast_record_SOURCES = tests/test-mcast-record.c $(MCAST_RECORD_SOURCES)
tests_test_mcast_record_CPPFLAGS = $(MCAST_CPPFLAGS)
tests_test_mcast_record_LDADD = $(PB_PROTO_LIBS)
tests_fuzz_replay_mcast_record_SOURCES = tests/fuzz/fuzz-mcast-record.c tests/fuzz/replay-main.c \
	$(MCAST_RECORD_SOURCES)
tests_fuzz_replay_mcast_record_CPPFLAGS = $(MCAST_CPPFLAGS) -DFUZZ_CORPUS=\"mcast-record\"
tests_fuzz_replay_mcast_record_LDADD = $(PB_PROTO_LIBS)
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-mcast-record
tests_fuzz_fuzz_mcast_record_SOURCES = tests/fuzz/fuzz-mcast-record.c $(MCAST_RECORD_SOURCES) \
	lib/proto/mcast-proto.c
tests_fuzz_fuzz_mcast_record_CPPFLAGS = $(MCAST_CPPFLAGS)
tests_fuzz_fuzz_mcast_record_CFLAGS = $(AM_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_mcast_record_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_mcast_record_LDADD = $(GLIB_LIBS)
endif

## A sender without the daemon, for the namespace test and bench/multicast.sh.
check_PROGRAMS += tests/mcast-sender
tests_mcast_sender_SOURCES = tests/mcast-sender.c
tests_mcast_sender_CPPFLAGS = $(MCAST_CPPFLAGS)
tests_mcast_sender_CFLAGS = $(AM_CFLAGS) $(IMAGE_CFLAGS)
tests_mcast_sender_LDADD = $(PB_MCAST_LIBS)

## One sender, 1, 4 and 8 receivers in network namespaces (root; skipped otherwise).
TESTS += tests/mcast-netns.sh
endif
EXTRA_DIST += lib/mcast/local.mk tests/mcast-netns.sh bench/multicast.sh bench/norm-probe.cc
## The namespaces and bridge of tests/mcast-*.sh and bench/multicast.sh.
EXTRA_DIST += tests/lib-netns.sh

## preboot-img session: the multicast receiver's subcommand (after tools/preboot-img.mk).
if ENABLE_IMAGE
tools_preboot_img_SOURCES += tools/preboot-img-session.c tools/preboot-img-session.h
tools_preboot_img_CPPFLAGS += -I$(top_srcdir)/lib/mcast
tools_preboot_img_LDADD += $(PB_MCAST_LIBS)
endif
