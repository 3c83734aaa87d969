/* http-routes.h - the route table of the http plugin: path prefixes to handlers, longest
 * prefix first. Pure (no sockets, no libmicrohttpd) so it is unit-tested alone. */
#pragma once

#include <glib.h>
#include <preboot/http.h>

G_BEGIN_DECLS

typedef struct {
    char *prefix;
    pb_http_handler_fn fn;
    void *data;
} HttpRoute;

typedef struct HttpRoutes HttpRoutes;

HttpRoutes *http_routes_new(void);
void http_routes_free(HttpRoutes *r);
/* FALSE when the prefix does not start with '/', is too long, or is taken. */
gboolean http_routes_add(HttpRoutes *r, const char *prefix, pb_http_handler_fn fn, void *data);
/* Removes the route with exactly this prefix, fn and data; FALSE if there was none. */
gboolean http_routes_remove(HttpRoutes *r, const char *prefix, pb_http_handler_fn fn, void *data);
/* The route whose prefix is the longest one path starts with, or NULL. */
const HttpRoute *http_routes_find(const HttpRoutes *r, const char *path);
guint http_routes_count(const HttpRoutes *r);
const HttpRoute *http_routes_nth(const HttpRoutes *r, guint i);

G_END_DECLS
