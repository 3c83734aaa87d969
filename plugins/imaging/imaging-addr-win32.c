/* imaging-addr-win32.c - the address the imaging server advertises when none is configured
 * (imaging-net.h), with Winsock (started by the daemon, win32/os-win32.c), and its workers'
 * priority; the twin of imaging-addr-posix.c. */
#include "imaging-net.h"

#include "win32-sock.h" /* lib/net/ */
#include <windows.h>    /* after winsock2.h (win32-sock.h) */

void imaging_detect_address(const char *configured, char *out, gsize len)
{
    if (configured != NULL && *configured != '\0') {
        g_strlcpy(out, configured, len);
        return;
    }
    g_strlcpy(out, "127.0.0.1", len);
    /* connect() on a UDP socket only asks the routing table; TEST-NET-1 is never reached */
    SOCKET fd = WSASocketW(AF_INET, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
    if (fd == INVALID_SOCKET)
        return;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
    inet_pton(AF_INET, "192.0.2.1", &to.sin_addr);
    struct sockaddr_in me;
    int ml = sizeof(me);
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0 &&
        getsockname(fd, (struct sockaddr *)&me, &ml) == 0 && me.sin_addr.s_addr != 0)
        inet_ntop(AF_INET, &me.sin_addr, out, len);
    closesocket(fd);
}

void imaging_thread_background(void)
{
    SetThreadPriority(GetCurrentThread(), THREAD_PRIORITY_BELOW_NORMAL);
}
