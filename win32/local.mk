## win32/: the Windows build (./configure --host=x86_64-w64-mingw32). See doc/windows.md.
## os-win32.c and net-win32.c stand in for core/os-posix.c and core/net-posix.c (wired in
## core/local.mk); tftp-fs-win32.c for plugins/tftp/tftp-fs-posix.c (plugins/tftp/local.mk).

EXTRA_DIST += win32/win32.h win32/win32-sock.h win32/compat.h win32/main-win32.c win32/messages.mc \
	win32/build-deps.sh win32/wine-test.sh win32/make-zip.sh win32/test-wine-tftp.sh

if OS_WIN32
AM_CPPFLAGS += -include $(top_srcdir)/win32/compat.h

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

## The unit tests under wine: make check LOG_COMPILER=$(top_srcdir)/win32/wine-test.sh
## (.ci/win32.sh does it), and the TFTP integration test against Linux clients.
TESTS += win32/test-wine-tftp.sh

## A zip a Windows administrator unpacks and runs: make win32-zip
win32-zip: all
	$(AM_V_GEN)WIN32_PREFIX='$(WIN32_PREFIX)' OBJDUMP='$(OBJDUMP)' \
	$(SHELL) $(top_srcdir)/win32/make-zip.sh '$(abs_top_srcdir)' '$(abs_top_builddir)' \
	  '$(PACKAGE)-$(VERSION)-win64.zip'
.PHONY: win32-zip
endif
