/* imaging-addr-posix.c - the address the imaging server advertises when none is configured,
 * and its workers' priority (imaging-net.h); the Windows twin is imaging-addr-win32.c. */
#include "imaging-net.h"

#include <sys/resource.h>
#include <sys/syscall.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

void imaging_detect_address(const char *configured, char *out, gsize len)
{
    if (configured != NULL && *configured != '\0') {
        g_strlcpy(out, configured, len);
        return;
    }
    g_strlcpy(out, "127.0.0.1", len);
    /* connect() on a UDP socket only asks the routing table; TEST-NET-1 is never reached */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
    inet_pton(AF_INET, "192.0.2.1", &to.sin_addr);
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0 &&
        getsockname(fd, (struct sockaddr *)&me, &ml) == 0 && me.sin_addr.s_addr != 0)
        inet_ntop(AF_INET, &me.sin_addr, out, (socklen_t)len);
    close(fd);
}

void imaging_thread_background(void)
{
#ifdef SYS_gettid
    /* Linux: a thread's nice value is its own (setpriority on its thread id). */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
#endif
}
