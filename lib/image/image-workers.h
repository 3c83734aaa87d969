/* image-workers.h - a fixed set of worker threads over a queue, joined when freed.
 *
 * Why not a GThreadPool: its threads are stopped but never joined, so they may still be
 * exiting when the program does. A thread that used libcrypto (curl's TLS, EVP digests) frees
 * its per-thread state (DRBGs, error queue) in a thread-exit handler; a process ending in that
 * window leaks it, and LeakSanitizer says so, now and then. Joined threads have finished. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct PbWorkers PbWorkers;

/* Starts N threads (at least one) calling FN(item, USER) for each pushed item, in order of
 * pushing as far as one thread goes. */
PbWorkers *pb_workers_new(const char *name, guint n, GFunc fn, gpointer user);
/* ITEM must not be NULL. */
void pb_workers_push(PbWorkers *w, gpointer item);
/* Runs every item pushed so far, then joins the threads and frees W. */
void pb_workers_free(PbWorkers *w);

G_END_DECLS
