## tests (config): the YAML and legacy readers, parameter validation, pb_config_build.
CONFIG_TEST_LDADD = core/libpreboot-core.la $(GLIB_LIBS) $(YAML_LIBS)

TESTS += tests/test-param tests/test-conf-legacy tests/test-conf-yaml tests/test-config-build
check_PROGRAMS += tests/test-param tests/test-conf-legacy tests/test-conf-yaml tests/test-config-build
tests_test_param_SOURCES = tests/test-param.c
tests_test_param_LDADD = $(CONFIG_TEST_LDADD)
tests_test_conf_legacy_SOURCES = tests/test-conf-legacy.c
tests_test_conf_legacy_LDADD = $(CONFIG_TEST_LDADD)
tests_test_conf_yaml_SOURCES = tests/test-conf-yaml.c
tests_test_conf_yaml_LDADD = $(CONFIG_TEST_LDADD)
tests_test_config_build_SOURCES = tests/test-config-build.c
tests_test_config_build_LDADD = $(CONFIG_TEST_LDADD)

EXTRA_DIST += tests/data/config tests/data/legacy
