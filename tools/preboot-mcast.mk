## preboot-mcast(8): the legacy `zmgmcast -status`: the imaging server's statistics through
## the daemon's control socket. Multicast sessions come with the multicast plugin.
bin_PROGRAMS += tools/preboot-mcast
tools_preboot_mcast_SOURCES = tools/preboot-mcast.c
tools_preboot_mcast_LDADD = core/libpreboot-core.la $(GLIB_LIBS)
tools_preboot_mcast_CPPFLAGS = $(AM_CPPFLAGS)
EXTRA_DIST += tools/preboot-mcast.mk backends/local/local.mk plugins/imaging/local.mk
