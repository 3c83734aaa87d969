## Fuzz targets. Each target is a fuzz-*.c defining LLVMFuzzerTestOneInput; make check
## links it with replay-main.c and runs its seed corpus (tests/fuzz/corpus/NAME/) through
## it. configure --enable-fuzzing CC=clang also builds the real libFuzzer binaries
## (not run by make check), e.g.:
##   ./tests/fuzz/fuzz-conf-yaml -dict=$(srcdir)/tests/fuzz/conf-yaml.dict \
##       -max_total_time=300 CORPUS_COPY $(srcdir)/tests/fuzz/corpus/conf-yaml
FUZZ_SANITIZE = -fsanitize=fuzzer,address,undefined
EXTRA_DIST += tests/fuzz/corpus tests/fuzz/conf-yaml.dict tests/fuzz/conf-legacy.dict

## conf-legacy: the legacy .conf reader (core/conf-legacy.c) and value parsing.
TESTS += tests/fuzz/replay-conf-legacy
check_PROGRAMS += tests/fuzz/replay-conf-legacy
tests_fuzz_replay_conf_legacy_SOURCES = tests/fuzz/fuzz-conf-legacy.c tests/fuzz/replay-main.c
tests_fuzz_replay_conf_legacy_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_CORPUS=\"conf-legacy\"
tests_fuzz_replay_conf_legacy_LDADD = core/libpreboot-core.la $(GLIB_LIBS) $(YAML_LIBS)

## conf-yaml: the preboot.yaml reader (core/conf-yaml.c), pb_config_build and dump.
TESTS += tests/fuzz/replay-conf-yaml
check_PROGRAMS += tests/fuzz/replay-conf-yaml
tests_fuzz_replay_conf_yaml_SOURCES = tests/fuzz/fuzz-conf-yaml.c tests/fuzz/replay-main.c
tests_fuzz_replay_conf_yaml_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_CORPUS=\"conf-yaml\"
tests_fuzz_replay_conf_yaml_LDADD = core/libpreboot-core.la $(GLIB_LIBS) $(YAML_LIBS)

if ENABLE_FUZZING
## The configuration sources are compiled into each fuzzer so they carry its coverage
## instrumentation (the core library is built without it).
CONFIG_FUZZ_SOURCES = core/config.c core/param.c core/conf-legacy.c core/conf-yaml.c \
	core/os-posix.c

noinst_PROGRAMS += tests/fuzz/fuzz-conf-legacy
tests_fuzz_fuzz_conf_legacy_SOURCES = tests/fuzz/fuzz-conf-legacy.c $(CONFIG_FUZZ_SOURCES)
tests_fuzz_fuzz_conf_legacy_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_conf_legacy_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_conf_legacy_LDADD = $(GLIB_LIBS) $(YAML_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz-conf-yaml
tests_fuzz_fuzz_conf_yaml_SOURCES = tests/fuzz/fuzz-conf-yaml.c $(CONFIG_FUZZ_SOURCES)
tests_fuzz_fuzz_conf_yaml_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(FUZZ_SANITIZE)
tests_fuzz_fuzz_conf_yaml_LDFLAGS = $(FUZZ_SANITIZE)
tests_fuzz_fuzz_conf_yaml_LDADD = $(GLIB_LIBS) $(YAML_LIBS)
endif
