## plugins/imaging: the imaging server (legacy novell-pbserv) on the daemon's HTTP listener,
## its data in a LIBRARY_NAME backend (backends/local by default). Windows too (lib/image's core).
if ENABLE_IMAGE_CORE
## Pure parts: request paths, hash lists, the little JSON. Unit-tested and fuzzed alone.
noinst_LTLIBRARIES += plugins/imaging/libimaging-core.la
plugins_imaging_libimaging_core_la_SOURCES = \
	plugins/imaging/imaging-api.h plugins/imaging/imaging-api.c \
	plugins/imaging/imaging-json.h plugins/imaging/imaging-json.c \
	plugins/imaging/imaging-cred.h plugins/imaging/imaging-cred.c \
	plugins/imaging/imaging-sent.h plugins/imaging/imaging-sent.c
plugins_imaging_libimaging_core_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image
plugins_imaging_libimaging_core_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN) $(IMAGE_CORE_CFLAGS)
plugins_imaging_libimaging_core_la_LIBADD = $(GLIB_LIBS)

plugin_LTLIBRARIES += plugins/imaging/imaging.la
plugins_imaging_imaging_la_SOURCES = plugins/imaging/imaging-plugin.c \
	plugins/imaging/imaging-net.h plugins/imaging/imaging-net.c \
	plugins/imaging/imaging-service.h plugins/imaging/imaging-service.c
if OS_WIN32
plugins_imaging_imaging_la_SOURCES += plugins/imaging/imaging-addr-win32.c
else
plugins_imaging_imaging_la_SOURCES += plugins/imaging/imaging-addr-posix.c
endif
plugins_imaging_imaging_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image
plugins_imaging_imaging_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN) $(IMAGE_CORE_CFLAGS)
plugins_imaging_imaging_la_LDFLAGS = $(PLUGIN_MODULE_FLAGS)
plugins_imaging_imaging_la_LIBADD = plugins/imaging/libimaging-core.la lib/image/libpbimage-core.la \
	$(PB_NET_LIBS) $(IMAGE_CORE_LIBS)
endif
