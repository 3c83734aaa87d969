## plugins/multicast: multicast imaging sessions (preboot-multicast(8), doc/multicast.md),
## lib/mcast's sender in a thread per session. Needs lib/image, so Linux only for now.
if ENABLE_IMAGE
plugin_LTLIBRARIES += plugins/multicast/multicast.la
plugins_multicast_multicast_la_SOURCES = plugins/multicast/multicast-plugin.c
plugins_multicast_multicast_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/lib/image \
	-I$(top_srcdir)/lib/mcast
plugins_multicast_multicast_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN) $(IMAGE_CFLAGS)
## -z nodelete: as the backends (backends/local/local.mk): lib/image keeps per-thread zstd
## contexts under a static GPrivate, whose pthread key GLib allocates once; unloading the
## plugin at exit would lose it (a leak LeakSanitizer reports).
plugins_multicast_multicast_la_LDFLAGS = $(PLUGIN_MODULE_FLAGS) -Wl,-z,nodelete
plugins_multicast_multicast_la_LIBADD = lib/mcast/libpbmcast.la

## The plugin in a real prebootd: sessions started, listed, changed and deleted with
## prebootctl, receivers in namespaces (root; skipped otherwise).
TESTS += tests/mcast-daemon.sh
## ...on the imaging plugin's backend (preboot.imaging), with the unicast fallback.
TESTS += tests/mcast-imaging.sh
## ...and receivers started after their session ended: the session's record, then unicast
## (needs the http, policy and imaging plugins too; skipped without them).
TESTS += tests/mcast-late.sh
endif
EXTRA_DIST += plugins/multicast/local.mk tests/mcast-daemon.sh tests/mcast-imaging.sh \
	tests/mcast-late.sh
