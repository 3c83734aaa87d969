## win32/: the Windows build (./configure --host=x86_64-w64-mingw32). See doc/windows.md.
## os-win32.c stands in for core/os-posix.c (wired in core/local.mk). Plugins and lib/
## keep their Windows twins beside the POSIX ones (plugins/tftp/tftp-fs-win32.c,
## lib/net/net-win32.c with the Winsock header win32-sock.h that win32/ includes too).

EXTRA_DIST += win32/win32.h win32/compat.h win32/posix win32/main-win32.c win32/messages.mc \
	win32/build-deps.sh win32/wine-test.sh win32/make-zip.sh win32/test-wine-tftp.sh \
	win32/test-wine-service.sh win32/test-wine-imaging.sh

if OS_WIN32
## win32/posix/ maps the POSIX socket headers onto Winsock (through lib/net/win32-sock.h).
OS_CPPFLAGS += -include $(top_srcdir)/win32/compat.h -I$(top_srcdir)/win32/posix

## os-win32.c starts Winsock with lib/net's pb_win32_wsa_init.
core_libpreboot_core_la_LIBADD += lib/net/libpbnet.la

## Both programs get main() from main-win32.c (the service wrapper and the install home);
## their own main() becomes pb_program_main.
core_prebootd_SOURCES += win32/main-win32.c
core_prebootd_CPPFLAGS += -Dmain=pb_program_main -DPB_WIN32_DAEMON
core_prebootd_LDADD += win32/messages.o
EXTRA_core_prebootd_DEPENDENCIES = win32/messages.o
tools_prebootctl_SOURCES += win32/main-win32.c
tools_prebootctl_CPPFLAGS += -Dmain=pb_program_main

## The message table that lets the Event Viewer show prebootd's events ("%1").
win32/messages.o: $(top_srcdir)/win32/messages.mc
	$(AM_V_GEN)$(MKDIR_P) win32/mc && \
	$(WINDMC) -h win32/mc -r win32/mc $(top_srcdir)/win32/messages.mc && \
	$(WINDRES) -I win32/mc -O coff -o $@ win32/mc/messages.rc
CLEANFILES += win32/messages.o win32/mc/messages.rc win32/mc/messages.h win32/mc/MSG00409.bin

## The unit tests under wine, the TFTP integration test against Linux clients and the
## service through wine's service manager (win32/test-wine-service.sh):
## make win32-check (.ci/win32.sh does it). Tests of POSIX-only code, or that drive
## POSIX sockets and processes themselves, are left out here; each with its reason:
WIN32_POSIX_ONLY = \
	tests/test-os \
	tests/test-net \
	tests/test-log \
	tests/test-control \
	tests/test-tftp-session \
	tests/test-policy-engine \
	tests/test-tftp-plugin \
	tests/test-policy-plugin \
	tests/fuzz/replay-control \
	tests/tftp-serve tests/tftp-mangler tests/e2e/pb-serve
## test-os: os-posix.c (fork, setuid, Unix sockets, groups); the Windows twin is covered by
##   win32/test-wine-tftp.sh (control channel, clean stop, pid file).
## test-net: asserts POSIX descriptor flags (fcntl O_NONBLOCK/FD_CLOEXEC) and 127.0.0.2.
## test-log: stats with a POSIX struct stat and modes.
## test-control: uses glib-unix.h (Unix sockets and fds).
## test-tftp-session: symlink() and mkfifo() cases of the POSIX root check.
## test-policy-engine: sys/wait.h (forks).
## test-tftp-plugin, test-policy-plugin: raw POSIX sockets (SOCK_NONBLOCK, MSG_NOSIGNAL), and
##   symlink()/mkfifo() cases; the TFTP module itself runs in win32/test-wine-tftp.sh.
## fuzz/replay-control: links core/os-posix.c itself.
## tftp-serve, tftp-mangler, pb-serve: helpers of the Linux shell tests (raw POSIX sockets).
TESTS += win32/test-wine-service.sh
if BUILD_TFTP
TESTS += win32/test-wine-tftp.sh
endif
if ENABLE_IMAGE_CORE
if BUILD_HTTP
TESTS += win32/test-wine-imaging.sh
endif
endif
win32_filter = $(filter-out $(WIN32_POSIX_ONLY) $(WIN32_POSIX_ONLY:=$(EXEEXT)),$(1))
win32-check:
	PKG_CONFIG='$(PKG_CONFIG)' PKG_CONFIG_LIBDIR='$(PKG_CONFIG_LIBDIR)' \
	PKG_CONFIG_PATH='$(PKG_CONFIG_PATH)' OBJDUMP='$(OBJDUMP)' \
	$(MAKE) $(AM_MAKEFLAGS) check LOG_COMPILER='$(abs_top_srcdir)/win32/wine-test.sh' \
	  TESTS='$(call win32_filter,$(TESTS))' \
	  check_PROGRAMS='$(call win32_filter,$(check_PROGRAMS))'
.PHONY: win32-check

## A zip a Windows administrator unpacks and runs: make win32-zip
win32-zip: all
	$(AM_V_GEN)PKG_CONFIG='$(PKG_CONFIG)' PKG_CONFIG_LIBDIR='$(PKG_CONFIG_LIBDIR)' \
	PKG_CONFIG_PATH='$(PKG_CONFIG_PATH)' OBJDUMP='$(OBJDUMP)' \
	$(SHELL) $(top_srcdir)/win32/make-zip.sh '$(abs_top_srcdir)' '$(abs_top_builddir)' \
	  '$(PACKAGE)-$(VERSION)-win64.zip'
.PHONY: win32-zip
endif
