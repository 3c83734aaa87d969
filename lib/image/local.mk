## lib/image: the preboot image format (preboot-image(5)), the chunk store and the capture
## and restore engine, in two convenience libraries split along their dependencies:
## - libpbimage-core: the format, chunks, archives and the store (libcrypto for SHA-256,
##   libzstd). Portable: the imaging plugin and libpreboot-local link it, on Windows too.
##   The store's OS calls are in image-os-posix.c or image-os-win32.c (image-os.h).
## - libpbimage: core plus the disk, engine and HTTP client code of preboot-img (libfdisk,
##   libblkid, libcurl, Linux ioctls). Linux only, like preboot-img.
if ENABLE_IMAGE_CORE
noinst_LTLIBRARIES += lib/image/libpbimage-core.la
lib_image_libpbimage_core_la_SOURCES = \
	lib/image/image-format.h \
	lib/image/image-manifest.c \
	lib/image/image-chunk.c \
	lib/image/image-archive.c \
	lib/image/image-domain.c \
	lib/image/image-ref.c \
	lib/image/image-store.h \
	lib/image/image-store.c \
	lib/image/image-os.h \
	lib/image/image-pbi.h \
	lib/image/image-pbi.c \
	lib/image/image-json.h \
	lib/image/image-json.c
if OS_WIN32
lib_image_libpbimage_core_la_SOURCES += lib/image/image-os-win32.c
else
lib_image_libpbimage_core_la_SOURCES += lib/image/image-os-posix.c
endif
lib_image_libpbimage_core_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image
lib_image_libpbimage_core_la_CFLAGS = $(AM_CFLAGS) $(IMAGE_CORE_CFLAGS)
lib_image_libpbimage_core_la_LIBADD = $(IMAGE_CORE_LIBS) $(GLIB_LIBS)
endif

if ENABLE_IMAGE
noinst_LTLIBRARIES += lib/image/libpbimage.la
lib_image_libpbimage_la_SOURCES = \
	lib/image/image-disk.h \
	lib/image/image-disk.c \
	lib/image/image-engine.h \
	lib/image/image-engine.c \
	lib/image/image-http.h \
	lib/image/image-http.c \
	lib/image/image-workers.h \
	lib/image/image-workers.c
lib_image_libpbimage_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image
lib_image_libpbimage_la_CFLAGS = $(AM_CFLAGS) $(IMAGE_CFLAGS)
lib_image_libpbimage_la_LIBADD = lib/image/libpbimage-core.la $(IMAGE_LIBS) $(GLIB_LIBS)
endif
