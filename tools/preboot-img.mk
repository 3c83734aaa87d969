## preboot-img(8): the imaging client (Linux only; lib/image).
if ENABLE_IMAGE
bin_PROGRAMS += tools/preboot-img
tools_preboot_img_SOURCES = tools/preboot-img.c
tools_preboot_img_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image
tools_preboot_img_CFLAGS = $(AM_CFLAGS) $(IMAGE_CFLAGS)
tools_preboot_img_LDADD = lib/image/libpbimage.la $(IMAGE_LIBS) $(GLIB_LIBS)
endif
EXTRA_DIST += tools/preboot-img.mk lib/image/local.mk
