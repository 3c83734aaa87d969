## lib/backend: what the imaging backends of this tree (backends/local, backends/pg) share
## around lib/image's chunk store: errors, logging, the checks of uploads and commits. A
## convenience library linked into each backend module, built wherever libpreboot-local is.
if ENABLE_IMAGE_CORE
noinst_LTLIBRARIES += lib/backend/libpbbackend.la
lib_backend_libpbbackend_la_SOURCES = lib/backend/backend-common.h lib/backend/backend-common.c
lib_backend_libpbbackend_la_CPPFLAGS = $(LIB_CPPFLAGS) -I$(top_srcdir)/lib/image
lib_backend_libpbbackend_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN) $(IMAGE_CORE_CFLAGS)
lib_backend_libpbbackend_la_LIBADD = $(GLIB_LIBS)
endif
EXTRA_DIST += lib/backend/backend-common.h lib/backend/backend-common.c
