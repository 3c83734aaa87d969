/* http-loop-win32.c - libmicrohttpd in select mode for Windows (see http-loop.h). There an
 * fd_set is a counted list of sockets, not a bitmap, so socket values do not matter, only
 * how many: make the set large enough for connection_limit (at most 1,000) plus the
 * listener. Must come before any Winsock header. */
#define FD_SETSIZE 1100
#include <winsock2.h>

#include "http-loop.h"

typedef struct {
    pb_watch *watch;
    unsigned events;
    guint gen;
} Watch;

struct HttpLoop {
    const pb_host *host;
    pb_instance *inst;
    struct MHD_Daemon *d;
    GHashTable *watches; /* SOCKET -> Watch* */
    guint gen;
    void (*run)(void *);
    void *data;
};

unsigned http_loop_mhd_flags(void)
{
    return 0;
}

static bool on_socket(void *data, pb_socket_t sock, unsigned events)
{
    HttpLoop *l = data;
    l->run(l->data);
    return true;
}

HttpLoop *http_loop_new(const pb_host *host, pb_instance *inst, struct MHD_Daemon *d,
                        void (*run)(void *data), void *data)
{
    HttpLoop *l = g_new0(HttpLoop, 1);
    l->host = host;
    l->inst = inst;
    l->d = d;
    l->run = run;
    l->data = data;
    l->watches = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    http_loop_sync(l);
    return l;
}

static void want(HttpLoop *l, SOCKET s, unsigned ev, guint gen)
{
    gint64 key = (gint64)s;
    Watch *w = g_hash_table_lookup(l->watches, &key);
    if (w != NULL && w->events == ev) {
        w->gen = gen;
        return;
    }
    if (w != NULL) {
        l->host->watch_remove(w->watch);
        g_hash_table_remove(l->watches, &key);
    }
    w = g_new0(Watch, 1);
    w->events = ev;
    w->gen = gen;
    w->watch = l->host->watch_socket(l->inst, (pb_socket_t)s, ev, on_socket, l);
    g_hash_table_insert(l->watches, g_memdup2(&key, sizeof(key)), w);
}

void http_loop_sync(HttpLoop *l)
{
    fd_set rs, ws, es;
    MHD_socket max = 0;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_ZERO(&es);
    if (MHD_get_fdset2(l->d, &rs, &ws, &es, &max, FD_SETSIZE) != MHD_YES)
        return;
    guint gen = ++l->gen;
    for (u_int i = 0; i < rs.fd_count; i++)
        want(l, rs.fd_array[i], PB_IO_IN | (FD_ISSET(rs.fd_array[i], &ws) ? PB_IO_OUT : 0), gen);
    for (u_int i = 0; i < ws.fd_count; i++)
        if (!FD_ISSET(ws.fd_array[i], &rs))
            want(l, ws.fd_array[i], PB_IO_OUT, gen);
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, l->watches);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        Watch *w = value;
        if (w->gen != gen) {
            l->host->watch_remove(w->watch);
            g_hash_table_iter_remove(&it);
        }
    }
}

void http_loop_free(HttpLoop *l)
{
    if (l == NULL)
        return;
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, l->watches);
    while (g_hash_table_iter_next(&it, &key, &value))
        l->host->watch_remove(((Watch *)value)->watch);
    g_hash_table_unref(l->watches);
    g_free(l);
}

void http_loop_cut(MHD_socket fd)
{
    shutdown(fd, SD_BOTH);
}
