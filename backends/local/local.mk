## backends/local: libpreboot-local, the imaging backend used when LIBRARY_NAME is empty
## (include/preboot/backend.h): lib/image's chunk store plus SQLite. Installed beside the
## plugins, where library_open() finds it by name. Windows too (lib/image's core).
prebootinclude_HEADERS += include/preboot/backend.h
if ENABLE_IMAGE_CORE
plugin_LTLIBRARIES += backends/local/libpreboot-local.la
backends_local_libpreboot_local_la_SOURCES = backends/local/local-backend.c
backends_local_libpreboot_local_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image \
	-I$(top_srcdir)/lib/backend
backends_local_libpreboot_local_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN) $(IMAGE_CORE_CFLAGS) \
	$(SQLITE_CFLAGS)
backends_local_libpreboot_local_la_LDFLAGS = -module -avoid-version -no-undefined -shared \
	-export-symbols-regex '_LTX_preboot_backend_entry$$'
## -z nodelete: lib/image keeps per-thread zstd contexts under a static GPrivate, whose
## pthread key GLib allocates once; unmapping the library on close would lose it. An ELF
## flag: on Windows lib/image/image-os-win32.c pins the DLL when it opens a store.
if !OS_WIN32
backends_local_libpreboot_local_la_LDFLAGS += -Wl,-z,nodelete
endif
backends_local_libpreboot_local_la_LIBADD = lib/backend/libpbbackend.la lib/image/libpbimage-core.la $(IMAGE_CORE_LIBS) \
	$(SQLITE_LIBS) $(GLIB_LIBS)
endif
