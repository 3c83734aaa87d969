/* http-routes.c - longest-prefix routing. A handful of routes per daemon: a sorted array
 * (longest prefix first) beats anything cleverer. */
#include "http-routes.h"

#include "net-access.h"

#include <string.h>

struct HttpRoutes {
    GPtrArray *routes; /* HttpRoute*, longest prefix first */
    guint next_id;
};

gboolean http_route_opts_from(const pb_http_route_options *o, HttpRouteOpts *out)
{
    memset(out, 0, sizeof(*out));
    out->v3 = TRUE;
    out->methods = PB_HTTP_M_GET | PB_HTTP_M_HEAD;
    if (o == NULL)
        return TRUE;
        /* A caller's struct may be older and smaller than ours: read what it holds. */
#define HAS(m) PB_HAS_FIELD(pb_http_route_options, o, m)
    if (HAS(methods) && o->methods != 0)
        out->methods = o->methods & ~(guint32)PB_HTTP_M_OTHER;
    if (out->methods & PB_HTTP_M_GET)
        out->methods |= PB_HTTP_M_HEAD;
    if (HAS(max_body))
        out->max_body = o->max_body;
    if (HAS(flags))
        out->flags = o->flags;
    if (HAS(networks) && o->networks != NULL) {
        if (!pb_networks_valid(o->networks))
            return FALSE;
        out->networks = g_strdupv((char **)o->networks);
    }
    if (HAS(bearer_token) && o->bearer_token != NULL && *o->bearer_token != '\0')
        out->token = g_strdup(o->bearer_token);
#undef HAS
    return TRUE;
}

void http_route_opts_clear(HttpRouteOpts *o)
{
    g_strfreev(o->networks);
    if (o->token != NULL)
        memset(o->token, 0, strlen(o->token)); /* a credential: not left in freed memory */
    g_free(o->token);
    memset(o, 0, sizeof(*o));
}

static void route_free(HttpRoute *r)
{
    http_route_opts_clear(&r->opts);
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

gboolean http_routes_add(HttpRoutes *r, const char *prefix, pb_http_handler_fn fn, void *data,
                         HttpRouteOpts *opts)
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
    n->id = ++r->next_id;
    if (opts != NULL) {
        n->opts = *opts;
        memset(opts, 0, sizeof(*opts));
    }
    g_ptr_array_insert(r->routes, (gint)at, n);
    return TRUE;
}

guint http_routes_remove(HttpRoutes *r, const char *prefix, pb_http_handler_fn fn, void *data)
{
    for (guint i = 0; prefix != NULL && i < r->routes->len; i++) {
        const HttpRoute *o = g_ptr_array_index(r->routes, i);
        if (strcmp(o->prefix, prefix) == 0 && o->fn == fn && o->data == data) {
            guint id = o->id;
            g_ptr_array_remove_index(r->routes, i);
            return id;
        }
    }
    return 0;
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
