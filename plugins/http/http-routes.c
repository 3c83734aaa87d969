/* http-routes.c - longest-prefix routing. A handful of routes per daemon: a sorted array
 * (longest prefix first) beats anything cleverer. */
#include "http-routes.h"

#include <string.h>

struct HttpRoutes {
    GPtrArray *routes; /* HttpRoute*, longest prefix first */
};

static void route_free(HttpRoute *r)
{
    g_free(r->prefix);
    g_free(r);
}

HttpRoutes *http_routes_new(void)
{
    HttpRoutes *r = g_new0(HttpRoutes, 1);
    r->routes = g_ptr_array_new_with_free_func((GDestroyNotify)route_free);
    return r;
}

void http_routes_free(HttpRoutes *r)
{
    if (r == NULL)
        return;
    g_ptr_array_unref(r->routes);
    g_free(r);
}

gboolean http_routes_add(HttpRoutes *r, const char *prefix, pb_http_handler_fn fn, void *data)
{
    if (prefix == NULL || prefix[0] != '/' || strlen(prefix) > 1024 || fn == NULL)
        return FALSE;
    guint at = r->routes->len;
    for (guint i = 0; i < r->routes->len; i++) {
        const HttpRoute *o = g_ptr_array_index(r->routes, i);
        if (strcmp(o->prefix, prefix) == 0)
            return FALSE;
        if (at == r->routes->len && strlen(o->prefix) < strlen(prefix))
            at = i;
    }
    HttpRoute *n = g_new0(HttpRoute, 1);
    n->prefix = g_strdup(prefix);
    n->fn = fn;
    n->data = data;
    g_ptr_array_insert(r->routes, (gint)at, n);
    return TRUE;
}

gboolean http_routes_remove(HttpRoutes *r, const char *prefix, pb_http_handler_fn fn, void *data)
{
    for (guint i = 0; prefix != NULL && i < r->routes->len; i++) {
        const HttpRoute *o = g_ptr_array_index(r->routes, i);
        if (strcmp(o->prefix, prefix) == 0 && o->fn == fn && o->data == data) {
            g_ptr_array_remove_index(r->routes, i);
            return TRUE;
        }
    }
    return FALSE;
}

const HttpRoute *http_routes_find(const HttpRoutes *r, const char *path)
{
    for (guint i = 0; path != NULL && i < r->routes->len; i++) {
        const HttpRoute *o = g_ptr_array_index(r->routes, i);
        if (g_str_has_prefix(path, o->prefix))
            return o;
    }
    return NULL;
}

guint http_routes_count(const HttpRoutes *r)
{
    return r->routes->len;
}

const HttpRoute *http_routes_nth(const HttpRoutes *r, guint i)
{
    return i < r->routes->len ? g_ptr_array_index(r->routes, i) : NULL;
}
