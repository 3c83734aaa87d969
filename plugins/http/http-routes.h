/* http-routes.h - the route table of the http plugin: path prefixes to handlers, longest
 * prefix first. Pure (no sockets, no libmicrohttpd) so it is unit-tested alone. */
#pragma once

#include <glib.h>
#include <preboot/http.h>

G_BEGIN_DECLS

/* What a route accepts (pb_http_route_options, copied; version 1 routes have v3 FALSE). */
typedef struct {
    gboolean v3;
    guint32 methods; /* PB_HTTP_M_* bits; GET implies HEAD */
    guint64 max_body;
    guint32 flags;   /* PB_HTTP_ROUTE_* */
    char **networks; /* NULL: any */
    char *token;     /* NULL: none */
} HttpRouteOpts;

typedef struct {
    char *prefix;
    pb_http_handler_fn fn;
    void *data;
    guint id; /* unique while the table lives: requests in flight name their route by it */
    HttpRouteOpts opts;
} HttpRoute;

typedef struct HttpRoutes HttpRoutes;

HttpRoutes *http_routes_new(void);
void http_routes_free(HttpRoutes *r);
/* Converts pb_http_route_options (NULL: the defaults) for http_routes_add; FALSE when
 * a network is not valid. Free with http_route_opts_clear. */
gboolean http_route_opts_from(const pb_http_route_options *o, HttpRouteOpts *out);
void http_route_opts_clear(HttpRouteOpts *o);
/* FALSE when the prefix does not start with '/', is too long, or is taken. opts (NULL for
 * a version 1 route) is taken over on success. */
gboolean http_routes_add(HttpRoutes *r, const char *prefix, pb_http_handler_fn fn, void *data,
                         HttpRouteOpts *opts);
/* Removes the route with exactly this prefix, fn and data; returns its id, 0 if none. */
guint http_routes_remove(HttpRoutes *r, const char *prefix, pb_http_handler_fn fn, void *data);
/* The route whose prefix is the longest one path starts with, or NULL. */
const HttpRoute *http_routes_find(const HttpRoutes *r, const char *path);
guint http_routes_count(const HttpRoutes *r);
const HttpRoute *http_routes_nth(const HttpRoutes *r, guint i);

G_END_DECLS
