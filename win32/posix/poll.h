/* poll.h for the Windows build: WSAPoll is poll() for sockets (Vista and later), which is
 * all portable code here polls. See win32/posix/arpa/inet.h. */
#pragma once
#include "win32-sock.h" /* lib/net/ */

typedef unsigned long nfds_t;

static inline int pb_win32_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    return WSAPoll(fds, n, timeout_ms);
}
#define poll pb_win32_poll
