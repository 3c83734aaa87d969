bin_PROGRAMS += tools/prebootctl
tools_prebootctl_SOURCES = tools/prebootctl.c
tools_prebootctl_LDADD = core/libpreboot-core.la $(GLIB_LIBS)
tools_prebootctl_CPPFLAGS = $(AM_CPPFLAGS)
