## The imaging server: its pure parts, the local backend in process, and the real daemon
## with curl. Linux only, like lib/image.
if ENABLE_IMAGE
TESTS += tests/test-imaging-daemon.sh
endif
EXTRA_DIST += tests/test-imaging-daemon.sh tests/imaging.mk
