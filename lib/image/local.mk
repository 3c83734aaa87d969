## lib/image: the preboot image format (preboot-image(5)), the chunk store and the capture
## and restore engine. A convenience library linked by preboot-img and the tests, and later
## by the imaging plugin and the multicast receiver. Linux only (libfdisk, libblkid).
if ENABLE_IMAGE
noinst_LTLIBRARIES += lib/image/libpbimage.la
lib_image_libpbimage_la_SOURCES = \
	lib/image/image-format.h \
	lib/image/image-manifest.c \
	lib/image/image-chunk.c \
	lib/image/image-archive.c \
	lib/image/image-domain.c \
	lib/image/image-ref.c \
	lib/image/image-store.h \
	lib/image/image-store.c \
	lib/image/image-pbi.h \
	lib/image/image-pbi.c \
	lib/image/image-disk.h \
	lib/image/image-disk.c \
	lib/image/image-engine.h \
	lib/image/image-engine.c \
	lib/image/image-json.h \
	lib/image/image-json.c \
	lib/image/image-http.h \
	lib/image/image-http.c
lib_image_libpbimage_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image
lib_image_libpbimage_la_CFLAGS = $(AM_CFLAGS) $(IMAGE_CFLAGS)
lib_image_libpbimage_la_LIBADD = $(IMAGE_LIBS) $(GLIB_LIBS)
endif
