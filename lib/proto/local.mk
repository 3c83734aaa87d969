## lib/proto: wire formats shared by servers, clients and tests. Pure parse/build code
## (bytes in, struct out; struct in, bytes out), each with unit tests and a fuzz target.
## Link it with $(PB_PROTO_LIBS); its headers are on every target's path (AM_CPPFLAGS).
## It includes only include/preboot/ and lib/: nothing of core/ or plugins/.
noinst_LTLIBRARIES += lib/proto/libpbproto.la
lib_proto_libpbproto_la_SOURCES = lib/proto/policy-proto.h lib/proto/policy-proto.c
lib_proto_libpbproto_la_CPPFLAGS = $(LIB_CPPFLAGS)
lib_proto_libpbproto_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
lib_proto_libpbproto_la_LIBADD = $(GLIB_LIBS)
PB_PROTO_LIBS = lib/proto/libpbproto.la $(GLIB_LIBS)

## The policy UDP protocol (doc/protocols.md): round trips, refusals, and the fuzz corpus
## (tests/fuzz/corpus-policy-proto) replayed through the fuzz target.
check_PROGRAMS += tests/test-policy-proto
TESTS += tests/test-policy-proto
tests_test_policy_proto_SOURCES = tests/test-policy-proto.c tests/fuzz/fuzz-policy-proto.c
tests_test_policy_proto_LDADD = $(PB_PROTO_LIBS) $(PB_NET_LIBS)
EXTRA_DIST += tests/fuzz/corpus-policy-proto

if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-policy-proto
tests_fuzz_fuzz_policy_proto_SOURCES = tests/fuzz/fuzz-policy-proto.c lib/proto/policy-proto.c
tests_fuzz_fuzz_policy_proto_CFLAGS = $(AM_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_policy_proto_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_policy_proto_LDADD = $(GLIB_LIBS)
endif
