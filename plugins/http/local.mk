## plugins/http: the daemon's one HTTP listener (libmicrohttpd) and the preboot.http
## service other plugins add routes to (include/preboot/http.h).
prebootinclude_HEADERS += include/preboot/http.h

noinst_LTLIBRARIES += plugins/http/libhttp-core.la
plugins_http_libhttp_core_la_SOURCES = plugins/http/http-routes.h plugins/http/http-routes.c
plugins_http_libhttp_core_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN)
plugins_http_libhttp_core_la_LIBADD = $(GLIB_LIBS)

plugin_LTLIBRARIES += plugins/http/http.la
## http-sockaddr-posix.c builds unchanged for Windows: there win32/posix/ supplies the POSIX
## socket headers from Winsock (inet_ntop, sockaddr_in/in6 are the same there).
plugins_http_http_la_SOURCES = plugins/http/http-plugin.c plugins/http/http-sockaddr.h \
	plugins/http/http-sockaddr-posix.c
plugins_http_http_la_CFLAGS = $(PLUGIN_CFLAGS_HIDDEN) $(MHD_CFLAGS)
plugins_http_http_la_LDFLAGS = $(PLUGIN_MODULE_FLAGS)
plugins_http_http_la_LIBADD = plugins/http/libhttp-core.la $(PB_NET_LIBS) \
	$(MHD_LIBS)
