/* http-loop.h - how libmicrohttpd's sockets reach the daemon's main loop: the OS-specific
 * part, so that http-plugin.c has no #ifdef.
 *   http-loop-posix.c  epoll: MHD keeps its sockets in one epoll set, and the loop watches
 *                      that one descriptor, so any number of descriptors works (select
 *                      stopped at FD_SETSIZE, 1,024).
 *   http-loop-win32.c  Windows has no epoll: one watch per socket from MHD_get_fdset2,
 *                      whose fd_set there is a list (no descriptor value limit). */
#pragma once

#include <glib.h>
#include <preboot/plugin.h>

#include <microhttpd.h>

G_BEGIN_DECLS

typedef struct HttpLoop HttpLoop;

/* The MHD_USE_* flags the loop needs at MHD_start_daemon. */
unsigned http_loop_mhd_flags(void);
/* Watches d's sockets; run(data) is called when one of them is ready. */
HttpLoop *http_loop_new(const pb_host *host, pb_instance *inst, struct MHD_Daemon *d,
                        void (*run)(void *data), void *data);
/* After MHD_run(): brings the watches in line with what libmicrohttpd waits for. */
void http_loop_sync(HttpLoop *l);
void http_loop_free(HttpLoop *l);

/* Cuts a connection from outside libmicrohttpd (a client past its header timeout): the
 * socket is shut down both ways, so libmicrohttpd sees it end and cleans up itself. */
void http_loop_cut(MHD_socket fd);

G_END_DECLS
