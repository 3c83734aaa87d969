## Tests: TAP through automake's driver. Areas keep their tests in tests/*.mk.
include tests/core.mk
include tests/config.mk
include tests/log.mk
include tests/fuzz/local.mk
include tests/image.mk
