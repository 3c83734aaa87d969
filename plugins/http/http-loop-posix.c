/* http-loop-posix.c - libmicrohttpd in epoll mode (see http-loop.h). */
#include "http-loop.h"

#include <sys/socket.h>

struct HttpLoop {
    const pb_host *host;
    pb_watch *watch;
    void (*run)(void *);
    void *data;
};

unsigned http_loop_mhd_flags(void)
{
    return MHD_USE_EPOLL;
}

static bool on_epoll(void *data, pb_socket_t sock, unsigned events)
{
    HttpLoop *l = data;
    l->run(l->data);
    return true;
}

HttpLoop *http_loop_new(const pb_host *host, pb_instance *inst, struct MHD_Daemon *d,
                        void (*run)(void *data), void *data)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    if (di == NULL || di->epoll_fd < 0)
        return NULL;
    HttpLoop *l = g_new0(HttpLoop, 1);
    l->host = host;
    l->run = run;
    l->data = data;
    /* Level-triggered on our side: the epoll descriptor stays readable while any socket
     * in MHD's set has an event it has not taken yet. */
    l->watch = host->watch_socket(inst, di->epoll_fd, PB_IO_IN, on_epoll, l);
    return l;
}

void http_loop_sync(HttpLoop *l)
{
    (void)l; /* the epoll set is libmicrohttpd's own: nothing to bring in line */
}

void http_loop_free(HttpLoop *l)
{
    if (l == NULL)
        return;
    l->host->watch_remove(l->watch);
    g_free(l);
}

void http_loop_cut(MHD_socket fd)
{
    shutdown(fd, SHUT_RDWR);
}
