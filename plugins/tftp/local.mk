## plugins/tftp: the TFTP server (RFC 1350, 2347-2349, 7440).
## Pure parse/decide code lives in a convenience library linked into the module, the unit
## tests and the fuzz target alike.
noinst_LTLIBRARIES += plugins/tftp/libtftp-core.la
plugins_tftp_libtftp_core_la_SOURCES = \
	plugins/tftp/tftp-packet.h plugins/tftp/tftp-packet.c \
	plugins/tftp/tftp-negotiate.h plugins/tftp/tftp-negotiate.c \
	plugins/tftp/tftp-path.h plugins/tftp/tftp-path.c \
	plugins/tftp/tftp-admit.h plugins/tftp/tftp-admit.c \
	plugins/tftp/tftp-netascii.h plugins/tftp/tftp-netascii.c \
	plugins/tftp/tftp-session.h plugins/tftp/tftp-session.c \
	plugins/tftp/tftp-fs.h
## OS-specific part behind tftp-fs.h: its POSIX and Windows twins side by side. Interface
## addresses come from lib/net.
if OS_WIN32
plugins_tftp_libtftp_core_la_SOURCES += plugins/tftp/tftp-fs-win32.c
else
plugins_tftp_libtftp_core_la_SOURCES += plugins/tftp/tftp-fs-posix.c
endif
plugins_tftp_libtftp_core_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
plugins_tftp_libtftp_core_la_LIBADD = $(GLIB_LIBS)

## The service other plugins use (virtual files, transfer events), installed for them.
prebootinclude_HEADERS += include/preboot/tftp.h

plugin_LTLIBRARIES += plugins/tftp/tftp.la
plugins_tftp_tftp_la_SOURCES = plugins/tftp/tftp-plugin.c plugins/tftp/tftp-ifaddr.h \
	plugins/tftp/tftp-ifaddr.c
plugins_tftp_tftp_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
plugins_tftp_tftp_la_LDFLAGS = $(PLUGIN_MODULE_FLAGS)
plugins_tftp_tftp_la_LIBADD = plugins/tftp/libtftp-core.la $(PB_NET_LIBS)

EXTRA_DIST += bench/tftp.sh bench/tftp-load.c

include tests/tftp.mk
