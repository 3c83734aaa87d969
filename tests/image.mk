## lib/image and preboot-img: unit tests of the format and store, the fuzz targets'
## corpora replayed, and the client's round trips on disk image files built in the test.
## The replays of lib/image's core parsers run on Windows too (under wine).
IMAGE_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image
if ENABLE_IMAGE_CORE
IMAGE_CORE_TEST_LIBS = lib/image/libpbimage-core.la $(IMAGE_CORE_LIBS) $(GLIB_LIBS)
TESTS += tests/fuzz/replay-image-manifest tests/fuzz/replay-image-archive \
	tests/fuzz/replay-image-domain tests/fuzz/replay-image-json tests/fuzz/replay-image-delta
check_PROGRAMS += tests/fuzz/replay-image-manifest tests/fuzz/replay-image-archive \
	tests/fuzz/replay-image-domain tests/fuzz/replay-image-json tests/fuzz/replay-image-delta
tests_fuzz_replay_image_manifest_SOURCES = tests/fuzz/fuzz-image-manifest.c tests/fuzz/replay-main.c
tests_fuzz_replay_image_manifest_CPPFLAGS = $(IMAGE_TEST_CPPFLAGS) -DFUZZ_CORPUS=\"image-manifest\"
tests_fuzz_replay_image_manifest_LDADD = $(IMAGE_CORE_TEST_LIBS)
tests_fuzz_replay_image_archive_SOURCES = tests/fuzz/fuzz-image-archive.c tests/fuzz/replay-main.c
tests_fuzz_replay_image_archive_CPPFLAGS = $(IMAGE_TEST_CPPFLAGS) -DFUZZ_CORPUS=\"image-archive\"
tests_fuzz_replay_image_archive_LDADD = $(IMAGE_CORE_TEST_LIBS)
tests_fuzz_replay_image_domain_SOURCES = tests/fuzz/fuzz-image-domain.c tests/fuzz/replay-main.c
tests_fuzz_replay_image_domain_CPPFLAGS = $(IMAGE_TEST_CPPFLAGS) -DFUZZ_CORPUS=\"image-domain\"
tests_fuzz_replay_image_domain_LDADD = $(IMAGE_CORE_TEST_LIBS)
tests_fuzz_replay_image_json_SOURCES = tests/fuzz/fuzz-image-json.c tests/fuzz/replay-main.c
tests_fuzz_replay_image_json_CPPFLAGS = $(IMAGE_TEST_CPPFLAGS) -DFUZZ_CORPUS=\"image-json\"
tests_fuzz_replay_image_json_LDADD = $(IMAGE_CORE_TEST_LIBS)
tests_fuzz_replay_image_delta_SOURCES = tests/fuzz/fuzz-image-delta.c tests/fuzz/replay-main.c
tests_fuzz_replay_image_delta_CPPFLAGS = $(IMAGE_TEST_CPPFLAGS) -DFUZZ_CORPUS=\"image-delta\"
tests_fuzz_replay_image_delta_LDADD = $(IMAGE_CORE_TEST_LIBS)
endif

if ENABLE_IMAGE
IMAGE_TEST_LIBS = lib/image/libpbimage.la $(IMAGE_LIBS) $(GLIB_LIBS)

check_PROGRAMS += tests/test-image-format
TESTS += tests/test-image-format
tests_test_image_format_SOURCES = tests/test-image-format.c
tests_test_image_format_CPPFLAGS = $(IMAGE_TEST_CPPFLAGS)
tests_test_image_format_LDADD = $(IMAGE_TEST_LIBS)

TESTS += tests/image-roundtrip.sh

## The imaging API client: the JSON reader, PbHttp against tests/imaging-standin.py, and
## preboot-img's network commands end to end (the stand-in, and prebootd once
## plugins/imaging is built).
check_PROGRAMS += tests/test-image-http
TESTS += tests/test-image-http tests/image-net.sh
tests_test_image_http_SOURCES = tests/test-image-http.c
tests_test_image_http_CPPFLAGS = $(IMAGE_TEST_CPPFLAGS)
tests_test_image_http_LDADD = $(IMAGE_TEST_LIBS)
if ENABLE_FUZZING
## The pure parsers compiled into each fuzzer so they carry its instrumentation.
IMAGE_FUZZ_SOURCES = lib/image/image-manifest.c lib/image/image-chunk.c \
	lib/image/image-archive.c lib/image/image-domain.c lib/image/image-json.c
noinst_PROGRAMS += tests/fuzz/fuzz-image-manifest tests/fuzz/fuzz-image-archive \
	tests/fuzz/fuzz-image-domain tests/fuzz/fuzz-image-delta
tests_fuzz_fuzz_image_manifest_SOURCES = tests/fuzz/fuzz-image-manifest.c $(IMAGE_FUZZ_SOURCES)
tests_fuzz_fuzz_image_manifest_CPPFLAGS = $(IMAGE_TEST_CPPFLAGS)
tests_fuzz_fuzz_image_manifest_CFLAGS = $(AM_CFLAGS) $(IMAGE_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_image_manifest_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_image_manifest_LDADD = $(IMAGE_LIBS) $(GLIB_LIBS)
tests_fuzz_fuzz_image_archive_SOURCES = tests/fuzz/fuzz-image-archive.c $(IMAGE_FUZZ_SOURCES)
tests_fuzz_fuzz_image_archive_CPPFLAGS = $(IMAGE_TEST_CPPFLAGS)
tests_fuzz_fuzz_image_archive_CFLAGS = $(AM_CFLAGS) $(IMAGE_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_image_archive_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_image_archive_LDADD = $(IMAGE_LIBS) $(GLIB_LIBS)
tests_fuzz_fuzz_image_domain_SOURCES = tests/fuzz/fuzz-image-domain.c $(IMAGE_FUZZ_SOURCES)
tests_fuzz_fuzz_image_domain_CPPFLAGS = $(IMAGE_TEST_CPPFLAGS)
tests_fuzz_fuzz_image_domain_CFLAGS = $(AM_CFLAGS) $(IMAGE_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_image_domain_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_image_domain_LDADD = $(IMAGE_LIBS) $(GLIB_LIBS)
noinst_PROGRAMS += tests/fuzz/fuzz-image-json
tests_fuzz_fuzz_image_json_SOURCES = tests/fuzz/fuzz-image-json.c $(IMAGE_FUZZ_SOURCES)
tests_fuzz_fuzz_image_json_CPPFLAGS = $(IMAGE_TEST_CPPFLAGS)
tests_fuzz_fuzz_image_json_CFLAGS = $(AM_CFLAGS) $(IMAGE_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_image_json_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_image_json_LDADD = $(IMAGE_LIBS) $(GLIB_LIBS)
tests_fuzz_fuzz_image_delta_SOURCES = tests/fuzz/fuzz-image-delta.c $(IMAGE_FUZZ_SOURCES)
tests_fuzz_fuzz_image_delta_CPPFLAGS = $(IMAGE_TEST_CPPFLAGS)
tests_fuzz_fuzz_image_delta_CFLAGS = $(AM_CFLAGS) $(IMAGE_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_image_delta_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_image_delta_LDADD = $(IMAGE_LIBS) $(GLIB_LIBS)
endif
endif
EXTRA_DIST += tests/image.mk tests/image-roundtrip.sh tests/image-net.sh \
	tests/imaging-standin.py tests/cut-proxy.py bench/put-server.py
