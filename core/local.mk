## The core: a convenience library that prebootd and the tests both link.
noinst_LTLIBRARIES += core/libpreboot-core.la
core_libpreboot_core_la_SOURCES = \
	core/config.h core/config.c core/param.c \
	core/conf-legacy.h core/conf-legacy.c \
	core/conf-yaml.h core/conf-yaml.c \
	core/log.h core/log.c \
	core/os.h \
	core/control.h core/control.c \
	core/loader.h core/loader.c \
	core/host.h core/host-private.h core/host.c core/host-services.c core/host-lifecycle.c
core_libpreboot_core_la_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS)
core_libpreboot_core_la_LIBADD = $(GLIB_LIBS) $(YAML_LIBS) $(LTDL_LIBS) $(NET_LIBS)
if OS_WIN32
core_libpreboot_core_la_SOURCES += win32/os-win32.c
else
core_libpreboot_core_la_SOURCES += core/os-posix.c
endif

sbin_PROGRAMS += core/prebootd
core_prebootd_SOURCES = core/prebootd.c
core_prebootd_CPPFLAGS = $(AM_CPPFLAGS)
core_prebootd_LDADD = core/libpreboot-core.la $(GLIB_LIBS)
