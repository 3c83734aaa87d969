/* image-workers.c - worker threads that are joined: see image-workers.h for why. */
#include "build-config.h"

#include "image-workers.h"

struct PbWorkers {
    GAsyncQueue *queue;
    GFunc fn;
    gpointer user;
    guint n;
    GThread **threads;
};

/* Pushed once per thread by pb_workers_free, after every real item: a thread that pops it
 * ends. Its address is unique; no item can equal it. */
static char stop_marker;

static gpointer worker_main(gpointer data)
{
    PbWorkers *w = data;
    for (;;) {
        gpointer item = g_async_queue_pop(w->queue);
        if (item == &stop_marker)
            return NULL;
        w->fn(item, w->user);
    }
}

PbWorkers *pb_workers_new(const char *name, guint n, GFunc fn, gpointer user)
{
    PbWorkers *w = g_new0(PbWorkers, 1);
    w->queue = g_async_queue_new();
    w->fn = fn;
    w->user = user;
    w->n = MAX(n, 1u);
    w->threads = g_new0(GThread *, w->n);
    for (guint i = 0; i < w->n; i++)
        w->threads[i] = g_thread_new(name, worker_main, w);
    return w;
}

void pb_workers_push(PbWorkers *w, gpointer item)
{
    g_return_if_fail(item != NULL);
    g_async_queue_push(w->queue, item);
}

void pb_workers_free(PbWorkers *w)
{
    if (w == NULL)
        return;
    for (guint i = 0; i < w->n; i++)
        g_async_queue_push(w->queue, &stop_marker);
    for (guint i = 0; i < w->n; i++)
        g_thread_join(w->threads[i]);
    g_free(w->threads);
    g_async_queue_unref(w->queue);
    g_free(w);
}
